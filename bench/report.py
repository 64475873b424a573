"""The Markdown report printed to stdout (the README's table is pasted from it) and the JSON file."""
from __future__ import annotations

import json
import os

from .cases import dtype_short
from .contenders import CONTENDERS

PASS_LABEL = {"fwd": "fwd", "fwd+grad": "fwd+grad"}


def fmt_ms(x) -> str:
    """Milliseconds with about three significant digits."""
    if x is None:
        return "–"
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:.0f}"


def fmt_x(x) -> str:
    """A speed-up factor, e.g. ``12.3x``."""
    if x is None:
        return "–"
    return f"{x:.2f}x" if x < 10 else f"{x:.1f}x" if x < 100 else f"{x:.0f}x"


def fmt_mb(n) -> str:
    """Bytes as MB (10**6), readable down to kB."""
    mb = n / 1e6
    return f"{mb:.0f} MB" if mb >= 100 else f"{mb:.1f} MB" if mb >= 1 else f"{mb:.2f} MB"


def _table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _groups(doc):
    """Records grouped by (case, mode) in run order, with the contenders that appear anywhere."""
    groups = {}
    for rec in doc["results"]:
        groups.setdefault((rec["case"], rec["mode"]), {})[rec["contender"]] = rec
    present = {rec["contender"] for rec in doc["results"]}
    return groups, [c for c in CONTENDERS if c.name in present]


def _time_cell(rec):
    if rec is None:
        return "–"
    if rec.get("error") or rec.get("median_ms") is None:
        return "n/a"
    return f"{fmt_ms(rec['median_ms'])} ({fmt_ms(rec['best_ms'])})"


def header(doc) -> str:
    """Title lines: workload, machine, versions, rooflines."""
    meta, roof = doc["meta"], doc["roofline"]
    versions = [f"numpy {meta['numpy']}"]
    for family, hello in meta["workers"].items():
        info = hello.get("info") or {}
        if hello.get("ok") and family in ("xent_fast", "torch", "jax"):
            versions.append(f"{family} {info.get('version')}")
    lines = [f"xent_fast benchmark: int64 class-index targets, reduction='mean', {meta['threads']} threads, "
             f"{meta['cpu']} ({meta['cpus']} CPUs), Python {meta['python']}, " + ", ".join(versions) + "."]
    if roof.get("read_gbps"):
        lines.append(f"Roofline (NumPy, same run): read {roof['read_gbps']:.1f} GB/s "
                     f"(1 thread {roof['read_1t_gbps']:.1f}, 2 threads {roof['read_2t_gbps']:.1f}), "
                     f"copy read+write {roof['copy_gbps']:.1f} GB/s.")
    stat = {"best": "best-of-k times"}.get(meta.get("speedup_stat"), "medians")
    lines.append("Times: median (best-of-k) ms per call. GB/s = logits bytes read (+ gradient bytes written "
                 "for fwd+grad; 2 bytes per element for f16 and bf16, whose gradient is f16 / bf16 too) / "
                 "best time; % roofline vs the read (fwd) or copy (fwd+grad) roofline. "
                 f"Speed-ups from {stat}; best peer = faster of PyTorch and JAX.")
    return "\n".join(lines)


def speed_table(doc) -> str:
    """One row per case and pass: every contender's time, xent_fast's GB/s, roofline share, speed-ups."""
    groups, contenders = _groups(doc)
    speed = {(s["case"], s["mode"]): s for s in doc.get("speedups", [])}
    head = ["shape", "dtype", "pass"] + [c.label + " ms" for c in contenders]
    head += ["xent_fast GB/s", "% roofline", "vs reference", "vs best peer"]
    rows = []
    for (case, mode), by_name in groups.items():
        any_rec = next(iter(by_name.values()))
        row = [any_rec["case_label"], dtype_short(any_rec["dtype"]), PASS_LABEL[mode]]
        row += [_time_cell(by_name.get(c.name)) for c in contenders]
        xf = by_name.get("xent_fast") or {}
        row.append(f"{xf['gbps']:.1f}" if xf.get("gbps") and not xf.get("error") else "–")
        row.append(f"{100 * xf['roofline_frac']:.0f}%" if xf.get("roofline_frac") and not xf.get("error") else "–")
        s = speed.get((case, mode), {})
        row.append(fmt_x(s.get("vs_reference")))
        best = s.get("vs_best_peer")
        peer = next((c.label for c in contenders if c.name == s.get("best_peer")), None)
        row.append(f"{fmt_x(best)} ({peer})" if best else "–")
        rows.append(row)
    return _table(head, rows)


def memory_table(doc) -> str:
    """Peak additional memory of one call, in MB and in units of the logits' size."""
    groups, contenders = _groups(doc)
    head = ["shape", "dtype", "pass"] + [c.label for c in contenders]
    rows = []
    for (case, mode), by_name in groups.items():
        any_rec = next(iter(by_name.values()))
        row = [any_rec["case_label"], dtype_short(any_rec["dtype"]), PASS_LABEL[mode]]
        for c in contenders:
            mem = (by_name.get(c.name) or {}).get("memory")
            row.append(f"{fmt_mb(mem['peak_bytes'])} ({mem['peak_vs_logits']:.2f}x)" if mem else "–")
        rows.append(row)
    return _table(head, rows)


def relative_tables(doc) -> str:
    """The half-precision and loss-option rows against their plain float32 rows (empty if none)."""
    entries = doc.get("relative") or []
    present = {name for e in entries for name in e["ratios"]}
    contenders = [c for c in CONTENDERS if c.name in present]
    stat = {"best": "best-of-k times"}.get(doc["meta"].get("speedup_stat"), "medians")
    parts = []
    for kind, title in (
            ("half", f"Half precision: speed-up over the float32 row of the same shape and pass "
                     f"(float32 time / half time, {stat}, same run; higher is better):"),
            ("options", f"Loss options: time / the plain row's time (same shape, dtype and pass, {stat}, "
                        f"same run; lower is better):")):
        rows = []
        for e in (e for e in entries if e["kind"] == kind):
            goal = e.get("goal")
            goal_text = "–" if not goal else goal["text"] + (
                "" if goal["met"] is None else " (met)" if goal["met"] else " (NOT met)")
            rows.append([e["case_label"], dtype_short(e["dtype"]), PASS_LABEL[e["mode"]]]
                        + [fmt_x(e["ratios"].get(c.name)) for c in contenders] + [goal_text])
        if rows:
            head = ["shape", "dtype", "pass"] + [c.label for c in contenders] + ["goal (xent_fast)"]
            parts += ["", title, "", _table(head, rows)]
    return "\n".join(parts[1:])


def full_table(doc) -> str:
    """Every measurement, one row per contender (``--full-table``)."""
    head = ["shape", "dtype", "pass", "contender", "median ms", "best ms", "n", "GB/s", "% roofline",
            "peak MB", "x logits", "first call ms", "check"]
    rows = []
    for r in doc["results"]:
        mem, chk = r.get("memory") or {}, r.get("check") or {}
        ok = r.get("median_ms") is not None and not r.get("error")
        rows.append([r["case_label"], dtype_short(r["dtype"]), r["mode"], r["label"],
                     fmt_ms(r.get("median_ms")) if ok else "n/a", fmt_ms(r.get("best_ms")) if ok else "n/a",
                     r.get("n", 0), f"{r['gbps']:.1f}" if ok else "–",
                     f"{100 * r['roofline_frac']:.0f}%" if ok and r.get("roofline_frac") else "–",
                     fmt_mb(mem["peak_bytes"]) if mem else "–",
                     f"{mem['peak_vs_logits']:.2f}" if mem else "–",
                     fmt_ms(r.get("first_call_ms")),
                     ("ok" if chk.get("ok") else "MISMATCH") if chk else "–"])
    return _table(head, rows)


def markdown(doc, full: bool = False) -> str:
    """The whole report: header, speed table, half-precision and option ratios (when those rows
    were run), memory table, optional full table, notes."""
    relative = relative_tables(doc)
    parts = [header(doc), "", speed_table(doc)] + (["", relative] if relative else [])
    parts += ["", "Peak additional memory of one call (MB, and in units of the logits' size; "
              "max of tracemalloc and the RSS high-water mark, see bench/memory.py):", "", memory_table(doc)]
    if full:
        parts += ["", "All measurements:", "", full_table(doc)]
    if doc.get("notes"):
        parts += ["", "Notes:"] + [f"- {n}" for n in doc["notes"]]
    return "\n".join(parts)


def write_json(doc, path: str):
    """Write the results document to ``path`` (folders created as needed)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
