/* The tier stack: memory -> disk -> Redis. Lookups go down the synchronous tiers and, on a
 * miss, start an asynchronous Redis GET; a hit in a lower tier is copied into memory. Stores
 * go into memory at once and, through a writer thread, to the disk and Redis tiers, encoded
 * once for both: LZ4 of a large value and an LMDB write would otherwise hold up every other
 * message of the broker's loop. */
#include "cache_tiers.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "util.h"

/* Values waiting for the writer thread beyond this many raw bytes are not written to the
 * lower tiers (counted in write_dropped): a cache may forget, the loop must not wait. */
#define S_WRITE_BACKLOG ((size_t)256 << 20)

typedef struct s_write {
    struct s_write *next;
    gq_cache_key_t key;
    gq_cache_val_t *val; /* a reference of its own */
    uint64_t ttl_ms;
} s_write_t;

struct gq_cache {
    gq_cache_config_t cfg;
    gq_cache_mem_t *mem;
    gq_cache_lmdb_t *lmdb;
    gq_cache_redis_t *redis;
    gq_cache_stats_t c; /* counters and latency histograms; tier stats come from the tiers */
    void (*drain_fn)(void *arg, const gq_cache_key_t *key, gq_cache_val_t *val, int tier);
    void *drain_arg;
    /* The writer thread (when there is a disk or Redis tier). wmu guards the queue, the
     * encoder counters and the LMDB tier, which both threads use. */
    pthread_t writer;
    int writer_started;
    pthread_mutex_t wmu;
    pthread_cond_t wcv, idle_cv;
    s_write_t *whead, *wtail;
    size_t wbytes; /* raw bytes queued */
    int writing;   /* the writer holds a value it took off the queue */
    int wstop;
    uint64_t enc_raw, enc_stored, enc_shuffled, write_dropped;
};

void gq_cache_config_init(gq_cache_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->enabled = 1;
    cfg->mem_bytes = (size_t)256 << 20;
    cfg->mem_policy = GQ_EVICT_SLRU;
    cfg->lmdb_bytes = (size_t)1 << 30;
    cfg->redis_timeout_ms = 200;
    cfg->max_value = (size_t)64 << 20;
    cfg->shuffle = GQ_SHUFFLE_AUTO;
}

static uint64_t s_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Encodes w's value once and writes it to the disk and Redis tiers. */
static void s_write_one(gq_cache_t *self, s_write_t *w)
{
    uint8_t *enc;
    size_t len, raw = gq_cache_val_raw_size(w->val);
    unsigned flags;
    if (gq_cache_encode(w->val, &w->key, self->cfg.shuffle, &enc, &len, &flags) != GQ_OK) {
        GQ_WARN("cache: out of memory encoding a value of %zu bytes", raw);
        return;
    }
    uint64_t expires = w->ttl_ms ? s_unix_ms() + w->ttl_ms : 0;
    pthread_mutex_lock(&self->wmu);
    self->enc_raw += raw;
    self->enc_stored += len;
    self->enc_shuffled += (flags & GQ_CACHE_F_SHUFFLE) != 0;
    if (self->lmdb)
        gq_cache_lmdb_put(self->lmdb, &w->key, enc, len, raw, expires);
    pthread_mutex_unlock(&self->wmu);
    if (self->redis)
        gq_cache_redis_put(self->redis, &w->key, enc, len, raw, w->ttl_ms);
    else
        free(enc);
}

static void *s_writer_main(void *arg)
{
    gq_cache_t *self = arg;
    pthread_mutex_lock(&self->wmu);
    for (;;) {
        while (!self->whead && !self->wstop) {
            self->writing = 0;
            pthread_cond_broadcast(&self->idle_cv);
            pthread_cond_wait(&self->wcv, &self->wmu);
        }
        s_write_t *w = self->whead;
        if (!w)
            break; /* stopping, and nothing left */
        if (!(self->whead = w->next))
            self->wtail = NULL;
        self->wbytes -= gq_cache_val_raw_size(w->val);
        self->writing = 1;
        pthread_mutex_unlock(&self->wmu);
        s_write_one(self, w);
        gq_cache_val_unref(&w->val);
        free(w);
        pthread_mutex_lock(&self->wmu);
    }
    self->writing = 0;
    pthread_cond_broadcast(&self->idle_cv);
    pthread_mutex_unlock(&self->wmu);
    return NULL;
}

gq_cache_t *gq_cache_new(const gq_cache_config_t *cfg, char *err, size_t errlen)
{
    if (!cfg || !cfg->enabled || (!cfg->mem_bytes && !cfg->lmdb_path && !cfg->redis))
        return NULL;
    gq_cache_t *self = calloc(1, sizeof *self);
    if (!self) {
        gq_errf(err, errlen, "cache: out of memory");
        return NULL;
    }
    self->cfg = *cfg;
    pthread_mutex_init(&self->wmu, NULL);
    pthread_cond_init(&self->wcv, NULL);
    pthread_cond_init(&self->idle_cv, NULL);
    if (!self->cfg.max_value || self->cfg.max_value > GQ_CACHE_MAX_VALUE)
        self->cfg.max_value = GQ_CACHE_MAX_VALUE;
    self->cfg.lmdb_path = NULL; /* borrowed strings are not kept */
    self->cfg.redis = NULL;
    self->c.enabled = 1;
    if (cfg->mem_bytes && !(self->mem = gq_cache_mem_new(cfg->mem_bytes, cfg->mem_policy))) {
        gq_errf(err, errlen, "cache: out of memory for the memory tier");
        goto fail;
    }
    if (cfg->lmdb_path &&
        !(self->lmdb = gq_cache_lmdb_new(cfg->lmdb_path, cfg->lmdb_bytes, err, errlen)))
        goto fail;
    if (cfg->redis &&
        !(self->redis = gq_cache_redis_new(cfg->redis, cfg->redis_timeout_ms, err, errlen)))
        goto fail;
    if ((self->lmdb || self->redis) && pthread_create(&self->writer, NULL, s_writer_main, self)) {
        gq_errf(err, errlen, "cache: cannot start the writer thread");
        goto fail;
    }
    self->writer_started = self->lmdb || self->redis;
    return self;
fail:
    gq_cache_destroy(&self);
    return NULL;
}

void gq_cache_destroy(gq_cache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gq_cache_t *self = *self_p;
    if (self->writer_started) { /* it writes what is queued, then ends */
        pthread_mutex_lock(&self->wmu);
        self->wstop = 1;
        pthread_cond_signal(&self->wcv);
        pthread_mutex_unlock(&self->wmu);
        pthread_join(self->writer, NULL);
    }
    pthread_mutex_destroy(&self->wmu);
    pthread_cond_destroy(&self->wcv);
    pthread_cond_destroy(&self->idle_cv);
    gq_cache_redis_destroy(&self->redis);
    gq_cache_lmdb_destroy(&self->lmdb);
    gq_cache_mem_destroy(&self->mem);
    free(self);
    *self_p = NULL;
}

static void s_lat(gq_cache_t *self, int tier, uint64_t us)
{
    self->c.tier[tier].lat[gq_cache_lat_bucket(us)]++;
    self->c.tier[tier].lat_sum_us += us;
}

static uint64_t s_expiry_us(gq_cache_t *self, uint64_t ttl_ms)
{
    if (!ttl_ms)
        ttl_ms = self->cfg.ttl_ms;
    return ttl_ms ? gq_now_us() + ttl_ms * 1000u : 0;
}

gq_lookup_t gq_cache_get(gq_cache_t *self, const gq_cache_key_t *key, gq_cache_val_t **val,
                         int *tier)
{
    *val = NULL;
    *tier = GQ_TIER_NONE;
    self->c.lookups++;
    uint64_t t0 = gq_now_us();
    if (self->mem) {
        *val = gq_cache_mem_get(self->mem, key, t0);
        uint64_t t1 = gq_now_us();
        s_lat(self, GQ_TIER_MEMORY, t1 - t0);
        t0 = t1;
        if (*val) {
            *tier = GQ_TIER_MEMORY;
            self->c.hits++;
            return GQ_CACHE_HIT;
        }
    }
    if (self->lmdb) {
        pthread_mutex_lock(&self->wmu);
        *val = gq_cache_lmdb_get(self->lmdb, key, s_unix_ms());
        pthread_mutex_unlock(&self->wmu);
        s_lat(self, GQ_TIER_DISK, gq_now_us() - t0);
        if (*val) {
            if (self->mem)
                gq_cache_mem_put(self->mem, key, *val, s_expiry_us(self, 0));
            *tier = GQ_TIER_DISK;
            self->c.hits++;
            return GQ_CACHE_HIT;
        }
    }
    if (!self->redis)
        self->c.misses++;
    return GQ_CACHE_MISS;
}

gq_lookup_t gq_cache_get_async(gq_cache_t *self, const gq_cache_key_t *key)
{
    if (self->redis && gq_cache_redis_get(self->redis, key) == 0)
        return GQ_CACHE_PENDING;
    if (self->redis)
        self->c.misses++;
    return GQ_CACHE_MISS;
}

void gq_cache_put(gq_cache_t *self, const gq_cache_key_t *key, gq_cache_val_t *val, uint64_t ttl_ms)
{
    size_t raw = gq_cache_val_raw_size(val);
    if (raw > self->cfg.max_value) {
        self->c.too_big++;
        return;
    }
    if (!ttl_ms)
        ttl_ms = self->cfg.ttl_ms;
    if (self->mem)
        gq_cache_mem_put(self->mem, key, val, ttl_ms ? gq_now_us() + ttl_ms * 1000u : 0);
    if (!self->lmdb && !self->redis)
        return;
    s_write_t *w = malloc(sizeof *w);
    pthread_mutex_lock(&self->wmu);
    if (!w || self->wbytes + raw > S_WRITE_BACKLOG) {
        self->write_dropped++;
        pthread_mutex_unlock(&self->wmu);
        free(w);
        return;
    }
    *w = (s_write_t){NULL, *key, gq_cache_val_ref(val), ttl_ms};
    if (self->wtail)
        self->wtail->next = w;
    else
        self->whead = w;
    self->wtail = w;
    self->wbytes += raw;
    pthread_cond_signal(&self->wcv);
    pthread_mutex_unlock(&self->wmu);
}

void gq_cache_flush(gq_cache_t *self)
{
    pthread_mutex_lock(&self->wmu);
    while (self->writer_started && (self->whead || self->writing))
        pthread_cond_wait(&self->idle_cv, &self->wmu);
    pthread_mutex_unlock(&self->wmu);
}

int gq_cache_fd(const gq_cache_t *self)
{
    return self && self->redis ? gq_cache_redis_fd(self->redis) : -1;
}

static void s_on_redis(void *arg, const gq_cache_key_t *key, gq_cache_val_t *val,
                       uint64_t waited_us)
{
    gq_cache_t *self = arg;
    s_lat(self, GQ_TIER_REDIS, waited_us);
    if (val) {
        self->c.hits++;
        if (self->mem)
            gq_cache_mem_put(self->mem, key, val, s_expiry_us(self, 0));
    } else {
        self->c.misses++;
    }
    self->drain_fn(self->drain_arg, key, val, val ? GQ_TIER_REDIS : GQ_TIER_NONE);
}

int gq_cache_drain(gq_cache_t *self,
                   void (*fn)(void *arg, const gq_cache_key_t *key, gq_cache_val_t *val, int tier),
                   void *arg)
{
    if (!self->redis)
        return 0;
    self->drain_fn = fn;
    self->drain_arg = arg;
    return gq_cache_redis_drain(self->redis, s_on_redis, self);
}

void gq_cache_clear(gq_cache_t *self)
{
    if (self->mem)
        gq_cache_mem_clear(self->mem);
    pthread_mutex_lock(&self->wmu); /* values not yet written are forgotten too */
    while (self->whead) {
        s_write_t *w = self->whead;
        self->whead = w->next;
        gq_cache_val_unref(&w->val);
        free(w);
    }
    self->wtail = NULL;
    self->wbytes = 0;
    if (self->lmdb && gq_cache_lmdb_clear(self->lmdb) != GQ_OK)
        GQ_WARN("cache: clearing the disk tier failed");
    pthread_mutex_unlock(&self->wmu);
    if (self->redis)
        gq_cache_redis_clear(self->redis);
}

gq_cache_stats_t *gq_cache_counters(gq_cache_t *self)
{
    return &self->c;
}

void gq_cache_stats(gq_cache_t *self, gq_cache_stats_t *out)
{
    *out = self->c;
    pthread_mutex_lock(&self->wmu);
    out->enc_raw = self->enc_raw;
    out->enc_stored = self->enc_stored;
    out->enc_shuffled = self->enc_shuffled;
    out->write_dropped = self->write_dropped;
    gq_tier_stats_t t;
    if (self->mem) {
        gq_cache_mem_stats(self->mem, &t);
        memcpy(t.lat, self->c.tier[GQ_TIER_MEMORY].lat, sizeof t.lat);
        t.lat_sum_us = self->c.tier[GQ_TIER_MEMORY].lat_sum_us;
        out->tier[GQ_TIER_MEMORY] = t;
    }
    if (self->lmdb) {
        gq_cache_lmdb_stats(self->lmdb, &t);
        memcpy(t.lat, self->c.tier[GQ_TIER_DISK].lat, sizeof t.lat);
        t.lat_sum_us = self->c.tier[GQ_TIER_DISK].lat_sum_us;
        out->tier[GQ_TIER_DISK] = t;
    }
    pthread_mutex_unlock(&self->wmu);
    if (self->redis) {
        gq_cache_redis_stats(self->redis, &t);
        memcpy(t.lat, self->c.tier[GQ_TIER_REDIS].lat, sizeof t.lat);
        t.lat_sum_us = self->c.tier[GQ_TIER_REDIS].lat_sum_us;
        out->tier[GQ_TIER_REDIS] = t;
    }
}

gq_cache_mem_t *gq_cache_mem_tier(gq_cache_t *self)
{
    return self->mem;
}

gq_cache_lmdb_t *gq_cache_lmdb_tier(gq_cache_t *self)
{
    return self->lmdb;
}
