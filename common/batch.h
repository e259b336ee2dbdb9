/* Batching: what stacking jobs means, shared by the broker (which stacks) and the worker
 * (which splits).
 *
 * k jobs with the same ops, params and input shapes/dtypes are stacked by giving every
 * input a new leading axis of size k (job i's bytes at row i). An op may be stacked when it
 * has GQ_OPF_BATCHABLE: its leading dims are independent signals, so the stacked run's
 * outputs are the k jobs' own outputs along a new leading axis, bit for bit
 * (tests/unit/test_batch.c checks every such op on the CPU backend). */
#ifndef GQ_BATCH_H
#define GQ_BATCH_H

#include "optable.h"

/* 1 when every stage is GQ_OPF_BATCHABLE and, stacked two deep, every stage's shape rule
 * gives the single job's outputs with a leading 2 (the pipeline is checked stage by stage,
 * so an op whose rule would mix rows refuses here even if flagged). */
int gq_batch_ok(const gq_args_t *stages, int nstages, const gq_tdesc_t *in, int nin);

/* gq_batch_ok, and on success the single job's outputs after those stages in out[0..*nout)
 * (GQ_MAX_OUTPUTS room; the inputs when nstages is 0) when out is not NULL. */
int gq_batch_prefix(const gq_args_t *stages, int nstages, const gq_tdesc_t *in, int nin,
                    gq_tdesc_t *out, int *nout);

/* d with a leading axis of size k; GQ_ESHAPE when it already has GQ_MAX_DIMS dims. */
gq_status gq_batch_stack_desc(const gq_tdesc_t *d, int64_t k, gq_tdesc_t *out);

#endif
