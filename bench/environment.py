"""What the run ran on: machine, library versions, thread setting, commit. Stored in the JSON."""
from __future__ import annotations

import datetime
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

from .procs import ROOT


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args):
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def describe(cfg, hello: dict, started: float) -> dict:
    """The ``meta`` block of the results document."""
    return {
        "date": datetime.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
        "duration_s": None,  # filled in by the CLI when everything is written
        "python": sys.version.split()[0], "numpy": np.__version__, "platform": platform.platform(),
        "cpu": _cpu_model(), "cpus": os.cpu_count(), "threads": cfg.threads,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain")) if _git("rev-parse", "HEAD") else None,
        "openblas_env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
        "config": {"rounds": cfg.rounds, "reference_rounds": cfg.reference_rounds,
                   "budget_s": cfg.budget_s, "min_samples": cfg.min_samples,
                   "reference_min_samples": cfg.reference_min_samples,
                   "max_samples": cfg.max_samples, "warmup_s": cfg.warmup_s, "seed": cfg.seed,
                   "roofline_mb": cfg.roofline_mb, "cases": [c.key for c in cfg.cases],
                   "contenders": list(cfg.contenders), "modes": list(cfg.modes)},
        "workers": hello,
        "workload": "float32/float64 logits, int64 class-index targets, reduction='mean', defaults otherwise",
    }


def cpu_snapshot() -> dict:
    """CPU seconds used so far by the whole machine (/proc/stat) and by this process tree."""
    own = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ("ru_utime", "ru_stime"))
    snap = {"t": time.time(), "own_s": own, "busy_s": None, "steal_s": None}
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        hz = os.sysconf("SC_CLK_TCK")
        snap["busy_s"] = (v[0] + v[1] + v[2] + v[5] + v[6]) / hz  # user nice system irq softirq
        snap["steal_s"] = v[7] / hz if len(v) > 7 else None
    except (OSError, ValueError, IndexError):
        pass
    return snap


def background_load(start: dict, end: dict) -> dict:
    """Average CPUs used by *other* processes (and stolen by the hypervisor) between two snapshots.

    Workers must have exited (been waited for) before ``end`` so that their CPU time counts as ours.
    """
    wall = max(end["t"] - start["t"], 1e-9)
    out = {"wall_s": wall, "other_cpus": None, "steal_cpus": None}
    if start["busy_s"] is not None and end["busy_s"] is not None:
        others = (end["busy_s"] - start["busy_s"]) - (end["own_s"] - start["own_s"])
        out["other_cpus"] = max(0.0, others) / wall
    if start["steal_s"] is not None and end["steal_s"] is not None:
        out["steal_cpus"] = (end["steal_s"] - start["steal_s"]) / wall
    return out
