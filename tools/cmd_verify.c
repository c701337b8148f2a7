/*
 * cmd_verify.c - qmv verify: checks an output y computed elsewhere against a quantized W and
 * x with qmv_verify() (include/qmv.h): bit for bit against an accumulation order (--exact),
 * within a rigorous bound (--bound) or a statistical one (--stat). The models are in
 * docs/VERIFY.md; this file parses, loads, calls the library and prints.
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qmv verify --weights W [--tensor NAME] [--expert E|--experts IDX] --x X.npy --y Y.npy\n"
            "                  [--exact [--order NAME] | --bound [--accum A] |\n"
            "                   --stat [--accum A] [--p P]] [--allow-unchecked] [--allow-weak]\n"
            "                  [--mode M] [--bits B] [--group-size G] [--global-scale G]\n"
            "       qmv verify --list-orders\n"
            "\n"
            "Checks Y (shape (..., N), float32/float16/bfloat16) against y = X . W^T.\n"
            "\n"
            "--exact (default): Y must equal the result of accumulation order NAME (default\n"
            "  qmv-v1, qmv's canonical order, docs/ORDER.md) in Y's dtype bit for bit. A Y in\n"
            "  another dtype (float64) is refused. --list-orders prints the orders known.\n"
            "--bound: for implementations summing in any order at precision A (--accum f32,\n"
            "  f16 or bf16; default f32): |Y - E| within a rigorous forward error bound, E the\n"
            "  exact value (computed in long double).\n"
            "--stat: for implementations summing at precision A in an order of a family\n"
            "  (sequential, strided lanes, blocked per group, affine's s*Sum(xq) + b*Sum(x)):\n"
            "  a probabilistic bound (Azuma's inequality on the rounding errors along the\n"
            "  partial sums) whose false-alarm probability per element is at most P (default\n"
            "  1e-9). Far more power than --bound at large K; its model and limits are in\n"
            "  docs/VERIFY.md.\n"
            "Non-finite outputs: the class (NaN, +-Inf) is derived from the exact math with IEEE\n"
            "rules, and Y must have it; a finite E that overflows Y's dtype needs the Inf of its\n"
            "sign.\n"
            "\n"
            "Elements are pass, fail, unchecked (no bound can be evaluated: an intermediate may\n"
            "overflow, or the result's class depends on the order) or weak (within a bound that\n"
            "is >= |E|: the check could not tell the answer from zero). Prints the counts, the\n"
            "worst element, the smallest detectable error relative to |E| (median, worst), and\n"
            "max abs/rel error and NMSE against E.\n"
            "\n"
            "  --tensor NAME      the matrix, when W has several\n"
            "  --expert E         the expert E (from 0) of an expert stack [E, N, ...] (MoE)\n"
            "  --experts IDX      one expert index per vector (integers, .npy or safetensors),\n"
            "                     as matvec --experts and MLX's gather_qmm: each used expert is\n"
            "                     checked on its vectors, one report each (--json: {\"experts\":\n"
            "                     [...], \"exit\"}); the worst exit status is the run's\n"
            "  --mode, --bits, --group-size, --global-scale   for files without qmv metadata\n"
            "  --allow-unchecked  unchecked elements do not fail the run\n"
            "  --allow-weak       weak elements do not fail the run\n"
            "  --json             one JSON document on stdout instead of the report (the same\n"
            "                     counts and measures, \"verdict\" and \"exit\"; non-finite\n"
            "                     numbers as null)\n"
            "\n"
            "Exit status: 0 every element passes; 1 an element fails, or has no check\n"
            "(unchecked, weak) without the --allow flag, or nothing at all was checked;\n"
            "2 usage error or unreadable input.\n");
}

static int list_orders(void)
{
    for (int i = 0; i < qmv_order_count(); i++) {
        qmv_order_info oi;
        if (qmv_order_get(i, &oi) != QMV_STATUS_OK)
            return cli_qmv_error("qmv_order_get", qmv_order_get(i, &oi));
        printf("%s (%s%s)\n  emulates: %s\n  confirmation: %s\n", oi.name,
               i == 0 ? "default, " : "", oi.confirmed ? "confirmed" : "NOT confirmed",
               oi.emulates, oi.confirmation);
    }
    return CLI_OK;
}

static void print_at(const char *what, int64_t idx, int64_t N, int64_t M)
{
    if (M > 1)
        printf("%s y[%lld][%lld]", what, (long long)(idx / N), (long long)(idx % N));
    else
        printf("%s y[%lld]", what, (long long)(idx % N));
}

/* The outcome of a run: exit status and why. */
typedef struct {
    int rc;
    int64_t checked;
    int no_check; /* nothing checked, or unchecked elements not allowed */
    int no_power; /* weak elements not allowed */
} outcome;

static outcome decide(const qmv_verify_summary *s, int allow_unchecked, int allow_weak)
{
    outcome v = {CLI_OK, 0, 0, 0};
    const int64_t unch = s->count[QMV_VERIFY_UNCHECKED], weak = s->count[QMV_VERIFY_WEAK];
    v.checked = s->count[QMV_VERIFY_PASS] + s->count[QMV_VERIFY_FAIL] + weak;
    v.no_check = v.checked == 0 || (unch && !allow_unchecked);
    v.no_power = weak && !allow_weak;
    if (s->count[QMV_VERIFY_FAIL] || v.no_check || v.no_power)
        v.rc = CLI_FAIL;
    return v;
}

static const char *verdict_name(const qmv_verify_summary *s, const outcome *v)
{
    return s->count[QMV_VERIFY_FAIL] ? "fail" : v->no_check ? "no_check"
                                      : v->no_power          ? "no_power"
                                                             : "pass";
}

static int report(const qmv_verify_summary *s, const qmv_verify_options *o, const char *order,
                  int64_t N, int64_t M, int allow_unchecked, int allow_weak)
{
    const int64_t pass = s->count[QMV_VERIFY_PASS], fail = s->count[QMV_VERIFY_FAIL];
    const int64_t unch = s->count[QMV_VERIFY_UNCHECKED], weak = s->count[QMV_VERIFY_WEAK];
    const outcome v = decide(s, allow_unchecked, allow_weak);
    if (s->worst >= 0) {
        print_at("worst:", s->worst, N, M);
        if (o->mode == QMV_VERIFY_EXACT)
            printf(" = %.9g, %s %.9g, |difference| %.9g\n", s->worst_y, order,
                   s->worst_expected, s->worst_error);
        else
            printf(" = %.9g, exact %.12g, |error| %.6g, bound %.6g (%.3g of the bound)\n",
                   s->worst_y, s->worst_expected, s->worst_error, s->worst_bound,
                   s->worst_ratio);
    }
    if (o->mode != QMV_VERIFY_EXACT)
        printf("detectable error relative to |E|: median %.3g, worst %.3g\n", s->detect_median,
               s->detect_worst);
    printf("error vs exact: max abs %.6g, max rel %.6g, NMSE %.6g\n", s->max_abs_error,
           s->max_rel_error, s->nmse);
    printf("elements: %lld pass, %lld fail, %lld unchecked, %lld weak (no detection power)\n",
           (long long)pass, (long long)fail, (long long)unch, (long long)weak);
    if (fail) {
        if (o->mode == QMV_VERIFY_EXACT)
            printf("FAIL: %lld of %lld elements differ; first", (long long)fail,
                   (long long)s->total);
        else
            printf("FAIL: %lld of %lld checked elements exceed the bound; first",
                   (long long)fail, (long long)v.checked);
        print_at(" at", s->first_fail, N, M);
        printf("\n");
        return v.rc;
    }
    if (v.checked == 0) {
        printf("NO CHECK: none of the %lld elements could be checked\n", (long long)s->total);
        return v.rc;
    }
    if (v.no_check)
        printf("NO CHECK: %lld elements unchecked (--allow-unchecked accepts that)\n",
               (long long)unch);
    if (v.no_power)
        printf("NO POWER: %lld elements have a bound >= |exact value| (--allow-weak accepts "
               "that)\n", (long long)weak);
    if (v.rc != CLI_OK)
        return v.rc;
    if (o->mode == QMV_VERIFY_EXACT)
        printf("PASS: every element is bit-identical to order %s\n", order);
    else
        printf("PASS: %lld elements within the bound%s\n", (long long)(pass + weak),
               unch ? " (unchecked ones allowed)" : "");
    return v.rc;
}

/* A JSON number, or null where JSON has none (NaN, infinities). */
static json_t *jnum(double d)
{
    return isfinite(d) ? json_real(d) : json_null();
}

/* The element index as [j, n]; null for none (-1). */
static json_t *jat(int64_t idx, int64_t N)
{
    return idx < 0 ? json_null() : json_pack("[I, I]", (json_int_t)(idx / N), (json_int_t)(idx % N));
}

/* `--json`: what the text report says, as one object appended to docs. */
static int report_json(const cli_qtensor *q, int64_t expert, const cli_array *x,
                       const cli_array *y, const qmv_verify_summary *s,
                       const qmv_verify_options *o, const char *order, int allow_unchecked,
                       int allow_weak, json_t *docs)
{
    static const char *const modes[] = {"exact", "bound", "stat"};
    const outcome v = decide(s, allow_unchecked, allow_weak);
    const int worst = s->worst >= 0;
    json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:o, s:o, s:o, s:o, s:o, s:{s:I, s:I, s:I, s:I}, "
        "s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:i}",
        "check", modes[o->mode], "matrix", q->name, "mode", qmv_mode_name(q->fmt.mode), "m",
        (json_int_t)x->m, "n", (json_int_t)q->rows, "k", (json_int_t)q->k, "y_dtype",
        qmv_dtype_name(y->dtype), "accum",
        o->mode == QMV_VERIFY_EXACT ? json_null() : json_string(qmv_dtype_name(o->accum)), "order",
        o->mode == QMV_VERIFY_EXACT ? json_string(order) : json_null(), "p",
        o->mode == QMV_VERIFY_STAT ? jnum(o->p) : json_null(), "lambda",
        o->mode == QMV_VERIFY_STAT ? jnum(s->lambda) : json_null(), "y_from_float64",
        json_boolean(y->from_f64), "elements", "pass", (json_int_t)s->count[QMV_VERIFY_PASS],
        "fail", (json_int_t)s->count[QMV_VERIFY_FAIL], "unchecked",
        (json_int_t)s->count[QMV_VERIFY_UNCHECKED], "weak", (json_int_t)s->count[QMV_VERIFY_WEAK],
        "first_fail", jat(s->first_fail, q->rows), "worst", jat(s->worst, q->rows), "worst_y",
        jnum(worst ? s->worst_y : NAN), "worst_expected", jnum(worst ? s->worst_expected : NAN),
        "worst_error", jnum(worst ? s->worst_error : NAN), "worst_bound",
        jnum(worst && o->mode != QMV_VERIFY_EXACT ? s->worst_bound : NAN), "detect_median",
        jnum(s->detect_median), "detect_worst", jnum(s->detect_worst), "max_abs_error",
        jnum(s->max_abs_error), "max_rel_error", jnum(s->max_rel_error), "nmse", jnum(s->nmse),
        "verdict", verdict_name(s, &v), "exit", v.rc);
    if (doc && expert >= 0)
        json_object_set_new(doc, "expert", json_integer((json_int_t)expert));
    if (!doc || json_array_append_new(docs, doc)) {
        cli_error("out of memory");
        return CLI_ERROR;
    }
    return v.rc;
}

static int parse_accum(const char *a, qmv_dtype *out)
{
    if (strcmp(a, "f32") == 0 || strcmp(a, "float32") == 0)
        *out = QMV_DTYPE_F32;
    else if (strcmp(a, "f16") == 0 || strcmp(a, "float16") == 0)
        *out = QMV_DTYPE_F16;
    else if (strcmp(a, "bf16") == 0 || strcmp(a, "bfloat16") == 0)
        *out = QMV_DTYPE_BF16;
    else
        return cli_bad_value("accum", a);
    return CLI_OK;
}

/* Checks y against q and x; the report goes to stdout, or as a JSON object into docs. */
static int run_verify(const cli_qtensor *q, int64_t expert, const cli_array *x,
                      const cli_array *y, const qmv_verify_options *o, const char *order,
                      int allow_unchecked, int allow_weak, json_t *docs)
{
    qmv_qmatrix w;
    if (cli_qmatrix(q, &w))
        return CLI_ERROR;
    qmv_status st;
    const qmv_vectors v = {.batch = 1, .m = x->m, .x_dtype = x->dtype, .x = x->data,
                           .x_bytes = x->bytes, .x_row_stride = x->k, .y_dtype = y->dtype,
                           .y = y->data, .y_bytes = y->bytes, .y_row_stride = q->rows};
    qmv_verify_summary s;
    st = qmv_verify(&w, &v, o, NULL, 0, &s);
    if (st != QMV_STATUS_OK)
        return cli_qmv_error("qmv_verify", st);
    if (docs)
        return report_json(q, expert, x, y, &s, o, order, allow_unchecked, allow_weak, docs);
    static const char *const names[] = {"--exact", "--bound", "--stat"};
    char ex[40] = "";
    if (expert >= 0)
        snprintf(ex, sizeof ex, " expert %lld", (long long)expert);
    printf("verify %s: %s%s, %lld elements (M = %lld, N = %lld, K = %lld, %s, y %s%s), ",
           names[o->mode], cli_esc(q->name), ex, (long long)s.total, (long long)x->m, (long long)q->rows,
           (long long)q->k, qmv_mode_name(q->fmt.mode), qmv_dtype_name(y->dtype),
           y->from_f64 ? " rounded from float64" : "");
    if (o->mode == QMV_VERIFY_EXACT)
        printf("order %s\n", order);
    else if (o->mode == QMV_VERIFY_BOUND)
        printf("accumulation %s, rigorous\n", qmv_dtype_name(o->accum));
    else
        printf("accumulation %s, statistical, P = %.3g per element (lambda = %.4g)\n",
               qmv_dtype_name(o->accum), o->p, s.lambda);
    return report(&s, o, order, q->rows, x->m, allow_unchecked, allow_weak);
}

/* The rows of a whose index is e, as an array of their own (data malloc'd). */
static int rows_of(const cli_array *a, const int32_t *idx, int32_t e, cli_array *out)
{
    *out = *a;
    out->m = 0;
    const size_t row = (size_t)a->k * qmv_dtype_size(a->dtype);
    out->data = malloc(a->bytes ? a->bytes : 1);
    if (!out->data)
        return cli_error("out of memory"), -1;
    for (int64_t j = 0; j < a->m; j++)
        if (idx[j] == e)
            memcpy((uint8_t *)out->data + (size_t)out->m++ * row, (const uint8_t *)a->data + (size_t)j * row, row);
    out->bytes = (size_t)out->m * row;
    out->ndim = 2;
    out->shape[0] = out->m;
    out->shape[1] = out->k;
    return 0;
}

/* --experts: vector j was multiplied by expert idx[j]; each used expert's vectors are checked
 * against that expert, one report each; the worst exit status is the run's. */
static int verify_experts(const cli_qtensor *q, const int32_t *idx, const cli_array *x,
                          const cli_array *y, const qmv_verify_options *o, const char *order,
                          int allow_unchecked, int allow_weak, json_t *docs, const char *wpath)
{
    int rc = CLI_OK;
    for (int64_t e = 0; e < q->experts && rc != CLI_ERROR; e++) {
        int used = 0;
        for (int64_t j = 0; j < x->m && !used; j++)
            used = idx[j] == e;
        if (!used)
            continue;
        cli_qtensor qe = *q; /* a view narrowed to expert e; q owns the buffers */
        cli_array xe, ye;
        if (cli_qtensor_expert(&qe, e, wpath))
            return CLI_ERROR;
        if (rows_of(x, idx, (int32_t)e, &xe))
            return CLI_ERROR;
        if (rows_of(y, idx, (int32_t)e, &ye)) {
            cli_array_free(&xe);
            return CLI_ERROR;
        }
        int r = run_verify(&qe, e, &xe, &ye, o, order, allow_unchecked, allow_weak, docs);
        cli_array_free(&xe);
        cli_array_free(&ye);
        if (r > rc)
            rc = r;
    }
    return rc;
}

int cmd_verify(int argc, char **argv)
{
    enum { O_W = 1100, O_T, O_X, O_Y, O_EXACT, O_BOUND, O_STAT, O_ACCUM, O_P, O_ORDER, O_LIST,
           O_AU, O_AW, O_JSON };
    static const struct option lo[] = {
        {"weights", required_argument, NULL, O_W},
        {"tensor", required_argument, NULL, O_T},
        CLI_EXPERT_LONG_OPTIONS,
        {"x", required_argument, NULL, O_X},
        {"y", required_argument, NULL, O_Y},
        {"exact", no_argument, NULL, O_EXACT},
        {"bound", no_argument, NULL, O_BOUND},
        {"stat", no_argument, NULL, O_STAT},
        {"accum", required_argument, NULL, O_ACCUM},
        {"p", required_argument, NULL, O_P},
        {"order", required_argument, NULL, O_ORDER},
        {"list-orders", no_argument, NULL, O_LIST},
        {"allow-unchecked", no_argument, NULL, O_AU},
        {"allow-weak", no_argument, NULL, O_AW},
        {"json", no_argument, NULL, O_JSON},
        CLI_FMT_LONG_OPTIONS,
        CLI_GLOBAL_SCALE_LONG_OPTION,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int64_t expert = -1;
    const char *index_path = NULL;
    const char *wpath = NULL, *tensor = NULL, *xpath = NULL, *ypath = NULL, *order = NULL;
    cli_fmt_flags fl = {0};
    int mode = 0, have_accum = 0, have_p = 0, list = 0, allow_u = 0, allow_w = 0, json = 0, ch,
        rc = CLI_OK;
    qmv_verify_options o = {.mode = QMV_VERIFY_EXACT, .accum = QMV_DTYPE_F32, .p = 1e-9};
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (cli_fmt_option(ch, optarg, &fl, &rc) || cli_expert_option(ch, optarg, &expert, &index_path, &rc)) {
            if (rc)
                return rc;
            continue;
        }
        switch (ch) {
        case O_W: wpath = optarg; break;
        case O_T: tensor = optarg; break;
        case O_X: xpath = optarg; break;
        case O_Y: ypath = optarg; break;
        case O_EXACT:
        case O_BOUND:
        case O_STAT:
            if (mode && mode != ch) {
                cli_error("--exact, --bound and --stat exclude each other");
                return CLI_ERROR;
            }
            mode = ch;
            break;
        case O_ACCUM:
            if (parse_accum(optarg, &o.accum))
                return CLI_ERROR;
            have_accum = 1;
            break;
        case O_P: {
            char *end;
            o.p = strtod(optarg, &end);
            if (*optarg == '\0' || *end || !(o.p > 0 && o.p <= 0.5))
                return cli_bad_value("p", optarg);
            have_p = 1;
            break;
        }
        case O_ORDER: order = optarg; break;
        case O_LIST: list = 1; break;
        case O_AU: allow_u = 1; break;
        case O_AW: allow_w = 1; break;
        case O_JSON: json = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        default: usage(stderr); return CLI_ERROR;
        }
    }
    if (optind < argc)
        return cli_usage_error(usage, "unexpected argument '%s'", argv[optind]);
    if (list)
        return list_orders();
    if (!wpath || !xpath || !ypath)
        return cli_usage_error(usage, "--weights, --x and --y are required");
    if (have_accum && mode != O_BOUND && mode != O_STAT) {
        cli_error("--accum goes with --bound or --stat");
        return CLI_ERROR;
    }
    if (have_p && mode != O_STAT) {
        cli_error("--p goes with --stat");
        return CLI_ERROR;
    }
    if (order && mode && mode != O_EXACT) {
        cli_error("--order goes with --exact");
        return CLI_ERROR;
    }
    o.mode = mode == O_BOUND ? QMV_VERIFY_BOUND : mode == O_STAT ? QMV_VERIFY_STAT
                                                                 : QMV_VERIFY_EXACT;
    qmv_order_info oi;
    if (qmv_order_get(0, &oi) != QMV_STATUS_OK)
        return cli_qmv_error("qmv_order_get", QMV_STATUS_INVALID_ARGUMENT);
    if (!order)
        order = oi.name;
    if (o.mode == QMV_VERIFY_EXACT && qmv_order_find(order, &o.order) != QMV_STATUS_OK)
        return cli_qmv_error("--order", QMV_STATUS_INVALID_ARGUMENT);
    cli_qtensor q;
    cli_array x, y;
    if (cli_load_matrix_x(wpath, tensor, expert, &fl, xpath, &q, &x))
        return CLI_ERROR;
    memset(&y, 0, sizeof y);
    rc = CLI_ERROR;
    int32_t *idx = NULL;
    if (cli_array_load(ypath, NULL, "--y", &y) || cli_check_x_cols(xpath, &x, &q))
        goto done;
    if (y.k != q.rows || y.m != x.m) {
        cli_error("%s: y has %lld rows of %lld, expected %lld rows of N = %lld", ypath,
                  (long long)y.m, (long long)y.k, (long long)x.m, (long long)q.rows);
        goto done;
    }
    if (y.from_f64 && o.mode == QMV_VERIFY_EXACT) {
        cli_error("%s: y is float64; --exact compares bits in the dtype the output was written "
                  "in (float32, float16 or bfloat16), and rounding would hide differences",
                  ypath);
        goto done;
    }
    json_t *docs = json ? json_array() : NULL;
    if (json && !docs) {
        cli_error("out of memory");
        goto done;
    }
    if (index_path) {
        if (cli_index_load(index_path, "--experts", q.experts, x.m, &idx) == 0)
            rc = verify_experts(&q, idx, &x, &y, &o, order, allow_u, allow_w, docs, wpath);
    } else {
        rc = run_verify(&q, expert, &x, &y, &o, order, allow_u, allow_w, docs);
    }
    if (docs && rc != CLI_ERROR) {
        json_t *doc = index_path ? json_pack("{s:O, s:i}", "experts", docs, "exit", rc)
                                 : json_incref(json_array_get(docs, 0));
        if (!doc || json_dumpf(doc, stdout, JSON_INDENT(2)) || putchar('\n') == EOF) {
            cli_error("cannot write to standard output");
            rc = CLI_ERROR;
        }
        json_decref(doc);
    }
    json_decref(docs);
done:
    free(idx);
    cli_array_free(&x);
    cli_array_free(&y);
    cli_qtensor_free(&q);
    return rc;
}
