/* Helpers of the test_cache_* integration tests: brokers started with cache options on free
 * ports, workers, and checked jobs. Header-only: each test is one executable. */
#ifndef GQT_CACHE_UTIL_H
#define GQT_CACHE_UTIL_H

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "harness.h"

/* Starts gpuq-broker on fresh ports with extra args (NULL-terminated list, at most 16), and
 * n workers of one thread and `credits` credits; waits until they registered.
 * c->heartbeat_ms is 500: a worker is dropped after 1.5 s of silence, which a starved
 * process under ASan on a loaded 2-core machine has reached at 200 ms (0.6 s). */
static inline void gqt_cache_cluster(gqt_cluster_t *c, int nworkers, int credits,
                                     const char *const *extra)
{
    memset(c, 0, sizeof *c);
    c->heartbeat_ms = 500;
    c->front_port = gqt_free_port();
    do
        c->back_port = gqt_free_port();
    while (c->back_port == c->front_port);
    snprintf(c->front, sizeof c->front, "tcp://127.0.0.1:%d", c->front_port);
    snprintf(c->back, sizeof c->back, "tcp://127.0.0.1:%d", c->back_port);
    char *argv[32] = {(char *)gqt_bin("gpuq-broker"),
                      "--frontend",
                      c->front,
                      "--backend",
                      c->back,
                      "--heartbeat-ms",
                      "500",
                      "--drain-ms",
                      "2000"};
    int n = 9;
    for (int i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    c->broker = gqt_spawn(argv);
    for (int i = 0; i < nworkers; i++)
        gqt_cluster_add_worker(c, 1, credits);
    GQT_CHECK(gqt_wait_workers(c->front, nworkers, 10000) == 0,
              "%d workers did not register within 10 s", nworkers);
}

/* f32[n] with values from seed. */
static inline gq_tensor_t *gqt_cache_input(int64_t n, int seed)
{
    gq_tensor_t *x = gq_tensor_new(GQ_F32, &n, 1);
    float *d = gq_tensor_data(x);
    for (int64_t i = 0; i < n; i++)
        d[i] = (float)((i * 31 + seed * 7) % 1000) * 0.5f;
    return x;
}

/* tensor.scale by factor; checks the answer; returns where it came from. */
static inline gq_cache_source_t gqt_cache_scale(gq_client_t *c, gq_tensor_t *x, double factor)
{
    gq_job_t *j = gq_job_new("tensor.scale");
    gq_job_param_float(j, "factor", factor);
    gq_job_input(j, x);
    int rc = gq_client_run(c, j);
    GQT_CHECK(rc == GQ_OK, "job failed: %s", gq_job_error(j));
    const float *in = gq_tensor_data(x), *out = gq_tensor_data(gq_job_output(j, 0));
    int64_t n = gq_tensor_numel(x);
    for (int64_t i = 0; i < n; i++)
        GQT_CHECK(out[i] == (float)((double)in[i] * factor), "wrong value at %lld", (long long)i);
    gq_cache_source_t src = gq_job_cache_source(j);
    gq_job_destroy(&j);
    return src;
}

static inline gq_client_t *gqt_cache_client(const char *front)
{
    char err[256];
    gq_client_opts_t o;
    gq_client_opts_init(&o);
    o.timeout_ms = 20000;
    gq_client_t *c = gq_client_new(front, &o, err, sizeof err);
    GQT_CHECK(c, "client: %s", err);
    return c;
}

static inline gq_cache_info_t gqt_cache_info(gq_client_t *c)
{
    gq_cache_info_t ci;
    int rc = gq_client_cache_info(c, &ci, 5000);
    GQT_CHECK(rc == GQ_OK, "cache info: %s", gq_strerror(rc));
    return ci;
}

static inline const gq_cache_tier_info_t *gqt_tier(const gq_cache_info_t *ci, int tier)
{
    for (int i = 0; i < ci->ntiers; i++)
        if ((int)ci->tiers[i].tier == tier)
            return &ci->tiers[i];
    GQT_CHECK(0, "tier %s not in the stats", gq_cache_source_name(tier));
    return NULL;
}

#endif
