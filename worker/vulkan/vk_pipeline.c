/* The Vulkan backend's compute pipelines: descriptor set and pipeline layouts, shader
 * modules and pipelines made on first use of (shader, specialization), through a
 * VkPipelineCache kept on disk between runs (dev_cache.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>
#include "util.h"
#include "vk_int.h"

const gq_dev_cache_kind_t gq_vk_cache_kind = {
    .magic = "GQVKPLC",
    .env = "GQ_VK_CACHE_DIR",
    .subdir = "vk",
    .backend = "vulkan",
    .what = "pipeline cache",
};

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
VkPipeline gq_vk_pipeline(gq_vk_t *vk, const char *shader, const int32_t *spec, int nspec,
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
        gq_vk_pipe_t *e = &vk->pipes[i];
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
        gq_vk_pipe_t *np = realloc(vk->pipes, sizeof *np * (size_t)cap);
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
        gq_vk_pipe_t *e = &vk->pipes[vk->npipes++];
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
        gq_vk_error(vk, err, errlen, op, call, rc);
        return VK_NULL_HANDLE;
    }
    return p;
}

VkResult gq_vk_layouts(gq_vk_t *vk)
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
VkResult gq_vk_pcache_open(gq_vk_t *vk)
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
    gq_dev_cache_key(parts, lens, 5, vk->key);
    gq_dev_cache_dir(&gq_vk_cache_kind, vk->cache_dir, sizeof vk->cache_dir);
    void *data = NULL;
    size_t n = 0;
    vk->pcache_origin = GQ_VK_PCACHE_NONE;
    if (vk->cache_dir[0]) {
        char why[GQ_ERRLEN];
        gq_dev_cache_path(vk->cache_dir, vk->key, vk->cache_file, sizeof vk->cache_file);
        gq_status s = gq_dev_cache_load(&gq_vk_cache_kind, vk->cache_dir, vk->key, &data, &n, why,
                                        sizeof why);
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
        gq_dev_cache_store(&gq_vk_cache_kind, vk->cache_dir, vk->key, data, n, err, sizeof err))
        GQ_WARN("%s", err);
    free(data);
}

void gq_vk_pipelines_destroy(gq_vk_t *vk)
{
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
}
