/*
 * verify_value.c - the exact value of one output element and, when an input is not finite, the
 * classes (NaN, +Inf, -Inf) its result may have under IEEE rules (docs/VERIFY.md,
 * "Non-finite inputs"). Inf terms are reasoned about one at a time: forming s*Sum(x q) +
 * b*Sum(x) would turn an Inf x into Inf - Inf where the exact math has a signed Inf.
 */
#include <math.h>

#include "verify_internal.h"

/* Bits of the classes an Inf x of sign sx times a finite weight may give: the weight w is
 * formed as one value (s v + b, rounded), or, for affine, the product is split into s (x q) +
 * b x as qmv's canonical order and MLX's GPU kernels do. */
static unsigned inf_term(const qmvi_vrow *r, int sx, long double v, long double s, long double b,
                         long double u)
{
    const unsigned same = sx > 0 ? QMVI_VC_PINF : QMVI_VC_NINF;
    const unsigned flip = sx > 0 ? QMVI_VC_NINF : QMVI_VC_PINF;
    if (!r->affine) {
        const long double w = v * s * r->c; /* e*s is exact in float32 */
        if (w == 0)
            return QMVI_VC_NAN;
        if (fabsl(w) < 0x1p-100L) /* the computed product may underflow to 0 */
            return QMVI_VC_NAN | QMVI_VC_PINF | QMVI_VC_NINF;
        return w > 0 ? same : flip;
    }
    const long double sq = s * v, w = sq + b;
    unsigned whole, split;
    if (w == 0)
        whole = QMVI_VC_NAN;
    else if (fabsl(w) <= 4 * u * (fabsl(sq) + fabsl(b))) /* the rounded weight may be 0 or flip */
        whole = QMVI_VC_NAN | QMVI_VC_PINF | QMVI_VC_NINF;
    else
        whole = w > 0 ? same : flip;
    /* split: x*q is NaN for q = 0, b*Sum(x) is NaN for b = 0, opposite signs give Inf - Inf */
    if (v == 0 || s == 0 || b == 0 || (sq > 0) != (b > 0))
        split = QMVI_VC_NAN;
    else
        split = sq > 0 ? same : flip;
    return whole | split;
}

static void nonfinite(const qmvi_vrow *r, const float *x, long double u, int any_nan,
                      int any_inf_param, qmvi_vexact *out)
{
    out->finite = 0;
    out->E = NAN;
    out->S = 0;
    if (any_nan) { /* NaN meets every other operand, in any order */
        out->accept = QMVI_VC_NAN;
        return;
    }
    if (any_inf_param) { /* an Inf scale or bias: s*Sum(x q) and Sum(x (s q + b)) disagree */
        out->accept = 0;
        return;
    }
    int can_nan = 0, has_p = 0, has_n = 0, all_p = 1, all_n = 1;
    long double S = 0;
    for (int64_t i = 0; i < r->k; i++) {
        const int64_t g = i / r->group;
        const long double s = r->s[g], b = r->b[g], v = r->v[i];
        if (isfinite(x[i])) {
            S += fabsl((long double)x[i]) * (fabsl(s * v) + fabsl(b));
            continue;
        }
        const unsigned t = inf_term(r, x[i] > 0 ? 1 : -1, v, s, b, u);
        can_nan |= (t & QMVI_VC_NAN) != 0;
        has_p |= (t & QMVI_VC_PINF) != 0;
        has_n |= (t & QMVI_VC_NINF) != 0;
        all_p &= (t & QMVI_VC_PINF) != 0;
        all_n &= (t & QMVI_VC_NINF) != 0;
    }
    unsigned acc = (can_nan || (has_p && has_n)) ? QMVI_VC_NAN : 0u;
    if (all_p)
        acc |= QMVI_VC_PINF;
    if (all_n)
        acc |= QMVI_VC_NINF;
    if (r->c == 0) {
        acc = QMVI_VC_NAN; /* Inf * 0 */
    } else if (r->c < 0) {
        const unsigned p = acc & QMVI_VC_PINF, n = acc & QMVI_VC_NINF;
        acc = (acc & QMVI_VC_NAN) | (p ? QMVI_VC_NINF : 0u) | (n ? QMVI_VC_PINF : 0u);
    }
    out->accept = acc;
    out->S = S * fabsl(r->c);
}

void qmvi_verify_exact_value(const qmvi_vrow *r, const float *x, long double u, qmvi_vexact *out)
{
    const int64_t K = r->k, G = r->group, ng = G ? K / G : 0;
    int any_nan = 0, any_inf_param = 0, any_inf_x = 0;
    for (int64_t g = 0; g < ng; g++) {
        any_nan |= isnan(r->s[g]) || isnan(r->b[g]);
        any_inf_param |= isinf(r->s[g]) || isinf(r->b[g]);
    }
    for (int64_t i = 0; i < K; i++) {
        any_nan |= isnan(x[i]);
        any_inf_x |= isinf(x[i]);
    }
    if (any_nan || any_inf_param || any_inf_x) {
        nonfinite(r, x, u, any_nan, any_inf_param, out);
        return;
    }
    long double E = 0, S = 0;
    for (int64_t g = 0; g < ng; g++) {
        long double p = 0, pa = 0, xs = 0, xa = 0;
        for (int64_t i = g * G; i < (g + 1) * G; i++) {
            const long double xv = x[i], vv = r->v[i];
            p += xv * vv; /* each product is exact: 24 + 8 bits < 64 */
            pa += fabsl(xv * vv);
            xs += xv;
            xa += fabsl(xv);
        }
        E += (long double)r->s[g] * p + (long double)r->b[g] * xs;
        S += fabsl((long double)r->s[g]) * pa + fabsl((long double)r->b[g]) * xa;
    }
    out->finite = 1;
    out->accept = QMVI_VC_FINITE;
    out->E = E * r->c;
    out->S = S * fabsl(r->c);
}
