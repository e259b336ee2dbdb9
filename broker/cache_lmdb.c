/* The disk tier: encoded values in an LMDB environment, so they survive broker restarts.
 *
 *   "v"  key (16 bytes: lo, hi little-endian) -> u64 expires_unix_ms, u64 raw, encoded value
 *   "s"  key -> u64 sequence number (insertion or last second-chance refresh)
 *   "o"  sequence (8 bytes big-endian: cursor order = age) -> key
 *   "m"  "stats" -> u64 bytes stored, u64 bytes raw, u64 entries, u64 next sequence
 *
 * Eviction takes the lowest sequence first (oldest). A hit on an entry in the older half
 * gets a new sequence (second chance): close to LRU, with a write on at most every other
 * hit of an entry rather than every hit. Written with MDB_NOSYNC: a process crash loses
 * nothing (pages are in the OS cache), a machine crash may lose recent entries but leaves a
 * consistent database; a cache needs no more. */
#include "cache_tiers.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "util.h"

#define S_VHEAD 16

struct gq_cache_lmdb {
    MDB_env *env;
    MDB_dbi v, s, o, m;
    size_t cap;
    uint64_t bytes, raw, entries, next_seq;
    gq_tier_stats_t st;
    char path[512];
};

static void s_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t s_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void s_put64be(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * (7 - i)));
}

static void s_keybuf(uint8_t *b, const gq_cache_key_t *k)
{
    s_put64(b, k->lo);
    s_put64(b + 8, k->hi);
}

static int s_save_meta(gq_cache_lmdb_t *self, MDB_txn *txn)
{
    uint8_t b[32];
    s_put64(b, self->bytes);
    s_put64(b + 8, self->raw);
    s_put64(b + 16, self->entries);
    s_put64(b + 24, self->next_seq);
    MDB_val k = {5, "stats"}, d = {sizeof b, b};
    return mdb_put(txn, self->m, &k, &d, 0);
}

static void s_load_meta(gq_cache_lmdb_t *self, MDB_txn *txn)
{
    MDB_val k = {5, "stats"}, d;
    if (mdb_get(txn, self->m, &k, &d) == 0 && d.mv_size == 32) {
        const uint8_t *b = d.mv_data;
        self->bytes = s_get64(b);
        self->raw = s_get64(b + 8);
        self->entries = s_get64(b + 16);
        self->next_seq = s_get64(b + 24);
    }
    if (!self->next_seq)
        self->next_seq = 1;
}

gq_cache_lmdb_t *gq_cache_lmdb_new(const char *path, size_t cap, char *err, size_t errlen)
{
    gq_cache_lmdb_t *self = calloc(1, sizeof *self);
    MDB_txn *txn = NULL;
    int rc = 0;
    if (!self) {
        gq_errf(err, errlen, "cache lmdb: out of memory");
        return NULL;
    }
    snprintf(self->path, sizeof self->path, "%s", path);
    self->cap = cap ? cap : (size_t)1 << 30;
    if (mkdir(path, 0700) && errno != EEXIST) {
        gq_errf(err, errlen, "cache lmdb: cannot create directory %s: %s", path, strerror(errno));
        goto fail;
    }
    /* Room for the B-tree, partly filled overflow pages and pages freed but not yet
     * reusable, above the cap on value bytes. */
    size_t mapsize = self->cap * 2 + ((size_t)64 << 20);
    const char *what = "mdb_env_create";
    if ((rc = mdb_env_create(&self->env)) ||
        (what = "mdb_env_set_mapsize", rc = mdb_env_set_mapsize(self->env, mapsize)) ||
        (what = "mdb_env_set_maxdbs", rc = mdb_env_set_maxdbs(self->env, 4)) ||
        (what = "mdb_env_open",
         rc = mdb_env_open(self->env, path, MDB_NOSYNC | MDB_NOMETASYNC | MDB_NOTLS, 0600))) {
        gq_errf(err, errlen, "cache lmdb: %s %s: %s", what, path, mdb_strerror(rc));
        goto fail;
    }
    int dead = 0;
    mdb_reader_check(self->env, &dead); /* slots of a broker that was killed */
    if ((rc = mdb_txn_begin(self->env, NULL, 0, &txn)) ||
        (rc = mdb_dbi_open(txn, "v", MDB_CREATE, &self->v)) ||
        (rc = mdb_dbi_open(txn, "s", MDB_CREATE, &self->s)) ||
        (rc = mdb_dbi_open(txn, "o", MDB_CREATE, &self->o)) ||
        (rc = mdb_dbi_open(txn, "m", MDB_CREATE, &self->m))) {
        gq_errf(err, errlen, "cache lmdb: opening databases in %s: %s", path, mdb_strerror(rc));
        goto fail;
    }
    s_load_meta(self, txn);
    if ((rc = mdb_txn_commit(txn))) {
        txn = NULL;
        gq_errf(err, errlen, "cache lmdb: commit in %s: %s", path, mdb_strerror(rc));
        goto fail;
    }
    self->st.enabled = 1;
    self->st.up = 1;
    self->st.capacity = self->cap;
    GQ_INFO("cache: disk tier %s: %llu entries, %llu bytes (cap %zu)", path,
            (unsigned long long)self->entries, (unsigned long long)self->bytes, self->cap);
    return self;
fail:
    if (txn)
        mdb_txn_abort(txn);
    gq_cache_lmdb_destroy(&self);
    return NULL;
}

void gq_cache_lmdb_destroy(gq_cache_lmdb_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gq_cache_lmdb_t *self = *self_p;
    if (self->env) {
        mdb_env_sync(self->env, 1);
        mdb_env_close(self->env);
    }
    free(self);
    *self_p = NULL;
}

/* Deletes key's records inside txn and updates the totals. */
static int s_del(gq_cache_lmdb_t *self, MDB_txn *txn, const uint8_t *kb)
{
    MDB_val k = {16, (void *)kb}, d;
    int rc = mdb_get(txn, self->v, &k, &d);
    if (rc)
        return rc;
    size_t stored = d.mv_size >= S_VHEAD ? d.mv_size - S_VHEAD : 0;
    uint64_t raw = d.mv_size >= S_VHEAD ? s_get64((const uint8_t *)d.mv_data + 8) : 0;
    if ((rc = mdb_del(txn, self->v, &k, NULL)))
        return rc;
    MDB_val sd;
    if (mdb_get(txn, self->s, &k, &sd) == 0 && sd.mv_size == 8) {
        uint8_t ob[8];
        s_put64be(ob, s_get64(sd.mv_data));
        MDB_val ok = {8, ob};
        mdb_del(txn, self->o, &ok, NULL);
        mdb_del(txn, self->s, &k, NULL);
    }
    self->bytes -= stored <= self->bytes ? stored : self->bytes;
    self->raw -= raw <= self->raw ? raw : self->raw;
    if (self->entries)
        self->entries--;
    return 0;
}

/* Deletes one entry in its own transaction (expired or corrupt). */
static void s_del_one(gq_cache_lmdb_t *self, const uint8_t *kb)
{
    MDB_txn *txn;
    if (mdb_txn_begin(self->env, NULL, 0, &txn))
        return;
    if (s_del(self, txn, kb) == 0 && s_save_meta(self, txn) == 0)
        mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
}

/* Gives key a new sequence number (the second chance of a hit). */
static void s_touch(gq_cache_lmdb_t *self, const uint8_t *kb, uint64_t old_seq)
{
    MDB_txn *txn;
    if (mdb_txn_begin(self->env, NULL, 0, &txn))
        return;
    uint8_t ob[8], nb[8], sb[8];
    s_put64be(ob, old_seq);
    s_put64be(nb, self->next_seq);
    s_put64(sb, self->next_seq);
    MDB_val ok = {8, ob}, nk = {8, nb}, k = {16, (void *)kb}, kd = {16, (void *)kb}, sd = {8, sb};
    mdb_del(txn, self->o, &ok, NULL);
    if (mdb_put(txn, self->o, &nk, &kd, 0) || mdb_put(txn, self->s, &k, &sd, 0)) {
        mdb_txn_abort(txn);
        return;
    }
    self->next_seq++;
    if (s_save_meta(self, txn))
        mdb_txn_abort(txn);
    else
        mdb_txn_commit(txn);
}

gq_cache_val_t *gq_cache_lmdb_get(gq_cache_lmdb_t *self, const gq_cache_key_t *key,
                                  uint64_t now_unix_ms)
{
    uint8_t kb[16];
    s_keybuf(kb, key);
    MDB_txn *txn;
    if (mdb_txn_begin(self->env, NULL, MDB_RDONLY, &txn)) {
        self->st.errors++;
        self->st.misses++;
        return NULL;
    }
    MDB_val k = {16, kb}, d, sd;
    gq_cache_val_t *val = NULL;
    int state = 0; /* 0 miss, 1 hit, 2 expired, 3 corrupt */
    uint64_t seq = 0;
    if (mdb_get(txn, self->v, &k, &d) == 0) {
        const uint8_t *p = d.mv_data;
        char err[GQ_ERRLEN];
        if (d.mv_size < S_VHEAD) {
            state = 3;
        } else if (s_get64(p) && now_unix_ms >= s_get64(p)) {
            state = 2;
        } else if (gq_cache_decode(p + S_VHEAD, d.mv_size - S_VHEAD, key, 0, &val, err,
                                   sizeof err) != GQ_OK) {
            GQ_WARN("cache: disk tier: dropping corrupt entry: %s", err);
            state = 3;
        } else {
            state = 1;
            if (mdb_get(txn, self->s, &k, &sd) == 0 && sd.mv_size == 8)
                seq = s_get64(sd.mv_data);
        }
    }
    mdb_txn_abort(txn);
    switch (state) {
    case 1:
        self->st.hits++;
        if (seq && seq + self->entries / 2 < self->next_seq)
            s_touch(self, kb, seq);
        return val;
    case 2:
        self->st.expired++;
        s_del_one(self, kb);
        break;
    case 3:
        self->st.corrupt++;
        s_del_one(self, kb);
        break;
    default:
        break;
    }
    self->st.misses++;
    return NULL;
}

/* Deletes the oldest entries until need more bytes fit under the cap. */
static int s_evict(gq_cache_lmdb_t *self, MDB_txn *txn, size_t need)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, self->o, &cur);
    if (rc)
        return rc;
    MDB_val ok, kd;
    while (self->bytes + need > self->cap && self->entries &&
           mdb_cursor_get(cur, &ok, &kd, MDB_FIRST) == 0) {
        uint8_t kb[16];
        if (kd.mv_size != 16) {
            mdb_cursor_del(cur, 0);
            continue;
        }
        memcpy(kb, kd.mv_data, 16);
        mdb_cursor_del(cur, 0);
        MDB_val k = {16, kb};
        mdb_del(txn, self->s, &k, NULL); /* its order record is gone already */
        if (s_del(self, txn, kb) == 0)
            self->st.evictions++;
    }
    mdb_cursor_close(cur);
    return 0;
}

static int s_put_txn(gq_cache_lmdb_t *self, const uint8_t *kb, const uint8_t *enc, size_t len,
                     size_t raw, uint64_t expires, size_t extra)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(self->env, NULL, 0, &txn);
    if (rc)
        return rc;
    MDB_val k = {16, (void *)kb}, d = {len + S_VHEAD, NULL};
    s_del(self, txn, kb);
    if ((rc = s_evict(self, txn, len + extra)))
        goto fail;
    if ((rc = mdb_put(txn, self->v, &k, &d, MDB_RESERVE)))
        goto fail;
    uint8_t *p = d.mv_data;
    s_put64(p, expires);
    s_put64(p + 8, raw);
    memcpy(p + S_VHEAD, enc, len);
    uint8_t ob[8], sb[8];
    s_put64be(ob, self->next_seq);
    s_put64(sb, self->next_seq);
    MDB_val ok = {8, ob}, kd = {16, (void *)kb}, sd = {8, sb};
    if ((rc = mdb_put(txn, self->o, &ok, &kd, 0)) || (rc = mdb_put(txn, self->s, &k, &sd, 0)))
        goto fail;
    self->next_seq++;
    self->bytes += len;
    self->raw += raw;
    self->entries++;
    if ((rc = s_save_meta(self, txn)))
        goto fail;
    return mdb_txn_commit(txn);
fail:
    mdb_txn_abort(txn);
    return rc;
}

gq_status gq_cache_lmdb_put(gq_cache_lmdb_t *self, const gq_cache_key_t *key, const uint8_t *enc,
                            size_t len, size_t raw, uint64_t expires_unix_ms)
{
    if (len > self->cap)
        return GQ_ETOOBIG;
    uint8_t kb[16];
    s_keybuf(kb, key);
    /* The totals are only written back by a commit: reload them when a transaction fails. */
    uint64_t b = self->bytes, r = self->raw, e = self->entries, s = self->next_seq;
    int rc = s_put_txn(self, kb, enc, len, raw, expires_unix_ms, 0);
    if (rc == MDB_MAP_FULL) {
        self->bytes = b, self->raw = r, self->entries = e, self->next_seq = s;
        rc = s_put_txn(self, kb, enc, len, raw, expires_unix_ms, self->cap / 4);
    }
    if (rc) {
        self->bytes = b, self->raw = r, self->entries = e, self->next_seq = s;
        self->st.errors++;
        GQ_WARN("cache: disk tier %s: storing %zu bytes: %s", self->path, len, mdb_strerror(rc));
        return GQ_EIO;
    }
    self->st.stores++;
    return GQ_OK;
}

gq_status gq_cache_lmdb_clear(gq_cache_lmdb_t *self)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(self->env, NULL, 0, &txn);
    if (rc)
        return GQ_EIO;
    if ((rc = mdb_drop(txn, self->v, 0)) || (rc = mdb_drop(txn, self->s, 0)) ||
        (rc = mdb_drop(txn, self->o, 0))) {
        mdb_txn_abort(txn);
        return GQ_EIO;
    }
    uint64_t seq = self->next_seq;
    self->bytes = self->raw = self->entries = 0;
    if (s_save_meta(self, txn) || mdb_txn_commit(txn)) {
        self->next_seq = seq;
        return GQ_EIO;
    }
    return GQ_OK;
}

void gq_cache_lmdb_stats(const gq_cache_lmdb_t *self, gq_tier_stats_t *out)
{
    *out = self->st;
    out->entries = self->entries;
    out->bytes_stored = self->bytes;
    out->bytes_raw = self->raw;
}

gq_status gq_cache_lmdb_tamper(gq_cache_lmdb_t *self, const gq_cache_key_t *key,
                               void (*fn)(uint8_t *buf, size_t *len, void *arg), void *arg)
{
    uint8_t kb[16];
    s_keybuf(kb, key);
    MDB_txn *txn;
    if (mdb_txn_begin(self->env, NULL, 0, &txn))
        return GQ_EIO;
    MDB_val k = {16, kb}, d;
    gq_status st = GQ_EINVAL;
    if (mdb_get(txn, self->v, &k, &d) == 0 && d.mv_size >= S_VHEAD) {
        size_t len = d.mv_size - S_VHEAD;
        uint8_t *copy = malloc(d.mv_size);
        if (copy) {
            memcpy(copy, d.mv_data, d.mv_size);
            fn(copy + S_VHEAD, &len, arg);
            MDB_val nd = {len + S_VHEAD, copy};
            if (len <= d.mv_size - S_VHEAD && mdb_put(txn, self->v, &k, &nd, 0) == 0)
                st = GQ_OK;
            free(copy);
        }
    }
    if (st == GQ_OK && mdb_txn_commit(txn) == 0)
        return GQ_OK;
    if (st != GQ_OK)
        mdb_txn_abort(txn);
    return st == GQ_OK ? GQ_EIO : st;
}
