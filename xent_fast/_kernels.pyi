"""Type stub of the compiled binding xent_fast._kernels (source: _kernels.pyx).

Private: xent_fast._api validates every argument before calling these.  Shapes are
(n_class, row_shape); strides are (s_class, s_row) tuples counted in elements.  Integer codes:
dtype 0 float32 / 1 float64 / 2 float16 / 3 bfloat16 (storage); input_kind 0 logits / 1 log-probabilities / 2 probabilities;
reduction 0 none / 1 mean / 2 sum; what 0 logsumexp / 1 log_softmax / 2 softmax.
"""
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

_Strides = Tuple[int, Tuple[int, ...]]

MAX_DIMS: int
PARTIAL_FIELDS: Tuple[int, int, int, int, int, int, int]
N_PARTIALS: int
ENVIRONMENT: Dict[str, Optional[str]]

def element_strides(arr: np.ndarray) -> Tuple[int, ...]: ...
def rows_layout(
    shape: Tuple[int, ...], axis: int, strides_list: List[Tuple[int, ...]]
) -> Tuple[int, Tuple[int, ...], List[_Strides]]: ...
def cross_entropy(
    dtype: int,
    input_kind: int,
    n_class: int,
    row_shape: Tuple[int, ...],
    x: np.ndarray,
    x_strides: _Strides,
    target: Optional[np.ndarray],
    t_strides: _Strides,
    y: Optional[np.ndarray],
    y_strides: _Strides,
    weight: Optional[np.ndarray],
    ignore_index: int,
    label_smoothing: float,
    eps: float,
    reduction: int,
    grad_loss: Optional[np.ndarray],
    grad_loss_stride: int,
    g: Optional[np.ndarray],
    g_dtype: int,
    g_strides: _Strides,
    loss_rows: Optional[np.ndarray],
    logit_scale: float,
    softcap: float,
    z_loss: float,
    sample_weight: Optional[np.ndarray],
    sw_strides: _Strides,
    lse_rows: Optional[np.ndarray],
    num_threads: int,
    g_new: bool = ...,
) -> Tuple[int, float, int, int]:
    """Run xent_cross_entropy; returns (status, loss, bad_row, bad_value).  g_new: g was just
    allocated (xent_problem.g_new)."""

def shard_partials(
    dtype: int,
    n_class: int,
    row_shape: Tuple[int, ...],
    x: np.ndarray,
    x_strides: _Strides,
    target: Optional[np.ndarray],
    t_strides: _Strides,
    y: Optional[np.ndarray],
    y_strides: _Strides,
    weight: Optional[np.ndarray],
    ignore_index: int,
    label_smoothing: float,
    logit_scale: float,
    softcap: float,
    class_start: int,
    num_classes: int,
    partials: np.ndarray,
    num_threads: int,
) -> Tuple[int, int, int]:
    """Run xent_shard_partials into partials (N x N_PARTIALS contiguous float64); returns
    (status, bad_row, bad_value)."""

def shard_grad(
    dtype: int,
    n_class: int,
    row_shape: Tuple[int, ...],
    x: np.ndarray,
    x_strides: _Strides,
    target: Optional[np.ndarray],
    t_strides: _Strides,
    y: Optional[np.ndarray],
    y_strides: _Strides,
    weight: Optional[np.ndarray],
    ignore_index: int,
    label_smoothing: float,
    reduction: int,
    grad_loss: Optional[np.ndarray],
    grad_loss_stride: int,
    g: np.ndarray,
    g_dtype: int,
    g_strides: _Strides,
    logit_scale: float,
    softcap: float,
    z_loss: float,
    sample_weight: Optional[np.ndarray],
    sw_strides: _Strides,
    class_start: int,
    num_classes: int,
    total: np.ndarray,
    denominator: float,
    num_threads: int,
) -> Tuple[int, int, int]:
    """Run xent_shard_grad into g given the combined partials total (N x N_PARTIALS contiguous
    float64); returns (status, bad_row, bad_value)."""

def partials_combine(parts: List[np.ndarray], out: np.ndarray) -> None:
    """Run xent_partials_combine over contiguous float64 partials of the same rows into out."""

def partials_lse(partials: np.ndarray, lse: np.ndarray) -> None:
    """Run xent_partials_lse: contiguous float64 partials into lse (one per row)."""

def partials_denominator(partials: np.ndarray, sample_weight: Optional[np.ndarray]) -> float:
    """Run xent_partials_denominator (sample_weight: one float64 per row, contiguous, or None)."""

def partials_finish(
    partials: np.ndarray,
    z_loss: float,
    sample_weight: Optional[np.ndarray],
    reduction: int,
    denominator: float,
    loss_rows: Optional[np.ndarray],
) -> float:
    """Run xent_partials_finish; returns the reduced loss (NaN for reduction none)."""

def softmax_rows(
    dtype: int,
    what: int,
    n_class: int,
    row_shape: Tuple[int, ...],
    x: np.ndarray,
    x_strides: _Strides,
    out: Optional[np.ndarray],
    out_strides: _Strides,
    out_rows: Optional[np.ndarray],
    num_threads: int,
) -> int:
    """Run xent_softmax_rows (what: 0 logsumexp, 1 log_softmax, 2 softmax); returns the status."""

def softmax_rows_lse(
    dtype: int,
    what: int,
    n_class: int,
    row_shape: Tuple[int, ...],
    x: np.ndarray,
    x_strides: _Strides,
    out: np.ndarray,
    out_strides: _Strides,
    lse_rows: np.ndarray,
    num_threads: int,
) -> int:
    """Run xent_softmax_rows_lse (what: 1 log_softmax, 2 softmax) given each row's log-sum-exp
    (contiguous float64); returns the status."""

def binary(
    dtype: int,
    with_logits: int,
    x: np.ndarray,
    y: np.ndarray,
    weight: Optional[np.ndarray],
    pos_weight: Optional[np.ndarray],
    eps: float,
    reduction: int,
    grad_loss: Optional[np.ndarray],
    grad_loss_stride: int,
    g: Optional[np.ndarray],
    loss_elems: Optional[np.ndarray],
    num_threads: int,
) -> Tuple[int, float]:
    """Run xent_binary over contiguous arrays; returns (status, loss)."""

def isa() -> str:
    """The instruction set the kernels run with: 'baseline', 'avx2' or 'avx512'."""

def isa_features(isa: Optional[str] = None) -> Optional[List[str]]:
    """The features path `isa` (None: the active one) was compiled with, e.g. ['sse2', 'avx2'];
    None for a path that was not built."""

def exp(dtype: int, x: np.ndarray, out: np.ndarray) -> None:
    """The kernels' vectorised exp over contiguous x into out (for accuracy tests)."""

def config() -> Dict[str, Any]:
    """The CPU, the paths and the tuning row in force (raises on a bad XENT_FAST_TUNE)."""

def tuning_rows() -> List[Dict[str, Any]]:
    """Every row of the tuning table (csrc/tuning.c), in lookup order."""
