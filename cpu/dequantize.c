/*
 * dequantize.c - qmv_dequantize(): one definition per mode (docs/FORMATS.md):
 *   affine: fl_R(fl_R(q * s) + b) in the scales' dtype R, then rounded to the output dtype
 *           (MLX's CPU result);
 *   mx, nvfp4: e * s is exact in float32, rounded once to the output dtype (MLX's GPU
 *           kernels; MLX's CPU agrees except for float16 output with a scale outside float16's
 *           range, where it rounds the scale first);
 *   nvfp4 with a global scale: fl_out(fl32(e * fl32(s * fl32(g/2688)))), as every MLX backend.
 * E8M0 0xFF and E4M3 0x7F/0xFF are NaN (OCP), where MLX's CPU gives Inf and 480. A NaN result
 * is written as the canonical quiet NaN of the output dtype (0x7FC00000, 0x7E00, 0x7FC0), as
 * qmv_qmv() writes it: which NaN payload an operation on two NaNs keeps depends on the operand
 * order the compiler picks, so only a canonical NaN makes the bytes defined.
 * This file's rows are the scalar tier, the reference; the SIMD tiers (dequantize_avx2.c,
 * dequantize_avx512.c) write the same bytes, chosen as qmv_qmv() chooses (exec->cpu_tiers).
 */
#include "elements.h"
#include "internal.h"
#include "pack.h"
#include "qmv_tiers.h"
#include "quant_tiers.h"

static void qmvi_dequantize_row_scalar(const qmvi_deq_job *job, int64_t r)
{
    const qmv_qmatrix *w = job->w;
    const qmvi_mode_traits *t = &qmvi_traits[w->format.mode];
    const int bits = w->format.bits, gs = w->format.group_size;
    const uint32_t *row = w->packed + r * w->packed_row_stride;
    const int64_t srow = r * w->scales_row_stride;
    const int64_t o = r * job->out_row_stride;
    const qmv_dtype sd = w->scale_dtype;
    for (int64_t g = 0; g < w->k / gs; g++) {
        float s, bias;
        qmvi_deq_group(job, srow, g, &s, &bias);
        for (int64_t i = g * gs; i < (g + 1) * gs; i++) {
            const float e = job->lut[qmvi_code_get(row, i, bits)];
            float v;
            if (t->has_bias)
                v = qmvi_round_to(sd, qmvi_round_to(sd, e * s) + bias);
            else
                v = e * s;
            qmvi_store_result(job->out_dtype, job->out, o + i, v);
        }
    }
}

qmv_status qmv_dequantize(const qmv_qmatrix *w, qmv_dtype out_dtype, void *out, size_t out_bytes,
                          int64_t out_row_stride, const qmv_exec *exec)
{
    int nt;
    qmvi_qmatrix_info wi;
    size_t span;
    QMVI_TRY(qmvi_check_exec(exec, &nt));
    if (!w)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "quantized matrix is NULL");
    qmv_qmatrix w1 = *w; /* one matrix: its batch strides play no part */
    w1.packed_batch_stride = 0;
    w1.scales_batch_stride = 0;
    w = &w1;
    QMVI_TRY(qmvi_check_qmatrix(w, 1, 1, &wi));
    QMVI_TRY(qmvi_check_dtype(out_dtype, "out"));
    if (out_row_stride < w->k)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "out_row_stride %lld < k = %lld",
                         (long long)out_row_stride, (long long)w->k);
    QMVI_TRY(qmvi_check_extent("out", 1, 0, w->rows, out_row_stride, w->k,
                               qmv_dtype_size(out_dtype), out_bytes, &span));
    if (!out && span)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "out is NULL");
    QMVI_TRY(qmvi_check_out_vs_qmatrix("out", out, span, w, &wi));

    if (w->rows == 0 || w->k == 0)
        return qmvi_ok(); /* nothing to read or write */
    float lut[256];
    qmvi_elem_lut(qmvi_traits[w->format.mode].elem, w->format.bits, lut);
    qmvi_deq_row_fn row_fn = qmvi_dequantize_row_scalar;
    switch (qmvi_exec_tier(exec)) {
#if defined(QMVI_HAVE_AVX512)
    case QMV_CPU_TIER_AVX512:
        row_fn = qmvi_dequantize_row_avx512;
        break;
#endif
#if defined(QMVI_HAVE_AVX2)
    case QMV_CPU_TIER_AVX2:
        row_fn = qmvi_dequantize_row_avx2;
        break;
#endif
    default:
        break;
    }
    const qmvi_deq_job job = {w, &wi, lut, out_dtype, out, out_row_stride};
    nt = qmvi_threads_for(nt, w->rows);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && w->rows > 1)
#endif
    for (int64_t r = 0; r < w->rows; r++)
        row_fn(&job, r);
    return qmvi_ok();
}
