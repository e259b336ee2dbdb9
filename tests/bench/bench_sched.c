/* bench_sched: the scheduler's figures of issue 6, against the same cluster with the
 * feature off (or idle), in one run, with every answer's status checked.
 *
 *   (a) dynamic batching: saturated throughput of a small DSP job (dsp.logmel over 0.1 s of
 *       16 kHz audio) from C concurrent clients, batching on ÷ off (--batch-max 1);
 *       then an open-loop load at 70 % of the unbatched capacity: p95 latency on ÷ off
 *       (target <= 1.1) and p99/p50 at that load (target <= 3).
 *   (b) priority: p99 of realtime jobs (dsp.gain over 1600 samples, one every 5 ms) while
 *       batch-class log-mel jobs over 1 s of audio saturate the worker, ÷ their p99 on the
 *       idle cluster (target <= 2).
 *
 * Real gpuq-broker and gpuq-worker processes on free loopback ports; one worker with
 * --threads T (default 1). Options: --quick, --clients N, --threads T. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "benchlib.h"
#include "gpuq.h"

typedef struct {
    int quick;
    int only_b;  /* --priority-only: skip (a) */
    double load; /* --load F: open-loop rate as a fraction of the unbatched capacity (0.7) */
    int clients;
    int threads;
    double seconds; /* per measured phase */
} s_opts_t;

static s_opts_t s_o = {.clients = 8, .threads = 1, .seconds = 3.0, .load = 0.7};

typedef struct {
    pid_t broker, worker;
    char front[64];
} s_cluster_t;

static void s_start(s_cluster_t *c, const char *batch_max)
{
    int fp = gqb_free_port(), bp;
    do
        bp = gqb_free_port();
    while (bp == fp);
    char back[64], threads[16];
    snprintf(c->front, sizeof c->front, "tcp://127.0.0.1:%d", fp);
    snprintf(back, sizeof back, "tcp://127.0.0.1:%d", bp);
    snprintf(threads, sizeof threads, "%d", s_o.threads);
    char *bargv[] = {(char *)gqb_bin("gpuq-broker"),
                     "--frontend",
                     c->front,
                     "--backend",
                     back,
                     "--batch-max",
                     (char *)batch_max,
                     NULL};
    c->broker = gqb_spawn(bargv, -1);
    char *wargv[] = {(char *)gqb_bin("gpuq-worker"), "--broker", back, "--threads", threads, NULL};
    c->worker = gqb_spawn(wargv, -1);
    char err[256];
    gq_client_t *cl = gq_client_new(c->front, NULL, err, sizeof err);
    if (!cl)
        gqb_die("client: %s", err);
    gq_cluster_info_t info = {0};
    for (int i = 0; i < 200 && info.workers < 1; i++) {
        gq_client_cluster_info(cl, &info, 1000);
        if (info.workers < 1)
            usleep(50000);
    }
    gq_client_destroy(&cl);
    if (info.workers < 1)
        gqb_die("the worker did not register");
}

static void s_stop(s_cluster_t *c)
{
    gqb_stop_child(c->worker);
    gqb_stop_child(c->broker);
}

static gq_tensor_t *s_signal(int64_t n)
{
    gq_tensor_t *t = gq_tensor_new(GQ_F32, &n, 1);
    float *x = gq_tensor_data(t);
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)((i * 37) % 101 - 50) / 100.0f;
    return t;
}

static gq_job_t *s_logmel(gq_tensor_t *x, gq_priority_t prio)
{
    gq_job_t *j = gq_job_new("dsp.logmel");
    gq_job_param_float(j, "sr", 16000);
    gq_job_param_int(j, "n_fft", 512);
    gq_job_param_int(j, "hop_length", 160);
    gq_job_param_int(j, "n_mels", 40);
    gq_job_input(j, x);
    gq_job_set_priority(j, prio);
    gq_job_cache(j, GQ_CACHE_BYPASS, 0); /* every job computes */
    return j;
}

/* ---- client threads: closed loop (window) or open loop (rate) ---- */

typedef struct {
    const char *front;
    int64_t samples;
    gq_priority_t prio;
    int window;       /* closed loop: jobs in flight */
    double rate;      /* open loop: jobs/s (window ignored) */
    double seconds;   /* how long to submit */
    atomic_int *stop; /* or until this is set (closed loop, load) */
    long done, failed;
    uint64_t *lat_ns; /* open loop: one latency per job */
    long nlat, cap;
    long batched; /* answers computed in a batch of >= 2 */
} s_client_t;

static void s_take(s_client_t *c, gq_job_t *j)
{
    gq_job_timing_t t;
    gq_job_timing(j, &t);
    if (gq_job_status(j) != GQ_OK) {
        if (!c->failed++)
            fprintf(stderr, "bench_sched: job failed: %s\n", gq_job_error(j));
    } else {
        c->done++;
        c->batched += t.batch > 1;
        if (c->lat_ns && c->nlat < c->cap)
            c->lat_ns[c->nlat++] = t.total_us * 1000u;
    }
    gq_job_destroy(&j);
}

static void *s_client_main(void *arg)
{
    s_client_t *c = arg;
    char err[256];
    gq_client_opts_t o;
    gq_client_opts_init(&o);
    o.window = 4096;
    gq_client_t *cl = gq_client_new(c->front, &o, err, sizeof err);
    if (!cl)
        gqb_die("client: %s", err);
    gq_tensor_t *x = s_signal(c->samples);
    uint64_t t0 = gqb_now_ns(), end = t0 + (uint64_t)(c->seconds * 1e9);
    long sent = 0, inflight = 0;
    for (;;) {
        uint64_t now = gqb_now_ns();
        int more = now < end && !(c->stop && atomic_load(c->stop));
        if (!more && !inflight)
            break;
        int wait_ms = 100;
        if (more && c->rate > 0) {
            uint64_t due = t0 + (uint64_t)((double)sent * 1e9 / c->rate);
            if (now >= due) {
                gq_client_submit(cl, s_logmel(x, c->prio));
                sent++, inflight++;
                continue;
            }
            wait_ms = (int)((due - now) / 1000000u);
        } else if (more && inflight < c->window) {
            gq_client_submit(cl, s_logmel(x, c->prio));
            sent++, inflight++;
            continue;
        }
        gq_job_t *j = NULL;
        if (gq_client_collect(cl, wait_ms, &j) == GQ_OK && j) {
            inflight--;
            s_take(c, j);
        }
    }
    gq_tensor_destroy(&x);
    gq_client_destroy(&cl);
    return NULL;
}

/* Runs n clients like proto; returns jobs/s over the phase; latencies merged into lat. */
static double s_run_clients(s_client_t *proto, int n, uint64_t *lat, long *nlat, long *batched)
{
    s_client_t cs[64];
    pthread_t th[64];
    long cap = proto->rate > 0 ? (long)(proto->rate / n * proto->seconds * 1.2) + 64 : 0;
    uint64_t t0 = gqb_now_ns();
    for (int i = 0; i < n; i++) {
        cs[i] = *proto;
        cs[i].rate = proto->rate / n;
        cs[i].cap = cap;
        cs[i].lat_ns = cap ? calloc((size_t)cap, sizeof(uint64_t)) : NULL;
        pthread_create(&th[i], NULL, s_client_main, &cs[i]);
    }
    long done = 0, failed = 0;
    *nlat = 0;
    *batched = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        done += cs[i].done;
        failed += cs[i].failed;
        *batched += cs[i].batched;
        for (long k = 0; lat && k < cs[i].nlat; k++)
            lat[(*nlat)++] = cs[i].lat_ns[k];
        free(cs[i].lat_ns);
    }
    if (failed)
        gqb_die("%ld jobs failed", failed);
    return (double)done / ((double)(gqb_now_ns() - t0) / 1e9);
}

static int s_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double s_pct(uint64_t *v, long n, double q)
{
    if (!n)
        return 0;
    qsort(v, (size_t)n, sizeof *v, s_cmp);
    long i = (long)(q * (double)(n - 1) + 0.5);
    return (double)v[i] / 1000.0;
}

/* ---- (a) batching ---- */

typedef struct {
    double tput, p50, p95, p99;
    long batched, jobs;
} s_batch_fig_t;

static s_batch_fig_t s_batching(const char *batch_max, double open_rate, uint64_t *lat)
{
    s_cluster_t c;
    s_batch_fig_t f = {0};
    s_start(&c, batch_max);
    long nlat, batched;
    s_client_t p = {.front = c.front,
                    .samples = 1600,
                    .prio = GQ_PRIO_BATCH,
                    .window = 16,
                    .seconds = s_o.seconds / 3};
    s_run_clients(&p, s_o.clients, NULL, &nlat, &batched); /* warm-up: costs learned */
    p.seconds = s_o.seconds;
    f.tput = s_run_clients(&p, s_o.clients, NULL, &nlat, &batched);
    if (open_rate > 0) {
        p.rate = open_rate;
        s_run_clients(&p, s_o.clients, lat, &nlat, &f.batched);
        f.jobs = nlat;
        f.p50 = s_pct(lat, nlat, 0.50);
        f.p95 = s_pct(lat, nlat, 0.95);
        f.p99 = s_pct(lat, nlat, 0.99);
    }
    s_stop(&c);
    return f;
}

/* ---- (b) realtime under load ---- */

static double s_realtime_p99(int loaded, double *p50)
{
    s_cluster_t c;
    s_start(&c, "32");
    atomic_int stop = 0;
    s_client_t load = {.front = c.front,
                       .samples = 16000,
                       .prio = GQ_PRIO_BATCH,
                       .window = 32,
                       .seconds = 1e9,
                       .stop = &stop};
    pthread_t th[2];
    s_client_t loads[2] = {load, load};
    for (int i = 0; loaded && i < 2; i++)
        pthread_create(&th[i], NULL, s_client_main, &loads[i]);
    if (loaded)
        usleep(300000);
    int n = s_o.quick ? 100 : 400;
    uint64_t *lat = calloc((size_t)n, sizeof *lat);
    char err[256];
    gq_client_t *cl = gq_client_new(c.front, NULL, err, sizeof err);
    gq_tensor_t *x = s_signal(1600);
    for (int i = -5; i < n; i++) { /* 5 warm-up jobs */
        gq_job_t *j = gq_job_new("dsp.gain");
        gq_job_param_float(j, "db", -1.0 - (i + 5) * 1e-3);
        gq_job_input(j, x);
        gq_job_set_priority(j, GQ_PRIO_REALTIME);
        gq_job_cache(j, GQ_CACHE_BYPASS, 0);
        if (gq_client_run(cl, j) != GQ_OK)
            gqb_die("realtime job: %s", gq_job_error(j));
        gq_job_timing_t t;
        gq_job_timing(j, &t);
        if (i >= 0)
            lat[i] = t.total_us * 1000u;
        gq_job_destroy(&j);
        usleep(5000);
    }
    gq_tensor_destroy(&x);
    gq_client_destroy(&cl);
    atomic_store(&stop, 1);
    for (int i = 0; loaded && i < 2; i++)
        pthread_join(th[i], NULL);
    if (loaded && (loads[0].failed || loads[1].failed))
        gqb_die("load jobs failed");
    *p50 = s_pct(lat, n, 0.5);
    double p99 = s_pct(lat, n, 0.99);
    free(lat);
    s_stop(&c);
    return p99;
}

int main(int argc, char **argv)
{
    gqb_init("bench_sched");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            s_o.quick = 1, s_o.seconds = 1.5;
        else if (!strcmp(argv[i], "--priority-only"))
            s_o.only_b = 1;
        else if (!strcmp(argv[i], "--load") && i + 1 < argc)
            s_o.load = atof(argv[++i]);
        else if (!strcmp(argv[i], "--clients") && i + 1 < argc)
            s_o.clients = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            s_o.threads = atoi(argv[++i]);
        else
            gqb_die("usage: bench_sched [--quick] [--clients N] [--threads T] [--load F] "
                    "[--priority-only]");
    }
    if (s_o.clients < 1 || s_o.clients > 64)
        s_o.clients = 8;
    gqb_arm_alarm(600);
    uint64_t *lat = calloc(4u << 20, sizeof *lat);
    s_batch_fig_t off = {0}, on = {0};
    double rate = 0;
    if (s_o.only_b)
        goto priority;
    gqb_phase = "batching off, saturated";
    off = s_batching("1", 0, lat);
    rate = s_o.load * off.tput;
    gqb_phase = "batching off, 70 %";
    off = s_batching("1", rate, lat);
    gqb_phase = "batching on";
    on = s_batching("32", rate, lat);
    printf("(a) dsp.logmel over 0.1 s, %d clients, worker --threads %d\n", s_o.clients,
           s_o.threads);
    printf("    saturated throughput: off %.0f jobs/s, on %.0f jobs/s\n", off.tput, on.tput);
    printf("    at %.0f jobs/s (%.0f %% of off): off p50 %.2f p95 %.2f p99 %.2f ms; on p50 %.2f "
           "p95 %.2f p99 %.2f ms (%ld of %ld answers batched)\n",
           rate, 100 * s_o.load, off.p50 / 1000, off.p95 / 1000, off.p99 / 1000, on.p50 / 1000,
           on.p95 / 1000, on.p99 / 1000, on.batched, on.jobs);
priority:
    gqb_phase = "realtime idle";
    double idle50, load50;
    double idle = s_realtime_p99(0, &idle50);
    gqb_phase = "realtime loaded";
    double loaded = s_realtime_p99(1, &load50);
    printf("(b) realtime dsp.gain every 5 ms: idle p50 %.2f p99 %.2f ms; under saturating batch "
           "load p50 %.2f p99 %.2f ms\n",
           idle50 / 1000, idle / 1000, load50 / 1000, loaded / 1000);
    printf("\nratios (ours ÷ peer):\n");
    if (!s_o.only_b)
        printf("  batching throughput, on ÷ off:              %6.2f  (target >= 3)\n",
               on.tput / off.tput);
    if (!s_o.only_b)
        printf("  p95 at %2.0f %% load, on ÷ off:                 %6.2f  (target <= 1.1)\n",
               100 * s_o.load, on.p95 / off.p95);
    if (!s_o.only_b)
        printf("  p99 ÷ p50 at %2.0f %% load, batching on / off:  %6.2f / %.2f  (target <= 3)\n",
               100 * s_o.load, on.p99 / on.p50, off.p99 / off.p50);
    printf("  realtime p99, saturated ÷ idle:             %6.2f  (target <= 2)\n", loaded / idle);
    free(lat);
    gqb_kill_children();
    return 0;
}
