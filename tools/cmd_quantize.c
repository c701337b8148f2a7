/*
 * cmd_quantize.c - qmv quantize: float matrices from a .npy or safetensors file into a
 * safetensors file in MLX's layout, with the quantization parameters in its metadata.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime (tool_util.h) */
#include <getopt.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qmv quantize --mode MODE [--bits B] [--group-size G] [--profile P]\n"
            "                    [--global-scale auto|VALUE] [--tensor NAME]... [--name NAME]\n"
            "                    [--threads T] [--force] [--progress|--no-progress] IN OUT\n"
            "\n"
            "Quantizes the 2-D float32/float16/bfloat16 tensors of IN (a .npy file, bfloat16 as\n"
            "uint16 bits, or a safetensors file) into OUT, a safetensors file in MLX's layout:\n"
            "NAME.weight (uint32 packed codes), NAME.scales and, for affine, NAME.biases, where\n"
            "NAME is the tensor's name without a trailing \".weight\" (for a .npy file: --name,\n"
            "default the file name without .npy). Other tensors are copied unchanged; a\n"
            "matrix of IN already quantized in another format than OUT's is refused (OUT's\n"
            "metadata states one format), as are two tensors that would give one name.\n"
            "OUT's metadata records mode, bits, group size, profile, each matrix's source dtype\n"
            "and nvfp4 global scale, so later qmv commands need no options.\n"
            "\n"
            "  --mode MODE          affine, mxfp4, nvfp4 or mxfp8 (required)\n"
            "  --bits B             affine: 1, 2, 3, 4, 5, 6 or 8 (default 4); fp modes: fixed\n"
            "  --group-size G       affine: 32, 64 or 128 (default 64); fp modes: fixed\n"
            "  --profile P          rounding profile: mlx-cpu (default; bit-exact with\n"
            "                       mx.quantize on MLX's CPU), mlx-cuda or ocp\n"
            "  --global-scale G     nvfp4 only: auto (the tensor's largest |w|, so that the\n"
            "                       E4M3 scales use their full range) or a positive number;\n"
            "                       default: none\n"
            "  --tensor NAME        quantize only this tensor (repeatable); default: every 2-D\n"
            "                       float tensor whose columns are a multiple of the group size\n"
            "  --name NAME          the matrix name for a .npy input\n"
            "  --threads T          threads (default: all)\n"
            "  --force              replace OUT if it exists\n"
            "  --progress, --no-progress   progress bar on stderr (default: when a terminal)\n"
            "Exit status: 0 success, 2 usage error, unreadable or malformed input (NaN or Inf\n"
            "weights included), or a write error. OUT is written whole or not at all.\n");
}

typedef struct {
    const char *name; /* input tensor name */
    const qio_tensor *t;
    int selected;
    int part; /* the scales or biases of a matrix the input already holds quantized */
} item;

static char *strdup_(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* NAME for a .npy input: the file name without directories and ".npy". */
static char *stem(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    char *s = strdup_(b);
    if (s && cli_is_npy_path(s))
        s[strlen(s) - 4] = '\0';
    return s;
}

typedef struct {
    qio_st_tensor *v;
    size_t n, cap;
    void **owned; /* buffers to free */
    size_t n_owned;
    char **names;
    size_t n_names;
} out_list;

static int push(out_list *o, char *name, qio_tensor t, void *owned)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 16;
        qio_st_tensor *v = realloc(o->v, cap * sizeof *v);
        void **ow = realloc(o->owned, cap * sizeof *ow);
        char **nm = realloc(o->names, cap * sizeof *nm);
        if (v)
            o->v = v;
        if (ow)
            o->owned = ow;
        if (nm)
            o->names = nm;
        if (!v || !ow || !nm)
            return -1;
        o->cap = cap;
    }
    o->v[o->n].name = name;
    o->v[o->n].t = t;
    o->n++;
    o->owned[o->n_owned++] = owned;
    o->names[o->n_names++] = name;
    return 0;
}

static void out_free(out_list *o)
{
    for (size_t i = 0; i < o->n_owned; i++)
        free(o->owned[i]);
    for (size_t i = 0; i < o->n_names; i++)
        free(o->names[i]);
    free(o->v);
    free(o->owned);
    free(o->names);
}

typedef struct {
    qmv_format fmt;
    qmv_profile profile;
    int gs_mode; /* 0 none, 1 auto, 2 value */
    float gs_value;
    int threads;
    int progress;
} qopts;

static char *matrix_prefix(const char *in_name);

/* Quantizes one tensor into o (weight, scales, biases) in row chunks. Adds metadata pairs. */
static int quantize_one(const char *path, const char *in_name, const qio_tensor *t, const qopts *q,
                        out_list *o, qio_st_meta *meta, size_t *meta_n, char *gs_text)
{
    qmv_dtype wdt;
    cli_float_dtype(t->dtype, &wdt);
    const int64_t n = t->shape[0], k = t->shape[1];
    const size_t es = qmv_dtype_size(wdt);
    qmv_layout lay;
    qmv_status st = qmv_layout_query(&q->fmt, wdt, n, k, &lay);
    if (st != QMV_STATUS_OK) {
        cli_error("%s: tensor '%s': %s", path, in_name, qmv_last_error());
        return -1;
    }
    char *prefix = matrix_prefix(in_name);
    if (!prefix)
        return -1;

    uint32_t *packed = malloc(lay.packed_bytes ? lay.packed_bytes : 1);
    void *scales = malloc(lay.scales_bytes ? lay.scales_bytes : 1);
    /* affine always has biases, even a zero-row matrix's empty tensor: readers require it */
    void *biases = q->fmt.mode == QMV_MODE_AFFINE ? malloc(lay.biases_bytes ? lay.biases_bytes : 1)
                                                  : NULL;
    /* Rows are copied out of the (unaligned) file view a chunk at a time. */
    int64_t chunk = k > 0 ? ((int64_t)1 << 22) / k : n;
    if (chunk < 1)
        chunk = 1;
    void *wbuf = malloc((size_t)(chunk < n ? chunk : n) * (size_t)k * es + 1);
    float *fbuf = malloc((size_t)k * sizeof(float) + 1);
    int rc = -1;
    if (!packed || !scales || (q->fmt.mode == QMV_MODE_AFFINE && !biases) || !wbuf || !fbuf) {
        cli_error("out of memory for tensor '%s'", in_name);
        goto fail;
    }
    qmv_exec exec = QMV_EXEC_INIT;
    exec.num_threads = q->threads;

    float gs = 0.0f;
    int has_gs = 0;
    if (q->gs_mode == 2) {
        gs = q->gs_value;
        has_gs = 1;
    } else if (q->gs_mode == 1) {
        /* auto: g = max |w|, so that w * 2688 / g spans E4M3 x E2M1's range exactly */
        float amax = 0.0f;
        for (int64_t r = 0; r < n; r++) {
            memcpy(wbuf, t->data + (size_t)r * (size_t)k * es, (size_t)k * es);
            qmv_convert(wdt, wbuf, (size_t)k * es, QMV_DTYPE_F32, fbuf, (size_t)k * 4, (size_t)k);
            for (int64_t i = 0; i < k; i++)
                if (fabsf(fbuf[i]) > amax) /* NaN compares false; quantize rejects it below */
                    amax = fabsf(fbuf[i]);
        }
        if (amax > 0.0f && isfinite(amax) && isfinite(2688.0f / amax)) {
            gs = amax;
            has_gs = 1;
        } else {
            cli_warn("%s: tensor '%s': no usable global scale (max |w| = %g); none used", path,
                     in_name, (double)amax);
        }
    }

    cli_progress pb;
    char label[64];
    snprintf(label, sizeof label, "quantize %s", prefix);
    cli_progress_begin(&pb, label, q->progress);
    const size_t ses = q->fmt.mode == QMV_MODE_AFFINE ? es : 1;
    for (int64_t r0 = 0; r0 < n; r0 += chunk) {
        const int64_t rows = n - r0 < chunk ? n - r0 : chunk;
        const size_t wb = (size_t)rows * (size_t)k * es;
        memcpy(wbuf, t->data + (size_t)r0 * (size_t)k * es, wb);
        qmv_quant_out qo = {packed + r0 * lay.words_per_row,
                            (size_t)rows * (size_t)lay.words_per_row * 4,
                            (uint8_t *)scales + (size_t)r0 * (size_t)lay.groups_per_row * ses,
                            (size_t)rows * (size_t)lay.groups_per_row * ses,
                            biases ? (uint8_t *)biases + (size_t)r0 * (size_t)lay.groups_per_row * ses
                                   : NULL,
                            biases ? (size_t)rows * (size_t)lay.groups_per_row * ses : 0};
        st = qmv_quantize(&q->fmt, q->profile, has_gs ? &gs : NULL, wdt, wbuf, wb, rows, k, k, &qo,
                          &exec);
        if (st != QMV_STATUS_OK) {
            cli_progress_end(&pb);
            if (st == QMV_STATUS_NON_FINITE)
                cli_error("%s: tensor '%s': %s (rows %lld-%lld)", path, in_name, qmv_last_error(),
                          (long long)r0, (long long)(r0 + rows - 1));
            else
                cli_error("%s: tensor '%s': %s: %s", path, in_name, qmv_status_string(st),
                          qmv_last_error());
            goto fail;
        }
        cli_progress_update(&pb, (double)(r0 + rows) / (double)n);
    }
    cli_progress_end(&pb);

    char *nw = cli_join(prefix, ".weight"), *ns = cli_join(prefix, ".scales");
    char *nb = biases ? cli_join(prefix, ".biases") : NULL;
    qio_tensor tw = {QIO_U32, 2, {n, lay.words_per_row}, (const uint8_t *)packed, lay.packed_bytes};
    qio_tensor ts = {q->fmt.mode == QMV_MODE_AFFINE ? cli_qio_dtype(wdt) : QIO_U8,
                     2,
                     {n, lay.groups_per_row},
                     scales,
                     lay.scales_bytes};
    qio_tensor tb = ts;
    tb.data = biases;
    if (!nw || !ns || (biases && !nb) || push(o, nw, tw, packed)) {
        free(nw);
        free(ns);
        free(nb);
        goto fail;
    }
    packed = NULL;
    if (push(o, ns, ts, scales)) {
        free(ns);
        free(nb);
        goto fail;
    }
    scales = NULL;
    if (biases) {
        if (push(o, nb, tb, biases)) {
            free(nb);
            goto fail;
        }
        biases = NULL;
    }
    meta[*meta_n].key = cli_join(CLI_META_DTYPE_PREFIX, prefix);
    meta[*meta_n].value = strdup_(qmv_dtype_name(wdt));
    (*meta_n)++;
    if (has_gs) {
        /* hex float: exact, and strtod reads it back */
        snprintf(gs_text, 48, "%a", (double)gs);
        meta[*meta_n].key = cli_join(CLI_META_GS_PREFIX, prefix);
        meta[*meta_n].value = strdup_(gs_text);
        (*meta_n)++;
    }
    rc = 0;
fail:
    free(prefix);
    free(packed);
    free(scales);
    free(biases);
    free(wbuf);
    free(fbuf);
    return rc;
}

/* NAME of a quantized tensor: the input name without a trailing ".weight" (malloc'd). */
static char *matrix_prefix(const char *in_name)
{
    size_t plen = strlen(in_name);
    if (plen > 7 && strcmp(in_name + plen - 7, ".weight") == 0)
        plen -= 7;
    char *prefix = malloc(plen + 1);
    if (prefix) {
        memcpy(prefix, in_name, plen);
        prefix[plen] = '\0';
    }
    return prefix;
}

typedef struct {
    char *out;        /* a tensor name of OUT */
    const char *from; /* the input tensor it comes from */
} out_name;

static int cmp_out_name(const void *a, const void *b)
{
    return strcmp(((const out_name *)a)->out, ((const out_name *)b)->out);
}

/* Two input tensors must not give the same tensor of OUT ("x" and "x.weight" both quantize to
 * "x.weight"; a quantized "x" writes "x.scales" over a copied "x.scales"). Checked before any
 * work, sorted, and blamed on the input. */
static int check_output_names(const char *in, const item *items, size_t count, int affine)
{
    static const char *const sfx[] = {".weight", ".scales", ".biases"};
    out_name *v = calloc(3 * count + 1, sizeof *v);
    size_t n = 0;
    int rc = -1;
    if (!v)
        goto oom;
    for (size_t i = 0; i < count; i++) {
        if (!items[i].selected) {
            v[n].from = items[i].name;
            if (!(v[n++].out = strdup_(items[i].name)))
                goto oom;
            continue;
        }
        char *prefix = matrix_prefix(items[i].name);
        if (!prefix)
            goto oom;
        for (int j = 0; j < (affine ? 3 : 2); j++) {
            v[n].from = items[i].name;
            if (!(v[n++].out = cli_join(prefix, sfx[j]))) {
                free(prefix);
                goto oom;
            }
        }
        free(prefix);
    }
    qsort(v, n, sizeof *v, cmp_out_name);
    rc = 0;
    for (size_t i = 1; i < n && rc == 0; i++) {
        if (strcmp(v[i - 1].out, v[i].out) == 0) {
            cli_error("%s: tensors '%s' and '%s' would both be written as '%s'; rename one of "
                      "them in the input, or quantize only one (--tensor)", in, v[i - 1].from,
                      v[i].from, v[i].out);
            rc = -1;
        }
    }
    goto out;
oom:
    cli_error("out of memory");
out:
    for (size_t i = 0; i < n; i++)
        free(v[i].out);
    free(v);
    return rc;
}

/* Matrices of the input that are already quantized are copied as they are, but OUT's metadata
 * states one format for the whole file: a matrix of another (or an undecidable) format would
 * then be decoded as garbage, so it is refused. Those that agree keep their own nvfp4 global
 * scale and source dtype (the input's qmv.* keys are otherwise dropped). */
static int check_passed_matrices(const char *in, const cli_file *f, const qmv_format *fmt,
                                 qio_st_meta *meta, size_t *meta_n)
{
    const char **names;
    size_t n;
    if (cli_qtensor_names(f, &names, &n)) {
        cli_error("out of memory");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *name = matrix_prefix(names[i]);
        if (!name) {
            cli_error("out of memory");
            rc = -1;
            break;
        }
        const cli_fmt_flags none = {0};
        qmv_format have;
        const char *src;
        char why[512];
        if (cli_qtensor_format(f, name, &none, &have, &src, why, sizeof why)) {
            cli_error("%s: '%s' is already quantized, in a format that cannot be decided (%s); "
                      "OUT's metadata would claim %s %d-bit group %d for it", in, name, why,
                      qmv_mode_name(fmt->mode), fmt->bits, fmt->group_size);
            rc = -1;
        } else if (have.mode != fmt->mode || have.bits != fmt->bits ||
                   have.group_size != fmt->group_size) {
            cli_error("%s: '%s' is already quantized as %s %d-bit group %d; OUT's metadata "
                      "would claim %s %d-bit group %d for it: quantize with its format, or "
                      "leave it out of the input", in, name, qmv_mode_name(have.mode), have.bits,
                      have.group_size, qmv_mode_name(fmt->mode), fmt->bits, fmt->group_size);
            rc = -1;
        } else {
            static const char *const keys[] = {CLI_META_GS_PREFIX, CLI_META_DTYPE_PREFIX};
            for (int j = 0; j < 2 && rc == 0; j++) {
                char *k = cli_join(keys[j], name);
                const char *v = k ? qio_st_meta_get(&f->st, k) : NULL;
                if (!k || !v) {
                    free(k);
                    rc = k ? 0 : -1;
                    continue;
                }
                meta[*meta_n].key = k;
                meta[*meta_n].value = strdup_(v);
                (*meta_n)++;
                if (!meta[*meta_n - 1].value)
                    rc = -1;
            }
            if (rc)
                cli_error("out of memory");
        }
        free(name);
    }
    free(names);
    return rc;
}

/* Marks the scales and biases of the matrices f already holds quantized (items[i] is
 * f's tensor i): they are copied with their matrix, never quantized themselves. */
static int mark_parts(const cli_file *f, item *items)
{
    const char **names;
    size_t n;
    if (cli_qtensor_names(f, &names, &n))
        return -1;
    for (size_t i = 0; i < n; i++) {
        char *name = matrix_prefix(names[i]);
        char *ks = name ? cli_join(name, ".scales") : NULL, *kb = name ? cli_join(name, ".biases") : NULL;
        if (!ks || !kb) {
            free(name), free(ks), free(kb), free(names);
            return -1;
        }
        for (const char *k = ks; k; k = k == ks ? kb : NULL) {
            const qio_tensor *t = qio_st_find(&f->st, k);
            if (t) /* a view inside f->st.tensors[j] */
                items[(const qio_st_tensor *)(const void *)((const char *)t - offsetof(qio_st_tensor, t)) -
                      f->st.tensors].part = 1;
        }
        free(name), free(ks), free(kb);
    }
    free(names);
    return 0;
}

int cmd_quantize(int argc, char **argv)
{
    enum { O_PROFILE = 1100, O_GS, O_TENSOR, O_NAME, O_THREADS, O_FORCE };
    static const struct option lo[] = {
        CLI_FMT_LONG_OPTIONS,
        {"profile", required_argument, NULL, O_PROFILE},
        {"global-scale", required_argument, NULL, O_GS},
        {"tensor", required_argument, NULL, O_TENSOR},
        {"name", required_argument, NULL, O_NAME},
        {"threads", required_argument, NULL, O_THREADS},
        {"force", no_argument, NULL, O_FORCE},
        CLI_PROGRESS_LONG_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_fmt_flags fl = {0};
    qopts q = {{QMV_MODE_AFFINE, 4, 64}, QMV_PROFILE_MLX_CPU, 0, 0.0f, 0, -1};
    const char **wanted = calloc((size_t)argc + 1, sizeof *wanted);
    size_t n_wanted = 0;
    const char *npy_name = NULL;
    int force = 0, ch, rc = CLI_OK;
    double d;
    if (!wanted)
        return CLI_ERROR;
    while ((ch = getopt_long(argc, argv, "hf", lo, NULL)) != -1) {
        if (cli_fmt_option(ch, optarg, &fl, &rc)) {
            if (rc)
                goto out;
            continue;
        }
        if (cli_progress_option(ch, &q.progress))
            continue;
        switch (ch) {
        case O_PROFILE:
            if (qmv_profile_from_name(optarg, &q.profile) != QMV_STATUS_OK) {
                rc = cli_bad_value("profile", optarg);
                goto out;
            }
            break;
        case O_GS:
            if (strcmp(optarg, "auto") == 0) {
                q.gs_mode = 1;
            } else if (cli_parse_double(optarg, &d) == 0 && d > 0 && isfinite((float)d)) {
                q.gs_mode = 2;
                q.gs_value = (float)d;
            } else {
                rc = cli_bad_value("global-scale", optarg);
                goto out;
            }
            break;
        case O_TENSOR: wanted[n_wanted++] = optarg; break;
        case O_NAME: npy_name = optarg; break;
        case O_THREADS:
            if ((rc = cli_parse_threads(optarg, &q.threads)) != CLI_OK)
                goto out;
            break;
        case 'f':
        case O_FORCE: force = 1; break;
        case 'h':
            usage(stdout);
            goto out;
        default:
            usage(stderr);
            rc = CLI_ERROR;
            goto out;
        }
    }
    if (argc - optind != 2) {
        rc = cli_usage_error(usage, "expected IN and OUT, got %d file argument(s)", argc - optind);
        goto out;
    }
    if (!fl.have_mode) {
        cli_error("--mode is required (affine, mxfp4, nvfp4 or mxfp8)");
        rc = CLI_ERROR;
        goto out;
    }
    qmv_format_default(fl.mode, &q.fmt);
    if (fl.bits)
        q.fmt.bits = fl.bits;
    if (fl.group_size)
        q.fmt.group_size = fl.group_size;
    if (qmv_format_validate(&q.fmt) != QMV_STATUS_OK) {
        cli_error("%s", qmv_last_error());
        rc = CLI_ERROR;
        goto out;
    }
    if (q.gs_mode && q.fmt.mode != QMV_MODE_NVFP4) {
        cli_error("--global-scale is for nvfp4 only");
        rc = CLI_ERROR;
        goto out;
    }
    rc = CLI_ERROR;
    const char *in = argv[optind], *outp = argv[optind + 1];
    cli_file f;
    if (cli_file_open(in, &f))
        goto out;
    /* The input tensors. */
    size_t count = f.kind == CLI_NPY ? 1 : f.st.count;
    item *items = calloc(count ? count : 1, sizeof *items);
    char *npy_stem = f.kind == CLI_NPY ? (npy_name ? strdup_(npy_name) : stem(in)) : NULL;
    out_list o = {0};
    qio_st_meta *meta = calloc(2 * count + 8 + (f.kind == CLI_SAFETENSORS ? f.st.meta_count : 0),
                               sizeof *meta);
    size_t meta_n = 0;
    char gs_text[48];
    if (!items || !meta || (f.kind == CLI_NPY && !npy_stem)) {
        cli_error("out of memory");
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        items[i].name = f.kind == CLI_NPY ? npy_stem : f.st.tensors[i].name;
        items[i].t = f.kind == CLI_NPY ? &f.npy : &f.st.tensors[i].t;
    }
    for (size_t w = 0; w < n_wanted; w++) {
        size_t i = 0;
        while (i < count && strcmp(items[i].name, wanted[w]) != 0)
            i++;
        if (i == count) {
            cli_error("%s: no tensor '%s'", in, wanted[w]);
            goto done;
        }
        items[i].selected = 1;
    }
    if (mark_parts(&f, items)) {
        cli_error("out of memory");
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        const qio_tensor *t = items[i].t;
        qmv_dtype dt;
        const int fits = !items[i].part && t->ndim == 2 && !cli_float_dtype(t->dtype, &dt) &&
                         (t->dtype != QIO_U16 || f.kind == CLI_NPY) &&
                         t->shape[1] % q.fmt.group_size == 0;
        if (n_wanted && items[i].selected && !fits) {
            if (items[i].part)
                cli_error("%s: tensor '%s' belongs to a matrix the file already holds quantized",
                          in, items[i].name);
            else
                cli_error("%s: tensor '%s' (%s, rank %d) cannot be quantized: it must be a 2-D "
                          "float32/float16/bfloat16 matrix whose columns are a multiple of %d",
                          in, items[i].name, qio_dtype_name(t->dtype), t->ndim, q.fmt.group_size);
            goto done;
        }
        if (!n_wanted) {
            items[i].selected = fits;
            if (!fits && !items[i].part && t->ndim == 2 && !cli_float_dtype(t->dtype, &dt) && t->dtype != QIO_U16)
                cli_warn("%s: tensor '%s' not quantized: %lld columns are not a multiple of %d",
                         in, items[i].name, (long long)t->shape[1], q.fmt.group_size);
        }
    }
    if (check_output_names(in, items, count, q.fmt.mode == QMV_MODE_AFFINE) || check_passed_matrices(in, &f, &q.fmt, meta, &meta_n))
        goto done;
    size_t n_sel = 0;
    for (size_t i = 0; i < count; i++) {
        if (items[i].selected) {
            n_sel++;
            if (quantize_one(in, items[i].name, items[i].t, &q, &o, meta, &meta_n, gs_text))
                goto done;
        } else {
            char *nm = strdup_(items[i].name);
            if (!nm || push(&o, nm, *items[i].t, NULL)) {
                free(nm);
                cli_error("out of memory");
                goto done;
            }
        }
    }
    if (n_sel == 0) {
        cli_error("%s: no tensor to quantize (2-D float32/float16/bfloat16 with columns a "
                  "multiple of %d)", in, q.fmt.group_size);
        goto done;
    }
    char bits[16], group[16];
    snprintf(bits, sizeof bits, "%d", q.fmt.bits);
    snprintf(group, sizeof group, "%d", q.fmt.group_size);
    const qio_st_meta fixed[] = {
        {"format", "mlx"},
        {CLI_META_VERSION, (char *)QMV_VERSION_STRING},
        {CLI_META_MODE, (char *)qmv_mode_name(q.fmt.mode)},
        {CLI_META_BITS, bits},
        {CLI_META_GROUP, group},
        {CLI_META_PROFILE, (char *)qmv_profile_name(q.profile)},
    };
    const size_t nfixed = sizeof fixed / sizeof fixed[0];
    /* Our keys first, then the input's own metadata (its "format" and old qmv keys dropped). */
    qio_st_meta *all = calloc(nfixed + meta_n + (f.kind == CLI_SAFETENSORS ? f.st.meta_count : 0),
                              sizeof *all);
    if (!all) {
        cli_error("out of memory");
        goto done;
    }
    size_t na = 0;
    for (size_t i = 0; i < nfixed; i++)
        all[na++] = fixed[i];
    for (size_t i = 0; i < meta_n; i++)
        all[na++] = meta[i];
    if (f.kind == CLI_SAFETENSORS)
        for (size_t i = 0; i < f.st.meta_count; i++)
            if (strcmp(f.st.meta[i].key, "format") != 0 && strncmp(f.st.meta[i].key, "qmv.", 4) != 0)
                all[na++] = f.st.meta[i];
    if (cli_write_safetensors(outp, force, o.v, o.n, all, na) == 0)
        rc = CLI_OK;
    free(all);
done:
    for (size_t i = 0; i < meta_n; i++) {
        free(meta[i].key);
        free(meta[i].value);
    }
    free(meta);
    out_free(&o);
    free(items);
    free(npy_stem);
    cli_file_close(&f);
out:
    free(wanted);
    return rc;
}
