/* The OpenCL backend: one device, its context, the kernels of kernels/ built once (or
 * loaded from the program cache), a buffer pool, and one command queue per calling thread.
 *
 * Threads: the worker's compute threads call the backend concurrently. Each thread gets
 * its own in-order queue and its own cl_kernel objects (a "stream"), found through a
 * thread-local pointer, so jobs on different threads never wait on one lock and overlap
 * on the device (uploads of one with kernels of another), and clSetKernelArg, the one
 * OpenCL call that is not thread-safe on a shared kernel, never races. A job's calls
 * (alloc, upload, run, download, free) come from the thread running it, so its commands
 * are ordered by its queue alone. Past S_MAX_STREAMS threads, streams are shared and
 * their mutex serializes the sharers. The buffer pool is shared by the streams: free
 * waits for the caller's queue before a buffer goes back, so another thread never gets
 * a buffer a queued command still uses. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend.h"
#include "cl_int.h"
#include "util.h"

#define S_MAX_STREAMS 16
#define S_LOCAL 256 /* work-group size of elementwise kernels, and of reductions on any device */
#define S_LOCAL_CPU 4096
#define S_POOL_CAP_MAX ((size_t)256 << 20)
#define S_MAX_SCRATCH 16

static const gq_cl_family_t *const s_families[] = {
    &gq_cl_tensor_family,
    &gq_cl_dsp_family,
};
#define S_NFAMILIES ((int)(sizeof s_families / sizeof s_families[0]))

typedef struct {
    cl_kernel k;
    size_t wg; /* CL_KERNEL_WORK_GROUP_SIZE */
} s_kernel_t;

struct gq_cl_stream {
    pthread_mutex_t mu;
    pthread_t owner;
    cl_command_queue q;
    s_kernel_t *kernels;           /* GQ_CL_MAX_KERNELS entries, each made on first use */
    int pending;                   /* commands enqueued since the queue last drained */
    cl_mem scratch[S_MAX_SCRATCH]; /* gq_cl_scratch buffers of the current run */
    size_t scratch_bytes[S_MAX_SCRATCH];
    int nscratch;
};

struct gq_cl {
    uint64_t id; /* tags the thread-local stream pointer */
    cl_platform_id platform;
    cl_device_id device;
    cl_context ctx;
    gq_cl_prog_t pg; /* the program: context, device, fp64 copied in before the build */
    gq_device_info_t info;
    bool fp64;
    size_t local_elementwise; /* work-group size of elementwise kernels */
    size_t local_mem;         /* CL_DEVICE_LOCAL_MEM_SIZE */
    bool fft_rows;            /* transforms: a work-item per row (CPU devices) */
    bool cpu_device;          /* CL_DEVICE_TYPE_CPU: device memory is host memory */
    void *fstate[GQ_CL_MAX_FAMILIES];
    pthread_mutex_t state_mu;
    gq_dev_pool_t *pool;
    pthread_mutex_t mu; /* streams */
    gq_cl_stream_t *streams[S_MAX_STREAMS];
    int nstreams;
    atomic_int lost;
    atomic_int fault_left[GQ_CL_FAULT_COUNT];
    int fault_code[GQ_CL_FAULT_COUNT];
    int fault_skip[GQ_CL_FAULT_COUNT];
};

static atomic_uint_fast64_t s_next_id = 1;
static _Thread_local uint64_t s_tls_id;
static _Thread_local gq_cl_stream_t *s_tls_stream;
static _Thread_local char s_tls_err[GQ_ERRLEN]; /* last_error */

bool gq_cl_fp64(const gq_cl_t *cl)
{
    return cl->fp64;
}

cl_context gq_cl_context(const gq_cl_t *cl)
{
    return cl->ctx;
}

size_t gq_cl_local_mem(const gq_cl_t *cl)
{
    return cl->local_mem;
}

bool gq_cl_fft_rows(const gq_cl_t *cl)
{
    return cl->fft_rows;
}

void **gq_cl_state(gq_cl_t *cl, int family)
{
    return &cl->fstate[family];
}

void gq_cl_state_lock(gq_cl_t *cl)
{
    pthread_mutex_lock(&cl->state_mu);
}

void gq_cl_state_unlock(gq_cl_t *cl)
{
    pthread_mutex_unlock(&cl->state_mu);
}

/* A failure that means the device is gone marks the backend lost: from then on it
 * declines every op, and the worker serves on the CPU. */
static gq_status s_fail(gq_cl_t *cl, char *err, size_t errlen, const char *op, const char *call,
                        cl_int code)
{
    gq_status rc = gq_cl_fail(err, errlen, op, call, code);
    if (rc == GQ_EDEVICE_LOST && !atomic_exchange(&cl->lost, 1))
        GQ_ERROR("opencl: device '%s' lost (%s): declining every op from now on", cl->info.name,
                 err ? err : "");
    return rc;
}

static int s_inject(gq_cl_t *cl, gq_cl_fault_t kind)
{
    if (atomic_load(&cl->fault_left[kind]) <= 0)
        return 0;
    if (cl->fault_skip[kind] > 0) {
        cl->fault_skip[kind]--;
        return 0;
    }
    if (atomic_fetch_sub(&cl->fault_left[kind], 1) <= 0)
        return 0;
    return cl->fault_code[kind];
}

/* ---- streams ---- */

static void s_stream_free(gq_cl_stream_t *st)
{
    if (!st)
        return;
    if (st->kernels)
        for (int i = 0; i < GQ_CL_MAX_KERNELS; i++)
            if (st->kernels[i].k)
                clReleaseKernel(st->kernels[i].k);
    free(st->kernels);
    if (st->q)
        clReleaseCommandQueue(st->q);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

/* The calling thread's stream, made on its first call. NULL with err set on failure. */
static gq_cl_stream_t *s_stream(gq_cl_t *cl, const char *op, char *err, size_t errlen)
{
    if (s_tls_id == cl->id)
        return s_tls_stream;
    pthread_t me = pthread_self();
    gq_cl_stream_t *st = NULL;
    pthread_mutex_lock(&cl->mu);
    for (int i = 0; i < cl->nstreams && !st; i++)
        if (pthread_equal(cl->streams[i]->owner, me))
            st = cl->streams[i];
    if (!st && cl->nstreams < S_MAX_STREAMS) {
        cl_int rc = CL_OUT_OF_HOST_MEMORY;
        st = calloc(1, sizeof *st);
        if (st) {
            pthread_mutex_init(&st->mu, NULL);
            st->owner = me;
            st->kernels = calloc(GQ_CL_MAX_KERNELS, sizeof *st->kernels);
            if (st->kernels)
                st->q = clCreateCommandQueue(cl->ctx, cl->device, 0, &rc);
        }
        if (!st || !st->kernels || rc != CL_SUCCESS) {
            s_stream_free(st);
            st = NULL;
            s_fail(cl, err, errlen, op, "clCreateCommandQueue", rc);
        } else {
            cl->streams[cl->nstreams++] = st;
        }
    } else if (!st) {
        /* More threads than streams: share, by thread, so each sticks to one queue. */
        uintptr_t h = (uintptr_t)me;
        st = cl->streams[(h ^ (h >> 12)) % S_MAX_STREAMS];
    }
    pthread_mutex_unlock(&cl->mu);
    if (st) {
        s_tls_id = cl->id;
        s_tls_stream = st;
    }
    return st;
}

static gq_status s_finish(gq_cl_t *cl, gq_cl_stream_t *st, const char *op, char *err, size_t errlen)
{
    if (!st->pending)
        return GQ_OK;
    cl_int rc = clFinish(st->q);
    st->pending = 0;
    return rc == CL_SUCCESS ? GQ_OK : s_fail(cl, err, errlen, op, "clFinish", rc);
}

static s_kernel_t *s_kernel(gq_cl_t *cl, gq_cl_stream_t *st, int kid, const char *op, char *err,
                            size_t errlen)
{
    if (kid < 0 || kid >= GQ_CL_MAX_KERNELS || (kid >> GQ_CL_KID_BITS) >= S_NFAMILIES) {
        gq_errf(err, errlen, "%s: opencl: bad kernel id %d", op, kid);
        return NULL;
    }
    s_kernel_t *k = &st->kernels[kid];
    if (k->k)
        return k;
    char name[96];
    s_families[kid >> GQ_CL_KID_BITS]->kernel_name(kid & ((1 << GQ_CL_KID_BITS) - 1), name,
                                                   sizeof name);
    cl_int rc;
    k->k = clCreateKernel(cl->pg.prog, name, &rc);
    if (rc != CL_SUCCESS) {
        k->k = NULL;
        char call[128];
        snprintf(call, sizeof call, "clCreateKernel(%s)", name);
        s_fail(cl, err, errlen, op, call, rc);
        return NULL;
    }
    k->wg = S_LOCAL;
    size_t wg = 0;
    if (clGetKernelWorkGroupInfo(k->k, cl->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof wg, &wg,
                                 NULL) == CL_SUCCESS &&
        wg > 0 && wg < k->wg)
        k->wg = wg;
    return k;
}

/* The kernel of kid with its arguments set; NULL with err set on failure. */
static s_kernel_t *s_kernel_args(gq_cl_t *cl, gq_cl_stream_t *st, int kid, const gq_cl_arg_t *args,
                                 int nargs, const char *op, char *err, size_t errlen)
{
    s_kernel_t *k = s_kernel(cl, st, kid, op, err, errlen);
    if (!k)
        return NULL;
    for (int i = 0; i < nargs; i++) {
        cl_int rc = clSetKernelArg(k->k, (cl_uint)i, args[i].size, args[i].value);
        if (rc != CL_SUCCESS) {
            char call[64];
            snprintf(call, sizeof call, "clSetKernelArg(%d)", i);
            s_fail(cl, err, errlen, op, call, rc);
            return NULL;
        }
    }
    return k;
}

static gq_status s_enqueue_at(gq_cl_t *cl, gq_cl_stream_t *st, s_kernel_t *k, size_t offset,
                              size_t global, size_t local, const char *op, char *err, size_t errlen)
{
    cl_int rc = s_inject(cl, GQ_CL_FAULT_LAUNCH);
    if (!rc)
        rc = clEnqueueNDRangeKernel(st->q, k->k, 1, offset ? &offset : NULL, &global, &local, 0,
                                    NULL, NULL);
    if (rc != CL_SUCCESS)
        return s_fail(cl, err, errlen, op, "clEnqueueNDRangeKernel", rc);
    st->pending = 1;
    return GQ_OK;
}

static gq_status s_enqueue(gq_cl_t *cl, gq_cl_stream_t *st, s_kernel_t *k, size_t global,
                           size_t local, const char *op, char *err, size_t errlen)
{
    return s_enqueue_at(cl, st, k, 0, global, local, op, err, errlen);
}

gq_status gq_cl_launch_ew(gq_cl_t *cl, gq_cl_stream_t *st, int kid, const gq_cl_arg_t *args,
                          int nargs, size_t items, const char *op, char *err, size_t errlen)
{
    s_kernel_t *k = s_kernel_args(cl, st, kid, args, nargs, op, err, errlen);
    if (!k || !items)
        return k ? GQ_OK : GQ_EBACKEND;
    size_t local = 1;
    while (local * 2 <= k->wg && local * 2 <= cl->local_elementwise)
        local *= 2;
    size_t body = items / local * local;
    gq_status rc = GQ_OK;
    for (cl_int chk = 0; chk < 2 && !rc; chk++) {
        if (chk ? body == items : body == 0)
            continue;
        cl_int r = clSetKernelArg(k->k, (cl_uint)nargs, sizeof chk, &chk);
        if (r != CL_SUCCESS)
            return s_fail(cl, err, errlen, op, "clSetKernelArg(chk)", r);
        rc = chk ? s_enqueue_at(cl, st, k, body, local, local, op, err, errlen)
                 : s_enqueue(cl, st, k, body, local, op, err, errlen);
    }
    return rc;
}

gq_status gq_cl_launch_local(gq_cl_t *cl, gq_cl_stream_t *st, int kid, const gq_cl_arg_t *args,
                             int nargs, size_t groups, size_t local, const char *op, char *err,
                             size_t errlen)
{
    s_kernel_t *k = s_kernel_args(cl, st, kid, args, nargs, op, err, errlen);
    if (!k)
        return GQ_EBACKEND;
    if (!groups)
        return GQ_OK;
    size_t l = 1;
    while (l * 2 <= local && l * 2 <= k->wg)
        l *= 2;
    return s_enqueue(cl, st, k, groups * l, l, op, err, errlen);
}

gq_status gq_cl_launch(gq_cl_t *cl, gq_cl_stream_t *st, int kid, const gq_cl_arg_t *args, int nargs,
                       size_t groups, size_t items, const char *op, char *err, size_t errlen)
{
    s_kernel_t *k = s_kernel_args(cl, st, kid, args, nargs, op, err, errlen);
    if (!k)
        return GQ_EBACKEND;
    /* Elementwise work-groups: 256 on GPUs; on CPU devices (PoCL) a work-group is a
     * loop the driver vectorises and schedules per group, so bigger ones cost less. */
    size_t cap = groups ? S_LOCAL : cl->local_elementwise;
    size_t local = 1;
    while (local * 2 <= k->wg && local * 2 <= cap)
        local *= 2;
    size_t global;
    if (groups) {
        while (local > 1 && local / 2 >= items)
            local /= 2;
        global = groups * local;
    } else {
        if (!items)
            return GQ_OK;
        global = (items + local - 1) / local * local;
    }
    return s_enqueue(cl, st, k, global, local, op, err, errlen);
}

gq_status gq_cl_scratch(gq_cl_t *cl, gq_cl_stream_t *st, size_t nbytes, cl_mem *out, const char *op,
                        char *err, size_t errlen)
{
    *out = NULL;
    if (st->nscratch == S_MAX_SCRATCH) {
        gq_errf(err, errlen, "%s: opencl: more than %d scratch buffers in one run", op,
                S_MAX_SCRATCH);
        return GQ_EBACKEND;
    }
    void *h = NULL;
    size_t n = nbytes ? nbytes : 1;
    int rc = s_inject(cl, GQ_CL_FAULT_ALLOC);
    if (!rc)
        rc = gq_dev_pool_get(cl->pool, n, &h);
    if (rc) {
        gq_status s = s_fail(cl, err, errlen, op, "clCreateBuffer", rc);
        size_t used = strlen(err);
        if (used + 2 < errlen)
            snprintf(err + used, errlen - used, " (%zu bytes of scratch)", n);
        return s;
    }
    st->scratch[st->nscratch] = h;
    st->scratch_bytes[st->nscratch++] = n;
    *out = h;
    return GQ_OK;
}

/* Gives the run's scratch buffers back, once no queued command uses them. */
static gq_status s_scratch_release(gq_cl_t *cl, gq_cl_stream_t *st, const char *op, char *err,
                                   size_t errlen)
{
    if (!st->nscratch)
        return GQ_OK;
    gq_status rc = s_finish(cl, st, op, err, errlen);
    for (int i = 0; i < st->nscratch; i++)
        gq_dev_pool_put(cl->pool, st->scratch[i], st->scratch_bytes[i]);
    st->nscratch = 0;
    return rc;
}

static gq_status s_xfer(gq_cl_t *cl, gq_cl_stream_t *st, cl_mem m, void *host, size_t nbytes,
                        bool write, const char *op, char *err, size_t errlen)
{
    if (!nbytes)
        return GQ_OK;
    cl_int rc = write ? clEnqueueWriteBuffer(st->q, m, CL_TRUE, 0, nbytes, host, 0, NULL, NULL)
                      : clEnqueueReadBuffer(st->q, m, CL_TRUE, 0, nbytes, host, 0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return s_fail(cl, err, errlen, op, write ? "clEnqueueWriteBuffer" : "clEnqueueReadBuffer",
                      rc);
    st->pending = 0;
    return GQ_OK;
}

gq_status gq_cl_write(gq_cl_t *cl, gq_cl_stream_t *st, cl_mem dst, const void *src, size_t nbytes,
                      const char *op, char *err, size_t errlen)
{
    return s_xfer(cl, st, dst, (void *)src, nbytes, true, op, err, errlen);
}

gq_status gq_cl_read(gq_cl_t *cl, gq_cl_stream_t *st, void *dst, cl_mem src, size_t nbytes,
                     const char *op, char *err, size_t errlen)
{
    return s_xfer(cl, st, src, dst, nbytes, false, op, err, errlen);
}

gq_status gq_cl_copy(gq_cl_t *cl, gq_cl_stream_t *st, cl_mem src, cl_mem dst, size_t nbytes,
                     const char *op, char *err, size_t errlen)
{
    if (!nbytes)
        return GQ_OK;
    cl_int rc = clEnqueueCopyBuffer(st->q, src, dst, 0, 0, nbytes, 0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return s_fail(cl, err, errlen, op, "clEnqueueCopyBuffer", rc);
    st->pending = 1;
    return GQ_OK;
}

/* ---- backend ops ---- */

static int s_pool_make(void *ctx, size_t nbytes, void **handle)
{
    gq_cl_t *cl = ctx;
    cl_int crc;
    cl_mem m = clCreateBuffer(cl->ctx, CL_MEM_READ_WRITE, nbytes, NULL, &crc);
    if (crc != CL_SUCCESS)
        return crc;
    *handle = m;
    return 0;
}

static void s_pool_release(void *ctx, void *handle)
{
    (void)ctx;
    clReleaseMemObject(handle);
}

static bool s_supports_op(gq_backend_t *be, const gq_args_t *a, const gq_tdesc_t *in, int nin)
{
    gq_cl_t *cl = be->impl;
    if (!a || !a->op || atomic_load(&cl->lost))
        return false;
    for (int f = 0; f < S_NFAMILIES; f++)
        if (!strncmp(a->op->name, s_families[f]->prefix, strlen(s_families[f]->prefix)))
            return s_families[f]->supports(cl, a, in, nin);
    return false;
}

static gq_status s_alloc(gq_backend_t *be, size_t nbytes, gq_buffer_t *out)
{
    gq_cl_t *cl = be->impl;
    memset(out, 0, sizeof *out);
    if (atomic_load(&cl->lost)) {
        gq_errf(s_tls_err, sizeof s_tls_err, "opencl: device '%s' was lost", cl->info.name);
        return GQ_EDEVICE_LOST;
    }
    void *h = NULL;
    int rc = s_inject(cl, GQ_CL_FAULT_ALLOC);
    if (!rc)
        rc = gq_dev_pool_get(cl->pool, nbytes, &h);
    if (rc) {
        char err[GQ_ERRLEN];
        gq_status st = s_fail(cl, err, sizeof err, NULL, "clCreateBuffer", rc);
        gq_errf(s_tls_err, sizeof s_tls_err, "%s (%zu bytes)", err, nbytes);
        GQ_WARN("%s", s_tls_err);
        return st;
    }
    out->owner = be;
    out->handle = h;
    out->nbytes = nbytes;
    return GQ_OK;
}

/* A wrapped buffer's host memory is current once the buffer has been mapped (the OpenCL
 * rule for CL_MEM_USE_HOST_PTR; on CPU devices the map copies nothing). */
static void s_sync_host(gq_cl_t *cl, gq_cl_stream_t *st, gq_buffer_t *buf)
{
    cl_int rc;
    void *p = clEnqueueMapBuffer(st->q, buf->handle, CL_TRUE, CL_MAP_READ, 0, buf->nbytes, 0, NULL,
                                 NULL, &rc);
    if (rc == CL_SUCCESS)
        rc = clEnqueueUnmapMemObject(st->q, buf->handle, p, 0, NULL, NULL);
    if (rc == CL_SUCCESS)
        rc = clFinish(st->q);
    if (rc != CL_SUCCESS) {
        s_fail(cl, s_tls_err, sizeof s_tls_err, NULL, "clEnqueueMapBuffer", rc);
        GQ_WARN("%s (wrapped host buffer of %zu bytes)", s_tls_err, buf->nbytes);
    }
}

static void s_free(gq_backend_t *be, gq_buffer_t *buf)
{
    gq_cl_t *cl = be->impl;
    if (!buf || !buf->handle)
        return;
    char err[GQ_ERRLEN];
    gq_cl_stream_t *st = s_stream(cl, NULL, err, sizeof err);
    if (st) {
        pthread_mutex_lock(&st->mu);
        s_finish(cl, st, NULL, err, sizeof err);
        if (buf->host)
            s_sync_host(cl, st, buf);
        pthread_mutex_unlock(&st->mu);
    }
    if (buf->host)
        clReleaseMemObject(buf->handle);
    else
        gq_dev_pool_put(cl->pool, buf->handle, buf->nbytes);
    memset(buf, 0, sizeof *buf);
}

/* Zero-copy (GQ_CL_ZERO_COPY=1 on a CPU device): the caller's memory as the buffer
 * (CL_MEM_USE_HOST_PTR); free maps it so that the host sees what kernels wrote. An empty
 * tensor gets a pooled byte (OpenCL has no empty buffers). */
static gq_status s_wrap_host(gq_backend_t *be, void *data, size_t nbytes, gq_buffer_t *out)
{
    gq_cl_t *cl = be->impl;
    if (!nbytes || !data)
        return s_alloc(be, 1, out);
    memset(out, 0, sizeof *out);
    cl_int rc;
    cl_mem m = clCreateBuffer(cl->ctx, CL_MEM_READ_WRITE | CL_MEM_USE_HOST_PTR, nbytes, data, &rc);
    if (rc != CL_SUCCESS) {
        gq_status st = s_fail(cl, s_tls_err, sizeof s_tls_err, NULL, "clCreateBuffer", rc);
        GQ_WARN("%s (wrapping %zu bytes of host memory)", s_tls_err, nbytes);
        return st;
    }
    out->owner = be;
    out->handle = m;
    out->host = data;
    out->nbytes = nbytes;
    return GQ_OK;
}

static gq_status s_transfer(gq_backend_t *be, cl_mem m, void *host, size_t off_nbytes, bool write,
                            size_t nbytes)
{
    gq_cl_t *cl = be->impl;
    char err[GQ_ERRLEN];
    if (!nbytes)
        return GQ_OK;
    if (!m || !host || nbytes > off_nbytes)
        return GQ_EINVAL;
    gq_cl_stream_t *st = s_stream(cl, NULL, err, sizeof err);
    if (!st)
        return GQ_EBACKEND;
    pthread_mutex_lock(&st->mu);
    /* Blocking: the caller may free or reuse host memory on return, and a blocking
     * command in an in-order queue also drains what came before it. */
    cl_int rc = write ? clEnqueueWriteBuffer(st->q, m, CL_TRUE, 0, nbytes, host, 0, NULL, NULL)
                      : clEnqueueReadBuffer(st->q, m, CL_TRUE, 0, nbytes, host, 0, NULL, NULL);
    if (rc == CL_SUCCESS)
        st->pending = 0;
    pthread_mutex_unlock(&st->mu);
    if (rc != CL_SUCCESS) {
        gq_status s = s_fail(cl, err, sizeof err, NULL,
                             write ? "clEnqueueWriteBuffer" : "clEnqueueReadBuffer", rc);
        gq_errf(s_tls_err, sizeof s_tls_err, "%s (%zu bytes)", err, nbytes);
        GQ_WARN("%s", s_tls_err);
        return s;
    }
    return GQ_OK;
}

static gq_status s_upload(gq_backend_t *be, gq_buffer_t *dst, const void *src, size_t nbytes)
{
    if (!dst)
        return GQ_EINVAL;
    return s_transfer(be, dst->handle, (void *)src, dst->nbytes, true, nbytes);
}

static gq_status s_download(gq_backend_t *be, void *dst, const gq_buffer_t *src, size_t nbytes)
{
    if (!src)
        return GQ_EINVAL;
    return s_transfer(be, src->handle, dst, src->nbytes, false, nbytes);
}

static gq_status s_run(gq_backend_t *be, const gq_args_t *a, const gq_tdesc_t *in_desc,
                       gq_buffer_t *in, int nin, const gq_tdesc_t *out_desc, gq_buffer_t *out,
                       int nout, char *err, size_t errlen)
{
    gq_cl_t *cl = be->impl;
    void *hin[GQ_MAX_INPUTS], *hout[GQ_MAX_OUTPUTS];
    gq_status rc =
        gq_backend_check_run(be, a, in_desc, in, nin, out_desc, out, nout, hin, hout, err, errlen);
    if (rc)
        return rc;
    const char *op = a->op->name;
    if (atomic_load(&cl->lost)) {
        gq_errf(err, errlen, "%s: opencl: device '%s' was lost", op, cl->info.name);
        return GQ_EDEVICE_LOST;
    }
    cl_mem min[GQ_MAX_INPUTS], mout[GQ_MAX_OUTPUTS];
    for (int i = 0; i < nin; i++)
        min[i] = hin[i];
    for (int i = 0; i < nout; i++)
        mout[i] = hout[i];
    const gq_cl_family_t *fam = NULL;
    int f = 0;
    for (; f < S_NFAMILIES && !fam; f++)
        if (!strncmp(op, s_families[f]->prefix, strlen(s_families[f]->prefix)))
            fam = s_families[f];
    if (!fam || !fam->supports(cl, a, in_desc, nin)) {
        gq_errf(err, errlen, "%s: opencl: no kernel for these inputs", op);
        return GQ_EUNSUPPORTED;
    }
    gq_cl_stream_t *st = s_stream(cl, op, err, errlen);
    if (!st)
        return GQ_EBACKEND;
    pthread_mutex_lock(&st->mu);
    rc = fam->run(cl, st, f - 1, a, in_desc, min, nin, out_desc, mout, nout, err, errlen);
    char err2[GQ_ERRLEN];
    gq_status rc2 = s_scratch_release(cl, st, op, err2, sizeof err2);
    if (!rc && rc2) {
        rc = rc2;
        gq_errf(err, errlen, "%s", err2);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static gq_status s_sync(gq_backend_t *be)
{
    gq_cl_t *cl = be->impl;
    char err[GQ_ERRLEN];
    gq_cl_stream_t *st = s_stream(cl, NULL, err, sizeof err);
    if (!st)
        return GQ_EBACKEND;
    pthread_mutex_lock(&st->mu);
    gq_status rc = s_finish(cl, st, NULL, err, sizeof err);
    pthread_mutex_unlock(&st->mu);
    if (rc) {
        gq_errf(s_tls_err, sizeof s_tls_err, "%s", err);
        GQ_WARN("%s", err);
    }
    return rc;
}

static const char *s_last_error(gq_backend_t *be)
{
    (void)be;
    return s_tls_err;
}

static int s_devices(gq_backend_t *be, gq_device_info_t *out, int max)
{
    if (!be || !out || max < 1)
        return 0;
    out[0] = ((gq_cl_t *)be->impl)->info;
    return 1;
}

static void s_destroy(gq_backend_t *be)
{
    gq_cl_t *cl = be->impl;
    if (!cl)
        return;
    for (int i = 0; i < cl->nstreams; i++) {
        if (!atomic_load(&cl->lost))
            clFinish(cl->streams[i]->q);
        s_stream_free(cl->streams[i]);
    }
    for (int f = 0; f < S_NFAMILIES; f++)
        if (cl->fstate[f] && s_families[f]->destroy_state)
            s_families[f]->destroy_state(cl, cl->fstate[f]);
    gq_dev_pool_destroy(&cl->pool);
    gq_cl_program_release(&cl->pg);
    if (cl->ctx)
        clReleaseContext(cl->ctx);
    pthread_mutex_destroy(&cl->mu);
    pthread_mutex_destroy(&cl->state_mu);
    free(cl);
    be->impl = NULL;
}

static gq_status s_init(gq_backend_t *be, const gq_backend_config_t *cfg, char *err, size_t errlen)
{
    gq_cl_t *cl = be->impl;
    gq_cl_dev_t devs[GQ_CL_MAX_DEVICES];
    int n = gq_cl_discover(cfg ? cfg->platform : NULL, devs, GQ_CL_MAX_DEVICES, err, errlen);
    if (n == 0)
        return GQ_EUNSUPPORTED;
    int pick = gq_cl_choose(cfg, devs, n, err, errlen);
    for (int i = 0; i < n; i++) {
        gq_device_info_t di;
        gq_cl_fill_info(&devs[i], &di);
        GQ_INFO("opencl: device %d%s: %s (%s, %s, platform %d '%s', driver %s, %u CUs, %.1f GiB)",
                i, i == pick ? " [used]" : "", di.name, di.vendor, gq_cl_type_name(devs[i].type),
                devs[i].platform_index, devs[i].platform_name, di.driver, di.compute_units,
                (double)di.memory_bytes / (1u << 30));
    }
    if (pick < 0)
        return GQ_EUNSUPPORTED;
    cl->platform = devs[pick].platform;
    cl->device = devs[pick].device;
    gq_cl_fill_info(&devs[pick], &cl->info);
    char ext[4096] = "";
    clGetDeviceInfo(cl->device, CL_DEVICE_EXTENSIONS, sizeof ext - 1, ext, NULL);
    cl->fp64 = strstr(ext, "cl_khr_fp64") != NULL;
    /* Tests: the float-only kernels of devices without fp64, on one that has it. */
    const char *nofp64 = getenv("GQ_CL_NO_FP64");
    if (nofp64 && *nofp64 && strcmp(nofp64, "0"))
        cl->fp64 = false;
    cl_ulong lmem = 0;
    clGetDeviceInfo(cl->device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lmem, &lmem, NULL);
    cl->local_mem = (size_t)lmem;
    cl->cpu_device = (devs[pick].type & CL_DEVICE_TYPE_CPU) != 0;
    cl->fft_rows = cl->cpu_device;
    const char *fp = getenv("GQ_CL_FFT");
    if (fp && !strcmp(fp, "rows"))
        cl->fft_rows = true;
    else if (fp && !strcmp(fp, "groups"))
        cl->fft_rows = false;
    cl->local_elementwise = S_LOCAL;
    if (devs[pick].type & CL_DEVICE_TYPE_CPU)
        cl->local_elementwise = S_LOCAL_CPU;
    const char *lw = getenv("GQ_CL_LOCAL");
    long long lv;
    if (lw && !gq_parse_int(lw, 1, 1 << 16, &lv))
        cl->local_elementwise = (size_t)lv;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)cl->platform, 0};
    cl_int rc;
    cl->ctx = clCreateContext(props, 1, &cl->device, NULL, NULL, &rc);
    if (rc != CL_SUCCESS)
        return gq_cl_fail(err, errlen, NULL, "clCreateContext", rc);
    cl->pg.platform = cl->platform;
    cl->pg.device = cl->device;
    cl->pg.ctx = cl->ctx;
    cl->pg.device_name = cl->info.name;
    cl->pg.fp64 = cl->fp64;
    gq_status st = gq_cl_program_build(&cl->pg, err, errlen);
    if (st)
        return st;
    size_t cap = cl->info.memory_bytes / 8;
    if (cap > S_POOL_CAP_MAX || cap == 0)
        cap = S_POOL_CAP_MAX;
    const char *mb = getenv("GQ_CL_POOL_MB");
    long long v;
    if (mb && !gq_parse_int(mb, 0, 1 << 20, &v))
        cap = (size_t)v << 20;
    if (!(cl->pool = gq_dev_pool_new(s_pool_make, s_pool_release, cl, cap))) {
        gq_errf(err, errlen, "opencl: out of memory for the buffer pool");
        return GQ_ENOMEM;
    }
    static const char *const origin[] = {"built, cached", "from cache",
                                         "cache entry invalid: rebuilt", "not cached"};
    GQ_INFO("opencl: using '%s' (fp64 %s), kernels %s, pool cap %zu MiB", cl->info.name,
            cl->fp64 ? "yes" : "no", origin[cl->pg.origin], cap >> 20);
    return GQ_OK;
}

gq_status gq_backend_opencl_stats(gq_backend_t *be, gq_cl_stats_t *out)
{
    if (!be || !be->ops || strcmp(be->ops->name, "opencl") || !out)
        return GQ_EINVAL;
    gq_cl_t *cl = be->impl;
    memset(out, 0, sizeof *out);
    out->program = cl->pg.origin;
    snprintf(out->cache_file, sizeof out->cache_file, "%s", cl->pg.cache_file);
    out->fp64 = cl->fp64;
    out->fft_rows = cl->fft_rows;
    pthread_mutex_lock(&cl->mu);
    out->streams = cl->nstreams;
    pthread_mutex_unlock(&cl->mu);
    gq_dev_pool_stats(cl->pool, &out->pool);
    return GQ_OK;
}

void gq_backend_opencl_inject(gq_backend_t *be, gq_cl_fault_t kind, int code, int after, int count)
{
    if (!be || !be->ops || strcmp(be->ops->name, "opencl") || kind < 0 || kind >= GQ_CL_FAULT_COUNT)
        return;
    gq_cl_t *cl = be->impl;
    cl->fault_code[kind] = code;
    cl->fault_skip[kind] = after;
    atomic_store(&cl->fault_left[kind], count);
}

#define S_CL_OPS(WRAP)                                                                             \
    {                                                                                              \
        .name = "opencl", .init = s_init, .supports_op = s_supports_op, .alloc = s_alloc,          \
        .free = s_free, .wrap_host = WRAP, .upload = s_upload, .download = s_download,             \
        .run = s_run, .sync = s_sync, .devices = s_devices, .destroy = s_destroy,                  \
        .last_error = s_last_error                                                                 \
    }
static const gq_backend_ops_t s_cl_ops = S_CL_OPS(NULL);
/* The same with zero-copy staging of host tensors: opt-in (GQ_CL_ZERO_COPY=1), CPU
 * devices only, where device memory is host memory (docs/opencl.md). */
static const gq_backend_ops_t s_cl_ops_zc = S_CL_OPS(s_wrap_host);

gq_backend_t *gq_backend_opencl_new(const gq_backend_config_t *cfg, char *err, size_t errlen)
{
    gq_backend_t *be = calloc(1, sizeof *be);
    gq_cl_t *cl = calloc(1, sizeof *cl);
    if (!be || !cl) {
        gq_errf(err, errlen, "opencl: out of memory creating the backend");
        free(be);
        free(cl);
        return NULL;
    }
    cl->id = atomic_fetch_add(&s_next_id, 1);
    pthread_mutex_init(&cl->mu, NULL);
    pthread_mutex_init(&cl->state_mu, NULL);
    be->ops = &s_cl_ops;
    be->impl = cl;
    if (be->ops->init(be, cfg, err, errlen) != GQ_OK) {
        gq_backend_destroy(&be);
        return NULL;
    }
    const char *zc = getenv("GQ_CL_ZERO_COPY");
    if (zc && !strcmp(zc, "1") && cl->cpu_device) {
        be->ops = &s_cl_ops_zc;
        GQ_INFO("opencl: zero-copy staging of host tensors (GQ_CL_ZERO_COPY=1)");
    }
    return be;
}
