"""Type stub of xent_fast.dask: the public functions' signatures, kept in sync with dask.py by
tests/test_dask.py (parameter names, kinds and defaults)."""
from typing import Any, Literal, Optional, Tuple, Union

import dask.array as da
from numpy.typing import ArrayLike

_Reduction = Literal["none", "mean", "sum"]
_In = Union[da.Array, ArrayLike]

def cross_entropy(
    logits: _In,
    targets: _In,
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
    sample_weight: Optional[_In] = None,
    return_lse: bool = False,
    num_threads: Optional[int] = None,
) -> Any: ...
def cross_entropy_and_grad(
    logits: _In,
    targets: _In,
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
    sample_weight: Optional[_In] = None,
    return_lse: bool = False,
    grad_loss: Optional[_In] = None,
    num_threads: Optional[int] = None,
) -> Tuple[da.Array, ...]: ...
def logsumexp(
    x: _In, axis: int = -1, *, keepdims: bool = False, num_threads: Optional[int] = None
) -> da.Array: ...
def log_softmax(x: _In, axis: int = -1, *, num_threads: Optional[int] = None) -> da.Array: ...
def softmax(x: _In, axis: int = -1, *, num_threads: Optional[int] = None) -> da.Array: ...
def linear_cross_entropy(
    input: _In,
    linear_weight: _In,
    targets: _In,
    *,
    linear_bias: Optional[_In] = None,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: _Reduction = "mean",
    label_smoothing: float = 0.0,
    eps: float = 0.0,
    z_loss: float = 0.0,
    softcap: Optional[float] = None,
    logit_scale: float = 1.0,
    sample_weight: Optional[_In] = None,
    chunk_size: Optional[int] = None,
    num_threads: Optional[int] = None,
) -> da.Array: ...
def linear_cross_entropy_and_grad(
    input: _In,
    linear_weight: _In,
    targets: _In,
    *,
    linear_bias: Optional[_In] = None,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: _Reduction = "mean",
    label_smoothing: float = 0.0,
    eps: float = 0.0,
    z_loss: float = 0.0,
    softcap: Optional[float] = None,
    logit_scale: float = 1.0,
    sample_weight: Optional[_In] = None,
    grad_loss: Optional[_In] = None,
    chunk_size: Optional[int] = None,
    num_threads: Optional[int] = None,
) -> Tuple[da.Array, ...]: ...
