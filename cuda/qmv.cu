/*
 * qmv.cu - the generic CUDA qmv kernel and qmv_cuda_qmv().
 *
 * The kernel follows the canonical order of docs/ORDER.md exactly, so its result equals the
 * CPU reference bit for bit: one warp per weight row, each thread owning four consecutive
 * lanes (lanes 4t..4t+3, hence four consecutive 32-element chunks per 128-chunk step), fused
 * multiply-adds written as __fmaf_rn, additions as __fadd_rn, and the lane tree done with
 * shuffles (offsets 16..1 between threads, then the last two levels inside a thread).
 * Up to 8 vectors share one pass over the weights; larger M loops over blocks of 8.
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "internal.h"
#include "qmv_cuda.h"

namespace {

constexpr int kChunk = 32;
constexpr int kLanes = 128;
constexpr int kWarpsPerBlock = 4;
constexpr int kVecBlock = 8; /* vectors per pass over the weights */

enum ElemKind { kElemUint, kElemE2M1, kElemE4M3 };
enum ScaleKind { kScaleFloat, kScaleE8M0, kScaleE4M3 };

struct Params {
    const uint32_t *packed;
    int64_t packed_row_stride, packed_batch_stride;
    const void *scales, *biases;
    int64_t scales_row_stride, scales_batch_stride;
    int scale_dtype, group_size;
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

__device__ __forceinline__ float e2m1_value(unsigned c)
{
    const unsigned m = c & 7u, e = m >> 1, half = m & 1u;
    uint32_t bits;
    if (e == 0)
        bits = half ? 0x3F000000u : 0u; /* 0.5 or 0 */
    else
        bits = ((e + 126u) << 23) | (half << 22); /* (1 + half/2) * 2^(e-1) */
    return __uint_as_float(bits | ((c & 8u) << 28));
}

__device__ __forceinline__ float e4m3_value(unsigned c)
{
    const uint32_t sign = (c & 0x80u) << 24;
    const unsigned exp = (c >> 3) & 15u, mant = c & 7u;
    if (exp == 15u && mant == 7u)
        return __uint_as_float(sign | 0x7FC00000u);
    if (exp != 0u)
        return __uint_as_float(sign | ((exp + 120u) << 23) | (mant << 20));
    /* Subnormal: mant * 2^-9, exact. */
    return __uint_as_float(sign | __float_as_uint(__fmul_rn(static_cast<float>(mant), 0.001953125f)));
}

__device__ __forceinline__ float e8m0_value(unsigned b)
{
    if (b == 0u)
        return __uint_as_float(0x00400000u); /* 2^-127 */
    if (b == 255u)
        return __uint_as_float(0x7FC00000u);
    return __uint_as_float(b << 23);
}

template <int ELEM>
__device__ __forceinline__ float elem_value(unsigned c)
{
    if (ELEM == kElemE2M1)
        return e2m1_value(c);
    if (ELEM == kElemE4M3)
        return e4m3_value(c);
    return static_cast<float>(c);
}

template <int SCALE>
__device__ __forceinline__ float scale_value(const Params &p, int64_t i)
{
    if (SCALE == kScaleE8M0)
        return e8m0_value(__ldg(static_cast<const unsigned char *>(p.scales) + i));
    if (SCALE == kScaleE4M3)
        return e4m3_value(__ldg(static_cast<const unsigned char *>(p.scales) + i));
    return load_float(p.scale_dtype, p.scales, i);
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

template <int XT>
__device__ __forceinline__ float load_x(const void *p, int64_t i)
{
    return load_float(XT, p, i);
}

/*
 * One warp per row. Thread t owns lanes 4t..4t+3; in each step of 128 chunks it visits its four
 * chunks in order, always accumulating into acc[.][0] and then rotating the four accumulators,
 * so the loop over the four chunks need not be unrolled (code size) while the accumulators stay
 * in registers.
 */
template <int BITS, int ELEM, int SCALE, int SEG, int XT>
__global__ void __launch_bounds__(kWarpsPerBlock * 32) qmv_kernel(const Params p)
{
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t n = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + warp;
    if (n >= p.rows)
        return; /* whole warps leave together; nothing below synchronizes the block */
    const int64_t nchunks = (p.k + kChunk - 1) / kChunk;
    const bool has_bias = SCALE == kScaleFloat;
    const int64_t xsize = XT == QMV_DTYPE_F32 ? 4 : 2;

    for (int64_t b = blockIdx.y; b < p.batch; b += gridDim.y) {
        const uint32_t *row = p.packed + b * p.packed_batch_stride + n * p.packed_row_stride;
        const int64_t srow = b * p.scales_batch_stride + n * p.scales_row_stride;
        for (int64_t j0 = static_cast<int64_t>(blockIdx.z) * kVecBlock; j0 < p.m;
             j0 += static_cast<int64_t>(gridDim.z) * kVecBlock) {
            const int mb = p.m - j0 < kVecBlock ? static_cast<int>(p.m - j0) : kVecBlock;
            const char *xb = static_cast<const char *>(p.x) +
                             (b * p.x_batch_stride + j0 * p.x_row_stride) * xsize;
            float acc[kVecBlock][4];
#pragma unroll
            for (int j = 0; j < kVecBlock; j++)
#pragma unroll
                for (int q = 0; q < 4; q++)
                    acc[j][q] = 0.0f;

            for (int64_t c0 = 0; c0 < nchunks; c0 += kLanes) {
#pragma unroll 1
                for (int q = 0; q < 4; q++) {
                    const int64_t c = c0 + 4 * lane + q;
                    if (c < nchunks) {
                        const int64_t k0 = c * kChunk;
                        const int len = p.k - k0 < kChunk ? static_cast<int>(p.k - k0) : kChunk;
                        const int nw = len * BITS / 32;
                        uint32_t w[BITS];
#pragma unroll
                        for (int t = 0; t < BITS; t++)
                            w[t] = t < nw ? __ldg(row + c * BITS + t) : 0u;
                        float v[kChunk];
#pragma unroll
                        for (int i = 0; i < kChunk; i++)
                            v[i] = elem_value<ELEM>(chunk_code<BITS>(w, i));
#pragma unroll
                        for (int s = 0; s < kChunk / SEG; s++) {
                            if (s * SEG >= len)
                                continue;
                            const int64_t g = (k0 + s * SEG) / p.group_size;
                            const float sc = scale_value<SCALE>(p, srow + g);
                            const float bias =
                                has_bias ? load_float(p.scale_dtype, p.biases, srow + g) : 0.0f;
#pragma unroll
                            for (int j = 0; j < kVecBlock; j++) {
                                if (j >= mb)
                                    continue;
                                const void *x = xb + j * p.x_row_stride * xsize;
                                float pp = 0.0f, xs = 0.0f;
#pragma unroll
                                for (int i = 0; i < SEG; i++) {
                                    const float xf = load_x<XT>(x, k0 + s * SEG + i);
                                    pp = __fmaf_rn(xf, v[s * SEG + i], pp);
                                    if (has_bias)
                                        xs = __fadd_rn(xs, xf);
                                }
                                float a = __fmaf_rn(pp, sc, acc[j][0]);
                                if (has_bias)
                                    a = __fmaf_rn(xs, bias, a);
                                acc[j][0] = a;
                            }
                        }
                    }
                    /* Rotate so that the next chunk's lane is in acc[.][0]; after four
                     * rotations every lane is back in place. */
#pragma unroll
                    for (int j = 0; j < kVecBlock; j++) {
                        const float t0 = acc[j][0];
                        acc[j][0] = acc[j][1];
                        acc[j][1] = acc[j][2];
                        acc[j][2] = acc[j][3];
                        acc[j][3] = t0;
                    }
                }
            }

#pragma unroll
            for (int j = 0; j < kVecBlock; j++) {
                if (j >= mb)
                    continue;
                float a0 = acc[j][0], a1 = acc[j][1], a2 = acc[j][2], a3 = acc[j][3];
                /* Tree levels w = 64 .. 4: lane i (thread i/4) adds lane i + w (thread + w/4). */
#pragma unroll
                for (int off = 16; off >= 1; off >>= 1) {
                    a0 = __fadd_rn(a0, __shfl_down_sync(0xFFFFFFFFu, a0, off));
                    a1 = __fadd_rn(a1, __shfl_down_sync(0xFFFFFFFFu, a1, off));
                    a2 = __fadd_rn(a2, __shfl_down_sync(0xFFFFFFFFu, a2, off));
                    a3 = __fadd_rn(a3, __shfl_down_sync(0xFFFFFFFFu, a3, off));
                }
                if (lane == 0) {
                    a0 = __fadd_rn(a0, a2); /* w = 2 */
                    a1 = __fadd_rn(a1, a3);
                    float r = __fadd_rn(a0, a1); /* w = 1 */
                    if (p.gscale)
                        r = __fmul_rn(r, __fdiv_rn(*p.gscale, 2688.0f));
                    store_result(p.y_dtype, p.y,
                                 b * p.y_batch_stride + (j0 + j) * p.y_row_stride + n, r);
                }
            }
        }
    }
}

template <int BITS, int ELEM, int SCALE, int SEG>
cudaError_t launch(const Params &p, dim3 grid, cudaStream_t stream)
{
    const unsigned threads = kWarpsPerBlock * 32;
    if (p.x_dtype == QMV_DTYPE_F32)
        qmv_kernel<BITS, ELEM, SCALE, SEG, QMV_DTYPE_F32><<<grid, threads, 0, stream>>>(p);
    else if (p.x_dtype == QMV_DTYPE_F16)
        qmv_kernel<BITS, ELEM, SCALE, SEG, QMV_DTYPE_F16><<<grid, threads, 0, stream>>>(p);
    else
        qmv_kernel<BITS, ELEM, SCALE, SEG, QMV_DTYPE_BF16><<<grid, threads, 0, stream>>>(p);
    return cudaGetLastError();
}

cudaError_t launch_format(const qmv_format &f, const Params &p, dim3 grid, cudaStream_t s)
{
    switch (f.mode) {
    case QMV_MODE_MXFP4:
        return launch<4, kElemE2M1, kScaleE8M0, 32>(p, grid, s);
    case QMV_MODE_NVFP4:
        return launch<4, kElemE2M1, kScaleE4M3, 16>(p, grid, s);
    case QMV_MODE_MXFP8:
        return launch<8, kElemE4M3, kScaleE8M0, 32>(p, grid, s);
    default:
        break;
    }
    switch (f.bits) {
    case 2:
        return launch<2, kElemUint, kScaleFloat, 32>(p, grid, s);
    case 3:
        return launch<3, kElemUint, kScaleFloat, 32>(p, grid, s);
    case 4:
        return launch<4, kElemUint, kScaleFloat, 32>(p, grid, s);
    case 5:
        return launch<5, kElemUint, kScaleFloat, 32>(p, grid, s);
    case 6:
        return launch<6, kElemUint, kScaleFloat, 32>(p, grid, s);
    default:
        return launch<8, kElemUint, kScaleFloat, 32>(p, grid, s);
    }
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
    const int64_t blocks = (w->rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
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
    p.group_size = w->format.group_size;
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
    const int64_t vblocks = (v->m + kVecBlock - 1) / kVecBlock;
    const dim3 grid(static_cast<unsigned>(blocks),
                    static_cast<unsigned>(v->batch < 65535 ? v->batch : 65535),
                    static_cast<unsigned>(vblocks < 65535 ? vblocks : 65535));
    const cudaError_t e = launch_format(w->format, p, grid, stream);
    if (e != cudaSuccess)
        return qmvi_fail(QMV_STATUS_DEVICE_ERROR, "kernel launch failed: %s",
                         cudaGetErrorString(e));
    return qmvi_ok();
}
