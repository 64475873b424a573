"""Half-precision storage and the large-model options (docs/DESIGN.md, sections 2 and 9).

float16 and bfloat16 logits are read in place and computed in float32: losses and log-sum-exps
come back in float32 within float32's tolerance of the float64 truth of the same half values,
gradients and softmax outputs in the input's dtype, rounded once (so within one unit in the last
place of the truth), or in a float32 ``out=``.  The options logit_scale, softcap, z_loss,
sample_weight and return_lse follow xent_fast.reference, and their gradients finite differences.

The whole module also runs on every other dispatch path this CPU has (test_every_path).
"""

import os
import tracemalloc

import ml_dtypes
import numpy as np
import pytest

from _helpers import assert_close, assert_same_bits, impl, ref, rerun_on_other_paths
from _helpers import assert_half_close as _half_close

pytestmark = pytest.mark.compiled_only

HALF = [np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16)]
HALF_IDS = ["float16", "bfloat16"]
# class counts on both sides of the loops' switches (few classes, batches, long rows)
CLASS_COUNTS = [1, 3, 10, 17, 37, 38, 81, 100, 1000, 1025, 20000]
OPTIONS = [
    dict(z_loss=1e-3),
    dict(softcap=3.0),
    dict(logit_scale=0.5),
    dict(logit_scale=-1.5, softcap=2.0, z_loss=0.05),
    dict(sample_weight="rows"),
    dict(return_lse=True),
    dict(label_smoothing=0.1, z_loss=0.01, sample_weight="rows", softcap=4.0, return_lse=True),
    dict(weight="classes", eps=1e-4, logit_scale=2.0, sample_weight="rows"),
]


def _rows(C, budget=40000):
    return max(3, min(300, budget // C))


def _case(rng, N, C, dtype=np.float32, scale=3.0, ignore=True):
    x = (rng.standard_normal((N, C)) * scale).astype(dtype)
    t = rng.integers(0, C, N)
    if ignore and N > 2:
        t[1] = -100
    return x, t


def _options(opts, rng, N, C):
    kw = dict(opts)
    if kw.get("sample_weight") == "rows":
        kw["sample_weight"] = rng.uniform(0.0, 2.0, N)
    if kw.get("weight") == "classes":
        kw["weight"] = rng.uniform(0.5, 2.0, C)
    return kw


def _f32_close(actual, expected, scale=1.0, err_msg=""):
    assert_close(actual, expected, 2e-6, 2e-7 * scale, err_msg)


# --------------------------------------------------------------------------------------------
# half-precision storage
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", HALF, ids=HALF_IDS)
@pytest.mark.parametrize("C", CLASS_COUNTS)
def test_half_cross_entropy_matches_reference(dtype, C, rng):
    N = _rows(C)
    x, t = _case(rng, N, C, dtype)
    x[0, C // 2] = -np.inf  # a masked class
    for red in ("none", "mean", "sum"):
        loss = impl.cross_entropy(x, t, reduction=red)
        assert np.asarray(loss).dtype == np.float32
        _f32_close(loss, ref.cross_entropy(x, t, reduction=red), scale=N, err_msg=red)
    loss, g = impl.cross_entropy_and_grad(x, t)
    rl, rg = ref.cross_entropy_and_grad(x, t)
    assert type(loss) is np.float32
    _f32_close(loss, rl)
    _half_close(g, rg, dtype)


@pytest.mark.parametrize("dtype", HALF, ids=HALF_IDS)
@pytest.mark.parametrize("layout", ["class_axis_0", "strided", "reversed", "3d_axis_1"])
def test_half_any_layout(dtype, layout, rng):
    x, t = _case(rng, 64, 12, dtype)
    kw = {}
    if layout == "class_axis_0":
        x, kw = np.asfortranarray(x.T), {"axis": 0}
    elif layout == "strided":
        x = np.repeat(x, 2, axis=1)[::1, ::2]
    elif layout == "reversed":
        x = x[::-1, ::-1]
        t = t[::-1]
    else:
        x = x.reshape(8, 8, 12).transpose(0, 2, 1)
        t = t.reshape(8, 8)
        kw = {"axis": 1}
    loss, g = impl.cross_entropy_and_grad(x, t, reduction="none", **kw)
    rl, rg = ref.cross_entropy_and_grad(x, t, reduction="none", **kw)
    _f32_close(loss, rl)
    _half_close(g, rg, dtype, layout)
    same, _ = impl.cross_entropy_and_grad(np.ascontiguousarray(x), t, reduction="none", **kw)
    assert_same_bits(loss, same, "a layout against its contiguous copy")


@pytest.mark.parametrize("dtype", HALF, ids=HALF_IDS)
@pytest.mark.parametrize("C", [5, 100, 3000])
def test_half_gradient_into_float32_and_in_place(dtype, C, rng):
    x, t = _case(rng, _rows(C, 20000), C, dtype)
    loss, g = impl.cross_entropy_and_grad(x, t)
    out = np.empty(x.shape, np.float32)
    loss32, g32 = impl.cross_entropy_and_grad(x, t, out=out)
    assert g32 is out and loss32 == loss
    want32 = ref.cross_entropy_and_grad(x, t, out=np.empty(x.shape, np.float32))[1]
    _f32_close(g32, want32, err_msg="float32 out=")
    assert_same_bits(g32.astype(dtype), g, "the half gradient is the float32 one rounded once")
    xin = x.copy()
    loss_in, g_in = impl.cross_entropy_and_grad(xin, t, out=xin)
    assert g_in is xin and loss_in == loss
    assert_same_bits(g_in, g, "out=logits")
    with pytest.raises(ValueError, match="out"):
        impl.cross_entropy_and_grad(x, t, out=np.empty(x.shape, np.float64))


def test_bfloat16_confident_row_keeps_its_gradient():
    # the loss log1p(rest) and on-target gradient -rest / (1 + rest), rest = (C - 1) e^-40, are
    # tiny but exact in float32, rounded once into bfloat16 (float32's range); 1 + rest would
    # round to 1 even in float64
    C = 50
    x = np.zeros((2, C), ml_dtypes.bfloat16)
    x[:, 0] = 40
    t = np.array([0, 0])
    loss, g = impl.cross_entropy_and_grad(x, t, reduction="sum")
    rest = (C - 1) * np.exp(-40.0)
    assert_close(loss, 2 * np.log1p(rest), 1e-6, 0.0, "loss")
    want = np.full((2, C), np.exp(-40.0) / (1 + rest))
    want[:, 0] = -rest / (1 + rest)
    _half_close(g, want, np.dtype(ml_dtypes.bfloat16))


@pytest.mark.parametrize("dtype", HALF, ids=HALF_IDS)
@pytest.mark.parametrize("C", [1, 7, 100, 5000])
def test_half_softmax_family(dtype, C, rng):
    x, _ = _case(rng, _rows(C, 20000), C, dtype)
    x[0, 0] = -np.inf
    for axis in (-1, 0):
        lse = impl.logsumexp(x, axis=axis)
        assert lse.dtype == np.float32
        _f32_close(lse, ref.logsumexp(x, axis=axis), scale=10)
        for name in ("log_softmax", "softmax"):
            got = getattr(impl, name)(x, axis=axis)
            _half_close(got, getattr(ref, name)(x, axis=axis), dtype, "%s axis %d" % (name, axis))
    out = x.copy()
    assert impl.softmax(out, out=out) is out
    assert_same_bits(out, impl.softmax(x), "softmax in place")


@pytest.mark.parametrize("dtype", HALF, ids=HALF_IDS)
def test_half_layer_and_other_inputs(dtype, rng):
    x, t = _case(rng, 40, 9, dtype)
    layer = impl.CrossEntropyLoss(z_loss=1e-3)
    loss = layer(x, t)
    g = layer.backward()
    rl, rg = ref.cross_entropy_and_grad(x, t, z_loss=1e-3)
    _f32_close(loss, rl)
    _half_close(g, rg, dtype)
    # log-probabilities and probabilities stored in half precision
    lp = ref.log_softmax(x)
    _f32_close(impl.nll_loss(lp, t), ref.nll_loss(lp, t))
    p = rng.dirichlet(np.ones(9), 40).astype(dtype)
    _f32_close(impl.categorical_cross_entropy(p, t, reduction="none"),
               ref.categorical_cross_entropy(p, t, reduction="none"))
    y = rng.dirichlet(np.ones(9), 40)
    cl, cg = impl.categorical_cross_entropy_and_grad(p, y)
    rl, rg = ref.categorical_cross_entropy_and_grad(p, y)
    _f32_close(cl, rl)
    _half_close(cg, rg, dtype)
    # soft targets for half logits are taken in float32, the compute type
    _f32_close(impl.cross_entropy(x, y), ref.cross_entropy(x, y))


def test_half_logits_are_read_in_place():
    # no widening copy: NumPy allocations during the call stay far below the logits' size
    x = np.zeros((512, 4096), np.float16)
    t = np.zeros(512, np.int64)
    impl.cross_entropy(x, t)
    tracemalloc.start()
    try:
        impl.cross_entropy(x, t)
        impl.logsumexp(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < x.nbytes // 8, peak


# --------------------------------------------------------------------------------------------
# the large-model options
# --------------------------------------------------------------------------------------------


def _unpack(res, want_grad, return_lse):
    res = res if isinstance(res, tuple) else (res,)
    loss = res[0]
    grad = res[1] if want_grad else None
    lse = res[-1] if return_lse else None
    return loss, grad, lse


@pytest.mark.parametrize("opts", OPTIONS, ids=repr)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C", [3, 37, 100, 2000])
def test_options_match_reference(opts, dtype, C, rng):
    N = _rows(C, 20000)
    x, t = _case(rng, N, C, dtype)
    kw = _options(opts, rng, N, C)
    scale = 1.0 + 3.0 * abs(kw.get("logit_scale", 1.0)) * 4 + np.log(C)
    rtol, atol = (2e-6, 4e-7 * scale) if dtype == np.float32 else (1e-11, 1e-13 * scale)
    lse_want = kw.get("return_lse", False)
    for red in ("none", "mean", "sum"):
        got = _unpack(impl.cross_entropy(x, t, reduction=red, **kw), False, lse_want)
        want = _unpack(ref.cross_entropy(x, t, reduction=red, **kw), False, lse_want)
        tol = atol * (N if red == "sum" else 1)
        assert_close(got[0], want[0], rtol, tol, "loss, reduction=%s" % red)
        if lse_want:
            assert got[2].dtype == dtype and got[2].shape == (N,)
            assert_close(got[2], want[2], rtol, atol, "lse")
    got = _unpack(impl.cross_entropy_and_grad(x, t, **kw), True, lse_want)
    want = _unpack(ref.cross_entropy_and_grad(x, t, **kw), True, lse_want)
    assert_close(got[0], want[0], rtol, atol, "loss with gradient")
    assert got[1].dtype == dtype
    assert_close(got[1], want[1], rtol, atol / N, "gradient")


@pytest.mark.parametrize("opts", OPTIONS[:5] + OPTIONS[6:], ids=repr)
@pytest.mark.parametrize("target_kind", ["index", "prob"])
def test_options_gradient_matches_finite_differences(opts, target_kind, rng):
    N, C = 4, 6
    x, t = _case(rng, N, C, np.float64, scale=1.5)
    if target_kind == "prob":
        t = rng.dirichlet(np.ones(C), N)
    kw = _options(opts, rng, N, C)
    kw.pop("return_lse", None)
    gl = rng.uniform(0.5, 1.5, N)
    _, g = impl.cross_entropy_and_grad(x, t, reduction="none", grad_loss=gl, **kw)
    h = 1e-6
    fd = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        fp = impl.cross_entropy(xp, t, reduction="none", **kw)
        fm = impl.cross_entropy(xm, t, reduction="none", **kw)
        fd[idx] = np.dot(gl, fp - fm) / (2 * h)
    assert_close(g, fd, 1e-6, 1e-8, "finite differences, %r" % (opts,))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C", [3, 20, 100, 1000, 40000])
def test_default_options_give_the_same_bits(dtype, C, rng):
    x, t = _case(rng, _rows(C), C, dtype)
    defaults = dict(z_loss=0.0, softcap=None, logit_scale=1.0, sample_weight=None,
                    return_lse=False)
    for red in ("none", "mean"):
        assert_same_bits(impl.cross_entropy(x, t, reduction=red, **defaults),
                         impl.cross_entropy(x, t, reduction=red), red)
        a = impl.cross_entropy_and_grad(x, t, reduction=red, **defaults)
        b = impl.cross_entropy_and_grad(x, t, reduction=red)
        assert_same_bits(a[0], b[0], red)
        assert_same_bits(a[1], b[1], red)
    # all-ones sample weights change nothing but the path taken
    ones = impl.cross_entropy(x, t, reduction="none", sample_weight=np.ones(len(t)))
    assert_close(ones, impl.cross_entropy(x, t, reduction="none"), 1e-6 if dtype == np.float32
                 else 1e-14, 0.0)


def test_sample_weight_mean_and_broadcasting(rng):
    x, t = _case(rng, 24, 7, np.float64)
    x3, t3 = x.reshape(4, 6, 7), t.reshape(4, 6)
    w = rng.uniform(0.5, 2.0, 7)
    sw = rng.uniform(0.0, 3.0, (4, 1))  # one weight per sequence, broadcast along it
    rows = impl.cross_entropy(x3, t3, weight=w, sample_weight=sw, reduction="none")
    plain = impl.cross_entropy(x3, t3, weight=w, reduction="none")
    assert_close(rows, plain * sw, 1e-14, 0.0, "each row's loss times its weight")
    kept = t3 != -100
    denom = (np.broadcast_to(sw, t3.shape) * w[np.where(kept, t3, 0)])[kept].sum()
    mean = impl.cross_entropy(x3, t3, weight=w, sample_weight=sw)
    assert_close(mean, rows.sum() / denom, 1e-13, 0.0, "mean over sum_i sw_i w[t_i]")
    assert_close(mean, ref.cross_entropy(x3, t3, weight=w, sample_weight=sw), 1e-12, 0.0)
    assert_close(impl.cross_entropy(x3, t3, sample_weight=2.5),
                 impl.cross_entropy(x3, t3), 1e-14, 0.0, "a scalar weight cancels in the mean")
    # probability targets: the mean divides by sum_i sw_i
    y = rng.dirichlet(np.ones(7), 24)
    swr = rng.uniform(0.5, 2.0, 24)
    rows = impl.cross_entropy(x, y, sample_weight=swr, reduction="none")
    assert_close(impl.cross_entropy(x, y, sample_weight=swr), rows.sum() / swr.sum(), 1e-13, 0.0)
    # the gradient of the mean, against the reference
    for targets in (t, y):
        _, g = impl.cross_entropy_and_grad(x, targets, sample_weight=swr)
        assert_close(g, ref.cross_entropy_and_grad(x, targets, sample_weight=swr)[1], 1e-11,
                     1e-14)


def test_return_lse(rng):
    x, t = _case(rng, 30, 11, np.float32)
    loss, lse = impl.cross_entropy(x, t, return_lse=True)
    assert type(loss) is np.float32 and lse.dtype == np.float32 and lse.shape == (30,)
    assert_close(lse, ref.logsumexp(x, axis=-1), 2e-6, 1e-6)
    loss2, g, lse2 = impl.cross_entropy_and_grad(x, t, return_lse=True, softcap=5.0)
    z = 5.0 * np.tanh(x.astype(np.float64) / 5.0)
    assert_close(lse2, ref.logsumexp(z, axis=-1), 2e-6, 1e-6)
    x4 = x.reshape(5, 6, 11).transpose(0, 2, 1)
    _, lse4 = impl.cross_entropy(x4, t.reshape(5, 6) % 11, axis=1, return_lse=True)
    assert lse4.shape == (5, 6)
    assert_close(lse4, ref.logsumexp(x4, axis=1), 2e-6, 1e-6)
    _, lse64 = impl.cross_entropy(x.astype(np.float64), t, return_lse=True)
    assert lse64.dtype == np.float64


@pytest.mark.parametrize("opts", [{}, dict(label_smoothing=0.1),
                                  dict(weight="classes", z_loss=1e-3),
                                  dict(softcap=4.0, logit_scale=0.5)], ids=repr)
@pytest.mark.parametrize("C", [5, 100, 3000])
@pytest.mark.parametrize("dtype", HALF + [np.dtype(np.float32), np.dtype(np.float64)],
                         ids=HALF_IDS + ["float32", "float64"])
def test_ignored_rows_lse_beside_their_zero_gradient(dtype, C, opts, rng):
    """An ignored row's lse is its logits' also where its zero gradient goes over them: out=logits,
    or the float32 copy a half-precision row is computed in."""
    x, t = _case(rng, 6, C, dtype)
    t[4] = -100
    kw = _options(opts, rng, 6, C)
    _, _, want = ref.cross_entropy_and_grad(x.astype(np.float64), t, reduction="none",
                                            return_lse=True, **kw)
    tol = (1e-12, 1e-12) if dtype == np.float64 else (2e-6, 1e-6)
    for in_place in (False, True):
        y = x.copy()
        _, g, lse = impl.cross_entropy_and_grad(y, t, reduction="none", return_lse=True,
                                                out=y if in_place else None, **kw)
        assert_close(lse, want, *tol, err_msg="in place" if in_place else "")
        assert not np.asarray(g, np.float64)[[1, 4]].any()


@pytest.mark.parametrize("C", [4, 300])
def test_softcap_bounds_the_logits(C, rng):
    # huge and infinite logits are capped: finite loss and gradient (masked classes are no
    # longer masked: -inf becomes -softcap)
    x, t = _case(rng, 8, C, np.float64, scale=1e6, ignore=False)
    x[0, 1] = np.inf
    x[1, 2] = -np.inf
    loss, g = impl.cross_entropy_and_grad(x, t, softcap=10.0, reduction="none")
    assert np.isfinite(loss).all() and np.isfinite(g).all()
    rl, rg = ref.cross_entropy_and_grad(x, t, softcap=10.0, reduction="none")
    assert_close(loss, rl, 1e-12, 1e-12)
    assert_close(g, rg, 1e-11, 1e-14)


@pytest.mark.parametrize("kw, exc, match", [
    (dict(softcap=0.0), ValueError, "softcap"),
    (dict(softcap=-3.0), ValueError, "softcap"),
    (dict(softcap=float("nan")), ValueError, "softcap"),
    (dict(softcap=float("inf")), ValueError, "softcap"),
    (dict(softcap="30"), TypeError, "softcap"),
    (dict(z_loss=-1e-4), ValueError, "z_loss"),
    (dict(z_loss=float("nan")), ValueError, "z_loss"),
    (dict(logit_scale=0.0), ValueError, "logit_scale"),
    (dict(logit_scale=float("inf")), ValueError, "logit_scale"),
    (dict(logit_scale=None), TypeError, "logit_scale"),
    (dict(sample_weight=np.ones(3)), ValueError, "sample_weight"),
    (dict(sample_weight=np.array(["a"] * 6)), TypeError, "sample_weight"),
])
@pytest.mark.parametrize("fn", ["cross_entropy", "cross_entropy_and_grad"])
def test_bad_options(fn, kw, exc, match):
    x = np.zeros((6, 4), np.float32)
    t = np.zeros(6, np.int64)
    out = x.copy()
    extra = {"out": out} if fn.endswith("grad") else {}
    with pytest.raises(exc, match=match):
        getattr(impl, fn)(x, t, **kw, **extra)
    assert not out.any(), "nothing is written before an option is refused"


# --------------------------------------------------------------------------------------------
# every dispatch path
# --------------------------------------------------------------------------------------------


@pytest.mark.skipif("XENT_LARGE_MODEL_CHILD" in os.environ, reason="already a child run")
def test_every_path():
    """This module again under each other instruction-set path the CPU has."""
    rerun_on_other_paths(__file__, "XENT_LARGE_MODEL_CHILD")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softcap_map_accuracy_dense_sweep(dtype):
    # z = cap * tanh(u / cap) (read back as a one-class row's lse) within a few ulp over a
    # dense sweep through the series and exp branches of the kernels' tanh, and at +-inf, NaN
    u = np.concatenate([np.linspace(-60, 60, 200001), [np.inf, -np.inf, 0.0, -0.0]]).astype(dtype)
    _, z = impl.cross_entropy(u[:, None], np.zeros(len(u), np.int64), softcap=7.0,
                              return_lse=True)
    want = 7.0 * np.tanh(u.astype(np.float64) / 7.0)
    assert_close(z, want, 4 * np.finfo(dtype).eps, 0.0, "softcap map")
    _, z = impl.cross_entropy(np.array([[np.nan]], dtype), [0], softcap=7.0, return_lse=True)
    assert np.isnan(z).all()


@pytest.mark.parametrize("C", [5, 100, 2000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_options_on_irregular_rows(C, dtype, rng):
    # masked classes, +inf, NaN, all-masked and ignored rows inside a batch, with the per-row terms
    x, t = _case(rng, 40, C, dtype)
    x[0, 1:] = -np.inf
    t[0] = 0
    x[2, 3 % C] = np.inf
    x[4, C // 2] = np.nan
    x[6, :] = -np.inf
    x[8, t[8]] = 60.0  # confident
    kw = dict(z_loss=1e-2, sample_weight=rng.uniform(0.5, 2.0, 40), return_lse=True)
    loss, lse = impl.cross_entropy(x, t, reduction="none", **kw)
    rl, rlse = ref.cross_entropy(x, t, reduction="none", **kw)
    rtol = 2e-6 if dtype == np.float32 else 1e-12
    assert_close(loss, rl, rtol, rtol, "losses")
    assert_close(lse, rlse, rtol, rtol, "lse")
    finite = np.isfinite(rl)
    loss, g, lse = impl.cross_entropy_and_grad(x, t, reduction="none", **kw)
    rl, rg, _ = ref.cross_entropy_and_grad(x, t, reduction="none", **kw)
    assert_close(loss[finite], rl[finite], rtol, rtol, "losses with gradient")
    assert_close(g[finite], rg[finite], rtol, rtol, "gradient rows")
    assert np.isnan(g[4]).all()


@pytest.mark.parametrize("strided", [False, True], ids=["contiguous", "strided"])
@pytest.mark.parametrize("opts", [{}, dict(softcap=5.0), dict(logit_scale=0.5, z_loss=1e-2)],
                         ids=["plain", "softcap", "scale+z_loss"])
@pytest.mark.parametrize("dtype", HALF + [np.dtype(np.float32)], ids=HALF_IDS + ["float32"])
def test_streamed_long_rows_irregular(dtype, opts, strided, rng):
    # The forward over long rows of another storage type or mapped logits reads them a stretch at
    # a time, and loads a whole row only for ce_row (masked, +inf, NaN, all-masked rows) and for
    # the lse of an ignored row: each against the reference.
    C = 5000
    x, t = _case(rng, 12, C, dtype)
    x[0, 1:] = -np.inf
    t[0] = 0
    x[2, 3] = np.inf
    x[4, C // 2] = np.nan
    x[6, :] = -np.inf
    x[8, t[8]] = 60.0  # confident
    x[9, 4097] = 30.0  # the max in the row's last stretch, after the sums were rescaled
    if strided:
        x = np.asfortranarray(x)
    kw = dict(opts, return_lse=True)
    loss, lse = impl.cross_entropy(x, t, reduction="none", **kw)
    rl, rlse = ref.cross_entropy(x, t, reduction="none", **kw)
    assert_close(loss, rl, 2e-6, 2e-6, "losses")
    assert_close(lse, rlse, 2e-6, 2e-6, "lse")
    assert np.isnan(loss[4]) and loss[1] == 0 and np.isfinite(lse[1])
    # The gradient of the same rows: streamed too (its exponentials left in the stage relative to
    # the running max, then scaled and stored in the storage type) unless the logits are mapped,
    # whose chain rule reads the staged logits; the irregular rows through ce_row.
    with np.errstate(all="ignore"):
        gl, g = impl.cross_entropy_and_grad(x, t, reduction="none", **opts)
        wl, wg = ref.cross_entropy_and_grad(x, t, reduction="none", **opts)
    assert_close(gl, wl, 2e-6, 2e-6, "losses with the gradient")
    if not opts:
        # The confident row's on-target gradient, -(sum of the other terms) / sum, is ~1e-21: the
        # reference's p_t - 1 rounds it to 0, so its truth is that closed form.
        z = x[8].astype(np.float64) - 60.0
        others = np.exp(np.delete(z, t[8])).sum()
        wg[8, t[8]] = -others / (1.0 + others)
    if dtype == np.float32:
        assert_close(g, wg, 2e-6, 2e-7, "gradient")
    else:
        _half_close(g, wg, dtype, "gradient")


@pytest.mark.parametrize("C", [7, 3000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softcap_gradient_far_past_the_cap(dtype, C):
    """Logits far past a soft cap have dz/du = sech^2(u / cap), ~1e-10 at 12 caps, where
    1 - (z / cap)^2 from the capped logit would round to 0: every entry within its dtype's
    precision of the float64 closed form, no absolute slack."""
    cap = 5.0
    x = np.linspace(-3.0, 3.0, C)
    x[0], x[1], x[2] = 60.0, -60.0, 12.0
    x = x.astype(dtype).reshape(1, C)
    t = np.array([3])
    _, g = impl.cross_entropy_and_grad(x, t, softcap=cap)
    u = x[0].astype(np.float64)
    z = cap * np.tanh(u / cap)
    p = np.exp(z - z.max())
    p /= p.sum()
    p[3] -= 1.0
    want = p / np.cosh(u / cap) ** 2
    assert_close(g[0], want, 1e-5 if dtype == np.float32 else 1e-12, 0)
