/* gq_cost: learned compute time per signature (ops, params, input size bucket), robust to
 * outliers: the first samples are averaged, later ones are clipped to [est/4, est*4] before
 * an exponential moving average, so one stalled run cannot make a worker look 100x slow,
 * while a worker that really slows down converges to its new cost within ~10 runs. */
#ifndef GQ_COST_H
#define GQ_COST_H

#include <stdint.h>

typedef struct gq_cost gq_cost_t;

gq_cost_t *gq_cost_new(void);
void gq_cost_destroy(gq_cost_t **self_p);

/* Records a measured compute time (per job) for sig; out of memory drops the sample. */
void gq_cost_learn(gq_cost_t *self, uint64_t sig, double us);

/* The estimate for sig in microseconds; 0 when never measured. */
double gq_cost_get(const gq_cost_t *self, uint64_t sig);

/* Mean of every sample's estimate so far (0: none): the guess for a signature never seen. */
double gq_cost_mean(const gq_cost_t *self);

/* Signature of a job for the cost tables: its ops-and-params hash and the power of two of
 * its input bytes (jobs 2x apart in size are costed apart). */
uint64_t gq_cost_sig(uint64_t ops_hash, uint64_t in_bytes);

#endif
