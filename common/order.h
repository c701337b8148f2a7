/*
 * order.h - the canonical order's constants (docs/ORDER.md, QMV_ORDER_VERSION 1) and the kinds
 * of element and scale codes, in one place that both the C library and the CUDA kernels
 * compile (like decode_bits.h), so the CPU and the GPU cannot drift apart.
 */
#ifndef QMV_COMMON_ORDER_H
#define QMV_COMMON_ORDER_H

/* Elements per chunk: each chunk of a row is summed in order into one lane. */
#define QMVI_CHUNK 32
/* Lane accumulators per row: chunk c goes to lane c mod QMVI_LANES. */
#define QMVI_LANES 128

/* How a mode's element codes and group scales decode (common/format.c's mode traits). */
typedef enum { QMVI_ELEM_UINT, QMVI_ELEM_E2M1, QMVI_ELEM_E4M3 } qmvi_elem_code;
typedef enum { QMVI_SCALE_FLOAT, QMVI_SCALE_E8M0, QMVI_SCALE_E4M3 } qmvi_scale_code;

#ifndef __CUDACC__
/* The fixed reduction tree over the lanes: acc[i] += acc[i + w] for w = 64 .. 1. (The CUDA
 * kernels run the same tree across threads and warps.) */
static inline float qmvi_lane_tree(float *acc)
{
    for (int w = QMVI_LANES / 2; w >= 1; w /= 2)
        for (int i = 0; i < w; i++)
            acc[i] = acc[i] + acc[i + w];
    return acc[0];
}
#endif

#endif /* QMV_COMMON_ORDER_H */
