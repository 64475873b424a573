/* The kernels compiled for AVX-512 (F, DQ, BW, VL); dispatch.c calls them only where the CPU and the
 * OS support them. */
#if defined(__x86_64__) || defined(_M_X64)
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,popcnt"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,popcnt")
#endif
#define XENT_VBYTES 64
#define XENT_ISA avx512
#include "kernels.inc"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
