/*
 * qmv_tiers.h - what qmv.c (the dispatcher) shares with the SIMD tiers: one validated call
 * and the tier entry points. Internal.
 */
#ifndef QMV_CPU_QMV_TIERS_H
#define QMV_CPU_QMV_TIERS_H

#include "internal.h"

/* A validated qmv_qmv() call (k > 0 and rows > 0; empty calls never reach a tier). */
typedef struct {
    const qmv_qmatrix *w;
    const qmv_vectors *v;
    const qmvi_mode_traits *t;
    qmvi_qmatrix_info wi;
    int threads; /* >= 1 */
} qmvi_qmv_call;

/* The tier a call with these options runs on (validation of exec is done elsewhere). */
qmv_cpu_tier qmvi_exec_tier(const qmv_exec *exec);

/* The tiers this build compiled, whatever the processor (tests compare with CPUID). */
unsigned qmvi_tiers_built(void);

#endif /* QMV_CPU_QMV_TIERS_H */
