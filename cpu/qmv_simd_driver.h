/*
 * qmv_simd_driver.h - the ISA-neutral body of the SIMD tiers of qmv_qmv(): the tile kernel
 * (one per format and vector count), the per-thread workspace, the work split over (batch
 * item, vector block, row block) and the bookkeeping of the rearranged x, written on per-ISA
 * primitives ("hooks") in the way quantize_simd.h is written on quant_vec_<isa>.h.
 *
 * The scheme (docs/ORDER.md): the canonical order gives every chunk of 32 elements its own
 * FMA chain P, so the parallelism is across chunks. A block is QMVD_NL consecutive chunks;
 * register lane p holds one chunk of the block (which one is the tier's fixed lane order,
 * see below) and the block's chunks belong to QMVD_NL consecutive accumulator lanes. For
 * element i of the chunks, one vector FMA advances all QMVD_NL chains,
 *     P = fma(xT[i], v[i], P)        xT[i][p] = x[(chunk of lane p) * 32 + i],
 * with x rearranged into that layout once per call and thread (transpose_x) and the weights
 * rearranged per block in registers: W_d holds dword d of every chunk of the block, element i
 * is a shift of W_d and a decode. Each group segment ends with one masked update of the lane
 * accumulators, acc = fma(P, s, acc) (affine: then fma(X, t, acc)), so lanes beyond the end of
 * K are never touched. Rows (RR) and vectors (MB) in flight give RR * MB independent FMA chains
 * to cover the FMA latency, and each decoded weight vector serves MB vectors of x. Which lane
 * holds which chunk is a layout choice inside the call (x, scales, lane masks and
 * accumulators follow it; lane_tree restores the canonical lane order before the lanes meet),
 * so the order of every operation is the canonical one and the result is qmv_ref.c's.
 *
 * Not a public header and not a translation unit of its own: each tier file (cpu/<arch>/
 * qmv_<isa>.c) includes it once, inside its ISA #if, so everything here is compiled with that
 * tier's ISA flags (set per source file in CMakeLists.txt). The tier file
 *   1. defines the shape and the vector types:
 *      QMVD_NL          lanes per vector (a divisor of QMVI_LANES, at most 16)
 *      QMVD_XT_FLOATS   floats of the rearranged x per thread (a multiple of QMVD_NL * 32)
 *      QMVD_MBV         vectors per pass over the weights (4: the tile tables have 4 entries)
 *      QMVD_ACC_RV      rows x vectors of lane accumulators per work item
 *      QMVD_RRMAX       rows in flight at most; QMVD_RR_OF(mb, bits, dec, segs) rows in
 *                       flight for mb vectors of bits-bit codes, decoder dec, segs segments
 *      QMVD_LUT_BITS    index bits of the element value table (qmvd_lut_load below)
 *      QMVD_DEC_AFFINE4, QMVD_DEC_FP4  the decoder of affine 4-bit codes and of E2M1 codes
 *      qmvd_vf, qmvd_vi  float and int32 vectors of QMVD_NL lanes (one register or several)
 *      qmvd_mask        a set of lanes; qmvd_lut the value table in registers;
 *      qmvd_nvs         one row's nvfp4 scale codes of a block, as the tier keeps them
 *   2. includes this header;
 *   3. defines the hooks declared below, transpose_x and lane_tree, and an entry point that
 *      calls qmvd_qmv().
 */
#ifndef QMV_SIMD_DRIVER_H
#define QMV_SIMD_DRIVER_H

#include <stdalign.h>
#include <stdint.h>
#include <string.h>

#include "elements.h"
#include "qmv_tiers.h"

#if !defined(QMVD_NL) || !defined(QMVD_XT_FLOATS) || !defined(QMVD_MBV) ||                  \
    !defined(QMVD_ACC_RV) || !defined(QMVD_RRMAX) || !defined(QMVD_RR_OF) ||                     \
    !defined(QMVD_LUT_BITS) || !defined(QMVD_DEC_AFFINE4) || !defined(QMVD_DEC_FP4)
#error "qmv_simd_driver.h: define the tier's shape first (see the header comment)"
#endif
#if QMVD_MBV != 4 || QMVD_NL > 16 || QMVI_LANES % QMVD_NL != 0 || QMVD_RRMAX > 8
#error "qmv_simd_driver.h: unsupported tier shape"
#endif

#define QMVD_BLK (QMVD_NL * QMVI_CHUNK) /* elements per block */
#define QMVD_LUT_N (1 << QMVD_LUT_BITS)  /* entries of the value table */
#define QMVD_INLINE static inline __attribute__((always_inline))

/* The decoders of element codes (w_elem): a table lookup of the code's low QMVD_LUT_BITS
 * bits; E2M1 as a table of the 8 magnitudes plus the sign bit; the integer code converted to
 * float (affine); the E4M3 bit build for blocks without NaN codes and with them. A tier
 * implements the ones its QMVD_DEC_* and the tables below name. */
#define QMVD_DEC_LUT 0
#define QMVD_DEC_E2M1 1
#define QMVD_DEC_INT 2
#define QMVD_DEC_E4M3 3
#define QMVD_DEC_E4M3_NAN 4

#if QMVD_DEC_AFFINE4 == QMVD_DEC_LUT && QMVD_LUT_BITS < 4
#error "qmv_simd_driver.h: a table decoder of 4-bit codes needs QMVD_LUT_BITS >= 4"
#endif

/* ---- the hooks: per-ISA primitives the tier file defines after including this header ---- */

/* Vectors: zero, an aligned load of QMVD_NL floats, fma(a, b, c) = a * b + c rounded once. */
static inline qmvd_vf qmvd_fzero(void);
static inline qmvd_vf qmvd_fload(const float *p);
static inline qmvd_vf qmvd_fma(qmvd_vf a, qmvd_vf b, qmvd_vf c);

/* The element value table (QMVD_LUT_N floats, value of code c at c) in registers. */
static inline qmvd_lut qmvd_lut_load(const float *lut);

/* A prefetch of the cache line at p for reading. */
static inline void qmvd_prefetch(const void *p);

/* dst[0 .. bits * QMVD_NL) = src[0 .. words), then zeros: a partial block, padded. */
static inline void qmvd_pad(uint32_t *dst, const uint32_t *src, int words, int bits);

/* Weights of a block of bits * QMVD_NL words (chunk p at words bits*p ..): W[q] = W_{4h+q},
 * q = 0..3, of a 4-bit (h = 0) or 8-bit (h = 0, 1) block; and W_d of any width. Lane L of W_d
 * holds dword d of the chunk the tier keeps in lane L for this width. */
static inline void qmvd_w_quad(const uint32_t *blk, int bits, int h, qmvd_vi *W);
static inline qmvd_vi qmvd_w_dword(const uint32_t *blk, int bits, int d);

/* Value of element i (0..31) of every lane's chunk, decoder dec, from W_{d0} (and W_{d1} when
 * the code straddles two words). */
static inline qmvd_vf qmvd_w_elem(int dec, int bits, int i, qmvd_vi w0, qmvd_vi w1,
                                  qmvd_lut lut);

/* 1 when a full 8-bit block holds an E4M3 NaN code (7 low bits set). */
static inline int qmvd_e4m3_nan_in(const uint32_t *blk);

/* The lanes whose chunk is below n (0..QMVD_NL) in the lane order of `bits`. */
static inline qmvd_mask qmvd_lanes_below(int bits, int n);

/* Scales of each lane's chunk for a block of len_blk elements whose first group is element
 * i0 of the scales (or biases) array at p: affine (stored floats, group size gs); mxfp (E8M0,
 * one per chunk, `count` of them); nvfp4 (E4M3, two per chunk, `count` of them): the block's
 * codes once per block as the tier keeps them (qmvd_nv_load; it sets *nan when a code may be
 * NaN, which selects the NaN-aware decode, and leaves it alone otherwise), then the scale of
 * segment s (0, 1) of each chunk from them. */
static inline qmvd_vf qmvd_affine_lanes(qmv_dtype dt, const void *p, int64_t i0, int len_blk,
                                        int gs, int bits);
static inline qmvd_vf qmvd_mx_scales(const uint8_t *p, int count, int bits);
static inline qmvd_nvs qmvd_nv_load(const uint8_t *p, int count, int bits, int *nan);
static inline qmvd_vf qmvd_nv_scale(qmvd_nvs nv, int s, int nan);

/* Lanes lm of the accumulators at a: a = fma(P, s, a), then, when xs is not NULL (affine),
 * a = fma(X, t, a) with X the chunk sums at xs; the other lanes keep their value. */
static inline void qmvd_acc_update(float *a, qmvd_vf P, qmvd_vf s, const float *xs, qmvd_vf t,
                                   qmvd_mask lm);

/* xt[blk][i][lane(p)] = x[k0 + blk*QMVD_BLK + p*32 + i] for one vector over [k0, k0+len);
 * zero beyond len. lane(p) is the lane the tier's `bits`-bit kernels keep chunk p of a block
 * in. For affine also the chunk sums X = ((+0 + x_0) + x_1) + ... in increasing i, in the same
 * lanes. */
static void transpose_x(qmv_dtype dt, const void *x, int64_t k0, int len, float *xt, float *xs,
                        int bits);
/* The canonical tree over 128 lanes, w = 64 .. 1: acc[i] + acc[i + w] for i < w, where the
 * accumulators of each group of QMVD_NL lanes are stored in the lane order of `bits`. */
static float lane_tree(const float *acc, int bits);

/* ---- the tile kernel -------------------------------------------------------------------- */

/* Makes the weight words element i (0..31) reads ready in W[r] for rows r < rr, when it is
 * the first element in increasing i to read them: W_{4h} .. W_{4h+3} at once for 4- and 8-bit
 * codes, else W_d where d = the last word of element i. Straight-line code once i and bits are
 * constants (no loop to peel), so W stays in registers. */
QMVD_INLINE void qmvd_w_ready(qmvd_vi (*W)[9], const uint32_t *const *blk, int rr, int bits,
                              int i)
{
    if (bits == 4 || bits == 8) {
        if (i * bits % 128 == 0)
            for (int r = 0; r < rr; r++)
                qmvd_w_quad(blk[r], bits, i * bits / 128, &W[r][4 * (i * bits / 128)]);
        return;
    }
    const int d1 = (i * bits + bits - 1) >> 5;
    if (i == 0 || d1 != (i * bits - 1) >> 5)
        for (int r = 0; r < rr; r++)
            W[r][d1] = qmvd_w_dword(blk[r], bits, d1);
}

/* Per-thread workspace. */
typedef struct {
    alignas(64) float xt[QMVD_XT_FLOATS];              /* [vector][block][i][lane] */
    alignas(64) float xs[QMVD_XT_FLOATS / QMVI_CHUNK]; /* affine: [vector][chunk] sums of x */
    alignas(64) float acc[(QMVD_ACC_RV + QMVD_RRMAX) * QMVI_LANES];
    alignas(64) uint32_t wpad[QMVD_RRMAX][8 * QMVD_NL]; /* a partial block, zero-padded */
    int64_t have_b, have_j0, have_k0; /* what xt holds (have_b < 0: nothing) */
} qmvd_ws;

/* One tile of K for RR rows and MB vectors. */
typedef struct {
    const uint32_t *row[QMVD_RRMAX];  /* packed words at the tile start */
    const uint32_t *next[QMVD_RRMAX]; /* the next rows' words at the tile start (prefetch only) */
    int64_t sc[QMVD_RRMAX];           /* scale element index of the tile's first group */
    int64_t k0;
    int len;
    int tk;          /* floats per vector in xt */
    const float *xt; /* the tile's x, vector j at xt + j * tk */
    const float *xs; /* the tile's chunk sums, vector j at xs + j * tk / 32 */
    float *acc[QMVD_RRMAX];
    uint32_t (*wpad)[8 * QMVD_NL];
    const qmv_qmatrix *w;
    const float *lut; /* QMVD_LUT_N element values by code (low QMVD_LUT_BITS bits) */
} qmvd_tile;

/* Prefetch for row r of a tile at block bi of nblk: the row's words, scales and biases three
 * blocks ahead (one cache line per 16 words) and, near the end of the tile, the next rows'
 * first blocks, so that their streams start warm. The x86 hook prefetches into L2: at M = 1
 * on AVX-512 that was 10-15 % faster than into L1 (8-bit codes most), and two or four blocks
 * ahead no better (docs/perf-log.md). */
QMVD_INLINE void qmvd_w_prefetch(const qmvd_tile *t, int r, int bi, int nblk, int bits)
{
    const int ahead = bi + 3;
    if (ahead >= 2 * nblk)
        return;
    if (ahead < nblk) {
        /* the row's scales (and biases) are streams of their own: one line per block ahead
         * (a line holds the groups of 1 to 4 blocks) */
        const qmv_qmatrix *w = t->w;
        const size_t ssz = w->format.mode == QMV_MODE_AFFINE ? qmv_dtype_size(w->scale_dtype) : 1;
        const size_t so = (size_t)(t->sc[r] + (int64_t)ahead * QMVD_BLK / w->format.group_size) * ssz;
        qmvd_prefetch((const char *)w->scales + so);
        if (w->biases)
            qmvd_prefetch((const char *)w->biases + so);
    }
    const uint32_t *pf = ahead < nblk ? t->row[r] : t->next[r];
    pf += (size_t)(ahead < nblk ? ahead : ahead - nblk) * QMVD_NL * (size_t)bits;
#pragma GCC unroll 8
    for (int q = 0; q < bits * QMVD_NL / 16; q++)
        qmvd_prefetch(pf + 16 * q);
}

/* The tile t for `bits`-bit codes, decoder dec0, mb vectors, rr rows, segs scale segments
 * per chunk; every argument but t is a compile-time constant in each instance (the tables
 * below). */
QMVD_INLINE void qmvd_tile_kernel(const qmvd_tile *t, const int bits, const int dec0,
                                  const int mb, const int rr, const int segs)
{
    const qmv_qmatrix *w = t->w;
    const int gs = w->format.group_size;
    const qmv_mode mode = w->format.mode;
    const int affine = mode == QMV_MODE_AFFINE;
    /* nvfp4 is the one mode with two scale segments per chunk; testing segs (a constant) and
     * not the mode leaves its scale code out of the other formats' kernels */
    const int nvfp4 = segs == 2;
    const qmvd_lut lut = qmvd_lut_load(t->lut);
    const int nblk = (t->len + QMVD_BLK - 1) / QMVD_BLK;
    for (int bi = 0; bi < nblk; bi++) {
        const int len_blk = t->len - bi * QMVD_BLK < QMVD_BLK ? t->len - bi * QMVD_BLK : QMVD_BLK;
        const int nc_any = (len_blk + QMVI_CHUNK - 1) / QMVI_CHUNK;
        const int nc_full = len_blk / QMVI_CHUNK;
        const int64_t c0 = t->k0 / QMVI_CHUNK + (int64_t)bi * QMVD_NL;
        const int accv = (int)(c0 % QMVI_LANES);
        const float *xb = t->xt + (size_t)bi * QMVD_BLK;
        /* the first group of the block in the scales of row r: t->sc[r] + goff */
        const int64_t goff = (c0 * QMVI_CHUNK - t->k0 / gs * gs) / gs;

        const uint32_t *blk[QMVD_RRMAX];
        /* unrolled, so that the prefetches are straight-line code (QMVD_RRMAX <= 8) */
#pragma GCC unroll 8
        for (int r = 0; r < rr; r++) {
            blk[r] = t->row[r] + (size_t)bi * QMVD_NL * bits;
            qmvd_w_prefetch(t, r, bi, nblk, bits);
            if (len_blk < QMVD_BLK) { /* the last block of the row: zero-pad what lies beyond K */
                qmvd_pad(t->wpad[r], blk[r], len_blk * bits / 32, bits);
                blk[r] = t->wpad[r];
            }
        }
        int dec = dec0;
        if (dec0 == QMVD_DEC_E4M3) {
            for (int r = 0; r < rr; r++)
                if (qmvd_e4m3_nan_in(blk[r]))
                    dec = QMVD_DEC_E4M3_NAN;
        }

        qmvd_vi W[QMVD_RRMAX][9];
        /* nvfp4: the two E4M3 scales of each chunk (groups 2c, 2c+1), once per block; NaN
         * codes (never produced by quantization) take the slow decode */
        qmvd_nvs nvs[QMVD_RRMAX];
        int nv_nan = 0;
        if (nvfp4) {
            for (int r = 0; r < rr; r++)
                nvs[r] = qmvd_nv_load((const uint8_t *)w->scales + t->sc[r] + goff,
                                      (len_blk + 15) / 16, bits, &nv_nan);
        }
#pragma GCC unroll 2
        for (int s = 0; s < segs; s++) {
            const int i0 = s * (QMVI_CHUNK / segs), i1 = i0 + QMVI_CHUNK / segs;
            qmvd_vf P[QMVD_RRMAX][QMVD_MBV];
            for (int r = 0; r < rr; r++)
                for (int j = 0; j < mb; j++)
                    P[r][j] = qmvd_fzero();
#pragma GCC unroll 32
            for (int i = i0; i < i1; i++) {
                const int d0 = (i * bits) >> 5, d1 = (i * bits + bits - 1) >> 5;
                qmvd_w_ready(W, blk, rr, bits, i);
                qmvd_vf xv[QMVD_MBV];
                for (int j = 0; j < mb; j++)
                    xv[j] = qmvd_fload(xb + (size_t)j * t->tk + i * QMVD_NL);
                for (int r = 0; r < rr; r++) {
                    const qmvd_vf v =
                        dec == QMVD_DEC_E4M3_NAN
                            ? qmvd_w_elem(QMVD_DEC_E4M3_NAN, bits, i, W[r][d0], W[r][d1], lut)
                            : qmvd_w_elem(dec0, bits, i, W[r][d0], W[r][d1], lut);
                    for (int j = 0; j < mb; j++)
                        P[r][j] = qmvd_fma(xv[j], v, P[r][j]);
                }
            }
            /* the lanes this segment exists in: a half chunk (nvfp4, K % 32 = 16) has no
             * second segment */
            const qmvd_mask lm = qmvd_lanes_below(bits, s == 0 ? nc_any : nc_full);
            for (int r = 0; r < rr; r++) {
                const int64_t gi = t->sc[r] + goff;
                qmvd_vf sv, tv = qmvd_fzero();
                if (affine) {
                    sv = qmvd_affine_lanes(w->scale_dtype, w->scales, gi, len_blk, gs, bits);
                    tv = qmvd_affine_lanes(w->scale_dtype, w->biases, gi, len_blk, gs, bits);
                } else if (nvfp4) {
                    sv = qmvd_nv_scale(nvs[r], s, nv_nan);
                } else {
                    sv = qmvd_mx_scales((const uint8_t *)w->scales + gi, nc_any, bits);
                }
                for (int j = 0; j < mb; j++) {
                    /* the chunk sums: a NULL pointer, not a flag, says "no bias term" (a
                     * pointer computed for every mode cost GCC registers in the FMA loop) */
                    const float *X = affine ? t->xs + (size_t)j * (t->tk / QMVI_CHUNK) +
                                                  (size_t)bi * QMVD_NL
                                            : NULL;
                    qmvd_acc_update(t->acc[r] + (size_t)j * QMVI_LANES + accv, P[r][j], sv, X,
                                    tv, lm);
                }
            }
        }
    }
}

/* A tile kernel for one format and one vector count. A format's table holds QMVD_MBV of them,
 * entry mb - 1 for mb vectors, with the rows in flight each was compiled for. */
typedef void (*qmvd_tile_fn)(const qmvd_tile *t);
typedef struct {
    qmvd_tile_fn fn[QMVD_MBV];
    int rr[QMVD_MBV];
} qmvd_tiles;

/* The table `name` of tile kernels for `bits`-bit codes, decoder `dec`, `segs` scale
 * segments (kept one line per entry, out of clang-format's reach). */
/* clang-format off */
#define QMVD_RR(mb, bits, dec, segs) QMVD_RR_OF(mb, bits, dec, segs)
#define QMVD_DEF_TILE(name, bits, dec, segs)                                                        \
    static void name##_1(const qmvd_tile *t) { qmvd_tile_kernel(t, bits, dec, 1, QMVD_RR(1, bits, dec, segs), segs); } \
    static void name##_2(const qmvd_tile *t) { qmvd_tile_kernel(t, bits, dec, 2, QMVD_RR(2, bits, dec, segs), segs); } \
    static void name##_3(const qmvd_tile *t) { qmvd_tile_kernel(t, bits, dec, 3, QMVD_RR(3, bits, dec, segs), segs); } \
    static void name##_4(const qmvd_tile *t) { qmvd_tile_kernel(t, bits, dec, 4, QMVD_RR(4, bits, dec, segs), segs); } \
    static const qmvd_tiles name = {{name##_1, name##_2, name##_3, name##_4},                     \
                                    {QMVD_RR(1, bits, dec, segs), QMVD_RR(2, bits, dec, segs),    \
                                     QMVD_RR(3, bits, dec, segs), QMVD_RR(4, bits, dec, segs)}};
/* clang-format on */

QMVD_DEF_TILE(qmvd_t_lut1, 1, QMVD_DEC_LUT, 1)
QMVD_DEF_TILE(qmvd_t_lut2, 2, QMVD_DEC_LUT, 1)
QMVD_DEF_TILE(qmvd_t_lut3, 3, QMVD_DEC_LUT, 1)
QMVD_DEF_TILE(qmvd_t_aff4, 4, QMVD_DEC_AFFINE4, 1)
#if QMVD_DEC_FP4 != QMVD_DEC_AFFINE4
QMVD_DEF_TILE(qmvd_t_fp4, 4, QMVD_DEC_FP4, 1)
#else
#define qmvd_t_fp4 qmvd_t_aff4 /* one decoder serves both: one table */
#endif
QMVD_DEF_TILE(qmvd_t_nv4, 4, QMVD_DEC_FP4, 2)
QMVD_DEF_TILE(qmvd_t_int5, 5, QMVD_DEC_INT, 1)
QMVD_DEF_TILE(qmvd_t_int6, 6, QMVD_DEC_INT, 1)
QMVD_DEF_TILE(qmvd_t_int8, 8, QMVD_DEC_INT, 1)
QMVD_DEF_TILE(qmvd_t_e4m3, 8, QMVD_DEC_E4M3, 1)

static const qmvd_tiles *qmvd_pick_tiles(const qmv_format *f)
{
    switch (f->mode) {
    case QMV_MODE_MXFP4:
        return &qmvd_t_fp4;
    case QMV_MODE_NVFP4:
        return &qmvd_t_nv4;
    case QMV_MODE_MXFP8:
        return &qmvd_t_e4m3;
    default:
        break;
    }
    switch (f->bits) {
    case 1:
        return &qmvd_t_lut1;
    case 2:
        return &qmvd_t_lut2;
    case 3:
        return &qmvd_t_lut3;
    case 4:
        return &qmvd_t_aff4;
    case 5:
        return &qmvd_t_int5;
    case 6:
        return &qmvd_t_int6;
    default:
        return &qmvd_t_int8;
    }
}

/* ---- the call ------------------------------------------------------------------------- */

typedef struct {
    const qmvi_qmv_call *call;
    const qmvd_tiles *tiles;
    float lut[QMVD_LUT_N];
    int64_t njb, rb, nrb;
} qmvd_plan;

/* Rows [n0, n0+nr) of batch item b, vectors [j0, j0+mb). */
static void run_item(const qmvd_plan *pl, qmvd_ws *ws, int64_t b, int64_t j0, int mb, int64_t n0,
                     int nr)
{
    const qmv_qmatrix *w = pl->call->w;
    const qmv_vectors *v = pl->call->v;
    const int bits = w->format.bits, gs = w->format.group_size;
    const int rr = pl->tiles->rr[mb - 1];
    const int affine = w->format.mode == QMV_MODE_AFFINE;
    const int tk = QMVD_XT_FLOATS / mb / QMVD_BLK * QMVD_BLK;
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
            pl->tiles->fn[mb - 1](&t);
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
    pl.tiles = qmvd_pick_tiles(&w->format);
    /* QMVD_LUT_N entries: the value of each code of up to QMVD_LUT_BITS bits; of wider codes
     * the value of the low QMVD_LUT_BITS bits (E2M1 with 3: the magnitudes, QMVD_DEC_E2M1
     * applies the sign bit apart) */
    const int lbits = w->format.bits <= QMVD_LUT_BITS ? w->format.bits : QMVD_LUT_BITS;
    for (unsigned c = 0; c < QMVD_LUT_N; c++)
        pl.lut[c] = qmvi_elem_value(call->t->elem, c & ((1u << lbits) - 1u));
    pl.njb = (v->m + QMVD_MBV - 1) / QMVD_MBV;
    /* rows per item: as many as the accumulators hold, fewer when that would leave a thread
     * idle (at least 2 items per thread for N >= 16 rows per thread) */
    const int mb0 = v->m < QMVD_MBV ? (int)v->m : QMVD_MBV;
    const int rr0 = pl.tiles->rr[mb0 - 1];
    int64_t rb = QMVD_ACC_RV / mb0 / rr0 * rr0;
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
            const int64_t j0 = jb * QMVD_MBV;
            const int mb = (int)(v->m - j0 < QMVD_MBV ? v->m - j0 : QMVD_MBV);
            const int nr = (int)(w->rows - n0 < pl.rb ? w->rows - n0 : pl.rb);
            run_item(&pl, &ws, b, j0, mb, n0, nr);
        }
    }
}

#endif /* QMV_SIMD_DRIVER_H */
