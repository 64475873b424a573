"""Few classes (docs/DESIGN.md, "Kernel families and loops"): the loop that puts one row per vector
lane, turning rows into class-major tiles by lane permutes (a handful of classes), register
transposes (more) or copies (class axis not contiguous), and the row loop that takes VLEN rows at a
time above it, must give the reference's losses and gradients for every class count they take (1 to
80, and just above), with full groups of rows and a partial last group, contiguous and strided rows,
weights, ignored rows, every reduction, and a gradient written over the logits. Expected values come
from xent_fast.reference in float64."""

import numpy as np
import pytest

from _helpers import assert_close, impl, ref, tolerances

# 1..17 covers every permute and transpose width on every ISA (4, 8 or 16 float32 lanes); then one
# and two full transposes plus a partial one, both sides of each ISA's switch to the row loop
# (kernels.inc: AVX-512 float32 37 classes with a gradient, 80 without, float64 20; elsewhere 16
# and 40), and both sides of the row loop's switch from VLEN rows at a time to one (1024).
CLASS_COUNTS = list(range(1, 18)) + [20, 21, 23, 31, 32, 33, 37, 38, 40, 41, 47, 48, 49, 64, 72,
                                     73, 80, 81, 100, 128, 129, 200, 1024, 1025]
ROWS = 16 * 3 + 5  # three full groups of 16 rows and a partial one


def _logits(rng, n_rows, n_class, dtype, layout):
    x = rng.standard_normal((n_rows, n_class)) * 3
    if layout == "row_strided":  # each row's classes contiguous, rows further apart
        parent = np.full((n_rows, n_class + 3), np.nan, dtype=dtype)
        parent[:, :n_class] = x
        return parent[:, :n_class]
    if layout == "class_strided":
        return np.asfortranarray(x).astype(dtype, order="F")
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "row_strided", "class_strided"])
@pytest.mark.parametrize("n_class", CLASS_COUNTS)
def test_every_class_count_matches_reference(n_class, layout, dtype, rng):
    x = _logits(rng, ROWS, n_class, dtype, layout)
    t = rng.integers(0, n_class, size=ROWS)
    t[[2, 20, 51]] = -100  # ignored rows in full and partial groups
    w = rng.uniform(0.5, 2.0, n_class)
    x64 = np.asarray(x, dtype=np.float64)
    rtol, atol = tolerances(dtype, 10.0)
    for weight in (None, w):
        for reduction in ("none", "mean", "sum"):
            kw = dict(weight=weight, reduction=reduction)
            want_loss, want_grad = ref.cross_entropy_and_grad(x64, t, **kw)
            assert_close(impl.cross_entropy(x, t, **kw), want_loss, rtol, atol * ROWS,
                         "loss, %d classes" % n_class)
            loss, grad = impl.cross_entropy_and_grad(x, t, **kw)
            assert_close(loss, want_loss, rtol, atol * ROWS, "fused loss, %d classes" % n_class)
            assert_close(grad, want_grad, rtol, atol, "gradient, %d classes" % n_class)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_class", [2, 3, 5, 6, 10, 16, 17, 37, 100])
def test_gradient_over_the_logits(n_class, dtype, rng):
    x = (rng.standard_normal((ROWS, n_class)) * 3).astype(dtype)
    t = rng.integers(0, n_class, size=ROWS)
    want_loss, want_grad = ref.cross_entropy_and_grad(x.astype(np.float64), t)
    xi = x.copy()
    loss, grad = impl.cross_entropy_and_grad(xi, t, out=xi)
    assert grad is xi
    rtol, atol = tolerances(dtype, 10.0)
    assert_close(grad, want_grad, rtol, atol, "in place, %d classes" % n_class)
    assert_close(loss, want_loss, rtol, atol * ROWS, "in place loss, %d classes" % n_class)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_class", [3, 10, 37, 100])
def test_confident_rows_keep_their_tiny_gradient(n_class, dtype):
    """A row whose target logit leads by 20 has p_t - 1 of about -exp(-20) * (C - 1) ~ -1e-8;
    computed as p_t - 1 in float32 it would round to 0 or to a multiple of float32's epsilon."""
    x = np.zeros((ROWS, n_class))
    t = np.arange(ROWS) % n_class
    x[np.arange(ROWS), t] = 20.0
    want_loss, want_grad = ref.cross_entropy_and_grad(x, t, reduction="sum")
    loss, grad = impl.cross_entropy_and_grad(x.astype(dtype), t, reduction="sum")
    on_target = grad[np.arange(ROWS), t].astype(np.float64)
    np.testing.assert_allclose(on_target, want_grad[np.arange(ROWS), t], rtol=1e-5)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)


def test_rows_with_inf_and_nan_inside_full_groups(rng):
    """Irregular rows in a group of otherwise regular ones: each gets the reference's values and
    leaves its neighbours alone."""
    for n_class in (3, 10, 37, 100, 300):
        x = rng.standard_normal((ROWS, n_class)).astype(np.float32)
        t = rng.integers(0, n_class, size=ROWS)
        x[1, 0] = np.inf
        x[17, :] = -np.inf
        x[18, n_class - 1] = np.nan
        with np.errstate(all="ignore"):
            want_loss, want_grad = ref.cross_entropy_and_grad(x.astype(np.float64), t,
                                                              reduction="none")
            loss, grad = impl.cross_entropy_and_grad(x, t, reduction="none")
        rtol, atol = tolerances(np.float32, 10.0)
        assert_close(loss, want_loss, rtol, atol, "%d classes" % n_class)
        assert_close(grad, want_grad, rtol, atol, "%d classes" % n_class)


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_class", [3, 21, 100, 300])
@pytest.mark.parametrize("rows", [64 * 2 + 8 * 3 + 5, 1024])
def test_class_axis_not_last_gradient_blocks(rows, n_class, dtype, in_place, rng):
    """A class axis that is not the last (rows in lanes): the gradient is stored for several groups
    of rows at once (up to 256 bytes of each class), so a run holds several such blocks, a partial
    one and a partial group; ignored and irregular rows inside blocks must leave their neighbours'
    gradients alone, also when the gradient is written over the logits.  With 1024 rows the class
    planes are a multiple of a page apart, and the blocks' logits are loaded together too."""
    x = (rng.standard_normal((2, n_class, rows)) * 3).astype(dtype)
    t = rng.integers(0, n_class, size=(2, rows))
    t[0, [3, 70, 140]] = -100
    x[0, 0, 9] = np.inf
    x[1, :, 100] = -np.inf
    x[1, n_class - 1, 30] = np.nan
    with np.errstate(all="ignore"):
        want_loss, want_grad = ref.cross_entropy_and_grad(x.astype(np.float64), t, axis=1,
                                                          reduction="none")
        xi = x.copy()
        loss, grad = impl.cross_entropy_and_grad(xi, t, axis=1, reduction="none",
                                                 out=xi if in_place else None)
    rtol, atol = tolerances(dtype, 10.0)
    assert_close(loss, want_loss, rtol, atol, "loss, %d classes" % n_class)
    assert_close(grad, want_grad, rtol, atol, "gradient, %d classes" % n_class)


@pytest.mark.parametrize("dtype, d_max, rtol", [(np.float64, 700.0, 1e-15), (np.float32, 80.0, 6e-7)])
@pytest.mark.parametrize("n_class", [2, 200])
def test_gradient_follows_exp_over_a_dense_sweep(n_class, dtype, d_max, rtol):
    """Rows [0, -d, -inf, ...] with target 0 have gradient p_1 = e / (1 + e), e = exp(-d), on
    class 1 and -p_1 on class 0, and loss log1p(e): the kernels' exponential and log-sum-exp
    (across rows at 2 classes, row by row at 200) against NumPy over a dense sweep of d, from 1
    down to the smallest normal outputs.  Masked (-inf) classes add exactly nothing."""
    d = np.linspace(0.0, d_max, 20001).astype(dtype).astype(np.float64)  # exactly the inputs
    x = np.full((d.size, n_class), -np.inf)
    x[:, 0] = 0.0
    x[:, 1] = -d
    t = np.zeros(d.size, dtype=np.int64)
    e = np.exp(-d)
    p1 = e / (1.0 + e)
    _, grad = impl.cross_entropy_and_grad(x.astype(dtype), t, reduction="sum")
    np.testing.assert_allclose(grad[:, 1].astype(np.float64), p1, rtol=rtol, atol=0)
    np.testing.assert_allclose(grad[:, 0].astype(np.float64), -p1, rtol=rtol, atol=0)
    if n_class > 2:
        assert np.all(grad[:, 2:] == 0)
    # The loss log1p(e) keeps its relative accuracy down to e ~ 1e-300 (1e-12 for float64, 1e-6
    # for float32: docs/DESIGN.md, "Tolerances"), as do log_softmax and logsumexp of the same rows.
    loss_rtol = 1e-12 if dtype == np.float64 else 1e-6
    loss = impl.cross_entropy(x.astype(dtype), t, reduction="none").astype(np.float64)
    np.testing.assert_allclose(loss, np.log1p(e), rtol=loss_rtol, atol=0)
    lse = impl.logsumexp(x.astype(dtype), axis=-1).astype(np.float64)
    np.testing.assert_allclose(lse, np.log1p(e), rtol=loss_rtol, atol=0)
    lsm = impl.log_softmax(x.astype(dtype), axis=-1)[:, 0].astype(np.float64)
    np.testing.assert_allclose(lsm, -np.log1p(e), rtol=loss_rtol, atol=0)
