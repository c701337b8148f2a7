/*
 * order_mlx_cuda.c - the orders "mlx-0.32.4-cuda-qmv" and "mlx-0.32.4-cuda-fp-qmv": MLX
 * 0.32.4's CUDA matrix-vector kernels for mx.quantized_matmul(transpose=True), emulated one
 * float operation at a time. Not yet confirmed on a GPU (docs/VERIFY.md says how to).
 *
 * Which kernel MLX runs (mlx/backend/cuda/quantized/quantized.cpp, QuantizedMatmul::eval_gpu,
 * with the supports_* predicates of qmm/qmm.cu): on sm_80/sm_90 `qmv` (qmm/qmv.cu) for every
 * mode when M*B < 8 (for affine 4/8-bit with K <= group size, K % 64 == 0 and N % 4 == 0 on
 * sm_90 only when M == B == 1: qmm_sm90 takes the rest), and for any M when K is not a
 * multiple of max(64, group size); `fp_qmv` (qmm/fp_qmv.cu) replaces qmv for the fp modes on
 * sm_100 and later with at most 8 vectors.
 *
 * Assumptions, to be confirmed on a GPU: nvcc contracts a*b+c into one FMA wherever the
 * source writes it as one expression or as a half2/bfloat16 multiply followed by an add
 * without an explicit rounding mode (MLX is built without -fmad=false; sm_90 for bfloat16);
 * cooperative_groups::reduce of a float sum over a warp is the xor butterfly of CUDA 13's
 * coalesced_reduce.h (masks 16, 8, 4, 2, 1); fp_qmv runs with 4 words per thread when K is
 * a multiple of 32 and 2 otherwise (MLX's buffers are aligned).
 */
#include <math.h>

#include "codec.h"
#include "elements.h"
#include "orders.h"
#include "pack.h"

#define WARP 32

/* The warp reduction: lane 0's result of the xor butterfly (acc[i] + acc[i ^ m] for m = 16
 * down to 1; float addition is commutative, so lane 0 sees this tree). */
static float warp_tree(float *acc)
{
    for (int m = WARP / 2; m >= 1; m /= 2)
        for (int i = 0; i < m; i++)
            acc[i] = acc[i] + acc[i + m];
    return acc[0];
}

/* Value of code c of an fp mode's element (E2M1 or E4M3FN, 0x7F/0xFF NaN). */
static float fp_elem(qmv_mode mode, unsigned c)
{
    return mode == QMV_MODE_MXFP8 ? qmvi_e4m3_to_f32(c) : qmvi_e2m1_to_f32(c);
}

/* Scale g of row (srow) as float: affine from its dtype, E8M0 (0 = 2^-127, 0xFF NaN) or E4M3. */
static float group_scale(const qmv_qmatrix *w, int64_t srow, int64_t g)
{
    const qmvi_mode_traits *tr = &qmvi_traits[w->format.mode];
    return qmvi_scale_value(tr->scale, w->scale_dtype, w->scales, srow + g);
}

/* ---- qmv (qmm/qmv.cu: qmv_kernel_impl, dequant_fma) ----------------------------------------
 *
 * T = y's dtype. One warp per output; E elements per thread per step (16 when T is 16-bit and
 * codes have <= 4 bits, else 8). Thread t accumulates, in steps r = 0, 1, ..., the tile of E
 * consecutive elements starting at t*E + r*32*E (a last partial step covers the K % (32*E)
 * remaining elements with the same offsets from K - rest), into E accumulators: of type T,
 * or float when codes have 8 bits or T is float. Per tile, with s the group scale in T (fp
 * scales rounded to T) and q the code's value in T:
 *   w = fma_T(q, s, b)  (affine; one rounding: the compiler fuses the multiply and the add)
 *   w = fl_T(q * s)     (fp modes)
 *   acc_i = fma_T(x_i, w_i, acc_i)          (T accumulators)
 *   acc_i = fmaf(x_i, w_i, acc_i)           (float accumulators; x and w exact in float)
 * Then per thread sum = ((0 + acc_0) + acc_1) + ... in float, the warp tree over the 32
 * threads, and y = fl_T(sum).
 */
static float cuda_qmv_dot(const qmv_qmatrix *w, qmv_dtype t, int64_t b, int64_t n,
                          qmv_dtype x_dtype, const void *x)
{
    const int bits = w->format.bits, gs = w->format.group_size;
    const qmv_mode mode = w->format.mode;
    const int e = (t != QMV_DTYPE_F32 && bits <= 4) ? 16 : 8;
    const int acc_t = (bits < 8 && t != QMV_DTYPE_F32); /* accumulators in T */
    const uint32_t *row = qmvi_mlx_w_row(w, b, n);
    const int64_t srow = qmvi_mlx_scale_row(w, b, n);
    const int64_t step = (int64_t)WARP * e, full = w->k / step, rest = w->k % step;
    float lanes[WARP];
    for (int lane = 0; lane < WARP; lane++) {
        float acc[16] = {0};
        for (int64_t r = 0; r <= full; r++) {
            const int64_t idx = r < full ? lane * e + r * step : lane * e + w->k - rest;
            if (r == full && (rest == 0 || idx >= w->k))
                break;
            const int64_t g = idx / gs;
            const float s = qmvi_round_to(t, group_scale(w, srow, g));
            const float bias =
                mode == QMV_MODE_AFFINE ? qmvi_load(w->scale_dtype, w->biases, srow + g) : 0.0f;
            for (int i = 0; i < e; i++) {
                const unsigned c = qmvi_code_get(row, idx + i, bits);
                const float xv = qmvi_load(x_dtype, x, idx + i);
                float wv;
                if (mode == QMV_MODE_AFFINE)
                    wv = qmvi_mlx_fma(t, (float)c, s, qmvi_round_to(t, bias));
                else
                    wv = qmvi_round_to(t, fp_elem(mode, c) * s);
                acc[i] = acc_t ? qmvi_mlx_fma(t, xv, wv, acc[i]) : fmaf(xv, wv, acc[i]);
            }
        }
        float sum = 0.0f;
        for (int i = 0; i < e; i++)
            sum = sum + acc[i];
        lanes[lane] = sum;
    }
    return warp_tree(lanes);
}

/* ---- fp_qmv (qmm/fp_qmv.cu: fp_qmv_impl) ---------------------------------------------------
 *
 * T = y's dtype; fp modes only. One warp per output; v = 8 (4-bit) or 4 (8-bit) values per
 * 32-bit word; each thread takes nw words per step (4 when K % 32 == 0, else 2): thread t,
 * step r, words nw*t + 32*nw*r .. +nw. Those words are split into sub-steps of one group
 * scale each (max(nw*v / group, 1) sub-steps of nw / that many words). Per sub-step, two
 * float accumulators lx = ly = 0: 4-bit codes alternate x, y, x, y, ... over the 8 values of
 * a word; 8-bit codes give values 0, 1 to x and 2, 3 to y; each is acc = fmaf(e, x_k, acc).
 * Then sum = fmaf(lx + ly, s, sum) with s the scale as float. The warp tree over the 32
 * threads' sums, and y = fl_T(sum).
 */
static float cuda_fp_qmv_dot(const qmv_qmatrix *w, int64_t b, int64_t n, qmv_dtype x_dtype,
                             const void *x)
{
    const int bits = w->format.bits, gs = w->format.group_size;
    const qmv_mode mode = w->format.mode;
    const int v = bits == 8 ? 4 : 8;
    const int nw = w->k % 32 == 0 ? 4 : 2;
    const int nv = v * nw;
    const int sub = nv / gs > 1 ? nv / gs : 1, words_per_sub = nw / sub;
    const int64_t packed_cols = w->k / v;
    const uint32_t *row = qmvi_mlx_w_row(w, b, n);
    const int64_t srow = qmvi_mlx_scale_row(w, b, n);
    float lanes[WARP];
    for (int lane = 0; lane < WARP; lane++) {
        float sum = 0.0f;
        for (int64_t col = (int64_t)nw * lane; col < packed_cols; col += (int64_t)WARP * nw) {
            for (int i = 0; i < sub; i++) {
                float lx = 0.0f, ly = 0.0f;
                for (int j = 0; j < words_per_sub; j++) {
                    const int64_t k0 = (col + (int64_t)words_per_sub * i + j) * v;
                    for (int q = 0; q < v; q++) {
                        const float e = fp_elem(mode, qmvi_code_get(row, k0 + q, bits));
                        const float xv = qmvi_load(x_dtype, x, k0 + q);
                        const int to_x = bits == 8 ? q < 2 : (q % 2 == 0);
                        if (to_x)
                            lx = fmaf(e, xv, lx);
                        else
                            ly = fmaf(e, xv, ly);
                    }
                }
                const int64_t g = (col * v) / gs + i;
                sum = fmaf(lx + ly, group_scale(w, srow, g), sum);
            }
        }
        lanes[lane] = sum;
    }
    return warp_tree(lanes);
}

static qmv_status cuda_order(const char *name, int fp, const qmv_qmatrix *w,
                             const qmv_vectors *v)
{
    qmv_dtype t;
    QMVI_TRY(qmvi_mlx_check(name, w, v, &t));
    if (w->format.mode == QMV_MODE_AFFINE && w->format.bits == 1)
        return qmvi_fail(QMV_STATUS_UNSUPPORTED,
                         "order %s: MLX 0.32.4's CUDA kernels have no 1-bit affine", name);
    if (fp && w->format.mode == QMV_MODE_AFFINE)
        return qmvi_fail(QMV_STATUS_UNSUPPORTED,
                         "order %s: MLX runs fp_qmv for mxfp4, nvfp4 and mxfp8 only", name);
    if (!fp && w->k % 8 != 0)
        return qmvi_fail(QMV_STATUS_UNSUPPORTED, "order %s: MLX's qmv needs K %% 8 == 0", name);
    for (int64_t b = 0; b < v->batch; b++)
        for (int64_t j = 0; j < v->m; j++) {
            const void *x = qmvi_mlx_x_row(w, v, b, j);
            const int64_t y0 = b * v->y_batch_stride + j * v->y_row_stride;
            for (int64_t n = 0; n < w->rows; n++) {
                float r = fp ? cuda_fp_qmv_dot(w, b, n, v->x_dtype, x)
                             : cuda_qmv_dot(w, t, b, n, v->x_dtype, x);
                qmvi_store_result(t, v->y, y0 + n, r);
            }
        }
    return qmvi_ok();
}

qmv_status qmvi_order_mlx_cuda_qmv(const qmv_qmatrix *w, const qmv_vectors *v)
{
    return cuda_order("mlx-0.32.4-cuda-qmv", 0, w, v);
}

qmv_status qmvi_order_mlx_cuda_fp_qmv(const qmv_qmatrix *w, const qmv_vectors *v)
{
    return cuda_order("mlx-0.32.4-cuda-fp-qmv", 1, w, v);
}
