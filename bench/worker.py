"""Worker process: ``python -m bench.worker FAMILY --threads N``.

One process per contender family (xent_fast, reference, torch, jax) plus one for the roofline, so
that no library's thread pool or allocator disturbs another's timings. The runner talks to it in
JSON lines: the worker first prints a ``hello`` (whether its library loaded, versions), then
answers each request on stdin with one line on stdout:

* ``{"op": "run", "contender", "mode", "case", "seed", "first", "budget_s", "min_samples",
  "max_samples", "warmup_s", "warmup_calls"}``: time one contender on one case. With ``first`` it warms up (JIT,
  thread pools), records the loss and the gradient's squared norm for the sanity check and the
  peak memory of one call; otherwise it makes one untimed call to bring the inputs back into cache.
  ``first_call_sample`` (with ``warmup_calls`` 1, the slow reference): that first call's time is the
  only sample.
* ``{"op": "roofline", "size_mb", "repeats"}``: see :mod:`bench.roofline`.
* ``{"op": "drop"}`` frees the current case's inputs; ``{"op": "quit"}`` exits.

Anything a library prints goes to stderr: the protocol owns a private copy of the original stdout.
"""
from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import sys
import time
import traceback

import numpy as np

from . import memory, roofline, timing
from .cases import case_from_dict, make_inputs
from .contenders import FAMILY_MODULES, Unavailable
from .threads import pin_to_cpus

REWARM_BELOW_S = 0.05  # calls shorter than this get an untimed cache-warming call in later rounds


def _threadpools():
    """The native thread pools loaded after the library (threadpoolctl, when installed)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    keep = ("user_api", "internal_api", "prefix", "num_threads", "version")
    return [{k: pool.get(k) for k in keep} for pool in threadpool_info()]


def _squared_norm(a) -> float:
    flat = np.ravel(a)
    if flat.dtype.itemsize < 4:  # float16 / bfloat16: a dot product in half precision loses the sum
        flat = flat.astype(np.float32)
    return float(np.dot(flat, flat))


class Worker:
    """State of one worker: its family module and the current case's prepared inputs."""

    def __init__(self, family: str, threads: int):
        self.family, self.threads = family, threads
        self.module = None
        self.case_key, self.data, self.fns, self.estimates = None, None, {}, {}

    def hello(self) -> dict:
        """Load the family's library; report ``ok`` and versions, or ``ok: False`` and a note."""
        cpus = pin_to_cpus(self.threads)
        info = {"type": "hello", "family": self.family, "pid": os.getpid(), "cpus": cpus,
                "threads": self.threads, "numpy": np.__version__}
        if self.family == "roofline":
            return {**info, "ok": True}
        try:
            self.module = importlib.import_module(FAMILY_MODULES[self.family])
            info["info"] = self.module.load(self.threads)
            return {**info, "ok": True, "threadpools": _threadpools()}
        except Unavailable as exc:
            return {**info, "ok": False, "note": str(exc)}

    def _ensure_case(self, case, seed):
        if self.case_key != (case.key, seed):
            self.drop()
            logits, targets = make_inputs(case, seed)
            self.data = self.module.prepare(case, logits, targets)
            self.case_key = (case.key, seed)

    def drop(self):
        """Forget the current case's inputs and compiled functions."""
        self.case_key, self.data, self.fns, self.estimates = None, None, {}, {}
        gc.collect()

    def run(self, req: dict) -> dict:
        """Time one contender on one case (see the module docstring)."""
        case = case_from_dict(req["case"])
        self._ensure_case(case, req.get("seed", 0))
        key = (req["contender"], req["mode"])
        if key not in self.fns:
            self.fns[key] = self.module.make(req["contender"], req["mode"], case, self.data)
        fn = self.fns[key]
        first, no_jit = req.get("first", True), req.get("warmup_calls", 2) <= 1
        out = {"type": "result"}
        if first:
            estimate = self._first_calls(fn, req, case, no_jit, out)
        elif self.estimates.get(key, 0.0) < REWARM_BELOW_S:
            # other contenders ran in between: one untimed call brings the inputs back into cache
            _, estimate, _ = timing.warm_up(fn, min_calls=1, min_time_s=0.0)
        else:  # a slow call streams its inputs from memory anyway
            estimate = self.estimates[key]
        self.estimates[key] = estimate
        if first and no_jit and req.get("first_call_sample"):
            times, inner = [estimate], 1  # a slow baseline's checked, memory-measured call is its sample
        else:
            times, inner = timing.sample(fn, estimate, req["budget_s"], req["min_samples"],
                                         req["max_samples"])
        if first and not no_jit:
            if hasattr(self.module, "release"):  # drop outputs the library keeps alive between calls
                self.module.release(self.data)
            out["memory"] = memory.peak_memory(fn)  # last: its malloc_trim must not slow a timed call
        out.update(times_s=times, inner=inner)
        return out

    def _first_calls(self, fn, req, case, no_jit, out) -> float:
        """Warm up and record loss, gradient norm (and, if ``no_jit``, memory); returns a call's time."""
        if no_jit:  # nothing to compile: the peak-memory call doubles as the warm-up call
            t0 = time.perf_counter()
            out["memory"], result = memory.peak_memory(fn, keep_result=True)
            first_s = estimate = time.perf_counter() - t0
        else:  # first call (JIT compilation, thread start-up), then steady-state calls
            first_s, estimate, result = timing.warm_up(fn, min_calls=req.get("warmup_calls", 2),
                                                         min_time_s=req.get("warmup_s", 0.05))
        loss, grad = self.module.to_numpy(result)
        out["first_call_s"], out["loss"] = first_s, loss
        if grad is not None:
            out["grad_sq"] = _squared_norm(grad)
            out["grad_shape_ok"] = tuple(grad.shape) == case.shape
        return estimate

    def handle(self, req: dict) -> dict:
        """Dispatch one request; exceptions become ``{"error": ...}`` replies."""
        op = req.get("op")
        try:
            if op == "run":
                return self.run(req)
            if op == "roofline":
                return {"type": "roofline", **roofline.measure(self.threads, req.get("size_mb", 512),
                                                                req.get("repeats", 7))}
            if op == "drop":
                self.drop()
                return {"type": "dropped"}
            return {"type": "error", "error": f"unknown op {op!r}"}
        except Unavailable as exc:
            return {"type": "result", "error": str(exc), "unavailable": True}
        except Exception as exc:  # report, keep serving: one failing case must not end the run
            traceback.print_exc(file=sys.stderr)
            return {"type": "result", "error": f"{type(exc).__name__}: {exc}"}


def main(argv=None):
    """Entry point: serve JSON-line requests on stdin until ``quit`` or EOF."""
    parser = argparse.ArgumentParser(description="bench worker (started by `python -m bench`)")
    parser.add_argument("family", choices=sorted(FAMILY_MODULES) + ["roofline"])
    parser.add_argument("--threads", type=int, required=True)
    args = parser.parse_args(argv)

    proto = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints (C or Python) go to stderr
    sys.stdout = sys.stderr

    def reply(obj):
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    worker = Worker(args.family, args.threads)
    reply(worker.hello())
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("op") == "quit":
            break
        reply(worker.handle(req))


if __name__ == "__main__":
    main()
