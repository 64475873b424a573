"""Command line of ``python -m bench`` (run from the checkout root)."""
from __future__ import annotations

import argparse
import os
import sys
import time

from .analysis import relative, speedups
from .cases import EXTENDED_CASES, HALF_CASES, OPTION_CASES, PLAIN_CASES, select_cases
from .contenders import BY_NAME, CONTENDERS, MODES
from .plot import plot_speedups
from .report import markdown, write_json
from .runner import RunConfig, run
from .threads import available_cpus

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_JSON = os.path.join(HERE, "results", "latest.json")
DEFAULT_PLOT = os.path.join(HERE, "results", "speedups.png")

# (default run, --quick) settings; an explicit option overrides either.
PROFILES = {
    "rounds": (6, 2), "reference_rounds": (None, 1), "budget": (1.5, 0.3), "min_samples": (3, 3),
    "reference_samples": (3, 1),
    "max_samples": (40, 10),
    "warmup": (0.1, 0.03), "roofline_mb": (512, 256), "roofline_repeats": (7, 4),
}

EPILOG = f"""
what is timed
  float32 logits (the extended set adds float64; the default set adds float16 and bfloat16, stored in
  half precision, and rows with the loss options softcap, z_loss, logit_scale) with int64
  class-index targets, reduction='mean', all other options at their defaults, on --threads threads
  (default: all {available_cpus()} CPUs):
    xent_fast        xent_fast.cross_entropy / cross_entropy_and_grad (the row's options passed on)
    xent_fast_out    cross_entropy_and_grad(..., out=buf), gradient into a preallocated array of the
                     logits' dtype (fwd+grad)
    xent_fast_1t     cross_entropy(..., num_threads=1) at 32000+ classes (fwd): per-core GB/s, its
                     % roofline against the one-thread read roofline
    reference        xent_fast.reference, the plain NumPy reference (same signatures; float64 inside)
    torch            PyTorch CPU F.cross_entropy on float32/float64/float16/bfloat16 tensors; fwd+grad =
                     autograd backward from a leaf tensor. Options rows: z = logit_scale*x,
                     z = softcap*tanh(z/softcap), F.cross_entropy(z, t) + z_loss*(logsumexp(z, 1)**2).mean()
    jax              JAX CPU jax.jit(-mean(take_along_axis(log_softmax(x)))); fwd+grad = jit(value_and_grad);
                     jnp.float16 / jnp.bfloat16 arrays; options rows as PyTorch's, jax.nn.logsumexp
  Each family runs in its own worker process (python -m bench.worker). A peer that is not installed
  is skipped with a note. Passes: fwd (loss only) and fwd+grad (loss and d loss / d logits).

shapes (--shapes)
  default   {', '.join(c.label for c in PLAIN_CASES)} in float32, and
            {', '.join(c.key for c in HALF_CASES)},
            512x128256 f32 with {'; '.join(' '.join(f'{k}={v:g}' for k, v in c.options.items())
                                           for c in OPTION_CASES)}
            (each row right after the float32 row of its shape)
  quick     the --quick default: the float32 rows and 2048x32000 in bf16 and f16
  plain     the float32 rows of default only (the README's table)
  llm       the half-precision and options rows with the float32 rows they are compared with
  extended  {', '.join(c.key for c in EXTENDED_CASES)}
  all       default + extended
  or a comma list of specs: NxC[:f32|f64|f16|bf16][:axis=K][:softcap=X][:z_loss=X][:logit_scale=X],
  e.g. 2048x32000,1024x50257:f64,32x21x128x128:axis=1,512x128256:softcap=30:z_loss=1e-4

half precision and options (report section)
  Each bf16/f16 row is compared with the f32 row of the same shape and pass (speed-up = f32 time / half
  time; goal >= 1.6x at 32000+ classes), each options row with the plain row of the same shape, dtype
  and pass (time ratio; goal for the forward at 32000+ classes: <= 1.5x with softcap, <= 1.1x for
  z_loss or logit_scale alone), for every contender, when both rows are in the run. GB/s counts
  2 bytes per f16/bf16 logit (and gradient element). On those rows the NumPy reference makes one
  call per pass (checked, memory measured, and its time is the reference's): its calls take seconds.

method
  Per case and pass the contenders take turns over --rounds rounds (rotating order; the reference in
  the first --reference-rounds), each with a share of --budget seconds: warm-up (JIT, thread pools),
  then samples of one call (calls under 1 ms are batched) until the budget is spent and at least
  --min-samples were taken (the slow NumPy reference: --reference-samples). Reported: median and
  best-of-k ms. GB/s = logits bytes read (+ gradient bytes written for fwd+grad) / best time,
  against a read roofline (threaded chunked NumPy add/maximum reduce over a --roofline-mb array) and
  a copy roofline (read+write) measured in the same run, at the start and (full run) the end. Peak
  memory: one call's growth of tracemalloc's peak and of the RSS high-water mark (bench/memory.py).
  Each contender's loss and gradient norm are checked against the reference's. CPU time used by
  other processes during the run is measured, and a warning printed when the machine was busy.
  Threads: OMP/MKL/OPENBLAS_NUM_THREADS, torch.set_num_threads, XLA_FLAGS
  (--xla_cpu_multi_thread_eigen, intra_op_parallelism_threads) and, below all CPUs, CPU affinity.

output
  progress on stderr (tqdm if installed), a Markdown report on stdout, JSON (--json, default
  bench/results/latest.json) and a PNG of the speed-ups (--plot, default bench/results/speedups.png,
  needs matplotlib; best-of-k ratios with the median ratios marked). Exit status 1 if xent_fast itself
  could not be timed at all (e.g. not built).

The default run takes several minutes (more with the half-precision and options rows than the
float32 rows alone); --quick about one on an idle machine (several on a busy one).

subcommand
  python -m bench tune   measure this machine's switch points for csrc/tuning.c (--help there)
  python -m bench dask   a Dask LocalCluster against one process at 1 GB+ of logits (--help there)
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (its --help is the bench's documentation)."""
    p = argparse.ArgumentParser(prog="python -m bench", description="Benchmark xent_fast's cross-entropy "
                                "against its NumPy reference, PyTorch CPU and JAX CPU.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a short run: fewer shapes (--shapes quick), 2 rounds "
                   "(the NumPy reference 1), short budgets, smaller roofline array measured once")
    p.add_argument("--shapes", metavar="SET|SPECS",
                   help="default (quick with --quick), quick, plain, llm, extended, all, small, or a comma list of "
                        "case specs (see below)")
    p.add_argument("--contenders", default=",".join(c.name for c in CONTENDERS), metavar="LIST",
                   help="comma list from: %(default)s")
    p.add_argument("--passes", default="fwd,fwd+grad", metavar="LIST", help="fwd, fwd+grad (or grad); "
                   "default %(default)s")
    p.add_argument("--threads", type=int, default=available_cpus(), metavar="N",
                   help="threads for every contender (default: all CPUs, %(default)s)")
    p.add_argument("--rounds", type=int, metavar="R",
                   help="interleaved rounds per case and pass (6; quick 2): more, shorter turns spread "
                        "the shared machine's bursts of load over every contender alike")
    p.add_argument("--reference-rounds", type=int, metavar="R",
                   help="rounds the slow NumPy reference takes part in (all; quick 1): its calls at "
                        "the largest shapes take seconds each")
    p.add_argument("--budget", type=float, metavar="S",
                   help="seconds of timing per contender, case and pass, over all rounds (1.5; quick 0.3)")
    p.add_argument("--min-samples", type=int, metavar="K", help="at least K timed samples (3)")
    p.add_argument("--reference-samples", type=int, metavar="K",
                   help="at least K samples of the slow NumPy reference (3; quick 1)")
    p.add_argument("--max-samples", type=int, metavar="K", help="at most K timed samples (40; quick 10)")
    p.add_argument("--warmup", type=float, metavar="S", help="warm-up seconds per contender (0.1; quick 0.03)")
    p.add_argument("--roofline-mb", type=int, metavar="MB", help="roofline array size (512; quick 256)")
    p.add_argument("--roofline-repeats", type=int, metavar="K", help="roofline best-of-K (7; quick 4)")
    p.add_argument("--speedup-stat", choices=("median", "best"), default="median",
                   help="time statistic of the speed-up columns (default median; best-of-k is more "
                        "robust on a busy machine); the plot shows best-of-k, medians marked")
    p.add_argument("--seed", type=int, default=0, help="input data seed (default 0)")
    p.add_argument("--json", default=DEFAULT_JSON, metavar="PATH",
                   help="results file (default bench/results/latest.json)")
    p.add_argument("--no-json", action="store_true", help="do not write the JSON file")
    p.add_argument("--plot", default=DEFAULT_PLOT, metavar="PATH",
                   help="PNG plot (default bench/results/speedups.png)")
    p.add_argument("--no-plot", action="store_true", help="do not draw the plot")
    p.add_argument("--full-table", action="store_true", help="also print every measurement")
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    p.add_argument("--verbose", action="store_true", help="let the workers' stderr through")
    p.add_argument("--timeout", type=float, default=900.0, metavar="S",
                   help="give up on a worker after S seconds without an answer (default %(default)s)")
    return p


def _list(text, allowed, what, aliases=None):
    items = [(aliases or {}).get(s.strip(), s.strip()) for s in text.split(",") if s.strip()]
    bad = [s for s in items if s not in allowed]
    if bad:
        raise SystemExit(f"python -m bench: unknown {what} {', '.join(bad)}; choose from {', '.join(allowed)}")
    return list(dict.fromkeys(items))


def config_from_args(args) -> RunConfig:
    """Turn parsed arguments into a RunConfig (quick/default profiles, explicit options win)."""
    profile = 1 if args.quick else 0
    pick = {k: (getattr(args, k) if getattr(args, k) is not None else v[profile]) for k, v in PROFILES.items()}
    try:
        cases = select_cases(args.shapes or ("quick" if args.quick else "default"))
    except ValueError as exc:
        raise SystemExit(f"python -m bench: {exc}") from None
    if args.threads < 1:
        raise SystemExit("python -m bench: --threads must be >= 1")
    return RunConfig(
        cases=cases, contenders=_list(args.contenders, list(BY_NAME), "contender"),
        modes=_list(args.passes, list(MODES), "pass", {"grad": "fwd+grad"}), threads=args.threads,
        rounds=max(1, pick["rounds"]),
        reference_rounds=max(1, min(pick["reference_rounds"] or pick["rounds"], pick["rounds"])),
        budget_s=pick["budget"], min_samples=max(1, pick["min_samples"]),
        reference_min_samples=max(1, pick["reference_samples"]),
        max_samples=max(1, pick["max_samples"]), warmup_s=pick["warmup"], roofline_mb=pick["roofline_mb"],
        roofline_repeats=max(1, pick["roofline_repeats"]), roofline_twice=not args.quick, seed=args.seed,
        timeout_s=args.timeout, verbose=args.verbose, progress=not args.no_progress)


def _shown(path: str) -> str:
    rel = os.path.relpath(path)
    return os.path.abspath(path) if rel.startswith("..") else rel


def main(argv=None) -> int:
    """Run the benchmark; print the report; write JSON and plot. Returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["tune"]:
        from .tune import main as tune_main
        return tune_main(argv[1:])
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    t0 = time.time()
    doc = run(cfg)
    doc["speedups"] = speedups(doc["results"], args.speedup_stat)
    doc["relative"] = relative(doc["results"], args.speedup_stat)
    doc["meta"]["speedup_stat"] = args.speedup_stat
    if not args.no_plot:
        note = plot_speedups(doc, args.plot)
        doc["notes"].append(note if note else f"plot: {_shown(args.plot)}")
    doc["meta"]["duration_s"] = round(time.time() - t0, 1)
    if not args.no_json:
        doc["notes"].append(f"results: {_shown(args.json)}")
        write_json(doc, args.json)
    print(markdown(doc, full=args.full_table))
    timed = any(r["contender"].startswith("xent_fast") and r.get("median_ms") for r in doc["results"])
    if any(c.startswith("xent_fast") for c in cfg.contenders) and not timed:
        xf = doc["meta"]["workers"].get("xent_fast") or {}
        print(f"\nxent_fast was NOT timed: {xf.get('note') or 'see the notes above'}", file=sys.stderr)
        return 1
    print(f"done in {doc['meta']['duration_s']:.0f} s", file=sys.stderr)
    return 0
