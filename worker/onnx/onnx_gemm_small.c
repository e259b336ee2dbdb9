/* The small products of RNN steps ([batch, H] x [H, gates x H], the same right operand every
 * step): register tiles of up to 6 rows x 16 columns accumulate over k straight from the
 * operands, with no per-call packing (OpenBLAS packs both operands on every call, a tenth of
 * a [32, 64] x [64, 256] step).
 * - The right operands are packed once per layer (gq_onnx_rows_pack): panels of 16 columns,
 *   k rows of 16 floats each, so a tile streams through one contiguous panel. Read in place
 *   from a row-major [k, 256] operand (a 1 KB stride) a panel's lines fell into 4 of L1's 64
 *   sets and came from L2.
 * - The left rows are read through pointers, so a step's input rows (gathered by time and
 *   sequence length) and its state rows feed one accumulation: the bias, the input
 *   projection and the recurrent product leave the registers once.
 * - Six rows of two vectors keep 12 accumulators in flight, enough to cover the FMA latency.
 * On the 2-core test VM a [32, 40 + 64] x [104, 256] step runs at the FMA peak a register-only
 * loop measures there (19.6 G multiply-adds/s); OpenBLAS ran it at 8.4-9.5. The tiles rely
 * on -O3 unrolling their row and vector loops: at -O2 GCC keeps the accumulators in memory. */
#include <string.h>

#include "onnx_int.h"
#include "onnx_vec.h"

#define S_LD(p) (*(const gq_onnx_v8u *)(p))
#define S_ST(p, v) (*(gq_onnx_v8u *)(p) = (v))
#define S_MR 6  /* rows of a tile */
#define S_MV 12 /* accumulators of a tile */

/* s[i][v] += a[i][0..k) B[.., 8v .. 8v + 8) for the tile's mb rows and nb vectors: b the
 * tile's first panel; nb 1 is a last panel of 8 columns, else nb / 2 panels of 16, 16 k
 * floats apart. always_inline: mb and nb are constants at each call, so the accumulators
 * stay in registers. */
static inline __attribute__((always_inline)) void
s_acc(int mb, int nb, const float *const *a, int64_t k, const float *b, gq_onnx_v8 s[S_MR][S_MV])
{
    const float *ar[S_MR];
    int64_t pw = nb == 1 ? 8 : 16;
    for (int i = 0; i < mb; i++)
        ar[i] = a[i];
    for (int64_t p = 0; p < k; p++) {
        gq_onnx_v8 bv[S_MV];
        for (int v = 0; v < nb; v++)
            bv[v] = S_LD(b + v / 2 * 16 * k + p * pw + 8 * (v % 2));
        for (int i = 0; i < mb; i++) {
            float x = ar[i][p];
            for (int v = 0; v < nb; v++)
                s[i][v] += x * bv[v];
        }
    }
}

/* Rows i0 .. i0 + mb, columns j0 .. j0 + 8 nb of C. */
static inline __attribute__((always_inline)) void s_tile(int mb, int nb, const gq_onnx_rows_t *pr,
                                                         int np, int64_t i0, int64_t j0,
                                                         const float *bias, bool acc, float *c,
                                                         int64_t ldc)
{
    gq_onnx_v8 s[S_MR][S_MV];
    for (int v = 0; v < nb; v++) {
        gq_onnx_v8 init = bias ? (gq_onnx_v8)S_LD(bias + j0 + 8 * v) : (gq_onnx_v8){0};
        for (int i = 0; i < mb; i++)
            s[i][v] = acc ? (gq_onnx_v8)S_LD(c + (i0 + i) * ldc + j0 + 8 * v) : init;
    }
    for (int q = 0; q < np; q++)
        s_acc(mb, nb, pr[q].a + i0, pr[q].k, pr[q].b + j0 * pr[q].k, s);
    for (int i = 0; i < mb; i++)
        for (int v = 0; v < nb; v++)
            S_ST(c + (i0 + i) * ldc + j0 + 8 * v, s[i][v]);
}

/* One column panel's tiles, the row count's tail in one narrower tile. */
#define S_TILES(nb)                                                                                \
    do {                                                                                           \
        int64_t i = 0;                                                                             \
        for (; i + S_MR <= m; i += S_MR)                                                           \
            s_tile(S_MR, nb, pr, np, i, j, bias, acc, c, ldc);                                     \
        switch (m - i) {                                                                           \
        case 5:                                                                                    \
            s_tile(5, nb, pr, np, i, j, bias, acc, c, ldc);                                        \
            break;                                                                                 \
        case 4:                                                                                    \
            s_tile(4, nb, pr, np, i, j, bias, acc, c, ldc);                                        \
            break;                                                                                 \
        case 3:                                                                                    \
            s_tile(3, nb, pr, np, i, j, bias, acc, c, ldc);                                        \
            break;                                                                                 \
        case 2:                                                                                    \
            s_tile(2, nb, pr, np, i, j, bias, acc, c, ldc);                                        \
            break;                                                                                 \
        case 1:                                                                                    \
            s_tile(1, nb, pr, np, i, j, bias, acc, c, ldc);                                        \
            break;                                                                                 \
        default:                                                                                   \
            break;                                                                                 \
        }                                                                                          \
    } while (0)

/* Rows i0 .. i0 + mb over every column, w panels per tile: the rows left under 6 (a batch of
 * 1, or the last rows of a step) keep up to 12 accumulators in flight in wider tiles; one
 * row in 2 would be latency-bound. One row's leftover panels make one more tile, others'
 * one tile each; the last 8 columns one more. */
static inline __attribute__((always_inline)) void s_band(int mb, int w, int64_t n,
                                                         const gq_onnx_rows_t *pr, int np,
                                                         int64_t i0, const float *bias, bool acc,
                                                         float *c, int64_t ldc)
{
    int64_t j = 0, n16 = n - n % 16;
    for (; j + 16 * w <= n16; j += 16 * w)
        s_tile(mb, 2 * w, pr, np, i0, j, bias, acc, c, ldc);
    if (mb == 1) {
        switch ((n16 - j) / 16) {
        case 5:
            s_tile(1, 10, pr, np, i0, j, bias, acc, c, ldc);
            break;
        case 4:
            s_tile(1, 8, pr, np, i0, j, bias, acc, c, ldc);
            break;
        case 3:
            s_tile(1, 6, pr, np, i0, j, bias, acc, c, ldc);
            break;
        case 2:
            s_tile(1, 4, pr, np, i0, j, bias, acc, c, ldc);
            break;
        case 1:
            s_tile(1, 2, pr, np, i0, j, bias, acc, c, ldc);
            break;
        default:
            break;
        }
    } else {
        for (; j < n16; j += 16)
            s_tile(mb, 2, pr, np, i0, j, bias, acc, c, ldc);
    }
    if (n16 < n)
        s_tile(mb, 1, pr, np, i0, n16, bias, acc, c, ldc);
}

GQ_ONNX_SIMD void gq_onnx_sgemm_rows(int64_t m, int64_t n, const gq_onnx_rows_t *pr, int np,
                                     const float *bias, bool acc, float *c, int64_t ldc)
{
    /* Whole 6-row tiles panel by panel (a panel stays in L1 across them), then the rest. */
    int64_t m6 = m - m % S_MR;
    for (int64_t j = 0; m6 && j < n; j += 16)
        for (int64_t i = 0; i < m6; i += S_MR)
            if (n - j >= 16)
                s_tile(S_MR, 2, pr, np, i, j, bias, acc, c, ldc);
            else
                s_tile(S_MR, 1, pr, np, i, j, bias, acc, c, ldc);
    switch (m - m6) {
    case 5:
        s_band(5, 1, n, pr, np, m6, bias, acc, c, ldc);
        break;
    case 4:
        s_band(4, 1, n, pr, np, m6, bias, acc, c, ldc);
        break;
    case 3:
        s_band(3, 2, n, pr, np, m6, bias, acc, c, ldc);
        break;
    case 2:
        s_band(2, 2, n, pr, np, m6, bias, acc, c, ldc);
        break;
    case 1:
        s_band(1, 6, n, pr, np, m6, bias, acc, c, ldc);
        break;
    default:
        break;
    }
}

void gq_onnx_rows_pack(const float *w, int64_t n, int64_t k, int64_t sn, int64_t sk, float *dst)
{
    for (int64_t j = 0; j < n; j += 16) {
        int64_t nc = n - j >= 16 ? 16 : n - j;
        for (int64_t p = 0; p < k; p++)
            for (int64_t c = 0; c < nc; c++)
                *dst++ = w[(j + c) * sn + p * sk];
    }
}
