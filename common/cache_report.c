/* Cache stats for people and machines: the wire form of an admin reply, and Prometheus
 * text exposition. */
#include "cache_report.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const int s_tiers[] = {GQ_TIER_MEMORY, GQ_TIER_DISK, GQ_TIER_REDIS};
#define S_NTIERS 3

void gq_cache_stats_to_wire(const gq_cache_stats_t *st, gq_cache_wire_t *w)
{
    memset(w, 0, sizeof *w);
    gq__wire__cache_stats__init(&w->cs);
    w->cs.enabled = st->enabled;
    for (int i = 0; i < S_NTIERS; i++) {
        const gq_tier_stats_t *t = &st->tier[s_tiers[i]];
        if (!t->enabled)
            continue;
        Gq__Wire__TierStats *o = &w->t[w->cs.n_tiers];
        gq__wire__tier_stats__init(o);
        o->tier = (Gq__Wire__CacheTier)s_tiers[i];
        o->enabled = 1;
        o->up = t->up;
        o->hits = t->hits;
        o->misses = t->misses;
        o->evictions = t->evictions;
        o->expired = t->expired;
        o->corrupt = t->corrupt;
        o->stores = t->stores;
        o->errors = t->errors;
        o->entries = t->entries;
        o->bytes_raw = t->bytes_raw;
        o->bytes_stored = t->bytes_stored;
        o->capacity = t->capacity;
        memcpy(w->lat[w->cs.n_tiers], t->lat, sizeof t->lat);
        o->latency = w->lat[w->cs.n_tiers];
        o->n_latency = GQ_CACHE_LAT_BUCKETS;
        o->latency_sum_us = t->lat_sum_us;
        w->tp[w->cs.n_tiers++] = o;
    }
    w->cs.tiers = w->tp;
    w->cs.lookups = st->lookups;
    w->cs.hits = st->hits;
    w->cs.misses = st->misses;
    w->cs.dedup_joined = st->dedup_joined;
    w->cs.uncacheable = st->uncacheable;
    w->cs.bypassed = st->bypassed;
    w->cs.refreshed = st->refreshed;
    w->cs.too_big = st->too_big;
    w->cs.encoded_raw = st->enc_raw;
    w->cs.encoded_stored = st->enc_stored;
    w->cs.encoded_shuffled = st->enc_shuffled;
}

/* Appends to buf at *off; stops quietly at the end of the buffer (the caller sized it). */
static void s_cat(char *buf, size_t len, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void s_cat(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
    if (*off >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *off, len - *off, fmt, ap);
    va_end(ap);
    if (n > 0)
        *off += (size_t)n < len - *off ? (size_t)n : len - *off - 1;
}

typedef struct {
    const char *name;
    const char *type;
    const char *help;
    size_t field; /* offset in gq_tier_stats_t */
} s_tier_metric_t;

#define S_F(f) offsetof(gq_tier_stats_t, f)

static const s_tier_metric_t s_tier_metrics[] = {
    {"gpuq_cache_hits_total", "counter", "Lookups answered by the tier.", S_F(hits)},
    {"gpuq_cache_misses_total", "counter", "Lookups the tier could not answer.", S_F(misses)},
    {"gpuq_cache_evictions_total", "counter", "Entries evicted to stay under the budget.",
     S_F(evictions)},
    {"gpuq_cache_expired_total", "counter", "Entries dropped at lookup because their TTL passed.",
     S_F(expired)},
    {"gpuq_cache_corrupt_total", "counter", "Entries that failed their checks, dropped.",
     S_F(corrupt)},
    {"gpuq_cache_stores_total", "counter", "Entries written.", S_F(stores)},
    {"gpuq_cache_errors_total", "counter", "Tier I/O errors and outages.", S_F(errors)},
    {"gpuq_cache_entries", "gauge", "Entries held.", S_F(entries)},
    {"gpuq_cache_bytes_raw", "gauge", "Raw bytes of the entries held.", S_F(bytes_raw)},
    {"gpuq_cache_bytes_stored", "gauge", "Bytes the entries take in the tier.", S_F(bytes_stored)},
    {"gpuq_cache_capacity_bytes", "gauge", "Byte budget of the tier (0: none).", S_F(capacity)},
};

size_t gq_cache_prom(const gq_cache_stats_t *st, char *buf, size_t len, size_t off)
{
    s_cat(buf, len, &off,
          "# HELP gpuq_cache_enabled Whether the broker has a result cache.\n"
          "# TYPE gpuq_cache_enabled gauge\ngpuq_cache_enabled %d\n",
          st->enabled);
    struct {
        const char *name, *help;
        uint64_t v;
    } top[] = {
        {"gpuq_cache_lookups_total", "Cache lookups at admission.", st->lookups},
        {"gpuq_cache_lookup_hits_total", "Lookups answered by some tier.", st->hits},
        {"gpuq_cache_lookup_misses_total", "Lookups no tier could answer.", st->misses},
        {"gpuq_cache_dedup_joined_total", "Jobs answered by an identical job in flight.",
         st->dedup_joined},
        {"gpuq_cache_uncacheable_total", "Jobs with a nondeterministic op.", st->uncacheable},
        {"gpuq_cache_bypassed_total", "Jobs with cache policy bypass.", st->bypassed},
        {"gpuq_cache_refreshed_total", "Jobs with cache policy refresh.", st->refreshed},
        {"gpuq_cache_too_big_total", "Results over the value size limit, not stored.", st->too_big},
        {"gpuq_cache_encoded_raw_bytes_total", "Bytes given to the value encoder.", st->enc_raw},
        {"gpuq_cache_encoded_stored_bytes_total", "Bytes the value encoder produced.",
         st->enc_stored},
        {"gpuq_cache_encoded_shuffled_total", "Values byte-shuffled before LZ4.", st->enc_shuffled},
        {"gpuq_cache_write_dropped_total",
         "Values not written to disk and Redis: the writer thread was 256 MiB behind.",
         st->write_dropped},
    };
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        s_cat(buf, len, &off, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", top[i].name,
              top[i].help, top[i].name, top[i].name, (unsigned long long)top[i].v);
    for (size_t m = 0; m < sizeof s_tier_metrics / sizeof s_tier_metrics[0]; m++) {
        const s_tier_metric_t *tm = &s_tier_metrics[m];
        s_cat(buf, len, &off, "# HELP %s %s\n# TYPE %s %s\n", tm->name, tm->help, tm->name,
              tm->type);
        for (int i = 0; i < S_NTIERS; i++) {
            const gq_tier_stats_t *t = &st->tier[s_tiers[i]];
            if (!t->enabled)
                continue;
            uint64_t v;
            memcpy(&v, (const char *)t + tm->field, sizeof v);
            s_cat(buf, len, &off, "%s{tier=\"%s\"} %llu\n", tm->name, gq_tier_name(s_tiers[i]),
                  (unsigned long long)v);
        }
    }
    s_cat(buf, len, &off,
          "# HELP gpuq_cache_up Whether the tier is reachable.\n# TYPE gpuq_cache_up gauge\n");
    for (int i = 0; i < S_NTIERS; i++)
        if (st->tier[s_tiers[i]].enabled)
            s_cat(buf, len, &off, "gpuq_cache_up{tier=\"%s\"} %d\n", gq_tier_name(s_tiers[i]),
                  st->tier[s_tiers[i]].up);
    s_cat(buf, len, &off,
          "# HELP gpuq_cache_lookup_seconds Lookup latency per tier.\n"
          "# TYPE gpuq_cache_lookup_seconds histogram\n");
    for (int i = 0; i < S_NTIERS; i++) {
        const gq_tier_stats_t *t = &st->tier[s_tiers[i]];
        if (!t->enabled)
            continue;
        const char *tn = gq_tier_name(s_tiers[i]);
        uint64_t cum = 0;
        for (int b = 0; b < GQ_CACHE_LAT_BUCKETS - 1; b++) {
            cum += t->lat[b];
            s_cat(buf, len, &off, "gpuq_cache_lookup_seconds_bucket{tier=\"%s\",le=\"%g\"} %llu\n",
                  tn, (double)((uint64_t)1 << b) * 1e-6, (unsigned long long)cum);
        }
        cum += t->lat[GQ_CACHE_LAT_BUCKETS - 1];
        s_cat(buf, len, &off,
              "gpuq_cache_lookup_seconds_bucket{tier=\"%s\",le=\"+Inf\"} %llu\n"
              "gpuq_cache_lookup_seconds_sum{tier=\"%s\"} %.6f\n"
              "gpuq_cache_lookup_seconds_count{tier=\"%s\"} %llu\n",
              tn, (unsigned long long)cum, tn, (double)t->lat_sum_us * 1e-6, tn,
              (unsigned long long)cum);
    }
    return off;
}
