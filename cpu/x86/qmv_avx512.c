/*
 * qmv_avx512.c - the AVX-512 tier of qmv_qmv(): 16 lanes of the canonical order per
 * register (docs/ORDER.md), bit-identical to qmv_ref.c. The tile kernel, the plan and the
 * work split are qmv_simd_driver.h's; this file holds its AVX-512 hooks. Blocks are 16 chunks
 * (512 elements). W_d (word bits*p + d of the block) comes from in-lane 4x4 transposes for 4-
 * and 8-bit codes (qmv_x86.h; they leave the chunks in a fixed permuted lane order, see
 * chunk_of_lane) and from two-source permutes for other widths; element i is a shift of W_d
 * and a table lookup (vpermps: E2M1 values or affine codes of up to 4 bits), a byte shuffle
 * and an int -> float conversion (affine 5-8 bits) or an exact E4M3 bit build (mxfp8). Scales
 * and biases are decoded 16 groups at a time, partial blocks are padded by masked loads, and
 * each lane's accumulator update is one masked FMA.
 */
#include "x86_kernels.h"

#if defined(QMVI_HAVE_AVX512) && defined(__AVX512F__) && defined(__AVX512BW__) &&             \
    defined(__AVX512VL__)
#include <immintrin.h>
#include <stdalign.h>
#include <string.h>

#include "elements.h"

#define QMVD_NL 16          /* lanes per register */
#define QMVD_XT_FLOATS 16384 /* rearranged x: a whole row of K <= 16384 for one vector */
#define QMVD_MBV 4           /* vectors per pass over the weights */
#define QMVD_ACC_RV 128      /* rows x vectors of lane accumulators per work item (M = 4: 32
                              * rows share one rearranged x tile; 66 KB of stack) */
#define QMVD_RRMAX 4         /* rows in flight */
/* rows in flight for mb vectors: 4 rows of 4-bit codes keep 16 FMA chains and 16 words of
 * weights in the 32 registers at 4 vectors; 8-bit codes (twice the words) spill there */
#define QMVD_RR_OF(mb, bits, dec, segs) ((mb) <= 2 || (bits) <= 4 ? 4 : 2)
#define QMVD_LUT_BITS 4      /* vpermps zmm: 16-entry value table */
#define QMVD_DEC_AFFINE4 QMVD_DEC_LUT
#define QMVD_DEC_FP4 QMVD_DEC_LUT
typedef __m512 qmvd_vf;
typedef __m512i qmvd_vi;
typedef __mmask16 qmvd_mask;
typedef __m512 qmvd_lut;
typedef __m512i qmvd_nvs; /* each lane: the chunk's two scale codes as a 16-bit pair */

#include "qmv_simd_driver.h"

/* For qmvd_w_quad (qmv_x86.h): 16 words of a block, and the 128-bit lanes 2h, 2h+1 of `lo` and of
 * `hi` (words 4h .. 4h+3 of the two chunks of each register, 8-bit codes). */
static inline __m512i wreg_load(const uint32_t *p)
{
    return _mm512_loadu_si512(p);
}
static inline __attribute__((always_inline)) __m512i wreg_pair(__m512i lo, __m512i hi, int h)
{
    /* (the immediate must be a literal for clang) */
    return h ? _mm512_shuffle_i32x4(lo, hi, 0xDD) : _mm512_shuffle_i32x4(lo, hi, 0x88);
}

#define QMVX_VPREFIX _mm512
#include "qmv_x86.h"

/* ---- lane order ------------------------------------------------------------------------ */

/* The chunk of a block that register lane L = 4g + q (128-bit lane g, dword q) holds in the
 * `bits`-bit kernels: the in-lane transposes of qmvd_w_quad leave chunk 4q + g there for 4-bit
 * codes and chunk 8(g/2) + 2q + g%2 for 8-bit codes; other widths keep chunk L in lane L. */
static inline __m512i chunk_of_lane(int bits)
{
    if (bits == 4)
        return _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    if (bits == 8)
        return _mm512_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15);
    return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

/* The inverse: the lane of chunk c. */
static inline int lane_of_chunk(int bits, int c)
{
    if (bits == 4)
        return 4 * (c & 3) + (c >> 2);
    if (bits == 8)
        return 4 * ((c >> 3) << 1 | (c & 1)) + ((c >> 1) & 3);
    return c;
}

static inline qmvd_mask qmvd_lanes_below(int bits, int n)
{
    return n >= QMVD_NL ? (__mmask16)0xFFFF
                        : _mm512_cmplt_epi32_mask(chunk_of_lane(bits), _mm512_set1_epi32(n));
}

/* ---- weights ---------------------------------------------------------------------------- */

/* W_d of a block of `bits` x 16 words: lane p = word bits*p + d. Word g lives in register
 * g / 16; pairs of registers are permuted together (vpermt2d uses the index modulo 32) and
 * merged by lane masks. All indices are compile-time constants once bits and d are. */
QMVD_INLINE qmvd_vi qmvd_w_dword(const uint32_t *blk, int bits, int d)
{
    const __m512i idx = _mm512_add_epi32(
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm512_set1_epi32(bits)),
        _mm512_set1_epi32(d));
    const __m512i pair = _mm512_srli_epi32(idx, 5);
    __m512i out = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int k = 0; 2 * k < bits; k++) {
        const __mmask16 m = _mm512_cmpeq_epi32_mask(pair, _mm512_set1_epi32(k));
        const __m512i lo = _mm512_loadu_si512(blk + 32 * k);
        const __m512i hi = 2 * k + 1 < bits ? _mm512_loadu_si512(blk + 32 * k + 16) : lo;
        out = _mm512_mask_mov_epi32(out, m, _mm512_permutex2var_epi32(lo, idx, hi));
    }
    return out;
}

QMVD_INLINE qmvd_vf qmvd_w_elem(int dec, int bits, int i, qmvd_vi w0, qmvd_vi w1, qmvd_lut lut)
{
    const int sh = (i * bits) & 31;
    __m512i c = sh ? _mm512_srli_epi32(w0, (unsigned)sh) : w0;
    if (sh + bits > 32)
        c = _mm512_or_si512(c, _mm512_slli_epi32(w1, (unsigned)(32 - sh)));
    if (dec == QMVD_DEC_LUT)
        return _mm512_permutexvar_ps(c, lut); /* lut[k] = value of code k & (2^bits - 1) */
    if (dec == QMVD_DEC_INT) {
        if (bits == 8) { /* zero-extend byte sh/8 of each word in one in-lane byte shuffle */
            const int b = sh / 8;
            const __m512i ctl = _mm512_add_epi32(
                _mm512_set1_epi32((int)(0x80808000u | (unsigned)b)),
                _mm512_setr_epi32(0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12));
            return _mm512_cvtepi32_ps(_mm512_shuffle_epi8(w0, ctl));
        }
        if (sh + bits != 32)
            c = _mm512_and_si512(c, _mm512_set1_epi32((1 << bits) - 1));
        return _mm512_cvtepi32_ps(c);
    }
    /* E4M3FN: move the byte to bits 31..24, an arithmetic shift by 4 puts the sign in bit 31
     * (and copies it into 30..27, cleared by the mask) and the 7 magnitude bits at 26..20.
     * As a float that is the E4M3 value times 2^-120 (E4M3 subnormals land on float32
     * subnormals), so one exact multiplication by 2^120 gives the value. */
    __m512i t = sh == 24 ? w0 : _mm512_slli_epi32(w0, (unsigned)(24 - sh));
    t = _mm512_and_si512(_mm512_srai_epi32(t, 4), _mm512_set1_epi32((int)0x87F00000u));
    __m512 v = _mm512_mul_ps(_mm512_castsi512_ps(t), _mm512_set1_ps(0x1p120f));
    if (dec == QMVD_DEC_E4M3_NAN) {
        const __mmask16 nan = _mm512_cmpeq_epi32_mask(
            _mm512_and_si512(t, _mm512_set1_epi32(0x07F00000)), _mm512_set1_epi32(0x07F00000));
        v = _mm512_mask_mov_ps(v, nan, _mm512_castsi512_ps(_mm512_set1_epi32(0x7FC00000)));
    }
    return v;
}

static inline int qmvd_e4m3_nan_in(const uint32_t *blk)
{
    __mmask64 any = 0;
    const __m512i m7 = _mm512_set1_epi8(0x7F);
    for (int k = 0; k < 8; k++)
        any |= _mm512_cmpeq_epi8_mask(_mm512_and_si512(_mm512_loadu_si512(blk + 16 * k), m7), m7);
    return any != 0;
}

/* ---- scales ------------------------------------------------------------------------------ */

static inline __m512 e8m0_vec(__m512i u)
{
    __m512i b = _mm512_slli_epi32(u, 23);
    b = _mm512_mask_mov_epi32(b, _mm512_cmpeq_epi32_mask(u, _mm512_setzero_si512()),
                              _mm512_set1_epi32(0x00400000)); /* 2^-127 */
    b = _mm512_mask_mov_epi32(b, _mm512_cmpeq_epi32_mask(u, _mm512_set1_epi32(255)),
                              _mm512_set1_epi32(0x7FC00000));
    return _mm512_castsi512_ps(b);
}

static inline __m512 e4m3_vec(__m512i u) /* u: one code per lane */
{
    __m512i t = _mm512_and_si512(_mm512_srai_epi32(_mm512_slli_epi32(u, 24), 4),
                                 _mm512_set1_epi32((int)0x87F00000u));
    __m512 v = _mm512_mul_ps(_mm512_castsi512_ps(t), _mm512_set1_ps(0x1p120f));
    const __mmask16 nan =
        _mm512_cmpeq_epi32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7F)), _mm512_set1_epi32(0x7F));
    return _mm512_mask_mov_ps(v, nan, _mm512_castsi512_ps(_mm512_set1_epi32(0x7FC00000)));
}

/* e4m3_vec for codes that are not NaN; only the low byte of each lane is read. */
static inline __m512 e4m3_vec_finite(__m512i u)
{
    const __m512i t = _mm512_and_si512(_mm512_srai_epi32(_mm512_slli_epi32(u, 24), 4),
                                       _mm512_set1_epi32((int)0x87F00000u));
    return _mm512_mul_ps(_mm512_castsi512_ps(t), _mm512_set1_ps(0x1p120f));
}

/* `count` (1..16) stored floats (affine scales or biases) at element index i0 of p. */
static inline __m512 load_float_groups(qmv_dtype dt, const void *p, int64_t i0, int count)
{
    const __mmask16 m = (__mmask16)((1u << count) - 1u);
    if (dt == QMV_DTYPE_F32)
        return _mm512_maskz_loadu_ps(m, (const float *)p + i0);
    const __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i0);
    if (dt == QMV_DTYPE_F16)
        return _mm512_cvtph_ps(h); /* exact */
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* Affine scale or bias of each lane's chunk c: group (c0 + c) * 32 / gs. */
static inline qmvd_vf qmvd_affine_lanes(qmv_dtype dt, const void *p, int64_t i0, int len_blk,
                                      int gs, int bits)
{
    const int count = (len_blk + gs - 1) / gs;
    const __m512 g = load_float_groups(dt, p, i0, count);
    if (gs == 32 && bits != 4 && bits != 8)
        return g;
    const __m512i idx = _mm512_srli_epi32(chunk_of_lane(bits), gs == 32 ? 0 : gs == 64 ? 1 : 2);
    return _mm512_permutexvar_ps(idx, g);
}

/* Byte c of the E8M0 scales -> the lane of chunk c. */
QMVD_INLINE qmvd_vf qmvd_mx_scales(const uint8_t *p, int count, int bits)
{
    __m128i raw = _mm_maskz_loadu_epi8((__mmask16)((1u << count) - 1u), p);
    if (bits == 4 || bits == 8)
        raw = _mm_shuffle_epi8(raw, _mm512_cvtepi32_epi8(chunk_of_lane(bits)));
    return e8m0_vec(_mm512_cvtepu8_epi32(raw));
}

/* The two E4M3 codes of each lane's chunk as a 16-bit pair in the lane, one masked load; *nan
 * is set when one of them is NaN. */
QMVD_INLINE qmvd_nvs qmvd_nv_load(const uint8_t *p, int count, int bits, int *nan)
{
    const __mmask32 cm = count >= 32 ? 0xFFFFFFFFu : (__mmask32)((1u << count) - 1u);
    const __m256i m7 = _mm256_set1_epi8(0x7F);
    const __m256i raw = _mm256_maskz_loadu_epi8(cm, p);
    *nan |= _mm256_mask_cmpeq_epi8_mask(cm, _mm256_and_si256(raw, m7), m7) != 0;
    return _mm512_permutexvar_epi32(chunk_of_lane(bits), _mm512_cvtepu16_epi32(raw));
}

/* The code of segment s sits in byte s of the lane's pair. */
QMVD_INLINE qmvd_vf qmvd_nv_scale(qmvd_nvs nv, int s, int nan)
{
    const __m512i u = s ? _mm512_srli_epi32(nv, 8) : nv;
    return nan ? e4m3_vec(_mm512_and_si512(u, _mm512_set1_epi32(0xFF))) : e4m3_vec_finite(u);
}

/* ---- padding and accumulators ------------------------------------------------------------ */

QMVD_INLINE void qmvd_pad(uint32_t *dst, const uint32_t *src, int words, int bits)
{
    for (int q = 0; q < bits; q++) {
        const int n = words - 16 * q;
        const __mmask16 m = n >= 16 ? 0xFFFF : n > 0 ? (__mmask16)((1u << n) - 1u) : 0;
        _mm512_store_si512(dst + 16 * q, _mm512_maskz_loadu_epi32(m, src + 16 * q));
    }
}

/* One masked FMA per term: the lanes outside lm are never written. */
QMVD_INLINE void qmvd_acc_update(float *a, qmvd_vf P, qmvd_vf s, const float *xs, qmvd_vf t,
                                 qmvd_mask lm)
{
    __m512 av = _mm512_loadu_ps(a);
    av = _mm512_mask3_fmadd_ps(P, s, av, lm);
    if (xs)
        av = _mm512_mask3_fmadd_ps(_mm512_load_ps(xs), t, av, lm);
    _mm512_storeu_ps(a, av);
}

/* ---- x in lane layout ------------------------------------------------------------------ */

/* 32 elements of x from element k (fewer when n < 32; the rest zero) as float. */
static inline void load_x32(qmv_dtype dt, const void *x, int64_t k, int n, __m512 *lo, __m512 *hi)
{
    const __mmask16 m0 = n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1u);
    const __mmask16 m1 = n >= 32 ? 0xFFFF : n > 16 ? (__mmask16)((1u << (n - 16)) - 1u) : 0;
    if (dt == QMV_DTYPE_F32) {
        *lo = _mm512_maskz_loadu_ps(m0, (const float *)x + k);
        *hi = _mm512_maskz_loadu_ps(m1, (const float *)x + k + 16);
        return;
    }
    const __m256i h0 = _mm256_maskz_loadu_epi16(m0, (const uint16_t *)x + k);
    const __m256i h1 = _mm256_maskz_loadu_epi16(m1, (const uint16_t *)x + k + 16);
    if (dt == QMV_DTYPE_F16) {
        *lo = _mm512_cvtph_ps(h0);
        *hi = _mm512_cvtph_ps(h1);
    } else {
        *lo = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h0), 16));
        *hi = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h1), 16));
    }
}

/* 4x4 transpose of 128-bit lanes: o[g] lane a = t[a] lane g. */
static inline __attribute__((always_inline)) void transpose_lanes4(const __m512 t[4], __m512 o[4])
{
    const __m512 u0 = _mm512_shuffle_f32x4(t[0], t[1], 0x44), u1 = _mm512_shuffle_f32x4(t[0], t[1], 0xEE);
    const __m512 u2 = _mm512_shuffle_f32x4(t[2], t[3], 0x44), u3 = _mm512_shuffle_f32x4(t[2], t[3], 0xEE);
    o[0] = _mm512_shuffle_f32x4(u0, u2, 0x88);
    o[1] = _mm512_shuffle_f32x4(u0, u2, 0xDD);
    o[2] = _mm512_shuffle_f32x4(u1, u3, 0x88);
    o[3] = _mm512_shuffle_f32x4(u1, u3, 0xDD);
}

/* xt[blk][i][lane] = x[k0 + blk*512 + c*32 + i] with c = chunk_of_lane(bits) of the lane,
 * for one vector over [k0, k0+len); zero beyond len. A 16 x 16 transpose per half chunk in
 * registers: in-lane 4x4 transposes of the chunks of each destination 128-bit lane, then a
 * 4x4 transpose of 128-bit lanes. For affine also the chunk sums
 * X = ((+0 + x_0) + x_1) + ... in increasing i. */
static void transpose_x(qmv_dtype dt, const void *x, int64_t k0, int len, float *xt, float *xs,
                        int bits)
{
    alignas(64) int32_t cl[QMVD_NL];
    _mm512_store_si512(cl, chunk_of_lane(bits));
    const int nblk = (len + QMVD_BLK - 1) / QMVD_BLK;
    for (int bi = 0; bi < nblk; bi++) {
        float *o = xt + (size_t)bi * QMVD_BLK;
        __m512 h[2][QMVD_NL]; /* [half][lane]: elements 16*half .. +15 of the lane's chunk */
        for (int l = 0; l < QMVD_NL; l++) {
            const int off = bi * QMVD_BLK + cl[l] * QMVI_CHUNK;
            const int n = len - off;
            h[0][l] = h[1][l] = _mm512_setzero_ps();
            if (n > 0)
                load_x32(dt, x, k0 + off, n, &h[0][l], &h[1][l]);
        }
        for (int hf = 0; hf < 2; hf++) {
            __m512 t[4][4]; /* [dest 128-bit lane G][j]: lane g dword q = element 4g+j of lane 4G+q */
            for (int G = 0; G < 4; G++) {
                __m512i a[4], r[4];
                for (int q = 0; q < 4; q++)
                    a[q] = _mm512_castps_si512(h[hf][4 * G + q]);
                qmvx_transpose4(a, r);
                for (int j = 0; j < 4; j++)
                    t[G][j] = _mm512_castsi512_ps(r[j]);
            }
            for (int j = 0; j < 4; j++) {
                const __m512 tj[4] = {t[0][j], t[1][j], t[2][j], t[3][j]};
                __m512 oj[4]; /* oj[g] = element 16*hf + 4g + j of every lane */
                transpose_lanes4(tj, oj);
                for (int g = 0; g < 4; g++)
                    _mm512_store_ps(o + (size_t)(16 * hf + 4 * g + j) * QMVD_NL, oj[g]);
            }
        }
        if (xs) {
            __m512 X = _mm512_setzero_ps();
            for (int i = 0; i < QMVI_CHUNK; i++)
                X = _mm512_add_ps(X, _mm512_load_ps(o + i * QMVD_NL));
            _mm512_store_ps(xs + (size_t)bi * QMVD_NL, X);
        }
    }
}

/* ---- reduction ------------------------------------------------------------------------ */

/* The canonical tree over 128 lanes, w = 64 .. 1: acc[i] + acc[i + w] for i < w. Each vector
 * addition below does exactly those additions for the lanes that matter. Every group of 16
 * lanes is stored in the lane order of `bits`, the same for all groups, so the steps
 * w = 64 .. 16 pair the right lanes; the canonical order is restored before w = 8. */
static float lane_tree(const float *acc, int bits)
{
    __m512 a[8];
    for (int q = 0; q < 8; q++)
        a[q] = _mm512_loadu_ps(acc + 16 * q);
    for (int q = 0; q < 4; q++)
        a[q] = _mm512_add_ps(a[q], a[q + 4]); /* w = 64 */
    a[0] = _mm512_add_ps(a[0], a[2]);         /* w = 32 */
    a[1] = _mm512_add_ps(a[1], a[3]);
    a[0] = _mm512_add_ps(a[0], a[1]); /* w = 16 */
    if (bits == 4 || bits == 8) {      /* lane c <- the lane of chunk c */
        alignas(64) int32_t inv[QMVD_NL];
        for (int c = 0; c < QMVD_NL; c++)
            inv[c] = lane_of_chunk(bits, c);
        a[0] = _mm512_permutexvar_ps(_mm512_load_si512(inv), a[0]);
    }
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(a[0]),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a[0]), 1)));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)); /* w = 4 */
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));                                         /* w = 2 */
    q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));                                     /* w = 1 */
    return _mm_cvtss_f32(q);
}

/* ---- the call ------------------------------------------------------------------------- */

void qmvi_qmv_avx512(const qmvi_qmv_call *call)
{
    qmvd_qmv(call);
}

#else
/* Built without the AVX-512 flags: the tier is absent and qmv_cpu_tiers_supported() says so. */
typedef int qmvi_avx512_not_built;
#endif
