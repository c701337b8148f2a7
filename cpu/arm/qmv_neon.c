/*
 * qmv_neon.c - the NEON tier of qmv_qmv() (AArch64 Advanced SIMD): 4 lanes of the canonical
 * order per register (docs/ORDER.md), bit-identical to qmv_ref.c. The tile kernel, the plan and
 * the work split are qmv_simd_driver.h's; this file holds its NEON hooks. A block is 4 chunks
 * (128 elements) and register lane p holds chunk p of the block for every code width (no
 * permuted lane order): W_d (word bits*p + d of the block) comes from a 4x4 transpose of the
 * chunks' words for 4- and 8-bit codes (TRN1/TRN2) and from four lane loads for the other
 * widths; element i is a shift of W_d and a 16-entry value table lookup (TBL over four
 * registers: E2M1 values or affine codes of up to 4 bits), an integer -> float conversion
 * (affine 5-8 bits) or the exact E4M3 bit build (mxfp8). Partial blocks are zero-padded
 * copies and the accumulator update of lanes beyond K is discarded by a bitwise select.
 *
 * Exactness on AArch64: FMLA (vfmaq_f32) is the fused multiply-add the canonical order names,
 * FADD / FMUL are the IEEE operations, UCVTF of integers below 2^24 is exact; all follow FPCR,
 * which Linux and macOS start with round-to-nearest and without flush-to-zero, the environment
 * the scalar reference assumes as well.
 */
#include "arm_kernels.h"

#if defined(QMVI_NEON)
#include <arm_neon.h>
#include <stdalign.h>
#include <string.h>

#include "elements.h"

#define QMVD_NL 4            /* lanes per register */
#define QMVD_XT_FLOATS 16384 /* rearranged x: a whole row of K <= 16384 for one vector */
#define QMVD_MBV 4           /* vectors per pass over the weights */
#define QMVD_ACC_RV 64       /* rows x vectors of lane accumulators per work item */
#define QMVD_RRMAX 4         /* rows in flight */
#define QMVD_RR_OF(mb, bits, dec, segs) ((mb) <= 2 ? 4 : 2) /* rows in flight for mb vectors (32 registers) */
#define QMVD_LUT_BITS 4      /* TBL over four registers: 16-entry value table */
#define QMVD_DEC_AFFINE4 QMVD_DEC_LUT
#define QMVD_DEC_FP4 QMVD_DEC_LUT
typedef float32x4_t qmvd_vf;
typedef uint32x4_t qmvd_vi;
typedef uint32x4_t qmvd_mask; /* all ones in the lanes of the set */
typedef uint8x16x4_t qmvd_lut; /* the 16 floats as 64 table bytes */
typedef struct {               /* nvfp4: the decoded scales of segments 0 and 1 of each chunk */
    float32x4_t s0, s1;
} qmvd_nvs;

#include "qmv_simd_driver.h"

/* ---- vectors ------------------------------------------------------------------------------ */

QMVD_INLINE qmvd_vf qmvd_fzero(void)
{
    return vdupq_n_f32(0.0f);
}

QMVD_INLINE qmvd_vf qmvd_fload(const float *p)
{
    return vld1q_f32(p);
}

QMVD_INLINE qmvd_vf qmvd_fma(qmvd_vf a, qmvd_vf b, qmvd_vf c)
{
    return vfmaq_f32(c, a, b); /* c + a * b, rounded once */
}

QMVD_INLINE qmvd_lut qmvd_lut_load(const float *lut)
{
    const uint8_t *b = (const uint8_t *)lut;
    qmvd_lut t;
    t.val[0] = vld1q_u8(b);
    t.val[1] = vld1q_u8(b + 16);
    t.val[2] = vld1q_u8(b + 32);
    t.val[3] = vld1q_u8(b + 48);
    return t;
}

QMVD_INLINE void qmvd_prefetch(const void *p)
{
    __builtin_prefetch(p, 0, 3);
}

/* ---- weights ------------------------------------------------------------------------------ */

/* 4x4 transpose of dwords: o[j] lane q = a[q] lane j. */
QMVD_INLINE void qmvn_transpose4(const uint32x4_t a[4], uint32x4_t o[4])
{
    const uint64x2_t t0 = vreinterpretq_u64_u32(vtrn1q_u32(a[0], a[1]));
    const uint64x2_t t1 = vreinterpretq_u64_u32(vtrn2q_u32(a[0], a[1]));
    const uint64x2_t t2 = vreinterpretq_u64_u32(vtrn1q_u32(a[2], a[3]));
    const uint64x2_t t3 = vreinterpretq_u64_u32(vtrn2q_u32(a[2], a[3]));
    o[0] = vreinterpretq_u32_u64(vtrn1q_u64(t0, t2));
    o[1] = vreinterpretq_u32_u64(vtrn1q_u64(t1, t3));
    o[2] = vreinterpretq_u32_u64(vtrn2q_u64(t0, t2));
    o[3] = vreinterpretq_u32_u64(vtrn2q_u64(t1, t3));
}

/* W_{4h} .. W_{4h+3}: the words 4h .. 4h+3 of each chunk (at bits * p + 4h), transposed. */
QMVD_INLINE void qmvd_w_quad(const uint32_t *blk, int bits, int h, qmvd_vi *W)
{
    uint32x4_t a[4];
    for (int p = 0; p < 4; p++)
        a[p] = vld1q_u32(blk + bits * p + 4 * h);
    qmvn_transpose4(a, W);
}

QMVD_INLINE qmvd_vi qmvd_w_dword(const uint32_t *blk, int bits, int d)
{
    uint32x4_t v = vdupq_n_u32(blk[d]);
    v = vsetq_lane_u32(blk[bits + d], v, 1);
    v = vsetq_lane_u32(blk[2 * bits + d], v, 2);
    return vsetq_lane_u32(blk[3 * bits + d], v, 3);
}

QMVD_INLINE qmvd_vf qmvd_w_elem(int dec, int bits, int i, qmvd_vi w0, qmvd_vi w1, qmvd_lut lut)
{
    const int sh = (i * bits) & 31;
    /* USHL by a negative count shifts right; the counts are constants once i and bits are */
    uint32x4_t c = sh ? vshlq_u32(w0, vdupq_n_s32(-sh)) : w0;
    if (sh + bits > 32)
        c = vorrq_u32(c, vshlq_u32(w1, vdupq_n_s32(32 - sh)));
    if (dec == QMVD_DEC_LUT) {
        /* table bytes 4k .. 4k+3 hold the value of code k (its low 4 bits) */
        const uint32x4_t k4 = vshlq_n_u32(vandq_u32(c, vdupq_n_u32(15)), 2);
        const uint32x4_t idx = vmlaq_n_u32(vdupq_n_u32(0x03020100u), k4, 0x01010101u);
        return vreinterpretq_f32_u8(vqtbl4q_u8(lut, vreinterpretq_u8_u32(idx)));
    }
    if (dec == QMVD_DEC_INT) {
        if (sh + bits != 32)
            c = vandq_u32(c, vdupq_n_u32((1u << bits) - 1u));
        return vcvtq_f32_u32(c);
    }
    /* E4M3FN as on x86 (cpu/x86/qmv_avx512.c): the byte to bits 31..24, an arithmetic shift
     * by 4 and a mask leave the sign at 31 and the 7 magnitude bits at 26..20, the value
     * times 2^-120 as a float (subnormals included); one exact multiplication by 2^120. */
    int32x4_t t = vreinterpretq_s32_u32(sh == 24 ? w0 : vshlq_u32(w0, vdupq_n_s32(24 - sh)));
    t = vandq_s32(vshrq_n_s32(t, 4), vdupq_n_s32((int32_t)0x87F00000u));
    float32x4_t v = vmulq_f32(vreinterpretq_f32_s32(t), vdupq_n_f32(0x1p120f));
    if (dec == QMVD_DEC_E4M3_NAN) {
        const uint32x4_t nan =
            vceqq_s32(vandq_s32(t, vdupq_n_s32(0x07F00000)), vdupq_n_s32(0x07F00000));
        v = vbslq_f32(nan, vreinterpretq_f32_u32(vdupq_n_u32(0x7FC00000u)), v);
    }
    return v;
}

static inline int qmvd_e4m3_nan_in(const uint32_t *blk)
{
    const uint8x16_t m7 = vdupq_n_u8(0x7F);
    uint8x16_t any = vdupq_n_u8(0);
    for (int k = 0; k < 8; k++)
        any = vorrq_u8(any, vceqq_u8(vandq_u8(vld1q_u8((const uint8_t *)(blk + 4 * k)), m7), m7));
    return vmaxvq_u8(any) != 0;
}

/* ---- lanes, scales, padding, accumulators ------------------------------------------------- */

static inline qmvd_mask qmvd_lanes_below(int bits, int n)
{
    (void)bits; /* lane p holds chunk p for every width */
    static const uint32_t lane[4] = {0, 1, 2, 3};
    return vcltq_u32(vld1q_u32(lane), vdupq_n_u32((uint32_t)n));
}

/* Affine scale or bias of each lane's chunk c: group (c0 + c) * 32 / gs; lanes of chunks
 * beyond the block's elements read nothing (their groups may lie beyond the array). */
static inline qmvd_vf qmvd_affine_lanes(qmv_dtype dt, const void *p, int64_t i0, int len_blk,
                                        int gs, int bits)
{
    (void)bits;
    if (len_blk == QMVD_BLK && dt == QMV_DTYPE_F32) {
        const float *f = (const float *)p + i0;
        if (gs == 32)
            return vld1q_f32(f);
        if (gs == 64)
            return vcombine_f32(vdup_n_f32(f[0]), vdup_n_f32(f[1]));
        return vdupq_n_f32(f[0]);
    }
    alignas(16) float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int c = 0; c < 4 && c * QMVI_CHUNK < len_blk; c++)
        v[c] = qmvi_load(dt, p, i0 + c * QMVI_CHUNK / gs); /* exact for every dtype */
    return vld1q_f32(v);
}

QMVD_INLINE qmvd_vf qmvd_mx_scales(const uint8_t *p, int count, int bits)
{
    (void)bits;
    alignas(16) float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int c = 0; c < count; c++)
        v[c] = qmvi_e8m0_to_f32(p[c]);
    return vld1q_f32(v);
}

/* Both segments' scales decoded once per block: groups 2c and 2c + 1 of chunk c. */
QMVD_INLINE qmvd_nvs qmvd_nv_load(const uint8_t *p, int count, int bits, int *nan)
{
    (void)bits;
    (void)nan; /* the decode below gives NaN codes their value: no separate path */
    alignas(16) float s[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
    for (int g = 0; g < count; g++)
        s[g & 1][g >> 1] = qmvi_e4m3_to_f32(p[g]);
    return (qmvd_nvs){vld1q_f32(s[0]), vld1q_f32(s[1])};
}

QMVD_INLINE qmvd_vf qmvd_nv_scale(qmvd_nvs nv, int s, int nan)
{
    (void)nan;
    return s ? nv.s1 : nv.s0;
}

QMVD_INLINE void qmvd_pad(uint32_t *dst, const uint32_t *src, int words, int bits)
{
    (void)bits;
    memset(dst, 0, 8 * QMVD_NL * sizeof *dst);
    memcpy(dst, src, (size_t)words * 4);
}

/* The update of every lane, then a select: the lanes outside lm keep their value. */
QMVD_INLINE void qmvd_acc_update(float *a, qmvd_vf P, qmvd_vf s, const float *xs, qmvd_vf t,
                                 qmvd_mask lm)
{
    const float32x4_t a0 = vld1q_f32(a);
    float32x4_t av = vfmaq_f32(a0, P, s);
    if (xs)
        av = vfmaq_f32(av, vld1q_f32(xs), t);
    vst1q_f32(a, vbslq_f32(lm, av, a0));
}

/* ---- x in lane layout ---------------------------------------------------------------------- */

/* Four elements of x from element k as exact floats. */
static inline float32x4_t load_x4(qmv_dtype dt, const void *x, int64_t k)
{
    if (dt == QMV_DTYPE_F32)
        return vld1q_f32((const float *)x + k);
    const uint16x4_t h = vld1_u16((const uint16_t *)x + k);
    if (dt == QMV_DTYPE_F16)
        return vcvt_f32_f16(vreinterpret_f16_u16(h)); /* FCVTL: exact */
    return vreinterpretq_f32_u32(vshll_n_u16(h, 16));
}

/* xt[blk][i][p] = x[k0 + blk*128 + p*32 + i] for one vector over [k0, k0+len); zero beyond
 * len. Full blocks by 4x4 transposes, the last partial block element by element. For affine
 * also the chunk sums X = ((+0 + x_0) + x_1) + ... in increasing i. */
static void transpose_x(qmv_dtype dt, const void *x, int64_t k0, int len, float *xt, float *xs,
                        int bits)
{
    (void)bits;
    const int nblk = (len + QMVD_BLK - 1) / QMVD_BLK;
    for (int bi = 0; bi < nblk; bi++) {
        float *o = xt + (size_t)bi * QMVD_BLK;
        const int off = bi * QMVD_BLK;
        if (len - off >= QMVD_BLK) {
            for (int i = 0; i < QMVI_CHUNK; i += 4) {
                uint32x4_t a[4], r[4];
                for (int p = 0; p < 4; p++)
                    a[p] = vreinterpretq_u32_f32(load_x4(dt, x, k0 + off + p * QMVI_CHUNK + i));
                qmvn_transpose4(a, r);
                for (int j = 0; j < 4; j++)
                    vst1q_f32(o + (size_t)(i + j) * QMVD_NL, vreinterpretq_f32_u32(r[j]));
            }
        } else {
            for (int p = 0; p < QMVD_NL; p++)
                for (int i = 0; i < QMVI_CHUNK; i++) {
                    const int k = off + p * QMVI_CHUNK + i;
                    o[i * QMVD_NL + p] = k < len ? qmvi_load(dt, x, k0 + k) : 0.0f;
                }
        }
        if (xs) {
            float32x4_t X = vdupq_n_f32(0.0f);
            for (int i = 0; i < QMVI_CHUNK; i++)
                X = vaddq_f32(X, vld1q_f32(o + i * QMVD_NL));
            vst1q_f32(xs + (size_t)bi * QMVD_NL, X);
        }
    }
}

/* ---- reduction ------------------------------------------------------------------------------ */

/* The canonical tree over 128 lanes, w = 64 .. 1: acc[i] + acc[i + w] for i < w. Vector q
 * holds lanes 4q .. 4q+3, so for w = 64 .. 4 vector q < w/4 adds vector q + w/4: exactly the
 * tree's additions; w = 2 and 1 are the lanes of vector 0. */
static float lane_tree(const float *acc, int bits)
{
    (void)bits;
    float32x4_t a[QMVI_LANES / 4];
    for (int q = 0; q < QMVI_LANES / 4; q++)
        a[q] = vld1q_f32(acc + 4 * q);
    for (int w = QMVI_LANES / 8; w >= 1; w /= 2)
        for (int q = 0; q < w; q++)
            a[q] = vaddq_f32(a[q], a[q + w]);
    const float r0 = vgetq_lane_f32(a[0], 0) + vgetq_lane_f32(a[0], 2); /* w = 2 */
    const float r1 = vgetq_lane_f32(a[0], 1) + vgetq_lane_f32(a[0], 3);
    return r0 + r1; /* w = 1 */
}

/* ---- the call ------------------------------------------------------------------------- */

void qmvi_qmv_neon(const qmvi_qmv_call *call)
{
    qmvd_qmv(call);
}

#else
/* Not an AArch64 build: the tier is absent and qmv_cpu_tiers_supported() says so. */
typedef int qmvi_qmv_neon_not_built;
#endif
