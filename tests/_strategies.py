"""Hypothesis strategies for the xent_fast suite (not a test module).

Array *values* come from a NumPy generator seeded by hypothesis (fast to generate, still shrinkable
through the seed); hypothesis explores shapes, axes, dtypes, layouts and every option.
"""

import numpy as np
from hypothesis import strategies as st

from _helpers import reduced_shape

REDUCTIONS = ["none", "mean", "sum"]
SIGNED = [np.int8, np.int16, np.int32, np.int64]
UNSIGNED = [np.uint8, np.uint16, np.uint32, np.uint64]

# sizes that hit SIMD/blocking remainders
_ODD_C = [1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 257]
_ODD_N = [15, 16, 17, 31, 33, 64, 100, 129]


def float_dtypes(convertible=True, half=False):
    """float32/float64 mostly; sometimes a dtype converted to float64 by the dtype rule (float16
    too when `half`: the binary family converts it, the class families store it, which
    test_half.py covers)."""
    base = st.sampled_from([np.float64, np.float32])
    if not convertible:
        return base
    converted = [np.float16, np.int16, np.int64] if half else [np.int16, np.int64]
    return st.one_of(base, base, base, st.sampled_from(converted))


@st.composite
def class_shapes(draw, min_ndim=1, max_ndim=4, allow_empty=True, max_elems=20000):
    """(shape, axis) with a class axis of size C >= 1 and any other sizes (0 included)."""
    ndim = draw(st.integers(min_ndim, max_ndim))
    axis = draw(st.integers(-ndim, ndim - 1))
    C = draw(st.one_of(st.integers(1, 9), st.sampled_from(_ODD_C)))
    lo = 0 if allow_empty else 1
    if ndim == 2:
        others = [draw(st.one_of(st.integers(lo, 12), st.sampled_from(_ODD_N)))]
    else:
        others = [draw(st.integers(lo, {1: 1, 3: 6, 4: 4}[ndim])) for _ in range(ndim - 1)]
    shape = list(others)
    shape.insert(axis % ndim, C)
    while int(np.prod(shape)) > max_elems:
        i = int(np.argmax([s if j != axis % ndim else 0 for j, s in enumerate(shape)]))
        shape[i] = max(1, shape[i] // 2)
    return tuple(shape), axis


@st.composite
def elem_shapes(draw, min_ndim=1, max_ndim=3):
    """Shapes for the element-wise binary losses (0 sizes included)."""
    ndim = draw(st.integers(min_ndim, max_ndim))
    sides = {1: 70, 2: 12, 3: 5}[ndim] if ndim else 1
    return tuple(draw(st.one_of(st.integers(0, sides), st.sampled_from([1, 17, 33])))
                 for _ in range(ndim))


LOGIT_KINDS = ["normal", "normal", "wide", "ints", "masked", "huge", "tiny"]


def gen_logits(rng, shape, kind, axis=-1):
    """float64 logits of a given flavour."""
    if kind == "normal":
        return rng.standard_normal(shape) * 2.0
    if kind == "wide":
        return rng.standard_normal(shape) * 30.0
    if kind == "ints":  # ties, equal maxima
        return rng.integers(-3, 4, size=shape).astype(np.float64)
    if kind == "masked":  # -inf masks, at least one finite entry per row
        x = rng.standard_normal(shape) * 3.0
        m = rng.uniform(size=shape) < 0.3
        if len(shape):
            ax = axis % len(shape)
            first = [slice(None)] * len(shape)
            first[ax] = 0
            m[tuple(first)] = False
        return np.where(m, -np.inf, x)
    if kind == "huge":
        return rng.standard_normal(shape) * 1e30
    if kind == "tiny":
        return rng.standard_normal(shape) * 1e-8
    raise ValueError(kind)


PROB_KINDS = ["uniform", "normalized", "edges"]


def gen_probs(rng, shape, kind, axis=-1):
    if kind == "uniform":
        return rng.uniform(0.0, 1.0, size=shape)
    if kind == "normalized":
        if not len(shape):
            return np.float64(1.0)
        g = rng.exponential(1.0, size=shape)
        return g / np.maximum(g.sum(axis=axis, keepdims=True), 1e-300)
    if kind == "edges":  # exact 0 and 1 present
        p = rng.uniform(0.0, 1.0, size=shape)
        r = rng.uniform(size=shape)
        return np.where(r < 0.2, 0.0, np.where(r > 0.8, 1.0, p))
    raise ValueError(kind)


@st.composite
def index_targets(draw, rng, shape, axis, ignore_index=-100):
    """Integer class indices of the logits' shape minus the class axis, with ignored entries."""
    C = shape[axis % len(shape)]
    tshape = reduced_shape(shape, axis)
    t = rng.integers(0, C, size=tshape)
    p_ignore = draw(st.sampled_from([0.0, 0.0, 0.3, 1.0]))
    if p_ignore:
        t = np.where(rng.uniform(size=tshape) < p_ignore, ignore_index, t)
    lo, hi = int(t.min(initial=0)), int(t.max(initial=0))
    fits = [d for d in SIGNED + UNSIGNED if np.iinfo(d).min <= lo and np.iinfo(d).max >= hi]
    dtype = draw(st.sampled_from(fits))
    return np.asarray(t, dtype=dtype)


@st.composite
def ignore_indices(draw, C):
    """None (the default -100), another negative number, a class in [0, C) or a number >= C."""
    return draw(st.sampled_from([None, None, -1, -7, 0, C - 1, C + 5]))


@st.composite
def class_weights(draw, rng, C, allow_zero=True, as_list=True):
    kind = draw(st.sampled_from(["none", "none", "pos", "pos"] + (["zeros"] if allow_zero else [])))
    if kind == "none":
        return None
    w = rng.uniform(0.1, 3.0, size=C)
    if kind == "zeros":
        w[rng.uniform(size=C) < 0.4] = 0.0
    if as_list and draw(st.booleans()) and draw(st.booleans()):
        return w.tolist()
    return w


def smoothing():
    return st.one_of(st.just(0.0), st.just(0.0), st.just(1.0),
                     st.floats(0.0, 1.0, allow_nan=False))


def eps_values(default=None):
    """eps in [0, 0.5): 0, small, or anything; ``default`` (None = don't pass)."""
    return st.one_of(st.just(default), st.just(0.0), st.just(1e-7), st.just(1e-15),
                     st.floats(0.0, 0.49, allow_nan=False))


@st.composite
def grad_losses(draw, rng, reduction, loss_shape):
    """An upstream gradient: None, a scalar, or (for reduction none) an array of the loss's shape
    or broadcastable to it."""
    kind = draw(st.sampled_from(["none", "scalar", "array", "bcast"]))
    if kind == "none":
        return None
    if kind == "scalar" or reduction != "none":
        return float(draw(st.sampled_from([1.0, 2.5, -0.75, 0.0])))
    if kind == "array":
        return rng.uniform(-2.0, 2.0, size=loss_shape)
    return rng.uniform(-2.0, 2.0, size=tuple(1 for _ in loss_shape))


def gen_x(rng, shape, kind, dtype, axis=-1):
    """Logits of ``kind`` in ``dtype`` (integer and float16 inputs get values they can hold)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return rng.integers(-20, 21, size=shape).astype(dtype)
    if dtype == np.float16 and kind in ("huge", "wide"):
        kind = "normal"
    return gen_logits(rng, shape, kind, axis).astype(dtype)


def gen_p(rng, shape, kind, dtype, axis=-1):
    """Probabilities of ``kind`` in ``dtype`` (integer inputs are 0/1)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return rng.integers(0, 2, size=shape).astype(dtype)
    return np.asarray(gen_probs(rng, shape, kind, axis)).astype(dtype)


seeds = st.integers(0, 2**32 - 1)
