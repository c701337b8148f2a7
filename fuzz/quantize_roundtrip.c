/*
 * quantize_roundtrip.c - qmv_quantize on arbitrary float bit patterns (NaN, Inf, subnormals,
 * huge values) in every mode, bit width, group size, profile and dtype.
 *
 * Input: parameters from the end (mode, bits, group, profile, dtype, rows, groups per row,
 * row padding of w, output slack, global scale, "make finite"), w's bytes from the start
 * (cycled to fill the matrix).
 *
 * Properties:
 * - the status is exactly the documented one: INVALID_ARGUMENT for a global scale on a mode
 *   other than nvfp4, NON_FINITE for an unusable global scale or any NaN/Inf in w, OK
 *   otherwise; w (mapped read-only) is never written;
 * - on error no output byte changes; on success bytes past the dense sizes (outputs may be
 *   larger) do not change either;
 * - codes are what the profile can produce: E8M0 bytes never 0xFF, E4M3 codes and nvfp4
 *   scale bytes never NaN (0x7F/0xFF), nvfp4 scales never negative, mlx-cpu never writes the
 *   E2M1 code -0 (0x8);
 * - determinism: the scalar tier on 1 thread and the best CPU tier on 2 give identical bytes;
 * - dequantize succeeds, and (fp modes) dequant(quant(dequant(q))) == dequant(q) under the
 *   preconditions of roundtrip_check.h;
 * - affine: |w - dequant(quant(w))| <= |s| + slack per element (see affine_bound below).
 */
#include "fuzz_helpers.h" /* first: feature macros */

#include <math.h>

#include "roundtrip_check.h"


/* ulp of |v| in T (spacing at v), for the affine bound's rounding slack. */
static float ulp_in(qmv_dtype t, float v)
{
    int mant = t == QMV_DTYPE_F32 ? 24 : t == QMV_DTYPE_F16 ? 11 : 8;
    int emin = t == QMV_DTYPE_F16 ? -14 : -126;
    int ex;
    frexpf(fabsf(v), &ex); /* v = f * 2^ex, f in [0.5, 1) */
    ex -= 1;
    if (ex < emin || v == 0.0f)
        ex = emin;
    return ldexpf(1.0f, ex - (mant - 1));
}

/*
 * Affine error bound. MLX's affine step makes the group's extreme of larger magnitude exact
 * (bias = edge, scale = edge / q0 with q0 = round(edge / s0), s0 = range / (2^b - 1)), so
 * rounding q0 can shrink the covered range and the far extreme is clamped: its error is up to
 * one |s| (|q0| >= (2^b - 1) / 2), every other element's up to |s| / 2. Precondition: the
 * stored scale and bias are finite and the group's range w_max - w_min does not overflow
 * float32 (then s0 is Inf and every code is 0: see the report on finite inputs with
 * non-finite affine scales), and fl_T((2^b - 1) * s) is finite: dequantize rounds q * s to T
 * before adding b, so near T's maximum the product overflows to Inf although q * s + b would
 * not (bf16 w = {0x1.fep+127, 2^-124}, 5 bits: s = -0x1.08p+123, 31 * s rounds to -Inf).
 * Slack: storing s and b in T and the two roundings of the
 * dequantization, each at most 2^b - 1 ulps of the scale or one ulp of the value.
 */
static void affine_bound(qmv_dtype t, const float *w, const float *d, int n, float s, float b,
                         int bits, size_t where)
{
    float wmin = w[0], wmax = w[0];
    for (int j = 1; j < n; j++) {
        wmin = fminf(wmin, w[j]);
        wmax = fmaxf(wmax, w[j]);
    }
    const float nb = (float)((1 << bits) - 1);
    if (!isfinite(s) || !isfinite(b) || !isfinite(wmax - wmin) || !isfinite(wmax) ||
        !isfinite(wmin) || !isfinite(qf_round_to(t, nb * s)))
        return;
    const double slack = (double)nb * 2.0 * ulp_in(t, s) + 2.0 * ulp_in(t, b);
    for (int j = 0; j < n; j++) {
        double err = fabs((double)w[j] - (double)d[j]);
        double bound = fabs((double)s) + slack + 2.0 * ulp_in(t, fmaxf(fabsf(w[j]), fabsf(d[j]))) +
                       1e-7;
        QMV_FUZZ_ASSERT(err <= bound,
                        "affine %d-bit %s: element %zu: w = %a, dequant = %a, |err| = %g > %g "
                        "(scale %a, bias %a)",
                        bits, qmv_dtype_name(t), where + (size_t)j, (double)w[j], (double)d[j],
                        err, bound, (double)s, (double)b);
    }
}

/* Fixed library bug this harness found (reproducer crash-affine-q0-inf stays in the corpus):
 * an affine group with |edge| > FLT_MAX * 1e-7 and a tiny range made 0/0 = NaN codes, cast to
 * unsigned (undefined); cpu/quantize_group.c defines the code there per profile (docs/FORMATS.md). */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qf_producer p = qf_producer_make(data, size);
    const qmv_format fmt = qf_draw_format(&p);
    const qmv_mode mode = fmt.mode;
    const qmv_profile profile = (qmv_profile)qf_u32_range(&p, 0, QMV_PROFILE_COUNT - 1);
    const qmv_dtype t = (qmv_dtype)qf_u32_range(&p, 0, QMV_DTYPE_COUNT - 1);
    const int64_t rows = qf_u32_range(&p, 1, 4);
    const int64_t k = (int64_t)qf_u32_range(&p, 1, 4) * fmt.group_size;
    const int64_t stride = k + qf_u32_range(&p, 0, 3);
    const size_t slack = qf_u32_range(&p, 0, 7);
    const int make_finite = qf_bool(&p);
    const uint32_t g_kind = qf_u32_range(&p, 0, 3); /* 0 none, 1 arbitrary bits, 2 2688*2^j */
    float g = 0.0f;
    if (g_kind == 1)
        g = qf_f32(qf_u32(&p));
    else if (g_kind >= 2)
        g = ldexpf(2688.0f, (int)qf_u32_range(&p, 0, 40) - 20);
    const float *gp = g_kind ? &g : NULL;
    const size_t ts = qmv_dtype_size(t);

    /* w, from the payload, then mapped read-only */
    qf_buf wb = qf_alloc((size_t)(rows * stride) * ts, 4);
    size_t cur = 0;
    qf_fill(&p, &cur, wb.p, wb.n);
    int has_nonfinite = 0;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < k; i++) {
            const size_t idx = (size_t)(r * stride + i);
            if (make_finite && !isfinite(qf_load(t, wb.p, idx))) {
                /* clear the exponent's top bit: still arbitrary, now finite */
                if (t == QMV_DTYPE_F32)
                    wb.p[4 * idx + 3] &= 0xBF;
                else if (t == QMV_DTYPE_F16)
                    wb.p[2 * idx + 1] &= 0xBF;
                else
                    wb.p[2 * idx + 1] &= 0xBF;
            }
            has_nonfinite |= !isfinite(qf_load(t, wb.p, idx));
        }
    }
#ifdef QF_HAVE_MMAP
    if (wb.n)
        mprotect((uint8_t *)wb.map + qf_page(), wb.map_len - 2 * qf_page(), PROT_READ);
#endif

    qmv_layout l;
    QMV_FUZZ_ASSERT(qmv_layout_query(&fmt, t, rows, k, &l) == QMV_STATUS_OK, "layout");
    qf_buf pk[2], sc[2], bi[2];
    qmv_quant_out out[2];
    for (int c = 0; c < 2; c++) {
        pk[c] = qf_alloc(l.packed_bytes + slack, 4);
        sc[c] = qf_alloc(l.scales_bytes + slack, 4);
        bi[c] = qf_alloc(mode == QMV_MODE_AFFINE ? l.biases_bytes + slack : 0, 4);
        qf_poison(&pk[c]);
        qf_poison(&sc[c]);
        qf_poison(&bi[c]);
        out[c] = (qmv_quant_out){(uint32_t *)pk[c].p, pk[c].n, sc[c].p, sc[c].n,
                                 mode == QMV_MODE_AFFINE ? bi[c].p : NULL, bi[c].n};
    }

    qmv_status expect = QMV_STATUS_OK;
    if (mode == QMV_MODE_AFFINE && fmt.bits == 1 && profile != QMV_PROFILE_MLX_CPU)
        expect = QMV_STATUS_UNSUPPORTED; /* one bit: mlx-cpu only (docs/FORMATS.md) */
    else if (gp && mode != QMV_MODE_NVFP4)
        expect = QMV_STATUS_INVALID_ARGUMENT;
    else if (gp && !(isfinite(g) && g > 0.0f && isfinite(2688.0f / g) && 2688.0f / g > 0.0f))
        expect = QMV_STATUS_NON_FINITE;
    else if (has_nonfinite)
        expect = QMV_STATUS_NON_FINITE;

    /* the scalar tier on 1 thread, then the best tier this processor has on 2: same bytes */
    qmv_exec ex1 = QMV_EXEC_INIT, ex2 = QMV_EXEC_INIT;
    ex1.num_threads = 1;
    ex1.cpu_tiers = QMV_CPU_TIER_SCALAR;
    ex2.num_threads = 2;
    qmv_status st = qmv_quantize(&fmt, profile, gp, t, wb.p, wb.n, rows, k, stride, &out[0], &ex1);
    QMV_FUZZ_ASSERT(st == expect, "%s %d/%d %s %s rows %lld k %lld: status %d (%s), expected %d",
                    qmv_mode_name(mode), fmt.bits, fmt.group_size, qmv_profile_name(profile),
                    qmv_dtype_name(t), (long long)rows, (long long)k, (int)st,
                    qmv_status_string(st), (int)expect);
    QMV_FUZZ_ASSERT((st == QMV_STATUS_OK) == (qmv_last_error()[0] == '\0'),
                    "last error does not match status %d", (int)st);
    if (st != QMV_STATUS_OK) {
        QMV_FUZZ_ASSERT(qf_is_poisoned(pk[0].p, pk[0].n) && qf_is_poisoned(sc[0].p, sc[0].n) &&
                            qf_is_poisoned(bi[0].p, bi[0].n),
                        "output written on error %d", (int)st);
        goto done;
    }
    QMV_FUZZ_ASSERT(qf_is_poisoned(pk[0].p + l.packed_bytes, slack) &&
                        qf_is_poisoned(sc[0].p + l.scales_bytes, slack) &&
                        (mode != QMV_MODE_AFFINE || qf_is_poisoned(bi[0].p + l.biases_bytes, slack)),
                    "bytes past the dense layout written");

    /* second run, best tier, 2 threads: same bytes */
    st = qmv_quantize(&fmt, profile, gp, t, wb.p, wb.n, rows, k, stride, &out[1], &ex2);
    QMV_FUZZ_ASSERT(st == QMV_STATUS_OK, "second quantize: %d", (int)st);
    QMV_FUZZ_ASSERT(!memcmp(pk[0].p, pk[1].p, pk[0].n) && !memcmp(sc[0].p, sc[1].p, sc[0].n) &&
                        !memcmp(bi[0].p, bi[1].p, bi[0].n),
                    "best tier on 2 threads differs from scalar on 1");

    /* codes the profile can produce */
    const uint32_t *words = (const uint32_t *)pk[0].p;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < k; i++) {
            const int64_t bit = i * fmt.bits;
            const uint32_t *row = words + r * l.words_per_row;
            uint64_t v = row[bit / 32] >> (bit % 32);
            if (bit % 32 + fmt.bits > 32)
                v |= (uint64_t)row[bit / 32 + 1] << (32 - bit % 32);
            const unsigned c = (unsigned)(v & ((1u << fmt.bits) - 1u));
            if (mode == QMV_MODE_MXFP8)
                QMV_FUZZ_ASSERT((c & 0x7F) != 0x7F, "E4M3 NaN code %#x", c);
            if ((mode == QMV_MODE_MXFP4 || mode == QMV_MODE_NVFP4) &&
                profile == QMV_PROFILE_MLX_CPU)
                QMV_FUZZ_ASSERT(c != 0x8, "mlx-cpu wrote the E2M1 code -0");
        }
    }
    if (mode != QMV_MODE_AFFINE) {
        for (size_t i = 0; i < l.scales_bytes; i++) {
            const unsigned b = sc[0].p[i];
            if (mode == QMV_MODE_NVFP4)
                QMV_FUZZ_ASSERT(b < 0x7F, "nvfp4 scale byte %#x (NaN or negative)", b);
            else
                QMV_FUZZ_ASSERT(b != 0xFF, "E8M0 NaN scale byte");
        }
    }

    /* dequantize the result (dense) */
    qmv_qmatrix wq;
    QMV_FUZZ_ASSERT(qmv_qmatrix_dense(&fmt, t, rows, k, (const uint32_t *)pk[0].p, sc[0].p,
                                      mode == QMV_MODE_AFFINE ? bi[0].p : NULL, &wq) == QMV_STATUS_OK,
                    "qmatrix_dense");
    wq.global_scale = gp;
    if (mode == QMV_MODE_AFFINE) {
        qf_buf d = qf_alloc((size_t)(rows * k) * 4, 4);
        QMV_FUZZ_ASSERT(qmv_dequantize(&wq, QMV_DTYPE_F32, d.p, d.n, k, &ex1) == QMV_STATUS_OK,
                        "dequantize");
        float wg[128], dg[128];
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t g0 = 0; g0 < k; g0 += fmt.group_size) {
                for (int j = 0; j < fmt.group_size; j++) {
                    wg[j] = qf_load(t, wb.p, (size_t)(r * stride + g0 + j));
                    dg[j] = qf_load(QMV_DTYPE_F32, d.p, (size_t)(r * k + g0 + j));
                }
                const size_t gi = (size_t)(r * l.groups_per_row + g0 / fmt.group_size);
                affine_bound(t, wg, dg, fmt.group_size, qf_load(t, sc[0].p, gi),
                             qf_load(t, bi[0].p, gi), fmt.bits, (size_t)(r * k + g0));
            }
        }
        qf_free(&d);
    } else {
        qf_check_fp_fixed_point(&wq, profile, t, &ex1);
    }

done:
    for (int c = 0; c < 2; c++) {
        qf_free(&pk[c]);
        qf_free(&sc[c]);
        qf_free(&bi[c]);
    }
    qf_free(&wb);
    return 0;
}
