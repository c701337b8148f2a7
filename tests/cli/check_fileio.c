/*
 * check_fileio.c - the .npy and safetensors readers and writers of the qmv tool (tools/io/):
 * round trips of every dtype and rank through the writers, files laid out as NumPy and MLX
 * lay them out (unaligned data, "__metadata__": null), and every malformed-file case the
 * readers promise to reject, each with the message it must give. Also the atomic output file.
 */
#define _POSIX_C_SOURCE 200809L /* open_memstream, mkdtemp */

#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "npy.h"
#include "safetensors.h"

/* ---- helpers ------------------------------------------------------------------------------ */

typedef struct {
    uint8_t *p;
    size_t n;
} bytes;

static void bytes_free(bytes *b)
{
    free(b->p);
    b->p = NULL;
    b->n = 0;
}

/* A .npy file from a preamble version, a header dict (padded as given) and data bytes. */
static bytes npy_raw(int major, const char *dict, const void *data, size_t n)
{
    size_t dl = strlen(dict), pre = major == 1 ? 10 : 12;
    bytes b = {malloc(pre + dl + n + 1), pre + dl + n};
    memcpy(b.p, "\x93NUMPY", 6);
    b.p[6] = (uint8_t)major;
    b.p[7] = 0;
    b.p[8] = (uint8_t)(dl & 0xFF);
    b.p[9] = (uint8_t)(dl >> 8);
    if (major != 1) {
        b.p[10] = (uint8_t)(dl >> 16);
        b.p[11] = (uint8_t)(dl >> 24);
    }
    memcpy(b.p + pre, dict, dl);
    if (n)
        memcpy(b.p + pre + dl, data, n);
    return b;
}

/* A safetensors file from a header text (not padded: MLX's layout) and data bytes. */
static bytes st_raw(const char *hdr, const void *data, size_t n)
{
    size_t hl = strlen(hdr);
    bytes b = {malloc(8 + hl + n + 1), 8 + hl + n};
    for (int i = 0; i < 8; i++)
        b.p[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(b.p + 8, hdr, hl);
    if (n)
        memcpy(b.p + 8 + hl, data, n);
    return b;
}

static void expect_npy_error(bytes b, const char *needle)
{
    qio_tensor t;
    qio_error e = {{0}};
    ck_assert_int_eq(qio_npy_parse(b.p, b.n, &t, &e), -1);
    ck_assert_msg(strstr(e.msg, needle) != NULL, "npy error \"%s\" lacks \"%s\"", e.msg, needle);
    /* every prefix of a bad or good file is rejected too (truncation anywhere) */
    for (size_t cut = 0; cut < b.n; cut += 1 + cut / 8)
        ck_assert_int_eq(qio_npy_parse(b.p, cut, &t, &e), -1);
    bytes_free(&b);
}

static void expect_st_error(bytes b, const char *needle)
{
    qio_st_file f;
    qio_error e = {{0}};
    ck_assert_int_eq(qio_st_parse(b.p, b.n, &f, &e), -1);
    ck_assert_msg(strstr(e.msg, needle) != NULL, "safetensors error \"%s\" lacks \"%s\"", e.msg,
                  needle);
    ck_assert_ptr_null(f.tensors);
    ck_assert_uint_eq(f.count, 0);
    bytes_free(&b);
}

/* Writes with a writer into memory. */
static bytes npy_write_mem(const qio_tensor *t)
{
    bytes b = {0};
    FILE *f = open_memstream((char **)&b.p, &b.n);
    ck_assert_ptr_nonnull(f);
    qio_error e = {{0}};
    ck_assert_msg(qio_npy_write(f, t, &e) == 0, "%s", e.msg);
    fclose(f);
    return b;
}

static bytes st_write_mem(const qio_st_tensor *ts, size_t n, const qio_st_meta *m, size_t mn)
{
    bytes b = {0};
    FILE *f = open_memstream((char **)&b.p, &b.n);
    ck_assert_ptr_nonnull(f);
    qio_error e = {{0}};
    ck_assert_msg(qio_st_write(f, ts, n, m, mn, &e) == 0, "%s", e.msg);
    fclose(f);
    return b;
}

/* ---- npy: round trips ---------------------------------------------------------------------- */

START_TEST(test_npy_roundtrip_all)
{
    static const int64_t shapes[][3] = {{0}, {1, 5}, {2, 3, 4}, {2, 0, 3}, {3, 7, 1}};
    static const int ranks[] = {0, 2, 3, 3, 3};
    uint8_t data[1024];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 37 + 11);
    for (int dt = 0; dt < QIO_DTYPE_COUNT; dt++) {
        for (size_t s = 0; s < sizeof ranks / sizeof ranks[0]; s++) {
            qio_tensor t = {(qio_dtype)dt, ranks[s], {0}, data, 0};
            int64_t count = 1;
            for (int d = 0; d < ranks[s]; d++) {
                t.shape[d] = shapes[s][d];
                count *= shapes[s][d];
            }
            t.nbytes = (size_t)count * qio_dtype_size((qio_dtype)dt);
            bytes b = npy_write_mem(&t);
            ck_assert_uint_eq((b.n - t.nbytes) % 64, 0); /* data starts 64-aligned */
            qio_tensor r;
            qio_error e = {{0}};
            ck_assert_msg(qio_npy_parse(b.p, b.n, &r, &e) == 0, "%s", e.msg);
            /* bfloat16 and the fp8 types have no NumPy dtype: they come back as raw ints */
            qio_dtype want = (qio_dtype)dt;
            if (dt == QIO_BF16)
                want = QIO_U16;
            else if (dt == QIO_F8_E4M3 || dt == QIO_F8_E5M2 || dt == QIO_F8_E8M0)
                want = QIO_U8;
            ck_assert_int_eq(r.dtype, want);
            ck_assert_int_eq(r.ndim, t.ndim);
            for (int d = 0; d < t.ndim; d++)
                ck_assert_int_eq(r.shape[d], t.shape[d]);
            ck_assert_uint_eq(r.nbytes, t.nbytes);
            ck_assert_int_eq(memcmp(r.data, data, t.nbytes), 0);
            ck_assert_int_eq(qio_tensor_count(&r), count);
            bytes_free(&b);
        }
    }
}
END_TEST

START_TEST(test_npy_numpy_layouts)
{
    const float v[3] = {1.0f, -2.5f, 3.25f};
    qio_tensor t;
    qio_error e = {{0}};
    /* exactly what np.save writes for np.float32 of shape (3,) */
    const char *np1 = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"
                      "                                                                     \n";
    bytes b = npy_raw(1, np1, v, sizeof v);
    ck_assert_msg(qio_npy_parse(b.p, b.n, &t, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(t.dtype, QIO_F32);
    ck_assert_int_eq(t.ndim, 1);
    ck_assert_int_eq(t.shape[0], 3);
    float got[3];
    memcpy(got, t.data, sizeof got);
    ck_assert(got[1] == -2.5f);
    bytes_free(&b);
    /* versions 2.0 and 3.0, keys in another order, double quotes, no trailing comma, a
     * Python 2 long, 1-byte types with any byte-order mark, fortran_order True for rank 1 */
    static const struct {
        int major;
        const char *dict;
        qio_dtype dt;
        int ndim;
        int64_t d0;
    } ok[] = {
        {2, "{'shape': (3,), 'fortran_order': False, 'descr': '<f4'}\n", QIO_F32, 1, 3},
        {3, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3L, )}   \n", QIO_F32, 1, 3},
        {1, "{ 'descr' : '|u1' , 'fortran_order' : True , 'shape' : ( 12 , ) , }", QIO_U8, 1, 12},
        {1, "{'descr': '<u1', 'fortran_order': False, 'shape': (3, 4), }", QIO_U8, 2, 3},
        {1, "{'descr': '>u1', 'fortran_order': False, 'shape': (2, 6), }", QIO_U8, 2, 2},
        {1, "{'descr': '=f4', 'fortran_order': False, 'shape': (), }", QIO_F32, 0, 0},
        {1, "{'descr': '<u2', 'fortran_order': False, 'shape': (6,), }", QIO_U16, 1, 6},
        /* MLX's mx.save of a bfloat16 array */
        {1, "{'descr': '<V2', 'fortran_order': False, 'shape': (2, 3, )}", QIO_BF16, 2, 2},
        /* column-major with one dimension above 1 is row-major too (MLX writes such) */
        {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 3), }", QIO_F32, 2, 1},
    };
    uint8_t buf[12];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t n = ok[i].dt == QIO_U8 || ok[i].dt == QIO_U16 || ok[i].dt == QIO_BF16 ? 12
                   : ok[i].ndim                                                 ? 12
                                                                                : 4;
        b = npy_raw(ok[i].major, ok[i].dict, buf, n);
        ck_assert_msg(qio_npy_parse(b.p, b.n, &t, &e) == 0, "case %zu: %s", i, e.msg);
        ck_assert_int_eq(t.dtype, ok[i].dt);
        ck_assert_int_eq(t.ndim, ok[i].ndim);
        if (ok[i].ndim)
            ck_assert_int_eq(t.shape[0], ok[i].d0);
        ck_assert_uint_eq(t.nbytes, n);
        bytes_free(&b);
    }
}
END_TEST

/* ---- npy: every malformed case -------------------------------------------------------------- */

START_TEST(test_npy_malformed)
{
    const uint8_t z[64] = {0};
    const char *good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    bytes b = {malloc(5), 5};
    memcpy(b.p, "\x93NUM", 5);
    expect_npy_error(b, "too short");
    b = npy_raw(1, good, z, 8);
    b.p[1] = 'X';
    expect_npy_error(b, "bad magic");
    b = npy_raw(1, good, z, 8);
    b.p[7] = 1; /* 1.1 */
    expect_npy_error(b, "unsupported .npy version 1.1");
    b = npy_raw(4, good, z, 8);
    expect_npy_error(b, "unsupported .npy version 4.0");
    b = npy_raw(1, good, z, 8);
    b.p[8] = 0xFF; /* header length past the end */
    expect_npy_error(b, "truncated header");
    b = npy_raw(2, good, z, 8);
    b.p[11] = 0x10; /* 256 MiB header */
    expect_npy_error(b, "exceeds the limit");
    expect_npy_error(npy_raw(1, "{'descr': '<f4', 'shape': (2,), }", z, 8),
                     "missing key 'fortran_order'");
    expect_npy_error(npy_raw(1, "{'descr': '<f4', 'fortran_order': False, }", z, 8),
                     "missing key 'shape'");
    expect_npy_error(npy_raw(1, "{'fortran_order': False, 'shape': (2,), }", z, 8),
                     "missing key 'descr'");
    expect_npy_error(npy_raw(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, "
                                "'shape': (2,), }", z, 8),
                     "duplicate key 'descr'");
    expect_npy_error(npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), "
                                "'extra': 1}", z, 8),
                     "unexpected key 'extra'");
    expect_npy_error(npy_raw(1, "{'descr': [('a', '<f4')], 'fortran_order': False, "
                                "'shape': (2,), }", z, 8),
                     "structured dtypes");
    expect_npy_error(npy_raw(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", z, 8),
                     "big-endian");
    expect_npy_error(npy_raw(1, "{'descr': '|f4', 'fortran_order': False, 'shape': (2,), }", z, 8),
                     "lacks a byte order");
    expect_npy_error(npy_raw(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", z, 8),
                     "unsupported dtype '<c8'");
    expect_npy_error(npy_raw(1, "{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }", z, 12),
                     "unsupported dtype '<U3'");
    expect_npy_error(npy_raw(1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", z, 8),
                     "unsupported dtype '|O'");
    expect_npy_error(npy_raw(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", z, 8),
                     "fortran_order");
    expect_npy_error(npy_raw(1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", z, 8),
                     "True or False");
    expect_npy_error(npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", z, 8),
                     "non-negative integers");
    expect_npy_error(npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", z, 8),
                     "trailing comma");
    expect_npy_error(npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", z, 8),
                     "expected '('");
    expect_npy_error(npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': "
                                "(4294967296, 4294967296, 4294967296), }", z, 8),
                     "size overflows");
    expect_npy_error(npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': "
                                "(99999999999999999999,), }", z, 8),
                     "too large");
    expect_npy_error(npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': "
                                "(1,1,1,1,1,1,1,1,1), }", z, 4),
                     "more than 8 dimensions");
    expect_npy_error(npy_raw(1, good, z, 7), "truncated data");
    expect_npy_error(npy_raw(1, good, z, 9), "1 bytes after the data");
    expect_npy_error(npy_raw(1, "{'descr': '<f4, 'fortran_order': False, 'shape': (2,), }", z, 8),
                     "header:");
    expect_npy_error(npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", z, 8),
                     "unexpected text after the dict");
    expect_npy_error(npy_raw(1, "'descr': '<f4'", z, 8), "expected '{'");
    expect_npy_error(npy_raw(1, "{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", z, 8),
                     "header: expected '}'");
    expect_npy_error(npy_raw(1, "{'des\\cr': '<f4', 'fortran_order': False, 'shape': (2,)}", z, 8),
                     "escapes in a key");
    expect_npy_error(npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,", z, 8),
                     "header:");
}
END_TEST

/* ---- safetensors: round trips and real layouts --------------------------------------------- */

START_TEST(test_st_roundtrip)
{
    uint8_t data[256];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 13 + 5);
    qio_st_tensor ts[QIO_DTYPE_COUNT + 2];
    char names[QIO_DTYPE_COUNT + 2][32];
    size_t n = 0;
    for (int dt = 0; dt < QIO_DTYPE_COUNT; dt++, n++) {
        snprintf(names[n], sizeof names[n], "layer%d.weight", dt);
        ts[n].name = names[n];
        /* rank 2 with an odd length so that following tensors start unaligned */
        ts[n].t = (qio_tensor){(qio_dtype)dt, 2, {3, dt % 3 + 1}, data,
                               (size_t)(3 * (dt % 3 + 1)) * qio_dtype_size((qio_dtype)dt)};
    }
    snprintf(names[n], sizeof names[n], "scalar");
    ts[n].name = names[n];
    ts[n++].t = (qio_tensor){QIO_F32, 0, {0}, data + 1, 4};
    snprintf(names[n], sizeof names[n], "empty");
    ts[n].name = names[n];
    ts[n++].t = (qio_tensor){QIO_F16, 2, {0, 5}, data, 0};
    qio_st_meta meta[2] = {{"qmv.mode", "mxfp4"}, {"format", "pt"}};
    bytes b = st_write_mem(ts, n, meta, 2);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | b.p[i];
    ck_assert_uint_eq(hl % 8, 0); /* padded as the reference writer pads */

    qio_st_file f;
    qio_error e = {{0}};
    ck_assert_msg(qio_st_parse(b.p, b.n, &f, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(f.count, n);
    ck_assert_uint_eq(f.meta_count, 2);
    ck_assert_str_eq(qio_st_meta_get(&f, "qmv.mode"), "mxfp4");
    ck_assert_str_eq(qio_st_meta_get(&f, "format"), "pt");
    ck_assert_ptr_null(qio_st_meta_get(&f, "nope"));
    for (size_t i = 0; i < n; i++) {
        const qio_tensor *r = qio_st_find(&f, ts[i].name);
        ck_assert_msg(r != NULL, "%s missing", ts[i].name);
        ck_assert_int_eq(r->dtype, ts[i].t.dtype);
        ck_assert_int_eq(r->ndim, ts[i].t.ndim);
        for (int d = 0; d < r->ndim; d++)
            ck_assert_int_eq(r->shape[d], ts[i].t.shape[d]);
        ck_assert_uint_eq(r->nbytes, ts[i].t.nbytes);
        ck_assert_int_eq(memcmp(r->data, ts[i].t.data, r->nbytes), 0);
    }
    ck_assert_ptr_null(qio_st_find(&f, "nope"));
    qio_st_free(&f);
    qio_st_free(&f); /* idempotent */
    bytes_free(&b);

    /* no metadata: no "__metadata__" key at all */
    b = st_write_mem(ts, 1, NULL, 0);
    for (size_t i = 0; i + 12 <= b.n; i++)
        ck_assert_int_ne(memcmp(b.p + i, "__metadata__", 12), 0);
    ck_assert_int_eq(qio_st_parse(b.p, b.n, &f, &e), 0);
    ck_assert_uint_eq(f.meta_count, 0);
    qio_st_free(&f);
    bytes_free(&b);
}
END_TEST

START_TEST(test_st_mlx_layout)
{
    /* what mx.save_safetensors writes: keys sorted by name, offsets in another order, no
     * padding (data starts at 8 + 197, unaligned), "__metadata__": null */
    const char *hdr = "{\"__metadata__\":null,\"a.scales\":{\"data_offsets\":[6,10],\"dtype\":\"U8\","
                      "\"shape\":[2,2]},\"a.weight\":{\"data_offsets\":[10,26],\"dtype\":\"U32\","
                      "\"shape\":[2,2]},\"b\":{\"data_offsets\":[0,6],\"dtype\":\"BF16\",\"shape\":[3]}}";
    uint8_t data[26];
    for (int i = 0; i < 26; i++)
        data[i] = (uint8_t)i;
    bytes b = st_raw(hdr, data, sizeof data);
    qio_st_file f;
    qio_error e = {{0}};
    ck_assert_msg(qio_st_parse(b.p, b.n, &f, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(f.count, 3);
    ck_assert_uint_eq(f.meta_count, 0);
    ck_assert_str_eq(f.tensors[0].name, "b"); /* sorted by offset */
    const qio_tensor *w = qio_st_find(&f, "a.weight");
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(w->dtype, QIO_U32);
    uint32_t w1;
    memcpy(&w1, w->data + 4, 4); /* the view is unaligned: copy */
    ck_assert_uint_eq(w1, 0x11100F0Eu);
    qio_st_free(&f);
    bytes_free(&b);

    /* an empty file "{}" and empty tensors sharing an offset are legal */
    b = st_raw("{}", NULL, 0);
    ck_assert_int_eq(qio_st_parse(b.p, b.n, &f, &e), 0);
    ck_assert_uint_eq(f.count, 0);
    qio_st_free(&f);
    bytes_free(&b);
    b = st_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},\"b\":{\"dtype\":"
               "\"F32\",\"shape\":[1,0],\"data_offsets\":[0,0]},\"c\":{\"dtype\":\"U8\",\"shape\":[],"
               "\"data_offsets\":[0,1],\"extra\":true}}   ",
               "x", 1);
    ck_assert_msg(qio_st_parse(b.p, b.n, &f, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(f.count, 3);
    ck_assert_int_eq(qio_st_find(&f, "c")->ndim, 0);
    qio_st_free(&f);
    bytes_free(&b);
}
END_TEST

/* A dtype qio does not know (complex64, 4-bit floats) is kept opaque, not fatal, and written back
 * as it came. */
START_TEST(test_st_opaque_dtype)
{
    const char *hdr = "{\"f\":{\"dtype\":\"C64\",\"shape\":[2],\"data_offsets\":[0,16]},"
                      "\"g\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[16,18]},"
                      "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[18,22]}}";
    uint8_t data[22];
    for (int i = 0; i < 22; i++)
        data[i] = (uint8_t)(3 * i + 1);
    bytes b = st_raw(hdr, data, sizeof data);
    qio_st_file f;
    qio_error e = {{0}};
    ck_assert_msg(qio_st_parse(b.p, b.n, &f, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(f.count, 3);
    ck_assert_int_eq(f.tensors[0].t.dtype, QIO_OTHER);
    ck_assert_str_eq(qio_st_dtype_name(&f.tensors[0]), "C64");
    ck_assert_uint_eq(f.tensors[0].t.nbytes, 16);
    ck_assert_str_eq(qio_st_dtype_name(&f.tensors[1]), "F4"); /* 3 elements in 2 bytes */
    ck_assert_int_eq(f.tensors[1].t.shape[0], 3);
    ck_assert_str_eq(qio_st_dtype_name(&f.tensors[2]), "F32");
    bytes w = st_write_mem(f.tensors, f.count, NULL, 0);
    qio_st_file g;
    ck_assert_msg(qio_st_parse(w.p, w.n, &g, &e) == 0, "%s", e.msg);
    for (size_t i = 0; i < 3; i++) {
        ck_assert_str_eq(g.tensors[i].name, f.tensors[i].name);
        ck_assert_str_eq(qio_st_dtype_name(&g.tensors[i]), qio_st_dtype_name(&f.tensors[i]));
        ck_assert_uint_eq(g.tensors[i].t.nbytes, f.tensors[i].t.nbytes);
        ck_assert_mem_eq(g.tensors[i].t.data, f.tensors[i].t.data, f.tensors[i].t.nbytes);
    }
    qio_st_free(&g);
    bytes_free(&w);
    qio_st_free(&f);
    bytes_free(&b);
}
END_TEST

/* ---- safetensors: every malformed case ------------------------------------------------------- */

#define T1(off) "\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":" off "}"

START_TEST(test_st_malformed)
{
    const uint8_t z[64] = {0};
    bytes b = {calloc(1, 7), 7};
    expect_st_error(b, "too short");
    b = st_raw("{" T1("[0,8]") "}", z, 8);
    b.p[0] = 0xFF; /* header length past the end */
    expect_st_error(b, "truncated");
    b = st_raw("{" T1("[0,8]") "}", z, 8);
    b.p[0] = 0x01;
    b.p[1] = 0xE1;
    b.p[2] = 0xF5;
    b.p[3] = 0x05; /* 100,000,001 */
    expect_st_error(b, "exceeds the limit");
    b = st_raw("{" T1("[0,8]") "}", z, 8);
    b.p[7] = 0x80; /* 2^63 + ...: must not wrap around */
    expect_st_error(b, "exceeds the limit");
    expect_st_error(st_raw("[1,2]", NULL, 0), "not a JSON object");
    expect_st_error(st_raw("\"x\"", NULL, 0), "not a JSON object");
    expect_st_error(st_raw("{", NULL, 0), "header too short");
    expect_st_error(st_raw("{\"t\":", NULL, 0), "not valid JSON");
    expect_st_error(st_raw("{} {}", NULL, 0), "not valid JSON");
    expect_st_error(st_raw("{\"\xff\":1}", NULL, 0), "not valid JSON"); /* bad UTF-8 */
    expect_st_error(st_raw("{" T1("[0,8]") "," T1("[8,16]") "}", z, 16), "duplicate");
    expect_st_error(st_raw("{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", NULL, 0), "duplicate");
    expect_st_error(st_raw("{\"t\":{\"dtype\":\"\",\"shape\":[2],\"data_offsets\":[0,1]}}", z, 1),
                    "is not a dtype name");
    expect_st_error(st_raw("{\"t\":{\"shape\":[2],\"data_offsets\":[0,8]}}", z, 8), "\"dtype\"");
    expect_st_error(st_raw("{\"t\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", z, 8),
                    "\"dtype\"");
    expect_st_error(st_raw("{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", z, 8), "\"shape\"");
    expect_st_error(st_raw("{\"t\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", z, 8),
                    "\"shape\"");
    expect_st_error(st_raw("{\"t\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", z, 8),
                    "non-negative integers");
    expect_st_error(st_raw("{\"t\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", z, 8),
                    "non-negative integers");
    expect_st_error(st_raw("{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],"
                           "\"data_offsets\":[0,8]}}", z, 8),
                    "more than 8 dimensions");
    expect_st_error(st_raw("{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],"
                           "\"data_offsets\":[0,8]}}", z, 8),
                    "size overflows");
    expect_st_error(st_raw("{\"t\":{\"dtype\":\"F32\",\"shape\":[2]}}", z, 8), "data_offsets");
    expect_st_error(st_raw("{" T1("[0]") "}", z, 8), "two integers");
    expect_st_error(st_raw("{" T1("[0,8,8]") "}", z, 8), "two integers");
    expect_st_error(st_raw("{" T1("[0,\"8\"]") "}", z, 8), "non-negative integers");
    expect_st_error(st_raw("{" T1("[-1,7]") "}", z, 8), "non-negative integers");
    expect_st_error(st_raw("{" T1("[8,0]") "}", z, 8), "end before they begin");
    expect_st_error(st_raw("{" T1("[0,12]") "}", z, 12), "need 8");
    expect_st_error(st_raw("{" T1("[0,4]") "}", z, 4), "need 8");
    expect_st_error(st_raw("{" T1("[4,12]") "}", z, 8), "reach past the end");
    expect_st_error(st_raw("{" T1("[18446744073709551608,18446744073709551616]") "}", z, 8),
                    "not valid JSON"); /* beyond int64: Jansson refuses the number */
    expect_st_error(st_raw("{" T1("[9223372036854775000,9223372036854775008]") "}", z, 8),
                    "reach past the end");
    expect_st_error(st_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                           "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", z, 12),
                    "overlap");
    expect_st_error(st_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                           "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", z, 8),
                    "overlap");
    expect_st_error(st_raw("{" T1("[4,12]") "}", z, 12), "unused bytes");
    expect_st_error(st_raw("{" T1("[0,8]") "}", z, 9), "1 bytes after the last tensor");
    expect_st_error(st_raw("{}", z, 3), "3 bytes after the last tensor");
    expect_st_error(st_raw("{\"t\":[1]}", NULL, 0), "not an object");
    expect_st_error(st_raw("{\"__metadata__\":[\"a\"]}", NULL, 0), "\"__metadata__\" is not an object");
    expect_st_error(st_raw("{\"__metadata__\":{\"a\":1}}", NULL, 0), "is not a string");
    expect_st_error(st_raw("{\"__metadata__\":{\"a\":\"\\u0000\"}}", NULL, 0), "not valid JSON");
}
END_TEST

START_TEST(test_st_truncations)
{
    /* every strict prefix of a valid file fails cleanly (and never reads past it: ASan) */
    uint8_t data[40];
    memset(data, 0x3C, sizeof data);
    qio_st_tensor ts[2] = {{"x.weight", {QIO_U32, 2, {2, 3}, data, 24}, NULL},
                           {"x.scales", {QIO_F16, 2, {2, 4}, data, 16}, NULL}};
    qio_st_meta m = {"k", "v"};
    bytes b = st_write_mem(ts, 2, &m, 1);
    qio_st_file f;
    qio_error e;
    for (size_t cut = 0; cut < b.n; cut++) {
        uint8_t *p = malloc(cut ? cut : 1);
        memcpy(p, b.p, cut);
        ck_assert_msg(qio_st_parse(p, cut, &f, &e) == -1, "prefix %zu accepted", cut);
        free(p);
    }
    ck_assert_int_eq(qio_st_parse(b.p, b.n, &f, &e), 0);
    qio_st_free(&f);
    bytes_free(&b);
}
END_TEST

START_TEST(test_st_writer_rejects)
{
    uint8_t d[8] = {0};
    qio_st_tensor dup[2] = {{"a", {QIO_F32, 1, {2}, d, 8}, NULL}, {"a", {QIO_F32, 1, {2}, d, 8}, NULL}};
    qio_st_tensor res[1] = {{"__metadata__", {QIO_F32, 1, {2}, d, 8}, NULL}};
    qio_st_tensor bad[1] = {{"a", {(qio_dtype)99, 1, {2}, d, 8}, NULL}};
    qio_st_meta mdup[2] = {{"k", "1"}, {"k", "2"}};
    qio_error e;
    FILE *f = fopen("/dev/null", "wb");
    ck_assert_int_eq(qio_st_write(f, dup, 2, NULL, 0, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "duplicate"));
    ck_assert_int_eq(qio_st_write(f, res, 1, NULL, 0, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "reserved"));
    ck_assert_int_eq(qio_st_write(f, bad, 1, NULL, 0, &e), -1);
    ck_assert_int_eq(qio_st_write(f, dup, 1, mdup, 2, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "duplicate metadata key"));
    fclose(f);
}
END_TEST

/* ---- atomic output and loading --------------------------------------------------------------- */

START_TEST(test_out_atomic)
{
    char dir[] = "/tmp/qmv_fileio_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/out.npy", dir);
    qio_out o;
    qio_error e;
    struct stat st;
    /* aborted: nothing left behind, not even the temporary file */
    ck_assert_int_eq(qio_out_open(path, 0, &o, &e), 0);
    fputs("partial", o.f);
    qio_out_abort(&o);
    ck_assert_int_ne(stat(path, &st), 0);
    ck_assert_int_eq(rmdir(dir), 0); /* empty: the temporary file is gone */
    ck_assert_ptr_nonnull(mkdtemp(strcpy(dir, "/tmp/qmv_fileio_XXXXXX")));
    snprintf(path, sizeof path, "%s/out.npy", dir);
    /* committed: the file appears whole */
    ck_assert_int_eq(qio_out_open(path, 0, &o, &e), 0);
    fputs("whole", o.f);
    ck_assert_int_eq(stat(path, &st), -1); /* not there before the commit */
    ck_assert_int_eq(qio_out_commit(&o, &e), 0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, 5);
    /* existing file: refused without force, replaced with it */
    ck_assert_int_eq(qio_out_open(path, 0, &o, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "already exists"));
    ck_assert_int_eq(qio_out_open(path, 1, &o, &e), 0);
    fputs("replaced!", o.f);
    ck_assert_int_eq(qio_out_commit(&o, &e), 0);
    qio_blob blob;
    ck_assert_int_eq(qio_blob_load(path, &blob, &e), 0);
    ck_assert_uint_eq(blob.size, 9);
    ck_assert_int_eq(memcmp(blob.data, "replaced!", 9), 0);
    qio_blob_free(&blob);
    /* missing directory */
    char bad[160];
    snprintf(bad, sizeof bad, "%s/no/such/dir.npy", dir);
    ck_assert_int_eq(qio_out_open(bad, 0, &o, &e), -1);
    ck_assert_int_eq(qio_blob_load(bad, &blob, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "cannot open"));
    ck_assert_int_eq(qio_blob_load(dir, &blob, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "directory"));
    /* an empty file loads as zero bytes */
    FILE *f = fopen(path, "wb");
    fclose(f);
    ck_assert_int_eq(qio_blob_load(path, &blob, &e), 0);
    ck_assert_uint_eq(blob.size, 0);
    qio_blob_free(&blob);
    unlink(path);
    rmdir(dir);
}
END_TEST

/* Entries of a directory besides . and .. */
static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void put_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

static int file_is(const char *path, const char *text)
{
    qio_blob b;
    qio_error e;
    if (qio_blob_load(path, &b, &e) != 0)
        return 0;
    const int same = b.size == strlen(text) && memcmp(b.data, text, b.size) == 0;
    qio_blob_free(&b);
    return same;
}

/* Without force, nothing that appears at the path while a run writes is replaced, and of two
 * runs writing the same new file exactly one wins. */
START_TEST(test_out_no_clobber_race)
{
    char dir[] = "/tmp/qmv_fileio_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/out.npy", dir);
    qio_out a, b;
    qio_error e;
    ck_assert_int_eq(qio_out_open(path, 0, &a, &e), 0);
    ck_assert_int_eq(qio_out_open(path, 0, &b, &e), 0);
    fputs("first", a.f);
    fputs("second", b.f);
    ck_assert_int_eq(qio_out_commit(&a, &e), 0);
    ck_assert_int_eq(qio_out_commit(&b, &e), -1);
    ck_assert_msg(strstr(e.msg, "already exists") && strstr(e.msg, "while qmv ran"), "%s", e.msg);
    ck_assert(file_is(path, "first"));
    ck_assert_int_eq(dir_entries(dir), 1); /* no temporary file left */
    /* someone else creates the file meanwhile */
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(qio_out_open(path, 0, &a, &e), 0);
    fputs("ours", a.f);
    put_file(path, "theirs");
    ck_assert_int_eq(qio_out_commit(&a, &e), -1);
    ck_assert(file_is(path, "theirs"));
    ck_assert_int_eq(dir_entries(dir), 1);
    unlink(path);
    rmdir(dir);
}
END_TEST

/* --force keeps the replaced file's permission bits; links are refused without it. */
START_TEST(test_out_force_mode_and_links)
{
    char dir[] = "/tmp/qmv_fileio_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[128], link[128], target[128];
    snprintf(path, sizeof path, "%s/out.npy", dir);
    snprintf(link, sizeof link, "%s/link.npy", dir);
    snprintf(target, sizeof target, "%s/missing.npy", dir);
    qio_out o;
    qio_error e;
    struct stat st;
    const mode_t modes[] = {0600, 0640, 0604};
    for (int i = 0; i < 3; i++) {
        put_file(path, "old");
        ck_assert_int_eq(chmod(path, modes[i]), 0);
        ck_assert_int_eq(qio_out_open(path, 1, &o, &e), 0);
        fputs("new", o.f);
        ck_assert_int_eq(qio_out_commit(&o, &e), 0);
        ck_assert(file_is(path, "new"));
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_msg((st.st_mode & 07777) == modes[i], "mode %o, want %o",
                      (unsigned)(st.st_mode & 07777), (unsigned)modes[i]);
    }
    /* a dangling link: refused without force (its target is not created), replaced with it */
    ck_assert_int_eq(symlink("missing.npy", link), 0);
    ck_assert_int_eq(qio_out_open(link, 0, &o, &e), -1);
    ck_assert_msg(strstr(e.msg, "symbolic link") != NULL, "%s", e.msg);
    ck_assert_int_ne(lstat(target, &st), 0);
    ck_assert_int_eq(qio_out_open(link, 1, &o, &e), 0);
    fputs("via force", o.f);
    ck_assert_int_eq(qio_out_commit(&o, &e), 0);
    ck_assert_int_eq(lstat(link, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_int_ne(lstat(target, &st), 0);
    /* a link to an existing file: refused without force, the file untouched */
    unlink(link);
    ck_assert_int_eq(symlink("out.npy", link), 0);
    ck_assert_int_eq(qio_out_open(link, 0, &o, &e), -1);
    ck_assert(file_is(path, "new"));
    unlink(link);
    unlink(path);
    ck_assert_int_eq(dir_entries(dir), 0);
    rmdir(dir);
}
END_TEST

/* A FIFO is written through, with or without force, and stays a FIFO. */
START_TEST(test_out_fifo)
{
    char dir[] = "/tmp/qmv_fileio_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    for (int force = 0; force < 2; force++) {
        int pfd[2];
        ck_assert_int_eq(pipe(pfd), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) { /* the reader: copies what the FIFO gets to the pipe */
            FILE *f = fopen(path, "rb");
            char buf[64];
            size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
            _exit(write(pfd[1], buf, n) == (ssize_t)n ? 0 : 1);
        }
        close(pfd[1]);
        qio_out o;
        qio_error e;
        ck_assert_int_eq(qio_out_open(path, force, &o, &e), 0);
        fputs("through", o.f);
        ck_assert_int_eq(qio_out_commit(&o, &e), 0);
        char got[64] = {0};
        ck_assert_int_eq(read(pfd[0], got, sizeof got - 1), 7);
        ck_assert_str_eq(got, "through");
        close(pfd[0]);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        struct stat st;
        ck_assert_int_eq(lstat(path, &st), 0);
        ck_assert(S_ISFIFO(st.st_mode));
    }
    unlink(path);
    ck_assert_int_eq(dir_entries(dir), 0);
    rmdir(dir);
}
END_TEST

/* In a child: opens path, writes, and gets signal sig (raised, or for SIGXFSZ also from a
 * real file size limit). The child must die of that signal and leave no file. */
static void die_writing(const char *dir, const char *path, int sig, int real)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        qio_out o;
        qio_error e;
        signal(sig, SIG_DFL); /* the test runner handles some signals itself */
        if (qio_out_open(path, 0, &o, &e) != 0)
            _exit(3);
        fputs("partial", o.f);
        fflush(o.f);
        if (real) {
            struct rlimit rl = {4096, 4096};
            setrlimit(RLIMIT_FSIZE, &rl);
            static char big[65536];
            fwrite(big, 1, sizeof big, o.f);
            fflush(o.f);
        } else {
            raise(sig);
        }
        _exit(4);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == sig, "signal %d: status %#x", sig,
                  status);
    ck_assert_msg(dir_entries(dir) == 0, "signal %d left a file", sig);
}

START_TEST(test_out_signals)
{
    char dir[] = "/tmp/qmv_fileio_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/out.npy", dir);
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGXFSZ};
    for (int i = 0; i < 4; i++)
        die_writing(dir, path, sigs[i], 0);
    die_writing(dir, path, SIGXFSZ, 1);
    rmdir(dir);
}
END_TEST

/* Temporary files of killed runs are removed by the next run for the same output; those of
 * live processes and other names are not. */
START_TEST(test_out_stale)
{
    char dir[] = "/tmp/qmv_fileio_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    pid_t dead = fork();
    ck_assert_int_ge(dead, 0);
    if (dead == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(dead, NULL, 0), dead);
    char path[128], stale[192], live[192], other[192], odd[192];
    snprintf(path, sizeof path, "%s/out.npy", dir);
    snprintf(stale, sizeof stale, "%s" QIO_TMP_TAG "%ld-aB3xYz", path, (long)dead);
    snprintf(live, sizeof live, "%s" QIO_TMP_TAG "%ld-aB3xYz", path, (long)getppid());
    snprintf(other, sizeof other, "%s/other.npy" QIO_TMP_TAG "%ld-aB3xYz", dir, (long)dead);
    snprintf(odd, sizeof odd, "%s" QIO_TMP_TAG "%ld-aB3", path, (long)dead);
    put_file(stale, "x");
    put_file(live, "x");
    put_file(other, "x");
    put_file(odd, "x");
    qio_out o;
    qio_error e;
    ck_assert_int_eq(qio_out_open(path, 0, &o, &e), 0);
    fputs("whole", o.f);
    ck_assert_int_eq(qio_out_commit(&o, &e), 0);
    struct stat st;
    ck_assert_int_ne(stat(stale, &st), 0);
    ck_assert_int_eq(stat(live, &st), 0);
    ck_assert_int_eq(stat(other, &st), 0);
    ck_assert_int_eq(stat(odd, &st), 0);
    ck_assert_int_eq(dir_entries(dir), 4);
    unlink(live);
    unlink(other);
    unlink(odd);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(test_sniff)
{
    ck_assert_int_eq(qio_sniff((const uint8_t *)"\x93NUMPY\x01\x00", 8), 1);
    ck_assert_int_eq(qio_sniff((const uint8_t *)"\x02\0\0\0\0\0\0\0{}", 10), 2);
    ck_assert_int_eq(qio_sniff((const uint8_t *)"\x03\0\0\0\0\0\0\0 {}", 11), 2);
    ck_assert_int_eq(qio_sniff((const uint8_t *)"hello world", 11), 0);
    ck_assert_int_eq(qio_sniff((const uint8_t *)"", 0), 0);
}
END_TEST

/* A mapped input truncated while it is read: qio_watch_mapped_files turns the SIGBUS into a
 * message naming the file and exit status 2, and the temporary file of an
 * output being written is removed. Run in a child process. */
START_TEST(test_truncated_while_mapped)
{
    char dir[] = "/tmp/qmv_fileio_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/input.bin", dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 1 << 18; i++)
        fputc(i & 0xff, f);
    ck_assert_int_eq(fclose(f), 0);
    int err[2];
    ck_assert_int_eq(pipe(err), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(err[1], STDERR_FILENO);
        qio_watch_mapped_files("prog");
        qio_blob b;
        qio_error e = {{0}};
        if (qio_blob_load(path, &b, &e) || !b.mapped_)
            _exit(10);
        char outp[80];
        snprintf(outp, sizeof outp, "%s/out.npy", dir);
        qio_out o;
        if (qio_out_open(outp, 0, &o, &e) != 0)
            _exit(13);
        if (truncate(path, 0) != 0)
            _exit(11);
        volatile unsigned sum = 0;
        for (size_t i = 0; i < b.size; i += 4096)
            sum += b.data[i]; /* SIGBUS past the new end */
        _exit(sum == 0 ? 12 : 13);
    }
    close(err[1]);
    char msg[512] = {0};
    size_t got = 0;
    ssize_t r;
    while (got < sizeof msg - 1 && (r = read(err[0], msg + got, sizeof msg - 1 - got)) > 0)
        got += (size_t)r;
    close(err[0]);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2, "status %d, stderr '%s'", status,
                  msg);
    char want[160];
    snprintf(want, sizeof want, "prog: %s changed while being read (truncated?)\n", path);
    ck_assert_str_eq(msg, want);
    ck_assert_int_eq(dir_entries(dir), 1); /* the input only: no temporary file left */
    unlink(path);
    rmdir(dir);
}
END_TEST

/* Pipes and devices: the first bytes are sniffed, and what is read is bounded. A child writes
 * an endless stream into a pipe read through /dev/fd/N. */
static int endless_pipe(const char *head, size_t head_len, pid_t *pid)
{
    int fd[2];
    ck_assert_int_eq(pipe(fd), 0);
    *pid = fork();
    ck_assert_int_ge(*pid, 0);
    if (*pid == 0) {
        close(fd[0]);
        static const char zeros[4096];
        if (head_len && write(fd[1], head, head_len) != (ssize_t)head_len)
            _exit(0);
        while (write(fd[1], zeros, sizeof zeros) > 0) {
        }
        _exit(0);
    }
    close(fd[1]);
    return fd[0];
}

START_TEST(test_stream_bounds)
{
    qio_blob b;
    qio_error e = {{0}};
    ck_assert_int_eq(qio_blob_load("/dev/zero", &b, &e), -1);
    ck_assert_str_eq(e.msg, "neither a .npy nor a safetensors file");
    static const char npy_head[] = "\x93NUMPY\x01\x00";
    pid_t pid;
    int fd = endless_pipe(npy_head, sizeof npy_head - 1, &pid);
    char path[32];
    snprintf(path, sizeof path, "/dev/fd/%d", fd);
    ck_assert_int_eq(qio_blob_load_max(path, 1 << 20, &b, &e), -1);
    ck_assert_str_eq(e.msg, "more than 1048576 bytes from a pipe or device (the limit for a file "
                            "that is not a regular file)");
    close(fd);
    waitpid(pid, NULL, 0);
    fd = endless_pipe("", 0, &pid);
    snprintf(path, sizeof path, "/dev/fd/%d", fd);
    ck_assert_int_eq(qio_blob_load_max(path, 1 << 20, &b, &e), -1);
    ck_assert_str_eq(e.msg, "neither a .npy nor a safetensors file");
    close(fd);
    waitpid(pid, NULL, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fileio");
    TCase *tn = tcase_create("npy");
    tcase_add_test(tn, test_npy_roundtrip_all);
    tcase_add_test(tn, test_npy_numpy_layouts);
    tcase_add_test(tn, test_npy_malformed);
    suite_add_tcase(s, tn);
    TCase *ts = tcase_create("safetensors");
    tcase_add_test(ts, test_st_roundtrip);
    tcase_add_test(ts, test_st_mlx_layout);
    tcase_add_test(ts, test_st_opaque_dtype);
    tcase_add_test(ts, test_st_malformed);
    tcase_add_test(ts, test_st_truncations);
    tcase_add_test(ts, test_st_writer_rejects);
    suite_add_tcase(s, ts);
    TCase *tf = tcase_create("files");
    tcase_add_test(tf, test_out_atomic);
    tcase_add_test(tf, test_out_no_clobber_race);
    tcase_add_test(tf, test_out_force_mode_and_links);
    tcase_add_test(tf, test_out_fifo);
    tcase_add_test(tf, test_out_signals);
    tcase_add_test(tf, test_out_stale);
    tcase_add_test(tf, test_sniff);
    tcase_add_test(tf, test_truncated_while_mapped);
    tcase_add_test(tf, test_stream_bounds);
    suite_add_tcase(s, tf);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
