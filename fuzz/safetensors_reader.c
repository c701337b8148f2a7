/*
 * safetensors_reader.c - qio_st_parse (tools/io/safetensors.h, the qmv tool's safetensors
 * reader) on any bytes, and its writer on whatever the reader accepts.
 *
 * Input: the whole file, copied into a buffer that ends at a guard page (align 1: tensor
 * data in safetensors files is unaligned in general), so a read past the end faults even
 * without ASan.
 *
 * Properties:
 * - never crashes, never reads outside the buffer, never leaks (ASan), returns 0 or -1, and
 *   -1 comes with a message and a zeroed result;
 * - on success: names unique; every view inside the data section; views sorted by offset,
 *   contiguous and covering the data section exactly (no overlap, no gap, nothing after);
 *   nbytes == prod(shape) * itemsize for every dtype qio knows (one it does not is QIO_OTHER
 *   with the file's dtype string, its bytes the span); every byte readable;
 * - re-writing the parsed file with qio_st_write (tensors and metadata) gives a file the
 *   reader accepts with the same tensors (name, dtype, shape, bytes) and metadata, and a
 *   header padded to a multiple of 8.
 */
#include "fuzz_helpers.h" /* first: feature macros (open_memstream needs _DEFAULT_SOURCE) */

#include "safetensors.h"

static void same_file(const qio_st_file *a, const qio_st_file *b)
{
    QMV_FUZZ_ASSERT(a->count == b->count && a->meta_count == b->meta_count,
                    "%zu/%zu tensors, %zu/%zu metadata", a->count, b->count, a->meta_count,
                    b->meta_count);
    for (size_t i = 0; i < a->count; i++) {
        const qio_tensor *x = &a->tensors[i].t, *y = qio_st_find(b, a->tensors[i].name);
        QMV_FUZZ_ASSERT(y != NULL, "tensor '%s' lost", a->tensors[i].name);
        QMV_FUZZ_ASSERT(x->dtype == y->dtype && x->ndim == y->ndim && x->nbytes == y->nbytes,
                        "tensor '%s' changed", a->tensors[i].name);
        for (int d = 0; d < x->ndim; d++)
            QMV_FUZZ_ASSERT(x->shape[d] == y->shape[d], "tensor '%s' shape", a->tensors[i].name);
        QMV_FUZZ_ASSERT(x->nbytes == 0 || memcmp(x->data, y->data, x->nbytes) == 0,
                        "tensor '%s' data", a->tensors[i].name);
    }
    for (size_t i = 0; i < a->meta_count; i++) {
        const char *v = qio_st_meta_get(b, a->meta[i].key);
        QMV_FUZZ_ASSERT(v && strcmp(v, a->meta[i].value) == 0, "metadata '%s'", a->meta[i].key);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qf_buf in = qf_alloc(size, 1);
    if (size)
        memcpy(in.p, data, size);
    qio_st_file f, g;
    qio_error e = {{0}};
    const int rc = qio_st_parse(in.p, size, &f, &e);
    QMV_FUZZ_ASSERT(rc == 0 || rc == -1, "rc %d", rc);
    if (rc != 0) {
        QMV_FUZZ_ASSERT(e.msg[0] != '\0', "failure without a message");
        QMV_FUZZ_ASSERT(f.tensors == NULL && f.count == 0 && f.meta == NULL, "result not zeroed");
        qf_free(&in);
        return 0;
    }
    const uint8_t *base = in.p + 8 + f.header_bytes, *end = in.p + size;
    const uint8_t *pos = base;
    for (size_t i = 0; i < f.count; i++) {
        const qio_tensor *t = &f.tensors[i].t;
        QMV_FUZZ_ASSERT(t->data == pos, "tensor %zu ('%s') not contiguous with the previous",
                        i, f.tensors[i].name);
        QMV_FUZZ_ASSERT(t->nbytes <= (size_t)(end - t->data), "tensor '%s' past the end",
                        f.tensors[i].name);
        if (t->dtype == QIO_OTHER) { /* a dtype qio keeps opaque: its bytes are the span */
            QMV_FUZZ_ASSERT(f.tensors[i].dtype_raw && f.tensors[i].dtype_raw[0] &&
                                t->ndim <= QIO_MAX_DIMS,
                            "opaque tensor '%s'", f.tensors[i].name);
        } else {
            size_t want = qio_dtype_size(t->dtype);
            for (int d = 0; d < t->ndim; d++)
                want *= (size_t)t->shape[d];
            QMV_FUZZ_ASSERT(want == t->nbytes && t->ndim <= QIO_MAX_DIMS, "tensor '%s' size",
                            f.tensors[i].name);
        }
        unsigned sum = 0;
        for (size_t b = 0; b < t->nbytes; b++)
            sum += t->data[b];
        (void)sum;
        pos += t->nbytes;
        for (size_t j = 0; j < i; j++)
            QMV_FUZZ_ASSERT(strcmp(f.tensors[j].name, f.tensors[i].name) != 0, "duplicate '%s'",
                            f.tensors[i].name);
    }
    QMV_FUZZ_ASSERT(pos == end, "%zu bytes not covered", (size_t)(end - pos));

    /* Write it back and read that. */
    char *buf = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&buf, &len);
    QMV_FUZZ_ASSERT(mf != NULL, "open_memstream");
    const int wrc = qio_st_write(mf, f.tensors, f.count, f.meta, f.meta_count, &e);
    fclose(mf);
    QMV_FUZZ_ASSERT(wrc == 0, "the writer rejects what the reader accepted: %s", e.msg);
    qf_buf out = qf_alloc(len, 1);
    memcpy(out.p, buf, len);
    free(buf);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | out.p[i];
    QMV_FUZZ_ASSERT(hl % 8 == 0, "header of %llu bytes not padded", (unsigned long long)hl);
    QMV_FUZZ_ASSERT(qio_st_parse(out.p, len, &g, &e) == 0, "re-written file rejected: %s", e.msg);
    same_file(&f, &g);
    qio_st_free(&g);
    qf_free(&out);
    qio_st_free(&f);
    qf_free(&in);
    return 0;
}
