"""Bad input (docs/DESIGN.md, "Bad input and memory layouts"): every public function raises
ValueError or TypeError whose message names the argument (for a bad target: its value and
position), before any output is written; never a crash, a hang or a silently wrong answer."""

import re

import numpy as np
import pytest

from _helpers import (ALL_NAMES, AXIS_NAMES, FUNCS, GRAD_NAMES, INDEX_NAMES, LOSS_NAMES, OUT_NAMES,
                      assert_same_bits, impl, make_case, ref)

SENTINEL = 12345.0


def _call(name, args, kw):
    return getattr(impl, name)(*args, **kw)


def _base(name, rng, shape=(4, 3), axis=-1, dtype=np.float64):
    return make_case(name, rng, shape, axis=axis, dtype=dtype)


def _raises(exc, match, name, args, kw):
    with pytest.raises(exc, match=match) as info:
        _call(name, args, kw)
    return str(info.value)


# ----------------------------------------------------------------------------------------------
# targets
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [3, 7, -1, -2, -101, 2**40])
@pytest.mark.parametrize("name", INDEX_NAMES)
def test_target_out_of_range_names_value_and_position(name, bad, rng):
    (x, t), kw = _base(name, rng, (6, 3))
    t = t.copy()
    t[4] = bad
    msg = _raises(ValueError, "target", name, (x, t), kw)
    assert str(bad) in msg, msg
    assert re.search(r"(?<![\d.])4(?![\d.])", msg), "position 4 not in %r" % msg


@pytest.mark.parametrize("name", INDEX_NAMES)
def test_target_out_of_range_nd_position(name, rng):
    (x, t), kw = _base(name, rng, (2, 5, 3), axis=1)  # targets shape (2, 3)
    t = t.copy()
    t[1, 2] = 9
    msg = _raises(ValueError, "target", name, (x, t), kw)
    assert "9" in msg
    # the position as a multi-index (1, 2) or as the flat index 5
    assert re.search(r"1\D{1,4}2", msg) or re.search(r"(?<![\d.])5(?![\d.])", msg), msg


@pytest.mark.parametrize("name", INDEX_NAMES)
def test_target_out_of_range_reports_the_first(name, rng):
    N = 200_000
    (x, t), kw = _base(name, rng, (N, 3))
    t = t.copy()
    t[123] = 77
    t[N - 5] = 88
    msg = _raises(ValueError, "target", name, (x, t), kw)
    assert "77" in msg and "123" in msg, msg


@pytest.mark.parametrize("dtype, bad", [(np.uint64, 2**64 - 1), (np.uint64, 2**63), (np.uint32, 2**32 - 1),
                                        (np.uint8, 255), (np.int8, -1), (np.int64, -(2**63))])
@pytest.mark.parametrize("name", ["cross_entropy", "cross_entropy_and_grad"])
def test_target_out_of_range_any_integer_dtype(name, dtype, bad, rng):
    """Large unsigned values must not wrap around to negative numbers (or to ignore_index)."""
    (x, t), kw = _base(name, rng, (4, 3))
    t = t.astype(dtype)
    t[2] = bad
    msg = _raises(ValueError, "target", name, (x, t), kw)
    assert str(bad) in msg, msg
    if dtype == np.uint64:  # 2**64 - 1 is not -1 (ignore_index=-1)
        with pytest.raises(ValueError, match="target"):
            _call(name, (x, t), dict(kw, ignore_index=-1))


@pytest.mark.parametrize("name", INDEX_NAMES)
def test_target_equal_to_custom_ignore_index_is_fine(name, rng):
    (x, t), kw = _base(name, rng, (4, 3))
    t = t.copy()
    t[1] = -5
    _call(name, (x, t), dict(kw, ignore_index=-5))
    t[1] = 99
    _call(name, (x, t), dict(kw, ignore_index=99))
    with pytest.raises(ValueError, match="target"):
        _call(name, (x, t), dict(kw, ignore_index=-5))


@pytest.mark.parametrize("name", [n for n in GRAD_NAMES if FUNCS[n].index_targets])
def test_bad_target_leaves_out_untouched(name, rng):
    for N in (6, 100_000):
        (x, t), kw = _base(name, rng, (N, 5))
        t = t.copy()
        t[N - 2] = 5
        out = np.full(x.shape, SENTINEL)
        with pytest.raises(ValueError, match="target"):
            _call(name, (x, t), dict(kw, out=out))
        assert np.all(out == SENTINEL), "out= was written before the bad target was reported"
        # in place: the logits must survive too
        xi = x.copy()
        with pytest.raises(ValueError, match="target"):
            _call(name, (xi, t), dict(kw, out=xi))
        assert_same_bits(xi, x, "out=logits was overwritten before the bad target was reported")


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_targets_of_the_wrong_shape(name, rng):
    (x, t), kw = _base(name, rng, (4, 3))
    fn = FUNCS[name]
    bad_shapes = [(5,), (4, 1), (3, 4), (4, 3, 1), ()]
    if fn.family in ("bce", "bcel"):
        bad_shapes = [(4,), (3,), (4, 4), (1, 3), (4, 3, 1)]
    for shape in bad_shapes:
        bad = np.zeros(shape, dtype=np.int64 if fn.index_targets else np.float64)
        _raises(ValueError, "targets", name, (x, bad), kw)


@pytest.mark.parametrize("name", INDEX_NAMES)
@pytest.mark.parametrize("tdtype", [np.float64, np.float32, np.float16, bool])
def test_non_integer_index_targets_are_a_type_error(name, tdtype, rng):
    (x, t), kw = _base(name, rng, (4, 3))
    _raises(TypeError, "targets", name, (x, t.astype(tdtype)), kw)
    if tdtype is np.float64:
        _raises(TypeError, "targets", name, (x, [0.0, 1.0, 2.0, 1.0]), kw)


@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("bad", ["strings", "object", "complex"])
def test_non_numeric_targets(name, bad, rng):
    (x, t), kw = _base(name, rng, (4, 3))
    fn = FUNCS[name]
    shape = np.shape(t)
    if bad == "strings":
        tb = np.full(shape, "a")
    elif bad == "object":
        tb = np.empty(shape, dtype=object)
        tb[...] = 1
    else:
        tb = np.ones(shape, dtype=complex)
    _raises((TypeError, ValueError) if bad == "strings" and fn.index_targets else TypeError,
            "targets", name, (x, tb), kw)


# ----------------------------------------------------------------------------------------------
# the first argument
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("bad", ["strings", "object", "complex", "None", "dict"])
def test_non_numeric_first_argument(name, bad, rng):
    args, kw = _base(name, rng, (4, 3))
    x = args[0]
    xb = {"strings": np.full(x.shape, "1.5"), "complex": x.astype(complex),
          "object": x.astype(object), "None": None, "dict": {"a": 1}}[bad]
    _raises(TypeError, FUNCS[name].first, name, (xb,) + tuple(args[1:]), kw)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_python_list_of_strings(name, rng):
    args, kw = _base(name, rng, (2, 3))
    _raises(TypeError, FUNCS[name].first, name, ([["a", "b", "c"], ["d", "e", "f"]],) +
            tuple(args[1:]), kw)


@pytest.mark.parametrize("name", [n for n in LOSS_NAMES if FUNCS[n].has("axis")])
@pytest.mark.parametrize("shape", [(4, 0), (0, 0), (3, 0, 2)])
def test_empty_class_axis(name, shape, rng):
    """Losses need a class (softmax, log_softmax and logsumexp of an empty axis: test_softmax)."""
    fn = FUNCS[name]
    axis = 1
    x = np.zeros(shape)
    args = (x,)
    if fn.is_loss:
        args = (x, np.zeros(tuple(s for i, s in enumerate(shape) if i != axis), dtype=np.int64))
    _raises(ValueError, fn.first + "|class|axis", name, args, {"axis": axis})


@pytest.mark.parametrize("name", [n for n in AXIS_NAMES if FUNCS[n].is_loss])
def test_zero_dimensional_input(name, rng):
    """A 0-d input has no class axis: losses refuse it (the softmax family takes it as a row of
    one value, as NumPy and PyTorch: test_softmax)."""
    fn = FUNCS[name]
    args = (np.float64(1.5), np.int64(0))
    with pytest.raises((ValueError, TypeError)) as info:
        _call(name, args, {})
    if impl is not ref:  # the package's message names the argument and the problem
        assert re.match(f"{fn.first} must have at least one dimension", str(info.value))


# ----------------------------------------------------------------------------------------------
# options
# ----------------------------------------------------------------------------------------------

def _names_with(opt):
    return [n for n in ALL_NAMES if FUNCS[n].has(opt)]


@pytest.mark.parametrize("name", _names_with("axis"))
@pytest.mark.parametrize("axis, exc", [(2, ValueError), (-3, ValueError), (100, ValueError),
                                       (1.5, TypeError), ("1", TypeError)])
def test_axis_out_of_range_or_wrong_type(name, axis, exc, rng):
    args, kw = _base(name, rng, (4, 3))
    kw["axis"] = axis
    _raises(exc, "axis", name, args, kw)


@pytest.mark.parametrize("name", _names_with("reduction"))
@pytest.mark.parametrize("reduction", ["avg", "", "means", None, 1])
def test_unknown_reduction(name, reduction, rng):
    args, kw = _base(name, rng, (4, 3))
    kw["reduction"] = reduction
    _raises((ValueError, TypeError), "reduction", name, args, kw)


@pytest.mark.parametrize("name", _names_with("label_smoothing"))
@pytest.mark.parametrize("value", [-0.1, 1.0001, 2.0, float("nan"), float("inf")])
def test_label_smoothing_outside_unit_interval(name, value, rng):
    args, kw = _base(name, rng, (4, 3))
    _raises(ValueError, "label_smoothing", name, args, dict(kw, label_smoothing=value))


@pytest.mark.parametrize("name", _names_with("eps"))
@pytest.mark.parametrize("value", [-1e-9, -0.1, 0.5, 0.7, 1.0, float("nan"), float("inf")])
def test_eps_outside_range(name, value, rng):
    args, kw = _base(name, rng, (4, 3))
    _raises(ValueError, "eps", name, args, dict(kw, eps=value))


_FLOAT_OPTS = [(n, o) for o in ("eps", "label_smoothing") for n in _names_with(o)]


@pytest.mark.parametrize("value", ["small", "1e-7", b"0.1", [0.1], None])
@pytest.mark.parametrize("name, opt", _FLOAT_OPTS)
def test_non_numeric_options_are_type_errors(name, opt, value, rng):
    """A string (even one that reads as a number), bytes, a list or None is the wrong type."""
    args, kw = _base(name, rng, (4, 3))
    _raises(TypeError, opt, name, args, dict(kw, **{opt: value}))


@pytest.mark.parametrize("name", _names_with("weight"))
def test_weight_of_the_wrong_length(name, rng):
    args, kw = _base(name, rng, (4, 3))
    fn = FUNCS[name]
    if fn.family in ("bce", "bcel"):
        bad = [np.ones(4), np.ones((2, 4, 3)), np.ones((4, 2)), np.ones(2)]
    else:
        bad = [np.ones(2), np.ones(4), np.ones((3, 1)), np.ones((1, 3)), [1.0, 2.0], np.ones(0)]
    for w in bad:
        _raises(ValueError, "weight", name, args, dict(kw, weight=w))
    _raises(TypeError, "weight", name, args, dict(kw, weight=np.array(["a", "b", "c"])))


@pytest.mark.parametrize("name", _names_with("pos_weight"))
def test_pos_weight_of_the_wrong_length(name, rng):
    args, kw = _base(name, rng, (4, 3))
    for pw in (np.ones(4), np.ones(2), np.ones((2, 4, 3))):
        _raises(ValueError, "pos_weight", name, args, dict(kw, pos_weight=pw))


@pytest.mark.parametrize("name", _names_with("ignore_index"))
@pytest.mark.parametrize("value", [1.5, "a"])
def test_ignore_index_must_be_an_integer(name, value, rng):
    args, kw = _base(name, rng, (4, 3))
    _raises(TypeError, "ignore_index", name, args, dict(kw, ignore_index=value))


# ----------------------------------------------------------------------------------------------
# out= and grad_loss
# ----------------------------------------------------------------------------------------------

def _bad_outs(x):
    ro = np.zeros(x.shape)
    ro.setflags(write=False)
    return [
        ("wrong shape", ValueError, np.zeros(x.shape[:-1] + (x.shape[-1] + 1,))),
        ("transposed shape", ValueError, np.zeros(x.shape[::-1])),
        ("flat", ValueError, np.zeros(x.size)),
        ("float32 for float64", (ValueError, TypeError), np.zeros(x.shape, dtype=np.float32)),
        ("int", (ValueError, TypeError), np.zeros(x.shape, dtype=np.int64)),
        ("read-only", ValueError, ro),
        ("broadcast", ValueError, np.broadcast_to(np.zeros(x.shape[-1]), x.shape)),
        ("list", (TypeError, ValueError), np.zeros(x.shape).tolist()),
    ]


@pytest.mark.parametrize("name", OUT_NAMES)
@pytest.mark.parametrize("which", range(8))
def test_bad_out(name, which, rng):
    args, kw = _base(name, rng, (4, 3))
    label, exc, out = _bad_outs(args[0])[which]
    snap = np.array(out, copy=True) if isinstance(out, np.ndarray) else None
    _raises(exc, "out", name, args, dict(kw, out=out))
    if snap is not None:
        assert_same_bits(out, snap, "a rejected out= was written (%s)" % label)


@pytest.mark.parametrize("name", OUT_NAMES)
def test_float32_out_for_float32_input_is_fine_but_not_float64(name, rng):
    args, kw = _base(name, rng, (4, 3), dtype=np.float32)
    res = _call(name, args, dict(kw, out=np.zeros(args[0].shape, dtype=np.float32)))
    assert res is not None
    _raises((ValueError, TypeError), "out", name, args, dict(kw, out=np.zeros(args[0].shape)))


@pytest.mark.parametrize("name", GRAD_NAMES)
def test_bad_grad_loss(name, rng):
    args, kw = _base(name, rng, (4, 3))
    fn = FUNCS[name]
    loss_shape = (4,) if fn.family in ("ce", "cat") else (4, 3)
    for red in ("mean", "sum"):
        for gl in (np.ones(4), np.ones((4, 3)), np.ones(2)):
            _raises(ValueError, "grad_loss", name, args, dict(kw, reduction=red, grad_loss=gl))
    for gl in (np.ones(loss_shape[:-1] + (loss_shape[-1] + 1,)), np.ones(loss_shape + (2,)),
               np.ones((5,) + loss_shape)):
        _raises(ValueError, "grad_loss", name, args, dict(kw, reduction="none", grad_loss=gl))
    _raises(TypeError, "grad_loss", name, args, dict(kw, grad_loss="one"))
    out = np.full(args[0].shape, SENTINEL)
    _raises(ValueError, "grad_loss", name, args, dict(kw, grad_loss=np.ones(7), out=out))
    assert np.all(out == SENTINEL)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_unknown_keyword_and_positional_options(name, rng):
    args, kw = _base(name, rng, (4, 3))
    with pytest.raises(TypeError):
        _call(name, args, dict(kw, not_an_option=1))
    if FUNCS[name].is_loss:  # options are keyword-only
        with pytest.raises(TypeError):
            _call(name, args + (-1,), {})


@pytest.mark.parametrize("name", AXIS_NAMES)
def test_errors_do_not_depend_on_num_threads(name, rng):
    args, kw = _base(name, rng, (50, 3))
    for nt in (1, 2, 4):
        _raises(ValueError, "axis", name, args, dict(kw, axis=5, num_threads=nt))


# ----------------------------------------------------------------------------------------------
# None and ragged nested sequences: messages that name the argument (issue 14.7)
# ----------------------------------------------------------------------------------------------

@pytest.mark.compiled_only  # the reference's messages are NumPy's own here
@pytest.mark.parametrize("name", ALL_NAMES)
def test_none_or_ragged_first_argument_is_named(name, rng):
    args, kw = _base(name, rng, (2, 3))
    first = FUNCS[name].first
    _raises(TypeError, f"^{first} .*None", name, (None,) + tuple(args[1:]), kw)
    _raises(ValueError, f"^{first} .*ragged", name, ([[1.0, 2.0, 3.0], [1.0]],) + tuple(args[1:]),
            kw)


@pytest.mark.compiled_only
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_none_or_ragged_targets_are_named(name, rng):
    (x, t), kw = _base(name, rng, (2, 3))
    _raises(TypeError, "^targets .*None", name, (x, None), kw)
    _raises(ValueError, "^targets .*ragged", name, (x, [[0.5, 0.5, 0.0], [1.0]]), kw)


@pytest.mark.compiled_only
@pytest.mark.parametrize("name, option, value", [
    ("cross_entropy", "weight", [[1.0], [1.0, 2.0]]),
    ("binary_cross_entropy_with_logits", "pos_weight", [[1.0], [1.0, 2.0]]),
    ("cross_entropy_and_grad", "grad_loss", [[1.0], [1.0, 2.0]]),
])
def test_ragged_options_are_named(name, option, value, rng):
    args, kw = _base(name, rng, (2, 3))
    _raises(ValueError, f"^{option} .*ragged", name, args, dict(kw, **{option: value}))


@pytest.mark.compiled_only
def test_layer_names_its_arguments():
    loss_fn = impl.CrossEntropyLoss()
    with pytest.raises(TypeError, match="^input .*None"):
        loss_fn(None, [0])
    with pytest.raises(ValueError, match="^input .*ragged"):
        loss_fn([[1.0, 2.0], [1.0]], [0, 0])
    with pytest.raises(TypeError, match="^targets .*None"):
        loss_fn.forward_backward([[1.0, 2.0]], None)


# ----------------------------------------------------------------------------------------------
# probability and binary targets outside [0, 1]: accepted unchecked, as PyTorch does; the formula
# applies to them as written (issue 14.7)
# ----------------------------------------------------------------------------------------------

_ODD_PROBS = np.array([[2.0, -1.0, 0.0], [0.3, 0.3, 0.3], [-0.5, 1.5, 1.0]])


@pytest.mark.parametrize("name", ["cross_entropy", "cross_entropy_and_grad",
                                  "categorical_cross_entropy",
                                  "categorical_cross_entropy_and_grad"])
def test_probability_targets_outside_unit_interval_follow_the_formula(name, rng):
    from _helpers import ref

    x = rng.standard_normal((3, 3))
    if FUNCS[name].family == "cat":
        x = ref.softmax(x)
        logp = np.log(np.clip(x, 1e-7, 1 - 1e-7))
    else:
        logp = ref.log_softmax(x)
    got = _call(name, (x, _ODD_PROBS), {"reduction": "none"})
    exp = getattr(ref, name)(x, _ODD_PROBS, reduction="none")
    loss = got[0] if FUNCS[name].grad else got
    np.testing.assert_allclose(loss, -(_ODD_PROBS * logp).sum(-1), rtol=1e-12, atol=1e-14)
    if FUNCS[name].grad:
        np.testing.assert_allclose(got[1], exp[1], rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(exp[0], loss, rtol=1e-12)


_ODD_BINARY = np.array([1.5, -0.5, 2.0, -3.0])


@pytest.mark.parametrize("name", ["binary_cross_entropy", "binary_cross_entropy_and_grad",
                                  "binary_cross_entropy_with_logits",
                                  "binary_cross_entropy_with_logits_and_grad"])
def test_binary_targets_outside_unit_interval_follow_the_formula(name, rng):
    from _helpers import ref

    y = _ODD_BINARY
    if FUNCS[name].family == "bce":
        x = np.array([0.3, 0.8, 0.5, 0.1])
        formula = -(y * np.log(x) + (1 - y) * np.log1p(-x))
    else:
        x = np.array([0.7, -2.0, 3.0, -0.1])
        formula = (1 - y) * x + np.log1p(np.exp(-x))  # -y log sigmoid(x) - (1-y) log sigmoid(-x)
    got = _call(name, (x, y), {"reduction": "none"})
    exp = getattr(ref, name)(x, y, reduction="none")
    loss = got[0] if FUNCS[name].grad else got
    np.testing.assert_allclose(loss, formula, rtol=1e-12)
    if FUNCS[name].grad:
        np.testing.assert_allclose(got[1], exp[1], rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(exp[0], loss, rtol=1e-12)
