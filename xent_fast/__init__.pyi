"""Type stub of the xent_fast package: its public names (``__all__``, checked against
__init__.py by tests/test_packaging.py); the signatures live in losses.pyi and layers.pyi."""
from ._version import __version__ as __version__
from .layers import BinaryCrossEntropyLoss as BinaryCrossEntropyLoss
from .layers import BinaryCrossEntropyWithLogitsLoss as BinaryCrossEntropyWithLogitsLoss
from .layers import CategoricalCrossEntropyLoss as CategoricalCrossEntropyLoss
from .layers import CrossEntropyLoss as CrossEntropyLoss
from .layers import LinearCrossEntropyLoss as LinearCrossEntropyLoss
from .linear import linear_cross_entropy as linear_cross_entropy
from .linear import linear_cross_entropy_and_grad as linear_cross_entropy_and_grad
from .losses import binary_cross_entropy as binary_cross_entropy
from .losses import binary_cross_entropy_and_grad as binary_cross_entropy_and_grad
from .losses import binary_cross_entropy_with_logits as binary_cross_entropy_with_logits
from .losses import (
    binary_cross_entropy_with_logits_and_grad as binary_cross_entropy_with_logits_and_grad,
)
from .losses import categorical_cross_entropy as categorical_cross_entropy
from .losses import categorical_cross_entropy_and_grad as categorical_cross_entropy_and_grad
from .losses import cross_entropy as cross_entropy
from .losses import cross_entropy_and_grad as cross_entropy_and_grad
from .losses import log_softmax as log_softmax
from .losses import logsumexp as logsumexp
from .losses import nll_loss as nll_loss
from .losses import softmax as softmax
from . import vocab_parallel as vocab_parallel

def isa() -> str: ...
def show_config(mode: str = "stdout") -> dict[str, object] | None: ...

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
