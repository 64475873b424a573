"""The benchmark's case definitions and its report arithmetic (bench/, run as `python -m bench`).

Nothing here times anything: the cases are parsed, generated at small sizes and fed to the
xent_fast and reference contenders once; the report's ratios are computed from made-up times.
"""
import os
import sys

import numpy as np
import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if not os.path.isdir(os.path.join(_ROOT, "bench")):
    pytest.skip("bench/ is not beside tests/ (tests run from an installed copy)", allow_module_level=True)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

ml_dtypes = pytest.importorskip("ml_dtypes")  # in the [test] extra

from bench import analysis, report  # noqa: E402
from bench.cases import (DEFAULT_CASES, HALF_CASES, NAMED_SETS, OPTION_CASES, PLAIN_CASES,  # noqa: E402
                         QUICK_CASES, Case, case_from_dict, make_inputs, parse_case, select_cases)
from bench.contenders import reference as ref_contender  # noqa: E402
from bench.contenders import xent as xent_contender  # noqa: E402


@pytest.mark.parametrize("name", sorted(NAMED_SETS))
def test_every_case_round_trips_through_its_key_and_dict(name):
    cases = select_cases(name)
    assert cases
    assert len({c.key for c in cases}) == len(cases), "duplicate rows in --shapes " + name
    for c in cases:
        assert parse_case(c.key) == c
        assert case_from_dict(c.to_dict()) == c


def test_plain_rows_keep_their_names():
    # the README's table is made of these rows: their keys and labels are its row names
    assert [c.key for c in PLAIN_CASES] == ["65536x10:f32", "16384x100:f32", "8192x1000:f32",
                                            "2048x32000:f32", "512x128256:f32"]
    assert [c.label for c in PLAIN_CASES][-1] == "(512, 128256)"
    assert all(c.base is None for c in PLAIN_CASES)


def test_default_set_has_the_half_and_option_rows_after_their_base():
    keys = [c.key for c in DEFAULT_CASES]
    for shape in ("8192x1000", "2048x32000", "512x128256"):
        for dt in ("bf16", "f16"):
            assert f"{shape}:{dt}" in keys
    assert "512x128256:f32:softcap=30:z_loss=0.0001" in keys
    for c in HALF_CASES + OPTION_CASES:
        assert c in DEFAULT_CASES
        assert keys.index(c.base.key) < keys.index(c.key)
    assert [c for c in DEFAULT_CASES if c.base is None] == list(PLAIN_CASES)


def test_quick_set_has_half_rows_at_one_shape_only():
    half = [c for c in QUICK_CASES if c.base]
    assert half and {c.shape for c in half} == {(2048, 32000)}
    assert {c.dtype for c in half} == {"float16", "bfloat16"}


def test_spec_fields():
    c = parse_case("512x128256:bf16:softcap=30:z_loss=1e-4:logit_scale=0.5")
    assert (c.dtype, c.softcap, c.z_loss, c.logit_scale) == ("bfloat16", 30.0, 1e-4, 0.5)
    assert c.options == {"softcap": 30.0, "z_loss": 1e-4, "logit_scale": 0.5}
    assert c.label == "(512, 128256) softcap=30 z_loss=0.0001 logit_scale=0.5"
    assert c.base == parse_case("512x128256:bf16") and c.base.base == parse_case("512x128256")
    assert parse_case("8x4:f16").logits_bytes == 64 and parse_case("8x4").logits_bytes == 128
    for bad in ("8x4:f8", "8x4:softcap", "8x4:z_loss=big", "8x4:axis=2"):
        with pytest.raises(ValueError):
            parse_case(bad)


@pytest.mark.parametrize("dtype", ["f16", "bf16"])
def test_half_inputs_are_the_float32_inputs_rounded(dtype, monkeypatch):
    import bench.cases
    monkeypatch.setattr(bench.cases, "_CHUNK", 1000)  # several blocks at a small size
    x32, t32 = make_inputs(parse_case("37x300"), seed=3)
    xh, th = make_inputs(parse_case("37x300:" + dtype), seed=3)
    assert xh.dtype.itemsize == 2 and xh.shape == x32.shape
    np.testing.assert_array_equal(xh, x32.astype(xh.dtype))
    np.testing.assert_array_equal(th, t32)


@pytest.mark.parametrize("spec", ["64x300:bf16", "64x300:f16", "64x300:softcap=30:z_loss=1e-4",
                                  "64x300:logit_scale=0.5", "64x300:f16:softcap=30"])
def test_xent_fast_and_reference_contenders_agree_on_new_rows(spec):
    case = parse_case(spec)
    logits, targets = make_inputs(case)
    results = {}
    for name, mod in (("xent_fast", xent_contender), ("reference", ref_contender)):
        mod.load(1)
        data = mod.prepare(case, logits, targets)
        results[name] = [mod.to_numpy(mod.make(name, mode, case, data)()) for mode in ("fwd", "fwd+grad")]
    data = xent_contender.prepare(case, logits, targets)
    results["out"] = [xent_contender.to_numpy(xent_contender.make("xent_fast_out", "fwd+grad", case, data)())]
    (ref_loss, _), (ref_loss2, ref_grad) = results["reference"]
    expected_dtype = logits.dtype
    assert ref_grad.dtype == expected_dtype
    for loss, grad in results["xent_fast"] + results["out"]:
        assert loss == pytest.approx(ref_loss, rel=1e-5)
        if grad is not None:
            assert grad.dtype == expected_dtype
            np.testing.assert_allclose(grad.astype(np.float64), ref_grad.astype(np.float64),
                                       rtol=1e-2, atol=1e-3 / case.n_rows)


def _rec(case, mode, contender, ms):
    c = parse_case(case)
    return {"case": c.key, "case_label": c.label, "shape": list(c.shape), "dtype": c.dtype, "axis": c.axis,
            "options": c.options, "base_case": c.base.key if c.base else None, "mode": mode,
            "contender": contender, "label": contender, "is_peer": contender != "xent_fast",
            "median_ms": ms, "best_ms": ms / 2}


def test_relative_ratios_and_goals():
    recs = [_rec("512x128256", "fwd", "xent_fast", 10.0), _rec("512x128256", "fwd", "torch", 100.0),
            _rec("512x128256:bf16", "fwd", "xent_fast", 5.0), _rec("512x128256:bf16", "fwd", "torch", 200.0),
            _rec("512x128256:softcap=30", "fwd", "xent_fast", 16.0),
            _rec("512x128256:z_loss=1e-4", "fwd", "xent_fast", 10.5),
            _rec("512x128256:z_loss=1e-4", "fwd+grad", "xent_fast", 10.5),  # no plain fwd+grad row
            _rec("8192x1000:f16", "fwd", "xent_fast", 1.0), _rec("8192x1000", "fwd", "xent_fast", 1.5)]
    rel = {(e["case"], e["mode"]): e for e in analysis.relative(recs)}
    half = rel[("512x128256:bf16", "fwd")]
    assert half["kind"] == "half" and half["ratios"] == {"xent_fast": 2.0, "torch": 0.5}
    assert half["goal"] == {"text": ">= 1.6x", "met": True}
    softcap = rel[("512x128256:f32:softcap=30", "fwd")]
    assert softcap["kind"] == "options" and softcap["ratios"]["xent_fast"] == pytest.approx(1.6)
    assert softcap["goal"] == {"text": "<= 1.5x", "met": False}
    assert rel[("512x128256:f32:z_loss=0.0001", "fwd")]["goal"] == {"text": "<= 1.1x", "met": True}
    assert rel[("512x128256:f32:z_loss=0.0001", "fwd+grad")]["ratios"] == {"xent_fast": None}
    assert rel[("8192x1000:f16", "fwd")]["goal"] is None  # under 32000 classes: no goal
    assert rel[("8192x1000:f16", "fwd")]["ratios"]["xent_fast"] == pytest.approx(1.5)
    assert analysis.relative(recs, "best")[0]["ratios"] == {"xent_fast": 2.0, "torch": 0.5}

    text = report.relative_tables({"relative": analysis.relative(recs), "meta": {}})
    assert "| (512, 128256) | bf16 | fwd | 2.00x | 0.50x | >= 1.6x (met) |" in text
    assert "| (512, 128256) softcap=30 | f32 | fwd | 1.60x | – | <= 1.5x (NOT met) |" in text
    assert report.relative_tables({"relative": [], "meta": {}}) == ""


def test_plain_case_defaults():
    c = Case((4, 5))
    assert c.options == {} and c.base is None and c.key == "4x5:f32" and c.to_dict() == {
        "shape": [4, 5], "dtype": "float32", "axis": -1}
