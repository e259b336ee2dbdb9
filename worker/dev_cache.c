/* On-disk cache of device binaries shared by the GPU backends (OpenCL program binaries,
 * Vulkan pipeline cache data). One file per key:
 *
 *   offset  size  field
 *        0     8  magic (the backend's: "GQCLPRG\0" for OpenCL, "GQVKPLC\0" for Vulkan)
 *        8     4  format version (1), little-endian like every field here
 *       12     4  header size (64)
 *       16     8  payload size
 *       24    16  key (XXH3-128 of what the binary depends on: source, device, driver)
 *       40    16  XXH3-128 of the payload
 *       56     8  zero
 *       64     -  payload: the driver's bytes
 *
 * A file is trusted only when every field checks out; anything else is reported as
 * GQ_EFORMAT so the caller rebuilds and overwrites it. Writes go to a temp file that is
 * renamed over the entry, so a reader never sees half a file from a crashed writer. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>
#include "dev_cache.h"
#include "util.h"

#define S_VERSION 1u
#define S_HEADER 64u
#define S_MAX_PAYLOAD ((uint64_t)1 << 30)

void gq_dev_cache_dir(const gq_dev_cache_kind_t *kind, char *out, size_t len)
{
    const char *d = getenv(kind->env);
    if (d && *d) {
        snprintf(out, len, "%s", d);
        return;
    }
    d = getenv("XDG_CACHE_HOME");
    if (d && *d) {
        snprintf(out, len, "%s/gpuq/%s", d, kind->subdir);
        return;
    }
    d = getenv("HOME");
    if (d && *d) {
        snprintf(out, len, "%s/.cache/gpuq/%s", d, kind->subdir);
        return;
    }
    if (len)
        out[0] = '\0';
}

void gq_dev_cache_key(const char *const *parts, const size_t *lens, int n,
                      uint8_t key[GQ_DEV_KEY_BYTES])
{
    XXH3_state_t st;
    XXH3_128bits_reset(&st);
    for (int i = 0; i < n; i++) {
        uint64_t l = lens[i];
        XXH3_128bits_update(&st, &l, sizeof l);
        XXH3_128bits_update(&st, parts[i], lens[i]);
    }
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(&st));
    memcpy(key, c.digest, GQ_DEV_KEY_BYTES);
}

static void s_hash(const void *data, size_t n, uint8_t out[16])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(data, n));
    memcpy(out, c.digest, 16);
}

void gq_dev_cache_path(const char *dir, const uint8_t key[GQ_DEV_KEY_BYTES], char *out, size_t len)
{
    char hex[2 * GQ_DEV_KEY_BYTES + 1];
    for (int i = 0; i < GQ_DEV_KEY_BYTES; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    snprintf(out, len, "%s/%s.bin", dir, hex);
}

static void s_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void s_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t s_get(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

gq_status gq_dev_cache_load(const gq_dev_cache_kind_t *kind, const char *dir,
                            const uint8_t key[GQ_DEV_KEY_BYTES], void **data, size_t *n, char *why,
                            size_t whylen)
{
    char path[1024];
    uint8_t h[S_HEADER], sum[16];
    *data = NULL;
    *n = 0;
    gq_dev_cache_path(dir, key, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f) {
        gq_errf(why, whylen, "%s: %s", path, strerror(errno));
        return GQ_EIO;
    }
    struct stat sb;
    void *buf = NULL;
    gq_status rc = GQ_EFORMAT;
    if (fstat(fileno(f), &sb) || sb.st_size < (off_t)S_HEADER) {
        gq_errf(why, whylen, "%s: truncated (%lld bytes, header is %u)", path,
                (long long)sb.st_size, S_HEADER);
        goto done;
    }
    if (fread(h, 1, S_HEADER, f) != S_HEADER) {
        gq_errf(why, whylen, "%s: cannot read the header", path);
        goto done;
    }
    uint64_t size = s_get(h + 16, 8);
    if (memcmp(h, kind->magic, 8) || s_get(h + 8, 4) != S_VERSION || s_get(h + 12, 4) != S_HEADER) {
        gq_errf(why, whylen, "%s: not a gpuq %s file of version %u", path, kind->what, S_VERSION);
        goto done;
    }
    if (size == 0 || size > S_MAX_PAYLOAD || (uint64_t)sb.st_size - S_HEADER != size) {
        gq_errf(why, whylen, "%s: header says %llu payload bytes, file holds %lld", path,
                (unsigned long long)size, (long long)sb.st_size - (long long)S_HEADER);
        goto done;
    }
    if (memcmp(h + 24, key, GQ_DEV_KEY_BYTES)) {
        gq_errf(why, whylen, "%s: entry is for another key", path);
        goto done;
    }
    if (!(buf = malloc((size_t)size)) || fread(buf, 1, (size_t)size, f) != size) {
        gq_errf(why, whylen, "%s: cannot read %llu payload bytes", path, (unsigned long long)size);
        goto done;
    }
    s_hash(buf, (size_t)size, sum);
    if (memcmp(h + 40, sum, 16)) {
        gq_errf(why, whylen, "%s: checksum mismatch (corrupt payload)", path);
        goto done;
    }
    *data = buf;
    *n = (size_t)size;
    buf = NULL;
    rc = GQ_OK;
done:
    free(buf);
    fclose(f);
    return rc;
}

/* mkdir -p, mode 0700: compiled binaries are as private as the user's other caches. */
static int s_mkdirs(const char *dir)
{
    char p[1024];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0700) && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return mkdir(p, 0700) && errno != EEXIST ? -1 : 0;
}

static int s_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

gq_status gq_dev_cache_store(const gq_dev_cache_kind_t *kind, const char *dir,
                             const uint8_t key[GQ_DEV_KEY_BYTES], const void *data, size_t n,
                             char *err, size_t errlen)
{
    static atomic_uint s_seq;
    char path[1024], tmp[1100];
    uint8_t h[S_HEADER];
    if (!n || n > S_MAX_PAYLOAD) {
        gq_errf(err, errlen, "%s: %s: refusing a %zu-byte entry", kind->backend, kind->what, n);
        return GQ_EINVAL;
    }
    if (s_mkdirs(dir)) {
        gq_errf(err, errlen, "%s: %s: cannot create %s: %s", kind->backend, kind->what, dir,
                strerror(errno));
        return GQ_EIO;
    }
    gq_dev_cache_path(dir, key, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d.%u", path, (int)getpid(), atomic_fetch_add(&s_seq, 1));
    memset(h, 0, sizeof h);
    memcpy(h, kind->magic, 8);
    s_put32(h + 8, S_VERSION);
    s_put32(h + 12, S_HEADER);
    s_put64(h + 16, n);
    memcpy(h + 24, key, GQ_DEV_KEY_BYTES);
    s_hash(data, n, h + 40);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        gq_errf(err, errlen, "%s: %s: cannot create %s: %s", kind->backend, kind->what, tmp,
                strerror(errno));
        return GQ_EIO;
    }
    if (s_write_all(fd, h, sizeof h) || s_write_all(fd, data, n) || fsync(fd)) {
        gq_errf(err, errlen, "%s: %s: cannot write %s: %s", kind->backend, kind->what, tmp,
                strerror(errno));
        close(fd);
        unlink(tmp);
        return GQ_EIO;
    }
    close(fd);
    if (rename(tmp, path)) {
        gq_errf(err, errlen, "%s: %s: cannot rename %s to %s: %s", kind->backend, kind->what, tmp,
                path, strerror(errno));
        unlink(tmp);
        return GQ_EIO;
    }
    return GQ_OK;
}
