"""Type stub of xent_fast.layers: the loss layers' constructors and methods, kept in sync with
layers.py by tests/test_packaging.py (constructor parameter names, kinds and defaults).

A layer's ``reduction`` is an attribute that may change between calls, so its loss is typed as
either a NumPy scalar or an array (the functions' overloads follow a literal ``reduction``)."""
from typing import Any, Literal, Optional, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

_Reduction = Literal["none", "mean", "sum"]
_LossValue = Union[np.floating[Any], NDArray[np.floating[Any]]]
_Grad = NDArray[np.floating[Any]]

__all__ = ["CrossEntropyLoss", "CategoricalCrossEntropyLoss", "BinaryCrossEntropyLoss",
           "BinaryCrossEntropyWithLogitsLoss", "LinearCrossEntropyLoss"]

class _Loss:
    reduction: _Reduction
    weight: Optional[ArrayLike]
    num_threads: Optional[int]
    def forward(self, input: ArrayLike, targets: ArrayLike) -> _LossValue: ...
    def __call__(self, input: ArrayLike, targets: ArrayLike) -> _LossValue: ...
    def backward(
        self,
        grad_loss: Optional[ArrayLike] = None,
        *,
        out: Optional[_Grad] = None,
        inplace: bool = False,
    ) -> _Grad: ...
    def forward_backward(
        self,
        input: ArrayLike,
        targets: ArrayLike,
        grad_loss: Optional[ArrayLike] = None,
        *,
        out: Optional[_Grad] = None,
        inplace: bool = False,
    ) -> Tuple[_LossValue, _Grad]: ...

class CrossEntropyLoss(_Loss):
    axis: int
    ignore_index: int
    label_smoothing: float
    eps: float
    z_loss: float
    softcap: Optional[float]
    logit_scale: float
    sample_weight: Optional[ArrayLike]
    def __init__(
        self,
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
        num_threads: Optional[int] = None,
    ) -> None: ...

class CategoricalCrossEntropyLoss(_Loss):
    axis: int
    eps: float
    ignore_index: int
    label_smoothing: float
    def __init__(
        self,
        *,
        axis: int = -1,
        eps: float = 1e-07,
        weight: Optional[ArrayLike] = None,
        ignore_index: int = -100,
        reduction: _Reduction = "mean",
        label_smoothing: float = 0.0,
        num_threads: Optional[int] = None,
    ) -> None: ...

class BinaryCrossEntropyLoss(_Loss):
    eps: float
    def __init__(
        self,
        *,
        eps: float = 1e-07,
        weight: Optional[ArrayLike] = None,
        reduction: _Reduction = "mean",
        num_threads: Optional[int] = None,
    ) -> None: ...

class BinaryCrossEntropyWithLogitsLoss(_Loss):
    pos_weight: Optional[ArrayLike]
    def __init__(
        self,
        *,
        weight: Optional[ArrayLike] = None,
        pos_weight: Optional[ArrayLike] = None,
        reduction: _Reduction = "mean",
        num_threads: Optional[int] = None,
    ) -> None: ...

class LinearCrossEntropyLoss:
    weight: Optional[ArrayLike]
    ignore_index: int
    reduction: _Reduction
    label_smoothing: float
    eps: float
    z_loss: float
    softcap: Optional[float]
    logit_scale: float
    chunk_size: Optional[int]
    num_threads: Optional[int]
    def __init__(
        self,
        *,
        weight: Optional[ArrayLike] = None,
        ignore_index: int = -100,
        reduction: _Reduction = "mean",
        label_smoothing: float = 0.0,
        eps: float = 0.0,
        z_loss: float = 0.0,
        softcap: Optional[float] = None,
        logit_scale: float = 1.0,
        chunk_size: Optional[int] = None,
        num_threads: Optional[int] = None,
    ) -> None: ...
    def forward(
        self,
        input: ArrayLike,
        linear_weight: ArrayLike,
        targets: ArrayLike,
        linear_bias: Optional[ArrayLike] = None,
        *,
        sample_weight: Optional[ArrayLike] = None,
    ) -> _LossValue: ...
    def __call__(
        self,
        input: ArrayLike,
        linear_weight: ArrayLike,
        targets: ArrayLike,
        linear_bias: Optional[ArrayLike] = None,
        *,
        sample_weight: Optional[ArrayLike] = None,
    ) -> _LossValue: ...
    def backward(self, grad_loss: Optional[ArrayLike] = None) -> Tuple[_Grad, ...]: ...
    def forward_backward(
        self,
        input: ArrayLike,
        linear_weight: ArrayLike,
        targets: ArrayLike,
        linear_bias: Optional[ArrayLike] = None,
        grad_loss: Optional[ArrayLike] = None,
        *,
        sample_weight: Optional[ArrayLike] = None,
    ) -> Tuple[Any, ...]: ...
