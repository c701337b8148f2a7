/*
 * qmv_avx2.c - the AVX2 + FMA tier of qmv_qmv(): 8 lanes of the canonical order per register
 * (docs/ORDER.md), bit-identical to qmv_ref.c. The tile kernel, the plan and the work split
 * are qmv_simd_driver.h's; this file holds its AVX2 hooks. Blocks are 8 chunks (256 elements).
 * W_d (word bits*p + d of the block) comes from in-lane 4x4 transposes for 4- and 8-bit codes
 * (qmv_x86.h; 4-bit ones leave the chunks in a fixed permuted lane order, see chunk_of_lane)
 * or from a gather for the other widths (AVX2 has no two-source permute), E2M1 values from an
 * 8-entry vpermps table plus the sign bit, affine codes of 4 to 8 bits by int -> float
 * conversion, E4M3 by an exact bit build. AVX2 has no mask registers: partial blocks are
 * zero-padded copies and the accumulator update of lanes beyond K is discarded by a blend.
 */
#include "x86_kernels.h"

#if defined(QMVI_HAVE_AVX2) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#include <stdalign.h>
#include <string.h>

#include "elements.h"

#define QMVD_NL 8            /* lanes per register */
#define QMVD_XT_FLOATS 16384 /* rearranged x: a whole row of K <= 16384 for one vector */
#define QMVD_MBV 4           /* vectors per pass over the weights */
#define QMVD_ACC_RV 64       /* rows x vectors of lane accumulators per work item */
#define QMVD_RRMAX 4         /* rows in flight */
/* rows in flight for mb vectors: 2 from 2 vectors on (8 FMA chains cover 2 FMA pipes of
 * latency 4), but 1 for E4M3 codes and nvfp4 at 4 vectors, whose decode constants and second
 * scale segment leave too few of the 16 registers */
#define QMVD_RR_OF(mb, bits, dec, segs)                                                            \
    ((mb) == 1 ? 4 : (mb) == 4 && ((dec) == QMVD_DEC_E4M3 || (segs) == 2) ? 1 : 2)
#define QMVD_LUT_BITS 3      /* vpermps ymm: 8-entry value table */
#define QMVD_DEC_AFFINE4 QMVD_DEC_INT
#define QMVD_DEC_FP4 QMVD_DEC_E2M1
typedef __m256 qmvd_vf;
typedef __m256i qmvd_vi;
typedef __m256 qmvd_mask; /* all ones in the lanes of the set */
typedef __m256 qmvd_lut;
typedef struct {          /* nvfp4 scale codes of a block: loaded per segment */
    const uint8_t *p;
    int count;
} qmvd_nvs;

#include "qmv_simd_driver.h"

/* For qmvd_w_quad (qmv_x86.h): 8 words of a block, and the 128-bit lane h of `lo` and of `hi`
 * (words 4h .. 4h+3 of the chunk each register holds, 8-bit codes). */
static inline __m256i wreg_load(const uint32_t *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}
static inline __attribute__((always_inline)) __m256i wreg_pair(__m256i lo, __m256i hi, int h)
{
    /* (the immediate must be a literal for clang) */
    return h ? _mm256_permute2x128_si256(lo, hi, 0x31) : _mm256_permute2x128_si256(lo, hi, 0x20);
}

#define QMVX_VPREFIX _mm256
#include "qmv_x86.h"

/* ---- lane order ------------------------------------------------------------------------ */

/* The chunk of a block that register lane L = 4g + q (128-bit lane g, dword q) holds in the
 * `bits`-bit kernels: the in-lane transposes of qmvd_w_quad leave chunk 2q + g there for 4-bit
 * codes; 8-bit codes (and every other width) keep chunk L in lane L. */
static inline __m256i chunk_of_lane(int bits)
{
    if (bits == 4)
        return _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
}

/* The inverse: the lane of chunk c. */
static inline int lane_of_chunk(int bits, int c)
{
    return bits == 4 ? 4 * (c & 1) + (c >> 1) : c;
}

/* ---- weights ---------------------------------------------------------------------------- */

/* W_d: lane p = word bits*p + d of the block. */
QMVD_INLINE qmvd_vi qmvd_w_dword(const uint32_t *blk, int bits, int d)
{
    const __m256i idx = _mm256_add_epi32(
        _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(bits)),
        _mm256_set1_epi32(d));
    return _mm256_i32gather_epi32((const int *)blk, idx, 4);
}

QMVD_INLINE qmvd_vf qmvd_w_elem(int dec, int bits, int i, qmvd_vi w0, qmvd_vi w1, qmvd_lut lut)
{
    const int sh = (i * bits) & 31;
    __m256i c = sh ? _mm256_srli_epi32(w0, sh) : w0;
    if (sh + bits > 32)
        c = _mm256_or_si256(c, _mm256_slli_epi32(w1, 32 - sh));
    if (dec == QMVD_DEC_LUT)
        return _mm256_permutevar8x32_ps(lut, c); /* lut[k] = value of code k & (2^bits - 1) */
    if (dec == QMVD_DEC_E2M1) { /* magnitude from bits 2..0, sign from bit 3 */
        const __m256 mag = _mm256_permutevar8x32_ps(lut, c);
        const __m256i sign = _mm256_and_si256(_mm256_slli_epi32(c, 28),
                                              _mm256_set1_epi32((int)0x80000000u));
        return _mm256_or_ps(mag, _mm256_castsi256_ps(sign));
    }
    if (dec == QMVD_DEC_INT) {
        if (bits == 8) { /* zero-extend byte sh/8 of each word in one in-lane byte shuffle */
            const int b = sh / 8;
            const __m256i ctl =
                _mm256_add_epi32(_mm256_set1_epi32((int)(0x80808000u | (unsigned)b)),
                                 _mm256_setr_epi32(0, 4, 8, 12, 0, 4, 8, 12));
            return _mm256_cvtepi32_ps(_mm256_shuffle_epi8(w0, ctl));
        }
        if (sh + bits != 32)
            c = _mm256_and_si256(c, _mm256_set1_epi32((1 << bits) - 1));
        return _mm256_cvtepi32_ps(c);
    }
    /* E4M3FN, as in qmv_avx512.c: sign to bit 31, magnitude bits to 26..20, times 2^120 */
    __m256i t = sh == 24 ? w0 : _mm256_slli_epi32(w0, 24 - sh);
    t = _mm256_and_si256(_mm256_srai_epi32(t, 4), _mm256_set1_epi32((int)0x87F00000u));
    __m256 v = _mm256_mul_ps(_mm256_castsi256_ps(t), _mm256_set1_ps(0x1p120f));
    if (dec == QMVD_DEC_E4M3_NAN) {
        const __m256i nan = _mm256_cmpeq_epi32(
            _mm256_and_si256(t, _mm256_set1_epi32(0x07F00000)), _mm256_set1_epi32(0x07F00000));
        v = _mm256_blendv_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7FC00000)),
                             _mm256_castsi256_ps(nan));
    }
    return v;
}

static inline int qmvd_e4m3_nan_in(const uint32_t *blk)
{
    const __m256i m7 = _mm256_set1_epi8(0x7F);
    __m256i any = _mm256_setzero_si256();
    for (int k = 0; k < 8; k++)
        any = _mm256_or_si256(any, _mm256_cmpeq_epi8(_mm256_and_si256(
                                                         _mm256_loadu_si256((const __m256i *)(blk + 8 * k)), m7),
                                                     m7));
    return !_mm256_testz_si256(any, any);
}

/* ---- scales ------------------------------------------------------------------------------ */

static inline __m256 e8m0_vec(__m256i u)
{
    __m256i b = _mm256_slli_epi32(u, 23);
    b = _mm256_blendv_epi8(b, _mm256_set1_epi32(0x00400000),
                           _mm256_cmpeq_epi32(u, _mm256_setzero_si256()));
    b = _mm256_blendv_epi8(b, _mm256_set1_epi32(0x7FC00000),
                           _mm256_cmpeq_epi32(u, _mm256_set1_epi32(255)));
    return _mm256_castsi256_ps(b);
}

static inline __m256 e4m3_vec(__m256i u)
{
    __m256i t = _mm256_and_si256(_mm256_srai_epi32(_mm256_slli_epi32(u, 24), 4),
                                 _mm256_set1_epi32((int)0x87F00000u));
    __m256 v = _mm256_mul_ps(_mm256_castsi256_ps(t), _mm256_set1_ps(0x1p120f));
    const __m256i nan = _mm256_cmpeq_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7F)),
                                           _mm256_set1_epi32(0x7F));
    return _mm256_blendv_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7FC00000)),
                            _mm256_castsi256_ps(nan));
}

/* `count` bytes from p, zero-padded to 16 (never reads past p + count). */
static inline __m128i load_bytes(const void *p, int count)
{
    if (count == 16)
        return _mm_loadu_si128((const __m128i *)p);
    if (count == 8)
        return _mm_loadl_epi64((const __m128i *)p);
    alignas(16) unsigned char b[16] = {0};
    memcpy(b, p, (size_t)count);
    return _mm_load_si128((const __m128i *)b);
}

/* Affine scale or bias of each lane's chunk c: group (c0 + c) * 32 / gs. */
static inline qmvd_vf qmvd_affine_lanes(qmv_dtype dt, const void *p, int64_t i0, int len_blk,
                                        int gs, int bits)
{
    const int count = (len_blk + gs - 1) / gs; /* 1..8 groups */
    __m256 g;
    if (dt == QMV_DTYPE_F32) {
        const __m128i lo = load_bytes((const float *)p + i0, 4 * (count < 4 ? count : 4));
        const __m128i hi = count > 4 ? load_bytes((const float *)p + i0 + 4, 4 * (count - 4))
                                     : _mm_setzero_si128();
        g = _mm256_castsi256_ps(_mm256_set_m128i(hi, lo));
    } else {
        const __m128i h = load_bytes((const uint16_t *)p + i0, 2 * count);
        g = dt == QMV_DTYPE_F16
                ? _mm256_cvtph_ps(h)
                : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    if (gs == 32 && bits != 4)
        return g;
    const __m256i idx = _mm256_srli_epi32(chunk_of_lane(bits), gs == 32 ? 0 : gs == 64 ? 1 : 2);
    return _mm256_permutevar8x32_ps(g, idx);
}

/* Byte c of the E8M0 scales -> the lane of chunk c. */
QMVD_INLINE qmvd_vf qmvd_mx_scales(const uint8_t *p, int count, int bits)
{
    __m128i raw = load_bytes(p, count);
    if (bits == 4)
        raw = _mm_shuffle_epi8(raw,
                               _mm_setr_epi8(0, 2, 4, 6, 1, 3, 5, 7, -1, -1, -1, -1, -1, -1, -1, -1));
    return e8m0_vec(_mm256_cvtepu8_epi32(raw));
}

/* Where the codes are: they are read per segment (one byte shuffle picks the segment's code
 * of each lane), and the decode is always the NaN-aware one, so *nan is not needed. */
QMVD_INLINE qmvd_nvs qmvd_nv_load(const uint8_t *p, int count, int bits, int *nan)
{
    (void)bits;
    (void)nan;
    return (qmvd_nvs){p, count};
}

QMVD_INLINE qmvd_vf qmvd_nv_scale(qmvd_nvs nv, int s, int nan)
{
    (void)nan;
    const __m128i raw = load_bytes(nv.p, nv.count);
    /* segment s of the lane of chunk c: group 2c + s (bits is 4) */
    const __m128i sel = _mm_shuffle_epi8(
        raw, _mm_setr_epi8((char)s, (char)(4 + s), (char)(8 + s), (char)(12 + s), (char)(2 + s),
                           (char)(6 + s), (char)(10 + s), (char)(14 + s), -1, -1, -1, -1, -1, -1,
                           -1, -1));
    return e4m3_vec(_mm256_cvtepu8_epi32(sel));
}

/* ---- padding and accumulators ------------------------------------------------------------ */

QMVD_INLINE void qmvd_pad(uint32_t *dst, const uint32_t *src, int words, int bits)
{
    (void)bits;
    memset(dst, 0, 8 * QMVD_NL * sizeof *dst);
    memcpy(dst, src, (size_t)words * 4);
}

static inline qmvd_mask qmvd_lanes_below(int bits, int n)
{
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n), chunk_of_lane(bits)));
}

/* The update of every lane, then a blend: the lanes outside lm keep their value. */
QMVD_INLINE void qmvd_acc_update(float *a, qmvd_vf P, qmvd_vf s, const float *xs, qmvd_vf t,
                                 qmvd_mask lm)
{
    const __m256 a0 = _mm256_loadu_ps(a);
    __m256 av = _mm256_fmadd_ps(P, s, a0);
    if (xs)
        av = _mm256_fmadd_ps(_mm256_load_ps(xs), t, av);
    _mm256_storeu_ps(a, _mm256_blendv_ps(a0, av, lm));
}

/* ---- x in lane layout ------------------------------------------------------------------ */

/* xt[blk][i][lane_of_chunk(p)] = x[k0 + blk*256 + p*32 + i] for one vector over [k0, k0+len);
 * zero beyond len. For affine also the chunk sums X = ((+0 + x_0) + x_1) + ... in increasing
 * i. */
static void transpose_x(qmv_dtype dt, const void *x, int64_t k0, int len, float *xt, float *xs,
                        int bits)
{
    const int nblk = (len + QMVD_BLK - 1) / QMVD_BLK;
    const size_t es = qmv_dtype_size(dt);
    for (int bi = 0; bi < nblk; bi++) {
        float *o = xt + (size_t)bi * QMVD_BLK;
        for (int p = 0; p < QMVD_NL; p++) {
            const int off = bi * QMVD_BLK + p * QMVI_CHUNK;
            const int n = len - off < 0 ? 0 : len - off < 32 ? len - off : 32;
            alignas(32) unsigned char raw[32 * 4] = {0};
            if (n > 0)
                memcpy(raw, (const char *)x + (size_t)(k0 + off) * es, (size_t)n * es);
            alignas(32) float f[32];
            for (int q = 0; q < 4; q++) {
                __m256 v;
                if (dt == QMV_DTYPE_F32)
                    v = _mm256_load_ps((const float *)raw + 8 * q);
                else if (dt == QMV_DTYPE_F16)
                    v = _mm256_cvtph_ps(_mm_load_si128((const __m128i *)raw + q));
                else
                    v = _mm256_castsi256_ps(_mm256_slli_epi32(
                        _mm256_cvtepu16_epi32(_mm_load_si128((const __m128i *)raw + q)), 16));
                _mm256_store_ps(f + 8 * q, v);
            }
            const int l = lane_of_chunk(bits, p);
            for (int i = 0; i < QMVI_CHUNK; i++)
                o[i * QMVD_NL + l] = f[i];
        }
        if (xs) {
            __m256 X = _mm256_setzero_ps();
            for (int i = 0; i < QMVI_CHUNK; i++)
                X = _mm256_add_ps(X, _mm256_load_ps(o + i * QMVD_NL));
            _mm256_store_ps(xs + (size_t)bi * QMVD_NL, X);
        }
    }
}

/* ---- reduction ------------------------------------------------------------------------ */

/* The canonical tree over 128 lanes, w = 64 .. 1: acc[i] + acc[i + w] for i < w. */
static float lane_tree(const float *acc, int bits)
{
    __m256 a[16];
    for (int q = 0; q < 16; q++)
        a[q] = _mm256_loadu_ps(acc + 8 * q);
    for (int w = 8; w >= 1; w /= 2) /* w = 64, 32, 16, 8 lanes */
        for (int q = 0; q < w; q++)
            a[q] = _mm256_add_ps(a[q], a[q + w]);
    if (bits == 4) /* lane c <- the lane of chunk c (every group of 8 lanes is stored alike) */
        a[0] = _mm256_permutevar8x32_ps(a[0], _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(a[0]), _mm256_extractf128_ps(a[0], 1)); /* 4 */
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));                                                /* 2 */
    q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));                                            /* 1 */
    return _mm_cvtss_f32(q);
}

/* ---- the call ------------------------------------------------------------------------- */

void qmvi_qmv_avx2(const qmvi_qmv_call *call)
{
    qmvd_qmv(call);
}

#else
/* Built without the AVX2 flags: the tier is absent and qmv_cpu_tiers_supported() says so. */
typedef int qmvi_avx2_not_built;
#endif
