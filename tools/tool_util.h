/*
 * tool_util.h - small helpers of the qmv tool (tools/):
 * strict integer parsing, checked int64 arithmetic, a monotonic clock and the thread CPU clock,
 * the median of timings, a seeded random stream.
 * Header-only (static inline), so each program can use it without another source file.
 * clock_gettime needs _POSIX_C_SOURCE >= 199309L (or _GNU_SOURCE) before the first include.
 */
#ifndef QMV_TOOLS_TOOL_UTIL_H
#define QMV_TOOLS_TOOL_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* The whole string as a base-10 integer within [lo, hi]: 0 and *out set, or -1. */
static inline int tool_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = (int64_t)v;
    return 0;
}

/* Checked int64 arithmetic for sizes derived from files: 1 and *r set, or 0 on overflow
 * (the same contract as the library's qmvi_mul_ok / qmvi_add_ok). */
static inline int tool_mul_ok(int64_t a, int64_t b, int64_t *r)
{
    return !__builtin_mul_overflow(a, b, r);
}

static inline int tool_add_ok(int64_t a, int64_t b, int64_t *r)
{
    return !__builtin_add_overflow(a, b, r);
}

/* Monotonic seconds. */
static inline double tool_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* This thread's CPU time in seconds (user + system: memory stalls count, time spent waiting
 * for a core does not); -1 where the system has no such clock. */
static inline double tool_thread_cpu_now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return -1.0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* qsort comparison of doubles, ascending. */
static inline int tool_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v[0..n) and returns its median (the mean of the middle two for even n). */
static inline double tool_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, tool_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* SplitMix64: the next value of the stream seeded by *s. */
static inline uint64_t tool_splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

#endif /* QMV_TOOLS_TOOL_UTIL_H */
