/*
 * verify.c - qmv_verify(): validation, the order's result (exact mode), the loop over rows that
 * decodes W exactly, classifies every element and gathers the summary.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "elements.h"
#include "pack.h"
#include "verify_internal.h"

static qmv_status check_options(const qmv_verify_options *o, double *p)
{
    if (!o)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "qmv_verify: options are NULL");
    switch (o->mode) {
    case QMV_VERIFY_EXACT:
        if (o->order < 0 || o->order >= qmv_order_count())
            return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT,
                             "qmv_verify: order %d is not in [0, %d)", o->order,
                             qmv_order_count());
        break;
    case QMV_VERIFY_STAT:
        *p = o->p == 0 ? 1e-9 : o->p;
        if (!(*p > 0 && *p <= 0.5))
            return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT,
                             "qmv_verify: p = %g must be in (0, 0.5]", o->p);
        /* fall through */
    case QMV_VERIFY_BOUND:
        QMVI_TRY(qmvi_check_dtype(o->accum, "accum"));
        break;
    default:
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "qmv_verify: mode %d is not a mode",
                         (int)o->mode);
    }
    return QMV_STATUS_OK;
}

/* Scratch memory of one call. */
typedef struct {
    float *x;        /* the m vectors of x as float (exact) */
    float *v, *s, *b; /* one row of W */
    uint8_t *ref;    /* exact mode: the order's y, dense m x rows */
    double *detect;  /* bound / |E| per element with finite E != 0 */
} scratch;

static void scratch_free(scratch *s)
{
    free(s->x);
    free(s->v);
    free(s->s);
    free(s->b);
    free(s->ref);
    free(s->detect);
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Decodes row n of W into r (values, scales, biases as floats; row maxima). */
static void decode_row(const qmv_qmatrix *w, int64_t n, long double c, scratch *sc, qmvi_vrow *r)
{
    const qmvi_mode_traits *t = &qmvi_traits[w->format.mode];
    const int64_t K = w->k, G = w->format.group_size, ng = K / G;
    const uint32_t *row = K ? w->packed + n * w->packed_row_stride : NULL;
    long double vmax = 0, smax = 0, bmax = 0;
    for (int64_t i = 0; i < K; i++) {
        sc->v[i] = qmvi_elem_value(t->elem, qmvi_code_get(row, i, w->format.bits));
        vmax = fmaxl(vmax, fabsl((long double)sc->v[i]));
    }
    for (int64_t g = 0; g < ng; g++) {
        const int64_t si = n * w->scales_row_stride + g;
        sc->s[g] = qmvi_scale_value(t->scale, w->scale_dtype, w->scales, si);
        sc->b[g] = t->has_bias ? qmvi_load(w->scale_dtype, w->biases, si) : 0.0f;
        smax = fmaxl(smax, fabsl((long double)sc->s[g]));
        bmax = fmaxl(bmax, fabsl((long double)sc->b[g]));
    }
    *r = (qmvi_vrow){.k = K, .group = G, .affine = t->has_bias, .v = sc->v, .s = sc->s,
                     .b = sc->b, .c = c};
    r->wmax = smax * vmax + bmax;
    r->F = fmaxl(1.0L, r->wmax) * fmaxl(1.0L, smax) * fmaxl(1.0L, fabsl(c));
}

/* The class of one element in the bound modes, with its error and bound. */
typedef struct {
    int cls;
    long double err, bound, expected;
} verdict;

static verdict judge_bound(const qmv_verify_options *o, const qmvi_vrow *r, const float *x,
                           const qmvi_vexact *e, long double yv, qmv_dtype ydt, long double lambda)
{
    const qmvi_fprec pa = qmvi_verify_prec(o->accum), py = qmvi_verify_prec(ydt);
    verdict d = {QMV_VERIFY_UNCHECKED, 0, 0, e->E};
    const unsigned yc = qmvi_vclass_of(yv);
    if (!e->finite) {
        if (e->accept == 0)
            return d;
        /* finite terms whose sum could overflow could also meet the Inf terms as -Inf */
        if (!(e->accept == QMVI_VC_NAN) &&
            e->S + qmvi_verify_rigorous(r, e, pa) >= pa.max)
            return d;
        d.cls = (yc & e->accept) ? QMV_VERIFY_PASS : QMV_VERIFY_FAIL;
        d.err = d.cls == QMV_VERIFY_PASS ? 0 : INFINITY;
        d.expected = (e->accept & QMVI_VC_NAN) ? NAN
                     : (e->accept & QMVI_VC_PINF) ? INFINITY : -INFINITY;
        return d;
    }
    long double acc, reach;
    if (o->mode == QMV_VERIFY_BOUND) {
        acc = qmvi_verify_rigorous(r, e, pa);
        reach = e->S + acc;
    } else {
        acc = qmvi_verify_stat(r, x, pa, lambda, &reach);
    }
    if (reach >= pa.max || r->wmax * (1 + 4 * pa.u) >= pa.max)
        return d; /* an intermediate may overflow the accumulation type: no bound holds */
    const long double e_ld = (long double)(r->k + 8) * 0x1p-63L * e->S;
    const long double amax = fabsl(e->E) + acc;
    d.bound = acc + py.u * amax + py.eta + e_ld;
    const long double lo = fabsl(e->E) - d.bound, hi = fabsl(e->E) + d.bound;
    if (hi >= py.inf_at) {
        if (lo < py.inf_at)
            return d; /* y may round to the largest finite value or to Inf */
        /* the exact result overflows y's dtype: only the Inf of its sign is right */
        const unsigned want = e->E > 0 ? QMVI_VC_PINF : QMVI_VC_NINF;
        d.cls = yc == want ? QMV_VERIFY_PASS : QMV_VERIFY_FAIL;
        d.err = d.cls == QMV_VERIFY_PASS ? 0 : INFINITY;
        return d;
    }
    d.err = yc == QMVI_VC_FINITE ? fabsl(yv - e->E) : INFINITY;
    if (!(d.err <= d.bound))
        d.cls = QMV_VERIFY_FAIL;
    else
        d.cls = d.bound >= fabsl(e->E) ? QMV_VERIFY_WEAK : QMV_VERIFY_PASS;
    return d;
}

/* y's element i (j * rows + n) through its strides, and its bytes. */
static const uint8_t *y_ptr(const qmv_vectors *v, int64_t j, int64_t n)
{
    return (const uint8_t *)v->y + (size_t)(j * v->y_row_stride + n) * qmv_dtype_size(v->y_dtype);
}

qmv_status qmv_verify(const qmv_qmatrix *w, const qmv_vectors *v, const qmv_verify_options *opts,
                      uint8_t *classes, size_t classes_bytes, qmv_verify_summary *summary)
{
    double p = 0;
    if (!summary)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "qmv_verify: summary is NULL");
    QMVI_TRY(check_options(opts, &p));
    qmvi_qmatrix_info wi;
    QMVI_TRY(qmvi_check_qmatrix(w, 1, 1, &wi));
    QMVI_TRY(qmvi_check_vectors(w, &wi, v));
    if (v->batch != 1)
        return qmvi_fail(QMV_STATUS_INVALID_ARGUMENT, "qmv_verify: batch = %lld, must be 1",
                         (long long)v->batch);
    const int64_t M = v->m, N = w->rows, K = w->k;
    int64_t total;
    if (!qmvi_mul_ok(M, N, &total))
        return qmvi_fail(QMV_STATUS_OVERFLOW, "qmv_verify: m * rows overflows");
    if (classes && classes_bytes < (size_t)total)
        return qmvi_fail(QMV_STATUS_BUFFER_TOO_SMALL, "qmv_verify: classes_bytes %zu < %lld",
                         classes_bytes, (long long)total);
    const size_t es = qmv_dtype_size(v->y_dtype);
    const int64_t ng = K / w->format.group_size;
    scratch sc = {0};
    sc.x = malloc((size_t)(M * K) * sizeof(float) + 4);
    sc.v = malloc((size_t)K * sizeof(float) + 4);
    sc.s = malloc((size_t)ng * sizeof(float) + 4);
    sc.b = malloc((size_t)ng * sizeof(float) + 4);
    sc.detect = malloc((size_t)total * sizeof(double) + 8);
    if (opts->mode == QMV_VERIFY_EXACT)
        sc.ref = malloc((size_t)total * es + 4);
    if (!sc.x || !sc.v || !sc.s || !sc.b || !sc.detect ||
        (opts->mode == QMV_VERIFY_EXACT && !sc.ref)) {
        scratch_free(&sc);
        return qmvi_fail(QMV_STATUS_OUT_OF_MEMORY, "qmv_verify: out of memory");
    }
    if (opts->mode == QMV_VERIFY_EXACT) {
        qmv_vectors rv = *v;
        rv.y = sc.ref;
        rv.y_bytes = (size_t)total * es;
        rv.y_row_stride = N;
        rv.y_batch_stride = 0;
        const qmv_status st = qmv_qmv_order(opts->order, w, &rv);
        if (st != QMV_STATUS_OK) {
            scratch_free(&sc);
            return st; /* its message names the reason (e.g. the order's y dtype) */
        }
    }
    for (int64_t j = 0; j < M; j++)
        for (int64_t i = 0; i < K; i++)
            sc.x[j * K + i] = qmvi_load(v->x_dtype, v->x, j * v->x_row_stride + i);

    const long double c = wi.has_g ? (long double)wi.g_mul : 1.0L;
    const long double lambda = opts->mode == QMV_VERIFY_STAT ? sqrtl(2 * logl(2 / (long double)p)) : 0;
    const long double u_acc = opts->mode == QMV_VERIFY_EXACT ? 0x1p-24L
                                                             : qmvi_verify_prec(opts->accum).u;
    qmv_verify_summary sm = {.total = total, .first_fail = -1, .worst = -1};
    sm.lambda = (double)lambda;
    long double worst_ratio = -1, sum_d2 = 0, sum_e2 = 0, max_abs = -1, max_rel = -1;
    size_t ndetect = 0;
    for (int64_t n = 0; n < N; n++) {
        qmvi_vrow r;
        decode_row(w, n, c, &sc, &r);
        for (int64_t j = 0; j < M; j++) {
            const float *x = sc.x + j * K;
            qmvi_vexact e;
            qmvi_verify_exact_value(&r, x, u_acc, &e);
            const uint8_t *yp = y_ptr(v, j, n);
            const long double yv = qmvi_load(v->y_dtype, yp, 0);
            const int64_t idx = j * N + n;
            verdict d;
            if (opts->mode == QMV_VERIFY_EXACT) {
                const uint8_t *rp = sc.ref + (size_t)idx * es;
                const long double rv = qmvi_load(v->y_dtype, rp, 0);
                const int same = memcmp(yp, rp, es) == 0 || (opts->order != 0 && isnan(yv) && isnan(rv));
                d = (verdict){same ? QMV_VERIFY_PASS : QMV_VERIFY_FAIL,
                              same ? 0 : (isnan(yv) || isnan(rv) ? INFINITY : fabsl(yv - rv)), 0, rv};
            } else {
                d = judge_bound(opts, &r, x, &e, yv, v->y_dtype, lambda);
            }
            sm.count[d.cls]++;
            if (classes)
                classes[idx] = (uint8_t)d.cls;
            if (d.cls == QMV_VERIFY_FAIL && sm.first_fail < 0)
                sm.first_fail = idx;
            if (d.cls != QMV_VERIFY_UNCHECKED) {
                const long double ratio = d.cls == QMV_VERIFY_FAIL && !(d.bound > 0) ? INFINITY
                                          : d.bound > 0 ? d.err / d.bound : 0;
                const int counts = opts->mode != QMV_VERIFY_EXACT || d.cls == QMV_VERIFY_FAIL;
                if (counts && (ratio > worst_ratio ||
                               (opts->mode == QMV_VERIFY_EXACT && d.err > sm.worst_error))) {
                    worst_ratio = ratio;
                    sm.worst = idx;
                    sm.worst_y = (double)yv;
                    sm.worst_expected = (double)d.expected;
                    sm.worst_error = (double)d.err;
                    sm.worst_bound = (double)d.bound;
                    sm.worst_ratio = (double)ratio;
                }
            }
            if (e.finite && e.E != 0 && d.cls != QMV_VERIFY_UNCHECKED)
                sc.detect[ndetect++] = opts->mode == QMV_VERIFY_EXACT ? 0.0
                                                                     : (double)(d.bound / fabsl(e.E));
            if (e.finite && isfinite(yv)) {
                const long double diff = fabsl(yv - e.E);
                max_abs = fmaxl(max_abs, diff);
                if (e.E != 0)
                    max_rel = fmaxl(max_rel, diff / fabsl(e.E));
                sum_d2 += diff * diff;
                sum_e2 += e.E * e.E;
            }
        }
    }
    if (ndetect) {
        qsort(sc.detect, ndetect, sizeof(double), cmp_double);
        sm.detect_median = ndetect % 2 ? sc.detect[ndetect / 2]
                                       : 0.5 * (sc.detect[ndetect / 2 - 1] + sc.detect[ndetect / 2]);
        sm.detect_worst = sc.detect[ndetect - 1];
    } else {
        sm.detect_median = sm.detect_worst = NAN;
    }
    sm.max_abs_error = max_abs >= 0 ? (double)max_abs : NAN;
    sm.max_rel_error = max_rel >= 0 ? (double)max_rel : NAN;
    sm.nmse = max_abs >= 0 ? (sum_e2 > 0 ? (double)(sum_d2 / sum_e2) : (sum_d2 > 0 ? INFINITY : 0.0)) : NAN;
    scratch_free(&sc);
    *summary = sm;
    return qmvi_ok();
}
