/*
 * qmv.cu - the generic CUDA qmv kernel and qmv_cuda_qmv().
 *
 * The kernel follows the canonical order of docs/ORDER.md exactly, so its result equals the
 * CPU reference bit for bit: a block of 128 threads owns a few rows and thread t owns lane t
 * (chunks t, t + 128, ...), fused multiply-adds are written as __fmaf_rn and additions as
 * __fadd_rn, and the lane tree runs through shared memory (w = 64, 32) and warp shuffles
 * (w = 16 .. 1). Up to 8 vectors share one pass over the weights; larger M loops.
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>

#include <atomic>
#include <type_traits>

#include "decode_bits.h"
#include "internal.h"
#include "qmv_cuda.h"

namespace {

constexpr int kChunk = 32;
constexpr int kLanes = 128;

enum ElemKind { kElemUint, kElemE2M1, kElemE4M3 };
enum ScaleKind { kScaleFloat, kScaleE8M0, kScaleE4M3 };

struct Params {
    const uint32_t *packed;
    int64_t packed_row_stride, packed_batch_stride;
    const void *scales, *biases;
    int64_t scales_row_stride, scales_batch_stride;
    int scale_dtype, group_shift; /* log2 of the group size */
    const float *gscale;
    const void *x;
    int x_dtype;
    int64_t x_row_stride, x_batch_stride;
    void *y;
    int y_dtype;
    int64_t y_row_stride, y_batch_stride;
    int64_t rows, k, m, batch;
};

__device__ __forceinline__ float load_float(int dtype, const void *p, int64_t i)
{
    if (dtype == QMV_DTYPE_F32)
        return __ldg(static_cast<const float *>(p) + i);
    const unsigned short h = __ldg(static_cast<const unsigned short *>(p) + i);
    if (dtype == QMV_DTYPE_BF16)
        return __uint_as_float(static_cast<uint32_t>(h) << 16);
    return __half2float(__ushort_as_half(h)); /* exact, subnormals included */
}

template <int ELEM>
__device__ __forceinline__ float elem_value(unsigned c)
{
    if (ELEM == kElemE2M1)
        return qmvi_e2m1_value(c);
    if (ELEM == kElemE4M3)
        return qmvi_e4m3_value(c);
    return static_cast<float>(c);
}

__device__ __forceinline__ void store_result(int dtype, void *y, int64_t i, float r)
{
    if (r != r) { /* one canonical quiet NaN per dtype (the converters would give 0x7FFF) */
        if (dtype == QMV_DTYPE_F32)
            static_cast<uint32_t *>(y)[i] = 0x7FC00000u;
        else
            static_cast<unsigned short *>(y)[i] = dtype == QMV_DTYPE_F16 ? 0x7E00u : 0x7FC0u;
        return;
    }
    if (dtype == QMV_DTYPE_F32)
        static_cast<float *>(y)[i] = r;
    else if (dtype == QMV_DTYPE_F16)
        static_cast<unsigned short *>(y)[i] = __half_as_ushort(__float2half_rn(r));
    else
        static_cast<unsigned short *>(y)[i] = __bfloat16_as_ushort(__float2bfloat16_rn(r));
}

/* Code i (0..31) of a chunk held in words w[0..BITS-1] (the chunk starts word-aligned). */
template <int BITS>
__device__ __forceinline__ unsigned chunk_code(const uint32_t *w, int i)
{
    const int bit = i * BITS, wi = bit >> 5, off = bit & 31;
    uint32_t v = w[wi] >> off;
    if (off + BITS > 32)
        v |= w[wi + 1] << (32 - off);
    return v & ((1u << BITS) - 1u);
}

__device__ __forceinline__ __half2 as_half2(uint32_t u)
{
    __half2 h;
    memcpy(&h, &u, sizeof h);
    return h;
}

__device__ __forceinline__ float2 half2_bits_to_float2(uint32_t u)
{
    __half2 h;
    memcpy(&h, &u, sizeof h);
    return __half22float2(h);
}

/*
 * Decodes the 32 element values of a chunk into v, exactly. Fast paths build two float16
 * values per 32-bit operation and widen them (exact):
 * - 4-bit integers: 0x6400 | q is the half 1024 + q; subtracting 1024 is exact.
 * - E2M1: magnitude bits (e1 e0 m) placed at half bits 11..9 and the sign at bit 15 give
 *   value * 2^-14 (e = 0 lands in the subnormals, exactly m/2 * 2^-14); * 2^14 is exact.
 * - 8-bit integers: byte b under exponent 0x64 is the half 1024 + b.
 * - E4M3: magnitude bits placed at half bits 13..7 and the sign at 15 give value * 2^-8
 *   (subnormals included); * 2^8 is exact; codes 0x7F / 0xFF are made NaN.
 * (Prescaling x by 2^14 etc. instead of the half multiply was measured slower: docs/PERF.md.)
 */
template <int BITS, int ELEM>
__device__ __forceinline__ void decode_chunk(const uint32_t *w, float *v)
{
    if (BITS == 4 && ELEM == kElemUint) {
        const __half2 k1024 = __float2half2_rn(1024.0f);
#pragma unroll
        for (int t = 0; t < 4; t++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const uint32_t u = ((w[t] >> (4 * i)) & 0x000F000Fu) | 0x64006400u;
                const float2 f = __half22float2(__hsub2(as_half2(u), k1024));
                v[8 * t + i] = f.x;
                v[8 * t + 4 + i] = f.y;
            }
    } else if (BITS == 4 && ELEM == kElemE2M1) {
        const __half2 k2p14 = __float2half2_rn(16384.0f);
#pragma unroll
        for (int t = 0; t < 4; t++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const uint32_t mag = i < 3 ? (w[t] << (9 - 4 * i)) : (w[t] >> 3);
                const uint32_t sgn = i < 3 ? (w[t] << (12 - 4 * i)) : w[t];
                const uint32_t u = (mag & 0x0E000E00u) | (sgn & 0x80008000u);
                const float2 f = __half22float2(__hmul2(as_half2(u), k2p14));
                v[8 * t + i] = f.x;
                v[8 * t + 4 + i] = f.y;
            }
    } else if (BITS == 8 && ELEM == kElemUint) {
        const __half2 k1024 = __float2half2_rn(1024.0f);
#pragma unroll
        for (int t = 0; t < 8; t++)
#pragma unroll
            for (int pr = 0; pr < 2; pr++) {
                const uint32_t u = __byte_perm(w[t], 0x64646464u, pr ? 0x5342u : 0x5140u);
                const float2 f = __half22float2(__hsub2(as_half2(u), k1024));
                v[4 * t + 2 * pr] = f.x;
                v[4 * t + 2 * pr + 1] = f.y;
            }
    } else if (BITS == 8 && ELEM == kElemE4M3) {
        const __half2 k2p8 = __float2half2_rn(256.0f);
#pragma unroll
        for (int t = 0; t < 8; t++) {
            const uint32_t mag = w[t] & 0x7F7F7F7Fu, sgn = w[t] & 0x80808080u;
#pragma unroll
            for (int pr = 0; pr < 2; pr++) {
                const unsigned sel = pr ? 0x3424u : 0x1404u; /* bytes 0,1 or 2,3 -> high bytes */
                const uint32_t u = (__byte_perm(mag, 0, sel) >> 1) | __byte_perm(sgn, 0, sel);
                const float2 f = __half22float2(__hmul2(as_half2(u), k2p8));
                v[4 * t + 2 * pr] = f.x;
                v[4 * t + 2 * pr + 1] = f.y;
            }
            if ((mag + 0x01010101u) & 0x80808080u) { /* some byte is 0x7F or 0xFF: NaN */
#pragma unroll
                for (int b = 0; b < 4; b++)
                    if (((mag >> (8 * b)) & 0x7Fu) == 0x7Fu)
                        v[4 * t + b] = __uint_as_float(0x7FC00000u);
            }
        }
    } else {
#pragma unroll
        for (int i = 0; i < kChunk; i++)
            v[i] = elem_value<ELEM>(chunk_code<BITS>(w, i));
    }
}

/* Loads the BITS words of chunk c of a row; VEC: the row start is 16-byte aligned, so whole
 * chunks of 4 and 8 bits are one or two 16-byte loads (2 bits: one 8-byte load). Partial
 * chunks (nvfp4's last half chunk) load only their own words. */
template <int BITS, bool VEC>
__device__ __forceinline__ void load_chunk(const uint32_t *row, int64_t c, int nw, uint32_t *w)
{
    const uint32_t *src = row + c * BITS;
    if (VEC && nw == BITS && BITS % 4 == 0) {
#pragma unroll
        for (int t = 0; t < BITS / 4; t++) {
            const uint4 q = __ldg(reinterpret_cast<const uint4 *>(src) + t);
            w[4 * t] = q.x;
            w[4 * t + 1] = q.y;
            w[4 * t + 2] = q.z;
            w[4 * t + 3] = q.w;
        }
    } else if (VEC && nw == BITS && BITS == 2) {
        const uint2 q = __ldg(reinterpret_cast<const uint2 *>(src));
        w[0] = q.x;
        w[1] = q.y;
    } else {
#pragma unroll
        for (int t = 0; t < BITS; t++)
            w[t] = t < nw ? __ldg(src + t) : 0u;
    }
}

/* Loads x[k0 .. k0+len) of one vector as floats (exact); VEC: 16-byte aligned whole chunks. */
template <bool VEC>
__device__ __forceinline__ void load_x_chunk(int dtype, const void *x, int64_t k0, int len,
                                             float *xf)
{
    if (VEC && len == kChunk) {
        if (dtype == QMV_DTYPE_F32) {
            const float4 *src = reinterpret_cast<const float4 *>(static_cast<const float *>(x) + k0);
#pragma unroll
            for (int t = 0; t < 8; t++) {
                const float4 q = __ldg(src + t);
                xf[4 * t] = q.x;
                xf[4 * t + 1] = q.y;
                xf[4 * t + 2] = q.z;
                xf[4 * t + 3] = q.w;
            }
        } else {
            const uint4 *src =
                reinterpret_cast<const uint4 *>(static_cast<const unsigned short *>(x) + k0);
            uint32_t u[16];
#pragma unroll
            for (int t = 0; t < 4; t++) {
                const uint4 q = __ldg(src + t);
                u[4 * t] = q.x;
                u[4 * t + 1] = q.y;
                u[4 * t + 2] = q.z;
                u[4 * t + 3] = q.w;
            }
            if (dtype == QMV_DTYPE_F16) {
#pragma unroll
                for (int t = 0; t < 16; t++) {
                    const float2 f = half2_bits_to_float2(u[t]);
                    xf[2 * t] = f.x;
                    xf[2 * t + 1] = f.y;
                }
            } else {
#pragma unroll
                for (int t = 0; t < 16; t++) {
                    xf[2 * t] = __uint_as_float(u[t] << 16);
                    xf[2 * t + 1] = __uint_as_float(u[t] & 0xFFFF0000u);
                }
            }
        }
        return;
    }
#pragma unroll
    for (int i = 0; i < kChunk; i++)
        xf[i] = i < len ? load_float(dtype, x, k0 + i) : 0.0f;
}

/* Sum of x over each segment of a chunk (the affine bias term's X), in increasing k. */
template <int SEG>
__device__ __forceinline__ void segment_sums(const float *xf, float *xs)
{
#pragma unroll
    for (int s = 0; s < kChunk / SEG; s++) {
        float t = 0.0f;
#pragma unroll
        for (int i = 0; i < SEG; i++)
            t = __fadd_rn(t, xf[s * SEG + i]);
        xs[s] = t;
    }
}

/* A scale or bias element's raw bits (the byte, or the float16/bfloat16/float32 bits); loaded
 * one chunk ahead like the weights, decoded only when used, so that no load result is waited
 * for early. */
template <int SCALE>
__device__ __forceinline__ uint32_t load_raw(int dtype, const void *base, int64_t i)
{
    if (SCALE != kScaleFloat)
        return __ldg(static_cast<const unsigned char *>(base) + i);
    if (dtype == QMV_DTYPE_F32)
        return __ldg(static_cast<const unsigned int *>(base) + i);
    return __ldg(static_cast<const unsigned short *>(base) + i);
}

template <int SCALE>
__device__ __forceinline__ float decode_raw(int dtype, uint32_t raw)
{
    if (SCALE == kScaleE8M0)
        return qmvi_e8m0_value(raw);
    if (SCALE == kScaleE4M3)
        return qmvi_e4m3_value(raw);
    if (dtype == QMV_DTYPE_F32)
        return __uint_as_float(raw);
    if (dtype == QMV_DTYPE_BF16)
        return __uint_as_float(raw << 16);
    return __half2float(__ushort_as_half(static_cast<unsigned short>(raw)));
}

/* One row's chunk into its lane accumulator: each segment's FMA chain, then the scale FMA and
 * (affine) the bias FMA, in increasing k. sr / br: the segments' raw scales and biases. */
template <int SCALE, int SEG>
__device__ __forceinline__ float chunk_dot(const Params &p, const float *xf, const float *xs,
                                           const float *v, const uint32_t *sr,
                                           const uint32_t *br, int len, float acc)
{
#pragma unroll
    for (int s = 0; s < kChunk / SEG; s++) {
        if (s * SEG >= len)
            continue;
        float pp = 0.0f;
#pragma unroll
        for (int i = 0; i < SEG; i++)
            pp = __fmaf_rn(xf[s * SEG + i], v[s * SEG + i], pp);
        acc = __fmaf_rn(pp, decode_raw<SCALE>(p.scale_dtype, sr[s]), acc);
        if (SCALE == kScaleFloat)
            acc = __fmaf_rn(xs[s], decode_raw<SCALE>(p.scale_dtype, br[s]), acc);
    }
    return acc;
}

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

/* Blocks of one kernel that fit on the current device at once. The occupancy query neither
 * allocates nor synchronizes; its result is cached per kernel as (device + 1) << 32 | count in
 * one atomic, so threads on different devices only ever recompute it. */
template <typename Kernel>
int64_t resident_blocks(Kernel kernel, std::atomic<int64_t> &cache)
{
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess)
        return 0;
    const int64_t c = cache.load(std::memory_order_relaxed);
    if ((c >> 32) == dev + 1)
        return c & 0xFFFFFFFF;
    int sms = 0, per_sm = 0;
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kLanes, 0) != cudaSuccess)
        return 0;
    const int64_t n = static_cast<int64_t>(sms) * (per_sm > 0 ? per_sm : 1);
    cache.store((static_cast<int64_t>(dev) + 1) << 32 | n, std::memory_order_relaxed);
    return n;
}

template <int BITS, int ELEM, int SCALE, int SEG, int R, int MB, bool VEC>
cudaError_t launch_kernel(const Params &p, cudaStream_t stream)
{
    auto kernel = qmv_kernel<BITS, ELEM, SCALE, SEG, R, MB, VEC>;
    const int64_t groups = (p.rows + R - 1) / R;
    const int64_t vblocks = (p.m + MB - 1) / MB;
    const int64_t batch = p.batch < 65535 ? p.batch : 65535;
    const int64_t vb = vblocks < 65535 ? vblocks : 65535;
    /* Enough blocks to fill the device once, spread over the batch and vector blocks. */
    static std::atomic<int64_t> cache{0};
    const int64_t resident = resident_blocks(kernel, cache);
    if (resident < 1) {
        const cudaError_t e = cudaGetLastError();
        return e != cudaSuccess ? e : cudaErrorInvalidConfiguration;
    }
    int64_t gx = (resident + batch * vb - 1) / (batch * vb);
    if (gx > groups)
        gx = groups;
    if (gx < 1)
        gx = 1;
    const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(batch),
                    static_cast<unsigned>(vb));
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
     * 4 bits), else 2 rows for fewer registers and more warps (measured, docs/PERF.md). */
    if (s.vec_block == 1)
        return SCALE == kScaleFloat && BITS <= 4
                   ? launch_rm<BITS, ELEM, SCALE, SEG, 4, 1>(p, vec, stream)
                   : launch_rm<BITS, ELEM, SCALE, SEG, 2, 1>(p, vec, stream);
    if (s.vec_block == 2)
        return launch_rm<BITS, ELEM, SCALE, SEG, 2, 2>(p, vec, stream);
    return launch_rm<BITS, ELEM, SCALE, SEG, 1, 8>(p, vec, stream);
}

cudaError_t launch_format(const qmv_format &f, const Params &p, bool vec, cudaStream_t s)
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
    default:
        return launch<8, kElemUint, kScaleFloat, 32>(p, vec, s);
    }
}

/* 1 when p is a multiple of 16 bytes and each stride (in elements of size es) keeps it so. */
bool aligned16(const void *ptr, int64_t es, int64_t s1, int64_t s2)
{
    return reinterpret_cast<uintptr_t>(ptr) % 16 == 0 && (s1 * es) % 16 == 0 &&
           (s2 * es) % 16 == 0;
}

} // namespace

extern "C" qmv_status qmv_cuda_qmv(const qmv_qmatrix *w, const qmv_vectors *v,
                                   const qmv_cuda_options *options, struct CUstream_st *stream)
{
    if (options) {
        if (options->struct_size < offsetof(qmv_cuda_options, kernel) + sizeof(options->kernel))
            return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT,
                             "options->struct_size %zu is too small", options->struct_size);
        if (options->kernel != QMV_CUDA_KERNEL_AUTO && options->kernel != QMV_CUDA_KERNEL_QMV)
            return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "kernel %d out of range",
                             static_cast<int>(options->kernel));
    }
    qmvi_qmatrix_info wi;
    QMVI_TRY(qmvi_check_qmatrix(w, v ? v->batch : 1, 0, &wi));
    QMVI_TRY(qmvi_check_vectors(w, &wi, v));
    const int64_t blocks = w->rows; /* an upper bound of the grid's x extent */
    if (blocks > 0x7FFFFFFF)
        return qmvi_fail(QMV_STATUS_UNSUPPORTED, "%lld rows exceed the CUDA grid",
                         static_cast<long long>(w->rows));
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices < 1) {
        cudaGetLastError(); /* clear the error this query may have left */
        return qmvi_fail(QMV_STATUS_NO_DEVICE, "no CUDA device is available");
    }
    if (blocks == 0)
        return qmvi_ok();

    Params p;
    p.packed = w->packed;
    p.packed_row_stride = w->packed_row_stride;
    p.packed_batch_stride = w->packed_batch_stride;
    p.scales = w->scales;
    p.biases = w->biases;
    p.scales_row_stride = w->scales_row_stride;
    p.scales_batch_stride = w->scales_batch_stride;
    p.scale_dtype = w->scale_dtype;
    p.group_shift = __builtin_ctz(static_cast<unsigned>(w->format.group_size));
    p.gscale = w->global_scale;
    p.x = v->x;
    p.x_dtype = v->x_dtype;
    p.x_row_stride = v->x_row_stride;
    p.x_batch_stride = v->x_batch_stride;
    p.y = v->y;
    p.y_dtype = v->y_dtype;
    p.y_row_stride = v->y_row_stride;
    p.y_batch_stride = v->y_batch_stride;
    p.rows = w->rows;
    p.k = w->k;
    p.m = v->m;
    p.batch = v->batch;
    /* 16-byte loads need every row of W and x to start 16-byte aligned. */
    const bool vec = aligned16(w->packed, 4, w->packed_row_stride, w->packed_batch_stride) &&
                     aligned16(v->x, static_cast<int64_t>(qmv_dtype_size(v->x_dtype)),
                               v->x_row_stride, v->x_batch_stride);
    const cudaError_t e = launch_format(w->format, p, vec, stream);
    if (e != cudaSuccess)
        return qmvi_fail(QMV_STATUS_DEVICE_ERROR, "kernel launch failed: %s",
                         cudaGetErrorString(e));
    return qmvi_ok();
}
