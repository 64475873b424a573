"""The compiled module's import, with a message that says what to do when it is missing, and the
check of the ``XENT_FAST_ISA`` setting against the path the kernels actually took.

Run from a checkout, ``import xent_fast`` finds the source folder ``xent_fast/`` first (the
current directory leads ``sys.path``), which holds no compiled ``_kernels`` until the extension is
built in place, and it shadows any installed copy.  Python then reports only a "partially
initialized module ... circular import", which points nowhere useful.
"""
import importlib
import importlib.machinery
import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def missing_kernels_message(folder=_HERE):
    """Why the compiled module is missing from `folder` and what to do, or None if it is there."""
    names = os.listdir(folder)
    if any(n.startswith("_kernels.") and n.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
           for n in names):
        return None
    if "_kernels.pyx" in names:  # a source folder: a checkout or an unpacked sdist
        return (f"xent_fast's compiled module _kernels is not built in the source folder {folder}, "
                "which shadows any installed xent_fast when Python runs from the folder above it. "
                "Build it in place with `pip install -e .` (or `python setup.py build_ext "
                "--inplace`) in the checkout, or run Python from another folder to use the "
                "installed package.")
    return (f"xent_fast's compiled module _kernels is missing from {folder}: the installation is "
            "incomplete; reinstall xent_fast (`pip install --force-reinstall xent_fast`).")


def import_kernels():
    """Import xent_fast._kernels, raising an ImportError that says what to do when it is missing."""
    try:
        return importlib.import_module("xent_fast._kernels")
    except ImportError as exc:
        message = missing_kernels_message()
        if message is None:  # the file is there but does not load: its own error says why
            raise
        raise ImportError(message, name="xent_fast._kernels") from exc


ISAS = ("baseline", "avx2", "avx512")  # the kernel paths, from the narrowest


def check_forced_isa(running, forced=None):
    """Refuse an ``XENT_FAST_ISA`` that names no path, or one the CPU lacks (`running` is the
    path the dispatcher took: it falls back to the CPU's best rather than fail)."""
    if forced is None:
        forced = os.environ.get("XENT_FAST_ISA", "")
    if not forced:  # unset or empty: the CPU's best
        return
    if forced not in ISAS:
        raise ValueError(f"XENT_FAST_ISA={forced!r} names no kernel path: choose one of "
                         f"{', '.join(ISAS)}, or unset it to use the CPU's best ({running})")
    if forced != running:
        raise ValueError(f"XENT_FAST_ISA={forced!r} asks for a path this CPU (or this build) does "
                         f"not support: it runs at most {running}; choose one of "
                         f"{', '.join(ISAS[:ISAS.index(running) + 1])}, or unset it")
