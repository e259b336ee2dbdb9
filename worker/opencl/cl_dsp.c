/* OpenCL host side of the dsp.* ops (kernels in kernels/dsp.cl and kernels/fft.cl): the
 * family's op table, and the filter, level and framing ops; the FFT and spectral ops are
 * in cl_fft.c. Semantics are the CPU reference's (docs/dsp-filter.md). What runs here:
 * f32 signals, and f64 ones when the device has fp64. Filters run in double with fp64,
 * like the CPU; without it in float, and the ops whose outputs include an f64 state (and
 * the IIR filters, whose float recursion would drift from the reference) are declined.
 * Coefficient inputs (taps, sos, b, a) are small: they are read back, checked and
 * normalised on the host in double, and uploaded in the kernels' precision. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cl_dsp.h"
#include "cpu/cpu_dsp_filter.h"
#include "cpu/cpu_dsp_util.h"
#include "ops_dsp_filter.h"
#include "util.h"

/* Limits of the register-state kernels (GQ_SOS_MAX, GQ_LF_MAX in dsp.cl). */
#define S_SOS_MAX 16
#define S_LF_MAX 32

/* Indexed by kind: gq_dsp_<name>_<f32|f64> in the kernels. */
static const char *const s_kind_names[GQ_DK_COUNT] = {
    [GQ_DK_GAIN] = "gain",
    [GQ_DK_WINDOW] = "window",
    [GQ_DK_LEVEL] = "level",
    [GQ_DK_SCALE_GROUPS] = "scale_groups",
    [GQ_DK_FRAME] = "frame",
    [GQ_DK_OLA] = "ola",
    [GQ_DK_PREEMPH] = "preemph",
    [GQ_DK_PREEMPH_ZF] = "preemph_zf",
    [GQ_DK_FIR] = "fir",
    [GQ_DK_SOS] = "sos",
    [GQ_DK_LFILTER] = "lfilter",
    [GQ_DK_WIDEN] = "widen",
    [GQ_DK_FFT_LOCAL] = "fft_local",
    [GQ_DK_FFT_PASS] = "fft_pass",
    [GQ_DK_FFT_LOAD] = "fft_load",
    [GQ_DK_FFT_STORE] = "fft_store",
    [GQ_DK_CHIRP_MUL] = "chirp_mul",
    [GQ_DK_SPEC_MUL] = "spec_mul",
    [GQ_DK_STFT_FRAMES] = "stft_frames",
    [GQ_DK_STFT_OUT] = "stft_out",
    [GQ_DK_ISTFT_IN] = "istft_in",
    [GQ_DK_ISTFT_OLA] = "istft_ola",
    [GQ_DK_DB_MAX] = "db_max",
    [GQ_DK_DB] = "db",
    [GQ_DK_GAINF] = "gainf",
    [GQ_DK_FFT_ROWS] = "fft_rows",
    [GQ_DK_FINITE] = "finite",
    [GQ_DK_OLS_SEG] = "ols_seg",
    [GQ_DK_OLS_OUT] = "ols_out",
    [GQ_DK_RFFT_PAIRS] = "rfft_pairs",
    [GQ_DK_RFFT_SPLIT] = "rfft_split",
    [GQ_DK_IRFFT_PACK] = "irfft_pack",
    [GQ_DK_MEL] = "mel",
    [GQ_DK_DCT] = "dct",
    [GQ_DK_RESAMPLE] = "resample",
};

static void s_kernel_name(int kid, char *buf, size_t len)
{
    int kind = kid >> 1;
    if (kind >= GQ_DK_COUNT || !s_kind_names[kind]) {
        snprintf(buf, len, "gq_invalid_%d", kid);
        return;
    }
    snprintf(buf, len, "gq_dsp_%s_%s", s_kind_names[kind], kid & 1 ? "f64" : "f32");
}

int gq_cl_dsp_kid(const gq_cl_dsp_ctx_t *c, gq_cl_dk_t kind, bool f64)
{
    return GQ_CL_KID(c->fam, (int)kind << 1 | (f64 ? 1 : 0));
}

gq_status gq_cl_dsp_launch(const gq_cl_dsp_ctx_t *c, gq_cl_dk_t kind, bool f64,
                           const gq_cl_arg_t *args, int nargs, size_t groups, size_t items)
{
    return gq_cl_launch(c->cl, c->st, gq_cl_dsp_kid(c, kind, f64), args, nargs, groups, items,
                        c->op, c->err, c->errlen);
}

gq_status gq_cl_dsp_launch_ew(const gq_cl_dsp_ctx_t *c, gq_cl_dk_t kind, bool f64,
                              const gq_cl_arg_t *args, int nargs, size_t items)
{
    return gq_cl_launch_ew(c->cl, c->st, gq_cl_dsp_kid(c, kind, f64), args, nargs, items, c->op,
                           c->err, c->errlen);
}

gq_status gq_cl_dsp_launch_local(const gq_cl_dsp_ctx_t *c, gq_cl_dk_t kind, bool f64,
                                 const gq_cl_arg_t *args, int nargs, size_t groups, size_t local)
{
    return gq_cl_launch_local(c->cl, c->st, gq_cl_dsp_kid(c, kind, f64), args, nargs, groups, local,
                              c->op, c->err, c->errlen);
}

gq_status gq_cl_dsp_scratch(const gq_cl_dsp_ctx_t *c, size_t nbytes, cl_mem *out)
{
    return gq_cl_scratch(c->cl, c->st, nbytes, out, c->op, c->err, c->errlen);
}

size_t gq_cl_dsp_acc_size(const gq_cl_t *cl)
{
    return gq_cl_fp64(cl) ? sizeof(double) : sizeof(float);
}

gq_status gq_cl_dsp_upload_acc(const gq_cl_dsp_ctx_t *c, const double *v, size_t n, cl_mem *out)
{
    size_t es = gq_cl_dsp_acc_size(c->cl);
    gq_status rc = gq_cl_dsp_scratch(c, n * es, out);
    if (rc || !n)
        return rc;
    void *host = malloc(n * es);
    if (!host) {
        gq_errf(c->err, c->errlen, "%s: opencl: out of memory for %zu coefficients", c->op, n);
        return GQ_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (es == sizeof(double))
            ((double *)host)[i] = v[i];
        else
            ((float *)host)[i] = (float)v[i];
    }
    rc = gq_cl_write(c->cl, c->st, *out, host, n * es, c->op, c->err, c->errlen);
    free(host);
    return rc;
}

/* A coefficient tensor (f32 or f64) read back into n doubles (malloc'd, caller frees). */
static gq_status s_coefs(const gq_cl_dsp_ctx_t *c, const gq_tdesc_t *d, cl_mem m, double **out)
{
    size_t n = (size_t)gq_tdesc_numel(d), nb = gq_tdesc_nbytes(d);
    void *raw = malloc(nb ? nb : 1);
    double *v = malloc((n ? n : 1) * sizeof *v);
    *out = NULL;
    if (!raw || !v) {
        free(raw);
        free(v);
        gq_errf(c->err, c->errlen, "%s: opencl: out of memory for %zu coefficients", c->op, n);
        return GQ_ENOMEM;
    }
    gq_status rc = gq_cl_read(c->cl, c->st, raw, m, nb, c->op, c->err, c->errlen);
    for (size_t i = 0; i < n && !rc; i++)
        v[i] = d->dtype == GQ_F32 ? (double)((float *)raw)[i] : ((double *)raw)[i];
    free(raw);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    return GQ_OK;
}

/* A state input as gq_acc: used as is when f64 (kernels with states need fp64), else
 * widened into scratch. */
static gq_status s_state_in(const gq_cl_dsp_ctx_t *c, const gq_tdesc_t *d, cl_mem m, cl_mem *out)
{
    if (d->dtype == GQ_F64) {
        *out = m;
        return GQ_OK;
    }
    cl_ulong n = (cl_ulong)gq_tdesc_numel(d);
    gq_status rc = gq_cl_dsp_scratch(c, (size_t)n * gq_cl_dsp_acc_size(c->cl), out);
    if (rc)
        return rc;
    gq_cl_arg_t args[] = {GQ_CL_ARG(m), GQ_CL_ARG(*out), GQ_CL_ARG(n)};
    return gq_cl_dsp_launch(c, GQ_DK_WIDEN, false, args, 3, 0, (size_t)n);
}

static int64_t s_row_len(const gq_tdesc_t *d)
{
    return d->ndim ? d->shape[d->ndim - 1] : 1;
}

static int64_t s_rows(const gq_tdesc_t *d)
{
    int64_t r = 1;
    for (int i = 0; i + 1 < d->ndim; i++)
        r *= d->shape[i];
    return r;
}

/* ---- gain, normalize, window ---- */

static gq_status s_gain(gq_cl_dsp_ctx_t *c, const gq_tdesc_t *in, cl_mem *mi, int nin,
                        const gq_tdesc_t *out, cl_mem *mo, int nout)
{
    (void)nin, (void)out, (void)nout;
    double g = gq_args_float(c->a, "factor") * pow(10.0, gq_args_float(c->a, "db") / 20.0);
    cl_ulong n = (cl_ulong)gq_tdesc_numel(&in[0]);
    bool f64 = in[0].dtype == GQ_F64;
    cl_double gd = g;
    cl_float gf = (cl_float)g;
    /* An f32 signal and a gain that is a float (0.5, -1, 2^k ...): the float product is the
     * correctly rounded double one (gainf). */
    bool dbl = gq_cl_fp64(c->cl), exact = !f64 && (double)gf == g;
    gq_cl_dk_t kind = exact ? GQ_DK_GAINF : GQ_DK_GAIN;
    dbl = dbl && !exact;
    gq_cl_arg_t args[] = {GQ_CL_ARG(mi[0]),
                          GQ_CL_ARG(mo[0]),
                          GQ_CL_ARG(n),
                          {dbl ? sizeof gd : sizeof gf, dbl ? (void *)&gd : (void *)&gf}};
    return gq_cl_dsp_launch_ew(c, kind, f64, args, 4, (size_t)n);
}

static gq_status s_normalize(gq_cl_dsp_ctx_t *c, const gq_tdesc_t *in, cl_mem *mi, int nin,
                             const gq_tdesc_t *out, cl_mem *mo, int nout)
{
    (void)nin, (void)out, (void)nout;
    const gq_tdesc_t *d = &in[0];
    int64_t axes = gq_args_int(c->a, "axes"), g = 1, numel = gq_tdesc_numel(d);
    for (int i = d->ndim - (int)axes; i < d->ndim; i++)
        g *= d->shape[i];
    if (!g || !numel)
        return GQ_OK;
    bool f64 = d->dtype == GQ_F64, dbl = gq_cl_fp64(c->cl);
    cl_ulong groups = (cl_ulong)(numel / g), gl = (cl_ulong)g, n = (cl_ulong)numel;
    cl_int rms = !strcmp(gq_args_str(c->a, "mode"), "rms");
    double target = pow(10.0, gq_args_float(c->a, "target_db") / 20.0);
    cl_double td = target;
    cl_float tf = (cl_float)target;
    cl_mem k;
    gq_status rc = gq_cl_dsp_scratch(c, (size_t)groups * gq_cl_dsp_acc_size(c->cl), &k);
    if (rc)
        return rc;
    gq_cl_arg_t la[] = {GQ_CL_ARG(mi[0]),
                        GQ_CL_ARG(k),
                        GQ_CL_ARG(gl),
                        GQ_CL_ARG(rms),
                        {dbl ? sizeof td : sizeof tf, dbl ? (void *)&td : (void *)&tf}};
    if ((rc = gq_cl_dsp_launch(c, GQ_DK_LEVEL, f64, la, 5, (size_t)groups, (size_t)g)))
        return rc;
    gq_cl_arg_t sa[] = {GQ_CL_ARG(mi[0]), GQ_CL_ARG(k), GQ_CL_ARG(mo[0]), GQ_CL_ARG(n),
                        GQ_CL_ARG(gl)};
    return gq_cl_dsp_launch_ew(c, GQ_DK_SCALE_GROUPS, f64, sa, 5, (size_t)n);
}

static gq_status s_window(gq_cl_dsp_ctx_t *c, const gq_tdesc_t *in, cl_mem *mi, int nin,
                          const gq_tdesc_t *out, cl_mem *mo, int nout)
{
    (void)nin, (void)out, (void)nout;
    const gq_tdesc_t *d = &in[0];
    int64_t len = s_row_len(d), numel = gq_tdesc_numel(d);
    if (!numel)
        return GQ_OK;
    bool f64 = d->dtype == GQ_F64;
    double *w = malloc((size_t)len * sizeof *w);
    if (!w) {
        gq_errf(c->err, c->errlen, "%s: opencl: out of memory for a window of %lld", c->op,
                (long long)len);
        return GQ_ENOMEM;
    }
    gq_dsp_window_fill(gq_dsp_window_kind(c->a), gq_args_float(c->a, "beta"),
                       gq_args_bool(c->a, "periodic"), len, w);
    if (!f64) /* rounded to f32 in place, like the CPU */
        for (int64_t i = 0; i < len; i++)
            ((float *)w)[i] = (float)w[i];
    size_t wb = (size_t)len * (f64 ? sizeof(double) : sizeof(float));
    cl_mem wm;
    gq_status rc = gq_cl_dsp_scratch(c, wb, &wm);
    if (!rc)
        rc = gq_cl_write(c->cl, c->st, wm, w, wb, c->op, c->err, c->errlen);
    free(w);
    if (rc)
        return rc;
    cl_ulong n = (cl_ulong)numel, l = (cl_ulong)len;
    gq_cl_arg_t args[] = {GQ_CL_ARG(mi[0]), GQ_CL_ARG(wm), GQ_CL_ARG(mo[0]), GQ_CL_ARG(n),
                          GQ_CL_ARG(l)};
    return gq_cl_dsp_launch_ew(c, GQ_DK_WINDOW, f64, args, 5, (size_t)n);
}

/* ---- frame, overlap_add ---- */

static gq_status s_frame(gq_cl_dsp_ctx_t *c, const gq_tdesc_t *in, cl_mem *mi, int nin,
                         const gq_tdesc_t *out, cl_mem *mo, int nout)
{
    (void)nin, (void)out, (void)nout;
    cl_ulong len = (cl_ulong)s_row_len(&in[0]);
    cl_ulong fl = (cl_ulong)gq_args_int(c->a, "frame_length");
    cl_ulong hop = (cl_ulong)gq_args_int(c->a, "hop_length");
    cl_int last = gq_args_bool(c->a, "frames_last");
    cl_ulong nf = 1 + (len - fl) / hop, n = (cl_ulong)s_rows(&in[0]) * (last ? fl : nf);
    gq_cl_arg_t args[] = {GQ_CL_ARG(mi[0]), GQ_CL_ARG(mo[0]), GQ_CL_ARG(n),   GQ_CL_ARG(len),
                          GQ_CL_ARG(fl),    GQ_CL_ARG(nf),    GQ_CL_ARG(hop), GQ_CL_ARG(last)};
    return gq_cl_dsp_launch(c, GQ_DK_FRAME, in[0].dtype == GQ_F64, args, 8, 0, (size_t)n);
}

static gq_status s_ola(gq_cl_dsp_ctx_t *c, const gq_tdesc_t *in, cl_mem *mi, int nin,
                       const gq_tdesc_t *out, cl_mem *mo, int nout)
{
    (void)nin, (void)nout;
    const gq_tdesc_t *d = &in[0];
    bool last = gq_args_bool(c->a, "frames_last");
    cl_ulong fl = (cl_ulong)d->shape[d->ndim - (last ? 2 : 1)];
    cl_ulong nf = (cl_ulong)d->shape[d->ndim - (last ? 1 : 2)];
    cl_ulong hop = (cl_ulong)gq_args_int(c->a, "hop_length");
    cl_ulong len = (cl_ulong)s_row_len(&out[0]), n = (cl_ulong)gq_tdesc_numel(&out[0]);
    cl_ulong fs = last ? 1 : fl, ss = last ? nf : 1;
    if (!n || !nf || !fl)
        return GQ_OK;
    gq_cl_arg_t args[] = {GQ_CL_ARG(mi[0]), GQ_CL_ARG(mo[0]), GQ_CL_ARG(n),
                          GQ_CL_ARG(len),   GQ_CL_ARG(fl),    GQ_CL_ARG(nf),
                          GQ_CL_ARG(hop),   GQ_CL_ARG(fs),    GQ_CL_ARG(ss)};
    return gq_cl_dsp_launch(c, GQ_DK_OLA, d->dtype == GQ_F64, args, 9, 0, (size_t)n);
}

/* ---- preemphasis, fir, sos, lfilter ---- */

static gq_status s_preemph(gq_cl_dsp_ctx_t *c, const gq_tdesc_t *in, cl_mem *mi, int nin,
                           const gq_tdesc_t *out, cl_mem *mo, int nout)
{
    (void)out;
    bool f64 = in[0].dtype == GQ_F64, dbl = gq_cl_fp64(c->cl);
    cl_ulong len = (cl_ulong)s_row_len(&in[0]), rows = (cl_ulong)s_rows(&in[0]);
    cl_ulong n = len * rows;
    double coef = gq_args_float(c->a, "coef");
    cl_double cd = coef;
    cl_float cf = (cl_float)coef;
    gq_cl_arg_t carg = {dbl ? sizeof cd : sizeof cf, dbl ? (void *)&cd : (void *)&cf};
    cl_int has_zi = nin == 2;
    cl_mem zi = mi[0];
    gq_status rc = has_zi ? s_state_in(c, &in[1], mi[1], &zi) : GQ_OK;
    if (rc)
        return rc;
    gq_cl_arg_t args[] = {GQ_CL_ARG(mi[0]), GQ_CL_ARG(mo[0]), GQ_CL_ARG(n), GQ_CL_ARG(len), carg,
                          GQ_CL_ARG(zi),    GQ_CL_ARG(has_zi)};
    if (n && (rc = gq_cl_dsp_launch(c, GQ_DK_PREEMPH, f64, args, 7, 0, (size_t)n)))
        return rc;
    if (nout < 2 || !rows)
        return GQ_OK;
    gq_cl_arg_t za[] = {GQ_CL_ARG(mi[0]), GQ_CL_ARG(mo[1]), GQ_CL_ARG(rows), GQ_CL_ARG(len), carg,
                        GQ_CL_ARG(zi),    GQ_CL_ARG(has_zi)};
    return gq_cl_dsp_launch(c, GQ_DK_PREEMPH_ZF, f64, za, 7, 0, (size_t)rows);
}

/* method=auto takes overlap-save from this many taps (and samples) on, like the CPU. */
#define S_FIR_FFT_MIN_TAPS 32

/* fin[r] = row r of x is all finite (scratch of rows ints). */
static gq_status s_finite_rows(gq_cl_dsp_ctx_t *c, const gq_tdesc_t *x, cl_mem m, cl_mem *fin)
{
    cl_ulong len = (cl_ulong)s_row_len(x), rows = (cl_ulong)s_rows(x);
    gq_status rc = gq_cl_dsp_scratch(c, (size_t)rows * sizeof(cl_int), fin);
    if (rc)
        return rc;
    gq_cl_arg_t args[] = {GQ_CL_ARG(m), GQ_CL_ARG(*fin), GQ_CL_ARG(len)};
    return gq_cl_dsp_launch(c, GQ_DK_FINITE, x->dtype == GQ_F64, args, 3, (size_t)rows,
                            (size_t)len);
}

/* Overlap-save where the CPU takes it (fp64 devices): *done set when it ran, with fin the
 * finite-row flags for the direct pass that redoes the other rows. */
static gq_status s_fir_ols(gq_cl_dsp_ctx_t *c, const gq_tdesc_t *in, const gq_cl_fir_t *f,
                           const double *h, cl_mem *fin, cl_int *done)
{
    const char *method = gq_args_str(c->a, "method");
    *done = 0;
    bool want = !strcmp(method, "fft") || (!strcmp(method, "auto") && f->K >= S_FIR_FFT_MIN_TAPS &&
                                           f->T >= S_FIR_FFT_MIN_TAPS);
    if (!want || !gq_cl_fp64(c->cl))
        return GQ_OK;
    gq_status rc = gq_cl_fft_ols(c, f, h);
    if (rc == GQ_EUNSUPPORTED)
        return GQ_OK;
    if (rc)
        return rc;
    *done = 1;
    return s_finite_rows(c, &in[0], f->x, fin);
}

static gq_status s_fir(gq_cl_dsp_ctx_t *c, const gq_tdesc_t *in, cl_mem *mi, int nin,
                       const gq_tdesc_t *out, cl_mem *mo, int nout)
{
    (void)out, (void)nout;
    const char *mode = gq_args_str(c->a, "mode");
    int64_t T = s_row_len(&in[0]), rows = s_rows(&in[0]), K = in[1].shape[0];
    cl_int stream = !strcmp(mode, "stream"), has_zi = nin == 3, masked = 0;
    int64_t j0 = 0, n = T + K - 1;
    if (!strcmp(mode, "same"))
        j0 = (K - 1) / 2, n = T;
    else if (!strcmp(mode, "valid"))
        j0 = (T < K ? T : K) - 1, n = (T > K ? T - K : K - T) + 1;
    cl_mem hr, zi = mi[0], zf = stream ? mo[1] : mo[0], fin = mi[0];
    gq_status rc = has_zi ? s_state_in(c, &in[2], mi[2], &zi) : GQ_OK;
    double *h = NULL;
    if (rc || (rc = s_coefs(c, &in[1], mi[1], &h)) || !rows || !n) {
        free(h);
        return rc;
    }
    gq_cl_fir_t f = {mi[0],       mo[0],          zi,          zf,           in[0].dtype == GQ_F64,
                     (uint64_t)T, (uint64_t)rows, (uint64_t)K, (uint64_t)j0, (uint64_t)n,
                     stream,      has_zi};
    rc = s_fir_ols(c, in, &f, h, &fin, &masked);
    for (int64_t k = 0; k < K / 2 && !rc; k++) { /* reversed, as the CPU's direct sum takes them */
        double t = h[k];
        h[k] = h[K - 1 - k];
        h[K - 1 - k] = t;
    }
    if (!rc)
        rc = gq_cl_dsp_upload_acc(c, h, (size_t)K, &hr);
    free(h);
    if (rc)
        return rc;
    cl_ulong total = (cl_ulong)(rows * n), len = (cl_ulong)T, kk = (cl_ulong)K;
    cl_ulong cj0 = (cl_ulong)j0, cn = (cl_ulong)n;
    gq_cl_arg_t args[] = {GQ_CL_ARG(mi[0]),  GQ_CL_ARG(hr),    GQ_CL_ARG(mo[0]),  GQ_CL_ARG(total),
                          GQ_CL_ARG(len),    GQ_CL_ARG(kk),    GQ_CL_ARG(cj0),    GQ_CL_ARG(cn),
                          GQ_CL_ARG(stream), GQ_CL_ARG(zi),    GQ_CL_ARG(has_zi), GQ_CL_ARG(zf),
                          GQ_CL_ARG(fin),    GQ_CL_ARG(masked)};
    return gq_cl_dsp_launch(c, GQ_DK_FIR, in[0].dtype == GQ_F64, args, 14, 0, (size_t)total);
}

static gq_status s_sos(gq_cl_dsp_ctx_t *c, const gq_tdesc_t *in, cl_mem *mi, int nin,
                       const gq_tdesc_t *out, cl_mem *mo, int nout)
{
    (void)out;
    cl_int ns = (cl_int)in[1].shape[0], has_zi = nin == 3, has_zf = nout == 2;
    double *q;
    gq_status rc = s_coefs(c, &in[1], mi[1], &q);
    if (rc)
        return rc;
    for (int s = 0; s < ns; s++) {
        double *r = q + 6 * s, a0 = r[3];
        if (a0 == 0.0 || !isfinite(a0)) {
            gq_errf(c->err, c->errlen,
                    "%s: input 1 (sos) section %d has a0 = %g; a section needs a finite, "
                    "non-zero a0 (rows are b0 b1 b2 a0 a1 a2)",
                    c->op, s, a0);
            free(q);
            return GQ_EPARAM;
        }
        for (int i = 0; i < 6; i++)
            r[i] /= a0;
    }
    cl_mem cm, zi = mi[0], zf = has_zf ? mo[1] : mo[0];
    rc = gq_cl_dsp_upload_acc(c, q, (size_t)(6 * ns), &cm);
    free(q);
    if (!rc && has_zi)
        rc = s_state_in(c, &in[2], mi[2], &zi);
    if (rc)
        return rc;
    cl_ulong rows = (cl_ulong)s_rows(&in[0]), len = (cl_ulong)s_row_len(&in[0]);
    gq_cl_arg_t args[] = {GQ_CL_ARG(mi[0]), GQ_CL_ARG(mo[0]), GQ_CL_ARG(rows), GQ_CL_ARG(len),
                          GQ_CL_ARG(ns),    GQ_CL_ARG(cm),    GQ_CL_ARG(zi),   GQ_CL_ARG(has_zi),
                          GQ_CL_ARG(zf),    GQ_CL_ARG(has_zf)};
    return gq_cl_dsp_launch(c, GQ_DK_SOS, in[0].dtype == GQ_F64, args, 10, 0, (size_t)rows);
}

static gq_status s_lfilter(gq_cl_dsp_ctx_t *c, const gq_tdesc_t *in, cl_mem *mi, int nin,
                           const gq_tdesc_t *out, cl_mem *mo, int nout)
{
    (void)out;
    int64_t nb = in[1].shape[0], na = in[2].shape[0], n = nb > na ? nb : na;
    double *b, *av, *coef = calloc((size_t)(2 * n), sizeof *coef);
    gq_status rc = coef ? GQ_OK : GQ_ENOMEM;
    if (rc) {
        gq_errf(c->err, c->errlen, "%s: opencl: out of memory", c->op);
        return rc;
    }
    if ((rc = s_coefs(c, &in[1], mi[1], &b))) {
        free(coef);
        return rc;
    }
    if ((rc = s_coefs(c, &in[2], mi[2], &av))) {
        free(coef);
        free(b);
        return rc;
    }
    memcpy(coef, b, (size_t)nb * sizeof *coef);
    memcpy(coef + n, av, (size_t)na * sizeof *coef);
    free(b);
    free(av);
    double a0 = coef[n];
    if (a0 == 0.0 || !isfinite(a0)) {
        gq_errf(c->err, c->errlen,
                "%s: input 2 (a) has a[0] = %g; the filter is normalised by a[0], which must be "
                "finite and non-zero",
                c->op, a0);
        free(coef);
        return GQ_EPARAM;
    }
    cl_int fir = 1;
    for (int64_t i = 0; i < 2 * n; i++)
        coef[i] /= a0;
    for (int64_t i = 1; i < n; i++)
        fir = fir && coef[n + i] == 0.0;
    cl_mem cm, zi = mi[0], zf = nout == 2 ? mo[1] : mo[0];
    rc = gq_cl_dsp_upload_acc(c, coef, (size_t)(2 * n), &cm);
    free(coef);
    cl_int has_zi = nin == 4, has_zf = nout == 2, nc = (cl_int)n;
    if (!rc && has_zi)
        rc = s_state_in(c, &in[3], mi[3], &zi);
    if (rc)
        return rc;
    cl_ulong rows = (cl_ulong)s_rows(&in[0]), len = (cl_ulong)s_row_len(&in[0]);
    gq_cl_arg_t args[] = {GQ_CL_ARG(mi[0]),  GQ_CL_ARG(mo[0]), GQ_CL_ARG(rows),  GQ_CL_ARG(len),
                          GQ_CL_ARG(nc),     GQ_CL_ARG(cm),    GQ_CL_ARG(fir),   GQ_CL_ARG(zi),
                          GQ_CL_ARG(has_zi), GQ_CL_ARG(zf),    GQ_CL_ARG(has_zf)};
    return gq_cl_dsp_launch(c, GQ_DK_LFILTER, in[0].dtype == GQ_F64, args, 11, 0, (size_t)rows);
}

/* ---- resample (polyphase, one-shot) ---- */

typedef struct {
    int tag; /* 3 (cl_mel.c's keys are 1, 2) */
    int acc64;
    int64_t up, down, half_len, phase_taps;
    double beta;
} s_rs_key_t;

/* The CPU's filter and phase bank (gq_resample_design, gq_resample_bank) as gq_acc. */
static gq_status s_make_rs_bank(const void *params, gq_cl_table_src_t *src)
{
    const s_rs_key_t *k = params;
    gq_resample_plan_t p;
    memset(&p, 0, sizeof p);
    p.up = k->up, p.down = k->down, p.half_len = k->half_len, p.phase_taps = k->phase_taps;
    p.beta = k->beta;
    size_t L = (size_t)(2 * k->half_len + 1), n = (size_t)(k->up * k->phase_taps);
    double *h = malloc(L * sizeof *h), *bank = malloc(n * sizeof *bank);
    src->host[0] = bank;
    src->nbytes[0] = n * (k->acc64 ? sizeof(double) : sizeof(float));
    if (!h || !bank) {
        free(h);
        return GQ_ENOMEM;
    }
    gq_resample_design(&p, h);
    gq_resample_bank(&p, h, bank);
    free(h);
    if (!k->acc64)
        for (size_t i = 0; i < n; i++)
            ((float *)bank)[i] = (float)bank[i];
    return GQ_OK;
}

static gq_status s_resample(gq_cl_dsp_ctx_t *c, const gq_tdesc_t *in, cl_mem *mi, int nin,
                            const gq_tdesc_t *out, cl_mem *mo, int nout)
{
    (void)nin, (void)nout;
    gq_resample_plan_t p;
    gq_status rc = gq_resample_plan(c->a, &p, c->err, c->errlen);
    if (rc)
        return rc;
    cl_ulong len = (cl_ulong)s_row_len(&in[0]), rows = (cl_ulong)s_rows(&in[0]);
    cl_ulong ny = (cl_ulong)s_row_len(&out[0]), total = rows * ny;
    if (!total)
        return GQ_OK;
    s_rs_key_t k;
    memset(&k, 0, sizeof k);
    k.tag = 3, k.acc64 = gq_cl_fp64(c->cl);
    k.up = p.up, k.down = p.down, k.half_len = p.half_len, k.phase_taps = p.phase_taps;
    k.beta = p.beta;
    cl_mem bank[GQ_CL_TABLE_BUFS];
    if ((rc = gq_cl_dsp_table(c, &k, sizeof k, s_make_rs_bank, bank)))
        return rc;
    cl_ulong up = (cl_ulong)p.up, down = (cl_ulong)p.down, half = (cl_ulong)p.half_len;
    cl_ulong K = (cl_ulong)p.phase_taps;
    gq_cl_arg_t args[] = {GQ_CL_ARG(mi[0]), GQ_CL_ARG(bank[0]), GQ_CL_ARG(mo[0]), GQ_CL_ARG(len),
                          GQ_CL_ARG(ny),    GQ_CL_ARG(up),      GQ_CL_ARG(down),  GQ_CL_ARG(half),
                          GQ_CL_ARG(K),     GQ_CL_ARG(total)};
    rc = gq_cl_dsp_launch(c, GQ_DK_RESAMPLE, in[0].dtype == GQ_F64, args, 10, 0, (size_t)total);
    gq_cl_dsp_table_release(bank);
    return rc;
}

/* ---- the table ---- */

typedef gq_status (*s_run_fn)(gq_cl_dsp_ctx_t *c, const gq_tdesc_t *in, cl_mem *mi, int nin,
                              const gq_tdesc_t *out, cl_mem *mo, int nout);
typedef bool (*s_ok_fn)(const gq_cl_t *cl, const gq_args_t *a, const gq_tdesc_t *in, int nin);

static bool s_any(const gq_cl_t *cl, const gq_args_t *a, const gq_tdesc_t *in, int nin)
{
    (void)cl, (void)a, (void)in, (void)nin;
    return true;
}

/* Ops with an f64 state output (or a state input) need fp64. */
static bool s_ok_preemph(const gq_cl_t *cl, const gq_args_t *a, const gq_tdesc_t *in, int nin)
{
    (void)in;
    return gq_cl_fp64(cl) || (nin == 1 && !gq_args_bool(a, "stream"));
}

static bool s_ok_fir(const gq_cl_t *cl, const gq_args_t *a, const gq_tdesc_t *in, int nin)
{
    (void)in, (void)nin;
    return gq_cl_fp64(cl) || strcmp(gq_args_str(a, "mode"), "stream");
}

/* IIR filters: double only (a float recursion drifts from the reference), state in
 * registers up to the kernels' limits. */
static bool s_ok_sos(const gq_cl_t *cl, const gq_args_t *a, const gq_tdesc_t *in, int nin)
{
    (void)a, (void)nin;
    return gq_cl_fp64(cl) && (!in || (in[1].ndim == 2 && in[1].shape[0] <= S_SOS_MAX));
}

static bool s_ok_lfilter(const gq_cl_t *cl, const gq_args_t *a, const gq_tdesc_t *in, int nin)
{
    (void)a, (void)nin;
    if (!in)
        return gq_cl_fp64(cl);
    int64_t n = in[1].shape[0] > in[2].shape[0] ? in[1].shape[0] : in[2].shape[0];
    return gq_cl_fp64(cl) && n - 1 <= S_LF_MAX;
}

/* Polyphase only (libsoxr stays on the CPU), one-shot (streams run on the CPU). */
static bool s_ok_resample(const gq_cl_t *cl, const gq_args_t *a, const gq_tdesc_t *in, int nin)
{
    (void)cl, (void)in;
    gq_resample_plan_t p;
    char err[256];
    return nin == 1 && gq_resample_plan(a, &p, err, sizeof err) == GQ_OK &&
           p.engine == GQ_RESAMPLE_POLY && !p.stream;
}

static const struct {
    const char *name;
    s_ok_fn ok;
    s_run_fn run;
} s_ops[] = {
    {"dsp.gain", s_any, s_gain},
    {"dsp.normalize", s_any, s_normalize},
    {"dsp.window", s_any, s_window},
    {"dsp.frame", s_any, s_frame},
    {"dsp.overlap_add", s_any, s_ola},
    {"dsp.preemphasis", s_ok_preemph, s_preemph},
    {"dsp.fir", s_ok_fir, s_fir},
    {"dsp.sos", s_ok_sos, s_sos},
    {"dsp.lfilter", s_ok_lfilter, s_lfilter},
    {"dsp.resample", s_ok_resample, s_resample},
    {"dsp.mel", s_any, gq_cl_mel_run},
    {"dsp.logmel", s_any, gq_cl_mel_run},
    {"dsp.mfcc", s_any, gq_cl_mel_run},
};
#define S_NOPS ((int)(sizeof s_ops / sizeof s_ops[0]))

static int s_find(const char *name)
{
    for (int i = 0; i < S_NOPS; i++)
        if (!strcmp(s_ops[i].name, name))
            return i;
    return -1;
}

/* Signals: f32, or f64 with fp64. The spectral ops take complex inputs too (cl_fft.c). */
static bool s_supports(const gq_cl_t *cl, const gq_args_t *a, const gq_tdesc_t *in, int nin)
{
    int i = s_find(a->op->name);
    if (i < 0)
        return gq_cl_fft_supports(cl, a, in, nin);
    if (!in) /* the op at all: the IIR filters need fp64 */
        return strcmp(s_ops[i].name, "dsp.sos") && strcmp(s_ops[i].name, "dsp.lfilter")
                   ? true
                   : gq_cl_fp64(cl);
    if (nin < 1 || !(in[0].dtype == GQ_F32 || (in[0].dtype == GQ_F64 && gq_cl_fp64(cl))))
        return false;
    return s_ops[i].ok(cl, a, in, nin);
}

static gq_status s_run(gq_cl_t *cl, gq_cl_stream_t *st, int fam, const gq_args_t *a,
                       const gq_tdesc_t *in, cl_mem *mi, int nin, const gq_tdesc_t *out, cl_mem *mo,
                       int nout, char *err, size_t errlen)
{
    gq_cl_dsp_ctx_t c = {cl, st, fam, a, a->op->name, err, errlen};
    int i = s_find(a->op->name);
    if (i < 0)
        return gq_cl_fft_run(&c, in, mi, nin, out, mo, nout);
    return s_ops[i].run(&c, in, mi, nin, out, mo, nout);
}

const gq_cl_family_t gq_cl_dsp_family = {
    .prefix = "dsp.",
    .supports = s_supports,
    .run = s_run,
    .kernel_name = s_kernel_name,
    .destroy_state = gq_cl_fft_destroy_state,
};
