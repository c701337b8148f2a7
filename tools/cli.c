/*
 * cli.c - shared helpers of the qmv subcommands (see cli.h).
 */
#define _POSIX_C_SOURCE 200809L /* isatty, clock_gettime */

#include "cli.h"
#include "tool_util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *cli_cmd = "";

/* The length of the valid UTF-8 sequence at s (1-4), or 0 when s does not start one
 * (overlong forms, surrogates and code points past U+10FFFF are invalid). *cp: its code point. */
static int utf8_seq(const unsigned char *s, uint32_t *cp)
{
    const unsigned c = s[0];
    int n;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, v = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, v = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, v = c & 0x07, min = 0x10000;
    else
        return 0;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
            return 0;
        v = v << 6 | (s[i] & 0x3fu);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

/* Code points that must not reach a terminal raw: controls, and the bidirectional overrides
 * and isolates that reorder what follows them. */
static int unsafe_cp(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
}

/* Escapes s into a malloc'd string (NULL when out of memory). */
static char *escape_dup(const char *s)
{
    const size_t len = strlen(s);
    char *out = malloc(len * 4 + 1); /* at most 4 bytes out per byte in (\xNN; \u{202E}) */
    if (!out)
        return NULL;
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp;
        int n = utf8_seq(p, &cp);
        if (n == 0) {
            o += (size_t)sprintf(out + o, "\\x%02X", *p);
            p++;
        } else if (unsafe_cp(cp)) {
            o += (size_t)(cp < 0x80 ? sprintf(out + o, "\\x%02X", (unsigned)cp)
                                    : sprintf(out + o, "\\u{%04X}", (unsigned)cp));
            p += n;
        } else {
            memcpy(out + o, p, (size_t)n);
            o += (size_t)n;
            p += n;
        }
    }
    out[o] = '\0';
    return out;
}

const char *cli_esc(const char *s)
{
    static char *ring[8];
    static unsigned next;
    char *e = escape_dup(s ? s : "(null)");
    if (!e)
        return "(out of memory)";
    unsigned i = next++ % 8;
    free(ring[i]);
    ring[i] = e;
    return e;
}

static void vmsg(const char *kind, const char *fmt, va_list ap)
{
    /* The message quotes names and text from files: it is escaped whole (our own messages
     * hold no control characters). */
    char small[512], *msg = small;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n >= (int)sizeof small && (msg = malloc((size_t)n + 1)) != NULL)
        vsnprintf(msg, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    if (!msg)
        msg = small; /* out of memory: the truncated message */
    char *esc = n < 0 ? NULL : escape_dup(msg);
    fprintf(stderr, "qmv%s%s: %s%s\n", cli_cmd[0] ? " " : "", cli_cmd, kind,
            esc ? esc : "(message lost: out of memory)");
    free(esc);
    if (msg != small)
        free(msg);
}

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg("", fmt, ap);
    va_end(ap);
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg("warning: ", fmt, ap);
    va_end(ap);
}

int cli_qmv_error(const char *what, qmv_status st)
{
    const char *m = qmv_last_error();
    cli_error("%s: %s%s%s", what, qmv_status_string(st), m[0] ? ": " : "", m);
    return CLI_ERROR;
}

int cli_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    return tool_parse_i64(s, lo, hi, out);
}

int cli_parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

int cli_bad_value(const char *opt, const char *value)
{
    cli_error("bad value '%s' for --%s (see --help)", value, opt);
    return CLI_ERROR;
}

int cli_usage_error(void (*usage)(FILE *), const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg("", fmt, ap);
    va_end(ap);
    usage(stderr);
    return CLI_ERROR;
}

int cli_parse_threads(const char *arg, int *threads)
{
    int64_t v;
    if (cli_parse_i64(arg, 0, 4096, &v))
        return cli_bad_value("threads", arg);
    *threads = (int)v;
    return CLI_OK;
}

double cli_now(void)
{
    return tool_now();
}

/* ---- Input files -------------------------------------------------------------------------- */

static int model_open(const char *path, cli_file *f)
{
    qio_error e = {{0}};
    f->model = malloc(sizeof *f->model);
    if (!f->model || cli_model_open(path, f->model, &f->st, &e)) {
        cli_error("%s: %s", path, f->model ? e.msg : "out of memory");
        free(f->model);
        f->model = NULL;
        return -1;
    }
    f->kind = CLI_SAFETENSORS;
    return 0;
}

int cli_file_open(const char *path, cli_file *f)
{
    memset(f, 0, sizeof *f);
    f->path = path;
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return model_open(path, f);
    qio_error e = {{0}};
    if (qio_blob_load(path, &f->blob, &e)) {
        cli_error("%s: %s", path, e.msg);
        return -1;
    }
    int kind = qio_sniff(f->blob.data, f->blob.size);
    int rc = -1;
    if (kind == 1) {
        f->kind = CLI_NPY;
        rc = qio_npy_parse(f->blob.data, f->blob.size, &f->npy, &e);
    } else if (kind == 2) {
        f->kind = CLI_SAFETENSORS;
        rc = qio_st_parse(f->blob.data, f->blob.size, &f->st, &e);
    } else {
        qio_fail(&e, "neither a .npy nor a safetensors file");
    }
    if (rc) {
        cli_error("%s: %s%s", path,
                  kind == 1 ? "malformed .npy file: " : kind == 2 ? "malformed safetensors file: " : "",
                  e.msg);
        qio_blob_free(&f->blob);
        return -1;
    }
    return 0;
}

void cli_file_close(cli_file *f)
{
    if (!f)
        return;
    qio_st_free(&f->st);
    qio_blob_free(&f->blob);
    if (f->model) {
        cli_model_close(f->model);
        free(f->model);
    }
    memset(f, 0, sizeof *f);
}

int cli_float_dtype(qio_dtype dt, qmv_dtype *out)
{
    switch (dt) {
    case QIO_F32: *out = QMV_DTYPE_F32; return 0;
    case QIO_F16: *out = QMV_DTYPE_F16; return 0;
    case QIO_BF16:
    case QIO_U16: *out = QMV_DTYPE_BF16; return 0;
    default: return -1;
    }
}

qio_dtype cli_qio_dtype(qmv_dtype dt)
{
    return dt == QMV_DTYPE_F32 ? QIO_F32 : dt == QMV_DTYPE_F16 ? QIO_F16 : QIO_BF16;
}

/* The array of a .npy file, or of a safetensors file's one tensor (or the one named
 * `tensor`); NULL with the error printed. */
static const qio_tensor *one_array(const cli_file *f, const char *path, const char *tensor,
                                   const char *what)
{
    const qio_tensor *t = NULL;
    if (f->kind == CLI_NPY) {
        t = &f->npy;
    } else if (tensor) {
        t = qio_st_find(&f->st, tensor);
        if (!t)
            cli_error("%s: no tensor '%s'", path, tensor);
    } else if (f->st.count == 1) {
        t = &f->st.tensors[0].t;
    } else {
        cli_error("%s: %zu tensors; %s needs a file of one array (a .npy file)", path,
                  f->st.count, what);
    }
    return t;
}

int cli_index_load(const char *path, const char *what, int64_t experts, int64_t count,
                   int32_t **out)
{
    *out = NULL;
    cli_file f;
    if (cli_file_open(path, &f))
        return -1;
    const qio_tensor *t = one_array(&f, path, NULL, what);
    int rc = -1;
    static const qio_dtype ints[] = {QIO_U8, QIO_I8, QIO_U16, QIO_I16, QIO_U32, QIO_I32,
                                     QIO_U64, QIO_I64};
    size_t d = 0;
    while (t && d < sizeof ints / sizeof ints[0] && ints[d] != t->dtype)
        d++;
    if (!t) {
        goto done;
    } else if (d == sizeof ints / sizeof ints[0]) {
        cli_error("%s: %s must hold integers, not %s", path, what, qio_dtype_name(t->dtype));
        goto done;
    } else if (qio_tensor_count(t) != count) {
        cli_error("%s: %s holds %lld indices, x has %lld vectors", path, what,
                  (long long)qio_tensor_count(t), (long long)count);
        goto done;
    }
    int32_t *v = malloc((size_t)(count ? count : 1) * sizeof *v);
    if (!v) {
        cli_error("out of memory");
        goto done;
    }
    const size_t es = qio_dtype_size(t->dtype);
    const int is_signed = d % 2 == 1;
    for (int64_t i = 0; i < count; i++) {
        uint64_t u = 0; /* little-endian, any alignment */
        for (size_t b = 0; b < es; b++)
            u |= (uint64_t)t->data[(size_t)i * es + b] << (8 * b);
        int64_t x = (int64_t)u;
        if (is_signed && es < 8 && (u >> (8 * es - 1)) & 1)
            x = (int64_t)(u | ~(((uint64_t)1 << (8 * es)) - 1)); /* sign-extend */
        if ((!is_signed && u >= (uint64_t)experts) || (is_signed && (x < 0 || x >= experts))) {
            char val[32];
            if (is_signed)
                snprintf(val, sizeof val, "%lld", (long long)x);
            else
                snprintf(val, sizeof val, "%llu", (unsigned long long)u);
            cli_error("%s: %s[%lld] = %s: the stack has experts 0 to %lld", path, what,
                      (long long)i, val, (long long)experts - 1);
            free(v);
            goto done;
        }
        v[i] = (int32_t)u;
    }
    *out = v;
    rc = 0;
done:
    cli_file_close(&f);
    return rc;
}

int cli_array_load(const char *path, const char *tensor, const char *what, cli_array *out)
{
    memset(out, 0, sizeof *out);
    cli_file f;
    if (cli_file_open(path, &f))
        return -1;
    const qio_tensor *t = one_array(&f, path, tensor, what);
    int rc = -1;
    if (!t)
        goto done;
    qmv_dtype dt;
    const int f64 = t->dtype == QIO_F64;
    if (!f64 && cli_float_dtype(t->dtype, &dt)) {
        cli_error("%s: %s must be float32, float16, bfloat16 (uint16 bits) or float64, not %s",
                  path, what, qio_dtype_name(t->dtype));
        goto done;
    }
    if (t->ndim < 1 || t->shape[t->ndim - 1] < 1 || qio_tensor_count(t) < 1) {
        cli_error("%s: %s must have at least one dimension and no empty one", path, what);
        goto done;
    }
    out->dtype = f64 ? QMV_DTYPE_F32 : dt;
    out->from_f64 = f64;
    out->k = t->shape[t->ndim - 1];
    out->m = qio_tensor_count(t) / out->k;
    out->ndim = t->ndim;
    memcpy(out->shape, t->shape, sizeof out->shape);
    const size_t count = (size_t)qio_tensor_count(t);
    out->bytes = count * qmv_dtype_size(out->dtype);
    out->data = malloc(out->bytes);
    if (!out->data) {
        cli_error("%s: out of memory", path);
        goto done;
    }
    if (f64) {
        float *d = out->data;
        for (size_t i = 0; i < count; i++) {
            double v;
            memcpy(&v, t->data + i * 8, 8); /* unaligned view */
            d[i] = (float)v;
        }
    } else {
        memcpy(out->data, t->data, out->bytes);
    }
    rc = 0;
done:
    cli_file_close(&f);
    return rc;
}

void cli_array_free(cli_array *a)
{
    free(a->data);
    memset(a, 0, sizeof *a);
}

/* ---- Quantized tensors --------------------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

char *cli_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 1);
    if (p) {
        memcpy(p, a, la);
        memcpy(p + la, b, lb + 1);
    }
    return p;
}

static const qio_tensor *find_suffixed(const cli_file *f, const char *name, const char *suffix)
{
    char *k = cli_join(name, suffix);
    const qio_tensor *t = k ? qio_st_find(&f->st, k) : NULL;
    free(k);
    return t;
}

int cli_qtensor_names(const cli_file *f, const char ***names, size_t *count)
{
    *names = NULL;
    *count = 0;
    if (f->kind != CLI_SAFETENSORS)
        return 0;
    const char **v = malloc((f->st.count ? f->st.count : 1) * sizeof *v);
    if (!v)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < f->st.count; i++) {
        const qio_st_tensor *t = &f->st.tensors[i];
        if (t->t.dtype != QIO_U32 || !ends_with(t->name, ".weight"))
            continue;
        size_t len = strlen(t->name) - strlen(".weight");
        char *prefix = malloc(len + 1);
        if (!prefix) {
            free(v);
            return -1;
        }
        memcpy(prefix, t->name, len);
        prefix[len] = '\0';
        int has_scales = find_suffixed(f, prefix, ".scales") != NULL;
        free(prefix);
        if (has_scales)
            v[n++] = t->name; /* NAME.weight; callers strip the suffix */
    }
    *names = v;
    *count = n;
    return 0;
}

static int meta_int(const cli_file *f, const char *key, int *out)
{
    const char *v = qio_st_meta_get(&f->st, key);
    int64_t x;
    if (!v || cli_parse_i64(v, 1, 1024, &x))
        return -1;
    *out = (int)x;
    return 0;
}

/* The (bits, group) pairs of affine whose layout gives words W and groups G per row, narrowed
 * by the flags; each listed in `list` ("--bits 4 --group-size 64, ..."). */
static int affine_candidates(int64_t w, int64_t g, const cli_fmt_flags *fl, int *bits, int *group,
                             char *list, size_t list_size)
{
    static const int B[] = {1, 2, 3, 4, 5, 6, 8}, G[] = {32, 64, 128};
    int found = 0;
    size_t len = 0;
    list[0] = '\0';
    for (size_t i = 0; i < sizeof B / sizeof B[0]; i++) {
        for (size_t j = 0; j < 3; j++) {
            if ((fl->bits && fl->bits != B[i]) || (fl->group_size && fl->group_size != G[j]))
                continue;
            /* K = groups * group_size; words = K * bits / 32 (checked: the shapes come from
             * the file, and a zero-row matrix may claim any number of groups) */
            int64_t lhs, rhs;
            if (!tool_mul_ok(g, (int64_t)G[j] * B[i], &lhs) || !tool_mul_ok(w, 32, &rhs) ||
                lhs != rhs)
                continue;
            if (found++ == 0) {
                *bits = B[i];
                *group = G[j];
            }
            int n = snprintf(list + len, list_size - len, "%s--bits %d --group-size %d",
                             found > 1 ? ", " : "", B[i], G[j]);
            if (n > 0 && (size_t)n < list_size - len)
                len += (size_t)n;
        }
    }
    return found;
}

/* The fp mode whose layout gives words W and groups G per row (uint8 scales); -1 if none. */
static int fp_mode_of(int64_t w, int64_t g)
{
    if (g < 1 || w % g != 0)
        return -1;
    return w / g == 4 ? (int)QMV_MODE_MXFP4 : w / g == 2 ? (int)QMV_MODE_NVFP4
                                       : w / g == 8 ? (int)QMV_MODE_MXFP8 : -1;
}

/* What the shapes alone allow, for messages: "they fit --bits 3 --group-size 64, ..." */
static void shape_fits(int64_t w, int64_t g, int fp, char *out, size_t size)
{
    const cli_fmt_flags none = {0};
    char list[256];
    int bits, group, mode = fp ? fp_mode_of(w, g) : -1;
    if (fp && mode >= 0)
        snprintf(out, size, "the shapes fit %s", qmv_mode_name((qmv_mode)mode));
    else if (!fp && affine_candidates(w, g, &none, &bits, &group, list, sizeof list))
        snprintf(out, size, "the shapes fit affine %s", list);
    else
        snprintf(out, size, "the shapes fit no format qmv knows");
}

/* The tensors of matrix NAME: weight [N, W] or an expert stack [E, N, W], scales of the same
 * leading shape. 0, or -1 with the reason in why. */
static int matrix_tensors(const cli_file *f, const char *name, const qio_tensor **w,
                          const qio_tensor **s, const qio_tensor **b, char *why, size_t why_size)
{
    *w = find_suffixed(f, name, ".weight");
    *s = find_suffixed(f, name, ".scales");
    *b = find_suffixed(f, name, ".biases");
    if (!*w || !*s) {
        snprintf(why, why_size, "no tensors '%s.weight' and '%s.scales'", name, name);
        return -1;
    }
    const int nd = (*w)->ndim;
    int same = (nd == 2 || nd == 3) && (*s)->ndim == nd;
    for (int d = 0; same && d < nd - 1; d++)
        same = (*w)->shape[d] == (*s)->shape[d];
    if ((*w)->dtype != QIO_U32 || !same) {
        snprintf(why, why_size, "'%s.weight' must be a uint32 matrix [N, W] or expert stack "
                                "[E, N, W] and '%s.scales' [N, G] or [E, N, G] of the same "
                                "leading shape", name, name);
        return -1;
    }
    return 0;
}

int cli_qtensor_format(const cli_file *f, const char *name, const cli_fmt_flags *fl,
                       qmv_format *fmt, const char **source, char *why, size_t why_size)
{
    const qio_tensor *w, *s, *b;
    if (matrix_tensors(f, name, &w, &s, &b, why, why_size))
        return -1;
    const int nd = w->ndim;
    const int64_t W = w->shape[nd - 1], G = s->shape[nd - 1];
    const int fp = s->dtype == QIO_U8 || s->dtype == QIO_F8_E4M3 || s->dtype == QIO_F8_E8M0;
    const int flagged = fl->have_mode || fl->bits || fl->group_size;
    char fits[320];
    qmv_format out;
    const char *meta_mode = qio_st_meta_get(&f->st, CLI_META_MODE);
    const cli_qconfig_entry *conf = f->model ? cli_qconfig_find(&f->model->qconfig, name) : NULL;
    if (meta_mode || conf) {
        const char *from = meta_mode ? "the file's qmv metadata" : "config.json";
        if (meta_mode) {
            if (qmv_mode_from_name(meta_mode, &out.mode) != QMV_STATUS_OK ||
                meta_int(f, CLI_META_BITS, &out.bits) ||
                meta_int(f, CLI_META_GROUP, &out.group_size)) {
                snprintf(why, why_size, "bad qmv metadata (%s, %s, %s)", CLI_META_MODE,
                         CLI_META_BITS, CLI_META_GROUP);
                return -1;
            }
        } else if (!conf->quantized) {
            snprintf(why, why_size, "config.json says module '%s' is not quantized, but the "
                                    "weights hold it quantized", name);
            return -1;
        } else {
            out = conf->fmt;
        }
        if ((fl->have_mode && fl->mode != out.mode) || (fl->bits && fl->bits != out.bits) ||
            (fl->group_size && fl->group_size != out.group_size)) {
            snprintf(why, why_size, "the options contradict %s (%s, %d bits, group %d)", from,
                     qmv_mode_name(out.mode), out.bits, out.group_size);
            return -1;
        }
        *source = meta_mode ? "qmv metadata" : "config.json";
    } else if (flagged) {
        out.mode = fl->have_mode ? fl->mode : fp ? QMV_MODE_MXFP4 : QMV_MODE_AFFINE;
        if (!fl->have_mode && fp) {
            snprintf(why, why_size, "uint8 scales: name the mode with --mode");
            return -1;
        }
        qmv_format_default(out.mode, &out);
        if (out.mode == QMV_MODE_AFFINE) {
            char list[256];
            int bits = 0, group = 0;
            if (affine_candidates(W, G, fl, &bits, &group, list, sizeof list) == 0) {
                shape_fits(W, G, fp, fits, sizeof fits);
                snprintf(why, why_size, "%lld words and %lld groups per row do not fit the "
                                        "options (%s)", (long long)W, (long long)G, fits);
                return -1;
            }
            out.bits = bits;
            out.group_size = group;
            if (!fl->bits && !fl->group_size) /* only --mode affine: MLX's defaults if they fit */
                qmv_format_default(QMV_MODE_AFFINE, &out);
        } else {
            if (fl->bits)
                out.bits = fl->bits;
            if (fl->group_size)
                out.group_size = fl->group_size;
        }
        *source = "flags";
    } else if (fp) {
        const int mode = fp_mode_of(W, G);
        if (mode < 0) {
            snprintf(why, why_size, "uint8 scales, but %lld words and %lld groups per row match "
                                    "no fp mode", (long long)W, (long long)G);
            return -1;
        }
        qmv_format_default((qmv_mode)mode, &out);
        *source = "shapes";
    } else {
        char list[256];
        int bits = 0, group = 0, n = affine_candidates(W, G, fl, &bits, &group, list, sizeof list);
        if (n != 1) {
            if (n == 0)
                snprintf(why, why_size, "no affine bits/group size gives %lld words and %lld "
                                        "groups per row", (long long)W, (long long)G);
            else
                snprintf(why, why_size, "affine, but the bits and group size are not in the file: "
                                        "pass one of %s", list);
            return -1;
        }
        out.mode = QMV_MODE_AFFINE;
        out.bits = bits;
        out.group_size = group;
        *source = "shapes";
    }
    if (qmv_format_validate(&out) != QMV_STATUS_OK) {
        snprintf(why, why_size, "unsupported format: %s", qmv_last_error());
        return -1;
    }
    /* The shapes must be exactly this format's layout (checked arithmetic: the shapes come
     * from the file). */
    int64_t K, Kbits, W32;
    if (!tool_mul_ok(G, out.group_size, &K) || !tool_mul_ok(K, out.bits, &Kbits) ||
        !tool_mul_ok(W, 32, &W32)) {
        snprintf(why, why_size, "%lld words and %lld groups per row: the row length overflows",
                 (long long)W, (long long)G);
        return -1;
    }
    if (W32 != Kbits) {
        shape_fits(W, G, fp, fits, sizeof fits);
        snprintf(why, why_size, "%s %d-bit group %d (from %s): %lld groups per row need %lld "
                                "words, the weight has %lld (%s)", qmv_mode_name(out.mode),
                 out.bits, out.group_size, *source, (long long)G, (long long)(Kbits / 32),
                 (long long)W, fits);
        return -1;
    }
    if (out.mode == QMV_MODE_AFFINE) {
        qmv_dtype sd;
        if (cli_float_dtype(s->dtype, &sd) || s->dtype == QIO_U16) {
            snprintf(why, why_size, "affine scales must be F32, F16 or BF16, not %s",
                     qio_dtype_name(s->dtype));
            return -1;
        }
        int same = b && b->dtype == s->dtype && b->ndim == nd;
        for (int d = 0; same && d < nd; d++)
            same = b->shape[d] == s->shape[d];
        if (!same) {
            snprintf(why, why_size, "affine needs '%s.biases' of the same dtype and shape as the "
                                    "scales", name);
            return -1;
        }
    } else {
        if (!fp) {
            snprintf(why, why_size, "%s scales must be uint8, not %s", qmv_mode_name(out.mode),
                     qio_dtype_name(s->dtype));
            return -1;
        }
        if (b) {
            snprintf(why, why_size, "%s has no biases, but '%s.biases' exists",
                     qmv_mode_name(out.mode), name);
            return -1;
        }
    }
    *fmt = out;
    return 0;
}

/* NAME of "NAME.weight" in a fresh string (NULL when out of memory). */
static char *matrix_name(const char *weight_name)
{
    size_t len = strlen(weight_name);
    if (ends_with(weight_name, ".weight"))
        len -= strlen(".weight");
    char *p = malloc(len + 1);
    if (p) {
        memcpy(p, weight_name, len);
        p[len] = '\0';
    }
    return p;
}

int cli_flags_uniform(const cli_file *f, const char *const *names, size_t n,
                      const cli_fmt_flags *fl)
{
    if (!fl->have_mode && !fl->bits && !fl->group_size)
        return 0;
    qmv_format first = {0};
    char *first_name = NULL;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *name = matrix_name(names[i]), why[512];
        qmv_format fmt;
        const char *src;
        if (!name) {
            cli_error("out of memory");
            rc = -1;
        } else if (cli_qtensor_format(f, name, fl, &fmt, &src, why, sizeof why) == 0 &&
                   strcmp(src, "flags") == 0) {
            if (!first_name) {
                first = fmt;
                first_name = name;
                name = NULL;
            } else if (fmt.mode != first.mode || fmt.bits != first.bits ||
                       fmt.group_size != first.group_size) {
                cli_error("%s: the options fit matrices as different formats ('%s' as %s %d-bit "
                          "group %d, '%s' as %s %d-bit group %d): the matrices of a model may "
                          "differ in format, so options that do not name one format are not "
                          "applied to a whole file; give --bits and --group-size both, select "
                          "matrices with --tensor, or read the model directory with its "
                          "config.json", f->path, first_name, qmv_mode_name(first.mode),
                          first.bits, first.group_size, name, qmv_mode_name(fmt.mode), fmt.bits,
                          fmt.group_size);
                rc = -1;
            }
        }
        free(name);
    }
    free(first_name);
    return rc;
}

/* The blob of f that holds p (a model directory has one per shard); NULL if none. */
static const qio_blob *blob_of(const cli_file *f, const void *p)
{
    const size_t n = f->model ? f->model->n : 1;
    for (size_t i = 0; i < n; i++) {
        const qio_blob *b = f->model ? &f->model->blobs[i] : &f->blob;
        if ((const uint8_t *)p >= b->data && (const uint8_t *)p <= b->data + b->size)
            return b;
    }
    return NULL;
}

/* The tensor's data where it is aligned for `align`-byte elements (used in place, in the
 * mapping); else a copy in a fresh aligned buffer, recorded in *own (MLX does not pad its
 * headers, so its files need this). The copy goes a chunk at a time, each copied chunk's pages
 * released from the mapping, so the file is not resident twice. NULL: out of memory. */
static const void *view_or_copy(const cli_file *f, const qio_tensor *t, size_t align, void **own)
{
    if (t->nbytes && (uintptr_t)t->data % align == 0)
        return t->data;
    uint8_t *p = malloc(t->nbytes ? t->nbytes : 1);
    const qio_blob *b = blob_of(f, t->data);
    const size_t chunk = (size_t)16 << 20;
    for (size_t off = 0; p && off < t->nbytes; off += chunk) {
        const size_t n = t->nbytes - off < chunk ? t->nbytes - off : chunk;
        memcpy(p + off, t->data + off, n);
        if (b)
            qio_blob_release(b, t->data + off, n);
    }
    *own = p;
    return p;
}

/* The matrix NAME: its format, shape and sizes; its data too when `data` (else packed, scales
 * and biases stay NULL and nothing is read but the header and a global scale). */
static int qtensor_load(const cli_file *f, const char *name_in, const cli_fmt_flags *fl,
                        cli_qtensor *q, int data)
{
    memset(q, 0, sizeof *q);
    if (f->kind != CLI_SAFETENSORS) {
        cli_error("%s: quantized weights must be a safetensors file", f->path);
        return -1;
    }
    size_t len = strlen(name_in);
    if (ends_with(name_in, ".weight"))
        len -= strlen(".weight");
    q->name = malloc(len + 1);
    if (!q->name) {
        cli_error("out of memory");
        return -1;
    }
    memcpy(q->name, name_in, len);
    q->name[len] = '\0';
    char why[512];
    if (cli_qtensor_format(f, q->name, fl, &q->fmt, &q->fmt_source, why, sizeof why)) {
        cli_error("%s: tensor '%s': %s", f->path, q->name, why);
        cli_qtensor_free(q);
        return -1;
    }
    const qio_tensor *w, *s, *b;
    matrix_tensors(f, q->name, &w, &s, &b, why, sizeof why); /* checked by cli_qtensor_format */
    q->experts = w->ndim == 3 ? w->shape[0] : 0;
    q->rows = w->shape[w->ndim - 2];
    q->k = s->shape[s->ndim - 1] * q->fmt.group_size;
    q->scale_dtype = QMV_DTYPE_F32;
    if (q->fmt.mode == QMV_MODE_AFFINE)
        cli_float_dtype(s->dtype, &q->scale_dtype);
    q->packed_bytes = w->nbytes;
    q->scales_bytes = s->nbytes;
    q->biases_bytes = b ? b->nbytes : 0;
    if (data) {
        q->packed = view_or_copy(f, w, 4, &q->own_[0]);
        q->scales = view_or_copy(f, s, qio_dtype_size(s->dtype), &q->own_[1]);
        q->biases = b ? view_or_copy(f, b, qio_dtype_size(b->dtype), &q->own_[2]) : NULL;
    }
    if (data && (!q->packed || !q->scales || (b && !q->biases))) {
        cli_error("out of memory");
        cli_qtensor_free(q);
        return -1;
    }
    /* nvfp4's tensor-level scale: the option, the qmv metadata, or a NAME.global_scale tensor. */
    char *gk = cli_join(CLI_META_GS_PREFIX, q->name);
    const char *gs_meta = gk ? qio_st_meta_get(&f->st, gk) : NULL;
    free(gk);
    const qio_tensor *gs_t = find_suffixed(f, q->name, ".global_scale");
    if (fl->have_global_scale) {
        q->has_global_scale = 1;
        q->global_scale = fl->global_scale;
    } else if (gs_meta) {
        double v;
        if (cli_parse_double(gs_meta, &v) || !isfinite(v)) {
            cli_error("%s: tensor '%s': bad global scale '%s' in the metadata", f->path, q->name,
                      gs_meta);
            cli_qtensor_free(q);
            return -1;
        }
        q->has_global_scale = 1;
        q->global_scale = (float)v;
    } else if (gs_t) {
        if (gs_t->dtype != QIO_F32 || qio_tensor_count(gs_t) != 1) {
            cli_error("%s: '%s.global_scale' must hold one float32", f->path, q->name);
            cli_qtensor_free(q);
            return -1;
        }
        q->has_global_scale = 1;
        memcpy(&q->global_scale, gs_t->data, 4);
    }
    if (q->has_global_scale && q->fmt.mode != QMV_MODE_NVFP4) {
        cli_error("%s: tensor '%s': a global scale is only defined for nvfp4", f->path, q->name);
        cli_qtensor_free(q);
        return -1;
    }
    char *dk = cli_join(CLI_META_DTYPE_PREFIX, q->name);
    const char *dv = dk ? qio_st_meta_get(&f->st, dk) : NULL;
    free(dk);
    if (dv && qmv_dtype_from_name(dv, &q->orig_dtype) == QMV_STATUS_OK)
        q->has_orig_dtype = 1;
    return 0;
}

int cli_qtensor_load(const cli_file *f, const char *name, const cli_fmt_flags *fl,
                     cli_qtensor *q)
{
    return qtensor_load(f, name, fl, q, 1);
}

int cli_qtensor_describe(const cli_file *f, const char *name, const cli_fmt_flags *fl,
                         cli_qtensor *q)
{
    return qtensor_load(f, name, fl, q, 0);
}

void cli_qtensor_free(cli_qtensor *q)
{
    if (!q)
        return;
    free(q->name);
    for (int i = 0; i < 3; i++)
        free(q->own_[i]);
    if (q->file_) {
        cli_file_close(q->file_);
        free(q->file_);
    }
    memset(q, 0, sizeof *q);
}

int cli_open_matrix(const char *path, const char *tensor, const cli_fmt_flags *fl, cli_file *f,
                    cli_qtensor *q)
{
    memset(q, 0, sizeof *q);
    if (cli_file_open(path, f))
        return -1;
    const char *name = tensor;
    const char **names = NULL;
    size_t n = 0;
    if (!name) {
        if (cli_qtensor_names(f, &names, &n)) {
            cli_error("out of memory");
            cli_file_close(f);
            return -1;
        }
        if (n != 1) {
            if (n == 0)
                cli_error("%s: no quantized matrix (NAME.weight uint32 with NAME.scales)", path);
            else
                cli_error("%s: %zu quantized matrices; name one with --tensor (qmv info lists "
                          "them)", path, n);
            free(names);
            cli_file_close(f);
            return -1;
        }
        name = names[0];
    }
    int rc = cli_qtensor_load(f, name, fl, q);
    free(names);
    if (rc)
        cli_file_close(f);
    return rc;
}

int cli_qmatrix(const cli_qtensor *q, qmv_qmatrix *out)
{
    qmv_status st = qmv_qmatrix_dense(&q->fmt, q->scale_dtype, q->rows, q->k, q->packed,
                                      q->scales, q->biases, out);
    if (st != QMV_STATUS_OK)
        return cli_qmv_error("qmv_qmatrix_dense", st), -1;
    out->global_scale = q->has_global_scale ? &q->global_scale : NULL;
    if (q->experts) { /* the whole stack, experts one matrix apart */
        out->packed_bytes = q->packed_bytes;
        out->scales_bytes = q->scales_bytes;
        out->biases_bytes = q->biases_bytes;
        out->packed_batch_stride = q->rows * out->packed_row_stride;
        out->scales_batch_stride = q->rows * out->scales_row_stride;
    }
    return 0;
}

int cli_qtensor_expert(cli_qtensor *q, int64_t e, const char *path)
{
    if (!q->experts) {
        cli_error("%s: '%s' is one matrix, not an expert stack: --expert does not apply", path,
                  q->name);
        return -1;
    }
    if (e < 0 || e >= q->experts) {
        cli_error("%s: --expert %lld: '%s' has experts 0 to %lld", path, (long long)e, q->name,
                  (long long)q->experts - 1);
        return -1;
    }
    qmv_qmatrix stack, one;
    if (cli_qmatrix(q, &stack))
        return -1;
    qmv_status st = qmv_qmatrix_select(&stack, q->experts, e, &one);
    if (st != QMV_STATUS_OK)
        return cli_qmv_error("qmv_qmatrix_select", st), -1;
    q->packed = one.packed;
    q->scales = one.scales;
    q->biases = one.biases;
    q->packed_bytes /= (size_t)q->experts;
    q->scales_bytes /= (size_t)q->experts;
    q->biases_bytes /= (size_t)q->experts;
    q->experts = 0;
    return 0;
}

int cli_fmt_option(int ch, const char *arg, cli_fmt_flags *fl, int *rc)
{
    int64_t v = 0;
    double d = 0.0;
    switch (ch) {
    case CLI_OPT_MODE:
        if (qmv_mode_from_name(arg, &fl->mode) != QMV_STATUS_OK)
            *rc = cli_bad_value("mode", arg);
        fl->have_mode = 1;
        return 1;
    case CLI_OPT_BITS:
        if (cli_parse_i64(arg, 1, 8, &v))
            *rc = cli_bad_value("bits", arg);
        fl->bits = (int)v;
        return 1;
    case CLI_OPT_GROUP:
        if (cli_parse_i64(arg, 1, 1024, &v))
            *rc = cli_bad_value("group-size", arg);
        fl->group_size = (int)v;
        return 1;
    case CLI_OPT_GLOBAL_SCALE:
        if (cli_parse_double(arg, &d) || !isfinite((float)d)) {
            *rc = cli_bad_value("global-scale", arg);
            return 1;
        }
        fl->have_global_scale = 1;
        fl->global_scale = (float)d;
        return 1;
    default:
        return 0;
    }
}

int cli_expert_option(int ch, const char *arg, int64_t *expert, const char **index_path,
                      int *rc)
{
    if (ch != CLI_OPT_EXPERT && ch != CLI_OPT_EXPERTS)
        return 0;
    if (*expert != -1) {
        cli_error("--expert and --experts are given once, and not both");
        *rc = CLI_ERROR;
    } else if (ch == CLI_OPT_EXPERTS) {
        *expert = CLI_ALL_EXPERTS;
        *index_path = arg;
    } else if (cli_parse_i64(arg, 0, INT64_MAX, expert)) {
        *rc = cli_bad_value("expert", arg);
    }
    return 1;
}

int cli_load_matrix_x(const char *wpath, const char *tensor, int64_t expert,
                      const cli_fmt_flags *fl, const char *xpath, cli_qtensor *q, cli_array *x)
{
    memset(x, 0, sizeof *x);
    memset(q, 0, sizeof *q);
    cli_file *wf = malloc(sizeof *wf);
    if (!wf) {
        cli_error("out of memory");
        return -1;
    }
    if (cli_open_matrix(wpath, tensor, fl, wf, q)) {
        free(wf);
        return -1;
    }
    q->file_ = wf; /* q's data are views into it */
    if (q->experts && expert < 0 && expert != CLI_ALL_EXPERTS) {
        cli_error("%s: '%s' is a stack of %lld experts: choose one with --expert E", wpath,
                  q->name, (long long)q->experts);
        cli_qtensor_free(q);
        return -1;
    }
    if (expert == CLI_ALL_EXPERTS && !q->experts) {
        cli_error("%s: '%s' is one matrix, not an expert stack: --experts does not apply", wpath,
                  q->name);
        cli_qtensor_free(q);
        return -1;
    }
    if (expert >= 0 && cli_qtensor_expert(q, expert, wpath)) {
        cli_qtensor_free(q);
        return -1;
    }
    if (q->rows == 0) {
        /* y would be an empty array, which no command reads back (arrays have no empty
         * dimension): matvec and verify refuse alike. */
        cli_error("%s: matrix '%s' has no rows (N = 0): there is no product to compute", wpath,
                  q->name);
        cli_qtensor_free(q);
        return -1;
    }
    if (cli_array_load(xpath, NULL, "--x", x)) {
        cli_array_free(x);
        cli_qtensor_free(q);
        return -1;
    }
    return 0;
}

int cli_check_x_cols(const char *xpath, const cli_array *x, const cli_qtensor *q)
{
    if (x->k == q->k)
        return 0;
    cli_error("%s: x has %lld columns, the matrix '%s' has K = %lld", xpath, (long long)x->k,
              q->name, (long long)q->k);
    return -1;
}

/* ---- Output ------------------------------------------------------------------------------- */

int cli_is_npy_path(const char *path)
{
    return ends_with(path, ".npy") || ends_with(path, ".NPY");
}

int cli_out_kind(const char *path, cli_kind no_extension)
{
    const char *base = strrchr(path, '/'), *dot;
    base = base ? base + 1 : path;
    dot = strrchr(base, '.');
    if (!dot || dot == base)
        return (int)no_extension; /* "-", devices, names without an extension */
    if (strcasecmp(dot, ".npy") == 0)
        return CLI_NPY;
    if (strcasecmp(dot, ".safetensors") == 0)
        return CLI_SAFETENSORS;
    cli_error("%s: the output format is chosen by the extension, .npy or .safetensors; '%s' is "
              "neither", path, dot);
    return -1;
}

int cli_write_npy(const char *path, int force, const qio_tensor *t)
{
    qio_out o;
    qio_error e = {{0}};
    if (qio_out_open(path, force, &o, &e) || qio_npy_write(o.f, t, &e) || qio_out_commit(&o, &e)) {
        qio_out_abort(&o);
        cli_error("%s: %s", path, e.msg);
        return -1;
    }
    return 0;
}

int cli_write_safetensors(const char *path, int force, const qio_st_tensor *ts, size_t n,
                          const qio_st_meta *meta, size_t meta_n)
{
    qio_out o;
    qio_error e = {{0}};
    if (qio_out_open(path, force, &o, &e) || qio_st_write(o.f, ts, n, meta, meta_n, &e) ||
        qio_out_commit(&o, &e)) {
        qio_out_abort(&o);
        cli_error("%s: %s", path, e.msg);
        return -1;
    }
    return 0;
}

/* ---- Progress ----------------------------------------------------------------------------- */

void cli_progress_begin(cli_progress *p, const char *label, int mode)
{
    p->on = mode < 0 ? isatty(STDERR_FILENO) : mode;
    p->last = -1.0;
    p->label = label;
    cli_progress_update(p, 0.0);
}

void cli_progress_update(cli_progress *p, double fraction)
{
    if (!p->on)
        return;
    double t = cli_now();
    if (fraction < 1.0 && p->last >= 0 && t - p->last < 0.1)
        return; /* at most 10 redraws a second */
    p->last = t;
    if (fraction < 0)
        fraction = 0;
    if (fraction > 1)
        fraction = 1;
    char bar[31];
    int fill = (int)(fraction * 30.0);
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r%-24.24s [%s] %3d%%", cli_esc(p->label), bar, (int)(fraction * 100.0));
    fflush(stderr);
}

void cli_progress_end(cli_progress *p)
{
    if (!p->on)
        return;
    p->last = -1.0;
    cli_progress_update(p, 1.0);
    fputc('\n', stderr);
    p->on = 0;
}

int cli_progress_option(int ch, int *mode)
{
    switch (ch) {
    case CLI_OPT_PROGRESS: *mode = 1; return 1;
    case CLI_OPT_NO_PROGRESS: *mode = 0; return 1;
    default: return 0;
    }
}
