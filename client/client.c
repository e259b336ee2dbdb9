#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "client_int.h"
#include "onnx_sig.h"
#include "map.h"
#include "util.h"
#include "wire.h"

/* How often jobs with a timeout are checked while waiting. */
#define S_RETRY_MAX_MS 10000.0
#define S_DEADLINE_SCAN_US 5000

struct gq_client {
    void *sock;
    int local;
    gq_map_t *inflight; /* id -> job */
    uint64_t next_id;
    int window;
    int timeout_ms;
    int async_inflight; /* jobs of gq_client_submit not yet answered */
    int ndone;
    gq_job_t *done_head, *done_tail;
    int timed_jobs; /* in flight with a deadline */
    uint64_t next_scan_us;
    gq_wire_limits_t limits;
    uint64_t status_id;
    int status_ready;
    gq_cluster_info_t status;
    gq_worker_info_t *workers; /* from the last status reply */
    int nworkers;
    uint64_t admin_id;
    int admin_ready;
    int admin_code;
    char admin_msg[GQ_ERRLEN];
    gq_cache_info_t cache_info; /* from the last admin reply */
    char *admin_text;
    uint64_t model_id;
    int model_ready;
    int model_code;
    gq_model_info_t model_info; /* from the last model reply */
    int exhausted_retries;
    gq_job_t *retry_head; /* jobs waiting to be resent, by due time */
    unsigned rng;
    uint64_t unmatched; /* answers for no job in flight: late after a timeout or cancel */
};

/* ---- shared ZeroMQ context ---- */

static pthread_mutex_t s_ctx_mu = PTHREAD_MUTEX_INITIALIZER;
static void *s_ctx;
static int s_ctx_refs;

void *gq_lib_ctx_acquire(void)
{
    pthread_mutex_lock(&s_ctx_mu);
    if (!s_ctx)
        s_ctx = zmq_ctx_new();
    if (s_ctx)
        s_ctx_refs++;
    void *ctx = s_ctx;
    pthread_mutex_unlock(&s_ctx_mu);
    return ctx;
}

void gq_lib_ctx_release(void)
{
    pthread_mutex_lock(&s_ctx_mu);
    if (s_ctx && --s_ctx_refs == 0) {
        zmq_ctx_term(s_ctx);
        s_ctx = NULL;
    }
    pthread_mutex_unlock(&s_ctx_mu);
}

/* ---- connect ---- */

GQ_EXPORT void gq_client_opts_init(gq_client_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->window = 512;
    o->local_workers = 1;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    o->local_threads = n > 0 ? (int)n : 1;
    o->heartbeat_ms = 1000;
    o->local_cache_mb = 64;
    o->exhausted_retries = 20;
}

GQ_EXPORT gq_client_t *gq_client_new(const char *endpoint, const gq_client_opts_t *opts, char *err,
                                     size_t errlen)
{
    gq_client_opts_t o;
    if (opts)
        o = *opts;
    else
        gq_client_opts_init(&o);
    if (!endpoint || !*endpoint) {
        gq_errf(err, errlen, "no broker endpoint given");
        return NULL;
    }
    gq_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        gq_errf(err, errlen, "out of memory");
        return NULL;
    }
    c->window = o.window > 0 ? o.window : 512;
    c->timeout_ms = o.timeout_ms > 0 ? o.timeout_ms : 0;
    c->exhausted_retries = o.exhausted_retries > 0 ? o.exhausted_retries : 0;
    c->rng = (unsigned)gq_now_us() ^ (unsigned)getpid();
    gq_wire_limits_default(&c->limits);
    void *ctx = gq_lib_ctx_acquire();
    if (!ctx) {
        gq_errf(err, errlen, "cannot create a ZeroMQ context: %s", zmq_strerror(errno));
        free(c);
        return NULL;
    }
    if (!strcmp(endpoint, "local")) {
        endpoint = gq_local_acquire(ctx, &o, err, errlen);
        if (!endpoint)
            goto fail;
        c->local = 1;
    }
    c->inflight = gq_map_new();
    c->sock = zmq_socket(ctx, ZMQ_DEALER);
    if (!c->inflight || !c->sock) {
        gq_errf(err, errlen, "out of resources creating the client");
        goto fail;
    }
    int linger = 0, hwm = 0;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(c->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(c->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_connect(c->sock, endpoint)) {
        gq_errf(err, errlen, "cannot connect to %s: %s", endpoint, zmq_strerror(errno));
        goto fail;
    }
    return c;
fail:
    if (c->sock)
        zmq_close(c->sock);
    gq_map_destroy(&c->inflight);
    if (c->local)
        gq_local_release();
    gq_lib_ctx_release();
    free(c);
    return NULL;
}

static void s_detach_cb(uint64_t key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    gq_job_t *job = value;
    job->client = NULL;
    job->state = GQ_JOB_IDLE;
}

GQ_EXPORT void gq_client_destroy(gq_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gq_client_t *c = *self_p;
    gq_map_each(c->inflight, s_detach_cb, NULL);
    for (gq_job_t *j = c->done_head; j; j = j->next_done)
        j->client = NULL;
    gq_map_destroy(&c->inflight);
    free(c->workers);
    free(c->admin_text);
    zmq_close(c->sock);
    if (c->local)
        gq_local_release();
    gq_lib_ctx_release();
    free(c);
    *self_p = NULL;
}

/* ---- completion ---- */

static void s_retry_unlink(gq_client_t *c, gq_job_t *job)
{
    if (!job->retry_at_us)
        return;
    for (gq_job_t **pp = &c->retry_head; *pp; pp = &(*pp)->next_retry)
        if (*pp == job) {
            *pp = job->next_retry;
            break;
        }
    job->retry_at_us = 0;
    job->next_retry = NULL;
}

static void s_complete(gq_client_t *c, gq_job_t *job, int status, const char *msg)
{
    s_retry_unlink(c, job);
    gq_map_take(c->inflight, job->id);
    if (job->deadline_us)
        c->timed_jobs--;
    job->status = status;
    if (msg)
        snprintf(job->error, sizeof job->error, "%s", msg);
    job->timing.total_us = gq_now_us() - job->submit_us;
    job->state = GQ_JOB_DONE;
    if (job->sync) {
        job->client = NULL;
        return;
    }
    c->async_inflight--;
    job->next_done = NULL;
    if (c->done_tail)
        c->done_tail->next_done = job;
    else
        c->done_head = job;
    c->done_tail = job;
    c->ndone++;
}

static void s_send_cancel(gq_client_t *c, uint64_t id)
{
    Gq__Wire__Cancel m = GQ__WIRE__CANCEL__INIT;
    m.job_id = id;
    gq_wire_send(c->sock, NULL, 0, GQ_CMD_CANCEL, &m.base, NULL, 0);
}

void gq_client_forget(gq_client_t *c, gq_job_t *job)
{
    s_retry_unlink(c, job);
    if (job->state == GQ_JOB_INFLIGHT) {
        gq_map_take(c->inflight, job->id);
        if (job->deadline_us)
            c->timed_jobs--;
        if (!job->sync)
            c->async_inflight--;
        s_send_cancel(c, job->id);
    } else if (job->state == GQ_JOB_DONE && !job->sync) {
        gq_job_t **pp = &c->done_head, *prev = NULL;
        for (; *pp; prev = *pp, pp = &(*pp)->next_done)
            if (*pp == job) {
                *pp = job->next_done;
                if (c->done_tail == job)
                    c->done_tail = prev;
                c->ndone--;
                break;
            }
    }
    job->client = NULL;
    job->state = GQ_JOB_IDLE;
}

static void s_on_result(gq_client_t *c, gq_wire_msg_t *m)
{
    const Gq__Wire__Result *r = (const Gq__Wire__Result *)m->hdr;
    gq_job_t *job = gq_map_get(c->inflight, r->job_id);
    if (!job) {
        c->unmatched++; /* timed out or cancelled here; its late answer is dropped */
        return;
    }
    uint32_t retries = job->timing.retries;
    gq_job_reset_result(job);
    job->timing.retries = retries;
    for (int i = 0; i < m->npayload; i++) {
        gq_tensor_t *t = gq_tensor_from_msg(&m->desc[i], &m->payload[i]);
        if (!t) {
            m->npayload = 0;
            s_complete(c, job, GQ_ENOMEM, "out of memory receiving outputs");
            return;
        }
        job->outputs[job->noutputs++] = t;
    }
    m->npayload = 0;
    for (size_t k = 0; k < r->n_backends && k < GQ_JOB_MAX_STAGES; k++)
        snprintf(job->backends[job->nbackends++], GQ_MAX_NAME, "%s", r->backends[k]);
    snprintf(job->worker, sizeof job->worker, "%s", r->worker);
    job->cache_source = (int)r->cache_tier;
    if (r->timing) {
        job->timing.queued_us = r->timing->queued_us;
        job->timing.compute_us = r->timing->compute_us;
        job->timing.batch = r->timing->batch;
    }
    s_complete(c, job, GQ_OK, "");
}

/* Schedules a refused job to be resent: the broker's hint doubled per attempt, jittered
 * x0.5..1.5 so refused clients do not return in step, at most S_RETRY_MAX_MS. Returns 0 when
 * out of attempts or the job's timeout would pass first: the refusal is its answer. */
static int s_retry_later(gq_client_t *c, gq_job_t *job, uint32_t hint_ms)
{
    if (job->timing.retries >= (uint32_t)c->exhausted_retries)
        return 0;
    double ms = (hint_ms ? hint_ms : 50) *
                (double)(1u << (job->timing.retries < 8 ? job->timing.retries : 8));
    c->rng = c->rng * 1103515245u + 12345u;
    ms *= 0.5 + (double)((c->rng >> 8) & 0xffff) / 65536.0;
    if (ms > S_RETRY_MAX_MS)
        ms = S_RETRY_MAX_MS;
    uint64_t at = gq_now_us() + (uint64_t)(ms * 1000.0);
    if (job->deadline_us && at >= job->deadline_us)
        return 0;
    job->timing.retries++;
    job->retry_at_us = at;
    gq_job_t **pp = &c->retry_head;
    while (*pp && (*pp)->retry_at_us <= at)
        pp = &(*pp)->next_retry;
    job->next_retry = *pp;
    *pp = job;
    return 1;
}

/* Resends the refused jobs whose time has come. */
static int s_send(gq_client_t *c, gq_job_t *job);

static void s_resend_due(gq_client_t *c)
{
    uint64_t now = gq_now_us();
    while (c->retry_head && c->retry_head->retry_at_us <= now) {
        gq_job_t *job = c->retry_head;
        c->retry_head = job->next_retry;
        job->next_retry = NULL;
        job->retry_at_us = 0;
        if (s_send(c, job))
            s_complete(c, job, GQ_EIO, "cannot resend the job to the broker");
    }
}

static void s_on_error(gq_client_t *c, gq_wire_msg_t *m)
{
    const Gq__Wire__Error *e = (const Gq__Wire__Error *)m->hdr;
    gq_job_t *job = gq_map_get(c->inflight, e->job_id);
    if (!job) {
        c->unmatched++;
        return;
    }
    if (e->code == GQ_EEXHAUSTED && s_retry_later(c, job, e->retry_after_ms))
        return;
    snprintf(job->worker, sizeof job->worker, "%s", e->worker);
    s_complete(c, job, e->code, e->message);
}

/* One line for a worker's devices ("backend: name (memory, CUs, driver); ..."). */
static void s_devices_str(const Gq__Wire__WorkerInfo *wi, gq_worker_info_t *w)
{
    size_t off = 0;
    w->devices[0] = 0;
    for (size_t k = 0; k < wi->n_devices && off < sizeof w->devices; k++) {
        const Gq__Wire__Device *d = wi->devices[k];
        w->gpus += d->is_gpu;
        int n =
            snprintf(w->devices + off, sizeof w->devices - off,
                     "%s%s: %s (%.1f GiB, %u CU, driver %s)", k ? "; " : "", d->backend, d->name,
                     (double)d->memory_bytes / (1u << 30), d->compute_units, d->driver);
        off += n > 0 ? (size_t)n : 0;
    }
}

static void s_on_status(gq_client_t *c, gq_wire_msg_t *m)
{
    const Gq__Wire__StatusReply *r = (const Gq__Wire__StatusReply *)m->hdr;
    if (r->request_id != c->status_id)
        return;
    gq_cluster_info_t *s = &c->status;
    memset(s, 0, sizeof *s);
    s->workers = (int)r->n_workers;
    for (size_t i = 0; i < r->n_queued; i++)
        s->queued += (int64_t)r->queued[i];
    s->inflight = (int64_t)r->inflight;
    s->jobs_done = r->jobs_done;
    s->jobs_failed = r->jobs_failed;
    s->jobs_requeued = r->jobs_requeued;
    free(c->workers);
    c->nworkers = 0;
    c->workers = calloc(r->n_workers ? r->n_workers : 1, sizeof *c->workers);
    for (size_t i = 0; c->workers && i < r->n_workers; i++) {
        const Gq__Wire__WorkerInfo *wi = r->workers[i];
        gq_worker_info_t *w = &c->workers[c->nworkers++];
        snprintf(w->name, sizeof w->name, "%s", wi->name);
        size_t off = 0;
        for (size_t k = 0; k < wi->n_backends && off < sizeof w->backends; k++)
            off += (size_t)snprintf(w->backends + off, sizeof w->backends - off, k ? ",%s" : "%s",
                                    wi->backends[k]);
        w->credits = wi->credits;
        w->inflight = wi->inflight;
        w->jobs_done = wi->jobs_done;
        w->ms_since_seen = wi->ms_since_seen;
        s_devices_str(wi, w);
    }
    c->status_ready = 1;
}

static void s_on_model_reply(gq_client_t *c, gq_wire_msg_t *m)
{
    const Gq__Wire__ModelReply *r = (const Gq__Wire__ModelReply *)m->hdr;
    if (r->request_id != c->model_id)
        return;
    gq_model_info_t *o = &c->model_info;
    memset(o, 0, sizeof *o);
    c->model_code = r->code;
    snprintf(o->error, sizeof o->error, "%s", r->message);
    snprintf(o->digest, sizeof o->digest, "%s", r->digest);
    o->ninputs = (int)r->n_inputs;
    o->noutputs = (int)r->outputs;
    size_t off = 0;
    for (size_t i = 0; i < r->n_inputs && off < sizeof o->inputs; i++) {
        const Gq__Wire__ModelInput *in = r->inputs[i];
        gq_onnx_input_t sig = {.dtype = (gq_dtype_t)in->dtype, .ndim = (int)in->n_shape};
        memcpy(sig.shape, in->shape, in->n_shape * sizeof in->shape[0]); /* <= 8: checked */
        char text[128];
        int n = snprintf(o->inputs + off, sizeof o->inputs - off, "%s%s: %s", i ? "; " : "",
                         in->name, gq_onnx_input_str(&sig, text, sizeof text));
        off += n > 0 ? (size_t)n : 0;
    }
    c->model_ready = 1;
}

static void s_on_admin_reply(gq_client_t *c, gq_wire_msg_t *m)
{
    const Gq__Wire__AdminReply *r = (const Gq__Wire__AdminReply *)m->hdr;
    if (r->request_id != c->admin_id)
        return;
    c->admin_code = r->code;
    snprintf(c->admin_msg, sizeof c->admin_msg, "%s", r->message);
    free(c->admin_text);
    c->admin_text = r->text && *r->text ? strdup(r->text) : NULL;
    gq_cache_info_t *ci = &c->cache_info;
    memset(ci, 0, sizeof *ci);
    const Gq__Wire__CacheStats *cs = r->cache;
    if (cs) {
        ci->enabled = cs->enabled;
        for (size_t i = 0; i < cs->n_tiers && ci->ntiers < 4; i++) {
            const Gq__Wire__TierStats *t = cs->tiers[i];
            gq_cache_tier_info_t *o = &ci->tiers[ci->ntiers++];
            o->tier = (gq_cache_source_t)t->tier;
            o->up = t->up;
            o->hits = t->hits;
            o->misses = t->misses;
            o->evictions = t->evictions;
            o->expired = t->expired;
            o->corrupt = t->corrupt;
            o->stores = t->stores;
            o->errors = t->errors;
            o->entries = t->entries;
            o->bytes_raw = t->bytes_raw;
            o->bytes_stored = t->bytes_stored;
            o->capacity = t->capacity;
            o->nlatency = (int)t->n_latency; /* at most GQ_WIRE_MAX_BUCKETS: checked */
            memcpy(o->latency, t->latency, t->n_latency * sizeof *t->latency);
            o->latency_sum_us = t->latency_sum_us;
        }
        ci->lookups = cs->lookups;
        ci->hits = cs->hits;
        ci->misses = cs->misses;
        ci->dedup_joined = cs->dedup_joined;
        ci->uncacheable = cs->uncacheable;
        ci->bypassed = cs->bypassed;
        ci->refreshed = cs->refreshed;
        ci->too_big = cs->too_big;
        ci->encoded_raw = cs->encoded_raw;
        ci->encoded_stored = cs->encoded_stored;
        ci->encoded_shuffled = cs->encoded_shuffled;
    }
    c->admin_ready = 1;
}

typedef struct {
    gq_client_t *c;
    uint64_t now;
    gq_job_t *expired[64];
    int n;
} s_scan_t;

static void s_scan_cb(uint64_t key, void *value, void *arg)
{
    (void)key;
    s_scan_t *s = arg;
    gq_job_t *job = value;
    if (job->deadline_us && s->now >= job->deadline_us && s->n < 64)
        s->expired[s->n++] = job;
}

/* Fails jobs whose timeout ran out and tells the broker to forget them. */
static void s_expire(gq_client_t *c)
{
    uint64_t now = gq_now_us();
    if (!c->timed_jobs || now < c->next_scan_us)
        return;
    c->next_scan_us = now + S_DEADLINE_SCAN_US;
    s_scan_t s = {.c = c, .now = now};
    gq_map_each(c->inflight, s_scan_cb, &s);
    for (int i = 0; i < s.n; i++) {
        char msg[96];
        gq_job_t *job = s.expired[i];
        snprintf(msg, sizeof msg, "no answer within %d ms", job->timeout_ms);
        s_send_cancel(c, job->id);
        s_complete(c, job, GQ_ETIMEDOUT, msg);
    }
}

/* Waits up to timeout_ms (-1: forever) for a message and handles it, then, with drain,
 * every other one already there. Without drain nothing is lost (later calls read the
 * rest), and a lone answer costs no extra receive to find the queue empty. */
static int s_pump(gq_client_t *c, int timeout_ms, bool drain)
{
    uint64_t now = gq_now_us();
    if (c->timed_jobs) {
        long until_scan = (long)((c->next_scan_us > now ? c->next_scan_us - now : 0) / 1000u) + 1;
        if (timeout_ms < 0 || timeout_ms > until_scan)
            timeout_ms = (int)until_scan;
    }
    if (c->retry_head) {
        uint64_t at = c->retry_head->retry_at_us;
        long until = (long)((at > now ? at - now : 0) / 1000u) + 1;
        if (timeout_ms < 0 || timeout_ms > until)
            timeout_ms = (int)until;
    }
    /* The first receive blocks (up to timeout_ms), the rest drain what is there. A
     * blocking receive sleeps on the socket's mailbox alone: zmq_poll before a receive
     * costs several more system calls per message, a tenth of a small job's round trip;
     * so does a receive that finds the queue empty. */
    if (zmq_setsockopt(c->sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms))
        return errno == ETERM ? GQ_ECLOSED : GQ_EIO;
    for (int n = 0; n < (drain ? 1024 : 1); n++) {
        gq_wire_msg_t m;
        char err[GQ_ERRLEN];
        gq_status st =
            gq_wire_recv(c->sock, n ? ZMQ_DONTWAIT : 0, NULL, &m, &c->limits, err, sizeof err);
        if (st == GQ_EAGAIN)
            break;
        if (st == GQ_ECLOSED || st == GQ_EIO)
            return st;
        if (st != GQ_OK) {
            /* A malformed answer still names its job when the header was readable: fail
             * that job with the reason rather than leave it waiting. */
            gq_job_t *job = m.job_id ? gq_map_get(c->inflight, m.job_id) : NULL;
            if (job)
                s_complete(c, job, st, err);
            continue;
        }
        if (m.cmd == GQ_CMD_RESULT)
            s_on_result(c, &m);
        else if (m.cmd == GQ_CMD_ERROR)
            s_on_error(c, &m);
        else if (m.cmd == GQ_CMD_STATUS_REPLY)
            s_on_status(c, &m);
        else if (m.cmd == GQ_CMD_ADMIN_REPLY)
            s_on_admin_reply(c, &m);
        else if (m.cmd == GQ_CMD_MODEL_REPLY)
            s_on_model_reply(c, &m);
        gq_wire_msg_close(&m);
    }
    s_expire(c);
    s_resend_due(c);
    return GQ_OK;
}

/* ---- submit ---- */

static void s_unref_cb(void *data, void *hint)
{
    (void)data;
    gq_tensor_t *t = hint;
    gq_tensor_destroy(&t);
}

static int s_send(gq_client_t *c, gq_job_t *job)
{
    Gq__Wire__Submit s = GQ__WIRE__SUBMIT__INIT;
    Gq__Wire__Stage stages[GQ_JOB_MAX_STAGES], *stp[GQ_JOB_MAX_STAGES];
    Gq__Wire__Param params[GQ_JOB_MAX_STAGES][GQ_MAX_PARAMS];
    Gq__Wire__Param *pp[GQ_JOB_MAX_STAGES][GQ_MAX_PARAMS];
    Gq__Wire__TensorDesc tds[GQ_MAX_INPUTS], *tdp[GQ_MAX_INPUTS];
    int64_t shapes[GQ_MAX_INPUTS][GQ_MAX_DIMS];
    zmq_msg_t payload[GQ_MAX_INPUTS];
    for (int k = 0; k < job->nstages; k++) {
        gq_jstage_t *js = &job->stages[k];
        gq__wire__stage__init(&stages[k]);
        stages[k].op = js->op;
        for (int i = 0; i < js->nparams; i++) {
            Gq__Wire__Param *p = &params[k][i];
            gq__wire__param__init(p);
            p->name = js->params[i].name;
            const gq_value_t *v = &js->params[i].v;
            switch (v->type) {
            case GQ_PT_INT:
                p->value_case = GQ__WIRE__PARAM__VALUE_I;
                p->i = v->i;
                break;
            case GQ_PT_FLOAT:
                p->value_case = GQ__WIRE__PARAM__VALUE_F;
                p->f = v->f;
                break;
            case GQ_PT_BOOL:
                p->value_case = GQ__WIRE__PARAM__VALUE_B;
                p->b = v->i != 0;
                break;
            default:
                p->value_case = GQ__WIRE__PARAM__VALUE_S;
                p->s = (char *)v->s;
                break;
            }
            pp[k][i] = p;
        }
        stages[k].n_params = (size_t)js->nparams;
        stages[k].params = pp[k];
        stp[k] = &stages[k];
    }
    for (int i = 0; i < job->ninputs; i++) {
        gq_tensor_t *t = job->inputs[i];
        gq_wire_desc_fill(&tds[i], shapes[i], &t->desc);
        tdp[i] = &tds[i];
        /* Zero-copy: the frame holds a tensor reference until zmq has sent the bytes. */
        gq_tensor_ref(t);
        zmq_msg_init_data(&payload[i], t->data, t->nbytes, s_unref_cb, t);
    }
    s.job_id = job->id;
    s.n_stages = (size_t)job->nstages;
    s.stages = stp;
    s.n_inputs = (size_t)job->ninputs;
    s.inputs = tdp;
    s.priority = (Gq__Wire__Priority)job->prio;
    s.timeout_ms = (uint32_t)job->timeout_ms;
    s.cache_policy = (Gq__Wire__CachePolicy)job->cache_policy;
    s.cache_ttl_ms = job->cache_ttl_ms;
    return gq_wire_send(c->sock, NULL, 0, GQ_CMD_SUBMIT, &s.base, payload, job->ninputs);
}

static int s_submit(gq_client_t *c, gq_job_t *job, int sync)
{
    if (job->client && job->state == GQ_JOB_INFLIGHT)
        return GQ_EINVAL;
    if (job->client)
        gq_client_forget(job->client, job);
    gq_job_reset_result(job);
    job->client = c;
    job->sync = sync;
    job->id = ++c->next_id;
    job->submit_us = gq_now_us();
    if (!job->timeout_ms)
        job->timeout_ms = c->timeout_ms;
    job->deadline_us = job->timeout_ms ? job->submit_us + (uint64_t)job->timeout_ms * 1000u : 0;
    job->state = GQ_JOB_INFLIGHT;
    if (gq_map_put(c->inflight, job->id, job)) {
        job->state = GQ_JOB_IDLE;
        job->client = NULL;
        return GQ_ENOMEM;
    }
    if (job->deadline_us)
        c->timed_jobs++;
    if (!sync)
        c->async_inflight++;
    if (job->bad) {
        s_complete(c, job, job->bad, job->bad_msg);
        return GQ_OK;
    }
    int rc = s_send(c, job);
    if (rc)
        s_complete(c, job, rc, "cannot send the job to the broker");
    return GQ_OK;
}

GQ_EXPORT int gq_client_run(gq_client_t *c, gq_job_t *job)
{
    int rc = s_submit(c, job, 1);
    if (rc)
        return rc;
    while (job->state == GQ_JOB_INFLIGHT) {
        if ((rc = s_pump(c, -1, false))) {
            gq_client_forget(c, job);
            job->state = GQ_JOB_DONE;
            job->status = rc;
            snprintf(job->error, sizeof job->error, "connection to the broker failed");
            break;
        }
    }
    return job->status;
}

GQ_EXPORT int gq_client_submit(gq_client_t *c, gq_job_t *job)
{
    while (c->async_inflight >= c->window) {
        int rc = s_pump(c, -1, true);
        if (rc)
            return rc;
    }
    return s_submit(c, job, 0);
}

GQ_EXPORT int gq_client_collect(gq_client_t *c, int timeout_ms, gq_job_t **done)
{
    *done = NULL;
    uint64_t until = timeout_ms >= 0 ? gq_now_us() + (uint64_t)timeout_ms * 1000u : 0;
    while (!c->done_head) {
        if (!c->async_inflight)
            return GQ_EINVAL;
        int wait = -1;
        if (timeout_ms >= 0) {
            uint64_t now = gq_now_us();
            wait = now >= until ? 0 : (int)((until - now + 999u) / 1000u);
        }
        /* Always read once, so a zero timeout still picks up answers already here. */
        int rc = s_pump(c, wait, true);
        if (rc)
            return rc;
        if (!c->done_head && timeout_ms >= 0 && gq_now_us() >= until)
            return GQ_ETIMEDOUT;
    }
    gq_job_t *job = c->done_head;
    c->done_head = job->next_done;
    if (!c->done_head)
        c->done_tail = NULL;
    c->ndone--;
    job->next_done = NULL;
    job->client = NULL;
    *done = job;
    return GQ_OK;
}

GQ_EXPORT int gq_client_cancel(gq_client_t *c, gq_job_t *job)
{
    if (!job || job->client != c || job->state != GQ_JOB_INFLIGHT)
        return GQ_EINVAL;
    s_send_cancel(c, job->id);
    s_complete(c, job, GQ_ECANCELLED, "cancelled by the client");
    return GQ_OK;
}

GQ_EXPORT int gq_client_pending(const gq_client_t *c)
{
    return c->async_inflight + c->ndone;
}

/* Pumps messages until *flag is set by a reply, up to timeout_ms (-1: forever). */
static int s_wait_for(gq_client_t *c, const int *flag, int timeout_ms)
{
    uint64_t until = gq_now_us() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000u;
    while (!*flag) {
        uint64_t now = gq_now_us();
        if (timeout_ms >= 0 && now >= until)
            return GQ_ETIMEDOUT;
        int rc = s_pump(c, timeout_ms < 0 ? -1 : (int)((until - now + 999u) / 1000u), false);
        if (rc)
            return rc;
    }
    return GQ_OK;
}

GQ_EXPORT int gq_client_cluster_info(gq_client_t *c, gq_cluster_info_t *out, int timeout_ms)
{
    Gq__Wire__StatusRequest r = GQ__WIRE__STATUS_REQUEST__INIT;
    r.request_id = ++c->status_id;
    c->status_ready = 0;
    int rc = gq_wire_send(c->sock, NULL, 0, GQ_CMD_STATUS, &r.base, NULL, 0);
    if (rc)
        return rc;
    if ((rc = s_wait_for(c, &c->status_ready, timeout_ms)))
        return rc;
    *out = c->status;
    return GQ_OK;
}

uint64_t gq_client_unmatched(const gq_client_t *c)
{
    return c->unmatched;
}

GQ_EXPORT int gq_client_worker_info(const gq_client_t *c, int index, gq_worker_info_t *out)
{
    if (index < 0 || index >= c->nworkers)
        return GQ_EINVAL;
    *out = c->workers[index];
    return GQ_OK;
}

/* Sends an admin request and waits for its reply (stored in c). */
static int s_admin_req(gq_client_t *c, Gq__Wire__AdminRequest *q, int timeout_ms);

static int s_admin(gq_client_t *c, int op, int timeout_ms)
{
    Gq__Wire__AdminRequest q = GQ__WIRE__ADMIN_REQUEST__INIT;
    q.op = (Gq__Wire__AdminOp)op;
    return s_admin_req(c, &q, timeout_ms);
}

/* Sends q (its request id set here) and waits for the matching reply. */
static int s_admin_req(gq_client_t *c, Gq__Wire__AdminRequest *q, int timeout_ms)
{
    q->request_id = ++c->admin_id;
    c->admin_ready = 0;
    int rc = gq_wire_send(c->sock, NULL, 0, GQ_CMD_ADMIN, &q->base, NULL, 0);
    if (rc)
        return rc;
    rc = s_wait_for(c, &c->admin_ready, timeout_ms);
    return rc ? rc : c->admin_code;
}

GQ_EXPORT int gq_client_cache_info(gq_client_t *c, gq_cache_info_t *out, int timeout_ms)
{
    int rc = s_admin(c, GQ__WIRE__ADMIN_OP__ADMIN_CACHE_STATS, timeout_ms);
    if (rc == GQ_OK)
        *out = c->cache_info;
    return rc;
}

GQ_EXPORT int gq_client_cache_clear(gq_client_t *c, int timeout_ms)
{
    return s_admin(c, GQ__WIRE__ADMIN_OP__ADMIN_CACHE_CLEAR, timeout_ms);
}

/* The reply's text to the caller (malloc'd); on failure too when the broker sent one. */
static int s_take_text(gq_client_t *c, int rc, char **text)
{
    *text = c->admin_text ? c->admin_text : rc ? NULL : strdup("");
    c->admin_text = NULL;
    return rc ? rc : *text ? GQ_OK : GQ_ENOMEM;
}

GQ_EXPORT int gq_client_metrics(gq_client_t *c, char **text, int timeout_ms)
{
    *text = NULL;
    return s_take_text(c, s_admin(c, GQ__WIRE__ADMIN_OP__ADMIN_METRICS, timeout_ms), text);
}

GQ_EXPORT int gq_client_queues(gq_client_t *c, int verbose, char **text, int timeout_ms)
{
    Gq__Wire__AdminRequest q = GQ__WIRE__ADMIN_REQUEST__INIT;
    q.op = GQ__WIRE__ADMIN_OP__ADMIN_QUEUES;
    q.verbose = verbose != 0;
    *text = NULL;
    return s_take_text(c, s_admin_req(c, &q, timeout_ms), text);
}

GQ_EXPORT int gq_client_models(gq_client_t *c, char **text, int timeout_ms)
{
    *text = NULL;
    return s_take_text(c, s_admin(c, GQ__WIRE__ADMIN_OP__ADMIN_MODELS, timeout_ms), text);
}

GQ_EXPORT int gq_client_job_state(gq_client_t *c, uint64_t broker_id, char **text, int timeout_ms)
{
    Gq__Wire__AdminRequest q = GQ__WIRE__ADMIN_REQUEST__INIT;
    q.op = GQ__WIRE__ADMIN_OP__ADMIN_JOB;
    q.job_id = broker_id;
    *text = NULL;
    return s_take_text(c, s_admin_req(c, &q, timeout_ms), text);
}

static void s_free_copy(void *data, void *hint)
{
    (void)hint;
    free(data);
}

GQ_EXPORT int gq_client_model_put_bytes(gq_client_t *c, const void *bytes, size_t n,
                                        const char *name, gq_model_info_t *out, int timeout_ms)
{
    Gq__Wire__ModelPut p = GQ__WIRE__MODEL_PUT__INIT;
    Gq__Wire__TensorDesc td, *tdp = &td;
    int64_t shape[1];
    gq_tdesc_t desc = {.dtype = GQ_U8, .ndim = 1, .shape = {(int64_t)n}};
    memset(out, 0, sizeof *out);
    void *copy = malloc(n ? n : 1);
    if (!copy)
        return GQ_ENOMEM;
    memcpy(copy, bytes, n);
    zmq_msg_t frame;
    zmq_msg_init_data(&frame, copy, n, s_free_copy, NULL);
    gq_wire_desc_fill(&td, shape, &desc);
    p.request_id = ++c->model_id;
    p.name = (char *)(name ? name : "");
    p.data = &tdp;
    p.n_data = 1;
    c->model_ready = 0;
    int rc = gq_wire_send(c->sock, NULL, 0, GQ_CMD_MODEL_PUT, &p.base, &frame, 1);
    if (rc)
        return rc;
    if ((rc = s_wait_for(c, &c->model_ready, timeout_ms)))
        return rc;
    *out = c->model_info;
    return c->model_code;
}

GQ_EXPORT int gq_client_model_put(gq_client_t *c, const char *path, gq_model_info_t *out,
                                  int timeout_ms)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n = -1;
    if (f && !fseek(f, 0, SEEK_END) && (n = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET) &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        fclose(f);
        const char *base = strrchr(path, '/');
        int rc =
            gq_client_model_put_bytes(c, buf, (size_t)n, base ? base + 1 : path, out, timeout_ms);
        free(buf);
        return rc;
    }
    snprintf(out->error, sizeof out->error, "cannot read %s: %s", path, strerror(errno));
    if (f)
        fclose(f);
    free(buf);
    return GQ_EIO;
}
