/*
 * order_mlx_common.c - argument checks and addressing shared by the emulations of MLX's
 * quantized_matmul kernels (cpu/orders.h).
 */
#include <math.h>
#include <string.h>

#include "codec.h"
#include "orders.h"

qmv_status qmvi_mlx_check(const char *order, const qmv_qmatrix *w, const qmv_vectors *v,
                          qmv_dtype *t)
{
    qmvi_qmatrix_info wi;
    QMVI_TRY(qmvi_check_qmatrix(w, v ? v->batch : 1, 1, &wi));
    QMVI_TRY(qmvi_check_vectors(w, &wi, v));
    if (wi.has_g)
        return qmvi_fail(QMV_STATUS_UNSUPPORTED,
                         "order %s: mx.quantized_matmul takes no nvfp4 global scale", order);
    qmv_dtype acc = v->x_dtype;
    if (w->format.mode == QMV_MODE_AFFINE && w->scale_dtype != v->x_dtype)
        acc = QMV_DTYPE_F32; /* MLX's promote_types of two different float dtypes */
    if (v->y_dtype != acc)
        return qmvi_fail(QMV_STATUS_UNSUPPORTED,
                         "order %s: MLX writes y in %s for x %s%s%s, not in %s", order,
                         qmv_dtype_name(acc), qmv_dtype_name(v->x_dtype),
                         w->format.mode == QMV_MODE_AFFINE ? " and scales " : "",
                         w->format.mode == QMV_MODE_AFFINE ? qmv_dtype_name(w->scale_dtype) : "",
                         qmv_dtype_name(v->y_dtype));
    *t = acc;
    return QMV_STATUS_OK;
}

const void *qmvi_mlx_x_row(const qmv_qmatrix *w, const qmv_vectors *v, int64_t b, int64_t j)
{
    if (!w->k)
        return NULL;
    return (const char *)v->x +
           (size_t)(b * v->x_batch_stride + j * v->x_row_stride) * qmv_dtype_size(v->x_dtype);
}

const uint32_t *qmvi_mlx_w_row(const qmv_qmatrix *w, int64_t b, int64_t n)
{
    return w->k ? w->packed + b * w->packed_batch_stride + n * w->packed_row_stride : NULL;
}

int64_t qmvi_mlx_scale_row(const qmv_qmatrix *w, int64_t b, int64_t n)
{
    return b * w->scales_batch_stride + n * w->scales_row_stride;
}

/* d rounded to float with round-to-odd (an inexact result gets an odd last bit): a following
 * round-to-nearest-even to float16 or bfloat16 (at least 2 bits narrower) then equals one
 * correct rounding of d. */
static float round_odd_f32(double d)
{
    float f = (float)d;
    if (isfinite(f) && (double)f != d && !(qmvi_f32_bits(f) & 1u))
        f = nextafterf(f, d > (double)f ? INFINITY : -INFINITY);
    return f;
}

/* a * b is exact in double (T has at most 24 significant bits); p + c is rounded to odd in
 * double (TwoSum gives the exact error), then to odd in float, then to nearest even in T:
 * one correct rounding of the exact a * b + c. */
float qmvi_mlx_fma(qmv_dtype t, float a, float b, float c)
{
    if (t == QMV_DTYPE_F32)
        return fmaf(a, b, c);
    const double p = (double)a * (double)b, q = (double)c;
    double s = p + q;
    if (isfinite(s)) {
        const double bb = s - p, err = (p - (s - bb)) + (q - bb);
        if (err != 0.0) {
            uint64_t u;
            memcpy(&u, &s, sizeof u);
            if (!(u & 1u))
                s = nextafter(s, err > 0 ? INFINITY : -INFINITY);
        }
    }
    return qmvi_round_to(t, round_odd_f32(s));
}
