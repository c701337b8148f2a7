/*
 * npy_reader.c - qio_npy_parse (tools/io/npy.h, the qmv tool's .npy reader) on any bytes.
 *
 * Input: the whole file. It is copied into a buffer that ends at a guard page (align 1), so a
 * read past the end faults even without ASan.
 *
 * Properties:
 * - never crashes, never reads outside the buffer, returns 0 or -1;
 * - -1 comes with a non-empty message;
 * - on success the view is exactly the file's tail: data + nbytes == end, nbytes ==
 *   prod(shape) * itemsize, rank <= QIO_MAX_DIMS, every byte readable;
 * - parsing is deterministic (a second parse gives the same tensor);
 * - re-encoding the tensor with qio_npy_header + its data parses back to the same dtype, shape
 *   and bytes, with the data at a multiple of 64 (bfloat16, read from MLX's '<V2', comes back
 *   as its uint16 bits: NumPy has no bfloat16).
 */
#include "fuzz_helpers.h" /* first: feature macros */

#include "npy.h"

static void same_tensor(const qio_tensor *a, const qio_tensor *b)
{
    QMV_FUZZ_ASSERT(a->dtype == b->dtype && a->ndim == b->ndim && a->nbytes == b->nbytes,
                    "dtype %d/%d rank %d/%d bytes %zu/%zu", (int)a->dtype, (int)b->dtype, a->ndim,
                    b->ndim, a->nbytes, b->nbytes);
    for (int i = 0; i < a->ndim; i++)
        QMV_FUZZ_ASSERT(a->shape[i] == b->shape[i], "dimension %d: %lld vs %lld", i,
                        (long long)a->shape[i], (long long)b->shape[i]);
    QMV_FUZZ_ASSERT(a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0, "data differ");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qf_buf in = qf_alloc(size, 1);
    if (size)
        memcpy(in.p, data, size);
    qio_tensor t, t2;
    qio_error e = {{0}};
    const int rc = qio_npy_parse(in.p, size, &t, &e);
    QMV_FUZZ_ASSERT(rc == 0 || rc == -1, "rc %d", rc);
    if (rc != 0) {
        QMV_FUZZ_ASSERT(e.msg[0] != '\0', "failure without a message");
        qf_free(&in);
        return 0;
    }
    QMV_FUZZ_ASSERT(t.ndim >= 0 && t.ndim <= QIO_MAX_DIMS, "rank %d", t.ndim);
    QMV_FUZZ_ASSERT(t.data >= in.p && t.data + t.nbytes == in.p + size,
                    "view [%p, +%zu) is not the tail of [%p, +%zu)", (const void *)t.data,
                    t.nbytes, (const void *)in.p, size);
    size_t want = qio_dtype_size(t.dtype);
    for (int i = 0; i < t.ndim; i++) {
        QMV_FUZZ_ASSERT(t.shape[i] >= 0, "negative dimension");
        want *= (size_t)t.shape[i]; /* the reader checked for overflow */
    }
    QMV_FUZZ_ASSERT(want == t.nbytes, "nbytes %zu, shape says %zu", t.nbytes, want);
    unsigned sum = 0;
    for (size_t i = 0; i < t.nbytes; i++)
        sum += t.data[i];
    (void)sum;
    QMV_FUZZ_ASSERT(qio_npy_parse(in.p, size, &t2, &e) == 0, "second parse failed: %s", e.msg);
    same_tensor(&t, &t2);

    /* Re-encode: header + data, parse again. */
    uint8_t hdr[512];
    size_t hlen = 0;
    QMV_FUZZ_ASSERT(qio_npy_header(&t, hdr, sizeof hdr, &hlen, &e) == 0, "header: %s", e.msg);
    QMV_FUZZ_ASSERT(hlen % 64 == 0, "data not 64-aligned (%zu)", hlen);
    qf_buf out = qf_alloc(hlen + t.nbytes, 1);
    memcpy(out.p, hdr, hlen);
    if (t.nbytes)
        memcpy(out.p + hlen, t.data, t.nbytes);
    QMV_FUZZ_ASSERT(qio_npy_parse(out.p, hlen + t.nbytes, &t2, &e) == 0, "re-encoded file: %s",
                    e.msg);
    if (t.dtype == QIO_BF16) /* MLX's '<V2' is read as bfloat16, written as its uint16 bits */
        t.dtype = QIO_U16;
    same_tensor(&t, &t2);
    qf_free(&out);
    qf_free(&in);
    return 0;
}
