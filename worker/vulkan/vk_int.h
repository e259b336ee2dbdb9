/* Internals shared by the Vulkan backend's files: device buffers, the dispatch API op
 * families use, capabilities, device discovery, and the backend's state with the functions
 * its files share (vk_backend.c: ops table; vk_stream.c: streams and submission;
 * vk_pipeline.c: pipelines and their cache; vk_setup.c: device, memory, pools). */
#ifndef GQ_VK_INT_H
#define GQ_VK_INT_H

/* vulkan_core.h: everything compute needs. */
#include <vulkan/vulkan_core.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include "optable.h"
#include "vk_spirv.h"
#include "gq_vulkan.h"

typedef struct gq_vk gq_vk_t;
typedef struct gq_vk_stream gq_vk_stream_t;

/* A device buffer (the handle of a gq_buffer_t): its own memory, mapped for good when the
 * memory is host-visible. */
typedef struct {
    VkBuffer buf;
    VkDeviceMemory mem;
    void *map;
    VkDeviceSize size;
} gq_vk_mem_t;

/* What the device can run; dtypes without the features are declined. */
typedef struct {
    bool fp64;              /* shaderFloat64 */
    bool int64;             /* shaderInt64: i64 sums */
    bool int16;             /* shaderInt16 + storageBuffer16BitAccess */
    bool int8;              /* shaderInt8 + storageBuffer8BitAccess */
    uint32_t max_groups;    /* maxComputeWorkGroupCount[0] */
    uint32_t max_local;     /* maxComputeWorkGroupSize[0], maxComputeWorkGroupInvocations */
    VkDeviceSize max_range; /* maxStorageBufferRange: the largest tensor a shader binds */
    uint32_t local;         /* work-group size of elementwise shaders */
    bool cpu_device;        /* VK_PHYSICAL_DEVICE_TYPE_CPU (lavapipe) */
} gq_vk_caps_t;

const gq_vk_caps_t *gq_vk_caps(const gq_vk_t *vk);

/* An op family (tensor.*, dsp.*): supports says whether it runs a->op on these inputs
 * (in == NULL: the op at all); run records the op on st (buffers hold at least their
 * descriptor's bytes, descriptors passed gq_op_infer). */
typedef struct {
    const char *prefix;
    bool (*supports)(const gq_vk_t *vk, const gq_args_t *a, const gq_tdesc_t *in, int nin);
    gq_status (*run)(gq_vk_t *vk, gq_vk_stream_t *st, const gq_args_t *a, const gq_tdesc_t *in_desc,
                     gq_vk_mem_t **in, int nin, const gq_tdesc_t *out_desc, gq_vk_mem_t **out,
                     int nout, char *err, size_t errlen);
} gq_vk_family_t;

extern const gq_vk_family_t gq_vk_tensor_family;
extern const gq_vk_family_t gq_vk_dsp_family;

#define GQ_VK_MAX_BINDINGS 6
#define GQ_VK_MAX_SPEC 6
#define GQ_VK_PUSH_MAX 128

/* One dispatch of shader variant `shader` (a gq_vk_spirv name) on st, after a barrier on
 * what st recorded before. spec[i] is specialization constant id i (int32; id 0 is the
 * work-group size x of shaders that take it); bufs bind 0.. in order, each over
 * min(its size, maxStorageBufferRange); push goes to the push constants (<= 128 bytes).
 * The pipeline is made on first use of (shader, spec) and kept. Errors name op and call. */
gq_status gq_vk_dispatch(gq_vk_t *vk, gq_vk_stream_t *st, const char *shader, const int32_t *spec,
                         int nspec, gq_vk_mem_t *const *bufs, int nbufs, const void *push,
                         uint32_t push_size, uint32_t groups_x, uint32_t groups_y, const char *op,
                         char *err, size_t errlen);

/* Work-groups for items work-items of local each, capped at the device's limit: shaders
 * loop over the rest (grid stride). */
uint32_t gq_vk_groups(const gq_vk_t *vk, uint64_t items, uint32_t local);

/* Copies nbytes from src to dst on st (after a barrier). */
gq_status gq_vk_copy(gq_vk_t *vk, gq_vk_stream_t *st, gq_vk_mem_t *src, gq_vk_mem_t *dst,
                     size_t nbytes, const char *op, char *err, size_t errlen);

/* Fills nbytes of dst from offset 0 with the 32-bit word v (nbytes a multiple of 4). */
gq_status gq_vk_fill(gq_vk_t *vk, gq_vk_stream_t *st, gq_vk_mem_t *dst, size_t nbytes, uint32_t v,
                     const char *op, char *err, size_t errlen);

/* A device buffer of at least nbytes for the rest of the current op (intermediates, small
 * tables): from the pool, given back once the op has ended and the stream has run every
 * command recorded before (no wait of its own: the stream's next wait gives it back). */
gq_status gq_vk_scratch(gq_vk_t *vk, gq_vk_stream_t *st, size_t nbytes, gq_vk_mem_t **out,
                        const char *op, char *err, size_t errlen);

/* Writes host bytes into a buffer at byte offset off, ordered with the stream's commands
 * (vkCmdUpdateBuffer: the bytes travel in the command buffer; small tables). */
gq_status gq_vk_write(gq_vk_t *vk, gq_vk_stream_t *st, gq_vk_mem_t *dst, size_t off,
                      const void *src, size_t nbytes, const char *op, char *err, size_t errlen);

/* Reads bytes of a buffer into host memory, waiting for what st queued (small results the
 * host needs mid-op). */
gq_status gq_vk_read(gq_vk_t *vk, gq_vk_stream_t *st, void *dst, gq_vk_mem_t *src, size_t off,
                     size_t nbytes, const char *op, char *err, size_t errlen);

/* The Vulkan state of a "vulkan" backend; NULL for any other. */
gq_vk_t *gq_vk_of(gq_backend_t *be);

/* Work outside a backend run (gq_vk_sgemm, the ONNX accelerator): begin locks the calling
 * thread's stream; end ends the op (its scratch buffers go back once the stream has run
 * it) and unlocks the stream, returning rc or the submit's failure. With submit, end
 * submits what is recorded (without waiting); without, the commands stay recorded and the
 * thread's later ops append to them (one submission for many ops), until a transfer, sync,
 * free or gq_vk_flush, a full descriptor pool or scratch list, or an op that submits; the
 * caller must make one of these happen before the host reads or frees what they write. */
gq_status gq_vk_run_begin(gq_vk_t *vk, gq_vk_stream_t **st, const char *op, char *err,
                          size_t errlen);
gq_status gq_vk_run_end(gq_vk_t *vk, gq_vk_stream_t *st, gq_status rc, bool submit, const char *op,
                        char *err, size_t errlen);

/* Submits what the calling thread's stream recorded and waits for it; errors name op. */
gq_status gq_vk_flush(gq_vk_t *vk, const char *op, char *err, size_t errlen);

/* Writes nbytes of host memory at src into dst from offset 0, ordered after the commands
 * st recorded, without submitting: a mapped dst with nothing recorded by memcpy (once the
 * stream is idle), else a copy from a staging buffer (kept as scratch) recorded on st.
 * Inside gq_vk_run_begin/end. */
gq_status gq_vk_upload(gq_vk_t *vk, gq_vk_stream_t *st, gq_vk_mem_t *dst, const void *src,
                       size_t nbytes, const char *op, char *err, size_t errlen);

/* ---- devices (vk_device.c) ---- */

#define GQ_VK_MAX_DEVICES 16

typedef struct {
    VkPhysicalDevice pd;
    VkPhysicalDeviceProperties props;
    char driver_name[64];
    char driver_info[128];
    uint64_t memory_bytes; /* the largest device-local heap */
    int compute_family;    /* a queue family with compute; -1: none */
} gq_vk_dev_t;

/* A Vulkan 1.1+ instance (the loader finds the drivers); NULL with err set when there is
 * none. */
VkInstance gq_vk_instance(char *err, size_t errlen);

/* Every physical device of inst; returns the count, 0 with err set when none. */
int gq_vk_discover(VkInstance inst, gq_vk_dev_t *out, int max, char *err, size_t errlen);

/* The device cfg asks for (index, else name match), else the preferred type (discrete,
 * integrated, virtual, other, CPU unless gpu_only); -1 with err set when none fits. */
int gq_vk_choose(const gq_backend_config_t *cfg, const gq_vk_dev_t *devs, int n, char *err,
                 size_t errlen);

void gq_vk_fill_info(const gq_vk_dev_t *d, gq_device_info_t *info);
const char *gq_vk_type_name(VkPhysicalDeviceType t);

/* ---- backend state (vk_backend.c, vk_stream.c, vk_pipeline.c, vk_setup.c) ---- */

#define GQ_VK_MAX_STREAMS 16
#define GQ_VK_MAX_SCRATCH 16

struct gq_vk_stream {
    pthread_mutex_t mu;
    pthread_t owner;
    VkCommandPool cpool;
    VkCommandBuffer cb;
    VkFence fence;
    VkDescriptorPool dpool;
    bool recording; /* cb is between begin and end */
    bool inflight;  /* submitted, fence not yet waited for */
    int ncmds;      /* commands recorded since begin */
    int nsets;      /* descriptor sets allocated since the pool was reset */
    struct {
        void *h;
        size_t nbytes;
        gq_dev_pool_t *pool;
    } scratch[GQ_VK_MAX_SCRATCH];
    int nscratch;
    int nended; /* scratch[0..nended) belong to ended ops: back to their pool once idle */
};

typedef struct {
    int shader;
    int nspec, nbufs;
    int32_t spec[GQ_VK_MAX_SPEC];
    VkPipeline pipe;
} gq_vk_pipe_t;

struct gq_vk {
    uint64_t id; /* tags the thread-local stream pointer */
    VkInstance inst;
    VkPhysicalDevice pd;
    VkDevice dev;
    VkQueue queue;
    uint32_t qfamily;
    pthread_mutex_t qmu;
    gq_vk_dev_t d;
    gq_device_info_t info;
    gq_vk_caps_t caps;
    uint32_t mem_type, stage_type;
    bool direct;
    VkDescriptorSetLayout dsl[GQ_VK_MAX_BINDINGS + 1];
    VkPipelineLayout pl[GQ_VK_MAX_BINDINGS + 1];
    /* pipelines */
    pthread_mutex_t pmu;
    VkPipelineCache pcache;
    gq_vk_pcache_origin_t pcache_origin;
    size_t pcache_loaded;
    char cache_dir[512], cache_file[512];
    uint8_t key[GQ_DEV_KEY_BYTES];
    VkShaderModule *modules; /* per gq_vk_spirv entry, made on first use */
    gq_vk_pipe_t *pipes;
    int npipes, cappipes;
    uint64_t pipeline_us;
    /* memory */
    gq_dev_pool_t *pool, *stage;
    /* streams */
    pthread_mutex_t mu;
    gq_vk_stream_t *streams[GQ_VK_MAX_STREAMS];
    int nstreams;
    atomic_uint_fast64_t submits;
    atomic_int lost;
    atomic_int fault_left[GQ_VK_FAULT_COUNT];
    int fault_code[GQ_VK_FAULT_COUNT];
    int fault_skip[GQ_VK_FAULT_COUNT];
};

/* gq_vk_fail, and a failure that means the device is gone marks the backend lost: from
 * then on it declines every op, and the worker serves on the CPU. */
gq_status gq_vk_error(gq_vk_t *vk, char *err, size_t errlen, const char *op, const char *call,
                      int code);

/* The injected failure code for the next call of kind, or 0 (gq_backend_vulkan_inject). */
int gq_vk_inject(gq_vk_t *vk, gq_vk_fault_t kind);

/* The calling thread's stream, made on its first call. NULL with err set on failure. */
gq_vk_stream_t *gq_vk_stream(gq_vk_t *vk, const char *op, char *err, size_t errlen);
void gq_vk_stream_free(gq_vk_t *vk, gq_vk_stream_t *st);

/* Ends and submits what the stream recorded; with wait, waits for it too. */
gq_status gq_vk_submit(gq_vk_t *vk, gq_vk_stream_t *st, bool wait, const char *op, char *err,
                       size_t errlen);

/* Host <-> device bytes at offset off of m, after everything the stream queued. */
gq_status gq_vk_xfer(gq_vk_t *vk, gq_vk_stream_t *st, gq_vk_mem_t *m, size_t off, void *host,
                     size_t nbytes, bool write, const char *op, char *err, size_t errlen);

/* The pipeline of (shader, spec, nbufs), made on first use; NULL with err set. */
VkPipeline gq_vk_pipeline(gq_vk_t *vk, const char *shader, const int32_t *spec, int nspec,
                          int nbufs, const char *op, char *err, size_t errlen);

/* Descriptor set and pipeline layouts for 1..GQ_VK_MAX_BINDINGS buffers. */
VkResult gq_vk_layouts(gq_vk_t *vk);

/* Creates the VkPipelineCache from its file when valid, else empty. */
VkResult gq_vk_pcache_open(gq_vk_t *vk);

/* Saves the pipeline cache, then destroys pipelines, shader modules, the cache and the
 * layouts. */
void gq_vk_pipelines_destroy(gq_vk_t *vk);

/* The backend's init (s_vk_ops.init): device, memory types, layouts, pipeline cache,
 * pools. */
gq_status gq_vk_init(gq_backend_t *be, const gq_backend_config_t *cfg, char *err, size_t errlen);

#endif
