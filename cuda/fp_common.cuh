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
            /* The word's elements of every row, then each vector's x four at a time (one
             * 16-byte shared load shared by the R rows): few registers for x at any MB. */
            float v[R][kWordElems];
#pragma unroll
            for (int r = 0; r < R; r++)
                decode_word<BITS, PRE>(wc[r][s * kSegWords + t], v[r], &nan[r]);
#pragma unroll
            for (int j = 0; j < MB; j++)
#pragma unroll
                for (int q = 0; q < kWordElems / 4; q++) {
                    const float4 x4 =
                        *reinterpret_cast<const float4 *>(xc + j * xstride + e0 + 4 * q);
                    const float xv[4] = {x4.x, x4.y, x4.z, x4.w};
#pragma unroll
                    for (int r = 0; r < R; r++)
#pragma unroll
                        for (int i = 0; i < 4; i++)
                            pp[r][j] = __fmaf_rn(xv[i], v[r][4 * q + i], pp[r][j]);
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

/* The floats of one 16-byte unit of x (XS-byte elements: 8 or 4 of them), exactly, times pre
 * when SCALED. */
template <int XS, bool SCALED>
__device__ __forceinline__ void unit_floats(const uint32_t (&raw)[4], int dtype, float pre,
                                            float (&f)[8])
{
    constexpr int kPer = 16 / XS;
#pragma unroll
    for (int e = 0; e < kPer; e++) {
        if (XS == 4) {
            f[e] = __uint_as_float(raw[e]);
        } else {
            const uint32_t hb = (raw[e / 2] >> (16 * (e % 2))) & 0xFFFFu;
            f[e] = dtype == QMV_DTYPE_BF16
                       ? __uint_as_float(hb << 16)
                       : __half2float(__ushort_as_half(static_cast<unsigned short>(hb)));
        }
        if (SCALED)
            f[e] = __fmul_rn(f[e], pre);
    }
}

/* Stores the floats of unit e0 / kPer (element e0 of the staged range) at dst in the staged
 * layout. */
template <int XS>
__device__ __forceinline__ void store_unit(float *dst, int e0, const float (&f)[8])
{
    float4 *o = reinterpret_cast<float4 *>(dst + (e0 / kChunk) * kXStride + e0 % kChunk);
    o[0] = make_float4(f[0], f[1], f[2], f[3]);
    if (XS == 2)
        o[1] = make_float4(f[4], f[5], f[6], f[7]);
}

/* Stages vector row xr (x_dtype of XS bytes) as float (times pre when SCALED) into dst, chunk c
 * at dst[c * kXStride], zero past k (k <= 0: all zero, nothing read). With vec (the row 16-byte
 * aligned) every thread first issues all its 16-byte loads of a round, then converts and
 * stores them, so the block waits for one memory round trip per 4 units of 16 bytes instead of
 * one per element. */
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
            unit_floats<XS, SCALED>(raw[q], dtype, pre, f);
            store_unit<XS>(dst, uu * kPer, f);
        }
    }
}

/* Row j0 + j of batch b of x, as bytes. */
__device__ __forceinline__ const char *x_row(const Params &p, int64_t b, int64_t jj, int xsize)
{
    return static_cast<const char *>(p.x) + (b * p.x_batch_stride + jj * p.x_row_stride) * xsize;
}

/* Stages chunks c0 .. c0 + nch - 1 of vectors j0 .. j0 + MB - 1 of batch b into xs (vector j at
 * j * xchunks * kXStride); vectors from mb on (past M) are staged as zeros. The caller
 * synchronizes before (readers of the previous contents) and after. */
template <bool SCALED>
__device__ __forceinline__ void stage_x(const Params &p, int64_t b, int64_t j0, int mb, int MB,
                                        float pre, bool vec, float *xs, int c0, int nch,
                                        int xchunks)
{
    const int xsize = p.x_dtype == QMV_DTYPE_F32 ? 4 : 2;
    const int kk = static_cast<int>(p.k) - c0 * kChunk;
    for (int j = 0; j < MB; j++) {
        const char *xr = x_row(p, b, j0 + (j < mb ? j : 0), xsize) + c0 * kChunk * xsize;
        float *dst = xs + j * xchunks * kXStride;
        if (xsize == 4)
            stage_row<4, SCALED>(xr, p.x_dtype, j < mb ? kk : 0, pre, vec, dst, nch);
        else
            stage_row<2, SCALED>(xr, p.x_dtype, j < mb ? kk : 0, pre, vec, dst, nch);
    }
}

/* Dynamic shared memory of one pass of mb vectors staged whole. */
inline size_t staged_bytes(const Params &p, int mb)
{
    return static_cast<size_t>(mb) * static_cast<size_t>((p.k + kChunk - 1) / kChunk) *
           kXStride * sizeof(float);
}

/* ---- Sliced staging (the warp kernel when a pass's vectors do not fit whole) ------------- */

/* A slice holds kSliceElems / MB elements of each of MB vectors (MB in 1, 2, 4, 8): 512 / MB
 * chunks, so a slice's float buffer is 72 KiB whatever MB is, and a thread's visits of one
 * slice (16 / MB of them) fill whole steps of its 4-lane loop. Slices of 8192 elements ran
 * 3-7 % slower at M = 4 and 8 (docs/perf-log.md, "2026-11-27 · feb88cf — fp_qmv: one pass of up to
 * 8 vectors, any K"): twice the barriers per weight. */
constexpr int kSliceElems = 16384;

/* Shared memory of the sliced layout: the float slice, then two raw slices (the one being
 * converted and the one in flight). */
inline size_t sliced_bytes(const Params &p)
{
    const size_t xsize = p.x_dtype == QMV_DTYPE_F32 ? 4 : 2;
    return (kSliceElems / kChunk) * kXStride * sizeof(float) + 2 * kSliceElems * xsize;
}

/* Asynchronous 16-byte global -> shared copy of `bytes` (0..16) bytes, the rest zero-filled. */
__device__ __forceinline__ void cp_async16(void *dst, const void *src, int bytes)
{
    const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(bytes)
                 : "memory");
}

__device__ __forceinline__ void cp_async_commit()
{
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}

__device__ __forceinline__ void cp_async_wait_all()
{
    asm volatile("cp.async.wait_group 0;\n" ::: "memory");
}

/* Sends one raw slice of MB vectors to raw (vector j at j * kSliceElems / MB * XS bytes) by
 * asynchronous copies: x0 is the slice's first element of the pass's first vector, row_bytes
 * the distance between vectors, left the bytes from x0 to the end of a row; zeros past K and
 * for the vectors from mb on. x rows must be 16-byte aligned. NTH threads, all taking part;
 * the unit counts are compile-time, so the divisions are shifts. */
template <int XS, int MB, int NTH>
__device__ __forceinline__ void slice_fetch(const char *x0, int64_t row_bytes, int mb,
                                            int64_t left, char *raw)
{
    constexpr int kUpv = kSliceElems / MB * XS / 16; /* 16-byte units per vector */
    constexpr int kUnits = MB * kUpv;
#pragma unroll 1 /* unrolled, the loads of all units went up front and spilled */
    for (int i = 0; i < (kUnits + NTH - 1) / NTH; i++) {
        const int u = static_cast<int>(threadIdx.x) + i * NTH;
        if (kUnits % NTH && u >= kUnits)
            break;
        const int j = u / kUpv, off = (u % kUpv) * 16;
        const int64_t rem = left - off;
        const int bytes = j >= mb || rem <= 0 ? 0 : rem >= 16 ? 16 : static_cast<int>(rem);
        const char *row = x0 + (j < mb ? j : 0) * row_bytes;
        cp_async16(raw + u * 16, bytes ? row + off : row, bytes);
    }
}

/* Converts a raw slice (slice_fetch's layout) into the float slice xs (vector j at j * kSliceElems
 * / MB / kChunk * kXStride floats); dtype is a compile-time constant at the call. */
template <int XS, bool SCALED, int MB, int NTH>
__device__ __forceinline__ void slice_convert(const char *raw, int dtype, float pre, float *xs)
{
    constexpr int kPer = 16 / XS, kUpv = kSliceElems / MB / kPer, kUnits = MB * kUpv;
    constexpr int kNch = kSliceElems / kChunk / MB;
#pragma unroll 1 /* unrolled, the loads of all units went up front and spilled */
    for (int i = 0; i < (kUnits + NTH - 1) / NTH; i++) {
        const int u = static_cast<int>(threadIdx.x) + i * NTH;
        if (kUnits % NTH && u >= kUnits)
            break;
        const int j = u / kUpv, e0 = (u % kUpv) * kPer;
        const uint4 q = *reinterpret_cast<const uint4 *>(raw + u * 16);
        const uint32_t w[4] = {q.x, q.y, q.z, q.w};
        float f[8];
        unit_floats<XS, SCALED>(w, dtype, pre, f);
        store_unit<XS>(xs + j * kNch * kXStride, e0, f);
    }
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

/* Launches a persistent fp_qmv kernel for p: opts it in to the dynamic shared memory, then one
 * grid of as many blocks as fit at once (never more than `groups`, the blocks' worth of row
 * groups), `per_pass` vectors per pass. `opted` and `cache` are the kernel's own (static in
 * its launcher). */
template <typename Kernel>
cudaError_t launch_persistent(Kernel kernel, std::atomic<uint64_t> &opted,
                              std::atomic<int64_t> &cache, int threads, size_t smem,
                              int64_t groups, const Params &p, int per_pass, cudaStream_t stream)
{
    const cudaError_t e = opt_in_smem(kernel, opted);
    if (e != cudaSuccess)
        return e;
    const int64_t resident = resident_blocks(kernel, threads, smem, cache);
    if (resident < 1) {
        const cudaError_t le = cudaGetLastError();
        return le != cudaSuccess ? le : cudaErrorInvalidConfiguration;
    }
    kernel<<<persistent_grid(resident, groups, p, per_pass), threads, smem, stream>>>(p);
    return cudaGetLastError();
}

} // namespace fp
} // namespace qmvc

#endif /* QMV_CUDA_FP_COMMON_CUH */
