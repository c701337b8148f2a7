/*
 * check_format.c - the format traits as the public API shows them: versions, status strings,
 * names of dtypes / modes / profiles, dtype sizes, MLX's default formats, the layout sizes of
 * every format and qmv_qmatrix_dense.
 */
#include <limits.h>

#include "test_util.h"

static void expect_clear_message(const char *what)
{
    const char *m = qmv_last_error();
    ck_assert_msg(m != NULL && m[0] == '\0', "%s: qmv_last_error() = \"%s\" after a success", what,
                  m ? m : "(null)");
}

/* ---- versions ------------------------------------------------------------------------------ */

START_TEST(test_versions)
{
    ck_assert_uint_eq(qmv_version_number(), QMV_VERSION_NUMBER);
    ck_assert_ptr_nonnull(qmv_version_string());
    ck_assert_str_eq(qmv_version_string(), QMV_VERSION_STRING);
    ck_assert_uint_eq(qmv_order_version(), QMV_ORDER_VERSION);
    ck_assert_int_eq(QMV_ORDER_VERSION, 1);
    /* the macros agree with each other */
    char buf[32];
    snprintf(buf, sizeof buf, "%d.%d.%d", QMV_VERSION_MAJOR, QMV_VERSION_MINOR, QMV_VERSION_PATCH);
    ck_assert_str_eq(buf, QMV_VERSION_STRING);
    ck_assert_int_eq(QMV_VERSION_NUMBER,
                     QMV_VERSION_MAJOR * 10000 + QMV_VERSION_MINOR * 100 + QMV_VERSION_PATCH);
}
END_TEST

/* ---- status strings ------------------------------------------------------------------------- */

START_TEST(test_status_strings)
{
    static const struct {
        qmv_status st;
        int value;
        const char *text;
    } table[] = {
#define QT_X(name, value, text) {QMV_STATUS_##name, value, text},
        QMV_STATUS_LIST(QT_X)
#undef QT_X
    };
    const int n = (int)(sizeof table / sizeof table[0]);
    ck_assert_int_eq(n, 11);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq((int)table[i].st, table[i].value);
        ck_assert_int_eq(table[i].value, i); /* stable, dense values 0..10 */
        const char *s = qmv_status_string(table[i].st);
        ck_assert_ptr_nonnull(s);
        ck_assert_str_eq(s, table[i].text);
    }
    /* the pinned values */
    ck_assert_int_eq(QMV_STATUS_OK, 0);
    ck_assert_int_eq(QMV_STATUS_INVALID_ARGUMENT, 1);
    ck_assert_int_eq(QMV_STATUS_UNSUPPORTED, 2);
    ck_assert_int_eq(QMV_STATUS_BUFFER_TOO_SMALL, 3);
    ck_assert_int_eq(QMV_STATUS_OUT_OF_MEMORY, 4);
    ck_assert_int_eq(QMV_STATUS_MALFORMED_INPUT, 5);
    ck_assert_int_eq(QMV_STATUS_IO_ERROR, 6);
    ck_assert_int_eq(QMV_STATUS_NO_DEVICE, 7);
    ck_assert_int_eq(QMV_STATUS_DEVICE_ERROR, 8);
    ck_assert_int_eq(QMV_STATUS_NON_FINITE, 9);
    ck_assert_int_eq(QMV_STATUS_OVERFLOW, 10);
    static const int out[] = {-1, 11, 12, 100, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++) {
        const char *s = qmv_status_string((qmv_status)out[i]);
        ck_assert_ptr_nonnull(s);
        ck_assert_str_eq(s, "unknown status");
    }
}
END_TEST

/* ---- names and sizes ------------------------------------------------------------------------- */

START_TEST(test_dtype_names)
{
    static const char *names[QMV_DTYPE_COUNT] = {"float32", "float16", "bfloat16"};
    static const size_t sizes[QMV_DTYPE_COUNT] = {4, 2, 2};
    ck_assert_int_eq(QMV_DTYPE_F32, 0);
    ck_assert_int_eq(QMV_DTYPE_F16, 1);
    ck_assert_int_eq(QMV_DTYPE_BF16, 2);
    for (int d = 0; d < QMV_DTYPE_COUNT; d++) {
        ck_assert_ptr_nonnull(qmv_dtype_name((qmv_dtype)d));
        ck_assert_str_eq(qmv_dtype_name((qmv_dtype)d), names[d]);
        ck_assert_uint_eq(qmv_dtype_size((qmv_dtype)d), sizes[d]);
        qmv_dtype back = (qmv_dtype)-7;
        ck_assert_int_eq(qmv_dtype_from_name(names[d], &back), QMV_STATUS_OK);
        expect_clear_message("qmv_dtype_from_name");
        ck_assert_int_eq(back, d);
        /* round trip through the library's own name */
        back = (qmv_dtype)-7;
        ck_assert_int_eq(qmv_dtype_from_name(qmv_dtype_name((qmv_dtype)d), &back), QMV_STATUS_OK);
        ck_assert_int_eq(back, d);
    }
    static const int out[] = {-1, QMV_DTYPE_COUNT, 100, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++) {
        ck_assert_ptr_null(qmv_dtype_name((qmv_dtype)out[i]));
        ck_assert_uint_eq(qmv_dtype_size((qmv_dtype)out[i]), 0);
    }
}
END_TEST

START_TEST(test_mode_names)
{
    static const char *names[QMV_MODE_COUNT] = {"affine", "mxfp4", "nvfp4", "mxfp8"};
    ck_assert_int_eq(QMV_MODE_AFFINE, 0);
    ck_assert_int_eq(QMV_MODE_MXFP4, 1);
    ck_assert_int_eq(QMV_MODE_NVFP4, 2);
    ck_assert_int_eq(QMV_MODE_MXFP8, 3);
    for (int m = 0; m < QMV_MODE_COUNT; m++) {
        ck_assert_ptr_nonnull(qmv_mode_name((qmv_mode)m));
        ck_assert_str_eq(qmv_mode_name((qmv_mode)m), names[m]);
        qmv_mode back = (qmv_mode)-7;
        ck_assert_int_eq(qmv_mode_from_name(names[m], &back), QMV_STATUS_OK);
        expect_clear_message("qmv_mode_from_name");
        ck_assert_int_eq(back, m);
    }
    static const int out[] = {-1, QMV_MODE_COUNT, 100, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++)
        ck_assert_ptr_null(qmv_mode_name((qmv_mode)out[i]));
}
END_TEST

START_TEST(test_profile_names)
{
    static const char *names[QMV_PROFILE_COUNT] = {"mlx-cpu", "mlx-cuda", "ocp"};
    ck_assert_int_eq(QMV_PROFILE_MLX_CPU, 0);
    ck_assert_int_eq(QMV_PROFILE_MLX_CUDA, 1);
    ck_assert_int_eq(QMV_PROFILE_OCP, 2);
    for (int p = 0; p < QMV_PROFILE_COUNT; p++) {
        ck_assert_ptr_nonnull(qmv_profile_name((qmv_profile)p));
        ck_assert_str_eq(qmv_profile_name((qmv_profile)p), names[p]);
        qmv_profile back = (qmv_profile)-7;
        ck_assert_int_eq(qmv_profile_from_name(names[p], &back), QMV_STATUS_OK);
        expect_clear_message("qmv_profile_from_name");
        ck_assert_int_eq(back, p);
    }
    static const int out[] = {-1, QMV_PROFILE_COUNT, 100, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++)
        ck_assert_ptr_null(qmv_profile_name((qmv_profile)out[i]));
}
END_TEST

/* ---- default formats ------------------------------------------------------------------------- */

START_TEST(test_format_defaults)
{
    static const qmv_format want[QMV_MODE_COUNT] = {
        {QMV_MODE_AFFINE, 4, 64},
        {QMV_MODE_MXFP4, 4, 32},
        {QMV_MODE_NVFP4, 4, 16},
        {QMV_MODE_MXFP8, 8, 32},
    };
    for (int m = 0; m < QMV_MODE_COUNT; m++) {
        qmv_format f;
        memset(&f, 0xA5, sizeof f);
        ck_assert_int_eq(qmv_format_default((qmv_mode)m, &f), QMV_STATUS_OK);
        expect_clear_message("qmv_format_default");
        ck_assert_int_eq(f.mode, want[m].mode);
        ck_assert_int_eq(f.bits, want[m].bits);
        ck_assert_int_eq(f.group_size, want[m].group_size);
        ck_assert_int_eq(qmv_format_validate(&f), QMV_STATUS_OK);
        expect_clear_message("qmv_format_validate");
    }
}
END_TEST

/* Every format of the test table validates. */
START_TEST(test_formats_valid)
{
    for (int i = 0; i < TU_NFMTS; i++) {
        qmv_format f = tu_format(&TU_FMTS[i]);
        ck_assert_msg(qmv_format_validate(&f) == QMV_STATUS_OK, "%s %d/%d rejected",
                      tu_mname(f.mode), f.bits, f.group_size);
        expect_clear_message("qmv_format_validate");
    }
}
END_TEST

/* ---- layout sizes ---------------------------------------------------------------------------- */

START_TEST(test_layout_sizes)
{
    const tu_fmt *tf = &TU_FMTS[_i];
    const qmv_format fmt = tu_format(tf);
    const int affine = fmt.mode == QMV_MODE_AFFINE;
    const int64_t g = fmt.group_size;
    const int64_t ks[] = {0, g, 2 * g, 3 * g, 4096, 4096 + g, 8192 + g, 16384};
    const int64_t rows_list[] = {0, 1, 3, 67, 16384};
    for (int sd = 0; sd < QMV_DTYPE_COUNT; sd++)
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
            for (size_t ri = 0; ri < sizeof rows_list / sizeof rows_list[0]; ri++) {
                const int64_t k = ks[ki], rows = rows_list[ri];
                qmv_layout l;
                memset(&l, 0xA5, sizeof l);
                qmv_status st = qmv_layout_query(&fmt, (qmv_dtype)sd, rows, k, &l);
                ck_assert_msg(st == QMV_STATUS_OK,
                              "%s %d/%d sd %d rows %lld k %lld: status %d (%s)", tu_mname(fmt.mode),
                              fmt.bits, fmt.group_size, sd, (long long)rows, (long long)k, (int)st,
                              qmv_last_error());
                expect_clear_message("qmv_layout_query");
                const int64_t wpr = k * fmt.bits / 32, G = k / g;
                ck_assert_int_eq(k * fmt.bits % 32, 0); /* whole words for every valid format */
                const size_t es = affine ? tu_dsize((qmv_dtype)sd) : 1;
                ck_assert_int_eq(l.words_per_row, wpr);
                ck_assert_int_eq(l.groups_per_row, G);
                ck_assert_uint_eq(l.packed_bytes, (size_t)(rows * wpr) * 4);
                ck_assert_uint_eq(l.scales_bytes, (size_t)(rows * G) * es);
                ck_assert_uint_eq(l.biases_bytes, affine ? (size_t)(rows * G) * es : 0);
            }
}
END_TEST

/* Hand-computed values, one per bit width: words per row are k * bits / 32. */
START_TEST(test_layout_examples)
{
    static const struct {
        qmv_format f;
        qmv_dtype sd;
        int64_t rows, k;
        int64_t wpr, gpr;
        size_t pb, sb, bb;
    } ex[] = {
        {{QMV_MODE_AFFINE, 2, 32}, QMV_DTYPE_F32, 2, 32, 2, 1, 16, 8, 8},
        {{QMV_MODE_AFFINE, 3, 32}, QMV_DTYPE_F16, 2, 32, 3, 1, 24, 4, 4},
        {{QMV_MODE_AFFINE, 4, 64}, QMV_DTYPE_BF16, 5, 4096, 512, 64, 10240, 640, 640},
        {{QMV_MODE_AFFINE, 5, 128}, QMV_DTYPE_F32, 1, 128, 20, 1, 80, 4, 4},
        {{QMV_MODE_AFFINE, 6, 64}, QMV_DTYPE_F16, 3, 192, 36, 3, 432, 18, 18},
        {{QMV_MODE_AFFINE, 8, 128}, QMV_DTYPE_F32, 4, 256, 64, 2, 1024, 32, 32},
        {{QMV_MODE_MXFP4, 4, 32}, QMV_DTYPE_F32, 3, 96, 12, 3, 144, 9, 0},
        {{QMV_MODE_NVFP4, 4, 16}, QMV_DTYPE_F16, 3, 48, 6, 3, 72, 9, 0},
        {{QMV_MODE_NVFP4, 4, 16}, QMV_DTYPE_BF16, 1, 16, 2, 1, 8, 1, 0},
        {{QMV_MODE_MXFP8, 8, 32}, QMV_DTYPE_F32, 2, 64, 16, 2, 128, 4, 0},
    };
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        qmv_layout l;
        ck_assert_int_eq(qmv_layout_query(&ex[i].f, ex[i].sd, ex[i].rows, ex[i].k, &l),
                         QMV_STATUS_OK);
        ck_assert_int_eq(l.words_per_row, ex[i].wpr);
        ck_assert_int_eq(l.groups_per_row, ex[i].gpr);
        ck_assert_uint_eq(l.packed_bytes, ex[i].pb);
        ck_assert_uint_eq(l.scales_bytes, ex[i].sb);
        ck_assert_uint_eq(l.biases_bytes, ex[i].bb);
    }
}
END_TEST

START_TEST(test_qmatrix_dense)
{
    const tu_fmt *tf = &TU_FMTS[_i];
    const qmv_format fmt = tu_format(tf);
    const int affine = fmt.mode == QMV_MODE_AFFINE;
    const int64_t rows = 7, k = 3 * (int64_t)fmt.group_size;
    for (int sd = 0; sd < QMV_DTYPE_COUNT; sd++) {
        qmv_layout l;
        ck_assert_int_eq(qmv_layout_query(&fmt, (qmv_dtype)sd, rows, k, &l), QMV_STATUS_OK);
        uint32_t *pk = tu_malloc(l.packed_bytes);
        unsigned char *sc = tu_malloc(l.scales_bytes);
        unsigned char *bi = affine ? tu_malloc(l.biases_bytes) : NULL;
        qmv_qmatrix w;
        memset(&w, 0xA5, sizeof w);
        ck_assert_int_eq(qmv_qmatrix_dense(&fmt, (qmv_dtype)sd, rows, k, pk, sc, bi, &w),
                         QMV_STATUS_OK);
        expect_clear_message("qmv_qmatrix_dense");
        ck_assert_int_eq(w.format.mode, fmt.mode);
        ck_assert_int_eq(w.format.bits, fmt.bits);
        ck_assert_int_eq(w.format.group_size, fmt.group_size);
        if (affine)
            ck_assert_int_eq(w.scale_dtype, sd);
        ck_assert_int_eq(w.rows, rows);
        ck_assert_int_eq(w.k, k);
        ck_assert_ptr_eq(w.packed, pk);
        ck_assert_uint_eq(w.packed_bytes, l.packed_bytes);
        ck_assert_int_eq(w.packed_row_stride, l.words_per_row);
        ck_assert_int_eq(w.packed_batch_stride, 0);
        ck_assert_ptr_eq(w.scales, sc);
        ck_assert_uint_eq(w.scales_bytes, l.scales_bytes);
        ck_assert_ptr_eq(w.biases, bi);
        ck_assert_uint_eq(w.biases_bytes, l.biases_bytes);
        ck_assert_int_eq(w.scales_row_stride, l.groups_per_row);
        ck_assert_int_eq(w.scales_batch_stride, 0);
        ck_assert_ptr_null(w.global_scale);
        free(pk);
        free(sc);
        free(bi);
    }
}
END_TEST

/* ---- runner --------------------------------------------------------------------------------- */

int main(void)
{
    Suite *s = suite_create("format");
    TCase *tc = tcase_create("api");
    tcase_add_test(tc, test_versions);
    tcase_add_test(tc, test_status_strings);
    tcase_add_test(tc, test_dtype_names);
    tcase_add_test(tc, test_mode_names);
    tcase_add_test(tc, test_profile_names);
    tcase_add_test(tc, test_format_defaults);
    tcase_add_test(tc, test_formats_valid);
    tcase_add_test(tc, test_layout_examples);
    suite_add_tcase(s, tc);
    TCase *tl = tcase_create("layout");
    tcase_set_timeout(tl, 60);
    tcase_add_loop_test(tl, test_layout_sizes, 0, TU_NFMTS);
    tcase_add_loop_test(tl, test_qmatrix_dense, 0, TU_NFMTS);
    suite_add_tcase(s, tl);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
