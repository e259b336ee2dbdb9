#include "half.h"

#include <string.h>

/* Rounds a magnitude to f16 bits. mant holds the source significand without its hidden bit
 * (mbits wide), e the unbiased exponent of a normal source number. Shared by the f32 and
 * f64 paths so that both round by the same rule. */
static uint16_t s_round(uint64_t mant, int mbits, int e)
{
    if (e > 15)
        return 0x7c00;
    if (e >= -14) {
        int shift = mbits - 10;
        uint64_t r = mant >> shift;
        uint64_t rem = mant & ((UINT64_C(1) << shift) - 1);
        uint64_t half = UINT64_C(1) << (shift - 1);
        /* A carry out of the mantissa bumps the exponent, and out of exponent 30 gives
         * exactly 0x7c00 (inf): the encoding makes both fall out of the addition. */
        uint64_t h = ((uint64_t)(e + 15) << 10) + r;
        if (rem > half || (rem == half && (r & 1)))
            h++;
        return (uint16_t)h;
    }
    /* Subnormal result: units of 2^-24. The value is sig * 2^(e - mbits). */
    int shift = mbits - 24 - e;
    if (shift > mbits + 1)
        return 0; /* below half the smallest subnormal */
    uint64_t sig = mant | (UINT64_C(1) << mbits);
    uint64_t r = sig >> shift;
    uint64_t rem = sig & ((UINT64_C(1) << shift) - 1);
    uint64_t half = UINT64_C(1) << (shift - 1);
    if (rem > half || (rem == half && (r & 1)))
        r++; /* 0x3ff + 1 = 0x400 is the smallest normal: again the encoding carries */
    return (uint16_t)r;
}

uint16_t gq_f16_from_f32(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    uint16_t sign = (uint16_t)((b >> 16) & 0x8000u);
    uint32_t exp = (b >> 23) & 0xffu;
    uint32_t mant = b & 0x7fffffu;
    if (exp == 0xff) {
        if (!mant)
            return sign | 0x7c00;
        /* Keep the payload's top bits so every f16 NaN survives a round trip; a payload
         * only in the low bits would read as inf, so it becomes a quiet NaN. */
        uint16_t p = (uint16_t)(mant >> 13);
        return sign | 0x7c00 | (p ? p : 0x200);
    }
    if (exp == 0)
        return sign; /* f32 subnormals are far below the f16 range */
    return sign | s_round(mant, 23, (int)exp - 127);
}

uint16_t gq_f16_from_f64(double x)
{
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    uint16_t sign = (uint16_t)((b >> 48) & 0x8000u);
    uint32_t exp = (uint32_t)(b >> 52) & 0x7ffu;
    uint64_t mant = b & ((UINT64_C(1) << 52) - 1);
    if (exp == 0x7ff) {
        if (!mant)
            return sign | 0x7c00;
        uint16_t p = (uint16_t)(mant >> 42);
        return sign | 0x7c00 | (p ? p : 0x200);
    }
    if (exp == 0)
        return sign;
    return sign | s_round(mant, 52, (int)exp - 1023);
}

float gq_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t b;
    if (exp == 0x1f) {
        b = sign | 0x7f800000u | (mant << 13);
    } else if (exp) {
        b = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (!mant) {
        b = sign;
    } else {
        /* Subnormal: shift the leading one into the hidden bit position. */
        int e = -14;
        while (!(mant & 0x400u)) {
            mant <<= 1;
            e--;
        }
        b = sign | ((uint32_t)(e + 127) << 23) | ((mant & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

double gq_f16_to_f64(uint16_t h)
{
    return (double)gq_f16_to_f32(h);
}

void gq_f16_from_f32_n(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = gq_f16_from_f32(src[i]);
}

void gq_f16_to_f32_n(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = gq_f16_to_f32(src[i]);
}
