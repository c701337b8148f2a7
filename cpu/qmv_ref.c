/*
 * qmv_ref.c - the scalar reference of the matrix-vector product: the canonical evaluation
 * order of docs/ORDER.md, implemented literally, one element at a time. Every other path
 * (OpenMP, SIMD, CUDA) must return exactly these bits.
 */
#include <math.h>

#include "elements.h"
#include "internal.h"
#include "pack.h"

/* One output element: dot product of row n of W (batch item b) with one vector x. */
static float qmvi_ref_dot(const qmv_qmatrix *w, int64_t b, int64_t n, qmv_dtype x_dtype,
                          const void *x)
{
    const qmvi_mode_traits *t = &qmvi_traits[w->format.mode];
    const int bits = w->format.bits, gs = w->format.group_size;
    /* With k = 0 nothing is read and the pointers may be NULL: no arithmetic on them. */
    const uint32_t *row =
        w->k ? w->packed + b * w->packed_batch_stride + n * w->packed_row_stride : NULL;
    const int64_t srow = b * w->scales_batch_stride + n * w->scales_row_stride;
    float acc[QMVI_LANES];
    for (int l = 0; l < QMVI_LANES; l++)
        acc[l] = 0.0f;

    const int64_t nchunks = (w->k + QMVI_CHUNK - 1) / QMVI_CHUNK;
    for (int64_t c = 0; c < nchunks; c++) {
        const int lane = (int)(c % QMVI_LANES);
        const int64_t k0 = c * QMVI_CHUNK;
        const int64_t k1 = k0 + QMVI_CHUNK < w->k ? k0 + QMVI_CHUNK : w->k;
        /* Each group segment of the chunk, in increasing k. */
        for (int64_t s0 = k0, s1; s0 < k1; s0 = s1) {
            const int64_t g = s0 / gs;
            s1 = (g + 1) * gs < k1 ? (g + 1) * gs : k1;
            float p = 0.0f, xsum = 0.0f;
            for (int64_t i = s0; i < s1; i++) {
                float xf = qmvi_load(x_dtype, x, i);
                float v = qmvi_elem_value(t->elem, qmvi_code_get(row, i, bits));
                p = fmaf(xf, v, p);
                xsum = xsum + xf;
            }
            float s = qmvi_scale_value(t->scale, w->scale_dtype, w->scales, srow + g);
            acc[lane] = fmaf(p, s, acc[lane]);
            if (t->has_bias) {
                float bias = qmvi_load(w->scale_dtype, w->biases, srow + g);
                acc[lane] = fmaf(xsum, bias, acc[lane]);
            }
        }
    }
    return qmvi_lane_tree(acc);
}

qmv_status qmv_qmv_reference(const qmv_qmatrix *w, const qmv_vectors *v)
{
    qmvi_qmatrix_info wi;
    QMVI_TRY(qmvi_check_qmatrix(w, v ? v->batch : 1, 1, &wi));
    QMVI_TRY(qmvi_check_vectors(w, &wi, v));
    if (w->rows == 0)
        return qmvi_ok(); /* y has no elements */
    const size_t xsz = qmv_dtype_size(v->x_dtype);
    for (int64_t b = 0; b < v->batch; b++) {
        for (int64_t j = 0; j < v->m; j++) {
            const void *x = w->k ? (const char *)v->x +
                                       (size_t)(b * v->x_batch_stride + j * v->x_row_stride) * xsz
                                 : NULL;
            const int64_t y0 = b * v->y_batch_stride + j * v->y_row_stride;
            for (int64_t n = 0; n < w->rows; n++) {
                float r = qmvi_ref_dot(w, b, n, v->x_dtype, x);
                if (wi.has_g)
                    r = r * wi.g_mul;
                qmvi_store_result(v->y_dtype, v->y, y0 + n, r);
            }
        }
    }
    return qmvi_ok();
}
