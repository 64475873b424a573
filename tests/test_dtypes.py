"""The dtype rule and result types (docs/DESIGN.md, "Public API"): float32 and float64
are computed natively and keep their dtype; every other real numeric input becomes float64;
complex/object/str are a TypeError; mean/sum give a NumPy scalar, none an ndarray; array-likes
(Python lists, tuples, scalars) work as in the seeds."""

import numpy as np
import pytest

from _helpers import ALL_NAMES, FUNCS, LOSS_NAMES, assert_same_bits, impl, make_case

CONVERTED = [np.float16, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint64,
             np.longdouble, bool]


def _as(x, dtype, fn):
    if np.dtype(dtype).kind in "biu":
        if fn.family in ("cat", "bce"):
            return (x > 0.5).astype(dtype)
        if np.dtype(dtype).kind == "u" or dtype is bool:
            return (np.abs(x) * 3).astype(dtype) if dtype is not bool else (x > 0).astype(dtype)
        return (x * 3).astype(dtype)
    return x.astype(dtype)


def _split(name, res):
    return res if FUNCS[name].grad else (res, None)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ALL_NAMES)
def test_native_dtypes_are_kept(name, dtype, rng):
    fn = FUNCS[name]
    args, kw = make_case(name, rng, (6, 5), dtype=dtype)
    reds = ["none", "mean", "sum"] if fn.is_loss else [None]
    for red in reds:
        k = dict(kw, reduction=red) if red else kw
        loss, g = _split(name, getattr(impl, name)(*args, **k))
        if red in ("mean", "sum"):
            assert type(loss) is np.dtype(dtype).type, type(loss)
        else:
            assert isinstance(loss, np.ndarray) and loss.dtype == dtype
        if g is not None:
            assert isinstance(g, np.ndarray) and g.dtype == dtype and g.shape == args[0].shape


# float16 is converted by the binary losses only: the class and softmax families store it
# (computed in float32, test_half.py).
_CONVERSIONS = [(name, dtype) for name in ALL_NAMES for dtype in CONVERTED
                if dtype is not np.float16 or FUNCS[name].family in ("bce", "bcel")]


@pytest.mark.parametrize("name, dtype", _CONVERSIONS,
                         ids=["%s-%s" % (n, np.dtype(d).name) for n, d in _CONVERSIONS])
def test_other_real_dtypes_are_converted_to_float64(name, dtype, rng):
    fn = FUNCS[name]
    args, kw = make_case(name, rng, (6, 5))
    x = _as(args[0], dtype, fn)
    assert x.dtype == np.dtype(dtype)
    res = getattr(impl, name)(x, *args[1:], **kw)
    expected = getattr(impl, name)(x.astype(np.float64), *args[1:], **kw)
    loss, g = _split(name, res)
    el, eg = _split(name, expected)
    assert np.asarray(loss).dtype == np.float64
    assert_same_bits(loss, el, "converted input vs float64 input")
    if g is not None:
        assert g.dtype == np.float64
        assert_same_bits(g, eg, "gradient: converted input vs float64 input")


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("bad", [np.complex64, np.complex128, object, "U3", "S3", "datetime64[s]",  # noqa
                                 "V8"])
def test_non_real_dtypes_are_type_errors(name, bad, rng):
    args, kw = make_case(name, rng, (3, 4))
    x = args[0]
    try:
        xb = x.astype(bad)
    except (TypeError, ValueError):
        xb = np.zeros(x.shape, dtype=bad)
    with pytest.raises(TypeError, match=FUNCS[name].first):
        getattr(impl, name)(xb, *args[1:], **kw)


@pytest.mark.parametrize("tdtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                                    np.uint32, np.uint64, np.intp, np.longlong])
@pytest.mark.parametrize("name", ["cross_entropy", "cross_entropy_and_grad", "nll_loss",
                                  "categorical_cross_entropy", "categorical_cross_entropy_and_grad"])
def test_every_integer_target_dtype_gives_the_same_result(name, tdtype, rng):
    (x, t), kw = make_case(name, rng, (7, 5))
    a = getattr(impl, name)(x, t.astype(np.int64), reduction="none", **kw)
    b = getattr(impl, name)(x, t.astype(tdtype), reduction="none", **kw)
    for u, v in zip(*(r if isinstance(r, tuple) else (r,) for r in (a, b))):
        assert_same_bits(u, v, str(np.dtype(tdtype)))


@pytest.mark.parametrize("name", ["cross_entropy", "categorical_cross_entropy"])
@pytest.mark.parametrize("xdtype, ydtype", [(np.float32, np.float64), (np.float64, np.float32),
                                            (np.float32, np.int64), (np.float64, np.float16),
                                            (np.float32, bool)])
def test_probability_targets_take_the_compute_dtype(name, xdtype, ydtype, rng):
    (x, y), kw = make_case(name, rng, (6, 4), dtype=xdtype, target_kind="prob")
    if np.dtype(ydtype).kind in "biu":
        y = (y > 0.3).astype(ydtype)
    else:
        y = y.astype(ydtype)
    loss = getattr(impl, name)(x, y, reduction="none", **kw)
    assert loss.dtype == xdtype
    same = getattr(impl, name)(x, y.astype(xdtype), reduction="none", **kw)
    assert_same_bits(loss, same, "targets converted to the compute dtype")


@pytest.mark.parametrize("name", ["binary_cross_entropy", "binary_cross_entropy_with_logits"])
@pytest.mark.parametrize("xdtype, ydtype", [(np.float32, np.float64), (np.float64, np.float32),
                                            (np.float32, bool), (np.float64, np.int8)])
def test_binary_targets_take_the_compute_dtype(name, xdtype, ydtype, rng):
    (x, y), kw = make_case(name, rng, (6, 4), dtype=xdtype)
    y = (y > 0.5).astype(ydtype) if np.dtype(ydtype).kind in "biu" else y.astype(ydtype)
    loss = getattr(impl, name)(x, y, reduction="none", **kw)
    assert loss.dtype == xdtype
    assert_same_bits(loss, getattr(impl, name)(x, y.astype(xdtype), reduction="none", **kw))


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss", "categorical_cross_entropy"])
def test_weight_dtypes(name, rng):
    (x, t), kw = make_case(name, rng, (6, 4), dtype=np.float32)
    w = np.array([1, 2, 3, 4])
    a = getattr(impl, name)(x, t, weight=w, reduction="none", **kw)
    b = getattr(impl, name)(x, t, weight=w.astype(np.float64), reduction="none", **kw)
    c = getattr(impl, name)(x, t, weight=w.tolist(), reduction="none", **kw)
    d = getattr(impl, name)(x, t, weight=tuple(w.astype(np.float32)), reduction="none", **kw)
    assert a.dtype == np.float32
    assert_same_bits(a, b)
    assert_same_bits(a, c)
    assert_same_bits(a, d)


# ----------------------------------------------------------------------------------------------
# array-likes
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL_NAMES)
def test_python_lists_and_tuples(name, rng):
    args, kw = make_case(name, rng, (4, 3))
    expected = getattr(impl, name)(*args, **kw)
    as_lists = getattr(impl, name)(*[a.tolist() for a in args], **kw)
    as_tuples = getattr(impl, name)(*[tuple(map(tuple, a)) if a.ndim == 2 else tuple(a)
                                      for a in args], **kw)
    for res in (as_lists, as_tuples):
        for u, v in zip(*(r if isinstance(r, tuple) else (r,) for r in (res, expected))):
            assert_same_bits(u, v, "lists vs arrays")


def test_seed_style_calls():
    softmax_outputs = [[0.7, 0.1, 0.2], [0.1, 0.5, 0.4], [0.02, 0.9, 0.08]]
    class_targets = [0, 1, 1]
    loss = impl.categorical_cross_entropy(softmax_outputs, class_targets)
    assert type(loss) is np.float64
    loss = impl.cross_entropy([[-9, 5, 10]], [2])
    assert type(loss) is np.float64 and loss > 0
    assert impl.binary_cross_entropy([0.9, 0.2], [1, 0]).dtype == np.float64
    assert impl.logsumexp([1.0, 2.0, 3.0]) == pytest.approx(np.log(np.exp([1, 2, 3]).sum()))


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_none_has_the_targets_shape(name, rng):
    fn = FUNCS[name]
    for shape, axis in [((5,), 0), ((2, 5), 1), ((2, 5, 3), 1), ((4, 2, 5), -1), ((5, 1, 2, 3), 0)]:
        if fn.family in ("bce", "bcel"):
            args, kw = make_case(name, rng, shape)
            expected_shape = shape
        else:
            args, kw = make_case(name, rng, shape, axis=axis)
            expected_shape = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
        loss = getattr(impl, name)(*args, reduction="none", **kw)
        if fn.grad:
            loss = loss[0]
        assert np.shape(loss) == expected_shape
        assert isinstance(loss, (np.ndarray, np.generic))


def test_single_row_without_batch_axis():
    x = np.array([1.0, 2.0, 0.5])
    loss = impl.cross_entropy(x, 1)
    assert type(loss) is np.float64
    assert loss == pytest.approx(np.log(np.exp(x).sum()) - 2.0, rel=1e-14)
    none = impl.cross_entropy(x, np.int64(1), reduction="none")
    assert np.shape(none) == () and np.asarray(none).dtype == np.float64
    assert float(none) == pytest.approx(float(loss), rel=1e-15)
    assert impl.cross_entropy(x, [0.0, 1.0, 0.0]) == pytest.approx(float(loss), rel=1e-14)


def test_version():
    import xent_fast

    assert isinstance(xent_fast.__version__, str) and xent_fast.__version__[0].isdigit()
