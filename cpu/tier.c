/*
 * tier.c - which CPU tier a qmv_qmv() call runs on: what this build compiled (CMake defines
 * QMVI_HAVE_AVX2 / QMVI_HAVE_AVX512 when the compiler accepts the ISA flags for those files),
 * what the processor and the operating system support (CPUID through
 * __builtin_cpu_supports, which also checks that the OS saves the wider registers), the
 * process-wide QMV_CPU_TIERS environment variable and the per-call exec->cpu_tiers mask.
 * Every tier returns the same bits, so the choice only ever changes speed.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "qmv_tiers.h"

#define QMVI_ALL_TIERS (QMV_CPU_TIER_SCALAR | QMV_CPU_TIER_AVX2 | QMV_CPU_TIER_AVX512)

unsigned qmvi_tiers_built(void)
{
    unsigned m = QMV_CPU_TIER_SCALAR;
#if defined(QMVI_HAVE_AVX2)
    m |= QMV_CPU_TIER_AVX2;
#endif
#if defined(QMVI_HAVE_AVX512)
    m |= QMV_CPU_TIER_AVX512;
#endif
    return m;
}

static unsigned qmvi_detect_tiers(void)
{
    unsigned m = QMV_CPU_TIER_SCALAR;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#if defined(QMVI_HAVE_AVX2)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        m |= QMV_CPU_TIER_AVX2;
#endif
#if defined(QMVI_HAVE_AVX512)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma"))
        m |= QMV_CPU_TIER_AVX512;
#endif
#endif
    return m;
}

/* Parses QMV_CPU_TIERS: names separated by commas (spaces tolerated). Unset or empty: all
 * tiers. A set variable that names no known tier leaves the scalar tier only, so a typo
 * never silently keeps the fast paths on. */
static unsigned qmvi_env_tiers(void)
{
    const char *s = getenv("QMV_CPU_TIERS");
    if (!s || !*s)
        return QMVI_ALL_TIERS;
    unsigned m = 0;
    while (*s) {
        while (*s == ',' || *s == ' ')
            s++;
        size_t n = strcspn(s, ", ");
        if (n == 6 && strncmp(s, "scalar", 6) == 0)
            m |= QMV_CPU_TIER_SCALAR;
        else if (n == 4 && strncmp(s, "avx2", 4) == 0)
            m |= QMV_CPU_TIER_AVX2;
        else if (n == 6 && strncmp(s, "avx512", 6) == 0)
            m |= QMV_CPU_TIER_AVX512;
        s += n;
    }
    return m ? m : QMV_CPU_TIER_SCALAR;
}

/* Both masks are computed once per process. Several threads may race to compute them; they
 * all compute the same value, so the race is benign (the atomic makes it well defined).
 * Bit 31 marks "computed" (no tier uses it). */
#define QMVI_COMPUTED 0x80000000u
static atomic_uint qmvi_supported_cache;
static atomic_uint qmvi_env_cache;

unsigned qmv_cpu_tiers_supported(void)
{
    unsigned m = atomic_load_explicit(&qmvi_supported_cache, memory_order_relaxed);
    if (!(m & QMVI_COMPUTED)) {
        m = qmvi_detect_tiers() | QMVI_COMPUTED;
        atomic_store_explicit(&qmvi_supported_cache, m, memory_order_relaxed);
    }
    return m & ~QMVI_COMPUTED;
}

static unsigned qmvi_env_mask(void)
{
    unsigned m = atomic_load_explicit(&qmvi_env_cache, memory_order_relaxed);
    if (!(m & QMVI_COMPUTED)) {
        m = qmvi_env_tiers() | QMVI_COMPUTED;
        atomic_store_explicit(&qmvi_env_cache, m, memory_order_relaxed);
    }
    return m & ~QMVI_COMPUTED;
}

qmv_cpu_tier qmv_cpu_tier_select(unsigned allowed)
{
    unsigned m = (allowed ? allowed : QMVI_ALL_TIERS) & qmv_cpu_tiers_supported() &
                 qmvi_env_mask();
    if (m & QMV_CPU_TIER_AVX512)
        return QMV_CPU_TIER_AVX512;
    if (m & QMV_CPU_TIER_AVX2)
        return QMV_CPU_TIER_AVX2;
    return QMV_CPU_TIER_SCALAR;
}

const char *qmv_cpu_tier_name(qmv_cpu_tier tier)
{
    switch (tier) {
    case QMV_CPU_TIER_SCALAR:
        return "scalar";
    case QMV_CPU_TIER_AVX2:
        return "avx2";
    case QMV_CPU_TIER_AVX512:
        return "avx512";
    }
    return NULL;
}

qmv_cpu_tier qmvi_exec_tier(const qmv_exec *exec)
{
    unsigned allowed = 0;
    /* A caller built against a header without cpu_tiers passes a struct_size that ends
     * before it: the field takes its default (all tiers). */
    if (exec && exec->struct_size >= offsetof(qmv_exec, cpu_tiers) + sizeof exec->cpu_tiers)
        allowed = exec->cpu_tiers & QMVI_ALL_TIERS;
    if (exec && exec->cpu_tiers && !allowed &&
        exec->struct_size >= offsetof(qmv_exec, cpu_tiers) + sizeof exec->cpu_tiers)
        return QMV_CPU_TIER_SCALAR; /* only unknown tiers named: the one that always runs */
    return qmv_cpu_tier_select(allowed);
}
