/*
 * read_bandwidth.c - see read_bandwidth.h.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include "read_bandwidth.h"

#include "tool_util.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* One streaming sum over buf[0..n) with `threads` threads. RBW_UNROLLED: 4 independent sums
 * per pair of cache-line halves, then the tail; RBW_SERIAL: one running sum per thread. */
static uint64_t sum_pass(const uint64_t *buf, size_t n, int threads, rbw_kernel kernel)
{
    uint64_t total = 0;
    if (kernel == RBW_SERIAL) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads) reduction(+ : total)
#endif
        for (size_t i = 0; i < n; i++)
            total += buf[i];
    } else {
        const size_t n8 = n / 8 * 8;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : total)
#endif
        for (size_t i = 0; i < n8; i += 8) {
            total += (buf[i] + buf[i + 4]) + (buf[i + 1] + buf[i + 5]) +
                     ((buf[i + 2] + buf[i + 6]) + (buf[i + 3] + buf[i + 7]));
        }
        for (size_t i = n8; i < n; i++)
            total += buf[i];
    }
    (void)threads;
    return total;
}

/* Every pass's sum lands here, so the reads cannot be optimised away. */
static volatile uint64_t rbw_sink;

double read_bandwidth(const uint64_t *buf, size_t n, int threads, rbw_kernel kernel, int warm,
                      int passes)
{
    double t[16];
    if (passes < 1)
        passes = 1;
    if (passes > 16)
        passes = 16;
    for (int r = 0; r < warm; r++)
        rbw_sink = sum_pass(buf, n, threads, kernel);
    for (int r = 0; r < passes; r++) {
        const double t0 = tool_now();
        rbw_sink = sum_pass(buf, n, threads, kernel);
        t[r] = tool_now() - t0;
    }
    return (double)(n * sizeof *buf) / tool_median(t, passes);
}
