"""Mistakes `mypy --strict` must report with xent_fast's stubs (tests/test_new_user.py): each
line ending in the comment "error" is one."""
from typing import Any

import numpy as np
from numpy.typing import NDArray

import xent_fast as xf

logits = np.zeros((4, 3))
rows: NDArray[np.floating[Any]] = xf.cross_entropy(logits, [0, 1, 2, 0])  # error
scalar: np.floating[Any] = xf.cross_entropy(logits, [0, 1, 2, 0], reduction="none")  # error
xf.cross_entropy(logits, [0, 1, 2, 0], reduction="avg")  # error
xf.CrossEntropyLoss(smoothing=0.1)  # error
isa: int = xf.isa()  # error
