"""Vocabulary-parallel cross-entropy: building blocks for logits split in class shards.

When the classes of each row are spread over several arrays, processes or machines (as in
Megatron's vocab-parallel cross-entropy or flash-attn's ``process_group`` path), each shard
computes per-row *partials* of its own classes (:func:`shard_partials`); any number of partials
combine exactly and associatively (:func:`combine_partials`), so they can be tree-reduced in any
order, into those of the whole rows; from the combined partials come the loss
(:func:`finish_partials`), the rows' log-sum-exp (:func:`partials_lse`) and, on each shard,
that shard's gradient (:func:`shard_grad`), log-softmax and softmax (:func:`shard_log_softmax`,
:func:`shard_softmax`).  Only the partials travel: ``N_FIELDS`` doubles per row and shard,
whatever the number of classes.  Any engine can drive them: Dask (``xent_fast.dask``), MPI,
multiprocessing.

The partials of a row over a shard's classes, with ``z`` the mapped logits (``logit_scale``,
then ``softcap``) and ``a_j`` the target coefficients of :func:`xent_fast.cross_entropy`:

============== ===============================================================================
field          value
============== ===============================================================================
MAX            ``m = max_j z_j`` (``-inf`` when all are ``-inf``)
ONES           the number of ``z_j`` equal to ``m``: the exp-sum's terms ``exp(0) = 1``
REST           ``sum_j exp(z_j - m)`` over the other ``z_j``
DOT            ``D = sum_j a_j (z_j - m)`` (0 for an ignored row)
COEF           ``B = sum_j a_j`` (0 for an ignored row)
TARGET_WEIGHT  the row's share of the mean's denominator, from one shard: ``weight[t]`` from the
               shard holding class ``t``; 1 from the shard holding class 0 (probabilities)
COUNTED        1 for a row that is not ignored, from the shard holding class 0
============== ===============================================================================

and the loss of a row is ``sample_weight * (B * log_sum - D + z_loss * lse**2)`` with
``log_sum = log(ONES + REST)`` (``log1p(REST)`` when ``ONES == 1``) and ``lse = MAX + log_sum``
of the combined partials.  The exp(0) terms counted apart and ``D`` relative to the max keep a
confident row's tiny loss (and its target's gradient) as exact as the unsharded kernel's.
``eps`` clipping has no shard form (it needs the whole row's ``lse`` within the pass) and is not
offered.

Examples
--------
>>> import numpy as np, xent_fast
>>> from xent_fast import vocab_parallel as vp
>>> rng = np.random.default_rng(0)
>>> logits, targets = rng.standard_normal((4, 10)), np.array([1, 7, 9, 4])
>>> shards = [(0, logits[:, :6]), (6, logits[:, 6:])]  # (class_start, shard)
>>> parts = [vp.shard_partials(s, targets, start, 10) for start, s in shards]
>>> total = vp.combine_partials(*parts)
>>> bool(np.isclose(vp.finish_partials(total), xent_fast.cross_entropy(logits, targets)))
True
>>> grads = [vp.shard_grad(s, targets, start, 10, total) for start, s in shards]
>>> _, grad = xent_fast.cross_entropy_and_grad(logits, targets)
>>> bool(np.allclose(np.concatenate(grads, axis=1), grad))
True
"""
import numpy as np

from . import _kernels
from . import _validate as v
from ._api import (_LOG_SOFTMAX, _SOFTMAX, _check_status, _class_rows_layout, _class_targets,
                   _gradient_out, _logit_options, _softmax_rows)

MAX, ONES, REST, DOT, COEF, TARGET_WEIGHT, COUNTED = _kernels.PARTIAL_FIELDS
N_FIELDS = _kernels.N_PARTIALS

__all__ = ["MAX", "ONES", "REST", "DOT", "COEF", "TARGET_WEIGHT", "COUNTED", "N_FIELDS",
           "shard_partials", "combine_partials", "partials_lse", "mean_denominator",
           "finish_partials", "shard_grad", "shard_log_softmax", "shard_softmax"]


class _Shard:
    """A shard's validated arguments (see _shard)."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


def _shard(logits, targets, class_start, num_classes, axis, weight, ignore_index,
           label_smoothing, logit_scale, softcap, z_loss, num_threads, targets_optional):
    """Check the arguments that describe a shard and its rows; targets may be None where
    targets_optional."""
    x = v.storage_array(logits, "logits")
    compute = v.compute_dtype(x.dtype)
    axis = v.class_axis(axis, x.ndim, array="logits")
    n_shard = x.shape[axis]
    num_classes = v.integer_option(num_classes, "num_classes")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    class_start = v.integer_option(class_start, "class_start")
    if not 0 <= class_start <= num_classes - n_shard:
        raise ValueError(
            f"class_start={class_start} must be in [0, num_classes - {n_shard}] = "
            f"[0, {num_classes - n_shard}] for a shard of {n_shard} of num_classes={num_classes} "
            "classes")
    row_shape_full = x.shape[:axis] + x.shape[axis + 1:]
    index_t = prob_t = None
    if targets is not None or not targets_optional:
        index_t, prob_t = _class_targets(targets, x, axis, row_shape_full, compute, num_classes)
    logit_scale, softcap, z_loss = _logit_options(logit_scale, softcap, z_loss)
    return _Shard(
        x=x, axis=axis, class_start=class_start, num_classes=num_classes,
        row_shape_full=row_shape_full, n_rows=int(np.prod(row_shape_full)), index_t=index_t,
        prob_t=prob_t, weight=v.class_weight(weight, num_classes),
        ignore_index=v.integer_option(ignore_index, "ignore_index"),
        label_smoothing=v.real_option(label_smoothing, "label_smoothing", 0.0, 1.0, True),
        logit_scale=logit_scale, softcap=softcap, z_loss=z_loss,
        threads=v.thread_count(num_threads))


def _partials(partials, name="partials", row_shape=None):
    """Partials as a C-contiguous float64 array of shape row_shape + (N_FIELDS,)."""
    p = v.as_array(partials, name)
    if p.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got an array of dtype {p.dtype}")
    expected = (f"row_shape + ({N_FIELDS},)" if row_shape is None
                else tuple(row_shape) + (N_FIELDS,))
    if (p.ndim < 1 or p.shape[-1] != N_FIELDS
            or (row_shape is not None and p.shape[:-1] != tuple(row_shape))):
        raise ValueError(f"{name} must have shape {expected} (the partials of shard_partials), "
                         f"got {p.shape}")
    return v.contiguous(p, dtype=np.float64)


def _flat_row_weights(sample_weight, row_shape):
    """sample_weight as one contiguous float64 per row, or None."""
    sw = v.row_weights(sample_weight, row_shape)
    return None if sw is None else v.contiguous(sw).reshape(-1)


def _denominator(denominator):
    if denominator is None:
        return None
    return v.finite_option(denominator, "denominator")


def shard_partials(logits, targets, class_start, num_classes, *, axis=-1, weight=None,
                   ignore_index=-100, label_smoothing=0.0, logit_scale=1.0, softcap=None,
                   num_threads=None):
    """The per-row partials of one class shard of logits.

    The shard holds the global classes ``[class_start, class_start + V_k)`` of rows of
    ``num_classes`` classes.  Its partials combine with those of the other shards
    (:func:`combine_partials`) into those of the whole rows.

    Parameters
    ----------
    logits : array_like
        The shard of the logits: float32 or float64, or float16 / bfloat16 (computed in float32),
        classes along ``axis``.
    targets : array_like or None
        Global class indices, an integer array of the logits' shape without the class axis; or the
        shard of the probability targets (the shard's shape); or None for the max and exp-sum
        only (for :func:`partials_lse`).  A class index outside ``[0, num_classes)`` that is not
        ``ignore_index`` raises on every shard.
    class_start : int
        The global index of the shard's first class, in ``[0, num_classes - V_k]``.
    num_classes : int
        The number of classes of a whole row.
    axis : int, default -1
        The class axis.
    weight : array_like of shape (num_classes,), optional
        The class weights of the whole row (each shard uses its slice, and the target's weight).
    ignore_index : int, default -100
        Rows whose class index equals it are ignored.
    label_smoothing : float in [0, 1], default 0
        As in :func:`xent_fast.cross_entropy`, with ``num_classes`` classes.
    logit_scale, softcap
        The logit map of :func:`xent_fast.cross_entropy`, applied element by element.
    num_threads : int, optional
        OpenMP threads for the kernel; None uses OpenMP's default.

    Returns
    -------
    ndarray
        float64, the rows' shape + ``(N_FIELDS,)``; the fields are this module's constants.

    Raises
    ------
    ValueError, TypeError
        As :func:`xent_fast.cross_entropy`, and for a ``class_start`` outside
        ``[0, num_classes - V_k]`` or a ``weight`` not of length ``num_classes``.
    """
    sh = _shard(logits, targets, class_start, num_classes, axis, weight, ignore_index,
                label_smoothing, logit_scale, softcap, 0.0, num_threads, True)
    partials = np.empty(sh.row_shape_full + (N_FIELDS,), np.float64)
    if sh.n_rows == 0:
        return partials
    n_class, row_shape, x_s, t_s, y_s, _, _ = _class_rows_layout(sh.x, sh.axis, sh.index_t,
                                                                 sh.prob_t, None, None)
    status, bad_row, bad_value = _kernels.shard_partials(
        v.dtype_code(sh.x.dtype), n_class, row_shape, sh.x, x_s, sh.index_t, t_s, sh.prob_t, y_s,
        sh.weight, sh.ignore_index, sh.label_smoothing, sh.logit_scale, sh.softcap,
        sh.class_start, sh.num_classes, partials, sh.threads)
    _check_status(status, bad_row, bad_value, sh.row_shape_full, sh.num_classes, sh.ignore_index)
    return partials


def combine_partials(*partials):
    """The partials of the union of shards, from the partials of each (same rows, same shape).

    Each row's exp-sums are rescaled to the largest max and added (the exp(0) terms of the parts
    at that max still counted apart, the others joining the rest) and each ``D`` moved to that
    max (``D_k + B_k (m_k - max)``); the other fields add up.  The combination is associative
    and commutative up to rounding, so partials can be combined in any tree order (and a
    combination combined again).

    Parameters
    ----------
    *partials : array_like
        One or more arrays of partials of the same shape ``row_shape + (N_FIELDS,)``.

    Returns
    -------
    ndarray
        A new float64 array of that shape.
    """
    if not partials:
        raise TypeError("combine_partials needs at least one array of partials")
    parts = [_partials(p) for p in partials]
    for k, p in enumerate(parts[1:], 1):
        if p.shape != parts[0].shape:
            raise ValueError(f"partials must all have the same shape: argument {k} has shape "
                             f"{p.shape}, argument 0 {parts[0].shape}")
    out = np.empty(parts[0].shape, np.float64)
    _kernels.partials_combine(parts, out)
    return out


def partials_lse(partials):
    """Each row's log-sum-exp of the mapped logits, ``MAX + log(ONES + REST)``.

    Parameters
    ----------
    partials : array_like
        Partials of shape ``row_shape + (N_FIELDS,)``; those of every shard combined give the
        whole rows' log-sum-exp.

    Returns
    -------
    ndarray
        float64, ``row_shape``; ``-inf`` for a row of ``-inf`` logits.
    """
    p = _partials(partials)
    lse = np.empty(p.shape[:-1], np.float64)
    _kernels.partials_lse(p, lse)
    return lse


def mean_denominator(partials, *, sample_weight=None):
    """The denominator of reduction 'mean', ``sum_i sample_weight_i * TARGET_WEIGHT_i``.

    That of :func:`xent_fast.cross_entropy`: the sum of the targets' class weights over the rows
    that are not ignored (index targets), or the number of rows (probability targets), each
    times its sample weight.

    Parameters
    ----------
    partials : array_like
        Combined partials of shape ``row_shape + (N_FIELDS,)``.
    sample_weight : array_like, optional
        Broadcast to ``row_shape``.

    Returns
    -------
    float
    """
    p = _partials(partials)
    return float(_kernels.partials_denominator(p, _flat_row_weights(sample_weight, p.shape[:-1])))


def finish_partials(partials, *, reduction="mean", z_loss=0.0, sample_weight=None,
                    return_lse=False, denominator=None, dtype=None):
    """The cross-entropy loss from the combined partials of every shard.

    ``loss_i = sample_weight_i * (B_i * log_sum_i - D_i + z_loss * lse_i**2)`` for a row that
    is counted (``D`` relative to the row's max, ``lse_i = MAX_i + log_sum_i``), 0 for an ignored
    one; the same loss as :func:`xent_fast.cross_entropy` of the whole rows.

    Parameters
    ----------
    partials : array_like
        The combined partials, ``row_shape + (N_FIELDS,)``.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        As in :func:`xent_fast.cross_entropy`.
    z_loss : float >= 0, default 0
        Adds ``z_loss * lse**2`` to every counted row.
    sample_weight : array_like, optional
        Multiplies each row's loss; broadcast to ``row_shape``.
    return_lse : bool, default False
        Also return each row's log-sum-exp.
    denominator : float, optional
        For 'mean': the denominator to divide by, instead of
        ``mean_denominator(partials, sample_weight=sample_weight)`` (e.g. that of all rows when
        these are one chunk of them).
    dtype : dtype, optional
        The dtype of the results; float64 by default.

    Returns
    -------
    loss : numpy scalar or ndarray
        A scalar for 'mean'/'sum' (NaN for a mean over a denominator of 0), ``row_shape`` for
        'none'.
    lse : ndarray
        With ``return_lse=True`` only, ``row_shape``.
    """
    p = _partials(partials)
    row_shape = p.shape[:-1]
    code = v.reduction_code(reduction)
    z_loss = v.finite_option(z_loss, "z_loss", nonnegative=True)
    sw = _flat_row_weights(sample_weight, row_shape)
    denom = _denominator(denominator)
    if denom is None:
        denom = _kernels.partials_denominator(p, sw) if code == 1 else 0.0
    dtype = _result_dtype(dtype)
    loss_rows = np.empty(row_shape, np.float64) if code == 0 else None
    loss = _kernels.partials_finish(p, z_loss, sw, code, denom, loss_rows)
    result = loss_rows.astype(dtype, copy=False) if code == 0 else dtype.type(loss)
    if return_lse:
        return result, partials_lse(p).astype(dtype, copy=False)
    return result


def _result_dtype(dtype):
    if dtype is None:
        return np.dtype(np.float64)
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a floating-point dtype, got {dtype!r}") from None
    if dtype.kind != "f" and not v.is_half(dtype):
        raise TypeError(f"dtype must be a floating-point dtype, got {dtype}")
    return dtype


def shard_grad(logits, targets, class_start, num_classes, total, *, axis=-1, weight=None,
               ignore_index=-100, label_smoothing=0.0, logit_scale=1.0, softcap=None,
               z_loss=0.0, sample_weight=None, reduction="mean", denominator=None,
               grad_loss=None, out=None, num_threads=None):
    """One shard's part of the gradient of the loss w.r.t. the logits, from the combined partials.

    The columns ``[class_start, class_start + V_k)`` of the gradient of
    :func:`xent_fast.cross_entropy_and_grad` for the same loss: per row
    ``r_i * ((B_i + 2 z_loss lse_i) * exp(z_ij - lse_i) - a_ij) * dz/du_ij``, with ``B_i`` and
    ``lse_i`` those of the whole row (``total``) and ``r_i`` the row's sample weight times
    ``grad_loss`` (divided by the denominator for 'mean'); 0 on ignored rows.

    Parameters
    ----------
    logits, targets, class_start, num_classes
        The shard, as :func:`shard_partials` took it (targets may not be None here).
    total : array_like
        The combined partials of every shard for these rows, ``row_shape + (N_FIELDS,)``.
    axis, weight, ignore_index, label_smoothing, logit_scale, softcap
        As :func:`shard_partials`.
    z_loss, sample_weight, reduction
        As :func:`finish_partials`.
    denominator : float, optional
        For 'mean': the denominator of the loss, instead of
        ``mean_denominator(total, sample_weight=sample_weight)``.
    grad_loss : array_like, optional
        The upstream gradient, broadcastable to the loss's shape (a scalar for 'mean'/'sum');
        default 1.
    out : ndarray, optional
        Receives the gradient: the logits' shape and dtype (float32 is also accepted for float16 /
        bfloat16 logits); ``out=logits`` computes it in place.
    num_threads : int, optional
        OpenMP threads for the kernel; None uses OpenMP's default.

    Returns
    -------
    ndarray
        The gradient of the shard, the logits' shape and dtype (``out`` when given); computed in
        float32 for half-precision logits and rounded once.

    Raises
    ------
    ValueError, TypeError
        As :func:`shard_partials` and :func:`xent_fast.cross_entropy_and_grad`, and for ``total``
        not of shape ``row_shape + (N_FIELDS,)``; a bad class index is found before anything is
        written.
    """
    x_in = logits
    sh = _shard(logits, targets, class_start, num_classes, axis, weight, ignore_index,
                label_smoothing, logit_scale, softcap, z_loss, num_threads, False)
    code = v.reduction_code(reduction)
    tot = _partials(total, "total", sh.row_shape_full)
    sw = v.row_weights(sample_weight, sh.row_shape_full)
    denom = _denominator(denominator)
    if denom is None:
        denom = (_kernels.partials_denominator(tot, _flat_row_weights(sw, sh.row_shape_full))
                 if code == 1 else 1.0)
    gl, gl_stride = v.upstream_gradient(grad_loss, sh.row_shape_full if code == 0 else ())
    g = _gradient_out(out, sh.x, x_in, [sh.index_t, sh.prob_t, sh.weight, sw, tot])
    if sh.n_rows == 0:
        return g
    n_class, row_shape, x_s, t_s, y_s, g_s, sw_s = _class_rows_layout(
        sh.x, sh.axis, sh.index_t, sh.prob_t, g, sw)
    status, bad_row, bad_value = _kernels.shard_grad(
        v.dtype_code(sh.x.dtype), n_class, row_shape, sh.x, x_s, sh.index_t, t_s, sh.prob_t, y_s,
        sh.weight, sh.ignore_index, sh.label_smoothing, code, gl, gl_stride, g,
        v.dtype_code(g.dtype), g_s, sh.logit_scale, sh.softcap, sh.z_loss, sw, sw_s,
        sh.class_start, sh.num_classes, tot, denom, sh.threads)
    _check_status(status, bad_row, bad_value, sh.row_shape_full, sh.num_classes, sh.ignore_index)
    return g


def shard_log_softmax(logits, lse, *, axis=-1, out=None, num_threads=None):
    """A shard's part of the log-softmax of the whole rows: ``logits - lse``.

    Parameters
    ----------
    logits : array_like
        The shard of the logits (plain: no logit map), float32, float64, float16 or bfloat16.
    lse : array_like
        Each row's log-sum-exp over all shards (:func:`partials_lse` of the combined partials
        of ``shard_partials(shard, None, ...)``), broadcast to the logits' shape without ``axis``.
    axis : int, default -1
        The class axis.
    out : ndarray, optional
        The result's array: the logits' shape and dtype (``out=logits`` works in place).
    num_threads : int, optional
        OpenMP threads for the kernel; None uses OpenMP's default.

    Returns
    -------
    ndarray
        The logits' shape and dtype.
    """
    return _softmax_rows(_LOG_SOFTMAX, logits, axis, out, num_threads, lse=lse, name="logits")


def shard_softmax(logits, lse, *, axis=-1, out=None, num_threads=None):
    """A shard's part of the softmax of the whole rows: ``exp(logits - lse)``.

    Parameters
    ----------
    logits : array_like
        The shard of the logits (plain: no logit map), float32, float64, float16 or bfloat16.
    lse : array_like
        Each row's log-sum-exp over all shards, as in :func:`shard_log_softmax`.
    axis : int, default -1
        The class axis.
    out : ndarray, optional
        The result's array: the logits' shape and dtype (``out=logits`` works in place).
    num_threads : int, optional
        OpenMP threads for the kernel; None uses OpenMP's default.

    Returns
    -------
    ndarray
        The logits' shape and dtype.
    """
    return _softmax_rows(_SOFTMAX, logits, axis, out, num_threads, lse=lse, name="logits")
