/* CPU kernels of the dsp.* level and framing ops: gain, normalize, loudness (libebur128),
 * frame, overlap_add. Semantics: common/ops_dsp_filter.c and docs/dsp-filter.md. */
#include "cpu_dsp_filter.h"
#include "cpu_fft.h"
#include "util.h"
#include <ebur128.h>
#include <math.h>
#include <string.h>

/* ---- dsp.gain ---- */

gq_status gq_cpu_dsp_gain(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out,
                          int nout, char *err, size_t errlen)
{
    (void)nin, (void)nout, (void)err, (void)errlen;
    const double g = gq_args_float(a, "factor") * pow(10.0, gq_args_float(a, "db") / 20.0);
    int64_t n = gq_tdesc_numel(&in[0].desc);
    if (in[0].desc.dtype == GQ_F32) {
        const float *x = in[0].data;
        float *y = out[0].data;
        for (int64_t i = 0; i < n; i++)
            y[i] = (float)((double)x[i] * g);
    } else {
        const double *x = in[0].data;
        double *y = out[0].data;
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] * g;
    }
    return GQ_OK;
}

/* ---- dsp.normalize ---- */

/* Peak (max |x|) or RMS of n values; NaN when any value is NaN or Inf. */
static double s_level(const void *x, gq_dtype_t dt, int64_t off, int64_t n, bool rms)
{
    double acc = 0.0, bad = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double v =
            dt == GQ_F32 ? (double)((const float *)x)[off + i] : ((const double *)x)[off + i];
        bad += v - v;
        if (rms)
            acc += v * v;
        else
            acc = fmax(acc, fabs(v));
    }
    if (bad != 0.0 || isnan(bad))
        return NAN;
    return rms ? (n ? sqrt(acc / (double)n) : 0.0) : acc;
}

gq_status gq_cpu_dsp_normalize(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out,
                               int nout, char *err, size_t errlen)
{
    (void)nin, (void)nout, (void)err, (void)errlen;
    const gq_tdesc_t *d = &in[0].desc;
    gq_dtype_t dt = d->dtype;
    bool rms = !strcmp(gq_args_str(a, "mode"), "rms");
    double target = pow(10.0, gq_args_float(a, "target_db") / 20.0);
    int64_t axes = gq_args_int(a, "axes"), g = 1, numel = gq_tdesc_numel(d);
    for (int i = d->ndim - (int)axes; i < d->ndim; i++)
        g *= d->shape[i];
    if (!g || !numel)
        return GQ_OK;
    for (int64_t off = 0; off < numel; off += g) {
        double lvl = s_level(in[0].data, dt, off, g, rms);
        /* Silence has no level to scale: it is copied (and stays silent). */
        double k = isnan(lvl) ? NAN : lvl == 0.0 ? 1.0 : target / lvl;
        if (dt == GQ_F32) {
            const float *x = (const float *)in[0].data + off;
            float *y = (float *)out[0].data + off;
            for (int64_t i = 0; i < g; i++)
                y[i] = (float)((double)x[i] * k);
        } else {
            const double *x = (const double *)in[0].data + off;
            double *y = (double *)out[0].data + off;
            for (int64_t i = 0; i < g; i++)
                y[i] = x[i] * k;
        }
    }
    return GQ_OK;
}

/* ---- dsp.loudness ---- */

/* BS.1770 channel roles by channel count (WAV order for 5.1). */
static const int s_maps[7][6] = {
    {0},
    {EBUR128_LEFT},
    {EBUR128_LEFT, EBUR128_RIGHT},
    {EBUR128_LEFT, EBUR128_RIGHT, EBUR128_CENTER},
    {EBUR128_LEFT, EBUR128_RIGHT, EBUR128_LEFT_SURROUND, EBUR128_RIGHT_SURROUND},
    {EBUR128_LEFT, EBUR128_RIGHT, EBUR128_CENTER, EBUR128_LEFT_SURROUND, EBUR128_RIGHT_SURROUND},
    {EBUR128_LEFT, EBUR128_RIGHT, EBUR128_CENTER, EBUR128_UNUSED, EBUR128_LEFT_SURROUND,
     EBUR128_RIGHT_SURROUND},
};

static double s_db20(double x)
{
    return x > 0.0 ? 20.0 * log10(x) : -INFINITY;
}

/* One [C, T] item into res[5]; frames is scratch of C * hop doubles. */
static gq_status s_loudness_item(const void *x, gq_dtype_t dt, int64_t off, int C, int64_t T,
                                 long sr, bool dual_mono, double *frames, int64_t hop, double *res)
{
    ebur128_state *st = ebur128_init((unsigned)C, (unsigned long)sr,
                                     EBUR128_MODE_I | EBUR128_MODE_LRA | EBUR128_MODE_TRUE_PEAK);
    if (!st)
        return GQ_ENOMEM;
    for (int c = 0; c < C; c++)
        ebur128_set_channel(st, (unsigned)c,
                            C == 1 && dual_mono ? EBUR128_DUAL_MONO : s_maps[C][c]);
    double mmax = -INFINITY, smax = -INFINITY, v;
    int64_t m_min = (4 * sr + 5) / 10, s_min = 3 * sr; /* 400 ms and 3 s of signal */
    gq_status rc = GQ_OK;
    for (int64_t t0 = 0; t0 < T && rc == GQ_OK; t0 += hop) {
        int64_t n = T - t0 < hop ? T - t0 : hop;
        for (int c = 0; c < C; c++)
            for (int64_t i = 0; i < n; i++)
                frames[i * C + c] = dt == GQ_F32 ? (double)((const float *)x)[off + c * T + t0 + i]
                                                 : ((const double *)x)[off + c * T + t0 + i];
        if (ebur128_add_frames_double(st, frames, (size_t)n) != EBUR128_SUCCESS)
            rc = GQ_EBACKEND;
        /* Momentary and short-term loudness are read every 100 ms block, once their whole
         * 400 ms or 3 s window holds signal. */
        if (t0 + n >= m_min && ebur128_loudness_momentary(st, &v) == EBUR128_SUCCESS)
            mmax = fmax(mmax, v);
        if (t0 + n >= s_min && ebur128_loudness_shortterm(st, &v) == EBUR128_SUCCESS)
            smax = fmax(smax, v);
    }
    double gl = -INFINITY, lra = 0.0, tp = 0.0;
    if (rc == GQ_OK) {
        if (ebur128_loudness_global(st, &gl) != EBUR128_SUCCESS ||
            ebur128_loudness_range(st, &lra) != EBUR128_SUCCESS)
            rc = GQ_EBACKEND;
        for (int c = 0; c < C && rc == GQ_OK; c++) {
            if (ebur128_true_peak(st, (unsigned)c, &v) != EBUR128_SUCCESS)
                rc = GQ_EBACKEND;
            tp = fmax(tp, v);
        }
    }
    ebur128_destroy(&st);
    res[0] = gl;
    res[1] = lra;
    res[2] = mmax;
    res[3] = smax;
    res[4] = s_db20(tp);
    return rc;
}

gq_status gq_cpu_dsp_loudness(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out,
                              int nout, char *err, size_t errlen)
{
    (void)nin, (void)nout;
    const char *op = a->op->name;
    const gq_tdesc_t *d = &in[0].desc;
    int C = (int)d->shape[d->ndim - 2];
    int64_t T = d->shape[d->ndim - 1], items = gq_dsp_rows(d) / C;
    long sr = (long)gq_args_int(a, "sr");
    bool dual = gq_args_bool(a, "dual_mono");
    /* libebur128's block: 100 ms, rounded as it rounds it. */
    int64_t hop = (sr + 5) / 10;
    double *frames = gq_dsp_scratch(op, hop * C, err, errlen);
    if (!frames)
        return GQ_ENOMEM;
    gq_status rc = GQ_OK;
    double *res = out[0].data;
    for (int64_t it = 0; it < items && rc == GQ_OK; it++) {
        int64_t off = it * C * T;
        if (!gq_dsp_all_finite(in[0].data, d->dtype, off, C * T)) {
            for (int k = 0; k < 5; k++)
                res[it * 5 + k] = NAN;
            continue;
        }
        rc = s_loudness_item(in[0].data, d->dtype, off, C, T, sr, dual, frames, hop, res + it * 5);
        if (rc)
            gq_errf(err, errlen, "%s: libebur128 failed on item %lld (%d channels at %ld Hz)", op,
                    (long long)it, C, sr);
    }
    gq_fft_free(frames);
    return rc;
}

/* ---- dsp.frame, dsp.overlap_add ---- */

gq_status gq_cpu_dsp_frame(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out,
                           int nout, char *err, size_t errlen)
{
    (void)nin, (void)nout, (void)err, (void)errlen;
    const gq_tdesc_t *d = &in[0].desc;
    int64_t T = gq_dsp_row_len(d), rows = gq_dsp_rows(d);
    int64_t fl = gq_args_int(a, "frame_length"), hop = gq_args_int(a, "hop_length");
    int64_t nf = 1 + (T - fl) / hop;
    bool last = gq_args_bool(a, "frames_last");
    size_t es = gq_dtype_size(d->dtype);
    const char *x = in[0].data;
    char *y = out[0].data;
    for (int64_t r = 0; r < rows; r++) {
        const char *xr = x + (size_t)(r * T) * es;
        char *yr = y + (size_t)(r * fl * nf) * es;
        if (!last) {
            for (int64_t f = 0; f < nf; f++)
                memcpy(yr + (size_t)(f * fl) * es, xr + (size_t)(f * hop) * es, (size_t)fl * es);
        } else if (d->dtype == GQ_F32) {
            for (int64_t i = 0; i < fl; i++)
                for (int64_t f = 0; f < nf; f++)
                    ((float *)yr)[i * nf + f] = ((const float *)xr)[f * hop + i];
        } else {
            for (int64_t i = 0; i < fl; i++)
                for (int64_t f = 0; f < nf; f++)
                    ((double *)yr)[i * nf + f] = ((const double *)xr)[f * hop + i];
        }
    }
    return GQ_OK;
}

gq_status gq_cpu_dsp_overlap_add(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out,
                                 int nout, char *err, size_t errlen)
{
    (void)nin, (void)nout;
    const gq_tdesc_t *d = &in[0].desc;
    bool last = gq_args_bool(a, "frames_last");
    int64_t fl = d->shape[d->ndim - (last ? 2 : 1)], nf = d->shape[d->ndim - (last ? 1 : 2)];
    int64_t hop = gq_args_int(a, "hop_length"), n = gq_dsp_row_len(&out[0].desc);
    int64_t items = gq_dsp_rows(&out[0].desc);
    /* Frame stride and sample stride of the input. */
    int64_t fs = last ? 1 : fl, ss = last ? nf : 1;
    double *acc = gq_dsp_scratch(a->op->name, n, err, errlen);
    if (!acc)
        return GQ_ENOMEM;
    for (int64_t it = 0; it < items; it++) {
        memset(acc, 0, (size_t)n * sizeof(double));
        int64_t base = it * fl * nf;
        for (int64_t f = 0; f < nf; f++)
            for (int64_t i = 0; i < fl; i++) {
                int64_t k = base + f * fs + i * ss;
                acc[f * hop + i] += d->dtype == GQ_F32 ? (double)((const float *)in[0].data)[k]
                                                       : ((const double *)in[0].data)[k];
            }
        gq_dsp_store(acc, n, out[0].data, d->dtype, it * n);
    }
    gq_fft_free(acc);
    return GQ_OK;
}
