/* OpenCL error codes: names and the gq_status each one becomes. Codes are literal numbers
 * so that the table does not depend on which header version the build found. */
#include <stdio.h>
#include "opencl.h"
#include "util.h"

typedef struct {
    int code;
    const char *name;
    gq_status status;
} s_code_t;

#define S_LOST GQ_EDEVICE_LOST
#define S_OOM GQ_EDEVICE_OOM
#define S_BE GQ_EBACKEND

static const s_code_t s_codes[] = {
    {0, "CL_SUCCESS", GQ_OK},
    {-1, "CL_DEVICE_NOT_FOUND", S_LOST},
    {-2, "CL_DEVICE_NOT_AVAILABLE", S_LOST},
    {-3, "CL_COMPILER_NOT_AVAILABLE", S_BE},
    {-4, "CL_MEM_OBJECT_ALLOCATION_FAILURE", S_OOM},
    {-5, "CL_OUT_OF_RESOURCES", S_OOM},
    {-6, "CL_OUT_OF_HOST_MEMORY", GQ_ENOMEM},
    {-7, "CL_PROFILING_INFO_NOT_AVAILABLE", S_BE},
    {-8, "CL_MEM_COPY_OVERLAP", S_BE},
    {-9, "CL_IMAGE_FORMAT_MISMATCH", S_BE},
    {-10, "CL_IMAGE_FORMAT_NOT_SUPPORTED", S_BE},
    {-11, "CL_BUILD_PROGRAM_FAILURE", S_BE},
    {-12, "CL_MAP_FAILURE", S_BE},
    {-13, "CL_MISALIGNED_SUB_BUFFER_OFFSET", S_BE},
    /* A command this one waited on failed: on GPUs that is how a crashed kernel shows. */
    {-14, "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST", S_LOST},
    {-15, "CL_COMPILE_PROGRAM_FAILURE", S_BE},
    {-16, "CL_LINKER_NOT_AVAILABLE", S_BE},
    {-17, "CL_LINK_PROGRAM_FAILURE", S_BE},
    {-18, "CL_DEVICE_PARTITION_FAILED", S_BE},
    {-19, "CL_KERNEL_ARG_INFO_NOT_AVAILABLE", S_BE},
    {-30, "CL_INVALID_VALUE", S_BE},
    {-31, "CL_INVALID_DEVICE_TYPE", S_BE},
    {-32, "CL_INVALID_PLATFORM", S_BE},
    {-33, "CL_INVALID_DEVICE", S_BE},
    {-34, "CL_INVALID_CONTEXT", S_BE},
    {-35, "CL_INVALID_QUEUE_PROPERTIES", S_BE},
    {-36, "CL_INVALID_COMMAND_QUEUE", S_BE},
    {-37, "CL_INVALID_HOST_PTR", S_BE},
    {-38, "CL_INVALID_MEM_OBJECT", S_BE},
    {-39, "CL_INVALID_IMAGE_FORMAT_DESCRIPTOR", S_BE},
    {-40, "CL_INVALID_IMAGE_SIZE", S_BE},
    {-41, "CL_INVALID_SAMPLER", S_BE},
    {-42, "CL_INVALID_BINARY", S_BE},
    {-43, "CL_INVALID_BUILD_OPTIONS", S_BE},
    {-44, "CL_INVALID_PROGRAM", S_BE},
    {-45, "CL_INVALID_PROGRAM_EXECUTABLE", S_BE},
    {-46, "CL_INVALID_KERNEL_NAME", S_BE},
    {-47, "CL_INVALID_KERNEL_DEFINITION", S_BE},
    {-48, "CL_INVALID_KERNEL", S_BE},
    {-49, "CL_INVALID_ARG_INDEX", S_BE},
    {-50, "CL_INVALID_ARG_VALUE", S_BE},
    {-51, "CL_INVALID_ARG_SIZE", S_BE},
    {-52, "CL_INVALID_KERNEL_ARGS", S_BE},
    {-53, "CL_INVALID_WORK_DIMENSION", S_BE},
    {-54, "CL_INVALID_WORK_GROUP_SIZE", S_BE},
    {-55, "CL_INVALID_WORK_ITEM_SIZE", S_BE},
    {-56, "CL_INVALID_GLOBAL_OFFSET", S_BE},
    {-57, "CL_INVALID_EVENT_WAIT_LIST", S_BE},
    {-58, "CL_INVALID_EVENT", S_BE},
    {-59, "CL_INVALID_OPERATION", S_BE},
    {-60, "CL_INVALID_GL_OBJECT", S_BE},
    {-61, "CL_INVALID_BUFFER_SIZE", S_BE},
    {-62, "CL_INVALID_MIP_LEVEL", S_BE},
    {-63, "CL_INVALID_GLOBAL_WORK_SIZE", S_BE},
    {-64, "CL_INVALID_PROPERTY", S_BE},
    {-65, "CL_INVALID_IMAGE_DESCRIPTOR", S_BE},
    {-66, "CL_INVALID_COMPILER_OPTIONS", S_BE},
    {-67, "CL_INVALID_LINKER_OPTIONS", S_BE},
    {-68, "CL_INVALID_DEVICE_PARTITION_COUNT", S_BE},
    {-69, "CL_INVALID_PIPE_SIZE", S_BE},
    {-70, "CL_INVALID_DEVICE_QUEUE", S_BE},
    {-71, "CL_INVALID_SPEC_ID", S_BE},
    {-72, "CL_MAX_SIZE_RESTRICTION_EXCEEDED", S_BE},
    {-1000, "CL_INVALID_GL_SHAREGROUP_REFERENCE_KHR", S_BE},
    {-1001, "CL_PLATFORM_NOT_FOUND_KHR", S_LOST},
    {-1057, "CL_DEVICE_PARTITION_FAILED_EXT", S_BE},
    {-1058, "CL_INVALID_PARTITION_COUNT_EXT", S_BE},
    {-1059, "CL_INVALID_PARTITION_NAME_EXT", S_BE},
    {-1093, "CL_INVALID_EGL_OBJECT_KHR", S_BE},
    {-1094, "CL_EGL_RESOURCE_NOT_ACQUIRED_KHR", S_BE},
    /* NVIDIA: a kernel faulted (illegal address); the context is unusable afterwards. */
    {-9999, "CL_NV_ILLEGAL_MEMORY_ACCESS", S_LOST},
};

static const s_code_t *s_find(int code)
{
    for (size_t i = 0; i < sizeof s_codes / sizeof s_codes[0]; i++)
        if (s_codes[i].code == code)
            return &s_codes[i];
    return NULL;
}

gq_status gq_cl_status(int code)
{
    const s_code_t *c = s_find(code);
    return c ? c->status : GQ_EBACKEND;
}

const char *gq_cl_errname(int code)
{
    const s_code_t *c = s_find(code);
    return c ? c->name : NULL;
}

gq_status gq_cl_fail(char *err, size_t errlen, const char *op, const char *call, int code)
{
    const char *name = gq_cl_errname(code);
    char num[32];
    if (!name) {
        snprintf(num, sizeof num, "CL error %d", code);
        name = num;
    }
    if (op)
        gq_errf(err, errlen, "%s: opencl: %s: %s", op, call, name);
    else
        gq_errf(err, errlen, "opencl: %s: %s", call, name);
    return code ? gq_cl_status(code) : GQ_EBACKEND;
}
