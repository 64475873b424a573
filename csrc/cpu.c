/* cpu.c - what the CPU says about itself (cpuid), for the dispatch and the tuning table.
 *
 * dispatch.c reads it once at first use.  Off x86-64 every field is a stub (vendor "unknown", no
 * features), so the baseline path and the table's default row are chosen there.
 */
#include <string.h>

#include "xent.h"

#if defined(__x86_64__) || defined(_M_X64)
#define XENT_CPU_X86 1
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#include <immintrin.h>
#else
#include <cpuid.h>
#endif
#endif

static const char *const feature_names[] = {
    "sse2", "popcnt", "avx", "fma", "f16c", "avx2", "avx512f", "avx512dq", "avx512bw", "avx512vl",
};

const char *xent_cpu_feature_name(int bit)
{
    const int n = (int)(sizeof feature_names / sizeof feature_names[0]);
    return bit >= 0 && bit < n ? feature_names[bit] : NULL;
}

#ifdef XENT_CPU_X86
/* cpuid leaf/subleaf into r[0..3] = eax, ebx, ecx, edx; zeros for a leaf past the maximum. */
static void cpuid(unsigned leaf, unsigned sub, unsigned r[4])
{
#if defined(_MSC_VER) && !defined(__clang__)
    int v[4];
    __cpuidex(v, (int)leaf, (int)sub);
    for (int i = 0; i < 4; i++) r[i] = (unsigned)v[i];
#else
    if (!__get_cpuid_count(leaf, sub, &r[0], &r[1], &r[2], &r[3])) r[0] = r[1] = r[2] = r[3] = 0;
#endif
}

/* The register state the OS saves on a context switch (XCR0): a vector unit the OS does not save
 * must not be used even where cpuid lists it. */
static unsigned long long xcr0(void)
{
#if defined(_MSC_VER) && !defined(__clang__)
    return _xgetbv(0);
#else
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
#endif
}

void xent_cpu_identify(xent_cpu_info *cpu)
{
    unsigned r[4];
    cpuid(0, 0, r);
    const unsigned max_leaf = r[0];
    memcpy(cpu->vendor, &r[1], 4); /* the vendor string is ebx, edx, ecx */
    memcpy(cpu->vendor + 4, &r[3], 4);
    memcpy(cpu->vendor + 8, &r[2], 4);
    cpu->vendor[12] = '\0';

    unsigned leaf1[4] = {0, 0, 0, 0}, leaf7[4] = {0, 0, 0, 0};
    if (max_leaf >= 1) cpuid(1, 0, leaf1);
    if (max_leaf >= 7) cpuid(7, 0, leaf7);
    /* Family and model as Intel's and AMD's manuals define the displayed values: the extended
     * family is added for base family 15, the extended model prepended for families 6 and 15. */
    const unsigned base_family = (leaf1[0] >> 8) & 0xF, base_model = (leaf1[0] >> 4) & 0xF;
    cpu->family = (int)(base_family == 0xF ? base_family + ((leaf1[0] >> 20) & 0xFF) : base_family);
    cpu->model = (int)(base_family == 0x6 || base_family == 0xF
                           ? (((leaf1[0] >> 16) & 0xF) << 4) | base_model
                           : base_model);
    cpu->stepping = (int)(leaf1[0] & 0xF);

    cpuid(0x80000000u, 0, r);
    cpu->brand[0] = '\0';
    if (r[0] >= 0x80000004u) {
        char raw[49];
        for (unsigned i = 0; i < 3; i++) {
            cpuid(0x80000002u + i, 0, r);
            memcpy(raw + 16 * i, r, 16);
        }
        raw[48] = '\0';
        const char *s = raw;
        while (*s == ' ') s++;
        size_t len = strlen(s);
        while (len > 0 && s[len - 1] == ' ') len--;
        memcpy(cpu->brand, s, len);
        cpu->brand[len] = '\0';
    }

    const unsigned ecx1 = leaf1[2], edx1 = leaf1[3], ebx7 = leaf7[1];
    /* AVX needs XMM and YMM state saved (XCR0 bits 1, 2); AVX-512 also opmask and ZMM (5, 6, 7). */
    const int osxsave = (ecx1 >> 27) & 1;
    const unsigned long long xcr = osxsave ? xcr0() : 0;
    const int os_avx = (xcr & 0x6) == 0x6, os_avx512 = os_avx && (xcr & 0xE0) == 0xE0;
    unsigned f = 0;
    if ((edx1 >> 26) & 1) f |= 1u << XENT_CPU_SSE2;
    if ((ecx1 >> 23) & 1) f |= 1u << XENT_CPU_POPCNT;
    if (os_avx && ((ecx1 >> 28) & 1)) {
        f |= 1u << XENT_CPU_AVX;
        if ((ecx1 >> 12) & 1) f |= 1u << XENT_CPU_FMA;
        if ((ecx1 >> 29) & 1) f |= 1u << XENT_CPU_F16C;
        if ((ebx7 >> 5) & 1) f |= 1u << XENT_CPU_AVX2;
    }
    if (os_avx512) {
        if ((ebx7 >> 16) & 1) f |= 1u << XENT_CPU_AVX512F;
        if ((ebx7 >> 17) & 1) f |= 1u << XENT_CPU_AVX512DQ;
        if ((ebx7 >> 30) & 1) f |= 1u << XENT_CPU_AVX512BW;
        if ((ebx7 >> 31) & 1) f |= 1u << XENT_CPU_AVX512VL;
    }
    cpu->features = f;
}
#else
void xent_cpu_identify(xent_cpu_info *cpu)
{
    strcpy(cpu->vendor, "unknown");
    cpu->brand[0] = '\0';
    cpu->family = cpu->model = cpu->stepping = -1;
    cpu->features = 0;
}
#endif
