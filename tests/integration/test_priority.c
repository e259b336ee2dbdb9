/* The scheduler through real processes: with batch-class load saturating two workers,
 * realtime jobs still start at once and meet their deadlines; a full queue refuses with a
 * retry-after hint, and the client library's backoff then gets every job through. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "harness.h"

#define S_LOAD_THREADS 2
#define S_RT_JOBS 60
#define S_RT_DEADLINE_MS 400

typedef struct {
    const char *front;
    atomic_int *stop;
    long ok, failed;
    char error[320];
} s_load_t;

static gq_tensor_t *s_signal(int64_t n, float amp)
{
    gq_tensor_t *t = gq_tensor_new(GQ_F32, &n, 1);
    float *x = gq_tensor_data(t);
    for (int64_t i = 0; i < n; i++)
        x[i] = amp * (float)((i * 37) % 101 - 50) / 50.0f;
    return t;
}

static gq_job_t *s_logmel_job(gq_tensor_t *x)
{
    gq_job_t *j = gq_job_new("dsp.logmel");
    gq_job_param_float(j, "sr", 16000);
    gq_job_param_int(j, "n_fft", 512);
    gq_job_param_int(j, "hop_length", 160);
    gq_job_param_int(j, "n_mels", 80);
    gq_job_input(j, x);
    gq_job_set_priority(j, GQ_PRIO_BATCH);
    gq_job_cache(j, GQ_CACHE_BYPASS, 0); /* every job computes: this is load */
    return j;
}

/* Closed loop of batch-class log-mel jobs, 32 in flight, until *stop. */
static void *s_load_main(void *arg)
{
    s_load_t *l = arg;
    char err[256];
    gq_client_t *c = gq_client_new(l->front, NULL, err, sizeof err);
    if (!c) {
        snprintf(l->error, sizeof l->error, "client: %s", err);
        return NULL;
    }
    gq_tensor_t *x = s_signal(16000, 0.5f);
    int inflight = 0;
    while (!atomic_load(l->stop) || inflight) {
        while (!atomic_load(l->stop) && inflight < 32) {
            gq_client_submit(c, s_logmel_job(x));
            inflight++;
        }
        gq_job_t *done = NULL;
        if (gq_client_collect(c, 1000, &done) == GQ_OK && done) {
            inflight--;
            if (gq_job_status(done) == GQ_OK) {
                l->ok++;
            } else {
                l->failed++;
                snprintf(l->error, sizeof l->error, "%s", gq_job_error(done));
            }
            gq_job_destroy(&done);
        }
    }
    gq_tensor_destroy(&x);
    gq_client_destroy(&c);
    return NULL;
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_realtime_under_load(void)
{
    gqt_cluster_t c;
    gqt_cluster_start(&c, 2, 1, 4, 1000);
    atomic_int stop = 0;
    s_load_t loads[S_LOAD_THREADS];
    pthread_t th[S_LOAD_THREADS];
    for (int i = 0; i < S_LOAD_THREADS; i++) {
        memset(&loads[i], 0, sizeof loads[i]);
        loads[i].front = c.front;
        loads[i].stop = &stop;
        pthread_create(&th[i], NULL, s_load_main, &loads[i]);
    }
    /* Saturated: jobs wait at the broker. */
    int waited = 0;
    while (gqt_info(c.front).queued < 8 && waited < 10000) {
        gqt_sleep_ms(20);
        waited += 20;
    }
    GQT_CHECK(gqt_info(c.front).queued >= 8, "the load does not saturate the workers");
    char err[256];
    gq_client_t *rt = gq_client_new(c.front, NULL, err, sizeof err);
    GQT_CHECK(rt, "client: %s", err);
    gq_tensor_t *x = s_signal(1600, 0.1f);
    uint64_t lat[S_RT_JOBS];
    /* Job -1 warms the connection up (its first round trip includes the TCP handshake). */
    for (int i = -1; i < S_RT_JOBS; i++) {
        gq_job_t *j = gq_job_new("dsp.gain");
        gq_job_param_float(j, "db", -3.0 - i * 0.01); /* distinct: no cache, no dedup */
        gq_job_input(j, x);
        gq_job_set_priority(j, GQ_PRIO_REALTIME);
        gq_job_set_timeout_ms(j, S_RT_DEADLINE_MS);
        int rc = gq_client_run(rt, j);
        GQT_CHECK(rc == GQ_OK, "realtime job %d under load: %s (%s)", i, gq_status_name(rc),
                  gq_job_error(j));
        gq_job_timing_t t;
        gq_job_timing(j, &t);
        if (i >= 0)
            lat[i] = t.total_us;
        if (i >= 0 && getenv("GQT_VERBOSE"))
            fprintf(stderr, "realtime %d: total %.2f ms, queued %.2f, compute %.2f\n", i,
                    t.total_us / 1000.0, t.queued_us / 1000.0, t.compute_us / 1000.0);
        gq_job_destroy(&j);
        gqt_sleep_ms(10);
    }
    gq_client_destroy(&rt);
    gq_tensor_destroy(&x);
    char *text = NULL;
    gq_client_t *adm = gq_client_new(c.front, NULL, err, sizeof err);
    GQT_CHECK(adm && gq_client_queues(adm, 0, &text, 5000) == GQ_OK, "queues");
    printf("%s", text);
    GQT_CHECK(strstr(text, "realtime") && strstr(text, "batch groups queued"),
              "queues text lacks the classes");
    free(text);
    gq_client_destroy(&adm);
    atomic_store(&stop, 1);
    long ok = 0;
    for (int i = 0; i < S_LOAD_THREADS; i++) {
        pthread_join(th[i], NULL);
        GQT_CHECK(!loads[i].failed && !loads[i].error[0], "load thread %d: %ld failed: %s", i,
                  loads[i].failed, loads[i].error);
        ok += loads[i].ok;
    }
    qsort(lat, S_RT_JOBS, sizeof lat[0], s_cmp_u64);
    printf("realtime under load: %d jobs, all within %d ms; latency p50 %.2f ms, p99 %.2f ms, "
           "max %.2f ms; %ld batch jobs done meanwhile\n",
           S_RT_JOBS, S_RT_DEADLINE_MS, lat[S_RT_JOBS / 2] / 1000.0,
           lat[S_RT_JOBS * 99 / 100] / 1000.0, lat[S_RT_JOBS - 1] / 1000.0, ok);
    gqt_cluster_stop(&c);
}

/* A queue of 16 and a client that does not retry: refusals with a hint. The same with the
 * library's backoff: every job gets through. */
static void test_backpressure(void)
{
    const char *args[] = {"--max-queue", "16", "--client-share", "100", NULL};
    gqt_cluster_t c;
    gqt_cluster_start_args(&c, 1, 1, 1, 1000, args);
    gq_tensor_t *x = s_signal(16000, 0.5f);
    for (int retry = 0; retry < 2; retry++) {
        gq_client_opts_t o;
        gq_client_opts_init(&o);
        o.window = 200;
        o.exhausted_retries = retry ? 30 : 0;
        char err[256];
        gq_client_t *cl = gq_client_new(c.front, &o, err, sizeof err);
        GQT_CHECK(cl, "client: %s", err);
        for (int i = 0; i < 200; i++)
            gq_client_submit(cl, s_logmel_job(x));
        int ok = 0, refused = 0, retried = 0, hinted = 0;
        for (int i = 0; i < 200; i++) {
            gq_job_t *j = NULL;
            GQT_CHECK(gq_client_collect(cl, 60000, &j) == GQ_OK && j, "collect %d", i);
            gq_job_timing_t t;
            gq_job_timing(j, &t);
            retried += t.retries > 0;
            if (gq_job_status(j) == GQ_OK) {
                ok++;
            } else {
                GQT_CHECK(gq_job_status(j) == GQ_EEXHAUSTED, "job failed: %s", gq_job_error(j));
                refused++;
                hinted += strstr(gq_job_error(j), "retry after") != NULL;
            }
            gq_job_destroy(&j);
        }
        printf("backpressure, retries %s: %d done, %d refused (%d with a hint), %d resent\n",
               retry ? "on" : "off", ok, refused, hinted, retried);
        if (!retry) {
            GQT_CHECK(refused > 0 && hinted == refused, "a 16-job queue refused none of 200");
        } else {
            GQT_CHECK(ok == 200 && retried > 0, "with backoff %d of 200 done, %d resent", ok,
                      retried);
        }
        gq_client_destroy(&cl);
    }
    gq_tensor_destroy(&x);
    gqt_cluster_stop(&c);
}

/* Cancelling queued jobs: they complete here at once, leave the broker's queue, and the
 * rest still run. */
static void test_cancel(void)
{
    gqt_cluster_t c;
    gqt_cluster_start(&c, 1, 1, 2, 1000);
    char err[256];
    gq_client_t *cl = gq_client_new(c.front, NULL, err, sizeof err);
    GQT_CHECK(cl, "client: %s", err);
    gq_tensor_t *x = s_signal(16000, 0.5f);
    gq_job_t *jobs[100];
    for (int i = 0; i < 100; i++) {
        jobs[i] = s_logmel_job(x);
        gq_job_set_user(jobs[i], &jobs[i]);
        gq_client_submit(cl, jobs[i]);
    }
    for (int i = 50; i < 100; i++)
        GQT_CHECK(gq_client_cancel(cl, jobs[i]) == GQ_OK, "cancel %d", i);
    GQT_CHECK(gq_client_cancel(cl, jobs[60]) == GQ_EINVAL, "a second cancel is refused");
    int ok = 0, cancelled = 0;
    for (int i = 0; i < 100; i++) {
        gq_job_t *j = NULL;
        GQT_CHECK(gq_client_collect(cl, 60000, &j) == GQ_OK && j, "collect %d", i);
        ok += gq_job_status(j) == GQ_OK;
        cancelled += gq_job_status(j) == GQ_ECANCELLED;
        gq_job_destroy(&j);
    }
    GQT_CHECK(ok == 50 && cancelled == 50, "%d done, %d cancelled", ok, cancelled);
    gq_cluster_info_t info = gqt_info(c.front);
    GQT_CHECK(info.queued == 0 && info.inflight == 0, "left: %lld queued, %lld in flight",
              (long long)info.queued, (long long)info.inflight);
    char *text = NULL;
    GQT_CHECK(gq_client_queues(cl, 1, &text, 5000) == GQ_OK && !strstr(text, "queued    "),
              "jobs listed after cancel: %s", text ? text : "");
    free(text);
    printf("cancel: 50 done, 50 cancelled, none left at the broker\n");
    gq_tensor_destroy(&x);
    gq_client_destroy(&cl);
    gqt_cluster_stop(&c);
}

/* Concurrent identical-shape jobs are stacked, and every answer equals the job run alone;
 * then --admit-by-cost refuses a job whose deadline the learned costs say it misses. */
static void test_batches_and_admission(void)
{
    const char *args[] = {"--admit-by-cost", NULL};
    gqt_cluster_t c;
    gqt_cluster_start_args(&c, 1, 1, 1, 1000, args);
    char err[256];
    gq_client_opts_t o;
    gq_client_opts_init(&o);
    o.window = 4096; /* the 2000 jobs below are all queued at once */
    gq_client_t *cl = gq_client_new(c.front, &o, err, sizeof err);
    GQT_CHECK(cl, "client: %s", err);
    enum { N = 96 };
    gq_tensor_t *x[N];
    gq_job_t *jobs[N];
    for (int i = 0; i < N; i++) {
        x[i] = s_signal(16000, 0.1f + 0.01f * (float)i);
        jobs[i] = s_logmel_job(x[i]);
        gq_client_submit(cl, jobs[i]);
    }
    int batched = 0;
    for (int i = 0; i < N; i++) {
        gq_job_t *j = NULL;
        GQT_CHECK(gq_client_collect(cl, 60000, &j) == GQ_OK && j, "collect %d", i);
        GQT_CHECK(gq_job_status(j) == GQ_OK, "job: %s", gq_job_error(j));
        gq_job_timing_t t;
        gq_job_timing(j, &t);
        batched += t.batch > 1;
    }
    for (int i = 0; i < N; i++) {
        gq_job_t *alone = s_logmel_job(x[i]);
        gq_job_set_priority(alone, GQ_PRIO_REALTIME); /* realtime: never stacked with others */
        GQT_CHECK(gq_client_run(cl, alone) == GQ_OK, "alone: %s", gq_job_error(alone));
        gq_tensor_t *a = gq_job_output(alone, 0), *b = gq_job_output(jobs[i], 0);
        GQT_CHECK(gq_tensor_nbytes(a) == gq_tensor_nbytes(b) &&
                      !memcmp(gq_tensor_data(a), gq_tensor_data(b), gq_tensor_nbytes(a)),
                  "job %d: the batched answer differs from the job run alone", i);
        gq_job_destroy(&alone);
        gq_job_destroy(&jobs[i]);
    }
    GQT_CHECK(batched > N / 4, "only %d of %d answers came from batches", batched, N);
    /* The broker has learned what a log-mel costs; with 1000 or more queued ahead, 100 ms
     * cannot do. The late job comes from another client once they are queued, so its
     * refusal is not stuck behind their bytes on the same socket. */
    for (int i = 0; i < 2000; i++)
        gq_client_submit(cl, s_logmel_job(x[i % N]));
    for (int i = 0; i < 500 && gqt_info(c.front).queued < 1000; i++)
        gqt_sleep_ms(10);
    gq_client_t *cl2 = gq_client_new(c.front, NULL, err, sizeof err);
    GQT_CHECK(cl2, "client: %s", err);
    gq_job_t *late = s_logmel_job(x[0]);
    gq_job_set_timeout_ms(late, 100);
    int rc = gq_client_run(cl2, late);
    GQT_CHECK(rc == GQ_EDEADLINE && strstr(gq_job_error(late), "cannot meet"),
              "admit-by-cost: %s (%s)", gq_status_name(rc), gq_job_error(late));
    printf("batches: %d of %d answers stacked, all equal to the job alone; admit-by-cost: %s\n",
           batched, N, gq_job_error(late));
    gq_client_destroy(&cl2);
    gq_job_destroy(&late);
    for (int i = 0; i < 2000; i++) {
        gq_job_t *j = NULL;
        GQT_CHECK(gq_client_collect(cl, 60000, &j) == GQ_OK && j, "drain %d", i);
        gq_job_destroy(&j);
    }
    for (int i = 0; i < N; i++)
        gq_tensor_destroy(&x[i]);
    gq_client_destroy(&cl);
    gqt_cluster_stop(&c);
}

int main(void)
{
    test_batches_and_admission();
    test_cancel();
    test_realtime_under_load();
    test_backpressure();
    printf("PASS\n");
    return 0;
}
