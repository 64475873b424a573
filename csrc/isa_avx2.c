/* The kernels compiled for AVX2 + FMA (+ F16C for float16 storage); setup.py compiles this file with
 * -mavx2 -mfma -mf16c, and dispatch.c calls it only where the CPU has all three. */
#if defined(__x86_64__) || defined(_M_X64)
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "isa_avx2.c must be compiled with -mavx2 -mfma -mf16c (see setup.py)"
#endif
#define XENT_VBYTES 32
#define XENT_ISA avx2
#include "kernels.inc"
#endif
