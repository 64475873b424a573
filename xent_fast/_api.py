"""The public functions: validate, normalise, allocate, make one kernel call.

No loss is computed here.  Each function checks its arguments (O(1) NumPy calls; class indices are
range-checked inside the kernel's own pass), maps its arrays onto the kernels' rows view and hands
them to xent_fast._kernels.  Three kernel families sit behind the twelve functions:
``_class_rows_loss`` (cross-entropy, nll_loss, categorical cross-entropy), ``_softmax_rows`` and
``_logsumexp`` (log_softmax, softmax; logsumexp) and ``_binary_loss`` (both binary
cross-entropies).
"""
import math

import numpy as np

from . import _kernels
from . import _validate as v
from ._kernels import element_strides, rows_layout

_LOGITS, _LOG_PROBS, _PROBS = 0, 1, 2
_INPUT_NAMES = {_LOGITS: "logits", _LOG_PROBS: "log_probs", _PROBS: "probs"}
_LOGSUMEXP, _LOG_SOFTMAX, _SOFTMAX = 0, 1, 2


def _class_targets(targets, x, axis, row_shape_full, compute, n_class=None):
    """Split targets into (class indices as int64, None) or (None, probabilities in `compute`);
    class indices lie in [0, n_class) (default: x's class axis)."""
    n_class = x.shape[axis] if n_class is None else n_class
    t = v.as_array(targets, "targets")
    if t.shape == row_shape_full:
        if t.dtype.kind not in "iu":
            raise TypeError(
                f"targets of shape {t.shape} are class indices and must have an integer dtype, "
                f"got {t.dtype} (probability targets have the input's full shape {x.shape})")
        if t.dtype == np.uint64 and t.size and t.max() > v.INT64_MAX:
            flat = int(np.argmax(t > v.INT64_MAX))
            raise ValueError(f"targets holds class index {int(t.flat[flat])} at position "
                             f"{v.position(flat, t.shape)}, outside [0, {n_class})")
        return v.kernel_readable(t.astype(np.int64, copy=False)), None
    if t.shape == x.shape:
        return None, v.as_dtype(t, compute, "targets")
    raise ValueError(
        f"targets must have shape {row_shape_full} (class indices) or {x.shape} (class "
        f"probabilities) for input of shape {x.shape} with class axis {axis}; got {t.shape}")


def _gradient_out(out, x, x_in, others):
    """The gradient's array: a new one of x's dtype, or a checked `out=` (x's dtype, or float32
    for half-precision x), which may be x itself."""
    if out is None:
        return np.empty_like(x, order="K")
    allowed = (x.dtype, np.dtype(np.float32)) if v.is_half(x.dtype) else (x.dtype,)
    dtype = out.dtype if isinstance(out, np.ndarray) and out.dtype in allowed else x.dtype
    g = v.output_array(out, x.shape, dtype)
    v.no_overlap(g, "out", [x] + others, in_place_ok=x if x is x_in else None)
    return g


def _logit_options(logit_scale, softcap, z_loss):
    """The large-model options checked: (logit_scale, softcap with 0 for None, z_loss)."""
    logit_scale = v.finite_option(logit_scale, "logit_scale", nonzero=True)
    softcap = 0.0 if softcap is None else v.finite_option(softcap, "softcap", positive=True)
    z_loss = v.finite_option(z_loss, "z_loss", nonnegative=True)
    return logit_scale, softcap, z_loss


def _class_rows_layout(x, axis, index_t, prob_t, g, sw):
    """The rows view of a cross-entropy call's arrays (None where absent): (n_class, row_shape,
    x, t, y, g and sw strides), per-row arrays given a 0 stride on the class axis."""
    x_el = element_strides(x)
    row_strides = []
    for per_row in (index_t, sw):
        el = element_strides(per_row) if per_row is not None else None
        row_strides.append(el[:axis] + (0,) + el[axis:] if el is not None else None)
    arrays = [x_el, row_strides[0], element_strides(prob_t) if prob_t is not None else None,
              element_strides(g) if g is not None else None, row_strides[1]]
    present = [s for s in arrays if s is not None]
    n_class, row_shape, strides = rows_layout(x.shape, axis, present)
    it = iter(strides)
    return (n_class, row_shape) + tuple(next(it) if s is not None else (0, ()) for s in arrays)


def _check_status(status, bad_row, bad_value, row_shape_full, n_class, ignore_index):
    """A kernel's status as the exception it stands for (nothing for XENT_OK)."""
    if status == 1:
        raise ValueError(
            f"targets holds class index {bad_value} at position "
            f"{v.position(bad_row, row_shape_full)}, outside [0, {n_class}) and not "
            f"ignore_index={ignore_index}")
    if status != 0:
        raise MemoryError("xent_fast kernel could not allocate its block buffers")


def _class_rows_loss(input_kind, x, targets, axis, weight, ignore_index, reduction,
                     label_smoothing, eps, num_threads, want_grad, grad_loss, out,
                     logit_scale=1.0, softcap=None, z_loss=0.0, sample_weight=None,
                     return_lse=False):
    """The cross-entropy family: one kernel call computes the loss and, if asked, its gradient
    (and the rows' log-sum-exp)."""
    name = _INPUT_NAMES[input_kind]
    x_in = x
    x = v.storage_array(x, name)
    compute = v.compute_dtype(x.dtype)
    axis = v.class_axis(axis, x.ndim, array=name)
    n_class = x.shape[axis]
    if n_class == 0:
        raise ValueError(f"{name} has an empty class axis (axis {axis} of shape {x.shape})")
    row_shape_full = x.shape[:axis] + x.shape[axis + 1:]
    index_t, prob_t = _class_targets(targets, x, axis, row_shape_full, compute)
    if prob_t is not None and input_kind == _LOG_PROBS:
        raise ValueError(f"nll_loss takes class-index targets of shape {row_shape_full}, "
                         f"got probabilities of shape {prob_t.shape}")
    w = v.class_weight(weight, n_class)
    ignore_index = v.integer_option(ignore_index, "ignore_index")
    code = v.reduction_code(reduction)
    label_smoothing = v.real_option(label_smoothing, "label_smoothing", 0.0, 1.0, True)
    eps = v.real_option(eps, "eps", 0.0, 0.5, False)
    logit_scale, softcap, z_loss = _logit_options(logit_scale, softcap, z_loss)
    sw = v.row_weights(sample_weight, row_shape_full)
    threads = v.thread_count(num_threads)

    loss_shape = row_shape_full if code == 0 else ()
    gl, gl_stride = (None, 0)
    g = None
    if want_grad:
        gl, gl_stride = v.upstream_gradient(grad_loss, loss_shape)
        g = _gradient_out(out, x, x_in, [index_t, prob_t, w, sw])

    n_class, row_shape, x_s, t_s, y_s, g_s, sw_s = _class_rows_layout(x, axis, index_t, prob_t,
                                                                       g, sw)
    n_rows = math.prod(row_shape_full)
    loss_rows = np.empty(n_rows, np.float64) if code == 0 else None
    lse_rows = np.empty(n_rows, np.float64) if return_lse else None
    status, loss, bad_row, bad_value = _kernels.cross_entropy(
        v.dtype_code(x.dtype), input_kind, n_class, row_shape, x, x_s, index_t, t_s,
        prob_t, y_s, w, ignore_index, label_smoothing, eps, code, gl, gl_stride, g,
        v.dtype_code(g.dtype) if g is not None else 0, g_s, loss_rows, logit_scale, softcap,
        z_loss, sw, sw_s, lse_rows, threads, g_new=want_grad and out is None)
    _check_status(status, bad_row, bad_value, row_shape_full, n_class, ignore_index)
    result = (loss_rows.reshape(row_shape_full).astype(compute, copy=False) if code == 0
              else compute.type(loss))
    results = (result, g) if want_grad else (result,)
    if return_lse:
        results += (lse_rows.reshape(row_shape_full).astype(compute, copy=False),)
    return results if len(results) > 1 else result


def _softmax_rows(what, x, axis, out, num_threads, lse=None, name="x"):
    """log_softmax or softmax along `axis`; an empty array gives an empty result (as PyTorch), a
    0-d array is a row of one value (as NumPy's reductions and PyTorch take it).  With lse (a
    vocabulary shard's rows), each row's log-sum-exp is that given, not the row's own."""
    x_in = x
    x = v.storage_array(x, name)
    axis = v.class_axis(axis, max(x.ndim, 1))
    threads = v.thread_count(num_threads)
    if lse is not None:
        row_shape_full = x.shape[:axis] + x.shape[axis + 1:]
        lse = v.contiguous(v.row_weights(lse, row_shape_full, "lse", "the rows' shape"))
    if out is None:
        out = np.empty_like(x, order="K")
    else:
        v.output_array(out, x.shape, x.dtype)
        v.no_overlap(out, "out", [x, lse], in_place_ok=x if x is x_in else None)
    if x.size == 0:
        return out
    xr, outr = (x.reshape(1), out.reshape(1)) if x.ndim == 0 else (x, out)  # views
    n_class, row_shape, (x_s, o_s) = rows_layout(
        xr.shape, axis, [element_strides(xr), element_strides(outr)])
    if lse is None:
        status = _kernels.softmax_rows(v.dtype_code(x.dtype), what, n_class, row_shape, xr, x_s,
                                       outr, o_s, None, threads)
    else:
        status = _kernels.softmax_rows_lse(v.dtype_code(x.dtype), what, n_class, row_shape, xr,
                                           x_s, outr, o_s, lse, threads)
    if status != 0:
        raise MemoryError("xent_fast kernel could not allocate its row buffers")
    return out


def _logsumexp(x, axis, keepdims, num_threads):
    """logsumexp over one axis, several (moved last and merged into one, so that one kernel call
    reduces them), all (None) or none (``()``)."""
    x = v.storage_array(x, "x")
    compute = v.compute_dtype(x.dtype)
    axes = v.reduced_axes(axis, x.ndim)
    threads = v.thread_count(num_threads)
    kept_shape = tuple(n for d, n in enumerate(x.shape) if d not in axes)
    n_reduced = math.prod(x.shape[d] for d in axes)
    if n_reduced == 0:  # the log of an empty sum, as SciPy and PyTorch
        res = np.full(kept_shape, -np.inf, compute)
    elif x.size == 0:
        res = np.empty(kept_shape, compute)
    else:
        # a view unless the reduced axes cannot be merged in place (then a copy)
        rows = np.moveaxis(x, axes, range(x.ndim - len(axes), x.ndim))
        rows = rows.reshape(kept_shape + (n_reduced,))
        res = np.empty(math.prod(kept_shape), np.float64)
        n_class, row_shape, (x_s,) = rows_layout(rows.shape, rows.ndim - 1,
                                                 [element_strides(rows)])
        status = _kernels.softmax_rows(v.dtype_code(x.dtype), _LOGSUMEXP, n_class, row_shape,
                                       rows, x_s, None, (0, ()), res, threads)
        if status != 0:
            raise MemoryError("xent_fast kernel could not allocate its row buffers")
        res = res.reshape(kept_shape).astype(compute, copy=False)
    if keepdims:
        res = res.reshape(tuple(1 if d in axes else n for d, n in enumerate(x.shape)))
    return res[()] if res.ndim == 0 else res  # a NumPy scalar, as NumPy's reductions give


def _binary_loss(with_logits, x, targets, eps, weight, pos_weight, reduction, num_threads,
                 want_grad, grad_loss, out):
    """The binary family: element-wise log loss on probabilities or logits."""
    name = "logits" if with_logits else "probs"
    x_in = x
    x = v.float_array(x, name)
    y = v.as_dtype(targets, x.dtype, "targets")
    if y.shape != x.shape:
        raise ValueError(f"targets must have the shape of {name} {x.shape}, got {y.shape}")
    code = v.reduction_code(reduction)
    eps = 0.0 if with_logits else v.real_option(eps, "eps", 0.0, 0.5, False)
    threads = v.thread_count(num_threads)
    w = _broadcast_weight(weight, x, "weight")
    pw = None
    if pos_weight is not None:
        pw = v.as_array(pos_weight, "pos_weight")
        if pw.ndim <= 1 and x.ndim >= 1 and pw.size in (1, x.shape[-1]):
            pw = v.contiguous(np.broadcast_to(v.as_dtype(pw, x.dtype, "pos_weight"),
                                                      x.shape[-1:]))
        else:
            pw = _broadcast_weight(pw, x, "pos_weight")
    loss_shape = x.shape if code == 0 else ()
    gl, gl_stride = v.upstream_gradient(grad_loss, loss_shape) if want_grad else (None, 0)
    if out is not None:
        v.output_array(out, x.shape, x.dtype)
        v.no_overlap(out, "out", [x, y], in_place_ok=x if x is x_in else None)
    xc, yc = v.contiguous(x), v.contiguous(y)
    g = None
    if want_grad:
        g = out if out is not None and out.flags.c_contiguous else np.empty(x.shape, x.dtype)
    loss_elems = np.empty(x.shape, np.float64) if code == 0 else None
    status, loss = _kernels.binary(v.DTYPE_CODES[x.dtype], int(with_logits), xc, yc, w, pw,
                                   eps, code, gl, gl_stride, g, loss_elems, threads)
    if status != 0:
        raise MemoryError("xent_fast kernel could not allocate its block buffers")
    if want_grad and out is not None and g is not out:
        np.copyto(out, g)
        g = out
    result = loss_elems.astype(x.dtype, copy=False) if code == 0 else x.dtype.type(loss)
    return (result, g) if want_grad else result


def _broadcast_weight(weight, x, name):
    """A weight broadcast to x's shape as a contiguous array of x's dtype, or None."""
    if weight is None:
        return None
    w = v.as_dtype(weight, x.dtype, name)
    try:
        if np.broadcast_shapes(w.shape, x.shape) != x.shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"{name} of shape {w.shape} does not broadcast to the input's shape "
                         f"{x.shape}") from None
    return v.contiguous(np.broadcast_to(w, x.shape))
