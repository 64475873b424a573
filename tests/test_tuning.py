"""The per-CPU tuning table (csrc/tuning.c), XENT_FAST_TUNE and show_config (issue 10).

Every row of the table, forced with XENT_FAST_TUNE=row=<name> on every path this CPU has, gives the
reference's results at class counts on both sides of each of its switch points.  Rows and paths
are chosen once per process, so each combination runs in its own process.
"""

import json
import os
import platform
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from _helpers import assert_close, impl, ref, tolerances
from test_dispatch import ISAS, _PKG_PARENT, _cpu_flags, _supported

pytestmark = pytest.mark.compiled_only

# The kernel's class-count switches and the row loop's prefetch switch (row bytes).
SWITCHES = ("across_f32", "across_grad_f32", "across_f64", "across_grad_f64")
BATCH_MAX_CLASSES = 1024  # csrc/kernels.inc: longer rows go one by one, prefetched or not


def _rows():
    from xent_fast import _kernels

    return _kernels.tuning_rows()


def _child_env(isa=None, tune=None):
    env = dict(os.environ, OMP_NUM_THREADS="2")
    env.pop("XENT_TEST_IMPL", None)
    env.pop("XENT_FAST_ISA", None)
    env.pop("XENT_FAST_TUNE", None)
    if isa:
        env["XENT_FAST_ISA"] = isa
    if tune is not None:
        env["XENT_FAST_TUNE"] = tune
    env["PYTHONPATH"] = _PKG_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run(code, env, *args):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                          capture_output=True, text=True, timeout=300, cwd=_PKG_PARENT)


def _class_counts(row):
    """Class counts on both sides of each of the row's switches, per dtype."""
    counts = {"float32": set(), "float64": set()}
    for key in SWITCHES:
        dn = "float32" if key.endswith("f32") else "float64"
        limit = row[key]
        counts[dn].update(c for c in (limit - 1, limit, limit + 1) if 1 <= c <= 4 * BATCH_MAX_CLASSES)
    for dn, size in (("float32", 4), ("float64", 8)):
        limit = row["prefetch_row_max_bytes"] // size
        counts[dn].update(c for c in (limit, limit + 1) if c > BATCH_MAX_CLASSES)
    return {dn: sorted(c) for dn, c in counts.items()}


_CHILD = r"""
import json, sys
import numpy as np
import xent_fast as xf

out_path, counts = sys.argv[1], json.loads(sys.argv[2])
res = {"config": np.array(json.dumps(xf.show_config(mode="dicts")))}
rng = np.random.default_rng(10)
for dn, cs in counts.items():
    for c in cs:
        n = 37 if c <= 4096 else 5  # groups of rows and a partial one, at every vector width
        x = (rng.standard_normal((n, c)) * 3).astype(dn)
        t = rng.integers(0, c, n)
        t[3] = -100
        k = "%s_%d_" % (dn, c)
        res[k + "x"], res[k + "t"] = x, t
        res[k + "loss"] = xf.cross_entropy(x, t, reduction="none")
        res[k + "mean"] = np.asarray(xf.cross_entropy(x, t))
        res[k + "gloss"], res[k + "grad"] = xf.cross_entropy_and_grad(x, t, reduction="none")
        res[k + "gmean"], res[k + "gmean_grad"] = xf.cross_entropy_and_grad(x, t)
        res[k + "softmax"] = xf.softmax(x)
np.savez(out_path, **res)
"""


def _params():
    try:
        names = [r["name"] for r in _rows()]
    except ImportError:  # the reference-only self-check: these tests are skipped anyway
        names = ["default"]
    return [(isa, name) for isa in ISAS for name in names]


@pytest.mark.parametrize("isa,row_name", _params())
def test_every_row_matches_reference(isa, row_name, tmp_path):
    if not _supported(isa):
        pytest.skip("this CPU has no %s" % isa)
    row = next(r for r in _rows() if r["name"] == row_name)
    counts = _class_counts(row)
    path = str(tmp_path / "out.npz")
    out = _run(_CHILD, _child_env(isa, "row=" + row_name), path, json.dumps(counts))
    assert out.returncode == 0, out.stderr
    r = dict(np.load(path))
    cfg = json.loads(str(r["config"]))
    assert cfg["isa"]["in_use"] == isa
    assert cfg["tuning"]["name"] == row_name
    for key in SWITCHES + ("prefetch_row_max_bytes",):
        assert cfg["tuning"][key] == row[key], key
    for dn, cs in counts.items():
        loss_rtol = 1e-6 if dn == "float32" else 1e-12  # README: accuracy
        for c in cs:
            k = "%s_%d_" % (dn, c)
            x, t = r[k + "x"].astype(np.float64), r[k + "t"]
            what = "%s with %d classes, row %s on %s" % (dn, c, row_name, isa)
            exp_loss = ref.cross_entropy(x, t, reduction="none")
            exp_grad = ref.cross_entropy_and_grad(x, t, reduction="none")[1]
            exp_gmean = ref.cross_entropy_and_grad(x, t)[1]
            for name in ("loss", "gloss"):
                assert r[k + name].dtype == dn
                assert_close(r[k + name], exp_loss, loss_rtol, 0.0, "%s: %s" % (name, what))
            for name in ("mean", "gmean"):
                assert_close(r[k + name], ref.cross_entropy(x, t), loss_rtol, 0.0,
                             "%s: %s" % (name, what))
            rtol, atol = tolerances(dn)
            assert_close(r[k + "grad"], exp_grad, rtol, atol, "grad: " + what)
            assert_close(r[k + "gmean_grad"], exp_gmean, rtol, atol / x.shape[0],
                         "mean grad: " + what)
            assert_close(r[k + "softmax"], ref.softmax(x), rtol * 10, atol, "softmax: " + what)


def test_table_has_a_default_for_every_path():
    rows = _rows()
    for isa in ISAS:
        defaults = [r for r in rows if r["vendor"] is None and r["isa"] in (isa, None)]
        assert defaults, "no default row for %s" % isa
    assert rows[-1]["vendor"] is None and rows[-1]["isa"] is None, "the last row must match anything"
    for r in rows:
        assert r["isa"] in ISAS + [None] and r["prefer_isa"] in ISAS + [None], r
        assert all(r[k] >= 0 for k in SWITCHES + ("prefetch_row_max_bytes",)), r
        assert r["source"], "row %s names no source" % r["name"]
        if r["source"].startswith("bench/") and os.path.isdir(os.path.join(_PKG_PARENT, "bench")):
            assert os.path.isfile(os.path.join(_PKG_PARENT, r["source"])), r["source"]
    assert len({r["name"] for r in rows}) == len(rows)


def test_row_in_force_is_the_first_match_for_this_cpu():
    d = impl.show_config(mode="dicts")
    if os.environ.get("XENT_FAST_TUNE"):
        pytest.skip("XENT_FAST_TUNE is set")
    cpu, isa = d["cpu"], d["isa"]["in_use"]
    for r in _rows():
        if r["isa"] not in (None, isa):
            continue
        if r["vendor"] is None or (r["vendor"] == cpu["vendor"] and r["family"] in (-1, cpu["family"])
                                   and r["model_lo"] <= cpu["model"] <= r["model_hi"]):
            break
    assert d["tuning"]["name"] == r["name"]
    for key in SWITCHES + ("prefetch_row_max_bytes",):
        assert d["tuning"][key] == r[key]


def test_cpu_identification_matches_proc_cpuinfo():
    if platform.system() != "Linux" or platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("/proc/cpuinfo of x86-64 Linux needed")
    info = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if not line.strip():
                break
            key, _, value = line.partition(":")
            info[key.strip()] = value.strip()
    cpu = impl.show_config(mode="dicts")["cpu"]
    assert cpu["vendor"] == info["vendor_id"]
    assert cpu["family"] == int(info["cpu family"])
    assert cpu["model"] == int(info["model"])
    assert cpu["stepping"] == int(info["stepping"])
    assert cpu["brand"] == " ".join(info["model name"].split())
    flags = _cpu_flags()
    for feature in ("sse2", "popcnt", "avx", "fma", "f16c", "avx2", "avx512f", "avx512dq",
                    "avx512bw", "avx512vl"):
        assert (feature in cpu["features"]) == (feature in flags), feature


def test_show_config_prints_the_isa_and_the_row(capsys):
    assert impl.show_config() is None
    text = capsys.readouterr().out
    d = impl.show_config(mode="dicts")
    assert set(d) == {"xent_fast", "cpu", "isa", "tuning", "openmp"}
    assert d["isa"]["in_use"] == impl.isa() and d["isa"]["in_use"] in d["isa"]["available"]
    assert "in use: %s" % impl.isa() in text
    assert "Tuning row: %s" % d["tuning"]["name"] in text
    assert "across_grad_f32: %d" % d["tuning"]["across_grad_f32"] in text
    assert d["openmp"]["default_threads"] >= 1
    with pytest.raises(ValueError, match="mode"):
        impl.show_config(mode="text")


def test_override_changes_only_the_values_named():
    row = next(r for r in _rows() if r["name"] == "default-avx512")
    code = "import json, xent_fast as xf; print(json.dumps(xf.show_config(mode='dicts')['tuning']))"
    out = _run(code, _child_env(tune="across_f32=7, prefetch_row_max_bytes = 0,row=default-avx512"))
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["name"] == "default-avx512"
    assert got["across_f32"] == 7 and got["prefetch_row_max_bytes"] == 0
    assert [got[k] for k in SWITCHES[1:]] == [row[k] for k in SWITCHES[1:]]


_BAD = [
    ("across_f32=-1", "across_f32 must be a whole number"),
    ("across_f32=2.5", "across_f32 must be a whole number"),
    ("across_f32=", "across_f32 must be a whole number"),
    ("across_grad_f64=1234567890123456", "at most 15 digits"),
    ("across_f32", "'across_f32' is not key=value"),
    ("acros_f32=3", "unknown key 'acros_f32'"),
    ("row=no-such-cpu", "no tuning row 'no-such-cpu'"),
]


@pytest.mark.parametrize("spec,message", _BAD)
def test_bad_override_raises(spec, message):
    code = """
        import numpy as np, xent_fast as xf
        x, t = np.zeros((4, 3), np.float32), np.zeros(4, np.int64)
        for call in (lambda: xf.cross_entropy(x, t), lambda: xf.cross_entropy_and_grad(x, t),
                     lambda: xf.softmax(x), lambda: xf.binary_cross_entropy(x, x),
                     lambda: xf.show_config()):
            try:
                call()
            except ValueError as e:
                print(e)
            else:
                print("no error")
    """
    out = _run(code, _child_env(tune=spec))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 5 and all(line.startswith("XENT_FAST_TUNE: ") for line in lines), lines
    assert all(message in line for line in lines), (message, lines)
