#include "models.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "map.h"
#include "onnx_exec.h"
#include "util.h"

typedef struct {
    char digest[33];
    gq_wmodel_state_t state;
    gq_onnx_model_t *model;
    gq_onnx_plan_t *plan;
    pthread_mutex_t run_mu;
} s_entry_t;

struct gq_wmodels {
    pthread_mutex_t mu; /* the map: the main thread adds, compute threads look up */
    gq_map_t *map;
};

static uint64_t s_key(const char *digest)
{
    uint64_t k = gq_hash_bytes(digest, strlen(digest), 0x776d6f64ULL);
    return k ? k : 1;
}

static void s_entry_free(s_entry_t *e)
{
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

gq_status gq_wmodels_run(void *ctx, const gq_args_t *a, const gq_view_t *in, int nin,
                         gq_view_t *out, int *nout, char *err, size_t errlen)
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
    pthread_mutex_lock(&e->run_mu);
    gq_status rc = gq_onnx_plan_run(e->plan, in, nin, out, n, err, errlen);
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
