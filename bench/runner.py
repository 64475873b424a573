"""The run: start one worker per family, measure the roofline, time every contender on every
case and pass side by side, and collect the results into one JSON-able document.

Side by side: for each case and pass, the contenders take turns in ``rounds`` rounds (the order
rotates every round), each round using a share of the time budget, so slow drifts of the shared
machine's load hit every contender alike. The first round warms up (JIT, thread pools), checks the
loss and gradient and measures peak memory; later rounds make one untimed call first to bring the
inputs back into cache (other contenders' inputs evicted them).

The slow NumPy reference takes part in ``reference_rounds`` rounds on the plain rows; on the
half-precision and loss-option rows (cases with a ``base``) it makes one call per pass, the one
that is checked and measured for memory, and that call's time is its sample: those rows exist to
be compared with their plain float32 rows, and its calls at their shapes take seconds each.
"""
from __future__ import annotations

import dataclasses
import os
import math
import time

from . import environment
from .cases import Case
from .checks import sanity_notes
from .contenders import BY_NAME, MODES
from .procs import WorkerError, WorkerProcess
from .progress import Progress
from .timing import summarize

SETTLE_S = 0.01  # pause between requests, so a finished worker's spinning threads go to sleep
BUSY_CPUS = 0.25  # warn when other processes used more than this many CPUs on average


@dataclasses.dataclass
class RunConfig:
    """Everything a run needs; the CLI fills it in (see ``python -m bench --help``)."""

    cases: list
    contenders: list
    modes: list = dataclasses.field(default_factory=lambda: list(MODES))
    threads: int = 1
    rounds: int = 6
    reference_rounds: int = 6  # rounds the slow baseline takes part in, the first ones
    budget_s: float = 1.5
    min_samples: int = 3
    reference_min_samples: int = 3
    max_samples: int = 40
    warmup_s: float = 0.1
    roofline_mb: int = 512
    roofline_repeats: int = 7
    roofline_twice: bool = True
    seed: int = 0
    timeout_s: float = 900.0
    verbose: bool = False
    progress: bool = True


def _rotate(items, r):
    r %= max(1, len(items))
    return items[r:] + items[:r]


def _start_workers(cfg, families, progress, notes):
    workers, hello = {}, {}
    for family in families:  # start all first: imports run in parallel
        workers[family] = WorkerProcess(family, cfg.threads, cfg.verbose)
    for family, worker in list(workers.items()):
        try:
            hello[family] = worker.receive(cfg.timeout_s)
        except WorkerError as exc:
            hello[family] = {"ok": False, "note": str(exc)}
        if not hello[family].get("ok"):
            msg = f"skipped {family}: {hello[family].get('note')}"
            notes.append(msg)
            progress.write("note: " + msg)
            workers.pop(family).close()
    return workers, hello


def _roofline(cfg, workers, progress, notes, when):
    progress.step(f"roofline ({when})")
    try:
        reply = workers["roofline"].request(
            {"op": "roofline", "size_mb": cfg.roofline_mb, "repeats": cfg.roofline_repeats}, cfg.timeout_s)
    except (WorkerError, KeyError) as exc:
        notes.append(f"roofline ({when}) failed: {exc}")
        reply = None
    progress.advance()
    return reply


def _combine_rooflines(measurements):
    ok = [m for m in measurements if m]
    if not ok:
        return {"read_gbps": None, "copy_gbps": None, "measurements": []}
    return {"read_gbps": max(m["read_gbps"] for m in ok), "copy_gbps": max(m["copy_gbps"] for m in ok),
            "read_1t_gbps": max(m["read_1t_gbps"] for m in ok),
            "read_2t_gbps": max(m["read_2t_gbps"] for m in ok), "measurements": ok,
            "method": "best of NumPy add/maximum reduce (read) and copyto (copy), threaded chunks, "
                      "over repeats and measurements; see bench/roofline.py"}


def _record(case: Case, mode, name, acc, roof):
    contender = BY_NAME[name]
    rec = {"case": case.key, "case_label": case.label, "shape": list(case.shape), "dtype": case.dtype,
           "axis": case.axis, "options": case.options, "base_case": case.base.key if case.base else None,
           "mode": mode, "contender": name, "label": contender.label,
           "is_peer": contender.is_peer, "error": acc.get("error")}
    first = acc.get("first") or {}
    for k in ("loss", "grad_sq", "grad_shape_ok", "memory"):
        if k in first:
            rec[k] = first[k]
    if "first_call_s" in first:
        rec["first_call_ms"] = first["first_call_s"] * 1e3
    if rec.get("memory"):
        rec["memory"]["peak_vs_logits"] = rec["memory"]["peak_bytes"] / case.logits_bytes
    if acc["times"]:
        stats = summarize(acc["times"])
        nbytes = case.logits_bytes * (2 if mode == "fwd+grad" else 1)
        bound = roof.get("copy_gbps" if mode == "fwd+grad" else
                         "read_1t_gbps" if name == "xent_fast_1t" else "read_gbps")
        rec.update(times_ms=[t * 1e3 for t in acc["times"]], median_ms=stats["median_s"] * 1e3,
                   best_ms=stats["best_s"] * 1e3, n=stats["n"], bytes=nbytes,
                   gbps=nbytes / stats["best_s"] / 1e9, gbps_median=nbytes / stats["median_s"] / 1e9)
        rec["roofline_frac"] = rec["gbps"] / bound if bound else None
    return rec


def run(cfg: RunConfig) -> dict:
    """Run the benchmark described by ``cfg`` and return the results document."""
    started = time.time()
    cpu_start = environment.cpu_snapshot()
    notes = []
    chosen = [BY_NAME[n] for n in cfg.contenders]
    families = list(dict.fromkeys(c.family for c in chosen)) + ["roofline"]
    progress = Progress(cfg.progress)
    progress.write(f"starting workers: {', '.join(families)} ({cfg.threads} threads)")
    workers, hello = _start_workers(cfg, families, progress, notes)
    startup_s = time.time() - started
    try:
        live = [c for c in chosen if c.family in workers]
        steps = sum(_rounds_of(cfg, c, case) for case in cfg.cases for m in cfg.modes for c in live
                    if c.times(case, m))
        progress.start(steps + 1 + int(cfg.roofline_twice))
        rooflines = [_roofline(cfg, workers, progress, notes, "start")]
        roof = _combine_rooflines(rooflines)
        accs = {}
        per_round = dict(budget_s=cfg.budget_s / cfg.rounds,
                         min_samples=math.ceil(cfg.min_samples / cfg.rounds),
                         max_samples=math.ceil(cfg.max_samples / cfg.rounds))
        for case in cfg.cases:
            for mode in cfg.modes:
                todo = [c for c in live if c.times(case, mode)]
                for r in range(cfg.rounds):
                    for c in _rotate(todo, r):
                        if r >= _rounds_of(cfg, c, case):
                            continue
                        acc = accs.setdefault((case.key, mode, c.name), {"case": case, "times": []})
                        progress.step(f"{c.label} {case.label} {case.dtype_short} {mode} r{r + 1}")
                        if c.family in workers and not acc.get("error"):
                            time.sleep(SETTLE_S)
                            _time_one(cfg, workers, c, case, mode, r == 0, per_round, acc, notes, progress)
                        progress.advance()
                for family in [f for f in workers if not _drop(cfg, workers[f], notes)]:
                    workers.pop(family).kill()
        if cfg.roofline_twice:
            rooflines.append(_roofline(cfg, workers, progress, notes, "end"))
            roof = _combine_rooflines(rooflines)
    finally:
        for w in workers.values():
            w.close()
        progress.close()
    load = environment.background_load(cpu_start, environment.cpu_snapshot())
    if load["other_cpus"] is not None and load["other_cpus"] > BUSY_CPUS:
        notes.insert(0, f"WARNING: other processes used {load['other_cpus']:.2f} CPUs on average during this "
                        f"run (of {os.cpu_count()}): timings are disturbed; rerun on a quiet machine")
    records = [_record(acc["case"], mode, name, acc, roof) for (key, mode, name), acc in accs.items()]
    notes += sanity_notes(records)
    meta = environment.describe(cfg, hello, started)
    meta["background_load"], meta["startup_s"] = load, round(startup_s, 2)
    return {"meta": meta, "roofline": roof, "results": records, "notes": notes}


def _rounds_of(cfg, c, case):
    if not c.slow_baseline:
        return cfg.rounds
    return 1 if case.base else min(cfg.reference_rounds, cfg.rounds)


def _time_one(cfg, workers, c, case, mode, first, per_round, acc, notes, progress):
    req = {"op": "run", "contender": c.name, "mode": mode, "case": case.to_dict(), "seed": cfg.seed,
           "first": first, "warmup_s": cfg.warmup_s, "warmup_calls": 1 if c.slow_baseline else 2,
           **per_round}
    if c.slow_baseline:
        req["min_samples"] = math.ceil(cfg.reference_min_samples / _rounds_of(cfg, c, case))
        req["first_call_sample"] = bool(case.base)
    try:
        reply = workers[c.family].request(req, cfg.timeout_s)
    except WorkerError as exc:
        msg = f"{c.family} worker lost at {case.label} {mode}: {exc}"
        notes.append(msg)
        progress.write("error: " + msg)
        workers.pop(c.family).kill()
        acc["error"] = str(exc)
        return
    if reply.get("error"):
        acc["error"] = reply["error"]
        msg = f"{c.label} {case.label} {case.dtype_short} {mode}: {reply['error']}"
        notes.append(msg)
        progress.write(("note: " if reply.get("unavailable") else "error: ") + msg)
        return
    if first:
        acc["first"] = reply
    acc["times"].extend(reply["times_s"])


def _drop(cfg, worker, notes) -> bool:
    """Free the finished case's inputs in ``worker``; False if the worker is lost."""
    if worker.family == "roofline":
        return True
    try:
        worker.request({"op": "drop"}, cfg.timeout_s)
        return True
    except WorkerError as exc:
        notes.append(f"{worker.family} worker lost while freeing a case: {exc}")
        return False
