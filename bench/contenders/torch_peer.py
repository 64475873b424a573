"""PyTorch CPU: ``torch.nn.functional.cross_entropy``; fwd+grad is autograd's backward from a leaf
tensor (the backward pass is included in the time; ``.grad`` is reset to None before each call so
nothing accumulates). Class axis moved to dim 1 with ``movedim`` (a view) where it is not already
there; (N, C, H, W) with axis=1 is native.

float16 logits are float16 tensors, bfloat16 logits (ml_dtypes' NumPy dtype) bfloat16 tensors on
the same buffer: PyTorch's own half-precision CPU kernels. A case with loss options computes the
same loss in plain PyTorch ops: ``z = logit_scale * x``, ``z = softcap * tanh(z / softcap)``,
``F.cross_entropy(z, t) + z_loss * (logsumexp(z, 1) ** 2).mean()`` (each step only when its option
is set; the backward by autograd).
"""
from __future__ import annotations

import numpy as np

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


def _tensor(logits):
    """A tensor on the NumPy buffer (torch.from_numpy does not know ml_dtypes' bfloat16)."""
    if logits.dtype.name == "bfloat16":
        return _torch.from_numpy(logits.view(np.int16)).view(_torch.bfloat16)
    return _torch.from_numpy(logits)


def prepare(case, logits, targets):
    """Tensors sharing the NumPy buffers, plus a leaf copy that requires grad."""
    x = _tensor(logits).movedim(case.class_axis, 1)
    t = _torch.from_numpy(targets)
    leaf = _tensor(logits).detach().requires_grad_(True)
    return {"x": x, "t": t, "leaf": leaf, "axis": case.class_axis}


def _loss(case):
    """``F.cross_entropy``, or the loss with the case's options (class axis at dim 1)."""
    ce = _torch.nn.functional.cross_entropy
    if not case.options:
        return ce
    scale, cap, z_loss = case.logit_scale, case.softcap, case.z_loss

    def loss(x, t):
        z = x * scale if scale != 1.0 else x
        if cap is not None:
            z = cap * _torch.tanh(z / cap)
        out = ce(z, t)
        if z_loss:
            out = out + z_loss * (_torch.logsumexp(z, 1) ** 2).mean()
        return out
    return loss


def make(name: str, mode: str, case, data):
    """Forward only, or forward + ``backward()`` on the leaf."""
    ce = _loss(case)
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
    if grad is not None and grad.dtype == _torch.bfloat16:  # NumPy has no bfloat16 of its own
        grad = grad.float()
    return float(loss.item()), (None if grad is None else grad.detach().numpy())
