/*
 * dequantize_simd.h - the ISA-neutral body of the SIMD tiers of qmv_dequantize(), on the
 * primitives of a tier's quant_vec_<isa>.h; included once by each tier's dequantize_<isa>.c
 * (cpu/x86/, cpu/arm/) after its primitives and QV_NAME (see quantize_simd.h).
 *
 * The same values as dequantize.c's scalar rows: the group's scale and bias are read by the
 * same scalar code, each element value is exact (the affine integer by int -> float, E2M1 by
 * table, E4M3 by building its bits), and the products and sums are the same IEEE float32
 * operations in the same order, rounded to the scales' dtype where the scalar code rounds.
 * NaN results are written as the canonical quiet NaN of the output dtype on every tier.
 */
#ifndef QMV_CPU_DEQUANTIZE_SIMD_H
#define QMV_CPU_DEQUANTIZE_SIMD_H

#include "elements.h"
#include "quant_tiers.h"
#include "quant_vec_common.h"

void QV_NAME(qmvi_dequantize_row)(const qmvi_deq_job *job, int64_t r)
{
    const qmv_qmatrix *w = job->w;
    const qmvi_mode_traits *tr = &qmvi_traits[w->format.mode];
    const int bits = w->format.bits, gs = w->format.group_size;
    const unsigned char *row = (const unsigned char *)(w->packed + r * w->packed_row_stride);
    const int64_t row_bytes = w->k * bits / 8; /* k is a multiple of 16: whole bytes */
    const int64_t srow = r * w->scales_row_stride;
    const int64_t o = r * job->out_row_stride;
    const qmv_dtype sd = w->scale_dtype;
    int64_t off = 0;
    for (int64_t g = 0; g < w->k / gs; g++) {
        float s, bias;
        qmvi_deq_group(job, srow, g, &s, &bias);
        const qv_f vs = qv_set1(s), vb = qv_set1(bias);
        for (int64_t i = g * gs; i < (g + 1) * gs; i += QV_NL) {
            uint64_t u[QV_NL / 8];
            for (int h = 0; h < QV_NL / 8; h++) {
                if (off + 8 <= row_bytes) {
                    memcpy(&u[h], row + off, 8);
                } else {
                    u[h] = 0;
                    memcpy(&u[h], row + off, (size_t)bits); /* little-endian: the low bytes */
                }
                off += bits;
            }
            const qv_i c = qv_codes_unpack(u, bits);
            qv_f v;
            if (tr->elem == QMVI_ELEM_E2M1)
                v = qv_mul(qv_e2m1_value(c), vs);
            else if (tr->elem == QMVI_ELEM_E4M3)
                v = qv_mul(qv_e4m3_value(c), vs);
            else
                v = qv_round_to(sd, qv_add(qv_round_to(sd, qv_mul(qv_cvt(c), vs)), vb));
            qv_store(job->out_dtype, job->out, o + i, v);
        }
    }
}

#endif /* QMV_CPU_DEQUANTIZE_SIMD_H */
