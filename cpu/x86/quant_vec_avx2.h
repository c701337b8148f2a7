/*
 * quant_vec_avx2.h - the vector primitives of the quantize / dequantize tiers on AVX2 (+ FMA,
 * F16C, as the AVX2 qmv tier): 8 float32 lanes per register, masks as all-ones lanes. The same
 * interface as quant_vec_avx512.h (read its header comment); included only by
 * quantize_avx2.c and dequantize_avx2.c.
 */
#ifndef QMV_CPU_QUANT_VEC_AVX2_H
#define QMV_CPU_QUANT_VEC_AVX2_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "qmv.h"

#define QV_NL 8 /* lanes */

typedef __m256 qv_f;
typedef __m256i qv_i;
typedef __m256 qv_m; /* lanes of all ones or all zeros */

#define QV_INLINE static inline __attribute__((always_inline))

QV_INLINE qv_f qv_set1(float f)
{
    return _mm256_set1_ps(f);
}
QV_INLINE qv_i qv_iset1(int v)
{
    return _mm256_set1_epi32(v);
}
QV_INLINE qv_f qv_add(qv_f a, qv_f b)
{
    return _mm256_add_ps(a, b);
}
QV_INLINE qv_f qv_sub(qv_f a, qv_f b)
{
    return _mm256_sub_ps(a, b);
}
QV_INLINE qv_f qv_mul(qv_f a, qv_f b)
{
    return _mm256_mul_ps(a, b);
}
QV_INLINE qv_f qv_div(qv_f a, qv_f b)
{
    return _mm256_div_ps(a, b);
}
QV_INLINE qv_f qv_abs(qv_f a)
{
    return _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF)));
}
QV_INLINE qv_i qv_bits(qv_f a)
{
    return _mm256_castps_si256(a);
}
QV_INLINE qv_f qv_from_bits(qv_i a)
{
    return _mm256_castsi256_ps(a);
}
/* Round to nearest even / toward zero, exact (no precision exception reported). */
QV_INLINE qv_f qv_rint(qv_f a)
{
    return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
QV_INLINE qv_f qv_trunc(qv_f a)
{
    return _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
}
/* Ordered compares: false when a lane is NaN, as C's < <= > >= are. */
QV_INLINE qv_m qv_lt(qv_f a, qv_f b)
{
    return _mm256_cmp_ps(a, b, _CMP_LT_OQ);
}
QV_INLINE qv_m qv_le(qv_f a, qv_f b)
{
    return _mm256_cmp_ps(a, b, _CMP_LE_OQ);
}
QV_INLINE qv_m qv_isnan(qv_f a)
{
    return _mm256_cmp_ps(a, a, _CMP_UNORD_Q);
}
QV_INLINE qv_m qv_not(qv_m m)
{
    return _mm256_xor_ps(m, _mm256_castsi256_ps(_mm256_set1_epi32(-1)));
}
QV_INLINE unsigned qv_mask_bits(qv_m m)
{
    return (unsigned)_mm256_movemask_ps(m);
}
/* m ? a : b */
QV_INLINE qv_f qv_sel(qv_m m, qv_f a, qv_f b)
{
    return _mm256_blendv_ps(b, a, m);
}
QV_INLINE qv_i qv_seli(qv_m m, qv_i a, qv_i b)
{
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(b), _mm256_castsi256_ps(a), m));
}
QV_INLINE qv_i qv_inc(qv_i c, qv_m m)
{
    return _mm256_sub_epi32(c, _mm256_castps_si256(m));
}
QV_INLINE qv_i qv_and(qv_i a, qv_i b)
{
    return _mm256_and_si256(a, b);
}
QV_INLINE qv_i qv_or(qv_i a, qv_i b)
{
    return _mm256_or_si256(a, b);
}
QV_INLINE qv_i qv_iadd(qv_i a, qv_i b)
{
    return _mm256_add_epi32(a, b);
}
QV_INLINE qv_i qv_isub(qv_i a, qv_i b)
{
    return _mm256_sub_epi32(a, b);
}
#define qv_slli(a, n) _mm256_slli_epi32((a), (n))
#define qv_srli(a, n) _mm256_srli_epi32((a), (n))
QV_INLINE qv_m qv_ilt(qv_i a, qv_i b)
{
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(b, a));
}
QV_INLINE qv_m qv_ieq(qv_i a, qv_i b)
{
    return _mm256_castsi256_ps(_mm256_cmpeq_epi32(a, b));
}
/* float -> int32 toward zero (only used on integral values in range) and back, exact */
QV_INLINE qv_i qv_cvtt(qv_f a)
{
    return _mm256_cvttps_epi32(a);
}
QV_INLINE qv_f qv_cvt(qv_i a)
{
    return _mm256_cvtepi32_ps(a);
}
QV_INLINE qv_f qv_max(qv_f a, qv_f b)
{
    return _mm256_max_ps(a, b);
}
QV_INLINE qv_f qv_min(qv_f a, qv_f b)
{
    return _mm256_min_ps(a, b);
}
/* Horizontal max / min. Only the value matters to the callers (a +0 / -0 choice never does:
 * quantize_simd.h), and vmaxps / vminps of non-NaN floats give it. */
QV_INLINE float qv_hmax(qv_f a)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}
QV_INLINE float qv_hmin(qv_f a)
{
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}
QV_INLINE void qv_storei(int32_t *p, qv_i a)
{
    _mm256_storeu_si256((__m256i *)p, a);
}
QV_INLINE qv_i qv_loadi(const int32_t *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

/* Loads and stores of QV_NL elements, and fp16 rounding, in hardware (F16C): the same
 * instructions as quant_vec_avx512.h on 8 lanes, with the same exactness. */
QV_INLINE qv_f qv_load_f32(const float *p)
{
    return _mm256_loadu_ps(p);
}
QV_INLINE qv_f qv_load_f16(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
QV_INLINE qv_i qv_load_u16(const uint16_t *p)
{
    return _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
}
QV_INLINE void qv_store_f32(float *p, qv_f a)
{
    _mm256_storeu_ps(p, a);
}
QV_INLINE void qv_store_f16(uint16_t *p, qv_f a)
{
    _mm_storeu_si128((__m128i *)p,
                     _mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
/* The low 16 bits of each lane (lanes hold values below 2^16: packus keeps them). */
QV_INLINE void qv_store_u16(uint16_t *p, qv_i a)
{
    _mm_storeu_si128((__m128i *)p,
                     _mm_packus_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1)));
}
QV_INLINE qv_f qv_f16_round(qv_f a)
{
    return _mm256_cvtph_ps(_mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

/* E2M1 code (low 4 bits) -> value: the magnitude from an 8-entry table (vpermps reads the
 * low 3 bits), the sign from bit 3. */
QV_INLINE qv_f qv_e2m1_value(qv_i c)
{
    const __m256 mag =
        _mm256_permutevar8x32_ps(_mm256_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f), c);
    const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(c, _mm256_set1_epi32(8)), 28);
    return _mm256_or_ps(mag, _mm256_castsi256_ps(sign));
}

/* QV_NL = 8 codes <-> u[0] (8 * bits bits, LSB first); see quant_vec_avx512.h. */
QV_INLINE void qv_codes_pack(qv_i c, int bits, uint64_t u[1])
{
    const __m256i pair = _mm256_and_si256(_mm256_or_si256(c, _mm256_srli_epi64(c, 32 - bits)),
                                          _mm256_set1_epi64x((1ll << (2 * bits)) - 1));
    const __m256i sh = _mm256_setr_epi64x(0, 2 * bits, 4 * bits, 6 * bits);
    uint64_t q[4];
    _mm256_storeu_si256((__m256i *)q, _mm256_sllv_epi64(pair, sh));
    u[0] = q[0] | q[1] | q[2] | q[3];
}

QV_INLINE qv_i qv_codes_unpack(const uint64_t u[1], int bits)
{
    const __m256i y = _mm256_srlv_epi64(_mm256_set1_epi64x((long long)u[0]),
                                        _mm256_setr_epi64x(0, 2 * bits, 4 * bits, 6 * bits));
    const __m256i lo = _mm256_and_si256(y, _mm256_set1_epi64x((1ll << bits) - 1));
    const __m256i hi = _mm256_and_si256(_mm256_slli_epi64(y, 32 - bits),
                                        _mm256_set1_epi64x(((1ll << bits) - 1) << 32));
    return _mm256_or_si256(lo, hi);
}

#endif /* QMV_CPU_QUANT_VEC_AVX2_H */
