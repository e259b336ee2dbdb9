#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "exec.h"
#include "models.h"
#include "par.h"
#include "util.h"
#include "wire.h"
#ifdef GQ_HAVE_VULKAN
#include "gq_vulkan.h"
#endif

#define S_INLINE_BYTES (64u << 10) /* inputs of a job the main thread may run itself */
#define S_NPRIO 4                  /* realtime .. background: threads take the most urgent */
#define S_NURGENT 2                /* realtime and interactive: what urgent threads take */

typedef struct s_wjob {
    Gq__Wire__Job *job;
    int nin;
    zmq_msg_t in[GQ_WIRE_MAX_PAYLOAD];
    gq_tdesc_t desc[GQ_WIRE_MAX_PAYLOAD];
    uint64_t deadline_us;
    /* filled by the compute thread */
    gq_status rc;
    char err[GQ_ERRLEN];
    gq_exec_out_t out;
    uint64_t compute_us;
    struct s_wjob *next;
} s_wjob_t;

struct gq_worker {
    gq_worker_config_t cfg;
    char name[GQ_MAX_NAME];
    char broker[256];
    void *ctx;
    int own_ctx;
    void *sock;
    void *done_pull;
    char done_ep[64];
    int stop_pipe[2];
    gq_exec_t exec;
    gq_wire_limits_t limits;
    char **ops;
    size_t nops;
    pthread_t *threads;
    int nthreads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_cond_t ucv;                        /* urgent threads wait here */
    s_wjob_t *qhead[S_NPRIO], *qtail[S_NPRIO]; /* waiting for a thread, per priority class */
    s_wjob_t *parked;     /* waiting for their model from the broker (main thread only) */
    gq_wmodels_t *models; /* loaded models, for onnx.run */
    int quit;
    uint64_t broker_seen_us;
};

void gq_worker_config_init(gq_worker_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->broker = "tcp://127.0.0.1:5556";
    cfg->threads = 1;
    cfg->urgent_threads = 1;
    cfg->bulk_nice = 5;
    cfg->heartbeat_ms = 1000;
    cfg->liveness = 3;
    cfg->backend.device_index = -1;
    cfg->backend.threads = 1;
}

static void s_wjob_free(s_wjob_t *w)
{
    if (!w)
        return;
    if (w->job)
        protobuf_c_message_free_unpacked(&w->job->base, NULL);
    for (int i = 0; i < w->nin; i++)
        zmq_msg_close(&w->in[i]);
    gq_exec_out_free(&w->out);
    free(w);
}

/* ---- compute threads ---- */

/* d with its dim 0 split into k rows ([k * d0, ...] as [k, d0, ...]: the same bytes), or,
 * with k == 0, its two leading dims merged ([k, e0, ...] as [k * e0, ...]). */
static gq_status s_regroup(gq_tdesc_t *d, size_t k, char *err, size_t errlen)
{
    if (k && (d->ndim < 1 || d->ndim >= GQ_MAX_DIMS || d->shape[0] % (int64_t)k)) {
        gq_errf(err, errlen, "batch of %zu: input of %d dims does not split into its jobs", k,
                d->ndim);
        return GQ_ESHAPE;
    }
    if (!k && d->ndim < 2) {
        gq_errf(err, errlen, "batch: a stage before the model gave %d dims, no rows to merge",
                d->ndim);
        return GQ_ESHAPE;
    }
    if (k) {
        memmove(d->shape + 1, d->shape, (size_t)d->ndim * sizeof d->shape[0]);
        d->shape[0] = (int64_t)k;
        d->shape[1] /= (int64_t)k;
        d->ndim++;
    } else {
        d->shape[1] *= d->shape[0];
        d->ndim--;
        memmove(d->shape, d->shape + 1, (size_t)d->ndim * sizeof d->shape[0]);
        d->shape[d->ndim] = 0;
    }
    return GQ_OK;
}

/* A concatenated batch of k jobs of a pipeline ending in a model (the broker's
 * s_model_batches): the stages before the model run on the inputs seen as stacked, the
 * model on their outputs with the two leading dims merged, so its outputs split along dim 0
 * like those of a model-only batch. */
static gq_status s_run_model_batch(gq_worker_t *self, s_wjob_t *w, const gq_view_t *in, size_t k)
{
    size_t n = w->job->n_stages;
    gq_view_t st[GQ_WIRE_MAX_PAYLOAD], mid[GQ_MAX_OUTPUTS];
    gq_exec_out_t pre;
    gq_status rc = GQ_OK;
    for (int i = 0; i < w->nin && !rc; i++) {
        st[i] = in[i];
        rc = s_regroup(&st[i].desc, k, w->err, sizeof w->err);
    }
    if (rc)
        return rc;
    rc = gq_exec_run(&self->exec, w->job->stages, n - 1, st, w->nin, &pre, w->err, sizeof w->err);
    if (rc)
        return rc;
    for (int i = 0; i < pre.n && !rc; i++) {
        mid[i] = pre.t[i];
        rc = s_regroup(&mid[i].desc, 0, w->err, sizeof w->err);
    }
    if (!rc)
        rc = gq_exec_run(&self->exec, w->job->stages + n - 1, 1, mid, pre.n, &w->out, w->err,
                         sizeof w->err);
    if (!rc) {
        w->out.backend[n - 1] = w->out.backend[0];
        for (size_t s = 0; s + 1 < n; s++)
            w->out.backend[s] = pre.backend[s];
    }
    gq_exec_out_free(&pre);
    return rc;
}

static void s_compute(gq_worker_t *self, s_wjob_t *w)
{
    uint64_t t0 = gq_now_us();
    if (w->deadline_us && t0 >= w->deadline_us) {
        w->rc = GQ_EDEADLINE;
        gq_errf(w->err, sizeof w->err, "deadline passed before the job started on %s", self->name);
        return;
    }
    gq_view_t in[GQ_WIRE_MAX_PAYLOAD];
    for (int i = 0; i < w->nin; i++) {
        in[i].desc = w->desc[i];
        in[i].data = zmq_msg_data(&w->in[i]);
        in[i].nbytes = zmq_msg_size(&w->in[i]);
    }
    size_t k = w->job->n_batch_ids, n = w->job->n_stages;
    if (k > 1 && w->job->batch_concat && n > 1)
        w->rc = s_run_model_batch(self, w, in, k);
    else
        w->rc =
            gq_exec_run(&self->exec, w->job->stages, n, in, w->nin, &w->out, w->err, sizeof w->err);
    w->compute_us = gq_now_us() - t0;
}

/* The most urgent job waiting for a thread (FIFO within a class) among the classes below
 * nprio; NULL if none. Under mu. */
static s_wjob_t *s_queue_take(gq_worker_t *self, int nprio)
{
    for (int p = 0; p < nprio; p++) {
        s_wjob_t *w = self->qhead[p];
        if (w) {
            if (!(self->qhead[p] = w->next))
                self->qtail[p] = NULL;
            return w;
        }
    }
    return NULL;
}

static void s_queue_put(gq_worker_t *self, s_wjob_t *w)
{
    int p = w->job->priority < S_NPRIO ? (int)w->job->priority : S_NPRIO - 1;
    w->next = NULL;
    if (self->qtail[p])
        self->qtail[p]->next = w;
    else
        self->qhead[p] = w;
    self->qtail[p] = w;
}

/* A compute thread: takes jobs of the classes below nprio (urgent threads: realtime and
 * interactive only, so an urgent job never waits for a bulk job to finish) until quit. */
static void s_compute_loop(gq_worker_t *self, int nprio, pthread_cond_t *cv)
{
    void *push = zmq_socket(self->ctx, ZMQ_PUSH);
    int hwm = 0;
    zmq_setsockopt(push, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (!push || zmq_connect(push, self->done_ep)) {
        GQ_ERROR("compute thread cannot connect %s: %s", self->done_ep, zmq_strerror(errno));
        if (push)
            zmq_close(push);
        return;
    }
    for (;;) {
        pthread_mutex_lock(&self->mu);
        s_wjob_t *w;
        while (!(w = s_queue_take(self, nprio)) && !self->quit)
            pthread_cond_wait(cv, &self->mu);
        if (self->quit) {
            pthread_mutex_unlock(&self->mu);
            break;
        }
        pthread_mutex_unlock(&self->mu);
        s_compute(self, w);
        /* Only the pointer crosses: the main thread owns the socket to the broker. */
        if (zmq_send(push, &w, sizeof w, 0) != sizeof w) {
            GQ_ERROR("compute thread: cannot hand back job: %s", zmq_strerror(errno));
            s_wjob_free(w);
        }
    }
    zmq_close(push);
}

static void *s_compute_main(void *arg)
{
    gq_worker_t *self = arg;
    /* Bulk compute yields the CPU to the message path and the urgent threads: on a busy
     * host an urgent job otherwise waits for a time slice at every hop. Linux nice is per
     * thread (setpriority on the thread id); failing to lower it costs nothing. */
    if (self->cfg.urgent_threads > 0 && self->cfg.bulk_nice > 0 &&
        setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), self->cfg.bulk_nice))
        GQ_DEBUG("compute thread: setpriority: %s", strerror(errno));
    s_compute_loop(self, S_NPRIO, &self->cv);
    return NULL;
}

static void *s_urgent_main(void *arg)
{
    gq_worker_t *self = arg;
    s_compute_loop(self, S_NURGENT, &self->ucv);
    return NULL;
}

/* ---- broker connection ---- */

static gq_status s_send_ready(gq_worker_t *self)
{
    Gq__Wire__Ready r = GQ__WIRE__READY__INIT;
    Gq__Wire__Device devs[GQ_EXEC_MAX_BACKENDS * 4], *devp[GQ_EXEC_MAX_BACKENDS * 4];
    gq_device_info_t info[GQ_EXEC_MAX_BACKENDS * 4];
    char *backends[GQ_EXEC_MAX_BACKENDS];
    size_t nd = 0;
    for (int b = 0; b < self->exec.nbackends; b++) {
        gq_backend_t *be = self->exec.backends[b];
        backends[b] = (char *)be->ops->name;
        int n = be->ops->devices ? be->ops->devices(be, &info[nd], 4) : 0;
        for (int i = 0; i < n; i++, nd++) {
            gq__wire__device__init(&devs[nd]);
            devs[nd].backend = (char *)be->ops->name;
            devs[nd].name = info[nd].name;
            devs[nd].vendor = info[nd].vendor;
            devs[nd].driver = info[nd].driver;
            devs[nd].memory_bytes = info[nd].memory_bytes;
            devs[nd].compute_units = info[nd].compute_units;
            devs[nd].is_gpu = info[nd].is_gpu;
            devp[nd] = &devs[nd];
        }
    }
    r.name = self->name;
    r.credits = (uint32_t)self->cfg.credits;
    r.n_backends = (size_t)self->exec.nbackends;
    r.backends = backends;
    r.n_devices = nd;
    r.devices = devp;
    r.n_ops = self->nops;
    r.ops = self->ops;
    r.heartbeat_ms = (uint32_t)self->cfg.heartbeat_ms;
    return gq_wire_send(self->sock, NULL, 0, GQ_CMD_READY, &r.base, NULL, 0);
}

/* Jobs not yet started were taken back by the broker when it dropped us: forget them. */
static void s_drop_queued(gq_worker_t *self)
{
    pthread_mutex_lock(&self->mu);
    s_wjob_t *w;
    while ((w = s_queue_take(self, S_NPRIO)))
        s_wjob_free(w);
    pthread_mutex_unlock(&self->mu);
    while ((w = self->parked)) {
        self->parked = w->next;
        s_wjob_free(w);
    }
    if (self->models)
        gq_wmodels_forget_fetches(self->models);
}

static gq_status s_connect(gq_worker_t *self)
{
    if (self->sock)
        zmq_close(self->sock);
    self->sock = zmq_socket(self->ctx, ZMQ_DEALER);
    if (!self->sock)
        return GQ_EIO;
    int linger = 0, hwm = 0;
    zmq_setsockopt(self->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_connect(self->sock, self->cfg.broker)) {
        GQ_ERROR("cannot connect to %s: %s", self->cfg.broker, zmq_strerror(errno));
        return GQ_EIO;
    }
    self->broker_seen_us = gq_now_us();
    return s_send_ready(self);
}

static void s_reconnect(gq_worker_t *self, const char *why)
{
    GQ_WARN("reconnecting to %s: %s", self->cfg.broker, why);
    s_drop_queued(self);
    s_connect(self);
}

static void s_send_done(gq_worker_t *self, s_wjob_t *w);

/* Whether every stage is light and no tensor the job reads or makes is over
 * S_INLINE_BYTES: a broadcast can make a large output from small inputs. */
static int s_job_small(const s_wjob_t *w)
{
    gq_tdesc_t bufs[2][GQ_MAX_OUTPUTS];
    const gq_tdesc_t *in = w->desc;
    int nin = w->nin;
    for (int i = 0; i < w->nin; i++)
        if (zmq_msg_size((zmq_msg_t *)&w->in[i]) > S_INLINE_BYTES)
            return 0;
    for (size_t k = 0; k < w->job->n_stages; k++) {
        const Gq__Wire__Stage *st = w->job->stages[k];
        const gq_op_spec_t *op = gq_op_find(st->op);
        gq_param_t params[GQ_MAX_PARAMS];
        gq_args_t args;
        char err[GQ_ERRLEN];
        int nout = 0;
        if (!op || !(op->flags & GQ_OPF_LIGHT) ||
            gq_op_resolve(op, params, gq_wire_stage_params(st, params, GQ_MAX_PARAMS), &args, err,
                          sizeof err) ||
            gq_op_infer(&args, in, nin, bufs[k & 1], &nout, err, sizeof err))
            return 0;
        for (int o = 0; o < nout; o++)
            if (gq_tdesc_nbytes(&bufs[k & 1][o]) > S_INLINE_BYTES)
                return 0;
        in = bufs[k & 1];
        nin = nout;
    }
    return 1;
}

/* A small job of light ops (GQ_OPF_LIGHT) when no job waits for a compute thread runs
 * right here: two thread hand-offs cost more than its compute (bench_roundtrip: a 64-byte
 * job spent 7 context switches in the worker). Anything else keeps the main thread free
 * for heartbeats. */
static int s_run_inline(gq_worker_t *self, const s_wjob_t *w)
{
    if (!s_job_small(w))
        return 0;
    pthread_mutex_lock(&self->mu);
    int idle_queue = 1;
    for (int p = 0; p < S_NPRIO; p++)
        idle_queue &= self->qhead[p] == NULL;
    pthread_mutex_unlock(&self->mu);
    return idle_queue;
}

static void s_dispatch_local(gq_worker_t *self, s_wjob_t *w);

/* The digest of the model a job's onnx.run stage names; NULL when it has none. */
static const char *s_job_model(const s_wjob_t *w)
{
    for (size_t k = 0; k < w->job->n_stages; k++) {
        const Gq__Wire__Stage *st = w->job->stages[k];
        if (strcmp(st->op, "onnx.run"))
            continue;
        for (size_t p = 0; p < st->n_params; p++)
            if (!strcmp(st->params[p]->name, "model") &&
                st->params[p]->value_case == GQ__WIRE__PARAM__VALUE_S)
                return st->params[p]->s;
    }
    return NULL;
}

/* Whether w must wait for its model: asks the broker for it the first time. */
static int s_needs_model(gq_worker_t *self, const s_wjob_t *w)
{
    const char *digest = s_job_model(w);
    if (!digest)
        return 0;
    gq_wmodel_state_t st = gq_wmodels_state(self->models, digest);
    if (st == GQ_WMODEL_READY)
        return 0;
    if (st == GQ_WMODEL_ABSENT && !gq_wmodels_fetching(self->models, digest)) {
        Gq__Wire__ModelGet g = GQ__WIRE__MODEL_GET__INIT;
        g.digest = (char *)digest;
        GQ_INFO("fetching model %s from the broker", digest);
        gq_wire_send(self->sock, NULL, 0, GQ_CMD_MODEL_GET, &g.base, NULL, 0);
    }
    return 1;
}

/* The broker's answer to MODEL_GET: load the model, then run (or fail) the jobs that wait. */
static void s_on_model(gq_worker_t *self, gq_wire_msg_t *m)
{
    const Gq__Wire__ModelData *d = (const Gq__Wire__ModelData *)m->hdr;
    char err[GQ_ERRLEN];
    gq_status rc = d->code;
    if (rc == GQ_OK)
        rc = gq_wmodels_add(self->models, d->digest, zmq_msg_data(&m->payload[0]),
                            zmq_msg_size(&m->payload[0]), err, sizeof err);
    else
        gq_errf(err, sizeof err, "%s", d->message);
    if (rc) {
        gq_wmodels_drop(self->models, d->digest);
        GQ_WARN("model %s: %s", d->digest, err);
    } else {
        GQ_INFO("model %s loaded", d->digest);
    }
    s_wjob_t **pp = &self->parked;
    while (*pp) {
        s_wjob_t *w = *pp;
        const char *digest = s_job_model(w);
        if (strcmp(digest, d->digest)) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        w->next = NULL;
        if (rc) {
            w->rc = rc;
            gq_errf(w->err, sizeof w->err, "onnx.run: %s", err);
            s_send_done(self, w);
            s_wjob_free(w);
        } else {
            s_dispatch_local(self, w);
        }
    }
}

static void s_on_job(gq_worker_t *self, gq_wire_msg_t *m)
{
    s_wjob_t *w = calloc(1, sizeof *w);
    if (!w) {
        Gq__Wire__Done d = GQ__WIRE__DONE__INIT;
        d.job_id = m->job_id;
        d.code = GQ_ENOMEM;
        d.message = "worker out of memory";
        gq_wire_send(self->sock, NULL, 0, GQ_CMD_DONE, &d.base, NULL, 0);
        return;
    }
    w->job = (Gq__Wire__Job *)m->hdr;
    m->hdr = NULL;
    w->nin = m->npayload;
    for (int i = 0; i < m->npayload; i++) {
        zmq_msg_init(&w->in[i]);
        zmq_msg_move(&w->in[i], &m->payload[i]);
        w->desc[i] = m->desc[i];
    }
    m->npayload = 0;
    if (w->job->timeout_ms)
        w->deadline_us = gq_now_us() + (uint64_t)w->job->timeout_ms * 1000u;
    if (s_needs_model(self, w)) {
        w->next = self->parked;
        self->parked = w;
        return;
    }
    s_dispatch_local(self, w);
}

/* Runs w here when it is small and light, else queues it for a compute thread. */
static void s_dispatch_local(gq_worker_t *self, s_wjob_t *w)
{
    if (s_run_inline(self, w)) {
        s_compute(self, w);
        s_send_done(self, w);
        s_wjob_free(w);
        return;
    }
    pthread_mutex_lock(&self->mu);
    s_queue_put(self, w);
    pthread_cond_signal(&self->cv);
    if (w->job->priority < S_NURGENT)
        pthread_cond_signal(&self->ucv);
    pthread_mutex_unlock(&self->mu);
}

/* One output buffer shared by the DONEs of a batch: freed with the last frame sent. */
typedef struct {
    void *data;
    atomic_int refs;
} s_shared_t;

static void s_free_shared(void *data, void *hint)
{
    (void)data;
    s_shared_t *sh = hint;
    if (atomic_fetch_sub(&sh->refs, 1) == 1) {
        free(sh->data);
        free(sh);
    }
}

/* Row m of k of the outputs as DONE frames: with k == 1 the whole outputs; a batch's rows
 * lose the leading axis (stacked) or a k-th of dim 0 (concatenated). The data are slices of
 * the shared buffers (no copy). */
static void s_rows(const s_wjob_t *w, int n, size_t k, s_shared_t **sh, size_t m,
                   Gq__Wire__TensorDesc *tds, int64_t (*shapes)[GQ_MAX_DIMS], zmq_msg_t *payload)
{
    for (int i = 0; i < n; i++) {
        gq_tdesc_t d = w->out.t[i].desc;
        size_t row = w->out.t[i].nbytes / k;
        if (k > 1 && w->job->batch_concat) {
            d.shape[0] /= (int64_t)k;
        } else if (k > 1) {
            d.ndim--;
            memmove(d.shape, d.shape + 1, (size_t)d.ndim * sizeof d.shape[0]);
        }
        gq_wire_desc_fill(&tds[i], shapes[i], &d);
        atomic_fetch_add(&sh[i]->refs, 1);
        zmq_msg_init_data(&payload[i], (char *)sh[i]->data + m * row, row, s_free_shared, sh[i]);
    }
}

/* A batch's outputs must have one row per job; anything else fails the batch (the broker
 * then runs its jobs alone). */
static gq_status s_batch_check(s_wjob_t *w)
{
    size_t k = w->job->n_batch_ids;
    for (int i = 0; i < w->out.n; i++) {
        int64_t d0 = w->out.t[i].desc.ndim ? w->out.t[i].desc.shape[0] : 0;
        int rows_ok =
            w->job->batch_concat ? d0 >= (int64_t)k && d0 % (int64_t)k == 0 : d0 == (int64_t)k;
        if (!rows_ok || w->out.t[i].nbytes % k) {
            gq_errf(w->err, sizeof w->err,
                    "batch of %zu: output %d's dim 0 (%lld) does not split into %zu jobs", k, i,
                    (long long)d0, k);
            return GQ_ESHAPE;
        }
    }
    return GQ_OK;
}

static void s_send_one(gq_worker_t *self, Gq__Wire__Done *d, zmq_msg_t *payload, int n)
{
    if (gq_wire_send(self->sock, NULL, 0, GQ_CMD_DONE, &d->base, payload, n) != GQ_OK)
        GQ_WARN("job %llu: cannot send result: %s", (unsigned long long)d->job_id,
                zmq_strerror(errno));
}

static void s_send_done(gq_worker_t *self, s_wjob_t *w)
{
    Gq__Wire__Done d = GQ__WIRE__DONE__INIT;
    Gq__Wire__TensorDesc tds[GQ_MAX_OUTPUTS], *tdp[GQ_MAX_OUTPUTS];
    int64_t shapes[GQ_MAX_OUTPUTS][GQ_MAX_DIMS];
    zmq_msg_t payload[GQ_MAX_OUTPUTS];
    s_shared_t *sh[GQ_MAX_OUTPUTS];
    char *backends[GQ_WIRE_MAX_STAGES];
    size_t k = w->job->n_batch_ids ? w->job->n_batch_ids : 1;
    if (w->rc == GQ_OK && k > 1)
        w->rc = s_batch_check(w);
    d.code = w->rc;
    d.compute_us = w->compute_us;
    d.batch = (uint32_t)k;
    if (w->rc != GQ_OK) {
        d.message = w->err;
        for (size_t m = 0; m < k; m++) {
            d.job_id = k > 1 ? w->job->batch_ids[m] : w->job->job_id;
            s_send_one(self, &d, NULL, 0);
        }
        return;
    }
    int n = w->out.n;
    for (int i = 0; i < n; i++) {
        tdp[i] = &tds[i];
        sh[i] = malloc(sizeof *sh[i]);
        if (!sh[i]) {
            w->rc = GQ_ENOMEM;
            gq_errf(w->err, sizeof w->err, "worker out of memory sending results");
            for (int q = 0; q < i; q++) { /* the outputs go back to w, which frees them */
                w->out.t[q].data = sh[q]->data;
                free(sh[q]);
            }
            s_send_done(self, w);
            return;
        }
        sh[i]->data = w->out.t[i].data;
        atomic_init(&sh[i]->refs, 1); /* ours, dropped below */
        w->out.t[i].data = NULL;
    }
    w->out.n = 0;
    d.n_outputs = (size_t)n;
    d.outputs = tdp;
    for (size_t q = 0; q < w->job->n_stages; q++)
        backends[q] = (char *)w->out.backend[q];
    d.n_backends = w->job->n_stages;
    d.backends = backends;
    for (size_t m = 0; m < k; m++) {
        d.job_id = k > 1 ? w->job->batch_ids[m] : w->job->job_id;
        s_rows(w, n, k, sh, m, tds, shapes, payload);
        s_send_one(self, &d, payload, n);
    }
    for (int i = 0; i < n; i++)
        s_free_shared(NULL, sh[i]);
}

static void s_handle_done(gq_worker_t *self)
{
    for (;;) {
        s_wjob_t *w;
        int rc = zmq_recv(self->done_pull, &w, sizeof w, ZMQ_DONTWAIT);
        if (rc != sizeof w)
            return;
        s_send_done(self, w);
        s_wjob_free(w);
    }
}

static void s_handle_broker(gq_worker_t *self)
{
    for (int n = 0; n < 256; n++) {
        gq_wire_msg_t m;
        char err[GQ_ERRLEN];
        gq_status rc =
            gq_wire_recv(self->sock, ZMQ_DONTWAIT, NULL, &m, &self->limits, err, sizeof err);
        if (rc == GQ_EAGAIN || rc == GQ_ECLOSED || rc == GQ_EIO)
            return;
        self->broker_seen_us = gq_now_us();
        if (rc != GQ_OK) {
            GQ_WARN("malformed message from broker: %s", err);
            if (m.cmd == GQ_CMD_JOB && m.job_id) {
                Gq__Wire__Done d = GQ__WIRE__DONE__INIT;
                d.job_id = m.job_id;
                d.code = rc;
                d.message = err;
                gq_wire_send(self->sock, NULL, 0, GQ_CMD_DONE, &d.base, NULL, 0);
            } else if (m.cmd == GQ_CMD_JOB) {
                /* A job we cannot name would hold its credit for good: re-register, so
                 * the broker requeues what we hold (and fails a job that keeps doing
                 * this after --max-requeues). */
                s_reconnect(self, "unreadable JOB from broker");
                return;
            }
            continue;
        }
        if (m.cmd == GQ_CMD_JOB) {
            s_on_job(self, &m);
        } else if (m.cmd == GQ_CMD_MODEL) {
            s_on_model(self, &m);
        } else if (m.cmd == GQ_CMD_DISCONNECT) {
            char why[GQ_ERRLEN];
            gq_errf(why, sizeof why, "broker said: %s", ((Gq__Wire__Disconnect *)m.hdr)->reason);
            gq_wire_msg_close(&m);
            s_reconnect(self, why);
            return;
        } else if (m.cmd != GQ_CMD_HEARTBEAT) {
            GQ_WARN("broker sent %s, not a worker command", gq_wire_cmd_name(m.cmd));
        }
        gq_wire_msg_close(&m);
    }
}

/* ---- life cycle ---- */

static int s_collect_ops(gq_worker_t *self)
{
    int n = gq_op_count();
    self->ops = calloc((size_t)n + 1, sizeof *self->ops);
    if (!self->ops)
        return -1;
    for (int i = 0; i < n; i++) {
        gq_args_t a;
        memset(&a, 0, sizeof a);
        a.op = gq_op_at(i);
        if ((a.op->flags & GQ_OPF_HOSTED) && self->exec.hosted) {
            self->ops[self->nops++] = (char *)a.op->name;
            continue;
        }
        for (int b = 0; b < self->exec.nbackends; b++)
            if (self->exec.backends[b]->ops->supports_op(self->exec.backends[b], &a, NULL, -1)) {
                self->ops[self->nops++] = (char *)a.op->name;
                break;
            }
    }
    return 0;
}

/* Opens the backends of cfg.backends in order (see worker.h for the default). */
static int s_open_backends(gq_worker_t *self, const char *list, char *err, size_t errlen)
{
    bool by_default = !list || !*list;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", by_default ? "opencl,cpu" : list);
    char *save = NULL;
    for (char *name = strtok_r(buf, ", ", &save); name; name = strtok_r(NULL, ", ", &save)) {
        gq_backend_config_t bc = self->cfg.backend;
        gq_backend_t *be = NULL;
        char why[GQ_ERRLEN] = "";
        for (int b = 0; b < self->exec.nbackends; b++)
            if (!strcmp(self->exec.backends[b]->ops->name, name)) {
                gq_errf(err, errlen, "--backends: '%s' named twice", name);
                return -1;
            }
        if (self->exec.nbackends == GQ_EXEC_MAX_BACKENDS) {
            gq_errf(err, errlen, "--backends: at most %d backends", GQ_EXEC_MAX_BACKENDS);
            return -1;
        }
        if (!strcmp(name, "cpu")) {
            be = gq_backend_cpu_new(&bc, why, sizeof why);
        } else if (!strcmp(name, "opencl")) {
            /* By default a CPU OpenCL device would compete with the CPU backend for the
             * same cores, as a slower copy of it: only a named one is used. */
            bc.gpu_only = by_default && bc.device_index < 0 && !bc.device_match;
            be = gq_backend_opencl_new(&bc, why, sizeof why);
            if (!be && by_default) {
                GQ_INFO("no OpenCL backend: %s; running on the CPU", why);
                continue;
            }
        } else if (!strcmp(name, "vulkan")) {
#ifdef GQ_HAVE_VULKAN
            /* Vulkan picks its own device: GQ_VK_DEVICE, an index or a name substring
             * (--cl-device names OpenCL's). A CPU device (lavapipe) only when named, as
             * for OpenCL. */
            bc.device_index = -1;
            bc.device_match = NULL;
            gq_backend_config_device(&bc, getenv("GQ_VK_DEVICE"));
            bc.gpu_only = by_default && bc.device_index < 0 && !bc.device_match;
            be = gq_backend_vulkan_new(&bc, why, sizeof why);
            if (!be && by_default) {
                GQ_INFO("no Vulkan backend: %s", why);
                continue;
            }
#else
            gq_errf(why, sizeof why, "not built (no Vulkan SDK or glslc at build time)");
#endif
        } else {
            gq_errf(err, errlen, "--backends: unknown backend '%s' (known: opencl, vulkan, cpu)",
                    name);
            return -1;
        }
        if (!be) {
            gq_errf(err, errlen, "cannot start backend %s: %s", name, why);
            return -1;
        }
        self->exec.backends[self->exec.nbackends++] = be;
        gq_device_info_t d;
        if (be->ops->devices && be->ops->devices(be, &d, 1) == 1)
            GQ_INFO("backend %d: %s on '%s' (%s, driver %s, %u compute units, %.1f GiB%s)",
                    self->exec.nbackends - 1, name, d.name, d.vendor, d.driver, d.compute_units,
                    (double)d.memory_bytes / (1u << 30), d.is_gpu ? ", GPU" : "");
    }
    if (!self->exec.nbackends) {
        gq_errf(err, errlen, "--backends '%s' names no backend", list ? list : "");
        return -1;
    }
    return 0;
}

gq_worker_t *gq_worker_new(const gq_worker_config_t *cfg, char *err, size_t errlen)
{
    gq_worker_t *self = calloc(1, sizeof *self);
    if (!self) {
        gq_errf(err, errlen, "out of memory");
        return NULL;
    }
    self->cfg = *cfg;
    snprintf(self->broker, sizeof self->broker, "%s", cfg->broker);
    self->cfg.broker = self->broker;
    self->cfg.name = NULL;     /* the caller's string may not outlive this call: use self->name */
    self->cfg.backends = NULL; /* read in gq_worker_new only, like the backend strings */
    if (self->cfg.threads <= 0)
        self->cfg.threads = 1;
    if (self->cfg.urgent_threads < 0 || self->cfg.urgent_threads > 64)
        self->cfg.urgent_threads = 1;
    /* Credits are how many jobs may wait inside the worker, out of the scheduler's reach: a
     * realtime job cannot pass them, and a job that waits here cannot be batched. 4 per
     * thread keeps every thread fed across a broker round trip; small jobs regain the
     * throughput of deep queues (64 per thread: 64-70k jobs/s in bench_roundtrip, 10k at 2)
     * by being stacked into batches at the broker (docs/scheduler.md). */
    if (self->cfg.credits <= 0)
        self->cfg.credits = self->cfg.threads * 4 > GQ_WIRE_MAX_CREDITS ? GQ_WIRE_MAX_CREDITS
                                                                        : self->cfg.threads * 4;
    if (self->cfg.heartbeat_ms <= 0)
        self->cfg.heartbeat_ms = 1000;
    if (self->cfg.liveness <= 0)
        self->cfg.liveness = 3;
    const char *env = getenv("GQ_THREADS");
    if (self->cfg.onnx_threads > 0 || !(env && *env)) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        int n = self->cfg.onnx_threads;
        if (n <= 0)
            n = ncpu > self->cfg.threads ? (int)(ncpu / self->cfg.threads) : 1;
        gq_par_set_threads(n);
    }
    self->stop_pipe[0] = self->stop_pipe[1] = -1;
    gq_wire_limits_default(&self->limits);
    pthread_mutex_init(&self->mu, NULL);
    pthread_cond_init(&self->cv, NULL);
    pthread_cond_init(&self->ucv, NULL);
    if (cfg->name) {
        snprintf(self->name, sizeof self->name, "%s", cfg->name);
    } else {
        char host[48] = "localhost";
        gethostname(host, sizeof host - 1);
        snprintf(self->name, sizeof self->name, "%s:%d", host, (int)getpid());
    }
    self->ctx = cfg->zmq_ctx;
    if (!self->ctx) {
        self->ctx = zmq_ctx_new();
        self->own_ctx = 1;
    }
    if (!self->ctx || pipe2(self->stop_pipe, O_CLOEXEC)) {
        gq_errf(err, errlen, "out of resources creating the worker");
        goto fail;
    }
    fcntl(self->stop_pipe[1], F_SETFL, O_NONBLOCK);
    self->exec.strict = cfg->strict;
    if (!(self->models = gq_wmodels_new())) {
        gq_errf(err, errlen, "out of memory");
        goto fail;
    }
    self->exec.hosted = gq_wmodels_run;
    self->exec.hosted_ctx = self->models;
    if (s_open_backends(self, cfg->backends, err, errlen))
        goto fail;
    /* The caller's strings may not outlive this call, and the backends are open. */
    self->cfg.backend.device_match = self->cfg.backend.platform = NULL;
    if (s_collect_ops(self)) {
        gq_errf(err, errlen, "out of memory");
        goto fail;
    }
    self->done_pull = zmq_socket(self->ctx, ZMQ_PULL);
    snprintf(self->done_ep, sizeof self->done_ep, "inproc://gq-worker-done-%p", (void *)self);
    if (!self->done_pull || zmq_bind(self->done_pull, self->done_ep)) {
        gq_errf(err, errlen, "cannot bind %s: %s", self->done_ep, zmq_strerror(errno));
        goto fail;
    }
    int total = self->cfg.threads + self->cfg.urgent_threads;
    self->threads = calloc((size_t)total, sizeof *self->threads);
    if (!self->threads) {
        gq_errf(err, errlen, "out of memory");
        goto fail;
    }
    for (; self->nthreads < total; self->nthreads++)
        if (pthread_create(&self->threads[self->nthreads], NULL,
                           self->nthreads < self->cfg.threads ? s_compute_main : s_urgent_main,
                           self)) {
            gq_errf(err, errlen, "cannot start compute thread %d", self->nthreads);
            goto fail;
        }
    if (s_connect(self)) {
        gq_errf(err, errlen, "cannot connect to broker %s", cfg->broker);
        goto fail;
    }
    return self;
fail:
    gq_worker_destroy(&self);
    return NULL;
}

void gq_worker_stop(gq_worker_t *self)
{
    char c = 1;
    ssize_t rc = write(self->stop_pipe[1], &c, 1);
    (void)rc;
}

/* A heartbeat carries the nonzero fallback counters, so the broker can export them
 * (gpuq_worker_fallbacks_total{worker,op,backend}). */
static void s_send_heartbeat(gq_worker_t *self)
{
    Gq__Wire__Heartbeat h = GQ__WIRE__HEARTBEAT__INIT;
    Gq__Wire__Fallback fb[GQ_WIRE_MAX_FALLBACKS], *fbp[GQ_WIRE_MAX_FALLBACKS];
    size_t n = 0;
    int nops = gq_op_count();
    for (int o = 0; o < nops && o < GQ_EXEC_MAX_OPS; o++)
        for (int b = 0; b < self->exec.nbackends && n < GQ_WIRE_MAX_FALLBACKS; b++) {
            uint64_t c = atomic_load(&self->exec.fallback_by[o][b]);
            if (!c)
                continue;
            gq__wire__fallback__init(&fb[n]);
            fb[n].op = (char *)gq_op_at(o)->name;
            fb[n].backend = (char *)self->exec.backends[b]->ops->name;
            fb[n].count = c;
            fbp[n] = &fb[n];
            n++;
        }
    int nnamed = atomic_load(&self->exec.nnamed); /* ONNX steps: "onnx.<OpType>" */
    for (int o = 0; o < nnamed; o++)
        for (int b = 0; b < self->exec.nbackends && n < GQ_WIRE_MAX_FALLBACKS; b++) {
            uint64_t c = atomic_load(&self->exec.named[o].by[b]);
            if (!c)
                continue;
            gq__wire__fallback__init(&fb[n]);
            fb[n].op = self->exec.named[o].op;
            fb[n].backend = (char *)self->exec.backends[b]->ops->name;
            fb[n].count = c;
            fbp[n] = &fb[n];
            n++;
        }
    h.n_fallbacks = n;
    h.fallbacks = fbp;
    gq_wire_send(self->sock, NULL, 0, GQ_CMD_HEARTBEAT, &h.base, NULL, 0);
}

int gq_worker_run(gq_worker_t *self)
{
    uint64_t interval = (uint64_t)self->cfg.heartbeat_ms * 1000u;
    uint64_t next_beat = gq_now_us() + interval;
    GQ_INFO("worker %s: %d compute threads, %d credits, %zu ops, broker %s", self->name,
            self->cfg.threads, self->cfg.credits, self->nops, self->cfg.broker);
    for (;;) {
        zmq_pollitem_t items[] = {{self->sock, 0, ZMQ_POLLIN, 0},
                                  {self->done_pull, 0, ZMQ_POLLIN, 0},
                                  {NULL, self->stop_pipe[0], ZMQ_POLLIN, 0}};
        uint64_t now = gq_now_us();
        long timeout = next_beat > now ? (long)((next_beat - now) / 1000u) + 1 : 0;
        if (zmq_poll(items, 3, timeout) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (items[2].revents & ZMQ_POLLIN)
            break;
        if (items[1].revents & ZMQ_POLLIN)
            s_handle_done(self);
        if (items[0].revents & ZMQ_POLLIN)
            s_handle_broker(self);
        now = gq_now_us();
        if (now >= next_beat) {
            if (now - self->broker_seen_us > interval * (uint64_t)self->cfg.liveness)
                s_reconnect(self, "broker silent");
            else
                s_send_heartbeat(self);
            next_beat = now + interval;
        }
    }
    Gq__Wire__Disconnect d = GQ__WIRE__DISCONNECT__INIT;
    d.reason = "worker stopping";
    gq_wire_send(self->sock, NULL, 0, GQ_CMD_DISCONNECT, &d.base, NULL, 0);
    return GQ_OK;
}

uint64_t gq_worker_fallbacks(gq_worker_t *self, const char *op, const char *backend)
{
    return gq_exec_fallbacks(&self->exec, op, backend);
}

int gq_worker_fallbacks_text(gq_worker_t *self, char *buf, size_t len)
{
    return gq_exec_fallbacks_text(&self->exec, buf, len);
}

void gq_worker_destroy(gq_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gq_worker_t *self = *self_p;
    char text[4096];
    if (gq_exec_fallbacks_text(&self->exec, text, sizeof text) > 0)
        GQ_INFO("worker %s: %llu stages fell back (%llu after a device failure):\n%s", self->name,
                (unsigned long long)atomic_load(&self->exec.fallbacks),
                (unsigned long long)atomic_load(&self->exec.retries), text);
    pthread_mutex_lock(&self->mu);
    self->quit = 1;
    pthread_cond_broadcast(&self->cv);
    pthread_cond_broadcast(&self->ucv);
    pthread_mutex_unlock(&self->mu);
    for (int i = 0; i < self->nthreads; i++)
        pthread_join(self->threads[i], NULL);
    free(self->threads);
    s_drop_queued(self);
    if (self->done_pull) {
        s_wjob_t *w;
        while (zmq_recv(self->done_pull, &w, sizeof w, ZMQ_DONTWAIT) == sizeof w)
            s_wjob_free(w);
        zmq_close(self->done_pull);
    }
    if (self->sock)
        zmq_close(self->sock);
    /* Plans first: a plan's accelerator keeps constants in its backend's buffers (Vulkan). */
    gq_wmodels_destroy(&self->models);
    for (int b = 0; b < self->exec.nbackends; b++)
        gq_backend_destroy(&self->exec.backends[b]);
    free(self->ops);
    if (self->own_ctx && self->ctx)
        zmq_ctx_term(self->ctx);
    for (int i = 0; i < 2; i++)
        if (self->stop_pipe[i] >= 0)
            close(self->stop_pipe[i]);
    pthread_mutex_destroy(&self->mu);
    pthread_cond_destroy(&self->cv);
    pthread_cond_destroy(&self->ucv);
    free(self);
    *self_p = NULL;
}
