"""binary_cross_entropy and binary_cross_entropy_with_logits (and their _and_grad): hypothesis
against the reference over shapes, dtypes, layouts, weight/pos_weight broadcasting, eps, every
reduction, grad_loss and out=; plus exact values from the formulas."""

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from _helpers import (LAYOUTS, assert_close, assert_unchanged, check_loss_type, check_loss_vs_ref,
                      compute_dtype, impl, input_scale, mean_denominator, ref, relayout, snapshot,
                      tight_tolerances, to_truth, tolerances)
from _strategies import REDUCTIONS, elem_shapes, eps_values, float_dtypes, gen_probs, seeds


def _bcast_weight(data, rng, shape, label):
    opts = ["none", "none", "full", "last", "ones"]
    if len(shape) >= 2:
        opts.append("first")
    kind = data.draw(st.sampled_from(opts), label=label)
    if kind == "none":
        return None
    if kind == "full":
        return rng.uniform(0.1, 3.0, size=shape)
    if kind == "last":
        return rng.uniform(0.1, 3.0, size=shape[-1:])
    if kind == "ones":
        return np.full((1,) * len(shape), 1.7)
    return rng.uniform(0.1, 3.0, size=(shape[0],) + (1,) * (len(shape) - 1))


def _targets(data, rng, shape, dtype):
    kind = data.draw(st.sampled_from(["binary", "soft", "mixed"]), label="targets kind")
    y = rng.uniform(0.0, 1.0, size=shape)
    if kind == "binary":
        y = np.round(y)
    elif kind == "mixed":
        y = np.where(rng.uniform(size=shape) < 0.5, np.round(y), y)
    tdtype = data.draw(st.sampled_from([dtype, np.float64, np.float32]), label="targets dtype")
    if np.dtype(tdtype).kind != "f":
        tdtype = np.float64
    return y.astype(tdtype)


def _run(name, data, x, y, kw, dtype, scale, grad_scale):
    cd = compute_dtype(dtype)
    grad = name.endswith("_and_grad")
    red = kw.get("reduction", "mean")
    xl = relayout(x, data.draw(st.sampled_from(LAYOUTS), label="x layout"))
    yl = relayout(y, data.draw(st.sampled_from(LAYOUTS), label="y layout"))
    out = None
    if grad:
        gl_kind = data.draw(st.sampled_from(["none", "scalar", "array"]), label="grad_loss")
        if gl_kind == "scalar":
            kw["grad_loss"] = -1.25
        elif gl_kind == "array" and red == "none":
            kw["grad_loss"] = np.random.default_rng(0).uniform(-2, 2, size=x.shape)
        ok = data.draw(st.sampled_from(["none", "new", "F"]), label="out")
        if ok != "none":
            out = np.full(x.shape, np.nan, dtype=cd, order="C" if ok == "new" else "F")
            kw["out"] = out
    snaps = snapshot(xl, yl, kw.get("weight"), kw.get("pos_weight"))
    res = getattr(impl, name)(xl, yl, **kw)
    assert_unchanged([xl, yl, kw.get("weight"), kw.get("pos_weight")], snaps)
    loss, g = res if grad else (res, None)
    check_loss_type(loss, red, dtype, x.shape)
    wmax = max([1.0] + [float(np.max(kw[k])) for k in ("weight", "pos_weight")
                        if kw.get(k) is not None and np.size(kw[k])])
    rtol, atol = tolerances(cd, scale * wmax)
    truth = (to_truth(x, dtype), to_truth(y, dtype))
    rows, total, mean = check_loss_vs_ref(name, loss, truth, kw, dtype, rtol, atol)
    if not grad:
        return
    if out is not None:
        assert g is out
    assert isinstance(g, np.ndarray) and g.shape == x.shape and g.dtype == cd
    ref_kw = {k: v for k, v in kw.items() if k not in ("out",)}
    _, expected = getattr(ref, name)(*truth, **ref_kw)
    gl = kw.get("grad_loss")
    gmax = float(np.max(np.abs(gl), initial=0.0)) if gl is not None else 1.0
    denom = mean_denominator(total, mean) if red == "mean" else 1.0
    grtol, gatol = tolerances(cd, grad_scale * wmax)
    assert_close(g, expected, grtol, gatol * max(gmax, 1e-300) / denom, "gradient")
    # the fused loss is the forward loss
    fkw = {k: v for k, v in kw.items() if k not in ("grad_loss", "out")}
    floss = getattr(impl, name[: -len("_and_grad")])(x, y, **fkw)
    trt, tat = tight_tolerances(cd, scale * wmax)
    assert_close(loss, floss, trt, tat * max(1, x.size), "fused loss vs forward loss")


@pytest.mark.parametrize("name", ["binary_cross_entropy", "binary_cross_entropy_and_grad"])
@given(data=st.data())
def test_binary_cross_entropy_matches_reference(name, data):
    shape = data.draw(elem_shapes(), label="shape")
    dtype = data.draw(float_dtypes(half=True), label="dtype")
    rng = np.random.default_rng(data.draw(seeds, label="seed"))
    pkind = data.draw(st.sampled_from(["uniform", "edges", "outside"]), label="probs kind")
    if pkind == "outside":
        p = rng.uniform(-0.2, 1.2, size=shape)
    else:
        p = gen_probs(rng, shape, pkind)
    if np.dtype(dtype).kind in "iu":
        p = np.round(np.clip(p, 0, 1))
    x = np.asarray(p).astype(dtype)
    y = _targets(data, rng, shape, dtype)
    kw = {}
    eps = data.draw(eps_values(None), label="eps")
    if eps is not None:
        kw["eps"] = eps
    w = _bcast_weight(data, rng, shape, "weight")
    if w is not None:
        kw["weight"] = w
    red = data.draw(st.sampled_from(REDUCTIONS + [None]), label="reduction")
    if red is not None:
        kw["reduction"] = red
    e = kw.get("eps", 1e-7)
    xt = to_truth(x, dtype)
    if compute_dtype(dtype) == np.float32 and e > 0:
        assume(not np.any(np.isclose(xt, e, rtol=1e-6, atol=0)))
        assume(not np.any(np.isclose(xt, 1 - e, rtol=1e-6, atol=0)))
    if name.endswith("_and_grad") and e == 0:  # infinite derivatives at p = 0 or 1: keep clear
        assume(np.all((xt > 0) & (xt < 1)))
    scale = min(1.0 - math.log(max(e, 1e-300)), 800.0)
    inner = xt[(xt >= e) & (xt <= 1 - e)] if e else xt[(xt > 0) & (xt < 1)]
    pmin = float(np.min(np.minimum(inner, 1 - inner), initial=0.5))
    grad_scale = 1.0 / max(pmin, e, 1e-300)
    _run(name, data, x, y, kw, dtype, scale, grad_scale)


@pytest.mark.parametrize("name", ["binary_cross_entropy_with_logits",
                                  "binary_cross_entropy_with_logits_and_grad"])
@given(data=st.data())
def test_binary_cross_entropy_with_logits_matches_reference(name, data):
    shape = data.draw(elem_shapes(), label="shape")
    dtype = data.draw(float_dtypes(half=True), label="dtype")
    rng = np.random.default_rng(data.draw(seeds, label="seed"))
    mag = data.draw(st.sampled_from([1.0, 5.0, 40.0, 1e30]), label="magnitude")
    if np.dtype(dtype).kind in "iu":
        x = rng.integers(-20, 21, size=shape).astype(dtype)
    else:
        if dtype == np.float16:
            mag = min(mag, 40.0)
        x = (rng.standard_normal(shape) * mag).astype(dtype)
    y = _targets(data, rng, shape, dtype)
    kw = {}
    w = _bcast_weight(data, rng, shape, "weight")
    if w is not None:
        kw["weight"] = w
    if data.draw(st.booleans(), label="pos_weight?"):
        kw["pos_weight"] = rng.uniform(0.1, 4.0, size=shape[-1:])
    red = data.draw(st.sampled_from(REDUCTIONS + [None]), label="reduction")
    if red is not None:
        kw["reduction"] = red
    scale = input_scale(to_truth(x, dtype)) * (1 + float(np.max(kw.get("pos_weight", 1.0),
                                                                initial=1.0)))
    _run(name, data, x, y, kw, dtype, scale, 2.0 * (1 + float(np.max(kw.get("pos_weight", 1.0),
                                                                      initial=1.0))))


# ----------------------------------------------------------------------------------------------
# exact values
# ----------------------------------------------------------------------------------------------


def test_bce_clipping_and_zero_coefficients():
    eps = 1e-7
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.3])
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.25])
    loss = impl.binary_cross_entropy(p, y, reduction="none")
    hi = 1.0 - eps  # the upper clip bound, as a float
    expected = [-math.log(eps), -math.log(1.0 - hi), -math.log1p(-eps), -math.log(hi),
                -(0.25 * math.log(0.3) + 0.75 * math.log(0.7))]
    np.testing.assert_allclose(loss, expected, rtol=1e-13)
    # eps = 0: y log p is 0 when y == 0, (1 - y) log(1 - p) is 0 when y == 1
    loss = impl.binary_cross_entropy(p, y, eps=0.0, reduction="none")
    np.testing.assert_array_equal(loss[:4], [np.inf, np.inf, 0.0, 0.0])
    assert not np.any(np.isnan(loss))


@pytest.mark.parametrize("p, expected", [(0.25, -(0.5 / 0.25 - 0.5 / 0.75)),
                                         (0.75, -(0.5 / 0.75 - 0.5 / 0.25)),
                                         (0.2, 0.0), (0.8, 0.0)])
def test_bce_grad_clip_boundaries_are_inside(p, expected):
    _, g = impl.binary_cross_entropy_and_grad([p], [0.5], eps=0.25, reduction="sum")
    assert g[0] == pytest.approx(expected, rel=1e-15, abs=0)


def test_bce_grad_at_exact_labels_has_no_nan():
    p = np.array([1.0, 0.0, 0.5])
    y = np.array([1.0, 0.0, 1.0])
    loss, g = impl.binary_cross_entropy_and_grad(p, y, eps=0.0, reduction="none")
    np.testing.assert_array_equal(loss, [0.0, 0.0, math.log(2)])
    np.testing.assert_allclose(g, [-1.0, 1.0, -2.0], rtol=1e-15)


def test_bce_with_logits_exact():
    x = np.array([0.0, 2.0, -3.0, 50.0, -50.0, 1e30, -1e30])
    y = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0])
    loss = impl.binary_cross_entropy_with_logits(x, y, reduction="none")
    sp = lambda v: max(v, 0.0) + math.log1p(math.exp(-abs(v)))  # softplus  # noqa: E731
    expected = [sp(-0.0), sp(2.0), sp(3.0), sp(-50.0), sp(-50.0), 1e30, 1e30]
    np.testing.assert_allclose(loss, expected, rtol=1e-14)
    assert np.all(np.isfinite(loss))
    _, g = impl.binary_cross_entropy_with_logits_and_grad(x, y, reduction="none")
    sig = lambda v: 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))  # noqa
    # sigmoid(x) - y, written without cancellation: -sigmoid(-x) for y = 1, sigmoid(x) for y = 0
    np.testing.assert_allclose(g, [-sig(-xx) if yy == 1 else sig(xx) for xx, yy in zip(x, y)],
                               rtol=1e-14, atol=1e-300)


def test_bce_with_logits_pos_weight_along_last_axis():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3))
    y = rng.uniform(size=(4, 3))
    pw = np.array([0.5, 2.0, 3.0])
    loss = impl.binary_cross_entropy_with_logits(x, y, pos_weight=pw, reduction="none")
    logsig = lambda v: -np.logaddexp(0, -v)  # noqa: E731
    expected = -(pw * y * logsig(x) + (1 - y) * logsig(-x))
    np.testing.assert_allclose(loss, expected, rtol=1e-13)


def test_bce_weight_broadcasts_but_does_not_enlarge():
    p = np.full((3, 4), 0.3)
    y = np.zeros((3, 4))
    base = impl.binary_cross_entropy(p, y, reduction="none")
    w = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(impl.binary_cross_entropy(p, y, weight=w, reduction="none"),
                               base * w, rtol=1e-15)
    wc = np.array([[1.0], [2.0], [3.0]])
    np.testing.assert_allclose(impl.binary_cross_entropy(p, y, weight=wc, reduction="none"),
                               base * wc, rtol=1e-15)
    with pytest.raises(ValueError, match="weight"):
        impl.binary_cross_entropy(p, y, weight=np.ones((2, 3, 4)))
