"""Exact zeros without an underflow (docs/DESIGN.md, "Underflow costs").

An IEEE result that underflows costs a microcode assist of hundreds of cycles on Intel cores, so
the kernels must produce their exact zeros (masked classes at -inf, the padding lanes of a row's
last partial vector) without one.  The x86 status flags show it on any CPU: each test clears
them, runs a kernel on one thread (the calling one, whose flags it then reads) over inputs whose
results hold no subnormal value, and asserts that the underflow flag was not raised (glibc's
fenv functions do not report x86's denormal-operand flag; a subnormal read back would have been
an underflow first).  Class counts cover partial last vectors of every width (no
multiple of 4, 8 or 16) on both sides of the loops' switches; every row holds -inf classes.

The whole module also runs on every other dispatch path this CPU has (test_every_path).
"""

import ctypes
import ctypes.util
import os
import platform
import sys

import ml_dtypes
import numpy as np
import pytest

from _helpers import impl, rerun_on_other_paths

_X86_LINUX = sys.platform.startswith("linux") and platform.machine().lower() in ("x86_64", "amd64")
pytestmark = [
    pytest.mark.compiled_only,
    pytest.mark.skipif(not _X86_LINUX, reason="reads the x86 floating-point status flags"),
]

# glibc's <fenv.h> on x86-64: fetestexcept reads the x87 status word and MXCSR together
FE_UNDERFLOW, FE_ALL_EXCEPT = 0x10, 0x3D
_LIBM = ctypes.CDLL(ctypes.util.find_library("m")) if _X86_LINUX else None

CLASS_COUNTS = [3, 10, 37, 81, 100, 1001, 20003]
DTYPES = [np.float32, np.float64]


def _underflowed(fn):
    """True if fn() raised the underflow flag."""
    _LIBM.feclearexcept(FE_ALL_EXCEPT)
    fn()
    return bool(_LIBM.fetestexcept(FE_ALL_EXCEPT) & FE_UNDERFLOW)


def _masked_case(rng, C, dtype):
    """Logits of a few rows of C classes with about a tenth of the classes at -inf (none of the
    targets, at least one finite class a row), targets and probability targets to match."""
    N = max(3, min(64, 40000 // C))
    x = (rng.standard_normal((N, C)) * 3).astype(dtype)
    t = rng.integers(0, C, N)
    masked = rng.random((N, C)) < 0.1
    masked[np.arange(N), t] = False
    x[masked] = -np.inf
    y = np.where(masked, 0.0, rng.uniform(0.1, 1.0, (N, C)))
    y = (y / y.sum(1, keepdims=True)).astype(dtype)
    return x, t, y


def _assert_no_underflow(fn, what):
    assert not _underflowed(fn), "%s raised underflow" % what


def test_the_flags_are_read():
    # the check itself: a product below the smallest normal double raises the underflow flag
    # (Python floats: NumPy may clear the flags around its own operations)
    tiny = float(np.float64(1e-300))
    assert _underflowed(lambda: tiny * tiny)


@pytest.mark.parametrize("C", CLASS_COUNTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_and_gradients(rng, C, dtype):
    x, t, y = _masked_case(rng, C, dtype)
    one = dict(num_threads=1)
    calls = {
        "forward": lambda: impl.cross_entropy(x, t, **one),
        "forward, per row": lambda: impl.cross_entropy(x, t, reduction="none", **one),
        "forward and gradient": lambda: impl.cross_entropy_and_grad(x, t, **one),
        "gradient into out=": lambda: impl.cross_entropy_and_grad(x, t, out=np.empty_like(x),
                                                                  **one),
        "label smoothing": lambda: impl.cross_entropy_and_grad(x, t, label_smoothing=0.1, **one),
        "probability targets": lambda: impl.cross_entropy_and_grad(x, y, **one),
        "class weights": lambda: impl.cross_entropy_and_grad(
            x, t, weight=np.linspace(0.5, 2.0, C), **one),
    }
    for what, fn in calls.items():
        _assert_no_underflow(fn, "%s (C=%d, %s)" % (what, C, np.dtype(dtype).name))


@pytest.mark.parametrize("C", CLASS_COUNTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_family(rng, C, dtype):
    x, _, _ = _masked_case(rng, C, dtype)
    for name in ("softmax", "log_softmax", "logsumexp"):
        _assert_no_underflow(lambda: getattr(impl, name)(x, num_threads=1),
                             "%s (C=%d, %s)" % (name, C, np.dtype(dtype).name))


@pytest.mark.parametrize("opts", [dict(z_loss=1e-3), dict(softcap=30.0), dict(logit_scale=0.5),
                                  dict(softcap=30.0, z_loss=1e-3, return_lse=True)],
                         ids=["z_loss", "softcap", "logit_scale", "all"])
@pytest.mark.parametrize("C", [37, 100, 1001, 20003])
def test_large_model_options(rng, C, opts):
    x, t, _ = _masked_case(rng, C, np.float32)
    for what, fn in (("forward", impl.cross_entropy), ("gradient", impl.cross_entropy_and_grad)):
        _assert_no_underflow(lambda: fn(x, t, num_threads=1, **opts),
                             "%s %s (C=%d)" % (what, opts, C))


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16], ids=["float16", "bfloat16"])
@pytest.mark.parametrize("C", [37, 100, 1001, 20003])
def test_half_precision_storage(rng, C, dtype):
    x, t, _ = _masked_case(rng, C, np.float32)
    x = x.astype(dtype)
    _assert_no_underflow(lambda: impl.cross_entropy(x, t, num_threads=1, softcap=30.0),
                         "forward (C=%d, %s)" % (C, np.dtype(dtype).name))
    # float16 gradients below 6e-5 are subnormal float16 values: only bfloat16's (float32's
    # range) are free of them here, and float32 out= for both
    out = np.empty(x.shape, np.float32)
    _assert_no_underflow(lambda: impl.cross_entropy_and_grad(x, t, out=out, num_threads=1),
                         "gradient into float32 out= (C=%d, %s)" % (C, np.dtype(dtype).name))
    if np.dtype(dtype) == np.dtype(ml_dtypes.bfloat16):
        _assert_no_underflow(lambda: impl.cross_entropy_and_grad(x, t, num_threads=1),
                             "gradient (C=%d, bfloat16)" % C)


@pytest.mark.parametrize("C", [37, 1001])
def test_linear_and_vocabulary_shards(rng, C):
    x, t, _ = _masked_case(rng, C, np.float32)
    h = rng.standard_normal((len(t), 16)).astype(np.float32)
    w = (rng.standard_normal((C, 16)) * 0.3).astype(np.float32)
    _assert_no_underflow(lambda: impl.linear_cross_entropy_and_grad(h, w, t, num_threads=1),
                         "linear_cross_entropy_and_grad (C=%d)" % C)
    from xent_fast import vocab_parallel as vp

    cut = C // 3
    shards = [(x[:, :cut], 0), (x[:, cut:], cut)]

    def sharded():
        parts = [vp.shard_partials(s, t, a, C, softcap=30.0, num_threads=1) for s, a in shards]
        total = vp.combine_partials(*parts)
        for s, a in shards:
            vp.shard_grad(s, t, a, C, total, softcap=30.0, num_threads=1)

    _assert_no_underflow(sharded, "vocabulary shards (C=%d)" % C)


@pytest.mark.parametrize("dtype", DTYPES)
def test_class_axis_not_last(rng, dtype):
    # (N, C, H, W) with C on axis 1: the tile loops, and rows of H * W that end in a partial vector
    x = (rng.standard_normal((3, 21, 7, 9)) * 3).astype(dtype)
    t = rng.integers(0, 21, (3, 7, 9))
    x[:, 5] = -np.inf
    t[t == 5] = 6
    _assert_no_underflow(lambda: impl.cross_entropy_and_grad(x, t, axis=1, num_threads=1),
                         "axis=1 (%s)" % np.dtype(dtype).name)


# --------------------------------------------------------------------------------------------
# every dispatch path
# --------------------------------------------------------------------------------------------


@pytest.mark.skipif("XENT_UNDERFLOW_CHILD" in os.environ, reason="already a child run")
def test_every_path():
    """This module again under each other instruction-set path the CPU has."""
    rerun_on_other_paths(__file__, "XENT_UNDERFLOW_CHILD")
