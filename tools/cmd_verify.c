/*
 * cmd_verify.c - qmv verify: checks an output y computed elsewhere against a quantized W and
 * x, either bit for bit against qmv's canonical result (--exact) or within a rigorous forward
 * error bound valid for any summation order at a stated accumulation precision (--bound).
 * The bound is derived in usage() below (it is the documentation).
 */
#include <float.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qmv verify --weights W.safetensors [--tensor NAME] --x X.npy --y Y.npy\n"
            "                  [--exact | --bound [--accum f32|f16|bf16]]\n"
            "                  [--mode M] [--bits B] [--group-size G] [--global-scale G]\n"
            "                  [--progress|--no-progress]\n"
            "\n"
            "Checks Y (shape (..., N), float32/float16/bfloat16) against y = X . W^T.\n"
            "\n"
            "--exact (default): Y must equal qmv's canonical result (docs/ORDER.md, computed by\n"
            "  qmv_qmv_reference in Y's dtype) bit for bit: for outputs of qmv itself, from\n"
            "  any CPU tier, thread count or GPU.\n"
            "\n"
            "--bound: for outputs of other libraries (MLX, cuBLAS, ...), which may sum in any\n"
            "  order. The exact value E = sum_i x_i w_i is computed in long double from the\n"
            "  exact decoded values (x_i, codes q_i or e_i, group scales s, affine biases b,\n"
            "  nvfp4's c = fl32(g/2688)). Model of the implementation checked: every operation\n"
            "  is one rounding to the accumulation precision u (--accum: f32 u = 2^-24, f16\n"
            "  u = 2^-11, bf16 u = 2^-8), each term is formed with at most 4 roundings (x\n"
            "  converted to the accumulation type, s*q, +b, *x; or x*e, *s) and the K terms are\n"
            "  added in any order (any tree: at most K-1 additions on a term's path), then the\n"
            "  global-scale product; so every term reaches the sum through at most n = K + 4\n"
            "  roundings. By the standard model (Higham, Accuracy and Stability, ch. 3),\n"
            "      |y_acc - E| <= ((1+u)^n - 1) * S + eta_acc * (3K+4) * (1+u)^n * F\n"
            "  with S = sum_i |x_i| (|s q_i| + |b|) (fp modes: sum_i |x_i e_i s|, times |c|),\n"
            "  ((1+u)^n - 1 equals gamma_n = n u / (1 - n u) to first order and stays valid\n"
            "  when n u >= 1), eta_acc half the smallest subnormal of the accumulation type\n"
            "  (each multiplication may underflow once; F = max(1, max|w|) max(1, max|s|)\n"
            "  max(1, |c|) covers a later multiplication scaling that error). Y's own rounding\n"
            "  adds u_y (|E| + that) + eta_y, and the long-double evaluation of E at most\n"
            "  (K + 8) 2^-63 S. An element passes when |Y - E| is within the sum. Elements\n"
            "  where an intermediate could overflow the accumulation type ((1+u)^n S or a\n"
            "  dequantized weight reaches its largest finite value) or Y's dtype are reported\n"
            "  as unchecked. NaN inputs must give NaN, other non-finite inputs a non-finite Y.\n"
            "\n"
            "  --tensor NAME      the matrix, when W has several\n"
            "  --mode, --bits, --group-size, --global-scale   for files without qmv metadata\n"

            "Prints the worst element, its error and its bound. Exit status: 0 all elements\n"
            "pass, 1 any fails, 2 usage error or unreadable input.\n");
}

typedef struct {
    long double u, eta, max;
    const char *name;
} prec;

static prec prec_of(qmv_dtype dt)
{
    switch (dt) {
    case QMV_DTYPE_F16: return (prec){0x1p-11L, 0x1p-25L, 65504.0L, "f16"};
    case QMV_DTYPE_BF16: return (prec){0x1p-8L, 0x1p-134L, 0x1.fep127L, "bf16"};
    default: return (prec){0x1p-24L, 0x1p-150L, (long double)FLT_MAX, "f32"};
    }
}

/* y[j][n] as float (exact widening). */
static float y_at(const void *y, qmv_dtype dt, size_t idx)
{
    float f;
    const size_t es = qmv_dtype_size(dt);
    qmv_convert(dt, (const uint8_t *)y + idx * es, es, QMV_DTYPE_F32, &f, 4, 1);
    return f;
}

static void print_elem(const char *what, int64_t m, int64_t n, int64_t mcount, float v)
{
    if (mcount > 1)
        printf("%s y[%lld][%lld] = %.9g", what, (long long)m, (long long)n, (double)v);
    else
        printf("%s y[%lld] = %.9g", what, (long long)n, (double)v);
}

/* ---- --exact ------------------------------------------------------------------------------- */

static int verify_exact(const cli_qtensor *q, const cli_array *x, const cli_array *y,
                        int progress)
{
    const qmv_dtype yd = y->dtype;
    const size_t es = qmv_dtype_size(yd), nbytes = y->bytes;
    uint8_t *ref = malloc(nbytes ? nbytes : 1);
    if (!ref)
        return cli_error("out of memory"), CLI_ERROR;
    qmv_layout lay;
    qmv_layout_query(&q->fmt, q->scale_dtype, q->rows, q->k, &lay);
    const size_t ses = q->fmt.mode == QMV_MODE_AFFINE ? qmv_dtype_size(q->scale_dtype) : 1;
    int64_t chunk = ((int64_t)1 << 24) / (q->k * x->m > 0 ? q->k * x->m : 1);
    if (chunk < 1)
        chunk = 1;
    cli_progress pb;
    cli_progress_begin(&pb, "canonical result", progress);
    for (int64_t n0 = 0; n0 < q->rows; n0 += chunk) {
        const int64_t rows = q->rows - n0 < chunk ? q->rows - n0 : chunk;
        const size_t so = (size_t)n0 * (size_t)lay.groups_per_row * ses;
        qmv_qmatrix w;
        qmv_status st = qmv_qmatrix_dense(&q->fmt, q->scale_dtype, rows, q->k,
                                          q->packed + n0 * lay.words_per_row,
                                          (const uint8_t *)q->scales + so,
                                          q->biases ? (const uint8_t *)q->biases + so : NULL, &w);
        w.global_scale = q->has_global_scale ? &q->global_scale : NULL;
        qmv_vectors v = {.batch = 1,
                         .m = x->m,
                         .x_dtype = x->dtype,
                         .x = x->data,
                         .x_bytes = x->bytes,
                         .x_row_stride = x->k,
                         .y_dtype = yd,
                         .y = ref + (size_t)n0 * es,
                         .y_bytes = ((size_t)(x->m - 1) * (size_t)q->rows + (size_t)rows) * es,
                         .y_row_stride = q->rows};
        if (st == QMV_STATUS_OK)
            st = qmv_qmv_reference(&w, &v);
        if (st != QMV_STATUS_OK) {
            cli_progress_end(&pb);
            free(ref);
            return cli_qmv_error("qmv_qmv_reference", st);
        }
        cli_progress_update(&pb, (double)(n0 + rows) / (double)q->rows);
    }
    cli_progress_end(&pb);
    const size_t total = (size_t)x->m * (size_t)q->rows;
    size_t bad = 0, first = 0, worst = 0;
    double worst_err = -1.0;
    for (size_t i = 0; i < total; i++) {
        if (memcmp(ref + i * es, (const uint8_t *)y->data + i * es, es) == 0)
            continue;
        if (bad++ == 0)
            first = i;
        const float a = y_at(y->data, yd, i), b = y_at(ref, yd, i);
        double err = isnan(a) || isnan(b) ? INFINITY : fabs((double)a - (double)b);
        if (err > worst_err) {
            worst_err = err;
            worst = i;
        }
    }
    printf("verify --exact: %s, %zu elements (M = %lld, N = %lld, K = %lld, %s, y %s), canonical "
           "order v%u\n", cli_esc(q->name), total, (long long)x->m, (long long)q->rows, (long long)q->k,
           qmv_mode_name(q->fmt.mode), qmv_dtype_name(yd), qmv_order_version());
    if (bad == 0) {
        printf("PASS: every element is bit-identical to the canonical result\n");
        free(ref);
        return CLI_OK;
    }
    const int64_t N = q->rows;
    uint32_t yb = 0, rb = 0;
    memcpy(&yb, (const uint8_t *)y->data + first * es, es);
    memcpy(&rb, ref + first * es, es);
    printf("FAIL: %zu of %zu elements differ\n", bad, total);
    print_elem("first:", (int64_t)(first / (size_t)N), (int64_t)(first % (size_t)N), x->m,
               y_at(y->data, yd, first));
    printf(" (bits 0x%0*x), canonical %.9g (bits 0x%0*x)\n", (int)es * 2, yb,
           (double)y_at(ref, yd, first), (int)es * 2, rb);
    print_elem("worst:", (int64_t)(worst / (size_t)N), (int64_t)(worst % (size_t)N), x->m,
               y_at(y->data, yd, worst));
    printf(", canonical %.9g, |difference| %.9g\n", (double)y_at(ref, yd, worst), worst_err);
    free(ref);
    return CLI_FAIL;
}

/* ---- --bound ------------------------------------------------------------------------------- */

/* Exact decoded values through the public API: dequantizing with unit scales (and zero
 * biases) gives the element values q or e exactly in float32; the scale codes are decoded by
 * dequantizing a matrix of ones with every scale byte. */
typedef struct {
    float e8m0[256], e4m3[256];
} scale_tables;

/* Decodes every scale byte of `mode` (a 4-bit fp mode of `group` <= 32 elements per group):
 * 256 rows of one group each, every element 1.0 (E2M1 code 0x2), scale byte = row. */
static int decode_scales(qmv_mode mode, int64_t group, const char *what, float table[256])
{
    static uint32_t packed[256 * 4];
    static float out[256 * 32];
    uint8_t sc[256];
    for (int i = 0; i < 256 * 4; i++)
        packed[i] = 0x22222222u;
    for (int i = 0; i < 256; i++)
        sc[i] = (uint8_t)i;
    qmv_format f4;
    qmv_qmatrix w;
    qmv_format_default(mode, &f4);
    qmv_status st = qmv_qmatrix_dense(&f4, QMV_DTYPE_F32, 256, group, packed, sc, NULL, &w);
    if (st == QMV_STATUS_OK)
        st = qmv_dequantize(&w, QMV_DTYPE_F32, out, sizeof out, group, NULL);
    if (st != QMV_STATUS_OK)
        return cli_qmv_error(what, st), -1;
    for (int i = 0; i < 256; i++)
        table[i] = out[i * group];
    return 0;
}

static int make_tables(scale_tables *t)
{
    if (decode_scales(QMV_MODE_MXFP4, 32, "decoding E8M0 scales", t->e8m0))
        return -1;
    return decode_scales(QMV_MODE_NVFP4, 16, "decoding E4M3 scales", t->e4m3);
}

typedef struct {
    size_t checked, failed, unchecked;
    int64_t worst_m, worst_n;
    long double worst_ratio, worst_err, worst_bound, worst_ref;
    float worst_y;
    int have_worst;
    int64_t fail_m, fail_n; /* first failure */
    float fail_y;
    long double fail_ref, fail_err, fail_bound;
} bound_stats;

/* The work buffers of verify_bound. */
static void free_bufs(float *xf, float *vals, float *sf, float *bf, void *unit_s, void *zero_b)
{
    free(xf);
    free(vals);
    free(sf);
    free(bf);
    free(unit_s);
    free(zero_b);
}

static int verify_bound(const cli_qtensor *q, const cli_array *x, const cli_array *y,
                        qmv_dtype accum, int progress)
{
    const int64_t N = q->rows, K = q->k, M = x->m, G = q->fmt.group_size, ng = K / G;
    const prec pa = prec_of(accum), py = prec_of(y->dtype);
    scale_tables tab;
    if (q->fmt.mode != QMV_MODE_AFFINE && make_tables(&tab))
        return CLI_ERROR;
    qmv_layout lay;
    qmv_layout_query(&q->fmt, q->scale_dtype, N, K, &lay);
    const size_t ses = q->fmt.mode == QMV_MODE_AFFINE ? qmv_dtype_size(q->scale_dtype) : 1;

    /* x as float (exact), then long double */
    float *xf = malloc((size_t)(M * K) * sizeof(float));
    int64_t chunk = ((int64_t)1 << 22) / K;
    if (chunk < 1)
        chunk = 1;
    if (chunk > N)
        chunk = N;
    float *vals = malloc((size_t)(chunk * K) * sizeof(float) + 4);
    float *sf = malloc((size_t)(chunk * ng) * sizeof(float) + 4);
    float *bf = malloc((size_t)(chunk * ng) * sizeof(float) + 4);
    void *unit_s = malloc((size_t)(chunk * ng) * ses + 4);
    /* zero biases for affine */
    void *zero_b = q->fmt.mode == QMV_MODE_AFFINE ? calloc((size_t)(chunk * ng), ses) : NULL;
    if (!xf || !vals || !sf || !bf || !unit_s || (q->fmt.mode == QMV_MODE_AFFINE && !zero_b)) {
        free_bufs(xf, vals, sf, bf, unit_s, zero_b);
        return cli_error("out of memory"), CLI_ERROR;
    }
    qmv_convert(x->dtype, x->data, x->bytes, QMV_DTYPE_F32, xf, (size_t)(M * K) * 4,
                (size_t)(M * K));
    /* unit scales: affine 1.0 with zero biases; E8M0 127 = 1; E4M3 0x38 = 1 */
    if (q->fmt.mode == QMV_MODE_AFFINE) {
        const float one = 1.0f;
        uint8_t onebits[4];
        qmv_convert(QMV_DTYPE_F32, &one, 4, q->scale_dtype, onebits, 4, 1);
        for (int64_t i = 0; i < chunk * ng; i++)
            memcpy((uint8_t *)unit_s + (size_t)i * ses, onebits, ses);
    } else {
        memset(unit_s, q->fmt.mode == QMV_MODE_NVFP4 ? 0x38 : 127, (size_t)(chunk * ng));
    }
    const long double c = q->has_global_scale ? (long double)(q->global_scale / 2688.0f) : 1.0L;
    const long double n_r = (long double)(K + 4);
    const long double g = expm1l(n_r * log1pl(pa.u)) * (1.0L + 0x1p-40L);
    const long double e_ld_rel = (long double)(K + 8) * 0x1p-63L;

    bound_stats bs = {0};
    bs.fail_m = -1;
    cli_progress pb;
    cli_progress_begin(&pb, "exact products", progress);
    int rc = CLI_OK;
    for (int64_t n0 = 0; n0 < N && rc == CLI_OK; n0 += chunk) {
        const int64_t rows = N - n0 < chunk ? N - n0 : chunk;
        const size_t so = (size_t)n0 * (size_t)lay.groups_per_row * ses;
        qmv_qmatrix w;
        qmv_status st = qmv_qmatrix_dense(&q->fmt, q->scale_dtype, rows, K,
                                          q->packed + n0 * lay.words_per_row, unit_s, zero_b, &w);
        if (st == QMV_STATUS_OK)
            st = qmv_dequantize(&w, QMV_DTYPE_F32, vals, (size_t)(rows * K) * 4, K, NULL);
        if (st != QMV_STATUS_OK) {
            rc = cli_qmv_error("decoding the element codes", st);
            break;
        }
        const uint8_t *sb = (const uint8_t *)q->scales + so;
        if (q->fmt.mode == QMV_MODE_AFFINE) {
            qmv_convert(q->scale_dtype, sb, (size_t)(rows * ng) * ses, QMV_DTYPE_F32, sf,
                        (size_t)(rows * ng) * 4, (size_t)(rows * ng));
            qmv_convert(q->scale_dtype, (const uint8_t *)q->biases + so, (size_t)(rows * ng) * ses,
                        QMV_DTYPE_F32, bf, (size_t)(rows * ng) * 4, (size_t)(rows * ng));
        } else {
            const float *tb = q->fmt.mode == QMV_MODE_NVFP4 ? tab.e4m3 : tab.e8m0;
            for (int64_t i = 0; i < rows * ng; i++) {
                sf[i] = tb[sb[i]];
                bf[i] = 0.0f;
            }
        }
        for (int64_t r = 0; r < rows; r++) {
            const float *v = vals + r * K, *s = sf + r * ng, *b = bf + r * ng;
            long double smax = 0, vmax = 0, bmax = 0;
            for (int64_t gi = 0; gi < ng; gi++) {
                smax = fmaxl(smax, fabsl((long double)s[gi]));
                bmax = fmaxl(bmax, fabsl((long double)b[gi]));
            }
            for (int64_t i = 0; i < K; i++)
                vmax = fmaxl(vmax, fabsl((long double)v[i]));
            const long double wmax = smax * vmax + bmax;
            const long double F = fmaxl(1.0L, wmax) * fmaxl(1.0L, smax) * fmaxl(1.0L, fabsl(c));
            for (int64_t m = 0; m < M; m++) {
                const float *xr = xf + m * K;
                long double E = 0, S = 0;
                for (int64_t gi = 0; gi < ng; gi++) {
                    long double p = 0, pa_ = 0, xs = 0, xa = 0;
                    for (int64_t i = gi * G; i < (gi + 1) * G; i++) {
                        const long double xv = xr[i], vv = v[i];
                        p += xv * vv; /* exact: 24 + 8 bits < 64 */
                        pa_ += fabsl(xv * vv);
                        xs += xv;
                        xa += fabsl(xv);
                    }
                    E += (long double)s[gi] * p + (long double)b[gi] * xs;
                    S += fabsl((long double)s[gi]) * pa_ + fabsl((long double)b[gi]) * xa;
                }
                E *= c;
                S *= fabsl(c);
                const int64_t n = n0 + r;
                const float yv = y_at(y->data, y->dtype, (size_t)(m * N + n));
                int pass, checked = 1;
                long double err = 0, bound = 0;
                if (isnan(E)) {
                    pass = isnan(yv);
                } else if (!isfinite(S)) {
                    pass = !isfinite(yv);
                } else {
                    const long double acc = g * S + pa.eta * (long double)(3 * K + 4) * (1 + g) * F;
                    const long double r_max = fabsl(E) + acc;
                    if ((1 + g) * S + acc >= pa.max || wmax * (1 + 4 * pa.u) >= pa.max ||
                        r_max * (1 + py.u) >= py.max) {
                        checked = 0;
                        pass = 1;
                    } else {
                        bound = acc + py.u * r_max + py.eta + e_ld_rel * S;
                        err = isfinite(yv) ? fabsl((long double)yv - E) : INFINITY;
                        pass = err <= bound;
                    }
                }
                if (!checked) {
                    bs.unchecked++;
                    continue;
                }
                bs.checked++;
                if (!pass) {
                    if (bs.failed++ == 0) {
                        bs.fail_m = m;
                        bs.fail_n = n;
                        bs.fail_y = yv;
                        bs.fail_ref = E;
                        bs.fail_err = err;
                        bs.fail_bound = bound;
                    }
                }
                const long double ratio = bound > 0 ? err / bound : (pass ? 0 : INFINITY);
                if (!bs.have_worst || ratio > bs.worst_ratio || (!pass && isinf(ratio))) {
                    bs.have_worst = 1;
                    bs.worst_ratio = pass ? ratio : (bound > 0 ? ratio : INFINITY);
                    bs.worst_m = m;
                    bs.worst_n = n;
                    bs.worst_y = yv;
                    bs.worst_ref = E;
                    bs.worst_err = err;
                    bs.worst_bound = bound;
                }
            }
        }
        cli_progress_update(&pb, (double)(n0 + rows) / (double)N);
    }
    cli_progress_end(&pb);
    free_bufs(xf, vals, sf, bf, unit_s, zero_b);
    if (rc != CLI_OK)
        return rc;
    const size_t total = (size_t)(M * N);
    printf("verify --bound: %s, %zu elements (M = %lld, N = %lld, K = %lld, %s, y %s), "
           "accumulation %s (u = 2^%d), n = K + 4 = %lld roundings\n",
           cli_esc(q->name), total, (long long)M, (long long)N, (long long)K, qmv_mode_name(q->fmt.mode),
           qmv_dtype_name(y->dtype), pa.name, (int)lroundl(log2l(pa.u)), (long long)(K + 4));
    if (bs.have_worst) {
        print_elem("worst:", bs.worst_m, bs.worst_n, M, bs.worst_y);
        printf(", exact %.12Lg, |error| %.6Lg, bound %.6Lg (%.3Lg of the bound)\n", bs.worst_ref,
               bs.worst_err, bs.worst_bound, bs.worst_ratio);
    }
    if (bs.unchecked)
        printf("unchecked: %zu elements where an intermediate could overflow (no bound holds)\n",
               bs.unchecked);
    if (bs.failed) {
        printf("FAIL: %zu of %zu checked elements exceed the bound; first ", bs.failed, bs.checked);
        print_elem("at", bs.fail_m, bs.fail_n, M, bs.fail_y);
        printf(", exact %.12Lg, |error| %.6Lg, bound %.6Lg\n", bs.fail_ref, bs.fail_err,
               bs.fail_bound);
        return CLI_FAIL;
    }
    printf("PASS: %zu elements within the bound\n", bs.checked);
    return CLI_OK;
}

int cmd_verify(int argc, char **argv)
{
    enum { O_W = 1100, O_T, O_X, O_Y, O_EXACT, O_BOUND, O_ACCUM };
    static const struct option lo[] = {
        {"weights", required_argument, NULL, O_W},
        {"tensor", required_argument, NULL, O_T},
        {"x", required_argument, NULL, O_X},
        {"y", required_argument, NULL, O_Y},
        {"exact", no_argument, NULL, O_EXACT},
        {"bound", no_argument, NULL, O_BOUND},
        {"accum", required_argument, NULL, O_ACCUM},
        CLI_FMT_LONG_OPTIONS,
        CLI_GLOBAL_SCALE_LONG_OPTION,
        CLI_PROGRESS_LONG_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *wpath = NULL, *tensor = NULL, *xpath = NULL, *ypath = NULL;
    cli_fmt_flags fl = {0};
    int mode = 0, have_accum = 0, progress = -1, ch, rc = CLI_OK;
    qmv_dtype accum = QMV_DTYPE_F32;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (cli_fmt_option(ch, optarg, &fl, &rc)) {
            if (rc)
                return rc;
            continue;
        }
        if (cli_progress_option(ch, &progress))
            continue;
        switch (ch) {
        case O_W: wpath = optarg; break;
        case O_T: tensor = optarg; break;
        case O_X: xpath = optarg; break;
        case O_Y: ypath = optarg; break;
        case O_EXACT:
        case O_BOUND:
            if (mode && mode != ch) {
                cli_error("--exact and --bound exclude each other");
                return CLI_ERROR;
            }
            mode = ch;
            break;
        case O_ACCUM:
            if (strcmp(optarg, "f32") == 0 || strcmp(optarg, "float32") == 0)
                accum = QMV_DTYPE_F32;
            else if (strcmp(optarg, "f16") == 0 || strcmp(optarg, "float16") == 0)
                accum = QMV_DTYPE_F16;
            else if (strcmp(optarg, "bf16") == 0 || strcmp(optarg, "bfloat16") == 0)
                accum = QMV_DTYPE_BF16;
            else
                return cli_bad_value("accum", optarg);
            have_accum = 1;
            break;
        case 'h': usage(stdout); return CLI_OK;
        default: usage(stderr); return CLI_ERROR;
        }
    }
    if (optind < argc)
        return cli_usage_error(usage, "unexpected argument '%s'", argv[optind]);
    if (!wpath || !xpath || !ypath)
        return cli_usage_error(usage, "--weights, --x and --y are required");
    if (have_accum && mode != O_BOUND) {
        cli_error("--accum goes with --bound");
        return CLI_ERROR;
    }
    cli_qtensor q;
    cli_array x, y;
    if (cli_load_matrix_x(wpath, tensor, &fl, xpath, &q, &x))
        return CLI_ERROR;
    memset(&y, 0, sizeof y);
    rc = CLI_ERROR;
    if (cli_array_load(ypath, NULL, "--y", &y) || cli_check_x_cols(xpath, &x, &q))
        goto done;
    if (y.k != q.rows || y.m != x.m) {
        cli_error("%s: y has %lld rows of %lld, expected %lld rows of N = %lld", ypath,
                  (long long)y.m, (long long)y.k, (long long)x.m, (long long)q.rows);
        goto done;
    }
    rc = mode == O_BOUND ? verify_bound(&q, &x, &y, accum, progress)
                         : verify_exact(&q, &x, &y, progress);
done:
    cli_array_free(&x);
    cli_array_free(&y);
    cli_qtensor_free(&q);
    return rc;
}
