"""Gradients (issue 3): every ``*_and_grad`` against the reference (hypothesis, every option,
reduction, target kind, axis, layout, ``out=``, in place, ``grad_loss``) and against finite
differences of the code under test's own loss (float64)."""

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from _helpers import (FUNCS, GRAD_NAMES, LAYOUTS, assert_close, assert_unchanged, check_loss_type,
                      check_loss_vs_ref, compute_dtype, impl, input_scale, make_case,
                      make_prob_targets, mean_denominator, reduced_shape, ref, relayout, snapshot,
                      tight_tolerances, to_truth, tolerances)
from _strategies import (LOGIT_KINDS, PROB_KINDS, REDUCTIONS, class_shapes, class_weights,
                         eps_values, float_dtypes, gen_p, gen_x, grad_losses, ignore_indices,
                         index_targets, seeds, smoothing)

OUT_KINDS = ["none", "none", "new", "F", "strided", "inplace"]


def _make_out(kind, x, cd, rng):
    """An ``out=`` argument of the given kind (and the parent array of a strided view)."""
    if kind == "none":
        return None, None
    if kind == "inplace":
        return x, None
    if kind == "new":
        return np.full(x.shape, np.nan, dtype=cd), None
    if kind == "F":
        return np.full(x.shape, np.nan, dtype=cd, order="F"), None
    parent = np.full(tuple(2 * max(1, n) for n in x.shape), -12345.0, dtype=cd)
    view = parent[tuple(slice(None, 2 * n, 2) for n in x.shape)]
    return view, parent


def _near_kink_ce(x_truth, axis, eps, rel):
    if not eps:
        return False
    with np.errstate(all="ignore"):
        lsm = ref.log_softmax(x_truth, axis=axis)
    lo, hi = math.log(eps), math.log1p(-eps)
    d = np.minimum(np.abs(lsm - lo), np.abs(lsm - hi))
    return bool(np.any(d <= rel * (1 + np.abs(lo))))


def _near_kink_probs(p_truth, eps, rel):
    if not eps:
        return False
    p = np.asarray(p_truth, dtype=np.float64)
    return bool(np.any(np.abs(p - eps) <= rel * eps) or np.any(np.abs(p - (1 - eps)) <= rel))


def _run_grad_case(name, data, x, t, tkind, kw, dtype, wmax, ysum, scale, rng):
    """Call ``name`` with layouts/out/grad_loss drawn by hypothesis and compare with the reference."""
    fwd_name = name[: -len("_and_grad")]
    cd = compute_dtype(dtype)
    axis = kw.get("axis", -1)
    red = kw.get("reduction", "mean")
    loss_shape = reduced_shape(x.shape, axis)
    gl = data.draw(grad_losses(rng, red, loss_shape), label="grad_loss")
    if gl is not None:
        kw["grad_loss"] = gl
    layout = data.draw(st.sampled_from(LAYOUTS), label="logits layout")
    xl = relayout(x, layout)
    tl = relayout(t, data.draw(st.sampled_from(LAYOUTS), label="targets layout"))
    can_inplace = np.dtype(dtype) == cd and layout != "readonly"
    out_kind = data.draw(st.sampled_from(OUT_KINDS if can_inplace else OUT_KINDS[:-1]),
                         label="out")
    out, parent = _make_out(out_kind, xl, cd, rng)
    if out is not None:
        kw["out"] = out
    x_orig = np.array(xl, copy=True)
    snaps = snapshot(tl, kw.get("weight"), gl)

    loss, grad = getattr(impl, name)(xl, tl, **kw)

    assert_unchanged([tl, kw.get("weight"), gl], snaps)
    if out_kind != "inplace":
        assert_unchanged([xl], [x_orig])
    if out is not None:
        assert grad is out, "the gradient must be returned in out="
    if parent is not None:
        rest = parent.copy()
        rest[tuple(slice(None, 2 * n, 2) for n in x.shape)] = -12345.0
        assert np.all(rest == -12345.0), "out= view: elements outside the view were written"
    assert isinstance(grad, np.ndarray) and grad.shape == x.shape and grad.dtype == cd
    check_loss_type(loss, red, dtype, loss_shape)

    truth_x = to_truth(x_orig, dtype)
    truth_t = t if tkind == "index" else to_truth(t, dtype)
    rtol, atol = tolerances(cd, scale * wmax * ysum)
    rows, total, mean = check_loss_vs_ref(name, loss, (truth_x, truth_t), kw, dtype, rtol, atol)

    ref_kw = {k: v for k, v in kw.items() if k not in ("out", "num_threads")}
    _, expected = getattr(ref, name)(truth_x, truth_t, **ref_kw)
    gmax = float(np.max(np.abs(gl))) if gl is not None and np.size(gl) else 1.0
    denom = mean_denominator(total, mean) if red == "mean" else 1.0
    g_atol = atol * max(gmax, 1e-300) / denom
    assert_close(grad, expected, rtol, g_atol, "gradient")

    # the loss of the fused pass is the loss of the forward function
    fkw = {k: v for k, v in kw.items() if k not in ("grad_loss", "out")}
    floss = getattr(impl, fwd_name)(x_orig, t, **fkw)
    trt, tat = tight_tolerances(cd, scale * wmax * ysum)
    if red == "none":
        assert_close(loss, floss, trt, tat, "loss of %s vs %s" % (name, fwd_name))
    else:
        assert_close(loss, floss, trt, tat * max(1, len(np.ravel(rows))),
                     "loss of %s vs %s" % (name, fwd_name))


def _class_targets(data, rng, shape, axis, dtype, ii):
    kind = data.draw(st.sampled_from(["index", "index", "prob"]), label="target kind")
    if kind == "index":
        return data.draw(index_targets(rng, shape, axis, -100 if ii is None else ii)), kind, 1.0
    tkind = data.draw(st.sampled_from(["onehot", "dirichlet", "uniform"]))
    t = make_prob_targets(rng, shape, axis, np.float64 if np.dtype(dtype).kind != "f" else dtype,
                          tkind)
    return t, kind, max(1.0, float(np.abs(t).sum(axis=axis).max(initial=1.0)))


def _class_options(data, rng, C, ii, eps_default):
    kw = {}
    w = data.draw(class_weights(rng, C, allow_zero=False), label="weight")
    if w is not None:
        kw["weight"] = w
    if ii is not None:
        kw["ignore_index"] = ii
    s = data.draw(smoothing(), label="label_smoothing")
    if s:
        kw["label_smoothing"] = s
    eps = data.draw(eps_values(eps_default), label="eps")
    if eps is not None:
        kw["eps"] = eps
    kw["reduction"] = data.draw(st.sampled_from(REDUCTIONS), label="reduction")
    return kw, (max(1.0, float(np.max(w))) if w is not None else 1.0)


@given(data=st.data())
def test_cross_entropy_and_grad_matches_reference(data):
    shape, axis = data.draw(class_shapes(), label="shape, axis")
    dtype = data.draw(float_dtypes(), label="dtype")
    rng = np.random.default_rng(data.draw(seeds, label="seed"))
    x = gen_x(rng, shape, data.draw(st.sampled_from(LOGIT_KINDS), label="kind"), dtype, axis)
    C = shape[axis]
    ii = data.draw(ignore_indices(C), label="ignore_index")
    t, tkind, ysum = _class_targets(data, rng, shape, axis, dtype, ii)
    kw, wmax = _class_options(data, rng, C, ii, None)
    kw["axis"] = axis
    cd = compute_dtype(dtype)
    assume(not _near_kink_ce(to_truth(x, dtype), axis, kw.get("eps", 0.0),
                             1e-5 if cd == np.float32 else 1e-12))
    scale = input_scale(to_truth(x, dtype)) + np.log(C)
    _run_grad_case("cross_entropy_and_grad", data, x, t, tkind, kw, dtype, wmax, ysum, scale, rng)


@given(data=st.data())
def test_categorical_cross_entropy_and_grad_matches_reference(data):
    shape, axis = data.draw(class_shapes(), label="shape, axis")
    dtype = data.draw(float_dtypes(), label="dtype")
    rng = np.random.default_rng(data.draw(seeds, label="seed"))
    pkind = data.draw(st.sampled_from(PROB_KINDS + ["outside"]), label="kind")
    if pkind == "outside" and np.dtype(dtype).kind == "f":  # clipped: zero derivative there
        x = rng.uniform(-0.2, 1.2, size=shape).astype(dtype)
    else:
        x = gen_p(rng, shape, "uniform" if pkind == "outside" else pkind, dtype, axis)
    C = shape[axis]
    ii = data.draw(ignore_indices(C), label="ignore_index")
    t, tkind, ysum = _class_targets(data, rng, shape, axis, dtype, ii)
    kw, wmax = _class_options(data, rng, C, ii, None)
    kw["axis"] = axis
    cd = compute_dtype(dtype)
    eps = kw.get("eps", 1e-7)
    assume(not _near_kink_probs(to_truth(x, dtype), eps, 1e-5 if cd == np.float32 else 1e-12))
    if eps == 0:  # p = 0 exactly: the derivative is infinite; keep clear of it
        assume(np.all(np.asarray(x) > 0))
    # d/dp log(clip(p)) = 1/p <= 1/eps
    scale = 1.0 / max(eps, float(np.min(to_truth(x, dtype), initial=1.0)), 1e-300)
    scale = min(scale, 1e12)
    _run_grad_case("categorical_cross_entropy_and_grad", data, x, t, tkind, kw, dtype, wmax, ysum,
                   scale, rng)


# ----------------------------------------------------------------------------------------------
# finite differences of the code under test's own loss (float64)
# ----------------------------------------------------------------------------------------------


def _fd(f, x, rel=1e-6):
    x = np.array(x, dtype=np.float64, copy=True)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        h = rel * max(1.0, abs(old))
        x[idx] = old + h
        fp = f(x)
        x[idx] = old - h
        fm = f(x)
        x[idx] = old
        g[idx] = (fp - fm) / (2 * h)
    return g


def _logits_away_from_kinks(rng, shape, axis, eps):
    """Random logits whose log-softmax values are all clear of the clip bounds (FD needs that)."""
    for _ in range(10000):
        x = rng.standard_normal(shape) * 2.5
        if not eps:
            return x
        lo, hi = math.log(eps), math.log1p(-eps)
        lsm = ref.log_softmax(x, axis=axis)
        if not np.any((np.abs(lsm - lo) < 0.05) | (np.abs(lsm - hi) < min(0.05, eps / 3))):
            return x
    raise AssertionError("could not build a case away from the clip kinks")


def _push_away_from_kinks_p(p, eps, margin=0.01):
    if not eps:
        return np.clip(p, 0.02, 0.98)
    near = (np.abs(p - eps) < margin) | (np.abs(p - (1 - eps)) < margin)
    return np.where(near, np.where(p < 0.5, p + 2.5 * margin, p - 2.5 * margin), p)


FD_CASES = [
    # name, target kind, shape, axis, options
    ("cross_entropy_and_grad", "index", (4, 5), -1, {}),
    ("cross_entropy_and_grad", "index", (4, 5), -1, {"weight": [0.5, 1.0, 2.0, 0.3, 1.7]}),
    ("cross_entropy_and_grad", "index", (4, 5), -1, {"label_smoothing": 0.3}),
    ("cross_entropy_and_grad", "index", (4, 5), -1, {"eps": 0.05}),
    ("cross_entropy_and_grad", "index", (4, 5), -1, {"eps": 0.3}),
    ("cross_entropy_and_grad", "index", (6, 3), -1, {"ignore_index": 1}),
    ("cross_entropy_and_grad", "index", (3, 4, 2), 1,
     {"weight": [0.5, 1.0, 2.0, 0.3], "label_smoothing": 0.2, "eps": 0.02, "ignore_index": 3}),
    ("cross_entropy_and_grad", "index", (4, 1), -1, {}),
    ("cross_entropy_and_grad", "prob", (4, 5), -1, {}),
    ("cross_entropy_and_grad", "prob", (4, 5), 0, {"weight": [0.5, 1.0, 2.0, 0.3]}),
    ("cross_entropy_and_grad", "prob", (2, 3, 4), 1,
     {"weight": [0.5, 1.0, 2.0], "label_smoothing": 0.4, "eps": 0.05}),
    ("categorical_cross_entropy_and_grad", "index", (4, 5), -1, {}),
    ("categorical_cross_entropy_and_grad", "index", (4, 5), -1, {"eps": 0.1}),
    ("categorical_cross_entropy_and_grad", "index", (5, 4), 0,
     {"weight": [0.5, 1.0, 2.0, 0.3, 1.1], "label_smoothing": 0.3, "ignore_index": 2, "eps": 0.05}),
    ("categorical_cross_entropy_and_grad", "prob", (4, 5), -1, {"eps": 0.1}),
    ("categorical_cross_entropy_and_grad", "prob", (2, 3, 4), 1,
     {"weight": [0.5, 1.0, 2.0], "label_smoothing": 0.25}),
    ("binary_cross_entropy_and_grad", None, (4, 5), None, {}),
    ("binary_cross_entropy_and_grad", None, (4, 5), None, {"eps": 0.1}),
    ("binary_cross_entropy_and_grad", None, (2, 3, 4), None,
     {"weight": np.array([0.5, 1.0, 2.0, 0.3]), "eps": 0.05}),
    ("binary_cross_entropy_with_logits_and_grad", None, (4, 5), None, {}),
    ("binary_cross_entropy_with_logits_and_grad", None, (4, 5), None,
     {"weight": np.array([[0.5], [1.0], [2.0], [0.3]])}),
    ("binary_cross_entropy_with_logits_and_grad", None, (2, 3, 4), None,
     {"pos_weight": np.array([0.5, 1.0, 3.0, 0.2]), "weight": np.array([1.5, 0.5, 1.0, 2.0])}),
]


def _fd_case(name, tkind, shape, axis, opts, rng):
    fn = FUNCS[name]
    kw = dict(opts)
    if fn.family == "ce":
        x = _logits_away_from_kinks(rng, shape, axis, kw.get("eps", 0.0))
    elif fn.family in ("cat", "bce"):
        x = _push_away_from_kinks_p(rng.uniform(0.0, 1.0, shape), kw.get("eps", 1e-7))
    else:
        x = rng.standard_normal(shape) * 3.0
    if fn.family in ("ce", "cat"):
        kw["axis"] = axis
        if tkind == "index":
            t = rng.integers(0, shape[axis], size=reduced_shape(shape, axis))
            if "ignore_index" in kw:
                t.flat[0] = kw["ignore_index"]
        else:
            t = make_prob_targets(rng, shape, axis, np.float64, "dirichlet")
    else:
        t = rng.uniform(0.0, 1.0, shape)
        t.flat[::3] = np.round(t.flat[::3])
    return x, t, kw


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", FD_CASES, ids=lambda c: "%s-%s-%s-%s" % (
    c[0].replace("_and_grad", ""), c[1], "x".join(map(str, c[2])), "+".join(sorted(c[4])) or "plain"))
def test_grad_matches_finite_differences(case, reduction, rng):
    name, tkind, shape, axis, opts = case
    fwd = name[: -len("_and_grad")]
    x, t, kw = _fd_case(name, tkind, shape, axis, opts, rng)
    kw["reduction"] = reduction
    loss, _ = getattr(impl, name)(x, t, **kw)
    gl = rng.uniform(0.5, 2.0, size=np.shape(loss)) if reduction == "none" else 1.7
    _, grad = getattr(impl, name)(x, t, grad_loss=gl, **kw)

    def f(z):
        return float(np.sum(gl * np.asarray(getattr(impl, fwd)(z, t, **kw), dtype=np.float64)))

    num = _fd(f, x)
    scale = max(1.0, float(np.max(np.abs(num))))
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-6 * scale)
    # the reference agrees too (it is what the hypothesis tests hold the code to)
    _, rgrad = getattr(ref, name)(x, t, grad_loss=gl, **kw)
    np.testing.assert_allclose(rgrad, num, rtol=1e-5, atol=1e-6 * scale)


# ----------------------------------------------------------------------------------------------
# explicit cases
# ----------------------------------------------------------------------------------------------


def test_cross_entropy_grad_is_softmax_minus_onehot():
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]])
    t = np.array([2, 0])
    _, g = impl.cross_entropy_and_grad(x, t, reduction="sum")
    e = np.exp(x - x.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    p[[0, 1], t] -= 1
    np.testing.assert_allclose(g, p, rtol=1e-13, atol=1e-16)
    _, gm = impl.cross_entropy_and_grad(x, t)  # mean over 2 rows
    np.testing.assert_allclose(gm, p / 2, rtol=1e-13, atol=1e-16)


def test_clipped_entries_have_zero_gradient():
    # p_0 ~ 0.99991 > 1 - eps: clipped above; p_1 ~ 4.5e-5 < eps: clipped below
    x = np.array([[10.0, 0.0, 0.0]])
    loss, g = impl.cross_entropy_and_grad(x, [0], eps=0.1)
    assert loss == pytest.approx(-math.log(0.9), rel=1e-14)
    np.testing.assert_array_equal(g, np.zeros((1, 3)))
    loss, g = impl.cross_entropy_and_grad(x, [1], eps=0.1)
    assert loss == pytest.approx(-math.log(0.1), rel=1e-14)
    np.testing.assert_array_equal(g, np.zeros((1, 3)))


def test_categorical_grad_worked_example():
    p = [[0.7, 0.1, 0.2]]
    loss, g = impl.categorical_cross_entropy_and_grad(p, [0])
    assert loss == pytest.approx(0.35667494393873245, rel=1e-15)
    np.testing.assert_allclose(g, [[-1 / 0.7, 0.0, 0.0]], rtol=1e-15)
    assert g[0, 1] == 0 and g[0, 2] == 0


@pytest.mark.parametrize("p, expected", [(0.25, -4.0), (0.75, -1 / 0.75), (0.2, 0.0), (0.8, 0.0)])
def test_categorical_clip_boundaries_are_inside(p, expected):
    # eps = 0.25: the derivative of clip is 1 on [eps, 1 - eps], boundaries included, 0 outside
    _, g = impl.categorical_cross_entropy_and_grad([[p, 1 - p]], [0], eps=0.25, reduction="sum")
    assert g[0, 0] == pytest.approx(expected, rel=1e-15, abs=0)
    assert g[0, 1] == 0


@pytest.mark.parametrize("name", ["cross_entropy_and_grad", "categorical_cross_entropy_and_grad"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ignored_rows_have_exactly_zero_gradient(name, reduction, rng):
    (x, t), kw = make_case(name, rng, (6, 4))
    t[[1, 4]] = -100
    _, g = getattr(impl, name)(x, t, reduction=reduction, label_smoothing=0.2)
    assert np.all(g[[1, 4]] == 0)
    assert np.all(np.any(g[[0, 2, 3, 5]] != 0, axis=1))


@pytest.mark.parametrize("name", ["cross_entropy_and_grad", "categorical_cross_entropy_and_grad"])
def test_all_rows_ignored_mean_is_nan_and_grad_zero(name, rng):
    (x, t), kw = make_case(name, rng, (5, 3))
    t[:] = -100
    loss, g = getattr(impl, name)(x, t)
    assert np.isnan(loss)
    np.testing.assert_array_equal(g, np.zeros_like(x))


@pytest.mark.parametrize("opts", [{}, dict(label_smoothing=0.1), dict(z_loss=0.1),
                                  dict(softcap=3.0), dict(sample_weight="zeros", weight=None),
                                  dict(axis=0)], ids=repr)
@pytest.mark.parametrize("N, C", [(4, 3), (9, 8), (70, 3), (70, 50), (5, 3000)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mean_over_no_weight_is_nan_in_every_kept_row(dtype, N, C, opts, rng):
    """'mean' with every kept row of weight 0 is 0 / 0: NaN, and so is the gradient of each row
    that is not ignored (as the reference, and PyTorch); ignored rows keep gradient 0."""
    x = rng.standard_normal((N, C)).astype(dtype)
    t = np.zeros(N, np.int64)
    t[1] = -100
    w = np.zeros(C)
    w[-1] = 1.0  # a weight on a class no row targets
    kw = dict(dict(weight=w), **opts)
    if kw.get("sample_weight") == "zeros":
        kw["sample_weight"] = np.zeros(N)
    if kw.get("axis") == 0:
        x = np.ascontiguousarray(x.T)
    loss, g = impl.cross_entropy_and_grad(x, t, **kw)
    want_loss, want_g = ref.cross_entropy_and_grad(x, t, **kw)
    assert np.isnan(loss) and np.isnan(want_loss)
    rows = g.T if kw.get("axis") == 0 else g
    kept = np.arange(N) != 1
    assert np.isnan(rows[kept]).all() and (rows[~kept] == 0).all()
    np.testing.assert_array_equal(np.isnan(g), np.isnan(want_g))


@pytest.mark.parametrize("name", GRAD_NAMES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_grad_loss_scales_the_gradient(name, dtype, rng):
    (x, t), kw = make_case(name, rng, (5, 4), dtype=dtype)
    for red in ("mean", "sum"):
        _, g1 = getattr(impl, name)(x, t, reduction=red, **kw)
        _, g3 = getattr(impl, name)(x, t, reduction=red, grad_loss=-3.0, **kw)
        _, g3b = getattr(impl, name)(x, t, reduction=red, grad_loss=np.float32(-3.0), **kw)
        _, g0 = getattr(impl, name)(x, t, reduction=red, grad_loss=0.0, **kw)
        rtol = 1e-6 if dtype == np.float32 else 1e-14
        np.testing.assert_allclose(g3, -3.0 * g1.astype(np.float64), rtol=rtol, atol=1e-30)
        np.testing.assert_allclose(g3b, g3, rtol=rtol, atol=1e-30)
        np.testing.assert_array_equal(g0, np.zeros_like(g0))


@pytest.mark.parametrize("name", GRAD_NAMES)
def test_grad_loss_per_row_for_reduction_none(name, rng):
    (x, t), kw = make_case(name, rng, (5, 4))
    loss, g1 = getattr(impl, name)(x, t, reduction="none", **kw)
    gl = rng.uniform(-2.0, 2.0, size=loss.shape)
    _, g = getattr(impl, name)(x, t, reduction="none", grad_loss=gl, **kw)
    fn = FUNCS[name]
    if fn.family in ("ce", "cat"):
        expected = g1 * gl[:, None]  # one upstream value per row
    else:
        expected = g1 * gl  # element-wise losses
    np.testing.assert_allclose(g, expected, rtol=1e-14, atol=1e-300)
    # a broadcastable grad_loss
    _, gb = getattr(impl, name)(x, t, reduction="none", grad_loss=2.0, **kw)
    np.testing.assert_allclose(gb, 2 * g1, rtol=1e-14, atol=1e-300)
    # and the sum of the per-row chain equals the reduction "sum" with the same weights
    _, gs = getattr(impl, name)(x, t, reduction="sum", **kw)
    _, gn = getattr(impl, name)(x, t, reduction="none", grad_loss=np.ones(loss.shape), **kw)
    np.testing.assert_allclose(gn, gs, rtol=1e-14, atol=1e-300)


@pytest.mark.parametrize("name", GRAD_NAMES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_out_and_in_place(name, dtype, reduction, rng):
    fn = FUNCS[name]
    shape, axis = ((3, 6, 4), 1) if fn.family in ("ce", "cat") else ((3, 6, 4), None)
    (x, t), kw = make_case(name, rng, shape, axis=axis if axis is not None else -1, dtype=dtype)
    if axis is None:
        kw.pop("axis", None)
    kw["reduction"] = reduction
    loss0, g0 = getattr(impl, name)(x.copy(), t, **kw)

    for order in ("C", "F"):
        out = np.full(x.shape, np.nan, dtype=dtype, order=order)
        loss, g = getattr(impl, name)(x, t, out=out, **kw)
        assert g is out
        np.testing.assert_array_equal(g, g0)
        np.testing.assert_array_equal(loss, loss0)

    # out= a strided view: only the view is written
    parent = np.full((6, 12, 8), 7.0, dtype=dtype)
    view = parent[::2, ::2, ::2]
    loss, g = getattr(impl, name)(x, t, out=view, **kw)
    assert g is view
    np.testing.assert_array_equal(view, g0)
    rest = parent.copy()
    rest[::2, ::2, ::2] = 7.0
    assert np.all(rest == 7.0)

    # in place: out=logits overwrites the logits with the gradient
    xi = x.copy()
    loss, g = getattr(impl, name)(xi, t, out=xi, **kw)
    assert g is xi
    rtol, atol = tight_tolerances(dtype, 10.0)
    assert_close(g, g0, rtol, atol * max(1.0, float(np.max(np.abs(g0)))), "in place")
    assert_close(loss, loss0, rtol, atol * 100, "in place loss")

    # in place on a non-contiguous view of the logits (class axis strided)
    parent = np.zeros((3, 12, 4), dtype=dtype)
    xv = parent[:, ::2, :] if fn.family in ("ce", "cat") else parent[:, ::2, :]
    xv[...] = x
    loss, g = getattr(impl, name)(xv, t, out=xv, **kw)
    assert g is xv
    assert_close(g, g0, rtol, atol * max(1.0, float(np.max(np.abs(g0)))), "in place, strided")
    assert np.all(parent[:, 1::2, :] == 0)


@pytest.mark.parametrize("name", GRAD_NAMES)
def test_grad_dtype_and_shape(name, rng):
    for dtype in (np.float32, np.float64, np.int64, np.float16):
        (x, t), kw = make_case(name, rng, (4, 3), dtype=np.float64)
        if np.dtype(dtype).kind in "iu":
            x = (x * 3).astype(dtype) if FUNCS[name].family in ("ce", "bcel") else \
                (x > 0.5).astype(dtype)
        else:
            x = x.astype(dtype)
        loss, g = getattr(impl, name)(x, t, **kw)
        cd = compute_dtype(dtype)
        if dtype is np.float16 and FUNCS[name].family not in ("bce", "bcel"):
            # a storage type of the class families: computed in float32, gradient in float16
            assert g.dtype == np.float16 and g.shape == x.shape
            assert type(loss) is np.float32
            continue
        assert g.dtype == cd and g.shape == x.shape
        assert type(loss) is cd.type
