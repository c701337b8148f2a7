/*
 * order_mlx_cpu.c - the order "mlx-0.32.4-cpu": mx.quantized_matmul(transpose=True) on MLX
 * 0.32.4's CPU stream as pip's Linux x86-64 build computes it. It follows
 * mlx/backend/cpu/quantized.cpp: _qmm_t (affine) and fp_qmm_t (mxfp4, nvfp4, mxfp8), which
 * that build runs for every M because simd::max_size is 1 there (no NEON, no Accelerate), so
 * the _simd variants are never chosen. The CPU path does not depend on M.
 *
 * MLX computes in one dtype T (cpu/orders.h, qmvi_mlx_check). For float16 and bfloat16, MLX's
 * T is a struct whose every operator converts both operands to float, computes one float
 * operation and rounds the result back to T (round to nearest even): fl_T(fl32(a op b)). We do
 * exactly that with qmvi_round_to. For float32 every operation is one float32 operation,
 * without FMA (pip's x86-64 build targets baseline x86-64, which has no FMA instruction;
 * confirmed by the differential test, docs/VERIFY.md).
 *
 * Affine, per output element, in k order with sum starting at +0:
 *     sum = fl_T(sum + fl_T(x_k * fl_T(fl_T(s * q_k) + b)))
 * with s, b the group's scale and bias and x_k converted to T (exact: T is never narrower).
 * fp modes, per group with gsum starting at +0, e_k the element value:
 *     gsum = fl_T(gsum + fl_T(x_k * e_k));  then  sum = fl_T(sum + fl_T(s * gsum))
 * where s is the group scale converted to T: E8M0 byte c as the bfloat16 with bits c << 7
 * (c = 0 gives bits 0x40, 2^-127; c = 255 gives +Inf, not NaN), E4M3 as its E4M3FN value
 * (0x7F/0xFF NaN, as 0.32.4 decodes them). y = sum, already in T; a NaN is written as the
 * canonical quiet NaN (MLX's NaN payloads are not emulated: compare NaN as a class).
 */
#include "elements.h"
#include "orders.h"
#include "pack.h"

#define ORDER_NAME "mlx-0.32.4-cpu"

/* The group scale of an fp mode in T (MLX: dequantize_scale). */
static float mlx_cpu_fp_scale(qmv_dtype t, qmv_mode mode, unsigned c)
{
    if (mode == QMV_MODE_NVFP4)
        return qmvi_round_to(t, qmvi_e4m3_to_f32(c));
    uint16_t bf = c == 0 ? 0x40u : (uint16_t)(c << 7);
    return qmvi_round_to(t, qmvi_bf16_to_f32(bf));
}

static float mlx_cpu_fp_elem(qmv_mode mode, unsigned c)
{
    return mode == QMV_MODE_MXFP8 ? qmvi_e4m3_to_f32(c) : qmvi_e2m1_to_f32(c);
}

static float mlx_cpu_dot(const qmv_qmatrix *w, qmv_dtype t, int64_t b, int64_t n,
                         qmv_dtype x_dtype, const void *x)
{
    const int bits = w->format.bits, gs = w->format.group_size;
    const qmv_mode mode = w->format.mode;
    const uint32_t *row = qmvi_mlx_w_row(w, b, n);
    const int64_t srow = qmvi_mlx_scale_row(w, b, n);
    float sum = 0.0f;
    for (int64_t g = 0; g < w->k / gs; g++) {
        const int64_t k0 = g * gs;
        if (mode == QMV_MODE_AFFINE) {
            const float s = qmvi_round_to(t, qmvi_load(w->scale_dtype, w->scales, srow + g));
            const float bias = qmvi_round_to(t, qmvi_load(w->scale_dtype, w->biases, srow + g));
            for (int64_t i = k0; i < k0 + gs; i++) {
                const float xv = qmvi_round_to(t, qmvi_load(x_dtype, x, i));
                const float q = (float)qmvi_code_get(row, i, bits);
                const float wv = qmvi_round_to(t, qmvi_round_to(t, s * q) + bias);
                sum = qmvi_round_to(t, sum + qmvi_round_to(t, xv * wv));
            }
        } else {
            const float s = mlx_cpu_fp_scale(t, mode, ((const uint8_t *)w->scales)[srow + g]);
            float gsum = 0.0f;
            for (int64_t i = k0; i < k0 + gs; i++) {
                const float xv = qmvi_load(x_dtype, x, i);
                const float e = mlx_cpu_fp_elem(mode, qmvi_code_get(row, i, bits));
                gsum = qmvi_round_to(t, gsum + qmvi_round_to(t, xv * e));
            }
            sum = qmvi_round_to(t, sum + qmvi_round_to(t, s * gsum));
        }
    }
    return sum;
}

qmv_status qmvi_order_mlx_cpu(const qmv_qmatrix *w, const qmv_vectors *v)
{
    qmv_dtype t;
    QMVI_TRY(qmvi_mlx_check(ORDER_NAME, w, v, &t));
    for (int64_t b = 0; b < v->batch; b++)
        for (int64_t j = 0; j < v->m; j++) {
            const void *x = qmvi_mlx_x_row(w, v, b, j);
            const int64_t y0 = b * v->y_batch_stride + j * v->y_row_stride;
            for (int64_t n = 0; n < w->rows; n++)
                qmvi_store_result(t, v->y, y0 + n, mlx_cpu_dot(w, t, b, n, v->x_dtype, x));
        }
    return qmvi_ok();
}
