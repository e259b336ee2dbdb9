/* OpenCL host side of the dsp.* FFT and spectral ops (kernels in kernels/fft.cl): fft,
 * ifft, rfft, irfft, stft, spectrogram, istft, db. Semantics: docs/dsp-spectral.md (numpy
 * and librosa), the CPU kernels in worker/cpu/cpu_dsp_{fft,spectral,mel}.c the reference.
 *
 * Every transform is a complex one over rows: power-of-two lengths by Stockham passes (on
 * CPU devices a work-item per row; elsewhere a work-group per row when twice the row fits
 * in local memory, else a launch per pass), other lengths by Bluestein (a power-of-two
 * convolution with a chirp). fft/rfft/irfft promote real rows to complex ones; stft and
 * spectrogram with an even n_fft transform n/2 sample pairs and split the result (half
 * the work), so a NaN still reaches only its own frame.
 * Tables (twiddles; the chirp and its spectrum) are computed on the host in double, FFTW
 * doing Bluestein's spectrum, and kept on the device per (n, precision, direction) for
 * lengths up to S_CACHE_MAX_N; entries are never evicted (no buffer can vanish under a
 * queued command), longer or overflowing ones are uploaded per call. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cl_dsp.h"
#include "cpu/cpu_dsp_util.h"
#include "ops_dsp_spectral.h"
#include "util.h"

#define S_CACHE_MAX 96
#define S_CACHE_MAX_N (1 << 16)
#define S_MAX_N (1 << 24)  /* kernels index rows with uint */
#define S_LOCAL_FFT 256    /* work-items of a work-group doing a whole transform */
#define S_ROWS_LOCAL 2     /* work-items per work-group of the row-per-work-item kernel */
#define S_LOCAL_MAX_N 8192 /* longer rows: a launch per pass (more work-groups per row) */

typedef enum { S_TAB_TWIDDLE, S_TAB_CHIRP } s_tab_kind_t;

typedef struct {
    s_tab_kind_t kind;
    uint32_t n;
    bool f64;
    int dir;
    cl_mem a, b; /* twiddles; or the chirp (n) and its spectrum / M (M) */
} s_entry_t;

typedef struct {
    s_entry_t e[S_CACHE_MAX];
    int n;
    void *tables; /* cl_mel.c's table cache */
} s_state_t;

void **gq_cl_dsp_tables_slot(gq_cl_t *cl, int fam)
{
    void **slot = gq_cl_state(cl, fam);
    if (!*slot)
        *slot = calloc(1, sizeof(s_state_t));
    s_state_t *s = *slot;
    return s ? &s->tables : NULL;
}

void gq_cl_fft_destroy_state(gq_cl_t *cl, void *state)
{
    s_state_t *s = state;
    gq_cl_dsp_tables_destroy(cl, s->tables);
    for (int i = 0; i < s->n; i++) {
        if (s->e[i].a)
            clReleaseMemObject(s->e[i].a);
        if (s->e[i].b)
            clReleaseMemObject(s->e[i].b);
    }
    free(s);
}

static bool s_pow2(uint64_t n)
{
    return n && !(n & (n - 1));
}

static int s_log2(uint64_t n)
{
    int l = 0;
    while ((1ull << l) < n)
        l++;
    return l;
}

/* ---- tables ---- */

/* Host values as the kernels' complex type: n pairs of double into float2 or double2. */
static void *s_pack(const double *v, size_t n, bool f64)
{
    void *p = malloc(n * 2 * (f64 ? sizeof(double) : sizeof(float)) + 1);
    if (!p)
        return NULL;
    for (size_t i = 0; i < 2 * n; i++) {
        if (f64)
            ((double *)p)[i] = v[i];
        else
            ((float *)p)[i] = (float)v[i];
    }
    return p;
}

/* A device buffer holding n complex values v: cached ones are made with clCreateBuffer
 * (they outlive the run), others are run scratch. */
static gq_status s_buffer(const gq_cl_dsp_ctx_t *c, const double *v, size_t n, bool f64,
                          bool cached, cl_mem *out)
{
    size_t nb = n * 2 * (f64 ? sizeof(double) : sizeof(float));
    void *p = s_pack(v, n, f64);
    gq_status rc = GQ_OK;
    if (!p) {
        gq_errf(c->err, c->errlen, "%s: opencl: out of memory for an FFT table of %zu", c->op, n);
        return GQ_ENOMEM;
    }
    if (cached) {
        cl_int crc;
        *out = clCreateBuffer(gq_cl_context(c->cl), CL_MEM_READ_ONLY, nb, NULL, &crc);
        if (crc != CL_SUCCESS)
            rc = gq_cl_fail(c->err, c->errlen, c->op, "clCreateBuffer", crc);
    } else {
        rc = gq_cl_dsp_scratch(c, nb, out);
    }
    if (!rc)
        rc = gq_cl_write(c->cl, c->st, *out, p, nb, c->op, c->err, c->errlen);
    if (rc && cached && *out) {
        clReleaseMemObject(*out);
        *out = NULL;
    }
    free(p);
    return rc;
}

static double *s_twiddles(uint32_t n)
{
    double *v = malloc((size_t)n * 2 * sizeof *v);
    for (uint32_t m = 0; v && m < n; m++) {
        double ang = 2.0 * M_PI * (double)m / (double)n;
        v[2 * m] = cos(ang);
        v[2 * m + 1] = -sin(ang);
    }
    return v;
}

/* Bluestein for n points in direction dir: the chirp w[k] = exp(dir i pi k^2 / n) (k^2
 * reduced mod 2n, exact in double), and the spectrum of conj(w) laid out circularly over M
 * points, divided by M (the inverse transform's normalisation). */
static gq_status s_chirp(uint32_t n, int dir, uint32_t M, double **w_out, double **b_out)
{
    double *w = malloc((size_t)n * 2 * sizeof *w);
    double *b = gq_fft_alloc((size_t)M * 2 * sizeof *b);
    double *bf = gq_fft_alloc((size_t)M * 2 * sizeof *bf);
    const gq_fft_plan_t *plan = gq_fft_plan(GQ_FFT_C2C_FWD, M, true);
    if (!w || !b || !bf || !plan) {
        free(w);
        gq_fft_free(b);
        gq_fft_free(bf);
        return GQ_ENOMEM;
    }
    memset(b, 0, (size_t)M * 2 * sizeof *b);
    for (uint32_t k = 0; k < n; k++) {
        uint64_t k2 = (uint64_t)k * k % (2ull * n);
        double ang = M_PI * (double)k2 / (double)n;
        w[2 * k] = cos(ang);
        w[2 * k + 1] = dir * sin(ang);
        b[2 * k] = w[2 * k];
        b[2 * k + 1] = -w[2 * k + 1];
        if (k) {
            b[2 * (M - k)] = b[2 * k];
            b[2 * (M - k) + 1] = b[2 * k + 1];
        }
    }
    gq_fft_exec(plan, b, bf);
    for (uint32_t i = 0; i < 2 * M; i++)
        bf[i] /= (double)M;
    gq_fft_free(b);
    *w_out = w;
    *b_out = bf;
    return GQ_OK;
}

static gq_status s_make(const gq_cl_dsp_ctx_t *c, s_entry_t *e, bool cached)
{
    gq_status rc;
    if (e->kind == S_TAB_TWIDDLE) {
        double *v = s_twiddles(e->n);
        rc = v ? s_buffer(c, v, e->n, e->f64, cached, &e->a) : GQ_ENOMEM;
        free(v);
    } else {
        uint32_t M = 1u << s_log2(2ull * e->n - 1);
        double *w = NULL, *bf = NULL;
        rc = s_chirp(e->n, e->dir, M, &w, &bf);
        if (!rc)
            rc = s_buffer(c, w, e->n, e->f64, cached, &e->a);
        if (!rc)
            rc = s_buffer(c, bf, M, e->f64, cached, &e->b);
        free(w);
        gq_fft_free(bf);
    }
    if (rc == GQ_ENOMEM)
        gq_errf(c->err, c->errlen, "%s: opencl: out of memory for the tables of a %u-point FFT",
                c->op, e->n);
    return rc;
}

/* The table entry for (kind, n, f64, dir): from the cache, made into it, or (too long, or
 * the cache full) made as run scratch. */
static gq_status s_table(const gq_cl_dsp_ctx_t *c, s_tab_kind_t kind, uint32_t n, bool f64, int dir,
                         s_entry_t *out)
{
    s_entry_t want = {kind, n, f64, kind == S_TAB_TWIDDLE ? 0 : dir, NULL, NULL};
    if (n > S_CACHE_MAX_N) {
        *out = want;
        return s_make(c, out, false);
    }
    gq_cl_state_lock(c->cl);
    void **slot = gq_cl_state(c->cl, c->fam);
    if (!*slot)
        *slot = calloc(1, sizeof(s_state_t));
    s_state_t *s = *slot;
    gq_status rc = GQ_OK;
    bool found = false;
    for (int i = 0; s && i < s->n && !found; i++) {
        const s_entry_t *e = &s->e[i];
        if (e->kind == want.kind && e->n == n && e->f64 == f64 && e->dir == want.dir) {
            *out = *e;
            found = true;
        }
    }
    if (!found) {
        *out = want;
        bool cache = s && s->n < S_CACHE_MAX;
        rc = s_make(c, out, cache);
        if (!rc && cache)
            s->e[s->n++] = *out;
    }
    gq_cl_state_unlock(c->cl);
    return rc;
}

/* ---- transforms ---- */

static size_t s_csize(bool f64)
{
    return f64 ? 2 * sizeof(double) : 2 * sizeof(float);
}

/* The kernels' real scalar argument. */
typedef struct {
    cl_double d;
    cl_float f;
    bool f64;
} s_real_t;

static s_real_t s_real(double v, bool f64)
{
    s_real_t r = {v, (cl_float)v, f64};
    return r;
}

static gq_cl_arg_t s_real_arg(const s_real_t *r)
{
    gq_cl_arg_t a = {r->f64 ? sizeof r->d : sizeof r->f,
                     r->f64 ? (const void *)&r->d : (const void *)&r->f};
    return a;
}

/* The same for gq_acc arguments (double with fp64). */
static gq_cl_arg_t s_acc_arg(const gq_cl_dsp_ctx_t *c, s_real_t *r)
{
    r->f64 = gq_cl_fp64(c->cl);
    return s_real_arg(r);
}

/* rows power-of-two transforms of n from src to dst (src != dst), the last pass scaled. */
static gq_status s_fft_pow2(const gq_cl_dsp_ctx_t *c, cl_mem src, cl_mem dst, uint32_t n,
                            uint64_t rows, int dir, double scale, bool f64)
{
    s_entry_t tw;
    gq_status rc = s_table(c, S_TAB_TWIDDLE, n, f64, 0, &tw);
    if (rc)
        return rc;
    cl_int lg = s_log2(n), cdir = dir;
    cl_uint cn = n;
    cl_ulong crows = rows;
    s_real_t sc = s_real(scale, f64);
    size_t lbytes = 2 * (size_t)n * s_csize(f64);
    if (gq_cl_fft_rows(c->cl)) {
        cl_mem tmp = dst;
        if (lg > 2 && (rc = gq_cl_dsp_scratch(c, (size_t)rows * n * s_csize(f64), &tmp)))
            return rc;
        gq_cl_arg_t args[] = {GQ_CL_ARG(src),  GQ_CL_ARG(dst),  GQ_CL_ARG(tmp),
                              GQ_CL_ARG(tw.a), GQ_CL_ARG(cn),   GQ_CL_ARG(lg),
                              GQ_CL_ARG(cdir), s_real_arg(&sc), GQ_CL_ARG(crows)};
        /* Small work-groups: rows spread over every core (a work-group runs on one). */
        return gq_cl_dsp_launch_local(c, GQ_DK_FFT_ROWS, f64, args, 9,
                                      (size_t)((rows + S_ROWS_LOCAL - 1) / S_ROWS_LOCAL),
                                      S_ROWS_LOCAL);
    }
    if (lbytes <= gq_cl_local_mem(c->cl) && n <= S_LOCAL_MAX_N) {
        gq_cl_arg_t args[] = {GQ_CL_ARG(src),  GQ_CL_ARG(dst),   GQ_CL_ARG(tw.a),
                              GQ_CL_ARG(cn),   GQ_CL_ARG(lg),    GQ_CL_ARG(cdir),
                              s_real_arg(&sc), GQ_CL_ARG(crows), {lbytes, NULL}};
        size_t local = n / 2 < S_LOCAL_FFT ? n / 2 : S_LOCAL_FFT;
        size_t groups = rows < 65536 ? (size_t)rows : 65536;
        return gq_cl_dsp_launch_local(c, GQ_DK_FFT_LOCAL, f64, args, 9, groups, local);
    }
    /* A launch per pass, ping-ponging so that the last pass lands in dst. */
    int npass = (lg + 1) / 2;
    cl_mem tmp = NULL;
    if (npass > 1 && (rc = gq_cl_dsp_scratch(c, (size_t)rows * n * s_csize(f64), &tmp)))
        return rc;
    cl_uint Ns = 1;
    cl_mem from = src;
    s_real_t one = s_real(1.0, f64);
    for (int p = 0; p < npass && !rc; p++) {
        cl_int R = (p == 0 && (lg & 1)) ? 2 : 4;
        cl_mem to = ((npass - 1 - p) % 2 == 0) ? dst : tmp;
        cl_ulong total = rows * (n / (uint32_t)R);
        gq_cl_arg_t args[] = {GQ_CL_ARG(from), GQ_CL_ARG(to),
                              GQ_CL_ARG(tw.a), GQ_CL_ARG(cn),
                              GQ_CL_ARG(Ns),   GQ_CL_ARG(R),
                              GQ_CL_ARG(cdir), s_real_arg(p == npass - 1 ? &sc : &one),
                              GQ_CL_ARG(total)};
        rc = gq_cl_dsp_launch(c, GQ_DK_FFT_PASS, f64, args, 9, 0, (size_t)total);
        Ns *= (cl_uint)R;
        from = to;
    }
    return rc;
}

static gq_status s_chirp_mul(const gq_cl_dsp_ctx_t *c, cl_mem src, cl_ulong sl, cl_mem dst,
                             cl_ulong dl, cl_mem w, cl_ulong n, uint64_t rows, double scale,
                             bool f64)
{
    cl_ulong total = rows * dl;
    s_real_t sc = s_real(scale, f64);
    gq_cl_arg_t args[] = {GQ_CL_ARG(src), GQ_CL_ARG(sl), GQ_CL_ARG(dst),   GQ_CL_ARG(dl),
                          GQ_CL_ARG(w),   GQ_CL_ARG(n),  GQ_CL_ARG(total), s_real_arg(&sc)};
    return gq_cl_dsp_launch(c, GQ_DK_CHIRP_MUL, f64, args, 8, 0, (size_t)total);
}

/* Bluestein: x_k w_k, convolved with conj(w) by power-of-two FFTs, times w_m. */
static gq_status s_fft_bluestein(const gq_cl_dsp_ctx_t *c, cl_mem src, cl_mem dst, uint32_t n,
                                 uint64_t rows, int dir, double scale, bool f64)
{
    s_entry_t ch;
    gq_status rc = s_table(c, S_TAB_CHIRP, n, f64, dir, &ch);
    if (rc)
        return rc;
    uint32_t M = 1u << s_log2(2ull * n - 1);
    cl_mem a, f;
    size_t nb = (size_t)rows * M * s_csize(f64);
    if ((rc = gq_cl_dsp_scratch(c, nb, &a)) || (rc = gq_cl_dsp_scratch(c, nb, &f)))
        return rc;
    if ((rc = s_chirp_mul(c, src, n, a, M, ch.a, n, rows, 1.0, f64)) ||
        (rc = s_fft_pow2(c, a, f, M, rows, -1, 1.0, f64)))
        return rc;
    cl_ulong cm = M, total = rows * M;
    gq_cl_arg_t args[] = {GQ_CL_ARG(f), GQ_CL_ARG(ch.b), GQ_CL_ARG(cm), GQ_CL_ARG(total)};
    if ((rc = gq_cl_dsp_launch(c, GQ_DK_SPEC_MUL, f64, args, 4, 0, (size_t)total)) ||
        (rc = s_fft_pow2(c, f, a, M, rows, 1, 1.0, f64)))
        return rc;
    return s_chirp_mul(c, a, M, dst, n, ch.a, n, rows, scale, f64);
}

/* Store modes of gq_dsp_fft_store. */
enum { S_STORE_COMPLEX = 0, S_STORE_REAL = 1, S_STORE_HALF = 2 };

static gq_status s_store(const gq_cl_dsp_ctx_t *c, cl_mem src, cl_ulong sl, cl_mem dst, cl_ulong dl,
                         uint64_t rows, int mode, double scale, bool f64)
{
    cl_ulong total = rows * dl;
    cl_int ro = mode;
    s_real_t sc = s_real(scale, f64);
    gq_cl_arg_t args[] = {GQ_CL_ARG(src),   GQ_CL_ARG(sl), GQ_CL_ARG(dst), GQ_CL_ARG(dl),
                          GQ_CL_ARG(total), GQ_CL_ARG(ro), s_real_arg(&sc)};
    if (!total)
        return GQ_OK;
    return gq_cl_dsp_launch(c, GQ_DK_FFT_STORE, f64, args, 7, 0, (size_t)total);
}

/* rows complex transforms of n points from src to dst (different buffers), scaled. */
static gq_status s_fft_rows(const gq_cl_dsp_ctx_t *c, cl_mem src, cl_mem dst, uint64_t n,
                            uint64_t rows, int dir, double scale, bool f64)
{
    if (!rows || !n)
        return GQ_OK;
    if (n == 1)
        return s_store(c, src, 1, dst, 1, rows, S_STORE_COMPLEX, scale, f64);
    if (s_pow2(n))
        return s_fft_pow2(c, src, dst, (uint32_t)n, rows, dir, scale, f64);
    return s_fft_bluestein(c, src, dst, (uint32_t)n, rows, dir, scale, f64);
}

/* ---- fft, ifft, rfft, irfft ---- */

/* numpy's factor for norm on a forward or inverse transform of n points. */
static double s_norm_scale(const gq_args_t *a, bool inverse, int64_t n)
{
    const char *norm = gq_args_str(a, "norm");
    if (!strcmp(norm, "ortho"))
        return 1.0 / sqrt((double)n);
    bool forward_norm = !strcmp(norm, "forward");
    return forward_norm != inverse ? 1.0 / (double)n : 1.0;
}

static bool s_is_cplx(int dt)
{
    return dt == GQ_C64 || dt == GQ_C128;
}

static bool s_is_f64(int dt)
{
    return dt == GQ_F64 || dt == GQ_C128;
}

static int64_t s_rows(const gq_tdesc_t *d)
{
    int64_t r = 1;
    for (int i = 0; i + 1 < d->ndim; i++)
        r *= d->shape[i];
    return r;
}

/* Input rows (real or complex, length m) as complex rows of n in fresh scratch. */
static gq_status s_load(const gq_cl_dsp_ctx_t *c, cl_mem src, bool cplx, uint64_t m, uint64_t n,
                        uint64_t rows, bool herm, bool f64, cl_mem *out)
{
    gq_status rc = gq_cl_dsp_scratch(c, (size_t)(rows * n) * s_csize(f64), out);
    cl_ulong cm = m, cn = n, total = rows * n;
    cl_int ci = cplx, ch = herm;
    if (rc || !total)
        return rc;
    gq_cl_arg_t args[] = {GQ_CL_ARG(src), GQ_CL_ARG(ci),    GQ_CL_ARG(cm), GQ_CL_ARG(*out),
                          GQ_CL_ARG(cn),  GQ_CL_ARG(total), GQ_CL_ARG(ch)};
    return gq_cl_dsp_launch(c, GQ_DK_FFT_LOAD, f64, args, 7, 0, (size_t)total);
}

/* rfft of even n: a transform of the n/2 sample pairs, then the split into n/2+1 bins. */
static gq_status s_rfft_half(const gq_cl_dsp_ctx_t *c, cl_mem x, uint64_t m, uint64_t n,
                             uint64_t rows, double scale, bool f64, cl_mem y)
{
    uint64_t h = n / 2;
    size_t nb = (size_t)(rows * h) * s_csize(f64);
    cl_mem pairs, spec;
    s_entry_t tw;
    gq_status rc;
    if ((rc = s_table(c, S_TAB_TWIDDLE, (uint32_t)n, f64, 0, &tw)) ||
        (rc = gq_cl_dsp_scratch(c, nb, &pairs)) || (rc = gq_cl_dsp_scratch(c, nb, &spec)))
        return rc;
    cl_ulong cm = m, ch = h, total = rows * h, cn = n, ts = rows * (h + 1);
    s_real_t sc = s_real(scale, f64);
    gq_cl_arg_t pa[] = {GQ_CL_ARG(x), GQ_CL_ARG(cm), GQ_CL_ARG(pairs), GQ_CL_ARG(ch),
                        GQ_CL_ARG(total)};
    gq_cl_arg_t sa[] = {GQ_CL_ARG(spec), GQ_CL_ARG(tw.a), GQ_CL_ARG(y),
                        GQ_CL_ARG(cn),   GQ_CL_ARG(ts),   s_real_arg(&sc)};
    if ((rc = gq_cl_dsp_launch(c, GQ_DK_RFFT_PAIRS, f64, pa, 5, 0, (size_t)total)) ||
        (rc = s_fft_rows(c, pairs, spec, h, rows, -1, 1.0, f64)))
        return rc;
    return gq_cl_dsp_launch(c, GQ_DK_RFFT_SPLIT, f64, sa, 6, 0, (size_t)ts);
}

/* irfft of even n: the bins packed into n/2 complex values whose inverse transform holds
 * the even samples in its real parts and the odd ones in its imaginary parts. */
static gq_status s_irfft_half(const gq_cl_dsp_ctx_t *c, cl_mem x, bool cplx, uint64_t m, uint64_t n,
                              uint64_t rows, double scale, bool f64, cl_mem y)
{
    uint64_t h = n / 2;
    size_t nb = (size_t)(rows * h) * s_csize(f64);
    cl_mem packed, z;
    s_entry_t tw;
    gq_status rc;
    if ((rc = s_table(c, S_TAB_TWIDDLE, (uint32_t)n, f64, 0, &tw)) ||
        (rc = gq_cl_dsp_scratch(c, nb, &packed)) || (rc = gq_cl_dsp_scratch(c, nb, &z)))
        return rc;
    cl_int ci = cplx;
    cl_ulong cm = m, cn = n, total = rows * h;
    gq_cl_arg_t pa[] = {GQ_CL_ARG(x),      GQ_CL_ARG(ci), GQ_CL_ARG(cm),   GQ_CL_ARG(tw.a),
                        GQ_CL_ARG(packed), GQ_CL_ARG(cn), GQ_CL_ARG(total)};
    if ((rc = gq_cl_dsp_launch(c, GQ_DK_IRFFT_PACK, f64, pa, 7, 0, (size_t)total)) ||
        (rc = s_fft_rows(c, packed, z, h, rows, 1, 1.0, f64)))
        return rc;
    return s_store(c, z, h, y, h, rows, S_STORE_COMPLEX, scale, f64);
}

static gq_status s_op_fft(gq_cl_dsp_ctx_t *c, const gq_tdesc_t *in, cl_mem *mi,
                          const gq_tdesc_t *out, cl_mem *mo)
{
    const char *name = c->op + 4;
    const gq_tdesc_t *d = &in[0], *o = &out[0];
    bool cplx = s_is_cplx(d->dtype), f64 = s_is_f64(d->dtype);
    bool inverse = !strcmp(name, "ifft") || !strcmp(name, "irfft");
    uint64_t m = (uint64_t)d->shape[d->ndim - 1], rows = (uint64_t)s_rows(d);
    uint64_t n = (uint64_t)o->shape[o->ndim - 1];
    if (!strcmp(name, "rfft"))
        n = gq_args_int(c->a, "n") ? (uint64_t)gq_args_int(c->a, "n") : m;
    if (!rows || !n)
        return GQ_OK;
    double sc = s_norm_scale(c->a, inverse, (int64_t)n);
    int dir = inverse ? 1 : -1;
    cl_mem src = mi[0], spec;
    gq_status rc = GQ_OK;
    if (!strcmp(name, "fft") || !strcmp(name, "ifft")) {
        if (!(cplx && m == n) && (rc = s_load(c, mi[0], cplx, m, n, rows, false, f64, &src)))
            return rc;
        return s_fft_rows(c, src, mo[0], n, rows, dir, sc, f64);
    }
    bool herm = !strcmp(name, "irfft");
    if (n % 2 == 0)
        return herm ? s_irfft_half(c, mi[0], cplx, m, n, rows, sc, f64, mo[0])
                    : s_rfft_half(c, mi[0], m, n, rows, sc, f64, mo[0]);
    if ((rc = s_load(c, mi[0], cplx, m, n, rows, herm, f64, &src)) ||
        (rc = gq_cl_dsp_scratch(c, (size_t)(rows * n) * s_csize(f64), &spec)) ||
        (rc = s_fft_rows(c, src, spec, n, rows, dir, 1.0, f64)))
        return rc;
    uint64_t dl = herm ? n : n / 2 + 1;
    return s_store(c, spec, n, mo[0], dl, rows, herm ? S_STORE_REAL : S_STORE_HALF, sc, f64);
}

/* ---- stft, spectrogram, istft ---- */

/* The window of win_length centred in n_fft (zeros around) in the signal's precision, as
 * the CPU framer holds it, uploaded to scratch. */
static gq_status s_frame_window(const gq_cl_dsp_ctx_t *c, const gq_dsp_stft_t *g, bool f64,
                                cl_mem *out)
{
    int64_t n = g->n_fft, wlo = (n - g->win_length) / 2;
    size_t es = f64 ? sizeof(double) : sizeof(float);
    double *w = malloc((size_t)g->win_length * sizeof *w + 1);
    char *fw = calloc((size_t)n, es);
    gq_status rc = GQ_ENOMEM;
    if (w && fw) {
        gq_dsp_window_fill(g->window, g->beta, true, g->win_length, w);
        for (int64_t i = 0; i < g->win_length; i++) {
            if (f64)
                ((double *)fw)[wlo + i] = w[i];
            else
                ((float *)fw)[wlo + i] = (float)w[i];
        }
        rc = gq_cl_dsp_scratch(c, (size_t)n * es, out);
        if (!rc)
            rc = gq_cl_write(c->cl, c->st, *out, fw, (size_t)n * es, c->op, c->err, c->errlen);
    } else {
        gq_errf(c->err, c->errlen, "%s: opencl: out of memory for a window of %lld", c->op,
                (long long)n);
    }
    free(w);
    free(fw);
    return rc;
}

gq_status gq_cl_fft_stft(const gq_cl_dsp_ctx_t *c, const gq_dsp_stft_t *gp, bool f64, cl_mem x,
                         double power, cl_mem y)
{
    gq_dsp_stft_t g = *gp;
    gq_status rc;
    bool spec = power > 0;
    uint64_t rows = (uint64_t)(g.batch * g.n_frames), n = (uint64_t)g.n_fft;
    if (!rows)
        return GQ_OK;
    /* Even n_fft: a transform of n/2 sample pairs and a split pass (half the work). */
    cl_int half = n % 2 == 0;
    uint64_t tl = half ? n / 2 : n;
    cl_mem w, frames, f;
    s_entry_t tw = {0};
    size_t nb = (size_t)(rows * tl) * s_csize(f64);
    if ((rc = s_frame_window(c, &g, f64, &w)) || (rc = gq_cl_dsp_scratch(c, nb, &frames)) ||
        (rc = gq_cl_dsp_scratch(c, nb, &f)) ||
        (half && (rc = s_table(c, S_TAB_TWIDDLE, (uint32_t)n, f64, 0, &tw))))
        return rc;
    cl_ulong len = (cl_ulong)g.len, cn = n, nt = (cl_ulong)g.n_frames, hop = (cl_ulong)g.hop;
    cl_ulong pad = g.center ? n / 2 : 0, wlo = (n - (uint64_t)g.win_length) / 2;
    cl_ulong whi = wlo + (cl_ulong)g.win_length, crows = rows;
    cl_int reflect = g.reflect;
    gq_cl_arg_t fa[] = {GQ_CL_ARG(x),   GQ_CL_ARG(w),   GQ_CL_ARG(frames),  GQ_CL_ARG(len),
                        GQ_CL_ARG(cn),  GQ_CL_ARG(nt),  GQ_CL_ARG(hop),     GQ_CL_ARG(pad),
                        GQ_CL_ARG(wlo), GQ_CL_ARG(whi), GQ_CL_ARG(reflect), GQ_CL_ARG(crows),
                        GQ_CL_ARG(half)};
    if ((rc = gq_cl_dsp_launch(c, GQ_DK_STFT_FRAMES, f64, fa, 13, 0, (size_t)rows)) ||
        (rc = s_fft_rows(c, frames, f, tl, rows, -1, 1.0, f64)))
        return rc;
    cl_int kind = !spec ? 0 : power == 2.0 ? 1 : 2;
    s_real_t pw = s_real(power, false);
    cl_ulong nfreq = (cl_ulong)g.n_freq;
    cl_mem twm = half ? tw.a : f;
    gq_cl_arg_t oa[] = {GQ_CL_ARG(f),     GQ_CL_ARG(twm), GQ_CL_ARG(y),    GQ_CL_ARG(cn),
                        GQ_CL_ARG(nfreq), GQ_CL_ARG(nt),  GQ_CL_ARG(kind), s_acc_arg(c, &pw),
                        GQ_CL_ARG(crows), GQ_CL_ARG(half)};
    return gq_cl_dsp_launch(c, GQ_DK_STFT_OUT, f64, oa, 10, 0, (size_t)rows);
}

static gq_status s_op_stft(gq_cl_dsp_ctx_t *c, const gq_tdesc_t *in, cl_mem *mi,
                           const gq_tdesc_t *out, cl_mem *mo)
{
    (void)out;
    gq_dsp_stft_t g;
    gq_status rc = gq_dsp_stft_geom(c->a, &in[0], &g, c->err, c->errlen);
    if (rc)
        return rc;
    double power = !strcmp(c->op, "dsp.spectrogram") ? gq_args_float(c->a, "power") : 0.0;
    return gq_cl_fft_stft(c, &g, in[0].dtype == GQ_F64, mi[0], power, mo[0]);
}

static gq_status s_op_istft(gq_cl_dsp_ctx_t *c, const gq_tdesc_t *in, cl_mem *mi,
                            const gq_tdesc_t *out, cl_mem *mo)
{
    (void)out;
    gq_dsp_stft_t g;
    gq_status rc = gq_dsp_istft_geom(c->a, &in[0], &g, c->err, c->errlen);
    if (rc)
        return rc;
    bool f64 = in[0].dtype == GQ_C128;
    uint64_t n = (uint64_t)g.n_fft, rows = (uint64_t)(g.batch * g.n_frames);
    int64_t start = g.center ? (int64_t)n / 2 : 0;
    int64_t full = (int64_t)n + g.hop * (g.n_frames - 1);
    int64_t keep = start + g.len < full ? start + g.len : full;
    int64_t nbins = g.onesided ? (int64_t)n / 2 + 1 : (int64_t)n;
    int64_t used = g.in_freq < nbins ? g.in_freq : nbins;
    cl_ulong total = (cl_ulong)(g.batch * g.len);
    if (!total)
        return GQ_OK;
    cl_mem spec = mi[0], fr = mi[0], w;
    size_t nb = (size_t)(rows * n) * s_csize(f64);
    if (rows && ((rc = gq_cl_dsp_scratch(c, nb, &spec)) || (rc = gq_cl_dsp_scratch(c, nb, &fr))))
        return rc;
    cl_ulong nin = (cl_ulong)g.in_freq, nt = (cl_ulong)g.n_frames, cn = n, cu = (cl_ulong)used;
    cl_ulong lt = rows * n;
    cl_int one = g.onesided;
    gq_cl_arg_t ia[] = {GQ_CL_ARG(mi[0]), GQ_CL_ARG(spec), GQ_CL_ARG(nin), GQ_CL_ARG(nt),
                        GQ_CL_ARG(cn),    GQ_CL_ARG(cu),   GQ_CL_ARG(one), GQ_CL_ARG(lt)};
    if (rows && ((rc = gq_cl_dsp_launch(c, GQ_DK_ISTFT_IN, f64, ia, 8, 0, (size_t)lt)) ||
                 (rc = s_fft_rows(c, spec, fr, n, rows, 1, 1.0, f64))))
        return rc;
    double *wd = malloc((size_t)g.win_length * sizeof *wd + 1);
    if (!wd) {
        gq_errf(c->err, c->errlen, "%s: opencl: out of memory for a window", c->op);
        return GQ_ENOMEM;
    }
    gq_dsp_window_fill(g.window, g.beta, true, g.win_length, wd);
    rc = gq_cl_dsp_upload_acc(c, wd, (size_t)g.win_length, &w);
    free(wd);
    if (rc)
        return rc;
    cl_ulong len = (cl_ulong)g.len, hop = (cl_ulong)g.hop, cs = (cl_ulong)start;
    cl_ulong ck = (cl_ulong)keep, wlo = (n - (uint64_t)g.win_length) / 2;
    cl_ulong whi = wlo + (cl_ulong)g.win_length;
    s_real_t scale = s_real(1.0 / (double)n, false), tiny = s_real(f64 ? DBL_MIN : FLT_MIN, false);
    gq_cl_arg_t oa[] = {
        GQ_CL_ARG(fr),  GQ_CL_ARG(w),         GQ_CL_ARG(mo[0]),    GQ_CL_ARG(len),  GQ_CL_ARG(cn),
        GQ_CL_ARG(nt),  GQ_CL_ARG(hop),       GQ_CL_ARG(cs),       GQ_CL_ARG(ck),   GQ_CL_ARG(wlo),
        GQ_CL_ARG(whi), s_acc_arg(c, &scale), s_acc_arg(c, &tiny), GQ_CL_ARG(total)};
    return gq_cl_dsp_launch(c, GQ_DK_ISTFT_OLA, f64, oa, 14, 0, (size_t)total);
}

/* ---- db ---- */

static gq_status s_op_db(gq_cl_dsp_ctx_t *c, const gq_tdesc_t *in, cl_mem *mi,
                         const gq_tdesc_t *out, cl_mem *mo)
{
    (void)out;
    const gq_tdesc_t *d = &in[0];
    const char *mode = gq_args_str(c->a, "mode");
    cl_int md = !strcmp(mode, "power_to_db")       ? 0
                : !strcmp(mode, "amplitude_to_db") ? 1
                : !strcmp(mode, "db_to_power")     ? 2
                                                   : 3;
    double ref = gq_args_float(c->a, "ref"), amin = gq_args_float(c->a, "amin");
    double top_db = gq_args_float(c->a, "top_db");
    cl_int ref_max = gq_args_bool(c->a, "ref_max");
    if (amin == 0.0)
        amin = md == 1 ? 1e-5 : 1e-10;
    if (md == 1 || md == 3) /* amplitudes: the power form with ref^2 (and amin^2) */
        ref *= ref;
    if (md == 1)
        amin *= amin;
    int64_t numel = gq_tdesc_numel(d), group = 1;
    for (int i = d->ndim - 1; i >= 0 && i >= d->ndim - 2; i--)
        group *= d->shape[i];
    return gq_cl_fft_db(c, mi[0], mo[0], numel, group, d->dtype == GQ_F64, md, amin, ref, ref_max,
                        top_db);
}

gq_status gq_cl_fft_db(const gq_cl_dsp_ctx_t *c, cl_mem x, cl_mem y, int64_t numel, int64_t group,
                       bool f64, cl_int md, double amin, double ref, cl_int ref_max, double top_db)
{
    if (!numel)
        return GQ_OK;
    s_real_t ra = s_real(amin, false), rr = s_real(ref, false), rt = s_real(top_db, false);
    cl_ulong cg = (cl_ulong)group, n = (cl_ulong)numel;
    cl_mem cst = x;
    gq_status rc;
    if (md < 2) {
        size_t groups = (size_t)(numel / group);
        if ((rc = gq_cl_dsp_scratch(c, groups * 2 * gq_cl_dsp_acc_size(c->cl), &cst)))
            return rc;
        gq_cl_arg_t ma[] = {GQ_CL_ARG(x),       GQ_CL_ARG(cst),    GQ_CL_ARG(cg),
                            GQ_CL_ARG(md),      s_acc_arg(c, &ra), s_acc_arg(c, &rr),
                            GQ_CL_ARG(ref_max), s_acc_arg(c, &rt)};
        if ((rc = gq_cl_dsp_launch(c, GQ_DK_DB_MAX, f64, ma, 8, groups, (size_t)group)))
            return rc;
    }
    gq_cl_arg_t da[] = {GQ_CL_ARG(x),  GQ_CL_ARG(cst), GQ_CL_ARG(y),      GQ_CL_ARG(n),
                        GQ_CL_ARG(cg), GQ_CL_ARG(md),  s_acc_arg(c, &ra), s_acc_arg(c, &rr)};
    return gq_cl_dsp_launch(c, GQ_DK_DB, f64, da, 8, 0, (size_t)n);
}

/* ---- fir by overlap-save ---- */

#define S_OLS_MAX_N ((uint64_t)1 << 22)
#define S_OLS_MAX_BYTES ((uint64_t)1 << 30) /* both block buffers */

/* The transform size with the least work per output for K taps and about n outputs (the
 * CPU's rule, cpu_dsp_filter.c); 0 when K is too long. */
static uint64_t s_ols_size(uint64_t K, uint64_t n)
{
    uint64_t best = 0;
    double best_cost = 0;
    for (uint64_t N = 8; N <= S_OLS_MAX_N; N *= 2) {
        if (N < 2 * K)
            continue;
        double cost = (double)N * (log2((double)N) + 1.0) / (double)(N - K + 1);
        if (!best || cost < best_cost)
            best = N, best_cost = cost;
        if (N >= n + K)
            break;
    }
    return best;
}

/* The taps' spectrum over N points, divided by N (the inverse's normalisation), in double
 * by FFTW on the host, uploaded as run scratch. */
static gq_status s_taps_spectrum(const gq_cl_dsp_ctx_t *c, const double *h, uint64_t K, uint64_t N,
                                 cl_mem *out)
{
    double *hb = gq_fft_alloc((size_t)N * 2 * sizeof *hb);
    double *hs = gq_fft_alloc((size_t)N * 2 * sizeof *hs);
    const gq_fft_plan_t *plan = gq_fft_plan(GQ_FFT_C2C_FWD, (size_t)N, true);
    gq_status rc = GQ_ENOMEM;
    if (hb && hs && plan) {
        memset(hb, 0, (size_t)N * 2 * sizeof *hb);
        for (uint64_t k = 0; k < K; k++)
            hb[2 * k] = h[k];
        gq_fft_exec(plan, hb, hs);
        for (uint64_t i = 0; i < 2 * N; i++)
            hs[i] /= (double)N;
        rc = s_buffer(c, hs, (size_t)N, true, false, out);
    } else {
        gq_errf(c->err, c->errlen, "%s: opencl: out of memory for a %llu-point taps spectrum",
                c->op, (unsigned long long)N);
    }
    gq_fft_free(hb);
    gq_fft_free(hs);
    return rc;
}

gq_status gq_cl_fft_ols(const gq_cl_dsp_ctx_t *c, const gq_cl_fir_t *f, const double *h)
{
    uint64_t N = s_ols_size(f->K, f->n);
    if (!N)
        return GQ_EUNSUPPORTED;
    uint64_t step = N - f->K + 1, nb = (f->n + step - 1) / step, blocks = f->rows * nb;
    size_t nbytes = (size_t)(blocks * N) * s_csize(true);
    if (2 * (uint64_t)nbytes > S_OLS_MAX_BYTES || N > S_MAX_N)
        return GQ_EUNSUPPORTED;
    cl_mem hs, s, fr;
    gq_status rc;
    if ((rc = s_taps_spectrum(c, h, f->K, N, &hs)) || (rc = gq_cl_dsp_scratch(c, nbytes, &s)) ||
        (rc = gq_cl_dsp_scratch(c, nbytes, &fr)))
        return rc;
    cl_ulong len = f->T, cN = N, cnb = nb, cstep = step, total = blocks * N, cK = f->K;
    cl_long first = (cl_long)f->j0 - (cl_long)(f->K - 1);
    gq_cl_arg_t sa[] = {GQ_CL_ARG(f->x), GQ_CL_ARG(s),     GQ_CL_ARG(len),   GQ_CL_ARG(cN),
                        GQ_CL_ARG(cnb),  GQ_CL_ARG(cstep), GQ_CL_ARG(first), GQ_CL_ARG(total)};
    gq_cl_arg_t ma[] = {GQ_CL_ARG(fr), GQ_CL_ARG(hs), GQ_CL_ARG(cN), GQ_CL_ARG(total)};
    if ((rc = gq_cl_dsp_launch(c, GQ_DK_OLS_SEG, f->f64, sa, 8, 0, (size_t)total)) ||
        (rc = s_fft_rows(c, s, fr, N, blocks, -1, 1.0, true)) ||
        (rc = gq_cl_dsp_launch(c, GQ_DK_SPEC_MUL, true, ma, 4, 0, (size_t)total)) ||
        (rc = s_fft_rows(c, fr, s, N, blocks, 1, 1.0, true)))
        return rc;
    cl_ulong ot = f->rows * f->n, cn = f->n;
    cl_int stream = f->stream, has_zi = f->has_zi;
    gq_cl_arg_t oa[] = {GQ_CL_ARG(s),     GQ_CL_ARG(f->y),   GQ_CL_ARG(ot),    GQ_CL_ARG(len),
                        GQ_CL_ARG(cK),    GQ_CL_ARG(cn),     GQ_CL_ARG(cN),    GQ_CL_ARG(cnb),
                        GQ_CL_ARG(cstep), GQ_CL_ARG(stream), GQ_CL_ARG(f->zi), GQ_CL_ARG(has_zi),
                        GQ_CL_ARG(f->zf)};
    return gq_cl_dsp_launch(c, GQ_DK_OLS_OUT, f->f64, oa, 13, 0, (size_t)ot);
}

/* ---- table ---- */

static bool s_real_ok(const gq_cl_t *cl, int dt)
{
    return dt == GQ_F32 || (dt == GQ_F64 && gq_cl_fp64(cl));
}

static bool s_any_ok(const gq_cl_t *cl, int dt)
{
    return s_real_ok(cl, dt) || dt == GQ_C64 || (dt == GQ_C128 && gq_cl_fp64(cl));
}

/* Transform lengths the kernels index with uint (with Bluestein's doubling). */
static bool s_len_ok(int64_t n)
{
    return n >= 0 && n <= S_MAX_N;
}

bool gq_cl_fft_supports(const gq_cl_t *cl, const gq_args_t *a, const gq_tdesc_t *in, int nin)
{
    static const char *const ops[] = {"fft",         "ifft",  "rfft", "irfft", "stft",
                                      "spectrogram", "istft", "db",   NULL};
    const char *name = a->op->name + 4;
    int i = 0;
    while (ops[i] && strcmp(ops[i], name))
        i++;
    if (!ops[i])
        return false;
    if (!in)
        return true;
    if (nin != 1 || in[0].ndim < 1)
        return false;
    int dt = in[0].dtype;
    int64_t m = in[0].shape[in[0].ndim - 1], n = gq_args_int(a, "n");
    if (!strcmp(name, "fft") || !strcmp(name, "ifft"))
        return s_any_ok(cl, dt) && s_len_ok(n ? n : m);
    if (!strcmp(name, "rfft"))
        return s_real_ok(cl, dt) && s_len_ok(n ? n : m);
    if (!strcmp(name, "irfft"))
        return s_any_ok(cl, dt) && s_len_ok(n ? n : 2 * (m - 1));
    if (!strcmp(name, "istft"))
        return dt == GQ_C64 || (dt == GQ_C128 && gq_cl_fp64(cl));
    return s_real_ok(cl, dt);
}

gq_status gq_cl_fft_run(gq_cl_dsp_ctx_t *c, const gq_tdesc_t *in, cl_mem *mi, int nin,
                        const gq_tdesc_t *out, cl_mem *mo, int nout)
{
    (void)nin, (void)nout;
    const char *name = c->op + 4;
    if (!strcmp(name, "stft") || !strcmp(name, "spectrogram"))
        return s_op_stft(c, in, mi, out, mo);
    if (!strcmp(name, "istft"))
        return s_op_istft(c, in, mi, out, mo);
    if (!strcmp(name, "db"))
        return s_op_db(c, in, mi, out, mo);
    return s_op_fft(c, in, mi, out, mo);
}
