/* What the Python reference checks cannot see of the dsp.* spectral ops: window formulas
 * against their closed forms (kaiser against an independent I0), the FFT plan cache under
 * concurrent use, the framer's two-frames-per-FFT mode against one R2C per frame (edges and
 * reflect padding included), and the kernels on empty batches. */
#include "cpu/cpu_dsp_util.h"
#include <math.h>
#include <pthread.h>
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
            if (++s_failures > 30)                                                                 \
                exit(1);                                                                           \
        }                                                                                          \
    } while (0)

static uint64_t s_rng = 0x853c49e6748fea9bu;

static double s_uniform(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (double)(s_rng >> 11) / 9007199254740992.0 - 0.5;
}

/* I0 by Simpson's rule on (1/pi) int_0^pi exp(x cos t) dt: independent of the kernel's
 * power series. */
static double s_i0_ref(double x)
{
    const int n = 2000;
    double h = M_PI / n, s = exp(x) + exp(-x);
    for (int i = 1; i < n; i++)
        s += (i % 2 ? 4 : 2) * exp(x * cos(i * h));
    return s * h / 3 / M_PI;
}

static void s_test_windows(void)
{
    double w[600];
    for (int n = 1; n <= 513; n += 64) {
        for (int periodic = 0; periodic < 2; periodic++) {
            double d = periodic ? n : n - 1; /* the denominator of the cosine terms */
            gq_dsp_window_fill(GQ_WIN_HANN, 0, periodic, n, w);
            for (int i = 0; i < n; i++) {
                double want = n == 1 ? 1.0 : 0.5 - 0.5 * cos(2 * M_PI * i / d);
                CHECK(fabs(w[i] - want) < 1e-15, "hann n=%d periodic=%d [%d] %.17g vs %.17g", n,
                      periodic, i, w[i], want);
            }
            gq_dsp_window_fill(GQ_WIN_HAMMING, 0, periodic, n, w);
            for (int i = 0; i < n; i++) {
                double want = n == 1 ? 1.0 : 0.54 - 0.46 * cos(2 * M_PI * i / d);
                CHECK(fabs(w[i] - want) < 1e-15, "hamming n=%d [%d]", n, i);
            }
            gq_dsp_window_fill(GQ_WIN_BLACKMAN, 0, periodic, n, w);
            for (int i = 0; i < n; i++) {
                double want =
                    n == 1 ? 1.0
                           : 0.42 - 0.5 * cos(2 * M_PI * i / d) + 0.08 * cos(4 * M_PI * i / d);
                CHECK(fabs(w[i] - want) < 1e-15, "blackman n=%d [%d]", n, i);
            }
            for (double beta = 0; beta <= 40; beta += 8.6) {
                gq_dsp_window_fill(GQ_WIN_KAISER, beta, periodic, n, w);
                double a = d / 2, den = s_i0_ref(beta);
                for (int i = 0; i < n; i++) {
                    double r = (i - a) / a;
                    double want = n == 1 ? 1.0 : s_i0_ref(beta * sqrt(fmax(0, 1 - r * r))) / den;
                    CHECK(fabs(w[i] - want) < 1e-12 * fmax(1, want), "kaiser %g n=%d [%d]", beta, n,
                          i);
                }
            }
        }
    }
    gq_dsp_window_fill(GQ_WIN_BOXCAR, 0, true, 7, w);
    for (int i = 0; i < 7; i++)
        CHECK(w[i] == 1.0, "boxcar [%d]", i);
    printf("windows: closed forms hold\n");
}

/* Naive DFT of n complex values in double. */
static void s_dft(const double *x, double *y, int n, int sign)
{
    for (int k = 0; k < n; k++) {
        double re = 0, im = 0;
        for (int j = 0; j < n; j++) {
            double ph = sign * 2 * M_PI * (double)j * k / n;
            re += x[2 * j] * cos(ph) - x[2 * j + 1] * sin(ph);
            im += x[2 * j] * sin(ph) + x[2 * j + 1] * cos(ph);
        }
        y[2 * k] = re, y[2 * k + 1] = im;
    }
}

typedef struct {
    int id, bad;
} s_worker_t;

/* Many threads asking the cache for the same and different plans at once, executing each
 * right away, including on misaligned arrays (staged through per-thread scratch). */
static void *s_plan_worker(void *arg)
{
    s_worker_t *w = arg;
    double x[2 * 64], y[2 * 64], ref[2 * 64];
    double buf[2 * 64 + 1];
    for (int it = 0; it < 200; it++) {
        int n = 1 + (int)((unsigned)(it * 7 + w->id * 13) % 48);
        gq_fft_kind_t kind = (it + w->id) % 2 ? GQ_FFT_C2C_FWD : GQ_FFT_C2C_BWD;
        const gq_fft_plan_t *p = gq_fft_plan(kind, (size_t)n, true);
        if (!p || gq_fft_len(p) != (size_t)n || gq_fft_kind(p) != kind ||
            gq_fft_plan(kind, (size_t)n, true) != p) {
            w->bad++;
            continue;
        }
        for (int i = 0; i < 2 * n; i++)
            x[i] = (double)((i * 31 + it + w->id) % 17) - 8;
        s_dft(x, ref, n, kind == GQ_FFT_C2C_FWD ? -1 : 1);
        double *in = it % 3 ? x : buf + 1; /* misaligned for SIMD every third time */
        if (in != x)
            memcpy(in, x, sizeof(double) * 2 * (size_t)n);
        gq_fft_exec(p, in, y);
        for (int i = 0; i < 2 * n; i++)
            if (fabs(y[i] - ref[i]) > 1e-9 * n * 8)
                w->bad++;
    }
    return NULL;
}

static void s_test_plan_cache(void)
{
    enum { S_THREADS = 8 };
    pthread_t th[S_THREADS];
    s_worker_t w[S_THREADS];
    for (int i = 0; i < S_THREADS; i++) {
        w[i] = (s_worker_t){.id = i};
        CHECK(pthread_create(&th[i], NULL, s_plan_worker, &w[i]) == 0, "pthread_create");
    }
    int bad = 0;
    for (int i = 0; i < S_THREADS; i++) {
        pthread_join(th[i], NULL);
        bad += w[i].bad;
    }
    CHECK(bad == 0, "plan cache under %d threads: %d wrong plans or results", S_THREADS, bad);
    CHECK(gq_fft_plan(GQ_FFT_R2C, 0, false) == NULL, "a plan of length 0");
    printf("plan cache: %d threads agree with a naive DFT\n", S_THREADS);
}

/* The framer's pair mode gives the same spectra as one R2C per frame. */
static void s_test_pairs(void)
{
    const gq_op_spec_t *op = gq_op_find("dsp.stft");
    static const struct {
        int n_fft, hop, win, len;
        const char *pad;
        int center;
    } cases[] = {
        {512, 160, 400, 3000, "constant", 1},
        {64, 16, 0, 50, "reflect", 1},
        {9, 3, 7, 2, "reflect", 1},
        {256, 100, 0, 256, "constant", 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        gq_param_t p[] = {
            {"n_fft", {.type = GQ_PT_INT, .i = cases[c].n_fft}},
            {"hop_length", {.type = GQ_PT_INT, .i = cases[c].hop}},
            {"win_length", {.type = GQ_PT_INT, .i = cases[c].win}},
            {"pad_mode", {.type = GQ_PT_STR, .s = cases[c].pad}},
            {"center", {.type = GQ_PT_BOOL, .i = cases[c].center}},
        };
        gq_args_t a;
        char err[GQ_ERRLEN];
        CHECK(gq_op_resolve(op, p, 5, &a, err, sizeof err) == GQ_OK, "resolve: %s", err);
        int len = cases[c].len;
        float *x = malloc(sizeof(float) * (size_t)len);
        for (int i = 0; i < len; i++)
            x[i] = (float)s_uniform();
        gq_tdesc_t d = {.dtype = GQ_F32, .ndim = 1, .shape = {len}};
        gq_dsp_framer_t f;
        CHECK(gq_dsp_framer_init(&f, &a, &d, err, sizeof err) == GQ_OK, "framer: %s", err);
        CHECK(gq_dsp_framer_pairs(&f) == GQ_OK, "pairs");
        int n = cases[c].n_fft, nb = n / 2 + 1;
        float *z = gq_fft_alloc(sizeof(float) * 2 * (size_t)n);
        double worst = 0, peak = 0;
        for (int64_t t = 0; t + 1 < f.g.n_frames || t == 0; t += 2) {
            int64_t tb = t + 1 < f.g.n_frames ? t + 1 : t;
            gq_dsp_framer_run2(&f, x, t, tb, z);
            for (int side = 0; side < 2; side++) {
                gq_dsp_framer_run(&f, x, side ? tb : t);
                const float *s = f.spec;
                for (int k = 0; k < nb; k++) {
                    int r = k ? n - k : 0;
                    double re, im; /* A = (Z[k] + conj Z[-k]) / 2, B = (Z[k] - conj Z[-k]) / 2i */
                    if (!side)
                        re = (z[2 * k] + z[2 * r]) / 2, im = (z[2 * k + 1] - z[2 * r + 1]) / 2;
                    else
                        re = (z[2 * k + 1] + z[2 * r + 1]) / 2, im = (z[2 * r] - z[2 * k]) / 2;
                    worst = fmax(worst, fmax(fabs(re - s[2 * k]), fabs(im - s[2 * k + 1])));
                    peak = fmax(peak, hypot(s[2 * k], s[2 * k + 1]));
                }
            }
        }
        CHECK(worst <= 1e-5 * fmax(peak, 1e-30), "case %zu: pair mode off by %g (peak %g)", c,
              worst, peak);
        gq_fft_free(z);
        gq_dsp_framer_free(&f);
        free(x);
    }
    printf("framer: pair mode matches one R2C per frame\n");
}

/* Every framed kernel on an empty batch [0, T] writes nothing and succeeds. */
static void s_test_empty(void)
{
    static const char *const ops[] = {"dsp.stft",   "dsp.spectrogram", "dsp.mel",
                                      "dsp.logmel", "dsp.mfcc",        "dsp.fft",
                                      "dsp.rfft",   "dsp.window",      "dsp.db"};
    float dummy[4] = {0};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        const gq_op_spec_t *op = gq_op_find(ops[i]);
        gq_args_t a;
        char err[GQ_ERRLEN];
        gq_view_t in = {.desc = {.dtype = GQ_F32, .ndim = 2, .shape = {0, 4000}}, .data = dummy};
        gq_view_t out = {.data = dummy};
        int nout = 0;
        CHECK(op && gq_op_resolve(op, NULL, 0, &a, err, sizeof err) == GQ_OK, "%s", ops[i]);
        CHECK(gq_op_infer(&a, &in.desc, 1, &out.desc, &nout, err, sizeof err) == GQ_OK &&
                  gq_tdesc_numel(&out.desc) == 0,
              "%s: infer on [0, 4000]: %s", ops[i], err);
        gq_cpu_kernel_fn fn = gq_cpu_kernel_find(ops[i]);
        CHECK(fn && fn(&a, &in, 1, &out, 1, err, sizeof err) == GQ_OK, "%s on [0, 4000]: %s",
              ops[i], err);
    }
    printf("kernels: empty batches\n");
}

/* librosa's power_to_db / amplitude_to_db in double, value by value: the reference for
 * rows with NaN and inf anywhere (the kernel's four-lane path hands such blocks to its
 * scalar path; an in-place row once got logged twice there). */
static double s_db_ref(const float *x, int n, int i, bool amp, double top_db)
{
    double amin = 1e-10, mx = -INFINITY;
    bool nan = false;
    for (int k = 0; k < n; k++) {
        double v = amp ? (double)(x[k] * x[k]) : x[k]; /* squared in f32, as NumPy does */
        double d = 10.0 * log10(v < amin ? amin : v);
        nan |= isnan(d);
        mx = d > mx ? d : mx;
    }
    double v = amp ? (double)(x[i] * x[i]) : x[i];
    double d = 10.0 * log10(v < amin ? amin : v);
    if (isinf(top_db))
        return d;
    if (nan)
        return NAN;
    double fl = mx - top_db;
    return d < fl ? fl : d;
}

static void s_test_db_specials(void)
{
    const float specials[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1e30f, 1e-30f};
    int checked = 0;
    for (int trial = 0; trial < 400; trial++) {
        int n = 1 + trial % 13;
        float x[16];
        for (int k = 0; k < n; k++)
            x[k] = (float)(50.0 * (s_uniform() + 0.5));
        if (trial % 3)
            x[(trial / 3) % n] = specials[trial % 7];
        bool amp = trial & 1;
        double top_db = trial % 5 == 4 ? INFINITY : 80.0;
        gq_param_t p[4] = {{.name = "mode",
                            .v = {.type = GQ_PT_STR, .s = amp ? "amplitude_to_db" : "power_to_db"}},
                           {.name = "amin", .v = {.type = GQ_PT_FLOAT, .f = 1e-10}},
                           {.name = "top_db", .v = {.type = GQ_PT_FLOAT, .f = top_db}},
                           {.name = "ref", .v = {.type = GQ_PT_FLOAT, .f = 1.0}}};
        gq_args_t a;
        char err[GQ_ERRLEN];
        CHECK(gq_op_resolve(gq_op_find("dsp.db"), p, 4, &a, err, sizeof err) == GQ_OK, "%s", err);
        if (amp) /* amplitude_to_db squares amin: ask for sqrt(1e-10) to get the same floor */
            a.v[gq_op_param_index(a.op, "amin")].f = 1e-5;
        float y[16];
        gq_view_t in = {
            .desc = {.dtype = GQ_F32, .ndim = 1, .shape = {n}}, .data = x, .nbytes = (size_t)n * 4};
        gq_view_t out = {.desc = in.desc, .data = y, .nbytes = in.nbytes};
        gq_cpu_kernel_fn fn = gq_cpu_kernel_find("dsp.db");
        CHECK(fn && fn(&a, &in, 1, &out, 1, err, sizeof err) == GQ_OK, "db: %s", err);
        for (int i = 0; i < n; i++, checked++) {
            double want = s_db_ref(x, n, i, amp, top_db);
            bool same = isnan(want)   ? isnan(y[i])
                        : isinf(want) ? y[i] == (float)want
                                      : fabs(y[i] - want) <= 2e-3;
            CHECK(same, "db %s top_db %g n %d: y[%d] = %g, want %g (x[%d] = %g)",
                  amp ? "amplitude" : "power", top_db, n, i, y[i], want, i, x[i]);
        }
    }
    printf("dsp.db: %d values with NaN/inf/0/huge inputs match a scalar reference\n", checked);
}

int main(void)
{
    setenv("GQ_FFTW_PLANNER", "estimate", 1);
    s_test_db_specials();
    s_test_windows();
    s_test_plan_cache();
    s_test_pairs();
    s_test_empty();
    if (s_failures) {
        fprintf(stderr, "test_dsp_spectral: %d failures\n", s_failures);
        return 1;
    }
    printf("test_dsp_spectral: ok\n");
    return 0;
}
