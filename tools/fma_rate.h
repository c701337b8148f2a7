/*
 * fma_rate.h - the FMA ceiling of `qmv bench` (docs/PERFORMANCE.md, "Method"): how many fp32
 * fused multiply-adds per second this machine's threads retire at a CPU tier's vector width.
 *
 * The canonical order (DESIGN.md) costs one FMA per weight per vector, so a qmv call of N x K
 * weights and M vectors can take no less than N * K * M FMAs' time on its tier's FMA units,
 * however well it hides memory. A pass runs `threads` threads in one OpenMP parallel region,
 * each advancing 12 independent accumulator vectors of the tier's width (enough chains to
 * cover the FMA latency of current processors), timed like the read ceiling (the slowest
 * thread's CPU time). The scalar tier's FMA is C's fmaf, which is what its kernel calls.
 */
#ifndef QMV_TOOLS_FMA_RATE_H
#define QMV_TOOLS_FMA_RATE_H

/* fp32 FMA lanes of one instruction of the tier (a qmv_cpu_tier bit): 16 AVX-512, 8 AVX2,
 * 4 NEON, 1 scalar; 0 for a tier this build cannot measure. */
int fmr_lanes(unsigned tier);

/* The fastest of `passes` (> 0) passes of `threads` (> 0) threads on the tier: fp32 FMA lane
 * operations per second over all threads. 0 where fmr_lanes(tier) is 0. Without OpenMP one
 * thread runs. */
double fmr_rate(unsigned tier, int threads, int passes);

#endif /* QMV_TOOLS_FMA_RATE_H */
