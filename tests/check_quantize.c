/*
 * check_quantize.c - qmv_quantize (and qmv_dequantize where it closes a round trip) through
 * the public API, against:
 *   1. the worked examples of FORMATS.md §2.1-2.4 and §3.7 (hand-derived golden bits);
 *   2. MLX itself: tests/data/mlx_golden.{idx,bin}, written by tests/gen/make_golden.py with
 *      mx.quantize / mx.dequantize on MLX's CPU stream (format: tests/data/README.md),
 *      compared bit for bit with profile mlx-cpu;
 *   3. an independent emulation of every profile (below), on random and adversarial groups;
 *   4. properties: affine error bound, exact fp round trips, zero matrices, thread-count
 *      determinism, NaN/Inf rejection.
 *
 * The data directory is $QMV_TEST_DATA_DIR, else the QMV_TEST_DATA_DIR compile definition.
 * Debug a failure in gdb with CK_FORK=no.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmv.h"
#include "test_util.h"

/*
 * ==== The quantize oracle ===================================================================
 *
 * An independent emulation of quantize under each rounding profile (FORMATS.md §2.1, §2.3,
 * §3.2, §3.3, §3.6 and the OCP MX v1.0 rule). Every float32 / T operation is evaluated in
 * double and rounded with tu_round_* (exact by the double-rounding theorem, test_util.h);
 * element codes come from the brute-force encoders. Nothing here calls the library.
 *
 * MLX_CPU E8M0 exponent. FORMATS.md §3.2 (MLX commit 846d176) describes
 *     e = rint(fl_T(log2f(s_T))),  s_T = fl_T(amax / maxval)
 * but MLX 0.32.4, the version installed here and the one tests/data/mlx_golden.* was made
 * with, rounds *up*: e = the smallest integer with 2^e >= s_T, still 0 when s_T == 0
 * (tests/data/mlx_golden.idx records how many golden groups each rule explains: "ceil" all of
 * them, "rint" only about half). The profile is defined as "bit-exact with mx.quantize on
 * MLX's CPU stream", so the oracle follows MLX; -DTU_MLX_CPU_E8M0_RINT=1 selects the
 * FORMATS.md rule instead (then the MLX golden mx cases must fail).
 */

#ifndef TU_MLX_CPU_E8M0_RINT
#define TU_MLX_CPU_E8M0_RINT 0
#endif

static inline double tu_f32r(double x)
{
    return tu_round_f32(x);
}

/* ---- Affine (FORMATS.md §2.1; gpu = 1 for §2.3's differences) ----------------------- */

static inline void ref_affine_group(const double *w, int n, int bits, int gpu, unsigned *q,
                                    double *scale_out, double *bias_out)
{
    const double n_bins = (double)((1 << bits) - 1);
    const double eps = tu_f32r(1e-7); /* 1e-7f */
    double w_min = gpu ? (double)FLT_MAX : INFINITY;
    double w_max = gpu ? 0.0 : -INFINITY;
    for (int j = 0; j < n; j++) {
        w_max = (w_max < w[j]) ? w[j] : w_max;
        w_min = (w[j] < w_min) ? w[j] : w_min;
    }
    const int mask = fabs(w_min) > fabs(w_max);
    double scale = tu_f32r(tu_f32r(w_max - w_min) / n_bins);
    scale = (scale < eps) ? eps : scale;
    double bias = 0.0;
    if (bits == 1) { /* FORMATS.md: MLX's 1-bit rule, the range from the minimum */
        bias = w_min;
    } else {
        scale = mask ? scale : -scale;
        const double edge = mask ? w_min : w_max;
        const double r0 = tu_f32r(edge / scale);
        const double q0 = gpu ? round(r0) : nearbyint(r0);
        if (q0 != 0.0) {
            scale = tu_f32r(edge / q0);
            bias = edge;
        }
    }
    for (int j = 0; j < n; j++) {
        double r = tu_f32r(tu_f32r(w[j] - bias) / scale);
        double c = gpu ? round(r) : nearbyint(r);
        c = isnan(c) ? (gpu ? n_bins : 0.0) : c; /* 0/0: FORMATS.md, where MLX is undefined */
        c = (c < 0.0) ? 0.0 : c;
        c = (n_bins < c) ? n_bins : c;
        q[j] = (unsigned)c;
    }
    *scale_out = scale;
    *bias_out = bias;
}

/* ---- mxfp4 / mxfp8 ---------------------------------------------------------------------- */

/* The E8M0 exponent MLX's CPU quantize picks for s_T > 0 (see the header comment). */
static inline int ref_mlx_cpu_e8m0_exp(double s_t, qmv_dtype t)
{
#if TU_MLX_CPU_E8M0_RINT
    return (int)nearbyint(tu_round_dtype(t, tu_f32r(log2(s_t))));
#else
    (void)t;
    return tu_ceil_log2(s_t);
#endif
}

/* 1 when MLX's CPU result for this group is undefined (e + 127 < 0 wraps, FORMATS.md §3.2):
 * such inputs are kept out of tests that compare with MLX or with the mlx-cpu oracle. */
static inline int ref_mx_cpu_undefined(const double *w, int n, int fp8, qmv_dtype t)
{
    double amax = 0.0;
    for (int j = 0; j < n; j++)
        amax = fabs(w[j]) > amax ? fabs(w[j]) : amax;
    double s = tu_round_dtype(t, amax / (fp8 ? 448.0 : 6.0));
    return s != 0.0 && ref_mlx_cpu_e8m0_exp(s, t) < -127;
}

static inline void ref_mx_group(const double *w, int n, int fp8, qmv_dtype t, qmv_profile prof,
                                unsigned *codes, unsigned *sbyte)
{
    const double maxv = fp8 ? 448.0 : 6.0;
    const int emax_elem = fp8 ? 8 : 2;
    double amax = 0.0;
    for (int j = 0; j < n; j++)
        amax = fabs(w[j]) > amax ? fabs(w[j]) : amax;
    if (prof == QMV_PROFILE_MLX_CPU) {
        /* FORMATS.md §3.2: quotient in T, exponent, x_j = fl_T(w_j / fl_T(2^e)), argmin. */
        const double s = tu_round_dtype(t, amax / maxv);
        const int e = s == 0.0 ? 0 : ref_mlx_cpu_e8m0_exp(s, t);
        const double p2 = tu_round_dtype(t, ldexp(1.0, e));
        for (int j = 0; j < n; j++) {
            double x = tu_round_dtype(t, w[j] / p2);
            codes[j] = fp8 ? tu_e4m3_rne(x, signbit(x) ? 0xFEu : 0x7Eu) : tu_e2m1_argmin(x, t);
        }
        *sbyte = (unsigned)(e + 127) & 0xFFu;
        return;
    }
    double enc_b;
    if (prof == QMV_PROFILE_MLX_CUDA) {
        /* FORMATS.md §3.6: sd in float32, CUTLASS ue8m0 rounds up (clamped to the byte range,
         * values <= 2^-127 give byte 0), then a reciprocal multiply. */
        const double sd = tu_f32r(amax / maxv);
        int b = 0;
        if (sd > 0.0) {
            int c = tu_ceil_log2(sd);
            c = c < -127 ? -127 : c > 127 ? 127 : c;
            b = c + 127;
        }
        *sbyte = (unsigned)b;
        enc_b = tu_f32r(1.0 / ldexp(1.0, b - 127));
        for (int j = 0; j < n; j++) {
            double x = tu_f32r(w[j] * enc_b);
            codes[j] = fp8 ? tu_e4m3_rne(x, 0x7Fu) : tu_e2m1_rne(x);
        }
        return;
    }
    /* OCP MX v1.0: X = 2^(floor(log2(amax)) - emax_elem), elements RNE with saturation. The
     * exponent is clamped to E8M0's range; a zero group takes 2^-127 (qmv's choice). */
    int e = amax == 0.0 ? -127 : tu_floor_log2(amax) - emax_elem;
    e = e < -127 ? -127 : e > 127 ? 127 : e;
    *sbyte = (unsigned)(e + 127);
    for (int j = 0; j < n; j++) {
        double x = ldexp(w[j], -e); /* exact */
        codes[j] = fp8 ? tu_e4m3_rne(x, 0x7Fu) : tu_e2m1_rne(x);
    }
}

/* ---- nvfp4 ------------------------------------------------------------------------------ */

static inline void ref_nv_group(const double *w, int n, qmv_dtype t, qmv_profile prof,
                                const float *g, unsigned *codes, unsigned *sbyte)
{
    const double enc = g ? tu_f32r(2688.0 / (double)*g) : 1.0;
    double amax = 0.0;
    for (int j = 0; j < n; j++)
        amax = fabs(w[j]) > amax ? fabs(w[j]) : amax;
    if (prof == QMV_PROFILE_MLX_CPU) {
        /* FORMATS.md §3.3 */
        const double s_t = tu_round_dtype(t, amax / 6.0);
        const double s_f = tu_f32r(s_t * enc);
        const unsigned sb = tu_e4m3_rne(s_f, 0x7Eu);
        const double sv = tu_e4m3_value(sb);
        for (int j = 0; j < n; j++) {
            /* w / 0 is +-Inf or NaN: the argmin then gives code 0. x is float32 (the product
             * with the float32 factor enc, 1 without a global scale), so the argmin's
             * differences are float32 for every T: for bf16, x = 4096 gives code 7, where
             * bf16 differences would tie and give 0 (checked with MLX 0.32.4). */
            double x = tu_f32r(tu_round_dtype(t, w[j] / sv) * enc);
            codes[j] = tu_e2m1_argmin(x, QMV_DTYPE_F32);
        }
        *sbyte = sb;
        return;
    }
    /* FORMATS.md §3.6 (mlx-cuda; ocp is the same for nvfp4) */
    const double sd = tu_f32r(tu_f32r(amax / 6.0) * enc);
    const unsigned sb = tu_e4m3_rne(sd, 0x7Fu);
    const double sv = tu_e4m3_value(sb);
    for (int j = 0; j < n; j++) {
        if (sv == 0.0) {
            /* enc_b = +Inf: nonzero elements -> +-Inf -> sign|7; zeros -> 0*Inf = NaN, which
             * the GPU produces positive -> 0x7 (FORMATS.md §3.6, §7.9) */
            codes[j] = (w[j] != 0.0 && w[j] < 0.0) ? 0xFu : 0x7u;
            continue;
        }
        double enc_b = tu_f32r(enc / sv);
        codes[j] = tu_e2m1_rne(tu_f32r(w[j] * enc_b));
    }
    *sbyte = sb;
}

/* ---- whole matrices ---------------------------------------------------------------------- */

/* Quantizes rows x k values w (doubles, each exactly a value of w_dtype) into dense MLX
 * layout buffers: packed (rows * k*bits/32 words, zeroed here), scales (w_dtype for affine,
 * bytes otherwise), biases (affine). */
static inline void ref_quantize(const qmv_format *fmt, qmv_profile prof, const float *g,
                                qmv_dtype t, const double *w, int64_t rows, int64_t k,
                                uint32_t *packed, void *scales, void *biases)
{
    const int gs = fmt->group_size, bits = fmt->bits;
    const int64_t wpr = k * bits / 32, gpr = k / gs;
    unsigned codes[128];
    memset(packed, 0, (size_t)(rows * wpr) * 4);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t gi = 0; gi < gpr; gi++) {
            const double *grp = w + r * k + gi * gs;
            const int64_t si = r * gpr + gi;
            if (fmt->mode == QMV_MODE_AFFINE) {
                double s, b;
                ref_affine_group(grp, gs, bits, prof != QMV_PROFILE_MLX_CPU, codes, &s, &b);
                tu_store(t, scales, si, s);
                tu_store(t, biases, si, b);
            } else {
                unsigned sb;
                if (fmt->mode == QMV_MODE_NVFP4)
                    ref_nv_group(grp, gs, t, prof, g, codes, &sb);
                else
                    ref_mx_group(grp, gs, fmt->mode == QMV_MODE_MXFP8, t, prof, codes, &sb);
                ((uint8_t *)scales)[si] = (uint8_t)sb;
            }
            for (int j = 0; j < gs; j++)
                tu_code_put(packed + r * wpr, gi * gs + j, bits, codes[j]);
        }
    }
}

/* ==== Helpers ============================================================================= */

static const qmv_dtype DTYPES[3] = {QMV_DTYPE_F32, QMV_DTYPE_F16, QMV_DTYPE_BF16};
static const qmv_profile PROFILES[3] = {QMV_PROFILE_MLX_CPU, QMV_PROFILE_MLX_CUDA, QMV_PROFILE_OCP};
static const char *const PROFILE_NAMES[3] = {"mlx-cpu", "mlx-cuda", "ocp"};
static const float G2688 = 2688.0f; /* a global scale with 2688/g = 1 */

/* A small set for the property tests: two affine formats and every fp configuration. */
#define N_PCONFIGS 6
static qmv_format pconfig_format(int i, int *with_g)
{
    const int map[N_PCONFIGS] = {tu_fmt_index(QMV_MODE_AFFINE, 4, 64, 0),
                                 tu_fmt_index(QMV_MODE_AFFINE, 3, 32, 0),
                                 TU_N_AFF,
                                 TU_N_AFF + 1,
                                 TU_N_AFF + 2,
                                 TU_N_AFF + 3};
    *with_g = TU_FMTS[map[i]].global;
    return tu_format(&TU_FMTS[map[i]]);
}

typedef struct {
    qmv_format fmt;
    qmv_dtype t; /* w dtype = affine scale dtype */
    int64_t rows, k;
    qmv_layout lay;
    uint32_t *packed;
    void *scales, *biases;
} qbuf;

static void qbuf_init(qbuf *b, qmv_format fmt, qmv_dtype t, int64_t rows, int64_t k)
{
    memset(b, 0, sizeof *b);
    b->fmt = fmt;
    b->t = t;
    b->rows = rows;
    b->k = k;
    ck_assert_int_eq(qmv_layout_query(&fmt, t, rows, k, &b->lay), QMV_STATUS_OK);
    b->packed = malloc(b->lay.packed_bytes + 4);
    b->scales = malloc(b->lay.scales_bytes + 4);
    b->biases = malloc(b->lay.biases_bytes + 4);
    ck_assert(b->packed && b->scales && b->biases);
    memset(b->packed, 0xA5, b->lay.packed_bytes + 4);
    memset(b->scales, 0xA5, b->lay.scales_bytes + 4);
    memset(b->biases, 0xA5, b->lay.biases_bytes + 4);
}

static void qbuf_free(qbuf *b)
{
    free(b->packed);
    free(b->scales);
    free(b->biases);
}

static int is_affine(const qbuf *b)
{
    return b->fmt.mode == QMV_MODE_AFFINE;
}

static qmv_status qbuf_quantize(qbuf *b, qmv_profile p, const float *g, const void *w,
                                int64_t stride, int threads)
{
    qmv_quant_out o = {b->packed,
                       b->lay.packed_bytes,
                       b->scales,
                       b->lay.scales_bytes,
                       is_affine(b) ? b->biases : NULL,
                       is_affine(b) ? b->lay.biases_bytes : 0};
    qmv_exec ex = {sizeof ex, threads, 0};
    size_t wbytes = (size_t)((b->rows - 1) * stride + b->k) * tu_dsize(b->t);
    return qmv_quantize(&b->fmt, p, g, b->t, w, wbytes, b->rows, b->k, stride, &o, &ex);
}

/* 1-bit affine has the mlx-cpu profile only (docs/FORMATS.md): under the others qmv_quantize
 * must refuse it. 1 when the test goes on with (b's format, p). */
static int profile_defined(qbuf *b, qmv_profile p, const void *w, int64_t stride)
{
    if (b->fmt.mode != QMV_MODE_AFFINE || b->fmt.bits != 1 || p == QMV_PROFILE_MLX_CPU)
        return 1;
    ck_assert_int_eq(qbuf_quantize(b, p, NULL, w, stride, 1), QMV_STATUS_UNSUPPORTED);
    qbuf_free(b);
    return 0;
}

static qmv_status dequantize_raw(qmv_format fmt, qmv_dtype sdt, int64_t rows, int64_t k,
                                 const uint32_t *packed, const void *scales, const void *biases,
                                 const float *g, qmv_dtype odt, void *out, int threads)
{
    qmv_qmatrix m;
    qmv_status st = qmv_qmatrix_dense(&fmt, sdt, rows, k, packed, scales,
                                      fmt.mode == QMV_MODE_AFFINE ? biases : NULL, &m);
    if (st != QMV_STATUS_OK)
        return st;
    m.global_scale = g;
    qmv_exec ex = {sizeof ex, threads, 0};
    return qmv_dequantize(&m, odt, out, (size_t)(rows * k) * tu_dsize(odt), k, &ex);
}

static qmv_status qbuf_dequantize(const qbuf *b, const float *g, qmv_dtype odt, void *out,
                                  int threads)
{
    return dequantize_raw(b->fmt, b->t, b->rows, b->k, b->packed, b->scales, b->biases, g, odt, out,
                          threads);
}

/* A w buffer of dtype t holding the values v (rounded to t), rows `stride` apart; padding
 * elements hold NaN, which the library must never read. */
static void *make_w(qmv_dtype t, const double *v, int64_t rows, int64_t k, int64_t stride)
{
    size_t n = (size_t)((rows - 1) * stride + k);
    void *w = malloc(n * tu_dsize(t) + 4);
    ck_assert(w != NULL);
    for (size_t i = 0; i < n; i++)
        tu_store(t, w, (int64_t)i, NAN);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < k; i++)
            tu_store(t, w, r * stride + i, v[r * k + i]);
    return w;
}

/* Expects packed/scales/biases equal to the reference buffers; reports the first group that
 * differs. */
static void expect_same_quant(const qbuf *b, const uint32_t *rp, const void *rs, const void *rb,
                              const char *what)
{
    const int64_t wpr = b->lay.words_per_row, gpr = b->lay.groups_per_row;
    const int gs = b->fmt.group_size, bits = b->fmt.bits;
    const size_t es = is_affine(b) ? tu_dsize(b->t) : 1;
    long bad = 0;
    char first[600] = "";
    for (int64_t r = 0; r < b->rows; r++) {
        for (int64_t g = 0; g < gpr; g++) {
            const int64_t si = r * gpr + g;
            int diff =
                memcmp((const char *)b->scales + si * es, (const char *)rs + si * es, es) != 0;
            if (is_affine(b))
                diff |=
                    memcmp((const char *)b->biases + si * es, (const char *)rb + si * es, es) != 0;
            int64_t w0 = r * wpr + g * gs * bits / 32, nw = gs * bits / 32;
            diff |= memcmp(b->packed + w0, rp + w0, (size_t)nw * 4) != 0;
            if (diff && bad++ == 0) {
                int n = snprintf(first, sizeof first, "row %lld group %lld: ", (long long)r,
                                 (long long)g);
                if (is_affine(b))
                    n += snprintf(first + n, sizeof first - (size_t)n,
                                  "scale 0x%x want 0x%x, bias 0x%x want 0x%x; ",
                                  tu_load_bits(b->t, b->scales, si), tu_load_bits(b->t, rs, si),
                                  tu_load_bits(b->t, b->biases, si), tu_load_bits(b->t, rb, si));
                else
                    n += snprintf(first + n, sizeof first - (size_t)n,
                                  "scale byte 0x%02x want 0x%02x; ",
                                  ((const uint8_t *)b->scales)[si], ((const uint8_t *)rs)[si]);
                for (int j = 0; j < gs && n < (int)sizeof first - 24; j++) {
                    unsigned c = tu_code_get(b->packed + r * wpr, g * gs + j, bits);
                    unsigned e = tu_code_get(rp + r * wpr, g * gs + j, bits);
                    if (c != e) {
                        n += snprintf(first + n, sizeof first - (size_t)n, "code[%d] %u want %u; ",
                                      j, c, e);
                    }
                }
            }
        }
    }
    ck_assert_msg(bad == 0, "%s: %ld groups differ; first: %s", what, bad, first);
}

/* ==== 1. Worked examples of FORMATS.md ======================================================= */

/* §2.4: w[i] = (i - 10)/8, float32, gs 32. The 8-bit words beyond the first two (which
 * FORMATS.md lists) are mx.quantize's output (MLX 0.32.4). */
static const struct {
    int bits;
    uint32_t scale;
    int nwords;
    uint32_t words[8];
} AFFINE_EXAMPLE[6] = {
    {4, 0xbe866666u, 4, {0xbccddeefu, 0x8899aaabu, 0x44556677u, 0x00112233u}},
    {3, 0xbf066666u, 3, {0x6ddb6fffu, 0x36dc925bu, 0x00124a49u}},
    {2, 0xbfa80000u, 2, {0xaaaaabffu, 0x00055555u}},
    {5, 0xbe000000u, 5, {0x75be77dfu, 0x3a56d7c6u, 0x35cf8465u, 0xc74254b6u, 0x00443214u}},
    {6,
     0xbd7a0be8u,
     6,
     {0x77e7bf7fu, 0xbb6fc73du, 0x863967a6u, 0x1765b75fu, 0xa30e4125u, 0x00210620u}},
    {8,
     0xbc7899e5u,
     8,
     {0xe7eff7ffu, 0xc6ced6deu, 0xa5adb5bdu, 0x848c949du, 0x636b737cu, 0x424a525bu, 0x2129313au,
      0x00081019u}},
};

START_TEST(affine_formats_example)
{
    const int i = _i;
    qmv_format fmt = {QMV_MODE_AFFINE, AFFINE_EXAMPLE[i].bits, 32};
    float w[32];
    for (int j = 0; j < 32; j++)
        w[j] = (float)(j - 10) / 8.0f;
    qbuf b;
    qbuf_init(&b, fmt, QMV_DTYPE_F32, 1, 32);
    ck_assert_int_eq(qbuf_quantize(&b, QMV_PROFILE_MLX_CPU, NULL, w, 32, 1), QMV_STATUS_OK);
    ck_assert_int_eq(b.lay.words_per_row, AFFINE_EXAMPLE[i].nwords);
    for (int j = 0; j < AFFINE_EXAMPLE[i].nwords; j++)
        ck_assert_msg(b.packed[j] == AFFINE_EXAMPLE[i].words[j],
                      "bits %d word %d: 0x%08x, want 0x%08x", fmt.bits, j, b.packed[j],
                      AFFINE_EXAMPLE[i].words[j]);
    ck_assert_uint_eq(tu_load_bits(QMV_DTYPE_F32, b.scales, 0), AFFINE_EXAMPLE[i].scale);
    ck_assert_uint_eq(tu_load_bits(QMV_DTYPE_F32, b.biases, 0), 0x40280000u); /* 2.625 */
    qbuf_free(&b);
}
END_TEST

/* §2.4 with bfloat16: stored scale 0xBE86, bias 2.625; the zero point q = 10 (element 10,
 * w = 0) dequantizes to bf16(bf16(10 * -0.26171875) + 2.625). FORMATS.md §2.4 states
 * 0.0078125, but that is the sum without rounding the product: bf16(-2.6171875) is -2.625
 * (a tie, to even), so the documented formula (§4.1) and MLX 0.32.4 itself give 0.0. */
START_TEST(affine_bf16_example)
{
    qmv_format fmt = {QMV_MODE_AFFINE, 4, 32};
    double v[32];
    for (int j = 0; j < 32; j++)
        v[j] = (j - 10) / 8.0;
    void *w = make_w(QMV_DTYPE_BF16, v, 1, 32, 32);
    qbuf b;
    qbuf_init(&b, fmt, QMV_DTYPE_BF16, 1, 32);
    ck_assert_int_eq(qbuf_quantize(&b, QMV_PROFILE_MLX_CPU, NULL, w, 32, 1), QMV_STATUS_OK);
    static const uint32_t words[4] = {0xbccddeefu, 0x8899aaabu, 0x44556677u, 0x00112233u};
    for (int j = 0; j < 4; j++)
        ck_assert_uint_eq(b.packed[j], words[j]);
    ck_assert_uint_eq(tu_load_bits(QMV_DTYPE_BF16, b.scales, 0), 0xBE86u);
    ck_assert_uint_eq(tu_load_bits(QMV_DTYPE_BF16, b.biases, 0), 0x4028u);
    uint16_t out[32];
    ck_assert_int_eq(qbuf_dequantize(&b, NULL, QMV_DTYPE_BF16, out, 1), QMV_STATUS_OK);
    ck_assert_uint_eq(tu_code_get(b.packed, 10, 4), 10);
    ck_assert_msg(out[10] == 0x0000u, "element 10 dequantizes to bf16 0x%04x, want +0", out[10]);
    /* every element by the §4.1 formula */
    for (int j = 0; j < 32; j++) {
        double q = tu_code_get(b.packed, j, 4);
        double want = tu_round_bf16(tu_round_bf16(q * tu_bf16_value(0xBE86u)) + 2.625);
        ck_assert_msg(out[j] == tu_bf16_bits(want), "element %d: 0x%04x want 0x%04x", j, out[j],
                      tu_bf16_bits(want));
    }
    qbuf_free(&b);
    free(w);
}
END_TEST

/* §3.7 E2M1 ties: an mxfp4 group with amax 6 has scale 2^0 under every profile, so the
 * elements are encoded as given. */
START_TEST(e2m1_tie_example)
{
    const int p = _i / 3;
    const qmv_dtype t = DTYPES[_i % 3];
    qmv_format fmt = {QMV_MODE_MXFP4, 4, 32};
    double v[32] = {6, 0.75, -0.25, 1.75, -3.5, 5, 0.5, -6};
    void *w = make_w(t, v, 1, 32, 32);
    qbuf b;
    qbuf_init(&b, fmt, t, 1, 32);
    ck_assert_int_eq(qbuf_quantize(&b, PROFILES[p], NULL, w, 32, 1), QMV_STATUS_OK);
    uint32_t want = PROFILES[p] == QMV_PROFILE_MLX_CPU ? 0xF16D3017u : 0xF16E4827u;
    ck_assert_msg(b.packed[0] == want, "%s %s: word 0x%08x, want 0x%08x", PROFILE_NAMES[p],
                  tu_dname(t), b.packed[0], want);
    for (int j = 1; j < 4; j++)
        ck_assert_uint_eq(b.packed[j], 0);
    ck_assert_uint_eq(((uint8_t *)b.scales)[0], 127);
    qbuf_free(&b);
    free(w);
}
END_TEST

/* §3.7 nvfp4, float32, no global scale: scale 0x23, CPU vs GPU words. */
START_TEST(nvfp4_example)
{
    const int p = _i;
    qmv_format fmt = {QMV_MODE_NVFP4, 4, 16};
    const float w[16] = {1.0f,       -1.0f,      0.5f,        0.25f,        -0.125f, 0,
                         0.0859375f, 0.2578125f, 0.12890625f, -0.12890625f, 0.3f,    -0.04f,
                         0.6f,       0.9f,       -0.7f,       0.01f};
    qbuf b;
    qbuf_init(&b, fmt, QMV_DTYPE_F32, 1, 16);
    ck_assert_int_eq(qbuf_quantize(&b, PROFILES[p], NULL, w, 16, 1), QMV_STATUS_OK);
    ck_assert_uint_eq(((uint8_t *)b.scales)[0], 0x23);
    ck_assert_uint_eq(b.packed[0], 0x310935F7u);
    uint32_t want = PROFILES[p] == QMV_PROFILE_MLX_CPU ? 0x0E750391u : 0x0E7583A2u;
    ck_assert_msg(b.packed[1] == want, "%s: word 1 0x%08x, want 0x%08x", PROFILE_NAMES[p],
                  b.packed[1], want);
    qbuf_free(&b);
}
END_TEST

/* §3.7 E8M0 exponent table. MLX_CPU gives MLX 0.32.4's values (the smallest power of two >=
 * fl_T(amax/6)); the FORMATS.md column (rint of the T-rounded log2) is kept alongside and
 * used with -DTU_MLX_CPU_E8M0_RINT=1. ocp: floor(log2(amax)) - emax_elem. -999: zero group. */
static const struct {
    qmv_mode mode;
    double amax;
    qmv_dtype t;
    int cpu_ceil, cpu_rint, cuda, ocp;
} E8M0_TABLE[] = {
    {QMV_MODE_MXFP4, 5.0, QMV_DTYPE_BF16, 0, 0, 0, 0},
    {QMV_MODE_MXFP4, 5.0, QMV_DTYPE_F32, 0, 0, 0, 0},
    {QMV_MODE_MXFP4, 6.0, QMV_DTYPE_BF16, 0, 0, 0, 0},
    {QMV_MODE_MXFP4, 6.0, QMV_DTYPE_F32, 0, 0, 0, 0},
    {QMV_MODE_MXFP4, 7.0, QMV_DTYPE_BF16, 1, 0, 1, 0},
    {QMV_MODE_MXFP4, 7.0, QMV_DTYPE_F32, 1, 0, 1, 0},
    {QMV_MODE_MXFP4, 8.4, QMV_DTYPE_BF16, 1, 0, 1, 1},
    {QMV_MODE_MXFP4, 8.4, QMV_DTYPE_F32, 1, 0, 1, 1},
    {QMV_MODE_MXFP4, 34.0, QMV_DTYPE_BF16, 3, 2, 3, 3},
    {QMV_MODE_MXFP4, 34.0, QMV_DTYPE_F32, 3, 3, 3, 3},
    {QMV_MODE_MXFP4, 34.0, QMV_DTYPE_F16, 3, 3, 3, 3},
    {QMV_MODE_MXFP4, 0.1, QMV_DTYPE_BF16, -5, -6, -5, -6},
    {QMV_MODE_MXFP4, 0.1, QMV_DTYPE_F32, -5, -6, -5, -6},
    {QMV_MODE_MXFP4, 0.0, QMV_DTYPE_BF16, 0, 0, -127, -999},
    {QMV_MODE_MXFP4, 0.0, QMV_DTYPE_F32, 0, 0, -127, -999},
    {QMV_MODE_MXFP8, 448.0, QMV_DTYPE_F32, 0, 0, 0, 0},
    {QMV_MODE_MXFP8, 500.0, QMV_DTYPE_F32, 1, 0, 1, 0},
    {QMV_MODE_MXFP8, 896.0, QMV_DTYPE_F32, 1, 1, 1, 1},
    {QMV_MODE_MXFP8, 1000.0, QMV_DTYPE_F32, 2, 1, 2, 1},
    {QMV_MODE_MXFP8, 1.0, QMV_DTYPE_F32, -8, -9, -8, -8},
    {QMV_MODE_MXFP8, 0.1, QMV_DTYPE_F32, -12, -12, -12, -12},
    {QMV_MODE_MXFP8, 0.0, QMV_DTYPE_F32, 0, 0, -127, -999},
};
#define N_E8M0_TABLE ((int)(sizeof E8M0_TABLE / sizeof E8M0_TABLE[0]))

START_TEST(e8m0_table)
{
    const int i = _i / 3, p = _i % 3;
    qmv_format fmt = {E8M0_TABLE[i].mode, E8M0_TABLE[i].mode == QMV_MODE_MXFP8 ? 8 : 4, 32};
    const qmv_dtype t = E8M0_TABLE[i].t;
    const double a = E8M0_TABLE[i].amax;
    double v[32] = {0};
    if (a != 0.0) { /* (a zero group stays +0: -0 elements would dequantize to -0) */
        v[0] = -a / 3;
        v[5] = a; /* the amax, rounded to t by make_w (8.4 -> 8.375 in bf16) */
        v[9] = a / 2;
        v[31] = -a / 5;
    }
    void *w = make_w(t, v, 1, 32, 32);
    qbuf b;
    qbuf_init(&b, fmt, t, 1, 32);
    ck_assert_int_eq(qbuf_quantize(&b, PROFILES[p], NULL, w, 32, 1), QMV_STATUS_OK);
    int e = p == 0   ? (TU_MLX_CPU_E8M0_RINT ? E8M0_TABLE[i].cpu_rint : E8M0_TABLE[i].cpu_ceil)
            : p == 1 ? E8M0_TABLE[i].cuda
                     : E8M0_TABLE[i].ocp;
    unsigned got = ((uint8_t *)b.scales)[0];
    if (e != -999)
        ck_assert_msg(got == (unsigned)(e + 127),
                      "%s %s amax %g (%s): scale byte %u (e = %d), want e = %d%s",
                      tu_mname(fmt.mode), PROFILE_NAMES[p], a, tu_dname(t), got, (int)got - 127, e,
                      p == 0 ? " (MLX 0.32.4 CPU: smallest 2^e >= fl_T(amax/maxval); FORMATS.md "
                               "§3.2's rint(log2) rule gives the cpu_rint column)"
                             : "");
    if (a == 0.0) { /* any scale, but every element dequantizes to +0 */
        float out[32];
        ck_assert_int_eq(qbuf_dequantize(&b, NULL, QMV_DTYPE_F32, out, 1), QMV_STATUS_OK);
        for (int j = 0; j < 32; j++)
            ck_assert_uint_eq(tu_fbits(out[j]), 0);
    }
    qbuf_free(&b);
    free(w);
}
END_TEST

/* §2.1: an all-zero group: scale fl_T(-1e-7f) (f32 0xB3D6BF95, fp16 0x8002, bf16 0xB3D7),
 * +1e-7 for one bit, bias +0, codes 0, dequantized +0; the same under every profile. */
START_TEST(affine_zero_group)
{
    const qmv_dtype t = DTYPES[_i / 3];
    const int p = _i % 3;
    const uint32_t want_scale = t == QMV_DTYPE_F32   ? 0xB3D6BF95u
                                : t == QMV_DTYPE_F16 ? 0x8002u
                                                     : 0xB3D7u;
    double v[2 * 256] = {0};
    void *w = make_w(t, v, 2, 256, 256);
    for (int ci = 0; ci < TU_N_AFF; ci++) {
        const qmv_format fmt = tu_format(&TU_FMTS[ci]);
        qbuf b;
        qbuf_init(&b, fmt, t, 2, 256);
        if (!profile_defined(&b, PROFILES[p], w, 256))
            continue;
        ck_assert_int_eq(qbuf_quantize(&b, PROFILES[p], NULL, w, 256, 1), QMV_STATUS_OK);
        /* one bit: the range from the minimum, never negated */
        const uint32_t ws = fmt.bits == 1 ? want_scale & (t == QMV_DTYPE_F32 ? 0x7FFFFFFFu : 0x7FFFu)
                                          : want_scale;
        for (int64_t g = 0; g < 2 * b.lay.groups_per_row; g++) {
            ck_assert_msg(tu_load_bits(t, b.scales, g) == ws,
                          "%s bits %d gs %d: scale 0x%x, want 0x%x", tu_dname(t), fmt.bits,
                          fmt.group_size, tu_load_bits(t, b.scales, g), ws);
            ck_assert_uint_eq(tu_load_bits(t, b.biases, g), 0);
        }
        for (int64_t j = 0; j < 2 * b.lay.words_per_row; j++)
            ck_assert_uint_eq(b.packed[j], 0);
        for (int o = 0; o < 3; o++) {
            uint32_t out[512];
            memset(out, 0xA5, sizeof out);
            ck_assert_int_eq(qbuf_dequantize(&b, NULL, DTYPES[o], out, 1), QMV_STATUS_OK);
            for (int j = 0; j < 512; j++)
                ck_assert_msg(tu_load_bits(DTYPES[o], out, j) == 0, "%s: element %d not +0",
                              tu_dname(DTYPES[o]), j);
        }
        qbuf_free(&b);
    }
    free(w);
}
END_TEST

/* §2.1: an all-equal group c (|c| >= ~5e-8) round-trips exactly, every dtype, bits, group,
 * profile (under the GPU rule a negative c makes the range [c, 0], still with code 0 = c). */
START_TEST(affine_all_equal)
{
    const qmv_dtype t = DTYPES[_i / 3];
    const int p = _i % 3;
    static const double cs[] = {0.3, -1.7, 1e-3, 4.0, -0.0625, 1000.0, -3e-6, 0.1, -7.25};
    const int nc = (int)(sizeof cs / sizeof cs[0]);
    double v[128 * 9];
    for (int i = 0; i < 128 * nc; i++)
        v[i] = cs[i / 128];
    void *w = make_w(t, v, nc, 128, 128);
    for (int ci = 0; ci < TU_N_AFF; ci++) {
        const qmv_format fmt = tu_format(&TU_FMTS[ci]);
        qbuf b;
        qbuf_init(&b, fmt, t, nc, 128);
        if (!profile_defined(&b, PROFILES[p], w, 128))
            continue;
        ck_assert_int_eq(qbuf_quantize(&b, PROFILES[p], NULL, w, 128, 1), QMV_STATUS_OK);
        uint32_t out[128 * 9];
        ck_assert_int_eq(qbuf_dequantize(&b, NULL, t, out, 1), QMV_STATUS_OK);
        for (int i = 0; i < 128 * nc; i++)
            ck_assert_msg(tu_load_bits(t, out, i) == tu_load_bits(t, w, i),
                          "%s %s bits %d gs %d c %g: element %d 0x%x, want 0x%x",
                          PROFILE_NAMES[p], tu_dname(t), fmt.bits, fmt.group_size, cs[i / 128],
                          i, tu_load_bits(t, out, i), tu_load_bits(t, w, i));
        qbuf_free(&b);
    }
    free(w);
}
END_TEST

/* A group of elements all equal to the dtype's largest finite value: the first quotient
 * overflows, the scale is -0 and every code quotient 0/0. MLX's CUDA build writes code
 * 2^b - 1 (fminf of NaN), so mlx-cuda and ocp do; mlx-cpu writes 0. Scale -0, bias = the value,
 * so the group dequantizes to itself. Every CPU tier, as each has its own affine loop. */
START_TEST(affine_max_finite_group)
{
    static const qmv_dtype ts[] = {QMV_DTYPE_F32, QMV_DTYPE_BF16};
    const qmv_dtype t = ts[_i / 3];
    const int p = _i % 3, gpu = PROFILES[p] != QMV_PROFILE_MLX_CPU;
    const double vmax = t == QMV_DTYPE_F32 ? (double)FLT_MAX : 0x1.fep127;
    double v[2 * 128];
    for (int i = 0; i < 2 * 128; i++)
        v[i] = i < 128 ? vmax : -vmax;
    void *w = make_w(t, v, 2, 128, 128);
    const unsigned tiers = qmv_cpu_tiers_supported();
    for (unsigned tier = 1; tier <= tiers; tier <<= 1) {
        if (!(tiers & tier))
            continue;
        for (int ci = 0; ci < TU_N_AFF; ci++) {
            const qmv_format fmt = tu_format(&TU_FMTS[ci]);
            qbuf b;
            qbuf_init(&b, fmt, t, 2, 128);
            if (!profile_defined(&b, PROFILES[p], w, 128))
                continue;
            qmv_quant_out o = {b.packed, b.lay.packed_bytes, b.scales, b.lay.scales_bytes,
                               b.biases, b.lay.biases_bytes};
            qmv_exec ex = {sizeof ex, 1, tier};
            ck_assert_int_eq(qmv_quantize(&fmt, PROFILES[p], NULL, t, w,
                                          2 * 128 * tu_dsize(t), 2, 128, 128, &o, &ex),
                             QMV_STATUS_OK);
            const int64_t wpr = b.lay.words_per_row;
            for (int r = 0; r < 2; r++) {
                /* Positive rows take edge = w_max (scale -0): 0/0 everywhere. Negative rows
                 * under the GPU rule take the range [-max, 0]: ordinary codes. */
                if (r == 1 && gpu)
                    continue;
                const unsigned want = r == 0 && gpu ? (1u << fmt.bits) - 1 : 0;
                for (int j = 0; j < 128; j++)
                    ck_assert_msg(tu_code_get(b.packed + r * wpr, j, fmt.bits) == want,
                                  "%s %s tier %u bits %d gs %d row %d: code %u, want %u",
                                  PROFILE_NAMES[p], tu_dname(t), tier, fmt.bits,
                                  fmt.group_size, r, tu_code_get(b.packed + r * wpr, j, fmt.bits),
                                  want);
            }
            uint32_t out[2 * 128];
            ck_assert_int_eq(qbuf_dequantize(&b, NULL, t, out, 1), QMV_STATUS_OK);
            for (int i = 0; i < 128; i++)
                ck_assert_msg(tu_load_bits(t, out, i) == tu_load_bits(t, w, i),
                              "%s %s bits %d gs %d: element %d dequantizes to 0x%x, want 0x%x",
                              PROFILE_NAMES[p], tu_dname(t), fmt.bits, fmt.group_size, i,
                              tu_load_bits(t, out, i), tu_load_bits(t, w, i));
            qbuf_free(&b);
        }
    }
    free(w);
}
END_TEST

/* §2.3 example 1: a 4-bit group with min -2 and max -1. mlx-cpu: scale 1/15, bias -2;
 * the GPU rule (mlx-cuda, and ocp which is the same for affine) starts max at 0: 2/15. */
START_TEST(affine_all_negative_example)
{
    const int p = _i;
    qmv_format fmt = {QMV_MODE_AFFINE, 4, 32};
    float w[32];
    for (int j = 0; j < 32; j++)
        w[j] = -1.0f - (float)j / 31.0f; /* -1 ... -2 */
    w[31] = -2.0f;
    qbuf b;
    qbuf_init(&b, fmt, QMV_DTYPE_F32, 1, 32);
    ck_assert_int_eq(qbuf_quantize(&b, PROFILES[p], NULL, w, 32, 1), QMV_STATUS_OK);
    const float want = PROFILES[p] == QMV_PROFILE_MLX_CPU ? 1.0f / 15.0f : 2.0f / 15.0f;
    float s, bias;
    memcpy(&s, b.scales, 4);
    memcpy(&bias, b.biases, 4);
    ck_assert_msg(tu_fbits(s) == tu_fbits(want), "%s: scale %.9g, want %.9g", PROFILE_NAMES[p], s,
                  want);
    ck_assert_float_eq(bias, -2.0f);
    qbuf_free(&b);
}
END_TEST

/* §2.3 example 2: bits 2, a group with min 0 and max 3, element 0.5: (0.5-3)/-1 = 2.5 ->
 * rint 2 (mlx-cpu, dequantizes to 1.0) vs round 3 (GPU rule, dequantizes to 0.0). */
START_TEST(affine_tie_example)
{
    const int p = _i;
    qmv_format fmt = {QMV_MODE_AFFINE, 2, 32};
    float w[32];
    for (int j = 0; j < 32; j++)
        w[j] = 1.0f;
    w[0] = 0.0f;
    w[1] = 3.0f;
    w[2] = 0.5f;
    qbuf b;
    qbuf_init(&b, fmt, QMV_DTYPE_F32, 1, 32);
    ck_assert_int_eq(qbuf_quantize(&b, PROFILES[p], NULL, w, 32, 1), QMV_STATUS_OK);
    const int cpu = PROFILES[p] == QMV_PROFILE_MLX_CPU;
    ck_assert_uint_eq(tu_code_get(b.packed, 2, 2), cpu ? 2u : 3u);
    float out[32];
    ck_assert_int_eq(qbuf_dequantize(&b, NULL, QMV_DTYPE_F32, out, 1), QMV_STATUS_OK);
    ck_assert_float_eq(out[2], cpu ? 1.0f : 0.0f);
    qbuf_free(&b);
}
END_TEST

/* ==== 2. MLX golden data ===================================================================== */

typedef struct {
    char name[80];
    qmv_format fmt;
    qmv_dtype t, dq, dq2;
    int has_dq2, has_g;
    float g;
    int64_t rows, k;
    const unsigned char *w, *packed, *scales, *biases, *deq, *deq2;
} gcase;

static gcase *G;
static int NG;
static unsigned char *GBLOB;
static char GERR[512] = "golden data not loaded";

static int parse_dtype(const char *s, qmv_dtype *t)
{
    if (!strcmp(s, "float32"))
        *t = QMV_DTYPE_F32;
    else if (!strcmp(s, "float16"))
        *t = QMV_DTYPE_F16;
    else if (!strcmp(s, "bfloat16"))
        *t = QMV_DTYPE_BF16;
    else
        return 0;
    return 1;
}

/* Runs in main() before any test: plain file I/O, no OpenMP. */
static void load_golden(void)
{
    char path[1024];
    size_t ilen, blen;
    snprintf(path, sizeof path, "%s/mlx_golden.idx", tu_data_dir());
    char *idx = (char *)tu_read_file(path, &ilen);
    if (!idx) {
        snprintf(GERR, sizeof GERR, "cannot read %.400s", path);
        return;
    }
    snprintf(path, sizeof path, "%s/mlx_golden.bin", tu_data_dir());
    GBLOB = tu_read_file(path, &blen);
    if (!GBLOB) {
        snprintf(GERR, sizeof GERR, "cannot read %.400s", path);
        free(idx);
        return;
    }
    G = calloc(256, sizeof *G);
    size_t expect_off = 0;
    int ended = 0;
    for (char *line = strtok(idx, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || line[0] == 0)
            continue;
        unsigned long long end;
        if (sscanf(line, "end %llu", &end) == 1) {
            if (end != blen || end != expect_off) {
                snprintf(GERR, sizeof GERR, "index end %llu, blob %zu, cases end %zu", end, blen,
                         expect_off);
                NG = 0;
                free(idx);
                return;
            }
            ended = 1;
            break;
        }
        char name[80], mode[16], wdt[16], gh[16], dqs[16], dq2s[16];
        int bits, gs, rows, k;
        unsigned long long off;
        if (NG >= 256 || sscanf(line, "%79s %15s %d %d %15s %d %d %15s %15s %15s %llu", name, mode,
                                &bits, &gs, wdt, &rows, &k, gh, dqs, dq2s, &off) != 11) {
            snprintf(GERR, sizeof GERR, "bad index line: %.200s", line);
            NG = 0;
            free(idx);
            return;
        }
        gcase *c = &G[NG];
        snprintf(c->name, sizeof c->name, "%s", name);
        c->fmt.mode = !strcmp(mode, "affine")  ? QMV_MODE_AFFINE
                      : !strcmp(mode, "mxfp4") ? QMV_MODE_MXFP4
                      : !strcmp(mode, "nvfp4") ? QMV_MODE_NVFP4
                                               : QMV_MODE_MXFP8;
        c->fmt.bits = bits;
        c->fmt.group_size = gs;
        c->rows = rows;
        c->k = k;
        int ok = parse_dtype(wdt, &c->t) && parse_dtype(dqs, &c->dq);
        c->has_dq2 = parse_dtype(dq2s, &c->dq2);
        c->has_g = strcmp(gh, "-") != 0;
        if (c->has_g)
            c->g = tu_ffrom((uint32_t)strtoul(gh, NULL, 16));
        const int aff = c->fmt.mode == QMV_MODE_AFFINE;
        size_t n = (size_t)rows * (size_t)k, ngr = n / (size_t)gs;
        size_t sz_w = n * tu_dsize(c->t), sz_p = n * (size_t)bits / 8;
        size_t sz_s = ngr * (aff ? tu_dsize(c->t) : 1), sz_b = aff ? sz_s : 0;
        size_t sz_d = n * tu_dsize(c->dq), sz_d2 = c->has_dq2 ? n * tu_dsize(c->dq2) : 0;
        size_t total = sz_w + sz_p + sz_s + sz_b + sz_d + sz_d2;
        if (!ok || off != expect_off || off + total > blen) {
            snprintf(GERR, sizeof GERR, "case %s: bad dtype, offset or size", name);
            NG = 0;
            free(idx);
            return;
        }
        const unsigned char *p = GBLOB + off;
        c->w = p;
        p += sz_w;
        c->packed = p;
        p += sz_p;
        c->scales = p;
        p += sz_s;
        c->biases = aff ? p : NULL;
        p += sz_b;
        c->deq = p;
        p += sz_d;
        c->deq2 = c->has_dq2 ? p : NULL;
        expect_off = off + total;
        NG++;
    }
    free(idx);
    if (!ended) {
        snprintf(GERR, sizeof GERR, "index has no end line");
        NG = 0;
        return;
    }
    if (NG != 66)
        snprintf(GERR, sizeof GERR, "expected 66 golden cases, found %d", NG);
    else
        GERR[0] = 0;
}

START_TEST(golden_data_present)
{
    ck_assert_msg(GERR[0] == 0, "%s (regenerate with tests/gen/make_golden.py)", GERR);
}
END_TEST

/* qmv_quantize(mlx-cpu) == mx.quantize, bit for bit. */
START_TEST(golden_quantize)
{
    const gcase *c = &G[_i];
    qbuf b;
    qbuf_init(&b, c->fmt, c->t, c->rows, c->k);
    ck_assert_int_eq(qbuf_quantize(&b, QMV_PROFILE_MLX_CPU, c->has_g ? &c->g : NULL, c->w, c->k, 1),
                     QMV_STATUS_OK);
    char what[160];
    snprintf(what, sizeof what, "%s vs mx.quantize%s", c->name,
             (c->fmt.mode == QMV_MODE_MXFP4 || c->fmt.mode == QMV_MODE_MXFP8)
                 ? " (MLX 0.32.4 picks the smallest 2^e >= fl_T(amax/maxval))"
                 : "");
    expect_same_quant(&b, (const uint32_t *)c->packed, c->scales, c->biases, what);
    qbuf_free(&b);
}
END_TEST

/* qmv_dequantize of MLX's own packed data == mx.dequantize: bit for bit for affine (in the
 * scales' dtype, and exactly widened to float32) and for fp modes without a global scale
 * (float32 and w's dtype), and with a global scale, where both compute
 * fl32(e * fl32(s * fl32(g/2688))) (FORMATS.md §4.2). */
START_TEST(golden_dequantize)
{
    const gcase *c = &G[_i];
    const int64_t n = c->rows * c->k;
    void *out = malloc((size_t)n * 4);
    tu_fails fl = {0};
    for (int o = 0; o < 3; o++) {
        qmv_dtype odt = DTYPES[o];
        const unsigned char *ref = NULL;
        qmv_dtype rdt = odt;
        if (c->fmt.mode == QMV_MODE_AFFINE) {
            ref = c->deq; /* in c->t; float32 output must be its exact widening */
            rdt = c->dq;
            if (odt != QMV_DTYPE_F32 && odt != rdt)
                continue;
        } else if (odt == c->dq) {
            ref = c->deq;
        } else if (c->has_dq2 && odt == c->dq2) {
            ref = c->deq2;
        } else {
            continue;
        }
        memset(out, 0xA5, (size_t)n * 4);
        ck_assert_int_eq(dequantize_raw(c->fmt, c->t, c->rows, c->k, (const uint32_t *)c->packed,
                                        c->scales, c->biases, c->has_g ? &c->g : NULL, odt, out, 1),
                         QMV_STATUS_OK);
        for (int64_t i = 0; i < n; i++) {
            double want = tu_load(rdt, ref, i);
            double got = tu_load(odt, out, i);
            uint32_t gb = tu_load_bits(odt, out, i);
            if (c->has_g) {
                /* MLX returns float32 here whatever dtype was asked for; qmv rounds that
                 * float32 value to the asked dtype. */
                const double r = tu_round_dtype(odt, want);
                const uint32_t wb = odt == QMV_DTYPE_F32   ? tu_f32_bits(r)
                                    : odt == QMV_DTYPE_F16 ? tu_f16_bits(r)
                                                           : tu_bf16_bits(r);
                if (gb != wb)
                    TU_FAIL(&fl, "%s out %s element %lld: 0x%x (%.9g), MLX %.9g", c->name,
                            tu_dname(odt), (long long)i, gb, got, want);
            } else {
                uint32_t wb = odt == QMV_DTYPE_F32 ? tu_f32_bits(want) : tu_load_bits(rdt, ref, i);
                if (gb != wb)
                    TU_FAIL(&fl, "%s out %s element %lld: 0x%x (%.9g), MLX 0x%x (%.9g)", c->name,
                            tu_dname(odt), (long long)i, gb, got, wb, want);
            }
        }
    }
    free(out);
    TU_ASSERT_NO_FAILS(&fl, "qmv_dequantize vs mx.dequantize");
}
END_TEST

/* The oracle of this file against MLX (a test of the test): it must reproduce every golden
 * case, so that the random tests below extend MLX's own behaviour. */
START_TEST(golden_oracle)
{
    const gcase *c = &G[_i];
    const int64_t n = c->rows * c->k;
    double *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = tu_load(c->t, c->w, i);
    qbuf b;
    qbuf_init(&b, c->fmt, c->t, c->rows, c->k);
    ref_quantize(&c->fmt, QMV_PROFILE_MLX_CPU, c->has_g ? &c->g : NULL, c->t, v, c->rows, c->k,
                 b.packed, b.scales, b.biases);
    char what[160];
    snprintf(what, sizeof what, "%s: the test's mlx-cpu oracle vs mx.quantize", c->name);
    expect_same_quant(&b, (const uint32_t *)c->packed, c->scales, c->biases, what);
    qbuf_free(&b);
    free(v);
}
END_TEST

/* ==== 3. Random and adversarial groups against the oracle ==================================== */

static double signed_(tu_rng *r, double v)
{
    return (tu_next(r) & 1) ? -v : v;
}

/* One group of gs values (exact values of t) of a random kind. */
static void gen_group(tu_rng *r, const qmv_format *fmt, qmv_dtype t, double *g, int gs)
{
    const int fp16 = t == QMV_DTYPE_F16;
    const int aff = fmt->mode == QMV_MODE_AFFINE, fp8 = fmt->mode == QMV_MODE_MXFP8;
    const double maxv = fp8 ? 448.0 : 6.0;
    const int lo = fp16 ? -8 : -12, hi = fp16 ? 8 : 12;
    const int kind = tu_int(r, 0, 7);
    switch (kind) {
    case 0: { /* normal with a random scale */
        double sc = ldexp(1.0, tu_int(r, lo, hi)) * (1.0 + tu_unif(r));
        for (int j = 0; j < gs; j++)
            g[j] = tu_normal(r) * sc;
        break;
    }
    case 1: /* rounding ties */
        if (aff) {
            const int nb = (1 << fmt->bits) - 1;
            const double step = ldexp(1.0, tu_int(r, -4, 2));
            const double sg = (tu_next(r) & 1) ? -1.0 : 1.0;
            for (int j = 0; j < gs; j++)
                g[j] = sg * step * 0.5 * tu_int(r, 0, 2 * nb);
            g[tu_int(r, 0, gs - 1)] = 0.0;
            g[tu_int(r, 0, gs - 1)] = sg * nb * step;
        } else {
            const int e = tu_int(r, -6, 6);
            for (int j = 0; j < gs; j++) {
                double x;
                if (fp8) { /* a value or a midpoint of E4M3 */
                    unsigned c = (unsigned)tu_int(r, 0, 0x7D);
                    x = (tu_next(r) & 1) ? tu_e4m3_value(c)
                                         : (tu_e4m3_value(c) + tu_e4m3_value(c + 1)) / 2;
                } else {
                    static const double ties[] = {0.25, 0.75, 1.25, 1.75, 2.5, 3.5,
                                                  5.0,  0.5,  1.0,  3.0,  0.0, 0.1};
                    x = ties[tu_int(r, 0, 11)];
                }
                g[j] = ldexp(signed_(r, x), e);
            }
            g[tu_int(r, 0, gs - 1)] = ldexp(signed_(r, maxv), e);
            g[tu_int(r, 0, gs - 1)] = -0.0;
        }
        break;
    case 2: /* zeros, some negative */
        for (int j = 0; j < gs; j++)
            g[j] = (tu_next(r) & 1) ? -0.0 : 0.0;
        break;
    case 3: { /* all equal */
        double c = signed_(r, ldexp(1.0 + tu_unif(r), tu_int(r, lo, hi)));
        for (int j = 0; j < gs; j++)
            g[j] = c;
        break;
    }
    case 4: { /* all negative (or all positive), exact ends */
        const double sc = ldexp(1.0, tu_int(r, lo, hi));
        const double sg = (tu_next(r) % 4 == 0) ? 1.0 : -1.0;
        for (int j = 0; j < gs; j++)
            g[j] = sg * (1.0 + tu_unif(r)) * sc;
        g[tu_int(r, 0, gs - 1)] = sg * 2.0 * sc;
        g[tu_int(r, 0, gs - 1)] = sg * sc;
        break;
    }
    case 5: { /* amax at exponent-rule boundaries; affine: |min| == |max| */
        static const double f[] = {1.0 + 0x1p-10, 1.0 - 0x1p-10, 1.4142135623730951,
                                   1.5,           1.0 + 0x1p-6,  1.0 - 0x1p-6,
                                   1.0,           0.75};
        const double a = (aff ? 1.0 : maxv) * ldexp(f[tu_int(r, 0, 7)], tu_int(r, -5, fp8 ? 5 : 8));
        for (int j = 0; j < gs; j++)
            g[j] = (2.0 * tu_unif(r) - 1.0) * a;
        if (aff) { /* both a and -a: mask false, the scale is negative */
            g[tu_int(r, 0, gs / 2 - 1)] = a;
            g[tu_int(r, gs / 2, gs - 1)] = -a;
        } else {
            g[tu_int(r, 0, gs - 1)] = signed_(r, a);
        }
        break;
    }
    case 6: { /* tiny */
        double sc;
        if (fp16)
            sc = ldexp(1.0, tu_int(r, -24, -14));
        else if (aff) {
            static const double s[] = {1e-8, 3e-8, 1e-7, 1e-6, 0x1p-40};
            sc = s[tu_int(r, 0, 4)];
        } else
            sc = ldexp(1.0, tu_int(r, -100, -20));
        for (int j = 0; j < gs; j++)
            g[j] = tu_normal(r) * sc;
        break;
    }
    default: { /* large */
        double sc = fp16  ? ldexp(1.0, tu_int(r, 9, 13))
                    : aff ? 1e20
                          : ldexp(1.0, tu_int(r, 20, 100));
        for (int j = 0; j < gs; j++)
            g[j] = tu_normal(r) * sc;
        break;
    }
    }
    for (int j = 0; j < gs; j++) {
        double x = g[j];
        if (fp16 && fabs(x) > 60000.0)
            x = copysign(60000.0, x);
        g[j] = tu_round_dtype(t, x);
    }
}

static void gen_matrix(tu_rng *r, const qmv_format *fmt, qmv_dtype t, qmv_profile prof, double *v,
                       int64_t rows, int64_t k)
{
    const int gs = fmt->group_size;
    for (int64_t i = 0; i < rows * k; i += gs) {
        for (int tries = 0;; tries++) {
            gen_group(r, fmt, t, v + i, gs);
            /* keep out groups where MLX's CPU result is undefined (exponent wrap) */
            if (prof != QMV_PROFILE_MLX_CPU || fmt->mode == QMV_MODE_AFFINE ||
                fmt->mode == QMV_MODE_NVFP4 ||
                !ref_mx_cpu_undefined(v + i, gs, fmt->mode == QMV_MODE_MXFP8, t))
                break;
            ck_assert(tries < 100);
        }
    }
}

/* Loop index: (config * 3 + dtype) * 3 + profile. Rows are strided with NaN padding. */
START_TEST(random_vs_oracle)
{
    const int p = _i % 3, d = (_i / 3) % 3, ci = _i / 9;
    const int with_g = TU_FMTS[ci].global;
    const qmv_format fmt = tu_format(&TU_FMTS[ci]);
    const qmv_dtype t = DTYPES[d];
    const int64_t rows = 24, k = 256, stride = k + 13;
    tu_rng r = {0xC0FFEEull + (uint64_t)_i * 7919u};
    double *v = malloc((size_t)(rows * k) * sizeof *v);
    gen_matrix(&r, &fmt, t, PROFILES[p], v, rows, k);
    float g = 0.0f;
    if (with_g) { /* g = max|w| as MLX's tests do, or a random positive value */
        double m = 0.0;
        for (int64_t i = 0; i < rows * k; i++)
            m = fabs(v[i]) > m ? fabs(v[i]) : m;
        g = (float)((r.s & 1) || m == 0.0 ? ldexp(1.0 + tu_unif(&r), tu_int(&r, -10, 10)) : m);
    }
    void *w = make_w(t, v, rows, k, stride);
    qbuf b, ref;
    qbuf_init(&b, fmt, t, rows, k);
    qbuf_init(&ref, fmt, t, rows, k);
    if (!profile_defined(&b, PROFILES[p], w, stride)) {
        qbuf_free(&ref);
        free(w);
        free(v);
        return;
    }
    qmv_status st = qbuf_quantize(&b, PROFILES[p], with_g ? &g : NULL, w, stride, 1);
    ck_assert_msg(st == QMV_STATUS_OK, "status %d: %s", st, qmv_last_error());
    ref_quantize(&fmt, PROFILES[p], with_g ? &g : NULL, t, v, rows, k, ref.packed, ref.scales,
                 ref.biases);
    char what[160];
    snprintf(what, sizeof what, "%s b%d g%d%s %s %s vs oracle", tu_mname(fmt.mode), fmt.bits,
             fmt.group_size, with_g ? " +global" : "", tu_dname(t), PROFILE_NAMES[p]);
    expect_same_quant(&b, ref.packed, ref.scales, ref.biases, what);
    qbuf_free(&b);
    qbuf_free(&ref);
    free(w);
    free(v);
}
END_TEST

/* ==== 4. Properties ========================================================================== */

static double ulp_of(qmv_dtype t, double x)
{
    const int p = t == QMV_DTYPE_F32 ? 24 : t == QMV_DTYPE_F16 ? 11 : 8;
    const int emin = t == QMV_DTYPE_F16 ? -14 : -126;
    int e = x == 0.0 ? emin : tu_floor_log2(fabs(x));
    return ldexp(1.0, (e < emin ? emin : e) - p + 1);
}

/* |w - w_hat| <= |scale| + 1e-6 (MLX's test_quantize_dequantize, FORMATS.md §2.5) for float32.
 * For float16/bfloat16 the stored scale's rounding (relative u = 2^-p) is multiplied by q and
 * dequantize rounds twice in T, so the bound there is |s|(1 + 2^(bits+1) u) + ulp(q s) +
 * ulp(w_hat): derived, not MLX's. Loop index: (dtype * TU_N_AFF + affine format) * 2 + profile. */
START_TEST(affine_round_trip_bound)
{
    const int p = _i % 2, ci = (_i / 2) % TU_N_AFF, d = _i / (2 * TU_N_AFF);
    const qmv_format fmt = tu_format(&TU_FMTS[ci]);
    const qmv_dtype t = DTYPES[d];
    const int64_t rows = 32, k = 512;
    tu_rng r = {0xB0D1ull + (uint64_t)_i};
    double *v = malloc((size_t)(rows * k) * sizeof *v);
    for (int64_t i = 0; i < rows * k; i++)
        v[i] = tu_round_dtype(t, tu_normal(&r));
    void *w = make_w(t, v, rows, k, k);
    qbuf b;
    qbuf_init(&b, fmt, t, rows, k);
    if (!profile_defined(&b, PROFILES[p], w, k)) {
        free(w);
        free(v);
        return;
    }
    ck_assert_int_eq(qbuf_quantize(&b, PROFILES[p], NULL, w, k, 1), QMV_STATUS_OK);
    void *out = malloc((size_t)(rows * k) * 4);
    ck_assert_int_eq(qbuf_dequantize(&b, NULL, t, out, 1), QMV_STATUS_OK);
    const double u = t == QMV_DTYPE_F32 ? 0x1p-24 : t == QMV_DTYPE_F16 ? 0x1p-11 : 0x1p-8;
    tu_fails fl = {0};
    for (int64_t i = 0; i < rows * k; i++) {
        const int64_t gidx = i / fmt.group_size;
        const double s = fabs(tu_load(t, b.scales, gidx));
        const double wh = tu_load(t, out, i);
        double bound;
        if (t == QMV_DTYPE_F32) {
            bound = s + 1e-6;
        } else {
            const double q = tu_code_get(b.packed + (i / k) * b.lay.words_per_row, i % k, fmt.bits);
            bound = s * (1.0 + ldexp(u, fmt.bits + 1)) + ulp_of(t, q * s) + ulp_of(t, wh);
        }
        if (!(fabs(v[i] - wh) <= bound))
            TU_FAIL(&fl,
                    "%s bits %d gs %d %s: element %lld w %.9g w_hat %.9g |scale| %.9g bound %.9g",
                    PROFILE_NAMES[p], fmt.bits, fmt.group_size, tu_dname(t), (long long)i, v[i], wh,
                    s, bound);
    }
    TU_ASSERT_NO_FAILS(&fl, "affine round-trip bound");
    free(out);
    qbuf_free(&b);
    free(w);
    free(v);
}
END_TEST

/* fp modes are exact on representable inputs: each group has amax = maxval * s with s a
 * power of two (mx) or an E4M3 value (nvfp4), so every profile picks scale s, and the other
 * elements are element-format values times s. nvfp4 with g = 2688 (2688/g = 1) as well.
 * Loop index: (pconfig - 2) * 9 + dtype * 3 + profile (fp configurations only). */
START_TEST(fp_exact_round_trip)
{
    const int p = _i % 3, d = (_i / 3) % 3, ci = 2 + _i / 9;
    int with_g;
    const qmv_format fmt = pconfig_format(ci, &with_g);
    const qmv_dtype t = DTYPES[d];
    const int fp8 = fmt.mode == QMV_MODE_MXFP8, nv = fmt.mode == QMV_MODE_NVFP4;
    const int gs = fmt.group_size;
    const int64_t rows = 16, k = 256;
    tu_rng r = {0xE8AC7ull + (uint64_t)_i};
    double *v = malloc((size_t)(rows * k) * sizeof *v);
    for (int64_t i0 = 0; i0 < rows * k; i0 += gs) {
        double s;
        if (nv) { /* an E4M3 scale code whose 6*s and 0.5*s are exact in every dtype */
            s = tu_e4m3_value((unsigned)tu_int(&r, 1, 0x7E));
        } else {
            int elo = t == QMV_DTYPE_F16 ? (fp8 ? -15 : -23) : -100;
            int ehi = t == QMV_DTYPE_F16 ? (fp8 ? 7 : 13) : 100;
            s = ldexp(1.0, tu_int(&r, elo, ehi));
        }
        for (int j = 0; j < gs; j++) {
            double e = fp8 ? tu_e4m3_value((unsigned)tu_int(&r, 0, 0x7E) | (tu_next(&r) & 0x80u))
                           : tu_e2m1_value((unsigned)tu_int(&r, 0, 15));
            v[i0 + j] = e * s;
        }
        v[i0 + tu_int(&r, 0, gs - 1)] = signed_(&r, (fp8 ? 448.0 : 6.0) * s);
    }
    void *w = make_w(t, v, rows, k, k);
    qbuf b;
    qbuf_init(&b, fmt, t, rows, k);
    ck_assert_int_eq(qbuf_quantize(&b, PROFILES[p], with_g ? &G2688 : NULL, w, k, 1),
                     QMV_STATUS_OK);
    tu_fails fl = {0};
    for (int o = 0; o < 3; o++) {
        void *out = malloc((size_t)(rows * k) * 4);
        ck_assert_int_eq(qbuf_dequantize(&b, with_g ? &G2688 : NULL, DTYPES[o], out, 1),
                         QMV_STATUS_OK);
        for (int64_t i = 0; i < rows * k; i++) {
            const double want = tu_round_dtype(DTYPES[o], v[i]);
            const double got = tu_load(DTYPES[o], out, i);
            /* mlx-cpu never emits -0 (FORMATS.md §3.2), so compare values, not signs */
            if (!(got == want))
                TU_FAIL(&fl, "%s %s %s -> %s: element %lld: %.9g, want %.9g", tu_mname(fmt.mode),
                        PROFILE_NAMES[p], tu_dname(t), tu_dname(DTYPES[o]), (long long)i, got,
                        want);
        }
        free(out);
    }
    TU_ASSERT_NO_FAILS(&fl, "exact fp round trip");
    qbuf_free(&b);
    free(w);
    free(v);
}
END_TEST

/* A zero matrix dequantizes to +0 everywhere (every mode, dtype, profile); a -0 matrix to
 * zeros. Loop index: pconfig * 9 + dtype * 3 + profile. */
START_TEST(zero_matrix)
{
    const int p = _i % 3, d = (_i / 3) % 3, ci = _i / 9;
    int with_g;
    const qmv_format fmt = pconfig_format(ci, &with_g);
    const qmv_dtype t = DTYPES[d];
    const float g = 3.5f;
    const int64_t rows = 4, k = 256;
    for (int neg = 0; neg < 2; neg++) {
        double v[4 * 256];
        for (int i = 0; i < 4 * 256; i++)
            v[i] = neg ? -0.0 : 0.0;
        void *w = make_w(t, v, rows, k, k);
        qbuf b;
        qbuf_init(&b, fmt, t, rows, k);
        ck_assert_int_eq(qbuf_quantize(&b, PROFILES[p], with_g ? &g : NULL, w, k, 1),
                         QMV_STATUS_OK);
        for (int o = 0; o < 3; o++) {
            uint32_t out[4 * 256];
            ck_assert_int_eq(qbuf_dequantize(&b, with_g ? &g : NULL, DTYPES[o], out, 1),
                             QMV_STATUS_OK);
            for (int i = 0; i < 4 * 256; i++) {
                uint32_t bits = tu_load_bits(DTYPES[o], out, i);
                ck_assert_msg(neg ? tu_load(DTYPES[o], out, i) == 0.0 : bits == 0,
                              "%s %s %s %s zeros -> %s element %d bits 0x%x", tu_mname(fmt.mode),
                              PROFILE_NAMES[p], tu_dname(t), neg ? "-0" : "+0", tu_dname(DTYPES[o]),
                              i, bits);
            }
        }
        qbuf_free(&b);
        free(w);
    }
}
END_TEST

/* Identical bytes for 1, 2 and 7 threads (quantize and dequantize). Loop: pconfig * 3 +
 * profile; the dtype cycles with the index. */
START_TEST(determinism_threads)
{
    const int p = _i % 3, ci = _i / 3;
    int with_g;
    const qmv_format fmt = pconfig_format(ci, &with_g);
    const qmv_dtype t = DTYPES[_i % 3];
    const int64_t rows = 67, k = 512;
    const float g = 1.25f;
    tu_rng r = {0xD373ull + (uint64_t)_i};
    double *v = malloc((size_t)(rows * k) * sizeof *v);
    gen_matrix(&r, &fmt, t, PROFILES[p], v, rows, k);
    void *w = make_w(t, v, rows, k, k);
    static const int threads[3] = {1, 2, 7};
    qbuf b[3];
    void *out[3];
    for (int i = 0; i < 3; i++) {
        qbuf_init(&b[i], fmt, t, rows, k);
        ck_assert_int_eq(qbuf_quantize(&b[i], PROFILES[p], with_g ? &g : NULL, w, k, threads[i]),
                         QMV_STATUS_OK);
        out[i] = malloc((size_t)(rows * k) * 4);
        memset(out[i], 0x5A, (size_t)(rows * k) * 4);
        ck_assert_int_eq(
            qbuf_dequantize(&b[0], with_g ? &g : NULL, QMV_DTYPE_F32, out[i], threads[i]),
            QMV_STATUS_OK);
    }
    for (int i = 1; i < 3; i++) {
        ck_assert_msg(!memcmp(b[0].packed, b[i].packed, b[0].lay.packed_bytes),
                      "packed differs with %d threads", threads[i]);
        ck_assert_msg(!memcmp(b[0].scales, b[i].scales, b[0].lay.scales_bytes),
                      "scales differ with %d threads", threads[i]);
        ck_assert_msg(!memcmp(b[0].biases, b[i].biases, b[0].lay.biases_bytes),
                      "biases differ with %d threads", threads[i]);
        ck_assert_msg(!memcmp(out[0], out[i], (size_t)(rows * k) * 4),
                      "dequantize differs with %d threads", threads[i]);
    }
    for (int i = 0; i < 3; i++) {
        qbuf_free(&b[i]);
        free(out[i]);
    }
    free(w);
    free(v);
}
END_TEST

/* NaN or Inf anywhere in w: QMV_STATUS_NON_FINITE and no output byte written.
 * Loop: pconfig * 9 + dtype * 3 + profile. */
START_TEST(non_finite_input)
{
    const int p = _i % 3, d = (_i / 3) % 3, ci = _i / 9;
    int with_g;
    const qmv_format fmt = pconfig_format(ci, &with_g);
    const qmv_dtype t = DTYPES[d];
    const int64_t rows = 3, k = 128;
    const float g = 2.0f;
    const uint32_t bad_bits[3][4] = {
        {0x7FC00000u, 0x7F800000u, 0xFF800000u, 0x7F800001u}, /* f32 NaN, +Inf, -Inf, sNaN */
        {0x7E00u, 0x7C00u, 0xFC00u, 0x7C01u},
        {0x7FC0u, 0x7F80u, 0xFF80u, 0xFF81u},
    };
    tu_rng r = {0x9A9ull + (uint64_t)_i};
    double v[3 * 128];
    for (int i = 0; i < 3 * 128; i++)
        v[i] = tu_round_dtype(t, tu_normal(&r));
    static const int64_t pos[3] = {0, 200, 3 * 128 - 1};
    for (int bi = 0; bi < 4; bi++) {
        for (int pi = 0; pi < 3; pi++) {
            void *w = make_w(t, v, rows, k, k);
            if (t == QMV_DTYPE_F32)
                memcpy((char *)w + 4 * pos[pi], &bad_bits[0][bi], 4);
            else {
                uint16_t h = (uint16_t)bad_bits[d][bi];
                memcpy((char *)w + 2 * pos[pi], &h, 2);
            }
            qbuf b;
            qbuf_init(&b, fmt, t, rows, k);
            /* two threads for the NaN cases (the parallel scan), one otherwise: an OpenMP
             * region per call is slow on an oversubscribed 2-core machine */
            qmv_status st =
                qbuf_quantize(&b, PROFILES[p], with_g ? &g : NULL, w, k, bi == 0 ? 2 : 1);
            ck_assert_msg(st == QMV_STATUS_NON_FINITE, "%s %s %s bits 0x%x at %lld: status %d",
                          tu_mname(fmt.mode), PROFILE_NAMES[p], tu_dname(t), bad_bits[d][bi],
                          (long long)pos[pi], st);
            const unsigned char *bufs[3] = {(unsigned char *)b.packed, b.scales, b.biases};
            const size_t lens[3] = {b.lay.packed_bytes + 4, b.lay.scales_bytes + 4,
                                    b.lay.biases_bytes + 4};
            for (int q = 0; q < 3; q++)
                for (size_t j = 0; j < lens[q]; j++)
                    ck_assert_msg(bufs[q][j] == 0xA5, "output %d byte %zu written on error", q, j);
            qbuf_free(&b);
            free(w);
        }
    }
}
END_TEST

/* A global scale that is NaN, Inf, 0 or so small that 2688/g overflows: NON_FINITE. */
START_TEST(non_finite_global_scale)
{
    const qmv_format fmt = {QMV_MODE_NVFP4, 4, 16};
    const float bad[] = {NAN, INFINITY, -INFINITY, 0.0f, 0x1p-149f};
    float w[32];
    for (int i = 0; i < 32; i++)
        w[i] = (float)i - 10.0f;
    for (int p = 0; p < 3; p++) {
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            qbuf b;
            qbuf_init(&b, fmt, QMV_DTYPE_F32, 1, 32);
            qmv_status st = qbuf_quantize(&b, PROFILES[p], &bad[i], w, 32, 1);
            ck_assert_msg(st == QMV_STATUS_NON_FINITE, "g = %g: status %d", bad[i], st);
            for (size_t j = 0; j < b.lay.packed_bytes; j++)
                ck_assert_uint_eq(((unsigned char *)b.packed)[j], 0xA5);
            qbuf_free(&b);
        }
    }
}
END_TEST

/* ==== Runner ================================================================================ */

static Suite *quantize_suite(void)
{
    Suite *s = suite_create("quantize");
    TCase *tc = tcase_create("formats_examples");
    tcase_add_loop_test(tc, affine_formats_example, 0, 6);
    tcase_add_test(tc, affine_bf16_example);
    tcase_add_loop_test(tc, e2m1_tie_example, 0, 9);
    tcase_add_loop_test(tc, nvfp4_example, 0, 3);
    tcase_add_loop_test(tc, e8m0_table, 0, 3 * N_E8M0_TABLE);
    tcase_add_loop_test(tc, affine_zero_group, 0, 9);
    tcase_add_loop_test(tc, affine_all_equal, 0, 9);
    tcase_add_loop_test(tc, affine_max_finite_group, 0, 6);
    tcase_add_loop_test(tc, affine_all_negative_example, 0, 3);
    tcase_add_loop_test(tc, affine_tie_example, 0, 3);
    suite_add_tcase(s, tc);

    tc = tcase_create("mlx_golden");
    tcase_add_test(tc, golden_data_present);
    tcase_add_loop_test(tc, golden_quantize, 0, NG);
    tcase_add_loop_test(tc, golden_dequantize, 0, NG);
    tcase_add_loop_test(tc, golden_oracle, 0, NG);
    suite_add_tcase(s, tc);

    tc = tcase_create("random_vs_oracle");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, random_vs_oracle, 0, TU_NFMTS * 9);
    suite_add_tcase(s, tc);

    tc = tcase_create("properties");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, affine_round_trip_bound, 0, 3 * TU_N_AFF * 2);
    tcase_add_loop_test(tc, fp_exact_round_trip, 0, 4 * 9);
    tcase_add_loop_test(tc, zero_matrix, 0, N_PCONFIGS * 9);
    tcase_add_loop_test(tc, determinism_threads, 0, N_PCONFIGS * 3);
    tcase_add_loop_test(tc, non_finite_input, 0, N_PCONFIGS * 9);
    tcase_add_test(tc, non_finite_global_scale);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    load_golden(); /* file I/O only: no OpenMP in the parent (fork hazard) */
    SRunner *sr = srunner_create(quantize_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    free(G);
    free(GBLOB);
    return failed != 0;
}
