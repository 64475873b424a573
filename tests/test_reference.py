"""Tests of the NumPy reference (xent_fast/reference.py), the executable specification.

Holds the reference to the worked numbers (docs/DESIGN.md, "Semantics and worked numbers"), to
central finite differences for every ``*_and_grad`` function and option, and to the bad-input
rules (docs/DESIGN.md, "Bad input and memory layouts"). Needs only NumPy and pytest.
"""

import importlib.util
import itertools
import math
import pathlib

import numpy as np
import pytest

try:
    from xent_fast import reference as R
except Exception:  # package not importable (e.g. extension not built): load the file itself
    _path = pathlib.Path(__file__).resolve().parents[1] / "xent_fast" / "reference.py"
    _spec = importlib.util.spec_from_file_location("xent_fast_reference", _path)
    R = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(R)

inf = np.inf
SEED_PROBS = [[0.7, 0.1, 0.2], [0.1, 0.5, 0.4], [0.02, 0.9, 0.08]]


# ---------------------------------------------------------------------------
# Worked numbers (the seed documents; docs/DESIGN.md, "Semantics and worked numbers")
# ---------------------------------------------------------------------------

def test_seed_single_sample_index_and_one_hot():
    expected = 0.35667494393873245
    assert R.categorical_cross_entropy([0.7, 0.1, 0.2], 0) == pytest.approx(expected, rel=1e-15)
    assert R.categorical_cross_entropy([0.7, 0.1, 0.2], [1, 0, 0]) == pytest.approx(expected, rel=1e-15)
    assert R.categorical_cross_entropy([0.7, 0.1, 0.2], 0, eps=0.0) == expected
    # the same number from logits whose softmax is [0.7, 0.1, 0.2]
    assert R.cross_entropy(np.log([0.7, 0.1, 0.2]), 0) == pytest.approx(expected, rel=1e-14)


def test_seed_batch_per_sample_losses():
    losses = R.categorical_cross_entropy(SEED_PROBS, [0, 1, 1], reduction="none")
    np.testing.assert_allclose(losses, [0.35667494, 0.69314718, 0.10536052], atol=5e-9)
    np.testing.assert_allclose(losses, -np.log([0.7, 0.5, 0.9]), rtol=1e-15)
    assert R.categorical_cross_entropy(SEED_PROBS, [0, 1, 1]) == pytest.approx(np.mean(losses), rel=1e-15)
    one_hot = np.eye(3)[[0, 1, 1]]
    np.testing.assert_allclose(
        R.categorical_cross_entropy(SEED_PROBS, one_hot, reduction="none"), losses, rtol=1e-15)


def test_seed_by_hand_one_liner():
    p = np.array(SEED_PROBS)
    y = np.array([0, 1, 1])
    eps = 1e-7
    by_hand = -np.log(np.clip(p[range(len(p)), y], eps, 1 - eps)).mean()
    assert R.categorical_cross_entropy(p, y, eps=eps) == pytest.approx(by_hand, rel=1e-15)


def test_seed_softmax():
    np.testing.assert_allclose(R.softmax([[-9, 5, 10]]), [[5.5653e-09, 6.6929e-03, 9.9331e-01]],
                               rtol=1e-4)


def test_seed_zero_probability_gives_minus_log_eps():
    assert R.categorical_cross_entropy([0.0, 1.0, 0.0], 0, eps=1e-15) == 34.538776394910684
    assert R.categorical_cross_entropy([[0.0, 1.0, 0.0]], [[1, 0, 0]], eps=1e-15) == 34.538776394910684
    # from logits: a -inf logit is a probability of exactly 0
    assert R.cross_entropy([0.0, -inf, 1.0], 1, eps=1e-15) == pytest.approx(34.538776394910684, rel=1e-15)
    assert R.cross_entropy([0.0, -inf, 1.0], 1) == inf


def test_seed_nll_loss_article():
    # seed 001: logits printed to 4 decimals, loss printed as 1.0314
    x = np.array([[-0.7514, 1.2616, -0.4232, 1.3868, 1.2298],
                  [1.5341, -0.4240, 0.0112, -0.5188, 0.1129],
                  [-2.6143, 0.1532, 0.0868, -0.8231, 0.7698]])
    t = [3, 0, 1]
    assert R.cross_entropy(x, t) == pytest.approx(1.0314, abs=1e-4)
    assert R.nll_loss(R.log_softmax(x, axis=1), t) == pytest.approx(R.cross_entropy(x, t), rel=1e-15)
    np.testing.assert_allclose(R.softmax(x, axis=1)[0], [0.0390, 0.2923, 0.0542, 0.3313, 0.2832], atol=1e-4)


# ---------------------------------------------------------------------------
# Formulas
# ---------------------------------------------------------------------------

def _ce_by_formula(x, t, w, s, eps, ignore_index=-100):
    """cross_entropy's docstring formula, literally, for 2-D x, class axis 1 (loops, math)."""
    n, C = x.shape
    lo = math.log(eps) if eps > 0 else -inf
    hi = math.log1p(-eps)
    losses, denom = [], 0.0
    for i in range(n):
        m = max(x[i])
        lse = m + math.log(sum(math.exp(v - m) for v in x[i]))
        c = [min(max(v - lse, lo), hi) for v in x[i]]
        if np.ndim(t) == 1:
            if t[i] == ignore_index:
                losses.append(0.0)
                continue
            losses.append((1 - s) * (-w[t[i]] * c[t[i]]) + (s / C) * -sum(w[j] * c[j] for j in range(C)))
            denom += w[t[i]]
        else:
            yp = [(1 - s) * t[i][j] + s / C for j in range(C)]
            losses.append(-sum(w[j] * yp[j] * c[j] for j in range(C)))
            denom += 1
    return np.array(losses), denom


@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("s, eps", [(0.0, 0.0), (0.3, 0.0), (0.0, 0.05), (0.2, 0.05)])
def test_cross_entropy_matches_formula(kind, s, eps):
    rng = np.random.default_rng(1)
    x = rng.normal(scale=3, size=(6, 4))
    w = rng.uniform(0.5, 2, size=4)
    if kind == "index":
        t = np.array([0, 3, -100, 2, 1, 3])
    else:
        t = rng.dirichlet(np.ones(4), size=6)
    rows, denom = _ce_by_formula(x, t, w, s, eps)
    kw = dict(weight=w, label_smoothing=s, eps=eps)
    np.testing.assert_allclose(R.cross_entropy(x, t, reduction="none", **kw), rows, rtol=1e-13, atol=1e-15)
    assert R.cross_entropy(x, t, reduction="sum", **kw) == pytest.approx(rows.sum(), rel=1e-13)
    assert R.cross_entropy(x, t, reduction="mean", **kw) == pytest.approx(rows.sum() / denom, rel=1e-13)


def test_categorical_is_cross_entropy_formula_on_probabilities():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 4))
    p = R.softmax(x)
    t = np.array([1, 0, 3, -100, 2])
    w = rng.uniform(0.5, 2, size=4)
    for s in (0.0, 0.4):
        np.testing.assert_allclose(
            R.categorical_cross_entropy(p, t, eps=0.0, weight=w, label_smoothing=s, reduction="none"),
            R.cross_entropy(x, t, weight=w, label_smoothing=s, reduction="none"), rtol=1e-13)


def test_categorical_does_not_renormalise():
    assert R.categorical_cross_entropy([0.5, 0.5, 0.5], 1) == pytest.approx(math.log(2), rel=1e-15)


def test_nll_loss_formula():
    lp = np.array([[-1.0, -2.0, -3.0], [-0.5, -4.0, -1.5]])
    w = np.array([1.0, 2.0, 3.0])
    assert R.nll_loss(lp, [2, 1], weight=w, reduction="sum") == 3 * 3.0 + 2 * 4.0
    assert R.nll_loss(lp, [2, 1], weight=w) == (3 * 3.0 + 2 * 4.0) / 5
    assert R.nll_loss(lp, [2, 1], ignore_index=1) == 3.0
    with pytest.raises(ValueError, match="targets"):
        R.nll_loss(lp, np.eye(3)[[2, 1]])


def test_binary_cross_entropy_formula():
    p = np.array([[0.9, 0.2], [0.0, 1.0]])
    y = np.array([[1.0, 0.0], [0.0, 0.3]])
    w = np.array([2.0, 0.5])
    eps = 1e-7
    pc = np.clip(p, eps, 1 - eps)
    expected = -w * (y * np.log(pc) + (1 - y) * np.log1p(-pc))
    np.testing.assert_allclose(R.binary_cross_entropy(p, y, weight=w, reduction="none"), expected, rtol=1e-12)
    assert R.binary_cross_entropy(p, y, weight=w) == pytest.approx(expected.mean(), rel=1e-12)
    # zero coefficients contribute nothing even with eps=0
    np.testing.assert_array_equal(R.binary_cross_entropy([0.0, 1.0], [0.0, 1.0], eps=0.0, reduction="none"),
                                  [0.0, 0.0])


def test_binary_cross_entropy_with_logits_formula():
    rng = np.random.default_rng(3)
    x = rng.normal(scale=3, size=(4, 3))
    y = rng.uniform(size=(4, 3))
    w = rng.uniform(0.5, 2, size=(4, 1))
    pw = np.array([0.5, 1.0, 3.0])
    lw = 1 + (pw - 1) * y
    expected = w * ((1 - y) * x + lw * np.log1p(np.exp(-x)))
    np.testing.assert_allclose(
        R.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw, reduction="none"), expected, rtol=1e-12)
    sig = 1 / (1 + np.exp(-x))
    loss, grad = R.binary_cross_entropy_with_logits_and_grad(x, y, weight=w, pos_weight=pw, reduction="sum")
    np.testing.assert_allclose(grad, w * ((1 - y) - lw * (1 - sig)), rtol=1e-12, atol=1e-15)


def test_with_logits_is_bce_of_sigmoid():
    x = np.linspace(-5, 5, 11)
    y = np.linspace(0, 1, 11)
    sig = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(R.binary_cross_entropy_with_logits(x, y, reduction="none"),
                               R.binary_cross_entropy(sig, y, eps=0.0, reduction="none"), rtol=1e-12)


def test_building_blocks():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 4, 5))
    for axis in (0, 1, 2, -1):
        lse = np.log(np.sum(np.exp(x), axis=axis))
        np.testing.assert_allclose(R.logsumexp(x, axis=axis), lse, rtol=1e-14)
        np.testing.assert_allclose(R.log_softmax(x, axis=axis), x - np.expand_dims(lse, axis), rtol=1e-13)
        np.testing.assert_allclose(R.softmax(x, axis=axis), np.exp(x - np.expand_dims(lse, axis)), rtol=1e-13)
    assert np.isscalar(R.logsumexp([1.0, 2.0]))
    assert R.logsumexp([-inf, -inf]) == -inf
    assert np.isnan(R.log_softmax([-inf, -inf])).all()
    assert np.isnan(R.softmax([-inf, -inf])).all()
    out = x.copy()
    assert R.log_softmax(out, axis=1, out=out) is out
    np.testing.assert_allclose(out, R.log_softmax(x, axis=1), rtol=1e-15)


def test_class_axis_anywhere():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 4, 3))                   # class axis 1
    t = rng.integers(0, 4, size=(2, 3))
    y = rng.dirichlet(np.ones(4), size=(2, 3))       # (2, 3, 4), class last
    xl = np.moveaxis(x, 1, -1)
    for reduction in ("none", "sum"):
        np.testing.assert_allclose(R.cross_entropy(x, t, axis=1, reduction=reduction),
                                   R.cross_entropy(xl, t, reduction=reduction), rtol=1e-15)
        np.testing.assert_allclose(R.cross_entropy(x, np.moveaxis(y, -1, 1), axis=1, reduction=reduction),
                                   R.cross_entropy(xl, y, reduction=reduction), rtol=1e-15)
    _, g = R.cross_entropy_and_grad(x, t, axis=-2)
    _, gl = R.cross_entropy_and_grad(xl, t)
    np.testing.assert_allclose(g, np.moveaxis(gl, -1, 1), rtol=1e-15)


# ---------------------------------------------------------------------------
# Special values, reductions, dtypes
# ---------------------------------------------------------------------------

def test_stability_and_masks():
    x = np.array([[1e30, -1e30, 0.0], [1e30, 1e30, -1e30], [0.0, -inf, 1.0], [np.nan, 0.0, 0.0], [0.0, 1.0, 2.0]])
    loss, grad = R.cross_entropy_and_grad(x, [1, 0, 0, 1, 2], reduction="none")
    np.testing.assert_allclose(loss[:3], [2e30, math.log(2), math.log1p(math.e)], rtol=1e-15)
    np.testing.assert_allclose(grad[1], [-0.5, 0.5, 0.0])
    assert grad[2, 1] == 0.0 and np.isfinite(grad[2]).all()
    assert np.isnan(loss[3]) and np.isnan(grad[3]).all()
    assert np.isfinite(loss[4]) and np.isfinite(grad[4]).all()
    # a zero target probability on a masked class contributes nothing (xlogy)
    assert R.cross_entropy([[0.0, -inf, 1.0]], [[1.0, 0.0, 0.0]]) == pytest.approx(math.log1p(math.e))


def test_ignore_index_and_empty_denominator():
    x = np.random.default_rng(6).normal(size=(3, 4))
    loss, grad = R.cross_entropy_and_grad(x, [-100, -100, -100])
    assert np.isnan(loss) and (grad == 0).all()
    loss, grad = R.cross_entropy_and_grad(x, [1, -100, 2], reduction="none")
    assert loss[1] == 0.0 and (grad[1] == 0).all() and not np.signbit(loss[1])
    # ignore_index may be a valid class
    assert R.cross_entropy(x, [1, 1, 2], ignore_index=1) == R.cross_entropy(x, [-100, -100, 2])
    # zero total weight: NaN loss (and NaN gradient on the rows that count), as PyTorch
    loss, grad = R.cross_entropy_and_grad(x, [0, 0, -100], weight=[0.0, 1, 1, 1], label_smoothing=0.1)
    assert np.isnan(loss) and np.isnan(grad[:2]).all() and (grad[2] == 0).all()


@pytest.mark.parametrize("fn, args", [
    (R.cross_entropy, (np.zeros((0, 3)), np.zeros(0, dtype=int))),
    (R.cross_entropy, (np.zeros((0, 3)), np.zeros((0, 3)))),
    (R.nll_loss, (np.zeros((0, 3)), np.zeros(0, dtype=int))),
    (R.categorical_cross_entropy, (np.zeros((0, 3)), np.zeros(0, dtype=int))),
    (R.binary_cross_entropy, (np.zeros((0, 2)), np.zeros((0, 2)))),
    (R.binary_cross_entropy_with_logits, (np.zeros(0), np.zeros(0))),
])
def test_empty_batch(fn, args):
    assert np.isnan(fn(*args))
    assert fn(*args, reduction="sum") == 0.0
    none = fn(*args, reduction="none")
    assert isinstance(none, np.ndarray) and none.size == 0


@pytest.mark.parametrize("dtype, expected, stored", [
    (np.float32, np.float32, np.float32), (np.float64, np.float64, np.float64),
    (np.float16, np.float32, np.float16), (np.int32, np.float64, np.float64),
    (np.bool_, np.float64, np.float64),
])
def test_dtype_rule(dtype, expected, stored):
    # float16 is a storage type of the class and softmax families (losses in float32, gradients
    # and softmax outputs in float16); the binary losses convert it to float64.
    x = np.array([[1, 0, 0], [0, 1, 1]], dtype=dtype)
    t = np.array([0, 2], dtype=np.uint8)
    for reduction in ("mean", "sum"):
        loss = R.cross_entropy(x, t, reduction=reduction)
        assert type(loss) is expected
    none = R.cross_entropy(x, t, reduction="none")
    assert isinstance(none, np.ndarray) and none.dtype == expected and none.shape == (2,)
    loss, grad = R.cross_entropy_and_grad(x, t)
    assert grad.dtype == stored
    assert R.log_softmax(x).dtype == stored
    binary = np.float64 if dtype is np.float16 else expected
    assert R.binary_cross_entropy(x, x).dtype == binary
    assert R.binary_cross_entropy_with_logits_and_grad(x, x)[1].dtype == binary


def test_float32_is_float64_of_float32_values():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(5, 6)).astype(np.float32)
    t = rng.integers(0, 6, size=5)
    assert R.cross_entropy(x, t) == np.float32(R.cross_entropy(x.astype(np.float64), t))


def test_one_dimensional_logits_give_zero_d_none():
    loss = R.cross_entropy([1.0, 2.0, 3.0], 2, reduction="none")
    assert isinstance(loss, np.ndarray) and loss.shape == ()


def test_out_argument():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(3, 4))
    t = [0, 1, 2]
    _, expected = R.cross_entropy_and_grad(x, t)
    inplace = x.copy()
    _, g = R.cross_entropy_and_grad(inplace, t, out=inplace)
    assert g is inplace
    np.testing.assert_array_equal(inplace, expected)
    out = np.empty((4, 3)).T                           # strided out
    assert R.cross_entropy_and_grad(x, t, out=out)[1] is out
    np.testing.assert_array_equal(out, expected)
    for bad, exc in [(np.empty((3, 5)), ValueError), (np.empty((3, 4), np.float32), ValueError),
                     ([[0.0] * 4] * 3, TypeError)]:
        with pytest.raises(exc, match="out"):
            R.cross_entropy_and_grad(x, t, out=bad)
    ro = np.empty((3, 4))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        R.softmax(x, out=ro)


def test_grad_loss_broadcast():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(3, 4))
    t = [0, 1, 2]
    _, g1 = R.cross_entropy_and_grad(x, t, reduction="none")
    _, g = R.cross_entropy_and_grad(x, t, reduction="none", grad_loss=2.0)
    np.testing.assert_allclose(g, 2 * g1, rtol=1e-15)
    _, g = R.cross_entropy_and_grad(x, t, reduction="none", grad_loss=[1.0, 0.0, -1.0])
    np.testing.assert_allclose(g, g1 * np.array([[1.0], [0.0], [-1.0]]), rtol=1e-15)
    with pytest.raises(ValueError, match="grad_loss"):
        R.cross_entropy_and_grad(x, t, reduction="none", grad_loss=[1.0, 2.0])
    with pytest.raises(ValueError, match="grad_loss"):
        R.cross_entropy_and_grad(x, t, grad_loss=[1.0, 2.0, 3.0])


def test_any_layout_same_result():
    rng = np.random.default_rng(10)
    base = rng.normal(size=(8, 10))
    x = base[::-2, ::3]                                 # negative and non-unit strides
    t = rng.integers(0, x.shape[1], size=x.shape[0])
    x_ro = np.asfortranarray(x)
    x_ro.flags.writeable = False
    np.testing.assert_array_equal(R.cross_entropy(x, t, reduction="none"),
                                  R.cross_entropy(np.ascontiguousarray(x), t, reduction="none"))
    np.testing.assert_array_equal(R.cross_entropy(x_ro, t, reduction="none"),
                                  R.cross_entropy(np.ascontiguousarray(x), t, reduction="none"))
    zero_stride = np.broadcast_to(base[0], (3, 10))
    np.testing.assert_array_equal(R.softmax(zero_stride), R.softmax(np.ascontiguousarray(zero_stride)))


# ---------------------------------------------------------------------------
# Bad input (docs/DESIGN.md, "Bad input and memory layouts")
# ---------------------------------------------------------------------------

X = np.zeros((2, 3))


@pytest.mark.parametrize("call, exc, match", [
    (lambda: R.cross_entropy(X, [0, 3]), ValueError, r"targets\[1\] = 3"),
    (lambda: R.cross_entropy(X, [-1, 0]), ValueError, r"targets\[0\] = -1"),
    (lambda: R.cross_entropy(np.zeros((2, 3, 2)), [[0, 0], [0, 7]], axis=1), ValueError, r"targets\[1, 1\] = 7"),
    (lambda: R.cross_entropy(X, [0, 1, 2]), ValueError, "targets"),
    (lambda: R.cross_entropy(X, [[0, 1]]), ValueError, "targets"),
    (lambda: R.cross_entropy(X, [0.0, 1.0]), TypeError, "targets"),
    (lambda: R.cross_entropy(X, [True, False]), TypeError, "targets"),
    (lambda: R.cross_entropy(X, [0, 1], weight=[1.0, 2.0]), ValueError, "weight"),
    (lambda: R.cross_entropy(X, [0, 1], label_smoothing=1.5), ValueError, "label_smoothing"),
    (lambda: R.cross_entropy(X, [0, 1], label_smoothing=-0.1), ValueError, "label_smoothing"),
    (lambda: R.cross_entropy(X, [0, 1], eps=0.5), ValueError, "eps"),
    (lambda: R.cross_entropy(X, [0, 1], eps=-1e-9), ValueError, "eps"),
    (lambda: R.categorical_cross_entropy(X, [0, 1], eps=0.7), ValueError, "eps"),
    (lambda: R.binary_cross_entropy(X, X, eps=0.5), ValueError, "eps"),
    (lambda: R.cross_entropy(X, [0, 1], reduction="avg"), ValueError, "reduction"),
    (lambda: R.nll_loss(X, [0, 1], reduction=None), ValueError, "reduction"),
    (lambda: R.cross_entropy(X, [0, 1], axis=2), ValueError, "axis"),
    (lambda: R.softmax(X, axis=-3), ValueError, "axis"),
    (lambda: R.cross_entropy(X, [0, 1], axis=1.0), TypeError, "axis"),
    (lambda: R.cross_entropy(X, [0, 1], ignore_index=1.5), TypeError, "ignore_index"),
    (lambda: R.cross_entropy(np.zeros((2, 0)), [0, 1]), ValueError, "class"),
    (lambda: R.cross_entropy_and_grad(np.zeros((2, 0)), np.zeros((2, 0))), ValueError, "class"),
    (lambda: R.logsumexp(np.zeros((2, 3)), axis=(1, -1)), ValueError, "twice"),
    (lambda: R.cross_entropy([["a", "b"]], [0]), TypeError, "real numeric"),
    (lambda: R.cross_entropy(X.astype(complex), [0, 1]), TypeError, "real numeric"),
    (lambda: R.binary_cross_entropy(X, np.zeros(3)), ValueError, "targets"),
    (lambda: R.binary_cross_entropy(X, X, weight=np.ones((3, 3))), ValueError, "weight"),
    (lambda: R.binary_cross_entropy_with_logits(X, X, pos_weight=np.ones(2)), ValueError, "pos_weight"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ---------------------------------------------------------------------------
# Gradients against central finite differences (float64)
# ---------------------------------------------------------------------------

H = 1e-6


def _check_grad(fn, x, args, kw, grad_loss, min_gap=None, bounds=()):
    """Compare ``fn(x, *args, **kw) -> (loss, grad)`` with central differences of
    ``sum(grad_loss * loss)``. ``bounds``: (values_fn, lo, hi) triples whose values
    must keep ``min_gap`` away from the clip bounds, so that the difference quotient
    never straddles a kink."""
    for values_fn, lo, hi in bounds:
        v = values_fn(x)
        assert np.min(np.abs(v - lo)) > min_gap and np.min(np.abs(v - hi)) > min_gap
    loss, grad = fn(x, *args, grad_loss=grad_loss, **kw)
    g = np.float64(1.0) if grad_loss is None else np.asarray(grad_loss, np.float64)

    def total(z):
        return float(np.sum(g * fn(z, *args, grad_loss=grad_loss, **kw)[0]))

    numeric = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        zp, zm = x.copy(), x.copy()
        zp[i] += H
        zm[i] -= H
        numeric[i] = (total(zp) - total(zm)) / (2 * H)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7)
    return grad


def _grad_loss_for(reduction, shape, rng):
    if reduction == "none":
        return rng.normal(size=shape)
    return rng.choice([None, 0.7])


CE_CASES = list(itertools.product(
    ["index", "prob"], [None, "weight"], [0.0, 0.3], [0.0, 0.05], ["mean", "sum", "none"]))


@pytest.mark.parametrize("kind, weight, s, eps, reduction", CE_CASES)
def test_cross_entropy_grad_fd(kind, weight, s, eps, reduction):
    rng = np.random.default_rng(11)
    x = rng.normal(scale=2.5, size=(3, 4, 2))          # class axis 1
    t = np.array([[0, 3], [-100, 2], [1, 1]]) if kind == "index" else rng.dirichlet(np.ones(4), (3, 2)).transpose(0, 2, 1)
    kw = dict(axis=1, weight=rng.uniform(0.5, 2, 4) if weight else None, label_smoothing=s, eps=eps,
              reduction=reduction)
    lo, hi = (math.log(eps), math.log1p(-eps)) if eps else (-inf, inf)
    grad = _check_grad(R.cross_entropy_and_grad, x, (t,), kw, _grad_loss_for(reduction, (3, 2), rng),
                       min_gap=1e-3, bounds=[(lambda z: R.log_softmax(z, axis=1), lo, hi)])
    if kind == "index":
        assert (grad[1, :, 0] == 0).all()              # the ignored row
    if eps:
        lsm = R.log_softmax(x, axis=1)
        assert ((lsm < lo) | (lsm > hi)).any()          # the clip is active somewhere


@pytest.mark.parametrize("kind, weight, s, eps, reduction", CE_CASES)
def test_categorical_cross_entropy_grad_fd(kind, weight, s, eps, reduction):
    rng = np.random.default_rng(12)
    p = rng.uniform(0.1, 0.9, size=(3, 4))
    p[0, 1], p[1, 2] = 0.02, 0.98                       # clipped when eps = 0.05
    t = np.array([1, -100, 2]) if kind == "index" else rng.dirichlet(np.ones(4), 3)
    kw = dict(weight=rng.uniform(0.5, 2, 4) if weight else None, label_smoothing=s, eps=eps,
              reduction=reduction)
    grad = _check_grad(R.categorical_cross_entropy_and_grad, p, (t,), kw,
                       _grad_loss_for(reduction, (3,), rng),
                       min_gap=1e-3, bounds=[(lambda z: z, eps, 1 - eps)])
    if eps:
        assert grad[0, 1] == 0 and grad[1, 2] == 0
    if kind == "index":
        assert (grad[1] == 0).all()


@pytest.mark.parametrize("weight, eps, reduction", list(itertools.product(
    [None, "row", "full"], [0.0, 1e-7, 0.05], ["mean", "sum", "none"])))
def test_binary_cross_entropy_grad_fd(weight, eps, reduction):
    rng = np.random.default_rng(13)
    p = rng.uniform(0.1, 0.9, size=(3, 2))
    p[0, 0], p[2, 1] = 0.01, 0.995                      # clipped when eps = 0.05
    y = np.array([[1.0, 0.0], [0.3, 1.0], [0.0, 0.6]])
    w = {None: None, "row": rng.uniform(0.5, 2, 2), "full": rng.uniform(0.5, 2, (3, 2))}[weight]
    kw = dict(eps=eps, weight=w, reduction=reduction)
    grad = _check_grad(R.binary_cross_entropy_and_grad, p, (y,), kw,
                       _grad_loss_for(reduction, (3, 2), rng),
                       min_gap=1e-3, bounds=[(lambda z: z, eps, 1 - eps)])
    if eps == 0.05:
        assert grad[0, 0] == 0 and grad[2, 1] == 0


@pytest.mark.parametrize("weight, pos_weight, reduction", list(itertools.product(
    [None, "full"], [None, "last"], ["mean", "sum", "none"])))
def test_binary_cross_entropy_with_logits_grad_fd(weight, pos_weight, reduction):
    rng = np.random.default_rng(14)
    x = rng.normal(scale=3, size=(2, 3, 3))
    y = rng.uniform(size=(2, 3, 3))
    y[0, 0] = [0.0, 1.0, 0.5]
    kw = dict(weight=rng.uniform(0.5, 2, (3, 1)) if weight else None,
              pos_weight=rng.uniform(0.2, 3, 3) if pos_weight else None, reduction=reduction)
    _check_grad(R.binary_cross_entropy_with_logits_and_grad, x, (y,), kw,
                _grad_loss_for(reduction, (2, 3, 3), rng))


def test_clip_derivative_boundaries_inclusive():
    eps = 0.25
    # p exactly on the bounds: derivative counts (like torch.clamp), just outside: 0
    p = np.array([[0.25, 0.75, 0.0]])
    _, g = R.categorical_cross_entropy_and_grad(p, [[1.0, 1.0, 1.0]], eps=eps, reduction="sum")
    np.testing.assert_allclose(g, [[-4.0, -1 / 0.75, 0.0]])
    _, g = R.binary_cross_entropy_and_grad([0.25, 0.8], [1.0, 1.0], eps=eps, reduction="sum")
    np.testing.assert_allclose(g, [-4.0, 0.0])


def test_masked_and_zero_coefficient_gradients():
    x = np.array([[0.0, -inf, 1.0]])
    loss, g = R.cross_entropy_and_grad(x, [[1.0, 0.0, 0.0]], reduction="sum")
    assert np.isfinite(loss) and np.isfinite(g).all() and g[0, 1] == 0
    loss, g = R.cross_entropy_and_grad(x, [1], reduction="sum")     # target on a masked class
    assert loss == inf and np.isfinite(g).all()
    loss, g = R.cross_entropy_and_grad(x, [1], eps=1e-3, reduction="sum")
    assert loss == pytest.approx(-math.log(1e-3)) and g[0, 1] == 0
    loss, g = R.binary_cross_entropy_with_logits_and_grad([inf, -inf, inf, -inf], [1.0, 0.0, 0.0, 1.0],
                                                          reduction="none")
    np.testing.assert_array_equal(loss, [0.0, 0.0, inf, inf])
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0, -1.0])
