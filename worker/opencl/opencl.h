/* The OpenCL backend's own API beyond backend.h: error mapping, the program cache's kind
 * (the buffer pool and the cache are shared classes: dev_pool.h, dev_cache.h), and
 * introspection and fault injection for tests and benchmarks. No OpenCL header needed:
 * OpenCL error codes travel as int. */
#ifndef GQ_OPENCL_H
#define GQ_OPENCL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "backend.h"
#include "dev_cache.h"
#include "dev_pool.h"
#include "status.h"

/* ---- errors ---- */

/* The gq_status for an OpenCL error code: device gone (CL_DEVICE_NOT_AVAILABLE, ...) ->
 * GQ_EDEVICE_LOST; device memory (CL_MEM_OBJECT_ALLOCATION_FAILURE, CL_OUT_OF_RESOURCES)
 * -> GQ_EDEVICE_OOM; CL_OUT_OF_HOST_MEMORY -> GQ_ENOMEM; CL_SUCCESS -> GQ_OK; any other
 * (invalid argument, build failure, unknown) -> GQ_EBACKEND. */
gq_status gq_cl_status(int code);

/* "CL_OUT_OF_RESOURCES"; NULL for a code no header names. */
const char *gq_cl_errname(int code);

/* Writes "op: opencl: call: CL_NAME" (or "... CL error -1234") into err and returns
 * gq_cl_status(code). op may be NULL for backend-level calls. */
gq_status gq_cl_fail(char *err, size_t errlen, const char *op, const char *call, int code);

/* ---- program cache ---- */

/* The program cache's files (dev_cache.h): magic "GQCLPRG", $GQ_CL_CACHE_DIR, else
 * $XDG_CACHE_HOME/gpuq/cl, else $HOME/.cache/gpuq/cl. */
extern const gq_dev_cache_kind_t gq_cl_cache_kind;

/* ---- backend introspection (tests, benchmarks) ---- */

typedef enum {
    GQ_CL_PROG_BUILT = 0,   /* no cache entry: built from source and stored */
    GQ_CL_PROG_CACHED = 1,  /* loaded from a valid cache entry */
    GQ_CL_PROG_REBUILT = 2, /* the cache entry was invalid: rebuilt and replaced */
    GQ_CL_PROG_UNCACHED = 3 /* no cache dir, or the driver gives no binaries */
} gq_cl_prog_origin_t;

typedef struct {
    gq_cl_prog_origin_t program;
    char cache_file[512];
    bool fp64;
    bool fft_rows; /* transforms run a work-item per row (else a work-group per row) */
    int streams;   /* command queues made so far (one per calling thread) */
    gq_dev_pool_stats_t pool;
} gq_cl_stats_t;

/* Fails with GQ_EINVAL when be is not an OpenCL backend. */
gq_status gq_backend_opencl_stats(gq_backend_t *be, gq_cl_stats_t *out);

/* Fault injection: after `after` more calls of kind succeed, the next count fail with
 * OpenCL code (e.g. -4, CL_MEM_OBJECT_ALLOCATION_FAILURE) as if the driver had returned
 * it. Not thread-safe against concurrent jobs: for tests. */
typedef enum {
    GQ_CL_FAULT_ALLOC = 0,  /* the backend's alloc (pool hit or not) */
    GQ_CL_FAULT_LAUNCH = 1, /* clEnqueueNDRangeKernel */
    GQ_CL_FAULT_COUNT
} gq_cl_fault_t;

void gq_backend_opencl_inject(gq_backend_t *be, gq_cl_fault_t kind, int code, int after, int count);

/* Every OpenCL device of every platform, in the order --cl-device INDEX counts them
 * (platform by platform); returns the count written (0 with err set when none). */
int gq_opencl_list(gq_device_info_t *out, int max, char *err, size_t errlen);

#endif
