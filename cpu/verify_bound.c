/*
 * verify_bound.c - how far an implementation accumulating at a given precision may be from
 * the exact value: the rigorous bound (any order) and the statistical one (a family of
 * orders, Azuma's inequality). Both derived in docs/VERIFY.md.
 */
#include <float.h>
#include <math.h>

#include "verify_internal.h"

qmvi_fprec qmvi_verify_prec(qmv_dtype t)
{
    switch (t) {
    case QMV_DTYPE_F16: return (qmvi_fprec){0x1p-11L, 0x1p-25L, 65504.0L, 65520.0L};
    case QMV_DTYPE_BF16: return (qmvi_fprec){0x1p-8L, 0x1p-134L, 0x1.fep127L, 0x1.ffp127L};
    default: return (qmvi_fprec){0x1p-24L, 0x1p-150L, (long double)FLT_MAX, 0x1.ffffffp127L};
    }
}

/* Standard model (Higham, ch. 3): every term reaches the sum through at most n = K + 4
 * roundings, so |error| <= ((1+u)^n - 1) S, plus one possible underflow per multiplication. */
long double qmvi_verify_rigorous(const qmvi_vrow *r, const qmvi_vexact *e, qmvi_fprec acc)
{
    const long double n = (long double)(r->k + 4);
    const long double g = expm1l(n * log1pl(acc.u)) * (1.0L + 0x1p-40L);
    return g * e->S + acc.eta * (long double)(3 * r->k + 4) * (1 + g) * r->F;
}

/*
 * Statistical bound. Each rounding contributes delta_j * z_j with |delta_j| <= u and z_j the
 * value rounded (a partial sum, a product, a dequantized weight). If the delta_j are mean-zero
 * given the earlier ones (a martingale, Ipsen & Zhou 2020), Azuma's inequality gives
 * P(|sum delta_j z_j| >= lambda u sqrt(sum z_j^2)) <= 2 exp(-lambda^2 / 2). The z_j of an
 * unknown order are not known; the bound takes the largest sum of squared partial sums over a
 * family of orders (sequential, 8 and 32 strided lanes, per group then across groups, and
 * affine's split s Sum(x q) + b Sum(x)), plus 4 roundings per term. The computed partial sums
 * differ from the exact ones by at most the same bound at each step, which adds
 * lambda u sqrt(sum_j Q_j) (Q_j the sum of squares up to step j, sequential order).
 */
long double qmvi_verify_stat(const qmvi_vrow *r, const float *x, qmvi_fprec acc,
                             long double lambda, long double *reach)
{
    const int64_t K = r->k, G = r->group, ng = G ? K / G : 0;
    double qseq = 0, sumq = 0, pseq = 0, q8 = 0, q32 = 0, qg = 0, gt = 0, qf = 0, ft = 0;
    double qprod = 0, pmax = 0, lane8[8] = {0}, lane32[32] = {0};
    for (int64_t g = 0; g < ng; g++) {
        const double s = r->s[g], b = r->b[g];
        double gp = 0, pq = 0, px = 0;
        for (int64_t i = g * G; i < (g + 1) * G; i++) {
            const double xv = x[i], sv = s * (double)r->v[i], t = xv * (sv + b);
            pseq += t;
            qseq += pseq * pseq;
            sumq += qseq;
            lane8[i & 7] += t;
            q8 += lane8[i & 7] * lane8[i & 7];
            lane32[i & 31] += t;
            q32 += lane32[i & 31] * lane32[i & 31];
            gp += t;
            qg += gp * gp;
            pq += xv * (double)r->v[i];
            px += xv;
            qf += s * s * pq * pq + b * b * px * px;
            const double a = fabs(xv) * (fabs(sv) + fabs(b));
            qprod += 4 * a * a;
            pmax = fmax(pmax, fmax(fabs(pseq), fmax(fabs(s * pq), fabs(b * px))));
            pmax = fmax(pmax, a);
        }
        gt += gp;
        qg += gt * gt;
        ft += s * pq + b * px;
        qf += ft * ft + s * s * pq * pq + b * b * px * px;
        pmax = fmax(pmax, fmax(fabs(gt), fabs(ft)));
    }
    double c8 = 0, c32 = 0;
    for (int l = 0; l < 32; l++) {
        if (l < 8) {
            c8 += lane8[l];
            q8 += c8 * c8;
        }
        c32 += lane32[l];
        q32 += c32 * c32;
    }
    double q = fmax(fmax(qseq, q8), fmax(fmax(q32, qg), qf)) + qprod;
    const double c = (double)r->c;
    q = q * c * c + pseq * pseq * c * c; /* the final global-scale product */
    sumq *= c * c;
    const long double lu = lambda * acc.u;
    const long double err = lu * (sqrtl((long double)q) + lu * sqrtl((long double)sumq));
    *reach = (long double)pmax * fabsl(r->c) + err;
    return err + acc.eta * (long double)(3 * K + 4) * 2 * r->F;
}
