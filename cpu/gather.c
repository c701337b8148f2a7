/*
 * gather.c - expert stacks (mixture of experts): one expert as a matrix of its own, and the
 * expert-indexed product of MLX's gather_qmm for the decode case. The product is qmv_qmv() on
 * each (expert, x item) pair: batch invariance (docs/ORDER.md) makes that the canonical result
 * whatever other items the call holds, and every tier and thread count applies unchanged.
 */
#include "internal.h"

/* The view of item `index`; the stack is already validated for more than `index` items. */
static qmv_qmatrix qmvi_item(const qmv_qmatrix *stack, int64_t index)
{
    qmv_qmatrix m = *stack;
    const size_t es = qmvi_scale_elem_size(&stack->format, stack->scale_dtype);
    const size_t po = (size_t)(index * stack->packed_batch_stride) * 4;
    const size_t so = (size_t)(index * stack->scales_batch_stride) * es;
    /* Empty matrices may come with NULL pointers: no arithmetic on those. */
    if (m.packed) {
        m.packed = (const uint32_t *)((const char *)stack->packed + po);
        m.packed_bytes = stack->packed_bytes - po;
    }
    if (m.scales) {
        m.scales = (const char *)stack->scales + so;
        m.scales_bytes = stack->scales_bytes - so;
    }
    if (m.biases) {
        m.biases = (const char *)stack->biases + so;
        m.biases_bytes = stack->biases_bytes - so;
    }
    m.packed_batch_stride = 0;
    m.scales_batch_stride = 0;
    return m;
}

qmv_status qmv_qmatrix_select(const qmv_qmatrix *stack, int64_t count, int64_t index,
                              qmv_qmatrix *out)
{
    if (!out)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "qmv_qmatrix_select: out is NULL");
    if (count < 1 || index < 0 || index >= count)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT,
                         "qmv_qmatrix_select: index %lld is not in [0, count = %lld)",
                         (long long)index, (long long)count);
    qmvi_qmatrix_info wi;
    QMVI_TRY(qmvi_check_qmatrix(stack, count, 0, &wi));
    *out = qmvi_item(stack, index);
    return qmvi_ok();
}

/* Checks the indices; *x_items = the x batch items the call reads. */
static qmv_status qmvi_check_gather(const qmv_gather *g, int64_t batch, int64_t *x_items)
{
    if (!g || !g->w_index)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "qmv_gather_qmv: %s is NULL",
                         g ? "g->w_index" : "g");
    if (g->experts < 1)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "qmv_gather_qmv: experts = %lld < 1",
                         (long long)g->experts);
    int64_t xmax = batch - 1;
    if (g->x_index)
        xmax = 0;
    for (int64_t b = 0; b < batch; b++) {
        if (g->w_index[b] < 0 || g->w_index[b] >= g->experts)
            return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT,
                             "qmv_gather_qmv: w_index[%lld] = %ld is not in [0, %lld)",
                             (long long)b, (long)g->w_index[b], (long long)g->experts);
        if (g->x_index) {
            if (g->x_index[b] < 0)
                return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT,
                                 "qmv_gather_qmv: x_index[%lld] = %ld < 0", (long long)b,
                                 (long)g->x_index[b]);
            xmax = g->x_index[b] > xmax ? g->x_index[b] : xmax;
        }
    }
    *x_items = xmax + 1;
    return QMV_STATUS_OK;
}

qmv_status qmv_gather_qmv(const qmv_qmatrix *w, const qmv_gather *g, const qmv_vectors *v,
                          const qmv_exec *exec)
{
    int nt;
    QMVI_TRY(qmvi_check_exec(exec, &nt));
    (void)nt; /* each item's qmv_qmv() applies exec */
    if (!v)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "vectors are NULL");
    if (v->batch < 1)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "batch = %lld must be >= 1",
                         (long long)v->batch);
    int64_t x_items = 1;
    QMVI_TRY(qmvi_check_gather(g, v->batch, &x_items));
    qmvi_qmatrix_info wi;
    QMVI_TRY(qmvi_check_qmatrix(w, g->experts, 1, &wi));
    /* y and every check but x's extent as for a batch of v->batch items reading x item 0;
     * then x over the items the indices reach, and y against all of it. */
    qmv_vectors v0 = *v;
    v0.x_batch_stride = 0;
    QMVI_TRY(qmvi_check_vectors(w, &wi, &v0));
    size_t xs, ys;
    QMVI_TRY(qmvi_check_extent("x", x_items, v->x_batch_stride, v->m, v->x_row_stride, w->k,
                               qmv_dtype_size(v->x_dtype), v->x_bytes, &xs));
    QMVI_TRY(qmvi_check_extent("y", v->batch, v->y_batch_stride, v->m, v->y_row_stride, w->rows,
                               qmv_dtype_size(v->y_dtype), v->y_bytes, &ys));
    const qmvi_span xin = {v->x, xs, "x"};
    QMVI_TRY(qmvi_check_disjoint("y", v->y, ys, &xin, 1));
    if (w->rows == 0)
        return qmvi_ok(); /* y has no elements */

    const size_t xsz = qmv_dtype_size(v->x_dtype), ysz = qmv_dtype_size(v->y_dtype);
    for (int64_t b = 0; b < v->batch; b++) {
        const qmv_qmatrix wb = qmvi_item(w, g->w_index[b]);
        const int64_t xb = g->x_index ? g->x_index[b] : b;
        const size_t xo = w->k ? (size_t)(xb * v->x_batch_stride) * xsz : 0;
        const size_t yo = (size_t)(b * v->y_batch_stride) * ysz;
        qmv_vectors vb = *v;
        vb.batch = 1;
        vb.x_batch_stride = 0;
        vb.y_batch_stride = 0;
        if (w->k) {
            vb.x = (const char *)v->x + xo;
            vb.x_bytes = v->x_bytes - xo;
        }
        vb.y = (char *)v->y + yo;
        vb.y_bytes = v->y_bytes - yo;
        /* Cannot fail: every view lies inside what was validated above. */
        QMVI_TRY(qmv_qmv(&wb, &vb, exec));
    }
    return qmvi_ok();
}
