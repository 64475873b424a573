"""Large sizes: C = 100_000 and 128_256 (float32 within 1e-6 relative of the float64 truth of the
same float32 inputs, docs/DESIGN.md "Tolerances"), long batches (float64 accumulation of float32
rows), and (opt-in, slow) one row of more than 2**31 classes. Batches past 2**31 elements and
offsets past 2**31 are in test_hardening.py."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _helpers import (USING_REFERENCE, assert_close, check_loss_vs_ref, impl, make_prob_targets,
                      ref, tolerances)
from _strategies import REDUCTIONS, seeds


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("target_kind", ["index", "prob"])
def test_c_100k_matches_reference(dtype, target_kind, rng):
    N, C = 6, 100_000
    x = (rng.standard_normal((N, C)) * 3).astype(dtype)
    if target_kind == "index":
        t = rng.integers(0, C, size=N)
        t[2] = -100
    else:
        t = np.zeros((N, C), dtype=dtype)
        t[np.arange(N), rng.integers(0, C, size=N)] = 0.75
        t[:, :10] += 0.025
    w = rng.uniform(0.5, 2.0, size=C)
    x64 = x.astype(np.float64)
    t64 = t.astype(np.float64) if target_kind == "prob" else t
    for kw in ({}, {"weight": w, "label_smoothing": 0.1, "eps": 1e-7}):
        loss = impl.cross_entropy(x, t, reduction="none", **kw)
        expected = ref.cross_entropy(x64, t64, reduction="none", **kw)
        rtol, atol = (1e-6, 1e-6) if dtype == np.float32 else (1e-12, 1e-12)
        assert_close(loss, expected, rtol, atol)
        loss, g = impl.cross_entropy_and_grad(x, t, **kw)
        el, eg = ref.cross_entropy_and_grad(x64, t64, **kw)
        assert_close(loss, el, rtol, atol)
        assert_close(g, eg, 1e-5 if dtype == np.float32 else 1e-11,
                     1e-9 if dtype == np.float32 else 1e-17)
    rtol, atol = tolerances(dtype, 20.0)
    assert_close(impl.logsumexp(x), ref.logsumexp(x64), rtol, atol)
    assert_close(impl.log_softmax(x), ref.log_softmax(x64), rtol, atol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16, "bfloat16"])
def test_streamed_rows_in_batches_keep_every_row_apart(dtype, rng):
    """Rows longer than a batch go through the forward VLEN at a time (docs/DESIGN.md, "The row
    loop"): ignored, masked, +inf and NaN rows at any place among them, and a last partial batch,
    each give the reference's loss and log-sum-exp, and the reductions hold them all.  Half
    precision is converted a stretch at a time with its maxima (load_half_tops): 1500 classes
    end in a partial chunk and a partial vector."""
    import ml_dtypes
    N, C = 37, 1500
    x = (rng.standard_normal((N, C)) * 3).astype(np.float32)
    t = rng.integers(0, C, size=N)
    t[[0, 16, 36]] = -100
    x[5, :] = -np.inf  # every class masked
    x[7, rng.integers(0, C, 50)] = -np.inf  # some classes masked
    x[9, 3] = np.inf
    x[20, t[20]] = np.nan
    x[21, (t[21] + 1) % C] = np.nan
    x[30, t[30]] = 60.0  # a confident row
    store = ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype
    x = x.astype(store)
    x64 = x.astype(np.float64)
    sw = rng.uniform(0.5, 2.0, size=N)
    rtol, atol = (1e-12, 1e-12) if dtype == np.float64 else (1e-6, 1e-6)
    for kw in ({}, {"sample_weight": sw, "z_loss": 1e-4}):
        loss, lse = impl.cross_entropy(x, t, reduction="none", return_lse=True, **kw)
        el, else_ = ref.cross_entropy(x64, t, reduction="none", return_lse=True, **kw)
        assert_close(loss, el, rtol, atol)
        assert_close(lse, else_, rtol, atol)
        clean = np.setdiff1d(np.arange(N), [5, 9, 20, 21])
        kw_clean = {k: (v[clean] if k == "sample_weight" else v) for k, v in kw.items()}
        for red in ("mean", "sum"):
            assert np.isnan(impl.cross_entropy(x, t, reduction=red, **kw))
            assert_close(impl.cross_entropy(x[clean], t[clean], reduction=red, **kw_clean),
                         ref.cross_entropy(x64[clean], t[clean], reduction=red, **kw_clean),
                         rtol, atol)


@settings(max_examples=12)
@given(data=st.data())
def test_large_c_properties(data):
    """Hypothesis over large C (class axis first or last, index or probability targets, options)."""
    C = data.draw(st.sampled_from([100_000, 65_537, 32_003, 50_257]), label="C")
    N = data.draw(st.integers(0, 3), label="N")
    dtype = data.draw(st.sampled_from([np.float32, np.float64]), label="dtype")
    axis = data.draw(st.sampled_from([-1, 0]), label="axis")
    rng = np.random.default_rng(data.draw(seeds, label="seed"))
    shape = (N, C) if axis == -1 else (C, N)
    x = (rng.standard_normal(shape) * data.draw(st.sampled_from([1.0, 10.0]))).astype(dtype)
    if data.draw(st.booleans(), label="index targets"):
        t = rng.integers(0, C, size=N)
        if N:
            t[0] = data.draw(st.sampled_from([0, C - 1, -100]))
        tt = t
    else:
        t = make_prob_targets(rng, shape, axis, dtype, data.draw(st.sampled_from(
            ["onehot", "dirichlet"])))
        tt = t.astype(np.float64)
    kw = {"axis": axis, "reduction": data.draw(st.sampled_from(REDUCTIONS))}
    if data.draw(st.booleans(), label="options"):
        kw.update(weight=rng.uniform(0.5, 2.0, C), label_smoothing=0.1, eps=1e-6)
    loss = impl.cross_entropy(x, t, **kw)
    rtol, atol = tolerances(dtype, 60.0)
    check_loss_vs_ref("cross_entropy", loss, (x.astype(np.float64), tt), kw, dtype, rtol, atol)
    loss2, g = impl.cross_entropy_and_grad(x, t, **kw)
    _, eg = ref.cross_entropy_and_grad(x.astype(np.float64), tt, **kw)
    assert_close(loss2, loss, rtol, atol * max(1, N))
    assert_close(g, eg, rtol, atol * 2.0 / max(1, N if kw["reduction"] == "mean" else 1))


@pytest.mark.parametrize("scale", [1.0, 4.0])
def test_float32_mean_at_c_128256_within_1e6_of_float64_truth(scale, rng):
    N, C = 32, 128_256
    x = (rng.standard_normal((N, C)) * scale).astype(np.float32)
    t = rng.integers(0, C, size=N)
    truth = ref.cross_entropy(x.astype(np.float64), t)
    got = impl.cross_entropy(x, t)
    assert type(got) is np.float32
    assert abs(float(got) - float(truth)) <= 1e-6 * abs(float(truth)), (got, truth)
    rows = impl.cross_entropy(x, t, reduction="none")
    rows_truth = ref.cross_entropy(x.astype(np.float64), t, reduction="none")
    np.testing.assert_allclose(rows, rows_truth, rtol=1e-6)
    loss, g = impl.cross_entropy_and_grad(x, t)
    assert abs(float(loss) - float(truth)) <= 1e-6 * abs(float(truth))
    _, g_truth = ref.cross_entropy_and_grad(x.astype(np.float64), t)
    np.testing.assert_allclose(g, g_truth, rtol=1e-5, atol=1e-6 * float(np.abs(g_truth).max()))
    lse = impl.logsumexp(x)
    np.testing.assert_allclose(lse, ref.logsumexp(x.astype(np.float64)), rtol=1e-6)


def test_float32_reductions_accumulate_in_float64(rng):
    """300k rows of float32: a float32 running sum would drift by ~1e-4; the contract is a float64
    accumulation, so the mean is within 1e-6 relative of the float64 truth."""
    N, C = 300_000, 10
    x = rng.standard_normal((N, C)).astype(np.float32)
    t = rng.integers(0, C, size=N)
    x64 = x.astype(np.float64)
    for red in ("mean", "sum"):
        truth = float(ref.cross_entropy(x64, t, reduction=red))
        got = impl.cross_entropy(x, t, reduction=red)
        assert type(got) is np.float32
        assert abs(float(got) - truth) <= 1e-6 * abs(truth), (red, got, truth)
    p = rng.uniform(0.01, 0.99, size=(N, C)).astype(np.float32)
    truth = float(ref.binary_cross_entropy(p.astype(np.float64), (x > 0).astype(np.float64)))
    got = impl.binary_cross_entropy(p, (x > 0).astype(np.float32))
    assert abs(float(got) - truth) <= 1e-6 * abs(truth)


@pytest.mark.compiled_only
@pytest.mark.skipif(USING_REFERENCE, reason="the reference would materialise the broadcast")
def test_more_than_2_to_the_31_elements_in_one_row():
    """One row longer than 2**31 classes (zero stride), a target index past 2**31 (about a
    second per call)."""
    C = 2**31 + 5
    x = np.broadcast_to(np.float32(0.0), (1, C))
    t = np.array([C - 1])
    loss = impl.cross_entropy(x, t)
    assert float(loss) == pytest.approx(np.log(C), rel=1e-6)
    with pytest.raises(ValueError, match=str(C)):
        impl.cross_entropy(x, np.array([C]))


def _rising_rows(dtype, rng):
    """Long rows whose running max moves while they are read: one rising across every stretch
    (more rises than the kernels keep apart before folding them), one all -inf for its first
    stretches, one whose early part lies 100 below its late max (the early gradient underflows),
    one with a +inf late, one with a NaN late, one ordinary.  Targets early and late."""
    C = 70_000
    x = rng.standard_normal((6, C))
    x[0] += np.linspace(0.0, 60.0, C)
    x[1, :5000] = -np.inf
    x[2, C // 2:] += 100.0
    x[3, C - 10] = np.inf
    x[4, C - 10] = np.nan
    t = np.array([C - 1, 6000, 17, 3, C - 5, C // 3])
    return x.astype(dtype), t


def _rising_rows_masked_target(dtype, rng):
    """_rising_rows with row 1's target among its leading -inf logits."""
    x, t = _rising_rows(dtype, rng)
    t[1] = 100
    return x, t


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("rows", [_rising_rows, _rising_rows_masked_target])
def test_rows_whose_max_moves_while_they_are_read(rows, dtype, in_place, rng):
    """A long row's gradient is left relative to the max found so far and scaled to the row's
    at the end: against the reference, also written over the logits (out=logits), into an out
    that held NaNs, and with a target among the leading -inf logits."""
    x, t = rows(dtype, rng)
    with np.errstate(all="ignore"):
        el, eg = ref.cross_entropy_and_grad(x.astype(np.float64), t, reduction="none")
        ll = impl.cross_entropy(x, t, reduction="none")
        out = x.copy() if in_place else np.full_like(x, np.nan)  # what out held must not matter
        loss, g = impl.cross_entropy_and_grad(out if in_place else x, t, reduction="none", out=out)
    assert g is out
    rtol, atol = (1e-5, 1e-9) if dtype == np.float32 else (1e-11, 1e-17)
    assert_close(loss, el, rtol, 1e-6 if dtype == np.float32 else 1e-12)
    assert_close(ll, el, rtol, 1e-6 if dtype == np.float32 else 1e-12)
    assert_close(g, eg, rtol, atol)
    if dtype == np.float32:  # off target, exp(-100 + ...) is below float32's smallest normal: flushed
        early = np.delete(g[2, : x.shape[1] // 2], t[2])
        assert np.all(early == 0)


@pytest.mark.parametrize("scale", [0.37, 3.0, -0.5])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rows_whose_max_moves_under_a_logit_scale(dtype, scale, rng):
    """A positive logit scale alone is folded into the exp pass of long contiguous rows (their
    maxima taken on the logits, then scaled); a negative one maps the rows first.  Either way the
    forward, its lse and the gradient follow the reference on rows whose max moves."""
    x, t = _rising_rows(dtype, rng)
    with np.errstate(all="ignore"):
        el, else_ = ref.cross_entropy(x.astype(np.float64), t, reduction="none",
                                      logit_scale=scale, return_lse=True)
        _, eg = ref.cross_entropy_and_grad(x.astype(np.float64), t, reduction="none",
                                           logit_scale=scale)
        loss, lse = impl.cross_entropy(x, t, reduction="none", logit_scale=scale, return_lse=True)
        gl, g = impl.cross_entropy_and_grad(x, t, reduction="none", logit_scale=scale)
    tol = 1e-5 if dtype == np.float32 else 1e-11
    assert_close(loss, el, tol, 1e-6 if dtype == np.float32 else 1e-12)
    assert_close(lse, else_, tol, 1e-6 if dtype == np.float32 else 1e-12)
    assert_close(gl, el, tol, 1e-6 if dtype == np.float32 else 1e-12)
    # each exp(z - max) carries the rounding of z = scale x and of the max in the compute type
    z_max = np.abs(scale * x[np.isfinite(x)].astype(np.float64)).max()
    g_tol = max(tol, 2.0 * np.finfo(dtype).eps * z_max)
    assert_close(g, eg, g_tol, 1e-9 if dtype == np.float32 else 1e-17)
    # A confident row, its max mid-row: its loss (~1e-8) is the sum of its small terms, which an
    # exp(0) term added among them in float32 (the max's chunk missed) would swallow.
    c = (rng.standard_normal((1, x.shape[1])) / abs(scale)).astype(dtype)
    c[0, 40_000] = 30.0 / abs(scale)
    (cl,), (rl,) = (f.cross_entropy(c, np.array([40_000]), reduction="none",
                                    logit_scale=abs(scale)) for f in (impl, ref))
    assert 0 < rl < 1e-7 and abs(cl / rl - 1) < 1e-5, (cl, rl)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rows_whose_max_moves_with_upstream_gradients_of_either_sign(dtype, rng):
    """The parts of such rows summed before the max moved are scaled by the upstream gradient
    times exp(running max - max), flushed only where that product is below the smallest normal
    number in magnitude: a negative upstream gradient scales them too."""
    x, t = _rising_rows(dtype, rng)
    grad_loss = np.array([-1.5, 0.5, -0.25, 1.0, -2.0, -0.75])
    with np.errstate(all="ignore"):
        el, eg = ref.cross_entropy_and_grad(x.astype(np.float64), t, reduction="none",
                                            grad_loss=grad_loss)
        loss, g = impl.cross_entropy_and_grad(x, t, reduction="none", grad_loss=grad_loss)
        _, g_mean = impl.cross_entropy_and_grad(x, t, grad_loss=-3.0)
        _, eg_mean = ref.cross_entropy_and_grad(x.astype(np.float64), t, grad_loss=-3.0)
    rtol, atol = (1e-5, 1e-9) if dtype == np.float32 else (1e-11, 1e-17)
    assert_close(g, eg, rtol, atol)
    assert_close(g_mean, eg_mean, rtol, atol)


@pytest.mark.parametrize("offset", [0, 1])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradient_stored_past_the_caches(dtype, offset, rng):
    """A gradient of long rows of 64 MiB or more, into an `out=` apart from the logits, is stored
    past the caches (docs/DESIGN.md, "Stores past the caches"): _rising_rows repeated to that
    size, into an out that held NaNs and (offset 1) starts one element past a vector boundary,
    with upstream gradients of either sign. Against the reference, and the same bits as the
    gradient into a new array (stored plainly)."""
    base, t0 = _rising_rows(dtype, rng)
    reps = -(-(64 << 20) // base.nbytes)
    x, t = np.tile(base, (reps, 1)), np.tile(t0, reps)
    grad_loss = np.tile(np.array([-1.5, 0.5, -0.25, 1.0, -2.0, -0.75]), reps)
    buf = np.full(x.size + offset, np.nan, dtype)
    out = buf[offset:].reshape(x.shape)
    with np.errstate(all="ignore"):
        el, eg = ref.cross_entropy_and_grad(base.astype(np.float64), t0, reduction="none",
                                            grad_loss=grad_loss[:6])
        loss, g = impl.cross_entropy_and_grad(x, t, reduction="none", grad_loss=grad_loss,
                                              out=out)
        loss_new, g_new = impl.cross_entropy_and_grad(x, t, reduction="none",
                                                      grad_loss=grad_loss)
    assert g is out and g.nbytes >= 64 << 20
    rtol, atol = (1e-5, 1e-9) if dtype == np.float32 else (1e-11, 1e-17)
    assert_close(loss, np.tile(el, reps), rtol, 1e-6 if dtype == np.float32 else 1e-12)
    assert_close(g, np.tile(eg, (reps, 1)), rtol, atol)
    np.testing.assert_array_equal(g, g_new)
    np.testing.assert_array_equal(loss, loss_new)


@pytest.mark.parametrize("use_out", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradient_from_the_logits_with_every_option(dtype, use_out, rng):
    """A gradient of long rows of 64 MiB or more apart from the logits is computed from them
    after each row's sum (docs/DESIGN.md, "Stores past the caches"), into an out= or a new
    array: _rising_rows_masked_target repeated to that size with an ignored row, class weights,
    sample weights and a z-loss, against the reference, per row and as a mean (whose
    denominator the repeats multiply)."""
    base, t0 = _rising_rows_masked_target(dtype, rng)
    t0 = np.append(t0, -100)  # an ignored row
    base = np.vstack([base, base[5:]])
    C = base.shape[1]
    weight = rng.uniform(0.5, 2.0, C)
    sw0 = np.array([1.0, 0.5, 2.0, 1.5, 0.25, 3.0, 1.0])
    reps = -(-(64 << 20) // base.nbytes)
    x, t, sw = np.tile(base, (reps, 1)), np.tile(t0, reps), np.tile(sw0, reps)
    opts = dict(weight=weight, z_loss=1e-3)
    rtol, atol = (1e-5, 1e-9) if dtype == np.float32 else (1e-11, 1e-17)
    for reduction in ("none", "mean"):
        out = np.full_like(x, np.nan) if use_out else None
        with np.errstate(all="ignore"):
            el, eg = ref.cross_entropy_and_grad(base.astype(np.float64), t0, reduction=reduction,
                                                sample_weight=sw0, **opts)
            loss, g = impl.cross_entropy_and_grad(x, t, reduction=reduction, sample_weight=sw,
                                                  out=out, **opts)
        assert g.nbytes >= 64 << 20 and (g is out or not use_out)
        if reduction == "none":
            assert_close(loss, np.tile(el, reps), rtol, 1e-6 if dtype == np.float32 else 1e-12)
            assert_close(g, np.tile(eg, (reps, 1)), rtol, atol)
        else:
            assert_close(loss, el, rtol, 1e-6 if dtype == np.float32 else 1e-12)
            assert_close(g, np.tile(eg / reps, (reps, 1)), rtol, atol)
        assert not g[6::7].any()  # the ignored rows


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("C", [511, 512, 513, 700, 1024, 1025])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rows_either_side_of_a_batch(dtype, C, in_place, rng):
    """Rows just under and over a batch's length (BATCH_MAX_CLASSES: 512 with AVX-512, 1024
    elsewhere) go through the batched or the one-by-one row loop: both against the reference,
    with an ignored row, a +inf, an all -inf and a NaN row, a confident row, targets at either
    end and per-row upstream gradients of either sign."""
    x = (rng.standard_normal((37, C)) * 4).astype(dtype)
    t = rng.integers(0, C, 37)
    t[:3] = [0, C - 1, C // 2]
    t[5] = -100
    x[7, 3] = np.inf
    x[9] = -np.inf
    x[11, C - 2] = np.nan
    x[13, t[13]] += 60.0
    grad_loss = rng.uniform(-2.0, 2.0, 37)
    with np.errstate(all="ignore"):
        el, eg = ref.cross_entropy_and_grad(x.astype(np.float64), t, reduction="none",
                                            grad_loss=grad_loss)
        fl = impl.cross_entropy(x, t, reduction="none")
        out = x.copy() if in_place else np.full_like(x, np.nan)
        loss, g = impl.cross_entropy_and_grad(out if in_place else x, t, reduction="none",
                                              grad_loss=grad_loss, out=out)
    # the reference's on-target p_t - 1 of the confident row rounds at the ulp of 1 (times
    # |grad_loss| <= 2); the kernels keep its true value, e.g. 6e-17 where the reference gives 0
    rtol, atol = (1e-5, 1e-9) if dtype == np.float32 else (1e-11, 2 * np.finfo(np.float64).eps)
    ltol = 1e-6 if dtype == np.float32 else 1e-12
    assert_close(fl, el, rtol, ltol)
    assert_close(loss, el, rtol, ltol)
    assert_close(g, eg, rtol, atol)
