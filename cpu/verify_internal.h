/*
 * verify_internal.h - what the files of qmv_verify() share: one row of W decoded to exact
 * values, the exact value and non-finite class of one output, and the two error bounds.
 */
#ifndef QMV_CPU_VERIFY_INTERNAL_H
#define QMV_CPU_VERIFY_INTERNAL_H

#include "internal.h"

/* Classes of a float value, as bits of a mask of accepted classes. */
#define QMVI_VC_NAN 1u
#define QMVI_VC_PINF 2u
#define QMVI_VC_NINF 4u
#define QMVI_VC_FINITE 8u

static inline unsigned qmvi_vclass_of(long double f)
{
    if (f != f)
        return QMVI_VC_NAN;
    if (f == (long double)INFINITY)
        return QMVI_VC_PINF;
    if (f == -(long double)INFINITY)
        return QMVI_VC_NINF;
    return QMVI_VC_FINITE;
}

/* A floating-point format: unit roundoff u, half the smallest subnormal eta, largest finite
 * value and the threshold from which rounding to it gives Inf (max + half an ulp). */
typedef struct {
    long double u, eta, max, inf_at;
} qmvi_fprec;

qmvi_fprec qmvi_verify_prec(qmv_dtype t);

/* Row n of W with exact values: element values v[k] (affine codes q, fp E2M1/E4M3 values),
 * group scales s and biases b (0 for fp modes) as floats, the global multiplier c. */
typedef struct {
    int64_t k, group;
    int affine;
    const float *v, *s, *b;
    long double c;
    long double wmax;  /* max |s v| + max |b|: the largest dequantized magnitude */
    long double F;     /* max(1, wmax) max(1, max|s|) max(1, |c|): scales an underflow */
} qmvi_vrow;

/* The exact result of one output element. */
typedef struct {
    int finite; /* every input of the element is finite: E and S are meaningful */
    /* !finite: the classes y may have (QMVI_VC_*); 0 when the class depends on the order or
     * on roundings in a way no bound decides (the element is then unchecked) */
    unsigned accept;
    long double E; /* exact sum (finite case), computed in long double */
    long double S; /* sum of |x_i| (|s v_i| + |b|) (times |c|): of the finite terms when !finite */
} qmvi_vexact;

/* Exact value and non-finite class of x . row (x: k floats). u_acc: the accumulation
 * precision's unit roundoff, which decides when a computed weight may differ from zero. */
void qmvi_verify_exact_value(const qmvi_vrow *r, const float *x, long double u_acc,
                             qmvi_vexact *out);

/* The accumulation error allowed by the rigorous bound (any order; finite case). */
long double qmvi_verify_rigorous(const qmvi_vrow *r, const qmvi_vexact *e, qmvi_fprec acc);

/* The accumulation error allowed by the statistical bound at multiplier lambda, and in
 * *pmax the largest partial-sum magnitude seen along the family of orders (for the overflow
 * check). Finite case. */
long double qmvi_verify_stat(const qmvi_vrow *r, const float *x, qmvi_fprec acc,
                             long double lambda, long double *pmax);

#endif /* QMV_CPU_VERIFY_INTERNAL_H */
