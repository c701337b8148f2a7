/*
 * qmv_kernel.cu - the generic qmv kernel: every mode and bit width, every x/y dtype.
 *
 * The kernel follows the canonical order of docs/ORDER.md exactly, so its result equals the
 * CPU reference bit for bit: a block of 128 threads owns a few rows and thread t owns lane t
 * (chunks t, t + 128, ...), fused multiply-adds are written as __fmaf_rn and additions as
 * __fadd_rn, and the lane tree runs through shared memory (w = 64, 32) and warp shuffles
 * (w = 16 .. 1). Up to 8 vectors share one pass over the weights; larger M loops.
 */
#include <type_traits>

#include "device_common.cuh"
#include "launch.h"

namespace qmvc {
namespace {

/*
 * The qmv kernel. A block of 128 threads owns R consecutive rows, and thread t owns lane t:
 * chunks t, t + 128, t + 256, ... of every row, visited in order (the next chunk's weights are
 * loaded before the current chunk's math). Small N still fills the GPU, since a row is split
 * over the four warps; the lane tree then runs through shared memory for its two top levels
 * (w = 64, 32) and through warp shuffles for the rest, in exactly the canonical order.
 * MB <= 2: each vector's x chunk is loaded and converted once and used for all R rows.
 * MB > 2: x is reloaded (from L1) per row, to keep registers for the accumulators.
 */
template <int BITS, int ELEM, int SCALE, int SEG, int R, int MB, bool VEC>
__global__ void __launch_bounds__(kLanes) qmv_kernel(const Params p)
{
    __shared__ float red[R * MB][kLanes];
    const int tid = threadIdx.x;
    const int64_t nchunks = (p.k + kChunk - 1) / kChunk;
    const int64_t nfull = p.k / kChunk; /* chunks of 32; only nvfp4 can end in a half chunk */
    const int64_t xsize = p.x_dtype == QMV_DTYPE_F32 ? 4 : 2;
    constexpr bool kXReg = MB <= 2;

    const int64_t ngroups = (p.rows + R - 1) / R;
    for (int64_t b = blockIdx.y; b < p.batch; b += gridDim.y) {
        const uint32_t *wb = p.packed + b * p.packed_batch_stride;
        for (int64_t j0 = static_cast<int64_t>(blockIdx.z) * MB; j0 < p.m;
             j0 += static_cast<int64_t>(gridDim.z) * MB) {
            const int mb = p.m - j0 < MB ? static_cast<int>(p.m - j0) : MB;
            const char *xb = static_cast<const char *>(p.x) +
                             (b * p.x_batch_stride + j0 * p.x_row_stride) * xsize;
            /* Persistent blocks: row groups blockIdx.x, + gridDim.x, ...; the weights of the
             * next (group, chunk) are always in flight while the current chunk computes. */
            int64_t g = blockIdx.x, c = tid;
            constexpr int kSegs = kChunk / SEG;
            uint32_t w[R][BITS], sraw[R][kSegs], braw[R][kSegs];
            /* Rows past the end re-read the last row (results discarded): no branches. */
            auto fetch = [&](int64_t gg, int64_t cc) {
                const int64_t nn = gg * R;
                const int last = p.rows - nn < R ? static_cast<int>(p.rows - nn) - 1 : R - 1;
                const int len = cc < nfull ? kChunk : static_cast<int>(p.k - cc * kChunk);
                const int nw = len * BITS / 32;
#pragma unroll
                for (int r = 0; r < R; r++) {
                    const int64_t row = nn + (r < last ? r : last);
                    load_chunk<BITS, VEC>(wb + row * p.packed_row_stride, cc, nw, w[r]);
                    const int64_t si = b * p.scales_batch_stride + row * p.scales_row_stride;
#pragma unroll
                    for (int s = 0; s < kSegs; s++) {
                        /* a half chunk's second segment does not exist: reuse the first */
                        const int64_t g = (cc * kChunk + (s * SEG < len ? s * SEG : 0)) >>
                                          p.group_shift;
                        sraw[r][s] = load_raw<SCALE>(p.scale_dtype, p.scales, si + g);
                        if (SCALE == kScaleFloat)
                            braw[r][s] = load_raw<SCALE>(p.scale_dtype, p.biases, si + g);
                    }
                }
            };
            if (g < ngroups && c < nchunks)
                fetch(g, c);
            for (; g < ngroups; g += gridDim.x) {
                const int64_t n0 = g * R;
                const int nr = p.rows - n0 < R ? static_cast<int>(p.rows - n0) : R;
                float acc[R][MB];
#pragma unroll
                for (int r = 0; r < R; r++)
#pragma unroll
                    for (int j = 0; j < MB; j++)
                        acc[r][j] = 0.0f;
#pragma unroll 1
                for (c = tid; c < nchunks; c += kLanes) {
                    const int64_t k0 = c * kChunk;
                    uint32_t wc[R][BITS], sc[R][kSegs], bc[R][kSegs];
#pragma unroll
                    for (int r = 0; r < R; r++) {
#pragma unroll
                        for (int t = 0; t < BITS; t++)
                            wc[r][t] = w[r][t];
#pragma unroll
                        for (int t = 0; t < kSegs; t++) {
                            sc[r][t] = sraw[r][t];
                            bc[r][t] = SCALE == kScaleFloat ? braw[r][t] : 0u;
                        }
                    }
                    if (c + kLanes < nchunks)
                        fetch(g, c + kLanes);
                    else if (g + gridDim.x < ngroups)
                        fetch(g + gridDim.x, tid);
                    /* Whole chunks take the branch-free path; only nvfp4's last half chunk
                     * takes the general one. */
                    auto body = [&](auto full_t) {
                        constexpr bool kFull = decltype(full_t)::value;
                        const int len = kFull ? kChunk : static_cast<int>(p.k - k0);
                        float xf[kXReg ? MB : 1][kChunk], xs[kXReg ? MB : 1][kChunk / SEG];
                        if (kXReg) {
#pragma unroll
                            for (int j = 0; j < (kXReg ? MB : 1); j++) {
                                load_x_chunk<VEC>(p.x_dtype,
                                                  xb + (j < mb ? j : 0) * p.x_row_stride * xsize,
                                                  k0, len, xf[j]);
                                if (SCALE == kScaleFloat)
                                    segment_sums<SEG>(xf[j], xs[j]);
                            }
                        }
#pragma unroll
                        for (int r = 0; r < R; r++) {
                            float v[kChunk];
                            decode_chunk<BITS, ELEM>(wc[r], v);
#pragma unroll
                            for (int j = 0; j < MB; j++) {
                                if (kXReg) {
                                    acc[r][j] = chunk_dot<SCALE, SEG>(p, xf[j], xs[j], v, sc[r],
                                                                      bc[r], len, acc[r][j]);
                                } else {
                                    if (j >= mb)
                                        continue;
                                    float xr[kChunk], xsr[kChunk / SEG];
                                    load_x_chunk<VEC>(p.x_dtype,
                                                      xb + j * p.x_row_stride * xsize, k0, len,
                                                      xr);
                                    if (SCALE == kScaleFloat)
                                        segment_sums<SEG>(xr, xsr);
                                    acc[r][j] = chunk_dot<SCALE, SEG>(p, xr, xsr, v, sc[r],
                                                                      bc[r], len, acc[r][j]);
                                }
                            }
                        }
                    };
                    if (c < nfull)
                        body(std::true_type{});
                    else
                        body(std::false_type{});
                }

                /* The lane tree: w = 64 and 32 through shared memory, 16 .. 1 by shuffles. */
#pragma unroll
                for (int r = 0; r < R; r++)
#pragma unroll
                    for (int j = 0; j < MB; j++)
                        red[r * MB + j][tid] = acc[r][j];
                __syncthreads();
                if (tid < 64) {
#pragma unroll
                    for (int i = 0; i < R * MB; i++)
                        red[i][tid] = __fadd_rn(red[i][tid], red[i][tid + 64]);
                }
                __syncthreads();
                if (tid < 32) {
#pragma unroll
                    for (int r = 0; r < R; r++) {
#pragma unroll
                        for (int j = 0; j < MB; j++) {
                            float a = __fadd_rn(red[r * MB + j][tid], red[r * MB + j][tid + 32]);
#pragma unroll
                            for (int off = 16; off >= 1; off >>= 1)
                                a = __fadd_rn(a, __shfl_down_sync(0xFFFFFFFFu, a, off));
                            if (tid == 0 && r < nr && j < mb) {
                                if (p.gscale)
                                    a = __fmul_rn(a, __fdiv_rn(*p.gscale, 2688.0f));
                                store_result(p.y_dtype, p.y,
                                             b * p.y_batch_stride + (j0 + j) * p.y_row_stride +
                                                 n0 + r,
                                             a);
                            }
                        }
                    }
                }
                __syncthreads(); /* red is reused by the next row group */
            }
        }
    }
}

/* Launch geometry of a vector count: rows per warp and vectors per pass. */
struct Shape {
    int rows_per_warp, vec_block;
};

inline Shape shape_for(int64_t m)
{
    if (m == 1)
        return {2, 1}; /* rows per block chosen per format in launch() */
    if (m == 2)
        return {2, 2};
    return {1, 8};
}


template <int BITS, int ELEM, int SCALE, int SEG, int R, int MB, bool VEC>
cudaError_t launch_kernel(const Params &p, cudaStream_t stream)
{
    auto kernel = qmv_kernel<BITS, ELEM, SCALE, SEG, R, MB, VEC>;
    /* Enough blocks to fill the device once, spread over the batch and vector blocks. */
    static std::atomic<int64_t> cache{0};
    const int64_t resident = resident_blocks(kernel, kLanes, 0, cache);
    if (resident < 1) {
        const cudaError_t e = cudaGetLastError();
        return e != cudaSuccess ? e : cudaErrorInvalidConfiguration;
    }
    const dim3 grid = persistent_grid(resident, (p.rows + R - 1) / R, p, MB);
    kernel<<<grid, kLanes, 0, stream>>>(p);
    return cudaGetLastError();
}

template <int BITS, int ELEM, int SCALE, int SEG, int R, int MB>
cudaError_t launch_rm(const Params &p, bool vec, cudaStream_t stream)
{
    return vec ? launch_kernel<BITS, ELEM, SCALE, SEG, R, MB, true>(p, stream)
               : launch_kernel<BITS, ELEM, SCALE, SEG, R, MB, false>(p, stream);
}

template <int BITS, int ELEM, int SCALE, int SEG>
cudaError_t launch(const Params &p, bool vec, cudaStream_t stream)
{
    const Shape s = shape_for(p.m);
    /* One vector: 4 rows per block where the bias sums of x are worth sharing (affine, up to
     * 4 bits), else 2 rows for fewer registers and more warps (measured: docs/perf-log.md,
     * "2026-11-27 · ffb9b88 — CUDA qmv kernel iterations, all on one kind of card"). */
    if (s.vec_block == 1)
        return SCALE == kScaleFloat && BITS <= 4
                   ? launch_rm<BITS, ELEM, SCALE, SEG, 4, 1>(p, vec, stream)
                   : launch_rm<BITS, ELEM, SCALE, SEG, 2, 1>(p, vec, stream);
    if (s.vec_block == 2)
        return launch_rm<BITS, ELEM, SCALE, SEG, 2, 2>(p, vec, stream);
    return launch_rm<BITS, ELEM, SCALE, SEG, 1, 8>(p, vec, stream);
}

} // namespace

cudaError_t launch_qmv(const qmv_format &f, const Params &p, bool vec, cudaStream_t s)
{
    switch (f.mode) {
    case QMV_MODE_MXFP4:
        return launch<4, kElemE2M1, kScaleE8M0, 32>(p, vec, s);
    case QMV_MODE_NVFP4:
        return launch<4, kElemE2M1, kScaleE4M3, 16>(p, vec, s);
    case QMV_MODE_MXFP8:
        return launch<8, kElemE4M3, kScaleE8M0, 32>(p, vec, s);
    default:
        break;
    }
    switch (f.bits) {
    case 2:
        return launch<2, kElemUint, kScaleFloat, 32>(p, vec, s);
    case 3:
        return launch<3, kElemUint, kScaleFloat, 32>(p, vec, s);
    case 4:
        return launch<4, kElemUint, kScaleFloat, 32>(p, vec, s);
    case 5:
        return launch<5, kElemUint, kScaleFloat, 32>(p, vec, s);
    case 6:
        return launch<6, kElemUint, kScaleFloat, 32>(p, vec, s);
    case 8:
        return launch<8, kElemUint, kScaleFloat, 32>(p, vec, s);
    default: /* prepare() refuses the widths without a kernel */
        return cudaErrorInvalidValue;
    }
}

/* 1 when p is a multiple of 16 bytes and each stride (in elements of size es) keeps it so. */

} // namespace qmvc
