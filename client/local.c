/* The embedded cluster behind "local": broker and worker threads in this process, talking
 * over inproc:// on the library's shared ZeroMQ context. Same code as the servers. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "broker.h"
#include "client_int.h"
#include "util.h"
#include "worker.h"

#define S_MAX_WORKERS 16

static pthread_mutex_t s_mu = PTHREAD_MUTEX_INITIALIZER;
static int s_refs;
static gq_broker_t *s_broker;
static pthread_t s_broker_thread;
static gq_worker_t *s_workers[S_MAX_WORKERS];
static pthread_t s_worker_threads[S_MAX_WORKERS];
static int s_nworkers;
static char s_front[96];

static void *s_broker_main(void *arg)
{
    gq_broker_run(arg);
    return NULL;
}

static void *s_worker_main(void *arg)
{
    gq_worker_run(arg);
    return NULL;
}

static void s_stop_all(void)
{
    for (int i = 0; i < s_nworkers; i++) {
        gq_worker_stop(s_workers[i]);
        pthread_join(s_worker_threads[i], NULL);
        gq_worker_destroy(&s_workers[i]);
    }
    s_nworkers = 0;
    if (s_broker) {
        gq_broker_stop(s_broker);
        pthread_join(s_broker_thread, NULL);
        gq_broker_destroy(&s_broker);
    }
}

static int s_start(void *ctx, const gq_client_opts_t *o, char *err, size_t errlen)
{
    char back[96];
    snprintf(s_front, sizeof s_front, "inproc://gq-local-front-%d", (int)getpid());
    snprintf(back, sizeof back, "inproc://gq-local-back-%d", (int)getpid());
    gq_broker_config_t bc;
    gq_broker_config_init(&bc);
    bc.frontend = s_front;
    bc.backend = back;
    bc.zmq_ctx = ctx;
    bc.drain_ms = 0;
    if (o->heartbeat_ms > 0)
        bc.heartbeat_ms = o->heartbeat_ms;
    /* Memory tier only: an embedded library keeps no files and opens no connections. */
    bc.cache.mem_bytes = o->local_cache_mb > 0 ? (size_t)o->local_cache_mb << 20 : 0;
    bc.cache.enabled = o->local_cache_mb > 0;
    if (!(s_broker = gq_broker_new(&bc, err, errlen)))
        return -1;
    if (pthread_create(&s_broker_thread, NULL, s_broker_main, s_broker)) {
        gq_errf(err, errlen, "cannot start the embedded broker thread");
        gq_broker_destroy(&s_broker);
        return -1;
    }
    int nw = o->local_workers > 0 ? o->local_workers : 1;
    if (nw > S_MAX_WORKERS)
        nw = S_MAX_WORKERS;
    for (int i = 0; i < nw; i++) {
        gq_worker_config_t wc;
        gq_worker_config_init(&wc);
        char name[32];
        snprintf(name, sizeof name, "local-%d", i);
        wc.broker = back;
        wc.name = name;
        wc.threads = o->local_threads > 0 ? o->local_threads : 1;
        wc.zmq_ctx = ctx;
        wc.credits = o->local_credits;
        /* CPU only unless GQ_BACKENDS says otherwise ("opencl,cpu"): an embedded cluster
         * starts in milliseconds, and device discovery and kernel builds would cost
         * every short-lived client process more than its jobs. */
        const char *backends = getenv("GQ_BACKENDS");
        wc.backends = backends && *backends ? backends : "cpu";
        if (o->heartbeat_ms > 0)
            wc.heartbeat_ms = o->heartbeat_ms;
        gq_worker_t *w = gq_worker_new(&wc, err, errlen);
        if (!w)
            goto fail;
        if (pthread_create(&s_worker_threads[i], NULL, s_worker_main, w)) {
            gq_errf(err, errlen, "cannot start embedded worker thread %d", i);
            gq_worker_destroy(&w);
            goto fail;
        }
        s_workers[s_nworkers++] = w;
    }
    return 0;
fail:
    s_stop_all();
    return -1;
}

const char *gq_local_acquire(void *ctx, const gq_client_opts_t *o, char *err, size_t errlen)
{
    const char *ep = s_front;
    /* A library should not chat on stderr: the embedded servers log warnings and errors
     * only, unless GQ_LOG asks for more. */
    if (!getenv("GQ_LOG"))
        gq_log_set_level(GQ_LOG_WARN);
    pthread_mutex_lock(&s_mu);
    if (s_refs == 0 && s_start(ctx, o, err, errlen))
        ep = NULL;
    if (ep)
        s_refs++;
    pthread_mutex_unlock(&s_mu);
    return ep;
}

void gq_local_release(void)
{
    pthread_mutex_lock(&s_mu);
    if (s_refs > 0 && --s_refs == 0)
        s_stop_all();
    pthread_mutex_unlock(&s_mu);
}
