/*
 * qmv_differential.c - qmv_qmv in every CPU tier this processor supports (scalar, AVX2,
 * AVX-512: qmv_cpu_tiers_supported(), each forced in turn through exec.cpu_tiers) against
 * qmv_qmv_reference (the canonical order, literally) on fuzzed shapes, strides, batch
 * layouts, dtypes, thread counts and data.
 *
 * Input: parameters from the end (mode, bits, group, scale dtype, N, K, batch L, M, x and y
 * dtypes, every stride, broadcast and shared-weight choices, global scale, threads, data
 * style), the bytes of codes, scales, biases and x from the start (cycled). Data style "tame"
 * maps bytes to small floats (int8 / 32) so that sums stay finite and rounding matters;
 * "raw" keeps arbitrary bit patterns (NaN, Inf, subnormals).
 *
 * Properties: every call returns the same, documented status (OK, or INVALID_ARGUMENT /
 * NON_FINITE for the global scale); nothing written on error; on success y is identical
 * (memcmp over the whole buffer, gaps included) for the reference and, for every supported
 * tier, qmv with 1 thread and with n threads; exec.cpu_tiers = 0 (all) gives the same bytes
 * and qmv_cpu_tier_select() picks a supported tier; every y byte that is not an output
 * element keeps its poison; inputs (mapped read-only) are never written; nothing is read
 * outside them (guard pages). The batch read as an expert stack: qmv_gather_qmv with drawn
 * expert and x indices equals the reference on each selected pair. The environment variable QMV_CPU_TIERS narrows what a forced
 * tier can run, so leave it unset while fuzzing (the harness says so once if it is set).
 */
#include "fuzz_helpers.h" /* first: feature macros */

#include <math.h>


static void make_ro(qf_buf *b)
{
#ifdef QF_HAVE_MMAP
    if (b->n)
        mprotect((uint8_t *)b->map + qf_page(), b->map_len - 2 * qf_page(), PROT_READ);
#else
    (void)b;
#endif
}

/* Fills n elements of dtype t: raw payload bits, or small values int8 / 32. */
static void fill_values(const qf_producer *p, size_t *cur, qmv_dtype t, uint8_t *dst, size_t n,
                        int tame)
{
    const size_t ts = qmv_dtype_size(t);
    if (!tame) {
        qf_fill(p, cur, dst, n * ts);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t b;
        qf_fill(p, cur, &b, 1);
        float f = (float)(int8_t)b / 32.0f;
        QMV_FUZZ_ASSERT(qmv_convert(QMV_DTYPE_F32, &f, 4, t, dst + i * ts, ts, 1) ==
                            QMV_STATUS_OK,
                        "convert");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qf_producer p = qf_producer_make(data, size);
    const qmv_format fmt = qf_draw_format(&p);
    const qmv_mode mode = fmt.mode;
    const qmv_dtype sdt = (qmv_dtype)qf_u32_range(&p, 0, QMV_DTYPE_COUNT - 1);
    const qmv_dtype xdt = (qmv_dtype)qf_u32_range(&p, 0, QMV_DTYPE_COUNT - 1);
    const qmv_dtype ydt = (qmv_dtype)qf_u32_range(&p, 0, QMV_DTYPE_COUNT - 1);
    const int64_t rows = qf_u32_range(&p, 1, 9);
    const int64_t k = (int64_t)qf_u32_range(&p, 1, (uint32_t)(1088 / fmt.group_size)) *
                      fmt.group_size;
    const int64_t batch = qf_u32_range(&p, 1, 3);
    const int64_t m = qf_u32_range(&p, 1, 10);
    const int tame = !qf_u32_range(&p, 0, 3); /* raw 1 in 4 */
    const int threads = (int)qf_u32_range(&p, 1, 4);
    const uint32_t g_kind = qf_u32_range(&p, 0, 3); /* 0 none, 1 arbitrary bits, 2+ 2688*2^j */
    float g = 0.0f;
    if (g_kind == 1)
        g = qf_f32(qf_u32(&p));
    else if (g_kind >= 2)
        g = ldexpf(2688.0f, (int)qf_u32_range(&p, 0, 40) - 20);

    qmv_layout l;
    QMV_FUZZ_ASSERT(qmv_layout_query(&fmt, sdt, rows, k, &l) == QMV_STATUS_OK, "layout");
    const size_t es = mode == QMV_MODE_AFFINE ? qmv_dtype_size(sdt) : 1;
    const int64_t prs = l.words_per_row + qf_u32_range(&p, 0, 2);
    const int64_t pbs = qf_bool(&p) ? 0 : (rows - 1) * prs + l.words_per_row + qf_u32_range(&p, 0, 3);
    const int64_t srs = l.groups_per_row + qf_u32_range(&p, 0, 2);
    const int64_t sbs = qf_bool(&p) ? 0 : (rows - 1) * srs + l.groups_per_row + qf_u32_range(&p, 0, 3);
    const int64_t xrs = qf_u32_range(&p, 0, 4) == 0 ? 0 : k + qf_u32_range(&p, 0, 3);
    const int64_t xbs = qf_bool(&p) ? 0 : (m - 1) * xrs + k + qf_u32_range(&p, 0, 3);
    const int64_t yrs = rows + qf_u32_range(&p, 0, 3);
    const int64_t ybs = (m - 1) * yrs + rows + qf_u32_range(&p, 0, 3);

    /* buffers: exactly the extents the strides need */
    qf_buf pk = qf_alloc((size_t)((batch - 1) * pbs + (rows - 1) * prs + l.words_per_row) * 4, 4);
    const size_t sn = (size_t)((batch - 1) * sbs + (rows - 1) * srs + l.groups_per_row);
    qf_buf sc = qf_alloc(sn * es, 4);
    qf_buf bi = qf_alloc(mode == QMV_MODE_AFFINE ? sn * es : 0, 4);
    const size_t xn = (size_t)((batch - 1) * xbs + (m - 1) * xrs + k);
    qf_buf xb = qf_alloc(xn * qmv_dtype_size(xdt), 4);
    qf_buf gb = qf_alloc(g_kind ? 4 : 0, 4);
    size_t cur = 0;
    qf_fill(&p, &cur, pk.p, pk.n);
    if (mode == QMV_MODE_AFFINE) {
        fill_values(&p, &cur, sdt, sc.p, sn, tame);
        fill_values(&p, &cur, sdt, bi.p, sn, tame);
    } else {
        qf_fill(&p, &cur, sc.p, sc.n);
        if (tame) /* keep fp scales near 1: E8M0 120..134, E4M3 without NaN */
            for (size_t i = 0; i < sc.n; i++)
                sc.p[i] = mode == QMV_MODE_NVFP4 ? (uint8_t)(sc.p[i] % 0x7Fu)
                                                 : (uint8_t)(120u + sc.p[i] % 15u);
    }
    fill_values(&p, &cur, xdt, xb.p, xn, tame);
    memcpy(gb.p, &g, gb.n);
    make_ro(&pk);
    make_ro(&sc);
    make_ro(&bi);
    make_ro(&xb);
    make_ro(&gb);

    const qmv_qmatrix w = {.format = fmt,
                           .scale_dtype = sdt,
                           .rows = rows,
                           .k = k,
                           .packed = (const uint32_t *)pk.p,
                           .packed_bytes = pk.n,
                           .packed_row_stride = prs,
                           .packed_batch_stride = pbs,
                           .scales = sc.p,
                           .scales_bytes = sc.n,
                           .biases = mode == QMV_MODE_AFFINE ? bi.p : NULL,
                           .biases_bytes = bi.n,
                           .scales_row_stride = srs,
                           .scales_batch_stride = sbs,
                           .global_scale = g_kind ? (const float *)gb.p : NULL};

    const size_t ys = qmv_dtype_size(ydt);
    const size_t yn = (size_t)((batch - 1) * ybs + (m - 1) * yrs + rows);

    /* The calls: the reference, then per supported tier qmv with 1 and with n threads, then
     * qmv with every tier allowed (cpu_tiers = 0). The parameters are all drawn above, so the
     * number of tiers does not change how an input is read. */
    static unsigned supported;
    if (!supported) {
        supported = qmv_cpu_tiers_supported();
        QMV_FUZZ_ASSERT(supported & QMV_CPU_TIER_SCALAR, "supported tiers %#x lack scalar",
                        supported);
        if (getenv("QMV_CPU_TIERS"))
            fprintf(stderr, "qmv_differential: QMV_CPU_TIERS=%s narrows the forced tiers\n",
                    getenv("QMV_CPU_TIERS"));
    }
    enum { MAX_CALLS = 1 + 2 * 8 + 1 };
    qmv_exec exs[MAX_CALLS];
    const char *names[MAX_CALLS];
    int ncalls = 1; /* call 0: the reference */
    names[0] = "reference";
    for (unsigned t = 1; t && t <= supported; t <<= 1) {
        if (!(supported & t))
            continue;
        for (int nt = 0; nt < 2; nt++) {
            exs[ncalls] = (qmv_exec)QMV_EXEC_INIT;
            exs[ncalls].num_threads = nt ? threads : 1;
            exs[ncalls].cpu_tiers = t;
            names[ncalls] = qmv_cpu_tier_name((qmv_cpu_tier)t);
            QMV_FUZZ_ASSERT(names[ncalls] != NULL, "tier %#x has no name", t);
            ncalls++;
        }
    }
    exs[ncalls] = (qmv_exec)QMV_EXEC_INIT;
    exs[ncalls].num_threads = threads;
    names[ncalls] = "all tiers";
    ncalls++;
    const unsigned sel = (unsigned)qmv_cpu_tier_select(0);
    QMV_FUZZ_ASSERT(sel && !(sel & (sel - 1)) && (sel & supported),
                    "qmv_cpu_tier_select(0) = %#x, supported %#x", sel, supported);

    qf_buf y[MAX_CALLS];
    for (int c = 0; c < ncalls; c++) {
        y[c] = qf_alloc(yn * ys, 4);
        qf_poison(&y[c]);
    }

    qmv_status expect = QMV_STATUS_OK;
    if (g_kind && mode != QMV_MODE_NVFP4)
        expect = QMV_STATUS_INVALID_ARGUMENT;
    else if (g_kind && !isfinite(g))
        expect = QMV_STATUS_NON_FINITE;

    for (int c = 0; c < ncalls; c++) {
        const qmv_vectors v = {.batch = batch,
                               .m = m,
                               .x_dtype = xdt,
                               .x = xb.p,
                               .x_bytes = xb.n,
                               .x_row_stride = xrs,
                               .x_batch_stride = xbs,
                               .y_dtype = ydt,
                               .y = y[c].p,
                               .y_bytes = y[c].n,
                               .y_row_stride = yrs,
                               .y_batch_stride = ybs};
        const qmv_status st = c == 0 ? qmv_qmv_reference(&w, &v) : qmv_qmv(&w, &v, &exs[c]);
        QMV_FUZZ_ASSERT(st == expect, "%s %d/%d: %s (%d threads): status %d, expected %d",
                        qmv_mode_name(mode), fmt.bits, fmt.group_size, names[c],
                        c ? exs[c].num_threads : 1, (int)st, (int)expect);
        if (expect != QMV_STATUS_OK)
            QMV_FUZZ_ASSERT(qf_is_poisoned(y[c].p, y[c].n), "%s: y written on error", names[c]);
    }
    if (expect != QMV_STATUS_OK)
        goto done;
    for (int c = 1; c < ncalls; c++) {
        if (memcmp(y[0].p, y[c].p, y[0].n)) {
            size_t i = 0;
            while (!memcmp(y[0].p + i * ys, y[c].p + i * ys, ys))
                i++;
            QMV_FUZZ_ASSERT(0,
                            "%s %d/%d scales %s x %s y %s N %lld K %lld L %lld M %lld: "
                            "tier %s, %d threads: y element %zu differs: reference %a, qmv %a",
                            qmv_mode_name(mode), fmt.bits, fmt.group_size, qmv_dtype_name(sdt),
                            qmv_dtype_name(xdt), qmv_dtype_name(ydt), (long long)rows,
                            (long long)k, (long long)batch, (long long)m, names[c],
                            exs[c].num_threads, i, (double)qf_load(ydt, y[0].p, i),
                            (double)qf_load(ydt, y[c].p, i));
        }
    }
    /* gaps between output rows and batch items keep their poison */
    for (int64_t b = 0; b < batch; b++) {
        for (int64_t j = 0; j < m; j++) {
            const size_t row_end = (size_t)(b * ybs + j * yrs + rows);
            size_t next = (size_t)(j + 1 < m ? b * ybs + (j + 1) * yrs
                                             : (b + 1 < batch ? (b + 1) * ybs : (int64_t)yn));
            if (next > row_end)
                QMV_FUZZ_ASSERT(qf_is_poisoned(y[0].p + row_end * ys, (next - row_end) * ys),
                                "gap after y row (%lld, %lld) written", (long long)b,
                                (long long)j);
        }
    }

    /* The same batch as an expert stack: qmv_gather_qmv with drawn expert and x indices
     * equals, item by item, the reference on the selected expert and x item. */
    {
        int32_t widx[3], xidx[3];
        for (int64_t b = 0; b < batch; b++) {
            widx[b] = (int32_t)qf_u32_range(&p, 0, (uint32_t)batch - 1);
            xidx[b] = (int32_t)qf_u32_range(&p, 0, (uint32_t)batch - 1);
        }
        qf_buf yg = qf_alloc(yn * ys, 4), yr = qf_alloc(yn * ys, 4);
        qf_poison(&yg);
        qf_poison(&yr);
        for (int64_t b = 0; b < batch; b++) {
            qmv_qmatrix wb;
            QMV_FUZZ_ASSERT(qmv_qmatrix_select(&w, batch, widx[b], &wb) == QMV_STATUS_OK,
                            "select: %s", qmv_last_error());
            const size_t xo = (size_t)(xidx[b] * xbs) * qmv_dtype_size(xdt);
            const size_t yo = (size_t)(b * ybs) * ys;
            const qmv_vectors vb = {.batch = 1, .m = m, .x_dtype = xdt, .x = xb.p + xo,
                                    .x_bytes = xb.n - xo, .x_row_stride = xrs,
                                    .y_dtype = ydt, .y = yr.p + yo, .y_bytes = yr.n - yo,
                                    .y_row_stride = yrs};
            QMV_FUZZ_ASSERT(qmv_qmv_reference(&wb, &vb) == QMV_STATUS_OK, "reference: %s",
                            qmv_last_error());
        }
        const qmv_gather gi = {batch, widx, xidx};
        const qmv_vectors v = {.batch = batch, .m = m, .x_dtype = xdt, .x = xb.p,
                               .x_bytes = xb.n, .x_row_stride = xrs, .x_batch_stride = xbs,
                               .y_dtype = ydt, .y = yg.p, .y_bytes = yg.n, .y_row_stride = yrs,
                               .y_batch_stride = ybs};
        qmv_exec ex = QMV_EXEC_INIT;
        ex.num_threads = threads;
        QMV_FUZZ_ASSERT(qmv_gather_qmv(&w, &gi, &v, &ex) == QMV_STATUS_OK, "gather: %s",
                        qmv_last_error());
        QMV_FUZZ_ASSERT(!memcmp(yg.p, yr.p, yn * ys),
                        "%s %d/%d L %lld M %lld: gather differs from the reference per item",
                        qmv_mode_name(mode), fmt.bits, fmt.group_size, (long long)batch,
                        (long long)m);
        qf_free(&yg);
        qf_free(&yr);
    }

done:
    for (int c = 0; c < ncalls; c++)
        qf_free(&y[c]);
    qf_free(&pk);
    qf_free(&sc);
    qf_free(&bi);
    qf_free(&xb);
    qf_free(&gb);
    return 0;
}
