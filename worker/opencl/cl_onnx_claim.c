/* Which ONNX steps the OpenCL accelerator runs (f32 only): the step's op type and kernel at
 * plan time; attributes, dtypes and shapes when the step runs, with their output shapes (the
 * CPU kernels' rules: worker/onnx/onnx_ops_*.c) and geometry for the launch (cl_onnx_ops.c).
 * Anything else is declined and runs on the CPU: other dtypes, 3-D convs and pools, MaxPool's
 * Indices, training modes, MatMul batch dims that broadcast both ways, empty tensors and tensors of
 * 2^31 elements or more, a shape or axes input that only the device holds, and any kernel the
 * plan's fusion put in that is not listed here. Fused kernels are known by their names (Conv+Relu,
 * and Conv+Act, Gemm+Act, MatMul+Add with the epilogue constant onnx_int.h describes); the epilogue
 * runs in the GEMM's store. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_onnx.h"
#include "util.h"

const gq_clx_entry_t gq_clx_table[] = {
    {"Relu", GQ_CLX_K_UNARY, GQ_CLX_UN_RELU},
    {"Sigmoid", GQ_CLX_K_UNARY, GQ_CLX_UN_SIGMOID},
    {"Tanh", GQ_CLX_K_UNARY, GQ_CLX_UN_TANH},
    {"LeakyRelu", GQ_CLX_K_UNARY, GQ_CLX_UN_LEAKY},
    {"Elu", GQ_CLX_K_UNARY, GQ_CLX_UN_ELU},
    {"Selu", GQ_CLX_K_UNARY, GQ_CLX_UN_SELU},
    {"HardSigmoid", GQ_CLX_K_UNARY, GQ_CLX_UN_HARDSIGMOID},
    {"HardSwish", GQ_CLX_K_UNARY, GQ_CLX_UN_HARDSWISH},
    {"Softplus", GQ_CLX_K_UNARY, GQ_CLX_UN_SOFTPLUS},
    {"Softsign", GQ_CLX_K_UNARY, GQ_CLX_UN_SOFTSIGN},
    {"Clip", GQ_CLX_K_UNARY, GQ_CLX_UN_CLIP},
    {"Exp", GQ_CLX_K_UNARY, GQ_CLX_UN_EXP},
    {"Log", GQ_CLX_K_UNARY, GQ_CLX_UN_LOG},
    {"Sqrt", GQ_CLX_K_UNARY, GQ_CLX_UN_SQRT},
    {"Abs", GQ_CLX_K_UNARY, GQ_CLX_UN_ABS},
    {"Neg", GQ_CLX_K_UNARY, GQ_CLX_UN_NEG},
    {"Reciprocal", GQ_CLX_K_UNARY, GQ_CLX_UN_RECIP},
    {"Floor", GQ_CLX_K_UNARY, GQ_CLX_UN_FLOOR},
    {"Ceil", GQ_CLX_K_UNARY, GQ_CLX_UN_CEIL},
    {"Erf", GQ_CLX_K_UNARY, GQ_CLX_UN_ERF},
    {"Add", GQ_CLX_K_BINARY, GQ_CLX_ADD_FLAT},
    {"Sub", GQ_CLX_K_BINARY, GQ_CLX_SUB_FLAT},
    {"Mul", GQ_CLX_K_BINARY, GQ_CLX_MUL_FLAT},
    {"Div", GQ_CLX_K_BINARY, GQ_CLX_DIV_FLAT},
    {"MatMul", GQ_CLX_K_MATMUL, 0},
    {"Gemm", GQ_CLX_K_GEMM, 0},
    {"Conv", GQ_CLX_K_CONV, 0},
    /* kernels the plan's fusion puts in (onnx_int.h), by their names */
    {"Conv+Relu", GQ_CLX_K_CONV_RELU, 0},
    {"Conv+Act", GQ_CLX_K_CONV_ACT, 0},
    {"Gemm+Act", GQ_CLX_K_GEMM_ACT, 0},
    {"MatMul+Add", GQ_CLX_K_MATMUL_ADD, 0},
    {"MaxPool", GQ_CLX_K_MAXPOOL, 0},
    {"AveragePool", GQ_CLX_K_AVGPOOL, 0},
    {"GlobalMaxPool", GQ_CLX_K_GMAXPOOL, 0},
    {"GlobalAveragePool", GQ_CLX_K_GAVGPOOL, 0},
    {"BatchNormalization", GQ_CLX_K_BATCHNORM, 0},
    {"Softmax", GQ_CLX_K_SOFTMAX, 0},
    {"LogSoftmax", GQ_CLX_K_LOGSOFTMAX, 0},
    {"Reshape", GQ_CLX_K_RESHAPE, 0},
    {"Flatten", GQ_CLX_K_FLATTEN, 0},
    {"Squeeze", GQ_CLX_K_SQUEEZE, 0},
    {"Unsqueeze", GQ_CLX_K_UNSQUEEZE, 0},
    {"Identity", GQ_CLX_K_IDENTITY, 0},
    {"Dropout", GQ_CLX_K_DROPOUT, 0},
    {"Transpose", GQ_CLX_K_TRANSPOSE, 0},
};
#define S_NTABLE ((int)(sizeof gq_clx_table / sizeof gq_clx_table[0]))

int gq_clx_step_op(const gq_onnx_plan_t *p, int k)
{
    const gq_onnx_step_t *st = &p->steps[k];
    if (st->branch[0] || !st->k || !st->node || !st->node->op_type)
        return -1;
    const char *op = st->node->op_type;
    /* The step must run the op's own kernel, or a fused one listed here whose name starts
     * with the op ("Conv+Act" on a Conv node): a kernel another pass put in and this file
     * does not know is declined, never run with the wrong semantics. */
    size_t len = strlen(op);
    const char *as = st->k == gq_onnx_kernel_find(op, p->opset) ? op
                     : st->k->op && !strncmp(st->k->op, op, len) && st->k->op[len] == '+'
                         ? st->k->op
                         : NULL;
    for (int i = 0; as && i < S_NTABLE; i++)
        if (!strcmp(gq_clx_table[i].op, as))
            return i;
    return -1;
}

/* ---- claims ---- */

static bool s_f32(const gq_onnx_val_t *v)
{
    if (!v || v->desc.dtype != GQ_F32)
        return false;
    int64_t n = gq_tdesc_numel(&v->desc);
    return n > 0 && n <= GQ_CLX_INT_MAX;
}

/* A small host-readable input (shape, axes, Clip bounds). */
static bool s_host(const gq_onnx_val_t *v)
{
    return v && !v->dev_only && (v->data || !v->nbytes);
}

/* Whether output o of step st is read (graph outputs included). */
static bool s_used(const gq_onnx_plan_t *p, const gq_onnx_step_t *st, int o)
{
    return o < st->nout && st->out[o] >= 0 && p->last_use[st->out[o]] >= 0;
}

/* An ints attribute of exactly want values into v (def when absent); false otherwise. */
static bool s_ints(const Onnx__NodeProto *n, const char *name, int want, int64_t def, int64_t *v)
{
    int got;
    char e[8];
    if (gq_onnx_attr_ints(n, name, v, GQ_MAX_DIMS * 2, &got, e, sizeof e))
        return false;
    if (got < 0)
        for (int i = 0; i < want; i++)
            v[i] = def;
    return got < 0 || got == want;
}

/* Geometry of a 1-D or 2-D window op (the CPU's s_geom; 1-D as 2-D with a unit height):
 * g[0..13] = IH, IW, KH, KW, SH, SW, DH, DW, PH, PW, PHe, PWe, OH, OW. kern: the conv's
 * kernel dims (NULL: kernel_shape). */
static bool s_geom(const Onnx__NodeProto *n, const gq_tdesc_t *x, const int64_t *kern,
                   bool ceil_mode, int64_t *g)
{
    int k = x->ndim - 2;
    if (k < 1 || k > 2)
        return false;
    int64_t st[2], dl[2], pads[4], ks[2];
    char ap[32], e[8];
    if (!s_ints(n, "strides", k, 1, st) || !s_ints(n, "dilations", k, 1, dl) ||
        !s_ints(n, "pads", 2 * k, 0, pads) || !s_ints(n, "kernel_shape", k, -1, ks) ||
        gq_onnx_attr_str(n, "auto_pad", "NOTSET", ap, sizeof ap, e, sizeof e))
        return false;
    int64_t r[2][7]; /* per dim: in, kern, stride, dil, pb, pe, out */
    for (int d = 0; d < 2; d++) {
        int s = d - (2 - k); /* the source dim; < 0: the unit height of a 1-D op */
        int64_t in = s < 0 ? 1 : x->shape[s + 2], kk = s < 0 ? 1 : kern ? kern[s] : ks[s];
        int64_t sd = s < 0 ? 1 : st[s], dd = s < 0 ? 1 : dl[s];
        int64_t p0 = s < 0 ? 0 : pads[s], p1 = s < 0 ? 0 : pads[s + k];
        if (s >= 0 && kern && ks[s] >= 0 && ks[s] != kern[s])
            return false;
        if (kk < 1 || sd < 1 || dd < 1 || p0 < 0 || p1 < 0 || kk > GQ_CLX_INT_MAX ||
            sd > GQ_CLX_INT_MAX || dd > GQ_CLX_INT_MAX || p0 > GQ_CLX_INT_MAX ||
            p1 > GQ_CLX_INT_MAX)
            return false;
        int64_t dk = (kk - 1) * dd + 1, o;
        bool same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
        if (s >= 0 && same) {
            o = (in + sd - 1) / sd;
            int64_t tot = (o - 1) * sd + dk - in;
            tot = tot < 0 ? 0 : tot;
            p0 = !strcmp(ap, "SAME_UPPER") ? tot / 2 : tot - tot / 2;
            p1 = tot - p0;
        } else if (s < 0 || !strcmp(ap, "VALID") || !strcmp(ap, "NOTSET")) {
            if (s >= 0 && !strcmp(ap, "VALID"))
                p0 = p1 = 0;
            int64_t span = in + p0 + p1 - dk;
            if (span < 0)
                return false;
            o = (ceil_mode ? (span + sd - 1) / sd : span / sd) + 1;
            if (ceil_mode && (o - 1) * sd >= in + p0)
                o--;
        } else {
            return false;
        }
        int64_t v[7] = {in, kk, sd, dd, p0, p1, o};
        memcpy(r[d], v, sizeof v);
    }
    int64_t out[14] = {r[0][0], r[1][0], r[0][1], r[1][1], r[0][2], r[1][2], r[0][3],
                       r[1][3], r[0][4], r[1][4], r[0][5], r[1][5], r[0][6], r[1][6]};
    memcpy(g, out, sizeof out);
    return true;
}

/* The epilogue of a fused step (its constant f32[3], host-readable; NULL: none) into
 * v[40] (the kernels' code), f[2], f[3]. */
static bool s_epilogue(gq_clx_claim_t *c, const gq_onnx_val_t *v)
{
    gq_onnx_act_t f;
    char e[8];
    if ((v && !s_host(v)) || gq_onnx_act_decode(v, &f, e, sizeof e))
        return false;
    switch (f.k) {
    case GQ_ONNX_ACT_NONE:
        c->v[40] = 0;
        break;
    case GQ_ONNX_ACT_RELU:
        c->v[40] = 1;
        break;
    case GQ_ONNX_ACT_LEAKYRELU:
        c->v[40] = 2;
        break;
    case GQ_ONNX_ACT_CLIP:
        c->v[40] = 3;
        break;
    case GQ_ONNX_ACT_SIGMOID:
        c->v[40] = 4;
        break;
    case GQ_ONNX_ACT_TANH:
        c->v[40] = 5;
        break;
    case GQ_ONNX_ACT_HARDSIGMOID:
        c->v[40] = 6;
        break;
    default:
        return false;
    }
    c->f[2] = f.a, c->f[3] = f.b;
    return true;
}

static bool s_claim_unary(gq_clx_claim_t *c, const gq_onnx_step_t *st, int opset,
                          gq_onnx_val_t *const *in, int nin)
{
    const Onnx__NodeProto *n = st->node;
    const char *op = n->op_type;
    if (nin < 1 || !s_f32(in[0]) || st->nout != 1)
        return false;
    c->f[0] = c->f[1] = 0.0f;
    if (!strcmp(op, "LeakyRelu"))
        c->f[0] = gq_onnx_attr_float(n, "alpha", 0.01f);
    else if (!strcmp(op, "Elu"))
        c->f[0] = gq_onnx_attr_float(n, "alpha", 1.0f);
    else if (!strcmp(op, "Selu"))
        c->f[0] = gq_onnx_attr_float(n, "alpha", 1.67326319217681884765625f),
        c->f[1] = gq_onnx_attr_float(n, "gamma", 1.05070102214813232421875f);
    else if (!strcmp(op, "HardSigmoid"))
        c->f[0] = gq_onnx_attr_float(n, "alpha", 0.2f),
        c->f[1] = gq_onnx_attr_float(n, "beta", 0.5f);
    else if (!strcmp(op, "Clip") && opset < 11)
        c->f[0] = gq_onnx_attr_float(n, "min", -INFINITY),
        c->f[1] = gq_onnx_attr_float(n, "max", INFINITY);
    else if (!strcmp(op, "Clip"))
        for (int i = 0; i < 2; i++) {
            const gq_onnx_val_t *b = nin > i + 1 ? in[i + 1] : NULL;
            c->f[i] = i ? INFINITY : -INFINITY;
            if (!b || !b->nbytes)
                continue;
            if (b->desc.dtype != GQ_F32 || !s_host(b))
                return false;
            c->f[i] = *(const float *)b->data;
        }
    c->od[0] = in[0]->desc;
    return true;
}

/* The broadcast plan of z = a op b into c->v: nd, then shape and the two stride vectors,
 * 8 each, right-aligned (slot 7 innermost); dims of size 1 dropped, runs of dims that are
 * contiguous in both inputs merged. */
static void s_bcast(gq_clx_claim_t *c, const gq_tdesc_t *o, const gq_tdesc_t *a,
                    const gq_tdesc_t *b)
{
    int64_t sa[GQ_MAX_DIMS], sb[GQ_MAX_DIMS], sh[GQ_MAX_DIMS], ma[GQ_MAX_DIMS], mb[GQ_MAX_DIMS];
    gq_onnx_bstrides(a, o, sa);
    gq_onnx_bstrides(b, o, sb);
    int nd = 0;
    for (int d = 0; d < o->ndim; d++) {
        if (o->shape[d] == 1)
            continue;
        if (nd && ma[nd - 1] == sa[d] * o->shape[d] && mb[nd - 1] == sb[d] * o->shape[d]) {
            sh[nd - 1] *= o->shape[d];
            ma[nd - 1] = sa[d], mb[nd - 1] = sb[d];
            continue;
        }
        sh[nd] = o->shape[d], ma[nd] = sa[d], mb[nd] = sb[d];
        nd++;
    }
    if (!nd)
        sh[0] = 1, ma[0] = mb[0] = 0, nd = 1;
    c->v[0] = nd;
    for (int i = 0; i < 8; i++) {
        int d = i - (8 - nd);
        c->v[1 + i] = d < 0 ? 1 : sh[d];
        c->v[9 + i] = d < 0 ? 0 : ma[d];
        c->v[17 + i] = d < 0 ? 0 : mb[d];
    }
}

static bool s_claim_binary(gq_clx_claim_t *c, int opset, gq_onnx_val_t *const *in, int nin)
{
    char e[8];
    if (opset < 7 || nin != 2 || !s_f32(in[0]) || !s_f32(in[1]) ||
        gq_onnx_broadcast(&in[0]->desc, &in[1]->desc, &c->od[0], e, sizeof e))
        return false;
    c->od[0].dtype = GQ_F32;
    c->v[25] = gq_tdesc_equal(&in[0]->desc, &in[1]->desc); /* flat */
    s_bcast(c, &c->od[0], &in[0]->desc, &in[1]->desc);
    return gq_tdesc_numel(&c->od[0]) <= GQ_CLX_INT_MAX;
}

/* MatMul: v = M, N, K, batches, amod, abs, bmod, bbs (the CPU's shape rule). */
static bool s_claim_matmul(gq_clx_claim_t *c, gq_onnx_val_t *const *in, int nin)
{
    if (nin != 2 || !s_f32(in[0]) || !s_f32(in[1]))
        return false;
    gq_tdesc_t a = in[0]->desc, b = in[1]->desc, ba, bb, bo, *od = &c->od[0];
    char e[8];
    if (gq_onnx_matmul_shape(&a, &b, &ba, &bb, &bo, od, e, sizeof e))
        return false;
    int64_t m = a.shape[a.ndim - 2], k = a.shape[a.ndim - 1], n = b.shape[b.ndim - 1];
    int64_t nb = gq_tdesc_numel(&bo), na = gq_tdesc_numel(&ba), nbb = gq_tdesc_numel(&bb);
    if ((na != nb && na != 1) || (nbb != nb && nbb != 1))
        return false; /* both sides broadcast: the CPU's loop */
    int64_t v[8] = {m, n, k, nb, na == nb ? nb : 1, m * k, nbb == nb ? nb : 1, k * n};
    memcpy(c->v, v, sizeof v);
    return m <= GQ_CLX_INT_MAX && n <= GQ_CLX_INT_MAX && k <= GQ_CLX_INT_MAX &&
           nb <= GQ_CLX_INT_MAX && gq_tdesc_numel(od) > 0 && gq_tdesc_numel(od) <= GQ_CLX_INT_MAX;
}

/* Gemm: v = M, N, K, transA, transB, has bias, bsm, bsn; f = alpha, beta. */
static bool s_claim_gemm(gq_clx_claim_t *c, const Onnx__NodeProto *n, gq_onnx_val_t *const *in,
                         int nin)
{
    if (nin < 2 || !s_f32(in[0]) || !s_f32(in[1]) || in[0]->desc.ndim != 2 || in[1]->desc.ndim != 2)
        return false;
    float alpha = gq_onnx_attr_float(n, "alpha", 1.0f), beta = gq_onnx_attr_float(n, "beta", 1.0f);
    bool ta = gq_onnx_attr_int(n, "transA", 0), tb = gq_onnx_attr_int(n, "transB", 0);
    int64_t m = in[0]->desc.shape[ta ? 1 : 0], k = in[0]->desc.shape[ta ? 0 : 1];
    int64_t kb = in[1]->desc.shape[tb ? 1 : 0], nn = in[1]->desc.shape[tb ? 0 : 1];
    if (k != kb)
        return false;
    c->od[0] = (gq_tdesc_t){.dtype = GQ_F32, .ndim = 2, .shape = {m, nn}};
    bool bias = nin > 2 && in[2] && beta != 0;
    int64_t bsm = 0, bsn = 0;
    if (bias) {
        const gq_tdesc_t *cd = &in[2]->desc;
        gq_tdesc_t bd;
        char e[8];
        if (!s_f32(in[2]) || cd->ndim > 2 || gq_onnx_broadcast(cd, &c->od[0], &bd, e, sizeof e) ||
            bd.ndim != 2 || bd.shape[0] != m || bd.shape[1] != nn)
            return false;
        int64_t cm = cd->ndim == 2 ? cd->shape[0] : 1, cn = cd->ndim ? cd->shape[cd->ndim - 1] : 1;
        bsm = cm == 1 ? 0 : cn;
        bsn = cn == 1 ? 0 : 1;
    }
    int64_t v[8] = {m, nn, k, ta, tb, bias, bsm, bsn};
    memcpy(c->v, v, sizeof v);
    c->f[0] = alpha, c->f[1] = beta;
    return m <= GQ_CLX_INT_MAX && nn <= GQ_CLX_INT_MAX && k <= GQ_CLX_INT_MAX &&
           m * nn <= GQ_CLX_INT_MAX;
}

/* Conv: v[0..13] the geometry, then N, C, M, G, has bias. */
static bool s_claim_conv(gq_clx_claim_t *c, const Onnx__NodeProto *n, gq_onnx_val_t *const *in,
                         int nin)
{
    if (nin < 2 || !s_f32(in[0]) || !s_f32(in[1]))
        return false;
    const gq_tdesc_t *x = &in[0]->desc, *w = &in[1]->desc;
    if (x->ndim != w->ndim || x->ndim < 3 || x->ndim > 4)
        return false;
    int64_t group = gq_onnx_attr_int(n, "group", 1), N = x->shape[0], C = x->shape[1];
    int64_t M = w->shape[0];
    if (group < 1 || C % group || M % group || w->shape[1] * group != C)
        return false;
    bool bias = nin > 2 && in[2];
    if (bias && (!s_f32(in[2]) || in[2]->desc.ndim != 1 || in[2]->desc.shape[0] != M))
        return false;
    if (!s_geom(n, x, w->shape + 2, false, c->v))
        return false;
    int64_t OH = c->v[12], OW = c->v[13], K = C / group * c->v[2] * c->v[3];
    gq_tdesc_t *od = &c->od[0];
    *od = *x;
    od->shape[1] = M;
    od->shape[2] = x->ndim == 4 ? OH : OW;
    if (x->ndim == 4)
        od->shape[3] = OW;
    c->v[14] = N, c->v[15] = C, c->v[16] = M, c->v[17] = group, c->v[18] = bias;
    int64_t np = gq_tdesc_numel(od);
    /* one image's im2col columns must fit the kernels' int indices */
    return np > 0 && np <= GQ_CLX_INT_MAX && K * OH * OW <= GQ_CLX_INT_MAX / group &&
           gq_tdesc_numel(x) <= GQ_CLX_INT_MAX;
}

/* Pools: v[0..13] the geometry; v[14] count_include_pad. */
static bool s_claim_pool(gq_clx_claim_t *c, const gq_onnx_plan_t *p, const gq_onnx_step_t *st,
                         gq_onnx_val_t *const *in, int nin)
{
    const Onnx__NodeProto *n = st->node;
    if (nin < 1 || !s_f32(in[0]) || s_used(p, st, 1))
        return false;
    bool ceil_mode = p->opset >= 10 && gq_onnx_attr_int(n, "ceil_mode", 0);
    if (!gq_onnx_attr(n, "kernel_shape") || !s_geom(n, &in[0]->desc, NULL, ceil_mode, c->v))
        return false;
    c->v[14] = gq_onnx_attr_int(n, "count_include_pad", 0);
    c->od[0] = in[0]->desc;
    c->od[0].shape[2] = in[0]->desc.ndim == 4 ? c->v[12] : c->v[13];
    if (in[0]->desc.ndim == 4)
        c->od[0].shape[3] = c->v[13];
    int64_t no = gq_tdesc_numel(&c->od[0]);
    return no > 0 && no <= GQ_CLX_INT_MAX;
}

static bool s_claim_gpool(gq_clx_claim_t *c, gq_onnx_val_t *const *in, int nin)
{
    if (nin < 1 || !s_f32(in[0]) || in[0]->desc.ndim < 2)
        return false;
    c->od[0] = in[0]->desc;
    int64_t sz = 1;
    for (int d = 2; d < c->od[0].ndim; d++)
        sz *= c->od[0].shape[d], c->od[0].shape[d] = 1;
    c->v[0] = in[0]->desc.shape[0] * in[0]->desc.shape[1];
    c->v[1] = sz;
    return true;
}

/* BatchNormalization (inference, opset >= 9): v = sz, C; f[0] = epsilon. */
static bool s_claim_bn(gq_clx_claim_t *c, const gq_onnx_plan_t *p, const gq_onnx_step_t *st,
                       gq_onnx_val_t *const *in, int nin)
{
    const Onnx__NodeProto *n = st->node;
    if (p->opset < 9 || nin != 5 || gq_onnx_attr_int(n, "training_mode", 0) || !s_f32(in[0]) ||
        in[0]->desc.ndim < 2)
        return false;
    for (int o = 1; o < st->nout; o++)
        if (s_used(p, st, o))
            return false;
    int64_t C = in[0]->desc.shape[1], N = in[0]->desc.shape[0];
    for (int i = 1; i < 5; i++)
        if (!s_f32(in[i]) || in[i]->desc.ndim != 1 || in[i]->desc.shape[0] != C)
            return false;
    c->v[0] = gq_tdesc_numel(&in[0]->desc) / (N * C);
    c->v[1] = C;
    c->f[0] = gq_onnx_attr_float(n, "epsilon", 1e-5f);
    c->od[0] = in[0]->desc;
    return true;
}

/* Softmax / LogSoftmax: v = rows, len, inner (opset < 13: the input coerced to 2-D). */
static bool s_claim_softmax(gq_clx_claim_t *c, const Onnx__NodeProto *n, int opset,
                            gq_onnx_val_t *const *in, int nin)
{
    if (nin < 1 || !s_f32(in[0]))
        return false;
    const gq_tdesc_t *d = &in[0]->desc;
    int64_t axis = gq_onnx_attr_int(n, "axis", opset < 13 ? 1 : -1);
    if (axis < 0)
        axis += d->ndim;
    if (axis < 0 || axis >= (d->ndim ? d->ndim : 1))
        return false;
    int64_t outer = 1, len = 1, inner = 1;
    for (int i = 0; i < d->ndim; i++) {
        if (i < axis)
            outer *= d->shape[i];
        else if (opset < 13 || i == axis)
            len *= d->shape[i];
        else
            inner *= d->shape[i];
    }
    c->v[0] = outer * inner, c->v[1] = len, c->v[2] = inner;
    c->od[0] = *d;
    return true;
}

/* Axes from the attribute (opset < 13) or the second input; -1 when unreadable here. */
static int s_axes(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                  int64_t *axes)
{
    if (opset >= 13) {
        if (nin < 2 || !in[1])
            return 0;
        if (in[1]->desc.dtype != GQ_I64 || !s_host(in[1]))
            return -1;
        int64_t k = gq_tdesc_numel(&in[1]->desc);
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

/* Reshape-like ops: the output is the input's buffer under a new descriptor (the CPU's
 * shape rules). */
static bool s_claim_alias(gq_clx_claim_t *c, gq_clx_kind_t kind, const gq_onnx_plan_t *p,
                          const gq_onnx_step_t *st, gq_onnx_val_t *const *in, int nin)
{
    const Onnx__NodeProto *n = st->node;
    if (nin < 1 || !s_f32(in[0]))
        return false;
    const gq_tdesc_t *s = &in[0]->desc;
    gq_tdesc_t d = {.dtype = GQ_F32};
    int64_t axes[GQ_MAX_DIMS];
    int k;
    switch (kind) {
    case GQ_CLX_K_IDENTITY:
        d = *s;
        break;
    case GQ_CLX_K_DROPOUT:
        if (s_used(p, st, 1) || (p->opset >= 12 && nin > 2 && in[2]))
            return false;
        d = *s;
        break;
    case GQ_CLX_K_FLATTEN: {
        int64_t axis = gq_onnx_attr_int(n, "axis", 1);
        if (axis < 0)
            axis += s->ndim;
        if (axis < 0 || axis > s->ndim)
            return false;
        d.ndim = 2, d.shape[0] = d.shape[1] = 1;
        for (int i = 0; i < s->ndim; i++)
            d.shape[i < axis ? 0 : 1] *= s->shape[i];
        break;
    }
    case GQ_CLX_K_RESHAPE: {
        if (p->opset < 5 || nin < 2 || !in[1] || in[1]->desc.dtype != GQ_I64 ||
            in[1]->desc.ndim != 1 || !s_host(in[1]) || in[1]->desc.shape[0] > GQ_MAX_DIMS)
            return false;
        const int64_t *sh = in[1]->data;
        int64_t nd = in[1]->desc.shape[0], known = 1, total = gq_tdesc_numel(s);
        bool allowzero = gq_onnx_attr_int(n, "allowzero", 0);
        int infer = -1;
        d.ndim = (int)nd;
        for (int i = 0; i < nd; i++) {
            int64_t v = sh[i];
            if (v == 0 && !allowzero) {
                if (i >= s->ndim)
                    return false;
                v = s->shape[i];
            }
            if (v == -1 && infer < 0) {
                infer = i;
                continue;
            }
            if (v < 0)
                return false;
            d.shape[i] = v;
            known *= v;
        }
        if (infer >= 0) {
            if (known == 0 || total % known)
                return false;
            d.shape[infer] = total / known;
        }
        break;
    }
    case GQ_CLX_K_UNSQUEEZE: {
        if ((k = s_axes(n, p->opset, in, nin, axes)) <= 0 || s->ndim + k > GQ_MAX_DIMS)
            return false;
        int nd = s->ndim + k;
        bool ins[GQ_MAX_DIMS] = {false};
        for (int i = 0; i < k; i++) {
            int64_t a = axes[i] < 0 ? axes[i] + nd : axes[i];
            if (a < 0 || a >= nd || ins[a])
                return false;
            ins[a] = true;
        }
        d.ndim = nd;
        for (int i = 0, j = 0; i < nd; i++)
            d.shape[i] = ins[i] ? 1 : s->shape[j++];
        break;
    }
    case GQ_CLX_K_SQUEEZE: {
        bool drop[GQ_MAX_DIMS] = {false};
        if ((k = s_axes(n, p->opset, in, nin, axes)) < 0)
            return false;
        for (int i = 0; i < k; i++) {
            int64_t a = axes[i] < 0 ? axes[i] + s->ndim : axes[i];
            if (a < 0 || a >= s->ndim || s->shape[a] != 1)
                return false;
            drop[a] = true;
        }
        for (int i = 0; i < s->ndim; i++)
            if (!(k ? drop[i] : s->shape[i] == 1))
                d.shape[d.ndim++] = s->shape[i];
        break;
    }
    default:
        return false;
    }
    c->od[0] = d;
    return gq_tdesc_check(&d, NULL, NULL) == GQ_OK && gq_tdesc_numel(&d) == gq_tdesc_numel(s);
}

/* Transpose: the strided plan of the output over the input (s_bcast's layout, one source). */
static bool s_claim_transpose(gq_clx_claim_t *c, const Onnx__NodeProto *n, gq_onnx_val_t *const *in,
                              int nin)
{
    if (nin < 1 || !s_f32(in[0]))
        return false;
    const gq_tdesc_t *s = &in[0]->desc;
    int nd = s->ndim, perm[GQ_MAX_DIMS];
    const Onnx__AttributeProto *pa = gq_onnx_attr(n, "perm");
    bool seen[GQ_MAX_DIMS] = {false};
    if (pa && (int)pa->n_ints != nd)
        return false;
    for (int i = 0; i < nd; i++) {
        perm[i] = pa ? (int)pa->ints[i] : nd - 1 - i;
        if (perm[i] < 0 || perm[i] >= nd || seen[perm[i]])
            return false;
        seen[perm[i]] = true;
    }
    int64_t cst[GQ_MAX_DIMS], acc = 1;
    for (int i = nd - 1; i >= 0; i--)
        cst[i] = acc, acc *= s->shape[i];
    gq_tdesc_t *od = &c->od[0], src = *s;
    *od = *s;
    for (int i = 0; i < nd; i++)
        od->shape[i] = s->shape[perm[i]], src.shape[i] = cst[perm[i]];
    /* s_bcast with b = a: strides come from src read as a stride vector */
    int64_t sh[GQ_MAX_DIMS], ms[GQ_MAX_DIMS];
    int m = 0;
    for (int d = 0; d < nd; d++) {
        if (od->shape[d] == 1)
            continue;
        if (m && ms[m - 1] == src.shape[d] * od->shape[d]) {
            sh[m - 1] *= od->shape[d], ms[m - 1] = src.shape[d];
            continue;
        }
        sh[m] = od->shape[d], ms[m] = src.shape[d], m++;
    }
    if (!m)
        sh[0] = 1, ms[0] = 0, m = 1;
    c->v[0] = m;
    for (int i = 0; i < 8; i++) {
        int d = i - (8 - m);
        c->v[1 + i] = d < 0 ? 1 : sh[d];
        c->v[9 + i] = d < 0 ? 0 : ms[d];
    }
    return true;
}

bool gq_clx_claim(gq_clx_plan_t *ps, int k, gq_onnx_val_t *const *in, int nin, gq_tdesc_t *out_desc,
                  int nout)
{
    const gq_onnx_plan_t *p = ps->p;
    const gq_onnx_step_t *st = &p->steps[k];
    const gq_clx_entry_t *e = &gq_clx_table[ps->stepop[k]];
    gq_clx_claim_t *c = &ps->cur;
    bool ok = false;
    memset(c, 0, sizeof *c);
    c->op = ps->stepop[k];
    if (nout < 1)
        return false;
    switch (e->kind) {
    case GQ_CLX_K_UNARY:
        ok = s_claim_unary(c, st, p->opset, in, nin);
        break;
    case GQ_CLX_K_BINARY:
        ok = s_claim_binary(c, p->opset, in, nin);
        break;
    case GQ_CLX_K_MATMUL:
        ok = s_claim_matmul(c, in, nin);
        break;
    case GQ_CLX_K_MATMUL_ADD: /* A, B, bias [N] along the last dim (or absent), epilogue */
        ok = nin >= 2 && s_claim_matmul(c, in, 2) && in[1]->desc.ndim >= 2 &&
             (nin < 3 || !in[2] ||
              (s_f32(in[2]) && in[2]->desc.ndim == 1 && in[2]->desc.shape[0] == c->v[1])) &&
             s_epilogue(c, nin > 3 ? in[3] : NULL);
        c->v[41] = nin > 2 && in[2]; /* has the bias */
        break;
    case GQ_CLX_K_GEMM:
        ok = s_claim_gemm(c, st->node, in, nin);
        break;
    case GQ_CLX_K_GEMM_ACT: /* A, B, C (or absent), epilogue */
        ok = s_claim_gemm(c, st->node, in, nin < 3 ? nin : 3) &&
             s_epilogue(c, nin > 3 ? in[3] : NULL);
        break;
    case GQ_CLX_K_CONV:
    case GQ_CLX_K_CONV_RELU:
        ok = s_claim_conv(c, st->node, in, nin < 3 ? nin : 3);
        c->v[40] = e->kind == GQ_CLX_K_CONV_RELU;
        break;
    case GQ_CLX_K_CONV_ACT: /* X, W, B (or absent), epilogue */
        ok = s_claim_conv(c, st->node, in, nin < 3 ? nin : 3) &&
             s_epilogue(c, nin > 3 ? in[3] : NULL);
        break;
    case GQ_CLX_K_MAXPOOL:
    case GQ_CLX_K_AVGPOOL:
        ok = s_claim_pool(c, p, st, in, nin);
        break;
    case GQ_CLX_K_GMAXPOOL:
    case GQ_CLX_K_GAVGPOOL:
        ok = s_claim_gpool(c, in, nin);
        break;
    case GQ_CLX_K_BATCHNORM:
        ok = s_claim_bn(c, p, st, in, nin);
        break;
    case GQ_CLX_K_SOFTMAX:
    case GQ_CLX_K_LOGSOFTMAX:
        ok = s_claim_softmax(c, st->node, p->opset, in, nin);
        break;
    case GQ_CLX_K_TRANSPOSE:
        ok = s_claim_transpose(c, st->node, in, nin);
        break;
    default:
        ok = s_claim_alias(c, e->kind, p, st, in, nin);
        break;
    }
    if (!ok)
        return false;
    for (int o = 0; o < nout; o++)
        out_desc[o] = c->od[o < 2 ? o : 0];
    return true;
}
