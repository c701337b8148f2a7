/*
 * npy.h - NumPy .npy files (format versions 1.0, 2.0 and 3.0), read from memory and written
 * to a stream. Part of qmv_fileio.
 *
 * Reader: magic "\x93NUMPY", version 1.0 (u16 header length) or 2.0/3.0 (u32), a Python dict
 * literal with exactly the keys 'descr', 'fortran_order' and 'shape' (any order, either quote,
 * spaces, trailing comma), then the raw data, which must be exactly prod(shape) * itemsize
 * bytes (no more, no less). Accepted descr: little-endian ('<', or '|'/'=' where the byte order
 * does not matter or is the native little-endian one) b1 u1 i1 u2 i2 f2 u4 i4 f4 u8 i8 f8.
 * Rejected with a message: big-endian data, structured/object/string dtypes, fortran_order
 * True for rank >= 2, rank above QIO_MAX_DIMS, negative or overflowing shapes, headers larger
 * than QIO_NPY_MAX_HEADER, truncated files and trailing bytes.
 * NumPy has no bfloat16: such data is stored and read as '<u2' (QIO_U16); the qmv tool reads
 * uint16 arrays as bfloat16 bits.
 *
 * Writer: version 1.0 (2.0 when the header would exceed 65535 bytes), header padded with
 * spaces and a newline so that the data starts at a multiple of 64, always an explicit byte
 * order. BF16 is written as '<u2', the F8 types as '|u1'.
 */
#ifndef QMV_TOOLS_NPY_H
#define QMV_TOOLS_NPY_H

#include "qio.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Header limit of the reader (NumPy's own default limit is 10000 bytes). */
#define QIO_NPY_MAX_HEADER ((size_t)1 << 20)

/* Parses a whole .npy file held in data[0..size). On success *out views data (unaligned in
 * general). Returns 0, or -1 with e->msg set; never reads outside data, never allocates. */
int qio_npy_parse(const uint8_t *data, size_t size, qio_tensor *out, qio_error *e);

/* Builds the header (magic, version, length, padded dict) of t into buf. *len receives the
 * header's size; returns -1 if cap is too small (with *len the size needed) or t is invalid. */
int qio_npy_header(const qio_tensor *t, uint8_t *buf, size_t cap, size_t *len, qio_error *e);

/* Writes header and t->data to f. Returns 0 or -1 with a message. */
int qio_npy_write(FILE *f, const qio_tensor *t, qio_error *e);

#ifdef __cplusplus
}
#endif

#endif /* QMV_TOOLS_NPY_H */
