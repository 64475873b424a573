/* The kernels for any CPU of the architecture (SSE2 on x86-64). */
#define XENT_ISA baseline
#include "kernels.inc"
