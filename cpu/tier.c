/*
 * tier.c - the CPU kernel sets, best first, and which one a call runs: what this build
 * compiled (CMake defines QMVI_HAVE_AVX2 / QMVI_HAVE_AVX512 when the compiler accepts the ISA
 * flags for those files, QMVI_HAVE_NEON on AArch64 targets), what the processor and the
 * operating system support (each set's runs(), checked once per process), the process-wide
 * QMV_CPU_TIERS environment variable and the per-call exec->cpu_tiers mask. Every set returns
 * the same bits, so the choice only ever changes speed.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kernels.h"
#include "arm/arm_kernels.h"
#include "x86/x86_kernels.h"

#if defined(QMVI_HAVE_AVX512)
#define QMVI_AVX512_SET                                                                            \
    qmvi_x86_runs_avx512, qmvi_qmv_avx512, qmvi_quantize_row_avx512, qmvi_non_finite_avx512,       \
        qmvi_dequantize_row_avx512
#else
#define QMVI_AVX512_SET NULL, NULL, NULL, NULL, NULL
#endif
#if defined(QMVI_HAVE_AVX2)
#define QMVI_AVX2_SET                                                                              \
    qmvi_x86_runs_avx2, qmvi_qmv_avx2, qmvi_quantize_row_avx2, qmvi_non_finite_avx2,               \
        qmvi_dequantize_row_avx2
#else
#define QMVI_AVX2_SET NULL, NULL, NULL, NULL, NULL
#endif
/* runs NULL: every AArch64 processor has Advanced SIMD (arm_kernels.h). qmv, quantize and
 * dequantize are NEON (cpu/arm/). */
#if defined(QMVI_NEON)
#define QMVI_NEON_SET                                                                              \
    NULL, qmvi_qmv_neon, qmvi_quantize_row_neon, qmvi_non_finite_neon, qmvi_dequantize_row_neon
#else
#define QMVI_NEON_SET NULL, NULL, NULL, NULL, NULL
#endif

/* Every tier this library knows, best first; the scalar set is last and always built. */
static const qmvi_kernel_set qmvi_sets[] = {
    {QMV_CPU_TIER_AVX512, "avx512", QMVI_AVX512_SET},
    {QMV_CPU_TIER_AVX2, "avx2", QMVI_AVX2_SET},
    {QMV_CPU_TIER_NEON, "neon", QMVI_NEON_SET},
    {QMV_CPU_TIER_SCALAR, "scalar", NULL, qmvi_qmv_scalar, qmvi_quantize_row_scalar,
     qmvi_non_finite_scalar, qmvi_dequantize_row_scalar},
};
#define QMVI_NSETS      ((int)(sizeof qmvi_sets / sizeof qmvi_sets[0]))
#define QMVI_SCALAR_SET (&qmvi_sets[QMVI_NSETS - 1])

unsigned qmvi_tiers_built(void)
{
    unsigned m = 0;
    for (int i = 0; i < QMVI_NSETS; i++)
        if (qmvi_sets[i].qmv)
            m |= (unsigned)qmvi_sets[i].tier;
    return m;
}

static unsigned qmvi_detect_tiers(void)
{
    unsigned m = 0;
    for (int i = 0; i < QMVI_NSETS; i++)
        if (qmvi_sets[i].qmv && (!qmvi_sets[i].runs || qmvi_sets[i].runs()))
            m |= (unsigned)qmvi_sets[i].tier;
    return m;
}

/* The set of tier `name` (n characters, not terminated); NULL if none. */
static const qmvi_kernel_set *qmvi_set_named(const char *name, size_t n)
{
    for (int i = 0; i < QMVI_NSETS; i++)
        if (strlen(qmvi_sets[i].name) == n && strncmp(qmvi_sets[i].name, name, n) == 0)
            return &qmvi_sets[i];
    return NULL;
}

/* Parses QMV_CPU_TIERS: names separated by commas (spaces tolerated). Unset or empty: all
 * tiers. A set variable that names no known tier leaves the scalar tier only, so a typo
 * never silently keeps the fast paths on. */
static unsigned qmvi_env_tiers(void)
{
    const char *s = getenv("QMV_CPU_TIERS");
    if (!s || !*s)
        return QMV_CPU_TIER_ALL;
    unsigned m = 0;
    while (*s) {
        while (*s == ',' || *s == ' ')
            s++;
        size_t n = strcspn(s, ", ");
        const qmvi_kernel_set *k = qmvi_set_named(s, n);
        if (k)
            m |= (unsigned)k->tier;
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

/* The best set in mask m (the scalar set when m holds no built one). */
static const qmvi_kernel_set *qmvi_best_set(unsigned m)
{
    for (int i = 0; i < QMVI_NSETS; i++)
        if ((m & (unsigned)qmvi_sets[i].tier) && qmvi_sets[i].qmv)
            return &qmvi_sets[i];
    return QMVI_SCALAR_SET;
}

static const qmvi_kernel_set *qmvi_select_set(unsigned allowed)
{
    return qmvi_best_set((allowed ? allowed : QMV_CPU_TIER_ALL) & qmv_cpu_tiers_supported() &
                         qmvi_env_mask());
}

qmv_cpu_tier qmv_cpu_tier_select(unsigned allowed)
{
    return qmvi_select_set(allowed)->tier;
}

const char *qmv_cpu_tier_name(qmv_cpu_tier tier)
{
    for (int i = 0; i < QMVI_NSETS; i++)
        if (qmvi_sets[i].tier == tier)
            return qmvi_sets[i].name;
    return NULL;
}

qmv_status qmv_cpu_tier_from_name(const char *name, qmv_cpu_tier *out)
{
    if (!name || !out)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "CPU tier name: NULL pointer");
    const qmvi_kernel_set *k = qmvi_set_named(name, strlen(name));
    if (!k)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "unknown CPU tier '%.64s'", name);
    *out = k->tier;
    return qmvi_ok();
}

const qmvi_kernel_set *qmvi_exec_kernels(const qmv_exec *exec)
{
    unsigned allowed = 0;
    /* A caller built against a header without cpu_tiers passes a struct_size that ends
     * before it: the field takes its default (all tiers). */
    if (exec && exec->struct_size >= offsetof(qmv_exec, cpu_tiers) + sizeof exec->cpu_tiers)
        allowed = exec->cpu_tiers & QMV_CPU_TIER_ALL;
    if (exec && exec->cpu_tiers && !allowed &&
        exec->struct_size >= offsetof(qmv_exec, cpu_tiers) + sizeof exec->cpu_tiers)
        return QMVI_SCALAR_SET; /* only unknown tiers named: the one that always runs */
    return qmvi_select_set(allowed);
}

qmv_cpu_tier qmvi_exec_tier(const qmv_exec *exec)
{
    return qmvi_exec_kernels(exec)->tier;
}
