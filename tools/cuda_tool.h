/*
 * cuda_tool.h - the CUDA parts of the qmv tool (tools/bench_cuda.c),
 * compiled only when the CUDA backend is built (QMV_TOOL_CUDA). Public API only (qmv_cuda.h)
 * plus the CUDA runtime and cuBLAS.
 */
#ifndef QMV_TOOLS_CUDA_TOOL_H
#define QMV_TOOLS_CUDA_TOOL_H

#include <stdint.h>
#include <stdio.h>

#include "qmv.h"

/* y = x . W^T on the GPU for host-described w and v: copies the inputs to the device, runs
 * qmv_cuda_qmv with `kernel` (a qmv_cuda_kernel value, 0 = AUTO), copies y back into v->y.
 * Prints errors; returns 0 (CLI_OK) or 2 (CLI_ERROR, also when there is no GPU). */
int cli_cuda_qmv(const qmv_qmatrix *w, const qmv_vectors *v, int kernel);

/* One bench case as the CPU part prepared it (host buffers). */
typedef struct {
    const char *label;
    qmv_format fmt;
    qmv_dtype x_dtype, scale_dtype;
    int64_t n, k, m;
    const uint32_t *packed;
    const void *scales, *biases;
    size_t packed_bytes, scales_bytes, biases_bytes;
    const float *global_scale; /* host value, or NULL */
    const void *x;
    size_t x_bytes;
    const void *y_ref; /* qmv_qmv_reference's output, y dtype = x dtype */
    size_t y_bytes;
} bench_cuda_case;

/* Device context of the CUDA bench: probed once. */
typedef struct {
    int available;       /* a device is present and usable */
    char why[256];       /* when not available: why */
    char name[256];
    int sms, cc_major, cc_minor;
    double copy_bw;      /* device-to-device copy bandwidth, bytes read + written per second */
    double cublas_us;    /* cuBLAS fp16 GEMV of the same shape: median time per call */
    double cublas_gbps;
    int iters;
    double l2_factor;
} bench_cuda_ctx;

/* Probes the device and measures copy bandwidth and the cuBLAS peer for n x k, m vectors.
 * Returns 0; ctx->available says whether the rest can run. */
int bench_cuda_init(bench_cuda_ctx *ctx, int64_t n, int64_t k, int64_t m, int iters);

/* Result of one kernel on one case. */
typedef struct {
    const char *kernel; /* "qmv" or "fp_qmv" */
    int supported;      /* 0: the kernel cannot run this case (UNSUPPORTED) */
    double median_us, stream_us, gbps, of_copy, vs_cublas;
    int copies;
    int exact; /* memcmp of the GPU's y with the CPU reference */
} bench_cuda_result;

/* Times every kernel (qmv, fp_qmv) on the case; fills res[0..1]. Returns 0, or 2 on a
 * runtime error (printed). */
int bench_cuda_case_run(const bench_cuda_ctx *ctx, const bench_cuda_case *c,
                        bench_cuda_result res[2]);

#endif /* QMV_TOOLS_CUDA_TOOL_H */
