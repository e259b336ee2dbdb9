/* gq_onnx_sgemm (the GEMM under MatMul, Gemm, 1x1 and im2col convs, RNN steps) against loops
 * in double: every transposition, alpha and beta, padded leading dims, the GEMV path (one
 * row), and products large enough to be split over gq's thread pool by rows or by columns
 * (at 1 and 3 threads); and gq_onnx_sgemm_rows, the RNN steps' unpacked kernel. */
#include "check.h"
#include "onnx_int.h"
#include "par.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    int64_t m, n, k;
} s_shape_t;

static float s_rand(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (float)((*seed >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* Runs one product and compares it with the loops; returns the worst relative error. */
static double s_one(bool ta, bool tb, const s_shape_t *s, float alpha, float beta)
{
    int64_t m = s->m, n = s->n, k = s->k, pad = 3;
    int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    int64_t arows = ta ? k : m, brows = tb ? n : k;
    float *a = malloc((size_t)(arows * lda) * sizeof *a);
    float *b = malloc((size_t)(brows * ldb) * sizeof *b);
    float *c = malloc((size_t)(m * ldc) * sizeof *c);
    double *want = malloc((size_t)(m * n) * sizeof *want);
    unsigned seed = (unsigned)(m * 131 + n * 7 + k);
    for (int64_t i = 0; i < arows * lda; i++)
        a[i] = s_rand(&seed);
    for (int64_t i = 0; i < brows * ldb; i++)
        b[i] = s_rand(&seed);
    for (int64_t i = 0; i < m * ldc; i++)
        c[i] = s_rand(&seed);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0;
            for (int64_t p = 0; p < k; p++)
                acc += (double)(ta ? a[p * lda + i] : a[i * lda + p]) *
                       (double)(tb ? b[j * ldb + p] : b[p * ldb + j]);
            want[i * n + j] = alpha * acc + (beta == 0 ? 0 : beta * (double)c[i * ldc + j]);
        }
    gq_onnx_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    double worst = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double e = fabs(c[i * ldc + j] - want[i * n + j]) / (fabs(want[i * n + j]) + sqrt(k));
            worst = e > worst ? e : worst;
        }
    free(a), free(b), free(c), free(want);
    return worst;
}

/* Fills n floats with s_rand. */
static float *s_fill(int64_t n, unsigned *seed)
{
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = s_rand(seed);
    return v;
}

/* gq_onnx_sgemm_rows (the RNN steps' kernel) against loops in double: row counts around its
 * 6-row tiles, column counts around its 16-column panels (a last panel of 8), one and two
 * operand pairs, the left rows in shuffled order through their pointers, from a bias, zeros
 * or C; the columns past n are left alone. */
static void s_test_rows(void)
{
    const int64_t ms[] = {1, 2, 3, 4, 5, 6, 7, 13, 33}, ns[] = {8, 16, 24, 40, 104, 256};
    const int64_t ks[] = {1, 7, 64};
    unsigned seed = 7;
    for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
            for (size_t ki = 0; ki < 3; ki++)
                for (int mode = 0; mode < 6; mode++) {
                    /* mode: 0/1 one pair, 2/3 two; even from a bias, odd adds to C (1) or
                     * starts from zeros (3, 5); 4 and 5: two pairs, the second k 40 */
                    int np = mode < 2 ? 1 : 2;
                    bool acc = mode == 1, with_bias = mode % 2 == 0;
                    int64_t m = ms[mi], n = ns[ni], k[2] = {ks[ki], mode >= 4 ? 40 : ks[2 - ki]};
                    int64_t ldc = n + 8, lda = k[0] + k[1] + 3;
                    float *a = s_fill(m * lda, &seed), *w[2], *pk[2];
                    float *c = s_fill(m * ldc, &seed), *bias = s_fill(n, &seed);
                    const float **rows = malloc((size_t)(2 * m) * sizeof *rows);
                    double *want = malloc((size_t)(m * n) * sizeof *want);
                    for (int q = 0; q < 2; q++) {
                        w[q] = s_fill(n * k[q], &seed); /* [n, k]: a row per output */
                        pk[q] = malloc((size_t)(n * k[q] + 1) * sizeof *pk[q]);
                        gq_onnx_rows_pack(w[q], n, k[q], k[q], 1, pk[q]);
                    }
                    for (int64_t i = 0; i < m; i++) { /* row i reads a's row m - 1 - i */
                        rows[i] = a + (m - 1 - i) * lda;
                        rows[m + i] = rows[i] + k[0];
                    }
                    for (int64_t i = 0; i < m; i++)
                        for (int64_t j = 0; j < n; j++) {
                            double s = acc ? c[i * ldc + j] : with_bias ? bias[j] : 0;
                            for (int q = 0; q < np; q++)
                                for (int64_t p = 0; p < k[q]; p++)
                                    s += (double)rows[q * m + i][p] * w[q][j * k[q] + p];
                            want[i * n + j] = s;
                        }
                    float pad = c[ldc - 1];
                    const gq_onnx_rows_t pr[2] = {{rows, k[0], pk[0]}, {rows + m, k[1], pk[1]}};
                    gq_onnx_sgemm_rows(m, n, pr, np, with_bias ? bias : NULL, acc, c, ldc);
                    double worst = 0;
                    for (int64_t i = 0; i < m; i++)
                        for (int64_t j = 0; j < n; j++) {
                            double e = fabs(c[i * ldc + j] - want[i * n + j]) /
                                       (1 + sqrt((double)(k[0] + k[1])));
                            worst = e > worst ? e : worst;
                        }
                    bool keep = c[ldc - 1] == pad;
                    CHECK(worst < 1e-5 && keep,
                          "rows %lldx%lld k %lld+%lld mode %d: error %g, pad %s", (long long)m,
                          (long long)n, (long long)k[0], (long long)k[1], mode, worst,
                          keep ? "kept" : "written");
                    free(a), free(c), free(bias), free(rows), free(want);
                    for (int q = 0; q < 2; q++)
                        free(w[q]), free(pk[q]);
                }
}

int main(void)
{
    s_test_rows();
    const s_shape_t shapes[] = {
        {5, 7, 3},      /* small: one call */
        {1, 300, 200},  /* one row: GEMV */
        {300, 257, 70}, /* split by rows */
        {40, 1100, 60}, /* split by columns */
        {97, 33, 400},  /* partial panels */
    };
    const int threads[] = {1, 3};
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        gq_par_set_threads(threads[t]);
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            for (int tr = 0; tr < 4; tr++)
                for (int ab = 0; ab < 2; ab++) {
                    float alpha = ab ? 2.0f : 1.0f, beta = ab ? 0.5f : 0.0f;
                    double e = s_one(tr & 1, tr & 2, &shapes[i], alpha, beta);
                    CHECK(e < 1e-5,
                          "%d threads, %lldx%lldx%lld ta %d tb %d alpha %g beta %g: "
                          "error %g",
                          threads[t], (long long)shapes[i].m, (long long)shapes[i].n,
                          (long long)shapes[i].k, tr & 1, (tr & 2) != 0, alpha, beta, e);
                }
    }
    gq_par_set_threads(1);
    printf("test_onnx_sgemm: %d checks, %d failed\n", s_checks, s_failed);
    return s_failed != 0;
}
