/* Device buffers recycled by size class, shared by the GPU backends (OpenCL, Vulkan), so a
 * steady stream of jobs creates no buffers. Classes are 4 per power of two (waste <= 25%),
 * 256 bytes at least. Idle buffers are kept up to a byte cap, least recently returned
 * released first. Thread-safe. The pool knows buffers only as handles made and released by
 * the callbacks, so it is unit-tested without a device. */
#ifndef GQ_DEV_POOL_H
#define GQ_DEV_POOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct gq_dev_pool gq_dev_pool_t;

/* Makes a buffer of exactly nbytes in *handle; returns 0 or the backend's (nonzero) error
 * code: an OpenCL error code, a negative VkResult. */
typedef int (*gq_dev_pool_make_fn)(void *ctx, size_t nbytes, void **handle);
typedef void (*gq_dev_pool_release_fn)(void *ctx, void *handle);

typedef struct {
    uint64_t hits;     /* gets served from idle buffers */
    uint64_t misses;   /* gets that made a buffer */
    uint64_t released; /* buffers released (over the cap, trimmed, destroyed) */
    uint64_t retries;  /* makes retried after trimming the idle buffers */
    size_t idle_bytes; /* held idle now */
    size_t idle_count;
    size_t live_bytes; /* handed out and not yet returned */
} gq_dev_pool_stats_t;

gq_dev_pool_t *gq_dev_pool_new(gq_dev_pool_make_fn make, gq_dev_pool_release_fn release, void *ctx,
                               size_t idle_cap);

/* Releases every idle buffer. Buffers still handed out must have been put back. */
void gq_dev_pool_destroy(gq_dev_pool_t **self_p);

/* The size class of a request: what get allocates and what put must be told. */
size_t gq_dev_pool_class(size_t nbytes);

/* A buffer of gq_dev_pool_class(nbytes) bytes. When making one fails, the idle buffers are
 * released and the make is tried once more (device memory held idle is memory a job
 * could use). Returns 0 or the make's error code. */
int gq_dev_pool_get(gq_dev_pool_t *self, size_t nbytes, void **handle);

/* Returns a buffer got for nbytes. The caller guarantees no queued command uses it. */
void gq_dev_pool_put(gq_dev_pool_t *self, void *handle, size_t nbytes);

/* Releases every idle buffer. */
void gq_dev_pool_trim(gq_dev_pool_t *self);

void gq_dev_pool_stats(gq_dev_pool_t *self, gq_dev_pool_stats_t *out);

#endif
