/* CPU kernels of the framed dsp.* spectral ops (window, stft, istft, spectrogram), the
 * framer the mel kernels share, and the kernel table of the whole spectral family.
 * Semantics: common/ops_dsp_spectral.c and docs/dsp-spectral.md. */
#include "cpu_dsp_util.h"
#include "util.h"
#include <float.h>
#include <math.h>
#include <string.h>

/* ---- windows ---- */

/* Modified Bessel function of the first kind, order 0, by its power series: every term is
 * positive, so the sum is accurate to a few ulp for the betas the op table admits. */
static double s_i0(double x)
{
    double q = x * x / 4, term = 1.0, sum = 1.0;
    for (int k = 1; k < 500; k++) {
        term *= q / ((double)k * (double)k);
        sum += term;
        if (term < sum * 1e-17)
            break;
    }
    return sum;
}

void gq_dsp_window_fill(gq_window_t kind, double beta, bool periodic, int64_t n, double *w)
{
    if (n <= 1 || kind == GQ_WIN_BOXCAR) {
        for (int64_t i = 0; i < n; i++)
            w[i] = 1.0;
        return;
    }
    /* scipy makes a periodic window as the symmetric one of length n+1, truncated. */
    int64_t m = periodic ? n + 1 : n;
    if (kind == GQ_WIN_KAISER) {
        double alpha = (double)(m - 1) / 2.0, den = s_i0(beta);
        for (int64_t i = 0; i < n; i++) {
            double r = ((double)i - alpha) / alpha;
            w[i] = s_i0(beta * sqrt(1.0 - r * r)) / den;
        }
        return;
    }
    double a0 = 0.5, a1 = 0.5, a2 = 0.0;
    if (kind == GQ_WIN_HAMMING)
        a0 = 0.54, a1 = 0.46;
    else if (kind == GQ_WIN_BLACKMAN)
        a0 = 0.42, a1 = 0.5, a2 = 0.08;
    /* general_cosine: sum of a_k cos(k fac) with fac = linspace(-pi, pi, m) (the signs of
     * scipy's (-1)^k a_k are folded into fac starting at -pi). */
    double step = 2.0 * M_PI / (double)(m - 1);
    for (int64_t i = 0; i < n; i++) {
        double fac = i == m - 1 ? M_PI : (double)i * step + -M_PI;
        w[i] = a0 + a1 * cos(fac) + (a2 != 0.0 ? a2 * cos(2.0 * fac) : 0.0);
    }
}

/* ---- the framer ---- */

gq_status gq_dsp_framer_init(gq_dsp_framer_t *f, const gq_args_t *a, const gq_tdesc_t *in,
                             char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    gq_status rc = gq_dsp_stft_geom(a, in, &f->g, err, errlen);
    if (rc != GQ_OK)
        return rc;
    const gq_dsp_stft_t *g = &f->g;
    f->f64 = in->dtype == GQ_F64;
    f->pad = g->center ? g->n_fft / 2 : 0;
    f->wlo = (g->n_fft - g->win_length) / 2;
    f->whi = f->wlo + g->win_length;
    size_t rs = f->f64 ? sizeof(double) : sizeof(float), nf = (size_t)g->n_fft;
    f->plan = gq_fft_plan(GQ_FFT_R2C, nf, f->f64);
    f->win = gq_fft_alloc(nf * rs);
    f->frame = gq_fft_alloc(nf * rs);
    f->spec = gq_fft_alloc((nf / 2 + 1) * 2 * rs);
    double *w = gq_fft_alloc((size_t)g->win_length * sizeof(double));
    if (!f->plan || !f->win || !f->frame || !f->spec || !w) {
        gq_fft_free(w);
        gq_dsp_framer_free(f);
        gq_errf(err, errlen, "%s: cpu: out of memory for n_fft %lld", a->op->name,
                (long long)g->n_fft);
        return GQ_ENOMEM;
    }
    memset(f->win, 0, nf * rs);
    memset(f->frame, 0, nf * rs);
    gq_dsp_window_fill(g->window, g->beta, true, g->win_length, w);
    for (int64_t i = 0; i < g->win_length; i++) {
        if (f->f64)
            ((double *)f->win)[f->wlo + i] = w[i];
        else
            ((float *)f->win)[f->wlo + i] = (float)w[i];
    }
    gq_fft_free(w);
    return GQ_OK;
}

void gq_dsp_framer_free(gq_dsp_framer_t *f)
{
    gq_fft_free(f->win);
    gq_fft_free(f->frame);
    gq_fft_free(f->spec);
    gq_fft_free(f->zframe);
    f->win = f->frame = f->spec = NULL;
    f->zframe = NULL;
}

gq_status gq_dsp_framer_pairs(gq_dsp_framer_t *f)
{
    if (f->f64)
        return GQ_EINVAL;
    size_t nf = (size_t)f->g.n_fft;
    f->cplan = gq_fft_plan(GQ_FFT_C2C_FWD, nf, false);
    f->zframe = gq_fft_alloc(nf * 2 * sizeof(float));
    if (!f->cplan || !f->zframe)
        return GQ_ENOMEM;
    memset(f->zframe, 0, nf * 2 * sizeof(float));
    return GQ_OK;
}

/* Index into a signal of len samples for a position i outside it, reflected like
 * numpy.pad(mode='reflect'): about the end samples, without repeating them, over and over
 * when the padding is longer than the signal. */
static int64_t s_reflect(int64_t i, int64_t len)
{
    if (len == 1)
        return 0;
    int64_t period = 2 * (len - 1);
    i %= period;
    if (i < 0)
        i += period;
    return i < len ? i : period - i;
}

/* Frame fill: in the middle of the signal a straight product; near its ends each sample
 * goes through the padding rule. */
#define S_FILL_DEF(FN, T)                                                                          \
    static void FN(const gq_dsp_framer_t *f, const T *restrict x, int64_t t)                       \
    {                                                                                              \
        const T *restrict w = f->win;                                                              \
        T *restrict fr = f->frame;                                                                 \
        int64_t s0 = t * f->g.hop - f->pad, len = f->g.len;                                        \
        if (s0 + f->wlo >= 0 && s0 + f->whi <= len) {                                              \
            const T *restrict xs = x + s0;                                                         \
            for (int64_t j = f->wlo; j < f->whi; j++)                                              \
                fr[j] = w[j] * xs[j];                                                              \
            return;                                                                                \
        }                                                                                          \
        for (int64_t j = f->wlo; j < f->whi; j++) {                                                \
            int64_t i = s0 + j;                                                                    \
            T v;                                                                                   \
            if (i >= 0 && i < len)                                                                 \
                v = x[i];                                                                          \
            else if (f->g.reflect)                                                                 \
                v = x[s_reflect(i, len)];                                                          \
            else                                                                                   \
                v = 0;                                                                             \
            fr[j] = w[j] * v;                                                                      \
        }                                                                                          \
    }

S_FILL_DEF(s_fill_f32, float)
S_FILL_DEF(s_fill_f64, double)

/* Sample i of the padded signal. */
static inline float s_sample(const gq_dsp_framer_t *f, const float *x, int64_t i)
{
    if (i >= 0 && i < f->g.len)
        return x[i];
    return f->g.reflect ? x[s_reflect(i, f->g.len)] : 0.0f;
}

void gq_dsp_framer_run2(gq_dsp_framer_t *f, const float *x, int64_t ta, int64_t tb, float *z)
{
    const float *restrict w = f->win;
    float *restrict zf = f->zframe;
    int64_t sa = ta * f->g.hop - f->pad, sb = tb * f->g.hop - f->pad, len = f->g.len;
    if (sa + f->wlo >= 0 && sb + f->wlo >= 0 && sa + f->whi <= len && sb + f->whi <= len) {
        const float *restrict xa = x + sa, *restrict xb = x + sb;
        int64_t j = f->wlo;
        for (; j + 4 <= f->whi; j += 4) {
            gq_v4f wj = gq_v4_load(w + j), a = wj * gq_v4_load(xa + j), b = wj * gq_v4_load(xb + j);
            gq_v4_store(zf + 2 * j, GQ_V4_SHUF2(a, b, 0, 4, 1, 5));
            gq_v4_store(zf + 2 * j + 4, GQ_V4_SHUF2(a, b, 2, 6, 3, 7));
        }
        for (; j < f->whi; j++) {
            zf[2 * j] = w[j] * xa[j];
            zf[2 * j + 1] = w[j] * xb[j];
        }
    } else {
        for (int64_t j = f->wlo; j < f->whi; j++) {
            zf[2 * j] = w[j] * s_sample(f, x, sa + j);
            zf[2 * j + 1] = w[j] * s_sample(f, x, sb + j);
        }
    }
    gq_fft_exec(f->cplan, zf, z);
}

void gq_dsp_framer_run(gq_dsp_framer_t *f, const void *x, int64_t t)
{
    if (f->f64)
        s_fill_f64(f, x, t);
    else
        s_fill_f32(f, x, t);
    gq_fft_exec(f->plan, f->frame, f->spec);
}

/* ---- dsp.window ---- */

static gq_status s_k_window(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out,
                            int nout, char *err, size_t errlen)
{
    (void)nin, (void)nout;
    const gq_tdesc_t *d = &in[0].desc;
    int64_t n = d->shape[d->ndim - 1], numel = gq_tdesc_numel(d);
    if (numel == 0)
        return GQ_OK;
    double *w = gq_fft_alloc((size_t)n * sizeof *w);
    if (!w) {
        gq_errf(err, errlen, "%s: cpu: out of memory for a window of %lld", a->op->name,
                (long long)n);
        return GQ_ENOMEM;
    }
    gq_dsp_window_fill(gq_dsp_window_kind(a), gq_args_float(a, "beta"), gq_args_bool(a, "periodic"),
                       n, w);
    int64_t rows = numel / n;
    if (d->dtype == GQ_F64) {
        const double *x = in[0].data;
        double *y = out[0].data;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t i = 0; i < n; i++)
                y[r * n + i] = x[r * n + i] * w[i];
    } else {
        /* The window is rounded to f32 first, like float32 data times a float32 window. */
        float *wf = (float *)w;
        for (int64_t i = 0; i < n; i++)
            wf[i] = (float)w[i];
        const float *x = in[0].data;
        float *y = out[0].data;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t i = 0; i < n; i++)
                y[r * n + i] = x[r * n + i] * wf[i];
    }
    gq_fft_free(w);
    return GQ_OK;
}

/* ---- dsp.stft and dsp.spectrogram ---- */

/* What a framed kernel writes for each frame's spectrum. */
typedef enum { S_OUT_COMPLEX, S_OUT_POWER } s_out_t;

/* Bin k of a full (two-sided) spectrum of a real frame from its half: X[n-k] = conj(X[k]). */
static inline int64_t s_half_bin(int64_t k, int64_t n, bool *conj)
{
    *conj = k > n / 2;
    return *conj ? n - k : k;
}

#define S_STFT_OUT_DEF(FN, T)                                                                      \
    static void FN(const gq_dsp_framer_t *f, s_out_t kind, double power, T *y, int64_t t)          \
    {                                                                                              \
        const T *s = f->spec;                                                                      \
        int64_t nf = f->g.n_freq, nt = f->g.n_frames, n = f->g.n_fft;                              \
        for (int64_t k = 0; k < nf; k++) {                                                         \
            bool conj;                                                                             \
            int64_t h = s_half_bin(k, n, &conj);                                                   \
            T re = s[2 * h], im = conj ? -s[2 * h + 1] : s[2 * h + 1];                             \
            if (kind == S_OUT_COMPLEX) {                                                           \
                y[2 * (k * nt + t)] = re;                                                          \
                y[2 * (k * nt + t) + 1] = im;                                                      \
            } else if (power == 2.0) {                                                             \
                y[k * nt + t] = re * re + im * im;                                                 \
            } else {                                                                               \
                double m = sqrt((double)re * re + (double)im * im);                                \
                y[k * nt + t] = (T)(power == 1.0 ? m : pow(m, power));                             \
            }                                                                                      \
        }                                                                                          \
    }

S_STFT_OUT_DEF(s_stft_out_f32, float)
S_STFT_OUT_DEF(s_stft_out_f64, double)

static gq_status s_framed(s_out_t kind, const gq_args_t *a, const gq_view_t *in, gq_view_t *out,
                          char *err, size_t errlen)
{
    gq_dsp_framer_t f;
    gq_status rc = gq_dsp_framer_init(&f, a, &in[0].desc, err, errlen);
    if (rc != GQ_OK)
        return rc;
    double power = kind == S_OUT_POWER ? gq_args_float(a, "power") : 0.0;
    int64_t per_out = f.g.n_freq * f.g.n_frames * (kind == S_OUT_COMPLEX ? 2 : 1);
    for (int64_t b = 0; b < f.g.batch; b++) {
        for (int64_t t = 0; t < f.g.n_frames; t++) {
            if (f.f64) {
                gq_dsp_framer_run(&f, (const double *)in[0].data + b * f.g.len, t);
                s_stft_out_f64(&f, kind, power, (double *)out[0].data + b * per_out, t);
            } else {
                gq_dsp_framer_run(&f, (const float *)in[0].data + b * f.g.len, t);
                s_stft_out_f32(&f, kind, power, (float *)out[0].data + b * per_out, t);
            }
        }
    }
    gq_dsp_framer_free(&f);
    return GQ_OK;
}

static gq_status s_k_stft(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out,
                          int nout, char *err, size_t errlen)
{
    (void)nin, (void)nout;
    return s_framed(S_OUT_COMPLEX, a, in, out, err, errlen);
}

static gq_status s_k_spectrogram(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out,
                                 int nout, char *err, size_t errlen)
{
    (void)nin, (void)nout;
    return s_framed(S_OUT_POWER, a, in, out, err, errlen);
}

/* ---- dsp.istft ---- */

/* librosa.istft: each frame's inverse FFT times the window, overlap-added, divided by the
 * overlap-added squared window where that exceeds the dtype's smallest normal. The sums run
 * in double whatever the dtype; only the samples the output keeps are accumulated. */
static gq_status s_k_istft(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out,
                           int nout, char *err, size_t errlen)
{
    (void)nin, (void)nout;
    const char *op = a->op->name;
    gq_dsp_stft_t g;
    gq_status rc = gq_dsp_istft_geom(a, &in[0].desc, &g, err, errlen);
    if (rc != GQ_OK)
        return rc;
    bool f64 = in[0].desc.dtype == GQ_C128;
    size_t rs = f64 ? sizeof(double) : sizeof(float);
    int64_t n = g.n_fft, start = g.center ? n / 2 : 0;
    int64_t full = n + g.hop * (g.n_frames - 1);
    int64_t keep = start + g.len < full ? start + g.len : full; /* samples accumulated */
    int64_t wlo = (n - g.win_length) / 2, whi = wlo + g.win_length;
    int64_t nbins = g.onesided ? n / 2 + 1 : n;
    int64_t used = g.in_freq < nbins ? g.in_freq : nbins;
    const gq_fft_plan_t *plan =
        gq_fft_plan(g.onesided ? GQ_FFT_C2R : GQ_FFT_C2C_BWD, (size_t)n, f64);
    double *w = gq_fft_alloc((size_t)g.win_length * sizeof *w);
    double *acc = gq_fft_alloc((size_t)keep * sizeof *acc);
    double *wss = gq_fft_alloc((size_t)keep * sizeof *wss);
    void *spec = gq_fft_alloc((size_t)nbins * 2 * rs);
    void *frame = gq_fft_alloc((size_t)n * (g.onesided ? 1 : 2) * rs);
    if (!plan || !w || !acc || !wss || !spec || !frame) {
        gq_errf(err, errlen, "%s: cpu: out of memory for n_fft %lld, %lld samples", op,
                (long long)n, (long long)keep);
        rc = GQ_ENOMEM;
        goto done;
    }
    gq_dsp_window_fill(g.window, g.beta, true, g.win_length, w);
    memset(wss, 0, (size_t)keep * sizeof *wss);
    for (int64_t t = 0; t < g.n_frames && t * g.hop + wlo < keep; t++)
        for (int64_t j = wlo; j < whi && t * g.hop + j < keep; j++)
            wss[t * g.hop + j] += w[j - wlo] * w[j - wlo];
    const double tiny = f64 ? DBL_MIN : FLT_MIN, scale = 1.0 / (double)n;
    memset(spec, 0, (size_t)nbins * 2 * rs);
    for (int64_t b = 0; b < g.batch; b++) {
        memset(acc, 0, (size_t)keep * sizeof *acc);
        for (int64_t t = 0; t < g.n_frames && t * g.hop + wlo < keep; t++) {
            int64_t base = b * g.in_freq * g.n_frames;
            if (f64) {
                const double *x = (const double *)in[0].data + 2 * base;
                double *s = spec;
                for (int64_t k = 0; k < used; k++) {
                    s[2 * k] = x[2 * (k * g.n_frames + t)];
                    s[2 * k + 1] = x[2 * (k * g.n_frames + t) + 1];
                }
            } else {
                const float *x = (const float *)in[0].data + 2 * base;
                float *s = spec;
                for (int64_t k = 0; k < used; k++) {
                    s[2 * k] = x[2 * (k * g.n_frames + t)];
                    s[2 * k + 1] = x[2 * (k * g.n_frames + t) + 1];
                }
            }
            gq_fft_exec(plan, spec, frame);
            /* Real output of c2r is contiguous; of c2c the real parts sit at even slots. */
            int64_t step = g.onesided ? 1 : 2;
            double *ac = acc + t * g.hop;
            int64_t jend = whi < keep - t * g.hop ? whi : keep - t * g.hop;
            if (f64) {
                const double *fr = frame;
                for (int64_t j = wlo; j < jend; j++)
                    ac[j] += fr[j * step] * scale * w[j - wlo];
            } else {
                const float *fr = frame;
                for (int64_t j = wlo; j < jend; j++)
                    ac[j] += (double)fr[j * step] * scale * w[j - wlo];
            }
        }
        for (int64_t i = 0; i < g.len; i++) {
            int64_t p = start + i;
            double v = 0.0;
            if (p < keep)
                v = wss[p] > tiny ? acc[p] / wss[p] : acc[p];
            if (f64)
                ((double *)out[0].data)[b * g.len + i] = v;
            else
                ((float *)out[0].data)[b * g.len + i] = (float)v;
        }
    }
done:
    gq_fft_free(w);
    gq_fft_free(acc);
    gq_fft_free(wss);
    gq_fft_free(spec);
    gq_fft_free(frame);
    return rc;
}

static const gq_cpu_kernel_t s_kernels[] = {
    {"dsp.fft", gq_cpu_dsp_fft},   {"dsp.ifft", gq_cpu_dsp_fft},
    {"dsp.rfft", gq_cpu_dsp_rfft}, {"dsp.irfft", gq_cpu_dsp_irfft},
    {"dsp.window", s_k_window},    {"dsp.stft", s_k_stft},
    {"dsp.istft", s_k_istft},      {"dsp.spectrogram", s_k_spectrogram},
    {"dsp.mel", gq_cpu_dsp_mel},   {"dsp.logmel", gq_cpu_dsp_mel},
    {"dsp.mfcc", gq_cpu_dsp_mel},  {"dsp.db", gq_cpu_dsp_db},
};

const gq_cpu_kernel_family_t gq_cpu_dsp_spectral_kernels = {
    s_kernels, (int)(sizeof s_kernels / sizeof s_kernels[0])};
