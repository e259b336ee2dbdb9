/* gq_wmodels: the models a worker has loaded, by digest. The worker's main thread fetches a
 * model from the broker the first time a job names it (jobs wait meanwhile), loads and plans
 * it, then compute threads run it through gq_wmodels_run (the executor's hosted-op hook for
 * onnx.run), on the OpenCL accelerator when the worker's first backend is OpenCL. Runs of
 * one model are serialised (the plan owns its scratch); different models run in parallel. */
#ifndef GQ_WMODELS_H
#define GQ_WMODELS_H

#include "exec.h"
#include "optable.h"
#include "tensor.h"

typedef struct gq_wmodels gq_wmodels_t;

typedef enum {
    GQ_WMODEL_ABSENT = 0,
    GQ_WMODEL_FETCHING, /* asked the broker, bytes not here yet */
    GQ_WMODEL_READY,
} gq_wmodel_state_t;

gq_wmodels_t *gq_wmodels_new(void);
void gq_wmodels_destroy(gq_wmodels_t **self_p);

gq_wmodel_state_t gq_wmodels_state(gq_wmodels_t *self, const char *digest);

/* Marks digest as asked for; returns 0, or -1 when out of memory. */
int gq_wmodels_fetching(gq_wmodels_t *self, const char *digest);

/* Loads and plans the bytes the broker sent for digest (which must match them). On failure
 * err says why and the entry stays fetching: the caller drops it (gq_wmodels_drop), so a
 * later job asks again. */
gq_status gq_wmodels_add(gq_wmodels_t *self, const char *digest, const void *bytes, size_t n,
                         char *err, size_t errlen);

/* Drops a digest that could not be fetched. */
void gq_wmodels_drop(gq_wmodels_t *self, const char *digest);

/* Forgets every fetch still in progress (after a reconnect its answer may never come). */
void gq_wmodels_forget_fetches(gq_wmodels_t *self);

/* The hosted-op hook (gq_exec_t.hosted) for onnx.run; ctx is the gq_wmodels_t. When ex's
 * first backend is OpenCL, plans run with the OpenCL accelerator (onnx_accel.h): the steps
 * it declines run on the CPU and count as fallbacks of "onnx.<OpType>" from opencl in ex
 * (strict mode: the job fails instead), *backend says "opencl" when it ran steps. A run the
 * device fails (out of memory, lost) runs again on the CPU, unless strict. */
gq_status gq_wmodels_run(void *ctx, gq_exec_t *ex, const gq_args_t *a, const gq_view_t *in, int nin,
                         gq_view_t *out, int *nout, const char **backend, char *err, size_t errlen);

#endif
