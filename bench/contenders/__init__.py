"""The contenders: xent_fast and its peers, one module per family.

Each family runs in its own worker process (see :mod:`bench.worker`) and its module provides:

* ``load(threads) -> dict``: import the library, apply the thread setting, return version info;
  raises :class:`Unavailable` with a human-readable note when the library is missing.
* ``prepare(case, logits, targets) -> data``: convert the NumPy inputs once per case.
* ``make(name, mode, case, data) -> fn``: a zero-argument callable doing one complete call
  (results materialised / ``block_until_ready``), returning a ``(loss, grad_or_None)`` pair.
* ``to_numpy(result) -> (float, ndarray | None)``: the loss and gradient of ``fn()``'s result,
  for the cross-contender sanity check.
* optionally ``release(data)``: free outputs the library keeps alive between calls (PyTorch's
  ``.grad``), called before the peak-memory measurement.
"""
from __future__ import annotations

import dataclasses

MODES = ("fwd", "fwd+grad")


class Unavailable(Exception):
    """The library or the operation is not available here; the message says why."""


@dataclasses.dataclass(frozen=True)
class Contender:
    """A timed implementation: ``name`` (id), ``family`` (worker process), ``label`` (table).

    ``slow_baseline``: the NumPy reference, 10-100x slower than the rest; it is warmed up with a
    single call (it has nothing to compile) and may be timed with fewer samples
    (``--reference-samples``) to keep the run short.
    """

    name: str
    family: str
    label: str
    modes: tuple = MODES
    is_peer: bool = False
    slow_baseline: bool = False
    min_classes: int = 0  # timed on cases with at least this many classes

    def times(self, case, mode) -> bool:
        """Whether this contender is timed on ``case`` in ``mode``."""
        return mode in self.modes and case.n_classes >= self.min_classes


CONTENDERS = (
    Contender("xent_fast", "xent_fast", "xent_fast"),
    Contender("xent_fast_out", "xent_fast", "xent_fast out=", modes=("fwd+grad",)),
    Contender("xent_fast_1t", "xent_fast", "xent_fast 1 thread", modes=("fwd",), min_classes=32000),
    Contender("reference", "reference", "reference", slow_baseline=True),
    Contender("torch", "torch", "PyTorch", is_peer=True),
    Contender("jax", "jax", "JAX", is_peer=True),
)
BY_NAME = {c.name: c for c in CONTENDERS}

FAMILY_MODULES = {
    "xent_fast": "bench.contenders.xent",
    "reference": "bench.contenders.reference",
    "torch": "bench.contenders.torch_peer",
    "jax": "bench.contenders.jax_peer",
}
