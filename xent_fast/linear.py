"""Fused linear + cross-entropy: a large-vocabulary output layer without the N x V logits.

Shapes: input (..., D) -> N rows, linear_weight (V, D), linear_bias (V,), targets (...) class
indices or (..., V) probabilities.  Rows are taken ``chunk_size`` at a time::

    buf[:m]  = input[rows] @ W.T (+ b)            BLAS, into one preallocated (c, V) buffer
    buf[:m]  = d loss / d logits[rows]            cross_entropy_and_grad(..., out=buf[:m])
    grad_input[rows]  = buf[:m] @ W               BLAS
    grad_W  += buf[:m].T @ input[rows]            BLAS, in vocabulary blocks (see _add_product)
    grad_b  += ones(m) @ buf[:m]                  BLAS

No loss is computed here: each chunk is one call of the public cross-entropy kernel with
reduction='sum' (or 'none'), scaled by the mean's global denominator, so chunks add up to the
unchunked loss.  This module validates, allocates and routes.
"""
import operator

import numpy as np

from . import _validate as v
from .losses import cross_entropy, cross_entropy_and_grad

# chunk_size=None: the chunk's logits take at most this many bytes, unless that is < MIN_CHUNK_ROWS rows.
CHUNK_BYTES = 64 * 2**20
MIN_CHUNK_ROWS = 256


def default_chunk_size(n_rows, n_class, itemsize):
    """chunk_size=None: ``min(N, max(256, 64 MiB // (V * itemsize)))`` rows, at least 1."""
    rows = max(MIN_CHUNK_ROWS, CHUNK_BYTES // max(1, n_class * itemsize))
    return max(1, min(n_rows, rows))


def _chunk_rows(chunk_size, n_rows, n_class, itemsize):
    if chunk_size is None:
        return default_chunk_size(n_rows, n_class, itemsize)
    if isinstance(chunk_size, (bool, np.bool_)):
        raise TypeError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    try:
        chunk_size = operator.index(chunk_size)
    except TypeError:
        raise TypeError("chunk_size must be a positive integer or None, got "
                        f"{type(chunk_size).__name__}") from None
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size}")
    return max(1, min(n_rows, chunk_size))


def _operands(input, linear_weight, linear_bias):
    """(x as (N, D), batch shape, W, b) in one compute dtype, and the dtypes of the gradients
    (the operands' own, for half precision), or ValueError/TypeError."""
    x = v.storage_array(input, "input")
    w = v.storage_array(linear_weight, "linear_weight")
    b = None if linear_bias is None else v.storage_array(linear_bias, "linear_bias")
    # float16 / bfloat16 operands: NumPy has no BLAS product for them, so they are computed in
    # float32 (one float32 copy of each) and their gradients rounded back once at the end.
    grad_dtypes = tuple(None if a is None else (a.dtype if v.is_half(a.dtype) else None)
                        for a in (x, w, b))
    x, w = (v.kernel_readable(a.astype(np.float32)) if v.is_half(a.dtype) else a for a in (x, w))
    if b is not None and v.is_half(b.dtype):
        b = b.astype(np.float32)
    if x.ndim < 1:
        raise ValueError("input must have at least one dimension, the features (..., D)")
    if w.ndim != 2:
        raise ValueError(f"linear_weight must have shape (V, D), got {w.shape}")
    if w.shape[0] == 0:
        raise ValueError(f"linear_weight has no rows: there must be at least one class, "
                         f"got shape {w.shape}")
    if x.shape[-1] != w.shape[1]:
        raise ValueError(f"input's last axis ({x.shape[-1]}) must match linear_weight's second "
                         f"axis: input {x.shape}, linear_weight {w.shape} (V, D)")
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"linear_bias must have shape ({w.shape[0]},), one per row of "
                         f"linear_weight, got {b.shape}")
    # One promotion rule: the wider of the operands' float dtypes (NumPy's for float32/float64).
    dtype = np.result_type(*[a for a in (x, w, b) if a is not None])
    x, w = x.astype(dtype, copy=False), w.astype(dtype, copy=False)
    b = None if b is None else b.astype(dtype, copy=False)
    batch = x.shape[:-1]
    return x.reshape(-1, x.shape[-1]), batch, w, b, grad_dtypes


def _targets(targets, batch, n_class, dtype, ignore_index):
    """(index targets (N,) int64 or None, probabilities (N, V) or None), all indices checked."""
    t = np.asarray(targets)
    if t.shape == batch:
        if t.dtype.kind not in "iu":
            raise TypeError(
                f"targets of shape {t.shape} are class indices and must have an integer dtype, "
                f"got {t.dtype} (probability targets have shape {batch + (n_class,)})")
        bad = t != ignore_index
        bad &= (t < 0) | (t >= n_class)
        if bad.any():
            flat = int(np.argmax(bad.reshape(-1)))
            raise ValueError(
                f"targets holds class index {int(t.reshape(-1)[flat])} at position "
                f"{v.position(flat, batch)}, outside [0, {n_class}) and not "
                f"ignore_index={ignore_index}")
        return t.reshape(-1).astype(np.int64, copy=False), None
    if t.shape == batch + (n_class,):
        return None, v.as_dtype(t, dtype, "targets").reshape(-1, n_class)
    raise ValueError(
        f"targets must have shape {batch} (class indices) or {batch + (n_class,)} (class "
        f"probabilities) for input rows of shape {batch} and {n_class} classes; got "
        f"{t.shape}")


def _mean_denominator(index_t, n_rows, class_w, ignore_index, sample_w):
    """'mean''s divisor over all rows: sum of sample_weight * weight[t] over non-ignored rows
    (index targets), sum of sample_weight (probabilities); float64."""
    if index_t is None:
        return float(n_rows) if sample_w is None else float(np.sum(sample_w, dtype=np.float64))
    kept = index_t != ignore_index
    per_row = kept.astype(np.float64) if class_w is None else np.where(
        kept, class_w[np.where(kept, index_t, 0)], 0.0)
    if sample_w is not None:
        per_row = per_row * sample_w
    return float(np.sum(per_row))


def _add_product(acc, a_t, b, tmp, first):
    """acc (+)= a_t @ b with a_t = g.T (V, m), b (m, D), through tmp (k, D) in blocks of k rows.

    NumPy's matmul cannot accumulate (BLAS's beta), so later chunks' shares go through a staging
    block smaller than the logits buffer instead of a second (V, D) array.
    """
    if first:
        np.matmul(a_t, b, out=acc)
        return
    k = tmp.shape[0]
    for lo in range(0, acc.shape[0], k):
        hi = min(lo + k, acc.shape[0])
        part = tmp[:hi - lo]
        np.matmul(a_t[lo:hi], b, out=part)
        acc[lo:hi] += part


def _blas_limit(num_threads):
    """A context limiting BLAS to num_threads via threadpoolctl when it is installed."""
    if num_threads is not None:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            pass
        else:
            return threadpool_limits(limits=num_threads, user_api="blas")
    return _NoLimit()


class _NoLimit:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _linear_cross_entropy(want_grad, input, linear_weight, targets, linear_bias, weight,
                          ignore_index, reduction, label_smoothing, eps, z_loss, softcap,
                          logit_scale, sample_weight, chunk_size, num_threads, grad_loss):
    """Both public functions: validate everything, then the chunk loop."""
    x, batch, w_lin, b_lin, grad_dtypes = _operands(input, linear_weight, linear_bias)
    n_rows, n_class, dtype = x.shape[0], w_lin.shape[0], x.dtype
    ignore_index = v.integer_option(ignore_index, "ignore_index")
    index_t, prob_t = _targets(targets, batch, n_class, dtype, ignore_index)
    code = v.reduction_code(reduction)
    class_w = v.class_weight(weight, n_class)
    v.thread_count(num_threads)
    chunk = _chunk_rows(chunk_size, n_rows, n_class, dtype.itemsize)
    gl = None
    if want_grad:
        gl, _ = v.upstream_gradient(grad_loss, batch if code == 0 else ())
    sample_w = None
    if sample_weight is not None:
        sw = v.as_dtype(sample_weight, np.float64, "sample_weight")
        try:
            sample_w = np.broadcast_to(sw, batch).reshape(-1)
        except ValueError:
            raise ValueError(f"sample_weight of shape {sw.shape} does not broadcast to the "
                             f"targets' row shape {batch}") from None

    options = {"weight": class_w, "ignore_index": ignore_index, "label_smoothing": label_smoothing,
               "eps": eps, "z_loss": z_loss, "softcap": softcap, "logit_scale": logit_scale,
               "num_threads": num_threads}

    def rows_options(lo, hi):
        opts = dict(options)
        if sample_w is not None:
            opts["sample_weight"] = sample_w[lo:hi]
        return opts

    def rows_targets(lo, hi):
        return index_t[lo:hi] if index_t is not None else prob_t[lo:hi]

    # Every option is checked by the kernel's own validation on zero rows: nothing runs yet.
    cross_entropy(np.empty((0, n_class), dtype), rows_targets(0, 0),
                  reduction="sum", **rows_options(0, 0))

    # The chunks' reductions: 'sum' per chunk, scaled once by the global 'mean' denominator.
    scale = 1.0
    if code == 1:
        denom = _mean_denominator(index_t, n_rows, class_w, ignore_index, sample_w)
        scale = 1.0 / denom if denom != 0 else np.nan
    chunk_reduction = "none" if code == 0 else "sum"
    loss_rows = np.empty(n_rows, dtype) if code == 0 else None
    total = 0.0

    buf = np.empty((chunk, n_class), dtype)
    if want_grad:
        grad_x = np.empty(x.shape, dtype)
        grad_w = np.zeros(w_lin.shape, dtype)  # zeros for N = 0; else the first chunk sets it
        grad_b = None if b_lin is None else np.zeros(n_class, dtype)
        n_chunks = -(-n_rows // chunk)
        # The weight gradient's staging block: a quarter of the logits buffer (its products
        # keep >= c/4 x c x D shapes, large enough for BLAS), so the extra memory is 1.25 chunks.
        tmp_rows = max(1, min(n_class, (chunk * n_class) // (4 * max(1, x.shape[1]))))
        tmp_w = np.empty((tmp_rows, x.shape[1]), dtype) if n_chunks > 1 else None
        tmp_b = np.empty(n_class, dtype) if n_chunks > 1 and b_lin is not None else None
        ones = np.ones(chunk, dtype) if b_lin is not None else None  # grad_b = ones @ g (BLAS)
        if code != 0:
            gl_scalar = np.float64(gl[0] if gl is not None else 1.0) * scale

    with _blas_limit(num_threads):
        for lo in range(0, n_rows, chunk):
            hi = min(lo + chunk, n_rows)
            xc, logits = x[lo:hi], buf[:hi - lo]
            np.matmul(xc, w_lin.T, out=logits)
            if b_lin is not None:
                np.add(logits, b_lin, out=logits)
            opts = rows_options(lo, hi)
            if not want_grad:
                loss = cross_entropy(logits, rows_targets(lo, hi), reduction=chunk_reduction,
                                     **opts)
            else:
                gl_c = (gl[lo:hi] if gl is not None else None) if code == 0 else gl_scalar
                loss, _ = cross_entropy_and_grad(logits, rows_targets(lo, hi),
                                                 reduction=chunk_reduction, grad_loss=gl_c,
                                                 out=logits, **opts)
                np.matmul(logits, w_lin, out=grad_x[lo:hi])
                _add_product(grad_w, logits.T, xc, tmp_w, lo == 0)
                if b_lin is not None:
                    if lo == 0:
                        np.matmul(ones[:hi - lo], logits, out=grad_b)
                    else:
                        np.matmul(ones[:hi - lo], logits, out=tmp_b)
                        grad_b += tmp_b
            if code == 0:
                loss_rows[lo:hi] = loss
            else:
                total += float(loss)

    if code == 0:
        result = loss_rows.reshape(batch)
    else:
        result = dtype.type(total * scale)
    if not want_grad:
        return result
    grads = [grad_x.reshape(batch + (x.shape[1],)), grad_w, grad_b]
    grads = [g if half is None else g.astype(half) for g, half in zip(grads, grad_dtypes)]
    return (result,) + tuple(grads[:2]) + ((grads[2],) if b_lin is not None else ())


_PARAMS = """
    Parameters
    ----------
    input : array_like of shape (..., D)
        Hidden states, float32 or float64 (other real dtypes are computed in float64; float16 and
        bfloat16 operands in float32, their gradients returned in their own dtypes, rounded once,
        the weight's gradient accumulated in float32).
    linear_weight : array_like of shape (V, D)
        The output layer's weight: the logits are ``input @ linear_weight.T + linear_bias``.
    targets : array_like
        Class indices of shape ``input.shape[:-1]`` (integers), or class probabilities of shape
        ``input.shape[:-1] + (V,)``.
    linear_bias : array_like of shape (V,), optional
        The output layer's bias; none when None.
    weight, ignore_index, reduction, label_smoothing, eps
        As in :func:`xent_fast.cross_entropy` (class weights, ignored rows, 'mean'/'sum'/'none',
        smoothing, clipping); 'mean' divides by the sum over all rows, not per chunk.
    z_loss, softcap, logit_scale, sample_weight
        As in :func:`xent_fast.cross_entropy`; passed on only when not at their defaults (so
        they work exactly when :func:`xent_fast.cross_entropy` has them).  ``sample_weight``
        broadcasts to ``input.shape[:-1]``.
    chunk_size : int, optional
        Rows per chunk.  None: ``min(N, max(256, 64 MiB // (V * itemsize)))``, i.e. a chunk of
        logits of at most 64 MiB, but never fewer than 256 rows (BLAS needs rows to be fast).
        Results do not depend on it beyond rounding.
    num_threads : int, optional
        OpenMP threads of the cross-entropy kernel; with threadpoolctl installed it also limits
        NumPy's BLAS for the duration of the call (threadpoolctl is optional; without it BLAS
        keeps its own setting, e.g. OPENBLAS_NUM_THREADS).  BLAS and the kernel run one after
        the other, never at once."""

_MEMORY = """
    Memory besides the arguments and the results: one chunk of logits, ``c * V * itemsize``
    bytes (``c`` the chunk size; the gradient is written over it), and, with the gradient and
    more than one chunk, a staging block of at most a quarter of that for the weight gradient
    (NumPy's matmul cannot accumulate into its output) and a (V,) one for the bias: at most
    ``1.25 * c * V * itemsize`` in all.  Never the (N, V) logits."""


def linear_cross_entropy(input, linear_weight, targets, *, linear_bias=None, weight=None,
                         ignore_index=-100, reduction="mean", label_smoothing=0.0, eps=0.0,
                         z_loss=0.0, softcap=None, logit_scale=1.0, sample_weight=None,
                         chunk_size=None, num_threads=None):
    return _linear_cross_entropy(False, input, linear_weight, targets, linear_bias, weight,
                                 ignore_index, reduction, label_smoothing, eps, z_loss, softcap,
                                 logit_scale, sample_weight, chunk_size, num_threads, None)


linear_cross_entropy.__doc__ = """Cross-entropy of a linear layer's output, a chunk of rows at a time.

    The value of ``cross_entropy(input @ linear_weight.T + linear_bias, targets, ...)`` without
    ever holding the (N, V) logits: each chunk of rows gets its logits from one BLAS product into
    a reused buffer and its loss from one call of the fused cross-entropy kernel (reduction
    'sum' or 'none'; the chunks' float64 sums are added in order, each rounded once to the
    compute dtype).
    {MEMORY}
    {PARAMS}

    Returns
    -------
    loss : numpy scalar or ndarray
        In the compute dtype: a scalar for 'mean'/'sum', ``input.shape[:-1]`` for 'none'.

    Raises
    ------
    ValueError
        Before any work: shapes that do not fit together, a class index outside ``[0, V)``
        (naming its value and position), an option out of range, a bad ``chunk_size``.
    TypeError
        For non-numeric arrays, float class indices, a non-integer ``chunk_size``.

    Examples
    --------
    >>> import numpy as np, xent_fast
    >>> rng = np.random.default_rng(0)
    >>> h, W = rng.standard_normal((6, 4)), rng.standard_normal((10, 4))
    >>> t = np.array([1, 2, 3, 4, 5, 6])
    >>> bool(np.isclose(xent_fast.linear_cross_entropy(h, W, t, chunk_size=4),
    ...                 xent_fast.cross_entropy(h @ W.T, t)))
    True
    """.replace("{PARAMS}", _PARAMS).replace("{MEMORY}", _MEMORY)


def linear_cross_entropy_and_grad(input, linear_weight, targets, *, linear_bias=None,
                                  weight=None, ignore_index=-100, reduction="mean",
                                  label_smoothing=0.0, eps=0.0, z_loss=0.0, softcap=None,
                                  logit_scale=1.0, sample_weight=None, grad_loss=None,
                                  chunk_size=None, num_threads=None):
    return _linear_cross_entropy(True, input, linear_weight, targets, linear_bias, weight,
                                 ignore_index, reduction, label_smoothing, eps, z_loss, softcap,
                                 logit_scale, sample_weight, chunk_size, num_threads, grad_loss)


linear_cross_entropy_and_grad.__doc__ = """:func:`linear_cross_entropy` and its gradients, a chunk of rows at a time.

    Per chunk: the logits from one BLAS product, their gradient written over them by one call of
    :func:`xent_fast.cross_entropy_and_grad`, then ``grad_input[rows] = g @ linear_weight``,
    ``grad_linear_weight += g.T @ input[rows]`` and ``grad_linear_bias += ones @ g`` (BLAS).
    The weight and bias gradients are accumulated across chunks in the compute dtype (float32
    for float32 operands: each chunk's share is a full BLAS product, so the sum has as many
    terms as there are chunks).
    {MEMORY}
    {PARAMS}
    grad_loss : array_like, optional
        The upstream gradient, broadcastable to the loss's shape (a scalar for 'mean'/'sum');
        default 1.

    Returns
    -------
    loss : numpy scalar or ndarray
        As :func:`linear_cross_entropy`.
    grad_input : ndarray
        d(loss)/d(input), ``input``'s shape, in the compute dtype.
    grad_linear_weight : ndarray
        d(loss)/d(linear_weight), shape (V, D).
    grad_linear_bias : ndarray
        d(loss)/d(linear_bias), shape (V,); only when ``linear_bias`` is given.

    Raises
    ------
    ValueError, TypeError
        As :func:`linear_cross_entropy`, and for a bad ``grad_loss``.
    """.replace("{PARAMS}", _PARAMS).replace("{MEMORY}", _MEMORY)
