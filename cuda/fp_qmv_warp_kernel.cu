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
 * reduction's barriers: docs/perf-log.md, "2026-11-27 · 263acbd — fp_qmv: the warp kernel,
 * PRMT decode, vector staging"), and a warp's 32 threads read 32 consecutive chunks, so its
 * weight loads stay contiguous.
 *
 * The chunk loop is unrolled by four (the four lanes of a thread, so the accumulator index is
 * a constant) and alternates two register buffers: chunk i + 1's loads go out into one while
 * chunk i is computed from the other, with no register copies between them.
 *
 * One pass takes up to 8 vectors (MB in 1, 2, 4, 8), so W is read once for M <= 8. When the
 * pass's vectors fit shared memory whole (as floats) they are staged once per pass; otherwise
 * (SLICED) x goes through in slices of 16384 elements in all: every warp of the block walks
 * its row group's chunks in step, the slice's raw bytes arrive by asynchronous copies
 * (cp.async) while the previous slice is computed, and one barrier pair per slice converts
 * them to floats. Weight loads run ahead across slice boundaries as everywhere else.
 */
#include "fp_common.cuh"
#include "launch.h"

namespace qmvc {
namespace {

using namespace fp;

template <int BITS, int ELEM, int SCALE, int SEG, int R, int WARPS, int MB, bool PRE, bool VEC,
          bool SLICED>
__global__ void __launch_bounds__(32 * WARPS) fp_qmv_warp_kernel(const Params p)
{
    extern __shared__ float4 xs4[]; /* whole: [MB][nchunks * kXStride] floats; SLICED: the
                                       float slice [MB][kSc * kXStride], then 2 raw slices */
    float *xs = reinterpret_cast<float *>(xs4);
    constexpr int kSegs = kChunk / SEG;
    constexpr float kPre = ELEM == kElemE2M1 ? 16384.0f : 256.0f;
    constexpr bool kScaled = PRE && !(ELEM == kElemE4M3 && kE4M3Cvt);
    constexpr int kSc = kSliceElems / kChunk / MB; /* chunks per slice */
    constexpr int kSv = kSc / 32;                  /* visits of a thread per slice */
    static_assert(kSv >= 1 && kSc % 32 == 0, "MB is 1, 2, 4 or 8");
    const int t = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int nchunks = static_cast<int>((p.k + kChunk - 1) / kChunk); /* K < 2^30 */
    const int nfull = static_cast<int>(p.k / kChunk); /* only nvfp4 can end in a half chunk */
    const int k = static_cast<int>(p.k);
    const int xstride = (SLICED ? kSc : nchunks) * kXStride; /* between staged vectors */
    const int xsize = p.x_dtype == QMV_DTYPE_F32 ? 4 : 2;
    char *raw = reinterpret_cast<char *>(xs + MB * kSc * kXStride);
    const int rawbytes = kSliceElems * xsize;
    const int64_t ngroups = (p.rows + R - 1) / R;
    const int64_t gstep = static_cast<int64_t>(gridDim.x) * WARPS;
    /* Chunks this thread visits per row group (the same for every group), and the most any
     * thread of the block visits (thread 0's): the sliced loop's trip count. */
    const int mine = t < nchunks ? (nchunks - 1 - t) / 32 + 1 : 0;
    const int maxv = (nchunks + 31) / 32;
    const int nslices = (nchunks + kSc - 1) / kSc;

    for (int64_t b = blockIdx.y; b < p.batch; b += gridDim.y) {
        const uint32_t *wb = p.packed + b * p.packed_batch_stride;
        const unsigned char *sb =
            static_cast<const unsigned char *>(p.scales) + b * p.scales_batch_stride;
        for (int64_t j0 = static_cast<int64_t>(blockIdx.z) * MB; j0 < p.m;
             j0 += static_cast<int64_t>(gridDim.z) * MB) {
            const int mb = p.m - j0 < MB ? static_cast<int>(p.m - j0) : MB;
            __syncthreads(); /* the previous pass's readers of xs are done */
            /* Raw slices alternate between the two buffers in the order they are sent. x
             * of the pass's first vector; bfloat16 unless float16 (PRE) or float32. */
            const int xdt = xsize == 4 ? QMV_DTYPE_F32 : PRE ? QMV_DTYPE_F16 : QMV_DTYPE_BF16;
            const char *xpass = x_row(p, b, j0, xsize);
            const int64_t row_bytes = p.x_row_stride * xsize;
            int seq = 0;
            auto fetch_slice = [&](int s, int buf) {
                const int64_t e0 = static_cast<int64_t>(s) * kSc * kChunk;
                char *dst = raw + buf * rawbytes;
                if (xsize == 4)
                    slice_fetch<4, MB, 32 * WARPS>(xpass + e0 * 4, row_bytes, mb,
                                                   (p.k - e0) * 4, dst);
                else
                    slice_fetch<2, MB, 32 * WARPS>(xpass + e0 * 2, row_bytes, mb,
                                                   (p.k - e0) * 2, dst);
                cp_async_commit();
            };
            if (!SLICED) {
                stage_x<kScaled>(p, b, j0, mb, MB, kPre, VEC, xs, 0, nchunks, nchunks);
                __syncthreads();
            } else if (VEC && nslices > 0) {
                fetch_slice(0, 0);
            }
            /* Makes slice s the staged one; `again`: the block visits slice 0 again after
             * this (another row group follows), so its bytes may be sent ahead. */
            auto ready = [&](int s, bool again) {
                if (VEC) {
                    cp_async_wait_all();
                    __syncthreads(); /* slice s's bytes are in; slice s - 1 is computed */
                    const char *src = raw + (seq & 1) * rawbytes;
                    if (xsize == 4)
                        slice_convert<4, false, MB, 32 * WARPS>(src, xdt, kPre, xs);
                    else
                        slice_convert<2, kScaled, MB, 32 * WARPS>(src, xdt, kPre, xs);
                    if (s + 1 < nslices || again)
                        fetch_slice(s + 1 < nslices ? s + 1 : 0, (seq + 1) & 1);
                    seq++;
                } else {
                    __syncthreads();
                    stage_x<kScaled>(p, b, j0, mb, MB, kPre, false, xs, s * kSc, kSc, kSc);
                }
                __syncthreads();
            };

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
            const int64_t gfirst = static_cast<int64_t>(blockIdx.x) * WARPS;
            if (gfirst + warp < ngroups) {
                rows_of(gfirst + warp, wrow, srow);
                if (mine)
                    fetch_chunk<BITS, SEG, R, VEC>(wrow, srow, t, nfull, k, wa, sa);
            }
            /* Every warp of the block runs every round (the sliced loop's barriers need all);
             * a warp past the last row group only takes part in the staging. */
            for (int64_t g0 = gfirst; g0 < ngroups; g0 += gstep) {
                const int64_t g = g0 + warp;
                if (!SLICED && g >= ngroups)
                    break;
                const int vis = g < ngroups ? mine : 0;
                const bool more = g + gstep < ngroups;
                const bool again = g0 + gstep < ngroups;
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
                    if (SLICED && i % kSv == 0 && i < maxv)
                        ready(i / kSv, again);
                    if (i >= vis)
                        return;
                    const int c = t + 32 * i;
                    if (i + 1 < vis)
                        fetch_chunk<BITS, SEG, R, VEC>(wrow, srow, c + 32, nfull, k, wn, sn);
                    else if (more)
                        fetch_chunk<BITS, SEG, R, VEC>(wnext, snext, t, nfull, k, wn, sn);
                    const int len = SEG == kChunk || c < nfull ? kChunk : k - c * kChunk;
                    const int cs = SLICED ? c % kSc : c;
                    chunk_fma<BITS, SCALE, SEG, R, MB, PRE>(wc, sc, xs + cs * kXStride, xstride,
                                                            len, acc[q]);
                };
                const int trips = SLICED ? maxv : vis;
#pragma unroll 1
                for (int i = 0; i < trips; i += 4) {
                    visit(i, 0, wa, sa, wbuf, sbuf);
                    visit(i + 1, 1, wbuf, sbuf, wa, sa);
                    visit(i + 2, 2, wa, sa, wbuf, sbuf);
                    visit(i + 3, 3, wbuf, sbuf, wa, sa);
                }
                /* After an odd number of visits the next group's first chunk is in the second
                 * buffer; every group starts from the first. */
                if (vis % 2) {
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

template <int BITS, int ELEM, int SCALE, int SEG, int R, int WARPS, int MB, bool PRE, bool VEC,
          bool SLICED>
cudaError_t launch_kernel(const Params &p, cudaStream_t stream)
{
    static std::atomic<uint64_t> opted{0};
    static std::atomic<int64_t> cache{0};
    /* Row groups are handed out per warp: blocks = groups / WARPS at most. */
    return launch_persistent(
        fp_qmv_warp_kernel<BITS, ELEM, SCALE, SEG, R, WARPS, MB, PRE, VEC, SLICED>, opted, cache,
        32 * WARPS, SLICED ? sliced_bytes(p) : staged_bytes(p, MB),
        ((p.rows + R - 1) / R + WARPS - 1) / WARPS, p, MB, stream);
}

/* Vectors per pass and geometry to instantiations. MB is the smallest of 1, 2, 4, 8 that holds
 * M (8 for M > 8: passes of 8). x is staged whole when it fits, else sliced; unaligned W or x
 * (rare, small problems) take the sliced kernel with 1 or 8 vectors. 2 rows per warp, 16 warps
 * (at most 128 registers); fewer where that spills: 8 warps at MB = 8, whose accumulators
 * alone (4 lanes x 2 rows x 8 vectors) take 64 registers (ptxas: 192-222 used), 12 at MB = 4
 * for nvfp4 and mxfp8. Loads sent two chunks ahead (three register buffers) spilled at the
 * 128-register bound and ran 12-65 % slower (docs/perf-log.md, "2026-11-27 · 263acbd — fp_qmv: the
 * warp kernel, PRMT decode, vector staging"). */
template <int BITS, int ELEM, int SCALE, int SEG, bool PRE>
cudaError_t launch_pre(const Params &p, bool vec, FpGeometry g, cudaStream_t s)
{
    constexpr int kWarps4 = BITS == 4 && SEG == kChunk ? 16 : 12;
    const int mb = p.m <= 1 ? 1 : p.m <= 2 ? 2 : p.m <= 4 ? 4 : 8;
    const size_t limit = smem_optin_limit();
    const bool whole = limit > kStaticReserve && staged_bytes(p, mb) <= limit - kStaticReserve;
    if (!vec)
        return mb == 1 ? launch_kernel<BITS, ELEM, SCALE, SEG, 2, 16, 1, PRE, false, true>(p, s)
                       : launch_kernel<BITS, ELEM, SCALE, SEG, 2, 8, 8, PRE, false, true>(p, s);
    switch (mb) {
    case 1:
        if (!whole)
            return launch_kernel<BITS, ELEM, SCALE, SEG, 2, 16, 1, PRE, true, true>(p, s);
        return g.rows == 1 ? launch_kernel<BITS, ELEM, SCALE, SEG, 1, 16, 1, PRE, true, false>(p, s)
                           : launch_kernel<BITS, ELEM, SCALE, SEG, 2, 16, 1, PRE, true, false>(p, s);
    case 2:
        if (whole)
            return launch_kernel<BITS, ELEM, SCALE, SEG, 2, 16, 2, PRE, true, false>(p, s);
        /* fall through: 2 vectors too long to stage whole take the 4-vector slices */
    case 4: /* 16 warps spill for nvfp4 and mxfp8 (ptxas: 24-56 bytes), 12 do not */
        return whole ? launch_kernel<BITS, ELEM, SCALE, SEG, 2, kWarps4, 4, PRE, true, false>(p, s)
                     : launch_kernel<BITS, ELEM, SCALE, SEG, 2, kWarps4, 4, PRE, true, true>(p, s);
    default:
        return launch_kernel<BITS, ELEM, SCALE, SEG, 2, 8, 8, PRE, true, true>(p, s);
    }
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
