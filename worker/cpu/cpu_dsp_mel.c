/* CPU kernels of dsp.mel, dsp.logmel, dsp.mfcc and dsp.db: librosa's melspectrogram,
 * power_to_db, mfcc and the dB conversions, frame by frame with no intermediate
 * spectrogram: r2c of the windowed frame, |X|^power over the bins some filter uses, each
 * filter summed over its own nonzero bins only, then the log. Semantics and tolerances:
 * docs/dsp-spectral.md. */
#include "cpu_dsp_util.h"
#include "util.h"
#include <float.h>
#include <math.h>
#include <string.h>

#define S_LOG10_2 0.301029995663981195213738894724493027
#define S_LOG10_E 0.434294481903251827651128918916605082

void gq_dsp_mel_bank_free(gq_dsp_mel_bank_t *b)
{
    gq_fft_free(b->lo);
    gq_fft_free(b->cnt);
    gq_fft_free(b->off);
    gq_fft_free(b->wf);
    gq_fft_free(b->wd);
    memset(b, 0, sizeof *b);
}

/* librosa.hz_to_mel / mel_to_hz, Slaney's or HTK's scale. */
static double s_hz_to_mel(double f, bool htk)
{
    if (htk)
        return 2595.0 * log10(1.0 + f / 700.0);
    const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    return f >= min_log_hz ? min_log_mel + log(f / min_log_hz) / logstep : f / f_sp;
}

static double s_mel_to_hz(double m, bool htk)
{
    if (htk)
        return 700.0 * (pow(10.0, m / 2595.0) - 1.0);
    const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    return m >= min_log_mel ? min_log_hz * exp(logstep * (m - min_log_mel)) : f_sp * m;
}

gq_status gq_dsp_mel_bank_build(gq_dsp_mel_bank_t *b, const gq_dsp_mel_t *mp, int64_t n_fft)
{
    memset(b, 0, sizeof *b);
    int nm = mp->n_mels;
    int64_t nbins = n_fft / 2 + 1;
    double *mel_f = gq_fft_alloc((size_t)(nm + 2) * sizeof *mel_f);
    double *fft_f = gq_fft_alloc((size_t)nbins * sizeof *fft_f);
    float *row = gq_fft_alloc((size_t)nbins * sizeof *row);
    b->lo = gq_fft_alloc((size_t)nm * sizeof *b->lo);
    b->cnt = gq_fft_alloc((size_t)nm * sizeof *b->cnt);
    b->off = gq_fft_alloc((size_t)nm * sizeof *b->off);
    /* A filter spans the bins between two mel points two apart, so every bin is in at most
     * two filters. */
    b->wf = gq_fft_alloc((size_t)(2 * nbins + nm) * sizeof *b->wf);
    b->wd = gq_fft_alloc((size_t)(2 * nbins + nm) * sizeof *b->wd);
    gq_status rc = GQ_ENOMEM;
    if (!mel_f || !fft_f || !row || !b->lo || !b->cnt || !b->off || !b->wf || !b->wd)
        goto done;
    b->n_mels = nm;
    /* numpy.fft.rfftfreq(n_fft, 1/sr) and mel_frequencies' linspace, operation for
     * operation. */
    double val = 1.0 / ((double)n_fft * (1.0 / mp->sr));
    for (int64_t k = 0; k < nbins; k++)
        fft_f[k] = (double)k * val;
    double mlo = s_hz_to_mel(mp->fmin, mp->htk), mhi = s_hz_to_mel(mp->fmax, mp->htk);
    double step = (mhi - mlo) / (double)(nm + 1);
    for (int i = 0; i < nm + 2; i++)
        mel_f[i] = s_mel_to_hz(i == nm + 1 ? mhi : (double)i * step + mlo, mp->htk);
    int64_t off = 0, cap = 2 * nbins + nm;
    b->kmin = nbins;
    b->kmax = 0;
    for (int m = 0; m < nm; m++) {
        double d0 = mel_f[m + 1] - mel_f[m], d1 = mel_f[m + 2] - mel_f[m + 1];
        double enorm = 2.0 / (mel_f[m + 2] - mel_f[m]);
        int64_t first = -1, last = -1;
        for (int64_t k = 0; k < nbins; k++) {
            double lower = -(mel_f[m] - fft_f[k]) / d0, upper = (mel_f[m + 2] - fft_f[k]) / d1;
            double w = fmax(0.0, fmin(lower, upper));
            float wf = (float)w;
            if (mp->slaney_norm)
                wf = (float)((double)wf * enorm);
            row[k] = wf;
            if (wf != 0.0f) {
                if (first < 0)
                    first = k;
                last = k;
            }
        }
        int64_t cnt = first < 0 ? 0 : last - first + 1;
        if (off + cnt > cap) /* cannot happen for increasing mel points; stay in bounds */
            goto done;
        b->lo[m] = first < 0 ? 0 : first;
        b->cnt[m] = cnt;
        b->off[m] = off;
        for (int64_t j = 0; j < cnt; j++) {
            b->wf[off + j] = row[first + j];
            b->wd[off + j] = row[first + j];
        }
        off += cnt;
        if (cnt) {
            b->kmin = first < b->kmin ? first : b->kmin;
            b->kmax = last + 1 > b->kmax ? last + 1 : b->kmax;
        }
    }
    if (b->kmax < b->kmin)
        b->kmin = b->kmax = 0;
    rc = GQ_OK;
done:
    gq_fft_free(mel_f);
    gq_fft_free(fft_f);
    gq_fft_free(row);
    if (rc != GQ_OK)
        gq_dsp_mel_bank_free(b);
    return rc;
}

/* 10 log10(max(amin, x)) in four lanes, amin a positive normal float, for finite x: x = 2^e
 * m, m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s) with s = (m-1)/(m+1), |s| < 0.172, by its
 * series to s^9 (the first term left out is below 1e-9 relative): within 2 ulp of the f32
 * result, no branch. Lanes holding NaN or +inf (whose bits the fast path misreads) are
 * flagged in *bad for the caller to redo. */
static inline gq_v4f s_db4(gq_v4f x, gq_v4f amin, gq_v4i *bad)
{
    gq_v4f v = gq_v4_max(amin, x);
    *bad |= ~(v <= gq_v4_splat(FLT_MAX));
    gq_v4i u = (gq_v4i)v;
    gq_v4i e = (u >> 23) - 127;
    gq_v4f m = (gq_v4f)((u & 0x007fffff) | 0x3f800000);
    gq_v4i big = m > gq_v4_splat(1.41421356f);
    m -= (gq_v4f)((gq_v4i)(m * 0.5f) & big);
    e -= big;
    gq_v4f s = (m - 1.0f) / (m + 1.0f), s2 = s * s;
    gq_v4f p = s2 * (1.0f / 9) + (1.0f / 7);
    p = p * s2 + (1.0f / 5);
    p = p * s2 + (1.0f / 3);
    p = p * s2 + 1.0f;
    return s * p * (float)(20.0 * S_LOG10_E) +
           __builtin_convertvector(e, gq_v4f) * (float)(10.0 * S_LOG10_2);
}

/* 10 log10(max(amin, x)) of one value the slow way, NaN and inf included. */
static inline float s_db1(float x, float amin)
{
    return (float)(10.0 * log10(x < amin ? amin : x));
}

/* Any lane set. */
static inline bool s_any(gq_v4i m)
{
    return (m[0] | m[1] | m[2] | m[3]) != 0;
}

/* dB of n values from src to dst (may be the same), with their maximum folded into *mx and
 * NaNs into *nan (numpy.max semantics: a NaN makes the maximum NaN). */
static void s_db_row(const float *src, float *dst, int64_t n, float amin, gq_v4f *mx, bool *nan)
{
    const gq_v4f a = gq_v4_splat(amin);
    gq_v4f m = *mx;
    int64_t i = 0;
    if (amin >= FLT_MIN) {
        for (; i + 4 <= n; i += 4) {
            gq_v4i bad = {0, 0, 0, 0};
            gq_v4f r = s_db4(gq_v4_load(src + i), a, &bad);
            /* NaN or inf in this block: it and the rest go one value at a time. The block
             * is not stored, so an in-place row (src == dst) still holds its inputs. */
            if (s_any(bad))
                break;
            gq_v4_store(dst + i, r);
            m = gq_v4_max(r, m);
        }
    }
    for (; i < n; i++) {
        float r = s_db1(src[i], amin);
        dst[i] = r;
        *nan |= isnan(r);
        m = gq_v4_max(gq_v4_splat(r), m);
    }
    *mx = m;
}

static double s_max_of(gq_v4f mx, bool nan)
{
    if (nan)
        return NAN;
    float m = mx[0];
    for (int i = 1; i < 4; i++)
        m = mx[i] > m ? mx[i] : m;
    return m;
}

/* The dB params of an op: power_to_db(x, ref, amin, top_db) on powers. */
typedef struct {
    double ref, amin, top_db;
    bool ref_max;
} s_db_t;

/* 10 log10(max(amin, x)) over n values in place; returns their maximum (NaN when any is
 * NaN, like numpy.max). */
static double s_to_db_f32(float *x, int64_t n, double amin)
{
    gq_v4f mx = gq_v4_splat(-INFINITY);
    bool nan = false;
    s_db_row(x, x, n, (float)amin, &mx, &nan);
    return s_max_of(mx, nan);
}

static double s_to_db_f64(double *x, int64_t n, double amin)
{
    double mx = -INFINITY;
    bool nan = false;
    for (int64_t i = 0; i < n; i++) {
        double v = x[i] < amin ? amin : x[i];
        v = 10.0 * log10(v);
        x[i] = v;
        nan |= isnan(v);
        mx = v > mx ? v : mx;
    }
    return nan ? NAN : mx;
}

/* The rest of power_to_db on n values already in dB whose maximum is mx: minus the ref in
 * dB, floored at max - top_db. A NaN maximum makes the floor NaN, and numpy.maximum then
 * makes every value NaN. The ref and floor are rounded to T first, as NumPy's value-based
 * casting does with float32 arrays. */
static bool s_db_consts(double mx, const s_db_t *d, double *ref_db, double *fl)
{
    *ref_db = d->ref_max ? mx : 10.0 * log10(fmax(d->amin, fabs(d->ref)));
    *fl = (mx - *ref_db) - d->top_db;
    return !isinf(d->top_db);
}

static void s_db_finish_f32(float *x, int64_t n, double mx, const s_db_t *d)
{
    double rd, fd;
    bool floor_on = s_db_consts(mx, d, &rd, &fd);
    const float ref_db = (float)rd, fl = floor_on ? (float)fd : -INFINITY;
    if (isnan(fl) || isnan(ref_db)) {
        for (int64_t i = 0; i < n; i++)
            x[i] = NAN;
        return;
    }
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        gq_v4f v = gq_v4_load(x + i) - ref_db;
        gq_v4_store(x + i, gq_v4_select(v < gq_v4_splat(fl), gq_v4_splat(fl), v));
    }
    for (; i < n; i++) {
        float v = x[i] - ref_db;
        x[i] = v < fl ? fl : v;
    }
}

static void s_db_finish_f64(double *x, int64_t n, double mx, const s_db_t *d)
{
    double ref_db, fl;
    bool floor_on = s_db_consts(mx, d, &ref_db, &fl);
    fl = floor_on ? fl : -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        double v = x[i] - ref_db;
        x[i] = isnan(fl) ? NAN : v < fl ? fl : v;
    }
}

/* ---- the mel spectrogram, f32: four frames at a time ---- */

/* Frames per block of the f32 path (a multiple of 4): the mel bands of a block are
 * gathered in cache, then each band's row goes to the output in one contiguous run. */
#define S_BLOCK 32

/* Scratch of the f32 path: two complex spectra (each carrying two frames), the power of
 * the four frames per bin, each filter weight in four lanes, the four frames' mel bands,
 * and a block of bands [n_mels][S_BLOCK]. */
typedef struct {
    float *z[2];
    gq_v4f *p4, *w4, *mel4;
    float *blk;
} s_quad_t;

static void s_quad_free(s_quad_t *q)
{
    gq_fft_free(q->z[0]);
    gq_fft_free(q->z[1]);
    gq_fft_free(q->p4);
    gq_fft_free(q->w4);
    gq_fft_free(q->mel4);
    gq_fft_free(q->blk);
    memset(q, 0, sizeof *q);
}

static gq_status s_quad_init(s_quad_t *q, const gq_dsp_mel_bank_t *b, int64_t n_fft)
{
    memset(q, 0, sizeof *q);
    int64_t nw = b->n_mels ? b->off[b->n_mels - 1] + b->cnt[b->n_mels - 1] : 0;
    q->z[0] = gq_fft_alloc((size_t)n_fft * 2 * sizeof(float));
    q->z[1] = gq_fft_alloc((size_t)n_fft * 2 * sizeof(float));
    q->p4 = gq_fft_alloc((size_t)(n_fft / 2 + 1) * sizeof(gq_v4f));
    q->w4 = gq_fft_alloc((size_t)(nw ? nw : 1) * sizeof(gq_v4f));
    q->mel4 = gq_fft_alloc((size_t)b->n_mels * sizeof(gq_v4f));
    q->blk = gq_fft_alloc((size_t)b->n_mels * S_BLOCK * sizeof(float));
    if (!q->z[0] || !q->z[1] || !q->p4 || !q->w4 || !q->mel4 || !q->blk) {
        s_quad_free(q);
        return GQ_ENOMEM;
    }
    for (int64_t j = 0; j < nw; j++)
        q->w4[j] = gq_v4_splat(b->wf[j]);
    return GQ_OK;
}

/* 4 |X|^2 of bins k and k+1 of the two frames a + i b in z (n points), 1 <= k < n-1:
 * (a_k, b_k, a_k+1, b_k+1). With Z[k] = (p, q) and Z[n-k] = (r, s), 4|A|^2 = (p+r)^2 +
 * (q-s)^2 and 4|B|^2 = (p-r)^2 + (q+s)^2. */
static inline gq_v4f s_pair_power(const float *z, int64_t n, int64_t k)
{
    gq_v4f lo = gq_v4_load(z + 2 * k), hi = gq_v4_load(z + 2 * (n - k - 1));
    hi = GQ_V4_SHUF(hi, 2, 3, 0, 1);
    gq_v4f s = lo + hi, d = lo - hi;
    s *= s;
    d *= d;
    return GQ_V4_SHUF2(s, d, 0, 4, 2, 6) + GQ_V4_SHUF2(s, d, 5, 1, 7, 3);
}

/* |X|^power of the four frames in z[0] (frames a + i b) and z[1] (c + i d), bins
 * [kmin, kmax), into p4: two bins per step, DC and a leftover bin one at a time. */
static void s_quad_power(const s_quad_t *q, int64_t n, int64_t kmin, int64_t kmax, double power)
{
    const float *z0 = q->z[0], *z1 = q->z[1];
    const gq_v4f sr = {1, -1, 1, -1}, ss = {-1, 1, -1, 1};
    gq_v4f *p4 = q->p4;
    int64_t k = kmin;
    for (; k < kmax; k++) {
        if (k >= 1 && k + 1 < kmax && k + 1 < n)
            break;
        int64_t r = k ? n - k : 0;
        gq_v4f lo = {z0[2 * k], z0[2 * k + 1], z1[2 * k], z1[2 * k + 1]};
        gq_v4f hi = {z0[2 * r], z0[2 * r + 1], z1[2 * r], z1[2 * r + 1]};
        gq_v4f u = GQ_V4_SHUF(lo, 0, 0, 2, 2) + GQ_V4_SHUF(hi, 0, 0, 2, 2) * sr;
        gq_v4f v = GQ_V4_SHUF(lo, 1, 1, 3, 3) + GQ_V4_SHUF(hi, 1, 1, 3, 3) * ss;
        p4[k] = (u * u + v * v) * 0.25f;
    }
    for (; k + 1 < kmax; k += 2) {
        gq_v4f t = s_pair_power(z0, n, k), u = s_pair_power(z1, n, k);
        p4[k] = GQ_V4_SHUF2(t, u, 0, 1, 4, 5) * 0.25f;
        p4[k + 1] = GQ_V4_SHUF2(t, u, 2, 3, 6, 7) * 0.25f;
    }
    for (; k < kmax; k++) {
        gq_v4f lo = {z0[2 * k], z0[2 * k + 1], z1[2 * k], z1[2 * k + 1]};
        gq_v4f hi = {z0[2 * (n - k)], z0[2 * (n - k) + 1], z1[2 * (n - k)], z1[2 * (n - k) + 1]};
        gq_v4f u = GQ_V4_SHUF(lo, 0, 0, 2, 2) + GQ_V4_SHUF(hi, 0, 0, 2, 2) * sr;
        gq_v4f v = GQ_V4_SHUF(lo, 1, 1, 3, 3) + GQ_V4_SHUF(hi, 1, 1, 3, 3) * ss;
        p4[k] = (u * u + v * v) * 0.25f;
    }
    if (power == 2.0)
        return;
    for (k = kmin; k < kmax; k++)
        for (int l = 0; l < 4; l++) {
            double m = sqrt((double)p4[k][l]);
            p4[k][l] = (float)(power == 1.0 ? m : pow(m, power));
        }
}

/* Each filter over its own bins, for four frames at once; two accumulators so that the
 * adds of a long filter overlap. */
static void s_quad_mel(const s_quad_t *q, const gq_dsp_mel_bank_t *b)
{
    for (int m = 0; m < b->n_mels; m++) {
        const gq_v4f *w = q->w4 + b->off[m], *p = q->p4 + b->lo[m];
        int64_t n = b->cnt[m], j = 0;
        gq_v4f a0 = gq_v4_splat(0), a1 = gq_v4_splat(0);
        for (; j + 2 <= n; j += 2) {
            a0 += w[j] * p[j];
            a1 += w[j + 1] * p[j + 1];
        }
        if (j < n)
            a0 += w[j] * p[j];
        q->mel4[m] = a0 + a1;
    }
}

/* Mel bands (in dB when log) of one f32 signal x into y: [n_mels, n_frames]. Returns the
 * maximum dB value (NaN when any is NaN); 0 when !log. */
static double s_mel_signal_f32(gq_dsp_framer_t *f, const gq_dsp_mel_bank_t *b, s_quad_t *q,
                               double power, bool log, double amin, const float *x, float *y)
{
    int64_t nt = f->g.n_frames, n = f->g.n_fft;
    gq_v4f mx = gq_v4_splat(-INFINITY);
    bool nan = false;
    for (int64_t tb = 0; tb < nt; tb += S_BLOCK) {
        int64_t nb = nt - tb < S_BLOCK ? nt - tb : S_BLOCK;
        for (int64_t t0 = 0; t0 < nb; t0 += 4) {
            /* A last group of fewer than 4 frames repeats its last frame in the spare lanes. */
            int64_t t[4];
            for (int l = 0; l < 4; l++)
                t[l] = t0 + l < nb ? tb + t0 + l : tb + nb - 1;
            gq_dsp_framer_run2(f, x, t[0], t[1], q->z[0]);
            gq_dsp_framer_run2(f, x, t[2], t[3], q->z[1]);
            s_quad_power(q, n, b->kmin, b->kmax, power);
            s_quad_mel(q, b);
            for (int m = 0; m < b->n_mels; m++)
                gq_v4_store(q->blk + m * S_BLOCK + t0, q->mel4[m]);
        }
        for (int m = 0; m < b->n_mels; m++) {
            if (log)
                s_db_row(q->blk + m * S_BLOCK, y + m * nt + tb, nb, (float)amin, &mx, &nan);
            else
                memcpy(y + m * nt + tb, q->blk + m * S_BLOCK, (size_t)nb * sizeof *y);
        }
    }
    return log ? s_max_of(mx, nan) : 0.0;
}

/* ---- the mel spectrogram, f64: frame by frame ---- */

/* One frame's mel bands from f->spec into y[m * stride]: |X|^power over the bins some
 * filter uses, then each filter over its own bins. p is scratch of n_fft/2+1. */
static void s_mel_frame_f64(const gq_dsp_framer_t *f, const gq_dsp_mel_bank_t *b, double power,
                            double *restrict p, double *restrict y, int64_t stride)
{
    const double *restrict s = f->spec;
    for (int64_t k = b->kmin; k < b->kmax; k++) {
        double p2 = s[2 * k] * s[2 * k] + s[2 * k + 1] * s[2 * k + 1];
        p[k] = power == 2.0 ? p2 : power == 1.0 ? sqrt(p2) : pow(sqrt(p2), power);
    }
    for (int m = 0; m < b->n_mels; m++) {
        const double *wm = b->wd + b->off[m], *pm = p + b->lo[m];
        double acc = 0.0;
        for (int64_t j = 0; j < b->cnt[m]; j++)
            acc += wm[j] * pm[j];
        y[m * stride] = acc;
    }
}

typedef enum { S_MEL, S_LOGMEL, S_MFCC } s_mel_kind_t;

/* DCT-II with the ortho norm (scipy.fftpack.dct(type=2, norm='ortho')) as a matrix,
 * first n_mfcc rows, each scaled by librosa's lifter. */
void gq_dsp_dct_matrix(int n_mfcc, int n_mels, double lifter, double *d)
{
    for (int k = 0; k < n_mfcc; k++) {
        double sc = sqrt((k == 0 ? 1.0 : 2.0) / (double)n_mels);
        if (lifter > 0)
            sc *= 1.0 + (lifter / 2) * sin(M_PI * (double)(k + 1) / lifter);
        for (int m = 0; m < n_mels; m++)
            d[k * n_mels + m] = sc * cos(M_PI * (double)k * (2.0 * m + 1.0) / (2.0 * n_mels));
    }
}

/* out[k][t] = sum over m of dct[k][m] lm[m][t], accumulated in double. */
static void s_dct_apply(const double *dct, int64_t n_mfcc, int64_t nm, int64_t nt, bool f64,
                        const void *lm, void *out)
{
    for (int64_t k = 0; k < n_mfcc; k++) {
        const double *dk = dct + k * nm;
        for (int64_t t = 0; t < nt; t++) {
            double acc = 0.0;
            if (f64) {
                const double *l = (const double *)lm + t;
                for (int64_t m = 0; m < nm; m++)
                    acc += dk[m] * l[m * nt];
                ((double *)out)[k * nt + t] = acc;
            } else {
                const float *l = (const float *)lm + t;
                for (int64_t m = 0; m < nm; m++)
                    acc += dk[m] * l[m * nt];
                ((float *)out)[k * nt + t] = (float)acc;
            }
        }
    }
}

gq_status gq_cpu_dsp_mel(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out, int nout,
                         char *err, size_t errlen)
{
    (void)nin, (void)nout;
    const char *op = a->op->name;
    s_mel_kind_t kind = !strcmp(op, "dsp.mel")      ? S_MEL
                        : !strcmp(op, "dsp.logmel") ? S_LOGMEL
                                                    : S_MFCC;
    gq_dsp_framer_t f;
    gq_dsp_mel_t mp;
    gq_dsp_mel_bank_t bank = {0};
    s_quad_t quad = {0};
    gq_status rc = gq_dsp_framer_init(&f, a, &in[0].desc, err, errlen);
    if (rc != GQ_OK)
        return rc;
    void *p = NULL, *lm = NULL;
    double *dct = NULL;
    rc = gq_dsp_mel_params(a, &mp, err, errlen);
    if (rc != GQ_OK)
        goto done;
    rc = gq_dsp_mel_bank_build(&bank, &mp, f.g.n_fft);
    if (rc == GQ_OK && !f.f64)
        rc = gq_dsp_framer_pairs(&f);
    if (rc == GQ_OK && !f.f64)
        rc = s_quad_init(&quad, &bank, f.g.n_fft);
    size_t rs = f.f64 ? sizeof(double) : sizeof(float);
    int64_t nt = f.g.n_frames, nm = mp.n_mels, n_mfcc = 0;
    p = gq_fft_alloc((size_t)(f.g.n_fft / 2 + 1) * rs);
    if (kind == S_MFCC) {
        n_mfcc = gq_args_int(a, "n_mfcc");
        lm = gq_fft_alloc((size_t)(nm * nt) * rs);
        dct = gq_fft_alloc((size_t)(n_mfcc * nm) * sizeof *dct);
    }
    if (rc != GQ_OK || !p || (kind == S_MFCC && (!lm || !dct))) {
        gq_errf(err, errlen, "%s: cpu: out of memory for %d mel bands of n_fft %lld", op, mp.n_mels,
                (long long)f.g.n_fft);
        rc = GQ_ENOMEM;
        goto done;
    }
    double power = gq_args_float(a, "power");
    s_db_t db = {0};
    if (kind != S_MEL) {
        db.ref = gq_args_float(a, "ref");
        db.ref_max = gq_args_bool(a, "ref_max");
        db.amin = gq_args_float(a, "amin");
        db.top_db = gq_args_float(a, "top_db");
    }
    if (kind == S_MFCC)
        gq_dsp_dct_matrix((int)n_mfcc, (int)nm, gq_args_float(a, "lifter"), dct);
    bool log = kind != S_MEL;
    for (int64_t b = 0; b < f.g.batch; b++) {
        /* dst: this signal's [n_mels, n_frames] block, in the output or (mfcc) scratch. */
        char *dst = kind == S_MFCC ? lm : (char *)out[0].data + (size_t)(b * nm * nt) * rs;
        const char *x = (const char *)in[0].data + (size_t)(b * f.g.len) * rs;
        if (f.f64) {
            for (int64_t t = 0; t < nt; t++) {
                gq_dsp_framer_run(&f, x, t);
                s_mel_frame_f64(&f, &bank, power, p, (double *)dst + t, nt);
            }
            if (log)
                s_db_finish_f64((double *)dst, nm * nt,
                                s_to_db_f64((double *)dst, nm * nt, db.amin), &db);
        } else {
            double mx = s_mel_signal_f32(&f, &bank, &quad, power, log, db.amin, (const float *)x,
                                         (float *)dst);
            if (log)
                s_db_finish_f32((float *)dst, nm * nt, mx, &db);
        }
        if (kind == S_MFCC)
            s_dct_apply(dct, n_mfcc, nm, nt, f.f64, lm,
                        (char *)out[0].data + (size_t)(b * n_mfcc * nt) * rs);
    }
done:
    gq_fft_free(p);
    gq_fft_free(lm);
    gq_fft_free(dct);
    s_quad_free(&quad);
    gq_dsp_mel_bank_free(&bank);
    gq_dsp_framer_free(&f);
    return rc;
}

/* ---- dsp.db ---- */

typedef enum { S_P2DB, S_A2DB, S_DB2P, S_DB2A } s_db_mode_t;

gq_status gq_cpu_dsp_db(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out, int nout,
                        char *err, size_t errlen)
{
    (void)nin, (void)nout, (void)err, (void)errlen;
    const gq_tdesc_t *d = &in[0].desc;
    const char *mode = gq_args_str(a, "mode");
    s_db_mode_t md = !strcmp(mode, "power_to_db")       ? S_P2DB
                     : !strcmp(mode, "amplitude_to_db") ? S_A2DB
                     : !strcmp(mode, "db_to_power")     ? S_DB2P
                                                        : S_DB2A;
    s_db_t db = {.ref = gq_args_float(a, "ref"),
                 .ref_max = gq_args_bool(a, "ref_max"),
                 .amin = gq_args_float(a, "amin"),
                 .top_db = gq_args_float(a, "top_db")};
    if (db.amin == 0.0)
        db.amin = md == S_A2DB ? 1e-5 : 1e-10;
    int64_t numel = gq_tdesc_numel(d);
    if (numel == 0)
        return GQ_OK;
    /* One group per spectrogram: the last two axes (fewer when the input has fewer). */
    int64_t group = 1;
    for (int i = d->ndim - 1; i >= 0 && i >= d->ndim - 2; i--)
        group *= d->shape[i];
    bool f64 = d->dtype == GQ_F64;
    if (md == S_DB2P || md == S_DB2A) {
        /* ref * 10^(x/10); the amplitude is its square root with ref^2 inside. */
        double r = md == S_DB2P ? db.ref : db.ref * db.ref;
        for (int64_t i = 0; i < numel; i++) {
            double x = f64 ? ((const double *)in[0].data)[i] : ((const float *)in[0].data)[i];
            double v = r * pow(10.0, 0.1 * x);
            if (md == S_DB2A)
                v = sqrt(v);
            if (f64)
                ((double *)out[0].data)[i] = v;
            else
                ((float *)out[0].data)[i] = (float)v;
        }
        return GQ_OK;
    }
    /* amplitude_to_db is power_to_db of |x|^2 with ref^2 and amin^2. */
    if (md == S_A2DB) {
        db.amin *= db.amin;
        db.ref *= db.ref;
    }
    for (int64_t g = 0; g < numel / group; g++) {
        if (f64) {
            const double *x = (const double *)in[0].data + g * group;
            double *y = (double *)out[0].data + g * group;
            for (int64_t i = 0; i < group; i++)
                y[i] = md == S_A2DB ? x[i] * x[i] : x[i];
            s_db_finish_f64(y, group, s_to_db_f64(y, group, db.amin), &db);
        } else {
            const float *x = (const float *)in[0].data + g * group;
            float *y = (float *)out[0].data + g * group;
            for (int64_t i = 0; i < group; i++)
                y[i] = md == S_A2DB ? x[i] * x[i] : x[i];
            s_db_finish_f32(y, group, s_to_db_f32(y, group, db.amin), &db);
        }
    }
    return GQ_OK;
}
