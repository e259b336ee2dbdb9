/* tensor.*: elementwise arithmetic, reductions and casts. Semantics follow NumPy where
 * NumPy has an answer (broadcasting, reduction dtypes, integer wrap-around). */
#include "optable.h"
#include "util.h"
#include <math.h>
#include <string.h>

#define S_REDUCE_DTYPES GQ_DT_NUMERIC
#define S_FLOAT_LIMIT 1e30

static const char *const s_cast_targets[] = {"f32", "f64", "f16", "i16", "i32", "u8", NULL};

static const gq_param_spec_t s_scale_params[] = {
    {.name = "factor",
     .type = GQ_PT_FLOAT,
     .min = -S_FLOAT_LIMIT,
     .max = S_FLOAT_LIMIT,
     .def = {.type = GQ_PT_FLOAT, .f = 1.0},
     .help = "multiplier applied to every element"},
    {.name = "offset",
     .type = GQ_PT_FLOAT,
     .min = -S_FLOAT_LIMIT,
     .max = S_FLOAT_LIMIT,
     .def = {.type = GQ_PT_FLOAT, .f = 0.0},
     .help = "added after the multiplication"},
};

static const gq_param_spec_t s_clamp_params[] = {
    {.name = "lo",
     .type = GQ_PT_FLOAT,
     .min = -INFINITY,
     .max = INFINITY,
     .def = {.type = GQ_PT_FLOAT, .f = -INFINITY},
     .help = "lower bound (inclusive); must be <= hi"},
    {.name = "hi",
     .type = GQ_PT_FLOAT,
     .min = -INFINITY,
     .max = INFINITY,
     .def = {.type = GQ_PT_FLOAT, .f = INFINITY},
     .help = "upper bound (inclusive); must be >= lo"},
};

static const gq_param_spec_t s_reduce_params[] = {
    {.name = "axis",
     .type = GQ_PT_INT,
     .min = -GQ_MAX_DIMS,
     .max = GQ_MAX_DIMS - 1,
     .def = {.type = GQ_PT_INT, .i = -1},
     .help = "axis to reduce; negative counts from the last; must exist in the input"},
    {.name = "keepdims",
     .type = GQ_PT_BOOL,
     .def = {.type = GQ_PT_BOOL, .i = 0},
     .help = "keep the reduced axis as a dim of size 1"},
};

static const gq_param_spec_t s_cast_params[] = {
    {.name = "to",
     .type = GQ_PT_STR,
     .required = true,
     .choices = s_cast_targets,
     .help = "target dtype"},
};

/* NumPy broadcasting: dims align from the right; each pair must be equal or contain a 1. */
static gq_status s_shape_binary(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                                int *nout, char *err, size_t errlen)
{
    (void)nin;
    const char *op = a->op->name;
    char d0[64], d1[64];
    if (in[0].dtype != in[1].dtype) {
        gq_errf(err, errlen,
                "%s: input 1 %s has a different dtype than input 0 %s (inputs "
                "must have the same dtype)",
                op, gq_tdesc_str(&in[1], d1, sizeof d1), gq_tdesc_str(&in[0], d0, sizeof d0));
        return GQ_EDTYPE;
    }
    int nd = in[0].ndim > in[1].ndim ? in[0].ndim : in[1].ndim;
    gq_tdesc_t o = {.dtype = in[0].dtype, .ndim = nd};
    for (int d = 0; d < nd; d++) {
        int d0i = d - (nd - in[0].ndim), d1i = d - (nd - in[1].ndim);
        int64_t x = d0i >= 0 ? in[0].shape[d0i] : 1;
        int64_t y = d1i >= 0 ? in[1].shape[d1i] : 1;
        if (x != y && x != 1 && y != 1) {
            gq_errf(err, errlen, "%s: input 1 %s does not broadcast with input 0 %s", op,
                    gq_tdesc_str(&in[1], d1, sizeof d1), gq_tdesc_str(&in[0], d0, sizeof d0));
            return GQ_ESHAPE;
        }
        o.shape[d] = x == 1 ? y : x;
    }
    out[0] = o;
    *nout = 1;
    return GQ_OK;
}

static gq_status s_shape_same(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                              int *nout, char *err, size_t errlen)
{
    (void)a, (void)nin, (void)err, (void)errlen;
    out[0] = in[0];
    *nout = 1;
    return GQ_OK;
}

/* lo > hi is a param error, but the op table has no per-op param check, so the shape rule
 * (which runs at admission too) catches it. */
static gq_status s_shape_clamp(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                               int *nout, char *err, size_t errlen)
{
    double lo = gq_args_float(a, "lo"), hi = gq_args_float(a, "hi");
    if (lo > hi) {
        char l[32], h[32];
        gq_value_t vl = {.type = GQ_PT_FLOAT, .f = lo}, vh = {.type = GQ_PT_FLOAT, .f = hi};
        gq_errf(err, errlen, "%s: param 'lo' = %s must be <= param 'hi' = %s", a->op->name,
                gq_value_str(&vl, l, sizeof l), gq_value_str(&vh, h, sizeof h));
        return GQ_EPARAM;
    }
    return s_shape_same(a, in, nin, out, nout, err, errlen);
}

typedef enum { S_SUM, S_MEAN, S_MAX } s_reduce_t;

static gq_status s_shape_reduce(s_reduce_t kind, const gq_args_t *a, const gq_tdesc_t *in,
                                gq_tdesc_t *out, int *nout, char *err, size_t errlen)
{
    const char *op = a->op->name;
    char ds[64];
    int64_t axis = gq_args_int(a, "axis");
    int nd = in[0].ndim;
    if (axis < -nd || axis >= nd) {
        gq_errf(err, errlen, "%s: param 'axis' = %lld out of range for input 0 %s (ndim %d)", op,
                (long long)axis, gq_tdesc_str(&in[0], ds, sizeof ds), nd);
        return GQ_EPARAM;
    }
    int ax = (int)(axis < 0 ? axis + nd : axis);
    if (kind == S_MAX && in[0].shape[ax] == 0) {
        gq_errf(err, errlen,
                "%s: axis %d of input 0 %s is a zero-size axis (a maximum needs "
                "at least one element)",
                op, ax, gq_tdesc_str(&in[0], ds, sizeof ds));
        return GQ_ESHAPE;
    }
    gq_dtype_t dt = in[0].dtype;
    bool is_float = dt == GQ_F32 || dt == GQ_F64 || dt == GQ_F16;
    gq_tdesc_t o = {.dtype = dt};
    if (kind == S_SUM && !is_float)
        o.dtype = GQ_I64;
    else if (kind == S_MEAN && !is_float)
        o.dtype = GQ_F64;
    bool keep = gq_args_bool(a, "keepdims");
    for (int d = 0; d < nd; d++) {
        if (d != ax)
            o.shape[o.ndim++] = in[0].shape[d];
        else if (keep)
            o.shape[o.ndim++] = 1;
    }
    out[0] = o;
    *nout = 1;
    return GQ_OK;
}

static gq_status s_shape_sum(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                             int *nout, char *err, size_t errlen)
{
    (void)nin;
    return s_shape_reduce(S_SUM, a, in, out, nout, err, errlen);
}

static gq_status s_shape_mean(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                              int *nout, char *err, size_t errlen)
{
    (void)nin;
    return s_shape_reduce(S_MEAN, a, in, out, nout, err, errlen);
}

static gq_status s_shape_max(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                             int *nout, char *err, size_t errlen)
{
    (void)nin;
    return s_shape_reduce(S_MAX, a, in, out, nout, err, errlen);
}

static gq_status s_shape_cast(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                              int *nout, char *err, size_t errlen)
{
    (void)nin;
    const char *to = gq_args_str(a, "to");
    gq_dtype_t dt = gq_dtype_from_name(to);
    if (dt == GQ_DTYPE_INVALID) {
        gq_errf(err, errlen, "%s: param 'to' = '%s' is not a dtype", a->op->name, to ? to : "");
        return GQ_EPARAM;
    }
    out[0] = in[0];
    out[0].dtype = dt;
    *nout = 1;
    return GQ_OK;
}

#define S_ELEMENTWISE_DTYPES (GQ_DT_FLOATS | GQ_DT_BIT(GQ_I32))
#define S_PARAMS(p) (p), (int)(sizeof(p) / sizeof((p)[0]))

static const gq_op_spec_t s_specs[] = {
    {.name = "tensor.add",
     .flags = GQ_OPF_LIGHT,
     .summary = "a + b with NumPy broadcasting; same dtype; i32 wraps around on overflow",
     .min_inputs = 2,
     .max_inputs = 2,
     .in_dtypes = S_ELEMENTWISE_DTYPES,
     .shape = s_shape_binary},
    {.name = "tensor.mul",
     .flags = GQ_OPF_LIGHT,
     .summary = "a * b with NumPy broadcasting; same dtype; i32 wraps around on overflow",
     .min_inputs = 2,
     .max_inputs = 2,
     .in_dtypes = S_ELEMENTWISE_DTYPES,
     .shape = s_shape_binary},
    {.name = "tensor.scale",
     .flags = GQ_OPF_LIGHT | GQ_OPF_BATCHABLE,
     .summary = "x * factor + offset, computed in double and rounded once to the input dtype",
     .min_inputs = 1,
     .max_inputs = 1,
     .in_dtypes = GQ_DT_FLOATS,
     .params = S_PARAMS(s_scale_params),
     .shape = s_shape_same},
    {.name = "tensor.clamp",
     .flags = GQ_OPF_LIGHT | GQ_OPF_BATCHABLE,
     .summary = "min(max(x, lo), hi); NaN stays NaN",
     .min_inputs = 1,
     .max_inputs = 1,
     .in_dtypes = GQ_DT_FLOATS,
     .params = S_PARAMS(s_clamp_params),
     .shape = s_shape_clamp},
    {.name = "tensor.sum",
     .flags = GQ_OPF_LIGHT,
     .summary = "sum along one axis; ints give i64 (wrapping), floats keep their dtype "
                "(accumulated in double); empty axis gives 0",
     .min_inputs = 1,
     .max_inputs = 1,
     .in_dtypes = S_REDUCE_DTYPES,
     .params = S_PARAMS(s_reduce_params),
     .shape = s_shape_sum},
    {.name = "tensor.mean",
     .flags = GQ_OPF_LIGHT,
     .summary = "mean along one axis; ints give f64, floats keep their dtype; empty axis "
                "gives NaN",
     .min_inputs = 1,
     .max_inputs = 1,
     .in_dtypes = S_REDUCE_DTYPES,
     .params = S_PARAMS(s_reduce_params),
     .shape = s_shape_mean},
    {.name = "tensor.max",
     .flags = GQ_OPF_LIGHT,
     .summary = "maximum along one axis, same dtype; NaN wins; a zero-size axis is an error",
     .min_inputs = 1,
     .max_inputs = 1,
     .in_dtypes = S_REDUCE_DTYPES,
     .params = S_PARAMS(s_reduce_params),
     .shape = s_shape_max},
    {.name = "tensor.cast",
     .flags = GQ_OPF_LIGHT | GQ_OPF_BATCHABLE,
     .summary = "convert dtype: float->int truncates toward zero and saturates (NaN -> 0), "
                "int->int saturates, ->f16 rounds to nearest even (overflow -> +-inf), "
                "widening is exact",
     .min_inputs = 1,
     .max_inputs = 1,
     .in_dtypes = GQ_DT_NUMERIC,
     .params = S_PARAMS(s_cast_params),
     .shape = s_shape_cast},
};

const gq_op_family_t gq_ops_tensor = {s_specs, (int)(sizeof s_specs / sizeof s_specs[0])};
