/*
 * x86_kernels.h - the entry points of the x86-64 kernel sets (the cpu/x86/ files of tiers avx2
 * and avx512) and their CPUID checks (cpu/x86/detect.c), for the table in
 * cpu/tier.c. Each set exists only where CMake found its compiler flags (QMVI_HAVE_*).
 * Internal.
 */
#ifndef QMV_CPU_X86_KERNELS_H
#define QMV_CPU_X86_KERNELS_H

#include "qmv_tiers.h"
#include "quant_tiers.h"

#if defined(QMVI_HAVE_AVX512)
int qmvi_x86_runs_avx512(void);
void qmvi_qmv_avx512(const qmvi_qmv_call *call);
void qmvi_quantize_row_avx512(const qmvi_quant_job *job, int64_t r);
int qmvi_non_finite_avx512(qmv_dtype t, const void *row, int64_t k);
void qmvi_dequantize_row_avx512(const qmvi_deq_job *job, int64_t r);
#endif
#if defined(QMVI_HAVE_AVX2)
int qmvi_x86_runs_avx2(void);
void qmvi_qmv_avx2(const qmvi_qmv_call *call);
void qmvi_quantize_row_avx2(const qmvi_quant_job *job, int64_t r);
int qmvi_non_finite_avx2(qmv_dtype t, const void *row, int64_t k);
void qmvi_dequantize_row_avx2(const qmvi_deq_job *job, int64_t r);
#endif

#endif /* QMV_CPU_X86_KERNELS_H */
