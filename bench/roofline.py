"""Memory-bandwidth rooflines, measured with NumPy in the same run as the contenders.

Method (runs in its own worker process, like every contender):

* **read**: an array much larger than the last-level cache (default 512 MiB of float32) is split
  into ``8 * threads`` contiguous chunks; a :class:`~concurrent.futures.ThreadPoolExecutor` with
  ``threads`` workers reduces them with ``np.add.reduce`` and, separately, ``np.maximum.reduce``
  (both are SIMD loops that release the GIL, so the threads run in parallel). Bandwidth = bytes /
  wall time; the figure is the best over repeats and over the two reducers. It is measured for
  1 thread, 2 threads and the ``--threads`` setting.
* **copy** (read + write): the same chunking with ``np.copyto`` into a second array;
  bandwidth = (bytes read + bytes written) / time. This bounds passes that write a full-size
  output, like forward+gradient.

A contender's "% roofline" is its GB/s divided by the read roofline (forward) or the copy roofline
(forward+gradient). Inputs that fit in cache (the small shapes) can exceed 100%.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def _best_parallel(fn, arrays, threads: int, repeats: int) -> float:
    """Best wall time of running ``fn`` over the argument tuples in ``arrays`` on ``threads`` threads."""
    best = float("inf")
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in range(repeats):
            t0 = time.perf_counter()
            list(pool.map(lambda args: fn(*args), arrays))
            best = min(best, time.perf_counter() - t0)
    return best


def read_bandwidth(a: np.ndarray, threads: int, repeats: int) -> float:
    """Best read bandwidth (bytes/s) of ``a`` with ``threads`` threads (add and maximum reduce)."""
    chunks = [(c,) for c in np.array_split(a, 8 * threads)]
    best = min(_best_parallel(np.add.reduce, chunks, threads, repeats),
               _best_parallel(np.maximum.reduce, chunks, threads, repeats))
    return a.nbytes / best


def copy_bandwidth(a: np.ndarray, b: np.ndarray, threads: int, repeats: int) -> float:
    """Best read+write bandwidth (bytes/s) of copying ``a`` into ``b`` with ``threads`` threads."""
    pairs = list(zip(np.array_split(b, 8 * threads), np.array_split(a, 8 * threads)))
    return 2 * a.nbytes / _best_parallel(np.copyto, pairs, threads, repeats)


def measure(threads: int, size_mb: int = 512, repeats: int = 7) -> dict:
    """Measure the read and copy rooflines; returns GB/s figures and the method's parameters."""
    a = np.ones(size_mb * 2**20 // 4, dtype=np.float32)
    b = np.empty_like(a)
    b.fill(0.0)  # fault the pages in before timing
    out = {"size_mb": size_mb, "repeats": repeats, "threads": threads,
           "read_1t_gbps": read_bandwidth(a, 1, repeats) / 1e9}
    out["read_2t_gbps"] = read_bandwidth(a, 2, repeats) / 1e9
    out["read_gbps"] = (out["read_2t_gbps"] if threads == 2 else
                        out["read_1t_gbps"] if threads == 1 else read_bandwidth(a, threads, repeats) / 1e9)
    out["copy_gbps"] = copy_bandwidth(a, b, threads, repeats) / 1e9
    return out
