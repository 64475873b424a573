"""What the run ran on: machine, library versions, thread setting, commit. Stored in the JSON."""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys

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
        "config": {"rounds": cfg.rounds, "budget_s": cfg.budget_s, "min_samples": cfg.min_samples,
                   "max_samples": cfg.max_samples, "warmup_s": cfg.warmup_s, "seed": cfg.seed,
                   "roofline_mb": cfg.roofline_mb, "cases": [c.key for c in cfg.cases],
                   "contenders": list(cfg.contenders), "modes": list(cfg.modes)},
        "workers": hello,
        "workload": "float32/float64 logits, int64 class-index targets, reduction='mean', defaults otherwise",
    }
