/* gpuq-broker core: a ROUTER frontend for clients, a ROUTER backend for workers, one
 * poll loop (read, dispatch, then heartbeats and purges), after zguide's mdbroker. */
#ifndef GQ_BROKER_H
#define GQ_BROKER_H

#include <stddef.h>
#include "cache_tiers.h"
#include "scheduler.h"
#include "status.h"
#include "wire.h"

typedef struct gq_broker gq_broker_t;

#define GQ_BROKER_MAX_BATCH_RULES 32

typedef struct {
    char op[64];
    gq_sched_batch_t batch;
} gq_broker_batch_rule_t;

typedef struct {
    const char *frontend; /* bind endpoint for clients ("tcp://0.0.0.0:5555", "inproc://x") */
    const char *backend;  /* bind endpoint for workers */
    int heartbeat_ms;     /* interval of heartbeats to workers (default 1000) */
    int liveness;         /* missed intervals before a worker is dropped (default 3) */
    int max_requeues;     /* times a job may lose its worker before it fails (default 3) */
    int drain_ms;         /* on stop: wait this long for jobs in flight (default 5000) */
    void *zmq_ctx;        /* NULL: the broker makes its own */
    gq_wire_limits_t limits;
    gq_cache_config_t cache; /* result cache tiers (default: none configured) */
    gq_sched_config_t sched; /* queue bounds (max_queue: RESOURCE_EXHAUSTED), aging */
    gq_sched_batch_t batch;  /* batching of GQ_OPF_BATCHABLE ops (default: max 32, no delay) */
    gq_broker_batch_rule_t batch_rules[GQ_BROKER_MAX_BATCH_RULES]; /* per first op */
    int nbatch_rules;
    uint64_t batch_bytes;       /* most stacked input bytes in one batch (default 16 MiB) */
    uint64_t batch_run_us;      /* most measured compute per batch run (default 2000; 0: no cap) */
    int admit_by_cost;          /* refuse jobs whose deadline the measured costs say they miss */
    const char *model_dir;      /* model store files (NULL: memory only) */
    uint64_t model_store_bytes; /* model store cap (default 1 GiB) */
    double model_load_us;       /* routing penalty of a worker without the job's model
                                 * loaded (default 50000: fetch, parse, plan) */
    int reserve_credits;        /* per worker, kept for realtime/interactive jobs (default 1) */
} gq_broker_config_t;

/* Parses "OP=MAX[:DELAY_US[:P1/P2/..]]" (--batch) into r; err names what is wrong. */
gq_status gq_broker_batch_parse(const char *text, gq_broker_batch_rule_t *r, char *err,
                                size_t errlen);

void gq_broker_config_init(gq_broker_config_t *cfg);

/* Binds both endpoints. NULL with err set on failure. */
gq_broker_t *gq_broker_new(const gq_broker_config_t *cfg, char *err, size_t errlen);

/* Serves until gq_broker_stop; returns GQ_OK after a clean shutdown. */
int gq_broker_run(gq_broker_t *self);

/* Asks the loop to stop. Async-signal-safe and callable from any thread. */
void gq_broker_stop(gq_broker_t *self);

/* Endpoints as bound (a tcp wildcard port resolved to the real one). */
const char *gq_broker_frontend(const gq_broker_t *self);
const char *gq_broker_backend(const gq_broker_t *self);

void gq_broker_destroy(gq_broker_t **self_p);

#endif
