/* gq_sched: the broker's queues. Pure data structure with the clock passed in, so every
 * ordering rule is unit-tested without sockets or sleeps (docs/scheduler.md).
 *
 * Order: class (realtime > interactive > batch > background), then earliest deadline, then
 * a start-time fair-queueing tag per client (clients with jobs queued in a class take turns;
 * one client's jobs keep their arrival order), then arrival. A job waiting longer than its
 * class's aging time moves up one class, never above `aging_top`.
 *
 * Batching: jobs with the same non-zero batch key and class form a group. When a group's
 * member is picked, the group leaves together, up to batch_max jobs; a group smaller than
 * batch_max whose oldest member has waited less than batch_delay_us is held back (other
 * jobs go first) until it fills or the delay passes.
 *
 * Bounds: total, per class, and per client within a class (a client holds at most
 * client_share of its class's capacity, so no client can fill the queue for the rest).
 * The scheduler does not own jobs: the caller embeds gq_sched_job_t in its own struct. */
#ifndef GQ_SCHED_H
#define GQ_SCHED_H

#include <stddef.h>
#include <stdint.h>

#define GQ_SCHED_NCLASSES 4
#define GQ_SCHED_MAX_PREFERRED 4

typedef struct gq_sched gq_sched_t;
typedef struct gq_sched_group gq_sched_group_t;

typedef struct {
    uint32_t max;      /* most jobs per dispatch; <= 1: no batching */
    uint32_t delay_us; /* how long a partial batch may wait to fill; 0: never waits */
    uint32_t preferred[GQ_SCHED_MAX_PREFERRED]; /* sizes to cut at when more are queued; 0 ends */
} gq_sched_batch_t;

typedef struct gq_sched_job {
    /* set by the caller before gq_sched_push */
    int cls;              /* 0 realtime .. 3 background */
    uint64_t deadline_us; /* 0: none */
    uint64_t client;      /* non-zero id of the submitter, for fair share and bounds */
    uint64_t batch_key;   /* 0: always dispatched alone */
    gq_sched_batch_t batch;
    /* the scheduler's; the caller reads arrival_us and cur_cls */
    uint64_t arrival_us;
    uint64_t class_since_us;
    uint64_t seq;
    uint64_t vtag;
    int cur_cls;
    int heap_pos; /* -1: not queued */
    struct gq_sched_job *fifo_prev, *fifo_next;
    struct gq_sched_job *grp_prev, *grp_next;
    gq_sched_group_t *group;
} gq_sched_job_t;

typedef struct {
    size_t max_queue;                     /* all classes (default 100000) */
    size_t max_class[GQ_SCHED_NCLASSES];  /* 0: max_queue */
    double client_share;                  /* 0 < share <= 1 (default 0.5) */
    size_t client_min;                    /* a client may always hold this many (64) */
    uint64_t aging_us[GQ_SCHED_NCLASSES]; /* 0: never ages (defaults: -, -, 60 s, 30 s) */
    int aging_top;                        /* highest class aging reaches (1) */
} gq_sched_config_t;

void gq_sched_config_init(gq_sched_config_t *cfg);

gq_sched_t *gq_sched_new(const gq_sched_config_t *cfg);
void gq_sched_destroy(gq_sched_t **self_p);

/* Why gq_sched_push refused a job. */
typedef enum {
    GQ_SCHED_OK = 0,
    GQ_SCHED_FULL_TOTAL,
    GQ_SCHED_FULL_CLASS,
    GQ_SCHED_FULL_CLIENT,
    GQ_SCHED_NOMEM,
} gq_sched_refusal_t;

#define GQ_SCHED_FORCE 1u /* an accepted job (a requeue, a waiter): never refused */
#define GQ_SCHED_FRONT 2u /* a requeue: keeps its arrival, before jobs of equal deadline */

/* Whether j (its caller fields set) would fit now; when not, *retry_after_ms (may be NULL)
 * says when room is likely, from the measured completion rate. */
gq_sched_refusal_t gq_sched_room(gq_sched_t *self, const gq_sched_job_t *j,
                                 uint32_t *retry_after_ms);

/* Queues j at time now: gq_sched_room's answer unless flags has GQ_SCHED_FORCE or
 * GQ_SCHED_FRONT (then only GQ_SCHED_NOMEM can refuse). A refused job is untouched. */
gq_sched_refusal_t gq_sched_push(gq_sched_t *self, gq_sched_job_t *j, uint64_t now, unsigned flags,
                                 uint32_t *retry_after_ms);

/* Takes a queued job out (cancel, expiry by the caller). */
void gq_sched_remove(gq_sched_t *self, gq_sched_job_t *j);

/* Says whether some free worker can run this job (routing is the caller's business). */
typedef int(gq_sched_runnable_fn)(const gq_sched_job_t *j, void *arg);

/* The next dispatch at time now: the best runnable job and, when it batches, up to
 * batch.max - 1 more of its group, written to out[] (out[0] is the one picked) and taken
 * out of the queue; returns how many (0: nothing runnable now). At most max_skip queued
 * jobs that nobody can run are looked past per class. */
int gq_sched_next(gq_sched_t *self, uint64_t now, gq_sched_runnable_fn *runnable, void *arg,
                  gq_sched_job_t **out, int max_out, int max_skip);

/* Takes out up to max queued jobs whose deadline is <= now (earliest first per class);
 * returns how many. The caller fails them: a job past its deadline is never started. */
int gq_sched_expired(gq_sched_t *self, uint64_t now, gq_sched_job_t **out, int max);

/* Takes out up to max queued jobs in any order, ignoring every rule (shutdown). */
int gq_sched_drain(gq_sched_t *self, gq_sched_job_t **out, int max);

/* Applies aging at time now (gq_sched_next does it too); returns jobs promoted. */
int gq_sched_age(gq_sched_t *self, uint64_t now);

/* Earliest time something held back becomes due (a batch delay or an aging step), or
 * UINT64_MAX: the broker's poll timeout. */
uint64_t gq_sched_wake_us(const gq_sched_t *self);

/* Tells the scheduler n jobs finished at now (for the completion rate behind retry-after). */
void gq_sched_completed(gq_sched_t *self, uint64_t now, int n);

typedef struct {
    size_t queued[GQ_SCHED_NCLASSES];
    uint64_t oldest_us[GQ_SCHED_NCLASSES]; /* arrival of the oldest job per class; 0: empty */
    size_t clients[GQ_SCHED_NCLASSES];     /* distinct clients with jobs queued */
    size_t groups;                         /* batch groups with jobs queued */
    size_t held;                           /* groups held back waiting to fill, at last next */
    uint64_t promoted;                     /* jobs moved up a class by aging, ever */
    uint64_t refused[GQ_SCHED_NCLASSES];   /* pushes refused, ever */
    uint64_t batches, batched_jobs;        /* dispatches of >= 2 jobs, and their jobs */
    double completion_rate;                /* jobs/s, smoothed */
} gq_sched_stats_t;

void gq_sched_stats(const gq_sched_t *self, gq_sched_stats_t *out);
size_t gq_sched_len(const gq_sched_t *self);
/* Jobs queued in class cls (O(1), unlike gq_sched_stats, which walks the queues). */
size_t gq_sched_class_len(const gq_sched_t *self, int cls);
/* Jobs of client queued in class cls. */
size_t gq_sched_client_len(const gq_sched_t *self, int cls, uint64_t client);
/* 1-based rank of a queued job within its class in dispatch order (O(n) walk); 0 if not
 * queued. For `gpuq status`. */
size_t gq_sched_rank(const gq_sched_t *self, const gq_sched_job_t *j);

#endif
