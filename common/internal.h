/*
 * internal.h - what the library's own files share: the mode traits table, error reporting,
 * checked size arithmetic and argument validation. Nothing here is public.
 */
#ifndef QMV_COMMON_INTERNAL_H
#define QMV_COMMON_INTERNAL_H

#include <stdint.h>
#include <stddef.h>

#include "qmv.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Mode traits ---- */

typedef enum { QMVI_ELEM_UINT, QMVI_ELEM_E2M1, QMVI_ELEM_E4M3 } qmvi_elem_code;
typedef enum { QMVI_SCALE_FLOAT, QMVI_SCALE_E8M0, QMVI_SCALE_E4M3 } qmvi_scale_code;

typedef struct {
    const char *name;
    int default_bits;
    int default_group;
    unsigned bits_mask;  /* bit b set: b bits allowed */
    unsigned group_mask; /* bit log2(g) set: group g allowed */
    int has_bias;
    qmvi_elem_code elem;
    qmvi_scale_code scale;
    float elem_max; /* largest element magnitude (fp modes): 6 or 448 */
    int emax_elem;  /* exponent of elem_max's leading bit (fp modes): 2 or 8 */
} qmvi_mode_traits;

extern const qmvi_mode_traits qmvi_traits[QMV_MODE_COUNT];

/* ---- Errors ---- */

/* Records a printf-style message as this thread's last error and returns status. */
qmv_status qmvi_fail(qmv_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Clears this thread's last error and returns QMV_STATUS_OK. */
qmv_status qmvi_ok(void);

#define QMVI_TRY(expr)                                                                     \
    do {                                                                                   \
        qmv_status qmvi_st_ = (expr);                                                      \
        if (qmvi_st_ != QMV_STATUS_OK)                                                     \
            return qmvi_st_;                                                               \
    } while (0)

/* ---- Checked arithmetic (non-negative operands) ---- */

static inline int qmvi_mul_ok(int64_t a, int64_t b, int64_t *r)
{
    return !__builtin_mul_overflow(a, b, r);
}

static inline int qmvi_add_ok(int64_t a, int64_t b, int64_t *r)
{
    return !__builtin_add_overflow(a, b, r);
}

/* ---- Validation (each sets the last error on failure) ---- */

qmv_status qmvi_check_format(const qmv_format *fmt);
qmv_status qmvi_check_dtype(qmv_dtype t, const char *what);

/* Bytes of a scale element: dtype size for affine, 1 for fp modes. */
size_t qmvi_scale_elem_size(const qmv_format *fmt, qmv_dtype scale_dtype);

/*
 * Checks a strided region: `count` items of `row_len` elements, `stride` elements apart
 * (plus, when batch > 1, batch blocks batch_stride apart) of elem_size bytes fit in `bytes`.
 * Sets *extent to the number of bytes spanned. Errors: OVERFLOW, BUFFER_TOO_SMALL.
 */
qmv_status qmvi_check_extent(const char *what, int64_t batch, int64_t batch_stride,
                             int64_t count, int64_t row_stride, int64_t row_len,
                             size_t elem_size, size_t bytes, size_t *extent);

/* Validates a quantized matrix used by `batch` problems (batch 1 for dequantize). On success
 * info holds the spans (bytes) of packed/scales/biases for overlap checks, has_g says if a
 * global scale was given and, when host_global is set (the pointer is host memory), g_mul is
 * fl32(g/2688) after checking that g is finite (1 when none). */
typedef struct {
    size_t packed_span, scales_span, biases_span;
    float g_mul;
    int has_g;
} qmvi_qmatrix_info;

qmv_status qmvi_check_qmatrix(const qmv_qmatrix *w, int64_t batch, int host_global,
                              qmvi_qmatrix_info *info);

/* Validates the vectors of a qmv call against w. */
qmv_status qmvi_check_vectors(const qmv_qmatrix *w, const qmvi_qmatrix_info *wi,
                              const qmv_vectors *v);

/* 1 when the byte ranges [a, a+an) and [b, b+bn) overlap (empty ranges never do). */
int qmvi_ranges_overlap(const void *a, size_t an, const void *b, size_t bn);

/*
 * The overlap rule of every entry point (docs/FORMATS.md, Validation): an output's span (from
 * its pointer to one past the last byte the call writes, gaps between strided rows included)
 * must not intersect the span of any input (from its pointer to one past the last byte the
 * call reads). Spans come from the shapes and strides, not from the *_bytes capacities, so an
 * empty span (k = 0, rows = 0) overlaps nothing. The check is conservative: an output
 * interleaved with an input inside its span is rejected even where no byte is shared.
 */
typedef struct {
    const void *p;
    size_t n; /* span in bytes; 0 = nothing is read */
    const char *name;
} qmvi_span;

/* INVALID_ARGUMENT when [out, out+out_span) intersects one of inputs[0..count). */
qmv_status qmvi_check_disjoint(const char *out_name, const void *out, size_t out_span,
                               const qmvi_span *inputs, int count);

/* qmvi_check_disjoint against everything a qmv_qmatrix reads (spans from
 * qmvi_check_qmatrix): packed, scales, biases and the global scale. */
qmv_status qmvi_check_out_vs_qmatrix(const char *out_name, const void *out, size_t out_span,
                                     const qmv_qmatrix *w, const qmvi_qmatrix_info *wi);

/* INVALID_ARGUMENT when p (a typed pointer: packed words, the global scale) is not aligned
 * to `align` bytes, the alignment its type needs: the kernels load it as that type. */
qmv_status qmvi_check_aligned(const void *p, size_t align, const char *what);

/* Validates exec (NULL = defaults) and gives the number of threads a call may use: 1 to
 * QMV_MAX_THREADS (and to omp_get_thread_limit()). */
qmv_status qmvi_check_exec(const qmv_exec *exec, int *threads);

/* Threads worth starting for `items` independent work items: min(threads, items), >= 1. */
static inline int qmvi_threads_for(int threads, int64_t items)
{
    return items < (int64_t)threads ? (items < 1 ? 1 : (int)items) : threads;
}

#ifdef __cplusplus
}
#endif

#endif /* QMV_COMMON_INTERNAL_H */
