/* Setting up the Vulkan backend on its device: the logical device with the features the
 * shaders need, memory types (mapped or staged), the buffer pools and their buffers, and
 * the pipeline state (vk_pipeline.c). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util.h"
#include "vk_int.h"

#define S_POOL_CAP_MAX ((size_t)256 << 20)

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

gq_status gq_vk_init(gq_backend_t *be, const gq_backend_config_t *cfg, char *err, size_t errlen)
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
    if ((rc = gq_vk_layouts(vk)) != VK_SUCCESS)
        return gq_vk_fail(err, errlen, NULL, "vkCreatePipelineLayout", rc);
    if (!(vk->modules = calloc((size_t)gq_vk_nspirv + 1, sizeof *vk->modules))) {
        gq_errf(err, errlen, "vulkan: out of memory");
        return GQ_ENOMEM;
    }
    if ((rc = gq_vk_pcache_open(vk)) != VK_SUCCESS)
        return gq_vk_fail(err, errlen, NULL, "vkCreatePipelineCache", rc);
    size_t cap = vk->info.memory_bytes / 8;
    if (cap > S_POOL_CAP_MAX || cap == 0)
        cap = S_POOL_CAP_MAX;
    const char *mb = getenv("GQ_VK_POOL_MB");
    long long v;
    if (mb && !gq_parse_int(mb, 0, 1 << 20, &v))
        cap = (size_t)v << 20;
    vk->pool = gq_dev_pool_new(s_pool_make, s_pool_release, vk, cap);
    vk->stage = gq_dev_pool_new(s_stage_make, s_pool_release, vk, cap / 4);
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
