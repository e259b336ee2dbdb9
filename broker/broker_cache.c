/* Identical jobs in flight (one runs, the others wait for its answer) and answers from the
 * result cache: admission by key, asynchronous lookups, storing results (docs/cache.md). */
#include "broker_int.h"

#include <stdlib.h>
#include <string.h>
#include "map.h"
#include "util.h"

static uint64_t s_flight_mkey(const gq_cache_key_t *k)
{
    return k->lo ? k->lo : 1;
}

static gq_bflight_t *s_flight_find(gq_broker_t *self, const gq_cache_key_t *key)
{
    gq_bflight_t *f = gq_map_get(self->flights, s_flight_mkey(key));
    return f && gq_cache_key_equal(&f->key, key) ? f : NULL;
}

/* Makes j the leader of a new flight. When that fails (out of memory, or another key with
 * the same low 64 bits in flight) j runs alone, j->flight stays NULL. */
static void s_flight_lead(gq_broker_t *self, gq_bjob_t *j)
{
    if (gq_map_get(self->flights, s_flight_mkey(&j->key)))
        return;
    gq_bflight_t *f = calloc(1, sizeof *f);
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

static void s_flight_end(gq_broker_t *self, gq_bflight_t *f)
{
    gq_map_take(self->flights, s_flight_mkey(&f->key));
    free(f);
}

/* Takes j out of its flight: a waiter leaves the list; a leader ends a flight nobody else
 * waits on (a leader with waiters goes through gq_b_flight_leader_failed or gq_b_flight_share). */
void gq_b_flight_detach(gq_broker_t *self, gq_bjob_t *j)
{
    gq_bflight_t *f = j->flight;
    if (!f)
        return;
    j->flight = NULL;
    if (f->leader != j) {
        gq_blist_remove(&f->waiters, j);
        return;
    }
    f->leader = NULL;
    if (f->waiters.head) {
        /* Not reached by the callers; keep the waiters served rather than stranded. */
        gq_bjob_t *w = f->waiters.head;
        gq_blist_remove(&f->waiters, w);
        f->leader = w;
        gq_b_enqueue(self, w, GQ_SCHED_FRONT);
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
void gq_b_flight_leader_failed(gq_broker_t *self, gq_bjob_t *j, int code, const char *msg,
                               const char *worker)
{
    gq_bflight_t *f = j->flight;
    j->flight = NULL;
    f->leader = NULL;
    if (f->waiters.head && !s_fail_is_shared(code)) {
        gq_bjob_t *w = f->waiters.head;
        gq_blist_remove(&f->waiters, w);
        f->leader = w;
        GQ_DEBUG("job %llu failed (%s); job %llu runs for its %zu waiters",
                 (unsigned long long)j->id, gq_status_name(code), (unsigned long long)w->id,
                 f->waiters.len);
        gq_b_enqueue(self, w, GQ_SCHED_FRONT);
        return;
    }
    while (f->waiters.head) {
        gq_bjob_t *w = f->waiters.head;
        gq_blist_remove(&f->waiters, w);
        w->flight = NULL;
        gq_b_job_fail(self, w, code, msg, worker);
    }
    s_flight_end(self, f);
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
                gq_b_send_error(self, rid, rid_len, client_job_id, GQ_ENOMEM,
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
void gq_b_cache_store(gq_broker_t *self, const gq_bjob_t *j, gq_wire_msg_t *m)
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
void gq_b_flight_share(gq_broker_t *self, gq_bjob_t *j, Gq__Wire__Result *r, zmq_msg_t *payload,
                       int n)
{
    gq_bflight_t *f = j->flight;
    if (!f || f->leader != j)
        return;
    j->flight = NULL;
    uint64_t id = r->job_id;
    r->cache_tier = GQ__WIRE__CACHE_TIER__TIER_SHARED;
    while (f->waiters.head) {
        gq_bjob_t *w = f->waiters.head;
        gq_blist_remove(&f->waiters, w);
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
        gq_b_job_free(self, w);
    }
    r->job_id = id;
    r->cache_tier = GQ__WIRE__CACHE_TIER__TIER_NONE;
    s_flight_end(self, f);
}

/* An asynchronous lookup finished: a hit answers the parked leader and its waiters, a miss
 * queues the leader. Answers for jobs gone meanwhile (cancelled) are dropped. */
void gq_b_on_lookup(void *arg, const gq_cache_key_t *key, gq_cache_val_t *val, int tier)
{
    gq_broker_t *self = arg;
    gq_bflight_t *f = s_flight_find(self, key);
    gq_bjob_t *j = f ? f->leader : NULL;
    if (!j || !j->lookup) {
        gq_cache_val_unref(&val);
        return;
    }
    gq_blist_remove(&self->parked, j);
    j->lookup = 0;
    if (!val) {
        gq_b_enqueue(self, j, 0);
        return;
    }
    j->flight = NULL;
    while (f->waiters.head) {
        gq_bjob_t *w = f->waiters.head;
        gq_blist_remove(&f->waiters, w);
        w->flight = NULL;
        s_send_val(self, w->client, w->client_len, w->client_job_id, val, tier);
        gq_b_job_free(self, w);
    }
    if (!j->orphan)
        s_send_val(self, j->client, j->client_len, j->client_job_id, val, tier);
    s_flight_end(self, f);
    gq_b_job_free(self, j);
    gq_cache_val_unref(&val);
}

int gq_b_cache_admit(gq_broker_t *self, const uint8_t *rid, size_t rid_len,
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
int gq_b_cache_route(gq_broker_t *self, gq_bjob_t *j)
{
    gq_bflight_t *f = s_flight_find(self, &j->key);
    if (f) {
        j->flight = f;
        gq_blist_push(&f->waiters, j, 0);
        return 1;
    }
    s_flight_lead(self, j);
    if (j->flight && j->policy == GQ__WIRE__CACHE_POLICY__CACHE_USE &&
        gq_cache_get_async(self->cache, &j->key) == GQ_CACHE_PENDING) {
        j->lookup = 1;
        gq_blist_push(&self->parked, j, 0);
        return 1;
    }
    return 0;
}

/* Per-job compute estimate on w: its own measure, else the cluster's for the signature,
 * else the cluster's mean (an unmeasured worker is tried as if average). */
