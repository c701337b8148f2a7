/*
 * safetensors.h - safetensors files, read from memory and written to a stream. Part of
 * qmv_fileio; the JSON header is parsed and written with Jansson.
 *
 * Layout: a little-endian u64 N, N bytes of UTF-8 JSON, then the data buffer. The JSON is an
 * object mapping each tensor name to {"dtype": "F16", "shape": [...], "data_offsets":
 * [begin, end]} (offsets relative to the buffer, end exclusive), plus an optional
 * "__metadata__" object of string values (or null, as MLX writes it).
 *
 * The reader checks what the reference implementation checks, and a little more:
 * - N <= QIO_ST_MAX_HEADER and 8 + N <= size. The reference and MLX accept up to 100,000,000
 *   bytes; qmv accepts 16 MiB (over 200,000 tensors with names of 40 characters), because
 *   Jansson's tree costs 10-20 bytes of memory per header byte (a 15 MB header of 152,000
 *   tensors: 212 MB peak), so a header bounds the memory of parsing it to about 330 MB;
 * - the header is valid UTF-8 JSON whose top level is an object, with no duplicate keys;
 * - every entry has a dtype string, a shape of at most QIO_MAX_DIMS non-negative integers and
 *   exactly two non-negative integer offsets with begin <= end; other members are ignored;
 * - end - begin == prod(shape) * itemsize, computed with overflow checks, for every dtype qio
 *   knows; a dtype it does not know (complex64 "C64", sub-byte floats: valid files of other
 *   tools) becomes QIO_OTHER with its bytes kept opaque, so one such tensor does not make the
 *   whole file unreadable;
 * - sorted by begin, the ranges are contiguous and cover the data buffer exactly (so none
 *   overlaps another or lies outside the file, and no bytes are unaccounted for);
 * - "__metadata__" is an object of strings, or null.
 * Data may be at any alignment (MLX does not pad the header): views are bytes, copy with memcpy.
 *
 * The writer emits compact JSON ("__metadata__" first when there is any, then the tensors in
 * the order given), pads the header with spaces to a multiple of 8 (so data is 8-aligned, as
 * the reference writer does), and lays the data out in the same order.
 */
#ifndef QMV_TOOLS_SAFETENSORS_H
#define QMV_TOOLS_SAFETENSORS_H

#include "qio.h"

#ifdef __cplusplus
extern "C" {
#endif

#define QIO_ST_MAX_HEADER ((uint64_t)16 << 20)

typedef struct {
    char *name;
    qio_tensor t;
    /* t.dtype == QIO_OTHER: the file's dtype string (the data is nbytes opaque bytes, the
     * shape as written); NULL otherwise. */
    char *dtype_raw;
} qio_st_tensor;

/* The dtype name of a tensor as the file spells it ("F32", or dtype_raw for QIO_OTHER). */
const char *qio_st_dtype_name(const qio_st_tensor *t);

typedef struct {
    char *key, *value;
} qio_st_meta;

/* A parsed file: tensors in the order of their data offsets, metadata in header order. The
 * tensor views point into the buffer that was parsed, which must outlive this struct. */
typedef struct {
    qio_st_tensor *tensors;
    size_t count;
    qio_st_meta *meta;
    size_t meta_count;
    size_t header_bytes; /* N */
    /* Name indexes for qio_st_find and qio_st_meta_get (sorted by name): lookups cost
     * O(log n), so a file of many tensors is not searched quadratically. */
    const qio_st_tensor **by_name_;
    const qio_st_meta **meta_by_key_;
} qio_st_file;

/* Parses a whole safetensors file held in data[0..size). Returns 0, or -1 with e->msg set and
 * *out zeroed. Never reads outside data; allocations are bounded by the header's size. */
int qio_st_parse(const uint8_t *data, size_t size, qio_st_file *out, qio_error *e);

/* Frees what qio_st_parse allocated (safe on a zeroed struct). */
void qio_st_free(qio_st_file *f);

/* The tensor named `name`, or NULL (binary search). */
const qio_tensor *qio_st_find(const qio_st_file *f, const char *name);

/* The metadata value of `key`, or NULL (binary search). */
const char *qio_st_meta_get(const qio_st_file *f, const char *key);

/* One view of the tensors and metadata of several parsed files (the shards of a model), in
 * file order: names are copied, tensor data stays in the parts' buffers, which must outlive
 * out. A tensor name in two files, or a metadata key with different values, is an error (the
 * same key with the same value, as MLX writes {"format": "mlx"} in every shard, is one). Free
 * with qio_st_free. Linear in the metadata of each file times the distinct keys. */
int qio_st_merge(const qio_st_file *parts, size_t n, qio_st_file *out, qio_error *e);

/* Writes a file of `count` tensors (names unique, tensor data of exactly their nbytes) and
 * `meta_count` metadata pairs to out. Returns 0 or -1 with a message (duplicate name, bad
 * dtype, write error). */
int qio_st_write(FILE *out, const qio_st_tensor *tensors, size_t count, const qio_st_meta *meta,
                 size_t meta_count, qio_error *e);

#ifdef __cplusplus
}
#endif

#endif /* QMV_TOOLS_SAFETENSORS_H */
