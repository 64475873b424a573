"""A typed user script of xent_fast's public API: `mypy --strict` must pass on it, and it runs
(tests/test_new_user.py).  assert_type holds the overloads: the loss's type follows `reduction`."""
from typing import Any, Literal, Tuple, Union

import numpy as np
from numpy.typing import NDArray
from typing_extensions import assert_type

import xent_fast as xf

Rows = NDArray[np.floating[Any]]
Scalar = np.floating[Any]

rng = np.random.default_rng(0)
logits = rng.standard_normal((8, 5)).astype(np.float32)
targets = np.arange(8) % 5
probs = xf.softmax(logits)
assert_type(probs, Rows)

assert_type(xf.cross_entropy(logits, targets), Scalar)
assert_type(xf.cross_entropy(logits, targets, reduction="sum", label_smoothing=0.1), Scalar)
assert_type(xf.cross_entropy(logits, targets, reduction="none"), Rows)
assert_type(xf.nll_loss(xf.log_softmax(logits), targets, weight=np.ones(5)), Scalar)
assert_type(xf.categorical_cross_entropy(probs, targets, reduction="none"), Rows)
assert_type(xf.binary_cross_entropy(probs, probs > 0.2), Scalar)
assert_type(xf.binary_cross_entropy_with_logits(logits, probs, pos_weight=[2.0]), Scalar)

loss, grad = xf.cross_entropy_and_grad(logits, targets, out=logits.copy())
assert_type(loss, Scalar)
assert_type(grad, Rows)
assert_type(xf.categorical_cross_entropy_and_grad(probs, targets, reduction="none"),
            Tuple[Rows, Rows])
assert_type(xf.binary_cross_entropy_and_grad(probs, probs, grad_loss=2.0)[0], Scalar)
assert_type(xf.binary_cross_entropy_with_logits_and_grad(logits, probs)[1], Rows)


def total_loss(reduction: Literal["none", "mean", "sum"]) -> float:
    """A reduction not known at check time: the loss may be either."""
    loss = xf.cross_entropy(logits, targets, reduction=reduction)
    assert_type(loss, Union[Scalar, Rows])
    return float(np.sum(loss))


lse = xf.logsumexp(logits, axis=(0, 1), keepdims=False)
layer = xf.CrossEntropyLoss(label_smoothing=0.1, reduction="mean")
value = layer(logits, targets)
dlogits: Rows = layer.backward(inplace=False)
both: Tuple[Any, Rows] = xf.BinaryCrossEntropyWithLogitsLoss(pos_weight=[1.5]).forward_backward(
    logits, probs)
for other in (xf.CategoricalCrossEntropyLoss(eps=1e-6), xf.BinaryCrossEntropyLoss()):
    other.reduction = "sum"
path: str = xf.isa()
version: str = xf.__version__

# vocabulary shards: partials of two class shards, combined, the loss and a shard's gradient
shards = [(0, logits[:, :3]), (3, logits[:, 3:])]
total = xf.vocab_parallel.combine_partials(
    *[xf.vocab_parallel.shard_partials(s, targets, start, 5) for start, s in shards])
assert_type(total, NDArray[np.float64])
assert_type(xf.vocab_parallel.partials_lse(total), NDArray[np.float64])
assert_type(xf.vocab_parallel.finish_partials(total), Union[Scalar, Rows])
assert_type(xf.vocab_parallel.shard_grad(logits[:, 3:], targets, 3, 5, total), Rows)

print(path, version, float(value), total_loss("sum"), float(lse), dlogits.shape, both[1].shape)
