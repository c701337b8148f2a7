/*
 * arm_kernels.h - the entry points of the AArch64 kernel set (the cpu/arm/ files of tier
 * neon), for the table in cpu/tier.c. The set exists where CMake found an AArch64 C compiler
 * with Advanced SIMD (QMVI_HAVE_NEON) and this translation unit targets little-endian AArch64
 * (QMVI_NEON); it needs no run-time check, as Advanced SIMD is part of every AArch64
 * processor (Armv8-A makes it mandatory for general-purpose systems, and Linux, macOS and
 * Windows on Arm all require it). Internal.
 */
#ifndef QMV_CPU_ARM_KERNELS_H
#define QMV_CPU_ARM_KERNELS_H

#include "qmv_tiers.h"
#include "quant_tiers.h"

#if defined(QMVI_HAVE_NEON) && defined(__aarch64__) && defined(__ARM_NEON) &&                      \
    !defined(__AARCH64EB__)
#define QMVI_NEON 1
void qmvi_quantize_row_neon(const qmvi_quant_job *job, int64_t r);
int qmvi_non_finite_neon(qmv_dtype t, const void *row, int64_t k);
void qmvi_dequantize_row_neon(const qmvi_deq_job *job, int64_t r);
void qmvi_qmv_neon(const qmvi_qmv_call *call);
#endif

#endif /* QMV_CPU_ARM_KERNELS_H */
