/* tuning.c - the cross-entropy kernel's switches per CPU: which path to run, where the across-rows
 * loop hands over to the row loop, how long a row may be and still be prefetched.
 *
 * The best switch points move with the microarchitecture (vector units, cache sizes, how a partial
 * vector is handled), so they come from this table, keyed by what cpuid says (cpu.c), and never
 * from timings taken at run time: one machine always picks the same row and gives the same bits.
 * Each row names the CPU it was measured on and its CSV under bench/tuning/; `python -m bench
 * tune` measures a new machine and prints the row to add.  The first matching row wins, so a
 * CPU's rows come before the default rows at the end, which any CPU matches.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xent.h"

#define AMD "AuthenticAMD"
#define INTEL "GenuineIntel"
#define ANY_VENDOR NULL, -1, 0, 0x7FFFFFFF
#define ANY_ISA NULL

/* Values: prefer_isa, across_f32, across_grad_f32, across_f64, across_grad_f64,
 * prefetch_row_max_bytes.  Zen 4's are also the defaults: the most measured values (AVX-512 tiles
 * of 16 floats or 8 doubles, AVX2 and SSE2 of 8 and 4 floats). */
#define ZEN4_AVX512 NULL, 80, 37, 20, 20, 64 * 1024
#define ZEN4_NARROW NULL, 40, 16, 40, 16, 64 * 1024

static const xent_tuning table[] = {
    /* AMD Zen 4 (EPYC Genoa, family 25 model 0x10-0x1F): measured on model 0x11 while the kernels
     * were written; the values were csrc/kernels.inc's constants up to 44377ae (no CSV kept). */
    {"amd-zen4-avx512", AMD, 25, 0x10, 0x1F, "avx512", ZEN4_AVX512,
     "csrc/kernels.inc at 44377ae (Zen 4)"},
    {"amd-zen4-avx2", AMD, 25, 0x10, 0x1F, "avx2", ZEN4_NARROW,
     "csrc/kernels.inc at 44377ae (Zen 4)"},
    /* AMD Zen 3 (EPYC Milan, family 25 model 0x00-0x0F, no AVX-512): measured on model 0x01 with
     * `python -m bench tune --threads 1` (one thread: on a shared 2-core machine two would wait on
     * each other whenever another process runs), on an idle machine, after the exp-sum counted
     * exp(0) terms only where the max lies and long rows with a gradient streamed (-first.csv:
     * before AVX2 tiles became register transposes). */
    {"amd-zen3-avx2", AMD, 25, 0x00, 0x0F, "avx2", NULL, 80, 80, 48, 37, 16000,
     "bench/tuning/amd-epyc-f25-m01-avx2.csv"},
    /* Intel Xeon, Ice Lake-SP (family 6 model 0x6A; 0x6C is Ice Lake-D, the same cores): measured
     * on a 2-core cloud VM ("Intel(R) Xeon(R) Processor @ 2.80GHz", model 0x6A stepping 6, AVX-512
     * without BF16/FP16) with `python -m bench tune --threads 1 --rounds 11` at c5490e9, idle.
     * AVX-512 runs ahead of AVX2 at every class count measured there, so it stays the path. */
    {"intel-icx-avx512", INTEL, 6, 0x6A, 0x6C, "avx512", NULL, 40, 24, 24, 16, 16000,
     "bench/tuning/intel-xeon-f6-m6a-avx512.csv"},
    {"intel-icx-avx2", INTEL, 6, 0x6A, 0x6C, "avx2", NULL, 48, 40, 32, 24, 16000,
     "bench/tuning/intel-xeon-f6-m6a-avx2.csv"},
    /* Intel Xeon, Sapphire Rapids (family 6 model 0x8F) and Emerald Rapids (0xCF): a sweep of the
     * paths as dispatched, so it ranks the paths (AVX-512 ahead of AVX2 at most class counts; its
     * losses at counts that are no multiple of 16 were underflow assists in the row loop's partial
     * vectors, since removed: docs/DESIGN.md, "Underflow costs") but holds no across-rows/row-loop
     * pair at one class count: the switch points stay Zen 4's until `python -m bench tune` runs
     * there. */
    {"intel-spr-avx512", INTEL, 6, 0x8F, 0x8F, "avx512", ZEN4_AVX512,
     "bench/tuning/intel-xeon-spr-sweep.csv"},
    {"intel-emr-avx512", INTEL, 6, 0xCF, 0xCF, "avx512", ZEN4_AVX512,
     "bench/tuning/intel-xeon-spr-sweep.csv"},
    /* Any other CPU: Zen 4's values per vector width. */
    {"default-avx512", ANY_VENDOR, "avx512", ZEN4_AVX512, "the amd-zen4-avx512 row"},
    {"default", ANY_VENDOR, ANY_ISA, ZEN4_NARROW, "the amd-zen4-avx2 row"},
};

#define N_ROWS ((int)(sizeof table / sizeof table[0]))

const xent_tuning *xent_tuning_row(int i) { return i >= 0 && i < N_ROWS ? &table[i] : NULL; }

static int matches(const xent_tuning *t, const xent_cpu_info *cpu, const char *isa)
{
    if (t->isa && (!isa || strcmp(t->isa, isa) != 0)) return 0;
    if (!t->vendor) return 1;
    return cpu && strcmp(t->vendor, cpu->vendor) == 0 &&
           (t->family < 0 || t->family == cpu->family) && cpu->model >= t->model_lo &&
           cpu->model <= t->model_hi;
}

const xent_tuning *xent_tuning_lookup(const xent_cpu_info *cpu, const char *isa)
{
    for (int i = 0; i < N_ROWS; i++)
        if (matches(&table[i], cpu, isa)) return &table[i];
    return &table[N_ROWS - 1];
}

/* The integer fields an override may set. */
static int64_t *field(xent_tuning *t, const char *key, size_t len)
{
    static const char *const names[] = {"across_f32", "across_grad_f32", "across_f64",
                                        "across_grad_f64", "prefetch_row_max_bytes"};
    int64_t *const fields[] = {&t->across_f32, &t->across_grad_f32, &t->across_f64,
                               &t->across_grad_f64, &t->prefetch_row_max_bytes};
    for (int i = 0; i < 5; i++)
        if (strlen(names[i]) == len && strncmp(names[i], key, len) == 0) return fields[i];
    return NULL;
}

#define KEYS "row, across_f32, across_grad_f32, across_f64, across_grad_f64, prefetch_row_max_bytes"

/* One pass over "key=value,...": pass 0 applies row=, pass 1 the numbers, so that a row named
 * anywhere in the list is the base the numbers change. */
static const char *apply(xent_tuning *t, const char *spec, int pass, char *err, int err_len)
{
    const char *s = spec;
    while (*s) {
        const char *end = strchr(s, ','), *eq;
        size_t len = end ? (size_t)(end - s) : strlen(s);
        while (len > 0 && *s == ' ') s++, len--;
        while (len > 0 && s[len - 1] == ' ') len--;
        eq = memchr(s, '=', len);
        if (len == 0) {
            if (!end) break;
            s = end + 1;
            continue;
        }
        if (!eq) {
            snprintf(err, (size_t)err_len, "XENT_FAST_TUNE: '%.*s' is not key=value (keys: " KEYS ")",
                     (int)len, s);
            return err;
        }
        size_t klen = (size_t)(eq - s), vlen = len - klen - 1;
        const char *v = eq + 1;
        while (klen > 0 && s[klen - 1] == ' ') klen--;
        while (vlen > 0 && *v == ' ') v++, vlen--;
        if (klen == 3 && strncmp(s, "row", 3) == 0) {
            if (pass == 0) {
                const xent_tuning *row = NULL;
                for (int i = 0; i < N_ROWS && !row; i++)
                    if (strlen(table[i].name) == vlen && strncmp(table[i].name, v, vlen) == 0)
                        row = &table[i];
                if (!row) {
                    int w = snprintf(err, (size_t)err_len,
                                     "XENT_FAST_TUNE: no tuning row '%.*s'; rows:", (int)vlen, v);
                    for (int i = 0; i < N_ROWS && w > 0 && w < err_len; i++)
                        w += snprintf(err + w, (size_t)(err_len - w), " %s", table[i].name);
                    return err;
                }
                *t = *row;
            }
        } else {
            int64_t *f = field(t, s, klen);
            char digits[32];
            if (!f) {
                snprintf(err, (size_t)err_len, "XENT_FAST_TUNE: unknown key '%.*s' (keys: " KEYS ")",
                         (int)klen, s);
                return err;
            }
            /* A count of classes or bytes: decimal digits only, few enough for any int64. */
            int ok = vlen > 0 && vlen < 16;
            for (size_t i = 0; ok && i < vlen; i++) ok = v[i] >= '0' && v[i] <= '9';
            if (!ok) {
                snprintf(err, (size_t)err_len,
                         "XENT_FAST_TUNE: %.*s must be a whole number (0 or more, at most 15 digits), "
                         "got '%.*s'",
                         (int)klen, s, (int)vlen, v);
                return err;
            }
            memcpy(digits, v, vlen);
            digits[vlen] = '\0';
            if (pass == 1) *f = (int64_t)strtoll(digits, NULL, 10);
        }
        if (!end) break;
        s = end + 1;
    }
    return NULL;
}

const char *xent_tuning_override(xent_tuning *t, const char *spec, char *err, int err_len)
{
    xent_tuning work = *t;
    for (int pass = 0; pass < 2; pass++)
        if (apply(&work, spec, pass, err, err_len)) return err;
    *t = work;
    return NULL;
}
