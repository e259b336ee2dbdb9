/* The Vulkan accelerator of the ONNX executor (onnx_accel.h): f32 MatMul, Gemm, Conv 1-D/2-D
 * (fused epilogues included), pools, BatchNormalization, Softmax, elementwise arithmetic and
 * activations, Transpose, and the reshape-like ops without copies (which steps:
 * vk_onnx_claim.c; their shaders: vk_onnx_ops.c). This file: the per-plan state, device
 * buffers and transfers.
 *
 * Like OpenCL's (worker/opencl/cl_onnx.c) it runs beside the backend, values staying on the
 * device between claimed steps. Buffers come from the backend's pool (be->ops->alloc): run
 * buffers go to the run's free list when no value holds them, are reused by later steps of
 * the run (the calling thread's stream runs its commands in order, and a transfer waits for
 * them) and go back to the pool when the run finishes; constants are uploaded once and kept
 * by the plan until it is freed, so plans must be freed before the backend (the worker does
 * so).
 *
 * Submissions: claimed steps stay recorded on the calling thread's stream (gq_vk_run_end
 * without submit), and so do uploads of run values (a staged copy); the steps go to the
 * device together when the host needs the device: a download (a CPU step reading a device
 * value, the run's outputs), sync (profiling), a constant's upload (first runs only) and
 * finish, which every run ends with, failed or not, so nothing recorded outlives a run
 * and the stream starts the next one empty. The stream's limits (its descriptor pool,
 * 256 dispatches; its scratch list) submit earlier. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "util.h"
#include "vk_onnx.h"

static gq_status s_be_fail(gq_backend_t *be, gq_status rc, const char *what, char *err,
                           size_t errlen)
{
    const char *why = be->ops->last_error ? be->ops->last_error(be) : NULL;
    gq_errf(err, errlen, "vulkan: onnx: %s: %s", what, why && *why ? why : gq_strerror(rc));
    return rc;
}

/* ---- buffers ---- */

static gq_status s_alloc(gq_vkx_plan_t *ps, size_t nbytes, bool konst, gq_vkx_buf_t **out,
                         char *err, size_t errlen)
{
    size_t want = nbytes < 4 ? 4 : nbytes;
    gq_vkx_buf_t **best = NULL;
    for (gq_vkx_buf_t **pp = &ps->free; !konst && *pp; pp = &(*pp)->next)
        if ((*pp)->cap >= want && (*pp)->cap / 2 <= want && (!best || (*pp)->cap < (*best)->cap))
            best = pp;
    if (best) {
        gq_vkx_buf_t *b = *best;
        *best = b->next;
        b->next = NULL;
        b->refs = 1;
        ps->live++;
        *out = b;
        return GQ_OK;
    }
    gq_vkx_buf_t *b = calloc(1, sizeof *b);
    if (!b) {
        gq_errf(err, errlen, "vulkan: onnx: out of memory");
        return GQ_ENOMEM;
    }
    gq_backend_t *be = ps->ax->be;
    gq_status rc = be->ops->alloc(be, want, &b->gb);
    if (rc) {
        free(b);
        return s_be_fail(be, rc, konst ? "a constant's buffer" : "a run buffer", err, errlen);
    }
    b->cap = want;
    b->konst = konst;
    if (konst) {
        b->next = ps->consts;
        ps->consts = b;
    } else {
        b->refs = 1;
        ps->live++;
    }
    *out = b;
    return GQ_OK;
}

/* After a submission (the recorded steps go with it): err names them, the steps recorded
 * from now on are counted afresh. */
static gq_status s_submitted(gq_vkx_plan_t *ps, gq_status rc, const char *why, const char *e2,
                             char *err, size_t errlen)
{
    if (rc && ps->first >= 0)
        gq_errf(err, errlen, "vulkan: onnx: running steps %d..%d (one submission) before %s: %s",
                ps->first, ps->last, why, e2);
    else if (rc)
        gq_errf(err, errlen, "vulkan: onnx: %s: %s", why, e2);
    ps->first = -1;
    return rc;
}

gq_status gq_vkx_flush(gq_vkx_plan_t *ps, const char *why, char *err, size_t errlen)
{
    char e2[GQ_ERRLEN];
    gq_status rc = gq_vk_flush(ps->ax->vk, NULL, e2, sizeof e2);
    return s_submitted(ps, rc, why, e2, err, errlen);
}

static void s_unref(gq_vkx_plan_t *ps, gq_vkx_buf_t *b)
{
    if (!b || b->konst || --b->refs > 0)
        return;
    ps->live--;
    b->next = ps->free;
    ps->free = b;
}

gq_status gq_vkx_alloc(gq_vkx_plan_t *ps, size_t nbytes, gq_vkx_buf_t **out, char *err,
                       size_t errlen)
{
    return s_alloc(ps, nbytes, false, out, err, errlen);
}

void gq_vkx_unref(gq_vkx_plan_t *ps, gq_vkx_buf_t *b)
{
    s_unref(ps, b);
}

static void s_free_list(gq_backend_t *be, gq_vkx_buf_t *b)
{
    for (gq_vkx_buf_t *nx; b; b = nx) {
        nx = b->next;
        be->ops->free(be, &b->gb);
        free(b);
    }
}

/* ---- the accelerator's ops ---- */

static void s_plan_free(gq_onnx_accel_t *base, void *state)
{
    (void)base;
    gq_vkx_plan_t *ps = state;
    if (!ps)
        return;
    s_free_list(ps->ax->be, ps->free); /* none after a finished run */
    s_free_list(ps->ax->be, ps->consts);
    free(ps->konst);
    free(ps->stepop);
    free(ps);
}

static void *s_plan_new(gq_onnx_accel_t *base, const gq_onnx_plan_t *p, char *err, size_t errlen)
{
    gq_vkx_plan_t *ps = calloc(1, sizeof *ps);
    if (!ps || !(ps->konst = calloc((size_t)p->nslots + 1, sizeof *ps->konst)) ||
        !(ps->stepop = calloc((size_t)p->nsteps + 1, sizeof *ps->stepop))) {
        if (ps)
            free(ps->konst);
        free(ps);
        gq_errf(err, errlen, "vulkan: onnx: out of memory for the plan's state");
        return NULL;
    }
    ps->ax = base->impl;
    ps->p = p;
    ps->first = -1;
    for (int k = 0; k < p->nsteps; k++)
        ps->stepop[k] = gq_vkx_step_op(p, k);
    return ps;
}

static bool s_claim(void *state, int k, gq_onnx_val_t *const *in, int nin, gq_tdesc_t *out_desc,
                    int nout)
{
    gq_vkx_plan_t *ps = state;
    if (k < 0 || k >= ps->p->nsteps || ps->stepop[k] < 0)
        return false;
    return gq_vkx_claim(ps, k, in, nin, out_desc, nout);
}

static gq_status s_run(void *state, int k, gq_onnx_val_t *const *in, int nin, gq_onnx_val_t *out,
                       int nout, char *err, size_t errlen)
{
    gq_vkx_plan_t *ps = state;
    if (k < 0 || k >= ps->p->nsteps) {
        gq_errf(err, errlen, "vulkan: onnx: step %d runs without its claim", k);
        return GQ_EINVAL;
    }
    return gq_vkx_run(ps, k, in, nin, out, nout, err, errlen);
}

/* A constant's bytes, now: it must hold them even if the recorded steps fail. */
static gq_status s_upload_const(gq_vkx_plan_t *ps, gq_vkx_buf_t *b, const gq_onnx_val_t *v,
                                char *err, size_t errlen)
{
    gq_backend_t *be = ps->ax->be;
    gq_status rc = gq_vkx_flush(ps, "uploading a constant", err, errlen);
    if (!rc && (rc = be->ops->upload(be, &b->gb, v->data, v->nbytes)))
        s_be_fail(be, rc, "uploading a constant", err, errlen);
    return rc;
}

/* A run value's bytes, after the recorded steps (which may still read a reused buffer):
 * recorded too, as a staged copy, when steps are. */
static gq_status s_upload_run(gq_vkx_plan_t *ps, gq_vkx_buf_t *b, const gq_onnx_val_t *v, char *err,
                              size_t errlen)
{
    gq_vk_t *vk = ps->ax->vk;
    gq_vk_stream_t *st;
    char e2[GQ_ERRLEN];
    gq_status rc = gq_vk_run_begin(vk, &st, NULL, e2, sizeof e2);
    if (!rc) {
        rc = gq_vk_upload(vk, st, b->gb.handle, v->data, v->nbytes, NULL, e2, sizeof e2);
        rc = gq_vk_run_end(vk, st, rc, false, NULL, e2, sizeof e2);
    }
    if (rc)
        gq_errf(err, errlen, "vulkan: onnx: uploading a value of %zu bytes: %s", v->nbytes, e2);
    return rc;
}

static gq_status s_upload(void *state, int sl, gq_onnx_val_t *v, bool constant, char *err,
                          size_t errlen)
{
    gq_vkx_plan_t *ps = state;
    bool keep = constant && sl >= 0 && sl < ps->p->nslots;
    if (keep && ps->konst[sl]) {
        v->dev = ps->konst[sl];
        return GQ_OK;
    }
    gq_vkx_buf_t *b = NULL;
    gq_status rc = s_alloc(ps, v->nbytes, keep, &b, err, errlen);
    if (rc)
        return rc;
    if (v->nbytes)
        rc = keep ? s_upload_const(ps, b, v, err, errlen) : s_upload_run(ps, b, v, err, errlen);
    if (rc) {
        s_unref(ps, b); /* a constant's stays on the list, freed with the plan */
        return rc;
    }
    if (keep)
        ps->konst[sl] = b;
    v->dev = b;
    return GQ_OK;
}

static gq_status s_download(void *state, const gq_onnx_val_t *v, void *dst, char *err,
                            size_t errlen)
{
    gq_vkx_plan_t *ps = state;
    gq_vk_t *vk = ps->ax->vk;
    const gq_vkx_buf_t *b = v->dev;
    if (!b || b->cap < v->nbytes) {
        gq_errf(err, errlen,
                "vulkan: onnx: a value of %zu bytes has no device buffer that holds it", v->nbytes);
        return GQ_EINVAL;
    }
    if (!v->nbytes)
        return GQ_OK;
    /* in the recorded steps' submission (a staged copy) or after it (memcpy) */
    gq_vk_stream_t *st;
    char e2[GQ_ERRLEN];
    gq_status rc = gq_vk_run_begin(vk, &st, NULL, e2, sizeof e2);
    if (!rc) {
        rc = gq_vk_xfer(vk, st, b->gb.handle, 0, dst, v->nbytes, false, NULL, e2, sizeof e2);
        rc = gq_vk_run_end(vk, st, rc, false, NULL, e2, sizeof e2);
    }
    return s_submitted(ps, rc, "downloading a value", e2, err, errlen);
}

static void s_release(void *state, void *dev)
{
    s_unref(state, dev);
}

static gq_status s_sync(void *state, char *err, size_t errlen)
{
    return gq_vkx_flush(state, "timing them", err, errlen);
}

static gq_status s_finish(void *state, char *err, size_t errlen)
{
    gq_vkx_plan_t *ps = state;
    gq_status rc = gq_vkx_flush(ps, "the end of the run", err, errlen);
    if (ps->live)
        GQ_WARN("vulkan: onnx: %d device buffers still held at the end of a run", ps->live);
    s_free_list(ps->ax->be, ps->free);
    ps->free = NULL;
    return rc;
}

static void s_destroy(gq_onnx_accel_t *base)
{
    free(base->impl);
}

static const gq_onnx_accel_ops_t s_ops = {
    .name = "vulkan",
    .plan_new = s_plan_new,
    .plan_free = s_plan_free,
    .claim = s_claim,
    .run = s_run,
    .upload = s_upload,
    .download = s_download,
    .release = s_release,
    .finish = s_finish,
    .sync = s_sync,
    .destroy = s_destroy,
};

gq_onnx_accel_t *gq_onnx_accel_vulkan_new(struct gq_backend *be, char *err, size_t errlen)
{
    gq_vk_stats_t st;
    if (!be || !be->ops || strcmp(be->ops->name, "vulkan") || !be->impl ||
        gq_backend_vulkan_stats(be, &st) != GQ_OK) {
        gq_errf(err, errlen, "onnx: the Vulkan accelerator needs a vulkan backend");
        return NULL;
    }
    gq_vkx_t *ax = calloc(1, sizeof *ax);
    if (!ax) {
        gq_errf(err, errlen, "vulkan: onnx: out of memory");
        return NULL;
    }
    ax->base.ops = &s_ops;
    ax->base.impl = ax;
    ax->be = be;
    ax->vk = gq_vk_of(be);
    return &ax->base;
}
