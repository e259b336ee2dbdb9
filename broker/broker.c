#include "broker.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "batch.h"
#include "cache_report.h"
#include "cost.h"
#include "map.h"
#include "optable.h"
#include "util.h"

#define S_NCLASSES GQ_SCHED_NCLASSES
#define S_MAX_RID 255
#define S_DRAIN_BATCH 256
#define S_COST_GUESS_US 1000.0 /* before anything is measured */
#define S_MAX_SKIP 256 /* queued jobs looked past per class and dispatch round */
#define S_JOB(p) ((s_job_t *)(void *)((char *)(p) - offsetof(s_job_t, sj)))
#define S_METRICS_MAX (64u << 10)

typedef struct s_worker s_worker_t;
typedef struct s_flight s_flight_t;

/* One run of stacked jobs on a worker: it holds one credit until its last job is answered. */
typedef struct {
    s_worker_t *worker;
    int left;
    uint64_t cost_us; /* the estimate added to the worker's backlog */
} s_run_t;

typedef struct s_job {
    uint64_t id;
    uint64_t client_job_id;
    uint8_t client[S_MAX_RID];
    size_t client_len;
    gq_sched_job_t sj; /* class, deadline, client, batch key: the scheduler's view */
    s_run_t *run;      /* while in flight */
    int batched;       /* jobs in its run */
    gq_tdesc_t desc[GQ_WIRE_MAX_PAYLOAD];
    uint64_t sig;      /* ops, params and input signature, for the cost model */
    uint64_t in_bytes;
    int requeues;
    uint64_t admitted_us;
    uint64_t deadline_us; /* 0: none */
    uint64_t dispatched_us;
    Gq__Wire__Submit *submit;
    int ninputs;
    zmq_msg_t inputs[GQ_WIRE_MAX_PAYLOAD];
    s_worker_t *worker; /* set while in flight */
    struct s_job *prev, *next;
    /* cache */
    gq_cache_key_t key;
    int keyed;       /* key set: the result is stored, identical jobs share the run */
    int policy;      /* GQ__WIRE__CACHE_POLICY__* */
    uint64_t ttl_ms; /* 0: the cache's default */
    s_flight_t *flight;
    int orphan; /* its client cancelled; it runs on for the jobs waiting on it */
    int lookup; /* parked while the Redis tier looks its key up */
} s_job_t;

typedef struct {
    s_job_t *head, *tail;
    size_t len;
} s_list_t;

/* Identical jobs in flight: the leader runs (or is looked up), the waiters get its answer. */
struct s_flight {
    gq_cache_key_t key;
    s_job_t *leader;
    s_list_t waiters;
};

struct s_worker {
    uint8_t rid[S_MAX_RID];
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
    uint64_t backlog_us; /* estimated compute of its runs in flight */
    double fail;         /* smoothed share of its runs that failed for its own reasons */
    gq_cost_t *cost;     /* what its runs took, per signature */
    Gq__Wire__Ready *ready; /* as it registered (devices) */
    Gq__Wire__Heartbeat *beat; /* its last heartbeat with fallback counters */
    s_list_t jobs; /* in flight on this worker */
    s_worker_t *next;
};

struct gq_broker {
    gq_broker_config_t cfg;
    void *ctx;
    int own_ctx;
    void *front;
    void *back;
    int stop_pipe[2];
    gq_sched_t *sched;
    gq_cost_t *costs; /* per signature, over every worker */
    gq_map_t *jobs;      /* id -> job, queued and in flight */
    gq_map_t *by_client; /* hash(client rid, client job id) -> job, for cancel */
    s_worker_t *workers;
    int nworkers;
    uint64_t next_id;
    uint64_t done, failed, requeued, malformed, refused_cost;
    gq_cache_t *cache; /* NULL: no cache */
    gq_map_t *flights; /* key.lo -> flight */
    s_list_t parked;   /* leaders waiting on an asynchronous lookup */
    char front_ep[256];
    char back_ep[256];
};

static void s_list_push(s_list_t *l, s_job_t *j, int front)
{
    j->prev = j->next = NULL;
    if (!l->head) {
        l->head = l->tail = j;
    } else if (front) {
        j->next = l->head;
        l->head->prev = j;
        l->head = j;
    } else {
        j->prev = l->tail;
        l->tail->next = j;
        l->tail = j;
    }
    l->len++;
}

static void s_list_remove(s_list_t *l, s_job_t *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        l->head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        l->tail = j->prev;
    j->prev = j->next = NULL;
    l->len--;
}

static uint64_t s_client_key(const uint8_t *rid, size_t len, uint64_t client_job_id)
{
    uint64_t k = gq_hash_bytes(rid, len, client_job_id);
    return k ? k : 1;
}

void gq_broker_config_init(gq_broker_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->frontend = "tcp://*:5555";
    cfg->backend = "tcp://*:5556";
    cfg->heartbeat_ms = 1000;
    cfg->liveness = 3;
    cfg->max_requeues = 3;
    gq_sched_config_init(&cfg->sched);
    cfg->batch.max = 32;
    cfg->batch_bytes = 16u << 20;
    cfg->reserve_credits = 1;
    cfg->batch_run_us = 2000;
    cfg->drain_ms = 5000;
    gq_wire_limits_default(&cfg->limits);
    /* No tier unless configured: a broker answers every job from a worker until its
     * operator gives the cache a budget (gpuq-broker --cache-mem-mb; local mode does). */
    gq_cache_config_init(&cfg->cache);
    cfg->cache.mem_bytes = 0;
}

gq_status gq_broker_batch_parse(const char *text, gq_broker_batch_rule_t *r, char *err,
                                size_t errlen)
{
    memset(r, 0, sizeof *r);
    const char *eq = strchr(text, '=');
    if (!eq || eq == text || (size_t)(eq - text) >= sizeof r->op) {
        gq_errf(err, errlen, "want OP=MAX[:DELAY_US[:P1/P2..]]");
        return GQ_EPARAM;
    }
    memcpy(r->op, text, (size_t)(eq - text));
    if (!gq_op_find(r->op)) {
        gq_errf(err, errlen, "unknown op '%s'", r->op);
        return GQ_EUNKNOWN_OP;
    }
    char buf[128];
    snprintf(buf, sizeof buf, "%s", eq + 1);
    char *save = NULL, *f[3] = {0};
    int nf = 0;
    for (char *t = strtok_r(buf, ":", &save); t && nf < 3; t = strtok_r(NULL, ":", &save))
        f[nf++] = t;
    long long v;
    if (!f[0] || gq_parse_int(f[0], 1, GQ_WIRE_MAX_BATCH, &v)) {
        gq_errf(err, errlen, "MAX must be 1..%d", GQ_WIRE_MAX_BATCH);
        return GQ_EPARAM;
    }
    r->batch.max = (uint32_t)v;
    if (f[1] && gq_parse_int(f[1], 0, 10000000, &v)) {
        gq_errf(err, errlen, "DELAY_US must be 0..10000000");
        return GQ_EPARAM;
    }
    r->batch.delay_us = f[1] ? (uint32_t)v : 0;
    int np = 0;
    for (char *t = f[2] ? strtok_r(f[2], "/", &save) : NULL; t; t = strtok_r(NULL, "/", &save)) {
        if (np == GQ_SCHED_MAX_PREFERRED || gq_parse_int(t, 1, r->batch.max, &v)) {
            gq_errf(err, errlen, "at most %d preferred sizes, each 1..MAX",
                    GQ_SCHED_MAX_PREFERRED);
            return GQ_EPARAM;
        }
        r->batch.preferred[np++] = (uint32_t)v;
    }
    return GQ_OK;
}

/* ---- answers to clients ---- */

static void s_send_error(gq_broker_t *self, const uint8_t *rid, size_t rid_len, uint64_t job_id,
                         int code, const char *msg, uint32_t retry_after_ms, const char *worker)
{
    Gq__Wire__Error e = GQ__WIRE__ERROR__INIT;
    e.job_id = job_id;
    e.code = code;
    e.message = (char *)msg;
    e.retry_after_ms = retry_after_ms;
    e.worker = (char *)(worker ? worker : "");
    gq_wire_send(self->front, rid, rid_len, GQ_CMD_ERROR, &e.base, NULL, 0);
}

/* Frees what a job owns; the caller has unlinked it. */
static void s_job_release(s_job_t *j)
{
    if (j->run && --j->run->left <= 0)
        free(j->run); /* only at teardown: s_job_free gave the run back already */
    for (int i = 0; i < j->ninputs; i++)
        zmq_msg_close(&j->inputs[i]);
    if (j->submit)
        protobuf_c_message_free_unpacked(&j->submit->base, NULL);
    free(j);
}

/* ---- identical jobs in flight ---- */

static void s_job_fail(gq_broker_t *self, s_job_t *j, int code, const char *msg,
                       const char *worker);

/* Queues a job already accepted (never refused for room); out of memory answers it. */
static void s_enqueue(gq_broker_t *self, s_job_t *j, unsigned flags)
{
    if (gq_sched_push(self->sched, &j->sj, gq_now_us(), flags | GQ_SCHED_FORCE, NULL))
        s_job_fail(self, j, GQ_ENOMEM, "broker out of memory queueing the job", NULL);
}

static uint64_t s_flight_mkey(const gq_cache_key_t *k)
{
    return k->lo ? k->lo : 1;
}

static s_flight_t *s_flight_find(gq_broker_t *self, const gq_cache_key_t *key)
{
    s_flight_t *f = gq_map_get(self->flights, s_flight_mkey(key));
    return f && gq_cache_key_equal(&f->key, key) ? f : NULL;
}

/* Makes j the leader of a new flight. When that fails (out of memory, or another key with
 * the same low 64 bits in flight) j runs alone, j->flight stays NULL. */
static void s_flight_lead(gq_broker_t *self, s_job_t *j)
{
    if (gq_map_get(self->flights, s_flight_mkey(&j->key)))
        return;
    s_flight_t *f = calloc(1, sizeof *f);
    if (!f)
        return;
    f->key = j->key;
    f->leader = j;
    if (gq_map_put(self->flights, s_flight_mkey(&j->key), f)) {
        free(f);
        return;
    }
    j->flight = f;
}

static void s_flight_end(gq_broker_t *self, s_flight_t *f)
{
    gq_map_take(self->flights, s_flight_mkey(&f->key));
    free(f);
}

/* Takes j out of its flight: a waiter leaves the list; a leader ends a flight nobody else
 * waits on (a leader with waiters goes through s_flight_leader_failed or s_flight_share). */
static void s_flight_detach(gq_broker_t *self, s_job_t *j)
{
    s_flight_t *f = j->flight;
    if (!f)
        return;
    j->flight = NULL;
    if (f->leader != j) {
        s_list_remove(&f->waiters, j);
        return;
    }
    f->leader = NULL;
    if (f->waiters.head) {
        /* Not reached by the callers; keep the waiters served rather than stranded. */
        s_job_t *w = f->waiters.head;
        s_list_remove(&f->waiters, w);
        f->leader = w;
        s_enqueue(self, w, GQ_SCHED_FRONT);
        return;
    }
    s_flight_end(self, f);
}

/* Failures that any identical job would meet the same way; others (its own deadline, a
 * backend fault) leave the waiters a run of their own. */
static int s_fail_is_shared(int code)
{
    return code == GQ_EPARAM || code == GQ_ESHAPE || code == GQ_EDTYPE || code == GQ_EUNKNOWN_OP ||
           code == GQ_EUNSUPPORTED || code == GQ_EWORKER_LOST || code == GQ_ECLOSED;
}

/* The leader of a flight failed: its waiters share the failure, or the first of them is
 * promoted to leader and queued (ahead of its class: it has waited already). */
static void s_flight_leader_failed(gq_broker_t *self, s_job_t *j, int code, const char *msg,
                                   const char *worker)
{
    s_flight_t *f = j->flight;
    j->flight = NULL;
    f->leader = NULL;
    if (f->waiters.head && !s_fail_is_shared(code)) {
        s_job_t *w = f->waiters.head;
        s_list_remove(&f->waiters, w);
        f->leader = w;
        GQ_DEBUG("job %llu failed (%s); job %llu runs for its %zu waiters",
                 (unsigned long long)j->id, gq_status_name(code), (unsigned long long)w->id,
                 f->waiters.len);
        s_enqueue(self, w, GQ_SCHED_FRONT);
        return;
    }
    while (f->waiters.head) {
        s_job_t *w = f->waiters.head;
        s_list_remove(&f->waiters, w);
        w->flight = NULL;
        s_job_fail(self, w, code, msg, worker);
    }
    s_flight_end(self, f);
}

static void s_run_release(s_job_t *j);

static void s_job_free(gq_broker_t *self, s_job_t *j)
{
    s_run_release(j);
    s_flight_detach(self, j);
    gq_map_take(self->jobs, j->id);
    uint64_t ck = s_client_key(j->client, j->client_len, j->client_job_id);
    if (gq_map_get(self->by_client, ck) == j)
        gq_map_take(self->by_client, ck);
    s_job_release(j);
}

/* Answers a job with a failure and frees it; the job is in no list. */
static void s_job_fail(gq_broker_t *self, s_job_t *j, int code, const char *msg, const char *worker)
{
    if (!j->orphan) {
        s_send_error(self, j->client, j->client_len, j->client_job_id, code, msg, 0, worker);
        self->failed++;
    }
    if (j->flight && j->flight->leader == j)
        s_flight_leader_failed(self, j, code, msg, worker);
    s_job_free(self, j);
}

/* ---- answers from the cache ---- */

static void s_val_free_cb(void *data, void *hint)
{
    (void)data;
    gq_cache_val_t *v = hint;
    gq_cache_val_unref(&v);
}

/* Answers a job with a cached value: frames point into the value (a reference each), so
 * no byte is copied here. */
static void s_send_val(gq_broker_t *self, const uint8_t *rid, size_t rid_len,
                       uint64_t client_job_id, gq_cache_val_t *val, int tier)
{
    Gq__Wire__Result r = GQ__WIRE__RESULT__INIT;
    Gq__Wire__Timing t = GQ__WIRE__TIMING__INIT;
    Gq__Wire__TensorDesc tds[GQ_MAX_OUTPUTS], *tdp[GQ_MAX_OUTPUTS];
    int64_t shapes[GQ_MAX_OUTPUTS][GQ_MAX_DIMS];
    zmq_msg_t payload[GQ_MAX_OUTPUTS];
    int n = gq_cache_val_count(val);
    for (int i = 0; i < n; i++) {
        gq_wire_desc_fill(&tds[i], shapes[i], gq_cache_val_desc(val, i));
        tdp[i] = &tds[i];
        size_t nb = gq_cache_val_nbytes(val, i);
        gq_cache_val_ref(val);
        if (!nb || zmq_msg_init_data(&payload[i], (void *)gq_cache_val_data(val, i), nb,
                                     s_val_free_cb, val)) {
            gq_cache_val_t *v = val;
            gq_cache_val_unref(&v);
            zmq_msg_init(&payload[i]);
            if (nb) {
                for (int k = 0; k <= i; k++)
                    zmq_msg_close(&payload[k]);
                s_send_error(self, rid, rid_len, client_job_id, GQ_ENOMEM,
                             "broker out of memory sending a cached result", 0, NULL);
                self->failed++;
                return;
            }
        }
    }
    char *backends[GQ_CACHE_MAX_META];
    int nmeta = gq_cache_val_meta_count(val);
    for (int k = 1; k < nmeta; k++)
        backends[k - 1] = (char *)gq_cache_val_meta(val, k);
    r.job_id = client_job_id;
    r.n_outputs = (size_t)n;
    r.outputs = tdp;
    r.timing = &t;
    /* Who computed the bytes, as when they were stored: the provenance of a result does
     * not change with where it was kept. */
    r.worker = (char *)gq_cache_val_meta(val, 0);
    r.n_backends = nmeta > 1 ? (size_t)(nmeta - 1) : 0;
    r.backends = backends;
    r.cache_tier = (Gq__Wire__CacheTier)tier;
    gq_wire_send(self->front, rid, rid_len, GQ_CMD_RESULT, &r.base, payload, n);
    self->done++;
}

/* Stores a worker's result under the job's key (one copy of the bytes). */
static void s_cache_store(gq_broker_t *self, const s_job_t *j, gq_wire_msg_t *m)
{
    if (!self->cache || !j->keyed)
        return;
    const void *data[GQ_WIRE_MAX_PAYLOAD];
    size_t nb[GQ_WIRE_MAX_PAYLOAD];
    uint64_t total = 0;
    for (int i = 0; i < m->npayload; i++) {
        data[i] = zmq_msg_data(&m->payload[i]);
        nb[i] = zmq_msg_size(&m->payload[i]);
        total += nb[i];
    }
    if (total > self->cfg.cache.max_value) {
        gq_cache_counters(self->cache)->too_big++;
        return;
    }
    const Gq__Wire__Done *d = (const Gq__Wire__Done *)m->hdr;
    const char *meta[GQ_CACHE_MAX_META];
    int nmeta = 0;
    meta[nmeta++] = j->worker ? j->worker->name : "";
    for (size_t k = 0; k < d->n_backends && nmeta < GQ_CACHE_MAX_META; k++)
        meta[nmeta++] = d->backends[k];
    gq_cache_val_t *v = gq_cache_val_new(m->desc, data, nb, m->npayload, meta, nmeta);
    if (!v) {
        gq_cache_counters(self->cache)->too_big++;
        return;
    }
    gq_cache_put(self->cache, &j->key, v, j->ttl_ms);
    gq_cache_val_unref(&v);
}

/* Answers the waiters of leader j with copies of its result frames (refcounted: no byte
 * copy) and ends the flight. r is the leader's answer; it is restored on return. */
static void s_flight_share(gq_broker_t *self, s_job_t *j, Gq__Wire__Result *r, zmq_msg_t *payload,
                           int n)
{
    s_flight_t *f = j->flight;
    if (!f || f->leader != j)
        return;
    j->flight = NULL;
    uint64_t id = r->job_id;
    r->cache_tier = GQ__WIRE__CACHE_TIER__TIER_SHARED;
    while (f->waiters.head) {
        s_job_t *w = f->waiters.head;
        s_list_remove(&f->waiters, w);
        w->flight = NULL;
        zmq_msg_t copy[GQ_WIRE_MAX_PAYLOAD];
        for (int i = 0; i < n; i++) {
            zmq_msg_init(&copy[i]);
            zmq_msg_copy(&copy[i], &payload[i]);
        }
        r->job_id = w->client_job_id;
        gq_wire_send(self->front, w->client, w->client_len, GQ_CMD_RESULT, &r->base, copy, n);
        self->done++;
        if (self->cache)
            gq_cache_counters(self->cache)->dedup_joined++;
        s_job_free(self, w);
    }
    r->job_id = id;
    r->cache_tier = GQ__WIRE__CACHE_TIER__TIER_NONE;
    s_flight_end(self, f);
}

/* An asynchronous lookup finished: a hit answers the parked leader and its waiters, a miss
 * queues the leader. Answers for jobs gone meanwhile (cancelled) are dropped. */
static void s_on_lookup(void *arg, const gq_cache_key_t *key, gq_cache_val_t *val, int tier)
{
    gq_broker_t *self = arg;
    s_flight_t *f = s_flight_find(self, key);
    s_job_t *j = f ? f->leader : NULL;
    if (!j || !j->lookup) {
        gq_cache_val_unref(&val);
        return;
    }
    s_list_remove(&self->parked, j);
    j->lookup = 0;
    if (!val) {
        s_enqueue(self, j, 0);
        return;
    }
    j->flight = NULL;
    while (f->waiters.head) {
        s_job_t *w = f->waiters.head;
        s_list_remove(&f->waiters, w);
        w->flight = NULL;
        s_send_val(self, w->client, w->client_len, w->client_job_id, val, tier);
        s_job_free(self, w);
    }
    if (!j->orphan)
        s_send_val(self, j->client, j->client_len, j->client_job_id, val, tier);
    s_flight_end(self, f);
    s_job_free(self, j);
    gq_cache_val_unref(&val);
}

/* ---- workers ---- */

static s_worker_t *s_worker_find(gq_broker_t *self, const void *rid, size_t len)
{
    for (s_worker_t *w = self->workers; w; w = w->next)
        if (w->rid_len == len && !memcmp(w->rid, rid, len))
            return w;
    return NULL;
}

static int s_strcmp_p(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int s_worker_has_op(const s_worker_t *w, const char *op)
{
    return bsearch(&op, w->ops, w->nops, sizeof *w->ops, s_strcmp_p) != NULL;
}

static void s_strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static char **s_strv_dup(char *const *src, size_t n)
{
    char **v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!(v[i] = strdup(src[i]))) {
            s_strv_free(v, i);
            return NULL;
        }
    return v;
}

/* Puts a job back at the front of its class, or fails it when it has lost too many
 * workers (a job that kills every worker it touches must not take the cluster down). */
/* Gives back j's share of its run: the worker's credit returns with the run's last job. */
static void s_run_release(s_job_t *j)
{
    s_run_t *r = j->run;
    if (!r)
        return;
    j->run = NULL;
    if (--r->left > 0)
        return;
    s_worker_t *w = r->worker;
    w->inflight--;
    w->backlog_us -= r->cost_us < w->backlog_us ? r->cost_us : w->backlog_us;
    free(r);
}

static void s_requeue(gq_broker_t *self, s_job_t *j, const char *why)
{
    const char *wname = j->worker ? j->worker->name : "";
    s_run_release(j);
    j->worker = NULL;
    if (++j->requeues > self->cfg.max_requeues) {
        char msg[GQ_ERRLEN];
        gq_errf(msg, sizeof msg, "job lost its worker %d times (last: %s, %s); not retried",
                j->requeues, wname, why);
        s_job_fail(self, j, GQ_EWORKER_LOST, msg, wname);
        return;
    }
    self->requeued++;
    s_enqueue(self, j, GQ_SCHED_FRONT);
}

static void s_worker_delete(gq_broker_t *self, s_worker_t *w, const char *why)
{
    GQ_INFO("worker %s removed (%s); requeueing %zu jobs", w->name, why, w->jobs.len);
    while (w->jobs.head) {
        s_job_t *j = w->jobs.head;
        s_list_remove(&w->jobs, j);
        s_requeue(self, j, why);
    }
    for (s_worker_t **pp = &self->workers; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    self->nworkers--;
    s_strv_free(w->ops, w->nops);
    s_strv_free(w->backends, w->nbackends);
    gq_cost_destroy(&w->cost);
    if (w->ready)
        protobuf_c_message_free_unpacked(&w->ready->base, NULL);
    if (w->beat)
        protobuf_c_message_free_unpacked(&w->beat->base, NULL);
    free(w);
}

static void s_send_disconnect(gq_broker_t *self, const void *rid, size_t len, const char *why)
{
    Gq__Wire__Disconnect d = GQ__WIRE__DISCONNECT__INIT;
    d.reason = (char *)why;
    gq_wire_send(self->back, rid, len, GQ_CMD_DISCONNECT, &d.base, NULL, 0);
}

static void s_on_ready(gq_broker_t *self, zmq_msg_t *rid, gq_wire_msg_t *m)
{
    const Gq__Wire__Ready *r = (const Gq__Wire__Ready *)m->hdr;
    size_t len = zmq_msg_size(rid);
    const void *id = zmq_msg_data(rid);
    s_worker_t *old = s_worker_find(self, id, len);
    if (old)
        s_worker_delete(self, old, "sent READY again");
    s_worker_t *w = calloc(1, sizeof *w);
    if (!w || len > S_MAX_RID)
        goto fail;
    memcpy(w->rid, id, len);
    w->rid_len = len;
    snprintf(w->name, sizeof w->name, "%s", r->name);
    w->credits = r->credits;
    w->ops = s_strv_dup(r->ops, r->n_ops);
    w->backends = s_strv_dup(r->backends, r->n_backends);
    w->cost = gq_cost_new();
    if (!w->ops || !w->backends || !w->cost)
        goto fail;
    w->nops = r->n_ops;
    w->nbackends = r->n_backends;
    qsort(w->ops, w->nops, sizeof *w->ops, s_strcmp_p);
    w->last_seen_us = gq_now_us();
    w->ready = (Gq__Wire__Ready *)m->hdr; /* kept whole: its devices go into status replies */
    m->hdr = NULL;
    w->next = self->workers;
    self->workers = w;
    self->nworkers++;
    GQ_INFO("worker %s ready: %u credits, %zu ops, backends %s%s", w->name, w->credits, w->nops,
            w->nbackends ? w->backends[0] : "-", w->nbackends > 1 ? ",..." : "");
    return;
fail:
    if (w) {
        s_strv_free(w->ops, w->ops ? r->n_ops : 0);
        s_strv_free(w->backends, w->backends ? r->n_backends : 0);
        gq_cost_destroy(&w->cost);
        free(w);
    }
    GQ_ERROR("worker %s: out of memory registering it", r->name);
    s_send_disconnect(self, id, len, "broker out of memory");
}

/* Failures that are the worker's, not the job's: they count against routing to it. */
static int s_fail_is_worker(int code)
{
    return code == GQ_EDEVICE_OOM || code == GQ_EDEVICE_LOST || code == GQ_EINTERNAL ||
           code == GQ_ENOMEM || code == GQ_EIO;
}

/* Learns from a finished run member: the per-job compute time, and the worker's health. */
static void s_learn(gq_broker_t *self, s_worker_t *w, const s_job_t *j, const Gq__Wire__Done *d)
{
    int failed = s_fail_is_worker(d->code);
    w->fail += 0.1 * ((double)failed - w->fail);
    if (d->code != GQ_OK)
        return;
    double per_job = (double)d->compute_us / (d->batch > 1 ? d->batch : 1);
    gq_cost_learn(w->cost, j->sig, per_job);
    gq_cost_learn(self->costs, j->sig, per_job);
}

static void s_on_done(gq_broker_t *self, s_worker_t *w, gq_wire_msg_t *m)
{
    const Gq__Wire__Done *d = (const Gq__Wire__Done *)m->hdr;
    s_job_t *j = gq_map_get(self->jobs, d->job_id);
    if (!j || j->worker != w) {
        /* A late answer for a job requeued after this worker was dropped, or cancelled:
         * the job is answered once, by whichever run is current. */
        GQ_DEBUG("worker %s: stale DONE for job %llu dropped", w->name,
                 (unsigned long long)d->job_id);
        return;
    }
    int batched = j->batched;
    s_list_remove(&w->jobs, j);
    s_run_release(j);
    w->jobs_done++;
    s_learn(self, w, j, d);
    gq_sched_completed(self->sched, gq_now_us(), 1);
    if (d->code != GQ_OK && batched > 1 && d->code != GQ_EDEADLINE) {
        /* A stacked run failed: each of its jobs runs alone, so a failure is its own. */
        GQ_DEBUG("job %llu: batch of %d failed (%s); retried alone", (unsigned long long)j->id,
                 batched, d->message);
        j->sj.batch_key = 0;
        j->worker = NULL;
        s_enqueue(self, j, GQ_SCHED_FRONT);
        return;
    }
    if (d->code != GQ_OK) {
        w->jobs_failed++;
        s_job_fail(self, j, d->code, d->message, w->name);
        return;
    }
    Gq__Wire__Result r = GQ__WIRE__RESULT__INIT;
    Gq__Wire__Timing t = GQ__WIRE__TIMING__INIT;
    r.job_id = j->client_job_id;
    r.n_outputs = d->n_outputs;
    r.outputs = d->outputs;
    r.n_backends = d->n_backends;
    r.backends = d->backends;
    r.worker = w->name;
    t.queued_us = j->dispatched_us - j->admitted_us;
    t.compute_us = d->compute_us;
    t.batch = (uint32_t)batched;
    r.timing = &t;
    s_cache_store(self, j, m);
    s_flight_share(self, j, &r, m->payload, m->npayload);
    if (!j->orphan) {
        gq_wire_send(self->front, j->client, j->client_len, GQ_CMD_RESULT, &r.base, m->payload,
                     m->npayload);
        m->npayload = 0;
        self->done++;
    }
    s_job_free(self, j);
}

/* Keeps the latest heartbeat that carries fallback counters (they only grow). */
static void s_on_heartbeat(s_worker_t *w, gq_wire_msg_t *m)
{
    Gq__Wire__Heartbeat *h = (Gq__Wire__Heartbeat *)m->hdr;
    if (!h || !h->n_fallbacks)
        return;
    if (w->beat)
        protobuf_c_message_free_unpacked(&w->beat->base, NULL);
    w->beat = h;
    m->hdr = NULL;
}

static void s_handle_backend(gq_broker_t *self)
{
    for (int n = 0; n < S_DRAIN_BATCH; n++) {
        zmq_msg_t rid;
        gq_wire_msg_t m;
        char err[GQ_ERRLEN];
        gq_status rc =
            gq_wire_recv(self->back, ZMQ_DONTWAIT, &rid, &m, &self->cfg.limits, err, sizeof err);
        if (rc == GQ_EAGAIN || rc == GQ_ECLOSED || rc == GQ_EIO) {
            zmq_msg_close(&rid);
            return;
        }
        s_worker_t *w = s_worker_find(self, zmq_msg_data(&rid), zmq_msg_size(&rid));
        if (w)
            w->last_seen_us = gq_now_us();
        if (rc != GQ_OK) {
            /* A worker that sends garbage may hold jobs it will never answer: drop it, its
             * jobs go back to the queue, and it re-registers fresh after DISCONNECT. */
            self->malformed++;
            GQ_WARN("worker %s: malformed message: %s", w ? w->name : "(unregistered)", err);
            if (w)
                s_worker_delete(self, w, "malformed message");
            s_send_disconnect(self, zmq_msg_data(&rid), zmq_msg_size(&rid), err);
            zmq_msg_close(&rid);
            continue;
        }
        if (m.cmd == GQ_CMD_READY) {
            s_on_ready(self, &rid, &m);
        } else if (!w) {
            if (m.cmd != GQ_CMD_DISCONNECT)
                s_send_disconnect(self, zmq_msg_data(&rid), zmq_msg_size(&rid),
                                  "not registered: send READY");
        } else if (m.cmd == GQ_CMD_DONE) {
            s_on_done(self, w, &m);
        } else if (m.cmd == GQ_CMD_DISCONNECT) {
            s_worker_delete(self, w, "worker disconnected");
        } else if (m.cmd == GQ_CMD_HEARTBEAT) {
            s_on_heartbeat(w, &m);
        } else {
            self->malformed++;
            GQ_WARN("worker %s: %s not accepted on the worker endpoint", w->name,
                    gq_wire_cmd_name(m.cmd));
        }
        gq_wire_msg_close(&m);
        zmq_msg_close(&rid);
    }
}

/* ---- clients ---- */

/* Validates every stage against the op table, chaining shapes through the pipeline, so
 * that a bad job fails here, named, and never reaches a worker. */
static gq_status s_admit_check(const Gq__Wire__Submit *s, const gq_wire_msg_t *m, gq_args_t *args,
                               char *err, size_t errlen)
{
    gq_tdesc_t bufs[2][GQ_MAX_OUTPUTS];
    const gq_tdesc_t *in = m->desc;
    int nin = m->npayload;
    for (size_t k = 0; k < s->n_stages; k++) {
        const Gq__Wire__Stage *st = s->stages[k];
        const gq_op_spec_t *op = gq_op_find(st->op);
        if (!op) {
            gq_errf(err, errlen, "unknown op '%s' (see `gpuq ops`)", st->op);
            return GQ_EUNKNOWN_OP;
        }
        gq_param_t params[GQ_MAX_PARAMS];
        int np = gq_wire_stage_params(st, params, GQ_MAX_PARAMS);
        gq_status rc = gq_op_resolve(op, params, np, &args[k], err, errlen);
        if (rc)
            return rc;
        gq_tdesc_t *out = bufs[k & 1];
        int nout = 0;
        if ((rc = gq_op_infer(&args[k], in, nin, out, &nout, err, errlen)))
            return rc;
        in = out;
        nin = nout;
    }
    return GQ_OK;
}

/* Cache admission: the key of a cacheable job (policy use or refresh; *keyed says whether
 * there is one), and the answer to a hit in the memory or disk tier (returns 1). */
static int s_cache_admit(gq_broker_t *self, const uint8_t *rid, size_t rid_len,
                         const Gq__Wire__Submit *s, gq_wire_msg_t *m, const gq_args_t *args,
                         gq_cache_key_t *key, int *keyed)
{
    *keyed = 0;
    if (!self->cache)
        return 0;
    gq_cache_stats_t *c = gq_cache_counters(self->cache);
    if (s->cache_policy == GQ__WIRE__CACHE_POLICY__CACHE_BYPASS) {
        c->bypassed++;
        return 0;
    }
    if (!gq_cache_cacheable(args, (int)s->n_stages)) {
        c->uncacheable++;
        return 0;
    }
    gq_cache_input_t in[GQ_WIRE_MAX_PAYLOAD];
    for (int i = 0; i < m->npayload; i++) {
        in[i].desc = m->desc[i];
        in[i].data = zmq_msg_data(&m->payload[i]);
        in[i].nbytes = zmq_msg_size(&m->payload[i]);
    }
    if (gq_cache_key(args, (int)s->n_stages, NULL, 0, in, m->npayload, key) != GQ_OK)
        return 0;
    *keyed = 1;
    if (s->cache_policy == GQ__WIRE__CACHE_POLICY__CACHE_REFRESH) {
        c->refreshed++;
        return 0;
    }
    gq_cache_val_t *val;
    int tier;
    if (gq_cache_get(self->cache, key, &val, &tier) != GQ_CACHE_HIT)
        return 0;
    s_send_val(self, rid, rid_len, s->job_id, val, tier);
    gq_cache_val_unref(&val);
    return 1;
}

/* After admission, a keyed job waits on an identical job in flight (returns 1), or leads a
 * new flight: parked for an asynchronous lookup when a Redis tier is up (returns 1), else
 * the caller queues it (0). */
static int s_cache_route(gq_broker_t *self, s_job_t *j)
{
    s_flight_t *f = s_flight_find(self, &j->key);
    if (f) {
        j->flight = f;
        s_list_push(&f->waiters, j, 0);
        return 1;
    }
    s_flight_lead(self, j);
    if (j->flight && j->policy == GQ__WIRE__CACHE_POLICY__CACHE_USE &&
        gq_cache_get_async(self->cache, &j->key) == GQ_CACHE_PENDING) {
        j->lookup = 1;
        s_list_push(&self->parked, j, 0);
        return 1;
    }
    return 0;
}

/* Per-job compute estimate on w: its own measure, else the cluster's for the signature,
 * else the cluster's mean (an unmeasured worker is tried as if average). */
static double s_cost_est(const gq_broker_t *self, const s_worker_t *w, uint64_t sig)
{
    double c = w ? gq_cost_get(w->cost, sig) : 0;
    if (c <= 0)
        c = gq_cost_get(self->costs, sig);
    if (c <= 0)
        c = gq_cost_mean(self->costs);
    return c > 0 ? c : S_COST_GUESS_US;
}

/* The batch rule for a job whose first op is op: a configured one, else the default. */
static gq_sched_batch_t s_batch_rule(const gq_broker_t *self, const char *op)
{
    for (int i = 0; i < self->cfg.nbatch_rules; i++)
        if (!strcmp(self->cfg.batch_rules[i].op, op))
            return self->cfg.batch_rules[i].batch;
    return self->cfg.batch;
}

/* Scheduler fields of an admitted job: class, deadline, client, cost signature and, when its
 * ops stack (GQ_OPF_BATCHABLE, checked through the shape rules), its batch key and rule. */
static void s_sched_fill(gq_broker_t *self, s_job_t *j, const gq_args_t *args, int nstages,
                         const gq_wire_msg_t *m)
{
    gq_cache_input_t in[GQ_WIRE_MAX_PAYLOAD];
    gq_cache_key_t k;
    j->sj.cls = j->submit->priority < S_NCLASSES ? (int)j->submit->priority : S_NCLASSES - 1;
    j->sj.deadline_us = j->deadline_us;
    j->sj.client = s_client_key(j->client, j->client_len, 0);
    for (int i = 0; i < m->npayload; i++) {
        in[i].desc = m->desc[i];
        in[i].data = NULL;
        in[i].nbytes = 0; /* dtypes and shapes, not bytes: a signature */
        j->in_bytes += zmq_msg_size((zmq_msg_t *)&m->payload[i]);
    }
    if (gq_cache_key(args, nstages, NULL, 0, NULL, 0, &k) == GQ_OK)
        j->sig = gq_cost_sig(k.lo ^ k.hi, j->in_bytes);
    gq_sched_batch_t rule = s_batch_rule(self, args[0].op->name);
    if (rule.max < 2 || !gq_batch_ok(args, nstages, m->desc, m->npayload) ||
        gq_cache_key(args, nstages, NULL, 0, in, m->npayload, &k) != GQ_OK)
        return;
    uint64_t cap = j->in_bytes ? self->cfg.batch_bytes / j->in_bytes : rule.max;
    /* A run is not preempted: an urgent job may wait for it to end. Batches stop where the
     * measured per-job cost times the batch passes batch_run_us: batching pays back the
     * fixed per-run overhead, which a few ms of compute already dwarfs. */
    if (self->cfg.batch_run_us) {
        double per_job = s_cost_est(self, NULL, j->sig);
        uint64_t by_time = (uint64_t)((double)self->cfg.batch_run_us / per_job);
        cap = by_time < cap ? by_time : cap;
    }
    if (cap < 2)
        return;
    if (rule.max > cap)
        rule.max = (uint32_t)cap;
    if (rule.max > GQ_WIRE_MAX_BATCH)
        rule.max = GQ_WIRE_MAX_BATCH;
    j->sj.batch = rule;
    j->sj.batch_key = (k.lo ^ k.hi) ? (k.lo ^ k.hi) : 1;
}

/* With --admit-by-cost: refuses (returns 1, answered) a job that cannot meet its deadline:
 * the work queued ahead of it (same or higher class) spread over the cluster's credits, plus
 * its own measured cost. */
static int s_admit_by_cost(gq_broker_t *self, const s_job_t *j, const uint8_t *rid, size_t len)
{
    if (!self->cfg.admit_by_cost || !j->deadline_us)
        return 0;
    gq_sched_stats_t st;
    gq_sched_stats(self->sched, &st);
    size_t ahead = 0;
    for (int c = 0; c <= j->sj.cls; c++)
        ahead += st.queued[c];
    uint64_t credits = 0, backlog = 0;
    for (const s_worker_t *w = self->workers; w; w = w->next) {
        credits += w->credits;
        backlog += w->backlog_us;
    }
    if (!credits)
        return 0; /* no worker yet: nothing to estimate with */
    double mean = gq_cost_mean(self->costs) > 0 ? gq_cost_mean(self->costs) : S_COST_GUESS_US;
    double wait = ((double)ahead * mean + (double)backlog) / (double)credits;
    double run = s_cost_est(self, NULL, j->sig);
    double budget = (double)(j->deadline_us - j->admitted_us);
    if (wait + run <= budget)
        return 0;
    char err[GQ_ERRLEN];
    gq_errf(err, sizeof err,
            "cannot meet its %u ms deadline: about %.1f ms queued ahead and %.1f ms to run "
            "(--admit-by-cost)",
            j->submit->timeout_ms, wait / 1000.0, run / 1000.0);
    s_send_error(self, rid, len, j->client_job_id, GQ_EDEADLINE, err, 0, NULL);
    self->failed++;
    self->refused_cost++;
    return 1;
}

/* Refuses (returns 1, answered) a job its class or client has no room for. */
static int s_admit_room(gq_broker_t *self, const s_job_t *j, const uint8_t *rid, size_t len)
{
    static const char *const why[] = {"", "the queue is full", "its class's queue is full",
                                      "this client's share of its class is full",
                                      "out of memory"};
    uint32_t retry = 0;
    gq_sched_refusal_t r = gq_sched_room(self->sched, &j->sj, &retry);
    if (r == GQ_SCHED_OK)
        return 0;
    char err[GQ_ERRLEN];
    gq_errf(err, sizeof err, "%s (%zu queued); retry after %u ms", why[r],
            gq_sched_len(self->sched), retry);
    s_send_error(self, rid, len, j->client_job_id, GQ_EEXHAUSTED, err, retry, NULL);
    self->failed++;
    return 1;
}

static void s_on_submit(gq_broker_t *self, zmq_msg_t *rid, gq_wire_msg_t *m)
{
    Gq__Wire__Submit *s = (Gq__Wire__Submit *)m->hdr;
    const void *id = zmq_msg_data(rid);
    size_t idlen = zmq_msg_size(rid);
    char err[GQ_ERRLEN];
    gq_args_t args[GQ_WIRE_MAX_STAGES];
    gq_status rc = s_admit_check(s, m, args, err, sizeof err);
    if (rc) {
        s_send_error(self, id, idlen, s->job_id, rc, err, 0, NULL);
        self->failed++;
        return;
    }
    gq_cache_key_t key;
    int keyed;
    if (s_cache_admit(self, id, idlen, s, m, args, &key, &keyed))
        return;
    s_job_t *j = calloc(1, sizeof *j);
    if (!j || idlen > S_MAX_RID) {
        free(j);
        s_send_error(self, id, idlen, s->job_id, GQ_ENOMEM, "broker out of memory", 0, NULL);
        self->failed++;
        return;
    }
    j->client_job_id = s->job_id;
    memcpy(j->client, id, idlen);
    j->client_len = idlen;
    j->admitted_us = gq_now_us();
    if (s->timeout_ms)
        j->deadline_us = j->admitted_us + (uint64_t)s->timeout_ms * 1000u;
    j->submit = s;
    s_sched_fill(self, j, args, (int)s->n_stages, m);
    if (s_admit_room(self, j, id, idlen) || s_admit_by_cost(self, j, id, idlen)) {
        j->submit = NULL; /* still m's */
        free(j);
        return;
    }
    j->id = ++self->next_id;
    m->hdr = NULL;
    j->ninputs = m->npayload;
    for (int i = 0; i < m->npayload; i++) {
        zmq_msg_init(&j->inputs[i]);
        zmq_msg_move(&j->inputs[i], &m->payload[i]);
        j->desc[i] = m->desc[i];
    }
    if (gq_map_put(self->jobs, j->id, j)) {
        s_send_error(self, id, idlen, s->job_id, GQ_ENOMEM, "broker out of memory", 0, NULL);
        self->failed++;
        s_job_free(self, j);
        return;
    }
    gq_map_put(self->by_client, s_client_key(j->client, j->client_len, j->client_job_id), j);
    if (keyed) {
        j->keyed = 1;
        j->key = key;
        j->policy = s->cache_policy;
        j->ttl_ms = s->cache_ttl_ms;
        if (s_cache_route(self, j))
            return;
    }
    s_enqueue(self, j, 0);
}

static void s_on_cancel(gq_broker_t *self, zmq_msg_t *rid, uint64_t client_job_id)
{
    const uint8_t *id = zmq_msg_data(rid);
    size_t len = zmq_msg_size(rid);
    s_job_t *j = gq_map_get(self->by_client, s_client_key(id, len, client_job_id));
    if (!j || j->client_len != len || memcmp(j->client, id, len) ||
        j->client_job_id != client_job_id)
        return;
    if (j->flight && j->flight->leader == j && j->flight->waiters.len) {
        /* Identical jobs wait on this run: answer this client, keep the run for them. */
        s_send_error(self, j->client, j->client_len, j->client_job_id, GQ_ECANCELLED,
                     "cancelled by the client", 0, NULL);
        self->failed++;
        j->orphan = 1;
        gq_map_take(self->by_client, s_client_key(id, len, client_job_id));
        return;
    }
    if (j->flight && j->flight->leader != j) {
        s_flight_detach(self, j); /* a waiter: in no queue */
    } else if (j->lookup) {
        s_list_remove(&self->parked, j);
        j->lookup = 0;
    } else if (j->worker) {
        s_list_remove(&j->worker->jobs, j);
        /* The worker may still compute it; its DONE then finds no job and is dropped.
         * The credit comes back now (with its run's last job), so the worker can briefly
         * hold one job over. */
        s_run_release(j);
        j->worker = NULL;
    } else {
        gq_sched_remove(self->sched, &j->sj);
    }
    s_job_fail(self, j, GQ_ECANCELLED, "cancelled by the client", NULL);
}

static void s_send_status(gq_broker_t *self, zmq_msg_t *rid, uint64_t request_id)
{
    Gq__Wire__StatusReply r = GQ__WIRE__STATUS_REPLY__INIT;
    uint64_t queued[S_NCLASSES];
    uint64_t inflight = 0;
    gq_sched_stats_t st;
    gq_sched_stats(self->sched, &st);
    for (int c = 0; c < S_NCLASSES; c++)
        queued[c] = st.queued[c];
    Gq__Wire__WorkerInfo *infos = calloc((size_t)self->nworkers + 1, sizeof *infos);
    Gq__Wire__WorkerInfo **ptrs = calloc((size_t)self->nworkers + 1, sizeof *ptrs);
    if (!infos || !ptrs) {
        free(infos);
        free(ptrs);
        return;
    }
    uint64_t now = gq_now_us();
    size_t n = 0;
    for (s_worker_t *w = self->workers; w; w = w->next, n++) {
        gq__wire__worker_info__init(&infos[n]);
        infos[n].name = w->name;
        infos[n].credits = w->credits;
        infos[n].inflight = w->inflight;
        infos[n].backends = w->backends;
        infos[n].n_backends = w->nbackends;
        infos[n].jobs_done = w->jobs_done;
        infos[n].ms_since_seen = (uint32_t)((now - w->last_seen_us) / 1000u);
        infos[n].n_devices = w->ready->n_devices;
        infos[n].devices = w->ready->devices;
        ptrs[n] = &infos[n];
        inflight += w->inflight;
    }
    r.request_id = request_id;
    r.workers = ptrs;
    r.n_workers = n;
    r.queued = queued;
    r.n_queued = S_NCLASSES;
    r.inflight = inflight;
    r.jobs_done = self->done;
    r.jobs_failed = self->failed;
    r.jobs_requeued = self->requeued;
    r.malformed = self->malformed;
    gq_wire_send(self->front, zmq_msg_data(rid), zmq_msg_size(rid), GQ_CMD_STATUS_REPLY, &r.base,
                 NULL, 0);
    free(infos);
    free(ptrs);
}

static const char *const s_classes[S_NCLASSES] = {"realtime", "interactive", "batch",
                                                  "background"};

/* Appends to buf at off (bounded); returns the new offset. */
static size_t s_cat(char *buf, size_t len, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static size_t s_cat(char *buf, size_t len, size_t off, const char *fmt, ...)
{
    if (off >= len)
        return off;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + off, len - off, fmt, ap);
    va_end(ap);
    return n > 0 && (size_t)n < len - off ? off + (size_t)n : len - 1;
}

/* The scheduler's gauges and counters in Prometheus text. */
static size_t s_sched_prom(gq_broker_t *self, char *buf, size_t len, size_t off)
{
    gq_sched_stats_t st;
    gq_sched_stats(self->sched, &st);
    uint64_t now = gq_now_us();
    for (int c = 0; c < S_NCLASSES; c++)
        off = s_cat(buf, len, off, "gpuq_jobs_queued{class=\"%s\"} %zu\n", s_classes[c],
                    st.queued[c]);
    off = s_cat(buf, len, off,
                "# HELP gpuq_queue_oldest_seconds Wait of the oldest queued job, per class.\n"
                "# TYPE gpuq_queue_oldest_seconds gauge\n");
    for (int c = 0; c < S_NCLASSES; c++)
        off = s_cat(buf, len, off, "gpuq_queue_oldest_seconds{class=\"%s\"} %.6f\n", s_classes[c],
                    st.oldest_us[c] ? (double)(now - st.oldest_us[c]) / 1e6 : 0.0);
    off = s_cat(buf, len, off,
                "# HELP gpuq_jobs_refused_total Jobs refused for room (RESOURCE_EXHAUSTED).\n"
                "# TYPE gpuq_jobs_refused_total counter\n");
    for (int c = 0; c < S_NCLASSES; c++)
        off = s_cat(buf, len, off, "gpuq_jobs_refused_total{class=\"%s\"} %llu\n", s_classes[c],
                    (unsigned long long)st.refused[c]);
    return s_cat(buf, len, off,
                 "# HELP gpuq_jobs_refused_cost_total Jobs refused as unable to meet their "
                 "deadline (--admit-by-cost).\n"
                 "# TYPE gpuq_jobs_refused_cost_total counter\ngpuq_jobs_refused_cost_total %llu\n"
                 "# HELP gpuq_jobs_promoted_total Jobs moved up a class by aging.\n"
                 "# TYPE gpuq_jobs_promoted_total counter\ngpuq_jobs_promoted_total %llu\n"
                 "# HELP gpuq_batches_total Runs of two or more stacked jobs.\n"
                 "# TYPE gpuq_batches_total counter\ngpuq_batches_total %llu\n"
                 "# HELP gpuq_batched_jobs_total Jobs that ran stacked in a batch.\n"
                 "# TYPE gpuq_batched_jobs_total counter\ngpuq_batched_jobs_total %llu\n",
                 (unsigned long long)self->refused_cost, (unsigned long long)st.promoted,
                 (unsigned long long)st.batches, (unsigned long long)st.batched_jobs);
}

/* Every worker's fallback counters, from its last heartbeat. */
static size_t s_fallbacks_prom(gq_broker_t *self, char *buf, size_t len, size_t off)
{
    off = s_cat(buf, len, off,
                "# HELP gpuq_worker_fallbacks_total Stages of op a worker's backend was passed "
                "over for (declined or device failure) and a lower backend ran.\n"
                "# TYPE gpuq_worker_fallbacks_total counter\n");
    for (const s_worker_t *w = self->workers; w; w = w->next)
        for (size_t i = 0; w->beat && i < w->beat->n_fallbacks; i++)
            off = s_cat(buf, len, off,
                        "gpuq_worker_fallbacks_total{worker=\"%s\",op=\"%s\",backend=\"%s\"} "
                        "%llu\n",
                        w->name, w->beat->fallbacks[i]->op, w->beat->fallbacks[i]->backend,
                        (unsigned long long)w->beat->fallbacks[i]->count);
    return off;
}

static const char *s_job_op(const s_job_t *j)
{
    return j->submit && j->submit->n_stages ? j->submit->stages[0]->op : "?";
}

static size_t s_job_line(const gq_broker_t *self, const s_job_t *j, uint64_t now, char *buf,
                         size_t len, size_t off)
{
    if (j->worker)
        return s_cat(buf, len, off, "  %-8llu running   %-12s %-18s on %s for %.1f ms%s\n",
                     (unsigned long long)j->id, s_classes[j->sj.cur_cls], s_job_op(j),
                     j->worker->name, (double)(now - j->dispatched_us) / 1000.0,
                     j->batched > 1 ? " (batched)" : "");
    const char *state = j->lookup ? "lookup" : j->sj.heap_pos >= 0 ? "queued" : "waiting";
    off = s_cat(buf, len, off, "  %-8llu %-9s %-12s %-18s for %.1f ms", (unsigned long long)j->id,
                state, s_classes[j->sj.cur_cls], s_job_op(j),
                (double)(now - j->admitted_us) / 1000.0);
    if (j->sj.heap_pos >= 0)
        off = s_cat(buf, len, off, ", position %zu", gq_sched_rank(self->sched, &j->sj));
    if (j->deadline_us)
        off = s_cat(buf, len, off, ", deadline in %.1f ms",
                    j->deadline_us > now ? (double)(j->deadline_us - now) / 1000.0 : 0.0);
    return s_cat(buf, len, off, "\n");
}

typedef struct {
    const gq_broker_t *self;
    char *buf;
    size_t len, off;
    uint64_t now;
} s_listing_t;

static void s_list_job_cb(uint64_t key, void *value, void *arg)
{
    (void)key;
    s_listing_t *l = arg;
    l->off = s_job_line(l->self, value, l->now, l->buf, l->len, l->off);
}

/* `gpuqctl queues`: per class, the cluster's workers with what they learned, and with
 * verbose every job admitted and not yet answered. */
static void s_queues_text(gq_broker_t *self, int verbose, char *buf, size_t len)
{
    gq_sched_stats_t st;
    gq_sched_stats(self->sched, &st);
    uint64_t now = gq_now_us();
    size_t off = s_cat(buf, len, 0, "%-12s %8s %8s %10s %8s\n", "class", "queued", "clients",
                       "oldest_ms", "refused");
    for (int c = 0; c < S_NCLASSES; c++)
        off = s_cat(buf, len, off, "%-12s %8zu %8zu %10.1f %8llu\n", s_classes[c], st.queued[c],
                    st.clients[c],
                    st.oldest_us[c] ? (double)(now - st.oldest_us[c]) / 1000.0 : 0.0,
                    (unsigned long long)st.refused[c]);
    off = s_cat(buf, len, off,
                "batch groups queued: %zu (held to fill: %zu); batches run: %llu holding %llu "
                "jobs; promoted by aging: %llu; completion rate %.1f jobs/s\n",
                st.groups, st.held, (unsigned long long)st.batches,
                (unsigned long long)st.batched_jobs, (unsigned long long)st.promoted,
                st.completion_rate);
    off = s_cat(buf, len, off, "%-24s %7s %8s %10s %8s %8s %7s\n", "worker", "credits",
                "inflight", "backlog_ms", "done", "failed", "health");
    for (const s_worker_t *w = self->workers; w; w = w->next)
        off = s_cat(buf, len, off, "%-24s %7u %8u %10.1f %8llu %8llu %6.0f%%\n", w->name,
                    w->credits, w->inflight, (double)w->backlog_us / 1000.0,
                    (unsigned long long)w->jobs_done, (unsigned long long)w->jobs_failed,
                    100.0 * (1.0 - w->fail));
    if (verbose) {
        s_listing_t l = {self, buf, len, off, now};
        l.off = s_cat(buf, len, l.off, "jobs (broker id, state, class, op):\n");
        gq_map_each(self->jobs, s_list_job_cb, &l);
    }
}

/* `gpuq status JOB`: the state of one job by broker id; returns GQ_ENOTFOUND-like codes. */
static int s_job_text(gq_broker_t *self, uint64_t id, char *buf, size_t len)
{
    const s_job_t *j = gq_map_get(self->jobs, id);
    if (!j) {
        snprintf(buf, len,
                 "job %llu: not known (answered already, or never admitted by this broker)\n",
                 (unsigned long long)id);
        return GQ_EINVAL;
    }
    s_job_line(self, j, gq_now_us(), buf, len, 0);
    return GQ_OK;
}

/* Prometheus text of the broker's counters and the cache's; malloc'd, NULL when out of
 * memory. */
static char *s_metrics(gq_broker_t *self, const gq_cache_stats_t *cs)
{
    char *buf = malloc(S_METRICS_MAX);
    if (!buf)
        return NULL;
    uint64_t inflight = 0, waiting = 0;
    for (s_worker_t *w = self->workers; w; w = w->next)
        inflight += w->inflight;
    int n = snprintf(
        buf, S_METRICS_MAX,
        "# HELP gpuq_jobs_done_total Jobs answered with results (cache hits included).\n"
        "# TYPE gpuq_jobs_done_total counter\ngpuq_jobs_done_total %llu\n"
        "# HELP gpuq_jobs_failed_total Jobs answered with errors.\n"
        "# TYPE gpuq_jobs_failed_total counter\ngpuq_jobs_failed_total %llu\n"
        "# HELP gpuq_jobs_requeued_total Jobs taken back from lost workers.\n"
        "# TYPE gpuq_jobs_requeued_total counter\ngpuq_jobs_requeued_total %llu\n"
        "# HELP gpuq_malformed_messages_total Messages refused as malformed.\n"
        "# TYPE gpuq_malformed_messages_total counter\ngpuq_malformed_messages_total %llu\n"
        "# HELP gpuq_workers Registered workers.\n# TYPE gpuq_workers gauge\ngpuq_workers %d\n"
        "# HELP gpuq_jobs_inflight Jobs on workers.\n"
        "# TYPE gpuq_jobs_inflight gauge\ngpuq_jobs_inflight %llu\n"
        "# HELP gpuq_jobs_queued Jobs waiting for a worker, per priority class.\n"
        "# TYPE gpuq_jobs_queued gauge\n",
        (unsigned long long)self->done, (unsigned long long)self->failed,
        (unsigned long long)self->requeued, (unsigned long long)self->malformed, self->nworkers,
        (unsigned long long)inflight);
    size_t off = n > 0 && (size_t)n < S_METRICS_MAX ? (size_t)n : 0;
    off = s_sched_prom(self, buf, S_METRICS_MAX, off);
    off = s_fallbacks_prom(self, buf, S_METRICS_MAX, off);
    waiting = gq_map_size(self->jobs);
    n = snprintf(buf + off, S_METRICS_MAX - off,
                 "# HELP gpuq_jobs_admitted Jobs admitted and not yet answered.\n"
                 "# TYPE gpuq_jobs_admitted gauge\ngpuq_jobs_admitted %llu\n",
                 (unsigned long long)waiting);
    off += n > 0 && (size_t)n < S_METRICS_MAX - off ? (size_t)n : 0;
    gq_cache_prom(cs, buf, S_METRICS_MAX, off);
    return buf;
}

/* Admin requests (gpuqctl): cache stats, cache clear, metrics. The op was checked by the
 * wire codec. */
static void s_on_admin(gq_broker_t *self, zmq_msg_t *rid, const Gq__Wire__AdminRequest *q)
{
    Gq__Wire__AdminReply r = GQ__WIRE__ADMIN_REPLY__INIT;
    gq_cache_stats_t st;
    gq_cache_wire_t cw;
    char *text = NULL;
    memset(&st, 0, sizeof st);
    r.request_id = q->request_id;
    r.message = "";
    r.text = "";
    if (self->cache && q->op == GQ__WIRE__ADMIN_OP__ADMIN_CACHE_CLEAR) {
        gq_cache_clear(self->cache);
        GQ_INFO("cache cleared by an admin request");
    } else if (!self->cache && q->op == GQ__WIRE__ADMIN_OP__ADMIN_CACHE_CLEAR) {
        r.message = "the broker runs without a cache (--no-cache): nothing to clear";
    }
    if (self->cache)
        gq_cache_stats(self->cache, &st);
    int textual = q->op == GQ__WIRE__ADMIN_OP__ADMIN_METRICS ||
                  q->op == GQ__WIRE__ADMIN_OP__ADMIN_QUEUES || q->op == GQ__WIRE__ADMIN_OP__ADMIN_JOB;
    if (textual && !(text = q->op == GQ__WIRE__ADMIN_OP__ADMIN_METRICS ? s_metrics(self, &st)
                                                                      : malloc(S_METRICS_MAX))) {
        r.code = GQ_ENOMEM;
        r.message = "broker out of memory rendering the reply";
    } else if (textual) {
        if (q->op == GQ__WIRE__ADMIN_OP__ADMIN_QUEUES)
            s_queues_text(self, q->verbose, text, S_METRICS_MAX);
        else if (q->op == GQ__WIRE__ADMIN_OP__ADMIN_JOB)
            r.code = s_job_text(self, q->job_id, text, S_METRICS_MAX);
        r.text = text;
        if (r.code)
            r.message = text;
    } else {
        gq_cache_stats_to_wire(&st, &cw);
        r.cache = &cw.cs;
    }
    gq_wire_send(self->front, zmq_msg_data(rid), zmq_msg_size(rid), GQ_CMD_ADMIN_REPLY, &r.base,
                 NULL, 0);
    free(text);
}

static void s_handle_frontend(gq_broker_t *self, int draining)
{
    for (int n = 0; n < S_DRAIN_BATCH; n++) {
        zmq_msg_t rid;
        gq_wire_msg_t m;
        char err[GQ_ERRLEN];
        gq_status rc =
            gq_wire_recv(self->front, ZMQ_DONTWAIT, &rid, &m, &self->cfg.limits, err, sizeof err);
        if (rc == GQ_EAGAIN || rc == GQ_ECLOSED || rc == GQ_EIO) {
            zmq_msg_close(&rid);
            return;
        }
        const void *id = zmq_msg_data(&rid);
        size_t idlen = zmq_msg_size(&rid);
        if (rc != GQ_OK) {
            self->malformed++;
            GQ_DEBUG("client: malformed message: %s", err);
            s_send_error(self, id, idlen, m.job_id, rc, err, 0, NULL);
        } else if (m.cmd == GQ_CMD_SUBMIT) {
            if (draining)
                s_send_error(self, id, idlen, m.job_id, GQ_ECLOSED, "broker shutting down", 0,
                             NULL);
            else
                s_on_submit(self, &rid, &m);
        } else if (m.cmd == GQ_CMD_CANCEL) {
            s_on_cancel(self, &rid, m.job_id);
        } else if (m.cmd == GQ_CMD_STATUS) {
            s_send_status(self, &rid, ((const Gq__Wire__StatusRequest *)m.hdr)->request_id);
        } else if (m.cmd == GQ_CMD_ADMIN) {
            s_on_admin(self, &rid, (const Gq__Wire__AdminRequest *)m.hdr);
        } else {
            self->malformed++;
            gq_errf(err, sizeof err, "%s not accepted on the client endpoint",
                    gq_wire_cmd_name(m.cmd));
            s_send_error(self, id, idlen, m.job_id, GQ_EPROTO, err, 0, NULL);
        }
        gq_wire_msg_close(&m);
        zmq_msg_close(&rid);
    }
}

/* ---- dispatch ---- */

static int s_worker_can_run(const s_worker_t *w, const s_job_t *j)
{
    for (size_t k = 0; k < j->submit->n_stages; k++)
        if (!s_worker_has_op(w, j->submit->stages[k]->op))
            return 0;
    return 1;
}

/* Whether w may take one more run of class cls: batch and background jobs leave the last
 * reserve_credits credits to realtime and interactive ones, so an urgent job never waits
 * behind a worker full of bulk work (it still waits for a running one: no preemption). */
static int s_has_room(const gq_broker_t *self, const s_worker_t *w, int cls)
{
    uint32_t reserve = (uint32_t)self->cfg.reserve_credits;
    uint32_t usable = cls >= 2 && w->credits > reserve ? w->credits - reserve : w->credits;
    return w->inflight < usable;
}

static int s_any_free(const gq_broker_t *self)
{
    for (const s_worker_t *w = self->workers; w; w = w->next)
        if (w->inflight < w->credits)
            return 1;
    return 0;
}

static int s_runnable(const gq_sched_job_t *sj, void *arg)
{
    const gq_broker_t *self = arg;
    const s_job_t *j = S_JOB(sj);
    for (const s_worker_t *w = self->workers; w; w = w->next)
        if (s_has_room(self, w, sj->cur_cls) && s_worker_can_run(w, j))
            return 1;
    return 0;
}

/* The free worker that would finish these n jobs soonest: its backlog spread over its
 * credits plus its learned cost, inflated by its failure rate. */
static s_worker_t *s_route(gq_broker_t *self, const s_job_t *j, int n)
{
    s_worker_t *best = NULL;
    double best_t = 0;
    for (s_worker_t *w = self->workers; w; w = w->next) {
        if (!s_has_room(self, w, j->sj.cur_cls) || !s_worker_can_run(w, j))
            continue;
        double t = (double)w->backlog_us / w->credits + s_cost_est(self, w, j->sig) * n;
        t *= 1.0 + 4.0 * w->fail;
        if (!best || t < best_t) {
            best = w;
            best_t = t;
        }
    }
    return best;
}

static void s_fill_job(Gq__Wire__Job *job, const s_job_t *j, uint64_t now)
{
    job->job_id = j->id;
    job->priority = (Gq__Wire__Priority)j->sj.cur_cls;
    job->n_stages = j->submit->n_stages;
    job->stages = j->submit->stages;
    job->n_inputs = j->submit->n_inputs;
    job->inputs = j->submit->inputs;
    if (j->deadline_us) {
        uint64_t left_ms = (j->deadline_us - now + 999u) / 1000u;
        job->timeout_ms = left_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)left_ms;
    }
}

/* Puts jobs on worker w as one run (one credit). */
static int s_start_run(gq_broker_t *self, s_job_t **js, int n, s_worker_t *w, uint64_t now)
{
    s_run_t *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    r->worker = w;
    r->left = n;
    r->cost_us = (uint64_t)(s_cost_est(self, w, js[0]->sig) * n);
    w->backlog_us += r->cost_us;
    w->inflight++;
    for (int i = 0; i < n; i++) {
        js[i]->run = r;
        js[i]->worker = w;
        js[i]->dispatched_us = now;
        js[i]->batched = n;
        s_list_push(&w->jobs, js[i], 0);
    }
    return 0;
}

static void s_send_job(gq_broker_t *self, s_job_t *j, s_worker_t *w, uint64_t now)
{
    Gq__Wire__Job job = GQ__WIRE__JOB__INIT;
    zmq_msg_t payload[GQ_WIRE_MAX_PAYLOAD];
    if (s_start_run(self, &j, 1, w, now)) {
        s_enqueue(self, j, GQ_SCHED_FRONT);
        return;
    }
    s_fill_job(&job, j, now);
    /* Copies share the buffers (refcounted): the job keeps its inputs for a requeue. */
    for (int i = 0; i < j->ninputs; i++) {
        zmq_msg_init(&payload[i]);
        zmq_msg_copy(&payload[i], &j->inputs[i]);
    }
    if (gq_wire_send(self->back, w->rid, w->rid_len, GQ_CMD_JOB, &job.base, payload, j->ninputs) !=
        GQ_OK)
        GQ_WARN("worker %s: sending job %llu failed: %s", w->name, (unsigned long long)j->id,
                zmq_strerror(errno));
}

static void s_free_buf(void *data, void *hint)
{
    (void)hint;
    free(data);
}

/* Input i of n jobs stacked along a new leading axis (one copy: the jobs keep their own
 * frames for a requeue). */
static int s_stack_input(s_job_t **js, int n, int i, zmq_msg_t *msg, Gq__Wire__TensorDesc *td,
                         int64_t *shape)
{
    size_t row = zmq_msg_size(&js[0]->inputs[i]);
    char *buf = malloc(row * (size_t)n + 1);
    gq_tdesc_t d;
    if (!buf || gq_batch_stack_desc(&js[0]->desc[i], n, &d)) {
        free(buf);
        return -1;
    }
    for (int m = 0; m < n; m++)
        memcpy(buf + (size_t)m * row, zmq_msg_data(&js[m]->inputs[i]), row);
    zmq_msg_init_data(msg, buf, row * (size_t)n, s_free_buf, NULL);
    gq_wire_desc_fill(td, shape, &d);
    return 0;
}

/* Sends n compatible jobs to w as one job with stacked inputs; the worker answers each. */
static void s_send_batch(gq_broker_t *self, s_job_t **js, int n, s_worker_t *w, uint64_t now)
{
    Gq__Wire__Job job = GQ__WIRE__JOB__INIT;
    Gq__Wire__TensorDesc tds[GQ_WIRE_MAX_PAYLOAD], *tdp[GQ_WIRE_MAX_PAYLOAD];
    int64_t shapes[GQ_WIRE_MAX_PAYLOAD][GQ_MAX_DIMS];
    zmq_msg_t payload[GQ_WIRE_MAX_PAYLOAD];
    uint64_t ids[GQ_WIRE_MAX_BATCH];
    int nin = js[0]->ninputs, ok = 0;
    while (ok < nin && !s_stack_input(js, n, ok, &payload[ok], &tds[ok], shapes[ok]))
        tdp[ok] = &tds[ok], ok++;
    if (ok < nin || s_start_run(self, js, n, w, now)) {
        for (int i = 0; i < ok; i++)
            zmq_msg_close(&payload[i]);
        GQ_WARN("out of memory stacking a batch of %d; its jobs go back to the queue", n);
        for (int m = 0; m < n; m++)
            s_enqueue(self, js[m], GQ_SCHED_FRONT);
        return;
    }
    s_fill_job(&job, js[0], now);
    for (int m = 0; m < n; m++) {
        ids[m] = js[m]->id;
        if (js[m]->deadline_us && js[m]->deadline_us < js[0]->deadline_us) {
            uint64_t left_ms = (js[m]->deadline_us - now + 999u) / 1000u;
            job.timeout_ms = (uint32_t)(left_ms < job.timeout_ms ? left_ms : job.timeout_ms);
        }
    }
    job.inputs = tdp;
    job.n_inputs = (size_t)nin;
    job.batch_ids = ids;
    job.n_batch_ids = (size_t)n;
    if (gq_wire_send(self->back, w->rid, w->rid_len, GQ_CMD_JOB, &job.base, payload, nin) != GQ_OK)
        GQ_WARN("worker %s: sending a batch of %d failed: %s", w->name, n, zmq_strerror(errno));
}

/* Fails queued jobs whose deadline has passed: a job past its deadline is never started. */
static void s_expire(gq_broker_t *self, uint64_t now)
{
    gq_sched_job_t *due[64];
    int n;
    while ((n = gq_sched_expired(self->sched, now, due, 64)) > 0)
        for (int i = 0; i < n; i++) {
            s_job_t *j = S_JOB(due[i]);
            char msg[GQ_ERRLEN];
            gq_errf(msg, sizeof msg, "deadline exceeded after %llu ms in the queue",
                    (unsigned long long)((now - j->admitted_us) / 1000u));
            s_job_fail(self, j, GQ_EDEADLINE, msg, NULL);
        }
}

static void s_dispatch(gq_broker_t *self)
{
    uint64_t now = gq_now_us();
    s_expire(self, now);
    gq_sched_job_t *out[GQ_WIRE_MAX_BATCH];
    s_job_t *js[GQ_WIRE_MAX_BATCH];
    while (s_any_free(self)) {
        int n = gq_sched_next(self->sched, now, s_runnable, self, out, GQ_WIRE_MAX_BATCH,
                              S_MAX_SKIP);
        if (!n)
            return;
        for (int i = 0; i < n; i++)
            js[i] = S_JOB(out[i]);
        s_worker_t *w = s_route(self, js[0], n);
        if (n == 1)
            s_send_job(self, js[0], w, now);
        else
            s_send_batch(self, js, n, w, now);
    }
}

/* ---- heartbeats, purge ---- */

static void s_tick(gq_broker_t *self, uint64_t now)
{
    uint64_t dead_after = (uint64_t)self->cfg.heartbeat_ms * 1000u * (uint64_t)self->cfg.liveness;
    s_worker_t *next;
    for (s_worker_t *w = self->workers; w; w = next) {
        next = w->next;
        if (now - w->last_seen_us > dead_after) {
            char why[96];
            gq_errf(why, sizeof why, "silent for %llu ms",
                    (unsigned long long)((now - w->last_seen_us) / 1000u));
            s_worker_delete(self, w, why);
            continue;
        }
        gq_wire_send(self->back, w->rid, w->rid_len, GQ_CMD_HEARTBEAT, NULL, NULL, 0);
    }
    s_expire(self, now);
}

/* ---- life cycle ---- */

static void *s_bind(gq_broker_t *self, const char *ep, char *resolved, size_t rlen, char *err,
                    size_t errlen)
{
    void *s = zmq_socket(self->ctx, ZMQ_ROUTER);
    if (!s) {
        gq_errf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        return NULL;
    }
    int linger = 1000, hwm = 0, mandatory = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof mandatory);
    if (zmq_bind(s, ep) != 0) {
        gq_errf(err, errlen, "cannot bind %s: %s", ep, zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    size_t len = rlen;
    if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, resolved, &len) != 0)
        snprintf(resolved, rlen, "%s", ep);
    return s;
}

gq_broker_t *gq_broker_new(const gq_broker_config_t *cfg, char *err, size_t errlen)
{
    gq_broker_t *self = calloc(1, sizeof *self);
    if (!self) {
        gq_errf(err, errlen, "out of memory");
        return NULL;
    }
    self->cfg = *cfg;
    if (self->cfg.heartbeat_ms <= 0)
        self->cfg.heartbeat_ms = 1000;
    if (self->cfg.liveness <= 0)
        self->cfg.liveness = 3;
    if (!self->cfg.sched.max_queue)
        self->cfg.sched.max_queue = 100000;
    self->stop_pipe[0] = self->stop_pipe[1] = -1;
    self->ctx = cfg->zmq_ctx;
    if (!self->ctx) {
        self->ctx = zmq_ctx_new();
        self->own_ctx = 1;
    }
    self->jobs = gq_map_new();
    self->by_client = gq_map_new();
    self->flights = gq_map_new();
    self->sched = gq_sched_new(&self->cfg.sched);
    self->costs = gq_cost_new();
    if (!self->ctx || !self->jobs || !self->by_client || !self->flights || !self->sched ||
        !self->costs ||
        pipe2(self->stop_pipe, O_CLOEXEC)) {
        gq_errf(err, errlen, "out of resources creating the broker");
        goto fail;
    }
    fcntl(self->stop_pipe[1], F_SETFL, O_NONBLOCK);
    if (err && errlen)
        err[0] = 0;
    self->cache = gq_cache_new(&cfg->cache, err, errlen);
    if (!self->cache && err && errlen && err[0])
        goto fail;
    if (!(self->front =
              s_bind(self, cfg->frontend, self->front_ep, sizeof self->front_ep, err, errlen)))
        goto fail;
    if (!(self->back =
              s_bind(self, cfg->backend, self->back_ep, sizeof self->back_ep, err, errlen)))
        goto fail;
    return self;
fail:
    gq_broker_destroy(&self);
    return NULL;
}

const char *gq_broker_frontend(const gq_broker_t *self)
{
    return self->front_ep;
}

const char *gq_broker_backend(const gq_broker_t *self)
{
    return self->back_ep;
}

void gq_broker_stop(gq_broker_t *self)
{
    char c = 1;
    ssize_t rc = write(self->stop_pipe[1], &c, 1);
    (void)rc;
}

/* On stop: refuse new jobs, answer the queued ones, give jobs in flight drain_ms to
 * finish, then answer the rest and tell workers to go. */
static void s_fail_queued(gq_broker_t *self)
{
    while (self->parked.head) {
        s_job_t *j = self->parked.head;
        s_list_remove(&self->parked, j);
        j->lookup = 0;
        s_job_fail(self, j, GQ_ECLOSED, "broker shutting down before the job ran", NULL);
    }
    gq_sched_job_t *out[64];
    int n;
    while ((n = gq_sched_drain(self->sched, out, 64)) > 0)
        for (int i = 0; i < n; i++)
            s_job_fail(self, S_JOB(out[i]), GQ_ECLOSED, "broker shutting down before the job ran",
                       NULL);
}

static void s_shutdown(gq_broker_t *self)
{
    s_fail_queued(self);
    uint64_t until = gq_now_us() + (uint64_t)self->cfg.drain_ms * 1000u;
    for (;;) {
        size_t inflight = 0;
        for (s_worker_t *w = self->workers; w; w = w->next)
            inflight += w->jobs.len;
        uint64_t now = gq_now_us();
        if (!inflight || now >= until)
            break;
        zmq_pollitem_t items[] = {{self->back, 0, ZMQ_POLLIN, 0}, {self->front, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, (long)((until - now) / 1000u) + 1) < 0 && errno != EINTR)
            break;
        if (items[0].revents & ZMQ_POLLIN)
            s_handle_backend(self);
        if (items[1].revents & ZMQ_POLLIN)
            s_handle_frontend(self, 1);
    }
    while (self->workers) {
        s_worker_t *w = self->workers;
        while (w->jobs.head) {
            s_job_t *j = w->jobs.head;
            s_list_remove(&w->jobs, j);
            s_job_fail(self, j, GQ_ECLOSED, "broker shut down while the job ran", w->name);
        }
        s_send_disconnect(self, w->rid, w->rid_len, "broker shutting down");
        s_worker_delete(self, w, "broker shutting down");
    }
    s_fail_queued(self); /* waiters promoted by failures while draining */
}

int gq_broker_run(gq_broker_t *self)
{
    uint64_t interval = (uint64_t)self->cfg.heartbeat_ms * 1000u;
    uint64_t next_tick = gq_now_us() + interval;
    GQ_INFO("serving clients on %s, workers on %s", self->front_ep, self->back_ep);
    int cache_fd = gq_cache_fd(self->cache);
    for (;;) {
        zmq_pollitem_t items[] = {{self->back, 0, ZMQ_POLLIN, 0},
                                  {self->front, 0, ZMQ_POLLIN, 0},
                                  {NULL, self->stop_pipe[0], ZMQ_POLLIN, 0},
                                  {NULL, cache_fd, ZMQ_POLLIN, 0}};
        uint64_t now = gq_now_us();
        long timeout = next_tick > now ? (long)((next_tick - now) / 1000u) + 1 : 0;
        if (zmq_poll(items, cache_fd >= 0 ? 4 : 3, timeout) < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ETERM)
                break;
            GQ_ERROR("zmq_poll: %s", zmq_strerror(errno));
            return GQ_EIO;
        }
        if (items[2].revents & ZMQ_POLLIN)
            break;
        if (items[0].revents & ZMQ_POLLIN)
            s_handle_backend(self);
        if (items[1].revents & ZMQ_POLLIN)
            s_handle_frontend(self, 0);
        if (items[3].revents & ZMQ_POLLIN)
            gq_cache_drain(self->cache, s_on_lookup, self);
        s_dispatch(self);
        now = gq_now_us();
        if (now >= next_tick) {
            s_tick(self, now);
            next_tick = now + interval;
        }
    }
    GQ_INFO("shutting down");
    s_shutdown(self);
    return GQ_OK;
}

static void s_free_job_cb(uint64_t key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    s_job_release(value);
}

static void s_free_flight_cb(uint64_t key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    free(value);
}

void gq_broker_destroy(gq_broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gq_broker_t *self = *self_p;
    while (self->workers) {
        s_worker_t *w = self->workers;
        self->workers = w->next;
        s_strv_free(w->ops, w->nops);
        s_strv_free(w->backends, w->nbackends);
        gq_cost_destroy(&w->cost);
        if (w->ready)
            protobuf_c_message_free_unpacked(&w->ready->base, NULL);
        if (w->beat)
            protobuf_c_message_free_unpacked(&w->beat->base, NULL);
        free(w);
    }
    if (self->jobs) {
        gq_map_each(self->jobs, s_free_job_cb, NULL);
        gq_map_destroy(&self->jobs);
    }
    gq_map_destroy(&self->by_client);
    if (self->flights) {
        gq_map_each(self->flights, s_free_flight_cb, NULL);
        gq_map_destroy(&self->flights);
    }
    gq_cache_destroy(&self->cache);
    gq_sched_destroy(&self->sched);
    gq_cost_destroy(&self->costs);
    if (self->front)
        zmq_close(self->front);
    if (self->back)
        zmq_close(self->back);
    if (self->own_ctx && self->ctx)
        zmq_ctx_term(self->ctx);
    for (int i = 0; i < 2; i++)
        if (self->stop_pipe[i] >= 0)
            close(self->stop_pipe[i]);
    free(self);
    *self_p = NULL;
}
