#include "broker_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "batch.h"
#include "cache_report.h"
#include "map.h"
#include "util.h"

void gq_blist_push(gq_blist_t *l, gq_bjob_t *j, int front)
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

void gq_blist_remove(gq_blist_t *l, gq_bjob_t *j)
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
    cfg->model_load_us = 50000;
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
            gq_errf(err, errlen, "at most %d preferred sizes, each 1..MAX", GQ_SCHED_MAX_PREFERRED);
            return GQ_EPARAM;
        }
        r->batch.preferred[np++] = (uint32_t)v;
    }
    return GQ_OK;
}

/* ---- answers to clients ---- */

void gq_b_send_error(gq_broker_t *self, const uint8_t *rid, size_t rid_len, uint64_t job_id,
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
static void s_job_release(gq_bjob_t *j)
{
    if (j->run && --j->run->left <= 0)
        free(j->run); /* only at teardown: gq_b_job_free gave the run back already */
    for (int i = 0; i < j->ninputs; i++)
        zmq_msg_close(&j->inputs[i]);
    if (j->submit)
        protobuf_c_message_free_unpacked(&j->submit->base, NULL);
    free(j);
}

/* Queues a job already accepted (never refused for room); out of memory answers it. */
void gq_b_enqueue(gq_broker_t *self, gq_bjob_t *j, unsigned flags)
{
    if (gq_sched_push(self->sched, &j->sj, gq_now_us(), flags | GQ_SCHED_FORCE, NULL))
        gq_b_job_fail(self, j, GQ_ENOMEM, "broker out of memory queueing the job", NULL);
}

static void s_run_release(gq_bjob_t *j);

void gq_b_job_free(gq_broker_t *self, gq_bjob_t *j)
{
    s_run_release(j);
    gq_b_flight_detach(self, j);
    gq_map_take(self->jobs, j->id);
    uint64_t ck = s_client_key(j->client, j->client_len, j->client_job_id);
    if (gq_map_get(self->by_client, ck) == j)
        gq_map_take(self->by_client, ck);
    s_job_release(j);
}

/* Answers a job with a failure and frees it; the job is in no list. */
void gq_b_job_fail(gq_broker_t *self, gq_bjob_t *j, int code, const char *msg, const char *worker)
{
    if (!j->orphan) {
        gq_b_send_error(self, j->client, j->client_len, j->client_job_id, code, msg, 0, worker);
        self->failed++;
    }
    if (j->flight && j->flight->leader == j)
        gq_b_flight_leader_failed(self, j, code, msg, worker);
    gq_b_job_free(self, j);
}

/* ---- workers ---- */

static gq_bworker_t *s_worker_find(gq_broker_t *self, const void *rid, size_t len)
{
    for (gq_bworker_t *w = self->workers; w; w = w->next)
        if (w->rid_len == len && !memcmp(w->rid, rid, len))
            return w;
    return NULL;
}

static int s_strcmp_p(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int gq_b_worker_has_op(const gq_bworker_t *w, const char *op)
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
static void s_run_release(gq_bjob_t *j)
{
    gq_brun_t *r = j->run;
    if (!r)
        return;
    j->run = NULL;
    if (--r->left > 0)
        return;
    gq_bworker_t *w = r->worker;
    w->inflight--;
    w->backlog_us -= r->cost_us < w->backlog_us ? r->cost_us : w->backlog_us;
    free(r);
}

static void s_requeue(gq_broker_t *self, gq_bjob_t *j, const char *why)
{
    const char *wname = j->worker ? j->worker->name : "";
    s_run_release(j);
    j->worker = NULL;
    if (++j->requeues > self->cfg.max_requeues) {
        char msg[GQ_ERRLEN];
        gq_errf(msg, sizeof msg, "job lost its worker %d times (last: %s, %s); not retried",
                j->requeues, wname, why);
        gq_b_job_fail(self, j, GQ_EWORKER_LOST, msg, wname);
        return;
    }
    self->requeued++;
    gq_b_enqueue(self, j, GQ_SCHED_FRONT);
}

/* Frees what a worker owns; it is in no list. */
static void s_worker_free(gq_bworker_t *w)
{
    s_strv_free(w->ops, w->nops);
    s_strv_free(w->backends, w->nbackends);
    gq_cost_destroy(&w->cost);
    if (w->ready)
        protobuf_c_message_free_unpacked(&w->ready->base, NULL);
    if (w->beat)
        protobuf_c_message_free_unpacked(&w->beat->base, NULL);
    free(w->models);
    free(w);
}

static void s_worker_delete(gq_broker_t *self, gq_bworker_t *w, const char *why)
{
    GQ_INFO("worker %s removed (%s); requeueing %zu jobs", w->name, why, w->jobs.len);
    while (w->jobs.head) {
        gq_bjob_t *j = w->jobs.head;
        gq_blist_remove(&w->jobs, j);
        s_requeue(self, j, why);
    }
    for (gq_bworker_t **pp = &self->workers; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    self->nworkers--;
    s_worker_free(w);
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
    gq_bworker_t *old = s_worker_find(self, id, len);
    if (old)
        s_worker_delete(self, old, "sent READY again");
    gq_bworker_t *w = calloc(1, sizeof *w);
    if (!w || len > GQ_B_MAX_RID)
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
static void s_learn(gq_broker_t *self, gq_bworker_t *w, const gq_bjob_t *j, const Gq__Wire__Done *d)
{
    int failed = s_fail_is_worker(d->code);
    w->fail += 0.1 * ((double)failed - w->fail);
    if (d->code != GQ_OK)
        return;
    double per_job = (double)d->compute_us / (d->batch > 1 ? d->batch : 1);
    gq_cost_learn(w->cost, j->sig, per_job);
    gq_cost_learn(self->costs, j->sig, per_job);
}

static void s_on_done(gq_broker_t *self, gq_bworker_t *w, gq_wire_msg_t *m)
{
    const Gq__Wire__Done *d = (const Gq__Wire__Done *)m->hdr;
    gq_bjob_t *j = gq_map_get(self->jobs, d->job_id);
    if (!j || j->worker != w) {
        /* A late answer for a job requeued after this worker was dropped, or cancelled:
         * the job is answered once, by whichever run is current. */
        GQ_DEBUG("worker %s: stale DONE for job %llu dropped", w->name,
                 (unsigned long long)d->job_id);
        return;
    }
    int batched = j->batched;
    gq_blist_remove(&w->jobs, j);
    s_run_release(j);
    w->jobs_done++;
    s_learn(self, w, j, d);
    gq_sched_completed(self->sched, gq_now_us(), 1);
    if (d->code != GQ_OK && batched > 1 && d->code != GQ_EDEADLINE && j->batch_concat &&
        gq_map_put(self->no_concat, gq_hash_bytes(j->model, strlen(j->model), 0), self) == 0)
        GQ_INFO("model %s: a batch did not split (%s); its jobs run alone from now on", j->model,
                d->message);
    /* A batch carries its earliest member's deadline: the others may still have time. */
    int own_deadline_passed = j->deadline_us && gq_now_us() >= j->deadline_us;
    if (d->code != GQ_OK && batched > 1 && !own_deadline_passed) {
        /* A stacked run failed: each of its jobs runs alone, so a failure is its own. */
        GQ_DEBUG("job %llu: batch of %d failed (%s); retried alone", (unsigned long long)j->id,
                 batched, d->message);
        j->sj.batch_key = 0;
        j->worker = NULL;
        gq_b_enqueue(self, j, GQ_SCHED_FRONT);
        return;
    }
    if (d->code != GQ_OK) {
        w->jobs_failed++;
        gq_b_job_fail(self, j, d->code, d->message, w->name);
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
    gq_b_cache_store(self, j, m);
    gq_b_flight_share(self, j, &r, m->payload, m->npayload);
    if (!j->orphan) {
        gq_wire_send(self->front, j->client, j->client_len, GQ_CMD_RESULT, &r.base, m->payload,
                     m->npayload);
        m->npayload = 0;
        self->done++;
    }
    gq_b_job_free(self, j);
}

/* Keeps the latest heartbeat that carries fallback counters (they only grow). */
static void s_on_heartbeat(gq_bworker_t *w, gq_wire_msg_t *m)
{
    Gq__Wire__Heartbeat *h = (Gq__Wire__Heartbeat *)m->hdr;
    if (!h || !h->n_fallbacks)
        return;
    if (w->beat)
        protobuf_c_message_free_unpacked(&w->beat->base, NULL);
    w->beat = h;
    m->hdr = NULL;
}

/* Remembers that w holds a model (it asked for it), for model affinity in routing. */
static void s_worker_add_model(gq_bworker_t *w, const char *digest)
{
    for (int i = 0; i < w->nmodels; i++)
        if (!strcmp(w->models[i], digest))
            return;
    char(*m)[33] = realloc(w->models, (size_t)(w->nmodels + 1) * sizeof *m);
    if (!m)
        return; /* affinity is a preference: without it the job still runs */
    w->models = m;
    snprintf(w->models[w->nmodels++], sizeof w->models[0], "%s", digest);
}

/* A worker asks for a model's bytes: sent without copying (refcounted frame). */
static void s_on_model_get(gq_broker_t *self, gq_bworker_t *w, const Gq__Wire__ModelGet *g)
{
    Gq__Wire__ModelData d = GQ__WIRE__MODEL_DATA__INIT;
    Gq__Wire__TensorDesc td, *tdp = &td;
    int64_t shape[1];
    zmq_msg_t frame;
    char msg[GQ_ERRLEN];
    const gq_model_entry_t *e = gq_models_get(self->models, g->digest);
    d.digest = g->digest;
    d.message = "";
    if (!e) {
        gq_errf(msg, sizeof msg, "model %s is not in the broker's store", g->digest);
        d.code = GQ_ENOMODEL;
        d.message = msg;
        gq_wire_send(self->back, w->rid, w->rid_len, GQ_CMD_MODEL, &d.base, NULL, 0);
        return;
    }
    gq_tdesc_t desc = {.dtype = GQ_U8, .ndim = 1, .shape = {(int64_t)e->size}};
    gq_wire_desc_fill(&td, shape, &desc);
    d.data = &tdp;
    d.n_data = 1;
    zmq_msg_init(&frame);
    zmq_msg_copy(&frame, (zmq_msg_t *)&e->bytes);
    gq_models_fetched(self->models, g->digest);
    s_worker_add_model(w, g->digest);
    GQ_DEBUG("worker %s fetches model %s", w->name, g->digest);
    gq_wire_send(self->back, w->rid, w->rid_len, GQ_CMD_MODEL, &d.base, &frame, 1);
}

static void s_handle_backend(gq_broker_t *self)
{
    for (int n = 0; n < GQ_B_DRAIN_BATCH; n++) {
        zmq_msg_t rid;
        gq_wire_msg_t m;
        char err[GQ_ERRLEN];
        gq_status rc =
            gq_wire_recv(self->back, ZMQ_DONTWAIT, &rid, &m, &self->cfg.limits, err, sizeof err);
        if (rc == GQ_EAGAIN || rc == GQ_ECLOSED || rc == GQ_EIO) {
            zmq_msg_close(&rid);
            return;
        }
        gq_bworker_t *w = s_worker_find(self, zmq_msg_data(&rid), zmq_msg_size(&rid));
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
        } else if (m.cmd == GQ_CMD_MODEL_GET) {
            s_on_model_get(self, w, (const Gq__Wire__ModelGet *)m.hdr);
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
/* A hosted stage (onnx.run) ends the pipeline, and its model must be in the store and
 * take these inputs. */
static gq_status s_admit_hosted(gq_broker_t *self, const gq_args_t *a, size_t k, size_t nstages,
                                const gq_tdesc_t *in, int nin, char *err, size_t errlen)
{
    if (k + 1 != nstages) {
        gq_errf(err, errlen,
                "%s must be the last stage of a pipeline (its outputs are known only after it "
                "runs); it is stage %zu of %zu",
                a->op->name, k + 1, nstages);
        return GQ_EPARAM;
    }
    const char *digest = gq_args_str(a, "model");
    const gq_model_entry_t *e = gq_models_get(self->models, digest);
    if (!e) {
        gq_errf(err, errlen,
                "%s: model %s is not in the broker's store (`gpuq model put FILE` first)",
                a->op->name, digest);
        return GQ_ENOMODEL;
    }
    return gq_onnx_sig_check(&e->sig, in, nin, err, errlen);
}

static gq_status s_admit_check(gq_broker_t *self, const Gq__Wire__Submit *s, const gq_wire_msg_t *m,
                               gq_args_t *args, char *err, size_t errlen)
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
        if ((op->flags & GQ_OPF_HOSTED) &&
            (rc = s_admit_hosted(self, &args[k], k, s->n_stages, in, nin, err, errlen)))
            return rc;
        in = out;
        nin = nout;
    }
    return GQ_OK;
}

/* Cache admission: the key of a cacheable job (policy use or refresh; *keyed says whether
 * there is one), and the answer to a hit in the memory or disk tier (returns 1). */
double gq_b_cost_est(const gq_broker_t *self, const gq_bworker_t *w, uint64_t sig)
{
    double c = w ? gq_cost_get(w->cost, sig) : 0;
    if (c <= 0)
        c = gq_cost_get(self->costs, sig);
    if (c <= 0)
        c = gq_cost_mean(self->costs);
    return c > 0 ? c : GQ_B_COST_GUESS_US;
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
/* A job that ends in onnx.run of a model whose every input has a symbolic dim 0 (a batch
 * dim), after stages that all stack (GQ_OPF_BATCHABLE, or none): such jobs batch by
 * concatenating their inputs along dim 0. The worker runs the stages before the model on
 * the inputs seen as stacked ([k * d0, ...] is [k, d0, ...]), gives the model their
 * outputs with the two leading dims merged (the concatenation of the jobs' own), and
 * splits the model's outputs back along dim 0. */
static int s_model_batches(gq_broker_t *self, const gq_args_t *args, int nstages,
                           const gq_tdesc_t *in, int nin)
{
    if (!(args[nstages - 1].op->flags & GQ_OPF_HOSTED))
        return 0;
    const gq_model_entry_t *e =
        gq_models_get(self->models, gq_args_str(&args[nstages - 1], "model"));
    gq_tdesc_t mid[GQ_MAX_OUTPUTS];
    int nmid = 0;
    if (!e || gq_map_get(self->no_concat, gq_hash_bytes(e->digest, strlen(e->digest), 0)))
        return 0;
    for (int i = 0; i < nin; i++)
        if (in[i].ndim < 1)
            return 0;
    if (!gq_batch_prefix(args, nstages - 1, in, nin, mid, &nmid) || e->sig.ninputs != nmid)
        return 0;
    for (int i = 0; i < nmid; i++)
        if (e->sig.in[i].ndim < 1 || e->sig.in[i].shape[0] != -1 || mid[i].ndim < 1)
            return 0;
    return 1;
}

static void s_sched_fill(gq_broker_t *self, gq_bjob_t *j, const gq_args_t *args, int nstages,
                         const gq_wire_msg_t *m)
{
    gq_cache_input_t in[GQ_WIRE_MAX_PAYLOAD];
    gq_cache_key_t k;
    j->sj.cls = j->submit->priority < GQ_B_NCLASSES ? (int)j->submit->priority : GQ_B_NCLASSES - 1;
    j->sj.deadline_us = j->deadline_us;
    j->sj.client = s_client_key(j->client, j->client_len, 0);
    if (args[nstages - 1].op->flags & GQ_OPF_HOSTED)
        snprintf(j->model, sizeof j->model, "%s", gq_args_str(&args[nstages - 1], "model"));
    for (int i = 0; i < m->npayload; i++) {
        in[i].desc = m->desc[i];
        in[i].data = NULL;
        in[i].nbytes = 0; /* dtypes and shapes, not bytes: a signature */
        j->in_bytes += zmq_msg_size((zmq_msg_t *)&m->payload[i]);
    }
    if (gq_cache_key(args, nstages, NULL, 0, NULL, 0, &k) == GQ_OK)
        j->sig = gq_cost_sig(k.lo ^ k.hi, j->in_bytes);
    gq_sched_batch_t rule = s_batch_rule(self, args[0].op->name);
    if (rule.max < 2)
        return; /* batching off for this op: no shape rules run twice for nothing */
    int stack = gq_batch_ok(args, nstages, m->desc, m->npayload);
    j->batch_concat = !stack && s_model_batches(self, args, nstages, m->desc, m->npayload);
    if (!(stack || j->batch_concat) ||
        gq_cache_key(args, nstages, NULL, 0, in, m->npayload, &k) != GQ_OK)
        return;
    uint64_t cap = j->in_bytes ? self->cfg.batch_bytes / j->in_bytes : rule.max;
    /* A run is not preempted: an urgent job may wait for it to end. Batches stop where the
     * measured per-job cost times the batch passes batch_run_us: batching pays back the
     * fixed per-run overhead, which a few ms of compute already dwarfs. */
    if (self->cfg.batch_run_us) {
        double per_job = gq_b_cost_est(self, NULL, j->sig);
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
static int s_admit_by_cost(gq_broker_t *self, const gq_bjob_t *j, const uint8_t *rid, size_t len)
{
    if (!self->cfg.admit_by_cost || !j->deadline_us)
        return 0;
    size_t ahead = 0;
    for (int c = 0; c <= j->sj.cls; c++)
        ahead += gq_sched_class_len(self->sched, c);
    uint64_t credits = 0, backlog = 0;
    for (const gq_bworker_t *w = self->workers; w; w = w->next) {
        credits += w->credits;
        backlog += w->backlog_us;
    }
    if (!credits)
        return 0; /* no worker yet: nothing to estimate with */
    double mean = gq_cost_mean(self->costs) > 0 ? gq_cost_mean(self->costs) : GQ_B_COST_GUESS_US;
    double wait = ((double)ahead * mean + (double)backlog) / (double)credits;
    double run = gq_b_cost_est(self, NULL, j->sig);
    double budget = (double)(j->deadline_us - j->admitted_us);
    if (wait + run <= budget)
        return 0;
    char err[GQ_ERRLEN];
    gq_errf(err, sizeof err,
            "cannot meet its %u ms deadline: about %.1f ms queued ahead and %.1f ms to run "
            "(--admit-by-cost)",
            j->submit->timeout_ms, wait / 1000.0, run / 1000.0);
    gq_b_send_error(self, rid, len, j->client_job_id, GQ_EDEADLINE, err, 0, NULL);
    self->failed++;
    self->refused_cost++;
    return 1;
}

/* Refuses (returns 1, answered) a job its class or client has no room for. */
static int s_admit_room(gq_broker_t *self, const gq_bjob_t *j, const uint8_t *rid, size_t len)
{
    static const char *const why[] = {"", "the queue is full", "its class's queue is full",
                                      "this client's share of its class is full", "out of memory"};
    uint32_t retry = 0;
    gq_sched_refusal_t r = gq_sched_room(self->sched, &j->sj, &retry);
    if (r == GQ_SCHED_OK)
        return 0;
    char err[GQ_ERRLEN];
    gq_errf(err, sizeof err, "%s (%zu queued); retry after %u ms", why[r],
            gq_sched_len(self->sched), retry);
    gq_b_send_error(self, rid, len, j->client_job_id, GQ_EEXHAUSTED, err, retry, NULL);
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
    gq_status rc = s_admit_check(self, s, m, args, err, sizeof err);
    if (rc) {
        gq_b_send_error(self, id, idlen, s->job_id, rc, err, 0, NULL);
        self->failed++;
        return;
    }
    gq_cache_key_t key;
    int keyed;
    if (gq_b_cache_admit(self, id, idlen, s, m, args, &key, &keyed))
        return;
    gq_bjob_t *j = calloc(1, sizeof *j);
    if (!j || idlen > GQ_B_MAX_RID) {
        free(j);
        gq_b_send_error(self, id, idlen, s->job_id, GQ_ENOMEM, "broker out of memory", 0, NULL);
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
        gq_b_send_error(self, id, idlen, s->job_id, GQ_ENOMEM, "broker out of memory", 0, NULL);
        self->failed++;
        gq_b_job_free(self, j);
        return;
    }
    gq_map_put(self->by_client, s_client_key(j->client, j->client_len, j->client_job_id), j);
    if (keyed) {
        j->keyed = 1;
        j->key = key;
        j->policy = s->cache_policy;
        j->ttl_ms = s->cache_ttl_ms;
        if (gq_b_cache_route(self, j))
            return;
    }
    gq_b_enqueue(self, j, 0);
}

static void s_on_cancel(gq_broker_t *self, zmq_msg_t *rid, uint64_t client_job_id)
{
    const uint8_t *id = zmq_msg_data(rid);
    size_t len = zmq_msg_size(rid);
    gq_bjob_t *j = gq_map_get(self->by_client, s_client_key(id, len, client_job_id));
    if (!j || j->client_len != len || memcmp(j->client, id, len) ||
        j->client_job_id != client_job_id)
        return;
    if (j->flight && j->flight->leader == j && j->flight->waiters.len) {
        /* Identical jobs wait on this run: answer this client, keep the run for them. */
        gq_b_send_error(self, j->client, j->client_len, j->client_job_id, GQ_ECANCELLED,
                        "cancelled by the client", 0, NULL);
        self->failed++;
        j->orphan = 1;
        gq_map_take(self->by_client, s_client_key(id, len, client_job_id));
        return;
    }
    if (j->flight && j->flight->leader != j) {
        gq_b_flight_detach(self, j); /* a waiter: in no queue */
    } else if (j->lookup) {
        gq_blist_remove(&self->parked, j);
        j->lookup = 0;
    } else if (j->worker) {
        gq_blist_remove(&j->worker->jobs, j);
        /* The worker may still compute it; its DONE then finds no job and is dropped.
         * The credit comes back now (with its run's last job), so the worker can briefly
         * hold one job over. */
        s_run_release(j);
        j->worker = NULL;
    } else {
        gq_sched_remove(self->sched, &j->sj);
    }
    gq_b_job_fail(self, j, GQ_ECANCELLED, "cancelled by the client", NULL);
}

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
    int textual =
        q->op == GQ__WIRE__ADMIN_OP__ADMIN_METRICS || q->op == GQ__WIRE__ADMIN_OP__ADMIN_QUEUES ||
        q->op == GQ__WIRE__ADMIN_OP__ADMIN_JOB || q->op == GQ__WIRE__ADMIN_OP__ADMIN_MODELS;
    if (textual && !(text = q->op == GQ__WIRE__ADMIN_OP__ADMIN_METRICS ? gq_b_metrics(self, &st)
                                                                       : malloc(GQ_B_TEXT_MAX))) {
        r.code = GQ_ENOMEM;
        r.message = "broker out of memory rendering the reply";
    } else if (textual) {
        if (q->op == GQ__WIRE__ADMIN_OP__ADMIN_QUEUES)
            gq_b_queues_text(self, q->verbose, text, GQ_B_TEXT_MAX);
        else if (q->op == GQ__WIRE__ADMIN_OP__ADMIN_JOB)
            r.code = gq_b_job_text(self, q->job_id, text, GQ_B_TEXT_MAX);
        else if (q->op == GQ__WIRE__ADMIN_OP__ADMIN_MODELS)
            gq_b_models_text(self, text, GQ_B_TEXT_MAX);
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

/* A client puts a model: checked by the ONNX loader, stored under its digest; the reply
 * has the digest and the signature. */
static void s_on_model_put(gq_broker_t *self, zmq_msg_t *rid, gq_wire_msg_t *m)
{
    const Gq__Wire__ModelPut *p = (const Gq__Wire__ModelPut *)m->hdr;
    Gq__Wire__ModelReply r = GQ__WIRE__MODEL_REPLY__INIT;
    Gq__Wire__ModelInput ins[GQ_MAX_INPUTS], *insp[GQ_MAX_INPUTS];
    int64_t shapes[GQ_MAX_INPUTS][GQ_MAX_DIMS];
    char err[GQ_ERRLEN] = "";
    const gq_model_entry_t *e = NULL;
    r.request_id = p->request_id;
    r.code = gq_models_put(self->models, &m->payload[0], p->name, &e, err, sizeof err);
    r.message = err;
    r.digest = "";
    if (r.code == GQ_OK) {
        r.digest = (char *)e->digest;
        for (int i = 0; i < e->sig.ninputs; i++) {
            const gq_onnx_input_t *in = &e->sig.in[i];
            gq__wire__model_input__init(&ins[i]);
            ins[i].name = (char *)in->name;
            ins[i].dtype = (Gq__Wire__DType)in->dtype;
            ins[i].n_shape = in->ndim > 0 ? (size_t)in->ndim : 0;
            for (int k = 0; k < in->ndim; k++)
                shapes[i][k] = in->shape[k];
            ins[i].shape = shapes[i];
            insp[i] = &ins[i];
        }
        r.n_inputs = (size_t)e->sig.ninputs;
        r.inputs = insp;
        r.outputs = (uint32_t)e->sig.noutputs;
    } else {
        GQ_INFO("model put refused: %s", err);
    }
    gq_wire_send(self->front, zmq_msg_data(rid), zmq_msg_size(rid), GQ_CMD_MODEL_REPLY, &r.base,
                 NULL, 0);
}

static void s_handle_frontend(gq_broker_t *self, int draining)
{
    for (int n = 0; n < GQ_B_DRAIN_BATCH; n++) {
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
            gq_b_send_error(self, id, idlen, m.job_id, rc, err, 0, NULL);
        } else if (m.cmd == GQ_CMD_SUBMIT) {
            if (draining)
                gq_b_send_error(self, id, idlen, m.job_id, GQ_ECLOSED, "broker shutting down", 0,
                                NULL);
            else
                s_on_submit(self, &rid, &m);
        } else if (m.cmd == GQ_CMD_CANCEL) {
            s_on_cancel(self, &rid, m.job_id);
        } else if (m.cmd == GQ_CMD_STATUS) {
            gq_b_send_status(self, &rid, ((const Gq__Wire__StatusRequest *)m.hdr)->request_id);
        } else if (m.cmd == GQ_CMD_ADMIN) {
            s_on_admin(self, &rid, (const Gq__Wire__AdminRequest *)m.hdr);
        } else if (m.cmd == GQ_CMD_MODEL_PUT) {
            s_on_model_put(self, &rid, &m);
        } else {
            self->malformed++;
            gq_errf(err, sizeof err, "%s not accepted on the client endpoint",
                    gq_wire_cmd_name(m.cmd));
            gq_b_send_error(self, id, idlen, m.job_id, GQ_EPROTO, err, 0, NULL);
        }
        gq_wire_msg_close(&m);
        zmq_msg_close(&rid);
    }
}

/* ---- heartbeats, purge ---- */

static void s_tick(gq_broker_t *self, uint64_t now)
{
    uint64_t dead_after = (uint64_t)self->cfg.heartbeat_ms * 1000u * (uint64_t)self->cfg.liveness;
    gq_bworker_t *next;
    for (gq_bworker_t *w = self->workers; w; w = next) {
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
    gq_b_expire(self, now);
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
    self->no_concat = gq_map_new();
    self->models = gq_models_new(cfg->model_dir, cfg->model_store_bytes, err, errlen);
    if (!self->models) {
        gq_broker_destroy(&self);
        return NULL;
    }
    self->costs = gq_cost_new();
    if (!self->ctx || !self->jobs || !self->by_client || !self->flights || !self->sched ||
        !self->no_concat || !self->costs || pipe2(self->stop_pipe, O_CLOEXEC)) {
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
        gq_bjob_t *j = self->parked.head;
        gq_blist_remove(&self->parked, j);
        j->lookup = 0;
        gq_b_job_fail(self, j, GQ_ECLOSED, "broker shutting down before the job ran", NULL);
    }
    gq_sched_job_t *out[64];
    int n;
    while ((n = gq_sched_drain(self->sched, out, 64)) > 0)
        for (int i = 0; i < n; i++)
            gq_b_job_fail(self, GQ_BJOB(out[i]), GQ_ECLOSED,
                          "broker shutting down before the job ran", NULL);
}

static void s_shutdown(gq_broker_t *self)
{
    s_fail_queued(self);
    uint64_t until = gq_now_us() + (uint64_t)self->cfg.drain_ms * 1000u;
    for (;;) {
        size_t inflight = 0;
        for (gq_bworker_t *w = self->workers; w; w = w->next)
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
        gq_bworker_t *w = self->workers;
        while (w->jobs.head) {
            gq_bjob_t *j = w->jobs.head;
            gq_blist_remove(&w->jobs, j);
            gq_b_job_fail(self, j, GQ_ECLOSED, "broker shut down while the job ran", w->name);
        }
        s_send_disconnect(self, w->rid, w->rid_len, "broker shutting down");
        s_worker_delete(self, w, "broker shutting down");
    }
    s_fail_queued(self); /* waiters promoted by failures while draining */
}

/* ZMQ_EVENTS of a socket: ZMQ_POLLIN when a message waits. 0 on error (a closed context:
 * the next receive reports it). */
static int s_zevents(void *sock)
{
    int ev = 0;
    size_t len = sizeof ev;
    return zmq_getsockopt(sock, ZMQ_EVENTS, &ev, &len) ? 0 : ev;
}

/* Waits up to timeout ms for work and says what is ready: ready[0] the worker socket,
 * [1] the client socket, [2] the stop pipe, [3] the cache's descriptor (cache_fd, -1 when
 * none). What zmq_poll does, less its first non-blocking poll(): two system calls fewer on
 * every wait, and a cache hit's whole round trip is a few dozen of them. A socket's ZMQ_FD
 * only signals that its state may have changed, so its events are read before sleeping
 * and after waking. Returns 0, or -1 with errno set. */
static int s_wait(gq_broker_t *self, const int zfd[2], int cache_fd, long timeout, bool ready[4])
{
    void *socks[2] = {self->back, self->front};
    struct pollfd fds[4] = {{zfd[0], POLLIN, 0},
                            {zfd[1], POLLIN, 0},
                            {self->stop_pipe[0], POLLIN, 0},
                            {cache_fd, POLLIN, 0}};
    int nfds = cache_fd >= 0 ? 4 : 3;
    for (int i = 0; i < 2; i++)
        ready[i] = s_zevents(socks[i]) & ZMQ_POLLIN;
    bool sockets = ready[0] || ready[1];
    /* With messages waiting, only look at the plain descriptors, without waiting. */
    int rc = sockets ? poll(fds + 2, (nfds_t)(nfds - 2), 0) : poll(fds, (nfds_t)nfds, (int)timeout);
    if (rc < 0) {
        ready[0] = ready[1] = ready[2] = ready[3] = false;
        return errno == EINTR ? 0 : -1;
    }
    ready[2] = fds[2].revents & POLLIN;
    ready[3] = nfds == 4 && (fds[3].revents & POLLIN);
    if (!sockets)
        for (int i = 0; i < 2; i++)
            ready[i] = fds[i].revents && (s_zevents(socks[i]) & ZMQ_POLLIN);
    return 0;
}

int gq_broker_run(gq_broker_t *self)
{
    uint64_t interval = (uint64_t)self->cfg.heartbeat_ms * 1000u;
    uint64_t next_tick = gq_now_us() + interval;
    GQ_INFO("serving clients on %s, workers on %s", self->front_ep, self->back_ep);
    int cache_fd = gq_cache_fd(self->cache);
    int zfd[2];
    size_t len = sizeof zfd[0];
    if (zmq_getsockopt(self->back, ZMQ_FD, &zfd[0], &len) ||
        zmq_getsockopt(self->front, ZMQ_FD, &zfd[1], &len)) {
        GQ_ERROR("zmq_getsockopt(ZMQ_FD): %s", zmq_strerror(errno));
        return GQ_EIO;
    }
    for (;;) {
        uint64_t now = gq_now_us();
        /* Wake for the heartbeat tick, or sooner when a held batch's delay or an aging step
         * falls due and a worker could take it (poll's timeout is in ms: round up, so it is
         * never early). */
        uint64_t wake = gq_b_any_free(self) ? gq_sched_wake_us(self->sched) : next_tick;
        wake = wake < next_tick ? wake : next_tick;
        long timeout = wake > now ? (long)((wake - now + 999u) / 1000u) : 0;
        bool ready[4];
        if (s_wait(self, zfd, cache_fd, timeout, ready)) {
            GQ_ERROR("poll: %s", strerror(errno));
            return GQ_EIO;
        }
        if (ready[2])
            break;
        if (ready[0])
            s_handle_backend(self);
        if (ready[1])
            s_handle_frontend(self, 0);
        if (ready[3])
            gq_cache_drain(self->cache, gq_b_on_lookup, self);
        gq_b_dispatch(self);
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
        gq_bworker_t *w = self->workers;
        self->workers = w->next;
        s_worker_free(w);
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
    gq_map_destroy(&self->no_concat);
    gq_models_destroy(&self->models);
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
