/* libgpuq: the C client of the gpuq job cluster.
 *
 *   gq_client_t *c = gq_client_new("local", NULL, err, sizeof err);  // or "tcp://host:5555"
 *   gq_job_t *job = gq_job_new("tensor.scale");
 *   gq_job_param_float(job, "factor", 2.0);
 *   gq_job_input(job, tensor);                    // the job takes its own reference
 *   if (gq_client_run(c, job) == GQ_OK)
 *       use(gq_job_output(job, 0));
 *   gq_job_destroy(&job);
 *   gq_client_destroy(&c);
 *
 * Threads: a gq_client_t holds one ZeroMQ socket and must be used by one thread at a time;
 * give each thread its own client (cheap: every "local" client of a process shares one
 * embedded cluster, every tcp client shares one ZeroMQ context). Tensors are reference
 * counted atomically and may be shared between threads and jobs; their data must not be
 * written while a job that holds them is in flight. A gq_job_t belongs to the client it
 * was submitted to until it completes.
 *
 * Every call that can fail returns a gq_status (GQ_OK = 0, failures negative) and leaves
 * a message naming the cause where the object has room for one (gq_job_error, err). */
#ifndef GPUQ_H
#define GPUQ_H

#include <stddef.h>
#include <stdint.h>
#include "dtype.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gq_client gq_client_t;
typedef struct gq_tensor gq_tensor_t;
typedef struct gq_job gq_job_t;

typedef enum {
    GQ_PRIO_REALTIME = 0,
    GQ_PRIO_INTERACTIVE = 1,
    GQ_PRIO_BATCH = 2,
    GQ_PRIO_BACKGROUND = 3,
} gq_priority_t;

typedef struct {
    int window;         /* most jobs in flight from gq_client_submit (default 512) */
    int timeout_ms;     /* default per-job timeout; 0 = wait forever (default 0) */
    int local_workers;  /* "local": worker threads in the embedded cluster (default 1) */
    int local_threads;  /* "local": compute threads per worker (default: CPU count) */
    int heartbeat_ms;   /* "local": heartbeat interval (default 1000) */
    int local_credits;  /* "local": jobs in flight per worker (default 4 x threads) */
    int local_cache_mb; /* "local": result cache in memory, MiB (default 64; 0 = none) */
    /* A job the broker refuses for room (GQ_EEXHAUSTED) is resent after the broker's
     * retry-after hint, doubled per attempt and jittered (x0.5..1.5, at most 10 s), up to
     * this many times and never past the job's timeout (default 20; 0: report at once). */
    int exhausted_retries;
} gq_client_opts_t;

/* Fills o with the defaults above. */
void gq_client_opts_init(gq_client_opts_t *o);

/* Connects to a broker: "tcp://host:port", "ipc://path", or "local" (an embedded broker and
 * worker in this process, started on first use and shared by every local client until the
 * last one is destroyed). opts may be NULL. Returns NULL with err set on failure. */
gq_client_t *gq_client_new(const char *endpoint, const gq_client_opts_t *opts, char *err,
                           size_t errlen);

/* Closes the client; jobs still in flight are abandoned (their answers dropped). Nulls
 * *self_p. */
void gq_client_destroy(gq_client_t **self_p);

/* ---- tensors ---- */

typedef void(gq_free_fn)(void *data, void *hint);

/* A new tensor owning uninitialised memory (64-byte aligned). NULL on bad dtype/shape or
 * allocation failure. */
gq_tensor_t *gq_tensor_new(gq_dtype_t dtype, const int64_t *shape, int ndim);

/* Wraps caller-owned memory without copying. nbytes must equal the size implied by dtype
 * and shape. free_fn(data, hint) runs once, from any thread, when the last reference is
 * gone (including the ones held by messages still being sent); it may be NULL. */
gq_tensor_t *gq_tensor_wrap(gq_dtype_t dtype, const int64_t *shape, int ndim, void *data,
                            size_t nbytes, gq_free_fn *free_fn, void *hint);

/* Takes another reference; returns t. */
gq_tensor_t *gq_tensor_ref(gq_tensor_t *t);

/* Drops the caller's reference and nulls *t_p. */
void gq_tensor_destroy(gq_tensor_t **t_p);

void *gq_tensor_data(const gq_tensor_t *t);
size_t gq_tensor_nbytes(const gq_tensor_t *t);
gq_dtype_t gq_tensor_dtype(const gq_tensor_t *t);
int gq_tensor_ndim(const gq_tensor_t *t);
const int64_t *gq_tensor_shape(const gq_tensor_t *t);
int64_t gq_tensor_numel(const gq_tensor_t *t);

/* ---- jobs ---- */

/* A job running op; NULL if op is NULL or too long. Ops are checked by the broker against
 * its op table (see `gpuq ops`). */
gq_job_t *gq_job_new(const char *op);

/* Appends a pipeline stage: its inputs are the outputs of the stage before, and it runs on
 * the same worker without a round trip. Params set after this call go to the new stage. */
int gq_job_then(gq_job_t *job, const char *op);

/* Params of the last stage. A param set twice keeps the last value. */
int gq_job_param_int(gq_job_t *job, const char *name, int64_t v);
int gq_job_param_float(gq_job_t *job, const char *name, double v);
int gq_job_param_bool(gq_job_t *job, const char *name, int v);
int gq_job_param_str(gq_job_t *job, const char *name, const char *v);

/* Adds an input of the first stage; the job takes its own reference. */
int gq_job_input(gq_job_t *job, gq_tensor_t *t);

/* 0 = the client's default. The broker never starts a job after its timeout has run out. */
void gq_job_set_timeout_ms(gq_job_t *job, int timeout_ms);
void gq_job_set_priority(gq_job_t *job, gq_priority_t prio);
void gq_job_set_user(gq_job_t *job, void *user);
void *gq_job_user(const gq_job_t *job);

/* ---- result cache ----
 *
 * The broker answers a job from its result cache when an identical job (same ops, same
 * params once defaults are filled, same input dtypes, shapes and bytes) ran before, and an
 * identical job arriving while one runs waits for that run. Ops flagged nondeterministic are
 * never cached. */

typedef enum {
    GQ_CACHE_USE = 0,     /* answer from the cache when possible; store the result (default) */
    GQ_CACHE_BYPASS = 1,  /* neither read nor write it, nor share an identical job's run */
    GQ_CACHE_REFRESH = 2, /* compute anew and overwrite the cached result */
} gq_cache_policy_t;

/* Where a result came from (gq_job_cache_source). */
typedef enum {
    GQ_CACHE_COMPUTED = 0, /* a worker ran the job */
    GQ_CACHE_MEMORY = 1,   /* the broker's memory tier */
    GQ_CACHE_DISK = 2,     /* its disk tier (LMDB) */
    GQ_CACHE_REDIS = 3,    /* the Redis tier shared by brokers */
    GQ_CACHE_SHARED = 4,   /* the run of an identical job in flight at the same time */
} gq_cache_source_t;

/* Cache policy of the job, and the lifetime of the entry it stores (0 = the broker's
 * default). GQ_EINVAL (and nothing changes) for an unknown policy or a TTL over 2^38 ms. */
int gq_job_cache(gq_job_t *job, gq_cache_policy_t policy, uint64_t ttl_ms);

/* Where the result of a completed job came from; GQ_CACHE_COMPUTED until then. */
gq_cache_source_t gq_job_cache_source(const gq_job_t *job);

/* "computed", "memory", "disk", "redis", "shared"; "?" otherwise. */
const char *gq_cache_source_name(int source);

/* Frees the job, its references to inputs and its outputs. A job in flight is cancelled
 * first (its answer is dropped). Nulls *job_p. */
void gq_job_destroy(gq_job_t **job_p);

/* GQ_EAGAIN while pending, GQ_OK when done, the failure's code otherwise. */
int gq_job_status(const gq_job_t *job);

/* The failure message ("tensor.clamp: param 'lo' ..."); "" when the job succeeded. */
const char *gq_job_error(const gq_job_t *job);

int gq_job_output_count(const gq_job_t *job);

/* Borrowed: valid until the job is destroyed (gq_tensor_ref to keep it longer). */
gq_tensor_t *gq_job_output(const gq_job_t *job, int index);

typedef struct {
    uint64_t queued_us;  /* admission to dispatch, at the broker */
    uint64_t compute_us; /* inside the worker, all stages */
    uint64_t total_us;   /* submit to answer, at the client */
    uint32_t batch;      /* jobs stacked into the run that computed it (0 or 1: alone) */
    uint32_t retries;    /* resends after the broker said it had no room */
} gq_job_timing_t;

void gq_job_timing(const gq_job_t *job, gq_job_timing_t *out);

/* Backend that ran a stage ("cpu", "opencl" ...); NULL when unknown. */
const char *gq_job_backend(const gq_job_t *job, int stage);

/* Name of the worker that ran the job; "" when none did (error at admission). */
const char *gq_job_worker(const gq_job_t *job);

/* ---- running ---- */

/* Submits and waits; returns gq_job_status(job). */
int gq_client_run(gq_client_t *c, gq_job_t *job);

/* Submits without waiting. Blocks while the window is full (collecting answers as they
 * come; those are then returned by gq_client_collect). The job must stay alive until it
 * is collected or destroyed. */
int gq_client_submit(gq_client_t *c, gq_job_t *job);

/* Waits up to timeout_ms (-1 = forever) for any submitted job to complete and returns it
 * in *done. GQ_ETIMEDOUT when none completed in time, GQ_EINVAL when none is in flight. */
int gq_client_collect(gq_client_t *c, int timeout_ms, gq_job_t **done);

/* Jobs submitted and not yet collected. */
int gq_client_pending(const gq_client_t *c);

/* Cancels a job in flight: the broker takes it out of its queue (or tells its worker's
 * answer to be dropped) and the job completes here with GQ_ECANCELLED (returned by
 * gq_client_collect like any other). GQ_EINVAL when the job is not in flight on c. */
int gq_client_cancel(gq_client_t *c, gq_job_t *job);

typedef struct {
    int workers;            /* registered workers */
    int64_t queued;         /* jobs waiting for a worker */
    int64_t inflight;       /* jobs on workers */
    uint64_t jobs_done;     /* answered with results */
    uint64_t jobs_failed;   /* answered with errors */
    uint64_t jobs_requeued; /* taken back from lost workers */
} gq_cluster_info_t;

/* Asks the broker for its counters (and its worker list, for gq_client_worker_info). */
int gq_client_cluster_info(gq_client_t *c, gq_cluster_info_t *out, int timeout_ms);

typedef struct {
    char name[64];
    char backends[64]; /* comma-separated, priority order */
    uint32_t credits;  /* jobs it may hold */
    uint32_t inflight; /* jobs it holds now */
    uint64_t jobs_done;
    uint32_t ms_since_seen;
    int gpus;          /* devices it announced that are GPUs */
    char devices[512]; /* "opencl: NVIDIA H100 (79.1 GiB, 132 CU, driver 550.54); ..." */
} gq_worker_info_t;

/* Worker index (0 .. workers-1) as of the last gq_client_cluster_info. GQ_EINVAL when
 * the index is out of range. */
int gq_client_worker_info(const gq_client_t *c, int index, gq_worker_info_t *out);

/* ---- cache administration (gpuqctl) ---- */

#define GQ_CACHE_INFO_BUCKETS 32

typedef struct {
    gq_cache_source_t tier; /* GQ_CACHE_MEMORY, _DISK or _REDIS */
    int up;                 /* reachable (Redis); 1 for the others */
    uint64_t hits, misses, evictions, expired, corrupt, stores, errors;
    uint64_t entries;
    uint64_t bytes_raw;    /* raw result bytes held (Redis: written by this broker) */
    uint64_t bytes_stored; /* bytes they take there, compressed where the tier compresses */
    uint64_t capacity;     /* byte budget; 0 = none */
    int nlatency;
    uint64_t latency[GQ_CACHE_INFO_BUCKETS]; /* lookups under 2^i us; the last: the rest */
    uint64_t latency_sum_us;
} gq_cache_tier_info_t;

typedef struct {
    int enabled; /* 0: the broker runs without a cache */
    int ntiers;
    gq_cache_tier_info_t tiers[4];
    uint64_t lookups, hits, misses;
    uint64_t dedup_joined; /* jobs answered by an identical job's run */
    uint64_t uncacheable, bypassed, refreshed, too_big;
    uint64_t encoded_raw, encoded_stored, encoded_shuffled; /* value encoder (disk, Redis) */
} gq_cache_info_t;

/* Asks the broker for its cache stats. */
int gq_client_cache_info(gq_client_t *c, gq_cache_info_t *out, int timeout_ms);

/* Empties every tier of the broker's cache (the Redis tier: every broker's entries). */
int gq_client_cache_clear(gq_client_t *c, int timeout_ms);

/* The broker's counters, cache included, as Prometheus text exposition; *text is malloc'd
 * (free() it). */
int gq_client_metrics(gq_client_t *c, char **text, int timeout_ms);

/* A model in the broker's store (docs/onnx.md): onnx.run jobs name it by digest. */
typedef struct {
    char digest[33]; /* 32 hex digits: the onnx.run "model" param */
    int ninputs;     /* graph inputs that are not initializers */
    int noutputs;
    char inputs[512]; /* "x: f32[?,80,100]; ..." (? for a symbolic dim) */
    char error[512];  /* why the broker refused it */
} gq_model_info_t;

/* Sends a model file to the broker's store (checked there by the ONNX loader; an identical
 * model already stored is not stored twice). GQ_EIO when the file cannot be read; the
 * broker's refusal (GQ_EFORMAT, GQ_EUNSUPPORTED, GQ_ETOOBIG ...) with out->error. */
int gq_client_model_put(gq_client_t *c, const char *path, gq_model_info_t *out, int timeout_ms);
int gq_client_model_put_bytes(gq_client_t *c, const void *bytes, size_t n, const char *name,
                              gq_model_info_t *out, int timeout_ms);

/* The models in the broker's store as text: digest, name, bytes, loads by workers, inputs
 * and outputs (`gpuq model list`, `gpuqctl models`). *text is malloc'd. */
int gq_client_models(gq_client_t *c, char **text, int timeout_ms);

/* The broker's scheduler as text (`gpuqctl queues`): per class queued, clients, oldest wait
 * and refusals; batch groups; workers with credits, backlog and health; with verbose every
 * job admitted and not yet answered, with its broker id. *text is malloc'd (free it). */
int gq_client_queues(gq_client_t *c, int verbose, char **text, int timeout_ms);

/* One job's state by broker id (`gpuq status ID`): queued (class, position, waited,
 * deadline), running (worker, for how long), or not known. GQ_EINVAL when not known; *text
 * then says so. */
int gq_client_job_state(gq_client_t *c, uint64_t broker_id, char **text, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
