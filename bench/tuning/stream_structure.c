/* stream_structure.c - how much of the copy roofline a forward+gradient's *shape of memory
 * traffic* allows, with an exp per element in each pass or no arithmetic at all.
 *
 * A long row's forward+gradient with out= reads the row (its max and exp-sum) and then writes its
 * gradient from the row, read again from cache, with streamed stores (docs/DESIGN.md, "Stores
 * past the caches").  This program times loops over the same bytes that move them in the same
 * order, with (work = 1) or without (0) an exp per element in each pass, as the kernel has:
 *
 *   memcpy       glibc's copy (NumPy's copy roofline is this)
 *   fused        one pass: load a vector, store it streamed
 *   two_phase    per row: read it (max), then stream-store it from cache   <- the kernel's order
 *   next_in_g    two_phase, the next row prefetched during the store pass
 *   pipelined    per row: read row i + 1 in the loop that stream-stores row i
 *
 * Each thread takes its own contiguous half of the rows (OpenMP).  Build and run (x86-64 with
 * AVX-512F):
 *
 *   gcc -O2 -mavx512f -fopenmp bench/tuning/stream_structure.c -o /tmp/stream_structure
 *   OMP_NUM_THREADS=2 /tmp/stream_structure [classes=32000] [MiB=256] [work=0|1] [repeats=7]
 *
 * It prints the best time of each loop and its share of memcpy's bandwidth. */
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MEMCPY, FUSED, TWO_PHASE, NEXT_IN_G, PIPELINED, N_LOOPS };
static const char *const loop_names[N_LOOPS] = {"memcpy", "fused", "two_phase", "next_in_g",
                                                "pipelined"};

/* With work, exp(v - 1) as the kernels' exps compute it (a ln2 reduction, a degree-5
 * polynomial, vscalef: the same count and kind of vector operations); else v. */
static inline __m512 arithmetic(__m512 v, int work)
{
    if (!work) return v;
    const __m512 z = _mm512_sub_ps(v, _mm512_set1_ps(1.0f));
    const __mmask16 live = _mm512_cmp_ps_mask(z, _mm512_set1_ps(-87.0f), _CMP_NLT_UQ);
    const __m512 k = _mm512_sub_ps(_mm512_fmadd_ps(z, _mm512_set1_ps(1.44269504f), _mm512_set1_ps(12582912.0f)),
                                   _mm512_set1_ps(12582912.0f));
    const __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693147182f), z);
    __m512 p = _mm512_fmadd_ps(r, _mm512_set1_ps(8.3e-3f), _mm512_set1_ps(4.19e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.1666764f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.4999915f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.9999997f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_maskz_scalef_ps(live, p, k);
}

/* One vector of a read pass into the running max m and, with work, its exp into sum. */
static inline void read_vector(const float *x, int work, __m512 *m, __m512 *sum)
{
    const __m512 v = _mm512_load_ps(x);
    *m = _mm512_max_ps(*m, v);
    if (work) *sum = _mm512_add_ps(*sum, arithmetic(v, work));
}

/* One vector of a store pass: f(x) stored streamed at g. */
static inline void store_vector(float *g, const float *x, int work)
{
    _mm512_stream_ps(g, arithmetic(_mm512_load_ps(x), work));
}

/* rows rows of n floats from x to g, in the order of loop; returns what keeps the reads alive. */
static float run(int loop, float *g, const float *x, int64_t rows, int64_t n, int work)
{
    __m512 sum = _mm512_setzero_ps(), m = sum;
    if (loop == MEMCPY) {
        memcpy(g, x, (size_t)(rows * n) * sizeof(float));
    } else if (loop == FUSED) {
        for (int64_t j = 0; j < rows * n; j += 16) {
            const __m512 v = _mm512_load_ps(x + j);
            m = _mm512_max_ps(m, v);
            _mm512_stream_ps(g + j, arithmetic(v, work));
        }
    } else if (loop == PIPELINED) {
        for (int64_t j = 0; j < n; j += 16) read_vector(x + j, work, &m, &sum);
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * n, *xn = xr + n;
            for (int64_t j = 0; j < n; j += 16) {
                if (r + 1 < rows) read_vector(xn + j, work, &m, &sum);
                store_vector(g + r * n + j, xr + j, work);
            }
        }
    } else {
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * n;
            /* the next row's line for each of this row's, with NEXT_IN_G */
            const char *next = loop == NEXT_IN_G && r + 1 < rows ? (const char *)(xr + n) : NULL;
            for (int64_t j = 0; j < n; j += 16) read_vector(xr + j, work, &m, &sum);
            for (int64_t j = 0; j < n; j += 16) {
                if (next) _mm_prefetch(next + 4 * j, _MM_HINT_T0);
                store_vector(g + r * n + j, xr + j, work);
            }
        }
    }
    _mm_sfence();
    return _mm512_reduce_add_ps(sum) + _mm512_reduce_max_ps(m);
}

int main(int argc, char **argv)
{
    const int64_t n = (argc > 1 ? atol(argv[1]) : 32000) / 16 * 16; /* whole vectors */
    const int64_t mib = argc > 2 ? atol(argv[2]) : 256;
    const int work = argc > 3 ? atoi(argv[3]) : 0;
    const int repeats = argc > 4 ? atoi(argv[4]) : 7;
    const int threads = omp_get_max_threads();
    const int64_t rows_each = (mib << 20) / (int64_t)sizeof(float) / n / threads;
    const int64_t total = rows_each * threads * n;
    if (n < 16 || rows_each < 2 || repeats < 1) {
        fprintf(stderr, "usage: %s [classes>=16] [MiB] [work=0|1] [repeats]\n", argv[0]);
        return 2;
    }
    float *x = aligned_alloc(64, (size_t)total * sizeof(float));
    float *g = aligned_alloc(64, (size_t)total * sizeof(float));
    if (!x || !g) return 1;
    for (int64_t j = 0; j < total; j++) x[j] = (float)(j % 97) * 0.01f;
    memset(g, 0, (size_t)total * sizeof(float));
    double best[N_LOOPS];
    volatile float sink = 0;
    for (int l = 0; l < N_LOOPS; l++) best[l] = 1e30;
    for (int rep = 0; rep < repeats; rep++)
        for (int l = 0; l < N_LOOPS; l++) { /* interleaved: the host's noise falls on every loop */
            const double t0 = omp_get_wtime();
#pragma omp parallel
            {
                const int64_t at = omp_get_thread_num() * rows_each * n;
                const float s = run(l, g + at, x + at, rows_each, n, work);
#pragma omp atomic
                sink += s;
            }
            const double t = omp_get_wtime() - t0;
            if (t < best[l]) best[l] = t;
        }
    printf("%d threads, %lld classes, %lld MiB read and written, %s\n",
           threads, (long long)n, (long long)(total * 4 >> 20), work ? "an exp per element in each pass" : "no arithmetic");
    for (int l = 0; l < N_LOOPS; l++)
        printf("%-10s %8.2f ms  %5.1f GB/s  %4.0f%% of memcpy\n", loop_names[l], best[l] * 1e3,
               2.0 * (double)total * 4 / best[l] / 1e9, 100.0 * best[MEMCPY] / best[l]);
    free(x);
    free(g);
    return sink == 12345.f; /* never: keeps the sums */
}
