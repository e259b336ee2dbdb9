/* CPU kernels of dsp.fft, dsp.ifft, dsp.rfft and dsp.irfft: numpy.fft semantics (crop or
 * zero-pad to n, norm backward|ortho|forward) on FFTW plans from the cache in cpu_fft.h,
 * one transform per row of the last axis, in the input's precision. */
#include "cpu_dsp_util.h"
#include "util.h"
#include <math.h>
#include <string.h>

/* The factor numpy applies for norm on a forward or inverse transform of n points. */
static double s_scale(const gq_args_t *a, bool inverse, int64_t n)
{
    const char *norm = gq_args_str(a, "norm");
    if (norm && !strcmp(norm, "ortho"))
        return 1.0 / sqrt((double)n);
    bool forward_norm = norm && !strcmp(norm, "forward");
    return forward_norm != inverse ? 1.0 / (double)n : 1.0;
}

static void s_scale_rows(void *y, int64_t count, bool f64, double sc)
{
    if (sc == 1.0)
        return;
    if (f64) {
        double *d = y;
        for (int64_t i = 0; i < count; i++)
            d[i] *= sc;
    } else {
        float *d = y;
        const float s = (float)sc;
        for (int64_t i = 0; i < count; i++)
            d[i] *= s;
    }
}

/* Rows of the last axis: the product of the leading dims (numel / len fails for len 0). */
static int64_t s_rows(const gq_tdesc_t *d)
{
    int64_t r = 1;
    for (int i = 0; i < d->ndim - 1; i++)
        r *= d->shape[i];
    return r;
}

/* Copies min(m, n) values of a row into an n-value scratch row of complex (cplx_out) or real
 * values, promoting real to complex, and zeros the rest. */
static void s_stage_row(void *dst, int64_t n, bool cplx_out, const void *src, int64_t m,
                        bool cplx_in, bool f64)
{
    int64_t c = m < n ? m : n, wo = cplx_out ? 2 : 1, wi = cplx_in ? 2 : 1;
    size_t rs = f64 ? sizeof(double) : sizeof(float);
    if (wo == wi) {
        memcpy(dst, src, (size_t)(c * wo) * rs);
    } else if (f64) {
        const double *s = src;
        double *d = dst;
        for (int64_t i = 0; i < c; i++)
            d[2 * i] = s[i], d[2 * i + 1] = 0.0;
    } else {
        const float *s = src;
        float *d = dst;
        for (int64_t i = 0; i < c; i++)
            d[2 * i] = s[i], d[2 * i + 1] = 0.0f;
    }
    memset((char *)dst + (size_t)(c * wo) * rs, 0, (size_t)((n - c) * wo) * rs);
}

static gq_status s_oom(const gq_args_t *a, int64_t n, char *err, size_t errlen)
{
    gq_errf(err, errlen, "%s: cpu: out of memory planning a transform of %lld points", a->op->name,
            (long long)n);
    return GQ_ENOMEM;
}

gq_status gq_cpu_dsp_fft(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out, int nout,
                         char *err, size_t errlen)
{
    (void)nin, (void)nout;
    const gq_tdesc_t *d = &in[0].desc;
    bool inverse = !strcmp(a->op->name, "dsp.ifft");
    bool cplx = d->dtype == GQ_C64 || d->dtype == GQ_C128;
    bool f64 = d->dtype == GQ_F64 || d->dtype == GQ_C128;
    int64_t m = d->shape[d->ndim - 1], n = out[0].desc.shape[out[0].desc.ndim - 1];
    int64_t rows = s_rows(d);
    if (rows == 0)
        return GQ_OK;
    size_t rs = f64 ? sizeof(double) : sizeof(float);
    const gq_fft_plan_t *plan =
        gq_fft_plan(inverse ? GQ_FFT_C2C_BWD : GQ_FFT_C2C_FWD, (size_t)n, f64);
    bool direct = cplx && m == n;
    void *scratch = direct ? NULL : gq_fft_alloc((size_t)n * 2 * rs);
    if (!plan || (!direct && !scratch)) {
        gq_fft_free(scratch);
        return s_oom(a, n, err, errlen);
    }
    double sc = s_scale(a, inverse, n);
    const char *x = in[0].data;
    char *y = out[0].data;
    size_t in_row = (size_t)m * (cplx ? 2 : 1) * rs, out_row = (size_t)n * 2 * rs;
    for (int64_t r = 0; r < rows; r++) {
        const char *xr = x + (size_t)r * in_row;
        char *yr = y + (size_t)r * out_row;
        if (direct) {
            gq_fft_exec(plan, xr, yr);
        } else {
            s_stage_row(scratch, n, true, xr, m, cplx, f64);
            gq_fft_exec(plan, scratch, yr);
        }
        s_scale_rows(yr, 2 * n, f64, sc);
    }
    gq_fft_free(scratch);
    return GQ_OK;
}

gq_status gq_cpu_dsp_rfft(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out,
                          int nout, char *err, size_t errlen)
{
    (void)nin, (void)nout;
    const gq_tdesc_t *d = &in[0].desc;
    bool f64 = d->dtype == GQ_F64;
    int64_t m = d->shape[d->ndim - 1], nb = out[0].desc.shape[out[0].desc.ndim - 1];
    int64_t n = gq_args_int(a, "n") ? gq_args_int(a, "n") : m;
    int64_t rows = s_rows(d);
    if (rows == 0)
        return GQ_OK;
    size_t rs = f64 ? sizeof(double) : sizeof(float);
    const gq_fft_plan_t *plan = gq_fft_plan(GQ_FFT_R2C, (size_t)n, f64);
    bool direct = m == n;
    void *scratch = direct ? NULL : gq_fft_alloc((size_t)n * rs);
    if (!plan || (!direct && !scratch)) {
        gq_fft_free(scratch);
        return s_oom(a, n, err, errlen);
    }
    double sc = s_scale(a, false, n);
    for (int64_t r = 0; r < rows; r++) {
        const char *xr = (const char *)in[0].data + (size_t)(r * m) * rs;
        char *yr = (char *)out[0].data + (size_t)(r * nb) * 2 * rs;
        if (!direct) {
            s_stage_row(scratch, n, false, xr, m, false, f64);
            xr = scratch;
        }
        gq_fft_exec(plan, xr, yr);
        s_scale_rows(yr, 2 * nb, f64, sc);
    }
    gq_fft_free(scratch);
    return GQ_OK;
}

/* The input row is always staged: cropped or zero-padded to n/2+1 bins, and with the
 * imaginary parts of the DC bin and (even n) the Nyquist bin zeroed, which numpy.fft.irfft
 * ignores and FFTW's c2r would not. */
gq_status gq_cpu_dsp_irfft(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out,
                           int nout, char *err, size_t errlen)
{
    (void)nin, (void)nout;
    const gq_tdesc_t *d = &in[0].desc;
    bool cplx = d->dtype == GQ_C64 || d->dtype == GQ_C128;
    bool f64 = d->dtype == GQ_F64 || d->dtype == GQ_C128;
    int64_t m = d->shape[d->ndim - 1], n = out[0].desc.shape[out[0].desc.ndim - 1];
    int64_t nb = n / 2 + 1, rows = s_rows(d);
    if (rows == 0)
        return GQ_OK;
    size_t rs = f64 ? sizeof(double) : sizeof(float);
    const gq_fft_plan_t *plan = gq_fft_plan(GQ_FFT_C2R, (size_t)n, f64);
    void *scratch = gq_fft_alloc((size_t)nb * 2 * rs);
    if (!plan || !scratch) {
        gq_fft_free(scratch);
        return s_oom(a, n, err, errlen);
    }
    double sc = s_scale(a, true, n);
    for (int64_t r = 0; r < rows; r++) {
        const char *xr = (const char *)in[0].data + (size_t)(r * m) * (cplx ? 2 : 1) * rs;
        char *yr = (char *)out[0].data + (size_t)(r * n) * rs;
        s_stage_row(scratch, nb, true, xr, m, cplx, f64);
        if (f64) {
            ((double *)scratch)[1] = 0.0;
            if (n % 2 == 0)
                ((double *)scratch)[2 * (nb - 1) + 1] = 0.0;
        } else {
            ((float *)scratch)[1] = 0.0f;
            if (n % 2 == 0)
                ((float *)scratch)[2 * (nb - 1) + 1] = 0.0f;
        }
        gq_fft_exec(plan, scratch, yr);
        s_scale_rows(yr, n, f64, sc);
    }
    gq_fft_free(scratch);
    return GQ_OK;
}
