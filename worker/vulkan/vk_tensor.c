/* Vulkan host side of the tensor.* ops (shaders binary, affine, reduce, cast). Which dtypes
 * run here: f32 everywhere; f64 with shaderFloat64; i32 for add, mul, sum, max, cast (and
 * mean, whose f64 output needs fp64); i16 and u8 for sum, mean, max and cast on devices
 * with 16-bit / 8-bit storage and arithmetic; integer sums need shaderInt64. f16 is
 * declined: it runs on the CPU. */
#include <stdio.h>
#include <string.h>
#include "util.h"
#include "vk_int.h"

static bool s_float_ok(const gq_vk_caps_t *c, int dt)
{
    return dt == GQ_F32 || (dt == GQ_F64 && c->fp64);
}

static bool s_int_ok(const gq_vk_caps_t *c, int dt)
{
    return dt == GQ_I32 || (dt == GQ_I16 && c->int16) || (dt == GQ_U8 && c->int8);
}

static bool s_supports(const gq_vk_t *vk, const gq_args_t *a, const gq_tdesc_t *in, int nin)
{
    const gq_vk_caps_t *c = gq_vk_caps(vk);
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
        return s_float_ok(c, dt) || dt == GQ_I32;
    if (!strcmp(op, "scale") || !strcmp(op, "clamp"))
        return s_float_ok(c, dt);
    if (!strcmp(op, "sum"))
        return s_float_ok(c, dt) || (s_int_ok(c, dt) && c->int64);
    if (!strcmp(op, "max"))
        return s_float_ok(c, dt) || s_int_ok(c, dt);
    if (!strcmp(op, "mean"))
        return s_float_ok(c, dt) || (s_int_ok(c, dt) && c->fp64);
    /* cast */
    int to = (int)gq_dtype_from_name(gq_args_str(a, "to"));
    return (s_float_ok(c, dt) || s_int_ok(c, dt)) && (s_float_ok(c, to) || s_int_ok(c, to));
}

/* ---- launches ---- */

/* Push constants of binary.comp. */
typedef struct {
    uint32_t n, nd;
    uint32_t sh[8], s0[8], s1[8];
} s_plan_t;

/* Two inputs laid over the output (gq_bcast_plan, as on the CPU), right-aligned into 8
 * slots for the shader. */
static void s_plan(const gq_tdesc_t *o, const gq_tdesc_t *x, const gq_tdesc_t *y, s_plan_t *p)
{
    gq_bcast_t b;
    gq_bcast_plan(o, x, y, &b);
    memset(p, 0, sizeof *p);
    p->nd = (uint32_t)b.ndim;
    for (int i = 0; i < 8; i++) {
        int d = b.ndim - 8 + i; /* slot i holds dim d */
        p->sh[i] = d >= 0 ? (uint32_t)b.shape[d] : 1;
        p->s0[i] = d >= 0 ? (uint32_t)b.st[0][d] : 0;
        p->s1[i] = d >= 0 ? (uint32_t)b.st[1][d] : 0;
    }
}

static const char *s_sfx(int dt)
{
    return gq_dtype_name(dt);
}

static gq_status s_binary(gq_vk_t *vk, gq_vk_stream_t *st, int opk, const gq_args_t *a,
                          const gq_tdesc_t *in, gq_vk_mem_t **mi, const gq_tdesc_t *out,
                          gq_vk_mem_t **mo, char *err, size_t errlen)
{
    int dt = out[0].dtype;
    uint64_t n = (uint64_t)gq_tdesc_numel(&out[0]);
    if (!n)
        return GQ_OK;
    s_plan_t p;
    bool flat = gq_tdesc_equal(&in[0], &in[1]);
    if (flat)
        memset(&p, 0, sizeof p);
    else
        s_plan(&out[0], &in[0], &in[1], &p);
    p.n = (uint32_t)n;
    uint32_t local = gq_vk_caps(vk)->local;
    int32_t spec[] = {(int32_t)local, opk, flat ? 0 : 1};
    char name[32];
    snprintf(name, sizeof name, "binary_%s", s_sfx(dt));
    gq_vk_mem_t *bufs[] = {mi[0], mi[1], mo[0]};
    return gq_vk_dispatch(vk, st, name, spec, 3, bufs, 3, &p, sizeof p, gq_vk_groups(vk, n, local),
                          1, a->op->name, err, errlen);
}

static gq_status s_affine(gq_vk_t *vk, gq_vk_stream_t *st, bool scale, double p0, double p1,
                          const gq_args_t *a, const gq_tdesc_t *in, gq_vk_mem_t **mi,
                          gq_vk_mem_t **mo, char *err, size_t errlen)
{
    int dt = in[0].dtype;
    uint64_t n = (uint64_t)gq_tdesc_numel(&in[0]);
    if (!n)
        return GQ_OK;
    const gq_vk_caps_t *c = gq_vk_caps(vk);
    /* clamp f32 takes float bounds (like the CPU: beyond the f32 range they round to
     * +-inf and clamp nothing); scale f32 computes in double with fp64. */
    bool dbl = dt == GQ_F64 || (scale && c->fp64);
    struct {
        uint32_t n, pad;
        double a, b;
    } pd = {(uint32_t)n, 0, p0, p1};
    struct {
        uint32_t n, pad;
        float a, b;
    } pf = {(uint32_t)n, 0, (float)p0, (float)p1};
    char name[32];
    snprintf(name, sizeof name, "%s_%s%s", scale ? "scale" : "clamp", s_sfx(dt),
             scale && dt == GQ_F32 && !c->fp64 ? "_nofp64" : "");
    int32_t spec[] = {(int32_t)c->local};
    gq_vk_mem_t *bufs[] = {mi[0], mo[0]};
    return gq_vk_dispatch(vk, st, name, spec, 1, bufs, 2, dbl ? (void *)&pd : (void *)&pf,
                          dbl ? sizeof pd : sizeof pf, gq_vk_groups(vk, n, c->local), 1,
                          a->op->name, err, errlen);
}

/* Long rows reduce with a work-group each; anything else with an invocation per output. */
#define S_ROWS_MIN 256
#define S_ROWS_LOCAL 256

static gq_status s_reduce(gq_vk_t *vk, gq_vk_stream_t *st, const char *kind, const gq_args_t *a,
                          const gq_tdesc_t *in, gq_vk_mem_t **mi, gq_vk_mem_t **mo, char *err,
                          size_t errlen)
{
    const gq_tdesc_t *d = &in[0];
    const gq_vk_caps_t *c = gq_vk_caps(vk);
    int64_t axis = gq_args_int(a, "axis");
    if (axis < 0)
        axis += d->ndim;
    uint64_t outer = 1, inner = 1, n = (uint64_t)d->shape[axis];
    for (int i = 0; i < axis; i++)
        outer *= (uint64_t)d->shape[i];
    for (int i = (int)axis + 1; i < d->ndim; i++)
        inner *= (uint64_t)d->shape[i];
    if (!outer || !inner)
        return GQ_OK;
    char name[32];
    snprintf(name, sizeof name, "%s_%s%s", kind, s_sfx(d->dtype),
             d->dtype == GQ_F32 && !c->fp64 && strcmp(kind, "max") ? "_nofp64" : "");
    struct {
        uint32_t outer, n, inner;
    } p = {(uint32_t)outer, (uint32_t)n, (uint32_t)inner};
    gq_vk_mem_t *bufs[] = {mi[0], mo[0]};
    bool rows = inner == 1 && n >= S_ROWS_MIN && c->max_local >= S_ROWS_LOCAL;
    uint32_t local = rows ? S_ROWS_LOCAL : c->local;
    int32_t spec[] = {(int32_t)local, rows ? 1 : 0};
    uint32_t groups = rows ? (outer < c->max_groups ? (uint32_t)outer : c->max_groups)
                           : gq_vk_groups(vk, outer * inner, local);
    return gq_vk_dispatch(vk, st, name, spec, 2, bufs, 2, &p, sizeof p, groups, 1, a->op->name, err,
                          errlen);
}

static gq_status s_cast(gq_vk_t *vk, gq_vk_stream_t *st, const gq_args_t *a, const gq_tdesc_t *in,
                        gq_vk_mem_t **mi, const gq_tdesc_t *out, gq_vk_mem_t **mo, char *err,
                        size_t errlen)
{
    uint64_t n = (uint64_t)gq_tdesc_numel(&in[0]);
    if (!n)
        return GQ_OK;
    if (in[0].dtype == out[0].dtype)
        return gq_vk_copy(vk, st, mi[0], mo[0], gq_tdesc_nbytes(&in[0]), a->op->name, err, errlen);
    char name[32];
    snprintf(name, sizeof name, "cast_%s_%s", s_sfx(in[0].dtype), s_sfx(out[0].dtype));
    uint32_t local = gq_vk_caps(vk)->local;
    int32_t spec[] = {(int32_t)local};
    uint32_t p = (uint32_t)n;
    gq_vk_mem_t *bufs[] = {mi[0], mo[0]};
    return gq_vk_dispatch(vk, st, name, spec, 1, bufs, 2, &p, sizeof p, gq_vk_groups(vk, n, local),
                          1, a->op->name, err, errlen);
}

static gq_status s_run(gq_vk_t *vk, gq_vk_stream_t *st, const gq_args_t *a, const gq_tdesc_t *in,
                       gq_vk_mem_t **mi, int nin, const gq_tdesc_t *out, gq_vk_mem_t **mo, int nout,
                       char *err, size_t errlen)
{
    (void)nin, (void)nout;
    const char *op = a->op->name + strlen("tensor.");
    if (!strcmp(op, "add") || !strcmp(op, "mul"))
        return s_binary(vk, st, !strcmp(op, "mul"), a, in, mi, out, mo, err, errlen);
    if (!strcmp(op, "scale"))
        return s_affine(vk, st, true, gq_args_float(a, "factor"), gq_args_float(a, "offset"), a, in,
                        mi, mo, err, errlen);
    if (!strcmp(op, "clamp"))
        return s_affine(vk, st, false, gq_args_float(a, "lo"), gq_args_float(a, "hi"), a, in, mi,
                        mo, err, errlen);
    if (!strcmp(op, "sum") || !strcmp(op, "mean") || !strcmp(op, "max"))
        return s_reduce(vk, st, op, a, in, mi, mo, err, errlen);
    if (!strcmp(op, "cast"))
        return s_cast(vk, st, a, in, mi, out, mo, err, errlen);
    gq_errf(err, errlen, "%s: vulkan: no shader", a->op->name);
    return GQ_EUNSUPPORTED;
}

const gq_vk_family_t gq_vk_tensor_family = {
    .prefix = "tensor.",
    .supports = s_supports,
    .run = s_run,
};
