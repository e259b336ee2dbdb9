/* The Vulkan backend's API (worker/vulkan): its constructor, and beyond backend.h the
 * pipeline cache file's kind (the buffer pool and the cache are shared classes:
 * dev_pool.h, dev_cache.h), introspection, fault injection, device listing and the SGEMM
 * the ONNX accelerator builds on. No Vulkan header needed: Vulkan results travel as int.
 * Named gq_vulkan.h so that it does not shadow <vulkan/vulkan.h> (worker/ is on the
 * include path). */
#ifndef GQ_VULKAN_H
#define GQ_VULKAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "backend.h"
#include "dev_cache.h"
#include "dev_pool.h"
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

/* ---- pipeline cache file ---- */

/* The pipeline cache's files (dev_cache.h): magic "GQVKPLC", $GQ_VK_CACHE_DIR, else
 * $XDG_CACHE_HOME/gpuq/vk, else $HOME/.cache/gpuq/vk. */
extern const gq_dev_cache_kind_t gq_vk_cache_kind;

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
    size_t pcache_loaded_bytes;  /* bytes handed to vkCreatePipelineCache */
    bool fp64;                   /* shaderFloat64 (and not GQ_VK_NO_FP64) */
    bool int8, int16;            /* u8 / i16 tensors (8/16-bit storage and arithmetic) */
    bool direct;                 /* buffers are host-visible: transfers are memcpy, no staging */
    int streams;                 /* per-thread command streams made so far */
    int pipelines;               /* compute pipelines made so far */
    uint64_t pipeline_us;        /* time spent making them */
    uint64_t submits;            /* vkQueueSubmit calls */
    gq_dev_pool_stats_t pool;    /* device buffers */
    gq_dev_pool_stats_t staging; /* host-visible staging buffers (when not direct) */
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
