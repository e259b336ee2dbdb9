/* gpuq-worker core: a DEALER to the broker, a main loop that takes JOBs, keeps heartbeats
 * and sends results, and compute threads that run jobs through the backends. */
#ifndef GQ_WORKER_H
#define GQ_WORKER_H

#include <stdint.h>
#include "backend.h"
#include "status.h"

typedef struct gq_worker gq_worker_t;

typedef struct {
    const char *broker; /* endpoint to connect ("tcp://host:5556", "inproc://x") */
    const char *name;   /* NULL: host:pid */
    int threads;        /* compute threads (default 1) */
    int urgent_threads; /* more threads for realtime/interactive jobs only (default 1; 0: none):
                         * an urgent job never waits for a bulk job to finish */
    int bulk_nice;      /* nice of the other compute threads when urgent ones exist (5) */
    int credits;        /* jobs in flight the broker may send (default 4 x threads) */
    int heartbeat_ms;   /* default 1000 */
    int liveness;       /* silent broker intervals before reconnecting (default 3) */
    int strict;         /* a stage that falls back to a lower backend fails instead */
    int onnx_threads;   /* participants in each ONNX kernel (worker/par.h; process-wide):
                         * 0: GQ_THREADS if set, else online CPUs / threads, at least 1 —
                         * with every compute thread busy no core is oversubscribed */
    void *zmq_ctx;      /* NULL: the worker makes its own */
    /* Backends in priority order, comma-separated: "opencl,cpu". NULL: OpenCL when a GPU
     * (or accelerator) device is found, then the CPU; a CPU-only OpenCL platform (PoCL)
     * is used only when named here or picked by backend.device_index/device_match. A
     * backend named here that cannot start fails gq_worker_new. */
    const char *backends;
    gq_backend_config_t backend;
} gq_worker_config_t;

void gq_worker_config_init(gq_worker_config_t *cfg);

/* Opens backends and connects. NULL with err set on failure. */
gq_worker_t *gq_worker_new(const gq_worker_config_t *cfg, char *err, size_t errlen);

/* Serves until gq_worker_stop. */
int gq_worker_run(gq_worker_t *self);

/* Async-signal-safe, any thread. */
void gq_worker_stop(gq_worker_t *self);

/* Fallbacks of op away from backend (fallbacks_total{op,backend}, see exec.h): a
 * backend passed over for a stage it declined or failed on. */
uint64_t gq_worker_fallbacks(gq_worker_t *self, const char *op, const char *backend);

/* Prometheus text of every nonzero fallback counter; returns the line count. The worker
 * also logs them when it stops. */
int gq_worker_fallbacks_text(gq_worker_t *self, char *buf, size_t len);

/* Logs each fallback counter, and frees the worker. */
void gq_worker_destroy(gq_worker_t **self_p);

#endif
