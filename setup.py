"""Builds xent_fast._kernels: the Cython binding plus the C kernels of csrc/.

OpenMP flags are chosen per compiler after a trial compile; a compiler without OpenMP still builds
the extension, which then runs serially.  Never -march=native or -ffast-math: the wheel must run
on any CPU of its architecture and keep IEEE inf/NaN semantics.  The wider instruction sets are
compiled file by file: csrc/isa_avx2.c and csrc/isa_avx512.c get their own -m flags (GCC and Clang
then both define __AVX2__ / __AVX512F__ there, which the kernels test), and csrc/dispatch.c calls
them only where the CPU has those instructions (docs/DESIGN.md, "Dispatch").

Supported compilers: GCC and Clang (the kernels use GNU C vector extensions).  MSVC is not
supported; on Windows use clang-cl's GNU-compatible driver or WSL.
"""
import os
import sys
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

KERNEL_SOURCES = [
    "csrc/dispatch.c",
    "csrc/cpu.c",
    "csrc/tuning.c",
    "csrc/isa_baseline.c",
    "csrc/shard.c",
]
# The x86-64 instruction-set variants, each compiled with the flags of its ISA.  F16C comes with
# every AVX2 CPU and converts float16 storage; dispatch.c checks each flag before calling a variant.
ISA_SOURCES = {
    "csrc/isa_avx2.c": ["-mavx2", "-mfma", "-mf16c"],
    "csrc/isa_avx512.c": ["-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx2", "-mfma",
                          "-mf16c", "-mpopcnt"],
}

OPENMP_FLAGS = {
    # compiler type: candidate (compile flags, link flags), the first that works is used
    "unix": [
        (["-fopenmp"], ["-fopenmp"]),
        # Apple clang: LLVM's libomp (`brew install libomp`, its include/ and lib/ folders given
        # in CPPFLAGS and LDFLAGS); see [tool.cibuildwheel.macos] in pyproject.toml
        (["-Xpreprocessor", "-fopenmp"], ["-lomp"]),
    ],
}
OPTIMISE_FLAGS = ["-O3", "-std=gnu99", "-fno-math-errno"]


def compiler_has_openmp(compiler, flags):
    """Try to compile and link a tiny OpenMP program with these flags."""
    source = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "omp_probe.c")
        with open(path, "w") as f:
            f.write(source)
        try:
            objects = compiler.compile([path], output_dir=tmp, extra_postargs=flags[0])
            # distutils links executables without $LDFLAGS; the extension itself gets them
            link_flags = flags[1] + os.environ.get("LDFLAGS", "").split()
            compiler.link_executable(objects, "omp_probe", output_dir=tmp, extra_postargs=link_flags)
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    def build_extensions(self):
        kind = self.compiler.compiler_type
        if kind != "unix":
            sys.exit(f"xent_fast: the {kind} compiler is not supported: the kernels need GCC or "
                     "Clang (GNU C vector extensions); on Windows use WSL")
        compile_args = list(OPTIMISE_FLAGS)
        link_args = []
        openmp = None
        if not os.environ.get("XENT_FAST_NO_OPENMP"):
            for flags in OPENMP_FLAGS.get(kind, []):
                if compiler_has_openmp(self.compiler, flags):
                    openmp = flags
                    break
        if openmp:
            compile_args += openmp[0]
            link_args += openmp[1]
        else:
            print("xent_fast: building without OpenMP; kernels will run on one thread",
                  file=sys.stderr)
        extra = os.environ.get("XENT_FAST_EXTRA_CFLAGS", "").split()
        for ext in self.extensions:
            ext.extra_compile_args = compile_args + extra
            ext.extra_link_args = link_args + os.environ.get("XENT_FAST_EXTRA_LDFLAGS", "").split()
            if is_x86_64():
                ext.extra_objects = self.compile_isa_variants(ext)
        super().build_extensions()

    def compile_isa_variants(self, ext):
        """Each ISA variant compiled alone with its -m flags; returns the object files."""
        objects = []
        for source, isa_flags in ISA_SOURCES.items():
            objects += self.compiler.compile(
                [source], output_dir=self.build_temp, include_dirs=ext.include_dirs,
                macros=ext.define_macros, extra_postargs=ext.extra_compile_args + isa_flags,
                depends=ext.depends)
        return objects


def is_x86_64():
    """True when the extension is built for x86-64 (cross builds name their target in _PYTHON_HOST_PLATFORM)."""
    import platform
    import sysconfig

    target = os.environ.get("_PYTHON_HOST_PLATFORM") or sysconfig.get_platform()
    machine = target.rsplit("-", 1)[-1] if "-" in target else platform.machine()
    return machine.lower() in ("x86_64", "amd64")


extension = Extension(
    "xent_fast._kernels",
    sources=["xent_fast/_kernels.pyx"] + KERNEL_SOURCES,
    include_dirs=["csrc", np.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    depends=["csrc/xent.h", "csrc/xent_math.h", "csrc/kernels.inc", "csrc/row_ops.inc",
             "csrc/cross_entropy.inc", "csrc/binary.inc", "csrc/kernels_typed.inc",
             "csrc/tiles.inc", "csrc/staging.inc", "csrc/softmax.inc", "csrc/shard.inc",
             "csrc/half.h", "csrc/exp_sum.h"] + list(ISA_SOURCES),
)

setup(
    ext_modules=cythonize([extension], compiler_directives={"language_level": 3}),
    cmdclass={"build_ext": BuildExt},
)
