/*
 * check_dequantize.c - qmv_dequantize against an independent oracle of FORMATS.md §4 and the
 * contract in qmv.h:
 *   affine:  fl_R(fl_R(q * s) + b) in the scales' dtype R, then rounded to the output dtype;
 *   fp modes: elem * scale [* fl32(g / 2688)] rounded ONCE to the output dtype (the product
 *            elem * scale is exact), E8M0 0xFF and E4M3 0x7F/0xFF decode as NaN (a
 *            documented deviation from MLX's CPU, which gives Inf and 480).
 * Every mode, bit width, group size, scale dtype and output dtype, over random codes, random
 * scale bytes / scale values (NaN, Inf, subnormals and zeros included), padded row strides
 * and the nvfp4 global scale. Values are computed in double from the bit fields
 * (tests/test_util.h), never with the library's codec.
 *
 * Debug a failure in gdb with CK_FORK=no.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmv.h"
#include "test_util.h"

static const qmv_dtype DTYPES[3] = {QMV_DTYPE_F32, QMV_DTYPE_F16, QMV_DTYPE_BF16};

/* ---- The oracle ------------------------------------------------------------------------ */

static double elem_value(qmv_mode m, unsigned c)
{
    if (m == QMV_MODE_MXFP4 || m == QMV_MODE_NVFP4)
        return tu_e2m1_value(c);
    if (m == QMV_MODE_MXFP8)
        return tu_e4m3_value(c);
    return (double)c;
}

/* The value of output element (r, i), unrounded for fp modes (exact in double: at most
 * 8 significant bits times a 24-bit factor) and already in R for affine. */
static double oracle_value(const qmv_qmatrix *w, int64_t r, int64_t i, double gmul)
{
    const qmv_format *f = &w->format;
    const uint32_t *row = w->packed + r * w->packed_row_stride;
    const unsigned c = tu_code_get(row, i, f->bits);
    const int64_t si = r * w->scales_row_stride + i / f->group_size;
    if (f->mode == QMV_MODE_AFFINE) {
        const qmv_dtype rt = w->scale_dtype;
        const double s = tu_load(rt, w->scales, si), b = tu_load(rt, w->biases, si);
        /* double-rounding theorem: a binary64 op of two R values rounded to R is exact */
        return tu_round_dtype(rt, tu_round_dtype(rt, (double)c * s) + b);
    }
    const unsigned sb = ((const uint8_t *)w->scales)[si];
    const double s = f->mode == QMV_MODE_NVFP4 ? tu_e4m3_value(sb) : tu_e8m0_value(sb);
    if (w->global_scale) /* MLX's two float32 roundings (every backend computes it so) */
        return tu_round_f32(elem_value(f->mode, c) * tu_round_f32(s * gmul));
    return elem_value(f->mode, c) * s; /* exact, rounded once by the caller */
}

/* ---- Random inputs ----------------------------------------------------------------------- */

/* A random affine scale or bias of dtype t: mostly ordinary values, also random bit
 * patterns (NaN, Inf, subnormals), signed zeros, tiny and overflowing magnitudes. */
static void random_float(tu_rng *r, qmv_dtype t, void *p, int64_t i)
{
    const int fp16 = t == QMV_DTYPE_F16;
    switch (tu_int(r, 0, 9)) {
    case 0: { /* any bit pattern */
        uint32_t u = tu_u32(r);
        if (t == QMV_DTYPE_F32)
            memcpy((char *)p + 4 * i, &u, 4);
        else {
            uint16_t h = (uint16_t)u;
            memcpy((char *)p + 2 * i, &h, 2);
        }
        return;
    }
    case 1:
        tu_store(t, p, i, (tu_next(r) & 1) ? -0.0 : 0.0);
        return;
    case 2: /* tiny / subnormal */
        tu_store(t, p, i,
                 tu_normal(r) * ldexp(1.0, fp16 ? tu_int(r, -26, -14) : tu_int(r, -150, -120)));
        return;
    case 3: /* large: q * s or the sum may overflow */
        tu_store(t, p, i, tu_normal(r) * ldexp(1.0, fp16 ? tu_int(r, 8, 15) : tu_int(r, 120, 127)));
        return;
    default:
        tu_store(t, p, i, tu_normal(r) * ldexp(1.0, tu_int(r, -10, 10)));
        return;
    }
}

/* Loop index: (config * 3 + scale dtype) * 3 + out dtype. For fp modes the scale dtype only
 * changes the random data. */
START_TEST(dequantize_vs_oracle)
{
    const int od = _i % 3, sd = (_i / 3) % 3, ci = _i / 9;
    const int with_g = TU_FMTS[ci].global;
    const qmv_format fmt = tu_format(&TU_FMTS[ci]);
    const qmv_dtype st = DTYPES[sd], ot = DTYPES[od];
    const int affine = fmt.mode == QMV_MODE_AFFINE;
    const int64_t rows = 9, k = 384 / fmt.group_size * fmt.group_size;
    tu_rng r = {0xDE0ull * 1000003u + (uint64_t)_i};
    qmv_layout lay;
    ck_assert_int_eq(qmv_layout_query(&fmt, st, rows, k, &lay), QMV_STATUS_OK);
    /* padded strides: garbage in the padding must not matter */
    const int64_t pstride = lay.words_per_row + 3, sstride = lay.groups_per_row + 2;
    const int64_t ostride = k + 5;
    const size_t es = affine ? tu_dsize(st) : 1;
    uint32_t *packed = malloc((size_t)(rows * pstride) * 4);
    unsigned char *scales = malloc((size_t)(rows * sstride) * es);
    unsigned char *biases = malloc((size_t)(rows * sstride) * es);
    for (int64_t j = 0; j < rows * pstride; j++)
        packed[j] = tu_u32(&r);
    for (int64_t j = 0; j < rows * sstride; j++) {
        if (affine) {
            random_float(&r, st, scales, j);
            random_float(&r, st, biases, j);
        } else {
            /* bytes: uniform, with the special ones (0, 0xFF, 0x7F, 0x80) often */
            static const uint8_t sp[] = {0x00, 0xFF, 0x7F, 0x80, 0xFE, 0x7E, 0x01, 0x81};
            scales[j] = (tu_next(&r) % 5 == 0) ? sp[tu_int(&r, 0, 7)] : (uint8_t)tu_u32(&r);
        }
    }
    float g = 0.0f;
    if (with_g) {
        static const double gs[] = {1.0, 2688.0, 1e-30, 1e30, 3.0};
        g = (float)((tu_next(&r) & 1) ? gs[tu_int(&r, 0, 4)]
                                      : ldexp(1.0 + tu_unif(&r), tu_int(&r, -20, 20)));
    }
    qmv_qmatrix w;
    memset(&w, 0, sizeof w);
    w.format = fmt;
    w.scale_dtype = st;
    w.rows = rows;
    w.k = k;
    w.packed = packed;
    w.packed_bytes = (size_t)(rows * pstride) * 4;
    w.packed_row_stride = pstride;
    w.packed_batch_stride = 12345; /* batch strides are ignored by dequantize (qmv.h) */
    w.scales = scales;
    w.scales_bytes = (size_t)(rows * sstride) * es;
    w.biases = affine ? biases : NULL;
    w.biases_bytes = affine ? w.scales_bytes : 0;
    w.scales_row_stride = sstride;
    w.scales_batch_stride = 777;
    w.global_scale = with_g ? &g : NULL;
    const size_t obytes = (size_t)(rows * ostride) * tu_dsize(ot);
    unsigned char *out = malloc(obytes);
    memset(out, 0xA5, obytes);
    qmv_exec ex = {sizeof ex, 1, 0};
    qmv_status s = qmv_dequantize(&w, ot, out, obytes, ostride, &ex);
    ck_assert_msg(s == QMV_STATUS_OK, "status %d: %s", s, qmv_last_error());
    const double gmul = with_g ? tu_round_f32((double)g / 2688.0) : 1.0;
    tu_fails fl = {0};
    for (int64_t rr = 0; rr < rows; rr++) {
        for (int64_t i = 0; i < ostride; i++) {
            const int64_t o = rr * ostride + i;
            if (i >= k) { /* padding untouched */
                for (size_t b = 0; b < tu_dsize(ot); b++)
                    if (out[(size_t)o * tu_dsize(ot) + b] != 0xA5)
                        TU_FAIL(&fl, "row %lld padding element %lld written", (long long)rr,
                                (long long)i);
                continue;
            }
            const double v = oracle_value(&w, rr, i, gmul);
            const double want = tu_round_dtype(ot, v);
            const uint32_t gb = tu_load_bits(ot, out, o);
            const double got = tu_load(ot, out, o);
            int ok;
            uint32_t wb = 0;
            if (isnan(want)) {
                ok = isnan(got);
            } else {
                wb = ot == QMV_DTYPE_F32   ? tu_f32_bits(want)
                     : ot == QMV_DTYPE_F16 ? tu_f16_bits(want)
                                           : tu_bf16_bits(want);
                ok = gb == wb;
            }
            if (!ok) {
                const unsigned c = tu_code_get(packed + rr * pstride, i, fmt.bits);
                const int64_t si = rr * sstride + i / fmt.group_size;
                TU_FAIL(&fl,
                        "%s b%d g%d%s scales %s -> %s: row %lld element %lld code %u scale 0x%x "
                        "bias 0x%x g %.9g: got 0x%x (%.9g), want 0x%x (%.9g)",
                        tu_mname(fmt.mode), fmt.bits, fmt.group_size, with_g ? " +global" : "",
                        tu_dname(st), tu_dname(ot), (long long)rr, (long long)i, c,
                        affine ? tu_load_bits(st, scales, si) : scales[si],
                        affine ? tu_load_bits(st, biases, si) : 0, (double)g, gb, got, wb, want);
            }
        }
    }
    TU_ASSERT_NO_FAILS(&fl, "qmv_dequantize vs oracle");
    free(out);
    free(packed);
    free(scales);
    free(biases);
}
END_TEST

/* ---- Named cases ----------------------------------------------------------------------- */

/* Dequantizes one group of codes with one scale byte into `out` (float32 out unless given). */
static qmv_status deq_one(qmv_mode mode, const uint32_t *packed, uint8_t sbyte, const float *g,
                          qmv_dtype ot, void *out)
{
    qmv_format fmt = {mode, mode == QMV_MODE_MXFP8 ? 8 : 4, mode == QMV_MODE_NVFP4 ? 16 : 32};
    qmv_qmatrix w;
    qmv_status s =
        qmv_qmatrix_dense(&fmt, QMV_DTYPE_F32, 1, fmt.group_size, packed, &sbyte, NULL, &w);
    if (s != QMV_STATUS_OK)
        return s;
    w.global_scale = g;
    return qmv_dequantize(&w, ot, out, (size_t)fmt.group_size * tu_dsize(ot), fmt.group_size, NULL);
}

/* qmv.h: E8M0 0xFF and E4M3 0x7F/0xFF decode as NaN (MLX's CPU: Inf and +-480). */
START_TEST(nan_codes)
{
    uint32_t packed[8];
    float out[32];
    for (int i = 0; i < 8; i++)
        packed[i] = 0x33333333u; /* E2M1 1.5 */
    ck_assert_int_eq(deq_one(QMV_MODE_MXFP4, packed, 0xFF, NULL, QMV_DTYPE_F32, out),
                     QMV_STATUS_OK);
    for (int i = 0; i < 32; i++)
        ck_assert_msg(isnan(out[i]), "mxfp4 with E8M0 0xFF: %g, want NaN", out[i]);
    ck_assert_int_eq(deq_one(QMV_MODE_NVFP4, packed, 0x7F, NULL, QMV_DTYPE_F32, out),
                     QMV_STATUS_OK);
    for (int i = 0; i < 16; i++)
        ck_assert_msg(isnan(out[i]), "nvfp4 with E4M3 scale 0x7F: %g, want NaN", out[i]);
    ck_assert_int_eq(deq_one(QMV_MODE_NVFP4, packed, 0xFF, NULL, QMV_DTYPE_F32, out),
                     QMV_STATUS_OK);
    for (int i = 0; i < 16; i++)
        ck_assert(isnan(out[i]));
    for (int i = 0; i < 8; i++)
        packed[i] = 0xFF7F7E01u; /* E4M3 codes 0x01, 0x7E, 0x7F, 0xFF */
    ck_assert_int_eq(deq_one(QMV_MODE_MXFP8, packed, 127, NULL, QMV_DTYPE_F32, out), QMV_STATUS_OK);
    ck_assert_float_eq(out[0], 0x1p-9f);
    ck_assert_float_eq(out[1], 448.0f);
    ck_assert_msg(isnan(out[2]) && isnan(out[3]), "E4M3 0x7F/0xFF: %g %g, want NaN", out[2],
                  out[3]);
    /* E8M0 0 is 2^-127, not 0 */
    ck_assert_int_eq(deq_one(QMV_MODE_MXFP8, packed, 0, NULL, QMV_DTYPE_F32, out), QMV_STATUS_OK);
    ck_assert_float_eq(out[1], 448.0f * 0x1p-127f);
}
END_TEST

/* Rounded once: mx scales outside float16's range still give the exact product rounded to
 * float16 (MLX's CPU, which computes 2^(b-127) in the output dtype first, gives NaN for
 * 0 * 2^20 (0 * Inf) and 0 for 6 * 2^-25; FORMATS.md §7.11 lists that as an MLX pitfall). */
START_TEST(fp16_out_scale_range)
{
    uint32_t packed[4] = {0x00007310u, 0, 0, 0}; /* E2M1 codes 0, 1 (0.5), 3 (1.5), 7 (6), 0... */
    uint16_t out[32];
    /* byte 147: 2^20. 0 * 2^20 = 0; 0.5 * 2^20 = 2^19 overflows to Inf */
    ck_assert_int_eq(deq_one(QMV_MODE_MXFP4, packed, 147, NULL, QMV_DTYPE_F16, out), QMV_STATUS_OK);
    ck_assert_msg(out[0] == 0x0000u, "0 * 2^20 -> fp16 0x%04x, want +0", out[0]);
    ck_assert_msg(out[1] == 0x7C00u, "0.5 * 2^20 -> fp16 0x%04x, want +Inf", out[1]);
    /* byte 102: 2^-25. 6 * 2^-25 = 1.5 * 2^-23 = 3 * 2^-24 (fp16 subnormal 0x0003);
     * 1.5 * 2^-25 = 0.75 * 2^-24 -> 2^-24 (0x0001); 0.5 * 2^-25 = 2^-26 -> 0 */
    ck_assert_int_eq(deq_one(QMV_MODE_MXFP4, packed, 102, NULL, QMV_DTYPE_F16, out), QMV_STATUS_OK);
    ck_assert_msg(out[3] == 0x0003u, "6 * 2^-25 -> fp16 0x%04x, want 0x0003", out[3]);
    ck_assert_msg(out[2] == 0x0001u, "1.5 * 2^-25 -> fp16 0x%04x, want 0x0001", out[2]);
    ck_assert_msg(out[1] == 0x0000u, "0.5 * 2^-25 -> fp16 0x%04x, want +0", out[1]);
}
END_TEST

/* With a global scale the value is MLX's fl32(e * fl32(s * fl32(g/2688))) (FORMATS.md §4.2;
 * every MLX backend computes it so). With g = 1, scale code 0x03 (3 * 2^-9) and element 1.5
 * that differs in the last bit from the exact product rounded once. */
START_TEST(nvfp4_global_scale_mlx)
{
    uint32_t packed[2] = {0x00000003u, 0}; /* element 0: 1.5, the rest 0 */
    float out[16];
    const float g = 1.0f;
    ck_assert_int_eq(deq_one(QMV_MODE_NVFP4, packed, 0x03, &g, QMV_DTYPE_F32, out), QMV_STATUS_OK);
    const double c = tu_round_f32(1.0 / 2688.0);
    const double once = tu_round_f32(1.5 * (3.0 * 0x1p-9) * c);
    const double twice = tu_round_f32(1.5 * tu_round_f32(3.0 * 0x1p-9 * c));
    ck_assert(once != twice); /* the example discriminates */
    ck_assert_msg(tu_fbits(out[0]) == tu_f32_bits(twice),
                  "1.5 * e4m3(0x03) * fl32(1/2688): got %.10g (0x%08x), want MLX's %.10g "
                  "(0x%08x); rounding once would give %.10g",
                  out[0], tu_fbits(out[0]), twice, tu_f32_bits(twice), once);
    for (int i = 1; i < 16; i++)
        ck_assert_uint_eq(tu_fbits(out[i]), 0);
}
END_TEST

/* Affine: the product is rounded in R before the bias is added (no FMA); FORMATS.md §2.4's
 * bf16 example: q = 10, s = bf16 0xBE86 (-0.26171875), b = 2.625: bf16(-2.6171875) = -2.625
 * (tie to even), so the result is +0 (a fused q*s+b would give 0.0078125). */
START_TEST(affine_two_roundings)
{
    qmv_format fmt = {QMV_MODE_AFFINE, 4, 32};
    uint32_t packed[4] = {0x0000000Au, 0, 0, 0}; /* code 10, then zeros */
    uint16_t s = 0xBE86u, b = 0x4028u;
    qmv_qmatrix w;
    ck_assert_int_eq(qmv_qmatrix_dense(&fmt, QMV_DTYPE_BF16, 1, 32, packed, &s, &b, &w),
                     QMV_STATUS_OK);
    uint16_t out[32];
    ck_assert_int_eq(qmv_dequantize(&w, QMV_DTYPE_BF16, out, sizeof out, 32, NULL), QMV_STATUS_OK);
    ck_assert_msg(out[0] == 0x0000u, "bf16 10 * 0xBE86 + 2.625 = 0x%04x, want +0", out[0]);
    ck_assert_uint_eq(out[1], 0x4028u); /* code 0 -> the bias */
    float outf[32];
    ck_assert_int_eq(qmv_dequantize(&w, QMV_DTYPE_F32, outf, sizeof outf, 32, NULL), QMV_STATUS_OK);
    ck_assert_uint_eq(tu_fbits(outf[0]), 0); /* computed in bf16, then widened */
    /* float32 scales: fl32(fl32(q*s) + b), not fmaf */
    const float sf = 0.1f, bf = -1.0f;
    qmv_qmatrix w32;
    ck_assert_int_eq(qmv_qmatrix_dense(&fmt, QMV_DTYPE_F32, 1, 32, packed, &sf, &bf, &w32),
                     QMV_STATUS_OK);
    ck_assert_int_eq(qmv_dequantize(&w32, QMV_DTYPE_F32, outf, sizeof outf, 32, NULL),
                     QMV_STATUS_OK);
    const double want = tu_round_f32(tu_round_f32(10.0 * (double)sf) + (double)bf);
    ck_assert_msg(tu_fbits(outf[0]) == tu_f32_bits(want), "f32 10*0.1f-1: %.10g, want %.10g",
                  outf[0], want);
}
END_TEST

/* Identical bytes for 1, 2 and 7 threads. */
START_TEST(dequantize_threads)
{
    const qmv_format fmt = {QMV_MODE_AFFINE, 3, 64};
    const int64_t rows = 61, k = 512;
    qmv_layout lay;
    ck_assert_int_eq(qmv_layout_query(&fmt, QMV_DTYPE_BF16, rows, k, &lay), QMV_STATUS_OK);
    tu_rng r = {0x7777};
    uint32_t *packed = malloc(lay.packed_bytes);
    uint16_t *scales = malloc(lay.scales_bytes), *biases = malloc(lay.biases_bytes);
    for (size_t i = 0; i < lay.packed_bytes / 4; i++)
        packed[i] = tu_u32(&r);
    for (int64_t i = 0; i < rows * lay.groups_per_row; i++) {
        random_float(&r, QMV_DTYPE_BF16, scales, i);
        random_float(&r, QMV_DTYPE_BF16, biases, i);
    }
    qmv_qmatrix w;
    ck_assert_int_eq(qmv_qmatrix_dense(&fmt, QMV_DTYPE_BF16, rows, k, packed, scales, biases, &w),
                     QMV_STATUS_OK);
    static const int th[3] = {1, 2, 7};
    float *out[3];
    for (int i = 0; i < 3; i++) {
        out[i] = malloc((size_t)(rows * k) * 4);
        qmv_exec ex = {sizeof ex, th[i], 0};
        ck_assert_int_eq(qmv_dequantize(&w, QMV_DTYPE_F32, out[i], (size_t)(rows * k) * 4, k, &ex),
                         QMV_STATUS_OK);
    }
    ck_assert(!memcmp(out[0], out[1], (size_t)(rows * k) * 4));
    ck_assert(!memcmp(out[0], out[2], (size_t)(rows * k) * 4));
    for (int i = 0; i < 3; i++)
        free(out[i]);
    free(packed);
    free(scales);
    free(biases);
}
END_TEST

static Suite *dequantize_suite(void)
{
    Suite *s = suite_create("dequantize");
    TCase *tc = tcase_create("oracle");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, dequantize_vs_oracle, 0, TU_NFMTS * 9);
    suite_add_tcase(s, tc);
    tc = tcase_create("named");
    tcase_add_test(tc, nan_codes);
    tcase_add_test(tc, fp16_out_scale_range);
    tcase_add_test(tc, nvfp4_global_scale_mlx);
    tcase_add_test(tc, affine_two_roundings);
    tcase_add_test(tc, dequantize_threads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dequantize_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
