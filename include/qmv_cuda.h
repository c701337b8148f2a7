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

/* Which kernel runs. Every kernel gives the same bits; they differ only in speed. */
typedef enum {
    QMV_CUDA_KERNEL_AUTO = 0, /* the library's choice */
    QMV_CUDA_KERNEL_QMV = 1,  /* generic: every mode and bit width */
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

#ifdef __cplusplus
}
#endif

#endif /* QMV_CUDA_H */
