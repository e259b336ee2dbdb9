#include "broker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cache_report.h"
#include "map.h"
#include "optable.h"
#include "util.h"

#define S_NCLASSES 4
#define S_MAX_RID 255
#define S_DRAIN_BATCH 256
#define S_RETRY_AFTER_MS 100
#define S_MAX_SKIP 256 /* queued jobs looked past per class and dispatch round */
#define S_METRICS_MAX (64u << 10)

typedef struct s_worker s_worker_t;
typedef struct s_flight s_flight_t;

typedef struct s_job {
    uint64_t id;
    uint64_t client_job_id;
    uint8_t client[S_MAX_RID];
    size_t client_len;
    int prio;
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
    s_list_t queue[S_NCLASSES];
    gq_map_t *jobs;      /* id -> job, queued and in flight */
    gq_map_t *by_client; /* hash(client rid, client job id) -> job, for cancel */
    s_worker_t *workers;
    int nworkers;
    uint64_t next_id;
    uint64_t done, failed, requeued, malformed;
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
    cfg->max_queue = 100000;
    cfg->max_requeues = 3;
    cfg->drain_ms = 5000;
    gq_wire_limits_default(&cfg->limits);
    /* No tier unless configured: a broker answers every job from a worker until its
     * operator gives the cache a budget (gpuq-broker --cache-mem-mb; local mode does). */
    gq_cache_config_init(&cfg->cache);
    cfg->cache.mem_bytes = 0;
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
    for (int i = 0; i < j->ninputs; i++)
        zmq_msg_close(&j->inputs[i]);
    if (j->submit)
        protobuf_c_message_free_unpacked(&j->submit->base, NULL);
    free(j);
}

/* ---- identical jobs in flight ---- */

static void s_job_fail(gq_broker_t *self, s_job_t *j, int code, const char *msg,
                       const char *worker);

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
        s_list_push(&self->queue[w->prio], w, 1);
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
        s_list_push(&self->queue[w->prio], w, 1);
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

static void s_job_free(gq_broker_t *self, s_job_t *j)
{
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
        s_list_push(&self->queue[j->prio], j, 0);
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
static void s_requeue(gq_broker_t *self, s_job_t *j, const char *why)
{
    const char *wname = j->worker ? j->worker->name : "";
    j->worker = NULL;
    if (++j->requeues > self->cfg.max_requeues) {
        char msg[GQ_ERRLEN];
        gq_errf(msg, sizeof msg, "job lost its worker %d times (last: %s, %s); not retried",
                j->requeues, wname, why);
        s_job_fail(self, j, GQ_EWORKER_LOST, msg, wname);
        return;
    }
    self->requeued++;
    s_list_push(&self->queue[j->prio], j, 1);
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
    free(w);
}

static void s_send_disconnect(gq_broker_t *self, const void *rid, size_t len, const char *why)
{
    Gq__Wire__Disconnect d = GQ__WIRE__DISCONNECT__INIT;
    d.reason = (char *)why;
    gq_wire_send(self->back, rid, len, GQ_CMD_DISCONNECT, &d.base, NULL, 0);
}

static void s_on_ready(gq_broker_t *self, zmq_msg_t *rid, const Gq__Wire__Ready *r)
{
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
    if (!w->ops || !w->backends)
        goto fail;
    w->nops = r->n_ops;
    w->nbackends = r->n_backends;
    qsort(w->ops, w->nops, sizeof *w->ops, s_strcmp_p);
    w->last_seen_us = gq_now_us();
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
        free(w);
    }
    GQ_ERROR("worker %s: out of memory registering it", r->name);
    s_send_disconnect(self, id, len, "broker out of memory");
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
    s_list_remove(&w->jobs, j);
    w->inflight--;
    w->jobs_done++;
    if (d->code != GQ_OK) {
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
            s_on_ready(self, &rid, (const Gq__Wire__Ready *)m.hdr);
        } else if (!w) {
            if (m.cmd != GQ_CMD_DISCONNECT)
                s_send_disconnect(self, zmq_msg_data(&rid), zmq_msg_size(&rid),
                                  "not registered: send READY");
        } else if (m.cmd == GQ_CMD_DONE) {
            s_on_done(self, w, &m);
        } else if (m.cmd == GQ_CMD_DISCONNECT) {
            s_worker_delete(self, w, "worker disconnected");
        } else if (m.cmd != GQ_CMD_HEARTBEAT) {
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
    size_t queued = 0;
    for (int c = 0; c < S_NCLASSES; c++)
        queued += self->queue[c].len;
    if (queued >= self->cfg.max_queue) {
        gq_errf(err, sizeof err, "queue full (%zu jobs); retry after %d ms", queued,
                S_RETRY_AFTER_MS);
        s_send_error(self, id, idlen, s->job_id, GQ_EEXHAUSTED, err, S_RETRY_AFTER_MS, NULL);
        self->failed++;
        return;
    }
    s_job_t *j = calloc(1, sizeof *j);
    if (!j || idlen > S_MAX_RID) {
        free(j);
        s_send_error(self, id, idlen, s->job_id, GQ_ENOMEM, "broker out of memory", 0, NULL);
        self->failed++;
        return;
    }
    j->id = ++self->next_id;
    j->client_job_id = s->job_id;
    memcpy(j->client, id, idlen);
    j->client_len = idlen;
    j->prio = s->priority;
    j->admitted_us = gq_now_us();
    if (s->timeout_ms)
        j->deadline_us = j->admitted_us + (uint64_t)s->timeout_ms * 1000u;
    j->submit = s;
    m->hdr = NULL;
    j->ninputs = m->npayload;
    for (int i = 0; i < m->npayload; i++) {
        zmq_msg_init(&j->inputs[i]);
        zmq_msg_move(&j->inputs[i], &m->payload[i]);
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
    s_list_push(&self->queue[j->prio], j, 0);
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
         * The credit comes back now, so the worker can briefly hold one job over. */
        j->worker->inflight--;
    } else {
        s_list_remove(&self->queue[j->prio], j);
    }
    s_job_fail(self, j, GQ_ECANCELLED, "cancelled by the client", NULL);
}

static void s_send_status(gq_broker_t *self, zmq_msg_t *rid, uint64_t request_id)
{
    Gq__Wire__StatusReply r = GQ__WIRE__STATUS_REPLY__INIT;
    uint64_t queued[S_NCLASSES];
    uint64_t inflight = 0;
    for (int c = 0; c < S_NCLASSES; c++)
        queued[c] = self->queue[c].len;
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

/* Prometheus text of the broker's counters and the cache's; malloc'd, NULL when out of
 * memory. */
static char *s_metrics(gq_broker_t *self, const gq_cache_stats_t *cs)
{
    char *buf = malloc(S_METRICS_MAX);
    if (!buf)
        return NULL;
    static const char *const classes[S_NCLASSES] = {"realtime", "interactive", "batch",
                                                    "background"};
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
    for (int c = 0; c < S_NCLASSES && off < S_METRICS_MAX; c++) {
        n = snprintf(buf + off, S_METRICS_MAX - off, "gpuq_jobs_queued{class=\"%s\"} %zu\n",
                     classes[c], self->queue[c].len);
        off += n > 0 && (size_t)n < S_METRICS_MAX - off ? (size_t)n : 0;
    }
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
    if (q->op == GQ__WIRE__ADMIN_OP__ADMIN_METRICS) {
        if ((text = s_metrics(self, &st))) {
            r.text = text;
        } else {
            r.code = GQ_ENOMEM;
            r.message = "broker out of memory rendering metrics";
        }
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

/* The worker with free credit and the lowest load that has every op of the job. */
static s_worker_t *s_pick_worker(gq_broker_t *self, const s_job_t *j, int *any_free)
{
    s_worker_t *best = NULL;
    uint64_t best_load = UINT64_MAX;
    *any_free = 0;
    for (s_worker_t *w = self->workers; w; w = w->next) {
        if (w->inflight >= w->credits)
            continue;
        *any_free = 1;
        uint64_t load = ((uint64_t)w->inflight << 20) / w->credits;
        if (load < best_load && s_worker_can_run(w, j)) {
            best = w;
            best_load = load;
        }
    }
    return best;
}

static void s_send_job(gq_broker_t *self, s_job_t *j, s_worker_t *w, uint64_t now)
{
    Gq__Wire__Job job = GQ__WIRE__JOB__INIT;
    zmq_msg_t payload[GQ_WIRE_MAX_PAYLOAD];
    job.job_id = j->id;
    job.n_stages = j->submit->n_stages;
    job.stages = j->submit->stages;
    job.n_inputs = j->submit->n_inputs;
    job.inputs = j->submit->inputs;
    if (j->deadline_us) {
        uint64_t left_ms = (j->deadline_us - now + 999u) / 1000u;
        job.timeout_ms = left_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)left_ms;
    }
    /* Copies share the buffers (refcounted): the job keeps its inputs for a requeue. */
    for (int i = 0; i < j->ninputs; i++) {
        zmq_msg_init(&payload[i]);
        zmq_msg_copy(&payload[i], &j->inputs[i]);
    }
    j->worker = w;
    j->dispatched_us = now;
    w->inflight++;
    s_list_push(&w->jobs, j, 0);
    if (gq_wire_send(self->back, w->rid, w->rid_len, GQ_CMD_JOB, &job.base, payload, j->ninputs) !=
        GQ_OK)
        GQ_WARN("worker %s: sending job %llu failed: %s", w->name, (unsigned long long)j->id,
                zmq_strerror(errno));
}

/* Fails a queued job whose deadline has passed; returns 1 if it did. */
static int s_expire_if_due(gq_broker_t *self, int c, s_job_t *j, uint64_t now)
{
    if (!j->deadline_us || now < j->deadline_us)
        return 0;
    char msg[GQ_ERRLEN];
    gq_errf(msg, sizeof msg, "deadline exceeded after %llu ms in the queue",
            (unsigned long long)((now - j->admitted_us) / 1000u));
    s_list_remove(&self->queue[c], j);
    s_job_fail(self, j, GQ_EDEADLINE, msg, NULL);
    return 1;
}

static void s_dispatch(gq_broker_t *self)
{
    uint64_t now = gq_now_us();
    for (int c = 0; c < S_NCLASSES; c++) {
        s_job_t *next;
        int skipped = 0;
        for (s_job_t *j = self->queue[c].head; j; j = next) {
            next = j->next;
            if (s_expire_if_due(self, c, j, now))
                continue;
            int any_free;
            s_worker_t *w = s_pick_worker(self, j, &any_free);
            if (!any_free)
                return;
            /* No free worker has this job's ops; later jobs may fit. The look-ahead is
             * bounded so a deep queue of jobs nobody can run costs no O(queue) per message
             * (the deadline sweep in s_tick still reaches every job). */
            if (!w) {
                if (++skipped >= S_MAX_SKIP)
                    break;
                continue;
            }
            s_list_remove(&self->queue[c], j);
            s_send_job(self, j, w, now);
        }
    }
}

/* ---- heartbeats, purge, deadlines ---- */

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
    for (int c = 0; c < S_NCLASSES; c++) {
        s_job_t *jn;
        for (s_job_t *j = self->queue[c].head; j; j = jn) {
            jn = j->next;
            s_expire_if_due(self, c, j, now);
        }
    }
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
    if (!self->cfg.max_queue)
        self->cfg.max_queue = 100000;
    self->stop_pipe[0] = self->stop_pipe[1] = -1;
    self->ctx = cfg->zmq_ctx;
    if (!self->ctx) {
        self->ctx = zmq_ctx_new();
        self->own_ctx = 1;
    }
    self->jobs = gq_map_new();
    self->by_client = gq_map_new();
    self->flights = gq_map_new();
    if (!self->ctx || !self->jobs || !self->by_client || !self->flights ||
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
    for (int c = 0; c < S_NCLASSES; c++)
        while (self->queue[c].head) {
            s_job_t *j = self->queue[c].head;
            s_list_remove(&self->queue[c], j);
            s_job_fail(self, j, GQ_ECLOSED, "broker shutting down before the job ran", NULL);
        }
}

static void s_shutdown(gq_broker_t *self)
{
    s_fail_queued(self);
    for (int c = 0; c < S_NCLASSES; c++)
        while (self->queue[c].head) {
            s_job_t *j = self->queue[c].head;
            s_list_remove(&self->queue[c], j);
            s_job_fail(self, j, GQ_ECLOSED, "broker shutting down before the job ran", NULL);
        }
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
