/*
 * quantize_simd.h - the ISA-neutral body of the SIMD tiers of qmv_quantize(), written on the
 * primitives of a tier's quant_vec_<isa>.h (QV_NL lanes, 8 or 16). Not a translation unit of
 * its own: each tier's quantize_<isa>.c (cpu/x86/, cpu/arm/) includes it once after its
 * primitives and after defining QV_NAME(f), the tier's name for f, so it is compiled with the
 * tier's ISA flags.
 *
 * Bit-exact with the scalar path (quantize.c, quantize_group.c) by construction:
 *   - a group's scale (and bias) comes from the same functions (qmvi_affine_params,
 *     qmvi_mx_params, qmvi_nv_params) fed with the same min, max or amax: a vertical then
 *     horizontal max / min gives the same value as the scalar left-to-right scan for finite
 *     input (all quantize input is finite). It can differ only in the sign of a zero, which
 *     never reaches a result: fabsf() drops it, w_max - w_min of two zeros is a zero that the
 *     1e-7 floor replaces, and a zero edge gives q0 = 0 and bias 0 whatever its sign;
 *   - each element goes through the same IEEE float32 operations in the same order (vdivps,
 *     vmulps, vsubps, and NEON's FDIV, FMUL, FSUB, are the correctly rounded operations of
 *     the scalar code; roundscale and FRINTN are rintf; round_away is roundf, derived below),
 *     then the same code decision, written as compares on the same thresholds (MLX's rare
 *     argmin cases fall back to the scalar code);
 *   - codes are packed into the same LSB-first bit stream (FORMATS.md §1.5).
 */
#ifndef QMV_CPU_QUANTIZE_SIMD_H
#define QMV_CPU_QUANTIZE_SIMD_H

#include <math.h>

#include "codec.h"
#include "quant_tiers.h"
#include "quantize_group.h"
#include "quant_vec_common.h"

#define QV_MAXV (128 / QV_NL) /* vectors per group at most (group 128) */

/* roundf: ties away from zero. x - trunc(x) is exact (|x| < 2^23; above, x is integral and the
 * difference 0), and so is trunc(x) +- 1; Inf gives NaN - no adjustment - Inf. */
QV_INLINE qv_f qv_round_away(qv_f x)
{
    const qv_f t = qv_trunc(x);
    const qv_m up = qv_le(qv_set1(0.5f), qv_abs(qv_sub(x, t)));
    const qv_f one =
        qv_from_bits(qv_or(qv_bits(qv_set1(1.0f)), qv_and(qv_bits(x), qv_iset1((int)0x80000000u))));
    return qv_sel(up, qv_add(t, one), t);
}

/* qmvi_e2m1_mlx_cpu: below 512 the code is the number of thresholds under |x| (nearest, ties
 * toward the smaller magnitude), with the sign only when that is not 0; lanes at or above 512
 * (and NaN, Inf) take the scalar argmin. */
QV_INLINE qv_i qv_e2m1_mlx(qv_f x, qmv_dtype d)
{
    static const float thr[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
    const qv_f a = qv_abs(x);
    qv_i c = qv_iset1(0);
    for (int k = 0; k < 7; k++)
        c = qv_inc(c, qv_lt(qv_set1(thr[k]), a));
    /* c + 7 has bit 3 set exactly when c >= 1 */
    c = qv_seli(qv_lt(x, qv_set1(0.0f)), qv_or(c, qv_and(qv_iadd(c, qv_iset1(7)), qv_iset1(8))), c);
    const unsigned far = qv_mask_bits(qv_not(qv_lt(a, qv_set1(512.0f))));
    if (far) {
        float xs[QV_NL];
        int32_t cs[QV_NL];
        qv_store_f32(xs, x);
        qv_storei(cs, c);
        for (int j = 0; j < QV_NL; j++)
            if (far >> j & 1u)
                cs[j] = (int32_t)qmvi_e2m1_mlx_cpu(xs[j], d);
        c = qv_loadi(cs);
    }
    return c;
}

/* qmvi_e2m1_from_f32_rne: the thresholds with ties to the even code, sign always, NaN 7. */
QV_INLINE qv_i qv_e2m1_rne(qv_f x)
{
    const qv_f a = qv_abs(x);
    qv_i c = qv_iset1(0);
    c = qv_inc(c, qv_lt(qv_set1(0.25f), a));
    c = qv_inc(c, qv_le(qv_set1(0.75f), a));
    c = qv_inc(c, qv_lt(qv_set1(1.25f), a));
    c = qv_inc(c, qv_le(qv_set1(1.75f), a));
    c = qv_inc(c, qv_lt(qv_set1(2.5f), a));
    c = qv_inc(c, qv_le(qv_set1(3.5f), a));
    c = qv_inc(c, qv_lt(qv_set1(5.0f), a));
    c = qv_seli(qv_isnan(x), qv_iset1(7), c);
    return qv_or(c, qv_and(qv_srli(qv_bits(x), 28), qv_iset1(8)));
}

/* qmvi_e4m3_from_f32_rne(x, nan_code) with nan_code 0x7E | sign (nan_signed, MLX's CPU) or
 * 0x7F. Normal results: the bits shifted with a round-to-nearest-even carry (the bf16 trick);
 * subnormal ones (|x| < 2^-6): rint(|x| * 2^9), exact, which is the scalar shift_rne. */
QV_INLINE qv_i qv_e4m3_rne(qv_f x, int nan_signed)
{
    const qv_i u = qv_bits(x);
    const qv_i a = qv_and(u, qv_iset1(0x7FFFFFFF));
    const qv_i sign = qv_and(qv_srli(u, 24), qv_iset1(0x80));
    const qv_i t = qv_isub(a, qv_iset1(120 << 23));
    const qv_i v =
        qv_srli(qv_iadd(t, qv_iadd(qv_iset1(0x7FFFF), qv_and(qv_srli(t, 20), qv_iset1(1)))), 20);
    const qv_i vs = qv_cvtt(qv_rint(qv_mul(qv_abs(x), qv_set1(512.0f))));
    qv_i r = qv_seli(qv_ilt(a, qv_iset1(0x3C800000)), vs, v);
    r = qv_seli(qv_ilt(a, qv_iset1(0x43E00000)), r, qv_iset1(0x7E)); /* >= 448, Inf, NaN */
    r = qv_or(r, sign);
    if (!nan_signed)
        r = qv_seli(qv_ilt(qv_iset1(0x7F800000), a), qv_iset1(0x7F), r);
    return r;
}

/* Writes the codes of one vector at byte *off of a row: QV_NL * bits / 8 bytes, as 8-byte
 * stores that overlap the next codes (written next) while they stay inside the row. */
QV_INLINE void qv_put_codes(unsigned char *row, int64_t *off, int64_t row_bytes, qv_i c, int bits)
{
    uint64_t u[QV_NL / 8];
    qv_codes_pack(c, bits, u);
    for (int h = 0; h < QV_NL / 8; h++) {
        if (*off + 8 <= row_bytes)
            memcpy(row + *off, &u[h], 8);
        else
            memcpy(row + *off, &u[h], (size_t)bits); /* little-endian: the low bytes */
        *off += bits;
    }
}

/*
 * The group functions work on a block of nb groups of nv vectors each (x[g * nv + v]), in
 * three passes: the groups' ranges, their scalar parameters, then their elements. Each group
 * is a long dependency chain (reduction, scalar parameters, element division) that one group
 * alone cannot hide; passes over several independent groups give the processor parallel work.
 */
#define QV_MAXG (128 / 16) /* groups per block at most (nvfp4's 16 elements) */

/* The first zero of a group in element order: the sign a scalar minimum scan from +Inf keeps
 * (it replaces only on <), which a vector minimum does not preserve. */
static float qv_first_zero(const qv_f *x, int nv)
{
    float buf[QV_NL];
    for (int v = 0; v < nv; v++) {
        qv_store_f32(buf, x[v]);
        for (int l = 0; l < QV_NL; l++)
            if (buf[l] == 0.0f)
                return buf[l];
    }
    return 0.0f;
}

static void qv_block_affine(const qmvi_quant_job *job, const qv_f *x, int nv, int nb, int64_t si,
                            qv_i *c)
{
    const int gpu = job->profile != QMV_PROFILE_MLX_CPU;
    float scale[QV_MAXG], bias[QV_MAXG], w_min[QV_MAXG], w_max[QV_MAXG];
    for (int g = 0; g < nb; g++) {
        qv_f mx = x[g * nv], mn = x[g * nv];
        for (int v = 1; v < nv; v++) {
            mx = qv_max(mx, x[g * nv + v]);
            mn = qv_min(mn, x[g * nv + v]);
        }
        w_max[g] = qv_hmax(mx);
        w_min[g] = qv_hmin(mn);
        if (gpu) /* the GPU kernels' max starts at 0 (their min at FLT_MAX changes nothing) */
            w_max[g] = (0.0f < w_max[g]) ? w_max[g] : 0.0f;
        if (job->fmt->bits == 1 && w_min[g] == 0.0f) /* one bit: the bias is w_min, sign kept */
            w_min[g] = qv_first_zero(x + g * nv, nv);
    }
    for (int g = 0; g < nb; g++) {
        qmvi_affine_params(w_min[g], w_max[g], job->fmt->bits, job->profile, &scale[g], &bias[g]);
        qmvi_store(job->t, job->out->scales, si + g, scale[g]);
        qmvi_store(job->t, job->out->biases, si + g, bias[g]);
    }
    const qv_f nbins = qv_set1((float)((1 << job->fmt->bits) - 1)), zero = qv_set1(0.0f);
    for (int g = 0; g < nb; g++) {
        const qv_f vs = qv_set1(scale[g]), vb = qv_set1(bias[g]);
        for (int v = g * nv; v < (g + 1) * nv; v++) {
            const qv_f r = qv_div(qv_sub(x[v], vb), vs);
            qv_f q = gpu ? qv_round_away(r) : qv_rint(r);
            if (gpu) /* 0/0 (qmvi_quantize_affine): fminf(NaN, n_bins) as MLX's CUDA kernel */
                q = qv_sel(qv_isnan(q), nbins, q);
            q = qv_sel(qv_lt(zero, q), q, zero); /* NaN, -0 and negatives: 0 */
            q = qv_sel(qv_lt(q, nbins), q, nbins);
            c[v] = qv_cvtt(q);
        }
    }
}

/* max |x| of each group of the block: >= +0, as the scalar scan from 0. */
static void qv_block_amax(const qv_f *x, int nv, int nb, float *amax)
{
    for (int g = 0; g < nb; g++) {
        qv_f m = qv_abs(x[g * nv]);
        for (int v = 1; v < nv; v++)
            m = qv_max(m, qv_abs(x[g * nv + v]));
        amax[g] = qv_hmax(m);
    }
}

/* mlx-cpu: fl_t(amax[g] / d) for the block's groups in one vector (the scalar parameter code
 * would round each with a function call); s has room for QV_NL >= QV_MAXG entries. */
static void qv_block_quotient(const float *amax, float d, qmv_dtype t, float *s)
{
    float a[QV_NL] = {0};
    memcpy(a, amax, QV_MAXG * sizeof *a);
    qv_store_f32(s, qv_round_to(t, qv_div(qv_load_f32(a), qv_set1(d))));
}

static void qv_block_mx(const qmvi_quant_job *job, const qv_f *x, int nv, int nb, int64_t si,
                        qv_i *c)
{
    const qmv_mode mode = job->fmt->mode;
    const int fp4 = qmvi_traits[mode].elem == QMVI_ELEM_E2M1;
    float amax[QV_MAXG] = {0}, s[QV_NL];
    qmvi_mx_group p[QV_MAXG];
    qv_block_amax(x, nv, nb, amax);
    if (job->profile == QMV_PROFILE_MLX_CPU)
        qv_block_quotient(amax, qmvi_traits[mode].elem_max, job->t, s);
    for (int g = 0; g < nb; g++) {
        p[g] = job->profile == QMV_PROFILE_MLX_CPU
                   ? qmvi_mx_cpu_group(s[g])
                   : qmvi_mx_params(amax[g], mode, job->t, job->profile);
        ((uint8_t *)job->out->scales)[si + g] = p[g].byte;
    }
    for (int g = 0; g < nb; g++) {
        const qv_f f = qv_set1(p[g].f);
        for (int v = g * nv; v < (g + 1) * nv; v++) {
            if (job->profile == QMV_PROFILE_MLX_CPU) {
                const qv_f e = qv_round_to(job->t, qv_div(x[v], f));
                c[v] = fp4 ? qv_e2m1_mlx(e, job->t) : qv_e4m3_rne(e, 1);
            } else {
                const qv_f e = qv_mul(x[v], f);
                c[v] = fp4 ? qv_e2m1_rne(e) : qv_e4m3_rne(e, 0);
            }
        }
    }
}

/* nvfp4: the scale bytes of the whole block in one vector, with qmvi_nv_params' operations
 * (mlx-cpu: e4m3(fl_t(amax / 6) * enc); mlx-cuda, ocp: e4m3((amax / 6) * enc), then
 * enc / value). The products are never NaN (amax and enc are finite, enc > 0), so both E4M3
 * NaN rules give the same byte. */
static void qv_block_nv(const qmvi_quant_job *job, const qv_f *x, int nv, int nb, int64_t si,
                        qv_i *c)
{
    const int cpu = job->profile == QMV_PROFILE_MLX_CPU;
    float amax[QV_NL] = {0}, sv[QV_NL], enc_b[QV_NL];
    int32_t sb[QV_NL];
    qv_block_amax(x, nv, nb, amax);
    const qv_f q = qv_div(qv_load_f32(amax), qv_set1(6.0f)), enc = qv_set1(job->enc);
    const qv_i b = qv_e4m3_rne(qv_mul(cpu ? qv_round_to(job->t, q) : q, enc), 1);
    const qv_f v = qv_e4m3_value(b);
    qv_storei(sb, b);
    qv_store_f32(sv, v);
    qv_store_f32(enc_b, qv_div(enc, v));
    for (int g = 0; g < nb; g++) {
        ((uint8_t *)job->out->scales)[si + g] = (uint8_t)sb[g];
        for (int i = g * nv; i < (g + 1) * nv; i++) {
            if (cpu) {
                const qv_f e = qv_mul(qv_round_to(job->t, qv_div(x[i], qv_set1(sv[g]))), enc);
                c[i] = qv_e2m1_mlx(e, QMV_DTYPE_F32);
            } else if (sv[g] == 0.0f) {
                c[i] = qv_seli(qv_lt(x[i], qv_set1(0.0f)), qv_iset1(0xF), qv_iset1(0x7));
            } else {
                c[i] = qv_e2m1_rne(qv_mul(x[i], qv_set1(enc_b[g])));
            }
        }
    }
}

void QV_NAME(qmvi_quantize_row)(const qmvi_quant_job *job, int64_t r)
{
    const int gs = job->fmt->group_size, bits = job->fmt->bits, nv = gs / QV_NL;
    const int64_t base = r * job->stride;
    unsigned char *row = (unsigned char *)(job->out->packed + r * job->words);
    const int64_t row_bytes = job->words * 4;
    const int gpb = 128 / gs; /* groups per block */
    int64_t off = 0;
    if (nv < 1 || nv > QV_MAXV) /* never: groups are 16 to 128 elements */
        return;
    for (int64_t g0 = 0; g0 < job->groups; g0 += gpb) {
        const int nb = job->groups - g0 < gpb ? (int)(job->groups - g0) : gpb;
        qv_f x[QV_MAXV];
        qv_i c[QV_MAXV];
        x[0] = qv_load(job->t, job->w, base + g0 * gs); /* nb, nv >= 1 (GCC cannot tell) */
        for (int v = 1; v < nb * nv; v++)
            x[v] = qv_load(job->t, job->w, base + g0 * gs + v * QV_NL);
        const int64_t si = r * job->groups + g0;
        if (job->fmt->mode == QMV_MODE_AFFINE)
            qv_block_affine(job, x, nv, nb, si, c);
        else if (job->fmt->mode == QMV_MODE_NVFP4)
            qv_block_nv(job, x, nv, nb, si, c);
        else
            qv_block_mx(job, x, nv, nb, si, c);
        for (int v = 0; v < nb * nv; v++)
            qv_put_codes(row, &off, row_bytes, c[v], bits);
    }
}

int QV_NAME(qmvi_non_finite)(qmv_dtype t, const void *row, int64_t k)
{
    int64_t i = 0;
    for (; i + QV_NL <= k; i += QV_NL)
        if (qv_non_finite(t, row, i))
            return 1;
    for (; i < k; i++)
        if (!isfinite(qmvi_load(t, row, i)))
            return 1;
    return 0;
}

#endif /* QMV_CPU_QUANTIZE_SIMD_H */
