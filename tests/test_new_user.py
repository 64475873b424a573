"""What a new user meets first (issue 14): the import from a checkout without a built extension,
the README's snippets run as written, and a typed user script that passes ``mypy --strict``.

Runs against whichever xent_fast is imported: the editable checkout or an installed wheel (then
.ci/run copies README.md next to tests/)."""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from _helpers import USING_REFERENCE

pytestmark = pytest.mark.compiled_only

if USING_REFERENCE:  # the compiled package may be missing altogether then
    pytest.skip("XENT_TEST_IMPL=reference: these tests need the package", allow_module_level=True)

import xent_fast  # noqa: E402

PKG = pathlib.Path(xent_fast.__file__).resolve().parent


def _python(code, cwd, **env):
    """Run `code` in a fresh interpreter in `cwd`; return (exit code, stdout + stderr).  The
    package under test stays importable wherever it was imported from (installed, editable, or
    an in-place build such as the sanitizer run's)."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    environ["PYTHONPATH"] = str(PKG.parent)
    environ.update(env)
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def _package_copy_without_extension(dest, with_sources):
    """A copy of the package folder without the compiled module, as a checkout before its build
    (`with_sources`: the Cython source is there) or a broken installation (it is not)."""
    folder = dest / "xent_fast"
    shutil.copytree(PKG, folder, ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    (folder / "_kernels.pyx").unlink(missing_ok=True)
    if with_sources:
        (folder / "_kernels.pyx").write_text("# the Cython source of the compiled module\n")
    return folder


@pytest.mark.parametrize("with_sources", [True, False], ids=["checkout", "broken-install"])
def test_import_without_the_extension_says_what_to_do(tmp_path, with_sources):
    folder = _package_copy_without_extension(tmp_path, with_sources)
    # An editable install's import hook would find the checkout's compiled module for the copy's
    # submodules; a regular installation (the case at hand) has no such hook.
    code = ("import sys; sys.path.insert(0, '.')\n"
            "sys.meta_path[:] = [f for f in sys.meta_path if 'Editable' not in repr(f)]\n"
            "try:\n    import xent_fast\n"
            "except ImportError as exc:\n    print('ImportError:', exc); sys.exit(3)\n")
    status, output = _python(code, tmp_path)
    assert status == 3, output
    assert "circular import" not in output
    assert str(folder) in output and "_kernels" in output
    if with_sources:
        assert "shadows" in output and "pip install -e ." in output and "another folder" in output
    else:
        assert "reinstall" in output


def test_import_from_a_folder_with_the_extension_works(tmp_path):
    status, output = _python("import xent_fast; print(xent_fast.isa())", tmp_path)
    assert status == 0 and output.strip() in ("baseline", "avx2", "avx512"), output


# ----------------------------------------------------------------------------------------------
# XENT_FAST_ISA: a value that names no path, or a path the CPU lacks, is refused (issue 14.7)
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["bogus", "AVX2", "avx-512"])
def test_unknown_forced_isa_is_refused_at_import(tmp_path, value):
    status, output = _python("import xent_fast", tmp_path, XENT_FAST_ISA=value)
    assert status != 0 and "ValueError" in output, output
    assert repr(value) in output and "baseline, avx2, avx512" in output, output


def test_forced_isa_the_cpu_has_is_accepted(tmp_path):
    status, output = _python("import xent_fast; print(xent_fast.isa())", tmp_path,
                             XENT_FAST_ISA="baseline")
    assert status == 0 and output.strip() == "baseline", output


def test_forced_isa_the_cpu_lacks_is_refused():
    from xent_fast._build import check_forced_isa

    # what the dispatcher reports when it fell back from a path the CPU lacks
    with pytest.raises(ValueError, match=r"'avx512'.*at most avx2.*baseline, avx2\b"):
        check_forced_isa("avx2", "avx512")
    with pytest.raises(ValueError, match=r"'avx2'.*at most baseline"):
        check_forced_isa("baseline", "avx2")
    check_forced_isa("avx2", "avx2")
    check_forced_isa("avx2", "")  # empty: unset


def test_forced_isa_the_cpu_lacks_is_refused_at_import(tmp_path):
    best = xent_fast.isa() if "XENT_FAST_ISA" not in os.environ else None
    if best is None or best == "avx512":
        pytest.skip("needs a CPU without AVX-512 and XENT_FAST_ISA unset (the unit test above "
                    "covers the check itself)")
    status, output = _python("import xent_fast", tmp_path, XENT_FAST_ISA="avx512")
    assert status != 0 and "'avx512'" in output and f"at most {best}" in output, output


# ----------------------------------------------------------------------------------------------
# typing: a user script passes `mypy --strict` with the package's stubs, and mistakes are caught
# ----------------------------------------------------------------------------------------------

TYPED = pathlib.Path(__file__).resolve().parent / "typed_user"


def test_typed_user_script_passes_mypy_strict_and_runs(tmp_path):
    """mypy is in the [test] extra; it runs in a subprocess on the stubs of the xent_fast under
    test, and must also report each marked mistake of user_errors.py (else it checks nothing)."""
    env = {"MYPY_FORCE_COLOR": "0"}
    if "site-packages" not in PKG.parts:  # an editable install: mypy cannot follow its import hook
        env["MYPYPATH"] = str(PKG.parent)
    good, bad = TYPED / "user_script.py", TYPED / "user_errors.py"
    code = ("import sys; from mypy import api\n"
            f"out, err, status = api.run(['--strict', '--no-error-summary', '--hide-error-context', "
            f"'--cache-dir', {str(tmp_path / 'cache')!r}, {str(good)!r}, {str(bad)!r}])\n"
            "print(out, err)\n")
    status, output = _python(code, tmp_path, **env)
    assert status == 0, output
    errors = [line for line in output.splitlines() if ": error:" in line]
    assert not [e for e in errors if "user_script.py" in e], output
    expected = [n for n, line in enumerate(bad.read_text().splitlines(), 1)
                if line.endswith("# error")]
    reported = sorted({int(e.split(":")[1]) for e in errors if "user_errors.py" in e})
    assert reported == expected, output
    status, output = _python(good.read_text(), tmp_path)
    assert status == 0, output


# ----------------------------------------------------------------------------------------------
# the README's snippets and the docstrings' examples run as written
# ----------------------------------------------------------------------------------------------

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks(markdown):
    """The ```python blocks of a Markdown text, in order."""
    blocks, block = [], None
    for line in markdown.splitlines():
        if block is None and line.strip() == "```python":
            block = []
        elif block is not None and line.strip() == "```":
            blocks.append("\n".join(block))
            block = None
        elif block is not None:
            block.append(line)
    assert block is None, "README.md has an unclosed ```python block"
    return blocks


def test_readme_python_blocks_run_in_order_as_one_script(tmp_path):
    assert README.is_file(), (f"{README} is missing: the tests read the README next to tests/ "
                              "(copy it there with tests/ when testing an installed wheel)")
    blocks = _python_blocks(README.read_text())
    assert blocks, "README.md has no ```python block"
    script = "\n\n".join(blocks)
    status, output = _python(script, tmp_path)
    assert status == 0, f"README.md's python blocks fail as one script:\n{output}"


@pytest.mark.parametrize("module", ["xent_fast.losses", "xent_fast.layers",
                                    "xent_fast.vocab_parallel"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, result
