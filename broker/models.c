#include "models.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "map.h"
#include "util.h"

struct gq_models {
    gq_map_t *map; /* hash(digest) -> entry */
    char *dir;
    uint64_t max_bytes, bytes;
};

static uint64_t s_key(const char *digest)
{
    uint64_t k = gq_hash_bytes(digest, strlen(digest), 0x6d6f64656cULL);
    return k ? k : 1;
}

static void s_entry_free(gq_model_entry_t *e)
{
    zmq_msg_close(&e->bytes);
    free(e);
}

static void s_free_cb(uint64_t key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    s_entry_free(value);
}

/* Writes the file <dir>/<digest>.onnx through a temporary name (a crash leaves no half
 * file under the real name). */
static void s_persist(const gq_models_t *self, const gq_model_entry_t *e)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s.onnx", self->dir, e->digest);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const char *p = zmq_msg_data((zmq_msg_t *)&e->bytes);
    size_t left = zmq_msg_size((zmq_msg_t *)&e->bytes);
    while (fd >= 0 && left) {
        ssize_t n = write(fd, p, left);
        if (n <= 0)
            break;
        p += n;
        left -= (size_t)n;
    }
    if (fd < 0 || left || fsync(fd) || close(fd) || rename(tmp, path)) {
        GQ_WARN("model store: cannot write %s: %s (kept in memory only)", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
    }
}

gq_status gq_models_put(gq_models_t *self, zmq_msg_t *data, const char *name,
                        const gq_model_entry_t **out, char *err, size_t errlen)
{
    size_t n = zmq_msg_size(data);
    gq_onnx_limits_t lim;
    gq_onnx_limits_default(&lim);
    gq_status code = GQ_OK;
    gq_onnx_model_t *m = gq_onnx_model_parse(zmq_msg_data(data), n, NULL, &lim, &code, err, errlen);
    if (!m)
        return code ? code : GQ_EFORMAT;
    gq_model_entry_t *e = calloc(1, sizeof *e);
    if (!e) {
        gq_onnx_model_destroy(&m);
        gq_errf(err, errlen, "broker out of memory storing the model");
        return GQ_ENOMEM;
    }
    snprintf(e->digest, sizeof e->digest, "%s", gq_onnx_model_digest(m));
    gq_status rc = gq_onnx_sig_of(m, &e->sig, err, errlen);
    gq_onnx_model_destroy(&m);
    const gq_model_entry_t *have = gq_models_get(self, e->digest);
    if (rc || have) {
        free(e);
        *out = have;
        return rc;
    }
    if (self->bytes + n > self->max_bytes) {
        free(e);
        gq_errf(err, errlen, "model store full: %llu of %llu bytes used, this model is %zu",
                (unsigned long long)self->bytes, (unsigned long long)self->max_bytes, n);
        return GQ_ETOOBIG;
    }
    snprintf(e->name, sizeof e->name, "%s", name ? name : "");
    e->size = n;
    zmq_msg_init(&e->bytes);
    zmq_msg_move(&e->bytes, data);
    if (gq_map_put(self->map, s_key(e->digest), e)) {
        zmq_msg_move(data, &e->bytes);
        free(e);
        gq_errf(err, errlen, "broker out of memory storing the model");
        return GQ_ENOMEM;
    }
    self->bytes += n;
    if (self->dir)
        s_persist(self, e);
    GQ_INFO("model %s stored (%s, %zu bytes, %d inputs, %d outputs)", e->digest, e->name, n,
            e->sig.ninputs, e->sig.noutputs);
    *out = e;
    return GQ_OK;
}

/* Loads every <digest>.onnx of dir; a file that does not load is skipped with a warning. */
static void s_load_dir(gq_models_t *self)
{
    DIR *d = opendir(self->dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len != 37 || strcmp(de->d_name + 32, ".onnx"))
            continue;
        char path[4096], err[GQ_ERRLEN];
        snprintf(path, sizeof path, "%s/%s", self->dir, de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        zmq_msg_t msg;
        if (fd < 0 || fstat(fd, &st) || zmq_msg_init_size(&msg, (size_t)st.st_size)) {
            GQ_WARN("model store: cannot read %s: %s", path, strerror(errno));
            if (fd >= 0)
                close(fd);
            continue;
        }
        ssize_t got = read(fd, zmq_msg_data(&msg), (size_t)st.st_size);
        close(fd);
        const gq_model_entry_t *e = NULL;
        gq_status rc = got == st.st_size ? GQ_OK : GQ_EIO;
        char *saved = self->dir;
        self->dir = NULL; /* already a file */
        if (!rc)
            rc = gq_models_put(self, &msg, de->d_name, &e, err, sizeof err);
        self->dir = saved;
        if (rc)
            GQ_WARN("model store: %s skipped: %s", path, rc == GQ_EIO ? "short read" : err);
        else if (strncmp(e->digest, de->d_name, 32))
            GQ_WARN("model store: %s holds model %s (renamed?)", path, e->digest);
        zmq_msg_close(&msg);
    }
    if (d)
        closedir(d);
}

gq_models_t *gq_models_new(const char *dir, uint64_t max_bytes, char *err, size_t errlen)
{
    gq_models_t *self = calloc(1, sizeof *self);
    if (!self || !(self->map = gq_map_new()) || (dir && !(self->dir = strdup(dir)))) {
        gq_errf(err, errlen, "out of memory");
        gq_models_destroy(&self);
        return NULL;
    }
    self->max_bytes = max_bytes ? max_bytes : (uint64_t)1 << 30;
    if (self->dir) {
        if (mkdir(self->dir, 0755) && errno != EEXIST) {
            gq_errf(err, errlen, "model store: cannot create %s: %s", self->dir, strerror(errno));
            gq_models_destroy(&self);
            return NULL;
        }
        s_load_dir(self);
    }
    return self;
}

void gq_models_destroy(gq_models_t **self_p)
{
    gq_models_t *self = *self_p;
    if (!self)
        return;
    if (self->map) {
        gq_map_each(self->map, s_free_cb, NULL);
        gq_map_destroy(&self->map);
    }
    free(self->dir);
    free(self);
    *self_p = NULL;
}

const gq_model_entry_t *gq_models_get(gq_models_t *self, const char *digest)
{
    const gq_model_entry_t *e = digest ? gq_map_get(self->map, s_key(digest)) : NULL;
    return e && !strcmp(e->digest, digest) ? e : NULL;
}

void gq_models_fetched(gq_models_t *self, const char *digest)
{
    gq_model_entry_t *e = (gq_model_entry_t *)gq_models_get(self, digest);
    if (e)
        e->fetches++;
}

size_t gq_models_count(const gq_models_t *self)
{
    return gq_map_size(self->map);
}

uint64_t gq_models_bytes(const gq_models_t *self)
{
    return self->bytes;
}

typedef struct {
    void (*fn)(const gq_model_entry_t *e, void *arg);
    void *arg;
} s_each_t;

static void s_each_cb(uint64_t key, void *value, void *arg)
{
    (void)key;
    s_each_t *x = arg;
    x->fn(value, x->arg);
}

void gq_models_each(gq_models_t *self, void (*fn)(const gq_model_entry_t *e, void *arg), void *arg)
{
    s_each_t x = {fn, arg};
    gq_map_each(self->map, s_each_cb, &x);
}
