/* The memory tier: decoded values (a hit sends frames that point into them: no decode, no
 * copy) under a byte budget, evicted by segmented LRU. New entries enter a probation
 * segment; a second hit promotes them to a protected segment (80 % of the budget) whose
 * overflow goes back to probation. One-hit wonders then leave before anything used twice,
 * which beats plain LRU on skewed workloads (bench_cache measures both against Bélády). */
#include "cache.h"

#include <stdlib.h>
#include <string.h>
#include "map.h"

#define S_PROTECTED_PCT 80
#define S_ENTRY_OVERHEAD 160 /* entry, map slot, allocator: charged with each value */

typedef struct s_entry {
    gq_cache_key_t key;
    gq_cache_val_t *val;
    size_t charge;
    uint64_t expires_us;
    int seg; /* 0 probation, 1 protected */
    struct s_entry *prev, *next;
} s_entry_t;

typedef struct {
    s_entry_t *head, *tail; /* head = most recent */
    size_t bytes;
} s_seg_t;

struct gq_cache_mem {
    gq_map_t *map; /* key.lo (0 -> 1) -> entry */
    s_seg_t seg[2];
    size_t budget;
    gq_evict_t policy;
    gq_tier_stats_t st;
};

static uint64_t s_mkey(const gq_cache_key_t *k)
{
    return k->lo ? k->lo : 1;
}

size_t gq_cache_mem_charge(const gq_cache_val_t *val)
{
    return gq_cache_val_raw_size(val) + S_ENTRY_OVERHEAD;
}

gq_cache_mem_t *gq_cache_mem_new(size_t budget, gq_evict_t policy)
{
    gq_cache_mem_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (!(self->map = gq_map_new())) {
        free(self);
        return NULL;
    }
    self->budget = budget;
    self->policy = policy;
    self->st.enabled = 1;
    self->st.up = 1;
    self->st.capacity = budget;
    return self;
}

static void s_unlink(gq_cache_mem_t *self, s_entry_t *e)
{
    s_seg_t *s = &self->seg[e->seg];
    if (e->prev)
        e->prev->next = e->next;
    else
        s->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        s->tail = e->prev;
    e->prev = e->next = NULL;
    s->bytes -= e->charge;
}

static void s_push(gq_cache_mem_t *self, s_entry_t *e, int seg)
{
    s_seg_t *s = &self->seg[seg];
    e->seg = seg;
    e->prev = NULL;
    e->next = s->head;
    if (s->head)
        s->head->prev = e;
    else
        s->tail = e;
    s->head = e;
    s->bytes += e->charge;
}

/* Unlinks, unmaps and frees an entry. */
static void s_drop(gq_cache_mem_t *self, s_entry_t *e)
{
    s_unlink(self, e);
    gq_map_take(self->map, s_mkey(&e->key));
    self->st.entries--;
    self->st.bytes_raw -= gq_cache_val_raw_size(e->val);
    self->st.bytes_stored -= gq_cache_val_raw_size(e->val);
    gq_cache_val_unref(&e->val);
    free(e);
}

void gq_cache_mem_clear(gq_cache_mem_t *self)
{
    for (int s = 0; s < 2; s++)
        while (self->seg[s].head)
            s_drop(self, self->seg[s].head);
}

void gq_cache_mem_destroy(gq_cache_mem_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gq_cache_mem_t *self = *self_p;
    gq_cache_mem_clear(self);
    gq_map_destroy(&self->map);
    free(self);
    *self_p = NULL;
}

/* Keeps the protected segment within its share by demoting its least recent entries. */
static void s_rebalance(gq_cache_mem_t *self)
{
    size_t cap = self->budget / 100 * S_PROTECTED_PCT;
    while (self->seg[1].bytes > cap && self->seg[1].tail) {
        s_entry_t *e = self->seg[1].tail;
        s_unlink(self, e);
        s_push(self, e, 0);
    }
}

static void s_evict_to(gq_cache_mem_t *self, size_t need)
{
    while (self->seg[0].bytes + self->seg[1].bytes + need > self->budget) {
        s_entry_t *e = self->seg[0].tail ? self->seg[0].tail : self->seg[1].tail;
        if (!e)
            break;
        self->st.evictions++;
        s_drop(self, e);
    }
}

gq_cache_val_t *gq_cache_mem_get(gq_cache_mem_t *self, const gq_cache_key_t *key, uint64_t now_us)
{
    s_entry_t *e = gq_map_get(self->map, s_mkey(key));
    if (!e || !gq_cache_key_equal(&e->key, key)) {
        self->st.misses++;
        return NULL;
    }
    if (e->expires_us && now_us >= e->expires_us) {
        self->st.expired++;
        self->st.misses++;
        s_drop(self, e);
        return NULL;
    }
    /* XXH3-64 runs at tens of GB/s: cheap next to sending the bytes, and a value that went
     * bad in memory (a stray write) is never served. */
    if (gq_cache_val_verify(e->val)) {
        self->st.corrupt++;
        self->st.misses++;
        s_drop(self, e);
        return NULL;
    }
    self->st.hits++;
    s_unlink(self, e);
    if (self->policy == GQ_EVICT_LRU) {
        s_push(self, e, 0);
    } else {
        s_push(self, e, 1);
        s_rebalance(self);
    }
    return gq_cache_val_ref(e->val);
}

gq_cache_val_t *gq_cache_mem_peek(gq_cache_mem_t *self, const gq_cache_key_t *key)
{
    s_entry_t *e = gq_map_get(self->map, s_mkey(key));
    return e && gq_cache_key_equal(&e->key, key) ? e->val : NULL;
}

void gq_cache_mem_put(gq_cache_mem_t *self, const gq_cache_key_t *key, gq_cache_val_t *val,
                      uint64_t expires_us)
{
    size_t charge = gq_cache_mem_charge(val);
    s_entry_t *old = gq_map_get(self->map, s_mkey(key));
    if (old)
        s_drop(self, old);
    if (charge > self->budget)
        return;
    s_evict_to(self, charge);
    s_entry_t *e = calloc(1, sizeof *e);
    if (!e)
        return;
    e->key = *key;
    e->val = gq_cache_val_ref(val);
    e->charge = charge;
    e->expires_us = expires_us;
    if (gq_map_put(self->map, s_mkey(key), e)) {
        gq_cache_val_unref(&e->val);
        free(e);
        return;
    }
    s_push(self, e, 0);
    self->st.stores++;
    self->st.entries++;
    self->st.bytes_raw += gq_cache_val_raw_size(val);
    self->st.bytes_stored += gq_cache_val_raw_size(val);
}

void gq_cache_mem_stats(const gq_cache_mem_t *self, gq_tier_stats_t *out)
{
    *out = self->st;
}
