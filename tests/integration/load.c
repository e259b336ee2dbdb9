#include "load.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "client_int.h"
#include "harness.h"

typedef struct {
    gqt_load_t *load;
    int index;
    int ok, failed, wrong;
    uint64_t unmatched;
    char first_error[512];
} s_thread_t;

static pthread_mutex_t s_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_t s_bg;

/* Job n of thread t: kind n % 3 — scale by a power of two (exact), scale then sum over the
 * axis, or add the input to itself. Inputs differ per job so a misrouted answer shows. */
static gq_job_t *s_make_job(int t, int n, int elems)
{
    int64_t shape[1] = {elems};
    gq_tensor_t *x = gq_tensor_new(GQ_F32, shape, 1);
    float *d = gq_tensor_data(x);
    for (int i = 0; i < elems; i++)
        d[i] = (float)((n * 7 + t * 131 + i) % 1000) * 0.25f;
    gq_job_t *job;
    switch (n % 3) {
    case 0:
        job = gq_job_new("tensor.scale");
        gq_job_param_float(job, "factor", (double)(1 << (t % 4)));
        gq_job_input(job, x);
        break;
    case 1:
        job = gq_job_new("tensor.scale");
        gq_job_param_float(job, "factor", 0.5);
        gq_job_then(job, "tensor.sum");
        gq_job_param_int(job, "axis", 0);
        gq_job_input(job, x);
        break;
    default:
        job = gq_job_new("tensor.add");
        gq_job_input(job, x);
        gq_job_input(job, x);
        break;
    }
    gq_tensor_destroy(&x);
    gq_job_set_user(job, (void *)(intptr_t)n);
    return job;
}

static int s_check(int t, const gq_job_t *job, int elems, char *why, size_t len)
{
    int n = (int)(intptr_t)gq_job_user(job);
    gq_tensor_t *y = gq_job_output(job, 0);
    if (!y || gq_job_output_count(job) != 1 || gq_tensor_dtype(y) != GQ_F32) {
        snprintf(why, len, "job %d: bad output count or dtype", n);
        return 0;
    }
    const float *o = gq_tensor_data(y);
    double sum = 0;
    for (int i = 0; i < elems; i++) {
        float x = (float)((n * 7 + t * 131 + i) % 1000) * 0.25f;
        sum += (double)x * 0.5;
        if (n % 3 == 0 && o[i] != x * (float)(1 << (t % 4))) {
            snprintf(why, len, "job %d: scale[%d] = %g, want %g", n, i, o[i],
                     x * (float)(1 << (t % 4)));
            return 0;
        }
        if (n % 3 == 2 && o[i] != x + x) {
            snprintf(why, len, "job %d: add[%d] = %g, want %g", n, i, o[i], x + x);
            return 0;
        }
    }
    if (n % 3 == 1 && (gq_tensor_ndim(y) != 0 || fabs(o[0] - sum) > 1e-5 * fabs(sum) + 1e-3)) {
        snprintf(why, len, "job %d: sum = %g (ndim %d), want %g", n, o[0], gq_tensor_ndim(y), sum);
        return 0;
    }
    return 1;
}

static void s_account(s_thread_t *th, gq_job_t *job)
{
    char why[256];
    int rc = gq_job_status(job);
    if (rc != GQ_OK) {
        th->failed++;
        if (!th->first_error[0])
            snprintf(th->first_error, sizeof th->first_error, "%s: %s", gq_status_name(rc),
                     gq_job_error(job));
    } else if (!s_check(th->index, job, th->load->elems, why, sizeof why)) {
        th->wrong++;
        if (!th->first_error[0])
            snprintf(th->first_error, sizeof th->first_error, "%s", why);
    } else {
        th->ok++;
    }
    atomic_fetch_add(&th->load->completed, 1);
}

static void *s_thread_main(void *arg)
{
    s_thread_t *th = arg;
    gqt_load_t *load = th->load;
    char err[256];
    gq_client_opts_t o;
    gq_client_opts_init(&o);
    o.window = load->window;
    gq_client_t *c = gq_client_new(load->front, &o, err, sizeof err);
    if (!c) {
        snprintf(th->first_error, sizeof th->first_error, "client: %s", err);
        th->failed = load->jobs_per_thread;
        return NULL;
    }
    for (int n = 0; n < load->jobs_per_thread; n++) {
        gq_job_t *job = s_make_job(th->index, n, load->elems);
        gq_client_submit(c, job);
        gq_job_t *done;
        while (gq_client_collect(c, 0, &done) == GQ_OK) {
            s_account(th, done);
            gq_job_destroy(&done);
        }
    }
    gq_job_t *done;
    while (gq_client_collect(c, -1, &done) == GQ_OK) {
        s_account(th, done);
        gq_job_destroy(&done);
    }
    th->unmatched = gq_client_unmatched(c);
    gq_client_destroy(&c);
    return NULL;
}

void gqt_load_init(gqt_load_t *load, const char *front, int nthreads, int jobs_per_thread,
                   int elems, int window)
{
    memset(load, 0, sizeof *load);
    load->front = front;
    load->nthreads = nthreads;
    load->jobs_per_thread = jobs_per_thread;
    load->elems = elems;
    load->window = window;
}

void gqt_load_expect_all_ok(const gqt_load_t *load)
{
    int total = load->nthreads * load->jobs_per_thread;
    printf("jobs ok %d failed %d wrong %d unmatched %llu\n", load->ok, load->failed, load->wrong,
           (unsigned long long)load->unmatched);
    GQT_CHECK(load->ok == total && !load->failed && !load->wrong, "%s", load->first_error);
    GQT_CHECK(load->unmatched == 0, "%llu answers matched no job (duplicates)",
              (unsigned long long)load->unmatched);
}

void gqt_load_run(gqt_load_t *load)
{
    s_thread_t th[16];
    pthread_t tid[16];
    int n = load->nthreads > 16 ? 16 : load->nthreads;
    for (int i = 0; i < n; i++) {
        memset(&th[i], 0, sizeof th[i]);
        th[i].load = load;
        th[i].index = i;
        pthread_create(&tid[i], NULL, s_thread_main, &th[i]);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(tid[i], NULL);
        pthread_mutex_lock(&s_mu);
        load->ok += th[i].ok;
        load->failed += th[i].failed;
        load->wrong += th[i].wrong;
        load->unmatched += th[i].unmatched;
        if (!load->first_error[0] && th[i].first_error[0])
            snprintf(load->first_error, sizeof load->first_error, "thread %d: %.480s", i,
                     th[i].first_error);
        pthread_mutex_unlock(&s_mu);
    }
}

static void *s_bg_main(void *arg)
{
    gqt_load_run(arg);
    return NULL;
}

void gqt_load_start(gqt_load_t *load)
{
    pthread_create(&s_bg, NULL, s_bg_main, load);
}

void gqt_load_join(gqt_load_t *load)
{
    (void)load;
    pthread_join(s_bg, NULL);
}
