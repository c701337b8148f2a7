/*
 * qmv_simd_driver.h - the ISA-neutral part of the SIMD tiers of qmv_qmv() (qmv_avx2.c,
 * qmv_avx512.c): the per-thread workspace, the tile descriptor handed to the tile kernels,
 * the work split over (batch item, vector block, row block) and the bookkeeping of the
 * rearranged x. Only the tile kernels, the x rearrangement and the lane reduction are ISA
 * specific.
 *
 * Not a public header and not a translation unit of its own: each tier file includes it once,
 * inside its ISA #if, after defining the tier's shape. Everything here is static, so it is
 * compiled once per tier with that tier's ISA flags (set per source file in CMakeLists.txt)
 * and there is no new object that needs ISA flags. Both tiers used to carry identical copies
 * of this code; the results are bit-exact contracts, so this is the same code, not a rewrite.
 *
 * The including file defines, before the #include:
 *   NL             lanes per register
 *   BLK            elements per block (NL * QMVI_CHUNK)
 *   XT_FLOATS      floats of the transposed x buffer per thread
 *   MBV            vectors per pass over the weights (the tile tables have MBV entries)
 *   ACC_RV         rows x vectors of lane accumulators per work item
 *   RRMAX          rows in flight at most
 *   RR_OF(mb)      rows in flight for mb vectors (a tuning choice per ISA)
 *   QMVD_LUT_BITS  index bits of the vpermps value table (3 for ymm, 4 for zmm)
 *   QMVD_VI        the integer vector type, QMVD_VPREFIX the prefix of its intrinsics
 *   wreg_load, wreg_pair  the loads and the 128-bit lane pairing of w_regroup (below)
 * and, after it, defines the functions declared below: tile_kernel (used by DEF_TILE),
 * pick_tiles, transpose_x and lane_tree. Its entry point calls qmvd_qmv().
 */
#ifndef QMV_SIMD_DRIVER_H
#define QMV_SIMD_DRIVER_H

#if !defined(NL) || !defined(BLK) || !defined(XT_FLOATS) || !defined(MBV) || !defined(ACC_RV) ||   \
    !defined(RRMAX) || !defined(RR_OF) || !defined(QMVD_LUT_BITS) || !defined(QMVD_VI) ||     \
    !defined(QMVD_VPREFIX)
#error "qmv_simd_driver.h: define the tier's shape first (see the header comment)"
#endif

#include <stdalign.h>
#include <stdint.h>
#include <string.h>

#include "elements.h"
#include "qmv_tiers.h"

#define QMVD_LUT_N (1 << QMVD_LUT_BITS) /* entries of the value table */

/* ---- weight words, 4- and 8-bit codes ---------------------------------------------------- */

#define QMVD_CAT_(a, b) a##b
#define QMVD_CAT(a, b) QMVD_CAT_(a, b)
#define QMVD_V(op) QMVD_CAT(QMVD_VPREFIX, op) /* QMVD_V(_unpacklo_epi32): the tier's intrinsic */

/* In-lane 4x4 transpose of dwords: o[j] lane g dword q = a[q] lane g dword j. */
static inline __attribute__((always_inline)) void transpose4(const QMVD_VI a[4], QMVD_VI o[4])
{
    const QMVD_VI t0 = QMVD_V(_unpacklo_epi32)(a[0], a[1]);
    const QMVD_VI t1 = QMVD_V(_unpackhi_epi32)(a[0], a[1]);
    const QMVD_VI t2 = QMVD_V(_unpacklo_epi32)(a[2], a[3]);
    const QMVD_VI t3 = QMVD_V(_unpackhi_epi32)(a[2], a[3]);
    o[0] = QMVD_V(_unpacklo_epi64)(t0, t2);
    o[1] = QMVD_V(_unpackhi_epi64)(t0, t2);
    o[2] = QMVD_V(_unpacklo_epi64)(t1, t3);
    o[3] = QMVD_V(_unpackhi_epi64)(t1, t3);
}

/* W_{4h} .. W_{4h+3} of a 4-bit (h = 0) or 8-bit (h = 0, 1) block without gathers, W_d
 * holding dword d of every chunk of the block in the tier's lane order (its chunk_of_lane).
 * 4-bit: register q (NL words) holds one chunk of 4 words per 128-bit lane, so one transpose
 * gives W_0..W_3. 8-bit: the 128-bit lanes with words 4h .. 4h+3 of registers q and q + 4 are
 * paired first (wreg_pair). */
static inline __attribute__((always_inline)) void w_regroup(const uint32_t *blk, int bits, int h,
                                                           QMVD_VI *W)
{
    QMVD_VI a[4];
    for (int q = 0; q < 4; q++) {
        const QMVD_VI lo = wreg_load(blk + NL * q);
        a[q] = bits == 4 ? lo : wreg_pair(lo, wreg_load(blk + NL * (q + 4)), h);
    }
    transpose4(a, W);
}

/* W_d of one block for the other widths (the tier's two-source permutes or gathers). */
static inline QMVD_VI w_dword(const uint32_t *blk, int bits, int d);

/* Makes W[r][0 .. d1] ready for rows r < rr of the tile, W[r][0 .. *have] being ready. */
static inline __attribute__((always_inline)) void w_ready(QMVD_VI (*W)[9],
                                                         const uint32_t *const *blk, int rr,
                                                         int bits, int d1, int *have)
{
    while (*have < d1) {
        if (bits == 4 || bits == 8) { /* four at a time */
            const int h = (*have + 1) / 4;
            for (int r = 0; r < rr; r++)
                w_regroup(blk[r], bits, h, &W[r][4 * h]);
            *have = 4 * h + 3;
            continue;
        }
        ++*have;
        for (int r = 0; r < rr; r++)
            W[r][*have] = w_dword(blk[r], bits, *have);
    }
}

/* Per-thread workspace. */
typedef struct {
    alignas(64) float xt[XT_FLOATS];              /* [vector][block][i][lane] */
    alignas(64) float xs[XT_FLOATS / QMVI_CHUNK]; /* affine: [vector][chunk] sums of x */
    alignas(64) float acc[(ACC_RV + RRMAX) * QMVI_LANES];
    alignas(64) uint32_t wpad[RRMAX][8 * NL]; /* a partial block, zero-padded */
    int64_t have_b, have_j0, have_k0;         /* what xt holds (have_b < 0: nothing) */
} qmvd_ws;

/* One tile of K for RR rows and MB vectors. */
typedef struct {
    const uint32_t *row[RRMAX]; /* packed words at the tile start */
    const uint32_t *next[RRMAX]; /* the next rows' words at the tile start (prefetch only) */
    int64_t sc[RRMAX];          /* scale element index of the tile's first group */
    int64_t k0;
    int len;
    int tk;          /* floats per vector in xt */
    const float *xt; /* the tile's x, vector j at xt + j * tk */
    const float *xs; /* the tile's chunk sums, vector j at xs + j * tk / 32 */
    float *acc[RRMAX];
    uint32_t (*wpad)[8 * NL];
    const qmv_qmatrix *w;
    const float *lut; /* QMVD_LUT_N element values by code (low QMVD_LUT_BITS bits) */
} qmvd_tile;

/* Prefetch for row r of a tile at block bi of nblk: the row's words two blocks ahead (one
 * cache line per 16 words) and, near the end of the tile, the next rows' first blocks, so
 * that their streams start warm. Each measured 5-10 % on streaming threads (AVX-512); a
 * farther distance was slower. */
static inline __attribute__((always_inline)) void w_prefetch(const qmvd_tile *t, int r, int bi,
                                                            int nblk, int bits)
{
    const int ahead = bi + 2;
    if (ahead >= 2 * nblk)
        return;
    const uint32_t *pf = ahead < nblk ? t->row[r] : t->next[r];
    pf += (size_t)(ahead < nblk ? ahead : ahead - nblk) * NL * (size_t)bits;
    for (int q = 0; q < bits * NL / 16; q++)
        _mm_prefetch((const char *)(pf + 16 * q), _MM_HINT_T0);
}

/* A tile kernel for one format and one vector count; a table holds MBV of them, entry
 * mb - 1 for mb vectors. */
typedef void (*tile_fn)(const qmvd_tile *t);

/* The table `name` of tile kernels for `bits`-bit codes, decoder `dec`, `segs` scale
 * segments; tile_kernel is the tier's always-inline kernel, specialized per entry
 * (kept one line per entry, out of clang-format's reach). */
/* clang-format off */
#define DEF_TILE(name, bits, dec, segs)                                                        \
    static void name##_1(const qmvd_tile *t) { tile_kernel(t, bits, dec, 1, RR_OF(1), segs); } \
    static void name##_2(const qmvd_tile *t) { tile_kernel(t, bits, dec, 2, RR_OF(2), segs); } \
    static void name##_3(const qmvd_tile *t) { tile_kernel(t, bits, dec, 3, RR_OF(3), segs); } \
    static void name##_4(const qmvd_tile *t) { tile_kernel(t, bits, dec, 4, RR_OF(4), segs); } \
    static const tile_fn name[MBV] = {name##_1, name##_2, name##_3, name##_4};
/* clang-format on */

/* Defined by the tier file (ISA specific). */
static const tile_fn *pick_tiles(const qmv_format *f);
/* xt[blk][i][lane(p)] = x[k0 + blk*BLK + p*32 + i] for one vector over [k0, k0+len); zero
 * beyond len. lane(p) is the register lane the tier's `bits`-bit tile kernel keeps chunk p of
 * a block in (a fixed permutation of the NL lanes per bit width; identity unless the tier
 * says otherwise). For affine also the chunk sums X = ((+0 + x_0) + x_1) + ... in increasing
 * i, in the same lanes. */
static void transpose_x(qmv_dtype dt, const void *x, int64_t k0, int len, float *xt, float *xs,
                        int bits);
/* The canonical tree over 128 lanes, w = 64 .. 1: acc[i] + acc[i + w] for i < w, where the
 * accumulators of each group of NL lanes are stored in the lane order of `bits` (above). */
static float lane_tree(const float *acc, int bits);

/* ---- the call ------------------------------------------------------------------------- */

typedef struct {
    const qmvi_qmv_call *call;
    const tile_fn *tiles;
    float lut[QMVD_LUT_N];
    int64_t njb, rb, nrb;
} qmvd_plan;

/* Rows [n0, n0+nr) of batch item b, vectors [j0, j0+mb). */
static void run_item(const qmvd_plan *pl, qmvd_ws *ws, int64_t b, int64_t j0, int mb, int64_t n0,
                     int nr)
{
    const qmv_qmatrix *w = pl->call->w;
    const qmv_vectors *v = pl->call->v;
    const int rr = RR_OF(mb);
    const int bits = w->format.bits, gs = w->format.group_size;
    const int affine = w->format.mode == QMV_MODE_AFFINE;
    const int tk = XT_FLOATS / mb / BLK * BLK;
    const size_t xsz = qmv_dtype_size(v->x_dtype);
    const int nrr = (nr + rr - 1) / rr * rr;
    memset(ws->acc, 0, (size_t)nrr * (size_t)mb * QMVI_LANES * sizeof(float));

    qmvd_tile t;
    t.w = w;
    t.lut = pl->lut;
    t.tk = tk;
    t.xt = ws->xt;
    t.xs = ws->xs;
    t.wpad = ws->wpad;
    for (int64_t k0 = 0; k0 < w->k; k0 += tk) {
        const int len = (int)(w->k - k0 < tk ? w->k - k0 : tk);
        /* the thread's previous item may have left this very x tile in xt */
        if (ws->have_b != b || ws->have_j0 != j0 || ws->have_k0 != k0) {
            for (int j = 0; j < mb; j++) {
                const void *x = (const char *)v->x +
                                (size_t)(b * v->x_batch_stride + (j0 + j) * v->x_row_stride) * xsz;
                transpose_x(v->x_dtype, x, k0, len, ws->xt + (size_t)j * tk,
                            affine ? ws->xs + (size_t)j * (tk / QMVI_CHUNK) : NULL, bits);
            }
            ws->have_b = b;
            ws->have_j0 = j0;
            ws->have_k0 = k0;
        }
        t.k0 = k0;
        t.len = len;
        for (int r0 = 0; r0 < nr; r0 += rr) {
            for (int r = 0; r < rr; r++) {
                /* rows past the item's end repeat its first row into scratch accumulators */
                const int64_t n = n0 + (r0 + r < nr ? r0 + r : 0);
                t.row[r] = w->packed + b * w->packed_batch_stride + n * w->packed_row_stride +
                           k0 / 32 * bits;
                /* the same row of the item's next group (its first row after the last) */
                const int64_t nn = n0 + (r0 + rr + r < nr ? r0 + rr + r : 0);
                t.next[r] = w->packed + b * w->packed_batch_stride +
                            nn * w->packed_row_stride + k0 / 32 * bits;
                t.sc[r] = b * w->scales_batch_stride + n * w->scales_row_stride + k0 / gs;
                t.acc[r] = ws->acc + (size_t)(r0 + r) * (size_t)mb * QMVI_LANES;
            }
            pl->tiles[mb - 1](&t);
        }
    }
    for (int r = 0; r < nr; r++) {
        for (int j = 0; j < mb; j++) {
            float res =
                lane_tree(ws->acc + ((size_t)r * (size_t)mb + (size_t)j) * QMVI_LANES, bits);
            if (pl->call->wi.has_g)
                res = res * pl->call->wi.g_mul;
            qmvi_store_result(v->y_dtype, v->y,
                              b * v->y_batch_stride + (j0 + j) * v->y_row_stride + n0 + r, res);
        }
    }
}

/* The whole call: plan, split into work items, run them (OpenMP threads when built with it). */
static void qmvd_qmv(const qmvi_qmv_call *call)
{
    const qmv_qmatrix *w = call->w;
    const qmv_vectors *v = call->v;
    qmvd_plan pl;
    pl.call = call;
    pl.tiles = pick_tiles(&w->format);
    /* QMVD_LUT_N entries (the vpermps index bits of the register width): codes of up to
     * QMVD_LUT_BITS bits, or E2M1 magnitudes (the AVX2 tier applies the sign bit apart) */
    const int lbits = w->format.bits <= QMVD_LUT_BITS ? w->format.bits : QMVD_LUT_BITS;
    for (unsigned c = 0; c < QMVD_LUT_N; c++)
        pl.lut[c] = qmvi_elem_value(call->t->elem, c & ((1u << lbits) - 1u));
    pl.njb = (v->m + MBV - 1) / MBV;
    /* rows per item: as many as the accumulators hold, fewer when that would leave a thread
     * idle (at least 2 items per thread for N >= 16 rows per thread) */
    const int mb0 = v->m < MBV ? (int)v->m : MBV;
    int64_t rb = ACC_RV / mb0 / RR_OF(mb0) * RR_OF(mb0);
    const int64_t share = (w->rows + 2 * (int64_t)call->threads - 1) / (2 * (int64_t)call->threads);
    const int64_t share_r = (share + 3) / 4 * 4;
    if (share_r < rb)
        rb = share_r;
    pl.rb = rb;
    pl.nrb = (w->rows + rb - 1) / rb;
    const int64_t items = v->batch * pl.njb * pl.nrb;
    const int nt = qmvi_threads_for(call->threads, items);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1 && items > 1)
#endif
    {
        qmvd_ws ws;
        ws.have_b = -1;
        ws.have_j0 = ws.have_k0 = -1;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t it = 0; it < items; it++) {
            const int64_t b = it / (pl.njb * pl.nrb);
            const int64_t jb = it / pl.nrb % pl.njb;
            const int64_t n0 = it % pl.nrb * pl.rb;
            const int64_t j0 = jb * MBV;
            const int mb = (int)(v->m - j0 < MBV ? v->m - j0 : MBV);
            const int nr = (int)(w->rows - n0 < pl.rb ? w->rows - n0 : pl.rb);
            run_item(&pl, &ws, b, j0, mb, n0, nr);
        }
    }
}

#endif /* QMV_SIMD_DRIVER_H */
