/*
 * qmv.h - quantized matrix-vector products with one exact, documented result.
 *
 * qmv computes y = x . W^T where W is stored in MLX's quantized layout (affine 1-8 bit,
 * mxfp4, nvfp4 or mxfp8 codes plus per-group scales). This header is the whole public CPU
 * API: formats, size queries, quantize, dequantize, conversions and the matrix-vector
 * product. The CUDA backend has its own header, qmv_cuda.h.
 *
 * Conventions used by every function below:
 * - Every fallible function returns a qmv_status. On any status other than QMV_STATUS_OK,
 *   nothing has been written to any output buffer.
 * - The caller owns all memory. Each buffer is passed with its size in bytes, and every
 *   access is checked against it before anything is written.
 * - Dimensions and strides are int64_t counted in elements of the buffer's type (uint32
 *   words for packed codes); byte counts are size_t and end in _bytes.
 * - Errors carry a message: qmv_last_error() returns the message of the most recent call on
 *   the calling thread (per-thread storage, like dlerror()). Successful calls clear it.
 * - Thread safety: every function may be called from several threads at once; nothing is
 *   shared between calls except read-only tables.
 * - Determinism: every function returns identical bits for identical inputs, whatever the
 *   thread count, CPU or (for qmv) device. See docs/ORDER.md for the canonical order of the
 *   matrix-vector product.
 * - Data is little-endian (the packed layout is defined on little-endian uint32 words).
 * - Alignment: pointers typed uint32_t * (packed words) and float * (global scales) must be
 *   aligned to 4 bytes, as their type requires; a misaligned one is rejected with
 *   QMV_STATUS_INVALID_ARGUMENT. Buffers passed as void * (x, y, w, scales, biases) may have
 *   any alignment.
 */
#ifndef QMV_H
#define QMV_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32) && defined(QMV_SHARED)
#  ifdef QMV_BUILDING_LIBRARY
#    define QMV_API __declspec(dllexport)
#  else
#    define QMV_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__)
#  define QMV_API __attribute__((visibility("default")))
#else
#  define QMV_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Versions ------------------------------------------------------------------------ */

#define QMV_VERSION_MAJOR  0
#define QMV_VERSION_MINOR  1
#define QMV_VERSION_PATCH  0
#define QMV_VERSION_STRING "0.1.0"
#define QMV_VERSION_NUMBER (QMV_VERSION_MAJOR * 10000 + QMV_VERSION_MINOR * 100 + QMV_VERSION_PATCH)

/* Version of the canonical evaluation order (docs/ORDER.md). Any change of it changes
 * results, so it is versioned apart from the library. */
#define QMV_ORDER_VERSION 1

/* The loaded library's versions; compare with the macros to detect a header mismatch. */
QMV_API unsigned qmv_version_number(void);
QMV_API const char *qmv_version_string(void);
QMV_API unsigned qmv_order_version(void);

/* ---- Status -------------------------------------------------------------------------- */

/* Values are stable and never renumbered. */
#define QMV_STATUS_LIST(X)                                                                 \
    X(OK, 0, "success")                                                                    \
    X(INVALID_ARGUMENT, 1, "invalid argument")                                             \
    X(UNSUPPORTED, 2, "unsupported format, bit width or group size")                       \
    X(BUFFER_TOO_SMALL, 3, "buffer too small")                                             \
    X(OUT_OF_MEMORY, 4, "memory allocation failed")                                        \
    X(MALFORMED_INPUT, 5, "malformed or truncated input")                                  \
    X(IO_ERROR, 6, "I/O error")                                                            \
    X(NO_DEVICE, 7, "CUDA backend unavailable")                                            \
    X(DEVICE_ERROR, 8, "CUDA runtime error")                                               \
    X(NON_FINITE, 9, "non-finite value where a finite one is required")                    \
    X(OVERFLOW, 10, "size computation overflows")

typedef enum {
#define QMV_X_(name, value, text) QMV_STATUS_##name = value,
    QMV_STATUS_LIST(QMV_X_)
#undef QMV_X_
} qmv_status;

/* A short static description of a status; never NULL ("unknown status" if out of range). */
QMV_API const char *qmv_status_string(qmv_status status);

/* The message of the most recent qmv call on this thread: "" after a success, a sentence
 * naming the offending argument after a failure. The pointer stays valid until the next qmv
 * call on the same thread. Never NULL. */
QMV_API const char *qmv_last_error(void);

/* ---- Element types, modes, formats ---------------------------------------------------- */

/* Float element types of w, x, y and affine scales/biases. */
typedef enum {
    QMV_DTYPE_F32 = 0,  /* IEEE binary32 */
    QMV_DTYPE_F16 = 1,  /* IEEE binary16, stored as uint16 bits */
    QMV_DTYPE_BF16 = 2, /* bfloat16, stored as uint16 bits */
} qmv_dtype;
#define QMV_DTYPE_COUNT 3

typedef enum {
    QMV_MODE_AFFINE = 0, /* q in [0, 2^bits-1], w ~ s*q + b; bits 1-6 or 8; group 32,64,128 */
    QMV_MODE_MXFP4 = 1,  /* E2M1 elements, E8M0 scale per 32 */
    QMV_MODE_NVFP4 = 2,  /* E2M1 elements, E4M3 scale per 16, optional f32 global scale */
    QMV_MODE_MXFP8 = 3,  /* E4M3 elements, E8M0 scale per 32 */
} qmv_mode;
#define QMV_MODE_COUNT 4

/* Rounding profiles of quantize (docs/FORMATS.md): the MLX backends disagree, so the caller
 * names the one whose bits it wants. */
typedef enum {
    QMV_PROFILE_MLX_CPU = 0,  /* bit-exact with mx.quantize on MLX's CPU stream (default) */
    QMV_PROFILE_MLX_CUDA = 1, /* bit-exact with MLX's CUDA quantize kernels */
    QMV_PROFILE_OCP = 2,      /* OCP Microscaling v1.0 for mx modes; as MLX_CUDA otherwise */
} qmv_profile;
#define QMV_PROFILE_COUNT 3

/* A quantization format: mode, bits per element, elements per group. */
typedef struct {
    qmv_mode mode;
    int bits;
    int group_size;
} qmv_format;

/* Names as MLX and the qmv tool spell them: "float32" "float16" "bfloat16"; "affine" "mxfp4"
 * "nvfp4" "mxfp8"; "mlx-cpu" "mlx-cuda" "ocp". The *_name functions return NULL for values
 * out of range; the *_from_name functions return QMV_STATUS_INVALID_ARGUMENT for unknown
 * names and leave *out untouched. */
QMV_API const char *qmv_dtype_name(qmv_dtype dtype);
QMV_API const char *qmv_mode_name(qmv_mode mode);
QMV_API const char *qmv_profile_name(qmv_profile profile);
QMV_API qmv_status qmv_dtype_from_name(const char *name, qmv_dtype *out);
QMV_API qmv_status qmv_mode_from_name(const char *name, qmv_mode *out);
QMV_API qmv_status qmv_profile_from_name(const char *name, qmv_profile *out);

/* Bytes per element of a dtype (4 or 2); 0 for a value out of range. */
QMV_API size_t qmv_dtype_size(qmv_dtype dtype);

/* MLX's defaults for a mode: affine 4 bits / group 64, mxfp4 4/32, nvfp4 4/16, mxfp8 8/32. */
QMV_API qmv_status qmv_format_default(qmv_mode mode, qmv_format *out);

/* Checks that fmt names a supported combination. Stricter than MLX: fp modes accept only
 * their own bits and group size. Errors: INVALID_ARGUMENT (NULL, mode out of range),
 * UNSUPPORTED (bits or group size not allowed for the mode). */
QMV_API qmv_status qmv_format_validate(const qmv_format *fmt);

/* ---- Sizes ----------------------------------------------------------------------------- */

/* The dense layout of a rows x k matrix in format fmt: k must be a multiple of the group
 * size. scale_dtype is the dtype of affine scales and biases (ignored for fp modes, whose
 * scales are one uint8 per group). */
typedef struct {
    int64_t words_per_row;  /* k * bits / 32 uint32 words of packed codes */
    int64_t groups_per_row; /* k / group_size scales (and biases) */
    size_t packed_bytes;    /* rows * words_per_row * 4 */
    size_t scales_bytes;    /* rows * groups_per_row * scale element size */
    size_t biases_bytes;    /* affine: same as scales_bytes; fp modes: 0 */
} qmv_layout;

/* Errors: INVALID_ARGUMENT (NULL, negative sizes, k not a multiple of the group size, bad
 * dtype), UNSUPPORTED (format), OVERFLOW (sizes do not fit size_t). */
QMV_API qmv_status qmv_layout_query(const qmv_format *fmt, qmv_dtype scale_dtype, int64_t rows,
                                    int64_t k, qmv_layout *out);

/* ---- Execution options ----------------------------------------------------------------- */

/* CPU code paths of qmv_qmv(), qmv_quantize() and qmv_dequantize(). Every tier returns
 * identical bits (docs/ORDER.md, docs/FORMATS.md); they differ only in speed. "scalar" is the
 * portable OpenMP path and runs on any processor. */
typedef enum {
    QMV_CPU_TIER_SCALAR = 1u << 0, /* portable C */
    QMV_CPU_TIER_AVX2 = 1u << 1,   /* x86-64 AVX2 + FMA, 8 lanes per register */
    QMV_CPU_TIER_AVX512 = 1u << 2, /* x86-64 AVX-512 F/BW/VL, 16 lanes per register */
    QMV_CPU_TIER_NEON = 1u << 3,   /* AArch64 Advanced SIMD (every AArch64 processor), 4 lanes
                                    * per register in qmv_qmv() */
} qmv_cpu_tier;
/* Every tier this header names, as a mask (tiers a build or processor lacks included); iterate
 * with `for (unsigned b = 1; b <= QMV_CPU_TIER_ALL; b <<= 1) if (b & QMV_CPU_TIER_ALL)`. */
#define QMV_CPU_TIER_ALL                                                                           \
    (QMV_CPU_TIER_SCALAR | QMV_CPU_TIER_AVX2 | QMV_CPU_TIER_AVX512 | QMV_CPU_TIER_NEON)

/* Options of a CPU call. struct_size comes first so that fields can be appended; a zero
 * field means "default". Pass NULL for all defaults. A field that lies beyond struct_size
 * (a caller built against an older header) takes its default. */
typedef struct {
    size_t struct_size; /* sizeof(qmv_exec) */
    int num_threads;    /* 0: OpenMP's default; n > 0: at most n threads; 1: serial. Any
                         * count is clamped to QMV_MAX_THREADS, to omp_get_thread_limit() and
                         * to the number of independent work items of the call; < 0 is
                         * INVALID_ARGUMENT. */
    unsigned cpu_tiers; /* mask of qmv_cpu_tier allowed for this call; 0 = all the processor
                         * supports. Bits of tiers this library does not know are ignored.
                         * Narrowed further by the environment variable QMV_CPU_TIERS. */
} qmv_exec;
#define QMV_EXEC_INIT {sizeof(qmv_exec), 0, 0}
/* The most threads one call starts (a larger num_threads, or OpenMP default, is clamped). */
#define QMV_MAX_THREADS 1024

/* Stack in bytes one thread of qmv_qmv() needs on each CPU tier (the calling thread with
 * num_threads = 1, otherwise each OpenMP thread: set OMP_STACKSIZE, and the calling thread's
 * stack, at least this large). Measured with GCC at -O2: about 15.6 KB (scalar), 109 KiB
 * (AVX2) and 142 KiB (AVX-512); the values leave room for other compilers. The SIMD tiers keep
 * x in their lane layout and the lane accumulators on the stack, so that the product never
 * allocates. A smaller stack is not detected: the thread overflows it. The neon tier
 * keeps the same workspace as AVX2 with 4-lane blocks. */
#define QMV_STACK_SCALAR (20u * 1024u)
#define QMV_STACK_AVX2 (120u * 1024u)
#define QMV_STACK_AVX512 (152u * 1024u)
#define QMV_STACK_NEON (120u * 1024u)

/* The mask of tiers this processor and this build can run (always includes SCALAR). The
 * environment variable QMV_CPU_TIERS, a comma-separated list of tier names ("scalar",
 * "avx2", "avx512", "neon"), read once per process, narrows what every call may use; it does
 * not change this mask. Unknown names in it are ignored; a list naming no known tier leaves
 * scalar only. Thread-safe. */
QMV_API unsigned qmv_cpu_tiers_supported(void);

/* The tier a qmv_qmv() call whose exec->cpu_tiers is `allowed` uses: the best tier in
 * allowed (0 = all) & supported & QMV_CPU_TIERS; SCALAR when that set is empty. */
QMV_API qmv_cpu_tier qmv_cpu_tier_select(unsigned allowed);

/* "scalar", "avx2", "avx512" or "neon"; NULL for anything that is not exactly one tier. */
QMV_API const char *qmv_cpu_tier_name(qmv_cpu_tier tier);

/* The tier named exactly `name` ("scalar", "avx2", "avx512", "neon"), whether or not this
 * build or processor runs it. Errors: INVALID_ARGUMENT (NULL pointer, unknown name; *out
 * untouched). */
QMV_API qmv_status qmv_cpu_tier_from_name(const char *name, qmv_cpu_tier *out);

/* ---- Quantized matrices ----------------------------------------------------------------- */

/* A read-only quantized matrix of rows x k (rows = N outputs), possibly one of a batch.
 * Codes, scales and biases are in MLX's layout (docs/FORMATS.md); rows may be padded. */
typedef struct {
    qmv_format format;
    qmv_dtype scale_dtype; /* affine: dtype of scales and biases; ignored for fp modes */
    int64_t rows;          /* N */
    int64_t k;             /* K, a multiple of the group size */
    const uint32_t *packed;
    size_t packed_bytes;
    int64_t packed_row_stride;   /* words between rows, >= words_per_row */
    int64_t packed_batch_stride; /* words between batch items; 0 = shared by the batch */
    const void *scales;          /* affine: scale_dtype; fp modes: uint8 codes */
    size_t scales_bytes;
    const void *biases; /* affine only (NULL otherwise); same dtype and strides as scales */
    size_t biases_bytes;
    int64_t scales_row_stride;   /* elements between rows, >= groups_per_row */
    int64_t scales_batch_stride; /* elements between batch items; 0 = shared */
    const float *global_scale;   /* nvfp4 only: tensor-level scale g (finite); NULL = none */
} qmv_qmatrix;

/* Fills a qmv_qmatrix for a dense, unbatched matrix (strides from qmv_layout_query, sizes
 * taken as exactly the dense sizes). Errors as qmv_layout_query. */
QMV_API qmv_status qmv_qmatrix_dense(const qmv_format *fmt, qmv_dtype scale_dtype, int64_t rows,
                                     int64_t k, const uint32_t *packed, const void *scales,
                                     const void *biases, qmv_qmatrix *out);

/* ---- Quantize ---------------------------------------------------------------------------- */

/* Destination of qmv_quantize: dense buffers of the sizes qmv_layout_query reports (larger is
 * fine). scales/biases are in w's dtype for affine (as MLX stores them), uint8 otherwise. */
typedef struct {
    uint32_t *packed;
    size_t packed_bytes;
    void *scales;
    size_t scales_bytes;
    void *biases; /* affine only; must be NULL for fp modes */
    size_t biases_bytes;
} qmv_quant_out;

/*
 * qmv_quantize() - quantize w [rows x k] (w_dtype, rows w_row_stride elements apart) into
 * fmt with the rounding profile `profile`.
 *
 * global_scale: nvfp4 only, NULL for none. With g, element scales are computed for w * 2688/g
 *   (docs/FORMATS.md); g must be finite and > 0 with 2688/g finite.
 * Errors: INVALID_ARGUMENT (NULL pointers, negative sizes, k not a multiple of the group size,
 *   w_row_stride < k, bad dtype or profile, global scale given for a mode other than nvfp4),
 *   UNSUPPORTED (format), BUFFER_TOO_SMALL (w_bytes or an output too small), OVERFLOW,
 *   NON_FINITE (w contains NaN or Inf, or the global scale is not usable; nothing written).
 * Bit-exact with the named profile for every finite input; deviations from MLX where MLX's own
 * result is undefined are listed in docs/FORMATS.md. Identical output for every thread count
 * and CPU tier (exec->cpu_tiers narrows the tiers as for qmv_qmv()).
 */
QMV_API qmv_status qmv_quantize(const qmv_format *fmt, qmv_profile profile,
                                const float *global_scale, qmv_dtype w_dtype, const void *w,
                                size_t w_bytes, int64_t rows, int64_t k, int64_t w_row_stride,
                                const qmv_quant_out *out, const qmv_exec *exec);

/* ---- Dequantize -------------------------------------------------------------------------- */

/*
 * qmv_dequantize() - expand the quantized matrix w (batch strides ignored) into out
 * [w->rows x w->k] of out_dtype, rows out_row_stride elements apart.
 *
 * Values (docs/FORMATS.md): affine fl_R(fl_R(q*s) + b) in the scales' dtype R, then rounded to
 * out_dtype; fp modes e*s (exact in float32) rounded once to out_dtype; nvfp4 with a global
 * scale g: fl32(e * fl32(s * fl32(g/2688))) rounded to out_dtype (as MLX computes it). E8M0
 * 0xFF and E4M3 0x7F/0xFF decode as NaN; every NaN result is written as the canonical quiet NaN
 * of out_dtype (0x7FC00000, 0x7E00, 0x7FC0), as qmv_qmv() writes it. Any code or scale bytes are
 * accepted (no data-dependent errors).
 * Errors: INVALID_ARGUMENT, UNSUPPORTED, BUFFER_TOO_SMALL, OVERFLOW, NON_FINITE (global scale).
 * Identical output for every thread count and CPU tier (exec->cpu_tiers as for qmv_qmv()).
 */
QMV_API qmv_status qmv_dequantize(const qmv_qmatrix *w, qmv_dtype out_dtype, void *out,
                                  size_t out_bytes, int64_t out_row_stride,
                                  const qmv_exec *exec);

/* ---- Matrix-vector product -------------------------------------------------------------- */

/* The vectors of one qmv call: `batch` problems of `m` vectors of length k each. Vector j of
 * batch item b starts at element b*x_batch_stride + j*x_row_stride of x; output element n of
 * it is y[b*y_batch_stride + j*y_row_stride + n]. Strides are in elements and >= 0; x strides
 * may be 0 (broadcast), y rows must not overlap each other or any input (overlap is decided
 * on the bytes a call reads and writes, not on the buffer sizes: docs/FORMATS.md, Validation). */
typedef struct {
    int64_t batch; /* L >= 1 problems; W's batch strides select its matrix */
    int64_t m;     /* M >= 1 vectors per problem */
    qmv_dtype x_dtype;
    const void *x;
    size_t x_bytes;
    int64_t x_row_stride;
    int64_t x_batch_stride;
    qmv_dtype y_dtype;
    void *y;
    size_t y_bytes;
    int64_t y_row_stride;   /* >= w->rows */
    int64_t y_batch_stride; /* >= (m-1)*y_row_stride + w->rows when batch > 1 */
} qmv_vectors;

/*
 * qmv_qmv() - y[b][j][n] = sum_k x[b][j][k] * W[b][n][k] in the canonical order (docs/ORDER.md),
 * rounded once to y_dtype (round to nearest even; NaN written as the canonical quiet NaN
 * 0x7FC00000 / 0x7E00 / 0x7FC0). For nvfp4 with a global scale g the sum is multiplied by
 * fl32(g/2688) before rounding.
 *
 * Parallel over output rows with OpenMP (exec->num_threads), on the best CPU tier allowed
 * (exec->cpu_tiers, qmv_cpu_tier_select()). Identical bits to qmv_qmv_reference() for every
 * thread count, tier, stride and batch layout. Never allocates; each thread needs the stack
 * QMV_STACK_SCALAR / QMV_STACK_AVX2 / QMV_STACK_AVX512 / QMV_STACK_NEON of its tier (above).
 * Errors: INVALID_ARGUMENT (NULL, bad sizes/strides/dtypes, overlapping output), UNSUPPORTED,
 *   BUFFER_TOO_SMALL (a buffer is too small for its strides), OVERFLOW, NON_FINITE (global
 *   scale). Nothing is written on error. No allocation.
 */
QMV_API qmv_status qmv_qmv(const qmv_qmatrix *w, const qmv_vectors *v, const qmv_exec *exec);

/* qmv_qmv_reference() - the scalar reference: the canonical order implemented literally, one
 * thread, one element at a time. It is the specification in code; use it to check any other
 * path. Same arguments, errors and result as qmv_qmv(). */
QMV_API qmv_status qmv_qmv_reference(const qmv_qmatrix *w, const qmv_vectors *v);

/* ---- Expert stacks (mixture of experts) ----------------------------------------------- */

/*
 * An expert stack is a qmv_qmatrix whose batch items are E experts of one shape, the batch
 * strides apart: MLX's [E, N, K*bits/32] codes with [E, N, K/group] scales (and biases).
 */

/* qmv_qmatrix_select() - *out = item `index` of the `count` matrices of `stack`, unbatched:
 * pointers advanced by index times the batch strides, byte sizes reduced to what remains from
 * there, batch strides 0. Dequantize one expert with it. Errors: those of validating the stack
 * for `count` items (INVALID_ARGUMENT, UNSUPPORTED, BUFFER_TOO_SMALL, OVERFLOW), and
 * INVALID_ARGUMENT for count < 1 or index outside [0, count); *out is untouched on error. */
QMV_API qmv_status qmv_qmatrix_select(const qmv_qmatrix *stack, int64_t count, int64_t index,
                                      qmv_qmatrix *out);

/* Which expert, and which x, each batch item of a gathered product uses. */
typedef struct {
    int64_t experts;        /* E >= 1 matrices in the stack */
    const int32_t *w_index; /* [v->batch]: the expert of batch item b, in [0, E) */
    const int32_t *x_index; /* [v->batch], or NULL for b: the x batch item that b multiplies */
} qmv_gather;

/*
 * qmv_gather_qmv() - the expert-indexed product of MLX's gather_qmm (transpose=True) for the
 * decode case: for every batch item b of v and each of its m vectors j,
 *     y[b][j] = x[x_index[b]][j] . W[w_index[b]]^T.
 * Several items may share an expert or an x item (x_index may repeat; x_batch_stride 0
 * broadcasts one x). x holds max(x_index) + 1 batch items (v->batch without x_index). Every
 * element equals qmv_qmv_reference() on that expert and vector, bit for bit (batch invariance,
 * docs/ORDER.md), on every CPU tier and thread count.
 * Errors: as qmv_qmv(), plus INVALID_ARGUMENT for a NULL g or w_index, experts < 1 or an index
 * out of range; everything is validated before anything is written. No allocation.
 */
QMV_API qmv_status qmv_gather_qmv(const qmv_qmatrix *w, const qmv_gather *g,
                                  const qmv_vectors *v, const qmv_exec *exec);

/* ---- Accumulation orders --------------------------------------------------------------- */

/*
 * An accumulation order computes y = x . W^T in one documented sequence of float operations, so
 * that an output produced by some implementation can be reproduced bit for bit without running
 * it. Order 0 is qmv's canonical order ("qmv-v1", what qmv_qmv() returns); the others emulate
 * other libraries' kernels, named with the version they follow (for example "mlx-0.32.4-cpu").
 * docs/VERIFY.md lists each order, the source it follows and how it was confirmed.
 */
typedef struct {
    const char *name;        /* stable identifier, e.g. "qmv-v1" */
    const char *emulates;    /* the implementation whose bits it reproduces */
    const char *confirmation; /* how the emulation was confirmed (or why it is not yet) */
    int confirmed;           /* 1: matched the real implementation bit for bit */
} qmv_order_info;

/* Number of orders this library knows (>= 1). */
QMV_API int qmv_order_count(void);

/* Information on order `index` (0 <= index < qmv_order_count()). Errors: INVALID_ARGUMENT. */
QMV_API qmv_status qmv_order_get(int index, qmv_order_info *out);

/* Index of the order called `name`; INVALID_ARGUMENT (message lists the known names) if none. */
QMV_API qmv_status qmv_order_find(const char *name, int *index);

/*
 * qmv_qmv_order() - y as the implementation emulated by order `index` computes it. Same
 * arguments, validation and "nothing written on error" as qmv_qmv_reference(); an order may
 * accept fewer combinations than the canonical one (for example MLX writes y in x's dtype) and
 * returns UNSUPPORTED, with a message, for the others. One thread; no allocation.
 */
QMV_API qmv_status qmv_qmv_order(int index, const qmv_qmatrix *w, const qmv_vectors *v);

/* ---- Verification -------------------------------------------------------------------- */

/*
 * qmv_verify() checks an output y computed elsewhere against x . W^T (docs/VERIFY.md gives each
 * mode's model, assumptions and measured power):
 * - QMV_VERIFY_EXACT: y must equal order `order`'s result (qmv_qmv_order) in y's dtype bit for
 *   bit. For order 0 (qmv's own canonical order) NaN must be the canonical quiet NaN qmv
 *   writes; for other orders any NaN matches a NaN result (payloads are not part of an
 *   emulated order). An order that does not produce y's dtype gives UNSUPPORTED.
 * - QMV_VERIFY_BOUND: |y - E| within a rigorous forward error bound valid for any summation
 *   order at accumulation precision `accum` (E the exact value, computed in long double).
 * - QMV_VERIFY_STAT: |y - E| within a probabilistic bound (Azuma's inequality on the rounding
 *   errors along the partial sums of a family of orders) whose false-alarm probability per
 *   element is at most `p` under the model of docs/VERIFY.md.
 * Non-finite results: in the bound modes the class of each output (NaN, +Inf, -Inf, finite) is
 * derived from the exact math with IEEE rules, and y must be in it (docs/VERIFY.md).
 */
typedef enum {
    QMV_VERIFY_EXACT = 0,
    QMV_VERIFY_BOUND = 1,
    QMV_VERIFY_STAT = 2,
} qmv_verify_mode;

/* Per-element classes (values of the optional classes array). */
typedef enum {
    QMV_VERIFY_PASS = 0,      /* within the check */
    QMV_VERIFY_FAIL = 1,      /* outside it */
    QMV_VERIFY_UNCHECKED = 2, /* no bound can be evaluated (an intermediate could overflow, or
                               * the non-finite class depends on the order) */
    QMV_VERIFY_WEAK = 3,      /* within the check, but the bound is >= |E|: the check could not
                               * tell the right answer from zero (no detection power) */
} qmv_verify_class;
#define QMV_VERIFY_CLASS_COUNT 4

typedef struct {
    qmv_verify_mode mode;
    int order;       /* EXACT: index of qmv_order_get (0 = canonical) */
    qmv_dtype accum; /* BOUND, STAT: accumulation precision (F32, F16, BF16) */
    double p;        /* STAT: false-alarm probability per element, in (0, 0.5]; 0 = 1e-9 */
} qmv_verify_options;

typedef struct {
    int64_t total;                          /* m * rows elements */
    int64_t count[QMV_VERIFY_CLASS_COUNT];  /* elements per qmv_verify_class */
    int64_t first_fail;                     /* element index (j * rows + n), -1 if none */
    /* The worst element: in the bound modes the largest |y - E| / bound among the checked
     * elements (a wrong non-finite class counts as infinite), -1 if nothing was checked; in
     * EXACT mode the failing element with the largest |y - expected| (expected: the order's
     * value), -1 if none fails. */
    int64_t worst;
    double worst_y, worst_expected, worst_error, worst_bound, worst_ratio;
    /* Smallest error the check detects, relative to |E| (bound / |E|; 0 in EXACT mode), median
     * and largest over the elements with finite E != 0 (NaN when there are none). */
    double detect_median, detect_worst;
    /* Common error measures against E over the elements where y and E are finite (NaN when
     * none): max |y - E|, max |y - E| / |E| (E != 0), and the normalized mean square error
     * sum (y - E)^2 / sum E^2 (as llama.cpp's test-backend-ops defines it). */
    double max_abs_error, max_rel_error, nmse;
    double lambda; /* STAT: the multiplier sqrt(2 ln(2/p)); 0 otherwise */
} qmv_verify_summary;

/*
 * qmv_verify() - classify every element of the candidate y (v->y, v->y_dtype and its strides;
 * read, never written) against w and v's x. v->batch must be 1.
 * classes: NULL, or classes_bytes >= m * rows bytes receiving a qmv_verify_class per element
 *   (index j * rows + n). summary: required.
 * Errors: INVALID_ARGUMENT (NULL w, v or summary, bad sizes/strides/dtypes as qmv_qmv_reference,
 *   batch != 1, bad mode, order, accum or p), BUFFER_TOO_SMALL (classes), UNSUPPORTED (the order
 *   does not produce y's dtype), OUT_OF_MEMORY. Nothing is written on error.
 * Not a hot path: it allocates its scratch memory (EXACT: the order's y, m * rows elements;
 * the bound modes: O(k) floats per row) and frees it before returning. One thread.
 */
QMV_API qmv_status qmv_verify(const qmv_qmatrix *w, const qmv_vectors *v,
                              const qmv_verify_options *opts, uint8_t *classes,
                              size_t classes_bytes, qmv_verify_summary *summary);

/* ---- Conversions ------------------------------------------------------------------------- */

/* Converts count elements from src (src_dtype) to dst (dst_dtype), rounding to nearest even;
 * NaN stays NaN (quiet, sign kept), overflow gives Inf. src and dst must not overlap unless
 * equal with equal dtypes. Errors: INVALID_ARGUMENT, BUFFER_TOO_SMALL, OVERFLOW. */
QMV_API qmv_status qmv_convert(qmv_dtype src_dtype, const void *src, size_t src_bytes,
                               qmv_dtype dst_dtype, void *dst, size_t dst_bytes, size_t count);

#ifdef __cplusplus
}
#endif

#endif /* QMV_H */
