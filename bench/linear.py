"""``python -m bench linear``: the fused linear + cross-entropy (issue 12) against its floor and peers.

Forward + gradients (loss, d/d input, d/d weight) of a linear output layer and cross-entropy, float32,
(N, D) hidden states, a (V, D) weight, no bias, int64 class targets, reduction 'mean':

    xent_fast         xent_fast.linear_cross_entropy_and_grad (chunk_size=None: the memory budget)
    xent_fast_1chunk  the same with chunk_size=N: full logits, one kernel call (what chunking costs)
    blas_floor        the three products alone, unchunked: L = x @ W.T, L @ W, L.T @ x (the floor)
    blas_chunked      the same products in xent_fast's chunk loop (same chunks, buffers, staging
                      adds), without the cross-entropy kernel: what the kernel adds to the products
    numpy             the unfused NumPy path: logits, in-place log-softmax and softmax - onehot, 2 products
    torch             torch.nn.functional.linear_cross_entropy fwd + backward (reference path)
    torch_chunked     the same with options=torch.nn.LinearCrossEntropyOptions() (its chunked path)

Each contender runs in its own process (``python -m bench.linear --worker NAME ...``), with
OMP/MKL/OPENBLAS_NUM_THREADS (and torch.set_num_threads) at --threads.  Per contender and shape:
one call under bench.memory.peak_memory (warm-up and extra peak memory, results included), then
--repeats timed calls; reported: best-of-k and median.  ``beyond outputs`` subtracts the
returned gradients' bytes; ``% logits`` relates it to the full (N, V) logits.  Each contender's loss
is checked against xent_fast's.  The machine's other load shows in the timings: compare within one run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from .threads import available_cpus, pin_to_cpus, worker_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SHAPES = "2048x512x32000,4096x1024x128256"
CONTENDERS = ("xent_fast", "xent_fast_1chunk", "blas_floor", "blas_chunked", "numpy", "torch",
              "torch_chunked")


class Unavailable(Exception):
    pass


def make_inputs(n, d, v, seed):
    """x (N, D), W (V, D) scaled so that logits are ~N(0, 1), targets uniform over V."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d), dtype=np.float32)
    w = rng.standard_normal((v, d), dtype=np.float32) * np.float32(1.0 / np.sqrt(d))
    t = rng.integers(0, v, n)
    return x, w, t


def _numpy_unfused(x, w, t):
    """What a careful NumPy user writes: full logits, in place where possible."""
    n = x.shape[0]
    rows = np.arange(n)
    logits = x @ w.T
    m = logits.max(axis=1, keepdims=True)
    logits -= m
    target_logit = logits[rows, t]
    np.exp(logits, out=logits)
    s = logits.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(s[:, 0]) - target_logit))
    logits /= s
    logits[rows, t] -= 1.0
    logits *= np.float32(1.0 / n)
    return loss, logits @ w, logits.T @ x


def _blas_floor(x, w, t):
    logits = x @ w.T
    return float("nan"), logits @ w, logits.T @ x


def _blas_chunked(x, w, t):
    from xent_fast.linear import default_chunk_size

    (n, d), v = x.shape, w.shape[0]
    c = default_chunk_size(n, v, x.itemsize)
    buf = np.empty((c, v), x.dtype)
    gx, gw = np.empty_like(x), np.empty_like(w)
    tmp = np.empty((max(1, min(v, c * v // (4 * d))), d), x.dtype)
    for lo in range(0, n, c):
        hi = min(lo + c, n)
        g = buf[:hi - lo]
        np.matmul(x[lo:hi], w.T, out=g)
        np.matmul(g, w, out=gx[lo:hi])
        if lo == 0:
            np.matmul(g.T, x[lo:hi], out=gw)
            continue
        for r in range(0, v, tmp.shape[0]):
            part = tmp[:min(tmp.shape[0], v - r)]
            np.matmul(g.T[r:r + part.shape[0]], x[lo:hi], out=part)
            gw[r:r + part.shape[0]] += part
    return float("nan"), gx, gw


def build(name, x, w, t, threads):
    """A zero-argument callable for one fwd+grad call returning (loss, grad_input, grad_weight)."""
    if name.startswith("xent_fast"):
        import xent_fast

        chunk = x.shape[0] if name == "xent_fast_1chunk" else None
        return lambda: xent_fast.linear_cross_entropy_and_grad(x, w, t, chunk_size=chunk)
    if name == "blas_floor":
        return lambda: _blas_floor(x, w, t)
    if name == "blas_chunked":
        return lambda: _blas_chunked(x, w, t)
    if name == "numpy":
        return lambda: _numpy_unfused(x, w, t)
    try:
        import torch
    except ImportError as exc:
        raise Unavailable(f"PyTorch not installed ({exc})") from None
    torch.set_num_threads(threads)
    f = getattr(torch.nn.functional, "linear_cross_entropy", None)
    if f is None:
        raise Unavailable(f"torch {torch.__version__} has no F.linear_cross_entropy")
    opts = None
    if name == "torch_chunked":
        opts = torch.nn.LinearCrossEntropyOptions()
    xt = torch.from_numpy(x).requires_grad_(True)
    wt = torch.from_numpy(w).requires_grad_(True)
    tt = torch.from_numpy(t)

    def call():
        xt.grad = wt.grad = None
        loss = f(xt, wt, tt, options=opts)
        loss.backward()
        return float(loss.item()), xt.grad.numpy(), wt.grad.numpy()
    return call


def _threadpools():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [{k: p.get(k) for k in ("user_api", "internal_api", "num_threads")}
            for p in threadpool_info()]


def worker(name, shape, threads, repeats, seed):
    """Time one contender on one shape in this process; print one JSON line."""
    from . import memory

    pin_to_cpus(threads)
    n, d, v = shape
    x, w, t = make_inputs(n, d, v, seed)
    out = {"contender": name, "shape": shape}
    try:
        fn = build(name, x, w, t, threads)
    except Unavailable as exc:
        out["note"] = str(exc)
        print(json.dumps(out), flush=True)
        return
    # The first call is the warm-up and the memory measurement (at these sizes one call's
    # start-up costs are small next to it, and a call saved is many seconds).
    t0 = time.perf_counter()
    stats, res = memory.peak_memory(fn, keep_result=True)
    out["first_s"] = time.perf_counter() - t0
    out.update(stats)
    out["output_bytes"] = int(sum(np.asarray(r).nbytes for r in res[1:]))
    out["loss"] = float(res[0])
    out["grad_norms"] = [float(np.linalg.norm(np.asarray(r, np.float64))) for r in res[1:]]
    del res
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    out["times_s"] = times
    out["threadpools"] = _threadpools()
    print(json.dumps(out), flush=True)


def _run_worker(name, shape, args):
    cmd = [sys.executable, "-m", "bench.linear", "--worker", name, "--shape",
           "x".join(map(str, shape)), "--threads", str(args.threads), "--repeats",
           str(args.repeats), "--seed", str(args.seed)]
    family = "torch" if name.startswith("torch") else name
    proc = subprocess.run(cmd, cwd=ROOT, env=worker_env(args.threads, family),
                          capture_output=True, text=True, timeout=args.timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"contender": name, "shape": list(shape),
                "note": f"worker failed (code {proc.returncode}): {proc.stderr[-300:]}"}
    return json.loads(lines[-1])


def _mb(b):
    return f"{b / 2**20:,.0f}"


def report(results, shapes):
    """Markdown tables, one per shape."""
    lines = []
    for shape in shapes:
        n, d, v = shape
        logits_bytes = n * v * 4
        rows = [r for r in results if tuple(r["shape"]) == tuple(shape)]
        xf = next((r for r in rows if r["contender"] == "xent_fast" and "times_s" in r), None)
        floor = next((r for r in rows if r["contender"] == "blas_floor" and "times_s" in r), None)
        lines += ["", f"### N={n}, D={d}, V={v} float32 (full logits {_mb(logits_bytes)} MB, "
                  f"{6 * n * d * v / 1e9:.0f} GFLOP in the three products)", "",
                  "| contender | best ms | median ms | x floor | vs xent_fast | peak MB | "
                  "beyond outputs MB | % logits | loss |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            if "times_s" not in r:
                lines.append(f"| {r['contender']} | — | | | | | | | {r.get('note', '')} |")
                continue
            best, med = min(r["times_s"]), float(np.median(r["times_s"]))
            extra = max(0, r["peak_bytes"] - r["output_bytes"])
            x_floor = f"{best / min(floor['times_s']):.2f}" if floor else ""
            vs_xf = f"{best / min(xf['times_s']):.2f}" if xf else ""
            lines.append(f"| {r['contender']} | {best * 1e3:,.0f} | {med * 1e3:,.0f} | {x_floor} | "
                         f"{vs_xf} | {_mb(r['peak_bytes'])} | {_mb(extra)} | "
                         f"{100 * extra / logits_bytes:.1f} | {r['loss']:.6f} |")
        if xf:
            bad = [r["contender"] for r in rows if "loss" in r and r["loss"] == r["loss"]
                   and (abs(r["loss"] - xf["loss"]) > 1e-4 * max(1.0, abs(xf["loss"]))
                        or not np.allclose(r["grad_norms"], xf["grad_norms"], rtol=1e-3))]
            if bad:
                lines.append(f"\nLOSS MISMATCH against xent_fast: {', '.join(bad)}")
            lines.append(f"\nthread pools in the xent_fast worker: {xf.get('threadpools')}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench linear", description=__doc__.splitlines()[0],
                                epilog=__doc__.split("\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", default=DEFAULT_SHAPES, help="comma list of NxDxV (default %(default)s)")
    p.add_argument("--contenders", default=",".join(CONTENDERS), help="comma list (default all)")
    p.add_argument("--threads", type=int, default=available_cpus())
    p.add_argument("--repeats", type=int, default=3, help="timed calls per contender (best-of-k)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=1800.0)
    p.add_argument("--json", default=None, help="also write the raw results to this file")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--shape", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.worker, [int(s) for s in args.shape.split("x")], args.threads, args.repeats,
               args.seed)
        return 0
    shapes = [tuple(int(s) for s in spec.split("x")) for spec in args.shapes.split(",") if spec]
    names = [c for c in args.contenders.split(",") if c]
    unknown = set(names) - set(CONTENDERS)
    if unknown:
        raise SystemExit(f"python -m bench linear: unknown contenders {sorted(unknown)}")
    results = []
    t0 = time.time()
    for shape in shapes:
        for name in names:
            print(f"{name} {shape} ...", file=sys.stderr, flush=True)
            results.append(_run_worker(name, shape, args))
    load = os.getloadavg()
    print(f"# python -m bench linear: fwd + grad, float32, {args.threads} threads, best of "
          f"{args.repeats} (load average at the end {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f} on "
          f"{available_cpus()} CPUs: a busy machine makes every figure noisy)")
    print(report(results, shapes))
    print(f"\ndone in {time.time() - t0:.0f} s", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
