"""Type stub of xent_fast.vocab_parallel: the public functions' signatures, kept in sync with
vocab_parallel.py by tests/test_vocab_parallel.py (parameter names, kinds and defaults)."""
from typing import Any, Literal, Optional, Tuple, Union, overload

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

_Reduction = Literal["none", "mean", "sum"]
_Loss = Union[np.floating[Any], NDArray[np.floating[Any]]]
_Array = NDArray[np.floating[Any]]

MAX: int
ONES: int
REST: int
DOT: int
COEF: int
TARGET_WEIGHT: int
COUNTED: int
N_FIELDS: int

def shard_partials(
    logits: ArrayLike,
    targets: Optional[ArrayLike],
    class_start: int,
    num_classes: int,
    *,
    axis: int = -1,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    logit_scale: float = 1.0,
    softcap: Optional[float] = None,
    num_threads: Optional[int] = None,
) -> NDArray[np.float64]: ...
def combine_partials(*partials: ArrayLike) -> NDArray[np.float64]: ...
def partials_lse(partials: ArrayLike) -> NDArray[np.float64]: ...
def mean_denominator(
    partials: ArrayLike, *, sample_weight: Optional[ArrayLike] = None
) -> float: ...
@overload
def finish_partials(
    partials: ArrayLike,
    *,
    reduction: _Reduction = "mean",
    z_loss: float = 0.0,
    sample_weight: Optional[ArrayLike] = None,
    return_lse: Literal[False] = False,
    denominator: Optional[float] = None,
    dtype: Optional[DTypeLike] = None,
) -> _Loss: ...
@overload
def finish_partials(
    partials: ArrayLike,
    *,
    reduction: _Reduction = "mean",
    z_loss: float = 0.0,
    sample_weight: Optional[ArrayLike] = None,
    return_lse: Literal[True],
    denominator: Optional[float] = None,
    dtype: Optional[DTypeLike] = None,
) -> Tuple[_Loss, _Array]: ...
@overload
def finish_partials(
    partials: ArrayLike,
    *,
    reduction: _Reduction = "mean",
    z_loss: float = 0.0,
    sample_weight: Optional[ArrayLike] = None,
    return_lse: bool = False,
    denominator: Optional[float] = None,
    dtype: Optional[DTypeLike] = None,
) -> Union[_Loss, Tuple[_Loss, _Array]]: ...
def shard_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    class_start: int,
    num_classes: int,
    total: ArrayLike,
    *,
    axis: int = -1,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    logit_scale: float = 1.0,
    softcap: Optional[float] = None,
    z_loss: float = 0.0,
    sample_weight: Optional[ArrayLike] = None,
    reduction: _Reduction = "mean",
    denominator: Optional[float] = None,
    grad_loss: Optional[ArrayLike] = None,
    out: Optional[np.ndarray] = None,
    num_threads: Optional[int] = None,
) -> _Array: ...
def shard_log_softmax(
    logits: ArrayLike,
    lse: ArrayLike,
    *,
    axis: int = -1,
    out: Optional[np.ndarray] = None,
    num_threads: Optional[int] = None,
) -> _Array: ...
def shard_softmax(
    logits: ArrayLike,
    lse: ArrayLike,
    *,
    axis: int = -1,
    out: Optional[np.ndarray] = None,
    num_threads: Optional[int] = None,
) -> _Array: ...
