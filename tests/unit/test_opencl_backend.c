/* The OpenCL backend on a real device (PoCL in CI): the program cache (built, loaded,
 * corrupt and truncated entries rebuilt and replaced), the executor with OpenCL first
 * (pipelines keep intermediates on the device, results equal the CPU's, the pool stops
 * making buffers in steady state), fallbacks counted per op and backend, strict mode,
 * device errors (injected OOM, lost device) failing or retrying a stage, and several
 * threads sharing the backend. Skipped (77) without an OpenCL device. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "backend.h"
#include "exec.h"
#include "util.h"

#ifndef GQ_HAVE_OPENCL
int main(void)
{
    printf("SKIP: built without OpenCL\n");
    return 77;
}
#else
#include "opencl.h"

static int s_failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            s_failures++;                                                                          \
        }                                                                                          \
    } while (0)

static gq_backend_config_t s_cfg = {.device_index = -1, .threads = 1};

static gq_backend_t *s_open(void)
{
    char err[256];
    gq_backend_t *be = gq_backend_opencl_new(&s_cfg, err, sizeof err);
    if (!be)
        fprintf(stderr, "opencl: %s\n", err);
    return be;
}

/* ---- program cache ---- */

static gq_cl_prog_origin_t s_origin(char *file, size_t len)
{
    gq_backend_t *be = s_open();
    gq_cl_stats_t st;
    if (!be || gq_backend_opencl_stats(be, &st)) {
        gq_backend_destroy(&be);
        return (gq_cl_prog_origin_t)-1;
    }
    if (file)
        snprintf(file, len, "%s", st.cache_file);
    gq_backend_destroy(&be);
    return st.program;
}

static void s_damage(const char *path, int truncate_to)
{
    FILE *f = fopen(path, "r+b");
    CHECK(f, "open %s", path);
    if (!f)
        return;
    if (truncate_to >= 0) {
        CHECK(ftruncate(fileno(f), truncate_to) == 0, "truncate");
    } else {
        fseek(f, 4096, SEEK_SET);
        int c = fgetc(f);
        fseek(f, 4096, SEEK_SET);
        fputc(c ^ 0xff, f);
    }
    fclose(f);
}

static void s_test_cache(const char *dir)
{
    char file[512];
    CHECK(s_origin(file, sizeof file) == GQ_CL_PROG_BUILT, "first start builds");
    CHECK(access(file, R_OK) == 0, "cache file %s written", file);
    CHECK(s_origin(NULL, 0) == GQ_CL_PROG_CACHED, "second start loads the cache");
    s_damage(file, -1);
    CHECK(s_origin(NULL, 0) == GQ_CL_PROG_REBUILT, "a corrupt entry is rebuilt");
    CHECK(s_origin(NULL, 0) == GQ_CL_PROG_CACHED, "and replaced by a valid one");
    s_damage(file, 100);
    CHECK(s_origin(NULL, 0) == GQ_CL_PROG_REBUILT, "a truncated entry is rebuilt");
    CHECK(s_origin(NULL, 0) == GQ_CL_PROG_CACHED, "and replaced");
    printf("program cache: built, loaded, corrupt and truncated entries rebuilt (%s)\n", dir);
}

/* ---- executor ---- */

typedef struct {
    Gq__Wire__Stage st[4], *stp[4];
    Gq__Wire__Param p[4][3], *pp[4][3];
    int n;
} s_job_t;

static void s_stage(s_job_t *j, const char *op)
{
    Gq__Wire__Stage *s = &j->st[j->n];
    gq__wire__stage__init(s);
    s->op = (char *)op;
    s->params = j->pp[j->n];
    j->stp[j->n] = s;
    j->n++;
}

static void s_param(s_job_t *j, const char *name, char type, double v, const char *str)
{
    Gq__Wire__Stage *s = &j->st[j->n - 1];
    Gq__Wire__Param *p = &j->p[j->n - 1][s->n_params];
    gq__wire__param__init(p);
    p->name = (char *)name;
    if (type == 'f') {
        p->value_case = GQ__WIRE__PARAM__VALUE_F;
        p->f = v;
    } else if (type == 'i') {
        p->value_case = GQ__WIRE__PARAM__VALUE_I;
        p->i = (int64_t)v;
    } else if (type == 'b') {
        p->value_case = GQ__WIRE__PARAM__VALUE_B;
        p->b = v != 0;
    } else {
        p->value_case = GQ__WIRE__PARAM__VALUE_S;
        p->s = (char *)str;
    }
    j->pp[j->n - 1][s->n_params++] = p;
}

/* add(x, y) -> scale -> sum(axis 1): three stages. */
static void s_pipeline(s_job_t *j)
{
    memset(j, 0, sizeof *j);
    s_stage(j, "tensor.add");
    s_stage(j, "tensor.scale");
    s_param(j, "factor", 'f', 0.5, NULL);
    s_param(j, "offset", 'f', 1.0, NULL);
    s_stage(j, "tensor.sum");
    s_param(j, "axis", 'i', 1, NULL);
}

#define S_ROWS 64
#define S_COLS 1000

static float s_x[S_ROWS * S_COLS], s_y[S_COLS];

static void s_inputs(gq_view_t in[2])
{
    int64_t sx[2] = {S_ROWS, S_COLS}, sy[1] = {S_COLS};
    gq_tdesc_init(&in[0].desc, GQ_F32, sx, 2);
    gq_tdesc_init(&in[1].desc, GQ_F32, sy, 1);
    in[0].data = s_x;
    in[0].nbytes = sizeof s_x;
    in[1].data = s_y;
    in[1].nbytes = sizeof s_y;
}

static gq_status s_exec(gq_exec_t *ex, s_job_t *j, const gq_view_t *in, int nin, gq_exec_out_t *out,
                        char *err, size_t errlen)
{
    return gq_exec_run(ex, j->stp, (size_t)j->n, in, nin, out, err, errlen);
}

static void s_test_exec(gq_backend_t *cl, gq_backend_t *cpu)
{
    for (int i = 0; i < S_ROWS * S_COLS; i++)
        s_x[i] = (float)((i * 37) % 101) / 7.0f - 5.0f;
    for (int i = 0; i < S_COLS; i++)
        s_y[i] = (float)i / 100.0f;
    gq_exec_t ref, ex;
    memset(&ref, 0, sizeof ref);
    memset(&ex, 0, sizeof ex);
    ref.backends[ref.nbackends++] = cpu;
    ex.backends[ex.nbackends++] = cl;
    ex.backends[ex.nbackends++] = cpu;
    s_job_t j;
    s_pipeline(&j);
    gq_view_t in[2];
    s_inputs(in);
    gq_exec_out_t a, b;
    char err[256];
    CHECK(s_exec(&ref, &j, in, 2, &a, err, sizeof err) == GQ_OK, "cpu: %s", err);
    CHECK(s_exec(&ex, &j, in, 2, &b, err, sizeof err) == GQ_OK, "opencl: %s", err);
    CHECK(a.n == 1 && b.n == 1 && a.t[0].nbytes == S_ROWS * sizeof(float) &&
              !memcmp(a.t[0].data, b.t[0].data, a.t[0].nbytes),
          "pipeline results equal");
    for (int k = 0; k < 3; k++)
        CHECK(b.backend[k] && !strcmp(b.backend[k], "opencl"), "stage %d ran on %s", k,
              b.backend[k]);
    gq_exec_out_free(&a);
    gq_exec_out_free(&b);
    CHECK(atomic_load(&ex.fallbacks) == 0, "no fallback");

    /* Steady state: after a warm-up job, more jobs make no buffer. Each stage's outputs
     * stay on the device: the 3-stage job allocates 2 inputs + 3 outputs. */
    gq_cl_stats_t s0, s1;
    gq_backend_opencl_stats(cl, &s0);
    for (int i = 0; i < 50; i++) {
        CHECK(s_exec(&ex, &j, in, 2, &b, err, sizeof err) == GQ_OK, "%s", err);
        gq_exec_out_free(&b);
    }
    gq_backend_opencl_stats(cl, &s1);
    CHECK(s1.pool.misses == s0.pool.misses && s1.pool.hits == s0.pool.hits + 50 * 5,
          "pool: misses %llu -> %llu, hits %llu -> %llu", (unsigned long long)s0.pool.misses,
          (unsigned long long)s1.pool.misses, (unsigned long long)s0.pool.hits,
          (unsigned long long)s1.pool.hits);
    CHECK(s1.pool.live_bytes == 0, "every buffer returned: %zu live", s1.pool.live_bytes);
    printf("exec: 3-stage pipeline on opencl equals the cpu; 50 jobs, 0 new buffers, 250 "
           "pool hits\n");

    /* An op/dtype without a kernel falls back to the CPU, counted per op and backend. */
    s_job_t c;
    memset(&c, 0, sizeof c);
    s_stage(&c, "tensor.cast");
    s_param(&c, "to", 's', 0, "f16");
    s_stage(&c, "tensor.scale");
    s_param(&c, "factor", 'f', 2, NULL);
    s_job_t c32;
    memset(&c32, 0, sizeof c32);
    s_stage(&c32, "tensor.cast");
    s_param(&c32, "to", 's', 0, "f16");
    CHECK(s_exec(&ex, &c32, in, 1, &b, err, sizeof err) == GQ_OK, "cast f16: %s", err);
    CHECK(b.backend[0] && !strcmp(b.backend[0], "cpu"), "cast to f16 ran on %s", b.backend[0]);
    gq_exec_out_free(&b);
    CHECK(gq_exec_fallbacks(&ex, "tensor.cast", "opencl") == 1 &&
              gq_exec_fallbacks(&ex, "tensor.add", "opencl") == 0 &&
              gq_exec_fallbacks(&ex, "tensor.cast", "cpu") == 0,
          "fallback counted once for (tensor.cast, opencl)");
    char text[512];
    CHECK(gq_exec_fallbacks_text(&ex, text, sizeof text) == 1 &&
              strstr(text, "gpuq_worker_fallbacks_total{op=\"tensor.cast\",backend=\"opencl\"} 1"),
          "text: %s", text);
    /* A pipeline that leaves the device and comes back: add (opencl) -> cast to f16
     * (cpu: downloads) -> cast to f32 (cpu: f16 inputs have no kernel). */
    s_job_t m;
    memset(&m, 0, sizeof m);
    s_stage(&m, "tensor.add");
    s_stage(&m, "tensor.cast");
    s_param(&m, "to", 's', 0, "f16");
    s_stage(&m, "tensor.cast");
    s_param(&m, "to", 's', 0, "f32");
    CHECK(s_exec(&ref, &m, in, 2, &a, err, sizeof err) == GQ_OK, "%s", err);
    CHECK(s_exec(&ex, &m, in, 2, &b, err, sizeof err) == GQ_OK, "%s", err);
    CHECK(b.backend[0] && b.backend[1] && b.backend[2] && !strcmp(b.backend[0], "opencl") &&
              !strcmp(b.backend[1], "cpu") && !strcmp(b.backend[2], "cpu"),
          "mixed pipeline backends %s %s %s", b.backend[0], b.backend[1], b.backend[2]);
    CHECK(!memcmp(a.t[0].data, b.t[0].data, a.t[0].nbytes), "mixed pipeline equal");
    gq_exec_out_free(&a);
    gq_exec_out_free(&b);

    /* Strict: the fallback is an error. */
    ex.strict = 1;
    gq_status rc = s_exec(&ex, &c32, in, 1, &b, err, sizeof err);
    CHECK(rc == GQ_EUNSUPPORTED && strstr(err, "tensor.cast: opencl declined it"), "strict: %d %s",
          rc, err);
    printf("strict: %s\n", err);

    /* Device OOM: strict fails the job naming op, call and code. */
    gq_backend_opencl_inject(cl, GQ_CL_FAULT_LAUNCH, -5, 0, 1);
    rc = s_exec(&ex, &j, in, 2, &b, err, sizeof err);
    CHECK(rc == GQ_EDEVICE_OOM &&
              !strcmp(err, "tensor.add: opencl: clEnqueueNDRangeKernel: CL_OUT_OF_RESOURCES"),
          "strict OOM: %d '%s'", rc, err);
    printf("strict, injected: %s\n", err);
    gq_backend_opencl_inject(cl, GQ_CL_FAULT_ALLOC, -4, 0, 1);
    rc = s_exec(&ex, &j, in, 2, &b, err, sizeof err);
    CHECK(rc == GQ_EDEVICE_OOM && strstr(err, "CL_MEM_OBJECT_ALLOCATION_FAILURE") &&
              strstr(err, "tensor.add"),
          "strict alloc OOM: %d '%s'", rc, err);
    printf("strict, injected: %s\n", err);
    ex.strict = 0;

    /* Not strict: the stage is retried on the CPU and counted; the job succeeds. */
    CHECK(s_exec(&ref, &j, in, 2, &a, err, sizeof err) == GQ_OK, "%s", err);
    gq_backend_opencl_inject(cl, GQ_CL_FAULT_LAUNCH, -5, 0, 1);
    uint64_t before = atomic_load(&ex.retries);
    rc = s_exec(&ex, &j, in, 2, &b, err, sizeof err);
    CHECK(rc == GQ_OK && !memcmp(a.t[0].data, b.t[0].data, a.t[0].nbytes), "retry: %d %s", rc, err);
    CHECK(rc || (!strcmp(b.backend[0], "cpu") && !strcmp(b.backend[1], "opencl")),
          "retried stage 0 on cpu, stage 1 back on opencl");
    CHECK(atomic_load(&ex.retries) == before + 1 &&
              gq_exec_fallbacks(&ex, "tensor.add", "opencl") == 1,
          "retry counted: %llu",
          (unsigned long long)gq_exec_fallbacks(&ex, "tensor.add", "opencl"));
    if (!rc)
        gq_exec_out_free(&b);
    /* A failure in the middle of a pipeline: scale's launch fails, so scale runs on the
     * CPU from add's output read back from the device, and sum goes back to the device
     * with an upload: opencl -> cpu -> opencl, equal to the CPU's result. */
    gq_backend_opencl_inject(cl, GQ_CL_FAULT_LAUNCH, -5, 1, 1);
    rc = s_exec(&ex, &j, in, 2, &b, err, sizeof err);
    CHECK(rc == GQ_OK && !memcmp(a.t[0].data, b.t[0].data, a.t[0].nbytes), "mid retry: %s", err);
    CHECK(rc || (!strcmp(b.backend[0], "opencl") && !strcmp(b.backend[1], "cpu") &&
                 !strcmp(b.backend[2], "opencl")),
          "mid retry backends %s %s %s", b.backend[0], b.backend[1], b.backend[2]);
    if (!rc)
        gq_exec_out_free(&b);
    gq_backend_opencl_inject(cl, GQ_CL_FAULT_ALLOC, -4, 0, 1);
    rc = s_exec(&ex, &j, in, 2, &b, err, sizeof err);
    CHECK(rc == GQ_OK && !memcmp(a.t[0].data, b.t[0].data, a.t[0].nbytes), "alloc retry: %s", err);
    if (!rc)
        gq_exec_out_free(&b);
    gq_exec_out_free(&a);
    printf("device OOM: strict fails the job, otherwise the stage retries on the cpu\n");
}

/* ---- threads ---- */

typedef struct {
    gq_exec_t *ex;
    const gq_exec_out_t *ref;
    int bad;
} s_thr_t;

static void *s_thread(void *arg)
{
    s_thr_t *t = arg;
    s_job_t j;
    s_pipeline(&j);
    gq_view_t in[2];
    s_inputs(in);
    for (int i = 0; i < 40; i++) {
        gq_exec_out_t o;
        char err[256];
        if (s_exec(t->ex, &j, in, 2, &o, err, sizeof err) != GQ_OK ||
            memcmp(o.t[0].data, t->ref->t[0].data, o.t[0].nbytes)) {
            t->bad++;
            continue;
        }
        gq_exec_out_free(&o);
    }
    return NULL;
}

static void s_test_threads(gq_backend_t *cl, gq_backend_t *cpu)
{
    gq_exec_t ex, ref;
    memset(&ex, 0, sizeof ex);
    memset(&ref, 0, sizeof ref);
    ex.backends[ex.nbackends++] = cl;
    ex.backends[ex.nbackends++] = cpu;
    ref.backends[ref.nbackends++] = cpu;
    s_job_t j;
    s_pipeline(&j);
    gq_view_t in[2];
    s_inputs(in);
    gq_exec_out_t r;
    char err[256];
    CHECK(s_exec(&ref, &j, in, 2, &r, err, sizeof err) == GQ_OK, "%s", err);
    gq_cl_stats_t s0, s1;
    gq_backend_opencl_stats(cl, &s0);
    pthread_t th[4];
    s_thr_t t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (s_thr_t){&ex, &r, 0};
        pthread_create(&th[i], NULL, s_thread, &t[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(t[i].bad == 0, "thread %d: %d bad results", i, t[i].bad);
    }
    gq_backend_opencl_stats(cl, &s1);
    CHECK(s1.streams == s0.streams + 4, "a queue per thread: %d -> %d", s0.streams, s1.streams);
    CHECK(s1.pool.live_bytes == 0, "buffers returned");
    gq_exec_out_free(&r);
    printf("threads: 4 x 40 pipelines on their own queues, results equal\n");
}

/* A lost device: the job retries on the CPU, and the backend declines from then on. */
static void s_test_lost(gq_backend_t *cpu)
{
    gq_backend_t *cl = s_open();
    if (!cl)
        return;
    gq_exec_t ex;
    memset(&ex, 0, sizeof ex);
    ex.backends[ex.nbackends++] = cl;
    ex.backends[ex.nbackends++] = cpu;
    s_job_t j;
    s_pipeline(&j);
    gq_view_t in[2];
    s_inputs(in);
    gq_exec_out_t o;
    char err[256];
    gq_backend_opencl_inject(cl, GQ_CL_FAULT_LAUNCH, -2, 0, 1);
    gq_status rc = s_exec(&ex, &j, in, 2, &o, err, sizeof err);
    CHECK(rc == GQ_OK && !strcmp(o.backend[0], "cpu") && !strcmp(o.backend[2], "cpu"),
          "lost device: %d %s", rc, err);
    if (!rc)
        gq_exec_out_free(&o);
    gq_args_t a;
    memset(&a, 0, sizeof a);
    a.op = gq_op_find("tensor.add");
    CHECK(!cl->ops->supports_op(cl, &a, NULL, -1), "a lost device declines every op");
    ex.strict = 1;
    rc = s_exec(&ex, &j, in, 2, &o, err, sizeof err);
    CHECK(rc == GQ_EUNSUPPORTED, "strict on a lost device: %d %s", rc, err);
    gq_backend_destroy(&cl);
    printf("lost device: job retried on the cpu, backend declines afterwards\n");
}

int main(void)
{
    if (!getenv("GQ_LOG"))
        gq_log_set_level(GQ_LOG_ERROR);
    char dir[128], cmd[256];
    snprintf(dir, sizeof dir, "/tmp/gq-test-clbackend-%d", (int)getpid());
    setenv("GQ_CL_CACHE_DIR", dir, 1);
    char err[256];
    gq_device_info_t devs[8];
    if (gq_opencl_list(devs, 8, err, sizeof err) == 0) {
        printf("SKIP: %s\n", err);
        return 77;
    }
    s_cfg.device_match = getenv("GQ_CL_DEVICE");
    s_test_cache(dir);
    gq_backend_t *cl = s_open(), *cpu = gq_backend_cpu_new(&s_cfg, err, sizeof err);
    CHECK(cl && cpu, "backends");
    if (cl && cpu) {
        s_test_exec(cl, cpu);
        s_test_threads(cl, cpu);
        s_test_lost(cpu);
    }
    gq_backend_destroy(&cl);
    gq_backend_destroy(&cpu);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd))
        fprintf(stderr, "cannot remove %s\n", dir);
    if (s_failures) {
        fprintf(stderr, "test_opencl_backend: %d failures\n", s_failures);
        return 1;
    }
    printf("PASS\n");
    return 0;
}
#endif
