/* ONNX kernels on types and truth: Cast/CastLike, comparisons, Not/And/Or/Xor, Where,
 * IsNaN/IsInf, PRelu, Mod, BitShift, the small matrix makers Trilu, EyeLike, OneHot,
 * NonZero, CumSum, and Quantize/DequantizeLinear. Any real dtype goes through gq_onnx_getd/setd
 * (integers exactly through gq_onnx_geti where it matters). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"
#include "util.h"

/* ---- Cast ---- */

/* Copies src (dtype sd) into dst (dtype dd), n elements; integer to integer never goes
 * through double (int64 values past 2^53 stay exact) and wraps as C does. */
static void s_convert(const void *src, gq_dtype_t sd, void *dst, gq_dtype_t dd, int64_t n)
{
    bool ints = gq_onnx_dtype_int(sd) && gq_onnx_dtype_int(dd);
    for (int64_t i = 0; i < n; i++)
        if (ints)
            gq_onnx_seti(dst, dd, i, gq_onnx_geti(src, sd, i));
        else
            gq_onnx_setd(dst, dd, i, gq_onnx_getd(src, sd, i));
}

static gq_status s_cast_to(gq_onnx_val_t *const *in, int nin, gq_dtype_t to, const char *what,
                           gq_onnx_val_t *out, char *err, size_t errlen)
{
    gq_status rc = gq_onnx_need(in, nin, 1, err, errlen);
    if (rc)
        return rc;
    gq_dtype_t from = in[0]->desc.dtype;
    if (!gq_onnx_dtype_real(from) || !gq_onnx_dtype_real(to)) {
        gq_errf(err, errlen, "cast from %s to %s is not supported", gq_dtype_name(from), what);
        return GQ_EDTYPE;
    }
    gq_tdesc_t od = in[0]->desc;
    od.dtype = to;
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    if (from == to)
        GQ_ONNX_COPY(out->data, in[0]->data, in[0]->nbytes);
    else
        s_convert(in[0]->data, from, out->data, to, gq_tdesc_numel(&od));
    return GQ_OK;
}

static gq_status s_cast(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                        gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    int32_t to = (int32_t)gq_onnx_attr_int(n, "to", 0);
    return s_cast_to(in, nin, gq_onnx_dtype(to), gq_onnx_type_name(to), out, err, errlen);
}

static gq_status s_castlike(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                            gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)n, (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    return rc ? rc
              : s_cast_to(in, nin, in[1]->desc.dtype, gq_dtype_name(in[1]->desc.dtype), out, err,
                          errlen);
}

/* ---- comparisons and logic ---- */

typedef enum {
    S_EQ,
    S_LT,
    S_GT,
    S_LE,
    S_GE,
    S_AND,
    S_OR,
    S_XOR,
    S_MOD,
    S_FMOD,
    S_SHL,
    S_SHR,
    S_PRELU,
    S_BAND, /* the Bitwise ops (opset 18): integers only */
    S_BOR,
    S_BXOR
} s_cmp_t;

/* One element of a comparison, logic op or PRelu over doubles. */
static double s_cmp_one(s_cmp_t op, double p, double q)
{
    switch (op) {
    case S_EQ:
        return p == q;
    case S_LT:
        return p < q;
    case S_GT:
        return p > q;
    case S_LE:
        return p <= q;
    case S_GE:
        return p >= q;
    case S_AND:
        return (p != 0) && (q != 0);
    case S_OR:
        return (p != 0) || (q != 0);
    case S_XOR:
        return (p != 0) != (q != 0);
    case S_FMOD:
        return fmod(p, q);
    case S_PRELU:
        return p < 0 ? p * q : p;
    default:
        return 0;
    }
}

/* The same over integers, exactly. Mod takes the divisor's sign (Python's %), fmod the
 * dividend's; a zero divisor gives 0. */
static int64_t s_int_one(s_cmp_t op, int64_t p, int64_t q)
{
    switch (op) {
    case S_EQ:
        return p == q;
    case S_LT:
        return p < q;
    case S_GT:
        return p > q;
    case S_LE:
        return p <= q;
    case S_GE:
        return p >= q;
    case S_MOD: {
        if (q == 0 || (q == -1))
            return 0;
        int64_t r = p % q;
        return r != 0 && ((r < 0) != (q < 0)) ? r + q : r;
    }
    case S_FMOD:
        return q == 0 || q == -1 ? 0 : p % q;
    case S_SHL:
        return q >= 0 && q < 64 ? (int64_t)((uint64_t)p << q) : 0;
    case S_SHR:
        return q >= 0 && q < 64 ? (int64_t)((uint64_t)p >> q) : 0;
    case S_PRELU:
        return p < 0 ? p * q : p;
    case S_BAND:
        return p & q;
    case S_BOR:
        return p | q;
    case S_BXOR:
        return p ^ q;
    default:
        return (int64_t)s_cmp_one(op, (double)p, (double)q);
    }
}

static gq_status s_binop(s_cmp_t op, gq_onnx_val_t *const *in, int nin, gq_onnx_val_t *out,
                         char *err, size_t errlen)
{
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    if (rc)
        return rc;
    const gq_onnx_val_t *a = in[0], *b = in[1];
    gq_dtype_t dt = a->desc.dtype;
    bool logic = op == S_AND || op == S_OR || op == S_XOR;
    bool bits = op == S_BAND || op == S_BOR || op == S_BXOR;
    bool cmp = op <= S_GE || logic;
    if (b->desc.dtype != dt || !gq_onnx_dtype_real(dt) || (logic && dt != GQ_BOOL) ||
        (bits && !gq_onnx_dtype_int(dt))) {
        gq_errf(err, errlen, "inputs are %s and %s", gq_dtype_name(dt),
                gq_dtype_name(b->desc.dtype));
        return GQ_EDTYPE;
    }
    gq_tdesc_t od;
    if (op == S_PRELU) { /* slope broadcasts unidirectionally to X */
        if ((rc = gq_onnx_broadcast(&a->desc, &b->desc, &od, err, errlen)))
            return rc;
        od.dtype = dt;
        if (!gq_tdesc_equal(&od, &a->desc)) {
            gq_errf(err, errlen, "slope does not broadcast to X's shape");
            return GQ_ESHAPE;
        }
    } else if ((rc = gq_onnx_broadcast(&a->desc, &b->desc, &od, err, errlen)))
        return rc;
    od.dtype = cmp ? GQ_BOOL : dt;
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    bool ints = gq_onnx_dtype_int(dt);
    if (op == S_MOD && !ints)
        op = S_FMOD;
    GQ_ONNX_BCAST_LOOP(&out->desc, &a->desc, &b->desc, {
        if (ints || dt == GQ_BOOL)
            gq_onnx_seti(
                out->data, out->desc.dtype, io,
                s_int_one(op, gq_onnx_geti(a->data, dt, ia), gq_onnx_geti(b->data, dt, ib)));
        else
            gq_onnx_setd(
                out->data, out->desc.dtype, io,
                s_cmp_one(op, gq_onnx_getd(a->data, dt, ia), gq_onnx_getd(b->data, dt, ib)));
    });
    return GQ_OK;
}

#define S_BINOP_KERNEL(NAME, OP)                                                                   \
    static gq_status NAME(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,  \
                          gq_onnx_val_t *out, int nout, char *err, size_t errlen)                  \
    {                                                                                              \
        (void)n, (void)opset, (void)nout;                                                          \
        return s_binop(OP, in, nin, out, err, errlen);                                             \
    }
S_BINOP_KERNEL(s_equal, S_EQ)
S_BINOP_KERNEL(s_less, S_LT)
S_BINOP_KERNEL(s_greater, S_GT)
S_BINOP_KERNEL(s_less_equal, S_LE)
S_BINOP_KERNEL(s_greater_equal, S_GE)
S_BINOP_KERNEL(s_and, S_AND)
S_BINOP_KERNEL(s_or, S_OR)
S_BINOP_KERNEL(s_xor, S_XOR)
S_BINOP_KERNEL(s_prelu, S_PRELU)
S_BINOP_KERNEL(s_bitwise_and, S_BAND)
S_BINOP_KERNEL(s_bitwise_or, S_BOR)
S_BINOP_KERNEL(s_bitwise_xor, S_BXOR)

static gq_status s_mod(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                       gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    bool fmod_attr = gq_onnx_attr_int(n, "fmod", 0) != 0;
    gq_dtype_t dt = nin > 0 && in[0] ? in[0]->desc.dtype : GQ_F32;
    if (!fmod_attr && (dt == GQ_F32 || dt == GQ_F64 || dt == GQ_F16)) {
        gq_errf(err, errlen, "fmod = 0 is only defined for integer inputs");
        return GQ_EPARAM;
    }
    return s_binop(fmod_attr ? S_FMOD : S_MOD, in, nin, out, err, errlen);
}

static gq_status s_bitshift(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                            gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    char dir[16];
    gq_status rc = gq_onnx_attr_str(n, "direction", "", dir, sizeof dir, err, errlen);
    if (rc)
        return rc;
    if (strcmp(dir, "LEFT") && strcmp(dir, "RIGHT")) {
        gq_errf(err, errlen, "direction '%s' is not LEFT or RIGHT", dir);
        return GQ_EPARAM;
    }
    if (nin > 0 && in[0] && in[0]->desc.dtype != GQ_U8 && in[0]->desc.dtype != GQ_U16 &&
        in[0]->desc.dtype != GQ_U32) {
        gq_errf(err, errlen, "%s inputs: BitShift takes unsigned integers",
                gq_dtype_name(in[0]->desc.dtype));
        return GQ_EDTYPE;
    }
    return s_binop(!strcmp(dir, "LEFT") ? S_SHL : S_SHR, in, nin, out, err, errlen);
}

static gq_status s_not(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                       gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)n, (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 1, err, errlen);
    if (rc)
        return rc;
    if (in[0]->desc.dtype != GQ_BOOL) {
        gq_errf(err, errlen, "input is %s, want bool", gq_dtype_name(in[0]->desc.dtype));
        return GQ_EDTYPE;
    }
    if ((rc = gq_onnx_out(out, &in[0]->desc, err, errlen)))
        return rc;
    for (size_t i = 0; i < out->nbytes; i++)
        ((uint8_t *)out->data)[i] = !((const uint8_t *)in[0]->data)[i];
    return GQ_OK;
}

static gq_status s_bitwise_not(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                               int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)n, (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 1, err, errlen);
    if (rc)
        return rc;
    gq_dtype_t dt = in[0]->desc.dtype;
    if (!gq_onnx_dtype_int(dt)) {
        gq_errf(err, errlen, "input is %s, want an integer type", gq_dtype_name(dt));
        return GQ_EDTYPE;
    }
    if ((rc = gq_onnx_out(out, &in[0]->desc, err, errlen)))
        return rc;
    /* ~ of the value widened is ~ of the stored bits once seti wraps it back */
    for (int64_t i = 0, total = gq_tdesc_numel(&out->desc); i < total; i++)
        gq_onnx_seti(out->data, dt, i, ~gq_onnx_geti(in[0]->data, dt, i));
    return GQ_OK;
}

/* IsNaN, and IsInf with detect_negative/detect_positive. */
static gq_status s_isnan_isinf(bool nan_test, const Onnx__NodeProto *n, gq_onnx_val_t *const *in,
                               int nin, gq_onnx_val_t *out, char *err, size_t errlen)
{
    gq_status rc = gq_onnx_need(in, nin, 1, err, errlen);
    if (rc)
        return rc;
    gq_dtype_t dt = in[0]->desc.dtype;
    if (dt != GQ_F32 && dt != GQ_F64 && dt != GQ_F16) {
        gq_errf(err, errlen, "input is %s, want a float type", gq_dtype_name(dt));
        return GQ_EDTYPE;
    }
    gq_tdesc_t od = in[0]->desc;
    od.dtype = GQ_BOOL;
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    bool neg = gq_onnx_attr_int(n, "detect_negative", 1),
         pos = gq_onnx_attr_int(n, "detect_positive", 1);
    for (int64_t i = 0; i < gq_tdesc_numel(&od); i++) {
        double v = gq_onnx_getd(in[0]->data, dt, i);
        ((uint8_t *)out->data)[i] =
            nan_test ? isnan(v) != 0 : isinf(v) && ((v > 0 && pos) || (v < 0 && neg));
    }
    return GQ_OK;
}

static gq_status s_isnan(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                         gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    return s_isnan_isinf(true, n, in, nin, out, err, errlen);
}

static gq_status s_isinf(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                         gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    return s_isnan_isinf(false, n, in, nin, out, err, errlen);
}

/* Where: cond ? x : y, three-way broadcast, any dtype for x and y. */
static gq_status s_where(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                         gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)n, (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 3, err, errlen);
    if (rc)
        return rc;
    if (in[0]->desc.dtype != GQ_BOOL || in[1]->desc.dtype != in[2]->desc.dtype) {
        gq_errf(err, errlen, "want a bool condition and two values of one type (%s, %s, %s)",
                gq_dtype_name(in[0]->desc.dtype), gq_dtype_name(in[1]->desc.dtype),
                gq_dtype_name(in[2]->desc.dtype));
        return GQ_EDTYPE;
    }
    gq_tdesc_t t, od;
    if ((rc = gq_onnx_broadcast(&in[0]->desc, &in[1]->desc, &t, err, errlen)) ||
        (rc = gq_onnx_broadcast(&t, &in[2]->desc, &od, err, errlen)))
        return rc;
    od.dtype = in[1]->desc.dtype;
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    int64_t sc[GQ_MAX_DIMS], sx[GQ_MAX_DIMS], sy[GQ_MAX_DIMS], idx[GQ_MAX_DIMS] = {0};
    gq_onnx_bstrides(&in[0]->desc, &od, sc);
    gq_onnx_bstrides(&in[1]->desc, &od, sx);
    gq_onnx_bstrides(&in[2]->desc, &od, sy);
    size_t es = gq_dtype_size(od.dtype);
    const uint8_t *c = in[0]->data;
    for (int64_t o = 0, total = gq_tdesc_numel(&od); o < total; o++) {
        int64_t ic = 0, ix = 0, iy = 0;
        for (int d = 0; d < od.ndim; d++)
            ic += idx[d] * sc[d], ix += idx[d] * sx[d], iy += idx[d] * sy[d];
        const char *src = c[ic] ? (const char *)in[1]->data + ix * (int64_t)es
                                : (const char *)in[2]->data + iy * (int64_t)es;
        memcpy((char *)out->data + o * (int64_t)es, src, es);
        for (int d = od.ndim - 1; d >= 0 && ++idx[d] == od.shape[d]; d--)
            idx[d] = 0;
    }
    return GQ_OK;
}

/* ---- makers ---- */

/* Trilu: keeps the lower (upper = 0) or upper triangle of the last two dims from diagonal k. */
static gq_status s_trilu(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                         gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 1, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    int64_t k = 0, rows, cols;
    int nk;
    if (nin > 1 && in[1] && (rc = gq_onnx_ints(in[1], "k", &k, 1, &nk, err, errlen)))
        return rc;
    if (x->ndim < 2) {
        gq_errf(err, errlen, "input has rank %d, want >= 2", x->ndim);
        return GQ_ESHAPE;
    }
    if ((rc = gq_onnx_out(out, x, err, errlen)))
        return rc;
    bool upper = gq_onnx_attr_int(n, "upper", 1) != 0;
    rows = x->shape[x->ndim - 2], cols = x->shape[x->ndim - 1];
    size_t es = gq_dtype_size(x->dtype);
    int64_t total = gq_tdesc_numel(x);
    for (int64_t i = 0; i < total; i++) {
        int64_t c = i % cols, r = (i / cols) % (rows ? rows : 1);
        bool keep = upper ? c - r >= k : c - r <= k;
        if (keep)
            memcpy((char *)out->data + i * (int64_t)es, (const char *)in[0]->data + i * (int64_t)es,
                   es);
        else
            memset((char *)out->data + i * (int64_t)es, 0, es);
    }
    return GQ_OK;
}

static gq_status s_eyelike(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                           gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 1, err, errlen);
    if (rc)
        return rc;
    gq_tdesc_t od = in[0]->desc;
    const Onnx__AttributeProto *dt = gq_onnx_attr(n, "dtype");
    if (dt && dt->has_i)
        od.dtype = gq_onnx_dtype((int32_t)dt->i);
    if (od.ndim != 2 || !gq_onnx_dtype_real(od.dtype)) {
        gq_errf(err, errlen, "want a 2-D input and a real dtype");
        return GQ_EDTYPE;
    }
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    memset(out->data, 0, out->nbytes);
    int64_t k = gq_onnx_attr_int(n, "k", 0);
    for (int64_t r = 0; r < od.shape[0]; r++)
        if (r + k >= 0 && r + k < od.shape[1])
            gq_onnx_setd(out->data, od.dtype, r * od.shape[1] + r + k, 1);
    return GQ_OK;
}

static gq_status s_onehot(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                          gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 3, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *id = &in[0]->desc;
    gq_dtype_t vt = in[2]->desc.dtype;
    if (!gq_onnx_dtype_real(id->dtype) || !gq_onnx_dtype_real(in[1]->desc.dtype) ||
        !gq_onnx_dtype_real(vt) || gq_tdesc_numel(&in[2]->desc) != 2 ||
        gq_tdesc_numel(&in[1]->desc) != 1 || id->ndim + 1 > GQ_MAX_DIMS) {
        gq_errf(err, errlen, "want numeric indices, a scalar depth and two values");
        return GQ_EDTYPE;
    }
    double depth = gq_onnx_getd(in[1]->data, in[1]->desc.dtype, 0);
    int64_t D = (int64_t)depth, axis;
    if (D < 1 ||
        (rc = gq_onnx_axis(gq_onnx_attr_int(n, "axis", -1), id->ndim + 1, &axis, err, errlen))) {
        if (!rc)
            gq_errf(err, errlen, "depth %g", depth);
        return rc ? rc : GQ_EPARAM;
    }
    gq_tdesc_t od = {.dtype = vt, .ndim = id->ndim + 1};
    int64_t outer = 1, inner = 1;
    for (int d = 0, s = 0; d < od.ndim; d++) {
        od.shape[d] = d == axis ? D : id->shape[s++];
        if (d < axis)
            outer *= od.shape[d];
        else if (d > axis)
            inner *= od.shape[d];
    }
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    double off = gq_onnx_getd(in[2]->data, vt, 0), on = gq_onnx_getd(in[2]->data, vt, 1);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < D; j++)
            for (int64_t q = 0; q < inner; q++) {
                int64_t hot = (int64_t)gq_onnx_getd(in[0]->data, id->dtype, o * inner + q);
                hot = hot < 0 ? hot + D : hot;
                gq_onnx_setd(out->data, vt, (o * D + j) * inner + q, hot == j ? on : off);
            }
    return GQ_OK;
}

static gq_status s_nonzero(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                           gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)n, (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 1, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    if (!gq_onnx_dtype_real(x->dtype)) {
        gq_errf(err, errlen, "%s input", gq_dtype_name(x->dtype));
        return GQ_EDTYPE;
    }
    int64_t total = gq_tdesc_numel(x), cnt = 0, idx[GQ_MAX_DIMS] = {0};
    for (int64_t i = 0; i < total; i++)
        cnt += gq_onnx_getd(in[0]->data, x->dtype, i) != 0;
    gq_tdesc_t od = {.dtype = GQ_I64, .ndim = 2, .shape = {x->ndim, cnt}};
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    int64_t *y = out->data;
    for (int64_t i = 0, k = 0; i < total; i++) {
        if (gq_onnx_getd(in[0]->data, x->dtype, i) != 0) {
            for (int d = 0; d < x->ndim; d++)
                y[d * cnt + k] = idx[d];
            k++;
        }
        for (int d = x->ndim - 1; d >= 0 && ++idx[d] == x->shape[d]; d--)
            idx[d] = 0;
    }
    return GQ_OK;
}

static gq_status s_cumsum(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                          gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    const gq_tdesc_t *x = &in[0]->desc;
    int64_t ax, axis, outer = 1, len, inner = 1;
    int na;
    if (rc || (rc = gq_onnx_ints(in[1], "axis", &ax, 1, &na, err, errlen)) ||
        (rc = gq_onnx_axis(ax, x->ndim, &axis, err, errlen)))
        return rc;
    if (!gq_onnx_dtype_real(x->dtype) || x->dtype == GQ_BOOL) {
        gq_errf(err, errlen, "%s input", gq_dtype_name(x->dtype));
        return GQ_EDTYPE;
    }
    if ((rc = gq_onnx_out(out, x, err, errlen)))
        return rc;
    bool excl = gq_onnx_attr_int(n, "exclusive", 0), rev = gq_onnx_attr_int(n, "reverse", 0);
    len = x->shape[axis];
    for (int d = 0; d < x->ndim; d++)
        if (d < axis)
            outer *= x->shape[d];
        else if (d > axis)
            inner *= x->shape[d];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t q = 0; q < inner; q++) {
            double acc = 0;
            for (int64_t j0 = 0; j0 < len; j0++) {
                int64_t j = rev ? len - 1 - j0 : j0, i = (o * len + j) * inner + q;
                double v = gq_onnx_getd(in[0]->data, x->dtype, i);
                gq_onnx_setd(out->data, x->dtype, i, excl ? acc : acc + v);
                acc += v;
            }
        }
    return GQ_OK;
}

/* ---- linear quantization ---- */

/* Where element i of x finds its scale and zero point: one for the tensor, one per slice of
 * axis (opset 13), or one per block of bs slices of axis (opset 21's block_size; the scale
 * then has x's rank with slen = ceil(len / bs) along axis). */
typedef struct {
    bool scalar;
    int64_t inner, len, bs, slen;
} s_qmap_t;

static void s_qparams(const gq_onnx_val_t *sc, const gq_onnx_val_t *zp, const s_qmap_t *m,
                      int64_t i, double *scale, double *zero)
{
    int64_t k = 0;
    if (!m->scalar && !m->bs) {
        k = (i / m->inner) % m->len;
    } else if (!m->scalar) {
        int64_t q = i % m->inner, j = (i / m->inner) % m->len, o = i / (m->inner * m->len);
        k = (o * m->slen + j / m->bs) * m->inner + q;
    }
    *scale = gq_onnx_getd(sc->data, sc->desc.dtype, k);
    *zero = zp && zp->nbytes ? gq_onnx_getd(zp->data, zp->desc.dtype, k) : 0;
}

/* Checks scale/zero point against x: scalars, vectors along axis (opset 13) or blocks along
 * axis (opset 21). */
static gq_status s_qcheck(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                          s_qmap_t *m, char *err, size_t errlen)
{
    const gq_tdesc_t *x = &in[0]->desc, *sd = &in[1]->desc;
    const gq_onnx_val_t *zp = nin > 2 ? in[2] : NULL;
    int64_t axis = 0, ns = gq_tdesc_numel(sd);
    int64_t bs = opset >= 21 ? gq_onnx_attr_int(n, "block_size", 0) : 0;
    gq_status rc = GQ_OK;
    *m = (s_qmap_t){.scalar = ns == 1 && !bs, .inner = 1, .len = 1, .bs = bs, .slen = 1};
    if (bs < 0) {
        gq_errf(err, errlen, "block_size %lld is negative", (long long)bs);
        return GQ_EPARAM;
    }
    if (!m->scalar) {
        if ((rc = gq_onnx_axis(gq_onnx_attr_int(n, "axis", 1), x->ndim, &axis, err, errlen)))
            return rc;
        m->len = x->shape[axis];
        for (int d = (int)axis + 1; d < x->ndim; d++)
            m->inner *= x->shape[d];
    }
    bool ok = gq_onnx_dtype_real(sd->dtype) &&
              (!zp || gq_tdesc_equal(&zp->desc, sd) || gq_tdesc_numel(&zp->desc) == ns);
    if (bs) {
        m->slen = (m->len + bs - 1) / bs;
        ok = ok && sd->ndim == x->ndim;
        for (int d = 0; ok && d < x->ndim; d++)
            ok = sd->shape[d] == (d == axis ? m->slen : x->shape[d]);
    } else if (!m->scalar) {
        ok = ok && ns == m->len && sd->ndim <= 1;
    }
    if (!ok) {
        char a[96], b[96];
        gq_errf(err, errlen, "scale %s does not match the input %s along axis %lld%s",
                gq_tdesc_str(sd, a, sizeof a), gq_tdesc_str(x, b, sizeof b), (long long)axis,
                bs ? " in blocks" : "");
        return GQ_ESHAPE;
    }
    return GQ_OK;
}

static gq_status s_quantize(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                            gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout;
    s_qmap_t m;
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    if (rc || (rc = s_qcheck(n, opset, in, nin, &m, err, errlen)))
        return rc;
    gq_tdesc_t od = in[0]->desc;
    int64_t odt = opset >= 21 ? gq_onnx_attr_int(n, "output_dtype", 0) : 0;
    od.dtype = nin > 2 && in[2] ? in[2]->desc.dtype : odt ? gq_onnx_dtype((int32_t)odt) : GQ_U8;
    double lo, hi;
    switch (od.dtype) {
    case GQ_U8:
        lo = 0, hi = UINT8_MAX;
        break;
    case GQ_I8:
        lo = INT8_MIN, hi = INT8_MAX;
        break;
    case GQ_U16: /* 16-bit outputs: opset 21 */
        lo = 0, hi = UINT16_MAX;
        break;
    case GQ_I16:
        lo = INT16_MIN, hi = INT16_MAX;
        break;
    default:
        gq_errf(err, errlen, "output type %s: want u8, i8, u16 or i16", gq_dtype_name(od.dtype));
        return GQ_EDTYPE;
    }
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    for (int64_t i = 0, total = gq_tdesc_numel(&od); i < total; i++) {
        double sc, zp;
        s_qparams(in[1], nin > 2 ? in[2] : NULL, &m, i, &sc, &zp);
        double x = gq_onnx_getd(in[0]->data, in[0]->desc.dtype, i);
        /* f32 divides in f32, as ONNX's reference does: ties decide the rounding */
        double q =
            (in[0]->desc.dtype == GQ_F32 ? nearbyintf((float)x / (float)sc) : nearbyint(x / sc)) +
            zp;
        gq_onnx_setd(out->data, od.dtype, i, q < lo ? lo : q > hi ? hi : q);
    }
    return GQ_OK;
}

static gq_status s_dequantize(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                              int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout;
    s_qmap_t m;
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    if (rc || (rc = s_qcheck(n, opset, in, nin, &m, err, errlen)))
        return rc;
    if (!gq_onnx_dtype_int(in[0]->desc.dtype)) {
        gq_errf(err, errlen, "input is %s, want an integer type", gq_dtype_name(in[0]->desc.dtype));
        return GQ_EDTYPE;
    }
    gq_tdesc_t od = in[0]->desc;
    od.dtype = in[1]->desc.dtype;
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    for (int64_t i = 0, total = gq_tdesc_numel(&od); i < total; i++) {
        double sc, zp;
        s_qparams(in[1], nin > 2 ? in[2] : NULL, &m, i, &sc, &zp);
        gq_onnx_setd(out->data, od.dtype, i,
                     (gq_onnx_getd(in[0]->data, in[0]->desc.dtype, i) - zp) * sc);
    }
    return GQ_OK;
}

/* DynamicQuantizeLinear: u8 with scale (max(0, max) - min(0, min)) / 255 and the zero
 * point that maps 0 exactly; f32 arithmetic as ONNX's reference. */
static gq_status s_dyn_quantize(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                                int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)n, (void)opset;
    gq_status rc = gq_onnx_need(in, nin, 1, err, errlen);
    if (rc)
        return rc;
    if (in[0]->desc.dtype != GQ_F32 || nout < 3) {
        gq_errf(err, errlen, "want an f32 input and 3 outputs");
        return GQ_EDTYPE;
    }
    const float *x = in[0]->data;
    int64_t total = gq_tdesc_numel(&in[0]->desc);
    float mn = 0, mx = 0;
    for (int64_t i = 0; i < total; i++)
        mn = x[i] < mn ? x[i] : mn, mx = x[i] > mx ? x[i] : mx;
    float sc = (mx - mn) / 255.0f, z = sc != 0 ? nearbyintf(0.0f - mn / sc) : 0;
    z = z < 0 ? 0 : z > 255 ? 255 : z;
    gq_tdesc_t od = in[0]->desc, sd = {.dtype = GQ_F32}, zd = {.dtype = GQ_U8};
    od.dtype = GQ_U8;
    if ((rc = gq_onnx_out(&out[0], &od, err, errlen)) ||
        (rc = gq_onnx_out(&out[1], &sd, err, errlen)) ||
        (rc = gq_onnx_out(&out[2], &zd, err, errlen)))
        return rc;
    *(float *)out[1].data = sc;
    *(uint8_t *)out[2].data = (uint8_t)z;
    for (int64_t i = 0; i < total; i++) {
        float q = (sc != 0 ? nearbyintf(x[i] / sc) : 0) + z;
        ((uint8_t *)out[0].data)[i] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
    }
    return GQ_OK;
}

const gq_onnx_kernel_t gq_onnx_kernels_logic[] = {
    {"Cast", 6, s_cast},
    {"CastLike", 15, s_castlike},
    {"Equal", 7, s_equal},
    {"Less", 7, s_less},
    {"Greater", 7, s_greater},
    {"LessOrEqual", 12, s_less_equal},
    {"GreaterOrEqual", 12, s_greater_equal},
    {"And", 7, s_and},
    {"Or", 7, s_or},
    {"Xor", 7, s_xor},
    {"Not", 1, s_not},
    {"PRelu", 7, s_prelu},
    {"Mod", 10, s_mod},
    {"BitShift", 11, s_bitshift},
    {"BitwiseAnd", 18, s_bitwise_and},
    {"BitwiseOr", 18, s_bitwise_or},
    {"BitwiseXor", 18, s_bitwise_xor},
    {"BitwiseNot", 18, s_bitwise_not},
    {"IsNaN", 9, s_isnan},
    {"IsInf", 10, s_isinf},
    {"Where", 9, s_where},
    {"Trilu", 14, s_trilu},
    {"EyeLike", 9, s_eyelike},
    {"OneHot", 9, s_onehot},
    {"NonZero", 9, s_nonzero},
    {"CumSum", 11, s_cumsum},
    {"QuantizeLinear", 10, s_quantize},
    {"DequantizeLinear", 10, s_dequantize},
    {"DynamicQuantizeLinear", 11, s_dyn_quantize},
};
const int gq_onnx_kernels_logic_count = GQ_ONNX_COUNT(gq_onnx_kernels_logic);
