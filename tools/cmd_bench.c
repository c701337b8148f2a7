/*
 * cmd_bench.c - qmv bench: the benchmark-and-verify run of DESIGN.md, and qmv's one benchmark.
 *
 * For each format of --modes (default: M = 1, N = K = 16384, float16 x and y, mxfp4 / nvfp4 /
 * affine 4-bit g64 / affine 8-bit g64 / mxfp8), BENCH_W_ROWS rows of weights uniform in
 * [-1, 1) are quantized (profile mlx-cpu unless --profile) by the scalar tier (the reference
 * bits), then:
 *   - quantize and dequantize of that block on every CPU tier and thread count, each output
 *     compared with the scalar tier's by memcmp;
 *   - the quantized block repeated down to N rows, in as many copies as span --span-mib
 *     (default the larger of 1 GiB and 4x the last-level cache), so that no call finds its
 *     weights in a cache; the canonical result once with qmv_qmv_reference; then every CPU tier
 *     at every thread count, timed over --reps calls that rotate through the copies, every
 *     output compared with the reference by memcmp. Between the calls, read passes
 *     (read_bandwidth.h) stream the same copies with the same thread count: the fastest pass is
 *     the read ceiling, and the row's of_peak = fastest read pass / fastest call
 *     (docs/PERFORMANCE.md, "Method"); of_fma = N * K * M FMAs at the tier's FMA ceiling
 *     (fma_rate.h, measured once per tier and thread count) / fastest call;
 *   - with the CUDA backend built: both CUDA kernels on the same data (tools/bench_cuda.c), or
 *     a line saying why the CUDA part is skipped.
 * This file: options, formats, the context and the rows; bench_case.c measures one format.
 */
#define _POSIX_C_SOURCE 200809L

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "bench.h"
#include "cli.h"
#include "fma_rate.h"
#include "read_bandwidth.h"
#include "tool_util.h"

#define BENCH_DEFAULT_MODES "mxfp4,nvfp4,affine4-g64,affine8-g64,mxfp8"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qmv bench [--n N] [--k K] [--m M] [--modes LIST] [--x-dtype D] [--profile P]\n"
            "                 [--reps R] [--quant-reps Q] [--threads LIST] [--tiers LIST]\n"
            "                 [--span-mib S]\n"
            "                 [--no-cuda] [--cuda-iters I] [--seed S] [--json]\n"
            "\n"
            "qmv's benchmark-and-verify run. Defaults reproduce MLX's seed benchmark: M = 1,\n"
            "N = K = 16384, float16 x and y, in the formats " BENCH_DEFAULT_MODES ".\n"
            "Per format: %d rows of weights uniform in [-1, 1) quantized (profile P) by\n"
            "the scalar tier; quantize and dequantize of those rows timed on each CPU tier and\n"
            "thread count (median of Q calls), outputs compared with the scalar tier's by memcmp;\n"
            "the rows repeated down to N in copies spanning S MiB, so that no call finds W in a\n"
            "cache; the canonical result once (qmv_qmv_reference); each CPU tier at each thread\n"
            "count timed over R calls rotating through the copies (median and fastest), every\n"
            "output compared with the reference by memcmp; effective bandwidth = bytes(x +\n"
            "packed + scales + biases + y) / median time. Between the calls the same threads\n"
            "stream the same copies with a tuned read loop (vector loads, 8 accumulators per\n"
            "thread, three read shapes): its fastest pass is the read ceiling, and of_peak =\n"
            "fastest read pass / fastest call (never above 100%% unless the ceiling is wrong).\n"
            "The FMA ceiling: each tier's fp32 FMA rate with each thread count (12 independent\n"
            "chains per thread); of_fma = N*K*M FMAs (the canonical order's one per weight per\n"
            "vector) at that rate / fastest call.\n"
            "Built with CUDA and with a GPU present: both CUDA kernels (qmv, fp_qmv) on the same\n"
            "data, timed by CUDA events over rotating weight copies, against the device-to-device\n"
            "copy bandwidth and cuBLAS's fp16 GEMV of the same shape, every GPU result compared\n"
            "with the CPU reference by memcmp.\n"
            "\n"
            "  --n N, --k K, --m M  shape (K a multiple of 64), default 16384, 16384, 1\n"
            "  --modes LIST         comma-separated formats: a mode name (mxfp4, nvfp4, mxfp8,\n"
            "                       affine), for affine optionally its bits and group size\n"
            "                       (affine8-g64, affine3-g32; plain affine is 4-bit g64)\n"
            "  --x-dtype D          float16 (default), bfloat16 or float32 (y and W the same)\n"
            "  --profile P          rounding profile of quantize: mlx-cpu (default), mlx-cuda, ocp\n"
            "  --reps R             timed qmv calls per tier and thread count, default 20\n"
            "  --quant-reps Q       timed quantize / dequantize calls, default 3 (0: skip them)\n"
            "  --threads LIST       comma-separated CPU thread counts, 0 = all (the default)\n"
            "  --tiers LIST         CPU tiers to run (scalar,avx2,avx512,neon), default every one\n"
            "                       this processor supports\n"
            "  --span-mib S         the weight copies span at least S MiB, default the larger of\n"
            "                       1024 and 4x the last-level cache\n"
            "  --no-cuda            skip the CUDA part\n"
            "  --cuda-iters I       timed GPU calls per kernel, default 200\n"
            "  --seed S             seed of the random data, default 1\n"
            "  --json               one JSON document on stdout instead of the table\n"
            "Exit status: 0 every result matched its reference, 1 a mismatch, 2 an error.\n",
            BENCH_W_ROWS);
}

/* OpenMP's default thread count (what --threads 0 means); 1 without OpenMP. */
static int all_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* The last-level cache in bytes as the C library reports it (0 when unknown). */
static double llc_bytes(void)
{
    long v = 0;
#ifdef _SC_LEVEL3_CACHE_SIZE
    v = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (v <= 0)
        v = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    return v > 0 ? (double)v : 0.0;
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

/* ---- Formats: the library's mode names, bits and group sizes ----------------------------- */

/* "mxfp4", "affine", "affine8", "affine3-g32": a mode name (qmv_mode_from_name), for a mode
 * with several bit widths optionally followed by the bits, then optionally "-g" and the group
 * size; what is not given is the mode's default (qmv_format_default); the result must pass
 * qmv_format_validate. 0, or -1. */
static int format_parse(const char *s, qmv_format *out)
{
    char head[BENCH_LABEL];
    const size_t hl = strcspn(s, "-");
    if (hl == 0 || hl >= sizeof head)
        return -1;
    memcpy(head, s, hl);
    head[hl] = '\0';
    qmv_mode mode;
    int64_t bits = 0, group = 0;
    if (qmv_mode_from_name(head, &mode) != QMV_STATUS_OK) {
        size_t d = hl; /* the mode name ends where its trailing digits begin */
        while (d > 0 && head[d - 1] >= '0' && head[d - 1] <= '9')
            d--;
        if (d == hl || d == 0 || cli_parse_i64(head + d, 1, 64, &bits))
            return -1;
        head[d] = '\0';
        if (qmv_mode_from_name(head, &mode) != QMV_STATUS_OK)
            return -1;
    }
    if (s[hl] == '-' && (s[hl + 1] != 'g' || cli_parse_i64(s + hl + 2, 1, 1 << 20, &group)))
        return -1;
    qmv_format f;
    if (qmv_format_default(mode, &f) != QMV_STATUS_OK)
        return -1;
    if (bits)
        f.bits = (int)bits;
    if (group)
        f.group_size = (int)group;
    if (qmv_format_validate(&f) != QMV_STATUS_OK)
        return -1;
    *out = f;
    return 0;
}

const char *bench_format_label(const qmv_format *f, char *buf, size_t size)
{
    if (f->mode == QMV_MODE_AFFINE)
        snprintf(buf, size, "%s%d-g%d", qmv_mode_name(f->mode), f->bits, f->group_size);
    else
        snprintf(buf, size, "%s", qmv_mode_name(f->mode));
    return buf;
}

/* Calls item(tok, ctx) for each comma-separated item of s: 0, or -1 when s is too long, an
 * item is refused, or there is none. */
static int each_item(const char *s, int (*item)(const char *tok, void *ctx), void *ctx)
{
    char buf[256];
    int n = 0;
    if (strlen(s) >= sizeof buf)
        return -1;
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ","), n++)
        if (item(tok, ctx))
            return -1;
    return n ? 0 : -1;
}

static int mode_item(const char *tok, void *ctx)
{
    bench_opts *o = ctx;
    if (o->n_modes == BENCH_MAX_MODES || format_parse(tok, &o->modes[o->n_modes]))
        return -1;
    o->n_modes++;
    return 0;
}

static int tier_item(const char *tok, void *ctx)
{
    qmv_cpu_tier t;
    if (qmv_cpu_tier_from_name(tok, &t) != QMV_STATUS_OK)
        return -1;
    *(unsigned *)ctx |= (unsigned)t;
    return 0;
}

/* A thread count, 0 = all. */
static int thread_item(const char *tok, void *ctx)
{
    bench_opts *o = ctx;
    int64_t v;
    if (o->n_threads == BENCH_MAX_THREADS || cli_parse_i64(tok, 0, 4096, &v))
        return -1;
    o->threads[o->n_threads++] = v ? (int)v : all_threads();
    return 0;
}

static int parse_modes(const char *s, bench_opts *o)
{
    o->n_modes = 0;
    return each_item(s, mode_item, o);
}

static int parse_tiers(const char *s, unsigned *mask)
{
    *mask = 0;
    return each_item(s, tier_item, mask);
}

/* "1,2,0": thread counts, 0 = all. */
static int parse_threads(const char *s, bench_opts *o)
{
    o->n_threads = 0;
    return each_item(s, thread_item, o);
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

/* The FMA ceilings measured for the context: a JSON member ("fma_ceiling": {tier: [FMAs per
 * second per thread count]}) or a comment line of the table. */
static void print_fma_ceilings(const bench_ctx *c, int json)
{
    const bench_opts *o = c->o;
    printf(json ? ", \"fma_ceiling\": {" : "# FMA ceiling (fp32 FMAs per second, %d chains per "
                                          "thread):", 12);
    int first = 1;
    for (unsigned t = 1; t <= QMV_CPU_TIER_ALL; t <<= 1) {
        if (!(o->tiers & t & QMV_CPU_TIER_ALL))
            continue;
        const char *name = qmv_cpu_tier_name((qmv_cpu_tier)t);
        if (json)
            printf("%s\"%s\": [", first ? "" : ", ", name);
        else
            printf("%s %s (%d lanes)", first ? "" : ";", name, fmr_lanes(t));
        for (int i = 0; i < o->n_threads; i++) {
            const double r = c->fma_rate[__builtin_ctz(t)][i];
            if (json)
                printf("%s%.6g", i ? ", " : "", r);
            else
                printf("%s %.1f G on %d", i ? "," : "", r * 1e-9, o->threads[i]);
        }
        if (json)
            printf("]");
        first = 0;
    }
    printf(json ? "}" : "\n");
}

/* ---- Rows ---------------------------------------------------------------------------------- */

void bench_print_row(bench_out *out, const bench_row *b)
{
    out->all_exact &= b->exact == 1;
    if (out->o->json) {
        printf("%s\n    {\"mode\": ", out->first ? "" : ",");
        json_str(b->mode);
        printf(", \"op\": \"%s\", \"path\": ", b->op);
        json_str(b->path);
        printf(", \"threads\": %d, \"median_time_ns\": %.0f, \"min_time_ns\": %.0f, "
               "\"bytes\": %zu, \"gbps\": %.4f, \"of_peak\": ",
               b->threads, b->median_s * 1e9, b->min_s * 1e9, b->bytes, b->gbps);
        if (b->has_peak)
            printf("%.4f", b->of_peak);
        else
            printf("null");
        printf(", \"exact\": %s", b->exact == 1 ? "true" : "false");
        if (b->fma_s > 0)
            printf(", \"fma_time_ns\": %.0f, \"of_fma\": %.6g", b->fma_s * 1e9,
                   b->fma_s / b->min_s);
        if (b->read_s > 0)
            printf(", \"read_bytes\": %zu, \"read_time_ns\": %.0f, \"read_gbps\": %.4f, "
                   "\"read_shape\": \"%s\", \"copies\": %d",
                   b->read_bytes, b->read_s * 1e9, (double)b->read_bytes / b->read_s * 1e-9,
                   b->read_shape, b->copies);
        if (b->cuda)
            printf(", \"copies\": %d, \"stream_time_ns\": %.0f, \"speedup_vs_cublas\": %.3f",
                   b->copies, b->stream_us * 1e3, b->vs_cublas);
        printf("}");
    } else {
        char read[16] = "-", peak[16] = "-", fma[16] = "-";
        if (b->read_s > 0)
            snprintf(read, sizeof read, "%.2f", (double)b->read_bytes / b->read_s * 1e-9);
        if (b->has_peak)
            snprintf(peak, sizeof peak, "%.1f%%", 100.0 * b->of_peak);
        if (b->fma_s > 0)
            snprintf(fma, sizeof fma, "%.1f%%", 100.0 * b->fma_s / b->min_s);
        printf("%-12s %-10s %-11s %7d %11.4f %11.4f %9.2f %9s %8s %7s  %s", b->mode, b->op,
               b->path, b->threads, b->median_s * 1e3, b->min_s * 1e3, b->gbps, read, peak, fma,
               b->exact == 1 ? "yes" : "NO (MISMATCH)");
        if (b->cuda)
            printf("   copies %d, stream %.2f us/call, %.2fx cuBLAS fp16", b->copies,
                   b->stream_us, b->vs_cublas);
        printf("\n");
    }
    out->first = 0;
    fflush(stdout);
}

int cmd_bench(int argc, char **argv)
{
    enum { O_N = 1100, O_K, O_M, O_MODES, O_XD, O_PROFILE, O_REPS, O_QREPS, O_THREADS, O_TIERS, O_SPAN,
           O_NOCUDA, O_CITERS, O_SEED, O_JSON };
    static const struct option lo[] = {
        {"n", required_argument, NULL, O_N},
        {"k", required_argument, NULL, O_K},
        {"m", required_argument, NULL, O_M},
        {"modes", required_argument, NULL, O_MODES},
        {"x-dtype", required_argument, NULL, O_XD},
        {"profile", required_argument, NULL, O_PROFILE},
        {"reps", required_argument, NULL, O_REPS},
        {"quant-reps", required_argument, NULL, O_QREPS},
        {"threads", required_argument, NULL, O_THREADS},
        {"tiers", required_argument, NULL, O_TIERS},
        {"span-mib", required_argument, NULL, O_SPAN},
        {"no-cuda", no_argument, NULL, O_NOCUDA},
        {"cuda-iters", required_argument, NULL, O_CITERS},
        {"seed", required_argument, NULL, O_SEED},
        {"json", no_argument, NULL, O_JSON},
        CLI_PROGRESS_LONG_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bench_opts o;
    memset(&o, 0, sizeof o);
    o.n = o.k = 16384;
    o.m = 1;
    o.x_dtype = QMV_DTYPE_F16;
    o.profile = QMV_PROFILE_MLX_CPU;
    o.reps = 20;
    o.quant_reps = 3;
    o.cuda = 1;
    o.cuda_iters = 200;
    o.progress = -1;
    o.seed = 1;
    o.threads[o.n_threads++] = all_threads();
    if (parse_modes(BENCH_DEFAULT_MODES, &o))
        return cli_qmv_error("the default formats", QMV_STATUS_INVALID_ARGUMENT);
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
        case O_PROFILE:
            if (qmv_profile_from_name(optarg, &o.profile) != QMV_STATUS_OK)
                return cli_bad_value("profile", optarg);
            break;
        case O_REPS:
            if (cli_parse_i64(optarg, 1, 1000000, &v))
                return cli_bad_value("reps", optarg);
            o.reps = (int)v;
            break;
        case O_QREPS:
            if (cli_parse_i64(optarg, 0, 1000000, &v))
                return cli_bad_value("quant-reps", optarg);
            o.quant_reps = (int)v;
            break;
        case O_THREADS:
            if (parse_threads(optarg, &o))
                return cli_bad_value("threads", optarg);
            break;
        case O_TIERS:
            if (parse_tiers(optarg, &o.tiers))
                return cli_bad_value("tiers", optarg);
            break;
        case O_SPAN:
            if (cli_parse_double(optarg, &d) || !(d > 0.0 && d <= 1048576.0))
                return cli_bad_value("span-mib", optarg);
            o.span_mib = d;
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
    const unsigned asked = o.tiers;
    o.tiers = asked ? asked & supported : supported;
    if (asked && o.tiers != asked)
        cli_warn("skipping CPU tiers this processor/build does not support");
#ifndef _OPENMP
    for (int i = 0; i < o.n_threads; i++)
        if (o.threads[i] > 1) {
            cli_warn("this qmv was built without OpenMP: every CPU path runs on 1 thread");
            break;
        }
    for (int i = 0; i < o.n_threads; i++)
        o.threads[i] = 1;
#endif
    int kept = 0; /* each thread count once ("1,0" on one core is 1 twice) */
    for (int i = 0; i < o.n_threads; i++) {
        int seen = 0;
        for (int j = 0; j < kept; j++)
            seen |= o.threads[j] == o.threads[i];
        if (!seen)
            o.threads[kept++] = o.threads[i];
    }
    o.n_threads = kept;

    const qmv_dtype dt = o.x_dtype;
    const size_t es = qmv_dtype_size(dt);
    const double llc = llc_bytes();
    bench_ctx c;
    memset(&c, 0, sizeof c);
    c.o = &o;
    c.x_bytes = (size_t)o.m * (size_t)o.k * es;
    c.y_bytes = (size_t)o.m * (size_t)o.n * es;
    c.span_bytes = o.span_mib > 0 ? o.span_mib * 1048576.0
                   : 4.0 * llc > 1073741824.0 ? 4.0 * llc : 1073741824.0;
    c.w_rows = o.n < BENCH_W_ROWS ? o.n : BENCH_W_ROWS;
    for (unsigned t = 1; t <= QMV_CPU_TIER_ALL; t <<= 1)
        if (o.tiers & t & QMV_CPU_TIER_ALL)
            for (int i = 0; i < o.n_threads; i++)
                c.fma_rate[__builtin_ctz(t)][i] = fmr_rate(t, o.threads[i], 5);
    void *w = malloc((size_t)c.w_rows * (size_t)o.k * es), *x = malloc(c.x_bytes);
    float *row = malloc((size_t)o.k * sizeof(float));
    bench_out out = {&o, 1, 1};
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

    char label[BENCH_LABEL];
    if (o.json) {
        printf("{\n  \"context\": {\"tool\": \"qmv bench\", \"qmv_version\": \"%s\", "
               "\"order_version\": %u, \"n\": %" PRId64 ", \"k\": %" PRId64 ", \"m\": %" PRId64
               ", \"x_dtype\": \"%s\", \"y_dtype\": \"%s\", \"profile\": \"%s\", "
               "\"reps\": %d, \"quant_reps\": %d, \"quant_rows\": %" PRId64 ", \"seed\": %" PRIu64
               ", \"cpu\": ",
               qmv_version_string(), qmv_order_version(), o.n, o.k, o.m, qmv_dtype_name(dt),
               qmv_dtype_name(dt), qmv_profile_name(o.profile), o.reps, o.quant_reps, c.w_rows,
               o.seed);
        json_str(cpu);
        printf(", \"threads\": [");
        for (int i = 0; i < o.n_threads; i++)
            printf("%s%d", i ? ", " : "", o.threads[i]);
        printf("], \"modes\": [");
        for (int i = 0; i < o.n_modes; i++)
            printf("%s\"%s\"", i ? ", " : "", bench_format_label(&o.modes[i], label, sizeof label));
        printf("], \"cpu_tiers\": [");
        int firstt = 1;
        for (unsigned t = 1; t <= QMV_CPU_TIER_ALL; t <<= 1)
            if (o.tiers & t & QMV_CPU_TIER_ALL) {
                printf("%s\"%s\"", firstt ? "" : ", ", qmv_cpu_tier_name((qmv_cpu_tier)t));
                firstt = 0;
            }
        printf("], \"read_isa\": \"%s\", \"span_bytes\": %.0f, \"llc_bytes\": %.0f", rbw_isa(),
               c.span_bytes, llc);
        print_fma_ceilings(&c, 1);
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
               ", x and y %s, profile %s, %d timed qmv calls and %d quantize / dequantize "
               "calls (of %" PRId64 " rows) per CPU path\n"
               "# CPU: %s, threads",
               qmv_version_string(), qmv_order_version(), o.n, o.k, o.m, qmv_dtype_name(dt),
               qmv_profile_name(o.profile), o.reps, o.quant_reps, c.w_rows, cpu);
        for (int i = 0; i < o.n_threads; i++)
            printf("%s%d", i ? "," : " ", o.threads[i]);
        printf(", tiers supported:");
        for (unsigned t = 1; t <= QMV_CPU_TIER_ALL; t <<= 1)
            if (supported & t & QMV_CPU_TIER_ALL)
                printf(" %s", qmv_cpu_tier_name((qmv_cpu_tier)t));
        printf("\n# weights rotate over copies spanning %.0f MiB (last-level cache %.0f MiB); "
               "read ceiling: %s loads, 8 accumulators per thread, fastest pass of 3 shapes "
               "over the same copies with the same threads\n",
               c.span_bytes / 1048576.0, llc / 1048576.0, rbw_isa());
        print_fma_ceilings(&c, 0);
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
        printf("# GB/s: bytes / median time; of_peak: CPU qmv rows fastest read pass / fastest "
               "call, CUDA rows against the copy bandwidth; of_fma: N*K*M FMAs at the FMA "
               "ceiling / fastest call\n"
               "%-12s %-10s %-11s %7s %11s %11s %9s %9s %8s %7s  %s\n",
               "mode", "op", "path", "threads", "median_ms", "min_ms", "GB/s", "read_GB/s",
               "of_peak", "of_fma", "exact");
    }
    fflush(stdout);
    for (int i = 0; i < o.n_modes; i++)
        if ((rc = bench_case(&c, &o.modes[i], &out)) != CLI_OK)
            goto done;
    if (o.json)
        printf("\n  ],\n  \"all_exact\": %s\n}\n", out.all_exact ? "true" : "false");
    if (!out.all_exact)
        cli_error("MISMATCH: a path did not reproduce the reference's bits");
    rc = out.all_exact ? CLI_OK : CLI_FAIL;
done:
    free(w);
    free(x);
    free(row);
    return rc;
}
