/*
 * qio.c - dtype table, error messages, whole-file loading (output files: qio_out.c).
 */
#define _POSIX_C_SOURCE 200809L /* fileno under -std=c17 */
#define _DEFAULT_SOURCE         /* madvise (MADV_DONTNEED drops pages; posix_madvise may not) */

#include "qio.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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

char *qio_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

const char *qio_dtype_name(qio_dtype dt)
{
    if (dt == QIO_OTHER)
        return "other"; /* messages; a file's own spelling is in qio_st_tensor.dtype_raw */
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

/* Reads a pipe, device or stdin whole: its first bytes must look like a .npy or safetensors
 * file (so /dev/zero or `yes |` fail at once), and at most `max` bytes are read. */
static int load_stream(FILE *f, size_t max, qio_blob *out, qio_error *e)
{
    size_t cap = 1 << 16, n = 0;
    int sniffed = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return qio_fail(e, "out of memory");
    for (;;) {
        if (!sniffed && n >= 64) {
            sniffed = 1;
            if (!qio_sniff(buf, n)) {
                free(buf);
                return qio_fail(e, "neither a .npy nor a safetensors file");
            }
        }
        if (n > max) {
            free(buf);
            return qio_fail(e, "more than %zu bytes from a pipe or device (the limit for a "
                               "file that is not a regular file)", max);
        }
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

/* ---- Mapped files and SIGBUS ---------------------------------------------------------------- */

/* The mapped inputs, for the SIGBUS handler: a slot is published by setting base last and
 * retired by clearing base first, so the handler never sees a half-written slot. A program
 * maps a handful of inputs; past QIO_WATCH_SLOTS the handler names no file. */
#define QIO_WATCH_SLOTS 32
static struct {
    const uint8_t *volatile base;
    size_t size;
    char *path;
} watched[QIO_WATCH_SLOTS];
static const char *watch_prog;

static void watch_add(const uint8_t *base, size_t size, const char *path)
{
    for (int i = 0; i < QIO_WATCH_SLOTS; i++) {
        if (watched[i].base || watched[i].path)
            continue;
        size_t n = strlen(path) + 1;
        char *p = malloc(n);
        if (!p)
            return;
        memcpy(p, path, n);
        /* the mapping covers whole pages */
        long page = sysconf(_SC_PAGESIZE);
        if (page > 0 && size % (size_t)page)
            size += (size_t)page - size % (size_t)page;
        watched[i].path = p;
        watched[i].size = size;
        watched[i].base = base;
        return;
    }
}

static void watch_remove(const uint8_t *base)
{
    for (int i = 0; i < QIO_WATCH_SLOTS; i++) {
        if (watched[i].base == base) {
            watched[i].base = NULL;
            free(watched[i].path);
            watched[i].path = NULL;
            return;
        }
    }
}

static void put(const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
    (void)uctx;
    qio_out_unlink_temporaries(); /* the process ends either way */
    const uint8_t *a = si ? (const uint8_t *)si->si_addr : NULL;
    for (int i = 0; i < QIO_WATCH_SLOTS; i++) {
        const uint8_t *b = watched[i].base;
        if (b && a >= b && (size_t)(a - b) < watched[i].size) {
            put(watch_prog);
            put(": ");
            put(watched[i].path);
            put(" changed while being read (truncated?)\n");
            _exit(2);
        }
    }
    /* not an input file: the default action, on return from the handler */
    signal(sig, SIG_DFL);
}

void qio_watch_mapped_files(const char *prog)
{
    watch_prog = prog;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
}

int qio_blob_load(const char *path, qio_blob *out, qio_error *e)
{
    return qio_blob_load_max(path, QIO_STREAM_MAX, out, e);
}

int qio_blob_load_max(const char *path, size_t stream_max, qio_blob *out, qio_error *e)
{
    memset(out, 0, sizeof *out);
    if (strcmp(path, "-") == 0)
        return load_stream(stdin, stream_max, out, e);
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
            watch_add(p, size, path);
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
    int rc = load_stream(f, stream_max, out, e);
    fclose(f);
    return rc;
}

void qio_blob_release(const qio_blob *b, const void *p, size_t n)
{
    const uintptr_t lo = (uintptr_t)b->data, hi = lo + b->size, a = (uintptr_t)p;
    if (!b->mapped_ || a < lo || a > hi || n > hi - a)
        return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t first = (a + page - 1) / page * page, last = (a + n) / page * page;
    if (first < last) /* only pages wholly inside the range: neighbours may still be in use */
        madvise((void *)first, last - first, MADV_DONTNEED);
}

void qio_blob_free(qio_blob *b)
{
    if (!b)
        return;
    if (b->mapped_) {
        watch_remove(b->priv_);
        munmap(b->priv_, b->priv_size_);
    }
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
