/*
 * quant_vec_neon.h - the vector primitives of the quantize / dequantize tiers on AArch64
 * Advanced SIMD (NEON): 8 float32 lanes as a pair of 128-bit registers (lo: lanes 0-3, hi:
 * lanes 4-7), masks as all-ones lanes. The same interface as cpu/x86/quant_vec_avx512.h (read
 * its header comment); included only by quantize_neon.c and dequantize_neon.c. Eight lanes,
 * not four: the ISA-neutral bodies pack the codes of 8 lanes into one 64-bit word and keep up
 * to 8 groups' scalars in one vector (QV_NL >= 8).
 *
 * Exactness on AArch64: FDIV, FMUL, FADD, FSUB are the correctly rounded IEEE operations of
 * the scalar code (the project compiles with -ffp-contract=off, so no FMLA is formed);
 * FRINTN / FRINTZ are rintf / truncf; FCVTL / FCVTN are the exact fp16 widening and the
 * round-to-nearest-even narrowing. All of them follow FPCR, which Linux and macOS start with
 * round-to-nearest and without flush-to-zero or default-NaN, the environment the scalar code
 * assumes as well.
 */
#ifndef QMV_CPU_QUANT_VEC_NEON_H
#define QMV_CPU_QUANT_VEC_NEON_H

#include <arm_neon.h>
#include <stdint.h>
#include <string.h>

#include "qmv.h"

#define QV_NL 8 /* lanes */

typedef struct {
    float32x4_t lo, hi;
} qv_f;
typedef struct {
    int32x4_t lo, hi;
} qv_i;
typedef struct {
    uint32x4_t lo, hi; /* lanes of all ones or all zeros */
} qv_m;

#define QV_INLINE static inline __attribute__((always_inline))

QV_INLINE qv_f qv_set1(float f)
{
    const float32x4_t v = vdupq_n_f32(f);
    return (qv_f){v, v};
}
QV_INLINE qv_i qv_iset1(int v)
{
    const int32x4_t x = vdupq_n_s32(v);
    return (qv_i){x, x};
}
QV_INLINE qv_f qv_add(qv_f a, qv_f b)
{
    return (qv_f){vaddq_f32(a.lo, b.lo), vaddq_f32(a.hi, b.hi)};
}
QV_INLINE qv_f qv_sub(qv_f a, qv_f b)
{
    return (qv_f){vsubq_f32(a.lo, b.lo), vsubq_f32(a.hi, b.hi)};
}
QV_INLINE qv_f qv_mul(qv_f a, qv_f b)
{
    return (qv_f){vmulq_f32(a.lo, b.lo), vmulq_f32(a.hi, b.hi)};
}
QV_INLINE qv_f qv_div(qv_f a, qv_f b)
{
    return (qv_f){vdivq_f32(a.lo, b.lo), vdivq_f32(a.hi, b.hi)};
}
/* FABS clears the sign bit only (NaN payloads kept), as the AVX masks do. */
QV_INLINE qv_f qv_abs(qv_f a)
{
    return (qv_f){vabsq_f32(a.lo), vabsq_f32(a.hi)};
}
QV_INLINE qv_i qv_bits(qv_f a)
{
    return (qv_i){vreinterpretq_s32_f32(a.lo), vreinterpretq_s32_f32(a.hi)};
}
QV_INLINE qv_f qv_from_bits(qv_i a)
{
    return (qv_f){vreinterpretq_f32_s32(a.lo), vreinterpretq_f32_s32(a.hi)};
}
/* Round to nearest even (FRINTN) / toward zero (FRINTZ), exact. */
QV_INLINE qv_f qv_rint(qv_f a)
{
    return (qv_f){vrndnq_f32(a.lo), vrndnq_f32(a.hi)};
}
QV_INLINE qv_f qv_trunc(qv_f a)
{
    return (qv_f){vrndq_f32(a.lo), vrndq_f32(a.hi)};
}
/* FCMGT / FCMGE are ordered: false when a lane is NaN, as C's < <= > >= are. */
QV_INLINE qv_m qv_lt(qv_f a, qv_f b)
{
    return (qv_m){vcltq_f32(a.lo, b.lo), vcltq_f32(a.hi, b.hi)};
}
QV_INLINE qv_m qv_le(qv_f a, qv_f b)
{
    return (qv_m){vcleq_f32(a.lo, b.lo), vcleq_f32(a.hi, b.hi)};
}
QV_INLINE qv_m qv_isnan(qv_f a)
{
    return (qv_m){vmvnq_u32(vceqq_f32(a.lo, a.lo)), vmvnq_u32(vceqq_f32(a.hi, a.hi))};
}
QV_INLINE qv_m qv_not(qv_m m)
{
    return (qv_m){vmvnq_u32(m.lo), vmvnq_u32(m.hi)};
}
/* Bit j set when lane j is set. */
QV_INLINE unsigned qv_mask_bits(qv_m m)
{
    static const uint32_t wlo[4] = {1, 2, 4, 8}, whi[4] = {16, 32, 64, 128};
    return vaddvq_u32(vorrq_u32(vandq_u32(m.lo, vld1q_u32(wlo)), vandq_u32(m.hi, vld1q_u32(whi))));
}
/* m ? a : b */
QV_INLINE qv_f qv_sel(qv_m m, qv_f a, qv_f b)
{
    return (qv_f){vbslq_f32(m.lo, a.lo, b.lo), vbslq_f32(m.hi, a.hi, b.hi)};
}
QV_INLINE qv_i qv_seli(qv_m m, qv_i a, qv_i b)
{
    return (qv_i){vbslq_s32(m.lo, a.lo, b.lo), vbslq_s32(m.hi, a.hi, b.hi)};
}
/* c + 1 where m is set (a set lane is -1 as an integer). */
QV_INLINE qv_i qv_inc(qv_i c, qv_m m)
{
    return (qv_i){vsubq_s32(c.lo, vreinterpretq_s32_u32(m.lo)),
                  vsubq_s32(c.hi, vreinterpretq_s32_u32(m.hi))};
}
QV_INLINE qv_i qv_and(qv_i a, qv_i b)
{
    return (qv_i){vandq_s32(a.lo, b.lo), vandq_s32(a.hi, b.hi)};
}
QV_INLINE qv_i qv_or(qv_i a, qv_i b)
{
    return (qv_i){vorrq_s32(a.lo, b.lo), vorrq_s32(a.hi, b.hi)};
}
QV_INLINE qv_i qv_iadd(qv_i a, qv_i b)
{
    return (qv_i){vaddq_s32(a.lo, b.lo), vaddq_s32(a.hi, b.hi)};
}
QV_INLINE qv_i qv_isub(qv_i a, qv_i b)
{
    return (qv_i){vsubq_s32(a.lo, b.lo), vsubq_s32(a.hi, b.hi)};
}
/* Shifts by 0 < n < 32 (the callers' constants), the right one logical: USHL by a register
 * count shifts left for positive and right for negative counts. */
QV_INLINE qv_i qv_slli(qv_i a, int n)
{
    const int32x4_t s = vdupq_n_s32(n);
    return (qv_i){vshlq_s32(a.lo, s), vshlq_s32(a.hi, s)};
}
QV_INLINE qv_i qv_srli(qv_i a, int n)
{
    const int32x4_t s = vdupq_n_s32(-n);
    return (qv_i){vreinterpretq_s32_u32(vshlq_u32(vreinterpretq_u32_s32(a.lo), s)),
                  vreinterpretq_s32_u32(vshlq_u32(vreinterpretq_u32_s32(a.hi), s))};
}
/* Signed compares, as the AVX ones. */
QV_INLINE qv_m qv_ilt(qv_i a, qv_i b)
{
    return (qv_m){vcltq_s32(a.lo, b.lo), vcltq_s32(a.hi, b.hi)};
}
QV_INLINE qv_m qv_ieq(qv_i a, qv_i b)
{
    return (qv_m){vceqq_s32(a.lo, b.lo), vceqq_s32(a.hi, b.hi)};
}
/* float -> int32 toward zero (FCVTZS; only used on integral values in range) and back, exact */
QV_INLINE qv_i qv_cvtt(qv_f a)
{
    return (qv_i){vcvtq_s32_f32(a.lo), vcvtq_s32_f32(a.hi)};
}
QV_INLINE qv_f qv_cvt(qv_i a)
{
    return (qv_f){vcvtq_f32_s32(a.lo), vcvtq_f32_s32(a.hi)};
}
/* FMAX / FMIN. They differ from the AVX instructions on NaN (propagated) and on a pair of
 * zeros (+0 is the larger); the callers pass finite values and never depend on the sign of a
 * zero maximum or minimum (quantize_simd.h). */
QV_INLINE qv_f qv_max(qv_f a, qv_f b)
{
    return (qv_f){vmaxq_f32(a.lo, b.lo), vmaxq_f32(a.hi, b.hi)};
}
QV_INLINE qv_f qv_min(qv_f a, qv_f b)
{
    return (qv_f){vminq_f32(a.lo, b.lo), vminq_f32(a.hi, b.hi)};
}
QV_INLINE float qv_hmax(qv_f a)
{
    return vmaxvq_f32(vmaxq_f32(a.lo, a.hi));
}
QV_INLINE float qv_hmin(qv_f a)
{
    return vminvq_f32(vminq_f32(a.lo, a.hi));
}
QV_INLINE void qv_storei(int32_t *p, qv_i a)
{
    vst1q_s32(p, a.lo);
    vst1q_s32(p + 4, a.hi);
}
QV_INLINE qv_i qv_loadi(const int32_t *p)
{
    return (qv_i){vld1q_s32(p), vld1q_s32(p + 4)};
}

/* Loads and stores of QV_NL elements, and fp16 rounding: FCVTL widens fp16 exactly, FCVTN
 * narrows with round to nearest even, overflow to Inf and fp16 subnormals, as F16C. */
QV_INLINE qv_f qv_load_f32(const float *p)
{
    return (qv_f){vld1q_f32(p), vld1q_f32(p + 4)};
}
QV_INLINE qv_f qv_load_f16(const uint16_t *p)
{
    const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(p));
    return (qv_f){vcvt_f32_f16(vget_low_f16(h)), vcvt_high_f32_f16(h)};
}
QV_INLINE qv_i qv_load_u16(const uint16_t *p)
{
    const uint16x8_t h = vld1q_u16(p);
    return (qv_i){vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(h))),
                  vreinterpretq_s32_u32(vmovl_high_u16(h))};
}
QV_INLINE void qv_store_f32(float *p, qv_f a)
{
    vst1q_f32(p, a.lo);
    vst1q_f32(p + 4, a.hi);
}
QV_INLINE float16x8_t qv_to_f16(qv_f a)
{
    return vcvt_high_f16_f32(vcvt_f16_f32(a.lo), a.hi);
}
QV_INLINE void qv_store_f16(uint16_t *p, qv_f a)
{
    vst1q_u16(p, vreinterpretq_u16_f16(qv_to_f16(a)));
}
/* The low 16 bits of each lane (lanes hold values below 2^16). */
QV_INLINE void qv_store_u16(uint16_t *p, qv_i a)
{
    vst1q_u16(p,
              vmovn_high_u32(vmovn_u32(vreinterpretq_u32_s32(a.lo)), vreinterpretq_u32_s32(a.hi)));
}
QV_INLINE qv_f qv_f16_round(qv_f a)
{
    const float16x8_t h = qv_to_f16(a);
    return (qv_f){vcvt_f32_f16(vget_low_f16(h)), vcvt_high_f32_f16(h)};
}

/* E2M1 code (low 4 bits) -> value: the magnitude from an 8-entry float table (TBL on its 32
 * bytes, byte indices 4 * (code & 7) + 0..3), the sign from bit 3. */
QV_INLINE float32x4_t qv_e2m1_value4(int32x4_t c, uint8x16x2_t tab)
{
    const uint32x4_t idx = vmlaq_n_u32(
        vdupq_n_u32(0x03020100u), vandq_u32(vreinterpretq_u32_s32(c), vdupq_n_u32(7)), 0x04040404u);
    const uint8x16_t mag = vqtbl2q_u8(tab, vreinterpretq_u8_u32(idx));
    const uint32x4_t sign = vshlq_n_u32(vandq_u32(vreinterpretq_u32_s32(c), vdupq_n_u32(8)), 28);
    return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_u8(mag), sign));
}
QV_INLINE qv_f qv_e2m1_value(qv_i c)
{
    static const float mag[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
    const uint8x16x2_t tab = {
        {vreinterpretq_u8_f32(vld1q_f32(mag)), vreinterpretq_u8_f32(vld1q_f32(mag + 4))}};
    return (qv_f){qv_e2m1_value4(c.lo, tab), qv_e2m1_value4(c.hi, tab)};
}

/* QV_NL = 8 codes <-> u[0] (8 * bits bits, LSB first, 1 <= bits <= 8), as quant_vec_avx2.h:
 * each 64-bit half of a register holds codes 2j (low word) and 2j + 1 (high word); the pair
 * is joined into 2 * bits bits, shifted to its place and the four pairs are ORed together. */
QV_INLINE void qv_codes_pack(qv_i c, int bits, uint64_t u[1])
{
    const uint64x2_t m = vdupq_n_u64((1ull << (2 * bits)) - 1);
    const int64x2_t down = vdupq_n_s64(-(32 - bits));
    const int64_t sl[2] = {0, 2 * bits}, sh[2] = {4 * bits, 6 * bits};
    const uint64x2_t lo = vreinterpretq_u64_s32(c.lo), hi = vreinterpretq_u64_s32(c.hi);
    const uint64x2_t plo = vandq_u64(vorrq_u64(lo, vshlq_u64(lo, down)), m);
    const uint64x2_t phi = vandq_u64(vorrq_u64(hi, vshlq_u64(hi, down)), m);
    const uint64x2_t q = vorrq_u64(vshlq_u64(plo, vld1q_s64(sl)), vshlq_u64(phi, vld1q_s64(sh)));
    u[0] = vgetq_lane_u64(q, 0) | vgetq_lane_u64(q, 1);
}

QV_INLINE qv_i qv_codes_unpack(const uint64_t u[1], int bits)
{
    const uint64x2_t x = vdupq_n_u64(u[0]);
    const int64_t sl[2] = {0, -2 * bits}, sh[2] = {-4 * bits, -6 * bits};
    const uint64x2_t m = vdupq_n_u64((1ull << bits) - 1);
    const int64x2_t up = vdupq_n_s64(32 - bits);
    const uint64x2_t ylo = vshlq_u64(x, vld1q_s64(sl)), yhi = vshlq_u64(x, vld1q_s64(sh));
    const uint64x2_t lo =
        vorrq_u64(vandq_u64(ylo, m), vandq_u64(vshlq_u64(ylo, up), vshlq_n_u64(m, 32)));
    const uint64x2_t hi =
        vorrq_u64(vandq_u64(yhi, m), vandq_u64(vshlq_u64(yhi, up), vshlq_n_u64(m, 32)));
    return (qv_i){vreinterpretq_s32_u64(lo), vreinterpretq_s32_u64(hi)};
}

#endif /* QMV_CPU_QUANT_VEC_NEON_H */
