/* VkResult -> name and gq_status. */
#include <stdio.h>
#include "util.h"
#include "vk_int.h"

#define S_E(x)                                                                                     \
    {                                                                                              \
        x, #x                                                                                      \
    }

static const struct {
    int code;
    const char *name;
} s_names[] = {
    S_E(VK_SUCCESS),
    S_E(VK_NOT_READY),
    S_E(VK_TIMEOUT),
    S_E(VK_EVENT_SET),
    S_E(VK_EVENT_RESET),
    S_E(VK_INCOMPLETE),
    S_E(VK_ERROR_OUT_OF_HOST_MEMORY),
    S_E(VK_ERROR_OUT_OF_DEVICE_MEMORY),
    S_E(VK_ERROR_INITIALIZATION_FAILED),
    S_E(VK_ERROR_DEVICE_LOST),
    S_E(VK_ERROR_MEMORY_MAP_FAILED),
    S_E(VK_ERROR_LAYER_NOT_PRESENT),
    S_E(VK_ERROR_EXTENSION_NOT_PRESENT),
    S_E(VK_ERROR_FEATURE_NOT_PRESENT),
    S_E(VK_ERROR_INCOMPATIBLE_DRIVER),
    S_E(VK_ERROR_TOO_MANY_OBJECTS),
    S_E(VK_ERROR_FORMAT_NOT_SUPPORTED),
    S_E(VK_ERROR_FRAGMENTED_POOL),
    S_E(VK_ERROR_UNKNOWN),
    S_E(VK_ERROR_OUT_OF_POOL_MEMORY),
    S_E(VK_ERROR_INVALID_EXTERNAL_HANDLE),
    S_E(VK_ERROR_FRAGMENTATION),
    S_E(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS),
    S_E(VK_PIPELINE_COMPILE_REQUIRED),
};

const char *gq_vk_errname(int result)
{
    for (size_t i = 0; i < sizeof s_names / sizeof s_names[0]; i++)
        if (s_names[i].code == result)
            return s_names[i].name;
    return NULL;
}

gq_status gq_vk_status(int result)
{
    switch (result) {
    case VK_ERROR_DEVICE_LOST:
        return GQ_EDEVICE_LOST;
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
    case VK_ERROR_OUT_OF_POOL_MEMORY:
    case VK_ERROR_FRAGMENTED_POOL:
    case VK_ERROR_FRAGMENTATION:
        return GQ_EDEVICE_OOM;
    case VK_ERROR_OUT_OF_HOST_MEMORY:
        return GQ_ENOMEM;
    default:
        return result >= 0 ? GQ_OK : GQ_EBACKEND;
    }
}

gq_status gq_vk_fail(char *err, size_t errlen, const char *op, const char *call, int result)
{
    const char *name = gq_vk_errname(result);
    char num[32];
    if (!name) {
        snprintf(num, sizeof num, "VkResult %d", result);
        name = num;
    }
    if (op)
        gq_errf(err, errlen, "%s: vulkan: %s: %s", op, call, name);
    else
        gq_errf(err, errlen, "vulkan: %s: %s", call, name);
    return gq_vk_status(result);
}
