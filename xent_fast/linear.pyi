"""Type stub of xent_fast.linear: the public functions' signatures, kept in sync with linear.py
by tests/test_linear.py (parameter names, kinds and defaults)."""
from typing import Any, Literal, Optional, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

_Reduction = Literal["none", "mean", "sum"]
_Loss = Union[np.floating[Any], NDArray[np.floating[Any]]]
_Grad = NDArray[np.floating[Any]]

def default_chunk_size(n_rows: int, n_class: int, itemsize: int) -> int: ...
def linear_cross_entropy(
    input: ArrayLike,
    linear_weight: ArrayLike,
    targets: ArrayLike,
    *,
    linear_bias: Optional[ArrayLike] = None,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: _Reduction = "mean",
    label_smoothing: float = 0.0,
    eps: float = 0.0,
    z_loss: float = 0.0,
    softcap: Optional[float] = None,
    logit_scale: float = 1.0,
    sample_weight: Optional[ArrayLike] = None,
    chunk_size: Optional[int] = None,
    num_threads: Optional[int] = None,
) -> _Loss: ...
def linear_cross_entropy_and_grad(
    input: ArrayLike,
    linear_weight: ArrayLike,
    targets: ArrayLike,
    *,
    linear_bias: Optional[ArrayLike] = None,
    weight: Optional[ArrayLike] = None,
    ignore_index: int = -100,
    reduction: _Reduction = "mean",
    label_smoothing: float = 0.0,
    eps: float = 0.0,
    z_loss: float = 0.0,
    softcap: Optional[float] = None,
    logit_scale: float = 1.0,
    sample_weight: Optional[ArrayLike] = None,
    grad_loss: Optional[ArrayLike] = None,
    chunk_size: Optional[int] = None,
    num_threads: Optional[int] = None,
) -> Union[Tuple[_Loss, _Grad, _Grad], Tuple[_Loss, _Grad, _Grad, _Grad]]: ...
