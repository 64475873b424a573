"""xent_fast's benchmark suite: ``python -m bench`` from the checkout root (``--help`` for options).

Modules, one job each:

* :mod:`bench.cases`       the shapes/dtypes/axes/loss options timed and their deterministic inputs
* :mod:`bench.contenders`  xent_fast, the NumPy reference, PyTorch, JAX (one module per family)
* :mod:`bench.worker`      the subprocess that times one family (``python -m bench.worker``)
* :mod:`bench.procs`       starting and talking to workers (JSON lines)
* :mod:`bench.runner`      the run: rounds of side-by-side timing, results collection
* :mod:`bench.timing`      warm-up and adaptive repeats; :mod:`bench.memory` peak memory of a call
* :mod:`bench.roofline`    read and copy bandwidth rooflines measured with NumPy
* :mod:`bench.threads`     the ``--threads`` setting as environment variables and CPU affinity
* :mod:`bench.checks`      loss/gradient agreement across contenders
* :mod:`bench.analysis`    speed-ups, and the half-precision and options rows' ratios to their
                           plain float32 rows; :mod:`bench.report` Markdown and JSON; :mod:`bench.plot` PNG
* :mod:`bench.progress`    tqdm or a plain stderr fallback; :mod:`bench.environment` run metadata
* :mod:`bench.tune`        ``python -m bench tune``: this machine's row of csrc/tuning.c
"""
