"""Plain NumPy reference of xent_fast: the executable specification.

Every public function of :mod:`xent_fast` is defined here again, with the same
signature, written for clarity instead of speed. The compiled kernels are tested
against these functions, and this file is the place to read when you want to
know exactly what a function computes (``docs/DESIGN.md`` explains how the
kernels compute the same formulas).

How every function here works:

* inputs are converted to their *compute dtype* (float32 stays float32, float64
  stays float64, every other real numeric dtype becomes float64; complex,
  object and string arrays are a TypeError), then to float64, in which all
  arithmetic is done; results are cast back to the compute dtype.  The
  cross-entropy and softmax families also take float16 and bfloat16
  (``ml_dtypes.bfloat16``) logits: computed in float32 (their values are exact
  there), losses and log-sum-exps in float32, gradients and softmax outputs in
  the input's dtype (or a float32 ``out=``);
* the class axis is moved to the end (``np.moveaxis``), so a "row" is
  ``x[..., :]`` and holds the C class scores of one sample;
* the losses of the cross-entropy family are written with per-class
  *coefficients* ``a[..., j]`` (see :func:`_class_problem`)::

      loss_i = -sum_j a_ij * logp_ij        (a term with a_ij == 0 is 0)

  where ``logp`` is the (clipped) log-probability. For class-index targets
  ``a_ij = (1 - s) * w[t_i] * [j == t_i] + (s / C) * w[j]`` (0 for an ignored
  row), for probability targets ``a_ij = w[j] * ((1 - s) * y_ij + s / C)``;
  expanding the sum gives the formulas of the public functions' docstrings;
* ``num_threads`` is accepted and ignored.
"""

import numbers
import operator

import numpy as np

__all__ = [
    "cross_entropy",
    "cross_entropy_and_grad",
    "nll_loss",
    "log_softmax",
    "softmax",
    "logsumexp",
    "categorical_cross_entropy",
    "categorical_cross_entropy_and_grad",
    "binary_cross_entropy",
    "binary_cross_entropy_and_grad",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_and_grad",
    "linear_cross_entropy",
    "linear_cross_entropy_and_grad",
    "shard_partials",
    "combine_partials",
    "partials_lse",
    "mean_denominator",
    "finish_partials",
    "shard_grad",
    "shard_log_softmax",
    "shard_softmax",
]

_REDUCTIONS = ("mean", "sum", "none")


# ---------------------------------------------------------------------------
# Validation and conversion
# ---------------------------------------------------------------------------

def _is_half(dtype):
    """float16 or bfloat16 (ml_dtypes' dtype, known by its name)."""
    return dtype.itemsize == 2 and dtype.name in ("float16", "bfloat16")


def _compute_dtype(dtype, name, half=False):
    """The dtype rule: float32/float64 are kept, other real numbers -> float64 (float16 and
    bfloat16 -> float32 where ``half``)."""
    if half and _is_half(np.dtype(dtype)):
        return np.dtype(np.float32)
    if dtype == np.float32 or dtype == np.float64:
        return np.dtype(dtype)
    if dtype == np.bool_ or np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating):
        return np.dtype(np.float64)
    raise TypeError(f"{name} must be a real numeric array, got dtype {dtype}")


def _as_float(x, name, dtype=None, half=False):
    """Return ``(x as a new float64 array, compute dtype)``.

    The values are first rounded to the compute dtype (or to ``dtype`` when
    given), so a float32 input is computed from exactly its float32 values.
    ``half``: float16 and bfloat16 compute in float32.
    """
    x = np.asarray(x)
    compute = _compute_dtype(x.dtype, name, half)
    if dtype is not None:
        compute = np.dtype(dtype)
    return x.astype(compute).astype(np.float64), compute


def _check_reduction(reduction):
    if not (isinstance(reduction, str) and reduction in _REDUCTIONS):
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _check_real(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    return float(value)


def _check_eps(eps):
    eps = _check_real(eps, "eps")
    if not 0.0 <= eps < 0.5:
        raise ValueError(f"eps must be in [0, 0.5), got {eps!r}")
    return eps


def _check_label_smoothing(label_smoothing):
    s = _check_real(label_smoothing, "label_smoothing")
    if not 0.0 <= s <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    return s


def _check_ignore_index(ignore_index):
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"ignore_index must be an integer, got {ignore_index!r}")
    return int(ignore_index)


def _check_axis(axis, ndim):
    """Return ``axis`` as a non-negative int in ``[0, ndim)``."""
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"axis must be an integer, got {axis!r}") from None
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for an array with {ndim} dimensions")
    return axis % ndim


def _check_axes(axis, ndim):
    """Return ``axis`` (None: all, an int, a tuple of ints) as a sorted tuple of distinct axes
    in ``[0, ndim)``; a 0-d array takes axis 0 or -1 and reduces nothing, as in NumPy."""
    if axis is None:
        return tuple(range(ndim))
    axes = [_check_axis(a, max(ndim, 1)) for a in (axis if isinstance(axis, tuple) else (axis,))]
    if len(set(axes)) != len(axes):
        raise ValueError(f"axis {axis!r} names an axis twice")
    return tuple(sorted(a for a in axes if a < ndim))


def _check_out(out, shape, dtype, also=None):
    """``out=`` must be a writable ndarray of the result's shape and dtype (or ``also``)."""
    if out is None:
        return
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"out has shape {out.shape}, expected {tuple(shape)}")
    if out.dtype != dtype and (also is None or out.dtype != also):
        raise ValueError(f"out has dtype {out.dtype}, expected {dtype}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")


def _class_weight(weight, C):
    """Per-class weights as float64 of shape (C,); ones when None."""
    if weight is None:
        return np.ones(C)
    w, _ = _as_float(weight, "weight")
    if w.shape != (C,):
        raise ValueError(f"weight must have shape ({C},) (one per class), got {w.shape}")
    return w


def _broadcast_weight(weight, shape, name):
    """An elementwise weight broadcast to ``shape`` (it must not enlarge it)."""
    if weight is None:
        return np.ones(shape)
    w, _ = _as_float(weight, name)
    try:
        ok = np.broadcast_shapes(w.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name} of shape {w.shape} does not broadcast to the input shape {tuple(shape)}")
    return np.broadcast_to(w, shape)


def _position(index):
    return "targets" if index == () else f"targets[{', '.join(str(int(i)) for i in index)}]"


def _index_targets(targets, C, ignore_index):
    """Check class-index targets; return ``(t as intp, ignored mask)``.

    ``t`` is 0 on ignored rows so that it can be used to index.
    """
    if not np.issubdtype(targets.dtype, np.integer):
        raise TypeError(
            f"targets with the input's shape minus the class axis hold class indices and "
            f"must have an integer dtype, got {targets.dtype}")
    ignored = targets == ignore_index
    bad = ~ignored & ((targets < 0) | (targets >= C))
    if bad.any():
        where = tuple(np.argwhere(bad)[0])
        raise ValueError(f"{_position(where)} = {targets[where]} is outside [0, {C})")
    t = np.where(ignored, 0, targets).astype(np.intp)
    return t, ignored


# ---------------------------------------------------------------------------
# The class-axis problem: rows, coefficients, mean denominator
# ---------------------------------------------------------------------------

class _ClassProblem:
    """A validated class-axis loss problem (see :func:`_class_problem`)."""

    def __init__(self, x, a, ignored, denom, dtype, axis, shape, storage):
        self.x = x              # float64 input, class axis last, shape (..., C)
        self.a = a              # float64 coefficients a_ij, shape (..., C)
        self.ignored = ignored  # bool, shape (...): rows with t_i == ignore_index
        self.denom = denom      # the "mean" denominator
        self.dtype = dtype      # compute dtype
        self.axis = axis        # the class axis of the caller's array (non-negative)
        self.shape = shape      # the caller's array shape
        self.storage = storage  # the gradient's dtype: the input's for float16/bfloat16
        self.t = None           # class indices (0 on ignored rows), or None
        self.w = None           # class weights


def _class_problem(x, targets, axis, weight, ignore_index, label_smoothing, name, index_only=False):
    """Validate a class-axis loss problem and build its coefficients.

    Returns a :class:`_ClassProblem`. With ``w`` the class weights, ``s`` the
    label smoothing and ``C`` the number of classes:

    * class-index targets ``t``: ``a_ij = (1 - s) * w[t_i] * [j == t_i] + (s / C) * w[j]``,
      ``a_i = 0`` for an ignored row, and the mean denominator is
      ``sum_i w[t_i]`` over the rows that are not ignored;
    * probability targets ``y``: ``a_ij = w[j] * ((1 - s) * y_ij + s / C)`` and
      the mean denominator is the number of rows.
    """
    storage = np.asarray(x).dtype
    x, dtype = _as_float(x, name, half=True)
    storage = storage if _is_half(storage) else dtype
    axis = _check_axis(axis, x.ndim)
    ignore_index = _check_ignore_index(ignore_index)
    s = _check_label_smoothing(label_smoothing)
    shape = x.shape
    C = shape[axis]
    if C == 0:
        raise ValueError(f"{name} has an empty class axis (axis {axis}): there must be at least one class")
    w = _class_weight(weight, C)
    x = np.moveaxis(x, axis, -1)
    row_shape = x.shape[:-1]

    targets = np.asarray(targets)
    if targets.shape == row_shape:
        t, ignored = _index_targets(targets, C, ignore_index)
        onehot = (np.arange(C) == t[..., None])
        a = (1.0 - s) * w[t][..., None] * onehot + (s / C) * w
        a[ignored] = 0.0
        denom = w[t][~ignored].sum()
        index_t = t
    elif targets.shape == shape and not index_only:
        y, _ = _as_float(targets, "targets", dtype=dtype)
        y = np.moveaxis(y, axis, -1)
        a = w * ((1.0 - s) * y + s / C)
        ignored = np.zeros(row_shape, dtype=bool)
        denom = float(np.prod(row_shape))
        index_t = None
    else:
        expected = f"{row_shape} (class indices)"
        if not index_only:
            expected += f" or {shape} (class probabilities)"
        raise ValueError(f"targets have shape {targets.shape}, expected {expected}")
    pr = _ClassProblem(x, a, ignored, denom, dtype, axis, shape, storage)
    pr.t, pr.w = index_t, w
    return pr


# ---------------------------------------------------------------------------
# Shared maths
# ---------------------------------------------------------------------------

def _shift_by_max(x):
    """``(x - m, m)`` with ``m`` the row max (0 for a row whose max is not finite)."""
    m = np.max(x, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return x - m, m


def _logsumexp_last(x):
    """log(sum(exp(x))) over the last axis, shifted by the row max for stability.

    A row of all -inf gives -inf; a row containing +inf gives +inf; NaN gives NaN.
    """
    shifted, m = _shift_by_max(x)
    return np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True)) + m


def _log_softmax_last(x):
    """``(x - m) - log(sum(exp(x - m)))``: subtracting the max first keeps the
    small terms (``x - logsumexp(x)`` would lose log(2) next to 1e30)."""
    shifted, _ = _shift_by_max(x)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _neg_weighted_sum(a, logp):
    """``-sum_j a_j * logp_j`` over the last axis; a term with ``a_j == 0`` is 0.

    Written ``0 - sum`` so that a row without terms gives +0, not -0.
    """
    return 0.0 - np.sum(np.where(a == 0, 0.0, a * logp), axis=-1)


def _clip_with_derivative(v, lo, hi):
    """``clip(v, lo, hi)`` and where its derivative is 1: on ``[lo, hi]``
    (boundaries included, like ``torch.clamp``); it is 0 strictly outside.

    NaN counts as inside, so that it propagates to the gradient.
    """
    inside = ~((v < lo) | (v > hi))
    return np.clip(v, lo, hi), inside


def _log_clip_bounds(eps):
    """``(log(eps), log1p(-eps))``: the clip of probabilities to [eps, 1 - eps] in log space."""
    return (np.log(eps) if eps > 0 else -np.inf), np.log1p(-eps)


def _reduce(rows, reduction, denom, dtype):
    """Apply the reduction to per-row (or per-element) losses, in float64."""
    if reduction == "none":
        return np.asarray(rows).astype(dtype)
    total = np.sum(rows, dtype=np.float64)
    if reduction == "mean":
        total = total / denom if denom != 0 else np.nan
    return dtype.type(total)


def _grad_scale(grad_loss, reduction, loss_shape, denom):
    """dL_total/dloss_i: ``grad_loss`` broadcast to the loss shape, divided by the
    mean denominator for "mean" (NaN when that is 0, like the loss)."""
    if grad_loss is None:
        g = np.float64(1.0)
    else:
        g, _ = _as_float(grad_loss, "grad_loss")
    target_shape = loss_shape if reduction == "none" else ()
    try:
        g = np.broadcast_to(g, target_shape)
    except ValueError:
        raise ValueError(
            f"grad_loss of shape {g.shape} does not broadcast to the loss shape {target_shape}") from None
    if reduction == "mean":
        g = g / denom if denom != 0 else g * np.nan
    return np.broadcast_to(g, loss_shape)


def _finish(grad, dtype, out):
    """Cast a float64 result (a gradient, a softmax) to the compute dtype, into
    ``out`` when given."""
    if out is None:
        return np.asarray(grad).astype(dtype)  # an array also for a 0-d input, not a scalar
    out[...] = grad
    return out


def _class_grad(problem, drows, grad_loss, reduction, out):
    """Scale per-row gradients (class axis last) by dL/dloss_i, zero ignored rows,
    put the class axis back, and emit."""
    scale = _grad_scale(grad_loss, reduction, problem.ignored.shape, problem.denom)
    grad = scale[..., None] * drows
    grad[problem.ignored] = 0.0
    return _finish(np.moveaxis(grad, -1, problem.axis), problem.storage, out)


# ---------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------

def _softmax_family(x, axis, out, fn):
    """``fn`` along ``axis``: an empty ``x`` gives an empty result, a 0-d ``x`` is a row of one."""
    storage = np.asarray(x).dtype
    x, dtype = _as_float(x, "x", half=True)
    storage = storage if _is_half(storage) else dtype
    axis = _check_axis(axis, max(x.ndim, 1))
    _check_out(out, x.shape, storage)
    if x.size == 0:
        return _finish(np.empty(x.shape), storage, out)
    rows = np.moveaxis(x.reshape(x.shape or (1,)), axis, -1)
    with np.errstate(all="ignore"):
        result = np.moveaxis(fn(rows), -1, axis).reshape(x.shape)
    return _finish(result, storage, out)


def log_softmax(x, axis=-1, *, out=None, num_threads=None):
    """Logarithm of the softmax along ``axis``: ``x - logsumexp(x)``.

    Parameters
    ----------
    x : array_like
        Input scores.
    axis : int, optional
        The class axis.
    out : ndarray, optional
        Writable array of ``x``'s shape and compute dtype for the result
        (``out=x`` is allowed).
    num_threads : int, optional
        Ignored by the reference.

    Returns
    -------
    ndarray
        Same shape as ``x``. A row of all ``-inf`` gives NaN. An empty ``x`` (any axis of
        length 0) gives an empty array; a 0-d ``x`` (axis 0 or -1) is a row of one value.
    """
    return _softmax_family(x, axis, out, _log_softmax_last)


def softmax(x, axis=-1, *, out=None, num_threads=None):
    """Softmax along ``axis``: ``exp(log_softmax(x))``, i.e. ``exp(x - max) / sum(exp(x - max))``.

    A slice holding ``+inf`` gives 0 at its finite entries and NaN at the infinite ones (the
    exponential of :func:`log_softmax`'s ``-inf`` and NaN there).

    Parameters and return value as :func:`log_softmax`.
    """
    return _softmax_family(x, axis, out, _softmax_last)


def _softmax_last(x):
    return np.exp(_log_softmax_last(x))


def logsumexp(x, axis=-1, *, keepdims=False, num_threads=None):
    """``log(sum(exp(x)))`` over ``axis``, computed stably.

    Parameters
    ----------
    x : array_like
        Input scores.
    axis : int, tuple of int or None, optional
        The axis or axes to reduce together; None reduces all, ``()`` none.
    keepdims : bool, optional
        Keep the reduced axes with length 1.
    num_threads : int, optional
        Ignored by the reference.

    Returns
    -------
    ndarray or numpy scalar
        ``x``'s shape without the reduced axes (a scalar when none is left). A
        slice of all ``-inf`` gives ``-inf``, and so does an empty one (the log
        of an empty sum); a 0-d ``x`` gives its value.
    """
    x, dtype = _as_float(x, "x", half=True)
    axes = _check_axes(axis, x.ndim)
    kept = tuple(n for d, n in enumerate(x.shape) if d not in axes)
    n = int(np.prod([x.shape[d] for d in axes]))
    rows = np.moveaxis(x, axes, range(x.ndim - len(axes), x.ndim)).reshape(kept + (n,))
    if n == 0:
        result = np.full(kept, -np.inf)
    elif x.size == 0:
        result = np.empty(kept)
    else:
        with np.errstate(all="ignore"):
            result = _logsumexp_last(rows)[..., 0]
    if keepdims:
        result = result.reshape(tuple(1 if d in axes else s for d, s in enumerate(x.shape)))
    return result.astype(dtype)[()]  # a NumPy scalar when no axis is left, as NumPy's reductions


# ---------------------------------------------------------------------------
# Cross-entropy from logits
# ---------------------------------------------------------------------------

def _check_options(logit_scale, softcap, z_loss):
    """The large-model options: logit_scale finite and not 0, softcap None or finite > 0,
    z_loss finite >= 0."""
    logit_scale = _check_real(logit_scale, "logit_scale")
    if not np.isfinite(logit_scale) or logit_scale == 0:
        raise ValueError(f"logit_scale must be finite and not 0, got {logit_scale!r}")
    if softcap is not None:
        softcap = _check_real(softcap, "softcap")
        if not (np.isfinite(softcap) and softcap > 0):
            raise ValueError(f"softcap must be a positive finite number or None, got {softcap!r}")
    z_loss = _check_real(z_loss, "z_loss")
    if not (np.isfinite(z_loss) and z_loss >= 0):
        raise ValueError(f"z_loss must be a non-negative finite number, got {z_loss!r}")
    return logit_scale, softcap, z_loss


def _sample_weight(sample_weight, row_shape):
    """Per-row weights broadcast to the rows' shape (float64), or None."""
    if sample_weight is None:
        return None
    sw, _ = _as_float(sample_weight, "sample_weight")
    try:
        return np.broadcast_to(sw, row_shape)
    except ValueError:
        raise ValueError(f"sample_weight of shape {sw.shape} does not broadcast to the targets' "
                         f"row shape {tuple(row_shape)}") from None


def _map_logits(u, logit_scale, softcap):
    """``z = logit_scale * u``, then ``softcap * tanh(z / softcap)`` with a cap; and ``dz/du``."""
    z = logit_scale * u
    if softcap is None:
        return z, logit_scale
    t = np.tanh(z / softcap)
    return softcap * t, logit_scale * (1.0 - t * t)


def _cross_entropy(logits, targets, axis, weight, ignore_index, reduction, label_smoothing, eps,
                   want_grad, logit_scale=1.0, softcap=None, z_loss=0.0, sample_weight=None):
    """Per-row losses, per-row log-sum-exps and, when ``want_grad``, per-row gradients (class
    axis last).

    Each row ``u`` is mapped to ``z = logit_scale * u`` (then ``softcap * tanh(z / softcap)``),
    and ``loss_i = sw_i * (-sum_j a_ij * c(lsm_ij) + z_loss * lse_i**2)`` with ``lsm =
    log_softmax(z)``, ``lse = logsumexp(z)``, ``c`` the clip to ``[log(eps), log1p(-eps)]`` and
    the z-loss term on rows that are not ignored.  Its gradient: with ``b = a * c'``,
    ``dloss_i/dz_ik = sw_i * (softmax_ik * (sum_j b_ij + 2 z_loss lse_i) - b_ik)``
    (because ``dlsm_ij/dz_ik = [j == k] - softmax_ik`` and ``dlse_i/dz_ik = softmax_ik``),
    times ``dz/du``.  The "mean" denominator becomes ``sum_i sw_i w[t_i]`` over rows that are not
    ignored (``sum_i sw_i`` with probability targets).
    """
    _check_reduction(reduction)
    lo, hi = _log_clip_bounds(_check_eps(eps))
    logit_scale, softcap, z_loss = _check_options(logit_scale, softcap, z_loss)
    pr = _class_problem(logits, targets, axis, weight, ignore_index, label_smoothing, "logits")
    sw = _sample_weight(sample_weight, pr.ignored.shape)
    if sw is not None:
        if pr.t is not None:
            pr.denom = (sw * pr.w[pr.t])[~pr.ignored].sum()
        else:
            pr.denom = sw.sum()
    with np.errstate(all="ignore"):
        z, dz = _map_logits(pr.x, logit_scale, softcap)
        lsm = _log_softmax_last(z)
        lse = _logsumexp_last(z)[..., 0]
        logp, inside = _clip_with_derivative(lsm, lo, hi)
        rows = _neg_weighted_sum(pr.a, logp)
        if z_loss != 0:
            rows = rows + np.where(pr.ignored, 0.0, z_loss * lse * lse)
        if sw is not None:
            rows = sw * rows
        drows = None
        if want_grad:
            b = np.where(inside, pr.a, 0.0)
            softmax_coef = np.sum(b, axis=-1, keepdims=True)
            if z_loss != 0:
                softmax_coef = softmax_coef + 2.0 * z_loss * lse[..., None]
            drows = np.exp(lsm) * softmax_coef - b
            if sw is not None:
                drows = sw[..., None] * drows
            drows = drows * dz
    return pr, rows, drows, lse


_OPTIONS_DOC = """logit_scale : float, optional
        Multiplies the logits first (finite, not 0).
    softcap : float, optional
        Soft-caps the scaled logits: ``z = softcap * tanh(z / softcap)`` (positive, finite).
    z_loss : float, optional
        Adds ``z_loss * logsumexp(z)**2`` to the loss of every row that is not ignored.
    sample_weight : array_like, optional
        Multiplies each row's loss; broadcast to the targets' row shape.  "mean" divides by
        ``sum_i sample_weight_i * w[t_i]`` (``sum_i sample_weight_i`` with probabilities).
    return_lse : bool, optional
        Also return each row's ``logsumexp(z)`` (the row shape, compute dtype)."""


def cross_entropy(logits, targets, *, axis=-1, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, eps=0.0, z_loss=0.0, softcap=None, logit_scale=1.0,
                  sample_weight=None, return_lse=False, num_threads=None):
    """Cross-entropy from raw logits: fused log-softmax + negative log-likelihood.

    With ``lsm = log_softmax(logits)``, ``c(v) = clip(v, log(eps), log1p(-eps))``,
    ``w = weight`` and ``s = label_smoothing``:

    * class indices ``t``: ``loss_i = (1 - s) * (-w[t_i] * c(lsm_i)[t_i])
      + (s / C) * (-sum_j w[j] * c(lsm_i)[j])``; rows with ``t_i == ignore_index``
      have loss 0; "mean" divides by ``sum_i w[t_i]`` over the other rows;
    * probabilities ``y``: ``loss_i = -sum_j w[j] * y'_ij * c(lsm_i)[j]`` with
      ``y' = (1 - s) * y + s / C``; "mean" divides by the number of rows.

    The large-model options apply first a map of each row of logits ``u``:
    ``z = logit_scale * u``, then ``z = softcap * tanh(z / softcap)``; the loss above is that of
    ``z``, plus ``z_loss * logsumexp(z)**2`` for a row that is not ignored, times the row's
    ``sample_weight`` (see :func:`_cross_entropy`).  The defaults leave the loss unchanged.

    With ``eps=0`` this is ``torch.nn.functional.cross_entropy``.

    Parameters
    ----------
    logits : array_like
        Raw scores, classes along ``axis``.
    targets : array_like
        Integer class indices of shape ``logits.shape`` without ``axis``, or
        class probabilities of shape ``logits.shape``.
    axis : int, optional
        The class axis.
    weight : array_like, optional
        Per-class weights, shape ``(C,)``.
    ignore_index : int, optional
        Class-index target value whose rows are ignored.
    reduction : {"mean", "sum", "none"}, optional
        "none" returns the per-row losses.
    label_smoothing : float, optional
        In ``[0, 1]``.
    eps : float, optional
        Probability clipping, in ``[0, 0.5)``; 0 disables it.
    """ + _OPTIONS_DOC + """
    num_threads : int, optional
        Ignored by the reference.

    Returns
    -------
    loss : numpy scalar or ndarray
        Of the compute dtype; an array of the targets' (index) shape for "none".
    lse : ndarray
        With ``return_lse`` only.
    """
    pr, rows, _, lse = _cross_entropy(logits, targets, axis, weight, ignore_index, reduction,
                                      label_smoothing, eps, False, logit_scale, softcap, z_loss,
                                      sample_weight)
    loss = _reduce(rows, reduction, pr.denom, pr.dtype)
    return (loss, lse.astype(pr.dtype)) if return_lse else loss


def cross_entropy_and_grad(logits, targets, *, axis=-1, weight=None, ignore_index=-100,
                           reduction="mean", label_smoothing=0.0, eps=0.0, z_loss=0.0,
                           softcap=None, logit_scale=1.0, sample_weight=None, return_lse=False,
                           grad_loss=None, out=None, num_threads=None):
    """:func:`cross_entropy` and its gradient with respect to ``logits``.

    Parameters
    ----------
    logits, targets, axis, weight, ignore_index, reduction, label_smoothing, eps, num_threads
        As :func:`cross_entropy`; so are the options ``z_loss``, ``softcap``, ``logit_scale``,
        ``sample_weight`` and ``return_lse``.
    grad_loss : array_like, optional
        Upstream gradient, broadcastable to the loss shape (a scalar for
        "mean"/"sum"); default 1.
    out : ndarray, optional
        Writable array of ``logits``' shape and dtype (or float32 for float16 / bfloat16
        logits) that receives the gradient (``out=logits`` is allowed).

    Returns
    -------
    loss : numpy scalar or ndarray
        As :func:`cross_entropy`.
    grad : ndarray
        ``grad_loss * dloss/dlogits``, ``logits``' shape. Zero on ignored rows;
        zero where the clip is active (strictly outside its bounds).
    lse : ndarray
        With ``return_lse`` only.
    """
    pr, rows, drows, lse = _cross_entropy(logits, targets, axis, weight, ignore_index, reduction,
                                          label_smoothing, eps, True, logit_scale, softcap,
                                          z_loss, sample_weight)
    _check_out(out, pr.shape, pr.storage, also=pr.dtype)
    loss = _reduce(rows, reduction, pr.denom, pr.dtype)
    grad = _class_grad(pr, drows, grad_loss, reduction, out)
    return (loss, grad, lse.astype(pr.dtype)) if return_lse else (loss, grad)


def nll_loss(log_probs, targets, *, axis=-1, weight=None, ignore_index=-100, reduction="mean",
             num_threads=None):
    """Negative log-likelihood of class-index targets (PyTorch's ``nll_loss``).

    ``loss_i = -w[t_i] * log_probs_i[t_i]``; ignored rows give 0; "mean" divides
    by ``sum_i w[t_i]`` over the rows that are not ignored.

    Parameters
    ----------
    log_probs : array_like
        Log-probabilities (used as given), classes along ``axis``.
    targets : array_like
        Integer class indices, shape ``log_probs.shape`` without ``axis``.
    axis, weight, ignore_index, reduction, num_threads
        As :func:`cross_entropy`.

    Returns
    -------
    loss : numpy scalar or ndarray
        As :func:`cross_entropy`.
    """
    _check_reduction(reduction)
    pr = _class_problem(log_probs, targets, axis, weight, ignore_index, 0.0, "log_probs", index_only=True)
    with np.errstate(all="ignore"):
        rows = _neg_weighted_sum(pr.a, pr.x)
    return _reduce(rows, reduction, pr.denom, pr.dtype)


# ---------------------------------------------------------------------------
# Categorical cross-entropy on probabilities
# ---------------------------------------------------------------------------

def _categorical_cross_entropy(probs, targets, axis, eps, weight, ignore_index, reduction,
                               label_smoothing, want_grad):
    """Per-row losses ``-sum_j a_ij * log(clip(p_ij, eps, 1 - eps))`` and, when
    ``want_grad``, their gradient ``-a_ij * [eps <= p_ij <= 1 - eps] / clip(p_ij)``."""
    _check_reduction(reduction)
    eps = _check_eps(eps)
    pr = _class_problem(probs, targets, axis, weight, ignore_index, label_smoothing, "probs")
    with np.errstate(all="ignore"):
        pc, inside = _clip_with_derivative(pr.x, eps, 1.0 - eps)
        rows = _neg_weighted_sum(pr.a, np.log(pc))
        drows = None
        if want_grad:
            drows = np.where(inside & (pr.a != 0), -pr.a / pc, 0.0)
    return pr, rows, drows


def categorical_cross_entropy(probs, targets, *, axis=-1, eps=1e-7, weight=None, ignore_index=-100,
                              reduction="mean", label_smoothing=0.0, num_threads=None):
    """Cross-entropy of probabilities (e.g. softmax outputs), clipped to ``[eps, 1 - eps]``.

    The formula of :func:`cross_entropy` with ``c(lsm)`` replaced by
    ``log(clip(probs, eps, 1 - eps))``; ``probs`` is not renormalised. For
    one-hot targets and no options this is the textbook
    ``-log(clip(p[range(n), t], eps, 1 - eps))``.

    Parameters
    ----------
    probs : array_like
        Predicted probabilities, classes along ``axis``.
    targets : array_like
        Integer class indices of shape ``probs.shape`` without ``axis``, or
        class probabilities of shape ``probs.shape``.
    eps : float, optional
        Clipping, in ``[0, 0.5)``.
    axis, weight, ignore_index, reduction, label_smoothing, num_threads
        As :func:`cross_entropy`.

    Returns
    -------
    loss : numpy scalar or ndarray
        As :func:`cross_entropy`.
    """
    pr, rows, _ = _categorical_cross_entropy(probs, targets, axis, eps, weight, ignore_index,
                                             reduction, label_smoothing, want_grad=False)
    return _reduce(rows, reduction, pr.denom, pr.dtype)


def categorical_cross_entropy_and_grad(probs, targets, *, axis=-1, eps=1e-7, weight=None,
                                       ignore_index=-100, reduction="mean", label_smoothing=0.0,
                                       grad_loss=None, out=None, num_threads=None):
    """:func:`categorical_cross_entropy` and its gradient with respect to ``probs``.

    ``grad_loss`` and ``out`` as in :func:`cross_entropy_and_grad`; the gradient
    is 0 where ``probs`` lies strictly outside ``[eps, 1 - eps]``.

    Returns
    -------
    loss : numpy scalar or ndarray
    grad : ndarray
        ``probs``' shape.
    """
    pr, rows, drows = _categorical_cross_entropy(probs, targets, axis, eps, weight, ignore_index,
                                                 reduction, label_smoothing, want_grad=True)
    _check_out(out, pr.shape, pr.storage, also=pr.dtype)
    loss = _reduce(rows, reduction, pr.denom, pr.dtype)
    return loss, _class_grad(pr, drows, grad_loss, reduction, out)


# ---------------------------------------------------------------------------
# Binary cross-entropy
# ---------------------------------------------------------------------------

def _elementwise_problem(x, targets, weight, name):
    """Validate an elementwise (binary) problem: float64 ``x``, ``y`` and the
    broadcast weight, plus the compute dtype."""
    x, dtype = _as_float(x, name)
    y, _ = _as_float(targets, "targets", dtype=dtype)
    if y.shape != x.shape:
        raise ValueError(f"targets have shape {y.shape}, expected the {name} shape {x.shape}")
    w = _broadcast_weight(weight, x.shape, "weight")
    return x, y, w, dtype


def _elementwise_grad(d, grad_loss, reduction, dtype, out):
    """Scale elementwise gradients by dL/dloss (mean: divide by the element count)."""
    scale = _grad_scale(grad_loss, reduction, d.shape, d.size)
    return _finish(scale * d, dtype, out)


def _binary_cross_entropy(probs, targets, eps, weight, reduction, want_grad):
    """Elementwise ``-w * (y * log(pc) + (1 - y) * log(1 - pc))``, ``pc = clip(p, eps, 1 - eps)``;
    a term whose coefficient (``y`` or ``1 - y``) is 0 is 0, also in the gradient
    ``-w * (y / pc - (1 - y) / (1 - pc)) * [eps <= p <= 1 - eps]``."""
    _check_reduction(reduction)
    eps = _check_eps(eps)
    p, y, w, dtype = _elementwise_problem(probs, targets, weight, "probs")
    with np.errstate(all="ignore"):
        pc, inside = _clip_with_derivative(p, eps, 1.0 - eps)
        pos = np.where(y == 0, 0.0, y * np.log(pc))
        neg = np.where(y == 1, 0.0, (1 - y) * np.log1p(-pc))
        loss = 0.0 - w * (pos + neg)  # 0 - ...: +0, not -0, for a zero loss
        d = None
        if want_grad:
            dpos = np.where(y == 0, 0.0, y / pc)
            dneg = np.where(y == 1, 0.0, (1 - y) / (1 - pc))
            d = np.where(inside, -w * (dpos - dneg), 0.0)
    return loss, d, dtype


def binary_cross_entropy(probs, targets, *, eps=1e-7, weight=None, reduction="mean",
                         num_threads=None):
    """Binary cross-entropy (log loss) of probabilities, clipped to ``[eps, 1 - eps]``.

    Elementwise ``-w * (y * log(pc) + (1 - y) * log(1 - pc))`` with
    ``pc = clip(probs, eps, 1 - eps)``; "mean" averages over all elements.

    Parameters
    ----------
    probs : array_like
        Predicted probabilities of the positive class.
    targets : array_like
        Labels (0/1 or soft), same shape as ``probs``.
    eps : float, optional
        Clipping, in ``[0, 0.5)``.
    weight : array_like, optional
        Elementwise weights, broadcast to ``probs``' shape.
    reduction : {"mean", "sum", "none"}, optional
        "none" returns the elementwise losses.
    num_threads : int, optional
        Ignored by the reference.

    Returns
    -------
    loss : numpy scalar or ndarray
        Of the compute dtype; ``probs``' shape for "none".
    """
    loss, _, dtype = _binary_cross_entropy(probs, targets, eps, weight, reduction, want_grad=False)
    return _reduce(loss, reduction, loss.size, dtype)


def binary_cross_entropy_and_grad(probs, targets, *, eps=1e-7, weight=None, reduction="mean",
                                  grad_loss=None, out=None, num_threads=None):
    """:func:`binary_cross_entropy` and its gradient with respect to ``probs``.

    Gradient ``-w * (y / pc - (1 - y) / (1 - pc))`` where ``eps <= p <= 1 - eps``,
    else 0. ``grad_loss`` and ``out`` as in :func:`cross_entropy_and_grad`.

    Returns
    -------
    loss : numpy scalar or ndarray
    grad : ndarray
        ``probs``' shape.
    """
    loss, d, dtype = _binary_cross_entropy(probs, targets, eps, weight, reduction, want_grad=True)
    _check_out(out, d.shape, dtype)
    return _reduce(loss, reduction, loss.size, dtype), _elementwise_grad(d, grad_loss, reduction, dtype, out)


def _binary_cross_entropy_with_logits(logits, targets, weight, pos_weight, reduction, want_grad):
    """PyTorch's formula, with ``lw = 1 + (pos_weight - 1) * y``:
    ``loss = w * ((1 - y) * x + lw * (log1p(exp(-|x|)) + max(-x, 0)))`` and
    ``grad = w * ((1 - y) - lw * sigmoid(-x))``.

    Evaluated in the algebraically equal form that has no cancellation for
    large ``|x|`` (using ``lw - (1 - y) = pos_weight * y`` and
    ``sigmoid(-x) = 1 - sigmoid(x)``)::

        x >= 0:  loss = w * ((1 - y) * x + lw * log1p(exp(-|x|)))
                 grad = w * ((1 - y) - lw * sigmoid(-x))
        x <  0:  loss = w * (pos_weight * y * (-x) + lw * log1p(exp(-|x|)))
                 grad = w * (lw * sigmoid(x) - pos_weight * y)

    A term whose coefficient is 0 is 0 (so ``x = +-inf`` gives the limit, not NaN).
    """
    _check_reduction(reduction)
    x, y, w, dtype = _elementwise_problem(logits, targets, weight, "logits")
    pw = _broadcast_weight(pos_weight, x.shape, "pos_weight")
    with np.errstate(all="ignore"):
        lw = 1 + (pw - 1) * y
        e = np.exp(-np.abs(x))                       # in (0, 1]
        softplus_tail = np.where(lw == 0, 0.0, lw * np.log1p(e))
        linear = np.where(x >= 0, _times(1 - y, x), _times(pw * y, -x))
        loss = w * (linear + softplus_tail)
        d = None
        if want_grad:
            sigmoid_abs_neg = e / (1 + e)            # sigmoid(-|x|)
            d = w * np.where(x >= 0, (1 - y) - lw * sigmoid_abs_neg, lw * sigmoid_abs_neg - pw * y)
    return loss, d, dtype


def _times(coef, v):
    """``coef * v`` with a zero coefficient giving 0 even where ``v`` is infinite."""
    return np.where(coef == 0, 0.0, coef * v)


def binary_cross_entropy_with_logits(logits, targets, *, weight=None, pos_weight=None,
                                     reduction="mean", num_threads=None):
    """Binary cross-entropy on raw logits (stable sigmoid + log loss).

    Elementwise ``w * ((1 - y) * x + lw * softplus(-x))`` with
    ``lw = 1 + (pos_weight - 1) * y`` and ``softplus(-x) = log(1 + exp(-x))``
    (PyTorch's formula); "mean" averages over all elements.

    Parameters
    ----------
    logits : array_like
        Raw scores.
    targets : array_like
        Labels (0/1 or soft), same shape as ``logits``.
    weight : array_like, optional
        Elementwise weights, broadcast to ``logits``' shape.
    pos_weight : array_like, optional
        Weight of the positive term, broadcast along the last axis (usually one
        per class).
    reduction : {"mean", "sum", "none"}, optional
    num_threads : int, optional
        Ignored by the reference.

    Returns
    -------
    loss : numpy scalar or ndarray
        Of the compute dtype; ``logits``' shape for "none".
    """
    loss, _, dtype = _binary_cross_entropy_with_logits(logits, targets, weight, pos_weight,
                                                       reduction, want_grad=False)
    return _reduce(loss, reduction, loss.size, dtype)


def binary_cross_entropy_with_logits_and_grad(logits, targets, *, weight=None, pos_weight=None,
                                              reduction="mean", grad_loss=None, out=None,
                                              num_threads=None):
    """:func:`binary_cross_entropy_with_logits` and its gradient with respect to ``logits``.

    Gradient ``w * ((1 - y) - lw * sigmoid(-x))``. ``grad_loss`` and ``out`` as in
    :func:`cross_entropy_and_grad`.

    Returns
    -------
    loss : numpy scalar or ndarray
    grad : ndarray
        ``logits``' shape.
    """
    loss, d, dtype = _binary_cross_entropy_with_logits(logits, targets, weight, pos_weight,
                                                       reduction, want_grad=True)
    _check_out(out, d.shape, dtype)
    return _reduce(loss, reduction, loss.size, dtype), _elementwise_grad(d, grad_loss, reduction, dtype, out)


# ---------------------------------------------------------------------------
# Linear + cross-entropy
# ---------------------------------------------------------------------------

def _linear_logits(input, linear_weight, linear_bias, chunk_size):
    """``input @ linear_weight.T + linear_bias`` in float64, and the compute dtype.

    The compute dtype is the wider of the operands' (each by the dtype rule, float16 and bfloat16
    computing in float32).
    """
    x, dx = _as_float(input, "input", half=True)
    w, dw = _as_float(linear_weight, "linear_weight", half=True)
    dtypes = [dx, dw]
    if x.ndim < 1:
        raise ValueError("input must have at least one dimension, the features (..., D)")
    if w.ndim != 2 or w.shape[0] == 0 or w.shape[1] != x.shape[-1]:
        raise ValueError(f"linear_weight must have shape (V, D) with V >= 1 and D = {x.shape[-1]} "
                         f"(input's last axis), got {w.shape}")
    logits = x @ w.T
    if linear_bias is not None:
        b, db = _as_float(linear_bias, "linear_bias", half=True)
        if b.shape != (w.shape[0],):
            raise ValueError(f"linear_bias must have shape ({w.shape[0]},), got {b.shape}")
        logits = logits + b
        dtypes.append(db)
    if chunk_size is not None:
        if isinstance(chunk_size, (bool, np.bool_)) or not isinstance(chunk_size, numbers.Integral):
            raise TypeError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size}")
    return x, w, logits, np.result_type(*dtypes)


def linear_cross_entropy(input, linear_weight, targets, *, linear_bias=None, weight=None,
                         ignore_index=-100, reduction="mean", label_smoothing=0.0, eps=0.0,
                         z_loss=0.0, softcap=None, logit_scale=1.0, sample_weight=None,
                         chunk_size=None, num_threads=None):
    """Cross-entropy of a linear layer's output: the unfused definition.

    ``cross_entropy(input @ linear_weight.T + linear_bias, targets, ...)`` with the logits
    computed in float64 from the operands' compute-dtype values; the result in the wider of the
    operands' compute dtypes.  ``z_loss``, ``softcap``, ``logit_scale`` and ``sample_weight`` are
    passed to :func:`cross_entropy` when not at their defaults; ``chunk_size`` (checked) and
    ``num_threads`` do not change the result.

    Parameters
    ----------
    input : array_like of shape (..., D)
    linear_weight : array_like of shape (V, D)
    targets : array_like
        Class indices of shape ``input.shape[:-1]`` or probabilities ``input.shape[:-1] + (V,)``.
    linear_bias : array_like of shape (V,), optional
    weight, ignore_index, reduction, label_smoothing, eps
        As :func:`cross_entropy`.
    z_loss, softcap, logit_scale, sample_weight
        As :func:`cross_entropy`, when it has them.
    chunk_size, num_threads : int, optional
        Checked / ignored by the reference.

    Returns
    -------
    loss : numpy scalar or ndarray
    """
    _, _, logits, dtype = _linear_logits(input, linear_weight, linear_bias, chunk_size)
    extra = dict(z_loss=z_loss, softcap=softcap, logit_scale=logit_scale,
                 sample_weight=sample_weight)
    loss = cross_entropy(logits, targets, weight=weight, ignore_index=ignore_index,
                         reduction=reduction, label_smoothing=label_smoothing, eps=eps, **extra)
    return loss.astype(dtype) if reduction == "none" else dtype.type(loss)


def linear_cross_entropy_and_grad(input, linear_weight, targets, *, linear_bias=None,
                                  weight=None, ignore_index=-100, reduction="mean",
                                  label_smoothing=0.0, eps=0.0, z_loss=0.0, softcap=None,
                                  logit_scale=1.0, sample_weight=None, grad_loss=None,
                                  chunk_size=None, num_threads=None):
    """:func:`linear_cross_entropy` and its gradients by the chain rule.

    With ``g = d loss / d logits`` from :func:`cross_entropy_and_grad` (rows flattened to
    (N, V)): ``grad_input = g @ linear_weight``, ``grad_linear_weight = g.T @ input``,
    ``grad_linear_bias = g.sum(0)``, all in float64, returned in the compute dtype.

    Parameters
    ----------
    input, linear_weight, targets, linear_bias, weight, ignore_index, reduction
        As :func:`linear_cross_entropy`.
    label_smoothing, eps, z_loss, softcap, logit_scale, sample_weight
        As :func:`linear_cross_entropy`.
    grad_loss : array_like, optional
        As :func:`cross_entropy_and_grad`.
    chunk_size, num_threads : int, optional
        Checked / ignored by the reference.

    Returns
    -------
    loss : numpy scalar or ndarray
    grad_input : ndarray
    grad_linear_weight : ndarray
    grad_linear_bias : ndarray
        Only when ``linear_bias`` is given.
    """
    x, w, logits, dtype = _linear_logits(input, linear_weight, linear_bias, chunk_size)
    extra = dict(z_loss=z_loss, softcap=softcap, logit_scale=logit_scale,
                 sample_weight=sample_weight)
    loss, g = cross_entropy_and_grad(logits, targets, weight=weight, ignore_index=ignore_index,
                                     reduction=reduction, label_smoothing=label_smoothing,
                                     eps=eps, grad_loss=grad_loss, **extra)
    loss = loss.astype(dtype) if reduction == "none" else dtype.type(loss)
    g2 = g.reshape(-1, w.shape[0])
    # gradients in the compute dtype; for float16 / bfloat16 operands in their own dtype
    def own(operand):
        stored = np.asarray(operand).dtype
        return stored if _is_half(stored) else dtype

    grads = (loss, (g @ w).astype(own(input)),
             (g2.T @ x.reshape(-1, w.shape[1])).astype(own(linear_weight)))
    if linear_bias is not None:
        grads += (g2.sum(axis=0).astype(own(linear_bias)),)
    return grads


# ---------------------------------------------------------------------------
# Vocabulary shards (xent_fast.vocab_parallel)
# ---------------------------------------------------------------------------

#: The fields of a row of partials, in order: MAX, ONES, REST, DOT, COEF, TARGET_WEIGHT, COUNTED.
MAX, ONES, REST, DOT, COEF, TARGET_WEIGHT, COUNTED = range(7)
N_FIELDS = 7


def _check_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _shard_problem(logits, targets, class_start, num_classes, axis, weight, ignore_index,
                   label_smoothing, logit_scale, softcap):
    """A class shard of rows: ``(z, dz/du, a, target_weight, counted, storage, dtype, axis)``.

    ``z`` are the shard's mapped logits (float64, class axis last) and ``a`` the cross-entropy
    coefficients of its columns, the global classes ``class_start + k``:
    ``a_ik = (1 - s) * w[t_i] * [class_start + k == t_i] + (s / V) * w[class_start + k]`` for class
    indices (0 on ignored rows), ``w[class_start + k] * ((1 - s) * y_ik + s / V)`` for the shard's
    probabilities ``y``, 0 without targets.  ``target_weight`` is ``w[t_i]`` where the shard
    holds ``t_i`` (1 on the shard holding class 0 with probabilities), ``counted`` 1 on the shard
    holding class 0 for rows that are not ignored.
    """
    storage = np.asarray(logits).dtype
    x, dtype = _as_float(logits, "logits", half=True)
    storage = storage if _is_half(storage) else dtype
    axis = _check_axis(axis, x.ndim)
    num_classes = _check_int(num_classes, "num_classes")
    class_start = _check_int(class_start, "class_start")
    Vk = x.shape[axis]
    if num_classes < 1 or not 0 <= class_start <= num_classes - Vk:
        raise ValueError(f"class_start={class_start} and num_classes={num_classes} do not hold a "
                         f"shard of {Vk} classes")
    s = _check_label_smoothing(label_smoothing)
    ignore_index = _check_ignore_index(ignore_index)
    logit_scale, softcap, _ = _check_options(logit_scale, softcap, 0.0)
    w = _class_weight(weight, num_classes)
    ws = w[class_start:class_start + Vk]
    x = np.moveaxis(x, axis, -1)
    row_shape = x.shape[:-1]
    first = 1.0 if class_start == 0 and Vk > 0 else 0.0  # the shard holding class 0
    if targets is None:
        a = np.zeros(x.shape)
        target_weight = counted = np.zeros(row_shape)
    elif np.shape(targets) == row_shape:
        t, ignored = _index_targets(np.asarray(targets), num_classes, ignore_index)
        cols = class_start + np.arange(Vk)
        onehot = cols == t[..., None]
        a = (1.0 - s) * w[t][..., None] * onehot + (s / num_classes) * ws
        a[ignored] = 0.0
        held = (class_start <= t) & (t < class_start + Vk) & ~ignored
        target_weight = np.where(held, w[t], 0.0)
        counted = np.where(ignored, 0.0, first)
    elif np.shape(targets) == np.moveaxis(x, -1, axis).shape:
        y, _ = _as_float(targets, "targets", dtype=dtype)
        y = np.moveaxis(y, axis, -1)
        a = ws * ((1.0 - s) * y + s / num_classes)
        target_weight = counted = np.full(row_shape, first)
    else:
        raise ValueError(f"targets have shape {np.shape(targets)}, expected {row_shape} (class "
                         f"indices) or the shard's shape (probabilities)")
    with np.errstate(all="ignore"):
        z, dz = _map_logits(x, logit_scale, softcap)
    return z, dz, a, target_weight, counted, storage, dtype, axis


def shard_partials(logits, targets, class_start, num_classes, *, axis=-1, weight=None,
                   ignore_index=-100, label_smoothing=0.0, logit_scale=1.0, softcap=None,
                   num_threads=None):
    """The partials of a class shard, per row:
    ``[max, ones, rest, D, B, target_weight, counted]``.

    With ``z`` the shard's mapped logits and ``a`` its coefficients (:func:`_shard_problem`):
    ``max = max_j z_j``, ``ones`` the number of ``z_j == max`` and ``rest = sum_j exp(z_j - max)``
    over the others (0 and 0 when ``max`` is ``-inf``; 0 and ``inf`` when it is ``inf``; ``rest``
    NaN with a NaN), ``D = sum_j a_j (z_j - max)`` (a term with ``a_j == 0`` is 0; ``max`` taken
    as 0 when it is ``-inf``), ``B = sum_j a_j``.

    Returns
    -------
    ndarray
        float64, the rows' shape + ``(7,)``.
    """
    z, _, a, target_weight, counted, _, _, _ = _shard_problem(
        logits, targets, class_start, num_classes, axis, weight, ignore_index, label_smoothing,
        logit_scale, softcap)
    with np.errstate(all="ignore"):
        m = np.max(np.where(np.isnan(z), -np.inf, z), axis=-1, initial=-np.inf)
        finite = np.isfinite(m)
        at_max = (z == m[..., None]) & finite[..., None]
        ones = np.sum(at_max, axis=-1).astype(np.float64)
        shifted = np.where(finite, m, 0.0)[..., None]
        rest = np.sum(np.where(at_max, 0.0, np.exp(z - shifted)), axis=-1) * finite
        rest = np.where(m == np.inf, np.inf, rest)
        rest = np.where(np.isnan(z).any(axis=-1), np.nan, rest)
        shift = np.where(m > -np.inf, m, 0.0)[..., None]
        dot = np.sum(np.where(a == 0, 0.0, a * (z - shift)), axis=-1)
    return np.stack([m, ones, rest, dot, a.sum(axis=-1), target_weight, counted], axis=-1)


def combine_partials(*partials):
    """The partials of the union of shards at the largest ``max`` ``M``: a part at ``M`` adds its
    ``ones`` and ``rest``, a part below adds ``(ones + rest) * exp(max_k - M)`` to ``rest``; each
    ``D_k`` becomes ``D_k + B_k (max_k - M)`` (as it is where ``B_k == 0`` or ``max_k == M``);
    the other fields add up."""
    if not partials:
        raise TypeError("combine_partials needs at least one array of partials")
    p = np.stack([np.asarray(q, dtype=np.float64) for q in partials])
    m = np.max(p[..., MAX], axis=0)
    at = p[..., MAX] == m
    with np.errstate(all="ignore"):
        scaled = (p[..., ONES] + p[..., REST]) * np.exp(p[..., MAX] - m)
        moved = np.where((p[..., COEF] == 0) | at, 0.0, p[..., COEF] * (p[..., MAX] - m))
    out = p.sum(axis=0)
    out[..., MAX] = m
    out[..., ONES] = np.sum(np.where(at, p[..., ONES], 0.0), axis=0)
    out[..., REST] = np.sum(np.where(at, p[..., REST], scaled), axis=0)
    out[..., DOT] = np.sum(p[..., DOT] + moved, axis=0)
    return out


def _log_sum(p):
    """``log(ones + rest)``, as ``log1p(rest)`` when ``ones == 1``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p[..., ONES] == 1, np.log1p(p[..., REST]),
                        np.log(p[..., ONES] + p[..., REST]))


def partials_lse(partials):
    """Each row's ``max + log(ones + rest)``."""
    p = np.asarray(partials, dtype=np.float64)
    return p[..., MAX] + _log_sum(p)


def mean_denominator(partials, *, sample_weight=None):
    """``sum_i sample_weight_i * target_weight_i``."""
    p = np.asarray(partials, dtype=np.float64)
    sw = _sample_weight(sample_weight, p.shape[:-1])
    tw = p[..., TARGET_WEIGHT]
    return float(np.sum(np.where(tw == 0, 0.0, tw * (1.0 if sw is None else sw))))


def finish_partials(partials, *, reduction="mean", z_loss=0.0, sample_weight=None,
                    return_lse=False, denominator=None, dtype=None):
    """``loss_i = sample_weight_i * (B_i * log_sum_i - D_i + z_loss * lse_i**2)`` on counted rows
    (``log_sum = log(ones + rest)``, ``lse = max + log_sum``; ``B_i * log_sum_i`` is 0 where
    ``B_i == 0``), 0 elsewhere; reduced, in ``dtype`` (float64)."""
    _check_reduction(reduction)
    _, _, z_loss = _check_options(1.0, None, z_loss)
    p = np.asarray(partials, dtype=np.float64)
    sw = _sample_weight(sample_weight, p.shape[:-1])
    log_sum = _log_sum(p)
    lse = p[..., MAX] + log_sum
    with np.errstate(all="ignore"):
        rows = np.where(p[..., COEF] == 0, 0.0, p[..., COEF] * log_sum) - p[..., DOT]
        if z_loss != 0:
            rows = rows + z_loss * lse * lse
        if sw is not None:
            rows = sw * rows
    rows = np.where(p[..., COUNTED] != 0, rows, 0.0)
    if denominator is None:
        denominator = mean_denominator(p, sample_weight=sample_weight)
    dtype = np.dtype(np.float64 if dtype is None else dtype)
    loss = _reduce(rows, reduction, denominator, dtype)
    return (loss, lse.astype(dtype)) if return_lse else loss


def shard_grad(logits, targets, class_start, num_classes, total, *, axis=-1, weight=None,
               ignore_index=-100, label_smoothing=0.0, logit_scale=1.0, softcap=None,
               z_loss=0.0, sample_weight=None, reduction="mean", denominator=None,
               grad_loss=None, out=None, num_threads=None):
    """``r_i * ((B_i + 2 z_loss lse_i) * exp(z_ij - lse_i) - a_ij) * dz/du_ij``, ``B`` and ``lse``
    from ``total``, ``r_i = counted_i * sample_weight_i * dL/dloss_i`` (0 on rows not counted)."""
    _check_reduction(reduction)
    _, _, z_loss = _check_options(1.0, None, z_loss)
    z, dz, a, _, _, storage, dtype, axis = _shard_problem(
        logits, targets, class_start, num_classes, axis, weight, ignore_index, label_smoothing,
        logit_scale, softcap)
    tot = np.asarray(total, dtype=np.float64)
    row_shape = z.shape[:-1]
    if tot.shape != row_shape + (N_FIELDS,):
        raise ValueError(f"total has shape {tot.shape}, expected {row_shape + (N_FIELDS,)}")
    sw = _sample_weight(sample_weight, row_shape)
    if denominator is None:
        denominator = mean_denominator(tot, sample_weight=sample_weight)
    r = _grad_scale(grad_loss, reduction, row_shape, denominator) * (1.0 if sw is None else sw)
    counted = tot[..., COUNTED] != 0
    lse = partials_lse(tot)
    with np.errstate(all="ignore"):
        coef = tot[..., COEF] + 2.0 * z_loss * lse
        grad = r[..., None] * (coef[..., None] * np.exp(z - lse[..., None]) - a) * dz
    grad = np.where(counted[..., None], grad, 0.0)
    _check_out(out, np.moveaxis(grad, -1, axis).shape, storage, also=dtype)
    return _finish(np.moveaxis(grad, -1, axis), storage, out)


def shard_log_softmax(logits, lse, *, axis=-1, out=None, num_threads=None):
    """``logits - lse`` along ``axis``, ``lse`` the whole rows' log-sum-exp."""
    return _shard_softmax_family(logits, lse, axis, out, lambda x, lse: x - lse)


def shard_softmax(logits, lse, *, axis=-1, out=None, num_threads=None):
    """``exp(logits - lse)`` along ``axis``, ``lse`` the whole rows' log-sum-exp."""
    return _shard_softmax_family(logits, lse, axis, out, lambda x, lse: np.exp(x - lse))


def _shard_softmax_family(logits, lse, axis, out, fn):
    storage = np.asarray(logits).dtype
    x, dtype = _as_float(logits, "logits", half=True)
    storage = storage if _is_half(storage) else dtype
    axis = _check_axis(axis, x.ndim)
    _check_out(out, x.shape, storage)
    rows = np.moveaxis(x, axis, -1)
    lse = np.broadcast_to(np.asarray(lse, dtype=np.float64), rows.shape[:-1])
    with np.errstate(all="ignore"):
        result = fn(rows, lse[..., None])
    return _finish(np.moveaxis(result, -1, axis), storage, out)
