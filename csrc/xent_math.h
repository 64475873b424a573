/* xent_math.h - SIMD vectors and the exp/log the kernels vectorise with.
 *
 * Vectors are GCC/Clang vector extensions of XENT_VBYTES bytes (16 at baseline, 32 for AVX2, 64
 * for AVX-512, set by the isa_*.c file), so one source compiles to SSE2, AVX2 or AVX-512 code
 * under the target pragma of the file that includes it.  libm's exp and log are function calls
 * per element and never vectorise without -ffast-math, which we refuse (it breaks inf/NaN); these
 * are the classic Cody-Waite reductions with polynomials, branch-free, IEEE-clean:
 * exp(-inf) = 0, exp(+inf) = inf, exp(NaN) = NaN, subnormal results rounded, not flushed.
 * Lane-wise max/min use the x86 instructions where the vector width has them (the generic select
 * costs three or four instructions).
 * The scalar forms evaluate the vector form on one lane, so each function exists once.
 */
#ifndef XENT_MATH_H
#define XENT_MATH_H

#include <stdint.h>
#include <string.h>

/* Vectors are only passed between always-inlined functions, so their ABI never matters. */
#pragma GCC diagnostic ignored "-Wpsabi"

#ifndef XENT_VBYTES
#define XENT_VBYTES 16
#endif

typedef float vf32 __attribute__((vector_size(XENT_VBYTES)));
typedef int32_t vi32 __attribute__((vector_size(XENT_VBYTES)));
typedef uint32_t vu32 __attribute__((vector_size(XENT_VBYTES)));
typedef double vf64 __attribute__((vector_size(XENT_VBYTES)));
typedef int64_t vi64 __attribute__((vector_size(XENT_VBYTES)));
typedef uint64_t vu64 __attribute__((vector_size(XENT_VBYTES)));

#define VLEN_F32 ((int)(XENT_VBYTES / sizeof(float)))
#define VLEN_F64 ((int)(XENT_VBYTES / sizeof(double)))

#define XENT_INLINE static inline __attribute__((always_inline))

/* Lane-wise m ? a : b, with m a comparison result (all ones or zeros per lane). */
XENT_INLINE vf32 vsel_f32(vi32 m, vf32 a, vf32 b) { return (vf32)((m & (vi32)a) | (~m & (vi32)b)); }
XENT_INLINE vf64 vsel_f64(vi64 m, vf64 a, vf64 b) { return (vf64)((m & (vi64)a) | (~m & (vi64)b)); }

/* Lane-wise a > b ? a : b and a < b ? a : b: the semantics of x86's max/min instructions, which
 * return b when either is NaN.  So vmax(x, m) passes over a NaN x, and vmax(lo, x) keeps it. */
#if defined(__x86_64__) && XENT_VBYTES == 64 && defined(__AVX512F__)
#include <immintrin.h>
XENT_INLINE vf32 vmax_f32(vf32 a, vf32 b) { return (vf32)_mm512_max_ps((__m512)a, (__m512)b); }
XENT_INLINE vf32 vmin_f32(vf32 a, vf32 b) { return (vf32)_mm512_min_ps((__m512)a, (__m512)b); }
XENT_INLINE vf64 vmax_f64(vf64 a, vf64 b) { return (vf64)_mm512_max_pd((__m512d)a, (__m512d)b); }
XENT_INLINE vf64 vmin_f64(vf64 a, vf64 b) { return (vf64)_mm512_min_pd((__m512d)a, (__m512d)b); }
#elif defined(__x86_64__) && XENT_VBYTES == 32 && defined(__AVX__)
#include <immintrin.h>
XENT_INLINE vf32 vmax_f32(vf32 a, vf32 b) { return (vf32)_mm256_max_ps((__m256)a, (__m256)b); }
XENT_INLINE vf32 vmin_f32(vf32 a, vf32 b) { return (vf32)_mm256_min_ps((__m256)a, (__m256)b); }
XENT_INLINE vf64 vmax_f64(vf64 a, vf64 b) { return (vf64)_mm256_max_pd((__m256d)a, (__m256d)b); }
XENT_INLINE vf64 vmin_f64(vf64 a, vf64 b) { return (vf64)_mm256_min_pd((__m256d)a, (__m256d)b); }
#elif defined(__x86_64__) && XENT_VBYTES == 16
#include <emmintrin.h>
XENT_INLINE vf32 vmax_f32(vf32 a, vf32 b) { return (vf32)_mm_max_ps((__m128)a, (__m128)b); }
XENT_INLINE vf32 vmin_f32(vf32 a, vf32 b) { return (vf32)_mm_min_ps((__m128)a, (__m128)b); }
XENT_INLINE vf64 vmax_f64(vf64 a, vf64 b) { return (vf64)_mm_max_pd((__m128d)a, (__m128d)b); }
XENT_INLINE vf64 vmin_f64(vf64 a, vf64 b) { return (vf64)_mm_min_pd((__m128d)a, (__m128d)b); }
#else
#define XENT_GENERIC_VECTORS 1
XENT_INLINE vf32 vmax_f32(vf32 a, vf32 b) { return vsel_f32(a > b, a, b); }
XENT_INLINE vf32 vmin_f32(vf32 a, vf32 b) { return vsel_f32(a < b, a, b); }
XENT_INLINE vf64 vmax_f64(vf64 a, vf64 b) { return vsel_f64(a > b, a, b); }
XENT_INLINE vf64 vmin_f64(vf64 a, vf64 b) { return vsel_f64(a < b, a, b); }
#endif

/* Stores that go past the caches (non-temporal), for an output too large to stay in them: a plain
 * store first reads the line it writes (to own it), a third stream of memory traffic beside the
 * input's read and the output's write.  p is aligned to the vector's size.  They are weakly
 * ordered: vstream_fence orders them before the stores that follow it.  Elsewhere plain stores. */
#if defined(__x86_64__) && XENT_VBYTES == 64 && defined(__AVX512F__)
XENT_INLINE void vstream_f32(float *p, vf32 v) { _mm512_stream_ps(p, (__m512)v); }
XENT_INLINE void vstream_f64(double *p, vf64 v) { _mm512_stream_pd(p, (__m512d)v); }
#elif defined(__x86_64__) && XENT_VBYTES == 32 && defined(__AVX__)
XENT_INLINE void vstream_f32(float *p, vf32 v) { _mm256_stream_ps(p, (__m256)v); }
XENT_INLINE void vstream_f64(double *p, vf64 v) { _mm256_stream_pd(p, (__m256d)v); }
#elif defined(__x86_64__) && XENT_VBYTES == 16
XENT_INLINE void vstream_f32(float *p, vf32 v) { _mm_stream_ps(p, (__m128)v); }
XENT_INLINE void vstream_f64(double *p, vf64 v) { _mm_stream_pd(p, (__m128d)v); }
#else
XENT_INLINE void vstream_f32(float *p, vf32 v) { memcpy(p, &v, sizeof v); }
XENT_INLINE void vstream_f64(double *p, vf64 v) { memcpy(p, &v, sizeof v); }
#endif
#if defined(__x86_64__) && (XENT_VBYTES == 16 || defined(__AVX__))
XENT_INLINE void vstream_fence(void) { _mm_sfence(); }
#else
XENT_INLINE void vstream_fence(void) {}
#endif

/* True when any lane of a comparison result (all ones or zeros per lane) is set: one test
 * instruction where the ISA has it, instead of a loop over extracted lanes. */
#if defined(__x86_64__) && XENT_VBYTES == 64 && defined(__AVX512F__)
XENT_INLINE int vany_i32(vi32 m) { return _mm512_test_epi32_mask((__m512i)m, (__m512i)m) != 0; }
XENT_INLINE int vany_i64(vi64 m) { return _mm512_test_epi64_mask((__m512i)m, (__m512i)m) != 0; }
#elif defined(__x86_64__) && XENT_VBYTES == 32 && defined(__AVX__)
XENT_INLINE int vany_i32(vi32 m) { return !_mm256_testz_si256((__m256i)m, (__m256i)m); }
XENT_INLINE int vany_i64(vi64 m) { return !_mm256_testz_si256((__m256i)m, (__m256i)m); }
#elif defined(__x86_64__) && XENT_VBYTES == 16
XENT_INLINE int vany_i32(vi32 m) { return _mm_movemask_epi8((__m128i)m) != 0; }
XENT_INLINE int vany_i64(vi64 m) { return _mm_movemask_epi8((__m128i)m) != 0; }
#else
XENT_INLINE int vany_i32(vi32 m)
{
    int32_t any = 0;
    for (int l = 0; l < VLEN_F32; l++) any |= m[l];
    return any != 0;
}
XENT_INLINE int vany_i64(vi64 m)
{
    int64_t any = 0;
    for (int l = 0; l < VLEN_F64; l++) any |= m[l];
    return any != 0;
}
#endif

/* Each of VLEN vectors reduced to one lane: lane l of the result is the max (or the sum) of v[l]'s
 * lanes.  One transposing tree does it for all VLEN vectors: each step halves the lanes a vector
 * spends on each row by combining two vectors' halves, so VLEN rows take VLEN - 1 two-shuffle steps
 * instead of VLEN separate trees (and their latency chains).  The steps leave the rows in a shuffled
 * lane order, so the vectors go in in the order that undoes it (the `slot` tables).  Without a
 * cheap cross-lane shuffle (baseline, generic), each vector is reduced on its own. */
enum { XENT_EACH_MAX, XENT_EACH_SUM };

#if defined(__x86_64__) && XENT_VBYTES == 64 && defined(__AVX512F__)
#define XENT_EACHOP_PS(op, a, b) ((op) == XENT_EACH_MAX ? _mm512_max_ps(a, b) : _mm512_add_ps(a, b))
#define XENT_EACHOP_PD(op, a, b) ((op) == XENT_EACH_MAX ? _mm512_max_pd(a, b) : _mm512_add_pd(a, b))
XENT_INLINE vf32 vreduce_each_f32(const vf32 v[16], int op)
{
    static const int slot[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};
    __m512 t[8], u[4], w[2];
    for (int i = 0; i < 8; i++) { /* 256-bit halves: lanes 0-7 one row, 8-15 the next */
        const __m512 a = (__m512)v[slot[2 * i]], b = (__m512)v[slot[2 * i + 1]];
        t[i] = XENT_EACHOP_PS(op, _mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
    }
    for (int i = 0; i < 4; i++) /* 128-bit quarters: a row each */
        u[i] = XENT_EACHOP_PS(op, _mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], 0x88),
                              _mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], 0xDD));
    for (int i = 0; i < 2; i++) /* pairs of lanes */
        w[i] = XENT_EACHOP_PS(op, _mm512_shuffle_ps(u[2 * i], u[2 * i + 1], 0x44),
                              _mm512_shuffle_ps(u[2 * i], u[2 * i + 1], 0xEE));
    return (vf32)XENT_EACHOP_PS(op, _mm512_shuffle_ps(w[0], w[1], 0x88), _mm512_shuffle_ps(w[0], w[1], 0xDD));
}

XENT_INLINE vf64 vreduce_each_f64(const vf64 v[8], int op)
{
    static const int slot[8] = {0, 2, 4, 6, 1, 3, 5, 7};
    __m512d t[4], u[2];
    for (int i = 0; i < 4; i++) {
        const __m512d a = (__m512d)v[slot[2 * i]], b = (__m512d)v[slot[2 * i + 1]];
        t[i] = XENT_EACHOP_PD(op, _mm512_shuffle_f64x2(a, b, 0x44), _mm512_shuffle_f64x2(a, b, 0xEE));
    }
    for (int i = 0; i < 2; i++)
        u[i] = XENT_EACHOP_PD(op, _mm512_shuffle_f64x2(t[2 * i], t[2 * i + 1], 0x88),
                              _mm512_shuffle_f64x2(t[2 * i], t[2 * i + 1], 0xDD));
    return (vf64)XENT_EACHOP_PD(op, _mm512_unpacklo_pd(u[0], u[1]), _mm512_unpackhi_pd(u[0], u[1]));
}
#elif defined(__x86_64__) && XENT_VBYTES == 32 && defined(__AVX__)
#define XENT_EACHOP_PS(op, a, b) ((op) == XENT_EACH_MAX ? _mm256_max_ps(a, b) : _mm256_add_ps(a, b))
#define XENT_EACHOP_PD(op, a, b) ((op) == XENT_EACH_MAX ? _mm256_max_pd(a, b) : _mm256_add_pd(a, b))
XENT_INLINE vf32 vreduce_each_f32(const vf32 v[8], int op)
{
    static const int slot[8] = {0, 4, 1, 5, 2, 6, 3, 7};
    __m256 t[4], u[2];
    for (int i = 0; i < 4; i++) {
        const __m256 a = (__m256)v[slot[2 * i]], b = (__m256)v[slot[2 * i + 1]];
        t[i] = XENT_EACHOP_PS(op, _mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
    }
    for (int i = 0; i < 2; i++)
        u[i] = XENT_EACHOP_PS(op, _mm256_shuffle_ps(t[2 * i], t[2 * i + 1], 0x44),
                              _mm256_shuffle_ps(t[2 * i], t[2 * i + 1], 0xEE));
    return (vf32)XENT_EACHOP_PS(op, _mm256_shuffle_ps(u[0], u[1], 0x88), _mm256_shuffle_ps(u[0], u[1], 0xDD));
}

XENT_INLINE vf64 vreduce_each_f64(const vf64 v[4], int op)
{
    static const int slot[4] = {0, 2, 1, 3};
    __m256d t[2];
    for (int i = 0; i < 2; i++) {
        const __m256d a = (__m256d)v[slot[2 * i]], b = (__m256d)v[slot[2 * i + 1]];
        t[i] = XENT_EACHOP_PD(op, _mm256_permute2f128_pd(a, b, 0x20), _mm256_permute2f128_pd(a, b, 0x31));
    }
    return (vf64)XENT_EACHOP_PD(op, _mm256_unpacklo_pd(t[0], t[1]), _mm256_unpackhi_pd(t[0], t[1]));
}
#else
XENT_INLINE vf32 vreduce_each_f32(const vf32 v[VLEN_F32], int op)
{
    vf32 out = {0};
    for (int l = 0; l < VLEN_F32; l++) {
        vf32 x = v[l];
        for (int w = VLEN_F32 / 2; w >= 1; w /= 2)
            for (int k = 0; k < w; k++)
                x[k] = op == XENT_EACH_MAX ? (x[k + w] > x[k] ? x[k + w] : x[k]) : x[k] + x[k + w];
        out[l] = x[0];
    }
    return out;
}

XENT_INLINE vf64 vreduce_each_f64(const vf64 v[VLEN_F64], int op)
{
    vf64 out;
    for (int l = 0; l < VLEN_F64; l++) {
        vf64 x = v[l];
        for (int w = VLEN_F64 / 2; w >= 1; w /= 2)
            for (int k = 0; k < w; k++)
                x[k] = op == XENT_EACH_MAX ? (x[k + w] > x[k] ? x[k + w] : x[k]) : x[k] + x[k + w];
        out[l] = x[0];
    }
    return out;
}
#endif

/* lo/hi += e with e's lanes widened to double: float32 lanes go half into lo, half into hi (the
 * x86 forms convert each half in one instruction; the generic conversion goes lane by lane). */
XENT_INLINE void vwiden_add_f32(vf64 *lo, vf64 *hi, vf32 e)
{
#if defined(__x86_64__) && XENT_VBYTES == 64 && defined(__AVX512F__)
    *lo += (vf64)_mm512_cvtps_pd(_mm512_castps512_ps256((__m512)e));
    *hi += (vf64)_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd((__m512d)e, 1)));
#elif defined(__x86_64__) && XENT_VBYTES == 32 && defined(__AVX__)
    *lo += (vf64)_mm256_cvtps_pd(_mm256_castps256_ps128((__m256)e));
    *hi += (vf64)_mm256_cvtps_pd(_mm256_extractf128_ps((__m256)e, 1));
#elif defined(__x86_64__) && XENT_VBYTES == 16
    *lo += (vf64)_mm_cvtps_pd((__m128)e);
    *hi += (vf64)_mm_cvtps_pd(_mm_movehl_ps((__m128)e, (__m128)e));
#else
    for (int k = 0; k < VLEN_F64; k++) {
        (*lo)[k] += (double)e[k];
        (*hi)[k] += (double)e[k + VLEN_F64];
    }
#endif
}

XENT_INLINE void vwiden_add_f64(vf64 *lo, vf64 *hi, vf64 e)
{
    (void)hi;
    *lo += e;
}

/* Cody-Waite reduction x = k ln2 + r, |r| <= ln2/2.  Adding 1.5 * 2^23 (2^52) rounds x*log2(e)
 * to an integer held in the low mantissa bits: *kbits returns those bits, k = kbits - bits(1.5p23).
 * ln2 comes in two parts so that k * ln2_hi is exact. */
XENT_INLINE vf32 vexp_reduce_f32(vf32 x, vu32 *kbits)
{
    const float shifter = 12582912.0f;
    vf32 kf = x * 1.44269504088896341f + shifter;
    *kbits = (vu32)kf;
    kf -= shifter;
    vf32 r = x - kf * 0.693359375f;
    return r - kf * -2.12194440e-4f;
}

XENT_INLINE vf64 vexp_reduce_f64(vf64 x, vu64 *kbits)
{
    const double shifter = 6755399441055744.0;
    vf64 kd = x * 1.4426950408889634074 + shifter;
    *kbits = (vu64)kd;
    kd -= shifter;
    /* fdlibm's split of ln2: the high part has 32 bits. */
    vf64 r = x - kd * 6.93147180369123816490e-01;
    return r - kd * 1.90821492927058770002e-10;
}

/* exp(r) on |r| <= ln2/2: Cephes expf's polynomial (2 ulp), and the degree-13 Taylor polynomial
 * for double (truncation < 5e-18).  The double one is evaluated by Estrin's scheme (pairs, then
 * pairs of pairs in r^2 and r^4), not Horner's: its chain of dependent multiply-adds is five long
 * instead of twelve.  Where exps are summed the loop is bound by that chain's latency, not by the
 * handful of extra multiplies (the reorder window holds only a few exps in flight). */
XENT_INLINE vf32 vexp_poly_f32(vf32 r)
{
    vf32 p = (vf32){0} + 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    return p * (r * r) + r + 1.0f;
}

/* exp(r) - 1 for |r| <= ln2 / 2, and exp(r) = that + 1 (the same bits as one expression). */
XENT_INLINE vf64 vexp_poly_m1_f64(vf64 r)
{
    const vf64 r2 = r * r, r4 = r2 * r2;
    /* q(r) = sum_i r^i / (i + 2)!, i = 0..11, as six pairs, three quads and two steps in r^4 */
    const vf64 a0 = r * (1.0 / 6.0) + 0.5;
    const vf64 a1 = r * (1.0 / 120.0) + 1.0 / 24.0;
    const vf64 a2 = r * (1.0 / 5040.0) + 1.0 / 720.0;
    const vf64 a3 = r * (1.0 / 362880.0) + 1.0 / 40320.0;
    const vf64 a4 = r * (1.0 / 39916800.0) + 1.0 / 3628800.0;
    const vf64 a5 = r * (1.0 / 6227020800.0) + 1.0 / 479001600.0;
    const vf64 b0 = a1 * r2 + a0, b1 = a3 * r2 + a2, b2 = a5 * r2 + a4;
    const vf64 q = (b2 * r4 + b1) * r4 + b0;
    return q * r2 + r;
}

XENT_INLINE vf64 vexp_poly_f64(vf64 r) { return vexp_poly_m1_f64(r) + 1.0; }

/* exp over the whole range.  Above the upper clamp exp(x) overflows; a NaN fails both
 * comparisons and flows through.  2^k is applied in two halves so that subnormal results round
 * instead of flushing to zero.  The lower clamp is where the first half's exponent bits are 0
 * (k = -254; -2046 in float64): from there down, -inf included, the result is exactly 0 without an
 * underflow, which would cost a microcode assist on Intel cores (see XENT_EXP_TERM_FLOOR_F32). */
XENT_INLINE vf32 vexp_f32(vf32 x)
{
    x = vmin_f32((vf32){0} + 89.0f, vmax_f32((vf32){0} - 176.0f, x));
    vu32 kbits;
    vf32 p = vexp_poly_f32(vexp_reduce_f32(x, &kbits));
    vi32 k = (vi32)(kbits - 0x4B400000u);
    vi32 k1 = k >> 1, k2 = k - k1;
    return p * (vf32)((vu32)(k1 + 127) << 23) * (vf32)((vu32)(k2 + 127) << 23);
}

XENT_INLINE vf64 vexp_f64(vf64 x)
{
    x = vmin_f64((vf64){0} + 710.0, vmax_f64((vf64){0} - 1418.0, x));
    vu64 kbits;
    vf64 p = vexp_poly_f64(vexp_reduce_f64(x, &kbits));
    vi64 k = (vi64)(kbits - 0x4338000000000000ull);
    vi64 k1 = k >> 1, k2 = k - k1;
    return p * (vf64)((vu64)(k1 + 1023) << 52) * (vf64)((vu64)(k2 + 1023) << 52);
}

/* exp(x) for the terms of a sum that holds a 1 (x = x_j - max <= 0), and for kept values.  Below
 * the floor (-87 in float32, -708 in float64, where exp is still a normal number) a term need not
 * be exp's: a sum that holds a 1 cannot see it, and kept values flush it to 0 (exp_kept).  It must
 * cost nothing, though, and such lanes are common (masked classes at -inf, the lanes past a row's
 * end in its last partial vector): a result that underflows takes a microcode assist on Intel
 * cores, hundreds of cycles an instruction, and flush-to-zero, which would avoid it, is not IEEE.
 * Without AVX-512, 2^k is built in one step from exponent bits, and the input is clamped where
 * k = -127 (float32; -1023 in float64): those bits are 0, and so is the result, exactly, from
 * about -87.7 (-708.8) down; between there and the floor it is below 2^-126 (2^-1022) but not
 * exp's value.  With AVX-512, vscalef applies 2^k, and the lanes below the floor are left out of
 * it by a zeroing mask (a masked-out lane raises no exception and takes no assist): exactly 0 from
 * the floor down, with nothing clamped (the masked lanes may hold NaN or inf on the way). */
#define XENT_EXP_TERM_FLOOR_F32 -87.0f
#define XENT_EXP_TERM_FLOOR_F64 -708.0
#define XENT_EXP_TERM_CLAMP_F32 -88.0f /* rounds to k = -127: 2^k's bits, and the result, are 0 */
#define XENT_EXP_TERM_CLAMP_F64 -709.0 /* rounds to k = -1023: 2^k's bits, and the result, are 0 */
#if defined(__x86_64__) && XENT_VBYTES == 64 && defined(__AVX512F__)
#define XENT_AT_OR_ABOVE_F32(x, floor) \
    _mm512_cmp_ps_mask((__m512)(x), _mm512_set1_ps(floor), _CMP_NLT_UQ) /* NaN lanes kept */
#define XENT_AT_OR_ABOVE_F64(x, floor) \
    _mm512_cmp_pd_mask((__m512d)(x), _mm512_set1_pd(floor), _CMP_NLT_UQ)
#endif

/* Without AVX-512 (which has vexp_sum_term_scaled_f32 instead). */
XENT_INLINE vf32 vexp_term_f32(vf32 x)
{
    /* The same Cody-Waite reduction as vexp_f32 (exact also without FMA), then exp(r) by a degree-5
     * polynomial fitted for relative error (2e-7 in float32) with p(0) = 1 exactly, so that the
     * row's largest term, exp(0), is exact and a confident row's loss keeps its digits. */
    x = vmax_f32((vf32){0} + XENT_EXP_TERM_CLAMP_F32, x);
    vu32 kbits;
    vf32 r = vexp_reduce_f32(x, &kbits);
    vf32 p = (vf32){0} + 8.290315046906471e-3f;
    p = p * r + 4.189793020486832e-2f;
    p = p * r + 1.666763573884964e-1f;
    p = p * r + 4.999915063381195e-1f;
    p = p * r + 9.999997019767761e-1f;
    p = p * r + 1.0f;
    return p * (vf32)((kbits << 23) + (127u << 23)); /* the shifter's own bits shift out */
}

/* vexp_term_f32 for terms that are only summed (forward passes), of a scaled argument: exp(s d)
 * for s > 0 (a logit scale folded into the exp pass; vexp_sum_term_f32 is s = 1, where the scaling
 * folds away).  With FMA (AVX-512, AVX2), x - k ln2 in one step, one multiply-add fewer (the
 * exp-sum loop is bound by them).  ln2 then carries its float32 rounding error, 1.9e-9 k: at most
 * 2.4e-7 relative error, in the deepest terms above the floor (k >= -126), the ones that weigh
 * least in a sum, so that float32's kept values (softmax, gradients) take it too.  The AVX2 form
 * also reduces by ln2/8 with a table (below).  k is taken from d (by the constant s / ln2), and
 * the clamp (floor) on d is x = s d's divided by s.  The AVX-512 form forms x = s d beside k,
 * off the chain of dependent operations; the AVX2 form, whose loop is bound by multiplies, does
 * not form it: r = s (d - k ln2 / s), the factor s taken into the polynomial's coefficients
 * (s^i c_i), so that a scale costs no operation.  ln2 / s then carries a rounding error of the
 * size of rounding s d (1.2e-7 |s d| at most, in the exponent). */
XENT_INLINE vf32 vexp_sum_term_scaled_f32(vf32 d, float s)
{
#if defined(__x86_64__) && XENT_VBYTES == 64 && defined(__AVX512F__)
    const __mmask16 kept = XENT_AT_OR_ABOVE_F32(d, XENT_EXP_TERM_FLOOR_F32 / s);
    const vf32 x = s * d;
    const vf32 kf = (d * (1.44269504088896341f * s) + 12582912.0f) - 12582912.0f;
    const vf32 r = (vf32)_mm512_fnmadd_ps((__m512)kf, _mm512_set1_ps(0.693147180559945309f), (__m512)x);
    vf32 p = (vf32){0} + 8.290315046906471e-3f;
    p = p * r + 4.189793020486832e-2f;
    p = p * r + 1.666763573884964e-1f;
    p = p * r + 4.999915063381195e-1f;
    p = p * r + 9.999997019767761e-1f;
    p = p * r + 1.0f;
    return (vf32)_mm512_maskz_scalef_ps(kept, (__m512)p, (__m512)kf);
#elif defined(__x86_64__) && XENT_VBYTES == 32 && defined(__FMA__)
    /* x = (8 k + j) ln2/8 + r, |r| <= ln2/16: exp(x) = 2^k 2^(j/8) exp(r), 2^(j/8) from an
     * 8-entry table by one lane permute (vpermps reads the low three bits of K = 8 k + j), exp(r)
     * by a degree-3 polynomial fitted for relative error (3e-8) with p(0) = 1: two multiply-adds
     * fewer than the degree-5 form on |r| <= ln2/2, in the loop that bounds the AVX2 forward.  The
     * table holds 2^(j/8)'s bits less j << 20, so that adding K << 20 adds k to the exponent.  At
     * the clamp K = -1016 (k = -127, j = 0) the bits are 0: exactly 0 from about -87.7 down, as in
     * vexp_term_f32; terms between there and 2^-126 come out below 2^-126, but not exp's value. */
    static const uint32_t table[8] = {0x3F800000u, 0x3F7B95C2u, 0x3F7837F0u, 0x3F75FED7u,
                                      0x3F7504F3u, 0x3F75672Au, 0x3F7744FDu, 0x3F7AC0C7u};
    d = vmax_f32((vf32){0} + XENT_EXP_TERM_CLAMP_F32 / s, d);
    const vf32 shifted = d * (11.541560327111707f * s) + 12582912.0f; /* 8 / ln2 */
    const vf32 kf = shifted - 12582912.0f;
    /* r = s d - kf ln2/8 as s (d - kf ln2/(8 s)), the factor s taken into the coefficients */
    const vf32 r =
        (vf32)_mm256_fnmadd_ps((__m256)kf, _mm256_set1_ps(0.0866433975699932f / s), (__m256)d);
    vf32 p = (vf32){0} + 0.166642963886261f * (s * s * s);
    p = p * r + 0.5000648498535156f * (s * s);
    p = p * r + s;
    p = p * r + 1.0f;
    const vu32 t = (vu32)_mm256_permutevar8x32_ps(_mm256_loadu_ps((const float *)table), (__m256i)shifted);
    return p * (vf32)(((vu32)shifted << 20) + t); /* the shifter's own bits shift out */
#else
    return vexp_term_f32(s * d);
#endif
}

XENT_INLINE vf32 vexp_sum_term_f32(vf32 x) { return vexp_sum_term_scaled_f32(x, 1.0f); }

#if defined(__x86_64__) && XENT_VBYTES == 64 && defined(__AVX512F__)
/* 2^(j/16), j = 0..15: the float64 term exps' table (vexp_term_f64, vexp_sum_term_scaled_f64),
 * held in two registers and read by one two-source permute. */
static const double xent_exp2_sixteenths[16] = {
    0x1.0000000000000p+0, 0x1.0b5586cf9890fp+0, 0x1.172b83c7d517bp+0, 0x1.2387a6e756238p+0,
    0x1.306fe0a31b715p+0, 0x1.3dea64c123422p+0, 0x1.4bfdad5362a27p+0, 0x1.5ab07dd485429p+0,
    0x1.6a09e667f3bcdp+0, 0x1.7a11473eb0187p+0, 0x1.8ace5422aa0dbp+0, 0x1.9c49182a3f090p+0,
    0x1.ae89f995ad3adp+0, 0x1.c199bdd85529cp+0, 0x1.d5818dcfba487p+0, 0x1.ea4afa2a490dap+0,
};
static const double xent_inv_factorial[8] = {1.0,        1.0,         0.5,         1.0 / 6.0,
                                             1.0 / 24.0, 1.0 / 120.0, 1.0 / 720.0, 1.0 / 5040.0};

/* exp(s d), s > 0, d <= 0, by the table: s d = (16 k + j) ln2/16 + r, |r| <= ln2/32, exp(s d) =
 * 2^k * 2^(j/16) * exp(r), the table read by one two-source permute on the shifter's low four
 * bits, exp(r) by its Taylor polynomial of `degree`, 2^k by vscalef (which takes floor(K / 16)
 * = k, K / 16 being exact).  r = s d - K ln2/16 with ln2 in fdlibm's two parts (the high one has
 * 32 bits: K times it is exact), or with one_step in one multiply-add.  Lanes below the floor are
 * left out of vscalef by a zeroing mask (vexp_term_f64).  T[0] = 1 and p(0) = 1: exp(0) is 1.
 * Inlined with constant s, one_step and degree. */
XENT_INLINE vf64 vexp_sixteenths_f64(vf64 d, double s, int one_step, int degree)
{
    const __mmask8 kept = XENT_AT_OR_ABOVE_F64(d, XENT_EXP_TERM_FLOOR_F64 / s);
    const vf64 x = s * d;
    const double shifter = 6755399441055744.0;
    const vf64 shifted = d * (23.083120654223414 * s) + shifter; /* 16 / ln2 */
    /* K / 16 in one multiply-add, exactly (K + shifter is exact, and so is each step by 1/16):
     * vscalef's operand, and K ln2/16 = (K / 16) ln2 with the same products as K (ln2 / 16). */
    const vf64 k16 = (vf64)_mm512_fmsub_pd((__m512d)shifted, _mm512_set1_pd(0.0625),
                                           _mm512_set1_pd(shifter * 0.0625));
    vf64 r;
    if (one_step) {
        r = (vf64)_mm512_fnmadd_pd((__m512d)k16, _mm512_set1_pd(0.69314718055994530942), (__m512d)x);
    } else {
        r = x - k16 * 6.93147180369123816490e-01;
        r = r - k16 * 1.90821492927058770002e-10;
    }
    vf64 p = (vf64){0} + xent_inv_factorial[degree];
    for (int i = degree - 1; i >= 0; i--) p = p * r + xent_inv_factorial[i];
    const __m512d t = _mm512_permutex2var_pd(_mm512_loadu_pd(xent_exp2_sixteenths), (__m512i)shifted,
                                             _mm512_loadu_pd(xent_exp2_sixteenths + 8));
    return (vf64)_mm512_maskz_scalef_pd(kept, (__m512d)(p * (vf64)t), (__m512d)k16);
}
#endif

XENT_INLINE vf64 vexp_term_f64(vf64 x)
{
#if defined(__x86_64__) && XENT_VBYTES == 64 && defined(__AVX512F__)
    /* exp(r) by its degree-7 Taylor polynomial (truncation < 2e-18): six multiply-adds fewer than
     * the degree-13 form, 2 ulp at most (measured against libm over [-708, 0]). */
    return vexp_sixteenths_f64(x, 1.0, 0, 7);
#else
    x = vmax_f64((vf64){0} + XENT_EXP_TERM_CLAMP_F64, x);
    vu64 kbits;
    vf64 p = vexp_poly_f64(vexp_reduce_f64(x, &kbits));
    return p * (vf64)((kbits << 52) + (1023ull << 52));
#endif
}

/* vexp_term_f64 for terms that are only summed (forward passes), as vexp_sum_term_scaled_f32:
 * exp(s d), s > 0, with AVX2's FMA x - k ln2 in one step, one multiply-add fewer in the chain that
 * bounds the loop.  ln2 then carries its float64 rounding error, 2.3e-17 k: at most 2.4e-14
 * relative in the deepest terms (k near -1022), 1e-15 where k > -40; kept values take
 * vexp_term_f64.  AVX-512 has its own (vexp_term_f64).
 * The AVX2 form also takes a skip mask: 0 in its all-ones lanes (a term's share of a sum whose
 * exp(0) terms are counted apart: add_exp_term).  The mask clears 2^k, which is known
 * early, and 2^k is applied by one multiply-add, (exp(r) - 1) 2^k + 2^k: an add, a multiply and an
 * and-not fewer at the end of the chain that bounds the loop, and one rounding fewer. */
#if defined(__x86_64__) && XENT_VBYTES == 32 && defined(__FMA__)
#define XENT_HAVE_SUM_SHARE_F64 1
XENT_INLINE vf64 vexp_sum_share_scaled_f64(vf64 d, double s, vi64 skip)
{
    d = vmax_f64((vf64){0} + XENT_EXP_TERM_CLAMP_F64 / s, d);
    const vf64 x = s * d;
    const double shifter = 6755399441055744.0;
    vf64 kd = d * (1.4426950408889634074 * s) + shifter;
    const vu64 kbits = (vu64)kd;
    kd -= shifter;
    const vf64 r = (vf64)_mm256_fnmadd_pd((__m256d)kd, _mm256_set1_pd(0.69314718055994530942),
                                          (__m256d)x);
    const vf64 scale = (vf64)(~(vu64)skip & ((kbits << 52) + (1023ull << 52)));
    return (vf64)_mm256_fmadd_pd((__m256d)vexp_poly_m1_f64(r), (__m256d)scale, (__m256d)scale);
}
#endif

XENT_INLINE vf64 vexp_sum_term_scaled_f64(vf64 d, double s)
{
#if defined(__x86_64__) && XENT_VBYTES == 64 && defined(__AVX512F__)
    /* vexp_term_f64's table form with two multiply-adds fewer in the chain that bounds the
     * loop: x - K ln2/16 in one step (ln2/16's rounding error, 4.8e-18 K: at most 8e-14
     * relative in the deepest terms, 1e-15 where x > -10, as AVX2's one-step form), and exp(r)
     * on |r| <= ln2/32 by its degree-6 Taylor polynomial (truncation < 5e-16 relative). */
    return vexp_sixteenths_f64(d, s, 1, 6);
#elif defined(XENT_HAVE_SUM_SHARE_F64)
    return vexp_sum_share_scaled_f64(d, s, (vi64){0});
#else
    return vexp_term_f64(s * d);
#endif
}

XENT_INLINE vf64 vexp_sum_term_f64(vf64 x) { return vexp_sum_term_scaled_f64(x, 1.0); }

/* Float64 log of positive, normal, finite x within 1 ulp: fdlibm's e_log.c reduction
 * x = 2^e m, m in [sqrt(1/2), sqrt(2)), and its polynomial Lg1..Lg7 in s = (m-1)/(m+1). */
#define XENT_DEFINE_VLOG(name, VD, VI, VU)                                                         \
    XENT_INLINE VD name(VD x)                                                                      \
    {                                                                                              \
        VU bits = (VU)x;                                                                           \
        VI e = (VI)(bits >> 52) - 1023;                                                            \
        VD m = (VD)((bits & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);                       \
        VI big = m > 1.41421356237309504880;                                                       \
        m = (VD)((big & (VI)(m * 0.5)) | (~big & (VI)m));                                          \
        e = e - big; /* big is -1 where m was halved */                                           \
        /* e as double: 1.5 * 2^52 + e has e in its low mantissa bits. */                        \
        VD dk = (VD)((VU)(e + 0x4338000000000000ll)) - 6755399441055744.0;                        \
        VD f = m - 1.0;                                                                            \
        VD s = f / (f + 2.0);                                                                      \
        VD z = s * s, w = z * z;                                                                   \
        VD t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01 +                   \
                                                      w * 1.531383769920937332e-01));              \
        VD t2 = z * (6.666666666666735130e-01 +                                                    \
                     w * (2.857142874366239149e-01 +                                               \
                          w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));         \
        VD R = t2 + t1, hfsq = 0.5 * f * f;                                                        \
        return dk * 6.93147180369123816490e-01 -                                                   \
               ((hfsq - (s * (hfsq + R) + dk * 1.90821492927058770002e-10)) - f);                 \
    }

XENT_DEFINE_VLOG(vlog_f64, vf64, vi64, vu64)

/* Float32 log of positive, normal, finite x within 2 ulp, without a division: the same reduction
 * x = 2^e m, m in [sqrt(1/2), sqrt(2)), then Cephes logf's degree-9 polynomial in f = m - 1. */
XENT_INLINE vf32 vlog_f32(vf32 x)
{
    const vu32 bits = (vu32)x;
    vi32 e = (vi32)(bits >> 23) - 127;
    vf32 m = (vf32)((bits & 0x007FFFFFu) | 0x3F800000u);
    const vi32 big = m > 1.41421356f;
    m = vsel_f32(big, m * 0.5f, m);
    e = e - big; /* big is -1 where m was halved */
    const vf32 ef = __builtin_convertvector(e, vf32);
    const vf32 f = m - 1.0f, z = f * f;
    vf32 y = (vf32){0} + 7.0376836292e-2f;
    y = y * f - 1.1514610310e-1f;
    y = y * f + 1.1676998740e-1f;
    y = y * f - 1.2420140846e-1f;
    y = y * f + 1.4249322787e-1f;
    y = y * f - 1.6668057665e-1f;
    y = y * f + 2.0000714765e-1f;
    y = y * f - 2.4999993993e-1f;
    y = y * f + 3.3333331174e-1f;
    y = y * f * z + ef * -2.12194440e-4f - 0.5f * z;
    return (f + y) + ef * 0.693359375f;
}

XENT_INLINE float xent_exp_f32(float x)
{
    vf32 v = {x};
    return vexp_f32(v)[0];
}

XENT_INLINE double xent_exp_f64(double x)
{
    vf64 v = {x};
    return vexp_f64(v)[0];
}

#endif /* XENT_MATH_H */
