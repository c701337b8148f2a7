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

#endif /* QMV_CPU_QUANTIZE_GROUP_H */
