"""Property tests (hypothesis) of the class losses against xent_fast.reference.

cross_entropy, nll_loss and categorical_cross_entropy over shapes (N = 0, C = 1, ndim 1..4, any
axis), dtypes (float32 against the float64 truth of the same float32 inputs; other dtypes converted
to float64), index and probability targets, weight, ignore_index, label_smoothing, eps and every
reduction. Inputs must be left unmodified.
"""

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

from _helpers import (LAYOUTS, assert_unchanged, check_loss_type, check_loss_vs_ref, compute_dtype,
                      impl, input_scale, make_prob_targets, reduced_shape, relayout, snapshot,
                      to_truth, tolerances)
from _strategies import (LOGIT_KINDS, PROB_KINDS, REDUCTIONS, class_shapes, class_weights,
                         eps_values, float_dtypes, gen_p, gen_x, ignore_indices, index_targets,
                         seeds, smoothing)


def _targets(data, rng, shape, axis, dtype, ignore_index, allow_prob=True):
    kinds = ["index", "index", "prob"] if allow_prob else ["index"]
    kind = data.draw(st.sampled_from(kinds), label="target kind")
    if kind == "index":
        t = data.draw(index_targets(rng, shape, axis, -100 if ignore_index is None else ignore_index),
                      label="index targets")
        return t, kind, 1.0
    tdtype = data.draw(st.sampled_from([np.dtype(dtype), np.dtype(np.float64), np.dtype(np.float32)]),
                       label="target dtype")
    tkind = data.draw(st.sampled_from(["onehot", "dirichlet", "uniform"]), label="prob kind")
    t = make_prob_targets(rng, shape, axis, tdtype, tkind)
    ysum = float(np.abs(t).sum(axis=axis).max(initial=1.0))
    return t, kind, max(1.0, ysum)


def _options(data, rng, C, ignore_index, with_smoothing=True, with_eps=True, eps_default=None):
    kw = {}
    w = data.draw(class_weights(rng, C), label="weight")
    if w is not None:
        kw["weight"] = w
    if ignore_index is not None:
        kw["ignore_index"] = ignore_index
    if with_smoothing:
        s = data.draw(smoothing(), label="label_smoothing")
        if s or data.draw(st.booleans()):
            kw["label_smoothing"] = s
    if with_eps:
        eps = data.draw(eps_values(eps_default), label="eps")
        if eps is not None:
            kw["eps"] = eps
    red = data.draw(st.sampled_from(REDUCTIONS + [None]), label="reduction")
    if red is not None:
        kw["reduction"] = red
    wmax = max(1.0, float(np.max(w))) if w is not None else 1.0
    return kw, wmax


def _check(name, data, x, t, kw, dtype, target_kind, wmax, ysum, scale):
    xl = relayout(x, data.draw(st.sampled_from(LAYOUTS), label="logits layout"))
    tl = relayout(t, data.draw(st.sampled_from(LAYOUTS), label="targets layout"))
    snaps = snapshot(xl, tl, kw.get("weight"))
    loss = getattr(impl, name)(xl, tl, **kw)
    assert_unchanged([xl, tl, kw.get("weight")], snaps)
    red = kw.get("reduction", "mean")
    axis = kw.get("axis", -1)
    check_loss_type(loss, red, dtype, reduced_shape(x.shape, axis))
    cd = compute_dtype(dtype)
    rtol, atol = tolerances(cd, scale * wmax * ysum)
    tt = t if target_kind == "index" else to_truth(t, dtype)
    check_loss_vs_ref(name, loss, (to_truth(x, dtype), tt), kw, dtype, rtol, atol)


@given(data=st.data())
def test_cross_entropy_matches_reference(data):
    shape, axis = data.draw(class_shapes(), label="shape, axis")
    dtype = data.draw(float_dtypes(), label="dtype")
    rng = np.random.default_rng(data.draw(seeds, label="seed"))
    kind = data.draw(st.sampled_from(LOGIT_KINDS), label="logits kind")
    x = gen_x(rng, shape, kind, dtype, axis)
    C = shape[axis]
    ii = data.draw(ignore_indices(C), label="ignore_index")
    t, tkind, ysum = _targets(data, rng, shape, axis, dtype, ii)
    kw, wmax = _options(data, rng, C, ii)
    if axis != -1 or data.draw(st.booleans()):
        kw["axis"] = axis
    scale = input_scale(to_truth(x, dtype)) + np.log(C)
    _check("cross_entropy", data, x, t, kw, dtype, tkind, wmax, ysum, scale)


@given(data=st.data())
def test_nll_loss_matches_reference(data):
    shape, axis = data.draw(class_shapes(), label="shape, axis")
    dtype = data.draw(float_dtypes(), label="dtype")
    rng = np.random.default_rng(data.draw(seeds, label="seed"))
    x = gen_x(rng, shape, data.draw(st.sampled_from(["normal", "masked", "wide", "huge"])), dtype,
              axis)
    C = shape[axis]
    ii = data.draw(ignore_indices(C), label="ignore_index")
    t, tkind, ysum = _targets(data, rng, shape, axis, dtype, ii, allow_prob=False)
    kw, wmax = _options(data, rng, C, ii, with_smoothing=False, with_eps=False)
    kw["axis"] = axis
    scale = input_scale(to_truth(x, dtype))
    _check("nll_loss", data, x, t, kw, dtype, tkind, wmax, ysum, scale)


@given(data=st.data())
def test_categorical_cross_entropy_matches_reference(data):
    shape, axis = data.draw(class_shapes(), label="shape, axis")
    dtype = data.draw(float_dtypes(), label="dtype")
    rng = np.random.default_rng(data.draw(seeds, label="seed"))
    pkind = data.draw(st.sampled_from(PROB_KINDS + ["outside"]), label="probs kind")
    if pkind == "outside":  # values a little outside [0, 1]: clipped
        x = rng.uniform(-0.2, 1.2, size=shape).astype(dtype) if np.dtype(dtype).kind == "f" else \
            gen_p(rng, shape, "uniform", dtype)
    else:
        x = gen_p(rng, shape, pkind, dtype, axis)
    C = shape[axis]
    ii = data.draw(ignore_indices(C), label="ignore_index")
    t, tkind, ysum = _targets(data, rng, shape, axis, dtype, ii)
    kw, wmax = _options(data, rng, C, ii, eps_default=None)
    kw["axis"] = axis
    eps = kw.get("eps", 1e-7)
    if compute_dtype(dtype) == np.float32 and eps > 0:
        # float32 inputs within rounding of the clip bounds are ambiguous; stay clear of them
        xv = np.asarray(x, dtype=np.float64)
        assume(not np.any(np.isclose(xv, eps, rtol=1e-6, atol=0)))
        assume(not np.any(np.isclose(xv, 1 - eps, rtol=1e-6, atol=0)))
    # |log(clip(p))| <= -log(eps) (or large when eps = 0)
    scale = 1.0 - np.log(max(eps, 1e-300 if compute_dtype(dtype) == np.float64 else 1e-45))
    scale = min(scale, 800.0)
    _check("categorical_cross_entropy", data, x, t, kw, dtype, tkind, wmax, ysum, scale)


@given(data=st.data())
def test_index_and_onehot_targets_agree(data):
    """Class index t and the one-hot row of t are the same target (no smoothing, no ignore)."""
    shape, axis = data.draw(class_shapes(min_ndim=1), label="shape, axis")
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(data.draw(seeds))
    name = data.draw(st.sampled_from(["cross_entropy", "categorical_cross_entropy"]))
    if name == "cross_entropy":
        x = gen_x(rng, shape, "normal", dtype, axis)
    else:
        x = gen_p(rng, shape, "uniform", dtype, axis)
    C = shape[axis]
    t = rng.integers(0, C, size=reduced_shape(shape, axis))
    onehot = np.moveaxis(np.eye(C, dtype=dtype)[t], -1, axis % len(shape))
    kw = dict(axis=axis, reduction="none")
    w = data.draw(class_weights(rng, C, allow_zero=False))
    if w is not None:
        kw["weight"] = w
    a = getattr(impl, name)(x, t, **kw)
    b = getattr(impl, name)(x, onehot, **kw)
    rtol, atol = tolerances(dtype, 10.0)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
