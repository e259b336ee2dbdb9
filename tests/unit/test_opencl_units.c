/* The OpenCL backend's parts that need no device: error mapping, the buffer pool (over
 * fake buffers) and the program cache file format (valid, corrupt, truncated, foreign,
 * missing entries; atomic replacement). Skipped (77) when built without OpenCL. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "backend.h"

#ifndef GQ_HAVE_OPENCL
int main(void)
{
    printf("SKIP: built without OpenCL\n");
    return 77;
}
#else
#include "opencl.h"

static int s_failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            s_failures++;                                                                          \
        }                                                                                          \
    } while (0)

static void s_test_errors(void)
{
    CHECK(gq_cl_status(0) == GQ_OK, "success");
    CHECK(gq_cl_status(-4) == GQ_EDEVICE_OOM, "CL_MEM_OBJECT_ALLOCATION_FAILURE");
    CHECK(gq_cl_status(-5) == GQ_EDEVICE_OOM, "CL_OUT_OF_RESOURCES");
    CHECK(gq_cl_status(-6) == GQ_ENOMEM, "CL_OUT_OF_HOST_MEMORY");
    CHECK(gq_cl_status(-2) == GQ_EDEVICE_LOST, "CL_DEVICE_NOT_AVAILABLE");
    CHECK(gq_cl_status(-1) == GQ_EDEVICE_LOST, "CL_DEVICE_NOT_FOUND");
    CHECK(gq_cl_status(-9999) == GQ_EDEVICE_LOST, "NVIDIA illegal address");
    CHECK(gq_cl_status(-11) == GQ_EBACKEND, "build failure");
    CHECK(gq_cl_status(-54) == GQ_EBACKEND, "invalid work group size");
    CHECK(gq_cl_status(-12345) == GQ_EBACKEND, "unknown code");
    CHECK(gq_cl_errname(-12345) == NULL, "unknown code has no name");
    /* Every code from 0 to -72 that the headers define has a distinct name. */
    int named = 0;
    for (int c = 0; c >= -72; c--) {
        const char *n = gq_cl_errname(c);
        if (!n)
            continue;
        named++;
        CHECK(!strncmp(n, "CL_", 3), "code %d name %s", c, n);
        for (int d = c - 1; d >= -72; d--)
            CHECK(!gq_cl_errname(d) || strcmp(n, gq_cl_errname(d)), "%d and %d share %s", c, d, n);
    }
    CHECK(named == 20 + 43, "%d codes named in 0..-72", named);
    char err[256];
    gq_status rc = gq_cl_fail(err, sizeof err, "tensor.add", "clEnqueueNDRangeKernel", -5);
    CHECK(rc == GQ_EDEVICE_OOM && !strcmp(err, "tensor.add: opencl: clEnqueueNDRangeKernel: "
                                               "CL_OUT_OF_RESOURCES"),
          "message '%s'", err);
    rc = gq_cl_fail(err, sizeof err, NULL, "clFinish", -777);
    CHECK(rc == GQ_EBACKEND && !strcmp(err, "opencl: clFinish: CL error -777"), "message '%s'",
          err);
}

/* ---- pool over fake buffers ---- */

typedef struct {
    int made, released, fail_next;
    size_t live_bytes;
} s_fake_t;

static int s_make(void *ctx, size_t nbytes, void **handle)
{
    s_fake_t *f = ctx;
    if (f->fail_next) {
        f->fail_next--;
        return -4;
    }
    size_t *b = malloc(sizeof *b);
    if (!b)
        return -6;
    *b = nbytes;
    *handle = b;
    f->made++;
    f->live_bytes += nbytes;
    return 0;
}

static void s_release(void *ctx, void *handle)
{
    s_fake_t *f = ctx;
    f->released++;
    f->live_bytes -= *(size_t *)handle;
    free(handle);
}

static void s_test_pool(void)
{
    CHECK(gq_dev_pool_class(0) == 256 && gq_dev_pool_class(256) == 256, "min class");
    CHECK(gq_dev_pool_class(257) == 320, "257 -> %zu", gq_dev_pool_class(257));
    CHECK(gq_dev_pool_class(1024) == 1024 && gq_dev_pool_class(1025) == 1280, "1025 -> %zu",
          gq_dev_pool_class(1025));
    CHECK(gq_dev_pool_class(3 << 20) == (size_t)3 << 20, "3 MiB");
    for (size_t n = 1; n < (1u << 22); n = n * 3 + 1) {
        size_t c = gq_dev_pool_class(n);
        CHECK(c >= n && (n <= 256 || c <= n + n / 4 + 1), "class of %zu is %zu", n, c);
        CHECK(gq_dev_pool_class(c) == c, "class of a class size %zu", c);
    }

    s_fake_t f = {0};
    gq_dev_pool_t *p = gq_dev_pool_new(s_make, s_release, &f, 1 << 20);
    CHECK(p, "pool");
    void *a, *b, *c;
    CHECK(!gq_dev_pool_get(p, 1000, &a) && !gq_dev_pool_get(p, 1000, &b), "get");
    CHECK(f.made == 2 && *(size_t *)a == 1024, "made %d, size %zu", f.made, *(size_t *)a);
    gq_dev_pool_put(p, a, 1000);
    CHECK(!gq_dev_pool_get(p, 900, &c) && c == a && f.made == 2, "reuse within the class");
    gq_dev_pool_put(p, b, 1000);
    gq_dev_pool_put(p, c, 900);
    /* Steady state: a job stream of the same sizes makes nothing new. */
    for (int i = 0; i < 1000; i++) {
        void *x, *y;
        CHECK(!gq_dev_pool_get(p, 1000, &x) && !gq_dev_pool_get(p, 4000, &y), "get");
        gq_dev_pool_put(p, x, 1000);
        gq_dev_pool_put(p, y, 4000);
    }
    gq_dev_pool_stats_t st;
    gq_dev_pool_stats(p, &st);
    CHECK(f.made == 3 && st.misses == 3 && st.hits == 2000, "made %d misses %llu hits %llu", f.made,
          (unsigned long long)st.misses, (unsigned long long)st.hits);
    CHECK(st.live_bytes == 0 && st.idle_count == 3 && st.idle_bytes == 1024 * 2 + 4096,
          "live %zu idle %zu/%zu", st.live_bytes, st.idle_count, st.idle_bytes);
    /* The cap: idle bytes never pass 1 MiB; the oldest go first. */
    void *big[8];
    for (int i = 0; i < 8; i++)
        CHECK(!gq_dev_pool_get(p, 256 << 10, &big[i]), "big get");
    for (int i = 0; i < 8; i++)
        gq_dev_pool_put(p, big[i], 256 << 10);
    gq_dev_pool_stats(p, &st);
    CHECK(st.idle_bytes <= (1 << 20), "idle %zu over the cap", st.idle_bytes);
    CHECK(f.live_bytes == st.idle_bytes, "fake live %zu, pool idle %zu", f.live_bytes,
          st.idle_bytes);
    /* Over the cap on its own: released at once. */
    void *huge;
    CHECK(!gq_dev_pool_get(p, 2 << 20, &huge), "huge");
    int before = f.released;
    gq_dev_pool_put(p, huge, 2 << 20);
    CHECK(f.released == before + 1, "huge buffer released on put");
    /* A failed make releases the idle buffers and tries again once. */
    f.fail_next = 1;
    void *r;
    CHECK(!gq_dev_pool_get(p, 100 << 10, &r), "get after a failed make");
    gq_dev_pool_stats(p, &st);
    CHECK(st.retries == 1 && st.idle_count == 0, "retries %llu idle %zu",
          (unsigned long long)st.retries, st.idle_count);
    f.fail_next = 2;
    void *r2;
    CHECK(gq_dev_pool_get(p, 100 << 10, &r2) == -4, "second failure is reported");
    gq_dev_pool_put(p, r, 100 << 10);
    gq_dev_pool_destroy(&p);
    CHECK(!p && f.made == f.released && f.live_bytes == 0, "made %d released %d", f.made,
          f.released);
}

/* ---- program cache ---- */

static void s_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(data, 1, n, f) == n, "write %s", path);
    if (f)
        fclose(f);
}

static size_t s_read_file(const char *path, void *buf, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, max, f);
    fclose(f);
    return n;
}

static void s_test_cache(void)
{
    char dir[256], sub[300], path[600], why[256];
    snprintf(dir, sizeof dir, "/tmp/gq-test-clcache-%d", (int)getpid());
    snprintf(sub, sizeof sub, "%s/a/b", dir);
    setenv("GQ_CL_CACHE_DIR", sub, 1);
    char got[300];
    gq_dev_cache_dir(&gq_cl_cache_kind, got, sizeof got);
    CHECK(!strcmp(got, sub), "dir from GQ_CL_CACHE_DIR: %s", got);
    unsetenv("GQ_CL_CACHE_DIR");
    setenv("XDG_CACHE_HOME", "/x", 1);
    gq_dev_cache_dir(&gq_cl_cache_kind, got, sizeof got);
    CHECK(!strcmp(got, "/x/gpuq/cl"), "dir from XDG: %s", got);
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", "/h", 1);
    gq_dev_cache_dir(&gq_cl_cache_kind, got, sizeof got);
    CHECK(!strcmp(got, "/h/.cache/gpuq/cl"), "dir from HOME: %s", got);

    const char *p1[] = {"ab", "c"}, *p2[] = {"a", "bc"};
    size_t l1[] = {2, 1}, l2[] = {1, 2};
    uint8_t k1[16], k2[16], k3[16];
    gq_dev_cache_key(p1, l1, 2, k1);
    gq_dev_cache_key(p2, l2, 2, k2);
    gq_dev_cache_key(p1, l1, 2, k3);
    CHECK(memcmp(k1, k2, 16) && !memcmp(k1, k3, 16), "keys are length-prefixed and stable");

    void *data;
    size_t n;
    CHECK(gq_dev_cache_load(&gq_cl_cache_kind, sub, k1, &data, &n, why, sizeof why) == GQ_EIO,
          "missing: %s", why);
    char payload[5000];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (char)(i * 7);
    CHECK(gq_dev_cache_store(&gq_cl_cache_kind, sub, k1, payload, sizeof payload, why,
                             sizeof why) == GQ_OK,
          "store (creating %s): %s", sub, why);
    CHECK(gq_dev_cache_load(&gq_cl_cache_kind, sub, k1, &data, &n, why, sizeof why) == GQ_OK &&
              n == sizeof payload && !memcmp(data, payload, n),
          "load back: %s", why);
    free(data);
    CHECK(gq_dev_cache_load(&gq_cl_cache_kind, sub, k2, &data, &n, why, sizeof why) == GQ_EIO,
          "other key missing");

    gq_dev_cache_path(sub, k1, path, sizeof path);
    static char file[8192];
    size_t fn = s_read_file(path, file, sizeof file);
    CHECK(fn == 64 + sizeof payload, "file is header + payload: %zu", fn);
    /* Corrupt payload byte, header byte, truncation, a foreign key, garbage: all refused. */
    struct {
        const char *what;
        size_t off;
        size_t len;
    } bad[] = {{"payload byte", 64 + 1234, fn},
               {"magic", 0, fn},
               {"version", 8, fn},
               {"size field", 16, fn},
               {"key", 30, fn},
               {"checksum", 45, fn},
               {"truncated payload", 0, fn - 100},
               {"truncated header", 0, 40},
               {"empty", 0, 0}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        static char copy[8192];
        memcpy(copy, file, fn);
        if (bad[i].len == fn)
            copy[bad[i].off] ^= 0x5a;
        s_write_file(path, copy, bad[i].len);
        data = NULL;
        gq_status rc = gq_dev_cache_load(&gq_cl_cache_kind, sub, k1, &data, &n, why, sizeof why);
        CHECK(rc == GQ_EFORMAT && !data, "%s: rc %d (%s)", bad[i].what, rc, why);
        printf("refused (%s): %s\n", bad[i].what, why);
    }
    /* A store replaces a bad file, and leaves no temp files behind. */
    CHECK(gq_dev_cache_store(&gq_cl_cache_kind, sub, k1, payload, sizeof payload, why,
                             sizeof why) == GQ_OK,
          "%s", why);
    CHECK(gq_dev_cache_load(&gq_cl_cache_kind, sub, k1, &data, &n, why, sizeof why) == GQ_OK,
          "after rewrite: %s", why);
    free(data);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 1", sub);
    CHECK(system(cmd) == 0, "one file in %s after the rewrite", sub);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    CHECK(gq_dev_cache_store(&gq_cl_cache_kind, "/proc/gq-no-such-dir", k1, payload, 10, why,
                             sizeof why) == GQ_EIO,
          "unwritable dir fails: %s", why);
}

int main(void)
{
    s_test_errors();
    s_test_pool();
    s_test_cache();
    if (s_failures) {
        fprintf(stderr, "test_opencl_units: %d failures\n", s_failures);
        return 1;
    }
    printf("PASS\n");
    return 0;
}
#endif
