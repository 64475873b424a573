"""``xent_fast.reference``: the plain-NumPy reference (same signatures and loss options, computed
in float64), the baseline of the speed-up column.

When ``import xent_fast`` itself fails (compiled module not built), ``reference.py`` is loaded from
the package folder on its own, so the reference and the peers can still be timed.

OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (set on some machines here for old OpenBLAS builds) are left
alone: the reference's hot path is element-wise ufuncs and reductions, which do not call BLAS.
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np

from . import Unavailable

_ref = None


def _load_standalone():
    spec = importlib.util.find_spec("xent_fast")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(folder, "reference.py")
        if os.path.exists(path):
            mod_spec = importlib.util.spec_from_file_location("_xent_fast_reference", path)
            module = importlib.util.module_from_spec(mod_spec)
            mod_spec.loader.exec_module(module)
            return module
    return None


def load(threads: int) -> dict:
    """Import ``xent_fast.reference`` (standalone from its file if the package does not import)."""
    global _ref
    note = None
    try:
        from xent_fast import reference as module
    except ImportError as exc:
        module = _load_standalone()
        note = f"loaded reference.py standalone (import xent_fast failed: {exc})"
    if module is None or not hasattr(module, "cross_entropy"):
        raise Unavailable("xent_fast/reference.py not found or has no cross_entropy")
    _ref = module
    return {"version": "numpy " + np.__version__, "path": module.__file__, "note": note}


def prepare(case, logits, targets):
    """NumPy inputs are used as they are."""
    return {"logits": logits, "targets": targets}


def make(name: str, mode: str, case, data):
    """``reference.cross_entropy`` or ``reference.cross_entropy_and_grad``."""
    x, t, axis, opts = data["logits"], data["targets"], case.axis, case.options
    if mode == "fwd":
        fn = _ref.cross_entropy
        return lambda: (fn(x, t, axis=axis, **opts), None)
    if not hasattr(_ref, "cross_entropy_and_grad"):
        raise Unavailable("reference.cross_entropy_and_grad does not exist yet")
    fn = _ref.cross_entropy_and_grad
    return lambda: fn(x, t, axis=axis, **opts)


def to_numpy(result):
    """``(loss, grad)`` as a float and an ndarray (or None)."""
    loss, grad = result
    return float(loss), (None if grad is None else np.asarray(grad))
