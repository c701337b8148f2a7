/*
 * cli_file.c - the qmv tool's handling of an input file (tools/cli.c, tools/cmd_info.c) on any
 * bytes: format sniffing, matrix discovery (cli_qtensor_names), format decision from
 * metadata, flags and shapes (cli_qtensor_format, with its checked size arithmetic), loading
 * views or copies (cli_qtensor_load), the global scale, and everything `qmv info` prints
 * (escaped names and metadata). The readers alone are fuzzed by npy_reader and
 * safetensors_reader; this harness reaches what the tool derives from what they accept.
 *
 * Input: the whole file, written to a temporary file that the tool maps, as it would a file
 * named on the command line. An input that starts with "QMVDIR\n" is an MLX model directory
 * instead: a 4-byte little-endian length L, L bytes of config.json, then model.safetensors
 * (tools/model.c: config.json's quantization, the per-module lookup, the merged shard view).
 *
 * Properties:
 * - never crashes, never reads outside the file (ASan, and the mapping's end), never leaks;
 * - `qmv info FILE` exits 0 or 2; its output goes to /dev/null;
 * - every matrix that loads has a format that validates, rows >= 0, K = groups * group size
 *   > 0, and buffers of exactly its layout's sizes (qmv_layout_query; times E for an expert
 *   stack), from which qmv_qmatrix_dense builds a matrix; small ones dequantize (any status
 *   qmv.h documents), a stack's last expert through cli_qtensor_expert.
 */
#include "fuzz_helpers.h" /* first: feature macros */

#include <getopt.h>

#include "cli.h"

static char tmp_path[] = "/tmp/qmv_fuzz_cli_XXXXXX";
static int tmp_fd = -1;
static char dir_path[] = "/tmp/qmv_fuzz_dir_XXXXXX";

static void check_matrix(const cli_file *f, const char *name)
{
    cli_qtensor q;
    const cli_fmt_flags none = {0};
    if (cli_qtensor_load(f, name, &none, &q) != 0)
        return;
    QMV_FUZZ_ASSERT(qmv_format_validate(&q.fmt) == QMV_STATUS_OK, "format of '%s'", q.name);
    QMV_FUZZ_ASSERT(q.rows >= 0 && q.k > 0 && q.k % q.fmt.group_size == 0 && q.experts >= 0,
                    "%lld x %lld, %lld experts", (long long)q.rows, (long long)q.k,
                    (long long)q.experts);
    qmv_layout lay;
    const int64_t items = q.experts ? q.experts : 1;
    if (qmv_layout_query(&q.fmt, q.scale_dtype, q.rows, q.k, &lay) == QMV_STATUS_OK) {
        QMV_FUZZ_ASSERT(lay.packed_bytes * (size_t)items == q.packed_bytes &&
                            lay.scales_bytes * (size_t)items == q.scales_bytes &&
                            lay.biases_bytes * (size_t)items == q.biases_bytes,
                        "sizes %zu/%zu/%zu, layout %zu/%zu/%zu x %lld", q.packed_bytes,
                        q.scales_bytes, q.biases_bytes, lay.packed_bytes, lay.scales_bytes,
                        lay.biases_bytes, (long long)items);
        if (q.experts)
            QMV_FUZZ_ASSERT(cli_qtensor_expert(&q, q.experts - 1, f->path) == 0,
                            "the last of %lld experts", (long long)q.experts);
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

static void remove_dir(void)
{
    char p[sizeof dir_path + 32];
    static const char *const names[] = {"config.json", "model.safetensors"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", dir_path, names[i]);
        unlink(p);
    }
    rmdir(dir_path);
}

/* Writes `name` in the model directory; -1 if that fails (then the input is skipped). */
static int put_file(const char *name, const uint8_t *d, size_t n)
{
    char p[sizeof dir_path + 32];
    snprintf(p, sizeof p, "%s/%s", dir_path, name);
    FILE *f = fopen(p, "wb");
    if (!f)
        return -1;
    const int bad = fwrite(d, 1, n, f) != n;
    return (fclose(f) != 0 || bad) ? -1 : 0;
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
    const char *path = tmp_path;
    static const char dir_magic[] = "QMVDIR\n";
    if (size >= sizeof dir_magic + 3 && memcmp(data, dir_magic, sizeof dir_magic - 1) == 0) {
        static int have_dir; /* (mkdtemp's name may itself end in 'X') */
        if (!have_dir) {
            QMV_FUZZ_ASSERT(mkdtemp(dir_path) != NULL, "mkdtemp");
            atexit(remove_dir);
            have_dir = 1;
        }
        const uint8_t *p = data + sizeof dir_magic - 1;
        size_t left = size - (sizeof dir_magic - 1) - 4;
        size_t len = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
        if (len > left)
            len = left;
        if (put_file("config.json", p + 4, len) || put_file("model.safetensors", p + 4 + len, left - len))
            return 0;
        path = dir_path;
    } else {
        QMV_FUZZ_ASSERT(ftruncate(tmp_fd, 0) == 0 && pwrite(tmp_fd, data, size, 0) == (ssize_t)size,
                        "writing the input");
    }
    cli_cmd = "info";
    char a0[] = "info", *argv[] = {a0, (char *)path, NULL};
    optind = 1;
    const int rc = cmd_info(2, argv);
    QMV_FUZZ_ASSERT(rc == CLI_OK || rc == CLI_ERROR, "info exit %d", rc);

    cli_file f;
    if (cli_file_open(path, &f) != 0)
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
