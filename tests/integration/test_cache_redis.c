/* The Redis tier with a real redis-server: two brokers share it (a job run through one is
 * served from Redis by the other), an entry corrupted in Redis is dropped and recomputed,
 * Redis SIGKILLed mid-test degrades to the other tiers with every job still answered, and
 * a restarted Redis is found again. Exits 77 when redis-server is not installed. */
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "test_cache_util.h"
#include "util.h"

#define S_REDIS "/usr/bin/redis-server"

static int s_port;
static char s_dir[] = "/tmp/gq-cache-redis-XXXXXX";

static pid_t s_redis_start(void)
{
    char port[16];
    snprintf(port, sizeof port, "%d", s_port);
    char *argv[] = {S_REDIS,        "--port", port,    "--bind", "127.0.0.1",  "--save",  "",
                    "--appendonly", "no",     "--dir", s_dir,    "--loglevel", "warning", NULL};
    pid_t pid = gqt_spawn(argv);
    for (int i = 0; i < 500; i++) {
        redisContext *c = redisConnect("127.0.0.1", s_port);
        int ok = c && !c->err;
        if (c)
            redisFree(c);
        if (ok)
            return pid;
        gqt_sleep_ms(10);
    }
    GQT_CHECK(0, "redis-server did not listen on %d", s_port);
    return -1;
}

static redisContext *s_redis(void)
{
    redisContext *c = redisConnect("127.0.0.1", s_port);
    GQT_CHECK(c && !c->err, "connect to redis");
    return c;
}

/* Number of gpuq keys in Redis. */
static long long s_nkeys(void)
{
    redisContext *c = s_redis();
    redisReply *r = redisCommand(c, "KEYS gq:c1:*");
    GQT_CHECK(r && r->type == REDIS_REPLY_ARRAY, "KEYS");
    long long n = (long long)r->elements;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

static void s_wait_keys(long long n)
{
    for (int i = 0; i < 500 && s_nkeys() < n; i++)
        gqt_sleep_ms(10);
    GQT_CHECK(s_nkeys() >= n, "Redis holds %lld keys, want %lld", s_nkeys(), n);
}

/* Flips one bit in the middle of every gpuq value in Redis. */
static void s_corrupt_all(void)
{
    redisContext *c = s_redis();
    redisReply *keys = redisCommand(c, "KEYS gq:c1:*");
    for (size_t i = 0; keys && i < keys->elements; i++) {
        redisReply *v = redisCommand(c, "GET %s", keys->element[i]->str);
        GQT_CHECK(v && v->type == REDIS_REPLY_STRING && v->len > 64, "GET");
        v->str[v->len / 2] ^= 0x04;
        redisReply *s = redisCommand(c, "SET %s %b", keys->element[i]->str, v->str, v->len);
        GQT_CHECK(s && s->type == REDIS_REPLY_STATUS, "SET");
        freeReplyObject(s);
        freeReplyObject(v);
    }
    freeReplyObject(keys);
    redisFree(c);
}

int main(void)
{
    if (access(S_REDIS, X_OK)) {
        printf("SKIP: %s not installed\n", S_REDIS);
        return 77;
    }
    GQT_CHECK(mkdtemp(s_dir), "mkdtemp");
    s_port = gqt_free_port();
    pid_t redis = s_redis_start();
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", s_port);
    const char *extra[] = {
        "--cache-mem-mb", "16", "--cache-redis", addr, "--cache-redis-timeout-ms", "100", NULL};
    gqt_cluster_t ca, cb;
    gqt_cache_cluster(&ca, 1, 8, extra);
    gqt_cache_cluster(&cb, 1, 8, extra);
    gq_client_t *a = gqt_cache_client(ca.front), *b = gqt_cache_client(cb.front);

    /* Shared: computed by A, served by B from Redis, then from B's memory. */
    gq_tensor_t *x = gqt_cache_input(100000, 1);
    GQT_CHECK(gqt_cache_scale(a, x, 2.0) == GQ_CACHE_COMPUTED, "A: not computed");
    s_wait_keys(1);
    gq_cache_source_t src = gqt_cache_scale(b, x, 2.0);
    GQT_CHECK(src == GQ_CACHE_REDIS, "B: served from %s, want redis", gq_cache_source_name(src));
    GQT_CHECK(gqt_cache_scale(b, x, 2.0) == GQ_CACHE_MEMORY, "B: Redis hit not kept in memory");
    printf("job run on broker A, served from Redis by broker B\n");

    /* Corrupt in Redis: dropped, counted, recomputed. */
    gq_tensor_t *y = gqt_cache_input(100000, 2);
    GQT_CHECK(gqt_cache_scale(a, y, 3.0) == GQ_CACHE_COMPUTED, "A: y not computed");
    s_wait_keys(2);
    s_corrupt_all();
    src = gqt_cache_scale(b, y, 3.0);
    GQT_CHECK(src == GQ_CACHE_COMPUTED, "B: corrupt entry served from %s",
              gq_cache_source_name(src));
    gq_cache_info_t ci = gqt_cache_info(b);
    const gq_cache_tier_info_t *rt = gqt_tier(&ci, GQ_CACHE_REDIS);
    GQT_CHECK(rt->corrupt == 1 && rt->up, "B: redis corrupt %llu up %d",
              (unsigned long long)rt->corrupt, rt->up);
    printf("corrupt Redis entry detected and recomputed\n");

    /* Redis dies: every job is still answered, promptly. */
    kill(redis, SIGKILL);
    gqt_wait(redis, 5000);
    for (int i = 0; i < 20; i++) {
        gq_tensor_t *z = gqt_cache_input(20000, 100 + i);
        uint64_t t0 = gq_now_us();
        src = gqt_cache_scale(i % 2 ? a : b, z, 1.5);
        uint64_t us = gq_now_us() - t0;
        GQT_CHECK(src == GQ_CACHE_COMPUTED, "job %d served from %s with Redis down", i,
                  gq_cache_source_name(src));
        GQT_CHECK(us < 1000000, "job %d took %llu us with Redis down", i, (unsigned long long)us);
        GQT_CHECK(gqt_cache_scale(i % 2 ? a : b, z, 1.5) == GQ_CACHE_MEMORY,
                  "memory tier not serving with Redis down");
        gq_tensor_destroy(&z);
    }
    ci = gqt_cache_info(a);
    rt = gqt_tier(&ci, GQ_CACHE_REDIS);
    GQT_CHECK(!rt->up && rt->errors > 0, "A: redis up %d errors %llu after the kill", rt->up,
              (unsigned long long)rt->errors);
    printf("Redis killed: 40 jobs answered from workers and memory, tier reported down\n");

    /* Redis back on the same port: the brokers reconnect (backoff at most 2 s). */
    redis = s_redis_start();
    gq_tensor_t *w = gqt_cache_input(100000, 3);
    int shared = 0;
    for (int tries = 0; tries < 40 && !shared; tries++) {
        gqt_sleep_ms(250);
        ci = gqt_cache_info(a);
        gq_cache_info_t cb_info = gqt_cache_info(b);
        if (!gqt_tier(&ci, GQ_CACHE_REDIS)->up || !gqt_tier(&cb_info, GQ_CACHE_REDIS)->up)
            continue;
        double f = 4.0 + tries;
        GQT_CHECK(gqt_cache_scale(a, w, f) == GQ_CACHE_COMPUTED, "A: w not computed");
        for (int i = 0; i < 100 && s_nkeys() < 1; i++)
            gqt_sleep_ms(10);
        shared = gqt_cache_scale(b, w, f) == GQ_CACHE_REDIS;
    }
    GQT_CHECK(shared, "brokers did not use the restarted Redis");
    printf("Redis restarted: found again and shared\n");
    gq_tensor_destroy(&x);
    gq_tensor_destroy(&y);
    gq_tensor_destroy(&w);
    gq_client_destroy(&a);
    gq_client_destroy(&b);
    gqt_cluster_stop(&ca);
    gqt_cluster_stop(&cb);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    GQT_CHECK(system(cmd) == 0, "rm");
    printf("PASS\n");
    return 0;
}
