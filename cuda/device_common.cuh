/*
 * device_common.cuh - what the CUDA kernels share: the launch parameters, exact loads and
 * decoders of weights, scales and x, the canonical output rounding, and the occupancy cache.
 * Everything here follows docs/ORDER.md; nothing here chooses a launch geometry.
 */
#ifndef QMV_CUDA_DEVICE_COMMON_CUH
#define QMV_CUDA_DEVICE_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>

#include <atomic>

#include "decode_bits.h"
#include "qmv.h"

namespace qmvc {

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

/* sm_89 and later convert two E4M3 bytes to a half2 in one instruction (cvt.rn.f16x2.e4m3x2),
 * exactly (every E4M3 value is a float16; 0x7F / 0xFF become NaN); earlier devices use the bit
 * decoder below, which needs x prescaled by 2^8 and flags NaN codes. */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
constexpr bool kE4M3Cvt = true;
#else
constexpr bool kE4M3Cvt = false;
#endif

/* Decodes the 8 (4-bit) or 4 (8-bit) elements of code word u into v, exactly, as value *
 * 2^-14 (E2M1) or * 2^-8 (E4M3) when PRE, else as the value itself. Element i of the word is
 * v[i] (increasing k). E4M3's NaN codes (0x7F, 0xFF) come out finite here: their bytes are
 * flagged in *nan (bit 7 of the byte) and the caller recomputes such a segment exactly. */
template <int BITS, bool PRE>
__device__ __forceinline__ void decode_word(uint32_t u, float *v, uint32_t *nan)
{
    if (BITS == 4) {
        (void)nan; /* E2M1 has no NaN */
        const __half2 k2p14 = __float2half2_rn(16384.0f);
        uint32_t h[4]; /* h[i]: elements i (low half) and i + 4 (high half) */
        /* The high byte of the half value * 2^-14 of a code s.e1.e0.m is s000.e1e0m0: sign in
         * bit 7, magnitude in bits 3..1. Spread the even codes (bytes' low nibbles) and the
         * odd codes (high nibbles) into one such byte each, once per word; each half2 is then
         * one byte permute (bytes 0, 2 to the high bytes of the halves) or one mask (bytes
         * 1, 3 already are high bytes): 11 operations per word instead of about 16. */
        const uint32_t even = ((u << 1) & 0x0E0E0E0Eu) | ((u << 4) & 0x80808080u);
        const uint32_t odd = ((u >> 3) & 0x0E0E0E0Eu) | (u & 0x80808080u);
        h[0] = __byte_perm(even, 0, 0x2404u); /* codes 0, 4 */
        h[1] = __byte_perm(odd, 0, 0x2404u);  /* codes 1, 5 */
        h[2] = even & 0xFF00FF00u;            /* codes 2, 6 */
        h[3] = odd & 0xFF00FF00u;             /* codes 3, 7 */
#pragma unroll
        for (int i = 0; i < 4; i++) {
            __half2 hv = as_half2(h[i]);
            if (!PRE)
                hv = __hmul2(hv, k2p14);
            const float2 f = __half22float2(hv);
            v[i] = f.x;
            v[i + 4] = f.y;
        }
    } else if (kE4M3Cvt) {
        (void)nan; /* NaN codes decode as NaN */
#pragma unroll
        for (int pr = 0; pr < 2; pr++) {
            const __half2_raw r = __nv_cvt_fp8x2_to_halfraw2(
                static_cast<__nv_fp8x2_storage_t>(u >> (16 * pr)), __NV_E4M3);
            const float2 f = __half22float2(__half2(r));
            v[2 * pr] = f.x;
            v[2 * pr + 1] = f.y;
        }
    } else {
        const __half2 k2p8 = __float2half2_rn(256.0f);
        const uint32_t mag = u & 0x7F7F7F7Fu, sgn = u & 0x80808080u;
#pragma unroll
        for (int pr = 0; pr < 2; pr++) {
            const unsigned sel = pr ? 0x3424u : 0x1404u; /* bytes 0,1 or 2,3 -> high bytes */
            __half2 h = as_half2((__byte_perm(mag, 0, sel) >> 1) | __byte_perm(sgn, 0, sel));
            if (!PRE)
                h = __hmul2(h, k2p8);
            const float2 f = __half22float2(h);
            v[2 * pr] = f.x;
            v[2 * pr + 1] = f.y;
        }
        *nan |= (mag + 0x01010101u) & 0x80808080u; /* a byte 0x7F or 0xFF carries out */
    }
}

/*
 * Decodes the 32 element values of a chunk into v, exactly. Fast paths build two float16
 * values per 32-bit operation and widen them (exact):
 * - 4-bit integers: 0x6400 | q is the half 1024 + q; subtracting 1024 is exact.
 * - E2M1 and E4M3: decode_word above, times 2^14 / 2^8 in half precision (exact); E4M3 NaN
 *   codes become NaN.
 * - 8-bit integers: byte b under exponent 0x64 is the half 1024 + b.
 * (Prescaling x by 2^14 etc. instead of the half multiply measured slower in this kernel:
 * docs/perf-log.md, "2026-11-27 · ffb9b88 — CUDA qmv kernel iterations, all on one kind of card".)
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
#pragma unroll
        for (int t = 0; t < 4; t++)
            decode_word<4, false>(w[t], v + 8 * t, nullptr);
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
#pragma unroll
        for (int t = 0; t < 8; t++) {
            uint32_t nan = 0;
            decode_word<8, false>(w[t], v + 4 * t, &nan);
            if (nan) { /* bit decoder: bit 7 of byte b flags the NaN code 0x7F / 0xFF */
#pragma unroll
                for (int b = 0; b < 4; b++)
                    if (nan >> (8 * b + 7) & 1u)
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


/* Blocks of one kernel (threads per block, dynamic shared memory bytes) that fit on the
 * current device at once. The occupancy query neither allocates nor synchronizes; its result
 * is cached per kernel in one atomic as (device + 1) << 56 | smem << 24 | count, so threads on
 * different devices or with other shared-memory sizes only ever recompute it. */
template <typename Kernel>
int64_t resident_blocks(Kernel kernel, int threads, size_t smem, std::atomic<int64_t> &cache)
{
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || dev > 126 || smem >= (size_t(1) << 32))
        return 0;
    const int64_t key = (static_cast<int64_t>(dev) + 1) << 56 | static_cast<int64_t>(smem) << 24;
    const int64_t c = cache.load(std::memory_order_relaxed);
    if ((c & ~int64_t{0xFFFFFF}) == key)
        return c & 0xFFFFFF;
    int sms = 0, per_sm = 0;
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem) !=
            cudaSuccess)
        return 0;
    if (per_sm < 1)
        return 0; /* does not fit at all: the caller reports a launch error */
    const int64_t n = static_cast<int64_t>(sms) * per_sm;
    cache.store(key | (n & 0xFFFFFF), std::memory_order_relaxed);
    return n;
}

/* The grid of a persistent launch: enough blocks to fill the device once (`resident`),
 * spread over the batch (y) and the passes over the vectors (z, `per_pass` vectors each), and
 * never more row groups (x) than there are. */
inline dim3 persistent_grid(int64_t resident, int64_t groups, const Params &p, int per_pass)
{
    const int64_t vblocks = (p.m + per_pass - 1) / per_pass;
    const int64_t batch = p.batch < 65535 ? p.batch : 65535;
    const int64_t vb = vblocks < 65535 ? vblocks : 65535;
    int64_t gx = (resident + batch * vb - 1) / (batch * vb);
    if (gx > groups)
        gx = groups;
    if (gx < 1)
        gx = 1;
    return dim3(static_cast<unsigned>(gx), static_cast<unsigned>(batch),
                static_cast<unsigned>(vb));
}

} // namespace qmvc

#endif /* QMV_CUDA_DEVICE_COMMON_CUH */
