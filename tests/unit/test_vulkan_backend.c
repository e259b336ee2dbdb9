/* The Vulkan backend on a real device (Mesa lavapipe in CI): device open and listing, error
 * mapping, the buffer pool (reuse, no allocation in steady state, cap), the pipeline cache
 * file (new, loaded on the second open, corrupt and truncated entries replaced), the
 * executor with Vulkan first (a pipeline equal to the CPU's, no new buffers in steady
 * state, a declined op counted as a fallback), staged transfers (GQ_VK_STAGING=1), injected
 * out-of-memory and lost device (strict fails, otherwise the stage is retried on the CPU,
 * and a lost device declines everything after), four threads on one backend, and SGEMM
 * against a double-precision reference on odd sizes, every transpose, offsets, strides,
 * alpha/beta and the BLAS rules for NaN. Skipped (77) without a Vulkan device. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "backend.h"
#include "check.h"
#include "exec.h"
#include "util.h"

#ifndef GQ_HAVE_VULKAN
int main(void)
{
    printf("SKIP: built without Vulkan (no Vulkan SDK or glslc at build time)\n");
    return 77;
}
#else
#include "gq_vulkan.h"

static gq_backend_config_t s_cfg = {.device_index = -1, .threads = 1};

static gq_backend_t *s_open(void)
{
    char err[256];
    gq_backend_t *be = gq_backend_vulkan_new(&s_cfg, err, sizeof err);
    if (!be)
        fprintf(stderr, "vulkan: %s\n", err);
    return be;
}

static gq_vk_stats_t s_stats(gq_backend_t *be)
{
    gq_vk_stats_t st;
    memset(&st, 0, sizeof st);
    CHECK(gq_backend_vulkan_stats(be, &st) == GQ_OK, "stats");
    return st;
}

/* ---- no device needed ---- */

static void s_test_errors(void)
{
    CHECK(gq_vk_status(-4) == GQ_EDEVICE_LOST, "VK_ERROR_DEVICE_LOST");
    CHECK(gq_vk_status(-2) == GQ_EDEVICE_OOM, "VK_ERROR_OUT_OF_DEVICE_MEMORY");
    CHECK(gq_vk_status(-1) == GQ_ENOMEM, "VK_ERROR_OUT_OF_HOST_MEMORY");
    CHECK(gq_vk_status(-3) == GQ_EBACKEND, "VK_ERROR_INITIALIZATION_FAILED");
    CHECK(gq_vk_status(0) == GQ_OK && gq_vk_status(5) == GQ_OK, "non-negative results");
    CHECK(!strcmp(gq_vk_errname(-4), "VK_ERROR_DEVICE_LOST"), "name");
    CHECK(gq_vk_errname(-12345) == NULL, "unknown code");
    char err[128];
    CHECK(gq_vk_fail(err, sizeof err, "tensor.add", "vkQueueSubmit", -2) == GQ_EDEVICE_OOM &&
              !strcmp(err, "tensor.add: vulkan: vkQueueSubmit: VK_ERROR_OUT_OF_DEVICE_MEMORY"),
          "message: %s", err);
    gq_vk_fail(err, sizeof err, NULL, "vkFoo", -12345);
    CHECK(!strcmp(err, "vulkan: vkFoo: VkResult -12345"), "unknown code message: %s", err);
}

/* ---- device, pool ---- */

static void s_test_device(gq_backend_t *be)
{
    gq_device_info_t d, list[16];
    char err[256];
    CHECK(be->ops->devices(be, &d, 1) == 1 && d.name[0] && d.driver[0] && d.memory_bytes > 0,
          "device info");
    int n = gq_vulkan_list(list, 16, err, sizeof err);
    bool found = false;
    for (int i = 0; i < n; i++)
        found |= !strcmp(list[i].name, d.name);
    CHECK(n >= 1 && found, "gq_vulkan_list lists the device (%d devices)", n);
    printf("device: %s (%s, driver %s, %.1f GiB%s)\n", d.name, d.vendor, d.driver,
           (double)d.memory_bytes / (1u << 30), d.is_gpu ? ", GPU" : "");
    /* A CPU device is refused under gpu_only unless named. */
    if (!d.is_gpu) {
        gq_backend_config_t c = s_cfg;
        c.gpu_only = true;
        gq_backend_t *x = gq_backend_vulkan_new(&c, err, sizeof err);
        CHECK(!x && strstr(err, "only CPU devices"), "gpu_only refuses %s: %s", d.name, err);
        gq_backend_destroy(&x);
        c.device_match = "llvmpipe";
        x = gq_backend_vulkan_new(&c, err, sizeof err);
        CHECK(x || !strstr(d.name, "llvmpipe"), "a named CPU device is taken: %s", err);
        gq_backend_destroy(&x);
    }
    gq_backend_config_t c = s_cfg;
    c.device_match = "no such device";
    gq_backend_t *x = gq_backend_vulkan_new(&c, err, sizeof err);
    CHECK(!x && strstr(err, "no device matches 'no such device'"), "bad name: %s", err);
    c.device_match = NULL;
    c.device_index = 99;
    x = gq_backend_vulkan_new(&c, err, sizeof err);
    CHECK(!x && strstr(err, "device 99"), "bad index: %s", err);
}

static void s_test_pool(gq_backend_t *be)
{
    gq_buffer_t b[4];
    gq_vk_stats_t s0 = s_stats(be);
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 4; i++)
            CHECK(be->ops->alloc(be, 1000 + 4096 * (size_t)i, &b[i]) == GQ_OK, "alloc");
        for (int i = 0; i < 4; i++)
            be->ops->free(be, &b[i]);
    }
    gq_vk_stats_t s1 = s_stats(be);
    CHECK(s1.pool.misses - s0.pool.misses == 4 && s1.pool.hits - s0.pool.hits == 36,
          "4 made, 36 reused (misses %llu, hits %llu)",
          (unsigned long long)(s1.pool.misses - s0.pool.misses),
          (unsigned long long)(s1.pool.hits - s0.pool.hits));
    CHECK(gq_dev_pool_class(1000) == 1024 && gq_dev_pool_class(1) == 256 &&
              gq_dev_pool_class(1025) == 1280,
          "size classes");
    /* Round trip through a buffer, including an empty one. */
    float h[1000], back[1000];
    for (int i = 0; i < 1000; i++)
        h[i] = (float)i * 0.25f - 3.0f;
    gq_buffer_t x, e;
    CHECK(be->ops->alloc(be, sizeof h, &x) == GQ_OK && be->ops->alloc(be, 0, &e) == GQ_OK, "alloc");
    CHECK(be->ops->upload(be, &x, h, sizeof h) == GQ_OK, "upload");
    CHECK(be->ops->download(be, back, &x, sizeof back) == GQ_OK && !memcmp(h, back, sizeof h),
          "round trip");
    CHECK(be->ops->upload(be, &x, h, sizeof h + 4) == GQ_EINVAL, "upload past the buffer");
    be->ops->free(be, &x);
    be->ops->free(be, &e);
    be->ops->free(be, NULL);
}

/* ---- pipeline cache ---- */

/* Opens a backend, runs one op (so that it makes a pipeline), closes it; the origin of its
 * pipeline cache. */
static gq_vk_pcache_origin_t s_origin(char *file, size_t len)
{
    gq_backend_t *be = s_open();
    if (!be)
        return (gq_vk_pcache_origin_t)-1;
    gq_vk_stats_t st = s_stats(be);
    if (file)
        snprintf(file, len, "%s", st.cache_file);
    gq_args_t a;
    char err[256];
    gq_op_resolve(gq_op_find("tensor.clamp"), NULL, 0, &a, err, sizeof err);
    int64_t shape[1] = {16};
    gq_tdesc_t d;
    gq_tdesc_init(&d, GQ_F32, shape, 1);
    gq_buffer_t x, y;
    float h[16] = {0};
    be->ops->alloc(be, sizeof h, &x);
    be->ops->alloc(be, sizeof h, &y);
    be->ops->upload(be, &x, h, sizeof h);
    CHECK(be->ops->run(be, &a, &d, &x, 1, &d, &y, 1, err, sizeof err) == GQ_OK, "clamp: %s", err);
    be->ops->download(be, h, &y, sizeof h);
    be->ops->free(be, &x);
    be->ops->free(be, &y);
    gq_backend_destroy(&be);
    return st.pcache;
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
        fseek(f, 70, SEEK_SET); /* inside the payload */
        int c = fgetc(f);
        fseek(f, 70, SEEK_SET);
        fputc(c ^ 0xff, f);
    }
    fclose(f);
}

static void s_test_pcache(const char *dir)
{
    char file[512];
    CHECK(s_origin(file, sizeof file) == GQ_VK_PCACHE_NEW, "first open: no entry");
    CHECK(access(file, R_OK) == 0, "cache file %s written at destroy", file);
    CHECK(s_origin(NULL, 0) == GQ_VK_PCACHE_LOADED, "second open loads it");
    s_damage(file, -1);
    CHECK(s_origin(NULL, 0) == GQ_VK_PCACHE_INVALID, "a corrupt entry is refused");
    CHECK(s_origin(NULL, 0) == GQ_VK_PCACHE_LOADED, "and replaced by a valid one");
    s_damage(file, 40);
    CHECK(s_origin(NULL, 0) == GQ_VK_PCACHE_INVALID, "a truncated entry is refused");
    CHECK(s_origin(NULL, 0) == GQ_VK_PCACHE_LOADED, "and replaced");
    printf("pipeline cache: new, loaded, corrupt and truncated entries replaced (%s)\n", dir);
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

static void s_param(s_job_t *j, const char *name, char type, double v)
{
    Gq__Wire__Stage *s = &j->st[j->n - 1];
    Gq__Wire__Param *p = &j->p[j->n - 1][s->n_params];
    gq__wire__param__init(p);
    p->name = (char *)name;
    if (type == 'f') {
        p->value_case = GQ__WIRE__PARAM__VALUE_F;
        p->f = v;
    } else {
        p->value_case = GQ__WIRE__PARAM__VALUE_I;
        p->i = (int64_t)v;
    }
    j->pp[j->n - 1][s->n_params++] = p;
}

/* add(x, y) -> scale -> sum(axis 1) */
static void s_pipeline(s_job_t *j)
{
    memset(j, 0, sizeof *j);
    s_stage(j, "tensor.add");
    s_stage(j, "tensor.scale");
    s_param(j, "factor", 'f', 0.5);
    s_param(j, "offset", 'f', 1.0);
    s_stage(j, "tensor.sum");
    s_param(j, "axis", 'i', 1);
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

static gq_status s_exec(gq_exec_t *ex, s_job_t *j, gq_exec_out_t *out, char *err, size_t errlen)
{
    gq_view_t in[2];
    s_inputs(in);
    return gq_exec_run(ex, j->stp, (size_t)j->n, in, 2, out, err, errlen);
}

/* The pipeline on ex equals the CPU's reference ref (and ran on `where` per stage). */
static void s_check_job(gq_exec_t *ex, gq_exec_out_t *ref, const char *where, const char *what)
{
    s_job_t j;
    s_pipeline(&j);
    gq_exec_out_t b;
    char err[256];
    gq_status rc = s_exec(ex, &j, &b, err, sizeof err);
    CHECK(rc == GQ_OK, "%s: %s", what, err);
    if (rc)
        return;
    CHECK(b.n == 1 && b.t[0].nbytes == ref->t[0].nbytes &&
              !memcmp(ref->t[0].data, b.t[0].data, b.t[0].nbytes),
          "%s: results equal the CPU's", what);
    for (int k = 0; where && k < 3; k++)
        CHECK(b.backend[k] && !strcmp(b.backend[k], where), "%s: stage %d ran on %s", what, k,
              b.backend[k]);
    gq_exec_out_free(&b);
}

static void s_test_exec(gq_backend_t *vk, gq_backend_t *cpu)
{
    for (int i = 0; i < S_ROWS * S_COLS; i++)
        s_x[i] = (float)((i * 37) % 101) / 7.0f - 5.0f;
    for (int i = 0; i < S_COLS; i++)
        s_y[i] = (float)i / 100.0f;
    gq_exec_t ref, ex;
    memset(&ref, 0, sizeof ref);
    memset(&ex, 0, sizeof ex);
    ref.backends[ref.nbackends++] = cpu;
    ex.backends[ex.nbackends++] = vk;
    ex.backends[ex.nbackends++] = cpu;
    s_job_t j;
    s_pipeline(&j);
    gq_exec_out_t a;
    char err[256];
    CHECK(s_exec(&ref, &j, &a, err, sizeof err) == GQ_OK, "cpu: %s", err);
    s_check_job(&ex, &a, "vulkan", "pipeline");
    CHECK(atomic_load(&ex.fallbacks) == 0, "no fallback");
    /* Steady state: no new device buffer per job. */
    gq_vk_stats_t s0 = s_stats(vk);
    for (int i = 0; i < 20; i++)
        s_check_job(&ex, &a, "vulkan", "steady state");
    gq_vk_stats_t s1 = s_stats(vk);
    CHECK(s1.pool.misses == s0.pool.misses, "20 jobs made %llu buffers",
          (unsigned long long)(s1.pool.misses - s0.pool.misses));
    CHECK(s1.pool.live_bytes == 0, "every buffer returned (%zu bytes live)", s1.pool.live_bytes);

    /* A declined op (f16) is a fallback counted for vulkan. */
    s_job_t h;
    memset(&h, 0, sizeof h);
    s_stage(&h, "tensor.sum");
    uint16_t x16[8] = {0x3c00, 0x4000, 0, 0x8000, 0x3c00, 0x3c00, 0x3c00, 0x3c00};
    gq_view_t in16;
    int64_t n8 = 8;
    gq_tdesc_init(&in16.desc, GQ_F16, &n8, 1);
    in16.data = x16;
    in16.nbytes = sizeof x16;
    gq_exec_out_t o;
    CHECK(gq_exec_run(&ex, h.stp, 1, &in16, 1, &o, err, sizeof err) == GQ_OK, "f16: %s", err);
    CHECK(o.backend[0] && !strcmp(o.backend[0], "cpu"), "f16 ran on %s", o.backend[0]);
    gq_exec_out_free(&o);
    CHECK(gq_exec_fallbacks(&ex, "tensor.sum", "vulkan") == 1, "fallback counted");
    ex.strict = 1;
    CHECK(gq_exec_run(&ex, h.stp, 1, &in16, 1, &o, err, sizeof err) != GQ_OK,
          "strict: a declined op fails");
    ex.strict = 0;

    /* Injected out-of-memory: strict fails naming the call; otherwise the CPU runs it. */
    gq_backend_vulkan_inject(vk, GQ_VK_FAULT_ALLOC, -2, 0, 1);
    ex.strict = 1;
    gq_exec_out_t f;
    gq_status rc = s_exec(&ex, &j, &f, err, sizeof err);
    CHECK(rc == GQ_EDEVICE_OOM && strstr(err, "VK_ERROR_OUT_OF_DEVICE_MEMORY"),
          "strict OOM: %s (%s)", gq_status_name(rc), err);
    if (!rc)
        gq_exec_out_free(&f);
    CHECK(strstr(vk->ops->last_error(vk), "vkAllocateMemory"), "last_error: %s",
          vk->ops->last_error(vk));
    ex.strict = 0;
    gq_backend_vulkan_inject(vk, GQ_VK_FAULT_ALLOC, -2, 2, 1);
    uint64_t r0 = atomic_load(&ex.retries);
    s_check_job(&ex, &a, NULL, "OOM mid-pipeline, retried");
    CHECK(atomic_load(&ex.retries) > r0, "retry counted");

    /* A lost device at submit: the stage is retried on the CPU and vulkan declines from
     * then on. Last: the backend stays lost. */
    gq_backend_vulkan_inject(vk, GQ_VK_FAULT_SUBMIT, -4, 0, 1);
    s_check_job(&ex, &a, NULL, "lost device, retried");
    gq_args_t probe;
    memset(&probe, 0, sizeof probe);
    probe.op = gq_op_find("tensor.add");
    CHECK(!vk->ops->supports_op(vk, &probe, NULL, -1), "a lost device declines every op");
    s_check_job(&ex, &a, "cpu", "after the loss");
    gq_exec_out_free(&a);
}

/* ---- staging ---- */

static void s_test_staging(gq_backend_t *cpu)
{
    setenv("GQ_VK_STAGING", "1", 1);
    gq_backend_t *be = s_open();
    unsetenv("GQ_VK_STAGING");
    CHECK(be, "staged backend");
    if (!be)
        return;
    CHECK(!s_stats(be).direct, "GQ_VK_STAGING=1: staged transfers");
    gq_exec_t ref, ex;
    memset(&ref, 0, sizeof ref);
    memset(&ex, 0, sizeof ex);
    ref.backends[ref.nbackends++] = cpu;
    ex.backends[ex.nbackends++] = be;
    ex.backends[ex.nbackends++] = cpu;
    s_job_t j;
    s_pipeline(&j);
    gq_exec_out_t a;
    char err[256];
    CHECK(s_exec(&ref, &j, &a, err, sizeof err) == GQ_OK, "cpu: %s", err);
    s_check_job(&ex, &a, "vulkan", "staged pipeline");
    s_check_job(&ex, &a, "vulkan", "staged pipeline again");
    gq_vk_stats_t st = s_stats(be);
    CHECK(st.staging.misses + st.staging.hits >= 3 && st.staging.hits > 0,
          "staging buffers used and reused (%llu made, %llu reused)",
          (unsigned long long)st.staging.misses, (unsigned long long)st.staging.hits);
    gq_exec_out_free(&a);
    gq_backend_destroy(&be);
}

/* ---- threads ---- */

typedef struct {
    gq_backend_t *be;
    int id, bad;
} s_thr_t;

static void *s_thread(void *arg)
{
    s_thr_t *t = arg;
    gq_backend_t *be = t->be;
    char err[256];
    gq_args_t a;
    gq_param_t p[2] = {{.name = "factor", .v = {.type = GQ_PT_FLOAT, .f = 3.0}},
                       {.name = "offset", .v = {.type = GQ_PT_FLOAT, .f = (double)t->id}}};
    gq_op_resolve(gq_op_find("tensor.scale"), p, 2, &a, err, sizeof err);
    enum { N = 4099 };
    static _Thread_local float x[N], y[N];
    int64_t n = N;
    gq_tdesc_t d;
    gq_tdesc_init(&d, GQ_F32, &n, 1);
    for (int it = 0; it < 50 && !t->bad; it++) {
        for (int i = 0; i < N; i++)
            x[i] = (float)(i + it);
        gq_buffer_t bx, by;
        if (be->ops->alloc(be, sizeof x, &bx) || be->ops->alloc(be, sizeof y, &by) ||
            be->ops->upload(be, &bx, x, sizeof x) ||
            be->ops->run(be, &a, &d, &bx, 1, &d, &by, 1, err, sizeof err) ||
            be->ops->download(be, y, &by, sizeof y))
            t->bad = 1;
        for (int i = 0; i < N && !t->bad; i++)
            if (y[i] != (float)((double)x[i] * 3.0 + t->id))
                t->bad = 2;
        be->ops->free(be, &bx);
        be->ops->free(be, &by);
    }
    return NULL;
}

static void s_test_threads(gq_backend_t *be)
{
    pthread_t th[4];
    s_thr_t t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (s_thr_t){be, i, 0};
        pthread_create(&th[i], NULL, s_thread, &t[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(!t[i].bad, "thread %d: %d", i, t[i].bad);
    }
    CHECK(s_stats(be).streams >= 4, "a stream per thread (%d)", s_stats(be).streams);
}

/* ---- SGEMM ---- */

static float s_frand(uint64_t *s)
{
    *s = *s * 6364136223846793005u + 1442695040888963407u;
    return (float)((double)(*s >> 40) / (double)(1u << 24) * 2.0 - 1.0);
}

/* One SGEMM on the device against a double reference; error relative to
 * sum_k |a||b| * |alpha| + |beta c|. Returns 0 when within tolerance. */
static int s_gemm_case(gq_backend_t *be, bool ta, bool tb, int m, int n, int k, float alpha,
                       float beta, int pad, bool nan_c)
{
    uint64_t seed = (uint64_t)(m * 131 + n * 17 + k) | 1;
    int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    size_t aoff = (size_t)pad, boff = 2 * (size_t)pad, coff = 3 * (size_t)pad;
    size_t na = aoff + (size_t)(ta ? k : m) * (size_t)lda, nb = boff + (size_t)(tb ? n : k) * ldb,
           nc = coff + (size_t)m * (size_t)ldc;
    float *A = malloc(na * 4 + 4), *B = malloc(nb * 4 + 4), *C = malloc(nc * 4 + 4),
          *G = malloc(nc * 4 + 4);
    for (size_t i = 0; i < na; i++)
        A[i] = s_frand(&seed);
    for (size_t i = 0; i < nb; i++)
        B[i] = s_frand(&seed);
    for (size_t i = 0; i < nc; i++)
        C[i] = nan_c ? NAN : s_frand(&seed);
    gq_buffer_t ba, bb, bc;
    char err[256];
    int bad = 0;
    be->ops->alloc(be, na * 4, &ba);
    be->ops->alloc(be, nb * 4, &bb);
    be->ops->alloc(be, nc * 4, &bc);
    be->ops->upload(be, &ba, A, na * 4);
    be->ops->upload(be, &bb, B, nb * 4);
    be->ops->upload(be, &bc, C, nc * 4);
    gq_vk_gemm_t g = {.ta = ta,
                      .tb = tb,
                      .m = m,
                      .n = n,
                      .k = k,
                      .alpha = alpha,
                      .beta = beta,
                      .lda = lda,
                      .ldb = ldb,
                      .ldc = ldc,
                      .a_off = aoff,
                      .b_off = boff,
                      .c_off = coff};
    gq_status rc = gq_vk_sgemm(be, &g, &ba, &bb, &bc, err, sizeof err);
    CHECK(rc == GQ_OK, "sgemm %dx%dx%d: %s", m, n, k, err);
    if (!rc && be->ops->download(be, G, &bc, nc * 4) == GQ_OK) {
        double maxe = 0;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double s = 0, sa = 0;
                for (int l = 0; l < k; l++) {
                    double av = ta ? A[aoff + (size_t)l * lda + i] : A[aoff + (size_t)i * lda + l];
                    double bv = tb ? B[boff + (size_t)j * ldb + l] : B[boff + (size_t)l * ldb + j];
                    s += av * bv;
                    sa += fabs(av * bv);
                }
                size_t o = coff + (size_t)i * ldc + j;
                double c0 = beta == 0 ? 0 : C[o];
                double want = alpha * s + beta * c0;
                double scale = fabs(alpha) * sa + fabs(beta * c0) + 1e-30;
                double e = fabs(G[o] - want) / scale;
                if (!(e <= maxe))
                    maxe = e;
            }
        /* Padding between rows is not written. */
        for (int i = 0; i < m && pad; i++)
            for (int j = n; j < ldc && i * ldc + j < (int)(nc - coff); j++) {
                size_t o = coff + (size_t)i * ldc + j;
                if (memcmp(&G[o], &C[o], 4))
                    maxe = INFINITY;
            }
        bad = !(maxe <= 4e-7 * sqrt((double)k + 1));
        CHECK(!bad, "sgemm ta=%d tb=%d %dx%dx%d alpha %g beta %g pad %d: error %.3g", ta, tb, m, n,
              k, alpha, beta, pad, maxe);
    }
    be->ops->free(be, &ba);
    be->ops->free(be, &bb);
    be->ops->free(be, &bc);
    free(A);
    free(B);
    free(C);
    free(G);
    return bad;
}

static void s_test_sgemm(gq_backend_t *be)
{
    static const int sizes[][3] = {{1, 1, 1},    {1, 7, 3},     {7, 1, 5},
                                   {13, 17, 19}, {64, 64, 16},  {65, 63, 17},
                                   {33, 100, 1}, {100, 3, 257}, {3, 129, 0}};
    int cases = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int t = 0; t < 4; t++) {
            s_gemm_case(be, t & 1, t & 2, sizes[s][0], sizes[s][1], sizes[s][2], 1.0f, 0.0f, 0,
                        false);
            s_gemm_case(be, t & 1, t & 2, sizes[s][0], sizes[s][1], sizes[s][2], -0.5f, 2.0f, 3,
                        false);
            cases += 2;
        }
    /* beta == 0 never reads C: NaN there does not propagate. */
    s_gemm_case(be, false, false, 37, 41, 29, 1.5f, 0.0f, 1, true);
    s_gemm_case(be, true, true, 200, 150, 130, 1.0f, 0.25f, 0, false);
    cases += 2;
    /* Bad geometry is refused, not run. */
    gq_buffer_t a;
    char err[256];
    be->ops->alloc(be, 64, &a);
    gq_vk_gemm_t g = {.m = 4, .n = 4, .k = 4, .alpha = 1, .lda = 4, .ldb = 4, .ldc = 4};
    CHECK(gq_vk_sgemm(be, &g, &a, &a, &a, err, sizeof err) == GQ_OK, "4x4 in 64 bytes");
    g.m = 5;
    CHECK(gq_vk_sgemm(be, &g, &a, &a, &a, err, sizeof err) == GQ_EINVAL, "5x4 in 64 bytes");
    g.m = 4;
    g.lda = 3;
    CHECK(gq_vk_sgemm(be, &g, &a, &a, &a, err, sizeof err) == GQ_EINVAL, "lda < k");
    be->ops->free(be, &a);
    printf("sgemm: %d cases (every transpose, odd sizes, offsets, strides, alpha/beta)\n", cases);
}

int main(void)
{
    if (!getenv("GQ_LOG"))
        gq_log_set_level(GQ_LOG_WARN);
    s_test_errors();
    char dir[] = "/tmp/gq_vk_test_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    setenv("GQ_VK_CACHE_DIR", dir, 1);
    char err[256];
    gq_backend_t *be = gq_backend_vulkan_new(&s_cfg, err, sizeof err);
    if (!be) {
        printf("SKIP: no Vulkan device: %s\n", err);
        rmdir(dir);
        return 77;
    }
    /* It made no pipeline: its pipeline cache is not stored. */
    gq_backend_destroy(&be);
    s_test_pcache(dir);
    be = s_open();
    gq_backend_t *cpu = gq_backend_cpu_new(&s_cfg, err, sizeof err);
    if (!be || !cpu)
        return 1;
    s_test_device(be);
    s_test_pool(be);
    s_test_sgemm(be);
    s_test_threads(be);
    s_test_staging(cpu);
    gq_backend_destroy(&be);
    /* Last: it leaves its backend lost. */
    be = s_open();
    if (be)
        s_test_exec(be, cpu);
    gq_backend_destroy(&be);
    gq_backend_destroy(&cpu);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    printf("%d checks, %d failed\n", s_checks, s_failed);
    return s_failed ? 1 : 0;
}
#endif
