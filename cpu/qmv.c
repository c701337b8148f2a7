/*
 * qmv.c - qmv_qmv(): validation, the choice of CPU tier (tier.c), and the scalar tier, the
 * portable OpenMP path. Same canonical order as qmv_ref.c (so the same bits), organised for
 * speed: work is split over output rows only, x is converted to float once per tile of K for
 * a block of rows, each weight tile is decoded once for up to 8 vectors, and the affine sums
 * of x are computed once per segment instead of once per row. The SIMD tiers live in
 * cpu/x86/ (kernels.h).
 */
#include <math.h>
#include <string.h>

#include "elements.h"
#include "internal.h"
#include "kernels.h"

/* The tile sizes keep qmvi_qmv_block's arrays (acc, xt, xs, v: about 13.5 KB) within the
 * stack qmv.h promises for this tier (QMV_STACK_SCALAR, checked by tests/check_robust.c). */
#define QMVI_RB 4     /* rows per work item */
#define QMVI_MB 4     /* vectors per pass over a weight tile */
#define QMVI_TK 256   /* columns per tile: a multiple of CHUNK and of every group size */
#define QMVI_TSEG (QMVI_TK / 16) /* segments per tile at most (nvfp4's 16) */

typedef struct {
    const qmv_qmatrix *w;
    const qmv_vectors *v;
    const qmvi_mode_traits *t;
    float lut[256];
    int seg; /* segment length: min(group, CHUNK); segments never straddle groups or chunks */
    qmvi_qmatrix_info wi;
} qmvi_qmv_plan;

/* Decodes codes [k0, k0+len) of a row (k0 a multiple of 32, so word-aligned; len a
 * multiple of 16, so whole words) into v. Power-of-two widths decode word by word with
 * fixed shifts; 3/5/6 bits stream through a 64-bit window. */
static void qmvi_decode_tile(const qmvi_qmv_plan *pl, const uint32_t *row, int64_t k0, int len,
                             float *v)
{
    const int bits = pl->w->format.bits;
    const uint32_t *p = row + k0 / 32 * bits;
    const float *lut = pl->lut;
    if (bits == 4) {
        for (int w = 0; w < len / 8; w++)
            for (int q = 0; q < 8; q++)
                v[8 * w + q] = lut[(p[w] >> (4 * q)) & 15u];
        return;
    }
    if (bits == 8) {
        for (int w = 0; w < len / 4; w++)
            for (int q = 0; q < 4; q++)
                v[4 * w + q] = lut[(p[w] >> (8 * q)) & 255u];
        return;
    }
    if (bits == 2) {
        for (int w = 0; w < len / 16; w++)
            for (int q = 0; q < 16; q++)
                v[16 * w + q] = lut[(p[w] >> (2 * q)) & 3u];
        return;
    }
    const uint64_t mask = (1u << bits) - 1u;
    uint64_t buf = 0;
    int have = 0;
    for (int i = 0; i < len; i++) {
        if (have < bits) {
            buf |= (uint64_t)*p++ << have;
            have += 32;
        }
        v[i] = lut[buf & mask];
        buf >>= bits;
        have -= bits;
    }
}

/*
 * Adds one tile of one row and one vector into the lane accumulators, in the canonical
 * order. Consecutive segments are independent FMA chains (each ends in its own lane, or for
 * 16-element segments in the same lane in increasing order), so QMVI_ILP of them run
 * interleaved to hide the FMA latency; the per-lane updates stay in increasing k.
 */
#define QMVI_ILP 8
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define QMVI_NO_CLONES 1 /* TSan's runtime cannot resolve ifuncs at load time */
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define QMVI_NO_CLONES 1
#endif
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(QMVI_NO_CLONES)
__attribute__((target_clones("fma", "default")))
#endif
static void qmvi_row_tile(const float *x, const float *v, const float *sc, const float *bias,
                          const float *xs, int len, int seg, int lane0, float *acc)
{
    const int nseg = (len + seg - 1) / seg;
    const int full = len / seg; /* segments of full length */
    int s = 0;
    for (; s + QMVI_ILP <= full; s += QMVI_ILP) {
        float p[QMVI_ILP];
        for (int q = 0; q < QMVI_ILP; q++)
            p[q] = 0.0f;
        const float *xb = x + s * seg, *vb = v + s * seg;
        for (int i = 0; i < seg; i++)
            for (int q = 0; q < QMVI_ILP; q++)
                p[q] = fmaf(xb[q * seg + i], vb[q * seg + i], p[q]);
        for (int q = 0; q < QMVI_ILP; q++) {
            const int lane = (lane0 + (s + q) * seg / QMVI_CHUNK) % QMVI_LANES;
            float a = fmaf(p[q], sc[s + q], acc[lane]);
            if (xs)
                a = fmaf(xs[s + q], bias[s + q], a);
            acc[lane] = a;
        }
    }
    for (; s < nseg; s++) {
        const int i0 = s * seg, i1 = i0 + seg < len ? i0 + seg : len;
        const int lane = (lane0 + i0 / QMVI_CHUNK) % QMVI_LANES;
        float p = 0.0f;
        for (int i = i0; i < i1; i++)
            p = fmaf(x[i], v[i], p);
        float a = fmaf(p, sc[s], acc[lane]);
        if (xs)
            a = fmaf(xs[s], bias[s], a);
        acc[lane] = a;
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
            float sc[QMVI_TSEG], bias[QMVI_TSEG];
            for (int s = 0; s < nseg; s++) {
                const int64_t g = (k0 + (int64_t)s * seg) / gs;
                sc[s] = qmvi_scale_value(pl->t->scale, w->scale_dtype, w->scales, srow + g);
                bias[s] = has_bias ? qmvi_load(w->scale_dtype, w->biases, srow + g) : 0.0f;
            }
            for (int j = 0; j < mb; j++)
                qmvi_row_tile(xt[j], v, sc, bias, has_bias ? xs[j] : NULL, len, seg,
                              (int)(k0 / QMVI_CHUNK % QMVI_LANES), acc[r][j]);
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
    qmvi_qmatrix_info wi;
    QMVI_TRY(qmvi_check_exec(exec, &nt));
    QMVI_TRY(qmvi_check_qmatrix(w, v ? v->batch : 1, 1, &wi));
    QMVI_TRY(qmvi_check_vectors(w, &wi, v));

    /* Empty problems (no rows, or k = 0 where the sums are +0) take the scalar path, which
     * needs no pointer into x or W. */
    const qmvi_qmv_call call = {w, v, &qmvi_traits[w->format.mode], wi, nt};
    if (w->rows > 0 && w->k > 0)
        qmvi_exec_kernels(exec)->qmv(&call);
    else
        qmvi_qmv_scalar(&call);
    return qmvi_ok();
}

/* The scalar set's qmv: blocks of QMVI_RB rows over OpenMP threads. */
void qmvi_qmv_scalar(const qmvi_qmv_call *call)
{
    const qmv_qmatrix *w = call->w;
    const qmv_vectors *v = call->v;
    qmvi_qmv_plan pl;
    pl.w = w;
    pl.v = v;
    pl.t = call->t;
    pl.wi = call->wi;
    pl.seg = w->format.group_size < QMVI_CHUNK ? w->format.group_size : QMVI_CHUNK;
    qmvi_elem_lut(pl.t->elem, w->format.bits, pl.lut);

    const int64_t row_blocks = (w->rows + QMVI_RB - 1) / QMVI_RB;
    const int64_t items = v->batch * row_blocks;
    const int nt = qmvi_threads_for(call->threads, items);
    (void)nt; /* without OpenMP */
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
}
