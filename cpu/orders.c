/*
 * orders.c - the table of accumulation orders (include/qmv.h, "Accumulation orders"): qmv's
 * canonical order first, then emulations of other implementations. Adding an order is one
 * entry here and one compute function with qmv_qmv_reference()'s contract.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "orders.h"

typedef struct {
    qmv_order_info info;
    qmv_status (*compute)(const qmv_qmatrix *w, const qmv_vectors *v);
} qmvi_order;

static const qmvi_order qmvi_orders[] = {
    {{"qmv-v1", "qmv's canonical order, version 1 (docs/ORDER.md): qmv_qmv() on every CPU tier "
                "and both CUDA kernels",
      "it is the definition: qmv_qmv_reference() implements it literally", 1},
     qmv_qmv_reference},
    {{"mlx-0.32.4-cpu",
      "MLX 0.32.4's CPU quantized_matmul (transpose=True; pip's Linux x86-64 build, every M): "
      "every mode, float32, float16 and bfloat16 x, accumulating in x's dtype",
      "matched pip MLX 0.32.4's CPU outputs bit for bit (tests/mlx/mlx_orders.py, "
      "docs/VERIFY.md)",
      1},
     qmvi_order_mlx_cpu},
    {{"mlx-0.32.4-cuda-qmv",
      "MLX 0.32.4's CUDA qmv kernel (mlx/backend/cuda/quantized/qmm/qmv.cu), which "
      "quantized_matmul runs on sm_80/sm_90 for every mode when M*batch < 8 (docs/VERIFY.md): "
      "float32, float16 and bfloat16 x, affine 2-6 and 8 bits, mxfp4, nvfp4, mxfp8",
      "NOT confirmed: written from MLX's source; needs a run of tests/mlx/mlx_cuda_orders.py "
      "on an sm_90 GPU with MLX's CUDA build",
      0},
     qmvi_order_mlx_cuda_qmv},
    {{"mlx-0.32.4-cuda-fp-qmv",
      "MLX 0.32.4's CUDA fp_qmv kernel (mlx/backend/cuda/quantized/qmm/fp_qmv.cu), which "
      "quantized_matmul runs on sm_100 and later for mxfp4, nvfp4 and mxfp8 with at most 8 "
      "vectors: float32, float16 and bfloat16 x",
      "NOT confirmed: written from MLX's source; needs a run of tests/mlx/mlx_cuda_orders.py "
      "on an sm_100+ GPU with MLX's CUDA build",
      0},
     qmvi_order_mlx_cuda_fp_qmv},
};

#define QMVI_ORDER_COUNT ((int)(sizeof qmvi_orders / sizeof qmvi_orders[0]))

int qmv_order_count(void)
{
    return QMVI_ORDER_COUNT;
}

qmv_status qmv_order_get(int index, qmv_order_info *out)
{
    if (!out)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "qmv_order_get: out is NULL");
    if (index < 0 || index >= QMVI_ORDER_COUNT)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT,
                         "qmv_order_get: index %d is not in [0, %d)", index, QMVI_ORDER_COUNT);
    *out = qmvi_orders[index].info;
    return qmvi_ok();
}

qmv_status qmv_order_find(const char *name, int *index)
{
    if (!name || !index)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "qmv_order_find: %s is NULL",
                         name ? "index" : "name");
    for (int i = 0; i < QMVI_ORDER_COUNT; i++) {
        if (strcmp(name, qmvi_orders[i].info.name) == 0) {
            *index = i;
            return qmvi_ok();
        }
    }
    char known[256] = "";
    for (int i = 0; i < QMVI_ORDER_COUNT; i++) {
        size_t used = strlen(known);
        snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "",
                 qmvi_orders[i].info.name);
    }
    return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "unknown order \"%.64s\" (known: %s)", name,
                     known);
}

qmv_status qmv_qmv_order(int index, const qmv_qmatrix *w, const qmv_vectors *v)
{
    if (index < 0 || index >= QMVI_ORDER_COUNT)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT,
                         "qmv_qmv_order: order index %d is not in [0, %d)", index,
                         QMVI_ORDER_COUNT);
    return qmvi_orders[index].compute(w, v);
}
