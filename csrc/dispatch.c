/* dispatch.c - the public entry points: choose the instruction set once, then forward.
 *
 * The wheel is built for plain x86-64; the AVX2 and AVX-512 variants of the same kernels are
 * called only where the CPU (and the OS, for the wider registers) supports them (cpu.c).
 * XENT_FAST_ISA forces a path, so tests can compare every path the machine has.  With the path
 * comes the tuning row (tuning.c) whose switch points the cross-entropy kernel follows.
 */
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

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
    int xent_softmax_rows_lse_f32_##isa(xent_dtype, xent_transform, const xent_shape *,           \
                                        const void *, const xent_strides *, void *,               \
                                        const xent_strides *, const double *, int);               \
    int xent_softmax_rows_lse_f64_##isa(xent_dtype, xent_transform, const xent_shape *,           \
                                        const void *, const xent_strides *, void *,               \
                                        const xent_strides *, const double *, int);               \
    int xent_shard_partials_f32_##isa(const xent_shard_problem *, xent_result *);                 \
    int xent_shard_partials_f64_##isa(const xent_shard_problem *, xent_result *);                 \
    int xent_shard_grad_f32_##isa(const xent_shard_problem *, xent_result *);                     \
    int xent_shard_grad_f64_##isa(const xent_shard_problem *, xent_result *);                     \
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
    int (*softmax_rows_lse[2])(xent_dtype, xent_transform, const xent_shape *, const void *,
                               const xent_strides *, void *, const xent_strides *, const double *,
                               int);
    int (*shard_partials[2])(const xent_shard_problem *, xent_result *);
    int (*shard_grad[2])(const xent_shard_problem *, xent_result *);
    int (*binary[2])(const xent_binary_problem *, xent_result *);
    void (*exp_f32)(int64_t, const float *, float *);
    void (*exp_f64)(int64_t, const double *, double *);
    const char *(*compiled_features)(void);
} isa_table;

#define ISA_TABLE(isa)                                                                             \
    {#isa,                                                                                         \
     {xent_cross_entropy_f32_##isa, xent_cross_entropy_f64_##isa},                                 \
     {xent_softmax_rows_f32_##isa, xent_softmax_rows_f64_##isa},                                   \
     {xent_softmax_rows_lse_f32_##isa, xent_softmax_rows_lse_f64_##isa},                           \
     {xent_shard_partials_f32_##isa, xent_shard_partials_f64_##isa},                               \
     {xent_shard_grad_f32_##isa, xent_shard_grad_f64_##isa},                                       \
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

#define N_TABLES ((int)(sizeof tables / sizeof tables[0]))

/* The best path this CPU runs: index into tables. */
static int best_supported(const xent_cpu_info *cpu)
{
#ifdef XENT_HAVE_X86_VARIANTS
    const unsigned f = cpu->features;
    const unsigned avx2 = 1u << XENT_CPU_AVX2 | 1u << XENT_CPU_FMA | 1u << XENT_CPU_F16C;
    const unsigned avx512 = avx2 | 1u << XENT_CPU_POPCNT | 1u << XENT_CPU_AVX512F |
                            1u << XENT_CPU_AVX512DQ | 1u << XENT_CPU_AVX512BW |
                            1u << XENT_CPU_AVX512VL;
    if ((f & avx512) == avx512) return 2;
    if ((f & avx2) == avx2) return 1;
#else
    (void)cpu;
#endif
    return 0;
}

static int table_index(const char *name, int best)
{
    for (int i = 0; i <= best; i++)
        if (name && strcmp(name, tables[i].name) == 0) return i;
    return -1;
}

/* Everything chosen at first use: the CPU, the path, the tuning row in force. */
static struct {
    xent_cpu_info cpu;
    int best, isa;
    xent_tuning tuning;
    const char *error;
    char error_text[512];
} config;

static void resolve(void)
{
    xent_cpu_identify(&config.cpu);
    const int best = best_supported(&config.cpu);
    /* XENT_FAST_ISA forces a path (the best the CPU has if it lacks that one); otherwise the
     * CPU's row may name the path to prefer. */
    const char *forced = getenv("XENT_FAST_ISA");
    int pick = best;
    if (forced && *forced) {
        for (int i = 0; i < N_TABLES; i++)
            if (strcmp(forced, tables[i].name) == 0) pick = i <= best ? i : best;
    } else {
        const xent_tuning *row = xent_tuning_lookup(&config.cpu, tables[best].name);
        const int preferred = table_index(row->prefer_isa, best);
        if (preferred >= 0) pick = preferred;
    }
    config.best = best;
    config.isa = pick;
    config.tuning = *xent_tuning_lookup(&config.cpu, tables[pick].name);
    config.error = NULL;
    const char *tune = getenv("XENT_FAST_TUNE");
    if (tune && *tune)
        config.error = xent_tuning_override(&config.tuning, tune, config.error_text,
                                            (int)sizeof config.error_text);
}

/* Resolved once.  Python resolves it at import, under the GIL; for other callers two threads
 * racing through the first call both compute the same values, and the flag is published after
 * them. */
static void ensure_resolved(void)
{
    static int done = 0;
#if defined(__GNUC__) || defined(__clang__)
    if (__atomic_load_n(&done, __ATOMIC_ACQUIRE)) return;
    resolve();
    __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
#else
    if (*(volatile int *)&done) return;
    resolve();
    *(volatile int *)&done = 1;
#endif
}

static const isa_table *active(void)
{
    ensure_resolved();
    return &tables[config.isa];
}

const char *xent_isa(void) { return active()->name; }

/* The kernels' element type for a storage type: half-width types are computed in float32. */
static int compute_type(xent_dtype dtype) { return dtype == XENT_F64 ? XENT_F64 : XENT_F32; }

const char *xent_isa_features(const char *isa)
{
    if (!isa) return active()->compiled_features();
    for (int i = 0; i < N_TABLES; i++)
        if (strcmp(isa, tables[i].name) == 0) return tables[i].compiled_features();
    return NULL;
}

const char *xent_isa_available(int i)
{
    ensure_resolved();
    return i >= 0 && i <= config.best ? tables[i].name : NULL;
}

const xent_cpu_info *xent_cpu(void)
{
    ensure_resolved();
    return &config.cpu;
}

const xent_tuning *xent_tuning_in_force(void)
{
    ensure_resolved();
    return &config.tuning;
}

const char *xent_config_error(void)
{
    ensure_resolved();
    return config.error;
}

int xent_default_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int xent_openmp_version(void)
{
#ifdef _OPENMP
    return _OPENMP;
#else
    return 0;
#endif
}

int xent_cross_entropy(const xent_problem *p, xent_result *res)
{
    const isa_table *t = active();
    if (config.error) return XENT_BAD_ARGUMENT;
    xent_problem tuned = *p;
    tuned.tuning = &config.tuning;
    return t->cross_entropy[compute_type(p->dtype)](&tuned, res);
}

int xent_softmax_rows(xent_dtype dtype, xent_transform what, const xent_shape *shape,
                      const void *x_data, const xent_strides *x, void *out_data,
                      const xent_strides *out, double *out_rows, int num_threads)
{
    const isa_table *t = active();
    if (config.error) return XENT_BAD_ARGUMENT;
    return t->softmax_rows[compute_type(dtype)](dtype, what, shape, x_data, x, out_data, out,
                                                out_rows, num_threads);
}

int xent_softmax_rows_lse(xent_dtype dtype, xent_transform what, const xent_shape *shape,
                          const void *x_data, const xent_strides *x, void *out_data,
                          const xent_strides *out, const double *lse_rows, int num_threads)
{
    const isa_table *t = active();
    if (config.error) return XENT_BAD_ARGUMENT;
    return t->softmax_rows_lse[compute_type(dtype)](dtype, what, shape, x_data, x, out_data, out,
                                                    lse_rows, num_threads);
}

int xent_shard_partials(const xent_shard_problem *p, xent_result *res)
{
    const isa_table *t = active();
    if (config.error) return XENT_BAD_ARGUMENT;
    xent_shard_problem tuned = *p;
    tuned.ce.tuning = &config.tuning;
    return t->shard_partials[compute_type(p->ce.dtype)](&tuned, res);
}

int xent_shard_grad(const xent_shard_problem *p, xent_result *res)
{
    const isa_table *t = active();
    if (config.error) return XENT_BAD_ARGUMENT;
    xent_shard_problem tuned = *p;
    tuned.ce.tuning = &config.tuning;
    return t->shard_grad[compute_type(p->ce.dtype)](&tuned, res);
}

int xent_binary(const xent_binary_problem *p, xent_result *res)
{
    const isa_table *t = active();
    if (config.error) return XENT_BAD_ARGUMENT;
    if (p->dtype != XENT_F32 && p->dtype != XENT_F64) return XENT_BAD_ARGUMENT;
    return t->binary[p->dtype](p, res);
}

void xent_exp(xent_dtype dtype, int64_t n, const void *in, void *out)
{
    if (dtype == XENT_F32) active()->exp_f32(n, (const float *)in, (float *)out);
    else active()->exp_f64(n, (const double *)in, (double *)out);
}
