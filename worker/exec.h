/* Runs a job (one op or a pipeline) over the worker's backends: for each stage, the first
 * backend in priority order whose supports_op says yes; a stage that an earlier backend
 * declined counts as a fallback, and strict mode makes that an error. */
#ifndef GQ_EXEC_H
#define GQ_EXEC_H

#include <stdatomic.h>
#include "backend.h"
#include "wire.h"

#define GQ_EXEC_MAX_BACKENDS 4

typedef struct {
    gq_backend_t *backends[GQ_EXEC_MAX_BACKENDS]; /* priority order, cpu last */
    int nbackends;
    int strict;
    atomic_uint_least64_t fallbacks; /* stages run below the top-priority backend */
} gq_exec_t;

/* Output of a job: host buffers, 64-byte aligned, owned by the caller (free()). */
typedef struct {
    int n;
    gq_view_t t[GQ_MAX_OUTPUTS];
    const char *backend[GQ_WIRE_MAX_STAGES]; /* per stage; static strings */
} gq_exec_out_t;

/* Runs stages over in[0..nin) (host memory, any alignment). On failure *out holds nothing
 * and err names the stage's op and the cause. */
gq_status gq_exec_run(gq_exec_t *ex, Gq__Wire__Stage *const *stages, size_t nstages,
                      const gq_view_t *in, int nin, gq_exec_out_t *out, char *err, size_t errlen);

void gq_exec_out_free(gq_exec_out_t *out);

#endif
