/*
 * qmv.c - the OpenMP matrix-vector product. Same canonical order as qmv_ref.c (so the same
 * bits), organised for speed: work is split over output rows only, x is converted to float
 * once per tile of K for a block of rows, each weight tile is decoded once for up to 8
 * vectors, and the affine sums of x are computed once per segment instead of once per row.
 */
#include <math.h>
#include <string.h>

#include "elements.h"
#include "internal.h"

#define QMVI_RB 4     /* rows per work item */
#define QMVI_MB 8     /* vectors per pass over a weight tile */
#define QMVI_TK 512   /* columns per tile: a multiple of CHUNK and of every group size */
#define QMVI_TSEG (QMVI_TK / 16) /* segments per tile at most (nvfp4's 16) */

typedef struct {
    const qmv_qmatrix *w;
    const qmv_vectors *v;
    const qmvi_mode_traits *t;
    float lut[256];
    int seg; /* segment length: min(group, CHUNK); segments never straddle groups or chunks */
    qmvi_qmatrix_info wi;
} qmvi_qmv_plan;

/* Decodes codes [k0, k0+len) of a row (k0 a multiple of 32, so word-aligned) into v. */
static void qmvi_decode_tile(const qmvi_qmv_plan *pl, const uint32_t *row, int64_t k0, int len,
                             float *v)
{
    const int bits = pl->w->format.bits;
    const uint32_t *p = row + k0 / 32 * bits;
    const uint64_t mask = (1u << bits) - 1u;
    uint64_t buf = 0;
    int have = 0;
    for (int i = 0; i < len; i++) {
        if (have < bits) {
            buf |= (uint64_t)*p++ << have;
            have += 32;
        }
        v[i] = pl->lut[buf & mask];
        buf >>= bits;
        have -= bits;
    }
}

/* Rows [n0, n1) of batch item b, vectors [j0, j0+mb). */
static void qmvi_qmv_block(const qmvi_qmv_plan *pl, int64_t b, int64_t n0, int64_t n1,
                           int64_t j0, int mb)
{
    const qmv_qmatrix *w = pl->w;
    const qmv_vectors *vv = pl->v;
    const int64_t k = w->k;
    const int seg = pl->seg, gs = w->format.group_size;
    const int has_bias = pl->t->has_bias;
    const size_t xsz = qmv_dtype_size(vv->x_dtype);
    const int nr = (int)(n1 - n0);

    float acc[QMVI_RB][QMVI_MB][QMVI_LANES];
    float xt[QMVI_MB][QMVI_TK];
    float xs[QMVI_MB][QMVI_TSEG];
    float v[QMVI_TK];
    memset(acc, 0, sizeof acc);

    for (int64_t k0 = 0; k0 < k; k0 += QMVI_TK) {
        const int len = (int)(k - k0 < QMVI_TK ? k - k0 : QMVI_TK);
        const int nseg = (len + seg - 1) / seg;
        for (int j = 0; j < mb; j++) {
            const void *x = (const char *)vv->x +
                            (size_t)(b * vv->x_batch_stride + (j0 + j) * vv->x_row_stride) * xsz;
            for (int i = 0; i < len; i++)
                xt[j][i] = qmvi_load(vv->x_dtype, x, k0 + i);
            if (has_bias) {
                for (int s = 0; s < nseg; s++) {
                    float sum = 0.0f;
                    const int e = (s + 1) * seg < len ? (s + 1) * seg : len;
                    for (int i = s * seg; i < e; i++)
                        sum = sum + xt[j][i];
                    xs[j][s] = sum;
                }
            }
        }
        for (int r = 0; r < nr; r++) {
            const int64_t n = n0 + r;
            const uint32_t *row = w->packed + b * w->packed_batch_stride + n * w->packed_row_stride;
            const int64_t srow = b * w->scales_batch_stride + n * w->scales_row_stride;
            qmvi_decode_tile(pl, row, k0, len, v);
            for (int s = 0; s < nseg; s++) {
                const int i0 = s * seg;
                const int i1 = i0 + seg < len ? i0 + seg : len;
                const int64_t g = (k0 + i0) / gs;
                const int lane = (int)(((k0 + i0) / QMVI_CHUNK) % QMVI_LANES);
                const float sc = qmvi_scale_value(pl->t->scale, w->scale_dtype, w->scales, srow + g);
                const float bias = has_bias ? qmvi_load(w->scale_dtype, w->biases, srow + g) : 0.0f;
                for (int j = 0; j < mb; j++) {
                    float p = 0.0f;
                    for (int i = i0; i < i1; i++)
                        p = fmaf(xt[j][i], v[i], p);
                    float a = fmaf(p, sc, acc[r][j][lane]);
                    if (has_bias)
                        a = fmaf(xs[j][s], bias, a);
                    acc[r][j][lane] = a;
                }
            }
        }
    }
    for (int r = 0; r < nr; r++) {
        for (int j = 0; j < mb; j++) {
            float res = qmvi_lane_tree(acc[r][j]);
            if (pl->wi.has_g)
                res = res * pl->wi.g_mul;
            qmvi_store_result(vv->y_dtype, vv->y,
                              b * vv->y_batch_stride + (j0 + j) * vv->y_row_stride + n0 + r, res);
        }
    }
}

qmv_status qmv_qmv(const qmv_qmatrix *w, const qmv_vectors *v, const qmv_exec *exec)
{
    int nt;
    qmvi_qmv_plan pl;
    QMVI_TRY(qmvi_check_exec(exec, &nt));
    QMVI_TRY(qmvi_check_qmatrix(w, v ? v->batch : 1, &pl.wi));
    QMVI_TRY(qmvi_check_vectors(w, &pl.wi, v));
    pl.w = w;
    pl.v = v;
    pl.t = &qmvi_traits[w->format.mode];
    pl.seg = w->format.group_size < QMVI_CHUNK ? w->format.group_size : QMVI_CHUNK;
    qmvi_elem_lut(pl.t->elem, w->format.bits, pl.lut);

    const int64_t row_blocks = (w->rows + QMVI_RB - 1) / QMVI_RB;
    const int64_t items = v->batch * row_blocks;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && items > 1)
#endif
    for (int64_t it = 0; it < items; it++) {
        const int64_t b = it / row_blocks;
        const int64_t n0 = it % row_blocks * QMVI_RB;
        const int64_t n1 = n0 + QMVI_RB < w->rows ? n0 + QMVI_RB : w->rows;
        for (int64_t j0 = 0; j0 < v->m; j0 += QMVI_MB)
            qmvi_qmv_block(&pl, b, n0, n1, j0, (int)(v->m - j0 < QMVI_MB ? v->m - j0 : QMVI_MB));
    }
    return qmvi_ok();
}
