/*
 * qmv_quant_bench - speed of qmv_quantize() and qmv_dequantize() on each CPU tier
 * (docs/perf-log.md, "2026-11-27 · 8c1ff49 — quantize / dequantize tiers").
 *
 *   qmv_quant_bench [--shape NxK] [--mode NAME]... [--threads T]... [--tiers MASK] [--reps R]
 *                   [--dtype f32|f16|bf16] [--profile mlx-cpu|mlx-cuda|ocp]
 *
 * For each mode (default mxfp4, nvfp4, affine 4-bit g64, affine 8-bit g64, mxfp8; also
 * affine3-g64), a matrix of N x K (default 4096 x 14336) weights of the given dtype (default
 * float16), roughly normal, is quantized with the given profile (default mlx-cpu) and
 * dequantized back to the same dtype, on every supported tier of --tiers (a qmv_cpu_tier mask,
 * default all) at every thread count (default 1 and 2), forced through exec. Time: the median
 * and the minimum of R calls (default 5; 3 for the scalar tier). Every tier's output is compared by
 * memcmp with the scalar tier's (the first configuration run). Prints one line per configuration.
 *
 * Exit status: 0 all outputs identical, 1 a mismatch, 2 usage or runtime error.
 * Uses only the public API (qmv.h).
 */
#define _GNU_SOURCE /* clock_gettime */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmv.h"
#include "tool_util.h"

typedef struct {
    const char *label;
    qmv_format f;
} bench_mode;

static const bench_mode MODES[] = {
    {"mxfp4", {QMV_MODE_MXFP4, 4, 32}},        {"nvfp4", {QMV_MODE_NVFP4, 4, 16}},
    {"affine4-g64", {QMV_MODE_AFFINE, 4, 64}}, {"affine8-g64", {QMV_MODE_AFFINE, 8, 64}},
    {"mxfp8", {QMV_MODE_MXFP8, 8, 32}},        {"affine3-g64", {QMV_MODE_AFFINE, 3, 64}},
};
#define N_MODES ((int)(sizeof MODES / sizeof MODES[0]))

static int parse_dtype(const char *s, qmv_dtype *d)
{
    static const char *const n[3] = {"f32", "f16", "bf16"};
    static const qmv_dtype v[3] = {QMV_DTYPE_F32, QMV_DTYPE_F16, QMV_DTYPE_BF16};
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, n[i])) {
            *d = v[i];
            return 1;
        }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: qmv_quant_bench [--shape NxK] [--mode NAME]... [--threads T]... "
               "[--tiers MASK] [--reps R] [--dtype f32|f16|bf16] "
               "[--profile mlx-cpu|mlx-cuda|ocp]\n  modes:");
    for (int i = 0; i < N_MODES; i++)
        fprintf(f, " %s", MODES[i].label);
    fprintf(f, "\n");
}

/* Weights roughly N(0, 1) (sum of four uniforms) for float32 and bfloat16 (its top half);
 * for float16 random codes of magnitude 2^-10 to 4 (finite by construction). */
static void fill_weights(void *w, size_t n, qmv_dtype t)
{
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        if (t == QMV_DTYPE_F16) {
            const uint64_t u = tool_splitmix64(&s);
            const uint16_t h = (uint16_t)((u & 0x83FFu) | (uint16_t)((5u + (u >> 16) % 13u) << 10));
            memcpy((char *)w + 2 * i, &h, 2);
            continue;
        }
        float v = 0.0f;
        for (int j = 0; j < 4; j++)
            v += (float)(tool_splitmix64(&s) >> 40) * 0x1p-24f - 0.5f;
        v *= 1.7f;
        if (t == QMV_DTYPE_F32) {
            memcpy((char *)w + 4 * i, &v, 4);
        } else {
            uint32_t u;
            memcpy(&u, &v, 4);
            const uint16_t h = (uint16_t)(u >> 16);
            memcpy((char *)w + 2 * i, &h, 2);
        }
    }
}

int main(int argc, char **argv)
{
    int64_t n = 4096, k = 14336, reps = 5;
    int modes[N_MODES], n_modes = 0, threads[8], n_threads = 0;
    unsigned tiers = 0;
    qmv_dtype dt = QMV_DTYPE_F16;
    qmv_profile prof = QMV_PROFILE_MLX_CPU;
    for (int a = 1; a < argc; a += 2) { /* every option takes a value */
        const char *v = a + 1 < argc ? argv[a + 1] : NULL;
        int64_t x = 0;
        if (!strcmp(argv[a], "--shape") && v) {
            if (sscanf(v, "%ldx%ld", &n, &k) != 2 || n < 1 || k < 1)
                return usage(stderr), 2;
        } else if (!strcmp(argv[a], "--mode") && v) {
            int m = -1;
            for (int i = 0; i < N_MODES; i++)
                if (!strcmp(v, MODES[i].label))
                    m = i;
            if (m < 0 || n_modes == N_MODES)
                return usage(stderr), 2;
            modes[n_modes++] = m;
        } else if (!strcmp(argv[a], "--threads") && v && tool_parse_i64(v, 1, 256, &x) == 0) {
            if (n_threads == 8)
                return usage(stderr), 2;
            threads[n_threads++] = (int)x;
        } else if (!strcmp(argv[a], "--tiers") && v &&
                   tool_parse_i64(v, 1, QMV_CPU_TIER_ALL, &x) == 0) {
            tiers = (unsigned)x;
        } else if (!strcmp(argv[a], "--reps") && v && tool_parse_i64(v, 1, 1000, &x) == 0) {
            reps = x;
        } else if (!strcmp(argv[a], "--dtype") && v && parse_dtype(v, &dt)) {
        } else if (!strcmp(argv[a], "--profile") && v) {
            if (qmv_profile_from_name(v, &prof) != QMV_STATUS_OK)
                return usage(stderr), 2;
        } else {
            return usage(stderr), 2;
        }
    }
    if (!n_modes)
        for (int i = 0; i < 5; i++)
            modes[n_modes++] = i;
    if (!n_threads) {
        threads[0] = 1;
        threads[1] = 2;
        n_threads = 2;
    }
    const unsigned sup = qmv_cpu_tiers_supported() & (tiers ? tiers : QMV_CPU_TIER_ALL);
    const size_t wsz = (size_t)(n * k) * (dt == QMV_DTYPE_F32 ? 4 : 2);
    void *w = malloc(wsz), *back = malloc(wsz), *back0 = malloc(wsz);
    if (!w || !back || !back0)
        return fprintf(stderr, "out of memory\n"), 2;
    fill_weights(w, (size_t)(n * k), dt);
    printf("# qmv_quant_bench: %ldx%ld, w %s, profile %s; ms per call (median of %ld; scalar 3)\n",
           (long)n, (long)k,
           dt == QMV_DTYPE_F32   ? "f32"
           : dt == QMV_DTYPE_F16 ? "f16"
                                 : "bf16",
           qmv_profile_name(prof), (long)reps);
    printf("%-12s %-7s %3s %19s %19s\n", "mode", "tier", "thr", "quantize_ms med/min",
           "dequant_ms med/min");
    int bad = 0;
    for (int mi = 0; mi < n_modes; mi++) {
        const qmv_format *f = &MODES[modes[mi]].f;
        qmv_layout l;
        if (qmv_layout_query(f, dt, n, k, &l) != QMV_STATUS_OK)
            return fprintf(stderr, "%s\n", qmv_last_error()), 2;
        unsigned char *o[3], *o0[3];
        const size_t sz[3] = {l.packed_bytes, l.scales_bytes, l.biases_bytes};
        for (int i = 0; i < 3; i++) {
            o[i] = malloc(sz[i] ? sz[i] : 1);
            o0[i] = malloc(sz[i] ? sz[i] : 1);
            if (!o[i] || !o0[i])
                return fprintf(stderr, "out of memory\n"), 2;
        }
        int first = 1;
        for (unsigned tier = 1; tier <= QMV_CPU_TIER_ALL; tier <<= 1) {
            if (!(sup & tier & QMV_CPU_TIER_ALL))
                continue;
            for (int ti = 0; ti < n_threads; ti++) {
                const qmv_exec ex = {sizeof ex, threads[ti], tier};
                const qmv_quant_out out = {(uint32_t *)o[0],    sz[0], o[1], sz[1],
                                           sz[2] ? o[2] : NULL, sz[2]};
                const int r = tier == QMV_CPU_TIER_SCALAR ? 3 : (int)reps;
                double tq[1000], td[1000];
                qmv_qmatrix qm;
                for (int i = 0; i < r; i++) {
                    double t0 = tool_now();
                    if (qmv_quantize(f, prof, NULL, dt, w, wsz, n, k, k, &out, &ex) !=
                        QMV_STATUS_OK)
                        return fprintf(stderr, "quantize: %s\n", qmv_last_error()), 2;
                    tq[i] = tool_now() - t0;
                }
                if (qmv_qmatrix_dense(f, dt, n, k, (const uint32_t *)o[0], o[1],
                                      sz[2] ? o[2] : NULL, &qm) != QMV_STATUS_OK)
                    return fprintf(stderr, "%s\n", qmv_last_error()), 2;
                for (int i = 0; i < r; i++) {
                    double t0 = tool_now();
                    if (qmv_dequantize(&qm, dt, back, wsz, k, &ex) != QMV_STATUS_OK)
                        return fprintf(stderr, "dequantize: %s\n", qmv_last_error()), 2;
                    td[i] = tool_now() - t0;
                }
                int same = 1;
                if (first) {
                    for (int i = 0; i < 3; i++)
                        memcpy(o0[i], o[i], sz[i]);
                    memcpy(back0, back, wsz);
                    first = 0;
                } else {
                    for (int i = 0; i < 3; i++)
                        same &= !memcmp(o0[i], o[i], sz[i]);
                    same &= !memcmp(back0, back, wsz);
                }
                bad |= !same;
                /* tool_median sorts: tq[0] and td[0] are then the minima */
                const double mq = 1e3 * tool_median(tq, r), md = 1e3 * tool_median(td, r);
                printf("%-12s %-7s %3d %9.2f %9.2f %9.2f %9.2f%s\n", MODES[modes[mi]].label,
                       qmv_cpu_tier_name((qmv_cpu_tier)tier), threads[ti], mq, 1e3 * tq[0], md,
                       1e3 * td[0], same ? "" : "  MISMATCH");
                fflush(stdout);
            }
        }
        for (int i = 0; i < 3; i++) {
            free(o[i]);
            free(o0[i]);
        }
    }
    free(w);
    free(back);
    free(back0);
    return bad ? 1 : 0;
}
