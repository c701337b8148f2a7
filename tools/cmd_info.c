/*
 * cmd_info.c - qmv info FILE...: the tensors of .npy and safetensors files (dtype, shape,
 * bytes), the metadata, and each quantized matrix found (mode, bits, group size, where that
 * came from, N x K, sizes, bits per weight).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qmv info [--mode M] [--bits B] [--group-size G] FILE|DIR...\n"
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
            "(\"format unknown\") is reported with the reason, and is not an error.\n");
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

static int info_file(const char *path, const cli_fmt_flags *fl)
{
    cli_file f;
    if (cli_file_open(path, &f))
        return CLI_ERROR;
    char shape[256], hb[32];
    if (f.kind == CLI_NPY) {
        human(hb, sizeof hb, (double)f.npy.nbytes);
        printf("%s: .npy, %s %s, %zu bytes of data (%s)\n", cli_esc(path), qio_dtype_name(f.npy.dtype),
               qio_shape_string(&f.npy, shape, sizeof shape), f.npy.nbytes, hb);
        if (f.npy.dtype == QIO_U16)
            printf("  (uint16: qmv reads it as bfloat16 bits)\n");
        cli_file_close(&f);
        return CLI_OK;
    }
    int rc = CLI_OK;
    if (f.model) {
        const cli_model *m = f.model;
        human(hb, sizeof hb, (double)m->bytes);
        printf("%s: MLX model directory, %zu safetensors file%s, %zu tensors, %zu bytes (%s)\n",
               cli_esc(path), m->n, m->n == 1 ? "" : "s", f.st.count, m->bytes, hb);
        if (m->qconfig.present) {
            const qmv_format *g = &m->qconfig.global.fmt;
            printf("config.json quantization: %s %d-bit group %d, %zu per-module entr%s\n",
                   qmv_mode_name(g->mode), g->bits, g->group_size, m->qconfig.n_modules,
                   m->qconfig.n_modules == 1 ? "y" : "ies");
        } else {
            printf("config.json: %s\n", "no quantization recorded");
        }
    } else {
        human(hb, sizeof hb, (double)f.blob.size);
        printf("%s: safetensors, %zu tensors, %zu bytes (%s), header %zu bytes\n", cli_esc(path),
               f.st.count, f.blob.size, hb, f.st.header_bytes);
    }
    if (f.st.meta_count) {
        printf("metadata:\n");
        for (size_t i = 0; i < f.st.meta_count; i++)
            printf("  %s = %s\n", cli_esc(f.st.meta[i].key), cli_esc(f.st.meta[i].value));
    }
    printf("tensors:\n");
    for (size_t i = 0; i < f.st.count; i++) {
        const qio_tensor *t = &f.st.tensors[i].t;
        printf("  %-40s %-8s %-20s %12zu bytes\n", cli_esc(f.st.tensors[i].name),
               cli_esc(qio_st_dtype_name(&f.st.tensors[i])),
               qio_shape_string(t, shape, sizeof shape), t->nbytes);
    }
    const char **names;
    size_t n;
    if (cli_qtensor_names(&f, &names, &n)) {
        cli_error("out of memory");
        cli_file_close(&f);
        return CLI_ERROR;
    }
    if (cli_flags_uniform(&f, names, n, fl))
        rc = CLI_ERROR; /* printed; the list below still says what each matrix could be */
    if (n)
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
        qmv_format fmt;
        const char *src;
        char why[512];
        if (cli_qtensor_format(&f, name, fl, &fmt, &src, why, sizeof why)) {
            printf("  %-40s format unknown: %s\n", cli_esc(name), cli_esc(why));
            free(name);
            continue;
        }
        cli_qtensor q;
        if (cli_qtensor_load(&f, name, fl, &q)) {
            rc = CLI_ERROR; /* printed; a known format whose tensors are invalid is an error */
            free(name);
            continue;
        }
        const double total = (double)(q.packed_bytes + q.scales_bytes + q.biases_bytes);
        human(hb, sizeof hb, total);
        const double weights = (double)q.rows * (double)q.k * (double)(q.experts ? q.experts : 1);
        char experts[48] = "";
        if (q.experts)
            snprintf(experts, sizeof experts, "%lld experts of ", (long long)q.experts);
        printf("  %-40s %s %d-bit group %d (from %s), %sN x K = %lld x %lld, %s, %.3f bits/weight",
               cli_esc(name), qmv_mode_name(fmt.mode), fmt.bits, fmt.group_size, src, experts,
               (long long)q.rows, (long long)q.k, hb, weights > 0 ? total * 8.0 / weights : 0.0);
        if (fmt.mode == QMV_MODE_AFFINE)
            printf(", %s scales and biases", qmv_dtype_name(q.scale_dtype));
        if (q.has_global_scale)
            printf(", global scale %.9g", (double)q.global_scale);
        if (q.has_orig_dtype)
            printf(", from %s", qmv_dtype_name(q.orig_dtype));
        printf("\n");
        cli_qtensor_free(&q);
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
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_fmt_flags fl = {0};
    int ch, rc = CLI_OK;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (cli_fmt_option(ch, optarg, &fl, &rc)) {
            if (rc)
                return rc;
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
    for (int i = optind; i < argc; i++) {
        int r = info_file(argv[i], &fl);
        if (r > rc)
            rc = r;
    }
    return rc;
}
