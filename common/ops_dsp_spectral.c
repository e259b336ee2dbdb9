/* dsp.* spectral ops: FFTs, windows, STFT and its inverse, spectrograms, mel features and
 * decibels. Conventions follow NumPy (fft), scipy.signal.get_window (windows) and librosa
 * 0.10 (stft, istft, melspectrogram, power_to_db, mfcc): the same params give the same
 * numbers. Every op works on the last axis (the last two for spectrograms) and keeps the
 * leading dims as a batch. Details, tolerances and NaN behaviour: docs/dsp-spectral.md. */
#include "ops_dsp_spectral.h"
#include "util.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

#define S_MAX_N (1 << 30)
#define S_MAX_SR 1e7
#define S_MAX_MELS 1024
#define S_PARAMS(p) (p), (int)(sizeof(p) / sizeof((p)[0]))
#define S_C (GQ_DT_BIT(GQ_C64) | GQ_DT_BIT(GQ_C128))

static const char *const s_norms[] = {"backward", "ortho", "forward", NULL};
static const char *const s_windows[] = {"hann", "hamming", "blackman", "kaiser", "boxcar", NULL};
static const char *const s_pad_modes[] = {"constant", "reflect", NULL};
static const char *const s_mel_norms[] = {"slaney", "none", NULL};
static const char *const s_db_modes[] = {"power_to_db", "amplitude_to_db", "db_to_power",
                                         "db_to_amplitude", NULL};

#define S_P_INT(NAME, LO, HI, DEF, HELP)                                                           \
    {                                                                                              \
        .name = NAME, .type = GQ_PT_INT, .min = LO, .max = HI,                                     \
        .def = {.type = GQ_PT_INT, .i = DEF}, .help = HELP                                         \
    }
#define S_P_FLT(NAME, LO, HI, DEF, HELP)                                                           \
    {                                                                                              \
        .name = NAME, .type = GQ_PT_FLOAT, .min = LO, .max = HI,                                   \
        .def = {.type = GQ_PT_FLOAT, .f = DEF}, .help = HELP                                       \
    }
#define S_P_BOOL(NAME, DEF, HELP)                                                                  \
    {                                                                                              \
        .name = NAME, .type = GQ_PT_BOOL, .def = {.type = GQ_PT_BOOL, .i = DEF}, .help = HELP      \
    }
#define S_P_STR(NAME, CHOICES, DEF, HELP)                                                          \
    {                                                                                              \
        .name = NAME, .type = GQ_PT_STR, .choices = CHOICES, .def = {.type = GQ_PT_STR, .s = DEF}, \
        .help = HELP                                                                               \
    }

#define S_FFT_PARAMS(NHELP)                                                                        \
    S_P_INT("n", 0, S_MAX_N, 0, NHELP),                                                            \
        S_P_STR("norm", s_norms, "backward",                                                       \
                "scaling like numpy.fft: backward (1/n on the inverse), ortho (1/sqrt(n) both "    \
                "ways), forward (1/n on the forward)")

#define S_P_WINDOW                                                                                 \
    S_P_STR("window", s_windows, "hann", "window function (scipy.signal.get_window names)")
#define S_P_BETA S_P_FLT("beta", 0.0, 100.0, 12.0, "shape of the kaiser window")

/* The framing params, in the order every framed op lists them. */
#define S_FRAME_PARAMS                                                                             \
    S_P_INT("n_fft", 1, GQ_DSP_MAX_NFFT, 2048, "FFT size (samples per frame)"),                    \
        S_P_INT("hop_length", 0, GQ_DSP_MAX_NFFT, 0,                                               \
                "samples between frames, <= n_fft; 0 = win_length/4"),                             \
        S_P_INT("win_length", 0, GQ_DSP_MAX_NFFT, 0,                                               \
                "window length, <= n_fft; the window is zero-padded to n_fft, centred; "           \
                "0 = n_fft"),                                                                      \
        S_P_WINDOW, S_P_BETA,                                                                      \
        S_P_BOOL("center", 1, "pad n_fft/2 samples on both sides so frame t is centred on t*hop")

#define S_P_PAD_MODE                                                                               \
    S_P_STR("pad_mode", s_pad_modes, "constant",                                                   \
            "padding with center=true: constant (zeros, librosa 0.10's default) or reflect")

#define S_MEL_PARAMS                                                                               \
    S_P_FLT("sr", 1.0, S_MAX_SR, 22050.0, "sample rate in Hz"), S_FRAME_PARAMS, S_P_PAD_MODE,      \
        S_P_FLT("power", 0.01, 8.0, 2.0, "exponent of the magnitude: 1 amplitude, 2 power"),       \
        S_P_INT("n_mels", 1, S_MAX_MELS, 128, "number of mel bands"),                              \
        S_P_FLT("fmin", 0.0, S_MAX_SR, 0.0, "lowest frequency in Hz, < fmax"),                     \
        S_P_FLT("fmax", 0.0, S_MAX_SR, 0.0, "highest frequency in Hz, <= sr/2; 0 = sr/2"),         \
        S_P_BOOL("htk", 0, "HTK mel scale instead of Slaney's"),                                   \
        S_P_STR("norm", s_mel_norms, "slaney",                                                     \
                "filter normalisation: slaney (equal area) or none (peak 1)")

#define S_DB_PARAMS(AMIN_MIN, AMIN_DEF, AMIN_HELP)                                                 \
    S_P_FLT("ref", 0.0, 1e30, 1.0, "reference value: 0 dB at ref (librosa's ref=1.0)"),            \
        S_P_BOOL("ref_max", 0,                                                                     \
                 "use each spectrogram's maximum as ref (librosa's ref=np.max); overrides ref"),   \
        S_P_FLT("amin", AMIN_MIN, 1e30, AMIN_DEF, AMIN_HELP),                                      \
        S_P_FLT("top_db", 0.0, INFINITY, 80.0,                                                     \
                "floor at (max - top_db) dB per spectrogram; inf = no floor")

static const gq_param_spec_t s_fft_params[] = {
    S_FFT_PARAMS("transform length: the last axis is cropped or zero-padded to n; 0 = its "
                 "length"),
};

static const gq_param_spec_t s_irfft_params[] = {
    S_FFT_PARAMS("output length; the input is cropped or zero-padded to n/2+1 bins; 0 = "
                 "2*(bins-1)"),
};

static const gq_param_spec_t s_window_params[] = {
    S_P_WINDOW,
    S_P_BETA,
    S_P_BOOL("periodic", 1,
             "periodic window for spectral analysis (scipy fftbins=True); false = symmetric"),
};

static const gq_param_spec_t s_stft_params[] = {
    S_FRAME_PARAMS,
    S_P_PAD_MODE,
    S_P_BOOL("onesided", 1, "n_fft/2+1 bins (real input's redundant half dropped); false = n_fft"),
};

static const gq_param_spec_t s_istft_params[] = {
    S_P_INT("n_fft", 0, GQ_DSP_MAX_NFFT, 0,
            "FFT size; 0 = 2*(bins-1) when onesided, else bins; other sizes crop or zero-pad "
            "the bins"),
    S_P_INT("hop_length", 0, GQ_DSP_MAX_NFFT, 0, "samples between frames; 0 = win_length/4"),
    S_P_INT("win_length", 0, GQ_DSP_MAX_NFFT, 0, "window length, <= n_fft; 0 = n_fft"),
    S_P_WINDOW,
    S_P_BETA,
    S_P_BOOL("center", 1, "the stft was centred: drop n_fft/2 samples at the start"),
    S_P_INT("length", 0, GQ_MAX_DIM_SIZE, 0,
            "output samples (zero-padded or cut); 0 = all the frames cover"),
    S_P_BOOL("onesided", 1, "the input holds n_fft/2+1 bins; false = n_fft bins (real part)"),
};

static const gq_param_spec_t s_spectrogram_params[] = {
    S_FRAME_PARAMS,
    S_P_PAD_MODE,
    S_P_FLT("power", 0.01, 8.0, 2.0, "exponent of the magnitude: 1 amplitude, 2 power"),
    S_P_BOOL("onesided", 1, "n_fft/2+1 bins; false = n_fft"),
};

static const gq_param_spec_t s_mel_params[] = {
    S_MEL_PARAMS,
};

#define S_POWER_AMIN S_DB_PARAMS(1e-30, 1e-10, "floor of the power before the log")

static const gq_param_spec_t s_logmel_params[] = {
    S_MEL_PARAMS,
    S_POWER_AMIN,
};

static const gq_param_spec_t s_mfcc_params[] = {
    S_MEL_PARAMS,
    S_POWER_AMIN,
    S_P_INT("n_mfcc", 1, S_MAX_MELS, 20, "number of coefficients, <= n_mels"),
    S_P_FLT("lifter", 0.0, 1e6, 0.0, "cepstral liftering 1 + lifter/2 sin(pi k/lifter); 0 = none"),
};

static const gq_param_spec_t s_db_params[] = {
    S_P_STR("mode", s_db_modes, "power_to_db", "conversion, named like librosa's functions"),
    S_DB_PARAMS(0.0, 0.0,
                "floor before the log; 0 = librosa's default (1e-10 power, 1e-5 amplitude)"),
};

/* ---- helpers ---- */

static bool s_is_double(gq_dtype_t dt)
{
    return dt == GQ_F64 || dt == GQ_C128;
}

static gq_dtype_t s_complex_of(gq_dtype_t dt)
{
    return s_is_double(dt) ? GQ_C128 : GQ_C64;
}

static gq_dtype_t s_real_of(gq_dtype_t dt)
{
    return s_is_double(dt) ? GQ_F64 : GQ_F32;
}

/* The input must have at least `axes` dims; what names them in the message. */
static gq_status s_need_axes(const char *op, const gq_tdesc_t *in, int axes, const char *what,
                             char *err, size_t errlen)
{
    char ds[64];
    if (in->ndim < axes) {
        gq_errf(err, errlen, "%s: input 0 %s must have at least %d dim%s (%s)", op,
                gq_tdesc_str(in, ds, sizeof ds), axes, axes == 1 ? "" : "s", what);
        return GQ_ESHAPE;
    }
    return GQ_OK;
}

static int64_t s_batch(const gq_tdesc_t *in, int core)
{
    int64_t b = 1;
    for (int d = 0; d < in->ndim - core; d++)
        b *= in->shape[d];
    return b;
}

gq_window_t gq_dsp_window_kind(const gq_args_t *a)
{
    const char *w = gq_args_str(a, "window");
    for (int i = 0; w && s_windows[i]; i++)
        if (!strcmp(w, s_windows[i]))
            return (gq_window_t)i;
    return GQ_WIN_HANN;
}

/* hop_length and win_length defaults and bounds, common to stft and istft. */
static gq_status s_frame_params(const gq_args_t *a, gq_dsp_stft_t *g, char *err, size_t errlen)
{
    const char *op = a->op->name;
    int64_t win = gq_args_int(a, "win_length"), hop = gq_args_int(a, "hop_length");
    if (win > g->n_fft) {
        gq_errf(err, errlen, "%s: param 'win_length' = %lld must be <= n_fft (%lld)", op,
                (long long)win, (long long)g->n_fft);
        return GQ_EPARAM;
    }
    if (win == 0)
        win = g->n_fft;
    if (hop > g->n_fft) {
        gq_errf(err, errlen, "%s: param 'hop_length' = %lld must be <= n_fft (%lld)", op,
                (long long)hop, (long long)g->n_fft);
        return GQ_EPARAM;
    }
    if (hop == 0) {
        hop = win / 4;
        if (hop == 0) {
            gq_errf(err, errlen,
                    "%s: param 'hop_length' = 0 takes win_length/4, which is 0 for win_length "
                    "%lld: give hop_length >= 1",
                    op, (long long)win);
            return GQ_EPARAM;
        }
    }
    g->win_length = win;
    g->hop = hop;
    g->window = gq_dsp_window_kind(a);
    g->beta = gq_args_float(a, "beta");
    g->center = gq_args_bool(a, "center");
    return GQ_OK;
}

gq_status gq_dsp_stft_geom(const gq_args_t *a, const gq_tdesc_t *in, gq_dsp_stft_t *g, char *err,
                           size_t errlen)
{
    const char *op = a->op->name;
    char ds[64];
    memset(g, 0, sizeof *g);
    gq_status rc = s_need_axes(op, in, 1, "[..., samples]", err, errlen);
    if (rc != GQ_OK)
        return rc;
    g->n_fft = gq_args_int(a, "n_fft");
    rc = s_frame_params(a, g, err, errlen);
    if (rc != GQ_OK)
        return rc;
    const char *pm = gq_args_str(a, "pad_mode");
    g->reflect = pm && !strcmp(pm, "reflect");
    g->onesided = gq_op_param_index(a->op, "onesided") < 0 || gq_args_bool(a, "onesided");
    g->n_freq = g->onesided ? g->n_fft / 2 + 1 : g->n_fft;
    g->len = in->shape[in->ndim - 1];
    g->batch = s_batch(in, 1);
    if (g->len == 0) {
        gq_errf(err, errlen, "%s: input 0 %s has no samples", op, gq_tdesc_str(in, ds, sizeof ds));
        return GQ_ESHAPE;
    }
    int64_t padded = g->len;
    if (g->center) {
        padded += 2 * (g->n_fft / 2);
    } else if (g->len < g->n_fft) {
        gq_errf(err, errlen,
                "%s: input 0 %s has %lld samples, fewer than n_fft (%lld), with center=false", op,
                gq_tdesc_str(in, ds, sizeof ds), (long long)g->len, (long long)g->n_fft);
        return GQ_ESHAPE;
    }
    /* padded < n_fft only for center=true, odd n_fft and one sample: no whole frame. */
    if (padded < g->n_fft) {
        gq_errf(err, errlen, "%s: input 0 %s is too short for one frame of n_fft %lld", op,
                gq_tdesc_str(in, ds, sizeof ds), (long long)g->n_fft);
        return GQ_ESHAPE;
    }
    g->n_frames = 1 + (padded - g->n_fft) / g->hop;
    if (in->ndim + 1 > GQ_MAX_DIMS) {
        gq_errf(err, errlen, "%s: input 0 %s has %d dims; the output adds one, at most %d", op,
                gq_tdesc_str(in, ds, sizeof ds), in->ndim, GQ_MAX_DIMS);
        return GQ_ESHAPE;
    }
    return GQ_OK;
}

gq_status gq_dsp_istft_geom(const gq_args_t *a, const gq_tdesc_t *in, gq_dsp_stft_t *g, char *err,
                            size_t errlen)
{
    const char *op = a->op->name;
    char ds[64];
    memset(g, 0, sizeof *g);
    gq_status rc = s_need_axes(op, in, 2, "[..., bins, frames]", err, errlen);
    if (rc != GQ_OK)
        return rc;
    g->onesided = gq_args_bool(a, "onesided");
    g->in_freq = in->shape[in->ndim - 2];
    g->n_frames = in->shape[in->ndim - 1];
    g->batch = s_batch(in, 2);
    if (g->in_freq == 0 || g->n_frames == 0) {
        gq_errf(err, errlen, "%s: input 0 %s has no %s", op, gq_tdesc_str(in, ds, sizeof ds),
                g->in_freq == 0 ? "bins" : "frames");
        return GQ_ESHAPE;
    }
    g->n_fft = gq_args_int(a, "n_fft");
    if (g->n_fft == 0) {
        g->n_fft = g->onesided ? 2 * (g->in_freq - 1) : g->in_freq;
        if (g->n_fft < 1 || g->n_fft > GQ_DSP_MAX_NFFT) {
            gq_errf(err, errlen,
                    "%s: param 'n_fft' = 0 takes %s from input 0 %s, which gives %lld: give "
                    "n_fft in 1..%d",
                    op, g->onesided ? "2*(bins-1)" : "the bins", gq_tdesc_str(in, ds, sizeof ds),
                    (long long)g->n_fft, GQ_DSP_MAX_NFFT);
            return GQ_EPARAM;
        }
    }
    rc = s_frame_params(a, g, err, errlen);
    if (rc != GQ_OK)
        return rc;
    g->n_freq = g->onesided ? g->n_fft / 2 + 1 : g->n_fft;
    int64_t length = gq_args_int(a, "length");
    if (length > 0) {
        g->len = length;
    } else {
        g->len = g->n_fft + g->hop * (g->n_frames - 1);
        if (g->center)
            g->len -= 2 * (g->n_fft / 2);
    }
    return GQ_OK;
}

/* A float for messages: integers without an exponent ("9000", not gq_value_str's "9e+03"). */
static char *s_num(double x, char *buf, size_t len)
{
    if (x == trunc(x) && fabs(x) < 1e15) {
        snprintf(buf, len, "%.0f", x);
        return buf;
    }
    gq_value_t v = {.type = GQ_PT_FLOAT, .f = x};
    return gq_value_str(&v, buf, len);
}

gq_status gq_dsp_mel_params(const gq_args_t *a, gq_dsp_mel_t *m, char *err, size_t errlen)
{
    const char *op = a->op->name;
    char v[40], w[40];
    m->sr = gq_args_float(a, "sr");
    m->fmin = gq_args_float(a, "fmin");
    m->fmax = gq_args_float(a, "fmax");
    m->n_mels = (int)gq_args_int(a, "n_mels");
    m->htk = gq_args_bool(a, "htk");
    const char *norm = gq_args_str(a, "norm");
    m->slaney_norm = norm && !strcmp(norm, "slaney");
    if (m->fmax > m->sr / 2) {
        gq_errf(err, errlen, "%s: param 'fmax' = %s must be <= sr/2 (%s)", op,
                s_num(m->fmax, v, sizeof v), s_num(m->sr / 2, w, sizeof w));
        return GQ_EPARAM;
    }
    if (m->fmax == 0)
        m->fmax = m->sr / 2;
    if (m->fmin >= m->fmax) {
        gq_errf(err, errlen, "%s: param 'fmin' = %s must be < fmax (%s)", op,
                s_num(m->fmin, v, sizeof v), s_num(m->fmax, w, sizeof w));
        return GQ_EPARAM;
    }
    return GQ_OK;
}

/* ---- shape rules ---- */

static gq_status s_fft_len(const gq_args_t *a, const gq_tdesc_t *in, int64_t dflt, int64_t *n,
                           char *err, size_t errlen)
{
    const char *op = a->op->name;
    char ds[64];
    gq_status rc = s_need_axes(op, in, 1, "the transform runs along the last", err, errlen);
    if (rc != GQ_OK)
        return rc;
    *n = gq_args_int(a, "n");
    if (*n == 0)
        *n = dflt;
    if (*n < 1) {
        gq_errf(err, errlen,
                "%s: param 'n' = 0 takes its length from input 0 %s, which gives %lld points: "
                "give n >= 1",
                op, gq_tdesc_str(in, ds, sizeof ds), (long long)*n);
        return GQ_ESHAPE;
    }
    return GQ_OK;
}

/* fft and rfft: complex output of n points along the last axis, or n/2+1 when half. */
static gq_status s_shape_spectrum(const gq_args_t *a, const gq_tdesc_t *in, bool half,
                                  gq_tdesc_t *out, int *nout, char *err, size_t errlen)
{
    int64_t n;
    gq_status rc = s_fft_len(a, in, in->ndim ? in->shape[in->ndim - 1] : 0, &n, err, errlen);
    if (rc != GQ_OK)
        return rc;
    out[0] = *in;
    out[0].dtype = s_complex_of(in->dtype);
    out[0].shape[out[0].ndim - 1] = half ? n / 2 + 1 : n;
    *nout = 1;
    return GQ_OK;
}

static gq_status s_shape_fft(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                             int *nout, char *err, size_t errlen)
{
    (void)nin;
    return s_shape_spectrum(a, &in[0], false, out, nout, err, errlen);
}

static gq_status s_shape_rfft(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                              int *nout, char *err, size_t errlen)
{
    (void)nin;
    return s_shape_spectrum(a, &in[0], true, out, nout, err, errlen);
}

static gq_status s_shape_irfft(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                               int *nout, char *err, size_t errlen)
{
    (void)nin;
    int64_t n, m = in[0].ndim ? in[0].shape[in[0].ndim - 1] : 0;
    gq_status rc = s_fft_len(a, &in[0], 2 * (m - 1), &n, err, errlen);
    if (rc != GQ_OK)
        return rc;
    out[0] = in[0];
    out[0].dtype = s_real_of(in[0].dtype);
    out[0].shape[out[0].ndim - 1] = n;
    *nout = 1;
    return GQ_OK;
}

static gq_status s_shape_window(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                                int *nout, char *err, size_t errlen)
{
    (void)nin;
    gq_status rc =
        s_need_axes(a->op->name, &in[0], 1, "the window runs along the last", err, errlen);
    if (rc != GQ_OK)
        return rc;
    out[0] = in[0];
    *nout = 1;
    return GQ_OK;
}

/* [..., T] -> [..., rows, n_frames] of dtype dt. */
static void s_framed_out(const gq_tdesc_t *in, const gq_dsp_stft_t *g, int64_t rows, gq_dtype_t dt,
                         gq_tdesc_t *out)
{
    *out = *in;
    out->dtype = dt;
    out->ndim = in->ndim + 1;
    out->shape[in->ndim - 1] = rows;
    out->shape[in->ndim] = g->n_frames;
}

static gq_status s_shape_stft(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                              int *nout, char *err, size_t errlen)
{
    (void)nin;
    gq_dsp_stft_t g;
    gq_status rc = gq_dsp_stft_geom(a, &in[0], &g, err, errlen);
    if (rc != GQ_OK)
        return rc;
    s_framed_out(&in[0], &g, g.n_freq, s_complex_of(in[0].dtype), &out[0]);
    *nout = 1;
    return GQ_OK;
}

static gq_status s_shape_spectrogram(const gq_args_t *a, const gq_tdesc_t *in, int nin,
                                     gq_tdesc_t *out, int *nout, char *err, size_t errlen)
{
    (void)nin;
    gq_dsp_stft_t g;
    gq_status rc = gq_dsp_stft_geom(a, &in[0], &g, err, errlen);
    if (rc != GQ_OK)
        return rc;
    s_framed_out(&in[0], &g, g.n_freq, in[0].dtype, &out[0]);
    *nout = 1;
    return GQ_OK;
}

static gq_status s_shape_istft(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                               int *nout, char *err, size_t errlen)
{
    (void)nin;
    gq_dsp_stft_t g;
    gq_status rc = gq_dsp_istft_geom(a, &in[0], &g, err, errlen);
    if (rc != GQ_OK)
        return rc;
    out[0] = in[0];
    out[0].dtype = s_real_of(in[0].dtype);
    out[0].ndim = in[0].ndim - 1;
    out[0].shape[out[0].ndim - 1] = g.len;
    *nout = 1;
    return GQ_OK;
}

static gq_status s_shape_mel(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                             int *nout, char *err, size_t errlen)
{
    (void)nin;
    gq_dsp_stft_t g;
    gq_dsp_mel_t m;
    gq_status rc = gq_dsp_stft_geom(a, &in[0], &g, err, errlen);
    if (rc == GQ_OK)
        rc = gq_dsp_mel_params(a, &m, err, errlen);
    if (rc != GQ_OK)
        return rc;
    int64_t rows = m.n_mels;
    if (gq_op_param_index(a->op, "n_mfcc") >= 0) {
        rows = gq_args_int(a, "n_mfcc");
        if (rows > m.n_mels) {
            gq_errf(err, errlen, "%s: param 'n_mfcc' = %lld must be <= n_mels (%d)", a->op->name,
                    (long long)rows, m.n_mels);
            return GQ_EPARAM;
        }
    }
    s_framed_out(&in[0], &g, rows, in[0].dtype, &out[0]);
    *nout = 1;
    return GQ_OK;
}

static gq_status s_shape_db(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                            int *nout, char *err, size_t errlen)
{
    (void)a, (void)nin, (void)err, (void)errlen;
    out[0] = in[0];
    *nout = 1;
    return GQ_OK;
}

#define S_OP(NAME, SUMMARY, DTYPES, PARAMS, SHAPE)                                                 \
    {                                                                                              \
        .name = NAME, .summary = SUMMARY, .min_inputs = 1, .max_inputs = 1, .in_dtypes = DTYPES,   \
        .flags = GQ_OPF_BATCHABLE, .params = S_PARAMS(PARAMS), .shape = SHAPE                      \
    }

static const gq_op_spec_t s_specs[] = {
    S_OP("dsp.fft",
         "complex FFT along the last axis like numpy.fft.fft (any length; real input is "
         "promoted): f32/c64 -> c64, f64/c128 -> c128",
         GQ_DT_FLOATS | S_C, s_fft_params, s_shape_fft),
    S_OP("dsp.ifft", "inverse complex FFT along the last axis like numpy.fft.ifft",
         GQ_DT_FLOATS | S_C, s_fft_params, s_shape_fft),
    S_OP("dsp.rfft", "real FFT along the last axis like numpy.fft.rfft: [..., n] -> [..., n/2+1]",
         GQ_DT_FLOATS, s_fft_params, s_shape_rfft),
    S_OP("dsp.irfft",
         "inverse of rfft like numpy.fft.irfft: [..., m] -> [..., n], n = 2*(m-1) unless given",
         GQ_DT_FLOATS | S_C, s_irfft_params, s_shape_irfft),
    S_OP("dsp.window",
         "multiplies the last axis by a window of its length (scipy.signal.get_window); a "
         "vector of ones gives the window itself",
         GQ_DT_FLOATS, s_window_params, s_shape_window),
    S_OP("dsp.stft",
         "short-time Fourier transform like librosa.stft: real [..., T] -> complex [..., "
         "n_freq, n_frames]",
         GQ_DT_FLOATS, s_stft_params, s_shape_stft),
    S_OP("dsp.istft",
         "inverse STFT like librosa.istft (window-sum-square normalised): complex [..., "
         "n_freq, n_frames] -> real [..., length]",
         S_C, s_istft_params, s_shape_istft),
    S_OP("dsp.spectrogram",
         "|stft|^power: real [..., T] -> [..., n_freq, n_frames] (power 1 magnitude, 2 power)",
         GQ_DT_FLOATS, s_spectrogram_params, s_shape_spectrogram),
    S_OP("dsp.mel",
         "mel spectrogram like librosa.feature.melspectrogram: [..., T] -> [..., n_mels, "
         "n_frames]",
         GQ_DT_FLOATS, s_mel_params, s_shape_mel),
    S_OP("dsp.logmel",
         "log-mel spectrogram: dsp.mel then power_to_db (librosa), max taken per spectrogram",
         GQ_DT_FLOATS, s_logmel_params, s_shape_mel),
    S_OP("dsp.mfcc",
         "MFCC like librosa.feature.mfcc: log-mel, DCT-II ortho, optional lifter: [..., T] -> "
         "[..., n_mfcc, n_frames]",
         GQ_DT_FLOATS, s_mfcc_params, s_shape_mel),
    S_OP("dsp.db",
         "decibel conversions like librosa's power_to_db, amplitude_to_db, db_to_power, "
         "db_to_amplitude; max taken over the last two axes",
         GQ_DT_FLOATS, s_db_params, s_shape_db),
};

const gq_op_family_t gq_ops_dsp_spectral = {s_specs, (int)(sizeof s_specs / sizeof s_specs[0])};
