/* The CPU backend: host memory, kernels from cpu_ops.h. It is always available and runs
 * every op that has a CPU kernel, so it is registered last as the fallback and serves as
 * the reference for the other backends. */
#include "backend.h"
#include "cpu_ops.h"
#include "util.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_ALIGN 64

/* Kernel families, one line each (DSP, ONNX ... append here). */
static const gq_cpu_kernel_family_t *const s_kernel_families[] = {
    &gq_cpu_tensor_kernels,
    &gq_cpu_dsp_spectral_kernels,
    &gq_cpu_dsp_filter_kernels,
};

gq_cpu_kernel_fn gq_cpu_kernel_find(const char *op)
{
    if (!op)
        return NULL;
    size_t nf = sizeof s_kernel_families / sizeof s_kernel_families[0];
    for (size_t f = 0; f < nf; f++)
        for (int i = 0; i < s_kernel_families[f]->count; i++)
            if (!strcmp(s_kernel_families[f]->kernels[i].op, op))
                return s_kernel_families[f]->kernels[i].fn;
    return NULL;
}

typedef struct {
    gq_device_info_t dev;
    int threads;
} s_cpu_t;

/* Marks a buffer whose memory belongs to the caller (wrap_host): free leaves it alone. */
static char s_wrapped_tag;

/* Copies the value of "key : value" lines of /proc/cpuinfo into out; out is left alone
 * when the key is missing (ARM kernels have no "model name"). */
static void s_cpuinfo(const char *key, char *out, size_t len)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    size_t klen = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) ||
            (line[klen] != ' ' && line[klen] != '\t' && line[klen] != ':'))
            continue;
        char *v = strchr(line, ':');
        if (!v)
            continue;
        v++;
        while (*v == ' ' || *v == '\t')
            v++;
        v[strcspn(v, "\n")] = '\0';
        if (*v) {
            snprintf(out, len, "%s", v);
            break;
        }
    }
    fclose(f);
}

/* The CPU ignores device_index and device_match: it is the one device every worker has,
 * and the fallback that must start when the GPU selectors match nothing. */
static gq_status s_init(gq_backend_t *be, const gq_backend_config_t *cfg, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    s_cpu_t *self = be->impl;
    gq_device_info_t *d = &self->dev;
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "cpu");
    snprintf(d->vendor, sizeof d->vendor, "unknown");
    s_cpuinfo("model name", d->name, sizeof d->name);
    s_cpuinfo("vendor_id", d->vendor, sizeof d->vendor);
    snprintf(d->driver, sizeof d->driver, "gpuq-cpu");
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGE_SIZE);
    if (pages > 0 && psize > 0)
        d->memory_bytes = (uint64_t)pages * (uint64_t)psize;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    d->compute_units = ncpu > 0 ? (uint32_t)ncpu : 1;
    d->is_gpu = false;
    self->threads = cfg && cfg->threads > 0 ? cfg->threads : (int)d->compute_units;
    return GQ_OK;
}

static bool s_supports_op(gq_backend_t *be, const gq_args_t *a, const gq_tdesc_t *in, int nin)
{
    /* Every dtype and shape the op table admits has a kernel, so the answer does not
     * depend on the inputs. */
    (void)be, (void)in, (void)nin;
    return a && a->op && gq_cpu_kernel_find(a->op->name);
}

static gq_status s_alloc(gq_backend_t *be, size_t nbytes, gq_buffer_t *out)
{
    if (!out)
        return GQ_EINVAL;
    memset(out, 0, sizeof *out);
    void *p = gq_aligned_alloc(S_ALIGN, nbytes);
    if (!p)
        return GQ_ENOMEM;
    out->owner = be;
    out->host = p;
    out->nbytes = nbytes;
    return GQ_OK;
}

static void s_free(gq_backend_t *be, gq_buffer_t *buf)
{
    (void)be;
    if (!buf)
        return;
    if (buf->handle != &s_wrapped_tag)
        free(buf->host);
    memset(buf, 0, sizeof *buf);
}

static gq_status s_wrap_host(gq_backend_t *be, void *data, size_t nbytes, gq_buffer_t *out)
{
    if (!out || (!data && nbytes))
        return GQ_EINVAL;
    memset(out, 0, sizeof *out);
    out->owner = be;
    out->host = data;
    out->handle = &s_wrapped_tag;
    out->nbytes = nbytes;
    return GQ_OK;
}

static gq_status s_upload(gq_backend_t *be, gq_buffer_t *dst, const void *src, size_t nbytes)
{
    (void)be;
    if (!dst || nbytes > dst->nbytes || (nbytes && (!dst->host || !src)))
        return GQ_EINVAL;
    if (nbytes)
        memcpy(dst->host, src, nbytes);
    return GQ_OK;
}

static gq_status s_download(gq_backend_t *be, void *dst, const gq_buffer_t *src, size_t nbytes)
{
    (void)be;
    if (!src || nbytes > src->nbytes || (nbytes && (!src->host || !dst)))
        return GQ_EINVAL;
    if (nbytes)
        memcpy(dst, src->host, nbytes);
    return GQ_OK;
}

/* Turns buffers into kernel views after checking what kernels trust: the buffer exists,
 * holds the descriptor's bytes, and is aligned for its dtype. */
static gq_status s_view(const char *op, const char *what, int i, const gq_tdesc_t *desc,
                        gq_buffer_t *buf, gq_view_t *view, char *err, size_t errlen)
{
    char ds[64];
    size_t need = gq_tdesc_nbytes(desc), align = gq_dtype_align(desc->dtype);
    if (!buf || (need && !buf->host)) {
        gq_errf(err, errlen, "%s: cpu: %s %d has no host memory", op, what, i);
        return GQ_EINVAL;
    }
    if (buf->nbytes < need) {
        gq_errf(err, errlen, "%s: cpu: %s %d %s needs %zu bytes, buffer holds %zu", op, what, i,
                gq_tdesc_str(desc, ds, sizeof ds), need, buf->nbytes);
        return GQ_EINVAL;
    }
    if (align && (uintptr_t)buf->host % align) {
        gq_errf(err, errlen,
                "%s: cpu: %s %d %s at %p is not aligned to %zu bytes (the worker must copy "
                "misaligned data into an allocated buffer)",
                op, what, i, gq_tdesc_str(desc, ds, sizeof ds), buf->host, align);
        return GQ_EINVAL;
    }
    view->desc = *desc;
    view->data = buf->host;
    view->nbytes = need;
    return GQ_OK;
}

static gq_status s_run(gq_backend_t *be, const gq_args_t *a, const gq_tdesc_t *in_desc,
                       gq_buffer_t *in, int nin, const gq_tdesc_t *out_desc, gq_buffer_t *out,
                       int nout, char *err, size_t errlen)
{
    /* The shape rule runs again so that a kernel never reads or writes past a buffer,
     * whatever the caller passed: it costs microseconds against the op itself. CPU buffers
     * are checked as views below (they may wrap caller memory). */
    gq_status rc =
        gq_backend_check_run(be, a, in_desc, in, nin, out_desc, out, nout, NULL, NULL, err, errlen);
    if (rc != GQ_OK)
        return rc;
    const char *op = a->op->name;
    gq_cpu_kernel_fn fn = gq_cpu_kernel_find(op);
    if (!fn) {
        gq_errf(err, errlen, "%s: cpu: no CPU kernel for this op", op);
        return GQ_EUNSUPPORTED;
    }
    gq_view_t vin[GQ_MAX_INPUTS], vout[GQ_MAX_OUTPUTS];
    for (int o = 0; o < nout; o++) {
        rc = s_view(op, "output", o, &out_desc[o], &out[o], &vout[o], err, errlen);
        if (rc != GQ_OK)
            return rc;
    }
    for (int i = 0; i < nin; i++) {
        rc = s_view(op, "input", i, &in_desc[i], &in[i], &vin[i], err, errlen);
        if (rc != GQ_OK)
            return rc;
    }
    if (err && errlen)
        err[0] = '\0';
    rc = fn(a, vin, nin, vout, nout, err, errlen);
    if (rc != GQ_OK && err && errlen && !err[0])
        gq_errf(err, errlen, "%s: cpu: kernel failed: %s", op, gq_strerror(rc));
    return rc;
}

static gq_status s_sync(gq_backend_t *be)
{
    (void)be;
    return GQ_OK;
}

static int s_devices(gq_backend_t *be, gq_device_info_t *out, int max)
{
    if (!be || !out || max < 1)
        return 0;
    out[0] = ((s_cpu_t *)be->impl)->dev;
    return 1;
}

static void s_destroy(gq_backend_t *be)
{
    free(be->impl);
    be->impl = NULL;
}

static const gq_backend_ops_t s_cpu_ops = {
    .name = "cpu",
    .init = s_init,
    .supports_op = s_supports_op,
    .alloc = s_alloc,
    .free = s_free,
    .wrap_host = s_wrap_host,
    .upload = s_upload,
    .download = s_download,
    .run = s_run,
    .sync = s_sync,
    .devices = s_devices,
    .destroy = s_destroy,
};

gq_backend_t *gq_backend_cpu_new(const gq_backend_config_t *cfg, char *err, size_t errlen)
{
    gq_backend_t *be = calloc(1, sizeof *be);
    s_cpu_t *self = calloc(1, sizeof *self);
    if (!be || !self) {
        gq_errf(err, errlen, "cpu: out of memory creating the backend");
        free(be);
        free(self);
        return NULL;
    }
    be->ops = &s_cpu_ops;
    be->impl = self;
    if (be->ops->init(be, cfg, err, errlen) != GQ_OK) {
        gq_backend_destroy(&be);
        return NULL;
    }
    return be;
}
