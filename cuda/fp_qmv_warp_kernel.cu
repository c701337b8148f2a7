/*
 * fp_qmv_warp_kernel.cu - fp_qmv with one warp per row group: the layout for large N.
 *
 * Same canonical order (docs/ORDER.md), same decoders and staged x as the lane-set kernel
 * (fp_common.cuh); what differs is who owns the 128 lanes of a row. Here thread t of a warp
 * owns lanes t, t + 32, t + 64 and t + 96 of each of the warp's R rows, so it visits chunks
 * t, t + 32, t + 64, ... (chunk c belongs to lane c mod 128) in increasing order, exactly as
 * the order wants. The first two steps of the lane tree (w = 64, 32) are then additions inside
 * the thread and the other five are warp shuffles: a row group needs no shared memory and no
 * barrier at all (the lane-set kernel spent about 12 % of its warp cycles waiting at the
 * reduction's barriers, docs/PERF.md), and a warp's 32 threads read 32 consecutive chunks, so
 * its weight loads stay contiguous.
 *
 * The chunk loop is unrolled by four (the four lanes of a thread, so the accumulator index is
 * a constant) and alternates two register buffers: chunk i + 1's loads go out into one while
 * chunk i is computed from the other, with no register copies between them.
 */
#include "fp_common.cuh"
#include "launch.h"

namespace qmvc {
namespace {

using namespace fp;

template <int BITS, int ELEM, int SCALE, int SEG, int R, int WARPS, int MB, bool PRE, bool VEC>
__global__ void __launch_bounds__(32 * WARPS) fp_qmv_warp_kernel(const Params p)
{
    extern __shared__ float4 xs4[]; /* [MB][nchunks * kXStride] floats */
    float *xs = reinterpret_cast<float *>(xs4);
    constexpr int kSegs = kChunk / SEG;
    constexpr float kPre = ELEM == kElemE2M1 ? 16384.0f : 256.0f;
    const int t = threadIdx.x % 32, warp = threadIdx.x / 32;
    /* 32-bit chunk indices: x of the whole row fits in shared memory, so K < 2^20. */
    const int nchunks = static_cast<int>((p.k + kChunk - 1) / kChunk);
    const int nfull = static_cast<int>(p.k / kChunk); /* only nvfp4 can end in a half chunk */
    const int k = static_cast<int>(p.k);
    const int64_t ngroups = (p.rows + R - 1) / R;
    const int64_t gstep = static_cast<int64_t>(gridDim.x) * WARPS;
    /* Chunks this thread visits per row group (the same for every group). */
    const int mine = t < nchunks ? (nchunks - 1 - t) / 32 + 1 : 0;

    for (int64_t b = blockIdx.y; b < p.batch; b += gridDim.y) {
        const uint32_t *wb = p.packed + b * p.packed_batch_stride;
        const unsigned char *sb =
            static_cast<const unsigned char *>(p.scales) + b * p.scales_batch_stride;
        for (int64_t j0 = static_cast<int64_t>(blockIdx.z) * MB; j0 < p.m;
             j0 += static_cast<int64_t>(gridDim.z) * MB) {
            const int mb = p.m - j0 < MB ? static_cast<int>(p.m - j0) : MB;
            __syncthreads(); /* the previous pass's readers of xs are done */
            stage_x<PRE && !(ELEM == kElemE4M3 && kE4M3Cvt)>(p, b, j0, mb, kPre, VEC, xs,
                                                              nchunks);
            __syncthreads();

            /* Rows past the end re-read the last row (results discarded): no load branches. */
            auto rows_of = [&](int64_t gg, const uint32_t **wr, const unsigned char **sr) {
#pragma unroll
                for (int r = 0; r < R; r++) {
                    const int64_t row = gg * R + r < p.rows ? gg * R + r : p.rows - 1;
                    wr[r] = wb + row * p.packed_row_stride;
                    sr[r] = sb + row * p.scales_row_stride;
                }
            };
            const uint32_t *wrow[R], *wnext[R];
            const unsigned char *srow[R], *snext[R];
            uint32_t wa[R][BITS], sa[R][kSegs], wbuf[R][BITS], sbuf[R][kSegs];
            int64_t g = static_cast<int64_t>(blockIdx.x) * WARPS + warp;
            if (g < ngroups) {
                rows_of(g, wrow, srow);
                if (mine)
                    fetch_chunk<BITS, SEG, R, VEC>(wrow, srow, t, nfull, k, wa, sa);
            }
            for (; g < ngroups; g += gstep) {
                const bool more = g + gstep < ngroups;
                if (more)
                    rows_of(g + gstep, wnext, snext);
                float acc[4][R][MB];
#pragma unroll
                for (int q = 0; q < 4; q++)
#pragma unroll
                    for (int r = 0; r < R; r++)
#pragma unroll
                        for (int j = 0; j < MB; j++)
                            acc[q][r][j] = 0.0f;
                /* Visit i of this thread (chunk t + 32 i, lane (i mod 4) * 32 + t) computes from
                 * buffer `cur` after sending visit i + 1's loads into `nxt`: the next chunk of
                 * the row group, or the first chunk of the next row group. */
                auto visit = [&](int i, int q, uint32_t(&wc)[R][BITS], uint32_t(&sc)[R][kSegs],
                                 uint32_t(&wn)[R][BITS], uint32_t(&sn)[R][kSegs]) {
                    const int c = t + 32 * i;
                    if (i + 1 < mine)
                        fetch_chunk<BITS, SEG, R, VEC>(wrow, srow, c + 32, nfull, k, wn, sn);
                    else if (more)
                        fetch_chunk<BITS, SEG, R, VEC>(wnext, snext, t, nfull, k, wn, sn);
                    const int len = SEG == kChunk || c < nfull ? kChunk : k - c * kChunk;
                    chunk_fma<BITS, SCALE, SEG, R, MB, PRE>(wc, sc, xs + c * kXStride,
                                                            nchunks * kXStride, len, acc[q]);
                };
#pragma unroll 1
                for (int i = 0; i < mine; i += 4) {
                    visit(i, 0, wa, sa, wbuf, sbuf);
                    if (i + 1 < mine)
                        visit(i + 1, 1, wbuf, sbuf, wa, sa);
                    if (i + 2 < mine)
                        visit(i + 2, 2, wa, sa, wbuf, sbuf);
                    if (i + 3 < mine)
                        visit(i + 3, 3, wbuf, sbuf, wa, sa);
                }
                /* After an odd number of visits the next group's first chunk is in the second
                 * buffer; every group starts from the first. */
                if (mine % 2) {
#pragma unroll
                    for (int r = 0; r < R; r++) {
#pragma unroll
                        for (int w = 0; w < BITS; w++)
                            wa[r][w] = wbuf[r][w];
#pragma unroll
                        for (int s = 0; s < kSegs; s++)
                            sa[r][s] = sbuf[r][s];
                    }
                }

                /* The lane tree: w = 64 and 32 inside the thread, 16 .. 1 by shuffles. */
                float res[R][MB];
#pragma unroll
                for (int r = 0; r < R; r++)
#pragma unroll
                    for (int j = 0; j < MB; j++) {
                        float a = __fadd_rn(__fadd_rn(acc[0][r][j], acc[2][r][j]),
                                            __fadd_rn(acc[1][r][j], acc[3][r][j]));
#pragma unroll
                        for (int off = 16; off >= 1; off >>= 1)
                            a = __fadd_rn(a, __shfl_down_sync(0xFFFFFFFFu, a, off));
                        res[r][j] = a;
                    }
                if (t == 0) {
#pragma unroll
                    for (int r = 0; r < R; r++)
#pragma unroll
                        for (int j = 0; j < MB; j++) {
                            float a = res[r][j];
                            if (g * R + r >= p.rows || j >= mb)
                                continue;
                            if (p.gscale)
                                a = __fmul_rn(a, __fdiv_rn(*p.gscale, 2688.0f));
                            store_result(p.y_dtype, p.y,
                                         b * p.y_batch_stride + (j0 + j) * p.y_row_stride +
                                             g * R + r,
                                         a);
                        }
                }
                if (more) {
#pragma unroll
                    for (int r = 0; r < R; r++) {
                        wrow[r] = wnext[r];
                        srow[r] = snext[r];
                    }
                }
            }
        }
    }
}

template <int BITS, int ELEM, int SCALE, int SEG, int R, int WARPS, int MB, bool PRE, bool VEC>
cudaError_t launch_kernel(const Params &p, cudaStream_t stream)
{
    auto kernel = fp_qmv_warp_kernel<BITS, ELEM, SCALE, SEG, R, WARPS, MB, PRE, VEC>;
    const size_t smem = staged_bytes(p, MB);
    static std::atomic<uint64_t> opted{0};
    const cudaError_t e = opt_in_smem(kernel, opted);
    if (e != cudaSuccess)
        return e;
    static std::atomic<int64_t> cache{0};
    const int64_t resident = resident_blocks(kernel, 32 * WARPS, smem, cache);
    if (resident < 1) {
        const cudaError_t le = cudaGetLastError();
        return le != cudaSuccess ? le : cudaErrorInvalidConfiguration;
    }
    /* Row groups are handed out per warp: blocks = groups / WARPS at most. */
    const int64_t groups = ((p.rows + R - 1) / R + WARPS - 1) / WARPS;
    const dim3 grid = persistent_grid(resident, groups, p, MB);
    kernel<<<grid, 32 * WARPS, smem, stream>>>(p);
    return cudaGetLastError();
}

/* Geometry to instantiations: 2 rows x 16 warps, or 1 row per warp when g asks for it (one
 * aligned vector only). Loads sent two chunks ahead (three register buffers) spilled at the
 * 128-register bound of 16 warps per SM and ran 12-65 % slower (docs/PERF.md). */
template <int BITS, int ELEM, int SCALE, int SEG, bool PRE>
cudaError_t launch_pre(const Params &p, bool vec, FpGeometry g, cudaStream_t s)
{
    const int mb = pass_vectors(p);
    if (!vec)
        return mb == 2 ? launch_kernel<BITS, ELEM, SCALE, SEG, 2, 16, 2, PRE, false>(p, s)
                       : launch_kernel<BITS, ELEM, SCALE, SEG, 2, 16, 1, PRE, false>(p, s);
    if (mb == 2)
        return launch_kernel<BITS, ELEM, SCALE, SEG, 2, 16, 2, PRE, true>(p, s);
    if (g.rows == 1)
        return launch_kernel<BITS, ELEM, SCALE, SEG, 1, 16, 1, PRE, true>(p, s);
    return launch_kernel<BITS, ELEM, SCALE, SEG, 2, 16, 1, PRE, true>(p, s);
}

template <int BITS, int ELEM, int SCALE, int SEG>
cudaError_t launch_fmt(const Params &p, bool vec, FpGeometry g, cudaStream_t s)
{
    return p.x_dtype == QMV_DTYPE_F16 ? launch_pre<BITS, ELEM, SCALE, SEG, true>(p, vec, g, s)
                                      : launch_pre<BITS, ELEM, SCALE, SEG, false>(p, vec, g, s);
}

} // namespace

cudaError_t launch_fp_qmv_warp(const qmv_format &f, const Params &p, bool vec, FpGeometry g,
                               cudaStream_t s)
{
    switch (f.mode) {
    case QMV_MODE_MXFP4:
        return launch_fmt<4, kElemE2M1, kScaleE8M0, 32>(p, vec, g, s);
    case QMV_MODE_NVFP4:
        return launch_fmt<4, kElemE2M1, kScaleE4M3, 16>(p, vec, g, s);
    default:
        return launch_fmt<8, kElemE4M3, kScaleE8M0, 32>(p, vec, g, s);
    }
}

} // namespace qmvc
