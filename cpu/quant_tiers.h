/*
 * quant_tiers.h - what qmv_quantize() (quantize.c) and qmv_dequantize() (dequantize.c) share
 * with their SIMD tiers (cpu/<arch>/quantize_*.c, cpu/<arch>/dequantize_*.c): one validated
 * call and the per-row entry point types (kernels.h). The tier is chosen as for qmv_qmv()
 * (exec->cpu_tiers, QMV_CPU_TIERS, CPUID: tier.c); every tier writes the scalar path's
 * bytes. Internal.
 */
#ifndef QMV_CPU_QUANT_TIERS_H
#define QMV_CPU_QUANT_TIERS_H

#include "elements.h"
#include "internal.h"

/* A validated qmv_quantize() call; rows are quantized independently. */
typedef struct {
    const qmv_format *fmt;
    qmv_profile profile;
    float enc; /* nvfp4: fl32(2688 / g), or 1 without a global scale */
    qmv_dtype t;
    const void *w;
    int64_t stride; /* elements between rows of w */
    const qmv_quant_out *out;
    int64_t words, groups; /* per row of out */
} qmvi_quant_job;

/* A validated qmv_dequantize() call. */
typedef struct {
    const qmv_qmatrix *w;
    const qmvi_qmatrix_info *wi;
    const float *lut; /* element value by code (scalar tier) */
    qmv_dtype out_dtype;
    void *out;
    int64_t out_row_stride;
} qmvi_deq_job;

/* Group g's scale (times fl32(g/2688) for nvfp4 with a global scale) and bias (0 for fp modes)
 * of the row whose scales start at element srow. */
static inline void qmvi_deq_group(const qmvi_deq_job *job, int64_t srow, int64_t g, float *s,
                                  float *bias)
{
    const qmv_qmatrix *w = job->w;
    const qmvi_mode_traits *t = &qmvi_traits[w->format.mode];
    *s = qmvi_scale_value(t->scale, w->scale_dtype, w->scales, srow + g);
    *bias = 0.0f;
    if (t->has_bias)
        *bias = qmvi_load(w->scale_dtype, w->biases, srow + g);
    else if (job->wi->has_g)
        *s = *s * job->wi->g_mul;
}

/* Quantizes row r of a job (all of its elements finite). */
typedef void (*qmvi_quant_row_fn)(const qmvi_quant_job *job, int64_t r);
/* 1 when one of the k elements of dtype t at row is NaN or Inf. */
typedef int (*qmvi_non_finite_fn)(qmv_dtype t, const void *row, int64_t k);
/* Dequantizes row r of a job. */
typedef void (*qmvi_deq_row_fn)(const qmvi_deq_job *job, int64_t r);

#endif /* QMV_CPU_QUANT_TIERS_H */
