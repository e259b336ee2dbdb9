/* Cache stats in the admin reply's wire form and as Prometheus text. */
#ifndef GQ_CACHE_REPORT_H
#define GQ_CACHE_REPORT_H

#include <stddef.h>
#include "cache.h"
#include "gpuq.pb-c.h"

/* Storage for a CacheStats message (pointers inside point into the struct). */
typedef struct {
    Gq__Wire__CacheStats cs;
    Gq__Wire__TierStats t[3];
    Gq__Wire__TierStats *tp[3];
    uint64_t lat[3][GQ_CACHE_LAT_BUCKETS];
} gq_cache_wire_t;

/* Fills w from st: one TierStats per enabled tier. */
void gq_cache_stats_to_wire(const gq_cache_stats_t *st, gq_cache_wire_t *w);

/* Appends the cache's metrics (Prometheus text exposition 0.0.4) to buf at off; returns the
 * new end (text is cut, still NUL-terminated, when buf is too short). */
size_t gq_cache_prom(const gq_cache_stats_t *st, char *buf, size_t len, size_t off);

#endif
