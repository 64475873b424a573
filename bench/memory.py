"""Peak additional memory of one call, measured inside the worker process.

Two views, both taken around a single call (after warm-up, so JIT compilation and thread start-up
are excluded) and including the result the call returns:

* ``traced_bytes``: the peak of :mod:`tracemalloc` during the call. NumPy reports its array data
  allocations to tracemalloc, so this is exact for NumPy code (xent_fast's outputs, the reference's
  temporaries) but blind to PyTorch's and XLA's own allocators and to raw ``malloc`` in C.
* ``rss_bytes``: growth of the resident set during the call: the kernel's high-water mark
  (``VmHWM``) is reset to the current RSS by writing ``5`` to ``/proc/self/clear_refs`` (Linux >= 4.0)
  just before the call and read just after. It sees every allocator, at page granularity. Freed heap
  memory is first handed back to the OS with glibc's ``malloc_trim(0)``, so that a buffer reused
  from an earlier call's free list is counted again. Where the reset is not possible the fallback is
  the ``ru_maxrss`` delta, which can only under-count (``rss_method`` says which was used).

``peak_bytes`` is the larger of the two: a conservative figure for "extra memory of one call".
Limit: an allocator that keeps freed blocks in a cache of its own (XLA's at small sizes, seen here)
reuses pages that are already resident, which neither view sees; the peers' figures are lower bounds.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import resource
import tracemalloc

_PAGE = 1024  # /proc/self/status reports kB


def _status_kb(field: str):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_memory(fn, keep_result: bool = False):
    """Run ``fn()`` once and return its peak additional memory (see the module docstring).

    Returns the dict, or ``(dict, result)`` with ``keep_result``.
    """
    gc.collect()
    _malloc_trim()
    rss_before = _status_kb("VmRSS")
    use_hwm = rss_before is not None and _reset_hwm()
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        result = fn()
        _, traced = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if use_hwm:
        rss = max(0, (_status_kb("VmHWM") - rss_before) * _PAGE)
        method = "VmHWM reset"
    else:
        rss = max(0, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - maxrss_before) * _PAGE)
        method = "ru_maxrss delta (lower bound)"
    stats = {"traced_bytes": int(traced), "rss_bytes": int(rss), "peak_bytes": int(max(traced, rss)),
             "rss_method": method}
    return (stats, result) if keep_result else stats
