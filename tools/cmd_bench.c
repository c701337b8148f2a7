/*
 * cmd_bench.c - qmv bench: the benchmark-and-verify run of DESIGN.md.
 *
 * For each case (default: M = 1, N = K = 16384, float16 x and y, mxfp4 / nvfp4 / affine 4-bit
 * g64 / affine 8-bit g64 / mxfp8, 1024 rows of weights uniform in [-1, 1) quantized with profile
 * mlx-cpu and repeated down to N rows):
 * the canonical result once with qmv_qmv_reference; then every CPU tier this processor supports
 * (qmv_exec.cpu_tiers), all threads, timed over many calls (median), every output compared
 * with the reference by memcmp; the effective bandwidth bytes(x + packed + scales + biases + y)
 * / time as a fraction of the all-threads read bandwidth measured in the same process (a
 * streaming sum over >= 1 GiB). With the CUDA backend built: both CUDA kernels on the same
 * data (tools/bench_cuda.c), or a line saying why the CUDA part is skipped.
 */
#define _POSIX_C_SOURCE 200809L

#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli.h"
#include "read_bandwidth.h"
#include "tool_util.h"
#ifdef QMV_TOOL_CUDA
#include "cuda_tool.h"
#endif

typedef struct {
    const char *label;
    qmv_format fmt;
} bench_mode;

static const bench_mode all_modes[] = {
    {"mxfp4", {QMV_MODE_MXFP4, 4, 32}},
    {"nvfp4", {QMV_MODE_NVFP4, 4, 16}},
    {"affine4-g64", {QMV_MODE_AFFINE, 4, 64}},
    {"affine8-g64", {QMV_MODE_AFFINE, 8, 64}},
    {"mxfp8", {QMV_MODE_MXFP8, 8, 32}},
};
#define N_MODES (sizeof all_modes / sizeof all_modes[0])
#define BENCH_W_ROWS 1024 /* rows of random weights quantized per case, then repeated */

typedef struct {
    int64_t n, k, m;
    qmv_dtype x_dtype;
    int reps, threads, json, cuda, cuda_iters, progress;
    unsigned tiers; /* mask to run; 0 = every supported tier */
    double bw_gib;
    uint64_t seed;
    int modes[N_MODES];
    int n_modes;
} bench_opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qmv bench [--n N] [--k K] [--m M] [--modes LIST] [--x-dtype D] [--reps R]\n"
            "                 [--threads T] [--tiers LIST] [--read-gib G] [--no-cuda]\n"
            "                 [--cuda-iters I] [--seed S] [--json] [--progress|--no-progress]\n"
            "\n"
            "The benchmark-and-verify run. Defaults reproduce MLX's seed benchmark: M = 1,\n"
            "N = K = 16384, float16 x and y, in every mode: mxfp4, nvfp4, affine4-g64,\n"
            "affine8-g64, mxfp8 (1024 rows of weights uniform in [-1, 1), quantized with profile\n"
            "mlx-cpu and repeated down to N rows).\n"
            "Per case: the canonical result once (qmv_qmv_reference); each CPU tier with all\n"
            "threads timed over R calls (median), every output compared with the reference by\n"
            "memcmp; effective bandwidth = bytes(x + packed + scales + biases + y) / time and\n"
            "its fraction of the all-threads read bandwidth measured here (a streaming sum over\n"
            "G GiB). Built with CUDA and with a GPU present: both CUDA kernels (qmv, fp_qmv) on\n"
            "the same data, timed by CUDA events over rotating weight copies, against the\n"
            "device-to-device copy bandwidth and cuBLAS's fp16 GEMV of the same shape, every\n"
            "GPU result compared with the CPU reference by memcmp.\n"
            "\n"
            "  --n N, --k K, --m M  shape (K a multiple of 64), default 16384, 16384, 1\n"
            "  --modes LIST         comma-separated subset of the modes above\n"
            "  --x-dtype D          float16 (default), bfloat16 or float32 (y the same)\n"
            "  --reps R             timed CPU calls per tier, default 20\n"
            "  --threads T          CPU threads, default all\n"
            "  --tiers LIST         CPU tiers to run (scalar,avx2,avx512,neon), default every one\n"
            "                       this processor supports\n"
            "  --read-gib G         size of the read-bandwidth buffer, default 1 (>= 1)\n"
            "  --no-cuda            skip the CUDA part\n"
            "  --cuda-iters I       timed GPU calls per kernel, default 200\n"
            "  --seed S             seed of the random data, default 1\n"
            "  --json               one JSON document on stdout instead of the table\n"
            "Exit status: 0 every result matched the reference, 1 a mismatch, 2 an error.\n");
}

static int max_threads(int want)
{
#ifdef _OPENMP
    return want > 0 ? want : omp_get_max_threads();
#else
    (void)want;
    return 1;
#endif
}

/* All-threads read bandwidth (read_bandwidth.h) over a fresh buffer of `bytes`, first touched
 * by the threads that will read it (pages land on their nodes): median of 5 passes after a
 * warm one. Returns bytes per second (0 on allocation failure). */
static double bench_read_bandwidth(size_t bytes, int threads)
{
    const size_t n = bytes / sizeof(uint64_t);
    uint64_t *a = malloc(n * sizeof *a);
    if (!a)
        return 0.0;
    const int nt = max_threads(threads);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (size_t i = 0; i < n; i++)
        a[i] = i;
    const double bw = read_bandwidth(a, n, nt, RBW_SERIAL, 1, 5);
    free(a);
    return bw;
}

static const char *cpu_model(char *buf, size_t size)
{
    snprintf(buf, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return buf;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ')
                    c++;
                c[strcspn(c, "\n")] = '\0';
                snprintf(buf, size, "%s", c);
            }
            break;
        }
    }
    fclose(f);
    return buf;
}

/* A JSON string without quotes or control characters (model names, labels). */
static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++)
        if (*s != '"' && *s != '\\' && (unsigned char)*s >= 0x20)
            putchar(*s);
    putchar('"');
}

typedef struct {
    const char *mode;
    const char *path; /* "cpu:avx2", "cuda:qmv" */
    int threads;
    double median_s, min_s, gbps, of_peak;
    size_t bytes;
    int exact;     /* 1 identical, 0 mismatch, -1 not run */
    int copies;    /* cuda */
    double stream_us, vs_cublas;
} bench_row;

typedef struct {
    bench_row *v;
    size_t n, cap;
} row_list;

static bench_row *add_row(row_list *r)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 32;
        bench_row *v = realloc(r->v, cap * sizeof *v);
        if (!v)
            return NULL;
        r->v = v;
        r->cap = cap;
    }
    memset(&r->v[r->n], 0, sizeof r->v[0]);
    return &r->v[r->n++];
}

static void print_row(const bench_opts *o, const bench_row *b, int first)
{
    if (o->json) {
        printf("%s\n    {\"mode\": ", first ? "" : ",");
        json_str(b->mode);
        printf(", \"path\": ");
        json_str(b->path);
        printf(", \"threads\": %d, \"median_time_ns\": %.0f, \"min_time_ns\": %.0f, "
               "\"bytes\": %zu, \"gbps\": %.4f, \"of_peak\": %.4f, \"exact\": %s",
               b->threads, b->median_s * 1e9, b->min_s * 1e9, b->bytes, b->gbps, b->of_peak,
               b->exact == 1 ? "true" : "false");
        if (b->copies)
            printf(", \"copies\": %d, \"stream_time_ns\": %.0f, \"speedup_vs_cublas\": %.3f",
                   b->copies, b->stream_us * 1e3, b->vs_cublas);
        printf("}");
    } else {
        printf("%-12s %-14s %7d %11.4f %9.2f %8.1f%%  %s", b->mode, b->path, b->threads,
               b->median_s * 1e3, b->gbps, 100.0 * b->of_peak,
               b->exact == 1 ? "yes" : "NO (MISMATCH)");
        if (b->copies)
            printf("   copies %d, stream %.2f us/call, %.2fx cuBLAS fp16", b->copies,
                   b->stream_us, b->vs_cublas);
        printf("\n");
    }
    fflush(stdout);
}

static int parse_modes(const char *s, bench_opts *o)
{
    o->n_modes = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        size_t i = 0;
        while (i < N_MODES && strcmp(all_modes[i].label, tok) != 0)
            i++;
        if (i == N_MODES || o->n_modes >= (int)N_MODES)
            return -1;
        o->modes[o->n_modes++] = (int)i;
    }
    return o->n_modes ? 0 : -1;
}

static int parse_tiers(const char *s, unsigned *mask)
{
    *mask = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        qmv_cpu_tier t;
        if (qmv_cpu_tier_from_name(tok, &t) != QMV_STATUS_OK)
            return -1;
        *mask |= (unsigned)t;
    }
    return *mask ? 0 : -1;
}

/* Fills rows x cols values of dtype dt, uniform in [-1, 1), through float32. */
static qmv_status fill(void *dst, qmv_dtype dt, int64_t rows, int64_t cols, float *row,
                       uint64_t *state)
{
    const size_t es = qmv_dtype_size(dt);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++)
            row[c] = (float)(tool_splitmix64(state) >> 40) * 0x1p-23f - 1.0f;
        qmv_status st = qmv_convert(QMV_DTYPE_F32, row, (size_t)cols * 4, dt,
                                    (uint8_t *)dst + (size_t)r * (size_t)cols * es,
                                    (size_t)cols * es, (size_t)cols);
        if (st != QMV_STATUS_OK)
            return st;
    }
    return QMV_STATUS_OK;
}

typedef struct {
    const bench_opts *o;
    const void *w, *x;
    int64_t w_rows; /* rows of random weights (the quantized block is repeated to N rows) */
    size_t x_bytes, y_bytes;
    double read_bw;
    unsigned tiers;
#ifdef QMV_TOOL_CUDA
    bench_cuda_ctx *cuda;
#endif
} bench_ctx;

static int run_case(const bench_ctx *c, const bench_mode *bm, row_list *out, int *first)
{
    const bench_opts *o = c->o;
    const qmv_dtype dt = o->x_dtype;
    qmv_layout lay;
    qmv_status st = qmv_layout_query(&bm->fmt, dt, o->n, o->k, &lay);
    if (st != QMV_STATUS_OK)
        return cli_qmv_error("qmv_layout_query", st);
    int rc = CLI_ERROR;
    uint32_t *packed = malloc(lay.packed_bytes);
    void *scales = malloc(lay.scales_bytes), *biases = lay.biases_bytes ? malloc(lay.biases_bytes) : NULL;
    uint8_t *y_ref = malloc(c->y_bytes), *y = malloc(c->y_bytes);
    double *times = malloc((size_t)o->reps * sizeof(double));
    if (!packed || !scales || (lay.biases_bytes && !biases) || !y_ref || !y || !times) {
        cli_error("out of memory for %s", bm->label);
        goto done;
    }
    qmv_exec exec = QMV_EXEC_INIT;
    exec.num_threads = o->threads;
    qmv_quant_out qo = {packed, lay.packed_bytes, scales, lay.scales_bytes, biases, lay.biases_bytes};
    double t0 = cli_now();
    st = qmv_quantize(&bm->fmt, QMV_PROFILE_MLX_CPU, NULL, dt, c->w,
                      (size_t)c->w_rows * (size_t)o->k * qmv_dtype_size(dt), c->w_rows, o->k, o->k,
                      &qo, &exec);
    const double t_quant = cli_now() - t0;
    if (st != QMV_STATUS_OK) {
        rc = cli_qmv_error("qmv_quantize", st);
        goto done;
    }
    /* The quantized block repeats down to N rows: quantizing 16384^2 weights would take longer
     * than the benchmark, and the timed calls read every byte all the same (the matrix is far
     * larger than any cache). The reference still checks every output row. */
    const size_t rows_ses = (size_t)lay.groups_per_row * (bm->fmt.mode == QMV_MODE_AFFINE ? qmv_dtype_size(dt) : 1);
    for (int64_t r = c->w_rows; r < o->n; r++) {
        const int64_t src = r % c->w_rows;
        memcpy(packed + r * lay.words_per_row, packed + src * lay.words_per_row,
               (size_t)lay.words_per_row * 4);
        memcpy((uint8_t *)scales + (size_t)r * rows_ses, (uint8_t *)scales + (size_t)src * rows_ses,
               rows_ses);
        if (biases)
            memcpy((uint8_t *)biases + (size_t)r * rows_ses,
                   (uint8_t *)biases + (size_t)src * rows_ses, rows_ses);
    }
    qmv_qmatrix wq;
    qmv_qmatrix_dense(&bm->fmt, dt, o->n, o->k, packed, scales, biases, &wq);
    qmv_vectors v = {.batch = 1,
                     .m = o->m,
                     .x_dtype = dt,
                     .x = c->x,
                     .x_bytes = c->x_bytes,
                     .x_row_stride = o->k,
                     .y_dtype = dt,
                     .y = y_ref,
                     .y_bytes = c->y_bytes,
                     .y_row_stride = o->n};
    t0 = cli_now();
    st = qmv_qmv_reference(&wq, &v);
    const double t_ref = cli_now() - t0;
    if (st != QMV_STATUS_OK) {
        rc = cli_qmv_error("qmv_qmv_reference", st);
        goto done;
    }
    if (!o->json)
        fprintf(stderr, "qmv bench: %s: quantized in %.2f s, reference in %.2f s\n", bm->label,
                t_quant, t_ref);
    const size_t bytes = c->x_bytes + lay.packed_bytes + lay.scales_bytes + lay.biases_bytes +
                         c->y_bytes;
    v.y = y;
    for (unsigned tier = 1; tier <= QMV_CPU_TIER_ALL; tier <<= 1) {
        if (!(c->tiers & tier & QMV_CPU_TIER_ALL))
            continue;
        exec.cpu_tiers = tier;
        int exact = 1;
        for (int r = -1; r < o->reps; r++) { /* r = -1: warm-up, checked, not timed */
            memset(y, 0xA5, c->y_bytes); /* stale bits must not pass */
            t0 = cli_now();
            st = qmv_qmv(&wq, &v, &exec);
            const double t = cli_now() - t0;
            if (st != QMV_STATUS_OK) {
                rc = cli_qmv_error("qmv_qmv", st);
                goto done;
            }
            if (r >= 0)
                times[r] = t;
            if (memcmp(y, y_ref, c->y_bytes) != 0)
                exact = 0;
        }
        bench_row *b = add_row(out);
        if (!b)
            goto done;
        static char paths[32][24]; /* one per tier bit */
        int pi = 0;
        while (!(tier >> pi & 1u))
            pi++;
        snprintf(paths[pi], sizeof paths[pi], "cpu:%s", qmv_cpu_tier_name((qmv_cpu_tier)tier));
        b->mode = bm->label;
        b->path = paths[pi];
        b->threads = max_threads(o->threads);
        b->median_s = tool_median(times, o->reps);
        b->min_s = times[0];
        b->bytes = bytes;
        b->gbps = (double)bytes / b->median_s * 1e-9;
        b->of_peak = c->read_bw > 0 ? (double)bytes / b->median_s / c->read_bw : 0.0;
        b->exact = exact;
        print_row(o, b, *first);
        *first = 0;
    }
#ifdef QMV_TOOL_CUDA
    if (c->cuda && c->cuda->available) {
        bench_cuda_case cc = {bm->label, bm->fmt, dt, dt, o->n, o->k, o->m, packed, scales, biases,
                              lay.packed_bytes, lay.scales_bytes, lay.biases_bytes, NULL, c->x,
                              c->x_bytes, y_ref, c->y_bytes};
        bench_cuda_result res[2];
        if (bench_cuda_case_run(c->cuda, &cc, res) != CLI_OK)
            goto done;
        for (int i = 0; i < 2; i++) {
            if (!res[i].supported)
                continue;
            bench_row *b = add_row(out);
            if (!b)
                goto done;
            b->mode = bm->label;
            b->path = i == 0 ? "cuda:qmv" : "cuda:fp_qmv";
            b->threads = 0;
            b->median_s = res[i].median_us * 1e-6;
            b->min_s = b->median_s;
            b->bytes = bytes;
            b->gbps = res[i].gbps;
            b->of_peak = res[i].of_copy;
            b->exact = res[i].exact;
            b->copies = res[i].copies;
            b->stream_us = res[i].stream_us;
            b->vs_cublas = res[i].vs_cublas;
            print_row(o, b, *first);
            *first = 0;
        }
    }
#endif
    rc = CLI_OK;
done:
    free(packed);
    free(scales);
    free(biases);
    free(y_ref);
    free(y);
    free(times);
    return rc;
}

int cmd_bench(int argc, char **argv)
{
    enum { O_N = 1100, O_K, O_M, O_MODES, O_XD, O_REPS, O_THREADS, O_TIERS, O_GIB, O_NOCUDA,
           O_CITERS, O_SEED, O_JSON };
    static const struct option lo[] = {
        {"n", required_argument, NULL, O_N},
        {"k", required_argument, NULL, O_K},
        {"m", required_argument, NULL, O_M},
        {"modes", required_argument, NULL, O_MODES},
        {"x-dtype", required_argument, NULL, O_XD},
        {"reps", required_argument, NULL, O_REPS},
        {"threads", required_argument, NULL, O_THREADS},
        {"tiers", required_argument, NULL, O_TIERS},
        {"read-gib", required_argument, NULL, O_GIB},
        {"no-cuda", no_argument, NULL, O_NOCUDA},
        {"cuda-iters", required_argument, NULL, O_CITERS},
        {"seed", required_argument, NULL, O_SEED},
        {"json", no_argument, NULL, O_JSON},
        CLI_PROGRESS_LONG_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bench_opts o = {16384, 16384, 1, QMV_DTYPE_F16, 20, 0, 0, 1, 200, -1, 0, 1.0, 1, {0}, 0};
    for (size_t i = 0; i < N_MODES; i++)
        o.modes[o.n_modes++] = (int)i;
    int ch;
    int64_t v;
    double d;
    const int64_t big = (int64_t)1 << 31;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (cli_progress_option(ch, &o.progress))
            continue;
        switch (ch) {
        case O_N:
            if (cli_parse_i64(optarg, 1, big, &o.n))
                return cli_bad_value("n", optarg);
            break;
        case O_K:
            if (cli_parse_i64(optarg, 64, big, &o.k) || o.k % 64)
                return cli_bad_value("k", optarg);
            break;
        case O_M:
            if (cli_parse_i64(optarg, 1, 4096, &o.m))
                return cli_bad_value("m", optarg);
            break;
        case O_MODES:
            if (parse_modes(optarg, &o))
                return cli_bad_value("modes", optarg);
            break;
        case O_XD:
            if (qmv_dtype_from_name(optarg, &o.x_dtype) != QMV_STATUS_OK)
                return cli_bad_value("x-dtype", optarg);
            break;
        case O_REPS:
            if (cli_parse_i64(optarg, 1, 1000000, &v))
                return cli_bad_value("reps", optarg);
            o.reps = (int)v;
            break;
        case O_THREADS:
            if (cli_parse_threads(optarg, &o.threads))
                return CLI_ERROR;
            break;
        case O_TIERS:
            if (parse_tiers(optarg, &o.tiers))
                return cli_bad_value("tiers", optarg);
            break;
        case O_GIB:
            if (cli_parse_double(optarg, &d) || !(d >= 1.0 && d <= 64.0))
                return cli_bad_value("read-gib", optarg);
            o.bw_gib = d;
            break;
        case O_NOCUDA: o.cuda = 0; break;
        case O_CITERS:
            if (cli_parse_i64(optarg, 1, 1000000, &v))
                return cli_bad_value("cuda-iters", optarg);
            o.cuda_iters = (int)v;
            break;
        case O_SEED:
            if (cli_parse_i64(optarg, 0, INT64_MAX, &v))
                return cli_bad_value("seed", optarg);
            o.seed = (uint64_t)v;
            break;
        case O_JSON: o.json = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        default: usage(stderr); return CLI_ERROR;
        }
    }
    if (optind < argc)
        return cli_usage_error(usage, "unexpected argument '%s'", argv[optind]);
    const unsigned supported = qmv_cpu_tiers_supported();
    unsigned tiers = o.tiers ? o.tiers & supported : supported;
    if (o.tiers && tiers != o.tiers)
        cli_warn("skipping CPU tiers this processor/build does not support");

    /* Read bandwidth first, before the large buffers below exist. */
    const double read_bw = bench_read_bandwidth((size_t)(o.bw_gib * 1073741824.0), o.threads);
    if (read_bw <= 0.0) {
        cli_error("out of memory for the %.1f GiB read-bandwidth buffer", o.bw_gib);
        return CLI_ERROR;
    }

    const qmv_dtype dt = o.x_dtype;
    const size_t es = qmv_dtype_size(dt);
    bench_ctx c;
    memset(&c, 0, sizeof c);
    c.o = &o;
    c.x_bytes = (size_t)o.m * (size_t)o.k * es;
    c.y_bytes = (size_t)o.m * (size_t)o.n * es;
    c.read_bw = read_bw;
    c.tiers = tiers;
    c.w_rows = o.n < BENCH_W_ROWS ? o.n : BENCH_W_ROWS;
    void *w = malloc((size_t)c.w_rows * (size_t)o.k * es), *x = malloc(c.x_bytes);
    float *row = malloc((size_t)o.k * sizeof(float));
    row_list out = {0};
    int rc = CLI_ERROR;
    if (!w || !x || !row) {
        cli_error("out of memory for N = %lld, K = %lld", (long long)o.n, (long long)o.k);
        goto done;
    }
    uint64_t state = o.seed;
    if (fill(w, dt, c.w_rows, o.k, row, &state) != QMV_STATUS_OK ||
        fill(x, dt, o.m, o.k, row, &state) != QMV_STATUS_OK) {
        cli_error("qmv_convert failed: %s", qmv_last_error());
        goto done;
    }
    c.w = w;
    c.x = x;
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    const int nt = max_threads(o.threads);

#ifdef QMV_TOOL_CUDA
    bench_cuda_ctx cuda_ctx;
    memset(&cuda_ctx, 0, sizeof cuda_ctx);
    if (o.cuda) {
        bench_cuda_init(&cuda_ctx, o.n, o.k, o.m, o.cuda_iters);
        c.cuda = &cuda_ctx;
    } else {
        snprintf(cuda_ctx.why, sizeof cuda_ctx.why, "--no-cuda");
    }
    const char *cuda_state = cuda_ctx.available ? "run" : cuda_ctx.why;
#else
    const char *cuda_state = "this qmv was built without the CUDA backend";
#endif

    if (o.json) {
        printf("{\n  \"context\": {\"tool\": \"qmv bench\", \"qmv_version\": \"%s\", "
               "\"order_version\": %u, \"n\": %" PRId64 ", \"k\": %" PRId64 ", \"m\": %" PRId64
               ", \"x_dtype\": \"%s\", \"y_dtype\": \"%s\", \"profile\": \"mlx-cpu\", "
               "\"reps\": %d, \"seed\": %" PRIu64 ", \"cpu\": ",
               qmv_version_string(), qmv_order_version(), o.n, o.k, o.m, qmv_dtype_name(dt),
               qmv_dtype_name(dt), o.reps, o.seed);
        json_str(cpu);
        printf(", \"threads\": %d, \"cpu_tiers\": [", nt);
        int firstt = 1;
        for (unsigned t = 1; t <= QMV_CPU_TIER_ALL; t <<= 1)
            if (tiers & t & QMV_CPU_TIER_ALL) {
                printf("%s\"%s\"", firstt ? "" : ", ", qmv_cpu_tier_name((qmv_cpu_tier)t));
                firstt = 0;
            }
        printf("], \"read_bytes\": %.0f, \"read_gbps\": %.4f", o.bw_gib * 1073741824.0,
               read_bw * 1e-9);
#ifdef QMV_TOOL_CUDA
        if (cuda_ctx.available) {
            printf(", \"gpu\": ");
            json_str(cuda_ctx.name);
            printf(", \"gpu_sms\": %d, \"gpu_cc\": \"%d.%d\", \"copy_gbps\": %.4f, "
                   "\"cublas_f16_time_ns\": %.0f, \"cublas_f16_gbps\": %.4f",
                   cuda_ctx.sms, cuda_ctx.cc_major, cuda_ctx.cc_minor, cuda_ctx.copy_bw * 1e-9,
                   cuda_ctx.cublas_us * 1e3, cuda_ctx.cublas_gbps);
        }
#endif
        printf(", \"cuda\": ");
        json_str(cuda_state);
        printf("},\n  \"results\": [");
    } else {
        printf("# qmv bench: qmv %s (order v%u), N=%" PRId64 " K=%" PRId64 " M=%" PRId64
               ", x and y %s, profile mlx-cpu, %d timed calls per CPU path\n"
               "# CPU: %s, %d threads, tiers supported:",
               qmv_version_string(), qmv_order_version(), o.n, o.k, o.m, qmv_dtype_name(dt),
               o.reps, cpu, nt);
        for (unsigned t = 1; t <= QMV_CPU_TIER_ALL; t <<= 1)
            if (supported & t & QMV_CPU_TIER_ALL)
                printf(" %s", qmv_cpu_tier_name((qmv_cpu_tier)t));
        printf("\n# read bandwidth (%d threads, streaming sum over %.1f GiB): %.2f GB/s\n", nt,
               o.bw_gib, read_bw * 1e-9);
#ifdef QMV_TOOL_CUDA
        if (cuda_ctx.available)
            printf("# GPU: %s (%d SMs, cc %d.%d), device copy bandwidth %.1f GB/s, cuBLAS fp16 "
                   "GEMV %.2f us (%.1f GB/s)\n",
                   cuda_ctx.name, cuda_ctx.sms, cuda_ctx.cc_major, cuda_ctx.cc_minor,
                   cuda_ctx.copy_bw * 1e-9, cuda_ctx.cublas_us, cuda_ctx.cublas_gbps);
        else
            printf("# CUDA: skipped (%s)\n", cuda_state);
#else
        printf("# CUDA: skipped (%s)\n", cuda_state);
#endif
        printf("# of_peak: CPU rows against the read bandwidth, CUDA rows against the copy "
               "bandwidth\n%-12s %-14s %7s %11s %9s %9s  %s\n", "mode", "path", "threads",
               "median_ms", "GB/s", "of_peak", "exact");
    }
    fflush(stdout);
    int first = 1;
    for (int i = 0; i < o.n_modes; i++)
        if ((rc = run_case(&c, &all_modes[o.modes[i]], &out, &first)) != CLI_OK)
            goto done;
    int all_exact = 1;
    for (size_t i = 0; i < out.n; i++)
        all_exact &= out.v[i].exact == 1;
    if (o.json)
        printf("\n  ],\n  \"all_exact\": %s\n}\n", all_exact ? "true" : "false");
    if (!all_exact)
        cli_error("MISMATCH: a path did not reproduce the reference's bits");
    rc = all_exact ? CLI_OK : CLI_FAIL;
done:
    free(w);
    free(x);
    free(row);
    free(out.v);
    return rc;
}
