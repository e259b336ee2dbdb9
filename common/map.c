#include "map.h"

#include <stdlib.h>

typedef struct {
    uint64_t key;
    void *value;
} s_slot_t;

struct gq_map {
    s_slot_t *slots;
    size_t cap; /* power of two */
    size_t size;
};

static uint64_t s_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

gq_map_t *gq_map_new(void)
{
    gq_map_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cap = 64;
    self->slots = calloc(self->cap, sizeof *self->slots);
    if (!self->slots) {
        free(self);
        return NULL;
    }
    return self;
}

void gq_map_destroy(gq_map_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->slots);
    free(*self_p);
    *self_p = NULL;
}

static s_slot_t *s_find(const gq_map_t *self, uint64_t key)
{
    size_t mask = self->cap - 1;
    for (size_t i = s_mix(key) & mask;; i = (i + 1) & mask) {
        s_slot_t *s = &self->slots[i];
        if (s->key == key || s->key == 0)
            return s;
    }
}

static int s_grow(gq_map_t *self)
{
    size_t old_cap = self->cap;
    s_slot_t *old = self->slots;
    s_slot_t *slots = calloc(old_cap * 2, sizeof *slots);
    if (!slots)
        return -1;
    self->slots = slots;
    self->cap = old_cap * 2;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].key)
            *s_find(self, old[i].key) = old[i];
    free(old);
    return 0;
}

int gq_map_put(gq_map_t *self, uint64_t key, void *value)
{
    if (!key)
        return -1;
    if ((self->size + 1) * 4 > self->cap * 3 && s_grow(self))
        return -1;
    s_slot_t *s = s_find(self, key);
    if (!s->key) {
        s->key = key;
        self->size++;
    }
    s->value = value;
    return 0;
}

void *gq_map_get(const gq_map_t *self, uint64_t key)
{
    if (!key)
        return NULL;
    s_slot_t *s = s_find(self, key);
    return s->key ? s->value : NULL;
}

void *gq_map_take(gq_map_t *self, uint64_t key)
{
    if (!key)
        return NULL;
    s_slot_t *s = s_find(self, key);
    if (!s->key)
        return NULL;
    void *value = s->value;
    size_t mask = self->cap - 1;
    size_t hole = (size_t)(s - self->slots);
    /* Backward-shift: move later entries of the probe run into the hole when their home
     * slot does not lie (cyclically) between the hole and their position. */
    for (size_t j = (hole + 1) & mask; self->slots[j].key; j = (j + 1) & mask) {
        size_t home = s_mix(self->slots[j].key) & mask;
        int between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!between) {
            self->slots[hole] = self->slots[j];
            hole = j;
        }
    }
    self->slots[hole].key = 0;
    self->slots[hole].value = NULL;
    self->size--;
    return value;
}

size_t gq_map_size(const gq_map_t *self)
{
    return self->size;
}

void gq_map_each(const gq_map_t *self, void (*fn)(uint64_t key, void *value, void *arg), void *arg)
{
    for (size_t i = 0; i < self->cap; i++)
        if (self->slots[i].key)
            fn(self->slots[i].key, self->slots[i].value, arg);
}

uint64_t gq_hash_bytes(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return s_mix(h);
}
