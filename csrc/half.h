/* half.h - float16 and bfloat16 storage: conversions to and from float32, one element or a vector.
 *
 * Half-width rows are computed in float32 (docs/DESIGN.md, section 9), so these are all the
 * kernels need of them.  Both directions are exact where they can be and round to nearest even
 * where they must (float32 -> half); inf and NaN keep their meaning (a NaN stays a quiet NaN).
 * float16 uses the F16C instructions where the compilation has them (AVX2, AVX-512 variants),
 * bfloat16 is the top half of a float32 and needs only integer lanes.  Requires xent_math.h.
 */
#ifndef XENT_HALF_H
#define XENT_HALF_H

#include <stdint.h>
#include <string.h>

static inline float xent_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t xent_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float xent_bf16_to_f32(uint16_t h) { return xent_bits_f32((uint32_t)h << 16); }

static inline uint16_t xent_f32_to_bf16(float f)
{
    const uint32_t u = xent_f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

static inline float xent_f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    if (e == 0x1F) return xent_bits_f32(sign | 0x7F800000u | (m << 13)); /* inf, NaN */
    if (e != 0) return xent_bits_f32(sign | ((e + 112u) << 23) | (m << 13));
    /* zero or subnormal: m units of 2^-24, exact in float32 */
    const float v = (float)m * 0x1p-24f;
    return sign ? -v : v;
}

static inline uint16_t xent_f32_to_f16(float f)
{
    const uint32_t u = xent_f32_bits(f), sign = (u >> 16) & 0x8000u, a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return (uint16_t)(sign | 0x7E00u | ((a >> 13) & 0x3FFu)); /* NaN */
    if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u); /* 65520 and up round to inf */
    if (a >= 0x38800000u) {
        /* normal: rebias the exponent (127 - 15), round the 13 dropped bits to nearest even */
        const uint32_t r = a - 0x38000000u;
        return (uint16_t)(sign | ((r + 0xFFFu + ((r >> 13) & 1u)) >> 13));
    }
    if (a < 0x33000000u) return (uint16_t)sign; /* below 2^-25: rounds to zero */
    /* subnormal: the significand in units of 2^-24, rounded to nearest even */
    const uint32_t m = (a & 0x7FFFFFu) | 0x800000u, shift = 126u - (a >> 23);
    const uint32_t q = m >> shift, rest = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    return (uint16_t)(sign | (q + (rest > half || (rest == half && (q & 1u)))));
}

/* VLEN_F32 16-bit patterns, as one vector of half the width. */
typedef uint16_t vu16 __attribute__((vector_size(XENT_VBYTES / 2)));

XENT_INLINE vf32 vload_bf16(const uint16_t *p)
{
    /* One widening load where the ISA has it (the generic conversion compiles to two half-width
     * ones and a lane insert). */
#if defined(__x86_64__) && XENT_VBYTES == 64 && defined(__AVX512F__)
    return (vf32)(__m512i)_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16);
#elif defined(__x86_64__) && XENT_VBYTES == 32 && defined(__AVX2__)
    return (vf32)_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16);
#else
    vu16 h;
    memcpy(&h, p, sizeof h);
    return (vf32)(__builtin_convertvector(h, vu32) << 16);
#endif
}

XENT_INLINE void vstore_bf16(uint16_t *p, vf32 v)
{
    const vu32 u = (vu32)v;
    const vu32 rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    const vu32 quiet = (u >> 16) | 0x40u;
    const vu32 bits = (vu32)vsel_f32(v != v, (vf32)quiet, (vf32)rounded);
    const vu16 h = __builtin_convertvector(bits, vu16);
    memcpy(p, &h, sizeof h);
}

XENT_INLINE vf32 vload_f16(const uint16_t *p)
{
#if defined(__F16C__) && XENT_VBYTES == 64 && defined(__AVX512F__)
    return (vf32)_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
#elif defined(__F16C__) && XENT_VBYTES == 32
    return (vf32)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
#else
    vf32 v;
    for (int k = 0; k < VLEN_F32; k++) v[k] = xent_f16_to_f32(p[k]);
    return v;
#endif
}

XENT_INLINE void vstore_f16(uint16_t *p, vf32 v)
{
#if defined(__F16C__) && XENT_VBYTES == 64 && defined(__AVX512F__)
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtps_ph((__m512)v, _MM_FROUND_TO_NEAREST_INT));
#elif defined(__F16C__) && XENT_VBYTES == 32
    _mm_storeu_si128((__m128i *)p, _mm256_cvtps_ph((__m256)v, _MM_FROUND_TO_NEAREST_INT));
#else
    for (int k = 0; k < VLEN_F32; k++) p[k] = xent_f32_to_f16(v[k]);
#endif
}

#endif /* XENT_HALF_H */
