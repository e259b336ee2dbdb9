#include "models.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "map.h"
#include "onnx_accel.h"
#include "onnx_exec.h"
#include "util.h"

typedef struct {
    char digest[33];
    gq_wmodel_state_t state;
    gq_onnx_model_t *model;
    gq_onnx_plan_t *plan;
    gq_onnx_accel_t *accel; /* the accelerator the plan was given (NULL: none yet) */
    pthread_mutex_t run_mu;
} s_entry_t;

struct gq_wmodels {
    pthread_mutex_t mu; /* the map: the main thread adds, compute threads look up */
    gq_map_t *map;
    /* The accelerator on the worker's first backend when that is OpenCL or Vulkan: made on the
     * first run that can use it (under mu), dropped for good when it cannot start or its device is
     * lost; plans get it on their next run. */
    gq_onnx_accel_t *accel;
    const gq_backend_t *accel_be;
    bool accel_off;
};

/* What a run's fallback hook needs: the executor to count in, and its backend's name. */
typedef struct {
    gq_exec_t *ex;
    const char *backend;
} s_fallback_ctx_t;

static uint64_t s_key(const char *digest)
{
    uint64_t k = gq_hash_bytes(digest, strlen(digest), 0x776d6f64ULL);
    return k ? k : 1;
}

static void s_entry_free(s_entry_t *e)
{
    if (e->plan) {
        char err[GQ_ERRLEN];
        gq_onnx_plan_set_accel(e->plan, NULL, err, sizeof err);
    }
    gq_onnx_plan_destroy(&e->plan);
    gq_onnx_model_destroy(&e->model);
    pthread_mutex_destroy(&e->run_mu);
    free(e);
}

static void s_free_cb(uint64_t key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    s_entry_free(value);
}

gq_wmodels_t *gq_wmodels_new(void)
{
    gq_wmodels_t *self = calloc(1, sizeof *self);
    if (!self || !(self->map = gq_map_new())) {
        free(self);
        return NULL;
    }
    pthread_mutex_init(&self->mu, NULL);
    return self;
}

void gq_wmodels_destroy(gq_wmodels_t **self_p)
{
    gq_wmodels_t *self = *self_p;
    if (!self)
        return;
    gq_map_each(self->map, s_free_cb, NULL);
    gq_map_destroy(&self->map);
    gq_onnx_accel_destroy(&self->accel); /* after every plan that used it */
    pthread_mutex_destroy(&self->mu);
    free(self);
    *self_p = NULL;
}

/* Under mu. */
static s_entry_t *s_find(gq_wmodels_t *self, const char *digest)
{
    s_entry_t *e = gq_map_get(self->map, s_key(digest));
    return e && !strcmp(e->digest, digest) ? e : NULL;
}

gq_wmodel_state_t gq_wmodels_state(gq_wmodels_t *self, const char *digest)
{
    pthread_mutex_lock(&self->mu);
    const s_entry_t *e = s_find(self, digest);
    gq_wmodel_state_t st = e ? e->state : GQ_WMODEL_ABSENT;
    pthread_mutex_unlock(&self->mu);
    return st;
}

int gq_wmodels_fetching(gq_wmodels_t *self, const char *digest)
{
    if (!gq_is_digest(digest))
        return -1;
    s_entry_t *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    snprintf(e->digest, sizeof e->digest, "%s", digest);
    e->state = GQ_WMODEL_FETCHING;
    pthread_mutex_init(&e->run_mu, NULL);
    pthread_mutex_lock(&self->mu);
    int exists = s_find(self, digest) != NULL;
    int rc = exists ? 0 : gq_map_put(self->map, s_key(digest), e);
    pthread_mutex_unlock(&self->mu);
    if (exists || rc)
        s_entry_free(e);
    return rc ? -1 : 0;
}

void gq_wmodels_drop(gq_wmodels_t *self, const char *digest)
{
    pthread_mutex_lock(&self->mu);
    s_entry_t *e = s_find(self, digest);
    if (e && e->state != GQ_WMODEL_READY)
        gq_map_take(self->map, s_key(digest));
    else
        e = NULL;
    pthread_mutex_unlock(&self->mu);
    if (e)
        s_entry_free(e);
}

gq_status gq_wmodels_add(gq_wmodels_t *self, const char *digest, const void *bytes, size_t n,
                         char *err, size_t errlen)
{
    gq_status code = GQ_OK;
    gq_onnx_model_t *m = gq_onnx_model_parse(bytes, n, NULL, NULL, &code, err, errlen);
    gq_onnx_plan_t *plan = NULL;
    if (m && strcmp(gq_onnx_model_digest(m), digest)) {
        gq_errf(err, errlen, "model %s: the broker sent bytes of model %s", digest,
                gq_onnx_model_digest(m));
        code = GQ_EPROTO;
    } else if (m) {
        plan = gq_onnx_plan_new(m, &code, err, errlen);
    }
    if (!plan) {
        gq_onnx_model_destroy(&m);
        return code ? code : GQ_EFORMAT;
    }
    pthread_mutex_lock(&self->mu);
    s_entry_t *e = s_find(self, digest);
    if (e && e->state == GQ_WMODEL_FETCHING) {
        e->model = m;
        e->plan = plan;
        e->state = GQ_WMODEL_READY;
        m = NULL;
        plan = NULL;
    }
    pthread_mutex_unlock(&self->mu);
    gq_onnx_plan_destroy(&plan); /* an answer nobody asked for */
    gq_onnx_model_destroy(&m);
    return GQ_OK;
}

/* The accelerator for runs on ex: OpenCL's or Vulkan's when that is ex's first backend
 * (the worker's choice of device: a GPU backend that is there but below the CPU is not
 * used); NULL when there is none or it cannot start (logged once). */
static gq_onnx_accel_t *s_accel(gq_wmodels_t *self, gq_exec_t *ex)
{
    if (!ex || ex->nbackends < 2)
        return NULL;
    const char *name = ex->backends[0]->ops->name;
    gq_onnx_accel_t *(*make)(struct gq_backend *, char *, size_t) =
        !strcmp(name, "opencl")   ? gq_onnx_accel_opencl_new
        : !strcmp(name, "vulkan") ? gq_onnx_accel_vulkan_new
                                  : NULL;
    if (!make)
        return NULL;
    gq_onnx_accel_t *ax = NULL;
    pthread_mutex_lock(&self->mu);
    if (!self->accel_off && !self->accel) {
        char err[GQ_ERRLEN];
        self->accel = make(ex->backends[0], err, sizeof err);
        self->accel_be = ex->backends[0];
        if (self->accel)
            GQ_INFO("onnx: models run on %s, step by step; declined steps on the cpu", name);
        else
            GQ_WARN("onnx: no %s accelerator (%s): models run on the cpu", name, err);
        self->accel_off = !self->accel;
    }
    if (self->accel && !self->accel_off && self->accel_be == ex->backends[0])
        ax = self->accel;
    pthread_mutex_unlock(&self->mu);
    return ax;
}

/* The plan's fallback hook: a step the accelerator declined counts as a fallback of
 * "onnx.<OpType>" from its backend; strict mode refuses it. */
static bool s_on_fallback(void *ctx, const char *op_type)
{
    s_fallback_ctx_t *f = ctx;
    if (f->ex->strict)
        return false;
    char op[64];
    snprintf(op, sizeof op, "onnx.%s", op_type);
    gq_exec_count_fallback(f->ex, op, f->backend);
    return true;
}

/* Runs entry e's plan (under its run_mu) with accelerator ax when it has one: a run that
 * fails with the device out of memory or lost is run again on the CPU (counted as a
 * fallback of onnx.run), unless strict; a lost device stops the accelerator for good. */
static gq_status s_run_plan(gq_wmodels_t *self, s_entry_t *e, gq_onnx_accel_t *ax, gq_exec_t *ex,
                            const gq_view_t *in, int nin, gq_view_t *out, int n,
                            const char **backend, char *err, size_t errlen)
{
    if (e->accel != ax) {
        char aerr[GQ_ERRLEN];
        if (gq_onnx_plan_set_accel(e->plan, ax, aerr, sizeof aerr)) {
            GQ_WARN("onnx: model %s runs on the cpu: %s", e->digest, aerr);
            gq_onnx_plan_set_accel(e->plan, NULL, aerr, sizeof aerr);
            ax = NULL;
        }
        e->accel = ax;
    }
    if (!e->accel)
        return gq_onnx_plan_run(e->plan, in, nin, out, n, err, errlen);
    s_fallback_ctx_t fctx = {ex, e->accel->ops->name};
    gq_onnx_plan_on_fallback(e->plan, s_on_fallback, &fctx);
    gq_status rc = gq_onnx_plan_run(e->plan, in, nin, out, n, err, errlen);
    if ((rc == GQ_EDEVICE_OOM || rc == GQ_EDEVICE_LOST) && !ex->strict) {
        GQ_WARN("onnx: model %s: %s; running it on the cpu", e->digest, err);
        gq_exec_count_fallback(ex, "onnx.run", e->accel->ops->name);
        if (rc == GQ_EDEVICE_LOST) {
            pthread_mutex_lock(&self->mu);
            self->accel_off = true; /* every plan leaves it on its next run */
            pthread_mutex_unlock(&self->mu);
        }
        gq_onnx_plan_accel_enable(e->plan, false);
        rc = gq_onnx_plan_run(e->plan, in, nin, out, n, err, errlen);
        gq_onnx_plan_accel_enable(e->plan, true);
    }
    gq_onnx_plan_on_fallback(e->plan, NULL, NULL);
    int on_dev = 0;
    gq_onnx_plan_last_run(e->plan, &on_dev, NULL);
    if (rc == GQ_OK && on_dev > 0)
        *backend = e->accel->ops->name;
    return rc;
}

gq_status gq_wmodels_run(void *ctx, gq_exec_t *ex, const gq_args_t *a, const gq_view_t *in, int nin,
                         gq_view_t *out, int *nout, const char **backend, char *err, size_t errlen)
{
    gq_wmodels_t *self = ctx;
    const char *digest = gq_args_str(a, "model");
    pthread_mutex_lock(&self->mu);
    s_entry_t *e = s_find(self, digest);
    if (e && e->state != GQ_WMODEL_READY)
        e = NULL;
    pthread_mutex_unlock(&self->mu);
    if (!e) {
        gq_errf(err, errlen, "%s: model %s is not loaded on this worker", a->op->name, digest);
        return GQ_ENOMODEL;
    }
    int want = gq_onnx_plan_input_count(e->plan), n = gq_onnx_plan_output_count(e->plan);
    if (nin != want || n > GQ_MAX_OUTPUTS) {
        gq_errf(err, errlen, "%s: model %s takes %d inputs, the job gives %d", a->op->name, digest,
                want, nin);
        return GQ_ESHAPE;
    }
    /* Entries are never removed once ready, so e outlives the lookup. */
    gq_onnx_accel_t *ax = s_accel(self, ex);
    pthread_mutex_lock(&e->run_mu);
    gq_status rc = s_run_plan(self, e, ax, ex, in, nin, out, n, backend, err, errlen);
    pthread_mutex_unlock(&e->run_mu);
    if (rc == GQ_OK)
        *nout = n;
    return rc;
}

typedef struct {
    uint64_t keys[256];
    int n;
} s_fetching_t;

static void s_fetching_cb(uint64_t key, void *value, void *arg)
{
    s_fetching_t *f = arg;
    if (((s_entry_t *)value)->state == GQ_WMODEL_FETCHING && f->n < 256)
        f->keys[f->n++] = key;
}

void gq_wmodels_forget_fetches(gq_wmodels_t *self)
{
    s_fetching_t f = {.n = 0};
    pthread_mutex_lock(&self->mu);
    gq_map_each(self->map, s_fetching_cb, &f);
    for (int i = 0; i < f.n; i++)
        s_entry_free(gq_map_take(self->map, f.keys[i]));
    pthread_mutex_unlock(&self->mu);
}
