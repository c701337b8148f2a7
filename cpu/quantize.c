/*
 * quantize.c - qmv_quantize(): validation, the non-finite pre-scan, and the loop over rows
 * and groups (OpenMP over rows; each group is independent, so every thread count gives the
 * same bytes). The per-group arithmetic is in quantize_group.c. This file's rows are the
 * scalar tier, the reference; the SIMD tiers (quantize_avx2.c, quantize_avx512.c) replace the
 * per-row work and write the same bytes, chosen as qmv_qmv() chooses (exec->cpu_tiers).
 */
#include <math.h>
#include <string.h>

#include "codec.h"
#include "internal.h"
#include "pack.h"
#include "qmv_tiers.h"
#include "quant_tiers.h"
#include "quantize_group.h"

#define QMVI_MAX_GROUP 128

static qmv_status qmvi_check_out(const char *what, const void *p, size_t have, size_t need)
{
    if (need && !p)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "%s is NULL", what);
    if (have < need)
        return qmvi_fail(QMV_STATUS_BUFFER_TOO_SMALL, "%s: needs %zu bytes, buffer has %zu", what,
                         need, have);
    return QMV_STATUS_OK;
}

static int qmvi_non_finite_scalar(qmv_dtype t, const void *row, int64_t k)
{
    for (int64_t i = 0; i < k; i++)
        if (!isfinite(qmvi_load(t, row, i)))
            return 1;
    return 0;
}

/* 1 when any element of w is NaN or Inf. */
static int qmvi_any_non_finite(qmvi_non_finite_fn row_check, qmv_dtype t, const void *w,
                               int64_t rows, int64_t k, int64_t stride, int nt)
{
    int bad = 0;
    const size_t rsz = (size_t)stride * qmv_dtype_size(t);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && rows > 1) reduction(| : bad)
#endif
    for (int64_t r = 0; r < rows; r++)
        bad |= row_check(t, (const char *)w + (size_t)r * rsz, k);
    return bad;
}

static void qmvi_quantize_row_scalar(const qmvi_quant_job *job, int64_t r)
{
    const qmv_format *fmt = job->fmt;
    const qmv_quant_out *out = job->out;
    const qmv_dtype t = job->t;
    const int gs = fmt->group_size, bits = fmt->bits;
    uint32_t *row = out->packed + r * job->words;
    float buf[QMVI_MAX_GROUP];
    unsigned codes[QMVI_MAX_GROUP];
    memset(row, 0, (size_t)job->words * 4);
    for (int64_t g = 0; g < job->groups; g++) {
        for (int j = 0; j < gs; j++)
            buf[j] = qmvi_load(t, job->w, r * job->stride + g * gs + j);
        const int64_t si = r * job->groups + g;
        if (fmt->mode == QMV_MODE_AFFINE) {
            float scale, bias;
            qmvi_quantize_affine(buf, gs, bits, job->profile, codes, &scale, &bias);
            qmvi_store(t, out->scales, si, scale);
            qmvi_store(t, out->biases, si, bias);
        } else if (fmt->mode == QMV_MODE_NVFP4) {
            qmvi_quantize_nv(buf, gs, t, job->profile, job->enc, codes,
                             (uint8_t *)out->scales + si);
        } else {
            qmvi_quantize_mx(buf, gs, fmt->mode, t, job->profile, codes,
                             (uint8_t *)out->scales + si);
        }
        for (int j = 0; j < gs; j++)
            qmvi_code_put(row, g * gs + j, bits, codes[j]);
    }
}

qmv_status qmv_quantize(const qmv_format *fmt, qmv_profile profile, const float *global_scale,
                        qmv_dtype w_dtype, const void *w, size_t w_bytes, int64_t rows, int64_t k,
                        int64_t w_row_stride, const qmv_quant_out *out, const qmv_exec *exec)
{
    int nt;
    qmv_layout l = {0};
    size_t w_span;
    QMVI_TRY(qmvi_check_exec(exec, &nt));
    QMVI_TRY(qmvi_check_dtype(w_dtype, "w"));
    QMVI_TRY(qmv_layout_query(fmt, w_dtype, rows, k, &l));
    if ((unsigned)profile >= QMV_PROFILE_COUNT)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "profile %d out of range", (int)profile);
    if (fmt->mode == QMV_MODE_AFFINE && fmt->bits == 1 && profile != QMV_PROFILE_MLX_CPU)
        return qmvi_fail(QMV_STATUS_UNSUPPORTED,
                         "1-bit affine: the %s profile is not defined yet (its MLX CUDA kernel "
                         "has not been checked); use mlx-cpu",
                         qmv_profile_name(profile));
    if (w_row_stride < k)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "w_row_stride %lld < k = %lld",
                         (long long)w_row_stride, (long long)k);
    QMVI_TRY(qmvi_check_extent("w", 1, 0, rows, w_row_stride, k, qmv_dtype_size(w_dtype), w_bytes,
                               &w_span));
    if (!w && w_span)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "w is NULL");
    if (!out)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "out is NULL");
    QMVI_TRY(qmvi_check_out("packed", out->packed, out->packed_bytes, l.packed_bytes));
    QMVI_TRY(qmvi_check_aligned(out->packed, sizeof(uint32_t), "out->packed"));
    QMVI_TRY(qmvi_check_aligned(global_scale, sizeof(float), "global_scale"));
    QMVI_TRY(qmvi_check_out("scales", out->scales, out->scales_bytes, l.scales_bytes));
    if (fmt->mode == QMV_MODE_AFFINE)
        QMVI_TRY(qmvi_check_out("biases", out->biases, out->biases_bytes, l.biases_bytes));
    else if (out->biases)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "%s has no biases, but biases were given",
                         qmv_mode_name(fmt->mode));
    /* Each output against w, the global scale and the outputs before it (validate.c's rule:
     * written spans against read spans; nothing is written when rows or k is 0). */
    const qmvi_span in[4] = {
        {w, w_span, "w"},
        {global_scale, global_scale ? sizeof(float) : 0, "the global scale"},
        {out->packed, l.packed_bytes, "out->packed"},
        {out->scales, l.scales_bytes, "out->scales"},
    };
    QMVI_TRY(qmvi_check_disjoint("out->packed", out->packed, l.packed_bytes, in, 2));
    QMVI_TRY(qmvi_check_disjoint("out->scales", out->scales, l.scales_bytes, in, 3));
    QMVI_TRY(qmvi_check_disjoint("out->biases", out->biases, l.biases_bytes, in, 4));
    float enc = 1.0f;
    if (global_scale) {
        if (fmt->mode != QMV_MODE_NVFP4)
            return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT,
                             "a global scale is only supported for nvfp4, not %s",
                             qmv_mode_name(fmt->mode));
        const float g = *global_scale;
        enc = 2688.0f / g;
        if (!isfinite(g) || !(g > 0.0f) || !isfinite(enc) || !(enc > 0.0f))
            return qmvi_fail(
                QMV_STATUS_NON_FINITE,
                "global scale %g is not usable (needs finite g > 0 with 2688/g finite and > 0)",
                (double)g);
    }
    if (rows == 0 || k == 0)
        return qmvi_ok(); /* nothing to read or write (and no pointer arithmetic on NULL) */
    qmvi_non_finite_fn row_check = qmvi_non_finite_scalar;
    qmvi_quant_row_fn row_fn = qmvi_quantize_row_scalar;
    switch (qmvi_exec_tier(exec)) {
#if defined(QMVI_HAVE_AVX512)
    case QMV_CPU_TIER_AVX512:
        row_check = qmvi_non_finite_avx512;
        row_fn = qmvi_quantize_row_avx512;
        break;
#endif
#if defined(QMVI_HAVE_AVX2)
    case QMV_CPU_TIER_AVX2:
        row_check = qmvi_non_finite_avx2;
        row_fn = qmvi_quantize_row_avx2;
        break;
#endif
    default:
        break;
    }
    nt = qmvi_threads_for(nt, rows);
    if (qmvi_any_non_finite(row_check, w_dtype, w, rows, k, w_row_stride, nt))
        return qmvi_fail(QMV_STATUS_NON_FINITE, "w contains NaN or Inf");

    const qmvi_quant_job job = {
        fmt, profile, enc, w_dtype, w, w_row_stride, out, l.words_per_row, l.groups_per_row};
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && rows > 1)
#endif
    for (int64_t r = 0; r < rows; r++)
        row_fn(&job, r);
    return qmvi_ok();
}
