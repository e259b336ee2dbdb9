/* The result cache, the part every binary may link (libgpuq-core): a 128-bit key over what
 * determines a job's answer, values and their codec (the result tensors, LZ4-compressed
 * with a checked header), the memory tier (segmented LRU under a byte budget) and the stats
 * types. The disk (LMDB) and Redis tiers and the tier stack live with the broker
 * (broker/cache_tiers.h), which links their libraries. Design, formats and figures:
 * docs/cache.md.
 *
 * Values are reference counted atomically, so zmq may free frames that point into them
 * from its I/O threads; everything else is used by one thread. */
#ifndef GQ_CACHE_H
#define GQ_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include "optable.h"
#include "status.h"
#include "tensor.h"

/* ---- key ---- */

#define GQ_CACHE_KEY_VERSION 1u /* bump when what the key covers changes */
#define GQ_CACHE_MAX_DIGEST 64  /* model digest bytes (sha256 = 32) */

typedef struct {
    uint64_t lo, hi;
} gq_cache_key_t;

/* One input of a job as the key sees it. */
typedef struct {
    gq_tdesc_t desc;
    const void *data;
    size_t nbytes;
} gq_cache_input_t;

/* XXH3-128 over the key version, each stage's op name and resolved params (type tags and
 * values in spec order, defaults filled: gq_args_t from gq_op_resolve), the model digest
 * (may be NULL/0) and every input's dtype, shape and bytes. GQ_EINVAL on a digest over
 * GQ_CACHE_MAX_DIGEST or a NULL argument. */
gq_status gq_cache_key(const gq_args_t *stages, int nstages, const uint8_t *digest,
                       size_t digest_len, const gq_cache_input_t *inputs, int ninputs,
                       gq_cache_key_t *out);

/* 1 when every stage's op may be cached (none is GQ_OPF_NONDETERMINISTIC). */
int gq_cache_cacheable(const gq_args_t *stages, int nstages);

int gq_cache_key_equal(const gq_cache_key_t *a, const gq_cache_key_t *b);

/* 32 lowercase hex digits and a NUL into buf (33 bytes). */
char *gq_cache_key_hex(const gq_cache_key_t *k, char *buf);

/* ---- values ---- */

#define GQ_CACHE_ALIGN 64                    /* tensor data offsets inside a value */
#define GQ_CACHE_HEADER_SIZE 48              /* encoded value header */
#define GQ_CACHE_MAX_VALUE ((size_t)1 << 30) /* raw body bytes: LZ4 takes int sizes */
#define GQ_CACHE_MIN_SAVING_PCT 5            /* stored raw unless LZ4 saves this much */

#define GQ_CACHE_MAX_META 9  /* provenance strings: the worker, then one backend per stage */
#define GQ_CACHE_META_LEN 64 /* bytes per string, NUL included */

/* Decoded result tensors in one 64-byte aligned body; immutable once made. */
typedef struct gq_cache_val gq_cache_val_t;

/* A value holding copies of n tensors (descs + bytes) and nmeta provenance strings (may be
 * NULL/0). NULL when out of memory, n is out of 0..GQ_MAX_OUTPUTS, a descriptor is
 * invalid, nbytes[i] does not match desc[i], a string is too long, or the body would pass
 * GQ_CACHE_MAX_VALUE. */
gq_cache_val_t *gq_cache_val_new(const gq_tdesc_t *desc, const void *const *data,
                                 const size_t *nbytes, int n, const char *const *meta, int nmeta);

/* Provenance strings ("" past the end). */
int gq_cache_val_meta_count(const gq_cache_val_t *val);
const char *gq_cache_val_meta(const gq_cache_val_t *val, int i);

/* Reference counting (atomic). unref nulls *val_p and frees on the last reference. */
gq_cache_val_t *gq_cache_val_ref(gq_cache_val_t *val);
void gq_cache_val_unref(gq_cache_val_t **val_p);

int gq_cache_val_count(const gq_cache_val_t *val);
const gq_tdesc_t *gq_cache_val_desc(const gq_cache_val_t *val, int i);
const void *gq_cache_val_data(const gq_cache_val_t *val, int i);
size_t gq_cache_val_nbytes(const gq_cache_val_t *val, int i);

/* Bytes of the raw body (descriptor table + aligned tensor data). */
size_t gq_cache_val_raw_size(const gq_cache_val_t *val);

/* Recomputes the body checksum: 0 when it still matches the one taken at creation. */
int gq_cache_val_verify(const gq_cache_val_t *val);

/* For tests of corruption handling: flips one bit of the body (bit index modulo its size). */
void gq_cache_val_flip_bit(gq_cache_val_t *val, size_t bit);

typedef enum {
    GQ_SHUFFLE_AUTO = 0, /* byte-shuffle float tensors when a sample compresses better */
    GQ_SHUFFLE_OFF = 1,
    GQ_SHUFFLE_ON = 2,
} gq_shuffle_t;

#define GQ_CACHE_F_LZ4 0x1u
#define GQ_CACHE_F_SHUFFLE 0x2u

/* Encodes val for key: a 48-byte header (magic "GQCV", version, flags, raw size, stored
 * size, XXH3-64 of the raw body, the key) and the body, LZ4-compressed when that saves at
 * least GQ_CACHE_MIN_SAVING_PCT, byte-shuffled first per shuffle. *out is malloc'd (the
 * caller frees). *flags_out (may be NULL) gets the GQ_CACHE_F_ bits used. */
gq_status gq_cache_encode(const gq_cache_val_t *val, const gq_cache_key_t *key,
                          gq_shuffle_t shuffle, uint8_t **out, size_t *outlen, unsigned *flags_out);

/* Decodes buf (any bytes: every length is checked, LZ4_decompress_safe bounds the body)
 * into a new value. key may be NULL; otherwise the header's key must match. max_raw bounds
 * the body allocation (0: GQ_CACHE_MAX_VALUE). GQ_EFORMAT naming the fault when the entry
 * is corrupt, GQ_ENOMEM. */
gq_status gq_cache_decode(const uint8_t *buf, size_t len, const gq_cache_key_t *key, size_t max_raw,
                          gq_cache_val_t **out, char *err, size_t errlen);

/* Byte-shuffle of n elements of width w (bytes 0 of every element, then bytes 1 ...) and
 * its inverse; src and dst do not overlap. */
void gq_cache_shuffle(uint8_t *restrict dst, const uint8_t *restrict src, size_t n, size_t w);
void gq_cache_unshuffle(uint8_t *restrict dst, const uint8_t *restrict src, size_t n, size_t w);

/* ---- stats ---- */

#define GQ_CACHE_LAT_BUCKETS 16 /* bucket b counts lookups under 2^b us; the last, the rest */

typedef enum {
    GQ_TIER_NONE = 0,
    GQ_TIER_MEMORY = 1,
    GQ_TIER_DISK = 2,
    GQ_TIER_REDIS = 3,
    GQ_TIER_SHARED = 4, /* not a tier: the answer of an identical job in flight */
    GQ_TIER_COUNT
} gq_tier_t;

const char *gq_tier_name(int tier); /* "memory", "disk", "redis", "shared", "none" */

typedef struct {
    int enabled;
    int up; /* Redis: connected; others: 1 */
    uint64_t hits, misses, evictions, expired, corrupt, stores, errors;
    uint64_t entries;
    uint64_t bytes_raw;    /* raw body bytes of the entries held */
    uint64_t bytes_stored; /* bytes they take in the tier (compressed where it does) */
    uint64_t capacity;     /* byte budget; 0 = none (Redis: its own maxmemory) */
    uint64_t lat[GQ_CACHE_LAT_BUCKETS];
    uint64_t lat_sum_us;
} gq_tier_stats_t;

typedef struct {
    int enabled;
    gq_tier_stats_t tier[GQ_TIER_COUNT]; /* indexed by gq_tier_t; NONE and SHARED unused */
    uint64_t lookups, hits, misses;
    uint64_t dedup_joined;  /* jobs answered by an identical job's execution */
    uint64_t uncacheable;   /* jobs with a nondeterministic op */
    uint64_t bypassed;      /* jobs with policy bypass */
    uint64_t refreshed;     /* jobs with policy refresh */
    uint64_t too_big;       /* results over the value limit, not stored */
    uint64_t write_dropped; /* not written to disk and Redis: the writer was 256 MiB behind */
    uint64_t enc_raw, enc_stored, enc_shuffled; /* encoder totals (disk and Redis) */
} gq_cache_stats_t;

/* Log2 bucket of a duration in microseconds. */
int gq_cache_lat_bucket(uint64_t us);

/* ---- memory tier ---- */

typedef enum {
    GQ_EVICT_SLRU = 0, /* segmented LRU: probation 20 %, protected 80 % */
    GQ_EVICT_LRU = 1,
} gq_evict_t;

typedef struct gq_cache_mem gq_cache_mem_t;

/* A memory tier holding at most budget bytes (raw body + per-entry overhead). */
gq_cache_mem_t *gq_cache_mem_new(size_t budget, gq_evict_t policy);
void gq_cache_mem_destroy(gq_cache_mem_t **self_p);

/* A new reference to the value under key, or NULL (miss, expired, or corrupt: dropped and
 * counted). now_us: monotonic clock, for TTLs. */
gq_cache_val_t *gq_cache_mem_get(gq_cache_mem_t *self, const gq_cache_key_t *key, uint64_t now_us);

/* Takes a reference to val; replaces an entry under the same key; evicts to fit. A value
 * bigger than the budget is not stored. expires_us: 0 = never. */
void gq_cache_mem_put(gq_cache_mem_t *self, const gq_cache_key_t *key, gq_cache_val_t *val,
                      uint64_t expires_us);
void gq_cache_mem_clear(gq_cache_mem_t *self);
void gq_cache_mem_stats(const gq_cache_mem_t *self, gq_tier_stats_t *out);

/* The value under key without touching recency or stats (tests). */
gq_cache_val_t *gq_cache_mem_peek(gq_cache_mem_t *self, const gq_cache_key_t *key);

/* Bytes one entry of val is charged. */
size_t gq_cache_mem_charge(const gq_cache_val_t *val);

#endif
