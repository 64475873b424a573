"""Builds xent_fast._kernels: the Cython binding plus the C kernels of csrc/.

OpenMP flags are chosen per compiler after a trial compile; a compiler without OpenMP still builds
the extension, which then runs serially.  Never -march=native or -ffast-math: the wheel must run
on any CPU of its architecture (wider instruction sets are picked at run time, csrc/dispatch.c)
and keep IEEE inf/NaN semantics.
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
    "csrc/isa_avx2.c",
    "csrc/isa_avx512.c",
]

OPENMP_FLAGS = {
    # compiler type: candidate (compile flags, link flags), the first that works is used
    "msvc": [(["/openmp"], [])],
    "unix": [
        (["-fopenmp"], ["-fopenmp"]),
        # Apple clang: LLVM's libomp (`brew install libomp`, its include/ and lib/ folders given
        # in CPPFLAGS and LDFLAGS); see [tool.cibuildwheel.macos] in pyproject.toml
        (["-Xpreprocessor", "-fopenmp"], ["-lomp"]),
    ],
}
OPTIMISE_FLAGS = {
    "msvc": ["/O2"],
    "unix": ["-O3", "-std=gnu99", "-fno-math-errno"],
}


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
        compile_args = list(OPTIMISE_FLAGS.get(kind, []))
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
        super().build_extensions()


extension = Extension(
    "xent_fast._kernels",
    sources=["xent_fast/_kernels.pyx"] + KERNEL_SOURCES,
    include_dirs=["csrc", np.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    depends=["csrc/xent.h", "csrc/xent_math.h", "csrc/kernels.inc", "csrc/row_ops.inc",
             "csrc/cross_entropy.inc", "csrc/binary.inc", "csrc/kernels_typed.inc",
             "csrc/tiles.inc"],
)

setup(
    ext_modules=cythonize([extension], compiler_directives={"language_level": 3}),
    cmdclass={"build_ext": BuildExt},
)
