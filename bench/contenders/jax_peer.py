"""JAX CPU: ``jax.jit`` of plain jax code (no optax): ``-mean(take_along_axis(log_softmax(x)))``;
fwd+grad is ``jax.jit(jax.value_and_grad(loss))``. Every call ends in ``block_until_ready``.

float16 and bfloat16 logits are jnp.float16 / jnp.bfloat16 arrays (JAX's bfloat16 is ml_dtypes',
so the NumPy buffer is used as it is). A case with loss options computes the same loss in plain JAX:
``z = logit_scale * x``, ``z = softcap * tanh(z / softcap)``, the mean above over ``log_softmax(z)``
``+ z_loss * mean(jax.nn.logsumexp(z, axis) ** 2)`` (each step only when its option is set).

``jax_enable_x64`` is on so that targets stay int64 and float64 cases really run in float64
(float32 inputs stay float32). Threads: the runner sets ``XLA_FLAGS`` and the CPU affinity.
"""
from __future__ import annotations

import numpy as np

from . import Unavailable

_jax = None


def load(threads: int) -> dict:
    """Import jax on the CPU backend with 64-bit types enabled."""
    global _jax
    try:
        import jax
    except ImportError as exc:
        raise Unavailable(f"JAX not installed ({exc}); `pip install jax jaxlib` (CPU) to compare") from None
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    _jax = jax
    return {"version": jax.__version__, "backend": jax.default_backend()}


def _loss(axis):
    jnp = _jax.numpy

    def loss(x, t):
        lsm = _jax.nn.log_softmax(x, axis=axis)
        picked = jnp.take_along_axis(lsm, jnp.expand_dims(t, axis), axis=axis)
        return -jnp.mean(picked)
    return loss


def _loss_with_options(case):
    """``_loss``, or the loss with the case's options (Python scalars keep x's dtype)."""
    plain = _loss(case.class_axis)
    if not case.options:
        return plain
    jnp, axis = _jax.numpy, case.class_axis
    scale, cap, z_loss = case.logit_scale, case.softcap, case.z_loss

    def loss(x, t):
        z = x * scale if scale != 1.0 else x
        if cap is not None:
            z = cap * jnp.tanh(z / cap)
        out = plain(z, t)
        if z_loss:
            out = out + z_loss * jnp.mean(_jax.nn.logsumexp(z, axis=axis) ** 2)
        return out
    return loss


def prepare(case, logits, targets):
    """Device arrays (host CPU) and the two jitted functions for this case's axis and options."""
    loss = _loss_with_options(case)
    return {"x": _jax.device_put(logits), "t": _jax.device_put(targets),
            "fwd": _jax.jit(loss), "fwd+grad": _jax.jit(_jax.value_and_grad(loss))}


def make(name: str, mode: str, case, data):
    """The jitted call, blocking until its outputs are ready."""
    fn, x, t, block = data[mode], data["x"], data["t"], _jax.block_until_ready
    if mode == "fwd":
        return lambda: (block(fn(x, t)), None)
    return lambda: block(fn(x, t))


def to_numpy(result):
    """``(loss, grad)`` as a float and an ndarray (or None)."""
    loss, grad = result
    return float(loss), (None if grad is None else np.asarray(grad))
