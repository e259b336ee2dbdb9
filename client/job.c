#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "client_int.h"

static int s_bad(gq_job_t *job, int code, const char *fmt, const char *a, const char *b)
{
    if (!job->bad) {
        job->bad = code;
        snprintf(job->bad_msg, sizeof job->bad_msg, fmt, a, b);
    }
    return code;
}

static int s_set_op(gq_job_t *job, gq_jstage_t *st, const char *op)
{
    if (!op || !*op || strlen(op) >= GQ_MAX_NAME)
        return s_bad(job, GQ_EINVAL, "op name '%.64s%s' is empty or too long", op ? op : "", "");
    memset(st, 0, sizeof *st);
    memcpy(st->op, op, strlen(op) + 1);
    return GQ_OK;
}

GQ_EXPORT gq_job_t *gq_job_new(const char *op)
{
    if (!op || !*op || strlen(op) >= GQ_MAX_NAME)
        return NULL;
    gq_job_t *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    job->prio = GQ_PRIO_BATCH;
    s_set_op(job, &job->stages[0], op);
    job->nstages = 1;
    return job;
}

GQ_EXPORT int gq_job_then(gq_job_t *job, const char *op)
{
    if (job->nstages >= GQ_JOB_MAX_STAGES)
        return s_bad(job, GQ_EINVAL, "pipeline longer than %s stages (adding %s)", "8", op);
    int rc = s_set_op(job, &job->stages[job->nstages], op);
    if (!rc)
        job->nstages++;
    return rc;
}

static void s_param_clear(s_jparam_t *p)
{
    if (p->v.type == GQ_PT_STR)
        free((char *)p->v.s);
    memset(p, 0, sizeof *p);
}

static int s_param(gq_job_t *job, const char *name, gq_value_t v)
{
    gq_jstage_t *st = &job->stages[job->nstages - 1];
    if (!name || !*name || strlen(name) >= GQ_MAX_NAME)
        return s_bad(job, GQ_EPARAM, "%s: param name '%.64s' is empty or too long", st->op,
                     name ? name : "");
    s_jparam_t *p = NULL;
    for (int i = 0; i < st->nparams; i++)
        if (!strcmp(st->params[i].name, name))
            p = &st->params[i];
    if (!p) {
        if (st->nparams >= GQ_MAX_PARAMS)
            return s_bad(job, GQ_EPARAM, "%s: too many params (adding '%s')", st->op, name);
        p = &st->params[st->nparams++];
    }
    s_param_clear(p);
    memcpy(p->name, name, strlen(name) + 1);
    if (v.type == GQ_PT_STR) {
        if (strlen(v.s) >= GQ_MAX_STR)
            return s_bad(job, GQ_EPARAM, "%s: param '%s' value too long", st->op, name);
        if (!(v.s = strdup(v.s)))
            return s_bad(job, GQ_ENOMEM, "%s: out of memory for param '%s'", st->op, name);
    }
    p->v = v;
    return GQ_OK;
}

GQ_EXPORT int gq_job_param_int(gq_job_t *job, const char *name, int64_t v)
{
    gq_value_t val = {.type = GQ_PT_INT, .i = v};
    return s_param(job, name, val);
}

GQ_EXPORT int gq_job_param_float(gq_job_t *job, const char *name, double v)
{
    gq_value_t val = {.type = GQ_PT_FLOAT, .f = v};
    return s_param(job, name, val);
}

GQ_EXPORT int gq_job_param_bool(gq_job_t *job, const char *name, int v)
{
    gq_value_t val = {.type = GQ_PT_BOOL, .i = v != 0};
    return s_param(job, name, val);
}

GQ_EXPORT int gq_job_param_str(gq_job_t *job, const char *name, const char *v)
{
    if (!v)
        return s_bad(job, GQ_EPARAM, "param '%s' value is NULL%s", name ? name : "", "");
    gq_value_t val = {.type = GQ_PT_STR, .s = v};
    return s_param(job, name, val);
}

GQ_EXPORT int gq_job_input(gq_job_t *job, gq_tensor_t *t)
{
    if (!t)
        return s_bad(job, GQ_EINVAL, "%s: input is NULL%s", job->stages[0].op, "");
    if (job->ninputs >= GQ_MAX_INPUTS)
        return s_bad(job, GQ_EINVAL, "%s: more than %s inputs", job->stages[0].op, "16");
    job->inputs[job->ninputs++] = gq_tensor_ref(t);
    return GQ_OK;
}

GQ_EXPORT void gq_job_set_timeout_ms(gq_job_t *job, int timeout_ms)
{
    job->timeout_ms = timeout_ms < 0 ? 0 : timeout_ms;
}

GQ_EXPORT void gq_job_set_priority(gq_job_t *job, gq_priority_t prio)
{
    if (prio >= GQ_PRIO_REALTIME && prio <= GQ_PRIO_BACKGROUND)
        job->prio = prio;
}

GQ_EXPORT int gq_job_cache(gq_job_t *job, gq_cache_policy_t policy, uint64_t ttl_ms)
{
    if (policy < GQ_CACHE_USE || policy > GQ_CACHE_REFRESH || ttl_ms > GQ_WIRE_MAX_TTL_MS)
        return GQ_EINVAL;
    job->cache_policy = policy;
    job->cache_ttl_ms = ttl_ms;
    return GQ_OK;
}

GQ_EXPORT gq_cache_source_t gq_job_cache_source(const gq_job_t *job)
{
    return job->state == GQ_JOB_DONE ? (gq_cache_source_t)job->cache_source : GQ_CACHE_COMPUTED;
}

GQ_EXPORT const char *gq_cache_source_name(int source)
{
    static const char *const names[] = {"computed", "memory", "disk", "redis", "shared"};
    return source >= 0 && source <= GQ_CACHE_SHARED ? names[source] : "?";
}

GQ_EXPORT void gq_job_set_user(gq_job_t *job, void *user)
{
    job->user = user;
}

GQ_EXPORT void *gq_job_user(const gq_job_t *job)
{
    return job->user;
}

void gq_job_reset_result(gq_job_t *job)
{
    for (int i = 0; i < job->noutputs; i++)
        gq_tensor_destroy(&job->outputs[i]);
    job->noutputs = 0;
    job->nbackends = 0;
    job->worker[0] = 0;
    job->cache_source = GQ_CACHE_COMPUTED;
    job->error[0] = 0;
    job->status = GQ_EAGAIN;
    memset(&job->timing, 0, sizeof job->timing);
}

GQ_EXPORT void gq_job_destroy(gq_job_t **job_p)
{
    if (!job_p || !*job_p)
        return;
    gq_job_t *job = *job_p;
    if (job->client)
        gq_client_forget(job->client, job);
    gq_job_reset_result(job);
    for (int i = 0; i < job->ninputs; i++)
        gq_tensor_destroy(&job->inputs[i]);
    for (int k = 0; k < job->nstages; k++)
        for (int i = 0; i < job->stages[k].nparams; i++)
            s_param_clear(&job->stages[k].params[i]);
    free(job);
    *job_p = NULL;
}

GQ_EXPORT int gq_job_status(const gq_job_t *job)
{
    return job->state == GQ_JOB_DONE ? job->status : GQ_EAGAIN;
}

GQ_EXPORT const char *gq_job_error(const gq_job_t *job)
{
    return job->state == GQ_JOB_DONE ? job->error : "";
}

GQ_EXPORT int gq_job_output_count(const gq_job_t *job)
{
    return job->state == GQ_JOB_DONE ? job->noutputs : 0;
}

GQ_EXPORT gq_tensor_t *gq_job_output(const gq_job_t *job, int index)
{
    if (job->state != GQ_JOB_DONE || index < 0 || index >= job->noutputs)
        return NULL;
    return job->outputs[index];
}

GQ_EXPORT void gq_job_timing(const gq_job_t *job, gq_job_timing_t *out)
{
    *out = job->timing;
}

GQ_EXPORT const char *gq_job_backend(const gq_job_t *job, int stage)
{
    if (stage < 0 || stage >= job->nbackends)
        return NULL;
    return job->backends[stage];
}

GQ_EXPORT const char *gq_job_worker(const gq_job_t *job)
{
    return job->worker;
}
