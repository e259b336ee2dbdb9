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
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend.h"
#include "cl_int.h"
#include "cl_sources.h"
#include "util.h"

#define S_MAX_STREAMS 16
#define S_MAX_DEVICES 64
#define S_MAX_PLATFORMS 16
#define S_LOCAL 256 /* work-group size of elementwise kernels, and of reductions on any device */
#define S_LOCAL_CPU 4096
#define S_POOL_CAP_MAX ((size_t)256 << 20)

static const gq_cl_family_t *const s_families[] = {
    &gq_cl_tensor_family,
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
    s_kernel_t *kernels; /* GQ_CL_MAX_KERNELS entries, each made on first use */
    int pending;         /* commands enqueued since the queue last drained */
};

struct gq_cl {
    uint64_t id; /* tags the thread-local stream pointer */
    cl_platform_id platform;
    cl_device_id device;
    cl_context ctx;
    cl_program prog;
    gq_device_info_t info;
    bool fp64;
    size_t local_elementwise; /* work-group size of elementwise kernels */
    gq_cl_pool_t *pool;
    pthread_mutex_t mu; /* streams */
    gq_cl_stream_t *streams[S_MAX_STREAMS];
    int nstreams;
    atomic_int lost;
    atomic_int fault_left[GQ_CL_FAULT_COUNT];
    int fault_code[GQ_CL_FAULT_COUNT];
    int fault_skip[GQ_CL_FAULT_COUNT];
    gq_cl_prog_origin_t origin;
    char cache_file[512];
};

static atomic_uint_fast64_t s_next_id = 1;
static _Thread_local uint64_t s_tls_id;
static _Thread_local gq_cl_stream_t *s_tls_stream;
static _Thread_local char s_tls_err[GQ_ERRLEN]; /* last_error */

bool gq_cl_fp64(const gq_cl_t *cl)
{
    return cl->fp64;
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

/* ---- discovery ---- */

typedef struct {
    cl_platform_id platform;
    cl_device_id device;
    int platform_index;
    char platform_name[128];
    cl_device_type type;
} s_dev_t;

static void s_str_info(cl_device_id d, cl_device_info what, char *out, size_t len)
{
    if (clGetDeviceInfo(d, what, len, out, NULL) != CL_SUCCESS)
        snprintf(out, len, "?");
    out[len - 1] = '\0';
}

/* Case-insensitive substring test. */
static bool s_contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] &&
               tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return true;
    }
    return n == 0;
}

static bool s_is_index(const char *s, long long *out)
{
    return s && *s && gq_parse_int(s, 0, 1 << 20, out) == 0;
}

/* Every device of every platform passing the platform filter, platform by platform. */
static int s_discover(const char *platform, s_dev_t *out, int max, char *err, size_t errlen)
{
    cl_platform_id plats[S_MAX_PLATFORMS];
    cl_uint np = 0;
    cl_int rc = clGetPlatformIDs(S_MAX_PLATFORMS, plats, &np);
    if (rc == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (rc == CL_SUCCESS && np == 0)) {
        gq_errf(err, errlen,
                "opencl: no OpenCL platform (install an ICD: the GPU vendor's driver, or "
                "pocl-opencl-icd)");
        return 0;
    }
    if (rc != CL_SUCCESS) {
        gq_cl_fail(err, errlen, NULL, "clGetPlatformIDs", rc);
        return 0;
    }
    if (np > S_MAX_PLATFORMS)
        np = S_MAX_PLATFORMS;
    long long pidx = -1;
    bool by_index = s_is_index(platform, &pidx);
    int n = 0, matched = 0;
    for (cl_uint p = 0; p < np; p++) {
        char pname[128] = "?", pvendor[128] = "?";
        clGetPlatformInfo(plats[p], CL_PLATFORM_NAME, sizeof pname, pname, NULL);
        clGetPlatformInfo(plats[p], CL_PLATFORM_VENDOR, sizeof pvendor, pvendor, NULL);
        pname[sizeof pname - 1] = pvendor[sizeof pvendor - 1] = '\0';
        if (platform && by_index && pidx != (long long)p)
            continue;
        if (platform && !by_index && !s_contains(pname, platform) && !s_contains(pvendor, platform))
            continue;
        matched++;
        cl_device_id devs[S_MAX_DEVICES];
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, S_MAX_DEVICES, devs, &nd) != CL_SUCCESS)
            continue;
        for (cl_uint d = 0; d < nd && d < S_MAX_DEVICES && n < max; d++, n++) {
            out[n].platform = plats[p];
            out[n].device = devs[d];
            out[n].platform_index = (int)p;
            snprintf(out[n].platform_name, sizeof out[n].platform_name, "%s", pname);
            out[n].type = 0;
            clGetDeviceInfo(devs[d], CL_DEVICE_TYPE, sizeof out[n].type, &out[n].type, NULL);
        }
    }
    if (!matched)
        gq_errf(err, errlen, "opencl: no platform matches --cl-platform '%s' (%u platforms)",
                platform, np);
    else if (!n)
        gq_errf(err, errlen, "opencl: the OpenCL platforms have no devices");
    return n;
}

static void s_fill_info(const s_dev_t *d, gq_device_info_t *info)
{
    memset(info, 0, sizeof *info);
    s_str_info(d->device, CL_DEVICE_NAME, info->name, sizeof info->name);
    s_str_info(d->device, CL_DEVICE_VENDOR, info->vendor, sizeof info->vendor);
    s_str_info(d->device, CL_DRIVER_VERSION, info->driver, sizeof info->driver);
    cl_ulong mem = 0;
    cl_uint cu = 0;
    clGetDeviceInfo(d->device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
    clGetDeviceInfo(d->device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    info->memory_bytes = mem;
    info->compute_units = cu;
    info->is_gpu = (d->type & CL_DEVICE_TYPE_GPU) != 0;
}

int gq_opencl_list(gq_device_info_t *out, int max, char *err, size_t errlen)
{
    s_dev_t devs[S_MAX_DEVICES];
    int n = s_discover(NULL, devs, S_MAX_DEVICES, err, errlen);
    for (int i = 0; i < n && i < max; i++)
        s_fill_info(&devs[i], &out[i]);
    return n < max ? n : max;
}

static const char *s_type_name(cl_device_type t)
{
    return t & CL_DEVICE_TYPE_GPU           ? "GPU"
           : t & CL_DEVICE_TYPE_ACCELERATOR ? "accelerator"
           : t & CL_DEVICE_TYPE_CPU         ? "CPU"
                                            : "other";
}

/* Picks a device per cfg; -1 with err set when none fits. */
static int s_choose(const gq_backend_config_t *cfg, const s_dev_t *devs, int n, char *err,
                    size_t errlen)
{
    int pick = -1;
    bool named = false;
    if (cfg && cfg->device_index >= 0) {
        if (cfg->device_index >= n) {
            gq_errf(err, errlen, "opencl: --cl-device %d: only %d devices (0..%d)",
                    cfg->device_index, n, n - 1);
            return -1;
        }
        pick = cfg->device_index;
        named = true;
    } else if (cfg && cfg->device_match && *cfg->device_match) {
        for (int i = 0; i < n && pick < 0; i++) {
            char name[128], vendor[128];
            s_str_info(devs[i].device, CL_DEVICE_NAME, name, sizeof name);
            s_str_info(devs[i].device, CL_DEVICE_VENDOR, vendor, sizeof vendor);
            if (s_contains(name, cfg->device_match) || s_contains(vendor, cfg->device_match))
                pick = i;
        }
        if (pick < 0) {
            gq_errf(err, errlen, "opencl: no device matches --cl-device '%s' (%d devices)",
                    cfg->device_match, n);
            return -1;
        }
        named = true;
    } else {
        static const cl_device_type pref[] = {CL_DEVICE_TYPE_GPU, CL_DEVICE_TYPE_ACCELERATOR,
                                              CL_DEVICE_TYPE_ALL};
        for (int t = 0; t < 3 && pick < 0; t++)
            for (int i = 0; i < n && pick < 0; i++)
                if (devs[i].type & pref[t])
                    pick = i;
    }
    if (pick >= 0 && !named && cfg && cfg->gpu_only &&
        !(devs[pick].type & (CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR))) {
        gq_errf(err, errlen,
                "opencl: only CPU devices (%s); not used unless asked for (--backends "
                "opencl,cpu or --cl-device)",
                devs[pick].platform_name);
        return -1;
    }
    return pick;
}

/* ---- program ---- */

/* The build log's first line with text, for an error message; the whole log goes to
 * the log at warn level. */
static void s_build_log(gq_cl_t *cl, char *err, size_t errlen)
{
    size_t n = 0;
    if (clGetProgramBuildInfo(cl->prog, cl->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) || n < 2)
        return;
    char *log = malloc(n + 1);
    if (!log)
        return;
    if (clGetProgramBuildInfo(cl->prog, cl->device, CL_PROGRAM_BUILD_LOG, n, log, NULL) ==
        CL_SUCCESS) {
        log[n] = '\0';
        GQ_WARN("opencl: build log for '%s':\n%s", cl->info.name, log);
        char *line = log + strspn(log, " \n\r\t");
        line[strcspn(line, "\n")] = '\0';
        size_t used = err ? strlen(err) : 0;
        if (err && used + 3 < errlen)
            snprintf(err + used, errlen - used, ": %s", line);
    }
    free(log);
}

static gq_status s_build(gq_cl_t *cl, const char *options, char *err, size_t errlen)
{
    cl_int rc = clBuildProgram(cl->prog, 1, &cl->device, options, NULL, NULL);
    if (rc != CL_SUCCESS) {
        gq_status st = gq_cl_fail(err, errlen, NULL, "clBuildProgram", rc);
        if (rc == CL_BUILD_PROGRAM_FAILURE)
            s_build_log(cl, err, errlen);
        return st;
    }
    return GQ_OK;
}

static gq_status s_from_source(gq_cl_t *cl, const char *src, size_t len, const char *options,
                               char *err, size_t errlen)
{
    cl_int rc;
    cl->prog = clCreateProgramWithSource(cl->ctx, 1, &src, &len, &rc);
    if (rc != CL_SUCCESS)
        return gq_cl_fail(err, errlen, NULL, "clCreateProgramWithSource", rc);
    return s_build(cl, options, err, errlen);
}

static gq_status s_from_binary(gq_cl_t *cl, const void *bin, size_t n, const char *options,
                               char *err, size_t errlen)
{
    cl_int rc, brc = CL_SUCCESS;
    const unsigned char *b = bin;
    cl->prog = clCreateProgramWithBinary(cl->ctx, 1, &cl->device, &n, &b, &brc, &rc);
    if (rc != CL_SUCCESS || brc != CL_SUCCESS)
        return gq_cl_fail(err, errlen, NULL, "clCreateProgramWithBinary",
                          rc != CL_SUCCESS ? rc : brc);
    return s_build(cl, options, err, errlen);
}

static gq_status s_binary_of(gq_cl_t *cl, void **bin, size_t *n)
{
    *bin = NULL;
    *n = 0;
    if (clGetProgramInfo(cl->prog, CL_PROGRAM_BINARY_SIZES, sizeof *n, n, NULL) != CL_SUCCESS ||
        *n == 0)
        return GQ_EBACKEND;
    unsigned char *b = malloc(*n);
    if (!b)
        return GQ_ENOMEM;
    if (clGetProgramInfo(cl->prog, CL_PROGRAM_BINARIES, sizeof b, &b, NULL) != CL_SUCCESS) {
        free(b);
        return GQ_EBACKEND;
    }
    *bin = b;
    return GQ_OK;
}

static void s_release_program(gq_cl_t *cl)
{
    if (cl->prog)
        clReleaseProgram(cl->prog);
    cl->prog = NULL;
}

/* Builds the embedded sources, through the program cache: a valid entry for this source,
 * options, platform, device and driver is loaded; an invalid one (corrupt, truncated,
 * for another key) or one the driver rejects is rebuilt from source and replaced. */
static gq_status s_program(gq_cl_t *cl, char *err, size_t errlen)
{
    size_t total = 1;
    for (int i = 0; i < gq_cl_nsources; i++)
        total += gq_cl_sources[i].len + 64;
    char *src = malloc(total), options[128];
    if (!src) {
        gq_errf(err, errlen, "opencl: out of memory for kernel sources");
        return GQ_ENOMEM;
    }
    size_t off = 0;
    for (int i = 0; i < gq_cl_nsources; i++) {
        off += (size_t)snprintf(src + off, total - off, "#line 1 \"%s\"\n", gq_cl_sources[i].name);
        memcpy(src + off, gq_cl_sources[i].text, gq_cl_sources[i].len);
        off += gq_cl_sources[i].len;
        src[off++] = '\n';
    }
    src[off] = '\0';
    /* No fast-math: results must match the CPU reference (NaN, inf, rounding). */
    snprintf(options, sizeof options, "-cl-std=CL1.2%s", cl->fp64 ? " -DGQ_FP64=1" : "");

    char pname[256] = "", pver[256] = "", dname[256] = "", dver[256] = "", drv[256] = "";
    clGetPlatformInfo(cl->platform, CL_PLATFORM_NAME, sizeof pname - 1, pname, NULL);
    clGetPlatformInfo(cl->platform, CL_PLATFORM_VERSION, sizeof pver - 1, pver, NULL);
    s_str_info(cl->device, CL_DEVICE_NAME, dname, sizeof dname);
    s_str_info(cl->device, CL_DEVICE_VERSION, dver, sizeof dver);
    s_str_info(cl->device, CL_DRIVER_VERSION, drv, sizeof drv);
    const char *parts[] = {src, options, pname, pver, dname, dver, drv};
    size_t lens[7];
    for (int i = 0; i < 7; i++)
        lens[i] = strlen(parts[i]);
    uint8_t key[GQ_CL_KEY_BYTES];
    gq_cl_cache_key(parts, lens, 7, key);

    char dir[512], why[GQ_ERRLEN] = "";
    void *bin = NULL;
    size_t nbin = 0;
    gq_status rc;
    gq_cl_cache_dir(dir, sizeof dir);
    cl->origin = GQ_CL_PROG_UNCACHED;
    if (dir[0]) {
        gq_cl_cache_path(dir, key, cl->cache_file, sizeof cl->cache_file);
        rc = gq_cl_cache_load(dir, key, &bin, &nbin, why, sizeof why);
        if (rc == GQ_OK) {
            if (s_from_binary(cl, bin, nbin, options, why, sizeof why) == GQ_OK) {
                cl->origin = GQ_CL_PROG_CACHED;
                free(bin);
                free(src);
                return GQ_OK;
            }
            s_release_program(cl);
        }
        free(bin);
        bin = NULL;
        if (rc != GQ_EIO) {
            GQ_WARN("opencl: program cache entry rejected, rebuilding: %s", why);
            cl->origin = GQ_CL_PROG_REBUILT;
        } else {
            cl->origin = GQ_CL_PROG_BUILT;
        }
    }
    uint64_t t0 = gq_now_us();
    rc = s_from_source(cl, src, off, options, err, errlen);
    free(src);
    if (rc)
        return rc;
    GQ_INFO("opencl: built kernels for '%s' in %.0f ms", cl->info.name,
            (double)(gq_now_us() - t0) / 1000.0);
    if (!dir[0])
        return GQ_OK;
    if (s_binary_of(cl, &bin, &nbin) != GQ_OK) {
        GQ_WARN("opencl: the driver gives no program binary: kernels are not cached");
        cl->origin = GQ_CL_PROG_UNCACHED;
    } else if (gq_cl_cache_store(dir, key, bin, nbin, why, sizeof why) != GQ_OK) {
        GQ_WARN("%s", why);
        cl->origin = GQ_CL_PROG_UNCACHED;
    }
    free(bin);
    return GQ_OK;
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
    k->k = clCreateKernel(cl->prog, name, &rc);
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

gq_status gq_cl_launch(gq_cl_t *cl, gq_cl_stream_t *st, int kid, const gq_cl_arg_t *args, int nargs,
                       size_t groups, size_t items, const char *op, char *err, size_t errlen)
{
    s_kernel_t *k = s_kernel(cl, st, kid, op, err, errlen);
    if (!k)
        return GQ_EBACKEND;
    for (int i = 0; i < nargs; i++) {
        cl_int rc = clSetKernelArg(k->k, (cl_uint)i, args[i].size, args[i].value);
        if (rc != CL_SUCCESS) {
            char call[64];
            snprintf(call, sizeof call, "clSetKernelArg(%d)", i);
            return s_fail(cl, err, errlen, op, call, rc);
        }
    }
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
    cl_int rc = s_inject(cl, GQ_CL_FAULT_LAUNCH);
    if (!rc)
        rc = clEnqueueNDRangeKernel(st->q, k->k, 1, NULL, &global, &local, 0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return s_fail(cl, err, errlen, op, "clEnqueueNDRangeKernel", rc);
    st->pending = 1;
    return GQ_OK;
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
        rc = gq_cl_pool_get(cl->pool, nbytes, &h);
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
        pthread_mutex_unlock(&st->mu);
    }
    gq_cl_pool_put(cl->pool, buf->handle, buf->nbytes);
    memset(buf, 0, sizeof *buf);
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
    if (!a || !a->op) {
        gq_errf(err, errlen, "opencl: run without a resolved op");
        return GQ_EINVAL;
    }
    const char *op = a->op->name;
    if (nin < 0 || nin > GQ_MAX_INPUTS || nout < 0 || nout > GQ_MAX_OUTPUTS) {
        gq_errf(err, errlen, "%s: opencl: bad buffer lists (%d inputs, %d outputs)", op, nin, nout);
        return GQ_EINVAL;
    }
    if (atomic_load(&cl->lost)) {
        gq_errf(err, errlen, "%s: opencl: device '%s' was lost", op, cl->info.name);
        return GQ_EDEVICE_LOST;
    }
    /* Like the CPU backend, the shape rule runs again: a kernel never reads or writes past
     * a buffer, whatever the caller passed. */
    gq_tdesc_t want[GQ_MAX_OUTPUTS];
    int nwant = 0;
    gq_status rc = gq_op_infer(a, in_desc, nin, want, &nwant, err, errlen);
    if (rc)
        return rc;
    if (nwant != nout) {
        gq_errf(err, errlen, "%s: opencl: %d output buffers given, the op has %d", op, nout, nwant);
        return GQ_EINVAL;
    }
    cl_mem min[GQ_MAX_INPUTS], mout[GQ_MAX_OUTPUTS];
    for (int i = 0; i < nin + nout; i++) {
        bool isout = i >= nin;
        int j = isout ? i - nin : i;
        const gq_tdesc_t *d = isout ? &out_desc[j] : &in_desc[j];
        gq_buffer_t *b = isout ? &out[j] : &in[j];
        char ds[64];
        if (isout && !gq_tdesc_equal(d, &want[j])) {
            char exp[64];
            gq_errf(err, errlen, "%s: opencl: output %d is %s, the shape rule gives %s", op, j,
                    gq_tdesc_str(d, ds, sizeof ds), gq_tdesc_str(&want[j], exp, sizeof exp));
            return GQ_EINVAL;
        }
        if (b->owner != be || !b->handle || b->nbytes < gq_tdesc_nbytes(d)) {
            gq_errf(err, errlen, "%s: opencl: %s %d %s is not an OpenCL buffer of %zu bytes", op,
                    isout ? "output" : "input", j, gq_tdesc_str(d, ds, sizeof ds),
                    gq_tdesc_nbytes(d));
            return GQ_EINVAL;
        }
        (isout ? mout : min)[j] = b->handle;
    }
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
    gq_cl_pool_destroy(&cl->pool);
    s_release_program(cl);
    if (cl->ctx)
        clReleaseContext(cl->ctx);
    pthread_mutex_destroy(&cl->mu);
    free(cl);
    be->impl = NULL;
}

static gq_status s_init(gq_backend_t *be, const gq_backend_config_t *cfg, char *err, size_t errlen)
{
    gq_cl_t *cl = be->impl;
    s_dev_t devs[S_MAX_DEVICES];
    int n = s_discover(cfg ? cfg->platform : NULL, devs, S_MAX_DEVICES, err, errlen);
    if (n == 0)
        return GQ_EUNSUPPORTED;
    int pick = s_choose(cfg, devs, n, err, errlen);
    for (int i = 0; i < n; i++) {
        gq_device_info_t di;
        s_fill_info(&devs[i], &di);
        GQ_INFO("opencl: device %d%s: %s (%s, %s, platform %d '%s', driver %s, %u CUs, %.1f GiB)",
                i, i == pick ? " [used]" : "", di.name, di.vendor, s_type_name(devs[i].type),
                devs[i].platform_index, devs[i].platform_name, di.driver, di.compute_units,
                (double)di.memory_bytes / (1u << 30));
    }
    if (pick < 0)
        return GQ_EUNSUPPORTED;
    cl->platform = devs[pick].platform;
    cl->device = devs[pick].device;
    s_fill_info(&devs[pick], &cl->info);
    char ext[4096] = "";
    clGetDeviceInfo(cl->device, CL_DEVICE_EXTENSIONS, sizeof ext - 1, ext, NULL);
    cl->fp64 = strstr(ext, "cl_khr_fp64") != NULL;
    /* Tests: the float-only kernels of devices without fp64, on one that has it. */
    const char *nofp64 = getenv("GQ_CL_NO_FP64");
    if (nofp64 && *nofp64 && strcmp(nofp64, "0"))
        cl->fp64 = false;
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
    gq_status st = s_program(cl, err, errlen);
    if (st)
        return st;
    size_t cap = cl->info.memory_bytes / 8;
    if (cap > S_POOL_CAP_MAX || cap == 0)
        cap = S_POOL_CAP_MAX;
    const char *mb = getenv("GQ_CL_POOL_MB");
    long long v;
    if (mb && !gq_parse_int(mb, 0, 1 << 20, &v))
        cap = (size_t)v << 20;
    if (!(cl->pool = gq_cl_pool_new(s_pool_make, s_pool_release, cl, cap))) {
        gq_errf(err, errlen, "opencl: out of memory for the buffer pool");
        return GQ_ENOMEM;
    }
    static const char *const origin[] = {"built, cached", "from cache",
                                         "cache entry invalid: rebuilt", "not cached"};
    GQ_INFO("opencl: using '%s' (fp64 %s), kernels %s, pool cap %zu MiB", cl->info.name,
            cl->fp64 ? "yes" : "no", origin[cl->origin], cap >> 20);
    return GQ_OK;
}

gq_status gq_backend_opencl_stats(gq_backend_t *be, gq_cl_stats_t *out)
{
    if (!be || !be->ops || strcmp(be->ops->name, "opencl") || !out)
        return GQ_EINVAL;
    gq_cl_t *cl = be->impl;
    memset(out, 0, sizeof *out);
    out->program = cl->origin;
    snprintf(out->cache_file, sizeof out->cache_file, "%s", cl->cache_file);
    out->fp64 = cl->fp64;
    pthread_mutex_lock(&cl->mu);
    out->streams = cl->nstreams;
    pthread_mutex_unlock(&cl->mu);
    gq_cl_pool_stats(cl->pool, &out->pool);
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

static const gq_backend_ops_t s_cl_ops = {
    .name = "opencl",
    .init = s_init,
    .supports_op = s_supports_op,
    .alloc = s_alloc,
    .free = s_free,
    .wrap_host = NULL,
    .upload = s_upload,
    .download = s_download,
    .run = s_run,
    .sync = s_sync,
    .devices = s_devices,
    .destroy = s_destroy,
    .last_error = s_last_error,
};

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
    be->ops = &s_cl_ops;
    be->impl = cl;
    if (be->ops->init(be, cfg, err, errlen) != GQ_OK) {
        gq_backend_destroy(&be);
        return NULL;
    }
    return be;
}
