/*
 * validate.c - argument checks shared by every entry point. Each check runs before any
 * output is touched, so a failing call writes nothing (DESIGN.md C3).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "internal.h"

qmv_status qmvi_check_extent(const char *what, int64_t batch, int64_t batch_stride,
                             int64_t count, int64_t row_stride, int64_t row_len,
                             size_t elem_size, size_t bytes, size_t *extent)
{
    if (batch_stride < 0 || row_stride < 0)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "%s: negative stride", what);
    if (batch <= 0 || count <= 0 || row_len <= 0) {
        *extent = 0;
        return QMV_STATUS_OK;
    }
    int64_t a, b, end;
    if (!qmvi_mul_ok(batch - 1, batch_stride, &a) || !qmvi_mul_ok(count - 1, row_stride, &b) ||
        !qmvi_add_ok(a, b, &end) || !qmvi_add_ok(end, row_len, &end) ||
        !qmvi_mul_ok(end, (int64_t)elem_size, &end) || (uint64_t)end > SIZE_MAX)
        return qmvi_fail(QMV_STATUS_OVERFLOW, "%s: extent overflows", what);
    if ((size_t)end > bytes)
        return qmvi_fail(QMV_STATUS_BUFFER_TOO_SMALL, "%s: needs %lld bytes, buffer has %zu", what,
                         (long long)end, bytes);
    *extent = (size_t)end;
    return QMV_STATUS_OK;
}

int qmvi_ranges_overlap(const void *a, size_t an, const void *b, size_t bn)
{
    if (!an || !bn)
        return 0;
    uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    return a0 < b0 + bn && b0 < a0 + an;
}

qmv_status qmvi_check_disjoint(const char *out_name, const void *out, size_t out_span,
                               const qmvi_span *inputs, int count)
{
    for (int i = 0; i < count; i++)
        if (qmvi_ranges_overlap(out, out_span, inputs[i].p, inputs[i].n))
            return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT,
                             "%s overlaps %s (the bytes it writes intersect the bytes %s reads)",
                             out_name, inputs[i].name, inputs[i].name);
    return QMV_STATUS_OK;
}

qmv_status qmvi_check_out_vs_qmatrix(const char *out_name, const void *out, size_t out_span,
                                     const qmv_qmatrix *w, const qmvi_qmatrix_info *wi)
{
    const qmvi_span in[4] = {
        {w->packed, wi->packed_span, "packed"},
        {w->scales, wi->scales_span, "scales"},
        {w->biases, wi->biases_span, "biases"},
        {w->global_scale, w->global_scale ? sizeof(float) : 0, "the global scale"},
    };
    return qmvi_check_disjoint(out_name, out, out_span, in, 4);
}

qmv_status qmvi_check_aligned(const void *p, size_t align, const char *what)
{
    if ((uintptr_t)p % align)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "%s (%p) is not aligned to %zu bytes",
                         what, p, align);
    return QMV_STATUS_OK;
}

/* A pointer may be NULL only when nothing is read or written through it. */
static qmv_status qmvi_check_ptr(const void *p, size_t extent, const char *what)
{
    if (!p && extent)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "%s is NULL", what);
    return QMV_STATUS_OK;
}

qmv_status qmvi_check_qmatrix(const qmv_qmatrix *w, int64_t batch, int host_global,
                              qmvi_qmatrix_info *info)
{
    if (!w)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "quantized matrix is NULL");
    qmv_layout l = {0};
    QMVI_TRY(qmv_layout_query(&w->format, w->scale_dtype, w->rows, w->k, &l));
    const qmvi_mode_traits *t = &qmvi_traits[w->format.mode];
    if (w->packed_row_stride < l.words_per_row)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT,
                         "packed_row_stride %lld < %lld words per row",
                         (long long)w->packed_row_stride, (long long)l.words_per_row);
    if (w->scales_row_stride < l.groups_per_row)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT,
                         "scales_row_stride %lld < %lld groups per row",
                         (long long)w->scales_row_stride, (long long)l.groups_per_row);
    size_t es = qmvi_scale_elem_size(&w->format, w->scale_dtype);
    qmvi_qmatrix_info in = {0, 0, 0, 1.0f, 0};
    QMVI_TRY(qmvi_check_extent("packed", batch, w->packed_batch_stride, w->rows,
                               w->packed_row_stride, l.words_per_row, 4, w->packed_bytes,
                               &in.packed_span));
    QMVI_TRY(qmvi_check_ptr(w->packed, in.packed_span, "packed"));
    QMVI_TRY(qmvi_check_aligned(w->packed, sizeof(uint32_t), "packed"));
    QMVI_TRY(qmvi_check_extent("scales", batch, w->scales_batch_stride, w->rows,
                               w->scales_row_stride, l.groups_per_row, es, w->scales_bytes,
                               &in.scales_span));
    QMVI_TRY(qmvi_check_ptr(w->scales, in.scales_span, "scales"));
    if (t->has_bias) {
        QMVI_TRY(qmvi_check_extent("biases", batch, w->scales_batch_stride, w->rows,
                                   w->scales_row_stride, l.groups_per_row, es, w->biases_bytes,
                                   &in.biases_span));
        QMVI_TRY(qmvi_check_ptr(w->biases, in.biases_span, "biases"));
    } else if (w->biases) {
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "%s has no biases, but biases were given",
                         t->name);
    }
    if (w->global_scale) {
        QMVI_TRY(qmvi_check_aligned(w->global_scale, sizeof(float), "global_scale"));
        if (w->format.mode != QMV_MODE_NVFP4)
            return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT,
                             "a global scale is only supported for nvfp4, not %s", t->name);
        in.has_g = 1;
        if (host_global) {
            float g = *w->global_scale;
            if (!isfinite(g))
                return qmvi_fail(QMV_STATUS_NON_FINITE, "global scale is not finite");
            in.g_mul = g / 2688.0f;
        }
    }
    if (info)
        *info = in;
    return QMV_STATUS_OK;
}

qmv_status qmvi_check_vectors(const qmv_qmatrix *w, const qmvi_qmatrix_info *wi,
                              const qmv_vectors *v)
{
    if (!v)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "vectors are NULL");
    if (v->batch < 1 || v->m < 1)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "batch = %lld and m = %lld must be >= 1",
                         (long long)v->batch, (long long)v->m);
    QMVI_TRY(qmvi_check_dtype(v->x_dtype, "x"));
    QMVI_TRY(qmvi_check_dtype(v->y_dtype, "y"));
    if (v->y_row_stride < w->rows)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "y_row_stride %lld < rows %lld",
                         (long long)v->y_row_stride, (long long)w->rows);
    if (v->batch > 1) {
        int64_t need;
        if (!qmvi_mul_ok(v->m - 1, v->y_row_stride, &need) || !qmvi_add_ok(need, w->rows, &need))
            return qmvi_fail(QMV_STATUS_OVERFLOW, "y extent overflows");
        if (v->y_batch_stride < need)
            return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT,
                             "y_batch_stride %lld < %lld: output rows would overlap",
                             (long long)v->y_batch_stride, (long long)need);
    }
    size_t xs, ys;
    QMVI_TRY(qmvi_check_extent("x", v->batch, v->x_batch_stride, v->m, v->x_row_stride, w->k,
                               qmv_dtype_size(v->x_dtype), v->x_bytes, &xs));
    QMVI_TRY(qmvi_check_ptr(v->x, xs, "x"));
    QMVI_TRY(qmvi_check_extent("y", v->batch, v->y_batch_stride, v->m, v->y_row_stride, w->rows,
                               qmv_dtype_size(v->y_dtype), v->y_bytes, &ys));
    QMVI_TRY(qmvi_check_ptr(v->y, ys, "y"));
    /* Spans, not capacities: with k = 0 nothing of x or W is read, so y may lie anywhere
     * (it receives zeros); x_bytes larger than x's span may cover y. */
    const qmvi_span xin = {v->x, xs, "x"};
    QMVI_TRY(qmvi_check_disjoint("y", v->y, ys, &xin, 1));
    return qmvi_check_out_vs_qmatrix("y", v->y, ys, w, wi);
}

qmv_status qmvi_check_exec(const qmv_exec *exec, int *threads)
{
    int n = 0;
    if (exec) {
        if (exec->struct_size < offsetof(qmv_exec, num_threads) + sizeof(int))
            return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT,
                             "exec->struct_size %zu is too small (set it to sizeof(qmv_exec))",
                             exec->struct_size);
        n = exec->num_threads;
        if (n < 0)
            return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "num_threads %d < 0", n);
    }
    int cap = QMV_MAX_THREADS;
#ifdef _OPENMP
    if (n == 0)
        n = omp_get_max_threads();
    /* OpenMP's runtime ends the process (or faults) when it cannot create the threads
     * asked for, so a request is clamped to what it may run, never passed on as is. */
    const int limit = omp_get_thread_limit();
    if (limit >= 1 && limit < cap)
        cap = limit;
#endif
    if (n > cap)
        n = cap;
    *threads = n < 1 ? 1 : n;
    return QMV_STATUS_OK;
}
