/* The broker's scheduler on its own, with the clock passed in: class order, EDF, fair
 * share between clients, aging, batching by size / delay / preferred sizes, deadline
 * expiry, bounds with retry-after, requeue at the front, runnable filtering, ranks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "scheduler.h"
#include "check.h"

#define S_N 512

typedef struct {
    gq_sched_job_t sj; /* first: the tests cast back */
    int id;
} s_tjob_t;

static s_tjob_t s_jobs[S_N];

static int s_any(const gq_sched_job_t *j, void *arg)
{
    (void)j;
    (void)arg;
    return 1;
}

/* Runnable only when its id is odd: a worker that lacks the even jobs' op. */
static int s_odd(const gq_sched_job_t *j, void *arg)
{
    (void)arg;
    return ((const s_tjob_t *)j)->id & 1;
}

static s_tjob_t *s_mk(int id, int cls, uint64_t deadline, uint64_t client)
{
    s_tjob_t *t = &s_jobs[id];
    memset(t, 0, sizeof *t);
    t->id = id;
    t->sj.cls = cls;
    t->sj.deadline_us = deadline;
    t->sj.client = client;
    return t;
}

static int s_push(gq_sched_t *s, s_tjob_t *t, uint64_t now)
{
    return (int)gq_sched_push(s, &t->sj, now, 0, NULL);
}

/* Pops one dispatch; returns the first job's id, -1 when none, and *n its size. */
static int s_pop(gq_sched_t *s, uint64_t now, int *n, gq_sched_runnable_fn *fn)
{
    gq_sched_job_t *out[64];
    int k = gq_sched_next(s, now, fn ? fn : s_any, NULL, out, 64, 16);
    if (n)
        *n = k;
    return k ? ((s_tjob_t *)out[0])->id : -1;
}

static gq_sched_t *s_new(void)
{
    gq_sched_config_t cfg;
    gq_sched_config_init(&cfg);
    return gq_sched_new(&cfg);
}

static void test_class_and_edf(void)
{
    gq_sched_t *s = s_new();
    s_push(s, s_mk(1, 2, 0, 7), 100);    /* batch, no deadline */
    s_push(s, s_mk(2, 3, 0, 7), 101);    /* background */
    s_push(s, s_mk(3, 1, 9000, 7), 102); /* interactive, late deadline */
    s_push(s, s_mk(4, 1, 5000, 7), 103); /* interactive, early deadline */
    s_push(s, s_mk(5, 1, 0, 7), 104);    /* interactive, none: after deadlines */
    s_push(s, s_mk(6, 0, 0, 7), 105);    /* realtime: first */
    int want[] = {6, 4, 3, 5, 1, 2};
    for (int i = 0; i < 6; i++) {
        int got = s_pop(s, 200, NULL, NULL);
        CHECK(got == want[i], "pop %d: got %d want %d", i, got, want[i]);
    }
    CHECK(s_pop(s, 200, NULL, NULL) == -1, "queue should be empty");
    CHECK(gq_sched_len(s) == 0, "len %zu", gq_sched_len(s));
    gq_sched_destroy(&s);
    CHECK(!s, "destroy nulls");
}

static void test_fair_share(void)
{
    gq_sched_t *s = s_new();
    /* Client A queues 10 jobs, then client B queues 3: B's jobs interleave with A's
     * instead of waiting behind all ten. */
    for (int i = 0; i < 10; i++)
        s_push(s, s_mk(i, 2, 0, 0xA), (uint64_t)i);
    for (int i = 0; i < 3; i++)
        s_push(s, s_mk(100 + i, 2, 0, 0xB), 20 + (uint64_t)i);
    int order[13];
    for (int i = 0; i < 13; i++)
        order[i] = s_pop(s, 100, NULL, NULL);
    int last_b = 0;
    for (int i = 0; i < 13; i++)
        if (order[i] >= 100)
            last_b = i;
    CHECK(last_b <= 6, "B's last job dispatched at position %d, want <= 6", last_b);
    /* Each client's own jobs keep their arrival order. */
    int prev_a = -1, prev_b = 99;
    for (int i = 0; i < 13; i++) {
        if (order[i] < 100) {
            CHECK(order[i] > prev_a, "A out of order at %d", i);
            prev_a = order[i];
        } else {
            CHECK(order[i] > prev_b, "B out of order at %d", i);
            prev_b = order[i];
        }
    }
    gq_sched_destroy(&s);
}

static void test_bounds(void)
{
    gq_sched_config_t cfg;
    gq_sched_config_init(&cfg);
    cfg.max_queue = 100;
    cfg.max_class[0] = 10;
    cfg.client_share = 0.5;
    cfg.client_min = 4;
    gq_sched_t *s = gq_sched_new(&cfg);
    uint32_t retry = 0;
    int id = 0;
    for (int i = 0; i < 50; i++)
        CHECK(s_push(s, s_mk(id++, 2, 0, 0xA), 1) == GQ_SCHED_OK, "A push %d", i);
    CHECK(gq_sched_push(s, &s_mk(id++, 2, 0, 0xA)->sj, 1, 0, &retry) == GQ_SCHED_FULL_CLIENT,
          "A's 51st job must be refused: half the queue is its share");
    CHECK(retry >= 10 && retry <= 30000, "retry-after %u ms", retry);
    for (int i = 0; i < 50; i++)
        CHECK(s_push(s, s_mk(id++, 2, 0, 0xB), 1) == GQ_SCHED_OK, "B push %d", i);
    CHECK(gq_sched_push(s, &s_mk(id++, 2, 0, 0xC)->sj, 1, 0, &retry) == GQ_SCHED_FULL_TOTAL,
          "a full queue refuses every client");
    /* A requeue is never refused. */
    gq_sched_job_t *out[1];
    CHECK(gq_sched_next(s, 2, s_any, NULL, out, 1, 16) == 1, "pop one");
    CHECK(s_push(s, s_mk(id++, 0, 0, 0xC), 2) == GQ_SCHED_OK, "room again");
    CHECK(gq_sched_push(s, out[0], 3, GQ_SCHED_FRONT, NULL) == GQ_SCHED_OK,
          "requeue over the bound");
    gq_sched_destroy(&s);

    /* Per-class bound, and the retry hint follows the completion rate. */
    cfg.max_queue = 1000;
    s = gq_sched_new(&cfg);
    for (int i = 0; i < 10; i++)
        s_push(s, s_mk(200 + i, 0, 0, (uint64_t)(i + 1)), 1);
    CHECK(gq_sched_push(s, &s_mk(220, 0, 0, 99)->sj, 1, 0, &retry) == GQ_SCHED_FULL_CLASS,
          "realtime class bound 10");
    CHECK(retry == 100, "unknown rate gives 100 ms, got %u", retry);
    for (uint64_t t = 0; t <= 1000000; t += 1000)
        gq_sched_completed(s, 1000 + t, 1); /* 1000 jobs/s */
    gq_sched_push(s, &s_mk(221, 0, 0, 99)->sj, 1, 0, &retry);
    CHECK(retry >= 10 && retry <= 20, "10/20+1 jobs at 1000/s: ~1.5 ms, clamped to 10; got %u",
          retry);
    gq_sched_stats_t st;
    gq_sched_stats(s, &st);
    CHECK(st.refused[0] == 2, "refused %llu", (unsigned long long)st.refused[0]);
    CHECK(st.completion_rate > 900 && st.completion_rate < 1100, "rate %.0f", st.completion_rate);
    gq_sched_destroy(&s);
}

static void test_aging(void)
{
    gq_sched_config_t cfg;
    gq_sched_config_init(&cfg);
    cfg.aging_us[3] = 1000;
    cfg.aging_us[2] = 2000;
    cfg.aging_top = 1;
    gq_sched_t *s = gq_sched_new(&cfg);
    s_push(s, s_mk(1, 3, 0, 1), 0);
    for (int i = 0; i < 5; i++)
        s_push(s, s_mk(10 + i, 2, 0, 2), 500);
    CHECK(gq_sched_wake_us(s) == 1000, "next aging step at 1000, got %llu",
          (unsigned long long)gq_sched_wake_us(s));
    /* At 999 us the background job is still last. */
    CHECK(s_pop(s, 999, NULL, NULL) == 10, "batch first before aging");
    /* At 1000 it moves to batch, ahead of the batch jobs already waiting there. */
    CHECK(s_pop(s, 1000, NULL, NULL) == 1, "aged background job next");
    /* Interactive jobs arriving stay ahead of batch ones until those age too. */
    s_push(s, s_mk(20, 1, 0, 3), 1100);
    CHECK(s_pop(s, 1100, NULL, NULL) == 20, "interactive first");
    /* At 2500 the batch jobs left (in class since 500) reach interactive; never realtime. */
    s_push(s, s_mk(21, 1, 0, 3), 2400);
    CHECK(gq_sched_age(s, 2500) == 4, "four batch jobs promoted");
    s_push(s, s_mk(22, 0, 0, 3), 2600);
    CHECK(s_pop(s, 2600, NULL, NULL) == 22, "realtime still first");
    CHECK(s_pop(s, 2600, NULL, NULL) == 11, "promoted before the waiting interactive job");
    CHECK(gq_sched_age(s, 1000000) == 0, "aging stops at aging_top");
    gq_sched_stats_t st;
    gq_sched_stats(s, &st);
    CHECK(st.promoted == 5, "promoted %llu", (unsigned long long)st.promoted);
    CHECK(st.queued[1] == 4, "interactive holds 4, got %zu", st.queued[1]);
    gq_sched_destroy(&s);

    /* Starvation check: a background job under an endless stream of batch jobs. */
    s = gq_sched_new(&cfg);
    s_push(s, s_mk(1, 3, 0, 1), 0);
    int id = 2, seen_at = -1;
    for (uint64_t t = 0; t < 10000 && seen_at < 0; t += 100) {
        s_push(s, s_mk(id++ % 400 + 2, 2, 0, 2), t);
        s_push(s, s_mk(id++ % 400 + 2, 2, 0, 2), t);
        if (s_pop(s, t, NULL, NULL) == 1)
            seen_at = (int)t;
    }
    CHECK(seen_at >= 1000 && seen_at <= 1100, "background ran at %d us (aging 1000)", seen_at);
    gq_sched_destroy(&s);
}

static void s_batch(s_tjob_t *t, uint64_t key, uint32_t max, uint32_t delay)
{
    t->sj.batch_key = key;
    t->sj.batch.max = max;
    t->sj.batch.delay_us = delay;
}

static void test_batching(void)
{
    gq_sched_t *s = s_new();
    int n;
    /* By size: 10 compatible jobs, max 4 -> 4, 4, 2 (no delay: what is there goes). */
    for (int i = 0; i < 10; i++) {
        s_tjob_t *t = s_mk(i, 2, 0, 1);
        s_batch(t, 0x77, 4, 0);
        s_push(s, t, (uint64_t)i);
    }
    s_tjob_t *other = s_mk(50, 2, 0, 1);
    s_batch(other, 0x88, 4, 0);
    s_push(s, other, 5);
    CHECK(s_pop(s, 20, &n, NULL) == 0 && n == 4, "first batch: 4 from job 0, got n=%d", n);
    CHECK(s_pop(s, 20, &n, NULL) == 4 && n == 4, "second batch, n=%d", n);
    CHECK(s_pop(s, 20, &n, NULL) == 8 && n == 2, "rest, n=%d", n);
    CHECK(s_pop(s, 20, &n, NULL) == 50 && n == 1, "other key alone, n=%d", n);
    gq_sched_stats_t st;
    gq_sched_stats(s, &st);
    CHECK(st.batches == 3 && st.batched_jobs == 10, "batches %llu jobs %llu",
          (unsigned long long)st.batches, (unsigned long long)st.batched_jobs);
    CHECK(st.groups == 0, "groups left %zu", st.groups);

    /* By delay: 3 jobs, max 8, delay 1000: held until 1000 us after the oldest, while a
     * plain job behind them goes first. */
    for (int i = 0; i < 3; i++) {
        s_tjob_t *t = s_mk(100 + i, 2, 0, 1);
        s_batch(t, 0x99, 8, 1000);
        s_push(s, t, 100 + (uint64_t)i);
    }
    s_push(s, s_mk(110, 2, 0, 1), 200);
    CHECK(s_pop(s, 500, &n, NULL) == 110 && n == 1, "plain job passes the held group");
    CHECK(s_pop(s, 600, &n, NULL) == -1, "group still held");
    CHECK(gq_sched_wake_us(s) == 1100, "wake at 1100, got %llu",
          (unsigned long long)gq_sched_wake_us(s));
    CHECK(s_pop(s, 1100, &n, NULL) == 100 && n == 3, "delay over: all three, n=%d", n);

    /* Filling up ends the wait early. */
    for (int i = 0; i < 8; i++) {
        s_tjob_t *t = s_mk(120 + i, 2, 0, 1);
        s_batch(t, 0x99, 8, 1000000);
        s_push(s, t, 2000);
    }
    CHECK(s_pop(s, 2001, &n, NULL) == 120 && n == 8, "full batch goes at once, n=%d", n);

    /* Preferred sizes: with 5 queued and preferred {4, 2}, a batch of 4 goes now; the
     * fifth waits for its delay. */
    for (int i = 0; i < 5; i++) {
        s_tjob_t *t = s_mk(130 + i, 2, 0, 1);
        s_batch(t, 0xAA, 8, 5000);
        t->sj.batch.preferred[0] = 4;
        t->sj.batch.preferred[1] = 2;
        s_push(s, t, 3000);
    }
    CHECK(s_pop(s, 3001, &n, NULL) == 130 && n == 4, "preferred 4, n=%d", n);
    CHECK(s_pop(s, 3002, &n, NULL) == -1, "one left, below every preferred size: held");
    CHECK(s_pop(s, 8000, &n, NULL) == 134 && n == 1, "delay over, n=%d", n);

    /* Classes do not mix: realtime and batch jobs of one key batch apart. */
    for (int i = 0; i < 4; i++) {
        s_tjob_t *t = s_mk(140 + i, i & 1 ? 0 : 2, 0, 1);
        s_batch(t, 0xBB, 8, 0);
        s_push(s, t, 9000);
    }
    CHECK(s_pop(s, 9001, &n, NULL) == 141 && n == 2, "realtime pair, n=%d", n);
    CHECK(s_pop(s, 9001, &n, NULL) == 140 && n == 2, "batch pair, n=%d", n);
    gq_sched_destroy(&s);
}

static void test_expiry_and_cancel(void)
{
    gq_sched_t *s = s_new();
    s_push(s, s_mk(1, 2, 5000, 1), 0);
    s_push(s, s_mk(2, 2, 3000, 1), 0);
    s_push(s, s_mk(3, 2, 0, 1), 0);
    s_push(s, s_mk(4, 0, 4000, 1), 0);
    gq_sched_job_t *out[8];
    CHECK(gq_sched_expired(s, 2999, out, 8) == 0, "none due");
    int n = gq_sched_expired(s, 4000, out, 8);
    CHECK(n == 2, "two due at 4000, got %d", n);
    CHECK(n == 2 && ((s_tjob_t *)out[0])->id == 4 && ((s_tjob_t *)out[1])->id == 2,
          "expired in class then deadline order");
    gq_sched_remove(s, &s_jobs[1].sj);
    CHECK(s_jobs[1].sj.heap_pos == -1, "removed");
    gq_sched_remove(s, &s_jobs[1].sj); /* twice is harmless */
    CHECK(gq_sched_len(s) == 1, "one left, %zu", gq_sched_len(s));
    CHECK(s_pop(s, 10000, NULL, NULL) == 3, "no-deadline job never expires");
    gq_sched_destroy(&s);
}

static void test_requeue_and_runnable(void)
{
    gq_sched_t *s = s_new();
    for (int i = 0; i < 6; i++)
        s_push(s, s_mk(i, 2, 0, (uint64_t)(i % 2 + 1)), (uint64_t)i);
    gq_sched_job_t *out[4];
    /* A worker that can only run odd jobs gets 1, 3, 5 and nothing else. */
    CHECK(s_pop(s, 10, NULL, s_odd) == 1, "odd first");
    CHECK(s_pop(s, 10, NULL, s_odd) == 3, "odd second");
    CHECK(s_pop(s, 10, NULL, s_odd) == 5, "odd third");
    CHECK(s_pop(s, 10, NULL, s_odd) == -1, "no odd left");
    CHECK(gq_sched_len(s) == 3, "evens stay, %zu", gq_sched_len(s));
    /* Job 0 loses its worker and comes back: it goes first again. */
    CHECK(gq_sched_next(s, 11, s_any, NULL, out, 4, 16) == 1 && out[0] == &s_jobs[0].sj,
          "job 0 dispatched");
    CHECK(gq_sched_push(s, out[0], 12, GQ_SCHED_FRONT, NULL) == GQ_SCHED_OK, "requeue");
    CHECK(s_jobs[0].sj.arrival_us == 0, "requeue keeps its arrival");
    CHECK(gq_sched_rank(s, &s_jobs[0].sj) == 1, "rank 1 after requeue, got %zu",
          gq_sched_rank(s, &s_jobs[0].sj));
    CHECK(gq_sched_rank(s, &s_jobs[4].sj) == 3, "rank of job 4: %zu",
          gq_sched_rank(s, &s_jobs[4].sj));
    CHECK(s_pop(s, 13, NULL, NULL) == 0, "requeued job first");
    gq_sched_destroy(&s);
}

/* Random pushes, pops, removals and expiries against invariants: every job comes out
 * exactly once, and each dispatch is the best queued job by (class, deadline). */
static void test_random(void)
{
    gq_sched_t *s = s_new();
    unsigned seed = 12345;
    int state[S_N] = {0}; /* 0 free, 1 queued, 2 gone */
    uint64_t now = 0;
    for (int step = 0; step < 20000; step++) {
        now += 10;
        int op = rand_r(&seed) % 4, id = rand_r(&seed) % S_N;
        if (op <= 1 && state[id] != 1) {
            s_tjob_t *t = s_mk(id, rand_r(&seed) % 4,
                               rand_r(&seed) % 3 ? 0 : now + (uint64_t)(rand_r(&seed) % 5000),
                               (uint64_t)(rand_r(&seed) % 5 + 1));
            if (rand_r(&seed) % 2)
                s_batch(t, (uint64_t)(rand_r(&seed) % 3 + 1), 4, rand_r(&seed) % 2 ? 0 : 300);
            state[id] = s_push(s, t, now) == GQ_SCHED_OK;
        } else if (op == 2) {
            gq_sched_job_t *out[8];
            int n = gq_sched_next(s, now, s_any, NULL, out, 8, 16);
            for (int i = 0; i < n; i++) {
                s_tjob_t *t = (s_tjob_t *)out[i];
                CHECK(state[t->id] == 1, "job %d dispatched while not queued", t->id);
                state[t->id] = 2;
                if (i)
                    CHECK(out[i]->batch_key == out[0]->batch_key,
                          "batch mixes keys %llx %llx (%d of %d)",
                          (unsigned long long)out[i]->batch_key,
                          (unsigned long long)out[0]->batch_key, i, n);
            }
            if (n) {
                /* No queued job of a better class was passed over unless held for batching. */
                for (int k = 0; k < S_N; k++)
                    if (state[k] == 1 && s_jobs[k].sj.cur_cls < out[0]->cur_cls)
                        CHECK(s_jobs[k].sj.group != NULL, "job %d of class %d passed over", k,
                              s_jobs[k].sj.cur_cls);
            }
        } else if (op == 3 && state[id] == 1) {
            gq_sched_remove(s, &s_jobs[id].sj);
            state[id] = 2;
        } else {
            gq_sched_job_t *out[8];
            int n = gq_sched_expired(s, now, out, 8);
            for (int i = 0; i < n; i++) {
                s_tjob_t *t = (s_tjob_t *)out[i];
                CHECK(state[t->id] == 1 && t->sj.deadline_us <= now, "bad expiry of %d", t->id);
                state[t->id] = 2;
            }
        }
    }
    size_t queued = 0;
    for (int k = 0; k < S_N; k++)
        queued += state[k] == 1;
    CHECK(queued == gq_sched_len(s), "queued %zu vs len %zu", queued, gq_sched_len(s));
    /* Drain: everything left comes out once. */
    gq_sched_job_t *out[8];
    int n, guard = 0;
    now += 10000000;
    while ((n = gq_sched_next(s, now, s_any, NULL, out, 8, 16)) && guard++ < 10000)
        for (int i = 0; i < n; i++) {
            CHECK(state[((s_tjob_t *)out[i])->id] == 1, "drain twice");
            state[((s_tjob_t *)out[i])->id] = 2;
        }
    CHECK(gq_sched_len(s) == 0, "left %zu", gq_sched_len(s));
    gq_sched_destroy(&s);
}

int main(void)
{
    test_class_and_edf();
    test_fair_share();
    test_bounds();
    test_aging();
    test_batching();
    test_expiry_and_cancel();
    test_requeue_and_runnable();
    test_random();
    printf("test_sched: %d checks, %d failed\n", s_checks, s_failed);
    return s_failed ? 1 : 0;
}
