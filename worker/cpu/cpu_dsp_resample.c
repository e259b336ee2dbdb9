/* dsp.resample on the CPU: the polyphase path (scipy.signal.resample_poly's filter, output
 * length and alignment, computed in double, streaming with f64 state) and the libsoxr
 * path (librosa.resample's soxr_* qualities). Geometry: common/ops_dsp_filter.h. */
#include "cpu_dsp_filter.h"
#include "cpu_dsp_util.h"
#include "cpu_fft.h"
#include "ops_dsp_filter.h"
#include "util.h"
#include <math.h>
#include <soxr.h>
#include <string.h>

/* Input samples handed to libsoxr per call: bounded buffers inside libsoxr (one call with a
 * whole long signal is slow, as python-soxr notes). */
#define S_SOXR_CHUNK 65536

/* scipy.signal.firwin(2 * half_len + 1, 1 / max(up, down), window=('kaiser', beta)) * up:
 * a windowed sinc scaled to unit DC gain, then by up. */
void gq_resample_design(const gq_resample_plan_t *p, double *h)
{
    int64_t L = 2 * p->half_len + 1;
    if (p->half_len == 0) {
        h[0] = (double)p->up;
        return;
    }
    double fc = 1.0 / (double)(p->up > p->down ? p->up : p->down), sum = 0.0;
    gq_dsp_window_fill(GQ_WIN_KAISER, p->beta, false, L, h); /* the symmetric Kaiser window */
    for (int64_t n = 0; n < L; n++) {
        double m = (double)(n - p->half_len), s = fc * m;
        double sinc = s == 0.0 ? 1.0 : sin(M_PI * s) / (M_PI * s);
        h[n] *= fc * sinc;
        sum += h[n];
    }
    for (int64_t n = 0; n < L; n++)
        h[n] = h[n] / sum * (double)p->up;
}

/* Output m of the one-pass signal is sum_k h[k] * xup[m * down + half_len - k], xup the
 * input with up - 1 zeros after each sample. With t = m * down + half_len, phase
 * ph = t % up and n0 = t / up it is sum_j h[ph + j * up] * x[n0 - j]: the bank stores
 * each phase's taps reversed, so an output is one dot product with x[n0 - K + 1 .. n0]. */
void gq_resample_bank(const gq_resample_plan_t *p, const double *h, double *bank)
{
    int64_t L = 2 * p->half_len + 1, K = p->phase_taps;
    for (int64_t ph = 0; ph < p->up; ph++)
        for (int64_t j = 0; j < K; j++) {
            int64_t k = ph + j * p->up;
            bank[ph * K + (K - 1 - j)] = k < L ? h[k] : 0.0;
        }
}

/* Outputs [m0, m1) from wb, which holds input samples pos - K + 1 .. on. */
static void s_poly_run(const gq_resample_plan_t *p, const double *bank, const double *wb,
                       int64_t m0, int64_t m1, double *y)
{
    int64_t K = p->phase_taps, up = p->up;
    int64_t t = m0 * p->down + p->half_len, n0 = t / up, ph = t % up;
    int64_t dq = p->down / up, dr = p->down % up;
    for (int64_t m = m0; m < m1; m++) {
        y[m - m0] = gq_dsp_dot(bank + ph * K, wb + (n0 - p->pos), K);
        n0 += dq;
        ph += dr;
        if (ph >= up)
            ph -= up, n0++;
    }
}

static gq_status s_poly(const gq_args_t *a, const gq_resample_plan_t *p, const gq_view_t *in,
                        int nin, gq_view_t *out, int nout, char *err, size_t errlen)
{
    const char *op = a->op->name;
    gq_dtype_t dt = in[0].desc.dtype;
    int64_t T = gq_dsp_row_len(&in[0].desc), rows = gq_dsp_rows(&in[0].desc);
    int64_t K = p->phase_taps, L = 2 * p->half_len + 1, N = p->pos + T;
    int64_t m0 = gq_resample_ready(p, p->pos);
    int64_t m1 = p->final ? gq_resample_total(p, N) : gq_resample_ready(p, N);
    int64_t ny = m1 - m0, zpad = p->half_len / p->up + 2, sl = gq_resample_state_len(p);
    if (nin == 2)
        for (int64_t r = 0; r < rows; r++) {
            double at = ((const double *)in[1].data)[r * sl + sl - 1];
            if (at != (double)p->pos) {
                gq_errf(err, errlen,
                        "%s: param 'pos' = %lld but input 1 (state) row %lld was left at "
                        "position %.17g (pass the previous chunk's state and pos = the samples "
                        "before this chunk)",
                        op, (long long)p->pos, (long long)r, at);
                return GQ_EPARAM;
            }
        }
    gq_status rc = GQ_ENOMEM;
    double *h = gq_dsp_scratch(op, L, err, errlen);
    double *bank = gq_dsp_scratch(op, p->up * K, err, errlen);
    double *wb = gq_dsp_scratch(op, K - 1 + T + zpad, err, errlen);
    double *y = gq_dsp_scratch(op, ny, err, errlen);
    if (!h || !bank || !wb || !y)
        goto done;
    gq_resample_design(p, h);
    gq_resample_bank(p, h, bank);
    for (int64_t r = 0; r < rows; r++) {
        if (nin == 2)
            memcpy(wb, (const double *)in[1].data + r * sl, (size_t)(K - 1) * sizeof(double));
        else
            memset(wb, 0, (size_t)(K - 1) * sizeof(double));
        gq_dsp_load(in[0].data, dt, r * T, T, wb + K - 1);
        memset(wb + K - 1 + T, 0, (size_t)zpad * sizeof(double));
        s_poly_run(p, bank, wb, m0, m1, y);
        gq_dsp_store(y, ny, out[0].data, dt, r * ny);
        if (nout == 2) {
            double *st = (double *)out[1].data + r * sl;
            memcpy(st, wb + T, (size_t)(K - 1) * sizeof(double));
            st[K - 1] = (double)N;
        }
    }
    rc = GQ_OK;
done:
    gq_fft_free(y);
    gq_fft_free(wb);
    gq_fft_free(bank);
    gq_fft_free(h);
    return rc;
}

/* One row through libsoxr: fed in chunks, flushed, cut or zero-padded to ny outputs. */
static gq_status s_soxr_row(soxr_t s, const char *in, size_t es, int64_t T, char *out, int64_t ny)
{
    size_t idone = 0, odone = 0;
    int64_t ti = 0, to = 0;
    while (ti < T && to < ny) {
        size_t il = (size_t)(T - ti < S_SOXR_CHUNK ? T - ti : S_SOXR_CHUNK);
        if (soxr_process(s, in + (size_t)ti * es, il, &idone, out + (size_t)to * es,
                         (size_t)(ny - to), &odone))
            return GQ_EBACKEND;
        ti += (int64_t)idone;
        to += (int64_t)odone;
        if (!idone && !odone)
            break;
    }
    while (to < ny) {
        if (soxr_process(s, NULL, 0, &idone, out + (size_t)to * es, (size_t)(ny - to), &odone))
            return GQ_EBACKEND;
        if (!odone)
            break;
        to += (int64_t)odone;
    }
    memset(out + (size_t)to * es, 0, (size_t)(ny - to) * es);
    return soxr_clear(s) ? GQ_EBACKEND : GQ_OK;
}

static gq_status s_soxr(const gq_args_t *a, const gq_resample_plan_t *p, const gq_view_t *in,
                        gq_view_t *out, char *err, size_t errlen)
{
    static const unsigned long recipes[] = {SOXR_QQ, SOXR_LQ, SOXR_MQ, SOXR_HQ, SOXR_VHQ};
    const char *op = a->op->name;
    gq_dtype_t dt = in[0].desc.dtype;
    int64_t T = gq_dsp_row_len(&in[0].desc), rows = gq_dsp_rows(&in[0].desc);
    int64_t ny = gq_dsp_row_len(&out[0].desc);
    size_t es = gq_dtype_size(dt);
    if (!rows || !ny)
        return GQ_OK;
    soxr_datatype_t st = dt == GQ_F32 ? SOXR_FLOAT32_I : SOXR_FLOAT64_I;
    soxr_io_spec_t io = soxr_io_spec(st, st);
    soxr_quality_spec_t q = soxr_quality_spec(recipes[p->soxr_quality], 0);
    soxr_runtime_spec_t rt = soxr_runtime_spec(1);
    soxr_error_t e = NULL;
    soxr_t s = soxr_create(p->in_rate, p->out_rate, 1, &e, &io, &q, &rt);
    if (!s || e) {
        gq_errf(err, errlen, "%s: libsoxr cannot resample %g -> %g Hz: %s", op, p->in_rate,
                p->out_rate, soxr_strerror(e));
        soxr_delete(s);
        return GQ_EBACKEND;
    }
    gq_status rc = GQ_OK;
    for (int64_t r = 0; r < rows && rc == GQ_OK; r++) {
        const char *x = (const char *)in[0].data + (size_t)(r * T) * es;
        char *y = (char *)out[0].data + (size_t)(r * ny) * es;
        /* libsoxr filters by FFT blocks, which would smear one NaN over a whole block: a
         * row holding NaN or Inf is answered all NaN. */
        if (!gq_dsp_all_finite(in[0].data, dt, r * T, T)) {
            for (int64_t i = 0; i < ny; i++) {
                if (dt == GQ_F32)
                    ((float *)y)[i] = NAN;
                else
                    ((double *)y)[i] = NAN;
            }
            continue;
        }
        rc = s_soxr_row(s, x, es, T, y, ny);
        if (rc)
            gq_errf(err, errlen, "%s: libsoxr failed on row %lld: %s", op, (long long)r,
                    soxr_strerror(soxr_error(s)));
    }
    soxr_delete(s);
    return rc;
}

gq_status gq_cpu_dsp_resample(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out,
                              int nout, char *err, size_t errlen)
{
    gq_resample_plan_t p;
    gq_status rc = gq_resample_plan(a, &p, err, errlen);
    if (rc)
        return rc;
    if (p.engine == GQ_RESAMPLE_SOXR)
        return s_soxr(a, &p, in, out, err, errlen);
    return s_poly(a, &p, in, nin, out, nout, err, errlen);
}
