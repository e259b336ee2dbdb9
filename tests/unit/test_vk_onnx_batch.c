/* The Vulkan ONNX accelerator's submissions: a run's claimed steps are recorded on the
 * thread's stream and submitted together when the host needs a value. A model
 * x, z -> Conv(x, W) -> Relu -> Add z -> Sin (CPU) -> Sigmoid -> Mul (the Relu) -> Neg^k -> y
 * checks, against the same model on the CPU executor: the submissions per run (one per
 * download: the Sin's input and y; one per claimed step when profiling; one more when a
 * run passes the descriptor pool's 256 dispatches), staged transfers (GQ_VK_STAGING=1), a
 * failed submission or allocation mid-run failing the run with a message naming the steps
 * and the next run working, runs on 20 threads at once, and a lost device. Skipped (77)
 * without a Vulkan device. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "check.h"
#include "onnx_accel.h"
#include "onnx_exec.h"

#ifndef GQ_HAVE_VULKAN
int main(void)
{
    printf("SKIP: built without Vulkan\n");
    return 77;
}
#else
#include "gq_vulkan.h"

#define S_N 2 /* images */
#define S_C 3
#define S_M 4
#define S_H 8
#define S_OH (S_H - 2)
#define S_XN (S_N * S_C * S_H * S_H)
#define S_YN (S_N * S_M * S_OH * S_OH)
#define S_MAXN 320
#define S_THREADS 20 /* past GQ_VK_MAX_STREAMS (16): some threads share a stream */

typedef struct {
    Onnx__ModelProto m;
    Onnx__GraphProto g;
    Onnx__OperatorSetIdProto op, *ops[1];
    Onnx__NodeProto n[S_MAXN], *np[S_MAXN];
    char *in[S_MAXN][2], *out[S_MAXN][1];
    char names[S_MAXN][16];
    Onnx__ValueInfoProto vin[2], vout, *vinp[2], *voutp[1];
    Onnx__TensorProto w, *wp[1];
    float wdata[S_M * S_C * 9];
    int64_t wdims[4];
} s_model_t;

static s_model_t s_b;

static void s_node(int i, const char *op, char *a, char *b, char *out)
{
    onnx__node_proto__init(&s_b.n[i]);
    s_b.n[i].op_type = (char *)op;
    s_b.in[i][0] = a, s_b.in[i][1] = b, s_b.out[i][0] = out;
    s_b.n[i].n_input = b ? 2 : 1, s_b.n[i].input = s_b.in[i];
    s_b.n[i].n_output = 1, s_b.n[i].output = s_b.out[i];
    s_b.np[i] = &s_b.n[i];
}

/* The model with k Neg steps at the end, packed; NULL when out of memory. */
static uint8_t *s_model(int k, size_t *len)
{
    static const char *ops[] = {"Conv", "Relu", "Add", "Sin", "Sigmoid", "Mul"};
    memset(&s_b, 0, sizeof s_b);
    onnx__model_proto__init(&s_b.m);
    onnx__graph_proto__init(&s_b.g);
    onnx__operator_set_id_proto__init(&s_b.op);
    s_b.op.domain = "", s_b.op.has_version = 1, s_b.op.version = 17;
    s_b.ops[0] = &s_b.op;
    s_b.m.has_ir_version = 1, s_b.m.ir_version = 8;
    s_b.m.n_opset_import = 1, s_b.m.opset_import = s_b.ops;
    s_b.m.graph = &s_b.g;
    int nn = 6 + k;
    for (int i = 0; i < nn; i++)
        snprintf(s_b.names[i], sizeof s_b.names[i], i == nn - 1 ? "y" : "t%d", i);
    s_node(0, ops[0], "x", "W", s_b.names[0]);
    s_node(1, ops[1], s_b.names[0], NULL, s_b.names[1]);
    s_node(2, ops[2], s_b.names[1], "z", s_b.names[2]);
    s_node(3, ops[3], s_b.names[2], NULL, s_b.names[3]);
    s_node(4, ops[4], s_b.names[3], NULL, s_b.names[4]);
    s_node(5, ops[5], s_b.names[4], s_b.names[1], s_b.names[5]);
    for (int i = 6; i < nn; i++)
        s_node(i, "Neg", s_b.names[i - 1], NULL, s_b.names[i]);
    s_b.g.n_node = (size_t)nn, s_b.g.node = s_b.np;
    for (int i = 0; i < 2; i++) {
        onnx__value_info_proto__init(&s_b.vin[i]);
        s_b.vin[i].name = i ? "z" : "x";
        s_b.vinp[i] = &s_b.vin[i];
    }
    onnx__value_info_proto__init(&s_b.vout);
    s_b.vout.name = "y", s_b.voutp[0] = &s_b.vout;
    s_b.g.n_input = 2, s_b.g.input = s_b.vinp;
    s_b.g.n_output = 1, s_b.g.output = s_b.voutp;
    onnx__tensor_proto__init(&s_b.w);
    s_b.w.name = "W";
    s_b.w.has_data_type = 1, s_b.w.data_type = 1;
    s_b.wdims[0] = S_M, s_b.wdims[1] = S_C, s_b.wdims[2] = 3, s_b.wdims[3] = 3;
    s_b.w.n_dims = 4, s_b.w.dims = s_b.wdims;
    for (int i = 0; i < S_M * S_C * 9; i++)
        s_b.wdata[i] = (float)((i * 7) % 11 - 5) * 0.05f;
    s_b.w.n_float_data = S_M * S_C * 9, s_b.w.float_data = s_b.wdata;
    s_b.wp[0] = &s_b.w;
    s_b.g.n_initializer = 1, s_b.g.initializer = s_b.wp;
    *len = onnx__model_proto__get_packed_size(&s_b.m);
    uint8_t *buf = malloc(*len + 1);
    if (buf)
        onnx__model_proto__pack(&s_b.m, buf);
    return buf;
}

/* Inputs of run `seed`. */
static void s_inputs(int seed, float *x, float *z, gq_view_t *in)
{
    for (int i = 0; i < S_XN; i++)
        x[i] = (float)((i * 13 + seed * 5) % 17 - 8) * 0.125f;
    for (int i = 0; i < S_YN; i++)
        z[i] = (float)((i * 3 + seed) % 7 - 3) * 0.25f;
    int64_t xs[4] = {S_N, S_C, S_H, S_H}, zs[4] = {S_N, S_M, S_OH, S_OH};
    gq_tdesc_init(&in[0].desc, GQ_F32, xs, 4);
    in[0].data = x, in[0].nbytes = sizeof(float) * S_XN;
    gq_tdesc_init(&in[1].desc, GQ_F32, zs, 4);
    in[1].data = z, in[1].nbytes = sizeof(float) * S_YN;
}

typedef struct {
    gq_onnx_model_t *model;
    gq_onnx_plan_t *cpu, *vk;
} s_plans_t;

static bool s_plans(const uint8_t *buf, size_t len, gq_onnx_accel_t *ax, s_plans_t *p)
{
    char err[512];
    gq_status rc;
    memset(p, 0, sizeof *p);
    p->model = gq_onnx_model_parse(buf, len, NULL, NULL, &rc, err, sizeof err);
    if (p->model)
        p->cpu = gq_onnx_plan_new(p->model, &rc, err, sizeof err);
    if (p->cpu)
        p->vk = gq_onnx_plan_new(p->model, &rc, err, sizeof err);
    if (p->vk && gq_onnx_plan_set_accel(p->vk, ax, err, sizeof err) != GQ_OK)
        gq_onnx_plan_destroy(&p->vk);
    CHECK(p->vk, "plans: %s", err);
    return p->vk != NULL;
}

/* The model with k extra steps (s_model), planned (s_plans); NULL (checks failed) when not. */
static uint8_t *s_open(int k, gq_onnx_accel_t *ax, s_plans_t *p)
{
    size_t len;
    uint8_t *buf = s_model(k, &len);
    if (!buf || !s_plans(buf, len, ax, p)) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void s_plans_free(s_plans_t *p)
{
    gq_onnx_plan_destroy(&p->vk);
    gq_onnx_plan_destroy(&p->cpu);
    gq_onnx_model_destroy(&p->model);
}

/* max |a - b| over y, or INFINITY when the shapes differ. */
static double s_diff(const gq_view_t *a, const gq_view_t *b)
{
    if (a->nbytes != b->nbytes || a->nbytes != sizeof(float) * S_YN)
        return INFINITY;
    double worst = 0;
    for (int i = 0; i < S_YN; i++) {
        double e = fabs((double)((const float *)a->data)[i] - ((const float *)b->data)[i]);
        worst = e > worst ? e : worst;
    }
    return worst;
}

static uint64_t s_submits(gq_backend_t *be)
{
    gq_vk_stats_t st;
    return gq_backend_vulkan_stats(be, &st) == GQ_OK ? st.submits : 0;
}

/* Runs seed on both plans; the device run's status, its error in err, and whether y
 * matched (when it ran). */
static gq_status s_run(s_plans_t *p, int seed, bool *same, char *err, size_t errlen)
{
    float x[S_XN], z[S_YN];
    gq_view_t in[2], want, got;
    char e2[512];
    s_inputs(seed, x, z, in);
    *same = false;
    gq_status rc = gq_onnx_plan_run(p->cpu, in, 2, &want, 1, e2, sizeof e2);
    CHECK(rc == GQ_OK, "cpu run: %s", e2);
    if (rc)
        return GQ_OK;
    rc = gq_onnx_plan_run(p->vk, in, 2, &got, 1, err, errlen);
    if (!rc) {
        double d = s_diff(&got, &want);
        *same = d < 1e-4;
        if (!*same)
            fprintf(stderr, "seed %d: y differs by %g\n", seed, d);
        free(got.data);
    }
    free(want.data);
    return rc;
}

/* Submissions per run over 3 runs after a warm-up one, each checked against the CPU. */
static uint64_t s_per_run(gq_backend_t *be, s_plans_t *p, const char *what)
{
    char err[512];
    bool same;
    CHECK(s_run(p, 0, &same, err, sizeof err) == GQ_OK && same, "%s: warm-up: %s", what, err);
    uint64_t s0 = s_submits(be);
    for (int r = 1; r <= 3; r++)
        CHECK(s_run(p, r, &same, err, sizeof err) == GQ_OK && same, "%s: run %d: %s", what, r, err);
    return (s_submits(be) - s0) / 3;
}

static void s_test_batching(gq_backend_t *be, gq_onnx_accel_t *ax, bool staged)
{
    const char *what = staged ? "staged" : "mapped";
    s_plans_t p;
    uint8_t *buf = s_open(0, ax, &p);
    if (!buf)
        return;
    uint64_t n = s_per_run(be, &p, what);
    int acc = 0, steps = 0;
    gq_onnx_plan_last_run(p.vk, &acc, &steps);
    CHECK(acc == steps - 1, "%s: %d of %d steps on the device (Sin on the CPU)", what, acc, steps);
    /* The Sin's input and y are read back: two submissions, the steps between them in each */
    CHECK(n == 2, "%s: %llu submissions per run", what, (unsigned long long)n);
    gq_onnx_plan_profile(p.vk, true);
    n = s_per_run(be, &p, what);
    gq_onnx_plan_profile(p.vk, false);
    /* staged: the two reads after a sync copy in a submission of their own */
    CHECK(n == (uint64_t)acc + (staged ? 2 : 0),
          "%s: profiling: %llu submissions per run for %d steps", what, (unsigned long long)n, acc);
    s_plans_free(&p);
    free(buf);

    /* 300 more steps pass the descriptor pool's 256 sets: one more submission */
    if (!(buf = s_open(300, ax, &p)))
        return;
    n = s_per_run(be, &p, what);
    CHECK(n == 3, "%s: 306 steps: %llu submissions per run", what, (unsigned long long)n);
    s_plans_free(&p);
    free(buf);
}

/* Injected failures mid-run: the run fails naming the cause, the next one works. */
static void s_test_faults(gq_backend_t *be, gq_onnx_accel_t *ax)
{
    s_plans_t p;
    uint8_t *buf = s_open(0, ax, &p);
    if (!buf)
        return;
    char err[512];
    bool same;
    CHECK(s_run(&p, 0, &same, err, sizeof err) == GQ_OK && same, "warm-up: %s", err);
    for (int after = 0; after < 2; after++) { /* the Sin's read, then y's */
        gq_backend_vulkan_inject(be, GQ_VK_FAULT_SUBMIT, -2 /* OUT_OF_DEVICE_MEMORY */, after, 1);
        gq_status rc = s_run(&p, 1, &same, err, sizeof err);
        CHECK(rc == GQ_EDEVICE_OOM && strstr(err, "vkQueueSubmit") &&
                  strstr(err, "(one submission) before downloading a value"),
              "failed submission %d: %s (%s)", after, gq_status_name(rc), err);
        printf("failed submission %d: %s\n", after, err);
        CHECK(s_run(&p, 2, &same, err, sizeof err) == GQ_OK && same, "after it: %s", err);
    }
    gq_backend_vulkan_inject(be, GQ_VK_FAULT_ALLOC, -2, 1, 1); /* the Relu's output, say */
    gq_status rc = s_run(&p, 3, &same, err, sizeof err);
    CHECK(rc == GQ_EDEVICE_OOM && strstr(err, "vkAllocateMemory"), "failed allocation: %s (%s)",
          gq_status_name(rc), err);
    CHECK(s_run(&p, 4, &same, err, sizeof err) == GQ_OK && same, "after it: %s", err);
    s_plans_free(&p);
    free(buf);
}

typedef struct {
    gq_onnx_accel_t *ax;
    const uint8_t *buf;
    size_t len;
    int id, bad;
} s_thread_t;

static void *s_thread(void *arg)
{
    s_thread_t *t = arg;
    s_plans_t p;
    char err[512];
    t->bad = 1;
    if (!s_plans(t->buf, t->len, t->ax, &p))
        return NULL;
    t->bad = 0;
    for (int r = 0; r < 10; r++) {
        bool same;
        gq_status rc = s_run(&p, t->id * 100 + r, &same, err, sizeof err);
        t->bad += rc != GQ_OK || !same;
        if (rc)
            fprintf(stderr, "thread %d run %d: %s\n", t->id, r, err);
    }
    s_plans_free(&p);
    return NULL;
}

/* Plans on 20 threads at once over one backend: each thread's stream records its runs, and
 * past 16 streams threads share one (and submit each other's recorded steps). */
static void s_test_threads(gq_backend_t *be, gq_onnx_accel_t *ax)
{
    size_t len;
    uint8_t *buf = s_model(20, &len);
    if (!buf)
        return;
    pthread_t th[S_THREADS];
    s_thread_t t[S_THREADS];
    for (int i = 0; i < S_THREADS; i++) {
        t[i] = (s_thread_t){.ax = ax, .buf = buf, .len = len, .id = i};
        CHECK(pthread_create(&th[i], NULL, s_thread, &t[i]) == 0, "thread %d", i);
    }
    for (int i = 0; i < S_THREADS; i++) {
        pthread_join(th[i], NULL);
        CHECK(!t[i].bad, "thread %d: %d bad runs", i, t[i].bad);
    }
    gq_vk_stats_t st;
    CHECK(gq_backend_vulkan_stats(be, &st) == GQ_OK && st.streams == 16, "%d streams", st.streams);
    free(buf);
}

/* A lost device fails the run; with the accelerator off the plan runs on the CPU. */
static void s_test_lost(gq_backend_t *be, gq_onnx_accel_t *ax)
{
    s_plans_t p;
    uint8_t *buf = s_open(0, ax, &p);
    if (!buf)
        return;
    char err[512];
    bool same;
    gq_backend_vulkan_inject(be, GQ_VK_FAULT_SUBMIT, -4 /* DEVICE_LOST */, 0, 1);
    gq_status rc = s_run(&p, 1, &same, err, sizeof err);
    CHECK(rc == GQ_EDEVICE_LOST && strstr(err, "VK_ERROR_DEVICE_LOST"), "lost: %s (%s)",
          gq_status_name(rc), err);
    printf("lost: %s\n", err);
    rc = s_run(&p, 2, &same, err, sizeof err);
    CHECK(rc == GQ_EDEVICE_LOST, "after the loss: %s (%s)", gq_status_name(rc), err);
    printf("after the loss: %s\n", err);
    gq_onnx_plan_accel_enable(p.vk, false);
    CHECK(s_run(&p, 3, &same, err, sizeof err) == GQ_OK && same, "on the CPU: %s", err);
    s_plans_free(&p);
    free(buf);
}

static gq_backend_t *s_backend(char *err, size_t errlen)
{
    gq_backend_config_t cfg = {.device_index = -1};
    gq_backend_config_device(&cfg, getenv("GQ_VK_DEVICE"));
    return gq_backend_vulkan_new(&cfg, err, errlen);
}

int main(void)
{
    char err[512];
    gq_backend_t *be = s_backend(err, sizeof err);
    if (!be) {
        printf("SKIP: no Vulkan device (%s)\n", err);
        return 77;
    }
    gq_onnx_accel_t *ax = gq_onnx_accel_vulkan_new(be, err, sizeof err);
    CHECK(ax, "accelerator: %s", err);
    if (ax) {
        s_test_batching(be, ax, false);
        s_test_faults(be, ax);
        s_test_threads(be, ax);
        s_test_lost(be, ax); /* last: the backend stays lost */
    }
    gq_onnx_accel_destroy(&ax);
    gq_backend_destroy(&be);

    setenv("GQ_VK_STAGING", "1", 1);
    be = s_backend(err, sizeof err);
    unsetenv("GQ_VK_STAGING");
    CHECK(be, "staged backend: %s", err);
    ax = be ? gq_onnx_accel_vulkan_new(be, err, sizeof err) : NULL;
    if (ax)
        s_test_batching(be, ax, true);
    gq_onnx_accel_destroy(&ax);
    gq_backend_destroy(&be);
    printf("vulkan onnx batching: %d checks, %d failed\n", s_checks, s_failed);
    return s_failed != 0;
}
#endif
