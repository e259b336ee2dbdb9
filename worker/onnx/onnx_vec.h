/* Eight floats at a time with GCC's vector extensions, for the ONNX kernels' activations
 * (onnx_util.c) and the fused RNN cells (onnx_ops_rnn.c): GCC does not vectorize these
 * approximations' loops by itself (it keeps the clamps' branches). Helpers take and give
 * pointers: passing 32-byte vectors by value changes the ABI of the baseline build. Include
 * from kernel files only (the names are short). */
#ifndef GQ_ONNX_VEC_H
#define GQ_ONNX_VEC_H

#include <stdint.h>

typedef float gq_onnx_v8 __attribute__((vector_size(32)));
typedef int32_t gq_onnx_v8i __attribute__((vector_size(32)));
typedef float gq_onnx_v8u __attribute__((vector_size(32), aligned(4), may_alias));

/* lo <= x <= hi by masks (the vector extensions have no ?: in C); NaN stays NaN. */
#define GQ_ONNX_CLAMP8(x, lo, hi)                                                                  \
    do {                                                                                           \
        gq_onnx_v8 lo_ = (gq_onnx_v8){0} + (lo), hi_ = (gq_onnx_v8){0} + (hi);                     \
        gq_onnx_v8i m_ = (x) < lo_;                                                                \
        (x) = (gq_onnx_v8)(((gq_onnx_v8i)lo_ & m_) | ((gq_onnx_v8i)(x) & ~m_));                    \
        m_ = (x) > hi_;                                                                            \
        (x) = (gq_onnx_v8)(((gq_onnx_v8i)hi_ & m_) | ((gq_onnx_v8i)(x) & ~m_));                    \
    } while (0)

/* *v = e^*v as Cephes' expf (reduction by ln 2, degree-6 polynomial, ~2 ulp), clamped to
 * where 2^n is a normal float: e^-87.3 (1.2e-38) for anything below; NaN stays NaN. */
static inline __attribute__((always_inline)) void gq_onnx_exp8(gq_onnx_v8 *v)
{
    gq_onnx_v8 x = *v;
    GQ_ONNX_CLAMP8(x, -87.3f, 88.3f);
    gq_onnx_v8 n = x * 1.44269504088896341f + 12582912.0f; /* round to nearest by the magic add */
    n -= 12582912.0f;
    gq_onnx_v8 r = x - n * 0.693359375f + n * 2.12194440e-4f;
    gq_onnx_v8 p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    gq_onnx_v8i e = (__builtin_convertvector(n, gq_onnx_v8i) + 127) << 23;
    *v = p * (gq_onnx_v8)e;
}

/* tanh(x) = *n / *q, Eigen's rational approximation (at most 3.5e-7 off, absolute and
 * relative) left undivided, so a caller can share one division among several. q lies in
 * [0.0049, 0.9]: products of a few stay normal. */
static inline __attribute__((always_inline)) void gq_onnx_tanh_nq(gq_onnx_v8 x, gq_onnx_v8 *n,
                                                                  gq_onnx_v8 *q)
{
    GQ_ONNX_CLAMP8(x, -7.90531110763549805f, 7.90531110763549805f);
    /* Estrin's scheme: 4 dependent steps for the numerator where Horner's takes 7, so the
     * chains of a fused RNN cell stay short. */
    gq_onnx_v8 y = x * x, y2 = y * y, y4 = y2 * y2;
    gq_onnx_v8 lo = (y * 5.12229709037114e-08f + 1.48572235717979e-05f) * y2 +
                    (y * 6.37261928875436e-04f + 4.89352455891786e-03f);
    gq_onnx_v8 hi =
        y2 * -2.76076847742355e-16f + (y * 2.00018790482477e-13f + -8.60467152213735e-11f);
    *n = x * (hi * y4 + lo);
    *q = (y * 1.19825839466702e-06f + 1.18534705686654e-04f) * y2 +
         (y * 2.26843463243900e-03f + 4.89352518554385e-03f);
}

#endif
