/*
 * read_bandwidth.c - see read_bandwidth.h.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include "read_bandwidth.h"

#include <stdint.h>
#include <time.h>

#include "tool_util.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* 8 uint64 lanes: one cache line. Compiled as one zmm register with AVX-512, two ymm with AVX2,
 * four xmm (or NEON q) registers otherwise. may_alias: it reads buffers of any type. */
typedef uint64_t rbw_vec __attribute__((vector_size(64), may_alias));
#define RBW_LINE 64
#define RBW_PREFETCH 2048 /* RBW_FOUR_STREAMS: bytes ahead in each stream */
#define RBW_ROW 4096          /* RBW_FOUR_ROWS: bytes of each piece */
#define RBW_ROW_PREFETCH 512  /* RBW_FOUR_ROWS: bytes ahead in each piece */
#define RBW_INLINE static inline __attribute__((always_inline))

/* The 8 accumulators folded to one word (a macro: a vector argument would change the ABI
 * between the ISA variants below). */
#define RBW_FOLD(out, a)                                                                        \
    do {                                                                                        \
        const rbw_vec f_ = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));   \
        for (int l_ = 0; l_ < 8; l_++)                                                          \
            (out) += f_[l_];                                                                    \
    } while (0)

RBW_INLINE uint64_t rbw_bytes(const unsigned char *p, const unsigned char *e)
{
    uint64_t s = 0;
    for (; p < e; p++)
        s += *p;
    return s;
}

/* [p, e), p aligned to a cache line: 8 lines per step, then single lines, then bytes. */
RBW_INLINE uint64_t rbw_one(const unsigned char *p, const unsigned char *e)
{
    rbw_vec a[8] = {{0}};
    for (; e - p >= 8 * RBW_LINE; p += 8 * RBW_LINE)
        for (int i = 0; i < 8; i++)
            a[i] += *(const rbw_vec *)(p + i * RBW_LINE);
    for (; e - p >= RBW_LINE; p += RBW_LINE)
        a[0] += *(const rbw_vec *)p;
    uint64_t s = rbw_bytes(p, e);
    RBW_FOLD(s, a);
    return s;
}

/* [p, e), p aligned to a cache line, cut in four equal streams read side by side (2 lines of
 * each per step, each prefetched RBW_PREFETCH ahead); the rest as one stream. */
RBW_INLINE uint64_t rbw_four(const unsigned char *p, const unsigned char *e)
{
    const size_t len = (size_t)(e - p) / 4 / (2 * RBW_LINE) * (2 * RBW_LINE);
    rbw_vec a[8] = {{0}};
    for (size_t o = 0; o < len; o += 2 * RBW_LINE) {
        for (int s = 0; s < 4; s++)
            __builtin_prefetch(p + (size_t)s * len + o + RBW_PREFETCH);
        for (int s = 0; s < 4; s++) {
            a[2 * s] += *(const rbw_vec *)(p + (size_t)s * len + o);
            a[2 * s + 1] += *(const rbw_vec *)(p + (size_t)s * len + o + RBW_LINE);
        }
    }
    uint64_t s = rbw_one(p + 4 * len, e);
    RBW_FOLD(s, a);
    return s;
}

/* [p, e), p aligned to a cache line, in blocks of 4 adjacent RBW_ROW-byte pieces read side by
 * side (2 lines of each per step, each prefetched RBW_ROW_PREFETCH ahead); the rest as one
 * stream. */
RBW_INLINE uint64_t rbw_rows(const unsigned char *p, const unsigned char *e)
{
    rbw_vec a[8] = {{0}};
    for (; e - p >= 4 * RBW_ROW; p += 4 * RBW_ROW)
        for (size_t o = 0; o < RBW_ROW; o += 2 * RBW_LINE) {
            for (int s = 0; s < 4; s++)
                __builtin_prefetch(p + (size_t)s * RBW_ROW + o + RBW_ROW_PREFETCH);
            for (int s = 0; s < 4; s++) {
                a[2 * s] += *(const rbw_vec *)(p + (size_t)s * RBW_ROW + o);
                a[2 * s + 1] += *(const rbw_vec *)(p + (size_t)s * RBW_ROW + o + RBW_LINE);
            }
        }
    uint64_t s = rbw_one(p, e);
    RBW_FOLD(s, a);
    return s;
}

/* One thread's share [lo, hi): the bytes up to the first cache-line boundary, then the shape. */
RBW_INLINE uint64_t rbw_share(const unsigned char *lo, const unsigned char *hi, rbw_shape shape)
{
    const unsigned char *a = lo + (RBW_LINE - (uintptr_t)lo % RBW_LINE) % RBW_LINE;
    if (a > hi)
        a = hi;
    switch (shape) {
    case RBW_FOUR_STREAMS: return rbw_bytes(lo, a) + rbw_four(a, hi);
    case RBW_FOUR_ROWS: return rbw_bytes(lo, a) + rbw_rows(a, hi);
    default: return rbw_bytes(lo, a) + rbw_one(a, hi);
    }
}

typedef uint64_t (*rbw_fn)(const unsigned char *, const unsigned char *, rbw_shape);

static uint64_t rbw_baseline(const unsigned char *lo, const unsigned char *hi, rbw_shape shape)
{
    return rbw_share(lo, hi, shape);
}

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define RBW_X86 1
__attribute__((target("avx2"))) static uint64_t rbw_avx2(const unsigned char *lo,
                                                         const unsigned char *hi, rbw_shape shape)
{
    return rbw_share(lo, hi, shape);
}

__attribute__((target("avx512f"))) static uint64_t rbw_avx512(const unsigned char *lo,
                                                              const unsigned char *hi,
                                                              rbw_shape shape)
{
    return rbw_share(lo, hi, shape);
}
#endif

static rbw_fn rbw_pick(const char **isa)
{
#ifdef RBW_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        *isa = "avx512";
        return rbw_avx512;
    }
    if (__builtin_cpu_supports("avx2")) {
        *isa = "avx2";
        return rbw_avx2;
    }
#endif
    *isa = "baseline";
    return rbw_baseline;
}

const char *rbw_shape_name(rbw_shape shape)
{
    static const char *const names[RBW_SHAPES] = {"one-stream", "four-streams", "four-rows"};
    return (unsigned)shape < RBW_SHAPES ? names[shape] : NULL;
}

const char *rbw_isa(void)
{
    const char *isa;
    (void)rbw_pick(&isa);
    return isa;
}

/* Every pass's sum lands here, so the reads cannot be optimised away. */
static volatile uint64_t rbw_sink;

double rbw_pass(const rbw_span *spans, int n, int threads, rbw_shape shape)
{
    const char *isa;
    const rbw_fn fn = rbw_pick(&isa);
    uint64_t total = 0;
    double slowest = 0.0; /* the slowest thread's CPU time over its shares */
    int no_clock = 0;
    (void)threads;
    const double t0 = tool_now();
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(+ : total) reduction(max : slowest) \
    reduction(| : no_clock)
#endif
    {
        const double c0 = tool_thread_cpu_now();
#ifdef _OPENMP
        const size_t t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
#else
        const size_t t = 0, nt = 1;
#endif
        for (int i = 0; i < n; i++) {
            const unsigned char *p = spans[i].p;
            const size_t b = spans[i].bytes;
            /* shares cut at cache lines of the span (the last one takes the rest) */
            const size_t lo = b / RBW_LINE * t / nt * RBW_LINE;
            const size_t hi = t + 1 == nt ? b : b / RBW_LINE * (t + 1) / nt * RBW_LINE;
            total += fn(p + lo, p + hi, shape);
        }
        const double c1 = tool_thread_cpu_now();
        if (c0 < 0.0 || c1 < 0.0)
            no_clock = 1;
        else if (c1 - c0 > slowest)
            slowest = c1 - c0;
    }
    const double wall = tool_now() - t0;
    rbw_sink = total;
    return no_clock ? wall : slowest;
}
