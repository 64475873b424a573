"""Fused linear + cross-entropy (issue 12): linear_cross_entropy(_and_grad) and
LinearCrossEntropyLoss against the unfused reference (xent_fast.reference, which is
``cross_entropy(input @ W.T + b, ...)`` by definition) and against finite differences; results
independent of chunk_size; bad input refused before any work."""

import ast
import inspect
import pathlib

import numpy as np
import pytest

from _helpers import USING_REFERENCE, assert_close, impl, ref, tolerances

FLOATS = (np.float32, np.float64)


def _tol(dtype, scale=1.0):
    # float32: the logits come from a float32 BLAS product (the reference's from float64), so a
    # few float32 ulps of the D-term dot products on top of the kernel's own tolerance.
    if np.dtype(dtype) == np.float32:
        return 1e-4, 2e-5 * scale
    return tolerances(dtype, scale)


def _problem(rng, batch=(13,), D=5, V=11, dtype=np.float64, bias=True, targets="index",
             p_ignore=0.0, ignore_index=-100):
    x = rng.standard_normal(batch + (D,)).astype(dtype)
    w = (rng.standard_normal((V, D)) * 0.7).astype(dtype)
    b = rng.standard_normal(V).astype(dtype) if bias else None
    if targets == "index":
        t = rng.integers(0, V, batch)
        t[rng.random(batch) < p_ignore] = ignore_index
    else:
        t = rng.dirichlet(np.ones(V), batch).astype(dtype)
    return x, w, b, t


def _check(got, want, dtype, bias):
    rtol, atol = _tol(dtype, 10.0)
    assert len(got) == len(want) == (4 if bias else 3)
    for i, (g, e) in enumerate(zip(got, want)):
        g = np.asarray(g)
        assert g.dtype == np.dtype(dtype), (i, g.dtype)
        assert_close(g, e, rtol, atol, err_msg=f"result {i}")


# ------------------------------------------------------------------------------------------
# values and gradients against the reference
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_reference(rng, dtype, reduction, bias):
    x, w, b, t = _problem(rng, dtype=dtype, bias=bias, p_ignore=0.2)
    kw = dict(linear_bias=b, reduction=reduction)
    loss = impl.linear_cross_entropy(x, w, t, chunk_size=4, **kw)
    want = ref.linear_cross_entropy(x, w, t, **kw)
    assert np.asarray(loss).dtype == np.dtype(dtype)
    assert_close(loss, want, *_tol(dtype, 10.0))
    # the definition itself: cross_entropy of the unfused logits
    logits = x.astype(np.float64) @ w.T.astype(np.float64) + (0 if b is None else b)
    assert_close(want, ref.cross_entropy(logits, t, reduction=reduction), *_tol(dtype, 10.0))
    got = impl.linear_cross_entropy_and_grad(x, w, t, chunk_size=4, **kw)
    _check(got, ref.linear_cross_entropy_and_grad(x, w, t, **kw), dtype, bias)
    assert_close(got[0], loss, *_tol(dtype, 10.0))


@pytest.mark.parametrize("options", [
    {"weight": "random"},
    {"label_smoothing": 0.2},
    {"weight": "random", "label_smoothing": 0.1, "ignore_index": 3},
    {"eps": 1e-3},
    {"z_loss": 1e-2},
    {"softcap": 2.0},
    {"logit_scale": -0.7},
    {"sample_weight": "random"},
    {"z_loss": 1e-3, "softcap": 3.0, "logit_scale": 1.5, "sample_weight": "random",
     "weight": "random", "label_smoothing": 0.1},
])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_options_match_reference(rng, options, reduction):
    x, w, b, t = _problem(rng, batch=(17,), V=9, p_ignore=0.25)
    options = dict(options)
    if options.get("weight") == "random":
        options["weight"] = rng.random(9) + 0.1
    if options.get("sample_weight") == "random":
        options["sample_weight"] = rng.uniform(0.0, 2.0, 17)
    if "ignore_index" in options:
        t[t == -100] = options["ignore_index"]
    kw = dict(linear_bias=b, reduction=reduction, **options)
    got = impl.linear_cross_entropy_and_grad(x, w, t, chunk_size=5, **kw)
    _check(got, ref.linear_cross_entropy_and_grad(x, w, t, **kw), np.float64, True)


@pytest.mark.parametrize("dtype", FLOATS)
def test_probability_targets(rng, dtype):
    x, w, b, y = _problem(rng, batch=(4, 3), dtype=dtype, targets="prob")
    for reduction in ("mean", "sum", "none"):
        kw = dict(linear_bias=b, reduction=reduction, label_smoothing=0.1)
        got = impl.linear_cross_entropy_and_grad(x, w, y, chunk_size=5, **kw)
        _check(got, ref.linear_cross_entropy_and_grad(x, w, y, **kw), dtype, True)
        assert got[1].shape == x.shape


@pytest.mark.parametrize("dtype", FLOATS)
def test_three_d_input(rng, dtype):
    x, w, b, t = _problem(rng, batch=(3, 4), dtype=dtype, p_ignore=0.2)
    for reduction in ("mean", "none"):
        got = impl.linear_cross_entropy_and_grad(x, w, t, linear_bias=b, reduction=reduction,
                                                 chunk_size=5)
        assert got[1].shape == (3, 4, 5)
        if reduction == "none":
            assert got[0].shape == (3, 4)
        _check(got, ref.linear_cross_entropy_and_grad(x, w, t, linear_bias=b,
                                                      reduction=reduction), dtype, True)


def test_one_row_input(rng):
    x, w, b, _ = _problem(rng, batch=())
    got = impl.linear_cross_entropy_and_grad(x, w, 4, linear_bias=b, reduction="none")
    assert got[0].shape == () and got[1].shape == x.shape
    _check(got, ref.linear_cross_entropy_and_grad(x, w, 4, linear_bias=b, reduction="none"),
           np.float64, True)


def test_grad_loss(rng):
    x, w, b, t = _problem(rng, batch=(4, 3), p_ignore=0.2)
    gl = rng.standard_normal((4, 3))
    got = impl.linear_cross_entropy_and_grad(x, w, t, linear_bias=b, reduction="none",
                                             grad_loss=gl, chunk_size=5)
    _check(got, ref.linear_cross_entropy_and_grad(x, w, t, linear_bias=b, reduction="none",
                                                  grad_loss=gl), np.float64, True)
    # a row vector broadcasts; a scalar scales 'mean'
    got = impl.linear_cross_entropy_and_grad(x, w, t, reduction="none", grad_loss=gl[0],
                                             chunk_size=2)
    _check(got, ref.linear_cross_entropy_and_grad(x, w, t, reduction="none", grad_loss=gl[0]),
           np.float64, False)
    got = impl.linear_cross_entropy_and_grad(x, w, t, grad_loss=-2.5, chunk_size=2)
    _check(got, ref.linear_cross_entropy_and_grad(x, w, t, grad_loss=-2.5), np.float64, False)


def test_ignored_rows_have_zero_gradient(rng):
    x, w, b, t = _problem(rng, batch=(10,))
    t[[0, 4, 5, 9]] = -100
    loss, gx, gw, gb = impl.linear_cross_entropy_and_grad(x, w, t, linear_bias=b,
                                                          reduction="none", chunk_size=3)
    assert np.all(loss[[0, 4, 5, 9]] == 0) and np.all(gx[[0, 4, 5, 9]] == 0)
    kept = t != -100
    want = impl.linear_cross_entropy_and_grad(x[kept], w, t[kept], linear_bias=b,
                                              reduction="none")
    assert_close(gw, want[2], *_tol(np.float64, 10.0))
    assert_close(gb, want[3], *_tol(np.float64, 10.0))
    # 'mean' divides by the rows kept, over all chunks at once
    mean = impl.linear_cross_entropy(x, w, t, linear_bias=b, chunk_size=3)
    assert_close(mean, loss.sum() / kept.sum(), *_tol(np.float64, 10.0))


def test_all_rows_ignored_mean_is_nan_like_the_reference(rng):
    x, w, b, t = _problem(rng, batch=(5,))
    t[:] = -100
    got = impl.linear_cross_entropy_and_grad(x, w, t, linear_bias=b, chunk_size=2)
    want = ref.linear_cross_entropy_and_grad(x, w, t, linear_bias=b)
    assert np.isnan(got[0]) and np.isnan(want[0])
    for g, e in zip(got[1:], want[1:]):
        assert_close(g, e, 0, 0)


def test_empty_batch(rng):
    x, w, b, t = _problem(rng, batch=(0,))
    loss, gx, gw, gb = impl.linear_cross_entropy_and_grad(x, w, t, linear_bias=b,
                                                          reduction="sum")
    assert loss == 0 and gx.shape == (0, 5) and np.all(gw == 0) and np.all(gb == 0)


@pytest.mark.parametrize("dtype", FLOATS)
def test_strided_and_fortran_operands(rng, dtype):
    x, w, b, t = _problem(rng, batch=(9,), D=6, dtype=dtype)
    want = ref.linear_cross_entropy_and_grad(x, w, t, linear_bias=b)
    xs = np.zeros((9, 12), dtype)
    xs[:, ::2] = x
    bs = np.zeros(22, dtype)
    bs[::2] = b
    got = impl.linear_cross_entropy_and_grad(xs[:, ::2], np.asfortranarray(w), t,
                                             linear_bias=bs[::2], chunk_size=4)
    _check(got, want, dtype, True)
    assert got[1].flags.c_contiguous


@pytest.mark.compiled_only
def test_num_threads_does_not_change_results(rng):
    x, w, b, t = _problem(rng, batch=(40,), V=30)
    base = impl.linear_cross_entropy_and_grad(x, w, t, linear_bias=b, chunk_size=16)
    for threads in (1, 2):
        got = impl.linear_cross_entropy_and_grad(x, w, t, linear_bias=b, chunk_size=16,
                                                 num_threads=threads)
        for g, e in zip(got, base):
            assert_close(g, e, 1e-13, 1e-14)
    with pytest.raises(ValueError, match="num_threads"):
        impl.linear_cross_entropy(x, w, t, num_threads=0)


# ------------------------------------------------------------------------------------------
# chunk_size
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_chunk_size_does_not_change_results(rng, dtype, reduction):
    x, w, b, t = _problem(rng, batch=(23,), dtype=dtype, p_ignore=0.15)
    cw = rng.random(11) + 0.2
    kw = dict(linear_bias=b, reduction=reduction, weight=cw, label_smoothing=0.05)
    base = impl.linear_cross_entropy_and_grad(x, w, t, chunk_size=23, **kw)
    rtol, atol = (2e-6, 2e-6) if dtype == np.float32 else (1e-13, 1e-14)
    for chunk in (1, 3, 7, 1000, None):
        got = impl.linear_cross_entropy_and_grad(x, w, t, chunk_size=chunk, **kw)
        for i, (g, e) in enumerate(zip(got, base)):
            assert_close(g, e, rtol, atol, err_msg=f"chunk_size={chunk}, result {i}")
        assert_close(impl.linear_cross_entropy(x, w, t, chunk_size=chunk, **kw), base[0],
                     rtol, atol)


@pytest.mark.compiled_only
def test_default_chunk_size_formula():
    from xent_fast.linear import default_chunk_size

    assert default_chunk_size(10**6, 32000, 4) == 524  # 64 MiB // (32000 * 4)
    assert default_chunk_size(10**6, 128256, 4) == 256  # at least 256 rows
    assert default_chunk_size(100, 128256, 8) == 100  # at most all rows
    assert default_chunk_size(10**5, 10, 8) == 10**5
    assert default_chunk_size(0, 10, 8) == 1


# ------------------------------------------------------------------------------------------
# finite differences (float64, small shapes): all four gradients
# ------------------------------------------------------------------------------------------

def _fd(f, a, rel=1e-6):
    a = np.array(a, dtype=np.float64, copy=True)
    g = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        h = rel * max(1.0, abs(old))
        a[idx] = old + h
        fp = f(a)
        a[idx] = old - h
        fm = f(a)
        a[idx] = old
        g[idx] = (fp - fm) / (2 * h)
    return g


@pytest.mark.parametrize("options", [
    {},
    {"weight": [0.5, 1.0, 2.0, 0.3, 1.7, 1.0, 0.9], "label_smoothing": 0.2},
    {"targets": "prob"},
    {"reduction": "none", "grad_loss": "random"},
    {"z_loss": 0.05, "softcap": 2.5, "logit_scale": 0.8, "sample_weight": [[1.0], [0.3]]},
    {"targets": "prob", "z_loss": 0.05, "sample_weight": [[0.5, 2.0, 1.0]]},
])
def test_gradients_match_finite_differences(rng, options):
    options = dict(options)
    x, w, b, t = _problem(rng, batch=(2, 3), D=4, V=7, targets=options.pop("targets", "index"))
    if t.dtype.kind == "i":
        t[0, 1] = -100
    gl = options.pop("grad_loss", None)
    reduction = options.pop("reduction", "mean")
    if gl == "random":
        gl = rng.standard_normal((2, 3))

    def total(xx, ww, bb):
        loss = impl.linear_cross_entropy(xx, ww, t, linear_bias=bb, reduction=reduction,
                                         chunk_size=4, **options)
        return float(np.sum(loss * (1.0 if gl is None else gl)))

    _, gx, gw, gb = impl.linear_cross_entropy_and_grad(
        x, w, t, linear_bias=b, reduction=reduction, grad_loss=gl, chunk_size=4, **options)
    assert_close(gx, _fd(lambda a: total(a, w, b), x), 1e-6, 1e-8, "grad_input")
    assert_close(gw, _fd(lambda a: total(x, a, b), w), 1e-6, 1e-8, "grad_linear_weight")
    assert_close(gb, _fd(lambda a: total(x, w, a), b), 1e-6, 1e-8, "grad_linear_bias")


# ------------------------------------------------------------------------------------------
# dtypes
# ------------------------------------------------------------------------------------------

def test_mixed_dtypes_promote_to_the_wider(rng):
    x, w, b, t = _problem(rng, dtype=np.float32)
    got = impl.linear_cross_entropy_and_grad(x, w.astype(np.float64), t, linear_bias=b)
    assert all(np.asarray(g).dtype == np.float64 for g in got)
    got = impl.linear_cross_entropy_and_grad(x.astype(np.int64), w, t, linear_bias=b)
    assert all(np.asarray(g).dtype == np.float64 for g in got)  # integers count as float64


def test_float32_weight_gradient_over_many_chunks(rng):
    # float32 accumulation across chunks stays within float32 rounding of the float64 truth
    x, w, b, t = _problem(rng, batch=(400,), D=8, V=50, dtype=np.float32)
    got = impl.linear_cross_entropy_and_grad(x, w, t, linear_bias=b, reduction="sum",
                                             chunk_size=3)
    want = ref.linear_cross_entropy_and_grad(x, w, t, linear_bias=b, reduction="sum")
    scale = np.abs(want[2]).max()
    assert_close(got[2], want[2], 1e-4, 1e-5 * scale)
    assert_close(got[3], want[3], 1e-4, 1e-5 * np.abs(want[3]).max())


# ------------------------------------------------------------------------------------------
# bad input: refused before any work
# ------------------------------------------------------------------------------------------

def _bad_cases(rng):
    x, w, b, t = _problem(rng, batch=(2, 3), D=4, V=6)
    return x, w, b, t, [
        (dict(input=x, linear_weight=w[:, :3], targets=t), ValueError, "linear_weight"),
        (dict(input=x, linear_weight=w[0], targets=t), ValueError, "linear_weight"),
        (dict(input=x, linear_weight=w[:0], targets=t), ValueError, "linear_weight"),
        (dict(input=x, linear_weight=w, targets=t, linear_bias=b[:5]), ValueError, "linear_bias"),
        (dict(input=x, linear_weight=w, targets=t[0]), ValueError, "targets"),
        (dict(input=x, linear_weight=w, targets=np.zeros((2, 3, 5))), ValueError, "targets"),
        (dict(input=x, linear_weight=w, targets=t.astype(np.float64)), TypeError, "integer"),
        (dict(input=x.astype(complex), linear_weight=w, targets=t), TypeError, "input"),
        (dict(input=x, linear_weight=np.array([["a"] * 4] * 6), targets=t), TypeError,
         "linear_weight"),
        (dict(input=x, linear_weight=w, targets=t, chunk_size=0), ValueError, "chunk_size"),
        (dict(input=x, linear_weight=w, targets=t, chunk_size=-3), ValueError, "chunk_size"),
        (dict(input=x, linear_weight=w, targets=t, chunk_size=2.0), TypeError, "chunk_size"),
        (dict(input=x, linear_weight=w, targets=t, chunk_size=True), TypeError, "chunk_size"),
        (dict(input=x, linear_weight=w, targets=t, reduction="avg"), ValueError, "reduction"),
        (dict(input=x, linear_weight=w, targets=t, label_smoothing=1.5), ValueError,
         "label_smoothing"),
        (dict(input=x, linear_weight=w, targets=t, weight=np.ones(5)), ValueError, "weight"),
    ]


@pytest.mark.parametrize("case", range(16))
def test_bad_input(rng, case):
    *_, cases = _bad_cases(rng)
    kwargs, exc, word = cases[case]
    with pytest.raises(exc, match=word):
        impl.linear_cross_entropy(**kwargs)
    with pytest.raises(exc, match=word):
        impl.linear_cross_entropy_and_grad(**kwargs)


@pytest.mark.parametrize("fn", ["linear_cross_entropy", "linear_cross_entropy_and_grad"])
def test_bad_class_index_named_with_value_and_position(rng, fn):
    x, w, b, t = _problem(rng, batch=(3, 4), D=4, V=6)
    t[2, 1] = 6
    t[2, 3] = -7
    with pytest.raises(ValueError, match=r"6.*\(?2, 1\)?|\(?2, 1\)?.*6"):
        getattr(impl, fn)(x, w, t, chunk_size=1)


@pytest.mark.compiled_only
def test_bad_class_index_found_before_any_product(rng, monkeypatch):
    # the last chunk's bad target stops the call before the first chunk's BLAS product
    import xent_fast.linear as L

    x, w, b, t = _problem(rng, batch=(12,), D=4, V=6)
    t[-1] = 99
    calls = []
    monkeypatch.setattr(L.np, "matmul", lambda *a, **k: calls.append(1))
    with pytest.raises(ValueError, match="99"):
        L.linear_cross_entropy_and_grad(x, w, t, chunk_size=2)
    assert calls == []


@pytest.mark.compiled_only
# ------------------------------------------------------------------------------------------
# the layer
# ------------------------------------------------------------------------------------------

@pytest.mark.compiled_only
def test_layer_forward_backward(rng):
    import xent_fast

    x, w, b, t = _problem(rng, batch=(2, 5), p_ignore=0.2)
    layer = xent_fast.LinearCrossEntropyLoss(label_smoothing=0.1, chunk_size=3)
    want = ref.linear_cross_entropy_and_grad(x, w, t, linear_bias=b, label_smoothing=0.1)
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward()
    loss = layer(x, w, t, b)
    assert_close(loss, want[0], *_tol(np.float64, 10.0))
    grads = layer.backward()
    _check((loss,) + tuple(grads), want, np.float64, True)
    both = layer.forward_backward(x, w, t, b, grad_loss=2.0)
    _check(both, ref.linear_cross_entropy_and_grad(x, w, t, linear_bias=b, label_smoothing=0.1,
                                                   grad_loss=2.0), np.float64, True)
    assert len(layer.forward_backward(x, w, t)) == 3  # no bias: no bias gradient
    layer.reduction = "none"
    assert layer(x, w, t).shape == (2, 5)
    assert "chunk_size=3" in repr(layer)


# ------------------------------------------------------------------------------------------
# API: signatures of the package, the reference and the stub agree
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["linear_cross_entropy", "linear_cross_entropy_and_grad"])
def test_signature_matches_reference_and_stub(name):
    def params(fn):
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    assert params(getattr(impl, name)) == params(getattr(ref, name))
    if USING_REFERENCE:
        return
    import xent_fast
    from xent_fast import linear

    assert name in xent_fast.__all__ and getattr(xent_fast, name) is getattr(linear, name)
    stub = pathlib.Path(linear.__file__).with_suffix(".pyi")
    fns = {n.name: n for n in ast.parse(stub.read_text()).body if isinstance(n, ast.FunctionDef)}
    a = fns[name].args
    got = [arg.arg for arg in a.args] + [arg.arg for arg in a.kwonlyargs]
    defaults = [ast.literal_eval(d) for d in a.kw_defaults]
    assert got == [p[0] for p in params(getattr(linear, name))]
    assert defaults == [p[2] for p in params(getattr(linear, name))][len(a.args):]


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
def test_half_precision_operands(rng, half):
    # computed in float32 (NumPy has no half BLAS products); gradients rounded once into the
    # operands' own dtypes, the weight's gradient accumulated in float32 first
    import ml_dtypes

    dtype = np.dtype(np.float16) if half == "float16" else np.dtype(ml_dtypes.bfloat16)
    x, w, b, t = _problem(rng, batch=(23,), D=6, V=40, dtype=np.float32, p_ignore=0.1)
    x, w, b = x.astype(dtype), w.astype(dtype), b.astype(dtype)
    kw = dict(linear_bias=b, z_loss=1e-3, softcap=4.0)
    got = impl.linear_cross_entropy_and_grad(x, w, t, chunk_size=5, **kw)
    want = ref.linear_cross_entropy_and_grad(x, w, t, **kw)
    assert np.asarray(got[0]).dtype == np.float32
    assert_close(got[0], want[0], *_tol(np.float32, 10.0))
    eps = float(ml_dtypes.finfo(dtype).eps)
    for g, e in zip(got[1:], want[1:]):
        assert g.dtype == dtype
        scale = float(np.max(np.abs(e.astype(np.float64))))
        assert_close(g, e.astype(np.float64), 2 * eps, 1e-4 * scale)
