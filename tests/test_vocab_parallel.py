"""Vocabulary-parallel building blocks (issue 13; docs/DESIGN.md, section 13).

The logits' class axis is cut into 1 to 7 uneven shards (some holding no target, some no class at
all); each shard's partials, combined in any order, must give the loss, log-sum-exp and gradient
of the unsharded xent_fast functions and of xent_fast.reference, within the README's tolerances:
float64 within 1e-12 relative, float32 (and float16 / bfloat16, computed in float32) within 1e-6
relative of the float64 truth of the same values, with an absolute floor proportional to the
magnitude of the mapped logits for results near 0 (a difference of large terms); half-precision
gradients within one unit in their last place.  The whole module also runs on every other dispatch
path this CPU has (test_every_path).
"""

import os

import ml_dtypes
import numpy as np
import pytest

from _helpers import (USING_REFERENCE, assert_close, assert_half_close, assert_same_bits, impl,
                      input_scale, ref, reduction_atol, rerun_on_other_paths)

vp = ref if USING_REFERENCE else impl.vocab_parallel

HALF = [np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16)]
HALF_IDS = ["float16", "bfloat16"]
REDUCTIONS = ["none", "sum", "mean"]
SHARD_KEYS = ("weight", "ignore_index", "label_smoothing", "logit_scale", "softcap")
# Option sets, one per shard count (and FULL with every one): "rows" and "classes" stand for
# random sample weights and class weights; "ignore" sets some rows' targets to ignore_index.
FULL = dict(weight="classes", label_smoothing=0.2, z_loss=1e-3, softcap=5.0, logit_scale=-1.5,
            sample_weight="rows", ignore=True)
OPTIONS = [
    {},
    dict(weight="classes", ignore=True),
    dict(label_smoothing=0.1, ignore=True),
    dict(z_loss=1e-2, sample_weight="rows"),
    dict(softcap=3.0, logit_scale=0.7),
    FULL,
    dict(logit_scale=2.0, weight="classes", label_smoothing=1.0),
]


def _tol(dtype, scale=1.0):
    """(rtol, atol) of the README for a result of `dtype` whose mapped logits have magnitude
    `scale`: float64 1e-12, float32 1e-6 relative (the floor: that of a difference of terms of
    that magnitude)."""
    if np.dtype(dtype) == np.float64:
        return 1e-12, 1e-14 * scale
    return 1e-6, 1e-6 * scale


def _bounds(V, k, rng, empty=False):
    """k contiguous, uneven shards [a, b) of V classes; with `empty`, one of them holds none."""
    if empty:
        inner = _bounds(V, k - 1, rng)
        at = int(rng.integers(0, k))
        point = inner[at][0] if at < len(inner) else V
        return inner[:at] + [(point, point)] + inner[at:]
    cuts = sorted(rng.choice(np.arange(1, V), size=k - 1, replace=False)) if k > 1 else []
    edges = [0] + [int(c) for c in cuts] + [V]
    return list(zip(edges[:-1], edges[1:]))


def _cut(a, start, stop, axis):
    """The classes [start, stop) of `a` along `axis`: a view."""
    index = [slice(None)] * a.ndim
    index[axis] = slice(start, stop)
    return a[tuple(index)]


def _problem(rng, opts, shape=(13, 23), axis=-1, dtype=np.float64, kind="index"):
    """(logits, targets, options of the loss) of a random case; targets' rows 1 and 4 ignored
    with `ignore`."""
    V = shape[axis]
    row_shape = tuple(n for d, n in enumerate(shape) if d != axis % len(shape))
    x = (rng.standard_normal(shape) * 3.0).astype(dtype)
    if kind == "index":
        t = rng.integers(0, V, size=row_shape)
        if opts.get("ignore"):
            t.reshape(-1)[[1, 4]] = -100
    else:
        t = rng.exponential(1.0, size=shape)
        t = (t / t.sum(axis=axis, keepdims=True)).astype(np.float32 if dtype != np.float64
                                                         else np.float64)
    kw = {k: val for k, val in opts.items() if k != "ignore"}
    if kw.get("weight") == "classes":
        kw["weight"] = rng.uniform(0.5, 2.0, V)
    if kw.get("sample_weight") == "rows":
        kw["sample_weight"] = rng.uniform(0.0, 2.0, row_shape)
    return x, t, kw


def _sharded_total(x, t, bounds, axis=-1, prob=False, **kw):
    """The combined partials of the shards of x (and of probability targets t)."""
    V = x.shape[axis]
    shard_kw = {k: kw[k] for k in SHARD_KEYS if k in kw}
    parts = [vp.shard_partials(_cut(x, a, b, axis), _cut(t, a, b, axis) if prob else t, a, V,
                               axis=axis, **shard_kw) for a, b in bounds]
    return parts, vp.combine_partials(*parts)


def _sharded_grad(x, t, bounds, total, axis=-1, prob=False, **kw):
    """The shards' gradients, joined along the class axis."""
    V = x.shape[axis]
    return np.concatenate([vp.shard_grad(_cut(x, a, b, axis), _cut(t, a, b, axis) if prob else t,
                                         a, V, total, axis=axis, **kw) for a, b in bounds],
                          axis=axis)


def _merged_sum(p):
    """Partials with the exp(0) count added to the rest (the count of maxima may differ by ties
    that appear only after rounding to the kernel's precision; the sum does not)."""
    p = np.array(p, dtype=np.float64)
    p[..., vp.REST] += p[..., vp.ONES]
    p[..., vp.ONES] = 0.0
    return p


def _finish_kw(kw):
    return {k: kw[k] for k in ("z_loss", "sample_weight") if k in kw}


def _truth(x):
    return np.asarray(x).astype(np.float32 if np.asarray(x).dtype != np.float64
                                else np.float64).astype(np.float64)


def _z_scale(x, kw):
    """The magnitude of the mapped logits (1 + max |z|)."""
    return input_scale(np.asarray(x, np.float64) * kw.get("logit_scale", 1.0))


def _check_against_unsharded(x, t, bounds, kw, axis=-1, prob=False):
    """Loss (every reduction, with lse) and gradient (every reduction, with grad_loss) of the
    shards against the unsharded xent_fast function and the reference truth."""
    compute = np.dtype(np.float64) if x.dtype == np.float64 else np.dtype(np.float32)
    rtol, atol = _tol(compute, _z_scale(x, kw))
    parts, total = _sharded_total(x, t, bounds, axis, prob, **kw)
    xt, tt = _truth(x), (_truth(t) if prob else t)
    rows = ref.cross_entropy(xt, tt, axis=axis, reduction="none", **kw)
    for red in REDUCTIONS:
        loss, lse = vp.finish_partials(total, reduction=red, return_lse=True, dtype=compute,
                                       **_finish_kw(kw))
        want, want_lse = impl.cross_entropy(x, t, axis=axis, reduction=red, return_lse=True, **kw)
        truth = ref.cross_entropy(xt, tt, axis=axis, reduction=red, **kw)
        assert np.asarray(loss).dtype == compute and np.shape(loss) == np.shape(want), red
        red_atol = reduction_atol(rows, red, atol, rtol, np.sum(rows), truth)
        assert_close(loss, truth, rtol, red_atol, "loss vs truth, " + red)
        assert_close(loss, want, 2 * rtol, 2 * red_atol, "loss vs unsharded, " + red)
        assert_close(lse, want_lse, 2 * rtol, 2 * atol, "lse")
    for red, grad_loss in [("mean", 0.7), ("sum", None), ("none", "rows")]:
        gl = np.linspace(-1.0, 2.0, np.size(rows)).reshape(np.shape(rows)) if grad_loss else None
        gl = 0.7 if grad_loss == 0.7 else gl
        g = _sharded_grad(x, t, bounds, total, axis, prob, reduction=red, grad_loss=gl, **kw)
        _, want = impl.cross_entropy_and_grad(x, t, axis=axis, reduction=red, grad_loss=gl, **kw)
        _, truth = ref.cross_entropy_and_grad(xt, tt, axis=axis, reduction=red, grad_loss=gl, **kw)
        assert g.dtype == x.dtype and g.shape == x.shape
        g_atol = rtol * float(np.max(np.abs(truth), initial=0.0)) * _z_scale(x, kw)
        assert_close(g, truth, rtol, g_atol, "grad vs truth, " + red)
        assert_close(g, want, 2 * rtol, 2 * g_atol, "grad vs unsharded, " + red)
    return parts, total


# --------------------------------------------------------------------------------------------
# against the unsharded functions and the reference
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["index", "probs"])
@pytest.mark.parametrize("n_shards", range(1, 8))
def test_shards_match_unsharded(n_shards, kind, dtype, rng):
    for opts in (OPTIONS[n_shards - 1], FULL):
        if kind == "probs" and opts.get("ignore"):
            opts = {k: val for k, val in opts.items() if k != "ignore"}
        x, t, kw = _problem(rng, opts, dtype=dtype, kind=kind)
        bounds = _bounds(x.shape[-1], n_shards, rng, empty=n_shards > 2)
        parts, _ = _check_against_unsharded(x, t, bounds, kw, prob=kind == "probs")
        # each shard's partials are the reference's
        shard_kw = {k: kw[k] for k in SHARD_KEYS if k in kw}
        for (a, b), p in zip(bounds, parts):
            want = ref.shard_partials(_truth(x[:, a:b]), t[:, a:b] if kind == "probs" else t, a,
                                      x.shape[-1], **shard_kw)
            rtol, atol = _tol(np.float32 if dtype == np.float32 else np.float64,
                              _z_scale(x, kw))
            assert_close(_merged_sum(p), _merged_sum(want), rtol, atol,
                         "partials of shard [%d, %d)" % (a, b))


@pytest.mark.parametrize("n_shards", [2, 5])
def test_class_axis_not_last(n_shards, rng):
    x, t, kw = _problem(rng, FULL, shape=(3, 19, 4), axis=1)
    _check_against_unsharded(x, t, _bounds(19, n_shards, rng), kw, axis=1)
    x, y, kw = _problem(rng, dict(z_loss=1e-3, softcap=4.0), shape=(19, 5), axis=0, kind="probs")
    _check_against_unsharded(x, y, _bounds(19, n_shards, rng), kw, axis=0, prob=True)


def test_shards_without_target(rng):
    """Every target in the last shard: the others report no D, B, target weight or count (but
    for smoothing), and their gradient is the softmax part alone."""
    x, _, kw = _problem(rng, dict(weight="classes"))
    t = np.full(13, 20)
    t[3] = 22
    bounds = [(0, 7), (7, 7), (7, 19), (19, 23)]
    parts, total = _check_against_unsharded(x, t, bounds, kw)
    for p in parts[:3]:
        assert not p[:, [vp.DOT, vp.COEF, vp.TARGET_WEIGHT]].any()
    assert (parts[0][:, vp.COUNTED] == 1).all() and not parts[3][:, vp.COUNTED].any()
    assert_close(total[:, vp.TARGET_WEIGHT], kw["weight"][t], 0, 0)
    assert_close(total[:, vp.COEF], kw["weight"][t], 0, 0)
    # an empty shard: no classes, its max -inf and exp-sum 0, the identity of the combine
    assert (parts[1][:, vp.MAX] == -np.inf).all()
    assert not parts[1][:, [vp.ONES, vp.REST]].any()


def test_ignored_rows(rng):
    x, t, kw = _problem(rng, dict(z_loss=0.1, weight="classes"))
    t[:] = -100
    t[5] = 3
    _check_against_unsharded(x, t, _bounds(23, 3, rng), kw)
    t[5] = -100  # nothing left: the mean is 0 / 0
    _, total = _sharded_total(x, t, _bounds(23, 3, rng), **kw)
    assert not total[:, vp.DOT:].any()
    assert np.isnan(vp.finish_partials(total, z_loss=0.1))
    assert vp.finish_partials(total, reduction="sum", z_loss=0.1) == 0
    assert np.isnan(impl.cross_entropy(x, t, **kw))


@pytest.mark.parametrize("dtype", HALF, ids=HALF_IDS)
@pytest.mark.parametrize("kind", ["index", "probs"])
@pytest.mark.parametrize("n_shards", [1, 3, 6])
def test_half_precision(n_shards, kind, dtype, rng):
    """Losses and log-sum-exps in float32 within float32's tolerance of the truth of the half
    values; gradients in the logits' dtype (or a float32 out=, or in place), rounded once."""
    opts = FULL if kind == "index" else {k: val for k, val in FULL.items() if k != "ignore"}
    x, t, kw = _problem(rng, opts, dtype=dtype, kind=kind)
    prob = kind == "probs"
    bounds = _bounds(23, n_shards, rng, empty=n_shards > 2)
    _, total = _sharded_total(x, t, bounds, prob=prob, **kw)
    xt = _truth(x)
    rtol, atol = _tol(np.float32, _z_scale(x, kw))
    rows = ref.cross_entropy(xt, t, reduction="none", **kw)
    for red in REDUCTIONS:
        loss = vp.finish_partials(total, reduction=red, dtype=np.float32, **_finish_kw(kw))
        truth = ref.cross_entropy(xt, t, reduction=red, **kw)
        assert np.asarray(loss).dtype == np.float32
        assert_close(loss, truth, rtol, reduction_atol(rows, red, atol, rtol, np.sum(rows), truth))
    _, truth = ref.cross_entropy_and_grad(xt, t, **kw)
    assert_half_close(_sharded_grad(x, t, bounds, total, prob=prob, **kw), truth, dtype)
    outs = [np.empty(x[:, a:b].shape, np.float32) for a, b in bounds]
    for (a, b), out in zip(bounds, outs):
        ts = t[:, a:b] if prob else t
        assert vp.shard_grad(x[:, a:b], ts, a, 23, total, out=out, **kw) is out
    assert_close(np.concatenate(outs, 1), truth, rtol, rtol * np.abs(truth).max() * 10)
    # in place, shard by shard
    xin = x.copy()
    for a, b in bounds:
        view = xin[:, a:b]
        ts = t[:, a:b] if prob else t
        assert vp.shard_grad(view, ts, a, 23, total, out=view, **kw) is view
    assert_half_close(xin, truth, dtype)


def test_one_row_and_empty_batch(rng):
    x, t = rng.standard_normal(23), 5
    kw = dict(z_loss=0.01, label_smoothing=0.1)
    _check_against_unsharded(x, t, [(0, 4), (4, 23)], kw)
    p = vp.shard_partials(x[4:], t, 4, 23)
    assert p.shape == (vp.N_FIELDS,)
    x0, t0 = np.zeros((0, 23)), np.zeros(0, np.int64)
    total = vp.combine_partials(*[vp.shard_partials(x0[:, a:b], t0, a, 23) for a, b in
                                  [(0, 4), (4, 23)]])
    assert total.shape == (0, vp.N_FIELDS)
    assert np.isnan(vp.finish_partials(total)) and vp.finish_partials(total, reduction="sum") == 0
    assert vp.finish_partials(total, reduction="none").shape == (0,)
    assert vp.shard_grad(x0[:, 4:], t0, 4, 23, total).shape == (0, 19)


@pytest.mark.parametrize("dtype", [np.float32, np.float64] + HALF, ids=["float32", "float64"]
                         + HALF_IDS)
@pytest.mark.parametrize("n_shards", [1, 2, 4, 7])
def test_logsumexp_log_softmax_softmax(n_shards, dtype, rng):
    x = (rng.standard_normal((6, 31, 3)) * 4.0).astype(dtype)
    x[0, :, 0] = -np.inf  # a masked row
    x[1, :12, 1] = -np.inf  # masked classes: some shards see nothing but -inf
    bounds = _bounds(31, n_shards, rng, empty=n_shards > 3)
    parts = [vp.shard_partials(x[:, a:b], None, a, 31, axis=1) for a, b in bounds]
    for p in parts:
        assert not p[..., vp.DOT:].any()
    lse = vp.partials_lse(vp.combine_partials(*parts))
    xt = _truth(x)
    compute = np.float64 if dtype == np.float64 else np.float32
    rtol, atol = _tol(compute, input_scale(xt))
    assert_close(lse, ref.logsumexp(xt, axis=1), rtol, atol)
    assert_close(lse, impl.logsumexp(x, axis=1), 2 * rtol, 2 * atol)
    for name in ("log_softmax", "softmax"):
        got = np.concatenate([getattr(vp, "shard_" + name)(x[:, a:b], lse, axis=1)
                              for a, b in bounds], axis=1)
        truth = getattr(ref, name)(xt, axis=1)
        if dtype in HALF:
            assert_half_close(got, truth, dtype, name)
            continue
        assert got.dtype == dtype
        assert_close(got, truth, rtol, atol if name == "log_softmax" else rtol * 1e-3, name)


def test_masked_and_nan_rows(rng):
    x, t, kw = _problem(rng, dict(weight="classes", label_smoothing=0.1))
    x[2, :] = -np.inf
    x[2, t[2]] = 1.0  # only the target is left
    x[3, :17] = -np.inf  # the first shards of row 3 see nothing
    t[3] = 20
    bounds = [(0, 9), (9, 17), (17, 23)]
    _check_against_unsharded(x, t, bounds, dict(weight=kw["weight"]))
    # smoothing puts a share on the masked classes: those rows' loss is +inf
    _, total = _sharded_total(x, t, bounds, **kw)
    loss = vp.finish_partials(total, reduction="none")
    assert (loss[2:4] == np.inf).all()
    assert_close(loss, ref.cross_entropy(x, t, reduction="none", **kw), *_tol(np.float64, 8.0))
    # a NaN makes its row NaN and nothing else
    kw = dict(weight=kw["weight"])
    x[6, 11] = np.nan
    _, total = _sharded_total(x, t, bounds, **kw)
    loss = vp.finish_partials(total, reduction="none")
    assert np.isnan(loss[6]) and np.isfinite(np.delete(loss, 6)).all()
    assert_close(loss, ref.cross_entropy(x, t, reduction="none", **kw), *_tol(np.float64, 8.0))
    g = _sharded_grad(x, t, bounds, total, **kw)
    assert np.isnan(g[6]).all() and np.isfinite(np.delete(g, 6, axis=0)).all()


# --------------------------------------------------------------------------------------------
# confident rows: as exact as the unsharded kernel
# --------------------------------------------------------------------------------------------


def _confident_rows(rng, dtype, lead, n_rows=16, V=23):
    """Rows whose target's logit leads every other class by `lead` to `lead` + 3; in every
    fourth row a second class (the twin) equals the target's logit: two exp(0) terms."""
    t = rng.integers(0, V, n_rows)
    top = rng.uniform(-5.0, 5.0, n_rows)
    x = top[:, None] - lead - rng.uniform(0.0, 3.0, (n_rows, V))
    rows = np.arange(n_rows)
    x[rows, t] = top
    twin = (t + rng.integers(1, V, n_rows)) % V
    tied = rows % 4 == 0
    x[tied, twin[tied]] = top[tied]
    return x.astype(dtype), t, np.where(tied, twin, -1)


def _confident_truth(x, t, weight=None, sample_weight=None, z_loss=0.0):
    """Rows' loss and lse and the gradient (reduction 'sum') of class-index targets without
    smoothing, free of cancellation: with o = sum_{j != t} exp(z_j - z_t), loss = w_t log1p(o)
    (+ z_loss lse^2), lse = z_t + log1p(o), p_j = exp(z_j - z_t) / (1 + o) and
    p_t - 1 = -o / (1 + o)."""
    z = np.asarray(x, np.float64)
    rows = np.arange(len(t))
    zt = z[rows, t]
    e = np.exp(z - zt[:, None])
    e[rows, t] = 0.0
    o = e.sum(axis=1)
    wt = np.ones(len(t)) if weight is None else np.asarray(weight)[t]
    sw = np.ones(len(t)) if sample_weight is None else np.asarray(sample_weight)
    log_sum = np.log1p(o)
    lse = zt + log_sum
    loss = sw * (wt * log_sum + z_loss * lse ** 2)
    z_grad = 2.0 * z_loss * lse
    g = (sw * (wt + z_grad) / (1.0 + o))[:, None] * e
    g[rows, t] = sw * (wt * (-o / (1.0 + o)) + z_grad / (1.0 + o))
    return loss, lse, g


CONFIDENT = [(np.float64, 20.0), (np.float64, 40.0), (np.float32, 10.0)]
CONFIDENT_IDS = ["float64-lead20", "float64-lead40", "float32-lead10"]


@pytest.mark.compiled_only
@pytest.mark.parametrize("dtype, lead", CONFIDENT, ids=CONFIDENT_IDS)
@pytest.mark.parametrize("opts", [{}, dict(weight="classes", sample_weight="rows"),
                                  dict(z_loss=1e-4)], ids=["plain", "weights", "z_loss"])
@pytest.mark.parametrize("n_shards", range(1, 8))
def test_confident_rows(n_shards, opts, dtype, lead, rng):
    """A confident row's loss is essentially the other classes' tiny share, log1p(o): the
    partials keep the exp(0) terms apart and D relative to the max, so that the sharded loss,
    log-sum-exp and gradient (the target's entry -o / (1 + o) included) are exact relative to
    their own size, as the unsharded kernel's, at every split: the max in one shard or, for the
    rows with a twin, in one or two; B lse - D would leave them only ~1e-16 |lse| absolutely."""
    x, t, twin = _confident_rows(rng, dtype, lead)
    _, _, kw = _problem(rng, opts)
    kw = {k: (rng.uniform(0.5, 2.0, 23) if k == "weight" else
              rng.uniform(0.1, 2.0, 16) if k == "sample_weight" else val)
          for k, val in kw.items()}
    rtol = _tol(dtype)[0]
    want_loss, want_lse, want_g = _confident_truth(x, t, **kw)
    # With a z-loss the target's entry is a difference, w_t (p_t - 1) + 2 z_loss lse p_t: its
    # floor is that of the z-loss term.
    lse_atol = _tol(dtype, input_scale(x))[1]  # a log-sum-exp near 0 is a difference too
    g_atol = rtol * float(np.max(np.abs(kw.get("sample_weight", 1.0) * 2.0
                                        * kw.get("z_loss", 0.0) * want_lse)))
    unsharded, unsharded_lse = impl.cross_entropy(x, t, reduction="none", return_lse=True, **kw)
    _, unsharded_g = impl.cross_entropy_and_grad(x, t, reduction="sum", **kw)
    assert_close(unsharded, want_loss, rtol, 0.0, "the unsharded kernel")
    assert_close(unsharded_g, want_g, rtol, g_atol, "the unsharded kernel's gradient")
    splits = [_bounds(23, n_shards, rng, empty=n_shards > 2 and k == 2) for k in range(3)]
    if n_shards > 1:  # a cut between the target and its twin, and one at the target
        t0, w0 = t[0], twin[0]
        cut = max(1, min(22, (min(t0, w0) + max(t0, w0) + 1) // 2))
        at = max(1, min(22, int(t[1])))
        for c in (cut, at):
            rest = sorted(set(_bounds(23, n_shards - 1, rng)[k][1] for k in
                              range(n_shards - 2)) - {c})
            edges = [0] + sorted(rest + [c]) + [23]
            splits.append(list(zip(edges[:-1], edges[1:])))
    for bounds in splits:
        parts, total = _sharded_total(x, t, bounds, **kw)
        # the exp(0) terms: the target's (and its twin's) exactly, wherever the cuts fall
        assert_same_bits(total[:, vp.ONES], np.where(twin >= 0, 2.0, 1.0))
        loss, lse = vp.finish_partials(total, reduction="none", return_lse=True,
                                       **_finish_kw(kw))
        msg = "bounds %s" % (bounds,)
        assert_close(loss, want_loss, rtol, 0.0, "loss, " + msg)
        assert_close(lse, want_lse, rtol, lse_atol, "lse, " + msg)
        assert_close(loss, unsharded, 2 * rtol, 0.0, "loss vs unsharded, " + msg)
        assert_close(lse, unsharded_lse, 2 * rtol, 2 * lse_atol, "lse vs unsharded, " + msg)
        total_loss = vp.finish_partials(total, reduction="sum", **_finish_kw(kw))
        assert_close(total_loss, np.sum(want_loss), rtol, 0.0, "sum, " + msg)
        g = _sharded_grad(x, t, bounds, total, reduction="sum", **kw)
        assert g.dtype == x.dtype
        assert_close(g, want_g, rtol, g_atol, "grad, " + msg)
        assert_close(g, unsharded_g, 2 * rtol, 2 * g_atol, "grad vs unsharded, " + msg)


@pytest.mark.compiled_only
@pytest.mark.parametrize("dtype, lead", CONFIDENT, ids=CONFIDENT_IDS)
def test_confident_rows_long_and_strided_shards(dtype, lead, rng):
    """Shards longer than one stretch of the online max and exp-sum (whose exp(0) terms are
    folded into the rest when a later stretch has a larger max), contiguous and strided."""
    V = 5000
    x, t, twin = _confident_rows(rng, dtype, lead, n_rows=6, V=V)
    want_loss, _, want_g = _confident_truth(x, t)
    rtol = _tol(dtype)[0]
    bounds = [(0, 1700), (1700, 1700), (1700, 4100), (4100, V)]
    for axis in (-1, 0):
        xa = x if axis == -1 else np.ascontiguousarray(x.T)
        _, total = _sharded_total(xa, t, bounds, axis=axis)
        assert_same_bits(total[:, vp.ONES], np.where(twin >= 0, 2.0, 1.0))
        loss = vp.finish_partials(total, reduction="none")
        assert_close(loss, want_loss, rtol, 0.0, "loss, axis %d" % axis)
        g = _sharded_grad(xa, t, bounds, total, axis=axis, reduction="sum")
        assert_close(g if axis == -1 else g.T, want_g, rtol, 0.0, "grad, axis %d" % axis)


# --------------------------------------------------------------------------------------------
# the combine and the finish
# --------------------------------------------------------------------------------------------


def test_fields():
    fields = (vp.MAX, vp.ONES, vp.REST, vp.DOT, vp.COEF, vp.TARGET_WEIGHT, vp.COUNTED)
    assert fields == tuple(range(7)) and vp.N_FIELDS == 7
    assert fields == tuple(getattr(ref, name) for name in
                           ("MAX", "ONES", "REST", "DOT", "COEF", "TARGET_WEIGHT", "COUNTED"))


def test_combine_is_associative(rng):
    """Every tree order of combining (and any order of the parts) gives the same partials within
    rounding; one array combines to itself."""
    x, t, kw = _problem(rng, FULL, shape=(40, 57))
    x[0, :30] = -np.inf
    bounds = _bounds(57, 6, rng, empty=True)
    parts, flat = _sharded_total(x, t, bounds, **kw)
    c = vp.combine_partials
    a, b, d, e, f, g = parts
    orders = [c(c(a, b), c(d, e), c(f, g)), c(a, c(b, c(d, c(e, c(f, g))))),
              c(c(c(c(c(a, b), d), e), f), g), c(g, f, e, d, b, a), c(c(a, g), c(b, f), c(d, e))]
    for other in orders:
        assert_close(other, flat, 1e-15, 0.0)
    assert_same_bits(c(flat), flat)


def test_finish_with_chunked_rows(rng):
    """Rows cut into chunks as well (the denominator then that of all rows): the chunks' sums
    and the gradient with the global denominator are those of the whole."""
    x, t, kw = _problem(rng, FULL, shape=(30, 23))
    bounds = _bounds(23, 4, rng)
    sw = kw.pop("sample_weight")
    fkw = dict(z_loss=kw["z_loss"])
    _, total = _sharded_total(x, t, bounds, **kw)
    denom = vp.mean_denominator(total, sample_weight=sw)
    want_denom = np.sum(sw * kw["weight"][np.where(t == -100, 0, t)] * (t != -100))
    assert_close(denom, want_denom, 1e-14, 0)
    chunks = [slice(0, 7), slice(7, 8), slice(8, 30)]
    mean = sum(vp.finish_partials(total[s], sample_weight=sw[s], denominator=denom, **fkw)
               for s in chunks)
    want, want_g = impl.cross_entropy_and_grad(x, t, sample_weight=sw, **kw)
    assert_close(mean, want, 2e-12, 1e-14)
    g = np.concatenate([_sharded_grad(x[s], t[s], bounds, total[s], sample_weight=sw[s],
                                      denominator=denom, **kw) for s in chunks])
    assert_close(g, want_g, 2e-12, 1e-15)


def test_results_do_not_depend_on_threads(rng):
    if USING_REFERENCE:
        pytest.skip("threads: compiled only")
    x, t, kw = _problem(rng, FULL, shape=(600, 300), dtype=np.float32)
    shard_kw = {k: kw[k] for k in SHARD_KEYS if k in kw}
    one = vp.shard_partials(x[:, 100:], t, 100, 300, num_threads=1, **shard_kw)
    two = vp.shard_partials(x[:, 100:], t, 100, 300, num_threads=2, **shard_kw)
    assert_same_bits(one, two)
    total = vp.combine_partials(one, vp.shard_partials(x[:, :100], t, 0, 300, **shard_kw))
    g1 = vp.shard_grad(x[:, 100:], t, 100, 300, total, num_threads=1, **kw)
    g2 = vp.shard_grad(x[:, 100:], t, 100, 300, total, num_threads=2, **kw)
    assert_same_bits(g1, g2)


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.compiled_only
def test_bad_input(rng):
    x = rng.standard_normal((4, 5))
    t = np.array([0, 3, 9, -100])
    p = vp.shard_partials(x, t, 5, 10)
    with pytest.raises(ValueError, match=r"class_start=6 must be in \[0, num_classes - 5\]"):
        vp.shard_partials(x, t, 6, 10)
    with pytest.raises(ValueError, match="class_start=-1"):
        vp.shard_partials(x, t, -1, 10)
    with pytest.raises(ValueError, match="num_classes must be at least 1"):
        vp.shard_partials(x[:, :0], None, 0, 0)
    with pytest.raises(TypeError, match="class_start must be an integer"):
        vp.shard_partials(x, t, 1.5, 10)
    with pytest.raises(ValueError, match=r"weight must have shape \(10,\)"):
        vp.shard_partials(x, t, 0, 10, weight=np.ones(5))
    # the message of cross_entropy, from every shard
    bad = np.array([0, 10, 2, 1])
    msg = r"class index 10 at position \(1,\), outside \[0, 10\) and not ignore_index=-100"
    with pytest.raises(ValueError, match=msg):
        impl.cross_entropy(np.zeros((4, 10)), bad)
    for start in (0, 5):
        with pytest.raises(ValueError, match=msg):
            vp.shard_partials(x, bad, start, 10)
    out = np.full_like(x, 7.0)
    with pytest.raises(ValueError, match=msg):
        vp.shard_grad(x, bad, 0, 10, p, out=out)
    assert (out == 7.0).all()  # found before anything is written
    with pytest.raises(TypeError, match="integer dtype"):
        vp.shard_partials(x, t.astype(float), 0, 10)
    with pytest.raises(ValueError, match=r"targets must have shape \(4,\)"):
        vp.shard_partials(x, t[:3], 0, 10)
    with pytest.raises(ValueError, match="label_smoothing"):
        vp.shard_partials(x, t, 0, 10, label_smoothing=2.0)
    with pytest.raises(ValueError, match="softcap must be positive"):
        vp.shard_partials(x, t, 0, 10, softcap=-1.0)
    with pytest.raises(TypeError, match="eps"):
        vp.shard_partials(x, t, 0, 10, eps=0.1)  # no shard form
    # partials
    with pytest.raises(ValueError, match=r"partials must have shape row_shape \+ \(7,\)"):
        vp.combine_partials(p[:, :6])
    with pytest.raises(ValueError, match="same shape"):
        vp.combine_partials(p, p[:3])
    with pytest.raises(TypeError, match="at least one"):
        vp.combine_partials()
    with pytest.raises(ValueError, match=r"partials must have shape"):
        vp.finish_partials(p[..., 0])
    with pytest.raises(ValueError, match=r"total must have shape \(4, 7\)"):
        vp.shard_grad(x, t, 5, 10, p[:3])
    with pytest.raises(ValueError, match="reduction"):
        vp.finish_partials(p, reduction="avg")
    with pytest.raises(ValueError, match="z_loss must be non-negative"):
        vp.finish_partials(p, z_loss=-1.0)
    with pytest.raises(ValueError, match="sample_weight of shape"):
        vp.finish_partials(p, sample_weight=np.ones(3))
    with pytest.raises(TypeError, match="dtype must be a floating-point dtype"):
        vp.finish_partials(p, dtype=np.int32)
    with pytest.raises(ValueError, match="denominator must be finite"):
        vp.finish_partials(p, denominator=np.nan)
    with pytest.raises(ValueError, match="out must have dtype"):
        vp.shard_grad(x, t, 5, 10, p, out=np.empty((4, 5), np.float32))
    with pytest.raises(ValueError, match="grad_loss of shape"):
        vp.shard_grad(x, t, 5, 10, p, reduction="none", grad_loss=np.ones(3))
    with pytest.raises(ValueError, match="lse of shape"):
        vp.shard_softmax(x, np.zeros(3))
    with pytest.raises(ValueError, match="out overlaps"):
        lse = np.zeros(20)
        vp.shard_log_softmax(lse.reshape(4, 5), lse[:4], out=lse.reshape(4, 5)[::-1])


@pytest.mark.compiled_only
def test_signatures_match_reference():
    import inspect

    for name in vp.__all__:
        if name.islower():
            assert inspect.signature(getattr(vp, name)) == inspect.signature(getattr(ref, name)), (
                name)


@pytest.mark.compiled_only
@pytest.mark.skipif("XENT_VOCAB_PARALLEL_CHILD" in os.environ, reason="already a child run")
def test_every_path():
    """This module again under each other instruction-set path the CPU has."""
    rerun_on_other_paths(__file__, "XENT_VOCAB_PARALLEL_CHILD")
