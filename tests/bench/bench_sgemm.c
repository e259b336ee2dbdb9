/* bench_sgemm: the GEMM under gq's ONNX executor (gq_onnx_sgemm, worker/onnx/onnx_util.c)
 * against OpenBLAS's cblas_sgemm called directly, in the same run, on the shapes the test
 * models of tests/py/check_onnx_models.py give it (conv as im2col, Gemm, LSTM/GRU steps).
 *
 * gq's GEMM *is* OpenBLAS: gq_onnx_sgemm checks the dims and forwards to cblas_sgemm, or to
 * cblas_sgemv when A is one row (batch-1 RNN steps and Gemm). So this measures the wrapper:
 * ~1.00 where it forwards to SGEMM, below 1 where GEMV beats SGEMM on a row vector. Timed as
 * CPU time of this thread with OpenBLAS on one thread, best of several segments, ours and
 * OpenBLAS's segments interleaved; the answers are compared (relative 1e-5: GEMV may sum in
 * another order).
 *
 *   bench_sgemm [--quick]
 *
 * Exit 1 on a differing answer. */
#include "benchlib.h"
#include "onnx_int.h"
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_TARGET 1.10 /* the few-microsecond shapes move by ~5% between segments */

static double s_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    const char *what;
    int m, n, k;
    bool tb;
} s_shape_t;

static const s_shape_t s_shapes[] = {
    {"kws conv1d 80->64 k3 (im2col), T=98", 64, 98, 240, false},
    {"kws pointwise 64->96, T=49", 96, 49, 64, false},
    {"cnn conv2d 16->32 3x3 (im2col), 16x16", 32, 256, 144, false},
    {"Gemm 32x96 -> 12 (transB)", 32, 12, 96, true},
    {"LSTM input proj [50*32, 40] x W^T", 1600, 256, 40, true},
    {"LSTM step [32, 64] x R^T", 32, 256, 64, true},
    {"GRU step [1, 48] x R^T (GEMV)", 1, 144, 48, true},
    {"LSTM step [1, 64] x R^T (GEMV)", 1, 256, 64, true},
    {"square 256", 256, 256, 256, false},
};

/* Seconds per call of one side, best of segs segments of reps calls. */
static double s_time(bool ours, const s_shape_t *s, const float *a, const float *b, float *c,
                     int reps)
{
    double t0 = s_cpu_s();
    for (int r = 0; r < reps; r++) {
        if (ours)
            gq_onnx_sgemm(false, s->tb, s->m, s->n, s->k, 1.0f, a, s->k, b, s->tb ? s->k : s->n,
                          0.0f, c, s->n);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans, s->m, s->n,
                        s->k, 1.0f, a, s->k, b, s->tb ? s->k : s->n, 0.0f, c, s->n);
    }
    return (s_cpu_s() - t0) / reps;
}

int main(int argc, char **argv)
{
    gqb_init("bench_sgemm");
    bool quick = argc > 1 && !strcmp(argv[1], "--quick");
    int segs = quick ? 3 : 9;
    double target_s = quick ? 0.01 : 0.05; /* per segment */
    openblas_set_num_threads(1);
    printf("bench_sgemm: gq_onnx_sgemm / cblas_sgemm (OpenBLAS, 1 thread), CPU time, best of "
           "%d\n(gq's GEMM is OpenBLAS: this is the wrapper's overhead, and GEMV for one row)\n",
           segs);
    printf("%-42s %8s %10s %10s %7s\n", "shape", "GFLOP/s", "ours us", "blas us", "ratio");
    int worse = 0;
    for (size_t i = 0; i < sizeof s_shapes / sizeof s_shapes[0]; i++) {
        const s_shape_t *s = &s_shapes[i];
        size_t na = (size_t)s->m * s->k, nb = (size_t)s->k * s->n, nc = (size_t)s->m * s->n;
        float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b),
              *c1 = malloc(nc * sizeof *c1), *c2 = malloc(nc * sizeof *c2);
        if (!a || !b || !c1 || !c2)
            gqb_die("out of memory");
        srand(7);
        for (size_t j = 0; j < na; j++)
            a[j] = (float)rand() / RAND_MAX - 0.5f;
        for (size_t j = 0; j < nb; j++)
            b[j] = (float)rand() / RAND_MAX - 0.5f;
        double once = s_time(false, s, a, b, c2, 3);
        int reps = once > 0 ? (int)(target_s / once) + 1 : 1000;
        double best_o = 1e9, best_b = 1e9;
        for (int g = 0; g < segs; g++) {
            double to = s_time(true, s, a, b, c1, reps), tb = s_time(false, s, a, b, c2, reps);
            best_o = to < best_o ? to : best_o;
            best_b = tb < best_b ? tb : best_b;
        }
        for (size_t j = 0; j < nc; j++) /* GEMV (m = 1) may sum in another order */
            if (fabsf(c1[j] - c2[j]) > 1e-5f * (1.0f + fabsf(c2[j])))
                gqb_die("%s: element %zu: gq_onnx_sgemm %g, cblas_sgemm %g", s->what, j,
                        (double)c1[j], (double)c2[j]);
        double ratio = best_o / best_b;
        worse += ratio > S_TARGET;
        printf("%-42s %8.2f %10.2f %10.2f %7.3f\n", s->what,
               2.0 * s->m * s->n * s->k / best_b / 1e9, best_o * 1e6, best_b * 1e6, ratio);
        free(a), free(b), free(c1), free(c2);
    }
    printf("target ours/OpenBLAS <= %.2f: %s\n", S_TARGET, worse ? "missed" : "met");
    return 0;
}
