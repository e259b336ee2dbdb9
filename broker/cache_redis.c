/* The Redis tier: encoded values under "gq:c1:<key hex>" with a TTL, shared by brokers.
 *
 * All Redis I/O runs on one thread of its own, so the broker's poll loop never waits on the
 * network: a GET is queued and its answer comes back through a pipe the loop polls; a SET
 * is queued and forgotten. Requests are pipelined in batches. When Redis is unreachable the
 * tier reports down, GETs are answered "miss" at once without queueing, SETs are dropped,
 * one warning is logged, and the thread reconnects with backoff (100 ms doubling to 2 s). */
#include "cache_tiers.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "util.h"

#define S_MAX_QUEUE 4096
#define S_BATCH 128
#define S_BACKOFF_MIN_MS 100
#define S_BACKOFF_MAX_MS 2000
#define S_PREFIX "gq:c1:"

typedef enum { S_GET, S_SET, S_DEL, S_CLEAR } s_op_t;

typedef struct s_req {
    s_op_t op;
    gq_cache_key_t key;
    uint8_t *enc;
    size_t len, raw;
    uint64_t ttl_ms;
    uint64_t t0_us;
    gq_cache_val_t *val; /* answer of a GET */
    struct s_req *next;
} s_req_t;

typedef struct {
    s_req_t *head, *tail;
    int len;
} s_queue_t;

struct gq_cache_redis {
    char host[256];
    int port;
    int timeout_ms;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    s_queue_t req, rep;
    int stop;
    atomic_int up;
    int pipe[2];
    gq_tier_stats_t st; /* under mu */
};

static void s_q_push(s_queue_t *q, s_req_t *r)
{
    r->next = NULL;
    if (q->tail)
        q->tail->next = r;
    else
        q->head = r;
    q->tail = r;
    q->len++;
}

static s_req_t *s_q_pop(s_queue_t *q)
{
    s_req_t *r = q->head;
    if (r) {
        q->head = r->next;
        if (!q->head)
            q->tail = NULL;
        q->len--;
        r->next = NULL;
    }
    return r;
}

static void s_req_free(s_req_t *r)
{
    free(r->enc);
    gq_cache_val_unref(&r->val);
    free(r);
}

static void s_keystr(const gq_cache_key_t *k, char *buf)
{
    char hex[33];
    snprintf(buf, 48, S_PREFIX "%s", gq_cache_key_hex(k, hex));
}

/* Hands a finished GET back to the loop (under mu). */
static void s_reply(gq_cache_redis_t *self, s_req_t *r)
{
    int was_empty = self->rep.len == 0;
    s_q_push(&self->rep, r);
    if (was_empty) {
        char c = 1;
        ssize_t w = write(self->pipe[1], &c, 1);
        (void)w;
    }
}

static int s_parse_addr(gq_cache_redis_t *self, const char *addr, char *err, size_t errlen)
{
    const char *a = addr;
    if (!strncmp(a, "tcp://", 6))
        a += 6;
    const char *colon = strrchr(a, ':');
    long long port = 6379;
    size_t hl = colon ? (size_t)(colon - a) : strlen(a);
    if ((colon && gq_parse_int(colon + 1, 1, 65535, &port)) || hl == 0 || hl >= sizeof self->host) {
        gq_errf(err, errlen, "cache redis: address '%s' is not host:port", addr);
        return -1;
    }
    memcpy(self->host, a, hl);
    self->host[hl] = 0;
    if (self->host[0] == '[' && hl > 2 && self->host[hl - 1] == ']') {
        memmove(self->host, self->host + 1, hl - 2);
        self->host[hl - 2] = 0;
    }
    self->port = (int)port;
    return 0;
}

static redisContext *s_connect(gq_cache_redis_t *self, char *why, size_t whylen)
{
    struct timeval tv = {self->timeout_ms / 1000, (self->timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(self->host, self->port, tv);
    if (!c || c->err) {
        gq_errf(why, whylen, "%s", c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    redisReply *r = redisCommand(c, "PING");
    if (!r || r->type == REDIS_REPLY_ERROR) {
        gq_errf(why, whylen, "PING: %s", r ? r->str : c->errstr);
        if (r)
            freeReplyObject(r);
        redisFree(c);
        return NULL;
    }
    freeReplyObject(r);
    return c;
}

static void s_count(gq_cache_redis_t *self, uint64_t *field)
{
    pthread_mutex_lock(&self->mu);
    (*field)++;
    pthread_mutex_unlock(&self->mu);
}

/* Answers a GET from its reply (decoding in this thread, off the loop). Returns a DEL to
 * queue when the entry is corrupt. */
static s_req_t *s_finish_get(gq_cache_redis_t *self, s_req_t *r, redisReply *rep)
{
    s_req_t *del = NULL;
    if (rep && rep->type == REDIS_REPLY_STRING) {
        char err[GQ_ERRLEN];
        if (gq_cache_decode((const uint8_t *)rep->str, rep->len, &r->key, 0, &r->val, err,
                            sizeof err) != GQ_OK) {
            GQ_WARN("cache: redis tier: dropping corrupt entry: %s", err);
            s_count(self, &self->st.corrupt);
            if ((del = calloc(1, sizeof *del))) {
                del->op = S_DEL;
                del->key = r->key;
            }
        }
    }
    pthread_mutex_lock(&self->mu);
    if (r->val)
        self->st.hits++;
    else
        self->st.misses++;
    s_reply(self, r);
    pthread_mutex_unlock(&self->mu);
    return del;
}

/* Deletes every key of ours: SCAN + UNLINK, in batches. */
static int s_clear(redisContext *c)
{
    char cursor[32] = "0";
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH " S_PREFIX "* COUNT 1000", cursor);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r)
                freeReplyObject(r);
            return -1;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str ? r->element[0]->str : "0");
        redisReply *keys = r->element[1];
        if (keys->elements) {
            const char **argv = calloc(keys->elements + 1, sizeof *argv);
            size_t *lens = calloc(keys->elements + 1, sizeof *lens);
            if (argv && lens) {
                argv[0] = "UNLINK";
                lens[0] = 6;
                for (size_t i = 0; i < keys->elements; i++) {
                    argv[i + 1] = keys->element[i]->str;
                    lens[i + 1] = keys->element[i]->len;
                }
                redisReply *u = redisCommandArgv(c, (int)keys->elements + 1, argv, lens);
                if (u)
                    freeReplyObject(u);
            }
            free(argv);
            free(lens);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0"));
    return c->err ? -1 : 0;
}

/* Runs one batch on a live connection. Returns -1 when the connection failed: every request
 * of the batch is then answered (GETs as misses) or dropped. */
static int s_run_batch(gq_cache_redis_t *self, redisContext *c, s_req_t **batch, int n)
{
    int sent = 0, failed = 0;
    for (; sent < n; sent++) {
        s_req_t *r = batch[sent];
        char key[48];
        s_keystr(&r->key, key);
        int rc;
        if (r->op == S_GET)
            rc = redisAppendCommand(c, "GET %s", key);
        else if (r->op == S_SET && r->ttl_ms)
            rc = redisAppendCommand(c, "SET %s %b PX %llu", key, r->enc, r->len,
                                    (unsigned long long)r->ttl_ms);
        else if (r->op == S_SET)
            rc = redisAppendCommand(c, "SET %s %b", key, r->enc, r->len);
        else if (r->op == S_DEL)
            rc = redisAppendCommand(c, "UNLINK %s", key);
        else
            break; /* CLEAR runs alone, below */
        if (rc != REDIS_OK) {
            failed = 1;
            break;
        }
    }
    s_req_t *dels[S_BATCH];
    int ndel = 0;
    for (int i = 0; i < sent; i++) {
        s_req_t *r = batch[i];
        redisReply *rep = NULL;
        if (!failed && redisGetReply(c, (void **)&rep) != REDIS_OK)
            failed = 1;
        if (r->op == S_GET) {
            s_req_t *del = s_finish_get(self, r, failed ? NULL : rep);
            if (del && ndel < S_BATCH)
                dels[ndel++] = del;
            else if (del)
                s_req_free(del);
        } else {
            if (r->op == S_SET) {
                pthread_mutex_lock(&self->mu);
                if (!failed && rep && rep->type != REDIS_REPLY_ERROR) {
                    self->st.stores++;
                    self->st.bytes_raw += r->raw;
                    self->st.bytes_stored += r->len;
                } else {
                    self->st.errors++;
                }
                pthread_mutex_unlock(&self->mu);
            }
            s_req_free(r);
        }
        if (rep)
            freeReplyObject(rep);
    }
    for (int i = sent; i < n; i++) {
        s_req_t *r = batch[i];
        if (r->op == S_CLEAR && !failed) {
            if (s_clear(c))
                failed = 1;
            s_req_free(r);
        } else if (r->op == S_GET) {
            s_req_t *del = s_finish_get(self, r, NULL);
            if (del)
                s_req_free(del);
        } else {
            s_req_free(r);
        }
    }
    if (!failed && ndel) {
        pthread_mutex_lock(&self->mu);
        for (int i = 0; i < ndel; i++)
            s_q_push(&self->req, dels[i]);
        pthread_mutex_unlock(&self->mu);
    } else {
        for (int i = 0; i < ndel; i++)
            s_req_free(dels[i]);
    }
    return failed ? -1 : 0;
}

/* Answers every queued request while the tier is down (under mu). */
static void s_flush_down(gq_cache_redis_t *self)
{
    s_req_t *r;
    while ((r = s_q_pop(&self->req))) {
        if (r->op == S_GET) {
            self->st.misses++;
            s_reply(self, r);
        } else {
            s_req_free(r);
        }
    }
}

static void s_wait_ms(gq_cache_redis_t *self, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&self->mu);
    if (!self->stop)
        pthread_cond_timedwait(&self->cv, &self->mu, &ts);
    pthread_mutex_unlock(&self->mu);
}

static void *s_thread(void *arg)
{
    gq_cache_redis_t *self = arg;
    redisContext *c = NULL;
    int backoff = S_BACKOFF_MIN_MS, warned = 0;
    for (;;) {
        if (!c) {
            char why[256];
            c = s_connect(self, why, sizeof why);
            if (!c) {
                atomic_store(&self->up, 0);
                pthread_mutex_lock(&self->mu);
                s_flush_down(self);
                self->st.errors += !warned;
                int stop = self->stop;
                pthread_mutex_unlock(&self->mu);
                if (stop)
                    break;
                if (!warned)
                    GQ_WARN("cache: redis %s:%d unreachable (%s); serving from the other tiers, "
                            "retrying with backoff",
                            self->host, self->port, why);
                warned = 1;
                s_wait_ms(self, backoff);
                backoff = backoff * 2 > S_BACKOFF_MAX_MS ? S_BACKOFF_MAX_MS : backoff * 2;
                continue;
            }
            if (warned)
                GQ_WARN("cache: redis %s:%d reachable again", self->host, self->port);
            else
                GQ_INFO("cache: redis tier %s:%d connected", self->host, self->port);
            warned = 0;
            backoff = S_BACKOFF_MIN_MS;
            atomic_store(&self->up, 1);
        }
        s_req_t *batch[S_BATCH];
        int n = 0;
        pthread_mutex_lock(&self->mu);
        while (!self->stop && !self->req.len)
            pthread_cond_wait(&self->cv, &self->mu);
        if (self->stop && !self->req.len) {
            pthread_mutex_unlock(&self->mu);
            break;
        }
        while (n < S_BATCH && self->req.head) {
            batch[n++] = s_q_pop(&self->req);
            if (batch[n - 1]->op == S_CLEAR)
                break;
        }
        pthread_mutex_unlock(&self->mu);
        if (s_run_batch(self, c, batch, n)) {
            GQ_WARN("cache: redis %s:%d: connection lost (%s); serving from the other tiers",
                    self->host, self->port, c->errstr[0] ? c->errstr : "bad reply");
            warned = 1;
            redisFree(c);
            c = NULL;
            atomic_store(&self->up, 0);
            pthread_mutex_lock(&self->mu);
            self->st.errors++;
            s_flush_down(self);
            pthread_mutex_unlock(&self->mu);
        }
    }
    if (c)
        redisFree(c);
    atomic_store(&self->up, 0);
    return NULL;
}

gq_cache_redis_t *gq_cache_redis_new(const char *addr, int timeout_ms, char *err, size_t errlen)
{
    gq_cache_redis_t *self = calloc(1, sizeof *self);
    if (!self) {
        gq_errf(err, errlen, "cache redis: out of memory");
        return NULL;
    }
    self->pipe[0] = self->pipe[1] = -1;
    pthread_mutex_init(&self->mu, NULL);
    pthread_cond_init(&self->cv, NULL);
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : 200;
    self->st.enabled = 1;
    /* Up until the first connection attempt says otherwise: GETs made meanwhile wait for
     * it (at most timeout_ms) rather than miss. */
    atomic_init(&self->up, 1);
    if (s_parse_addr(self, addr, err, errlen))
        goto fail;
    if (pipe2(self->pipe, O_CLOEXEC | O_NONBLOCK)) {
        gq_errf(err, errlen, "cache redis: pipe: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&self->thread, NULL, s_thread, self)) {
        gq_errf(err, errlen, "cache redis: cannot start the I/O thread");
        goto fail;
    }
    self->started = 1;
    return self;
fail:
    gq_cache_redis_destroy(&self);
    return NULL;
}

void gq_cache_redis_destroy(gq_cache_redis_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gq_cache_redis_t *self = *self_p;
    if (self->started) {
        pthread_mutex_lock(&self->mu);
        self->stop = 1;
        pthread_cond_broadcast(&self->cv);
        pthread_mutex_unlock(&self->mu);
        pthread_join(self->thread, NULL);
    }
    s_req_t *r;
    while ((r = s_q_pop(&self->req)))
        s_req_free(r);
    while ((r = s_q_pop(&self->rep)))
        s_req_free(r);
    for (int i = 0; i < 2; i++)
        if (self->pipe[i] >= 0)
            close(self->pipe[i]);
    pthread_mutex_destroy(&self->mu);
    pthread_cond_destroy(&self->cv);
    free(self);
    *self_p = NULL;
}

static int s_enqueue(gq_cache_redis_t *self, s_req_t *r)
{
    pthread_mutex_lock(&self->mu);
    if (self->req.len >= S_MAX_QUEUE) {
        self->st.errors++;
        pthread_mutex_unlock(&self->mu);
        return -1;
    }
    s_q_push(&self->req, r);
    pthread_cond_signal(&self->cv);
    pthread_mutex_unlock(&self->mu);
    return 0;
}

int gq_cache_redis_get(gq_cache_redis_t *self, const gq_cache_key_t *key)
{
    if (!atomic_load(&self->up)) {
        s_count(self, &self->st.misses);
        return -1;
    }
    s_req_t *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    r->op = S_GET;
    r->key = *key;
    r->t0_us = gq_now_us();
    if (s_enqueue(self, r)) {
        free(r);
        s_count(self, &self->st.misses);
        return -1;
    }
    return 0;
}

void gq_cache_redis_put(gq_cache_redis_t *self, const gq_cache_key_t *key, uint8_t *enc, size_t len,
                        size_t raw, uint64_t ttl_ms)
{
    s_req_t *r = atomic_load(&self->up) ? calloc(1, sizeof *r) : NULL;
    if (!r) {
        free(enc);
        return;
    }
    r->op = S_SET;
    r->key = *key;
    r->enc = enc;
    r->len = len;
    r->raw = raw;
    r->ttl_ms = ttl_ms;
    if (s_enqueue(self, r))
        s_req_free(r);
}

void gq_cache_redis_clear(gq_cache_redis_t *self)
{
    s_req_t *r = calloc(1, sizeof *r);
    if (r) {
        r->op = S_CLEAR;
        if (s_enqueue(self, r))
            free(r);
    }
}

int gq_cache_redis_fd(const gq_cache_redis_t *self)
{
    return self->pipe[0];
}

int gq_cache_redis_drain(gq_cache_redis_t *self,
                         void (*fn)(void *arg, const gq_cache_key_t *key, gq_cache_val_t *val,
                                    uint64_t waited_us),
                         void *arg)
{
    char buf[64];
    while (read(self->pipe[0], buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&self->mu);
    s_req_t *list = self->rep.head;
    self->rep.head = self->rep.tail = NULL;
    self->rep.len = 0;
    pthread_mutex_unlock(&self->mu);
    int n = 0;
    uint64_t now = gq_now_us();
    while (list) {
        s_req_t *r = list;
        list = r->next;
        gq_cache_val_t *v = r->val;
        r->val = NULL;
        fn(arg, &r->key, v, now - r->t0_us);
        s_req_free(r);
        n++;
    }
    return n;
}

void gq_cache_redis_stats(gq_cache_redis_t *self, gq_tier_stats_t *out)
{
    pthread_mutex_lock(&self->mu);
    *out = self->st;
    pthread_mutex_unlock(&self->mu);
    out->up = atomic_load(&self->up);
}
