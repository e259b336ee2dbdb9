/* f16 conversions against a naive reference built from ldexp and nearbyint, and against
 * the compiler's _Float16 where it has one. */
#include "half.h"
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            if (++s_failures > 20)                                                                 \
                exit(1);                                                                           \
        }                                                                                          \
    } while (0)

static uint64_t s_rng = 0x9e3779b97f4a7c15u;

static uint64_t s_next(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

/* The value of f16 bits from the definition of binary16. */
static double s_ref_decode(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    double v;
    if (exp == 0x1f)
        v = mant ? NAN : INFINITY;
    else if (exp == 0)
        v = ldexp(mant, -24);
    else
        v = ldexp(1024 + mant, exp - 25);
    return sign ? -v : v;
}

/* Nearest f16 value of x, ties to even, from the definition: the f16 grid spacing at x's
 * binade, and nearbyint under the default rounding mode (ties to even). */
static double s_ref_round(double x)
{
    if (isnan(x) || isinf(x))
        return x;
    double ax = fabs(x);
    int e;
    frexp(ax, &e); /* ax = m * 2^e, m in [0.5, 1) */
    int binade = e - 1;
    if (binade < -14)
        binade = -14;
    double ulp = ldexp(1.0, binade - 10);
    double r = nearbyint(ax / ulp) * ulp;
    if (r >= 65536.0)
        r = INFINITY;
    return copysign(r, x);
}

static uint32_t s_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

static float s_from_bits(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

static void s_test_all_values(void)
{
    int nan_count = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = gq_f16_to_f32((uint16_t)h);
        double ref = s_ref_decode((uint16_t)h);
        if (isnan(ref)) {
            nan_count++;
            CHECK(isnan(f), "0x%04x should decode to NaN, got %g", h, f);
        } else {
            CHECK((double)f == ref && !signbit(f) == !signbit(ref),
                  "0x%04x decodes to %.9g, expected %.9g", h, f, ref);
        }
        uint16_t back = gq_f16_from_f32(f);
        CHECK(back == h, "0x%04x -> %.9g (0x%08x) -> 0x%04x: round trip broke", h, f, s_bits(f),
              back);
        /* float -> double quiets signalling NaNs in hardware, so NaNs only stay NaN. */
        uint16_t via64 = gq_f16_from_f64((double)f);
        if (isnan(f))
            CHECK((via64 & 0x7fff) > 0x7c00, "NaN 0x%04x via f64 -> 0x%04x", h, via64);
        else
            CHECK(via64 == h, "0x%04x via f64 -> 0x%04x", h, via64);
        CHECK(gq_f16_to_f64((uint16_t)h) == (double)f || isnan(f), "to_f64 of 0x%04x", h);
    }
    CHECK(nan_count == 2046, "expected 2046 NaN encodings, saw %d", nan_count);
    printf("half: all 65536 values decode exactly and round-trip\n");
}

static void s_expect(double x, uint16_t want, const char *what)
{
    uint16_t got32 = gq_f16_from_f32((float)x), got64 = gq_f16_from_f64(x);
    if ((double)(float)x == x)
        CHECK(got32 == want, "%s: from_f32(%.17g) = 0x%04x, expected 0x%04x", what, x, got32, want);
    CHECK(got64 == want, "%s: from_f64(%.17g) = 0x%04x, expected 0x%04x", what, x, got64, want);
}

static void s_test_rounding(void)
{
    s_expect(1.0, 0x3c00, "one");
    s_expect(1.0 + ldexp(1, -11), 0x3c00, "tie to even, down");
    s_expect(1.0 + 3 * ldexp(1, -11), 0x3c02, "tie to even, up");
    s_expect(1.0 + ldexp(1, -11) + ldexp(1, -20), 0x3c01, "just above a tie");
    s_expect(1.0 + ldexp(1, -11) - ldexp(1, -22), 0x3c00, "just below a tie");
    s_expect(2047.0 / 1024.0 + ldexp(1, -11), 0x4000, "carry into the exponent");
    s_expect(-1.5, 0xbe00, "negative");
    s_expect(0.1, 0x2e66, "0.1");
    s_expect(-0.0, 0x8000, "negative zero");
    printf("half: round to nearest even\n");
}

static void s_test_overflow(void)
{
    s_expect(65504.0, 0x7bff, "largest finite");
    s_expect(65519.0, 0x7bff, "below the overflow tie");
    s_expect(65520.0, 0x7c00, "overflow tie goes to even = inf");
    s_expect(1e6, 0x7c00, "overflow");
    s_expect(-1e6, 0xfc00, "negative overflow");
    s_expect(1e300, 0x7c00, "f64 overflow");
    s_expect(INFINITY, 0x7c00, "inf");
    s_expect(-INFINITY, 0xfc00, "-inf");
    CHECK((gq_f16_from_f32(NAN) & 0x7fff) > 0x7c00, "NaN must stay NaN");
    CHECK((gq_f16_from_f64(NAN) & 0x7fff) > 0x7c00, "NaN must stay NaN (f64)");
    /* A NaN whose payload sits only in bits f16 drops must not become inf. */
    CHECK((gq_f16_from_f32(s_from_bits(0x7f800001u)) & 0x7fff) > 0x7c00, "low-payload NaN");
    printf("half: overflow to inf, NaN kept\n");
}

static void s_test_subnormals(void)
{
    s_expect(ldexp(1, -24), 0x0001, "smallest subnormal");
    s_expect(ldexp(1, -25), 0x0000, "half the smallest subnormal ties to zero");
    s_expect(ldexp(1, -25) * 1.0000001, 0x0001, "above the tie");
    s_expect(3 * ldexp(1, -25), 0x0002, "1.5 units ties to 2");
    s_expect(5 * ldexp(1, -25), 0x0002, "2.5 units ties to 2");
    s_expect(1023 * ldexp(1, -24), 0x03ff, "largest subnormal");
    s_expect(1023.5 * ldexp(1, -24), 0x0400, "tie between subnormal and normal");
    s_expect(ldexp(1, -14), 0x0400, "smallest normal");
    s_expect(ldexp(1, -26), 0x0000, "underflow");
    s_expect(-ldexp(1, -24), 0x8001, "negative subnormal");
    s_expect(FLT_MIN / 4, 0x0000, "f32 subnormal");
    s_expect(1e-310, 0x0000, "f64 subnormal");
    printf("half: subnormals\n");
}

/* Random floats over the whole range and especially near f16's range, against the
 * reference rounding; and the bulk versions against the scalar ones. */
static void s_test_random(void)
{
    enum { N = 200000 };
    static float src[N];
    static uint16_t h[N];
    static float back[N];
    for (int i = 0; i < N; i++) {
        uint32_t b = (uint32_t)s_next();
        if (i % 2) /* exponents around f16's range: 2^-26 .. 2^17 */
            b = (b & 0x807fffffu) | ((uint32_t)(101 + s_next() % 44) << 23);
        src[i] = s_from_bits(b);
    }
    gq_f16_from_f32_n(h, src, N);
    gq_f16_to_f32_n(back, h, N);
    for (int i = 0; i < N; i++) {
        float x = src[i];
        CHECK(h[i] == gq_f16_from_f32(x), "bulk differs from scalar at %d", i);
        CHECK(s_bits(back[i]) == s_bits(gq_f16_to_f32(h[i])), "bulk decode differs at %d", i);
        if (isnan(x)) {
            CHECK(isnan(back[i]), "NaN %08x lost", s_bits(x));
            continue;
        }
        double want = s_ref_round(x);
        CHECK((double)back[i] == want && !signbit(back[i]) == !signbit(want),
              "from_f32(%.9g) = %.9g, reference %.9g", x, back[i], want);
        double xd = (double)x + ldexp((double)x, -30); /* bits a float cannot hold */
        double wd = s_ref_round(xd);
        double gd = gq_f16_to_f64(gq_f16_from_f64(xd));
        CHECK(gd == wd && !signbit(gd) == !signbit(wd), "from_f64(%.17g) = %.9g, reference %.9g",
              xd, gd, wd);
#ifdef __FLT16_MAX__
        CHECK((double)(_Float16)x == (double)back[i], "_Float16(%.9g) = %.9g, ours %.9g", x,
              (double)(_Float16)x, back[i]);
        CHECK((double)(_Float16)xd == gd, "_Float16(%.17g) = %.9g, ours %.9g", xd,
              (double)(_Float16)xd, gd);
#endif
    }
#ifdef __FLT16_MAX__
    printf("half: %d random values match the reference and _Float16\n", N);
#else
    printf("half: %d random values match the reference\n", N);
#endif
}

int main(void)
{
    s_test_all_values();
    s_test_rounding();
    s_test_overflow();
    s_test_subnormals();
    s_test_random();
    if (s_failures) {
        fprintf(stderr, "test_half: %d failures\n", s_failures);
        return 1;
    }
    printf("test_half: ok\n");
    return 0;
}
