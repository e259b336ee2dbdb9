/* Internals shared by the OpenCL backend's files: the launch API kernel families use, and
 * the family table. The backend struct itself stays in cl_backend.c. */
#ifndef GQ_CL_INT_H
#define GQ_CL_INT_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>
#include <stdbool.h>
#include "opencl.h"
#include "optable.h"

typedef struct gq_cl gq_cl_t;
typedef struct gq_cl_stream gq_cl_stream_t;

/* Kernel ids: family index << GQ_CL_KID_BITS | the family's own id. */
#define GQ_CL_KID_BITS 11
#define GQ_CL_KID(family, local) ((family) << GQ_CL_KID_BITS | (local))
#define GQ_CL_MAX_FAMILIES 4
#define GQ_CL_MAX_KERNELS (GQ_CL_MAX_FAMILIES << GQ_CL_KID_BITS)

typedef struct {
    size_t size;
    const void *value;
} gq_cl_arg_t;

/* One op family's kernels (tensor.*, then dsp.* ...): a family owns the ops named with
 * its prefix. supports: whether the family runs a->op on these inputs (in == NULL: the op
 * at all). run: enqueues the op; descriptors passed gq_op_infer; buffers hold at least
 * their descriptor's bytes. kernel_name: the OpenCL name of one of its kernel ids. */
typedef struct {
    const char *prefix;
    bool (*supports)(const gq_cl_t *cl, const gq_args_t *a, const gq_tdesc_t *in, int nin);
    gq_status (*run)(gq_cl_t *cl, gq_cl_stream_t *st, int family, const gq_args_t *a,
                     const gq_tdesc_t *in_desc, cl_mem *in, int nin, const gq_tdesc_t *out_desc,
                     cl_mem *out, int nout, char *err, size_t errlen);
    void (*kernel_name)(int local_kid, char *buf, size_t len);
    /* Optional: frees the family's state (gq_cl_state) when the backend goes. */
    void (*destroy_state)(gq_cl_t *cl, void *state);
} gq_cl_family_t;

extern const gq_cl_family_t gq_cl_tensor_family;
extern const gq_cl_family_t gq_cl_dsp_family;

bool gq_cl_fp64(const gq_cl_t *cl);

/* The device's context, and CL_DEVICE_LOCAL_MEM_SIZE. */
cl_context gq_cl_context(const gq_cl_t *cl);
size_t gq_cl_local_mem(const gq_cl_t *cl);

/* The slot where family keeps its state (caches of device buffers): NULL until the
 * family stores something; freed through the family's destroy_state. Callers serialise
 * through gq_cl_state_lock / unlock (the backend's streams run concurrently). */
void **gq_cl_state(gq_cl_t *cl, int family);
void gq_cl_state_lock(gq_cl_t *cl);
void gq_cl_state_unlock(gq_cl_t *cl);

/* A device buffer of at least nbytes for the rest of the current run (intermediates):
 * from the pool, given back when the family's run returns (after the stream drains). */
gq_status gq_cl_scratch(gq_cl_t *cl, gq_cl_stream_t *st, size_t nbytes, cl_mem *out, const char *op,
                        char *err, size_t errlen);

/* Blocking transfers between host memory and a device buffer on the caller's stream. */
gq_status gq_cl_write(gq_cl_t *cl, gq_cl_stream_t *st, cl_mem dst, const void *src, size_t nbytes,
                      const char *op, char *err, size_t errlen);
gq_status gq_cl_read(gq_cl_t *cl, gq_cl_stream_t *st, void *dst, cl_mem src, size_t nbytes,
                     const char *op, char *err, size_t errlen);

/* Enqueues kernel kid on the caller's stream. groups == 0: one work-item per item, in
 * work-groups the backend sizes (items rounded up: kernels check their index). groups >
 * 0: that many work-groups of L work-items, L a power of two <= min(items, the kernel's
 * limit, 256); kernels read L from get_local_size. Errors name op and the call. */
gq_status gq_cl_launch(gq_cl_t *cl, gq_cl_stream_t *st, int kid, const gq_cl_arg_t *args, int nargs,
                       size_t groups, size_t items, const char *op, char *err, size_t errlen);

/* Elementwise launch of items work-items whose kernel takes a last argument int chk
 * (appended here): the work-groups that lie wholly inside items run with chk = 0, so the
 * kernel skips its bounds test (a per-item branch stops CPU drivers such as PoCL from
 * vectorising the work-group: 3-5x slower), and the last partial one, if any, runs as a
 * second launch with chk = 1. */
gq_status gq_cl_launch_ew(gq_cl_t *cl, gq_cl_stream_t *st, int kid, const gq_cl_arg_t *args,
                          int nargs, size_t items, const char *op, char *err, size_t errlen);

/* Whether transforms should run one work-item per row (CPU devices, where barriers in a
 * work-group are loops the driver splits) rather than a work-group per row; env
 * GQ_CL_FFT=rows|groups overrides (tests run both). */
bool gq_cl_fft_rows(const gq_cl_t *cl);

/* The same with the work-group size given: local (a power of two the kernel allows, else
 * the largest such below it), global = groups * local. An argument {size, NULL} is local
 * memory of size bytes. */
gq_status gq_cl_launch_local(gq_cl_t *cl, gq_cl_stream_t *st, int kid, const gq_cl_arg_t *args,
                             int nargs, size_t groups, size_t local, const char *op, char *err,
                             size_t errlen);

/* Device-side copy of nbytes from src to dst on the caller's stream. */
gq_status gq_cl_copy(gq_cl_t *cl, gq_cl_stream_t *st, cl_mem src, cl_mem dst, size_t nbytes,
                     const char *op, char *err, size_t errlen);

/* ---- devices (cl_device.c) ---- */

#define GQ_CL_MAX_DEVICES 64

typedef struct {
    cl_platform_id platform;
    cl_device_id device;
    int platform_index;
    char platform_name[128];
    cl_device_type type;
} gq_cl_dev_t;

/* Every device of every platform passing the platform filter (index or name substring),
 * platform by platform; returns the count, 0 with err set when none. */
int gq_cl_discover(const char *platform, gq_cl_dev_t *out, int max, char *err, size_t errlen);

/* The device cfg asks for (--cl-device INDEX or NAME), else the first GPU, accelerator,
 * anything; -1 with err set when none fits (or only CPU devices under gpu_only). */
int gq_cl_choose(const gq_backend_config_t *cfg, const gq_cl_dev_t *devs, int n, char *err,
                 size_t errlen);

void gq_cl_fill_info(const gq_cl_dev_t *d, gq_device_info_t *info);
const char *gq_cl_type_name(cl_device_type t);

/* A string device info into out ("?" when the driver gives none). */
void gq_cl_str_info(cl_device_id d, cl_device_info what, char *out, size_t len);

/* ---- the program (cl_program.c) ---- */

typedef struct {
    cl_platform_id platform; /* in */
    cl_device_id device;
    cl_context ctx;
    const char *device_name;
    bool fp64;
    cl_program prog; /* out */
    gq_cl_prog_origin_t origin;
    char cache_file[512];
} gq_cl_prog_t;

/* Builds the embedded sources (with -DGQ_FP64=1 when fp64) through the program cache: a
 * valid entry for this source, options, platform, device and driver is loaded; an invalid
 * one, or one the driver rejects, is rebuilt from source and replaced. */
gq_status gq_cl_program_build(gq_cl_prog_t *cl, char *err, size_t errlen);
void gq_cl_program_release(gq_cl_prog_t *cl);

#endif
