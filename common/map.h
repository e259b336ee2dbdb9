/* gq_map: uint64 key -> pointer hash map (open addressing, linear probing, backward-shift
 * deletion). Keys are any value but 0 is reserved. Not thread-safe. */
#ifndef GQ_MAP_H
#define GQ_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct gq_map gq_map_t;

gq_map_t *gq_map_new(void);
void gq_map_destroy(gq_map_t **self_p);

/* Inserts or replaces; returns 0, or -1 when out of memory or key is 0. */
int gq_map_put(gq_map_t *self, uint64_t key, void *value);
void *gq_map_get(const gq_map_t *self, uint64_t key);
/* Removes key and returns its value (NULL if absent). */
void *gq_map_take(gq_map_t *self, uint64_t key);
size_t gq_map_size(const gq_map_t *self);

/* Calls fn for each entry; fn must not modify the map. */
void gq_map_each(const gq_map_t *self, void (*fn)(uint64_t key, void *value, void *arg), void *arg);

/* 64-bit hash of bytes (FNV-1a folded through a mixer); for map keys, not for caches. */
uint64_t gq_hash_bytes(const void *data, size_t len, uint64_t seed);

#endif
