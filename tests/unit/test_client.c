/* libgpuq on the embedded cluster: tensor ownership and free callbacks, the job builder's
 * errors, sync and async runs with a window, destroy while in flight, resubmission. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "gpuq.h"

static int s_failures;
static atomic_int s_freed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            s_failures++;                                                                          \
        }                                                                                          \
    } while (0)

static void s_count_free(void *data, void *hint)
{
    (void)data;
    (void)hint;
    atomic_fetch_add(&s_freed, 1);
}

static void s_sleep_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static gq_job_t *s_scale_job(gq_tensor_t *x, double factor)
{
    gq_job_t *job = gq_job_new("tensor.scale");
    gq_job_param_float(job, "factor", factor);
    gq_job_input(job, x);
    return job;
}

static void s_test_tensors(gq_client_t *c)
{
    int64_t shape[2] = {2, 3};
    float data[6] = {1, 2, 3, 4, 5, 6};
    CHECK(!gq_tensor_wrap(GQ_F32, shape, 2, data, 20, NULL, NULL), "nbytes mismatch taken");
    CHECK(!gq_tensor_new((gq_dtype_t)99, shape, 2), "bad dtype taken");
    int64_t neg[1] = {-1};
    CHECK(!gq_tensor_new(GQ_F32, neg, 1), "negative dim taken");
    gq_tensor_t *x = gq_tensor_wrap(GQ_F32, shape, 2, data, sizeof data, s_count_free, NULL);
    CHECK(x && gq_tensor_numel(x) == 6 && gq_tensor_nbytes(x) == 24, "wrap");
    gq_job_t *job = s_scale_job(x, -1);
    CHECK(gq_client_run(c, job) == GQ_OK, "%s", gq_job_error(job));
    gq_tensor_t *y = gq_tensor_ref(gq_job_output(job, 0));
    gq_job_destroy(&job);
    CHECK(job == NULL, "destroy did not null");
    CHECK(((float *)gq_tensor_data(y))[5] == -6.0f, "output outlives its job via a ref");
    gq_tensor_destroy(&y);
    CHECK(atomic_load(&s_freed) == 0, "caller memory freed while the caller holds it");
    gq_tensor_destroy(&x);
    for (int i = 0; i < 100 && atomic_load(&s_freed) == 0; i++)
        s_sleep_ms(10);
    CHECK(atomic_load(&s_freed) == 1, "free callback ran %d times, want 1", atomic_load(&s_freed));
}

static void s_test_builder(gq_client_t *c)
{
    int64_t shape[1] = {4};
    gq_tensor_t *x = gq_tensor_new(GQ_F32, shape, 1);
    memset(gq_tensor_data(x), 0, 16);
    CHECK(!gq_job_new(NULL) && !gq_job_new(""), "empty op accepted");
    gq_job_t *job = gq_job_new("tensor.scale");
    for (int i = 0; i < 8; i++)
        gq_job_then(job, "tensor.scale");
    gq_job_input(job, x);
    int rc = gq_client_run(c, job);
    CHECK(rc == GQ_EINVAL && strstr(gq_job_error(job), "8 stages"), "9 stages: %d %s", rc,
          gq_job_error(job));
    gq_job_destroy(&job);
    job = gq_job_new("tensor.scale");
    char longname[100];
    memset(longname, 'p', sizeof longname - 1);
    longname[99] = 0;
    gq_job_param_float(job, longname, 1);
    gq_job_input(job, x);
    rc = gq_client_run(c, job);
    CHECK(rc == GQ_EPARAM && strstr(gq_job_error(job), "too long"), "long param: %d %s", rc,
          gq_job_error(job));
    gq_job_destroy(&job);
    /* A param set twice keeps the last value; the job can be run again. */
    job = s_scale_job(x, 5);
    ((float *)gq_tensor_data(x))[0] = 1;
    gq_job_param_float(job, "factor", 7);
    CHECK(gq_client_run(c, job) == GQ_OK, "%s", gq_job_error(job));
    CHECK(((float *)gq_tensor_data(gq_job_output(job, 0)))[0] == 7.0f, "last value wins");
    CHECK(gq_client_run(c, job) == GQ_OK && gq_job_output_count(job) == 1, "rerun");
    CHECK(!strcmp(gq_job_backend(job, 0), "cpu") && gq_job_worker(job)[0], "backend/worker");
    gq_job_destroy(&job);
    gq_tensor_destroy(&x);
}

static void s_test_async(gq_client_t *c)
{
    enum { N = 2000 };
    static gq_job_t *jobs[N];
    static int seen[N];
    int64_t shape[1] = {32};
    gq_job_t *none;
    CHECK(gq_client_collect(c, 0, &none) == GQ_EINVAL, "collect with nothing in flight");
    for (int i = 0; i < N; i++) {
        gq_tensor_t *x = gq_tensor_new(GQ_F32, shape, 1);
        float *d = gq_tensor_data(x);
        for (int k = 0; k < 32; k++)
            d[k] = (float)(i + k);
        jobs[i] = s_scale_job(x, 2);
        gq_job_set_user(jobs[i], &seen[i]);
        gq_tensor_destroy(&x);
        CHECK(gq_client_submit(c, jobs[i]) == GQ_OK, "submit %d", i);
        CHECK(gq_client_pending(c) <= N, "pending");
    }
    /* Destroying a job in flight or done-but-uncollected removes it from collect. */
    gq_job_destroy(&jobs[N - 1]);
    int got = 0;
    gq_job_t *done;
    while (gq_client_collect(c, 5000, &done) == GQ_OK) {
        int *mark = gq_job_user(done);
        int i = (int)(mark - seen);
        (*mark)++;
        got++;
        const float *o = gq_tensor_data(gq_job_output(done, 0));
        CHECK(gq_job_status(done) == GQ_OK && o[31] == 2.0f * (float)(i + 31), "job %d", i);
    }
    CHECK(got == N - 1, "collected %d of %d", got, N - 1);
    for (int i = 0; i < N - 1; i++) {
        CHECK(seen[i] == 1, "job %d collected %d times", i, seen[i]);
        gq_job_destroy(&jobs[i]);
    }
    CHECK(gq_client_pending(c) == 0, "pending %d after collecting all", gq_client_pending(c));
}

int main(void)
{
    char err[256];
    gq_client_opts_t o;
    gq_client_opts_init(&o);
    o.window = 16;
    gq_client_t *c = gq_client_new("local", &o, err, sizeof err);
    if (!c) {
        fprintf(stderr, "local client: %s\n", err);
        return 1;
    }
    CHECK(!gq_client_new("nonsense://x", NULL, err, sizeof err) && strstr(err, "nonsense"),
          "bad endpoint: %s", err);
    gq_cluster_info_t info;
    CHECK(gq_client_cluster_info(c, &info, 5000) == GQ_OK && info.workers == 1, "info");
    gq_worker_info_t wi;
    CHECK(gq_client_worker_info(c, 0, &wi) == GQ_OK && !strcmp(wi.name, "local-0") &&
              !strcmp(wi.backends, "cpu") && wi.credits > 0,
          "worker 0: %s %s %u", wi.name, wi.backends, wi.credits);
    CHECK(gq_client_worker_info(c, 1, &wi) == GQ_EINVAL, "worker 1 of 1");
    s_test_tensors(c);
    s_test_builder(c);
    s_test_async(c);
    gq_client_destroy(&c);
    CHECK(c == NULL, "destroy did not null");
    printf("client: %s\n", s_failures ? "FAILED" : "all checks passed");
    return s_failures ? 1 : 0;
}
