"""Argument checks and array normalisation shared by the public functions.

Each check raises ValueError or TypeError with a message that names the argument, before any
output is written.  Arrays are turned into what the kernels accept (float32/float64, aligned,
strides in whole elements) without copying whenever the input already is.
"""
import math
import numbers
import operator

import numpy as np

REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}
DTYPE_CODES = {np.dtype(np.float32): 0, np.dtype(np.float64): 1}
HALF_CODES = {"float16": 2, "bfloat16": 3}
INT64 = np.iinfo(np.int64)
INT64_MIN, INT64_MAX = int(INT64.min), int(INT64.max)  # iinfo's properties cost a call each


def is_half(dtype):
    """float16, or bfloat16 (ml_dtypes' dtype, recognised by name without importing ml_dtypes)."""
    return dtype.itemsize == 2 and dtype.name in HALF_CODES


def dtype_code(dtype):
    """The kernels' storage-type code of a float32/float64/float16/bfloat16 dtype."""
    return HALF_CODES[dtype.name] if is_half(dtype) else DTYPE_CODES[dtype]


def compute_dtype(dtype):
    """The dtype the kernels compute a storage type in: float32 for the half-width types."""
    return np.dtype(np.float32) if is_half(dtype) else dtype


def as_array(value, name):
    """np.asarray(value), with errors that name the argument: None, or a ragged nested sequence."""
    if value is None:
        raise TypeError(f"{name} must be an array_like of numbers, got None")
    try:
        return np.asarray(value)
    except ValueError as exc:  # NumPy's "inhomogeneous shape" of a ragged nested sequence
        raise ValueError(f"{name} must be a rectangular array_like, got a ragged nested sequence "
                         f"({exc})") from None


def float_array(value, name):
    """`value` as a float32/float64 array the kernels can read.

    float32 and float64 are kept; every other real numeric dtype (bool, integers, float16,
    longdouble) becomes float64.  Complex, object and string data are a TypeError.
    """
    arr = as_array(value, name)
    if arr.dtype not in DTYPE_CODES:
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers, got an array of dtype {arr.dtype}")
        arr = arr.astype(np.float64)
    return kernel_readable(arr)


def storage_array(value, name):
    """float_array, keeping float16 and bfloat16: the kernels read those in place."""
    arr = as_array(value, name)
    if arr.dtype in DTYPE_CODES or is_half(arr.dtype):
        return kernel_readable(arr)
    return float_array(arr, name)


def whole_elements(arr):
    """True when arr is aligned with strides in whole elements (what the kernels read)."""
    if not arr.flags.aligned:
        return False
    size = arr.itemsize
    for s in arr.strides:
        if s % size:
            return False
    return True


def kernel_readable(arr):
    """The array itself when aligned with strides in whole elements, else a copy."""
    return arr if whole_elements(arr) else np.array(arr, copy=True)


def contiguous(arr, dtype=None):
    """arr as a C-contiguous and aligned array of `dtype` (np.ascontiguousarray keeps an unaligned
    buffer, such as one unpickled from a byte stream, which the kernels must not read as doubles)."""
    return np.require(arr, dtype=dtype, requirements=("C", "A"))


def as_dtype(value, dtype, name):
    """A real numeric array-like converted to `dtype` (no copy when it already is)."""
    arr = as_array(value, name)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got an array of dtype {arr.dtype}")
    return kernel_readable(arr.astype(dtype, copy=False))


def class_axis(axis, ndim, name="axis", array="the input"):
    """`axis` as a non-negative int for an array of `ndim` dimensions (`array` names it)."""
    if ndim == 0:
        raise ValueError(f"{array} must have at least one dimension, the class axis; got a 0-d "
                         "array")
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(axis).__name__}") from None
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of bounds for an array of {ndim} dimensions")
    return axis % ndim


def finite_option(value, name, positive=False, nonnegative=False, nonzero=False):
    """A finite float option (NaN and inf refused), with the sign the option needs."""
    if type(value) is not float and type(value) is not int and (  # the common, cheap case
            isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    if nonnegative and not value >= 0:
        raise ValueError(f"{name} must be non-negative, got {value!r}")
    if nonzero and value == 0:
        raise ValueError(f"{name} must not be 0")
    return value


def row_weights(sample_weight, row_shape, name="sample_weight", rows="the targets' row shape"):
    """sample_weight (or another per-row array, `name`) broadcast (no copy) to the rows' shape,
    float64, or None."""
    if sample_weight is None:
        return None
    sw = np.asarray(sample_weight)
    if sw.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got an array of dtype {sw.dtype}")
    try:
        sw = np.broadcast_to(sw.astype(np.float64, copy=False), row_shape)
    except ValueError:
        raise ValueError(f"{name} of shape {sw.shape} does not broadcast to {rows} "
                         f"{tuple(row_shape)}") from None
    return kernel_readable(sw)


def reduced_axes(axis, ndim):
    """`axis` (None for all, an int or a tuple of ints) as a sorted tuple of distinct
    non-negative axes.  A 0-d array takes axis 0 or -1 and reduces nothing, as in NumPy."""
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, tuple) else (axis,)
    try:
        axes = [operator.index(a) for a in items]
    except TypeError:
        raise TypeError(f"axis must be an integer, a tuple of integers or None, got "
                        f"{axis!r}") from None
    bound = max(ndim, 1)
    for a in axes:
        if not -bound <= a < bound:
            raise ValueError(f"axis={a} is out of bounds for an array of {ndim} dimensions")
    axes = [a % bound for a in axes]
    if len(set(axes)) != len(axes):
        raise ValueError(f"axis={axis!r} names an axis twice")
    return tuple(sorted(a for a in axes if a < ndim))


def reduction_code(reduction):
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of 'none', 'mean', 'sum'; got {reduction!r}")
    return REDUCTIONS[reduction]


def real_option(value, name, low, high, high_inclusive):
    """A float option within [low, high] (or [low, high) when not high_inclusive)."""
    if type(value) is not float and type(value) is not int and (  # the common, cheap case
            isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    inside = low <= value <= high if high_inclusive else low <= value < high
    if not inside:
        bracket = "]" if high_inclusive else ")"
        raise ValueError(f"{name} must be in [{low}, {high}{bracket}, got {value!r}")
    return value


def integer_option(value, name):
    if type(value) is not int:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must be an integer, got {value!r}")
        try:
            value = operator.index(value)
        except TypeError:
            raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{name}={value} does not fit in a 64-bit integer")
    return value


def thread_count(num_threads):
    """The kernels' thread request: 0 means OpenMP's default (OMP_NUM_THREADS, threadpoolctl)."""
    if num_threads is None:
        return 0
    num_threads = integer_option(num_threads, "num_threads")
    if num_threads < 1:
        raise ValueError(f"num_threads must be a positive integer or None, got {num_threads}")
    return min(num_threads, 4096)


def class_weight(weight, n_class):
    """weight as a contiguous float64 array of n_class elements, or None."""
    if weight is None:
        return None
    w = as_array(weight, "weight")
    if w.dtype.kind not in "biuf":
        raise TypeError(f"weight must hold real numbers, got an array of dtype {w.dtype}")
    if w.shape != (n_class,):
        raise ValueError(f"weight must have shape ({n_class},), one per class, got {w.shape}")
    return contiguous(w, np.float64)


def output_array(out, shape, dtype, name="out"):
    """Check a caller-supplied output array: right type, shape, dtype, writable, element strides."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {out.shape}")
    if out.dtype != dtype:
        raise ValueError(f"{name} must have dtype {dtype}, got {out.dtype}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    if not whole_elements(out):
        raise ValueError(f"{name} must be aligned with strides in whole elements")
    if 0 in out.strides and out.size > 1 and any(
            s == 0 and n > 1 for s, n in zip(out.strides, out.shape)):
        raise ValueError(f"{name} must not have zero strides (a broadcast view)")
    return out


def same_view(a, b):
    """True when two arrays are the very same memory view (in-place operation)."""
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.strides == b.strides and a.shape == b.shape and a.dtype == b.dtype)


def no_overlap(out, name, inputs, in_place_ok=None):
    """out must not share memory with any input, unless it is exactly the view `in_place_ok`."""
    for arr in inputs:
        if arr is None or not np.may_share_memory(out, arr):
            continue
        if arr is in_place_ok and same_view(out, arr):
            continue
        raise ValueError(f"{name} overlaps an input array; pass a separate array"
                         + (" or the input itself" if in_place_ok is not None else ""))


def upstream_gradient(grad_loss, loss_shape):
    """grad_loss as (float64 array, stride) for the kernels: one scalar, or one value per row."""
    if grad_loss is None:
        return None, 0
    g = as_array(grad_loss, "grad_loss")
    if g.dtype.kind not in "biuf":
        raise TypeError(f"grad_loss must hold real numbers, got an array of dtype {g.dtype}")
    try:
        g = np.broadcast_to(g, loss_shape)
    except ValueError:
        raise ValueError(f"grad_loss of shape {g.shape} does not broadcast to the loss's "
                         f"shape {tuple(loss_shape)}") from None
    if len(loss_shape) == 0:
        return np.array([g], dtype=np.float64), 0
    return contiguous(g, dtype=np.float64).reshape(-1), 1


def position(flat_index, shape):
    """The multi-index of a C-order flat index, as a tuple."""
    return tuple(int(i) for i in np.unravel_index(flat_index, shape)) if shape else ()
