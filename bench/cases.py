"""Benchmark cases: the shapes, dtypes, class axes and loss options that are timed, and their inputs.

A case is a logits shape, a dtype (float32, float64, or the half-precision storage types float16
and bfloat16), the class axis and the large-model options of ``cross_entropy`` (``softcap``,
``z_loss``, ``logit_scale``; defaults: none). Targets are int64 class indices with the logits'
shape minus the class axis; the reduction is always ``"mean"``.

Case specs on the command line look like ``2048x32000``, ``2048x32000:bf16``,
``512x128256:softcap=30:z_loss=1e-4`` or ``32x21x128x128:axis=1`` (fields after ``:`` in any order).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

_DTYPES = {"f32": "float32", "float32": "float32", "f64": "float64", "float64": "float64",
           "f16": "float16", "float16": "float16", "bf16": "bfloat16", "bfloat16": "bfloat16"}
_SHORT = {"float32": "f32", "float64": "f64", "float16": "f16", "bfloat16": "bf16"}
_ITEMSIZE = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2}
HALF = ("float16", "bfloat16")
# The options in the order the spec, the label and the key print them, with their defaults.
OPTIONS = (("softcap", None), ("z_loss", 0.0), ("logit_scale", 1.0))
_CHUNK = 1 << 22  # elements per float32 block when half-precision inputs are generated


def dtype_short(dtype: str) -> str:
    """``f32``, ``f64``, ``f16`` or ``bf16`` for a dtype name."""
    return _SHORT.get(dtype, dtype)


def numpy_dtype(dtype: str) -> np.dtype:
    """The NumPy dtype of a case; bfloat16 is ml_dtypes' (imported only here, when needed)."""
    if dtype == "bfloat16":
        try:
            import ml_dtypes
        except ImportError as exc:
            from .contenders import Unavailable
            raise Unavailable(f"bfloat16 cases need ml_dtypes ({exc}); `pip install ml_dtypes`") from None
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmark input: logits of ``shape`` and ``dtype`` with the classes along ``axis``,
    and the loss options ``softcap``, ``z_loss``, ``logit_scale`` (defaults: the plain loss)."""

    shape: tuple
    dtype: str = "float32"
    axis: int = -1
    softcap: float | None = None
    z_loss: float = 0.0
    logit_scale: float = 1.0

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
        """Bytes of logits one call reads (2 per logit for float16 and bfloat16)."""
        return math.prod(self.shape) * _ITEMSIZE[self.dtype]

    @property
    def options(self) -> dict:
        """The loss options that differ from their defaults, as keyword arguments."""
        return {name: getattr(self, name) for name, default in OPTIONS if getattr(self, name) != default}

    def _options_text(self, sep: str) -> str:
        return "".join(f"{sep}{name}={value:g}" for name, value in self.options.items())

    @property
    def label(self) -> str:
        """Short human name, e.g. ``(2048, 32000)``, ``(32, 21, 128, 128) axis=1`` or
        ``(512, 128256) softcap=30 z_loss=0.0001``."""
        text = "(" + ", ".join(str(d) for d in self.shape) + ")"
        if len(self.shape) != 2 or self.class_axis != 1:
            text += f" axis={self.axis}"
        return text + self._options_text(" ")

    @property
    def dtype_short(self) -> str:
        """``f32``, ``f64``, ``f16`` or ``bf16``."""
        return dtype_short(self.dtype)

    @property
    def key(self) -> str:
        """A unique, parseable id (the spec syntax), used in JSON and between processes."""
        spec = "x".join(str(d) for d in self.shape) + ":" + self.dtype_short
        if len(self.shape) != 2 or self.class_axis != 1:
            spec += f":axis={self.axis}"
        return spec + self._options_text(":")

    @property
    def base(self):
        """The case this one is compared with in the report, or None for a plain case: the same
        case without options (options rows), else the float32 case (half-precision rows)."""
        if self.options:
            return dataclasses.replace(self, softcap=None, z_loss=0.0, logit_scale=1.0)
        if self.dtype in HALF:
            return dataclasses.replace(self, dtype="float32")
        return None

    def to_dict(self) -> dict:
        """Plain-JSON form (inverse of :func:`case_from_dict`)."""
        return {"shape": list(self.shape), "dtype": self.dtype, "axis": self.axis, **self.options}


def case_from_dict(d: dict) -> Case:
    """Rebuild a :class:`Case` from :meth:`Case.to_dict`'s output."""
    options = {name: float(d[name]) for name, _ in OPTIONS if d.get(name) is not None}
    return Case(tuple(int(x) for x in d["shape"]), d["dtype"], int(d["axis"]), **options)


def parse_case(spec: str) -> Case:
    """Parse ``'2048x32000'``, ``'2048x32000:bf16'``, ``'32x21x128x128:axis=1'`` or
    ``'512x128256:softcap=30:z_loss=1e-4'`` into a Case."""
    head, *fields = spec.strip().split(":")
    try:
        shape = tuple(int(d) for d in head.lower().split("x"))
    except ValueError:
        raise ValueError(f"bad shape {head!r} in case spec {spec!r}; expected e.g. 2048x32000") from None
    if len(shape) < 1 or any(d < 1 for d in shape):
        raise ValueError(f"bad shape {head!r} in case spec {spec!r}")
    dtype, axis, options = "float32", -1, {}
    for field in fields:
        field = field.strip().lower()
        name, _, value = field.partition("=")
        if field in _DTYPES:
            dtype = _DTYPES[field]
        elif name == "axis" and value:
            axis = int(value)
            if not -len(shape) <= axis < len(shape):
                raise ValueError(f"axis {axis} out of range for shape {shape} in {spec!r}")
        elif name in dict(OPTIONS) and value:
            try:
                options[name] = float(value)
            except ValueError:
                raise ValueError(f"bad value {value!r} for {name} in case spec {spec!r}") from None
        else:
            raise ValueError(f"unknown field {field!r} in case spec {spec!r} (use f32, f64, f16, bf16, "
                             "axis=K, softcap=X, z_loss=X or logit_scale=X)")
    return Case(shape, dtype, axis, **options)


def _specs(*specs) -> tuple:
    return tuple(parse_case(s) for s in specs)


def _after_bases(plain, variants) -> tuple:
    """``plain`` with each variant placed after the last case of its shape, so that a row and
    the row it is compared with are timed close together in the run."""
    out = list(plain)
    for v in variants:
        at = max(i for i, c in enumerate(out) if (c.shape, c.axis) == (v.shape, v.axis))
        out.insert(at + 1, v)
    return tuple(out)


# The shapes of issues 2-4: batch x classes from tiny heads to LLM vocabularies, float32, plain
# loss (the README's table); `--shapes plain`.
PLAIN_CASES = _specs("65536x10", "16384x100", "8192x1000", "2048x32000", "512x128256")

# Issue 11's rows: half-precision storage at the same shapes (compared with their float32 rows),
# and the large-model options at Llama 3's vocabulary (compared with the plain row).
HALF_CASES = _specs("8192x1000:bf16", "8192x1000:f16", "2048x32000:bf16", "2048x32000:f16",
                    "512x128256:bf16", "512x128256:f16")
OPTION_CASES = _specs("512x128256:softcap=30:z_loss=1e-4", "512x128256:softcap=30",
                      "512x128256:z_loss=1e-4", "512x128256:logit_scale=0.5")

DEFAULT_CASES = _after_bases(PLAIN_CASES, HALF_CASES + OPTION_CASES)
# `--quick`: the plain rows and the half-precision rows at one shape.
QUICK_CASES = _after_bases(PLAIN_CASES, _specs("2048x32000:bf16", "2048x32000:f16"))
# `--shapes llm`: issue 11's rows with the float32 rows they are compared with, nothing else.
LLM_CASES = tuple(c for c in DEFAULT_CASES if c.base or any(v.base == c for v in DEFAULT_CASES))

# Extended set (`--shapes all` = default + these): tiny C, GPT-2's and Gemma's vocabularies,
# float64, and a segmentation-style (N, C, H, W) batch with the class axis not last.
EXTENDED_CASES = _specs(
    "262144x3", "65536x37", "1024x50257", "256x256000",
    "65536x10:f64", "8192x1000:f64", "2048x32000:f64",
    "32x21x128x128:axis=1",
)

# `--shapes small`: calls of tens of microseconds, where the Python layer's cost per call shows
# (not in `all`: its rows measure the call, not the kernel).
SMALL_CASES = _specs("64x10", "256x100", "128x1000")

NAMED_SETS = {"default": DEFAULT_CASES, "quick": QUICK_CASES, "plain": PLAIN_CASES, "llm": LLM_CASES,
              "small": SMALL_CASES,
              "extended": EXTENDED_CASES, "all": DEFAULT_CASES + EXTENDED_CASES}


def select_cases(spec: str) -> list:
    """Cases for ``--shapes``: a name from :data:`NAMED_SETS` or a comma list of case specs."""
    if spec in NAMED_SETS:
        return list(NAMED_SETS[spec])
    return [parse_case(s) for s in spec.split(",") if s.strip()]


def make_inputs(case: Case, seed: int = 0):
    """Deterministic ``(logits, targets)`` NumPy arrays for ``case`` (same in every process).

    Logits are standard normal, generated directly in float32 or float64 (no float64 temporary,
    so the process's memory high-water mark is not inflated); half-precision logits are the same
    float32 values rounded, generated in blocks. Targets are uniform int64 indices (the same for
    a float32 case and its half-precision rows).
    """
    rng = np.random.default_rng(seed)
    if case.dtype in HALF:
        logits = np.empty(case.shape, dtype=numpy_dtype(case.dtype))
        flat = logits.reshape(-1)  # a view: the array is contiguous
        for start in range(0, flat.size, _CHUNK):
            block = rng.standard_normal(min(_CHUNK, flat.size - start), dtype=np.float32)
            flat[start:start + block.size] = block
    else:
        logits = rng.standard_normal(case.shape, dtype=np.dtype(case.dtype))
    targets = rng.integers(0, case.n_classes, size=case.target_shape, dtype=np.int64)
    return logits, targets
