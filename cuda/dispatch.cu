/*
 * dispatch.cu - the CUDA entry points: argument validation, the kernel choice (option,
 * QMV_CUDA_KERNEL, tuned winners, the measured table) and the tuning call.
 *
 * Both kernels produce the canonical result, so the choice only ever changes speed.
 */
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <mutex>

#include "device_common.cuh"
#include "internal.h"
#include "launch.h"
#include "qmv_cuda.h"

namespace {

using qmvc::FpGeometry;
using qmvc::Params;

/* 1 when p is a multiple of 16 bytes and each stride (in elements of size es) keeps it so. */
bool aligned16(const void *ptr, int64_t es, int64_t s1, int64_t s2)
{
    return reinterpret_cast<uintptr_t>(ptr) % 16 == 0 && (s1 * es) % 16 == 0 &&
           (s2 * es) % 16 == 0;
}

/* ---- The measured table ------------------------------------------------------------------ */

/* One row: on compute capability [cc_min, cc_max] (major * 10 + minor), for the modes in
 * `modes` (bit mask of qmv_mode), M in [m_min, m_max] and N in [n_min, n_max], run `kernel`
 * with fp_qmv geometry `geom` (rows 0: the built-in one). First match wins; no match means the
 * generic kernel. Every row cites its measurement in docs/perf-log.md by entry heading. */
struct TableRow {
    int cc_min, cc_max;
    unsigned modes;
    int64_t m_min, m_max, n_min, n_max;
    qmv_cuda_kernel kernel;
    FpGeometry geom;
};

constexpr unsigned kFpModes =
    1u << QMV_MODE_MXFP4 | 1u << QMV_MODE_NVFP4 | 1u << QMV_MODE_MXFP8;

/* sm_90 rows: docs/perf-log.md, "2026-11-27 · 263acbd — fp_qmv: the warp kernel, PRMT decode,
 * vector staging". H100 80GB HBM3 and H200, fp16 x, N = K = 16384, M = 1: the warp kernel
 * (2 rows x 16 warps) 63.7 / 75.6 / 76.1 us (mxfp4 / nvfp4 / mxfp8, H200) against the lane-set
 * kernel's 67.5 / 76.5 / 76.3; N = K = 4096 12.6 against 16.3 (mxfp4); M = 2 107.6 against
 * 119.3. N = 2048, K = 16384: the lane-set kernel 2x4 17.5 / 19.5 us (mxfp4 / mxfp8) against
 * the warp kernel's 23.3 / 22.7 and qmv's 22.7 / 26.5.
 * M > 4: docs/perf-log.md, "2026-11-27 · feb88cf — fp_qmv: one pass of up to 8 vectors, any
 * K", H100, 16384^2: the warp kernel 290 / 321 / 293 us at M = 8 (mxfp4 / nvfp4 / mxfp8)
 * against qmv's 726 / 784 / 739; M = 16 (two passes) 713 against 1420 (mxfp4, the entry's run 1
 * kernel). */
const TableRow kTable[] = {
    {90, 99, kFpModes, 1, INT64_MAX, 4096, INT64_MAX, QMV_CUDA_KERNEL_FP_QMV, {2, 0, 16}},
    {90, 99, kFpModes, 1, 1, 2048, INT64_MAX, QMV_CUDA_KERNEL_FP_QMV, {2, 4, 0}},
};

struct Choice {
    qmv_cuda_kernel kernel;
    FpGeometry geom;
};

int compute_capability()
{
    static std::atomic<int> cache[64];
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || dev < 0)
        return 0;
    if (dev < 64) {
        const int c = cache[dev].load(std::memory_order_relaxed);
        if (c)
            return c;
    }
    int major = 0, minor = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess)
        return 0;
    const int c = major * 10 + minor;
    if (dev < 64)
        cache[dev].store(c, std::memory_order_relaxed);
    return c;
}

Choice table_choice(const qmv_format &f, const Params &p)
{
    const int cc = compute_capability();
    for (const TableRow &r : kTable)
        if (cc >= r.cc_min && cc <= r.cc_max && (r.modes >> f.mode & 1u) && p.m >= r.m_min &&
            p.m <= r.m_max && p.rows >= r.n_min && p.rows <= r.n_max)
            return {r.kernel, r.geom};
    return {QMV_CUDA_KERNEL_QMV, {0, 0}};
}

/* ---- QMV_CUDA_KERNEL ----------------------------------------------------------------------- */

qmv_cuda_kernel env_kernel()
{
    static std::once_flag once;
    static qmv_cuda_kernel k = QMV_CUDA_KERNEL_AUTO;
    std::call_once(once, [] {
        const char *e = getenv("QMV_CUDA_KERNEL");
        if (e && !strcmp(e, "qmv"))
            k = QMV_CUDA_KERNEL_QMV;
        else if (e && !strcmp(e, "fp_qmv"))
            k = QMV_CUDA_KERNEL_FP_QMV;
    });
    return k;
}

/* QMV_CUDA_FP_GEOMETRY (read once): the fp_qmv geometry for one aligned vector, overriding the
 * table's: 2x2 or 2x4 (rows x sets) for the lane-set kernel, w2 or w1 (rows per warp) for
 * the warp kernel. A measuring aid for filling the table. */
FpGeometry env_geometry()
{
    static std::once_flag once;
    static FpGeometry g = {0, 0, 0};
    std::call_once(once, [] {
        const char *e = getenv("QMV_CUDA_FP_GEOMETRY");
        if (e && (!strcmp(e, "2x2") || !strcmp(e, "2x4")))
            g = {e[0] - '0', e[2] - '0', 0};
        else if (e && (!strcmp(e, "w2") || !strcmp(e, "w1")))
            g = {e[1] - '0', 0, 16};
    });
    return g;
}

/* ---- Tuned winners ------------------------------------------------------------------------- */

/* What makes two problems "of the same kind" for qmv_cuda_tune(). */
struct TuneKey {
    int dev, mode, bits, x_dtype, m_class, log_n, log_k;
    bool operator==(const TuneKey &o) const { return !memcmp(this, &o, sizeof *this); }
};

int floor_log2(int64_t v)
{
    int l = 0;
    while (v > 1) {
        v >>= 1;
        l++;
    }
    return l;
}

TuneKey tune_key(const qmv_format &f, const Params &p)
{
    TuneKey k;
    memset(&k, 0, sizeof k);
    cudaGetDevice(&k.dev);
    k.mode = f.mode;
    k.bits = f.bits;
    k.x_dtype = p.x_dtype;
    k.m_class = p.m <= 2 ? static_cast<int>(p.m) : p.m <= 8 ? 8 : 9;
    k.log_n = floor_log2(p.rows);
    k.log_k = floor_log2(p.k);
    return k;
}

struct Tuned {
    std::mutex lock;
    TuneKey keys[64];
    qmv_cuda_kernel kernels[64];
    int count = 0, next = 0;
};

Tuned &tuned()
{
    static Tuned t;
    return t;
}

qmv_cuda_kernel tuned_lookup(const TuneKey &k)
{
    Tuned &t = tuned();
    std::lock_guard<std::mutex> g(t.lock);
    for (int i = 0; i < t.count; i++)
        if (t.keys[i] == k)
            return t.kernels[i];
    return QMV_CUDA_KERNEL_AUTO;
}

void tuned_store(const TuneKey &k, qmv_cuda_kernel kernel)
{
    Tuned &t = tuned();
    std::lock_guard<std::mutex> g(t.lock);
    for (int i = 0; i < t.count; i++)
        if (t.keys[i] == k) {
            t.kernels[i] = kernel;
            return;
        }
    const int slot = t.count < 64 ? t.count++ : t.next++ % 64; /* oldest entry goes */
    t.keys[slot] = k;
    t.kernels[slot] = kernel;
}

/* ---- Validation and the choice ------------------------------------------------------------ */

/* A validated call: the parameters, 16-byte alignment and the format. */
struct Call {
    qmv_format format;
    Params p;
    bool vec, empty;
};

qmv_status prepare(const qmv_qmatrix *w, const qmv_vectors *v, const qmv_cuda_options *options,
                   Call *call)
{
    if (options) {
        if (options->struct_size < offsetof(qmv_cuda_options, kernel) + sizeof(options->kernel))
            return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT,
                             "options->struct_size %zu is too small", options->struct_size);
        if (options->kernel != QMV_CUDA_KERNEL_AUTO && options->kernel != QMV_CUDA_KERNEL_QMV &&
            options->kernel != QMV_CUDA_KERNEL_FP_QMV)
            return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "kernel %d out of range",
                             static_cast<int>(options->kernel));
    }
    qmvi_qmatrix_info wi;
    QMVI_TRY(qmvi_check_qmatrix(w, v ? v->batch : 1, 0, &wi));
    QMVI_TRY(qmvi_check_vectors(w, &wi, v));
    if (w->format.mode == QMV_MODE_AFFINE && w->format.bits == 1)
        return qmvi_fail(QMV_STATUS_UNSUPPORTED,
                         "1-bit affine has no CUDA kernel yet (qmv_qmv runs it on the CPU)");
    if (w->rows > 0x7FFFFFFF) /* an upper bound of the grid's x extent */
        return qmvi_fail(QMV_STATUS_UNSUPPORTED, "%lld rows exceed the CUDA grid",
                         static_cast<long long>(w->rows));
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices < 1) {
        cudaGetLastError(); /* clear the error this query may have left */
        return qmvi_fail(QMV_STATUS_NO_DEVICE, "no CUDA device is available");
    }
    Params &p = call->p;
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
    call->format = w->format;
    /* 16-byte loads need every row of W and x to start 16-byte aligned. */
    call->vec = aligned16(w->packed, 4, w->packed_row_stride, w->packed_batch_stride) &&
                aligned16(v->x, static_cast<int64_t>(qmv_dtype_size(v->x_dtype)),
                          v->x_row_stride, v->x_batch_stride);
    call->empty = w->rows == 0;
    return QMV_STATUS_OK;
}

/* The fp_qmv geometry for p when fp_qmv runs it, whoever chose the kernel: the table's, where a
 * table row picks fp_qmv for p, else the built-in one. */
FpGeometry fp_geometry(const qmv_format &f, const Params &p)
{
    const Choice c = table_choice(f, p);
    return c.kernel == QMV_CUDA_KERNEL_FP_QMV ? c.geom : FpGeometry{0, 0, 0};
}

/* The kernel for a validated call; UNSUPPORTED only when the caller named one that cannot
 * run it. */
qmv_status choose(const Call &call, qmv_cuda_kernel named, Choice *out)
{
    if (named == QMV_CUDA_KERNEL_FP_QMV) {
        if (const char *why = qmvc::fp_qmv_unsupported(call.format, call.p))
            return qmvi_fail(QMV_STATUS_UNSUPPORTED, "%s", why);
        *out = {QMV_CUDA_KERNEL_FP_QMV, fp_geometry(call.format, call.p)};
        return QMV_STATUS_OK;
    }
    if (named == QMV_CUDA_KERNEL_QMV) {
        *out = {QMV_CUDA_KERNEL_QMV, {0, 0}};
        return QMV_STATUS_OK;
    }
    const bool fp_ok = !qmvc::fp_qmv_unsupported(call.format, call.p);
    qmv_cuda_kernel k = env_kernel();
    if (k == QMV_CUDA_KERNEL_AUTO)
        k = tuned_lookup(tune_key(call.format, call.p));
    if (k == QMV_CUDA_KERNEL_QMV || (k == QMV_CUDA_KERNEL_FP_QMV && fp_ok)) {
        *out = {k, k == QMV_CUDA_KERNEL_FP_QMV ? fp_geometry(call.format, call.p)
                                               : FpGeometry{0, 0, 0}};
        return QMV_STATUS_OK;
    }
    *out = table_choice(call.format, call.p);
    if (out->kernel == QMV_CUDA_KERNEL_FP_QMV && !fp_ok)
        *out = {QMV_CUDA_KERNEL_QMV, {0, 0}};
    return QMV_STATUS_OK;
}

cudaError_t run(const Call &call, const Choice &c, cudaStream_t stream)
{
    const FpGeometry eg = env_geometry();
    return c.kernel == QMV_CUDA_KERNEL_FP_QMV
               ? qmvc::launch_fp_qmv(call.format, call.p, call.vec, eg.rows ? eg : c.geom,
                                     stream)
               : qmvc::launch_qmv(call.format, call.p, call.vec, stream);
}

qmv_cuda_kernel named_kernel(const qmv_cuda_options *options)
{
    return options ? options->kernel : QMV_CUDA_KERNEL_AUTO;
}

} // namespace

extern "C" qmv_status qmv_cuda_qmv(const qmv_qmatrix *w, const qmv_vectors *v,
                                   const qmv_cuda_options *options, struct CUstream_st *stream)
{
    Call call;
    QMVI_TRY(prepare(w, v, options, &call));
    Choice c;
    QMVI_TRY(choose(call, named_kernel(options), &c));
    if (call.empty)
        return qmvi_ok();
    const cudaError_t e = run(call, c, stream);
    if (e != cudaSuccess)
        return qmvi_fail(QMV_STATUS_DEVICE_ERROR, "kernel launch failed: %s",
                         cudaGetErrorString(e));
    return qmvi_ok();
}

extern "C" qmv_status qmv_cuda_kernel_select(const qmv_qmatrix *w, const qmv_vectors *v,
                                             const qmv_cuda_options *options,
                                             qmv_cuda_kernel *kernel)
{
    if (!kernel)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "kernel is NULL");
    Call call;
    QMVI_TRY(prepare(w, v, options, &call));
    Choice c;
    QMVI_TRY(choose(call, named_kernel(options), &c));
    *kernel = c.kernel;
    return qmvi_ok();
}

extern "C" qmv_status qmv_cuda_tune(const qmv_qmatrix *w, const qmv_vectors *v, int iterations,
                                    struct CUstream_st *stream, qmv_cuda_kernel *chosen)
{
    if (iterations < 0 || iterations > 100000)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "iterations %d out of range [0, 100000]",
                         iterations);
    const int iters = iterations ? iterations : 20;
    Call call;
    QMVI_TRY(prepare(w, v, nullptr, &call));
    const qmv_cuda_kernel candidates[] = {QMV_CUDA_KERNEL_QMV, QMV_CUDA_KERNEL_FP_QMV};
    qmv_cuda_kernel best = QMV_CUDA_KERNEL_QMV;
    float best_ms = 0.0f;
    cudaEvent_t ev[2];
    if (cudaEventCreate(&ev[0]) != cudaSuccess) {
        cudaGetLastError();
        return qmvi_fail(QMV_STATUS_DEVICE_ERROR, "cudaEventCreate failed");
    }
    if (cudaEventCreate(&ev[1]) != cudaSuccess) {
        cudaGetLastError();
        cudaEventDestroy(ev[0]);
        return qmvi_fail(QMV_STATUS_DEVICE_ERROR, "cudaEventCreate failed");
    }
    cudaError_t e = cudaSuccess;
    for (qmv_cuda_kernel k : candidates) {
        Choice c;
        if (choose(call, k, &c) != QMV_STATUS_OK)
            continue; /* this kernel cannot run the problem */
        if (call.empty)
            break;
        for (int i = 0; i < 3 && e == cudaSuccess; i++) /* warm-up: caches, clocks */
            e = run(call, c, stream);
        if (e == cudaSuccess)
            e = cudaEventRecord(ev[0], stream);
        for (int i = 0; i < iters && e == cudaSuccess; i++)
            e = run(call, c, stream);
        if (e == cudaSuccess)
            e = cudaEventRecord(ev[1], stream);
        if (e == cudaSuccess)
            e = cudaEventSynchronize(ev[1]);
        float ms = 0.0f;
        if (e == cudaSuccess)
            e = cudaEventElapsedTime(&ms, ev[0], ev[1]);
        if (e != cudaSuccess)
            break;
        if (k == QMV_CUDA_KERNEL_QMV || ms < best_ms) {
            best = k;
            best_ms = ms;
        }
    }
    cudaEventDestroy(ev[0]);
    cudaEventDestroy(ev[1]);
    if (e != cudaSuccess)
        return qmvi_fail(QMV_STATUS_DEVICE_ERROR, "timed call failed: %s", cudaGetErrorString(e));
    tuned_store(tune_key(call.format, call.p), best);
    if (chosen)
        *chosen = best;
    return qmvi_ok();
}
