/* The small products of RNN steps ([batch, H] x [H, gates x H], the same right operand every
 * step): register tiles of 4 rows x 16 columns accumulate over k straight from the operands.
 * OpenBLAS packs both operands on every call, a tenth of a [32, 64] x [64, 256] step; here
 * the right operand is laid out once per layer (transposed, row major) and read in place. */
#include <string.h>

#include "onnx_int.h"
#include "onnx_vec.h"

#define S_LD(p) (*(const gq_onnx_v8u *)(p))
#define S_ST(p, v) (*(gq_onnx_v8u *)(p) = (v))

/* Rows i0 .. i0 + mb, vectors j0 .. j0 + nb of C (+)= A B. always_inline: mb and nb are
 * constants at each call, so the accumulators stay in registers. */
static inline __attribute__((always_inline)) void s_tile(int mb, int nb, int64_t k, const float *a,
                                                         int64_t lda, const float *b, int64_t ldb,
                                                         float *c, int64_t ldc, bool acc)
{
    gq_onnx_v8 s[4][2];
    for (int i = 0; i < mb; i++)
        for (int v = 0; v < nb; v++)
            s[i][v] = acc ? (gq_onnx_v8)S_LD(c + i * ldc + 8 * v) : (gq_onnx_v8){0};
    for (int64_t p = 0; p < k; p++) {
        gq_onnx_v8 bv[2];
        for (int v = 0; v < nb; v++)
            bv[v] = S_LD(b + p * ldb + 8 * v);
        for (int i = 0; i < mb; i++) {
            float x = a[i * lda + p];
            for (int v = 0; v < nb; v++)
                s[i][v] += x * bv[v];
        }
    }
    for (int i = 0; i < mb; i++)
        for (int v = 0; v < nb; v++)
            S_ST(c + i * ldc + 8 * v, s[i][v]);
}

GQ_ONNX_SIMD void gq_onnx_sgemm_small(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                                      const float *b, int64_t ldb, float *c, int64_t ldc, bool acc)
{
    for (int64_t j = 0; j < n; j += 16) {
        bool two = n - j >= 16;
        int64_t i = 0;
        for (; i + 4 <= m; i += 4)
            if (two)
                s_tile(4, 2, k, a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc, acc);
            else
                s_tile(4, 1, k, a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc, acc);
        for (; i < m; i++)
            if (two)
                s_tile(1, 2, k, a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc, acc);
            else
                s_tile(1, 1, k, a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc, acc);
    }
}
