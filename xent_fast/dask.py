"""Dask arrays in, lazy Dask arrays out: the NumPy API on arrays that live on a cluster.

Design (docs/DESIGN.md, section 13):

* Rows chunked, the class axis in one chunk: each block is a NumPy problem, and the fused kernel
  (:func:`xent_fast.cross_entropy_and_grad` and friends) runs on it where it lives.
* The class axis chunked too: each block reports its rows' vocabulary-parallel partials
  (:func:`xent_fast.vocab_parallel.shard_partials`, seven float64 numbers per row), the
  partials of a row's class blocks are combined in a tree
  (:func:`~xent_fast.vocab_parallel.combine_partials` is associative), and each block's
  gradient, log-softmax or softmax follows from the combined row partials alone.  Only O(rows)
  numbers cross between workers, never the logits.
* 'mean' divides by the global denominator, a sum over all rows computed first from the
  targets (and sample weights) alone; each block's gradient takes its share as a per-row
  upstream gradient, so blocks never wait for one another's logits.

Every function validates its arguments eagerly, as the NumPy API does, by running that API on a
one-row stand-in of the same dtypes and class count; errors that depend on the values (a class
index out of range) are raised by the block holding the value, at compute time.  Nothing is
computed until ``.compute()`` (or ``dask.compute``); compute a loss and its gradient together,
``dask.compute(loss, grad)``, so that each block's kernel runs once.
"""
import operator
from functools import partial

import numpy as np

try:
    import dask.array as da
    from dask.base import tokenize
    from dask.core import flatten
    from dask.highlevelgraph import HighLevelGraph
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError("xent_fast.dask needs Dask: pip install 'xent_fast[dask]' (it installs "
                      "dask[array,distributed])") from exc

from . import losses, linear
from . import vocab_parallel as vp
from . import _validate as v

__all__ = ["cross_entropy", "cross_entropy_and_grad", "logsumexp", "log_softmax", "softmax",
           "linear_cross_entropy", "linear_cross_entropy_and_grad"]

_ROW_LETTERS = "abdeghijklmnopqrstuvwxyz"   # 'c' is the class axis, 'f' the partials' fields


# ---- arrays and their blocks -------------------------------------------------------------------

def _dask(value, name):
    """value as a dask array (NumPy arrays and scalars become one chunk)."""
    if value is None:
        raise TypeError(f"{name} must be an array, got None")
    if isinstance(value, da.Array):
        return value
    return da.from_array(v.as_array(value, name), chunks=-1)


def _meta(arr, shape=None):
    """A NumPy stand-in of a (dask) array: its dtype, and `shape` (default: its shape with each
    non-empty axis cut to one element)."""
    if shape is None:
        shape = tuple(min(n, 1) for n in arr.shape)
    return np.zeros(shape, dtype=arr.dtype)


def _with_row_chunks(arr, row_chunks, shape, name):
    """`arr` (None, NumPy or dask) broadcast to `shape` and chunked like the logits' rows."""
    if arr is None:
        return None
    a = arr if isinstance(arr, da.Array) else np.asarray(arr)
    try:
        np.broadcast_shapes(a.shape, shape)
    except ValueError:
        raise ValueError(f"{name} of shape {a.shape} does not broadcast to the targets' row "
                         f"shape {tuple(shape)}") from None
    if not isinstance(a, da.Array):
        a = da.from_array(a, chunks=-1)
    return da.broadcast_to(a, shape).rechunk(row_chunks)


def _class_last(x, axis):
    """x with its class axis moved last (a lazy view per block), and that axis as given."""
    ax = v.class_axis(axis, x.ndim)
    return _move_axis(x, ax, -1), ax


def _move_axis(x, source, destination):
    """da.moveaxis, or x itself when the axis is already there: a no-op transpose is still a task
    per block, which the scheduler may run on another worker than the block's (a transfer)."""
    if source % x.ndim == destination % x.ndim:
        return x
    return da.moveaxis(x, source, destination)


def _whole(block):
    """A block handed over by blockwise without concatenation: a contracted axis in one chunk
    arrives as a one-element list (per contracted axis), unwrapped here without a copy."""
    while isinstance(block, list):
        if len(block) != 1:
            raise ValueError("xent_fast.dask: an axis that must be one chunk has several")
        block = block[0]
    return block


def _call_whole(func, *args, **kwargs):
    return func(*(_whole(a) for a in args), **kwargs)


def _blockwise(func, ind, *args, **kwargs):
    """da.blockwise where a contracted axis (the class axis of a row result, a partials' fields,
    the linear layer's weight) is in one chunk and reaches func as that chunk itself: dask's
    concatenation would copy every block first, a pass over the logits for nothing."""
    return da.blockwise(partial(_call_whole, func), ind, *args, concatenate=False, **kwargs)


def _tuple_blocks(func, ind, *args, **kwargs):
    """A dask array whose blocks are the tuples func returns: never computed itself, only taken
    apart by _part, so one kernel call per block serves several outputs."""
    return _blockwise(func, ind, *args, meta=np.empty((0,) * len(ind)), **kwargs)


def _part(blocks, i, dtype, chunks):
    """The i-th output of every block of _tuple_blocks, as an array of `chunks`: block
    (j, k, ...) of blocks gives block (j, k, ...) of the part, cut or padded with zeros to the
    part's number of axes (the axes cut or added are one block)."""
    name = f"xent-part-{i}-{tokenize(blocks, i, chunks)}"
    ndim = len(chunks)
    dsk = {}
    for key in flatten(blocks.__dask_keys__()):
        idx = key[1:]
        dsk[(name,) + idx[:ndim] + (0,) * (ndim - len(idx))] = (operator.getitem, key, i)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[blocks])
    return da.Array(graph, name, chunks, meta=np.empty((0,) * ndim, dtype=dtype))


def _class_starts(x):
    """Each class block's first class, one per block along the last axis."""
    sizes = x.chunks[-1]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    # chunked like the class axis (blockwise pairs blocks by index), each block its start repeated
    return da.from_array(np.repeat(starts, sizes), chunks=(sizes,))


def _combine_along(parts, axis, keepdims):
    """The class blocks' partials (stacked along `axis`) combined into one per row."""
    slices = np.moveaxis(parts, axis, 0)
    total = vp.combine_partials(*slices) if len(slices) else parts.sum(axis=axis)
    return np.expand_dims(total, axis) if keepdims else total


def _row_totals(x, targets, prob_targets, options):
    """The combined partials of every row, row_shape + (N_FIELDS,), chunked like x's rows."""
    rows = _ROW_LETTERS[:x.ndim - 1]
    t_args = ((targets, rows + "c") if prob_targets else (targets, rows)) \
        if targets is not None else (None, None)
    parts = _blockwise(_partials_block, rows + "cf", x, rows + "c", *t_args,
                       _class_starts(x), "c", new_axes={"f": vp.N_FIELDS},
                       adjust_chunks={"c": 1}, dtype=np.float64, num_classes=x.shape[-1],
                       options=options)
    return da.reduction(parts, lambda p, axis, keepdims: p, _combine_along,
                        axis=x.ndim - 1, dtype=np.float64, concatenate=True, split_every=4,
                        combine=_combine_along, meta=np.empty((0,) * x.ndim))


def _partials_block(x, t, start, num_classes, options):
    p = vp.shard_partials(x, t, int(start[0]), num_classes, **options)
    return p[..., None, :]


# ---- the cross-entropy ---------------------------------------------------------------------------

def _loss_problem(logits, targets, axis, weight, ignore_index, reduction, label_smoothing, eps,
                  z_loss, softcap, logit_scale, sample_weight, return_lse, grad_loss, want_grad):
    """Validates everything against the NumPy API on a one-row stand-in; returns the normalised
    pieces and the result dtypes."""
    x = _dask(logits, "logits")
    x, ax = _class_last(x, axis)
    row_shape = x.shape[:-1]
    t = _dask(targets, "targets")
    if t.shape == row_shape:
        prob_targets = False
        t = t.rechunk(x.chunks[:-1])
    elif t.shape == logits.shape:
        prob_targets = True
        t = _move_axis(t, ax, -1).rechunk(x.chunks)
    else:
        raise ValueError(
            f"targets must have shape {row_shape} (class indices) or {tuple(logits.shape)} "
            f"(class probabilities) for input of shape {tuple(logits.shape)} with class axis "
            f"{axis}; got {t.shape}")
    sw = _with_row_chunks(sample_weight, x.chunks[:-1], row_shape, "sample_weight")
    meta_x = _meta(x, tuple(min(n, 1) for n in row_shape) + x.shape[-1:])
    meta_t = _meta(t, meta_x.shape if prob_targets else meta_x.shape[:-1])
    meta_sw = None if sw is None else _meta(sw, meta_x.shape[:-1]) + 1.0
    kwargs = dict(weight=weight, ignore_index=ignore_index, reduction=reduction,
                  label_smoothing=label_smoothing, eps=eps, z_loss=z_loss, softcap=softcap,
                  logit_scale=logit_scale, sample_weight=meta_sw, return_lse=True)
    if want_grad:
        meta_gl = grad_loss if reduction != "none" or grad_loss is None else \
            np.broadcast_to(np.asarray(grad_loss), np.shape(grad_loss))[(0,) * np.ndim(grad_loss)]
        out = losses.cross_entropy_and_grad(meta_x, meta_t, grad_loss=meta_gl, **kwargs)
        dtypes = (np.asarray(out[0]).dtype, out[2].dtype, out[1].dtype)
    else:
        out = losses.cross_entropy(meta_x, meta_t, **kwargs)
        dtypes = (np.asarray(out[0]).dtype, out[1].dtype, None)
    if eps > 0 and x.numblocks[-1] > 1:
        raise ValueError("eps > 0 clips each log-probability against its row's log-sum-exp, "
                         "which needs the whole class axis in one chunk: rechunk logits so that "
                         f"axis {axis} is one chunk (x.rechunk({{{ax}: -1}})), or use eps=0")
    class_w = None if weight is None else v.class_weight(weight, x.shape[-1])
    return x, ax, t, prob_targets, sw, class_w, dtypes


def _denominator(t, prob_targets, class_w, ignore_index, sw):
    """'mean''s divisor over all rows, from the targets and sample weights alone (a 0-d dask
    array): sum of sample_weight * weight[t] over non-ignored rows, or of sample_weight."""
    if prob_targets:
        row_shape, row_chunks = t.shape[:-1], t.chunks[:-1]
        ones = da.ones(row_shape, chunks=row_chunks, dtype=np.float64)
        return (ones if sw is None else sw).sum(dtype=np.float64)
    rows = _ROW_LETTERS[:t.ndim]
    args = [t, rows] + ([sw, rows] if sw is not None else [])
    per_block = _blockwise(_block_denominator, rows, *args, adjust_chunks={r: 1 for r in rows},
                           dtype=np.float64, class_w=class_w, ignore_index=ignore_index)
    return per_block.sum()


def _block_denominator(t, sw=None, class_w=None, ignore_index=-100):
    den = linear._mean_denominator(t.ravel(), t.size, class_w, ignore_index,
                                   None if sw is None else sw.ravel())
    return np.full((1,) * t.ndim, den)


def _quiet_divide(value, den):
    with np.errstate(divide="ignore", invalid="ignore"):
        return value / den


def _over(value, den):
    """value / den, lazily; a mean over no weight (den 0) is NaN, as in NumPy's API, without
    NumPy's division warnings."""
    return da.map_blocks(_quiet_divide, da.asarray(value), den, dtype=np.float64)


def _row_scale(reduction, grad_loss, den, row_shape, row_chunks):
    """The per-row upstream gradient that makes a 'none' kernel call give the reduction's
    gradient: grad_loss / den for 'mean', grad_loss for 'sum', grad_loss's rows for 'none'."""
    gl = 1.0 if grad_loss is None else grad_loss
    if reduction == "none":
        return _with_row_chunks(gl, row_chunks, row_shape, "grad_loss").astype(np.float64)
    ones = da.ones(row_shape, chunks=row_chunks, dtype=np.float64)
    gl = gl if isinstance(gl, da.Array) else float(gl)
    return ones * _over(gl, den) if reduction == "mean" else ones * gl


def _loss_outputs(packed, reduction, den, dtypes, return_lse):
    """The loss (and lse) from the blocks' packed rows [loss_row, lse_row] (float64)."""
    loss_rows = packed[..., 0]
    if reduction == "none":
        loss = loss_rows.astype(dtypes[0])
    else:
        total = loss_rows.sum(dtype=np.float64)
        loss = (_over(total, den) if reduction == "mean" else total).astype(dtypes[0])
    return (loss, packed[..., 1].astype(dtypes[1])) if return_lse else loss


def _fused_block(x, t, sw=None, gl=None, want_grad=False, options=None):
    """One row block through the fused kernel: its packed rows [loss, lse] (and gradient)."""
    kw = dict(options, sample_weight=sw, reduction="none", return_lse=True, axis=-1)
    if want_grad:
        loss, grad, lse = losses.cross_entropy_and_grad(x, t, grad_loss=gl, **kw)
    else:
        (loss, lse), grad = losses.cross_entropy(x, t, **kw), None
    packed = np.stack([np.asarray(loss, np.float64), np.asarray(lse, np.float64)], axis=-1)
    return (packed, grad) if want_grad else packed


def _finish_block(total, sw=None, z_loss=0.0):
    loss, lse = vp.finish_partials(total, reduction="none", z_loss=z_loss, sample_weight=sw,
                                   return_lse=True)
    return np.stack([loss, lse], axis=-1)


def _grad_block(x, t, start, total, sw, gl, num_classes, options):
    return vp.shard_grad(x, t, int(start[0]), num_classes, total, reduction="none",
                         sample_weight=sw, grad_loss=gl, **options)


def _cross_entropy(want_grad, logits, targets, axis, weight, ignore_index, reduction,
                   label_smoothing, eps, z_loss, softcap, logit_scale, sample_weight, return_lse,
                   grad_loss, num_threads):
    x, ax, t, prob_targets, sw, class_w, dtypes = _loss_problem(
        logits, targets, axis, weight, ignore_index, reduction, label_smoothing, eps, z_loss,
        softcap, logit_scale, sample_weight, return_lse, grad_loss, want_grad)
    rows = _ROW_LETTERS[:x.ndim - 1]
    t_ind = rows + "c" if prob_targets else rows
    den = _denominator(t, prob_targets, class_w, ignore_index, sw) \
        if reduction == "mean" else None
    gl = _row_scale(reduction, grad_loss, den, x.shape[:-1], x.chunks[:-1]) \
        if want_grad else None
    sw_args = (sw, rows) if sw is not None else (None, None)
    gl_args = (gl, rows) if gl is not None else (None, None)
    grad = None
    if x.numblocks[-1] == 1:
        options = dict(weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing,
                       eps=eps, z_loss=z_loss, softcap=softcap, logit_scale=logit_scale,
                       num_threads=num_threads)
        if want_grad:
            blocks = _tuple_blocks(_fused_block, rows + "c", x, rows + "c", t, t_ind, *sw_args,
                                   *gl_args, want_grad=True, options=options)
            packed = _part(blocks, 0, np.float64, x.chunks[:-1] + ((2,),))
            grad = _part(blocks, 1, dtypes[2], x.chunks)
        else:
            packed = _blockwise(_fused_block, rows + "p", x, rows + "c", t, t_ind, *sw_args,
                                new_axes={"p": 2}, dtype=np.float64, options=options)
    else:
        part_opts = dict(weight=weight, ignore_index=ignore_index,
                         label_smoothing=label_smoothing, softcap=softcap,
                         logit_scale=logit_scale, num_threads=num_threads)
        total = _row_totals(x, t, prob_targets, part_opts)
        packed = _blockwise(_finish_block, rows + "p", total, rows + "f", *sw_args,
                            new_axes={"p": 2}, dtype=np.float64, z_loss=z_loss)
        if want_grad:
            grad = _blockwise(_grad_block, rows + "c", x, rows + "c", t, t_ind,
                              _class_starts(x), "c", total, rows + "f", *sw_args, *gl_args,
                              dtype=dtypes[2], num_classes=x.shape[-1],
                              options=dict(part_opts, z_loss=z_loss))
    out = _loss_outputs(packed, reduction, den, dtypes, True)
    if grad is not None:
        grad = _move_axis(grad, -1, ax)
        out = (out[0], grad, out[1])
    return out if return_lse else out[:-1] if want_grad else out[0]


def cross_entropy(logits, targets, *, axis=-1, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, eps=0.0, z_loss=0.0, softcap=None, logit_scale=1.0,
                  sample_weight=None, return_lse=False, num_threads=None):
    """:func:`xent_fast.cross_entropy` of dask arrays, lazily.

    Parameters
    ----------
    logits : dask.array.Array or array_like
        Chunked along the rows and/or the class axis (float32, float64, float16, bfloat16).
    targets : dask.array.Array or array_like
        Class indices (the rows' shape) or probabilities (``logits``' shape); rechunked to
        ``logits``' chunks.
    axis, weight, ignore_index, reduction, label_smoothing, z_loss, softcap, logit_scale, \
return_lse, num_threads
        As :func:`xent_fast.cross_entropy`; ``num_threads`` is each block's kernel threads
        (default: OpenMP's default in the worker, 1 in a ``dask.distributed`` worker).
    eps : float, default 0
        As :func:`xent_fast.cross_entropy`, with the class axis in one chunk only.
    sample_weight : dask.array.Array or array_like, optional
        Broadcastable to the rows' shape.

    Returns
    -------
    loss : dask.array.Array
        0-d for 'mean' / 'sum', the rows' shape for 'none'; the NumPy API's dtype.
    lse : dask.array.Array
        With ``return_lse=True``: each row's log-sum-exp.

    Raises
    ------
    ValueError, TypeError
        At the call, for what the NumPy API rejects before reading the values; a class index
        out of range raises ValueError at compute time.

    Examples
    --------
    >>> import dask.array as da, numpy as np, xent_fast, xent_fast.dask
    >>> x = da.from_array(np.random.default_rng(0).standard_normal((8, 10)), chunks=(4, 5))
    >>> t = np.arange(8)
    >>> bool(np.isclose(xent_fast.dask.cross_entropy(x, t).compute(),
    ...                 xent_fast.cross_entropy(x.compute(), t)))
    True
    """
    return _cross_entropy(False, logits, targets, axis, weight, ignore_index, reduction,
                          label_smoothing, eps, z_loss, softcap, logit_scale, sample_weight,
                          return_lse, None, num_threads)


def cross_entropy_and_grad(logits, targets, *, axis=-1, weight=None, ignore_index=-100,
                           reduction="mean", label_smoothing=0.0, eps=0.0, z_loss=0.0,
                           softcap=None, logit_scale=1.0, sample_weight=None, return_lse=False,
                           grad_loss=None, num_threads=None):
    """:func:`xent_fast.cross_entropy_and_grad` of dask arrays, lazily.

    Parameters are those of :func:`cross_entropy`, and ``grad_loss`` (a scalar for 'mean' /
    'sum', broadcastable to the rows' shape for 'none').  The gradient comes out chunked like
    ``logits``, in the NumPy API's dtype; ``out=`` has no meaning for a lazy result.

    Returns
    -------
    loss, grad (, lse) : dask.array.Array
        Compute them together (``dask.compute(loss, grad)``) so that each block runs once.
    """
    return _cross_entropy(True, logits, targets, axis, weight, ignore_index, reduction,
                          label_smoothing, eps, z_loss, softcap, logit_scale, sample_weight,
                          return_lse, grad_loss, num_threads)


# ---- logsumexp, log_softmax, softmax ---------------------------------------------------------------

def _rows_lse(x, num_threads):
    """Each row's log-sum-exp of x (class axis last), as float64 partials combined."""
    rows = _ROW_LETTERS[:x.ndim - 1]
    total = _row_totals(x, None, False, dict(num_threads=num_threads))
    return _blockwise(vp.partials_lse, rows, total, rows + "f", dtype=np.float64)


def logsumexp(x, axis=-1, *, keepdims=False, num_threads=None):
    """:func:`xent_fast.logsumexp` of a dask array along one axis, lazily.

    The axis may be chunked: each block's (max, exp-sum) partials are combined in a tree.

    Returns
    -------
    dask.array.Array
        The NumPy API's dtype; the axis dropped, or kept with length 1 (``keepdims``).
    """
    xd = _dask(x, "x")
    if isinstance(axis, tuple) or axis is None:
        raise TypeError("xent_fast.dask.logsumexp takes one integer axis; reshape the array "
                        "to reduce several")
    dtype = np.asarray(losses.logsumexp(_meta(xd), axis=axis)).dtype
    xl, ax = _class_last(xd, axis)
    if xl.numblocks[-1] == 1:
        out = xl.map_blocks(losses.logsumexp, axis=-1, num_threads=num_threads, drop_axis=-1,
                            dtype=dtype)
    else:
        out = _rows_lse(xl, num_threads).astype(dtype)
    return da.expand_dims(out, ax) if keepdims else out


def _softmax_family(transform, shard_transform, x, axis, num_threads):
    xd = _dask(x, "x")
    dtype = transform(_meta(xd), axis=axis).dtype
    xl, ax = _class_last(xd, axis)
    if xl.numblocks[-1] == 1:
        out = xl.map_blocks(transform, axis=-1, num_threads=num_threads, dtype=dtype)
    else:
        rows = _ROW_LETTERS[:xl.ndim - 1]
        lse = _rows_lse(xl, num_threads)
        out = _blockwise(shard_transform, rows + "c", xl, rows + "c", lse, rows,
                         dtype=dtype, axis=-1, num_threads=num_threads)
    return _move_axis(out, -1, ax)


def log_softmax(x, axis=-1, *, num_threads=None):
    """:func:`xent_fast.log_softmax` of a dask array, lazily; the class axis may be chunked (each
    block then takes its rows' combined log-sum-exp)."""
    return _softmax_family(losses.log_softmax, vp.shard_log_softmax, x, axis, num_threads)


def softmax(x, axis=-1, *, num_threads=None):
    """:func:`xent_fast.softmax` of a dask array, lazily; the class axis may be chunked."""
    return _softmax_family(losses.softmax, vp.shard_softmax, x, axis, num_threads)


# ---- the linear layer + cross-entropy --------------------------------------------------------------

def _linear_block(h, t, w, b=None, sw=None, gl=None, want_grad=False, options=None):
    """One block of rows through the NumPy linear + cross-entropy."""
    kw = dict(options, linear_bias=b, sample_weight=sw, reduction="none")
    if not want_grad:
        return np.asarray(linear.linear_cross_entropy(h, w, t, **kw), np.float64)
    out = linear.linear_cross_entropy_and_grad(h, w, t, grad_loss=gl, **kw)
    return (np.asarray(out[0], np.float64), out[1], out[2][None]) + (
        (out[3][None],) if b is not None else ())


def _linear(want_grad, input, linear_weight, targets, linear_bias, weight, ignore_index,
            reduction, label_smoothing, eps, z_loss, softcap, logit_scale, sample_weight,
            grad_loss, chunk_size, num_threads):
    h = _dask(input, "input")
    w = _dask(linear_weight, "linear_weight")
    b = None if linear_bias is None else _dask(linear_bias, "linear_bias")
    t = _dask(targets, "targets")
    if h.ndim < 1 or w.ndim != 2:
        raise ValueError(f"input must be (rows..., D) and linear_weight (V, D); got shapes "
                         f"{h.shape} and {w.shape}")
    batch, n_class = h.shape[:-1], w.shape[0]
    prob_targets = t.shape == batch + (n_class,)
    if t.shape != batch and not prob_targets:
        raise ValueError(f"targets must have shape {batch} (class indices) or "
                         f"{batch + (n_class,)} (class probabilities) for input rows of shape "
                         f"{batch} and {n_class} classes; got {t.shape}")
    sw = _with_row_chunks(sample_weight, h.chunks[:-1], batch, "sample_weight")
    kw = dict(weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing,
              eps=eps, z_loss=z_loss, softcap=softcap, logit_scale=logit_scale,
              chunk_size=chunk_size, num_threads=num_threads)
    # validation and the result dtype: the NumPy API on a one-row stand-in
    one_row = (1,) * len(batch)
    meta = linear.linear_cross_entropy(
        _meta(h, one_row + h.shape[-1:]), _meta(w, w.shape), _meta(t, one_row + t.shape[
            len(batch):]), linear_bias=None if b is None else _meta(b, b.shape),
        reduction=reduction, sample_weight=None if sw is None else np.ones(one_row), **kw)
    dtype = np.asarray(meta).dtype
    # rows flattened to one axis; features, the layer's classes and its bias in one chunk each
    h2 = h.rechunk({h.ndim - 1: -1}).reshape((-1, h.shape[-1]))
    row_chunks = h2.chunks[0]
    t2 = t.reshape((-1, n_class) if prob_targets else (-1,))
    t2 = t2.rechunk((row_chunks,) + ((n_class,),) * prob_targets)
    sw2 = None if sw is None else sw.reshape((-1,)).rechunk((row_chunks,))
    class_w = None if weight is None else v.class_weight(weight, n_class)
    den = _denominator(t2, prob_targets, class_w, ignore_index, sw2) \
        if reduction == "mean" else None
    args = [h2, "id", t2, "ic" if prob_targets else "i", w.rechunk(-1), "cd"]
    args += [b.rechunk(-1), "c"] if b is not None else [None, None]
    args += [sw2, "i"] if sw2 is not None else [None, None]
    if not want_grad:
        rows = _blockwise(_linear_block, "i", *args, dtype=np.float64, options=kw)
        return _loss_outputs(rows[..., None], reduction, den, (dtype,), False).reshape(
            batch if reduction == "none" else ())
    gl = _row_scale(reduction, grad_loss, den, (h2.shape[0],), (row_chunks,))
    blocks = _tuple_blocks(_linear_block, "id", *args, gl, "i", want_grad=True, options=kw)
    one_per_block = (1,) * len(row_chunks)
    rows = _part(blocks, 0, np.float64, (row_chunks,))
    loss = _loss_outputs(rows[..., None], reduction, den, (dtype,), False)
    out = [loss.reshape(batch if reduction == "none" else ()),
           _part(blocks, 1, dtype, h2.chunks).reshape(h.shape),
           _part(blocks, 2, dtype, (one_per_block, (n_class,), (w.shape[1],))).sum(
               axis=0, split_every=4)]
    if b is not None:
        out.append(_part(blocks, 3, dtype, (one_per_block, (n_class,))).sum(
            axis=0, split_every=4))
    return tuple(out)


def linear_cross_entropy(input, linear_weight, targets, *, linear_bias=None, weight=None,
                         ignore_index=-100, reduction="mean", label_smoothing=0.0, eps=0.0,
                         z_loss=0.0, softcap=None, logit_scale=1.0, sample_weight=None,
                         chunk_size=None, num_threads=None):
    """:func:`xent_fast.linear_cross_entropy` of dask hidden states chunked by rows, lazily.

    Each block of rows runs the NumPy function (which never holds its block's logits) where the
    block lives; the layer's weight (a NumPy or dask array) is one chunk, sent once to each
    worker that needs it.  Parameters as :func:`xent_fast.linear_cross_entropy`;
    ``chunk_size`` is the row chunk inside each block.

    Returns
    -------
    loss : dask.array.Array
        0-d for 'mean' / 'sum', the rows' shape for 'none'.
    """
    return _linear(False, input, linear_weight, targets, linear_bias, weight, ignore_index,
                   reduction, label_smoothing, eps, z_loss, softcap, logit_scale, sample_weight,
                   None, chunk_size, num_threads)


def linear_cross_entropy_and_grad(input, linear_weight, targets, *, linear_bias=None,
                                  weight=None, ignore_index=-100, reduction="mean",
                                  label_smoothing=0.0, eps=0.0, z_loss=0.0, softcap=None,
                                  logit_scale=1.0, sample_weight=None, grad_loss=None,
                                  chunk_size=None, num_threads=None):
    """:func:`xent_fast.linear_cross_entropy_and_grad` of dask hidden states, lazily.

    ``grad_linear_weight`` (and ``grad_linear_bias``) are each block's share, summed in a tree
    across workers: only (V, D) arrays, one per block, cross the network, never logits.

    Returns
    -------
    loss, grad_input, grad_linear_weight (, grad_linear_bias) : dask.array.Array
        Compute them together (``dask.compute(...)``) so that each block runs once.
    """
    return _linear(True, input, linear_weight, targets, linear_bias, weight, ignore_index,
                   reduction, label_smoothing, eps, z_loss, softcap, logit_scale, sample_weight,
                   grad_loss, chunk_size, num_threads)
