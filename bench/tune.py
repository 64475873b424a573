"""``python -m bench tune``: measure this machine's switch points and print the tuning-table row.

The cross-entropy kernel switches, per class count C, between two loops (across rows for few
classes, the row loop for more) and, for rows longer than a batch, between prefetching the next
row and not; csrc/tuning.c holds the switch points per CPU.  This tool times both sides of every
switch on this machine over a range of class counts, each side in its own worker process forced
with ``XENT_FAST_TUNE`` (all rows across vs none; always prefetch vs never), the two sides of one
class count interleaved, best of k.  For each switch it picks the threshold (one of the measured
class counts, or 0) that minimises the summed slow-down against the faster side at every measured
count, writes every time to ``bench/tuning/<cpu>.csv`` and prints the row to paste into
csrc/tuning.c.  The choice is made here, once, by a person adding a row: the library itself never
times anything at run time.

Timings on a shared machine are noisy: the run reports the CPU time other processes took.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import re
import subprocess
import sys
import time

from .environment import _git, background_load, cpu_snapshot
from .procs import ROOT
from .threads import available_cpus, worker_env

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "tuning")
BIG = 10**14  # "always" for a switch point (the largest override is 15 digits)

# switch: (dtype, with gradient, class counts); the grid spans both ISAs' switch points
ACROSS_CLASSES = (4, 8, 12, 16, 20, 24, 32, 37, 40, 48, 64, 80, 96, 128)
ACROSS = {
    "across_f32": ("float32", False),
    "across_grad_f32": ("float32", True),
    "across_f64": ("float64", False),
    "across_grad_f64": ("float64", True),
}
# float32 rows of 6 KB to 512 KB, longer than a batch (csrc/kernels.inc BATCH_MAX_CLASSES)
PREFETCH_CLASSES = (1536, 2000, 4000, 8000, 16000, 32000, 64000, 128000)
SIDES = {  # worker name: XENT_FAST_TUNE
    "across": ",".join(f"{k}={BIG}" for k in ACROSS),
    "rows": ",".join(f"{k}=0" for k in ACROSS),
    "prefetch": f"prefetch_row_max_bytes={BIG}",
    "no-prefetch": "prefetch_row_max_bytes=0",
}
FIELDS = ("across_f32", "across_grad_f32", "across_f64", "across_grad_f64", "prefetch_row_max_bytes")

EPILOG = """
what is timed
  across_f32, across_grad_f32, across_f64, across_grad_f64: cross_entropy (and cross_entropy_and_grad
  with out=, the gradient's rows contiguous) on about --elems elements (cache-resident on most
  servers) at class counts 4 to 128, with every row across (XENT_FAST_TUNE=across_*=10^14) and
  with the row loop (across_*=0).  prefetch_row_max_bytes: float32 cross_entropy from memory
  (--memory-elems) at 1536 to 128000 classes, prefetching every row vs none.
  Per class count the two sides take turns --rounds times; each turn is one untimed call, then
  timed calls for --turn-ms (at least 3); the best call of all turns counts.

choice
  For each switch the threshold T (0 or a measured class count / row size) that minimises the sum
  over the measured points of log(time(T) / time(faster side)): the across loop (or prefetch) up
  to T.  On a busy machine (2 threads waiting for each other while other processes run) single
  points can be far off: look at the table, repeat, or measure with --threads 1.

output
  the measurements as a table, bench/tuning/<cpu>.csv (--out), and the C row for csrc/tuning.c.
  Default run: about 1-3 minutes (--quick: less than one).
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench tune", description=__doc__.split("\n\n")[0],
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=available_cpus(), metavar="N",
                   help="threads (default: all CPUs, %(default)s)")
    p.add_argument("--isa", choices=("baseline", "avx2", "avx512"),
                   help="measure this path (XENT_FAST_ISA) instead of the one the CPU picks")
    p.add_argument("--rounds", type=int, default=7, metavar="K", help="turns per side and class "
                   "count (default %(default)s; quick 3)")
    p.add_argument("--turn-ms", type=float, default=25.0, metavar="MS",
                   help="timed calls per turn: for at least MS milliseconds and 3 calls; the best "
                        "one counts (default %(default)s; quick 10)")
    p.add_argument("--elems", type=int, default=2**21, metavar="E",
                   help="elements per problem for the across-rows switches (default %(default)s)")
    p.add_argument("--memory-elems", type=int, default=2**25, metavar="E",
                   help="elements per problem for the prefetch switch, past the caches "
                        "(default %(default)s)")
    p.add_argument("--switches", default=",".join(FIELDS), metavar="LIST",
                   help="comma list from: %(default)s")
    p.add_argument("--quick", action="store_true", help="fewer turns and calls")
    p.add_argument("--out", metavar="PATH", help="CSV path (default bench/tuning/<cpu>-<isa>.csv)")
    p.add_argument("--no-csv", action="store_true", help="do not write the CSV")
    return p


# ---------------------------------------------------------------------------------------------
# worker: python -m bench.tune --worker; one JSON request per line on stdin, one reply on stdout
# ---------------------------------------------------------------------------------------------

def _worker() -> int:
    import numpy as np

    import xent_fast as xf
    from .threads import pin_to_cpus

    out = sys.stdout
    sys.stdout = sys.stderr
    pin_to_cpus(int(os.environ.get("BENCH_THREADS", "0")) or available_cpus())
    cfg = xf.show_config(mode="dicts")
    # the table's row as it stands, without this worker's XENT_FAST_TUNE
    table_row = next(r for r in xf._kernels.tuning_rows() if r["name"] == cfg["tuning"]["name"])
    out.write(json.dumps({"config": cfg, "table_row": table_row}) + "\n")
    out.flush()
    key, data = None, None
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("op") == "quit":
            break
        k = (req["dtype"], req["classes"], req["elems"], req["grad"])
        if k != key:
            data = None
            rng = np.random.default_rng(0)
            c = req["classes"]
            n = max(1, req["elems"] // c)
            x = rng.standard_normal((n, c), dtype=np.float32).astype(req["dtype"]) * 3
            t = rng.integers(0, c, n)
            g = np.empty_like(x) if req["grad"] else None
            data, key = (x, t, g), k
        x, t, g = data
        call = ((lambda: xf.cross_entropy_and_grad(x, t, out=g)[0]) if g is not None
                else (lambda: xf.cross_entropy(x, t)))
        loss = float(call())
        best, calls, start = float("inf"), 0, time.perf_counter()
        while calls < 3 or time.perf_counter() - start < req["turn_s"]:
            t0 = time.perf_counter()
            call()
            best, calls = min(best, time.perf_counter() - t0), calls + 1
        out.write(json.dumps({"ms": best * 1e3, "loss": loss, "rows": int(x.shape[0]),
                              "bytes": int(x.nbytes)}) + "\n")
        out.flush()
    return 0


class _Worker:
    def __init__(self, side: str, threads: int, isa):
        env = worker_env(threads, "xent_fast")
        env["XENT_FAST_TUNE"] = SIDES[side]
        if isa:
            env["XENT_FAST_ISA"] = isa
        else:
            env.pop("XENT_FAST_ISA", None)
        self.side = side
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.tune", "--worker"], cwd=ROOT,
                                     env=env, text=True, bufsize=1, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)
        hello = self._reply()
        self.config, self.table_row = hello["config"], hello["table_row"]

    def _reply(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise SystemExit(f"python -m bench tune: the {self.side} worker exited "
                             f"(code {self.proc.returncode}); see its error above")
        return json.loads(line)

    def time(self, **req) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._reply()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------------------------------------
# measuring and choosing
# ---------------------------------------------------------------------------------------------

def _interleaved(a: _Worker, b: _Worker, rounds: int, turn_s: float, **req):
    """Best-of-``rounds`` milliseconds of both workers on one problem, taking turns."""
    best = {a.side: float("inf"), b.side: float("inf")}
    losses, info = {}, {}
    for r in range(rounds):
        for w in ((a, b) if r % 2 == 0 else (b, a)):
            rep = w.time(turn_s=turn_s, **req)
            best[w.side] = min(best[w.side], rep["ms"])
            losses[w.side], info = rep["loss"], rep
    lo, hi = losses.values()
    if abs(lo - hi) > 1e-4 * max(abs(lo), abs(hi), 1.0):
        print(f"  WARNING: the two sides disagree at {req}: losses {lo} and {hi}", file=sys.stderr)
    return best[a.side], best[b.side], info


def choose_threshold(points):
    """The T minimising the summed log slow-down, sum(log(time with T / best time)), over
    ``points`` = [(x, t_on, t_off)], where the 'on' side (across rows, prefetch) runs for x <= T;
    T is 0 or one of the x.  Logs, so that one disturbed point does not outweigh the others."""
    def cost(limit):
        return sum(math.log((on if x <= limit else off) / min(on, off)) for x, on, off in points)

    candidates = [0] + sorted(x for x, _, _ in points)
    return min(candidates, key=lambda limit: (cost(limit), limit))


def cpu_slug(cpu: dict) -> str:
    """A file name for this CPU: brand words, family and model, e.g. amd-epyc-f25-m01."""
    brand = re.sub(r"\((R|TM)\)|\bCPU\b|\bProcessor\b|@.*$|\d+-Core", " ", cpu["brand"] or "",
                   flags=re.I)
    words = re.findall(r"[a-z0-9]+", brand.lower()) or [cpu["vendor"].lower()]
    return f"{'-'.join(words)}-f{cpu['family']}-m{cpu['model']:02x}"


def _threads(n: int) -> str:
    return f"{n} thread{'s' if n != 1 else ''}"


def _row_text(cpu, isa, values, csv_rel, commit, threads, load):
    name = f"{cpu_slug(cpu)}-{isa}"
    when = datetime.date.today().isoformat()
    busy = f", other processes {load:.2f} CPUs" if load is not None else ""
    model = f"0x{cpu['model']:02X}"
    prefer = f"\"{values['prefer_isa']}\"" if values["prefer_isa"] else "NULL"
    return (f"    /* {cpu['brand'] or cpu['vendor']} (family {cpu['family']} model {model}), path {isa}:\n"
            f"     * `python -m bench tune`, {_threads(threads)}, {when}, "
            f"commit {commit}{busy}.\n"
            f"     * (Widen the model range only to models of the same microarchitecture.) */\n"
            f"    {{\"{name}\", \"{cpu['vendor']}\", {cpu['family']}, {model}, {model}, \"{isa}\", {prefer}, "
            f"{values['across_f32']}, {values['across_grad_f32']}, {values['across_f64']}, "
            f"{values['across_grad_f64']}, {values['prefetch_row_max_bytes']},\n"
            f"     \"{csv_rel}\"}},")


def main(argv=None) -> int:
    """Measure, write the CSV, print the row.  Returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.quick:
        args.rounds, args.turn_ms = min(args.rounds, 3), min(args.turn_ms, 10.0)
    switches = [s.strip() for s in args.switches.split(",") if s.strip()]
    bad = [s for s in switches if s not in FIELDS]
    if bad or args.threads < 1 or args.rounds < 1 or args.turn_ms < 0:
        raise SystemExit(f"python -m bench tune: unknown switch {', '.join(bad)}" if bad else
                         "python -m bench tune: --threads and --rounds must be >= 1, --turn-ms >= 0")
    across = [s for s in switches if s in ACROSS]
    sides = (["across", "rows"] if across else []) + (
        ["prefetch", "no-prefetch"] if "prefetch_row_max_bytes" in switches else [])
    t0, load_start = time.time(), cpu_snapshot()
    workers = {}
    try:
        for side in sides:
            workers[side] = _Worker(side, args.threads, args.isa)
        first = next(iter(workers.values()))
        cpu, isa, row = first.config["cpu"], first.config["isa"]["in_use"], dict(first.table_row)
        print(f"python -m bench tune: {cpu['brand'] or cpu['vendor']} (family {cpu['family']}, model "
              f"0x{cpu['model']:02X}), path {isa}, {_threads(args.threads)}; the row in force now: "
              f"{row['name']}", file=sys.stderr)
        rows_csv, chosen = [], {}
        for switch in switches:
            if switch in ACROSS:
                dtype, grad = ACROSS[switch]
                a, b, grid, elems = workers["across"], workers["rows"], ACROSS_CLASSES, args.elems
            else:
                dtype, grad = "float32", False
                a, b, grid, elems = (workers["prefetch"], workers["no-prefetch"], PREFETCH_CLASSES,
                                     args.memory_elems)
            print(f"\n{switch} ({dtype}, {'fwd+grad(out=)' if grad else 'fwd'}): best of "
                  f"{args.rounds} turns, ms", file=sys.stderr)
            print(f"  {'classes':>8} {a.side:>12} {b.side:>12} {b.side + '/' + a.side:>20}",
                  file=sys.stderr)
            points = []
            for c in grid:
                on, off, info = _interleaved(a, b, args.rounds, args.turn_ms / 1e3, dtype=dtype,
                                             classes=c, elems=elems, grad=grad)
                x = c if switch in ACROSS else c * 4
                points.append((x, on, off))
                print(f"  {c:>8} {on:>12.4f} {off:>12.4f} {off / on:>20.2f}", file=sys.stderr)
                for side, ms in ((a.side, on), (b.side, off)):
                    rows_csv.append([switch, isa, dtype, "fwd+grad(out=)" if grad else "fwd", c,
                                     info["rows"], info["bytes"], side, f"{ms:.4f}"])
            chosen[switch] = choose_threshold(points)
            print(f"  -> {switch} = {chosen[switch]}", file=sys.stderr)
    finally:
        for w in workers.values():
            w.close()
    load = background_load(load_start, cpu_snapshot())["other_cpus"]
    row.update(chosen)
    slug = f"{cpu_slug(cpu)}-{isa}"
    path = args.out or os.path.join(OUT_DIR, slug + ".csv")
    commit = (_git("rev-parse", "--short", "HEAD") or "unknown") + (
        "+dirty" if _git("status", "--porcelain") else "")
    csv_rel = os.path.relpath(path, ROOT).replace(os.sep, "/")
    if not args.no_csv:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            f.write(f"# python -m bench tune: {cpu['brand']} ({cpu['vendor']} family {cpu['family']} "
                    f"model 0x{cpu['model']:02X} stepping {cpu['stepping']}), path {isa}, "
                    f"{_threads(args.threads)}, best of {args.rounds} turns of {args.turn_ms:g} ms, "
                    f"{datetime.datetime.now().isoformat(timespec='seconds')}, commit {commit}, "
                    f"other processes {load if load is None else round(load, 2)} CPUs\n")
            f.write(f"# chosen: {', '.join(f'{k}={v}' for k, v in chosen.items())}\n")
            f.write("switch,isa,dtype,pass,classes,rows,bytes,side,best_ms\n")
            for r in rows_csv:
                f.write(",".join(map(str, r)) + "\n")
    print(f"\nmeasured in {time.time() - t0:.0f} s; other processes used "
          f"{'an unknown share of' if load is None else f'{load:.2f}'} CPUs on average "
          f"(timings on a busy machine are noisy: repeat, or raise --rounds)", file=sys.stderr)
    if not args.no_csv:
        print(f"measurements: {csv_rel}", file=sys.stderr)
    print("row for csrc/tuning.c (switches not measured keep the values in force now):")
    print(_row_text(cpu, isa, row, csv_rel, commit, args.threads, load))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        sys.exit(_worker())
    sys.exit(main())
