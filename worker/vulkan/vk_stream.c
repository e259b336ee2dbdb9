/* The Vulkan backend's command streams: one per calling thread (command pool, command
 * buffer, fence, descriptor pool), found through a thread-local pointer, and what op
 * families record on them (dispatches, copies, fills, writes, scratch buffers) up to the
 * submission. See vk_backend.c for the threading model.
 *
 * A stream records until something submits: an op that asks to (gq_vk_run_end with
 * submit), a transfer, sync, free or flush (which also wait), or a full descriptor pool or
 * scratch list (the limits of one recording: sets and scratch buffers are recycled only
 * once the device has run the commands using them). So consecutive ops of a thread that
 * do not submit share one submission. One command buffer: a recording starts once the
 * previous submission has completed. Scratch buffers of ended ops go back to their pool
 * whenever the stream is idle (nothing recorded, nothing in flight), never while a
 * command recorded or submitted before may still use them. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util.h"
#include "vk_int.h"

#define S_SETS 256 /* descriptor sets per stream between two waits */
/* "op: " before a message, or nothing when op is NULL (transfers, the ONNX accelerator's). */
#define S_OP(op) (op) ? (op) : "", (op) ? ": " : ""
#define S_FENCE_TIMEOUT_NS (120ull * 1000 * 1000 * 1000)

static _Thread_local uint64_t s_tls_id;
static _Thread_local gq_vk_stream_t *s_tls_stream;

void gq_vk_stream_free(gq_vk_t *vk, gq_vk_stream_t *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->nscratch; i++) /* the device is idle (or lost) by now */
        gq_dev_pool_put(st->scratch[i].pool, st->scratch[i].h, st->scratch[i].nbytes);
    if (st->dpool)
        vkDestroyDescriptorPool(vk->dev, st->dpool, NULL);
    if (st->fence)
        vkDestroyFence(vk->dev, st->fence, NULL);
    if (st->cpool)
        vkDestroyCommandPool(vk->dev, st->cpool, NULL); /* frees cb */
    pthread_mutex_destroy(&st->mu);
    free(st);
}

static VkResult s_stream_init(gq_vk_t *vk, gq_vk_stream_t *st)
{
    VkCommandPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                  .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                  .queueFamilyIndex = vk->qfamily};
    VkResult rc = vkCreateCommandPool(vk->dev, &pi, NULL, &st->cpool);
    if (rc != VK_SUCCESS)
        return rc;
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = st->cpool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    if ((rc = vkAllocateCommandBuffers(vk->dev, &ai, &st->cb)) != VK_SUCCESS)
        return rc;
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if ((rc = vkCreateFence(vk->dev, &fi, NULL, &st->fence)) != VK_SUCCESS)
        return rc;
    VkDescriptorPoolSize ps = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                               .descriptorCount = S_SETS * GQ_VK_MAX_BINDINGS};
    VkDescriptorPoolCreateInfo di = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                     .maxSets = S_SETS,
                                     .poolSizeCount = 1,
                                     .pPoolSizes = &ps};
    return vkCreateDescriptorPool(vk->dev, &di, NULL, &st->dpool);
}

/* The calling thread's stream, made on its first call. NULL with err set on failure. */
gq_vk_stream_t *gq_vk_stream(gq_vk_t *vk, const char *op, char *err, size_t errlen)
{
    if (s_tls_id == vk->id)
        return s_tls_stream;
    pthread_t me = pthread_self();
    gq_vk_stream_t *st = NULL;
    pthread_mutex_lock(&vk->mu);
    for (int i = 0; i < vk->nstreams && !st; i++)
        if (pthread_equal(vk->streams[i]->owner, me))
            st = vk->streams[i];
    if (!st && vk->nstreams < GQ_VK_MAX_STREAMS) {
        VkResult rc = VK_ERROR_OUT_OF_HOST_MEMORY;
        st = calloc(1, sizeof *st);
        if (st) {
            pthread_mutex_init(&st->mu, NULL);
            st->owner = me;
            rc = s_stream_init(vk, st);
        }
        if (rc != VK_SUCCESS) {
            if (st)
                gq_vk_stream_free(vk, st);
            st = NULL;
            gq_vk_error(vk, err, errlen, op, "creating a command stream", rc);
        } else {
            vk->streams[vk->nstreams++] = st;
        }
    } else if (!st) {
        /* More threads than streams: share, by thread, so each sticks to one stream. */
        uintptr_t h = (uintptr_t)me;
        st = vk->streams[(h ^ (h >> 12)) % GQ_VK_MAX_STREAMS];
    }
    pthread_mutex_unlock(&vk->mu);
    if (st) {
        s_tls_id = vk->id;
        s_tls_stream = st;
    }
    return st;
}

/* Called whenever the stream may be idle: once it is (nothing recorded, nothing in
 * flight), the scratch buffers of ended ops go back to their pools. After a failed
 * submission or wait too: the commands never ran, or the device is lost. */
static void s_idle(gq_vk_stream_t *st)
{
    if (st->recording || st->inflight || !st->nended)
        return;
    for (int i = 0; i < st->nended; i++)
        gq_dev_pool_put(st->scratch[i].pool, st->scratch[i].h, st->scratch[i].nbytes);
    st->nscratch -= st->nended;
    memmove(st->scratch, st->scratch + st->nended, (size_t)st->nscratch * sizeof st->scratch[0]);
    st->nended = 0;
}

/* Waits for the stream's submission, if one is in flight (the stream is not recording). */
static gq_status s_wait(gq_vk_t *vk, gq_vk_stream_t *st, const char *op, char *err, size_t errlen)
{
    if (!st->inflight) {
        s_idle(st);
        return GQ_OK;
    }
    VkResult rc = vkWaitForFences(vk->dev, 1, &st->fence, VK_TRUE, S_FENCE_TIMEOUT_NS);
    st->inflight = false;
    s_idle(st);
    if (rc == VK_TIMEOUT) /* a device that does not finish in 2 minutes is hung */
        rc = VK_ERROR_DEVICE_LOST;
    return rc == VK_SUCCESS ? GQ_OK : gq_vk_error(vk, err, errlen, op, "vkWaitForFences", rc);
}

static gq_status s_begin(gq_vk_t *vk, gq_vk_stream_t *st, const char *op, char *err, size_t errlen)
{
    if (st->recording)
        return GQ_OK;
    gq_status s = s_wait(vk, st, op, err, errlen);
    if (s)
        return s;
    vkResetDescriptorPool(vk->dev, st->dpool, 0);
    st->nsets = 0;
    VkResult rc = vkResetCommandBuffer(st->cb, 0);
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    if (rc == VK_SUCCESS)
        rc = vkBeginCommandBuffer(st->cb, &bi);
    if (rc != VK_SUCCESS)
        return gq_vk_error(vk, err, errlen, op, "vkBeginCommandBuffer", rc);
    st->recording = true;
    st->ncmds = 0;
    return GQ_OK;
}

/* Orders a command after everything recorded before it on the stream. */
static void s_barrier(gq_vk_stream_t *st, VkPipelineStageFlags dst_stage, VkAccessFlags dst_access)
{
    if (!st->ncmds)
        return;
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask =
                              VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = dst_access};
    vkCmdPipelineBarrier(st->cb,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         dst_stage, 0, 1, &mb, 0, NULL, 0, NULL);
}

#define S_ALL_STAGES (VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT)
#define S_ALL_ACCESS                                                                               \
    (VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |        \
     VK_ACCESS_TRANSFER_WRITE_BIT)

/* Ends and submits what the stream recorded; with wait, waits for it too. On failure the
 * stream is left idle, its next op recording afresh. */
gq_status gq_vk_submit(gq_vk_t *vk, gq_vk_stream_t *st, bool wait, const char *op, char *err,
                       size_t errlen)
{
    if (!st->recording)
        return wait ? s_wait(vk, st, op, err, errlen) : GQ_OK;
    /* Device writes become visible to the host once the fence signals. */
    s_barrier(st, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
    st->recording = false;
    VkResult rc = vkEndCommandBuffer(st->cb);
    if (rc == VK_SUCCESS && !st->ncmds) {
        s_idle(st);
        return GQ_OK;
    }
    if (rc != VK_SUCCESS) {
        s_idle(st);
        return gq_vk_error(vk, err, errlen, op, "vkEndCommandBuffer", rc);
    }
    if ((rc = vkResetFences(vk->dev, 1, &st->fence)) != VK_SUCCESS) {
        s_idle(st);
        return gq_vk_error(vk, err, errlen, op, "vkResetFences", rc);
    }
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                       .commandBufferCount = 1,
                       .pCommandBuffers = &st->cb};
    rc = (VkResult)gq_vk_inject(vk, GQ_VK_FAULT_SUBMIT);
    if (rc == VK_SUCCESS) {
        pthread_mutex_lock(&vk->qmu);
        rc = vkQueueSubmit(vk->queue, 1, &si, st->fence);
        pthread_mutex_unlock(&vk->qmu);
    }
    if (rc != VK_SUCCESS) {
        s_idle(st);
        return gq_vk_error(vk, err, errlen, op, "vkQueueSubmit", rc);
    }
    atomic_fetch_add(&vk->submits, 1);
    st->inflight = true;
    return wait ? s_wait(vk, st, op, err, errlen) : GQ_OK;
}

uint32_t gq_vk_groups(const gq_vk_t *vk, uint64_t items, uint32_t local)
{
    uint64_t g = (items + local - 1) / local;
    if (g > vk->caps.max_groups)
        g = vk->caps.max_groups;
    return g ? (uint32_t)g : 1;
}

gq_status gq_vk_dispatch(gq_vk_t *vk, gq_vk_stream_t *st, const char *shader, const int32_t *spec,
                         int nspec, gq_vk_mem_t *const *bufs, int nbufs, const void *push,
                         uint32_t push_size, uint32_t groups_x, uint32_t groups_y, const char *op,
                         char *err, size_t errlen)
{
    if (push_size > GQ_VK_PUSH_MAX || push_size % 4) {
        gq_errf(err, errlen, "%s: vulkan: %u bytes of push constants", op, push_size);
        return GQ_EINTERNAL;
    }
    VkPipeline p = gq_vk_pipeline(vk, shader, spec, nspec, nbufs, op, err, errlen);
    if (!p)
        return GQ_EBACKEND;
    gq_status s = s_begin(vk, st, op, err, errlen);
    if (!s && st->nsets == S_SETS) { /* descriptor pool full: run what is recorded */
        s = gq_vk_submit(vk, st, true, op, err, errlen);
        if (!s)
            s = s_begin(vk, st, op, err, errlen);
    }
    if (s)
        return s;
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = st->dpool,
                                      .descriptorSetCount = 1,
                                      .pSetLayouts = &vk->dsl[nbufs]};
    VkDescriptorSet set;
    VkResult rc = vkAllocateDescriptorSets(vk->dev, &ai, &set);
    if (rc != VK_SUCCESS)
        return gq_vk_error(vk, err, errlen, op, "vkAllocateDescriptorSets", rc);
    st->nsets++;
    VkDescriptorBufferInfo bi[GQ_VK_MAX_BINDINGS];
    VkWriteDescriptorSet wr[GQ_VK_MAX_BINDINGS];
    for (int i = 0; i < nbufs; i++) {
        VkDeviceSize range = bufs[i]->size;
        if (range > vk->caps.max_range)
            range = vk->caps.max_range;
        bi[i] = (VkDescriptorBufferInfo){.buffer = bufs[i]->buf, .offset = 0, .range = range};
        wr[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                       .dstSet = set,
                                       .dstBinding = (uint32_t)i,
                                       .descriptorCount = 1,
                                       .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                       .pBufferInfo = &bi[i]};
    }
    vkUpdateDescriptorSets(vk->dev, (uint32_t)nbufs, wr, 0, NULL);
    s_barrier(st, S_ALL_STAGES, S_ALL_ACCESS);
    vkCmdBindPipeline(st->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p);
    vkCmdBindDescriptorSets(st->cb, VK_PIPELINE_BIND_POINT_COMPUTE, vk->pl[nbufs], 0, 1, &set, 0,
                            NULL);
    if (push_size)
        vkCmdPushConstants(st->cb, vk->pl[nbufs], VK_SHADER_STAGE_COMPUTE_BIT, 0, push_size, push);
    vkCmdDispatch(st->cb, groups_x ? groups_x : 1, groups_y ? groups_y : 1, 1);
    st->ncmds++;
    return GQ_OK;
}

gq_status gq_vk_copy(gq_vk_t *vk, gq_vk_stream_t *st, gq_vk_mem_t *src, gq_vk_mem_t *dst,
                     size_t nbytes, const char *op, char *err, size_t errlen)
{
    if (!nbytes)
        return GQ_OK;
    gq_status s = s_begin(vk, st, op, err, errlen);
    if (s)
        return s;
    s_barrier(st, S_ALL_STAGES, S_ALL_ACCESS);
    VkBufferCopy r = {.size = nbytes};
    vkCmdCopyBuffer(st->cb, src->buf, dst->buf, 1, &r);
    st->ncmds++;
    return GQ_OK;
}

gq_status gq_vk_fill(gq_vk_t *vk, gq_vk_stream_t *st, gq_vk_mem_t *dst, size_t nbytes, uint32_t v,
                     const char *op, char *err, size_t errlen)
{
    if (!nbytes)
        return GQ_OK;
    gq_status s = s_begin(vk, st, op, err, errlen);
    if (s)
        return s;
    s_barrier(st, S_ALL_STAGES, S_ALL_ACCESS);
    vkCmdFillBuffer(st->cb, dst->buf, 0, nbytes, v);
    st->ncmds++;
    return GQ_OK;
}

gq_status gq_vk_write(gq_vk_t *vk, gq_vk_stream_t *st, gq_vk_mem_t *dst, size_t off,
                      const void *src, size_t nbytes, const char *op, char *err, size_t errlen)
{
    if (off % 4 || nbytes % 4 || off + nbytes > dst->size) {
        gq_errf(err, errlen, "%s: vulkan: write of %zu bytes at %zu into a buffer of %llu", op,
                nbytes, off, (unsigned long long)dst->size);
        return GQ_EINTERNAL;
    }
    gq_status s = s_begin(vk, st, op, err, errlen);
    if (s)
        return s;
    s_barrier(st, S_ALL_STAGES, S_ALL_ACCESS);
    /* vkCmdUpdateBuffer: the bytes travel in the command buffer, so the write is ordered
     * with the stream's other commands whatever the memory type. */
    for (size_t done = 0; done < nbytes;) {
        size_t n = nbytes - done < 65536 ? nbytes - done : 65536;
        vkCmdUpdateBuffer(st->cb, dst->buf, off + done, n, (const char *)src + done);
        done += n;
    }
    st->ncmds++;
    return GQ_OK;
}

/* A buffer from pool kept on the stream until the current op has ended and the stream
 * is idle. A full list submits and waits, giving back those of ended ops. */
static gq_status s_keep(gq_vk_t *vk, gq_vk_stream_t *st, gq_dev_pool_t *pool, size_t nbytes,
                        gq_vk_mem_t **out, const char *op, char *err, size_t errlen)
{
    *out = NULL;
    if (st->nscratch == GQ_VK_MAX_SCRATCH && st->nended) {
        gq_status s = gq_vk_submit(vk, st, true, op, err, errlen);
        if (s)
            return s;
    }
    if (st->nscratch == GQ_VK_MAX_SCRATCH) {
        gq_errf(err, errlen, "%s%svulkan: more than %d scratch buffers in one op", S_OP(op),
                GQ_VK_MAX_SCRATCH);
        return GQ_EINTERNAL;
    }
    void *h = NULL;
    size_t n = nbytes ? nbytes : 4;
    int rc = pool == vk->pool ? gq_vk_inject(vk, GQ_VK_FAULT_ALLOC) : 0;
    if (!rc)
        rc = gq_dev_pool_get(pool, n, &h);
    if (rc) {
        gq_status s =
            gq_vk_error(vk, err, errlen, op,
                        pool == vk->pool ? "vkAllocateMemory" : "vkAllocateMemory(staging)", rc);
        size_t used = strlen(err);
        if (used + 2 < errlen)
            snprintf(err + used, errlen - used, " (%zu bytes of scratch)", n);
        return s;
    }
    st->scratch[st->nscratch].h = h;
    st->scratch[st->nscratch].nbytes = n;
    st->scratch[st->nscratch++].pool = pool;
    *out = h;
    return GQ_OK;
}

gq_status gq_vk_scratch(gq_vk_t *vk, gq_vk_stream_t *st, size_t nbytes, gq_vk_mem_t **out,
                        const char *op, char *err, size_t errlen)
{
    return s_keep(vk, st, vk->pool, nbytes, out, op, err, errlen);
}

/* Host <-> device bytes at offset off of m, after everything the stream queued. Mapped
 * memory: memcpy once the stream is idle. Otherwise through a staging buffer and a copy
 * appended to what the stream recorded, submitted with it. */
gq_status gq_vk_xfer(gq_vk_t *vk, gq_vk_stream_t *st, gq_vk_mem_t *m, size_t off, void *host,
                     size_t nbytes, bool write, const char *op, char *err, size_t errlen)
{
    gq_status s;
    if (m->map || !nbytes) {
        if ((s = gq_vk_submit(vk, st, true, op, err, errlen)) || !nbytes)
            return s;
        if (write)
            memcpy((char *)m->map + off, host, nbytes);
        else
            memcpy(host, (const char *)m->map + off, nbytes);
        return GQ_OK;
    }
    void *h = NULL;
    int rc = gq_dev_pool_get(vk->stage, nbytes, &h);
    if (rc)
        return gq_vk_error(vk, err, errlen, op, "vkAllocateMemory(staging)", rc);
    gq_vk_mem_t *sm = h;
    if (write)
        memcpy(sm->map, host, nbytes);
    s = s_begin(vk, st, op, err, errlen);
    if (!s) {
        s_barrier(st, S_ALL_STAGES, S_ALL_ACCESS);
        VkBufferCopy r = {
            .srcOffset = write ? 0 : off, .dstOffset = write ? off : 0, .size = nbytes};
        vkCmdCopyBuffer(st->cb, write ? sm->buf : m->buf, write ? m->buf : sm->buf, 1, &r);
        st->ncmds++;
        s = gq_vk_submit(vk, st, true, op, err, errlen);
    }
    if (!s && !write)
        memcpy(host, sm->map, nbytes);
    gq_dev_pool_put(vk->stage, h, nbytes);
    return s;
}

gq_status gq_vk_upload(gq_vk_t *vk, gq_vk_stream_t *st, gq_vk_mem_t *dst, const void *src,
                       size_t nbytes, const char *op, char *err, size_t errlen)
{
    if (nbytes > dst->size) {
        gq_errf(err, errlen, "%s%svulkan: upload of %zu bytes into a buffer of %llu", S_OP(op),
                nbytes, (unsigned long long)dst->size);
        return GQ_EINTERNAL;
    }
    if (dst->map && (!st->recording || !st->ncmds))
        return gq_vk_xfer(vk, st, dst, 0, (void *)src, nbytes, true, op, err, errlen);
    if (!nbytes)
        return GQ_OK;
    gq_vk_mem_t *sm;
    gq_status s = s_keep(vk, st, vk->stage, nbytes, &sm, op, err, errlen);
    if (!s)
        s = s_begin(vk, st, op, err, errlen); /* a full scratch list may have submitted */
    if (s)
        return s;
    memcpy(sm->map, src, nbytes);
    s_barrier(st, S_ALL_STAGES, S_ALL_ACCESS);
    VkBufferCopy r = {.size = nbytes};
    vkCmdCopyBuffer(st->cb, sm->buf, dst->buf, 1, &r);
    st->ncmds++;
    return GQ_OK;
}

gq_status gq_vk_read(gq_vk_t *vk, gq_vk_stream_t *st, void *dst, gq_vk_mem_t *src, size_t off,
                     size_t nbytes, const char *op, char *err, size_t errlen)
{
    return gq_vk_xfer(vk, st, src, off, dst, nbytes, false, op, err, errlen);
}

gq_status gq_vk_run_begin(gq_vk_t *vk, gq_vk_stream_t **st, const char *op, char *err,
                          size_t errlen)
{
    if (atomic_load(&vk->lost)) {
        gq_errf(err, errlen, "%s%svulkan: device '%s' was lost", S_OP(op), vk->info.name);
        return GQ_EDEVICE_LOST;
    }
    if (!(*st = gq_vk_stream(vk, op, err, errlen)))
        return GQ_EBACKEND;
    pthread_mutex_lock(&(*st)->mu);
    return GQ_OK;
}

gq_status gq_vk_run_end(gq_vk_t *vk, gq_vk_stream_t *st, gq_status rc, bool submit, const char *op,
                        char *err, size_t errlen)
{
    char err2[GQ_ERRLEN];
    st->nended = st->nscratch;
    gq_status rc2 = GQ_OK;
    if (submit)
        rc2 = gq_vk_submit(vk, st, false, op, err2, sizeof err2);
    else
        s_idle(st);
    if (!rc && rc2) {
        rc = rc2;
        gq_errf(err, errlen, "%s", err2);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

gq_status gq_vk_flush(gq_vk_t *vk, const char *op, char *err, size_t errlen)
{
    gq_vk_stream_t *st = gq_vk_stream(vk, op, err, errlen);
    if (!st)
        return GQ_EBACKEND;
    pthread_mutex_lock(&st->mu);
    gq_status rc = gq_vk_submit(vk, st, true, op, err, errlen);
    pthread_mutex_unlock(&st->mu);
    return rc;
}
