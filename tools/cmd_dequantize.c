/*
 * cmd_dequantize.c - qmv dequantize: quantized matrices in MLX's layout back to floats, into a
 * .npy file (one matrix) or a safetensors file (every matrix, other tensors copied).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qmv dequantize [--dtype D] [--tensor NAME]... [--mode M] [--bits B]\n"
            "                      [--group-size G] [--global-scale G] [--threads T] [--force]\n"
            "                      [--progress|--no-progress] IN OUT\n"
            "\n"
            "Expands the quantized matrices of IN (a safetensors file or an MLX model\n"
            "directory, MLX's layout: NAME.weight, NAME.scales, NAME.biases) with\n"
            "qmv_dequantize; an expert stack [E, N, ...] becomes [E, N, K]. OUT ending in .npy\n"
            "receives one matrix (bfloat16 as uint16 bits); OUT ending in .safetensors (or\n"
            "without an extension) is a safetensors file with each matrix as NAME.weight and\n"
            "the other tensors and metadata copied (from every shard of a model directory);\n"
            "any other extension is refused.\n"
            "Values are those of docs/FORMATS.md: affine fl(fl(q*s) + b) in the scales' dtype,\n"
            "fp modes e*s, rounded once to D.\n"
            "\n"
            "  --dtype D        float32, float16 or bfloat16; default: the dtype the matrix was\n"
            "                   quantized from (qmv metadata), else the affine scales' dtype, else\n"
            "                   float32\n"
            "  --tensor NAME    only this matrix (repeatable; NAME or NAME.weight)\n"
            "  --mode, --bits, --group-size   the format of files without qmv metadata or a\n"
            "                   config.json: fp modes are recognised by their shapes, affine\n"
            "                   needs --bits or --group-size when several combinations fit;\n"
            "                   options that fit the matrices as different formats are refused\n"
            "  --global-scale G nvfp4: the tensor-level scale, when the file does not record it\n"
            "  --threads T      threads (default: all)\n"
            "  --force          replace OUT if it exists\n"
            "  --progress, --no-progress   progress bar on stderr (default: when a terminal)\n"
            "Exit status: 0 success, 2 usage error, unreadable or malformed input, write error.\n");
}

static int dequantize_one(const cli_qtensor *q, qmv_dtype dt, int threads, int progress,
                          void **out, size_t *out_bytes)
{
    const size_t es = qmv_dtype_size(dt);
    /* An expert stack [E, N, ...] is E * N independent rows in a row: one pass expands it. */
    const int64_t all = q->rows * (q->experts ? q->experts : 1);
    const size_t bytes = (size_t)all * (size_t)q->k * es;
    uint8_t *buf = malloc(bytes ? bytes : 1);
    if (!buf) {
        cli_error("out of memory for '%s'", q->name);
        return -1;
    }
    qmv_layout lay;
    qmv_layout_query(&q->fmt, q->scale_dtype, all, q->k, &lay);
    const size_t ses = q->fmt.mode == QMV_MODE_AFFINE ? qmv_dtype_size(q->scale_dtype) : 1;
    qmv_exec exec = QMV_EXEC_INIT;
    exec.num_threads = threads;
    int64_t chunk = q->k > 0 ? ((int64_t)1 << 22) / q->k : all;
    if (chunk < 1)
        chunk = 1;
    cli_progress pb;
    char label[64];
    snprintf(label, sizeof label, "dequantize %s", q->name);
    cli_progress_begin(&pb, label, progress);
    for (int64_t r0 = 0; r0 < all; r0 += chunk) {
        const int64_t rows = all - r0 < chunk ? all - r0 : chunk;
        qmv_qmatrix w;
        const size_t so = (size_t)r0 * (size_t)lay.groups_per_row * ses;
        qmv_status st = qmv_qmatrix_dense(&q->fmt, q->scale_dtype, rows, q->k,
                                          q->packed + r0 * lay.words_per_row,
                                          (const uint8_t *)q->scales + so,
                                          q->biases ? (const uint8_t *)q->biases + so : NULL, &w);
        w.global_scale = q->has_global_scale ? &q->global_scale : NULL;
        if (st == QMV_STATUS_OK)
            st = qmv_dequantize(&w, dt, buf + (size_t)r0 * (size_t)q->k * es,
                                (size_t)rows * (size_t)q->k * es, q->k, &exec);
        if (st != QMV_STATUS_OK) {
            cli_progress_end(&pb);
            free(buf);
            return cli_qmv_error(q->name, st), -1;
        }
        cli_progress_update(&pb, (double)(r0 + rows) / (double)all);
    }
    cli_progress_end(&pb);
    *out = buf;
    *out_bytes = bytes;
    return 0;
}

/* The expanded matrix as a tensor: [N, K], or [E, N, K] for an expert stack. */
static qio_tensor expanded(const cli_qtensor *q, void *buf, size_t bytes)
{
    qio_tensor t = {cli_qio_dtype(q->orig_dtype), 2, {q->rows, q->k}, buf, bytes};
    if (q->experts) {
        t.ndim = 3;
        t.shape[0] = q->experts;
        t.shape[1] = q->rows;
        t.shape[2] = q->k;
    }
    return t;
}

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Is tensor `tn` part of matrix `name` (NAME.weight/.scales/.biases/.global_scale)? */
static int part_of(const char *tn, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(tn, name, n) != 0)
        return 0;
    const char *s = tn + n;
    return strcmp(s, ".weight") == 0 || strcmp(s, ".scales") == 0 || strcmp(s, ".biases") == 0 ||
           strcmp(s, ".global_scale") == 0;
}

int cmd_dequantize(int argc, char **argv)
{
    enum { O_DTYPE = 1100, O_TENSOR, O_THREADS, O_FORCE };
    static const struct option lo[] = {
        {"dtype", required_argument, NULL, O_DTYPE},
        {"tensor", required_argument, NULL, O_TENSOR},
        CLI_FMT_LONG_OPTIONS,
        CLI_GLOBAL_SCALE_LONG_OPTION,
        {"threads", required_argument, NULL, O_THREADS},
        {"force", no_argument, NULL, O_FORCE},
        CLI_PROGRESS_LONG_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cli_fmt_flags fl = {0};
    int have_dtype = 0, threads = 0, force = 0, progress = -1, ch, rc = CLI_OK;
    qmv_dtype dtype = QMV_DTYPE_F32;
    const char **wanted = calloc((size_t)argc + 1, sizeof *wanted);
    size_t n_wanted = 0;
    if (!wanted)
        return CLI_ERROR;
    while ((ch = getopt_long(argc, argv, "hf", lo, NULL)) != -1) {
        if (cli_fmt_option(ch, optarg, &fl, &rc)) {
            if (rc)
                goto out;
            continue;
        }
        if (cli_progress_option(ch, &progress))
            continue;
        switch (ch) {
        case O_DTYPE:
            if (qmv_dtype_from_name(optarg, &dtype) != QMV_STATUS_OK) {
                rc = cli_bad_value("dtype", optarg);
                goto out;
            }
            have_dtype = 1;
            break;
        case O_TENSOR: wanted[n_wanted++] = optarg; break;
        case O_THREADS:
            if ((rc = cli_parse_threads(optarg, &threads)) != CLI_OK)
                goto out;
            break;
        case 'f':
        case O_FORCE: force = 1; break;
        case 'h': usage(stdout); goto out;
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
    rc = CLI_ERROR;
    const char *in = argv[optind], *outp = argv[optind + 1];
    const int out_kind = cli_out_kind(outp, CLI_SAFETENSORS);
    if (out_kind < 0)
        goto out;
    const int to_npy = out_kind == CLI_NPY;
    cli_file f;
    if (cli_file_open(in, &f))
        goto out;
    const char **names = NULL;
    size_t n_names = 0;
    cli_qtensor *qs = NULL;
    void **bufs = NULL;
    size_t *sizes = NULL, n_q = 0;
    qio_st_tensor *outs = NULL;
    if (f.kind != CLI_SAFETENSORS) {
        cli_error("%s: quantized weights must be a safetensors file", in);
        goto done;
    }
    if (cli_qtensor_names(&f, &names, &n_names)) {
        cli_error("out of memory");
        goto done;
    }
    /* The matrices to expand: the --tensor ones, or all of them. */
    const size_t n_sel = n_wanted ? n_wanted : n_names;
    qs = calloc(n_sel + 1, sizeof *qs);
    bufs = calloc(n_sel + 1, sizeof *bufs);
    sizes = calloc(n_sel + 1, sizeof *sizes);
    outs = calloc(f.st.count + 1, sizeof *outs);
    if (!qs || !bufs || !sizes || !outs) {
        cli_error("out of memory");
        goto done;
    }
    if (n_sel == 0) {
        cli_error("%s: no quantized matrix (NAME.weight uint32 with NAME.scales) in the file", in);
        goto done;
    }
    if (!n_wanted && cli_flags_uniform(&f, names, n_names, &fl))
        goto done;
    if (to_npy && n_sel != 1) {
        cli_error("%s: %zu quantized matrices; a .npy OUT holds one (name it with --tensor)", in,
                  n_sel);
        goto done;
    }
    for (size_t i = 0; i < n_sel; i++) {
        if (cli_qtensor_load(&f, n_wanted ? wanted[i] : names[i], &fl, &qs[i]))
            goto done;
        n_q = i + 1;
        qmv_dtype dt = have_dtype ? dtype
                       : qs[i].has_orig_dtype ? qs[i].orig_dtype
                       : qs[i].fmt.mode == QMV_MODE_AFFINE ? qs[i].scale_dtype
                                                           : QMV_DTYPE_F32;
        if (dequantize_one(&qs[i], dt, threads, progress, &bufs[i], &sizes[i]))
            goto done;
        qs[i].orig_dtype = dt; /* remembered for the output tensor */
    }
    if (to_npy) {
        qio_tensor t = expanded(&qs[0], bufs[0], sizes[0]);
        if (cli_write_npy(outp, force, &t) == 0)
            rc = CLI_OK;
        goto done;
    }
    /* safetensors: file order; each expanded matrix at its NAME.weight, its parts dropped */
    size_t n_out = 0;
    for (size_t i = 0; i < f.st.count; i++) {
        const qio_st_tensor *t = &f.st.tensors[i];
        size_t j = 0;
        while (j < n_q && !part_of(t->name, qs[j].name))
            j++;
        if (j == n_q) {
            outs[n_out++] = *t;
        } else if (has_suffix(t->name, ".weight")) {
            outs[n_out].name = t->name;
            outs[n_out++].t = expanded(&qs[j], bufs[j], sizes[j]);
        }
    }
    if (cli_write_safetensors(outp, force, outs, n_out, f.st.meta, f.st.meta_count) == 0)
        rc = CLI_OK;
done:
    for (size_t i = 0; i < n_q; i++) {
        cli_qtensor_free(&qs[i]);
        free(bufs[i]);
    }
    free(qs);
    free(bufs);
    free(sizes);
    free(outs);
    free(names);
    cli_file_close(&f);
out:
    free(wanted);
    return rc;
}
