/* bench_resample: the dsp.resample and dsp.fir CPU kernels next to the libraries they
 * compete with, in one run on one machine, single-threaded.
 *
 *   (a) 44.1 -> 16 kHz on 60 s of mono f32 noise: our polyphase path and our libsoxr path
 *       (soxr_hq) against libsoxr called directly (soxr_create + soxr_process in 64 Ki
 *       chunks, the same quality and I/O type); throughput ratios and x real time.
 *   (b) dsp.fir direct sum vs FFT overlap-save for K = 4 .. 1024 taps on 2^16 samples: the
 *       crossover that sets dsp.fir method=auto (S_FIR_FFT_MIN_TAPS in cpu_dsp_filter.c).
 *   (c) dsp.fir (auto) against a plain reference loop and against one whole-signal FFTW
 *       convolution (r2c, multiply, c2r with FFTW_MEASURE plans made before the clock).
 *
 * Each figure is the best of --repeat runs (default 5). Answers are checked: the soxr
 * outputs equal, the FIR results agree with the reference loop. Exit 1 on a wrong answer. */
#include <fftw3.h>
#include <math.h>
#include <soxr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "benchlib.h"
#include "cpu/cpu_ops.h"
#include "optable.h"

#define S_SR_IN 44100
#define S_SR_OUT 16000
#define S_SOXR_CHUNK 65536
#define S_FIR_T 65536

typedef struct {
    gq_args_t args;
    gq_cpu_kernel_fn fn;
    gq_view_t in[3], out[2];
    int nin, nout;
} s_call_t;

static int s_repeat = 5;

static void s_prepare(s_call_t *c, const char *op, const gq_param_t *p, int np, int nin)
{
    char err[GQ_ERRLEN];
    const gq_op_spec_t *spec = gq_op_find(op);
    if (!spec || gq_op_resolve(spec, p, np, &c->args, err, sizeof err))
        gqb_die("%s: %s", op, spec ? err : "not in the op table");
    c->fn = gq_cpu_kernel_find(op);
    gq_tdesc_t id[3], od[GQ_MAX_OUTPUTS];
    for (int i = 0; i < nin; i++)
        id[i] = c->in[i].desc;
    if (!c->fn || gq_op_infer(&c->args, id, nin, od, &c->nout, err, sizeof err))
        gqb_die("%s: %s", op, err);
    c->nin = nin;
    for (int i = 0; i < c->nout; i++) {
        c->out[i].desc = od[i];
        c->out[i].nbytes = gq_tdesc_nbytes(&od[i]);
        c->out[i].data = calloc(1, c->out[i].nbytes + 1);
        if (!c->out[i].data)
            gqb_die("out of memory");
    }
}

static void s_release(s_call_t *c)
{
    for (int i = 0; i < c->nout; i++)
        free(c->out[i].data);
}

/* Best wall time of one kernel call, in seconds. */
static double s_time_call(s_call_t *c)
{
    char err[GQ_ERRLEN];
    double best = 1e30;
    for (int r = 0; r < s_repeat; r++) {
        uint64_t t0 = gqb_now_ns();
        if (c->fn(&c->args, c->in, c->nin, c->out, c->nout, err, sizeof err))
            gqb_die("%s: %s", c->args.op->name, err);
        double s = (double)(gqb_now_ns() - t0) * 1e-9;
        best = s < best ? s : best;
    }
    return best;
}

static gq_view_t s_view(gq_dtype_t dt, void *data, int64_t n)
{
    gq_view_t v = {.desc = {.dtype = dt, .ndim = 1, .shape = {n}}, .data = data};
    v.nbytes = gq_tdesc_nbytes(&v.desc);
    return v;
}

/* libsoxr as an application would call it: one resampler, chunks in, flush. */
static size_t s_soxr_direct(soxr_t s, const float *x, size_t n, float *y, size_t ny)
{
    size_t ti = 0, to = 0, idone, odone;
    while (ti < n) {
        size_t il = n - ti < S_SOXR_CHUNK ? n - ti : S_SOXR_CHUNK;
        soxr_process(s, x + ti, il, &idone, y + to, ny - to, &odone);
        ti += idone, to += odone;
    }
    do {
        soxr_process(s, NULL, 0, &idone, y + to, ny - to, &odone);
        to += odone;
    } while (odone && to < ny);
    soxr_clear(s);
    return to;
}

static void s_bench_resample(double seconds)
{
    gqb_phase = "resample";
    int64_t n = (int64_t)(seconds * S_SR_IN), ny = (n * S_SR_OUT + S_SR_IN - 1) / S_SR_IN;
    float *x = malloc((size_t)n * sizeof(float)), *ref = calloc((size_t)ny, sizeof(float));
    if (!x || !ref)
        gqb_die("out of memory");
    srand(7);
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)rand() / (float)RAND_MAX - 0.5f;

    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    soxr_runtime_spec_t rt = soxr_runtime_spec(1);
    double t_soxr = 1e30;
    for (int r = 0; r < s_repeat; r++) {
        uint64_t t0 = gqb_now_ns();
        soxr_t s = soxr_create(S_SR_IN, S_SR_OUT, 1, NULL, &io, &q, &rt);
        s_soxr_direct(s, x, (size_t)n, ref, (size_t)ny);
        soxr_delete(s);
        double d = (double)(gqb_now_ns() - t0) * 1e-9;
        t_soxr = d < t_soxr ? d : t_soxr;
    }

    gq_param_t ps[] = {{"sr", {.type = GQ_PT_INT, .i = S_SR_IN}},
                       {"target_sr", {.type = GQ_PT_INT, .i = S_SR_OUT}},
                       {"res_type", {.type = GQ_PT_STR, .s = "soxr_hq"}}};
    s_call_t cs = {.in = {s_view(GQ_F32, x, n)}};
    s_prepare(&cs, "dsp.resample", ps, 3, 1);
    double t_ours_soxr = s_time_call(&cs);
    if (memcmp(cs.out[0].data, ref, (size_t)ny * sizeof(float)))
        gqb_die("dsp.resample soxr_hq differs from libsoxr called directly");

    ps[2].v.s = "polyphase";
    s_call_t cp = {.in = {s_view(GQ_F32, x, n)}};
    s_prepare(&cp, "dsp.resample", ps, 3, 1);
    double t_poly = s_time_call(&cp);
    double maxd = 0;
    for (int64_t i = 1000; i < ny - 1000; i++)
        maxd = fmax(maxd, fabs((double)((float *)cp.out[0].data)[i] - ref[i]));

    printf("resample 44.1 -> 16 kHz, %.0f s of mono f32 (best of %d, 1 thread):\n", seconds,
           s_repeat);
    printf("  libsoxr direct (HQ)      %8.2f ms  %8.0fx real time\n", t_soxr * 1e3,
           seconds / t_soxr);
    printf("  dsp.resample soxr_hq     %8.2f ms  %8.0fx real time  ours/libsoxr time %.2f "
           "(identical output)\n",
           t_ours_soxr * 1e3, seconds / t_ours_soxr, t_ours_soxr / t_soxr);
    printf("  dsp.resample polyphase   %8.2f ms  %8.0fx real time  ours/libsoxr time %.2f "
           "(another filter: max |poly - soxr| %.2g)\n",
           t_poly * 1e3, seconds / t_poly, t_poly / t_soxr, maxd);
    s_release(&cs);
    s_release(&cp);
    free(x);
    free(ref);
}

/* full[j] = sum_k h[k] x[j-k], the plain loop. */
static void s_fir_ref(const float *x, int64_t T, const double *h, int64_t K, double *y)
{
    for (int64_t j = 0; j < T + K - 1; j++) {
        double s = 0;
        for (int64_t k = 0; k < K; k++)
            if (j - k >= 0 && j - k < T)
                s += h[k] * x[j - k];
        y[j] = s;
    }
}

static double s_fir_kernel(const float *x, const double *h, int64_t K, const char *method,
                           float *check)
{
    gq_param_t ps[] = {{"mode", {.type = GQ_PT_STR, .s = "full"}},
                       {"method", {.type = GQ_PT_STR, .s = method}}};
    s_call_t c = {.in = {s_view(GQ_F32, (void *)x, S_FIR_T), s_view(GQ_F64, (void *)h, K)}};
    s_prepare(&c, "dsp.fir", ps, 2, 2);
    double t = s_time_call(&c);
    if (check)
        memcpy(check, c.out[0].data, c.out[0].nbytes);
    s_release(&c);
    return t;
}

/* One whole-signal convolution by FFTW (double, plans made before the clock). */
static double s_fir_fftw(const float *x, const double *h, int64_t K, double *y)
{
    int64_t n = 1;
    while (n < S_FIR_T + K - 1)
        n *= 2;
    double *a = fftw_malloc((size_t)n * sizeof(double)), *b = fftw_malloc((size_t)n * 8);
    fftw_complex *A = fftw_malloc((size_t)(n / 2 + 1) * sizeof(fftw_complex));
    fftw_complex *B = fftw_malloc((size_t)(n / 2 + 1) * sizeof(fftw_complex));
    fftw_plan pa = fftw_plan_dft_r2c_1d((int)n, a, A, FFTW_MEASURE);
    fftw_plan pb = fftw_plan_dft_r2c_1d((int)n, b, B, FFTW_MEASURE);
    fftw_plan pi = fftw_plan_dft_c2r_1d((int)n, A, a, FFTW_MEASURE);
    double best = 1e30;
    for (int r = 0; r < s_repeat; r++) {
        uint64_t t0 = gqb_now_ns();
        memset(a, 0, (size_t)n * sizeof(double));
        memset(b, 0, (size_t)n * sizeof(double));
        for (int64_t i = 0; i < S_FIR_T; i++)
            a[i] = x[i];
        memcpy(b, h, (size_t)K * sizeof(double));
        fftw_execute(pa);
        fftw_execute(pb);
        for (int64_t i = 0; i < n / 2 + 1; i++) {
            double re = A[i][0] * B[i][0] - A[i][1] * B[i][1];
            double im = A[i][0] * B[i][1] + A[i][1] * B[i][0];
            A[i][0] = re / (double)n, A[i][1] = im / (double)n;
        }
        fftw_execute(pi);
        memcpy(y, a, (size_t)(S_FIR_T + K - 1) * sizeof(double));
        double d = (double)(gqb_now_ns() - t0) * 1e-9;
        best = d < best ? d : best;
    }
    fftw_destroy_plan(pa);
    fftw_destroy_plan(pb);
    fftw_destroy_plan(pi);
    fftw_free(a);
    fftw_free(b);
    fftw_free(A);
    fftw_free(B);
    return best;
}

static void s_bench_fir(void)
{
    gqb_phase = "fir";
    static const int64_t taps[] = {4, 8, 16, 24, 32, 48, 64, 96, 128, 256, 512, 1024};
    int nt = (int)(sizeof taps / sizeof taps[0]);
    int64_t kmax = taps[nt - 1];
    float *x = malloc(S_FIR_T * sizeof(float)), *got = malloc((S_FIR_T + kmax) * sizeof(float));
    double *h = malloc((size_t)kmax * sizeof(double));
    double *ref = malloc((S_FIR_T + kmax) * sizeof(double)), *fw = malloc((S_FIR_T + kmax) * 8);
    if (!x || !got || !h || !ref || !fw)
        gqb_die("out of memory");
    for (int64_t i = 0; i < S_FIR_T; i++)
        x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    for (int64_t k = 0; k < kmax; k++)
        h[k] = (double)rand() / RAND_MAX - 0.5;
    printf("\ndsp.fir, mode=full, %d f32 samples (best of %d):\n", S_FIR_T, s_repeat);
    printf("  %6s %10s %10s %9s %10s %10s %9s %9s\n", "taps", "direct ms", "fft ms", "fft/dir",
           "ref ms", "fftw ms", "auto/ref", "auto/fftw");
    int64_t crossover = 0;
    for (int i = 0; i < nt; i++) {
        int64_t K = taps[i];
        double td = s_fir_kernel(x, h, K, "direct", NULL);
        double tf = s_fir_kernel(x, h, K, "fft", NULL);
        double ta = s_fir_kernel(x, h, K, "auto", got);
        uint64_t t0 = gqb_now_ns();
        s_fir_ref(x, S_FIR_T, h, K, ref);
        double tr = (double)(gqb_now_ns() - t0) * 1e-9;
        double tw = s_fir_fftw(x, h, K, fw);
        double scale = 0, maxd = 0;
        for (int64_t j = 0; j < S_FIR_T + K - 1; j++) {
            scale = fmax(scale, fabs(ref[j]));
            maxd = fmax(maxd, fabs((double)got[j] - ref[j]));
        }
        if (maxd > 1e-5 * scale)
            gqb_die("dsp.fir K=%lld differs from the reference loop by %g", (long long)K, maxd);
        if (!crossover && tf < td)
            crossover = K;
        printf("  %6lld %10.3f %10.3f %9.2f %10.3f %10.3f %9.3f %9.2f\n", (long long)K, td * 1e3,
               tf * 1e3, tf / td, tr * 1e3, tw * 1e3, ta / tr, ta / tw);
    }
    printf("  FFT faster than direct from K = %lld taps on (method=auto switches at 32)\n",
           (long long)crossover);
    free(x);
    free(got);
    free(h);
    free(ref);
    free(fw);
}

int main(int argc, char **argv)
{
    gqb_init("bench_resample");
    double seconds = 60;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            seconds = 10, s_repeat = 2;
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
            s_repeat = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 1;
        else {
            fprintf(stderr, "usage: bench_resample [--quick] [--repeat N]\n");
            return 2;
        }
    }
    gqb_arm_alarm(600);
    s_bench_resample(seconds);
    s_bench_fir();
    return 0;
}
