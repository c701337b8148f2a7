/*
 * qio.c - dtype table, error messages, whole-file loading (output files: qio_out.c).
 */
#define _POSIX_C_SOURCE 200809L /* fileno under -std=c17 */

#include "qio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *name;
    size_t size;
} dtype_table[QIO_DTYPE_COUNT] = {
    [QIO_BOOL] = {"BOOL", 1},      [QIO_U8] = {"U8", 1},           [QIO_I8] = {"I8", 1},
    [QIO_U16] = {"U16", 2},        [QIO_I16] = {"I16", 2},         [QIO_F16] = {"F16", 2},
    [QIO_BF16] = {"BF16", 2},      [QIO_U32] = {"U32", 4},         [QIO_I32] = {"I32", 4},
    [QIO_F32] = {"F32", 4},        [QIO_U64] = {"U64", 8},         [QIO_I64] = {"I64", 8},
    [QIO_F64] = {"F64", 8},        [QIO_F8_E4M3] = {"F8_E4M3", 1}, [QIO_F8_E5M2] = {"F8_E5M2", 1},
    [QIO_F8_E8M0] = {"F8_E8M0", 1},
};

const char *qio_dtype_name(qio_dtype dt)
{
    return (unsigned)dt < QIO_DTYPE_COUNT ? dtype_table[dt].name : NULL;
}

size_t qio_dtype_size(qio_dtype dt)
{
    return (unsigned)dt < QIO_DTYPE_COUNT ? dtype_table[dt].size : 0;
}

int qio_dtype_from_name(const char *name, qio_dtype *out)
{
    for (int i = 0; i < QIO_DTYPE_COUNT; i++) {
        if (strcmp(name, dtype_table[i].name) == 0) {
            *out = (qio_dtype)i;
            return 0;
        }
    }
    return -1;
}

int64_t qio_tensor_count(const qio_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i]; /* the readers checked that the product fits */
    return n;
}

const char *qio_shape_string(const qio_tensor *t, char *buf, size_t size)
{
    size_t len = 0;
    int w = snprintf(buf, size, "(");
    len = w > 0 ? (size_t)w : 0;
    for (int i = 0; i < t->ndim && len < size; i++) {
        w = snprintf(buf + len, size - len, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        if (w < 0)
            break;
        len += (size_t)w;
    }
    if (len < size)
        snprintf(buf + len, size - len, t->ndim == 1 ? ",)" : ")");
    return buf;
}

int qio_fail(qio_error *e, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int qio_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return -1;
    *out = a * b;
    return 0;
}

int qio_add_size(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a)
        return -1;
    *out = a + b;
    return 0;
}

/* ---- Loading ------------------------------------------------------------------------------ */

static int load_stream(FILE *f, qio_blob *out, qio_error *e)
{
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return qio_fail(e, "out of memory");
    for (;;) {
        if (n == cap) {
            if (cap > SIZE_MAX / 2) {
                free(buf);
                return qio_fail(e, "input too large");
            }
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return qio_fail(e, "out of memory");
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                free(buf);
                return qio_fail(e, "read error: %s", strerror(errno));
            }
            break;
        }
    }
    out->data = buf;
    out->size = n;
    out->priv_ = buf;
    out->priv_size_ = cap;
    out->mapped_ = 0;
    return 0;
}

int qio_blob_load(const char *path, qio_blob *out, qio_error *e)
{
    memset(out, 0, sizeof *out);
    if (strcmp(path, "-") == 0)
        return load_stream(stdin, out, e);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return qio_fail(e, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return qio_fail(e, "cannot stat: %s", strerror(err));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return qio_fail(e, "is a directory");
    }
    if (S_ISREG(st.st_mode) && st.st_size > 0) {
        if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
            close(fd);
            return qio_fail(e, "file too large");
        }
        size_t size = (size_t)st.st_size;
        void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            close(fd);
            out->data = p;
            out->size = size;
            out->priv_ = p;
            out->priv_size_ = size;
            out->mapped_ = 1;
            return 0;
        }
    }
    /* Empty files, pipes and file systems without mmap: read it all. */
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int err = errno;
        close(fd);
        return qio_fail(e, "cannot open: %s", strerror(err));
    }
    int rc = load_stream(f, out, e);
    fclose(f);
    return rc;
}

void qio_blob_free(qio_blob *b)
{
    if (!b)
        return;
    if (b->mapped_)
        munmap(b->priv_, b->priv_size_);
    else
        free(b->priv_);
    memset(b, 0, sizeof *b);
}

int qio_sniff(const uint8_t *data, size_t size)
{
    if (size >= 6 && memcmp(data, "\x93NUMPY", 6) == 0)
        return 1;
    if (size >= 9) {
        /* safetensors: a u64 header length, then JSON starting with '{' (maybe after spaces). */
        for (size_t i = 8; i < size && i < 64; i++) {
            if (data[i] == '{')
                return 2;
            if (data[i] != ' ' && data[i] != '\t' && data[i] != '\n' && data[i] != '\r')
                break;
        }
    }
    return 0;
}
