/*
 * orders.h - the compute functions of the accumulation orders listed in cpu/orders.c, and
 * what the emulations of MLX share. Each compute function has qmv_qmv_reference()'s contract.
 */
#ifndef QMV_CPU_ORDERS_H
#define QMV_CPU_ORDERS_H

#include "internal.h"

/* The order "mlx-0.32.4-cpu" (cpu/order_mlx_cpu.c). */
qmv_status qmvi_order_mlx_cpu(const qmv_qmatrix *w, const qmv_vectors *v);

/* The orders "mlx-0.32.4-cuda-qmv" and "mlx-0.32.4-cuda-fp-qmv" (cpu/order_mlx_cuda.c). */
qmv_status qmvi_order_mlx_cuda_qmv(const qmv_qmatrix *w, const qmv_vectors *v);
qmv_status qmvi_order_mlx_cuda_fp_qmv(const qmv_qmatrix *w, const qmv_vectors *v);

/*
 * Validation shared by the MLX emulations: everything qmv_qmv_reference() checks, then what
 * mx.quantized_matmul accepts. MLX computes in one dtype T: for affine the promotion of x's
 * and the scales' dtypes (equal dtypes give that dtype, any other pair float32), for the fp
 * modes x's dtype; it writes y in T and takes no nvfp4 global scale. On success *t is T.
 * Errors: those of the reference, then UNSUPPORTED (y dtype != T, a global scale) naming
 * `order`.
 */
qmv_status qmvi_mlx_check(const char *order, const qmv_qmatrix *w, const qmv_vectors *v,
                          qmv_dtype *t);

/* Pointer to vector j of batch item b of v (NULL when k = 0: nothing is read). */
const void *qmvi_mlx_x_row(const qmv_qmatrix *w, const qmv_vectors *v, int64_t b, int64_t j);

/* Row n of batch item b of w's codes (NULL when k = 0) and the index of its first scale. */
const uint32_t *qmvi_mlx_w_row(const qmv_qmatrix *w, int64_t b, int64_t n);
int64_t qmvi_mlx_scale_row(const qmv_qmatrix *w, int64_t b, int64_t n);

/* fl_T(a * b + c) with one rounding, as CUDA's fma in T (fmaf, __hfma2, fma.rn.bf16x2)
 * computes it; a, b, c are values of T. */
float qmvi_mlx_fma(qmv_dtype t, float a, float b, float c);

#endif /* QMV_CPU_ORDERS_H */
