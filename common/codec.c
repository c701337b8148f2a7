/*
 * codec.c - exact conversions between float32 and fp16, bf16, E2M1, E4M3FN (see codec.h).
 * Everything is integer bit code, so results do not depend on the compiler or the FPU mode.
 */
#include "codec.h"

const float qmvi_e2m1_values[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                    -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

float qmvi_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t mant = h & 0x3FFu;
    if (exp == 0x1F) /* Inf or NaN: keep the payload */
        return qmvi_f32_from_bits(sign | 0x7F800000u | (mant << 13));
    if (exp != 0)
        return qmvi_f32_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
    if (mant == 0)
        return qmvi_f32_from_bits(sign);
    /* Subnormal: normalise. The value is mant * 2^-24. */
    int shift = 0;
    while (!(mant & 0x400u)) {
        mant <<= 1;
        shift++;
    }
    mant &= 0x3FFu;
    return qmvi_f32_from_bits(sign | ((uint32_t)(113 - shift) << 23) | (mant << 13));
}

/* Shifts m right by s bits (s >= 1), rounding to nearest even. */
static uint32_t qmvi_shift_rne(uint32_t m, unsigned s)
{
    if (s >= 32)
        return 0; /* below half of the smallest step even for m's top bit */
    uint32_t kept = m >> s;
    uint32_t rem = m & ((1u << s) - 1u);
    uint32_t half = 1u << (s - 1);
    if (rem > half || (rem == half && (kept & 1u)))
        kept++;
    return kept;
}

uint16_t qmvi_f32_to_f16(float f)
{
    uint32_t u = qmvi_f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t exp = (u >> 23) & 0xFFu;
    uint32_t mant = u & 0x7FFFFFu;
    if (exp == 0xFF) {
        if (mant == 0)
            return (uint16_t)(sign | 0x7C00u);
        return (uint16_t)(sign | 0x7E00u | (mant >> 13));
    }
    int e = (int)exp - 127; /* unbiased; f32 subnormals are far below fp16's range */
    if (e > 15)
        return (uint16_t)(sign | 0x7C00u);
    if (e >= -14) {
        /* Normal fp16 range: keep 10 of 23 mantissa bits. A carry out of the mantissa
         * correctly bumps the exponent, up to Inf. */
        uint32_t v = ((uint32_t)(e + 15) << 10) | (mant >> 13);
        uint32_t rem = mant & 0x1FFFu;
        if (rem > 0x1000u || (rem == 0x1000u && (v & 1u)))
            v++;
        return (uint16_t)(sign | v);
    }
    if (exp == 0)
        return sign; /* f32 subnormal: |f| < 2^-126, far below half of 2^-24 */
    /* Subnormal fp16: value = (1.mant) * 2^e = m * 2^(e-23), step 2^-24. */
    uint32_t m = mant | 0x800000u;
    unsigned s = (unsigned)(-14 - e) + 13u; /* bits to drop to reach units of 2^-24 */
    return (uint16_t)(sign | qmvi_shift_rne(m, s));
}

uint16_t qmvi_f32_to_bf16(float f)
{
    uint32_t u = qmvi_f32_bits(f);
    if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x7FFFFFu))
        return (uint16_t)((u >> 16) | 0x0040u);
    uint32_t rem = u & 0xFFFFu;
    uint32_t v = u >> 16;
    if (rem > 0x8000u || (rem == 0x8000u && (v & 1u)))
        v++;
    return (uint16_t)v;
}

float qmvi_round_to(qmv_dtype t, float f)
{
    switch (t) {
    case QMV_DTYPE_F16:
        return qmvi_f16_to_f32(qmvi_f32_to_f16(f));
    case QMV_DTYPE_BF16:
        return qmvi_bf16_to_f32(qmvi_f32_to_bf16(f));
    default:
        return f;
    }
}

float qmvi_load(qmv_dtype t, const void *p, int64_t i)
{
    switch (t) {
    case QMV_DTYPE_F16: {
        uint16_t h;
        memcpy(&h, (const unsigned char *)p + 2 * i, 2);
        return qmvi_f16_to_f32(h);
    }
    case QMV_DTYPE_BF16: {
        uint16_t h;
        memcpy(&h, (const unsigned char *)p + 2 * i, 2);
        return qmvi_bf16_to_f32(h);
    }
    default: {
        float f;
        memcpy(&f, (const unsigned char *)p + 4 * i, 4);
        return f;
    }
    }
}

void qmvi_store(qmv_dtype t, void *p, int64_t i, float f)
{
    switch (t) {
    case QMV_DTYPE_F16: {
        uint16_t h = qmvi_f32_to_f16(f);
        memcpy((unsigned char *)p + 2 * i, &h, 2);
        break;
    }
    case QMV_DTYPE_BF16: {
        uint16_t h = qmvi_f32_to_bf16(f);
        memcpy((unsigned char *)p + 2 * i, &h, 2);
        break;
    }
    default:
        memcpy((unsigned char *)p + 4 * i, &f, 4);
        break;
    }
}

unsigned qmvi_e2m1_from_f32_rne(float x)
{
    uint32_t u = qmvi_f32_bits(x);
    unsigned sign = (u >> 28) & 0x8u;
    uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u)
        return sign | 0x7u;
    /* Thresholds on |x| (exact floats): ties go to the even code. */
    float m = qmvi_f32_from_bits(a);
    unsigned c;
    if (m > 5.0f)
        c = 7; /* 6, saturating */
    else if (m >= 3.5f)
        c = 6; /* 4 (3.5 and 5 are ties to 4) */
    else if (m > 2.5f)
        c = 5; /* 3 */
    else if (m >= 1.75f)
        c = 4; /* 2 */
    else if (m > 1.25f)
        c = 3; /* 1.5 */
    else if (m >= 0.75f)
        c = 2; /* 1 */
    else if (m > 0.25f)
        c = 1; /* 0.5 */
    else
        c = 0;
    return sign | c;
}

unsigned qmvi_e4m3_from_f32_rne(float x, unsigned nan_code)
{
    uint32_t u = qmvi_f32_bits(x);
    unsigned sign = (u >> 24) & 0x80u;
    uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u)
        return nan_code & 0xFFu;
    if (a >= 0x43E00000u) /* >= 448 (and Inf): saturate */
        return sign | 0x7Eu;
    unsigned exp = a >> 23;
    uint32_t mant = a & 0x7FFFFFu;
    if (exp >= 121) {
        /* Normal E4M3 (>= 2^-6): keep 3 mantissa bits; a carry bumps the exponent. Values
         * below 448 never round past 448 here (464 and up were caught above). */
        uint32_t v = ((exp - 120u) << 3) | (mant >> 20);
        uint32_t rem = mant & 0xFFFFFu;
        if (rem > 0x80000u || (rem == 0x80000u && (v & 1u)))
            v++;
        return sign | v;
    }
    if (exp == 0)
        return sign; /* f32 subnormal, far below 2^-10 */
    /* Subnormal E4M3: units of 2^-9. value = (1.mant) * 2^(exp-127) = m * 2^(exp-150). */
    uint32_t m = mant | 0x800000u;
    unsigned s = 141u - exp; /* drop to units of 2^-9: 150 - 9 - exp */
    return sign | qmvi_shift_rne(m, s);
}
