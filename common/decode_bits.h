/*
 * decode_bits.h - the exact decoders of element and scale codes, as inline functions that
 * both the C library and the CUDA kernels compile (one definition, so the CPU and the GPU
 * cannot drift apart): E2M1, E4M3FN and E8M0 to float32, built from bits.
 */
#ifndef QMV_COMMON_DECODE_BITS_H
#define QMV_COMMON_DECODE_BITS_H

#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define QMVI_HD __host__ __device__ __forceinline__
#else
#define QMVI_HD static inline
#endif

QMVI_HD float qmvi_float_of_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* E2M1 code (low 4 bits, sign = bit 3): 0, .5, 1, 1.5, 2, 3, 4, 6 and their negatives. */
QMVI_HD float qmvi_e2m1_value(unsigned c)
{
    const unsigned m = c & 7u, e = m >> 1, half = m & 1u;
    /* e = 0: 0 or 0.5; else (1 + half/2) * 2^(e-1) */
    const uint32_t mag = e == 0 ? (half ? 0x3F000000u : 0u) : ((e + 126u) << 23) | (half << 22);
    return qmvi_float_of_bits(mag | ((uint32_t)(c & 8u) << 28));
}

/* E4M3FN code: bias 7, subnormals down to 2^-9 (exact), 0x7F and 0xFF are NaN. */
QMVI_HD float qmvi_e4m3_value(unsigned c)
{
    const uint32_t sign = (uint32_t)(c & 0x80u) << 24;
    const unsigned exp = (c >> 3) & 15u, mant = c & 7u;
    if (exp == 15u && mant == 7u)
        return qmvi_float_of_bits(sign | 0x7FC00000u);
    if (exp != 0u)
        return qmvi_float_of_bits(sign | ((exp + 120u) << 23) | ((uint32_t)mant << 20));
    const float sub = (float)mant * 0.001953125f; /* mant * 2^-9, exact */
    uint32_t u;
    memcpy(&u, &sub, sizeof u);
    return qmvi_float_of_bits(sign | u);
}

/* E8M0 byte -> 2^(b-127); byte 0 is 2^-127 (a float32 subnormal), 0xFF is NaN. */
QMVI_HD float qmvi_e8m0_value(unsigned b)
{
    b &= 0xFFu;
    if (b == 0u)
        return qmvi_float_of_bits(0x00400000u);
    if (b == 0xFFu)
        return qmvi_float_of_bits(0x7FC00000u);
    return qmvi_float_of_bits((uint32_t)b << 23);
}

#endif /* QMV_COMMON_DECODE_BITS_H */
