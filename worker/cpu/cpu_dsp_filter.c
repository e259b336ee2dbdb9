/* CPU kernels of the dsp.* filter ops: fir (direct and FFT overlap-save), sos, lfilter,
 * preemphasis; the family's kernel table and row helpers. Every filter runs in double
 * whatever the signal's dtype; states are f64 (common/ops_dsp_filter.c). */
#include "cpu_dsp_filter.h"
#include "cpu_fft.h"
#include "util.h"
#include <math.h>
#include <string.h>

/* dsp.fir method=auto takes the FFT path from this many taps on (and signals at least this
 * long): tests/bench/bench_resample measures the crossover (docs/dsp-filter.md). */
#define S_FIR_FFT_MIN_TAPS 32
/* Largest overlap-save transform. */
#define S_OLS_MAX_N ((int64_t)1 << 22)

int64_t gq_dsp_row_len(const gq_tdesc_t *d)
{
    return d->ndim ? d->shape[d->ndim - 1] : 1;
}

int64_t gq_dsp_rows(const gq_tdesc_t *d)
{
    int64_t r = 1;
    for (int i = 0; i + 1 < d->ndim; i++)
        r *= d->shape[i];
    return r;
}

void gq_dsp_load(const void *src, gq_dtype_t dt, int64_t off, int64_t n, double *dst)
{
    if (dt == GQ_F32) {
        const float *s = (const float *)src + off;
        for (int64_t i = 0; i < n; i++)
            dst[i] = s[i];
    } else {
        memcpy(dst, (const double *)src + off, (size_t)n * sizeof(double));
    }
}

void gq_dsp_store(const double *src, int64_t n, void *dst, gq_dtype_t dt, int64_t off)
{
    if (dt == GQ_F32) {
        float *d = (float *)dst + off;
        for (int64_t i = 0; i < n; i++)
            d[i] = (float)src[i];
    } else {
        memcpy((double *)dst + off, src, (size_t)n * sizeof(double));
    }
}

bool gq_dsp_all_finite(const void *src, gq_dtype_t dt, int64_t off, int64_t n)
{
    /* x - x is 0 for finite x and NaN for NaN and +-Inf: a branch-free pass in vector
     * lanes (one serial accumulator would be latency bound). */
    typedef float v4f __attribute__((vector_size(16)));
    int64_t i = 0;
    if (dt == GQ_F32) {
        const float *s = (const float *)src + off;
        v4f acc = {0, 0, 0, 0};
        for (; i + 4 <= n; i += 4) {
            v4f v;
            memcpy(&v, s + i, sizeof v);
            acc += v - v;
        }
        float t = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        for (; i < n; i++)
            t += s[i] - s[i];
        return t == 0.0f;
    }
    const double *s = (const double *)src + off;
    gq_v2d a0 = {0, 0}, a1 = {0, 0};
    for (; i + 4 <= n; i += 4) {
        gq_v2d v = gq_v2d_load(s + i), w = gq_v2d_load(s + i + 2);
        a0 += v - v;
        a1 += w - w;
    }
    a0 += a1;
    double t = a0[0] + a0[1];
    for (; i < n; i++)
        t += s[i] - s[i];
    return t == 0.0;
}

double *gq_dsp_scratch(const char *op, int64_t n, char *err, size_t errlen)
{
    size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(double);
    double *p = gq_fft_alloc(bytes);
    if (!p) {
        gq_errf(err, errlen, "%s: cpu: out of memory for %zu bytes of scratch", op, bytes);
        return NULL;
    }
    memset(p, 0, bytes);
    return p;
}

/* ---- dsp.fir ---- */

/* Overlap-save in double: blocks of n_fft samples give n_fft - K + 1 outputs each. */
typedef struct {
    int64_t n_fft, step;
    const gq_fft_plan_t *fwd, *inv;
    double *seg, *spec, *hspec; /* n_fft reals, then two half spectra (complex interleaved) */
} s_ols_t;

typedef struct {
    int64_t K;
    double *hr; /* taps reversed */
    bool use_fft;
    s_ols_t ols;
    double *xp; /* direct: one row, K-1 zeros either side */
} s_fir_t;

/* The transform size with the least work per output for K taps and about n outputs. */
static int64_t s_ols_size(int64_t K, int64_t n)
{
    int64_t best = 0;
    double best_cost = 0;
    for (int64_t N = 8; N <= S_OLS_MAX_N; N *= 2) {
        if (N < 2 * K)
            continue;
        double cost = (double)N * (log2((double)N) + 1.0) / (double)(N - K + 1);
        if (!best || cost < best_cost)
            best = N, best_cost = cost;
        if (N >= n + K) /* one block holds it all */
            break;
    }
    return best;
}

static gq_status s_ols_init(s_ols_t *o, const double *h, int64_t K, int64_t n, const char *op,
                            char *err, size_t errlen)
{
    o->n_fft = s_ols_size(K, n);
    if (!o->n_fft) {
        gq_errf(err, errlen, "%s: %lld taps are too many for the FFT method (use method=direct)",
                op, (long long)K);
        return GQ_EPARAM;
    }
    int64_t N = o->n_fft, nc = N / 2 + 1;
    o->step = N - K + 1;
    o->fwd = gq_fft_plan(GQ_FFT_R2C, (size_t)N, true);
    o->inv = gq_fft_plan(GQ_FFT_C2R, (size_t)N, true);
    o->seg = gq_dsp_scratch(op, N + 4 * nc, err, errlen);
    if (!o->fwd || !o->inv || !o->seg) {
        if (o->seg)
            gq_errf(err, errlen, "%s: cpu: cannot plan an FFT of %lld points", op, (long long)N);
        return GQ_ENOMEM;
    }
    o->spec = o->seg + N;
    o->hspec = o->spec + 2 * nc;
    memcpy(o->seg, h, (size_t)K * sizeof(double));
    gq_fft_exec(o->fwd, o->seg, o->hspec);
    for (int64_t i = 0; i < 2 * nc; i++)
        o->hspec[i] /= (double)N;
    return GQ_OK;
}

/* full[j0 .. j0+n) of the convolution of x (T samples at element off) with the taps. */
static void s_ols_range(const s_ols_t *o, int64_t K, const void *x, gq_dtype_t dt, int64_t off,
                        int64_t T, int64_t j0, int64_t n, double *dst)
{
    int64_t N = o->n_fft, nc = N / 2 + 1;
    for (int64_t done = 0; done < n; done += o->step) {
        int64_t lo = j0 + done - (K - 1); /* first input sample of the segment */
        int64_t a = lo < 0 ? 0 : lo, b = lo + N > T ? T : lo + N;
        memset(o->seg, 0, (size_t)N * sizeof(double));
        if (b > a)
            gq_dsp_load(x, dt, off + a, b - a, o->seg + (a - lo));
        gq_fft_exec(o->fwd, o->seg, o->spec);
        double *s = o->spec;
        const double *hs = o->hspec;
        for (int64_t i = 0; i < nc; i++) {
            double re = s[2 * i] * hs[2 * i] - s[2 * i + 1] * hs[2 * i + 1];
            double im = s[2 * i] * hs[2 * i + 1] + s[2 * i + 1] * hs[2 * i];
            s[2 * i] = re, s[2 * i + 1] = im;
        }
        gq_fft_exec(o->inv, o->spec, o->seg);
        int64_t m = n - done < o->step ? n - done : o->step;
        memcpy(dst + done, o->seg + K - 1, (size_t)m * sizeof(double));
    }
}

/* The same range by the direct sum: 16 outputs at a time held in registers while every
 * tap passes over them, then the rest one by one. */
static void s_direct_range(const s_fir_t *f, const void *x, gq_dtype_t dt, int64_t off, int64_t T,
                           int64_t j0, int64_t n, double *dst)
{
    int64_t K = f->K, j = 0;
    const double *hr = f->hr;
    double *xp = f->xp;
    gq_dsp_load(x, dt, off, T, xp + K - 1);
    const double *base = xp + j0;
    for (; j + 16 <= n; j += 16) {
        gq_v2d acc[8] = {{0, 0}};
        const double *p = base + j;
        for (int64_t k = 0; k < K; k++, p++) {
            const gq_v2d c = {hr[k], hr[k]};
            for (int v = 0; v < 8; v++)
                acc[v] += c * gq_v2d_load(p + 2 * v);
        }
        for (int v = 0; v < 8; v++)
            gq_v2d_store(dst + j + 2 * v, acc[v]);
    }
    for (; j < n; j++)
        dst[j] = gq_dsp_dot(hr, base + j, K);
}

static void s_fir_range(const s_fir_t *f, const void *x, gq_dtype_t dt, int64_t off, int64_t T,
                        int64_t j0, int64_t n, double *dst)
{
    /* A NaN or Inf in an FFT block would reach every output of the block: such rows take
     * the direct sum, so non-finite values touch exactly the outputs whose taps see them. */
    if (f->use_fft && gq_dsp_all_finite(x, dt, off, T))
        s_ols_range(&f->ols, f->K, x, dt, off, T, j0, n, dst);
    else
        s_direct_range(f, x, dt, off, T, j0, n, dst);
}

static gq_status s_k_fir(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out, int nout,
                         char *err, size_t errlen)
{
    (void)nout;
    const char *op = a->op->name, *mode = gq_args_str(a, "mode");
    const char *method = gq_args_str(a, "method");
    gq_dtype_t dt = in[0].desc.dtype;
    int64_t T = gq_dsp_row_len(&in[0].desc), rows = gq_dsp_rows(&in[0].desc);
    int64_t K = in[1].desc.shape[0];
    bool stream = !strcmp(mode, "stream");
    int64_t j0 = 0, n = T + K - 1;
    if (!strcmp(mode, "same"))
        j0 = (K - 1) / 2, n = T;
    else if (!strcmp(mode, "valid"))
        j0 = (T < K ? T : K) - 1, n = (T > K ? T - K : K - T) + 1;
    s_fir_t f = {.K = K};
    f.use_fft = !strcmp(method, "fft") ||
                (!strcmp(method, "auto") && K >= S_FIR_FFT_MIN_TAPS && T >= S_FIR_FFT_MIN_TAPS);
    gq_status rc = GQ_ENOMEM;
    double *h = gq_dsp_scratch(op, K, err, errlen);
    double *dst = gq_dsp_scratch(op, n, err, errlen);
    f.hr = gq_dsp_scratch(op, K, err, errlen);
    f.xp = gq_dsp_scratch(op, T + 2 * (K - 1), err, errlen);
    if (!h || !dst || !f.hr || !f.xp)
        goto done;
    gq_dsp_load(in[1].data, in[1].desc.dtype, 0, K, h);
    for (int64_t k = 0; k < K; k++)
        f.hr[k] = h[K - 1 - k];
    if (f.use_fft && n > 0 && (rc = s_ols_init(&f.ols, h, K, n, op, err, errlen)))
        goto done;
    for (int64_t r = 0; r < rows; r++) {
        if (n > 0)
            s_fir_range(&f, in[0].data, dt, r * T, T, j0, n, dst);
        if (!stream) {
            gq_dsp_store(dst, n, out[0].data, dt, r * n);
            continue;
        }
        /* lfilter(h, 1, x, zi): zi is the tail still owed to the next outputs. */
        double *zf = out[1].data;
        if (nin == 3)
            for (int64_t k = 0; k < K - 1; k++) {
                double z;
                gq_dsp_load(in[2].data, in[2].desc.dtype, r * (K - 1) + k, 1, &z);
                dst[k] += z;
            }
        gq_dsp_store(dst, T, out[0].data, dt, r * T);
        memcpy(zf + r * (K - 1), dst + T, (size_t)(K - 1) * sizeof(double));
    }
    rc = GQ_OK;
done:
    gq_fft_free(f.ols.seg);
    gq_fft_free(f.xp);
    gq_fft_free(f.hr);
    gq_fft_free(dst);
    gq_fft_free(h);
    return rc;
}

/* ---- dsp.sos ---- */

static gq_status s_k_sos(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out, int nout,
                         char *err, size_t errlen)
{
    const char *op = a->op->name;
    gq_dtype_t dt = in[0].desc.dtype;
    int64_t T = gq_dsp_row_len(&in[0].desc), rows = gq_dsp_rows(&in[0].desc);
    int64_t ns = in[1].desc.shape[0];
    gq_status rc = GQ_ENOMEM;
    double *c = gq_dsp_scratch(op, 6 * ns, err, errlen);
    double *z = gq_dsp_scratch(op, 2 * ns, err, errlen);
    double *row = gq_dsp_scratch(op, T, err, errlen);
    if (!c || !z || !row)
        goto done;
    gq_dsp_load(in[1].data, in[1].desc.dtype, 0, 6 * ns, c);
    for (int64_t s = 0; s < ns; s++) {
        double *q = c + 6 * s, a0 = q[3];
        if (a0 == 0.0 || !isfinite(a0)) {
            gq_errf(err, errlen,
                    "%s: input 1 (sos) section %lld has a0 = %g; a section needs a finite, "
                    "non-zero a0 (rows are b0 b1 b2 a0 a1 a2)",
                    op, (long long)s, a0);
            rc = GQ_EPARAM;
            goto done;
        }
        for (int i = 0; i < 6; i++)
            q[i] /= a0;
    }
    for (int64_t r = 0; r < rows; r++) {
        if (nin == 3)
            gq_dsp_load(in[2].data, in[2].desc.dtype, r * 2 * ns, 2 * ns, z);
        else
            memset(z, 0, (size_t)(2 * ns) * sizeof(double));
        gq_dsp_load(in[0].data, dt, r * T, T, row);
        for (int64_t s = 0; s < ns; s++) {
            const double *q = c + 6 * s;
            const double b0 = q[0], b1 = q[1], b2 = q[2], a1 = q[4], a2 = q[5];
            double z0 = z[2 * s], z1 = z[2 * s + 1];
            for (int64_t t = 0; t < T; t++) {
                double xv = row[t], y = b0 * xv + z0;
                z0 = b1 * xv - a1 * y + z1;
                z1 = b2 * xv - a2 * y;
                row[t] = y;
            }
            z[2 * s] = z0, z[2 * s + 1] = z1;
        }
        gq_dsp_store(row, T, out[0].data, dt, r * T);
        if (nout == 2)
            memcpy((double *)out[1].data + r * 2 * ns, z, (size_t)(2 * ns) * sizeof(double));
    }
    rc = GQ_OK;
done:
    gq_fft_free(row);
    gq_fft_free(z);
    gq_fft_free(c);
    return rc;
}

/* ---- dsp.lfilter ---- */

/* Transposed direct form II over one row in place; z holds n - 1 delays. */
static void s_lfilter_row(const double *b, const double *av, int64_t n, double *z, double *row,
                          int64_t T)
{
    if (n == 1) {
        for (int64_t t = 0; t < T; t++)
            row[t] *= b[0];
        return;
    }
    bool fir = true;
    for (int64_t i = 1; i < n; i++)
        fir = fir && av[i] == 0.0;
    /* Without feedback the a terms are skipped, as scipy skips them: 0 * Inf would turn
     * one Inf into NaN for every later output. */
    if (fir) {
        for (int64_t t = 0; t < T; t++) {
            double xv = row[t], y = b[0] * xv + z[0];
            for (int64_t i = 0; i + 2 < n; i++)
                z[i] = b[i + 1] * xv + z[i + 1];
            z[n - 2] = b[n - 1] * xv;
            row[t] = y;
        }
        return;
    }
    for (int64_t t = 0; t < T; t++) {
        double xv = row[t], y = b[0] * xv + z[0];
        for (int64_t i = 0; i + 2 < n; i++)
            z[i] = b[i + 1] * xv + z[i + 1] - av[i + 1] * y;
        z[n - 2] = b[n - 1] * xv - av[n - 1] * y;
        row[t] = y;
    }
}

static gq_status s_k_lfilter(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out,
                             int nout, char *err, size_t errlen)
{
    const char *op = a->op->name;
    gq_dtype_t dt = in[0].desc.dtype;
    int64_t T = gq_dsp_row_len(&in[0].desc), rows = gq_dsp_rows(&in[0].desc);
    int64_t nb = in[1].desc.shape[0], na = in[2].desc.shape[0], n = nb > na ? nb : na;
    gq_status rc = GQ_ENOMEM;
    double *b = gq_dsp_scratch(op, n, err, errlen);
    double *av = gq_dsp_scratch(op, n, err, errlen);
    double *z = gq_dsp_scratch(op, n, err, errlen);
    double *row = gq_dsp_scratch(op, T, err, errlen);
    if (!b || !av || !z || !row)
        goto done;
    gq_dsp_load(in[1].data, in[1].desc.dtype, 0, nb, b);
    gq_dsp_load(in[2].data, in[2].desc.dtype, 0, na, av);
    double a0 = av[0];
    if (a0 == 0.0 || !isfinite(a0)) {
        gq_errf(err, errlen,
                "%s: input 2 (a) has a[0] = %g; the filter is normalised by a[0], which must be "
                "finite and non-zero",
                op, a0);
        rc = GQ_EPARAM;
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        b[i] /= a0, av[i] /= a0;
    for (int64_t r = 0; r < rows; r++) {
        if (nin == 4)
            gq_dsp_load(in[3].data, in[3].desc.dtype, r * (n - 1), n - 1, z);
        else
            memset(z, 0, (size_t)n * sizeof(double));
        gq_dsp_load(in[0].data, dt, r * T, T, row);
        s_lfilter_row(b, av, n, z, row, T);
        gq_dsp_store(row, T, out[0].data, dt, r * T);
        if (nout == 2)
            memcpy((double *)out[1].data + r * (n - 1), z, (size_t)(n - 1) * sizeof(double));
    }
    rc = GQ_OK;
done:
    gq_fft_free(row);
    gq_fft_free(z);
    gq_fft_free(av);
    gq_fft_free(b);
    return rc;
}

/* ---- dsp.preemphasis ---- */

static gq_status s_k_preemph(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out,
                             int nout, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    gq_dtype_t dt = in[0].desc.dtype;
    int64_t T = gq_dsp_row_len(&in[0].desc), rows = gq_dsp_rows(&in[0].desc);
    const double coef = gq_args_float(a, "coef");
    for (int64_t r = 0; r < rows; r++) {
        double zi, prev = 0.0, x0, x1;
        if (nin == 2) {
            gq_dsp_load(in[1].data, in[1].desc.dtype, r, 1, &zi);
        } else {
            /* librosa's default: zi = 2 x[0] - x[1], added as lfilter state (x[0] alone
             * when T = 1). */
            gq_dsp_load(in[0].data, dt, r * T, 1, &x0);
            x1 = x0;
            if (T > 1)
                gq_dsp_load(in[0].data, dt, r * T + 1, 1, &x1);
            zi = 2.0 * x0 - x1;
        }
        double zf = zi;
        if (dt == GQ_F32) {
            const float *x = (const float *)in[0].data + r * T;
            float *y = (float *)out[0].data + r * T;
            for (int64_t t = 0; t < T; t++) {
                double xv = x[t];
                y[t] = (float)(t ? xv - coef * prev : xv + zi);
                prev = xv;
            }
        } else {
            const double *x = (const double *)in[0].data + r * T;
            double *y = (double *)out[0].data + r * T;
            for (int64_t t = 0; t < T; t++) {
                double xv = x[t];
                y[t] = t ? xv - coef * prev : xv + zi;
                prev = xv;
            }
        }
        if (T > 0)
            zf = -coef * prev;
        if (nout == 2)
            ((double *)out[1].data)[r] = zf;
    }
    return GQ_OK;
}

static const gq_cpu_kernel_t s_kernels[] = {
    {"dsp.fir", s_k_fir},
    {"dsp.sos", s_k_sos},
    {"dsp.lfilter", s_k_lfilter},
    {"dsp.preemphasis", s_k_preemph},
    {"dsp.resample", gq_cpu_dsp_resample},
    {"dsp.gain", gq_cpu_dsp_gain},
    {"dsp.normalize", gq_cpu_dsp_normalize},
    {"dsp.loudness", gq_cpu_dsp_loudness},
    {"dsp.frame", gq_cpu_dsp_frame},
    {"dsp.overlap_add", gq_cpu_dsp_overlap_add},
};

const gq_cpu_kernel_family_t gq_cpu_dsp_filter_kernels = {
    s_kernels, (int)(sizeof s_kernels / sizeof s_kernels[0])};
