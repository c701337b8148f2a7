/*
 * test_util.h - the test kit of the Check suites (and of the CUDA suite): a deterministic RNG,
 * *independent oracles* for the number formats (FORMATS.md §3.1, §4) written with double
 * arithmetic and brute force, never with the library's codec, element load/store of dtype
 * arrays, the table of test formats, buffers, and failure collection. Header-only (static
 * functions), so each suite stays one file.
 *
 * Why the oracles share no code with common/codec.h: the tests compare the library with an
 * emulation written from FORMATS.md and IEEE 754, and the internal qmvi_* symbols are not
 * exported from a shared libqmv anyway.
 *
 * Why double arithmetic is exact enough here:
 *   - tu_round_fmt() divides by a power of two (exact) and rounds with nearbyint() in the
 *     default rounding mode (ties to even), so it is a correct RNE rounding of its argument.
 *   - A +, -, *, / of two values of a format with p <= 24 significant bits, evaluated in
 *     binary64 (53 >= 2p + 2) and then rounded to that format, equals the correctly rounded
 *     operation (Figueroa's double-rounding theorem). The oracles use this for float32,
 *     float16 and bfloat16 arithmetic.
 *   - Every float16, bfloat16 and float32 value is a float, so (float)tu_load(...) and
 *     (float)tu_e4m3_value(...) are exact where an emulation computes in float.
 *
 * Debugging: Check forks every test; run a test program with CK_FORK=no under gdb, and use
 * CK_RUN_SUITE / CK_RUN_CASE to select one test case.
 */
#ifndef QMV_TESTS_TEST_UTIL_H
#define QMV_TESTS_TEST_UTIL_H

#include <check.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmv.h"

/* ---- RNG: splitmix64, deterministic across platforms ---------------------------------- */

typedef struct {
    uint64_t s;
} tu_rng;

static inline uint64_t tu_next(tu_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint32_t tu_u32(tu_rng *r)
{
    return (uint32_t)(tu_next(r) >> 32);
}

/* Uniform in [0, 1). */
static inline double tu_unif(tu_rng *r)
{
    return (double)(tu_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [lo, hi]. */
static inline int64_t tu_range(tu_rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(tu_next(r) % (uint64_t)(hi - lo + 1));
}

/* tu_range for int bounds (the same draw). */
static inline int tu_int(tu_rng *r, int lo, int hi)
{
    return (int)tu_range(r, lo, hi);
}

/* Standard normal (Box-Muller). */
static inline double tu_normal(tu_rng *r)
{
    double u1 = tu_unif(r), u2 = tu_unif(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- Float bits ---------------------------------------------------------------------- */

static inline uint32_t tu_fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float tu_ffrom(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- Rounding oracle ----------------------------------------------------------------- */

/* x rounded to nearest even in a binary format with p significant bits (implicit bit
 * included), smallest normal exponent emin and largest exponent emax (gradual underflow);
 * results above the largest finite value become +-Inf (IEEE overflow under RNE). NaN, Inf
 * and zeros pass through. */
static inline double tu_round_fmt(double x, int p, int emin, int emax)
{
    if (x == 0.0 || isnan(x) || isinf(x))
        return x;
    int ex;
    frexp(fabs(x), &ex); /* |x| = m * 2^ex, m in [0.5, 1) */
    int e = ex - 1;
    if (e < emin)
        e = emin;
    double q = ldexp(1.0, e - (p - 1)); /* the spacing of the format at |x| */
    double r = nearbyint(fabs(x) / q) * q;
    if (r > ldexp(2.0 - ldexp(1.0, 1 - p), emax))
        r = INFINITY;
    return copysign(r, x);
}

static inline double tu_round_f32(double x)
{
    return tu_round_fmt(x, 24, -126, 127);
}
static inline double tu_round_f16(double x)
{
    return tu_round_fmt(x, 11, -14, 15);
}
static inline double tu_round_bf16(double x)
{
    return tu_round_fmt(x, 8, -126, 127);
}

static inline double tu_round_dtype(qmv_dtype t, double x)
{
    switch (t) {
    case QMV_DTYPE_F16:
        return tu_round_f16(x);
    case QMV_DTYPE_BF16:
        return tu_round_bf16(x);
    default:
        return tu_round_f32(x);
    }
}

/* ---- Decoding oracles (from the bit fields, with ldexp) ------------------------------ */

static inline double tu_f16_value(uint16_t h)
{
    unsigned e = (h >> 10) & 31u, m = h & 1023u;
    double v;
    if (e == 0)
        v = ldexp((double)m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexp((double)(1024u + m), (int)e - 25);
    return (h & 0x8000u) ? -v : v;
}

static inline double tu_bf16_value(uint16_t h)
{
    unsigned e = (h >> 7) & 255u, m = h & 127u;
    double v;
    if (e == 0)
        v = ldexp((double)m, -133);
    else if (e == 255)
        v = m ? NAN : INFINITY;
    else
        v = ldexp((double)(128u + m), (int)e - 134);
    return (h & 0x8000u) ? -v : v;
}

static inline double tu_f32_value(uint32_t u)
{
    unsigned e = (u >> 23) & 255u;
    uint32_t m = u & 0x7FFFFFu;
    double v;
    if (e == 0)
        v = ldexp((double)m, -149);
    else if (e == 255)
        v = m ? NAN : INFINITY;
    else
        v = ldexp((double)(0x800000u + m), (int)e - 150);
    return (u & 0x80000000u) ? -v : v;
}

/* E2M1: sign bit 3, exponent bits 2-1 (bias 1), mantissa bit 0. */
static inline double tu_e2m1_value(unsigned c)
{
    unsigned e = (c >> 1) & 3u, m = c & 1u;
    double v = e == 0 ? 0.5 * m : ldexp(2.0 + m, (int)e - 2);
    return (c & 8u) ? -v : v;
}

/* E4M3FN: sign bit 7, exponent 6-3 (bias 7), mantissa 2-0; S.1111.111 is NaN, no Inf. */
static inline double tu_e4m3_value(unsigned c)
{
    unsigned e = (c >> 3) & 15u, m = c & 7u;
    double v;
    if (e == 15 && m == 7)
        v = NAN;
    else if (e == 0)
        v = ldexp((double)m, -9);
    else
        v = ldexp(8.0 + m, (int)e - 10);
    return (c & 0x80u) ? -v : v;
}

/* E8M0: 2^(b-127); 0 is 2^-127; 0xFF is NaN (qmv.h). */
static inline double tu_e8m0_value(unsigned b)
{
    return b == 0xFFu ? NAN : ldexp(1.0, (int)b - 127);
}

/* ---- Encoding of exactly representable values --------------------------------------- */

/* Bits of an fp16 value r (already representable: the result of tu_round_f16, or +-Inf). */
static inline uint16_t tu_f16_bits(double r)
{
    uint16_t s = signbit(r) ? 0x8000u : 0u;
    double a = fabs(r);
    if (isinf(a))
        return s | 0x7C00u;
    if (a < 0x1p-14)
        return (uint16_t)(s | (uint16_t)(a * 0x1p24));
    int ex;
    double m = frexp(a, &ex);
    return (uint16_t)(s | (unsigned)(ex - 1 + 15) << 10 | (unsigned)((2.0 * m - 1.0) * 1024.0));
}

static inline uint16_t tu_bf16_bits(double r)
{
    uint16_t s = signbit(r) ? 0x8000u : 0u;
    double a = fabs(r);
    if (isinf(a))
        return s | 0x7F80u;
    if (a < 0x1p-126)
        return (uint16_t)(s | (uint16_t)(a * 0x1p133));
    int ex;
    double m = frexp(a, &ex);
    return (uint16_t)(s | (unsigned)(ex - 1 + 127) << 7 | (unsigned)((2.0 * m - 1.0) * 128.0));
}

static inline uint32_t tu_f32_bits(double r)
{
    uint32_t s = signbit(r) ? 0x80000000u : 0u;
    double a = fabs(r);
    if (isinf(a))
        return s | 0x7F800000u;
    if (a < 0x1p-126)
        return s | (uint32_t)(a * 0x1p149);
    int ex;
    double m = frexp(a, &ex);
    return s | (uint32_t)(ex - 1 + 127) << 23 | (uint32_t)((2.0 * m - 1.0) * 8388608.0);
}

/* ---- Dtype arrays through the oracles ------------------------------------------------ */

static inline size_t tu_dsize(qmv_dtype t)
{
    return t == QMV_DTYPE_F32 ? 4 : 2;
}

static inline double tu_load(qmv_dtype t, const void *p, int64_t i)
{
    const unsigned char *b = (const unsigned char *)p;
    if (t == QMV_DTYPE_F32) {
        uint32_t u;
        memcpy(&u, b + 4 * i, 4);
        return tu_f32_value(u);
    }
    uint16_t h;
    memcpy(&h, b + 2 * i, 2);
    return t == QMV_DTYPE_F16 ? tu_f16_value(h) : tu_bf16_value(h);
}

/* Raw bits of element i (zero-extended). */
static inline uint32_t tu_load_bits(qmv_dtype t, const void *p, int64_t i)
{
    const unsigned char *b = (const unsigned char *)p;
    if (t == QMV_DTYPE_F32) {
        uint32_t u;
        memcpy(&u, b + 4 * i, 4);
        return u;
    }
    uint16_t h;
    memcpy(&h, b + 2 * i, 2);
    return h;
}

/* Stores x rounded to t (RNE). NaN is stored as the dtype's default quiet NaN. */
static inline void tu_store(qmv_dtype t, void *p, int64_t i, double x)
{
    unsigned char *b = (unsigned char *)p;
    if (t == QMV_DTYPE_F32) {
        uint32_t u = isnan(x) ? 0x7FC00000u : tu_f32_bits(tu_round_f32(x));
        memcpy(b + 4 * i, &u, 4);
    } else {
        uint16_t h;
        if (t == QMV_DTYPE_F16)
            h = isnan(x) ? 0x7E00u : tu_f16_bits(tu_round_f16(x));
        else
            h = isnan(x) ? 0x7FC0u : tu_bf16_bits(tu_round_bf16(x));
        memcpy(b + 2 * i, &h, 2);
    }
}

/* Stores a raw bit pattern (the low 16 bits for 2-byte dtypes). */
static inline void tu_store_bits(qmv_dtype t, void *p, int64_t i, uint32_t bits)
{
    unsigned char *b = (unsigned char *)p;
    if (t == QMV_DTYPE_F32) {
        memcpy(b + 4 * i, &bits, 4);
    } else {
        uint16_t h = (uint16_t)bits;
        memcpy(b + 2 * i, &h, 2);
    }
}

static inline const char *tu_dname(qmv_dtype t)
{
    return t == QMV_DTYPE_F32 ? "float32" : t == QMV_DTYPE_F16 ? "float16" : "bfloat16";
}

static inline const char *tu_mname(qmv_mode m)
{
    return m == QMV_MODE_AFFINE  ? "affine"
           : m == QMV_MODE_MXFP4 ? "mxfp4"
           : m == QMV_MODE_NVFP4 ? "nvfp4"
                                 : "mxfp8";
}

/* ---- Brute-force element encoders ------------------------------------------------------ */

/*
 * Nearest representable value by brute force over the non-negative codes, ties to the even
 * code (the code's lowest bit is the mantissa's lowest bit in both formats), sign copied,
 * magnitudes above the largest finite value saturate. Exactness of |a - v| in double: for
 * a >= 2^-20 the difference of a 24-bit a and a code value (lowest bit >= 2^-9, highest
 * <= 2^8) fits in 53 bits; for smaller a the nearest value is 0 by a margin far larger than
 * the rounding error, so no tie can be manufactured.
 */
static inline unsigned tu_e2m1_rne(double x)
{
    unsigned s = signbit(x) ? 8u : 0u;
    if (isnan(x))
        return s | 7u; /* CUTLASS: NaN -> sign|7 */
    double a = fabs(x);
    if (a >= 6.0)
        return s | 7u;
    unsigned best = 0;
    double bd = INFINITY;
    for (unsigned c = 0; c < 8; c++) {
        double d = fabs(a - tu_e2m1_value(c));
        if (d < bd || (d == bd && !(c & 1u))) {
            bd = d;
            best = c;
        }
    }
    return s | best;
}

/* E4M3 RNE, saturating at 448 (finite and Inf); NaN gives nan_code. */
static inline unsigned tu_e4m3_rne(double x, unsigned nan_code)
{
    if (isnan(x))
        return nan_code;
    unsigned s = signbit(x) ? 0x80u : 0u;
    double a = fabs(x);
    if (a >= 448.0)
        return s | 0x7Eu;
    unsigned best = 0;
    double bd = INFINITY;
    for (unsigned c = 0; c < 0x7F; c++) {
        double d = fabs(a - tu_e4m3_value(c));
        if (d < bd || (d == bd && !(c & 1u))) {
            bd = d;
            best = c;
        }
    }
    return s | best;
}

/* MLX's CPU E2M1 selection: argmin_i |x - LUT_i| with differences rounded to dtype d and
 * the first minimum winning (FORMATS.md §3.2), evaluated literally. NaN/Inf give 0. */
static inline unsigned tu_e2m1_argmin(double x, qmv_dtype d)
{
    unsigned best = 0;
    double bd = fabs(tu_round_dtype(d, x - tu_e2m1_value(0)));
    for (unsigned i = 1; i < 16; i++) {
        double dist = fabs(tu_round_dtype(d, x - tu_e2m1_value(i)));
        if (dist < bd) {
            bd = dist;
            best = i;
        }
    }
    return best;
}

/* Smallest integer e with 2^e >= s, for s > 0 (exact, from frexp). */
static inline int tu_ceil_log2(double s)
{
    int ex;
    double m = frexp(s, &ex);
    return m == 0.5 ? ex - 1 : ex;
}

/* floor(log2(s)) for s > 0. */
static inline int tu_floor_log2(double s)
{
    int ex;
    frexp(s, &ex);
    return ex - 1;
}

/* ---- Packed codes -------------------------------------------------------------------- */

/* Code i of a row of b-bit codes (LSB-first bit stream over little-endian words), read one
 * bit at a time: deliberately unlike the library's 64-bit window. */
static inline unsigned tu_code_get(const uint32_t *row, int64_t i, int bits)
{
    unsigned c = 0;
    for (int j = 0; j < bits; j++) {
        int64_t p = i * bits + j;
        c |= ((row[p / 32] >> (p % 32)) & 1u) << j;
    }
    return c;
}

static inline void tu_code_put(uint32_t *row, int64_t i, int bits, unsigned c)
{
    for (int j = 0; j < bits; j++) {
        int64_t p = i * bits + j;
        uint32_t m = 1u << (p % 32);
        if ((c >> j) & 1u)
            row[p / 32] |= m;
        else
            row[p / 32] &= ~m;
    }
}

/* ---- Test formats ------------------------------------------------------------------------ */

/* The formats every format-wide test covers: each affine bit width x group size (bits outer),
 * then mxfp4, nvfp4 without and with a global scale, mxfp8. */
typedef struct {
    qmv_mode mode;
    int bits;
    int group;
    int global; /* nvfp4 with a global scale */
} tu_fmt;

static const tu_fmt TU_FMTS[] = {
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
#define TU_NFMTS ((int)(sizeof TU_FMTS / sizeof TU_FMTS[0]))
#define TU_N_AFF (TU_NFMTS - 4) /* the affine rows, first in TU_FMTS; the 4 fp rows close it */

static inline qmv_format tu_format(const tu_fmt *f)
{
    qmv_format q;
    q.mode = f->mode;
    q.bits = f->bits;
    q.group_size = f->group;
    return q;
}

/* The index of a row of TU_FMTS. */
static inline int tu_fmt_index(qmv_mode mode, int bits, int group, int global)
{
    int i = 0;
    while (TU_FMTS[i].mode != mode || TU_FMTS[i].bits != bits || TU_FMTS[i].group != group ||
           TU_FMTS[i].global != global)
        i++;
    return i;
}

/* ---- Test data ----------------------------------------------------------------------------- */

/* tests/data: $QMV_TEST_DATA_DIR if set, else the QMV_TEST_DATA_DIR compile definition
 * (the build passes -DQMV_TEST_DATA_DIR="\"<source>/tests/data\""), else "tests/data". */
static inline const char *tu_data_dir(void)
{
    const char *e = getenv("QMV_TEST_DATA_DIR");
    if (e && *e)
        return e;
#ifdef QMV_TEST_DATA_DIR
    return QMV_TEST_DATA_DIR;
#else
    return "tests/data";
#endif
}

/* Reads a whole file; NULL on failure. */
static inline unsigned char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    unsigned char *buf = (unsigned char *)malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = (size_t)n;
    }
    return buf;
}

/* Collects the first failure message of a loop and counts failures, so that exhaustive
 * loops report one readable line instead of thousands. */
typedef struct {
    long count;
    char first[512];
} tu_fails;

#define TU_FAIL(fl, ...)                                                                           \
    do {                                                                                           \
        if ((fl)->count++ == 0)                                                                    \
            snprintf((fl)->first, sizeof(fl)->first, __VA_ARGS__);                                 \
    } while (0)

#define TU_ASSERT_NO_FAILS(fl, what)                                                               \
    ck_assert_msg((fl)->count == 0, "%s: %ld failures; first: %s", (what), (fl)->count, (fl)->first)

/* ---- Buffers ------------------------------------------------------------------------------ */

static inline void *tu_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    ck_assert_msg(p != NULL, "out of memory (%zu bytes)", n);
    return p;
}

/* Index of the first differing byte, or -1. */
static inline long tu_first_diff(const void *a, const void *b, size_t n)
{
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return (long)i;
    return -1;
}

static inline int tu_all_bytes(const void *p, size_t n, unsigned char v)
{
    const unsigned char *x = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++)
        if (x[i] != v)
            return 0;
    return 1;
}

#endif /* QMV_TESTS_TEST_UTIL_H */
