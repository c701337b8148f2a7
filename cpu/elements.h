/*
 * elements.h - decoding one element value or one group scale as an exact float, the
 * v[i], s and t of the canonical order (docs/ORDER.md).
 */
#ifndef QMV_CPU_ELEMENTS_H
#define QMV_CPU_ELEMENTS_H

#include "codec.h"
#include "internal.h"
#include "order.h" /* QMVI_CHUNK, QMVI_LANES, qmvi_lane_tree */

/* Value of code c of a mode: the affine integer q, or the E2M1 / E4M3 value. */
static inline float qmvi_elem_value(qmvi_elem_code e, unsigned c)
{
    switch (e) {
    case QMVI_ELEM_E2M1:
        return qmvi_e2m1_to_f32(c);
    case QMVI_ELEM_E4M3:
        return qmvi_e4m3_to_f32(c);
    default:
        return (float)c;
    }
}

/* Scale element i of a scales array: stored float (affine), E8M0 or E4M3 byte. */
static inline float qmvi_scale_value(qmvi_scale_code s, qmv_dtype dtype, const void *p, int64_t i)
{
    switch (s) {
    case QMVI_SCALE_E8M0:
        return qmvi_e8m0_to_f32(((const uint8_t *)p)[i]);
    case QMVI_SCALE_E4M3:
        return qmvi_e4m3_to_f32(((const uint8_t *)p)[i]);
    default:
        return qmvi_load(dtype, p, i);
    }
}

/* Fills lut[c] = value of code c for every code of `bits` bits. */
static inline void qmvi_elem_lut(qmvi_elem_code e, int bits, float *lut)
{
    for (unsigned c = 0; c < (1u << bits); c++)
        lut[c] = qmvi_elem_value(e, c);
}

/* Writes the final result of a qmv output element: round to nearest even, one canonical
 * quiet NaN per dtype (CPUs and GPUs propagate NaN payloads differently). */
static inline void qmvi_store_result(qmv_dtype t, void *y, int64_t i, float r)
{
    if (r != r)
        r = qmvi_f32_from_bits(0x7FC00000u); /* -> 0x7E00 (fp16) and 0x7FC0 (bf16) */
    qmvi_store(t, y, i, r);
}

#endif /* QMV_CPU_ELEMENTS_H */
