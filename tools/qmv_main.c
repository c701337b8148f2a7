/*
 * qmv_main.c - the qmv command: dispatches `qmv SUBCOMMAND [options]` to tools/cmd_*.c.
 *
 *   qmv quantize | dequantize | matvec | verify | bench | info   (qmv SUBCOMMAND --help)
 *
 * Exit status: 0 success, 1 a verification failed, 2 usage error, bad input or runtime error
 * (a failed write to stdout included).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *what;
} commands[] = {
    {"quantize", cmd_quantize, "quantize float matrices (.npy / safetensors) into MLX's layout"},
    {"dequantize", cmd_dequantize, "expand quantized matrices back to floats"},
    {"matvec", cmd_matvec, "y = x . W^T on the CPU (or the GPU) into a .npy file"},
    {"verify", cmd_verify, "check a y computed elsewhere: bit-exact, or within an error bound"},
    {"bench", cmd_bench, "benchmark-and-verify run of every CPU tier (and CUDA kernel)"},
    {"info", cmd_info, "tensors, dtypes, shapes, detected quantization and sizes of a file"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: qmv SUBCOMMAND [options]   (qmv SUBCOMMAND --help for its options)\n\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].what);
    fprintf(f, "\n  --version   the tool's and the library's versions\n"
               "Exit status: 0 success, 1 a verification failed, 2 usage error, unreadable or\n"
               "malformed input, or a runtime error.\n");
}

/* Everything printed to stdout must have reached it: a failed write (a full disk, a closed
 * stdout, a broken pipe with SIGPIPE ignored) is an error, whatever the subcommand returned.
 * fclose of a stdout that was closed before the start fails with EBADF; that loses nothing
 * when nothing was written. */
static int close_stdout(int rc)
{
    int bad = fflush(stdout) != 0 || ferror(stdout);
    int err = errno;
    if (fclose(stdout) != 0 && !bad && errno != EBADF) {
        bad = 1;
        err = errno;
    }
    if (!bad)
        return rc;
    fprintf(stderr, "qmv%s%s: write error on standard output: %s\n", cli_cmd[0] ? " " : "",
            cli_cmd, strerror(err));
    return CLI_ERROR;
}

static int run(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_ERROR;
    }
    const char *c = argv[1];
    if (strcmp(c, "--help") == 0 || strcmp(c, "-h") == 0 || strcmp(c, "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(c, "--version") == 0) {
        printf("qmv %s (library %s, canonical order v%u)\n", QMV_VERSION_STRING,
               qmv_version_string(), qmv_order_version());
        return CLI_OK;
    }
    if (qmv_version_number() != QMV_VERSION_NUMBER)
        fprintf(stderr, "qmv: warning: built with qmv.h %s, running library %s\n",
                QMV_VERSION_STRING, qmv_version_string());
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(c, commands[i].name) == 0) {
            cli_cmd = commands[i].name;
            /* The subcommand sees argv[0] = its name, like a program of its own. */
            return commands[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "qmv: unknown subcommand '%s'\n", c);
    usage(stderr);
    return CLI_ERROR;
}

int main(int argc, char **argv)
{
    qio_watch_mapped_files("qmv"); /* an input truncated while mapped: a message, exit 2 */
    return close_stdout(run(argc, argv));
}
