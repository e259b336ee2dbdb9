/* What the broker tells about itself: status replies, Prometheus text, the scheduler's
 * queues and one job's state as text (gpuqctl). */
#include "broker_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cache_report.h"
#include "map.h"
#include "util.h"

void gq_b_send_status(gq_broker_t *self, zmq_msg_t *rid, uint64_t request_id)
{
    Gq__Wire__StatusReply r = GQ__WIRE__STATUS_REPLY__INIT;
    uint64_t queued[GQ_B_NCLASSES];
    uint64_t inflight = 0;
    gq_sched_stats_t st;
    gq_sched_stats(self->sched, &st);
    for (int c = 0; c < GQ_B_NCLASSES; c++)
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
    for (gq_bworker_t *w = self->workers; w; w = w->next, n++) {
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
    r.n_queued = GQ_B_NCLASSES;
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

static const char *const s_classes[GQ_B_NCLASSES] = {"realtime", "interactive", "batch",
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
    for (int c = 0; c < GQ_B_NCLASSES; c++)
        off = s_cat(buf, len, off, "gpuq_jobs_queued{class=\"%s\"} %zu\n", s_classes[c],
                    st.queued[c]);
    off = s_cat(buf, len, off,
                "# HELP gpuq_queue_oldest_seconds Wait of the oldest queued job, per class.\n"
                "# TYPE gpuq_queue_oldest_seconds gauge\n");
    for (int c = 0; c < GQ_B_NCLASSES; c++)
        off = s_cat(buf, len, off, "gpuq_queue_oldest_seconds{class=\"%s\"} %.6f\n", s_classes[c],
                    st.oldest_us[c] ? (double)(now - st.oldest_us[c]) / 1e6 : 0.0);
    off = s_cat(buf, len, off,
                "# HELP gpuq_jobs_refused_total Jobs refused for room (RESOURCE_EXHAUSTED).\n"
                "# TYPE gpuq_jobs_refused_total counter\n");
    for (int c = 0; c < GQ_B_NCLASSES; c++)
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
    for (const gq_bworker_t *w = self->workers; w; w = w->next)
        for (size_t i = 0; w->beat && i < w->beat->n_fallbacks; i++)
            off = s_cat(buf, len, off,
                        "gpuq_worker_fallbacks_total{worker=\"%s\",op=\"%s\",backend=\"%s\"} "
                        "%llu\n",
                        w->name, w->beat->fallbacks[i]->op, w->beat->fallbacks[i]->backend,
                        (unsigned long long)w->beat->fallbacks[i]->count);
    return off;
}

static const char *s_job_op(const gq_bjob_t *j)
{
    return j->submit && j->submit->n_stages ? j->submit->stages[0]->op : "?";
}

static size_t s_job_line(const gq_broker_t *self, const gq_bjob_t *j, uint64_t now, char *buf,
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
void gq_b_queues_text(gq_broker_t *self, int verbose, char *buf, size_t len)
{
    gq_sched_stats_t st;
    gq_sched_stats(self->sched, &st);
    uint64_t now = gq_now_us();
    size_t off = s_cat(buf, len, 0, "%-12s %8s %8s %10s %8s\n", "class", "queued", "clients",
                       "oldest_ms", "refused");
    for (int c = 0; c < GQ_B_NCLASSES; c++)
        off = s_cat(buf, len, off, "%-12s %8zu %8zu %10.1f %8llu\n", s_classes[c], st.queued[c],
                    st.clients[c], st.oldest_us[c] ? (double)(now - st.oldest_us[c]) / 1000.0 : 0.0,
                    (unsigned long long)st.refused[c]);
    off = s_cat(buf, len, off,
                "batch groups queued: %zu (held to fill: %zu); batches run: %llu holding %llu "
                "jobs; promoted by aging: %llu; completion rate %.1f jobs/s\n",
                st.groups, st.held, (unsigned long long)st.batches,
                (unsigned long long)st.batched_jobs, (unsigned long long)st.promoted,
                st.completion_rate);
    off = s_cat(buf, len, off, "%-24s %7s %8s %10s %8s %8s %7s\n", "worker", "credits", "inflight",
                "backlog_ms", "done", "failed", "health");
    for (const gq_bworker_t *w = self->workers; w; w = w->next)
        off =
            s_cat(buf, len, off, "%-24s %7u %8u %10.1f %8llu %8llu %6.0f%%\n", w->name, w->credits,
                  w->inflight, (double)w->backlog_us / 1000.0, (unsigned long long)w->jobs_done,
                  (unsigned long long)w->jobs_failed, 100.0 * (1.0 - w->fail));
    if (verbose) {
        s_listing_t l = {self, buf, len, off, now};
        l.off = s_cat(buf, len, l.off, "jobs (broker id, state, class, op):\n");
        gq_map_each(self->jobs, s_list_job_cb, &l);
    }
}

/* `gpuq status JOB`: the state of one job by broker id; returns GQ_ENOTFOUND-like codes. */
int gq_b_job_text(gq_broker_t *self, uint64_t id, char *buf, size_t len)
{
    const gq_bjob_t *j = gq_map_get(self->jobs, id);
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
char *gq_b_metrics(gq_broker_t *self, const gq_cache_stats_t *cs)
{
    char *buf = malloc(GQ_B_TEXT_MAX);
    if (!buf)
        return NULL;
    uint64_t inflight = 0, waiting = 0;
    for (gq_bworker_t *w = self->workers; w; w = w->next)
        inflight += w->inflight;
    int n = snprintf(
        buf, GQ_B_TEXT_MAX,
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
    size_t off = n > 0 && (size_t)n < GQ_B_TEXT_MAX ? (size_t)n : 0;
    off = s_sched_prom(self, buf, GQ_B_TEXT_MAX, off);
    off = s_fallbacks_prom(self, buf, GQ_B_TEXT_MAX, off);
    waiting = gq_map_size(self->jobs);
    n = snprintf(buf + off, GQ_B_TEXT_MAX - off,
                 "# HELP gpuq_jobs_admitted Jobs admitted and not yet answered.\n"
                 "# TYPE gpuq_jobs_admitted gauge\ngpuq_jobs_admitted %llu\n",
                 (unsigned long long)waiting);
    off += n > 0 && (size_t)n < GQ_B_TEXT_MAX - off ? (size_t)n : 0;
    gq_cache_prom(cs, buf, GQ_B_TEXT_MAX, off);
    return buf;
}

/* Admin requests (gpuqctl): cache stats, cache clear, metrics. The op was checked by the
 * wire codec. */

typedef struct {
    char *buf;
    size_t len, off;
} s_text_t;

static void s_model_line(const gq_model_entry_t *e, void *arg)
{
    s_text_t *t = arg;
    char in[128];
    t->off = s_cat(t->buf, t->len, t->off, "%s  %-24s %10llu  %6llu  ", e->digest, e->name,
                   (unsigned long long)e->size, (unsigned long long)e->fetches);
    for (int i = 0; i < e->sig.ninputs; i++)
        t->off = s_cat(t->buf, t->len, t->off, "%s%s: %s", i ? "; " : "", e->sig.in[i].name,
                       gq_onnx_input_str(&e->sig.in[i], in, sizeof in));
    t->off = s_cat(t->buf, t->len, t->off, " -> %d output%s\n", e->sig.noutputs,
                   e->sig.noutputs == 1 ? "" : "s");
}

void gq_b_models_text(gq_broker_t *self, char *buf, size_t len)
{
    s_text_t t = {buf, len, 0};
    t.off = s_cat(buf, len, 0, "%zu models, %llu bytes\n%-32s  %-24s %10s  %6s  %s\n",
                  gq_models_count(self->models), (unsigned long long)gq_models_bytes(self->models),
                  "digest", "name", "bytes", "loads", "inputs");
    gq_models_each(self->models, s_model_line, &t);
}
