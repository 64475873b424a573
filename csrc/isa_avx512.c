/* The kernels compiled for AVX-512 (F, DQ, BW, VL); setup.py compiles this file with those -m flags
 * (and AVX2, FMA, F16C, POPCNT), and dispatch.c calls it only where the CPU and the OS support them. */
#if defined(__x86_64__) || defined(_M_X64)
#if !defined(__AVX512F__) || !defined(__AVX512DQ__) || !defined(__AVX512BW__) || \
    !defined(__AVX512VL__) || !defined(__FMA__) || !defined(__F16C__) || !defined(__POPCNT__)
#error "isa_avx512.c must be compiled with -mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma -mf16c -mpopcnt (see setup.py)"
#endif
#define XENT_VBYTES 64
#define XENT_ISA avx512
#include "kernels.inc"
#endif
