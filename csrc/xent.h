/* xent.h - the C API of xent_fast's kernels.
 *
 * Plain C99 + OpenMP, no Python headers: every entry point takes pointers, int64 sizes and strides
 * counted in elements (not bytes), and a problem struct; it returns a status code and, for a bad
 * class index, the first bad row.  Three kernel families:
 *
 *   xent_cross_entropy  rows of classes -> one loss per row (+ gradient): cross-entropy from logits,
 *                       nll_loss from log-probabilities, categorical cross-entropy from probabilities
 *   xent_softmax_rows   rows of classes -> logsumexp, log_softmax or softmax
 *   xent_binary         elements -> binary cross-entropy on probabilities or on logits (+ gradient)
 *
 * and the vocabulary-shard building blocks of cross-entropy (xent_shard_partials and the functions
 * after it), for rows whose classes are split over several arrays, machines or processes.
 *
 * Arrays are seen as rows of classes: the class axis (stride s_class) and the other axes, the "row
 * axes" (row_shape, strides s_row), in C order.  Row r is the r-th multi-index over the row axes,
 * so any NumPy layout with the class axis anywhere (strided, reversed, broadcast) maps onto it
 * without a copy, and per-row outputs come out in C order.
 */
#ifndef XENT_H
#define XENT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Storage types.  float16 (IEEE binary16) and bfloat16 are stored as 16-bit patterns and computed
 * in float32: their rows are staged into float32 blocks in cache, so the float32 kernels serve them
 * (docs/DESIGN.md, section 9). */
typedef enum { XENT_F32 = 0, XENT_F64 = 1, XENT_F16 = 2, XENT_BF16 = 3 } xent_dtype;

typedef enum { XENT_REDUCE_NONE = 0, XENT_REDUCE_MEAN = 1, XENT_REDUCE_SUM = 2 } xent_reduction;

/* What a row holds; it decides how the row becomes log-probabilities l_j. */
typedef enum {
    XENT_LOGITS = 0,    /* l_j = x_j - logsumexp(x) */
    XENT_LOG_PROBS = 1, /* l_j = x_j                */
    XENT_PROBS = 2      /* l_j = log(x_j)           */
} xent_input;

typedef enum {
    XENT_OK = 0,
    XENT_BAD_TARGET = 1, /* a class index outside [0, n_class) that is not ignore_index */
    XENT_NO_MEMORY = 2,
    XENT_BAD_ARGUMENT = 3
} xent_status;

typedef enum { XENT_LOGSUMEXP = 0, XENT_LOG_SOFTMAX = 1, XENT_SOFTMAX = 2 } xent_transform;

#define XENT_MAX_DIMS 64

/* The cross-entropy kernel's switches for one CPU and instruction set: a row of tuning.c's table.
 * Rows are keyed by what the CPU says about itself, never by timings taken at run time, so one
 * machine always gives the same bits. */
typedef struct {
    const char *name;            /* e.g. "amd-zen4-avx512"; "default-..." for an unknown CPU */
    /* key: NULL / -1 match anything */
    const char *vendor;          /* cpuid vendor string: "AuthenticAMD", "GenuineIntel" */
    int family, model_lo, model_hi; /* displayed family, inclusive model range */
    const char *isa;             /* the path the values are for: "baseline", "avx2", "avx512" */
    /* values */
    const char *prefer_isa;      /* the path to run on this CPU, or NULL for the widest it has */
    int64_t across_f32;          /* the across-rows loop up to this many classes (float32) ... */
    int64_t across_grad_f32;     /* ... and with a gradient written to rows (row stride != 1) */
    int64_t across_f64;
    int64_t across_grad_f64;
    int64_t prefetch_row_max_bytes; /* rows longer than a batch prefetched up to this size */
    const char *source;          /* where the numbers come from (a CSV under bench/tuning/) */
} xent_tuning;

typedef struct {
    int64_t n_class;
    int n_row_dims;
    int64_t row_shape[XENT_MAX_DIMS];
} xent_shape;

/* Strides in elements of one array over that shape; s_class is unused for per-row arrays. */
typedef struct {
    int64_t s_class;
    int64_t s_row[XENT_MAX_DIMS];
} xent_strides;

/* One cross-entropy call.  Logits u are first mapped row by row to z = logit_scale * u and, with
 * softcap > 0, z = softcap * tanh(z / softcap); l = log_softmax(z) (or the log-probs given, or the
 * log of the probs given), then loss_i = sw_i * (-sum_j a_ij * c(l_ij) + z_loss * lse_i^2), with c
 * the clip to [log(eps), log1p(-eps)], a_ij the smoothed, weighted target coefficients, sw_i the
 * row's sample weight and lse_i = logsumexp(z_i); an ignored row's loss is 0 (docs/DESIGN.md,
 * section 2). */
typedef struct {
    xent_dtype dtype;            /* x's storage type; probability targets y are in the compute type
                                    (float32 for float16 / bfloat16 x) */
    xent_input input;
    xent_shape shape;
    const void *x_data;          /* IN  logits, log-probs or probs */
    xent_strides x;
    const int64_t *target;       /* IN  class index per row, or NULL with probability targets */
    xent_strides t;
    const void *y_data;          /* IN  probability targets, compute type, or NULL */
    xent_strides y;
    const double *weight;        /* IN  n_class class weights, or NULL for ones */
    int64_t ignore_index;
    double label_smoothing;      /* in [0, 1] */
    double eps;                  /* in [0, 0.5): clip probabilities to [eps, 1 - eps] */
    xent_reduction reduction;
    const double *grad_loss;     /* IN  upstream gradient: grad_loss[r * grad_loss_stride], */
    int64_t grad_loss_stride;    /*     stride 0 for one scalar; NULL means 1               */
    void *g_data;                /* OUT gradient, x's shape, or NULL; may be x itself */
    xent_dtype g_dtype;          /*     its storage type: x's, or float32 for float16 / bfloat16 x */
    xent_strides g;
    double *loss_rows;           /* OUT per-row loss, N contiguous (reduction none), or NULL */
    double logit_scale;          /* logits only: 1 for none */
    double softcap;              /* logits only: > 0, or 0 for none */
    double z_loss;               /* logits only: >= 0 */
    const double *sample_weight; /* IN  one weight per row (strides sw.s_row), or NULL for ones */
    xent_strides sw;
    double *lse_rows;            /* OUT per-row logsumexp(z), N contiguous, or NULL (logits only) */
    int num_threads;             /* <= 0: OpenMP's default */
    int g_new;                   /* 1: g_data was just allocated, no page of it written yet (the
                                    OS zeroes a page where it is first written, which leaves its
                                    lines in cache); 0: a large gradient may be stored past the
                                    caches (docs/DESIGN.md, "Stores past the caches") */
    const xent_tuning *tuning;   /* set by xent_cross_entropy (the row in force); NULL: the
                                    path's default row */
} xent_problem;

typedef struct {
    double loss;      /* the reduced loss (mean / sum); NaN for reduction none */
    int64_t bad_row;  /* XENT_BAD_TARGET: the first bad row, and its value */
    int64_t bad_value;
} xent_result;

int xent_cross_entropy(const xent_problem *p, xent_result *res);

/* logsumexp writes one double per row into out_rows (N contiguous); log_softmax and softmax write
 * x's dtype into out_data with view out (which may alias x exactly); float16 and bfloat16 rows are
 * computed in float32. */
int xent_softmax_rows(xent_dtype dtype, xent_transform what, const xent_shape *shape,
                      const void *x_data, const xent_strides *x, void *out_data,
                      const xent_strides *out, double *out_rows, int num_threads);

/* Vocabulary shards (docs/DESIGN.md, section 13).  The V classes of every row are split into shards;
 * a shard holds the global classes [class_start, class_start + V_k).  With z = map(u) the mapped
 * logits, a_j cross_entropy's target coefficients and M the row's max, loss_i = sw_i * (B_i
 * log_sum_i - D_i + z_loss lse_i^2), lse_i = M_i + log_sum_i, B_i = sum_j a_ij, D_i = sum_j a_ij
 * (z_ij - M_i): relative to the max, so that a confident row's loss keeps its relative precision
 * (log_sum = log1p(rest) as in the unsharded kernel).  Each shard reports per row XENT_N_PARTIALS
 * doubles (rows contiguous, C order of the row shape), which combine exactly (up to rounding) and
 * associatively into those of the whole row: */
enum {
    XENT_P_MAX = 0,           /* m = max_j z_j over the shard (-inf if all -inf) */
    XENT_P_ONES = 1,          /* the exp(0) terms: how many z_j equal m (0 when m is +-inf) */
    XENT_P_REST = 2,          /* sum of exp(z_j - m) over the other z_j (0 when m is -inf, +inf
                                 when it is +inf, NaN with a NaN) */
    XENT_P_DOT = 3,           /* sum_j a_j (z_j - m), terms with a_j = 0 left out (sum_j a_j z_j,
                                 -inf or 0, when m is -inf) */
    XENT_P_COEF = 4,          /* B over the shard's classes */
    XENT_P_TARGET_WEIGHT = 5, /* the row's share of the mean's denominator, from one shard only:
                                 w[t] from the shard holding t; 1 from the shard holding class 0
                                 with probability targets */
    XENT_P_COUNTED = 6,       /* 1 if the row is not ignored, from the shard holding class 0 */
    XENT_N_PARTIALS = 7
};
/* Fields DOT to COUNTED are 0 for an ignored row and without targets.  eps clipping has no shard
 * form (it needs the whole row's lse inside the pass): ce.eps must be 0. */
typedef struct {
    xent_problem ce;        /* the shard as a cross-entropy problem over its ce.shape.n_class = V_k
                               classes: x (input XENT_LOGITS), target (global class indices) or y
                               (the shard's probability targets) or neither, weight (all
                               num_classes of them, or NULL), ignore_index, label_smoothing,
                               logit_scale, softcap, num_threads; for the gradient also g, g_dtype,
                               z_loss, sample_weight, reduction and grad_loss.  eps must be 0;
                               loss_rows and lse_rows are not used. */
    int64_t class_start;    /* the shard's first global class */
    int64_t num_classes;    /* V, the classes of a whole row */
    double *partials;       /* OUT (xent_shard_partials) N x XENT_N_PARTIALS */
    const double *total;    /* IN  (xent_shard_grad) the combined partials of every shard */
    double denominator;     /* IN  (xent_shard_grad, reduction mean) the mean's denominator */
} xent_shard_problem;

/* A shard's partials; XENT_BAD_TARGET for a class index outside [0, num_classes) that is not
 * ignore_index (res as xent_cross_entropy's). */
int xent_shard_partials(const xent_shard_problem *p, xent_result *res);
/* A shard's gradient, the same as xent_cross_entropy's would be on its classes:
 * g_ij = r_i ((B_i + 2 z_loss lse_i) exp(z_ij - lse_i) - a_ij) dz/du_ij, r_i the row's sample
 * weight times the upstream gradient (divided by the denominator for mean), 0 for a row not
 * counted.  Every class index is checked before anything is written. */
int xent_shard_grad(const xent_shard_problem *p, xent_result *res);
/* out = the combination of n_parts arrays of partials of the same n_rows rows (out may be one of
 * them). */
void xent_partials_combine(int64_t n_rows, int n_parts, const double *const *parts, double *out);
/* Each row's lse = max + log(ones + rest) (log1p(rest) when ones = 1). */
void xent_partials_lse(int64_t n_rows, const double *partials, double *lse);
/* sum_i sw_i * target_weight_i (sample_weight: n_rows contiguous, or NULL for ones). */
double xent_partials_denominator(int64_t n_rows, const double *partials,
                                 const double *sample_weight);
/* The loss of combined partials: per row into loss_rows (or NULL), the sum returned for
 * XENT_REDUCE_SUM, the sum / denominator for XENT_REDUCE_MEAN (NaN when it is 0), NaN for none. */
double xent_partials_finish(int64_t n_rows, const double *partials, double z_loss,
                            const double *sample_weight, xent_reduction reduction,
                            double denominator, double *loss_rows);
/* log_softmax (z - lse) or softmax (exp(z - lse)) of a shard's rows given their lse_rows (N
 * contiguous): xent_softmax_rows's outputs with the whole row's log-sum-exp. */
int xent_softmax_rows_lse(xent_dtype dtype, xent_transform what, const xent_shape *shape,
                          const void *x_data, const xent_strides *x, void *out_data,
                          const xent_strides *out, const double *lse_rows, int num_threads);

/* Binary cross-entropy over n contiguous elements.  weight: n elements or NULL; pos_weight (with
 * logits only): n_pos elements repeating along the flat index, or NULL. */
typedef struct {
    xent_dtype dtype;
    int with_logits;
    int64_t n;
    const void *x_data;          /* IN  probabilities or logits */
    const void *y_data;          /* IN  targets, x's dtype */
    const void *weight;          /* IN  x's dtype, n elements, or NULL */
    const void *pos_weight;      /* IN  x's dtype, n_pos elements, or NULL */
    int64_t n_pos;
    double eps;                  /* probabilities only */
    xent_reduction reduction;
    const double *grad_loss;
    int64_t grad_loss_stride;
    void *g_data;                /* OUT gradient, n contiguous elements, or NULL */
    double *loss_elems;          /* OUT per-element loss (reduction none), or NULL */
    int num_threads;
} xent_binary_problem;

int xent_binary(const xent_binary_problem *p, xent_result *res);

/* The instruction set the kernels run with: "baseline", "avx2" or "avx512".  XENT_FAST_ISA in the
 * environment forces one at first use (a path the CPU lacks falls back to the best it has). */
const char *xent_isa(void);

/* The instruction-set features a path was compiled with (" sse2 avx2 fma f16c ..."), as its
 * compiler's predefined macros said, so that the path named is known to be the path compiled: isa
 * names a path ("baseline", "avx2", "avx512"; NULL: the active one).  Only reports, never runs the
 * path, so it answers for paths this CPU lacks; NULL for a path not built (or not known). */
const char *xent_isa_features(const char *isa);

/* The paths this CPU runs, narrowest first: "baseline", then "avx2", "avx512" where supported;
 * NULL past the last. */
const char *xent_isa_available(int i);

/* What cpuid says about this CPU (cpu.c): the vendor string, the brand string, family and model
 * as displayed (extended fields folded in) and the features the dispatch uses, each set only where
 * the OS saves its registers too.  Off x86-64: vendor "unknown", family/model -1, no features. */
enum {
    XENT_CPU_SSE2, XENT_CPU_POPCNT, XENT_CPU_AVX, XENT_CPU_FMA, XENT_CPU_F16C, XENT_CPU_AVX2,
    XENT_CPU_AVX512F, XENT_CPU_AVX512DQ, XENT_CPU_AVX512BW, XENT_CPU_AVX512VL
};
typedef struct {
    char vendor[13];
    char brand[49];
    int family, model, stepping;
    unsigned features;           /* bit XENT_CPU_* */
} xent_cpu_info;

void xent_cpu_identify(xent_cpu_info *cpu);
const char *xent_cpu_feature_name(int bit); /* "avx2", ...; NULL past the last */
const xent_cpu_info *xent_cpu(void);        /* this CPU, identified once */

/* The tuning table (tuning.c): row i, NULL past the last; the first row matching a CPU (NULL:
 * only the CPU-independent default rows match) and a path. */
const xent_tuning *xent_tuning_row(int i);
const xent_tuning *xent_tuning_lookup(const xent_cpu_info *cpu, const char *isa);
/* Applies a measuring override "key=value,..." (XENT_FAST_TUNE) to *t: keys row (a table row's
 * name), across_f32, across_grad_f32, across_f64, across_grad_f64, prefetch_row_max_bytes.
 * Returns NULL, or a message (in err) naming the bad part; *t is then unchanged. */
const char *xent_tuning_override(xent_tuning *t, const char *spec, char *err, int err_len);

/* The row in force, picked once at first use from the CPU and the path (with XENT_FAST_TUNE's
 * overrides), and NULL or the message of a bad XENT_FAST_TUNE: then every kernel call returns
 * XENT_BAD_ARGUMENT. */
const xent_tuning *xent_tuning_in_force(void);
const char *xent_config_error(void);
/* OpenMP's default thread count (1 without OpenMP) and its _OPENMP date (0 without). */
int xent_default_threads(void);
int xent_openmp_version(void);

/* The vectorised exp helper over n elements, for testing its accuracy. */
void xent_exp(xent_dtype dtype, int64_t n, const void *in, void *out);

#ifdef __cplusplus
}
#endif

#endif /* XENT_H */
