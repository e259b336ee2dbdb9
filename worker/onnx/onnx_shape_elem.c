/* Shape functions of the element-wise, logic and reduce families, and of every op whose output
 * has its input's type (s_f_same: the norms, Softmax, the Scatters...): casts and quantization,
 * NumPy broadcasting (with the values of small integer arithmetic), reductions, ArgMax and
 * TopK. See onnx_infer.c for the rules they follow. */
#include <string.h>

#include "onnx_shape.h"

/* ---- elementwise ---- */

static gq_status s_f_bool(gq_onnx_shape_ctx_t *c)
{
    s_type(&c->out[0], s_in(c, 0));
    c->out[0].dtype = GQ_BOOL;
    return GQ_OK;
}

static gq_status s_f_dropout(gq_onnx_shape_ctx_t *c)
{
    s_f_same(c);
    if (c->nout > 1)
        s_type(&c->out[1], s_in(c, 0)), c->out[1].dtype = GQ_BOOL;
    return GQ_OK;
}

static gq_status s_f_cast(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    gq_dtype_t to = gq_onnx_dtype((int32_t)gq_onnx_attr_int(c->n, "to", 0));
    s_f_ident(c);
    c->out[0].dtype = to;
    if (!x || !gq_onnx_dtype_real(to) || (to != GQ_I64 && to != GQ_I32))
        c->out[0].nval = -1;
    for (int i = 0; i < c->out[0].nval; i++) /* a number that would wrap: no values */
        if (to == GQ_I32 && s_isk(x->val[i]) && (int32_t)x->val[i].c != x->val[i].c)
            c->out[0].nval = -1;
    return GQ_OK;
}

static gq_status s_f_castlike(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *t = s_in(c, 1);
    s_f_same(c);
    c->out[0].dtype = t ? t->dtype : GQ_DTYPE_INVALID;
    return GQ_OK;
}

static gq_status s_f_dequant(gq_onnx_shape_ctx_t *c)
{
    return s_f_castlike(c);
}

static gq_status s_f_quant(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *z = s_in(c, 2);
    int64_t odt = c->opset >= 21 ? gq_onnx_attr_int(c->n, "output_dtype", 0) : 0;
    s_f_same(c);
    c->out[0].dtype = z ? z->dtype : odt ? gq_onnx_dtype((int32_t)odt) : GQ_U8;
    return GQ_OK;
}

static gq_status s_f_dynquant(gq_onnx_shape_ctx_t *c)
{
    s_f_same(c);
    c->out[0].dtype = GQ_U8;
    if (c->nout > 1)
        s_rank(&c->out[1], GQ_F32, 0);
    if (c->nout > 2)
        s_rank(&c->out[2], GQ_U8, 0);
    return GQ_OK;
}

static gq_status s_f_eyelike(gq_onnx_shape_ctx_t *c)
{
    const Onnx__AttributeProto *a = gq_onnx_attr(c->n, "dtype");
    s_f_same(c);
    if (a && a->has_i)
        c->out[0].dtype = gq_onnx_dtype((int32_t)a->i);
    return GQ_OK;
}

static gq_status s_f_layernorm(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    int axis;
    s_f_same(c);
    for (int o = 1; o < c->nout && o < 3; o++) {
        s_type(&c->out[o], x);
        if (!x || x->rank < 0 || !s_axis(gq_onnx_attr_int(c->n, "axis", -1), x->rank, &axis)) {
            c->out[o].rank = -1;
            continue;
        }
        for (int d = axis; d < x->rank; d++)
            c->out[o].dim[d] = s_dk(1);
    }
    return GQ_OK;
}

gq_status gq_onnx_shape_bcast(gq_onnx_shape_ctx_t *c, gq_onnx_info_t *acc, const gq_onnx_info_t *b,
                              int ia, int ib)
{
    if (acc->rank < 0 || !b || b->rank < 0) {
        acc->rank = -1;
        return GQ_OK;
    }
    int nd = acc->rank > b->rank ? acc->rank : b->rank;
    gq_onnx_dim_t r[GQ_MAX_DIMS];
    for (int d = 0; d < nd; d++) {
        int xa = d - (nd - acc->rank), xb = d - (nd - b->rank);
        gq_onnx_dim_t da = xa >= 0 ? acc->dim[xa] : s_dk(1), db = xb >= 0 ? b->dim[xb] : s_dk(1);
        bool one_a = s_isk(da) && da.c == 1, one_b = s_isk(db) && db.c == 1;
        if (s_dne(da, db) && !one_a && !one_b) {
            char x[160], y[160], t[128];
            if (ib >= 0)
                return s_fail(c, "%s does not broadcast with %s (dim %d: %lld vs %lld)",
                              s_idesc(c, ia, x, sizeof x), s_idesc(c, ib, y, sizeof y), d,
                              (long long)db.c, (long long)da.c);
            return s_fail(c, "%s does not broadcast with the inputs before it, %s (dim %d)",
                          s_idesc(c, ia, x, sizeof x), gq_onnx_info_str(acc, c->syms, t, sizeof t),
                          d);
        }
        r[d] = one_a           ? db
               : one_b         ? da
               : s_isk(da)     ? da
               : s_isk(db)     ? db
               : s_deq(da, db) ? da
                               : s_du();
    }
    acc->rank = nd;
    memcpy(acc->dim, r, sizeof r);
    return GQ_OK;
}

/* The broadcast of inputs from..nin into o's dims. */
static gq_status s_bcast_all(gq_onnx_shape_ctx_t *c, int from, gq_onnx_info_t *o)
{
    gq_status rc = GQ_OK;
    s_type(o, s_in(c, from));
    for (int i = from + 1; i < c->nin && !rc; i++)
        rc = gq_onnx_shape_bcast(c, o, c->in[i], i, i == from + 1 ? from : -1);
    return rc;
}

/* Add/Sub/Mul/Div of small integer tensors whose values are known (shape arithmetic). */
static void s_arith_vals(gq_onnx_shape_ctx_t *c, gq_onnx_info_t *o)
{
    const char *op = c->n->op_type;
    gq_onnx_dim_t a[GQ_ONNX_MAXVAL], b[GQ_ONNX_MAXVAL];
    int na, nb;
    gq_onnx_dim_t n = gq_onnx_info_numel(o);
    if ((strcmp(op, "Add") && strcmp(op, "Sub") && strcmp(op, "Mul") && strcmp(op, "Div")) ||
        (o->dtype != GQ_I64 && o->dtype != GQ_I32) || o->rank > 1 || c->nin != 2 || !s_isk(n) ||
        !gq_onnx_info_vals(c->in[0], a, GQ_ONNX_MAXVAL, &na) ||
        !gq_onnx_info_vals(c->in[1], b, GQ_ONNX_MAXVAL, &nb) || (na != n.c && na != 1) ||
        (nb != n.c && nb != 1))
        return;
    for (int i = 0; i < n.c; i++) {
        gq_onnx_dim_t x = a[na == 1 ? 0 : i], y = b[nb == 1 ? 0 : i], r = s_du();
        if (!strcmp(op, "Add"))
            r = gq_onnx_dim_add(x, y, 1);
        else if (!strcmp(op, "Sub"))
            r = gq_onnx_dim_add(x, y, -1);
        else if (!strcmp(op, "Mul"))
            r = gq_onnx_dim_mul(x, y);
        else if (s_isk(x) && s_isk(y) && y.c != 0 && !(x.c == INT64_MIN && y.c == -1))
            r = s_dk(x.c / y.c);
        else
            r = gq_onnx_dim_div(x, y);
        if (o->dtype == GQ_I32 && s_isk(r) && (int32_t)r.c != r.c)
            return;
        o->val[i] = r;
    }
    o->nval = (int)n.c;
}

static gq_status s_f_bcast(gq_onnx_shape_ctx_t *c)
{
    gq_status rc = s_bcast_all(c, 0, &c->out[0]);
    s_arith_vals(c, &c->out[0]);
    return rc;
}

static gq_status s_f_compare(gq_onnx_shape_ctx_t *c)
{
    gq_status rc = s_bcast_all(c, 0, &c->out[0]);
    c->out[0].dtype = GQ_BOOL;
    return rc;
}

static gq_status s_f_where(gq_onnx_shape_ctx_t *c)
{
    gq_status rc = s_bcast_all(c, 0, &c->out[0]);
    const gq_onnx_info_t *x = s_in(c, 1);
    c->out[0].dtype = x ? x->dtype : GQ_DTYPE_INVALID;
    return rc;
}

/* ---- reductions ---- */

static gq_status s_f_reduce(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    gq_onnx_info_t *o = &c->out[0];
    bool keep = gq_onnx_attr_int(c->n, "keepdims", 1) != 0;
    bool red[GQ_MAX_DIMS],
        axes_input = c->opset >= 18 || (!strcmp(c->n->op_type, "ReduceSum") && c->opset >= 13);
    int64_t axes[GQ_MAX_DIMS * 2];
    int na = -1, a;
    s_rank(o, x ? x->dtype : GQ_DTYPE_INVALID, x && keep ? x->rank : -1);
    if (!x || x->rank < 0)
        return GQ_OK;
    if (axes_input ? s_in(c, 1) && !gq_onnx_info_consts(c->in[1], axes, GQ_MAX_DIMS * 2, &na)
                   : !s_attr_ints(c->n, "axes", axes, GQ_MAX_DIMS * 2, &na))
        return GQ_OK;
    bool noop = na <= 0 && gq_onnx_attr_int(c->n, "noop_with_empty_axes", 0);
    for (int d = 0; d < x->rank; d++)
        red[d] = na <= 0 && !noop;
    for (int i = 0; i < na; i++) {
        if (!s_axis(axes[i], x->rank, &a))
            return GQ_OK;
        red[a] = true;
    }
    o->rank = 0;
    for (int d = 0; d < x->rank; d++)
        if (!red[d] || keep)
            o->dim[o->rank++] = red[d] ? s_dk(1) : x->dim[d];
    return GQ_OK;
}

static gq_status s_f_argmax(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    bool keep = gq_onnx_attr_int(c->n, "keepdims", 1) != 0;
    int axis;
    s_rank(&c->out[0], GQ_I64, -1);
    if (!x || x->rank < 0 || !s_axis(gq_onnx_attr_int(c->n, "axis", 0), x->rank, &axis))
        return GQ_OK;
    gq_onnx_info_t *o = &c->out[0];
    o->rank = 0;
    for (int d = 0; d < x->rank; d++)
        if (d != axis || keep)
            o->dim[o->rank++] = d == axis ? s_dk(1) : x->dim[d];
    return GQ_OK;
}

static gq_status s_f_topk(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    int64_t k = gq_onnx_attr_int(c->n, "k", -1);
    int nk = 1, axis;
    s_f_same(c);
    if (c->nout > 1)
        s_type(&c->out[1], x), c->out[1].dtype = GQ_I64;
    if (!x || x->rank < 0 || !s_axis(gq_onnx_attr_int(c->n, "axis", -1), x->rank, &axis))
        return GQ_OK;
    bool kk = c->opset >= 10 ? gq_onnx_info_consts(s_in(c, 1), &k, 1, &nk) && nk == 1 : true;
    for (int o = 0; o < c->nout && o < 2; o++)
        c->out[o].dim[axis] = kk && k >= 0 ? s_dk(k) : s_du();
    return GQ_OK;
}

const gq_onnx_shape_t gq_onnx_shapes_elem[] = {
    {"Abs", s_f_same},
    {"Acos", s_f_same},
    {"Acosh", s_f_same},
    {"Add", s_f_bcast},
    {"And", s_f_compare},
    {"ArgMax", s_f_argmax},
    {"ArgMin", s_f_argmax},
    {"Asin", s_f_same},
    {"Asinh", s_f_same},
    {"Atan", s_f_same},
    {"Atanh", s_f_same},
    {"BatchNormalization", s_f_same},
    {"BitShift", s_f_bcast},
    {"BitwiseAnd", s_f_bcast},
    {"BitwiseNot", s_f_same},
    {"BitwiseOr", s_f_bcast},
    {"BitwiseXor", s_f_bcast},
    {"Cast", s_f_cast},
    {"CastLike", s_f_castlike},
    {"Ceil", s_f_same},
    {"Celu", s_f_same},
    {"Clip", s_f_same},
    {"Cos", s_f_same},
    {"Cosh", s_f_same},
    {"CumSum", s_f_same},
    {"DequantizeLinear", s_f_dequant},
    {"Div", s_f_bcast},
    {"Dropout", s_f_dropout},
    {"DynamicQuantizeLinear", s_f_dynquant},
    {"Elu", s_f_same},
    {"Equal", s_f_compare},
    {"Erf", s_f_same},
    {"Exp", s_f_same},
    {"EyeLike", s_f_eyelike},
    {"Floor", s_f_same},
    {"Gelu", s_f_same},
    {"Greater", s_f_compare},
    {"GreaterOrEqual", s_f_compare},
    {"GroupNormalization", s_f_same},
    {"HardSigmoid", s_f_same},
    {"HardSwish", s_f_same},
    {"Hardmax", s_f_same},
    {"Identity", s_f_ident},
    {"InstanceNormalization", s_f_same},
    {"IsInf", s_f_bool},
    {"IsNaN", s_f_bool},
    {"LRN", s_f_same},
    {"LayerNormalization", s_f_layernorm},
    {"LeakyRelu", s_f_same},
    {"Less", s_f_compare},
    {"LessOrEqual", s_f_compare},
    {"Log", s_f_same},
    {"LogSoftmax", s_f_same},
    {"LpNormalization", s_f_same},
    {"Max", s_f_bcast},
    {"Mean", s_f_bcast},
    {"MeanVarianceNormalization", s_f_same},
    {"Min", s_f_bcast},
    {"Mish", s_f_same},
    {"Mod", s_f_bcast},
    {"Mul", s_f_bcast},
    {"Neg", s_f_same},
    {"Not", s_f_same},
    {"Or", s_f_compare},
    {"PRelu", s_f_same},
    {"Pow", s_f_bcast},
    {"QuantizeLinear", s_f_quant},
    {"Reciprocal", s_f_same},
    {"ReduceL1", s_f_reduce},
    {"ReduceL2", s_f_reduce},
    {"ReduceLogSum", s_f_reduce},
    {"ReduceLogSumExp", s_f_reduce},
    {"ReduceMax", s_f_reduce},
    {"ReduceMean", s_f_reduce},
    {"ReduceMin", s_f_reduce},
    {"ReduceProd", s_f_reduce},
    {"ReduceSum", s_f_reduce},
    {"ReduceSumSquare", s_f_reduce},
    {"Relu", s_f_same},
    {"ReverseSequence", s_f_same},
    {"Round", s_f_same},
    {"Scatter", s_f_same},
    {"ScatterElements", s_f_same},
    {"ScatterND", s_f_same},
    {"Selu", s_f_same},
    {"Shrink", s_f_same},
    {"Sigmoid", s_f_same},
    {"Sign", s_f_same},
    {"Sin", s_f_same},
    {"Sinh", s_f_same},
    {"Softmax", s_f_same},
    {"Softplus", s_f_same},
    {"Softsign", s_f_same},
    {"Sqrt", s_f_same},
    {"Sub", s_f_bcast},
    {"Sum", s_f_bcast},
    {"Tan", s_f_same},
    {"Tanh", s_f_same},
    {"ThresholdedRelu", s_f_same},
    {"TopK", s_f_topk},
    {"Trilu", s_f_same},
    {"Where", s_f_where},
    {"Xor", s_f_compare},
};
const int gq_onnx_shapes_elem_count = GQ_ONNX_COUNT(gq_onnx_shapes_elem);
