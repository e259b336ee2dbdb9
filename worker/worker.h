/* gpuq-worker core: a DEALER to the broker, a main loop that takes JOBs, keeps heartbeats
 * and sends results, and compute threads that run jobs through the backends. */
#ifndef GQ_WORKER_H
#define GQ_WORKER_H

#include "backend.h"
#include "status.h"

typedef struct gq_worker gq_worker_t;

typedef struct {
    const char *broker; /* endpoint to connect ("tcp://host:5556", "inproc://x") */
    const char *name;   /* NULL: host:pid */
    int threads;        /* compute threads (default 1) */
    int credits;        /* jobs in flight the broker may send (default 64 x threads) */
    int heartbeat_ms;   /* default 1000 */
    int liveness;       /* silent broker intervals before reconnecting (default 3) */
    int strict;         /* a stage that falls back to a lower backend fails instead */
    void *zmq_ctx;      /* NULL: the worker makes its own */
    gq_backend_config_t backend;
} gq_worker_config_t;

void gq_worker_config_init(gq_worker_config_t *cfg);

/* Opens backends and connects. NULL with err set on failure. */
gq_worker_t *gq_worker_new(const gq_worker_config_t *cfg, char *err, size_t errlen);

/* Serves until gq_worker_stop. */
int gq_worker_run(gq_worker_t *self);

/* Async-signal-safe, any thread. */
void gq_worker_stop(gq_worker_t *self);

void gq_worker_destroy(gq_worker_t **self_p);

#endif
