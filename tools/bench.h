/*
 * bench.h - what the two files of `qmv bench` share: cmd_bench.c (options, formats, the context
 * and the rows printed) and bench_case.c (one format's measurements).
 */
#ifndef QMV_TOOLS_BENCH_H
#define QMV_TOOLS_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "qmv.h"
#ifdef QMV_TOOL_CUDA
#include "cuda_tool.h"
#endif

#define BENCH_W_ROWS 1024 /* rows of random weights quantized per format, then repeated */
#define BENCH_MAX_MODES 16
#define BENCH_MAX_THREADS 16
#define BENCH_LABEL 24
#define BENCH_TIERS 4 /* CPU tier bits (qmv_cpu_tier) 1 << 0 .. 1 << 3 */

typedef struct {
    int64_t n, k, m;
    qmv_dtype x_dtype;
    qmv_profile profile;
    int reps, quant_reps, json, cuda, cuda_iters, progress;
    int threads[BENCH_MAX_THREADS]; /* resolved counts (0 = all became the OpenMP default) */
    int n_threads;
    unsigned tiers; /* tiers to run (supported ones only) */
    double span_mib;
    uint64_t seed;
    qmv_format modes[BENCH_MAX_MODES];
    int n_modes;
} bench_opts;

typedef struct {
    char mode[BENCH_LABEL];
    const char *op; /* "quantize", "dequantize", "qmv" */
    char path[BENCH_LABEL]; /* "cpu:avx2", "cuda:qmv" */
    int threads;
    double median_s, min_s, gbps;
    size_t bytes;
    int exact;      /* 1 identical to the reference, 0 mismatch */
    int has_peak;   /* of_peak is meaningful (CPU qmv: of the read ceiling; CUDA: of copy) */
    double of_peak;
    double read_s;  /* CPU qmv rows: the fastest read pass over one copy's weights */
    const char *read_shape; /* and its read shape (rbw_shape_name) */
    double fma_s;   /* CPU qmv rows: N * K * M FMAs at the tier's FMA ceiling (0: unmeasured) */
    size_t read_bytes;
    int copies;
    int cuda;
    double stream_us, vs_cublas;
} bench_row;

typedef struct {
    const bench_opts *o;
    int first, all_exact;
} bench_out;

/* Prints one row (a table line, or a JSON object) and folds its exactness into out. */
void bench_print_row(bench_out *out, const bench_row *b);

/* The label of a format: affine's with bits and group ("affine4-g64"), the fp modes' by name
 * (each has one bit width and group size). */
const char *bench_format_label(const qmv_format *f, char *buf, size_t size);

/* What every format's run shares. */
typedef struct {
    const bench_opts *o;
    const void *w, *x; /* w: w_rows x k random weights; x: m x k */
    int64_t w_rows;
    size_t x_bytes, y_bytes;
    double span_bytes;
    /* the FMA ceiling (fma_rate.h) of tier 1 << i with o->threads[j] threads: fp32 FMAs per
     * second, 0 where not measured */
    double fma_rate[BENCH_TIERS][BENCH_MAX_THREADS];
#ifdef QMV_TOOL_CUDA
    bench_cuda_ctx *cuda;
#endif
} bench_ctx;

/* One format: the quantize and dequantize rows, the weight copies, the reference, the CPU qmv
 * rows with their read ceiling and, when built, the CUDA rows. CLI_OK, or CLI_ERROR (printed);
 * mismatches are rows with exact = 0. */
int bench_case(const bench_ctx *c, const qmv_format *fmt, bench_out *out);

#endif /* QMV_TOOLS_BENCH_H */
