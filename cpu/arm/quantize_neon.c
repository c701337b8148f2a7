/*
 * quantize_neon.c - the neon tier of qmv_quantize(): AArch64 Advanced SIMD, 8 lanes of
 * quantize_simd.h on quant_vec_neon.h, bit-identical to the scalar path. Compiled for AArch64
 * targets only (CMakeLists.txt), with the baseline flags: Advanced SIMD needs none.
 */
#include "arm_kernels.h"

#if defined(QMVI_NEON)
#include "quant_vec_neon.h"
#define QV_NAME(f) f##_neon
#include "quantize_simd.h"
#else
typedef int qmvi_quantize_neon_empty; /* ISO C forbids an empty translation unit */
#endif
