/*
 * qmv_test_util.h - helpers shared by the qmv Check suites (check_qmv.c, check_errors.c,
 * check_format.c): a deterministic RNG, independent scalar codecs, element load/store, the test
 * format table and buffer helpers.
 *
 * The codecs here are written from FORMATS.md and IEEE 754 on purpose instead of calling the
 * library's common/codec.h: the tests compare the library with an emulation that shares no code
 * with it, and the internal qmvi_* symbols are not exported from a shared libqmv anyway.
 * Everything is static so that each test program is self-contained.
 *
 * Debugging: Check forks every test; run a test program with CK_FORK=no under gdb, and use
 * CK_RUN_SUITE / CK_RUN_CASE to select one test case.
 */
#ifndef QMV_TEST_UTIL_H
#define QMV_TEST_UTIL_H

#include <check.h>
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmv.h"

#if defined(__GNUC__)
#define QT_UNUSED __attribute__((unused))
#else
#define QT_UNUSED
#endif

/* ---- RNG: splitmix64, deterministic across platforms ------------------------------------- */

typedef struct {
    uint64_t s;
} qt_rng;

static QT_UNUSED uint64_t qt_next(qt_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static QT_UNUSED uint32_t qt_u32(qt_rng *r)
{
    return (uint32_t)(qt_next(r) >> 32);
}

/* Uniform integer in [lo, hi]. */
static QT_UNUSED int64_t qt_range(qt_rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(qt_next(r) % (uint64_t)(hi - lo + 1));
}

/* ---- float32 bits ------------------------------------------------------------------------- */

static QT_UNUSED uint32_t qt_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static QT_UNUSED float qt_f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- fp16 / bf16, written from IEEE 754 ---------------------------------------------------- */

static QT_UNUSED float qt_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1Fu;
    uint32_t m = h & 0x3FFu;
    if (e == 0x1F) /* Inf / NaN: keep the payload */
        return qt_f32_from_bits(sign | 0x7F800000u | (m << 13));
    if (e == 0) { /* zero or subnormal: m * 2^-24, exact */
        float v = ldexpf((float)m, -24);
        return sign ? -v : v;
    }
    return qt_f32_from_bits(sign | ((e + 112u) << 23) | (m << 13));
}

/* Round to nearest even; overflow gives Inf; NaN gives a quiet NaN keeping sign and payload top. */
static QT_UNUSED uint16_t qt_f32_to_f16(float f)
{
    uint32_t x = qt_f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t a = x & 0x7FFFFFFFu;
    if (a > 0x7F800000u)
        return (uint16_t)(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
    if (a >= 0x477FF000u) /* >= 65520 (the tie above 65504 goes to the even 2^16): Inf */
        return (uint16_t)(sign | 0x7C00u);
    if (a >= 0x38800000u) { /* normal result */
        uint32_t r = a - (112u << 23);
        uint32_t h = r >> 13, rem = r & 0x1FFFu;
        if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
            h++;
        return (uint16_t)(sign | h);
    }
    /* subnormal or zero result: round a's value to a multiple of 2^-24 */
    uint32_t e = a >> 23;
    if (e < 101) /* < 2^-25: rounds to zero */
        return sign;
    uint32_t m = (a & 0x7FFFFFu) | 0x800000u; /* value = m * 2^(e-150) */
    uint32_t shift = 126u - e;                /* value / 2^-24 = m / 2^shift, shift in 14..25 */
    uint32_t h = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (h & 1u)))
        h++;
    return (uint16_t)(sign | h);
}

static QT_UNUSED float qt_bf16_to_f32(uint16_t h)
{
    return qt_f32_from_bits((uint32_t)h << 16);
}

static QT_UNUSED uint16_t qt_f32_to_bf16(float f)
{
    uint32_t x = qt_f32_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u)
        return (uint16_t)((x >> 16) | 0x0040u);
    return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

/* ---- element codes ------------------------------------------------------------------------- */

static QT_UNUSED float qt_e2m1(unsigned c)
{
    static const float lut[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                  -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
    return lut[c & 15u];
}

/* E4M3FN: bias 7, subnormals m*2^-9, 0x7F/0xFF NaN, no Inf. */
static QT_UNUSED float qt_e4m3(unsigned c)
{
    c &= 0xFFu;
    if ((c & 0x7Fu) == 0x7Fu)
        return NAN;
    unsigned e = (c >> 3) & 15u, m = c & 7u;
    float v = e == 0 ? ldexpf((float)m, -9) : ldexpf((float)(8u + m), (int)e - 10);
    return (c & 0x80u) ? -v : v;
}

/* E8M0: 2^(b-127); 0 -> 2^-127, 0xFF -> NaN. */
static QT_UNUSED float qt_e8m0(unsigned b)
{
    b &= 0xFFu;
    if (b == 0xFFu)
        return NAN;
    return ldexpf(1.0f, (int)b - 127);
}

/* ---- dtype elements ------------------------------------------------------------------------ */

static QT_UNUSED size_t qt_dsize(qmv_dtype d)
{
    return d == QMV_DTYPE_F32 ? 4 : 2;
}

static QT_UNUSED float qt_load(qmv_dtype d, const void *p, int64_t i)
{
    if (d == QMV_DTYPE_F32) {
        float f;
        memcpy(&f, (const char *)p + 4 * i, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, (const char *)p + 2 * i, 2);
    return d == QMV_DTYPE_F16 ? qt_f16_to_f32(h) : qt_bf16_to_f32(h);
}

/* Stores f rounded to nearest even (NaN with its payload, as the codec would). */
static QT_UNUSED void qt_store(qmv_dtype d, void *p, int64_t i, float f)
{
    if (d == QMV_DTYPE_F32) {
        memcpy((char *)p + 4 * i, &f, 4);
        return;
    }
    uint16_t h = d == QMV_DTYPE_F16 ? qt_f32_to_f16(f) : qt_f32_to_bf16(f);
    memcpy((char *)p + 2 * i, &h, 2);
}

/* The canonical quiet NaN of each output dtype (DESIGN.md, qmv.h). */
static QT_UNUSED void qt_store_canonical_nan(qmv_dtype d, void *p, int64_t i)
{
    if (d == QMV_DTYPE_F32) {
        uint32_t u = 0x7FC00000u;
        memcpy((char *)p + 4 * i, &u, 4);
    } else {
        uint16_t h = d == QMV_DTYPE_F16 ? 0x7E00u : 0x7FC0u;
        memcpy((char *)p + 2 * i, &h, 2);
    }
}

/* Stores a raw bit pattern (low bits for 2-byte dtypes). */
static QT_UNUSED void qt_store_bits(qmv_dtype d, void *p, int64_t i, uint32_t bits)
{
    if (d == QMV_DTYPE_F32) {
        memcpy((char *)p + 4 * i, &bits, 4);
    } else {
        uint16_t h = (uint16_t)bits;
        memcpy((char *)p + 2 * i, &h, 2);
    }
}

static QT_UNUSED uint32_t qt_load_bits(qmv_dtype d, const void *p, int64_t i)
{
    if (d == QMV_DTYPE_F32) {
        uint32_t u;
        memcpy(&u, (const char *)p + 4 * i, 4);
        return u;
    }
    uint16_t h;
    memcpy(&h, (const char *)p + 2 * i, 2);
    return h;
}

/* A NaN pattern with a payload, to fill padding that must never be read. */
static QT_UNUSED uint32_t qt_nan_bits(qmv_dtype d)
{
    return d == QMV_DTYPE_F32 ? 0xFFA5A5A5u : d == QMV_DTYPE_F16 ? 0xFDA5u : 0xFFA5u;
}

static QT_UNUSED const char *qt_dname(qmv_dtype d)
{
    return d == QMV_DTYPE_F32 ? "f32" : d == QMV_DTYPE_F16 ? "f16" : "bf16";
}

/* ---- test formats -------------------------------------------------------------------------- */

typedef struct {
    qmv_mode mode;
    int bits;
    int group;
    int global; /* nvfp4 with a global scale */
} qt_fmt;

static const qt_fmt QT_FMTS[] = {
    {QMV_MODE_AFFINE, 1, 32, 0}, {QMV_MODE_AFFINE, 1, 64, 0}, {QMV_MODE_AFFINE, 1, 128, 0},
    {QMV_MODE_AFFINE, 2, 32, 0}, {QMV_MODE_AFFINE, 2, 64, 0}, {QMV_MODE_AFFINE, 2, 128, 0},
    {QMV_MODE_AFFINE, 3, 32, 0}, {QMV_MODE_AFFINE, 3, 64, 0}, {QMV_MODE_AFFINE, 3, 128, 0},
    {QMV_MODE_AFFINE, 4, 32, 0}, {QMV_MODE_AFFINE, 4, 64, 0}, {QMV_MODE_AFFINE, 4, 128, 0},
    {QMV_MODE_AFFINE, 5, 32, 0}, {QMV_MODE_AFFINE, 5, 64, 0}, {QMV_MODE_AFFINE, 5, 128, 0},
    {QMV_MODE_AFFINE, 6, 32, 0}, {QMV_MODE_AFFINE, 6, 64, 0}, {QMV_MODE_AFFINE, 6, 128, 0},
    {QMV_MODE_AFFINE, 8, 32, 0}, {QMV_MODE_AFFINE, 8, 64, 0}, {QMV_MODE_AFFINE, 8, 128, 0},
    {QMV_MODE_MXFP4, 4, 32, 0},  {QMV_MODE_NVFP4, 4, 16, 0},  {QMV_MODE_NVFP4, 4, 16, 1},
    {QMV_MODE_MXFP8, 8, 32, 0},
};
#define QT_NFMTS ((int)(sizeof QT_FMTS / sizeof QT_FMTS[0]))

static QT_UNUSED const char *qt_mname(qmv_mode m)
{
    return m == QMV_MODE_AFFINE  ? "affine"
           : m == QMV_MODE_MXFP4 ? "mxfp4"
           : m == QMV_MODE_NVFP4 ? "nvfp4"
                                 : "mxfp8";
}

static QT_UNUSED qmv_format qt_format(const qt_fmt *f)
{
    qmv_format q;
    q.mode = f->mode;
    q.bits = f->bits;
    q.group_size = f->group;
    return q;
}

/* ---- buffers ------------------------------------------------------------------------------- */

static QT_UNUSED void *qt_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    ck_assert_msg(p != NULL, "out of memory (%zu bytes)", n);
    return p;
}

/* Index of the first differing byte, or -1. */
static QT_UNUSED long qt_first_diff(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return (long)i;
    return -1;
}

static QT_UNUSED int qt_all_bytes(const void *p, size_t n, unsigned char v)
{
    const unsigned char *x = p;
    for (size_t i = 0; i < n; i++)
        if (x[i] != v)
            return 0;
    return 1;
}

#endif /* QMV_TEST_UTIL_H */
