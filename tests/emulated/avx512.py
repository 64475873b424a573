"""pytest plugin: the test suite with xent_fast's AVX-512 kernels run on an emulated CPU.

On a machine without AVX-512 the suite tests the AVX2 and baseline paths only, and the AVX-512
kernels, which every Intel Xeon and AMD Zen 4/5 server runs, would ship untested.  This plugin
runs them on Bochs's emulated CPU (bochscpu-python), which has AVX-512:

    pip install -e ".[test,emulate]"
    python -m pytest -p tests.emulated.avx512 tests/test_underflow.py tests/test_grad.py ...

from the checkout's root (docs/DESIGN.md, "Testing the AVX-512 path without AVX-512").

How: before xent_fast is imported, the dispatch is resolved inside the emulator, so it identifies
the emulated CPU (an Intel core with AVX-512) and picks the avx512 path and that CPU's tuning row;
then the avx512 entries of the dispatch table are pointed at callbacks that run the real AVX-512
functions in the emulator, on the process's own arrays.  Everything else (Python, NumPy, the
dispatch itself) runs natively.

Limits:
- one thread: OMP_THREAD_LIMIT=1 (the kernels' OpenMP teams have one thread);
- the emulator is slow, so the tests of very large arrays and the Dask cluster tests are skipped,
  with that reason; tests that start a subprocess run it natively, without AVX-512;
- an error inside the emulator fails the test that made the call;
- where Bochs's CPU differs from the hardware (_EMULATOR_DEVIATIONS), the test may fail: xfail.
"""
import ctypes
import glob
import importlib.util
import os
import sys

import pytest

# Both must be in force before the dynamic linker and libgomp start (bochs.py says why).
if os.environ.get("LD_BIND_NOW") != "1" or os.environ.get("OMP_THREAD_LIMIT") != "1":
    os.environ["LD_BIND_NOW"] = "1"
    os.environ["OMP_THREAD_LIMIT"] = "1"
    os.execv(sys.executable, sys.orig_argv)

from .bochs import Emulator, loaded_regions, replace_words  # noqa: E402

if "xent_fast" in sys.modules:
    raise RuntimeError("load the plugin before xent_fast is imported: python -m pytest -p "
                       "tests.emulated.avx512 ...")

_SKIP = {  # what the emulator cannot serve: too large, other processes, the host's own CPU
    "test_large.py": "arrays too large to emulate in reasonable time",
    "test_dask.py": "the Dask workers' kernels would run in other processes and threads",
    "test_vocab_parallel.py::test_dask": "the Dask workers' kernels would run in other processes",
    "test_dispatch.py::test_isa_reports_a_known_path": "it compares with the host's /proc/cpuinfo",
    "test_tuning.py::test_cpu_identification_matches_proc_cpuinfo":
        "it compares with the host's /proc/cpuinfo",
}
_EMULATOR_DEVIATIONS = {  # where Bochs's CPU is not the hardware's
    "test_large_model.py::test_half_gradient_into_float32_and_in_place":
        "Bochs's vcvtps2ph rounds float32 values halfway between two float16 subnormals away from "
        "zero, not to even as the hardware (and NumPy) do: 0x381da000 gives 0x277, not 0x276",
}

_INT, _PTR, _I64 = ctypes.c_int, ctypes.c_void_p, ctypes.c_int64
# the dispatch table's avx512 entries: xent_<family>_<f32|f64>_avx512, and their C signatures
_FAMILIES = {
    "cross_entropy": (_INT, _PTR, _PTR),
    "shard_partials": (_INT, _PTR, _PTR),
    "shard_grad": (_INT, _PTR, _PTR),
    "binary": (_INT, _PTR, _PTR),
    "softmax_rows": (_INT, _INT, _INT, _PTR, _PTR, _PTR, _PTR, _PTR, _PTR, _INT),
    "softmax_rows_lse": (_INT, _INT, _INT, _PTR, _PTR, _PTR, _PTR, _PTR, _PTR, _INT),
    "exp": (None, _I64, _PTR, _PTR),
}
_XENT_BAD_ARGUMENT = 3

emulator = Emulator()
errors = []          # what went wrong inside the emulator during the current test
_callbacks = []      # the ctypes callbacks must outlive the table entries that point at them


def _kernels_library():
    package = os.path.dirname(importlib.util.find_spec("xent_fast").origin)
    paths = glob.glob(os.path.join(package, "_kernels*.so"))
    if len(paths) != 1:
        raise RuntimeError("expected one compiled xent_fast._kernels in %s, found %s"
                           % (package, paths))
    return paths[0], ctypes.CDLL(paths[0])   # the same object Python's import will load


def _address(lib, name):
    return ctypes.cast(getattr(lib, name), ctypes.c_void_p).value


def _emulating(fn, signature):
    restype, *argtypes = signature

    def run(*args):
        try:
            result = emulator.call(fn, *[a or 0 for a in args])
        except Exception as e:  # noqa: BLE001 - reported by the test that made the call
            errors.append(e)
            return None if restype is None else _XENT_BAD_ARGUMENT
        return None if restype is None else ctypes.c_int(result & 0xFFFFFFFF).value

    callback = ctypes.CFUNCTYPE(restype, *argtypes)(run)
    _callbacks.append(callback)
    return ctypes.cast(callback, ctypes.c_void_p).value


def _patch_dispatch_table(path, lib):
    """Point every slot of the library's data that holds an avx512 kernel at its callback."""
    replace = {}
    for family, signature in _FAMILIES.items():
        for dtype in ("f32", "f64"):
            fn = _address(lib, "xent_%s_%s_avx512" % (family, dtype))
            replace[fn] = _emulating(fn, signature)
    found = replace_words(os.path.realpath(path), replace)
    if found != set(replace):
        raise RuntimeError("found %d of the %d avx512 entries of the dispatch table"
                           % (len(found), len(replace)))


def _allocator_on_host(path):
    """The kernels' and libgomp's malloc, calloc, realloc and free run natively (bochs.py)."""
    libc = ctypes.CDLL(None)
    signatures = {"malloc": (_PTR, ctypes.c_size_t), "free": (None, _PTR),
                  "calloc": (_PTR, ctypes.c_size_t, ctypes.c_size_t),
                  "realloc": (_PTR, _PTR, ctypes.c_size_t)}
    functions = {}
    for name, (restype, *argtypes) in signatures.items():
        fn = getattr(libc, name)
        fn.restype, fn.argtypes = restype, argtypes
        functions[_address(libc, name)] = fn
    if emulator.route_to_host(os.path.realpath(path), functions) < 2:
        raise RuntimeError("did not find the kernels' malloc and free import slots")
    for library in {path for _, _, _, path in loaded_regions() if "/libgomp" in path}:
        emulator.route_to_host(library, functions)


def _install():
    path, lib = _kernels_library()
    _allocator_on_host(path)
    isa = ctypes.c_char_p(emulator.call(_address(lib, "xent_isa"))).value.decode()
    if isa != "avx512":
        raise RuntimeError("the emulated CPU resolved to the %s path, not avx512" % isa)
    _patch_dispatch_table(path, lib)


_install()


def pytest_report_header(config):
    import xent_fast
    cpu = xent_fast.show_config("dicts")["cpu"]
    return "xent_fast: the avx512 kernels run on an emulated CPU: %s (family %s, model %s)" % (
        cpu["brand"], cpu["family"], cpu["model"])


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = item.nodeid.split("/")[-1]
        for key, reason in _SKIP.items():
            if name.startswith(key):
                item.add_marker(pytest.mark.skip(reason="emulated AVX-512: " + reason))
        for key, reason in _EMULATOR_DEVIATIONS.items():
            if name.startswith(key):
                item.add_marker(pytest.mark.xfail(reason="emulated AVX-512: " + reason,
                                                  strict=False))


@pytest.fixture(autouse=True)
def _emulator_errors():
    errors.clear()
    yield
    if errors:
        pytest.fail("inside the emulator: %r" % errors[0], pytrace=False)


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line("emulated AVX-512 kernel calls: %d; system calls carried out on "
                                "the host: %s" % (emulator.calls, emulator.syscalls or "none"))
