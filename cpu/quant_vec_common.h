/*
 * quant_vec_common.h - the dtype conversions of the quantize / dequantize tiers, written once
 * on the primitives of a tier's quant_vec_<isa>.h (x86/quant_vec_avx512.h,
 * x86/quant_vec_avx2.h, arm/quant_vec_neon.h: whichever the including tier file included
 * first): loads and stores of float32 / fp16 / bf16 vectors, rounding to a
 * dtype, and the non-finite test. Each gives the scalar codec's bits (common/codec.c).
 */
#ifndef QMV_CPU_QUANT_VEC_COMMON_H
#define QMV_CPU_QUANT_VEC_COMMON_H

#if !defined(QV_NL)
#error "quant_vec_common.h: include a tier's quant_vec_<isa>.h first"
#endif

/* bf16 round to nearest even on the bits, as qmvi_f32_to_bf16 (NaN keeps its top bits and is
 * made quiet); the result in the low 16 bits of each lane. */
QV_INLINE qv_i qv_bf16_bits(qv_f a)
{
    const qv_i u = qv_bits(a);
    const qv_i r =
        qv_srli(qv_iadd(u, qv_iadd(qv_iset1(0x7FFF), qv_and(qv_srli(u, 16), qv_iset1(1)))), 16);
    const qv_i q = qv_or(qv_srli(u, 16), qv_iset1(0x40));
    return qv_seli(qv_isnan(a), q, r);
}

/* QV_NL elements of dtype t from p + i, as exact floats. */
QV_INLINE qv_f qv_load(qmv_dtype t, const void *p, int64_t i)
{
    if (t == QMV_DTYPE_F32)
        return qv_load_f32((const float *)p + i);
    if (t == QMV_DTYPE_F16)
        return qv_load_f16((const uint16_t *)p + i);
    return qv_from_bits(qv_slli(qv_load_u16((const uint16_t *)p + i), 16));
}

/* fl_t(a): a rounded to t and back. */
QV_INLINE qv_f qv_round_to(qmv_dtype t, qv_f a)
{
    if (t == QMV_DTYPE_F16)
        return qv_f16_round(a);
    if (t == QMV_DTYPE_BF16)
        return qv_from_bits(qv_slli(qv_bf16_bits(a), 16));
    return a;
}

/* Stores QV_NL results as t at p + i, rounded to nearest even, NaN as the canonical quiet NaN
 * of t (0x7FC00000, 0x7E00, 0x7FC0), as qmvi_store_result. */
QV_INLINE void qv_store(qmv_dtype t, void *p, int64_t i, qv_f a)
{
    a = qv_sel(qv_isnan(a), qv_from_bits(qv_iset1(0x7FC00000)), a);
    if (t == QMV_DTYPE_F32)
        qv_store_f32((float *)p + i, a);
    else if (t == QMV_DTYPE_F16)
        qv_store_f16((uint16_t *)p + i, a);
    else
        qv_store_u16((uint16_t *)p + i, qv_bf16_bits(a));
}

/* 1 when one of QV_NL elements of t at p + i is NaN or Inf (exponent all ones), on the bits. */
QV_INLINE int qv_non_finite(qmv_dtype t, const void *p, int64_t i)
{
    qv_i u, em;
    if (t == QMV_DTYPE_F32) {
        u = qv_loadi((const int32_t *)p + i);
        em = qv_iset1(0x7F800000);
    } else {
        u = qv_load_u16((const uint16_t *)p + i);
        em = qv_iset1(t == QMV_DTYPE_F16 ? 0x7C00 : 0x7F80);
    }
    return qv_mask_bits(qv_ieq(qv_and(u, em), em)) != 0;
}

/* E4M3FN code (low 8 bits) -> value: the magnitude bits placed as a float32's exponent and
 * mantissa, times 2^120 (exact, subnormals included), the sign, and NaN for 0x7F / 0xFF. */
QV_INLINE qv_f qv_e4m3_value(qv_i c)
{
    const qv_i m = qv_and(c, qv_iset1(0x7F));
    const qv_f mag = qv_mul(qv_from_bits(qv_slli(m, 20)), qv_set1(0x1p120f));
    const qv_f v = qv_from_bits(qv_or(qv_bits(mag), qv_slli(qv_and(c, qv_iset1(0x80)), 24)));
    return qv_sel(qv_ieq(m, qv_iset1(0x7F)), qv_from_bits(qv_iset1(0x7FC00000)), v);
}

#endif /* QMV_CPU_QUANT_VEC_COMMON_H */
