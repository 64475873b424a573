/* dispatch.c - the public entry points: choose the instruction set once, then forward.
 *
 * The wheel is built for plain x86-64; the AVX2 and AVX-512 variants of the same kernels are
 * called only where the CPU (and the OS, for the wider registers) supports them.  XENT_FAST_ISA
 * forces a path, so tests can compare every path the machine has.
 */
#include <stdlib.h>
#include <string.h>

#include "xent.h"

#define DECLARE_ISA(isa)                                                                           \
    int xent_cross_entropy_f32_##isa(const xent_problem *, xent_result *);                        \
    int xent_cross_entropy_f64_##isa(const xent_problem *, xent_result *);                        \
    int xent_softmax_rows_f32_##isa(xent_dtype, xent_transform, const xent_shape *, const void *, \
                                    const xent_strides *, void *, const xent_strides *, double *, \
                                    int);                                                         \
    int xent_softmax_rows_f64_##isa(xent_dtype, xent_transform, const xent_shape *, const void *, \
                                    const xent_strides *, void *, const xent_strides *, double *, \
                                    int);                                                         \
    int xent_binary_f32_##isa(const xent_binary_problem *, xent_result *);                        \
    int xent_binary_f64_##isa(const xent_binary_problem *, xent_result *);                        \
    void xent_exp_f32_##isa(int64_t, const float *, float *);                                     \
    void xent_exp_f64_##isa(int64_t, const double *, double *);                                   \
    const char *xent_compiled_features_##isa(void);

DECLARE_ISA(baseline)
#if defined(__x86_64__) || defined(_M_X64)
#define XENT_HAVE_X86_VARIANTS 1
DECLARE_ISA(avx2)
DECLARE_ISA(avx512)
#endif

typedef struct {
    const char *name;
    int (*cross_entropy[2])(const xent_problem *, xent_result *);
    int (*softmax_rows[2])(xent_dtype, xent_transform, const xent_shape *, const void *,
                           const xent_strides *, void *, const xent_strides *, double *, int);
    int (*binary[2])(const xent_binary_problem *, xent_result *);
    void (*exp_f32)(int64_t, const float *, float *);
    void (*exp_f64)(int64_t, const double *, double *);
    const char *(*compiled_features)(void);
} isa_table;

#define ISA_TABLE(isa)                                                                             \
    {#isa,                                                                                         \
     {xent_cross_entropy_f32_##isa, xent_cross_entropy_f64_##isa},                                 \
     {xent_softmax_rows_f32_##isa, xent_softmax_rows_f64_##isa},                                   \
     {xent_binary_f32_##isa, xent_binary_f64_##isa},                                               \
     xent_exp_f32_##isa,                                                                           \
     xent_exp_f64_##isa,                                                                           \
     xent_compiled_features_##isa}

static const isa_table tables[] = {
    ISA_TABLE(baseline),
#ifdef XENT_HAVE_X86_VARIANTS
    ISA_TABLE(avx2),
    ISA_TABLE(avx512),
#endif
};

#ifdef XENT_HAVE_X86_VARIANTS
#include <cpuid.h>
/* F16C (CPUID leaf 1, ECX bit 29): __builtin_cpu_supports does not name it in every GCC. */
static int cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;
}
#endif

/* The best path this CPU runs: index into tables. */
static int best_supported(void)
{
#ifdef XENT_HAVE_X86_VARIANTS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("popcnt") && __builtin_cpu_supports("fma") && cpu_has_f16c())
        return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c()) return 1;
#endif
    return 0;
}

static const isa_table *active(void)
{
    /* A benign race: every thread computes the same answer. */
    static volatile int chosen = -1;
    if (chosen < 0) {
        int best = best_supported(), pick = best;
        const char *forced = getenv("XENT_FAST_ISA");
        if (forced) {
            for (int i = 0; i < (int)(sizeof tables / sizeof tables[0]); i++)
                if (strcmp(forced, tables[i].name) == 0) pick = i <= best ? i : best;
        }
        chosen = pick;
    }
    return &tables[chosen];
}

const char *xent_isa(void) { return active()->name; }

/* The kernels' element type for a storage type: half-width types are computed in float32. */
static int compute_type(xent_dtype dtype) { return dtype == XENT_F64 ? XENT_F64 : XENT_F32; }

const char *xent_isa_features(const char *isa)
{
    if (!isa) return active()->compiled_features();
    for (int i = 0; i < (int)(sizeof tables / sizeof tables[0]); i++)
        if (strcmp(isa, tables[i].name) == 0) return tables[i].compiled_features();
    return NULL;
}

int xent_cross_entropy(const xent_problem *p, xent_result *res)
{
    return active()->cross_entropy[compute_type(p->dtype)](p, res);
}

int xent_softmax_rows(xent_dtype dtype, xent_transform what, const xent_shape *shape,
                      const void *x_data, const xent_strides *x, void *out_data,
                      const xent_strides *out, double *out_rows, int num_threads)
{
    return active()->softmax_rows[compute_type(dtype)](dtype, what, shape, x_data, x, out_data,
                                                       out, out_rows, num_threads);
}

int xent_binary(const xent_binary_problem *p, xent_result *res)
{
    if (p->dtype != XENT_F32 && p->dtype != XENT_F64) return XENT_BAD_ARGUMENT;
    return active()->binary[p->dtype](p, res);
}

void xent_exp(xent_dtype dtype, int64_t n, const void *in, void *out)
{
    if (dtype == XENT_F32) active()->exp_f32(n, (const float *)in, (float *)out);
    else active()->exp_f64(n, (const double *)in, (double *)out);
}
