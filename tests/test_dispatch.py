"""Runtime CPU dispatch (issue 4): XENT_FAST_ISA=baseline|avx2|avx512 forces a path; every path the
CPU supports gives the reference's results within tolerance (and agrees with the other paths).

Each path runs in its own process (the path is chosen once per process). Paths the CPU lacks are
skipped with a reason. To run the whole suite on one path: XENT_FAST_ISA=avx2 pytest tests/.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from _helpers import assert_close, impl, ref, tolerances

pytestmark = pytest.mark.compiled_only

ISAS = ["baseline", "avx2", "avx512"]
_NEEDS = {"baseline": set(), "avx2": {"avx2", "fma", "f16c"},
          "avx512": {"avx512f", "avx512dq", "avx512bw", "avx512vl", "fma", "f16c"}}


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _supported(isa):
    import platform

    if isa == "baseline":
        return True
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    return _NEEDS[isa] <= _cpu_flags()


_PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(impl.__file__)))

_CHILD = textwrap.dedent(r"""
    import sys
    import numpy as np
    import xent_fast as xf

    out_path = sys.argv[1]
    res = {"isa": np.array(xf.isa() if hasattr(xf, "isa") else "unknown")}
    rng = np.random.default_rng(2024)
    for dtype in (np.float32, np.float64):
        dn = np.dtype(dtype).name
        for N, C in ((1001, 3), (257, 10), (129, 37), (33, 1000), (5, 32003)):
            x = (rng.standard_normal((N, C)) * 3).astype(dtype)
            x[N // 2, C // 3] = -np.inf
            t = rng.integers(0, C, N)
            t[1] = -100
            y = rng.exponential(size=(N, C)).astype(dtype)
            y /= y.sum(1, keepdims=True)
            w = rng.uniform(0.5, 2.0, C)
            p = rng.uniform(0.0, 1.0, (N, C)).astype(dtype)
            k = "%s_%d_%d_" % (dn, N, C)
            for name, v in (("x", x), ("t", t), ("y", y), ("w", w), ("p", p)):
                res[k + name] = v
            res[k + "ce"] = xf.cross_entropy(x, t, reduction="none")
            res[k + "ce_opts"] = xf.cross_entropy(x, t, weight=w, label_smoothing=0.1, eps=1e-6,
                                                  reduction="none")
            res[k + "ce_mean"] = np.asarray(xf.cross_entropy(x, t))
            res[k + "ce_prob"] = xf.cross_entropy(x, y, reduction="none")
            l, g = xf.cross_entropy_and_grad(x, t, weight=w, label_smoothing=0.1)
            res[k + "ceg_loss"], res[k + "ceg_grad"] = np.asarray(l), g
            l, g = xf.cross_entropy_and_grad(x, y, reduction="sum")
            res[k + "cegp_loss"], res[k + "cegp_grad"] = np.asarray(l), g
            res[k + "lsm"] = xf.log_softmax(x)
            res[k + "sm"] = xf.softmax(x)
            res[k + "lse"] = xf.logsumexp(x)
            res[k + "lsm_ax0"] = xf.log_softmax(x, axis=0)
            res[k + "cat"] = xf.categorical_cross_entropy(p, t, reduction="none")
            l, g = xf.categorical_cross_entropy_and_grad(p, y, reduction="sum", eps=1e-3)
            res[k + "catg_loss"], res[k + "catg_grad"] = np.asarray(l), g
            res[k + "bce"] = xf.binary_cross_entropy(p, (y > 0.1).astype(dtype), reduction="none")
            l, g = xf.binary_cross_entropy_with_logits_and_grad(x, y, reduction="none")
            res[k + "bcel_loss"], res[k + "bcel_grad"] = l, g
        lim = 100.0 if dtype == np.float32 else 740.0
        d = np.linspace(-lim, lim, 40001).astype(dtype)
        res[dn + "_sweep_d"] = d
        res[dn + "_sweep"] = xf.softmax(np.stack([np.zeros_like(d), d], 1))
    np.savez(out_path, **res)
""")


def _run_path(isa, tmp_path):
    env = dict(os.environ, XENT_FAST_ISA=isa, OMP_NUM_THREADS="2")
    env.pop("XENT_TEST_IMPL", None)
    env["PYTHONPATH"] = _PKG_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    path = str(tmp_path / ("results_%s.npz" % isa))
    out = subprocess.run([sys.executable, "-c", _CHILD, path], env=env, capture_output=True,
                         text=True, timeout=300, cwd=_PKG_PARENT)
    assert out.returncode == 0, out.stderr
    return dict(np.load(path))


_cache = {}


def _results(isa, tmp_path_factory):
    if isa not in _cache:
        _cache[isa] = _run_path(isa, tmp_path_factory.mktemp("isa"))
    return _cache[isa]


def _expected(key, r):
    """The reference's value for result ``key`` from the inputs stored next to it."""
    dn, N, C, what = key.split("_", 3)
    k = "%s_%s_%s_" % (dn, N, C)
    x, t, y, w, p = (r[k + n].astype(np.float64) if n != "t" else r[k + n]
                     for n in ("x", "t", "y", "w", "p"))
    with np.errstate(all="ignore"):
        return {
            "ce": lambda: ref.cross_entropy(x, t, reduction="none"),
            "ce_opts": lambda: ref.cross_entropy(x, t, weight=w, label_smoothing=0.1, eps=1e-6,
                                                 reduction="none"),
            "ce_mean": lambda: ref.cross_entropy(x, t),
            "ce_prob": lambda: ref.cross_entropy(x, y, reduction="none"),
            "ceg_loss": lambda: ref.cross_entropy_and_grad(x, t, weight=w, label_smoothing=0.1)[0],
            "ceg_grad": lambda: ref.cross_entropy_and_grad(x, t, weight=w, label_smoothing=0.1)[1],
            "cegp_loss": lambda: ref.cross_entropy_and_grad(x, y, reduction="sum")[0],
            "cegp_grad": lambda: ref.cross_entropy_and_grad(x, y, reduction="sum")[1],
            "lsm": lambda: ref.log_softmax(x),
            "sm": lambda: ref.softmax(x),
            "lse": lambda: ref.logsumexp(x),
            "lsm_ax0": lambda: ref.log_softmax(x, axis=0),
            "cat": lambda: ref.categorical_cross_entropy(p, t, reduction="none"),
            "catg_loss": lambda: ref.categorical_cross_entropy_and_grad(p, y, reduction="sum",
                                                                        eps=1e-3)[0],
            "catg_grad": lambda: ref.categorical_cross_entropy_and_grad(p, y, reduction="sum",
                                                                        eps=1e-3)[1],
            "bce": lambda: ref.binary_cross_entropy(p, (y > 0.1).astype(np.float64),
                                                    reduction="none"),
            "bcel_loss": lambda: ref.binary_cross_entropy_with_logits(x, y, reduction="none"),
            "bcel_grad": lambda: ref.binary_cross_entropy_with_logits_and_grad(
                x, y, reduction="none")[1],
        }[what]()


_INPUTS = ("_x", "_t", "_y", "_w", "_p", "_sweep_d")


@pytest.mark.parametrize("isa", ISAS)
def test_forced_path_matches_reference(isa, tmp_path_factory):
    if not _supported(isa):
        pytest.skip("this CPU has no %s (needs %s)" % (isa, ", ".join(sorted(_NEEDS[isa]))))
    r = _results(isa, tmp_path_factory)
    if str(r["isa"]) != "unknown":
        assert str(r["isa"]) == isa, "XENT_FAST_ISA=%s ran %s" % (isa, r["isa"])
    for key in sorted(r):
        if key == "isa" or key.endswith(_INPUTS) or "_sweep" in key:
            continue
        dtype = np.float32 if key.startswith("float32") else np.float64
        got = r[key]
        assert got.dtype == dtype, key
        exp = _expected(key, r)
        scale = 20.0 if "grad" not in key else 1.0
        rtol, atol = tolerances(dtype, scale)
        if key.endswith(("_sm", "catg_grad")):
            rtol *= 10
        if key.endswith(("_mean", "_loss")) and np.ndim(got) == 0:
            atol *= 1e4  # a reduction of thousands of rows
        assert_close(got, exp, rtol, atol, "%s on %s" % (key, isa))
    for dn in ("float32", "float64"):
        d = r[dn + "_sweep_d"].astype(np.float64)
        with np.errstate(over="ignore", under="ignore"):
            p1 = np.where(d <= 0, np.exp(d - np.log1p(np.exp(d))), 1 / (1 + np.exp(-d)))
        eps = np.finfo(dn).eps
        got = r[dn + "_sweep"][:, 1].astype(np.float64)
        bad = np.abs(got - p1) > 16 * eps * (1 + np.abs(d)) * np.abs(p1) + np.finfo(dn).tiny
        assert not bad.any(), "%s exp sweep on %s: d=%s got %s want %s" % (
            dn, isa, d[bad][:3], got[bad][:3], p1[bad][:3])


def test_paths_agree_with_each_other(tmp_path_factory):
    paths = [i for i in ISAS if _supported(i)]
    if len(paths) < 2:
        pytest.skip("this CPU supports only %s" % paths)
    base = _results(paths[0], tmp_path_factory)
    for isa in paths[1:]:
        other = _results(isa, tmp_path_factory)
        assert sorted(other) == sorted(base)
        for key in base:
            if key == "isa" or key.endswith(_INPUTS):
                continue
            dtype = np.float32 if key.startswith("float32") else np.float64
            rtol, atol = tolerances(dtype, 20.0)
            if np.ndim(base[key]) == 0:
                atol *= 1e4
            assert_close(other[key], base[key], rtol * 10, atol,
                         "%s: %s vs %s" % (key, isa, paths[0]))


def test_isa_reports_a_known_path():
    import xent_fast

    if not hasattr(xent_fast, "isa"):
        pytest.skip("xent_fast.isa() is not part of the public API")
    assert xent_fast.isa() in ISAS
    best = [i for i in ISAS if _supported(i)][-1]
    if "XENT_FAST_ISA" not in os.environ:
        assert xent_fast.isa() == best


def _x86_64():
    import platform

    return platform.machine().lower() in ("x86_64", "amd64")


@pytest.mark.parametrize("isa", ISAS)
def test_path_named_is_path_compiled(isa):
    # Each variant reports the features its compiler saw (predefined macros): a variant compiled
    # without its -m flags (as Clang's target pragmas once left it) would run generic code.
    from xent_fast import _kernels

    features = _kernels.isa_features(isa)
    if isa != "baseline" and not _x86_64():
        assert features is None
        return
    assert features is not None, "path %s was not built" % isa
    assert set(features) >= _NEEDS[isa], (isa, features)
    if isa == "baseline":
        assert "avx2" not in features and "avx512f" not in features, features
    if isa == "avx2":
        assert "avx512f" not in features, features


def test_active_path_features():
    from xent_fast import _kernels

    assert set(_kernels.isa_features()) >= _NEEDS[_kernels.isa()]
