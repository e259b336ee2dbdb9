/* Device buffer pool shared by the GPU backends: idle buffers by size class, released least
 * recently returned first when their bytes pass the cap. Each idle buffer is on two lists: its
 * class's (newest first, so a get reuses the warmest buffer) and the pool's LRU (for the cap). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "dev_pool.h"

#define S_MIN_CLASS 256u
#define S_NCLASSES 256 /* 4 per power of two from 2^8 to 2^63 */

typedef struct s_idle {
    void *handle;
    size_t bytes;
    int cls;
    struct s_idle *cprev, *cnext; /* class list */
    struct s_idle *lprev, *lnext; /* LRU: head newest, tail oldest */
} s_idle_t;

struct gq_dev_pool {
    gq_dev_pool_make_fn make;
    gq_dev_pool_release_fn release;
    void *ctx;
    size_t cap;
    pthread_mutex_t mu;
    s_idle_t *cls[S_NCLASSES];
    s_idle_t *lru_head, *lru_tail;
    s_idle_t *spare; /* recycled list records: no malloc per put in steady state */
    gq_dev_pool_stats_t st;
};

/* Class index and size: 2^k, 1.25 x 2^k, 1.5 x 2^k, 1.75 x 2^k ... */
static int s_class_of(size_t nbytes, size_t *size)
{
    if (nbytes <= S_MIN_CLASS) {
        *size = S_MIN_CLASS;
        return 0;
    }
    int k = 63 - __builtin_clzll((unsigned long long)(nbytes - 1));
    size_t base = (size_t)1 << k, step = base / 4;
    size_t j = (nbytes - base + step - 1) / step; /* 1..4 */
    *size = base + j * step;
    return (k - 8) * 4 + (int)j;
}

size_t gq_dev_pool_class(size_t nbytes)
{
    size_t size;
    s_class_of(nbytes, &size);
    return size;
}

gq_dev_pool_t *gq_dev_pool_new(gq_dev_pool_make_fn make, gq_dev_pool_release_fn release, void *ctx,
                               size_t idle_cap)
{
    if (!make || !release)
        return NULL;
    gq_dev_pool_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->make = make;
    self->release = release;
    self->ctx = ctx;
    self->cap = idle_cap;
    pthread_mutex_init(&self->mu, NULL);
    return self;
}

static void s_unlink(gq_dev_pool_t *self, s_idle_t *e)
{
    if (e->cprev)
        e->cprev->cnext = e->cnext;
    else
        self->cls[e->cls] = e->cnext;
    if (e->cnext)
        e->cnext->cprev = e->cprev;
    if (e->lprev)
        e->lprev->lnext = e->lnext;
    else
        self->lru_head = e->lnext;
    if (e->lnext)
        e->lnext->lprev = e->lprev;
    else
        self->lru_tail = e->lprev;
    self->st.idle_bytes -= e->bytes;
    self->st.idle_count--;
}

/* Takes every idle buffer off the lists (under the lock) and returns them as a chain
 * through lnext, to be released outside the lock. */
static s_idle_t *s_take_all(gq_dev_pool_t *self)
{
    s_idle_t *all = self->lru_head;
    memset(self->cls, 0, sizeof self->cls);
    self->lru_head = self->lru_tail = NULL;
    self->st.idle_bytes = 0;
    self->st.idle_count = 0;
    return all;
}

/* Releases a chain taken by s_take_all; the records go back to the spare list. */
static void s_release_chain(gq_dev_pool_t *self, s_idle_t *e)
{
    uint64_t n = 0;
    s_idle_t *first = e, *last = NULL;
    for (; e; last = e, e = e->lnext, n++)
        self->release(self->ctx, e->handle);
    if (!first)
        return;
    pthread_mutex_lock(&self->mu);
    self->st.released += n;
    last->lnext = self->spare;
    self->spare = first;
    pthread_mutex_unlock(&self->mu);
}

void gq_dev_pool_destroy(gq_dev_pool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gq_dev_pool_t *self = *self_p;
    pthread_mutex_lock(&self->mu);
    s_idle_t *all = s_take_all(self);
    pthread_mutex_unlock(&self->mu);
    s_release_chain(self, all);
    for (s_idle_t *e = self->spare, *next; e; e = next) {
        next = e->lnext;
        free(e);
    }
    pthread_mutex_destroy(&self->mu);
    free(self);
    *self_p = NULL;
}

int gq_dev_pool_get(gq_dev_pool_t *self, size_t nbytes, void **handle)
{
    size_t size;
    int c = s_class_of(nbytes, &size);
    pthread_mutex_lock(&self->mu);
    s_idle_t *e = self->cls[c];
    if (e) {
        s_unlink(self, e);
        *handle = e->handle;
        e->lnext = self->spare;
        self->spare = e;
        self->st.hits++;
        self->st.live_bytes += size;
        pthread_mutex_unlock(&self->mu);
        return 0;
    }
    self->st.misses++;
    pthread_mutex_unlock(&self->mu);
    int rc = self->make(self->ctx, size, handle);
    if (rc) {
        pthread_mutex_lock(&self->mu);
        int any = self->st.idle_count > 0;
        s_idle_t *all = any ? s_take_all(self) : NULL;
        if (any)
            self->st.retries++;
        pthread_mutex_unlock(&self->mu);
        if (!any)
            return rc;
        s_release_chain(self, all);
        if ((rc = self->make(self->ctx, size, handle)))
            return rc;
    }
    pthread_mutex_lock(&self->mu);
    self->st.live_bytes += size;
    pthread_mutex_unlock(&self->mu);
    return 0;
}

void gq_dev_pool_put(gq_dev_pool_t *self, void *handle, size_t nbytes)
{
    if (!handle)
        return;
    size_t size;
    int c = s_class_of(nbytes, &size);
    s_idle_t *evict = NULL;
    pthread_mutex_lock(&self->mu);
    self->st.live_bytes -= size < self->st.live_bytes ? size : self->st.live_bytes;
    s_idle_t *e = self->spare;
    if (e)
        self->spare = e->lnext;
    else
        e = malloc(sizeof *e);
    if (!e || size > self->cap) {
        /* Too big to keep (or no memory for the record): release it now. */
        if (e) {
            e->lnext = self->spare;
            self->spare = e;
        }
        self->st.released++;
        pthread_mutex_unlock(&self->mu);
        self->release(self->ctx, handle);
        return;
    }
    memset(e, 0, sizeof *e);
    e->handle = handle;
    e->bytes = size;
    e->cls = c;
    e->cnext = self->cls[c];
    if (e->cnext)
        e->cnext->cprev = e;
    self->cls[c] = e;
    e->lnext = self->lru_head;
    if (e->lnext)
        e->lnext->lprev = e;
    else
        self->lru_tail = e;
    self->lru_head = e;
    self->st.idle_bytes += size;
    self->st.idle_count++;
    /* Over the cap: the oldest idle buffers go, collected into a chain through lnext. */
    while (self->st.idle_bytes > self->cap && self->lru_tail) {
        s_idle_t *old = self->lru_tail;
        s_unlink(self, old);
        old->lnext = evict;
        evict = old;
    }
    pthread_mutex_unlock(&self->mu);
    s_release_chain(self, evict);
}

void gq_dev_pool_trim(gq_dev_pool_t *self)
{
    pthread_mutex_lock(&self->mu);
    s_idle_t *all = s_take_all(self);
    pthread_mutex_unlock(&self->mu);
    s_release_chain(self, all);
}

void gq_dev_pool_stats(gq_dev_pool_t *self, gq_dev_pool_stats_t *out)
{
    pthread_mutex_lock(&self->mu);
    *out = self->st;
    pthread_mutex_unlock(&self->mu);
}
