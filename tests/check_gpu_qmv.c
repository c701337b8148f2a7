/*
 * check_gpu_qmv.c - the CUDA qmv against the CPU reference, bit for bit (memcmp), over the
 * property grid: every mode and bit width, group sizes, x/y/scale dtypes, M = 1..9, N in
 * {1, 3, 67, 4096}, K tails, batches with shared and per-item W, padded strides, the nvfp4
 * global scale; poisoned outputs prove every element is written and padding is not; invalid
 * arguments are rejected before launch; a call is captured into a CUDA graph and replayed.
 *
 * Without a CUDA device the program prints why and exits 77, which ctest reports as skipped.
 * Check runs in no-fork mode: a forked child cannot use the parent's CUDA context.
 */
#include <check.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "qmv.h"
#include "qmv_cuda.h"

#define CUDA_OK(expr) ck_assert_int_eq((int)(expr), (int)cudaSuccess)

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}
static float rndf(void) /* uniform in [-1, 1) */
{
    return (float)((int32_t)rnd() >> 8) / 8388608.0f;
}

typedef struct {
    qmv_format fmt;
    qmv_dtype sdt, xdt, ydt;
    int64_t n, k, m, batch;
    int shared_w;   /* W batch strides 0 */
    int pad;        /* extra elements at the end of every row and batch item */
    int use_global; /* nvfp4 global scale */
    int x_bcast;    /* x batch stride 0 */
} gcase;

static void *dev_copy(const void *h, size_t n)
{
    void *d = NULL;
    CUDA_OK(cudaMalloc(&d, n ? n : 1));
    if (n)
        CUDA_OK(cudaMemcpy(d, h, n, cudaMemcpyHostToDevice));
    return d;
}

/* Builds a random problem, runs the CPU reference and the CUDA kernel with the given
 * options, and compares the whole output buffer (padding included) with memcmp. */
static void run_case(const gcase *c, const qmv_cuda_options *opt)
{
    const qmv_format *f = &c->fmt;
    qmv_layout l;
    ck_assert_int_eq(qmv_layout_query(f, c->sdt, c->n, c->k, &l), QMV_STATUS_OK);
    const int64_t wb = c->shared_w ? 1 : c->batch;
    const int64_t prs = l.words_per_row + c->pad, srs = l.groups_per_row + c->pad;
    const int64_t pbs = c->shared_w ? 0 : c->n * prs + c->pad;
    const int64_t sbs = c->shared_w ? 0 : c->n * srs + c->pad;
    const size_t pbytes = (size_t)((wb - 1) * pbs + c->n * prs) * 4;
    const size_t ssz = f->mode == QMV_MODE_AFFINE ? qmv_dtype_size(c->sdt) : 1;
    const size_t sbytes = (size_t)((wb - 1) * sbs + c->n * srs) * ssz;
    uint32_t *packed = malloc(pbytes);
    unsigned char *scales = malloc(sbytes), *biases = NULL;
    for (size_t i = 0; i < pbytes / 4; i++)
        packed[i] = rnd();
    for (size_t i = 0; i < sbytes / ssz; i++) {
        if (f->mode == QMV_MODE_AFFINE)
            qmvi_store(c->sdt, scales, (int64_t)i, rndf() * 0.05f);
        else if (f->mode == QMV_MODE_NVFP4)
            scales[i] = (unsigned char)(rnd() % 0x7F); /* finite E4M3 */
        else
            scales[i] = (unsigned char)(118 + rnd() % 16); /* 2^-9 .. 2^6 */
    }
    if (f->mode == QMV_MODE_AFFINE) {
        biases = malloc(sbytes);
        for (size_t i = 0; i < sbytes / ssz; i++)
            qmvi_store(c->sdt, biases, (int64_t)i, rndf());
    }
    const size_t xsz = qmv_dtype_size(c->xdt), ysz = qmv_dtype_size(c->ydt);
    const int64_t xrs = c->k + c->pad, xbs = c->x_bcast ? 0 : c->m * xrs + c->pad;
    const int64_t yrs = c->n + c->pad, ybs = c->m * yrs + c->pad;
    const size_t xbytes = (size_t)((c->x_bcast ? 0 : c->batch - 1) * xbs + c->m * xrs) * xsz;
    const size_t ybytes = (size_t)((c->batch - 1) * ybs + c->m * yrs) * ysz;
    unsigned char *x = malloc(xbytes);
    for (size_t i = 0; i < xbytes / xsz; i++)
        qmvi_store(c->xdt, x, (int64_t)i, rndf() * 2.0f);
    unsigned char *y_cpu = malloc(ybytes), *y_gpu = malloc(ybytes);
    memset(y_cpu, 0xA5, ybytes);
    memset(y_gpu, 0xA5, ybytes);
    float g = 1.75f;

    qmv_qmatrix w = {0};
    w.format = *f;
    w.scale_dtype = c->sdt;
    w.rows = c->n;
    w.k = c->k;
    w.packed = packed;
    w.packed_bytes = pbytes;
    w.packed_row_stride = prs;
    w.packed_batch_stride = pbs;
    w.scales = scales;
    w.scales_bytes = sbytes;
    w.biases = biases;
    w.biases_bytes = biases ? sbytes : 0;
    w.scales_row_stride = srs;
    w.scales_batch_stride = sbs;
    w.global_scale = c->use_global ? &g : NULL;
    qmv_vectors v = {c->batch, c->m, c->xdt, x, xbytes, xrs, xbs,
                     c->ydt, y_cpu, ybytes, yrs, ybs};
    ck_assert_msg(qmv_qmv_reference(&w, &v) == QMV_STATUS_OK, "reference: %s", qmv_last_error());

    qmv_qmatrix dw = w;
    dw.packed = dev_copy(packed, pbytes);
    dw.scales = dev_copy(scales, sbytes);
    dw.biases = biases ? dev_copy(biases, sbytes) : NULL;
    dw.global_scale = c->use_global ? dev_copy(&g, sizeof g) : NULL;
    qmv_vectors dv = v;
    dv.x = dev_copy(x, xbytes);
    dv.y = dev_copy(y_gpu, ybytes); /* poisoned */
    qmv_status st = qmv_cuda_qmv(&dw, &dv, opt, NULL);
    ck_assert_msg(st == QMV_STATUS_OK, "cuda: %s", qmv_last_error());
    CUDA_OK(cudaDeviceSynchronize());
    CUDA_OK(cudaMemcpy(y_gpu, dv.y, ybytes, cudaMemcpyDeviceToHost));
    if (memcmp(y_cpu, y_gpu, ybytes) != 0) {
        size_t i = 0;
        while (i < ybytes && y_cpu[i] == y_gpu[i])
            i++;
        ck_abort_msg("%s bits %d g%d sdt %d x %d y %d n %lld k %lld m %lld L %lld shared %d pad %d "
                     "global %d: first differing byte %zu of %zu",
                     qmv_mode_name(f->mode), f->bits, f->group_size, c->sdt, c->xdt, c->ydt,
                     (long long)c->n, (long long)c->k, (long long)c->m, (long long)c->batch,
                     c->shared_w, c->pad, c->use_global, i, ybytes);
    }
    cudaFree((void *)dw.packed);
    cudaFree((void *)dw.scales);
    cudaFree((void *)dw.biases);
    cudaFree((void *)dw.global_scale);
    cudaFree((void *)dv.x);
    cudaFree(dv.y);
    free(packed);
    free(scales);
    free(biases);
    free(x);
    free(y_cpu);
    free(y_gpu);
}

static const qmv_format formats[] = {
    {QMV_MODE_AFFINE, 2, 32},  {QMV_MODE_AFFINE, 3, 64}, {QMV_MODE_AFFINE, 4, 64},
    {QMV_MODE_AFFINE, 4, 128}, {QMV_MODE_AFFINE, 5, 32}, {QMV_MODE_AFFINE, 6, 128},
    {QMV_MODE_AFFINE, 8, 64},  {QMV_MODE_MXFP4, 4, 32},  {QMV_MODE_NVFP4, 4, 16},
    {QMV_MODE_MXFP8, 8, 32},
};
#define NFORMATS ((int)(sizeof formats / sizeof formats[0]))

/* Every format x every x/y dtype, with K spanning several 128-chunk steps plus a tail. */
START_TEST(test_formats_dtypes)
{
    const qmv_format *f = &formats[_i];
    for (int xd = 0; xd < 3; xd++) {
        for (int yd = 0; yd < 3; yd++) {
            gcase c = {*f, (qmv_dtype)((xd + yd) % 3), (qmv_dtype)xd, (qmv_dtype)yd,
                       67, 128 * 32 * 2 + 2 * 128, 2, 1, 1, 0, 0, 0};
            run_case(&c, NULL);
        }
    }
}
END_TEST

/* M = 1..9 (one and two passes over the weights), small and large N, K tails. */
START_TEST(test_shapes)
{
    const qmv_format *f = &formats[_i];
    const int64_t ns[] = {1, 3, 67, 4096};
    const int64_t ks[] = {(int64_t)f->group_size, 128, 4096 + 128, 128 * 32 + 16 * 8};
    for (int64_t m = 1; m <= 9; m++) {
        for (int ni = 0; ni < 4; ni++) {
            const int64_t n = ns[ni];
            const int64_t k0 = ks[(m + ni) % 4];
            const int64_t k = (k0 + f->group_size - 1) / f->group_size * f->group_size;
            if (n == 4096 && (m > 2 || k > 256))
                continue; /* keep the CPU reference fast */
            gcase c = {*f, QMV_DTYPE_F16, QMV_DTYPE_BF16, QMV_DTYPE_F32, n, k, m, 1, 1, 0, 0, 0};
            run_case(&c, NULL);
        }
    }
    if (f->mode == QMV_MODE_NVFP4) { /* K % 32 = 16: a half chunk at the end */
        gcase c = {*f, QMV_DTYPE_F32, QMV_DTYPE_F32, QMV_DTYPE_F16, 5, 48, 3, 1, 1, 0, 0, 0};
        run_case(&c, NULL);
        c.k = 128 * 32 + 16;
        run_case(&c, NULL);
    }
}
END_TEST

/* Batches with shared and per-item W, padded strides, broadcast x, global scale. */
START_TEST(test_batch_strides)
{
    const qmv_format *f = &formats[_i];
    for (int shared = 0; shared < 2; shared++) {
        for (int pad = 0; pad < 2; pad++) {
            gcase c = {*f, QMV_DTYPE_BF16, QMV_DTYPE_F16, QMV_DTYPE_BF16, 35, 512, 3, 3,
                       shared, pad ? 3 : 0, f->mode == QMV_MODE_NVFP4, pad};
            run_case(&c, NULL);
            qmv_cuda_options o = QMV_CUDA_OPTIONS_INIT;
            o.kernel = QMV_CUDA_KERNEL_QMV;
            run_case(&c, &o);
        }
    }
}
END_TEST

/* Non-finite results are written as the canonical NaN. */
START_TEST(test_nan_canonical)
{
    const qmv_format f = {QMV_MODE_MXFP8, 8, 32};
    for (int yd = 0; yd < 3; yd++) {
        gcase c = {f, QMV_DTYPE_F32, QMV_DTYPE_F32, (qmv_dtype)yd, 64, 256, 2, 1, 1, 0, 0, 0};
        /* Random mxfp8 codes include 0x7F / 0xFF (NaN): most outputs are NaN. */
        run_case(&c, NULL);
    }
}
END_TEST

/* Bad arguments are rejected on the host, before any launch, and write nothing. */
START_TEST(test_invalid_arguments)
{
    const qmv_format f = {QMV_MODE_MXFP4, 4, 32};
    uint32_t *dp;
    unsigned char *ds;
    float *dx, *dy;
    CUDA_OK(cudaMalloc((void **)&dp, 64 * 16 * 4));
    CUDA_OK(cudaMalloc((void **)&ds, 64 * 4));
    CUDA_OK(cudaMalloc((void **)&dx, 128 * 4));
    CUDA_OK(cudaMalloc((void **)&dy, 64 * 4));
    CUDA_OK(cudaMemset(dy, 0xA5, 64 * 4));
    qmv_qmatrix w;
    ck_assert_int_eq(qmv_qmatrix_dense(&f, QMV_DTYPE_F32, 64, 128, dp, ds, NULL, &w),
                     QMV_STATUS_OK);
    qmv_vectors v = {1, 1, QMV_DTYPE_F32, dx, 128 * 4, 128, 0, QMV_DTYPE_F32, dy, 64 * 4, 64, 0};
    qmv_vectors bad = v;
    bad.y_bytes = 64 * 4 - 1;
    ck_assert_int_eq(qmv_cuda_qmv(&w, &bad, NULL, NULL), QMV_STATUS_BUFFER_TOO_SMALL);
    bad = v;
    bad.m = 0;
    ck_assert_int_eq(qmv_cuda_qmv(&w, &bad, NULL, NULL), QMV_STATUS_INVALID_ARGUMENT);
    qmv_qmatrix wb = w;
    wb.format.group_size = 64;
    ck_assert_int_eq(qmv_cuda_qmv(&wb, &v, NULL, NULL), QMV_STATUS_UNSUPPORTED);
    wb = w;
    wb.scales_bytes -= 1;
    ck_assert_int_eq(qmv_cuda_qmv(&wb, &v, NULL, NULL), QMV_STATUS_BUFFER_TOO_SMALL);
    qmv_cuda_options o = QMV_CUDA_OPTIONS_INIT;
    o.kernel = (qmv_cuda_kernel)99;
    ck_assert_int_eq(qmv_cuda_qmv(&w, &v, &o, NULL), QMV_STATUS_INVALID_ARGUMENT);
    ck_assert_str_ne(qmv_last_error(), "");
    CUDA_OK(cudaDeviceSynchronize());
    unsigned char host[64 * 4];
    CUDA_OK(cudaMemcpy(host, dy, sizeof host, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < sizeof host; i++)
        ck_assert_uint_eq(host[i], 0xA5);
    cudaFree(dp);
    cudaFree(ds);
    cudaFree(dx);
    cudaFree(dy);
}
END_TEST

/* The call works inside stream capture: no allocation, sync or host read of device memory. */
START_TEST(test_graph_capture)
{
    const qmv_format f = {QMV_MODE_NVFP4, 4, 16};
    const int64_t n = 256, k = 1024;
    qmv_layout l;
    ck_assert_int_eq(qmv_layout_query(&f, QMV_DTYPE_F32, n, k, &l), QMV_STATUS_OK);
    uint32_t *hp = malloc(l.packed_bytes);
    unsigned char *hs = malloc(l.scales_bytes);
    float *hx = malloc(k * 4), *y_cpu = malloc(n * 4), *y_gpu = malloc(n * 4);
    for (size_t i = 0; i < l.packed_bytes / 4; i++)
        hp[i] = rnd();
    for (size_t i = 0; i < l.scales_bytes; i++)
        hs[i] = (unsigned char)(rnd() % 0x7F);
    for (int64_t i = 0; i < k; i++)
        hx[i] = rndf();
    float g = 3.0f;
    qmv_qmatrix w;
    ck_assert_int_eq(qmv_qmatrix_dense(&f, QMV_DTYPE_F32, n, k, hp, hs, NULL, &w), QMV_STATUS_OK);
    w.global_scale = &g;
    qmv_vectors v = {1, 1, QMV_DTYPE_F32, hx, k * 4, k, 0, QMV_DTYPE_F32, y_cpu, n * 4, n, 0};
    ck_assert_int_eq(qmv_qmv_reference(&w, &v), QMV_STATUS_OK);

    qmv_qmatrix dw = w;
    dw.packed = dev_copy(hp, l.packed_bytes);
    dw.scales = dev_copy(hs, l.scales_bytes);
    dw.global_scale = dev_copy(&g, 4);
    qmv_vectors dv = v;
    dv.x = dev_copy(hx, k * 4);
    CUDA_OK(cudaMalloc(&dv.y, n * 4));
    CUDA_OK(cudaMemset(dv.y, 0, n * 4));
    cudaStream_t s;
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CUDA_OK(cudaStreamCreate(&s));
    CUDA_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    ck_assert_int_eq(qmv_cuda_qmv(&dw, &dv, NULL, s), QMV_STATUS_OK);
    CUDA_OK(cudaStreamEndCapture(s, &graph));
    CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
    CUDA_OK(cudaGraphLaunch(exec, s));
    CUDA_OK(cudaStreamSynchronize(s));
    CUDA_OK(cudaMemcpy(y_gpu, dv.y, n * 4, cudaMemcpyDeviceToHost));
    ck_assert(memcmp(y_cpu, y_gpu, n * 4) == 0);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(s);
    cudaFree((void *)dw.packed);
    cudaFree((void *)dw.scales);
    cudaFree((void *)dw.global_scale);
    cudaFree((void *)dv.x);
    cudaFree(dv.y);
    free(hp);
    free(hs);
    free(hx);
    free(y_cpu);
    free(y_gpu);
}
END_TEST

int main(void)
{
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices < 1) {
        printf("SKIP: no CUDA device available, the GPU tests did not run\n");
        return 77;
    }
    Suite *s = suite_create("gpu_qmv");
    TCase *tc = tcase_create("qmv");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_formats_dtypes, 0, NFORMATS);
    tcase_add_loop_test(tc, test_shapes, 0, NFORMATS);
    tcase_add_loop_test(tc, test_batch_strides, 0, NFORMATS);
    tcase_add_test(tc, test_nan_canonical);
    tcase_add_test(tc, test_invalid_arguments);
    tcase_add_test(tc, test_graph_capture);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
