/* The OpenCL backend's own API beyond backend.h: error mapping, the buffer pool and the
 * program cache as classes of their own (each unit-tested without a device), and
 * introspection and fault injection for tests and benchmarks. No OpenCL header needed:
 * OpenCL error codes travel as int. */
#ifndef GQ_OPENCL_H
#define GQ_OPENCL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "backend.h"
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

/* ---- buffer pool ---- */

/* Device buffers recycled by size class, so a steady stream of jobs creates no buffers.
 * Classes are 4 per power of two (waste <= 25%), 256 bytes at least. Idle buffers are
 * kept up to a byte cap, least recently returned released first. Thread-safe. The pool
 * knows buffers only as handles made and released by the callbacks. */
typedef struct gq_cl_pool gq_cl_pool_t;

/* Makes a buffer of exactly nbytes in *handle; returns 0 or an OpenCL error code. */
typedef int (*gq_cl_pool_make_fn)(void *ctx, size_t nbytes, void **handle);
typedef void (*gq_cl_pool_release_fn)(void *ctx, void *handle);

typedef struct {
    uint64_t hits;     /* gets served from idle buffers */
    uint64_t misses;   /* gets that made a buffer */
    uint64_t released; /* buffers released (over the cap, trimmed, destroyed) */
    uint64_t retries;  /* makes retried after trimming the idle buffers */
    size_t idle_bytes; /* held idle now */
    size_t idle_count;
    size_t live_bytes; /* handed out and not yet returned */
} gq_cl_pool_stats_t;

gq_cl_pool_t *gq_cl_pool_new(gq_cl_pool_make_fn make, gq_cl_pool_release_fn release, void *ctx,
                             size_t idle_cap);

/* Releases every idle buffer. Buffers still handed out must have been put back. */
void gq_cl_pool_destroy(gq_cl_pool_t **self_p);

/* The size class of a request: what get allocates and what put must be told. */
size_t gq_cl_pool_class(size_t nbytes);

/* A buffer of gq_cl_pool_class(nbytes) bytes. When making one fails, the idle buffers are
 * released and the make is tried once more (device memory held idle is memory a job
 * could use). Returns 0 or the make's error code. */
int gq_cl_pool_get(gq_cl_pool_t *self, size_t nbytes, void **handle);

/* Returns a buffer got for nbytes. The caller guarantees no queued command uses it. */
void gq_cl_pool_put(gq_cl_pool_t *self, void *handle, size_t nbytes);

/* Releases every idle buffer. */
void gq_cl_pool_trim(gq_cl_pool_t *self);

void gq_cl_pool_stats(gq_cl_pool_t *self, gq_cl_pool_stats_t *out);

/* ---- program cache ---- */

#define GQ_CL_KEY_BYTES 16

/* The cache directory: $GQ_CL_CACHE_DIR, else $XDG_CACHE_HOME/gpuq/cl, else
 * $HOME/.cache/gpuq/cl; "" when none of them is set. */
void gq_cl_cache_dir(char *out, size_t len);

/* XXH3-128 over parts[0..n) (each length-prefixed, so ("ab","c") != ("a","bc")). */
void gq_cl_cache_key(const char *const *parts, const size_t *lens, int n,
                     uint8_t key[GQ_CL_KEY_BYTES]);

/* <dir>/<32 hex digits>.bin */
void gq_cl_cache_path(const char *dir, const uint8_t key[GQ_CL_KEY_BYTES], char *out, size_t len);

/* Reads the entry for key into *data (malloc'd; caller frees) and *n. GQ_EIO when there
 * is none; GQ_EFORMAT with the reason in why when the file is not a valid entry for key
 * (bad magic or version, wrong size or key, checksum mismatch): the caller rebuilds and
 * stores over it. */
gq_status gq_cl_cache_load(const char *dir, const uint8_t key[GQ_CL_KEY_BYTES], void **data,
                           size_t *n, char *why, size_t whylen);

/* Writes the entry atomically (temp file in dir, fsync, rename), creating dir. */
gq_status gq_cl_cache_store(const char *dir, const uint8_t key[GQ_CL_KEY_BYTES], const void *data,
                            size_t n, char *err, size_t errlen);

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
    gq_cl_pool_stats_t pool;
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
