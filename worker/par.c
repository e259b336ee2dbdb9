/* The parallel-for pool. A caller publishes its task (on its own stack) in a list, wakes the
 * pool, and claims chunks of indices itself; pool threads join listed tasks that still have
 * unclaimed indices. When the caller runs out of indices it unlists the task, so no thread
 * can join any more, and waits for the helpers already in it to finish their chunks: then
 * every index is done and the stack frame may go. */
#include "par.h"

#include <cblas.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#define GQ_PAR_MAX 256   /* participants; more cores than this share the pool */
#define GQ_PAR_SPIN 4000 /* polls of the task count before a pool thread sleeps */

typedef struct s_task s_task_t;
struct s_task {
    gq_par_fn fn;
    void *ctx;
    int64_t n;
    int64_t chunk;
    atomic_int_fast64_t next; /* first unclaimed index */
    atomic_int helpers;       /* pool threads inside (changed under s_mu) */
    int joined;               /* pool threads ever joined: the next tid is joined + 1 */
    int cap;                  /* the most helpers (participants - 1 at the call) */
    s_task_t *link;
};

static pthread_mutex_t s_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s_work = PTHREAD_COND_INITIALIZER; /* pool threads sleep here */
static pthread_cond_t s_done = PTHREAD_COND_INITIALIZER; /* callers wait for helpers */
/* Serializes gq_par_set_threads, which joins the pool outside s_mu. */
static pthread_mutex_t s_cfg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static s_task_t *s_tasks;   /* listed tasks, newest first (under s_mu) */
static atomic_int s_ntasks; /* listed tasks, read without the lock by spinning threads */
static atomic_int s_target; /* participants asked for */
static pthread_t s_pool[GQ_PAR_MAX];
static int s_npool;    /* pool threads running (under s_mu) */
static int s_sleepers; /* of which waiting on s_work (under s_mu) */
static bool s_stop;    /* pool threads must exit (under s_mu) */
static int64_t s_min_work = GQ_PAR_MIN_WORK;
static _Thread_local bool s_in_task;

static void s_init(void)
{
    const char *mw = getenv("GQ_PAR_MIN_WORK");
    if (mw && *mw) {
        char *end;
        long long v = strtoll(mw, &end, 10);
        if (*end == '\0' && v >= 0)
            s_min_work = v;
    }
    int n = 1;
    const char *env = getenv("GQ_THREADS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v >= 1)
            n = v > GQ_PAR_MAX ? GQ_PAR_MAX : (int)v;
    }
    atomic_store(&s_target, n);
    /* Without GQ_THREADS OpenBLAS keeps its own setting (OPENBLAS_NUM_THREADS, else its
     * default) until gq_par_set_threads; with it, one thread: gq_onnx_sgemm splits large
     * products over this pool. */
    if (env && *env)
        openblas_set_num_threads(1);
}

/* Claims and runs chunks of t until none are left. */
static void s_work_on(s_task_t *t, int tid)
{
    s_in_task = true;
    for (;;) {
        int64_t i = atomic_fetch_add(&t->next, t->chunk);
        if (i >= t->n)
            break;
        int64_t end = i + t->chunk < t->n ? i + t->chunk : t->n;
        for (; i < end; i++)
            t->fn(t->ctx, i, tid);
    }
    s_in_task = false;
}

/* A listed task a pool thread may join (under s_mu): oldest first, so a caller that
 * published early is not starved by a stream of newer ones. */
static s_task_t *s_joinable(void)
{
    s_task_t *pick = NULL;
    for (s_task_t *t = s_tasks; t; t = t->link)
        if (atomic_load(&t->helpers) < t->cap && t->joined < t->cap && atomic_load(&t->next) < t->n)
            pick = t;
    return pick;
}

static void *s_pool_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&s_mu);
    for (;;) {
        s_task_t *t = s_joinable();
        if (!t) {
            if (s_stop)
                break;
            /* Kernels come in quick succession: poll briefly before paying for a sleep and
             * a wake-up. */
            pthread_mutex_unlock(&s_mu);
            for (int k = 0; k < GQ_PAR_SPIN && atomic_load(&s_ntasks) == 0; k++)
                if (k % 64 == 63)
                    sched_yield();
            pthread_mutex_lock(&s_mu);
            t = s_joinable();
            if (!t) {
                if (s_stop)
                    break;
                s_sleepers++;
                pthread_cond_wait(&s_work, &s_mu);
                s_sleepers--;
                continue;
            }
        }
        atomic_fetch_add(&t->helpers, 1);
        int tid = ++t->joined;
        pthread_mutex_unlock(&s_mu);
        s_work_on(t, tid);
        pthread_mutex_lock(&s_mu);
        if (atomic_fetch_sub(&t->helpers, 1) == 1)
            pthread_cond_broadcast(&s_done);
    }
    pthread_mutex_unlock(&s_mu);
    return NULL;
}

/* Starts the pool for target participants (under s_mu). A thread that fails to start
 * leaves a smaller pool: the calls it would have helped run on the others. */
static void s_start(int target)
{
    while (s_npool < target - 1 && s_npool < GQ_PAR_MAX - 1) {
        if (pthread_create(&s_pool[s_npool], NULL, s_pool_main, NULL) != 0)
            break;
        s_npool++;
    }
}

void gq_par_for(int64_t n, gq_par_fn fn, void *ctx)
{
    pthread_once(&s_once, s_init);
    int target = atomic_load(&s_target);
    if (n <= 1 || target <= 1 || s_in_task) {
        for (int64_t i = 0; i < n; i++)
            fn(ctx, i, 0);
        return;
    }
    /* About 4 chunks per participant: big enough that claims are rare, small enough that a
     * participant that arrives late or runs slow still evens out. */
    int64_t chunk = n / ((int64_t)target * 4);
    s_task_t t = {.fn = fn, .ctx = ctx, .n = n, .chunk = chunk < 1 ? 1 : chunk, .cap = target - 1};
    atomic_init(&t.next, 0);
    atomic_init(&t.helpers, 0);

    pthread_mutex_lock(&s_mu);
    if (s_npool == 0 && !s_stop)
        s_start(target);
    if (s_npool == 0) {
        pthread_mutex_unlock(&s_mu);
        for (int64_t i = 0; i < n; i++)
            fn(ctx, i, 0);
        return;
    }
    t.link = s_tasks;
    s_tasks = &t;
    atomic_fetch_add(&s_ntasks, 1);
    if (s_sleepers > 0)
        pthread_cond_broadcast(&s_work);
    pthread_mutex_unlock(&s_mu);

    s_work_on(&t, 0);

    pthread_mutex_lock(&s_mu);
    s_task_t **pp = &s_tasks;
    while (*pp != &t)
        pp = &(*pp)->link;
    *pp = t.link;
    atomic_fetch_sub(&s_ntasks, 1);
    /* A helper still in its last chunk finishes in microseconds: poll for it before paying
     * for a sleep and a wake-up (its decrement is its last touch of t). */
    pthread_mutex_unlock(&s_mu);
    for (int k = 0; k < GQ_PAR_SPIN && atomic_load(&t.helpers) > 0; k++)
        if (k % 64 == 63)
            sched_yield();
    if (atomic_load(&t.helpers) > 0) {
        pthread_mutex_lock(&s_mu);
        while (atomic_load(&t.helpers) > 0)
            pthread_cond_wait(&s_done, &s_mu);
        pthread_mutex_unlock(&s_mu);
    }
}

int gq_par_threads(void)
{
    pthread_once(&s_once, s_init);
    return atomic_load(&s_target);
}

void gq_par_set_threads(int n)
{
    pthread_once(&s_once, s_init);
    if (n < 1)
        n = 1;
    if (n > GQ_PAR_MAX)
        n = GQ_PAR_MAX;
    pthread_mutex_lock(&s_cfg_mu);
    pthread_mutex_lock(&s_mu);
    atomic_store(&s_target, n);
    /* A pool of another size stops; the next parallel call starts one of the new size. */
    int npool = s_npool;
    if (npool != n - 1 && npool > 0) {
        s_stop = true;
        pthread_cond_broadcast(&s_work);
        pthread_mutex_unlock(&s_mu);
        for (int i = 0; i < npool; i++)
            pthread_join(s_pool[i], NULL);
        pthread_mutex_lock(&s_mu);
        s_npool = 0;
        s_stop = false;
    }
    pthread_mutex_unlock(&s_mu);
    openblas_set_num_threads(1); /* large products split over this pool instead */
    pthread_mutex_unlock(&s_cfg_mu);
}

int64_t gq_par_min_work(void)
{
    pthread_once(&s_once, s_init);
    return s_min_work;
}

void gq_par_for_work(int64_t n, int64_t work, gq_par_fn fn, void *ctx)
{
    if (work >= gq_par_min_work()) {
        gq_par_for(n, fn, ctx);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        fn(ctx, i, 0);
}
