/*
 * check_verify.c - qmv_verify(): each classification rule on constructed cases (honest, all-NaN
 * and all-zero y, vacuous bounds, Inf inputs, Inf - Inf, Inf * 0, overflow of y's dtype, an
 * overflowing accumulation, Inf scales), the exact mode, the summary, and argument validation
 * with nothing written on error.
 */
#include <math.h>

#include "test_util.h"

#define MAXK 4096
#define MAXN 4

/* An affine 4-bit, group-32 problem with float32 scales, M = 1. */
typedef struct {
    int64_t n, k;
    uint32_t packed[MAXN * MAXK / 8];
    float scales[MAXN * MAXK / 32], biases[MAXN * MAXK / 32];
    float x[MAXK];
    uint8_t y[MAXN * 4];
    qmv_dtype y_dtype;
    qmv_qmatrix w;
    qmv_vectors v;
} problem;

static void set_code(problem *p, int64_t n, int64_t i, unsigned c)
{
    uint32_t *wd = &p->packed[n * p->k / 8 + i / 8];
    const unsigned sh = (unsigned)(i % 8) * 4;
    *wd = (*wd & ~(0xFu << sh)) | (c << sh);
}

/* Random codes 1..15, scales ~ 0.01, biases ~ -0.08, x ~ N(0,1); y = the canonical result. */
static void make(problem *p, int64_t n, int64_t k, qmv_dtype ydt, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    p->k = k;
    p->y_dtype = ydt;
    tu_rng r = {seed};
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < k; i++)
            set_code(p, j, i, 1u + (unsigned)tu_range(&r, 0, 14));
    for (int64_t g = 0; g < n * k / 32; g++) {
        p->scales[g] = 0.01f * (1.0f + (float)tu_range(&r, 0, 99) / 100.0f);
        p->biases[g] = -0.08f * (1.0f + (float)tu_range(&r, 0, 99) / 100.0f);
    }
    for (int64_t i = 0; i < k; i++)
        p->x[i] = (float)tu_range(&r, -1000, 1000) / 500.0f;
    const qmv_format f = {QMV_MODE_AFFINE, 4, 32};
    ck_assert_int_eq(qmv_qmatrix_dense(&f, QMV_DTYPE_F32, n, k, p->packed, p->scales, p->biases,
                                       &p->w), QMV_STATUS_OK);
    p->v = (qmv_vectors){.batch = 1, .m = 1, .x_dtype = QMV_DTYPE_F32, .x = p->x,
                         .x_bytes = sizeof p->x, .x_row_stride = k, .y_dtype = ydt, .y = p->y,
                         .y_bytes = sizeof p->y, .y_row_stride = n};
    ck_assert_int_eq(qmv_qmv_reference(&p->w, &p->v), QMV_STATUS_OK);
}

static qmv_verify_summary run(problem *p, qmv_verify_mode mode, qmv_dtype accum, uint8_t *cls)
{
    qmv_verify_options o = {.mode = mode, .order = 0, .accum = accum, .p = 0};
    qmv_verify_summary s;
    ck_assert_msg(qmv_verify(&p->w, &p->v, &o, cls, MAXN, &s) == QMV_STATUS_OK, "%s",
                  qmv_last_error());
    ck_assert_int_eq(s.total, p->n);
    ck_assert_int_eq(s.count[0] + s.count[1] + s.count[2] + s.count[3], p->n);
    return s;
}

static void fill_y(problem *p, float v)
{
    for (int64_t j = 0; j < p->n; j++)
        tu_store(p->y_dtype, p->y, j, v);
}

START_TEST(test_honest_passes_every_mode)
{
    problem p;
    make(&p, 4, 256, QMV_DTYPE_F32, 1);
    for (int m = 0; m < 3; m++) {
        qmv_verify_summary s = run(&p, (qmv_verify_mode)m, QMV_DTYPE_F32, NULL);
        ck_assert_msg(s.count[QMV_VERIFY_PASS] == 4, "mode %d: %lld pass", m,
                      (long long)s.count[QMV_VERIFY_PASS]);
        ck_assert_int_eq(s.first_fail, -1);
        ck_assert(s.nmse < 1e-12 && s.max_rel_error < 1e-5);
        if (m == QMV_VERIFY_EXACT)
            ck_assert(s.detect_median == 0);
        else
            ck_assert(s.detect_median > 0 && s.detect_worst >= s.detect_median &&
                      s.detect_worst < 1);
    }
    /* the statistical bound is tighter than the rigorous one */
    qmv_verify_summary b = run(&p, QMV_VERIFY_BOUND, QMV_DTYPE_F32, NULL);
    qmv_verify_summary st = run(&p, QMV_VERIFY_STAT, QMV_DTYPE_F32, NULL);
    ck_assert(st.detect_median < b.detect_median);
    ck_assert(fabs(st.lambda - sqrt(2 * log(2 / 1e-9))) < 1e-9);
}
END_TEST

START_TEST(test_all_nan_and_all_zero_fail)
{
    problem p;
    for (int m = 0; m < 3; m++) {
        make(&p, 4, 256, QMV_DTYPE_F32, 2);
        fill_y(&p, NAN);
        uint8_t cls[MAXN];
        qmv_verify_summary s = run(&p, (qmv_verify_mode)m, QMV_DTYPE_F32, cls);
        ck_assert_int_eq(s.count[QMV_VERIFY_FAIL], 4);
        ck_assert_int_eq(cls[2], QMV_VERIFY_FAIL);
        ck_assert_int_eq(s.first_fail, 0);
        fill_y(&p, 0.0f);
        s = run(&p, (qmv_verify_mode)m, QMV_DTYPE_F32, cls);
        ck_assert_int_eq(s.count[QMV_VERIFY_FAIL], 4);
    }
}
END_TEST

/* bf16 accumulation at K = 4096: the rigorous bound exceeds |E|, so even y = 0 is "weak", never
 * a plain pass; --stat keeps power there */
START_TEST(test_vacuous_bound_is_weak)
{
    static problem p;
    make(&p, 2, 4096, QMV_DTYPE_F32, 3);
    qmv_verify_summary s = run(&p, QMV_VERIFY_BOUND, QMV_DTYPE_BF16, NULL);
    ck_assert_int_eq(s.count[QMV_VERIFY_WEAK], 2);
    ck_assert(s.detect_median >= 1);
    fill_y(&p, 0.0f);
    s = run(&p, QMV_VERIFY_BOUND, QMV_DTYPE_BF16, NULL);
    ck_assert_int_eq(s.count[QMV_VERIFY_PASS], 0);
    ck_assert_int_eq(s.count[QMV_VERIFY_WEAK] + s.count[QMV_VERIFY_FAIL], 2);
}
END_TEST

/* every weight of row 0 made positive (b > 0): an Inf x gives an Inf of x's sign */
static void positive_weights(problem *p)
{
    for (int64_t g = 0; g < p->k / 32; g++)
        p->biases[g] = 0.5f;
}

static void expect_classes(problem *p, qmv_dtype accum, const float *ys, const int *want, int count)
{
    for (int i = 0; i < count; i++) {
        fill_y(p, ys[i]);
        uint8_t cls[MAXN];
        for (int m = 1; m < 3; m++) {
            run(p, (qmv_verify_mode)m, accum, cls);
            ck_assert_msg(cls[0] == want[i], "mode %d, y = %g: class %d, want %d", m,
                          (double)ys[i], cls[0], want[i]);
        }
    }
}

START_TEST(test_inf_input)
{
    problem p;
    make(&p, 1, 64, QMV_DTYPE_F32, 4);
    positive_weights(&p);
    p.x[5] = INFINITY;
    const float ys[] = {INFINITY, -INFINITY, NAN, 1.0f};
    const int want[] = {QMV_VERIFY_PASS, QMV_VERIFY_FAIL, QMV_VERIFY_FAIL, QMV_VERIFY_FAIL};
    expect_classes(&p, QMV_DTYPE_F32, ys, want, 4);
    p.x[5] = -INFINITY;
    const int want_neg[] = {QMV_VERIFY_FAIL, QMV_VERIFY_PASS, QMV_VERIFY_FAIL, QMV_VERIFY_FAIL};
    expect_classes(&p, QMV_DTYPE_F32, ys, want_neg, 4);
}
END_TEST

START_TEST(test_inf_minus_inf_and_inf_times_zero)
{
    problem p;
    make(&p, 1, 64, QMV_DTYPE_F32, 5);
    positive_weights(&p);
    p.x[1] = INFINITY;
    p.x[40] = -INFINITY;
    const float ys[] = {NAN, INFINITY, -INFINITY};
    const int want[] = {QMV_VERIFY_PASS, QMV_VERIFY_FAIL, QMV_VERIFY_FAIL};
    expect_classes(&p, QMV_DTYPE_F32, ys, want, 3);
    /* w = s q + b = 0 exactly: Inf * 0 */
    make(&p, 1, 64, QMV_DTYPE_F32, 6);
    p.scales[0] = 1.0f;
    p.biases[0] = -2.0f;
    set_code(&p, 0, 3, 2);
    p.x[3] = INFINITY;
    expect_classes(&p, QMV_DTYPE_F32, ys, want, 3);
}
END_TEST

START_TEST(test_nan_input)
{
    problem p;
    make(&p, 1, 64, QMV_DTYPE_F32, 7);
    p.x[9] = NAN;
    p.x[10] = INFINITY;
    const float ys[] = {NAN, INFINITY, 0.0f};
    const int want[] = {QMV_VERIFY_PASS, QMV_VERIFY_FAIL, QMV_VERIFY_FAIL};
    expect_classes(&p, QMV_DTYPE_F32, ys, want, 3);
}
END_TEST

/* finite inputs, exact result 960000 > float16's range: y must be +Inf; a float16 accumulation
 * may overflow on the way, so there it is unchecked */
START_TEST(test_overflow_of_y_and_of_the_accumulation)
{
    problem p;
    make(&p, 1, 64, QMV_DTYPE_F16, 8);
    for (int64_t i = 0; i < 64; i++) {
        p.x[i] = 1000.0f;
        set_code(&p, 0, i, 15);
    }
    p.scales[0] = p.scales[1] = 1.0f;
    p.biases[0] = p.biases[1] = 0.0f;
    const float ys[] = {INFINITY, 65504.0f, -INFINITY, NAN};
    const int want[] = {QMV_VERIFY_PASS, QMV_VERIFY_FAIL, QMV_VERIFY_FAIL, QMV_VERIFY_FAIL};
    expect_classes(&p, QMV_DTYPE_F32, ys, want, 4);
    const int unch[] = {QMV_VERIFY_UNCHECKED, QMV_VERIFY_UNCHECKED, QMV_VERIFY_UNCHECKED,
                        QMV_VERIFY_UNCHECKED};
    expect_classes(&p, QMV_DTYPE_F16, ys, unch, 4);
}
END_TEST

/* an Inf scale: s Sum(x q) and Sum(x (s q + b)) disagree, so no class is certain */
START_TEST(test_inf_scale_unchecked)
{
    problem p;
    make(&p, 1, 64, QMV_DTYPE_F32, 9);
    p.scales[1] = INFINITY;
    const float ys[] = {NAN, INFINITY, 1.0f};
    const int want[] = {QMV_VERIFY_UNCHECKED, QMV_VERIFY_UNCHECKED, QMV_VERIFY_UNCHECKED};
    expect_classes(&p, QMV_DTYPE_F32, ys, want, 3);
    qmv_verify_summary s = run(&p, QMV_VERIFY_BOUND, QMV_DTYPE_F32, NULL);
    ck_assert_int_eq(s.worst, -1);
    ck_assert(isnan(s.detect_median) && isnan(s.nmse));
}
END_TEST

START_TEST(test_exact_mode)
{
    problem p;
    make(&p, 4, 128, QMV_DTYPE_F16, 10);
    uint8_t cls[MAXN];
    p.y[2 * 2] ^= 1; /* lowest bit of y[2] */
    qmv_verify_summary s = run(&p, QMV_VERIFY_EXACT, QMV_DTYPE_F32, cls);
    ck_assert_int_eq(s.count[QMV_VERIFY_FAIL], 1);
    ck_assert_int_eq(cls[2], QMV_VERIFY_FAIL);
    ck_assert_int_eq(s.first_fail, 2);
    ck_assert_int_eq(s.worst, 2);
    ck_assert(s.worst_error > 0 && isinf(s.worst_ratio));
    /* order 0 wants qmv's canonical NaN: another NaN pattern differs */
    make(&p, 4, 128, QMV_DTYPE_F16, 11);
    p.x[0] = NAN;
    ck_assert_int_eq(qmv_qmv_reference(&p.w, &p.v), QMV_STATUS_OK);
    s = run(&p, QMV_VERIFY_EXACT, QMV_DTYPE_F32, cls);
    ck_assert_int_eq(s.count[QMV_VERIFY_PASS], 4);
    tu_store_bits(QMV_DTYPE_F16, p.y, 1, 0xFE01u);
    s = run(&p, QMV_VERIFY_EXACT, QMV_DTYPE_F32, cls);
    ck_assert_int_eq(s.count[QMV_VERIFY_FAIL], 1);
}
END_TEST

/* a foreign order: any NaN matches a NaN result (payloads are not part of an emulation) */
START_TEST(test_exact_foreign_order_nan)
{
    int mlx;
    if (qmv_order_find("mlx-0.32.4-cpu", &mlx) != QMV_STATUS_OK)
        return; /* no foreign order in this build: nothing to check */
    problem p;
    make(&p, 4, 128, QMV_DTYPE_F32, 13);
    p.x[0] = NAN;
    ck_assert_int_eq(qmv_qmv_order(mlx, &p.w, &p.v), QMV_STATUS_OK);
    tu_store_bits(QMV_DTYPE_F32, p.y, 1, 0xFFC00001u); /* a NaN of another sign and payload */
    qmv_verify_options o = {.mode = QMV_VERIFY_EXACT, .order = mlx};
    qmv_verify_summary s;
    ck_assert_int_eq(qmv_verify(&p.w, &p.v, &o, NULL, 0, &s), QMV_STATUS_OK);
    ck_assert_int_eq(s.count[QMV_VERIFY_PASS], 4);
    tu_store(QMV_DTYPE_F32, p.y, 2, 1.0f); /* a number where NaN is expected */
    ck_assert_int_eq(qmv_verify(&p.w, &p.v, &o, NULL, 0, &s), QMV_STATUS_OK);
    ck_assert_int_eq(s.count[QMV_VERIFY_FAIL], 1);
    ck_assert_int_eq(s.first_fail, 2);
    /* the order does not write float16 y for float32 x: UNSUPPORTED, nothing written */
    make(&p, 4, 128, QMV_DTYPE_F16, 14);
    memset(&s, 0xAB, sizeof s);
    ck_assert_int_eq(qmv_verify(&p.w, &p.v, &o, NULL, 0, &s), QMV_STATUS_UNSUPPORTED);
    ck_assert(tu_all_bytes(&s, sizeof s, 0xAB));
}
END_TEST

START_TEST(test_validation_writes_nothing)
{
    problem p;
    make(&p, 4, 64, QMV_DTYPE_F32, 12);
    qmv_verify_options o = {.mode = QMV_VERIFY_STAT, .accum = QMV_DTYPE_F32};
    qmv_verify_summary s, s0;
    uint8_t cls[MAXN];
    memset(&s, 0xAB, sizeof s);
    memset(&s0, 0xAB, sizeof s0);
    memset(cls, 0xCD, sizeof cls);
#define BAD(expr, st)                                                                          \
    do {                                                                                       \
        ck_assert_int_eq((expr), (st));                                                        \
        ck_assert(qmv_last_error()[0] != '\0');                                                \
        ck_assert(memcmp(&s, &s0, sizeof s) == 0);                                             \
        ck_assert(tu_all_bytes(cls, sizeof cls, 0xCD));                                        \
    } while (0)
    BAD(qmv_verify(NULL, &p.v, &o, cls, 4, &s), QMV_STATUS_INVALID_ARGUMENT);
    BAD(qmv_verify(&p.w, NULL, &o, cls, 4, &s), QMV_STATUS_INVALID_ARGUMENT);
    BAD(qmv_verify(&p.w, &p.v, NULL, cls, 4, &s), QMV_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(qmv_verify(&p.w, &p.v, &o, cls, 4, NULL), QMV_STATUS_INVALID_ARGUMENT);
    BAD(qmv_verify(&p.w, &p.v, &o, cls, 3, &s), QMV_STATUS_BUFFER_TOO_SMALL);
    qmv_verify_options bad = o;
    bad.mode = (qmv_verify_mode)7;
    BAD(qmv_verify(&p.w, &p.v, &bad, cls, 4, &s), QMV_STATUS_INVALID_ARGUMENT);
    bad = o;
    bad.accum = (qmv_dtype)9;
    BAD(qmv_verify(&p.w, &p.v, &bad, cls, 4, &s), QMV_STATUS_INVALID_ARGUMENT);
    bad.accum = QMV_DTYPE_F32;
    bad.p = 0.7;
    BAD(qmv_verify(&p.w, &p.v, &bad, cls, 4, &s), QMV_STATUS_INVALID_ARGUMENT);
    bad.p = -1e-3;
    BAD(qmv_verify(&p.w, &p.v, &bad, cls, 4, &s), QMV_STATUS_INVALID_ARGUMENT);
    bad = (qmv_verify_options){.mode = QMV_VERIFY_EXACT, .order = qmv_order_count()};
    BAD(qmv_verify(&p.w, &p.v, &bad, cls, 4, &s), QMV_STATUS_INVALID_ARGUMENT);
    bad.order = -1;
    BAD(qmv_verify(&p.w, &p.v, &bad, cls, 4, &s), QMV_STATUS_INVALID_ARGUMENT);
    qmv_vectors v = p.v;
    v.batch = 2;
    v.x_batch_stride = 0;
    v.y_batch_stride = 4;
    v.y_bytes = 32;
    BAD(qmv_verify(&p.w, &v, &o, cls, 4, &s), QMV_STATUS_INVALID_ARGUMENT);
    v = p.v;
    v.y_bytes = 8;
    BAD(qmv_verify(&p.w, &v, &o, cls, 4, &s), QMV_STATUS_BUFFER_TOO_SMALL);
    /* classes may be NULL */
    ck_assert_int_eq(qmv_verify(&p.w, &p.v, &o, NULL, 0, &s), QMV_STATUS_OK);
    ck_assert_int_eq(s.count[QMV_VERIFY_PASS], 4);
#undef BAD
}
END_TEST

int main(void)
{
    Suite *s = suite_create("verify");
    TCase *tc = tcase_create("classes");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_honest_passes_every_mode);
    tcase_add_test(tc, test_all_nan_and_all_zero_fail);
    tcase_add_test(tc, test_vacuous_bound_is_weak);
    tcase_add_test(tc, test_inf_input);
    tcase_add_test(tc, test_inf_minus_inf_and_inf_times_zero);
    tcase_add_test(tc, test_nan_input);
    tcase_add_test(tc, test_overflow_of_y_and_of_the_accumulation);
    tcase_add_test(tc, test_inf_scale_unchecked);
    tcase_add_test(tc, test_exact_mode);
    tcase_add_test(tc, test_exact_foreign_order_nan);
    tcase_add_test(tc, test_validation_writes_nothing);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
