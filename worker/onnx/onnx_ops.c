/* CPU kernels of the ONNX executor, first cut: elementwise math with NumPy broadcasting,
 * activations, MatMul/Gemm (plain loops; BLAS next, docs/onnx.md), softmax, and the shape
 * ops real models are full of. f32 everywhere, f64/i32/i64 where an op is commonly used
 * with them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"
#include "optable.h"
#include "util.h"

#define S_ELEMS(v) ((int64_t)((v)->nbytes / gq_dtype_size((v)->desc.dtype)))

/* ---- broadcasting ---- */

static gq_status s_broadcast(const gq_tdesc_t *a, const gq_tdesc_t *b, gq_tdesc_t *out, char *err,
                             size_t errlen)
{
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    memset(out, 0, sizeof *out);
    out->ndim = nd;
    for (int i = 0; i < nd; i++) {
        int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            char x[96], y[96];
            gq_errf(err, errlen, "shapes %s and %s do not broadcast (dim %d: %lld vs %lld)",
                    gq_tdesc_str(a, x, sizeof x), gq_tdesc_str(b, y, sizeof y), i, (long long)da,
                    (long long)db);
            return GQ_ESHAPE;
        }
        out->shape[i] = da == 1 ? db : da;
    }
    return GQ_OK;
}

/* Element strides of t read as shape out (0 along broadcast dims). */
static void s_bstrides(const gq_tdesc_t *t, const gq_tdesc_t *out, int64_t *st)
{
    int64_t s = 1;
    for (int i = out->ndim - 1; i >= 0; i--) {
        int it = i - (out->ndim - t->ndim);
        int64_t d = it >= 0 ? t->shape[it] : 1;
        st[i] = d == 1 ? 0 : s;
        s *= d;
    }
}

/* Calls fn(i_out, i_a, i_b) over every output element. */
#define S_BCAST_LOOP(out, a, b, ...)                                                               \
    do {                                                                                           \
        int64_t sa_[GQ_MAX_DIMS], sb_[GQ_MAX_DIMS], idx_[GQ_MAX_DIMS] = {0};                       \
        s_bstrides(a, out, sa_);                                                                   \
        s_bstrides(b, out, sb_);                                                                   \
        int64_t n_ = gq_tdesc_numel(out), ia = 0, ib = 0;                                          \
        for (int64_t io = 0; io < n_; io++) {                                                      \
            __VA_ARGS__;                                                                           \
            for (int d_ = (out)->ndim - 1; d_ >= 0; d_--) {                                        \
                ia += sa_[d_], ib += sb_[d_];                                                      \
                if (++idx_[d_] < (out)->shape[d_])                                                 \
                    break;                                                                         \
                ia -= sa_[d_] * idx_[d_], ib -= sb_[d_] * idx_[d_];                                \
                idx_[d_] = 0;                                                                      \
            }                                                                                      \
        }                                                                                          \
    } while (0)

typedef enum { S_ADD, S_SUB, S_MUL, S_DIV, S_POW, S_MAX, S_MIN } s_binop_t;

static gq_status s_binary(s_binop_t op, gq_onnx_val_t *const *in, int nin, gq_onnx_val_t *out,
                          char *err, size_t errlen)
{
    if (nin < 2 || !in[0] || !in[1]) {
        gq_errf(err, errlen, "needs two inputs");
        return GQ_ESHAPE;
    }
    const gq_onnx_val_t *a = in[0], *b = in[1];
    gq_dtype_t dt = a->desc.dtype;
    if (b->desc.dtype != dt && op != S_POW) {
        gq_errf(err, errlen, "inputs are %s and %s", gq_dtype_name(dt),
                gq_dtype_name(b->desc.dtype));
        return GQ_EDTYPE;
    }
    gq_status rc = s_broadcast(&a->desc, &b->desc, &out->desc, err, errlen);
    if (rc)
        return rc;
    out->desc.dtype = dt;
    if ((rc = gq_onnx_val_alloc(out, err, errlen)))
        return rc;
#define S_ARITH(T, EXPR)                                                                           \
    do {                                                                                           \
        const T *x = a->data, *y = b->data;                                                        \
        T *z = out->data;                                                                          \
        S_BCAST_LOOP(&out->desc, &a->desc, &b->desc, {                                             \
            T p = x[ia], q = y[ib];                                                                \
            z[io] = (EXPR);                                                                        \
        });                                                                                        \
    } while (0)
#define S_ALL_OPS(T, DIV, POW)                                                                     \
    switch (op) {                                                                                  \
    case S_ADD:                                                                                    \
        S_ARITH(T, p + q);                                                                         \
        break;                                                                                     \
    case S_SUB:                                                                                    \
        S_ARITH(T, p - q);                                                                         \
        break;                                                                                     \
    case S_MUL:                                                                                    \
        S_ARITH(T, p *q);                                                                          \
        break;                                                                                     \
    case S_DIV:                                                                                    \
        S_ARITH(T, DIV);                                                                           \
        break;                                                                                     \
    case S_POW:                                                                                    \
        S_ARITH(T, POW);                                                                           \
        break;                                                                                     \
    case S_MAX:                                                                                    \
        S_ARITH(T, p > q ? p : q);                                                                 \
        break;                                                                                     \
    case S_MIN:                                                                                    \
        S_ARITH(T, p < q ? p : q);                                                                 \
        break;                                                                                     \
    }
    if (op == S_POW && b->desc.dtype != dt) {
        gq_errf(err, errlen, "Pow with exponent of another type (%s) is not supported yet",
                gq_dtype_name(b->desc.dtype));
        return GQ_EDTYPE;
    }
    switch (dt) {
    case GQ_F32:
        S_ALL_OPS(float, p / q, powf(p, q));
        break;
    case GQ_F64:
        S_ALL_OPS(double, p / q, pow(p, q));
        break;
    case GQ_I32:
        S_ALL_OPS(int32_t, q ? p / q : 0, (int32_t)pow(p, q));
        break;
    case GQ_I64:
        S_ALL_OPS(int64_t, q ? p / q : 0, (int64_t)pow((double)p, (double)q));
        break;
    default:
        gq_errf(err, errlen, "%s inputs are not supported", gq_dtype_name(dt));
        return GQ_EDTYPE;
    }
    return GQ_OK;
}

#define S_BIN_KERNEL(NAME, OP)                                                                     \
    static gq_status NAME(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,  \
                          gq_onnx_val_t *out, int nout, char *err, size_t errlen)                  \
    {                                                                                              \
        (void)n, (void)opset, (void)nout;                                                          \
        return s_binary(OP, in, nin, out, err, errlen);                                            \
    }
S_BIN_KERNEL(s_add, S_ADD)
S_BIN_KERNEL(s_sub, S_SUB)
S_BIN_KERNEL(s_mul, S_MUL)
S_BIN_KERNEL(s_div, S_DIV)
S_BIN_KERNEL(s_pow, S_POW)

/* Max/Min: variadic, folded pairwise. */
static gq_status s_fold(s_binop_t op, gq_onnx_val_t *const *in, int nin, gq_onnx_val_t *out,
                        char *err, size_t errlen)
{
    if (nin < 1 || !in[0]) {
        gq_errf(err, errlen, "needs an input");
        return GQ_ESHAPE;
    }
    gq_onnx_val_t acc = *in[0];
    acc.owned = false;
    for (int i = 1; i < nin; i++) {
        gq_onnx_val_t next = {0};
        gq_onnx_val_t *pair[2] = {&acc, in[i]};
        gq_status rc = s_binary(op, pair, 2, &next, err, errlen);
        if (acc.owned)
            free(acc.data);
        if (rc) {
            if (next.owned)
                free(next.data);
            return rc;
        }
        acc = next;
    }
    if (!acc.owned) {
        out->desc = acc.desc;
        gq_status rc = gq_onnx_val_alloc(out, err, errlen);
        if (!rc)
            GQ_ONNX_COPY(out->data, acc.data, out->nbytes);
        return rc;
    }
    *out = acc;
    return GQ_OK;
}

static gq_status s_max(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                       gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)n, (void)opset, (void)nout;
    return s_fold(S_MAX, in, nin, out, err, errlen);
}

static gq_status s_min(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                       gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)n, (void)opset, (void)nout;
    return s_fold(S_MIN, in, nin, out, err, errlen);
}

/* ---- unary float math ---- */

typedef enum {
    S_RELU,
    S_SIGMOID,
    S_TANH,
    S_EXP,
    S_LOG,
    S_SQRT,
    S_ABS,
    S_NEG,
    S_RECIP,
    S_ERF,
    S_LEAKY,
    S_SOFTPLUS,
    S_HARDSIGMOID,
    S_CLIP,
    S_IDENTITY,
    S_ELU,
    S_CEIL,
    S_FLOOR,
} s_unop_t;

static double s_apply(s_unop_t op, double x, double p0, double p1)
{
    switch (op) {
    case S_RELU:
        return x > 0 ? x : 0;
    case S_SIGMOID:
        return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
    case S_TANH:
        return tanh(x);
    case S_EXP:
        return exp(x);
    case S_LOG:
        return log(x);
    case S_SQRT:
        return sqrt(x);
    case S_ABS:
        return fabs(x);
    case S_NEG:
        return -x;
    case S_RECIP:
        return 1 / x;
    case S_ERF:
        return erf(x);
    case S_LEAKY:
        return x >= 0 ? x : p0 * x;
    case S_SOFTPLUS:
        return x > 30 ? x : log1p(exp(x));
    case S_HARDSIGMOID: {
        double y = p0 * x + p1;
        return y < 0 ? 0 : y > 1 ? 1 : y;
    }
    case S_CLIP:
        return isnan(x) ? x : x < p0 ? p0 : x > p1 ? p1 : x;
    case S_IDENTITY:
        return x;
    case S_ELU:
        return x >= 0 ? x : p0 * (exp(x) - 1);
    case S_CEIL:
        return ceil(x);
    case S_FLOOR:
        return floor(x);
    }
    return x;
}

static gq_status s_unary(s_unop_t op, double p0, double p1, gq_onnx_val_t *const *in, int nin,
                         gq_onnx_val_t *out, char *err, size_t errlen)
{
    if (nin < 1 || !in[0]) {
        gq_errf(err, errlen, "needs an input");
        return GQ_ESHAPE;
    }
    const gq_onnx_val_t *a = in[0];
    gq_dtype_t dt = a->desc.dtype;
    out->desc = a->desc;
    gq_status rc = gq_onnx_val_alloc(out, err, errlen);
    if (rc)
        return rc;
    int64_t n = S_ELEMS(a);
    if (dt == GQ_F32) {
        const float *x = a->data;
        float *y = out->data;
        for (int64_t i = 0; i < n; i++)
            y[i] = (float)s_apply(op, x[i], p0, p1);
    } else if (dt == GQ_F64) {
        const double *x = a->data;
        double *y = out->data;
        for (int64_t i = 0; i < n; i++)
            y[i] = s_apply(op, x[i], p0, p1);
    } else if (op == S_IDENTITY) {
        GQ_ONNX_COPY(out->data, a->data, a->nbytes);
    } else if ((dt == GQ_I32 || dt == GQ_I64) &&
               (op == S_ABS || op == S_NEG || op == S_RELU || op == S_CLIP)) {
        for (int64_t i = 0; i < n; i++) {
            double v = dt == GQ_I32 ? ((const int32_t *)a->data)[i] : ((const int64_t *)a->data)[i];
            double r = s_apply(op, v, p0, p1);
            if (dt == GQ_I32)
                ((int32_t *)out->data)[i] = (int32_t)r;
            else
                ((int64_t *)out->data)[i] = (int64_t)r;
        }
    } else {
        gq_errf(err, errlen, "%s inputs are not supported", gq_dtype_name(dt));
        return GQ_EDTYPE;
    }
    return GQ_OK;
}

#define S_UN_KERNEL(NAME, OP, P0, P1)                                                              \
    static gq_status NAME(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,  \
                          gq_onnx_val_t *out, int nout, char *err, size_t errlen)                  \
    {                                                                                              \
        (void)n, (void)opset, (void)nout;                                                          \
        return s_unary(OP, P0, P1, in, nin, out, err, errlen);                                     \
    }
S_UN_KERNEL(s_relu, S_RELU, 0, 0)
S_UN_KERNEL(s_sigmoid, S_SIGMOID, 0, 0)
S_UN_KERNEL(s_tanh, S_TANH, 0, 0)
S_UN_KERNEL(s_exp, S_EXP, 0, 0)
S_UN_KERNEL(s_log, S_LOG, 0, 0)
S_UN_KERNEL(s_sqrt, S_SQRT, 0, 0)
S_UN_KERNEL(s_abs, S_ABS, 0, 0)
S_UN_KERNEL(s_neg, S_NEG, 0, 0)
S_UN_KERNEL(s_recip, S_RECIP, 0, 0)
S_UN_KERNEL(s_erf, S_ERF, 0, 0)
S_UN_KERNEL(s_softplus, S_SOFTPLUS, 0, 0)
S_UN_KERNEL(s_identity, S_IDENTITY, 0, 0)
S_UN_KERNEL(s_ceil, S_CEIL, 0, 0)
S_UN_KERNEL(s_floor, S_FLOOR, 0, 0)
S_UN_KERNEL(s_leaky, S_LEAKY, gq_onnx_attr_float(n, "alpha", 0.01f), 0)
S_UN_KERNEL(s_elu, S_ELU, gq_onnx_attr_float(n, "alpha", 1.0f), 0)
S_UN_KERNEL(s_hardsigmoid, S_HARDSIGMOID, gq_onnx_attr_float(n, "alpha", 0.2f),
            gq_onnx_attr_float(n, "beta", 0.5f))

/* A scalar of an optional input as double; def when omitted. */
static double s_scalar(const gq_onnx_val_t *v, double def)
{
    if (!v || v->nbytes == 0)
        return def;
    switch (v->desc.dtype) {
    case GQ_F32:
        return *(const float *)v->data;
    case GQ_F64:
        return *(const double *)v->data;
    case GQ_I32:
        return *(const int32_t *)v->data;
    case GQ_I64:
        return (double)*(const int64_t *)v->data;
    default:
        return def;
    }
}

static gq_status s_clip(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                        gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout;
    double lo, hi;
    if (opset < 11) {
        lo = gq_onnx_attr_float(n, "min", -INFINITY);
        hi = gq_onnx_attr_float(n, "max", INFINITY);
    } else {
        lo = s_scalar(nin > 1 ? in[1] : NULL, -INFINITY);
        hi = s_scalar(nin > 2 ? in[2] : NULL, INFINITY);
    }
    return s_unary(S_CLIP, lo, hi, in, nin, out, err, errlen);
}

/* ---- matrices ---- */

/* c[m,n] (+)= a[m,k] b[k,n] with element strides for transposes; f32. */
static void s_gemm_f32(int64_t m, int64_t n, int64_t k, const float *a, int64_t a_rs, int64_t a_cs,
                       const float *b, int64_t b_rs, int64_t b_cs, float alpha, float *c)
{
    for (int64_t i = 0; i < m; i++) {
        float *ci = c + i * n;
        for (int64_t j = 0; j < n; j++)
            ci[j] = 0;
        for (int64_t p = 0; p < k; p++) {
            float av = alpha * a[i * a_rs + p * a_cs];
            const float *bp = b + p * b_rs;
            if (b_cs == 1)
                for (int64_t j = 0; j < n; j++)
                    ci[j] += av * bp[j];
            else
                for (int64_t j = 0; j < n; j++)
                    ci[j] += av * bp[j * b_cs];
        }
    }
}

static gq_status s_matmul(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                          gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)n, (void)opset, (void)nout;
    if (nin < 2 || !in[0] || !in[1]) {
        gq_errf(err, errlen, "needs two inputs");
        return GQ_ESHAPE;
    }
    gq_tdesc_t a = in[0]->desc, b = in[1]->desc;
    if (a.dtype != GQ_F32 || b.dtype != GQ_F32) {
        gq_errf(err, errlen, "%s x %s: only f32 is supported yet", gq_dtype_name(a.dtype),
                gq_dtype_name(b.dtype));
        return GQ_EDTYPE;
    }
    if (a.ndim == 0 || b.ndim == 0) {
        gq_errf(err, errlen, "scalars cannot be multiplied as matrices");
        return GQ_ESHAPE;
    }
    bool a1 = a.ndim == 1, b1 = b.ndim == 1;
    if (a1) { /* [k] -> [1,k] */
        a.shape[1] = a.shape[0], a.shape[0] = 1, a.ndim = 2;
    }
    if (b1) { /* [k] -> [k,1] */
        b.shape[1] = 1, b.ndim = 2;
    }
    int64_t m = a.shape[a.ndim - 2], k = a.shape[a.ndim - 1], nn = b.shape[b.ndim - 1];
    if (b.shape[b.ndim - 2] != k) {
        gq_errf(err, errlen, "inner dims differ: %lld vs %lld", (long long)k,
                (long long)b.shape[b.ndim - 2]);
        return GQ_ESHAPE;
    }
    gq_tdesc_t ba = a, bb = b, bo;
    ba.ndim -= 2, bb.ndim -= 2;
    gq_status rc = s_broadcast(&ba, &bb, &bo, err, errlen);
    if (rc)
        return rc;
    memset(&out->desc, 0, sizeof out->desc);
    out->desc.dtype = GQ_F32;
    for (int i = 0; i < bo.ndim; i++)
        out->desc.shape[out->desc.ndim++] = bo.shape[i];
    if (!a1)
        out->desc.shape[out->desc.ndim++] = m;
    if (!b1)
        out->desc.shape[out->desc.ndim++] = nn;
    if (out->desc.ndim > GQ_MAX_DIMS) {
        gq_errf(err, errlen, "result has more than %d dims", GQ_MAX_DIMS);
        return GQ_ESHAPE;
    }
    if ((rc = gq_onnx_val_alloc(out, err, errlen)))
        return rc;
    const float *A = in[0]->data, *B = in[1]->data;
    float *C = out->data;
    gq_tdesc_t one = {.dtype = GQ_F32, .ndim = 0};
    (void)one;
    S_BCAST_LOOP(&bo, &ba, &bb, {
        s_gemm_f32(m, nn, k, A + ia * m * k, k, 1, B + ib * k * nn, nn, 1, 1.0f, C + io * m * nn);
    });
    return GQ_OK;
}

static gq_status s_gemm(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                        gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    if (nin < 2 || !in[0] || !in[1] || in[0]->desc.ndim != 2 || in[1]->desc.ndim != 2) {
        gq_errf(err, errlen, "needs two matrices");
        return GQ_ESHAPE;
    }
    if (in[0]->desc.dtype != GQ_F32 || in[1]->desc.dtype != GQ_F32) {
        gq_errf(err, errlen, "only f32 is supported yet");
        return GQ_EDTYPE;
    }
    float alpha = gq_onnx_attr_float(n, "alpha", 1.0f), beta = gq_onnx_attr_float(n, "beta", 1.0f);
    bool ta = gq_onnx_attr_int(n, "transA", 0), tb = gq_onnx_attr_int(n, "transB", 0);
    int64_t m = in[0]->desc.shape[ta ? 1 : 0], k = in[0]->desc.shape[ta ? 0 : 1];
    int64_t kb = in[1]->desc.shape[tb ? 1 : 0], nn = in[1]->desc.shape[tb ? 0 : 1];
    if (k != kb) {
        gq_errf(err, errlen, "inner dims differ: %lld vs %lld", (long long)k, (long long)kb);
        return GQ_ESHAPE;
    }
    memset(&out->desc, 0, sizeof out->desc);
    out->desc.dtype = GQ_F32;
    out->desc.ndim = 2;
    out->desc.shape[0] = m, out->desc.shape[1] = nn;
    gq_status rc = gq_onnx_val_alloc(out, err, errlen);
    if (rc)
        return rc;
    const float *A = in[0]->data, *B = in[1]->data;
    float *C = out->data;
    s_gemm_f32(m, nn, k, A, ta ? 1 : k, ta ? m : 1, B, tb ? 1 : nn, tb ? k : 1, alpha, C);
    if (nin > 2 && in[2] && beta != 0) {
        gq_tdesc_t cd;
        if ((rc = s_broadcast(&in[2]->desc, &out->desc, &cd, err, errlen)))
            return rc;
        if (cd.ndim != 2 || cd.shape[0] != m || cd.shape[1] != nn) {
            gq_errf(err, errlen, "bias C does not broadcast to [%lld,%lld]", (long long)m,
                    (long long)nn);
            return GQ_ESHAPE;
        }
        const float *bias = in[2]->data;
        S_BCAST_LOOP(&out->desc, &in[2]->desc, &out->desc, { C[io] += beta * bias[ia]; });
    }
    return GQ_OK;
}

/* ---- softmax ---- */

static gq_status s_softmax_any(bool log_form, const Onnx__NodeProto *n, int opset,
                               gq_onnx_val_t *const *in, int nin, gq_onnx_val_t *out, char *err,
                               size_t errlen)
{
    if (nin < 1 || !in[0] || in[0]->desc.dtype != GQ_F32) {
        gq_errf(err, errlen, "needs one f32 input");
        return GQ_EDTYPE;
    }
    const gq_tdesc_t *d = &in[0]->desc;
    int64_t axis = gq_onnx_attr_int(n, "axis", opset < 13 ? 1 : -1);
    if (axis < 0)
        axis += d->ndim;
    if (axis < 0 || axis >= (d->ndim ? d->ndim : 1)) {
        gq_errf(err, errlen, "axis %lld out of range for rank %d", (long long)axis, d->ndim);
        return GQ_EPARAM;
    }
    out->desc = *d;
    gq_status rc = gq_onnx_val_alloc(out, err, errlen);
    if (rc)
        return rc;
    /* opset < 13: the input is coerced to 2-D at axis; >= 13: one axis. */
    int64_t outer = 1, len = 1, inner = 1;
    for (int i = 0; i < d->ndim; i++) {
        if (i < axis)
            outer *= d->shape[i];
        else if (opset < 13 || i == axis)
            len *= d->shape[i];
        else
            inner *= d->shape[i];
    }
    const float *x = in[0]->data;
    float *y = out->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t q = 0; q < inner; q++) {
            const float *xs = x + o * len * inner + q;
            float *ys = y + o * len * inner + q;
            float mx = -INFINITY;
            for (int64_t i = 0; i < len; i++)
                mx = xs[i * inner] > mx ? xs[i * inner] : mx;
            double sum = 0;
            for (int64_t i = 0; i < len; i++)
                sum += exp((double)xs[i * inner] - mx);
            for (int64_t i = 0; i < len; i++)
                ys[i * inner] = log_form ? (float)(xs[i * inner] - mx - log(sum))
                                         : (float)(exp((double)xs[i * inner] - mx) / sum);
        }
    return GQ_OK;
}

static gq_status s_softmax(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                           gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout;
    return s_softmax_any(false, n, opset, in, nin, out, err, errlen);
}

static gq_status s_logsoftmax(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                              int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout;
    return s_softmax_any(true, n, opset, in, nin, out, err, errlen);
}

/* ---- shapes ---- */

/* out = in's bytes under a new descriptor. */
static gq_status s_copy_as(const gq_onnx_val_t *in, const gq_tdesc_t *d, gq_onnx_val_t *out,
                           char *err, size_t errlen)
{
    out->desc = *d;
    gq_status rc = gq_onnx_val_alloc(out, err, errlen);
    if (!rc) {
        if (out->nbytes != in->nbytes) {
            gq_errf(err, errlen, "new shape holds %zu bytes, the input %zu", out->nbytes,
                    in->nbytes);
            return GQ_ESHAPE;
        }
        GQ_ONNX_COPY(out->data, in->data, in->nbytes);
    }
    return rc;
}

static gq_status s_reshape(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                           gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout;
    if (opset < 5 || nin < 2 || !in[0] || !in[1] || in[1]->desc.dtype != GQ_I64 ||
        in[1]->desc.ndim != 1) {
        gq_errf(err, errlen, "needs data and an i64[n] shape");
        return GQ_ESHAPE;
    }
    const int64_t *sh = in[1]->data;
    int64_t nd = in[1]->desc.shape[0];
    bool allowzero = gq_onnx_attr_int(n, "allowzero", 0);
    if (nd > GQ_MAX_DIMS) {
        gq_errf(err, errlen, "shape has %lld dims, over %d", (long long)nd, GQ_MAX_DIMS);
        return GQ_ESHAPE;
    }
    gq_tdesc_t d = {.dtype = in[0]->desc.dtype, .ndim = (int)nd};
    int64_t known = 1, total = gq_tdesc_numel(&in[0]->desc);
    int infer = -1;
    for (int i = 0; i < nd; i++) {
        int64_t v = sh[i];
        if (v == 0 && !allowzero) {
            if (i >= in[0]->desc.ndim) {
                gq_errf(err, errlen, "shape[%d] = 0 copies a dim the input does not have", i);
                return GQ_ESHAPE;
            }
            v = in[0]->desc.shape[i];
        }
        if (v == -1) {
            if (infer >= 0) {
                gq_errf(err, errlen, "more than one -1 in the shape");
                return GQ_ESHAPE;
            }
            infer = i;
            continue;
        }
        if (v < 0) {
            gq_errf(err, errlen, "shape[%d] = %lld", i, (long long)v);
            return GQ_ESHAPE;
        }
        d.shape[i] = v;
        known *= v;
    }
    if (infer >= 0) {
        if (known == 0 || total % known) {
            gq_errf(err, errlen, "cannot infer the -1 dim: %lld elements over %lld",
                    (long long)total, (long long)known);
            return GQ_ESHAPE;
        }
        d.shape[infer] = total / known;
    }
    return s_copy_as(in[0], &d, out, err, errlen);
}

static gq_status s_flatten(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                           gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout, (void)nin;
    const gq_tdesc_t *s = &in[0]->desc;
    int64_t axis = gq_onnx_attr_int(n, "axis", 1);
    if (axis < 0)
        axis += s->ndim;
    if (axis < 0 || axis > s->ndim) {
        gq_errf(err, errlen, "axis out of range for rank %d", s->ndim);
        return GQ_EPARAM;
    }
    gq_tdesc_t d = {.dtype = s->dtype, .ndim = 2, .shape = {1, 1}};
    for (int i = 0; i < s->ndim; i++)
        d.shape[i < axis ? 0 : 1] *= s->shape[i];
    return s_copy_as(in[0], &d, out, err, errlen);
}

static gq_status s_transpose(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                             gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout, (void)nin;
    const gq_tdesc_t *s = &in[0]->desc;
    int nd = s->ndim, perm[GQ_MAX_DIMS];
    const Onnx__AttributeProto *pa = gq_onnx_attr(n, "perm");
    bool seen[GQ_MAX_DIMS] = {false};
    for (int i = 0; i < nd; i++) {
        perm[i] = pa ? (i < (int)pa->n_ints ? (int)pa->ints[i] : -1) : nd - 1 - i;
        if (perm[i] < 0 || perm[i] >= nd || seen[perm[i]] || (pa && (int)pa->n_ints != nd)) {
            gq_errf(err, errlen, "perm is not a permutation of %d dims", nd);
            return GQ_EPARAM;
        }
        seen[perm[i]] = true;
    }
    out->desc = *s;
    for (int i = 0; i < nd; i++)
        out->desc.shape[i] = s->shape[perm[i]];
    gq_status rc = gq_onnx_val_alloc(out, err, errlen);
    if (rc)
        return rc;
    int64_t st[GQ_MAX_DIMS], acc = 1, idx[GQ_MAX_DIMS] = {0};
    for (int i = nd - 1; i >= 0; i--)
        st[i] = acc, acc *= s->shape[i];
    size_t es = gq_dtype_size(s->dtype);
    int64_t total = gq_tdesc_numel(&out->desc), src = 0;
    const char *x = in[0]->data;
    char *y = out->data;
    for (int64_t o = 0; o < total; o++) {
        GQ_ONNX_COPY(y + o * es, x + src * es, es);
        for (int d = nd - 1; d >= 0; d--) {
            src += st[perm[d]];
            if (++idx[d] < out->desc.shape[d])
                break;
            src -= st[perm[d]] * idx[d];
            idx[d] = 0;
        }
    }
    return GQ_OK;
}

static gq_status s_shape(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                         gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout, (void)nin;
    const gq_tdesc_t *s = &in[0]->desc;
    int64_t start = opset >= 15 ? gq_onnx_attr_int(n, "start", 0) : 0;
    int64_t end = opset >= 15 ? gq_onnx_attr_int(n, "end", s->ndim) : s->ndim;
    if (start < 0)
        start += s->ndim;
    if (end < 0)
        end += s->ndim;
    start = start < 0 ? 0 : start > s->ndim ? s->ndim : start;
    end = end < start ? start : end > s->ndim ? s->ndim : end;
    out->desc = (gq_tdesc_t){.dtype = GQ_I64, .ndim = 1, .shape = {end - start}};
    gq_status rc = gq_onnx_val_alloc(out, err, errlen);
    if (!rc)
        for (int64_t i = start; i < end; i++)
            ((int64_t *)out->data)[i - start] = s->shape[i];
    return rc;
}

/* Axes from the attribute (opset < 13) or the second input (>= 13). */
static int s_axes(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                  int64_t *axes)
{
    if (opset >= 13) {
        if (nin < 2 || !in[1] || in[1]->desc.dtype != GQ_I64)
            return 0;
        int64_t k = S_ELEMS(in[1]);
        if (k > GQ_MAX_DIMS)
            return -1;
        GQ_ONNX_COPY(axes, in[1]->data, (size_t)k * sizeof *axes);
        return (int)k;
    }
    const Onnx__AttributeProto *a = gq_onnx_attr(n, "axes");
    if (!a)
        return 0;
    if (a->n_ints > GQ_MAX_DIMS)
        return -1;
    GQ_ONNX_COPY(axes, a->ints, a->n_ints * sizeof *axes);
    return (int)a->n_ints;
}

static gq_status s_unsqueeze(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                             gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout;
    int64_t axes[GQ_MAX_DIMS];
    int k = s_axes(n, opset, in, nin, axes);
    const gq_tdesc_t *s = &in[0]->desc;
    int nd = s->ndim + k;
    if (k <= 0 || nd > GQ_MAX_DIMS) {
        gq_errf(err, errlen, "needs 1..%d axes", GQ_MAX_DIMS - s->ndim);
        return GQ_EPARAM;
    }
    bool ins[GQ_MAX_DIMS] = {false};
    for (int i = 0; i < k; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + nd : axes[i];
        if (a < 0 || a >= nd || ins[a]) {
            gq_errf(err, errlen, "axis %lld out of range or repeated", (long long)axes[i]);
            return GQ_EPARAM;
        }
        ins[a] = true;
    }
    gq_tdesc_t d = {.dtype = s->dtype, .ndim = nd};
    for (int i = 0, j = 0; i < nd; i++)
        d.shape[i] = ins[i] ? 1 : s->shape[j++];
    return s_copy_as(in[0], &d, out, err, errlen);
}

static gq_status s_squeeze(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                           gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout;
    int64_t axes[GQ_MAX_DIMS];
    int k = s_axes(n, opset, in, nin, axes);
    const gq_tdesc_t *s = &in[0]->desc;
    bool drop[GQ_MAX_DIMS] = {false};
    if (k < 0) {
        gq_errf(err, errlen, "too many axes");
        return GQ_EPARAM;
    }
    for (int i = 0; i < k; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + s->ndim : axes[i];
        if (a < 0 || a >= s->ndim || s->shape[a] != 1) {
            gq_errf(err, errlen, "axis %lld is not a dim of size 1", (long long)axes[i]);
            return GQ_EPARAM;
        }
        drop[a] = true;
    }
    gq_tdesc_t d = {.dtype = s->dtype};
    for (int i = 0; i < s->ndim; i++)
        if (!(k ? drop[i] : s->shape[i] == 1))
            d.shape[d.ndim++] = s->shape[i];
    return s_copy_as(in[0], &d, out, err, errlen);
}

static gq_status s_concat(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                          gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    if (nin < 1 || !in[0]) {
        gq_errf(err, errlen, "needs inputs");
        return GQ_ESHAPE;
    }
    const gq_tdesc_t *s0 = &in[0]->desc;
    int64_t axis = gq_onnx_attr_int(n, "axis", 0);
    if (axis < 0)
        axis += s0->ndim;
    if (axis < 0 || axis >= s0->ndim) {
        gq_errf(err, errlen, "axis out of range for rank %d", s0->ndim);
        return GQ_EPARAM;
    }
    gq_tdesc_t d = *s0;
    d.shape[axis] = 0;
    for (int i = 0; i < nin; i++) {
        const gq_tdesc_t *s = &in[i]->desc;
        bool ok = s->dtype == s0->dtype && s->ndim == s0->ndim;
        for (int j = 0; ok && j < s->ndim; j++)
            ok = j == axis || s->shape[j] == s0->shape[j];
        if (!ok) {
            char x[96], y[96];
            gq_errf(err, errlen, "input %d %s does not match input 0 %s off axis %lld", i,
                    gq_tdesc_str(s, x, sizeof x), gq_tdesc_str(s0, y, sizeof y), (long long)axis);
            return GQ_ESHAPE;
        }
        d.shape[axis] += s->shape[axis];
    }
    out->desc = d;
    gq_status rc = gq_onnx_val_alloc(out, err, errlen);
    if (rc)
        return rc;
    int64_t outer = 1, inner = gq_dtype_size(d.dtype);
    for (int j = 0; j < axis; j++)
        outer *= d.shape[j];
    for (int j = (int)axis + 1; j < d.ndim; j++)
        inner *= d.shape[j];
    char *y = out->data;
    for (int64_t o = 0; o < outer; o++)
        for (int i = 0; i < nin; i++) {
            size_t chunk = (size_t)(in[i]->desc.shape[axis] * inner);
            GQ_ONNX_COPY(y, (const char *)in[i]->data + (size_t)o * chunk, chunk);
            y += chunk;
        }
    return GQ_OK;
}

/* Constant: the value attribute (a tensor) or, from opset 12, value_float(s)/value_int(s). */
static gq_status s_constant(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                            gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)in, (void)nin, (void)nout;
    const Onnx__AttributeProto *a;
    if ((a = gq_onnx_attr(n, "value")) && a->t) {
        void *data = NULL;
        gq_status rc = gq_onnx_tensor_decode(a->t, NULL, NULL, &out->desc, &data, err, errlen);
        if (rc)
            return rc;
        out->data = data;
        out->nbytes = gq_tdesc_nbytes(&out->desc);
        out->owned = true;
        return GQ_OK;
    }
    memset(&out->desc, 0, sizeof out->desc);
    const Onnx__AttributeProto *f = gq_onnx_attr(n, "value_float"),
                               *fs = gq_onnx_attr(n, "value_floats"),
                               *i = gq_onnx_attr(n, "value_int"),
                               *is = gq_onnx_attr(n, "value_ints");
    if (f || fs) {
        out->desc.dtype = GQ_F32;
        out->desc.ndim = fs ? 1 : 0;
        out->desc.shape[0] = fs ? (int64_t)fs->n_floats : 0;
    } else if (i || is) {
        out->desc.dtype = GQ_I64;
        out->desc.ndim = is ? 1 : 0;
        out->desc.shape[0] = is ? (int64_t)is->n_ints : 0;
    } else {
        gq_errf(err, errlen,
                "no value attribute gq supports (value, value_float(s), value_int(s))");
        return GQ_EUNSUPPORTED;
    }
    gq_status rc = gq_onnx_val_alloc(out, err, errlen);
    if (rc)
        return rc;
    if (f)
        *(float *)out->data = f->f;
    else if (fs)
        GQ_ONNX_COPY(out->data, fs->floats, fs->n_floats * sizeof(float));
    else if (i)
        *(int64_t *)out->data = i->i;
    else
        GQ_ONNX_COPY(out->data, is->ints, is->n_ints * sizeof(int64_t));
    return GQ_OK;
}

/* Dropout at inference: the input unchanged, and an all-true mask when asked for. */
static gq_status s_dropout(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                           gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    if (opset >= 12 && nin > 2 && in[2] && in[2]->nbytes && *(const uint8_t *)in[2]->data) {
        gq_errf(err, errlen, "training_mode = true: gq runs inference only");
        return GQ_EUNSUPPORTED;
    }
    gq_status rc = s_unary(S_IDENTITY, 0, 0, in, 1, out, err, errlen);
    if (rc || nout < 2)
        return rc;
    (void)n;
    out[1].desc = in[0]->desc;
    out[1].desc.dtype = GQ_BOOL;
    if ((rc = gq_onnx_val_alloc(&out[1], err, errlen)))
        return rc;
    memset(out[1].data, 1, out[1].nbytes);
    return GQ_OK;
}

const gq_onnx_kernel_t gq_onnx_kernels[] = {
    {"Constant", 1, s_constant},
    {"Dropout", 7, s_dropout},
    {"Add", 7, s_add},
    {"Sub", 7, s_sub},
    {"Mul", 7, s_mul},
    {"Div", 7, s_div},
    {"Pow", 7, s_pow},
    {"Max", 8, s_max},
    {"Min", 8, s_min},
    {"Relu", 6, s_relu},
    {"Sigmoid", 6, s_sigmoid},
    {"Tanh", 6, s_tanh},
    {"Exp", 6, s_exp},
    {"Log", 6, s_log},
    {"Sqrt", 6, s_sqrt},
    {"Abs", 6, s_abs},
    {"Neg", 6, s_neg},
    {"Reciprocal", 6, s_recip},
    {"Erf", 9, s_erf},
    {"Softplus", 1, s_softplus},
    {"Identity", 1, s_identity},
    {"Ceil", 6, s_ceil},
    {"Floor", 6, s_floor},
    {"LeakyRelu", 6, s_leaky},
    {"Elu", 6, s_elu},
    {"HardSigmoid", 6, s_hardsigmoid},
    {"Clip", 6, s_clip},
    {"MatMul", 1, s_matmul},
    {"Gemm", 7, s_gemm},
    {"Softmax", 1, s_softmax},
    {"LogSoftmax", 1, s_logsoftmax},
    {"Reshape", 5, s_reshape},
    {"Flatten", 1, s_flatten},
    {"Transpose", 1, s_transpose},
    {"Shape", 1, s_shape},
    {"Unsqueeze", 1, s_unsqueeze},
    {"Squeeze", 1, s_squeeze},
    {"Concat", 4, s_concat},
};
const int gq_onnx_kernel_count = (int)(sizeof gq_onnx_kernels / sizeof gq_onnx_kernels[0]);
