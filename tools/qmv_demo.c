/*
 * qmv_demo - quantize a random float16 matrix in each common mode, run the scalar reference
 * and the OpenMP qmv on it, check that both give the same bits, and report their speed.
 *
 *   qmv_demo [--n N] [--k K] [--m M] [--threads T] [--reps R] [--seed S] [--json]
 *
 * For each mode (affine 4-bit g64, affine 8-bit g64, mxfp4, nvfp4, mxfp8) the N x K matrix
 * is quantized with qmv_quantize (profile mlx-cpu), then y = x . W^T is computed for M
 * float16 vectors by qmv_qmv_reference (one thread) and by qmv_qmv (OpenMP, T threads, all by
 * default). Every output is compared with memcmp against the reference's first output.
 * Speed is the median over R timed runs; effective bandwidth counts the bytes of x, the
 * packed codes, the scales, the biases and y, as MLX's benchmark does.
 *
 * Output: a table on stdout (context on stderr), or one JSON document with --json.
 * Exit status: 0 all outputs identical, 1 a mismatch, 2 usage or runtime error.
 * Uses only the public API (qmv.h).
 */
#define _GNU_SOURCE /* getopt_long, clock_gettime */
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "qmv.h"
#include "tool_util.h"

typedef struct {
    const char *label;
    qmv_mode mode;
    int bits;
    int group_size;
} demo_mode;

static const demo_mode demo_modes[] = {
    {"affine4-g64", QMV_MODE_AFFINE, 4, 64}, {"affine8-g64", QMV_MODE_AFFINE, 8, 64},
    {"mxfp4", QMV_MODE_MXFP4, 4, 32},        {"nvfp4", QMV_MODE_NVFP4, 4, 16},
    {"mxfp8", QMV_MODE_MXFP8, 8, 32},
};
#define DEMO_MODE_COUNT (sizeof demo_modes / sizeof demo_modes[0])
#define DEMO_K_MULTIPLE 64 /* every demo mode's group size divides it */

typedef struct {
    int64_t n, k, m;
    int threads; /* 0: OpenMP's default */
    int reps;
    uint64_t seed;
    int json;
} demo_options;

typedef struct {
    const demo_mode *mode;
    const char *path;
    int threads;
    double median_s, min_s;
    size_t bytes;
    int match;
} demo_result;

/* ---- Small helpers ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qmv_demo [--n N] [--k K] [--m M] [--threads T] [--reps R] [--seed S] [--json]\n"
            "  --n N        rows of W (outputs per vector), default 4096\n"
            "  --k K        columns of W, a multiple of %d, default 4096\n"
            "  --m M        vectors per call, default 1\n"
            "  --threads T  threads of the OpenMP path, 0 = OpenMP's default (all), default 0\n"
            "  --reps R     timed runs per mode and path, default 10\n"
            "  --seed S     seed of the random matrix and vectors, default 1\n"
            "  --json       print one JSON document instead of the table\n"
            "  --version    print the version and exit\n"
            "Exit status: 0 every path gave the reference's bits, 1 a mismatch, 2 an error.\n",
            DEMO_K_MULTIPLE);
}

/* Fills rows x cols float16 values uniform in [-1, 1), one row at a time through qmv_convert
 * (f32 -> f16, round to nearest even). row_f32 holds cols floats. */
static qmv_status fill_f16(uint16_t *dst, int64_t rows, int64_t cols, float *row_f32,
                           uint64_t *state)
{
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++)
            row_f32[c] = (float)(tool_splitmix64(state) >> 40) * 0x1p-23f - 1.0f;
        qmv_status st = qmv_convert(QMV_DTYPE_F32, row_f32, (size_t)cols * sizeof(float),
                                    QMV_DTYPE_F16, dst + r * cols, (size_t)cols * 2, (size_t)cols);
        if (st != QMV_STATUS_OK)
            return st;
    }
    return QMV_STATUS_OK;
}

static int fail(const char *what, qmv_status st)
{
    fprintf(stderr, "qmv_demo: %s: %s: %s\n", what, qmv_status_string(st), qmv_last_error());
    return 2;
}

/* ---- One mode ---------------------------------------------------------------------------- */

typedef struct {
    const demo_options *opt;
    const uint16_t *w;
    const uint16_t *x;
    uint16_t *y_ref, *y;
    size_t y_bytes;
    double *times;
    int omp_threads;
} demo_ctx;

/* Runs one path reps + 1 times, the first untimed. The reference's first output goes to
 * c->y_ref and is what every later output, of either path, must equal bit for bit. */
static int run_path(const demo_ctx *c, const qmv_qmatrix *wq, qmv_vectors v, int ref,
                    demo_result *res)
{
    qmv_exec exec = QMV_EXEC_INIT;
    exec.num_threads = c->opt->threads;
    int match = 1;
    for (int rep = 0; rep <= c->opt->reps; rep++) {
        v.y = ref && rep == 0 ? c->y_ref : c->y;
        memset(v.y, 0xA5, c->y_bytes); /* stale bits must not pass the comparison */
        double t0 = tool_now();
        qmv_status st = ref ? qmv_qmv_reference(wq, &v) : qmv_qmv(wq, &v, &exec);
        double t1 = tool_now();
        if (st != QMV_STATUS_OK)
            return fail(ref ? "qmv_qmv_reference" : "qmv_qmv", st);
        if (rep > 0)
            c->times[rep - 1] = t1 - t0;
        if (v.y != c->y_ref && memcmp(v.y, c->y_ref, c->y_bytes) != 0)
            match = 0;
    }
    int r = c->opt->reps;
    res->median_s = tool_median(c->times, r);
    res->min_s = c->times[0];
    res->threads = ref ? 1 : c->omp_threads;
    res->path = ref ? "reference" : "openmp";
    res->match = match;
    return 0;
}

static int run_mode(const demo_ctx *c, const demo_mode *dm, demo_result res[2])
{
    const demo_options *o = c->opt;
    qmv_format fmt = {dm->mode, dm->bits, dm->group_size};
    qmv_layout lay;
    qmv_status st = qmv_layout_query(&fmt, QMV_DTYPE_F16, o->n, o->k, &lay);
    if (st != QMV_STATUS_OK)
        return fail("qmv_layout_query", st);

    int rc = 2;
    uint32_t *packed = malloc(lay.packed_bytes);
    void *scales = malloc(lay.scales_bytes);
    void *biases = lay.biases_bytes ? malloc(lay.biases_bytes) : NULL;
    if (!packed || !scales || (lay.biases_bytes && !biases)) {
        fprintf(stderr, "qmv_demo: out of memory\n");
        goto done;
    }

    qmv_exec exec = QMV_EXEC_INIT;
    exec.num_threads = o->threads;
    qmv_quant_out out = {packed,           lay.packed_bytes, scales,
                         lay.scales_bytes, biases,           lay.biases_bytes};
    size_t w_bytes = (size_t)o->n * (size_t)o->k * 2;
    st = qmv_quantize(&fmt, QMV_PROFILE_MLX_CPU, NULL, QMV_DTYPE_F16, c->w, w_bytes, o->n, o->k,
                      o->k, &out, &exec);
    if (st != QMV_STATUS_OK) {
        rc = fail("qmv_quantize", st);
        goto done;
    }
    qmv_qmatrix wq;
    st = qmv_qmatrix_dense(&fmt, QMV_DTYPE_F16, o->n, o->k, packed, scales, biases, &wq);
    if (st != QMV_STATUS_OK) {
        rc = fail("qmv_qmatrix_dense", st);
        goto done;
    }

    qmv_vectors v = {.batch = 1,
                     .m = o->m,
                     .x_dtype = QMV_DTYPE_F16,
                     .x = c->x,
                     .x_bytes = (size_t)o->m * (size_t)o->k * 2,
                     .x_row_stride = o->k,
                     .y_dtype = QMV_DTYPE_F16,
                     .y_bytes = c->y_bytes,
                     .y_row_stride = o->n};
    size_t bytes = v.x_bytes + lay.packed_bytes + lay.scales_bytes + lay.biases_bytes + c->y_bytes;

    if ((rc = run_path(c, &wq, v, 1, &res[0])) != 0 || (rc = run_path(c, &wq, v, 0, &res[1])) != 0)
        goto done;
    for (int i = 0; i < 2; i++) {
        res[i].mode = dm;
        res[i].bytes = bytes;
    }
    rc = 0;
done:
    free(packed);
    free(scales);
    free(biases);
    return rc;
}

/* ---- Output ------------------------------------------------------------------------------ */

static double gbps(const demo_result *r)
{
    return r->median_s > 0 ? (double)r->bytes / r->median_s * 1e-9 : 0.0;
}

static void print_table(const demo_options *o, const demo_result *res, size_t count)
{
    fprintf(stderr,
            "qmv_demo: qmv %s (order v%u), N=%" PRId64 " K=%" PRId64 " M=%" PRId64
            ", float16 x and y, profile mlx-cpu, %d timed runs, seed %" PRIu64 "\n",
            qmv_version_string(), qmv_order_version(), o->n, o->k, o->m, o->reps, o->seed);
    printf("%-12s %-10s %7s %12s %9s %10s  %s\n", "mode", "path", "threads", "median_ms", "GB/s",
           "MB", "output");
    for (size_t i = 0; i < count; i++) {
        const demo_result *r = &res[i];
        printf("%-12s %-10s %7d %12.3f %9.2f %10.2f  %s\n", r->mode->label, r->path, r->threads,
               r->median_s * 1e3, gbps(r), (double)r->bytes * 1e-6,
               r->match ? "identical" : "MISMATCH");
    }
}

static void print_json(const demo_options *o, const demo_result *res, size_t count, int all_match)
{
    printf("{\n  \"context\": {\"tool\": \"qmv_demo\", \"qmv_version\": \"%s\", "
           "\"order_version\": %u, \"n\": %" PRId64 ", \"k\": %" PRId64 ", \"m\": %" PRId64 ", "
           "\"x_dtype\": \"float16\", \"y_dtype\": \"float16\", \"profile\": \"mlx-cpu\", "
           "\"reps\": %d, \"seed\": %" PRIu64 "},\n  \"results\": [",
           qmv_version_string(), qmv_order_version(), o->n, o->k, o->m, o->reps, o->seed);
    for (size_t i = 0; i < count; i++) {
        const demo_result *r = &res[i];
        printf("%s\n    {\"name\": \"%s\", \"mode\": \"%s\", \"bits\": %d, \"group_size\": %d, "
               "\"path\": \"%s\", \"threads\": %d, \"median_time_ns\": %.0f, "
               "\"min_time_ns\": %.0f, \"bytes\": %zu, \"gbps\": %.4f, \"match\": %s}",
               i ? "," : "", r->mode->label, qmv_mode_name(r->mode->mode), r->mode->bits,
               r->mode->group_size, r->path, r->threads, r->median_s * 1e9, r->min_s * 1e9,
               r->bytes, gbps(r), r->match ? "true" : "false");
    }
    printf("\n  ],\n  \"all_match\": %s\n}\n", all_match ? "true" : "false");
}

/* ---- main -------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    demo_options o = {4096, 4096, 1, 0, 10, 1, 0};
    static const struct option longopts[] = {
        {"n", required_argument, NULL, 'n'},    {"k", required_argument, NULL, 'k'},
        {"m", required_argument, NULL, 'm'},    {"threads", required_argument, NULL, 't'},
        {"reps", required_argument, NULL, 'r'}, {"seed", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},       {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},    {NULL, 0, NULL, 0},
    };
    const int64_t big = (int64_t)1 << 31;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int64_t v = 0;
        int bad = 0;
        switch (ch) {
        case 'n':
            bad = tool_parse_i64(optarg, 1, big, &o.n);
            break;
        case 'k':
            bad = tool_parse_i64(optarg, DEMO_K_MULTIPLE, big, &o.k) || o.k % DEMO_K_MULTIPLE;
            break;
        case 'm':
            bad = tool_parse_i64(optarg, 1, 4096, &o.m);
            break;
        case 't':
            bad = tool_parse_i64(optarg, 0, 4096, &v);
            o.threads = (int)v;
            break;
        case 'r':
            bad = tool_parse_i64(optarg, 1, 100000, &v);
            o.reps = (int)v;
            break;
        case 's':
            bad = tool_parse_i64(optarg, 0, INT64_MAX, &v);
            o.seed = (uint64_t)v;
            break;
        case 'j':
            o.json = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("qmv_demo %s (library %s, order v%u)\n", QMV_VERSION_STRING,
                   qmv_version_string(), qmv_order_version());
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "qmv_demo: bad value '%s' for --%s\n", optarg,
                    ch == 'n'   ? "n"
                    : ch == 'k' ? "k"
                    : ch == 'm' ? "m"
                    : ch == 't' ? "threads"
                    : ch == 'r' ? "reps"
                                : "seed");
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "qmv_demo: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (qmv_version_number() != QMV_VERSION_NUMBER)
        fprintf(stderr, "qmv_demo: warning: built with qmv.h %s, running library %s\n",
                QMV_VERSION_STRING, qmv_version_string());

    int omp_threads = o.threads;
    if (omp_threads == 0) {
#ifdef _OPENMP
        omp_threads = omp_get_max_threads();
#else
        omp_threads = 1;
#endif
    }

    int rc = 2;
    size_t w_count = (size_t)o.n * (size_t)o.k, x_count = (size_t)o.m * (size_t)o.k;
    demo_ctx c = {.opt = &o, .y_bytes = (size_t)o.m * (size_t)o.n * 2, .omp_threads = omp_threads};
    uint16_t *w = malloc(w_count * 2), *x = malloc(x_count * 2);
    float *row = malloc((size_t)o.k * sizeof(float));
    c.y_ref = malloc(c.y_bytes);
    c.y = malloc(c.y_bytes);
    c.times = malloc((size_t)o.reps * sizeof(double));
    demo_result res[2 * DEMO_MODE_COUNT];
    if (!w || !x || !row || !c.y_ref || !c.y || !c.times) {
        fprintf(stderr, "qmv_demo: out of memory for N=%" PRId64 " K=%" PRId64 "\n", o.n, o.k);
        goto done;
    }
    uint64_t state = o.seed;
    qmv_status st = fill_f16(w, o.n, o.k, row, &state);
    if (st == QMV_STATUS_OK)
        st = fill_f16(x, o.m, o.k, row, &state);
    if (st != QMV_STATUS_OK) {
        rc = fail("qmv_convert", st);
        goto done;
    }
    c.w = w;
    c.x = x;

    int all_match = 1;
    for (size_t i = 0; i < DEMO_MODE_COUNT; i++) {
        if ((rc = run_mode(&c, &demo_modes[i], &res[2 * i])) != 0)
            goto done;
        all_match &= res[2 * i + 1].match & res[2 * i].match;
    }
    if (o.json)
        print_json(&o, res, 2 * DEMO_MODE_COUNT, all_match);
    else
        print_table(&o, res, 2 * DEMO_MODE_COUNT);
    if (!all_match)
        fprintf(stderr, "qmv_demo: MISMATCH: a path did not reproduce the reference's bits\n");
    rc = all_match ? 0 : 1;
done:
    free(w);
    free(x);
    free(row);
    free(c.y_ref);
    free(c.y);
    free(c.times);
    return rc;
}
