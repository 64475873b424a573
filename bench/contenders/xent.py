"""xent_fast itself: ``cross_entropy`` (fwd), ``cross_entropy_and_grad`` (fwd+grad) and the
same with ``out=`` a preallocated gradient buffer of the logits' dtype (contender ``xent_fast_out``),
and the forward on one thread (``xent_fast_1t``, at 32000+ classes only: the per-core throughput,
set against the one-thread read roofline).
The case's loss options (``softcap``, ``z_loss``, ``logit_scale``) are passed as they are.

``num_threads`` is left at None, so the kernel follows OMP_NUM_THREADS, which the runner sets from
``--threads``: the code path users get by default.
"""
from __future__ import annotations

import numpy as np

from . import Unavailable

_xf = None

HINT = ("From the checkout root the source folder xent_fast/ shadows an installed copy, so the compiled "
        "extension must be built in place: `pip install -e '.[bench]'` (or "
        "`python setup.py build_ext --inplace`).")


def load(threads: int) -> dict:
    """Import xent_fast; raise Unavailable with a build hint when the compiled module is missing."""
    global _xf
    try:
        import xent_fast
    except ImportError as exc:
        # xent_fast's own message already says what to do when its compiled module is missing
        hint = "" if "pip install -e ." in str(exc) else f" {HINT}"
        raise Unavailable(f"xent_fast is not importable ({type(exc).__name__}: {exc}).{hint}") from None
    if not hasattr(xent_fast, "cross_entropy"):
        where = list(getattr(xent_fast, "__path__", [])) or getattr(xent_fast, "__file__", "?")
        raise Unavailable(f"xent_fast at {where} has no cross_entropy (package not built or not "
                          f"finished). {HINT}")
    _xf = xent_fast
    return {"version": getattr(xent_fast, "__version__", "unknown"),
            "path": getattr(xent_fast, "__file__", None)}


def prepare(case, logits, targets):
    """NumPy inputs are used as they are; the ``out=`` buffer is allocated lazily."""
    return {"logits": logits, "targets": targets, "out": None}


def make(name: str, mode: str, case, data):
    """The call for contender ``name`` ('xent_fast' or 'xent_fast_out') in ``mode``."""
    x, t, axis, opts = data["logits"], data["targets"], case.axis, case.options
    if name == "xent_fast_1t":
        fn = _xf.cross_entropy
        return lambda: (fn(x, t, axis=axis, num_threads=1, **opts), None)
    if mode == "fwd" and name == "xent_fast":
        fn = _xf.cross_entropy
        return lambda: (fn(x, t, axis=axis, **opts), None)
    if not hasattr(_xf, "cross_entropy_and_grad"):
        raise Unavailable("xent_fast.cross_entropy_and_grad does not exist yet")
    fn = _xf.cross_entropy_and_grad
    if name == "xent_fast":
        return lambda: fn(x, t, axis=axis, **opts)
    if data["out"] is None:
        data["out"] = np.empty_like(x)
        data["out"].fill(0)  # fault the pages in: the buffer is the caller's, not the call's
    out = data["out"]
    return lambda: fn(x, t, axis=axis, out=out, **opts)


def to_numpy(result):
    """``(loss, grad)`` as a float and an ndarray (or None)."""
    loss, grad = result
    return float(loss), (None if grad is None else np.asarray(grad))
