/*
 * quantize_avx512.c - the avx512 tier of qmv_quantize(): AVX-512 (F, BW, VL): 16 lanes of
 * quantize_simd.h on quant_vec_avx512.h, bit-identical to the scalar path. Compiled with the tier's
 * ISA flags alone (CMakeLists.txt); elsewhere (other compilers, other processors) it is empty.
 */
#include "x86_kernels.h"

#if defined(QMVI_HAVE_AVX512) && defined(__AVX512F__) && defined(__AVX512BW__) &&                  \
    defined(__AVX512VL__) && defined(__F16C__)
#include "quant_vec_avx512.h"
#define QV_NAME(f) f##_avx512
#include "quantize_simd.h"
#else
typedef int qmvi_quantize_avx512_empty; /* ISO C forbids an empty translation unit */
#endif
