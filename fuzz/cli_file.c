/*
 * cli_file.c - the qmv tool's handling of an input file (tools/cli.c, tools/cmd_info.c) on any
 * bytes: format sniffing, matrix discovery (cli_qtensor_names), format decision from
 * metadata, flags and shapes (cli_qtensor_format, with its checked size arithmetic), loading
 * views or copies (cli_qtensor_load), the global scale, and everything `qmv info` prints
 * (escaped names and metadata). The readers alone are fuzzed by npy_reader and
 * safetensors_reader; this harness reaches what the tool derives from what they accept.
 *
 * Input: the whole file, written to a temporary file that the tool maps, as it would a file
 * named on the command line.
 *
 * Properties:
 * - never crashes, never reads outside the file (ASan, and the mapping's end), never leaks;
 * - `qmv info FILE` exits 0 or 2; its output goes to /dev/null;
 * - every matrix that loads has a format that validates, rows >= 0, K = groups * group size
 *   > 0, and buffers of exactly its layout's sizes (qmv_layout_query), from which
 *   qmv_qmatrix_dense builds a matrix; small ones dequantize (any status qmv.h documents).
 */
#include "fuzz_helpers.h" /* first: feature macros */

#include <getopt.h>

#include "cli.h"

static char tmp_path[] = "/tmp/qmv_fuzz_cli_XXXXXX";
static int tmp_fd = -1;

static void check_matrix(const cli_file *f, const char *name)
{
    cli_qtensor q;
    const cli_fmt_flags none = {0};
    if (cli_qtensor_load(f, name, &none, &q) != 0)
        return;
    QMV_FUZZ_ASSERT(qmv_format_validate(&q.fmt) == QMV_STATUS_OK, "format of '%s'", q.name);
    QMV_FUZZ_ASSERT(q.rows >= 0 && q.k > 0 && q.k % q.fmt.group_size == 0, "%lld x %lld",
                    (long long)q.rows, (long long)q.k);
    qmv_layout lay;
    if (qmv_layout_query(&q.fmt, q.scale_dtype, q.rows, q.k, &lay) == QMV_STATUS_OK) {
        QMV_FUZZ_ASSERT(lay.packed_bytes == q.packed_bytes && lay.scales_bytes == q.scales_bytes &&
                            lay.biases_bytes == q.biases_bytes,
                        "sizes %zu/%zu/%zu, layout %zu/%zu/%zu", q.packed_bytes, q.scales_bytes,
                        q.biases_bytes, lay.packed_bytes, lay.scales_bytes, lay.biases_bytes);
        qmv_qmatrix w;
        if (q.rows > 0 && q.rows * q.k <= 1 << 16 && cli_qmatrix(&q, &w) == 0) {
            float *out = malloc((size_t)(q.rows * q.k) * sizeof *out);
            QMV_FUZZ_ASSERT(out != NULL, "out of memory");
            qmv_status st = qmv_dequantize(&w, QMV_DTYPE_F32, out,
                                           (size_t)(q.rows * q.k) * sizeof *out, q.k, NULL);
            QMV_FUZZ_ASSERT(qf_status_documented(st), "status %d", (int)st);
            free(out);
        }
    }
    cli_qtensor_free(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (tmp_fd < 0) {
        tmp_fd = mkstemp(tmp_path);
        QMV_FUZZ_ASSERT(tmp_fd >= 0, "mkstemp");
        unlink(tmp_path); /* read through /proc/self/fd: nothing is left behind */
        snprintf(tmp_path, sizeof tmp_path, "/proc/self/fd/%d", tmp_fd);
        QMV_FUZZ_ASSERT(freopen("/dev/null", "w", stdout) != NULL, "stdout");
    }
    QMV_FUZZ_ASSERT(ftruncate(tmp_fd, 0) == 0 && pwrite(tmp_fd, data, size, 0) == (ssize_t)size,
                    "writing the input");
    cli_cmd = "info";
    char a0[] = "info", *argv[] = {a0, tmp_path, NULL};
    optind = 1;
    const int rc = cmd_info(2, argv);
    QMV_FUZZ_ASSERT(rc == CLI_OK || rc == CLI_ERROR, "info exit %d", rc);

    cli_file f;
    if (cli_file_open(tmp_path, &f) != 0)
        return 0;
    const char **names;
    size_t n;
    QMV_FUZZ_ASSERT(cli_qtensor_names(&f, &names, &n) == 0, "out of memory");
    for (size_t i = 0; i < n; i++)
        check_matrix(&f, names[i]);
    free(names);
    cli_file_close(&f);
    return 0;
}
