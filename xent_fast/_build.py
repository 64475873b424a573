"""The compiled module's import, with a message that says what to do when it is missing.

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
