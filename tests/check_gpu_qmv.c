/*
 * check_gpu_qmv.c - the CUDA qmv against the CPU reference, bit for bit (memcmp), over the
 * property grid: every mode and bit width, group sizes, x/y/scale dtypes, M = 1..9, N in
 * {1, 3, 67, 4096}, K tails, batches with shared and per-item W, padded strides, the nvfp4
 * global scale; poisoned outputs prove every element is written and padding is not; invalid
 * arguments are rejected before launch; a call is captured into a CUDA graph and replayed.
 * Every case runs once per kernel (the library's choice, qmv, and fp_qmv where it applies), so
 * every dispatch choice is compared with the reference; kernel selection, the tuning call and
 * QMV_CUDA_KERNEL (ctest runs the "env" case again with the variable set) are checked too.
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

#include "qmv.h"
#include "qmv_cuda.h"
#include "test_util.h"

#define CUDA_OK(expr) ck_assert_int_eq((int)(expr), (int)cudaSuccess)

/* One stream for the whole program (Check runs the tests in order, without forking). */
static tu_rng rng = {0x9E3779B97F4A7C15ull};
static uint32_t rnd(void)
{
    return tu_u32(&rng);
}
static float rndf(void) /* uniform in [-1, 1), multiples of 2^-23 */
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
    int x_bits;     /* x from random finite bit patterns (huge, tiny, subnormal values) */
} gcase;

static int is_fp_mode(qmv_mode m)
{
    return m == QMV_MODE_MXFP4 || m == QMV_MODE_NVFP4 || m == QMV_MODE_MXFP8;
}

/* A random finite value of dtype dt, from its bit patterns (every exponent equally likely). */
static void store_random_bits(qmv_dtype dt, void *x, int64_t i)
{
    const uint32_t emask = dt == QMV_DTYPE_F32   ? 0x7F800000u
                           : dt == QMV_DTYPE_F16 ? 0x7C00u
                                                 : 0x7F80u;
    uint32_t u;
    do
        u = dt == QMV_DTYPE_F32 ? rnd() : (rnd() & 0xFFFFu);
    while ((u & emask) == emask);
    tu_store_bits(dt, x, i, u);
}

static void *dev_copy(const void *h, size_t n)
{
    void *d = NULL;
    CUDA_OK(cudaMalloc(&d, n ? n : 1));
    if (n)
        CUDA_OK(cudaMemcpy(d, h, n, cudaMemcpyHostToDevice));
    return d;
}

/* Builds a random problem, runs the CPU reference, then the CUDA call once per kernel (AUTO,
 * QMV and, for fp modes whose K fits, FP_QMV), comparing the whole output buffer (padding
 * included) byte for byte each time. */
static void run_case(const gcase *c)
{
    const qmv_format *f = &c->fmt;
    qmv_layout l;
    ck_assert_int_eq(qmv_layout_query(f, c->sdt, c->n, c->k, &l), QMV_STATUS_OK);
    const int64_t wb = c->shared_w ? 1 : c->batch;
    const int64_t prs = l.words_per_row + c->pad, srs = l.groups_per_row + c->pad;
    const int64_t pbs = c->shared_w ? 0 : c->n * prs + c->pad;
    const int64_t sbs = c->shared_w ? 0 : c->n * srs + c->pad;
    const size_t pbytes = (size_t)((wb - 1) * pbs + c->n * prs) * 4;
    const size_t ssz = f->mode == QMV_MODE_AFFINE ? tu_dsize(c->sdt) : 1;
    const size_t sbytes = (size_t)((wb - 1) * sbs + c->n * srs) * ssz;
    uint32_t *packed = tu_malloc(pbytes);
    unsigned char *scales = tu_malloc(sbytes), *biases = NULL;
    for (size_t i = 0; i < pbytes / 4; i++)
        packed[i] = rnd();
    for (size_t i = 0; i < sbytes / ssz; i++) {
        if (f->mode == QMV_MODE_AFFINE)
            tu_store(c->sdt, scales, (int64_t)i, rndf() * 0.05f);
        else if (f->mode == QMV_MODE_NVFP4)
            scales[i] = (unsigned char)(rnd() % 0x7F); /* finite E4M3 */
        else
            scales[i] = (unsigned char)(118 + rnd() % 16); /* 2^-9 .. 2^6 */
    }
    if (f->mode == QMV_MODE_AFFINE) {
        biases = tu_malloc(sbytes);
        for (size_t i = 0; i < sbytes / ssz; i++)
            tu_store(c->sdt, biases, (int64_t)i, rndf());
    }
    const size_t xsz = tu_dsize(c->xdt), ysz = tu_dsize(c->ydt);
    const int64_t xrs = c->k + c->pad, xbs = c->x_bcast ? 0 : c->m * xrs + c->pad;
    const int64_t yrs = c->n + c->pad, ybs = c->m * yrs + c->pad;
    const size_t xbytes = (size_t)((c->x_bcast ? 0 : c->batch - 1) * xbs + c->m * xrs) * xsz;
    const size_t ybytes = (size_t)((c->batch - 1) * ybs + c->m * yrs) * ysz;
    unsigned char *x = tu_malloc(xbytes);
    for (size_t i = 0; i < xbytes / xsz; i++) {
        if (c->x_bits)
            store_random_bits(c->xdt, x, (int64_t)i);
        else
            tu_store(c->xdt, x, (int64_t)i, rndf() * 2.0f);
    }
    unsigned char *y_cpu = tu_malloc(ybytes), *y_gpu = tu_malloc(ybytes);
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
    dv.y = dev_copy(y_gpu, ybytes);
    const qmv_cuda_kernel kernels[] = {QMV_CUDA_KERNEL_AUTO, QMV_CUDA_KERNEL_QMV,
                                       QMV_CUDA_KERNEL_FP_QMV};
    for (int ki = 0; ki < 3; ki++) {
        qmv_cuda_options opt = QMV_CUDA_OPTIONS_INIT;
        opt.kernel = kernels[ki];
        if (opt.kernel == QMV_CUDA_KERNEL_FP_QMV && !is_fp_mode(f->mode)) {
            ck_assert_int_eq(qmv_cuda_qmv(&dw, &dv, &opt, NULL), QMV_STATUS_UNSUPPORTED);
            continue;
        }
        CUDA_OK(cudaMemset(dv.y, 0xA5, ybytes)); /* poisoned */
        qmv_status st = qmv_cuda_qmv(&dw, &dv, &opt, NULL);
        ck_assert_msg(st == QMV_STATUS_OK, "cuda kernel %d: %s", (int)opt.kernel,
                      qmv_last_error());
        CUDA_OK(cudaDeviceSynchronize());
        CUDA_OK(cudaMemcpy(y_gpu, dv.y, ybytes, cudaMemcpyDeviceToHost));
        const long i = tu_first_diff(y_cpu, y_gpu, ybytes);
        if (i >= 0) {
            ck_abort_msg("kernel %d: %s bits %d g%d sdt %d x %d y %d n %lld k %lld m %lld L %lld "
                         "shared %d pad %d global %d xbits %d: first differing byte %ld of %zu",
                         (int)opt.kernel, qmv_mode_name(f->mode), f->bits, f->group_size, c->sdt,
                         c->xdt, c->ydt, (long long)c->n, (long long)c->k, (long long)c->m,
                         (long long)c->batch, c->shared_w, c->pad, c->use_global, c->x_bits, i,
                         ybytes);
        }
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
                       67, 128 * 32 * 2 + 2 * 128, 2, 1, 1, 0, 0, 0, 0};
            run_case(&c);
            if (yd == 0) { /* x over its whole finite range: fp_qmv's prescaling must hold */
                c.x_bits = 1;
                c.m = 1;
                run_case(&c);
            }
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
            gcase c = {*f, QMV_DTYPE_F16, QMV_DTYPE_BF16, QMV_DTYPE_F32, n, k, m, 1, 1, 0, 0, 0, 0};
            run_case(&c);
        }
    }
    if (f->mode == QMV_MODE_NVFP4) { /* K % 32 = 16: a half chunk at the end */
        gcase c = {*f, QMV_DTYPE_F32, QMV_DTYPE_F32, QMV_DTYPE_F16, 5, 48, 3, 1, 1, 0, 0, 0, 0};
        run_case(&c);
        c.k = 128 * 32 + 16;
        run_case(&c);
    }
}
END_TEST

/* K too long for x to be staged whole in shared memory (fp_qmv then stages slices): every
 * pass width (M = 1, 2, 3, 5, 8, 9), every x dtype, aligned and unaligned x rows. */
START_TEST(test_long_k)
{
    const qmv_format *f = &formats[_i];
    const int64_t ms[] = {1, 2, 3, 5, 8, 9};
    for (int mi = 0; mi < 6; mi++) {
        const int64_t m = ms[mi];
        /* K % 32 = 16 for nvfp4 (a half chunk at the end), whole chunks otherwise. */
        const int64_t k = 16384 + 2 * 128 * 32 + (f->mode == QMV_MODE_NVFP4 ? 16 : 32);
        gcase c = {*f, QMV_DTYPE_F32, (qmv_dtype)(mi % 3), QMV_DTYPE_F32, 37, k, m, 1, 1,
                   mi >= 4 /* padded rows: unaligned */, f->mode == QMV_MODE_NVFP4, 0, 0};
        run_case(&c);
    }
    /* Past 2^16 elements even one float vector does not fit. */
    gcase c = {*f, QMV_DTYPE_F32, QMV_DTYPE_F16, QMV_DTYPE_BF16, 5, 65536 + 4096 + 64, 1, 1,
               1, 0, 0, 0, 0};
    run_case(&c);
}
END_TEST

/* Batches with shared and per-item W, padded strides, broadcast x, global scale. */
START_TEST(test_batch_strides)
{
    const qmv_format *f = &formats[_i];
    for (int shared = 0; shared < 2; shared++) {
        for (int pad = 0; pad < 2; pad++) {
            gcase c = {*f, QMV_DTYPE_BF16, QMV_DTYPE_F16, QMV_DTYPE_BF16, 35, 512, 3, 3,
                       shared, pad ? 3 : 0, f->mode == QMV_MODE_NVFP4, pad, 0};
            run_case(&c);
        }
    }
}
END_TEST

/* Non-finite results are written as the canonical NaN. */
START_TEST(test_nan_canonical)
{
    const qmv_format f = {QMV_MODE_MXFP8, 8, 32};
    for (int yd = 0; yd < 3; yd++) {
        gcase c = {f, QMV_DTYPE_F32, QMV_DTYPE_F32, (qmv_dtype)yd, 64, 256, 2, 1, 1, 0, 0, 0, 0};
        /* Random mxfp8 codes include 0x7F / 0xFF (NaN): most outputs are NaN. */
        run_case(&c);
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

/* A small dense problem on the device for the selection tests (inputs left zero). */
typedef struct {
    qmv_qmatrix w;
    qmv_vectors v;
} dev_problem;

static void dev_problem_make(dev_problem *d, qmv_format f, int64_t n, int64_t k, int64_t m)
{
    qmv_layout l;
    ck_assert_int_eq(qmv_layout_query(&f, QMV_DTYPE_F16, n, k, &l), QMV_STATUS_OK);
    void *p, *s, *b = NULL, *x, *y;
    CUDA_OK(cudaMalloc(&p, l.packed_bytes));
    CUDA_OK(cudaMalloc(&s, l.scales_bytes));
    CUDA_OK(cudaMemset(p, 0, l.packed_bytes));
    CUDA_OK(cudaMemset(s, 0, l.scales_bytes));
    if (l.biases_bytes) {
        CUDA_OK(cudaMalloc(&b, l.biases_bytes));
        CUDA_OK(cudaMemset(b, 0, l.biases_bytes));
    }
    CUDA_OK(cudaMalloc(&x, (size_t)(m * k * 2)));
    CUDA_OK(cudaMemset(x, 0, (size_t)(m * k * 2)));
    CUDA_OK(cudaMalloc(&y, (size_t)(m * n * 2)));
    ck_assert_int_eq(qmv_qmatrix_dense(&f, QMV_DTYPE_F16, n, k, p, s, b, &d->w), QMV_STATUS_OK);
    qmv_vectors v = {1, m, QMV_DTYPE_F16, x, (size_t)(m * k * 2), k, 0,
                     QMV_DTYPE_F16, y, (size_t)(m * n * 2), n, 0};
    d->v = v;
}

static void dev_problem_free(dev_problem *d)
{
    cudaFree((void *)d->w.packed);
    cudaFree((void *)d->w.scales);
    cudaFree((void *)d->w.biases);
    cudaFree((void *)d->v.x);
    cudaFree(d->v.y);
}

static qmv_cuda_kernel selected(const dev_problem *d, qmv_cuda_kernel named)
{
    qmv_cuda_options o = QMV_CUDA_OPTIONS_INIT;
    o.kernel = named;
    qmv_cuda_kernel k = (qmv_cuda_kernel)-1;
    ck_assert_msg(qmv_cuda_kernel_select(&d->w, &d->v, &o, &k) == QMV_STATUS_OK, "%s",
                  qmv_last_error());
    return k;
}

/* What the dispatcher picks: a named kernel is obeyed or refused, AUTO never returns AUTO,
 * never fp_qmv where it cannot run, and the tuning call's winner is used afterwards. */
START_TEST(test_select_and_tune)
{
    dev_problem a, fp, big;
    dev_problem_make(&a, (qmv_format){QMV_MODE_AFFINE, 4, 64}, 64, 4096, 1);
    dev_problem_make(&fp, (qmv_format){QMV_MODE_MXFP4, 4, 32}, 256, 4096, 1);
    dev_problem_make(&big, (qmv_format){QMV_MODE_MXFP8, 8, 32}, 4, 1 << 17, 1);
    ck_assert_int_eq(selected(&a, QMV_CUDA_KERNEL_AUTO), QMV_CUDA_KERNEL_QMV);
    ck_assert_int_eq(selected(&a, QMV_CUDA_KERNEL_QMV), QMV_CUDA_KERNEL_QMV);
    qmv_cuda_options o = QMV_CUDA_OPTIONS_INIT;
    o.kernel = QMV_CUDA_KERNEL_FP_QMV;
    qmv_cuda_kernel k = (qmv_cuda_kernel)-1;
    ck_assert_int_eq(qmv_cuda_kernel_select(&a.w, &a.v, &o, &k), QMV_STATUS_UNSUPPORTED);
    ck_assert_int_eq((int)k, -1);
    /* K = 2^17 (512 KiB of x as float) runs with x staged in slices; test_long_k checks its
     * bits. */
    ck_assert_int_eq(selected(&big, QMV_CUDA_KERNEL_FP_QMV), QMV_CUDA_KERNEL_FP_QMV);
    ck_assert_int_eq(qmv_cuda_qmv(&big.w, &big.v, &o, NULL), QMV_STATUS_OK);
    ck_assert_int_eq(selected(&fp, QMV_CUDA_KERNEL_FP_QMV), QMV_CUDA_KERNEL_FP_QMV);
    const qmv_cuda_kernel before = selected(&fp, QMV_CUDA_KERNEL_AUTO);
    ck_assert(before == QMV_CUDA_KERNEL_QMV || before == QMV_CUDA_KERNEL_FP_QMV);

    /* The tuning call: bad arguments first, then a real run whose winner AUTO then uses
     * (unless QMV_CUDA_KERNEL overrides everything). */
    ck_assert_int_eq(qmv_cuda_tune(&fp.w, &fp.v, -1, NULL, NULL), QMV_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(qmv_cuda_tune(NULL, &fp.v, 0, NULL, NULL), QMV_STATUS_INVALID_ARGUMENT);
    qmv_cuda_kernel won = (qmv_cuda_kernel)-1;
    ck_assert_msg(qmv_cuda_tune(&fp.w, &fp.v, 5, NULL, &won) == QMV_STATUS_OK, "%s",
                  qmv_last_error());
    ck_assert(won == QMV_CUDA_KERNEL_QMV || won == QMV_CUDA_KERNEL_FP_QMV);
    if (!getenv("QMV_CUDA_KERNEL"))
        ck_assert_int_eq(selected(&fp, QMV_CUDA_KERNEL_AUTO), won);
    ck_assert_int_eq(qmv_cuda_tune(&a.w, &a.v, 3, NULL, &won), QMV_STATUS_OK);
    ck_assert_int_eq(won, QMV_CUDA_KERNEL_QMV); /* the only kernel for affine */
    dev_problem_free(&a);
    dev_problem_free(&fp);
    dev_problem_free(&big);
}
END_TEST

/* QMV_CUDA_KERNEL (ctest runs this case with it set to qmv and to fp_qmv): AUTO follows it
 * wherever the named kernel can run, and results stay bit-exact. */
START_TEST(test_env_kernel)
{
    const char *e = getenv("QMV_CUDA_KERNEL");
    dev_problem a, fp, big;
    dev_problem_make(&a, (qmv_format){QMV_MODE_AFFINE, 8, 64}, 64, 4096, 1);
    dev_problem_make(&fp, (qmv_format){QMV_MODE_NVFP4, 4, 16}, 64, 4096, 3);
    dev_problem_make(&big, (qmv_format){QMV_MODE_MXFP4, 4, 32}, 4, 1 << 17, 1);
    ck_assert_int_eq(selected(&a, QMV_CUDA_KERNEL_AUTO), QMV_CUDA_KERNEL_QMV);
    if (e && !strcmp(e, "fp_qmv")) { /* fp_qmv runs any K (x staged in slices) */
        ck_assert_int_eq(selected(&fp, QMV_CUDA_KERNEL_AUTO), QMV_CUDA_KERNEL_FP_QMV);
        ck_assert_int_eq(selected(&big, QMV_CUDA_KERNEL_AUTO), QMV_CUDA_KERNEL_FP_QMV);
    } else if (e && !strcmp(e, "qmv")) {
        ck_assert_int_eq(selected(&fp, QMV_CUDA_KERNEL_AUTO), QMV_CUDA_KERNEL_QMV);
        ck_assert_int_eq(selected(&big, QMV_CUDA_KERNEL_AUTO), QMV_CUDA_KERNEL_QMV);
    }
    /* A named kernel beats the variable. */
    ck_assert_int_eq(selected(&fp, QMV_CUDA_KERNEL_QMV), QMV_CUDA_KERNEL_QMV);
    ck_assert_int_eq(selected(&fp, QMV_CUDA_KERNEL_FP_QMV), QMV_CUDA_KERNEL_FP_QMV);
    dev_problem_free(&a);
    dev_problem_free(&fp);
    dev_problem_free(&big);
    const qmv_format f = {QMV_MODE_MXFP8, 8, 32};
    gcase c = {f, QMV_DTYPE_F32, QMV_DTYPE_F16, QMV_DTYPE_F16, 67, 1024 + 64, 2, 1, 1, 0, 0, 0, 0};
    run_case(&c);
}
END_TEST

/* The call works inside stream capture: no allocation, sync or host read of device memory. */
START_TEST(test_graph_capture)
{
    const qmv_format f = {QMV_MODE_NVFP4, 4, 16};
    const int64_t n = 256, k = 1024;
    qmv_layout l;
    ck_assert_int_eq(qmv_layout_query(&f, QMV_DTYPE_F32, n, k, &l), QMV_STATUS_OK);
    uint32_t *hp = tu_malloc(l.packed_bytes);
    unsigned char *hs = tu_malloc(l.scales_bytes);
    float *hx = tu_malloc(k * 4), *y_cpu = tu_malloc(n * 4), *y_gpu = tu_malloc(n * 4);
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
    tcase_add_loop_test(tc, test_long_k, NFORMATS - 3, NFORMATS); /* the fp formats */
    tcase_add_test(tc, test_nan_canonical);
    tcase_add_test(tc, test_invalid_arguments);
    tcase_add_test(tc, test_graph_capture);
    tcase_add_test(tc, test_select_and_tune);
    suite_add_tcase(s, tc);
    TCase *env = tcase_create("env");
    tcase_set_timeout(env, 600);
    tcase_add_test(env, test_env_kernel);
    suite_add_tcase(s, env);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
