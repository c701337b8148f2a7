/*
 * check_quant_tiers.c - the CPU tiers of qmv_quantize() and qmv_dequantize() (issue 4 item 2).
 *
 * Each SIMD tier, forced through exec.cpu_tiers, is compared by memcmp with the scalar tier
 * (the reference, itself checked against independent oracles in check_quantize.c and
 * check_dequantize.c) over whole output buffers plus a guard, so any byte written outside the
 * outputs shows too:
 *   quantize: every mode, bit width and group size, nvfp4 with and without a global scale,
 *     every profile and w dtype; 5 rows, a padded odd row stride, 1 or 2 threads; groups of
 *     random, tiny (subnormal), huge, constant, all-negative, signed-zero, tie-point
 *     (E2M1 / affine rounding ties), outlier and random-bit data; and a NaN / Inf input,
 *     which must give the same status and leave every buffer untouched;
 *   dequantize: every format, scale dtype and output dtype, random code and scale bytes
 *     (NaN, Inf, subnormal scales, NaN codes), random global scales, padded strides;
 *   conversions: float32 -> fp16 / bf16 rounding around every fp16 / bf16 code (ties,
 *     neighbours, overflow, subnormals, NaN) through affine dequantize with scale 0, so the
 *     output is the bias rounded once.
 * Every SIMD tier of QMV_CPU_TIER_ALL gets these cases; one the processor or the build lacks is
 * skipped (reported once, not failed).
 */
#include "test_util.h"

static const qmv_dtype DT[3] = {QMV_DTYPE_F32, QMV_DTYPE_F16, QMV_DTYPE_BF16};
#define GUARD   64
#define ROWS    5
#define NGROUPS 7

/* The n-th tier of QMV_CPU_TIER_ALL other than scalar (0 past the last). */
static unsigned simd_tier(int n)
{
    for (unsigned b = 1; b <= QMV_CPU_TIER_ALL; b <<= 1)
        if ((b & QMV_CPU_TIER_ALL) && b != QMV_CPU_TIER_SCALAR && n-- == 0)
            return b;
    return 0;
}

/* ---- quantize ------------------------------------------------------------------------- */

/* Largest binary exponent of a finite value of t, and the exponent of its smallest subnormal. */
static int emax_of(qmv_dtype t)
{
    return t == QMV_DTYPE_F16 ? 15 : 127;
}
static int esub_of(qmv_dtype t)
{
    return t == QMV_DTYPE_F16 ? -24 : t == QMV_DTYPE_BF16 ? -133 : -149;
}

/* One group of gs elements of kind `kind` at w[i0..), stored as t (finite). */
static void fill_group(tu_rng *r, qmv_dtype t, void *w, int64_t i0, int gs, int kind)
{
    const float base =
        ldexpf(1.0f + (float)(tu_u32(r) & 0xFFFF) / 65536.0f, (int)tu_range(r, -8, 8));
    for (int j = 0; j < gs; j++) {
        const float sgn = (tu_u32(r) & 1) ? -1.0f : 1.0f;
        float v;
        switch (kind) {
        case 0: /* ordinary values */
            v = sgn * ldexpf((float)tu_range(r, 1, 1 << 24), (int)tu_range(r, -34, -14));
            break;
        case 1: /* tiny: subnormals of t and just above */
            v = sgn * ldexpf((float)tu_range(r, 0, 1 << 10), esub_of(t) + (int)tu_range(r, 0, 12));
            break;
        case 2: /* huge: up to t's largest finite value */
            v = sgn * ldexpf(1.0f + (float)(tu_u32(r) & 0xFFFF) / 65536.0f,
                             emax_of(t) - (int)tu_range(r, 0, 6));
            break;
        case 3: /* constant */
            v = base;
            break;
        case 4: /* all negative */
            v = -ldexpf((float)tu_range(r, 1, 1 << 16), -12);
            break;
        case 5: /* signed zeros and one value */
            v = j == gs / 2 ? base * sgn : sgn * 0.0f;
            break;
        case 6: /* E2M1 / E4M3 tie points: multiples of 1/4 up to 6, times a power of two */
            v = j == 0 ? 6.0f : sgn * 0.25f * (float)tu_range(r, 0, 24);
            v = ldexpf(v, (int)tu_range(r, -3, 3));
            break;
        case 7: /* integers: affine codes land on ties (x.5) */
            v = (float)tu_range(r, -40, 40) * 0.5f;
            break;
        case 8: /* an outlier among ordinary values */
            v = sgn * ldexpf((float)tu_range(r, 1, 1 << 20), -20) * (j == 3 ? 0x1p20f : 1.0f);
            break;
        default: { /* random bits, finite */
            uint32_t u = tu_u32(r);
            if (t == QMV_DTYPE_F32)
                v = tu_ffrom(u);
            else if (t == QMV_DTYPE_F16)
                v = (float)tu_f16_value((uint16_t)u);
            else
                v = (float)tu_bf16_value((uint16_t)u);
            break;
        }
        }
        tu_store(t, w, i0 + j, v);
        if (!isfinite(tu_load(t, w, i0 + j)))
            tu_store(t, w, i0 + j, 0.0f);
    }
}

typedef struct {
    unsigned char *p;
    size_t n; /* bytes of the output, the guard follows */
} obuf;

static obuf obuf_new(size_t n)
{
    obuf b = {tu_malloc(n + GUARD), n};
    memset(b.p, 0xA5, n + GUARD);
    return b;
}

/* Quantizes with the given tier into fresh buffers; returns the status. */
static qmv_status quantize_tier(const qmv_format *fmt, qmv_profile prof, const float *g,
                                qmv_dtype t, const void *w, size_t w_bytes, int64_t k,
                                int64_t stride, int threads, unsigned tier, obuf o[3])
{
    qmv_layout l;
    ck_assert_int_eq(qmv_layout_query(fmt, t, ROWS, k, &l), QMV_STATUS_OK);
    o[0] = obuf_new(l.packed_bytes);
    o[1] = obuf_new(l.scales_bytes);
    o[2] = obuf_new(l.biases_bytes);
    const qmv_quant_out out = {
        (uint32_t *)o[0].p, l.packed_bytes, o[1].p, l.scales_bytes, l.biases_bytes ? o[2].p : NULL,
        l.biases_bytes};
    const qmv_exec ex = {sizeof ex, threads, tier};
    return qmv_quantize(fmt, prof, g, t, w, w_bytes, ROWS, k, stride, &out, &ex);
}

static void compare_bufs(const obuf *a, const obuf *b, int n, const char *what)
{
    static const char *const names[3] = {"packed", "scales", "biases"};
    for (int i = 0; i < n; i++) {
        const long d = tu_first_diff(a[i].p, b[i].p, a[i].n + GUARD);
        ck_assert_msg(d < 0, "%s: %s differs from the scalar tier at byte %ld of %zu", what,
                      names[i], d, a[i].n);
    }
}

/* _i = (format * 3 + profile) * 3 + dtype */
static void quantize_grid(int li, unsigned tier)
{
    const tu_fmt *f = &TU_FMTS[li / 9];
    const qmv_format fmt = tu_format(f);
    const qmv_profile prof = (qmv_profile)(li / 3 % 3);
    const qmv_dtype t = DT[li % 3];
    const int64_t k = (int64_t)f->group * NGROUPS, stride = k + 3;
    const size_t w_bytes = (size_t)(ROWS * stride) * tu_dsize(t);
    tu_rng rng = {0x51D0ull + (uint64_t)li * 7919u + tier};
    static const float gvals[] = {1.0f, 2688.0f, 1e-3f, 448.0f, 3.0f, 1e6f};
    const float g = gvals[li % 6];
    for (int pass = 0; pass < 3; pass++) {
        unsigned char *w = tu_malloc(w_bytes);
        for (size_t b = 0; b < w_bytes; b++)
            w[b] = (unsigned char)tu_u32(&rng); /* the padding: anything, never read */
        for (int64_t r = 0; r < ROWS; r++)
            for (int gi = 0; gi < NGROUPS; gi++)
                fill_group(&rng, t, w, r * stride + gi * f->group, f->group,
                           (int)((r * NGROUPS + gi + pass * 3) % 10));
        if (pass == 2) /* one NaN or Inf: nothing may be written */
            tu_store_bits(t, w, (ROWS - 1) * stride + k - 1 - (li % 5),
                          t == QMV_DTYPE_F32
                              ? ((li & 1) ? 0x7F800000u : 0xFFC00001u)
                              : ((li & 1) ? (t == QMV_DTYPE_F16 ? 0xFC00u : 0xFF80u) : 0x7FFFu));
        for (int threads = 1; threads <= 2; threads++) {
            obuf a[3], b[3];
            const float *gp = f->global ? &g : NULL;
            const qmv_status sa = quantize_tier(&fmt, prof, gp, t, w, w_bytes, k, stride, threads,
                                                QMV_CPU_TIER_SCALAR, a);
            const qmv_status sb =
                quantize_tier(&fmt, prof, gp, t, w, w_bytes, k, stride, threads, tier, b);
            char what[160];
            snprintf(what, sizeof what,
                     "quantize %s b%d g%d%s %s w %s, pass %d, %d threads, tier %s",
                     tu_mname(f->mode), f->bits, f->group, f->global ? " +global" : "",
                     prof == QMV_PROFILE_MLX_CPU    ? "mlx-cpu"
                     : prof == QMV_PROFILE_MLX_CUDA ? "mlx-cuda"
                                                    : "ocp",
                     tu_dname(t), pass, threads, qmv_cpu_tier_name((qmv_cpu_tier)tier));
            /* 1-bit affine has the mlx-cpu profile only (docs/FORMATS.md) */
            const int undefined = f->mode == QMV_MODE_AFFINE && f->bits == 1 &&
                                  prof != QMV_PROFILE_MLX_CPU;
            ck_assert_msg(sa == (undefined   ? QMV_STATUS_UNSUPPORTED
                                 : pass == 2 ? QMV_STATUS_NON_FINITE
                                             : QMV_STATUS_OK),
                          "%s: scalar status %d (%s)", what, sa, qmv_last_error());
            ck_assert_msg(sb == sa, "%s: status %d, scalar %d", what, sb, sa);
            compare_bufs(a, b, 3, what);
            if (pass == 2 || undefined)
                for (int i = 0; i < 3; i++)
                    ck_assert_msg(tu_all_bytes(b[i].p, b[i].n + GUARD, 0xA5), "%s: wrote output",
                                  what);
            for (int i = 0; i < 3; i++) {
                free(a[i].p);
                free(b[i].p);
            }
        }
        free(w);
    }
}

#define NQUANT (TU_NFMTS * 9) /* loop indices per tier */

/* _i = SIMD tier index * NQUANT + grid index, as for the other cases */
START_TEST(test_quantize)
{
    quantize_grid(_i % NQUANT, simd_tier(_i / NQUANT));
}
END_TEST

/* ---- dequantize ----------------------------------------------------------------------- */

/* A random scale or bias of dtype t: any bits (NaN, Inf, subnormal) or an ordinary value. */
static void random_scale(tu_rng *r, qmv_dtype t, void *p, int64_t i)
{
    const uint32_t u = tu_u32(r);
    switch (u % 6) {
    case 0:
        tu_store_bits(t, p, i, tu_u32(r));
        break;
    case 1:
        tu_store(t, p, i, (u & 64) ? -0.0f : 0.0f);
        break;
    case 2: /* near t's overflow or underflow */
        tu_store(t, p, i,
                 ldexpf((u & 64) ? -1.5f : 1.25f,
                        (u & 128) ? emax_of(t) - 2 : esub_of(t) + (int)(u >> 28)));
        break;
    default:
        tu_store(t, p, i,
                 ldexpf((float)tu_range(r, -(1 << 20), 1 << 20), (int)tu_range(r, -30, -10)));
        break;
    }
}

/* Dequantizes w with the given tier into a fresh buffer. */
static qmv_status dequantize_tier(const qmv_qmatrix *w, qmv_dtype od, int64_t ostride, int threads,
                                  unsigned tier, obuf *o)
{
    *o = obuf_new((size_t)(w->rows * ostride) * tu_dsize(od));
    const qmv_exec ex = {sizeof ex, threads, tier};
    return qmv_dequantize(w, od, o->p, o->n, ostride, &ex);
}

static void dequantize_compare(const qmv_qmatrix *w, qmv_dtype od, int64_t ostride, unsigned tier,
                               const char *what)
{
    for (int threads = 1; threads <= 2; threads++) {
        obuf a, b;
        ck_assert_int_eq(dequantize_tier(w, od, ostride, threads, QMV_CPU_TIER_SCALAR, &a),
                         QMV_STATUS_OK);
        ck_assert_int_eq(dequantize_tier(w, od, ostride, threads, tier, &b), QMV_STATUS_OK);
        const long d = tu_first_diff(a.p, b.p, a.n + GUARD);
        ck_assert_msg(d < 0,
                      "%s, %d threads, tier %s: byte %ld of %zu differs (0x%02x, scalar 0x%02x)",
                      what, threads, qmv_cpu_tier_name((qmv_cpu_tier)tier), d, a.n,
                      d < 0 ? 0 : b.p[d], d < 0 ? 0 : a.p[d]);
        free(a.p);
        free(b.p);
    }
}

/* _i = (format * 3 + scale dtype) * 3 + out dtype */
static void dequantize_grid(int li, unsigned tier)
{
    const tu_fmt *f = &TU_FMTS[li / 9];
    const qmv_format fmt = tu_format(f);
    const qmv_dtype sd = DT[li / 3 % 3], od = DT[li % 3];
    const int affine = f->mode == QMV_MODE_AFFINE;
    const int64_t k = (int64_t)f->group * NGROUPS;
    qmv_layout l;
    ck_assert_int_eq(qmv_layout_query(&fmt, sd, ROWS, k, &l), QMV_STATUS_OK);
    const int64_t pstride = l.words_per_row + 3, sstride = l.groups_per_row + 2, ostride = k + 5;
    const size_t es = affine ? tu_dsize(sd) : 1;
    tu_rng rng = {0xDE9ull + (uint64_t)li * 104729u + tier};
    uint32_t *packed = tu_malloc((size_t)(ROWS * pstride) * 4);
    unsigned char *scales = tu_malloc((size_t)(ROWS * sstride) * es);
    unsigned char *biases = tu_malloc((size_t)(ROWS * sstride) * es);
    for (int64_t j = 0; j < ROWS * pstride; j++)
        packed[j] = tu_u32(&rng);
    for (int64_t j = 0; j < ROWS * sstride; j++) {
        if (affine) {
            random_scale(&rng, sd, scales, j);
            random_scale(&rng, sd, biases, j);
        } else {
            static const uint8_t sp[] = {0x00, 0xFF, 0x7F, 0x80, 0xFE, 0x7E, 0x01, 0x81};
            scales[j] = (tu_u32(&rng) % 4 == 0) ? sp[tu_u32(&rng) % 8] : (uint8_t)tu_u32(&rng);
        }
    }
    static const float gvals[] = {1.0f, 2688.0f, 1e-30f, 1e30f, 3.0f};
    const float g = gvals[li % 5];
    const size_t sbytes = (size_t)(ROWS * sstride) * es;
    const qmv_qmatrix w = {.format = fmt,
                           .scale_dtype = sd,
                           .rows = ROWS,
                           .k = k,
                           .packed = packed,
                           .packed_bytes = (size_t)(ROWS * pstride) * 4,
                           .packed_row_stride = pstride,
                           .scales = scales,
                           .scales_bytes = sbytes,
                           .biases = affine ? biases : NULL,
                           .biases_bytes = affine ? sbytes : 0,
                           .scales_row_stride = sstride,
                           .global_scale = f->global ? &g : NULL};
    char what[128];
    snprintf(what, sizeof what, "dequantize %s b%d g%d%s scales %s out %s", tu_mname(f->mode),
             f->bits, f->group, f->global ? " +global" : "", tu_dname(sd), tu_dname(od));
    dequantize_compare(&w, od, ostride, tier, what);
    free(packed);
    free(scales);
    free(biases);
}

#define NDEQUANT (TU_NFMTS * 9)

START_TEST(test_dequantize)
{
    dequantize_grid(_i % NDEQUANT, simd_tier(_i / NDEQUANT));
}
END_TEST

/* ---- conversions -------------------------------------------------------------------------- */

/* Biases around every 16-bit prefix: the prefix itself, the bf16 tie and its neighbours, the
 * fp16 tie (13 dropped bits) and a random tail; scale 0, so out = fl_out(bias). */
static void conversions(unsigned tier)
{
    enum { TAILS = 6 };
    const int64_t rows = 65536 * TAILS / 64, k = 32 * 64; /* 64 groups of 32 per row */
    const qmv_format fmt = {QMV_MODE_AFFINE, 4, 32};
    qmv_layout l;
    ck_assert_int_eq(qmv_layout_query(&fmt, QMV_DTYPE_F32, rows, k, &l), QMV_STATUS_OK);
    uint32_t *packed = tu_malloc(l.packed_bytes);
    float *scales = tu_malloc(l.scales_bytes);
    uint32_t *biases = tu_malloc(l.biases_bytes);
    tu_rng rng = {0xC0DEull + tier};
    for (size_t i = 0; i < l.packed_bytes / 4; i++)
        packed[i] = tu_u32(&rng);
    static const uint32_t tails[TAILS - 1] = {0x0000u, 0x8000u, 0x7FFFu, 0x8001u, 0x1000u};
    for (uint32_t hi = 0; hi < 65536; hi++) {
        for (int j = 0; j < TAILS; j++) {
            const size_t i = (size_t)hi * TAILS + (size_t)j;
            scales[i] = (j & 1) ? -0.0f : 0.0f;
            biases[i] = hi << 16 | (j < TAILS - 1 ? tails[j] : (tu_u32(&rng) & 0xFFFFu));
        }
    }
    /* fp16 ties and neighbours need the low 13 bits: spread them over the random tails too */
    for (size_t i = TAILS - 1; i < (size_t)65536 * TAILS; i += TAILS * 3)
        biases[i] = (biases[i] & ~0x1FFFu) | 0x1000u;
    qmv_qmatrix w;
    ck_assert_int_eq(qmv_qmatrix_dense(&fmt, QMV_DTYPE_F32, rows, k, packed, scales, biases, &w),
                     QMV_STATUS_OK);
    for (int o = 0; o < 3; o++)
        dequantize_compare(&w, DT[o], k, tier, "conversions (affine, scale 0, bias = value)");
    free(packed);
    free(scales);
    free(biases);
}

START_TEST(test_conversions)
{
    conversions(simd_tier(_i));
}
END_TEST

/* The cases of each SIMD tier this build and processor run, named "<case>_<tier>". */
static Suite *quant_tiers_suite(void)
{
    Suite *s = suite_create("quant_tiers");
    static char names[3 * 32][40]; /* 3 cases of at most 32 tiers */
    int nn = 0;
    for (int ti = 0; simd_tier(ti); ti++) {
        const unsigned tier = simd_tier(ti);
        const char *tname = qmv_cpu_tier_name((qmv_cpu_tier)tier);
        if (!(qmv_cpu_tiers_supported() & tier)) {
            fprintf(stderr,
                    "check_quant_tiers: SKIPPED: %s tier not supported by this processor or "
                    "build\n",
                    tname);
            continue;
        }
        const struct {
            const char *name;
            const TTest *fn;
            int n;
        } cases[] = {
            {"quantize", test_quantize, NQUANT},
            {"dequantize", test_dequantize, NDEQUANT},
            {"conversions", test_conversions, 1},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            snprintf(names[nn], sizeof names[nn], "%s_%s", cases[i].name, tname);
            TCase *tc = tcase_create(names[nn++]);
            tcase_set_timeout(tc, 600);
            tcase_add_loop_test(tc, cases[i].fn, ti * cases[i].n, (ti + 1) * cases[i].n);
            suite_add_tcase(s, tc);
        }
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(quant_tiers_suite());
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
