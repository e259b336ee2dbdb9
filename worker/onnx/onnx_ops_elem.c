/* ONNX kernels: elementwise math with NumPy broadcasting, activations, Clip, Dropout
 * (inference). f32 everywhere, f64/i32/i64 where an op is commonly used with them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"
#include "optable.h"
#include "par.h"
#include "util.h"

/* Elements per index of a threaded elementwise loop. */
#define S_BLOCK 16384

#define GQ_ONNX_ELEMS(v) ((int64_t)((v)->nbytes / gq_dtype_size((v)->desc.dtype)))

gq_status gq_onnx_broadcast(const gq_tdesc_t *a, const gq_tdesc_t *b, gq_tdesc_t *out, char *err,
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
void gq_onnx_bstrides(const gq_tdesc_t *t, const gq_tdesc_t *out, int64_t *st)
{
    int64_t s = 1;
    for (int i = out->ndim - 1; i >= 0; i--) {
        int it = i - (out->ndim - t->ndim);
        int64_t d = it >= 0 ? t->shape[it] : 1;
        st[i] = d == 1 ? 0 : s;
        s *= d;
    }
}

typedef enum { S_ADD, S_SUB, S_MUL, S_DIV, S_POW, S_MAX, S_MIN } s_binop_t;

/* The same ops for the dtypes without a typed loop (f16, the small integers) and Pow with an
 * exponent of another type, through double: exact for integers below 2^53; integer
 * division truncates, division by zero gives 0; results wrap to the output type. */
static void s_binary_any(s_binop_t op, const gq_onnx_val_t *a, const gq_onnx_val_t *b,
                         gq_onnx_val_t *out)
{
    gq_dtype_t da = a->desc.dtype, db = b->desc.dtype, dt = out->desc.dtype;
    bool integral = gq_onnx_dtype_int(dt);
    GQ_ONNX_BCAST_LOOP(&out->desc, &a->desc, &b->desc, {
        double p = gq_onnx_getd(a->data, da, ia), q = gq_onnx_getd(b->data, db, ib), r = 0;
        switch (op) {
        case S_ADD:
            r = p + q;
            break;
        case S_SUB:
            r = p - q;
            break;
        case S_MUL:
            r = p * q;
            break;
        case S_DIV:
            r = integral ? (q ? trunc(p / q) : 0) : p / q;
            break;
        case S_POW:
            r = pow(p, q);
            break;
        case S_MAX:
            r = p > q ? p : q;
            break;
        case S_MIN:
            r = p < q ? p : q;
            break;
        }
        gq_onnx_setd(out->data, dt, io, r);
    });
}

/* A broadcast as few dims as it takes: size-1 dims dropped, neighbours that both inputs
 * walk the same way (contiguously, or not at all) merged, so the last dim is a long run in
 * which each input's stride is 1 or 0. */
typedef struct {
    int nd;
    int64_t shape[GQ_MAX_DIMS], sa[GQ_MAX_DIMS], sb[GQ_MAX_DIMS];
} s_bplan_t;

static void s_bplan(const gq_tdesc_t *a, const gq_tdesc_t *b, const gq_tdesc_t *out, s_bplan_t *p)
{
    int64_t sa[GQ_MAX_DIMS], sb[GQ_MAX_DIMS];
    gq_onnx_bstrides(a, out, sa);
    gq_onnx_bstrides(b, out, sb);
    int nd = 0;
    for (int d = 0; d < out->ndim; d++) {
        if (out->shape[d] == 1)
            continue;
        if (nd > 0 && p->sa[nd - 1] == sa[d] * out->shape[d] &&
            p->sb[nd - 1] == sb[d] * out->shape[d]) {
            p->shape[nd - 1] *= out->shape[d];
            p->sa[nd - 1] = sa[d], p->sb[nd - 1] = sb[d];
            continue;
        }
        p->shape[nd] = out->shape[d], p->sa[nd] = sa[d], p->sb[nd] = sb[d];
        nd++;
    }
    if (nd == 0)
        p->shape[0] = 1, p->sa[0] = p->sb[0] = 0, nd = 1;
    p->nd = nd;
}

/* z[io] = EXPR(p = x[ia], q = y[ib]) for output elements [LO, HI) of plan BP: runs along
 * the last dim, with its two common stride patterns as loops that vectorize. */
#define S_BRANGE(BP, LO, HI, T, X, Y, Z, EXPR)                                                     \
    do {                                                                                           \
        const s_bplan_t *bp_ = (BP);                                                               \
        int l_ = bp_->nd - 1;                                                                      \
        int64_t idx_[GQ_MAX_DIMS], ia_ = 0, ib_ = 0, io_ = (LO), hi_ = (HI), r_ = io_;             \
        for (int d_ = l_; d_ >= 0; d_--) {                                                         \
            idx_[d_] = r_ % bp_->shape[d_], r_ /= bp_->shape[d_];                                  \
            ia_ += idx_[d_] * bp_->sa[d_], ib_ += idx_[d_] * bp_->sb[d_];                          \
        }                                                                                          \
        int64_t W_ = bp_->shape[l_], sal_ = bp_->sa[l_], sbl_ = bp_->sb[l_];                       \
        while (io_ < hi_) {                                                                        \
            int64_t cnt_ = W_ - idx_[l_] < hi_ - io_ ? W_ - idx_[l_] : hi_ - io_;                  \
            const T *restrict x_ = (X) + ia_, *restrict y_ = (Y) + ib_;                            \
            T *restrict z_ = (Z) + io_;                                                            \
            if (sal_ == 1 && sbl_ == 1)                                                            \
                for (int64_t k_ = 0; k_ < cnt_; k_++) {                                            \
                    T p = x_[k_], q = y_[k_];                                                      \
                    z_[k_] = (EXPR);                                                               \
                }                                                                                  \
            else if (sal_ == 0)                                                                    \
                for (int64_t k_ = 0; k_ < cnt_; k_++) {                                            \
                    T p = x_[0], q = y_[k_ * sbl_];                                                \
                    z_[k_] = (EXPR);                                                               \
                }                                                                                  \
            else                                                                                   \
                for (int64_t k_ = 0; k_ < cnt_; k_++) {                                            \
                    T p = x_[k_ * sal_], q = y_[k_ * sbl_];                                        \
                    z_[k_] = (EXPR);                                                               \
                }                                                                                  \
            io_ += cnt_, ia_ += cnt_ * sal_, ib_ += cnt_ * sbl_, idx_[l_] += cnt_;                 \
            if (idx_[l_] < W_)                                                                     \
                continue;                                                                          \
            ia_ -= W_ * sal_, ib_ -= W_ * sbl_, idx_[l_] = 0;                                      \
            for (int d_ = l_ - 1; d_ >= 0; d_--) {                                                 \
                ia_ += bp_->sa[d_], ib_ += bp_->sb[d_];                                            \
                if (++idx_[d_] < bp_->shape[d_])                                                   \
                    break;                                                                         \
                ia_ -= bp_->sa[d_] * idx_[d_], ib_ -= bp_->sb[d_] * idx_[d_];                      \
                idx_[d_] = 0;                                                                      \
            }                                                                                      \
        }                                                                                          \
    } while (0)

typedef struct {
    s_binop_t op;
    gq_dtype_t dt;
    s_bplan_t plan;
    const void *a, *b;
    void *z;
    int64_t n;
} s_binary_job_t;

/* Output elements [b * S_BLOCK, ...) of a typed binary op. */
GQ_ONNX_SIMD static void s_binary_block(void *ctx, int64_t blk, int tid)
{
    (void)tid;
    const s_binary_job_t *j = ctx;
    int64_t lo = blk * S_BLOCK, hi = lo + S_BLOCK < j->n ? lo + S_BLOCK : j->n;
    s_binop_t op = j->op;
#define S_ARITH(T, EXPR)                                                                           \
    S_BRANGE(&j->plan, lo, hi, T, (const T *)j->a, (const T *)j->b, (T *)j->z, EXPR)
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
    switch (j->dt) {
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
        break;
    }
#undef S_ALL_OPS
#undef S_ARITH
}

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
    gq_status rc = gq_onnx_broadcast(&a->desc, &b->desc, &out->desc, err, errlen);
    if (rc)
        return rc;
    out->desc.dtype = dt;
    if ((rc = gq_onnx_val_alloc(out, err, errlen)))
        return rc;
    if (op == S_POW && b->desc.dtype != dt) {
        if (!gq_onnx_dtype_real(b->desc.dtype) || b->desc.dtype == GQ_BOOL) {
            gq_errf(err, errlen, "exponent of type %s", gq_dtype_name(b->desc.dtype));
            return GQ_EDTYPE;
        }
        s_binary_any(op, a, b, out);
        return GQ_OK;
    }
    switch (dt) {
    case GQ_F32:
    case GQ_F64:
    case GQ_I32:
    case GQ_I64: {
        s_binary_job_t j = {.op = op, .dt = dt, .a = a->data, .b = b->data, .z = out->data};
        j.n = gq_tdesc_numel(&out->desc);
        s_bplan(&a->desc, &b->desc, &out->desc, &j.plan);
        /* Pow is a libm call an element: worth threading at fewer elements. */
        gq_par_for_work((j.n + S_BLOCK - 1) / S_BLOCK, op == S_POW ? 16 * j.n : j.n, s_binary_block,
                        &j);
        break;
    }
    default:
        if (!gq_onnx_dtype_real(dt) || dt == GQ_BOOL) {
            gq_errf(err, errlen, "%s inputs are not supported", gq_dtype_name(dt));
            return GQ_EDTYPE;
        }
        s_binary_any(op, a, b, out);
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

static gq_status s_sum(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                       gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)n, (void)opset, (void)nout;
    return s_fold(S_ADD, in, nin, out, err, errlen);
}

/* Mean: the sum over nin inputs, divided (floats only). */
static gq_status s_mean(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                        gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)n, (void)opset, (void)nout;
    gq_status rc = s_fold(S_ADD, in, nin, out, err, errlen);
    gq_dtype_t dt = out->desc.dtype;
    if (!rc && dt != GQ_F32 && dt != GQ_F64 && dt != GQ_F16) {
        gq_errf(err, errlen, "%s inputs are not supported", gq_dtype_name(dt));
        return GQ_EDTYPE;
    }
    for (int64_t i = 0; !rc && i < GQ_ONNX_ELEMS(out); i++)
        gq_onnx_setd(out->data, dt, i, gq_onnx_getd(out->data, dt, i) / nin);
    return rc;
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
    S_SIN,
    S_COS,
    S_TAN,
    S_ASIN,
    S_ACOS,
    S_ATAN,
    S_SINH,
    S_COSH,
    S_ASINH,
    S_ACOSH,
    S_ATANH,
    S_SIGN,
    S_SOFTSIGN,
    S_SELU,
    S_CELU,
    S_MISH,
    S_HARDSWISH,
    S_THRESHRELU,
    S_ROUND,
    S_SHRINK,
    S_GELU,
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
    case S_SIN:
        return sin(x);
    case S_COS:
        return cos(x);
    case S_TAN:
        return tan(x);
    case S_ASIN:
        return asin(x);
    case S_ACOS:
        return acos(x);
    case S_ATAN:
        return atan(x);
    case S_SINH:
        return sinh(x);
    case S_COSH:
        return cosh(x);
    case S_ASINH:
        return asinh(x);
    case S_ACOSH:
        return acosh(x);
    case S_ATANH:
        return atanh(x);
    case S_SIGN:
        return x > 0 ? 1 : x < 0 ? -1 : x;
    case S_SOFTSIGN:
        return x / (1 + fabs(x));
    case S_SELU:
        return p1 * (x > 0 ? x : p0 * (exp(x) - 1));
    case S_CELU:
        return (x > 0 ? x : 0) + fmin(0, p0 * (exp(x / p0) - 1));
    case S_MISH:
        return x * tanh(x > 30 ? x : log1p(exp(x)));
    case S_HARDSWISH: {
        double y = x / 6 + 0.5;
        return x * (y < 0 ? 0 : y > 1 ? 1 : y);
    }
    case S_THRESHRELU:
        return x > p0 ? x : 0;
    case S_ROUND:
        return nearbyint(x); /* halves to even under the default rounding mode */
    case S_SHRINK:
        return x < -p1 ? x + p0 : x > p1 ? x - p0 : 0;
    case S_GELU:
        return p0 != 0 ? 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)))
                       : 0.5 * x * (1 + erf(x / sqrt(2)));
    }
    return x;
}

typedef struct {
    s_unop_t op;
    double p0, p1;
    gq_onnx_act_t f; /* f.k != NONE: the vectorized f32 form */
    gq_dtype_t dt;
    const void *x;
    void *y;
    int64_t n;
} s_unary_job_t;

/* Elements [b * S_BLOCK, ...) of an f32 or f64 unary op, or of a copy (Identity). */
static void s_unary_block(void *ctx, int64_t blk, int tid)
{
    (void)tid;
    const s_unary_job_t *j = ctx;
    int64_t lo = blk * S_BLOCK, hi = lo + S_BLOCK < j->n ? lo + S_BLOCK : j->n;
    if (j->op == S_IDENTITY) {
        size_t es = gq_dtype_size(j->dt);
        memcpy((char *)j->y + lo * es, (const char *)j->x + lo * es, (size_t)(hi - lo) * es);
    } else if (j->dt == GQ_F32 && j->f.k != GQ_ONNX_ACT_NONE) {
        /* vectorized f32, no trip through double */
        memcpy((float *)j->y + lo, (const float *)j->x + lo, (size_t)(hi - lo) * sizeof(float));
        gq_onnx_act_apply(&j->f, (float *)j->y + lo, hi - lo);
    } else if (j->dt == GQ_F32) {
        const float *x = j->x;
        float *y = j->y;
        for (int64_t i = lo; i < hi; i++)
            y[i] = (float)s_apply(j->op, x[i], j->p0, j->p1);
    } else {
        const double *x = j->x;
        double *y = j->y;
        for (int64_t i = lo; i < hi; i++)
            y[i] = s_apply(j->op, x[i], j->p0, j->p1);
    }
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
    int64_t n = GQ_ONNX_ELEMS(a);
    static const gq_onnx_actk_t fast[] = {[S_RELU] = GQ_ONNX_ACT_RELU,
                                          [S_SIGMOID] = GQ_ONNX_ACT_SIGMOID,
                                          [S_TANH] = GQ_ONNX_ACT_TANH,
                                          [S_LEAKY] = GQ_ONNX_ACT_LEAKYRELU,
                                          [S_HARDSIGMOID] = GQ_ONNX_ACT_HARDSIGMOID};
    gq_onnx_actk_t fk = (size_t)op < sizeof fast / sizeof fast[0] ? fast[op] : GQ_ONNX_ACT_NONE;
    s_unary_job_t j = {.op = op,
                       .p0 = p0,
                       .p1 = p1,
                       .f = {fk, (float)p0, (float)p1},
                       .dt = dt,
                       .x = a->data,
                       .y = out->data,
                       .n = n};
    if (dt == GQ_F32 || dt == GQ_F64 || op == S_IDENTITY) {
        /* Relu and friends and copies run at memory speed; the rest call libm an element. */
        int64_t cost = op == S_IDENTITY || (dt == GQ_F32 && fk != GQ_ONNX_ACT_NONE) ? 1 : 8;
        gq_par_for_work((n + S_BLOCK - 1) / S_BLOCK, cost * n, s_unary_block, &j);
    } else if (dt == GQ_F16 ||
               (gq_onnx_dtype_int(dt) && (op == S_ABS || op == S_NEG || op == S_RELU ||
                                          op == S_CLIP || op == S_SIGN || op == S_SHRINK))) {
        for (int64_t i = 0; i < n; i++) /* through double: exact for integers below 2^53 */
            gq_onnx_setd(out->data, dt, i, s_apply(op, gq_onnx_getd(a->data, dt, i), p0, p1));
    } else {
        gq_errf(err, errlen, "%s inputs are not supported", gq_dtype_name(dt));
        return GQ_EDTYPE;
    }
    return GQ_OK;
}

/* Gelu's approximate attribute: 1 for "tanh", 0 for "none" (an unknown value reads as
 * "none"; the checker refuses such models). */
static double s_gelu_tanh(const Onnx__NodeProto *n)
{
    const Onnx__AttributeProto *a = gq_onnx_attr(n, "approximate");
    return a && a->s.len == 4 && !memcmp(a->s.data, "tanh", 4);
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
S_UN_KERNEL(s_sin, S_SIN, 0, 0)
S_UN_KERNEL(s_cos, S_COS, 0, 0)
S_UN_KERNEL(s_tan, S_TAN, 0, 0)
S_UN_KERNEL(s_asin, S_ASIN, 0, 0)
S_UN_KERNEL(s_acos, S_ACOS, 0, 0)
S_UN_KERNEL(s_atan, S_ATAN, 0, 0)
S_UN_KERNEL(s_sinh, S_SINH, 0, 0)
S_UN_KERNEL(s_cosh, S_COSH, 0, 0)
S_UN_KERNEL(s_asinh, S_ASINH, 0, 0)
S_UN_KERNEL(s_acosh, S_ACOSH, 0, 0)
S_UN_KERNEL(s_atanh, S_ATANH, 0, 0)
S_UN_KERNEL(s_sign, S_SIGN, 0, 0)
S_UN_KERNEL(s_softsign, S_SOFTSIGN, 0, 0)
S_UN_KERNEL(s_mish, S_MISH, 0, 0)
S_UN_KERNEL(s_hardswish, S_HARDSWISH, 0, 0)
S_UN_KERNEL(s_round, S_ROUND, 0, 0)
S_UN_KERNEL(s_selu, S_SELU, gq_onnx_attr_float(n, "alpha", 1.67326319217681884765625f),
            gq_onnx_attr_float(n, "gamma", 1.05070102214813232421875f))
S_UN_KERNEL(s_celu, S_CELU, gq_onnx_attr_float(n, "alpha", 1.0f), 0)
S_UN_KERNEL(s_threshrelu, S_THRESHRELU, gq_onnx_attr_float(n, "alpha", 1.0f), 0)
S_UN_KERNEL(s_shrink, S_SHRINK, gq_onnx_attr_float(n, "bias", 0.0f),
            gq_onnx_attr_float(n, "lambd", 0.5f))
S_UN_KERNEL(s_gelu, S_GELU, s_gelu_tanh(n), 0)
S_UN_KERNEL(s_hardsigmoid, S_HARDSIGMOID, gq_onnx_attr_float(n, "alpha", 0.2f),
            gq_onnx_attr_float(n, "beta", 0.5f))

/* A scalar of an optional input as double; def when omitted. */
static double s_scalar(const gq_onnx_val_t *v, double def)
{
    if (!v || v->nbytes == 0 || !gq_onnx_dtype_real(v->desc.dtype))
        return def;
    return gq_onnx_getd(v->data, v->desc.dtype, 0);
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

const gq_onnx_kernel_t gq_onnx_kernels_elem[] = {
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
    {"Sin", 7, s_sin},
    {"Cos", 7, s_cos},
    {"Tan", 7, s_tan},
    {"Asin", 7, s_asin},
    {"Acos", 7, s_acos},
    {"Atan", 7, s_atan},
    {"Sinh", 9, s_sinh},
    {"Cosh", 9, s_cosh},
    {"Asinh", 9, s_asinh},
    {"Acosh", 9, s_acosh},
    {"Atanh", 9, s_atanh},
    {"Sign", 9, s_sign},
    {"Softsign", 1, s_softsign},
    {"Mish", 18, s_mish},
    {"HardSwish", 14, s_hardswish},
    {"Round", 11, s_round},
    {"Selu", 6, s_selu},
    {"Celu", 12, s_celu},
    {"ThresholdedRelu", 10, s_threshrelu},
    {"Shrink", 9, s_shrink},
    {"Gelu", 20, s_gelu},
    {"Sum", 8, s_sum},
    {"Mean", 8, s_mean},
};
const int gq_onnx_kernels_elem_count =
    (int)(sizeof gq_onnx_kernels_elem / sizeof gq_onnx_kernels_elem[0]);
