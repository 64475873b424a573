/* The kernels compiled for AVX2 + FMA; dispatch.c calls them only where the CPU has both. */
#if defined(__x86_64__) || defined(_M_X64)
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx2,fma")
#endif
#define XENT_VBYTES 32
#define XENT_ISA avx2
#include "kernels.inc"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
