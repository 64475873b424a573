"""Packaging (issue 5): one version number, the PEP 561 files shipped beside the package, the type
stubs in step with the code they describe, and numpydoc docstrings on every public function.

Runs against whichever xent_fast is imported: the editable checkout or an installed wheel."""

import ast
import importlib
import inspect
import pathlib
import re

import pytest

from _helpers import USING_REFERENCE

pytestmark = pytest.mark.compiled_only

if USING_REFERENCE:  # the compiled package may be missing altogether then
    pytest.skip("XENT_TEST_IMPL=reference: packaging tests need the package", allow_module_level=True)

import xent_fast  # noqa: E402
from xent_fast import _kernels, losses  # noqa: E402

PKG = pathlib.Path(xent_fast.__file__).resolve().parent


def test_version_has_one_source():
    from xent_fast import _version

    assert xent_fast.__version__ == _version.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?",
                        xent_fast.__version__), xent_fast.__version__


def test_installed_metadata_matches_the_version():
    from importlib import metadata

    try:
        dist = metadata.distribution("xent_fast")
    except metadata.PackageNotFoundError:
        pytest.skip("xent_fast is imported from a source tree that is not installed")
    assert dist.version == xent_fast.__version__
    meta = dist.metadata
    assert meta["License-Expression"] == "BSD-3-Clause" or "BSD" in (meta["License"] or "")
    assert meta["Requires-Python"] == ">=3.9"
    assert any(r.startswith("numpy") for r in dist.requires or [])


@pytest.mark.parametrize("name", ["py.typed", "__init__.pyi", "_kernels.pyi", "losses.pyi",
                                  "layers.pyi"])
def test_typing_files_ship_beside_the_package(name):
    assert (PKG / name).is_file(), "%s is missing from %s" % (name, PKG)


def _stub_functions(path):
    """{name: its last definition} of a stub's functions (an overloaded one: the general last)."""
    return {name: defs[-1] for name, defs in _stub_overloads(path).items()}


def _stub_overloads(path):
    """{name: [every definition]} of a stub's top-level functions."""
    out = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            out.setdefault(node.name, []).append(node)
    return out


def _ast_params(fn):
    """[(name, kind, default)] of a stub function, in inspect's terms."""
    a = fn.args
    out = []
    positional = a.posonlyargs + a.args
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    for i, (arg, d) in enumerate(zip(positional, defaults)):
        kind = (inspect.Parameter.POSITIONAL_ONLY if i < len(a.posonlyargs)
                else inspect.Parameter.POSITIONAL_OR_KEYWORD)
        out.append((arg.arg, kind, inspect.Parameter.empty if d is None else ast.literal_eval(d)))
    if a.vararg:
        out.append((a.vararg.arg, inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.empty))
    for arg, d in zip(a.kwonlyargs, a.kw_defaults):
        out.append((arg.arg, inspect.Parameter.KEYWORD_ONLY,
                    inspect.Parameter.empty if d is None else ast.literal_eval(d)))
    if a.kwarg:
        out.append((a.kwarg.arg, inspect.Parameter.VAR_KEYWORD, inspect.Parameter.empty))
    return out


def _runtime_params(obj):
    return [(p.name, p.kind, p.default) for p in inspect.signature(obj).parameters.values()]


def _public_functions(module):
    return {n for n, o in vars(module).items()
            if not n.startswith("_") and callable(o) and not inspect.isclass(o)
            and getattr(o, "__module__", module.__name__) == module.__name__}


def test_losses_stub_matches_losses_py():
    stub = _stub_functions(PKG / "losses.pyi")
    public = _public_functions(losses)
    assert set(stub) == public, "losses.pyi and losses.py name different functions: %s" % (
        sorted(set(stub) ^ public))
    for name in sorted(public):
        assert _ast_params(stub[name]) == _runtime_params(getattr(losses, name)), name


def test_vocab_parallel_stub_matches_vocab_parallel_py():
    from xent_fast import vocab_parallel

    stub = _stub_functions(PKG / "vocab_parallel.pyi")
    public = _public_functions(vocab_parallel)
    assert set(stub) == public == {n for n in vocab_parallel.__all__ if n.islower()}, (
        sorted(set(stub) ^ public))
    for name in sorted(public):
        assert _ast_params(stub[name]) == _runtime_params(getattr(vocab_parallel, name)), name


def test_losses_overloads_differ_only_in_reduction():
    """Each loss's overloads (one per kind of reduction, and one for return_lse=True where the
    function has it) have the function's parameters; only `reduction`'s and `return_lse`'s
    defaults may be missing (the variants that require them)."""
    for name, defs in _stub_overloads(PKG / "losses.pyi").items():
        runtime = _runtime_params(getattr(losses, name))
        names = [p[0] for p in runtime]
        if len(defs) > 1:
            assert len(defs) == 3 + ("return_lse" in names) and "reduction" in names, name
        for fn in defs:
            params = _ast_params(fn)
            assert [p[:2] for p in params] == [p[:2] for p in runtime], name
            assert [p for p in params if p[0] not in ("reduction", "return_lse")] == [
                p for p in runtime if p[0] not in ("reduction", "return_lse")], name


def _stub_classes(path):
    return {node.name: node for node in ast.parse(path.read_text()).body
            if isinstance(node, ast.ClassDef)}


def test_layers_stub_matches_layers_py():
    from xent_fast import layers

    stub = _stub_classes(PKG / "layers.pyi")
    assert set(layers.__all__) <= set(stub), sorted(set(layers.__all__) - set(stub))
    for name in layers.__all__:
        init = next(n for n in stub[name].body
                    if isinstance(n, ast.FunctionDef) and n.name == "__init__")
        assert _ast_params(init)[1:] == _runtime_params(getattr(layers, name)), name
    methods = {n.name: n for n in stub["_Loss"].body if isinstance(n, ast.FunctionDef)}
    for method in ("forward", "__call__", "backward", "forward_backward"):
        assert (_ast_params(methods[method])[1:]
                == _runtime_params(getattr(layers.CrossEntropyLoss(), method))), method


def test_package_stub_exports_the_public_names():
    tree = ast.parse((PKG / "__init__.pyi").read_text())
    exported = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                    and n.targets[0].id == "__all__")
    assert exported == list(xent_fast.__all__)
    imported = {a.asname for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert set(exported) == imported | defined, sorted(set(exported) ^ (imported | defined))


def test_kernels_stub_matches_the_compiled_module():
    stub = _stub_functions(PKG / "_kernels.pyi")
    public = {n for n in dir(_kernels) if not n.startswith("_")
              and callable(getattr(_kernels, n))}
    assert set(stub) == public, "_kernels.pyi and the compiled module differ: %s" % (
        sorted(set(stub) ^ public))
    for name in sorted(public):
        try:
            runtime = inspect.signature(getattr(_kernels, name))
        except (TypeError, ValueError):  # a Cython build without introspectable signatures
            continue
        assert [p[0] for p in _ast_params(stub[name])] == list(runtime.parameters), name


def test_every_public_name_has_a_numpydoc_docstring():
    from xent_fast import vocab_parallel

    for module, name in ([(xent_fast, n) for n in xent_fast.__all__]
                         + [(vocab_parallel, n) for n in vocab_parallel.__all__]):
        obj = getattr(module, name)
        if not callable(obj):
            continue
        doc = inspect.getdoc(obj) or ""
        assert doc.strip(), "%s has no docstring" % name
        if inspect.signature(obj).parameters:
            assert re.search(r"^Parameters\n-{10}", doc, re.M), "%s: no Parameters section" % name
            for p in inspect.signature(obj).parameters:
                # numpydoc: "name : type" or several names sharing one entry, "a, b : type";
                # "*name" for *args
                assert re.search(r"^(\w+, )*\**%s\b" % re.escape(p), doc, re.M), (
                    "%s does not document its parameter %r" % (name, p))
        if not inspect.isclass(obj):  # a class documents its constructor, which returns None
            assert re.search(r"^Returns\n-------", doc, re.M) or name == "isa", (
                "%s: no Returns section" % name)


def test_public_names_are_importable_from_the_top():
    for name in xent_fast.__all__:
        assert hasattr(xent_fast, name), name
    importlib.import_module("xent_fast.reference")
