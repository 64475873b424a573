"""The thread setting (``--threads``) turned into each worker process's environment.

Every worker gets ``OMP_NUM_THREADS`` (xent_fast's OpenMP, PyTorch's intra-op pool),
``MKL_NUM_THREADS`` and ``OPENBLAS_NUM_THREADS``; the PyTorch worker also calls
``torch.set_num_threads``; the JAX worker gets ``XLA_FLAGS`` with
``--xla_cpu_multi_thread_eigen`` and ``intra_op_parallelism_threads``. When fewer threads than
CPUs are asked for, each worker also pins itself to the first N CPUs it may run on
(``os.sched_setaffinity``), so a library that sizes its pool from the machine still uses N cores.
"""
from __future__ import annotations

import os


def available_cpus() -> int:
    """CPUs this process may run on (the affinity mask, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def worker_env(threads: int, family: str) -> dict:
    """The environment for a worker of ``family`` running with ``threads`` threads."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env["BENCH_THREADS"] = str(threads)
    if family == "jax":
        flags = (f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
                 f"intra_op_parallelism_threads={threads}")
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + flags).strip()
        env["JAX_PLATFORMS"] = "cpu"
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def pin_to_cpus(threads: int) -> list:
    """Restrict this process to its first ``threads`` allowed CPUs (no-op when all are used)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return []
    if threads < len(cpus):
        os.sched_setaffinity(0, cpus[:threads])
        return cpus[:threads]
    return cpus
