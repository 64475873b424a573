"""Benchmark cases: the shapes, dtypes and class axes that are timed, and their inputs.

A case is a logits shape, a floating dtype and the class axis. Targets are int64 class indices with
the logits' shape minus the class axis; the reduction is always ``"mean"``.

Case specs on the command line look like ``2048x32000``, ``2048x32000:f64`` or
``32x21x128x128:axis=1`` (fields after ``:`` in any order).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

_DTYPES = {"f32": "float32", "float32": "float32", "f64": "float64", "float64": "float64"}


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmark input: logits of ``shape`` and ``dtype`` with the classes along ``axis``."""

    shape: tuple
    dtype: str = "float32"
    axis: int = -1

    @property
    def class_axis(self) -> int:
        """The class axis as a non-negative index."""
        return self.axis % len(self.shape)

    @property
    def n_classes(self) -> int:
        """C, the length of the class axis."""
        return self.shape[self.class_axis]

    @property
    def n_rows(self) -> int:
        """The number of rows (targets): all elements divided by C."""
        return math.prod(self.shape) // self.n_classes

    @property
    def target_shape(self) -> tuple:
        """The targets' shape: the logits' shape without the class axis."""
        return tuple(d for i, d in enumerate(self.shape) if i != self.class_axis)

    @property
    def logits_bytes(self) -> int:
        """Bytes of logits one call reads."""
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize

    @property
    def label(self) -> str:
        """Short human name, e.g. ``(2048, 32000)`` or ``(32, 21, 128, 128) axis=1``."""
        text = "(" + ", ".join(str(d) for d in self.shape) + ")"
        if len(self.shape) != 2 or self.class_axis != 1:
            text += f" axis={self.axis}"
        return text

    @property
    def dtype_short(self) -> str:
        """``f32`` or ``f64``."""
        return "f" + str(np.dtype(self.dtype).itemsize * 8)

    @property
    def key(self) -> str:
        """A unique, parseable id (the spec syntax), used in JSON and between processes."""
        spec = "x".join(str(d) for d in self.shape) + ":" + self.dtype_short
        if len(self.shape) != 2 or self.class_axis != 1:
            spec += f":axis={self.axis}"
        return spec

    def to_dict(self) -> dict:
        """Plain-JSON form (inverse of :func:`case_from_dict`)."""
        return {"shape": list(self.shape), "dtype": self.dtype, "axis": self.axis}


def case_from_dict(d: dict) -> Case:
    """Rebuild a :class:`Case` from :meth:`Case.to_dict`'s output."""
    return Case(tuple(int(x) for x in d["shape"]), d["dtype"], int(d["axis"]))


def parse_case(spec: str) -> Case:
    """Parse ``'2048x32000'``, ``'2048x32000:f64'`` or ``'32x21x128x128:axis=1'`` into a Case."""
    head, *fields = spec.strip().split(":")
    try:
        shape = tuple(int(d) for d in head.lower().split("x"))
    except ValueError:
        raise ValueError(f"bad shape {head!r} in case spec {spec!r}; expected e.g. 2048x32000") from None
    if len(shape) < 1 or any(d < 1 for d in shape):
        raise ValueError(f"bad shape {head!r} in case spec {spec!r}")
    dtype, axis = "float32", -1
    for field in fields:
        field = field.strip().lower()
        if field in _DTYPES:
            dtype = _DTYPES[field]
        elif field.startswith("axis="):
            axis = int(field[5:])
            if not -len(shape) <= axis < len(shape):
                raise ValueError(f"axis {axis} out of range for shape {shape} in {spec!r}")
        else:
            raise ValueError(f"unknown field {field!r} in case spec {spec!r} (use f32, f64 or axis=K)")
    return Case(shape, dtype, axis)


# The shapes of issues 2-4: batch x classes from tiny heads to LLM vocabularies.
DEFAULT_CASES = tuple(parse_case(s) for s in (
    "65536x10", "16384x100", "8192x1000", "2048x32000", "512x128256",
))

# Extended set (`--shapes all` = default + these): tiny C, GPT-2's and Gemma's vocabularies,
# float64, and a segmentation-style (N, C, H, W) batch with the class axis not last.
EXTENDED_CASES = tuple(parse_case(s) for s in (
    "262144x3", "65536x37", "1024x50257", "256x256000",
    "65536x10:f64", "8192x1000:f64", "2048x32000:f64",
    "32x21x128x128:axis=1",
))


def select_cases(spec: str) -> list:
    """Cases for ``--shapes``: ``default``, ``extended``, ``all`` or a comma list of case specs."""
    named = {"default": DEFAULT_CASES, "extended": EXTENDED_CASES,
             "all": DEFAULT_CASES + EXTENDED_CASES}
    if spec in named:
        return list(named[spec])
    return [parse_case(s) for s in spec.split(",") if s.strip()]


def make_inputs(case: Case, seed: int = 0):
    """Deterministic ``(logits, targets)`` NumPy arrays for ``case`` (same in every process).

    Logits are standard normal, generated directly in the case's dtype (no float64 temporary, so
    the process's memory high-water mark is not inflated); targets are uniform int64 indices.
    """
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal(case.shape, dtype=np.dtype(case.dtype))
    targets = rng.integers(0, case.n_classes, size=case.target_shape, dtype=np.int64)
    return logits, targets
