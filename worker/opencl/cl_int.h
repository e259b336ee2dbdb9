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
} gq_cl_family_t;

extern const gq_cl_family_t gq_cl_tensor_family;

bool gq_cl_fp64(const gq_cl_t *cl);

/* Enqueues kernel kid on the caller's stream. groups == 0: one work-item per item, in
 * work-groups the backend sizes (items rounded up: kernels check their index). groups >
 * 0: that many work-groups of L work-items, L a power of two <= min(items, the kernel's
 * limit, 256); kernels read L from get_local_size. Errors name op and the call. */
gq_status gq_cl_launch(gq_cl_t *cl, gq_cl_stream_t *st, int kid, const gq_cl_arg_t *args, int nargs,
                       size_t groups, size_t items, const char *op, char *err, size_t errlen);

/* Device-side copy of nbytes from src to dst on the caller's stream. */
gq_status gq_cl_copy(gq_cl_t *cl, gq_cl_stream_t *st, cl_mem src, cl_mem dst, size_t nbytes,
                     const char *op, char *err, size_t errlen);

#endif
