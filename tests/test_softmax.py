"""log_softmax, softmax and logsumexp: hypothesis against the reference (shapes, axes, dtypes,
layouts, out=), exact properties, and a dense sweep that holds the kernels' exp/log to np.exp."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from _helpers import (LAYOUTS, assert_close, assert_unchanged, compute_dtype, impl, input_scale,
                      reduced_shape, ref, relayout, snapshot, to_truth, tolerances)
from _strategies import LOGIT_KINDS, class_shapes, float_dtypes, gen_x, seeds


def _softmax_tols(cd, scale):
    rtol, atol = tolerances(cd, 1.0)
    eps = np.finfo(cd).eps
    # exp(z) inherits the absolute error of z (a few ulps of the inputs' magnitude) as relative error
    return rtol + 16 * eps * min(scale, 1000.0), np.finfo(cd).tiny * 4


@given(data=st.data())
def test_log_softmax_softmax_logsumexp_match_reference(data):
    shape, axis = data.draw(class_shapes(), label="shape, axis")
    dtype = data.draw(float_dtypes(), label="dtype")
    rng = np.random.default_rng(data.draw(seeds, label="seed"))
    x = gen_x(rng, shape, data.draw(st.sampled_from(LOGIT_KINDS), label="kind"), dtype, axis)
    x = relayout(x, data.draw(st.sampled_from(LAYOUTS), label="layout"))
    cd = compute_dtype(dtype)
    xt = to_truth(x, dtype)
    scale = input_scale(xt) + math.log(shape[axis])
    rtol, atol = tolerances(cd, scale)
    pass_axis = axis != -1 or data.draw(st.booleans())
    kw = {"axis": axis} if pass_axis else {}
    snap = snapshot(x)

    lsm = impl.log_softmax(x, **kw)
    sm = impl.softmax(x, **kw)
    lse = impl.logsumexp(x, **kw)
    assert_unchanged([x], snap)

    assert isinstance(lsm, np.ndarray) and lsm.shape == x.shape and lsm.dtype == cd
    assert isinstance(sm, np.ndarray) and sm.shape == x.shape and sm.dtype == cd
    assert np.shape(lse) == reduced_shape(x.shape, axis) and np.asarray(lse).dtype == cd
    assert_close(lsm, ref.log_softmax(xt, axis=axis), rtol, atol, "log_softmax")
    assert_close(lse, ref.logsumexp(xt, axis=axis), rtol, atol, "logsumexp")
    srtol, satol = _softmax_tols(cd, scale)
    assert_close(sm, ref.softmax(xt, axis=axis), srtol, satol, "softmax")


@pytest.mark.parametrize("fname", ["log_softmax", "softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [0, 1, -1, 2])
def test_out_and_out_is_x(fname, dtype, axis, rng):
    x = (rng.standard_normal((3, 5, 4)) * 3).astype(dtype)
    expected = getattr(impl, fname)(x, axis=axis)
    for order in ("C", "F"):
        out = np.full(x.shape, np.nan, dtype=dtype, order=order)
        res = getattr(impl, fname)(x, axis=axis, out=out)
        assert res is out
        np.testing.assert_array_equal(res, expected)
    parent = np.full((6, 10, 8), 9.0, dtype=dtype)
    view = parent[::2, ::2, ::2]
    res = getattr(impl, fname)(x, axis, out=view)
    assert res is view
    np.testing.assert_array_equal(view, expected)
    parent[::2, ::2, ::2] = 9.0
    assert np.all(parent == 9.0)
    xi = x.copy()
    res = getattr(impl, fname)(xi, axis=axis, out=xi)
    assert res is xi
    rtol, atol = tolerances(dtype, 10.0)
    np.testing.assert_allclose(res, expected, rtol=rtol, atol=atol)
    # a reversed, non-contiguous x written in place
    xr = np.ascontiguousarray(x[::-1, :, ::-1])[::-1, :, ::-1]
    res = getattr(impl, fname)(xr, axis=axis, out=xr)
    assert res is xr
    np.testing.assert_allclose(res, expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_rows_sum_to_one_and_shift_invariance(dtype, rng):
    x = (rng.standard_normal((50, 37)) * 5).astype(dtype)
    p = impl.softmax(x)
    np.testing.assert_allclose(p.astype(np.float64).sum(-1), 1.0,
                               rtol=0, atol=50 * np.finfo(dtype).eps)
    assert np.all(p >= 0) and np.all(p <= 1)
    lsm = impl.log_softmax(x)
    np.testing.assert_allclose(np.exp(lsm.astype(np.float64)), p, rtol=1e-4 if dtype ==
                               np.float32 else 1e-12, atol=1e-30)
    lse = impl.logsumexp(x)
    rtol, atol = tolerances(dtype, 20.0)
    np.testing.assert_allclose(lsm, x - lse[:, None], rtol=rtol, atol=atol)
    shifted = impl.log_softmax(x + dtype(64.0))  # a power of two: exact shift in both dtypes
    np.testing.assert_allclose(shifted, lsm, rtol=rtol, atol=atol)


def test_single_class():
    x = np.array([[3.0], [-1e30], [5.0]])
    np.testing.assert_array_equal(impl.log_softmax(x), np.zeros((3, 1)))
    np.testing.assert_array_equal(impl.softmax(x), np.ones((3, 1)))
    np.testing.assert_array_equal(impl.logsumexp(x), x[:, 0])


def test_masked_rows():
    x = np.array([[0.0, -np.inf, 0.0], [-np.inf, -np.inf, -np.inf]])
    lsm = impl.log_softmax(x)
    sm = impl.softmax(x)
    lse = impl.logsumexp(x)
    np.testing.assert_allclose(lsm[0], [-math.log(2), -np.inf, -math.log(2)], rtol=1e-15)
    np.testing.assert_array_equal(sm[0], [0.5, 0.0, 0.5])
    assert lse[0] == pytest.approx(math.log(2), rel=1e-15)
    # an all -inf row: logsumexp -inf (scipy), log_softmax/softmax NaN (contract)
    assert lse[1] == -np.inf
    assert np.all(np.isnan(lsm[1])) and np.all(np.isnan(sm[1]))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exp_dense_sweep(dtype):
    """softmax([0, d]) for a dense sweep of d exercises the vectorised exp over its whole range:
    p_1 = exp(d - log1p(exp(d))), compared with np.exp-based truth; subnormal results may flush
    to zero, nothing else may differ by more than a few ulps."""
    lim = 745.2 if dtype == np.float64 else 104.0
    d = np.linspace(-lim, lim, 200_001)
    d = np.concatenate([d, [0.0, -0.0, 1e-300, -1e-300, 1e-8, -1e-8, math.log(2), -math.log(2),
                            88.72, -87.33, 709.78, -708.39, -745.13, 745.13]])
    d = d[np.abs(d) <= lim].astype(dtype)
    x = np.stack([np.zeros_like(d), d], axis=1)
    p = impl.softmax(x)
    dd = d.astype(np.float64)
    # truth in float64 (for float32 inputs, float64 is ~1e9 times more precise)
    with np.errstate(over="ignore", under="ignore"):
        p1 = np.where(dd <= 0, np.exp(dd - np.log1p(np.exp(dd))), 1 / (1 + np.exp(-dd)))
        p0 = np.where(dd <= 0, 1 / (1 + np.exp(dd)), np.exp(-dd - np.log1p(np.exp(-dd))))
    tiny = np.finfo(dtype).tiny
    eps = np.finfo(dtype).eps
    # exp(z) inherits the rounding of its argument z ~ d as a relative error ~ eps*|d|
    rtol = 16 * eps * (1 + np.abs(dd))
    _assert_rel(p[:, 1], p1, rtol, tiny)
    _assert_rel(p[:, 0], p0, rtol, tiny)
    lsm = impl.log_softmax(x)
    with np.errstate(over="ignore"):
        lse = np.logaddexp(0.0, dd)
    _assert_rel(lsm[:, 0], -lse, 16 * eps, 4 * eps * (1 + np.abs(dd)))
    _assert_rel(lsm[:, 1], dd - lse, 16 * eps, 4 * eps * (1 + np.abs(dd)))


def _assert_rel(actual, expected, rtol, atol):
    actual = np.asarray(actual, dtype=np.float64)
    bad = ~(np.abs(actual - expected) <= atol + rtol * np.abs(expected))
    bad &= ~((actual == expected) | (np.isnan(actual) & np.isnan(expected)))
    if bad.any():
        i = np.flatnonzero(bad)[:5]
        raise AssertionError("%d mismatches, e.g. at %s: got %r, expected %r" % (
            bad.sum(), i, actual[i], expected[i]))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exp_sweep_wide_rows(dtype, rng):
    """Rows long enough for the SIMD path: softmax of [0, d, d, ...] against exact values."""
    C = 67
    d = np.linspace(-100.0 if dtype == np.float32 else -740.0, 0.0, 4001).astype(dtype)
    x = np.repeat(d[:, None], C, axis=1)
    x[:, 0] = 0
    p = impl.softmax(x)
    dd = d.astype(np.float64)
    with np.errstate(under="ignore"):
        e = np.exp(dd)
        expected = e / (1 + (C - 1) * e)
    rtol = 32 * np.finfo(dtype).eps * (1 + np.abs(dd))
    for j in (1, C // 2, C - 1):
        _assert_rel(p[:, j], expected, rtol, np.finfo(dtype).tiny)


# ----------------------------------------------------------------------------------------------
# empty arrays, 0-d arrays and several axes, as SciPy and PyTorch (issue 14.11)
# ----------------------------------------------------------------------------------------------

EMPTY_SHAPES = [(0,), (0, 3), (3, 0), (0, 0), (2, 0, 4), (2, 3, 0)]


def _axes_of(ndim):
    return list(range(-ndim, ndim))


@pytest.mark.parametrize("shape", EMPTY_SHAPES)
@pytest.mark.parametrize("fname", ["log_softmax", "softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_of_an_empty_array_is_empty(shape, fname, dtype):
    x = np.zeros(shape, dtype)
    for axis in _axes_of(len(shape)):
        res = getattr(impl, fname)(x, axis=axis)
        assert isinstance(res, np.ndarray) and res.shape == shape and res.dtype == dtype
        out = np.zeros(shape, dtype)
        assert getattr(impl, fname)(x, axis=axis, out=out) is out
    with pytest.raises(ValueError, match="axis"):
        getattr(impl, fname)(x, axis=len(shape))


@pytest.mark.parametrize("shape", EMPTY_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_of_an_empty_array(shape, dtype):
    """An empty reduction is the log of an empty sum, -inf; otherwise the result is empty."""
    x = np.zeros(shape, dtype)
    ndim = len(shape)
    choices = _axes_of(ndim) + [None, ()] + [(a, b) for a in range(ndim) for b in range(a + 1, ndim)]
    for axis in choices:
        axes = range(ndim) if axis is None else (axis if isinstance(axis, tuple) else (axis,))
        axes = {a % ndim for a in axes}
        kept = tuple(n for d, n in enumerate(shape) if d not in axes)
        empty_sum = any(shape[d] == 0 for d in axes)
        for keepdims in (False, True):
            res = impl.logsumexp(x, axis=axis, keepdims=keepdims)
            want = tuple(1 if d in axes else n for d, n in enumerate(shape)) if keepdims else kept
            assert np.shape(res) == want and np.asarray(res).dtype == dtype, (axis, keepdims)
            if empty_sum:
                assert np.all(np.asarray(res) == -np.inf), (axis, res)
            np.testing.assert_array_equal(res, ref.logsumexp(x, axis=axis, keepdims=keepdims))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("value", [3.5, -1e30, 0.0, -np.inf, np.inf, np.nan])
def test_zero_dimensional_input_is_a_row_of_one(dtype, value):
    """As NumPy's reductions and PyTorch: a 0-d array is one row of one value (axis 0 or -1)."""
    x = np.asarray(value, dtype)
    for axis in (0, -1):
        lse = impl.logsumexp(x, axis=axis)
        assert isinstance(lse, np.generic) and lse.dtype == dtype
        np.testing.assert_array_equal(lse, ref.logsumexp(x, axis=axis))
        for fname in ("log_softmax", "softmax"):
            res = getattr(impl, fname)(x, axis=axis)
            assert isinstance(res, np.ndarray) and res.shape == () and res.dtype == dtype
            np.testing.assert_array_equal(res, getattr(ref, fname)(x, axis=axis))
            out = np.zeros((), dtype)
            assert getattr(impl, fname)(x, axis=axis, out=out) is out
            np.testing.assert_array_equal(out, res)
    if np.isfinite(value):  # exactly: exp(0) / 1 and x - x
        assert impl.logsumexp(x) == x and impl.softmax(x) == 1 and impl.log_softmax(x) == 0
    for bad in (1, -2):
        for fname in ("log_softmax", "softmax", "logsumexp"):
            with pytest.raises(ValueError, match="axis"):
                getattr(impl, fname)(x, axis=bad)


AXIS_TUPLES = [(0, 2), (2, 0), (-1, -3), (1, 2), (0, 1, 2), (1,), (), None, -2, (-1,)]


@pytest.mark.parametrize("axis", AXIS_TUPLES, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_over_several_axes_matches_reference(axis, layout, dtype, rng):
    x = relayout((rng.standard_normal((3, 4, 5)) * 4).astype(dtype), layout, rng)
    snap = snapshot(x)
    xt = to_truth(x, dtype)
    rtol, atol = tolerances(dtype, input_scale(xt) + math.log(60))
    for keepdims in (False, True):
        got = impl.logsumexp(x, axis=axis, keepdims=keepdims)
        want = ref.logsumexp(xt, axis=axis, keepdims=keepdims)
        assert np.shape(got) == np.shape(want) and np.asarray(got).dtype == dtype
        assert isinstance(got, np.generic) == (np.ndim(want) == 0)
        assert_close(got, want, rtol, atol, f"logsumexp axis={axis} keepdims={keepdims}")
    assert_unchanged([x], snap)


def test_logsumexp_over_adjacent_axes_is_one_merged_row(rng):
    """Several axes reach the kernel as one row: the result is that of the merged axis."""
    x = rng.standard_normal((6, 7, 9))
    np.testing.assert_array_equal(impl.logsumexp(x, axis=(1, 2)),
                                  impl.logsumexp(x.reshape(6, 63), axis=-1))
    np.testing.assert_array_equal(impl.logsumexp(x, axis=None),
                                  impl.logsumexp(x.reshape(-1)))
    np.testing.assert_array_equal(impl.logsumexp(x, axis=()), x)  # log(exp(x)), exactly


@pytest.mark.parametrize("axis, exc", [((0, 0), ValueError), ((1, -2), ValueError),
                                       ((0, 3), ValueError), ((-4,), ValueError),
                                       ([0, 1], TypeError), ((0, 1.0), TypeError),
                                       ("0", TypeError)])
def test_logsumexp_bad_axes(axis, exc):
    x = np.zeros((2, 3, 4))
    with pytest.raises(exc, match="axis"):
        impl.logsumexp(x, axis=axis)
