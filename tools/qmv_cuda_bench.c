/*
 * qmv_cuda_bench - benchmark-and-verify run of the CUDA qmv (until the qmv CLI lands).
 *
 * For each mode and x dtype: the median kernel time over many calls (CUDA events around each
 * call), rotating over enough weight copies (at least 4) that the L2 cache cannot hold them;
 * the effective bandwidth bytes(x + packed + scales + biases + y) / time; its ratio to the
 * device-to-device copy bandwidth measured in the same process; the stream-launched time per
 * call of back-to-back launches; cuBLAS's fp16 GEMV of the same shape as the peer; and a
 * memcmp of the GPU result against the CPU reference. Table on stdout, --json for JSON.
 * Exit status: 0 when every result matched, 1 on a mismatch, 2 on a usage or runtime error.
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmv.h"
#include "qmv_cuda.h"

#define CK(expr)                                                                           \
    do {                                                                                   \
        cudaError_t e_ = (expr);                                                           \
        if (e_ != cudaSuccess) {                                                           \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr,                 \
                    cudaGetErrorString(e_));                                               \
            exit(2);                                                                       \
        }                                                                                  \
    } while (0)

typedef struct {
    int64_t n, k, m;
    int iters, json;
    double l2_factor;
} opts;

static uint64_t rng = 0x243F6A8885A308D3ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static float median(float *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_float);
    return n % 2 ? v[n / 2] : 0.5f * (v[n / 2 - 1] + v[n / 2]);
}

/* Device-to-device copy bandwidth (bytes read + written per second) of a 1 GiB copy. */
static double copy_bandwidth(void)
{
    const size_t bytes = (size_t)1 << 30;
    void *a, *b;
    CK(cudaMalloc(&a, bytes));
    CK(cudaMalloc(&b, bytes));
    CK(cudaMemset(a, 1, bytes));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    float t[20];
    for (int i = 0; i < 22; i++) {
        CK(cudaEventRecord(e0, 0));
        CK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, 0));
        CK(cudaEventRecord(e1, 0));
        CK(cudaEventSynchronize(e1));
        if (i >= 2)
            CK(cudaEventElapsedTime(&t[i - 2], e0, e1));
    }
    cudaFree(a);
    cudaFree(b);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return 2.0 * (double)bytes / (median(t, 20) * 1e-3);
}

typedef struct {
    const char *name;
    qmv_format fmt;
} bcase;

/* Times `calls` calls of fn over rotating copies; returns the median per-call time in ms. */
typedef void (*call_fn)(void *ctx, int copy);
static float time_calls(call_fn fn, void *ctx, int copies, int iters)
{
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    float *t = malloc(sizeof(float) * (size_t)iters);
    for (int i = 0; i < copies; i++) /* warm up */
        fn(ctx, i);
    for (int i = 0; i < iters; i++) {
        CK(cudaEventRecord(e0, 0));
        fn(ctx, i % copies);
        CK(cudaEventRecord(e1, 0));
        CK(cudaEventSynchronize(e1));
        CK(cudaEventElapsedTime(&t[i], e0, e1));
    }
    float m = median(t, iters);
    free(t);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return m;
}

/* Mean time per call of `calls` back-to-back launches (launch overhead included). */
static float time_stream(call_fn fn, void *ctx, int copies, int calls)
{
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    fn(ctx, 0);
    CK(cudaEventRecord(e0, 0));
    for (int i = 0; i < calls; i++)
        fn(ctx, i % copies);
    CK(cudaEventRecord(e1, 0));
    CK(cudaEventSynchronize(e1));
    float ms;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return ms / (float)calls;
}

typedef struct {
    qmv_qmatrix w[64];
    qmv_vectors v;
} qctx;

static void call_qmv(void *p, int copy)
{
    qctx *c = p;
    qmv_status st = qmv_cuda_qmv(&c->w[copy], &c->v, NULL, NULL);
    if (st != QMV_STATUS_OK) {
        fprintf(stderr, "qmv_cuda_qmv: %s\n", qmv_last_error());
        exit(2);
    }
}

typedef struct {
    cublasHandle_t h;
    const void *w[64]; /* float16 weights */
    const void *x;
    void *y;
    int64_t n, k, m;
} bctx;

static void call_cublas(void *p, int copy)
{
    bctx *c = p;
    const float one = 1.0f, zero = 0.0f;
    /* y[m][n] = sum_k W[n][k] x[m][k]: column-major W^T (k x n) times x (k x m). */
    cublasStatus_t st = cublasGemmEx(c->h, CUBLAS_OP_T, CUBLAS_OP_N, (int)c->n, (int)c->m,
                                     (int)c->k, &one, c->w[copy], CUDA_R_16F, (int)c->k, c->x,
                                     CUDA_R_16F, (int)c->k, &zero, c->y, CUDA_R_16F, (int)c->n,
                                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "cublasGemmEx failed: %d\n", (int)st);
        exit(2);
    }
}

static int copies_for(size_t bytes, double l2_factor)
{
    int l2 = 0;
    CK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0));
    int c = (int)((double)l2 * l2_factor / (double)bytes) + 1;
    return c < 4 ? 4 : c > 64 ? 64 : c;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: qmv_cuda_bench [--n N] [--k K] [--m M] [--iters I] [--json]\n"
               "  defaults: N = K = 16384, M = 1, 200 timed calls per case\n");
}

int main(int argc, char **argv)
{
    opts o = {16384, 16384, 1, 200, 0, 4.0};
    static const struct option lo[] = {{"n", 1, 0, 'n'},    {"k", 1, 0, 'k'},
                                       {"m", 1, 0, 'm'},    {"iters", 1, 0, 'i'},
                                       {"json", 0, 0, 'j'}, {"help", 0, 0, 'h'},
                                       {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'n': o.n = atoll(optarg); break;
        case 'k': o.k = atoll(optarg); break;
        case 'm': o.m = atoll(optarg); break;
        case 'i': o.iters = atoi(optarg); break;
        case 'j': o.json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (o.n < 1 || o.k < 128 || o.k % 128 || o.m < 1 || o.iters < 1) {
        usage(stderr);
        return 2;
    }
    int dev = 0;
    struct cudaDeviceProp prop;
    if (cudaGetDeviceCount(&dev) != cudaSuccess || dev < 1) {
        fprintf(stderr, "qmv_cuda_bench: no CUDA device\n");
        return 2;
    }
    CK(cudaGetDeviceProperties(&prop, 0));
    const double copy_bw = copy_bandwidth();
    const bcase cases[] = {
        {"mxfp4", {QMV_MODE_MXFP4, 4, 32}},     {"nvfp4", {QMV_MODE_NVFP4, 4, 16}},
        {"affine4g64", {QMV_MODE_AFFINE, 4, 64}}, {"affine8g64", {QMV_MODE_AFFINE, 8, 64}},
        {"mxfp8", {QMV_MODE_MXFP8, 8, 32}},
    };
    const qmv_dtype xdts[] = {QMV_DTYPE_F16, QMV_DTYPE_BF16};
    const int64_t n = o.n, k = o.k, m = o.m;
    int mismatches = 0;

    /* cuBLAS fp16 GEMV of the same shape (the peer). */
    bctx bc = {0};
    bc.n = n;
    bc.k = k;
    bc.m = m;
    const size_t hw_bytes = (size_t)(n * k) * 2;
    const int hcopies = copies_for(hw_bytes, o.l2_factor);
    if (cublasCreate(&bc.h) != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "cublasCreate failed\n");
        return 2;
    }
    for (int i = 0; i < hcopies; i++) {
        void *p;
        CK(cudaMalloc(&p, hw_bytes));
        CK(cudaMemset(p, 0x11, hw_bytes));
        bc.w[i] = p;
    }
    void *hx, *hy;
    CK(cudaMalloc(&hx, (size_t)(m * k) * 2));
    CK(cudaMemset(hx, 0x22, (size_t)(m * k) * 2));
    CK(cudaMalloc(&hy, (size_t)(m * n) * 2));
    bc.x = hx;
    bc.y = hy;
    const float t_cublas = time_calls(call_cublas, &bc, hcopies, o.iters);
    const double cublas_bw = (double)(hw_bytes + (size_t)(m * k + m * n) * 2) / (t_cublas * 1e-3);
    for (int i = 0; i < hcopies; i++)
        cudaFree((void *)bc.w[i]);
    cudaFree(hx);
    cudaFree(hy);
    cublasDestroy(bc.h);

    if (o.json)
        printf("{\"context\": {\"gpu\": \"%s\", \"sms\": %d, \"copy_gbps\": %.1f, \"library\": "
               "\"%s\", \"order\": %u, \"n\": %lld, \"k\": %lld, \"m\": %lld, \"iters\": %d, "
               "\"cublas_f16_us\": %.2f, \"cublas_f16_gbps\": %.1f},\n \"results\": [",
               prop.name, prop.multiProcessorCount, copy_bw / 1e9, qmv_version_string(),
               qmv_order_version(), (long long)n, (long long)k, (long long)m, o.iters,
               t_cublas * 1e3, cublas_bw / 1e9);
    else
        printf("# %s (%d SMs), copy bandwidth %.1f GB/s; N=%lld K=%lld M=%lld; cuBLAS fp16 "
               "GEMV %.2f us (%.1f GB/s)\n%-11s %-8s %10s %10s %9s %8s %10s %s\n",
               prop.name, prop.multiProcessorCount, copy_bw / 1e9, (long long)n, (long long)k,
               (long long)m, t_cublas * 1e3, cublas_bw / 1e9, "mode", "x", "median_us",
               "GB/s", "of_copy", "copies", "stream_us", "vs_cuBLAS  exact");

    int first = 1;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        for (int xi = 0; xi < 2; xi++) {
            const qmv_format *f = &cases[ci].fmt;
            const qmv_dtype xdt = xdts[xi], sdt = xdt;
            qmv_layout l;
            if (qmv_layout_query(f, sdt, n, k, &l) != QMV_STATUS_OK) {
                fprintf(stderr, "layout: %s\n", qmv_last_error());
                return 2;
            }
            /* Random codes and sane scales, built on the host once and copied. */
            uint32_t *hp = malloc(l.packed_bytes);
            unsigned char *hs = malloc(l.scales_bytes), *hb = NULL;
            for (size_t i = 0; i < l.packed_bytes / 4; i++)
                hp[i] = rnd();
            const size_t ngroups = (size_t)(n * l.groups_per_row);
            for (size_t i = 0; i < ngroups; i++) {
                if (f->mode == QMV_MODE_AFFINE) {
                    float s = 0.01f + (float)(rnd() % 100) * 1e-4f;
                    qmv_convert(QMV_DTYPE_F32, &s, 4, sdt, hs + i * 2, 2, 1);
                } else {
                    hs[i] = f->mode == QMV_MODE_NVFP4 ? (unsigned char)(0x20 + rnd() % 24)
                                                      : (unsigned char)(120 + rnd() % 6);
                }
            }
            if (l.biases_bytes) {
                hb = malloc(l.biases_bytes);
                for (size_t i = 0; i < ngroups; i++) {
                    float b = -0.1f * (float)(rnd() % 10);
                    qmv_convert(QMV_DTYPE_F32, &b, 4, sdt, hb + i * 2, 2, 1);
                }
            }
            const size_t xsz = (size_t)(m * k) * 2, ysz = (size_t)(m * n) * 2;
            unsigned char *hxv = malloc(xsz);
            for (int64_t i = 0; i < m * k; i++) {
                float v = (float)((int)(rnd() % 2001) - 1000) * 1e-3f;
                qmv_convert(QMV_DTYPE_F32, &v, 4, xdt, hxv + i * 2, 2, 1);
            }
            const size_t wbytes = l.packed_bytes + l.scales_bytes + l.biases_bytes;
            const int copies = copies_for(wbytes, o.l2_factor);
            qctx qc;
            void *dx, *dy;
            CK(cudaMalloc(&dx, xsz));
            CK(cudaMemcpy(dx, hxv, xsz, cudaMemcpyHostToDevice));
            CK(cudaMalloc(&dy, ysz));
            for (int c = 0; c < copies; c++) {
                void *dp, *ds, *db = NULL;
                CK(cudaMalloc(&dp, l.packed_bytes));
                CK(cudaMemcpy(dp, hp, l.packed_bytes, cudaMemcpyHostToDevice));
                CK(cudaMalloc(&ds, l.scales_bytes));
                CK(cudaMemcpy(ds, hs, l.scales_bytes, cudaMemcpyHostToDevice));
                if (hb) {
                    CK(cudaMalloc(&db, l.biases_bytes));
                    CK(cudaMemcpy(db, hb, l.biases_bytes, cudaMemcpyHostToDevice));
                }
                qmv_qmatrix_dense(f, sdt, n, k, dp, ds, db, &qc.w[c]);
            }
            qmv_vectors v = {1, m, xdt, dx, xsz, k, 0, QMV_DTYPE_F16, dy, ysz, n, 0};
            v.y_dtype = xdt;
            qc.v = v;
            const float t = time_calls(call_qmv, &qc, copies, o.iters);
            const float ts = time_stream(call_qmv, &qc, copies, 1000);
            const double bytes = (double)(wbytes + xsz + ysz);
            const double bw = bytes / (t * 1e-3);

            /* Verify the last call's output (copy 0's data are identical) against the CPU. */
            call_qmv(&qc, 0);
            unsigned char *ygpu = malloc(ysz), *ycpu = malloc(ysz);
            CK(cudaMemcpy(ygpu, dy, ysz, cudaMemcpyDeviceToHost));
            qmv_qmatrix hw;
            qmv_qmatrix_dense(f, sdt, n, k, hp, hs, hb, &hw);
            qmv_vectors hv = v;
            hv.x = hxv;
            hv.y = ycpu;
            int exact = -1;
            if (qmv_qmv(&hw, &hv, NULL) == QMV_STATUS_OK)
                exact = memcmp(ycpu, ygpu, ysz) == 0;
            if (exact != 1)
                mismatches++;

            if (o.json)
                printf("%s\n  {\"mode\": \"%s\", \"x\": \"%s\", \"median_us\": %.2f, \"gbps\": %.1f, "
                       "\"of_copy\": %.4f, \"copies\": %d, \"stream_us\": %.2f, "
                       "\"speedup_vs_cublas\": %.2f, \"exact\": %s}",
                       first ? "" : ",", cases[ci].name, qmv_dtype_name(xdt), t * 1e3,
                       bw / 1e9, bw / copy_bw, copies, ts * 1e3, t_cublas / t,
                       exact == 1 ? "true" : "false");
            else
                printf("%-11s %-8s %10.2f %10.1f %8.1f%% %8d %10.2f %8.2fx  %s\n",
                       cases[ci].name, qmv_dtype_name(xdt), t * 1e3, bw / 1e9,
                       100.0 * bw / copy_bw, copies, ts * 1e3, t_cublas / t,
                       exact == 1 ? "yes" : "NO");
            first = 0;
            fflush(stdout);
            for (int c = 0; c < copies; c++) {
                cudaFree((void *)qc.w[c].packed);
                cudaFree((void *)qc.w[c].scales);
                cudaFree((void *)qc.w[c].biases);
            }
            cudaFree(dx);
            cudaFree(dy);
            free(hp);
            free(hs);
            free(hb);
            free(hxv);
            free(ygpu);
            free(ycpu);
        }
    }
    if (o.json)
        printf("\n]}\n");
    return mismatches ? 1 : 0;
}
