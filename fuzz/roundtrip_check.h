/*
 * roundtrip_check.h - the fp decode-encode-decode property (STYLE.md 4.2 item 4), shared by
 * quantize_roundtrip.c (codes that quantize produced) and dequantize_any_bytes.c (arbitrary
 * codes and scales):
 *
 *     dequant(quant(dequant(codes))) == dequant(codes)     (float ==, so +0 == -0)
 *
 * for mxfp4, mxfp8 and nvfp4 in every profile, with the quantize input dtype equal to the
 * dequantize output dtype T. It holds because every E2M1 / E4M3 value times a power of two
 * that keeps it <= the element maximum is again an E2M1 / E4M3 value, under these documented
 * preconditions (checked here, and the property is skipped, not weakened, when one fails):
 *
 *   P1 every dequantized value is finite. Otherwise quantize must refuse it with
 *      QMV_STATUS_NON_FINITE and write nothing, which is asserted instead.
 *   P2 dequantization into T was exact: dequant to T, widened, equals dequant to float32
 *      (e * s is exact in float32; a T that overflows, flushes or rounds it loses the codes).
 *   P3 nvfp4 only (its scale is E4M3, not a power of two, so a group's scale is recovered
 *      only from a full-range element): in every group the largest |element value| is 6, or
 *      the whole group dequantizes to zero; and the global scale is absent or g = 2688 * 2^j
 *      (then g / 2688 and 2688 / g are exact; any other g rounds twice), and, for mlx-cpu,
 *      0.5 * 2^j and 6 * 2^j are exact in T (mlx-cpu divides w by the scale in T before it
 *      multiplies by 2688 / g: float16 and j = 14 turn -6 * 2^14 into -Inf, which encodes
 *      as 0).
 *   P4 mlx-cpu profile with T = float16 or bfloat16 only: fl_T(amax / M) (M = 6 or 448,
 *      the profile's first step) is a normal number of T. Below that, T rounds the quotient
 *      to a power of two or to zero (zero gives the exponent 0: MLX 0.32.4's rule, see
 *      docs/FORMATS.md) and the exponent no longer matches the group's.
 *
 *   P5 ocp profile, mxfp8 only: the largest |value| of every group does not have the
 *      significand 1.875 (E4M3 mantissa 7). OCP puts amax at [256, 512) (emax_elem 8), where
 *      480 = 1.875 * 2^8 is not an E4M3FN value: it saturates to 448 (OCP v1.0's rule). E2M1's
 *      largest significand is 1.5, so mxfp4 has no such case.
 *
 * Signed zero is not compared bitwise: mlx-cpu encodes -0 as +0 (docs/FORMATS.md).
 */
#ifndef QMV_FUZZ_ROUNDTRIP_CHECK_H
#define QMV_FUZZ_ROUNDTRIP_CHECK_H

#include <math.h>

#include "fuzz_helpers.h"

/* Rounds a float to T and back (round to nearest even; used only for P4's test). */
static inline float qf_round_to(qmv_dtype t, float f)
{
    if (t == QMV_DTYPE_F32)
        return f;
    uint16_t h;
    qmv_status st = qmv_convert(QMV_DTYPE_F32, &f, 4, t, &h, 2, 1);
    QMV_FUZZ_ASSERT(st == QMV_STATUS_OK, "qmv_convert failed: %d", (int)st);
    return qf_load(t, &h, 0);
}

/* 1 for a normal (not zero, not subnormal) finite value of T. */
static inline int qf_is_normal_in(qmv_dtype t, float f)
{
    float a = fabsf(f);
    if (!(a <= 3.4028235e38f) || a == 0.0f)
        return 0;
    float min_normal = t == QMV_DTYPE_F16 ? 0x1p-14f : 0x1p-126f;
    return a >= min_normal;
}

/*
 * w: the quantized matrix (fp mode, dense rows x k, any strides); g: its global scale
 * (NULL = none). Runs the property with quantize profile `profile` and dtype T.
 */
static inline void qf_check_fp_fixed_point(const qmv_qmatrix *w, qmv_profile profile,
                                           qmv_dtype t, const qmv_exec *exec)
{
    const int64_t rows = w->rows, k = w->k;
    const int gs = w->format.group_size;
    const size_t n = (size_t)(rows * k), ts = qmv_dtype_size(t);
    if (w->format.mode == QMV_MODE_AFFINE)
        return;

    qf_buf d1 = qf_alloc(n * ts, 4), d1f = qf_alloc(n * 4, 4);
    QMV_FUZZ_ASSERT(qmv_dequantize(w, t, d1.p, d1.n, k, exec) == QMV_STATUS_OK, "dequant T");
    QMV_FUZZ_ASSERT(qmv_dequantize(w, QMV_DTYPE_F32, d1f.p, d1f.n, k, exec) == QMV_STATUS_OK,
                    "dequant f32");

    int finite = 1, exact = 1, p3 = 1, p4 = 1, p5 = 1;
    const float elem_max = w->format.mode == QMV_MODE_MXFP8 ? 448.0f : 6.0f;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t g0 = 0; g0 < k; g0 += gs) {
            float amax = 0.0f, cmax = 0.0f;
            int all_zero = 1;
            for (int64_t i = g0; i < g0 + gs; i++) {
                const size_t idx = (size_t)(r * k + i);
                float vt = qf_load(t, d1.p, idx), vf = qf_load(QMV_DTYPE_F32, d1f.p, idx);
                if (!isfinite(vt) || !isfinite(vf))
                    finite = 0;
                if (qf_f32_bits(vt) != qf_f32_bits(vf))
                    exact = 0;
                amax = fmaxf(amax, fabsf(vt));
                all_zero &= vt == 0.0f;
            }
            if (w->format.mode == QMV_MODE_NVFP4) {
                /* the group's largest |E2M1 code value| */
                for (int64_t i = g0; i < g0 + gs; i++) {
                    const uint32_t *row = w->packed + r * w->packed_row_stride;
                    unsigned c = (row[i / 8] >> (4 * (i % 8))) & 7u;
                    static const float e2m1[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
                    cmax = fmaxf(cmax, e2m1[c]);
                }
                if (!(cmax == 6.0f || all_zero))
                    p3 = 0;
            }
            if (profile == QMV_PROFILE_OCP && w->format.mode == QMV_MODE_MXFP8 && amax > 0.0f &&
                isfinite(amax)) {
                int ex;
                if (frexpf(amax, &ex) == 0.9375f)
                    p5 = 0;
            }
            if (profile == QMV_PROFILE_MLX_CPU && t != QMV_DTYPE_F32 && !all_zero &&
                !qf_is_normal_in(t, qf_round_to(t, amax / elem_max)))
                p4 = 0;
        }
    }
    float g = 0.0f;
    if (w->global_scale) {
        g = *w->global_scale;
        int ex;
        float f = frexpf(g / 2688.0f, &ex);
        if (!(isfinite(g) && g > 0.0f && f == 0.5f && fabsf((float)ex) <= 100.0f))
            p3 = 0;
        const float gm = g / 2688.0f;
        if (profile == QMV_PROFILE_MLX_CPU &&
            (qf_round_to(t, 0.5f * gm) != 0.5f * gm || qf_round_to(t, 6.0f * gm) != 6.0f * gm))
            p3 = 0;
    }

    qf_buf q2 = qf_alloc((size_t)(rows * k * w->format.bits / 32 * 4), 4);
    qf_buf s2 = qf_alloc((size_t)(rows * (k / gs)), 1);
    qf_poison(&q2);
    qf_poison(&s2);
    qmv_quant_out out = {(uint32_t *)q2.p, q2.n, s2.p, s2.n, NULL, 0};
    const float *gp = w->global_scale ? &g : NULL;
    qmv_status st = qmv_quantize(&w->format, profile, gp, t, d1.p, d1.n, rows, k, k, &out, exec);
    if (!finite) {
        QMV_FUZZ_ASSERT(st == QMV_STATUS_NON_FINITE, "quantize of non-finite data gave %d",
                        (int)st);
        QMV_FUZZ_ASSERT(qf_is_poisoned(q2.p, q2.n) && qf_is_poisoned(s2.p, s2.n),
                        "quantize wrote output on error");
    } else if (gp && !(g > 0.0f && isfinite(2688.0f / g) && 2688.0f / g > 0.0f)) {
        QMV_FUZZ_ASSERT(st == QMV_STATUS_NON_FINITE, "unusable global scale %a gave %d",
                        (double)g, (int)st);
    } else {
        QMV_FUZZ_ASSERT(st == QMV_STATUS_OK, "requantize failed: %d", (int)st);
        if (exact && p3 && p4 && p5) {
            qmv_qmatrix w2;
            QMV_FUZZ_ASSERT(qmv_qmatrix_dense(&w->format, t, rows, k, (const uint32_t *)q2.p, s2.p,
                                              NULL, &w2) == QMV_STATUS_OK,
                            "qmatrix_dense");
            w2.global_scale = gp;
            qf_buf d2 = qf_alloc(n * ts, 4);
            QMV_FUZZ_ASSERT(qmv_dequantize(&w2, t, d2.p, d2.n, k, exec) == QMV_STATUS_OK,
                            "dequant 2");
            for (size_t i = 0; i < n; i++) {
                float a = qf_load(t, d1.p, i), b = qf_load(t, d2.p, i);
                QMV_FUZZ_ASSERT(a == b,
                                "%s profile %s dtype %s: element %zu (row %zu, group %zu): "
                                "dequant(codes) = %a, dequant(quant(dequant(codes))) = %a; "
                                "scale byte %u -> %u",
                                qmv_mode_name(w->format.mode), qmv_profile_name(profile),
                                qmv_dtype_name(t), i, i / (size_t)k, i % (size_t)k / (size_t)gs,
                                (double)a, (double)b,
                                ((const uint8_t *)w->scales)[i / (size_t)k * (size_t)w->scales_row_stride + i % (size_t)k / (size_t)gs],
                                s2.p[i / (size_t)gs]);
            }
            qf_free(&d2);
        }
    }
    qf_free(&q2);
    qf_free(&s2);
    qf_free(&d1);
    qf_free(&d1f);
}

#endif /* QMV_FUZZ_ROUNDTRIP_CHECK_H */
