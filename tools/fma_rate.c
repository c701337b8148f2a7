/*
 * fma_rate.c - see fma_rate.h.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include "fma_rate.h"

#include <math.h>

#include "qmv.h"
#include "tool_util.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FMR_X86 1
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#define FMR_NEON 1
#include <arm_neon.h>
#endif

#define FMR_ACC 12 /* independent accumulators per thread */
/* a pass: this many steps per lane of the width (a few ms per thread at any width) */
#define FMR_STEPS_PER_LANE (1 << 16)

/* An empty statement that says v is in a register and changed: each scalar FMA stays one
 * lane (the compiler cannot pack the chains into vectors). */
#if defined(FMR_X86)
#define FMR_SCALAR_REG(v) __asm__("" : "+x"(v))
#elif defined(FMR_NEON)
#define FMR_SCALAR_REG(v) __asm__("" : "+w"(v))
#else
#define FMR_SCALAR_REG(v) (void)(v)
#endif

/* Each kernel: `steps` steps of FMR_ACC FMAs, a = a * 0.5 + 1 (it settles at 2: no overflow,
 * no subnormals); returns a lane of the sum so that nothing is optimised away. */
typedef float (*fmr_fn)(long steps);

/* the scalar tier's kernel is cloned the same way (cpu/qmv.c): fmaf is one instruction where
 * the processor has FMA, a library call elsewhere */
#ifdef FMR_X86
__attribute__((target_clones("fma", "default")))
#endif
static float
fmr_scalar(long steps)
{
    /* twelve named chains (an array would live in memory), each pinned to its own register */
    float a0 = 0, a1 = 1, a2 = 2, a3 = 3, a4 = 4, a5 = 5, a6 = 6, a7 = 7, a8 = 8, a9 = 9, a10 = 10,
          a11 = 11;
#define FMR_STEP(v)                                                                                \
    do {                                                                                           \
        v = fmaf(v, 0.5f, 1.0f);                                                                   \
        FMR_SCALAR_REG(v);                                                                         \
    } while (0)
    for (long s = 0; s < steps; s++) {
        FMR_STEP(a0);
        FMR_STEP(a1);
        FMR_STEP(a2);
        FMR_STEP(a3);
        FMR_STEP(a4);
        FMR_STEP(a5);
        FMR_STEP(a6);
        FMR_STEP(a7);
        FMR_STEP(a8);
        FMR_STEP(a9);
        FMR_STEP(a10);
        FMR_STEP(a11);
    }
#undef FMR_STEP
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11));
}

/* One vector kernel: FMR_ACC chains of `vt` advanced by fma(a, h, one); the lane-0 sum. */
#define FMR_VEC_KERNEL(name, attr, vt, set1, fma, add, lane0)                                      \
    attr static float name(long steps)                                                             \
    {                                                                                              \
        vt a[FMR_ACC];                                                                             \
        const vt h = set1(0.5f), one = set1(1.0f);                                                 \
        for (int q = 0; q < FMR_ACC; q++)                                                          \
            a[q] = set1((float)q);                                                                 \
        for (long s = 0; s < steps; s++)                                                           \
            for (int q = 0; q < FMR_ACC; q++)                                                      \
                a[q] = fma(a[q], h, one);                                                          \
        vt t = a[0];                                                                               \
        for (int q = 1; q < FMR_ACC; q++)                                                          \
            t = add(t, a[q]);                                                                      \
        return lane0(t);                                                                           \
    }

#ifdef FMR_X86
FMR_VEC_KERNEL(fmr_avx2, __attribute__((target("avx2,fma"))), __m256, _mm256_set1_ps,
               _mm256_fmadd_ps, _mm256_add_ps, _mm256_cvtss_f32)
FMR_VEC_KERNEL(fmr_avx512, __attribute__((target("avx512f"))), __m512, _mm512_set1_ps,
               _mm512_fmadd_ps, _mm512_add_ps, _mm512_cvtss_f32)
#endif

#ifdef FMR_NEON
/* vfmaq_f32(c, a, b) = c + a * b: the argument order of fma(a, h, one) */
#define FMR_NEON_FMA(a, h, one) vfmaq_f32(one, a, h)
#define FMR_NEON_LANE0(t)       vgetq_lane_f32(t, 0)
FMR_VEC_KERNEL(fmr_neon, , float32x4_t, vdupq_n_f32, FMR_NEON_FMA, vaddq_f32, FMR_NEON_LANE0)
#endif

/* The kernel and width of a tier, or NULL where this build or processor has none. */
static fmr_fn fmr_pick(unsigned tier, int *lanes)
{
    *lanes = 0;
    if (!(qmv_cpu_tiers_supported() & tier))
        return NULL;
    switch (tier) {
    case QMV_CPU_TIER_SCALAR:
        *lanes = 1;
        return fmr_scalar;
#ifdef FMR_X86
    case QMV_CPU_TIER_AVX2:
        *lanes = 8;
        return fmr_avx2;
    case QMV_CPU_TIER_AVX512:
        *lanes = 16;
        return fmr_avx512;
#endif
#ifdef FMR_NEON
    case QMV_CPU_TIER_NEON:
        *lanes = 4;
        return fmr_neon;
#endif
    default:
        return NULL;
    }
}

int fmr_lanes(unsigned tier)
{
    int lanes;
    (void)fmr_pick(tier, &lanes);
    return lanes;
}

/* Every pass's result lands here, so the FMAs cannot be optimised away. */
static volatile float fmr_sink;

double fmr_rate(unsigned tier, int threads, int passes)
{
    int lanes;
    const fmr_fn fn = fmr_pick(tier, &lanes);
    if (!fn)
        return 0.0;
    const long steps = (long)FMR_STEPS_PER_LANE * lanes;
    double best = 0.0;
    (void)threads;
    for (int p = 0; p < passes; p++) {
        double slowest = 0.0, sum = 0.0;
        int nt = 1, no_clock = 0;
        const double t0 = tool_now();
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(max : slowest) reduction(+ : sum)           \
    reduction(| : no_clock)
#endif
        {
#ifdef _OPENMP
#pragma omp single
            nt = omp_get_num_threads();
#endif
            const double c0 = tool_thread_cpu_now();
            sum += fn(steps);
            const double c1 = tool_thread_cpu_now();
            if (c0 < 0.0 || c1 < 0.0)
                no_clock = 1;
            else if (c1 - c0 > slowest)
                slowest = c1 - c0;
        }
        const double t = no_clock ? tool_now() - t0 : slowest;
        fmr_sink = (float)sum;
        const double rate = (double)nt * (double)steps * FMR_ACC * lanes / t;
        if (rate > best)
            best = rate;
    }
    return best;
}
