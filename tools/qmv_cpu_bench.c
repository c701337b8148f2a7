/*
 * qmv_cpu_bench - speed of qmv_qmv() on each CPU tier against the machine's own read
 * bandwidth, measured in the same run (issue 4's figure of merit).
 *
 *   qmv_cpu_bench [--shape NxK]... [--mode NAME]... [--m M] [--threads T]... [--reps R]
 *                 [--tiers MASK] [--ref] [--gib G]
 *
 * Read bandwidth: a streaming sum over a G GiB buffer (default 1), 1 and 2 threads (or the
 * --threads values), median of 5 passes. qmv: random codes and plausible scales (no NaN codes)
 * for each shape (default 4096x14336 and 16384x16384) and mode (default mxfp4, affine 4-bit
 * g64, affine 8-bit g64, mxfp8, nvfp4), float16 x and y, M vectors (default 1). Enough weight
 * copies rotate that they exceed 4x a 32 MiB last-level cache, so every call streams W from
 * memory. Each supported tier (of --tiers, a qmv_cpu_tier mask; default all) runs at each
 * thread count (exec.cpu_tiers forces it);
 * --ref adds the scalar reference (1 thread, slow). Every output (of a call on the first
 * weight copy) is compared with the first configuration's by memcmp. Time is the median of the timed calls (at least --reps, default 9, and
 * at least 0.3 s); effective bandwidth = bytes(x + packed + scales + biases + y) / time, and
 * "of read" is that over the read bandwidth at the same thread count.
 *
 * Exit status: 0 all outputs identical, 1 a mismatch, 2 usage or runtime error.
 * Uses only the public API (qmv.h) and OpenMP (for the bandwidth threads).
 */
#define _GNU_SOURCE /* clock_gettime, strdup */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmv.h"
#include "read_bandwidth.h"
#include "tool_util.h"

#define MAXLIST 16

/* ---- problems -------------------------------------------------------------------------- */

typedef struct {
    const char *label;
    qmv_format f;
} bench_mode;

static const bench_mode MODES[] = {
    {"mxfp4", {QMV_MODE_MXFP4, 4, 32}},   {"affine4", {QMV_MODE_AFFINE, 4, 64}},
    {"affine8", {QMV_MODE_AFFINE, 8, 64}}, {"mxfp8", {QMV_MODE_MXFP8, 8, 32}},
    {"nvfp4", {QMV_MODE_NVFP4, 4, 16}},    {"affine2", {QMV_MODE_AFFINE, 2, 64}},
    {"affine3", {QMV_MODE_AFFINE, 3, 64}}, {"affine5", {QMV_MODE_AFFINE, 5, 64}},
    {"affine6", {QMV_MODE_AFFINE, 6, 64}},
};
#define NMODES ((int)(sizeof MODES / sizeof MODES[0]))

typedef struct {
    qmv_layout lay;
    int copies;
    uint32_t **packed;
    uint8_t **scales, **biases;
    size_t bytes; /* one copy: packed + scales + biases */
} weights;

static uint16_t f16_of_small(double v) /* |v| < 1, normal range: round by truncation is fine */
{
    int e = 0;
    double m = v < 0 ? -v : v;
    if (m == 0)
        return 0;
    while (m < 1.0) {
        m *= 2;
        e--;
    }
    const unsigned mant = (unsigned)((m - 1.0) * 1024.0);
    return (uint16_t)((v < 0 ? 0x8000u : 0u) | (unsigned)(e + 15) << 10 | mant);
}

static int weights_make(weights *wt, const qmv_format *f, int64_t n, int64_t k, uint64_t seed)
{
    memset(wt, 0, sizeof *wt);
    if (qmv_layout_query(f, QMV_DTYPE_F16, n, k, &wt->lay) != QMV_STATUS_OK)
        return -1;
    wt->bytes = wt->lay.packed_bytes + wt->lay.scales_bytes + wt->lay.biases_bytes;
    const size_t llc4 = (size_t)128 << 20;
    wt->copies = (int)((llc4 + wt->bytes - 1) / wt->bytes);
    if (wt->copies < 2)
        wt->copies = 2;
    wt->packed = calloc((size_t)wt->copies, sizeof *wt->packed);
    wt->scales = calloc((size_t)wt->copies, sizeof *wt->scales);
    wt->biases = calloc((size_t)wt->copies, sizeof *wt->biases);
    if (!wt->packed || !wt->scales || !wt->biases)
        return -1;
    for (int c = 0; c < wt->copies; c++) {
        wt->packed[c] = malloc(wt->lay.packed_bytes);
        wt->scales[c] = malloc(wt->lay.scales_bytes);
        wt->biases[c] = wt->lay.biases_bytes ? malloc(wt->lay.biases_bytes) : NULL;
        if (!wt->packed[c] || !wt->scales[c] || (wt->lay.biases_bytes && !wt->biases[c]))
            return -1;
        uint8_t *pb = (uint8_t *)wt->packed[c];
        for (size_t i = 0; i < wt->lay.packed_bytes; i++) {
            uint8_t b = (uint8_t)tool_splitmix64(&seed);
            if (f->mode == QMV_MODE_MXFP8 && (b & 0x7F) == 0x7F)
                b ^= 1; /* quantized data has no NaN codes */
            pb[i] = b;
        }
        if (f->mode == QMV_MODE_AFFINE) {
            uint16_t *s = (uint16_t *)wt->scales[c], *t = (uint16_t *)wt->biases[c];
            const size_t ng = wt->lay.scales_bytes / 2;
            for (size_t i = 0; i < ng; i++) {
                s[i] = f16_of_small((double)(tool_splitmix64(&seed) % 1000 + 1) * 1e-5);
                t[i] = f16_of_small(((double)(tool_splitmix64(&seed) % 2000) - 1000.0) * 1e-4);
            }
        } else {
            for (size_t i = 0; i < wt->lay.scales_bytes; i++)
                wt->scales[c][i] = f->mode == QMV_MODE_NVFP4
                                       ? (uint8_t)(0x28 + tool_splitmix64(&seed) % 24)
                                       : (uint8_t)(120 + tool_splitmix64(&seed) % 8);
        }
    }
    return 0;
}

static void weights_free(weights *wt)
{
    for (int c = 0; c < wt->copies; c++) {
        if (wt->packed)
            free(wt->packed[c]);
        if (wt->scales)
            free(wt->scales[c]);
        if (wt->biases)
            free(wt->biases[c]);
    }
    free(wt->packed);
    free(wt->scales);
    free(wt->biases);
    memset(wt, 0, sizeof *wt);
}

/* Median seconds of one configuration; y of the first call is left in y. tier 0 = the
 * scalar reference. */
static int time_config(const weights *wt, const qmv_format *f, int64_t n, int64_t k,
                       qmv_vectors *v, unsigned tier, int threads, int reps, double *out)
{
    qmv_exec ex = QMV_EXEC_INIT;
    ex.num_threads = threads;
    ex.cpu_tiers = tier;
    double t[256];
    int cnt = 0;
    double spent = 0;
    for (int r = -1; cnt < 256 && (r < reps || spent < 0.3); r++) {
        const int c = (r + 1) % wt->copies;
        qmv_qmatrix w;
        if (qmv_qmatrix_dense(f, QMV_DTYPE_F16, n, k, wt->packed[c], wt->scales[c],
                              wt->biases[c], &w) != QMV_STATUS_OK)
            return -1;
        const double t0 = tool_now();
        const qmv_status st = tier ? qmv_qmv(&w, v, &ex) : qmv_qmv_reference(&w, v);
        const double dt = tool_now() - t0;
        if (st != QMV_STATUS_OK) {
            fprintf(stderr, "qmv: %s\n", qmv_last_error());
            return -1;
        }
        if (r >= 0) { /* the first call warms up */
            t[cnt++] = dt;
            spent += dt;
        }
        if (!tier && r >= 0)
            break; /* the reference: one timed call is plenty */
    }
    *out = tool_median(t, cnt);
    /* y for the comparison: always from copy 0 (the timed calls rotate copies) */
    qmv_qmatrix w0;
    if (qmv_qmatrix_dense(f, QMV_DTYPE_F16, n, k, wt->packed[0], wt->scales[0], wt->biases[0],
                          &w0) != QMV_STATUS_OK)
        return -1;
    return (tier ? qmv_qmv(&w0, v, &ex) : qmv_qmv_reference(&w0, v)) == QMV_STATUS_OK ? 0 : -1;
}

static int parse_shape(const char *s, int64_t *n, int64_t *k)
{
    char *e;
    *n = strtoll(s, &e, 10);
    if (*e != 'x')
        return -1;
    *k = strtoll(e + 1, &e, 10);
    return *e || *n <= 0 || *k <= 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    int64_t shapes[MAXLIST][2];
    int nshapes = 0, nmodes = 0, nthreads = 0, m = 1, reps = 9, ref = 0;
    unsigned tiers = ~0u;
    int modes[MAXLIST], threads[MAXLIST];
    double gib = 1.0;
    for (int a = 1; a < argc; a++) {
        const char *o = argv[a], *val = a + 1 < argc ? argv[a + 1] : NULL;
        if (!strcmp(o, "--ref")) {
            ref = 1;
            continue;
        }
        if (!val)
            goto usage;
        a++;
        if (!strcmp(o, "--shape") && nshapes < MAXLIST) {
            if (parse_shape(val, &shapes[nshapes][0], &shapes[nshapes][1]))
                goto usage;
            nshapes++;
        } else if (!strcmp(o, "--mode") && nmodes < MAXLIST) {
            int i = 0;
            while (i < NMODES && strcmp(MODES[i].label, val))
                i++;
            if (i == NMODES)
                goto usage;
            modes[nmodes++] = i;
        } else if (!strcmp(o, "--threads") && nthreads < MAXLIST) {
            threads[nthreads++] = atoi(val);
        } else if (!strcmp(o, "--m")) {
            m = atoi(val);
        } else if (!strcmp(o, "--reps")) {
            reps = atoi(val);
        } else if (!strcmp(o, "--tiers")) {
            tiers = (unsigned)strtoul(val, NULL, 0);
        } else if (!strcmp(o, "--gib")) {
            gib = atof(val);
        } else {
            goto usage;
        }
    }
    if (m < 1 || reps < 1 || gib <= 0)
        goto usage;
    if (!nshapes) {
        shapes[0][0] = 4096, shapes[0][1] = 14336;
        shapes[1][0] = 16384, shapes[1][1] = 16384;
        nshapes = 2;
    }
    if (!nmodes)
        for (nmodes = 0; nmodes < 5; nmodes++)
            modes[nmodes] = nmodes;
    if (!nthreads) {
        threads[0] = 1, threads[1] = 2;
        nthreads = 2;
    }

    /* read bandwidth */
    const size_t nbw = (size_t)(gib * (double)(1u << 30)) / 64 * 8;
    uint64_t *bw = malloc(nbw * sizeof *bw);
    if (!bw) {
        fprintf(stderr, "qmv_cpu_bench: out of memory\n");
        return 2;
    }
    for (size_t i = 0; i < nbw; i++)
        bw[i] = i * 0x9E3779B97F4A7C15ull;
    double bwt[MAXLIST];
    printf("# read bandwidth (streaming sum over %.2f GiB, median of 5)\n", gib);
    for (int t = 0; t < nthreads; t++) {
        bwt[t] = read_bandwidth(bw, nbw, threads[t], RBW_UNROLLED, 0, 5) * 1e-9;
        printf("threads %d: %.1f GB/s\n", threads[t], bwt[t]);
    }
    free(bw);

    const unsigned sup = qmv_cpu_tiers_supported();
    printf("# tiers supported:");
    for (unsigned t = 1; t <= QMV_CPU_TIER_ALL; t <<= 1)
        if (sup & t & QMV_CPU_TIER_ALL)
            printf(" %s", qmv_cpu_tier_name((qmv_cpu_tier)t));
    printf(" (select(0) = %s)\n", qmv_cpu_tier_name(qmv_cpu_tier_select(0)));
    printf("%-9s %-12s %2s %-7s %3s %10s %8s %7s %s\n", "mode", "NxK", "M", "tier", "thr",
           "time_ms", "GB/s", "of_read", "same");
    int mismatch = 0;
    for (int si = 0; si < nshapes; si++) {
        const int64_t n = shapes[si][0], k = shapes[si][1];
        for (int mi = 0; mi < nmodes; mi++) {
            const bench_mode *bm = &MODES[modes[mi]];
            weights wt;
            if (weights_make(&wt, &bm->f, n, k, 42u + (uint64_t)mi)) {
                fprintf(stderr, "qmv_cpu_bench: cannot build %s %lldx%lld\n", bm->label,
                        (long long)n, (long long)k);
                weights_free(&wt);
                continue;
            }
            uint16_t *x = malloc((size_t)(m * k) * 2);
            uint16_t *y = malloc((size_t)(m * n) * 2), *y0 = malloc((size_t)(m * n) * 2);
            uint64_t seed = 7;
            for (int64_t i = 0; i < m * k; i++)
                x[i] = f16_of_small(((double)(tool_splitmix64(&seed) % 2001) - 1000.0) * 1e-3);
            qmv_vectors v = {1, m, QMV_DTYPE_F16, x, (size_t)(m * k) * 2, k, 0,
                             QMV_DTYPE_F16, y, (size_t)(m * n) * 2, n, 0};
            const double bytes = (double)wt.bytes + (double)(m * k) * 2 + (double)(m * n) * 2;
            int first = 1;
            for (int ti = ref ? -1 : 0; ti < 0 || (1u << ti) <= QMV_CPU_TIER_ALL; ti++) {
                const unsigned tier = ti < 0 ? 0u : 1u << ti;
                if (tier && !(sup & tiers & tier & QMV_CPU_TIER_ALL))
                    continue;
                for (int th = 0; th < nthreads; th++) {
                    if (!tier && threads[th] != 1)
                        continue;
                    double sec;
                    if (time_config(&wt, &bm->f, n, k, &v, tier, threads[th], reps, &sec))
                        return 2;
                    int same = 1;
                    if (first)
                        memcpy(y0, y, (size_t)(m * n) * 2);
                    else
                        same = memcmp(y0, y, (size_t)(m * n) * 2) == 0;
                    first = 0;
                    mismatch |= !same;
                    char shape[32];
                    snprintf(shape, sizeof shape, "%lldx%lld", (long long)n, (long long)k);
                    const double gbs = bytes / sec * 1e-9;
                    printf("%-9s %-12s %2d %-7s %3d %10.3f %8.1f %6.1f%% %s\n", bm->label, shape, m,
                           tier ? qmv_cpu_tier_name((qmv_cpu_tier)tier) : "ref", threads[th],
                           sec * 1e3, gbs, 100.0 * gbs / bwt[th], same ? "yes" : "NO");
                    fflush(stdout);
                }
            }
            free(x);
            free(y);
            free(y0);
            weights_free(&wt);
        }
    }
    return mismatch ? 1 : 0;
usage:
    fprintf(stderr, "usage: qmv_cpu_bench [--shape NxK]... [--mode NAME]... [--m M] "
                    "[--threads T]... [--reps R] [--tiers MASK] [--ref] [--gib G]\n"
                    "modes: mxfp4 affine4 affine8 mxfp8 nvfp4 affine2 affine3 affine5 affine6\n");
    return 2;
}
