/*
 * npy.c - .npy reader (from memory) and writer.
 */
#include "npy.h"

#include <errno.h>
#include <string.h>

/* ---- A small parser for the header's Python dict literal ------------------------------------ */

typedef struct {
    const char *p, *end;
    qio_error *e;
} lexer;

static void skip_ws(lexer *lx)
{
    while (lx->p < lx->end &&
           (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\n' || *lx->p == '\r'))
        lx->p++;
}

static int expect_char(lexer *lx, char c, const char *where)
{
    skip_ws(lx);
    if (lx->p >= lx->end || *lx->p != c)
        return qio_fail(lx->e, "header: expected '%c' %s", c, where);
    lx->p++;
    return 0;
}

/* A quoted string without escapes (none of the legal keys or descr values has one). */
static int parse_string(lexer *lx, char *out, size_t cap, const char *what)
{
    skip_ws(lx);
    if (lx->p >= lx->end || (*lx->p != '\'' && *lx->p != '"'))
        return qio_fail(lx->e, "header: expected a quoted string for %s", what);
    char q = *lx->p++;
    size_t n = 0;
    while (lx->p < lx->end && *lx->p != q) {
        if (*lx->p == '\\')
            return qio_fail(lx->e, "header: escapes in %s are not supported", what);
        if (n + 1 >= cap)
            return qio_fail(lx->e, "header: %s is too long", what);
        out[n++] = *lx->p++;
    }
    if (lx->p >= lx->end)
        return qio_fail(lx->e, "header: unterminated string");
    lx->p++;
    out[n] = '\0';
    return 0;
}

static int parse_bool(lexer *lx, int *out)
{
    skip_ws(lx);
    size_t left = (size_t)(lx->end - lx->p);
    if (left >= 4 && memcmp(lx->p, "True", 4) == 0) {
        lx->p += 4;
        *out = 1;
        return 0;
    }
    if (left >= 5 && memcmp(lx->p, "False", 5) == 0) {
        lx->p += 5;
        *out = 0;
        return 0;
    }
    return qio_fail(lx->e, "header: 'fortran_order' must be True or False");
}

static int parse_shape(lexer *lx, int *ndim, int64_t *shape)
{
    if (expect_char(lx, '(', "to open 'shape'"))
        return -1;
    int n = 0;
    for (;;) {
        skip_ws(lx);
        if (lx->p < lx->end && *lx->p == ')') {
            lx->p++;
            break;
        }
        if (lx->p >= lx->end || *lx->p < '0' || *lx->p > '9')
            return qio_fail(lx->e, "header: 'shape' must be a tuple of non-negative integers");
        int64_t v = 0;
        while (lx->p < lx->end && *lx->p >= '0' && *lx->p <= '9') {
            int d = *lx->p++ - '0';
            if (v > (INT64_MAX - d) / 10)
                return qio_fail(lx->e, "header: a dimension of 'shape' is too large");
            v = v * 10 + d;
        }
        if (lx->p < lx->end && (*lx->p == 'L' || *lx->p == 'l')) /* Python 2 long literal */
            lx->p++;
        if (n >= QIO_MAX_DIMS)
            return qio_fail(lx->e, "header: more than %d dimensions", QIO_MAX_DIMS);
        shape[n++] = v;
        skip_ws(lx);
        if (lx->p < lx->end && *lx->p == ',') {
            lx->p++;
            continue;
        }
        if (lx->p < lx->end && *lx->p == ')') {
            lx->p++;
            /* "(3)" is an int in parentheses in Python, not a tuple; NumPy never writes it. */
            if (n == 1)
                return qio_fail(lx->e, "header: a 1-element 'shape' needs a trailing comma");
            break;
        }
        return qio_fail(lx->e, "header: expected ',' or ')' in 'shape'");
    }
    *ndim = n;
    return 0;
}

static const struct {
    char kind;
    int size;
    qio_dtype dt;
} npy_types[] = {
    {'b', 1, QIO_BOOL}, {'u', 1, QIO_U8},  {'i', 1, QIO_I8},  {'u', 2, QIO_U16},
    {'i', 2, QIO_I16},  {'f', 2, QIO_F16}, {'u', 4, QIO_U32}, {'i', 4, QIO_I32},
    {'f', 4, QIO_F32},  {'u', 8, QIO_U64}, {'i', 8, QIO_I64}, {'f', 8, QIO_F64},
};

static int parse_descr(const char *d, qio_dtype *out, qio_error *e)
{
    size_t len = strlen(d);
    if (len != 3 || d[2] < '1' || d[2] > '8')
        return qio_fail(e, "unsupported dtype '%s' (only little-endian bool, integer and float "
                           "scalars)", d);
    const char order = d[0], kind = d[1];
    const int size = d[2] - '0';
    /* NumPy has no bfloat16; MLX's mx.save writes bfloat16 arrays as 2-byte opaque elements
     * ('<V2'), the only arrays of that dtype it writes, so they are read as bfloat16. */
    if (kind == 'V' && size == 2 && (order == '<' || order == '|')) {
        *out = QIO_BF16;
        return 0;
    }
    if (order == '>' && size > 1)
        return qio_fail(e, "big-endian dtype '%s' is not supported", d);
    if (order != '<' && order != '|' && order != '=' && order != '>')
        return qio_fail(e, "unsupported dtype '%s'", d);
    if (order == '|' && size > 1)
        return qio_fail(e, "dtype '%s' lacks a byte order", d);
    for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++) {
        if (npy_types[i].kind == kind && npy_types[i].size == size) {
            *out = npy_types[i].dt;
            return 0;
        }
    }
    return qio_fail(e, "unsupported dtype '%s' (only little-endian bool, integer and float "
                       "scalars)", d);
}

int qio_npy_parse(const uint8_t *data, size_t size, qio_tensor *out, qio_error *e)
{
    if (size < 10 || memcmp(data, "\x93NUMPY", 6) != 0)
        return qio_fail(e, size < 10 ? "too short for a .npy file (%zu bytes)"
                                     : "not a .npy file (bad magic)", size);
    const int major = data[6], minor = data[7];
    size_t hlen, pre;
    if (major == 1 && minor == 0) {
        hlen = (size_t)data[8] | (size_t)data[9] << 8;
        pre = 10;
    } else if ((major == 2 || major == 3) && minor == 0) {
        if (size < 12)
            return qio_fail(e, "truncated .npy preamble");
        hlen = (size_t)data[8] | (size_t)data[9] << 8 | (size_t)data[10] << 16 |
               (size_t)data[11] << 24;
        pre = 12;
    } else {
        return qio_fail(e, "unsupported .npy version %d.%d (1.0, 2.0 and 3.0 are)", major, minor);
    }
    if (hlen > QIO_NPY_MAX_HEADER)
        return qio_fail(e, "header of %zu bytes exceeds the limit of %zu", hlen,
                        QIO_NPY_MAX_HEADER);
    if (hlen > size - pre)
        return qio_fail(e, "truncated header (%zu bytes announced, %zu present)", hlen,
                        size - pre);

    lexer lx = {(const char *)data + pre, (const char *)data + pre + hlen, e};
    char key[32], descr[32];
    int have_descr = 0, have_fortran = 0, have_shape = 0, fortran = 0, ndim = 0;
    int64_t shape[QIO_MAX_DIMS] = {0};
    if (expect_char(&lx, '{', "at the start of the header"))
        return -1;
    for (;;) {
        skip_ws(&lx);
        if (lx.p < lx.end && *lx.p == '}') {
            lx.p++;
            break;
        }
        if (parse_string(&lx, key, sizeof key, "a key") || expect_char(&lx, ':', "after a key"))
            return -1;
        if (strcmp(key, "descr") == 0) {
            if (have_descr++)
                return qio_fail(e, "header: duplicate key 'descr'");
            skip_ws(&lx);
            if (lx.p < lx.end && *lx.p == '[')
                return qio_fail(e, "structured dtypes are not supported");
            if (parse_string(&lx, descr, sizeof descr, "'descr'"))
                return -1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (have_fortran++)
                return qio_fail(e, "header: duplicate key 'fortran_order'");
            if (parse_bool(&lx, &fortran))
                return -1;
        } else if (strcmp(key, "shape") == 0) {
            if (have_shape++)
                return qio_fail(e, "header: duplicate key 'shape'");
            if (parse_shape(&lx, &ndim, shape))
                return -1;
        } else {
            return qio_fail(e, "header: unexpected key '%s'", key);
        }
        skip_ws(&lx);
        if (lx.p < lx.end && *lx.p == ',') {
            lx.p++;
            continue;
        }
        if (expect_char(&lx, '}', "or ',' after a value"))
            return -1;
        break;
    }
    skip_ws(&lx);
    if (lx.p != lx.end)
        return qio_fail(e, "header: unexpected text after the dict");
    if (!have_descr || !have_fortran || !have_shape)
        return qio_fail(e, "header: missing key '%s'",
                        !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");

    qio_tensor t;
    memset(&t, 0, sizeof t);
    if (parse_descr(descr, &t.dtype, e))
        return -1;
    /* Column-major data is row-major data too when at most one dimension exceeds 1 (MLX
     * marks such arrays fortran_order True); any other column-major array is refused. */
    int long_dims = 0;
    for (int i = 0; i < ndim; i++)
        long_dims += shape[i] > 1;
    if (fortran && long_dims > 1)
        return qio_fail(e, "fortran_order (column-major) arrays are not supported; save with "
                           "np.ascontiguousarray");
    size_t nbytes = qio_dtype_size(t.dtype);
    for (int i = 0; i < ndim; i++) {
        if ((uint64_t)shape[i] > SIZE_MAX || qio_mul_size(nbytes, (size_t)shape[i], &nbytes))
            return qio_fail(e, "shape is too large (size overflows)");
        t.shape[i] = shape[i];
    }
    t.ndim = ndim;
    const size_t off = pre + hlen, left = size - off;
    char sbuf[200];
    if (left < nbytes)
        return qio_fail(e, "truncated data: shape %s of %s needs %zu bytes, %zu present",
                        qio_shape_string(&t, sbuf, sizeof sbuf), qio_dtype_name(t.dtype), nbytes,
                        left);
    if (left > nbytes)
        return qio_fail(e, "%zu bytes after the data of shape %s", left - nbytes,
                        qio_shape_string(&t, sbuf, sizeof sbuf));
    t.data = data + off;
    t.nbytes = nbytes;
    *out = t;
    return 0;
}

/* ---- Writer --------------------------------------------------------------------------------- */

static const char *descr_of(qio_dtype dt)
{
    switch (dt) {
    case QIO_BOOL: return "|b1";
    case QIO_U8: return "|u1";
    case QIO_I8: return "|i1";
    case QIO_U16: return "<u2";
    case QIO_I16: return "<i2";
    case QIO_F16: return "<f2";
    case QIO_BF16: return "<u2"; /* NumPy has no bfloat16 */
    case QIO_U32: return "<u4";
    case QIO_I32: return "<i4";
    case QIO_F32: return "<f4";
    case QIO_U64: return "<u8";
    case QIO_I64: return "<i8";
    case QIO_F64: return "<f8";
    case QIO_F8_E4M3:
    case QIO_F8_E5M2:
    case QIO_F8_E8M0: return "|u1";
    case QIO_OTHER: return NULL; /* no element size: not writable as .npy */
    }
    return NULL;
}

int qio_npy_header(const qio_tensor *t, uint8_t *buf, size_t cap, size_t *len, qio_error *e)
{
    const char *descr = descr_of(t->dtype);
    if (!descr || t->ndim < 0 || t->ndim > QIO_MAX_DIMS)
        return qio_fail(e, "cannot write this tensor as .npy (dtype or rank)");
    char dict[64 + 24 * QIO_MAX_DIMS];
    size_t n = (size_t)snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                                descr);
    for (int i = 0; i < t->ndim; i++)
        n += (size_t)snprintf(dict + n, sizeof dict - n, "%s%lld", i ? ", " : "",
                              (long long)t->shape[i]);
    n += (size_t)snprintf(dict + n, sizeof dict - n, "%s), }", t->ndim == 1 ? "," : "");
    /* Version 1.0 has a 10-byte preamble; pad dict + '\n' so that the data starts at a
     * multiple of 64. The dict is always short enough for 1.0. */
    const size_t pre = 10;
    size_t total = (pre + n + 1 + 63) / 64 * 64;
    *len = total;
    if (cap < total)
        return qio_fail(e, "header buffer too small");
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    const size_t hlen = total - pre;
    buf[8] = (uint8_t)(hlen & 0xFF);
    buf[9] = (uint8_t)(hlen >> 8);
    memcpy(buf + pre, dict, n);
    memset(buf + pre + n, ' ', total - pre - n - 1);
    buf[total - 1] = '\n';
    return 0;
}

int qio_npy_write(FILE *f, const qio_tensor *t, qio_error *e)
{
    uint8_t hdr[512];
    size_t len;
    if (qio_npy_header(t, hdr, sizeof hdr, &len, e))
        return -1;
    if (fwrite(hdr, 1, len, f) != len || (t->nbytes && fwrite(t->data, 1, t->nbytes, f) != t->nbytes))
        return qio_fail(e, "write error: %s", strerror(errno));
    return 0;
}
