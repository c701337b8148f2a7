/*
 * dequantize_avx2.c - the avx2 tier of qmv_dequantize(): AVX2 + F16C: 8 lanes of dequantize_simd.h
 * on quant_vec_avx2.h, bit-identical to the scalar path. Compiled with the tier's ISA flags alone
 * (CMakeLists.txt); elsewhere (other compilers, other processors) it is empty.
 */
#include "x86_kernels.h"

#if defined(QMVI_HAVE_AVX2) && defined(__AVX2__) && defined(__F16C__)
#include "quant_vec_avx2.h"
#define QV_NAME(f) f##_avx2
#include "dequantize_simd.h"
#else
typedef int qmvi_dequantize_avx2_empty; /* ISO C forbids an empty translation unit */
#endif
