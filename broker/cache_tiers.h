/* The result cache's disk (LMDB) and Redis tiers and the stack that chains them after the
 * memory tier: memory -> disk -> Redis. Part of the broker library, which links liblmdb and
 * hiredis. Keys, values, the codec and the memory tier: common/cache.h.
 *
 * Threads: a gq_cache_t is used by one thread (the broker's loop). Behind it a writer
 * thread encodes stored values and writes them to the disk and Redis tiers (the LMDB tier
 * under a lock both threads take), and the Redis tier runs its own I/O thread, reporting
 * through gq_cache_fd / gq_cache_drain. A gq_cache_lmdb_t alone is single-threaded. */
#ifndef GQ_CACHE_TIERS_H
#define GQ_CACHE_TIERS_H

#include "cache.h"

/* ---- disk tier (LMDB) ---- */

typedef struct gq_cache_lmdb gq_cache_lmdb_t;

/* Opens (creating) an LMDB environment in directory path, holding at most cap bytes of
 * encoded values. NULL with err naming the cause. */
gq_cache_lmdb_t *gq_cache_lmdb_new(const char *path, size_t cap, char *err, size_t errlen);
void gq_cache_lmdb_destroy(gq_cache_lmdb_t **self_p);

/* The decoded value under key, or NULL; a corrupt entry is deleted and counted. */
gq_cache_val_t *gq_cache_lmdb_get(gq_cache_lmdb_t *self, const gq_cache_key_t *key,
                                  uint64_t now_unix_ms);

/* Stores an encoded value (gq_cache_encode); evicts the oldest entries to stay under cap.
 * expires_unix_ms: 0 = never. raw: the raw body size, for stats. */
gq_status gq_cache_lmdb_put(gq_cache_lmdb_t *self, const gq_cache_key_t *key, const uint8_t *enc,
                            size_t len, size_t raw, uint64_t expires_unix_ms);
gq_status gq_cache_lmdb_clear(gq_cache_lmdb_t *self);
void gq_cache_lmdb_stats(const gq_cache_lmdb_t *self, gq_tier_stats_t *out);

/* Test hook: overwrites the stored bytes of key with fn's edit (bit flip, truncation). */
gq_status gq_cache_lmdb_tamper(gq_cache_lmdb_t *self, const gq_cache_key_t *key,
                               void (*fn)(uint8_t *buf, size_t *len, void *arg), void *arg);

/* ---- Redis tier ---- */

typedef struct gq_cache_redis gq_cache_redis_t;

/* addr: "host:port" or "tcp://host:port". Starts the I/O thread; the connection is made
 * there (an unreachable server is not an error here: the tier reports down and retries
 * with backoff). timeout_ms bounds each command (default 200). */
gq_cache_redis_t *gq_cache_redis_new(const char *addr, int timeout_ms, char *err, size_t errlen);
void gq_cache_redis_destroy(gq_cache_redis_t **self_p);

/* Starts a GET; the answer comes through gq_cache_redis_drain. Returns 0, or -1 when the
 * tier is down or the request queue is full (treat as a miss: never wait on an outage). */
int gq_cache_redis_get(gq_cache_redis_t *self, const gq_cache_key_t *key);

/* Queues a SET with TTL (0 = none); takes ownership of enc (malloc'd). Dropped when down. */
void gq_cache_redis_put(gq_cache_redis_t *self, const gq_cache_key_t *key, uint8_t *enc, size_t len,
                        size_t raw, uint64_t ttl_ms);

/* Queues deletion of every gpuq cache key (SCAN + UNLINK in the I/O thread). */
void gq_cache_redis_clear(gq_cache_redis_t *self);

/* Readable when answers are waiting. */
int gq_cache_redis_fd(const gq_cache_redis_t *self);

/* Calls fn for each finished GET: val is a new reference (the callee takes it) or NULL on
 * a miss (absent, corrupt, timed out, or the tier went down); waited_us since the GET was
 * queued. Returns how many. */
int gq_cache_redis_drain(gq_cache_redis_t *self,
                         void (*fn)(void *arg, const gq_cache_key_t *key, gq_cache_val_t *val,
                                    uint64_t waited_us),
                         void *arg);
void gq_cache_redis_stats(gq_cache_redis_t *self, gq_tier_stats_t *out);

/* ---- the tier stack ---- */

typedef struct {
    int enabled;           /* 0: no cache at all */
    size_t mem_bytes;      /* memory tier budget; 0 = no memory tier */
    gq_evict_t mem_policy; /* GQ_EVICT_SLRU (default) or GQ_EVICT_LRU */
    const char *lmdb_path; /* NULL = no disk tier */
    size_t lmdb_bytes;     /* disk tier cap (default 1 GiB) */
    const char *redis;     /* NULL = no Redis tier; "host:port" or "tcp://host:port" */
    int redis_timeout_ms;  /* per command (default 200) */
    uint64_t ttl_ms;       /* default TTL of entries; 0 = none */
    size_t max_value;      /* results over this many raw bytes are not stored */
    gq_shuffle_t shuffle;  /* float byte-shuffle before LZ4 (default auto) */
} gq_cache_config_t;

/* Enabled, 256 MiB memory tier, SLRU, no disk, no Redis, no TTL, 64 MiB values. */
void gq_cache_config_init(gq_cache_config_t *cfg);

typedef struct gq_cache gq_cache_t;

typedef enum { GQ_CACHE_HIT = 0, GQ_CACHE_MISS = 1, GQ_CACHE_PENDING = 2 } gq_lookup_t;

/* The configured tiers. NULL with err set when one cannot be opened (LMDB path); a Redis
 * server that is down is not an error. Returns NULL without error when !cfg->enabled. */
gq_cache_t *gq_cache_new(const gq_cache_config_t *cfg, char *err, size_t errlen);
void gq_cache_destroy(gq_cache_t **self_p);

/* Looks key up through the synchronous tiers (memory, disk). HIT: *val is a new reference,
 * *tier where it was found (a disk hit is copied into memory). MISS otherwise: the caller
 * may then go on with gq_cache_get_async. */
gq_lookup_t gq_cache_get(gq_cache_t *self, const gq_cache_key_t *key, gq_cache_val_t **val,
                         int *tier);

/* With a Redis tier up, starts a GET and returns PENDING: the answer comes from
 * gq_cache_drain. MISS when there is no such tier or it is down. */
gq_lookup_t gq_cache_get_async(gq_cache_t *self, const gq_cache_key_t *key);

/* Stores val under key in every tier (memory takes a reference; disk and Redis get it
 * encoded). ttl_ms: 0 = the configured default. */
void gq_cache_put(gq_cache_t *self, const gq_cache_key_t *key, gq_cache_val_t *val,
                  uint64_t ttl_ms);

/* Polled fd of the asynchronous tier; -1 when there is none. */
int gq_cache_fd(const gq_cache_t *self);

/* Delivers finished asynchronous lookups: fn(arg, key, val or NULL for a miss, tier). A Redis
 * hit is copied into the memory and disk tiers first. The callee takes val's reference. */
int gq_cache_drain(gq_cache_t *self,
                   void (*fn)(void *arg, const gq_cache_key_t *key, gq_cache_val_t *val, int tier),
                   void *arg);

/* Empties every tier (values not yet written to disk and Redis are dropped). */
void gq_cache_clear(gq_cache_t *self);

/* Waits until every value stored so far is written to the disk and Redis tiers (handed to
 * Redis's thread, for that tier): for tests and shutdown. */
void gq_cache_flush(gq_cache_t *self);

/* The admission counters (dedup_joined, bypassed ...) the broker keeps with the cache's;
 * the caller may increment them. */
gq_cache_stats_t *gq_cache_counters(gq_cache_t *self);

/* Snapshot of every tier's stats and the counters. */
void gq_cache_stats(gq_cache_t *self, gq_cache_stats_t *out);

/* Test hooks: the tiers themselves (NULL when not configured). */
gq_cache_mem_t *gq_cache_mem_tier(gq_cache_t *self);
gq_cache_lmdb_t *gq_cache_lmdb_tier(gq_cache_t *self);

#endif
