/*
 * qmv_cuda.h - the CUDA backend of qmv: the matrix-vector product on device pointers.
 *
 * Same problem description as qmv.h (qmv_qmatrix, qmv_vectors), with every data pointer a
 * device pointer, and the same result: the canonical order of docs/ORDER.md, so the output
 * equals qmv_qmv_reference() bit for bit on any GPU and any launch geometry.
 *
 * Calls validate their arguments on the host (shapes, strides, sizes, formats, overlaps) and
 * then only enqueue work on the caller's stream: no allocation, no synchronization and no host
 * read of device memory, so a call can be captured into a CUDA graph. Errors of the kernel
 * itself surface at the caller's next synchronization.
 *
 * This header needs no CUDA header: a cudaStream_t converts to `struct CUstream_st *`
 * implicitly (cudaStream_t is defined as that type). NULL is the legacy default stream.
 */
#ifndef QMV_CUDA_H
#define QMV_CUDA_H

#include "qmv.h"

#ifdef __cplusplus
extern "C" {
#endif

struct CUstream_st;

/*
 * Which kernel runs. Every kernel gives the same bits; they differ only in speed.
 *
 * AUTO picks, in this order: the kernel named by the environment variable QMV_CUDA_KERNEL
 * ("qmv" or "fp_qmv", read once per process; ignored where that kernel cannot run the problem
 * and when it holds any other value), the winner that qmv_cuda_tune() recorded for a problem of
 * the same kind in this process, and else the built-in table keyed by compute capability, mode,
 * M and shape (filled from measurements logged in docs/perf-log.md; current figures in
 * docs/PERFORMANCE.md). QMV_CUDA_FP_GEOMETRY sets fp_qmv's launch geometry wherever fp_qmv
 * runs, a measuring aid: 2x2 or 2x4 (rows per 128-lane set x sets per block; M = 1 with x staged
 * whole only, other calls take the warp kernel) or w2 / w1 (the warp kernel: rows per warp; w1
 * applies to one aligned vector staged whole, other calls use 2 rows per warp). fp_qmv does up to 8
 * vectors per pass over W. Any geometry gives the same bits.
 */
typedef enum {
    QMV_CUDA_KERNEL_AUTO = 0,   /* the library's choice */
    QMV_CUDA_KERNEL_QMV = 1,    /* generic: every mode and bit width */
    QMV_CUDA_KERNEL_FP_QMV = 2, /* mxfp4 / nvfp4 / mxfp8 (K < 2^30), x staged in shared
                                   memory whole or in slices; UNSUPPORTED when named for a
                                   problem it cannot run */
} qmv_cuda_kernel;

/* Options of a CUDA call; NULL means all defaults. struct_size first, zero fields default. */
typedef struct {
    size_t struct_size; /* sizeof(qmv_cuda_options) */
    qmv_cuda_kernel kernel;
} qmv_cuda_options;
#define QMV_CUDA_OPTIONS_INIT {sizeof(qmv_cuda_options), QMV_CUDA_KERNEL_AUTO}

/*
 * qmv_cuda_qmv() - y = x . W^T on the GPU, enqueued on `stream`.
 *
 * w and v describe device memory exactly as for qmv_qmv(); w->global_scale, when not NULL, is
 * a DEVICE pointer to one float read by the kernel (so it is not checked for finiteness).
 * Errors (nothing enqueued): INVALID_ARGUMENT, UNSUPPORTED, BUFFER_TOO_SMALL, OVERFLOW,
 * NO_DEVICE (no usable GPU), DEVICE_ERROR (the launch failed). Thread-safe. Deterministic: the
 * result equals qmv_qmv_reference() bit for bit.
 */
QMV_API qmv_status qmv_cuda_qmv(const qmv_qmatrix *w, const qmv_vectors *v,
                                const qmv_cuda_options *options, struct CUstream_st *stream);

/*
 * qmv_cuda_kernel_select() - the kernel qmv_cuda_qmv() would run for these arguments and
 * options (never AUTO). Validates like qmv_cuda_qmv() and enqueues nothing.
 */
QMV_API qmv_status qmv_cuda_kernel_select(const qmv_qmatrix *w, const qmv_vectors *v,
                                          const qmv_cuda_options *options,
                                          qmv_cuda_kernel *kernel);

/*
 * qmv_cuda_tune() - times every kernel that can run this problem on the current GPU (CUDA
 * events, a few warm-up and `iterations` timed calls each; 0 means 20) and records the faster
 * for problems of the same kind (device, format, x dtype, M and the orders of magnitude of N
 * and K) for the rest of the process, where AUTO then uses it. *chosen (may be NULL) receives
 * the winner. y is written (with the one canonical result). Unlike qmv_cuda_qmv() this call
 * synchronizes with the stream, so it must not be captured into a graph. Thread-safe.
 * Errors: as qmv_cuda_qmv(), and DEVICE_ERROR when a timed call fails.
 */
QMV_API qmv_status qmv_cuda_tune(const qmv_qmatrix *w, const qmv_vectors *v, int iterations,
                                 struct CUstream_st *stream, qmv_cuda_kernel *chosen);

#ifdef __cplusplus
}
#endif

#endif /* QMV_CUDA_H */
