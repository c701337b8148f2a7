/*
 * fp_common.cuh - what the two fp_qmv kernels share (fp_qmv_kernel.cu: 128-lane sets of
 * threads; fp_qmv_warp_kernel.cu: one warp per row group): the staged-x layout and its staging,
 * the per-word element decoders, the exact fallback for E4M3 NaN codes, the scale decode and
 * the barriers of a lane set. Everything here follows docs/ORDER.md.
 */
#ifndef QMV_CUDA_FP_COMMON_CUH
#define QMV_CUDA_FP_COMMON_CUH

#include "device_common.cuh"

namespace qmvc {
namespace fp {

/* Staged x layout: chunk c's 32 floats start at float c * kXStride. The 4 floats of padding
 * per chunk put the chunks that the 8 threads of a 16-byte shared-load phase read (lanes t ..
 * t+7 read chunks t .. t+7) in 8 different bank groups, so the loads never conflict, and keep
 * every 16-byte unit aligned, so a chunk's reads are one base and immediate offsets. */
constexpr int kXStride = kChunk + 4;

/* The product chain of one segment with every element decoded by the reference decoder (NaN
 * codes included): the rare path of a segment holding an E4M3 NaN code. */
template <int N>
struct Words {
    uint32_t w[N];
};

template <int SEG, bool PRE>
__device__ __noinline__ float segment_exact(Words<SEG / 4> codes, const float *xc)
{
    float pp = 0.0f;
#pragma unroll
    for (int i = 0; i < SEG; i++) {
        const unsigned b = (codes.w[i / 4] >> (8 * (i % 4))) & 0xFFu;
        const float v = qmvi_e4m3_value(b);
        pp = __fmaf_rn(xc[i], PRE ? __fmul_rn(v, 0.00390625f) : v, pp); /* * 2^-8, exact */
    }
    return pp;
}

template <int SCALE>
__device__ __forceinline__ float fp_scale(uint32_t raw)
{
    return SCALE == kScaleE8M0 ? qmvi_e8m0_value(raw) : qmvi_e4m3_value(raw);
}

/* Chunk cc of the rows wr / sr into w / sraw: whole chunks by 16-byte loads (when VEC),
 * nvfp4's final half chunk word by word (nfull: the number of whole chunks). */
template <int BITS, int SEG, int R, bool VEC>
__device__ __forceinline__ void fetch_chunk(const uint32_t *const *wr,
                                            const unsigned char *const *sr, int cc, int nfull,
                                            int k, uint32_t (&w)[R][BITS],
                                            uint32_t (&sraw)[R][kChunk / SEG])
{
    constexpr int kSegs = kChunk / SEG;
    if (SEG == kChunk || cc < nfull) { /* mxfp4 / mxfp8 chunks are all whole */
#pragma unroll
        for (int r = 0; r < R; r++) {
            load_chunk<BITS, VEC>(wr[r], cc, BITS, w[r]);
#pragma unroll
            for (int s = 0; s < kSegs; s++)
                sraw[r][s] = __ldg(sr[r] + cc * kSegs + s);
        }
    } else {
        const int len = k - cc * kChunk;
#pragma unroll
        for (int r = 0; r < R; r++) {
            load_chunk<BITS, false>(wr[r], cc, len * BITS / 32, w[r]);
#pragma unroll
            for (int s = 0; s < kSegs; s++) /* a missing segment reuses 0 */
                sraw[r][s] = __ldg(sr[r] + cc * kSegs + (s * SEG < len ? s : 0));
        }
    }
}

/* One chunk of R rows for MB staged vectors (vector j at xc + j * xstride): the canonical
 * product chain of each segment, then acc[r][j] = fma(P, scale, acc[r][j]). len is the
 * chunk's length (32, or 16 for nvfp4's final half chunk). wc holds the chunk's code words
 * per row, sc its raw segment scales. */
template <int BITS, int SCALE, int SEG, int R, int MB, bool PRE>
__device__ __forceinline__ void chunk_fma(const uint32_t (&wc)[R][BITS],
                                          const uint32_t (&sc)[R][kChunk / SEG], const float *xc,
                                          int xstride, int len, float (&acc)[R][MB])
{
    constexpr int kSegs = kChunk / SEG;
    constexpr int kWordElems = 32 / BITS;
    constexpr int kSegWords = SEG / kWordElems;
#pragma unroll
    for (int s = 0; s < kSegs; s++) {
        if (s > 0 && s * SEG >= len)
            break; /* nvfp4's final half chunk has one segment */
        float pp[R][MB];
        uint32_t nan[R];
#pragma unroll
        for (int r = 0; r < R; r++) {
            nan[r] = 0;
#pragma unroll
            for (int j = 0; j < MB; j++)
                pp[r][j] = 0.0f;
        }
#pragma unroll
        for (int t = 0; t < kSegWords; t++) {
            const int e0 = s * SEG + t * kWordElems;
            float xv[MB][kWordElems];
#pragma unroll
            for (int j = 0; j < MB; j++)
#pragma unroll
                for (int q = 0; q < kWordElems / 4; q++) {
                    const float4 x4 =
                        *reinterpret_cast<const float4 *>(xc + j * xstride + e0 + 4 * q);
                    xv[j][4 * q] = x4.x;
                    xv[j][4 * q + 1] = x4.y;
                    xv[j][4 * q + 2] = x4.z;
                    xv[j][4 * q + 3] = x4.w;
                }
#pragma unroll
            for (int r = 0; r < R; r++) {
                float v[kWordElems];
                decode_word<BITS, PRE>(wc[r][s * kSegWords + t], v, &nan[r]);
#pragma unroll
                for (int j = 0; j < MB; j++)
#pragma unroll
                    for (int i = 0; i < kWordElems; i++)
                        pp[r][j] = __fmaf_rn(xv[j][i], v[i], pp[r][j]);
            }
        }
#pragma unroll
        for (int r = 0; r < R; r++) {
            if constexpr (BITS == 8) {
                if (nan[r]) {
                    Words<kSegWords> ws;
#pragma unroll
                    for (int t = 0; t < kSegWords; t++)
                        ws.w[t] = wc[r][s * kSegWords + t];
#pragma unroll 1
                    for (int j = 0; j < MB; j++)
                        pp[r][j] = segment_exact<SEG, PRE>(ws, xc + j * xstride + s * SEG);
                }
            }
            const float sv = fp_scale<SCALE>(sc[r][s]);
#pragma unroll
            for (int j = 0; j < MB; j++)
                acc[r][j] = __fmaf_rn(pp[r][j], sv, acc[r][j]);
        }
    }
}

/* Stages vector row xr (x_dtype of XS bytes) as float (times pre when SCALED) into dst, chunk c
 * at dst[c * kXStride], zero past k. With vec (the row 16-byte aligned) every thread first
 * issues all its 16-byte loads of a round, then converts and stores them, so the block waits
 * for one memory round trip per 4 units of 16 bytes instead of one per element. */
template <int XS, bool SCALED>
__device__ __forceinline__ void stage_row(const char *xr, int dtype, int k, float pre, bool vec,
                                          float *dst, int nchunks)
{
    constexpr int kPer = 16 / XS; /* elements of a 16-byte unit: 8 or 4, a divisor of kChunk */
    const int tid = threadIdx.x, nth = blockDim.x;
    const int units = nchunks * (kChunk / kPer);
    for (int u0 = tid; u0 < units; u0 += 4 * nth) {
        uint32_t raw[4][4];
#pragma unroll
        for (int q = 0; q < 4; q++) {
            const int uu = u0 + q * nth, e0 = uu * kPer;
#pragma unroll
            for (int w = 0; w < 4; w++)
                raw[q][w] = 0;
            if (uu < units && vec && e0 + kPer <= k) {
                const uint4 v = __ldg(reinterpret_cast<const uint4 *>(xr) + uu);
                raw[q][0] = v.x;
                raw[q][1] = v.y;
                raw[q][2] = v.z;
                raw[q][3] = v.w;
            } else if (uu < units) { /* the tail of K, or an unaligned row */
#pragma unroll
                for (int e = 0; e < kPer; e++) {
                    if (e0 + e < k) {
                        if (XS == 4)
                            raw[q][e] = __ldg(reinterpret_cast<const uint32_t *>(xr) + e0 + e);
                        else
                            raw[q][e / 2] |= static_cast<uint32_t>(__ldg(
                                                 reinterpret_cast<const unsigned short *>(xr) +
                                                 e0 + e))
                                             << (16 * (e % 2));
                    }
                }
            }
        }
#pragma unroll
        for (int q = 0; q < 4; q++) {
            const int uu = u0 + q * nth;
            if (uu >= units)
                break;
            float f[8];
#pragma unroll
            for (int e = 0; e < kPer; e++) {
                if (XS == 4) {
                    f[e] = __uint_as_float(raw[q][e]);
                } else {
                    const uint32_t hb = (raw[q][e / 2] >> (16 * (e % 2))) & 0xFFFFu;
                    f[e] = dtype == QMV_DTYPE_BF16
                               ? __uint_as_float(hb << 16)
                               : __half2float(__ushort_as_half(static_cast<unsigned short>(hb)));
                }
                if (SCALED)
                    f[e] = __fmul_rn(f[e], pre);
            }
            const int e0 = uu * kPer;
            float4 *o = reinterpret_cast<float4 *>(dst + (e0 / kChunk) * kXStride + e0 % kChunk);
            o[0] = make_float4(f[0], f[1], f[2], f[3]);
            if (kPer == 8)
                o[1] = make_float4(f[4], f[5], f[6], f[7]);
        }
    }
}

/* Stages vectors j0 .. j0 + mb - 1 of batch b into xs (vector j at j * nchunks * kXStride).
 * The caller synchronizes before (readers of the previous pass) and after. */
template <bool SCALED>
__device__ __forceinline__ void stage_x(const Params &p, int64_t b, int64_t j0, int mb, float pre,
                                        bool vec, float *xs, int nchunks)
{
    const int xsize = p.x_dtype == QMV_DTYPE_F32 ? 4 : 2;
    for (int j = 0; j < mb; j++) {
        const char *xr = static_cast<const char *>(p.x) +
                         (b * p.x_batch_stride + (j0 + j) * p.x_row_stride) * xsize;
        float *dst = xs + j * nchunks * kXStride;
        if (xsize == 4)
            stage_row<4, SCALED>(xr, p.x_dtype, static_cast<int>(p.k), pre, vec, dst, nchunks);
        else
            stage_row<2, SCALED>(xr, p.x_dtype, static_cast<int>(p.k), pre, vec, dst, nchunks);
    }
}

/* Dynamic shared memory of one pass of mb vectors. */
inline size_t staged_bytes(const Params &p, int mb)
{
    return static_cast<size_t>(mb) * static_cast<size_t>((p.k + kChunk - 1) / kChunk) *
           kXStride * sizeof(float);
}

/* The largest dynamic shared memory a block may opt into on the current device (0: error). */
inline size_t smem_optin_limit()
{
    int dev = 0, bytes = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) !=
            cudaSuccess)
        return 0;
    return static_cast<size_t>(bytes);
}

/* Headroom kept for the static reduction buffer (at most G * R * MB * 128 floats = 8 KiB). */
constexpr size_t kStaticReserve = 8192;

/* Vectors per pass: two when both fit and are wanted, else one. */
inline int pass_vectors(const Params &p)
{
    const size_t limit = smem_optin_limit();
    return p.m >= 2 && staged_bytes(p, 2) + kStaticReserve <= limit / 2 ? 2 : 1;
}

/* Opts kernel in to the largest dynamic shared memory once per device (a host-side attribute:
 * no allocation, no synchronization, legal during stream capture); `opted` is the caller's
 * per-kernel set of devices done. */
template <typename Kernel>
cudaError_t opt_in_smem(Kernel kernel, std::atomic<uint64_t> &opted)
{
    int dev = 0;
    cudaGetDevice(&dev);
    const uint64_t bit = uint64_t{1} << (dev & 63);
    if (!(opted.load(std::memory_order_relaxed) & bit)) {
        const cudaError_t e = cudaFuncSetAttribute(
            kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
            static_cast<int>(smem_optin_limit() - kStaticReserve));
        if (e != cudaSuccess)
            return e;
        opted.fetch_or(bit, std::memory_order_relaxed);
    }
    return cudaSuccess;
}

} // namespace fp
} // namespace qmvc

#endif /* QMV_CUDA_FP_COMMON_CUH */
