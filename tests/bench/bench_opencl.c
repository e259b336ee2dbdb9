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
 * Self-contained (no broker); any OpenCL device: --device NAME|INDEX, --platform P.
 * usage: bench_opencl [--device D] [--platform P] [--quick] [--min-ms N] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend.h"
#include "benchlib.h"
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

static void s_args(gq_args_t *a, const char *op)
{
    gq_param_t p[2] = {{"factor", {.type = GQ_PT_FLOAT, .f = 0.5}},
                       {"offset", {.type = GQ_PT_FLOAT, .f = 0.0}}};
    char err[GQ_ERRLEN];
    if (gq_op_resolve(gq_op_find(op), p, strcmp(op, "tensor.scale") ? 0 : 2, a, err, sizeof err))
        gqb_die("%s", err);
}

static void s_streaming(gq_backend_t *cl, int quick)
{
    printf("\n1. streaming f32 kernels, device-resident buffers vs the native C loop\n");
    printf("%-7s %10s %12s %12s %10s %10s %8s\n", "op", "bytes/in", "native us", "opencl us",
           "native GB/s", "opencl GB/s", "ratio");
    const char *ops[2] = {"tensor.scale", "tensor.add"};
    for (int o = 0; o < 2; o++)
        for (size_t bytes = 64 << 10; bytes <= ((size_t)64 << 20); bytes *= quick ? 16 : 4) {
            s_stream_t s;
            memset(&s, 0, sizeof s);
            s.be = cl;
            s.n = bytes / 4;
            s.nin = o ? 2 : 1;
            s_args(&s.args, ops[o]);
            int64_t n = (int64_t)s.n;
            gq_tdesc_init(&s.in[0], GQ_F32, &n, 1);
            s.in[1] = s.out = s.in[0];
            s.x = gq_aligned_alloc(64, bytes);
            s.y = gq_aligned_alloc(64, bytes);
            s.z = gq_aligned_alloc(64, bytes);
            if (!s.x || !s.y || !s.z)
                gqb_die("out of memory");
            for (size_t i = 0; i < s.n; i++)
                s.x[i] = (float)i, s.y[i] = 1.0f, s.z[i] = 0.0f;
            for (int i = 0; i < s.nin; i++)
                if (cl->ops->alloc(cl, bytes, &s.ib[i]) ||
                    cl->ops->upload(cl, &s.ib[i], i ? s.y : s.x, bytes))
                    gqb_die("upload %zu bytes", bytes);
            if (cl->ops->alloc(cl, bytes, &s.ob))
                gqb_die("alloc %zu bytes", bytes);
            double tn = s_time(o ? s_native_add : s_native_gain, &s);
            double tk = s_time(s_kernel, &s);
            /* check the device's answer once */
            cl->ops->download(cl, s.z, &s.ob, bytes);
            for (size_t i = 0; i < s.n; i += s.n / 7 + 1)
                if (s.z[i] != (o ? s.x[i] + 1.0f : s.x[i] * 0.5f))
                    gqb_die("%s: wrong result at %zu", ops[o], i);
            double moved = (double)bytes * (s.nin + 1);
            printf("%-7s %10zu %12.1f %12.1f %10.2f %10.2f %8.2f\n", ops[o] + 7, bytes, tn * 1e6,
                   tk * 1e6, moved / tn / 1e9, moved / tk / 1e9, tn / tk);
            for (int i = 0; i < s.nin; i++)
                cl->ops->free(cl, &s.ib[i]);
            cl->ops->free(cl, &s.ob);
            free(s.x);
            free(s.y);
            free(s.z);
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

static void s_jobs(gq_backend_t *cl, gq_backend_t *cpu, int quick)
{
    printf("\n2. whole tensor.scale jobs through the executor: [opencl] vs [cpu]\n");
    printf("%10s %12s %12s %8s\n", "bytes", "cpu us", "opencl us", "ratio");
    gq_exec_t ec, eo;
    memset(&ec, 0, sizeof ec);
    memset(&eo, 0, sizeof eo);
    ec.backends[ec.nbackends++] = cpu;
    eo.backends[eo.nbackends++] = cl;
    eo.strict = 1;
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
        printf("%10zu %12.1f %12.1f %8.2f\n", bytes, tc * 1e6, to * 1e6, tc / to);
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
    s_jobs(cl, cpu, quick);
    gq_backend_destroy(&cl);
    gq_backend_destroy(&cpu);
    return 0;
}
