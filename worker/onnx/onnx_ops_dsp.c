/* ONNX signal ops (opset 17): DFT, STFT, the Hann/Hamming/Blackman windows and
 * MelWeightMatrix — what a model needs to compute its own audio features. The transforms
 * run on FFTW in double precision (the plan cache the DSP ops share, cpu/cpu_fft.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_fft.h"
#include "onnx_int.h"
#include "util.h"

/* A scalar integer input (or def when omitted). */
static gq_status s_scalar_int(gq_onnx_val_t *const *in, int nin, int i, const char *what,
                              int64_t def, int64_t *v, char *err, size_t errlen)
{
    int n;
    *v = def;
    if (i >= nin || !in[i])
        return GQ_OK;
    gq_status rc = gq_onnx_ints(in[i], what, v, 1, &n, err, errlen);
    if (!rc && n != 1) {
        gq_errf(err, errlen, "%s must hold one value", what);
        rc = GQ_EPARAM;
    }
    return rc;
}

/* The longest transform a node may ask for (dft_length, frame_length): FFTW plans it once per
 * process, and a measured plan of an absurd length would hold the worker for minutes. */
#define S_MAX_LEN ((int64_t)1 << 24)

/* One transform length's FFTW plan (f64: the sums stay exact to float precision, as the
 * reference's are) and its staging arrays. */
typedef struct {
    const gq_fft_plan_t *plan;
    int64_t len;
    bool r2c; /* a real forward transform: half the work, the other half by symmetry */
    double *in, *out;
} s_fft_t;

static gq_status s_fft_open(s_fft_t *f, int64_t len, bool r2c, bool inverse, char *err,
                            size_t errlen)
{
    *f = (s_fft_t){.len = len, .r2c = r2c};
    if (len < 1 || len > S_MAX_LEN) {
        gq_errf(err, errlen, "transform length %lld outside 1..%lld", (long long)len,
                (long long)S_MAX_LEN);
        return GQ_EPARAM;
    }
    gq_fft_kind_t kind = r2c ? GQ_FFT_R2C : inverse ? GQ_FFT_C2C_BWD : GQ_FFT_C2C_FWD;
    f->plan = gq_fft_plan(kind, (size_t)len, true);
    f->in = gq_fft_alloc((size_t)(2 * len + 2) * sizeof *f->in);
    f->out = gq_fft_alloc((size_t)(2 * len + 2) * sizeof *f->out);
    if (!f->plan || !f->in || !f->out) {
        gq_fft_free(f->in);
        gq_fft_free(f->out);
        gq_errf(err, errlen, "out of memory for a %lld-point transform", (long long)len);
        return GQ_ENOMEM;
    }
    return GQ_OK;
}

static void s_fft_close(s_fft_t *f)
{
    gq_fft_free(f->in);
    gq_fft_free(f->out);
}

/* y[0..nout) (complex, interleaved, ys complex elements apart) = the DFT of x[0..n)
 * (complex, stride xs complex elements apart; imaginary parts absent when real) zero-padded
 * or cut to the plan's length, inverse scaled by 1/len. */
static void s_dft1(const s_fft_t *f, const float *x, int64_t xs, int64_t n, bool real, bool inverse,
                   int64_t nout, float *y, int64_t ys)
{
    int64_t len = f->len, m = n < len ? n : len, xc = real ? 1 : 2;
    if (f->r2c) {
        for (int64_t t = 0; t < len; t++)
            f->in[t] = t < m ? x[t * xs] : 0.0;
    } else {
        for (int64_t t = 0; t < len; t++) {
            f->in[2 * t] = t < m ? x[t * xs * xc] : 0.0;
            f->in[2 * t + 1] = t < m && !real ? x[t * xs * 2 + 1] : 0.0;
        }
    }
    gq_fft_exec(f->plan, f->in, f->out);
    double scale = inverse ? 1.0 / (double)len : 1.0;
    for (int64_t k = 0; k < nout; k++) {
        /* a real signal's bins past len / 2 are the conjugates of those below */
        bool mirror = f->r2c && k > len / 2;
        int64_t j = mirror ? len - k : k;
        y[k * ys * 2] = (float)(f->out[2 * j] * scale);
        y[k * ys * 2 + 1] = (float)((mirror ? -f->out[2 * j + 1] : f->out[2 * j + 1]) * scale);
    }
}

static gq_status s_dft(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                       gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 1, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    int64_t axis, len;
    if (x->dtype != GQ_F32 || x->ndim < 3 ||
        (x->shape[x->ndim - 1] != 1 && x->shape[x->ndim - 1] != 2)) {
        char b[96];
        gq_errf(err, errlen, "input is %s, want f32 [batch, ..., 1 or 2]",
                gq_tdesc_str(x, b, sizeof b));
        return GQ_EDTYPE;
    }
    if (opset >= 20) { /* the axis became an input, counted over every dim, default -2 */
        if ((rc = s_scalar_int(in, nin, 2, "axis", -2, &axis, err, errlen)))
            return rc;
        if (axis < -x->ndim || axis > x->ndim - 2 || axis == -1) {
            gq_errf(err, errlen, "axis %lld outside [-%d, -2] and [0, %d]", (long long)axis,
                    x->ndim, x->ndim - 2);
            return GQ_EPARAM;
        }
        axis = axis < 0 ? axis + x->ndim : axis;
    } else {
        if ((rc = gq_onnx_axis(gq_onnx_attr_int(n, "axis", 1), x->ndim - 1, &axis, err, errlen)))
            return rc;
        if (axis == 0) {
            gq_errf(err, errlen, "axis 0 is the batch axis");
            return GQ_EPARAM;
        }
    }
    if ((rc = s_scalar_int(in, nin, 1, "dft_length", x->shape[axis], &len, err, errlen)))
        return rc;
    bool inverse = gq_onnx_attr_int(n, "inverse", 0), onesided = gq_onnx_attr_int(n, "onesided", 0);
    bool real = x->shape[x->ndim - 1] == 1;
    if (len < 1 || (inverse && onesided)) {
        gq_errf(err, errlen, "dft_length %lld, inverse %d with onesided %d", (long long)len,
                inverse, onesided);
        return GQ_EPARAM;
    }
    gq_tdesc_t od = *x;
    od.shape[axis] = onesided ? len / 2 + 1 : len;
    od.shape[x->ndim - 1] = 2;
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    s_fft_t f;
    if ((rc = s_fft_open(&f, len, real && !inverse, inverse, err, errlen)))
        return rc;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < x->ndim - 1; d++)
        if (d < axis)
            outer *= x->shape[d];
        else if (d > axis)
            inner *= x->shape[d];
    int64_t xc = real ? 1 : 2;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t q = 0; q < inner; q++)
            s_dft1(&f, (const float *)in[0]->data + (o * x->shape[axis] * inner + q) * xc, inner,
                   x->shape[axis], real, inverse, od.shape[axis],
                   (float *)out->data + (o * od.shape[axis] * inner + q) * 2, inner);
    s_fft_close(&f);
    return GQ_OK;
}

static gq_status s_stft(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                        gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    const gq_onnx_val_t *win = nin > 2 ? in[2] : NULL;
    int64_t step, flen;
    if (x->dtype != GQ_F32 || x->ndim != 3 || (x->shape[2] != 1 && x->shape[2] != 2) ||
        (win && (win->desc.dtype != GQ_F32 || win->desc.ndim != 1))) {
        gq_errf(err, errlen, "want f32 signal [batch, length, 1 or 2] and an f32 window");
        return GQ_EDTYPE;
    }
    if ((rc = s_scalar_int(in, nin, 1, "frame_step", 0, &step, err, errlen)) ||
        (rc = s_scalar_int(in, nin, 3, "frame_length", win ? win->desc.shape[0] : 0, &flen, err,
                           errlen)))
        return rc;
    if (step < 1 || flen < 1 || flen > x->shape[1] || (win && win->desc.shape[0] != flen)) {
        gq_errf(err, errlen, "frame_step %lld, frame_length %lld, window %lld, signal %lld",
                (long long)step, (long long)flen, (long long)(win ? win->desc.shape[0] : -1),
                (long long)x->shape[1]);
        return GQ_EPARAM;
    }
    bool onesided = gq_onnx_attr_int(n, "onesided", 1), real = x->shape[2] == 1;
    int64_t frames = (x->shape[1] - flen) / step + 1, bins = onesided ? flen / 2 + 1 : flen;
    gq_tdesc_t od = {.dtype = GQ_F32, .ndim = 4, .shape = {x->shape[0], frames, bins, 2}};
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    int64_t xc = real ? 1 : 2;
    s_fft_t f;
    if ((rc = s_fft_open(&f, flen, real, false, err, errlen)))
        return rc;
    float *frame = malloc((size_t)(flen * xc + 1) * sizeof *frame);
    if (!frame) {
        s_fft_close(&f);
        gq_errf(err, errlen, "out of memory");
        return GQ_ENOMEM;
    }
    const float *X = in[0]->data, *w = win ? win->data : NULL;
    for (int64_t b = 0; b < x->shape[0]; b++)
        for (int64_t fi = 0; fi < frames; fi++) {
            const float *src = X + (b * x->shape[1] + fi * step) * xc;
            for (int64_t t = 0; t < flen * xc; t++)
                frame[t] = src[t] * (w ? w[t / xc] : 1.0f);
            s_dft1(&f, frame, 1, flen, real, false, bins,
                   (float *)out->data + (b * frames + fi) * bins * 2, 1);
        }
    s_fft_close(&f);
    free(frame);
    return GQ_OK;
}

/* ---- windows and the mel matrix ---- */

typedef enum { S_HANN, S_HAMMING, S_BLACKMAN } s_win_t;

static gq_status s_window(s_win_t kind, const Onnx__NodeProto *n, gq_onnx_val_t *const *in, int nin,
                          gq_onnx_val_t *out, char *err, size_t errlen)
{
    int64_t size;
    gq_status rc = gq_onnx_need(in, nin, 1, err, errlen);
    if (rc || (rc = s_scalar_int(in, nin, 0, "size", 0, &size, err, errlen)))
        return rc;
    gq_dtype_t dt = gq_onnx_dtype((int32_t)gq_onnx_attr_int(n, "output_datatype", 1));
    if (size < 0 || !gq_onnx_dtype_real(dt)) {
        gq_errf(err, errlen, "size %lld / output_datatype not supported", (long long)size);
        return GQ_EPARAM;
    }
    gq_tdesc_t od = {.dtype = dt, .ndim = 1, .shape = {size}};
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    double N = gq_onnx_attr_int(n, "periodic", 1) ? (double)size : (double)size - 1;
    for (int64_t i = 0; i < size; i++) {
        double a = 2 * M_PI * (double)i / N, v;
        if (kind == S_HANN)
            v = 0.5 - 0.5 * cos(a);
        else if (kind == S_HAMMING)
            v = 25.0 / 46.0 - 21.0 / 46.0 * cos(a);
        else
            v = 0.42 - 0.5 * cos(a) + 0.08 * cos(2 * a);
        gq_onnx_setd(out->data, dt, i, N > 0 ? v : 1.0);
    }
    return GQ_OK;
}

#define S_WIN_KERNEL(NAME, KIND)                                                                   \
    static gq_status NAME(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,  \
                          gq_onnx_val_t *out, int nout, char *err, size_t errlen)                  \
    {                                                                                              \
        (void)opset, (void)nout;                                                                   \
        return s_window(KIND, n, in, nin, out, err, errlen);                                       \
    }
S_WIN_KERNEL(s_hann, S_HANN)
S_WIN_KERNEL(s_hamming, S_HAMMING)
S_WIN_KERNEL(s_blackman, S_BLACKMAN)

static double s_hz_to_mel(double hz)
{
    return 2595.0 * log10(1.0 + hz / 700.0);
}

/* MelWeightMatrix as ONNX's reference computes it: mel points evenly spaced over
 * num_mel_bins + 2 steps, mapped to integer DFT bins, triangles between them. */
static gq_status s_mel_matrix(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                              int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    int64_t mels, dftlen, sr;
    gq_status rc = gq_onnx_need(in, nin, 5, err, errlen);
    if (rc || (rc = s_scalar_int(in, nin, 0, "num_mel_bins", 0, &mels, err, errlen)) ||
        (rc = s_scalar_int(in, nin, 1, "dft_length", 0, &dftlen, err, errlen)) ||
        (rc = s_scalar_int(in, nin, 2, "sample_rate", 0, &sr, err, errlen)))
        return rc;
    if (gq_tdesc_numel(&in[3]->desc) != 1 || gq_tdesc_numel(&in[4]->desc) != 1 ||
        !gq_onnx_dtype_real(in[3]->desc.dtype) || !gq_onnx_dtype_real(in[4]->desc.dtype)) {
        gq_errf(err, errlen, "lower/upper_edge_hertz must be scalars");
        return GQ_ESHAPE;
    }
    double lo = gq_onnx_getd(in[3]->data, in[3]->desc.dtype, 0),
           hi = gq_onnx_getd(in[4]->data, in[4]->desc.dtype, 0);
    gq_dtype_t dt = gq_onnx_dtype((int32_t)gq_onnx_attr_int(n, "output_datatype", 1));
    if (mels < 1 || mels > 100000 || dftlen < 1 || sr < 1 || !gq_onnx_dtype_real(dt)) {
        gq_errf(err, errlen, "num_mel_bins %lld, dft_length %lld, sample_rate %lld",
                (long long)mels, (long long)dftlen, (long long)sr);
        return GQ_EPARAM;
    }
    int64_t nbins = dftlen / 2 + 1;
    gq_tdesc_t od = {.dtype = dt, .ndim = 2, .shape = {nbins, mels}};
    int64_t *pt = malloc((size_t)(mels + 2) * sizeof *pt);
    if (!pt || (rc = gq_onnx_out(out, &od, err, errlen))) {
        free(pt);
        if (!pt)
            gq_errf(err, errlen, "out of memory");
        return pt ? rc : GQ_ENOMEM;
    }
    double mlo = s_hz_to_mel(lo), step = (s_hz_to_mel(hi) - mlo) / (double)(mels + 2);
    for (int64_t i = 0; i < mels + 2; i++) {
        double hz = 700.0 * (pow(10.0, ((double)i * step + mlo) / 2595.0) - 1.0);
        pt[i] = (int64_t)floor((double)(dftlen + 1) * hz / (double)sr);
    }
    memset(out->data, 0, out->nbytes);
    for (int64_t m = 0; m < mels; m++) {
        int64_t l = pt[m], c = pt[m + 1], h = pt[m + 2];
        for (int64_t j = l; j <= c; j++)
            if (j >= 0 && j < nbins)
                gq_onnx_setd(out->data, dt, j * mels + m,
                             c == l ? 1.0 : (double)(j - l) / (double)(c - l));
        for (int64_t j = c; j < h; j++)
            if (j >= 0 && j < nbins)
                gq_onnx_setd(out->data, dt, j * mels + m, (double)(h - j) / (double)(h - c));
    }
    free(pt);
    return GQ_OK;
}

const gq_onnx_kernel_t gq_onnx_kernels_dsp[] = {
    {"DFT", 17, s_dft},
    {"STFT", 17, s_stft},
    {"HannWindow", 17, s_hann},
    {"HammingWindow", 17, s_hamming},
    {"BlackmanWindow", 17, s_blackman},
    {"MelWeightMatrix", 17, s_mel_matrix},
};
const int gq_onnx_kernels_dsp_count = GQ_ONNX_COUNT(gq_onnx_kernels_dsp);
