/*
 * check_codec.c - the scalar codecs of common/codec.h against independent oracles.
 *
 * Decoders are checked exhaustively (every fp16, bf16, E2M1, E4M3 and E8M0 code) against
 * values computed from the bit fields with ldexp. Encoders are checked over structured sets
 * (every code's value, every midpoint between neighbours, their float neighbours, specials)
 * plus millions of random bit patterns, against oracles in double arithmetic (fp16, bf16)
 * or brute force over all codes (E2M1, E4M3); see tests/test_util.h.
 *
 * Debug a failure in gdb with CK_FORK=no.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "qmv.h"
#include "test_util.h"

#define N_RANDOM     4000000 /* random bit patterns per fp16/bf16 encoder */
#define N_RANDOM_FP8 1500000

/* ---- Decoders ------------------------------------------------------------------------ */

START_TEST(f16_decode_all)
{
    tu_fails fl = {0};
    for (uint32_t h = 0; h < 65536; h++) {
        float f = qmvi_f16_to_f32((uint16_t)h);
        uint32_t got = tu_fbits(f);
        double want = tu_f16_value((uint16_t)h);
        uint32_t wb;
        if (isnan(want)) /* contract: NaN keeps sign and payload */
            wb = (h & 0x8000u) << 16 | 0x7F800000u | (h & 0x3FFu) << 13;
        else
            wb = tu_f32_bits(want);
        if (got != wb)
            TU_FAIL(&fl, "fp16 0x%04x -> 0x%08x, want 0x%08x", h, got, wb);
    }
    TU_ASSERT_NO_FAILS(&fl, "qmvi_f16_to_f32");
}
END_TEST

START_TEST(bf16_decode_all)
{
    tu_fails fl = {0};
    for (uint32_t h = 0; h < 65536; h++) {
        float f = qmvi_bf16_to_f32((uint16_t)h);
        uint32_t got = tu_fbits(f);
        double want = tu_bf16_value((uint16_t)h);
        if (got != h << 16 || (!isnan(want) && got != tu_f32_bits(want)))
            TU_FAIL(&fl, "bf16 0x%04x -> 0x%08x (%.9g), want %.9g", h, got, f, want);
    }
    TU_ASSERT_NO_FAILS(&fl, "qmvi_bf16_to_f32");
}
END_TEST

START_TEST(e2m1_decode_all)
{
    tu_fails fl = {0};
    for (unsigned c = 0; c < 64; c++) { /* the high bits must be ignored */
        uint32_t got = tu_fbits(qmvi_e2m1_to_f32(c));
        uint32_t want = tu_f32_bits(tu_e2m1_value(c & 15u));
        if (got != want)
            TU_FAIL(&fl, "E2M1 0x%x -> 0x%08x, want 0x%08x", c, got, want);
        if (c < 16 && tu_fbits(qmvi_e2m1_values[c]) != want)
            TU_FAIL(&fl, "qmvi_e2m1_values[%u] = 0x%08x, want 0x%08x", c,
                    tu_fbits(qmvi_e2m1_values[c]), want);
    }
    /* spot values from FORMATS.md §3.1 */
    static const float lut[16] = {0,     0.5f,  1,  1.5f,  2,  3,  4,  6,
                                  -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
    for (unsigned c = 0; c < 16; c++)
        if (tu_fbits(qmvi_e2m1_to_f32(c)) != tu_fbits(lut[c]))
            TU_FAIL(&fl, "E2M1 %u is not the FORMATS.md LUT value %g", c, lut[c]);
    TU_ASSERT_NO_FAILS(&fl, "qmvi_e2m1_to_f32");
}
END_TEST

START_TEST(e4m3_decode_all)
{
    tu_fails fl = {0};
    for (unsigned c = 0; c < 256; c++) {
        float f = qmvi_e4m3_to_f32(c);
        double want = tu_e4m3_value(c);
        if (isnan(want)) {
            if (!isnan(f))
                TU_FAIL(&fl, "E4M3 0x%02x -> %g, want NaN (qmv.h; MLX's CPU gives 480)", c, f);
        } else if (tu_fbits(f) != tu_f32_bits(want)) {
            TU_FAIL(&fl, "E4M3 0x%02x -> %.9g (0x%08x), want %.9g", c, f, tu_fbits(f), want);
        }
    }
    ck_assert_float_eq(qmvi_e4m3_to_f32(0x01), 0x1p-9f);
    ck_assert_float_eq(qmvi_e4m3_to_f32(0x08), 0x1p-6f);
    ck_assert_float_eq(qmvi_e4m3_to_f32(0x7E), 448.0f);
    ck_assert_float_eq(qmvi_e4m3_to_f32(0xFE), -448.0f);
    ck_assert_uint_eq(tu_fbits(qmvi_e4m3_to_f32(0x80)), 0x80000000u);
    TU_ASSERT_NO_FAILS(&fl, "qmvi_e4m3_to_f32");
}
END_TEST

START_TEST(e8m0_decode_all)
{
    tu_fails fl = {0};
    for (unsigned b = 0; b < 256; b++) {
        float f = qmvi_e8m0_to_f32(b);
        double want = tu_e8m0_value(b);
        if (isnan(want)) {
            if (!isnan(f))
                TU_FAIL(&fl, "E8M0 0xFF -> %g, want NaN", f);
        } else if (tu_fbits(f) != tu_f32_bits(want)) {
            TU_FAIL(&fl, "E8M0 0x%02x -> 0x%08x, want 0x%08x", b, tu_fbits(f), tu_f32_bits(want));
        }
    }
    ck_assert_uint_eq(tu_fbits(qmvi_e8m0_to_f32(0)), 0x00400000u); /* 2^-127, subnormal */
    ck_assert_float_eq(qmvi_e8m0_to_f32(127), 1.0f);
    ck_assert_float_eq(qmvi_e8m0_to_f32(254), 0x1p127f);
    TU_ASSERT_NO_FAILS(&fl, "qmvi_e8m0_to_f32");
}
END_TEST

/* ---- fp16 / bf16 encoders ------------------------------------------------------------ */

static uint16_t want_f16(float f)
{
    uint32_t u = tu_fbits(f);
    if (isnan(f)) /* quiet NaN, sign and the top 10 payload bits (codec.h) */
        return (uint16_t)((u >> 16 & 0x8000u) | 0x7E00u | ((u & 0x7FFFFFu) >> 13));
    return tu_f16_bits(tu_round_f16(f));
}

static uint16_t want_bf16(float f)
{
    uint32_t u = tu_fbits(f);
    if (isnan(f)) /* quiet NaN with sign and the top payload bits */
        return (uint16_t)((u >> 16) | 0x0040u);
    return tu_bf16_bits(tu_round_bf16(f));
}

static void check_f16_one(float f, tu_fails *fl)
{
    uint16_t got = qmvi_f32_to_f16(f), want = want_f16(f);
    if (got != want)
        TU_FAIL(fl, "f32 0x%08x (%.9g) -> fp16 0x%04x, want 0x%04x", tu_fbits(f), f, got, want);
}

static void check_bf16_one(float f, tu_fails *fl)
{
    uint16_t got = qmvi_f32_to_bf16(f), want = want_bf16(f);
    if (got != want)
        TU_FAIL(fl, "f32 0x%08x (%.9g) -> bf16 0x%04x, want 0x%04x", tu_fbits(f), f, got, want);
}

/* f, its float neighbours, and their negatives. */
static void check_around(void (*chk)(float, tu_fails *), float f, tu_fails *fl)
{
    float v[3] = {f, nextafterf(f, INFINITY), nextafterf(f, -INFINITY)};
    for (int i = 0; i < 3; i++) {
        chk(v[i], fl);
        chk(-v[i], fl);
    }
}

static void check_specials(void (*chk)(float, tu_fails *), tu_fails *fl)
{
    static const uint32_t sp[] = {
        0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFFC00000u, 0x7F800001u,
        0xFF800001u, 0x7FBFFFFFu, 0x7FFFFFFFu, 0xFFFFFFFFu, 0x7FA00000u, 0x7F802000u, 0x7F801FFFu,
        0x00000001u, 0x80000001u, 0x007FFFFFu, 0x00800000u, 0x7F7FFFFFu, 0xFF7FFFFFu, 0x33000000u,
        0x33000001u, 0x32FFFFFFu, 0x33800000u, 0x387FC000u, 0x387FE000u, 0x477FE000u, 0x477FEFFFu,
        0x477FF000u, 0x477FF001u, 0x47800000u, 0x7F7F8000u, 0x7F7F7FFFu, 0x7F7EFFFFu, 0x7F7E8000u,
        0x3F808000u, 0x3F818000u, 0x3F800001u, 0x3F807FFFu,
    };
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++) {
        chk(tu_ffrom(sp[i]), fl);
        chk(tu_ffrom(sp[i] ^ 0x80000000u), fl);
    }
}

START_TEST(f32_to_f16_structured)
{
    tu_fails fl = {0};
    check_specials(check_f16_one, &fl);
    /* every fp16 value, every midpoint between consecutive finite values (including the
     * overflow midpoint 65520 between 65504 and 2^16), and their float neighbours */
    for (uint32_t h = 0; h < 0x7C00u; h++) {
        double v = tu_f16_value((uint16_t)h);
        double nx = h + 1 < 0x7C00u ? tu_f16_value((uint16_t)(h + 1)) : 65536.0;
        check_around(check_f16_one, (float)v, &fl);
        check_around(check_f16_one, (float)((v + nx) / 2), &fl);
        /* quarter points: clearly below / above the midpoint */
        check_around(check_f16_one, (float)(v + (nx - v) / 4), &fl);
        check_around(check_f16_one, (float)(v + 3 * (nx - v) / 4), &fl);
    }
    /* below the smallest subnormal: 2^-25 is a tie to 0, 2^-26 .. 2^-149 round to 0 */
    for (int e = -160; e < -14; e++)
        check_around(check_f16_one, ldexpf(1.0f, e), &fl);
    /* every NaN payload pattern in the top bits, both signs, quiet and signalling */
    for (uint32_t m = 1; m < (1u << 23); m += 0x1FFFu)
        for (int s = 0; s < 2; s++)
            check_f16_one(tu_ffrom((s ? 0xFF800000u : 0x7F800000u) | m), &fl);
    TU_ASSERT_NO_FAILS(&fl, "qmvi_f32_to_f16 (structured)");
}
END_TEST

START_TEST(f32_to_f16_random)
{
    tu_fails fl = {0};
    tu_rng r = {0x1234};
    for (long i = 0; i < N_RANDOM; i++) {
        uint32_t u = tu_u32(&r);
        if (i & 1) /* half of them inside fp16's exponent range and a little around it */
            u = (u & 0x807FFFFFu) | (uint32_t)tu_int(&r, 127 - 27, 127 + 17) << 23;
        check_f16_one(tu_ffrom(u), &fl);
    }
    TU_ASSERT_NO_FAILS(&fl, "qmvi_f32_to_f16 (random)");
}
END_TEST

START_TEST(f32_to_bf16_structured)
{
    tu_fails fl = {0};
    check_specials(check_bf16_one, &fl);
    for (uint32_t h = 0; h < 0x7F80u; h++) {
        uint32_t b = h << 16;
        check_around(check_bf16_one, tu_ffrom(b), &fl);           /* the value */
        check_around(check_bf16_one, tu_ffrom(b + 0x8000u), &fl); /* the midpoint above */
        check_around(check_bf16_one, tu_ffrom(b + 0x4000u), &fl);
        check_around(check_bf16_one, tu_ffrom(b + 0xC000u), &fl);
    }
    for (uint32_t m = 1; m < (1u << 23); m += 0x1FFFu)
        for (int s = 0; s < 2; s++)
            check_bf16_one(tu_ffrom((s ? 0xFF800000u : 0x7F800000u) | m), &fl);
    TU_ASSERT_NO_FAILS(&fl, "qmvi_f32_to_bf16 (structured)");
}
END_TEST

START_TEST(f32_to_bf16_random)
{
    tu_fails fl = {0};
    tu_rng r = {0x5678};
    for (long i = 0; i < N_RANDOM; i++)
        check_bf16_one(tu_ffrom(tu_u32(&r)), &fl);
    TU_ASSERT_NO_FAILS(&fl, "qmvi_f32_to_bf16 (random)");
}
END_TEST

/* ---- round_to, load, store ----------------------------------------------------------- */

START_TEST(round_to_all_dtypes)
{
    tu_fails fl = {0};
    tu_rng r = {0x9ABC};
    for (long i = 0; i < 600000; i++) {
        uint32_t u = tu_u32(&r);
        if (i % 3 == 0)
            u = (u & 0x807FFFFFu) | (uint32_t)tu_int(&r, 127 - 30, 127 + 20) << 23;
        float f = tu_ffrom(u);
        for (int t = 0; t < QMV_DTYPE_COUNT; t++) {
            float got = qmvi_round_to((qmv_dtype)t, f);
            if (t == QMV_DTYPE_F32) {
                if (tu_fbits(got) != u)
                    TU_FAIL(&fl, "round_to(float32, 0x%08x) changed it to 0x%08x", u,
                            tu_fbits(got));
                continue;
            }
            if (isnan(f)) {
                if (!isnan(got))
                    TU_FAIL(&fl, "round_to(%s, NaN 0x%08x) is not NaN", tu_dname((qmv_dtype)t), u);
                continue;
            }
            double want = tu_round_dtype((qmv_dtype)t, f);
            if (tu_fbits(got) != tu_f32_bits(want))
                TU_FAIL(&fl, "round_to(%s, 0x%08x = %.9g) = %.9g, want %.9g",
                        tu_dname((qmv_dtype)t), u, f, got, want);
        }
    }
    TU_ASSERT_NO_FAILS(&fl, "qmvi_round_to");
}
END_TEST

START_TEST(load_store)
{
    tu_fails fl = {0};
    tu_rng r = {0xDEF0};
    enum { N = 257 };
    unsigned char buf[4 * N + 8], ref[4 * N + 8];
    for (int t = 0; t < QMV_DTYPE_COUNT; t++) {
        size_t ds = tu_dsize((qmv_dtype)t);
        for (int off = 0; off < 4; off++) { /* misaligned bases too */
            unsigned char *p = buf + off;
            for (size_t i = 0; i < sizeof buf; i++)
                buf[i] = (unsigned char)tu_u32(&r);
            /* load: every element equals the oracle's decoding of its bits */
            for (int64_t i = 0; i < N; i++) {
                float got = qmvi_load((qmv_dtype)t, p, i);
                double want = tu_load((qmv_dtype)t, p, i);
                uint32_t bits = tu_load_bits((qmv_dtype)t, p, i);
                int ok;
                if (t == QMV_DTYPE_F32)
                    ok = tu_fbits(got) == bits;
                else if (t == QMV_DTYPE_BF16)
                    ok = tu_fbits(got) == bits << 16;
                else
                    ok = isnan(want) ? isnan(got) && (tu_fbits(got) >> 31) == (bits >> 15)
                                     : tu_fbits(got) == tu_f32_bits(want);
                if (!ok)
                    TU_FAIL(&fl, "load %s[%lld] bits 0x%x -> 0x%08x", tu_dname((qmv_dtype)t),
                            (long long)i, bits, tu_fbits(got));
            }
            /* store: exactly element i's bytes change, to the encoder's bits */
            for (int k = 0; k < 200; k++) {
                int64_t i = tu_int(&r, 0, N - 1);
                uint32_t u = tu_u32(&r);
                if (k & 1)
                    u = (u & 0x807FFFFFu) | (uint32_t)tu_int(&r, 127 - 26, 127 + 16) << 23;
                float f = tu_ffrom(u);
                memcpy(ref, buf, sizeof buf);
                qmvi_store((qmv_dtype)t, p, i, f);
                uint32_t want = t == QMV_DTYPE_F32   ? u
                                : t == QMV_DTYPE_F16 ? want_f16(f)
                                                     : want_bf16(f);
                uint32_t got = tu_load_bits((qmv_dtype)t, p, i);
                if (got != want)
                    TU_FAIL(&fl, "store %s 0x%08x wrote 0x%x, want 0x%x", tu_dname((qmv_dtype)t), u,
                            got, want);
                size_t lo = (size_t)off + (size_t)i * ds, hi = lo + ds;
                for (size_t j = 0; j < sizeof buf; j++)
                    if ((j < lo || j >= hi) && buf[j] != ref[j]) {
                        TU_FAIL(&fl, "store %s[%lld] changed byte %zu", tu_dname((qmv_dtype)t),
                                (long long)i, j);
                        break;
                    }
            }
        }
    }
    TU_ASSERT_NO_FAILS(&fl, "qmvi_load/qmvi_store");
}
END_TEST

/* ---- E2M1 encoder -------------------------------------------------------------------- */

static void check_e2m1_one(float f, tu_fails *fl)
{
    unsigned got = qmvi_e2m1_from_f32_rne(f), want = tu_e2m1_rne(f);
    if (got != want)
        TU_FAIL(fl, "e2m1_rne(0x%08x = %.9g) = 0x%x, want 0x%x", tu_fbits(f), f, got, want);
}

START_TEST(e2m1_encode_structured)
{
    tu_fails fl = {0};
    for (unsigned c = 0; c < 8; c++) {
        double v = tu_e2m1_value(c);
        double nx = c < 7 ? tu_e2m1_value(c + 1) : 8.0; /* 7 = midpoint 6..8, saturates */
        check_around(check_e2m1_one, (float)v, &fl);
        check_around(check_e2m1_one, (float)((v + nx) / 2), &fl);
        check_around(check_e2m1_one, (float)(v + (nx - v) / 4), &fl);
        check_around(check_e2m1_one, (float)(v + 3 * (nx - v) / 4), &fl);
    }
    static const float sp[] = {8.0f,   100.0f,    1e30f, FLT_MAX, INFINITY,
                               1e-30f, 0x1p-149f, 0.1f,  0.2f};
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++)
        check_around(check_e2m1_one, sp[i], &fl);
    TU_ASSERT_NO_FAILS(&fl, "qmvi_e2m1_from_f32_rne (structured)");
    /* the FORMATS.md §3.7 RNE example: 6 .75 -.25 1.75 -3.5 5 .5 -6 -> 7 2 8 4 E 6 1 F */
    static const float x[8] = {6, 0.75f, -0.25f, 1.75f, -3.5f, 5, 0.5f, -6};
    static const unsigned want[8] = {0x7, 0x2, 0x8, 0x4, 0xE, 0x6, 0x1, 0xF};
    for (int i = 0; i < 8; i++)
        ck_assert_uint_eq(qmvi_e2m1_from_f32_rne(x[i]), want[i]);
    ck_assert_uint_eq(qmvi_e2m1_from_f32_rne(0.0f), 0x0);
    ck_assert_uint_eq(qmvi_e2m1_from_f32_rne(-0.0f), 0x8);
    ck_assert_uint_eq(qmvi_e2m1_from_f32_rne(-0.1f), 0x8);
    ck_assert_uint_eq(qmvi_e2m1_from_f32_rne(INFINITY), 0x7);
    ck_assert_uint_eq(qmvi_e2m1_from_f32_rne(-INFINITY), 0xF);
    ck_assert_uint_eq(qmvi_e2m1_from_f32_rne(tu_ffrom(0x7FC00000u)), 0x7);
    ck_assert_uint_eq(qmvi_e2m1_from_f32_rne(tu_ffrom(0xFFC00000u)), 0xF);
    ck_assert_uint_eq(qmvi_e2m1_from_f32_rne(tu_ffrom(0x7F800001u)), 0x7);
    ck_assert_uint_eq(qmvi_e2m1_from_f32_rne(tu_ffrom(0xFF800001u)), 0xF);
}
END_TEST

START_TEST(e2m1_encode_random)
{
    tu_fails fl = {0};
    tu_rng r = {0x2468};
    for (long i = 0; i < 2000000; i++) {
        uint32_t u = tu_u32(&r);
        if (i & 1) /* dense around the E2M1 range */
            u = (u & 0x807FFFFFu) | (uint32_t)tu_int(&r, 127 - 4, 127 + 3) << 23;
        check_e2m1_one(tu_ffrom(u), &fl);
    }
    TU_ASSERT_NO_FAILS(&fl, "qmvi_e2m1_from_f32_rne (random)");
}
END_TEST

/* ---- E4M3 encoder -------------------------------------------------------------------- */

static void check_e4m3_nan(float f, unsigned nan_code, tu_fails *fl)
{
    unsigned got = qmvi_e4m3_from_f32_rne(f, nan_code);
    unsigned want = tu_e4m3_rne(f, nan_code);
    if (got != want)
        TU_FAIL(fl, "e4m3_rne(0x%08x = %.9g, nan 0x%02x) = 0x%02x, want 0x%02x", tu_fbits(f), f,
                nan_code, got, want);
}

static void check_e4m3_one(float f, tu_fails *fl)
{
    check_e4m3_nan(f, 0x7Fu, fl);
}

START_TEST(e4m3_encode_structured)
{
    tu_fails fl = {0};
    for (unsigned c = 0; c < 0x7F; c++) {
        double v = tu_e4m3_value(c);
        double nx = c < 0x7E ? tu_e4m3_value(c + 1) : 480.0; /* 464 ties 448/480 -> 448 */
        check_around(check_e4m3_one, (float)v, &fl);
        check_around(check_e4m3_one, (float)((v + nx) / 2), &fl);
        check_around(check_e4m3_one, (float)(v + (nx - v) / 4), &fl);
        check_around(check_e4m3_one, (float)(v + 3 * (nx - v) / 4), &fl);
    }
    for (int e = -160; e < 12; e++)
        check_around(check_e4m3_one, ldexpf(1.0f, e), &fl);
    static const float sp[] = {480.0f, 500.0f, 1e30f, FLT_MAX, INFINITY, 0x1p-149f, 0x1p-126f};
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++)
        check_around(check_e4m3_one, sp[i], &fl);
    TU_ASSERT_NO_FAILS(&fl, "qmvi_e4m3_from_f32_rne (structured)");
    /* named cases of FORMATS.md §3.1 */
    ck_assert_uint_eq(qmvi_e4m3_from_f32_rne(448.0f, 0x7F), 0x7E);
    ck_assert_uint_eq(qmvi_e4m3_from_f32_rne(464.0f, 0x7F), 0x7E);
    ck_assert_uint_eq(qmvi_e4m3_from_f32_rne(-464.0f, 0x7F), 0xFE);
    ck_assert_uint_eq(qmvi_e4m3_from_f32_rne(INFINITY, 0x7F), 0x7E);
    ck_assert_uint_eq(qmvi_e4m3_from_f32_rne(-INFINITY, 0x7F), 0xFE);
    ck_assert_uint_eq(qmvi_e4m3_from_f32_rne(0x1p-9f, 0x7F), 0x01);
    ck_assert_uint_eq(qmvi_e4m3_from_f32_rne(0x1p-10f, 0x7F), 0x00);
    ck_assert_uint_eq(qmvi_e4m3_from_f32_rne(-0x1p-10f, 0x7F), 0x80);
    ck_assert_uint_eq(qmvi_e4m3_from_f32_rne(nextafterf(0x1p-10f, 1.0f), 0x7F), 0x01);
    ck_assert_uint_eq(qmvi_e4m3_from_f32_rne(3 * 0x1p-10f, 0x7F), 0x02);
    ck_assert_uint_eq(qmvi_e4m3_from_f32_rne(0x1p-6f, 0x7F), 0x08);
    ck_assert_uint_eq(qmvi_e4m3_from_f32_rne(-0.0f, 0x7F), 0x80);
    /* NaN gives the caller's nan_code, whatever the NaN's sign or payload */
    static const uint32_t nans[] = {0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0xFFFFFFFFu};
    static const unsigned codes[] = {0x7F, 0xFF, 0x7E, 0xFE};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            ck_assert_uint_eq(qmvi_e4m3_from_f32_rne(tu_ffrom(nans[i]), codes[j]), codes[j]);
}
END_TEST

START_TEST(e4m3_encode_random)
{
    tu_fails fl = {0};
    tu_rng r = {0x1357};
    for (long i = 0; i < N_RANDOM_FP8; i++) {
        uint32_t u = tu_u32(&r);
        if (i & 1) /* dense around the E4M3 range */
            u = (u & 0x807FFFFFu) | (uint32_t)tu_int(&r, 127 - 11, 127 + 9) << 23;
        check_e4m3_nan(tu_ffrom(u), (i & 2) ? 0x7Fu : 0x7Eu, &fl);
    }
    TU_ASSERT_NO_FAILS(&fl, "qmvi_e4m3_from_f32_rne (random)");
}
END_TEST

/* Round trips: every finite code decodes and re-encodes to itself. */
START_TEST(fp8_fp4_round_trip)
{
    for (unsigned c = 0; c < 256; c++) {
        if ((c & 0x7F) == 0x7F)
            continue;
        ck_assert_uint_eq(qmvi_e4m3_from_f32_rne(qmvi_e4m3_to_f32(c), 0x7F), c);
    }
    for (unsigned c = 0; c < 16; c++)
        ck_assert_uint_eq(qmvi_e2m1_from_f32_rne(qmvi_e2m1_to_f32(c)), c);
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7C00u) == 0x7C00u && (h & 0x3FFu))
            continue;
        ck_assert_uint_eq(qmvi_f32_to_f16(qmvi_f16_to_f32((uint16_t)h)), h);
        if ((h & 0x7F80u) == 0x7F80u && (h & 0x7Fu))
            continue;
        ck_assert_uint_eq(qmvi_f32_to_bf16(qmvi_bf16_to_f32((uint16_t)h)), h);
    }
}
END_TEST

static Suite *codec_suite(void)
{
    Suite *s = suite_create("codec");
    TCase *tc = tcase_create("decode");
    tcase_add_test(tc, f16_decode_all);
    tcase_add_test(tc, bf16_decode_all);
    tcase_add_test(tc, e2m1_decode_all);
    tcase_add_test(tc, e4m3_decode_all);
    tcase_add_test(tc, e8m0_decode_all);
    suite_add_tcase(s, tc);
    tc = tcase_create("half");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, f32_to_f16_structured);
    tcase_add_test(tc, f32_to_f16_random);
    tcase_add_test(tc, f32_to_bf16_structured);
    tcase_add_test(tc, f32_to_bf16_random);
    tcase_add_test(tc, round_to_all_dtypes);
    tcase_add_test(tc, load_store);
    suite_add_tcase(s, tc);
    tc = tcase_create("fp8_fp4");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, e2m1_encode_structured);
    tcase_add_test(tc, e2m1_encode_random);
    tcase_add_test(tc, e4m3_encode_structured);
    tcase_add_test(tc, e4m3_encode_random);
    tcase_add_test(tc, fp8_fp4_round_trip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(codec_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
