/*
 * dequantize_any_bytes.c - qmv_dequantize on arbitrary code, scale and bias bytes (NaN and
 * Inf scales, E8M0 0xFF, E4M3 NaN codes, negative E4M3 scales), every mode, bit width, group
 * size, scale dtype, output dtype, padded strides and global scales.
 *
 * Input: parameters from the end, the bytes of packed codes, scales and biases from the start
 * (cycled).
 *
 * Properties:
 * - never crashes, never reads outside its inputs (mapped read-only against guard pages),
 *   status exactly the documented one (OK; INVALID_ARGUMENT for a global scale on a mode other
 *   than nvfp4; NON_FINITE for a non-finite global scale: "no status is data dependent");
 * - nothing written on error; on success the padding between output rows is untouched;
 * - values are docs/FORMATS.md's definition, recomputed here independently:
 *   affine fl_R(fl_R(q * s) + b), fp e * s, nvfp4 with g fl32(e * fl32(s * fl32(g / 2688))),
 *   then rounded once to the output dtype (NaN compared as NaN, anything else bit for bit);
 * - the scalar tier on 1 thread and the best CPU tier on 2 give the same bytes;
 * - fp modes: dequant(quant(dequant(codes))) == dequant(codes) for a fuzzed profile, under the
 *   preconditions of roundtrip_check.h.
 */
#include "fuzz_helpers.h" /* first: feature macros */

#include <math.h>

#include "roundtrip_check.h"


/* ---- An independent decoder of the element and scale codes (docs/FORMATS.md) ---- */

static float e2m1(unsigned c)
{
    static const float v[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
    return (c & 8u) ? -v[c & 7u] : v[c & 7u];
}

static float e4m3(unsigned c)
{
    const unsigned e = (c >> 3) & 15u, m = c & 7u;
    float v;
    if (e == 15 && m == 7)
        return NAN;
    if (e == 0)
        v = ldexpf((float)m, -9);
    else
        v = ldexpf((float)(8 + m), (int)e - 10);
    return (c & 0x80u) ? -v : v;
}

static float e8m0(unsigned b)
{
    return b == 0xFF ? NAN : ldexpf(1.0f, (int)b - 127);
}

static unsigned code_at(const uint32_t *row, int64_t i, int bits)
{
    const int64_t bit = i * bits;
    uint64_t v = row[bit / 32] >> (bit % 32);
    if (bit % 32 + bits > 32)
        v |= (uint64_t)row[bit / 32 + 1] << (32 - bit % 32);
    return (unsigned)(v & ((1u << bits) - 1u));
}

/* Element (r, i) in float32 before the final rounding to the output dtype. */
static float expected_f32(const qmv_qmatrix *w, int64_t r, int64_t i)
{
    const int bits = w->format.bits;
    const unsigned c = code_at(w->packed + r * w->packed_row_stride, i, bits);
    const size_t si = (size_t)(r * w->scales_row_stride + i / w->format.group_size);
    switch (w->format.mode) {
    case QMV_MODE_AFFINE: {
        const qmv_dtype R = w->scale_dtype;
        const float s = qf_load(R, w->scales, si), b = qf_load(R, w->biases, si);
        return qf_round_to(R, qf_round_to(R, (float)c * s) + b);
    }
    case QMV_MODE_MXFP4:
        return e2m1(c) * e8m0(((const uint8_t *)w->scales)[si]);
    case QMV_MODE_MXFP8:
        return e4m3(c) * e8m0(((const uint8_t *)w->scales)[si]);
    default: {
        float s = e4m3(((const uint8_t *)w->scales)[si]);
        if (w->global_scale)
            s = s * (*w->global_scale / 2688.0f);
        return e2m1(c) * s;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qf_producer p = qf_producer_make(data, size);
    const qmv_format fmt = qf_draw_format(&p);
    const qmv_mode mode = fmt.mode;
    const qmv_dtype sdt = (qmv_dtype)qf_u32_range(&p, 0, QMV_DTYPE_COUNT - 1);
    const qmv_dtype odt = (qmv_dtype)qf_u32_range(&p, 0, QMV_DTYPE_COUNT - 1);
    const qmv_profile profile = (qmv_profile)qf_u32_range(&p, 0, QMV_PROFILE_COUNT - 1);
    const int64_t rows = qf_u32_range(&p, 1, 4);
    const int64_t k = (int64_t)qf_u32_range(&p, 1, 4) * fmt.group_size;
    const uint32_t g_kind = qf_u32_range(&p, 0, 3); /* 0 none, 1 arbitrary bits, 2+ 2688*2^j */
    float g = 0.0f;
    if (g_kind == 1)
        g = qf_f32(qf_u32(&p));
    else if (g_kind >= 2)
        g = ldexpf(2688.0f, (int)qf_u32_range(&p, 0, 40) - 20);

    qmv_layout l;
    QMV_FUZZ_ASSERT(qmv_layout_query(&fmt, sdt, rows, k, &l) == QMV_STATUS_OK, "layout");
    const int64_t prs = l.words_per_row + qf_u32_range(&p, 0, 2);
    const int64_t srs = l.groups_per_row + qf_u32_range(&p, 0, 2);
    const int64_t ors = k + qf_u32_range(&p, 0, 3);
    const size_t es = mode == QMV_MODE_AFFINE ? qmv_dtype_size(sdt) : 1;

    /* inputs: exact sizes for the strides, then read-only */
    qf_buf pk = qf_alloc((size_t)((rows - 1) * prs + l.words_per_row) * 4, 4);
    qf_buf sc = qf_alloc((size_t)((rows - 1) * srs + l.groups_per_row) * es, 4);
    qf_buf bi = qf_alloc(mode == QMV_MODE_AFFINE ? sc.n : 0, 4);
    qf_buf gb = qf_alloc(g_kind ? 4 : 0, 4);
    size_t cur = 0;
    qf_fill(&p, &cur, pk.p, pk.n);
    qf_fill(&p, &cur, sc.p, sc.n);
    qf_fill(&p, &cur, bi.p, bi.n);
    memcpy(gb.p, &g, gb.n);
#ifdef QF_HAVE_MMAP
    qf_buf *ro[4] = {&pk, &sc, &bi, &gb};
    for (int i = 0; i < 4; i++)
        if (ro[i]->n)
            mprotect((uint8_t *)ro[i]->map + qf_page(), ro[i]->map_len - 2 * qf_page(), PROT_READ);
#endif

    qmv_qmatrix w = {.format = fmt,
                     .scale_dtype = sdt,
                     .rows = rows,
                     .k = k,
                     .packed = (const uint32_t *)pk.p,
                     .packed_bytes = pk.n,
                     .packed_row_stride = prs,
                     .packed_batch_stride = (int64_t)qf_u32_range(&p, 0, 1) << 40, /* ignored */
                     .scales = sc.p,
                     .scales_bytes = sc.n,
                     .biases = mode == QMV_MODE_AFFINE ? bi.p : NULL,
                     .biases_bytes = bi.n,
                     .scales_row_stride = srs,
                     .scales_batch_stride = 0,
                     .global_scale = g_kind ? (const float *)gb.p : NULL};

    const size_t os = qmv_dtype_size(odt);
    const size_t on = (size_t)((rows - 1) * ors + k);
    qf_buf o1 = qf_alloc(on * os, 4), o2 = qf_alloc(on * os, 4), of = qf_alloc(on * 4, 4);
    qf_poison(&o1);
    qf_poison(&o2);
    qf_poison(&of);

    qmv_status expect = QMV_STATUS_OK;
    if (g_kind && mode != QMV_MODE_NVFP4)
        expect = QMV_STATUS_INVALID_ARGUMENT;
    else if (g_kind && !isfinite(g))
        expect = QMV_STATUS_NON_FINITE;

    /* the scalar tier on 1 thread, then the best tier this processor has on 2: same bytes */
    qmv_exec ex1 = QMV_EXEC_INIT, ex2 = QMV_EXEC_INIT;
    ex1.num_threads = 1;
    ex1.cpu_tiers = QMV_CPU_TIER_SCALAR;
    ex2.num_threads = 2;
    qmv_status st = qmv_dequantize(&w, odt, o1.p, o1.n, ors, &ex1);
    QMV_FUZZ_ASSERT(st == expect, "%s %d/%d scales %s out %s: status %d (%s), expected %d",
                    qmv_mode_name(mode), fmt.bits, fmt.group_size, qmv_dtype_name(sdt),
                    qmv_dtype_name(odt), (int)st, qmv_status_string(st), (int)expect);
    if (st != QMV_STATUS_OK) {
        QMV_FUZZ_ASSERT(qf_is_poisoned(o1.p, o1.n), "output written on error %d", (int)st);
        goto done;
    }
    st = qmv_dequantize(&w, odt, o2.p, o2.n, ors, &ex2);
    QMV_FUZZ_ASSERT(st == QMV_STATUS_OK && !memcmp(o1.p, o2.p, o1.n),
                    "best tier on 2 threads differs from scalar on 1 (status %d)", (int)st);
    st = qmv_dequantize(&w, QMV_DTYPE_F32, of.p, of.n, ors, &ex1);
    QMV_FUZZ_ASSERT(st == QMV_STATUS_OK, "dequantize to float32: %d", (int)st);

    for (int64_t r = 0; r < rows; r++) {
        const size_t base = (size_t)(r * ors);
        for (int64_t i = 0; i < k; i++) {
            const float ref = expected_f32(&w, r, i);
            const float got = qf_load(QMV_DTYPE_F32, of.p, base + (size_t)i);
            const float got_t = qf_load(odt, o1.p, base + (size_t)i);
            const float ref_t = qf_round_to(odt, ref);
            QMV_FUZZ_ASSERT(isnan(ref) ? isnan(got) : qf_f32_bits(ref) == qf_f32_bits(got),
                            "%s row %lld element %lld: float32 %a, expected %a",
                            qmv_mode_name(mode), (long long)r, (long long)i, (double)got,
                            (double)ref);
            QMV_FUZZ_ASSERT(isnan(ref_t) ? isnan(got_t)
                                         : qf_f32_bits(ref_t) == qf_f32_bits(got_t),
                            "%s row %lld element %lld: %s %a, expected %a (float32 %a)",
                            qmv_mode_name(mode), (long long)r, (long long)i,
                            qmv_dtype_name(odt), (double)got_t, (double)ref_t, (double)ref);
        }
        if (r + 1 < rows)
            QMV_FUZZ_ASSERT(qf_is_poisoned(o1.p + (base + (size_t)k) * os, (size_t)(ors - k) * os),
                            "padding after output row %lld written", (long long)r);
    }

    if (mode != QMV_MODE_AFFINE)
        qf_check_fp_fixed_point(&w, profile, odt, &ex1);

done:
    qf_free(&o1);
    qf_free(&o2);
    qf_free(&of);
    qf_free(&pk);
    qf_free(&sc);
    qf_free(&bi);
    qf_free(&gb);
    return 0;
}
