/* The Vulkan backend's API (worker/vulkan): its constructor, and beyond backend.h the
 * buffer pool and the pipeline cache file as classes of their own, introspection, fault
 * injection, device listing and the SGEMM the ONNX accelerator builds on. No Vulkan header
 * needed: Vulkan results travel as int.
 *
 * Note on the name: worker/ is on the include path, so this file is what
 * <vulkan/vulkan.h> finds there; the backend's own files include <vulkan/vulkan_core.h>
 * (everything compute needs) and nothing in gpuq includes <vulkan/vulkan.h>. */
#ifndef GQ_VULKAN_H
#define GQ_VULKAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "backend.h"
#include "status.h"

/* The Vulkan backend on one physical device chosen by cfg: device_index (in the order of
 * vkEnumeratePhysicalDevices, as gq_vulkan_list gives them), else device_match (a
 * case-insensitive substring of the name, vendor or driver), else the first discrete GPU,
 * then integrated, virtual, other GPU, then a CPU device (lavapipe) unless cfg->gpu_only.
 * NULL with err set when there is no Vulkan driver, no device fits, or the device lacks
 * what the backend needs (a compute queue, Vulkan 1.1). */
gq_backend_t *gq_backend_vulkan_new(const gq_backend_config_t *cfg, char *err, size_t errlen);

/* Every Vulkan physical device, in the order device_index counts them; returns the count
 * written (0 with err set when none). */
int gq_vulkan_list(gq_device_info_t *out, int max, char *err, size_t errlen);

/* ---- errors ---- */

/* The gq_status for a VkResult: VK_ERROR_DEVICE_LOST -> GQ_EDEVICE_LOST;
 * VK_ERROR_OUT_OF_DEVICE_MEMORY (and _POOL_MEMORY, _FRAGMENTED_POOL, FRAGMENTATION) ->
 * GQ_EDEVICE_OOM; VK_ERROR_OUT_OF_HOST_MEMORY -> GQ_ENOMEM; VK_SUCCESS and other
 * non-negative codes -> GQ_OK; any other error -> GQ_EBACKEND. */
gq_status gq_vk_status(int result);

/* "VK_ERROR_DEVICE_LOST"; NULL for a code not named here. */
const char *gq_vk_errname(int result);

/* Writes "op: vulkan: call: VK_NAME" (or "... VkResult -1234") into err and returns
 * gq_vk_status(result). op may be NULL for backend-level calls. */
gq_status gq_vk_fail(char *err, size_t errlen, const char *op, const char *call, int result);

/* ---- buffer pool (vk_pool.c: the OpenCL pool's design, cl_pool.c) ---- */

/* Device buffers recycled by size class, so a steady stream of jobs allocates no memory.
 * Classes are 4 per power of two (waste <= 25%), 256 bytes at least. Idle buffers are
 * kept up to a byte cap, least recently returned released first. Thread-safe. */
typedef struct gq_vk_pool gq_vk_pool_t;

/* Makes a buffer of exactly nbytes in *handle; returns 0 or a (negative) VkResult. */
typedef int (*gq_vk_pool_make_fn)(void *ctx, size_t nbytes, void **handle);
typedef void (*gq_vk_pool_release_fn)(void *ctx, void *handle);

typedef struct {
    uint64_t hits;     /* gets served from idle buffers */
    uint64_t misses;   /* gets that made a buffer */
    uint64_t released; /* buffers released (over the cap, trimmed, destroyed) */
    uint64_t retries;  /* makes retried after trimming the idle buffers */
    size_t idle_bytes; /* held idle now */
    size_t idle_count;
    size_t live_bytes; /* handed out and not yet returned */
} gq_vk_pool_stats_t;

gq_vk_pool_t *gq_vk_pool_new(gq_vk_pool_make_fn make, gq_vk_pool_release_fn release, void *ctx,
                             size_t idle_cap);
void gq_vk_pool_destroy(gq_vk_pool_t **self_p);
size_t gq_vk_pool_class(size_t nbytes);
/* A buffer of gq_vk_pool_class(nbytes) bytes; when making one fails, the idle buffers are
 * released and the make tried once more. Returns 0 or the make's error code. */
int gq_vk_pool_get(gq_vk_pool_t *self, size_t nbytes, void **handle);
/* Returns a buffer got for nbytes. The caller guarantees no submitted command uses it. */
void gq_vk_pool_put(gq_vk_pool_t *self, void *handle, size_t nbytes);
void gq_vk_pool_trim(gq_vk_pool_t *self);
void gq_vk_pool_stats(gq_vk_pool_t *self, gq_vk_pool_stats_t *out);

/* ---- pipeline cache file (vk_cache.c: the OpenCL program cache's format) ---- */

#define GQ_VK_KEY_BYTES 16

/* $GQ_VK_CACHE_DIR, else $XDG_CACHE_HOME/gpuq/vk, else $HOME/.cache/gpuq/vk; "" if none. */
void gq_vk_cache_dir(char *out, size_t len);
/* XXH3-128 over parts[0..n), each length-prefixed. */
void gq_vk_cache_key(const char *const *parts, const size_t *lens, int n,
                     uint8_t key[GQ_VK_KEY_BYTES]);
/* <dir>/<32 hex digits>.bin */
void gq_vk_cache_path(const char *dir, const uint8_t key[GQ_VK_KEY_BYTES], char *out, size_t len);
/* The entry for key into *data (malloc'd) and *n. GQ_EIO: none; GQ_EFORMAT with the reason
 * in why: not a valid entry for key (the caller starts empty and stores over it). */
gq_status gq_vk_cache_load(const char *dir, const uint8_t key[GQ_VK_KEY_BYTES], void **data,
                           size_t *n, char *why, size_t whylen);
/* Writes the entry atomically (temp file, fsync, rename), creating dir. */
gq_status gq_vk_cache_store(const char *dir, const uint8_t key[GQ_VK_KEY_BYTES], const void *data,
                            size_t n, char *err, size_t errlen);

/* ---- introspection (tests, benchmarks) ---- */

typedef enum {
    GQ_VK_PCACHE_NEW = 0,     /* no cache entry: empty VkPipelineCache, stored at destroy */
    GQ_VK_PCACHE_LOADED = 1,  /* created from a valid cache entry */
    GQ_VK_PCACHE_INVALID = 2, /* the entry was invalid (or refused): started empty */
    GQ_VK_PCACHE_NONE = 3     /* no cache directory */
} gq_vk_pcache_origin_t;

typedef struct {
    gq_vk_pcache_origin_t pcache;
    char cache_file[512];
    size_t pcache_loaded_bytes; /* bytes handed to vkCreatePipelineCache */
    bool fp64;                  /* shaderFloat64 (and not GQ_VK_NO_FP64) */
    bool int8, int16;           /* u8 / i16 tensors (8/16-bit storage and arithmetic) */
    bool direct;                /* buffers are host-visible: transfers are memcpy, no staging */
    int streams;                /* per-thread command streams made so far */
    int pipelines;              /* compute pipelines made so far */
    uint64_t pipeline_us;       /* time spent making them */
    uint64_t submits;           /* vkQueueSubmit calls */
    gq_vk_pool_stats_t pool;    /* device buffers */
    gq_vk_pool_stats_t staging; /* host-visible staging buffers (when not direct) */
} gq_vk_stats_t;

/* GQ_EINVAL when be is not a Vulkan backend. */
gq_status gq_backend_vulkan_stats(gq_backend_t *be, gq_vk_stats_t *out);

/* Fault injection: after `after` more calls of kind succeed, the next count fail with
 * VkResult code (e.g. -2, VK_ERROR_OUT_OF_DEVICE_MEMORY; -4, VK_ERROR_DEVICE_LOST) as if
 * the driver had returned it. For tests; not thread-safe against concurrent jobs. */
typedef enum {
    GQ_VK_FAULT_ALLOC = 0,  /* the backend's alloc (pool hit or not) */
    GQ_VK_FAULT_SUBMIT = 1, /* vkQueueSubmit */
    GQ_VK_FAULT_COUNT
} gq_vk_fault_t;

void gq_backend_vulkan_inject(gq_backend_t *be, gq_vk_fault_t kind, int code, int after, int count);

/* ---- SGEMM on device buffers ---- */

/* C = alpha op(A) op(B) + beta C, f32, row-major: op(A) is m x k, op(B) k x n, C m x n;
 * op(X) = X, or X transposed when tX. lda, ldb, ldc: row strides in elements of A, B, C as
 * stored; *_off: element offsets of each matrix in its buffer. beta == 0: C is not read
 * (NaN in C does not propagate); alpha == 0: A and B are not read (BLAS rules). Buffers
 * are the backend's (alloc); the multiply is queued on the calling thread's stream, like a
 * run: download or sync wait for it. GQ_EINVAL when a matrix does not fit its buffer or a
 * size passes 2^31 - 1 elements. */
typedef struct {
    bool ta, tb;
    int m, n, k;
    float alpha, beta;
    int lda, ldb, ldc;
    size_t a_off, b_off, c_off;
} gq_vk_gemm_t;

gq_status gq_vk_sgemm(gq_backend_t *be, const gq_vk_gemm_t *g, const gq_buffer_t *a,
                      const gq_buffer_t *b, gq_buffer_t *c, char *err, size_t errlen);

#endif
