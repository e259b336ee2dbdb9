/* The backend's OpenCL program: the embedded kernels/ sources built for one device, through
 * the on-disk program cache (dev_cache.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cl_int.h"
#include "cl_sources.h"
#include "util.h"

const gq_dev_cache_kind_t gq_cl_cache_kind = {
    .magic = "GQCLPRG",
    .env = "GQ_CL_CACHE_DIR",
    .subdir = "cl",
    .backend = "opencl",
    .what = "program cache",
};

/* The build log's first line with text, for an error message; the whole log goes to
 * the log at warn level. */
static void s_build_log(gq_cl_prog_t *cl, char *err, size_t errlen)
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
        GQ_WARN("opencl: build log for '%s':\n%s", cl->device_name, log);
        char *line = log + strspn(log, " \n\r\t");
        line[strcspn(line, "\n")] = '\0';
        size_t used = err ? strlen(err) : 0;
        if (err && used + 3 < errlen)
            snprintf(err + used, errlen - used, ": %s", line);
    }
    free(log);
}

static gq_status s_build(gq_cl_prog_t *cl, const char *options, char *err, size_t errlen)
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

static gq_status s_from_source(gq_cl_prog_t *cl, const char *src, size_t len, const char *options,
                               char *err, size_t errlen)
{
    cl_int rc;
    cl->prog = clCreateProgramWithSource(cl->ctx, 1, &src, &len, &rc);
    if (rc != CL_SUCCESS)
        return gq_cl_fail(err, errlen, NULL, "clCreateProgramWithSource", rc);
    return s_build(cl, options, err, errlen);
}

static gq_status s_from_binary(gq_cl_prog_t *cl, const void *bin, size_t n, const char *options,
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

static gq_status s_binary_of(gq_cl_prog_t *cl, void **bin, size_t *n)
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

void gq_cl_program_release(gq_cl_prog_t *cl)
{
    if (cl->prog)
        clReleaseProgram(cl->prog);
    cl->prog = NULL;
}

/* Builds the embedded sources, through the program cache: a valid entry for this source,
 * options, platform, device and driver is loaded; an invalid one (corrupt, truncated,
 * for another key) or one the driver rejects is rebuilt from source and replaced. */
gq_status gq_cl_program_build(gq_cl_prog_t *cl, char *err, size_t errlen)
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
    gq_cl_str_info(cl->device, CL_DEVICE_NAME, dname, sizeof dname);
    gq_cl_str_info(cl->device, CL_DEVICE_VERSION, dver, sizeof dver);
    gq_cl_str_info(cl->device, CL_DRIVER_VERSION, drv, sizeof drv);
    const char *parts[] = {src, options, pname, pver, dname, dver, drv};
    size_t lens[7];
    for (int i = 0; i < 7; i++)
        lens[i] = strlen(parts[i]);
    uint8_t key[GQ_DEV_KEY_BYTES];
    gq_dev_cache_key(parts, lens, 7, key);

    char dir[512], why[GQ_ERRLEN] = "";
    void *bin = NULL;
    size_t nbin = 0;
    gq_status rc;
    gq_dev_cache_dir(&gq_cl_cache_kind, dir, sizeof dir);
    cl->origin = GQ_CL_PROG_UNCACHED;
    if (dir[0]) {
        gq_dev_cache_path(dir, key, cl->cache_file, sizeof cl->cache_file);
        rc = gq_dev_cache_load(&gq_cl_cache_kind, dir, key, &bin, &nbin, why, sizeof why);
        if (rc == GQ_OK) {
            if (s_from_binary(cl, bin, nbin, options, why, sizeof why) == GQ_OK) {
                cl->origin = GQ_CL_PROG_CACHED;
                free(bin);
                free(src);
                return GQ_OK;
            }
            gq_cl_program_release(cl);
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
    GQ_INFO("opencl: built kernels for '%s' in %.0f ms", cl->device_name,
            (double)(gq_now_us() - t0) / 1000.0);
    if (!dir[0])
        return GQ_OK;
    if (s_binary_of(cl, &bin, &nbin) != GQ_OK) {
        GQ_WARN("opencl: the driver gives no program binary: kernels are not cached");
        cl->origin = GQ_CL_PROG_UNCACHED;
    } else if (gq_dev_cache_store(&gq_cl_cache_kind, dir, key, bin, nbin, why, sizeof why) !=
               GQ_OK) {
        GQ_WARN("%s", why);
        cl->origin = GQ_CL_PROG_UNCACHED;
    }
    free(bin);
    return GQ_OK;
}
