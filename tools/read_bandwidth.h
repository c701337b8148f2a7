/*
 * read_bandwidth.h - the read ceiling of `qmv bench` (docs/PERFORMANCE.md, "Method"): how fast
 * this machine streams a given set of buffers from memory with a given number of threads.
 *
 * One pass reads every byte of the spans once, inside one OpenMP parallel region of `threads`
 * threads, each thread a contiguous share of every span (the static split of the library's
 * own regions, so OMP_PROC_BIND / OMP_PLACES pin both the same way, and with the same runtime
 * the same pooled threads run both). Per thread: the widest vector loads the processor has
 * (AVX-512, AVX2, else the compiler's baseline), 8 independent accumulators, in one of the
 * read shapes below. The bench times passes over the very buffers a qmv call reads, so data
 * volume, page placement and the per-call fork and join are the kernel's; the ceiling is the
 * fastest pass of any shape.
 */
#ifndef QMV_TOOLS_READ_BANDWIDTH_H
#define QMV_TOOLS_READ_BANDWIDTH_H

#include <stddef.h>

/* A buffer to read. */
typedef struct {
    const void *p;
    size_t bytes;
} rbw_span;

/* Read shapes of one thread's share; the ceiling is the fastest of them, since which one a
 * memory system serves best differs between processors. */
typedef enum {
    RBW_ONE_STREAM = 0,   /* one sequential stream, 8 cache lines per step, the hardware
                           * prefetcher alone */
    RBW_FOUR_STREAMS = 1, /* the share cut in 4 equal streams read side by side, 2 cache lines
                           * of each per step, software prefetch 2 KiB ahead in each */
    RBW_FOUR_ROWS = 2,    /* blocks of 4 adjacent 4 KiB pieces read side by side, 2 cache lines
                           * of each per step, software prefetch 512 bytes ahead in each: the
                           * shape of a qmv work item, which streams a few adjacent rows at once
                           * and prefetches each two blocks ahead */
} rbw_shape;
#define RBW_SHAPES 3

/* Reads every byte of spans[0..n) once with `threads` (> 0) threads in read shape `shape`.
 * Returns the pass's time in seconds as the slowest thread's CPU time over its shares: on a
 * machine to itself that is the pass's wall time less the fork and join; where another program
 * takes a thread's core for a while, it leaves that wait out, which a wall-clock pass would
 * count (a descheduled thread stalls the whole static split), so a shared machine's noise can
 * only raise the ceiling, never lower it below the calls. The wall time where the system has
 * no thread CPU clock. Without OpenMP one thread reads. */
double rbw_pass(const rbw_span *spans, int n, int threads, rbw_shape shape);

/* "one-stream", "four-streams", "four-rows" (NULL out of range). */
const char *rbw_shape_name(rbw_shape shape);

/* The instruction set of the loads ("avx512", "avx2", "baseline"). */
const char *rbw_isa(void);

#endif /* QMV_TOOLS_READ_BANDWIDTH_H */
