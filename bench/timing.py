"""Wall-clock timing of one benchmark call: warm-up, then adaptive repeats within a time budget.

Each sample times ``inner`` back-to-back calls with ``time.perf_counter`` and records the per-call
mean; ``inner`` is 1 unless a call is shorter than ``MIN_SAMPLE_S``, so sub-millisecond calls are
batched to keep timer and loop overhead out of the figure. Samples are taken until the time budget
is spent (and at least a minimum number were taken). The garbage collector is off while
timing (as in :mod:`timeit`). The caller reports the median (typical) and the minimum (best-of-k,
least disturbed by other load on a shared machine).
"""
from __future__ import annotations

import gc
import math
import statistics
import time

MIN_SAMPLE_S = 1e-3


def warm_up(fn, min_calls: int = 1, min_time_s: float = 0.05):
    """Call ``fn`` at least ``min_calls`` times and for at least ``min_time_s``.

    Returns ``(first_call_s, last_call_s, last_result)``: the first call includes any JIT
    compilation or thread-pool start-up, the last one estimates the steady-state cost.
    """
    start = time.perf_counter()
    result = fn()
    first = last = time.perf_counter() - start
    calls, total = 1, first
    while calls < min_calls or total < min_time_s:
        t0 = time.perf_counter()
        result = fn()
        last = time.perf_counter() - t0
        calls, total = calls + 1, total + last
    return first, last, result


def sample(fn, estimate_s: float, budget_s: float, min_samples: int, max_samples: int):
    """Time ``fn``; return ``(per_call_seconds_list, inner)``.

    Samples are taken until ``budget_s`` has elapsed and at least ``min_samples`` were taken, or
    ``max_samples`` were taken. ``estimate_s`` (a warm call's time) only sets the batch size.
    """
    inner = max(1, math.ceil(MIN_SAMPLE_S / max(estimate_s, 1e-7)))
    times = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        while len(times) < max_samples and (len(times) < min_samples or time.perf_counter() - start < budget_s):
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            times.append((time.perf_counter() - t0) / inner)
    finally:
        if gc_was_enabled:
            gc.enable()
    return times, inner


def summarize(times):
    """``{'median_s', 'best_s', 'n'}`` of a list of per-call times."""
    return {"median_s": statistics.median(times), "best_s": min(times), "n": len(times)}
