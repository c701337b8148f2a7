/*
 * quant_vec_avx512.h - the vector primitives of the quantize / dequantize tiers on AVX-512
 * (F, BW, VL): 16 float32 lanes per register. Included only by quantize_avx512.c and
 * dequantize_avx512.c (compiled with the ISA flags), before quantize_simd.h /
 * dequantize_simd.h, which are written on these primitives only; quant_vec_avx2.h is the same
 * interface on 8 lanes. Every primitive computes exactly what the scalar code it replaces
 * computes; where that is not obvious the comment says why.
 */
#ifndef QMV_CPU_QUANT_VEC_AVX512_H
#define QMV_CPU_QUANT_VEC_AVX512_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "qmv.h"

#define QV_NL 16 /* lanes */

typedef __m512 qv_f;
typedef __m512i qv_i;
typedef __mmask16 qv_m;

#define QV_INLINE static inline __attribute__((always_inline))

QV_INLINE qv_f qv_set1(float f)
{
    return _mm512_set1_ps(f);
}
QV_INLINE qv_i qv_iset1(int v)
{
    return _mm512_set1_epi32(v);
}
QV_INLINE qv_f qv_add(qv_f a, qv_f b)
{
    return _mm512_add_ps(a, b);
}
QV_INLINE qv_f qv_sub(qv_f a, qv_f b)
{
    return _mm512_sub_ps(a, b);
}
QV_INLINE qv_f qv_mul(qv_f a, qv_f b)
{
    return _mm512_mul_ps(a, b);
}
QV_INLINE qv_f qv_div(qv_f a, qv_f b)
{
    return _mm512_div_ps(a, b);
}
QV_INLINE qv_f qv_abs(qv_f a)
{
    return _mm512_abs_ps(a);
}
QV_INLINE qv_i qv_bits(qv_f a)
{
    return _mm512_castps_si512(a);
}
QV_INLINE qv_f qv_from_bits(qv_i a)
{
    return _mm512_castsi512_ps(a);
}
/* Round to nearest even / toward zero, exact (no precision exception reported). */
QV_INLINE qv_f qv_rint(qv_f a)
{
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
QV_INLINE qv_f qv_trunc(qv_f a)
{
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
}
/* Ordered compares: false when a lane is NaN, as C's < <= > >= are. */
QV_INLINE qv_m qv_lt(qv_f a, qv_f b)
{
    return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ);
}
QV_INLINE qv_m qv_le(qv_f a, qv_f b)
{
    return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ);
}
QV_INLINE qv_m qv_isnan(qv_f a)
{
    return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
}
QV_INLINE qv_m qv_not(qv_m m)
{
    return (qv_m)~m;
}
QV_INLINE unsigned qv_mask_bits(qv_m m)
{
    return (unsigned)m;
}
/* m ? a : b */
QV_INLINE qv_f qv_sel(qv_m m, qv_f a, qv_f b)
{
    return _mm512_mask_blend_ps(m, b, a);
}
QV_INLINE qv_i qv_seli(qv_m m, qv_i a, qv_i b)
{
    return _mm512_mask_blend_epi32(m, b, a);
}
QV_INLINE qv_i qv_inc(qv_i c, qv_m m)
{
    return _mm512_mask_add_epi32(c, m, c, _mm512_set1_epi32(1));
}
QV_INLINE qv_i qv_and(qv_i a, qv_i b)
{
    return _mm512_and_si512(a, b);
}
QV_INLINE qv_i qv_or(qv_i a, qv_i b)
{
    return _mm512_or_si512(a, b);
}
QV_INLINE qv_i qv_iadd(qv_i a, qv_i b)
{
    return _mm512_add_epi32(a, b);
}
QV_INLINE qv_i qv_isub(qv_i a, qv_i b)
{
    return _mm512_sub_epi32(a, b);
}
#define qv_slli(a, n) _mm512_slli_epi32((a), (n))
#define qv_srli(a, n) _mm512_srli_epi32((a), (n))
QV_INLINE qv_m qv_ilt(qv_i a, qv_i b)
{
    return _mm512_cmplt_epi32_mask(a, b);
}
QV_INLINE qv_m qv_ieq(qv_i a, qv_i b)
{
    return _mm512_cmpeq_epi32_mask(a, b);
}
/* float -> int32 toward zero (only used on integral values in range) and back, exact */
QV_INLINE qv_i qv_cvtt(qv_f a)
{
    return _mm512_cvttps_epi32(a);
}
QV_INLINE qv_f qv_cvt(qv_i a)
{
    return _mm512_cvtepi32_ps(a);
}
QV_INLINE float qv_hmax(qv_f a)
{
    return _mm512_reduce_max_ps(a);
}
QV_INLINE float qv_hmin(qv_f a)
{
    return _mm512_reduce_min_ps(a);
}
QV_INLINE qv_f qv_max(qv_f a, qv_f b)
{
    return _mm512_max_ps(a, b);
}
QV_INLINE qv_f qv_min(qv_f a, qv_f b)
{
    return _mm512_min_ps(a, b);
}
QV_INLINE void qv_storei(int32_t *p, qv_i a)
{
    _mm512_storeu_si512(p, a);
}
QV_INLINE qv_i qv_loadi(const int32_t *p)
{
    return _mm512_loadu_si512(p);
}

/* Loads and stores of QV_NL elements, and fp16 rounding, in hardware. vcvtph2ps is exact for
 * every fp16 code but the signalling NaNs, which it makes quiet (1022 codes; quantize rejects
 * NaN input before converting, dequantize never converts fp16 input in vector form).
 * vcvtps2ph with an immediate round-to-nearest-even gives exactly qmvi_f32_to_f16's bits for
 * every one of the 2^32 float32 inputs, NaN included (checked exhaustively: docs/perf-log.md,
 * "2026-11-27 · 8c1ff49 — quantize / dequantize tiers"), whatever MXCSR says. */
QV_INLINE qv_f qv_load_f32(const float *p)
{
    return _mm512_loadu_ps(p);
}
QV_INLINE qv_f qv_load_f16(const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
QV_INLINE qv_i qv_load_u16(const uint16_t *p)
{
    return _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
}
QV_INLINE void qv_store_f32(float *p, qv_f a)
{
    _mm512_storeu_ps(p, a);
}
QV_INLINE void qv_store_f16(uint16_t *p, qv_f a)
{
    _mm256_storeu_si256((__m256i *)p,
                        _mm512_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
/* The low 16 bits of each lane (lanes hold values below 2^16). */
QV_INLINE void qv_store_u16(uint16_t *p, qv_i a)
{
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtepi32_epi16(a));
}
QV_INLINE qv_f qv_f16_round(qv_f a)
{
    return _mm512_cvtph_ps(_mm512_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

/* E2M1 code (low 4 bits) -> value, from a 16-entry table (vpermps reads the low 4 bits). */
QV_INLINE qv_f qv_e2m1_value(qv_i c)
{
    const __m512 lut = _mm512_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f, -0.0f, -0.5f,
                                      -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f);
    return _mm512_permutexvar_ps(c, lut);
}

/* Codes (lane j < 2^bits) <-> the packed bit stream: QV_NL codes are 2 * bits bytes, returned
 * as / taken from u[0..1], each holding 8 codes LSB first (bits 0 .. 8*bits-1). Lane pairs are
 * merged in 64-bit lanes, then each 64-bit lane is moved to its place by a variable shift. */
QV_INLINE void qv_codes_pack(qv_i c, int bits, uint64_t u[2])
{
    const __m512i pair = _mm512_and_si512(_mm512_or_si512(c, _mm512_srli_epi64(c, 32 - bits)),
                                          _mm512_set1_epi64((1ll << (2 * bits)) - 1));
    const __m512i sh =
        _mm512_setr_epi64(0, 2 * bits, 4 * bits, 6 * bits, 0, 2 * bits, 4 * bits, 6 * bits);
    uint64_t q[8];
    _mm512_storeu_si512(q, _mm512_sllv_epi64(pair, sh));
    u[0] = q[0] | q[1] | q[2] | q[3];
    u[1] = q[4] | q[5] | q[6] | q[7];
}

QV_INLINE qv_i qv_codes_unpack(const uint64_t u[2], int bits)
{
    const __m512i x =
        _mm512_setr_epi64((long long)u[0], (long long)u[0], (long long)u[0], (long long)u[0],
                          (long long)u[1], (long long)u[1], (long long)u[1], (long long)u[1]);
    const __m512i sh =
        _mm512_setr_epi64(0, 2 * bits, 4 * bits, 6 * bits, 0, 2 * bits, 4 * bits, 6 * bits);
    const __m512i y = _mm512_srlv_epi64(x, sh);
    const __m512i lo = _mm512_and_si512(y, _mm512_set1_epi64((1ll << bits) - 1));
    const __m512i hi = _mm512_and_si512(_mm512_slli_epi64(y, 32 - bits),
                                        _mm512_set1_epi64(((1ll << bits) - 1) << 32));
    return _mm512_or_si512(lo, hi);
}

#endif /* QMV_CPU_QUANT_VEC_AVX512_H */
