/* A process-wide parallel-for for the CPU kernels: a fixed pool of threads that help
 * whichever gq_par_for calls are running. The worker's compute threads each run whole jobs
 * and may call gq_par_for at the same time; pool threads join whichever task is published,
 * and a caller always works its own task too, so when every pool thread is busy a call
 * just runs on its caller (no oversubscription, no deadlock).
 *
 * Threads: gq_par_set_threads, else the GQ_THREADS environment variable, else 1 (serial). */
#ifndef GQ_PAR_H
#define GQ_PAR_H

#include <stdint.h>

/* fn(ctx, i, tid) for every i in [0, n); tid in [0, gq_par_threads()) names the participant
 * (the caller is 0) so tasks can use per-participant scratch. */
typedef void (*gq_par_fn)(void *ctx, int64_t i, int tid);

/* Runs fn over [0, n) on the calling thread and on whichever pool threads are idle
 * (help-first: an index is claimed atomically by whoever comes; the call returns when all
 * are done). Serial when n <= 1, when the pool has no threads, or when called from inside
 * a gq_par_for task (no nesting). */
void gq_par_for(int64_t n, gq_par_fn fn, void *ctx);

/* The most participants one gq_par_for can have (pool threads + 1), >= 1. */
int gq_par_threads(void);

/* Sets the process-wide number of participants (1: serial, the pool is stopped); starts the
 * pool threads lazily on the first parallel call. Also sets OpenBLAS to one thread
 * (openblas_set_num_threads): the ONNX GEMM splits large products over this pool, so one
 * scheduler owns the cores. Default: from the GQ_THREADS environment variable if set
 * (OpenBLAS then one thread too), else 1 (OpenBLAS keeps its own setting). Meant for start-up: a
 * kernel sizes per-participant scratch by gq_par_threads() just before its gq_par_for, so changing
 * it while kernels run is not safe. */
void gq_par_set_threads(int n);

/* Work (elements touched, taps summed) below which a kernel stays serial: a gq_par_for
 * costs microseconds, as much as a few tens of thousands of simple element operations.
 * The GQ_PAR_MIN_WORK environment variable overrides it (tests set 1 to run every threaded
 * path on small tensors). */
#define GQ_PAR_MIN_WORK 32768
int64_t gq_par_min_work(void);

/* gq_par_for when work reaches gq_par_min_work(), else the same loop on the caller. */
void gq_par_for_work(int64_t n, int64_t work, gq_par_fn fn, void *ctx);

#endif
