/*
 * qio.h - what the .npy and safetensors readers and writers of the qmv tool share: element
 * types, a tensor view, error messages, whole-file loading and atomic output files.
 *
 * Part of the static library qmv_fileio (tools/io/). It does not depend on libqmv: it only
 * moves bytes and shapes. Every parser works on a memory buffer (const uint8_t *, size_t),
 * never prints, and reports a failure as -1 with a one-line message in a qio_error; the
 * message names the problem ("shape (3, 4) needs 48 bytes, 47 remain"), the caller adds the
 * file name. Tensor data is never cast in place: views point into the caller's buffer at any
 * alignment, so users copy with memcpy.
 * Data is little-endian; the readers reject big-endian descriptions.
 */
#ifndef QMV_TOOLS_QIO_H
#define QMV_TOOLS_QIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Element types. Names are safetensors' ("F32", "BF16", ...). */
typedef enum {
    QIO_BOOL = 0,
    QIO_U8,
    QIO_I8,
    QIO_U16,
    QIO_I16,
    QIO_F16,
    QIO_BF16,
    QIO_U32,
    QIO_I32,
    QIO_F32,
    QIO_U64,
    QIO_I64,
    QIO_F64,
    QIO_F8_E4M3,
    QIO_F8_E5M2,
    QIO_F8_E8M0,
    /* A safetensors dtype qmv does not handle (complex64 "C64", 4- and 6-bit floats, ...): its
     * bytes are carried (copied through by writers) but never interpreted. Not counted in
     * QIO_DTYPE_COUNT: it has no name or element size of its own (qio_st_tensor.dtype_raw). */
    QIO_OTHER,
} qio_dtype;
#define QIO_DTYPE_COUNT 16

/* safetensors' name of a dtype ("F32"); NULL out of range. */
const char *qio_dtype_name(qio_dtype dt);
/* Bytes per element; 0 out of range. */
size_t qio_dtype_size(qio_dtype dt);
/* Parses a safetensors dtype name; -1 if unknown. */
int qio_dtype_from_name(const char *name, qio_dtype *out);

/* Largest rank the readers accept (MLX and numpy files of weights and vectors use 1-4). */
#define QIO_MAX_DIMS 8

/* A tensor: dtype, shape and a view of its bytes (any alignment; nbytes = prod(shape) *
 * element size, exactly). */
typedef struct {
    qio_dtype dtype;
    int ndim;
    int64_t shape[QIO_MAX_DIMS];
    const uint8_t *data;
    size_t nbytes;
} qio_tensor;

/* Number of elements of t (product of the shape; 1 for a scalar). */
int64_t qio_tensor_count(const qio_tensor *t);

/* Formats a shape as "(2, 3)" / "()" into buf. */
const char *qio_shape_string(const qio_tensor *t, char *buf, size_t size);

/* A failure message; msg[0] == 0 when there is none. */
typedef struct {
    char msg[320];
} qio_error;

/* Sets e->msg (printf-style) and returns -1, so parsers can `return qio_fail(e, ...)`.
 * e may be NULL. */
int qio_fail(qio_error *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* A malloc'd copy of s (strdup is not in C17); NULL when out of memory. */
char *qio_strdup(const char *s);

/* Checked arithmetic on sizes: 0 on success, -1 on overflow (*out untouched then). */
int qio_mul_size(size_t a, size_t b, size_t *out);
int qio_add_size(size_t a, size_t b, size_t *out);

/* ---- Files -------------------------------------------------------------------------------- */

/* A whole file in memory (mapped read-only when possible). */
typedef struct {
    const uint8_t *data;
    size_t size;
    void *priv_; /* mapping or heap block */
    size_t priv_size_;
    int mapped_;
} qio_blob;

/* Largest input read from something that is not a regular file (a pipe, stdin, a device):
 * such input is read into memory, after its first bytes were checked to start like a .npy or
 * safetensors file (so /dev/zero or an endless pipe of text fails at once). */
#define QIO_STREAM_MAX ((size_t)4 << 30) /* 4 GiB */

/* Loads a file; "-" reads stdin. -1 with a message (strerror) on failure. A regular file is
 * mapped, and remembered (by path) until qio_blob_free for qio_watch_mapped_files; anything
 * else is read as described above QIO_STREAM_MAX. */
int qio_blob_load(const char *path, qio_blob *out, qio_error *e);
/* The same, with another limit than QIO_STREAM_MAX for non-regular files. */
int qio_blob_load_max(const char *path, size_t stream_max, qio_blob *out, qio_error *e);
void qio_blob_free(qio_blob *b);
/* Drops the whole pages of [p, p + n) (inside b) from this process's resident memory when b is
 * a mapping; the next access reads them from the file again. For a caller that has copied the
 * bytes elsewhere, so a file is not held twice. No effect on a heap blob (or outside b). */
void qio_blob_release(const qio_blob *b, const void *p, size_t n);

/* A mapped file truncated by someone else while it is read raises SIGBUS on the next access
 * past its new end. After this call (once, from the program's main), such a SIGBUS inside a
 * mapping of qio_blob_load writes "PROG: PATH changed while being read (truncated?)" to
 * stderr and exits with status 2 (async-signal-safe: write and _exit). A SIGBUS anywhere
 * else keeps its default action. `prog` must stay valid. */
void qio_watch_mapped_files(const char *prog);

/* An output file (guarantees in docs/CLI-GUARANTEES.md). A regular file is written under
 * the temporary name "<path>" QIO_TMP_TAG "<pid>-XXXXXX" in the same directory and moved
 * into place only by qio_out_commit(), so a failed or interrupted run never leaves a partial
 * file: the temporary file is removed on failure and on SIGINT, SIGTERM, SIGHUP and SIGXFSZ
 * (the signal then takes its default action), and temporary files of path's pattern whose
 * process is gone are removed by the next qio_out_open() of path. Without force nothing at
 * path is ever replaced, even a file created while the run was writing. A character device or
 * FIFO at path (or behind a symbolic link there) is written directly and never replaced. "-"
 * writes to stdout directly. */
#define QIO_TMP_TAG ".qmv-tmp-"
typedef struct {
    FILE *f;
    char *path;
    char *tmp;    /* NULL for stdout and special files */
    int special_; /* a character device or FIFO, written directly */
    int force_;
    int slot_;    /* the signal handler's record of tmp; -1 when none */
} qio_out;

/* Without force refuses anything at path but a character device or FIFO: a file, a symbolic
 * link (dangling or not). With force a regular file or a symbolic link at path is replaced
 * (the link itself, not its target), keeping a replaced file's permission bits and, where
 * permitted, its owner. Directories, block devices and sockets are refused. */
int qio_out_open(const char *path, int force, qio_out *out, qio_error *e);
/* Flushes, fsyncs and moves the file into place (without force: only if nothing is at path
 * by then); closes in every case. -1 with a message naming the reason on failure (the
 * temporary file is removed). */
int qio_out_commit(qio_out *o, qio_error *e);
/* Closes and removes the temporary file (safe after commit and on a zeroed struct). */
void qio_out_abort(qio_out *o);
/* Removes every temporary file of an open qio_out: for handlers of signals that end the
 * process (async-signal-safe: unlink only). */
void qio_out_unlink_temporaries(void);

/* 1 if the bytes start like a .npy file, 2 like safetensors (heuristic on the first bytes:
 * the magic for npy, a little-endian length followed by '{' for safetensors), 0 otherwise. */
int qio_sniff(const uint8_t *data, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* QMV_TOOLS_QIO_H */
