/*
 * check_orders.c - the accumulation orders other than the canonical one (include/qmv.h,
 * "Accumulation orders"; docs/VERIFY.md, "Emulated orders"): each validates its arguments as
 * qmv_qmv_reference() does and writes nothing on error, refuses what the emulated kernel does
 * not compute with UNSUPPORTED, and on small hand-computed problems gives the bits of the
 * emulated kernel where they differ from the canonical order's.
 */
#include <check.h>

#include "orders.h" /* qmvi_mlx_fma (internal) */
#include "test_util.h"

#define K 32       /* K of most cases */
#define KMAX 1024  /* the largest K of a case */
#define POISON 0xA5

/* A one-row problem: affine (scale, bias in sdt) or fp codes, x of k elements. */
typedef struct {
    qmv_qmatrix w;
    qmv_vectors v;
    uint32_t packed[KMAX * 8 / 32];
    unsigned char scales[KMAX / 16 * 4], biases[KMAX / 16 * 4];
    unsigned char x[KMAX * 4];
    unsigned char y[16];
    float g;
} prob;

static void prob_make_k(prob *p, qmv_format fmt, qmv_dtype sdt, qmv_dtype xdt, qmv_dtype ydt,
                        int64_t k)
{
    memset(p, 0, sizeof *p);
    ck_assert_int_eq(qmv_qmatrix_dense(&fmt, sdt, 1, k, p->packed, p->scales,
                                       fmt.mode == QMV_MODE_AFFINE ? p->biases : NULL, &p->w),
                     QMV_STATUS_OK);
    p->v = (qmv_vectors){1,  1, xdt, p->x, (size_t)k * tu_dsize(xdt), k, 0, ydt, p->y,
                         tu_dsize(ydt), 1, 0};
    memset(p->y, POISON, sizeof p->y);
}

static void prob_make(prob *p, qmv_format fmt, qmv_dtype sdt, qmv_dtype xdt, qmv_dtype ydt)
{
    prob_make_k(p, fmt, sdt, xdt, ydt, K);
}

static int order_index(const char *name)
{
    int idx = -1;
    ck_assert_msg(qmv_order_find(name, &idx) == QMV_STATUS_OK, "order %s missing: %s", name,
                  qmv_last_error());
    return idx;
}

static void expect_y_untouched(const prob *p, const char *what)
{
    for (size_t i = 0; i < sizeof p->y; i++)
        ck_assert_msg(p->y[i] == POISON, "%s: y byte %zu written on error", what, i);
}

/* Same status as the reference for arguments the reference rejects; nothing written. */
static void expect_same_error(int order, prob *p, const char *what)
{
    qmv_status ref = qmv_qmv_reference(&p->w, &p->v);
    ck_assert_msg(ref != QMV_STATUS_OK, "%s: the reference accepted it", what);
    memset(p->y, POISON, sizeof p->y);
    qmv_status st = qmv_qmv_order(order, &p->w, &p->v);
    ck_assert_msg(st == ref, "%s: order %d returned %d, the reference %d (%s)", what, order,
                  (int)st, (int)ref, qmv_last_error());
    ck_assert_msg(qmv_last_error()[0] != '\0', "%s: no message", what);
    expect_y_untouched(p, what);
}

/* Every emulating order (index >= 1) validates like the reference and refuses, with a
 * message and nothing written, what MLX does not compute. */
START_TEST(test_validation)
{
    const int order = _i + 1;
    if (order >= qmv_order_count())
        return;
    qmv_order_info info;
    ck_assert_int_eq(qmv_order_get(order, &info), QMV_STATUS_OK);
    const qmv_format aff = {QMV_MODE_AFFINE, 4, 32}, nv = {QMV_MODE_NVFP4, 4, 16};
    prob p;

    prob_make(&p, aff, QMV_DTYPE_F16, QMV_DTYPE_F16, QMV_DTYPE_F16);
    ck_assert_int_eq(qmv_qmv_order(order, NULL, &p.v), QMV_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(qmv_qmv_order(order, &p.w, NULL), QMV_STATUS_INVALID_ARGUMENT);
    expect_y_untouched(&p, info.name);
    p.v.y_bytes = 1;
    expect_same_error(order, &p, "y too small");
    prob_make(&p, aff, QMV_DTYPE_F16, QMV_DTYPE_F16, QMV_DTYPE_F16);
    p.v.x_bytes = K;
    expect_same_error(order, &p, "x too small");
    prob_make(&p, aff, QMV_DTYPE_F16, QMV_DTYPE_F16, QMV_DTYPE_F16);
    p.w.biases = NULL;
    expect_same_error(order, &p, "affine without biases");
    prob_make(&p, aff, QMV_DTYPE_F16, QMV_DTYPE_F16, QMV_DTYPE_F16);
    p.v.y = p.x; /* overlaps x */
    expect_same_error(order, &p, "y overlapping x");
    prob_make(&p, aff, QMV_DTYPE_F16, QMV_DTYPE_F16, QMV_DTYPE_F16);
    p.v.batch = 0;
    expect_same_error(order, &p, "batch 0");

    /* accepted by the reference, not computed by MLX: y in another dtype than MLX's */
    prob_make(&p, aff, QMV_DTYPE_F16, QMV_DTYPE_F16, QMV_DTYPE_F32);
    ck_assert_int_eq(qmv_qmv_reference(&p.w, &p.v), QMV_STATUS_OK);
    memset(p.y, POISON, sizeof p.y);
    ck_assert_int_eq(qmv_qmv_order(order, &p.w, &p.v), QMV_STATUS_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(qmv_last_error(), info.name));
    expect_y_untouched(&p, "f16 x with f32 y");
    /* an nvfp4 global scale: mx.quantized_matmul takes none */
    prob_make(&p, nv, QMV_DTYPE_F32, QMV_DTYPE_F32, QMV_DTYPE_F32);
    p.g = 1.0f;
    p.w.global_scale = &p.g;
    memset(p.scales, 0x38, sizeof p.scales);
    ck_assert_int_eq(qmv_qmv_reference(&p.w, &p.v), QMV_STATUS_OK);
    memset(p.y, POISON, sizeof p.y);
    ck_assert_int_eq(qmv_qmv_order(order, &p.w, &p.v), QMV_STATUS_UNSUPPORTED);
    expect_y_untouched(&p, "nvfp4 global scale");
    /* a success clears the message (nvfp4: a mode every MLX kernel computes) */
    prob_make(&p, nv, QMV_DTYPE_F32, QMV_DTYPE_F16, QMV_DTYPE_F16);
    memset(p.scales, 0x38, sizeof p.scales);
    ck_assert_int_eq(qmv_qmv_order(order, &p.w, &p.v), QMV_STATUS_OK);
    ck_assert_str_eq(qmv_last_error(), "");
}
END_TEST

static uint32_t y_bits(const prob *p)
{
    return tu_load_bits(p->v.y_dtype, p->y, 0);
}

static uint32_t run(int order, prob *p)
{
    memset(p->y, POISON, sizeof p->y);
    ck_assert_msg(qmv_qmv_order(order, &p->w, &p->v) == QMV_STATUS_OK, "order %d: %s", order,
                  qmv_last_error());
    return y_bits(p);
}

/* mlx-0.32.4-cpu, affine float16: the sum is kept in float16, so x = 2048, 1, 1, ... times
 * w = 1 stays at 2048 (each 2048 + 1 ties to even), where the canonical order (float32
 * accumulation, one rounding) gives 2079 -> 2080. */
START_TEST(test_mlx_cpu_f16_accumulation)
{
    const int order = order_index("mlx-0.32.4-cpu");
    prob p;
    prob_make(&p, (qmv_format){QMV_MODE_AFFINE, 4, 32}, QMV_DTYPE_F16, QMV_DTYPE_F16,
              QMV_DTYPE_F16);
    for (int i = 0; i < K; i++) {
        tu_code_put(p.packed, i, 4, 1);
        tu_store(QMV_DTYPE_F16, p.x, i, i == 0 ? 2048.0 : 1.0);
    }
    tu_store(QMV_DTYPE_F16, p.scales, 0, 1.0);
    tu_store(QMV_DTYPE_F16, p.biases, 0, 0.0);
    ck_assert_uint_eq(run(order, &p), tu_f16_bits(2048.0));
    ck_assert_uint_eq(run(0, &p), tu_f16_bits(2080.0));
}
END_TEST

/* mlx-0.32.4-cpu, mxfp4 bfloat16: the group sum is kept in bfloat16 (256 + 1 ties to 256);
 * canonical: 287 -> 288. */
START_TEST(test_mlx_cpu_bf16_group_sum)
{
    const int order = order_index("mlx-0.32.4-cpu");
    prob p;
    prob_make(&p, (qmv_format){QMV_MODE_MXFP4, 4, 32}, QMV_DTYPE_F32, QMV_DTYPE_BF16,
              QMV_DTYPE_BF16);
    for (int i = 0; i < K; i++) {
        tu_code_put(p.packed, i, 4, 0x2); /* E2M1 1.0 */
        tu_store(QMV_DTYPE_BF16, p.x, i, i == 0 ? 256.0 : 1.0);
    }
    p.scales[0] = 127; /* E8M0 1.0 */
    ck_assert_uint_eq(run(order, &p), tu_bf16_bits(256.0));
    ck_assert_uint_eq(run(0, &p), tu_bf16_bits(288.0));
    /* E8M0 0xFF is +Inf in MLX's CPU decoder (the canonical order reads NaN) */
    p.scales[0] = 0xFF;
    ck_assert_uint_eq(run(order, &p), 0x7F80u);
}
END_TEST

/* mlx-0.32.4-cpu, affine float32: the bias enters every product (x * (s*q + b), one float32
 * rounding per operation, summed in k order), not as b * sum(x) once. With q = 0, b = 0.1 and
 * x = 1 the result is 0.1f added 32 times in float32; the canonical order's fl(32 * 0.1f)
 * differs. */
START_TEST(test_mlx_cpu_f32_bias_per_element)
{
    const int order = order_index("mlx-0.32.4-cpu");
    prob p;
    prob_make(&p, (qmv_format){QMV_MODE_AFFINE, 4, 32}, QMV_DTYPE_F32, QMV_DTYPE_F32,
              QMV_DTYPE_F32);
    for (int i = 0; i < K; i++)
        tu_store(QMV_DTYPE_F32, p.x, i, 1.0);
    const float b = 0.1f;
    tu_store(QMV_DTYPE_F32, p.scales, 0, 0.5);
    memcpy(p.biases, &b, sizeof b);
    float want = 0.0f;
    for (int i = 0; i < K; i++)
        want = want + b;
    ck_assert_uint_eq(run(order, &p), tu_fbits(want));
    ck_assert_uint_eq(run(0, &p), tu_fbits(32.0f * b));
    ck_assert_uint_ne(tu_fbits(want), tu_fbits(32.0f * b));
}
END_TEST

/* mlx-0.32.4-cuda-qmv, mxfp4 float16: each thread keeps 16 float16 accumulators; with
K = 1024 element 512 joins element 0's accumulator, so 2048 + 1 is lost there (ties to even)
and y = fl16(2048 + 1) = 2048, where the canonical order gives 2048 + 1 + 1 = 2050. */
START_TEST(test_mlx_cuda_qmv_f16_accumulators)
{
    const int order = order_index("mlx-0.32.4-cuda-qmv");
    prob p;
    prob_make_k(&p, (qmv_format){QMV_MODE_MXFP4, 4, 32}, QMV_DTYPE_F32, QMV_DTYPE_F16,
                QMV_DTYPE_F16, 1024);
    for (int i = 0; i < 1024; i++) {
        tu_code_put(p.packed, i, 4, 0x2); /* E2M1 1.0 */
        tu_store(QMV_DTYPE_F16, p.x, i, i == 0 ? 2048.0 : (i == 1 || i == 512) ? 1.0 : 0.0);
    }
    memset(p.scales, 127, 1024 / 32); /* E8M0 1.0 */
    ck_assert_uint_eq(run(order, &p), tu_f16_bits(2048.0));
    ck_assert_uint_eq(run(0, &p), tu_f16_bits(2050.0));
}
END_TEST

/* mlx-0.32.4-cuda-qmv, affine float32: 8 elements per thread, threads summed by the warp
 * tree. 2^24 at element 0 (thread 0) and 1 at elements 8, 16, 24 (threads 1-3): the tree
 * adds (2^24 + 1) + (1 + 1) = 2^24 + 2; the canonical order sums elements 0-31 in one chain,
 * where each + 1 is lost: 2^24. */
START_TEST(test_mlx_cuda_qmv_warp_tree)
{
    const int order = order_index("mlx-0.32.4-cuda-qmv");
    prob p;
    prob_make_k(&p, (qmv_format){QMV_MODE_AFFINE, 4, 32}, QMV_DTYPE_F32, QMV_DTYPE_F32,
                QMV_DTYPE_F32, 256);
    for (int i = 0; i < 256; i++) {
        tu_code_put(p.packed, i, 4, 1);
        tu_store(QMV_DTYPE_F32, p.x, i, i == 0 ? 16777216.0 : (i == 8 || i == 16 || i == 24));
    }
    for (int g = 0; g < 256 / 32; g++) {
        tu_store(QMV_DTYPE_F32, p.scales, g, 1.0);
        tu_store(QMV_DTYPE_F32, p.biases, g, 0.0);
    }
    ck_assert_uint_eq(run(order, &p), tu_fbits(16777218.0f));
    ck_assert_uint_eq(run(0, &p), tu_fbits(16777216.0f));
}
END_TEST

/* mlx-0.32.4-cuda-fp-qmv, mxfp4 float32: the 8 values of a word alternate between two float
 * accumulators, added before the scale: x = 2^24, 1, 0, 1 gives lx = 2^24, ly = 2 and
 * y = 2^24 + 2; the canonical order's one chain loses both ones: 2^24. */
START_TEST(test_mlx_cuda_fp_qmv_two_accumulators)
{
    const int order = order_index("mlx-0.32.4-cuda-fp-qmv");
    prob p;
    prob_make(&p, (qmv_format){QMV_MODE_MXFP4, 4, 32}, QMV_DTYPE_F32, QMV_DTYPE_F32,
              QMV_DTYPE_F32);
    for (int i = 0; i < K; i++) {
        tu_code_put(p.packed, i, 4, 0x2);
        tu_store(QMV_DTYPE_F32, p.x, i, i == 0 ? 16777216.0 : (i == 1 || i == 3));
    }
    p.scales[0] = 127;
    ck_assert_uint_eq(run(order, &p), tu_fbits(16777218.0f));
    ck_assert_uint_eq(run(0, &p), tu_fbits(16777216.0f));
    /* affine is not an fp_qmv mode */
    prob_make(&p, (qmv_format){QMV_MODE_AFFINE, 4, 32}, QMV_DTYPE_F32, QMV_DTYPE_F32,
              QMV_DTYPE_F32);
    ck_assert_int_eq(qmv_qmv_order(order, &p.w, &p.v), QMV_STATUS_UNSUPPORTED);
    expect_y_untouched(&p, "fp_qmv affine");
}
END_TEST

/* The CUDA kernels have no 1-bit affine: refused, nothing written. */
START_TEST(test_mlx_cuda_no_1bit)
{
    prob p;
    prob_make(&p, (qmv_format){QMV_MODE_AFFINE, 1, 32}, QMV_DTYPE_F16, QMV_DTYPE_F16,
              QMV_DTYPE_F16);
    ck_assert_int_eq(qmv_qmv_order(order_index("mlx-0.32.4-cuda-qmv"), &p.w, &p.v),
                     QMV_STATUS_UNSUPPORTED);
    expect_y_untouched(&p, "cuda-qmv 1-bit");
    /* the CPU order computes it (MLX's CPU kernel does) */
    ck_assert_int_eq(qmv_qmv_order(order_index("mlx-0.32.4-cpu"), &p.w, &p.v), QMV_STATUS_OK);
}
END_TEST

/* Oracle of one correctly rounded fma in T: s = fl64(a*b + c) and its exact error (TwoSum; a*b
 * is exact in double); s rounded to T, except that when s lies exactly halfway between two
 * values of T and the error is not zero, the neighbour on the error's side wins. */
static double oracle_fma(qmv_dtype t, double a, double b, double c)
{
    const double p = a * b, s = p + c, bb = s - p, err = (p - (s - bb)) + (c - bb);
    const double r = tu_round_dtype(t, s);
    if (err == 0.0 || r == s)
        return r;
    const double other = 2 * s - r; /* s reflected: a value of T only when s is a midpoint */
    if (tu_round_dtype(t, other) != other)
        return r;
    return (err > 0) == (r > s) ? r : other;
}

/* qmvi_mlx_fma rounds once, for float16 and bfloat16, on values with exponents far apart
 * (where a double sum alone would round twice) and on constructed midpoints. */
START_TEST(test_mlx_fma_one_rounding)
{
    const qmv_dtype t = _i ? QMV_DTYPE_BF16 : QMV_DTYPE_F16;
    const int span = t == QMV_DTYPE_BF16 ? 120 : 14;
    tu_rng rng = {0x5eedu + (uint64_t)_i};
    tu_fails fl = {0};
    for (int n = 0; n < 400000; n++) {
        double v[3];
        for (int j = 0; j < 3; j++) {
            double m = 1.0 + tu_unif(&rng);
            int e = tu_int(&rng, -span, span / (j < 2 ? 2 : 1));
            v[j] = tu_round_dtype(t, (tu_u32(&rng) & 1 ? -m : m) * ldexp(1.0, e));
        }
        if (n % 4 == 0) /* c a midpoint-making neighbour of a*b */
            v[2] = tu_round_dtype(t, -v[0] * v[1] * (1 + ldexp(1.0, -tu_int(&rng, 8, 30))));
        const double want = oracle_fma(t, v[0], v[1], v[2]);
        const float got = qmvi_mlx_fma(t, (float)v[0], (float)v[1], (float)v[2]);
        if (isfinite(want) && (double)got != want)
            TU_FAIL(&fl, "%s fma(%a, %a, %a) = %a, want %a", tu_dname(t), v[0], v[1], v[2],
                    (double)got, want);
    }
    TU_ASSERT_NO_FAILS(&fl, "qmvi_mlx_fma");
}
END_TEST

static Suite *orders_suite(void)
{
    Suite *s = suite_create("orders");
    TCase *tc = tcase_create("validation");
    tcase_add_loop_test(tc, test_validation, 0, 8);
    suite_add_tcase(s, tc);
    tc = tcase_create("mlx_cpu");
    tcase_add_test(tc, test_mlx_cpu_f16_accumulation);
    tcase_add_test(tc, test_mlx_cpu_bf16_group_sum);
    tcase_add_test(tc, test_mlx_cpu_f32_bias_per_element);
    suite_add_tcase(s, tc);
    tc = tcase_create("mlx_fma");
    tcase_add_loop_test(tc, test_mlx_fma_one_rounding, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("mlx_cuda");
    tcase_add_test(tc, test_mlx_cuda_qmv_f16_accumulators);
    tcase_add_test(tc, test_mlx_cuda_qmv_warp_tree);
    tcase_add_test(tc, test_mlx_cuda_fp_qmv_two_accumulators);
    tcase_add_test(tc, test_mlx_cuda_no_1bit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(orders_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
