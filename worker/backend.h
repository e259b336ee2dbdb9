/* The backend interface: one struct of function pointers per compute backend. A worker
 * registers backends in priority order, the CPU backend last; for each op of a job it picks
 * the first backend whose supports_op says yes. The CPU backend supports every op and is
 * the reference the others are tested against. */
#ifndef GQ_BACKEND_H
#define GQ_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "optable.h"

typedef struct gq_backend gq_backend_t;

/* Memory owned by a backend. host is non-NULL when the CPU can address the bytes directly
 * (CPU backend, or mapped device memory). */
typedef struct {
    gq_backend_t *owner;
    void *host;
    void *handle; /* backend-specific: cl_mem, VkBuffer record ... */
    size_t nbytes;
} gq_buffer_t;

typedef struct {
    char name[128];
    char vendor[64];
    char driver[64];
    uint64_t memory_bytes;
    uint32_t compute_units;
    bool is_gpu;
} gq_device_info_t;

typedef struct {
    int device_index;         /* -1: backend picks */
    const char *device_match; /* substring of device name, or NULL */
    int threads;              /* CPU threads the backend may use inside one op */
    const char *platform;     /* OpenCL: platform index ("1") or name substring; NULL: any */
    bool gpu_only;            /* GPU backends: refuse CPU devices (PoCL) unless one is named */
} gq_backend_config_t;

/* Names cfg's device by dev, as --cl-device and GQ_VK_DEVICE take it: an index (0..2^20),
 * else a substring of the device's name; NULL or "" leaves cfg as it is. */
void gq_backend_config_device(gq_backend_config_t *cfg, const char *dev);

typedef struct {
    const char *name; /* "cpu", "opencl", "vulkan" */

    /* Opens the device. err gets the reason on failure (no device, driver error). */
    gq_status (*init)(gq_backend_t *be, const gq_backend_config_t *cfg, char *err, size_t errlen);

    /* Whether this backend runs op with these args and input descriptors. With in == NULL
     * (and nin == -1): whether it implements a->op at all, for the READY op list. */
    bool (*supports_op)(gq_backend_t *be, const gq_args_t *a, const gq_tdesc_t *in, int nin);

    /* Device buffers. free takes NULL. */
    gq_status (*alloc)(gq_backend_t *be, size_t nbytes, gq_buffer_t *out);
    void (*free)(gq_backend_t *be, gq_buffer_t *buf);

    /* Wraps caller memory without copying, when the backend can read host memory
     * directly (NULL when it cannot: the worker then allocs and uploads). The caller keeps
     * the memory alive until the job ends; the buffer's free must not release it. */
    gq_status (*wrap_host)(gq_backend_t *be, void *data, size_t nbytes, gq_buffer_t *out);

    gq_status (*upload)(gq_backend_t *be, gq_buffer_t *dst, const void *src, size_t nbytes);
    gq_status (*download)(gq_backend_t *be, void *dst, const gq_buffer_t *src, size_t nbytes);

    /* Runs one op. Output buffers are allocated by the caller from out descriptors (shape
     * rule). err names the op and the failing call. */
    gq_status (*run)(gq_backend_t *be, const gq_args_t *a, const gq_tdesc_t *in_desc,
                     gq_buffer_t *in, int nin, const gq_tdesc_t *out_desc, gq_buffer_t *out,
                     int nout, char *err, size_t errlen);

    /* Waits for queued work to finish. */
    gq_status (*sync)(gq_backend_t *be);

    /* Devices this backend drives (for READY and the CLI); returns the count written. */
    int (*devices)(gq_backend_t *be, gq_device_info_t *out, int max);

    void (*destroy)(gq_backend_t *be);

    /* Optional (NULL: none): the calling thread's last failure of alloc, upload, download
     * or sync, naming the driver call ("opencl: clCreateBuffer: CL_OUT_OF_RESOURCES"),
     * for error messages; those ops only return a status. */
    const char *(*last_error)(gq_backend_t *be);
} gq_backend_ops_t;

struct gq_backend {
    const gq_backend_ops_t *ops;
    void *impl;
};

/* Backend constructors. Each returns NULL with err set when the backend cannot start
 * (no device, missing driver): the worker then goes on with the others. */
gq_backend_t *gq_backend_cpu_new(const gq_backend_config_t *cfg, char *err, size_t errlen);

/* OpenCL (worker/opencl): one device of one platform, chosen by cfg (device_index counts
 * the devices of every platform that passes cfg->platform; else device_match; else the
 * first GPU, then accelerator, then any other device). Built only with GQ_HAVE_OPENCL:
 * without it this returns NULL with "opencl: not built" in err. */
gq_backend_t *gq_backend_opencl_new(const gq_backend_config_t *cfg, char *err, size_t errlen);

/* Frees the backend and nulls *self_p. */
void gq_backend_destroy(gq_backend_t **self_p);

/* The checks a backend's run makes before it touches a buffer: a resolved op, buffer lists
 * within bounds, the op's shape rule run again on in_desc (so a kernel never reads or
 * writes past a buffer, whatever the caller passed) and out_desc equal to what it gives.
 * With hin and hout, also that every buffer is be's and large enough for its descriptor;
 * their handles go to hin[0..nin) and hout[0..nout). err: "op: backend: cause". */
gq_status gq_backend_check_run(gq_backend_t *be, const gq_args_t *a, const gq_tdesc_t *in_desc,
                               const gq_buffer_t *in, int nin, const gq_tdesc_t *out_desc,
                               const gq_buffer_t *out, int nout, void **hin, void **hout, char *err,
                               size_t errlen);

#endif
