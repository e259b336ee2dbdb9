/* Inside the broker: the structs its files share (jobs, workers, runs, flights of identical
 * jobs, the broker itself) and the functions they call across files. Not installed.
 *
 *   broker.c        config, jobs' life, workers (READY, DONE, heartbeats), admission,
 *                   cancel, the poll loop, shutdown
 *   broker_cache.c  identical jobs in flight and answers from the result cache
 *   dispatch.c      scheduler -> worker: routing, stacking batches, expiry
 *   report.c        status replies, Prometheus text, gpuqctl queues / job text */
#ifndef GQ_BROKER_INT_H
#define GQ_BROKER_INT_H

#include <stddef.h>
#include <stdint.h>
#include "broker.h"
#include "cost.h"
#include "map.h"
#include "models.h"
#include "optable.h"

#define GQ_B_NCLASSES GQ_SCHED_NCLASSES
#define GQ_B_MAX_RID 255
#define GQ_B_DRAIN_BATCH 256
#define GQ_B_COST_GUESS_US 1000.0 /* before anything is measured */
#define GQ_B_MAX_SKIP 256         /* queued jobs looked past per class and dispatch round */
#define GQ_BJOB(p) ((gq_bjob_t *)(void *)((char *)(p)-offsetof(gq_bjob_t, sj)))
#define GQ_B_TEXT_MAX (64u << 10)

typedef struct gq_bworker gq_bworker_t;
typedef struct gq_bflight gq_bflight_t;

/* One run of stacked jobs on a worker: it holds one credit until its last job is answered. */
typedef struct {
    gq_bworker_t *worker;
    int left;
    uint64_t cost_us; /* the estimate added to the worker's backlog */
} gq_brun_t;

typedef struct gq_bjob {
    uint64_t id;
    uint64_t client_job_id;
    uint8_t client[GQ_B_MAX_RID];
    size_t client_len;
    gq_sched_job_t sj; /* class, deadline, client, batch key: the scheduler's view */
    gq_brun_t *run;    /* while in flight */
    int batched;       /* jobs in its run */
    gq_tdesc_t desc[GQ_WIRE_MAX_PAYLOAD];
    char model[33];   /* the model of its onnx.run stage, "" if none */
    int batch_concat; /* batches along its inputs' own dim 0 (a model's symbolic batch) */
    uint64_t sig;     /* ops, params and input signature, for the cost model */
    uint64_t in_bytes;
    int requeues;
    uint64_t admitted_us;
    uint64_t deadline_us; /* 0: none */
    uint64_t dispatched_us;
    Gq__Wire__Submit *submit;
    int ninputs;
    zmq_msg_t inputs[GQ_WIRE_MAX_PAYLOAD];
    gq_bworker_t *worker; /* set while in flight */
    struct gq_bjob *prev, *next;
    /* cache */
    gq_cache_key_t key;
    int keyed;       /* key set: the result is stored, identical jobs share the run */
    int policy;      /* GQ__WIRE__CACHE_POLICY__* */
    uint64_t ttl_ms; /* 0: the cache's default */
    gq_bflight_t *flight;
    int orphan; /* its client cancelled; it runs on for the jobs waiting on it */
    int lookup; /* parked while the Redis tier looks its key up */
} gq_bjob_t;

typedef struct {
    gq_bjob_t *head, *tail;
    size_t len;
} gq_blist_t;

/* Identical jobs in flight: the leader runs (or is looked up), the waiters get its answer. */
struct gq_bflight {
    gq_cache_key_t key;
    gq_bjob_t *leader;
    gq_blist_t waiters;
};

struct gq_bworker {
    uint8_t rid[GQ_B_MAX_RID];
    size_t rid_len;
    char name[GQ_MAX_NAME];
    uint32_t credits;
    uint32_t inflight;
    char **ops; /* sorted, for bsearch */
    size_t nops;
    char **backends;
    size_t nbackends;
    uint64_t last_seen_us;
    uint64_t jobs_done;
    uint64_t jobs_failed;
    uint64_t backlog_us;       /* estimated compute of its runs in flight */
    double fail;               /* smoothed share of its runs that failed for its own reasons */
    gq_cost_t *cost;           /* what its runs took, per signature */
    Gq__Wire__Ready *ready;    /* as it registered (devices) */
    Gq__Wire__Heartbeat *beat; /* its last heartbeat with fallback counters */
    char (*models)[33];        /* digests of the models it fetched: it holds them loaded */
    int nmodels;
    gq_blist_t jobs; /* in flight on this worker */
    gq_bworker_t *next;
};

struct gq_broker {
    gq_broker_config_t cfg;
    void *ctx;
    int own_ctx;
    void *front;
    void *back;
    int stop_pipe[2];
    gq_sched_t *sched;
    gq_models_t *models;
    gq_map_t *no_concat; /* hash(model digest): models whose batches did not split */
    gq_cost_t *costs;    /* per signature, over every worker */
    gq_map_t *jobs;      /* id -> job, queued and in flight */
    gq_map_t *by_client; /* hash(client rid, client job id) -> job, for cancel */
    gq_bworker_t *workers;
    int nworkers;
    uint64_t next_id;
    uint64_t done, failed, requeued, malformed, refused_cost;
    gq_cache_t *cache; /* NULL: no cache */
    gq_map_t *flights; /* key.lo -> flight */
    gq_blist_t parked; /* leaders waiting on an asynchronous lookup */
    char front_ep[256];
    char back_ep[256];
};

/* broker.c */
void gq_blist_push(gq_blist_t *l, gq_bjob_t *j, int front);
void gq_blist_remove(gq_blist_t *l, gq_bjob_t *j);
void gq_b_send_error(gq_broker_t *self, const uint8_t *rid, size_t rid_len, uint64_t job_id,
                     int code, const char *msg, uint32_t retry_after_ms, const char *worker);
/* Queues a job already accepted (never refused for room); out of memory answers it. */
void gq_b_enqueue(gq_broker_t *self, gq_bjob_t *j, unsigned flags);
/* Answers a job with a failure and frees it; the job is in no list. */
void gq_b_job_fail(gq_broker_t *self, gq_bjob_t *j, int code, const char *msg, const char *worker);
void gq_b_job_free(gq_broker_t *self, gq_bjob_t *j);
int gq_b_worker_has_op(const gq_bworker_t *w, const char *op);
/* Per-job compute estimate on w (NULL: the cluster's). */
double gq_b_cost_est(const gq_broker_t *self, const gq_bworker_t *w, uint64_t sig);

/* broker_cache.c */
int gq_b_cache_admit(gq_broker_t *self, const uint8_t *rid, size_t rid_len,
                     const Gq__Wire__Submit *s, gq_wire_msg_t *m, const gq_args_t *args,
                     gq_cache_key_t *key, int *keyed);
int gq_b_cache_route(gq_broker_t *self, gq_bjob_t *j);
void gq_b_cache_store(gq_broker_t *self, const gq_bjob_t *j, gq_wire_msg_t *m);
void gq_b_flight_detach(gq_broker_t *self, gq_bjob_t *j);
void gq_b_flight_leader_failed(gq_broker_t *self, gq_bjob_t *j, int code, const char *msg,
                               const char *worker);
void gq_b_flight_share(gq_broker_t *self, gq_bjob_t *j, Gq__Wire__Result *r, zmq_msg_t *payload,
                       int n);
void gq_b_on_lookup(void *arg, const gq_cache_key_t *key, gq_cache_val_t *val, int tier);

/* dispatch.c */
void gq_b_dispatch(gq_broker_t *self);
/* Whether some worker has a free credit. */
int gq_b_any_free(const gq_broker_t *self);
void gq_b_expire(gq_broker_t *self, uint64_t now);

/* report.c */
void gq_b_send_status(gq_broker_t *self, zmq_msg_t *rid, uint64_t request_id);
char *gq_b_metrics(gq_broker_t *self, const gq_cache_stats_t *cs);
void gq_b_queues_text(gq_broker_t *self, int verbose, char *buf, size_t len);
int gq_b_job_text(gq_broker_t *self, uint64_t id, char *buf, size_t len);
void gq_b_models_text(gq_broker_t *self, char *buf, size_t len);

#endif
