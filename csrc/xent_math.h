/* xent_math.h - exp in portable, branch-free C that GCC and Clang vectorise.
 *
 * libm's exp is a function call per element and never vectorises without -ffast-math (which we
 * refuse: it breaks inf/NaN).  These are the classic Cody-Waite reductions: x = k*ln2 + r with
 * |r| <= ln2/2, exp(r) by a polynomial, 2^k built from exponent bits.  2^k is applied in two
 * halves so that results in the subnormal range round correctly instead of flushing to zero.
 * Both keep IEEE semantics: exp(-inf) = 0, exp(+inf) = inf, exp(NaN) = NaN.
 */
#ifndef XENT_MATH_H
#define XENT_MATH_H

#include <stdint.h>
#include <string.h>

static inline float xent_f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
static inline uint32_t xent_bits_from_f32(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }
static inline double xent_f64_from_bits(uint64_t u) { double d; memcpy(&d, &u, sizeof d); return d; }
static inline uint64_t xent_bits_from_f64(double d) { uint64_t u; memcpy(&u, &d, sizeof u); return u; }

/* Float32 exp within 2 ulp: Cephes expf's polynomial on |r| <= ln2/2. */
static inline float xent_exp_f32(float x)
{
    /* Beyond these, exp(x) rounds to 0 or overflows to inf; clamping keeps k small.  A NaN fails
     * both comparisons and flows through to the result. */
    x = x < -104.0f ? -104.0f : x;
    x = x > 89.0f ? 89.0f : x;
    /* Adding 1.5 * 2^23 rounds x*log2(e) to an integer held in the low mantissa bits. */
    const float shifter = 12582912.0f;
    float kf = x * 1.44269504088896341f + shifter;
    int32_t k = (int32_t)(xent_bits_from_f32(kf) - 0x4B400000u);
    kf -= shifter;
    /* ln2 in two parts so that kf * ln2_hi is exact. */
    float r = x - kf * 0.693359375f;
    r = r - kf * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    int32_t k1 = k >> 1, k2 = k - k1;
    float s1 = xent_f32_from_bits((uint32_t)(k1 + 127) << 23);
    float s2 = xent_f32_from_bits((uint32_t)(k2 + 127) << 23);
    return p * s1 * s2;
}

/* Float64 exp within 1 ulp: Taylor polynomial of degree 13 on |r| <= ln2/2 (truncation < 5e-18). */
static inline double xent_exp_f64(double x)
{
    x = x < -746.0 ? -746.0 : x;
    x = x > 710.0 ? 710.0 : x;
    const double shifter = 6755399441055744.0; /* 1.5 * 2^52 */
    double kd = x * 1.4426950408889634074 + shifter;
    int64_t k = (int64_t)(xent_bits_from_f64(kd) - 0x4338000000000000ull);
    kd -= shifter;
    /* fdlibm's split of ln2: the high part has 32 bits, so kd * ln2_hi is exact. */
    double r = x - kd * 6.93147180369123816490e-01;
    r = r - kd * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;
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
    int64_t k1 = k >> 1, k2 = k - k1;
    double s1 = xent_f64_from_bits((uint64_t)(k1 + 1023) << 52);
    double s2 = xent_f64_from_bits((uint64_t)(k2 + 1023) << 52);
    return p * s1 * s2;
}

#endif /* XENT_MATH_H */
