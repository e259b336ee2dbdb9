/* The OpenCL accelerator of the ONNX executor (onnx_accel.h): the program, one command queue
 * and set of kernels per plan, constants kept on the device per plan, run buffers from the
 * backend's pool. The ops it claims are in cl_onnx_ops.c.
 *
 * It runs beside the backend rather than through gq_backend_ops_t.run: a step is not an op
 * of the op table, and values must stay on the device between steps. Its program is the
 * backend's own embedded sources built with the backend's options, so it comes from the
 * program cache the backend filled (cl_program.c; a second build only without a cache).
 * Each plan gets its own in-order queue: runs of one plan are serialised by its owner, runs
 * of different plans overlap, and no kernel object is shared between threads. Run buffers
 * come from the backend's pool (be->ops->alloc); a buffer whose last reader is enqueued is
 * reused by later commands of the same queue at once (in-order), and all go back to the
 * pool when the run finishes, after the queue drains. Constants are plain buffers the plan
 * owns, so a plan may outlive the backend's pool (the worker destroys backends first). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cl_onnx.h"
#include "util.h"

struct gq_clx {
    gq_onnx_accel_t base;
    gq_backend_t *be;
    cl_context ctx;
    cl_device_id dev;
    gq_cl_prog_t pg;
    bool cpu;           /* a CPU device: big elementwise work-groups */
    bool rows;          /* windowed kernels by rows (gq_clx_rows) */
    size_t local_ew;    /* elementwise work-group size */
    char dev_name[128]; /* for the program's log lines */
};

static const char *const s_kernel_names[GQ_CLX_NKERNELS] = {
    [GQ_CLX_GEMM] = "gq_onnx_gemm",
    [GQ_CLX_IM2COL] = "gq_onnx_im2col",
    [GQ_CLX_IM2COL_ROWS] = "gq_onnx_im2col_rows",
    [GQ_CLX_CONV_DIRECT] = "gq_onnx_conv_direct",
    [GQ_CLX_CONV_ROWS] = "gq_onnx_conv_rows",
    [GQ_CLX_POOL] = "gq_onnx_pool",
    [GQ_CLX_POOL_ROWS] = "gq_onnx_pool_rows",
    [GQ_CLX_GLOBAL_POOL] = "gq_onnx_global_pool",
    [GQ_CLX_BATCHNORM] = "gq_onnx_batchnorm",
    [GQ_CLX_SOFTMAX] = "gq_onnx_softmax",
    [GQ_CLX_STRIDED] = "gq_onnx_strided",
    [GQ_CLX_UN_RELU] = "gq_onnx_un_relu",
    [GQ_CLX_UN_SIGMOID] = "gq_onnx_un_sigmoid",
    [GQ_CLX_UN_TANH] = "gq_onnx_un_tanh",
    [GQ_CLX_UN_LEAKY] = "gq_onnx_un_leaky",
    [GQ_CLX_UN_ELU] = "gq_onnx_un_elu",
    [GQ_CLX_UN_SELU] = "gq_onnx_un_selu",
    [GQ_CLX_UN_HARDSIGMOID] = "gq_onnx_un_hardsigmoid",
    [GQ_CLX_UN_HARDSWISH] = "gq_onnx_un_hardswish",
    [GQ_CLX_UN_SOFTPLUS] = "gq_onnx_un_softplus",
    [GQ_CLX_UN_SOFTSIGN] = "gq_onnx_un_softsign",
    [GQ_CLX_UN_CLIP] = "gq_onnx_un_clip",
    [GQ_CLX_UN_EXP] = "gq_onnx_un_exp",
    [GQ_CLX_UN_LOG] = "gq_onnx_un_log",
    [GQ_CLX_UN_SQRT] = "gq_onnx_un_sqrt",
    [GQ_CLX_UN_ABS] = "gq_onnx_un_abs",
    [GQ_CLX_UN_NEG] = "gq_onnx_un_neg",
    [GQ_CLX_UN_RECIP] = "gq_onnx_un_recip",
    [GQ_CLX_UN_FLOOR] = "gq_onnx_un_floor",
    [GQ_CLX_UN_CEIL] = "gq_onnx_un_ceil",
    [GQ_CLX_UN_ERF] = "gq_onnx_un_erf",
    [GQ_CLX_ADD_FLAT] = "gq_onnx_add_flat",
    [GQ_CLX_ADD_BCAST] = "gq_onnx_add_bcast",
    [GQ_CLX_SUB_FLAT] = "gq_onnx_sub_flat",
    [GQ_CLX_SUB_BCAST] = "gq_onnx_sub_bcast",
    [GQ_CLX_MUL_FLAT] = "gq_onnx_mul_flat",
    [GQ_CLX_MUL_BCAST] = "gq_onnx_mul_bcast",
    [GQ_CLX_DIV_FLAT] = "gq_onnx_div_flat",
    [GQ_CLX_DIV_BCAST] = "gq_onnx_div_bcast",
};

bool gq_clx_rows(const gq_clx_t *ax)
{
    return ax->rows;
}

/* ---- buffers ---- */

static gq_clx_buf_t *s_record(gq_clx_plan_t *ps)
{
    gq_clx_buf_t *b = ps->spare;
    if (b) {
        ps->spare = b->next;
        memset(b, 0, sizeof *b);
        return b;
    }
    return calloc(1, sizeof *b);
}

gq_status gq_clx_alloc(gq_clx_plan_t *ps, size_t nbytes, gq_clx_buf_t **out, char *err,
                       size_t errlen)
{
    size_t want = nbytes < 4 ? 4 : nbytes;
    gq_clx_buf_t **best = NULL;
    for (gq_clx_buf_t **pp = &ps->free; *pp; pp = &(*pp)->next)
        if ((*pp)->cap >= want && (*pp)->cap / 2 <= want && (!best || (*pp)->cap < (*best)->cap))
            best = pp;
    if (best) {
        gq_clx_buf_t *b = *best;
        *best = b->next;
        b->next = NULL;
        b->refs = 1;
        ps->live++;
        *out = b;
        return GQ_OK;
    }
    gq_clx_buf_t *b = s_record(ps);
    if (!b) {
        gq_errf(err, errlen, "opencl: out of memory");
        return GQ_ENOMEM;
    }
    gq_backend_t *be = ps->ax->be;
    gq_status rc = be->ops->alloc(be, want, &b->gb);
    if (rc) {
        const char *why = be->ops->last_error ? be->ops->last_error(be) : NULL;
        gq_errf(err, errlen, "%s", why && *why ? why : gq_strerror(rc));
        b->next = ps->spare;
        ps->spare = b;
        return rc;
    }
    b->m = b->gb.handle;
    b->cap = want;
    b->refs = 1;
    ps->live++;
    *out = b;
    return GQ_OK;
}

gq_status gq_clx_alloc_const(gq_clx_plan_t *ps, size_t nbytes, gq_clx_buf_t **out, char *err,
                             size_t errlen)
{
    cl_int crc;
    size_t want = nbytes < 4 ? 4 : nbytes;
    cl_mem m = clCreateBuffer(ps->ax->ctx, CL_MEM_READ_WRITE, want, NULL, &crc);
    gq_clx_buf_t *b = crc == CL_SUCCESS ? calloc(1, sizeof *b) : NULL;
    if (!b) {
        if (crc == CL_SUCCESS) {
            clReleaseMemObject(m);
            gq_errf(err, errlen, "opencl: out of memory");
            return GQ_ENOMEM;
        }
        gq_status rc = gq_cl_fail(err, errlen, NULL, "clCreateBuffer", crc);
        size_t used = strlen(err);
        if (used + 2 < errlen)
            snprintf(err + used, errlen - used, " (%zu bytes of constants)", want);
        return rc;
    }
    b->m = m;
    b->cap = want;
    b->konst = true;
    b->next = ps->consts;
    ps->consts = b;
    *out = b;
    return GQ_OK;
}

void gq_clx_unref(gq_clx_plan_t *ps, gq_clx_buf_t *b)
{
    if (!b || b->konst || --b->refs > 0)
        return;
    ps->live--;
    b->next = ps->free;
    ps->free = b;
}

/* ---- launches ---- */

static gq_status s_kernel(gq_clx_plan_t *ps, int kid, char *err, size_t errlen)
{
    if (ps->k[kid])
        return GQ_OK;
    cl_int rc;
    ps->k[kid] = clCreateKernel(ps->ax->pg.prog, s_kernel_names[kid], &rc);
    if (rc != CL_SUCCESS) {
        ps->k[kid] = NULL;
        char call[96];
        snprintf(call, sizeof call, "clCreateKernel(%s)", s_kernel_names[kid]);
        return gq_cl_fail(err, errlen, NULL, call, rc);
    }
    size_t wg = 0;
    if (clGetKernelWorkGroupInfo(ps->k[kid], ps->ax->dev, CL_KERNEL_WORK_GROUP_SIZE, sizeof wg, &wg,
                                 NULL) != CL_SUCCESS ||
        wg == 0)
        wg = 64;
    ps->kwg[kid] = wg;
    return GQ_OK;
}

static gq_status s_args(gq_clx_plan_t *ps, int kid, const gq_clx_arg_t *args, int nargs, char *err,
                        size_t errlen)
{
    gq_status rc = s_kernel(ps, kid, err, errlen);
    for (int i = 0; i < nargs && !rc; i++) {
        cl_int crc = clSetKernelArg(ps->k[kid], (cl_uint)i, args[i].size, args[i].value);
        if (crc != CL_SUCCESS) {
            char call[128];
            snprintf(call, sizeof call, "clSetKernelArg(%s, %d)", s_kernel_names[kid], i);
            rc = gq_cl_fail(err, errlen, NULL, call, crc);
        }
    }
    return rc;
}

static gq_status s_enqueue(gq_clx_plan_t *ps, int kid, int dims, const size_t *offset,
                           const size_t *global, const size_t *local, char *err, size_t errlen)
{
    cl_int crc = clEnqueueNDRangeKernel(ps->q, ps->k[kid], (cl_uint)dims, offset, global, local, 0,
                                        NULL, NULL);
    if (crc != CL_SUCCESS) {
        char call[128];
        snprintf(call, sizeof call, "clEnqueueNDRangeKernel(%s)", s_kernel_names[kid]);
        return gq_cl_fail(err, errlen, NULL, call, crc);
    }
    return GQ_OK;
}

gq_status gq_clx_launch(gq_clx_plan_t *ps, int kid, const gq_clx_arg_t *args, int nargs, int dims,
                        const size_t *global, char *err, size_t errlen)
{
    for (int d = 0; d < dims; d++)
        if (!global[d])
            return GQ_OK;
    gq_status rc = s_args(ps, kid, args, nargs, err, errlen);
    return rc ? rc : s_enqueue(ps, kid, dims, NULL, global, NULL, err, errlen);
}

/* A launch of items work-items in groups of at most cap, with chk appended. */
static gq_status s_launch_chk(gq_clx_plan_t *ps, int kid, const gq_clx_arg_t *args, int nargs,
                              size_t items, size_t cap, char *err, size_t errlen)
{
    if (!items)
        return GQ_OK;
    gq_status rc = s_args(ps, kid, args, nargs, err, errlen);
    if (rc)
        return rc;
    size_t local = 1;
    while (local * 2 <= ps->kwg[kid] && local * 2 <= cap)
        local *= 2;
    size_t body = items / local * local;
    for (cl_int chk = 0; chk < 2 && !rc; chk++) {
        if (chk ? body == items : body == 0)
            continue;
        cl_int crc = clSetKernelArg(ps->k[kid], (cl_uint)nargs, sizeof chk, &chk);
        if (crc != CL_SUCCESS)
            return gq_cl_fail(err, errlen, NULL, "clSetKernelArg(chk)", crc);
        size_t off = body, g = chk ? local : body;
        rc = s_enqueue(ps, kid, 1, chk ? &off : NULL, &g, &local, err, errlen);
    }
    return rc;
}

gq_status gq_clx_launch_ew(gq_clx_plan_t *ps, int kid, const gq_clx_arg_t *args, int nargs,
                           size_t items, char *err, size_t errlen)
{
    return s_launch_chk(ps, kid, args, nargs, items, ps->ax->local_ew, err, errlen);
}

gq_status gq_clx_launch_rows(gq_clx_plan_t *ps, int kid, const gq_clx_arg_t *args, int nargs,
                             size_t rows, char *err, size_t errlen)
{
    return s_launch_chk(ps, kid, args, nargs, rows, 8, err, errlen);
}

/* ---- the accelerator's ops ---- */

static void s_plan_free(gq_onnx_accel_t *base, void *state)
{
    (void)base;
    gq_clx_plan_t *ps = state;
    if (!ps)
        return;
    if (ps->q)
        clFinish(ps->q);
    for (gq_clx_buf_t *b = ps->free, *nx; b; b = nx) { /* none after a finished run */
        nx = b->next;
        ps->ax->be->ops->free(ps->ax->be, &b->gb);
        free(b);
    }
    for (gq_clx_buf_t *b = ps->consts, *nx; b; b = nx) {
        nx = b->next;
        clReleaseMemObject(b->m);
        free(b);
    }
    for (gq_clx_buf_t *b = ps->spare, *nx; b; b = nx) {
        nx = b->next;
        free(b);
    }
    for (int i = 0; i < GQ_CLX_NKERNELS; i++)
        if (ps->k[i])
            clReleaseKernel(ps->k[i]);
    if (ps->q)
        clReleaseCommandQueue(ps->q);
    free(ps->konst);
    free(ps->derived);
    free(ps->stepop);
    free(ps);
}

static void *s_plan_new(gq_onnx_accel_t *base, const gq_onnx_plan_t *p, char *err, size_t errlen)
{
    gq_clx_t *ax = base->impl;
    gq_clx_plan_t *ps = calloc(1, sizeof *ps);
    if (!ps || !(ps->konst = calloc((size_t)p->nslots + 1, sizeof *ps->konst)) ||
        !(ps->derived = calloc((size_t)p->nsteps + 1, sizeof *ps->derived)) ||
        !(ps->stepop = calloc((size_t)p->nsteps + 1, sizeof *ps->stepop))) {
        s_plan_free(base, ps);
        gq_errf(err, errlen, "opencl: out of memory for the plan's state");
        return NULL;
    }
    ps->ax = ax;
    ps->p = p;
    for (int k = 0; k < p->nsteps; k++)
        ps->stepop[k] = gq_clx_step_op(p, k);
    cl_int rc;
    ps->q = clCreateCommandQueue(ax->ctx, ax->dev, 0, &rc);
    if (rc != CL_SUCCESS) {
        ps->q = NULL;
        gq_cl_fail(err, errlen, NULL, "clCreateCommandQueue", rc);
        s_plan_free(base, ps);
        return NULL;
    }
    return ps;
}

static bool s_claim(void *state, int k, gq_onnx_val_t *const *in, int nin, gq_tdesc_t *out_desc,
                    int nout)
{
    gq_clx_plan_t *ps = state;
    if (k < 0 || k >= ps->p->nsteps || ps->stepop[k] < 0)
        return false;
    return gq_clx_claim(ps, k, in, nin, out_desc, nout);
}

static gq_status s_run(void *state, int k, gq_onnx_val_t *const *in, int nin, gq_onnx_val_t *out,
                       int nout, char *err, size_t errlen)
{
    return gq_clx_run(state, k, in, nin, out, nout, err, errlen);
}

static gq_status s_write(gq_clx_plan_t *ps, cl_mem m, const void *src, size_t nbytes, char *err,
                         size_t errlen)
{
    if (!nbytes)
        return GQ_OK;
    cl_int crc = clEnqueueWriteBuffer(ps->q, m, CL_TRUE, 0, nbytes, src, 0, NULL, NULL);
    return crc == CL_SUCCESS ? GQ_OK : gq_cl_fail(err, errlen, NULL, "clEnqueueWriteBuffer", crc);
}

static gq_status s_upload(void *state, int sl, gq_onnx_val_t *v, bool constant, char *err,
                          size_t errlen)
{
    gq_clx_plan_t *ps = state;
    gq_clx_buf_t *b = NULL;
    gq_status rc;
    if (constant && sl >= 0 && sl < ps->p->nslots && ps->konst[sl]) {
        v->dev = ps->konst[sl];
        return GQ_OK;
    }
    if (constant && sl >= 0 && sl < ps->p->nslots) {
        if ((rc = gq_clx_alloc_const(ps, v->nbytes, &b, err, errlen)))
            return rc;
        if ((rc = s_write(ps, b->m, v->data, v->nbytes, err, errlen)))
            return rc; /* b stays on the constant list, freed with the plan */
        ps->konst[sl] = b;
        v->dev = b;
        return GQ_OK;
    }
    if ((rc = gq_clx_alloc(ps, v->nbytes, &b, err, errlen)))
        return rc;
    if ((rc = s_write(ps, b->m, v->data, v->nbytes, err, errlen))) {
        gq_clx_unref(ps, b);
        return rc;
    }
    v->dev = b;
    return GQ_OK;
}

static gq_status s_download(void *state, const gq_onnx_val_t *v, void *dst, char *err,
                            size_t errlen)
{
    gq_clx_plan_t *ps = state;
    const gq_clx_buf_t *b = v->dev;
    if (!b || b->cap < v->nbytes) {
        gq_errf(err, errlen, "opencl: a value of %zu bytes has no device buffer that holds it",
                v->nbytes);
        return GQ_EINVAL;
    }
    if (!v->nbytes)
        return GQ_OK;
    cl_int crc = clEnqueueReadBuffer(ps->q, b->m, CL_TRUE, 0, v->nbytes, dst, 0, NULL, NULL);
    return crc == CL_SUCCESS ? GQ_OK : gq_cl_fail(err, errlen, NULL, "clEnqueueReadBuffer", crc);
}

static void s_release(void *state, void *dev)
{
    gq_clx_unref(state, dev);
}

static gq_status s_sync(void *state, char *err, size_t errlen)
{
    gq_clx_plan_t *ps = state;
    cl_int crc = clFinish(ps->q);
    return crc == CL_SUCCESS ? GQ_OK : gq_cl_fail(err, errlen, NULL, "clFinish", crc);
}

static gq_status s_finish(void *state, char *err, size_t errlen)
{
    gq_clx_plan_t *ps = state;
    gq_status rc = s_sync(state, err, errlen);
    if (ps->live)
        GQ_WARN("opencl: onnx: %d device buffers still held at the end of a run", ps->live);
    gq_backend_t *be = ps->ax->be;
    while (ps->free) {
        gq_clx_buf_t *b = ps->free;
        ps->free = b->next;
        be->ops->free(be, &b->gb);
        b->next = ps->spare;
        ps->spare = b;
    }
    return rc;
}

static void s_destroy(gq_onnx_accel_t *base)
{
    gq_clx_t *ax = base->impl;
    gq_cl_program_release(&ax->pg);
    if (ax->ctx)
        clReleaseContext(ax->ctx);
    free(ax);
}

static const gq_onnx_accel_ops_t s_ops = {
    .name = "opencl",
    .plan_new = s_plan_new,
    .plan_free = s_plan_free,
    .claim = s_claim,
    .run = s_run,
    .upload = s_upload,
    .download = s_download,
    .release = s_release,
    .finish = s_finish,
    .sync = s_sync,
    .destroy = s_destroy,
};

gq_onnx_accel_t *gq_onnx_accel_opencl_new(struct gq_backend *be, char *err, size_t errlen)
{
    if (!be || !be->ops || strcmp(be->ops->name, "opencl") || !be->impl) {
        gq_errf(err, errlen, "onnx: the OpenCL accelerator needs an opencl backend");
        return NULL;
    }
    gq_cl_t *cl = be->impl;
    gq_clx_t *ax = calloc(1, sizeof *ax);
    if (!ax) {
        gq_errf(err, errlen, "opencl: out of memory");
        return NULL;
    }
    ax->base.ops = &s_ops;
    ax->base.impl = ax;
    ax->be = be;
    ax->ctx = gq_cl_context(cl);
    clRetainContext(ax->ctx); /* ours until destroyed, whatever the backend does first */
    cl_device_type type = 0;
    cl_platform_id plat = NULL;
    cl_int rc = clGetContextInfo(ax->ctx, CL_CONTEXT_DEVICES, sizeof ax->dev, &ax->dev, NULL);
    if (rc == CL_SUCCESS)
        rc = clGetDeviceInfo(ax->dev, CL_DEVICE_PLATFORM, sizeof plat, &plat, NULL);
    if (rc == CL_SUCCESS)
        rc = clGetDeviceInfo(ax->dev, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    if (rc != CL_SUCCESS) {
        gq_cl_fail(err, errlen, NULL, "clGetDeviceInfo", rc);
        s_destroy(&ax->base);
        return NULL;
    }
    ax->cpu = (type & CL_DEVICE_TYPE_CPU) != 0;
    ax->local_ew = ax->cpu ? 4096 : 256;
    const char *rows = getenv("GQ_CL_ONNX_ROWS");
    ax->rows = rows && *rows ? strcmp(rows, "0") != 0 : ax->cpu;
    gq_cl_str_info(ax->dev, CL_DEVICE_NAME, ax->dev_name, sizeof ax->dev_name);
    ax->pg.platform = plat;
    ax->pg.device = ax->dev;
    ax->pg.ctx = ax->ctx;
    ax->pg.device_name = ax->dev_name;
    ax->pg.fp64 = gq_cl_fp64(cl); /* the backend's options: its cache entry */
    if (gq_cl_program_build(&ax->pg, err, errlen) != GQ_OK) {
        s_destroy(&ax->base);
        return NULL;
    }
    return &ax->base;
}
