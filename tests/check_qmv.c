/*
 * check_qmv.c - the matrix-vector product against the canonical evaluation order.
 *
 * 1. An emulation of the canonical order (docs/ORDER.md, DESIGN.md "The canonical evaluation
 *    order"), written here from the text with its own codecs (test_util.h) and fmaf, must
 *    equal qmv_qmv_reference() byte for byte: every mode / bit width / group size, every
 *    x / y / scale dtype, K with partial chunks and with lanes that wrap, NaN canonicalization,
 *    subnormals and overflow.
 * 2. Accuracy: qmv_qmv_reference() is within a proven bound of the exact sum (computed in
 *    double from the codes).
 * 3. Every other path (qmv_qmv with 1, 2, 7 and the default number of threads) equals the
 *    reference byte for byte over strides, batch layouts, M = 1..9, N = 1, 3, 67, 300; every
 *    output element is written and nothing else in y is touched.
 *
 * OpenMP is entered only inside the (forked) tests, never in main().
 */
#include "test_util.h"

#define POISON_A 0xA5
#define POISON_B 0x5A
#define Y_GUARD  64 /* poisoned bytes after y_bytes that no call may touch */

/* ---- problems --------------------------------------------------------------------------- */

enum { DATA_NORMAL, DATA_WIDE };

typedef struct {
    int64_t L, M, N, K;
    int w_shared;      /* W batch strides 0 (one matrix for the whole batch) */
    int x_bcast_batch; /* x_batch_stride 0 */
    int x_bcast_row;   /* 1: x_row_stride 0; 2: x_row_stride 7 (rows of x overlap) */
    int pad;           /* every row / batch stride padded beyond its minimum */
    qmv_dtype xd, yd, sd;
    int data;
} shape;

typedef struct {
    tu_fmt f;
    shape sh;
    qmv_qmatrix w;
    qmv_vectors v;
    uint32_t *packed;
    unsigned char *scales, *biases, *x;
    size_t x_bytes, packed_bytes, scales_bytes;
    float g;
    size_t y_alloc; /* v.y_bytes + Y_GUARD */
} prob;

static int64_t x_index(const prob *p, int64_t b, int64_t j)
{
    return b * p->v.x_batch_stride + j * p->v.x_row_stride;
}

static int64_t y_index(const prob *p, int64_t b, int64_t j, int64_t n)
{
    return b * p->v.y_batch_stride + j * p->v.y_row_stride + n;
}

/* A random x element of the data class, already rounded to xd. */
static float gen_x(tu_rng *r, int data)
{
    if (data == DATA_WIDE) {
        /* any exponent from deep subnormal to large; the dtype rounding does the rest */
        float m = (float)tu_range(r, -(1 << 23), 1 << 23);
        int e = (int)tu_range(r, -172, 20);
        uint32_t u = tu_u32(r);
        if ((u & 63) == 0)
            return 0.0f;
        if ((u & 63) == 1)
            return -0.0f;
        return ldexpf(m, e);
    }
    /* multiples of 2^-30 in [-1, 1] with full float32 significands (so that products with the
     * codes are inexact and a missing FMA shows), some exact zeros of either sign */
    uint32_t u = tu_u32(r);
    if ((u & 15) == 0)
        return (u & 16) ? -0.0f : 0.0f;
    return ldexpf((float)tu_range(r, -(1 << 30), 1 << 30), -30);
}

static float pick_global(tu_rng *r)
{
    static const float gs[] = {2688.0f, 1344.0f, 5376.0f, 1.0f, 0.37f, 448.0f, 12345.5f};
    return gs[tu_range(r, 0, (int64_t)(sizeof gs / sizeof gs[0]) - 1)];
}

static void prob_free(prob *p)
{
    free(p->packed);
    free(p->scales);
    free(p->biases);
    free(p->x);
    memset(p, 0, sizeof *p);
}

/* Builds a random problem. Buffers are allocated at exactly the minimum size for their strides;
 * all padding (between rows and batch items) holds NaN patterns that must never be read. */
static void prob_make(prob *p, const tu_fmt *f, const shape *sh, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    p->f = *f;
    p->sh = *sh;
    tu_rng rng = {seed};
    tu_rng *r = &rng;
    const int64_t L = sh->L, M = sh->M, N = sh->N, K = sh->K;
    const int affine = f->mode == QMV_MODE_AFFINE;
    ck_assert_msg(K % f->group == 0, "bad test shape");
    const int64_t wpr = K * f->bits / 32, G = K / f->group;
    const size_t ssz = affine ? tu_dsize(sh->sd) : 1;
    const int64_t pad = sh->pad ? 1 : 0;

    int64_t prs = wpr + pad * 1, srs = G + pad * 2;
    int64_t pbs = sh->w_shared ? 0 : N * prs + pad * 3;
    int64_t sbs = sh->w_shared ? 0 : N * srs + pad * 1;
    int64_t Lw = sh->w_shared ? 1 : L;
    int64_t np = (Lw - 1) * pbs + (N - 1) * prs + wpr;
    int64_t ns = (Lw - 1) * sbs + (N - 1) * srs + G;

    p->packed_bytes = (size_t)np * 4;
    p->packed = tu_malloc(p->packed_bytes);
    memset(p->packed, 0xFF, p->packed_bytes);
    p->scales_bytes = (size_t)ns * ssz;
    p->scales = tu_malloc(p->scales_bytes);
    memset(p->scales, 0xFF, p->scales_bytes);
    if (affine) {
        p->biases = tu_malloc(p->scales_bytes);
        memset(p->biases, 0xFF, p->scales_bytes);
    }

    for (int64_t b = 0; b < Lw; b++) {
        for (int64_t n = 0; n < N; n++) {
            uint32_t *row = p->packed + b * pbs + n * prs;
            for (int64_t i = 0; i < wpr; i++) {
                uint32_t u = tu_u32(r);
                if (f->mode == QMV_MODE_MXFP8) { /* no NaN codes in ordinary data */
                    for (int s = 0; s < 32; s += 8)
                        if (((u >> s) & 0x7Fu) == 0x7Fu)
                            u ^= 1u << s;
                }
                row[i] = u;
            }
            int64_t so = b * sbs + n * srs;
            for (int64_t gi = 0; gi < G; gi++) {
                if (affine) {
                    float s, t;
                    if (sh->data == DATA_WIDE) {
                        s = ldexpf((float)tu_range(r, -(1 << 23), 1 << 23),
                                   (int)tu_range(r, -172, -10));
                        t = ldexpf((float)tu_range(r, -(1 << 23), 1 << 23),
                                   (int)tu_range(r, -172, -10));
                    } else {
                        /* |s| <= 2^-bits, |t| <= 1/2, multiples of 2^-24 */
                        s = ldexpf((float)tu_range(r, -(1 << 16), 1 << 16), -16 - f->bits);
                        t = ldexpf((float)tu_range(r, -(1 << 16), 1 << 16), -17);
                    }
                    tu_store(sh->sd, p->scales, so + gi, s);
                    tu_store(sh->sd, p->biases, so + gi, t);
                } else {
                    unsigned byte;
                    if (f->mode == QMV_MODE_NVFP4) {
                        if (sh->data == DATA_WIDE) {
                            byte = (unsigned)tu_range(r, 0, 0xFE);
                            if ((byte & 0x7F) == 0x7F)
                                byte = 0x01;
                        } else {
                            byte = (unsigned)tu_range(r, 0x20, 0x48); /* 2^-3 .. 2^2 */
                            if ((tu_u32(r) & 3) == 0)
                                byte |= 0x80; /* negative scales are legal codes */
                        }
                    } else if (sh->data == DATA_WIDE) {
                        byte = (unsigned)tu_range(r, 0, 0xFE);
                    } else {
                        byte = f->mode == QMV_MODE_MXFP4 ? (unsigned)tu_range(r, 124, 130)
                                                         : (unsigned)tu_range(r, 116, 124);
                    }
                    p->scales[so + gi] = (unsigned char)byte;
                }
            }
        }
    }

    p->g = f->global ? pick_global(r) : 0.0f;

    /* x */
    const size_t xsz = tu_dsize(sh->xd);
    int64_t xrs = sh->x_bcast_row == 1 ? 0 : sh->x_bcast_row == 2 ? 7 : K + pad * 3;
    int64_t xbs = sh->x_bcast_batch ? 0 : (M - 1) * xrs + K + pad * 5;
    int64_t nx = (sh->x_bcast_batch ? 0 : (L - 1) * xbs) + (M - 1) * xrs + K;
    p->x_bytes = (size_t)nx * xsz;
    p->x = tu_malloc(p->x_bytes);
    memset(p->x, 0xFF, p->x_bytes);
    int64_t Lx = sh->x_bcast_batch ? 1 : L, Mx = sh->x_bcast_row == 1 ? 1 : M;
    if (sh->x_bcast_row == 2) { /* overlapping rows: every element belongs to some row */
        for (int64_t i = 0; i < nx; i++)
            tu_store(sh->xd, p->x, i, gen_x(r, sh->data));
    }
    for (int64_t b = 0; b < Lx && sh->x_bcast_row != 2; b++)
        for (int64_t j = 0; j < Mx; j++)
            for (int64_t i = 0; i < K; i++)
                tu_store(sh->xd, p->x, b * xbs + j * xrs + i, gen_x(r, sh->data));

    /* y layout */
    int64_t yrs = N + pad * 3;
    int64_t ybs = (M - 1) * yrs + N + pad * 2;
    int64_t ny = (L - 1) * ybs + (M - 1) * yrs + N;

    qmv_qmatrix *w = &p->w;
    w->format = tu_format(f);
    w->scale_dtype = affine ? sh->sd : QMV_DTYPE_F32;
    w->rows = N;
    w->k = K;
    w->packed = p->packed;
    w->packed_bytes = p->packed_bytes;
    w->packed_row_stride = prs;
    w->packed_batch_stride = pbs;
    w->scales = p->scales;
    w->scales_bytes = p->scales_bytes;
    w->biases = affine ? p->biases : NULL;
    w->biases_bytes = affine ? p->scales_bytes : 0;
    w->scales_row_stride = srs;
    w->scales_batch_stride = sbs;
    w->global_scale = f->global ? &p->g : NULL;

    qmv_vectors *v = &p->v;
    v->batch = L;
    v->m = M;
    v->x_dtype = sh->xd;
    v->x = p->x;
    v->x_bytes = p->x_bytes;
    v->x_row_stride = xrs;
    v->x_batch_stride = xbs;
    v->y_dtype = sh->yd;
    v->y = NULL;
    v->y_bytes = (size_t)ny * tu_dsize(sh->yd);
    v->y_row_stride = yrs;
    v->y_batch_stride = ybs;
    p->y_alloc = v->y_bytes + Y_GUARD;
}

/* ---- the emulation of the canonical order ------------------------------------------------ */

#define CHUNK 32
#define LANES 128

static unsigned emu_code(const uint32_t *row, int bits, int64_t i)
{
    uint64_t pos = (uint64_t)i * (uint64_t)bits;
    uint64_t wi = pos / 32;
    unsigned off = (unsigned)(pos % 32);
    uint64_t v = row[wi];
    if (off + (unsigned)bits > 32)
        v |= (uint64_t)row[wi + 1] << 32;
    return (unsigned)(v >> off) & ((1u << bits) - 1u);
}

static float emu_elem(qmv_mode mode, unsigned c)
{
    switch (mode) {
    case QMV_MODE_AFFINE:
        return (float)c;
    case QMV_MODE_MXFP8:
        return (float)tu_e4m3_value(c);
    default:
        return (float)tu_e2m1_value(c);
    }
}

static float emu_scale(const qmv_qmatrix *w, const void *base, int64_t idx)
{
    if (w->format.mode == QMV_MODE_AFFINE)
        return (float)tu_load(w->scale_dtype, base, idx);
    unsigned byte = ((const unsigned char *)base)[idx];
    return w->format.mode == QMV_MODE_NVFP4 ? (float)tu_e4m3_value(byte)
                                              : (float)tu_e8m0_value(byte);
}

/* One output element r (before the output rounding), the order literally. */
static float emu_row(const qmv_qmatrix *w, const float *xf, const uint32_t *row, const void *scales,
                     const void *biases, int64_t soff)
{
    const int64_t K = w->k;
    const int gs = w->format.group_size, bits = w->format.bits;
    const qmv_mode mode = w->format.mode;
    float acc[LANES];
    for (int l = 0; l < LANES; l++)
        acc[l] = +0.0f;
    const int64_t nchunks = (K + CHUNK - 1) / CHUNK;
    for (int64_t c = 0; c < nchunks; c++) {
        const int lane = (int)(c % LANES);
        const int64_t k0 = c * CHUNK, k1 = k0 + CHUNK < K ? k0 + CHUNK : K;
        for (int64_t s0 = k0, s1; s0 < k1; s0 = s1) {
            const int64_t g = s0 / gs;
            s1 = (g + 1) * gs < k1 ? (g + 1) * gs : k1;
            float P = +0.0f;
            for (int64_t i = s0; i < s1; i++)
                P = fmaf(xf[i], emu_elem(mode, emu_code(row, bits, i)), P);
            acc[lane] = fmaf(P, emu_scale(w, scales, soff + g), acc[lane]);
            if (mode == QMV_MODE_AFFINE) {
                float X = +0.0f;
                for (int64_t i = s0; i < s1; i++)
                    X = X + xf[i];
                acc[lane] = fmaf(X, (float)tu_load(w->scale_dtype, biases, soff + g), acc[lane]);
            }
        }
    }
    for (int wd = 64; wd >= 1; wd /= 2)
        for (int i = 0; i < wd; i++)
            acc[i] = acc[i] + acc[i + wd];
    float r = acc[0];
    if (mode == QMV_MODE_NVFP4 && w->global_scale) {
        const float gsc = *w->global_scale / 2688.0f;
        r = r * gsc;
    }
    return r;
}

/* Writes every output element of (w, v) into y, which has v's layout. */
static void emu_qmv(const qmv_qmatrix *w, const qmv_vectors *v, void *y)
{
    const int64_t K = w->k;
    float *xf = tu_malloc((size_t)(K > 0 ? K : 1) * sizeof(float));
    const size_t ssz = w->format.mode == QMV_MODE_AFFINE ? tu_dsize(w->scale_dtype) : 1;
    for (int64_t b = 0; b < v->batch; b++) {
        const uint32_t *pk = w->packed + b * w->packed_batch_stride;
        const char *sc = (const char *)w->scales + (size_t)(b * w->scales_batch_stride) * ssz;
        const char *bi =
            w->biases ? (const char *)w->biases + (size_t)(b * w->scales_batch_stride) * ssz : NULL;
        for (int64_t j = 0; j < v->m; j++) {
            const int64_t xo = b * v->x_batch_stride + j * v->x_row_stride;
            for (int64_t i = 0; i < K; i++)
                xf[i] = (float)tu_load(v->x_dtype, v->x, xo + i);
            for (int64_t n = 0; n < w->rows; n++) {
                float r =
                    emu_row(w, xf, pk + n * w->packed_row_stride, sc, bi, n * w->scales_row_stride);
                int64_t yi = b * v->y_batch_stride + j * v->y_row_stride + n;
                tu_store(v->y_dtype, y, yi, r); /* NaN: the canonical quiet NaN */
            }
        }
    }
    free(xf);
}

/* ---- running and comparing ---------------------------------------------------------------- */

static const char *prob_desc(const prob *p)
{
    static char buf[256];
    snprintf(buf, sizeof buf,
             "%s b%d g%d%s L%lld M%lld N%lld K%lld x=%s y=%s s=%s shared=%d xbb=%d xbr=%d pad=%d "
             "data=%d",
             tu_mname(p->f.mode), p->f.bits, p->f.group, p->f.global ? "+gs" : "",
             (long long)p->sh.L, (long long)p->sh.M, (long long)p->sh.N, (long long)p->sh.K,
             tu_dname(p->sh.xd), tu_dname(p->sh.yd), tu_dname(p->sh.sd), p->sh.w_shared,
             p->sh.x_bcast_batch, p->sh.x_bcast_row, p->sh.pad, p->sh.data);
    return buf;
}

/* Fails with the first differing y element (or byte outside the elements). */
static void expect_same_y(const prob *p, const void *got, const void *want, const char *what)
{
    long d = tu_first_diff(got, want, p->y_alloc);
    if (d < 0)
        return;
    const size_t es = tu_dsize(p->sh.yd);
    for (int64_t b = 0; b < p->sh.L; b++)
        for (int64_t j = 0; j < p->sh.M; j++)
            for (int64_t n = 0; n < p->sh.N; n++) {
                int64_t yi = y_index(p, b, j, n);
                if ((size_t)d >= (size_t)yi * es && (size_t)d < (size_t)(yi + 1) * es)
                    ck_abort_msg("%s: y[%lld][%lld][%lld] = 0x%08x, expected 0x%08x (%s)", what,
                                 (long long)b, (long long)j, (long long)n,
                                 tu_load_bits(p->sh.yd, got, yi), tu_load_bits(p->sh.yd, want, yi),
                                 prob_desc(p));
            }
    ck_abort_msg("%s: byte %ld of y outside the output elements changed: 0x%02x, expected 0x%02x "
                 "(%s)",
                 what, d, ((const unsigned char *)got)[d], ((const unsigned char *)want)[d],
                 prob_desc(p));
}

/* 1 for bytes that belong to an output element. */
static unsigned char *y_mask(const prob *p)
{
    unsigned char *m = tu_malloc(p->y_alloc);
    memset(m, 0, p->y_alloc);
    const size_t es = tu_dsize(p->sh.yd);
    for (int64_t b = 0; b < p->sh.L; b++)
        for (int64_t j = 0; j < p->sh.M; j++)
            for (int64_t n = 0; n < p->sh.N; n++)
                memset(m + (size_t)y_index(p, b, j, n) * es, 1, es);
    return m;
}

typedef enum { RUN_REF, RUN_QMV, RUN_ORDER0 } run_kind;

/* Runs one path into a fresh y poisoned with `poison`; returns y (caller frees). */
static unsigned char *run_path(prob *p, run_kind kind, int threads, int use_exec,
                               unsigned char poison)
{
    unsigned char *y = tu_malloc(p->y_alloc);
    memset(y, poison, p->y_alloc);
    p->v.y = y;
    qmv_status st;
    if (kind == RUN_REF) {
        st = qmv_qmv_reference(&p->w, &p->v);
    } else if (kind == RUN_ORDER0) {
        st = qmv_qmv_order(0, &p->w, &p->v);
    } else {
        qmv_exec e = QMV_EXEC_INIT;
        e.num_threads = threads;
        st = qmv_qmv(&p->w, &p->v, use_exec ? &e : NULL);
    }
    ck_assert_msg(st == QMV_STATUS_OK, "%s (threads %d) failed: %d %s [%s]",
                  kind == RUN_REF ? "qmv_qmv_reference" : kind == RUN_ORDER0 ? "order 0" : "qmv_qmv", threads, (int)st,
                  qmv_last_error(), prob_desc(p));
    ck_assert_msg(qmv_last_error() != NULL && qmv_last_error()[0] == '\0',
                  "qmv_last_error() not empty after a success: \"%s\"", qmv_last_error());
    p->v.y = NULL;
    return y;
}

static unsigned char *run_emu(prob *p, unsigned char poison)
{
    unsigned char *y = tu_malloc(p->y_alloc);
    memset(y, poison, p->y_alloc);
    emu_qmv(&p->w, &p->v, y);
    return y;
}

/* The reference equals the emulation (also checks that the inputs were not modified). */
static void check_ref_vs_emu(prob *p)
{
    unsigned char *x0 = tu_malloc(p->x_bytes), *pk0 = tu_malloc(p->packed_bytes);
    memcpy(x0, p->x, p->x_bytes);
    memcpy(pk0, p->packed, p->packed_bytes);
    unsigned char *ref = run_path(p, RUN_REF, 1, 0, POISON_A);
    unsigned char *emu = run_emu(p, POISON_A);
    expect_same_y(p, ref, emu, "reference vs emulation");
    ck_assert_msg(memcmp(x0, p->x, p->x_bytes) == 0, "x modified");
    ck_assert_msg(memcmp(pk0, p->packed, p->packed_bytes) == 0, "packed modified");
    free(ref);
    free(emu);
    free(x0);
    free(pk0);
}

static void shape_dtypes(shape *sh, int combo)
{
    sh->xd = (qmv_dtype)(combo % 3);
    sh->yd = (qmv_dtype)((combo / 3) % 3);
    sh->sd = (qmv_dtype)((combo / 9) % 3);
}

/* K values for a group size: one group, three groups, a row whose chunks do not fill the lanes
 * (4096 + g), rows whose chunks wrap around the 128 lanes (8192 + g), and the values named in the
 * test plan (16, 48, 32, 96, 4128, 8256) when they are multiples of g. */
static int k_list(int g, int64_t *ks)
{
    const int64_t cand[] = {g,  3 * g, 4096 + g, 8192 + g,  16,
                            48, 32,    96,       4096 + 32, 128 * 32 * 2 + 64};
    int n = 0;
    for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++) {
        if (cand[i] % g)
            continue;
        int dup = 0;
        for (int j = 0; j < n; j++)
            dup |= ks[j] == cand[i];
        if (!dup)
            ks[n++] = cand[i];
    }
    return n;
}

/* ---- 1a. reference == emulation --------------------------------------------------------- */

START_TEST(test_ref_equals_emulation)
{
    const tu_fmt *f = &TU_FMTS[_i];
    int64_t ks[16];
    int nk = k_list(f->group, ks);
    const int ncombo = f->mode == QMV_MODE_AFFINE ? 27 : 9;
    for (int combo = 0; combo < ncombo; combo++) {
        for (int ki = 0; ki < nk; ki++) {
            shape sh = {1, 2, 5, ks[ki], 0, 0, 0, 0, 0, 0, 0, DATA_NORMAL};
            shape_dtypes(&sh, combo);
            prob p;
            prob_make(&p, f, &sh, 1000u + (uint64_t)(_i * 131 + combo * 17 + ki));
            check_ref_vs_emu(&p);
            prob_free(&p);
        }
    }
}
END_TEST

/* Wide-range data: subnormal inputs, scales down to 2^-127 and E4M3 subnormals, products and
 * sums that underflow, overflow to Inf in float16 / bfloat16 / float32, Inf - Inf. */
START_TEST(test_ref_equals_emulation_wide)
{
    const tu_fmt *f = &TU_FMTS[_i];
    const int64_t g = f->group;
    const int64_t ks[] = {g, 3 * g, 4096 + g};
    const int ncombo = f->mode == QMV_MODE_AFFINE ? 27 : 9;
    for (int combo = 0; combo < ncombo; combo++) {
        for (int ki = 0; ki < 3; ki++) {
            shape sh = {1, 3, 7, ks[ki], 0, 0, 0, 1, 0, 0, 0, DATA_WIDE};
            shape_dtypes(&sh, combo);
            prob p;
            prob_make(&p, f, &sh, 5000u + (uint64_t)(_i * 131 + combo * 17 + ki));
            check_ref_vs_emu(&p);
            prob_free(&p);
        }
    }
}
END_TEST

/* Subnormal results must not be flushed: inputs chosen so that products, partial sums and
 * results are float32 subnormals (checked against the emulation, and that some output really is a
 * nonzero subnormal). float32 / bfloat16 x: subnormal x, scales near 1. float16 x: subnormal
 * float16 x (>= 2^-24), so the scales must be tiny: E8M0 2^-127.., affine float32 2^-130..,
 * nvfp4 only through a tiny global scale (E4M3 scales cannot get below 2^-9). */
START_TEST(test_subnormals_kept)
{
    const tu_fmt *f = &TU_FMTS[_i];
    for (int xdi = 0; xdi < 3; xdi++) {
        shape sh = {1,
                    1,
                    9,
                    3 * (int64_t)f->group,
                    0,
                    0,
                    0,
                    0,
                    (qmv_dtype)xdi,
                    QMV_DTYPE_F32,
                    QMV_DTYPE_F32,
                    DATA_NORMAL};
        prob p;
        prob_make(&p, f, &sh, 777u + (uint64_t)(_i * 3 + xdi));
        /* |x| <= X0 and |v * s| <= V0 with K * X0 * V0 below 2^-126 (K <= 384 = 2^8.6). */
        const int tiny_scales = xdi == QMV_DTYPE_F16;
        const int vs_shift = xdi == QMV_DTYPE_BF16 ? 8 : 0; /* extra 2^-8 on |v*s| for bf16 x */
        tu_rng r = {99u + (uint64_t)xdi};
        for (int64_t i = 0; i < sh.K; i++) {
            float v = xdi == QMV_DTYPE_F32   ? ldexpf((float)tu_range(&r, -100, 100), -149)
                      : xdi == QMV_DTYPE_F16 ? ldexpf((float)tu_range(&r, -100, 100), -24)
                                             : ldexpf((float)tu_range(&r, -3, 3), -133);
            tu_store(sh.xd, p.x, i, v);
        }
        const int64_t G = sh.K / f->group;
        for (int64_t n = 0; n < sh.N; n++)
            for (int64_t gi = 0; gi < G; gi++) {
                int64_t idx = n * p.w.scales_row_stride + gi;
                int a = (int)(n % 4), b = (int)(n % 3);
                if (f->mode == QMV_MODE_AFFINE) {
                    tu_store(QMV_DTYPE_F32, p.scales, idx,
                             ldexpf(1.0f, tiny_scales ? -130 - a : -f->bits - vs_shift - a));
                    tu_store(QMV_DTYPE_F32, p.biases, idx,
                             ldexpf(1.0f, tiny_scales ? -132 - b : -3 - vs_shift - b));
                } else if (f->mode == QMV_MODE_NVFP4) {
                    /* 2^-3 and below (E4M3 normal), or E4M3 subnormals for bf16 x */
                    p.scales[idx] = (unsigned char)(vs_shift ? 1 + n % 7 : 0x20 - n % 7);
                } else {
                    int e = f->mode == QMV_MODE_MXFP4 ? 3 : 9; /* |v| <= 2^e */
                    p.scales[idx] = (unsigned char)(tiny_scales ? a : 127 - e - vs_shift - a);
                }
            }
        if (f->global)
            p.g = tiny_scales ? ldexpf(2688.0f, -120) : 2688.0f;
        unsigned char *ref = run_path(&p, RUN_REF, 1, 0, POISON_A);
        unsigned char *emu = run_emu(&p, POISON_A);
        expect_same_y(&p, ref, emu, "subnormal reference vs emulation");
        for (int t = 1; t <= 2; t++) {
            unsigned char *yq = run_path(&p, RUN_QMV, t, 1, POISON_A);
            expect_same_y(&p, yq, ref, "subnormal qmv_qmv vs reference");
            free(yq);
        }
        int nsub = 0;
        for (int64_t n = 0; n < sh.N; n++) {
            float y = (float)tu_load(QMV_DTYPE_F32, ref, n);
            if (y != 0.0f && fabsf(y) < FLT_MIN)
                nsub++;
        }
        if (!(f->mode == QMV_MODE_NVFP4 && !f->global && tiny_scales))
            ck_assert_msg(nsub > 0, "no subnormal output for %s: the test data is wrong",
                          prob_desc(&p));
        free(ref);
        free(emu);
        prob_free(&p);
    }
}
END_TEST

/* NaN results are written as the canonical quiet NaN of y's dtype, whatever produced them:
 * a NaN in x (signalling, with payload and sign), Inf - Inf, Inf * 0, a NaN scale (E8M0 0xFF,
 * E4M3 0x7F, affine NaN scale or bias), a NaN element code (E4M3 0x7F / 0xFF). */
START_TEST(test_nan_canonical)
{
    const tu_fmt *f = &TU_FMTS[_i];
    for (int combo = 0; combo < 27; combo++) {
        shape sh = {1, 4, 5, 4 * (int64_t)f->group, 0, 0, 0, 1, 0, 0, 0, DATA_NORMAL};
        shape_dtypes(&sh, combo);
        if (f->mode != QMV_MODE_AFFINE && sh.sd != QMV_DTYPE_F32)
            continue;
        prob p;
        prob_make(&p, f, &sh, 4242u + (uint64_t)(_i * 27 + combo));
        const qmv_dtype xd = sh.xd;
        const int affine = f->mode == QMV_MODE_AFFINE;
        /* vector 1: a signalling NaN with payload and sign bit */
        static const uint32_t snan[3] = {0xFF800123u, 0xFC05u, 0xFF81u};
        tu_store_bits(xd, p.x, x_index(&p, 0, 1) + 5, snan[xd]);
        /* vector 2: +Inf and -Inf */
        static const uint32_t pinf[3] = {0x7F800000u, 0x7C00u, 0x7F80u};
        tu_store_bits(xd, p.x, x_index(&p, 0, 2) + 0, pinf[xd]);
        tu_store_bits(xd, p.x, x_index(&p, 0, 2) + sh.K - 1,
                      pinf[xd] | (xd ? 0x8000u : 0x80000000u));
        /* vector 3: +Inf where row 3's element code is zero (Inf * 0) */
        {
            uint32_t *row3 = p.packed + 3 * p.w.packed_row_stride;
            row3[0] &= ~((1u << f->bits) - 1u); /* code 0 of row 3 := 0 */
            tu_store_bits(xd, p.x, x_index(&p, 0, 3) + 0, pinf[xd]);
        }
        /* row 1: NaN scale in group 1 */
        int64_t s1 = 1 * p.w.scales_row_stride + 1;
        if (affine) {
            static const uint32_t qnan[3] = {0x7FC0BEEFu, 0x7E42u, 0x7FC3u};
            tu_store_bits(sh.sd, p.scales, s1, qnan[sh.sd]);
        } else {
            p.scales[s1] = f->mode == QMV_MODE_NVFP4 ? 0x7F : 0xFF;
        }
        /* row 2: NaN bias (affine) or NaN element code (mxfp8); nothing for fp4 */
        if (affine) {
            static const uint32_t nnan[3] = {0xFFC00001u, 0xFE01u, 0xFFC1u};
            tu_store_bits(sh.sd, p.biases, 2 * p.w.scales_row_stride + 0, nnan[sh.sd]);
        } else if (f->mode == QMV_MODE_MXFP8) {
            uint32_t *row2 = p.packed + 2 * p.w.packed_row_stride;
            row2[1] = (row2[1] & 0xFFFF00FFu) | 0x0000FF00u; /* element 5 := 0xFF (-NaN) */
        }

        unsigned char *ref = run_path(&p, RUN_REF, 1, 0, POISON_A);
        unsigned char *emu = run_emu(&p, POISON_A);
        expect_same_y(&p, ref, emu, "NaN case: reference vs emulation");
        const uint32_t canon = sh.yd == QMV_DTYPE_F32   ? 0x7FC00000u
                               : sh.yd == QMV_DTYPE_F16 ? 0x7E00u
                                                        : 0x7FC0u;
        /* explicit expectations, independent of the emulation */
        for (int64_t n = 0; n < sh.N; n++) {
            uint32_t y1 = tu_load_bits(sh.yd, ref, y_index(&p, 0, 1, n));
            ck_assert_msg(y1 == canon, "NaN x: y[1][%lld] = 0x%x, expected 0x%x (%s)", (long long)n,
                          y1, canon, prob_desc(&p));
        }
        {
            uint32_t y = tu_load_bits(sh.yd, ref, y_index(&p, 0, 0, 1));
            ck_assert_msg(y == canon, "NaN scale: y[0][1] = 0x%x, expected 0x%x (%s)", y, canon,
                          prob_desc(&p));
            y = tu_load_bits(sh.yd, ref, y_index(&p, 0, 3, 3));
            ck_assert_msg(y == canon, "Inf*0: y[3][3] = 0x%x, expected 0x%x (%s)", y, canon,
                          prob_desc(&p));
            if (affine || f->mode == QMV_MODE_MXFP8) {
                y = tu_load_bits(sh.yd, ref, y_index(&p, 0, 0, 2));
                ck_assert_msg(y == canon, "NaN bias/code: y[0][2] = 0x%x, expected 0x%x (%s)", y,
                              canon, prob_desc(&p));
            }
        }
        /* and every path agrees */
        for (int t = 1; t <= 2; t++) {
            unsigned char *yq = run_path(&p, RUN_QMV, t, 1, POISON_A);
            expect_same_y(&p, yq, ref, "NaN case: qmv_qmv vs reference");
            free(yq);
        }
        free(ref);
        free(emu);
        prob_free(&p);
    }
}
END_TEST

/* ---- 1b. accuracy ----------------------------------------------------------------------------
 *
 * Claim. Let S = sum over the terms of the exact sum of |term|, where the terms are
 * x_k * v_k * s_g (* c) for every k, plus x_k * t_g for affine (c = fl32(g/2688) for nvfp4 with a
 * global scale, else 1). If no intermediate underflows or overflows, the reference's r satisfies
 *     |r - exact| <= gamma_p * S,   gamma_p = p u / (1 - p u),  u = 2^-24,
 *     p = L_seg + F * C + 7 (+ 1 with a global scale), where
 *   L_seg = 32 (16 for nvfp4) is the longest group segment,
 *   C = ceil(ceil(K/32) / 128) is the number of chunks of lane 0 (the busiest lane),
 *   F = the accumulator FMAs per chunk: 1 for mxfp4 / mxfp8, 2 for nvfp4 (two segments with one
 *       scale FMA each) and 2 for affine (the scale FMA and the bias FMA of its one segment).
 * Proof. In the standard model every fmaf / + / * returns (exact result)(1 + d), |d| <= u (no
 * underflow, see below). Expand r as a sum over the terms, each multiplied by the product of the
 * (1 + d) factors of the operations it passes through after it is formed:
 *   - inside its segment, x_k v_k enters P at the FMA of index k and passes through that FMA and
 *     every later FMA of the segment: <= L_seg factors (the first FMA, from +0, still rounds the
 *     product). For affine, x_k enters X at an addition (the first one, from +0, is exact) and
 *     passes through <= L_seg - 1 factors;
 *   - the segment's P (and X) then enter acc[lane] by an FMA, whose product P*s (X*t) is not
 *     rounded separately: one factor for that FMA and one for each later FMA into the same lane,
 *     at most F * C in total (a lane owns <= C chunks with F accumulator FMAs each);
 *   - the tree adds 7 additions on every path; the global scale one multiplication (its constant
 *     c = fl32(g/2688) is an exact float and is part of the exact sum by definition).
 * So each term carries a product of at most p factors (1 + d_j), and |prod - 1| <= gamma_p
 * (Higham, Accuracy and Stability, Lemma 3.1); summing |term| * gamma_p gives the claim. The
 * bound holds with the scales and codes as exact factors because they are exact floats.
 * No underflow. Lemma: rounding a multiple of a power of two Q to float32 / float16 / bfloat16
 * gives a multiple of Q (where the grid is coarser than Q it is a set of multiples of Q; where it
 * is finer, the value is representable and unchanged). The test data are multiples of: 2^-30 for
 * x (before and, by the lemma, after rounding to x's dtype), 2^-9 for E4M3 values, 2^-1 for
 * E2M1 values, 1 for affine codes, 2^-24 for affine scales and biases (idem), 2^-11 for E8M0
 * scales (>= 2^-11), 2^-9 for E4M3 scales, 2^-36 for c (>= fl32(0.37/2688) > 2^-13). Every exact
 * intermediate (a product or sum of those) is a multiple of Q = 2^-(30+9+24+36) = 2^-99, and by
 * the lemma so is its rounding; a nonzero one has magnitude >= 2^-99 > 2^-126, so it is normal
 * and the model applies. Nothing overflows in float32: |x| <= 1, |v s| <= 448 * 2^-3, |q s| <= 1,
 * |t| <= 1/2, K <= 8320.
 * The exact sum is computed in double: each term has <= 3 double roundings and the sum of
 * n_t <= 2K terms adds <= n_t - 1 more, so the double computation contributes at most
 * gamma_{2K+3}(2^-53) * S; that is added to the bound (S itself is then used as computed, with
 * a relative slack of the same size).
 * For a float16 / bfloat16 y the result is rounded once more: |y - r| <= u_T |r| + eta_T with
 * u_T = 2^-11 / 2^-8 and eta_T = half the smallest subnormal, |r| <= |exact| + B, so
 *     |y - exact| <= B + u_T (|exact| + B) + eta_T
 * while y stays finite (elements whose bound reaches the float16 overflow threshold are skipped
 * and counted; the test asserts that almost none are).
 */

static double gamma_n(double n, double u)
{
    return n * u / (1.0 - n * u);
}

START_TEST(test_accuracy_bound)
{
    const tu_fmt *f = &TU_FMTS[_i];
    const int affine = f->mode == QMV_MODE_AFFINE;
    int64_t ks[16];
    int nk = k_list(f->group, ks);
    long checked = 0, skipped = 0;
    for (int ki = 0; ki < nk; ki++) {
        const int64_t K = ks[ki];
        for (int sdi = 0; sdi < (affine ? 3 : 1); sdi++) {
            for (int xdi = 0; xdi < 3; xdi++) {
                shape sh = {
                    1,          2, 4, K, 0, 0, 0, 0, (qmv_dtype)xdi, QMV_DTYPE_F32, (qmv_dtype)sdi,
                    DATA_NORMAL};
                prob p;
                prob_make(&p, f, &sh, 31337u + (uint64_t)(_i * 1000 + ki * 10 + sdi * 3 + xdi));
                if (f->global) /* keep the constant a coarse dyadic-friendly value */
                    p.g = (float[]){2688.0f, 1344.0f, 0.37f, 5376.0f}[(ki + xdi) % 4];

                const int64_t C = ((K + 31) / 32 + 127) / 128;
                const int F = (affine || f->mode == QMV_MODE_NVFP4) ? 2 : 1;
                const int lseg = f->mode == QMV_MODE_NVFP4 ? 16 : 32;
                const double pcount = (double)(lseg + F * C + 7 + (f->global ? 1 : 0));
                const double gp = gamma_n(pcount, 0x1p-24);
                const double gd = gamma_n((double)(2 * K + 3), 0x1p-53);
                const double c = f->global ? (double)(float)(p.g / 2688.0f) : 1.0;

                unsigned char *yout[3];
                for (int ydi = 0; ydi < 3; ydi++) {
                    p.sh.yd = p.v.y_dtype = (qmv_dtype)ydi;
                    p.v.y_bytes =
                        (size_t)((sh.M - 1) * p.v.y_row_stride + sh.N) * tu_dsize((qmv_dtype)ydi);
                    p.y_alloc = p.v.y_bytes + Y_GUARD;
                    yout[ydi] = run_path(&p, RUN_REF, 1, 0, POISON_A);
                }
                for (int64_t j = 0; j < sh.M; j++) {
                    for (int64_t n = 0; n < sh.N; n++) {
                        const uint32_t *row = p.packed + n * p.w.packed_row_stride;
                        double e = 0.0, S = 0.0;
                        for (int64_t k = 0; k < K; k++) {
                            const int64_t gi = k / f->group;
                            double xv = tu_load(sh.xd, p.x, x_index(&p, 0, j) + k);
                            double vv = (double)emu_elem(f->mode, emu_code(row, f->bits, k));
                            double sv =
                                (double)emu_scale(&p.w, p.scales, n * p.w.scales_row_stride + gi);
                            double t1 = xv * vv * sv * c;
                            e += t1;
                            S += fabs(t1);
                            if (affine) {
                                double tv = tu_load(sh.sd, p.biases,
                                                            n * p.w.scales_row_stride + gi);
                                e += xv * tv;
                                S += fabs(xv * tv);
                            }
                        }
                        const double B = (gp + gd) * S * (1.0 + 2.0 * gd);
                        for (int ydi = 0; ydi < 3; ydi++) {
                            const qmv_dtype yd = (qmv_dtype)ydi;
                            const double uT = yd == QMV_DTYPE_F32   ? 0.0
                                              : yd == QMV_DTYPE_F16 ? 0x1p-11
                                                                    : 0x1p-8;
                            const double etaT = yd == QMV_DTYPE_F32   ? 0.0
                                                : yd == QMV_DTYPE_F16 ? 0x1p-25
                                                                      : 0x1p-134;
                            const double BT = B + uT * (fabs(e) + B) + etaT;
                            if (yd == QMV_DTYPE_F16 && fabs(e) + BT >= 65504.0) {
                                skipped++;
                                continue;
                            }
                            double y = tu_load(yd, yout[ydi], (j * p.v.y_row_stride + n));
                            double err = fabs(y - e);
                            ck_assert_msg(err <= BT,
                                          "accuracy: y[%lld][%lld] (%s) = %.17g, exact %.17g, "
                                          "|err| %.3g > bound %.3g (p=%g, S=%.6g) [%s]",
                                          (long long)j, (long long)n, tu_dname(yd), y, e, err, BT,
                                          pcount, S, prob_desc(&p));
                            checked++;
                        }
                    }
                }
                for (int ydi = 0; ydi < 3; ydi++)
                    free(yout[ydi]);
                prob_free(&p);
            }
        }
    }
    ck_assert_msg(checked > 0 && skipped * 50 < checked, "accuracy: %ld checked, %ld skipped",
                  checked, skipped);
}
END_TEST

/* ---- 1c. every path == reference --------------------------------------------------------------
 */

typedef struct {
    int L, M, N;
    int kind; /* 0: 3g (48 for nvfp4: a half chunk), 1: 4096 + g, 2: 8192 + g (lanes wrap), 3: g */
    int w_shared, xbb, xbr, pad;
} path_cfg;

static const path_cfg PATH_CFGS[] = {
    {1, 1, 67, 0, 0, 0, 0, 0},  {1, 2, 67, 0, 0, 0, 0, 1}, {1, 3, 67, 0, 0, 0, 0, 0},
    {1, 4, 67, 0, 0, 0, 0, 1},  {1, 5, 67, 0, 0, 0, 0, 0}, {1, 6, 67, 0, 0, 0, 0, 1},
    {1, 7, 67, 0, 0, 0, 0, 0},  {1, 8, 67, 0, 0, 0, 0, 1}, {1, 9, 67, 0, 0, 0, 0, 0},
    {1, 4, 1, 1, 0, 0, 0, 1},   {1, 4, 3, 1, 0, 0, 0, 0},  {1, 2, 300, 0, 0, 0, 0, 1},
    {1, 3, 5, 2, 0, 0, 0, 1},                              /* lanes wrap */
    {1, 9, 3, 3, 0, 0, 0, 1},   {1, 5, 67, 0, 0, 0, 1, 1}, /* x row stride 0 */
    {3, 3, 67, 0, 1, 1, 0, 1},                             /* W shared, x batch stride 0 */
    {3, 2, 67, 0, 1, 0, 0, 0},                             /* W shared, dense */
    {3, 5, 3, 1, 0, 0, 0, 1},                              /* W per batch */
    {3, 9, 67, 0, 0, 0, 1, 1},                             /* W per batch, x row stride 0 */
    {3, 1, 300, 0, 0, 1, 0, 1},                            /* W per batch, x batch stride 0 */
    {3, 2, 3, 2, 0, 1, 0, 1},                              /* lanes wrap, W per batch */
    {3, 2, 1, 3, 0, 0, 0, 0},   {3, 4, 67, 0, 0, 0, 2, 1}, /* rows of x overlap (stride 7) */
};
#define N_PATH_CFGS ((int)(sizeof PATH_CFGS / sizeof PATH_CFGS[0]))

static void check_paths(prob *p)
{
    /* the reference: two poisons prove which bytes it writes */
    unsigned char *ra = run_path(p, RUN_REF, 1, 0, POISON_A);
    unsigned char *rb = run_path(p, RUN_REF, 1, 0, POISON_B);
    unsigned char *mask = y_mask(p);
    for (size_t i = 0; i < p->y_alloc; i++) {
        if (mask[i]) {
            ck_assert_msg(ra[i] == rb[i],
                          "reference: y byte %zu not written (or not deterministic) [%s]", i,
                          prob_desc(p));
        } else {
            ck_assert_msg(ra[i] == POISON_A && rb[i] == POISON_B,
                          "reference: y byte %zu outside the outputs written [%s]", i,
                          prob_desc(p));
        }
    }
    unsigned char *emu = run_emu(p, POISON_A);
    expect_same_y(p, ra, emu, "reference vs emulation");
    free(emu);

    /* threads 1 and 2 under both poisons; 7 (more threads than rows for small N, and more than
     * the 2 cores CI has) and 0 (OpenMP's default) under one each, to bound the run time */
    static const struct {
        int threads;
        unsigned char poison;
    } runs[] = {{1, POISON_A}, {1, POISON_B}, {2, POISON_A},
                {2, POISON_B}, {7, POISON_B}, {0, POISON_A}};
    for (size_t t = 0; t < sizeof runs / sizeof runs[0]; t++) {
        unsigned char *y = run_path(p, RUN_QMV, runs[t].threads, 1, runs[t].poison);
        char what[64];
        snprintf(what, sizeof what, "qmv_qmv (%d threads, poison 0x%02X) vs reference",
                 runs[t].threads, runs[t].poison);
        expect_same_y(p, y, runs[t].poison == POISON_A ? ra : rb, what);
        free(y);
    }
    /* exec == NULL: all defaults */
    unsigned char *y = run_path(p, RUN_QMV, 0, 0, POISON_A);
    expect_same_y(p, y, ra, "qmv_qmv (exec NULL) vs reference");
    free(y);
    free(ra);
    free(rb);
    free(mask);
}

START_TEST(test_paths_equal_reference)
{
    const tu_fmt *f = &TU_FMTS[_i];
    const int64_t g = f->group;
    for (int ci = 0; ci < N_PATH_CFGS; ci++) {
        const path_cfg *c = &PATH_CFGS[ci];
        int64_t K = c->kind == 0   ? (f->mode == QMV_MODE_NVFP4 ? 48 : 3 * g)
                    : c->kind == 1 ? 4096 + g
                    : c->kind == 2 ? 8192 + g
                                   : g;
        shape sh = {c->L, c->M, c->N, K, c->w_shared, c->xbb, c->xbr, c->pad, 0, 0, 0, DATA_NORMAL};
        shape_dtypes(&sh, (ci * 5 + _i * 7) % 27);
        prob p;
        prob_make(&p, f, &sh, 9000u + (uint64_t)(_i * 100 + ci));
        check_paths(&p);
        prob_free(&p);
    }
}
END_TEST

/* The same row of x gives the same bits whatever M, the other vectors or the batch layout
 * (batch invariance, C2), independently of the emulation. */
START_TEST(test_batch_invariance)
{
    const tu_fmt *f = &TU_FMTS[_i];
    shape sh = {3, 9, 13, 4096 + (int64_t)f->group, 0, 0, 0, 1, 0, 0, 0, DATA_NORMAL};
    shape_dtypes(&sh, (_i * 11) % 27);
    prob p;
    prob_make(&p, f, &sh, 123456u + (uint64_t)_i);
    unsigned char *all = run_path(&p, RUN_QMV, 2, 1, POISON_A);
    /* single vectors, one at a time, through the same W batch item */
    const size_t es = tu_dsize(sh.yd);
    for (int64_t b = 0; b < sh.L; b++) {
        for (int64_t j = 0; j < sh.M; j++) {
            prob q = p;
            q.w.packed = p.packed + b * p.w.packed_batch_stride;
            q.w.packed_bytes = p.packed_bytes - (size_t)(b * p.w.packed_batch_stride) * 4;
            const size_t ssz = f->mode == QMV_MODE_AFFINE ? tu_dsize(sh.sd) : 1;
            size_t so = (size_t)(b * p.w.scales_batch_stride) * ssz;
            q.w.scales = p.scales + so;
            q.w.scales_bytes = p.scales_bytes - so;
            q.w.biases = p.biases ? p.biases + so : NULL;
            q.w.biases_bytes = p.biases ? p.scales_bytes - so : 0;
            size_t xo = (size_t)x_index(&p, b, j) * tu_dsize(sh.xd);
            q.v.x = p.x + xo;
            q.v.x_bytes = (size_t)sh.K * tu_dsize(sh.xd);
            q.v.batch = 1;
            q.v.m = 1;
            q.sh.L = 1;
            q.sh.M = 1;
            q.v.y_bytes = (size_t)sh.N * es;
            q.y_alloc = q.v.y_bytes + Y_GUARD;
            for (int t = 1; t <= 2; t++) {
                unsigned char *one = run_path(&q, t == 1 ? RUN_REF : RUN_QMV, 7, 1, POISON_A);
                ck_assert_msg(
                    memcmp(one, all + (size_t)y_index(&p, b, j, 0) * es, (size_t)sh.N * es) == 0,
                    "batch invariance: vector %lld of batch %lld differs when computed "
                    "alone (%s) [%s]",
                    (long long)j, (long long)b, t == 1 ? "reference" : "qmv_qmv", prob_desc(&p));
                free(one);
            }
        }
    }
    free(all);
    prob_free(&p);
}
END_TEST


/* Order 0 of the order table is the canonical order: qmv_qmv_order(0) is the reference, and
 * the table's lookups reject what they do not know. */
START_TEST(test_order_table)
{
    const tu_fmt *f = &TU_FMTS[_i];
    shape sh = {2, 3, 9, 3 * (int64_t)f->group, 0, 0, 0, 1, 0, 0, 0, DATA_NORMAL};
    shape_dtypes(&sh, (_i * 7) % 27);
    prob p;
    prob_make(&p, f, &sh, 777u + (uint64_t)_i);
    unsigned char *ref = run_path(&p, RUN_REF, 1, 0, POISON_A);
    unsigned char *ord = run_path(&p, RUN_ORDER0, 1, 0, POISON_A);
    expect_same_y(&p, ref, ord, "order 0 vs reference");
    free(ref);
    free(ord);

    qmv_order_info info;
    int idx = -1;
    ck_assert_int_ge(qmv_order_count(), 1);
    ck_assert_int_eq(qmv_order_get(0, &info), QMV_STATUS_OK);
    ck_assert_str_eq(info.name, "qmv-v1");
    ck_assert_int_eq(info.confirmed, 1);
    ck_assert_int_eq(qmv_order_find("qmv-v1", &idx), QMV_STATUS_OK);
    ck_assert_int_eq(idx, 0);
    idx = -1;
    ck_assert_int_eq(qmv_order_find("no-such-order", &idx), QMV_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(idx, -1);
    ck_assert_ptr_nonnull(strstr(qmv_last_error(), "qmv-v1"));
    ck_assert_int_eq(qmv_order_get(qmv_order_count(), &info), QMV_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(qmv_order_get(-1, &info), QMV_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(qmv_qmv_order(qmv_order_count(), &p.w, &p.v), QMV_STATUS_INVALID_ARGUMENT);
    prob_free(&p);
}
END_TEST

/* ---- expert stacks: qmv_qmatrix_select and qmv_gather_qmv ---------------------------------- */

/* The gathered product equals, item by item, the reference on the selected expert and x item,
 * on every tier and thread count, with shared experts, repeated and broadcast x items; bad
 * indices are rejected with y untouched. */
START_TEST(test_gather)
{
    const tu_fmt *f = &TU_FMTS[_i];
    enum { E = 4, J = 7 };
    shape sh = {E, 2, 67, 4096 + (int64_t)f->group, 0, 0, 0, 1, 0, 0, 0, DATA_NORMAL};
    shape_dtypes(&sh, (_i * 5) % 27);
    prob p;
    prob_make(&p, f, &sh, 4242u + (uint64_t)_i);
    static const int32_t widx[J] = {2, 0, 2, 3, 1, 2, 2}, xidx[J] = {0, 3, 1, 0, 2, 3, 3};
    const size_t es = tu_dsize(sh.yd), ny = (size_t)(J * sh.M * sh.N);
    const size_t yalloc = ny * es + Y_GUARD;
    unsigned char *want = tu_malloc(yalloc), *got = tu_malloc(yalloc);
    memset(want, POISON_A, yalloc);
    for (int b = 0; b < J; b++) {
        qmv_qmatrix wb;
        ck_assert_int_eq(qmv_qmatrix_select(&p.w, E, widx[b], &wb), QMV_STATUS_OK);
        qmv_vectors vb = p.v;
        vb.batch = 1;
        vb.x = p.x + (size_t)x_index(&p, xidx[b], 0) * tu_dsize(sh.xd);
        vb.x_bytes = p.x_bytes - (size_t)x_index(&p, xidx[b], 0) * tu_dsize(sh.xd);
        vb.y = want + (size_t)(b * sh.M * sh.N) * es;
        vb.y_bytes = (size_t)(sh.M * sh.N) * es;
        vb.y_row_stride = sh.N;
        ck_assert_int_eq(qmv_qmv_reference(&wb, &vb), QMV_STATUS_OK);
    }
    qmv_vectors v = p.v;
    v.batch = J;
    v.y = got;
    v.y_bytes = ny * es;
    v.y_row_stride = sh.N;
    v.y_batch_stride = sh.M * sh.N;
    const qmv_gather g = {E, widx, xidx};
    const unsigned tiers = qmv_cpu_tiers_supported();
    for (unsigned tier = 1; tier <= tiers; tier <<= 1) {
        if (!(tiers & tier))
            continue;
        for (int t = 1; t <= 2; t++) {
            qmv_exec ex = {sizeof ex, t, tier};
            memset(got, POISON_A, yalloc);
            ck_assert_int_eq(qmv_gather_qmv(&p.w, &g, &v, &ex), QMV_STATUS_OK);
            long d = tu_first_diff(got, want, yalloc);
            ck_assert_msg(d < 0, "gather, tier %u, %d threads: byte %ld of y differs [%s]", tier,
                          t, d, prob_desc(&p));
        }
    }

    /* Errors: nothing written. */
    memset(got, POISON_A, yalloc);
    int32_t bad[J];
    memcpy(bad, widx, sizeof bad);
    bad[5] = E;
    qmv_gather gb = {E, bad, xidx};
    ck_assert_int_eq(qmv_gather_qmv(&p.w, &gb, &v, NULL), QMV_STATUS_INVALID_ARGUMENT);
    bad[5] = -1;
    ck_assert_int_eq(qmv_gather_qmv(&p.w, &gb, &v, NULL), QMV_STATUS_INVALID_ARGUMENT);
    memcpy(bad, xidx, sizeof bad);
    bad[6] = -2;
    gb = (qmv_gather){E, widx, bad};
    ck_assert_int_eq(qmv_gather_qmv(&p.w, &gb, &v, NULL), QMV_STATUS_INVALID_ARGUMENT);
    bad[6] = E; /* past the x items the buffer holds */
    ck_assert_int_eq(qmv_gather_qmv(&p.w, &gb, &v, NULL), QMV_STATUS_BUFFER_TOO_SMALL);
    gb = (qmv_gather){E + 1, widx, xidx}; /* a stack of more experts than the buffers hold */
    ck_assert_int_eq(qmv_gather_qmv(&p.w, &gb, &v, NULL), QMV_STATUS_BUFFER_TOO_SMALL);
    gb = (qmv_gather){0, widx, xidx};
    ck_assert_int_eq(qmv_gather_qmv(&p.w, &gb, &v, NULL), QMV_STATUS_INVALID_ARGUMENT);
    gb = (qmv_gather){E, NULL, xidx};
    ck_assert_int_eq(qmv_gather_qmv(&p.w, &gb, &v, NULL), QMV_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(qmv_gather_qmv(&p.w, NULL, &v, NULL), QMV_STATUS_INVALID_ARGUMENT);
    qmv_vectors vs = v;
    vs.y_bytes -= 1;
    ck_assert_int_eq(qmv_gather_qmv(&p.w, &g, &vs, NULL), QMV_STATUS_BUFFER_TOO_SMALL);
    ck_assert_msg(tu_all_bytes(got, yalloc, POISON_A), "a failed gather wrote to y");

    qmv_qmatrix sel;
    memset(&sel, 0x5A, sizeof sel);
    ck_assert_int_eq(qmv_qmatrix_select(&p.w, E, E, &sel), QMV_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(qmv_qmatrix_select(&p.w, E, -1, &sel), QMV_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(qmv_qmatrix_select(&p.w, E + 1, 0, &sel), QMV_STATUS_BUFFER_TOO_SMALL);
    ck_assert_int_eq(qmv_qmatrix_select(&p.w, E, 0, NULL), QMV_STATUS_INVALID_ARGUMENT);
    ck_assert_msg(tu_all_bytes(&sel, sizeof sel, 0x5A), "a failed select wrote to out");

    /* Without x_index, item b reads x item b; broadcasting one x (x_batch_stride 0). */
    const qmv_gather g2 = {E, widx, NULL};
    v.batch = E;
    v.y_bytes = (size_t)(E * sh.M * sh.N) * es;
    memset(got, POISON_A, yalloc);
    ck_assert_int_eq(qmv_gather_qmv(&p.w, &g2, &v, NULL), QMV_STATUS_OK);
    for (int b = 0; b < E; b++) {
        qmv_qmatrix wb;
        qmv_qmatrix_select(&p.w, E, widx[b], &wb);
        qmv_vectors vb = p.v;
        vb.batch = 1;
        vb.x = p.x + (size_t)x_index(&p, b, 0) * tu_dsize(sh.xd);
        vb.x_bytes = p.x_bytes - (size_t)x_index(&p, b, 0) * tu_dsize(sh.xd);
        vb.y = want;
        vb.y_bytes = (size_t)(sh.M * sh.N) * es;
        vb.y_row_stride = sh.N;
        ck_assert_int_eq(qmv_qmv_reference(&wb, &vb), QMV_STATUS_OK);
        ck_assert_msg(memcmp(want, got + (size_t)(b * sh.M * sh.N) * es, vb.y_bytes) == 0,
                      "gather without x_index: item %d differs [%s]", b, prob_desc(&p));
    }
    v.x_batch_stride = 0;
    memset(got, POISON_A, yalloc);
    ck_assert_int_eq(qmv_gather_qmv(&p.w, &g2, &v, NULL), QMV_STATUS_OK);
    for (int b = 1; b < E; b++)
        if (widx[b] == widx[0])
            ck_assert(memcmp(got, got + (size_t)(b * sh.M * sh.N) * es,
                             (size_t)(sh.M * sh.N) * es) == 0);
    free(want);
    free(got);
    prob_free(&p);
}
END_TEST

/* ---- runner --------------------------------------------------------------------------------- */

static Suite *qmv_suite(void)
{
    Suite *s = suite_create("qmv");
    struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"emulation", test_ref_equals_emulation},
        {"emulation_wide", test_ref_equals_emulation_wide},
        {"subnormals", test_subnormals_kept},
        {"nan", test_nan_canonical},
        {"accuracy", test_accuracy_bound},
        {"paths", test_paths_equal_reference},
        {"batch_invariance", test_batch_invariance},
        {"order_table", test_order_table},
        {"gather", test_gather},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, 600);
        tcase_add_loop_test(tc, cases[i].fn, 0, TU_NFMTS);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(qmv_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
