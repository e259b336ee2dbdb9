/* dsp.* filter and level ops: fir, sos, lfilter, preemphasis, resample, gain, normalize,
 * loudness, frame, overlap_add. Conventions (docs/dsp-filter.md): the signal axis is the
 * last one and every dim before it is a batch dim; outputs keep the signal's dtype; state
 * tensors (zi in, zf out) are f64 whatever the signal's dtype, so that a stream cut into
 * chunks gives the one-pass answer; a state output exists when a state input is given or
 * stream=true. Coefficient inputs (taps, sos, b, a) may be f32 or f64 independently of x. */
#include "ops_dsp_filter.h"
#include "util.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

#define S_PARAMS(p) (p), (int)(sizeof(p) / sizeof((p)[0]))
#define S_BIG 1e30
#define S_MAX_RATE 1000000000.0
#define S_MAX_POS 9007199254740992.0 /* 2^53: positions travel in an f64 state */

static const char *const s_fir_modes[] = {"full", "same", "valid", "stream", NULL};
static const char *const s_fir_methods[] = {"auto", "direct", "fft", NULL};
static const char *const s_res_types[] = {"auto",    "soxr_vhq", "soxr_hq",   "soxr_mq",
                                          "soxr_lq", "soxr_qq",  "polyphase", NULL};
static const char *const s_norm_modes[] = {"peak", "rms", NULL};

#define S_STREAM_PARAM(what)                                                                       \
    {                                                                                              \
        .name = "stream", .type = GQ_PT_BOOL, .def = {.type = GQ_PT_BOOL, .i = 0},                 \
        .help = "also output the final state " what " (implied when a state input is given)"       \
    }

static const gq_param_spec_t s_fir_params[] = {
    {.name = "mode",
     .type = GQ_PT_STR,
     .choices = s_fir_modes,
     .def = {.type = GQ_PT_STR, .s = "full"},
     .help = "full (T+K-1), same (T, centred), valid (max(T,K)-min(T,K)+1) as "
             "scipy.signal.convolve(x, h); stream: lfilter(h, 1, x, zi) with zf out"},
    {.name = "method",
     .type = GQ_PT_STR,
     .choices = s_fir_methods,
     .def = {.type = GQ_PT_STR, .s = "auto"},
     .help = "direct sum, FFT overlap-save, or auto (FFT from the measured crossover)"},
};

static const gq_param_spec_t s_stream_params[] = {S_STREAM_PARAM("zf")};

static const gq_param_spec_t s_preemph_params[] = {
    {.name = "coef",
     .type = GQ_PT_FLOAT,
     .min = -S_BIG,
     .max = S_BIG,
     .def = {.type = GQ_PT_FLOAT, .f = 0.97},
     .help = "y[n] = x[n] - coef * x[n-1] (librosa.effects.preemphasis)"},
    S_STREAM_PARAM("zf"),
};

static const gq_param_spec_t s_resample_params[] = {
    {.name = "sr",
     .type = GQ_PT_INT,
     .min = 0,
     .max = S_MAX_RATE,
     .def = {.type = GQ_PT_INT, .i = 0},
     .help = "input sample rate in Hz (with target_sr; 0 = not given)"},
    {.name = "target_sr",
     .type = GQ_PT_INT,
     .min = 0,
     .max = S_MAX_RATE,
     .def = {.type = GQ_PT_INT, .i = 0},
     .help = "output sample rate in Hz (with sr; 0 = not given)"},
    {.name = "up",
     .type = GQ_PT_INT,
     .min = 0,
     .max = S_MAX_RATE,
     .def = {.type = GQ_PT_INT, .i = 0},
     .help = "upsampling factor, as scipy.signal.resample_poly (with down; 0 = not given)"},
    {.name = "down",
     .type = GQ_PT_INT,
     .min = 0,
     .max = S_MAX_RATE,
     .def = {.type = GQ_PT_INT, .i = 0},
     .help = "downsampling factor (with up; 0 = not given)"},
    {.name = "res_type",
     .type = GQ_PT_STR,
     .choices = s_res_types,
     .def = {.type = GQ_PT_STR, .s = "auto"},
     .help = "soxr_* (libsoxr, librosa.resample's names) or polyphase (resample_poly); auto: "
             "soxr_hq with sr/target_sr, polyphase with up/down"},
    {.name = "beta",
     .type = GQ_PT_FLOAT,
     .min = 0,
     .max = 100,
     .def = {.type = GQ_PT_FLOAT, .f = 5.0},
     .help = "Kaiser window beta of the polyphase filter"},
    {.name = "stream",
     .type = GQ_PT_BOOL,
     .def = {.type = GQ_PT_BOOL, .i = 0},
     .help = "polyphase streaming: input 1 is the state (none for the first chunk), output 1 "
             "the next state; chunks concatenated equal one pass"},
    {.name = "pos",
     .type = GQ_PT_INT,
     .min = 0,
     .max = S_MAX_POS,
     .def = {.type = GQ_PT_INT, .i = 0},
     .help = "streaming: input samples before this chunk (sum of earlier chunk lengths)"},
    {.name = "final",
     .type = GQ_PT_BOOL,
     .def = {.type = GQ_PT_BOOL, .i = 0},
     .help = "streaming: this is the last chunk; flush the filter tail"},
};

static const gq_param_spec_t s_gain_params[] = {
    {.name = "db",
     .type = GQ_PT_FLOAT,
     .min = -1000,
     .max = 1000,
     .def = {.type = GQ_PT_FLOAT, .f = 0.0},
     .help = "gain in dB (x * 10^(db/20))"},
    {.name = "factor",
     .type = GQ_PT_FLOAT,
     .min = -S_BIG,
     .max = S_BIG,
     .def = {.type = GQ_PT_FLOAT, .f = 1.0},
     .help = "linear gain, applied with db"},
};

static const gq_param_spec_t s_normalize_params[] = {
    {.name = "mode",
     .type = GQ_PT_STR,
     .choices = s_norm_modes,
     .def = {.type = GQ_PT_STR, .s = "peak"},
     .help = "measure: peak (max |x|) or rms (sqrt(mean(x^2)))"},
    {.name = "target_db",
     .type = GQ_PT_FLOAT,
     .min = -1000,
     .max = 1000,
     .def = {.type = GQ_PT_FLOAT, .f = 0.0},
     .help = "target level in dBFS: 20*log10(peak or rms), 1.0 = 0 dBFS"},
    {.name = "axes",
     .type = GQ_PT_INT,
     .min = 1,
     .max = GQ_MAX_DIMS,
     .def = {.type = GQ_PT_INT, .i = 1},
     .help = "trailing axes measured together: 1 = each row, 2 = [channels, T] keeps the "
             "channel balance"},
};

static const gq_param_spec_t s_loudness_params[] = {
    {.name = "sr",
     .type = GQ_PT_INT,
     .required = true,
     .min = 8000,
     .max = 768000,
     .help = "sample rate in Hz"},
    {.name = "dual_mono",
     .type = GQ_PT_BOOL,
     .def = {.type = GQ_PT_BOOL, .i = 0},
     .help = "count a single channel twice (+3 dB), as for mono played on two speakers"},
};

static const gq_param_spec_t s_frame_params[] = {
    {.name = "frame_length",
     .type = GQ_PT_INT,
     .required = true,
     .min = 1,
     .max = 1 << 30,
     .help = "samples per frame; at most T"},
    {.name = "hop_length",
     .type = GQ_PT_INT,
     .required = true,
     .min = 1,
     .max = 1 << 30,
     .help = "samples between frame starts"},
    {.name = "frames_last",
     .type = GQ_PT_BOOL,
     .def = {.type = GQ_PT_BOOL, .i = 1},
     .help = "[..., frame_length, n_frames] like librosa.util.frame; false: [..., n_frames, "
             "frame_length]"},
};

static const gq_param_spec_t s_ola_params[] = {
    {.name = "hop_length",
     .type = GQ_PT_INT,
     .required = true,
     .min = 1,
     .max = 1 << 30,
     .help = "samples between frame starts"},
    {.name = "frames_last",
     .type = GQ_PT_BOOL,
     .def = {.type = GQ_PT_BOOL, .i = 1},
     .help = "input is [..., frame_length, n_frames]; false: [..., n_frames, frame_length]"},
};

/* ---- shared checks ---- */

/* The signal input: at least one dim, the last one the time axis. */
static gq_status s_need_signal(const gq_args_t *a, const gq_tdesc_t *x, int idx, const char *name,
                               char *err, size_t errlen)
{
    if (x->ndim >= 1)
        return GQ_OK;
    char ds[64];
    gq_errf(err, errlen, "%s: input %d (%s) %s is a scalar; it needs a time axis [..., T]",
            a->op->name, idx, name, gq_tdesc_str(x, ds, sizeof ds));
    return GQ_ESHAPE;
}

/* A coefficient vector: 1-D, at least one element. */
static gq_status s_need_coefs(const gq_args_t *a, const gq_tdesc_t *c, int idx, const char *name,
                              char *err, size_t errlen)
{
    char ds[64];
    if (c->ndim != 1) {
        gq_errf(err, errlen, "%s: input %d (%s) %s must be 1-D", a->op->name, idx, name,
                gq_tdesc_str(c, ds, sizeof ds));
        return GQ_ESHAPE;
    }
    if (c->shape[0] == 0) {
        gq_errf(err, errlen, "%s: input %d (%s) %s is empty; it needs at least 1 coefficient",
                a->op->name, idx, name, gq_tdesc_str(c, ds, sizeof ds));
        return GQ_ESHAPE;
    }
    return GQ_OK;
}

/* The state's expected descriptor: x's batch dims, then tail. */
static gq_tdesc_t s_state_desc(const gq_tdesc_t *x, const int64_t *tail, int ntail)
{
    gq_tdesc_t d = {.dtype = GQ_F64, .ndim = x->ndim - 1 + ntail};
    for (int i = 0; i < x->ndim - 1; i++)
        d.shape[i] = x->shape[i];
    for (int i = 0; i < ntail; i++)
        d.shape[x->ndim - 1 + i] = tail[i];
    return d;
}

/* A state input must have exactly want's shape (its dtype may be f32 or f64 unless
 * f64_only). */
static gq_status s_check_state(const gq_args_t *a, const gq_tdesc_t *st, int idx, const char *name,
                               const gq_tdesc_t *want, const char *layout, bool f64_only, char *err,
                               size_t errlen)
{
    char gs[64], ws[64];
    bool same = st->ndim == want->ndim;
    for (int i = 0; same && i < st->ndim; i++)
        same = st->shape[i] == want->shape[i];
    if (!same) {
        size_t off = 0;
        ws[0] = '\0';
        for (int i = 0; i < want->ndim && off < sizeof ws; i++)
            off += (size_t)snprintf(ws + off, sizeof ws - off, "%s%lld", i ? "," : "",
                                    (long long)want->shape[i]);
        gq_errf(err, errlen, "%s: input %d (%s) %s must have shape [%s] (%s)", a->op->name, idx,
                name, gq_tdesc_str(st, gs, sizeof gs), ws, layout);
        return GQ_ESHAPE;
    }
    if (f64_only && st->dtype != GQ_F64) {
        gq_errf(err, errlen, "%s: input %d (%s) %s must be f64 (it carries a stream position)",
                a->op->name, idx, name, gq_tdesc_str(st, gs, sizeof gs));
        return GQ_EDTYPE;
    }
    return GQ_OK;
}

/* ---- dsp.fir ---- */

static gq_status s_shape_fir(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                             int *nout, char *err, size_t errlen)
{
    const char *op = a->op->name, *mode = gq_args_str(a, "mode");
    gq_status rc;
    if ((rc = s_need_signal(a, &in[0], 0, "x", err, errlen)) ||
        (rc = s_need_coefs(a, &in[1], 1, "taps h", err, errlen)))
        return rc;
    const gq_tdesc_t *x = &in[0];
    int64_t T = x->shape[x->ndim - 1], K = in[1].shape[0];
    bool stream = !strcmp(mode, "stream");
    if (nin == 3 && !stream) {
        gq_errf(err, errlen,
                "%s: input 2 (zi) is only taken with param 'mode' = stream, not '%s' (drop the "
                "state or stream)",
                op, mode);
        return GQ_EPARAM;
    }
    out[0] = *x;
    if (stream) {
        int64_t tail = K - 1;
        gq_tdesc_t zs = s_state_desc(x, &tail, 1);
        if (nin == 3 && (rc = s_check_state(a, &in[2], 2, "zi", &zs, "x's batch dims, then K-1",
                                            false, err, errlen)))
            return rc;
        out[1] = zs;
        *nout = 2;
        return GQ_OK;
    }
    if (T == 0) {
        char ds[64];
        gq_errf(err, errlen, "%s: input 0 (x) %s has no samples (param 'mode' = %s needs T >= 1)",
                op, gq_tdesc_str(x, ds, sizeof ds), mode);
        return GQ_ESHAPE;
    }
    int64_t n;
    if (!strcmp(mode, "full"))
        n = T + K - 1;
    else if (!strcmp(mode, "same"))
        n = T;
    else
        n = (T > K ? T - K : K - T) + 1;
    out[0].shape[x->ndim - 1] = n;
    *nout = 1;
    return GQ_OK;
}

/* ---- dsp.sos, dsp.lfilter, dsp.preemphasis ---- */

static gq_status s_shape_sos(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                             int *nout, char *err, size_t errlen)
{
    gq_status rc = s_need_signal(a, &in[0], 0, "x", err, errlen);
    if (rc)
        return rc;
    char ds[64];
    if (in[1].ndim != 2 || in[1].shape[1] != 6 || in[1].shape[0] < 1) {
        gq_errf(err, errlen,
                "%s: input 1 (sos) %s must be [n_sections, 6] with n_sections >= 1 (b0 b1 b2 a0 "
                "a1 a2 per row)",
                a->op->name, gq_tdesc_str(&in[1], ds, sizeof ds));
        return GQ_ESHAPE;
    }
    int64_t tail[2] = {in[1].shape[0], 2};
    gq_tdesc_t zs = s_state_desc(&in[0], tail, 2);
    if (nin == 3 && (rc = s_check_state(a, &in[2], 2, "zi", &zs, "x's batch dims, n_sections, 2",
                                        false, err, errlen)))
        return rc;
    out[0] = in[0];
    *nout = 1;
    if (nin == 3 || gq_args_bool(a, "stream"))
        out[(*nout)++] = zs;
    return GQ_OK;
}

static gq_status s_shape_lfilter(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                                 int *nout, char *err, size_t errlen)
{
    gq_status rc;
    if ((rc = s_need_signal(a, &in[0], 0, "x", err, errlen)) ||
        (rc = s_need_coefs(a, &in[1], 1, "b", err, errlen)) ||
        (rc = s_need_coefs(a, &in[2], 2, "a", err, errlen)))
        return rc;
    int64_t n = (in[1].shape[0] > in[2].shape[0] ? in[1].shape[0] : in[2].shape[0]) - 1;
    gq_tdesc_t zs = s_state_desc(&in[0], &n, 1);
    if (nin == 4 &&
        (rc = s_check_state(a, &in[3], 3, "zi", &zs, "x's batch dims, then max(len(a), len(b)) - 1",
                            false, err, errlen)))
        return rc;
    out[0] = in[0];
    *nout = 1;
    if (nin == 4 || gq_args_bool(a, "stream"))
        out[(*nout)++] = zs;
    return GQ_OK;
}

static gq_status s_shape_preemph(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                                 int *nout, char *err, size_t errlen)
{
    gq_status rc = s_need_signal(a, &in[0], 0, "x", err, errlen);
    if (rc)
        return rc;
    int64_t one = 1;
    gq_tdesc_t zs = s_state_desc(&in[0], &one, 1);
    if (nin == 2 &&
        (rc = s_check_state(a, &in[1], 1, "zi", &zs, "x's batch dims, then 1", false, err, errlen)))
        return rc;
    if (nin == 1 && in[0].shape[in[0].ndim - 1] == 0) {
        char ds[64];
        gq_errf(err, errlen,
                "%s: input 0 (x) %s has no samples (without zi the initial state extrapolates "
                "from x[0])",
                a->op->name, gq_tdesc_str(&in[0], ds, sizeof ds));
        return GQ_ESHAPE;
    }
    out[0] = in[0];
    *nout = 1;
    if (nin == 2 || gq_args_bool(a, "stream"))
        out[(*nout)++] = zs;
    return GQ_OK;
}

/* ---- dsp.resample ---- */

static int64_t s_gcd(int64_t x, int64_t y)
{
    while (y) {
        int64_t t = x % y;
        x = y;
        y = t;
    }
    return x;
}

/* Floor of x / y for y > 0, x of any sign. */
static int64_t s_floor_div(int64_t x, int64_t y)
{
    int64_t q = x / y;
    return (x % y != 0 && x < 0) ? q - 1 : q;
}

gq_status gq_resample_plan(const gq_args_t *a, gq_resample_plan_t *p, char *err, size_t errlen)
{
    const char *op = a->op->name;
    memset(p, 0, sizeof *p);
    int64_t sr = gq_args_int(a, "sr"), tsr = gq_args_int(a, "target_sr");
    int64_t up = gq_args_int(a, "up"), down = gq_args_int(a, "down");
    const char *rt = gq_args_str(a, "res_type");
    bool rates = sr || tsr, ratio = up || down;
    if (rates && ratio) {
        gq_errf(err, errlen,
                "%s: give params 'sr' and 'target_sr', or 'up' and 'down', not both (got sr=%lld "
                "target_sr=%lld up=%lld down=%lld)",
                op, (long long)sr, (long long)tsr, (long long)up, (long long)down);
        return GQ_EPARAM;
    }
    if (ratio) {
        if (up < 1 || down < 1) {
            gq_errf(err, errlen, "%s: param '%s' = 0 must be >= 1 (with param '%s' = %lld)", op,
                    up < 1 ? "up" : "down", up < 1 ? "down" : "up",
                    (long long)(up < 1 ? down : up));
            return GQ_EPARAM;
        }
        p->in_rate = (double)down;
        p->out_rate = (double)up;
    } else {
        if (sr < 1 || tsr < 1) {
            gq_errf(err, errlen,
                    "%s: param '%s' = %lld must be > 0 (give 'sr' and 'target_sr' in Hz, or 'up' "
                    "and 'down')",
                    op, sr < 1 ? "sr" : "target_sr", (long long)(sr < 1 ? sr : tsr));
            return GQ_EPARAM;
        }
        up = tsr;
        down = sr;
        p->in_rate = (double)sr;
        p->out_rate = (double)tsr;
    }
    int64_t g = s_gcd(up, down);
    p->up = up / g;
    p->down = down / g;
    p->beta = gq_args_float(a, "beta");
    p->stream = gq_args_bool(a, "stream");
    p->final = !p->stream || gq_args_bool(a, "final");
    p->pos = gq_args_int(a, "pos");
    if (!strcmp(rt, "auto"))
        rt = rates ? "soxr_hq" : "polyphase";
    if (!strcmp(rt, "polyphase")) {
        p->engine = GQ_RESAMPLE_POLY;
        int64_t mx = p->up > p->down ? p->up : p->down;
        if (mx > GQ_RESAMPLE_MAX_FACTOR) {
            gq_errf(err, errlen,
                    "%s: param 'res_type' = polyphase: the reduced ratio %lld/%lld needs a filter "
                    "of %lld taps (factors up to %d); use res_type=soxr_hq",
                    op, (long long)p->up, (long long)p->down, (long long)(20 * mx + 1),
                    GQ_RESAMPLE_MAX_FACTOR);
            return GQ_EPARAM;
        }
        p->half_len = p->up == 1 && p->down == 1 ? 0 : 10 * mx;
        p->phase_taps = (2 * p->half_len + 1 + p->up - 1) / p->up;
    } else {
        p->engine = GQ_RESAMPLE_SOXR;
        static const char *const q[] = {"soxr_qq", "soxr_lq", "soxr_mq", "soxr_hq", "soxr_vhq"};
        for (int i = 0; i < (int)(sizeof q / sizeof q[0]); i++)
            if (!strcmp(q[i], rt))
                p->soxr_quality = i;
        if (p->stream) {
            gq_errf(err, errlen,
                    "%s: param 'stream' = true needs res_type=polyphase: libsoxr keeps its state "
                    "in opaque memory that cannot travel between jobs (res_type is '%s')",
                    op, rt);
            return GQ_EPARAM;
        }
    }
    if (!p->stream && p->pos) {
        gq_errf(err, errlen, "%s: param 'pos' = %lld needs stream=true", op, (long long)p->pos);
        return GQ_EPARAM;
    }
    return GQ_OK;
}

int64_t gq_resample_ready(const gq_resample_plan_t *p, int64_t n)
{
    int64_t r = s_floor_div(n * p->up - 1 - p->half_len, p->down) + 1;
    return r < 0 ? 0 : r;
}

int64_t gq_resample_total(const gq_resample_plan_t *p, int64_t n)
{
    int64_t t = n * p->up;
    return t / p->down + (t % p->down != 0);
}

int64_t gq_resample_state_len(const gq_resample_plan_t *p)
{
    return p->phase_taps; /* phase_taps - 1 history samples and the position */
}

static gq_status s_shape_resample(const gq_args_t *a, const gq_tdesc_t *in, int nin,
                                  gq_tdesc_t *out, int *nout, char *err, size_t errlen)
{
    const char *op = a->op->name;
    gq_status rc = s_need_signal(a, &in[0], 0, "x", err, errlen);
    if (rc)
        return rc;
    gq_resample_plan_t p;
    if ((rc = gq_resample_plan(a, &p, err, errlen)))
        return rc;
    const gq_tdesc_t *x = &in[0];
    int64_t T = x->shape[x->ndim - 1];
    if (nin == 2 && !p.stream) {
        gq_errf(err, errlen, "%s: input 1 (state) is only taken with param 'stream' = true", op);
        return GQ_EPARAM;
    }
    if (p.stream && nin == 1 && p.pos) {
        gq_errf(err, errlen,
                "%s: param 'pos' = %lld but no state input: a chunk after the first needs the "
                "state output of the one before",
                op, (long long)p.pos);
        return GQ_EPARAM;
    }
    /* Every count below stays under 2^63: T and pos are below 2^53, up below 2^30. */
    if (p.up > 1 && (p.pos + T) > INT64_MAX / 2 / p.up) {
        char ds[64];
        gq_errf(err, errlen, "%s: input 0 (x) %s resampled by %lld/%lld is too large", op,
                gq_tdesc_str(x, ds, sizeof ds), (long long)p.up, (long long)p.down);
        return GQ_ETOOBIG;
    }
    out[0] = *x;
    *nout = 1;
    if (!p.stream) {
        out[0].shape[x->ndim - 1] = gq_resample_total(&p, T);
        return GQ_OK;
    }
    int64_t n = p.pos + T;
    int64_t end = p.final ? gq_resample_total(&p, n) : gq_resample_ready(&p, n);
    out[0].shape[x->ndim - 1] = end - gq_resample_ready(&p, p.pos);
    int64_t sl = gq_resample_state_len(&p);
    gq_tdesc_t zs = s_state_desc(x, &sl, 1);
    if (nin == 2 && (rc = s_check_state(a, &in[1], 1, "state", &zs,
                                        "x's batch dims, then history samples and the position",
                                        true, err, errlen)))
        return rc;
    out[(*nout)++] = zs;
    return GQ_OK;
}

/* ---- levels ---- */

static gq_status s_shape_same(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                              int *nout, char *err, size_t errlen)
{
    (void)a, (void)nin, (void)err, (void)errlen;
    out[0] = in[0];
    *nout = 1;
    return GQ_OK;
}

static gq_status s_shape_normalize(const gq_args_t *a, const gq_tdesc_t *in, int nin,
                                   gq_tdesc_t *out, int *nout, char *err, size_t errlen)
{
    int64_t axes = gq_args_int(a, "axes");
    if (axes > in[0].ndim) {
        char ds[64];
        gq_errf(err, errlen, "%s: param 'axes' = %lld is more than the %d dims of input 0 (x) %s",
                a->op->name, (long long)axes, in[0].ndim, gq_tdesc_str(&in[0], ds, sizeof ds));
        return GQ_EPARAM;
    }
    return s_shape_same(a, in, nin, out, nout, err, errlen);
}

/* The layouts BS.1770 weights: mono, stereo, 3.0, quad, 5.0, 5.1 (WAV order). */
#define S_MAX_CHANNELS 6

static gq_status s_shape_loudness(const gq_args_t *a, const gq_tdesc_t *in, int nin,
                                  gq_tdesc_t *out, int *nout, char *err, size_t errlen)
{
    (void)nin;
    const gq_tdesc_t *x = &in[0];
    char ds[64];
    if (x->ndim < 2) {
        gq_errf(err, errlen,
                "%s: input 0 (x) %s must be [..., channels, T] (a mono signal is [1, T])",
                a->op->name, gq_tdesc_str(x, ds, sizeof ds));
        return GQ_ESHAPE;
    }
    int64_t ch = x->shape[x->ndim - 2];
    if (ch < 1 || ch > S_MAX_CHANNELS) {
        gq_errf(err, errlen,
                "%s: input 0 (x) %s has %lld channels; must be 1..%d (mono, stereo, L R C, quad, "
                "5.0, 5.1 as L R C LFE Ls Rs)",
                a->op->name, gq_tdesc_str(x, ds, sizeof ds), (long long)ch, S_MAX_CHANNELS);
        return GQ_ESHAPE;
    }
    out[0] = (gq_tdesc_t){.dtype = GQ_F64, .ndim = x->ndim - 1};
    for (int i = 0; i < x->ndim - 2; i++)
        out[0].shape[i] = x->shape[i];
    out[0].shape[x->ndim - 2] = 5;
    *nout = 1;
    return GQ_OK;
}

static gq_status s_shape_frame(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                               int *nout, char *err, size_t errlen)
{
    (void)nin;
    const gq_tdesc_t *x = &in[0];
    gq_status rc = s_need_signal(a, x, 0, "x", err, errlen);
    if (rc)
        return rc;
    char ds[64];
    if (x->ndim == GQ_MAX_DIMS) {
        gq_errf(err, errlen, "%s: input 0 (x) %s has %d dims; framing adds one (at most %d)",
                a->op->name, gq_tdesc_str(x, ds, sizeof ds), x->ndim, GQ_MAX_DIMS);
        return GQ_ESHAPE;
    }
    int64_t fl = gq_args_int(a, "frame_length"), hop = gq_args_int(a, "hop_length");
    int64_t T = x->shape[x->ndim - 1];
    if (fl > T) {
        gq_errf(err, errlen, "%s: param 'frame_length' = %lld is longer than input 0 (x) %s",
                a->op->name, (long long)fl, gq_tdesc_str(x, ds, sizeof ds));
        return GQ_EPARAM;
    }
    int64_t nf = 1 + (T - fl) / hop;
    bool last = gq_args_bool(a, "frames_last");
    out[0] = *x;
    out[0].ndim = x->ndim + 1;
    out[0].shape[x->ndim - 1] = last ? fl : nf;
    out[0].shape[x->ndim] = last ? nf : fl;
    *nout = 1;
    return GQ_OK;
}

static gq_status s_shape_ola(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                             int *nout, char *err, size_t errlen)
{
    (void)nin;
    const gq_tdesc_t *x = &in[0];
    if (x->ndim < 2) {
        char ds[64];
        gq_errf(err, errlen, "%s: input 0 (frames) %s must be [..., frame_length, n_frames]",
                a->op->name, gq_tdesc_str(x, ds, sizeof ds));
        return GQ_ESHAPE;
    }
    bool last = gq_args_bool(a, "frames_last");
    int64_t fl = x->shape[x->ndim - (last ? 2 : 1)], nf = x->shape[x->ndim - (last ? 1 : 2)];
    int64_t hop = gq_args_int(a, "hop_length");
    out[0] = *x;
    out[0].ndim = x->ndim - 1;
    out[0].shape[x->ndim - 2] = nf ? (nf - 1) * hop + fl : 0;
    *nout = 1;
    return GQ_OK;
}

static const gq_op_spec_t s_specs[] = {
    {.name = "dsp.fir",
     .summary = "FIR filter / convolution of x [..., T] with taps h [K] (direct or FFT "
                "overlap-save); mode=stream takes zi and gives zf [..., K-1] like "
                "lfilter(h, 1, x, zi)",
     .min_inputs = 2,
     .max_inputs = 3,
     .in_dtypes = GQ_DT_FLOATS,
     .params = S_PARAMS(s_fir_params),
     .shape = s_shape_fir},
    {.name = "dsp.sos",
     .summary = "biquad cascade like scipy.signal.sosfilt: x [..., T], sos [n, 6], optional zi "
                "[..., n, 2] -> y, zf",
     .min_inputs = 2,
     .max_inputs = 3,
     .in_dtypes = GQ_DT_FLOATS,
     .params = S_PARAMS(s_stream_params),
     .shape = s_shape_sos},
    {.name = "dsp.lfilter",
     .summary = "IIR filter like scipy.signal.lfilter (normalised by a[0]): x, b, a, optional zi "
                "[..., max(len(a), len(b)) - 1] -> y, zf",
     .min_inputs = 3,
     .max_inputs = 4,
     .in_dtypes = GQ_DT_FLOATS,
     .params = S_PARAMS(s_stream_params),
     .shape = s_shape_lfilter},
    {.name = "dsp.preemphasis",
     .summary = "y[n] = x[n] - coef * x[n-1] like librosa.effects.preemphasis; optional zi "
                "[..., 1] -> y, zf",
     .min_inputs = 1,
     .max_inputs = 2,
     .in_dtypes = GQ_DT_FLOATS,
     .params = S_PARAMS(s_preemph_params),
     .shape = s_shape_preemph},
    {.name = "dsp.resample",
     .summary = "resample x [..., T] from sr to target_sr (libsoxr, as librosa.resample) or by "
                "up/down (polyphase, as scipy.signal.resample_poly; streams with state)",
     .min_inputs = 1,
     .max_inputs = 2,
     .in_dtypes = GQ_DT_FLOATS,
     .params = S_PARAMS(s_resample_params),
     .shape = s_shape_resample},
    {.name = "dsp.gain",
     .flags = GQ_OPF_LIGHT | GQ_OPF_BATCHABLE,
     .summary = "x * factor * 10^(db/20), computed in double",
     .min_inputs = 1,
     .max_inputs = 1,
     .in_dtypes = GQ_DT_FLOATS,
     .params = S_PARAMS(s_gain_params),
     .shape = s_shape_same},
    {.name = "dsp.normalize",
     .flags = GQ_OPF_LIGHT | GQ_OPF_BATCHABLE,
     .summary = "scale each row (or [channels, T] block, axes=2) to a peak or RMS level in "
                "dBFS; silence stays silent, a block holding NaN/Inf becomes NaN",
     .min_inputs = 1,
     .max_inputs = 1,
     .in_dtypes = GQ_DT_FLOATS,
     .params = S_PARAMS(s_normalize_params),
     .shape = s_shape_normalize},
    {.name = "dsp.loudness",
     .summary = "EBU R128 (libebur128) of x [..., channels, T] -> f64 [..., 5]: integrated LUFS, "
                "loudness range LU, max momentary LUFS, max short-term LUFS, true peak dBTP",
     .min_inputs = 1,
     .max_inputs = 1,
     .in_dtypes = GQ_DT_FLOATS,
     .params = S_PARAMS(s_loudness_params),
     .shape = s_shape_loudness},
    {.name = "dsp.frame",
     .flags = GQ_OPF_LIGHT | GQ_OPF_BATCHABLE,
     .summary = "frames of x [..., T] like librosa.util.frame: [..., frame_length, n_frames], "
                "n_frames = 1 + (T - frame_length) / hop_length",
     .min_inputs = 1,
     .max_inputs = 1,
     .in_dtypes = GQ_DT_FLOATS,
     .params = S_PARAMS(s_frame_params),
     .shape = s_shape_frame},
    {.name = "dsp.overlap_add",
     .flags = GQ_OPF_LIGHT | GQ_OPF_BATCHABLE,
     .summary = "inverse of dsp.frame: frames [..., frame_length, n_frames] summed at hop_length "
                "-> [..., (n_frames - 1) * hop_length + frame_length]",
     .min_inputs = 1,
     .max_inputs = 1,
     .in_dtypes = GQ_DT_FLOATS,
     .params = S_PARAMS(s_ola_params),
     .shape = s_shape_ola},
};

const gq_op_family_t gq_ops_dsp_filter = {s_specs, (int)(sizeof s_specs / sizeof s_specs[0])};
