#include "scheduler.h"

#include <stdlib.h>
#include <string.h>
#include "map.h"

#define S_RATE_WINDOW_US 100000u
#define S_RETRY_MIN_MS 10u
#define S_RETRY_MAX_MS 30000u
#define S_RETRY_UNKNOWN_MS 100u
#define S_HELD_LOOK 8 /* members of held-back groups looked past, per max_skip */

typedef struct {
    uint64_t client;
    int cls;
    uint64_t next_tag; /* fair-queueing finish tag of its last queued job */
    size_t queued;
} s_client_t;

struct gq_sched_group {
    uint64_t key;
    int cls;
    gq_sched_job_t *head, *tail; /* members in arrival order */
    size_t n;
    uint64_t held_gen;
};

typedef struct {
    gq_sched_job_t **heap;
    size_t n, cap;
    gq_sched_job_t *fifo_head, *fifo_tail; /* by time entered this class, for aging */
    uint64_t vtime;
    size_t nclients;
    uint64_t refused;
} s_class_t;

struct gq_sched {
    gq_sched_config_t cfg;
    s_class_t cls[GQ_SCHED_NCLASSES];
    gq_map_t *clients;
    gq_map_t *groups;
    size_t total;
    uint64_t seq;
    uint64_t gen;
    uint64_t held_wake;
    size_t held;
    gq_sched_job_t **aside;
    size_t aside_cap;
    uint64_t promoted, batches, batched_jobs;
    /* completion rate */
    uint64_t rate_t0;
    uint64_t rate_count;
    double rate;
};

void gq_sched_config_init(gq_sched_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_queue = 100000;
    cfg->client_share = 0.5;
    cfg->client_min = 64;
    cfg->aging_us[2] = 60u * 1000000u;
    cfg->aging_us[3] = 30u * 1000000u;
    cfg->aging_top = 1;
}

gq_sched_t *gq_sched_new(const gq_sched_config_t *cfg)
{
    gq_sched_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = *cfg;
    if (self->cfg.client_share <= 0 || self->cfg.client_share > 1)
        self->cfg.client_share = 1;
    if (self->cfg.aging_top < 0 || self->cfg.aging_top >= GQ_SCHED_NCLASSES)
        self->cfg.aging_top = 1;
    self->clients = gq_map_new();
    self->groups = gq_map_new();
    if (!self->clients || !self->groups) {
        gq_sched_destroy(&self);
        return NULL;
    }
    return self;
}

static void s_free_value(uint64_t key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    free(value);
}

void gq_sched_destroy(gq_sched_t **self_p)
{
    gq_sched_t *self = *self_p;
    if (!self)
        return;
    if (self->clients)
        gq_map_each(self->clients, s_free_value, NULL);
    if (self->groups)
        gq_map_each(self->groups, s_free_value, NULL);
    gq_map_destroy(&self->clients);
    gq_map_destroy(&self->groups);
    for (int c = 0; c < GQ_SCHED_NCLASSES; c++)
        free(self->cls[c].heap);
    free(self->aside);
    free(self);
    *self_p = NULL;
}

/* ---- heap: (deadline, fair tag, arrival) ---- */

static int s_before(const gq_sched_job_t *a, const gq_sched_job_t *b)
{
    uint64_t da = a->deadline_us ? a->deadline_us : UINT64_MAX;
    uint64_t db = b->deadline_us ? b->deadline_us : UINT64_MAX;
    if (da != db)
        return da < db;
    if (a->vtag != b->vtag)
        return a->vtag < b->vtag;
    return a->seq < b->seq;
}

static void s_heap_set(s_class_t *q, size_t i, gq_sched_job_t *j)
{
    q->heap[i] = j;
    j->heap_pos = (int)i;
}

static void s_heap_up(s_class_t *q, size_t i)
{
    gq_sched_job_t *j = q->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!s_before(j, q->heap[p]))
            break;
        s_heap_set(q, i, q->heap[p]);
        i = p;
    }
    s_heap_set(q, i, j);
}

static void s_heap_down(s_class_t *q, size_t i)
{
    gq_sched_job_t *j = q->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, best = i;
        const gq_sched_job_t *bj = j;
        if (l < q->n && s_before(q->heap[l], bj))
            best = l, bj = q->heap[l];
        if (l + 1 < q->n && s_before(q->heap[l + 1], bj))
            best = l + 1;
        if (best == i)
            break;
        s_heap_set(q, i, q->heap[best]);
        i = best;
    }
    s_heap_set(q, i, j);
}

static void s_heap_remove(s_class_t *q, gq_sched_job_t *j)
{
    size_t i = (size_t)j->heap_pos;
    j->heap_pos = -1;
    if (--q->n == i)
        return;
    s_heap_set(q, i, q->heap[q->n]);
    if (i > 0 && s_before(q->heap[i], q->heap[(i - 1) / 2]))
        s_heap_up(q, i);
    else
        s_heap_down(q, i);
}

/* ---- per-class FIFO, clients, groups ---- */

static void s_fifo_add(s_class_t *q, gq_sched_job_t *j, int front)
{
    j->fifo_prev = j->fifo_next = NULL;
    if (!q->fifo_head) {
        q->fifo_head = q->fifo_tail = j;
    } else if (front) {
        j->fifo_next = q->fifo_head;
        q->fifo_head->fifo_prev = j;
        q->fifo_head = j;
    } else {
        j->fifo_prev = q->fifo_tail;
        q->fifo_tail->fifo_next = j;
        q->fifo_tail = j;
    }
}

static void s_fifo_del(s_class_t *q, gq_sched_job_t *j)
{
    if (j->fifo_prev)
        j->fifo_prev->fifo_next = j->fifo_next;
    else
        q->fifo_head = j->fifo_next;
    if (j->fifo_next)
        j->fifo_next->fifo_prev = j->fifo_prev;
    else
        q->fifo_tail = j->fifo_prev;
    j->fifo_prev = j->fifo_next = NULL;
}

static uint64_t s_splitmix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Map key of (id, class). Entries also hold both, so a 64-bit collision is checked. */
static uint64_t s_mix(uint64_t a, int cls)
{
    uint64_t k = s_splitmix(a ^ s_splitmix((uint64_t)cls + 1u));
    return k ? k : 1;
}

static s_client_t *s_client_get(gq_sched_t *self, uint64_t client, int cls, int create)
{
    uint64_t k = s_mix(client, cls);
    s_client_t *c = gq_map_get(self->clients, k);
    if (c && (c->client != client || c->cls != cls))
        return NULL; /* a collision: such a client is refused rather than mixed up */
    if (c || !create)
        return c;
    if (!(c = calloc(1, sizeof *c)))
        return NULL;
    c->client = client;
    c->cls = cls;
    if (gq_map_put(self->clients, k, c)) {
        free(c);
        return NULL;
    }
    self->cls[cls].nclients++;
    return c;
}

static void s_client_drop(gq_sched_t *self, s_client_t *c)
{
    if (--c->queued)
        return;
    self->cls[c->cls].nclients--;
    free(gq_map_take(self->clients, s_mix(c->client, c->cls)));
}

static gq_sched_group_t *s_group_get(gq_sched_t *self, uint64_t key, int cls, int create)
{
    uint64_t k = s_mix(key, cls + GQ_SCHED_NCLASSES);
    gq_sched_group_t *g = gq_map_get(self->groups, k);
    if (g && (g->key != key || g->cls != cls))
        return NULL; /* a collision: the job is refused rather than batched with others */
    if (g || !create)
        return g;
    if (!(g = calloc(1, sizeof *g)))
        return NULL;
    g->key = key;
    g->cls = cls;
    if (gq_map_put(self->groups, k, g)) {
        free(g);
        return NULL;
    }
    return g;
}

static void s_group_add(gq_sched_group_t *g, gq_sched_job_t *j, int front)
{
    j->group = g;
    j->grp_prev = j->grp_next = NULL;
    if (!g->head) {
        g->head = g->tail = j;
    } else if (front) {
        j->grp_next = g->head;
        g->head->grp_prev = j;
        g->head = j;
    } else {
        j->grp_prev = g->tail;
        g->tail->grp_next = j;
        g->tail = j;
    }
    g->n++;
}

static void s_group_del(gq_sched_t *self, gq_sched_job_t *j)
{
    gq_sched_group_t *g = j->group;
    if (!g)
        return;
    if (j->grp_prev)
        j->grp_prev->grp_next = j->grp_next;
    else
        g->head = j->grp_next;
    if (j->grp_next)
        j->grp_next->grp_prev = j->grp_prev;
    else
        g->tail = j->grp_prev;
    j->grp_prev = j->grp_next = NULL;
    j->group = NULL;
    if (--g->n == 0)
        free(gq_map_take(self->groups, s_mix(g->key, g->cls + GQ_SCHED_NCLASSES)));
}

/* ---- push / remove ---- */

static size_t s_class_cap(const gq_sched_t *self, int cls)
{
    size_t cap = self->cfg.max_class[cls];
    return cap && cap < self->cfg.max_queue ? cap : self->cfg.max_queue;
}

static size_t s_client_cap(const gq_sched_t *self, int cls)
{
    size_t cap = (size_t)((double)s_class_cap(self, cls) * self->cfg.client_share);
    return cap > self->cfg.client_min ? cap : self->cfg.client_min;
}

/* Time for the queue to drain by a twentieth of the bound that refused, at the measured
 * completion rate: long enough that a retry is likely to fit, short enough to keep up. */
static uint32_t s_retry_after(const gq_sched_t *self, size_t bound)
{
    if (self->rate <= 0)
        return S_RETRY_UNKNOWN_MS;
    double ms = ((double)bound / 20.0 + 1.0) / self->rate * 1000.0;
    if (ms < S_RETRY_MIN_MS)
        return S_RETRY_MIN_MS;
    return ms > S_RETRY_MAX_MS ? S_RETRY_MAX_MS : (uint32_t)ms;
}

gq_sched_refusal_t gq_sched_room(gq_sched_t *self, const gq_sched_job_t *j, uint32_t *retry)
{
    size_t bound = 0;
    gq_sched_refusal_t why = GQ_SCHED_OK;
    const s_client_t *c = s_client_get(self, j->client, j->cls, 0);
    if (j->cls < 0 || j->cls >= GQ_SCHED_NCLASSES)
        return GQ_SCHED_FULL_CLASS;
    if (self->total >= self->cfg.max_queue) {
        bound = self->cfg.max_queue;
        why = GQ_SCHED_FULL_TOTAL;
    } else if (self->cls[j->cls].n >= s_class_cap(self, j->cls)) {
        bound = s_class_cap(self, j->cls);
        why = GQ_SCHED_FULL_CLASS;
    } else if (c && c->queued >= s_client_cap(self, j->cls)) {
        bound = s_client_cap(self, j->cls);
        why = GQ_SCHED_FULL_CLIENT;
    }
    if (why) {
        self->cls[j->cls].refused++;
        if (retry)
            *retry = s_retry_after(self, bound);
    }
    return why;
}

static int s_heap_reserve(s_class_t *q)
{
    if (q->n < q->cap)
        return 0;
    size_t cap = q->cap ? q->cap * 2 : 64;
    gq_sched_job_t **h = realloc(q->heap, cap * sizeof *h);
    if (!h)
        return -1;
    q->heap = h;
    q->cap = cap;
    return 0;
}

/* Makes sure linking j into class cls cannot fail: heap room, its client's entry and its
 * batch group exist. */
static int s_reserve(gq_sched_t *self, const gq_sched_job_t *j, int cls)
{
    if (s_heap_reserve(&self->cls[cls]) || !s_client_get(self, j->client, cls, 1))
        return -1;
    if (j->batch_key && j->batch.max > 1 && !s_group_get(self, j->batch_key, cls, 1))
        return -1;
    return 0;
}

/* Adds j to q's heap, which has room (reserved, or j came out of it). */
static void s_heap_add(s_class_t *q, gq_sched_job_t *j)
{
    q->heap[q->n++] = j;
    s_heap_up(q, q->n - 1);
}

/* Where a linked job goes among the jobs of its deadline. */
typedef enum {
    S_FAIR,     /* its client's next fair-queueing turn */
    S_FRONT,    /* a requeue: before every fair-queued job */
    S_PROMOTED, /* aged into the class: before the fair-queued jobs waiting there */
} s_place_t;

/* Links j into class cls (reserved): heap, FIFO, its client's count and its batch group. */
static void s_link(gq_sched_t *self, gq_sched_job_t *j, int cls, s_place_t place)
{
    s_class_t *q = &self->cls[cls];
    s_client_t *c = s_client_get(self, j->client, cls, 0);
    int front = place == S_FRONT;
    j->cur_cls = cls;
    if (front) {
        j->vtag = 0;
    } else {
        j->vtag = c->next_tag > q->vtime ? c->next_tag : q->vtime;
        c->next_tag = j->vtag + 1;
        if (place == S_PROMOTED)
            j->vtag = q->vtime;
    }
    s_heap_add(q, j);
    c->queued++;
    s_fifo_add(q, j, front);
    if (j->batch_key && j->batch.max > 1)
        s_group_add(s_group_get(self, j->batch_key, cls, 0), j, front);
    self->total++;
}

static void s_unlink(gq_sched_t *self, gq_sched_job_t *j)
{
    s_class_t *q = &self->cls[j->cur_cls];
    if (j->heap_pos >= 0)
        s_heap_remove(q, j);
    s_fifo_del(q, j);
    s_group_del(self, j);
    s_client_t *c = s_client_get(self, j->client, j->cur_cls, 0);
    if (c)
        s_client_drop(self, c);
    self->total--;
}

gq_sched_refusal_t gq_sched_push(gq_sched_t *self, gq_sched_job_t *j, uint64_t now, unsigned flags,
                                 uint32_t *retry_after_ms)
{
    if (j->cls < 0 || j->cls >= GQ_SCHED_NCLASSES)
        j->cls = GQ_SCHED_NCLASSES - 1;
    if (!j->client)
        j->client = 1;
    int front = (flags & GQ_SCHED_FRONT) && j->seq; /* only a job queued before has a place */
    if (!(flags & (GQ_SCHED_FORCE | GQ_SCHED_FRONT))) {
        gq_sched_refusal_t why = gq_sched_room(self, j, retry_after_ms);
        if (why)
            return why;
    }
    if (!front) {
        j->arrival_us = now;
        j->class_since_us = now;
        j->seq = ++self->seq;
        j->cur_cls = j->cls;
    }
    j->heap_pos = -1;
    j->group = NULL;
    int cls = front ? j->cur_cls : j->cls;
    if (s_reserve(self, j, cls)) {
        if (retry_after_ms)
            *retry_after_ms = S_RETRY_UNKNOWN_MS;
        return GQ_SCHED_NOMEM;
    }
    s_link(self, j, cls, front ? S_FRONT : S_FAIR);
    return GQ_SCHED_OK;
}

void gq_sched_remove(gq_sched_t *self, gq_sched_job_t *j)
{
    if (j->heap_pos >= 0)
        s_unlink(self, j);
}

/* ---- aging, expiry ---- */

/* Moves j up one class, before the fair-queued jobs already waiting there. */
static int s_promote(gq_sched_t *self, gq_sched_job_t *j, uint64_t now)
{
    int to = j->cur_cls - 1;
    if (s_reserve(self, j, to))
        return -1;
    s_unlink(self, j);
    j->class_since_us = now;
    s_link(self, j, to, S_PROMOTED);
    self->promoted++;
    return 1;
}

int gq_sched_age(gq_sched_t *self, uint64_t now)
{
    int moved = 0;
    for (int c = self->cfg.aging_top + 1; c < GQ_SCHED_NCLASSES; c++) {
        uint64_t age = self->cfg.aging_us[c];
        if (!age)
            continue;
        gq_sched_job_t *j;
        while ((j = self->cls[c].fifo_head) && now - j->class_since_us >= age) {
            if (s_promote(self, j, now) < 0)
                return moved; /* out of memory: it stays, and is tried again later */
            moved++;
        }
    }
    return moved;
}

int gq_sched_expired(gq_sched_t *self, uint64_t now, gq_sched_job_t **out, int max)
{
    int n = 0;
    for (int c = 0; c < GQ_SCHED_NCLASSES; c++) {
        s_class_t *q = &self->cls[c];
        while (n < max && q->n && q->heap[0]->deadline_us && q->heap[0]->deadline_us <= now) {
            gq_sched_job_t *j = q->heap[0];
            s_unlink(self, j);
            out[n++] = j;
        }
    }
    return n;
}

int gq_sched_drain(gq_sched_t *self, gq_sched_job_t **out, int max)
{
    int n = 0;
    for (int c = 0; c < GQ_SCHED_NCLASSES; c++)
        while (n < max && self->cls[c].n) {
            out[n] = self->cls[c].heap[self->cls[c].n - 1];
            s_unlink(self, out[n++]);
        }
    return n;
}

/* ---- dispatch ---- */

static int s_aside(gq_sched_t *self, size_t n, gq_sched_job_t *j)
{
    if (n == self->aside_cap) {
        size_t cap = self->aside_cap ? self->aside_cap * 2 : 64;
        gq_sched_job_t **a = realloc(self->aside, cap * sizeof *a);
        if (!a)
            return -1;
        self->aside = a;
        self->aside_cap = cap;
    }
    self->aside[n] = j;
    return 0;
}

/* How many of group g to take now; 0: hold the group back to fill. */
static size_t s_cut(const gq_sched_group_t *g, const gq_sched_job_t *j, uint64_t now, int max_out)
{
    size_t limit = j->batch.max < (uint32_t)max_out ? j->batch.max : (size_t)max_out;
    if (g->n >= limit)
        return limit;
    if (!j->batch.delay_us || now - g->head->arrival_us >= j->batch.delay_us)
        return g->n;
    size_t best = 0;
    for (int i = 0; i < GQ_SCHED_MAX_PREFERRED && j->batch.preferred[i]; i++)
        if (j->batch.preferred[i] <= g->n && j->batch.preferred[i] > best)
            best = j->batch.preferred[i];
    return best;
}

/* Takes j and up to cut - 1 more members of its group, oldest first, into out. */
static int s_take_batch(gq_sched_t *self, gq_sched_job_t *j, size_t cut, gq_sched_job_t **out)
{
    gq_sched_group_t *g = j->group;
    int n = 0;
    out[n++] = j;
    gq_sched_job_t *m = g->head;
    while (m && (size_t)n < cut) {
        gq_sched_job_t *next = m->grp_next;
        if (m != j) {
            out[n++] = m;
            s_unlink(self, m);
        }
        m = next;
    }
    s_unlink(self, j);
    if (n > 1) {
        self->batches++;
        self->batched_jobs += (uint64_t)n;
    }
    return n;
}

/* Puts back the jobs looked past; the heap has room, they came out of it. */
static void s_restore(gq_sched_t *self, int cls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s_heap_add(&self->cls[cls], self->aside[i]);
}

static void s_hold(gq_sched_t *self, gq_sched_group_t *g, const gq_sched_job_t *j)
{
    if (g->held_gen == self->gen)
        return;
    g->held_gen = self->gen;
    self->held++;
    uint64_t due = g->head->arrival_us + j->batch.delay_us;
    if (due < self->held_wake)
        self->held_wake = due;
}

int gq_sched_next(gq_sched_t *self, uint64_t now, gq_sched_runnable_fn *runnable, void *arg,
                  gq_sched_job_t **out, int max_out, int max_skip)
{
    gq_sched_age(self, now);
    self->gen++;
    self->held = 0;
    self->held_wake = UINT64_MAX;
    if (max_out < 1)
        return 0;
    for (int c = 0; c < GQ_SCHED_NCLASSES; c++) {
        s_class_t *q = &self->cls[c];
        size_t naside = 0;
        int skipped = 0, held = 0;
        while (q->n) {
            gq_sched_job_t *j = q->heap[0];
            gq_sched_group_t *g = j->group;
            size_t cut = 1;
            if (g && (g->held_gen == self->gen || !(cut = s_cut(g, j, now, max_out)))) {
                s_hold(self, g, j);
                if (++held > S_HELD_LOOK * max_skip)
                    break;
            } else if (runnable(j, arg)) {
                int n = g ? s_take_batch(self, j, cut, out) : (s_unlink(self, j), out[0] = j, 1);
                if (q->vtime < j->vtag)
                    q->vtime = j->vtag;
                s_restore(self, c, naside);
                return n;
            } else if (++skipped > max_skip) {
                break;
            }
            if (s_aside(self, naside, j))
                break;
            s_heap_remove(q, j);
            naside++;
        }
        s_restore(self, c, naside);
    }
    return 0;
}

uint64_t gq_sched_wake_us(const gq_sched_t *self)
{
    uint64_t wake = self->held ? self->held_wake : UINT64_MAX;
    for (int c = self->cfg.aging_top + 1; c < GQ_SCHED_NCLASSES; c++) {
        const gq_sched_job_t *j = self->cls[c].fifo_head;
        if (j && self->cfg.aging_us[c] && j->class_since_us + self->cfg.aging_us[c] < wake)
            wake = j->class_since_us + self->cfg.aging_us[c];
    }
    return wake;
}

void gq_sched_completed(gq_sched_t *self, uint64_t now, int n)
{
    if (!self->rate_t0)
        self->rate_t0 = now;
    self->rate_count += (uint64_t)n;
    uint64_t dt = now - self->rate_t0;
    if (dt < S_RATE_WINDOW_US)
        return;
    double r = (double)self->rate_count * 1e6 / (double)dt;
    self->rate = self->rate > 0 ? 0.7 * self->rate + 0.3 * r : r;
    self->rate_t0 = now;
    self->rate_count = 0;
}

/* ---- introspection ---- */

void gq_sched_stats(const gq_sched_t *self, gq_sched_stats_t *out)
{
    memset(out, 0, sizeof *out);
    for (int c = 0; c < GQ_SCHED_NCLASSES; c++) {
        const s_class_t *q = &self->cls[c];
        out->queued[c] = q->n;
        out->clients[c] = q->nclients;
        out->refused[c] = q->refused;
        for (const gq_sched_job_t *j = q->fifo_head; j; j = j->fifo_next)
            if (!out->oldest_us[c] || j->arrival_us < out->oldest_us[c])
                out->oldest_us[c] = j->arrival_us;
    }
    out->groups = gq_map_size(self->groups);
    out->held = self->held;
    out->promoted = self->promoted;
    out->batches = self->batches;
    out->batched_jobs = self->batched_jobs;
    out->completion_rate = self->rate;
}

size_t gq_sched_len(const gq_sched_t *self)
{
    return self->total;
}

size_t gq_sched_class_len(const gq_sched_t *self, int cls)
{
    return cls >= 0 && cls < GQ_SCHED_NCLASSES ? self->cls[cls].n : 0;
}

size_t gq_sched_client_len(const gq_sched_t *self, int cls, uint64_t client)
{
    if (cls < 0 || cls >= GQ_SCHED_NCLASSES)
        return 0;
    const s_client_t *c = s_client_get((gq_sched_t *)self, client ? client : 1, cls, 0);
    return c ? c->queued : 0;
}

size_t gq_sched_rank(const gq_sched_t *self, const gq_sched_job_t *j)
{
    if (j->heap_pos < 0)
        return 0;
    size_t rank = 1;
    for (int c = 0; c < j->cur_cls; c++)
        rank += self->cls[c].n;
    const s_class_t *q = &self->cls[j->cur_cls];
    for (size_t i = 0; i < q->n; i++)
        rank += s_before(q->heap[i], j);
    return rank;
}
