/* Every op every non-CPU backend claims, against the CPU backend (ggml's test-backend-ops
 * is the model): for each op of the op table and each dtype it takes, the backend is
 * asked (supports_op); what it accepts runs on random and edge shapes (0-size, scalars,
 * broadcasting up to 8 dims, odd and large-ish sizes) and special values (NaN, +-inf,
 * -0, out-of-range for casts), and its outputs are compared with the CPU's under a
 * per-op tolerance. One line per op and backend with the largest error seen.
 *
 * Errors are normalised: elementwise ops by the largest |reference| of the case;
 * sums and means by sum(|x|) (mean: by its mean) along the reduced axis, the scale of
 * their rounding error. Integer results and exact float ops must match bit for bit
 * (tolerance 0). Float sums: the CPU accumulates f32 in double and f64 with Neumaier's
 * compensation, 4 lanes when the axis is contiguous; the OpenCL kernels accumulate in
 * the same precision in another order (per work-item, then a tree), so they differ by
 * rounding only.
 *
 * dsp ops: signals, coefficients (stable IIR sections), states, lengths 1, primes, powers
 * of two on both FFT paths (the OpenCL backend's transforms are tested again on a second
 * backend forced onto its other path, GQ_CL_FFT), every param that changes the kernel's
 * work; NaN/inf on the signal only. Tolerances per op in s_tolerance (f32 on a device
 * without fp64 separately). Transforms compare NaN and inf as one class, and a row the
 * reference has non-finite may be non-finite anywhere (FFTW keeps a promoted real row's DC
 * imaginary part at 0 where a chirp-z smears the NaN).
 *
 * usage: test_backend_ops [--device NAME|INDEX] [--platform NAME|INDEX] [--op PREFIX]
 *                         [--vk-device NAME|INDEX] [--backend NAME] [--seed N] [-v]
 *        (env GQ_CL_DEVICE, GQ_CL_PLATFORM, GQ_VK_DEVICE, GQ_TEST_BACKEND too; --backend
 *        tests one backend, else every one that starts)
 * Exits 77 (skipped) when no backend other than the CPU can start. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend.h"
#include "half.h"
#include "optable.h"
#include "util.h"
#ifdef GQ_HAVE_OPENCL
#include "opencl.h"
#endif
#ifdef GQ_HAVE_VULKAN
#include "gq_vulkan.h"
#endif

#define S_MAX_CASES 160
#define S_MAX_BACKENDS 4

static uint64_t s_seed = 0x9e3779b97f4a7c15u;
static uint64_t s_rng;
static int s_verbose;

static uint64_t s_next(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

static double s_unif(double lo, double hi)
{
    return lo + (hi - lo) * ((double)(s_next() >> 11) / 9007199254740992.0);
}

static int s_randint(int lo, int hi)
{
    return lo + (int)(s_next() % (uint64_t)(hi - lo + 1));
}

/* ---- cases ---- */

/* How an input is filled: random in [lo, hi] (specials on input 0 only), or coefficients
 * that keep an IIR filter stable (sos sections with poles inside the unit circle; an a
 * vector with sum |a[1:]| < |a[0]|), or zeros. */
enum { S_FILL_RANDOM = 0, S_FILL_SOS, S_FILL_STABLE_A, S_FILL_ZERO, S_FILL_CLEAN };

#define S_MAX_IN 4
#define S_MAX_P 20

typedef struct {
    gq_tdesc_t in[S_MAX_IN];
    int fill[S_MAX_IN];
    int nin;
    gq_param_t p[S_MAX_P];
    int np;
    int specials;  /* sprinkle NaN, +-inf, -0 (floats), or extreme values */
    double lo, hi; /* value range of random inputs */
} s_case_t;

static gq_tdesc_t s_desc(int dt, int ndim, const int64_t *shape)
{
    gq_tdesc_t d;
    memset(&d, 0, sizeof d);
    d.dtype = dt;
    d.ndim = ndim;
    for (int i = 0; i < ndim; i++)
        d.shape[i] = shape[i];
    return d;
}

#define S_SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define S_ND(...) ((int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define S_D(dt, ...) s_desc(dt, S_ND(__VA_ARGS__), S_SHAPE(__VA_ARGS__))

static const gq_tdesc_t *s_unary_shapes(int dt, int *n)
{
    static gq_tdesc_t sh[16];
    int k = 0;
    sh[k++] = s_desc(dt, 0, NULL);
    sh[k++] = S_D(dt, 0);
    sh[k++] = S_D(dt, 1);
    sh[k++] = S_D(dt, 7);
    sh[k++] = S_D(dt, 3, 0, 2);
    sh[k++] = S_D(dt, 3, 5);
    sh[k++] = S_D(dt, 17, 33);
    sh[k++] = S_D(dt, 2, 3, 4, 5);
    sh[k++] = S_D(dt, 64, 1031);
    sh[k++] = S_D(dt, 1000, 3);
    sh[k++] = S_D(dt, 2, 513);
    sh[k++] = S_D(dt, (1 << 18) + 3);
    sh[k++] = S_D(dt, 1, 2, 1, 3, 1, 2, 2, 3);
    *n = k;
    return sh;
}

static void s_param_f(s_case_t *c, const char *name, double v)
{
    c->p[c->np].name = name;
    c->p[c->np].v.type = GQ_PT_FLOAT;
    c->p[c->np].v.f = v;
    c->np++;
}

static void s_param_i(s_case_t *c, const char *name, int64_t v)
{
    c->p[c->np].name = name;
    c->p[c->np].v.type = GQ_PT_INT;
    c->p[c->np].v.i = v;
    c->np++;
}

static void s_param_b(s_case_t *c, const char *name, int v)
{
    c->p[c->np].name = name;
    c->p[c->np].v.type = GQ_PT_BOOL;
    c->p[c->np].v.i = v;
    c->np++;
}

static void s_param_s(s_case_t *c, const char *name, const char *v)
{
    c->p[c->np].name = name;
    c->p[c->np].v.type = GQ_PT_STR;
    c->p[c->np].v.s = v;
    c->np++;
}

static void s_range(s_case_t *c, int dt)
{
    switch (dt) {
    case GQ_I32:
        c->lo = -2147483648.0, c->hi = 2147483647.0;
        break;
    case GQ_I16:
        c->lo = -32768, c->hi = 32767;
        break;
    case GQ_U8:
        c->lo = 0, c->hi = 255;
        break;
    default:
        c->lo = -10, c->hi = 10;
    }
}

/* Cases of the tensor.* ops for dtype dt; returns the count. */
static int s_cases_tensor(const gq_op_spec_t *op, int dt, s_case_t *cs, int max)
{
    const char *name = op->name + strlen("tensor.");
    int n = 0, ns;
    const gq_tdesc_t *sh = s_unary_shapes(dt, &ns);
    if (!strcmp(name, "add") || !strcmp(name, "mul")) {
        static const int64_t pairs[][2][9] = {
            /* {ndim, dims...} x 2 */
            {{0}, {0}},
            {{1, 7}, {1, 7}},
            {{1, 1}, {2, 7, 9}},
            {{0}, {1, 5}},
            {{3, 3, 1, 5}, {2, 4, 5}},
            {{2, 4, 1}, {2, 1, 6}},
            {{2, 0, 3}, {2, 1, 3}},
            {{2, 17, 33}, {2, 17, 33}},
            {{1, 33}, {2, 17, 33}},
            {{2, 64, 1031}, {1, 1031}},
            {{1, 262147}, {1, 262147}},
            {{1, 262147}, {1, 1}},
            {{8, 2, 3, 4, 5, 6, 1, 1, 2}, {7, 3, 1, 5, 6, 7, 1, 2}},
            {{8, 1, 2, 1, 2, 1, 2, 1, 2}, {8, 2, 1, 2, 1, 2, 1, 2, 1}},
        };
        for (size_t i = 0; i < sizeof pairs / sizeof pairs[0] && n < max; i++) {
            for (int sp = 0; sp < 2 && n < max; sp++) {
                s_case_t *c = &cs[n++];
                memset(c, 0, sizeof *c);
                c->nin = 2;
                for (int k = 0; k < 2; k++)
                    c->in[k] = s_desc(dt, (int)pairs[i][k][0], &pairs[i][k][1]);
                s_range(c, dt);
                c->specials = sp;
            }
        }
        return n;
    }
    for (int i = 0; i < ns && n < max; i++) {
        for (int sp = 0; sp < 2 && n < max; sp++) {
            s_case_t *c = &cs[n];
            memset(c, 0, sizeof *c);
            c->nin = 1;
            c->in[0] = sh[i];
            c->specials = sp;
            s_range(c, dt);
            if (!strcmp(name, "scale")) {
                s_param_f(c, "factor", sp ? -0.0 : s_unif(-4, 4));
                s_param_f(c, "offset", sp ? 1e-3 : s_unif(-4, 4));
            } else if (!strcmp(name, "clamp")) {
                double lo = s_unif(-8, 2), hi = lo + s_unif(0, 8);
                if (sp && (i & 1))
                    lo = -INFINITY;
                s_param_f(c, "lo", lo);
                s_param_f(c, "hi", hi);
            } else if (!strcmp(name, "sum") || !strcmp(name, "mean") || !strcmp(name, "max")) {
                int nd = sh[i].ndim;
                if (nd == 0)
                    continue; /* no axis to reduce */
                /* Long contiguous rows (the work-group kernel) and columns both. */
                int64_t axis = sp ? s_randint(-nd, nd - 1) : nd - 1;
                if (!strcmp(name, "max") && sh[i].shape[axis < 0 ? axis + nd : axis] == 0)
                    axis = -1;
                s_param_i(c, "axis", axis);
                s_param_b(c, "keepdims", (int)(s_next() & 1));
            } else if (!strcmp(name, "cast")) {
                static const char *const to[] = {"f32", "f64", "f16", "i16", "i32", "u8"};
                s_param_s(c, "to", to[(i * 2 + sp) % 6]);
                if (dt == GQ_F32 || dt == GQ_F64)
                    c->lo = -3e9, c->hi = 3e9; /* past every int range: saturation */
            }
            n++;
        }
    }
    /* cast: every target from the first few shapes too */
    if (!strcmp(name, "cast")) {
        static const char *const to[] = {"f32", "f64", "f16", "i16", "i32", "u8"};
        for (int t = 0; t < 6 && n < max; t++) {
            s_case_t *c = &cs[n++];
            memset(c, 0, sizeof *c);
            c->nin = 1;
            c->in[0] = S_D(dt, 1031);
            s_range(c, dt);
            if (dt == GQ_F32 || dt == GQ_F64)
                c->lo = -70000, c->hi = 70000;
            c->specials = 1;
            s_param_s(c, "to", to[t]);
        }
    }
    return n;
}

/* A dsp case: signal x of shape sh (specials on it only), params added by the caller. */
static s_case_t *s_dsp_case(s_case_t *cs, int *n, int max, int dt, gq_tdesc_t x, int sp)
{
    if (*n >= max)
        return NULL;
    s_case_t *c = &cs[(*n)++];
    memset(c, 0, sizeof *c);
    c->nin = 1;
    c->in[0] = x;
    c->in[0].dtype = dt;
    c->lo = -1, c->hi = 1;
    c->specials = sp;
    return c;
}

static void s_dsp_input(s_case_t *c, gq_tdesc_t d, int fill)
{
    c->in[c->nin] = d;
    c->fill[c->nin++] = fill;
}

/* A state input: x's batch dims, then tail. */
static gq_tdesc_t s_state(const gq_tdesc_t *x, int dt, int ntail, int64_t t0, int64_t t1)
{
    gq_tdesc_t d = *x;
    d.dtype = dt;
    d.ndim = x->ndim - 1 + ntail;
    d.shape[x->ndim - 1] = t0;
    if (ntail == 2)
        d.shape[x->ndim] = t1;
    return d;
}

/* Signal shapes of the filter ops: length 1, primes, non-powers of two, a large batch. */
static const gq_tdesc_t *s_signal_shapes(int dt, int *n)
{
    static gq_tdesc_t sh[12];
    int k = 0;
    sh[k++] = S_D(dt, 1);
    sh[k++] = S_D(dt, 7);
    sh[k++] = S_D(dt, 97);
    sh[k++] = S_D(dt, 2, 1009);
    sh[k++] = S_D(dt, 3, 2, 256);
    sh[k++] = S_D(dt, 300, 31);
    sh[k++] = S_D(dt, 4099);
    *n = k;
    return sh;
}

static int s_cases_filter(const gq_op_spec_t *op, int dt, s_case_t *cs, int max)
{
    const char *name = op->name + strlen("dsp.");
    int n = 0, ns;
    const gq_tdesc_t *sh = s_signal_shapes(dt, &ns);
    int other = dt == GQ_F32 ? GQ_F64 : GQ_F32; /* coefficients in the other dtype too */
    for (int i = 0; i < ns; i++) {
        for (int sp = 0; sp < 2; sp++) {
            const gq_tdesc_t *x = &sh[i];
            int64_t T = x->shape[x->ndim - 1];
            int cdt = (i + sp) & 1 ? other : dt;
            s_case_t *c = s_dsp_case(cs, &n, max, dt, *x, sp);
            if (!c)
                return n;
            if (!strcmp(name, "fir")) {
                static const int64_t taps[] = {1, 3, 16, 33, 100, 5, 64};
                static const char *const modes[] = {"full", "same", "valid", "stream"};
                static const char *const methods[] = {"auto", "direct", "fft"};
                int64_t K = taps[(i * 2 + sp) % 7];
                const char *mode = modes[(i + sp * 3) % 4];
                s_dsp_input(c, S_D(cdt, K), S_FILL_CLEAN);
                s_param_s(c, "mode", mode);
                s_param_s(c, "method", methods[i % 3]);
                if (!strcmp(mode, "stream") && sp)
                    s_dsp_input(c, s_state(x, cdt, 1, K - 1, 0), S_FILL_CLEAN);
            } else if (!strcmp(name, "sos")) {
                static const int64_t secs[] = {1, 2, 4, 16, 3};
                int64_t k = secs[(i + sp) % 5];
                s_dsp_input(c, S_D(cdt, k, 6), S_FILL_SOS);
                if (sp)
                    s_dsp_input(c, s_state(x, cdt, 2, k, 2), S_FILL_CLEAN);
                else
                    s_param_b(c, "stream", i & 1);
            } else if (!strcmp(name, "lfilter")) {
                static const int64_t nbs[] = {1, 3, 5, 1, 8, 2, 33};
                static const int64_t nas[] = {1, 3, 2, 4, 8, 1, 5};
                int64_t nb = nbs[i % 7], na = nas[(i + sp) % 7], m = nb > na ? nb : na;
                s_dsp_input(c, S_D(cdt, nb), S_FILL_CLEAN);
                s_dsp_input(c, S_D(dt, na), S_FILL_STABLE_A);
                if (sp)
                    s_dsp_input(c, s_state(x, cdt, 1, m - 1, 0), S_FILL_CLEAN);
                else
                    s_param_b(c, "stream", i & 1);
            } else if (!strcmp(name, "preemphasis")) {
                s_param_f(c, "coef", sp ? 0.97 : s_unif(-1, 1));
                if (sp && (i & 1))
                    s_dsp_input(c, s_state(x, cdt, 1, 1, 0), S_FILL_CLEAN);
                else
                    s_param_b(c, "stream", i & 1);
            } else if (!strcmp(name, "gain")) {
                s_param_f(c, "db", s_unif(-40, 40));
                s_param_f(c, "factor", sp ? -1.5 : s_unif(-4, 4));
            } else if (!strcmp(name, "normalize")) {
                s_param_s(c, "mode", (i + sp) & 1 ? "rms" : "peak");
                s_param_f(c, "target_db", s_unif(-30, 3));
                s_param_i(c, "axes", x->ndim > 1 && sp ? 2 : 1);
                if (i == 2 && sp)
                    c->fill[0] = S_FILL_ZERO; /* silence is copied */
            } else if (!strcmp(name, "window")) {
                static const char *const w[] = {"hann", "hamming", "blackman", "kaiser", "boxcar"};
                s_param_s(c, "window", w[(i * 2 + sp) % 5]);
                s_param_f(c, "beta", s_unif(0, 20));
                s_param_b(c, "periodic", sp);
            } else if (!strcmp(name, "frame")) {
                int64_t fl = 1 + (int64_t)(s_next() % (uint64_t)T);
                s_param_i(c, "frame_length", fl);
                s_param_i(c, "hop_length", 1 + (int64_t)(s_next() % (uint64_t)(fl + 2)));
                s_param_b(c, "frames_last", sp);
            } else if (!strcmp(name, "overlap_add")) {
                /* frames [..., fl, nf] from the signal's dims: fl = last, nf random */
                gq_tdesc_t f = *x;
                if (f.ndim == 1) {
                    f.ndim = 2;
                    f.shape[1] = 1 + (int64_t)(s_next() % 9);
                } else if (!sp) {
                    int64_t t = f.shape[f.ndim - 1];
                    f.shape[f.ndim - 1] = f.shape[f.ndim - 2];
                    f.shape[f.ndim - 2] = t;
                }
                c->in[0] = f;
                int64_t fl = f.shape[f.ndim - (sp ? 1 : 2)];
                s_param_i(c, "hop_length", 1 + (int64_t)(s_next() % (uint64_t)(fl + 3)));
                s_param_b(c, "frames_last", !sp);
            }
        }
    }
    /* empty rows where the op takes them (stream modes keep T = 0) */
    gq_tdesc_t e = S_D(dt, 3, 0);
    s_case_t *c = NULL;
    if (!strcmp(name, "fir") && (c = s_dsp_case(cs, &n, max, dt, e, 0))) {
        s_dsp_input(c, S_D(dt, 4), S_FILL_CLEAN);
        s_param_s(c, "mode", "stream");
        s_dsp_input(c, s_state(&e, dt, 1, 3, 0), S_FILL_CLEAN);
    } else if (!strcmp(name, "sos") && (c = s_dsp_case(cs, &n, max, dt, e, 0))) {
        s_dsp_input(c, S_D(dt, 2, 6), S_FILL_SOS);
        s_dsp_input(c, s_state(&e, dt, 2, 2, 2), S_FILL_CLEAN);
    } else if (!strcmp(name, "gain") || !strcmp(name, "normalize")) {
        c = s_dsp_case(cs, &n, max, dt, e, 0);
    }
    return n;
}

/* FFTs: length 1, primes (Bluestein), powers of two in one work-group and across launches
 * per pass, crop and pad by n, every norm, a large batch. */
static int s_cases_fft(const gq_op_spec_t *op, int dt, s_case_t *cs, int max)
{
    static const int64_t shapes[][3] = {
        {1, 1},       {1, 2},        {1, 7},    {2, 3, 8},  {2, 64, 16},   {2, 3, 97},   {1, 512},
        {2, 4, 1000}, {2, 16, 4096}, {1, 1009}, {1, 16384}, {2, 3, 12289}, {2, 500, 64}, {1, 65536},
    };
    static const char *const norms[] = {"backward", "ortho", "forward"};
    const char *name = op->name + strlen("dsp.");
    bool irfft = !strcmp(name, "irfft");
    int n = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        for (int v = 0; v < 2; v++) {
            gq_tdesc_t x = s_desc(dt, (int)shapes[i][0], &shapes[i][1]);
            int64_t m = x.shape[x.ndim - 1];
            s_case_t *c = s_dsp_case(cs, &n, max, dt, x, v && i == 3);
            if (!c)
                return n;
            c->lo = -10, c->hi = 10;
            s_param_s(c, "norm", norms[(i + (size_t)v) % 3]);
            /* v = 1: crop or zero-pad to another length */
            int64_t len = v ? (i & 1 ? m + 1 + (int64_t)(s_next() % 9) : (m + 1) / 2) : 0;
            if (irfft && !v && m == 1)
                len = 1;
            s_param_i(c, "n", len);
        }
    }
    return n;
}

/* STFT family: pow2 and other n_fft, win_length < n_fft, center with constant and reflect
 * padding (a pad longer than the signal), onesided or not, powers. */
static int s_cases_stft(const gq_op_spec_t *op, int dt, s_case_t *cs, int max)
{
    static const int64_t cfg[][4] = {
        /* T, n_fft, hop, win_length */
        {1000, 64, 16, 0}, {4001, 512, 160, 400}, {300, 100, 25, 0}, {97, 16, 4, 9},
        {5, 16, 4, 0},     {2048, 256, 64, 256},  {17, 8, 8, 5},     {16000, 400, 160, 0},
    };
    static const char *const wins[] = {"hann", "hamming", "blackman", "kaiser", "boxcar"};
    const char *name = op->name + strlen("dsp.");
    int n = 0;
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        for (int v = 0; v < 2; v++) {
            gq_tdesc_t x = v ? S_D(dt, 2, cfg[i][0]) : S_D(dt, cfg[i][0]);
            s_case_t *c = s_dsp_case(cs, &n, max, dt, x, v && i == 1);
            if (!c)
                return n;
            s_param_i(c, "n_fft", cfg[i][1]);
            s_param_i(c, "hop_length", cfg[i][2]);
            s_param_i(c, "win_length", cfg[i][3]);
            s_param_s(c, "window", wins[(i + (size_t)v) % 5]);
            s_param_b(c, "center", i != 6);
            s_param_s(c, "pad_mode", v ? "reflect" : "constant");
            s_param_b(c, "onesided", i % 3 != 2);
            if (!strcmp(name, "spectrogram"))
                s_param_f(c, "power", v ? 1.0 : i % 3 ? 2.0 : 0.5);
        }
    }
    return n;
}

/* iSTFT of random spectra [..., bins, frames]: onesided and not, crop or pad of the bins
 * by n_fft, center, length cuts and pads. */
static int s_cases_istft(const gq_op_spec_t *op, int dt, s_case_t *cs, int max)
{
    (void)op;
    static const int64_t cfg[][6] = {
        /* bins, frames, n_fft, hop, win_length, length */
        {33, 20, 0, 16, 0, 0},  {257, 30, 0, 128, 400, 0}, {51, 12, 100, 25, 0, 0},
        {9, 40, 16, 4, 9, 150}, {129, 5, 0, 64, 0, 1000},  {65, 9, 128, 32, 0, 0},
    };
    int n = 0;
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        for (int v = 0; v < 2; v++) {
            gq_tdesc_t x = v ? S_D(dt, 2, cfg[i][0], cfg[i][1]) : S_D(dt, cfg[i][0], cfg[i][1]);
            s_case_t *c = s_dsp_case(cs, &n, max, dt, x, 0);
            if (!c)
                return n;
            bool two = i == 2 && v;
            s_param_i(c, "n_fft", two ? cfg[i][0] : cfg[i][2]);
            s_param_i(c, "hop_length", cfg[i][3]);
            s_param_i(c, "win_length", cfg[i][4]);
            s_param_s(c, "window", v ? "hann" : "hamming");
            s_param_b(c, "center", i != 5);
            s_param_i(c, "length", cfg[i][5]);
            s_param_b(c, "onesided", !two);
        }
    }
    return n;
}

/* dB conversions of spectrogram-like data: positive powers, amplitudes of either sign,
 * dB values; ref_max and top_db floors, a NaN. */
static int s_cases_db(const gq_op_spec_t *op, int dt, s_case_t *cs, int max)
{
    (void)op;
    static const char *const modes[] = {"power_to_db", "amplitude_to_db", "db_to_power",
                                        "db_to_amplitude"};
    int n = 0;
    for (int i = 0; i < 12; i++) {
        gq_tdesc_t x = i % 3 == 0   ? S_D(dt, 257, 31)
                       : i % 3 == 1 ? S_D(dt, 3, 80, 100)
                                    : S_D(dt, 7);
        s_case_t *c = s_dsp_case(cs, &n, max, dt, x, i == 5);
        if (!c)
            return n;
        int md = i % 4;
        s_param_s(c, "mode", modes[md]);
        c->lo = md == 0 ? 0 : md == 1 ? -3 : -80, c->hi = md < 2 ? 100 : 20;
        s_param_b(c, "ref_max", i % 5 == 1);
        s_param_f(c, "ref", i % 2 ? 1.0 : 3.5);
        s_param_f(c, "amin", i % 3 ? 0 : 1e-6);
        s_param_f(c, "top_db", i % 4 == 2 ? INFINITY : 80);
    }
    return n;
}

/* Mel features: n_fft powers of two and not (odd: promoted rows), n_fft 8 with more mels
 * than bins (empty filters), short signals (one sample, shorter than n_fft), batches,
 * htk and no norm, powers 1 and 2 and 1.5, fmin/fmax, top_db none, ref_max, specials. */
static int s_cases_mel(const gq_op_spec_t *op, int dt, s_case_t *cs, int max)
{
    static const int64_t cfg[][6] = {
        /* T, n_fft, hop, win_length, n_mels, batch */
        {4001, 512, 160, 400, 80, 1}, {1000, 64, 16, 0, 20, 2},  {300, 101, 25, 0, 40, 1},
        {1, 16, 4, 0, 8, 1},          {5, 8, 4, 0, 40, 3},       {16000, 400, 160, 0, 128, 1},
        {97, 32, 8, 31, 12, 2},       {2048, 256, 64, 0, 64, 1},
    };
    const char *name = op->name + strlen("dsp.");
    bool log = strcmp(name, "mel"), mfcc = !strcmp(name, "mfcc");
    int n = 0;
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        for (int v = 0; v < 2; v++) {
            gq_tdesc_t x =
                cfg[i][5] > 1 || v ? S_D(dt, cfg[i][5] + v, cfg[i][0]) : S_D(dt, cfg[i][0]);
            /* Specials on f64 only: the CPU's f32 path transforms two frames as one complex
             * row, so a 1e30 in one frame drowns its partner's bins (cancellation), and the
             * reference itself is off there. */
            s_case_t *c = s_dsp_case(cs, &n, max, dt, x, v && i == 1 && dt == GQ_F64);
            if (!c)
                return n;
            s_param_i(c, "n_fft", cfg[i][1]);
            s_param_i(c, "hop_length", cfg[i][2]);
            s_param_i(c, "win_length", cfg[i][3]);
            s_param_i(c, "n_mels", cfg[i][4]);
            s_param_f(c, "sr", i % 3 == 0 ? 16000 : 22050);
            s_param_b(c, "center", i != 6 || v);
            if (v)
                s_param_s(c, "pad_mode", "reflect");
            if (i % 4 == 1)
                s_param_b(c, "htk", 1);
            if (i % 5 == 2)
                s_param_s(c, "norm", "none");
            s_param_f(c, "power", i % 3 == 2 ? (v ? 1.0 : 1.5) : 2.0);
            if (i == 7)
                s_param_f(c, "fmin", 300), s_param_f(c, "fmax", 5000);
            if (log) {
                s_param_b(c, "ref_max", (i + (size_t)v) % 3 == 0);
                s_param_f(c, "top_db", i % 4 == 3 ? INFINITY : 80);
                if (i == 2)
                    s_param_f(c, "ref", 3.5);
            }
            if (mfcc) {
                s_param_i(c, "n_mfcc", cfg[i][4] < 13 ? cfg[i][4] : 13 + (int64_t)v * 7);
                s_param_f(c, "lifter", v ? 22 : 0);
            }
        }
    }
    return n;
}

/* Polyphase resampling of the filter shapes by ratios 1 (one tap), 2, 1/2, 3/2, 160/441
 * (44.1 -> 16 kHz, 56 taps per phase), 147/80 (rates given), another beta; plus what
 * stays on the CPU (libsoxr, a stream), which the backend must decline. */
static int s_cases_resample(const gq_op_spec_t *op, int dt, s_case_t *cs, int max)
{
    (void)op;
    static const int64_t ratios[][2] = {{1, 1}, {2, 1}, {1, 2}, {3, 2}, {160, 441}, {147, 80}};
    int ns, n = 0;
    const gq_tdesc_t *sh = s_signal_shapes(dt, &ns);
    for (int i = 0; i < ns; i++)
        for (size_t r = 0; r < sizeof ratios / sizeof ratios[0] + 2; r++) {
            if (r >= sizeof ratios / sizeof ratios[0] && i != 3)
                continue;
            s_case_t *c = s_dsp_case(cs, &n, max, dt, sh[i], i == 3);
            if (!c)
                return n;
            if (r == 6) { /* libsoxr: declined */
                s_param_i(c, "sr", 44100), s_param_i(c, "target_sr", 16000);
                continue;
            }
            if (r == 7) { /* a stream: declined */
                s_param_i(c, "up", 2), s_param_i(c, "down", 3), s_param_b(c, "stream", 1);
                continue;
            }
            if (r == 5) {
                s_param_i(c, "sr", 16000 * ratios[r][1]);
                s_param_i(c, "target_sr", 16000 * ratios[r][0]);
                s_param_s(c, "res_type", "polyphase");
            } else {
                s_param_i(c, "up", ratios[r][0]), s_param_i(c, "down", ratios[r][1]);
            }
            if (r == 3)
                s_param_f(c, "beta", 8.6);
        }
    return n;
}

typedef int (*s_gen_fn)(const gq_op_spec_t *op, int dt, s_case_t *cs, int max);

static const struct {
    const char *prefix;
    s_gen_fn gen;
} s_gens[] = {
    {"tensor.", s_cases_tensor},
    {"dsp.fir", s_cases_filter},
    {"dsp.sos", s_cases_filter},
    {"dsp.lfilter", s_cases_filter},
    {"dsp.preemphasis", s_cases_filter},
    {"dsp.gain", s_cases_filter},
    {"dsp.normalize", s_cases_filter},
    {"dsp.window", s_cases_filter},
    {"dsp.frame", s_cases_filter},
    {"dsp.overlap_add", s_cases_filter},
    {"dsp.fft", s_cases_fft},
    {"dsp.ifft", s_cases_fft},
    {"dsp.rfft", s_cases_fft},
    {"dsp.irfft", s_cases_fft},
    {"dsp.stft", s_cases_stft},
    {"dsp.spectrogram", s_cases_stft},
    {"dsp.istft", s_cases_istft},
    {"dsp.db", s_cases_db},
    {"dsp.mel", s_cases_mel},
    {"dsp.logmel", s_cases_mel},
    {"dsp.mfcc", s_cases_mel},
    {"dsp.resample", s_cases_resample},
};

static s_gen_fn s_gen_for(const char *op)
{
    for (size_t i = 0; i < sizeof s_gens / sizeof s_gens[0]; i++)
        if (!strncmp(op, s_gens[i].prefix, strlen(s_gens[i].prefix)))
            return s_gens[i].gen;
    return NULL;
}

/* ---- data ---- */

static void s_store(void *p, int dt, size_t i, double v)
{
    switch (dt) {
    case GQ_F32:
        ((float *)p)[i] = (float)v;
        break;
    case GQ_F64:
        ((double *)p)[i] = v;
        break;
    case GQ_F16:
        ((uint16_t *)p)[i] = gq_f16_from_f64(v);
        break;
    case GQ_I32:
        ((int32_t *)p)[i] = (int32_t)(int64_t)v;
        break;
    case GQ_I16:
        ((int16_t *)p)[i] = (int16_t)(int64_t)v;
        break;
    case GQ_U8:
        ((uint8_t *)p)[i] = (uint8_t)(int64_t)v;
        break;
    case GQ_I64:
        ((int64_t *)p)[i] = (int64_t)v;
        break;
    }
}

static double s_load(const void *p, int dt, size_t i)
{
    switch (dt) {
    case GQ_F32:
        return ((const float *)p)[i];
    case GQ_F64:
        return ((const double *)p)[i];
    case GQ_F16:
        return gq_f16_to_f64(((const uint16_t *)p)[i]);
    case GQ_I32:
        return ((const int32_t *)p)[i];
    case GQ_I16:
        return ((const int16_t *)p)[i];
    case GQ_U8:
        return ((const uint8_t *)p)[i];
    case GQ_I64:
        return (double)((const int64_t *)p)[i];
    }
    return NAN;
}

static bool s_is_float(int dt)
{
    return dt == GQ_F32 || dt == GQ_F64 || dt == GQ_F16;
}

/* Complex tensors are compared and filled as their real components. */
static int s_base(int dt)
{
    return dt == GQ_C64 ? GQ_F32 : dt == GQ_C128 ? GQ_F64 : dt;
}

static size_t s_comps(const gq_tdesc_t *d)
{
    return (size_t)gq_tdesc_numel(d) * (d->dtype == GQ_C64 || d->dtype == GQ_C128 ? 2 : 1);
}

static void s_fill_coefs(void *p, const gq_tdesc_t *d, int kind)
{
    size_t n = (size_t)gq_tdesc_numel(d);
    int dt = s_base(d->dtype);
    if (kind == S_FILL_SOS) {
        for (size_t s = 0; s + 6 <= n; s += 6) {
            double r = s_unif(0.3, 0.95), th = s_unif(0, M_PI), a0 = s_unif(0.5, 2.0);
            for (int k = 0; k < 3; k++)
                s_store(p, dt, s + (size_t)k, s_unif(-1, 1));
            s_store(p, dt, s + 3, a0);
            s_store(p, dt, s + 4, -2 * r * cos(th) * a0);
            s_store(p, dt, s + 5, r * r * a0);
        }
        return;
    }
    double a0 = s_unif(1, 2) * (s_next() & 1 ? 1 : -1), budget = 0.9 * fabs(a0);
    s_store(p, dt, 0, a0);
    for (size_t i = 1; i < n; i++) {
        double v = s_unif(-1, 1) * budget / (double)(n - 1);
        s_store(p, dt, i, v);
    }
}

static void s_fill(void *p, const gq_tdesc_t *d, const s_case_t *c, int kind)
{
    size_t n = s_comps(d);
    int dt = s_base(d->dtype);
    static const double spec[] = {NAN, INFINITY, -INFINITY, -0.0, 0.0, 1e30, -1e30, 65504.0};
    if (kind == S_FILL_SOS || kind == S_FILL_STABLE_A) {
        s_fill_coefs(p, d, kind);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        double v = kind == S_FILL_ZERO ? 0.0 : s_unif(c->lo, c->hi);
        if (!s_is_float(dt))
            v = floor(v);
        if (c->specials && kind == S_FILL_RANDOM && s_next() % 16 == 0) {
            if (s_is_float(dt))
                v = spec[s_next() % 8];
            else
                v = s_next() & 1 ? c->lo : c->hi;
        }
        s_store(p, dt, i, v);
    }
}

static void *s_xalloc(size_t n)
{
    void *p = gq_aligned_alloc(64, n ? n : 64);
    if (!p) {
        fprintf(stderr, "test_backend_ops: out of memory (%zu bytes)\n", n);
        exit(2);
    }
    return p;
}

/* ---- running ---- */

/* Runs a on be: inputs from host memory, outputs into host memory. */
static gq_status s_run_on(gq_backend_t *be, const gq_args_t *a, const gq_tdesc_t *in, void **hin,
                          int nin, const gq_tdesc_t *out, void **hout, int nout, char *err,
                          size_t errlen)
{
    const gq_backend_ops_t *o = be->ops;
    gq_buffer_t ib[S_MAX_IN], ob[GQ_MAX_OUTPUTS];
    int ni = 0, no = 0;
    gq_status rc = GQ_OK;
    memset(ib, 0, sizeof ib);
    memset(ob, 0, sizeof ob);
    for (; ni < nin && !rc; ni++) {
        size_t nb = gq_tdesc_nbytes(&in[ni]);
        rc = o->wrap_host ? o->wrap_host(be, hin[ni], nb, &ib[ni]) : o->alloc(be, nb, &ib[ni]);
        if (!rc && !o->wrap_host)
            rc = o->upload(be, &ib[ni], hin[ni], nb);
    }
    for (; no < nout && !rc; no++) {
        size_t nb = gq_tdesc_nbytes(&out[no]);
        rc = o->wrap_host ? o->wrap_host(be, hout[no], nb, &ob[no]) : o->alloc(be, nb, &ob[no]);
    }
    if (rc)
        gq_errf(err, errlen, "%s: %s: staging buffers: %s", a->op->name, o->name, gq_strerror(rc));
    if (!rc)
        rc = o->run(be, a, in, ib, nin, out, ob, nout, err, errlen);
    for (int i = 0; i < nout && !rc && !o->wrap_host; i++)
        rc = o->download(be, hout[i], &ob[i], gq_tdesc_nbytes(&out[i]));
    if (!rc && o->sync)
        rc = o->sync(be);
    for (int i = 0; i < ni; i++)
        o->free(be, &ib[i]);
    for (int i = 0; i < no; i++)
        o->free(be, &ob[i]);
    return rc;
}

typedef struct {
    double tol_f32, tol_f64; /* integer outputs: always exact */
    int kind;                /* 0 elementwise, 1 sum, 2 mean */
    double tol_f32_nofp64;   /* f32 on a device without fp64 (float accumulators); 0: tol_f32 */
    /* NaN and +-inf are one class (which one comes out is the algorithm's choice), and in a
     * row (last axis) where the reference has one, the others may be non-finite too (FFTW
     * keeps the imaginary part of a promoted real row's DC bin at 0; a chirp-z does not). */
    bool nonfinite_class;
    bool absolute; /* the error is |cpu - got| (dB outputs), not relative to the peak */
} s_tol_t;

static bool s_fp64; /* the backend under test has fp64 kernels */

/* Per-op tolerances, relative to the largest |reference| of the output (elementwise), or
 * to sum |x| along the axis (sums, means). dsp ops: the CPU computes filters in double,
 * as the kernels do with fp64; a different summation order or one extra rounding of a
 * double before the final f32 rounding is all that separates them (one f32 ulp); without
 * fp64 the kernels accumulate in float. */
static s_tol_t s_tolerance(const char *op)
{
    static const struct {
        const char *op;
        s_tol_t t;
    } tab[] = {
        /* exact with fp64; two roundings in float otherwise */
        {"tensor.scale", {2.5e-7, 0, 0, 0, false, false}},
        {"tensor.sum", {1e-6, 1e-14, 1, 0, false, false}},
        {"tensor.mean", {1e-6, 1e-14, 2, 0, false, false}},
        {"dsp.gain", {0, 0, 0, 2.5e-7, false, false}},
        {"dsp.normalize", {1.2e-7, 1e-14, 0, 1e-6, false, false}},
        {"dsp.overlap_add", {0, 0, 0, 1e-6, false, false}},
        {"dsp.preemphasis", {0, 0, 0, 1e-6, false, false}},
        /* the CPU sums the last outputs of a row (and the FFT method) in another order */
        {"dsp.fir", {1.2e-7, 1e-13, 0, 2e-5, false, false}},
        {"dsp.sos", {1.2e-7, 1e-13, 0, 0, false, false}},
        {"dsp.lfilter", {1.2e-7, 1e-13, 0, 0, false, false}},
        /* FFTs: another algorithm than FFTW (Stockham radix 4, Bluestein), error relative to
         * the output's peak growing with log n; seen up to 4.7e-7 up to n = 65536 (the docs
         * allow 2e-6 sqrt(log2 n + 1) against numpy) */
        {"dsp.fft", {3e-6, 1e-12, 0, 0, true, false}},
        {"dsp.ifft", {3e-6, 1e-12, 0, 0, true, false}},
        {"dsp.rfft", {3e-6, 1e-12, 0, 0, true, false}},
        {"dsp.irfft", {3e-6, 1e-12, 0, 0, true, false}},
        {"dsp.stft", {3e-6, 1e-12, 0, 0, true, false}},
        {"dsp.spectrogram", {6e-6, 1e-12, 0, 0, true, false}},
        {"dsp.istft", {3e-6, 1e-12, 0, 6e-6, false, false}},
        /* dB: libm log10 against the CPU's 4-lane log (2 ulp) */
        {"dsp.db", {5e-7, 1e-13, 0, 1e-6, false, false}},
        /* mel features: the spectrogram's error through the filterbank (the CPU's f32 path
         * transforms two frames in one complex FFT, so a NaN also reaches its partner);
         * logmel in dB absolute (float dB values near 100 carry 8e-6 per ulp); mfcc
         * relative to its peak; with fp64 the DCT sums in the CPU's order */
        {"dsp.mel", {1e-5, 1e-12, 0, 0, true, false}},
        {"dsp.logmel", {1e-3, 1e-9, 0, 0, true, true}},
        {"dsp.mfcc", {1e-5, 1e-12, 0, 0, true, false}},
        /* resample: double sums in gq_dsp_dot's order with fp64; float sums without */
        {"dsp.resample", {1.2e-7, 1e-13, 0, 2e-6, false, false}},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (!strcmp(op, tab[i].op))
            return tab[i].t;
    s_tol_t zero = {0, 0, 0, 0, false, false};
    return zero;
}

static double s_limit(const s_tol_t *t, int dt)
{
    if (dt == GQ_F64)
        return t->tol_f64;
    return !s_fp64 && t->tol_f32_nofp64 > 0 ? t->tol_f32_nofp64 : t->tol_f32;
}

/* Normalised error of one case's output 0 (see the top of the file). */
static double s_error(const s_tol_t *tol, const gq_args_t *a, const gq_tdesc_t *in, const void *x,
                      const gq_tdesc_t *out, const void *ref, const void *got, size_t *worst)
{
    size_t n = s_comps(out);
    int dt = s_base(out->dtype);
    double maxerr = 0, scale = 0;
    *worst = 0;
    if (tol->kind == 0)
        for (size_t i = 0; i < n; i++) {
            double r = fabs(s_load(ref, dt, i));
            if (isfinite(r) && r > scale)
                scale = r;
        }
    int64_t outer = 1, inner = 1, len = 1;
    if (tol->kind) {
        int64_t axis = gq_args_int(a, "axis");
        if (axis < 0)
            axis += in->ndim;
        for (int i = 0; i < axis; i++)
            outer *= in->shape[i];
        for (int i = (int)axis + 1; i < in->ndim; i++)
            inner *= in->shape[i];
        len = in->shape[axis];
    }
    size_t row = (out->ndim ? (size_t)out->shape[out->ndim - 1] : 1) *
                 (n > (size_t)gq_tdesc_numel(out) ? 2 : 1);
    bool tainted = false;
    for (size_t i = 0; i < n; i++) {
        double r = s_load(ref, dt, i), g = s_load(got, dt, i), e;
        if (tol->nonfinite_class && row && i % row == 0) {
            tainted = false;
            for (size_t k = i; k < i + row && k < n; k++)
                tainted |= !isfinite(s_load(ref, dt, k));
        }
        if (tol->nonfinite_class && (!isfinite(r) || !isfinite(g)))
            e = isfinite(r) == isfinite(g) || tainted ? 0 : INFINITY;
        else if (isnan(r) || isnan(g))
            e = isnan(r) && isnan(g) ? 0 : INFINITY;
        else if (isinf(r) || isinf(g))
            e = r == g ? 0 : INFINITY;
        else if (!s_is_float(dt) || (tol->kind == 0 && s_limit(tol, dt) == 0))
            e = r == g ? 0 : INFINITY;
        else {
            double s = scale;
            if (tol->kind) {
                int64_t o = (int64_t)i / inner, j = (int64_t)i % inner;
                s = 0;
                for (int64_t k = 0; k < len; k++)
                    s += fabs(s_load(x, in->dtype, (size_t)((o * len + k) * inner + j)));
                if (tol->kind == 2 && len)
                    s /= (double)len;
            }
            e = tol->absolute ? fabs(r - g) : fabs(r - g) / (s > 0 ? s : 1);
        }
        if (e > maxerr) {
            maxerr = e;
            *worst = i;
        }
    }
    return maxerr;
}

typedef struct {
    int cases, declined, failed;
    double maxerr;
    char dtypes[96], declined_dtypes[96];
} s_stat_t;

static void s_add_dtype(char *list, size_t len, int dt)
{
    const char *name = gq_dtype_name(dt);
    if (strstr(list, name))
        return;
    size_t l = strlen(list);
    snprintf(list + l, len - l, "%s%s", l ? "," : "", name);
}

static int s_test_case(gq_backend_t *cpu, gq_backend_t *be, const gq_op_spec_t *op, int dt,
                       const s_case_t *c, s_stat_t *st)
{
    char err[GQ_ERRLEN], ds[64];
    gq_args_t a;
    gq_tdesc_t out[GQ_MAX_OUTPUTS];
    int nout = 0;
    if (gq_op_resolve(op, c->p, c->np, &a, err, sizeof err) ||
        gq_op_infer(&a, c->in, c->nin, out, &nout, err, sizeof err)) {
        if (s_verbose)
            printf("  (case not valid: %s)\n", err);
        return 0;
    }
    if (!be->ops->supports_op(be, &a, c->in, c->nin)) {
        st->declined++;
        s_add_dtype(st->declined_dtypes, sizeof st->declined_dtypes,
                    !strcmp(op->name, "tensor.cast") && dt != GQ_F16 ? (int)out[0].dtype : dt);
        return 0;
    }
    s_add_dtype(st->dtypes, sizeof st->dtypes, dt);
    void *hin[S_MAX_IN] = {NULL}, *ref[GQ_MAX_OUTPUTS] = {0}, *got[GQ_MAX_OUTPUTS] = {0};
    for (int i = 0; i < c->nin; i++) {
        hin[i] = s_xalloc(gq_tdesc_nbytes(&c->in[i]));
        s_fill(hin[i], &c->in[i], c, c->fill[i]);
    }
    for (int i = 0; i < nout; i++) {
        size_t nb = gq_tdesc_nbytes(&out[i]);
        ref[i] = s_xalloc(nb);
        got[i] = s_xalloc(nb);
        memset(got[i], 0xa5, nb); /* so a kernel that writes nothing cannot pass */
    }
    int bad = 0;
    gq_status rc = s_run_on(cpu, &a, c->in, hin, c->nin, out, ref, nout, err, sizeof err);
    if (rc) {
        printf("FAIL %s %s: cpu reference failed: %s\n", op->name,
               gq_tdesc_str(&c->in[0], ds, sizeof ds), err);
        bad = 1;
        goto done;
    }
    rc = s_run_on(be, &a, c->in, hin, c->nin, out, got, nout, err, sizeof err);
    if (rc) {
        printf("FAIL %s %s on %s: %s (%s)\n", op->name, gq_tdesc_str(&c->in[0], ds, sizeof ds),
               be->ops->name, err, gq_status_name(rc));
        bad = 1;
        goto done;
    }
    s_tol_t tol = s_tolerance(op->name);
    for (int o = 0; o < nout; o++) {
        size_t worst;
        double e = s_error(&tol, &a, &c->in[0], hin[0], &out[o], ref[o], got[o], &worst);
        double limit = s_limit(&tol, s_base(out[o].dtype));
        if (!s_is_float(s_base(out[o].dtype)))
            limit = 0;
        if (e > st->maxerr)
            st->maxerr = e;
        if (e > limit) {
            char d1[64], par[512] = "";
            for (int p = 0, off = 0; p < c->np && off < (int)sizeof par; p++) {
                char v[48];
                off += snprintf(par + off, sizeof par - (size_t)off, " %s=%s", c->p[p].name,
                                gq_value_str(&c->p[p].v, v, sizeof v));
            }
            printf("FAIL %s in %s%s%s ->%s out %s: error %.3g > %.3g at [%zu]: cpu %.17g, %s "
                   "%.17g\n",
                   op->name, gq_tdesc_str(&c->in[0], ds, sizeof ds), c->nin > 1 ? " + " : "",
                   c->nin > 1 ? gq_tdesc_str(&c->in[1], d1, sizeof d1) : "", par,
                   gq_tdesc_str(&out[o], d1, sizeof d1), e, limit, worst,
                   s_load(ref[o], s_base(out[o].dtype), worst), be->ops->name,
                   s_load(got[o], s_base(out[o].dtype), worst));
            bad = 1;
        }
    }
done:
    for (int i = 0; i < c->nin; i++)
        free(hin[i]);
    for (int i = 0; i < nout; i++) {
        free(ref[i]);
        free(got[i]);
    }
    st->cases++;
    st->failed += bad;
    return bad;
}

/* The ops whose transforms take the FFT path the backend chose (tested again on the other). */
static const char *const s_fft_ops[] = {"dsp.fft",  "dsp.ifft",  "dsp.rfft",        "dsp.irfft",
                                        "dsp.stft", "dsp.istft", "dsp.spectrogram", NULL};

static bool s_in_list(const char *name, const char *const *list)
{
    for (; list && *list; list++)
        if (!strcmp(*list, name))
            return true;
    return !list;
}

/* Sets the per-backend globals; returns whether its transforms run a work-item per row. */
static bool s_setup(gq_backend_t *be)
{
    s_fp64 = true;
    bool rows = false;
#ifdef GQ_HAVE_OPENCL
    gq_cl_stats_t cst;
    if (gq_backend_opencl_stats(be, &cst) == GQ_OK) {
        s_fp64 = cst.fp64;
        rows = cst.fft_rows;
    }
#endif
#ifdef GQ_HAVE_VULKAN
    gq_vk_stats_t vst;
    if (gq_backend_vulkan_stats(be, &vst) == GQ_OK)
        s_fp64 = vst.fp64;
#endif
    (void)be;
    return rows;
}

/* Every op be claims (of list, when given) against the CPU, one line per op. */
static void s_test_ops(gq_backend_t *cpu, gq_backend_t *be, const char *label, const char *only,
                       const char *const *list, int *failures, int *ops_tested)
{
    static s_case_t cases[S_MAX_CASES];
    for (int oi = 0; oi < gq_op_count(); oi++) {
        const gq_op_spec_t *op = gq_op_at(oi);
        if ((only && strncmp(op->name, only, strlen(only))) || !s_in_list(op->name, list))
            continue;
        gq_args_t probe;
        memset(&probe, 0, sizeof probe);
        probe.op = op;
        if (!be->ops->supports_op(be, &probe, NULL, -1)) {
            if (s_verbose)
                printf("%-14s %-8s declined (runs on cpu)\n", op->name, label);
            continue;
        }
        /* Each op draws from its own stream (the seed mixed with its name), so cases added
         * to one op leave every other op's inputs as they were. */
        s_rng = s_seed;
        for (const char *p = op->name; *p; p++)
            s_rng = (s_rng ^ (unsigned char)*p) * 0x100000001b3u;
        s_rng |= 1;
        s_gen_fn gen = s_gen_for(op->name);
        if (!gen) {
            printf("%-14s %-8s %-22s %5d %12s %10s  FAIL: no conformance cases for an op "
                   "the backend claims\n",
                   op->name, label, "-", 0, "-", "-");
            (*failures)++;
            continue;
        }
        s_stat_t st;
        memset(&st, 0, sizeof st);
        uint64_t t1 = gq_now_us();
        for (int dt = 1; dt < GQ_DTYPE_COUNT; dt++) {
            if (!(op->in_dtypes & GQ_DT_BIT(dt)))
                continue;
            int n = gen(op, dt, cases, S_MAX_CASES);
            for (int c = 0; c < n; c++)
                s_test_case(cpu, be, op, dt, &cases[c], &st);
        }
        s_tol_t tol = s_tolerance(op->name);
        char declined[128] = "";
        if (st.declined_dtypes[0])
            snprintf(declined, sizeof declined, " (declined: %s -> cpu)", st.declined_dtypes);
        printf("%-14s %-8s %-22s %5d %12.3g %10.3g  %s%s  [%.0f ms]\n", op->name, label,
               st.dtypes[0] ? st.dtypes : "-", st.cases, st.maxerr, s_limit(&tol, GQ_F32),
               st.failed ? "FAIL" : "ok", declined, (double)(gq_now_us() - t1) / 1000.0);
        *failures += st.failed || st.cases == 0;
        (*ops_tested)++;
    }
}

int main(int argc, char **argv)
{
    const char *device = getenv("GQ_CL_DEVICE"), *platform = getenv("GQ_CL_PLATFORM");
    const char *vk_device = getenv("GQ_VK_DEVICE"), *backend = getenv("GQ_TEST_BACKEND");
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc)
            device = argv[++i];
        else if (!strcmp(argv[i], "--platform") && i + 1 < argc)
            platform = argv[++i];
        else if (!strcmp(argv[i], "--op") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--vk-device") && i + 1 < argc)
            vk_device = argv[++i];
        else if (!strcmp(argv[i], "--backend") && i + 1 < argc)
            backend = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            s_seed = strtoull(argv[++i], NULL, 0) | 1;
        else if (!strcmp(argv[i], "-v"))
            s_verbose = 1;
        else {
            fprintf(stderr, "usage: test_backend_ops [--device NAME|INDEX] [--platform P] "
                            "[--op PREFIX] [--vk-device NAME|INDEX] [--backend NAME] "
                            "[--seed N] [-v]\n");
            return 2;
        }
    }
    if (!getenv("GQ_LOG"))
        gq_log_set_level(GQ_LOG_WARN);
    /* The CPU reference plans its FFTs; measuring plans would dominate the run. */
    setenv("GQ_FFTW_PLANNER", "estimate", 0);
    char err[GQ_ERRLEN];
    gq_backend_config_t cfg = {.device_index = -1, .threads = 1, .platform = platform};
    gq_backend_config_device(&cfg, device);
    gq_backend_t *cpu = gq_backend_cpu_new(&cfg, err, sizeof err);
    if (!cpu) {
        fprintf(stderr, "test_backend_ops: cpu backend: %s\n", err);
        return 1;
    }
    gq_backend_t *bes[S_MAX_BACKENDS];
    int nbe = 0;
    uint64_t t0 = gq_now_us();
    if (!backend || !strcmp(backend, "opencl")) {
        if ((bes[nbe] = gq_backend_opencl_new(&cfg, err, sizeof err)))
            nbe++;
        else
            printf("opencl: not tested: %s\n", err);
    }
#ifdef GQ_HAVE_VULKAN
    /* Vulkan picks its own device (--vk-device, GQ_VK_DEVICE): --device names OpenCL's. A
     * CPU device (lavapipe) is taken, as PoCL is for OpenCL. */
    gq_backend_config_t vcfg = {.device_index = -1, .threads = 1};
    gq_backend_config_device(&vcfg, vk_device);
    if (!backend || !strcmp(backend, "vulkan")) {
        if ((bes[nbe] = gq_backend_vulkan_new(&vcfg, err, sizeof err)))
            nbe++;
        else
            printf("vulkan: not tested: %s\n", err);
    }
#else
    (void)vk_device;
    if (!backend || !strcmp(backend, "vulkan"))
        printf("vulkan: not tested: not built (no Vulkan SDK or glslc at build time)\n");
#endif
    if (!nbe) {
        printf("SKIP: no backend other than the CPU could start\n");
        gq_backend_destroy(&cpu);
        return 77;
    }
    for (int b = 0; b < nbe; b++) {
        gq_device_info_t d;
        if (bes[b]->ops->devices(bes[b], &d, 1) == 1)
            printf("%s: %s (%s, driver %s, %u CUs)%s\n", bes[b]->ops->name, d.name, d.vendor,
                   d.driver, d.compute_units, d.is_gpu ? " GPU" : "");
    }
    printf("backends up in %.0f ms\n\n%-14s %-8s %-22s %5s %12s %10s  %s\n",
           (double)(gq_now_us() - t0) / 1000.0, "OP", "BACKEND", "DTYPES", "CASES", "MAX_ERR",
           "TOL(f32)", "RESULT");
    int failures = 0, ops_tested = 0;
    for (int b = 0; b < nbe; b++) {
        bool fft_rows = s_setup(bes[b]), is_cl = !strcmp(bes[b]->ops->name, "opencl");
        s_test_ops(cpu, bes[b], bes[b]->ops->name, only, NULL, &failures, &ops_tested);
        gq_backend_destroy(&bes[b]);
#ifdef GQ_HAVE_OPENCL
        if (!is_cl)
            continue;
        /* The transforms' other path (a work-group per row on GPUs, a work-item per row on
         * CPU devices): forced through GQ_CL_FFT on a second backend. */
        setenv("GQ_CL_FFT", fft_rows ? "groups" : "rows", 1);
        gq_backend_t *alt = gq_backend_opencl_new(&cfg, err, sizeof err);
        unsetenv("GQ_CL_FFT");
        if (!alt) {
            printf("opencl (other FFT path): cannot start: %s\n", err);
            failures++;
            continue;
        }
        s_setup(alt);
        s_test_ops(cpu, alt, fft_rows ? "cl/wg" : "cl/rows", only, s_fft_ops, &failures,
                   &ops_tested);
        gq_backend_destroy(&alt);
#else
        (void)fft_rows, (void)is_cl;
#endif
    }
    gq_backend_destroy(&cpu);
    printf("\n%d ops tested, %d failed, %.1f s\n", ops_tested, failures,
           (double)(gq_now_us() - t0) / 1e6);
    return failures ? 1 : 0;
}
