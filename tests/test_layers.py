"""The loss layers of xent_fast.layers (issue 3): forward/backward against xent_fast.reference and
finite differences, options passed through, grad_loss, out= and in-place gradients, errors, state
across repeated cycles, and the memory the layer keeps between forward and backward."""

import inspect
import tracemalloc

import numpy as np
import pytest

from _helpers import USING_REFERENCE, assert_close, tolerances

if USING_REFERENCE:  # XENT_TEST_IMPL=reference: the package may not be built; skip, don't error
    pytest.importorskip("xent_fast._kernels")
import xent_fast  # noqa: E402
from xent_fast import reference as ref  # noqa: E402

pytestmark = pytest.mark.compiled_only  # the layers run xent_fast's kernels, not the reference

# layer class -> (forward function name, the kind of first argument it takes)
LAYERS = {
    xent_fast.CrossEntropyLoss: ("cross_entropy", "logits"),
    xent_fast.CategoricalCrossEntropyLoss: ("categorical_cross_entropy", "probs"),
    xent_fast.BinaryCrossEntropyLoss: ("binary_cross_entropy", "probs"),
    xent_fast.BinaryCrossEntropyWithLogitsLoss: ("binary_cross_entropy_with_logits", "logits"),
}

CE_OPTIONS = [
    {},
    {"reduction": "sum"},
    {"reduction": "none"},
    {"weight": [0.5, 2.0, 1.0, 0.1, 3.0]},
    {"ignore_index": 2},
    {"label_smoothing": 0.2},
    {"eps": 1e-3},
    {"axis": 0},
    {"weight": [1.0, 2.0, 0.5, 1.5, 1.0], "label_smoothing": 0.1, "reduction": "sum",
     "ignore_index": 4},
    {"reduction": "none", "label_smoothing": 0.3, "eps": 1e-2, "num_threads": 2},
]


def _ce_case(rng, opts, shape=(6, 5), dtype=np.float64, prob_targets=False):
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    axis = opts.get("axis", -1)
    if prob_targets:
        g = rng.exponential(size=shape)
        return x, (g / g.sum(axis=axis, keepdims=True)).astype(dtype)
    C = shape[axis]
    t_shape = list(shape)
    del t_shape[axis]
    return x, rng.integers(0, C, size=t_shape)


def _case(cls, rng, shape=(6, 5)):
    """(input, targets) valid for layer class ``cls``."""
    kind = LAYERS[cls][1]
    if cls is xent_fast.CrossEntropyLoss:
        return _ce_case(rng, {}, shape)
    x = rng.uniform(0.02, 0.98, size=shape) if kind == "probs" else rng.standard_normal(shape) * 2
    if cls is xent_fast.CategoricalCrossEntropyLoss:
        x = x / x.sum(axis=-1, keepdims=True)
        return x, rng.integers(0, shape[-1], size=shape[:-1])
    return x, rng.uniform(0.0, 1.0, size=shape)


def _tol(x):
    return tolerances(x.dtype, 1.0 + float(np.max(np.abs(x))))


# --------------------------------------------------------------------------------------------
# forward and backward against the reference
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("opts", CE_OPTIONS, ids=repr)
@pytest.mark.parametrize("prob_targets", [False, True], ids=["index", "probs"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_layer_matches_reference(rng, opts, prob_targets, dtype):
    x, t = _ce_case(rng, opts, dtype=dtype, prob_targets=prob_targets)
    layer = xent_fast.CrossEntropyLoss(**opts)
    loss = layer(x, t)
    truth = x.astype(np.float64), (t.astype(np.float64) if prob_targets else t)
    exp_loss, exp_grad = ref.cross_entropy_and_grad(*truth, **opts)
    rtol, atol = _tol(x)
    assert isinstance(loss, (np.ndarray, np.floating)) and loss.dtype == dtype
    assert_close(loss, exp_loss, rtol, atol * x.size)
    grad = layer.backward()
    assert grad.shape == x.shape and grad.dtype == dtype
    assert_close(grad, exp_grad, rtol, atol)
    # the forward value is the one the reference's loss-only function gives
    assert_close(loss, ref.cross_entropy(*truth, **opts), rtol, atol * x.size)


@pytest.mark.parametrize("cls", list(LAYERS), ids=lambda c: c.__name__)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_every_layer_matches_reference(rng, cls, reduction):
    name = LAYERS[cls][0]
    x, t = _case(cls, rng)
    layer = cls(reduction=reduction)
    exp_loss, exp_grad = getattr(ref, name + "_and_grad")(x, t, reduction=reduction)
    rtol, atol = _tol(x)
    assert_close(layer.forward(x, t), exp_loss, rtol, atol * x.size)
    assert_close(layer.backward(), exp_grad, rtol, atol)


@pytest.mark.parametrize("cls", list(LAYERS), ids=lambda c: c.__name__)
def test_layer_options_are_the_functions_options(cls):
    """Each layer takes exactly its function's keyword options, with the same defaults."""
    fn = getattr(xent_fast, LAYERS[cls][0])
    # return_lse changes what the function returns; a layer's forward returns the loss
    fn_opts = {p.name: p.default for p in inspect.signature(fn).parameters.values()
               if p.kind is p.KEYWORD_ONLY and p.name != "return_lse"}
    layer_params = inspect.signature(cls).parameters.values()
    assert all(p.kind is p.KEYWORD_ONLY for p in layer_params)
    assert {p.name: p.default for p in layer_params} == fn_opts
    grad_fn = getattr(xent_fast, LAYERS[cls][0] + "_and_grad")
    grad_opts = {p.name for p in inspect.signature(grad_fn).parameters.values()
                 if p.kind is p.KEYWORD_ONLY}
    assert grad_opts - {"return_lse"} == set(fn_opts) | {"grad_loss", "out"}


# --------------------------------------------------------------------------------------------
# finite differences
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("opts", [{}, {"reduction": "sum", "weight": [0.5, 2.0, 1.0, 0.1, 3.0]},
                                  {"label_smoothing": 0.25, "ignore_index": 1}, {"axis": 0}],
                         ids=repr)
def test_cross_entropy_backward_matches_finite_differences(rng, opts):
    x, t = _ce_case(rng, opts, shape=(4, 5))
    layer = xent_fast.CrossEntropyLoss(**opts)
    layer(x, t)
    grad = layer.backward().copy()
    h = 1e-6
    fd = np.empty_like(x)
    probe = xent_fast.CrossEntropyLoss(**opts)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        fd[i] = (float(probe(xp, t)) - float(probe(xm, t))) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("cls", list(LAYERS), ids=lambda c: c.__name__)
def test_every_layer_backward_matches_finite_differences(rng, cls):
    x, t = _case(cls, rng, shape=(3, 4))
    layer = cls(reduction="sum")
    layer(x, t)
    grad = layer.backward().copy()
    h = 1e-7
    fd = np.empty_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        fd[i] = (float(layer(xp, t)) - float(layer(xm, t))) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# grad_loss, out=, in place, forward_backward
# --------------------------------------------------------------------------------------------


def test_grad_loss_scalar_and_per_row(rng):
    x, t = _ce_case(rng, {})
    layer = xent_fast.CrossEntropyLoss()
    layer(x, t)
    assert_close(layer.backward(2.5), 2.5 * ref.cross_entropy_and_grad(x, t)[1], 1e-12, 1e-15)

    g = rng.uniform(-1, 1, size=t.shape)
    layer = xent_fast.CrossEntropyLoss(reduction="none")
    layer(x, t)
    assert_close(layer.backward(g), ref.cross_entropy_and_grad(x, t, reduction="none",
                                                               grad_loss=g)[1], 1e-12, 1e-15)
    with pytest.raises(ValueError, match="grad_loss"):
        layer.backward(np.ones(t.size + 1))
    # a rejected grad_loss leaves the layer usable
    assert_close(layer.backward(g), ref.cross_entropy_and_grad(x, t, reduction="none",
                                                               grad_loss=g)[1], 1e-12, 1e-15)


def test_backward_into_out(rng):
    x, t = _ce_case(rng, {})
    x0 = x.copy()
    layer = xent_fast.CrossEntropyLoss(label_smoothing=0.1)
    layer(x, t)
    out = np.full_like(x, np.nan)
    grad = layer.backward(out=out)
    assert grad is out
    assert_close(out, ref.cross_entropy_and_grad(x0, t, label_smoothing=0.1)[1], 1e-11, 1e-14)
    np.testing.assert_array_equal(x, x0)  # the logits are untouched
    # out= does not touch the saved state: a second backward still works
    assert_close(layer.backward(), out, 1e-15, 0)
    with pytest.raises(ValueError, match="out"):
        layer.backward(out=np.empty((2, 2)))
    with pytest.raises(ValueError, match="out"):
        layer.backward(out=np.empty_like(x, dtype=np.float32))


def test_backward_in_place_overwrites_the_logits(rng):
    x, t = _ce_case(rng, {"reduction": "sum"})
    expected = ref.cross_entropy_and_grad(x, t, reduction="sum")[1]
    layer = xent_fast.CrossEntropyLoss(reduction="sum")
    layer(x, t)
    grad = layer.backward(inplace=True)
    assert grad is x
    assert_close(x, expected, 1e-11, 1e-14)
    # the logits are gone: a second backward must not silently differentiate the gradient
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward()
    # out=logits is the same thing
    x, t = _ce_case(rng, {})
    layer(x, t)
    assert layer.backward(out=x) is x
    with pytest.raises(RuntimeError):
        layer.backward()
    with pytest.raises(ValueError, match="inplace"):
        layer(x, t)
        layer.backward(out=np.empty_like(x), inplace=True)


def test_forward_backward_is_forward_then_backward(rng):
    x, t = _ce_case(rng, {})
    layer = xent_fast.CrossEntropyLoss(eps=1e-3, label_smoothing=0.05)
    loss, grad = layer.forward_backward(x, t)
    assert loss == layer.forward(x, t)
    np.testing.assert_array_equal(grad, layer.backward())
    # it leaves the state for another backward, with a grad_loss
    layer.forward_backward(x, t)
    assert_close(layer.backward(3.0), 3.0 * grad, 1e-15, 0)
    # in place
    x2 = x.copy()
    loss2, grad2 = layer.forward_backward(x2, t, inplace=True)
    assert grad2 is x2 and loss2 == loss
    np.testing.assert_array_equal(grad2, grad)
    with pytest.raises(RuntimeError):
        layer.backward()


def test_array_likes_and_integer_logits():
    layer = xent_fast.CrossEntropyLoss(reduction="none")
    probs = [[0.7, 0.1, 0.2], [0.1, 0.5, 0.4], [0.02, 0.9, 0.08]]
    loss = layer(np.log(probs).tolist(), [0, 1, 1])
    np.testing.assert_allclose(loss, [0.35667494393873245, 0.6931471805599453,
                                      0.10536051565782628], rtol=1e-12)
    grad = layer.backward(np.ones(3))
    np.testing.assert_allclose(grad, np.array(probs) - np.eye(3)[[0, 1, 1]], atol=1e-12)
    # integer logits are computed in float64 (the package's dtype rule); the gradient too
    layer = xent_fast.CrossEntropyLoss()
    loss = layer([[1, 2, 3]], [2])
    assert loss.dtype == np.float64
    assert layer.backward().dtype == np.float64


# --------------------------------------------------------------------------------------------
# state: errors, repeated cycles, what is kept
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", list(LAYERS), ids=lambda c: c.__name__)
def test_backward_before_forward_is_an_error(cls):
    with pytest.raises(RuntimeError, match=r"backward\(\) needs a forward\(\)"):
        cls().backward()


def test_failed_forward_clears_the_state(rng):
    x, t = _ce_case(rng, {})
    layer = xent_fast.CrossEntropyLoss()
    layer(x, t)
    bad = t.copy()
    bad[3] = 99
    with pytest.raises(ValueError, match="99"):
        layer(x, bad)
    with pytest.raises(RuntimeError):
        layer.backward()


def test_bad_options_are_reported_by_forward():
    layer = xent_fast.CrossEntropyLoss(reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        layer(np.zeros((2, 3)), [0, 1])
    with pytest.raises(TypeError):
        xent_fast.CrossEntropyLoss(dim=1)
    with pytest.raises(TypeError):
        xent_fast.CrossEntropyLoss("mean")  # options are keyword-only


def test_repeated_cycles_and_changed_options(rng):
    layer = xent_fast.CrossEntropyLoss(label_smoothing=0.1)
    for step in range(5):
        x, t = _ce_case(rng, {}, shape=(3 + step, 5))
        loss = layer(x, t)
        exp_loss, exp_grad = ref.cross_entropy_and_grad(x, t, label_smoothing=0.1)
        assert_close(loss, exp_loss, 1e-11, 1e-13)
        g1 = layer.backward()
        g2 = layer.backward()  # backward may be repeated; it differentiates the same forward
        np.testing.assert_array_equal(g1, g2)
        assert_close(g1, exp_grad, 1e-11, 1e-14)
    # options are attributes, read at every call (as torch.nn's)
    layer.reduction = "sum"
    layer.label_smoothing = 0.0
    assert_close(layer(x, t), ref.cross_entropy(x, t, reduction="sum"), 1e-11, 1e-13)
    assert_close(layer.backward(), ref.cross_entropy_and_grad(x, t, reduction="sum")[1],
                 1e-11, 1e-14)
    assert "reduction='sum'" in repr(layer)


def test_layer_keeps_references_not_copies(rng):
    """The documented contract: backward differentiates the arrays as they are at backward."""
    x, t = _ce_case(rng, {})
    layer = xent_fast.CrossEntropyLoss()
    layer(x, t)
    x *= 2.0  # modified in place after forward
    assert_close(layer.backward(), ref.cross_entropy_and_grad(x, t)[1], 1e-11, 1e-14)


def test_memory_kept_and_allocated(rng):
    """forward allocates and keeps O(N); backward allocates the gradient only, in place nothing."""
    N, C = 2000, 500
    x = rng.standard_normal((N, C))
    t = rng.integers(0, C, size=N)
    nbytes = x.nbytes
    layer = xent_fast.CrossEntropyLoss()
    layer(x, t)  # warm up (imports, caches)
    layer.backward()

    def peak_and_kept(f):
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            result = f()
            current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return peak - before, current - before, result

    peak, kept, _ = peak_and_kept(lambda: layer(x, t))
    assert peak < 0.05 * nbytes and kept < 0.01 * nbytes, (peak, kept, nbytes)
    peak, kept, grad = peak_and_kept(lambda: layer.backward())
    assert nbytes <= peak < 1.05 * nbytes, (peak, nbytes)  # the gradient itself, nothing else
    del grad
    out = np.empty_like(x)
    peak, _, _ = peak_and_kept(lambda: layer.backward(out=out))
    assert peak < 0.05 * nbytes, (peak, nbytes)
    peak, _, _ = peak_and_kept(lambda: layer.backward(inplace=True))
    assert peak < 0.05 * nbytes, (peak, nbytes)
