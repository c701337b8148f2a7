/*
 * bench_case.c - one format of `qmv bench` (cmd_bench.c says what is measured, and
 * docs/PERFORMANCE.md, "Method", how).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "read_bandwidth.h"
#include "tool_util.h"

#define BENCH_ALIGN 64 /* of every weight array in the copies: a cache line */

/* One quantized matrix's arrays (a copy of the weights, or the quantized block). */
typedef struct {
    uint32_t *packed;
    void *scales, *biases;
} bench_arrays;

static size_t round_up(size_t v)
{
    return (v + BENCH_ALIGN - 1) / BENCH_ALIGN * BENCH_ALIGN;
}

/* The path label of a CPU tier ("cpu:avx2"). */
static void tier_path(unsigned tier, char *buf, size_t size)
{
    snprintf(buf, size, "cpu:%s", qmv_cpu_tier_name((qmv_cpu_tier)tier));
}

static void fill_row_times(bench_row *b, double *times, int n)
{
    b->median_s = tool_median(times, n);
    b->min_s = times[0]; /* tool_median sorted them */
    b->gbps = (double)b->bytes / b->median_s * 1e-9;
}

/* Quantize and dequantize of the w_rows block on each tier and thread count. ref: the scalar
 * tier's quantization; deq_ref: the scalar tier's dequantization of it. */
static int run_quant(const bench_ctx *c, const qmv_format *fmt, const char *label,
                     const qmv_layout *lb, const bench_arrays *ref, const void *deq_ref,
                     bench_out *out)
{
    const bench_opts *o = c->o;
    const qmv_dtype dt = o->x_dtype;
    const size_t w_bytes = (size_t)c->w_rows * (size_t)o->k * qmv_dtype_size(dt);
    const size_t q_bytes = lb->packed_bytes + lb->scales_bytes + lb->biases_bytes;
    int rc = CLI_ERROR;
    uint32_t *packed = malloc(lb->packed_bytes);
    void *scales = malloc(lb->scales_bytes), *biases = lb->biases_bytes ? malloc(lb->biases_bytes) : NULL;
    void *deq = malloc(w_bytes);
    double *times = malloc((size_t)o->quant_reps * sizeof(double));
    if (!packed || !scales || (lb->biases_bytes && !biases) || !deq || !times) {
        cli_error("out of memory for %s", label);
        goto done;
    }
    const qmv_quant_out qo = {packed, lb->packed_bytes, scales, lb->scales_bytes, biases, lb->biases_bytes};
    qmv_qmatrix wq;
    qmv_qmatrix_dense(fmt, dt, c->w_rows, o->k, ref->packed, ref->scales, ref->biases, &wq);
    for (int op = 0; op < 2; op++) {
        for (int ti = 0; ti < o->n_threads; ti++) {
            for (unsigned tier = 1; tier <= QMV_CPU_TIER_ALL; tier <<= 1) {
                if (!(o->tiers & tier & QMV_CPU_TIER_ALL))
                    continue;
                qmv_exec exec = QMV_EXEC_INIT;
                exec.num_threads = o->threads[ti];
                exec.cpu_tiers = tier;
                int exact = 1;
                for (int r = -1; r < o->quant_reps; r++) { /* r = -1: warm-up, checked */
                    qmv_status st;
                    double t0;
                    if (op == 0) {
                        memset(packed, 0xA5, lb->packed_bytes); /* stale bits must not pass */
                        memset(scales, 0xA5, lb->scales_bytes);
                        if (biases)
                            memset(biases, 0xA5, lb->biases_bytes);
                        t0 = cli_now();
                        st = qmv_quantize(fmt, o->profile, NULL, dt, c->w, w_bytes,
                                          c->w_rows, o->k, o->k, &qo, &exec);
                    } else {
                        memset(deq, 0xA5, w_bytes);
                        t0 = cli_now();
                        st = qmv_dequantize(&wq, dt, deq, w_bytes, o->k, &exec);
                    }
                    const double t = cli_now() - t0;
                    if (st != QMV_STATUS_OK) {
                        rc = cli_qmv_error(op == 0 ? "qmv_quantize" : "qmv_dequantize", st);
                        goto done;
                    }
                    if (r >= 0)
                        times[r] = t;
                    if (op == 0)
                        exact &= memcmp(packed, ref->packed, lb->packed_bytes) == 0 &&
                                 memcmp(scales, ref->scales, lb->scales_bytes) == 0 &&
                                 (!biases || memcmp(biases, ref->biases, lb->biases_bytes) == 0);
                    else
                        exact &= memcmp(deq, deq_ref, w_bytes) == 0;
                }
                bench_row b;
                memset(&b, 0, sizeof b);
                snprintf(b.mode, sizeof b.mode, "%s", label);
                b.op = op == 0 ? "quantize" : "dequantize";
                tier_path(tier, b.path, sizeof b.path);
                b.threads = o->threads[ti];
                b.bytes = w_bytes + q_bytes;
                fill_row_times(&b, times, o->quant_reps);
                b.exact = exact;
                bench_print_row(out, &b);
            }
        }
    }
    rc = CLI_OK;
done:
    free(packed);
    free(scales);
    free(biases);
    free(deq);
    free(times);
    return rc;
}

/* The weight copies: `copies` byte-identical dense N x K matrices, each the quantized block
 * repeated down to N rows, in one slab, every array cache-line aligned. Pages are first touched
 * by the threads of the widest thread count, each its static share of every copy's rows, as
 * the kernel's threads read them. */
typedef struct {
    unsigned char *slab;
    size_t stride; /* bytes from one copy to the next */
    int copies;
    size_t off_scales, off_biases;
} bench_copies;

static bench_arrays copy_arrays(const bench_copies *w, int c)
{
    unsigned char *base = w->slab + (size_t)c * w->stride;
    bench_arrays a = {(uint32_t *)(void *)base, base + w->off_scales,
                      w->off_biases ? base + w->off_biases : NULL};
    return a;
}

static int copies_make(const bench_ctx *c, const qmv_format *fmt, const qmv_layout *lay,
                       const bench_arrays *block, bench_copies *w)
{
    const bench_opts *o = c->o;
    memset(w, 0, sizeof *w);
    w->off_scales = round_up(lay->packed_bytes);
    w->off_biases = lay->biases_bytes ? w->off_scales + round_up(lay->scales_bytes) : 0;
    w->stride = round_up(lay->packed_bytes) + round_up(lay->scales_bytes) + round_up(lay->biases_bytes);
    const double want = c->span_bytes / (double)w->stride;
    if (want > 1e9 || want * (double)w->stride > (double)SIZE_MAX / 2)
        return -1;
    w->copies = want > 2.0 ? (int)(want + 0.999999) : 2;
    w->slab = aligned_alloc(BENCH_ALIGN, (size_t)w->copies * w->stride);
    if (!w->slab)
        return -1;
    const size_t ses = (size_t)lay->groups_per_row * (fmt->mode == QMV_MODE_AFFINE ? qmv_dtype_size(o->x_dtype) : 1);
    const size_t pw = (size_t)lay->words_per_row * 4;
    int nt = 1;
    for (int i = 0; i < o->n_threads; i++)
        nt = o->threads[i] > nt ? o->threads[i] : nt;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
#endif
    for (int cp = 0; cp < w->copies; cp++) { /* one team for every copy (small copies are many) */
        const bench_arrays a = copy_arrays(w, cp);
#ifdef _OPENMP
#pragma omp for schedule(static) nowait
#endif
        for (int64_t r = 0; r < o->n; r++) {
            const size_t src = (size_t)(r % c->w_rows);
            memcpy((unsigned char *)a.packed + (size_t)r * pw,
                   (const unsigned char *)block->packed + src * pw, pw);
            memcpy((unsigned char *)a.scales + (size_t)r * ses,
                   (const unsigned char *)block->scales + src * ses, ses);
            if (a.biases)
                memcpy((unsigned char *)a.biases + (size_t)r * ses,
                       (const unsigned char *)block->biases + src * ses, ses);
        }
    }
    return 0;
}

/* The qmv rows of one tier and thread count: R timed calls, each after one read pass of each
 * shape, every op on the next copy in turn (so each finds its copy evicted by the others). */
static int run_qmv_tier(const bench_ctx *c, const qmv_format *fmt, const char *label,
                        const qmv_layout *lay, const bench_copies *wc, unsigned tier, int threads,
                        const void *y_ref, void *y, double *times, double *reads, bench_out *out)
{
    const bench_opts *o = c->o;
    qmv_exec exec = QMV_EXEC_INIT;
    exec.num_threads = threads;
    exec.cpu_tiers = tier;
    qmv_vectors v = {.batch = 1, .m = o->m, .x_dtype = o->x_dtype, .x = c->x,
                     .x_bytes = c->x_bytes, .x_row_stride = o->k, .y_dtype = o->x_dtype,
                     .y = y, .y_bytes = c->y_bytes, .y_row_stride = o->n};
    const size_t wbytes = lay->packed_bytes + lay->scales_bytes + lay->biases_bytes;
    int exact = 1, op = 0, nreads = 0;
    for (int r = -1; r < o->reps; r++) { /* r = -1: warm-up, checked, not timed */
        for (int shape = 0; shape < RBW_SHAPES; shape++) {
            const bench_arrays a = copy_arrays(wc, op++ % wc->copies);
            const rbw_span spans[3] = {{a.packed, lay->packed_bytes},
                                       {a.scales, lay->scales_bytes},
                                       {a.biases, lay->biases_bytes}};
            const double t = rbw_pass(spans, a.biases ? 3 : 2, threads, (rbw_shape)shape);
            if (r >= 0)
                reads[nreads++] = t;
        }
        const bench_arrays a = copy_arrays(wc, op++ % wc->copies);
        qmv_qmatrix wq;
        qmv_qmatrix_dense(fmt, o->x_dtype, o->n, o->k, a.packed, a.scales, a.biases, &wq);
        memset(y, 0xA5, c->y_bytes); /* stale bits must not pass */
        const double t0 = cli_now();
        const qmv_status st = qmv_qmv(&wq, &v, &exec);
        const double t = cli_now() - t0;
        if (st != QMV_STATUS_OK)
            return cli_qmv_error("qmv_qmv", st);
        if (r >= 0)
            times[r] = t;
        exact &= memcmp(y, y_ref, c->y_bytes) == 0;
    }
    bench_row b;
    memset(&b, 0, sizeof b);
    snprintf(b.mode, sizeof b.mode, "%s", label);
    b.op = "qmv";
    tier_path(tier, b.path, sizeof b.path);
    b.threads = threads;
    b.bytes = c->x_bytes + wbytes + c->y_bytes;
    fill_row_times(&b, times, o->reps);
    int best = 0; /* reads[i] is a pass of shape i % RBW_SHAPES */
    for (int i = 1; i < nreads; i++)
        best = reads[i] < reads[best] ? i : best;
    const double fastest = reads[best];
    b.read_s = fastest;
    b.read_shape = rbw_shape_name((rbw_shape)(best % RBW_SHAPES));
    b.read_bytes = wbytes;
    b.has_peak = 1;
    b.of_peak = fastest / b.min_s;
    for (int ti = 0; ti < o->n_threads; ti++) {
        const double rate = c->fma_rate[__builtin_ctz(tier)][ti];
        if (o->threads[ti] == threads && rate > 0)
            b.fma_s = (double)o->n * (double)o->k * (double)o->m / rate;
    }
    b.copies = wc->copies;
    b.exact = exact;
    bench_print_row(out, &b);
    return CLI_OK;
}

int bench_case(const bench_ctx *c, const qmv_format *fmt, bench_out *out)
{
    const bench_opts *o = c->o;
    const qmv_dtype dt = o->x_dtype;
    char label[BENCH_LABEL];
    bench_format_label(fmt, label, sizeof label);
    qmv_layout lay, lb;
    qmv_status st = qmv_layout_query(fmt, dt, o->n, o->k, &lay);
    if (st == QMV_STATUS_OK)
        st = qmv_layout_query(fmt, dt, c->w_rows, o->k, &lb);
    if (st != QMV_STATUS_OK)
        return cli_qmv_error("qmv_layout_query", st);
    int rc = CLI_ERROR;
    const size_t w_bytes = (size_t)c->w_rows * (size_t)o->k * qmv_dtype_size(dt);
    bench_arrays block = {malloc(lb.packed_bytes), malloc(lb.scales_bytes),
                          lb.biases_bytes ? malloc(lb.biases_bytes) : NULL};
    void *deq_ref = NULL;
    bench_copies wc = {0};
    uint8_t *y_ref = malloc(c->y_bytes), *y = malloc(c->y_bytes);
    const int nt = o->reps > o->quant_reps ? o->reps : o->quant_reps;
    double *times = malloc((size_t)nt * sizeof(double));
    double *reads = malloc((size_t)o->reps * RBW_SHAPES * sizeof(double));
    if (!block.packed || !block.scales || (lb.biases_bytes && !block.biases) || !y_ref || !y ||
        !times || !reads) {
        cli_error("out of memory for %s", label);
        goto done;
    }
    /* The reference bits: the scalar tier's quantization of the block, all threads. */
    qmv_exec exec = QMV_EXEC_INIT;
    exec.cpu_tiers = QMV_CPU_TIER_SCALAR;
    const qmv_quant_out qo = {block.packed, lb.packed_bytes, block.scales, lb.scales_bytes,
                              block.biases, lb.biases_bytes};
    double t0 = cli_now();
    st = qmv_quantize(fmt, o->profile, NULL, dt, c->w, w_bytes, c->w_rows, o->k, o->k,
                      &qo, &exec);
    const double t_quant = cli_now() - t0;
    if (st != QMV_STATUS_OK) {
        rc = cli_qmv_error("qmv_quantize", st);
        goto done;
    }
    if (o->quant_reps > 0) {
        if (!(deq_ref = malloc(w_bytes))) {
            cli_error("out of memory for %s", label);
            goto done;
        }
        qmv_qmatrix wb;
        qmv_qmatrix_dense(fmt, dt, c->w_rows, o->k, block.packed, block.scales, block.biases, &wb);
        if ((st = qmv_dequantize(&wb, dt, deq_ref, w_bytes, o->k, &exec)) != QMV_STATUS_OK) {
            rc = cli_qmv_error("qmv_dequantize", st);
            goto done;
        }
        if ((rc = run_quant(c, fmt, label, &lb, &block, deq_ref, out)) != CLI_OK)
            goto done;
        rc = CLI_ERROR;
        free(deq_ref);
        deq_ref = NULL;
    }
    if (copies_make(c, fmt, &lay, &block, &wc)) {
        cli_error("out of memory for %s: weight copies spanning %.0f MiB", label,
                  c->span_bytes / 1048576.0);
        goto done;
    }
    const bench_arrays w0 = copy_arrays(&wc, 0);
    qmv_qmatrix wq;
    qmv_qmatrix_dense(fmt, dt, o->n, o->k, w0.packed, w0.scales, w0.biases, &wq);
    qmv_vectors v = {.batch = 1, .m = o->m, .x_dtype = dt, .x = c->x, .x_bytes = c->x_bytes,
                     .x_row_stride = o->k, .y_dtype = dt, .y = y_ref, .y_bytes = c->y_bytes,
                     .y_row_stride = o->n};
    t0 = cli_now();
    st = qmv_qmv_reference(&wq, &v);
    const double t_ref = cli_now() - t0;
    if (st != QMV_STATUS_OK) {
        rc = cli_qmv_error("qmv_qmv_reference", st);
        goto done;
    }
    if (!o->json)
        fprintf(stderr, "qmv bench: %s: reference quantization in %.2f s, %d weight copies of "
                "%.1f MiB, qmv_qmv_reference in %.2f s\n", label, t_quant, wc.copies,
                (double)wc.stride / 1048576.0, t_ref);
    for (int ti = 0; ti < o->n_threads; ti++)
        for (unsigned tier = 1; tier <= QMV_CPU_TIER_ALL; tier <<= 1)
            if (o->tiers & tier & QMV_CPU_TIER_ALL)
                if ((rc = run_qmv_tier(c, fmt, label, &lay, &wc, tier, o->threads[ti], y_ref, y,
                                       times, reads, out)) != CLI_OK)
                    goto done;
    rc = CLI_ERROR;
#ifdef QMV_TOOL_CUDA
    if (c->cuda && c->cuda->available) {
        bench_cuda_case cc = {label, *fmt, dt, dt, o->n, o->k, o->m, w0.packed, w0.scales,
                              w0.biases, lay.packed_bytes, lay.scales_bytes, lay.biases_bytes,
                              NULL, c->x, c->x_bytes, y_ref, c->y_bytes};
        bench_cuda_result res[2];
        if (bench_cuda_case_run(c->cuda, &cc, res) != CLI_OK)
            goto done;
        for (int i = 0; i < 2; i++) {
            if (!res[i].supported)
                continue;
            bench_row b;
            memset(&b, 0, sizeof b);
            snprintf(b.mode, sizeof b.mode, "%s", label);
            b.op = "qmv";
            snprintf(b.path, sizeof b.path, "%s", i == 0 ? "cuda:qmv" : "cuda:fp_qmv");
            b.median_s = res[i].median_us * 1e-6;
            b.min_s = b.median_s;
            b.bytes = c->x_bytes + lay.packed_bytes + lay.scales_bytes + lay.biases_bytes +
                      c->y_bytes;
            b.gbps = res[i].gbps;
            b.has_peak = 1;
            b.of_peak = res[i].of_copy;
            b.exact = res[i].exact;
            b.cuda = 1;
            b.copies = res[i].copies;
            b.stream_us = res[i].stream_us;
            b.vs_cublas = res[i].vs_cublas;
            bench_print_row(out, &b);
        }
    }
#endif
    rc = CLI_OK;
done:
    free(block.packed);
    free(block.scales);
    free(block.biases);
    free(deq_ref);
    free(wc.slab);
    free(y_ref);
    free(y);
    free(times);
    free(reads);
    return rc;
}
