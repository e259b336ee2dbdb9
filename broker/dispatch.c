/* From the scheduler to the workers: which free worker (learned cost), one job or a stacked
 * batch per run, deadlines swept (docs/scheduler.md). */
#include "broker_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "batch.h"
#include "util.h"

/* ---- dispatch ---- */

static int s_worker_can_run(const gq_bworker_t *w, const gq_bjob_t *j)
{
    for (size_t k = 0; k < j->submit->n_stages; k++)
        if (!gq_b_worker_has_op(w, j->submit->stages[k]->op))
            return 0;
    return 1;
}

/* Whether w may take one more run of class cls: batch and background jobs leave the last
 * reserve_credits credits to realtime and interactive ones, so an urgent job never waits
 * behind a worker full of bulk work (it still waits for a running one: no preemption). */
static int s_has_room(const gq_broker_t *self, const gq_bworker_t *w, int cls)
{
    uint32_t reserve = (uint32_t)self->cfg.reserve_credits;
    uint32_t usable = cls >= 2 && w->credits > reserve ? w->credits - reserve : w->credits;
    return w->inflight < usable;
}

int gq_b_any_free(const gq_broker_t *self)
{
    for (const gq_bworker_t *w = self->workers; w; w = w->next)
        if (w->inflight < w->credits)
            return 1;
    return 0;
}

static int s_runnable(const gq_sched_job_t *sj, void *arg)
{
    const gq_broker_t *self = arg;
    const gq_bjob_t *j = GQ_BJOB(sj);
    for (const gq_bworker_t *w = self->workers; w; w = w->next)
        if (s_has_room(self, w, sj->cur_cls) && s_worker_can_run(w, j))
            return 1;
    return 0;
}

/* Whether w has fetched model digest (holds it loaded). */
static int s_has_model(const gq_bworker_t *w, const char *digest)
{
    for (int i = 0; i < w->nmodels; i++)
        if (!strcmp(w->models[i], digest))
            return 1;
    return 0;
}

/* The free worker that would finish these n jobs soonest: its backlog spread over its
 * credits plus its learned cost, inflated by its failure rate; a worker that would first
 * have to fetch and load the job's model pays the learned load time (model affinity). */
static gq_bworker_t *s_route(gq_broker_t *self, const gq_bjob_t *j, int n)
{
    gq_bworker_t *best = NULL;
    double best_t = 0;
    for (gq_bworker_t *w = self->workers; w; w = w->next) {
        if (!s_has_room(self, w, j->sj.cur_cls) || !s_worker_can_run(w, j))
            continue;
        double t = (double)w->backlog_us / w->credits + gq_b_cost_est(self, w, j->sig) * n;
        if (j->model[0] && !s_has_model(w, j->model))
            t += self->cfg.model_load_us;
        t *= 1.0 + 4.0 * w->fail;
        if (!best || t < best_t) {
            best = w;
            best_t = t;
        }
    }
    return best;
}

static void s_fill_job(Gq__Wire__Job *job, const gq_bjob_t *j, uint64_t now)
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
static int s_start_run(gq_broker_t *self, gq_bjob_t **js, int n, gq_bworker_t *w, uint64_t now)
{
    gq_brun_t *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    r->worker = w;
    r->left = n;
    r->cost_us = (uint64_t)(gq_b_cost_est(self, w, js[0]->sig) * n);
    w->backlog_us += r->cost_us;
    w->inflight++;
    for (int i = 0; i < n; i++) {
        js[i]->run = r;
        js[i]->worker = w;
        js[i]->dispatched_us = now;
        js[i]->batched = n;
        gq_blist_push(&w->jobs, js[i], 0);
    }
    return 0;
}

static void s_send_job(gq_broker_t *self, gq_bjob_t *j, gq_bworker_t *w, uint64_t now)
{
    Gq__Wire__Job job = GQ__WIRE__JOB__INIT;
    zmq_msg_t payload[GQ_WIRE_MAX_PAYLOAD];
    if (s_start_run(self, &j, 1, w, now)) {
        gq_b_enqueue(self, j, GQ_SCHED_FRONT);
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
static int s_stack_input(gq_bjob_t **js, int n, int i, zmq_msg_t *msg, Gq__Wire__TensorDesc *td,
                         int64_t *shape)
{
    size_t row = zmq_msg_size(&js[0]->inputs[i]);
    char *buf = malloc(row * (size_t)n + 1);
    gq_tdesc_t d = js[0]->desc[i];
    if (js[0]->batch_concat) /* equal shapes: the same bytes as stacking, one dim 0 */
        d.shape[0] *= n;
    if (!buf || (!js[0]->batch_concat && gq_batch_stack_desc(&js[0]->desc[i], n, &d))) {
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
static void s_send_batch(gq_broker_t *self, gq_bjob_t **js, int n, gq_bworker_t *w, uint64_t now)
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
            gq_b_enqueue(self, js[m], GQ_SCHED_FRONT);
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
    job.batch_concat = js[0]->batch_concat;
    if (gq_wire_send(self->back, w->rid, w->rid_len, GQ_CMD_JOB, &job.base, payload, nin) != GQ_OK)
        GQ_WARN("worker %s: sending a batch of %d failed: %s", w->name, n, zmq_strerror(errno));
}

/* Fails queued jobs whose deadline has passed: a job past its deadline is never started. */
void gq_b_expire(gq_broker_t *self, uint64_t now)
{
    gq_sched_job_t *due[64];
    int n;
    while ((n = gq_sched_expired(self->sched, now, due, 64)) > 0)
        for (int i = 0; i < n; i++) {
            gq_bjob_t *j = GQ_BJOB(due[i]);
            char msg[GQ_ERRLEN];
            gq_errf(msg, sizeof msg, "deadline of %llu ms exceeded after %llu ms in the queue",
                    (unsigned long long)((j->deadline_us - j->admitted_us) / 1000u),
                    (unsigned long long)((now - j->admitted_us) / 1000u));
            gq_b_job_fail(self, j, GQ_EDEADLINE, msg, NULL);
        }
}

void gq_b_dispatch(gq_broker_t *self)
{
    uint64_t now = gq_now_us();
    gq_b_expire(self, now);
    gq_sched_job_t *out[GQ_WIRE_MAX_BATCH];
    gq_bjob_t *js[GQ_WIRE_MAX_BATCH];
    while (gq_b_any_free(self)) {
        int n = gq_sched_next(self->sched, now, s_runnable, self, out, GQ_WIRE_MAX_BATCH,
                              GQ_B_MAX_SKIP);
        if (!n)
            return;
        for (int i = 0; i < n; i++)
            js[i] = GQ_BJOB(out[i]);
        gq_bworker_t *w = s_route(self, js[0], n);
        if (n == 1)
            s_send_job(self, js[0], w, now);
        else
            s_send_batch(self, js, n, w, now);
    }
}
