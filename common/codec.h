/*
 * codec.h - exact scalar conversions between float32 and the element and scale codes:
 * fp16, bf16, E2M1 (fp4), E4M3FN (fp8) and E8M0. Integer bit code only: no _Float16, no
 * __bf16, no dependence on the FPU rounding mode or on the compiler contracting operations.
 */
#ifndef QMV_COMMON_CODEC_H
#define QMV_COMMON_CODEC_H

#include <stdint.h>
#include <string.h>

#include "decode_bits.h"
#include "qmv.h"

#ifdef __cplusplus
extern "C" {
#endif

static inline uint32_t qmvi_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float qmvi_f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* fp16 -> f32, exact for every code (subnormals, +-Inf, NaN keeps sign and payload). */
float qmvi_f16_to_f32(uint16_t h);

/* f32 -> fp16, round to nearest even; overflow gives +-Inf; subnormal results are kept;
 * NaN gives a quiet NaN with the sign and the top 10 payload bits (0x7E00 | sign at least). */
uint16_t qmvi_f32_to_f16(float f);

/* bf16 -> f32, exact. */
static inline float qmvi_bf16_to_f32(uint16_t h)
{
    return qmvi_f32_from_bits((uint32_t)h << 16);
}

/* f32 -> bf16, round to nearest even; NaN gives a quiet NaN with sign and top payload bits. */
uint16_t qmvi_f32_to_bf16(float f);

/* fl_T(f): f rounded to dtype T and back to float (identity for F32). */
float qmvi_round_to(qmv_dtype t, float f);

/* Loads element i of a dtype array as float (exact). */
float qmvi_load(qmv_dtype t, const void *p, int64_t i);

/* Stores f rounded to nearest even as element i of a dtype array (NaN as qmvi_f32_to_*). */
void qmvi_store(qmv_dtype t, void *p, int64_t i, float f);

/* E2M1 code (low 4 bits, sign = bit 3) -> value: 0, .5, 1, 1.5, 2, 3, 4, 6 and negatives
 * (the table is the argmin order MLX's CPU quantize searches). */
extern const float qmvi_e2m1_values[16];
static inline float qmvi_e2m1_to_f32(unsigned c)
{
    return qmvi_e2m1_value(c);
}

/* f32 -> E2M1, IEEE round to nearest even on the E2M1 grid, saturating at +-6, sign kept
 * (-0 and small negatives give 0x8), NaN gives sign|0x7 (CUTLASS's rule). */
unsigned qmvi_e2m1_from_f32_rne(float x);

/* E4M3FN code -> value, exact (subnormals down to 2^-9); 0x7F and 0xFF are NaN. */
static inline float qmvi_e4m3_to_f32(unsigned c)
{
    return qmvi_e4m3_value(c);
}

/* f32 -> E4M3FN, round to nearest even, saturating finite values and +-Inf at +-448 (0x7E),
 * sign kept (-0 gives 0x80). NaN gives nan_code (0x7E|sign for MLX's CPU encoder, 0x7F for
 * CUTLASS). */
unsigned qmvi_e4m3_from_f32_rne(float x, unsigned nan_code);

/* E8M0 byte -> 2^(b-127) as float; byte 0 is 2^-127 (subnormal), 0xFF is NaN. */
static inline float qmvi_e8m0_to_f32(unsigned b)
{
    return qmvi_e8m0_value(b);
}

#ifdef __cplusplus
}
#endif

#endif /* QMV_COMMON_CODEC_H */
