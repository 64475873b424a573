"""Memory layouts (docs/DESIGN.md, "Bad input and memory layouts"): strided, Fortran, reversed
(negative strides), read-only, zero-stride broadcast, non-contiguous targets/weights, class axis
not last. Every one must give the
result of a contiguous copy (bitwise where the layout is the same, within a tight tolerance
otherwise), and no input may be modified."""

import numpy as np
import pytest

from _helpers import (ALL_NAMES, FUNCS, assert_close, assert_same_bits, assert_unchanged, impl,
                      make_case, relayout, snapshot, tight_tolerances)

X_LAYOUTS = ["F", "strided", "reversed", "readonly", "transposed", "bcast_batch", "bcast_class"]


def _bcast(a, axis_to_broadcast):
    """A zero-stride view of the same shape as ``a`` built from one slice of it."""
    sl = [slice(None)] * a.ndim
    sl[axis_to_broadcast] = slice(0, 1)
    return np.broadcast_to(a[tuple(sl)], a.shape)


def _layout(a, layout, class_axis):
    if layout == "bcast_batch":
        return _bcast(a, (class_axis + 1) % a.ndim)
    if layout == "bcast_class":
        return _bcast(a, class_axis)
    return relayout(a, layout)


def _call(name, args, kwargs):
    return getattr(impl, name)(*args, **kwargs)


def _split(name, res):
    if FUNCS[name].grad:
        return res
    return res, None


def _compare(name, got, want, dtype, scale, bitwise):
    gl, gg = _split(name, got)
    wl, wg = _split(name, want)
    if bitwise:
        assert_same_bits(gl, wl, "loss")
        if gg is not None:
            assert_same_bits(gg, wg, "gradient")
        return
    rtol, atol = tight_tolerances(dtype, scale)
    assert_close(gl, wl, rtol, atol * max(1, np.size(wl)), "loss")
    if gg is not None:
        assert_close(gg, wg, rtol, atol, "gradient")


_NAME_AXIS = [(n, a) for n in ALL_NAMES for a in ([-1, 1, 0] if FUNCS[n].has("axis") else [-1])]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", X_LAYOUTS)
@pytest.mark.parametrize("name, axis", _NAME_AXIS)
def test_first_argument_layouts(name, axis, layout, dtype, rng):
    fn = FUNCS[name]
    shape = (4, 6, 5)
    (x, *rest), kw = make_case(name, rng, shape, axis=axis, dtype=dtype)
    if fn.is_loss:
        kw["reduction"] = "none"
    class_axis = axis % 3
    xl = _layout(x, layout, class_axis)
    xc = np.ascontiguousarray(xl)
    snaps = snapshot(xl, *rest)
    got = _call(name, (xl, *rest), kw)
    assert_unchanged([xl, *rest], snaps)
    want = _call(name, (xc, *rest), kw)
    _compare(name, got, want, dtype, 20.0, bitwise=(layout == "readonly"))
    if fn.is_loss:  # the reductions too
        for red in ("mean", "sum"):
            kw["reduction"] = red
            _compare(name, _call(name, (xl, *rest), kw), _call(name, (xc, *rest), kw), dtype,
                     20.0 * x.size, bitwise=(layout == "readonly"))


_NAME_TKIND = [(n, k) for n in ALL_NAMES if FUNCS[n].is_loss
               for k in (["index", "prob"] if FUNCS[n].family in ("ce", "cat") else
                         ["index"] if FUNCS[n].family == "nll" else ["same-shape"])]


@pytest.mark.parametrize("layout", ["F", "strided", "reversed", "readonly", "bcast"])
@pytest.mark.parametrize("name, target_kind", _NAME_TKIND)
def test_targets_and_weight_layouts(name, target_kind, layout, rng):
    fn = FUNCS[name]
    (x, t), kw = make_case(name, rng, (5, 4, 6), axis=1, target_kind=target_kind)
    if fn.family in ("bce", "bcel"):
        kw.pop("axis", None)
        kw["weight"] = rng.uniform(0.5, 2.0, size=(4, 6))
        if fn.family == "bcel":
            kw["pos_weight"] = rng.uniform(0.5, 2.0, size=6)
    else:
        kw["weight"] = rng.uniform(0.5, 2.0, size=4)
    kw["reduction"] = "none"
    tl = _bcast(t, 0) if layout == "bcast" else relayout(t, layout)
    tc = np.ascontiguousarray(tl)
    wl = {}
    for k in ("weight", "pos_weight"):
        if k in kw:
            w = np.asarray(kw[k])
            wl[k] = (np.broadcast_to(w.ravel()[:1].reshape((1,) * w.ndim), w.shape)
                     if layout == "bcast" else relayout(w, layout))
    snaps = snapshot(x, tl, *wl.values())
    got = _call(name, (x, tl), {**kw, **wl})
    assert_unchanged([x, tl, *wl.values()], snaps)
    want = _call(name, (x, tc), {**kw, **{k: np.ascontiguousarray(v) for k, v in wl.items()}})
    _compare(name, got, want, np.float64, 20.0, bitwise=False)


@pytest.mark.parametrize("name", [n for n in ALL_NAMES if FUNCS[n].grad])
def test_grad_loss_layouts(name, rng):
    (x, t), kw = make_case(name, rng, (6, 5), axis=-1)
    loss = getattr(impl, name)(x, t, reduction="none", **kw)[0]
    gl = rng.uniform(-2, 2, size=loss.shape)
    want = getattr(impl, name)(x, t, reduction="none", grad_loss=gl, **kw)
    for layout in ("F", "strided", "reversed", "readonly"):
        gll = relayout(gl, layout)
        snap = snapshot(gll)
        got = getattr(impl, name)(x, t, reduction="none", grad_loss=gll, **kw)
        assert_unchanged([gll], snap)
        _compare(name, got, want, np.float64, 20.0, bitwise=False)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["cross_entropy", "cross_entropy_and_grad", "log_softmax",
                                  "softmax", "logsumexp", "categorical_cross_entropy"])
def test_class_axis_not_last_equals_moved_axis(name, dtype, rng):
    """(N, C, H, W) with axis=1 gives the same numbers as moving the class axis last."""
    shape = (3, 7, 4, 5)
    (x, *rest), kw = make_case(name, rng, shape, axis=1, dtype=dtype)
    xm = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    kwm = dict(kw, axis=-1)
    if FUNCS[name].is_loss:
        kw["reduction"] = kwm["reduction"] = "none"
    got = _call(name, (x, *rest), kw)
    want = _call(name, (xm, *rest), kwm)
    gl, gg = _split(name, got)
    wl, wg = _split(name, want)
    rtol, atol = tight_tolerances(dtype, 20.0)
    if name in ("log_softmax", "softmax"):
        assert_close(gl, np.moveaxis(wl, -1, 1), rtol, atol)
    else:
        assert_close(gl, wl, rtol, atol)
    if gg is not None:
        assert_close(gg, np.moveaxis(wg, -1, 1), rtol, atol)


def test_broadcast_logits_rows_are_identical(rng):
    """A zero-stride batch: every row is the same row, so every loss is that row's loss."""
    row = rng.standard_normal(33)
    x = np.broadcast_to(row, (1000, 33))
    t = np.full(1000, 5)
    loss = impl.cross_entropy(x, t, reduction="none")
    one = impl.cross_entropy(row[None, :], [5], reduction="none")[0]
    np.testing.assert_allclose(loss, np.full(1000, one), rtol=1e-14)
    assert np.all(loss == loss[0])
    assert impl.cross_entropy(x, t, reduction="mean") == pytest.approx(one, rel=1e-14)
    _, g = impl.cross_entropy_and_grad(x, t, reduction="sum")
    _, g1 = impl.cross_entropy_and_grad(row[None, :], [5], reduction="sum")
    np.testing.assert_allclose(g, np.broadcast_to(g1, g.shape), rtol=1e-14, atol=1e-17)
    assert np.all(g == g[0])
    assert g.flags.writeable and g.strides[0] != 0


def _at_byte_offset(a, offset):
    """A C-contiguous copy of ``a`` that starts ``offset`` bytes past a 64-byte boundary."""
    buf = np.empty(a.nbytes + 128, np.uint8)
    start = (-buf.ctypes.data) % 64 + offset
    out = buf[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_class", [5, 17, 100, 513, 1000, 2049, 40000])
def test_results_do_not_depend_on_the_address(dtype, n_class, rng):
    """The same values at every vector alignment give the same bits: kernels may read a row from
    its first vector boundary on, but each row's sums keep their order.  The max sits in a row's
    first elements, its last ones or a chunk's middle, once in one confident row."""
    rows = 6
    x = (rng.standard_normal((rows, n_class)) * 4).astype(dtype)
    for r, j in enumerate([0, 1, 3, n_class // 2, n_class - 1]):
        x[r, j] = 30.0 if r else 8.0
    t = np.arange(rows) % n_class
    item = np.dtype(dtype).itemsize
    results = []
    for offset in range(0, 64, item):
        xo = _at_byte_offset(x, offset)
        loss, grad = impl.cross_entropy_and_grad(xo, t, reduction="none")
        out = _at_byte_offset(np.zeros_like(x), offset)
        impl.cross_entropy_and_grad(xo, t, reduction="none", out=out)
        results.append([loss, grad, out, impl.logsumexp(xo), impl.softmax(xo),
                        impl.cross_entropy(xo, t, reduction="none", logit_scale=0.5)])
        assert_same_bits(xo, x, "the logits at byte offset %d were modified" % offset)
    for offset, got in zip(range(0, 64, item), results):
        for k, (a, b) in enumerate(zip(results[0], got)):
            assert_same_bits(a, b, "result %d at byte offset %d" % (k, offset))


def test_broadcast_logits_cannot_be_out(rng):
    x = np.broadcast_to(rng.standard_normal(5), (3, 5))
    with pytest.raises(ValueError, match="out"):
        impl.cross_entropy_and_grad(x, [0, 1, 2], out=x)


@pytest.mark.parametrize("shape, axis, strides, expected", [
    # C order, class axis last: the row axes merge into one
    ((4, 5, 6), 2, [(30, 6, 1)], (6, (20,), [(1, (6,))])),
    # class-index targets (0 on the class axis) merge with the logits
    ((4, 5, 6), 2, [(30, 6, 1), (5, 1, 0)], (6, (20,), [(1, (6,)), (0, (1,))])),
    # class axis in the middle: the two row axes are 30 and 1 apart, not 6 * 1
    ((4, 5, 6), 1, [(30, 6, 1)], (5, (4, 6), [(6, (30, 1))])),
    # one array steps through the rows in another order: nothing merges
    ((4, 5, 6), 2, [(30, 6, 1), (1, 4, 0)], (6, (4, 5), [(1, (30, 6)), (0, (1, 4))])),
    # axes of length 1 are dropped, whatever their stride
    ((1, 3, 1, 7), 3, [(99, 7, 5, 1)], (7, (3,), [(1, (7,))])),
    ((1, 7), 1, [(7, 1)], (7, (), [(1, ())])),
    # an empty row axis gives one empty row axis
    ((3, 0, 4), 2, [(0, 4, 1), (0, 1, 0)], (4, (0,), [(1, (0,)), (0, (0,))])),
    # a zero-stride (broadcast) row axis does not merge with a stepped one
    ((4, 5, 6), 2, [(0, 6, 1)], (6, (4, 5), [(1, (0, 6))])),
])
def test_rows_view(shape, axis, strides, expected):
    """The kernels' rows view (docs/DESIGN.md, "The rows view"): row axes of length 1 dropped,
    adjacent ones merged where every array steps through them as one."""
    from xent_fast._kernels import rows_layout
    assert rows_layout(shape, axis, strides) == expected
