/*
 * cmd_info.c - qmv info FILE...: the tensors of .npy and safetensors files (dtype, shape,
 * bytes), the metadata, and each quantized matrix found (mode, bits, group size, where that
 * came from, N x K, sizes, bits per weight).
 */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qmv info [--mode M] [--bits B] [--group-size G] [--json] FILE|DIR...\n"
            "Lists the tensors of .npy and safetensors files or MLX model directories\n"
            "(config.json with model.safetensors or the shards of model.safetensors.index.json)\n"
            "and the quantized matrices in MLX's layout (NAME.weight uint32, NAME.scales,\n"
            "NAME.biases for affine), expert stacks [E, N, ...] included.\n"
            "The format of a matrix comes from the file's qmv metadata (written by qmv\n"
            "quantize), else the model's config.json (model-wide and per-module entries);\n"
            "else fp modes are recognised by their shapes, and affine needs --bits or\n"
            "--group-size when several combinations fit. Options that fit the matrices of a\n"
            "file as different formats are refused (exit 2).\n"
            "Exit status: 0, or 2 when a file cannot be read or is malformed (a matrix whose\n"
            "format is known but whose tensors or global scale are invalid included), or\n"
            "standard output cannot be written. A matrix whose format cannot be decided\n"
            "(\"format unknown\") is reported with the reason, and is not an error.\n"
            "--json prints one document {\"files\": [...]} instead: per file its kind, size,\n"
            "metadata, tensors, and matrices (format, source, experts, N, K; or \"error\").\n");
}

static void human(char *buf, size_t n, double bytes)
{
    if (bytes >= 1024.0 * 1024 * 1024)
        snprintf(buf, n, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
    else if (bytes >= 1024.0 * 1024)
        snprintf(buf, n, "%.2f MiB", bytes / (1024.0 * 1024));
    else if (bytes >= 1024.0)
        snprintf(buf, n, "%.2f KiB", bytes / 1024.0);
    else
        snprintf(buf, n, "%.0f B", bytes);
}

static json_t *jshape(const qio_tensor *t)
{
    json_t *a = json_array();
    for (int d = 0; a && d < t->ndim; d++)
        json_array_append_new(a, json_integer((json_int_t)t->shape[d]));
    return a;
}

/* One matrix: its format and sizes, or why the format is unknown (JSON when j, else text). */
static int info_matrix(cli_file *f, const char *name, const cli_fmt_flags *fl, json_t *j)
{
    qmv_format fmt;
    const char *src;
    char why[512], hb[32];
    if (cli_qtensor_format(f, name, fl, &fmt, &src, why, sizeof why)) {
        if (j)
            json_array_append_new(j, json_pack("{s:s, s:n, s:s}", "name", name, "format", "error", why));
        else
            printf("  %-40s format unknown: %s\n", cli_esc(name), cli_esc(why));
        return CLI_OK;
    }
    cli_qtensor q;
    if (cli_qtensor_describe(f, name, fl, &q))
        return CLI_ERROR; /* printed; a known format whose tensors are invalid is an error */
    const double total = (double)(q.packed_bytes + q.scales_bytes + q.biases_bytes);
    const double weights = (double)q.rows * (double)q.k * (double)(q.experts ? q.experts : 1);
    const double bpw = weights > 0 ? total * 8.0 / weights : 0.0;
    if (j) {
        json_t *m = json_pack("{s:s, s:{s:s, s:i, s:i}, s:s, s:I, s:I, s:I, s:f, s:f}", "name", name,
                              "format", "mode", qmv_mode_name(fmt.mode), "bits", fmt.bits,
                              "group_size", fmt.group_size, "source", src, "experts",
                              (json_int_t)q.experts, "n", (json_int_t)q.rows, "k", (json_int_t)q.k,
                              "bytes", total, "bits_per_weight", bpw);
        if (m && fmt.mode == QMV_MODE_AFFINE)
            json_object_set_new(m, "scale_dtype", json_string(qmv_dtype_name(q.scale_dtype)));
        if (m && q.has_global_scale)
            json_object_set_new(m, "global_scale", json_real(q.global_scale));
        if (m && q.has_orig_dtype)
            json_object_set_new(m, "from_dtype", json_string(qmv_dtype_name(q.orig_dtype)));
        json_array_append_new(j, m);
        cli_qtensor_free(&q);
        return CLI_OK;
    }
    human(hb, sizeof hb, total);
    char experts[48] = "";
    if (q.experts)
        snprintf(experts, sizeof experts, "%lld experts of ", (long long)q.experts);
    printf("  %-40s %s %d-bit group %d (from %s), %sN x K = %lld x %lld, %s, %.3f bits/weight",
           cli_esc(name), qmv_mode_name(fmt.mode), fmt.bits, fmt.group_size, src, experts,
           (long long)q.rows, (long long)q.k, hb, bpw);
    if (fmt.mode == QMV_MODE_AFFINE)
        printf(", %s scales and biases", qmv_dtype_name(q.scale_dtype));
    if (q.has_global_scale)
        printf(", global scale %.9g", (double)q.global_scale);
    if (q.has_orig_dtype)
        printf(", from %s", qmv_dtype_name(q.orig_dtype));
    printf("\n");
    cli_qtensor_free(&q);
    return CLI_OK;
}

/* The file's own description: kind, size, metadata, config.json (JSON object when j). */
static void info_header(const char *path, const cli_file *f, json_t *j)
{
    char hb[32], shape[256];
    const cli_model *m = f->model;
    if (j) {
        json_object_set_new(j, "path", json_string(path));
        json_object_set_new(j, "kind", json_string(f->kind == CLI_NPY ? "npy" : m ? "model" : "safetensors"));
        if (f->kind == CLI_NPY) {
            json_object_set_new(j, "dtype", json_string(qio_dtype_name(f->npy.dtype)));
            json_object_set_new(j, "shape", jshape(&f->npy));
            json_object_set_new(j, "bytes", json_integer((json_int_t)f->npy.nbytes));
            return;
        }
        json_object_set_new(j, "bytes", json_integer((json_int_t)(m ? m->bytes : f->blob.size)));
        if (m) {
            json_object_set_new(j, "files", json_integer((json_int_t)m->n));
            json_object_set_new(j, "config_quantization",
                                m->qconfig.present
                                    ? json_pack("{s:s, s:i, s:i, s:I}", "mode",
                                                qmv_mode_name(m->qconfig.global.fmt.mode), "bits",
                                                m->qconfig.global.fmt.bits, "group_size",
                                                m->qconfig.global.fmt.group_size, "module_entries",
                                                (json_int_t)m->qconfig.n_modules)
                                    : json_null());
        }
        json_t *meta = json_object();
        for (size_t i = 0; meta && i < f->st.meta_count; i++)
            json_object_set_new(meta, f->st.meta[i].key, json_string(f->st.meta[i].value));
        json_object_set_new(j, "metadata", meta);
        json_t *ts = json_array();
        for (size_t i = 0; ts && i < f->st.count; i++)
            json_array_append_new(ts, json_pack("{s:s, s:s, s:o, s:I}", "name", f->st.tensors[i].name,
                                                "dtype", qio_st_dtype_name(&f->st.tensors[i]),
                                                "shape", jshape(&f->st.tensors[i].t), "bytes",
                                                (json_int_t)f->st.tensors[i].t.nbytes));
        json_object_set_new(j, "tensors", ts);
        return;
    }
    if (f->kind == CLI_NPY) {
        human(hb, sizeof hb, (double)f->npy.nbytes);
        printf("%s: .npy, %s %s, %zu bytes of data (%s)\n", cli_esc(path), qio_dtype_name(f->npy.dtype),
               qio_shape_string(&f->npy, shape, sizeof shape), f->npy.nbytes, hb);
        if (f->npy.dtype == QIO_U16)
            printf("  (uint16: qmv reads it as bfloat16 bits)\n");
        return;
    }
    if (m) {
        human(hb, sizeof hb, (double)m->bytes);
        printf("%s: MLX model directory, %zu safetensors file%s, %zu tensors, %zu bytes (%s)\n",
               cli_esc(path), m->n, m->n == 1 ? "" : "s", f->st.count, m->bytes, hb);
        if (m->qconfig.present) {
            const qmv_format *g = &m->qconfig.global.fmt;
            printf("config.json quantization: %s %d-bit group %d, %zu per-module entr%s\n",
                   qmv_mode_name(g->mode), g->bits, g->group_size, m->qconfig.n_modules,
                   m->qconfig.n_modules == 1 ? "y" : "ies");
        } else {
            printf("config.json: no quantization recorded\n");
        }
    } else {
        human(hb, sizeof hb, (double)f->blob.size);
        printf("%s: safetensors, %zu tensors, %zu bytes (%s), header %zu bytes\n", cli_esc(path),
               f->st.count, f->blob.size, hb, f->st.header_bytes);
    }
    if (f->st.meta_count) {
        printf("metadata:\n");
        for (size_t i = 0; i < f->st.meta_count; i++)
            printf("  %s = %s\n", cli_esc(f->st.meta[i].key), cli_esc(f->st.meta[i].value));
    }
    printf("tensors:\n");
    for (size_t i = 0; i < f->st.count; i++) {
        const qio_tensor *t = &f->st.tensors[i].t;
        printf("  %-40s %-8s %-20s %12zu bytes\n", cli_esc(f->st.tensors[i].name),
               cli_esc(qio_st_dtype_name(&f->st.tensors[i])), qio_shape_string(t, shape, sizeof shape),
               t->nbytes);
    }
}

/* One FILE or DIR; with files (JSON mode) its object is appended there. */
static int info_file(const char *path, const cli_fmt_flags *fl, json_t *files)
{
    cli_file f;
    if (cli_file_open(path, &f))
        return CLI_ERROR;
    json_t *j = files ? json_object() : NULL;
    if (files && !j) {
        cli_file_close(&f);
        cli_error("out of memory");
        return CLI_ERROR;
    }
    if (j)
        json_array_append_new(files, j);
    info_header(path, &f, j);
    if (f.kind == CLI_NPY) {
        cli_file_close(&f);
        return CLI_OK;
    }
    int rc = CLI_OK;
    const char **names;
    size_t n;
    if (cli_qtensor_names(&f, &names, &n)) {
        cli_error("out of memory");
        cli_file_close(&f);
        return CLI_ERROR;
    }
    if (cli_flags_uniform(&f, names, n, fl))
        rc = CLI_ERROR; /* printed; the list below still says what each matrix could be */
    json_t *mats = j ? json_array() : NULL;
    if (j)
        json_object_set_new(j, "matrices", mats);
    else if (n)
        printf("quantized matrices:\n");
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]) - strlen(".weight");
        char *name = malloc(len + 1); /* names have any length */
        if (!name) {
            cli_error("out of memory");
            rc = CLI_ERROR;
            break;
        }
        memcpy(name, names[i], len);
        name[len] = '\0';
        if (info_matrix(&f, name, fl, mats) != CLI_OK)
            rc = CLI_ERROR;
        free(name);
    }
    free(names);
    cli_file_close(&f);
    return rc;
}

int cmd_info(int argc, char **argv)
{
    static const struct option lo[] = {
        CLI_FMT_LONG_OPTIONS,
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_fmt_flags fl = {0};
    int ch, rc = CLI_OK, json = 0;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (cli_fmt_option(ch, optarg, &fl, &rc)) {
            if (rc)
                return rc;
            continue;
        }
        if (ch == 'j') {
            json = 1;
            continue;
        }
        if (ch == 'h') {
            usage(stdout);
            return CLI_OK;
        }
        usage(stderr);
        return CLI_ERROR;
    }
    if (optind >= argc) {
        cli_error("no FILE given");
        usage(stderr);
        return CLI_ERROR;
    }
    json_t *files = json ? json_array() : NULL;
    for (int i = optind; i < argc; i++) {
        int r = info_file(argv[i], &fl, files);
        if (r > rc)
            rc = r;
    }
    if (json) {
        json_t *doc = json_pack("{s:o}", "files", files);
        if (!doc || json_dumpf(doc, stdout, JSON_INDENT(2)) || putchar('\n') == EOF) {
            cli_error("cannot write to standard output");
            rc = CLI_ERROR;
        }
        json_decref(doc);
    }
    return rc;
}
