/* Runs a job (one op or a pipeline) over the worker's backends: for each stage, the first
 * backend in priority order whose supports_op says yes; a stage that an earlier backend
 * declined counts as a fallback, and strict mode makes that an error.
 *
 * Stage boundaries carry backend buffers: a stage's outputs stay where its backend put
 * them, and data moves only when the next stage runs on a backend that cannot use them
 * (device -> host for the CPU, host -> device for a GPU), so a pipeline whose stages all
 * run on one GPU keeps its intermediates there. The CPU path stays zero-copy: host memory
 * is wrapped, never copied. Job inputs are uploaded once per device stage that reads them
 * from the host; outputs are downloaded once, at the end. */
#ifndef GQ_EXEC_H
#define GQ_EXEC_H

#include <stdatomic.h>
#include "backend.h"
#include "wire.h"

#define GQ_EXEC_MAX_BACKENDS 4
#define GQ_EXEC_MAX_OPS 128  /* op table entries counted per op; more share the last slot */
#define GQ_EXEC_MAX_NAMED 96 /* fallbacks of ops outside the op table ("onnx.Conv") */

/* Fallbacks of an op outside the op table: an ONNX step ("onnx.<OpType>") that the
 * worker's accelerator declined inside an onnx.run stage. */
typedef struct {
    char op[48];
    atomic_uint_least64_t by[GQ_EXEC_MAX_BACKENDS];
} gq_exec_named_t;

typedef struct gq_exec gq_exec_t;

struct gq_exec {
    gq_backend_t *backends[GQ_EXEC_MAX_BACKENDS]; /* priority order, cpu last */
    int nbackends;
    int strict;
    atomic_uint_least64_t fallbacks; /* stages run below the top-priority backend */
    atomic_uint_least64_t retries;   /* of which: retried after a device failure */
    /* [op index in the op table][backend index]: stages of the op that backend was
     * passed over for (declined, or failed with a lost or full device) and a lower one
     * ran. Zero-initialised with the struct. */
    atomic_uint_least64_t fallback_by[GQ_EXEC_MAX_OPS][GQ_EXEC_MAX_BACKENDS];
    /* Runs GQ_OPF_HOSTED ops (onnx.run) on host memory: in[] readable, out[0..*nout) fresh
     * 64-byte-aligned buffers the executor frees; ex: this executor (its backends, strict,
     * the fallback counters); *backend: the backend that ran the stage's work (a static
     * string; left NULL: "cpu"). NULL hook: such stages fail as unsupported. */
    gq_status (*hosted)(void *ctx, gq_exec_t *ex, const gq_args_t *a, const gq_view_t *in, int nin,
                        gq_view_t *out, int *nout, const char **backend, char *err, size_t errlen);
    void *hosted_ctx;
    /* Fallbacks of named ops (gq_exec_count_fallback), nnamed in use; named_lock guards
     * adding a name (counts are atomic). Zero-initialised with the struct. */
    gq_exec_named_t named[GQ_EXEC_MAX_NAMED];
    atomic_int nnamed;
    atomic_flag named_lock;
};

/* Output of a job: host buffers, 64-byte aligned, owned by the caller (free()). */
typedef struct {
    int n;
    gq_view_t t[GQ_MAX_OUTPUTS];
    const char *backend[GQ_WIRE_MAX_STAGES]; /* per stage; static strings */
} gq_exec_out_t;

/* Runs stages over in[0..nin) (host memory, any alignment). On failure *out holds nothing
 * and err names the stage's op and the cause. A stage whose backend fails with
 * GQ_EDEVICE_OOM or GQ_EDEVICE_LOST is retried on the next backend that runs the op
 * (counted as a fallback of the failing backend), unless strict. */
gq_status gq_exec_run(gq_exec_t *ex, Gq__Wire__Stage *const *stages, size_t nstages,
                      const gq_view_t *in, int nin, gq_exec_out_t *out, char *err, size_t errlen);

void gq_exec_out_free(gq_exec_out_t *out);

/* Counts one fallback of op away from the backend named backend: an op of the op table
 * (also counted in fallbacks, as a stage), or any other name, such as "onnx.Conv" for an
 * ONNX step the accelerator declined (at most GQ_EXEC_MAX_NAMED names; later ones count
 * under "other"). Names of backends this executor does not have are ignored. */
void gq_exec_count_fallback(gq_exec_t *ex, const char *op, const char *backend);

/* Fallbacks of op away from the backend named backend (fallbacks_total{op,backend}); 0
 * for names this executor does not have. */
uint64_t gq_exec_fallbacks(gq_exec_t *ex, const char *op, const char *backend);

/* Prometheus text lines, one per nonzero count:
 *   gpuq_worker_fallbacks_total{op="tensor.cast",backend="opencl"} 3
 * Returns the number of lines; stops (NUL-terminated) where buf is full. */
int gq_exec_fallbacks_text(gq_exec_t *ex, char *buf, size_t len);

#endif
