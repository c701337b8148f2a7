/*
 * check_errors.c - argument validation of every public function of qmv.h (contract C3).
 *
 * Each case makes one argument wrong, starting from a valid call, and checks:
 *   - the exact status documented in qmv.h;
 *   - qmv_last_error() is a non-empty message after the failure (and "" after a success);
 *   - nothing was written: every output (and input) buffer is poisoned or snapshotted before
 *     the call and compared byte for byte afterwards.
 * The cases are tables (CASE rows: status, what, mutation) driven by tcase_add_loop_test, one
 * forked test per case, so a failure names the case.
 */
#include "test_util.h"

#define ST_OK  QMV_STATUS_OK
#define ST_INV QMV_STATUS_INVALID_ARGUMENT
#define ST_UNS QMV_STATUS_UNSUPPORTED
#define ST_BTS QMV_STATUS_BUFFER_TOO_SMALL
#define ST_NF  QMV_STATUS_NON_FINITE
#define ST_OVF QMV_STATUS_OVERFLOW

/* ---- helpers ---------------------------------------------------------------------------- */

/* Makes a successful call so that the next failure's message is its own. */
static void clear_error(void)
{
    qmv_format f;
    ck_assert_int_eq(qmv_format_default(QMV_MODE_AFFINE, &f), QMV_STATUS_OK);
    ck_assert_msg(qmv_last_error() != NULL && qmv_last_error()[0] == '\0',
                  "qmv_last_error() not empty after a success: \"%s\"",
                  qmv_last_error() ? qmv_last_error() : "(null)");
}

static void check_status(qmv_status st, qmv_status want, const char *fn, const char *what)
{
    const char *msg = qmv_last_error();
    ck_assert_msg(st == want, "%s [%s]: status %d (%s), expected %d (%s); message \"%s\"", fn, what,
                  (int)st, qmv_status_string(st), (int)want, qmv_status_string(want),
                  msg ? msg : "(null)");
    ck_assert_msg(msg != NULL, "%s [%s]: qmv_last_error() returned NULL", fn, what);
    if (want == QMV_STATUS_OK)
        ck_assert_msg(msg[0] == '\0', "%s [%s]: message \"%s\" after a success", fn, what, msg);
    else
        ck_assert_msg(msg[0] != '\0', "%s [%s]: empty message after a failure", fn, what);
}

/* Byte snapshots of buffers that a failing call must leave alone. */
typedef struct {
    const void *p[10];
    size_t n[10];
    unsigned char *copy[10];
    const char *name[10];
    int count;
} snaps;

static void snap_add(snaps *s, const char *name, const void *p, size_t n)
{
    if (!p || !n)
        return;
    ck_assert(s->count < 10);
    s->p[s->count] = p;
    s->n[s->count] = n;
    s->name[s->count] = name;
    s->copy[s->count] = tu_malloc(n);
    memcpy(s->copy[s->count], p, n);
    s->count++;
}

static void snap_check(snaps *s, const char *fn, const char *what)
{
    for (int i = 0; i < s->count; i++) {
        long d = tu_first_diff(s->p[i], s->copy[i], s->n[i]);
        ck_assert_msg(d < 0, "%s [%s]: %s byte %ld was written after a failure", fn, what,
                      s->name[i], d);
    }
}

static void snap_free(snaps *s)
{
    for (int i = 0; i < s->count; i++)
        free(s->copy[i]);
    s->count = 0;
}

static void fill_random(void *p, size_t n, uint64_t seed)
{
    tu_rng r = {seed};
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)tu_u32(&r);
}

/* Case tables: one row per case, CASE(expected status, "what", mutation of the valid baseline
 * fixture), between CASES_BEGIN and CASES_END. Called with index i, a table applies row i to
 * fx (fx is NULL when only counting) and returns the number of rows; the runner then makes
 * the call, checks the status and message, and that a failing call wrote nothing. */
#define CASES_BEGIN int c_ = 0
#define CASE(W, TXT, ...)                                                                          \
    if (i == c_++) {                                                                               \
        fx->want = (W);                                                                            \
        fx->what = (TXT);                                                                          \
        __VA_ARGS__                                                                                \
    }
#define CASES_END return c_

/* ---- qmv_qmv / qmv_qmv_reference ------------------------------------------------------------ */

enum { FX_AFFINE, FX_NVFP4G, FX_MXFP4, FX_MXFP8 };

typedef struct {
    qmv_qmatrix w;
    qmv_vectors v;
    qmv_exec e;
    const qmv_qmatrix *wp;
    const qmv_vectors *vp;
    const qmv_exec *ep;
    unsigned char *blk; /* x, then y, then a guard */
    size_t blk_bytes;
    uint32_t *pk;
    unsigned char *sc, *bi;
    size_t pb, sb;
    float g;
    int exec_only; /* the case concerns qmv_exec: qmv_qmv only */
    qmv_status want;
    const char *what;
} qfix;

/* L = 2 problems of M = 2 vectors, N = 4, K = 128; W per batch item; exact buffer sizes. */
static void qfix_make(qfix *fx, int kind)
{
    free(fx->blk);
    free(fx->pk);
    free(fx->sc);
    free(fx->bi);
    const qmv_status keep_want = fx->want; /* a case body may rebuild the fixture */
    const char *keep_what = fx->what;
    memset(fx, 0, sizeof *fx);
    fx->want = keep_want;
    fx->what = keep_what;
    const int64_t L = 2, M = 2, N = 4, K = 128;
    qmv_format fmt;
    qmv_dtype sd = QMV_DTYPE_F16;
    switch (kind) {
    case FX_AFFINE:
        fmt = (qmv_format){QMV_MODE_AFFINE, 4, 64};
        break;
    case FX_NVFP4G:
        fmt = (qmv_format){QMV_MODE_NVFP4, 4, 16};
        break;
    case FX_MXFP4:
        fmt = (qmv_format){QMV_MODE_MXFP4, 4, 32};
        break;
    default:
        fmt = (qmv_format){QMV_MODE_MXFP8, 8, 32};
        break;
    }
    const int affine = fmt.mode == QMV_MODE_AFFINE;
    const int64_t wpr = K * fmt.bits / 32, G = K / fmt.group_size;
    const size_t ssz = affine ? 2 : 1;
    fx->pb = (size_t)(L * N * wpr) * 4;
    fx->sb = (size_t)(L * N * G) * ssz;
    fx->pk = tu_malloc(fx->pb);
    fill_random(fx->pk, fx->pb, 1);
    if (fmt.mode == QMV_MODE_MXFP8)
        memset(fx->pk, 0x38, fx->pb);
    fx->sc = tu_malloc(fx->sb);
    if (affine) {
        fx->bi = tu_malloc(fx->sb);
        for (int64_t i = 0; i < L * N * G; i++) {
            tu_store(QMV_DTYPE_F16, fx->sc, i, 0.01f);
            tu_store(QMV_DTYPE_F16, fx->bi, i, -0.1f);
        }
    } else {
        memset(fx->sc, fmt.mode == QMV_MODE_NVFP4 ? 0x38 : 127, fx->sb);
    }
    fx->g = 448.0f;

    const size_t xb = (size_t)(L * M * K) * 4, yb = (size_t)(L * M * N) * 2;
    fx->blk_bytes = xb + yb + 64;
    fx->blk = tu_malloc(fx->blk_bytes);
    memset(fx->blk, 0xA5, fx->blk_bytes);
    tu_rng r = {7};
    for (int64_t i = 0; i < L * M * K; i++)
        tu_store(QMV_DTYPE_F32, fx->blk, i, (float)tu_range(&r, -1000, 1000) / 1000.0f);

    qmv_qmatrix *w = &fx->w;
    w->format = fmt;
    w->scale_dtype = sd;
    w->rows = N;
    w->k = K;
    w->packed = fx->pk;
    w->packed_bytes = fx->pb;
    w->packed_row_stride = wpr;
    w->packed_batch_stride = N * wpr;
    w->scales = fx->sc;
    w->scales_bytes = fx->sb;
    w->biases = affine ? fx->bi : NULL;
    w->biases_bytes = affine ? fx->sb : 0;
    w->scales_row_stride = G;
    w->scales_batch_stride = N * G;
    w->global_scale = kind == FX_NVFP4G ? &fx->g : NULL;

    qmv_vectors *v = &fx->v;
    v->batch = L;
    v->m = M;
    v->x_dtype = QMV_DTYPE_F32;
    v->x = fx->blk;
    v->x_bytes = xb;
    v->x_row_stride = K;
    v->x_batch_stride = M * K;
    v->y_dtype = QMV_DTYPE_F16;
    v->y = fx->blk + xb; /* adjacent to x: legal */
    v->y_bytes = yb;
    v->y_row_stride = N;
    v->y_batch_stride = M * N;

    fx->e = (qmv_exec)QMV_EXEC_INIT;
    fx->e.num_threads = 2;
    fx->wp = &fx->w;
    fx->vp = &fx->v;
    fx->ep = &fx->e;
}

static void qfix_free(qfix *fx)
{
    free(fx->blk);
    free(fx->pk);
    free(fx->sc);
    free(fx->bi);
    memset(fx, 0, sizeof *fx);
}

static int qmv_cases(int i, qfix *fx)
{
    static float nan_g, inf_g, ninf_g;
    nan_g = NAN;
    inf_g = INFINITY;
    ninf_g = -INFINITY;
    CASES_BEGIN;
    /* clang-format off */
    /* valid calls */
    CASE(ST_OK, "valid affine", )
    CASE(ST_OK, "valid nvfp4 with global scale", qfix_make(fx, FX_NVFP4G);)
    CASE(ST_OK, "valid mxfp4", qfix_make(fx, FX_MXFP4);)
    CASE(ST_OK, "valid mxfp8", qfix_make(fx, FX_MXFP8);)
    CASE(ST_OK, "batch 1 with y_batch_stride 0", fx->v.batch = 1; fx->v.y_batch_stride = 0;)
    CASE(ST_OK, "x strides 0 (broadcast)", fx->v.x_row_stride = 0; fx->v.x_batch_stride = 0;)
    CASE(ST_OK, "W shared by the batch (batch strides 0)",
         fx->w.packed_batch_stride = 0;
         fx->w.scales_batch_stride = 0;)
    CASE(ST_OK, "x rows overlapping (x_row_stride 1)", fx->v.x_row_stride = 1;)
    CASE(ST_OK, "exec NULL", fx->ep = NULL;)
    CASE(ST_OK, "exec num_threads 0 (default)", fx->e.num_threads = 0;)
    /* NULL pointers */
    CASE(ST_INV, "w NULL", fx->wp = NULL;)
    CASE(ST_INV, "v NULL", fx->vp = NULL;)
    CASE(ST_INV, "packed NULL", fx->w.packed = NULL;)
    CASE(ST_INV, "scales NULL", fx->w.scales = NULL;)
    CASE(ST_INV, "affine biases NULL", fx->w.biases = NULL;)
    CASE(ST_INV, "x NULL", fx->v.x = NULL;)
    CASE(ST_INV, "y NULL", fx->v.y = NULL;)
    /* sizes */
    CASE(ST_INV, "batch 0", fx->v.batch = 0;)
    CASE(ST_INV, "batch -1", fx->v.batch = -1;)
    CASE(ST_INV, "m 0", fx->v.m = 0;)
    CASE(ST_INV, "m -1", fx->v.m = -1;)
    CASE(ST_INV, "rows -1", fx->w.rows = -1;)
    CASE(ST_INV, "k -128", fx->w.k = -128;)
    CASE(ST_INV, "k not a multiple of the group (96 / 64)", fx->w.k = 96;)
    CASE(ST_INV, "k not a multiple of the group (nvfp4 40 / 16)",
         qfix_make(fx, FX_NVFP4G);
         fx->w.k = 40;)
    /* formats */
    CASE(ST_UNS, "affine bits 7", fx->w.format.bits = 7;)
    CASE(ST_UNS, "affine bits 16", fx->w.format.bits = 16;)
    CASE(ST_UNS, "affine bits 0", fx->w.format.bits = 0;)
    CASE(ST_UNS, "affine group 0", fx->w.format.group_size = 0;)
    CASE(ST_UNS, "affine group 16", fx->w.format.group_size = 16; fx->w.k = 128;)
    CASE(ST_UNS, "affine group -64", fx->w.format.group_size = -64;)
    CASE(ST_UNS, "mxfp4 group 64", qfix_make(fx, FX_MXFP4); fx->w.format.group_size = 64;)
    CASE(ST_UNS, "mxfp4 bits 8", qfix_make(fx, FX_MXFP4); fx->w.format.bits = 8;)
    CASE(ST_UNS, "nvfp4 group 32", qfix_make(fx, FX_NVFP4G); fx->w.format.group_size = 32;)
    CASE(ST_UNS, "mxfp8 bits 4", qfix_make(fx, FX_MXFP8); fx->w.format.bits = 4;)
    CASE(ST_INV, "mode 4", fx->w.format.mode = (qmv_mode)4;)
    CASE(ST_INV, "mode -1", fx->w.format.mode = (qmv_mode)-1;)
    CASE(ST_INV, "affine scale_dtype 3", fx->w.scale_dtype = (qmv_dtype)3;)
    CASE(ST_INV, "x_dtype 3", fx->v.x_dtype = (qmv_dtype)3;)
    CASE(ST_INV, "x_dtype -1", fx->v.x_dtype = (qmv_dtype)-1;)
    CASE(ST_INV, "y_dtype 3", fx->v.y_dtype = (qmv_dtype)3;)
    /* biases and global scale */
    CASE(ST_INV, "biases given for mxfp4",
         qfix_make(fx, FX_MXFP4);
         fx->w.biases = fx->sc;
         fx->w.biases_bytes = fx->sb;)
    CASE(ST_INV, "biases given for nvfp4",
         qfix_make(fx, FX_NVFP4G);
         fx->w.biases = fx->sc;
         fx->w.biases_bytes = fx->sb;)
    CASE(ST_INV, "global scale given for affine", fx->w.global_scale = &fx->g;)
    CASE(ST_INV, "global scale given for mxfp4",
         qfix_make(fx, FX_MXFP4);
         fx->w.global_scale = &fx->g;)
    CASE(ST_INV, "global scale given for mxfp8",
         qfix_make(fx, FX_MXFP8);
         fx->w.global_scale = &fx->g;)
    CASE(ST_NF, "global scale NaN", qfix_make(fx, FX_NVFP4G); fx->w.global_scale = &nan_g;)
    CASE(ST_NF, "global scale +Inf", qfix_make(fx, FX_NVFP4G); fx->w.global_scale = &inf_g;)
    CASE(ST_NF, "global scale -Inf", qfix_make(fx, FX_NVFP4G); fx->w.global_scale = &ninf_g;)
    /* strides */
    CASE(ST_INV, "packed_row_stride < words_per_row", fx->w.packed_row_stride = 15;)
    CASE(ST_INV, "packed_row_stride -1", fx->w.packed_row_stride = -1;)
    CASE(ST_INV, "scales_row_stride < groups_per_row", fx->w.scales_row_stride = 1;)
    CASE(ST_INV, "scales_row_stride -1", fx->w.scales_row_stride = -1;)
    CASE(ST_INV, "packed_batch_stride -1", fx->w.packed_batch_stride = -1;)
    CASE(ST_INV, "scales_batch_stride -1", fx->w.scales_batch_stride = -1;)
    CASE(ST_INV, "x_row_stride -1", fx->v.x_row_stride = -1;)
    CASE(ST_INV, "x_batch_stride -1", fx->v.x_batch_stride = -1;)
    CASE(ST_INV, "y_row_stride < rows (rows of y overlap)", fx->v.y_row_stride = 3;)
    CASE(ST_INV, "y_row_stride 0 with m 2", fx->v.y_row_stride = 0;)
    CASE(ST_INV, "y_row_stride -1", fx->v.y_row_stride = -1;)
    CASE(ST_INV, "y_row_stride 0 with m 1 (documented >= rows)",
         fx->v.m = 1;
         fx->v.y_row_stride = 0;
         fx->v.y_batch_stride = 4;)
    CASE(ST_INV, "y_batch_stride one below (m-1)*y_row_stride + rows", fx->v.y_batch_stride = 7;)
    CASE(ST_INV, "y_batch_stride 0 with batch 2", fx->v.y_batch_stride = 0;)
    CASE(ST_INV, "y_batch_stride -1", fx->v.y_batch_stride = -1;)
    CASE(ST_INV, "y_batch_stride -1 with batch 1 (strides are >= 0)",
         fx->v.batch = 1;
         fx->v.y_batch_stride = -1;)
    /* overlapping output */
    CASE(ST_INV, "y == x", fx->v.y = fx->blk;)
    CASE(ST_INV, "y overlaps the last element of x", fx->v.y = fx->blk + fx->v.x_bytes - 2;)
    CASE(ST_INV, "y inside x", fx->v.y = fx->blk + 512;)
    CASE(ST_INV, "y == packed", fx->v.y = fx->pk;)
    CASE(ST_INV, "y == scales", fx->v.y = fx->sc;)
    CASE(ST_INV, "y == biases", fx->v.y = fx->bi;)
    CASE(ST_INV, "global scale inside y",
         qfix_make(fx, FX_NVFP4G);
         fx->v.y = fx->blk + fx->v.x_bytes;
         memcpy((unsigned char *)fx->v.y + 4, &fx->g, 4);
         fx->w.global_scale = (const float *)((unsigned char *)fx->v.y + 4);)
    CASE(ST_INV, "y's last element overlaps x's first (y below x)",
         fx->v.y = fx->blk;                  /* 32 bytes of f16 y */
         fx->v.x = fx->blk + fx->v.y_bytes - 4; /* x starts under y's last two elements */)
    /* Overlap is measured on spans (the bytes a call reads and writes), not capacities. */
    CASE(ST_OK, "y right after x, x_bytes covering y (x's capacity is not its span)",
         fx->v.x_bytes = fx->blk_bytes;)
    CASE(ST_OK, "k = 0, y == packed: nothing is read, y gets zeros (fuzz finding)",
         fx->w.k = 0;
         fx->v.y = fx->pk;
         fx->v.y_bytes = fx->pb;)
    CASE(ST_OK, "k = 0, y == x: nothing is read", fx->w.k = 0; fx->v.y = fx->blk;)
    /* buffers one byte too small */
    CASE(ST_BTS, "x_bytes one too small", fx->v.x_bytes -= 1;)
    CASE(ST_BTS, "x_bytes 0", fx->v.x_bytes = 0;)
    CASE(ST_BTS, "y_bytes one too small", fx->v.y_bytes -= 1;)
    CASE(ST_BTS, "packed_bytes one too small", fx->w.packed_bytes -= 1;)
    CASE(ST_BTS, "scales_bytes one too small", fx->w.scales_bytes -= 1;)
    CASE(ST_BTS, "biases_bytes one too small", fx->w.biases_bytes -= 1;)
    CASE(ST_BTS, "nvfp4 scales_bytes one too small",
         qfix_make(fx, FX_NVFP4G);
         fx->w.scales_bytes -= 1;)
    CASE(ST_BTS, "x too small for x_row_stride", fx->v.x_row_stride = 129;)
    CASE(ST_BTS, "x too small for x_batch_stride", fx->v.x_batch_stride = 257;)
    CASE(ST_BTS, "y too small for y_row_stride", fx->v.y_row_stride = 5; fx->v.y_batch_stride = 9;)
    CASE(ST_BTS, "packed too small for packed_row_stride", fx->w.packed_row_stride = 17;)
    CASE(ST_BTS, "packed too small for packed_batch_stride", fx->w.packed_batch_stride = 65;)
    CASE(ST_BTS, "scales too small for scales_batch_stride", fx->w.scales_batch_stride = 9;)
    /* size computations that overflow */
    CASE(ST_OVF, "m = INT64_MAX, batch 1", fx->v.batch = 1; fx->v.m = INT64_MAX;)
    CASE(ST_OVF, "batch = INT64_MAX", fx->v.batch = INT64_MAX; fx->v.y_batch_stride = 8;)
    CASE(ST_OVF, "x_row_stride = INT64_MAX", fx->v.x_row_stride = INT64_MAX;)
    CASE(ST_OVF, "x_batch_stride = INT64_MAX / 2", fx->v.x_batch_stride = INT64_MAX / 2;)
    CASE(ST_OVF, "y_batch_stride = INT64_MAX", fx->v.y_batch_stride = INT64_MAX;)
    CASE(ST_OVF, "packed_row_stride = INT64_MAX", fx->w.packed_row_stride = INT64_MAX;)
    CASE(ST_OVF, "packed_batch_stride = INT64_MAX", fx->w.packed_batch_stride = INT64_MAX;)
    CASE(ST_OVF, "scales_row_stride = INT64_MAX / 2", fx->w.scales_row_stride = INT64_MAX / 2;)
    /* execution options (qmv_qmv only) */
    CASE(ST_INV, "exec num_threads -1", fx->e.num_threads = -1; fx->exec_only = 1;)
    CASE(ST_INV, "exec struct_size 0", fx->e.struct_size = 0; fx->exec_only = 1;)
    CASE(ST_INV, "exec struct_size 1", fx->e.struct_size = 1; fx->exec_only = 1;)
    /* clang-format on */
    CASES_END;
}

static void run_qmv_case(int i, int reference)
{
    qfix fx;
    memset(&fx, 0, sizeof fx);
    qfix_make(&fx, FX_AFFINE);
    int n = qmv_cases(i, &fx);
    ck_assert(i < n);
    if (reference && fx.exec_only) {
        qfix_free(&fx);
        return;
    }
    snaps s = {0};
    snap_add(&s, "x+y block", fx.blk, fx.blk_bytes);
    snap_add(&s, "packed", fx.pk, fx.pb);
    snap_add(&s, "scales", fx.sc, fx.sb);
    snap_add(&s, "biases", fx.bi, fx.sb);
    snap_add(&s, "global scale", &fx.g, sizeof fx.g);
    clear_error();
    const char *fn = reference ? "qmv_qmv_reference" : "qmv_qmv";
    qmv_status st = reference ? qmv_qmv_reference(fx.wp, fx.vp) : qmv_qmv(fx.wp, fx.vp, fx.ep);
    check_status(st, fx.want, fn, fx.what);
    if (fx.want != QMV_STATUS_OK)
        snap_check(&s, fn, fx.what);
    snap_free(&s);
    qfix_free(&fx);
}

START_TEST(test_qmv_errors)
{
    run_qmv_case(_i, 0);
}
END_TEST

START_TEST(test_qmv_reference_errors)
{
    run_qmv_case(_i, 1);
}
END_TEST

/* With k = 0 nothing of x or W is read, so y may share bytes with them (the api_validation
 * fuzz finding fuzz/corpus/api_validation/api_validation-y-aliased-input): y's elements become
 * +0 and every other byte of the shared buffer, gaps between y's rows included, is kept. */
START_TEST(test_qmv_k0_y_on_packed)
{
    qfix fx;
    memset(&fx, 0, sizeof fx);
    qfix_make(&fx, FX_AFFINE);
    fx.w.k = 0;
    fx.v.y_row_stride = 5; /* one element of gap after each row of 4 */
    fx.v.y_batch_stride = 11;
    fx.v.y = fx.pk;
    fx.v.y_bytes = fx.pb;
    unsigned char *before = tu_malloc(fx.pb);
    memcpy(before, fx.pk, fx.pb);
    for (int reference = 0; reference < 2; reference++) {
        memcpy(fx.pk, before, fx.pb);
        clear_error();
        const char *fn = reference ? "qmv_qmv_reference" : "qmv_qmv";
        qmv_status st = reference ? qmv_qmv_reference(&fx.w, &fx.v) : qmv_qmv(&fx.w, &fx.v, &fx.e);
        check_status(st, ST_OK, fn, "k = 0, y == packed");
        unsigned char *expect = tu_malloc(fx.pb);
        memcpy(expect, before, fx.pb);
        for (int64_t b = 0; b < fx.v.batch; b++)
            for (int64_t j = 0; j < fx.v.m; j++)
                for (int64_t n = 0; n < fx.w.rows; n++)
                    memset(expect + 2 * (b * fx.v.y_batch_stride + j * fx.v.y_row_stride + n), 0,
                           2); /* f16 +0 */
        long d = tu_first_diff(fx.pk, expect, fx.pb);
        ck_assert_msg(d < 0, "%s: byte %ld of the shared buffer is wrong", fn, d);
        free(expect);
    }
    free(before);
    qfix_free(&fx);
}
END_TEST

/* ---- qmv_dequantize ------------------------------------------------------------------------ */

typedef struct {
    qmv_qmatrix w;
    const qmv_qmatrix *wp;
    qmv_dtype od;
    unsigned char *out;
    void *outp;
    size_t ob, oalloc;
    int64_t ors;
    qmv_exec e;
    const qmv_exec *ep;
    uint32_t *pk;
    unsigned char *sc, *bi;
    size_t pb, sb;
    float g;
    qmv_status want;
    const char *what;
} dfix;

/* N = 3 rows, K = 128, padded packed / scales / out rows, exact buffer sizes. */
static void dfix_make(dfix *fx, int kind)
{
    free(fx->out);
    free(fx->pk);
    free(fx->sc);
    free(fx->bi);
    const qmv_status keep_want = fx->want; /* a case body may rebuild the fixture */
    const char *keep_what = fx->what;
    memset(fx, 0, sizeof *fx);
    fx->want = keep_want;
    fx->what = keep_what;
    const int64_t N = 3, K = 128;
    qmv_format fmt = kind == FX_AFFINE   ? (qmv_format){QMV_MODE_AFFINE, 4, 64}
                     : kind == FX_NVFP4G ? (qmv_format){QMV_MODE_NVFP4, 4, 16}
                     : kind == FX_MXFP4  ? (qmv_format){QMV_MODE_MXFP4, 4, 32}
                                         : (qmv_format){QMV_MODE_MXFP8, 8, 32};
    const int affine = fmt.mode == QMV_MODE_AFFINE;
    const int64_t wpr = K * fmt.bits / 32, G = K / fmt.group_size;
    const int64_t prs = wpr + 1, srs = G + 1;
    const size_t ssz = affine ? 2 : 1;
    fx->pb = (size_t)((N - 1) * prs + wpr) * 4;
    fx->sb = (size_t)((N - 1) * srs + G) * ssz;
    fx->pk = tu_malloc(fx->pb);
    fill_random(fx->pk, fx->pb, 3);
    fx->sc = tu_malloc(fx->sb);
    fill_random(fx->sc, fx->sb, 4);
    if (affine) {
        fx->bi = tu_malloc(fx->sb);
        fill_random(fx->bi, fx->sb, 5);
    }
    fx->g = 3.0f;
    qmv_qmatrix *w = &fx->w;
    w->format = fmt;
    w->scale_dtype = QMV_DTYPE_BF16;
    w->rows = N;
    w->k = K;
    w->packed = fx->pk;
    w->packed_bytes = fx->pb;
    w->packed_row_stride = prs;
    w->packed_batch_stride = 0;
    w->scales = fx->sc;
    w->scales_bytes = fx->sb;
    w->biases = affine ? fx->bi : NULL;
    w->biases_bytes = affine ? fx->sb : 0;
    w->scales_row_stride = srs;
    w->scales_batch_stride = 0;
    w->global_scale = kind == FX_NVFP4G ? &fx->g : NULL;
    fx->wp = &fx->w;
    fx->od = QMV_DTYPE_F32;
    fx->ors = K + 1;
    fx->ob = (size_t)((N - 1) * fx->ors + K) * 4;
    fx->oalloc = fx->ob + 64;
    fx->out = tu_malloc(fx->oalloc);
    memset(fx->out, 0xA5, fx->oalloc);
    fx->outp = fx->out;
    fx->e = (qmv_exec)QMV_EXEC_INIT;
    fx->e.num_threads = 2;
    fx->ep = &fx->e;
}

static void dfix_free(dfix *fx)
{
    free(fx->out);
    free(fx->pk);
    free(fx->sc);
    free(fx->bi);
    memset(fx, 0, sizeof *fx);
}

static int deq_cases(int i, dfix *fx)
{
    static float nan_g, inf_g;
    nan_g = NAN;
    inf_g = INFINITY;
    CASES_BEGIN;
    /* clang-format off */
    CASE(ST_OK, "valid affine", )
    CASE(ST_OK, "valid nvfp4 with global scale", dfix_make(fx, FX_NVFP4G);)
    CASE(ST_OK, "valid mxfp4", dfix_make(fx, FX_MXFP4);)
    CASE(ST_OK, "valid mxfp8, out bf16", dfix_make(fx, FX_MXFP8); fx->od = QMV_DTYPE_BF16;)
    CASE(ST_OK, "batch strides ignored (INT64_MAX)",
         fx->w.packed_batch_stride = INT64_MAX;
         fx->w.scales_batch_stride = INT64_MAX;)
    CASE(ST_OK, "batch strides ignored (negative)",
         fx->w.packed_batch_stride = -5;
         fx->w.scales_batch_stride = -5;)
    CASE(ST_OK, "exec NULL", fx->ep = NULL;)
    CASE(ST_INV, "w NULL", fx->wp = NULL;)
    CASE(ST_INV, "out NULL", fx->outp = NULL;)
    CASE(ST_INV, "packed NULL", fx->w.packed = NULL;)
    CASE(ST_INV, "scales NULL", fx->w.scales = NULL;)
    CASE(ST_INV, "affine biases NULL", fx->w.biases = NULL;)
    CASE(ST_INV, "biases given for mxfp8",
         dfix_make(fx, FX_MXFP8);
         fx->w.biases = fx->sc;
         fx->w.biases_bytes = fx->sb;)
    CASE(ST_INV, "global scale given for affine", fx->w.global_scale = &fx->g;)
    CASE(ST_INV, "global scale given for mxfp4",
         dfix_make(fx, FX_MXFP4);
         fx->w.global_scale = &fx->g;)
    CASE(ST_NF, "global scale NaN", dfix_make(fx, FX_NVFP4G); fx->w.global_scale = &nan_g;)
    CASE(ST_NF, "global scale Inf", dfix_make(fx, FX_NVFP4G); fx->w.global_scale = &inf_g;)
    CASE(ST_INV, "out_dtype 3", fx->od = (qmv_dtype)3;)
    CASE(ST_INV, "out_dtype -1", fx->od = (qmv_dtype)-1;)
    CASE(ST_INV, "affine scale_dtype 3", fx->w.scale_dtype = (qmv_dtype)3;)
    CASE(ST_INV, "rows -1", fx->w.rows = -1;)
    CASE(ST_INV, "k -1", fx->w.k = -1;)
    CASE(ST_INV, "k not a multiple of the group", fx->w.k = 96;)
    CASE(ST_UNS, "affine bits 7", fx->w.format.bits = 7;)
    CASE(ST_UNS, "affine group 0", fx->w.format.group_size = 0;)
    CASE(ST_UNS, "affine group 256", fx->w.format.group_size = 256;)
    CASE(ST_UNS, "mxfp8 group 16", dfix_make(fx, FX_MXFP8); fx->w.format.group_size = 16;)
    CASE(ST_UNS, "nvfp4 bits 8", dfix_make(fx, FX_NVFP4G); fx->w.format.bits = 8;)
    CASE(ST_INV, "mode 7", fx->w.format.mode = (qmv_mode)7;)
    CASE(ST_INV, "packed_row_stride < words_per_row", fx->w.packed_row_stride = 15;)
    CASE(ST_INV, "packed_row_stride -1", fx->w.packed_row_stride = -1;)
    CASE(ST_INV, "scales_row_stride < groups_per_row", fx->w.scales_row_stride = 1;)
    CASE(ST_INV, "out_row_stride < k", fx->ors = 127;)
    CASE(ST_INV, "out_row_stride -1", fx->ors = -1;)
    /* out overlapping an input (docs/FORMATS.md, Validation); the input is copied into out */
    CASE(ST_INV, "out overlaps packed",
         memcpy(fx->out + 64, fx->pk, fx->pb);
         fx->w.packed = (const uint32_t *)(fx->out + 64);)
    CASE(ST_INV, "out overlaps scales",
         memcpy(fx->out + 1000, fx->sc, fx->sb);
         fx->w.scales = fx->out + 1000;)
    CASE(ST_INV, "out overlaps biases",
         memcpy(fx->out + fx->ob - 4, fx->bi, fx->sb);
         fx->w.biases = fx->out + fx->ob - 4;)
    CASE(ST_INV, "out overlaps the global scale",
         dfix_make(fx, FX_NVFP4G);
         memcpy(fx->out + 64, &fx->g, sizeof fx->g);
         fx->w.global_scale = (const float *)(fx->out + 64);)
    CASE(ST_OK, "k = 0, out == packed: nothing is read or written",
         fx->w.k = 0;
         fx->outp = fx->pk;
         fx->ob = fx->pb;
         fx->ors = 0;)
    CASE(ST_BTS, "packed_bytes one too small", fx->w.packed_bytes -= 1;)
    CASE(ST_BTS, "scales_bytes one too small", fx->w.scales_bytes -= 1;)
    CASE(ST_BTS, "biases_bytes one too small", fx->w.biases_bytes -= 1;)
    CASE(ST_BTS, "out_bytes one too small", fx->ob -= 1;)
    CASE(ST_BTS, "out_bytes 0", fx->ob = 0;)
    CASE(ST_BTS, "out too small for out_row_stride", fx->ors = 130;)
    CASE(ST_BTS, "out too small for f32 when sized for f16",
         fx->ob = (size_t)(2 * fx->ors + 128) * 2;)
    CASE(ST_OVF, "rows = INT64_MAX", fx->w.rows = INT64_MAX;)
    CASE(ST_OVF, "out_row_stride = INT64_MAX", fx->ors = INT64_MAX;)
    CASE(ST_OVF, "packed_row_stride = INT64_MAX", fx->w.packed_row_stride = INT64_MAX;)
    CASE(ST_INV, "exec num_threads -1", fx->e.num_threads = -1;)
    CASE(ST_INV, "exec struct_size 0", fx->e.struct_size = 0;)
    /* clang-format on */
    CASES_END;
}

START_TEST(test_dequantize_errors)
{
    dfix fx;
    memset(&fx, 0, sizeof fx);
    dfix_make(&fx, FX_AFFINE);
    ck_assert(_i < deq_cases(_i, &fx));
    snaps s = {0};
    snap_add(&s, "out", fx.out, fx.oalloc);
    snap_add(&s, "packed", fx.pk, fx.pb);
    snap_add(&s, "scales", fx.sc, fx.sb);
    snap_add(&s, "biases", fx.bi, fx.sb);
    clear_error();
    qmv_status st = qmv_dequantize(fx.wp, fx.od, fx.outp, fx.ob, fx.ors, fx.ep);
    check_status(st, fx.want, "qmv_dequantize", fx.what);
    if (fx.want != QMV_STATUS_OK)
        snap_check(&s, "qmv_dequantize", fx.what);
    snap_free(&s);
    dfix_free(&fx);
}
END_TEST

/* ---- qmv_quantize -------------------------------------------------------------------------- */

typedef struct {
    qmv_format fmt;
    const qmv_format *fp;
    qmv_profile prof;
    float g;
    const float *gp;
    qmv_dtype wd;
    unsigned char *w;
    const void *wptr;
    size_t wb;
    int64_t rows, k, wrs;
    qmv_quant_out o;
    const qmv_quant_out *op;
    unsigned char *pk, *sc, *bi; /* allocations, each with 64 guard bytes */
    size_t pb, sb;
    qmv_exec e;
    const qmv_exec *ep;
    qmv_status want;
    const char *what;
} zfix;

/* rows = 3, k = 128, w rows padded to 130 elements (padding 0), exact buffer sizes. */
static void zfix_make(zfix *fx, int kind, qmv_dtype wd)
{
    free(fx->w);
    free(fx->pk);
    free(fx->sc);
    free(fx->bi);
    const qmv_status keep_want = fx->want; /* a case body may rebuild the fixture */
    const char *keep_what = fx->what;
    memset(fx, 0, sizeof *fx);
    fx->want = keep_want;
    fx->what = keep_what;
    fx->fmt = kind == FX_AFFINE   ? (qmv_format){QMV_MODE_AFFINE, 4, 64}
              : kind == FX_NVFP4G ? (qmv_format){QMV_MODE_NVFP4, 4, 16}
              : kind == FX_MXFP4  ? (qmv_format){QMV_MODE_MXFP4, 4, 32}
                                  : (qmv_format){QMV_MODE_MXFP8, 8, 32};
    fx->fp = &fx->fmt;
    fx->prof = QMV_PROFILE_MLX_CPU;
    fx->g = 100.0f;
    fx->gp = kind == FX_NVFP4G ? &fx->g : NULL;
    fx->wd = wd;
    fx->rows = 3;
    fx->k = 128;
    fx->wrs = 130;
    const int64_t nw = (fx->rows - 1) * fx->wrs + fx->k;
    fx->wb = (size_t)nw * tu_dsize(wd);
    fx->w = tu_malloc(fx->wb);
    memset(fx->w, 0, fx->wb);
    tu_rng r = {11};
    for (int64_t i = 0; i < fx->rows; i++)
        for (int64_t j = 0; j < fx->k; j++)
            tu_store(wd, fx->w, i * fx->wrs + j, (float)tu_range(&r, -3000, 3000) / 1000.0f);
    fx->wptr = fx->w;
    const int affine = fx->fmt.mode == QMV_MODE_AFFINE;
    const int64_t G = fx->k / fx->fmt.group_size;
    fx->pb = (size_t)(fx->rows * fx->k * fx->fmt.bits / 32) * 4;
    fx->sb = (size_t)(fx->rows * G) * (affine ? tu_dsize(wd) : 1);
    fx->pk = tu_malloc(fx->pb + 64);
    fx->sc = tu_malloc(fx->sb + 64);
    memset(fx->pk, 0xA5, fx->pb + 64);
    memset(fx->sc, 0xA5, fx->sb + 64);
    if (affine) {
        fx->bi = tu_malloc(fx->sb + 64);
        memset(fx->bi, 0xA5, fx->sb + 64);
    }
    fx->o.packed = (uint32_t *)fx->pk;
    fx->o.packed_bytes = fx->pb;
    fx->o.scales = fx->sc;
    fx->o.scales_bytes = fx->sb;
    fx->o.biases = affine ? fx->bi : NULL;
    fx->o.biases_bytes = affine ? fx->sb : 0;
    fx->op = &fx->o;
    fx->e = (qmv_exec)QMV_EXEC_INIT;
    fx->e.num_threads = 2;
    fx->ep = &fx->e;
}

static void zfix_free(zfix *fx)
{
    free(fx->w);
    free(fx->pk);
    free(fx->sc);
    free(fx->bi);
    memset(fx, 0, sizeof *fx);
}

static const uint32_t NAN_BITS[3] = {0x7FC00000u, 0x7E00u, 0x7FC0u};
static const uint32_t SNAN_BITS[3] = {0xFF800001u, 0xFC01u, 0xFF81u};
static const uint32_t PINF_BITS[3] = {0x7F800000u, 0x7C00u, 0x7F80u};
static const uint32_t NINF_BITS[3] = {0xFF800000u, 0xFC00u, 0xFF80u};

/* A quantize fixture of the mode kind and w dtype d whose w holds one NaN or Inf, at a position
 * and of a kind that vary with (kind, d, prof). */
static void w_nonfinite(zfix *fx, int kind, int d, int prof)
{
    zfix_make(fx, kind, (qmv_dtype)d);
    fx->prof = (qmv_profile)prof;
    const int64_t last = (fx->rows - 1) * fx->wrs + fx->k - 1;
    switch ((kind + d + prof) % 4) {
    case 0:
        tu_store_bits(fx->wd, fx->w, 0, NAN_BITS[d]);
        break;
    case 1:
        tu_store_bits(fx->wd, fx->w, last, SNAN_BITS[d]);
        break;
    case 2:
        tu_store_bits(fx->wd, fx->w, fx->wrs + 37, PINF_BITS[d]);
        break;
    default:
        tu_store_bits(fx->wd, fx->w, 2 * fx->wrs + 5, NINF_BITS[d]);
        break;
    }
}

static int quant_cases(int i, zfix *fx)
{
    CASES_BEGIN;
    /* clang-format off */
    CASE(ST_OK, "valid affine", )
    CASE(ST_OK, "valid affine f16", zfix_make(fx, FX_AFFINE, QMV_DTYPE_F16);)
    CASE(ST_OK, "valid nvfp4 with global scale", zfix_make(fx, FX_NVFP4G, QMV_DTYPE_F32);)
    CASE(ST_OK, "valid nvfp4 without global scale",
         zfix_make(fx, FX_NVFP4G, QMV_DTYPE_F32);
         fx->gp = NULL;)
    CASE(ST_OK, "valid mxfp4, profile ocp",
         zfix_make(fx, FX_MXFP4, QMV_DTYPE_BF16);
         fx->prof = QMV_PROFILE_OCP;)
    CASE(ST_OK, "valid mxfp8, profile mlx-cuda",
         zfix_make(fx, FX_MXFP8, QMV_DTYPE_F32);
         fx->prof = QMV_PROFILE_MLX_CUDA;)
    CASE(ST_OK, "NaN / Inf in the padding between rows of w (not part of w)",
         tu_store_bits(fx->wd, fx->w, 128, NAN_BITS[fx->wd]);
         tu_store_bits(fx->wd, fx->w, 129, PINF_BITS[fx->wd]);
         tu_store_bits(fx->wd, fx->w, 130 + 128, NINF_BITS[fx->wd]);)
    CASE(ST_OK, "exec NULL", fx->ep = NULL;)
    CASE(ST_INV, "fmt NULL", fx->fp = NULL;)
    CASE(ST_INV, "w NULL", fx->wptr = NULL;)
    CASE(ST_INV, "out NULL", fx->op = NULL;)
    CASE(ST_INV, "out->packed NULL", fx->o.packed = NULL;)
    CASE(ST_INV, "out->scales NULL", fx->o.scales = NULL;)
    CASE(ST_INV, "out->biases NULL for affine", fx->o.biases = NULL;)
    CASE(ST_INV, "out->biases given for mxfp4",
         zfix_make(fx, FX_MXFP4, QMV_DTYPE_F32);
         fx->bi = tu_malloc(64 + 64);
         memset(fx->bi, 0xA5, 128);
         fx->o.biases = fx->bi;
         fx->o.biases_bytes = 64;)
    CASE(ST_INV, "profile 3", fx->prof = (qmv_profile)3;)
    CASE(ST_INV, "profile -1", fx->prof = (qmv_profile)-1;)
    CASE(ST_INV, "w_dtype 3", fx->wd = (qmv_dtype)3;)
    CASE(ST_INV, "rows -1", fx->rows = -1;)
    CASE(ST_INV, "k -64", fx->k = -64;)
    CASE(ST_INV, "k not a multiple of the group", fx->k = 96;)
    CASE(ST_INV, "w_row_stride < k", fx->wrs = 127;)
    CASE(ST_INV, "w_row_stride -1", fx->wrs = -1;)
    CASE(ST_INV, "global scale given for affine", fx->gp = &fx->g;)
    CASE(ST_INV, "global scale given for mxfp4",
         zfix_make(fx, FX_MXFP4, QMV_DTYPE_F32);
         fx->gp = &fx->g;)
    CASE(ST_INV, "global scale given for mxfp8",
         zfix_make(fx, FX_MXFP8, QMV_DTYPE_F32);
         fx->gp = &fx->g;)
    CASE(ST_UNS, "affine bits 7", fx->fmt.bits = 7;)
    CASE(ST_UNS, "affine group 0", fx->fmt.group_size = 0;)
    CASE(ST_UNS, "affine group 48", fx->fmt.group_size = 48;)
    CASE(ST_UNS, "mxfp4 group 16", zfix_make(fx, FX_MXFP4, QMV_DTYPE_F32); fx->fmt.group_size = 16;)
    CASE(ST_UNS, "nvfp4 group 32",
         zfix_make(fx, FX_NVFP4G, QMV_DTYPE_F32);
         fx->fmt.group_size = 32;)
    CASE(ST_UNS, "mxfp8 bits 4", zfix_make(fx, FX_MXFP8, QMV_DTYPE_F32); fx->fmt.bits = 4;)
    CASE(ST_INV, "mode 4", fx->fmt.mode = (qmv_mode)4;)
    /* outputs overlapping w or each other (docs/FORMATS.md, Validation) */
    CASE(ST_INV, "out->packed overlaps w", fx->o.packed = (uint32_t *)(fx->w + 256);)
    CASE(ST_INV, "out->scales overlaps w", fx->o.scales = fx->w + fx->wb - 8;)
    CASE(ST_INV, "out->biases == out->scales", fx->o.biases = fx->o.scales;)
    CASE(ST_INV, "out->scales overlaps out->packed", fx->o.scales = fx->pk + 100;)
    CASE(ST_INV, "out->scales overlaps the global scale",
         zfix_make(fx, FX_NVFP4G, QMV_DTYPE_F32);
         memcpy(fx->sc + 4, &fx->g, sizeof fx->g);
         fx->gp = (const float *)(fx->sc + 4);)
    CASE(ST_OK, "k = 0, out->packed == w: nothing is read or written",
         fx->k = 0;
         fx->o.packed = (uint32_t *)fx->w;)
    CASE(ST_BTS, "w_bytes one too small", fx->wb -= 1;)
    CASE(ST_BTS, "packed_bytes one too small", fx->o.packed_bytes -= 1;)
    CASE(ST_BTS, "scales_bytes one too small", fx->o.scales_bytes -= 1;)
    CASE(ST_BTS, "biases_bytes one too small", fx->o.biases_bytes -= 1;)
    CASE(ST_BTS, "f16 affine scales_bytes one too small",
         zfix_make(fx, FX_AFFINE, QMV_DTYPE_F16);
         fx->o.scales_bytes -= 1;)
    CASE(ST_BTS, "nvfp4 scales_bytes one too small",
         zfix_make(fx, FX_NVFP4G, QMV_DTYPE_F32);
         fx->o.scales_bytes -= 1;)
    CASE(ST_BTS, "w too small for w_row_stride", fx->wrs = 131;)
    CASE(ST_OVF, "rows = INT64_MAX", fx->rows = INT64_MAX;)
    CASE(ST_OVF, "w_row_stride = INT64_MAX", fx->wrs = INT64_MAX;)
    /* non-finite global scales (nvfp4) */
    CASE(ST_NF, "global scale NaN", zfix_make(fx, FX_NVFP4G, QMV_DTYPE_F32); fx->g = NAN;)
    CASE(ST_NF, "global scale +Inf", zfix_make(fx, FX_NVFP4G, QMV_DTYPE_F32); fx->g = INFINITY;)
    CASE(ST_NF, "global scale -Inf", zfix_make(fx, FX_NVFP4G, QMV_DTYPE_F32); fx->g = -INFINITY;)
    CASE(ST_NF, "global scale 0", zfix_make(fx, FX_NVFP4G, QMV_DTYPE_F32); fx->g = 0.0f;)
    CASE(ST_NF, "global scale -1", zfix_make(fx, FX_NVFP4G, QMV_DTYPE_F32); fx->g = -1.0f;)
    CASE(ST_NF, "global scale 1e-45 (2688/g overflows)",
         zfix_make(fx, FX_NVFP4G, QMV_DTYPE_F32);
         fx->g = 1e-45f;)
    /* execution options */
    CASE(ST_INV, "exec num_threads -1", fx->e.num_threads = -1;)
    CASE(ST_INV, "exec struct_size 0", fx->e.struct_size = 0;)
    /* NaN / Inf in w: every mode, dtype and profile; several positions */
    for (int kind = 0; kind < 4; kind++)
        for (int d = 0; d < 3; d++)
            for (int prof = 0; prof < 3; prof++) {
                CASE(ST_NF, "w contains NaN / Inf", w_nonfinite(fx, kind, d, prof);)
            }
    /* clang-format on */
    CASES_END;
}

START_TEST(test_quantize_errors)
{
    zfix fx;
    memset(&fx, 0, sizeof fx);
    zfix_make(&fx, FX_AFFINE, QMV_DTYPE_F32);
    ck_assert(_i < quant_cases(_i, &fx));
    snaps s = {0};
    snap_add(&s, "packed", fx.pk, fx.pb + 64);
    snap_add(&s, "scales", fx.sc, fx.sb + 64);
    if (fx.bi)
        snap_add(&s, "biases", fx.bi, fx.o.biases_bytes + 64);
    snap_add(&s, "w", fx.w, fx.wb);
    clear_error();
    qmv_status st = qmv_quantize(fx.fp, fx.prof, fx.gp, fx.wd, fx.wptr, fx.wb, fx.rows, fx.k,
                                 fx.wrs, fx.op, fx.ep);
    char what[160];
    snprintf(what, sizeof what, "%s (mode %d, w %s, profile %d)", fx.what, (int)fx.fmt.mode,
             tu_dname(fx.wd), (int)fx.prof);
    check_status(st, fx.want, "qmv_quantize", what);
    if (fx.want != QMV_STATUS_OK)
        snap_check(&s, "qmv_quantize", what);
    snap_free(&s);
    zfix_free(&fx);
}
END_TEST

/* ---- qmv_convert ----------------------------------------------------------------------------- */

typedef struct {
    qmv_dtype sd, dd;
    const void *src;
    void *dst;
    size_t sb, db, count;
    unsigned char *blk; /* src at 0, dst at 256 */
    qmv_status want;
    const char *what;
} cfix;

static void cfix_make(cfix *fx)
{
    free(fx->blk);
    memset(fx, 0, sizeof *fx);
    fx->blk = tu_malloc(512);
    tu_rng r = {5};
    for (int i = 0; i < 64; i++)
        tu_store(QMV_DTYPE_F32, fx->blk, i, (float)tu_range(&r, -1000, 1000) / 7.0f);
    memset(fx->blk + 256, 0xA5, 256);
    fx->sd = QMV_DTYPE_F32;
    fx->dd = QMV_DTYPE_F16;
    fx->src = fx->blk;
    fx->dst = fx->blk + 256;
    fx->count = 16;
    fx->sb = 64;
    fx->db = 32;
}

static int conv_cases(int i, cfix *fx)
{
    CASES_BEGIN;
    /* clang-format off */
    CASE(ST_OK, "valid f32 -> f16", )
    CASE(ST_OK, "valid bf16 -> f32",
         fx->sd = QMV_DTYPE_BF16;
         fx->dd = QMV_DTYPE_F32;
         fx->sb = 32;
         fx->db = 64;)
    CASE(ST_OK, "in place, same dtype", fx->dst = fx->blk; fx->dd = QMV_DTYPE_F32; fx->db = 64;)
    CASE(ST_OK, "dst right after src", fx->dst = fx->blk + 64;)
    CASE(ST_INV, "src NULL", fx->src = NULL;)
    CASE(ST_INV, "dst NULL", fx->dst = NULL;)
    CASE(ST_INV, "src_dtype 3", fx->sd = (qmv_dtype)3;)
    CASE(ST_INV, "dst_dtype -1", fx->dd = (qmv_dtype)-1;)
    CASE(ST_BTS, "src_bytes one too small", fx->sb -= 1;)
    CASE(ST_BTS, "dst_bytes one too small", fx->db -= 1;)
    CASE(ST_BTS, "dst_bytes 0", fx->db = 0;)
    CASE(ST_OVF, "count * 4 overflows size_t", fx->count = SIZE_MAX / 2 + 1;)
    CASE(ST_OVF, "count * 2 overflows size_t",
         fx->sd = QMV_DTYPE_BF16;
         fx->count = SIZE_MAX / 2 + 1;)
    CASE(ST_INV, "dst overlaps src (partially)", fx->dst = fx->blk + 32;)
    CASE(ST_INV, "dst overlaps src (src inside dst)",
         fx->src = fx->blk + 8;
         fx->dst = fx->blk;
         fx->dd = QMV_DTYPE_F32;
         fx->db = 128;)
    CASE(ST_INV, "in place with different dtypes", fx->dst = fx->blk;)
    CASE(ST_INV, "in place with f16 -> bf16",
         fx->sd = QMV_DTYPE_F16;
         fx->dd = QMV_DTYPE_BF16;
         fx->sb = 32;
         fx->dst = fx->blk;)
    /* clang-format on */
    CASES_END;
}

START_TEST(test_convert_errors)
{
    cfix fx;
    memset(&fx, 0, sizeof fx);
    cfix_make(&fx);
    ck_assert(_i < conv_cases(_i, &fx));
    snaps s = {0};
    snap_add(&s, "src+dst block", fx.blk, 512);
    clear_error();
    qmv_status st = qmv_convert(fx.sd, fx.src, fx.sb, fx.dd, fx.dst, fx.db, fx.count);
    check_status(st, fx.want, "qmv_convert", fx.what);
    if (fx.want != QMV_STATUS_OK)
        snap_check(&s, "qmv_convert", fx.what);
    snap_free(&s);
    free(fx.blk);
}
END_TEST

/* ---- qmv_layout_query / qmv_qmatrix_dense -----------------------------------------------------
 */

typedef struct {
    qmv_mode mode;
    int bits, group;
    int fmt_null, out_null;
    qmv_dtype sd;
    int64_t rows, k;
    qmv_status want;
    const char *what;
} lcase;

static const lcase LCASES[] = {
    {QMV_MODE_AFFINE, 4, 64, 0, 0, QMV_DTYPE_F16, 3, 128, ST_OK, "valid"},
    {QMV_MODE_AFFINE, 4, 64, 0, 0, QMV_DTYPE_F16, 0, 0, ST_OK, "rows 0, k 0"},
    {QMV_MODE_AFFINE, 4, 64, 1, 0, QMV_DTYPE_F16, 3, 128, ST_INV, "fmt NULL"},
    {QMV_MODE_AFFINE, 4, 64, 0, 1, QMV_DTYPE_F16, 3, 128, ST_INV, "out NULL"},
    {QMV_MODE_AFFINE, 4, 64, 0, 0, QMV_DTYPE_F16, -1, 128, ST_INV, "rows -1"},
    {QMV_MODE_AFFINE, 4, 64, 0, 0, QMV_DTYPE_F16, 3, -64, ST_INV, "k -64"},
    {QMV_MODE_AFFINE, 4, 64, 0, 0, QMV_DTYPE_F16, 3, 96, ST_INV, "k not a multiple of 64"},
    {QMV_MODE_NVFP4, 4, 16, 0, 0, QMV_DTYPE_F32, 3, 24, ST_INV, "k not a multiple of 16"},
    {QMV_MODE_MXFP4, 4, 32, 0, 0, QMV_DTYPE_F32, 3, 48, ST_INV, "k not a multiple of 32"},
    {QMV_MODE_AFFINE, 4, 64, 0, 0, (qmv_dtype)3, 3, 128, ST_INV, "scale dtype 3"},
    {QMV_MODE_AFFINE, 4, 64, 0, 0, (qmv_dtype)-1, 3, 128, ST_INV, "scale dtype -1"},
    {(qmv_mode)4, 4, 64, 0, 0, QMV_DTYPE_F16, 3, 128, ST_INV, "mode 4"},
    {(qmv_mode)-1, 4, 64, 0, 0, QMV_DTYPE_F16, 3, 128, ST_INV, "mode -1"},
    {QMV_MODE_AFFINE, 7, 64, 0, 0, QMV_DTYPE_F16, 3, 128, ST_UNS, "bits 7"},
    {QMV_MODE_AFFINE, 4, 0, 0, 0, QMV_DTYPE_F16, 3, 128, ST_UNS, "group 0 (before k % group)"},
    {QMV_MODE_AFFINE, 4, 0, 0, 0, QMV_DTYPE_F16, 3, 0, ST_UNS, "group 0, k 0"},
    {QMV_MODE_AFFINE, 4, -64, 0, 0, QMV_DTYPE_F16, 3, 128, ST_UNS, "group -64"},
    {QMV_MODE_MXFP4, 4, 16, 0, 0, QMV_DTYPE_F32, 3, 128, ST_UNS, "mxfp4 group 16"},
    {QMV_MODE_NVFP4, 4, 32, 0, 0, QMV_DTYPE_F32, 3, 128, ST_UNS, "nvfp4 group 32"},
    {QMV_MODE_MXFP8, 4, 32, 0, 0, QMV_DTYPE_F32, 3, 128, ST_UNS, "mxfp8 bits 4"},
    {QMV_MODE_AFFINE, 4, 64, 0, 0, QMV_DTYPE_F16, INT64_MAX, 128, ST_OVF, "rows INT64_MAX"},
    {QMV_MODE_AFFINE, 4, 64, 0, 0, QMV_DTYPE_F16, 16, INT64_MAX - INT64_MAX % 64, ST_OVF,
     "k near INT64_MAX, 16 rows"},
    {QMV_MODE_AFFINE, 8, 32, 0, 0, QMV_DTYPE_F32, INT64_MAX / 16, 64, ST_OVF,
     "rows * words_per_row fits int64, * 4 bytes does not fit size_t"},
};
#define N_LCASES ((int)(sizeof LCASES / sizeof LCASES[0]))

START_TEST(test_layout_query_errors)
{
    const lcase *c = &LCASES[_i];
    qmv_format fmt = {c->mode, c->bits, c->group};
    qmv_layout out, before;
    memset(&out, 0xA5, sizeof out);
    before = out;
    clear_error();
    qmv_status st = qmv_layout_query(c->fmt_null ? NULL : &fmt, c->sd, c->rows, c->k,
                                     c->out_null ? NULL : &out);
    check_status(st, c->want, "qmv_layout_query", c->what);
    if (c->want != QMV_STATUS_OK)
        ck_assert_msg(memcmp(&out, &before, sizeof out) == 0,
                      "qmv_layout_query [%s]: out written after a failure", c->what);
}
END_TEST

START_TEST(test_qmatrix_dense_errors)
{
    const lcase *c = &LCASES[_i];
    qmv_format fmt = {c->mode, c->bits, c->group};
    uint32_t pk[4];
    uint16_t sc[4], bi[4];
    qmv_qmatrix out, before;
    memset(&out, 0xA5, sizeof out);
    before = out;
    clear_error();
    qmv_status st =
        qmv_qmatrix_dense(c->fmt_null ? NULL : &fmt, c->sd, c->rows, c->k, pk, sc,
                          c->mode == QMV_MODE_AFFINE ? bi : NULL, c->out_null ? NULL : &out);
    check_status(st, c->want, "qmv_qmatrix_dense", c->what);
    if (c->want != QMV_STATUS_OK)
        ck_assert_msg(memcmp(&out, &before, sizeof out) == 0,
                      "qmv_qmatrix_dense [%s]: out written after a failure", c->what);
}
END_TEST

/* ---- qmv_format_validate: the whole grid --------------------------------------------------- */

static int allowed(qmv_mode m, int bits, int group)
{
    switch (m) {
    case QMV_MODE_AFFINE:
        return (bits >= 1 && bits <= 8 && bits != 7) && /* as MLX 0.32.4 accepts */
               (group == 32 || group == 64 || group == 128);
    case QMV_MODE_MXFP4:
        return bits == 4 && group == 32;
    case QMV_MODE_NVFP4:
        return bits == 4 && group == 16;
    case QMV_MODE_MXFP8:
        return bits == 8 && group == 32;
    }
    return 0;
}

START_TEST(test_format_validate)
{
    static const int groups[] = {INT32_MIN, -64, -32, -1,  0,   1,    8,        15, 16,
                                 17,        24,  31,  32,  33,  48,   63,       64, 65,
                                 96,        127, 128, 129, 256, 1024, INT32_MAX};
    int nvalid = 0;
    for (int m = 0; m < QMV_MODE_COUNT; m++)
        for (int bits = -2; bits <= 40; bits++)
            for (size_t gi = 0; gi < sizeof groups / sizeof groups[0]; gi++) {
                qmv_format f = {(qmv_mode)m, bits, groups[gi]};
                qmv_format copy = f;
                char what[64];
                snprintf(what, sizeof what, "mode %d bits %d group %d", m, bits, groups[gi]);
                clear_error();
                qmv_status want = allowed((qmv_mode)m, bits, groups[gi]) ? ST_OK : ST_UNS;
                nvalid += want == ST_OK;
                check_status(qmv_format_validate(&f), want, "qmv_format_validate", what);
                ck_assert(memcmp(&f, &copy, sizeof f) == 0);
            }
    ck_assert_int_eq(nvalid, 21 + 3);
    /* mode out of range, NULL */
    static const int bad_modes[] = {-1, 4, 5, 100, INT32_MIN};
    for (size_t i = 0; i < sizeof bad_modes / sizeof bad_modes[0]; i++) {
        qmv_format f = {(qmv_mode)bad_modes[i], 4, 64};
        clear_error();
        check_status(qmv_format_validate(&f), ST_INV, "qmv_format_validate", "mode out of range");
    }
    clear_error();
    check_status(qmv_format_validate(NULL), ST_INV, "qmv_format_validate", "NULL");
}
END_TEST

/* ---- qmv_format_default, *_from_name -------------------------------------------------------- */

START_TEST(test_format_default_errors)
{
    clear_error();
    check_status(qmv_format_default(QMV_MODE_NVFP4, NULL), ST_INV, "qmv_format_default",
                 "out NULL");
    static const int bad[] = {-1, 4, 99};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        qmv_format f, before;
        memset(&f, 0xA5, sizeof f);
        before = f;
        clear_error();
        check_status(qmv_format_default((qmv_mode)bad[i], &f), ST_INV, "qmv_format_default",
                     "mode out of range");
        ck_assert_msg(memcmp(&f, &before, sizeof f) == 0, "qmv_format_default wrote on failure");
    }
}
END_TEST

START_TEST(test_from_name_errors)
{
    static const char *bad[] = {"",          "float",  "float64",   "float32 ", " float32",
                                "float32\n", "int8",   "uint32",    "mxfp6",    "affine4",
                                "nvfp",      "fp4",    "mlx",       "cpu",      "mlx_cpu",
                                "ocp-",      "bfloat", "bfloat16x", "FLOAT32X", "affinee"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        qmv_dtype d;
        qmv_mode m;
        qmv_profile p;
        memset(&d, 0xA5, sizeof d);
        memset(&m, 0xA5, sizeof m);
        memset(&p, 0xA5, sizeof p);
        qmv_dtype d0 = d;
        qmv_mode m0 = m;
        qmv_profile p0 = p;
        clear_error();
        check_status(qmv_dtype_from_name(bad[i], &d), ST_INV, "qmv_dtype_from_name", bad[i]);
        clear_error();
        check_status(qmv_mode_from_name(bad[i], &m), ST_INV, "qmv_mode_from_name", bad[i]);
        clear_error();
        check_status(qmv_profile_from_name(bad[i], &p), ST_INV, "qmv_profile_from_name", bad[i]);
        ck_assert_msg(memcmp(&d, &d0, sizeof d) == 0 && memcmp(&m, &m0, sizeof m) == 0 &&
                          memcmp(&p, &p0, sizeof p) == 0,
                      "*_from_name(\"%s\") wrote *out on failure", bad[i]);
    }
    /* names of the wrong kind */
    qmv_dtype d;
    qmv_mode m;
    qmv_profile p;
    clear_error();
    check_status(qmv_dtype_from_name("affine", &d), ST_INV, "qmv_dtype_from_name", "affine");
    clear_error();
    check_status(qmv_mode_from_name("float16", &m), ST_INV, "qmv_mode_from_name", "float16");
    clear_error();
    check_status(qmv_profile_from_name("mxfp4", &p), ST_INV, "qmv_profile_from_name", "mxfp4");
    /* NULL name, NULL out */
    clear_error();
    check_status(qmv_dtype_from_name(NULL, &d), ST_INV, "qmv_dtype_from_name", "name NULL");
    clear_error();
    check_status(qmv_mode_from_name(NULL, &m), ST_INV, "qmv_mode_from_name", "name NULL");
    clear_error();
    check_status(qmv_profile_from_name(NULL, &p), ST_INV, "qmv_profile_from_name", "name NULL");
    clear_error();
    check_status(qmv_dtype_from_name("float32", NULL), ST_INV, "qmv_dtype_from_name", "out NULL");
    clear_error();
    check_status(qmv_mode_from_name("affine", NULL), ST_INV, "qmv_mode_from_name", "out NULL");
    clear_error();
    check_status(qmv_profile_from_name("ocp", NULL), ST_INV, "qmv_profile_from_name", "out NULL");
    /* and a success clears the message */
    check_status(qmv_profile_from_name("mlx-cuda", &p), ST_OK, "qmv_profile_from_name",
                 "mlx-cuda after a failure");
    ck_assert_int_eq(p, QMV_PROFILE_MLX_CUDA);
}
END_TEST

/* A failure's message stays until the next qmv call on the thread, and a success clears it. */
START_TEST(test_last_error_lifecycle)
{
    ck_assert_ptr_nonnull(qmv_last_error());
    qmv_format f = {QMV_MODE_AFFINE, 7, 64};
    ck_assert_int_eq(qmv_format_validate(&f), ST_UNS);
    const char *m1 = qmv_last_error();
    ck_assert_msg(m1 && m1[0], "no message");
    ck_assert_msg(strcmp(qmv_last_error(), m1) == 0, "message changed without a call");
    f.bits = 4;
    ck_assert_int_eq(qmv_format_validate(&f), ST_OK);
    ck_assert_str_eq(qmv_last_error(), "");
    qmv_layout l;
    ck_assert_int_eq(qmv_layout_query(&f, QMV_DTYPE_F32, -1, 64, &l), ST_INV);
    ck_assert_msg(qmv_last_error()[0] != '\0', "no message");
    ck_assert_int_eq(qmv_layout_query(&f, QMV_DTYPE_F32, 1, 64, &l), ST_OK);
    ck_assert_str_eq(qmv_last_error(), "");
}
END_TEST

/* ---- runner --------------------------------------------------------------------------------- */

static void add_loop(Suite *s, const char *name, const TTest *t, int n)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, t, 0, n);
    suite_add_tcase(s, tc);
}

int main(void)
{
    Suite *s = suite_create("errors");
    add_loop(s, "qmv", test_qmv_errors, qmv_cases(-1, NULL));
    add_loop(s, "qmv_reference", test_qmv_reference_errors, qmv_cases(-1, NULL));
    add_loop(s, "dequantize", test_dequantize_errors, deq_cases(-1, NULL));
    add_loop(s, "quantize", test_quantize_errors, quant_cases(-1, NULL));
    add_loop(s, "convert", test_convert_errors, conv_cases(-1, NULL));
    add_loop(s, "layout_query", test_layout_query_errors, N_LCASES);
    add_loop(s, "qmatrix_dense", test_qmatrix_dense_errors, N_LCASES);
    TCase *tc = tcase_create("overlap");
    tcase_add_test(tc, test_qmv_k0_y_on_packed);
    suite_add_tcase(s, tc);
    tc = tcase_create("names_formats");
    tcase_add_test(tc, test_format_validate);
    tcase_add_test(tc, test_format_default_errors);
    tcase_add_test(tc, test_from_name_errors);
    tcase_add_test(tc, test_last_error_lifecycle);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
