/*
 * api_validation.c - the public API's argument validation with fuzzed descriptors: random
 * formats (out-of-range modes, bits, group sizes), dtypes, profiles, sizes and strides
 * (negative, zero, huge, overflowing), NULL pointers, buffers a few bytes too small or large,
 * exec structs with bad sizes or thread counts, and outputs aliased onto inputs.
 *
 * Input: everything comes from the end of the input (parameters), buffer contents from the
 * start. Buffers are exact-size against guard pages and every *_bytes argument is the true
 * size of its buffer (or anything, with a NULL pointer).
 *
 * Properties, for qmv_layout_query, qmv_qmatrix_dense, qmv_quantize, qmv_dequantize, qmv_qmv,
 * qmv_qmv_reference, qmv_convert and qmv_format_validate:
 * - no crash, no out-of-bounds access, no huge allocation;
 * - the status is one qmv.h documents; qmv_last_error() is "" exactly after a success;
 * - on error no output byte changed (outputs are poisoned; an output aliased onto an input
 *   is compared with a snapshot);
 * - an output aliased onto the start of an input is accepted only when the call writes or
 *   reads nothing there (k = 0 or rows = 0): overlap is defined on the bytes a call writes
 *   and reads, not on the buffers' capacities (docs/FORMATS.md, Validation). qmv with k = 0
 *   then writes y = +-0 and must leave every other byte of the shared buffer alone;
 * - qmv_qmv (any exec.cpu_tiers mask, unknown bits included) and qmv_qmv_reference return
 *   the same status and, on success, the same bytes.
 */
#include "fuzz_helpers.h" /* first: feature macros */

#include <math.h>

static const int64_t k_i64[] = {0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 33, 63, 64, 65, 96, 127, 128,
                                129, 256, 512, 1024, -1, -2, -32, -128, INT32_MAX,
                                (int64_t)INT32_MAX + 1, (int64_t)1 << 32, (int64_t)1 << 40,
                                (int64_t)1 << 61, (int64_t)1 << 62, INT64_MAX - 1, INT64_MAX,
                                INT64_MIN, INT64_MIN + 1};
static const int k_bits[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 32, -1, 64};
static const int k_groups[] = {0, 1, 8, 16, 32, 48, 64, 128, 256, -32, 1 << 30};

#define MAX_BUF ((size_t)1 << 20)

/* Fixed library bugs this harness found (reproducers stay in the corpus): NULL + offset on
 * empty spans with k = 0 or count = 0, loops over rows when k = 0 (hangs), and r * stride
 * overflow with k = 0 (cpu/quantize.c, dequantize.c, qmv_ref.c, convert.c). */

static int64_t draw_i64(qf_producer *p)
{
    const uint32_t sel = qf_u32_range(p, 0, 3);
    if (sel == 0)
        return (int64_t)qf_u32_range(p, 0, 600); /* plausible small */
    return QF_PICK(p, k_i64);
}

/* A size near `need` (delta -8..+8) or an arbitrary one, capped so inputs stay small. */
static size_t draw_size(qf_producer *p, size_t need)
{
    if (qf_u32_range(p, 0, 3) == 0)
        return qf_u32_range(p, 0, 4096);
    const int64_t d = (int64_t)qf_u32_range(p, 0, 16) - 8;
    int64_t n = (int64_t)(need > MAX_BUF ? MAX_BUF : need) + d;
    return n < 0 ? 0 : (size_t)n;
}

/* A buffer for an argument: NULL (1 in 8) or an exact-size mapping filled from the payload. */
typedef struct {
    qf_buf b;
    void *ptr;
    size_t bytes; /* what the call is told */
} arg_buf;

static arg_buf draw_buf(qf_producer *p, size_t *cur, size_t need, int poison)
{
    arg_buf a;
    const int null = qf_u32_range(p, 0, 7) == 0;
    a.b = qf_alloc(null ? 0 : draw_size(p, need), 4);
    if (poison)
        qf_poison(&a.b);
    else
        qf_fill(p, cur, a.b.p, a.b.n);
    a.ptr = null ? NULL : a.b.p;
    a.bytes = null ? (size_t)draw_i64(p) : a.b.n;
    return a;
}

static void check_status(qmv_status st, const char *what)
{
    QMV_FUZZ_ASSERT(qf_status_documented(st), "%s: undocumented status %d", what, (int)st);
    const char *e = qmv_last_error();
    QMV_FUZZ_ASSERT(e != NULL && (st == QMV_STATUS_OK) == (e[0] == '\0'),
                    "%s: status %d with last error \"%s\"", what, (int)st, e ? e : "(null)");
}

static qmv_format draw_format(qf_producer *p)
{
    qmv_format f;
    f.mode = (qmv_mode)((int)qf_u32_range(p, 0, 5) - 1); /* -1 .. 4 */
    if (qf_u32_range(p, 0, 2)) {
        qmv_format d;
        if (qmv_format_default((qmv_mode)((unsigned)f.mode % QMV_MODE_COUNT), &d) == QMV_STATUS_OK &&
            f.mode >= 0 && f.mode < QMV_MODE_COUNT) {
            f.bits = d.bits;
            f.group_size = d.group_size;
            if (f.mode == QMV_MODE_AFFINE && qf_bool(p)) {
                static const int ab[] = {2, 3, 4, 5, 6, 8, 1}, ag[] = {32, 64, 128};
                f.bits = QF_PICK(p, ab);
                f.group_size = QF_PICK(p, ag);
            }
            return f;
        }
    }
    f.bits = QF_PICK(p, k_bits);
    f.group_size = QF_PICK(p, k_groups);
    return f;
}

static qmv_exec exec_storage;
static const qmv_exec *draw_exec(qf_producer *p)
{
    switch (qf_u32_range(p, 0, 3)) {
    case 0:
        return NULL;
    case 1:
        exec_storage = (qmv_exec)QMV_EXEC_INIT;
        exec_storage.num_threads = (int)qf_u32_range(p, 0, 3);
        exec_storage.cpu_tiers = qf_u32_range(p, 0, 15); /* bit 3: no such tier (ignored) */
        return &exec_storage;
    case 2: /* struct_size < sizeof: fields beyond it take their defaults */
        exec_storage.struct_size = qf_u32_range(p, 0, 32);
        exec_storage.num_threads = (int)qf_u32_range(p, 0, 4) - 2;
        exec_storage.cpu_tiers = qf_u32_range(p, 0, 15);
        return &exec_storage;
    default:
        exec_storage = (qmv_exec)QMV_EXEC_INIT;
        exec_storage.num_threads = (int)qf_u32_range(p, 0, 4) - 2;
        return &exec_storage;
    }
}

/* Size of a layout part when the query succeeds, else a small default. */
static size_t need_or(const qmv_layout *l, qmv_status st, size_t part, size_t dflt)
{
    (void)l;
    return st == QMV_STATUS_OK ? part : dflt;
}

static void free_arg(arg_buf *a)
{
    qf_free(&a->b);
}

static qmv_qmatrix draw_qmatrix(qf_producer *p, size_t *cur, arg_buf bufs[3], float *g,
                                int64_t batch)
{
    qmv_qmatrix w;
    memset(&w, 0, sizeof w);
    w.format = draw_format(p);
    w.scale_dtype = (qmv_dtype)qf_u32_range(p, 0, 3);
    w.rows = draw_i64(p);
    w.k = draw_i64(p);
    qmv_layout l;
    qmv_status lst = qmv_layout_query(&w.format, w.scale_dtype, w.rows, w.k, &l);
    if (lst != QMV_STATUS_OK)
        memset(&l, 0, sizeof l);
    const int dense = qf_bool(p);
    w.packed_row_stride = dense && lst == QMV_STATUS_OK ? l.words_per_row : draw_i64(p);
    w.scales_row_stride = dense && lst == QMV_STATUS_OK ? l.groups_per_row : draw_i64(p);
    w.packed_batch_stride = qf_bool(p) ? 0 : draw_i64(p);
    w.scales_batch_stride = qf_bool(p) ? 0 : draw_i64(p);
    size_t pb = need_or(&l, lst, l.packed_bytes, 64), sb = need_or(&l, lst, l.scales_bytes, 16);
    if (batch > 1 && batch < 8) {
        if (w.packed_batch_stride > 0 && w.packed_batch_stride < (1 << 16))
            pb += (size_t)(batch - 1) * (size_t)w.packed_batch_stride * 4;
        if (w.scales_batch_stride > 0 && w.scales_batch_stride < (1 << 16))
            sb += (size_t)(batch - 1) * (size_t)w.scales_batch_stride * 4;
    }
    bufs[0] = draw_buf(p, cur, pb, 0);
    bufs[1] = draw_buf(p, cur, sb, 0);
    bufs[2] = draw_buf(p, cur, sb, 0);
    w.packed = (const uint32_t *)bufs[0].ptr;
    w.packed_bytes = bufs[0].bytes;
    w.scales = bufs[1].ptr;
    w.scales_bytes = bufs[1].bytes;
    const int give_bias = qf_u32_range(p, 0, 3) != 0 ? w.format.mode == QMV_MODE_AFFINE
                                                     : qf_bool(p);
    w.biases = give_bias ? bufs[2].ptr : NULL;
    w.biases_bytes = bufs[2].bytes;
    switch (qf_u32_range(p, 0, 7)) {
    case 0:
        *g = qf_f32(qf_u32(p));
        w.global_scale = g;
        break;
    case 1:
        *g = 1.0f;
        w.global_scale = g;
        break;
    default:
        w.global_scale = NULL;
    }
    return w;
}

/*
 * A qmv call accepted with y placed at the start of x or of the packed weights (n bytes from
 * there, `before` their contents before the call). y and that input both start at the same
 * byte, so their spans can only be disjoint when one is empty: k = 0 (nothing of x or W is
 * read) or rows = 0 (nothing is written). With k = 0 every y element is the empty sum, +-0
 * (the sign of a negative global scale), and no byte outside y's elements may change: not
 * the gaps between strided rows, not the rest of the buffer.
 */
static void check_aliased_y(const qmv_qmatrix *w, const qmv_vectors *v, const uint8_t *before,
                            const uint8_t *after, size_t n)
{
    QMV_FUZZ_ASSERT(w->rows == 0 || w->k == 0,
                    "y aliased onto an input accepted with rows = %lld, k = %lld",
                    (long long)w->rows, (long long)w->k);
    uint8_t *expect = malloc(n ? n : 1);
    memcpy(expect, before, n);
    const size_t es = qmv_dtype_size(v->y_dtype);
    /* Accepted, so y's rows are disjoint and inside n bytes: at most n / es elements. */
    for (int64_t b = 0; w->rows > 0 && b < v->batch; b++)
        for (int64_t j = 0; j < v->m; j++)
            for (int64_t r = 0; r < w->rows; r++) {
                const int64_t e = b * (v->batch > 1 ? v->y_batch_stride : 0) +
                                  j * v->y_row_stride + r;
                QMV_FUZZ_ASSERT((uint64_t)(e + 1) * es <= n, "y element %lld outside y_bytes",
                                (long long)e);
                const float y = qf_load(v->y_dtype, after, (size_t)e);
                QMV_FUZZ_ASSERT(y == 0.0f, "k = 0: y[%lld] = %g, expected +-0", (long long)e,
                                (double)y);
                memcpy(expect + (size_t)e * es, after + (size_t)e * es, es);
            }
    QMV_FUZZ_ASSERT(!memcmp(expect, after, n),
                    "y aliased onto an input: a byte outside y's elements changed");
    free(expect);
}

static void fuzz_qmv(qf_producer *p, size_t *cur)
{
    arg_buf wb[3];
    float g;
    qmv_vectors v;
    memset(&v, 0, sizeof v);
    v.batch = qf_u32_range(p, 0, 3) ? (int64_t)qf_u32_range(p, 1, 3) : draw_i64(p);
    v.m = qf_u32_range(p, 0, 3) ? (int64_t)qf_u32_range(p, 1, 9) : draw_i64(p);
    qmv_qmatrix w = draw_qmatrix(p, cur, wb, &g, v.batch);
    v.x_dtype = (qmv_dtype)qf_u32_range(p, 0, 3);
    v.y_dtype = (qmv_dtype)qf_u32_range(p, 0, 3);
    const int plausible = qf_bool(p) && w.k > 0 && w.k < 4096 && w.rows > 0 && w.rows < 4096;
    v.x_row_stride = plausible ? w.k + (int64_t)qf_u32_range(p, 0, 2) : draw_i64(p);
    v.x_batch_stride = plausible ? v.x_row_stride * (v.m > 0 && v.m < 16 ? v.m : 1) : draw_i64(p);
    v.y_row_stride = plausible ? w.rows + (int64_t)qf_u32_range(p, 0, 2) : draw_i64(p);
    v.y_batch_stride = plausible ? v.y_row_stride * (v.m > 0 && v.m < 16 ? v.m : 1) : draw_i64(p);
    size_t xneed = 256, yneed = 64;
    if (plausible && v.batch > 0 && v.batch < 8 && v.m > 0 && v.m < 16) {
        xneed = (size_t)((v.batch - 1) * v.x_batch_stride + (v.m - 1) * v.x_row_stride + w.k) *
                (qmv_dtype_size(v.x_dtype) ? qmv_dtype_size(v.x_dtype) : 4);
        yneed = (size_t)((v.batch - 1) * v.y_batch_stride + (v.m - 1) * v.y_row_stride + w.rows) *
                (qmv_dtype_size(v.y_dtype) ? qmv_dtype_size(v.y_dtype) : 4);
    }
    arg_buf xb = draw_buf(p, cur, xneed, 0);
    const uint32_t alias = qf_u32_range(p, 0, 15); /* 1: y = x, 2: y = packed, else own */
    arg_buf yb[2];
    yb[0] = draw_buf(p, cur, yneed, 1);
    yb[1] = yb[0];
    yb[1].b = qf_alloc(yb[0].b.n, 4);
    qf_poison(&yb[1].b);
    yb[1].ptr = yb[0].ptr ? yb[1].b.p : NULL;
    yb[1].bytes = yb[0].bytes;
    v.x = xb.ptr;
    v.x_bytes = xb.bytes;

    uint8_t *snap = NULL;
    size_t snap_n = 0;
    void *alias_ptr = NULL;
    if (alias == 1 && xb.ptr) {
        alias_ptr = xb.ptr;
        snap_n = xb.b.n;
    } else if (alias == 2 && wb[0].ptr) {
        alias_ptr = wb[0].ptr;
        snap_n = wb[0].b.n;
    }
    if (alias_ptr) {
        snap = malloc(snap_n ? snap_n : 1);
        memcpy(snap, alias_ptr, snap_n);
    }

    const qmv_exec *ex = draw_exec(p);
    qmv_status st[2];
    uint8_t *alias_out[2] = {NULL, NULL}; /* the shared buffer after each accepted call */
    for (int c = 0; c < 2; c++) {
        qmv_vectors vc = v;
        if (alias_ptr) {
            memcpy(alias_ptr, snap, snap_n); /* both calls see the same input */
            vc.y = alias_ptr;
            vc.y_bytes = snap_n;
        } else {
            vc.y = yb[c].ptr;
            vc.y_bytes = yb[c].bytes;
        }
        st[c] = c == 0 ? qmv_qmv_reference(&w, &vc) : qmv_qmv(&w, &vc, ex);
        check_status(st[c], c == 0 ? "qmv_qmv_reference" : "qmv_qmv");
        if (alias_ptr && st[c] != QMV_STATUS_OK) {
            QMV_FUZZ_ASSERT(!memcmp(snap, alias_ptr, snap_n),
                            "y aliased onto an input: input changed on error %d", (int)st[c]);
        } else if (alias_ptr) {
            check_aliased_y(&w, &vc, snap, alias_ptr, snap_n);
            alias_out[c] = malloc(snap_n ? snap_n : 1);
            memcpy(alias_out[c], alias_ptr, snap_n);
        } else if (st[c] != QMV_STATUS_OK) {
            QMV_FUZZ_ASSERT(qf_is_poisoned(yb[c].b.p, yb[c].b.n), "y written on error %d",
                            (int)st[c]);
        }
    }
    /* The reference has no exec argument: an invalid exec only fails qmv_qmv. */
    const int exec_bad = ex && (ex->struct_size < offsetof(qmv_exec, num_threads) + sizeof(int) ||
                                ex->num_threads < 0);
    if (!exec_bad)
        QMV_FUZZ_ASSERT(st[0] == st[1], "reference status %d, qmv status %d", (int)st[0],
                        (int)st[1]);
    else
        QMV_FUZZ_ASSERT(st[1] == QMV_STATUS_INVALID_ARGUMENT, "bad exec gave %d", (int)st[1]);
    if (st[0] == QMV_STATUS_OK && st[1] == QMV_STATUS_OK && !alias_ptr)
        QMV_FUZZ_ASSERT(!memcmp(yb[0].b.p, yb[1].b.p, yb[0].b.n), "qmv differs from reference");
    if (alias_out[0] && alias_out[1])
        QMV_FUZZ_ASSERT(!memcmp(alias_out[0], alias_out[1], snap_n),
                        "aliased y: qmv differs from reference");
    free(alias_out[0]);
    free(alias_out[1]);
    free(snap);
    free_arg(&yb[0]);
    free_arg(&yb[1]);
    free_arg(&xb);
    for (int i = 0; i < 3; i++)
        free_arg(&wb[i]);
}

static void fuzz_dequantize(qf_producer *p, size_t *cur)
{
    arg_buf wb[3];
    float g;
    qmv_qmatrix w = draw_qmatrix(p, cur, wb, &g, 1);
    const qmv_dtype od = (qmv_dtype)qf_u32_range(p, 0, 3);
    const int plausible = qf_bool(p) && w.k > 0 && w.k < 4096 && w.rows > 0 && w.rows < 256;
    const int64_t ors = plausible ? w.k + (int64_t)qf_u32_range(p, 0, 2) : draw_i64(p);
    size_t need = plausible ? (size_t)((w.rows - 1) * ors + w.k) * 4 : 256;
    arg_buf ob = draw_buf(p, cur, need, 1);
    const int alias = qf_u32_range(p, 0, 15) == 0 && wb[0].ptr;
    uint8_t *snap = NULL;
    if (alias) {
        snap = malloc(wb[0].b.n ? wb[0].b.n : 1);
        memcpy(snap, wb[0].ptr, wb[0].b.n);
    }
    const qmv_status st = qmv_dequantize(&w, od, alias ? wb[0].ptr : ob.ptr,
                                         alias ? wb[0].b.n : ob.bytes, ors, draw_exec(p));
    check_status(st, "qmv_dequantize");
    if (alias && st == QMV_STATUS_OK) /* out and packed start together: one span is empty */
        QMV_FUZZ_ASSERT(w.rows == 0 || w.k == 0,
                        "out aliased onto packed accepted with rows = %lld, k = %lld",
                        (long long)w.rows, (long long)w.k);
    if (alias) {
        QMV_FUZZ_ASSERT(!memcmp(snap, wb[0].ptr, wb[0].b.n),
                        "out aliased onto packed: packed changed (status %d)", (int)st);
    } else if (st != QMV_STATUS_OK) {
        QMV_FUZZ_ASSERT(qf_is_poisoned(ob.b.p, ob.b.n), "out written on error %d", (int)st);
    }
    free(snap);
    free_arg(&ob);
    for (int i = 0; i < 3; i++)
        free_arg(&wb[i]);
}

static void fuzz_quantize(qf_producer *p, size_t *cur)
{
    const qmv_format f = draw_format(p);
    const int null_fmt = qf_u32_range(p, 0, 15) == 0;
    const qmv_profile prof = (qmv_profile)((int)qf_u32_range(p, 0, 4) - 1);
    const qmv_dtype wd = (qmv_dtype)qf_u32_range(p, 0, 3);
    int64_t rows = draw_i64(p);
    const int64_t k = draw_i64(p);
    const int64_t stride =
        qf_bool(p) && k < INT64_MAX - 2 ? k + (int64_t)qf_u32_range(p, 0, 2) : draw_i64(p);
    qmv_layout l;
    qmv_status lst = qmv_layout_query(&f, wd, rows, k, &l);
    size_t wneed = 256;
    if (rows > 0 && rows < 64 && stride > 0 && stride < 4096 && qmv_dtype_size(wd))
        wneed = (size_t)((rows - 1) * stride + (k > 0 && k < 4096 ? k : 0)) * qmv_dtype_size(wd);
    arg_buf w = draw_buf(p, cur, wneed, 0);
    if (w.b.n && qf_bool(p)) /* mostly finite data: small values */
        for (size_t i = 0; i < w.b.n; i++)
            w.b.p[i] &= 0x3F;
    arg_buf o[3];
    o[0] = draw_buf(p, cur, need_or(&l, lst, l.packed_bytes, 64), 1);
    o[1] = draw_buf(p, cur, need_or(&l, lst, l.scales_bytes, 16), 1);
    o[2] = draw_buf(p, cur, need_or(&l, lst, l.biases_bytes ? l.biases_bytes : 16, 16), 1);
    const int give_bias = qf_u32_range(p, 0, 3) != 0 ? f.mode == QMV_MODE_AFFINE : qf_bool(p);
    qmv_quant_out out = {(uint32_t *)o[0].ptr, o[0].bytes, o[1].ptr, o[1].bytes,
                         give_bias ? o[2].ptr : NULL, o[2].bytes};
    float g = 0.0f;
    const float *gp = NULL;
    if (qf_u32_range(p, 0, 3) == 0) {
        g = qf_bool(p) ? qf_f32(qf_u32(p)) : 1.0f;
        gp = &g;
    }
    const int alias = qf_u32_range(p, 0, 15) == 0 && w.ptr && w.b.n >= 4;
    uint8_t *snap = NULL;
    if (alias) {
        out.packed = (uint32_t *)w.ptr;
        out.packed_bytes = w.b.n;
        snap = malloc(w.b.n);
        memcpy(snap, w.ptr, w.b.n);
    }
    const int null_out = qf_u32_range(p, 0, 15) == 0;
    const qmv_status st = qmv_quantize(null_fmt ? NULL : &f, prof, gp, wd, w.ptr, w.bytes, rows,
                                       k, stride, null_out ? NULL : &out, draw_exec(p));
    check_status(st, "qmv_quantize");
    if (alias && st == QMV_STATUS_OK) /* packed and w start together: one span is empty */
        QMV_FUZZ_ASSERT(rows == 0 || k == 0,
                        "packed aliased onto w accepted with rows = %lld, k = %lld",
                        (long long)rows, (long long)k);
    if (alias)
        QMV_FUZZ_ASSERT(!memcmp(snap, w.ptr, w.b.n),
                        "packed aliased onto w: w changed (status %d)", (int)st);
    if (st != QMV_STATUS_OK)
        for (int i = alias ? 1 : 0; i < 3; i++)
            QMV_FUZZ_ASSERT(qf_is_poisoned(o[i].b.p, o[i].b.n), "output %d written on error %d",
                            i, (int)st);
    free(snap);
    free_arg(&w);
    for (int i = 0; i < 3; i++)
        free_arg(&o[i]);
}

static void fuzz_small(qf_producer *p, size_t *cur)
{
    /* layout query, qmatrix_dense, format_validate, convert */
    const qmv_format f = draw_format(p);
    const qmv_dtype sd = (qmv_dtype)qf_u32_range(p, 0, 3);
    const int64_t rows = draw_i64(p), k = draw_i64(p);
    qmv_layout l, l0;
    memset(&l, QF_POISON_BYTE, sizeof l);
    l0 = l;
    qmv_status st = qmv_layout_query(qf_u32_range(p, 0, 15) ? &f : NULL, sd, rows, k, &l);
    check_status(st, "qmv_layout_query");
    if (st != QMV_STATUS_OK)
        QMV_FUZZ_ASSERT(!memcmp(&l, &l0, sizeof l), "layout written on error");
    else
        QMV_FUZZ_ASSERT(l.packed_bytes == (size_t)rows * (size_t)l.words_per_row * 4 &&
                            (uint64_t)l.words_per_row * 32u == (uint64_t)k * (uint64_t)f.bits,
                        "layout inconsistent");
    st = qmv_format_validate(qf_u32_range(p, 0, 15) ? &f : NULL);
    check_status(st, "qmv_format_validate");
    qmv_qmatrix q, q0;
    memset(&q, QF_POISON_BYTE, sizeof q);
    q0 = q;
    st = qmv_qmatrix_dense(&f, sd, rows, k, NULL, NULL, NULL, qf_u32_range(p, 0, 15) ? &q : NULL);
    check_status(st, "qmv_qmatrix_dense");
    if (st != QMV_STATUS_OK)
        QMV_FUZZ_ASSERT(!memcmp(&q, &q0, sizeof q), "qmatrix written on error");

    const qmv_dtype a = (qmv_dtype)qf_u32_range(p, 0, 3), b = (qmv_dtype)qf_u32_range(p, 0, 3);
    const size_t count = qf_u32_range(p, 0, 3) ? qf_u32_range(p, 0, 64) : (size_t)draw_i64(p);
    const size_t need = count < 1024 ? count * 4 : 64;
    arg_buf src = draw_buf(p, cur, need, 0), dst = draw_buf(p, cur, need, 1);
    st = qmv_convert(a, src.ptr, src.bytes, b, dst.ptr, dst.bytes, count);
    check_status(st, "qmv_convert");
    if (st != QMV_STATUS_OK)
        QMV_FUZZ_ASSERT(qf_is_poisoned(dst.b.p, dst.b.n), "convert wrote on error");
    free_arg(&src);
    free_arg(&dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qf_producer p = qf_producer_make(data, size);
    size_t cur = 0;
    switch (qf_u32_range(&p, 0, 3)) {
    case 0:
        fuzz_qmv(&p, &cur);
        break;
    case 1:
        fuzz_dequantize(&p, &cur);
        break;
    case 2:
        fuzz_quantize(&p, &cur);
        break;
    default:
        fuzz_small(&p, &cur);
        break;
    }
    return 0;
}
