/* The Vulkan backend: one physical device, a logical device with one compute queue, the
 * shaders of shaders/ as SPIR-V modules, compute pipelines made once per (shader,
 * specialization) through a VkPipelineCache persisted on disk, a buffer pool, and a
 * command stream per calling thread.
 *
 * Threads: each calling thread records into its own stream (command pool, command buffer,
 * fence, descriptor pool), found through a thread-local pointer, so recording never takes
 * a shared lock; the queue is shared, and vkQueueSubmit (which needs the queue externally
 * synchronised) is serialised by a mutex. A run records the op and submits it without
 * waiting; the stream's next use waits for that submission (one in flight per stream), so
 * the host prepares the next op while the device runs this one. The ONNX accelerator
 * (vk_onnx.c) instead leaves a run's steps recorded, one submission per run, until the
 * host needs a result (vk_stream.c). Transfers, free and sync submit what is recorded and
 * wait. Past GQ_VK_MAX_STREAMS threads, streams are shared and their mutex serialises the
 * sharers (who then also submit each other's recorded commands, in order). A job's calls
 * all come from the thread running it, so its commands are ordered by its stream alone;
 * free waits for the caller's stream (recorded commands included) before a buffer goes
 * back to the pool, and scratch buffers go back only once their stream is idle, so
 * another thread never gets a buffer a recorded or submitted command still uses.
 *
 * Memory: on CPU devices (lavapipe) and integrated GPUs whose device-local memory is
 * host-visible and coherent, buffers are mapped once and transfers are memcpy (after the
 * stream is idle); otherwise buffers are device-local and transfers go through
 * host-visible staging buffers from a second pool (GQ_VK_STAGING=1 forces that path). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend.h"
#include "util.h"
#include "vk_int.h"

static const gq_vk_family_t *const s_families[] = {
    &gq_vk_tensor_family,
    &gq_vk_dsp_family,
};
#define S_NFAMILIES ((int)(sizeof s_families / sizeof s_families[0]))

static atomic_uint_fast64_t s_next_id = 1;
static _Thread_local char s_tls_err[GQ_ERRLEN]; /* last_error */

const gq_vk_caps_t *gq_vk_caps(const gq_vk_t *vk)
{
    return &vk->caps;
}

/* A failure that means the device is gone marks the backend lost: from then on it
 * declines every op, and the worker serves on the CPU. */
gq_status gq_vk_error(gq_vk_t *vk, char *err, size_t errlen, const char *op, const char *call,
                      int code)
{
    gq_status rc = gq_vk_fail(err, errlen, op, call, code);
    if (rc == GQ_EDEVICE_LOST && !atomic_exchange(&vk->lost, 1))
        GQ_ERROR("vulkan: device '%s' lost (%s): declining every op from now on", vk->info.name,
                 err ? err : "");
    return rc;
}

int gq_vk_inject(gq_vk_t *vk, gq_vk_fault_t kind)
{
    if (atomic_load(&vk->fault_left[kind]) <= 0)
        return 0;
    if (vk->fault_skip[kind] > 0) {
        vk->fault_skip[kind]--;
        return 0;
    }
    if (atomic_fetch_sub(&vk->fault_left[kind], 1) <= 0)
        return 0;
    return vk->fault_code[kind];
}

static const gq_vk_family_t *s_family(const char *op)
{
    for (int f = 0; f < S_NFAMILIES; f++)
        if (!strncmp(op, s_families[f]->prefix, strlen(s_families[f]->prefix)))
            return s_families[f];
    return NULL;
}

/* Shaders index with 32-bit integers and bind at most maxStorageBufferRange bytes. */
static bool s_fits(const gq_vk_t *vk, const gq_tdesc_t *d)
{
    int64_t n = gq_tdesc_numel(d);
    return n < INT32_MAX && gq_tdesc_nbytes(d) <= vk->caps.max_range;
}

static bool s_supports_op(gq_backend_t *be, const gq_args_t *a, const gq_tdesc_t *in, int nin)
{
    gq_vk_t *vk = be->impl;
    if (!a || !a->op || atomic_load(&vk->lost))
        return false;
    const gq_vk_family_t *fam = s_family(a->op->name);
    if (!fam)
        return false;
    if (in) {
        if (nin < 0 || nin > GQ_MAX_INPUTS)
            return false;
        for (int i = 0; i < nin; i++)
            if (!s_fits(vk, &in[i]))
                return false;
        gq_tdesc_t out[GQ_MAX_OUTPUTS];
        int nout = 0;
        char err[GQ_ERRLEN];
        if (gq_op_infer(a, in, nin, out, &nout, err, sizeof err))
            return false;
        for (int i = 0; i < nout; i++)
            if (!s_fits(vk, &out[i]))
                return false;
    }
    return fam->supports(vk, a, in, nin);
}

static gq_status s_alloc(gq_backend_t *be, size_t nbytes, gq_buffer_t *out)
{
    gq_vk_t *vk = be->impl;
    memset(out, 0, sizeof *out);
    if (atomic_load(&vk->lost)) {
        gq_errf(s_tls_err, sizeof s_tls_err, "vulkan: device '%s' was lost", vk->info.name);
        return GQ_EDEVICE_LOST;
    }
    void *h = NULL;
    int rc = gq_vk_inject(vk, GQ_VK_FAULT_ALLOC);
    if (!rc)
        rc = gq_dev_pool_get(vk->pool, nbytes ? nbytes : 4, &h);
    if (rc) {
        char err[GQ_ERRLEN];
        gq_status st = gq_vk_error(vk, err, sizeof err, NULL, "vkAllocateMemory", rc);
        gq_errf(s_tls_err, sizeof s_tls_err, "%s (%zu bytes)", err, nbytes);
        GQ_WARN("%s", s_tls_err);
        return st;
    }
    out->owner = be;
    out->handle = h;
    out->nbytes = nbytes;
    return GQ_OK;
}

static void s_free(gq_backend_t *be, gq_buffer_t *buf)
{
    gq_vk_t *vk = be->impl;
    if (!buf || !buf->handle)
        return;
    char err[GQ_ERRLEN];
    gq_vk_stream_t *st = gq_vk_stream(vk, NULL, err, sizeof err);
    if (st) {
        pthread_mutex_lock(&st->mu);
        if (gq_vk_submit(vk, st, true, NULL, err, sizeof err))
            GQ_WARN("%s (freeing a buffer of %zu bytes)", err, buf->nbytes);
        pthread_mutex_unlock(&st->mu);
    }
    gq_dev_pool_put(vk->pool, buf->handle, buf->nbytes ? buf->nbytes : 4);
    memset(buf, 0, sizeof *buf);
}

static gq_status s_transfer(gq_backend_t *be, gq_vk_mem_t *m, void *host, size_t have, bool write,
                            size_t nbytes)
{
    gq_vk_t *vk = be->impl;
    char err[GQ_ERRLEN];
    if (!nbytes)
        return GQ_OK;
    if (!m || !host || nbytes > have)
        return GQ_EINVAL;
    if (atomic_load(&vk->lost)) {
        gq_errf(s_tls_err, sizeof s_tls_err, "vulkan: device '%s' was lost", vk->info.name);
        return GQ_EDEVICE_LOST;
    }
    gq_vk_stream_t *st = gq_vk_stream(vk, NULL, err, sizeof err);
    if (!st) {
        gq_errf(s_tls_err, sizeof s_tls_err, "%s", err);
        return GQ_EBACKEND;
    }
    pthread_mutex_lock(&st->mu);
    gq_status s = gq_vk_xfer(vk, st, m, 0, host, nbytes, write, NULL, err, sizeof err);
    pthread_mutex_unlock(&st->mu);
    if (s) {
        gq_errf(s_tls_err, sizeof s_tls_err, "%s (%s %zu bytes)", err,
                write ? "uploading" : "downloading", nbytes);
        GQ_WARN("%s", s_tls_err);
    }
    return s;
}

static gq_status s_upload(gq_backend_t *be, gq_buffer_t *dst, const void *src, size_t nbytes)
{
    if (!dst)
        return GQ_EINVAL;
    return s_transfer(be, dst->handle, (void *)src, dst->nbytes, true, nbytes);
}

static gq_status s_download(gq_backend_t *be, void *dst, const gq_buffer_t *src, size_t nbytes)
{
    if (!src)
        return GQ_EINVAL;
    return s_transfer(be, src->handle, dst, src->nbytes, false, nbytes);
}

static gq_status s_run(gq_backend_t *be, const gq_args_t *a, const gq_tdesc_t *in_desc,
                       gq_buffer_t *in, int nin, const gq_tdesc_t *out_desc, gq_buffer_t *out,
                       int nout, char *err, size_t errlen)
{
    gq_vk_t *vk = be->impl;
    void *hin[GQ_MAX_INPUTS], *hout[GQ_MAX_OUTPUTS];
    gq_status rc =
        gq_backend_check_run(be, a, in_desc, in, nin, out_desc, out, nout, hin, hout, err, errlen);
    if (rc)
        return rc;
    const char *op = a->op->name;
    if (atomic_load(&vk->lost)) {
        gq_errf(err, errlen, "%s: vulkan: device '%s' was lost", op, vk->info.name);
        return GQ_EDEVICE_LOST;
    }
    gq_vk_mem_t *min[GQ_MAX_INPUTS], *mout[GQ_MAX_OUTPUTS];
    for (int i = 0; i < nin; i++)
        min[i] = hin[i];
    for (int i = 0; i < nout; i++)
        mout[i] = hout[i];
    if (!s_supports_op(be, a, in_desc, nin)) {
        gq_errf(err, errlen, "%s: vulkan: no shader for these inputs", op);
        return GQ_EUNSUPPORTED;
    }
    gq_vk_stream_t *st;
    if ((rc = gq_vk_run_begin(vk, &st, op, err, errlen)))
        return rc;
    rc = s_family(op)->run(vk, st, a, in_desc, min, nin, out_desc, mout, nout, err, errlen);
    return gq_vk_run_end(vk, st, rc, true, op, err, errlen);
}

static gq_status s_sync(gq_backend_t *be)
{
    gq_vk_t *vk = be->impl;
    char err[GQ_ERRLEN];
    gq_vk_stream_t *st = gq_vk_stream(vk, NULL, err, sizeof err);
    if (!st)
        return GQ_EBACKEND;
    pthread_mutex_lock(&st->mu);
    gq_status rc = gq_vk_submit(vk, st, true, NULL, err, sizeof err);
    pthread_mutex_unlock(&st->mu);
    if (rc) {
        gq_errf(s_tls_err, sizeof s_tls_err, "%s", err);
        GQ_WARN("%s", err);
    }
    return rc;
}

static const char *s_last_error(gq_backend_t *be)
{
    (void)be;
    return s_tls_err;
}

static int s_devices(gq_backend_t *be, gq_device_info_t *out, int max)
{
    if (!be || !out || max < 1)
        return 0;
    out[0] = ((gq_vk_t *)be->impl)->info;
    return 1;
}

static void s_destroy(gq_backend_t *be)
{
    gq_vk_t *vk = be->impl;
    if (!vk)
        return;
    if (vk->dev) {
        char err[GQ_ERRLEN];
        for (int i = 0; i < vk->nstreams && !atomic_load(&vk->lost); i++)
            gq_vk_submit(vk, vk->streams[i], true, NULL, err, sizeof err);
        vkDeviceWaitIdle(vk->dev);
        for (int i = 0; i < vk->nstreams; i++) /* after the wait: their scratch goes back */
            gq_vk_stream_free(vk, vk->streams[i]);
        gq_vk_pipelines_destroy(vk);
        gq_dev_pool_destroy(&vk->pool);
        gq_dev_pool_destroy(&vk->stage);
        vkDestroyDevice(vk->dev, NULL);
    }
    if (vk->inst)
        vkDestroyInstance(vk->inst, NULL);
    free(vk->pipes);
    free(vk->modules);
    pthread_mutex_destroy(&vk->mu);
    pthread_mutex_destroy(&vk->pmu);
    pthread_mutex_destroy(&vk->qmu);
    free(vk);
    be->impl = NULL;
}

gq_status gq_backend_vulkan_stats(gq_backend_t *be, gq_vk_stats_t *out)
{
    if (!be || !be->ops || strcmp(be->ops->name, "vulkan") || !out)
        return GQ_EINVAL;
    gq_vk_t *vk = be->impl;
    memset(out, 0, sizeof *out);
    out->pcache = vk->pcache_origin;
    snprintf(out->cache_file, sizeof out->cache_file, "%s", vk->cache_file);
    out->pcache_loaded_bytes = vk->pcache_loaded;
    out->fp64 = vk->caps.fp64;
    out->int8 = vk->caps.int8;
    out->int16 = vk->caps.int16;
    out->direct = vk->direct;
    pthread_mutex_lock(&vk->mu);
    out->streams = vk->nstreams;
    pthread_mutex_unlock(&vk->mu);
    pthread_mutex_lock(&vk->pmu);
    out->pipelines = vk->npipes;
    out->pipeline_us = vk->pipeline_us;
    pthread_mutex_unlock(&vk->pmu);
    out->submits = atomic_load(&vk->submits);
    gq_dev_pool_stats(vk->pool, &out->pool);
    gq_dev_pool_stats(vk->stage, &out->staging);
    return GQ_OK;
}

void gq_backend_vulkan_inject(gq_backend_t *be, gq_vk_fault_t kind, int code, int after, int count)
{
    if (!be || !be->ops || strcmp(be->ops->name, "vulkan") || kind < 0 || kind >= GQ_VK_FAULT_COUNT)
        return;
    gq_vk_t *vk = be->impl;
    vk->fault_code[kind] = code;
    vk->fault_skip[kind] = after;
    atomic_store(&vk->fault_left[kind], count);
}

gq_vk_t *gq_vk_of(gq_backend_t *be)
{
    if (!be || !be->ops || strcmp(be->ops->name, "vulkan"))
        return NULL;
    return be->impl;
}

static const gq_backend_ops_t s_vk_ops = {
    .name = "vulkan",
    .init = gq_vk_init,
    .supports_op = s_supports_op,
    .alloc = s_alloc,
    .free = s_free,
    .wrap_host = NULL,
    .upload = s_upload,
    .download = s_download,
    .run = s_run,
    .sync = s_sync,
    .devices = s_devices,
    .destroy = s_destroy,
    .last_error = s_last_error,
};

gq_backend_t *gq_backend_vulkan_new(const gq_backend_config_t *cfg, char *err, size_t errlen)
{
    gq_backend_t *be = calloc(1, sizeof *be);
    gq_vk_t *vk = calloc(1, sizeof *vk);
    if (!be || !vk) {
        gq_errf(err, errlen, "vulkan: out of memory creating the backend");
        free(be);
        free(vk);
        return NULL;
    }
    vk->id = atomic_fetch_add(&s_next_id, 1);
    pthread_mutex_init(&vk->mu, NULL);
    pthread_mutex_init(&vk->pmu, NULL);
    pthread_mutex_init(&vk->qmu, NULL);
    be->ops = &s_vk_ops;
    be->impl = vk;
    if (be->ops->init(be, cfg, err, errlen) != GQ_OK) {
        gq_backend_destroy(&be);
        return NULL;
    }
    return be;
}
