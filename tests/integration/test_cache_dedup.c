/* In-flight dedup against real processes: identical slow jobs submitted together run once
 * (the worker's done count says so) and every client gets the answer; cancelling the job
 * that runs does not fail the ones waiting on it; a bypass job runs on its own. */
#include <math.h>
#include "test_cache_util.h"

#define S_N (8 << 20) /* f32 elements: 32 MiB inputs keep a job in flight for a while */

static gq_job_t *s_sum_job(gq_tensor_t *x)
{
    gq_job_t *j = gq_job_new("tensor.sum");
    gq_job_param_int(j, "axis", 0);
    gq_job_input(j, x);
    return j;
}

/* A job that keeps the single worker thread busy for a while from a small input (so that
 * it reaches the worker first): an outer sum a[N,1] + b[1,N] of 128 MiB, then 7 scales of
 * it. The jobs submitted after it stay in flight until the test has done its part. The
 * inputs are just over 64 KiB: smaller jobs of light ops run on the worker's main thread,
 * which would then miss its heartbeats for the whole run (see the report of issue 5). */
static gq_job_t *s_blocker(gq_client_t *z, int seed)
{
    int64_t col[2] = {4100, 1}, row[2] = {1, 4100};
    gq_tensor_t *a = gq_tensor_new(GQ_F64, col, 2), *b = gq_tensor_new(GQ_F64, row, 2);
    for (int i = 0; i < 4100; i++) {
        ((double *)gq_tensor_data(a))[i] = (double)(i + seed);
        ((double *)gq_tensor_data(b))[i] = (double)i * 0.5;
    }
    gq_job_t *j = gq_job_new("tensor.add");
    for (int k = 0; k < 7; k++) {
        gq_job_then(j, "tensor.scale");
        gq_job_param_float(j, "factor", 1.0 + k * 0.5);
    }
    gq_job_input(j, a);
    gq_job_input(j, b);
    gq_job_cache(j, GQ_CACHE_BYPASS, 0);
    gq_tensor_destroy(&a);
    gq_tensor_destroy(&b);
    GQT_CHECK(gq_client_submit(z, j) == GQ_OK, "blocker");
    gqt_sleep_ms(30); /* dispatched and running before anything else arrives */
    return j;
}

static void s_blocker_done(gq_client_t *z, gq_job_t **j)
{
    gq_job_t *done;
    GQT_CHECK(gq_client_collect(z, 60000, &done) == GQ_OK && done == *j, "blocker collect");
    GQT_CHECK(gq_job_status(*j) == GQ_OK, "blocker: %s", gq_job_error(*j));
    gq_job_destroy(j);
}

/* Waits until the broker holds n jobs admitted and not answered (its metrics say). */
static void s_wait_admitted(gq_client_t *c, int n)
{
    for (int tries = 0; tries < 1000; tries++) {
        char *text = NULL;
        GQT_CHECK(gq_client_metrics(c, &text, 5000) == GQ_OK, "metrics");
        const char *p = strstr(text, "\ngpuq_jobs_admitted ");
        int have = p ? atoi(p + 20) : -1;
        free(text);
        if (have >= n)
            return;
        gqt_sleep_ms(5);
    }
    GQT_CHECK(0, "the broker did not admit %d jobs within 5 s", n);
}

static uint64_t s_worker_done(const char *front)
{
    gq_client_t *c = gqt_cache_client(front);
    gq_cluster_info_t info;
    GQT_CHECK(gq_client_cluster_info(c, &info, 5000) == GQ_OK, "info");
    gq_worker_info_t w;
    uint64_t n = 0;
    for (int i = 0; gq_client_worker_info(c, i, &w) == GQ_OK; i++)
        n += w.jobs_done;
    gq_client_destroy(&c);
    return n;
}

static double s_expect(const gq_tensor_t *x)
{
    const float *d = gq_tensor_data(x);
    double s = 0;
    for (int64_t i = 0; i < gq_tensor_numel(x); i++)
        s += d[i];
    return s;
}

static void s_check_sum(gq_job_t *j, double want, const char *what)
{
    GQT_CHECK(gq_job_status(j) == GQ_OK, "%s: %s", what, gq_job_error(j));
    double got = ((const float *)gq_tensor_data(gq_job_output(j, 0)))[0];
    GQT_CHECK(fabs(got - want) <= 1e-5 * fabs(want), "%s: sum %g, want %g", what, got, want);
}

int main(void)
{
    const char *extra[] = {"--cache-mem-mb", "64", NULL};
    gqt_cluster_t c;
    /* One credit: while the blocker runs, the leader waits queued at the broker. */
    gqt_cache_cluster(&c, 1, 1, extra);
    gq_client_t *a = gqt_cache_client(c.front), *b = gqt_cache_client(c.front);
    gq_client_t *z = gqt_cache_client(c.front);

    /* Three identical jobs from two clients, submitted back to back behind a blocker. */
    gq_tensor_t *x = gqt_cache_input(S_N, 11);
    double want = s_expect(x);
    gq_job_t *blk = s_blocker(z, 1);
    gq_job_t *j1 = s_sum_job(x), *j2 = s_sum_job(x), *j3 = s_sum_job(x);
    GQT_CHECK(gq_client_submit(a, j1) == GQ_OK && gq_client_submit(b, j2) == GQ_OK &&
                  gq_client_submit(a, j3) == GQ_OK,
              "submit");
    gq_job_t *done;
    for (int n = 0; n < 2; n++)
        GQT_CHECK(gq_client_collect(a, 30000, &done) == GQ_OK, "collect a");
    GQT_CHECK(gq_client_collect(b, 30000, &done) == GQ_OK, "collect b");
    s_blocker_done(z, &blk);
    s_check_sum(j1, want, "j1");
    s_check_sum(j2, want, "j2");
    s_check_sum(j3, want, "j3");
    int shared = (gq_job_cache_source(j1) == GQ_CACHE_SHARED) +
                 (gq_job_cache_source(j2) == GQ_CACHE_SHARED) +
                 (gq_job_cache_source(j3) == GQ_CACHE_SHARED);
    uint64_t ran = s_worker_done(c.front) - 1;
    printf("3 identical jobs: worker ran %llu, %d answered as shared (%s %s %s)\n",
           (unsigned long long)ran, shared, gq_cache_source_name(gq_job_cache_source(j1)),
           gq_cache_source_name(gq_job_cache_source(j2)),
           gq_cache_source_name(gq_job_cache_source(j3)));
    GQT_CHECK(ran == 1 && shared == 2, "dedup: worker ran %llu jobs, %d shared",
              (unsigned long long)ran, shared);
    gq_job_destroy(&j1);
    gq_job_destroy(&j2);
    gq_job_destroy(&j3);
    gq_tensor_destroy(&x);

    /* The leading job is cancelled (its client destroys it): the waiter still gets the
     * answer, from the same single run. */
    x = gqt_cache_input(S_N, 12);
    want = s_expect(x);
    j1 = s_sum_job(x);
    j2 = s_sum_job(x);
    blk = s_blocker(z, 2);
    GQT_CHECK(gq_client_submit(a, j1) == GQ_OK, "submit j1");
    s_wait_admitted(z, 2); /* the blocker and j1: j1 leads */
    GQT_CHECK(gq_client_submit(b, j2) == GQ_OK, "submit j2");
    s_wait_admitted(z, 3); /* j2 waits on j1, queued behind the blocker */
    gq_job_destroy(&j1);   /* sends CANCEL for the leader */
    GQT_CHECK(gq_client_collect(b, 30000, &done) == GQ_OK && done == j2, "collect waiter");
    s_blocker_done(z, &blk);
    s_check_sum(j2, want, "waiter of a cancelled job");
    uint64_t ran2 = s_worker_done(c.front) - ran - 2;
    printf("leader cancelled: waiter answered (%s), worker ran %llu\n",
           gq_cache_source_name(gq_job_cache_source(j2)), (unsigned long long)ran2);
    GQT_CHECK(ran2 == 1, "worker ran %llu jobs for a cancelled leader and its waiter",
              (unsigned long long)ran2);
    gq_job_destroy(&j2);

    /* The same job now comes from memory; a bypass job runs again. */
    j1 = s_sum_job(x);
    GQT_CHECK(gq_client_run(a, j1) == GQ_OK && gq_job_cache_source(j1) == GQ_CACHE_MEMORY,
              "not cached after a shared run: %s", gq_cache_source_name(gq_job_cache_source(j1)));
    gq_job_cache(j1, GQ_CACHE_BYPASS, 0);
    GQT_CHECK(gq_client_run(a, j1) == GQ_OK && gq_job_cache_source(j1) == GQ_CACHE_COMPUTED,
              "bypass not computed");
    s_check_sum(j1, want, "bypass");
    gq_job_destroy(&j1);
    GQT_CHECK(s_worker_done(c.front) - ran - 2 == 2, "bypass job did not run");
    gq_cache_info_t ci = gqt_cache_info(a);
    printf("dedup_joined %llu, hits %llu\n", (unsigned long long)ci.dedup_joined,
           (unsigned long long)ci.hits);
    GQT_CHECK(ci.dedup_joined == 3, "dedup_joined %llu", (unsigned long long)ci.dedup_joined);
    gq_tensor_destroy(&x);
    gq_client_destroy(&a);
    gq_client_destroy(&b);
    gq_client_destroy(&z);
    gqt_cluster_stop(&c);
    printf("PASS\n");
    return 0;
}
