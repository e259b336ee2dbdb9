/* libgpuq internals shared by the client's files. */
#ifndef GQ_CLIENT_INT_H
#define GQ_CLIENT_INT_H

#include <stdatomic.h>
#include <zmq.h>
#include "gpuq.h"
#include "optable.h"
#include "tensor.h"
#include "wire.h"

#if defined(GQ_BUILDING_LIB)
#define GQ_EXPORT __attribute__((visibility("default")))
#else
#define GQ_EXPORT
#endif

#define GQ_JOB_MAX_STAGES GQ_WIRE_MAX_STAGES
#define GQ_JOB_ERRLEN 512

struct gq_tensor {
    atomic_int refs;
    gq_tdesc_t desc;
    void *data;
    size_t nbytes;
    gq_free_fn *free_fn;
    void *hint;
};

typedef struct {
    char name[GQ_MAX_NAME];
    gq_value_t v; /* v.s owned (strdup) for strings */
} s_jparam_t;

typedef struct {
    char op[GQ_MAX_NAME];
    int nparams;
    s_jparam_t params[GQ_MAX_PARAMS];
} gq_jstage_t;

typedef enum { GQ_JOB_IDLE = 0, GQ_JOB_INFLIGHT, GQ_JOB_DONE } gq_job_state_t;

struct gq_job {
    gq_jstage_t stages[GQ_JOB_MAX_STAGES];
    int nstages;
    gq_tensor_t *inputs[GQ_MAX_INPUTS];
    int ninputs;
    int timeout_ms;
    int prio;
    int cache_policy;
    uint64_t cache_ttl_ms;
    void *user;
    int bad; /* a builder call failed: submit reports it */
    char bad_msg[GQ_JOB_ERRLEN];
    /* run state */
    gq_client_t *client;
    uint64_t id;
    gq_job_state_t state;
    int sync; /* completed jobs of gq_client_run skip the collect list */
    int status;
    char error[GQ_JOB_ERRLEN];
    gq_tensor_t *outputs[GQ_MAX_OUTPUTS];
    int noutputs;
    char backends[GQ_JOB_MAX_STAGES][GQ_MAX_NAME];
    int nbackends;
    char worker[GQ_MAX_NAME];
    int cache_source;
    uint64_t submit_us;
    uint64_t deadline_us;
    gq_job_timing_t timing;
    gq_job_t *next_done;
    uint64_t retry_at_us; /* waiting to be resent after GQ_EEXHAUSTED; 0: not */
    gq_job_t *next_retry;
};

/* Tensor over a received frame: zero-copy when the frame is aligned for the dtype. */
gq_tensor_t *gq_tensor_from_msg(const gq_tdesc_t *desc, zmq_msg_t *msg);

/* Drops outputs and run state so the job can be submitted again. */
void gq_job_reset_result(gq_job_t *job);

/* Called by gq_job_destroy for a job still owned by a client. */
void gq_client_forget(gq_client_t *c, gq_job_t *job);

/* Answers that matched no job in flight (late after a timeout or cancel; otherwise a
 * duplicate). For tests of exactly-once delivery. */
uint64_t gq_client_unmatched(const gq_client_t *c);

/* The process-wide ZeroMQ context, shared by every client; refcounted. */
void *gq_lib_ctx_acquire(void);
void gq_lib_ctx_release(void);

/* The process-wide embedded cluster ("local"); refcounted. Returns its client endpoint. */
const char *gq_local_acquire(void *ctx, const gq_client_opts_t *o, char *err, size_t errlen);
void gq_local_release(void);

#endif
