/* OpenCL host side of the tensor.* ops (kernels in kernels/tensor.cl). Which dtypes run
 * here: f32; f64 when the device has cl_khr_fp64; i32 for add and mul; i32, i16, u8 for
 * sum, max and cast (and mean, whose f64 output needs fp64). f16 is declined: it runs on
 * the CPU. */
#include <stdio.h>
#include <string.h>
#include "cl_int.h"
#include "util.h"

enum {
    S_ADD_FLAT,
    S_ADD_BCAST,
    S_MUL_FLAT,
    S_MUL_BCAST,
    S_SCALE,
    S_CLAMP,
    S_SUM_COLS,
    S_SUM_ROWS,
    S_MEAN_COLS,
    S_MEAN_ROWS,
    S_MAX_COLS,
    S_MAX_ROWS,
    S_CAST,
    S_NKINDS
};

static const char *const s_kind_names[S_NKINDS] = {
    "add_flat", "add_bcast", "mul_flat",  "mul_bcast", "scale",    "clamp", "sum_cols",
    "sum_rows", "mean_cols", "mean_rows", "max_cols",  "max_rows", "cast",
};

/* dtypes with kernels, as 3-bit slots of a kernel id */
static const int s_slot_dtype[] = {GQ_F32, GQ_F64, GQ_I32, GQ_I16, GQ_U8};
#define S_NSLOTS ((int)(sizeof s_slot_dtype / sizeof s_slot_dtype[0]))

static int s_slot(int dt)
{
    for (int i = 0; i < S_NSLOTS; i++)
        if (s_slot_dtype[i] == dt)
            return i;
    return -1;
}

static int s_kid(int family, int kind, int a, int b)
{
    return GQ_CL_KID(family, kind << 6 | s_slot(a) << 3 | (b ? s_slot(b) : 0));
}

static void s_kernel_name(int kid, char *buf, size_t len)
{
    int kind = kid >> 6, a = (kid >> 3) & 7, b = kid & 7;
    if (kind >= S_NKINDS || a >= S_NSLOTS || b >= S_NSLOTS) {
        snprintf(buf, len, "gq_invalid_%d", kid);
        return;
    }
    if (kind == S_CAST)
        snprintf(buf, len, "gq_cast_%s_%s", gq_dtype_name(s_slot_dtype[a]),
                 gq_dtype_name(s_slot_dtype[b]));
    else
        snprintf(buf, len, "gq_%s_%s", s_kind_names[kind], gq_dtype_name(s_slot_dtype[a]));
}

/* ---- which ops and dtypes ---- */

static bool s_float_ok(const gq_cl_t *cl, int dt)
{
    return dt == GQ_F32 || (dt == GQ_F64 && gq_cl_fp64(cl));
}

static bool s_int_ok(int dt)
{
    return dt == GQ_I32 || dt == GQ_I16 || dt == GQ_U8;
}

static bool s_supports(const gq_cl_t *cl, const gq_args_t *a, const gq_tdesc_t *in, int nin)
{
    const char *op = a->op->name + strlen("tensor.");
    static const char *const known[] = {"add", "mul",  "scale", "clamp",
                                        "sum", "mean", "max",   "cast"};
    bool is_known = false;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        is_known |= !strcmp(op, known[i]);
    if (!is_known)
        return false;
    if (!in)
        return true;
    if (nin < 1)
        return false;
    int dt = (int)in[0].dtype;
    for (int i = 1; i < nin; i++)
        if ((int)in[i].dtype != dt)
            return false;
    if (!strcmp(op, "add") || !strcmp(op, "mul"))
        return s_float_ok(cl, dt) || dt == GQ_I32;
    if (!strcmp(op, "scale") || !strcmp(op, "clamp"))
        return s_float_ok(cl, dt);
    if (!strcmp(op, "sum") || !strcmp(op, "max"))
        return s_float_ok(cl, dt) || s_int_ok(dt);
    if (!strcmp(op, "mean"))
        return s_float_ok(cl, dt) || (s_int_ok(dt) && gq_cl_fp64(cl));
    /* cast */
    int to = (int)gq_dtype_from_name(gq_args_str(a, "to"));
    bool src_ok = s_float_ok(cl, dt) || s_int_ok(dt);
    bool dst_ok = s_float_ok(cl, to) || s_int_ok(to);
    return src_ok && dst_ok;
}

/* ---- launches ---- */

#define S_ARG(v)                                                                                   \
    {                                                                                              \
        sizeof(v), &(v)                                                                            \
    }

/* Two inputs laid over the output (gq_bcast_plan, as on the CPU), right-aligned into 8
 * slots for the kernel. */
typedef struct {
    cl_int nd;
    cl_long8 sh, s0, s1;
} s_plan_t;

static void s_plan(const gq_tdesc_t *o, const gq_tdesc_t *x, const gq_tdesc_t *y, s_plan_t *p)
{
    gq_bcast_t b;
    gq_bcast_plan(o, x, y, &b);
    memset(p, 0, sizeof *p);
    p->nd = b.ndim;
    for (int i = 0; i < 8; i++) {
        int d = b.ndim - 8 + i; /* slot i holds dim d */
        p->sh.s[i] = d >= 0 ? b.shape[d] : 1;
        p->s0.s[i] = d >= 0 ? b.st[0][d] : 0;
        p->s1.s[i] = d >= 0 ? b.st[1][d] : 0;
    }
}

static gq_status s_binary(gq_cl_t *cl, gq_cl_stream_t *st, int fam, int flat, int bcast,
                          const gq_args_t *a, const gq_tdesc_t *in, cl_mem *mi,
                          const gq_tdesc_t *out, cl_mem *mo, char *err, size_t errlen)
{
    int dt = out[0].dtype;
    cl_ulong n = (cl_ulong)gq_tdesc_numel(&out[0]);
    if (!n)
        return GQ_OK;
    if (gq_tdesc_equal(&in[0], &in[1])) {
        gq_cl_arg_t args[] = {S_ARG(mi[0]), S_ARG(mi[1]), S_ARG(mo[0]), S_ARG(n)};
        return gq_cl_launch_ew(cl, st, s_kid(fam, flat, dt, 0), args, 4, n, a->op->name, err,
                               errlen);
    }
    s_plan_t p;
    s_plan(&out[0], &in[0], &in[1], &p);
    gq_cl_arg_t args[] = {S_ARG(mi[0]), S_ARG(mi[1]), S_ARG(mo[0]), S_ARG(n),
                          S_ARG(p.nd),  S_ARG(p.sh),  S_ARG(p.s0),  S_ARG(p.s1)};
    return gq_cl_launch(cl, st, s_kid(fam, bcast, dt, 0), args, 8, 0, n, a->op->name, err, errlen);
}

/* Params go to the kernel as double with fp64, else as float. */
static gq_status s_affine(gq_cl_t *cl, gq_cl_stream_t *st, int fam, int kind, double p0, double p1,
                          const gq_args_t *a, const gq_tdesc_t *in, cl_mem *mi, cl_mem *mo,
                          char *err, size_t errlen)
{
    int dt = in[0].dtype;
    cl_ulong n = (cl_ulong)gq_tdesc_numel(&in[0]);
    if (!n)
        return GQ_OK;
    cl_double d0 = p0, d1 = p1;
    cl_float f0 = (cl_float)p0, f1 = (cl_float)p1;
    /* clamp f32 takes float bounds (like the CPU: beyond the f32 range they round to
     * +-inf and clamp nothing); scale f32 takes double with fp64. */
    bool dbl = dt == GQ_F64 || (kind == S_SCALE && gq_cl_fp64(cl));
    gq_cl_arg_t args[] = {S_ARG(mi[0]),
                          S_ARG(mo[0]),
                          S_ARG(n),
                          {dbl ? sizeof d0 : sizeof f0, dbl ? (void *)&d0 : (void *)&f0},
                          {dbl ? sizeof d1 : sizeof f1, dbl ? (void *)&d1 : (void *)&f1}};
    return gq_cl_launch_ew(cl, st, s_kid(fam, kind, dt, 0), args, 5, n, a->op->name, err, errlen);
}

/* Long rows reduce with a work-group each; anything else with a work-item per output. */
#define S_ROWS_MIN 256

static gq_status s_reduce(gq_cl_t *cl, gq_cl_stream_t *st, int fam, int cols, int rows,
                          const gq_args_t *a, const gq_tdesc_t *in, cl_mem *mi, cl_mem *mo,
                          char *err, size_t errlen)
{
    const gq_tdesc_t *d = &in[0];
    int64_t axis = gq_args_int(a, "axis");
    if (axis < 0)
        axis += d->ndim;
    cl_ulong outer = 1, inner = 1, n = (cl_ulong)d->shape[axis];
    for (int i = 0; i < axis; i++)
        outer *= (cl_ulong)d->shape[i];
    for (int i = (int)axis + 1; i < d->ndim; i++)
        inner *= (cl_ulong)d->shape[i];
    if (!outer || !inner)
        return GQ_OK;
    if (inner == 1 && n >= S_ROWS_MIN) {
        size_t groups = outer < 65536 ? (size_t)outer : 65536;
        gq_cl_arg_t args[] = {S_ARG(mi[0]), S_ARG(mo[0]), S_ARG(outer), S_ARG(n)};
        return gq_cl_launch(cl, st, s_kid(fam, rows, d->dtype, 0), args, 4, groups, (size_t)n,
                            a->op->name, err, errlen);
    }
    gq_cl_arg_t args[] = {S_ARG(mi[0]), S_ARG(mo[0]), S_ARG(outer), S_ARG(n), S_ARG(inner)};
    return gq_cl_launch(cl, st, s_kid(fam, cols, d->dtype, 0), args, 5, 0, (size_t)(outer * inner),
                        a->op->name, err, errlen);
}

static gq_status s_run(gq_cl_t *cl, gq_cl_stream_t *st, int fam, const gq_args_t *a,
                       const gq_tdesc_t *in, cl_mem *mi, int nin, const gq_tdesc_t *out, cl_mem *mo,
                       int nout, char *err, size_t errlen)
{
    (void)nin, (void)nout;
    const char *op = a->op->name + strlen("tensor.");
    if (!strcmp(op, "add"))
        return s_binary(cl, st, fam, S_ADD_FLAT, S_ADD_BCAST, a, in, mi, out, mo, err, errlen);
    if (!strcmp(op, "mul"))
        return s_binary(cl, st, fam, S_MUL_FLAT, S_MUL_BCAST, a, in, mi, out, mo, err, errlen);
    if (!strcmp(op, "scale"))
        return s_affine(cl, st, fam, S_SCALE, gq_args_float(a, "factor"),
                        gq_args_float(a, "offset"), a, in, mi, mo, err, errlen);
    if (!strcmp(op, "clamp"))
        return s_affine(cl, st, fam, S_CLAMP, gq_args_float(a, "lo"), gq_args_float(a, "hi"), a, in,
                        mi, mo, err, errlen);
    if (!strcmp(op, "sum"))
        return s_reduce(cl, st, fam, S_SUM_COLS, S_SUM_ROWS, a, in, mi, mo, err, errlen);
    if (!strcmp(op, "mean"))
        return s_reduce(cl, st, fam, S_MEAN_COLS, S_MEAN_ROWS, a, in, mi, mo, err, errlen);
    if (!strcmp(op, "max"))
        return s_reduce(cl, st, fam, S_MAX_COLS, S_MAX_ROWS, a, in, mi, mo, err, errlen);
    if (!strcmp(op, "cast")) {
        cl_ulong n = (cl_ulong)gq_tdesc_numel(&in[0]);
        if (in[0].dtype == out[0].dtype)
            return gq_cl_copy(cl, st, mi[0], mo[0], gq_tdesc_nbytes(&in[0]), a->op->name, err,
                              errlen);
        gq_cl_arg_t args[] = {S_ARG(mi[0]), S_ARG(mo[0]), S_ARG(n)};
        return gq_cl_launch_ew(cl, st, s_kid(fam, S_CAST, in[0].dtype, out[0].dtype), args, 3, n,
                               a->op->name, err, errlen);
    }
    gq_errf(err, errlen, "%s: opencl: no kernel", a->op->name);
    return GQ_EUNSUPPORTED;
}

const gq_cl_family_t gq_cl_tensor_family = {
    .prefix = "tensor.",
    .supports = s_supports,
    .run = s_run,
    .kernel_name = s_kernel_name,
};
