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
 * the host prepares the next op while the device runs this one. Transfers, free and sync
 * wait. Past S_MAX_STREAMS threads, streams are shared and their mutex serialises the
 * sharers. A job's calls all come from the thread running it, so its commands are ordered
 * by its stream alone; free waits for the caller's stream before a buffer goes back to
 * the pool, so another thread never gets a buffer a submitted command still uses.
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
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>
#include "backend.h"
#include "util.h"
#include "vk_int.h"

#define S_MAX_STREAMS 16
#define S_SETS 256 /* descriptor sets per stream between two waits */
#define S_POOL_CAP_MAX ((size_t)256 << 20)
#define S_MAX_SCRATCH 16
#define S_FENCE_TIMEOUT_NS (120ull * 1000 * 1000 * 1000)

static const gq_vk_family_t *const s_families[] = {
    &gq_vk_tensor_family,
    &gq_vk_dsp_family,
};
#define S_NFAMILIES ((int)(sizeof s_families / sizeof s_families[0]))

struct gq_vk_stream {
    pthread_mutex_t mu;
    pthread_t owner;
    VkCommandPool cpool;
    VkCommandBuffer cb;
    VkFence fence;
    VkDescriptorPool dpool;
    bool recording; /* cb is between begin and end */
    bool inflight;  /* submitted, fence not yet waited for */
    int ncmds;      /* commands recorded since begin */
    int nsets;      /* descriptor sets allocated since the pool was reset */
    void *scratch[S_MAX_SCRATCH];
    size_t scratch_bytes[S_MAX_SCRATCH];
    int nscratch;
};

typedef struct {
    int shader;
    int nspec, nbufs;
    int32_t spec[GQ_VK_MAX_SPEC];
    VkPipeline pipe;
} s_pipe_t;

struct gq_vk {
    uint64_t id; /* tags the thread-local stream pointer */
    VkInstance inst;
    VkPhysicalDevice pd;
    VkDevice dev;
    VkQueue queue;
    uint32_t qfamily;
    pthread_mutex_t qmu;
    gq_vk_dev_t d;
    gq_device_info_t info;
    gq_vk_caps_t caps;
    uint32_t mem_type, stage_type;
    bool direct;
    VkDescriptorSetLayout dsl[GQ_VK_MAX_BINDINGS + 1];
    VkPipelineLayout pl[GQ_VK_MAX_BINDINGS + 1];
    /* pipelines */
    pthread_mutex_t pmu;
    VkPipelineCache pcache;
    gq_vk_pcache_origin_t pcache_origin;
    size_t pcache_loaded;
    char cache_dir[512], cache_file[512];
    uint8_t key[GQ_VK_KEY_BYTES];
    VkShaderModule *modules; /* per gq_vk_spirv entry, made on first use */
    s_pipe_t *pipes;
    int npipes, cappipes;
    uint64_t pipeline_us;
    /* memory */
    gq_vk_pool_t *pool, *stage;
    /* streams */
    pthread_mutex_t mu;
    gq_vk_stream_t *streams[S_MAX_STREAMS];
    int nstreams;
    atomic_uint_fast64_t submits;
    atomic_int lost;
    atomic_int fault_left[GQ_VK_FAULT_COUNT];
    int fault_code[GQ_VK_FAULT_COUNT];
    int fault_skip[GQ_VK_FAULT_COUNT];
};

static atomic_uint_fast64_t s_next_id = 1;
static _Thread_local uint64_t s_tls_id;
static _Thread_local gq_vk_stream_t *s_tls_stream;
static _Thread_local char s_tls_err[GQ_ERRLEN]; /* last_error */

const gq_vk_caps_t *gq_vk_caps(const gq_vk_t *vk)
{
    return &vk->caps;
}

/* A failure that means the device is gone marks the backend lost: from then on it
 * declines every op, and the worker serves on the CPU. */
static gq_status s_fail(gq_vk_t *vk, char *err, size_t errlen, const char *op, const char *call,
                        int code)
{
    gq_status rc = gq_vk_fail(err, errlen, op, call, code);
    if (rc == GQ_EDEVICE_LOST && !atomic_exchange(&vk->lost, 1))
        GQ_ERROR("vulkan: device '%s' lost (%s): declining every op from now on", vk->info.name,
                 err ? err : "");
    return rc;
}

static int s_inject(gq_vk_t *vk, gq_vk_fault_t kind)
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

/* ---- buffers ---- */

/* A buffer with its own memory of type; mapped for good when map (host-visible types). */
static int s_make(gq_vk_t *vk, uint32_t type, bool map, size_t nbytes, void **handle)
{
    gq_vk_mem_t *m = calloc(1, sizeof *m);
    if (!m)
        return VK_ERROR_OUT_OF_HOST_MEMORY;
    VkBufferCreateInfo bi = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = nbytes,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                 VK_BUFFER_USAGE_TRANSFER_DST_BIT,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VkResult rc = vkCreateBuffer(vk->dev, &bi, NULL, &m->buf);
    VkMemoryRequirements req;
    if (rc == VK_SUCCESS) {
        vkGetBufferMemoryRequirements(vk->dev, m->buf, &req);
        if (!(req.memoryTypeBits & (1u << type)))
            rc = VK_ERROR_FEATURE_NOT_PRESENT;
    }
    if (rc == VK_SUCCESS) {
        VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                                   .allocationSize = req.size,
                                   .memoryTypeIndex = type};
        rc = vkAllocateMemory(vk->dev, &ai, NULL, &m->mem);
    }
    if (rc == VK_SUCCESS)
        rc = vkBindBufferMemory(vk->dev, m->buf, m->mem, 0);
    if (rc == VK_SUCCESS && map)
        rc = vkMapMemory(vk->dev, m->mem, 0, VK_WHOLE_SIZE, 0, &m->map);
    if (rc != VK_SUCCESS) {
        if (m->mem)
            vkFreeMemory(vk->dev, m->mem, NULL);
        if (m->buf)
            vkDestroyBuffer(vk->dev, m->buf, NULL);
        free(m);
        return rc;
    }
    m->size = nbytes;
    *handle = m;
    return 0;
}

static int s_pool_make(void *ctx, size_t nbytes, void **handle)
{
    gq_vk_t *vk = ctx;
    return s_make(vk, vk->mem_type, vk->direct, nbytes, handle);
}

static int s_stage_make(void *ctx, size_t nbytes, void **handle)
{
    gq_vk_t *vk = ctx;
    return s_make(vk, vk->stage_type, true, nbytes, handle);
}

static void s_pool_release(void *ctx, void *handle)
{
    gq_vk_t *vk = ctx;
    gq_vk_mem_t *m = handle;
    if (m->map)
        vkUnmapMemory(vk->dev, m->mem);
    vkDestroyBuffer(vk->dev, m->buf, NULL);
    vkFreeMemory(vk->dev, m->mem, NULL);
    free(m);
}

/* ---- streams ---- */

static void s_stream_free(gq_vk_t *vk, gq_vk_stream_t *st)
{
    if (!st)
        return;
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
static gq_vk_stream_t *s_stream(gq_vk_t *vk, const char *op, char *err, size_t errlen)
{
    if (s_tls_id == vk->id)
        return s_tls_stream;
    pthread_t me = pthread_self();
    gq_vk_stream_t *st = NULL;
    pthread_mutex_lock(&vk->mu);
    for (int i = 0; i < vk->nstreams && !st; i++)
        if (pthread_equal(vk->streams[i]->owner, me))
            st = vk->streams[i];
    if (!st && vk->nstreams < S_MAX_STREAMS) {
        VkResult rc = VK_ERROR_OUT_OF_HOST_MEMORY;
        st = calloc(1, sizeof *st);
        if (st) {
            pthread_mutex_init(&st->mu, NULL);
            st->owner = me;
            rc = s_stream_init(vk, st);
        }
        if (rc != VK_SUCCESS) {
            if (st)
                s_stream_free(vk, st);
            st = NULL;
            s_fail(vk, err, errlen, op, "creating a command stream", rc);
        } else {
            vk->streams[vk->nstreams++] = st;
        }
    } else if (!st) {
        /* More threads than streams: share, by thread, so each sticks to one stream. */
        uintptr_t h = (uintptr_t)me;
        st = vk->streams[(h ^ (h >> 12)) % S_MAX_STREAMS];
    }
    pthread_mutex_unlock(&vk->mu);
    if (st) {
        s_tls_id = vk->id;
        s_tls_stream = st;
    }
    return st;
}

/* Waits for the stream's submission, if one is in flight. */
static gq_status s_wait(gq_vk_t *vk, gq_vk_stream_t *st, const char *op, char *err, size_t errlen)
{
    if (!st->inflight)
        return GQ_OK;
    VkResult rc = vkWaitForFences(vk->dev, 1, &st->fence, VK_TRUE, S_FENCE_TIMEOUT_NS);
    st->inflight = false;
    if (rc == VK_TIMEOUT) /* a device that does not finish in 2 minutes is hung */
        rc = VK_ERROR_DEVICE_LOST;
    return rc == VK_SUCCESS ? GQ_OK : s_fail(vk, err, errlen, op, "vkWaitForFences", rc);
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
        return s_fail(vk, err, errlen, op, "vkBeginCommandBuffer", rc);
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

/* Ends and submits what the stream recorded; with wait, waits for it too. */
static gq_status s_submit(gq_vk_t *vk, gq_vk_stream_t *st, bool wait, const char *op, char *err,
                          size_t errlen)
{
    if (!st->recording)
        return wait ? s_wait(vk, st, op, err, errlen) : GQ_OK;
    /* Device writes become visible to the host once the fence signals. */
    s_barrier(st, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
    st->recording = false;
    VkResult rc = vkEndCommandBuffer(st->cb);
    if (rc != VK_SUCCESS)
        return s_fail(vk, err, errlen, op, "vkEndCommandBuffer", rc);
    if (!st->ncmds)
        return GQ_OK;
    if ((rc = vkResetFences(vk->dev, 1, &st->fence)) != VK_SUCCESS)
        return s_fail(vk, err, errlen, op, "vkResetFences", rc);
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                       .commandBufferCount = 1,
                       .pCommandBuffers = &st->cb};
    rc = (VkResult)s_inject(vk, GQ_VK_FAULT_SUBMIT);
    if (rc == VK_SUCCESS) {
        pthread_mutex_lock(&vk->qmu);
        rc = vkQueueSubmit(vk->queue, 1, &si, st->fence);
        pthread_mutex_unlock(&vk->qmu);
    }
    if (rc != VK_SUCCESS)
        return s_fail(vk, err, errlen, op, "vkQueueSubmit", rc);
    atomic_fetch_add(&vk->submits, 1);
    st->inflight = true;
    return wait ? s_wait(vk, st, op, err, errlen) : GQ_OK;
}

/* ---- pipelines ---- */

static int s_shader_index(const char *name)
{
    int lo = 0, hi = gq_vk_nspirv - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(gq_vk_spirv[mid].name, name);
        if (!c)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* The pipeline of (shader, spec, nbufs), made on first use; NULL with err set. */
static VkPipeline s_pipeline(gq_vk_t *vk, const char *shader, const int32_t *spec, int nspec,
                             int nbufs, const char *op, char *err, size_t errlen)
{
    int si = s_shader_index(shader);
    if (si < 0 || nspec > GQ_VK_MAX_SPEC || nbufs < 1 || nbufs > GQ_VK_MAX_BINDINGS) {
        gq_errf(err, errlen,
                "%s: vulkan: no shader '%s' (or %d specialization constants, %d "
                "buffers)",
                op, shader, nspec, nbufs);
        return VK_NULL_HANDLE;
    }
    VkPipeline p = VK_NULL_HANDLE;
    pthread_mutex_lock(&vk->pmu);
    for (int i = 0; i < vk->npipes && !p; i++) {
        s_pipe_t *e = &vk->pipes[i];
        if (e->shader == si && e->nspec == nspec && e->nbufs == nbufs &&
            !memcmp(e->spec, spec, sizeof *spec * (size_t)nspec))
            p = e->pipe;
    }
    if (p) {
        pthread_mutex_unlock(&vk->pmu);
        return p;
    }
    uint64_t t0 = gq_now_us();
    VkResult rc = VK_SUCCESS;
    if (!vk->modules[si]) {
        VkShaderModuleCreateInfo mi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                       .codeSize = gq_vk_spirv[si].bytes,
                                       .pCode = gq_vk_spirv[si].code};
        rc = vkCreateShaderModule(vk->dev, &mi, NULL, &vk->modules[si]);
    }
    if (rc == VK_SUCCESS && vk->npipes == vk->cappipes) {
        int cap = vk->cappipes ? vk->cappipes * 2 : 64;
        s_pipe_t *np = realloc(vk->pipes, sizeof *np * (size_t)cap);
        if (np) {
            vk->pipes = np;
            vk->cappipes = cap;
        } else {
            rc = VK_ERROR_OUT_OF_HOST_MEMORY;
        }
    }
    if (rc == VK_SUCCESS) {
        VkSpecializationMapEntry me[GQ_VK_MAX_SPEC];
        for (int i = 0; i < nspec; i++)
            me[i] = (VkSpecializationMapEntry){
                .constantID = (uint32_t)i, .offset = (uint32_t)(4 * i), .size = 4};
        VkSpecializationInfo spi = {.mapEntryCount = (uint32_t)nspec,
                                    .pMapEntries = me,
                                    .dataSize = 4 * (size_t)nspec,
                                    .pData = spec};
        VkComputePipelineCreateInfo ci = {
            .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
            .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                      .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                      .module = vk->modules[si],
                      .pName = "main",
                      .pSpecializationInfo = nspec ? &spi : NULL},
            .layout = vk->pl[nbufs],
        };
        rc = vkCreateComputePipelines(vk->dev, vk->pcache, 1, &ci, NULL, &p);
    }
    if (rc == VK_SUCCESS) {
        s_pipe_t *e = &vk->pipes[vk->npipes++];
        memset(e, 0, sizeof *e);
        e->shader = si;
        e->nspec = nspec;
        e->nbufs = nbufs;
        memcpy(e->spec, spec, sizeof *spec * (size_t)nspec);
        e->pipe = p;
        vk->pipeline_us += gq_now_us() - t0;
    }
    pthread_mutex_unlock(&vk->pmu);
    if (rc != VK_SUCCESS) {
        char call[128];
        snprintf(call, sizeof call, "vkCreateComputePipelines(%s)", shader);
        s_fail(vk, err, errlen, op, call, rc);
        return VK_NULL_HANDLE;
    }
    return p;
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
    VkPipeline p = s_pipeline(vk, shader, spec, nspec, nbufs, op, err, errlen);
    if (!p)
        return GQ_EBACKEND;
    gq_status s = s_begin(vk, st, op, err, errlen);
    if (!s && st->nsets == S_SETS) { /* descriptor pool full: run what is recorded */
        s = s_submit(vk, st, true, op, err, errlen);
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
        return s_fail(vk, err, errlen, op, "vkAllocateDescriptorSets", rc);
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

gq_status gq_vk_scratch(gq_vk_t *vk, gq_vk_stream_t *st, size_t nbytes, gq_vk_mem_t **out,
                        const char *op, char *err, size_t errlen)
{
    *out = NULL;
    if (st->nscratch == S_MAX_SCRATCH) {
        gq_errf(err, errlen, "%s: vulkan: more than %d scratch buffers in one run", op,
                S_MAX_SCRATCH);
        return GQ_EINTERNAL;
    }
    void *h = NULL;
    size_t n = nbytes ? nbytes : 4;
    int rc = s_inject(vk, GQ_VK_FAULT_ALLOC);
    if (!rc)
        rc = gq_vk_pool_get(vk->pool, n, &h);
    if (rc) {
        gq_status s = s_fail(vk, err, errlen, op, "vkAllocateMemory", rc);
        size_t used = strlen(err);
        if (used + 2 < errlen)
            snprintf(err + used, errlen - used, " (%zu bytes of scratch)", n);
        return s;
    }
    st->scratch[st->nscratch] = h;
    st->scratch_bytes[st->nscratch++] = n;
    *out = h;
    return GQ_OK;
}

/* Gives the run's scratch buffers back, once the stream has finished with them. */
static gq_status s_scratch_release(gq_vk_t *vk, gq_vk_stream_t *st, const char *op, char *err,
                                   size_t errlen)
{
    if (!st->nscratch)
        return GQ_OK;
    gq_status rc = s_submit(vk, st, true, op, err, errlen);
    for (int i = 0; i < st->nscratch; i++)
        gq_vk_pool_put(vk->pool, st->scratch[i], st->scratch_bytes[i]);
    st->nscratch = 0;
    return rc;
}

/* Host <-> device bytes at offset off of m, after everything the stream queued. Mapped
 * memory: memcpy once the stream is idle. Otherwise through a staging buffer and a copy
 * on the stream. */
static gq_status s_xfer(gq_vk_t *vk, gq_vk_stream_t *st, gq_vk_mem_t *m, size_t off, void *host,
                        size_t nbytes, bool write, const char *op, char *err, size_t errlen)
{
    gq_status s = s_submit(vk, st, true, op, err, errlen);
    if (s || !nbytes)
        return s;
    if (m->map) {
        if (write)
            memcpy((char *)m->map + off, host, nbytes);
        else
            memcpy(host, (const char *)m->map + off, nbytes);
        return GQ_OK;
    }
    void *h = NULL;
    int rc = gq_vk_pool_get(vk->stage, nbytes, &h);
    if (rc)
        return s_fail(vk, err, errlen, op, "vkAllocateMemory(staging)", rc);
    gq_vk_mem_t *sm = h;
    if (write)
        memcpy(sm->map, host, nbytes);
    s = s_begin(vk, st, op, err, errlen);
    if (!s) {
        VkBufferCopy r = {
            .srcOffset = write ? 0 : off, .dstOffset = write ? off : 0, .size = nbytes};
        vkCmdCopyBuffer(st->cb, write ? sm->buf : m->buf, write ? m->buf : sm->buf, 1, &r);
        st->ncmds++;
        s = s_submit(vk, st, true, op, err, errlen);
    }
    if (!s && !write)
        memcpy(host, sm->map, nbytes);
    gq_vk_pool_put(vk->stage, h, nbytes);
    return s;
}

gq_status gq_vk_read(gq_vk_t *vk, gq_vk_stream_t *st, void *dst, gq_vk_mem_t *src, size_t off,
                     size_t nbytes, const char *op, char *err, size_t errlen)
{
    return s_xfer(vk, st, src, off, dst, nbytes, false, op, err, errlen);
}

/* ---- backend ops ---- */

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
    int rc = s_inject(vk, GQ_VK_FAULT_ALLOC);
    if (!rc)
        rc = gq_vk_pool_get(vk->pool, nbytes ? nbytes : 4, &h);
    if (rc) {
        char err[GQ_ERRLEN];
        gq_status st = s_fail(vk, err, sizeof err, NULL, "vkAllocateMemory", rc);
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
    gq_vk_stream_t *st = s_stream(vk, NULL, err, sizeof err);
    if (st) {
        pthread_mutex_lock(&st->mu);
        if (s_submit(vk, st, true, NULL, err, sizeof err))
            GQ_WARN("%s (freeing a buffer of %zu bytes)", err, buf->nbytes);
        pthread_mutex_unlock(&st->mu);
    }
    gq_vk_pool_put(vk->pool, buf->handle, buf->nbytes ? buf->nbytes : 4);
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
    gq_vk_stream_t *st = s_stream(vk, NULL, err, sizeof err);
    if (!st) {
        gq_errf(s_tls_err, sizeof s_tls_err, "%s", err);
        return GQ_EBACKEND;
    }
    pthread_mutex_lock(&st->mu);
    gq_status s = s_xfer(vk, st, m, 0, host, nbytes, write, NULL, err, sizeof err);
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
    if (!a || !a->op) {
        gq_errf(err, errlen, "vulkan: run without a resolved op");
        return GQ_EINVAL;
    }
    const char *op = a->op->name;
    if (nin < 0 || nin > GQ_MAX_INPUTS || nout < 0 || nout > GQ_MAX_OUTPUTS) {
        gq_errf(err, errlen, "%s: vulkan: bad buffer lists (%d inputs, %d outputs)", op, nin, nout);
        return GQ_EINVAL;
    }
    if (atomic_load(&vk->lost)) {
        gq_errf(err, errlen, "%s: vulkan: device '%s' was lost", op, vk->info.name);
        return GQ_EDEVICE_LOST;
    }
    /* Like the CPU backend, the shape rule runs again: a shader never reads or writes past
     * a buffer, whatever the caller passed. */
    gq_tdesc_t want[GQ_MAX_OUTPUTS];
    int nwant = 0;
    gq_status rc = gq_op_infer(a, in_desc, nin, want, &nwant, err, errlen);
    if (rc)
        return rc;
    if (nwant != nout) {
        gq_errf(err, errlen, "%s: vulkan: %d output buffers given, the op has %d", op, nout, nwant);
        return GQ_EINVAL;
    }
    gq_vk_mem_t *min[GQ_MAX_INPUTS], *mout[GQ_MAX_OUTPUTS];
    for (int i = 0; i < nin + nout; i++) {
        bool isout = i >= nin;
        int j = isout ? i - nin : i;
        const gq_tdesc_t *d = isout ? &out_desc[j] : &in_desc[j];
        gq_buffer_t *b = isout ? &out[j] : &in[j];
        char ds[64];
        if (isout && !gq_tdesc_equal(d, &want[j])) {
            char exp[64];
            gq_errf(err, errlen, "%s: vulkan: output %d is %s, the shape rule gives %s", op, j,
                    gq_tdesc_str(d, ds, sizeof ds), gq_tdesc_str(&want[j], exp, sizeof exp));
            return GQ_EINVAL;
        }
        if (b->owner != be || !b->handle || b->nbytes < gq_tdesc_nbytes(d)) {
            gq_errf(err, errlen, "%s: vulkan: %s %d %s is not a Vulkan buffer of %zu bytes", op,
                    isout ? "output" : "input", j, gq_tdesc_str(d, ds, sizeof ds),
                    gq_tdesc_nbytes(d));
            return GQ_EINVAL;
        }
        (isout ? mout : min)[j] = b->handle;
    }
    if (!s_supports_op(be, a, in_desc, nin)) {
        gq_errf(err, errlen, "%s: vulkan: no shader for these inputs", op);
        return GQ_EUNSUPPORTED;
    }
    gq_vk_stream_t *st = s_stream(vk, op, err, errlen);
    if (!st)
        return GQ_EBACKEND;
    pthread_mutex_lock(&st->mu);
    rc = s_family(op)->run(vk, st, a, in_desc, min, nin, out_desc, mout, nout, err, errlen);
    char err2[GQ_ERRLEN];
    gq_status rc2 = st->nscratch ? s_scratch_release(vk, st, op, err2, sizeof err2)
                                 : s_submit(vk, st, false, op, err2, sizeof err2);
    if (!rc && rc2) {
        rc = rc2;
        gq_errf(err, errlen, "%s", err2);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static gq_status s_sync(gq_backend_t *be)
{
    gq_vk_t *vk = be->impl;
    char err[GQ_ERRLEN];
    gq_vk_stream_t *st = s_stream(vk, NULL, err, sizeof err);
    if (!st)
        return GQ_EBACKEND;
    pthread_mutex_lock(&st->mu);
    gq_status rc = s_submit(vk, st, true, NULL, err, sizeof err);
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

/* Saves the pipeline cache when this session made pipelines the file may not hold. */
static void s_pcache_store(gq_vk_t *vk)
{
    if (!vk->pcache || !vk->cache_dir[0] || !vk->npipes)
        return;
    size_t n = 0;
    if (vkGetPipelineCacheData(vk->dev, vk->pcache, &n, NULL) != VK_SUCCESS || !n)
        return;
    void *data = malloc(n);
    char err[GQ_ERRLEN];
    if (data && vkGetPipelineCacheData(vk->dev, vk->pcache, &n, data) == VK_SUCCESS &&
        gq_vk_cache_store(vk->cache_dir, vk->key, data, n, err, sizeof err))
        GQ_WARN("%s", err);
    free(data);
}

static void s_destroy(gq_backend_t *be)
{
    gq_vk_t *vk = be->impl;
    if (!vk)
        return;
    if (vk->dev) {
        char err[GQ_ERRLEN];
        for (int i = 0; i < vk->nstreams; i++) {
            if (!atomic_load(&vk->lost))
                s_submit(vk, vk->streams[i], true, NULL, err, sizeof err);
            s_stream_free(vk, vk->streams[i]);
        }
        vkDeviceWaitIdle(vk->dev);
        s_pcache_store(vk);
        for (int i = 0; i < vk->npipes; i++)
            vkDestroyPipeline(vk->dev, vk->pipes[i].pipe, NULL);
        if (vk->modules)
            for (int i = 0; i < gq_vk_nspirv; i++)
                if (vk->modules[i])
                    vkDestroyShaderModule(vk->dev, vk->modules[i], NULL);
        if (vk->pcache)
            vkDestroyPipelineCache(vk->dev, vk->pcache, NULL);
        for (int i = 0; i <= GQ_VK_MAX_BINDINGS; i++) {
            if (vk->pl[i])
                vkDestroyPipelineLayout(vk->dev, vk->pl[i], NULL);
            if (vk->dsl[i])
                vkDestroyDescriptorSetLayout(vk->dev, vk->dsl[i], NULL);
        }
        gq_vk_pool_destroy(&vk->pool);
        gq_vk_pool_destroy(&vk->stage);
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

/* ---- init ---- */

static bool s_env_on(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0");
}

/* Features: what the shaders of each dtype need, enabled when the device has them. */
static VkResult s_create_device(gq_vk_t *vk)
{
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    VkPhysicalDevice16BitStorageFeatures f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    VkPhysicalDeviceVulkan12Features f12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    /* VkPhysicalDeviceVulkan12Features needs a 1.2 device and a 1.2 instance. */
    uint32_t iv = VK_API_VERSION_1_1;
    PFN_vkEnumerateInstanceVersion ev =
        (PFN_vkEnumerateInstanceVersion)vkGetInstanceProcAddr(NULL, "vkEnumerateInstanceVersion");
    if (ev)
        ev(&iv);
    bool v12 = vk->d.props.apiVersion >= VK_API_VERSION_1_2 && iv >= VK_API_VERSION_1_2;
    f2.pNext = &f16;
    if (v12)
        f16.pNext = &f12;
    vkGetPhysicalDeviceFeatures2(vk->pd, &f2);
    VkPhysicalDeviceFeatures2 en = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    VkPhysicalDevice16BitStorageFeatures e16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    VkPhysicalDeviceVulkan12Features e12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    en.pNext = &e16;
    if (v12)
        e16.pNext = &e12;
    vk->caps.fp64 = f2.features.shaderFloat64 && !s_env_on("GQ_VK_NO_FP64");
    en.features.shaderFloat64 = vk->caps.fp64;
    vk->caps.int64 = f2.features.shaderInt64;
    en.features.shaderInt64 = vk->caps.int64;
    vk->caps.int16 = f2.features.shaderInt16 && f16.storageBuffer16BitAccess;
    en.features.shaderInt16 = vk->caps.int16;
    e16.storageBuffer16BitAccess = vk->caps.int16;
    vk->caps.int8 = v12 && f12.shaderInt8 && f12.storageBuffer8BitAccess;
    e12.shaderInt8 = vk->caps.int8;
    e12.storageBuffer8BitAccess = vk->caps.int8;
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                  .queueFamilyIndex = vk->qfamily,
                                  .queueCount = 1,
                                  .pQueuePriorities = &prio};
    VkDeviceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                             .pNext = &en,
                             .queueCreateInfoCount = 1,
                             .pQueueCreateInfos = &qi};
    VkResult rc = vkCreateDevice(vk->pd, &ci, NULL, &vk->dev);
    if (rc == VK_SUCCESS)
        vkGetDeviceQueue(vk->dev, vk->qfamily, 0, &vk->queue);
    return rc;
}

/* Memory types: mapped device memory where the device's memory is the host's (CPU devices,
 * integrated GPUs), else device-local buffers and host-visible staging. */
static int s_pick_memory(gq_vk_t *vk, char *err, size_t errlen)
{
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(vk->pd, &mp);
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = 4096,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT};
    VkBuffer probe;
    VkResult rc = vkCreateBuffer(vk->dev, &bi, NULL, &probe);
    if (rc != VK_SUCCESS) {
        gq_vk_fail(err, errlen, NULL, "vkCreateBuffer", rc);
        return -1;
    }
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(vk->dev, probe, &req);
    vkDestroyBuffer(vk->dev, probe, NULL);
    const VkMemoryPropertyFlags dl = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT,
                                hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                     VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    int direct = -1, local = -1, stage = -1, cached = -1;
    for (uint32_t i = 0; i < mp.memoryTypeCount; i++) {
        if (!(req.memoryTypeBits & (1u << i)))
            continue;
        VkMemoryPropertyFlags f = mp.memoryTypes[i].propertyFlags;
        if (direct < 0 && (f & (dl | hv)) == (dl | hv))
            direct = (int)i;
        if (local < 0 && (f & dl))
            local = (int)i;
        if (stage < 0 && (f & hv) == hv)
            stage = (int)i;
        if (cached < 0 && (f & hv) == hv && (f & VK_MEMORY_PROPERTY_HOST_CACHED_BIT))
            cached = (int)i;
    }
    VkPhysicalDeviceType t = vk->d.props.deviceType;
    bool uma = t == VK_PHYSICAL_DEVICE_TYPE_CPU || t == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU;
    if (stage < 0) {
        gq_errf(err, errlen, "vulkan: device '%s' has no host-visible coherent memory for buffers",
                vk->info.name);
        return -1;
    }
    vk->stage_type = (uint32_t)(cached >= 0 ? cached : stage);
    if (uma && direct >= 0 && !s_env_on("GQ_VK_STAGING")) {
        vk->direct = true;
        vk->mem_type = (uint32_t)direct;
    } else {
        vk->direct = false;
        vk->mem_type = (uint32_t)(local >= 0 ? local : stage);
    }
    return 0;
}

static VkResult s_layouts(gq_vk_t *vk)
{
    VkDescriptorSetLayoutBinding b[GQ_VK_MAX_BINDINGS];
    for (int i = 0; i < GQ_VK_MAX_BINDINGS; i++)
        b[i] = (VkDescriptorSetLayoutBinding){.binding = (uint32_t)i,
                                              .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                              .descriptorCount = 1,
                                              .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkPushConstantRange pr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .size = GQ_VK_PUSH_MAX};
    for (int n = 1; n <= GQ_VK_MAX_BINDINGS; n++) {
        VkDescriptorSetLayoutCreateInfo li = {
            .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
            .bindingCount = (uint32_t)n,
            .pBindings = b};
        VkResult rc = vkCreateDescriptorSetLayout(vk->dev, &li, NULL, &vk->dsl[n]);
        if (rc != VK_SUCCESS)
            return rc;
        VkPipelineLayoutCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                         .setLayoutCount = 1,
                                         .pSetLayouts = &vk->dsl[n],
                                         .pushConstantRangeCount = 1,
                                         .pPushConstantRanges = &pr};
        if ((rc = vkCreatePipelineLayout(vk->dev, &pi, NULL, &vk->pl[n])) != VK_SUCCESS)
            return rc;
    }
    return VK_SUCCESS;
}

/* The pipeline cache: its file's key covers the shaders, the device and the driver. */
static VkResult s_pcache_open(gq_vk_t *vk)
{
    XXH3_state_t hs;
    XXH3_64bits_reset(&hs);
    for (int i = 0; i < gq_vk_nspirv; i++) {
        XXH3_64bits_update(&hs, gq_vk_spirv[i].name, strlen(gq_vk_spirv[i].name) + 1);
        XXH3_64bits_update(&hs, gq_vk_spirv[i].code, gq_vk_spirv[i].bytes);
    }
    uint64_t shaders = XXH3_64bits_digest(&hs);
    const VkPhysicalDeviceProperties *p = &vk->d.props;
    uint32_t ids[3] = {p->vendorID, p->deviceID, p->driverVersion};
    const char *parts[] = {(const char *)&shaders, (const char *)ids,
                           (const char *)p->pipelineCacheUUID, p->deviceName, vk->info.driver};
    size_t lens[] = {sizeof shaders, sizeof ids, VK_UUID_SIZE, strlen(p->deviceName),
                     strlen(vk->info.driver)};
    gq_vk_cache_key(parts, lens, 5, vk->key);
    gq_vk_cache_dir(vk->cache_dir, sizeof vk->cache_dir);
    void *data = NULL;
    size_t n = 0;
    vk->pcache_origin = GQ_VK_PCACHE_NONE;
    if (vk->cache_dir[0]) {
        char why[GQ_ERRLEN];
        gq_vk_cache_path(vk->cache_dir, vk->key, vk->cache_file, sizeof vk->cache_file);
        gq_status s = gq_vk_cache_load(vk->cache_dir, vk->key, &data, &n, why, sizeof why);
        vk->pcache_origin = s == GQ_OK        ? GQ_VK_PCACHE_LOADED
                            : s == GQ_EFORMAT ? GQ_VK_PCACHE_INVALID
                                              : GQ_VK_PCACHE_NEW;
        if (s == GQ_EFORMAT)
            GQ_WARN("vulkan: pipeline cache: %s; starting empty", why);
    }
    VkPipelineCacheCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
                                    .initialDataSize = n,
                                    .pInitialData = data};
    VkResult rc = vkCreatePipelineCache(vk->dev, &ci, NULL, &vk->pcache);
    if (rc != VK_SUCCESS && data) {
        GQ_WARN("vulkan: pipeline cache %s refused by the driver; starting empty", vk->cache_file);
        vk->pcache_origin = GQ_VK_PCACHE_INVALID;
        ci.initialDataSize = 0;
        ci.pInitialData = NULL;
        n = 0;
        rc = vkCreatePipelineCache(vk->dev, &ci, NULL, &vk->pcache);
    }
    vk->pcache_loaded = n;
    free(data);
    return rc;
}

static gq_status s_init(gq_backend_t *be, const gq_backend_config_t *cfg, char *err, size_t errlen)
{
    gq_vk_t *vk = be->impl;
    if (!(vk->inst = gq_vk_instance(err, errlen)))
        return GQ_EUNSUPPORTED;
    gq_vk_dev_t devs[GQ_VK_MAX_DEVICES];
    int n = gq_vk_discover(vk->inst, devs, GQ_VK_MAX_DEVICES, err, errlen);
    if (n == 0)
        return GQ_EUNSUPPORTED;
    int pick = gq_vk_choose(cfg, devs, n, err, errlen);
    for (int i = 0; i < n; i++) {
        gq_device_info_t di;
        gq_vk_fill_info(&devs[i], &di);
        GQ_INFO("vulkan: device %d%s: %s (%s, %s, driver %s, Vulkan %u.%u, %.1f GiB)", i,
                i == pick ? " [used]" : "", di.name, di.vendor,
                gq_vk_type_name(devs[i].props.deviceType), di.driver,
                VK_API_VERSION_MAJOR(devs[i].props.apiVersion),
                VK_API_VERSION_MINOR(devs[i].props.apiVersion),
                (double)di.memory_bytes / (1u << 30));
    }
    if (pick < 0)
        return GQ_EUNSUPPORTED;
    vk->d = devs[pick];
    vk->pd = vk->d.pd;
    vk->qfamily = (uint32_t)vk->d.compute_family;
    gq_vk_fill_info(&vk->d, &vk->info);
    VkResult rc = s_create_device(vk);
    if (rc != VK_SUCCESS)
        return gq_vk_fail(err, errlen, NULL, "vkCreateDevice", rc);
    const VkPhysicalDeviceLimits *lim = &vk->d.props.limits;
    vk->caps.max_groups = lim->maxComputeWorkGroupCount[0];
    vk->caps.max_local = lim->maxComputeWorkGroupSize[0] < lim->maxComputeWorkGroupInvocations
                             ? lim->maxComputeWorkGroupSize[0]
                             : lim->maxComputeWorkGroupInvocations;
    vk->caps.max_range = lim->maxStorageBufferRange;
    vk->caps.cpu_device = vk->d.props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    vk->caps.local = vk->caps.max_local < 256 ? vk->caps.max_local : 256;
    const char *lw = getenv("GQ_VK_LOCAL");
    long long lv;
    if (lw && !gq_parse_int(lw, 1, vk->caps.max_local, &lv))
        vk->caps.local = (uint32_t)lv;
    if (s_pick_memory(vk, err, errlen))
        return GQ_EUNSUPPORTED;
    if ((rc = s_layouts(vk)) != VK_SUCCESS)
        return gq_vk_fail(err, errlen, NULL, "vkCreatePipelineLayout", rc);
    if (!(vk->modules = calloc((size_t)gq_vk_nspirv + 1, sizeof *vk->modules))) {
        gq_errf(err, errlen, "vulkan: out of memory");
        return GQ_ENOMEM;
    }
    if ((rc = s_pcache_open(vk)) != VK_SUCCESS)
        return gq_vk_fail(err, errlen, NULL, "vkCreatePipelineCache", rc);
    size_t cap = vk->info.memory_bytes / 8;
    if (cap > S_POOL_CAP_MAX || cap == 0)
        cap = S_POOL_CAP_MAX;
    const char *mb = getenv("GQ_VK_POOL_MB");
    long long v;
    if (mb && !gq_parse_int(mb, 0, 1 << 20, &v))
        cap = (size_t)v << 20;
    vk->pool = gq_vk_pool_new(s_pool_make, s_pool_release, vk, cap);
    vk->stage = gq_vk_pool_new(s_stage_make, s_pool_release, vk, cap / 4);
    if (!vk->pool || !vk->stage) {
        gq_errf(err, errlen, "vulkan: out of memory for the buffer pools");
        return GQ_ENOMEM;
    }
    static const char *const origin[] = {"new", "loaded", "invalid: started empty", "not cached"};
    GQ_INFO("vulkan: using '%s' (fp64 %s, i16 %s, u8 %s, %s memory), pipeline cache %s, pool cap "
            "%zu MiB",
            vk->info.name, vk->caps.fp64 ? "yes" : "no", vk->caps.int16 ? "yes" : "no",
            vk->caps.int8 ? "yes" : "no", vk->direct ? "mapped" : "staged",
            origin[vk->pcache_origin], cap >> 20);
    return GQ_OK;
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
    gq_vk_pool_stats(vk->pool, &out->pool);
    gq_vk_pool_stats(vk->stage, &out->staging);
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

gq_status gq_vk_run_begin(gq_vk_t *vk, gq_vk_stream_t **st, const char *op, char *err,
                          size_t errlen)
{
    if (atomic_load(&vk->lost)) {
        gq_errf(err, errlen, "%s: vulkan: device '%s' was lost", op, vk->info.name);
        return GQ_EDEVICE_LOST;
    }
    if (!(*st = s_stream(vk, op, err, errlen)))
        return GQ_EBACKEND;
    pthread_mutex_lock(&(*st)->mu);
    return GQ_OK;
}

gq_status gq_vk_run_end(gq_vk_t *vk, gq_vk_stream_t *st, gq_status rc, const char *op, char *err,
                        size_t errlen)
{
    char err2[GQ_ERRLEN];
    gq_status rc2 = st->nscratch ? s_scratch_release(vk, st, op, err2, sizeof err2)
                                 : s_submit(vk, st, false, op, err2, sizeof err2);
    if (!rc && rc2) {
        rc = rc2;
        gq_errf(err, errlen, "%s", err2);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static const gq_backend_ops_t s_vk_ops = {
    .name = "vulkan",
    .init = s_init,
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
