/*
 * bench_cuda.c - the CUDA part of qmv bench (and the device helper of qmv matvec --device
 * cuda). Was tools/qmv_cuda_bench.c: median kernel time by CUDA events over rotating weight
 * copies (at least 4, enough that the L2 cache cannot hold them), effective bandwidth against
 * the device-to-device copy bandwidth measured in the same process, the stream-launched time
 * per call of back-to-back launches, cuBLAS's fp16 GEMV of the same shape as the peer, and a
 * memcmp of every GPU result against the CPU reference. Both kernels (qmv, fp_qmv) run on
 * every case they support. Errors are reported, never exit().
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cuda_tool.h"
#include "qmv_cuda.h"

/* Evaluates a CUDA runtime call; on failure prints it and jumps to `fail`. */
#define CK(expr)                                                                           \
    do {                                                                                   \
        cudaError_t e_ = (expr);                                                           \
        if (e_ != cudaSuccess) {                                                           \
            cli_error("CUDA: %s: %s", #expr, cudaGetErrorString(e_));                      \
            goto fail;                                                                     \
        }                                                                                  \
    } while (0)

#define MAX_COPIES 64

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static float median_f(float *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_float);
    return n % 2 ? v[n / 2] : 0.5f * (v[n / 2 - 1] + v[n / 2]);
}

/* Why no device can be used, as a user can act on it. The runtime reports a missing driver
 * as cudaErrorInsufficientDriver ("CUDA driver version is insufficient for CUDA runtime
 * version"), which reads like a version problem on a machine that has no NVIDIA GPU at all. */
static const char *no_device_reason(cudaError_t ce, int ndev)
{
    if (ce == cudaErrorInsufficientDriver || ce == cudaErrorNoDevice ||
        (ce == cudaSuccess && ndev < 1))
        return "no NVIDIA GPU or driver found";
    return cudaGetErrorString(ce);
}

/* ---- qmv matvec --device cuda ---------------------------------------------------------------- */

int cli_cuda_qmv(const qmv_qmatrix *w, const qmv_vectors *v, int kernel)
{
    int ndev = 0;
    cudaError_t ce = cudaGetDeviceCount(&ndev);
    if (ce != cudaSuccess || ndev < 1) {
        cli_error("--device cuda: no CUDA device (%s)", no_device_reason(ce, ndev));
        return CLI_ERROR;
    }
    void *dp = NULL, *ds = NULL, *db = NULL, *dx = NULL, *dy = NULL, *dg = NULL;
    int rc = CLI_ERROR;
    CK(cudaMalloc(&dp, w->packed_bytes));
    CK(cudaMemcpy(dp, w->packed, w->packed_bytes, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&ds, w->scales_bytes));
    CK(cudaMemcpy(ds, w->scales, w->scales_bytes, cudaMemcpyHostToDevice));
    if (w->biases) {
        CK(cudaMalloc(&db, w->biases_bytes));
        CK(cudaMemcpy(db, w->biases, w->biases_bytes, cudaMemcpyHostToDevice));
    }
    if (w->global_scale) {
        CK(cudaMalloc(&dg, sizeof(float)));
        CK(cudaMemcpy(dg, w->global_scale, sizeof(float), cudaMemcpyHostToDevice));
    }
    CK(cudaMalloc(&dx, v->x_bytes));
    CK(cudaMemcpy(dx, v->x, v->x_bytes, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&dy, v->y_bytes));
    qmv_qmatrix dw = *w;
    dw.packed = dp;
    dw.scales = ds;
    dw.biases = db;
    dw.global_scale = dg;
    qmv_vectors dv = *v;
    dv.x = dx;
    dv.y = dy;
    qmv_cuda_options opt = QMV_CUDA_OPTIONS_INIT;
    opt.kernel = (qmv_cuda_kernel)kernel;
    qmv_status st = qmv_cuda_qmv(&dw, &dv, &opt, NULL);
    if (st != QMV_STATUS_OK) {
        cli_qmv_error("qmv_cuda_qmv", st);
        goto fail;
    }
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(v->y, dy, v->y_bytes, cudaMemcpyDeviceToHost));
    rc = CLI_OK;
fail:
    cudaFree(dp);
    cudaFree(ds);
    cudaFree(db);
    cudaFree(dg);
    cudaFree(dx);
    cudaFree(dy);
    return rc;
}

/* ---- Timing helpers ----------------------------------------------------------------------- */

typedef int (*call_fn)(void *ctx, int copy); /* 0 or -1 (printed) */

/* Median per-call time (ms) over `iters` calls, each between two events; < 0 on error. */
static float time_calls(call_fn fn, void *ctx, int copies, int iters)
{
    cudaEvent_t e0 = NULL, e1 = NULL;
    float *t = malloc(sizeof(float) * (size_t)iters), m = -1.0f;
    if (!t)
        return -1.0f;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    for (int i = 0; i < copies; i++) /* warm up */
        if (fn(ctx, i))
            goto fail;
    for (int i = 0; i < iters; i++) {
        CK(cudaEventRecord(e0, 0));
        if (fn(ctx, i % copies))
            goto fail;
        CK(cudaEventRecord(e1, 0));
        CK(cudaEventSynchronize(e1));
        CK(cudaEventElapsedTime(&t[i], e0, e1));
    }
    m = median_f(t, iters);
fail:
    free(t);
    if (e0)
        cudaEventDestroy(e0);
    if (e1)
        cudaEventDestroy(e1);
    return m;
}

/* Mean time per call (ms) of `calls` back-to-back launches (launch overhead included). */
static float time_stream(call_fn fn, void *ctx, int copies, int calls)
{
    cudaEvent_t e0 = NULL, e1 = NULL;
    float ms = -1.0f;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    if (fn(ctx, 0))
        goto fail;
    CK(cudaEventRecord(e0, 0));
    for (int i = 0; i < calls; i++)
        if (fn(ctx, i % copies))
            goto fail;
    CK(cudaEventRecord(e1, 0));
    CK(cudaEventSynchronize(e1));
    CK(cudaEventElapsedTime(&ms, e0, e1));
    ms /= (float)calls;
fail:
    if (e0)
        cudaEventDestroy(e0);
    if (e1)
        cudaEventDestroy(e1);
    return ms;
}

/* Device-to-device copy bandwidth (bytes read + written per second) of a 1 GiB copy. */
static double copy_bandwidth(void)
{
    const size_t bytes = (size_t)1 << 30;
    void *a = NULL, *b = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    float t[20];
    double bw = 0.0;
    CK(cudaMalloc(&a, bytes));
    CK(cudaMalloc(&b, bytes));
    CK(cudaMemset(a, 1, bytes));
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    for (int i = 0; i < 22; i++) {
        CK(cudaEventRecord(e0, 0));
        CK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, 0));
        CK(cudaEventRecord(e1, 0));
        CK(cudaEventSynchronize(e1));
        if (i >= 2)
            CK(cudaEventElapsedTime(&t[i - 2], e0, e1));
    }
    bw = 2.0 * (double)bytes / (median_f(t, 20) * 1e-3);
fail:
    cudaFree(a);
    cudaFree(b);
    if (e0)
        cudaEventDestroy(e0);
    if (e1)
        cudaEventDestroy(e1);
    return bw;
}

/* Enough copies that l2_factor x the L2 size is spanned, between 4 and MAX_COPIES. */
static int copies_for(size_t bytes, double l2_factor)
{
    int l2 = 0;
    if (cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0) != cudaSuccess)
        l2 = 64 << 20;
    int c = (int)((double)l2 * l2_factor / (double)bytes) + 1;
    return c < 4 ? 4 : c > MAX_COPIES ? MAX_COPIES : c;
}

/* ---- cuBLAS peer ---------------------------------------------------------------------------- */

typedef struct {
    cublasHandle_t h;
    const void *w[MAX_COPIES]; /* float16 weights */
    const void *x;
    void *y;
    int64_t n, k, m;
} blas_ctx;

static int call_cublas(void *p, int copy)
{
    blas_ctx *c = p;
    const float one = 1.0f, zero = 0.0f;
    /* y[m][n] = sum_k W[n][k] x[m][k]: column-major W^T (k x n) times x (k x m). */
    cublasStatus_t st = cublasGemmEx(c->h, CUBLAS_OP_T, CUBLAS_OP_N, (int)c->n, (int)c->m,
                                     (int)c->k, &one, c->w[copy], CUDA_R_16F, (int)c->k, c->x,
                                     CUDA_R_16F, (int)c->k, &zero, c->y, CUDA_R_16F, (int)c->n,
                                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) {
        cli_error("CUDA: cublasGemmEx failed: %d", (int)st);
        return -1;
    }
    return 0;
}

int bench_cuda_init(bench_cuda_ctx *ctx, int64_t n, int64_t k, int64_t m, int iters)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->iters = iters;
    ctx->l2_factor = 4.0;
    int ndev = 0;
    cudaError_t ce = cudaGetDeviceCount(&ndev);
    if (ce != cudaSuccess || ndev < 1) {
        snprintf(ctx->why, sizeof ctx->why, "no CUDA device: %s", no_device_reason(ce, ndev));
        return 0;
    }
    struct cudaDeviceProp prop;
    if ((ce = cudaGetDeviceProperties(&prop, 0)) != cudaSuccess) {
        snprintf(ctx->why, sizeof ctx->why, "cudaGetDeviceProperties: %s", cudaGetErrorString(ce));
        return 0;
    }
    snprintf(ctx->name, sizeof ctx->name, "%s", prop.name);
    ctx->sms = prop.multiProcessorCount;
    ctx->cc_major = prop.major;
    ctx->cc_minor = prop.minor;
    ctx->copy_bw = copy_bandwidth();
    if (ctx->copy_bw <= 0) {
        snprintf(ctx->why, sizeof ctx->why, "the copy-bandwidth measurement failed");
        return 0;
    }

    /* cuBLAS fp16 GEMV of the same shape (the peer). */
    blas_ctx bc;
    memset(&bc, 0, sizeof bc);
    bc.n = n;
    bc.k = k;
    bc.m = m;
    const size_t hw_bytes = (size_t)(n * k) * 2;
    const int hcopies = copies_for(hw_bytes, ctx->l2_factor);
    void *hx = NULL, *hy = NULL;
    int ok = 0;
    if (cublasCreate(&bc.h) != CUBLAS_STATUS_SUCCESS) {
        snprintf(ctx->why, sizeof ctx->why, "cublasCreate failed");
        return 0;
    }
    for (int i = 0; i < hcopies; i++) {
        void *p;
        CK(cudaMalloc(&p, hw_bytes));
        bc.w[i] = p;
        CK(cudaMemset(p, 0x11, hw_bytes));
    }
    CK(cudaMalloc(&hx, (size_t)(m * k) * 2));
    CK(cudaMemset(hx, 0x22, (size_t)(m * k) * 2));
    CK(cudaMalloc(&hy, (size_t)(m * n) * 2));
    bc.x = hx;
    bc.y = hy;
    const float t = time_calls(call_cublas, &bc, hcopies, iters);
    if (t > 0) {
        ctx->cublas_us = t * 1e3;
        ctx->cublas_gbps = (double)(hw_bytes + (size_t)(m * k + m * n) * 2) / (t * 1e-3) * 1e-9;
        ok = 1;
    }
fail:
    for (int i = 0; i < hcopies; i++)
        cudaFree((void *)bc.w[i]);
    cudaFree(hx);
    cudaFree(hy);
    cublasDestroy(bc.h);
    if (!ok) {
        snprintf(ctx->why, sizeof ctx->why, "the cuBLAS peer measurement failed");
        return 0;
    }
    ctx->available = 1;
    return 0;
}

/* ---- The qmv kernels -------------------------------------------------------------------------- */

typedef struct {
    qmv_qmatrix w[MAX_COPIES];
    qmv_vectors v;
    qmv_cuda_options opt;
} qmv_ctx;

static int call_qmv(void *p, int copy)
{
    qmv_ctx *c = p;
    qmv_status st = qmv_cuda_qmv(&c->w[copy], &c->v, &c->opt, NULL);
    if (st != QMV_STATUS_OK) {
        cli_qmv_error("qmv_cuda_qmv", st);
        return -1;
    }
    return 0;
}

int bench_cuda_case_run(const bench_cuda_ctx *ctx, const bench_cuda_case *c,
                        bench_cuda_result res[2])
{
    memset(res, 0, 2 * sizeof *res);
    const size_t wbytes = c->packed_bytes + c->scales_bytes + c->biases_bytes;
    const int copies = copies_for(wbytes, ctx->l2_factor);
    qmv_ctx *qc = calloc(1, sizeof *qc);
    unsigned char *ygpu = malloc(c->y_bytes);
    void *dx = NULL, *dy = NULL, *dg = NULL;
    int n_alloc = 0, rc = CLI_ERROR;
    if (!qc || !ygpu) {
        cli_error("out of memory");
        goto fail;
    }
    CK(cudaMalloc(&dx, c->x_bytes));
    CK(cudaMemcpy(dx, c->x, c->x_bytes, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&dy, c->y_bytes));
    if (c->global_scale) {
        CK(cudaMalloc(&dg, sizeof(float)));
        CK(cudaMemcpy(dg, c->global_scale, sizeof(float), cudaMemcpyHostToDevice));
    }
    for (int i = 0; i < copies; i++) {
        void *dp = NULL, *ds = NULL, *db = NULL;
        CK(cudaMalloc(&dp, c->packed_bytes));
        qc->w[i].packed = dp; /* recorded at once so that `fail` frees it */
        n_alloc = i + 1;
        CK(cudaMemcpy(dp, c->packed, c->packed_bytes, cudaMemcpyHostToDevice));
        CK(cudaMalloc(&ds, c->scales_bytes));
        qc->w[i].scales = ds;
        CK(cudaMemcpy(ds, c->scales, c->scales_bytes, cudaMemcpyHostToDevice));
        if (c->biases) {
            CK(cudaMalloc(&db, c->biases_bytes));
            qc->w[i].biases = db;
            CK(cudaMemcpy(db, c->biases, c->biases_bytes, cudaMemcpyHostToDevice));
        }
        qmv_qmatrix_dense(&c->fmt, c->scale_dtype, c->n, c->k, dp, ds, db, &qc->w[i]);
        qc->w[i].global_scale = dg;
    }
    qc->v = (qmv_vectors){.batch = 1,
                          .m = c->m,
                          .x_dtype = c->x_dtype,
                          .x = dx,
                          .x_bytes = c->x_bytes,
                          .x_row_stride = c->k,
                          .y_dtype = c->x_dtype,
                          .y = dy,
                          .y_bytes = c->y_bytes,
                          .y_row_stride = c->n};
    static const qmv_cuda_kernel kernels[2] = {QMV_CUDA_KERNEL_QMV, QMV_CUDA_KERNEL_FP_QMV};
    for (int ki = 0; ki < 2; ki++) {
        bench_cuda_result *r = &res[ki];
        r->kernel = ki == 0 ? "qmv" : "fp_qmv";
        qc->opt = (qmv_cuda_options)QMV_CUDA_OPTIONS_INIT;
        qc->opt.kernel = kernels[ki];
        /* A kernel that cannot run this case says UNSUPPORTED before enqueuing anything. */
        CK(cudaMemset(dy, 0xA5, c->y_bytes)); /* stale bits must not pass */
        qmv_status st = qmv_cuda_qmv(&qc->w[0], &qc->v, &qc->opt, NULL);
        if (st == QMV_STATUS_UNSUPPORTED)
            continue;
        if (st != QMV_STATUS_OK) {
            cli_qmv_error("qmv_cuda_qmv", st);
            goto fail;
        }
        CK(cudaDeviceSynchronize());
        CK(cudaMemcpy(ygpu, dy, c->y_bytes, cudaMemcpyDeviceToHost));
        int exact = memcmp(ygpu, c->y_ref, c->y_bytes) == 0;
        const float t = time_calls(call_qmv, qc, copies, ctx->iters);
        const float ts = time_stream(call_qmv, qc, copies, 1000);
        if (t <= 0 || ts <= 0)
            goto fail;
        /* The timed calls' last output is checked too (every copy holds the same data). */
        CK(cudaMemcpy(ygpu, dy, c->y_bytes, cudaMemcpyDeviceToHost));
        exact &= memcmp(ygpu, c->y_ref, c->y_bytes) == 0;
        const double bytes = (double)(wbytes + c->x_bytes + c->y_bytes);
        r->supported = 1;
        r->median_us = t * 1e3;
        r->stream_us = ts * 1e3;
        r->gbps = bytes / (t * 1e-3) * 1e-9;
        r->of_copy = bytes / (t * 1e-3) / ctx->copy_bw;
        r->vs_cublas = ctx->cublas_us / r->median_us;
        r->copies = copies;
        r->exact = exact;
    }
    rc = CLI_OK;
fail:
    if (qc) {
        for (int i = 0; i < n_alloc; i++) {
            cudaFree((void *)qc->w[i].packed);
            cudaFree((void *)qc->w[i].scales);
            cudaFree((void *)qc->w[i].biases);
        }
    }
    cudaFree(dx);
    cudaFree(dy);
    cudaFree(dg);
    free(qc);
    free(ygpu);
    return rc;
}
