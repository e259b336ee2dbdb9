/* bench_fft: the dsp.fft CPU kernel (through gq_cpu_kernel_find, as the backend runs it)
 * against FFTW doing the same transforms directly with one reused plan, in the same run:
 * c64 [64, N] forward, N = 256, 512, 1024, 2048, 4096 and the prime 1009. Both are timed as
 * CPU time of this thread (the machine may be shared), best of several segments, ours and
 * FFTW's segments interleaved; the answers are compared.
 *
 *   bench_fft [--quick]
 *
 * Target: ours / FFTW <= 1.25 at every N. Exit 1 on a wrong answer. */
#include "benchlib.h"
#include "cpu/cpu_ops.h"
#include "optable.h"
#include <fftw3.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_ROWS 64
#define S_TARGET 1.25

static double s_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    gq_args_t args;
    gq_view_t in, out;
    gq_cpu_kernel_fn fn;
} s_ours_t;

static void s_ours_init(s_ours_t *o, float *in, float *out, int n)
{
    const gq_op_spec_t *op = gq_op_find("dsp.fft");
    char err[GQ_ERRLEN];
    if (!op || gq_op_resolve(op, NULL, 0, &o->args, err, sizeof err) != GQ_OK)
        gqb_die("dsp.fft: %s", op ? err : "not in the op table");
    o->in.desc = (gq_tdesc_t){.dtype = GQ_C64, .ndim = 2, .shape = {S_ROWS, n}};
    o->in.data = in;
    o->in.nbytes = gq_tdesc_nbytes(&o->in.desc);
    o->out = o->in;
    o->out.data = out;
    o->fn = gq_cpu_kernel_find("dsp.fft");
    if (!o->fn)
        gqb_die("no CPU kernel for dsp.fft");
}

static void s_ours_run(s_ours_t *o)
{
    char err[GQ_ERRLEN];
    if (o->fn(&o->args, &o->in, 1, &o->out, 1, err, sizeof err) != GQ_OK)
        gqb_die("dsp.fft failed: %s", err);
}

int main(int argc, char **argv)
{
    gqb_init("bench_fft");
    int quick = argc > 1 && !strcmp(argv[1], "--quick");
    static const int sizes[] = {256, 512, 1024, 2048, 4096, 1009};
    int segs = quick ? 3 : 9;
    double worst = 0;
    int bad = 0;
    gqb_pin_to(0);
    gqb_arm_alarm(600);
    printf("dsp.fft c64 [%d, N] forward: ours (kernel) / FFTW (plan reuse, fftwf_execute_dft "
           "per row), CPU time per transform\n",
           S_ROWS);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int n = sizes[s];
        size_t bytes = (size_t)S_ROWS * (size_t)n * 2 * sizeof(float);
        float *in = fftwf_malloc(bytes), *ours = fftwf_malloc(bytes), *peer = fftwf_malloc(bytes);
        if (!in || !ours || !peer)
            gqb_die("no memory for N=%d", n);
        uint64_t r = 0x9e3779b97f4a7c15u ^ (uint64_t)n;
        for (size_t i = 0; i < bytes / sizeof(float); i++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            in[i] = (float)((double)(r >> 11) / 9007199254740992.0 - 0.5);
        }
        /* Rows of an odd N are not all 16-byte aligned: FFTW needs an unaligned plan. */
        unsigned fl = FFTW_MEASURE | (n % 2 ? FFTW_UNALIGNED : 0);
        gqb_phase = "planning";
        fftwf_plan p =
            fftwf_plan_dft_1d(n, (fftwf_complex *)peer, (fftwf_complex *)ours, FFTW_FORWARD, fl);
        if (!p)
            gqb_die("FFTW cannot plan N=%d", n);
        s_ours_t o;
        s_ours_init(&o, in, ours, n);
        s_ours_run(&o); /* our plan, page faults */
        gqb_phase = "timing";
        /* Enough transforms per segment for ~20 ms. */
        int reps = 1;
        for (double t = 0; t < 0.02; reps *= 2) {
            double t0 = s_cpu_s();
            for (int k = 0; k < reps; k++)
                s_ours_run(&o);
            t = s_cpu_s() - t0;
        }
        double best_o = 1e9, best_p = 1e9;
        for (int g = 0; g < segs; g++) {
            double t0 = s_cpu_s();
            for (int k = 0; k < reps; k++)
                s_ours_run(&o);
            double t1 = s_cpu_s();
            for (int k = 0; k < reps; k++)
                for (int row = 0; row < S_ROWS; row++)
                    fftwf_execute_dft(p, (fftwf_complex *)(in + (size_t)row * n * 2),
                                      (fftwf_complex *)(peer + (size_t)row * n * 2));
            double t2 = s_cpu_s();
            best_o = t1 - t0 < best_o ? t1 - t0 : best_o;
            best_p = t2 - t1 < best_p ? t2 - t1 : best_p;
        }
        double err = 0, mag = 0;
        for (size_t i = 0; i < bytes / sizeof(float); i++) {
            err = fmax(err, fabs((double)ours[i] - peer[i]));
            mag = fmax(mag, fabs((double)peer[i]));
        }
        double per = (double)reps * S_ROWS;
        double ratio = best_o / best_p;
        worst = ratio > worst ? ratio : worst;
        printf("  N=%-5d ours %8.1f ns  fftw %8.1f ns  ratio %.3f%s\n", n, best_o / per * 1e9,
               best_p / per * 1e9, ratio, ratio <= S_TARGET ? "" : "  (over target)");
        if (!(err <= 1e-5 * mag)) {
            printf("  WRONG: N=%d differs from FFTW by %.3g (max |X| %.3g)\n", n, err, mag);
            bad = 1;
        }
        fftwf_destroy_plan(p);
        fftwf_free(in);
        fftwf_free(ours);
        fftwf_free(peer);
    }
    printf("worst ratio %.3f (target <= %.2f: %s)\n", worst, S_TARGET,
           worst <= S_TARGET ? "met" : "MISSED");
    return bad;
}
