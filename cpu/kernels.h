/*
 * kernels.h - CPU kernel sets: one row per tier of everything that differs between tiers
 * (detection and the qmv, quantize and dequantize entry points), in one best-first table
 * (tier.c). A call picks its set once (qmvi_exec_kernels) and calls through it; every set
 * returns the scalar set's bits. A new tier is one row in tier.c plus its files
 * (docs/ARCHITECTURE.md). Internal.
 */
#ifndef QMV_CPU_KERNELS_H
#define QMV_CPU_KERNELS_H

#include "qmv_tiers.h"
#include "quant_tiers.h"

typedef struct {
    qmv_cpu_tier tier;
    const char *name; /* qmv_cpu_tier_name(), QMV_CPU_TIERS */
    /* The rest is NULL where this build did not compile the set. */
    int (*runs)(void); /* 1 when this processor and OS run the set; NULL: always */
    void (*qmv)(const qmvi_qmv_call *call);
    qmvi_quant_row_fn quantize_row;
    qmvi_non_finite_fn non_finite;
    qmvi_deq_row_fn dequantize_row;
} qmvi_kernel_set;

/* The set a call with these options runs (validation of exec is done elsewhere). */
const qmvi_kernel_set *qmvi_exec_kernels(const qmv_exec *exec);

/* The scalar set, the portable path (qmv.c, quantize.c, dequantize.c). */
void qmvi_qmv_scalar(const qmvi_qmv_call *call);
void qmvi_quantize_row_scalar(const qmvi_quant_job *job, int64_t r);
int qmvi_non_finite_scalar(qmv_dtype t, const void *row, int64_t k);
void qmvi_dequantize_row_scalar(const qmvi_deq_job *job, int64_t r);

#endif /* QMV_CPU_KERNELS_H */
