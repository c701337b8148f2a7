/*
 * cmd_matvec.c - qmv matvec: y = x . W^T for a quantized W from a safetensors file and x from
 * a .npy file, on the CPU (qmv_qmv) or the GPU (qmv_cuda_qmv), into a .npy file.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#ifdef QMV_TOOL_CUDA
#include "cuda_tool.h"
#include "qmv_cuda.h"
#endif

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qmv matvec --weights W.safetensors [--tensor NAME] --x X.npy --out Y.npy\n"
            "                  [--y-dtype D] [--device cpu|cuda] [--kernel auto|qmv|fp_qmv]\n"
            "                  [--threads T] [--tier scalar|avx2|avx512|neon] [--mode M]\n"
            "                  [--bits B] [--group-size G] [--global-scale G] [--force]\n"
            "\n"
            "Computes y = x . W^T in qmv's canonical order (docs/ORDER.md): the same bits on\n"
            "every CPU tier, thread count and GPU. X has shape (K,) or (..., K) (float32,\n"
            "float16, bfloat16 as uint16 bits, or float64 rounded to float32); Y gets (N,) or\n"
            "(..., N). W is NAME.weight/.scales/.biases in MLX's layout; files written by qmv\n"
            "quantize carry their format, MLX's own need --mode/--bits/--group-size for affine\n"
            "(fp modes are recognised by their shapes).\n"
            "\n"
            "  --tensor NAME     the matrix (NAME or NAME.weight); needed when W has several\n"
            "  --y-dtype D       float32, float16 or bfloat16 (default: x's dtype)\n"
            "  --device D        cpu (default) or cuda (needs a qmv built with CUDA and a GPU)\n"
            "  --kernel K        cuda: auto (default), qmv or fp_qmv (same bits, speed differs)\n"
            "  --threads T       cpu: threads (default: all)\n"
            "  --tier T          cpu: restrict to one CPU tier (default: the best supported)\n"
            "  --global-scale G  nvfp4: the tensor-level scale, if the file does not record it\n"
            "  --force           replace Y if it exists\n"
            "Exit status: 0 success, 2 usage error, unreadable or mismatched input, runtime\n"
            "error. Y is written whole or not at all.\n");
}

int cmd_matvec(int argc, char **argv)
{
    enum { O_W = 1100, O_T, O_X, O_OUT, O_YD, O_DEV, O_KERNEL, O_THREADS, O_TIER, O_FORCE };
    static const struct option lo[] = {
        {"weights", required_argument, NULL, O_W},
        {"tensor", required_argument, NULL, O_T},
        {"x", required_argument, NULL, O_X},
        {"out", required_argument, NULL, O_OUT},
        {"y-dtype", required_argument, NULL, O_YD},
        {"device", required_argument, NULL, O_DEV},
        {"kernel", required_argument, NULL, O_KERNEL},
        {"threads", required_argument, NULL, O_THREADS},
        {"tier", required_argument, NULL, O_TIER},
        CLI_FMT_LONG_OPTIONS,
        CLI_GLOBAL_SCALE_LONG_OPTION,
        {"force", no_argument, NULL, O_FORCE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *wpath = NULL, *tensor = NULL, *xpath = NULL, *ypath = NULL;
    cli_fmt_flags fl = {0};
    int have_yd = 0, cuda = 0, kernel = 0, threads = 0, force = 0, ch, rc = CLI_OK;
    unsigned tiers = 0;
    qmv_dtype yd = QMV_DTYPE_F32;
    while ((ch = getopt_long(argc, argv, "hf", lo, NULL)) != -1) {
        if (cli_fmt_option(ch, optarg, &fl, &rc)) {
            if (rc)
                return rc;
            continue;
        }
        switch (ch) {
        case O_W: wpath = optarg; break;
        case O_T: tensor = optarg; break;
        case O_X: xpath = optarg; break;
        case O_OUT: ypath = optarg; break;
        case O_YD:
            if (qmv_dtype_from_name(optarg, &yd) != QMV_STATUS_OK)
                return cli_bad_value("y-dtype", optarg);
            have_yd = 1;
            break;
        case O_DEV:
            if (strcmp(optarg, "cpu") == 0)
                cuda = 0;
            else if (strcmp(optarg, "cuda") == 0)
                cuda = 1;
            else
                return cli_bad_value("device", optarg);
            break;
        case O_KERNEL:
            if (strcmp(optarg, "auto") == 0)
                kernel = 0;
            else if (strcmp(optarg, "qmv") == 0)
                kernel = 1;
            else if (strcmp(optarg, "fp_qmv") == 0)
                kernel = 2;
            else
                return cli_bad_value("kernel", optarg);
            break;
        case O_THREADS:
            if (cli_parse_threads(optarg, &threads))
                return CLI_ERROR;
            break;
        case O_TIER: {
            qmv_cpu_tier t;
            if (qmv_cpu_tier_from_name(optarg, &t) != QMV_STATUS_OK)
                return cli_bad_value("tier", optarg);
            if (!(qmv_cpu_tiers_supported() & t)) {
                cli_error("CPU tier %s is not supported on this processor/build", optarg);
                return CLI_ERROR;
            }
            tiers = t;
            break;
        }
        case 'f':
        case O_FORCE: force = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        default: usage(stderr); return CLI_ERROR;
        }
    }
    if (optind < argc)
        return cli_usage_error(usage, "unexpected argument '%s'", argv[optind]);
    if (!wpath || !xpath || !ypath)
        return cli_usage_error(usage, "--weights, --x and --out are required");
#ifndef QMV_TOOL_CUDA
    if (cuda) {
        cli_error("--device cuda: this qmv was built without the CUDA backend");
        return CLI_ERROR;
    }
    (void)kernel;
#endif
    cli_qtensor q;
    cli_array x;
    if (cli_load_matrix_x(wpath, tensor, &fl, xpath, &q, &x))
        return CLI_ERROR;
    rc = CLI_ERROR;
    void *y = NULL;
    if (cli_check_x_cols(xpath, &x, &q))
        goto done;
    if (!have_yd)
        yd = x.dtype;
    qmv_qmatrix wq;
    if (cli_qmatrix(&q, &wq))
        goto done;
    const size_t ybytes = (size_t)x.m * (size_t)q.rows * qmv_dtype_size(yd);
    y = malloc(ybytes ? ybytes : 1);
    if (!y) {
        cli_error("out of memory");
        goto done;
    }
    qmv_vectors vv = {.batch = 1,
                      .m = x.m,
                      .x_dtype = x.dtype,
                      .x = x.data,
                      .x_bytes = x.bytes,
                      .x_row_stride = x.k,
                      .y_dtype = yd,
                      .y = y,
                      .y_bytes = ybytes,
                      .y_row_stride = q.rows};
    if (cuda) {
#ifdef QMV_TOOL_CUDA
        if (cli_cuda_qmv(&wq, &vv, kernel) != CLI_OK)
            goto done;
#endif
    } else {
        qmv_exec exec = QMV_EXEC_INIT;
        exec.num_threads = threads;
        exec.cpu_tiers = tiers;
        qmv_status st = qmv_qmv(&wq, &vv, &exec);
        if (st != QMV_STATUS_OK) {
            cli_qmv_error("qmv_qmv", st);
            goto done;
        }
    }
    qio_tensor yt = {cli_qio_dtype(yd), x.ndim, {0}, y, ybytes};
    memcpy(yt.shape, x.shape, sizeof yt.shape);
    yt.shape[x.ndim - 1] = q.rows;
    if (cli_write_npy(ypath, force, &yt) == 0)
        rc = CLI_OK;
done:
    free(y);
    cli_array_free(&x);
    cli_qtensor_free(&q);
    return rc;
}
