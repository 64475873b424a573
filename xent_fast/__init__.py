"""xent_fast: fused, numerically stable, OpenMP-parallel cross-entropy for NumPy arrays.

Each loss reads every row of logits once in a compiled C kernel (log-softmax, NLL, clipping and,
for the ``_and_grad`` variants, the gradient, in one pass), parallel over the batch, with float64
reductions that do not depend on the thread count.  ``xent_fast.reference`` holds the plain NumPy
definition of every function.
"""
from ._version import __version__
from ._build import check_forced_isa, import_kernels

# A clear ImportError when the compiled module is missing; a ValueError for a bad XENT_FAST_ISA.
check_forced_isa(import_kernels().isa())
from .losses import (binary_cross_entropy, binary_cross_entropy_and_grad,
                     binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_and_grad,
                     categorical_cross_entropy, categorical_cross_entropy_and_grad, cross_entropy,
                     cross_entropy_and_grad, log_softmax, logsumexp, nll_loss, softmax)
from ._config import show_config
from ._kernels import isa as _isa
from .layers import (BinaryCrossEntropyLoss, BinaryCrossEntropyWithLogitsLoss,
                     CategoricalCrossEntropyLoss, CrossEntropyLoss, LinearCrossEntropyLoss)
from .linear import linear_cross_entropy, linear_cross_entropy_and_grad
from . import vocab_parallel


def isa() -> str:
    """The instruction set the kernels run with: 'baseline', 'avx2' or 'avx512'.

    Chosen from the CPU's features; the environment variable XENT_FAST_ISA (baseline, avx2,
    avx512) forces a path the CPU supports.  ``import xent_fast`` raises ValueError when
    XENT_FAST_ISA names no path or one this CPU lacks.

    Returns
    -------
    str
        The path's name.
    """
    return _isa()


__all__ = [
    "__version__", "binary_cross_entropy", "binary_cross_entropy_and_grad",
    "binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_and_grad",
    "categorical_cross_entropy", "categorical_cross_entropy_and_grad", "cross_entropy",
    "cross_entropy_and_grad", "isa", "log_softmax", "logsumexp", "nll_loss", "show_config",
    "softmax",
    "BinaryCrossEntropyLoss", "BinaryCrossEntropyWithLogitsLoss", "CategoricalCrossEntropyLoss",
    "CrossEntropyLoss",
    "linear_cross_entropy", "linear_cross_entropy_and_grad", "LinearCrossEntropyLoss",
    "vocab_parallel",
]
