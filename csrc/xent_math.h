/* xent_math.h - SIMD vectors and the exp/log the kernels vectorise with.
 *
 * Vectors are GCC/Clang vector extensions of XENT_VBYTES bytes (16 at baseline, 32 for AVX2, 64
 * for AVX-512, set by the isa_*.c file), so one source compiles to SSE2, AVX2 or AVX-512 code
 * under the target pragma of the file that includes it.  libm's exp and log are function calls
 * per element and never vectorise without -ffast-math, which we refuse (it breaks inf/NaN); these
 * are the classic Cody-Waite reductions with polynomials, branch-free, IEEE-clean:
 * exp(-inf) = 0, exp(+inf) = inf, exp(NaN) = NaN, subnormal results rounded, not flushed.
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
/* Float32 lanes widened to double: the accumulators of float32 sums. */
typedef double vf64w __attribute__((vector_size(2 * XENT_VBYTES)));
typedef int64_t vi64w __attribute__((vector_size(2 * XENT_VBYTES)));
typedef uint64_t vu64w __attribute__((vector_size(2 * XENT_VBYTES)));

#define VLEN_F32 ((int)(XENT_VBYTES / sizeof(float)))
#define VLEN_F64 ((int)(XENT_VBYTES / sizeof(double)))

#define XENT_INLINE static inline __attribute__((always_inline))

/* Lane-wise m ? a : b, with m a comparison result (all ones or zeros per lane). */
XENT_INLINE vf32 vsel_f32(vi32 m, vf32 a, vf32 b) { return (vf32)((m & (vi32)a) | (~m & (vi32)b)); }
XENT_INLINE vf64 vsel_f64(vi64 m, vf64 a, vf64 b) { return (vf64)((m & (vi64)a) | (~m & (vi64)b)); }

/* Float32 exp within 2 ulp: Cephes expf's polynomial on |r| <= ln2/2. */
XENT_INLINE vf32 vexp_f32(vf32 x)
{
    /* Beyond these exp(x) rounds to 0 or overflows; clamping keeps k small.  NaN fails both
     * comparisons and flows through to the result. */
    x = vsel_f32(x < -104.0f, (vf32){0} - 104.0f, x);
    x = vsel_f32(x > 89.0f, (vf32){0} + 89.0f, x);
    /* Adding 1.5 * 2^23 rounds x*log2(e) to an integer held in the low mantissa bits. */
    const float shifter = 12582912.0f;
    vf32 kf = x * 1.44269504088896341f + shifter;
    vi32 k = (vi32)((vu32)kf - 0x4B400000u);
    kf -= shifter;
    /* ln2 in two parts so that kf * ln2_hi is exact. */
    vf32 r = x - kf * 0.693359375f;
    r = r - kf * -2.12194440e-4f;
    vf32 p = (vf32){0} + 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    /* 2^k in two halves so that subnormal results round instead of flushing to zero. */
    vi32 k1 = k >> 1, k2 = k - k1;
    vf32 s1 = (vf32)((vu32)(k1 + 127) << 23);
    vf32 s2 = (vf32)((vu32)(k2 + 127) << 23);
    return p * s1 * s2;
}

/* Float64 exp within 1 ulp: Taylor polynomial of degree 13 on |r| <= ln2/2 (truncation < 5e-18). */
XENT_INLINE vf64 vexp_f64(vf64 x)
{
    x = vsel_f64(x < -746.0, (vf64){0} - 746.0, x);
    x = vsel_f64(x > 710.0, (vf64){0} + 710.0, x);
    const double shifter = 6755399441055744.0; /* 1.5 * 2^52 */
    vf64 kd = x * 1.4426950408889634074 + shifter;
    vi64 k = (vi64)((vu64)kd - 0x4338000000000000ull);
    kd -= shifter;
    /* fdlibm's split of ln2: the high part has 32 bits, so kd * ln2_hi is exact. */
    vf64 r = x - kd * 6.93147180369123816490e-01;
    r = r - kd * 1.90821492927058770002e-10;
    vf64 p = (vf64){0} + 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * (r * r) + r + 1.0;
    vi64 k1 = k >> 1, k2 = k - k1;
    vf64 s1 = (vf64)((vu64)(k1 + 1023) << 52);
    vf64 s2 = (vf64)((vu64)(k2 + 1023) << 52);
    return p * s1 * s2;
}

/* Float64 log of positive, normal, finite x within 1 ulp: fdlibm's e_log.c reduction
 * x = 2^e m, m in [sqrt(1/2), sqrt(2)), and its polynomial Lg1..Lg7 in s = (m-1)/(m+1).
 * Defined for both double vector widths (plain and float32-widened). */
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
XENT_DEFINE_VLOG(vlog_f64w, vf64w, vi64w, vu64w)

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
