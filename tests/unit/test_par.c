/* gq_par_for: every index exactly once with a tid in range, from one caller and from several
 * at once; nested calls serial; n = 0 and 1; the thread count changed between calls. */
#include "check.h"
#include "par.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t n;
    atomic_int *hits;
    atomic_int bad_tid;
    atomic_int tids_seen; /* bit per tid below 32 */
    int nthreads;
} s_count_t;

static void s_count(void *ctx, int64_t i, int tid)
{
    s_count_t *c = ctx;
    if (i < 0 || i >= c->n || tid < 0 || tid >= c->nthreads)
        atomic_fetch_add(&c->bad_tid, 1);
    else
        atomic_fetch_add(&c->hits[i], 1);
    if (tid >= 0 && tid < 32)
        atomic_fetch_or(&c->tids_seen, 1 << tid);
    /* A little work so helpers get a chance to join. */
    volatile double x = 0;
    for (int k = 0; k < 20; k++)
        x += k * 0.5;
}

/* Runs gq_par_for over n and returns the number of indices not hit exactly once. */
static int64_t s_run_count(int64_t n, int *tids_seen)
{
    s_count_t c = {.n = n, .nthreads = gq_par_threads()};
    c.hits = calloc(n > 0 ? (size_t)n : 1, sizeof *c.hits);
    if (!c.hits)
        return -1;
    atomic_init(&c.bad_tid, 0);
    atomic_init(&c.tids_seen, 0);
    gq_par_for(n, s_count, &c);
    int64_t wrong = atomic_load(&c.bad_tid);
    for (int64_t i = 0; i < n; i++)
        wrong += atomic_load(&c.hits[i]) != 1;
    if (tids_seen)
        *tids_seen = atomic_load(&c.tids_seen);
    free(c.hits);
    return wrong;
}

static void *s_caller(void *arg)
{
    int64_t *wrong = arg;
    *wrong = 0;
    for (int r = 0; r < 50; r++) {
        int64_t n = 1 + (r * 7919) % 3000;
        *wrong += s_run_count(n, NULL);
    }
    return NULL;
}

typedef struct {
    atomic_int outer_bad, inner_calls;
    atomic_int inner_hits[64][16];
} s_nest_t;

typedef struct {
    s_nest_t *nest;
    int64_t outer;
} s_inner_ctx_t;

static void s_inner(void *ctx, int64_t i, int tid)
{
    s_inner_ctx_t *c = ctx;
    /* Nested: runs on the outer participant's thread, as participant 0. */
    if (tid != 0)
        atomic_fetch_add(&c->nest->outer_bad, 1);
    atomic_fetch_add(&c->nest->inner_hits[c->outer][i], 1);
}

static void s_outer(void *ctx, int64_t i, int tid)
{
    (void)tid;
    s_nest_t *nest = ctx;
    s_inner_ctx_t c = {.nest = nest, .outer = i};
    atomic_fetch_add(&nest->inner_calls, 1);
    gq_par_for(16, s_inner, &c);
}

static void s_nothing(void *ctx, int64_t i, int tid)
{
    (void)i;
    (void)tid;
    atomic_fetch_add((atomic_int *)ctx, 1);
}

int main(void)
{
    CHECK(gq_par_threads() >= 1, "threads %d", gq_par_threads());

    int counts[] = {1, 2, 3, 4, 1, 3};
    for (size_t k = 0; k < sizeof counts / sizeof *counts; k++) {
        gq_par_set_threads(counts[k]);
        CHECK(gq_par_threads() == counts[k], "threads %d after set %d", gq_par_threads(),
              counts[k]);

        atomic_int calls;
        atomic_init(&calls, 0);
        gq_par_for(0, s_nothing, &calls);
        CHECK(atomic_load(&calls) == 0, "n=0 ran %d", atomic_load(&calls));
        gq_par_for(-5, s_nothing, &calls);
        CHECK(atomic_load(&calls) == 0, "n=-5 ran %d", atomic_load(&calls));
        int tids = 0;
        CHECK(s_run_count(1, &tids) == 0, "n=1 at %d threads", counts[k]);
        CHECK(tids == 1, "n=1 ran on tids 0x%x, not the caller alone", tids);

        int64_t sizes[] = {2, 3, 17, 1000, 100003};
        int seen = 0;
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
            /* Repeat: whether a helper joins a given call is up to the scheduler. */
            for (int r = 0; r < 5; r++) {
                int t = 0;
                int64_t wrong = s_run_count(sizes[s], &t);
                CHECK(wrong == 0, "n=%lld at %d threads: %lld indices wrong", (long long)sizes[s],
                      counts[k], (long long)wrong);
                seen |= t;
            }
        }
        CHECK(seen >> counts[k] == 0, "tids 0x%x at %d threads", seen, counts[k]);
        CHECK(seen & 1, "the caller never ran (tids 0x%x)", seen);

        s_nest_t *nest = calloc(1, sizeof *nest);
        CHECK(nest != NULL, "calloc");
        if (nest) {
            gq_par_for(64, s_outer, nest);
            CHECK(atomic_load(&nest->inner_calls) == 64, "outer ran %d",
                  atomic_load(&nest->inner_calls));
            CHECK(atomic_load(&nest->outer_bad) == 0, "nested calls ran off-caller %d times",
                  atomic_load(&nest->outer_bad));
            int wrong = 0;
            for (int o = 0; o < 64; o++)
                for (int i = 0; i < 16; i++)
                    wrong += atomic_load(&nest->inner_hits[o][i]) != 1;
            CHECK(wrong == 0, "nested: %d indices wrong", wrong);
            free(nest);
        }

        /* Concurrent callers: the worker's compute threads each run jobs. */
        enum { NCALLERS = 4 };
        pthread_t th[NCALLERS];
        int64_t wrong[NCALLERS];
        int started = 0;
        for (int c = 0; c < NCALLERS; c++)
            if (pthread_create(&th[c], NULL, s_caller, &wrong[c]) == 0)
                started++;
            else
                break;
        CHECK(started == NCALLERS, "started %d callers", started);
        for (int c = 0; c < started; c++) {
            pthread_join(th[c], NULL);
            CHECK(wrong[c] == 0, "caller %d at %d threads: %lld indices wrong", c, counts[k],
                  (long long)wrong[c]);
        }
    }

    /* At 4 participants a long loop should see a helper at least once (a loaded machine may
     * starve the pool on one call, not on twenty). */
    gq_par_set_threads(4);
    int seen = 0;
    for (int r = 0; r < 20 && seen == (seen & 1); r++) {
        int t = 0;
        CHECK(s_run_count(200000, &t) == 0, "n=200000");
        seen |= t;
    }
    CHECK(seen & ~1, "no pool thread ever helped (tids 0x%x)", seen);
    gq_par_set_threads(1);

    printf("test_par: %d checks, %d failed\n", s_checks, s_failed);
    return s_failed != 0;
}
