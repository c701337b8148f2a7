/*
 * read_bandwidth.h - the machine's read bandwidth, measured the same way by `qmv bench` and
 * qmv_cpu_bench: a streaming sum over a buffer of 64-bit words, with OpenMP threads when the
 * program is built with OpenMP (one thread otherwise), median of the timed passes.
 */
#ifndef QMV_TOOLS_READ_BANDWIDTH_H
#define QMV_TOOLS_READ_BANDWIDTH_H

#include <stddef.h>
#include <stdint.h>

/* The summing loop. The two programs have always used different ones, and on the same machine
 * they measure different figures (the serial loop lower), so each keeps its own. */
typedef enum {
    RBW_SERIAL,  /* one running sum per thread (`qmv bench`) */
    RBW_UNROLLED /* 4 independent sums per pair of cache-line halves (qmv_cpu_bench) */
} rbw_kernel;

/* Bytes per second of a streaming sum over buf[0..n) with `threads` threads (> 0): `warm`
 * untimed passes, then the median of `passes` (1..16) timed ones. */
double read_bandwidth(const uint64_t *buf, size_t n, int threads, rbw_kernel kernel, int warm,
                      int passes);

#endif /* QMV_TOOLS_READ_BANDWIDTH_H */
