/* OpenCL backend against the CPU, measured in the same run, printed as ratios:
 *
 *  1. Streaming kernels (gain = tensor.scale, tensor.add), f32, 64 KiB .. 64 MiB per
 *     input: the OpenCL kernel on device-resident buffers (what a pipeline stage costs)
 *     and the native C loop over the same bytes; ratio = native time / OpenCL time
 *     (>= 1: OpenCL is faster; the target on PoCL is >= 0.9).
 *  2. Whole jobs through the executor (gq_exec_run: staging, upload, kernel, download,
 *     output allocation) on [opencl] and on [cpu], 64 B .. 64 MiB: the per-job dispatch
 *     overhead (the 64 B row) and the size above which offload pays (the first size
 *     from which OpenCL stays faster).
 *
 *  3. Batched complex FFTs (c64 [rows, n], n = 512 .. 4096 and 1000) by dsp.fft on
 *     device-resident buffers against FFTW with a reused plan, row by row on one thread;
 *     ratio = FFTW time / OpenCL time (the target on PoCL is >= 0.5).
 *  4. Power spectrograms and log-mel spectrograms (80 mels) of a batch of 60 s signals on
 *     OpenCL and on the CPU backend, in times real time; ratio = CPU time / OpenCL time.
 *  5. Polyphase resampling 44.1 -> 16 kHz of a batch of 60 s signals, same ratio.
 *
 * Self-contained (no broker); any OpenCL device: --device NAME|INDEX, --platform P.
 * usage: bench_opencl [--device D] [--platform P] [--quick] [--min-ms N] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend.h"
#include "benchlib.h"
#include "cpu/cpu_fft.h"
#include "exec.h"
#include "optable.h"
#include "util.h"

static double s_min_ms = 200; /* time each measurement at least this long */

typedef gq_status (*s_fn)(void *ctx);

/* Median of 5 batches of calls, each batch running >= s_min_ms / 5; seconds per call. */
static double s_time(s_fn fn, void *ctx)
{
    if (fn(ctx))
        gqb_die("call failed");
    uint64_t t0 = gqb_now_ns();
    long reps = 1;
    fn(ctx);
    double one = (double)(gqb_now_ns() - t0) / 1e9;
    reps = (long)(s_min_ms / 5 / 1000 / (one > 1e-7 ? one : 1e-7)) + 1;
    double best[5];
    for (int b = 0; b < 5; b++) {
        t0 = gqb_now_ns();
        for (long r = 0; r < reps; r++)
            if (fn(ctx))
                gqb_die("call failed");
        best[b] = (double)(gqb_now_ns() - t0) / 1e9 / (double)reps;
    }
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            if (best[j] < best[i]) {
                double t = best[i];
                best[i] = best[j];
                best[j] = t;
            }
    return best[2];
}

/* ---- 1. streaming kernels ---- */

typedef struct {
    gq_backend_t *be;
    gq_args_t args;
    gq_tdesc_t in[2], out;
    gq_buffer_t ib[2], ob;
    int nin;
    float *x, *y, *z;
    size_t n;
} s_stream_t;

/* Framing geometry of the dsp.frame row: 25 ms frames every 10 ms at 16 kHz. */
#define S_FL 400
#define S_HOP 160

static gq_status s_native_gain(void *ctx)
{
    s_stream_t *s = ctx;
    const float *restrict x = s->x;
    float *restrict z = s->z;
    for (size_t i = 0; i < s->n; i++)
        z[i] = x[i] * 0.5f;
    return GQ_OK;
}

static gq_status s_native_add(void *ctx)
{
    s_stream_t *s = ctx;
    const float *restrict x = s->x, *restrict y = s->y;
    float *restrict z = s->z;
    for (size_t i = 0; i < s->n; i++)
        z[i] = x[i] + y[i];
    return GQ_OK;
}

/* librosa.util.frame's layout [frame_length, n_frames]: a gather per output row. */
static gq_status s_native_frame(void *ctx)
{
    s_stream_t *s = ctx;
    const float *restrict x = s->x;
    float *restrict z = s->z;
    size_t nf = 1 + (s->n - S_FL) / S_HOP;
    for (size_t i = 0; i < S_FL; i++)
        for (size_t f = 0; f < nf; f++)
            z[i * nf + f] = x[f * S_HOP + i];
    return GQ_OK;
}

static gq_status s_kernel(void *ctx)
{
    s_stream_t *s = ctx;
    char err[GQ_ERRLEN];
    gq_status rc =
        s->be->ops->run(s->be, &s->args, s->in, s->ib, s->nin, &s->out, &s->ob, 1, err, sizeof err);
    if (rc)
        gqb_die("%s", err);
    return s->be->ops->sync(s->be);
}

typedef struct {
    const char *label, *op;
    int nin;
    gq_param_t p[3];
    int np;
    s_fn native;
} s_sop_t;

static const s_sop_t s_sops[] = {
    {"scale",
     "tensor.scale",
     1,
     {{"factor", {.type = GQ_PT_FLOAT, .f = 0.5}}, {"offset", {.type = GQ_PT_FLOAT, .f = 0.0}}},
     2,
     s_native_gain},
    {"add", "tensor.add", 2, {{0}}, 0, s_native_add},
    {"gain", "dsp.gain", 1, {{"factor", {.type = GQ_PT_FLOAT, .f = 0.5}}}, 1, s_native_gain},
    {"frame",
     "dsp.frame",
     1,
     {{"frame_length", {.type = GQ_PT_INT, .i = S_FL}},
      {"hop_length", {.type = GQ_PT_INT, .i = S_HOP}}},
     2,
     s_native_frame},
};

static bool s_check(const s_sop_t *o, const s_stream_t *s, size_t i)
{
    if (o->native == s_native_add)
        return s->z[i] == s->x[i] + 1.0f;
    if (o->native == s_native_gain)
        return s->z[i] == s->x[i] * 0.5f;
    size_t nf = 1 + (s->n - S_FL) / S_HOP, r = i / nf, f = i % nf;
    return r >= S_FL || s->z[i] == s->x[f * S_HOP + r];
}

static void s_stream_one(gq_backend_t *cl, const s_sop_t *o, size_t bytes, double *worst)
{
    s_stream_t s;
    char err[GQ_ERRLEN];
    memset(&s, 0, sizeof s);
    s.be = cl;
    s.n = bytes / 4;
    s.nin = o->nin;
    if (gq_op_resolve(gq_op_find(o->op), o->p, o->np, &s.args, err, sizeof err))
        gqb_die("%s", err);
    int64_t n = (int64_t)s.n;
    gq_tdesc_init(&s.in[0], GQ_F32, &n, 1);
    s.in[1] = s.in[0];
    int nout = 0;
    if (gq_op_infer(&s.args, s.in, s.nin, &s.out, &nout, err, sizeof err))
        gqb_die("%s", err);
    size_t obytes = gq_tdesc_nbytes(&s.out);
    s.x = gq_aligned_alloc(64, bytes);
    s.y = gq_aligned_alloc(64, bytes);
    s.z = gq_aligned_alloc(64, obytes);
    if (!s.x || !s.y || !s.z)
        gqb_die("out of memory");
    for (size_t i = 0; i < s.n; i++)
        s.x[i] = (float)i, s.y[i] = 1.0f;
    memset(s.z, 0, obytes);
    for (int i = 0; i < s.nin; i++)
        if (cl->ops->alloc(cl, bytes, &s.ib[i]) ||
            cl->ops->upload(cl, &s.ib[i], i ? s.y : s.x, bytes))
            gqb_die("upload %zu bytes", bytes);
    if (cl->ops->alloc(cl, obytes, &s.ob))
        gqb_die("alloc %zu bytes", obytes);
    double tn = s_time(o->native, &s);
    double tk = s_time(s_kernel, &s);
    /* check the device's answer once */
    cl->ops->download(cl, s.z, &s.ob, obytes);
    size_t on = obytes / 4;
    for (size_t i = 0; i < on; i += on / 7 + 1)
        if (!s_check(o, &s, i))
            gqb_die("%s: wrong result at %zu", o->op, i);
    double moved = (double)bytes * s.nin + (double)obytes;
    printf("%-7s %10zu %12.1f %12.1f %10.2f %10.2f %8.2f\n", o->label, bytes, tn * 1e6, tk * 1e6,
           moved / tn / 1e9, moved / tk / 1e9, tn / tk);
    if (tn / tk < *worst)
        *worst = tn / tk;
    for (int i = 0; i < s.nin; i++)
        cl->ops->free(cl, &s.ib[i]);
    cl->ops->free(cl, &s.ob);
    free(s.x);
    free(s.y);
    free(s.z);
}

static void s_streaming(gq_backend_t *cl, int quick)
{
    printf("\n1. streaming f32 kernels, device-resident buffers vs the native C loop\n");
    printf("%-7s %10s %12s %12s %10s %10s %8s\n", "op", "bytes/in", "native us", "opencl us",
           "native GB/s", "opencl GB/s", "ratio");
    for (size_t o = 0; o < sizeof s_sops / sizeof s_sops[0]; o++) {
        double worst = 1e9;
        for (size_t bytes = 64 << 10; bytes <= ((size_t)64 << 20); bytes *= quick ? 16 : 4)
            s_stream_one(cl, &s_sops[o], bytes, &worst);
        printf("%-7s worst ratio native/opencl %.2f (target >= 0.9)\n", s_sops[o].label, worst);
    }
}

/* ---- 2. whole jobs through the executor ---- */

typedef struct {
    gq_exec_t *ex;
    Gq__Wire__Stage *stage;
    gq_view_t in[1];
} s_job_t;

static gq_status s_job(void *ctx)
{
    s_job_t *j = ctx;
    gq_exec_out_t out;
    char err[GQ_ERRLEN];
    gq_status rc = gq_exec_run(j->ex, &j->stage, 1, j->in, 1, &out, err, sizeof err);
    if (rc)
        gqb_die("%s", err);
    gq_exec_out_free(&out);
    return GQ_OK;
}

static void s_jobs(gq_backend_t *cl, gq_backend_t *zc, gq_backend_t *cpu, int quick)
{
    printf("\n2. whole tensor.scale jobs through the executor: [opencl] vs [cpu]; zc: OpenCL "
           "with zero-copy staging (GQ_CL_ZERO_COPY=1, CPU devices)\n");
    printf("%10s %12s %12s %8s %12s %8s\n", "bytes", "cpu us", "opencl us", "ratio", "zc us",
           "ratio");
    gq_exec_t ec, eo, ez;
    memset(&ec, 0, sizeof ec);
    memset(&eo, 0, sizeof eo);
    memset(&ez, 0, sizeof ez);
    ec.backends[ec.nbackends++] = cpu;
    eo.backends[eo.nbackends++] = cl;
    eo.strict = 1;
    ez.backends[ez.nbackends++] = zc ? zc : cl;
    ez.strict = 1;
    Gq__Wire__Param p;
    gq__wire__param__init(&p);
    p.name = "factor";
    p.value_case = GQ__WIRE__PARAM__VALUE_F;
    p.f = 0.5;
    Gq__Wire__Param *pp = &p;
    Gq__Wire__Stage st;
    gq__wire__stage__init(&st);
    st.op = "tensor.scale";
    st.n_params = 1;
    st.params = &pp;
    size_t pays = 0, first_loss_after = 0;
    double overhead_cpu = 0, overhead_cl = 0;
    for (size_t bytes = 64; bytes <= ((size_t)64 << 20); bytes *= quick ? 16 : 4) {
        float *x = gq_aligned_alloc(64, bytes);
        if (!x)
            gqb_die("out of memory");
        for (size_t i = 0; i < bytes / 4; i++)
            x[i] = (float)i;
        int64_t n = (int64_t)(bytes / 4);
        s_job_t j = {.stage = &st};
        gq_tdesc_init(&j.in[0].desc, GQ_F32, &n, 1);
        j.in[0].data = x;
        j.in[0].nbytes = bytes;
        j.ex = &ec;
        double tc = s_time(s_job, &j);
        j.ex = &eo;
        double to = s_time(s_job, &j);
        double tz = 0;
        if (zc) {
            j.ex = &ez;
            tz = s_time(s_job, &j);
        }
        printf("%10zu %12.1f %12.1f %8.2f %12.1f %8.2f\n", bytes, tc * 1e6, to * 1e6, tc / to,
               tz * 1e6, zc ? tc / tz : 0.0);
        if (bytes == 64)
            overhead_cpu = tc, overhead_cl = to;
        if (to < tc && !pays)
            pays = bytes;
        else if (to >= tc && pays)
            pays = 0, first_loss_after = bytes;
        free(x);
    }
    printf("\nper-job dispatch overhead (64 B job): opencl %.1f us, cpu %.1f us (%.1fx)\n",
           overhead_cl * 1e6, overhead_cpu * 1e6, overhead_cl / overhead_cpu);
    if (pays)
        printf("offload pays from %zu bytes per job up (opencl job faster than cpu job)\n", pays);
    else
        printf("offload never paid for tensor.scale jobs on this device (up to 64 MiB%s)\n",
               first_loss_after ? "; it won at some sizes below" : "");
}

/* ---- 3. batched FFTs against FFTW ---- */

typedef struct {
    const gq_fft_plan_t *plan;
    float *x, *y;
    size_t rows, n;
} s_fftw_t;

/* The peer: FFTW with a reused plan, row after row on one thread (bench_fft's peer). */
static gq_status s_fftw_rows(void *ctx)
{
    s_fftw_t *f = ctx;
    for (size_t r = 0; r < f->rows; r++)
        gq_fft_exec(f->plan, f->x + 2 * r * f->n, f->y + 2 * r * f->n);
    return GQ_OK;
}

static void s_fft_one(gq_backend_t *cl, size_t n, size_t rows, double *worst)
{
    s_stream_t s;
    s_fftw_t f = {gq_fft_plan(GQ_FFT_C2C_FWD, n, false), NULL, NULL, rows, n};
    char err[GQ_ERRLEN];
    memset(&s, 0, sizeof s);
    s.be = cl;
    s.nin = 1;
    if (gq_op_resolve(gq_op_find("dsp.fft"), NULL, 0, &s.args, err, sizeof err))
        gqb_die("%s", err);
    int64_t shape[2] = {(int64_t)rows, (int64_t)n};
    gq_tdesc_init(&s.in[0], GQ_C64, shape, 2);
    s.out = s.in[0];
    size_t bytes = gq_tdesc_nbytes(&s.in[0]);
    f.x = gq_fft_alloc(bytes);
    f.y = gq_fft_alloc(bytes);
    float *z = gq_fft_alloc(bytes);
    if (!f.plan || !f.x || !f.y || !z)
        gqb_die("out of memory");
    for (size_t i = 0; i < 2 * rows * n; i++)
        f.x[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    if (cl->ops->alloc(cl, bytes, &s.ib[0]) || cl->ops->upload(cl, &s.ib[0], f.x, bytes) ||
        cl->ops->alloc(cl, bytes, &s.ob))
        gqb_die("staging %zu bytes", bytes);
    double tf = s_time(s_fftw_rows, &f);
    double tk = s_time(s_kernel, &s);
    cl->ops->download(cl, z, &s.ob, bytes);
    double peak = 0, e = 0;
    for (size_t i = 0; i < 2 * rows * n; i++) {
        peak = fmax(peak, fabs(f.y[i]));
        e = fmax(e, fabs(f.y[i] - z[i]));
    }
    printf("%7zu %7zu %12.1f %12.1f %10.3f %10.2e\n", n, rows, tf * 1e6, tk * 1e6, tf / tk,
           e / peak);
    if (e / peak > 1e-5)
        gqb_die("dsp.fft %zu: error %.3g against FFTW", n, e / peak);
    if (tf / tk < *worst)
        *worst = tf / tk;
    cl->ops->free(cl, &s.ib[0]);
    cl->ops->free(cl, &s.ob);
    gq_fft_free(f.x);
    gq_fft_free(f.y);
    gq_fft_free(z);
}

static void s_ffts(gq_backend_t *cl, int quick)
{
    printf("\n3. batched c64 FFTs [rows, n] forward: dsp.fft on resident buffers vs FFTW "
           "(plan reused, one thread)\n");
    printf("%7s %7s %12s %12s %10s %10s\n", "n", "rows", "fftw us", "opencl us", "ratio",
           "rel err");
    double worst = 1e9;
    for (size_t n = 512; n <= 4096; n *= 2)
        s_fft_one(cl, n, (quick ? (size_t)1 << 17 : (size_t)1 << 19) / n, &worst);
    s_fft_one(cl, 1000, quick ? 128 : 512, &worst);
    printf("worst ratio fftw/opencl over n = 512..4096 and 1000 (Bluestein): %.2f (target >= "
           "0.5)\n",
           worst);
}

/* ---- 4. spectrogram batches: OpenCL vs the CPU backend ---- */

typedef struct {
    gq_backend_t *be;
    gq_args_t a;
    gq_tdesc_t in, out;
    gq_buffer_t ib, ob;
} s_spec_t;

static gq_status s_spec_run(void *ctx)
{
    s_spec_t *s = ctx;
    char err[GQ_ERRLEN];
    gq_status rc =
        s->be->ops->run(s->be, &s->a, &s->in, &s->ib, 1, &s->out, &s->ob, 1, err, sizeof err);
    if (rc)
        gqb_die("%s", err);
    return s->be->ops->sync ? s->be->ops->sync(s->be) : GQ_OK;
}

/* Stages x (and an output) on be: wrapped host memory on the CPU, device buffers else. */
static void s_spec_stage(s_spec_t *s, float *x, void *y)
{
    const gq_backend_ops_t *o = s->be->ops;
    size_t ni = gq_tdesc_nbytes(&s->in), no = gq_tdesc_nbytes(&s->out);
    if (o->wrap_host) {
        if (o->wrap_host(s->be, x, ni, &s->ib) || o->wrap_host(s->be, y, no, &s->ob))
            gqb_die("wrap");
        return;
    }
    if (o->alloc(s->be, ni, &s->ib) || o->upload(s->be, &s->ib, x, ni) ||
        o->alloc(s->be, no, &s->ob))
        gqb_die("staging %zu bytes", ni);
}

static double s_spec_time(gq_backend_t *be, const char *op, const gq_param_t *p, int np,
                          const gq_tdesc_t *in, float *x)
{
    s_spec_t s;
    char err[GQ_ERRLEN];
    memset(&s, 0, sizeof s);
    s.be = be;
    s.in = *in;
    int nout = 0;
    if (gq_op_resolve(gq_op_find(op), p, np, &s.a, err, sizeof err) ||
        gq_op_infer(&s.a, &s.in, 1, &s.out, &nout, err, sizeof err))
        gqb_die("%s", err);
    void *y = gq_aligned_alloc(64, gq_tdesc_nbytes(&s.out));
    if (!y)
        gqb_die("out of memory");
    s_spec_stage(&s, x, y);
    double t = s_time(s_spec_run, &s);
    be->ops->free(be, &s.ib);
    be->ops->free(be, &s.ob);
    free(y);
    return t;
}

static void s_spectrograms(gq_backend_t *cl, gq_backend_t *cpu, int quick)
{
    int64_t batch = quick ? 2 : 8, T = 60 * 16000;
    printf("\n4. power spectrograms of %lld x 60 s at 16 kHz (n_fft 512, hop 160): opencl vs "
           "the cpu backend (one thread)\n",
           (long long)batch);
    gq_param_t p[4] = {{"n_fft", {.type = GQ_PT_INT, .i = 512}},
                       {"hop_length", {.type = GQ_PT_INT, .i = 160}},
                       {"sr", {.type = GQ_PT_FLOAT, .f = 16000}},
                       {"n_mels", {.type = GQ_PT_INT, .i = 80}}};
    int64_t shape[2] = {batch, T};
    gq_tdesc_t in;
    gq_tdesc_init(&in, GQ_F32, shape, 2);
    float *x = gq_aligned_alloc(64, gq_tdesc_nbytes(&in));
    if (!x)
        gqb_die("out of memory");
    for (int64_t i = 0; i < batch * T; i++)
        x[i] = (float)sin((double)i * 0.01) * 0.5f + (float)((i * 7919) % 1000) / 5000.0f;
    double audio = (double)batch * 60.0;
    double tc = s_spec_time(cpu, "dsp.spectrogram", p, 2, &in, x);
    double to = s_spec_time(cl, "dsp.spectrogram", p, 2, &in, x);
    double tl = s_spec_time(cpu, "dsp.logmel", p, 4, &in, x);
    double tlo = s_spec_time(cl, "dsp.logmel", p, 4, &in, x);
    printf("%-28s %10s %14s\n", "", "ms", "x real time");
    printf("%-28s %10.1f %14.0f\n", "spectrogram on cpu", tc * 1e3, audio / tc);
    printf("%-28s %10.1f %14.0f\n", "spectrogram on opencl", to * 1e3, audio / to);
    printf("%-28s %10.1f %14.0f\n", "logmel (80 mels) on cpu", tl * 1e3, audio / tl);
    printf("%-28s %10.1f %14.0f\n", "logmel (80 mels) on opencl", tlo * 1e3, audio / tlo);
    printf("ratio cpu/opencl: spectrogram %.2f, logmel %.2f\n", tc / to, tl / tlo);
    free(x);
}

/* ---- 5. polyphase resampling 44.1 -> 16 kHz: OpenCL vs the CPU backend ---- */

static void s_resamples(gq_backend_t *cl, gq_backend_t *cpu, int quick)
{
    int64_t batch = quick ? 2 : 8, T = 60 * 44100;
    printf("\n5. polyphase resampling of %lld x 60 s from 44.1 to 16 kHz (160/441, 56 taps per "
           "phase): opencl vs the cpu backend (one thread)\n",
           (long long)batch);
    gq_param_t p[2] = {{"up", {.type = GQ_PT_INT, .i = 160}},
                       {"down", {.type = GQ_PT_INT, .i = 441}}};
    int64_t shape[2] = {batch, T};
    gq_tdesc_t in;
    gq_tdesc_init(&in, GQ_F32, shape, 2);
    float *x = gq_aligned_alloc(64, gq_tdesc_nbytes(&in));
    if (!x)
        gqb_die("out of memory");
    for (int64_t i = 0; i < batch * T; i++)
        x[i] = (float)sin((double)i * 0.013) * 0.5f + (float)((i * 7919) % 1000) / 5000.0f;
    double audio = (double)batch * 60.0;
    double tc = s_spec_time(cpu, "dsp.resample", p, 2, &in, x);
    double to = s_spec_time(cl, "dsp.resample", p, 2, &in, x);
    printf("%-28s %10s %14s\n", "", "ms", "x real time");
    printf("%-28s %10.1f %14.0f\n", "resample on cpu", tc * 1e3, audio / tc);
    printf("%-28s %10.1f %14.0f\n", "resample on opencl", to * 1e3, audio / to);
    printf("ratio cpu/opencl (resample): %.2f\n", tc / to);
    free(x);
}

int main(int argc, char **argv)
{
    gq_backend_config_t cfg = {.device_index = -1, .threads = 1};
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        long long v;
        if (!strcmp(argv[i], "--device") && i + 1 < argc) {
            const char *d = argv[++i];
            if (!gq_parse_int(d, 0, 1 << 20, &v))
                cfg.device_index = (int)v;
            else
                cfg.device_match = d;
        } else if (!strcmp(argv[i], "--platform") && i + 1 < argc) {
            cfg.platform = argv[++i];
        } else if (!strcmp(argv[i], "--quick")) {
            quick = 1;
            s_min_ms = 50;
        } else if (!strcmp(argv[i], "--min-ms") && i + 1 < argc &&
                   !gq_parse_int(argv[i + 1], 1, 100000, &v)) {
            s_min_ms = (double)v;
            i++;
        } else {
            fprintf(stderr, "usage: bench_opencl [--device NAME|INDEX] [--platform P] [--quick] "
                            "[--min-ms N]\n");
            return 2;
        }
    }
    gqb_init("bench_opencl");
    if (!getenv("GQ_LOG"))
        gq_log_set_level(GQ_LOG_WARN);
    char err[GQ_ERRLEN];
    gq_backend_t *cpu = gq_backend_cpu_new(&cfg, err, sizeof err);
    gq_backend_t *cl = gq_backend_opencl_new(&cfg, err, sizeof err);
    if (!cpu || !cl) {
        printf("bench_opencl: no OpenCL backend: %s\n", err);
        gq_backend_destroy(&cpu);
        return 77;
    }
    gq_device_info_t d, c;
    cl->ops->devices(cl, &d, 1);
    cpu->ops->devices(cpu, &c, 1);
    printf("opencl: %s (%s, driver %s, %u CUs, %.1f GiB%s)\ncpu:    %s (%u CPUs; the cpu "
           "backend runs one op on one thread)\n",
           d.name, d.vendor, d.driver, d.compute_units, (double)d.memory_bytes / (1u << 30),
           d.is_gpu ? ", GPU" : "", c.name, c.compute_units);
    gqb_arm_alarm(600);
    s_streaming(cl, quick);
    /* The zero-copy variant: a second backend made with GQ_CL_ZERO_COPY=1 (CPU devices). */
    setenv("GQ_CL_ZERO_COPY", "1", 1);
    gq_backend_t *zc = gq_backend_opencl_new(&cfg, err, sizeof err);
    unsetenv("GQ_CL_ZERO_COPY");
    if (zc && !zc->ops->wrap_host)
        gq_backend_destroy(&zc);
    s_jobs(cl, zc, cpu, quick);
    gq_backend_destroy(&zc);
    s_ffts(cl, quick);
    s_spectrograms(cl, cpu, quick);
    s_resamples(cl, cpu, quick);
    gq_backend_destroy(&cl);
    gq_backend_destroy(&cpu);
    return 0;
}
