/*
 * quantize_group.c - the per-group arithmetic of every rounding profile, written to follow
 * the cited MLX code operation by operation (FORMATS.md §2.1, §2.3, §3.2, §3.3, §3.6) and the
 * OCP Microscaling v1.0 rule. All arithmetic is float32 with -ffp-contract=off; "in T" means
 * a float32 operation rounded to T, which equals the correctly rounded T operation for + - * and /
 * because 24 >= 2p + 2 for T's precision p (8 or 11).
 */
#include <float.h>
#include <math.h>

#include "codec.h"
#include "quantize_group.h"

/* ---- Affine ---- */

void qmvi_affine_params(float w_min, float w_max, int bits, qmv_profile profile, float *scale_out,
                        float *bias_out)
{
    const int gpu = profile != QMV_PROFILE_MLX_CPU;
    const float n_bins = (float)((1 << bits) - 1);
    const float eps = 1e-7f;
    if (bits == 1) {
        /* MLX 0.32.4's CPU rule for one bit (checked against it, FORMATS.md): the range from
         * the minimum, no edge adjustment; qmv_quantize accepts only mlx-cpu here. */
        const float range = w_max - w_min;
        *scale_out = range < eps ? eps : range;
        *bias_out = w_min;
        return;
    }
    const int mask = fabsf(w_min) > fabsf(w_max);
    float scale = (w_max - w_min) / n_bins;
    scale = (scale < eps) ? eps : scale;
    scale = mask ? scale : -scale;
    const float edge = mask ? w_min : w_max;
    const float r0 = edge / scale;
    const float q0 = gpu ? roundf(r0) : rintf(r0);
    float bias = 0.0f;
    if (q0 != 0.0f) {
        scale = edge / q0;
        bias = edge;
    }
    *scale_out = scale;
    *bias_out = bias;
}

void qmvi_quantize_affine(const float *w, int n, int bits, qmv_profile profile, unsigned *q,
                          float *scale_out, float *bias_out)
{
    /* MLX's GPU kernels start the max at 0 (so all-negative groups include 0 in their
     * range) and round ties away from zero; the CPU kernel starts at -inf and uses rint. */
    const int gpu = profile != QMV_PROFILE_MLX_CPU;
    const float n_bins = (float)((1 << bits) - 1);
    float w_min = gpu ? FLT_MAX : INFINITY;
    float w_max = gpu ? 0.0f : -INFINITY;
    for (int j = 0; j < n; j++) {
        float v = w[j];
        w_max = (w_max < v) ? v : w_max;
        w_min = (v < w_min) ? v : w_min;
    }
    float scale, bias;
    qmvi_affine_params(w_min, w_max, bits, profile, &scale, &bias);
    for (int j = 0; j < n; j++) {
        float r = (w[j] - bias) / scale;
        float c = gpu ? roundf(r) : rintf(r);
        /* 0/0 happens when |edge| / 1e-7 overflows (|edge| > ~3.4e31 with a range below
         * 1e-7 * (2^b - 1)): q0 is Inf and the scale 0. MLX's CUDA kernel clamps with fminf
         * before its integer cast, and fminf(NaN, 2^b - 1) is 2^b - 1; MLX's CPU kernel casts
         * the NaN itself (undefined), where qmv gives code 0. Either code dequantizes to the
         * bias, the group's value, since the scale is 0. */
        c = (c != c) ? (gpu ? n_bins : 0.0f) : c;
        c = (c < 0.0f) ? 0.0f : c;
        c = (n_bins < c) ? n_bins : c;
        q[j] = (unsigned)c;
    }
    *scale_out = scale;
    *bias_out = bias;
}

/* ---- E2M1 as MLX's CPU quantize picks it ---- */

/* MLX's CPU path takes argmin_i |x - LUT_i| with the first minimum winning, differences
 * rounded to dtype d. For |x| < 512 that is "nearest, ties toward the smaller magnitude,
 * zero always +0" (FORMATS.md §3.2); beyond, rounding can manufacture ties, so the argmin is
 * evaluated literally (as it is for Inf and NaN, which give code 0). */
unsigned qmvi_e2m1_mlx_cpu(float x, qmv_dtype d)
{
    float a = fabsf(x);
    if (a < 512.0f) {
        unsigned c;
        if (a > 5.0f)
            c = 7;
        else if (a > 3.5f)
            c = 6;
        else if (a > 2.5f)
            c = 5;
        else if (a > 1.75f)
            c = 4;
        else if (a > 1.25f)
            c = 3;
        else if (a > 0.75f)
            c = 2;
        else if (a > 0.25f)
            c = 1;
        else
            return 0;
        return (x < 0.0f ? 8u : 0u) | c;
    }
    unsigned best = 0;
    float bd = fabsf(qmvi_round_to(d, x - qmvi_e2m1_values[0]));
    for (unsigned i = 1; i < 16; i++) {
        float dist = fabsf(qmvi_round_to(d, x - qmvi_e2m1_values[i]));
        if (dist < bd) {
            bd = dist;
            best = i;
        }
    }
    return best;
}

/* ceil(log2(s)) for a positive finite float, exactly (bit code, subnormals included). */
static int qmvi_ceil_log2(float s)
{
    uint32_t u = qmvi_f32_bits(s);
    int exp = (int)((u >> 23) & 0xFFu);
    uint32_t mant = u & 0x7FFFFFu;
    if (exp != 0)
        return exp - 127 + (mant != 0);
    /* Subnormal: s = mant * 2^-149. */
    int lg = 31 - __builtin_clz(mant);
    return lg - 149 + ((mant & (mant - 1u)) != 0);
}

float qmvi_amax(const float *w, int n)
{
    float m = 0.0f;
    for (int j = 0; j < n; j++) {
        float a = fabsf(w[j]);
        m = (m < a) ? a : m;
    }
    return m;
}

/* CUTLASS's float -> ue8m0 conversion: round up to a power of two (FORMATS.md §3.6). */
static unsigned qmvi_e8m0_round_up(float sd)
{
    uint32_t u = qmvi_f32_bits(sd);
    unsigned exp = (u >> 23) & 0xFFu;
    uint32_t mant = u & 0x7FFFFFu;
    if (exp == 0xFF)
        return 0xFF;
    if (mant > 0 && exp != 0xFE && !(exp == 0 && mant <= 0x400000u))
        exp++;
    return exp;
}

/* ---- mxfp4 / mxfp8 ---- */

qmvi_mx_group qmvi_mx_cpu_group(float s)
{
    /* e = ceil(log2(s)), 0 for a zero quotient (MLX 0.32.4; see docs/FORMATS.md for how this
     * differs from older MLX's rint of a T-rounded log2). */
    int e = s == 0.0f ? 0 : qmvi_ceil_log2(s);
    /* MLX wraps e + 127 < 0 through a uint8 cast (undefined); qmv clamps instead. */
    if (e < -127)
        e = -127;
    qmvi_mx_group g;
    g.byte = (uint8_t)(e + 127);
    /* MLX's divisor is fl_T(2^e), which is 2^e itself for every e here: a nonzero s is at
     * least T's smallest subnormal (2^-24 for float16, below 2^-127 otherwise, where e is
     * clamped to -127, representable in float32 and bfloat16), and at most T's largest value
     * over 6, so 2^e lies in T's range. 2^e is the E8M0 value of the byte. */
    g.f = qmvi_e8m0_to_f32(g.byte);
    return g;
}

qmvi_mx_group qmvi_mx_params(float amax, qmv_mode mode, qmv_dtype t, qmv_profile profile)
{
    const qmvi_mode_traits *tr = &qmvi_traits[mode];
    qmvi_mx_group g;
    int e;
    if (profile == QMV_PROFILE_MLX_CPU)
        return qmvi_mx_cpu_group(qmvi_round_to(t, amax / tr->elem_max));
    if (profile == QMV_PROFILE_OCP) {
        /* X = 2^(floor(log2(amax)) - emax_elem); a zero group takes the smallest scale. */
        if (amax == 0.0f) {
            e = -127;
        } else {
            int ex;
            frexpf(amax, &ex); /* amax = f * 2^ex, f in [0.5, 1): floor(log2) = ex - 1 */
            e = ex - 1 - tr->emax_elem;
            e = e < -127 ? -127 : e > 127 ? 127 : e;
        }
        g.byte = (uint8_t)(e + 127);
        g.f = qmvi_e8m0_to_f32((unsigned)(127 - e)); /* 2^-e, exact for |e| <= 127 */
        return g;
    }
    const unsigned b = qmvi_e8m0_round_up(amax / tr->elem_max);
    g.byte = (uint8_t)b;
    g.f = 1.0f / qmvi_e8m0_to_f32(b);
    return g;
}

void qmvi_quantize_mx(const float *w, int n, qmv_mode mode, qmv_dtype t, qmv_profile profile,
                      unsigned *codes, uint8_t *scale_byte)
{
    const int fp4 = qmvi_traits[mode].elem == QMVI_ELEM_E2M1;
    const qmvi_mx_group g = qmvi_mx_params(qmvi_amax(w, n), mode, t, profile);
    *scale_byte = g.byte;
    if (profile == QMV_PROFILE_MLX_CPU) {
        for (int j = 0; j < n; j++) {
            float x = qmvi_round_to(t, w[j] / g.f);
            codes[j] = fp4 ? qmvi_e2m1_mlx_cpu(x, t)
                           : qmvi_e4m3_from_f32_rne(x, 0x7Eu | (qmvi_f32_bits(x) >> 24 & 0x80u));
        }
        return;
    }
    for (int j = 0; j < n; j++) {
        float x = w[j] * g.f;
        codes[j] = fp4 ? qmvi_e2m1_from_f32_rne(x) : qmvi_e4m3_from_f32_rne(x, 0x7Fu);
    }
}

/* ---- nvfp4 ---- */

qmvi_nv_group qmvi_nv_cpu_group(float s_t, float enc)
{
    qmvi_nv_group g;
    const unsigned sb = qmvi_e4m3_from_f32_rne(s_t * enc, 0x7Eu);
    g.byte = (uint8_t)sb;
    g.sv = qmvi_e4m3_to_f32(sb);
    g.enc_b = 0.0f;
    return g;
}

qmvi_nv_group qmvi_nv_params(float amax, qmv_dtype t, qmv_profile profile, float enc)
{
    if (profile == QMV_PROFILE_MLX_CPU)
        return qmvi_nv_cpu_group(qmvi_round_to(t, amax / 6.0f), enc);
    /* MLX's CUDA kernel (also the ocp profile): reciprocal multiply in float32. */
    qmvi_nv_group g;
    const unsigned sb = qmvi_e4m3_from_f32_rne((amax / 6.0f) * enc, 0x7Fu);
    g.byte = (uint8_t)sb;
    g.sv = qmvi_e4m3_to_f32(sb);
    g.enc_b = enc / g.sv;
    return g;
}

void qmvi_quantize_nv(const float *w, int n, qmv_dtype t, qmv_profile profile, float enc,
                      unsigned *codes, uint8_t *scale_byte)
{
    const qmvi_nv_group g = qmvi_nv_params(qmvi_amax(w, n), t, profile, enc);
    *scale_byte = g.byte;
    if (profile == QMV_PROFILE_MLX_CPU) {
        /* MLX divides in T, then multiplies by the float32 encoding factor (1 without a
         * global scale), so the argmin's differences are float32. */
        for (int j = 0; j < n; j++) {
            float x = qmvi_round_to(t, w[j] / g.sv) * enc;
            codes[j] = qmvi_e2m1_mlx_cpu(x, QMV_DTYPE_F32);
        }
        return;
    }
    for (int j = 0; j < n; j++) {
        if (g.sv == 0.0f) {
            /* enc_b = +Inf: w * Inf is +-Inf (saturates to +-6) or, for zeros, NaN, which
             * the GPU produces as a positive NaN and CUTLASS encodes as 0x7. */
            codes[j] = w[j] < 0.0f ? 0xFu : 0x7u;
            continue;
        }
        codes[j] = qmvi_e2m1_from_f32_rne(w[j] * g.enc_b);
    }
}
