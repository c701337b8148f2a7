/*
 * quantize_group.h - one quantization group under each rounding profile (FORMATS.md Part 1,
 * §2 and §3). Inputs are the group's elements as exact floats of dtype t (all finite);
 * outputs are the codes and the scale (and bias) before they are stored.
 */
#ifndef QMV_CPU_QUANTIZE_GROUP_H
#define QMV_CPU_QUANTIZE_GROUP_H

#include "internal.h"

/* Affine: codes q[0..n), scale and bias as float32 (stored rounded to t by the caller). */
void qmvi_quantize_affine(const float *w, int n, int bits, qmv_profile profile, unsigned *q,
                          float *scale, float *bias);

/* mxfp4 / mxfp8: element codes and the E8M0 scale byte. */
void qmvi_quantize_mx(const float *w, int n, qmv_mode mode, qmv_dtype t, qmv_profile profile,
                      unsigned *codes, uint8_t *scale_byte);

/* nvfp4: element codes and the E4M3 scale byte; enc = fl32(2688/g), or 1 without a global
 * scale. */
void qmvi_quantize_nv(const float *w, int n, qmv_dtype t, qmv_profile profile, float enc,
                      unsigned *codes, uint8_t *scale_byte);

/* ---- The per-group parts, shared with the SIMD tiers (quantize_simd.h), so that every
 * tier computes a group's scale with the same code and only the per-element loop differs. */

/* Affine scale and bias from the group's range: w_min and w_max are the element minimum and
 * maximum including the profile's start values (mlx-cpu: +-Inf; mlx-cuda / ocp: FLT_MAX and 0,
 * so w_max >= 0). Codes are then clamp(rint or round((w - bias) / scale), 0, 2^bits - 1), a
 * NaN quotient giving 0. */
void qmvi_affine_params(float w_min, float w_max, int bits, qmv_profile profile, float *scale,
                        float *bias);

/* max |w[j]| (+0 for an empty or all-zero group). */
float qmvi_amax(const float *w, int n);

/* An mx group: the E8M0 byte and f, the element divisor 2^e rounded to t (mlx-cpu: elements
 * are e2m1_mlx_cpu / e4m3 of fl_t(w / f)) or the reciprocal multiplier (mlx-cuda, ocp:
 * elements are the RNE codes of w * f). */
typedef struct {
    uint8_t byte;
    float f;
} qmvi_mx_group;
qmvi_mx_group qmvi_mx_params(float amax, qmv_mode mode, qmv_dtype t, qmv_profile profile);
/* The mlx-cpu group from s = fl_T(amax / elem_max) (what qmvi_mx_params computes first). */
qmvi_mx_group qmvi_mx_cpu_group(float s);

/* An nvfp4 group: the E4M3 byte, its value sv, and (mlx-cuda, ocp) enc_b = enc / sv. mlx-cpu
 * elements are e2m1_mlx_cpu(fl_t(w / sv) * enc, F32); the others e2m1_rne(w * enc_b), or,
 * when sv = 0, 0xF for w < 0 and 0x7 otherwise. */
typedef struct {
    uint8_t byte;
    float sv, enc_b;
} qmvi_nv_group;
qmvi_nv_group qmvi_nv_params(float amax, qmv_dtype t, qmv_profile profile, float enc);
/* The mlx-cpu group from s_t = fl_T(amax / 6) (what qmvi_nv_params computes first). */
qmvi_nv_group qmvi_nv_cpu_group(float s_t, float enc);

/* E2M1 as MLX's CPU quantize picks it: the argmin over the code table with differences rounded
 * to d (for |x| < 512: nearest, ties toward the smaller magnitude, zero always +0). */
unsigned qmvi_e2m1_mlx_cpu(float x, qmv_dtype d);

#endif /* QMV_CPU_QUANTIZE_GROUP_H */
