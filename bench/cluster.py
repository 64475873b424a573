"""``python -m bench dask``: the same loss on a Dask cluster and in one process, on the same cores.

The logits (float32, N x V, 1 GB and more by default) are generated block by block from seeded
normals: once in this process, once on the workers of a ``dask.distributed.LocalCluster``
(``--workers`` processes x 1 thread, persisted there before timing).  Then, interleaved round by
round, best of ``--repeats``:

    one process   xent_fast.cross_entropy(_and_grad) on the whole array, --threads OpenMP threads
    rows          xent_fast.dask on logits chunked by rows (the fused kernel per block)
    rows x classes  the same logits also chunked along the classes (vocabulary-parallel partials,
                  combined in a tree; each block's gradient from its rows' combined partials)

For the gradient passes the cluster's gradient is persisted on the workers (where a training step
would use it) and only the loss is fetched.  Bytes moved between workers come from every worker's
log of outgoing transfers during one timed call, in two parts: blocks of the logits themselves
(which xent_fast never asks for: only Dask's work stealing moves them, to balance the load) and
everything else (targets, partials, losses and their tree-sums: O(rows)).  The overhead ratio is
cluster time / one-process time.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def _block(seed, r0, r1, v):
    return np.random.default_rng([seed, r0]).standard_normal((r1 - r0, v), dtype=np.float32)


def _targets(n, v, seed):
    return np.random.default_rng([seed, 2**40]).integers(0, v, n)


def _on_workers(block_info=None, seed=0, v=0):
    (r0, r1), _ = block_info[None]["array-location"]
    return _block(seed, r0, r1, v)


def _best(times):
    return min(times), float(np.median(times))


def _clear_transfer_logs(client):
    client.run(lambda dask_worker: dask_worker.transfer_outgoing_log.clear())


def _moved_between_workers(client, logits_names):
    """Bytes sent from worker to worker since the logs were cleared: (logits blocks, the rest)."""
    logs = client.run(lambda dask_worker: list(dask_worker.transfer_outgoing_log))
    workers = set(logs)
    logits = other = 0
    for entries in logs.values():
        for entry in entries:
            if entry["who"] not in workers:  # results gathered by the client
                continue
            for key, nbytes in entry["keys"].items():
                name = key[0] if isinstance(key, tuple) else key
                if name in logits_names:
                    logits += nbytes
                else:
                    other += nbytes
    return logits, other


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench dask", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="8192x32768", help="N x V (default 8192x32768: 1.07 GB)")
    parser.add_argument("--rows", type=int, default=1024, help="rows per chunk")
    parser.add_argument("--class-chunks", type=int, default=4,
                        help="class chunks of the 'rows x classes' layout")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="the one process's threads")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    try:
        import dask
        import dask.array as da
        from dask.distributed import Client, LocalCluster, wait
    except ImportError:
        parser.exit(2, "python -m bench dask needs the [dask] extra: pip install -e '.[dask]'\n")
    import xent_fast
    import xent_fast.dask as xd

    n, v = (int(s) for s in args.shape.lower().split("x"))
    chunk_rows = [min(args.rows, n - r) for r in range(0, n, args.rows)]
    x = np.concatenate([_block(args.seed, r, r + c, v) for r, c in
                        zip(np.cumsum([0] + chunk_rows[:-1]), chunk_rows)])
    t = _targets(n, v, args.seed)
    print(f"logits {n} x {v} float32 = {x.nbytes / 1e9:.2f} GB; cluster: {args.workers} "
          f"workers x 1 thread; one process: {args.threads} threads; best of {args.repeats}")

    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, memory_limit=0) as cluster, Client(cluster) as client:
        X_rows = da.map_blocks(_on_workers, chunks=(tuple(chunk_rows), (v,)), dtype=np.float32,
                               seed=args.seed, v=v).persist()
        wait(X_rows)
        class_chunk = -(-v // args.class_chunks)
        X_both = X_rows.rechunk((tuple(chunk_rows), class_chunk)).persist()
        wait(X_both)
        T = da.from_array(t, chunks=(tuple(chunk_rows),)).persist()
        layouts = {"rows": X_rows, "rows x classes": X_both}

        def one_process(grad):
            if grad:
                return xent_fast.cross_entropy_and_grad(x, t, num_threads=args.threads)[0]
            return xent_fast.cross_entropy(x, t, num_threads=args.threads)

        def on_cluster(X, grad):
            if not grad:
                return xd.cross_entropy(X, T).compute()
            loss, g = dask.persist(*xd.cross_entropy_and_grad(X, T))
            wait(g)
            value = loss.compute()
            del g
            return value

        results = []
        for grad in (False, True):
            name = "fwd+grad" if grad else "fwd"
            times = {"one process": []} | {k: [] for k in layouts}
            moved = {k: [] for k in layouts}
            names = {X.name for X in layouts.values()}
            expected = float(one_process(grad))
            for X in layouts.values():  # warm-up: the scheduler learns the tasks' durations
                on_cluster(X, grad)
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                one_process(grad)
                times["one process"].append(time.perf_counter() - t0)
                for layout, X in layouts.items():
                    _clear_transfer_logs(client)
                    t0 = time.perf_counter()
                    got = float(on_cluster(X, grad))
                    times[layout].append(time.perf_counter() - t0)
                    moved[layout].append(_moved_between_workers(client, names))
                    if not np.isclose(got, expected, rtol=1e-5):
                        raise SystemExit(f"{layout} {name}: loss {got} != {expected}")
            base = _best(times["one process"])[0]
            for who, ts in times.items():
                best, median = _best(ts)
                m = moved.get(who)
                row = dict(passes=name, contender=who, best_ms=best * 1e3, median_ms=median * 1e3,
                           spread_ms=(max(ts) - min(ts)) * 1e3, ratio=best / base,
                           moved_logits_bytes=None if m is None else int(np.median([a for a, _ in m])),
                           moved_other_bytes=None if m is None else int(np.median([b for _, b in m])))
                results.append(row)

    print("\n| pass | contender | best ms | median ms | x one process | bytes between workers: "
          "partials, targets, losses | per row | logits blocks (work stealing) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        cluster = r["moved_other_bytes"] is not None
        other = f"{r['moved_other_bytes']:,}" if cluster else ""
        per = f"{r['moved_other_bytes'] / n:.1f}" if cluster else ""
        logits = f"{r['moved_logits_bytes']:,}" if cluster else ""
        print(f"| {r['passes']} | {r['contender']} | {r['best_ms']:.1f} | {r['median_ms']:.1f} | "
              f"{r['ratio']:.2f} | {other} | {per} | {logits} |")
    print(f"\n(the logits are {x.nbytes:,} bytes: {x.nbytes / n:,.0f} per row)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(shape=[n, v], rows_per_chunk=args.rows, class_chunks=args.class_chunks,
                           workers=args.workers, threads=args.threads, cpu=_cpu_name(),
                           results=results), f, indent=1)
    return 0


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return os.uname().machine
