/*
 * check_robust.c - hostile but legal uses of the CPU entry points: absurd thread counts,
 * misaligned typed pointers and small thread stacks.
 *
 * Every product is compared bit for bit with qmv_qmv_reference() on the same data, so a call
 * that returns OK without writing y (or writes garbage) fails here.
 */
#include <limits.h>
#include <pthread.h>

#include "test_util.h"

/* One quantized problem: W rows x k in fmt, x m x k (f32), y m x rows (f32). */
typedef struct {
    qmv_format fmt;
    int64_t rows, k, m;
    float *w;     /* rows x k, the quantize input */
    uint32_t *packed;
    void *scales, *biases;
    qmv_layout l;
    float g;
    qmv_qmatrix qm;
    float *x;
    float *y_ref;
} problem;

static qmv_vectors problem_vectors(const problem *p, float *y);

static void problem_make(problem *p, qmv_mode mode, int64_t rows, int64_t k, int64_t m)
{
    memset(p, 0, sizeof *p);
    ck_assert_int_eq(qmv_format_default(mode, &p->fmt), QMV_STATUS_OK);
    p->rows = rows;
    p->k = k;
    p->m = m;
    tu_rng r = {42};
    p->w = tu_malloc((size_t)(rows * k) * sizeof(float));
    for (int64_t i = 0; i < rows * k; i++)
        p->w[i] = (float)tu_range(&r, -1000, 1000) / 256.0f;
    ck_assert_int_eq(qmv_layout_query(&p->fmt, QMV_DTYPE_F32, rows, k, &p->l), QMV_STATUS_OK);
    p->packed = tu_malloc(p->l.packed_bytes);
    p->scales = tu_malloc(p->l.scales_bytes);
    p->biases = p->l.biases_bytes ? tu_malloc(p->l.biases_bytes) : NULL;
    p->g = 448.0f * 6.0f;
    const float *g = mode == QMV_MODE_NVFP4 ? &p->g : NULL;
    const qmv_quant_out out = {p->packed, p->l.packed_bytes, p->scales, p->l.scales_bytes,
                               p->biases, p->l.biases_bytes};
    ck_assert_int_eq(qmv_quantize(&p->fmt, QMV_PROFILE_MLX_CPU, g, QMV_DTYPE_F32, p->w,
                                  (size_t)(rows * k) * sizeof(float), rows, k, k, &out, NULL),
                     QMV_STATUS_OK);
    ck_assert_int_eq(qmv_qmatrix_dense(&p->fmt, QMV_DTYPE_F32, rows, k, p->packed, p->scales,
                                       p->biases, &p->qm),
                     QMV_STATUS_OK);
    p->qm.global_scale = g;
    p->x = tu_malloc((size_t)(m * k) * sizeof(float));
    for (int64_t i = 0; i < m * k; i++)
        p->x[i] = (float)tu_range(&r, -1000, 1000) / 512.0f;
    p->y_ref = tu_malloc((size_t)(m * rows) * sizeof(float));
    qmv_vectors v = problem_vectors(p, p->y_ref);
    ck_assert_int_eq(qmv_qmv_reference(&p->qm, &v), QMV_STATUS_OK);
}

static qmv_vectors problem_vectors(const problem *p, float *y)
{
    qmv_vectors v;
    memset(&v, 0, sizeof v);
    v.batch = 1;
    v.m = p->m;
    v.x_dtype = QMV_DTYPE_F32;
    v.x = p->x;
    v.x_bytes = (size_t)(p->m * p->k) * sizeof(float);
    v.x_row_stride = p->k;
    v.y_dtype = QMV_DTYPE_F32;
    v.y = y;
    v.y_bytes = (size_t)(p->m * p->rows) * sizeof(float);
    v.y_row_stride = p->rows;
    return v;
}

static void problem_free(problem *p)
{
    free(p->w);
    free(p->packed);
    free(p->scales);
    free(p->biases);
    free(p->x);
    free(p->y_ref);
}

/* qmv_qmv with exec {threads, tier} must give the reference's bits (y poisoned before). */
static void check_product(const problem *p, int threads, unsigned tier)
{
    const size_t yb = (size_t)(p->m * p->rows) * sizeof(float);
    float *y = tu_malloc(yb);
    memset(y, 0xA5, yb);
    qmv_vectors v = problem_vectors(p, y);
    qmv_exec ex = QMV_EXEC_INIT;
    ex.num_threads = threads;
    ex.cpu_tiers = tier;
    ck_assert_int_eq(qmv_qmv(&p->qm, &v, &ex), QMV_STATUS_OK);
    ck_assert_msg(tu_first_diff(y, p->y_ref, yb) < 0, "threads %d tier %u: y differs at byte %ld",
                  threads, tier, tu_first_diff(y, p->y_ref, yb));
    free(y);
}

static const unsigned TIERS[] = {QMV_CPU_TIER_SCALAR, QMV_CPU_TIER_AVX2, QMV_CPU_TIER_AVX512,
                                 QMV_CPU_TIER_NEON};
#define NTIERS 4

/* ---- item 1: thread counts beyond what can run are clamped, every entry point ------------ */

static const int HUGE_THREADS[] = {QMV_MAX_THREADS + 1, 32768, 65536, 1 << 30, INT_MAX};
#define NHUGE ((int)(sizeof HUGE_THREADS / sizeof HUGE_THREADS[0]))

START_TEST(test_threads_qmv)
{
    problem p;
    problem_make(&p, QMV_MODE_AFFINE, 64, 1024, 3);
    for (int t = 0; t < NTIERS; t++) {
        if (!(qmv_cpu_tiers_supported() & TIERS[t]))
            continue;
        for (int i = 0; i < NHUGE; i++)
            check_product(&p, HUGE_THREADS[i], TIERS[t]);
    }
    problem_free(&p);
}
END_TEST

START_TEST(test_threads_quantize_dequantize)
{
    problem p;
    problem_make(&p, QMV_MODE_AFFINE, 64, 1024, 1);
    const size_t wb = (size_t)(p.rows * p.k) * sizeof(float);
    uint32_t *packed = tu_malloc(p.l.packed_bytes);
    void *scales = tu_malloc(p.l.scales_bytes), *biases = tu_malloc(p.l.biases_bytes);
    float *deq = tu_malloc(wb), *deq1 = tu_malloc(wb);
    qmv_exec one = QMV_EXEC_INIT;
    one.num_threads = 1;
    ck_assert_int_eq(qmv_dequantize(&p.qm, QMV_DTYPE_F32, deq1, wb, p.k, &one), QMV_STATUS_OK);
    for (int t = 0; t < NTIERS; t++) {
        if (!(qmv_cpu_tiers_supported() & TIERS[t]))
            continue;
        for (int i = 0; i < NHUGE; i++) {
            qmv_exec ex = QMV_EXEC_INIT;
            ex.num_threads = HUGE_THREADS[i];
            ex.cpu_tiers = TIERS[t];
            memset(packed, 0xA5, p.l.packed_bytes);
            const qmv_quant_out out = {packed, p.l.packed_bytes, scales, p.l.scales_bytes,
                                       biases, p.l.biases_bytes};
            ck_assert_int_eq(qmv_quantize(&p.fmt, QMV_PROFILE_MLX_CPU, NULL, QMV_DTYPE_F32, p.w,
                                          wb, p.rows, p.k, p.k, &out, &ex),
                             QMV_STATUS_OK);
            ck_assert_msg(tu_first_diff(packed, p.packed, p.l.packed_bytes) < 0,
                          "quantize: threads %d tier %u differ", ex.num_threads, ex.cpu_tiers);
            memset(deq, 0xA5, wb);
            ck_assert_int_eq(qmv_dequantize(&p.qm, QMV_DTYPE_F32, deq, wb, p.k, &ex),
                             QMV_STATUS_OK);
            ck_assert_msg(tu_first_diff(deq, deq1, wb) < 0, "dequantize: threads %d tier %u differ",
                          ex.num_threads, ex.cpu_tiers);
        }
    }
    free(packed);
    free(scales);
    free(biases);
    free(deq);
    free(deq1);
    problem_free(&p);
}
END_TEST

/* ---- item 3: typed pointers must be aligned; misaligned ones are rejected ---------------- */

START_TEST(test_misaligned_packed)
{
    problem p;
    problem_make(&p, QMV_MODE_NVFP4, 8, 256, 1);
    /* the same words one byte further on: a misaligned uint32_t pointer */
    unsigned char *raw = tu_malloc(p.l.packed_bytes + 8);
    memcpy(raw + 1, p.packed, p.l.packed_bytes);
    const size_t yb = (size_t)(p.m * p.rows) * sizeof(float);
    float *y = tu_malloc(yb);
    memset(y, 0xA5, yb);

    qmv_qmatrix w = p.qm;
    w.packed = (const uint32_t *)(const void *)(raw + 1);
    qmv_vectors v = problem_vectors(&p, y);
    ck_assert_int_eq(qmv_qmv(&w, &v, NULL), QMV_STATUS_INVALID_ARGUMENT);
    ck_assert_msg(strstr(qmv_last_error(), "aligned") != NULL, "message: %s", qmv_last_error());
    ck_assert_int_eq(qmv_qmv_reference(&w, &v), QMV_STATUS_INVALID_ARGUMENT);
    ck_assert(tu_all_bytes(y, yb, 0xA5));
    const size_t db = (size_t)(p.rows * p.k) * sizeof(float);
    float *deq = tu_malloc(db);
    ck_assert_int_eq(qmv_dequantize(&w, QMV_DTYPE_F32, deq, db, p.k, NULL),
                     QMV_STATUS_INVALID_ARGUMENT);

    /* a misaligned global scale */
    unsigned char graw[8];
    memcpy(graw + 1, &p.g, sizeof p.g);
    w = p.qm;
    w.global_scale = (const float *)(const void *)(graw + 1);
    ck_assert_int_eq(qmv_qmv(&w, &v, NULL), QMV_STATUS_INVALID_ARGUMENT);
    ck_assert(tu_all_bytes(y, yb, 0xA5));

    /* quantize into a misaligned packed buffer, and with a misaligned global scale */
    qmv_quant_out out = {(uint32_t *)(void *)(raw + 1), p.l.packed_bytes, p.scales,
                         p.l.scales_bytes, NULL, 0};
    ck_assert_int_eq(qmv_quantize(&p.fmt, QMV_PROFILE_MLX_CPU, &p.g, QMV_DTYPE_F32, p.w, db,
                                  p.rows, p.k, p.k, &out, NULL),
                     QMV_STATUS_INVALID_ARGUMENT);
    out.packed = p.packed;
    ck_assert_int_eq(qmv_quantize(&p.fmt, QMV_PROFILE_MLX_CPU,
                                  (const float *)(const void *)(graw + 1), QMV_DTYPE_F32, p.w, db,
                                  p.rows, p.k, p.k, &out, NULL),
                     QMV_STATUS_INVALID_ARGUMENT);
    free(deq);
    free(y);
    free(raw);
    problem_free(&p);
}
END_TEST

/* ---- item 5: each tier runs within the stack qmv.h documents for it ----------------------- */

typedef struct {
    const problem *p;
    unsigned tier;
    float *y;
    qmv_status st;
} stack_job;

static void *stack_run(void *arg)
{
    stack_job *j = arg;
    qmv_vectors v = problem_vectors(j->p, j->y);
    qmv_exec ex = QMV_EXEC_INIT;
    ex.num_threads = 1; /* on this thread */
    ex.cpu_tiers = j->tier;
    j->st = qmv_qmv(&j->p->qm, &v, &ex);
    return NULL;
}

/* The documented need of a tier plus what the thread itself takes (its TLS and the test's
 * frames). A stack overflow kills the forked test with SIGSEGV. */
static void check_on_stack(const problem *p, unsigned tier, size_t stack_bytes)
{
    const size_t yb = (size_t)(p->m * p->rows) * sizeof(float);
    stack_job j = {p, tier, tu_malloc(yb), QMV_STATUS_IO_ERROR};
    memset(j.y, 0xA5, yb);
    pthread_attr_t a;
    ck_assert_int_eq(pthread_attr_init(&a), 0);
#ifdef PTHREAD_STACK_MIN
    /* the C library's floor (128 KiB on AArch64 Linux, more than the scalar tier needs):
     * below it pthread_attr_setstacksize refuses */
    if (stack_bytes < (size_t)PTHREAD_STACK_MIN)
        stack_bytes = (size_t)PTHREAD_STACK_MIN;
#endif
    ck_assert_int_eq(pthread_attr_setstacksize(&a, stack_bytes), 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, &a, stack_run, &j), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    pthread_attr_destroy(&a);
    ck_assert_int_eq(j.st, QMV_STATUS_OK);
    ck_assert_msg(tu_first_diff(j.y, p->y_ref, yb) < 0, "tier %u on a %zu-byte stack: y differs",
                  tier, stack_bytes);
    free(j.y);
}

/* AddressSanitizer's redzones and fake frames make every frame larger: the documented
 * stack is that of a normal build, so under ASan the test runs with a 4x larger stack. */
#if defined(__SANITIZE_ADDRESS__)
#define STACK_SCALE 4
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STACK_SCALE 4
#endif
#endif
#ifndef STACK_SCALE
#define STACK_SCALE 1
#endif

START_TEST(test_small_stack)
{
    static const struct {
        unsigned tier;
        size_t need;
    } need[] = {
        {QMV_CPU_TIER_SCALAR, QMV_STACK_SCALAR},
        {QMV_CPU_TIER_AVX2, QMV_STACK_AVX2},
        {QMV_CPU_TIER_AVX512, QMV_STACK_AVX512},
        {QMV_CPU_TIER_NEON, QMV_STACK_NEON},
    };
    /* the scalar tier fits in a 32 KiB thread stack */
    ck_assert_int_le(QMV_STACK_SCALAR + 8192, 32768);
    static const qmv_mode modes[] = {QMV_MODE_AFFINE, QMV_MODE_NVFP4};
    for (int mi = 0; mi < 2; mi++) {
        problem p;
        problem_make(&p, modes[mi], 16, 8192, 5);
        for (int t = 0; t < NTIERS; t++)
            if (qmv_cpu_tiers_supported() & need[t].tier)
                check_on_stack(&p, need[t].tier, STACK_SCALE * need[t].need + 8192);
        problem_free(&p);
    }
}
END_TEST

static Suite *robust_suite(void)
{
    Suite *s = suite_create("robust");
    TCase *tc = tcase_create("threads");
    tcase_add_test(tc, test_threads_qmv);
    tcase_add_test(tc, test_threads_quantize_dequantize);
    suite_add_tcase(s, tc);
    tc = tcase_create("alignment");
    tcase_add_test(tc, test_misaligned_packed);
    suite_add_tcase(s, tc);
    tc = tcase_create("stack");
    tcase_add_test(tc, test_small_stack);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(robust_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
