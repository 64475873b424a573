"""Type stub of xent_fast.losses: the public functions' signatures, kept exactly in sync with
losses.py by tests/test_packaging.py (parameter names, kinds and defaults).

The losses are overloaded on ``reduction``: ``"none"`` gives an array, ``"mean"`` and ``"sum"``
(the default) a NumPy scalar; a ``reduction`` only known as a str at check time gives either.
``return_lse=True`` (cross_entropy and its gradient) adds the rows' log-sum-exp to the result."""
from typing import Any, Literal, Optional, Tuple, Union, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

_Reduction = Literal["none", "mean", "sum"]
_Rows = NDArray[np.floating[Any]]  # "none": one loss per row (or element)
_Scalar = np.floating[Any]  # "mean"/"sum": a NumPy scalar of the compute dtype
_Loss = Union[_Scalar, _Rows]
_Grad = NDArray[np.floating[Any]]

@overload
def cross_entropy(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: Literal["none"],
    label_smoothing: float = 0.0,
    eps: float = 0.0,
    z_loss: float = 0.0,
    softcap: Optional[float] = None,
    logit_scale: float = 1.0,
    sample_weight: Optional[ArrayLike] = None,
    return_lse: Literal[False] = False,
    num_threads: Optional[int] = None,
) -> _Rows: ...
@overload
def cross_entropy(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: Literal["mean", "sum"] = "mean",
    label_smoothing: float = 0.0,
    eps: float = 0.0,
    z_loss: float = 0.0,
    softcap: Optional[float] = None,
    logit_scale: float = 1.0,
    sample_weight: Optional[ArrayLike] = None,
    return_lse: Literal[False] = False,
    num_threads: Optional[int] = None,
) -> _Scalar: ...
@overload
def cross_entropy(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: _Reduction = "mean",
    label_smoothing: float = 0.0,
    eps: float = 0.0,
    z_loss: float = 0.0,
    softcap: Optional[float] = None,
    logit_scale: float = 1.0,
    sample_weight: Optional[ArrayLike] = None,
    return_lse: Literal[True],
    num_threads: Optional[int] = None,
) -> Tuple[_Loss, _Rows]: ...
@overload
def cross_entropy(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: _Reduction = "mean",
    label_smoothing: float = 0.0,
    eps: float = 0.0,
    z_loss: float = 0.0,
    softcap: Optional[float] = None,
    logit_scale: float = 1.0,
    sample_weight: Optional[ArrayLike] = None,
    return_lse: Literal[False] = False,
    num_threads: Optional[int] = None,
) -> _Loss: ...
@overload
def cross_entropy_and_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: Literal["none"],
    label_smoothing: float = 0.0,
    eps: float = 0.0,
    z_loss: float = 0.0,
    softcap: Optional[float] = None,
    logit_scale: float = 1.0,
    sample_weight: Optional[ArrayLike] = None,
    return_lse: Literal[False] = False,
    grad_loss: Optional[ArrayLike] = None,
    out: Optional[NDArray[np.floating[Any]]] = None,
    num_threads: Optional[int] = None,
) -> Tuple[_Rows, _Grad]: ...
@overload
def cross_entropy_and_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: Literal["mean", "sum"] = "mean",
    label_smoothing: float = 0.0,
    eps: float = 0.0,
    z_loss: float = 0.0,
    softcap: Optional[float] = None,
    logit_scale: float = 1.0,
    sample_weight: Optional[ArrayLike] = None,
    return_lse: Literal[False] = False,
    grad_loss: Optional[ArrayLike] = None,
    out: Optional[NDArray[np.floating[Any]]] = None,
    num_threads: Optional[int] = None,
) -> Tuple[_Scalar, _Grad]: ...
@overload
def cross_entropy_and_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: _Reduction = "mean",
    label_smoothing: float = 0.0,
    eps: float = 0.0,
    z_loss: float = 0.0,
    softcap: Optional[float] = None,
    logit_scale: float = 1.0,
    sample_weight: Optional[ArrayLike] = None,
    return_lse: Literal[True],
    grad_loss: Optional[ArrayLike] = None,
    out: Optional[NDArray[np.floating[Any]]] = None,
    num_threads: Optional[int] = None,
) -> Tuple[_Loss, _Grad, _Rows]: ...
@overload
def cross_entropy_and_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: _Reduction = "mean",
    label_smoothing: float = 0.0,
    eps: float = 0.0,
    z_loss: float = 0.0,
    softcap: Optional[float] = None,
    logit_scale: float = 1.0,
    sample_weight: Optional[ArrayLike] = None,
    return_lse: Literal[False] = False,
    grad_loss: Optional[ArrayLike] = None,
    out: Optional[NDArray[np.floating[Any]]] = None,
    num_threads: Optional[int] = None,
) -> Tuple[_Loss, _Grad]: ...
@overload
def nll_loss(
    log_probs: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: Literal["none"],
    num_threads: Optional[int] = None,
) -> _Rows: ...
@overload
def nll_loss(
    log_probs: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: Literal["mean", "sum"] = "mean",
    num_threads: Optional[int] = None,
) -> _Scalar: ...
@overload
def nll_loss(
    log_probs: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: _Reduction = "mean",
    num_threads: Optional[int] = None,
) -> _Loss: ...
@overload
def categorical_cross_entropy(
    probs: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    eps: float = 1e-07,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: Literal["none"],
    label_smoothing: float = 0.0,
    num_threads: Optional[int] = None,
) -> _Rows: ...
@overload
def categorical_cross_entropy(
    probs: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    eps: float = 1e-07,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: Literal["mean", "sum"] = "mean",
    label_smoothing: float = 0.0,
    num_threads: Optional[int] = None,
) -> _Scalar: ...
@overload
def categorical_cross_entropy(
    probs: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    eps: float = 1e-07,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: _Reduction = "mean",
    label_smoothing: float = 0.0,
    num_threads: Optional[int] = None,
) -> _Loss: ...
@overload
def categorical_cross_entropy_and_grad(
    probs: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    eps: float = 1e-07,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: Literal["none"],
    label_smoothing: float = 0.0,
    grad_loss: Optional[ArrayLike] = None,
    out: Optional[NDArray[np.floating[Any]]] = None,
    num_threads: Optional[int] = None,
) -> Tuple[_Rows, _Grad]: ...
@overload
def categorical_cross_entropy_and_grad(
    probs: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    eps: float = 1e-07,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: Literal["mean", "sum"] = "mean",
    label_smoothing: float = 0.0,
    grad_loss: Optional[ArrayLike] = None,
    out: Optional[NDArray[np.floating[Any]]] = None,
    num_threads: Optional[int] = None,
) -> Tuple[_Scalar, _Grad]: ...
@overload
def categorical_cross_entropy_and_grad(
    probs: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int = -1,
    eps: float = 1e-07,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: _Reduction = "mean",
    label_smoothing: float = 0.0,
    grad_loss: Optional[ArrayLike] = None,
    out: Optional[NDArray[np.floating[Any]]] = None,
    num_threads: Optional[int] = None,
) -> Tuple[_Loss, _Grad]: ...
@overload
def binary_cross_entropy(
    probs: ArrayLike,
    targets: ArrayLike,
    *,
    eps: float = 1e-07,
    weight: Optional[ArrayLike] = None,
    reduction: Literal["none"],
    num_threads: Optional[int] = None,
) -> _Rows: ...
@overload
def binary_cross_entropy(
    probs: ArrayLike,
    targets: ArrayLike,
    *,
    eps: float = 1e-07,
    weight: Optional[ArrayLike] = None,
    reduction: Literal["mean", "sum"] = "mean",
    num_threads: Optional[int] = None,
) -> _Scalar: ...
@overload
def binary_cross_entropy(
    probs: ArrayLike,
    targets: ArrayLike,
    *,
    eps: float = 1e-07,
    weight: Optional[ArrayLike] = None,
    reduction: _Reduction = "mean",
    num_threads: Optional[int] = None,
) -> _Loss: ...
@overload
def binary_cross_entropy_and_grad(
    probs: ArrayLike,
    targets: ArrayLike,
    *,
    eps: float = 1e-07,
    weight: Optional[ArrayLike] = None,
    reduction: Literal["none"],
    grad_loss: Optional[ArrayLike] = None,
    out: Optional[NDArray[np.floating[Any]]] = None,
    num_threads: Optional[int] = None,
) -> Tuple[_Rows, _Grad]: ...
@overload
def binary_cross_entropy_and_grad(
    probs: ArrayLike,
    targets: ArrayLike,
    *,
    eps: float = 1e-07,
    weight: Optional[ArrayLike] = None,
    reduction: Literal["mean", "sum"] = "mean",
    grad_loss: Optional[ArrayLike] = None,
    out: Optional[NDArray[np.floating[Any]]] = None,
    num_threads: Optional[int] = None,
) -> Tuple[_Scalar, _Grad]: ...
@overload
def binary_cross_entropy_and_grad(
    probs: ArrayLike,
    targets: ArrayLike,
    *,
    eps: float = 1e-07,
    weight: Optional[ArrayLike] = None,
    reduction: _Reduction = "mean",
    grad_loss: Optional[ArrayLike] = None,
    out: Optional[NDArray[np.floating[Any]]] = None,
    num_threads: Optional[int] = None,
) -> Tuple[_Loss, _Grad]: ...
@overload
def binary_cross_entropy_with_logits(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    weight: Optional[ArrayLike] = None,
    pos_weight: Optional[ArrayLike] = None,
    reduction: Literal["none"],
    num_threads: Optional[int] = None,
) -> _Rows: ...
@overload
def binary_cross_entropy_with_logits(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    weight: Optional[ArrayLike] = None,
    pos_weight: Optional[ArrayLike] = None,
    reduction: Literal["mean", "sum"] = "mean",
    num_threads: Optional[int] = None,
) -> _Scalar: ...
@overload
def binary_cross_entropy_with_logits(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    weight: Optional[ArrayLike] = None,
    pos_weight: Optional[ArrayLike] = None,
    reduction: _Reduction = "mean",
    num_threads: Optional[int] = None,
) -> _Loss: ...
@overload
def binary_cross_entropy_with_logits_and_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    weight: Optional[ArrayLike] = None,
    pos_weight: Optional[ArrayLike] = None,
    reduction: Literal["none"],
    grad_loss: Optional[ArrayLike] = None,
    out: Optional[NDArray[np.floating[Any]]] = None,
    num_threads: Optional[int] = None,
) -> Tuple[_Rows, _Grad]: ...
@overload
def binary_cross_entropy_with_logits_and_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    weight: Optional[ArrayLike] = None,
    pos_weight: Optional[ArrayLike] = None,
    reduction: Literal["mean", "sum"] = "mean",
    grad_loss: Optional[ArrayLike] = None,
    out: Optional[NDArray[np.floating[Any]]] = None,
    num_threads: Optional[int] = None,
) -> Tuple[_Scalar, _Grad]: ...
@overload
def binary_cross_entropy_with_logits_and_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    weight: Optional[ArrayLike] = None,
    pos_weight: Optional[ArrayLike] = None,
    reduction: _Reduction = "mean",
    grad_loss: Optional[ArrayLike] = None,
    out: Optional[NDArray[np.floating[Any]]] = None,
    num_threads: Optional[int] = None,
) -> Tuple[_Loss, _Grad]: ...
def logsumexp(
    x: ArrayLike,
    axis: Union[int, Tuple[int, ...], None] = -1,
    *,
    keepdims: bool = False,
    num_threads: Optional[int] = None,
) -> _Loss: ...
def log_softmax(
    x: ArrayLike,
    axis: int = -1,
    *,
    out: Optional[NDArray[np.floating[Any]]] = None,
    num_threads: Optional[int] = None,
) -> NDArray[np.floating[Any]]: ...
def softmax(
    x: ArrayLike,
    axis: int = -1,
    *,
    out: Optional[NDArray[np.floating[Any]]] = None,
    num_threads: Optional[int] = None,
) -> NDArray[np.floating[Any]]: ...
