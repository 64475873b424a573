"""PyTorch CPU: ``torch.nn.functional.cross_entropy``; fwd+grad is autograd's backward from a leaf
tensor (the backward pass is included in the time; ``.grad`` is reset to None before each call so
nothing accumulates). Class axis moved to dim 1 with ``movedim`` (a view) where it is not already
there; (N, C, H, W) with axis=1 is native.
"""
from __future__ import annotations


from . import Unavailable

_torch = None


def load(threads: int) -> dict:
    """Import torch and set ``torch.set_num_threads(threads)``."""
    global _torch
    try:
        import torch
    except ImportError as exc:
        raise Unavailable(f"PyTorch not installed ({exc}); `pip install torch --index-url "
                          "https://download.pytorch.org/whl/cpu` (the CPU build) to compare") from None
    torch.set_num_threads(threads)
    _torch = torch
    return {"version": torch.__version__, "threads": torch.get_num_threads()}


def prepare(case, logits, targets):
    """Tensors sharing the NumPy buffers, plus a leaf copy that requires grad."""
    x = _torch.from_numpy(logits).movedim(case.class_axis, 1)
    t = _torch.from_numpy(targets)
    leaf = _torch.from_numpy(logits).requires_grad_(True)
    return {"x": x, "t": t, "leaf": leaf, "axis": case.class_axis}


def make(name: str, mode: str, case, data):
    """Forward only, or forward + ``backward()`` on the leaf."""
    ce = _torch.nn.functional.cross_entropy
    x, t = data["x"], data["t"]
    if mode == "fwd":
        return lambda: (ce(x, t), None)  # x does not require grad: no graph is built
    leaf, axis = data["leaf"], data["axis"]

    def fwd_grad():
        leaf.grad = None
        loss = ce(leaf.movedim(axis, 1), t)
        loss.backward()
        return loss, leaf.grad
    return fwd_grad


def release(data):
    """Free the gradient the leaf keeps from the last call, so peak memory counts a fresh one."""
    data["leaf"].grad = None


def to_numpy(result):
    """``(loss, grad)`` as a float and an ndarray (or None)."""
    loss, grad = result
    return float(loss.item()), (None if grad is None else grad.detach().numpy())
