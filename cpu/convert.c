/*
 * convert.c - qmv_convert(): element-wise dtype conversion with round to nearest even.
 */
#include <string.h>

#include "codec.h"
#include "internal.h"

qmv_status qmv_convert(qmv_dtype src_dtype, const void *src, size_t src_bytes,
                       qmv_dtype dst_dtype, void *dst, size_t dst_bytes, size_t count)
{
    QMVI_TRY(qmvi_check_dtype(src_dtype, "src"));
    QMVI_TRY(qmvi_check_dtype(dst_dtype, "dst"));
    const size_t ss = qmv_dtype_size(src_dtype), ds = qmv_dtype_size(dst_dtype);
    if (count > SIZE_MAX / 4)
        return qmvi_fail(QMV_STATUS_OVERFLOW, "count %zu overflows", count);
    if (count && (!src || !dst))
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "src or dst is NULL");
    if (src_bytes < count * ss || dst_bytes < count * ds)
        return qmvi_fail(QMV_STATUS_BUFFER_TOO_SMALL, "%zu elements do not fit the buffers",
                         count);
    if (count == 0 || (src == dst && src_dtype == dst_dtype))
        return qmvi_ok();
    if (qmvi_ranges_overlap(src, count * ss, dst, count * ds))
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "src and dst overlap");
    if (src_dtype == dst_dtype) {
        memcpy(dst, src, count * ss);
        return qmvi_ok();
    }
    for (size_t i = 0; i < count; i++)
        qmvi_store(dst_dtype, dst, (int64_t)i, qmvi_load(src_dtype, src, (int64_t)i));
    return qmvi_ok();
}
