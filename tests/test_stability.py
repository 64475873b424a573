"""Stability (docs/DESIGN.md, "Semantics and worked numbers" and "Numerics"): finite logits give
finite losses (1e30 included), -inf logits act as masks, NaN in a row gives NaN for that row only;
empty batches."""

import math

import numpy as np
import pytest

from _helpers import assert_close, impl, ref, tolerances

REDUCTIONS = ["none", "mean", "sum"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mag", [1e30, 1e10, 1e-30])
def test_huge_and_tiny_logits_give_finite_losses(dtype, mag, rng):
    x = (rng.standard_normal((64, 37)) * mag).astype(dtype)
    t = rng.integers(0, 37, size=64)
    loss = impl.cross_entropy(x, t, reduction="none")
    assert np.all(np.isfinite(loss))
    expected = ref.cross_entropy(x.astype(np.float64), t, reduction="none")
    rtol, atol = tolerances(dtype, 1.0 + 4 * mag)
    assert_close(loss, expected, rtol, atol)
    for red in ("mean", "sum"):
        assert np.isfinite(impl.cross_entropy(x, t, reduction=red))
    loss2, g = impl.cross_entropy_and_grad(x, t, reduction="sum", label_smoothing=0.1)
    assert np.isfinite(loss2) and np.all(np.isfinite(g))
    assert np.all(np.isfinite(impl.log_softmax(x))) and np.all(np.isfinite(impl.softmax(x)))
    assert np.all(np.isfinite(impl.logsumexp(x)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_opposite_extremes(dtype):
    big = 1e30 if dtype == np.float32 else 1e300
    x = np.array([[big, -big, 0.0], [-big, big, 0.0]], dtype=dtype)
    loss = impl.cross_entropy(x, [1, 1], reduction="none")
    np.testing.assert_allclose(loss, [2 * big, 0.0], rtol=1e-6)
    loss, g = impl.cross_entropy_and_grad(x, [1, 1], reduction="none")
    np.testing.assert_array_equal(g, [[1, -1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(impl.softmax(x), [[1, 0, 0], [0, 1, 0]])
    np.testing.assert_allclose(impl.logsumexp(x), [big, big], rtol=1e-6)
    np.testing.assert_allclose(impl.binary_cross_entropy_with_logits(
        x[0], np.array([0, 1, 1], dtype=dtype), reduction="none"), [big, big, math.log(2)],
        rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_minus_inf_masks(dtype):
    x = np.array([[0.5, -np.inf, 1.5, -0.25]] * 3, dtype=dtype)
    t = np.array([0, 1, 2])
    loss = impl.cross_entropy(x, t, reduction="none")
    unmasked = impl.cross_entropy(x[:, [0, 2, 3]], np.array([0, 0, 1]), reduction="none")
    assert loss[1] == np.inf
    rtol, atol = tolerances(dtype, 5.0)
    np.testing.assert_allclose(loss[[0, 2]], unmasked[[0, 2]], rtol=rtol, atol=atol)
    # eps > 0: a masked target costs -log(eps)
    for eps in (1e-7, 1e-15, 0.1):
        le = impl.cross_entropy(x, t, eps=eps, reduction="none")
        assert le[1] == pytest.approx(-math.log(eps), rel=1e-6 if dtype == np.float32 else 1e-13)
        assert np.all(np.isfinite(le))
    # gradient: finite; masked entries 0 when they carry no target mass
    _, g = impl.cross_entropy_and_grad(x, t, reduction="none")
    assert np.all(np.isfinite(g))
    assert g[0, 1] == 0 and g[2, 1] == 0
    np.testing.assert_allclose(g[1, 1], -1.0, rtol=1e-6)
    # the mean is inf when a target is masked, finite once that row is ignored
    assert impl.cross_entropy(x, t) == np.inf
    assert np.isfinite(impl.cross_entropy(x, np.array([0, -100, 2])))
    # label smoothing puts mass on the masked class: inf, unless its weight is 0
    assert np.all(impl.cross_entropy(x[[0]], [0], label_smoothing=0.1, reduction="none") == np.inf)
    w = np.array([1.0, 0.0, 1.0, 1.0])
    v = impl.cross_entropy(x[[0]], [0], label_smoothing=0.1, weight=w, reduction="none")
    assert np.all(np.isfinite(v))
    # probability targets with no mass on the masked class: finite (0 * -inf contributes 0)
    y = np.array([[0.3, 0.0, 0.7, 0.0]], dtype=dtype)
    v = impl.cross_entropy(x[[0]], y, reduction="none")
    assert np.isfinite(v[0])
    assert v[0] == pytest.approx(float(ref.cross_entropy(x[[0]].astype(np.float64),
                                                         y.astype(np.float64),
                                                         reduction="none")[0]), rel=1e-6)


def test_minus_inf_masks_nll_and_categorical():
    lp = np.array([[-np.inf, -0.5, -1.0]])
    assert impl.nll_loss(lp, [0], reduction="none")[0] == np.inf
    assert impl.nll_loss(lp, [1], reduction="none")[0] == 0.5
    p = np.array([[0.0, 0.4, 0.6]])
    assert impl.categorical_cross_entropy(p, [0], eps=0.0, reduction="none")[0] == np.inf
    assert impl.categorical_cross_entropy(p, [[0.0, 0.5, 0.5]], eps=0.0, reduction="none")[0] == \
        pytest.approx(-0.5 * math.log(0.4) - 0.5 * math.log(0.6), rel=1e-14)


# (function, eps, where the NaN goes): nll_loss and categorical_cross_entropy only read the target's
# entry (without smoothing), so their NaN sits on the target; cross_entropy reads the whole row.
NAN_CASES = ([("cross_entropy", e, w) for e in (None, 0.0, 1e-3) for w in ("target", "other")]
             + [("nll_loss", None, "target")]
             + [("categorical_cross_entropy", e, "target") for e in (None, 0.0, 1e-3)])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("C", [3, 40])
@pytest.mark.parametrize("name, eps, where", NAN_CASES)
def test_nan_row_poisons_only_that_row(name, eps, where, dtype, C, rng):
    N = 50
    x = rng.uniform(0.05, 0.95, size=(N, C)) if name == "categorical_cross_entropy" else \
        rng.standard_normal((N, C))
    x = x.astype(dtype)
    bad = 17
    t = rng.integers(0, C, size=N)
    t[bad] = 1
    x[bad, 1 if where == "target" else 2] = np.nan
    kw = {} if eps is None else {"eps": eps}
    loss = getattr(impl, name)(x, t, reduction="none", **kw)
    assert np.isnan(loss[bad])
    assert np.all(np.isfinite(np.delete(loss, bad)))
    clean = getattr(impl, name)(np.delete(x, bad, 0), np.delete(t, bad), reduction="none", **kw)
    rtol, atol = tolerances(dtype, 10.0)
    np.testing.assert_allclose(np.delete(loss, bad), clean, rtol=rtol, atol=atol)
    for red in ("mean", "sum"):
        assert np.isnan(getattr(impl, name)(x, t, reduction=red, **kw))
    # an ignored NaN row contributes nothing (its loss is 0)
    t2 = t.copy()
    t2[bad] = -100
    loss2 = getattr(impl, name)(x, t2, reduction="none", **kw)
    assert loss2[bad] == 0
    assert np.isfinite(getattr(impl, name)(x, t2, **kw))


@pytest.mark.parametrize("name", ["cross_entropy", "categorical_cross_entropy"])
def test_nan_off_target_with_smoothing_poisons_the_row(name, rng):
    x = rng.uniform(0.05, 0.95, size=(4, 5))
    x[2, 3] = np.nan
    loss = getattr(impl, name)(x, [0, 1, 2, 4], label_smoothing=0.1, reduction="none")
    assert np.isnan(loss[2]) and np.all(np.isfinite(loss[[0, 1, 3]]))


@pytest.mark.parametrize("name", ["cross_entropy_and_grad", "categorical_cross_entropy_and_grad"])
@pytest.mark.parametrize("target_kind", ["index", "prob"])
@pytest.mark.parametrize("eps", [0.0, 1e-3])
def test_nan_row_gradient(name, target_kind, eps, rng):
    N, C = 20, 6
    x = rng.uniform(0.05, 0.95, size=(N, C)) if name.startswith("categorical") else \
        rng.standard_normal((N, C))
    bad = 7
    x[bad, 2] = np.nan
    t = rng.integers(0, C, size=N)
    t[bad] = 2  # categorical_cross_entropy reads only the target's entry
    if target_kind == "prob":
        t = np.eye(C)[t] * 0.8 + 0.2 / C
    loss, g = getattr(impl, name)(x, t, reduction="sum", eps=eps)
    assert np.isnan(loss)
    assert np.isnan(g[bad]).any()
    rows = np.delete(np.arange(N), bad)
    assert np.all(np.isfinite(g[rows]))
    _, gc = getattr(impl, name)(x[rows], t[rows], reduction="sum", eps=eps)
    np.testing.assert_allclose(g[rows], gc, rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("name, eps", [("binary_cross_entropy", None), ("binary_cross_entropy", 0.0),
                                       ("binary_cross_entropy", 0.01),
                                       ("binary_cross_entropy_with_logits", None)])
def test_nan_element_binary(name, eps, rng):
    p = rng.uniform(0.05, 0.95, size=(6, 5))
    p[2, 3] = np.nan
    y = rng.uniform(size=(6, 5))
    kw = {} if eps is None else {"eps": eps}
    loss = getattr(impl, name)(p, y, reduction="none", **kw)
    assert np.isnan(loss[2, 3])
    mask = np.ones_like(loss, dtype=bool)
    mask[2, 3] = False
    assert np.all(np.isfinite(loss[mask]))
    assert np.isnan(getattr(impl, name)(p, y, **kw))
    _, g = getattr(impl, name + "_and_grad")(p, y, reduction="none", **kw)
    assert np.isnan(g[2, 3]) and np.all(np.isfinite(g[mask]))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nan_row_softmax_family(dtype, rng):
    x = rng.standard_normal((5, 9)).astype(dtype)
    x[3, 4] = np.nan
    for f in (impl.log_softmax, impl.softmax):
        r = f(x)
        assert np.all(np.isnan(r[3]))
        assert np.all(np.isfinite(np.delete(r, 3, 0)))
    lse = impl.logsumexp(x)
    assert np.isnan(lse[3]) and np.all(np.isfinite(np.delete(lse, 3)))


# ----------------------------------------------------------------------------------------------
# empty batch
# ----------------------------------------------------------------------------------------------

EMPTY_CASES = [
    # name, logits shape, targets, kwargs, shape of the "none" loss
    ("cross_entropy", (0, 4), np.zeros(0, dtype=np.int64), {}, (0,)),
    ("cross_entropy", (0, 4), np.zeros((0, 4)), {}, (0,)),
    ("cross_entropy", (2, 0, 4), np.zeros((0, 4), dtype=np.int64), {"axis": 0}, (0, 4)),
    ("cross_entropy", (3, 2, 0), np.zeros((3, 0), dtype=np.int64), {"axis": 1}, (3, 0)),
    ("nll_loss", (0, 4), np.zeros(0, dtype=np.int64), {}, (0,)),
    ("categorical_cross_entropy", (0, 4), np.zeros(0, dtype=np.int64), {}, (0,)),
    ("categorical_cross_entropy", (0, 4), np.zeros((0, 4)), {}, (0,)),
    ("binary_cross_entropy", (0, 4), np.zeros((0, 4)), {}, (0, 4)),
    ("binary_cross_entropy_with_logits", (0,), np.zeros(0), {}, (0,)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, shape, targets, kw, none_shape", EMPTY_CASES,
                         ids=["%s-%s-%s" % (c[0], c[1], c[2].dtype) for c in EMPTY_CASES])
def test_empty_batch(name, shape, targets, kw, none_shape, dtype):
    """Empty batch: mean -> NaN, sum -> 0, none -> an empty array (and an empty gradient)."""
    x = np.zeros(shape, dtype=dtype)
    mean = getattr(impl, name)(x, targets, **kw)
    assert np.isnan(mean) and type(mean) is np.dtype(dtype).type
    total = getattr(impl, name)(x, targets, reduction="sum", **kw)
    assert total == 0 and type(total) is np.dtype(dtype).type
    none = getattr(impl, name)(x, targets, reduction="none", **kw)
    assert isinstance(none, np.ndarray) and none.dtype == dtype and none.shape == none_shape
    gname = name + "_and_grad"
    if hasattr(impl, gname):
        for red in REDUCTIONS:
            loss, g = getattr(impl, gname)(x, targets, reduction=red, **kw)
            assert g.shape == shape and g.dtype == dtype
            if red == "mean":
                assert np.isnan(loss)
            elif red == "sum":
                assert loss == 0
            else:
                assert loss.shape == none_shape


def test_empty_softmax_family():
    x = np.zeros((0, 5))
    assert impl.log_softmax(x).shape == (0, 5)
    assert impl.softmax(x).shape == (0, 5)
    assert impl.logsumexp(x).shape == (0,)
    assert impl.logsumexp(np.zeros((3, 0, 4)), axis=-1).shape == (3, 0)


@pytest.mark.parametrize("name", ["binary_cross_entropy", "binary_cross_entropy_with_logits"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_binary_losses_of_0d_inputs(name, dtype):
    """Element-wise losses take a 0-d input as one element (as PyTorch): a 0-d loss for 'none',
    a 0-d array gradient (the input's shape), the reference's values."""
    x, y = np.asarray(0.3, dtype), np.asarray(1.0, dtype)
    none = getattr(impl, name)(x, y, reduction="none")
    assert isinstance(none, np.ndarray) and none.shape == () and none.dtype == dtype
    loss, g = getattr(impl, name + "_and_grad")(x, y)
    want_loss, want_g = getattr(ref, name + "_and_grad")(x, y)
    assert type(loss) is np.dtype(dtype).type
    assert isinstance(g, np.ndarray) and g.shape == () and g.dtype == dtype
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose([loss, g], [want_loss, want_g], rtol=rtol)
    np.testing.assert_allclose(none, want_loss, rtol=rtol)


@pytest.mark.compiled_only
@pytest.mark.parametrize("C", [3, 10, 100, 1000, 32000])
def test_confident_rows_keep_their_digits_in_float32(C, rng):
    """A confident row's loss is the sum of its small terms, ~1e-2 to 1e-5 here: summing the
    exponentials in float32 lanes next to the row's exp(0) = 1 would lose most of it.  Truth: the
    float64 log1p of the small terms of the same float32 logits."""
    N = max(8, 50_000 // C)
    x = rng.standard_normal((N, C)).astype(np.float32)
    x[:, 0] += np.linspace(5, 12, N, dtype=np.float32)
    t = np.zeros(N, dtype=np.int64)
    z = x.astype(np.float64) - x.max(axis=1, keepdims=True).astype(np.float64)
    truth = np.log1p(np.exp(z[:, 1:]).sum(axis=1))   # class 0 holds each row's max
    got = impl.cross_entropy(x, t, reduction="none").astype(np.float64)
    np.testing.assert_allclose(got, truth, rtol=1e-6)


@pytest.mark.compiled_only
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, "bfloat16"])
@pytest.mark.parametrize("C", [200, 1000, 3000, 32000])
def test_confident_rows_keep_their_digits_wherever_the_max_lies(C, dtype, rng):
    """As above with each row's max at its own position (any stretch of a long row, any chunk of
    its lanes, the last partial vector included): the exp(0) term is counted apart wherever it
    is, so the small terms beside it in its lane keep their digits.  Half precision (computed in
    float32) finds its maxima as it is converted (load_half_tops)."""
    import ml_dtypes
    N = max(16, 50_000 // C)
    x = rng.standard_normal((N, C)).astype(np.float32 if dtype != np.float64 else dtype)
    t = rng.integers(0, C, N)
    t[:4] = [0, C - 1, C // 2, C - 2]
    x[np.arange(N), t] = x.max(axis=1) + np.linspace(5, 12, N).astype(x.dtype)
    x = x.astype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)
    z = x.astype(np.float64) - x.max(axis=1, keepdims=True).astype(np.float64)
    z[np.arange(N), t] = -np.inf
    truth = np.log1p(np.exp(z).sum(axis=1))
    got = impl.cross_entropy(x, t, reduction="none").astype(np.float64)
    np.testing.assert_allclose(got, truth, rtol=1e-13 if dtype == np.float64 else 1e-6)
