/*
 * launch.h - the kernels' launchers, as the dispatcher (dispatch.cu) sees them. Every launcher
 * only enqueues work on the stream (graph-capturable) and returns the launch's error.
 */
#ifndef QMV_CUDA_LAUNCH_H
#define QMV_CUDA_LAUNCH_H

#include <cuda_runtime.h>

#include "device_common.cuh"
#include "qmv.h"

namespace qmvc {

/* The fp_qmv launch geometry: with warps == 0 the lane-set kernel, R = rows rows per 128-lane
 * set and G = sets sets per block (128 * G threads); with warps > 0 the warp kernel, `rows`
 * rows per warp and `warps` warps per block. */
struct FpGeometry {
    int rows, sets, warps;
};

/* The generic kernel: every format. vec: W and x rows are 16-byte aligned. */
cudaError_t launch_qmv(const qmv_format &f, const Params &p, bool vec, cudaStream_t s);

/* fp_qmv runs mxfp4, nvfp4 and mxfp8 with x staged in shared memory, whole or in slices, for
 * K < 2^30. Returns 0 when it can run p, else the reason (static text). */
const char *fp_qmv_unsupported(const qmv_format &f, const Params &p);

/* Launches fp_qmv (fp_qmv_unsupported(f, p) must be NULL) with geometry g, or the built-in
 * choice when g.rows == 0. */
cudaError_t launch_fp_qmv(const qmv_format &f, const Params &p, bool vec, FpGeometry g,
                          cudaStream_t s);

/* The warp kernel of fp_qmv (fp_qmv_warp_kernel.cu); launch_fp_qmv calls it for g.warps > 0. */
cudaError_t launch_fp_qmv_warp(const qmv_format &f, const Params &p, bool vec, FpGeometry g,
                               cudaStream_t s);

} // namespace qmvc

#endif /* QMV_CUDA_LAUNCH_H */
