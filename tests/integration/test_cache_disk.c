/* The disk tier across broker restarts: a result computed by one broker process is served
 * from LMDB by the next one after the first was SIGKILLed; an entry corrupted on disk (bit
 * flip, truncation) while no broker runs is detected, dropped, counted and recomputed. */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cache_tiers.h"
#include "test_cache_util.h"

static void s_kill_broker(gqt_cluster_t *c)
{
    kill(c->broker, SIGKILL);
    gqt_wait(c->broker, 5000);
    c->broker = 0;
    for (int i = 0; i < c->nworkers; i++) {
        kill(c->workers[i], SIGKILL);
        gqt_wait(c->workers[i], 5000);
        c->workers[i] = 0;
    }
}

static void s_flip(uint8_t *buf, size_t *len, void *arg)
{
    (void)arg;
    buf[*len / 2] ^= 0x10;
}

static void s_cut(uint8_t *buf, size_t *len, void *arg)
{
    (void)buf;
    (void)arg;
    *len -= 7;
}

/* Tampers with every entry whose key the test knows: the keys are computed the broker's way. */
static void s_tamper(const char *dir, gq_tensor_t *x, double factor,
                     void (*fn)(uint8_t *, size_t *, void *))
{
    gq_param_t p = {.name = "factor", .v = {.type = GQ_PT_FLOAT, .f = factor}};
    gq_args_t a;
    char err[256];
    GQT_CHECK(gq_op_resolve(gq_op_find("tensor.scale"), &p, 1, &a, err, sizeof err) == GQ_OK, "%s",
              err);
    gq_cache_input_t in = {.data = gq_tensor_data(x), .nbytes = gq_tensor_nbytes(x)};
    gq_tdesc_init(&in.desc, gq_tensor_dtype(x), gq_tensor_shape(x), gq_tensor_ndim(x));
    gq_cache_key_t key;
    GQT_CHECK(gq_cache_key(&a, 1, NULL, 0, &in, 1, &key) == GQ_OK, "key");
    gq_cache_lmdb_t *d = gq_cache_lmdb_new(dir, (size_t)64 << 20, err, sizeof err);
    GQT_CHECK(d, "open %s: %s", dir, err);
    GQT_CHECK(gq_cache_lmdb_tamper(d, &key, fn, NULL) == GQ_OK, "entry not on disk");
    gq_cache_lmdb_destroy(&d);
}

int main(void)
{
    char dir[] = "/tmp/gq-cache-disk-XXXXXX";
    GQT_CHECK(mkdtemp(dir), "mkdtemp");
    const char *extra[] = {"--cache-lmdb", dir, "--cache-lmdb-mb", "64", NULL};
    gq_tensor_t *x = gqt_cache_input(50000, 1), *y = gqt_cache_input(50000, 2);

    gqt_cluster_t c;
    gqt_cache_cluster(&c, 1, 8, extra);
    gq_client_t *cl = gqt_cache_client(c.front);
    GQT_CHECK(gqt_cache_scale(cl, x, 2.0) == GQ_CACHE_COMPUTED, "first run not computed");
    GQT_CHECK(gqt_cache_scale(cl, x, 2.0) == GQ_CACHE_MEMORY, "second run not from memory");
    GQT_CHECK(gqt_cache_scale(cl, y, 3.0) == GQ_CACHE_COMPUTED, "y not computed");
    /* The disk tier is written behind the answers, by the cache's writer thread: wait for
     * both stores (a SIGKILL may lose the values not yet written; a cache may forget). */
    gq_cache_info_t ci;
    const gq_cache_tier_info_t *disk;
    for (int t = 0; t < 500; t++) {
        ci = gqt_cache_info(cl);
        disk = gqt_tier(&ci, GQ_CACHE_DISK);
        if (disk->stores >= 2)
            break;
        usleep(10000);
    }
    printf("disk tier: %llu entries, %llu raw -> %llu stored bytes\n",
           (unsigned long long)disk->entries, (unsigned long long)disk->bytes_raw,
           (unsigned long long)disk->bytes_stored);
    GQT_CHECK(disk->entries == 2 && disk->stores == 2, "disk entries %llu",
              (unsigned long long)disk->entries);
    gq_client_destroy(&cl);
    s_kill_broker(&c);
    printf("broker SIGKILLed\n");

    /* A new broker process on new ports, same directory: x from disk, then memory. */
    gqt_cache_cluster(&c, 1, 8, extra);
    cl = gqt_cache_client(c.front);
    GQT_CHECK(gqt_cache_scale(cl, x, 2.0) == GQ_CACHE_DISK, "not served from disk after restart");
    GQT_CHECK(gqt_cache_scale(cl, x, 2.0) == GQ_CACHE_MEMORY, "disk hit not promoted to memory");
    gq_client_destroy(&cl);
    s_kill_broker(&c);

    /* Corruption while no broker runs: flip a bit in x's entry, cut y's short. */
    s_tamper(dir, x, 2.0, s_flip);
    s_tamper(dir, y, 3.0, s_cut);
    gqt_cache_cluster(&c, 1, 8, extra);
    cl = gqt_cache_client(c.front);
    GQT_CHECK(gqt_cache_scale(cl, x, 2.0) == GQ_CACHE_COMPUTED, "bit-flipped entry served");
    GQT_CHECK(gqt_cache_scale(cl, y, 3.0) == GQ_CACHE_COMPUTED, "truncated entry served");
    GQT_CHECK(gqt_cache_scale(cl, x, 2.0) == GQ_CACHE_MEMORY, "recomputed result not cached");
    ci = gqt_cache_info(cl);
    disk = gqt_tier(&ci, GQ_CACHE_DISK);
    GQT_CHECK(disk->corrupt == 2, "disk corrupt count %llu", (unsigned long long)disk->corrupt);
    printf("corrupt entries detected: %llu, recomputed\n", (unsigned long long)disk->corrupt);
    gq_client_destroy(&cl);
    gqt_cluster_stop(&c);
    gq_tensor_destroy(&x);
    gq_tensor_destroy(&y);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    GQT_CHECK(system(cmd) == 0, "rm");
    printf("PASS\n");
    return 0;
}
