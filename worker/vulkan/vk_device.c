/* Vulkan device discovery and choice: the instance, the physical devices and their
 * properties, and which one a backend config names. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "util.h"
#include "vk_int.h"

static bool s_contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (!strncasecmp(hay, needle, n))
            return true;
    return n == 0;
}

VkInstance gq_vk_instance(char *err, size_t errlen)
{
    uint32_t ver = VK_API_VERSION_1_0;
    /* vkEnumerateInstanceVersion is 1.1: a 1.0 loader does not have it. */
    PFN_vkEnumerateInstanceVersion enum_ver =
        (PFN_vkEnumerateInstanceVersion)vkGetInstanceProcAddr(NULL, "vkEnumerateInstanceVersion");
    if (!enum_ver || enum_ver(&ver) != VK_SUCCESS || ver < VK_API_VERSION_1_1) {
        gq_errf(err, errlen, "vulkan: the loader is Vulkan %u.%u, the backend needs 1.1",
                VK_API_VERSION_MAJOR(ver), VK_API_VERSION_MINOR(ver));
        return NULL;
    }
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "gpuq",
        .pEngineName = "gpuq",
        .apiVersion = ver >= VK_API_VERSION_1_2 ? VK_API_VERSION_1_2 : VK_API_VERSION_1_1,
    };
    VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pApplicationInfo = &app,
    };
    VkInstance inst = NULL;
    VkResult rc = vkCreateInstance(&ci, NULL, &inst);
    if (rc != VK_SUCCESS) {
        gq_vk_fail(err, errlen, NULL, "vkCreateInstance", rc);
        return NULL;
    }
    return inst;
}

static const char *s_vendor(uint32_t id)
{
    switch (id) {
    case 0x10de:
        return "NVIDIA";
    case 0x1002:
        return "AMD";
    case 0x8086:
        return "Intel";
    case 0x13b5:
        return "ARM";
    case 0x5143:
        return "Qualcomm";
    case 0x106b:
        return "Apple";
    case 0x1010:
        return "Imagination";
    case VK_VENDOR_ID_MESA:
        return "Mesa";
    default:
        return NULL;
    }
}

int gq_vk_discover(VkInstance inst, gq_vk_dev_t *out, int max, char *err, size_t errlen)
{
    VkPhysicalDevice pds[GQ_VK_MAX_DEVICES];
    uint32_t n = GQ_VK_MAX_DEVICES;
    VkResult rc = vkEnumeratePhysicalDevices(inst, &n, pds);
    if (rc < 0) {
        gq_vk_fail(err, errlen, NULL, "vkEnumeratePhysicalDevices", rc);
        return 0;
    }
    if (!n) {
        gq_errf(err, errlen, "vulkan: no physical device (no Vulkan driver installed?)");
        return 0;
    }
    int k = 0;
    for (uint32_t i = 0; i < n && k < max; i++, k++) {
        gq_vk_dev_t *d = &out[k];
        memset(d, 0, sizeof *d);
        d->pd = pds[i];
        VkPhysicalDeviceDriverProperties drv = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
        VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
        vkGetPhysicalDeviceProperties(pds[i], &d->props);
        if (d->props.apiVersion >= VK_API_VERSION_1_2) {
            p2.pNext = &drv;
            vkGetPhysicalDeviceProperties2(pds[i], &p2);
            snprintf(d->driver_name, sizeof d->driver_name, "%.63s", drv.driverName);
            snprintf(d->driver_info, sizeof d->driver_info, "%.127s", drv.driverInfo);
        } else {
            uint32_t v = d->props.driverVersion;
            snprintf(d->driver_name, sizeof d->driver_name, "?");
            snprintf(d->driver_info, sizeof d->driver_info, "%u.%u.%u", VK_API_VERSION_MAJOR(v),
                     VK_API_VERSION_MINOR(v), VK_API_VERSION_PATCH(v));
        }
        VkPhysicalDeviceMemoryProperties mp;
        vkGetPhysicalDeviceMemoryProperties(pds[i], &mp);
        for (uint32_t h = 0; h < mp.memoryHeapCount; h++)
            if ((mp.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
                mp.memoryHeaps[h].size > d->memory_bytes)
                d->memory_bytes = mp.memoryHeaps[h].size;
        VkQueueFamilyProperties qf[16];
        uint32_t nq = 16;
        vkGetPhysicalDeviceQueueFamilyProperties(pds[i], &nq, qf);
        d->compute_family = -1;
        /* A compute queue without graphics first (a dedicated compute engine), else any. */
        for (int pass = 0; pass < 2 && d->compute_family < 0; pass++)
            for (uint32_t q = 0; q < nq && d->compute_family < 0; q++)
                if ((qf[q].queueFlags & VK_QUEUE_COMPUTE_BIT) &&
                    (pass || !(qf[q].queueFlags & VK_QUEUE_GRAPHICS_BIT)))
                    d->compute_family = (int)q;
    }
    return k;
}

const char *gq_vk_type_name(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
        return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
        return "CPU";
    default:
        return "other";
    }
}

/* Copies src into dst[len], cut at len - 1 bytes (device strings are longer than
 * gq_device_info_t's fields allow only in theory). */
static void s_copy(char *dst, size_t len, const char *src)
{
    size_t n = strnlen(src, len - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void gq_vk_fill_info(const gq_vk_dev_t *d, gq_device_info_t *info)
{
    memset(info, 0, sizeof *info);
    s_copy(info->name, sizeof info->name, d->props.deviceName);
    const char *v = s_vendor(d->props.vendorID);
    if (v)
        snprintf(info->vendor, sizeof info->vendor, "%s", v);
    else
        snprintf(info->vendor, sizeof info->vendor, "0x%04x", d->props.vendorID);
    char drv[sizeof d->driver_name + sizeof d->driver_info + 2];
    snprintf(drv, sizeof drv, "%s %s", d->driver_name, d->driver_info);
    s_copy(info->driver, sizeof info->driver, drv);
    info->memory_bytes = d->memory_bytes;
    /* Vulkan does not say how many compute units a device has. */
    info->compute_units = 0;
    info->is_gpu = d->props.deviceType != VK_PHYSICAL_DEVICE_TYPE_CPU;
}

int gq_vk_choose(const gq_backend_config_t *cfg, const gq_vk_dev_t *devs, int n, char *err,
                 size_t errlen)
{
    int pick = -1;
    bool named = false;
    if (cfg && cfg->device_index >= 0) {
        if (cfg->device_index >= n) {
            gq_errf(err, errlen, "vulkan: device %d: only %d devices (0..%d)", cfg->device_index, n,
                    n - 1);
            return -1;
        }
        pick = cfg->device_index;
        named = true;
    } else if (cfg && cfg->device_match && *cfg->device_match) {
        for (int i = 0; i < n && pick < 0; i++) {
            gq_device_info_t di;
            gq_vk_fill_info(&devs[i], &di);
            if (s_contains(di.name, cfg->device_match) ||
                s_contains(di.vendor, cfg->device_match) ||
                s_contains(di.driver, cfg->device_match))
                pick = i;
        }
        if (pick < 0) {
            gq_errf(err, errlen, "vulkan: no device matches '%s' (%d devices)", cfg->device_match,
                    n);
            return -1;
        }
        named = true;
    } else {
        static const VkPhysicalDeviceType pref[] = {
            VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU, VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU,
            VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU, VK_PHYSICAL_DEVICE_TYPE_OTHER,
            VK_PHYSICAL_DEVICE_TYPE_CPU};
        for (int t = 0; t < 5 && pick < 0; t++)
            for (int i = 0; i < n && pick < 0; i++)
                if (devs[i].props.deviceType == pref[t] && devs[i].compute_family >= 0)
                    pick = i;
        if (pick < 0) {
            gq_errf(err, errlen, "vulkan: no device has a compute queue (%d devices)", n);
            return -1;
        }
    }
    if (!named && cfg && cfg->gpu_only &&
        devs[pick].props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU) {
        gq_errf(err, errlen,
                "vulkan: only CPU devices (%s); not used unless asked for (--backends "
                "vulkan,cpu or GQ_VK_DEVICE)",
                devs[pick].props.deviceName);
        return -1;
    }
    if (devs[pick].compute_family < 0) {
        gq_errf(err, errlen, "vulkan: device '%s' has no compute queue",
                devs[pick].props.deviceName);
        return -1;
    }
    if (devs[pick].props.apiVersion < VK_API_VERSION_1_1) {
        gq_errf(err, errlen, "vulkan: device '%s' is Vulkan %u.%u, the backend needs 1.1",
                devs[pick].props.deviceName, VK_API_VERSION_MAJOR(devs[pick].props.apiVersion),
                VK_API_VERSION_MINOR(devs[pick].props.apiVersion));
        return -1;
    }
    return pick;
}

int gq_vulkan_list(gq_device_info_t *out, int max, char *err, size_t errlen)
{
    VkInstance inst = gq_vk_instance(err, errlen);
    if (!inst)
        return 0;
    gq_vk_dev_t devs[GQ_VK_MAX_DEVICES];
    int n = gq_vk_discover(inst, devs, GQ_VK_MAX_DEVICES, err, errlen);
    for (int i = 0; i < n && i < max; i++)
        gq_vk_fill_info(&devs[i], &out[i]);
    vkDestroyInstance(inst, NULL);
    return n < max ? n : max;
}
