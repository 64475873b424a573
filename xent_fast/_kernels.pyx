# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Binding of csrc/xent.h: fills the C structs from validated arrays, calls with the GIL released.

No maths and no validation here: xent_fast._api hands over arrays whose dtypes, shapes and element
strides it has already checked.  Shapes are (n_class, row_shape); strides are (s_class, s_row)
tuples counted in elements.
"""
import os

from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
cimport numpy as cnp

cnp.import_array()

cdef extern from "xent.h" nogil:
    enum: XENT_MAX_DIMS

    ctypedef enum xent_dtype:
        XENT_F32
        XENT_F64
        XENT_F16
        XENT_BF16
    ctypedef enum xent_reduction:
        XENT_REDUCE_NONE
        XENT_REDUCE_MEAN
        XENT_REDUCE_SUM
    ctypedef enum xent_input:
        XENT_LOGITS
        XENT_LOG_PROBS
        XENT_PROBS
    ctypedef enum xent_transform:
        XENT_LOGSUMEXP
        XENT_LOG_SOFTMAX
        XENT_SOFTMAX

    ctypedef struct xent_shape:
        int64_t n_class
        int n_row_dims
        int64_t row_shape[XENT_MAX_DIMS]

    ctypedef struct xent_strides:
        int64_t s_class
        int64_t s_row[XENT_MAX_DIMS]

    ctypedef struct xent_tuning:
        const char *name
        const char *vendor
        int family
        int model_lo
        int model_hi
        const char *isa
        const char *prefer_isa
        int64_t across_f32
        int64_t across_grad_f32
        int64_t across_f64
        int64_t across_grad_f64
        int64_t prefetch_row_max_bytes
        const char *source

    ctypedef struct xent_cpu_info:
        char vendor[13]
        char brand[49]
        int family
        int model
        int stepping
        unsigned features

    ctypedef struct xent_problem:
        xent_dtype dtype
        xent_input input
        xent_shape shape
        const void *x_data
        xent_strides x
        const int64_t *target
        xent_strides t
        const void *y_data
        xent_strides y
        const double *weight
        int64_t ignore_index
        double label_smoothing
        double eps
        xent_reduction reduction
        const double *grad_loss
        int64_t grad_loss_stride
        void *g_data
        xent_dtype g_dtype
        xent_strides g
        double *loss_rows
        double logit_scale
        double softcap
        double z_loss
        const double *sample_weight
        xent_strides sw
        double *lse_rows
        int num_threads
        int g_new

    ctypedef struct xent_result:
        double loss
        int64_t bad_row
        int64_t bad_value

    enum:
        XENT_P_MAX
        XENT_P_ONES
        XENT_P_REST
        XENT_P_DOT
        XENT_P_COEF
        XENT_P_TARGET_WEIGHT
        XENT_P_COUNTED
        XENT_N_PARTIALS

    ctypedef struct xent_shard_problem:
        xent_problem ce
        int64_t class_start
        int64_t num_classes
        double *partials
        const double *total
        double denominator

    ctypedef struct xent_binary_problem:
        xent_dtype dtype
        int with_logits
        int64_t n
        const void *x_data
        const void *y_data
        const void *weight
        const void *pos_weight
        int64_t n_pos
        double eps
        xent_reduction reduction
        const double *grad_loss
        int64_t grad_loss_stride
        void *g_data
        double *loss_elems
        int num_threads

    int xent_cross_entropy(const xent_problem *p, xent_result *res)
    int xent_softmax_rows(xent_dtype dtype, xent_transform what, const xent_shape *shape,
                          const void *x_data, const xent_strides *x, void *out_data,
                          const xent_strides *out, double *out_rows, int num_threads)
    int xent_binary(const xent_binary_problem *p, xent_result *res)
    int xent_shard_partials(const xent_shard_problem *p, xent_result *res)
    int xent_shard_grad(const xent_shard_problem *p, xent_result *res)
    void xent_partials_combine(int64_t n_rows, int n_parts, const double *const *parts,
                               double *out)
    void xent_partials_lse(int64_t n_rows, const double *partials, double *lse)
    double xent_partials_denominator(int64_t n_rows, const double *partials,
                                     const double *sample_weight)
    double xent_partials_finish(int64_t n_rows, const double *partials, double z_loss,
                                const double *sample_weight, xent_reduction reduction,
                                double denominator, double *loss_rows)
    int xent_softmax_rows_lse(xent_dtype dtype, xent_transform what, const xent_shape *shape,
                              const void *x_data, const xent_strides *x, void *out_data,
                              const xent_strides *out, const double *lse_rows, int num_threads)
    const char *xent_isa()
    const char *xent_isa_features(const char *isa)
    const char *xent_isa_available(int i)
    const xent_cpu_info *xent_cpu()
    const char *xent_cpu_feature_name(int bit)
    const xent_tuning *xent_tuning_row(int i)
    const xent_tuning *xent_tuning_in_force()
    const char *xent_config_error()
    int xent_default_threads()
    int xent_openmp_version()
    void xent_exp(xent_dtype dtype, int64_t n, const void *inp, void *out)


MAX_DIMS = XENT_MAX_DIMS
# The fields of a row of vocabulary-shard partials, in their order (csrc/xent.h, XENT_P_*).
PARTIAL_FIELDS = (XENT_P_MAX, XENT_P_ONES, XENT_P_REST, XENT_P_DOT, XENT_P_COEF,
                  XENT_P_TARGET_WEIGHT, XENT_P_COUNTED)
N_PARTIALS = XENT_N_PARTIALS
# The CPU, the path and the tuning row are chosen here, once, under the GIL (csrc/dispatch.c),
# from these variables as they are now.
xent_isa()
ENVIRONMENT = {name: os.environ.get(name) for name in ("XENT_FAST_ISA", "XENT_FAST_TUNE")}


# The "rows" view of arrays: a class axis plus row axes, strides in elements, no copy.  The
# kernels walk rows in C order over the row axes (every axis but the class axis).  Adjacent row
# axes that every array steps through as one (stride of the outer = size * stride of the inner)
# are merged, and axes of length 1 dropped, so the common layouts reach the kernels as a single
# row axis.  Computed here, not in Python: it runs on every call, and small calls feel it.
cdef enum:
    MAX_LAYOUT_ARRAYS = 8


def element_strides(cnp.ndarray arr):
    """arr's strides counted in elements (the caller checked that they are whole elements)."""
    cdef int d, nd = cnp.PyArray_NDIM(arr)
    cdef cnp.npy_intp size = cnp.PyArray_ITEMSIZE(arr)
    cdef cnp.npy_intp *st = cnp.PyArray_STRIDES(arr)
    return tuple([st[d] // size for d in range(nd)])


def rows_layout(tuple shape, Py_ssize_t axis, list strides_list):
    """Describe arrays of `shape` (class axis `axis`) for the kernels.

    Parameters
    ----------
    shape : tuple of int
        The full shape, class axis included.
    axis : int
        The class axis, non-negative.
    strides_list : list of tuple of int
        Element strides of each array over the full shape (0 on the class axis for arrays that
        have one value per row, such as class-index targets).

    Returns
    -------
    n_class : int
    row_shape : tuple of int
    strides : list of (s_class, row_strides) tuples, one per array
    """
    cdef Py_ssize_t n_dims = len(shape), n_arrays = len(strides_list), d, a, kept = 0
    cdef int64_t sizes[XENT_MAX_DIMS]
    cdef int64_t row[MAX_LAYOUT_ARRAYS][XENT_MAX_DIMS]
    cdef int64_t size
    cdef bint merge
    if n_arrays > MAX_LAYOUT_ARRAYS or n_dims > XENT_MAX_DIMS:
        raise ValueError(f"rows_layout takes at most {MAX_LAYOUT_ARRAYS} arrays of at most "
                         f"{XENT_MAX_DIMS} dimensions")
    n_class = shape[axis]
    for d in range(n_dims):
        size = shape[d]
        if d == axis or size == 1:
            continue
        if size == 0:
            return n_class, (0,), [(s[axis], (0,)) for s in strides_list]
        # Axis d merges into the previous kept one when every array steps through both as one.
        merge = kept > 0
        for a in range(n_arrays):
            if merge and row[a][kept - 1] != size * <int64_t>strides_list[a][d]:
                merge = False
        if merge:
            sizes[kept - 1] *= size
        else:
            sizes[kept] = size
            kept += 1
        for a in range(n_arrays):
            row[a][kept - 1] = strides_list[a][d]
    return (n_class, tuple([sizes[d] for d in range(kept)]),
            [(strides_list[a][axis], tuple([row[a][d] for d in range(kept)]))
             for a in range(n_arrays)])


cdef inline int check_config() except -1:
    """Raise the message of a bad XENT_FAST_TUNE (the kernels refuse to run with it)."""
    cdef const char *err = xent_config_error()
    if err != NULL:
        raise ValueError(err.decode("utf-8", "replace"))
    return 0


cdef inline void *data_or_null(object arr):
    if arr is None:
        return NULL
    return cnp.PyArray_DATA(<cnp.ndarray>arr)


cdef void fill_shape(xent_shape *shape, int64_t n_class, tuple row_shape):
    shape.n_class = n_class
    shape.n_row_dims = len(row_shape)
    for d in range(len(row_shape)):
        shape.row_shape[d] = row_shape[d]


cdef void fill_strides(xent_strides *s, tuple strides):
    s.s_class = strides[0]
    row = strides[1]
    for d in range(len(row)):
        s.s_row[d] = row[d]


cdef int fill_problem(xent_problem *p, int dtype, int input_kind, int64_t n_class,
                      tuple row_shape, x, tuple x_strides, target, tuple t_strides, y,
                      tuple y_strides, weight, int64_t ignore_index, double label_smoothing,
                      double eps, int reduction, grad_loss, int64_t grad_loss_stride, g,
                      int g_dtype, tuple g_strides, loss_rows, double logit_scale, double softcap,
                      double z_loss, sample_weight, tuple sw_strides, lse_rows,
                      int num_threads) except -1:
    """An xent_problem from the arguments of cross_entropy (below)."""
    p.dtype = <xent_dtype>dtype
    p.input = <xent_input>input_kind
    fill_shape(&p.shape, n_class, row_shape)
    p.x_data = data_or_null(x)
    fill_strides(&p.x, x_strides)
    p.target = <const int64_t *>data_or_null(target)
    fill_strides(&p.t, t_strides)
    p.y_data = data_or_null(y)
    fill_strides(&p.y, y_strides)
    p.weight = <const double *>data_or_null(weight)
    p.ignore_index = ignore_index
    p.label_smoothing = label_smoothing
    p.eps = eps
    p.reduction = <xent_reduction>reduction
    p.grad_loss = <const double *>data_or_null(grad_loss)
    p.grad_loss_stride = grad_loss_stride
    p.g_data = data_or_null(g)
    p.g_dtype = <xent_dtype>g_dtype
    fill_strides(&p.g, g_strides)
    p.loss_rows = <double *>data_or_null(loss_rows)
    p.logit_scale = logit_scale
    p.softcap = softcap
    p.z_loss = z_loss
    p.sample_weight = <const double *>data_or_null(sample_weight)
    fill_strides(&p.sw, sw_strides)
    p.lse_rows = <double *>data_or_null(lse_rows)
    p.num_threads = num_threads
    p.g_new = 0
    return 0


def cross_entropy(int dtype, int input_kind, int64_t n_class, tuple row_shape,
                  x, tuple x_strides, target, tuple t_strides, y, tuple y_strides,
                  weight, int64_t ignore_index, double label_smoothing, double eps,
                  int reduction, grad_loss, int64_t grad_loss_stride,
                  g, int g_dtype, tuple g_strides, loss_rows, double logit_scale, double softcap,
                  double z_loss, sample_weight, tuple sw_strides, lse_rows, int num_threads,
                  bint g_new=False):
    """Run xent_cross_entropy; returns (status, loss, bad_row, bad_value).  g_new: g was just
    allocated (xent_problem.g_new)."""
    cdef xent_problem p
    cdef xent_result res
    cdef int status
    fill_problem(&p, dtype, input_kind, n_class, row_shape, x, x_strides, target, t_strides, y,
                 y_strides, weight, ignore_index, label_smoothing, eps, reduction, grad_loss,
                 grad_loss_stride, g, g_dtype, g_strides, loss_rows, logit_scale, softcap, z_loss,
                 sample_weight, sw_strides, lse_rows, num_threads)
    p.g_new = g_new
    check_config()
    with nogil:
        status = xent_cross_entropy(&p, &res)
    return status, res.loss, res.bad_row, res.bad_value


def shard_partials(int dtype, int64_t n_class, tuple row_shape, x, tuple x_strides, target,
                   tuple t_strides, y, tuple y_strides, weight, int64_t ignore_index,
                   double label_smoothing, double logit_scale, double softcap,
                   int64_t class_start, int64_t num_classes, partials, int num_threads):
    """Run xent_shard_partials into partials (N x N_PARTIALS contiguous float64); returns
    (status, bad_row, bad_value)."""
    cdef xent_shard_problem sp
    cdef xent_result res
    cdef int status
    fill_problem(&sp.ce, dtype, XENT_LOGITS, n_class, row_shape, x, x_strides, target, t_strides,
                 y, y_strides, weight, ignore_index, label_smoothing, 0.0, XENT_REDUCE_NONE, None,
                 0, None, dtype, (0, ()), None, logit_scale, softcap, 0.0, None, (0, ()), None,
                 num_threads)
    sp.class_start = class_start
    sp.num_classes = num_classes
    sp.partials = <double *>data_or_null(partials)
    sp.total = NULL
    sp.denominator = 0.0
    check_config()
    with nogil:
        status = xent_shard_partials(&sp, &res)
    return status, res.bad_row, res.bad_value


def shard_grad(int dtype, int64_t n_class, tuple row_shape, x, tuple x_strides, target,
               tuple t_strides, y, tuple y_strides, weight, int64_t ignore_index,
               double label_smoothing, int reduction, grad_loss, int64_t grad_loss_stride, g,
               int g_dtype, tuple g_strides, double logit_scale, double softcap, double z_loss,
               sample_weight, tuple sw_strides, int64_t class_start, int64_t num_classes, total,
               double denominator, int num_threads):
    """Run xent_shard_grad into g given the combined partials total (N x N_PARTIALS contiguous
    float64); returns (status, bad_row, bad_value)."""
    cdef xent_shard_problem sp
    cdef xent_result res
    cdef int status
    fill_problem(&sp.ce, dtype, XENT_LOGITS, n_class, row_shape, x, x_strides, target, t_strides,
                 y, y_strides, weight, ignore_index, label_smoothing, 0.0, reduction, grad_loss,
                 grad_loss_stride, g, g_dtype, g_strides, None, logit_scale, softcap, z_loss,
                 sample_weight, sw_strides, None, num_threads)
    sp.class_start = class_start
    sp.num_classes = num_classes
    sp.partials = NULL
    sp.total = <const double *>data_or_null(total)
    sp.denominator = denominator
    check_config()
    with nogil:
        status = xent_shard_grad(&sp, &res)
    return status, res.bad_row, res.bad_value


def partials_combine(list parts, out):
    """Run xent_partials_combine over contiguous float64 partials of the same rows into out."""
    cdef int k, n_parts = len(parts)
    cdef int64_t n_rows = cnp.PyArray_SIZE(<cnp.ndarray>out) // XENT_N_PARTIALS
    cdef double *op = <double *>data_or_null(out)
    cdef const double **ptrs = <const double **>malloc(max(n_parts, 1) * sizeof(double *))
    if ptrs == NULL:
        raise MemoryError("xent_fast could not allocate the partials' pointers")
    try:
        for k in range(n_parts):
            ptrs[k] = <const double *>data_or_null(parts[k])
        with nogil:
            xent_partials_combine(n_rows, n_parts, ptrs, op)
    finally:
        free(ptrs)


def partials_lse(partials, lse):
    """Run xent_partials_lse: contiguous float64 partials into lse (one per row)."""
    cdef int64_t n_rows = cnp.PyArray_SIZE(<cnp.ndarray>lse)
    cdef const double *pp = <const double *>data_or_null(partials)
    cdef double *lp = <double *>data_or_null(lse)
    with nogil:
        xent_partials_lse(n_rows, pp, lp)


def partials_denominator(partials, sample_weight):
    """Run xent_partials_denominator (sample_weight: one float64 per row, contiguous, or None)."""
    cdef int64_t n_rows = cnp.PyArray_SIZE(<cnp.ndarray>partials) // XENT_N_PARTIALS
    return xent_partials_denominator(n_rows, <const double *>data_or_null(partials),
                                     <const double *>data_or_null(sample_weight))


def partials_finish(partials, double z_loss, sample_weight, int reduction, double denominator,
                    loss_rows):
    """Run xent_partials_finish; returns the reduced loss (NaN for reduction none)."""
    cdef int64_t n_rows = cnp.PyArray_SIZE(<cnp.ndarray>partials) // XENT_N_PARTIALS
    cdef const double *pp = <const double *>data_or_null(partials)
    cdef const double *swp = <const double *>data_or_null(sample_weight)
    cdef double *lp = <double *>data_or_null(loss_rows)
    cdef double loss
    with nogil:
        loss = xent_partials_finish(n_rows, pp, z_loss, swp, <xent_reduction>reduction,
                                    denominator, lp)
    return loss


def softmax_rows(int dtype, int what, int64_t n_class, tuple row_shape, x, tuple x_strides,
                 out, tuple out_strides, out_rows, int num_threads):
    """Run xent_softmax_rows (what: 0 logsumexp, 1 log_softmax, 2 softmax); returns the status."""
    cdef xent_shape shape
    cdef xent_strides xs, os
    cdef int status
    cdef const void *xp = data_or_null(x)
    cdef void *op = data_or_null(out)
    cdef double *rp = <double *>data_or_null(out_rows)
    fill_shape(&shape, n_class, row_shape)
    fill_strides(&xs, x_strides)
    fill_strides(&os, out_strides)
    check_config()
    with nogil:
        status = xent_softmax_rows(<xent_dtype>dtype, <xent_transform>what, &shape, xp, &xs,
                                   op, &os, rp, num_threads)
    return status


def softmax_rows_lse(int dtype, int what, int64_t n_class, tuple row_shape, x, tuple x_strides,
                     out, tuple out_strides, lse_rows, int num_threads):
    """Run xent_softmax_rows_lse (what: 1 log_softmax, 2 softmax) given each row's log-sum-exp
    (contiguous float64); returns the status."""
    cdef xent_shape shape
    cdef xent_strides xs, os
    cdef int status
    cdef const void *xp = data_or_null(x)
    cdef void *op = data_or_null(out)
    cdef const double *lp = <const double *>data_or_null(lse_rows)
    fill_shape(&shape, n_class, row_shape)
    fill_strides(&xs, x_strides)
    fill_strides(&os, out_strides)
    check_config()
    with nogil:
        status = xent_softmax_rows_lse(<xent_dtype>dtype, <xent_transform>what, &shape, xp, &xs,
                                       op, &os, lp, num_threads)
    return status


def binary(int dtype, int with_logits, x, y, weight, pos_weight, double eps, int reduction,
           grad_loss, int64_t grad_loss_stride, g, loss_elems, int num_threads):
    """Run xent_binary over contiguous arrays; returns (status, loss)."""
    cdef xent_binary_problem p
    cdef xent_result res
    cdef int status
    p.dtype = <xent_dtype>dtype
    p.with_logits = with_logits
    p.n = cnp.PyArray_SIZE(<cnp.ndarray>x)
    p.x_data = data_or_null(x)
    p.y_data = data_or_null(y)
    p.weight = data_or_null(weight)
    p.pos_weight = data_or_null(pos_weight)
    p.n_pos = 1 if pos_weight is None else cnp.PyArray_SIZE(<cnp.ndarray>pos_weight)
    p.eps = eps
    p.reduction = <xent_reduction>reduction
    p.grad_loss = <const double *>data_or_null(grad_loss)
    p.grad_loss_stride = grad_loss_stride
    p.g_data = data_or_null(g)
    p.loss_elems = <double *>data_or_null(loss_elems)
    p.num_threads = num_threads
    check_config()
    with nogil:
        status = xent_binary(&p, &res)
    return status, res.loss


def isa():
    """The instruction set the kernels run with: 'baseline', 'avx2' or 'avx512'."""
    return xent_isa().decode("ascii")


def isa_features(isa=None):
    """The features path `isa` (None: the active one) was compiled with, e.g. ['sse2', 'avx2'];
    None for a path that was not built."""
    cdef bytes name
    cdef const char *found
    if isa is None:
        found = xent_isa_features(NULL)
    else:
        name = isa.encode("ascii")
        found = xent_isa_features(name)
    return None if found == NULL else found.decode("ascii").split()


def exp(int dtype, x, out):
    """The kernels' vectorised exp over contiguous x into out (for accuracy tests)."""
    cdef int64_t n = cnp.PyArray_SIZE(<cnp.ndarray>x)
    cdef const void *xp = data_or_null(x)
    cdef void *op = data_or_null(out)
    with nogil:
        xent_exp(<xent_dtype>dtype, n, xp, op)


cdef str text(const char *s):
    return None if s == NULL else s.decode("utf-8", "replace")


cdef dict tuning_dict(const xent_tuning *t):
    return {"name": text(t.name), "vendor": text(t.vendor), "family": t.family,
            "model_lo": t.model_lo, "model_hi": t.model_hi, "isa": text(t.isa),
            "prefer_isa": text(t.prefer_isa), "across_f32": t.across_f32,
            "across_grad_f32": t.across_grad_f32, "across_f64": t.across_f64,
            "across_grad_f64": t.across_grad_f64,
            "prefetch_row_max_bytes": t.prefetch_row_max_bytes, "source": text(t.source)}


def config():
    """The CPU, the paths and the tuning row in force (raises on a bad XENT_FAST_TUNE)."""
    check_config()
    cdef const xent_cpu_info *cpu = xent_cpu()
    features = []
    cdef int bit = 0
    while xent_cpu_feature_name(bit) != NULL:
        if (cpu.features >> bit) & 1:
            features.append(text(xent_cpu_feature_name(bit)))
        bit += 1
    available = []
    cdef int i = 0
    while xent_isa_available(i) != NULL:
        available.append(text(xent_isa_available(i)))
        i += 1
    return {"vendor": text(cpu.vendor), "brand": text(cpu.brand), "family": cpu.family,
            "model": cpu.model, "stepping": cpu.stepping, "features": features,
            "isa": text(xent_isa()), "isa_available": available,
            "tuning": tuning_dict(xent_tuning_in_force()),
            "default_threads": xent_default_threads(), "openmp": xent_openmp_version()}


def tuning_rows():
    """Every row of the tuning table (csrc/tuning.c), in lookup order."""
    rows = []
    cdef int i = 0
    while xent_tuning_row(i) != NULL:
        rows.append(tuning_dict(xent_tuning_row(i)))
        i += 1
    return rows
