/*
 * fp_qmv_kernel.cu - fp_qmv: the kernel specialized for mxfp4, nvfp4 and mxfp8.
 *
 * Same canonical order as the generic kernel (docs/ORDER.md), so the same bits; what differs
 * is where the work goes. This is the lane-set kernel: one vector per pass with the whole of x
 * staged (launch_fp_qmv sends everything else to fp_qmv_warp_kernel.cu).
 * - x is converted to float once per block and staged in shared memory, chunk-major, each
 *   chunk's 32 floats padded to kXStride = 36 (fp_common.cuh): the padding puts the chunks
 *   that neighbouring threads read in different bank groups, so the 16-byte shared loads do
 *   not conflict and every unit keeps a base plus immediate offsets. A row group reads x with
 *   one 16-byte shared load per four elements, shared by its R rows.
 * - Elements are decoded a code word (8 or 4 elements) at a time by decode_word
 *   (device_common.cuh): integer bit moves and byte permutes build two float16 values per
 *   32-bit operation, widened to float. With float16 x, x is staged multiplied by 2^14 (E2M1)
 *   or 2^8 (E4M3 by the bit decoder), which is exact (|x| <= 65504, so x * 2^14 < 2^31 is
 *   finite, and a power-of-two scaling loses no bit), and the element is used as the half
 *   value * 2^-14 or 2^-8 directly: the product is the same real number, so every fmaf rounds
 *   as the reference's and the half multiply per pair is not needed. bfloat16 / float32 x
 *   could overflow under that scaling and keep the half multiply; on sm_89+ E4M3 decodes by
 *   cvt.rn.f16x2.e4m3x2 and needs no scaling.
 * - The segment's FMA chain (chunk_fma, fp_common.cuh) consumes one word of codes at a time,
 *   so only one word's decoded values are live; the segment count is a compile-time constant.
 *   The bit decoder flags E4M3 NaN codes per word, and a segment holding one is recomputed by
 *   the exact per-element path.
 * - Each thread loads the next chunk's code words and raw scale bytes before computing the
 *   current one (across row groups too: blocks are persistent and walk row groups with a
 *   stride of the grid), so the weight and scale latency overlaps the math.
 * A block holds G sets of 128 threads; set s owns rows s*R .. s*R+R-1 of the block's row
 * group and thread t of a set owns lane t, exactly as in the generic kernel. The lane tree's
 * w = 64 and 32 steps go through shared memory behind a barrier of the set alone, the rest
 * through warp shuffles.
 */
#include <type_traits>

#include "fp_common.cuh"
#include "launch.h"

namespace qmvc {
namespace {

using namespace fp;

/* A barrier of the 128 threads of one lane set (hardware barrier 1 + set, sets 0..3;
 * __syncthreads is barrier 0): the sets' reductions touch only their own rows of red, so a set
 * never waits for the others (with one block-wide barrier, ncu showed 11 % of warp cycles
 * stalled on it). */
__device__ __forceinline__ void set_barrier(int set)
{
    /* Constant barrier ids (a register id would reserve all 16 of the block's barriers). */
    switch (set) {
    case 0:
        asm volatile("bar.sync 1, %0;\n" ::"n"(kLanes) : "memory");
        break;
    case 1:
        asm volatile("bar.sync 2, %0;\n" ::"n"(kLanes) : "memory");
        break;
    case 2:
        asm volatile("bar.sync 3, %0;\n" ::"n"(kLanes) : "memory");
        break;
    default:
        asm volatile("bar.sync 4, %0;\n" ::"n"(kLanes) : "memory");
        break;
    }
}

/* No minimum-blocks bound: capping registers for more warps spilled and did not pay
 * (docs/perf-log.md, "2026-11-27 · 330b1f9 — fp_qmv, the dispatch table"). */
template <int BITS, int ELEM, int SCALE, int SEG, int R, int G, int MB, bool PRE, bool VEC>
__global__ void __launch_bounds__(kLanes *G) fp_qmv_kernel(const Params p)
{
    extern __shared__ float4 xs4[]; /* [MB][nchunks * kXStride] floats */
    float *xs = reinterpret_cast<float *>(xs4);
    __shared__ float red[G][R * MB][kLanes];
    static_assert(G >= 1 && G <= 4, "set_barrier has barriers for 4 sets");
    constexpr int kSegs = kChunk / SEG;
    constexpr float kPre = ELEM == kElemE2M1 ? 16384.0f : 256.0f;
    const int tid = threadIdx.x, lane = tid % kLanes, set = tid / kLanes;
    /* 32-bit chunk indices: x of the whole row fits in shared memory, so K < 2^20. */
    const int nchunks = static_cast<int>((p.k + kChunk - 1) / kChunk);
    const int nfull = static_cast<int>(p.k / kChunk); /* only nvfp4 can end in a half chunk */
    const int k = static_cast<int>(p.k);
    const int64_t ngroups = (p.rows + R * G - 1) / (R * G);

    for (int64_t b = blockIdx.y; b < p.batch; b += gridDim.y) {
        const uint32_t *wb = p.packed + b * p.packed_batch_stride;
        const unsigned char *sb =
            static_cast<const unsigned char *>(p.scales) + b * p.scales_batch_stride;
        for (int64_t j0 = static_cast<int64_t>(blockIdx.z) * MB; j0 < p.m;
             j0 += static_cast<int64_t>(gridDim.z) * MB) {
            const int mb = p.m - j0 < MB ? static_cast<int>(p.m - j0) : MB;
            /* Stage the pass's vectors as float (times 2^S when PRE), zero-padded to whole
             * chunks. The barrier before keeps the previous pass's readers safe. */
            __syncthreads();
            stage_x<PRE && !(ELEM == kElemE4M3 && kE4M3Cvt)>(p, b, j0, mb, MB, kPre, VEC, xs, 0,
                                                              nchunks, nchunks);
            __syncthreads();

            /* Row pointers of a row group for this set; rows past the end re-read the last
             * row (results discarded), so the loads need no branches. */
            const uint32_t *wrow[R];
            const unsigned char *srow[R];
            auto rows_of = [&](int64_t gg, const uint32_t **wr, const unsigned char **sr) {
                const int64_t nn = gg * (R * G) + set * R;
#pragma unroll
                for (int r = 0; r < R; r++) {
                    const int64_t row = nn + r < p.rows ? nn + r : p.rows - 1;
                    wr[r] = wb + row * p.packed_row_stride;
                    sr[r] = sb + row * p.scales_row_stride;
                }
            };
            uint32_t w[R][BITS], sraw[R][kSegs];
            auto fetch = [&](const uint32_t *const *wr, const unsigned char *const *sr,
                             int cc) {
                fetch_chunk<BITS, SEG, R, VEC>(wr, sr, cc, nfull, k, w, sraw);
            };
            int64_t g = blockIdx.x;
            if (g < ngroups) {
                rows_of(g, wrow, srow);
                if (lane < nchunks)
                    fetch(wrow, srow, lane);
            }
            for (; g < ngroups; g += gridDim.x) {
                const int64_t n0 = g * (R * G) + set * R;
                const uint32_t *wnext[R];
                const unsigned char *snext[R];
#pragma unroll
                for (int r = 0; r < R; r++) {
                    wnext[r] = wrow[r];
                    snext[r] = srow[r];
                }
                float acc[R][MB];
#pragma unroll
                for (int r = 0; r < R; r++)
#pragma unroll
                    for (int j = 0; j < MB; j++)
                        acc[r][j] = 0.0f;
#pragma unroll 1
                for (int c = lane; c < nchunks; c += kLanes) {
                    uint32_t wc[R][BITS], sc[R][kSegs];
#pragma unroll
                    for (int r = 0; r < R; r++) {
#pragma unroll
                        for (int t = 0; t < BITS; t++)
                            wc[r][t] = w[r][t];
#pragma unroll
                        for (int s = 0; s < kSegs; s++)
                            sc[r][s] = sraw[r][s];
                    }
                    /* The next chunk's loads go out before this chunk's math. */
                    if (c + kLanes < nchunks) {
                        fetch(wrow, srow, c + kLanes);
                    } else if (g + gridDim.x < ngroups) {
                        rows_of(g + gridDim.x, wnext, snext);
                        fetch(wnext, snext, lane);
                    }
                    const int len = SEG == kChunk || c < nfull ? kChunk : k - c * kChunk;
                    chunk_fma<BITS, SCALE, SEG, R, MB, PRE>(wc, sc, xs + c * kXStride,
                                                            nchunks * kXStride, len, acc);
                }
                if (g + gridDim.x < ngroups) {
#pragma unroll
                    for (int r = 0; r < R; r++) {
                        wrow[r] = wnext[r];
                        srow[r] = snext[r];
                    }
                }

                /* The lane tree of each set: w = 64, 32 through shared memory, then shuffles. */
#pragma unroll
                for (int i = 0; i < R * MB; i++)
                    red[set][i][lane] = acc[i / MB][i % MB];
                set_barrier(set);
                if (lane < 64) {
#pragma unroll
                    for (int i = 0; i < R * MB; i++)
                        red[set][i][lane] = __fadd_rn(red[set][i][lane], red[set][i][lane + 64]);
                }
                set_barrier(set);
                if (lane < 32) {
#pragma unroll
                    for (int i = 0; i < R * MB; i++) {
                        const int r = i / MB, j = i % MB;
                        float a = __fadd_rn(red[set][i][lane], red[set][i][lane + 32]);
#pragma unroll
                        for (int off = 16; off >= 1; off >>= 1)
                            a = __fadd_rn(a, __shfl_down_sync(0xFFFFFFFFu, a, off));
                        if (lane == 0 && n0 + r < p.rows && j < mb) {
                            if (p.gscale)
                                a = __fmul_rn(a, __fdiv_rn(*p.gscale, 2688.0f));
                            store_result(p.y_dtype, p.y,
                                         b * p.y_batch_stride + (j0 + j) * p.y_row_stride +
                                             n0 + r,
                                         a);
                        }
                    }
                }
                set_barrier(set); /* red is reused by the next row group */
            }
        }
    }
}

template <int BITS, int ELEM, int SCALE, int SEG, int R, int G, int MB, bool PRE, bool VEC>
cudaError_t launch_kernel(const Params &p, cudaStream_t stream)
{
    static std::atomic<uint64_t> opted{0};
    static std::atomic<int64_t> cache{0};
    return launch_persistent(fp_qmv_kernel<BITS, ELEM, SCALE, SEG, R, G, MB, PRE, VEC>, opted,
                             cache, kLanes * G, staged_bytes(p, MB),
                             (p.rows + R * G - 1) / (R * G), p, MB, stream);
}

/* Geometry to instantiations (one vector per pass: launch_fp_qmv sends M > 1 to the warp
 * kernel): 2x4, measured best, and 2x2; 4x2 lost everywhere (docs/perf-log.md,
 * "2026-11-27 · 330b1f9 — fp_qmv, the dispatch table"). */
template <int BITS, int ELEM, int SCALE, int SEG, bool PRE>
cudaError_t launch_pre(const Params &p, bool vec, FpGeometry g, cudaStream_t s)
{
    if (!vec)
        return launch_kernel<BITS, ELEM, SCALE, SEG, 2, 2, 1, PRE, false>(p, s);
    if (g.rows == 2 && g.sets == 2)
        return launch_kernel<BITS, ELEM, SCALE, SEG, 2, 2, 1, PRE, true>(p, s);
    return launch_kernel<BITS, ELEM, SCALE, SEG, 2, 4, 1, PRE, true>(p, s); /* measured best */
}

template <int BITS, int ELEM, int SCALE, int SEG>
cudaError_t launch_fmt(const Params &p, bool vec, FpGeometry g, cudaStream_t s)
{
    return p.x_dtype == QMV_DTYPE_F16 ? launch_pre<BITS, ELEM, SCALE, SEG, true>(p, vec, g, s)
                                      : launch_pre<BITS, ELEM, SCALE, SEG, false>(p, vec, g, s);
}

} // namespace

const char *fp_qmv_unsupported(const qmv_format &f, const Params &p)
{
    if (f.mode != QMV_MODE_MXFP4 && f.mode != QMV_MODE_NVFP4 && f.mode != QMV_MODE_MXFP8)
        return "fp_qmv runs only mxfp4, nvfp4 and mxfp8";
    if (p.k >= (int64_t{1} << 30))
        return "fp_qmv indexes K in 32 bits: K must be below 2^30";
    return nullptr;
}

cudaError_t launch_fp_qmv(const qmv_format &f, const Params &p, bool vec, FpGeometry g,
                          cudaStream_t s)
{
    /* The lane-set kernel does one vector per pass with the whole of x staged; everything
     * else (M > 1: one pass of up to 8 vectors; K too long to stage whole) is the warp
     * kernel's. */
    const size_t limit = smem_optin_limit();
    const bool lane_set = g.warps == 0 && p.m == 1 && limit > kStaticReserve &&
                          staged_bytes(p, 1) <= limit - kStaticReserve;
    if (!lane_set)
        return launch_fp_qmv_warp(f, p, vec, g.warps > 0 ? g : FpGeometry{2, 0, 16}, s);
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
