"""Shared helpers for the xent_fast test suite (not a test module).

* ``impl`` is the module under test: ``xent_fast`` by default, or ``xent_fast.reference`` when the
  environment variable ``XENT_TEST_IMPL=reference`` is set (a self-check of the tests: the reference
  must pass every semantic test; thread/dispatch/GIL/hardening tests are skipped for it).
* ``ref`` is always ``xent_fast.reference``: expected values come from it, from finite differences, or
  from the worked numbers (docs/DESIGN.md, "Semantics and worked numbers"), never from the code
  under test.
* Tolerances: float64 compared with rtol 1e-11 plus an absolute floor proportional to the magnitude
  of the inputs (cancellation near zero); float32 compared against the float64 truth of the same
  float32 inputs with rtol 1e-5 plus an absolute floor of a few float32 ulps of the inputs.
"""

import importlib.util
import os
import pathlib
import subprocess
import sys
from dataclasses import dataclass, field

import numpy as np

IMPL_NAME = os.environ.get("XENT_TEST_IMPL", "xent_fast").strip().lower()
if IMPL_NAME not in ("xent_fast", "reference", "ref"):
    raise RuntimeError("XENT_TEST_IMPL must be 'xent_fast' or 'reference', not %r" % IMPL_NAME)
USING_REFERENCE = IMPL_NAME in ("reference", "ref")


def _load_reference_standalone():
    """Load xent_fast/reference.py from its file when the package itself does not import."""
    spec = importlib.util.find_spec("xent_fast")
    candidates = []
    if spec is not None and spec.submodule_search_locations:
        candidates += [pathlib.Path(p) / "reference.py" for p in spec.submodule_search_locations]
    candidates.append(pathlib.Path(__file__).resolve().parent.parent / "xent_fast" / "reference.py")
    for path in candidates:
        if path.is_file():
            mspec = importlib.util.spec_from_file_location("_xent_fast_reference_standalone", path)
            module = importlib.util.module_from_spec(mspec)
            sys.modules[mspec.name] = module
            mspec.loader.exec_module(module)
            return module
    raise ImportError("cannot find xent_fast/reference.py")


def _load():
    try:
        import xent_fast
        from xent_fast import reference
    except ImportError:
        if not USING_REFERENCE:
            raise
        reference = _load_reference_standalone()
        return reference, reference
    return (reference if USING_REFERENCE else xent_fast), reference


impl, ref = _load()

FLOATS = (np.float32, np.float64)

# --------------------------------------------------------------------------------------------
# function table: which options each public function takes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fn:
    name: str
    first: str  # name of the first (array) argument
    family: str  # ce, nll, cat, bce, bcel, lsm, sm, lse
    grad: bool = False
    options: frozenset = field(default_factory=frozenset)

    def __call__(self, module, *args, **kwargs):
        return getattr(module, self.name)(*args, **kwargs)

    def has(self, opt):
        return opt in self.options

    @property
    def index_targets(self):
        return self.family in ("ce", "nll", "cat")

    @property
    def is_loss(self):
        return self.family not in ("lsm", "sm", "lse")


_CE = {"axis", "weight", "ignore_index", "reduction", "label_smoothing", "eps", "num_threads"}
_CAT = _CE
_NLL = {"axis", "weight", "ignore_index", "reduction", "num_threads"}
_BCE = {"eps", "weight", "reduction", "num_threads"}
_BCEL = {"weight", "pos_weight", "reduction", "num_threads"}
_G = {"grad_loss", "out"}

FUNCS = {
    f.name: f
    for f in [
        Fn("cross_entropy", "logits", "ce", options=frozenset(_CE)),
        Fn("cross_entropy_and_grad", "logits", "ce", True, frozenset(_CE | _G)),
        Fn("nll_loss", "log_probs", "nll", options=frozenset(_NLL)),
        Fn("log_softmax", "x", "lsm", options=frozenset({"axis", "out", "num_threads"})),
        Fn("softmax", "x", "sm", options=frozenset({"axis", "out", "num_threads"})),
        Fn("logsumexp", "x", "lse", options=frozenset({"axis", "num_threads"})),
        Fn("categorical_cross_entropy", "probs", "cat", options=frozenset(_CAT)),
        Fn("categorical_cross_entropy_and_grad", "probs", "cat", True, frozenset(_CAT | _G)),
        Fn("binary_cross_entropy", "probs", "bce", options=frozenset(_BCE)),
        Fn("binary_cross_entropy_and_grad", "probs", "bce", True, frozenset(_BCE | _G)),
        Fn("binary_cross_entropy_with_logits", "logits", "bcel", options=frozenset(_BCEL)),
        Fn("binary_cross_entropy_with_logits_and_grad", "logits", "bcel", True,
           frozenset(_BCEL | _G)),
    ]
}
ALL_NAMES = sorted(FUNCS)
LOSS_NAMES = [n for n in ALL_NAMES if FUNCS[n].is_loss]
GRAD_NAMES = [n for n in ALL_NAMES if FUNCS[n].grad]
INDEX_NAMES = [n for n in ALL_NAMES if FUNCS[n].index_targets]
OUT_NAMES = [n for n in ALL_NAMES if FUNCS[n].has("out")]
AXIS_NAMES = [n for n in ALL_NAMES if FUNCS[n].has("axis")]


# --------------------------------------------------------------------------------------------
# building valid inputs
# --------------------------------------------------------------------------------------------


def reduced_shape(shape, axis):
    shape = list(shape)
    del shape[axis % len(shape)]
    return tuple(shape)


def make_first(fn, rng, shape, dtype=np.float64, scale=2.0):
    """A valid first argument for ``fn`` (logits, log-probabilities or probabilities)."""
    if fn.family in ("cat", "bce"):
        x = rng.uniform(0.0, 1.0, size=shape)
    elif fn.family == "nll":
        x = -rng.exponential(2.0, size=shape)
    else:
        x = rng.standard_normal(size=shape) * scale
    return np.asarray(x, dtype=dtype)


def make_index_targets(rng, shape, axis, dtype=np.int64, ignore_index=None, p_ignore=0.0):
    C = shape[axis % len(shape)]
    t = rng.integers(0, C, size=reduced_shape(shape, axis))
    if ignore_index is not None and p_ignore > 0:
        t = np.where(rng.uniform(size=t.shape) < p_ignore, ignore_index, t)
    return np.asarray(t, dtype=dtype)


def make_prob_targets(rng, shape, axis, dtype=np.float64, kind="dirichlet"):
    ax = axis % len(shape)
    if kind == "onehot":
        C = shape[ax]
        idx = rng.integers(0, C, size=reduced_shape(shape, axis))
        y = np.zeros(shape)
        np.put_along_axis(y, np.expand_dims(idx, ax), 1.0, axis=ax)
    elif kind == "dirichlet":
        g = rng.exponential(1.0, size=shape)
        s = g.sum(axis=ax, keepdims=True)
        y = np.divide(g, s, out=np.zeros_like(g), where=s > 0)
    else:  # "uniform": soft, unnormalised
        y = rng.uniform(0.0, 1.0, size=shape)
    return np.asarray(y, dtype=dtype)


def make_case(fn, rng, shape=(5, 7), axis=-1, dtype=np.float64, target_kind="index", **opts):
    """(args, kwargs) of a valid call of ``fn``; ``opts`` are added to kwargs unchanged."""
    if isinstance(fn, str):
        fn = FUNCS[fn]
    x = make_first(fn, rng, shape, dtype)
    kwargs = dict(opts)
    if fn.family in ("lsm", "sm", "lse"):
        kwargs.setdefault("axis", axis)
        return (x,), kwargs
    if fn.family in ("bce", "bcel"):
        y = rng.uniform(0.0, 1.0, size=shape).astype(dtype)
        return (x, y), kwargs
    kwargs.setdefault("axis", axis)
    if target_kind == "index" or fn.family == "nll":
        t = make_index_targets(rng, shape, axis)
    else:
        t = make_prob_targets(rng, shape, axis, dtype)
    return (x, t), kwargs


# --------------------------------------------------------------------------------------------
# comparisons
# --------------------------------------------------------------------------------------------


def compute_dtype(dtype):
    dtype = np.dtype(dtype)
    return dtype if dtype in (np.dtype(np.float32), np.dtype(np.float64)) else np.dtype(np.float64)


def input_scale(*arrays):
    """1 + the largest finite magnitude among the arrays (the size of intermediate values)."""
    m = 0.0
    for a in arrays:
        if a is None:
            continue
        a = np.asarray(a, dtype=np.float64)
        f = np.abs(a[np.isfinite(a)])
        if f.size:
            m = max(m, float(f.max()))
    return 1.0 + m


def tolerances(dtype, scale=1.0):
    """(rtol, atol) for results of ``dtype`` whose intermediates have magnitude ``scale``."""
    if np.dtype(dtype) == np.float32:
        return 1e-5, 2e-6 * scale
    return 1e-11, 1e-13 * scale


def tight_tolerances(dtype, scale=1.0):
    """(rtol, atol) for two computations of the same maths by the code under test (layouts)."""
    if np.dtype(dtype) == np.float32:
        return 2e-6, 5e-7 * scale
    return 1e-13, 1e-15 * scale


def assert_close(actual, expected, rtol, atol, err_msg=""):
    """allclose with NaN == NaN and infinities equal only to the same infinity; shapes must agree."""
    a = np.asarray(actual)
    e = np.asarray(expected)
    assert a.shape == e.shape, "shape %s != expected %s. %s" % (a.shape, e.shape, err_msg)
    np.testing.assert_allclose(a.astype(np.float64), e.astype(np.float64), rtol=rtol, atol=atol,
                               equal_nan=True, err_msg=err_msg)


def assert_same_bits(a, b, err_msg=""):
    a = np.asarray(a)
    b = np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, err_msg
    assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes(), (
        "results differ bitwise: %s\n%r\n%r" % (err_msg, a, b))


def reduction_atol(rows, reduction, atol_row, rtol, total=None, mean=None):
    """Absolute tolerance for a reduced value given the expected per-row values ``rows``.

    Each row may be off by atol_row + rtol*|row|; a sum of them by the sum of those; a mean by the
    same divided by its denominator (derived from the expected sum and mean).
    """
    r = np.asarray(rows, dtype=np.float64)
    r = np.abs(r[np.isfinite(r)])
    tol = atol_row * max(1, r.size) + rtol * float(r.sum())
    if reduction == "mean" and total is not None and mean is not None:
        if np.isfinite(total) and np.isfinite(mean) and total != 0 and mean != 0:
            tol *= abs(mean / total)
    return tol


def check_loss_type(loss, reduction, dtype, shape):
    """Result type rules of the contract."""
    dtype = compute_dtype(dtype)
    if reduction == "none":
        assert isinstance(loss, (np.ndarray, np.generic)), type(loss)
        assert np.shape(loss) == tuple(shape), (np.shape(loss), shape)
        assert np.asarray(loss).dtype == dtype, (np.asarray(loss).dtype, dtype)
        if len(shape):
            assert isinstance(loss, np.ndarray), type(loss)
    else:
        assert isinstance(loss, np.generic) or (isinstance(loss, np.ndarray) and loss.ndim == 0), \
            type(loss)
        assert np.asarray(loss).dtype == dtype, (np.asarray(loss).dtype, dtype)


def to_truth(a, dtype):
    """A float-valued input as the code under test sees it (converted to the compute dtype of
    ``dtype``), upcast to float64: the input of the float64 truth."""
    if a is None:
        return None
    return np.asarray(a).astype(compute_dtype(dtype)).astype(np.float64)


def _fwd_name(name):
    return name[: -len("_and_grad")] if name.endswith("_and_grad") else name


def _no_grad_kwargs(kwargs):
    return {k: v for k, v in kwargs.items() if k not in ("grad_loss", "out", "num_threads")}


def check_loss_vs_ref(name, loss, truth_args, kwargs, dtype, rtol, atol_row):
    """Compare a loss (any reduction) with the reference evaluated on ``truth_args``.

    Returns (rows, total, mean) of the reference for further use.
    """
    fwd = getattr(ref, _fwd_name(name))
    kw = _no_grad_kwargs(kwargs)
    red = kw.pop("reduction", "mean")
    rows = fwd(*truth_args, reduction="none", **kw)
    total = fwd(*truth_args, reduction="sum", **kw)
    mean = fwd(*truth_args, reduction="mean", **kw)
    if red == "none":
        assert_close(loss, rows, rtol, atol_row, "reduction=none")
    else:
        expected = total if red == "sum" else mean
        atol = reduction_atol(rows, red, atol_row, rtol, total, mean)
        assert_close(loss, expected, rtol, atol, "reduction=%s" % red)
    return rows, total, mean


def mean_denominator(total, mean):
    """The denominator of a mean, derived from the reference's sum and mean (1 if undefined)."""
    total, mean = float(total), float(mean)
    if np.isfinite(total) and np.isfinite(mean) and total != 0 and mean != 0:
        return total / mean
    return 1.0


def assert_half_close(actual, expected, dtype, err_msg=""):
    """A float16 / bfloat16 result rounded once from a float32 value: of dtype `dtype`, within one
    unit in the last place of the truth (and of the smallest subnormal near 0)."""
    import ml_dtypes

    a = np.asarray(actual)
    assert a.dtype == dtype, (a.dtype, dtype, err_msg)
    info = ml_dtypes.finfo(dtype)
    assert_close(a, np.asarray(expected).astype(np.float64), float(info.eps),
                 float(info.smallest_subnormal) * 2, err_msg)


def rerun_on_other_paths(test_file, child_variable):
    """Run the test module `test_file` again under each other instruction-set path this CPU has
    (XENT_FAST_ISA), each in a subprocess whose environment sets `child_variable` (the module's
    own rerun test skips on it), and assert that every run passes."""
    from xent_fast import _kernels

    here = os.path.dirname(os.path.abspath(test_file))
    for isa in [p for p in _kernels.config()["isa_available"] if p != _kernels.isa()]:
        env = dict(os.environ, XENT_FAST_ISA=isa, **{child_variable: "1"})
        # the package under test, wherever it was imported from (an in-place build, a wheel)
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(impl.__file__)))
        env["PYTHONPATH"] = package_parent + os.pathsep + env.get("PYTHONPATH", "")
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                              os.path.abspath(test_file)], env=env, cwd=here,
                             capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, "XENT_FAST_ISA=%s:\n%s" % (isa, out.stdout[-3000:])


def snapshot(*arrays):
    return [None if a is None else np.array(a, copy=True) for a in arrays]


def assert_unchanged(arrays, snaps):
    for a, s in zip(arrays, snaps):
        if a is None:
            continue
        assert_same_bits(np.asarray(a), s, "an input was modified")


# --------------------------------------------------------------------------------------------
# layouts: views with the same values as a contiguous array
# --------------------------------------------------------------------------------------------

LAYOUTS = ["C", "F", "strided", "reversed", "readonly"]


def relayout(a, layout, rng=None):
    """An array equal to ``a`` (same shape and values) in the given memory layout."""
    a = np.asarray(a)
    if layout == "C" or a.ndim == 0:
        b = np.array(a, order="C", copy=True)
    elif layout == "F":
        b = np.array(a, order="F", copy=True)
    elif layout == "strided":
        steps = [2 + (i % 2) for i in range(a.ndim)]
        big = np.full([max(1, n) * s for n, s in zip(a.shape, steps)], 7, dtype=a.dtype)
        sl = tuple(slice(None, n * s, s) for n, s in zip(a.shape, steps))
        big[sl] = a
        b = big[sl]
    elif layout == "reversed":
        sl = tuple(slice(None, None, -1) for _ in range(a.ndim))
        b = np.ascontiguousarray(a[sl])[sl]
    elif layout == "readonly":
        b = np.array(a, copy=True)
        b.setflags(write=False)
    elif layout == "transposed":  # same logical array stored with reversed axis order
        b = np.ascontiguousarray(a.T).T
    else:
        raise ValueError(layout)
    assert b.shape == a.shape
    assert np.array_equal(b, a, equal_nan=True) if a.dtype.kind in "fc" else np.array_equal(b, a)
    return b


def load_example(name):
    """Import examples/<name>.py as a module (a generator: the module, then it is forgotten)."""
    import importlib.util
    import pathlib
    import sys

    path = pathlib.Path(__file__).resolve().parent.parent / "examples" / (name + ".py")
    spec = importlib.util.spec_from_file_location("xent_fast_example_" + name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)
