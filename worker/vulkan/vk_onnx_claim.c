/* Which ONNX steps the Vulkan accelerator runs (f32 only): the step's op type and kernel at
 * plan time; attributes, dtypes and shapes when the step runs, with their output shapes and
 * the geometry its dispatches need (vk_onnx_ops.c), by the rules it shares with the OpenCL
 * accelerator (worker/onnx/onnx_claim.c). Anything else is declined and runs on the CPU: other
 * dtypes, 3-D convs and pools, MaxPool's Indices, training modes, Erf, MatMul batch dims that
 * broadcast both ways, empty tensors and tensors of 2^31 elements or more, a shape, axes or Clip
 * bound that only the device holds, and any fused kernel not listed here (Conv+Act, Conv+Relu,
 * Gemm+Act, MatMul+Add and Conv+MaxPool are, by name, with the constants onnx_int.h describes). */
#include <string.h>

#include "util.h"
#include "vk_onnx.h"

const gq_vkx_entry_t gq_vkx_table[] = {
    {"Relu", GQ_VKX_K_UNARY, GQ_VKX_UN_RELU},
    {"Sigmoid", GQ_VKX_K_UNARY, GQ_VKX_UN_SIGMOID},
    {"Tanh", GQ_VKX_K_UNARY, GQ_VKX_UN_TANH},
    {"LeakyRelu", GQ_VKX_K_UNARY, GQ_VKX_UN_LEAKY},
    {"Elu", GQ_VKX_K_UNARY, GQ_VKX_UN_ELU},
    {"Selu", GQ_VKX_K_UNARY, GQ_VKX_UN_SELU},
    {"HardSigmoid", GQ_VKX_K_UNARY, GQ_VKX_UN_HARDSIGMOID},
    {"HardSwish", GQ_VKX_K_UNARY, GQ_VKX_UN_HARDSWISH},
    {"Softplus", GQ_VKX_K_UNARY, GQ_VKX_UN_SOFTPLUS},
    {"Softsign", GQ_VKX_K_UNARY, GQ_VKX_UN_SOFTSIGN},
    {"Clip", GQ_VKX_K_UNARY, GQ_VKX_UN_CLIP},
    {"Exp", GQ_VKX_K_UNARY, GQ_VKX_UN_EXP},
    {"Log", GQ_VKX_K_UNARY, GQ_VKX_UN_LOG},
    {"Sqrt", GQ_VKX_K_UNARY, GQ_VKX_UN_SQRT},
    {"Abs", GQ_VKX_K_UNARY, GQ_VKX_UN_ABS},
    {"Neg", GQ_VKX_K_UNARY, GQ_VKX_UN_NEG},
    {"Reciprocal", GQ_VKX_K_UNARY, GQ_VKX_UN_RECIP},
    {"Floor", GQ_VKX_K_UNARY, GQ_VKX_UN_FLOOR},
    {"Ceil", GQ_VKX_K_UNARY, GQ_VKX_UN_CEIL},
    {"Add", GQ_VKX_K_BINARY, 0},
    {"Sub", GQ_VKX_K_BINARY, 1},
    {"Mul", GQ_VKX_K_BINARY, 2},
    {"Div", GQ_VKX_K_BINARY, 3},
    {"MatMul", GQ_VKX_K_MATMUL, 0},
    {"MatMul+Add", GQ_VKX_K_MATMUL_ADD, 0},
    {"Gemm", GQ_VKX_K_GEMM, 0},
    {"Gemm+Act", GQ_VKX_K_GEMM_ACT, 0},
    {"Conv", GQ_VKX_K_CONV, 0},
    {"Conv+Relu", GQ_VKX_K_CONV, 1},
    {"Conv+Act", GQ_VKX_K_CONV_ACT, 0},
    {"Conv+MaxPool", GQ_VKX_K_CONV_POOL, 0},
    {"MaxPool", GQ_VKX_K_MAXPOOL, 0},
    {"AveragePool", GQ_VKX_K_AVGPOOL, 0},
    {"GlobalMaxPool", GQ_VKX_K_GMAXPOOL, 0},
    {"GlobalAveragePool", GQ_VKX_K_GAVGPOOL, 0},
    {"BatchNormalization", GQ_VKX_K_BATCHNORM, 0},
    {"Softmax", GQ_VKX_K_SOFTMAX, 0},
    {"LogSoftmax", GQ_VKX_K_LOGSOFTMAX, 0},
    {"Transpose", GQ_VKX_K_TRANSPOSE, 0},
    {"Reshape", GQ_VKX_K_ALIAS, GQ_ONNX_CLAIM_RESHAPE},
    {"Flatten", GQ_VKX_K_ALIAS, GQ_ONNX_CLAIM_FLATTEN},
    {"Squeeze", GQ_VKX_K_ALIAS, GQ_ONNX_CLAIM_SQUEEZE},
    {"Unsqueeze", GQ_VKX_K_ALIAS, GQ_ONNX_CLAIM_UNSQUEEZE},
    {"Identity", GQ_VKX_K_ALIAS, GQ_ONNX_CLAIM_IDENTITY},
    {"Dropout", GQ_VKX_K_ALIAS, GQ_ONNX_CLAIM_DROPOUT},
};
#define S_NTABLE ((int)(sizeof gq_vkx_table / sizeof gq_vkx_table[0]))

int gq_vkx_step_op(const gq_onnx_plan_t *p, int k)
{
    const char *as = gq_onnx_claim_kernel_name(p, k);
    for (int i = 0; as && i < S_NTABLE; i++)
        if (!strcmp(gq_vkx_table[i].op, as))
            return i;
    return -1;
}

/* The epilogue constant of a fused step (NULL: none) into act, acta, actb. */
static bool s_epilogue(gq_vkx_claim_t *c, const gq_onnx_val_t *v)
{
    gq_onnx_act_t f;
    if (!gq_onnx_claim_epilogue(v, &f))
        return false;
    c->act = (int)f.k, c->acta = f.a, c->actb = f.b;
    return true;
}

/* The shared plan in the shaders' 32-bit layout. */
static void s_bplan(gq_vkx_bplan_t *bp, const gq_onnx_claim_bplan_t *s)
{
    bp->nd = (uint32_t)s->nd;
    for (int i = 0; i < 8; i++)
        bp->sh[i] = (uint32_t)s->sh[i], bp->s0[i] = (uint32_t)s->s0[i],
        bp->s1[i] = (uint32_t)s->s1[i];
}

static bool s_claim_binary(gq_vkx_claim_t *c, int opset, gq_onnx_val_t *const *in, int nin)
{
    gq_onnx_claim_bplan_t bp;
    if (!gq_onnx_claim_binary(opset, in, nin, &c->flat, &bp, &c->od))
        return false;
    s_bplan(&c->bp, &bp);
    return true;
}

static bool s_claim_transpose(gq_vkx_claim_t *c, const Onnx__NodeProto *n, gq_onnx_val_t *const *in,
                              int nin)
{
    gq_onnx_claim_bplan_t bp;
    if (!gq_onnx_claim_transpose(n, in, nin, &bp, &c->od))
        return false;
    s_bplan(&c->bp, &bp);
    return true;
}

/* MatMul: A, B as onnx_gemm.comp's batched GEMM. */
static bool s_claim_matmul(gq_vkx_claim_t *c, gq_onnx_val_t *const *in, int nin)
{
    gq_onnx_claim_mm_t mm;
    if (nin < 2 || !gq_onnx_claim_matmul(in[0], in[1], &mm, &c->od))
        return false;
    c->g = (gq_vkx_gemm_t){.m = mm.m,
                           .n = mm.n,
                           .k = mm.k,
                           .nb = mm.nb,
                           .ars = mm.k,
                           .acs = 1,
                           .brs = mm.n,
                           .bcs = 1,
                           .ldc = mm.n,
                           .amod = mm.amod,
                           .abs_ = mm.abs_,
                           .bmod = mm.bmod,
                           .bbs = mm.bbs,
                           .cbs = mm.m * mm.n,
                           .biasmod = 1,
                           .alpha = 1.0f,
                           .beta = 1.0f};
    return true;
}

/* Gemm: A and B 2-D (transposed by their strides), C (optional) broadcasting to [M, N]. */
static bool s_claim_gemm(gq_vkx_claim_t *c, const Onnx__NodeProto *n, gq_onnx_val_t *const *in,
                         int nin)
{
    gq_onnx_claim_gemm_t g;
    if (!gq_onnx_claim_gemm(n, in, nin, &g, &c->od))
        return false;
    c->g = (gq_vkx_gemm_t){.m = g.m,
                           .n = g.n,
                           .k = g.k,
                           .nb = 1,
                           .ars = g.ta ? 1 : g.k,
                           .acs = g.ta ? g.m : 1,
                           .brs = g.tb ? 1 : g.n,
                           .bcs = g.tb ? g.k : 1,
                           .ldc = g.n,
                           .amod = 1,
                           .bmod = 1,
                           .bsm = g.bsm,
                           .bsn = g.bsn,
                           .biasmod = 1,
                           .bias = g.bias,
                           .alpha = g.alpha,
                           .beta = g.beta};
    return true;
}

/* Conv 1-D / 2-D: X, W, B (or absent). */
static bool s_claim_conv(gq_vkx_claim_t *c, const Onnx__NodeProto *n, gq_onnx_val_t *const *in,
                         int nin)
{
    gq_onnx_claim_conv_t cv;
    if (!gq_onnx_claim_conv(n, in, nin, &cv, &c->cod))
        return false;
    c->N = cv.N, c->C = cv.C, c->M = cv.M, c->G = cv.G;
    c->conv_bias = cv.bias, c->w = cv.w, c->od = c->cod;
    return true;
}

bool gq_vkx_claim(gq_vkx_plan_t *ps, int k, gq_onnx_val_t *const *in, int nin, gq_tdesc_t *out_desc,
                  int nout)
{
    const gq_onnx_plan_t *p = ps->p;
    const gq_onnx_step_t *st = &p->steps[k];
    const gq_vkx_entry_t *e = &gq_vkx_table[ps->stepop[k]];
    gq_vkx_claim_t *c = &ps->cur;
    float prm[2];
    bool ok = false;
    memset(c, 0, sizeof *c);
    c->op = ps->stepop[k];
    if (nout < 1)
        return false;
    switch (e->kind) {
    case GQ_VKX_K_UNARY:
        ok = gq_onnx_claim_unary(st, p->opset, in, nin, prm, &c->od);
        c->p0 = prm[0], c->p1 = prm[1];
        break;
    case GQ_VKX_K_BINARY:
        ok = s_claim_binary(c, p->opset, in, nin);
        break;
    case GQ_VKX_K_MATMUL:
        ok = nin == 2 && s_claim_matmul(c, in, nin);
        break;
    case GQ_VKX_K_MATMUL_ADD: /* A, B, bias [N] (or absent), epilogue */
        ok = s_claim_matmul(c, in, nin) && in[1]->desc.ndim >= 2 &&
             s_epilogue(c, nin > 3 ? in[3] : NULL);
        c->g.bias = nin > 2 && in[2];
        if (ok && c->g.bias)
            ok =
                gq_onnx_claim_f32(in[2]) && in[2]->desc.ndim == 1 && in[2]->desc.shape[0] == c->g.n;
        c->g.bsn = 1;
        break;
    case GQ_VKX_K_GEMM:
        ok = s_claim_gemm(c, st->node, in, nin);
        break;
    case GQ_VKX_K_GEMM_ACT: /* A, B, C (or absent), epilogue */
        ok = s_claim_gemm(c, st->node, in, nin < 3 ? nin : 3) &&
             s_epilogue(c, nin > 3 ? in[3] : NULL);
        break;
    case GQ_VKX_K_CONV: /* code 1: Conv+Relu */
        ok = s_claim_conv(c, st->node, in, nin < 3 ? nin : 3);
        c->act = e->code;
        break;
    case GQ_VKX_K_CONV_ACT: /* X, W, B (or absent), epilogue */
        ok = s_claim_conv(c, st->node, in, nin < 3 ? nin : 3) &&
             s_epilogue(c, nin > 3 ? in[3] : NULL);
        break;
    case GQ_VKX_K_CONV_POOL: /* X, W, B (or absent), epilogue (or absent), pool */
        ok = s_claim_conv(c, st->node, in, nin < 3 ? nin : 3) &&
             s_epilogue(c, nin > 3 ? in[3] : NULL) &&
             gq_onnx_claim_convpool(nin > 4 ? in[4] : NULL, &c->w, &c->pool, &c->od);
        break;
    case GQ_VKX_K_MAXPOOL:
    case GQ_VKX_K_AVGPOOL:
        ok = gq_onnx_claim_pool(p, st, in, nin, &c->w, &c->inc_pad, &c->od);
        break;
    case GQ_VKX_K_GMAXPOOL:
    case GQ_VKX_K_GAVGPOOL:
        ok = gq_onnx_claim_gpool(in, nin, 3, &c->rows, &c->len, &c->od);
        break;
    case GQ_VKX_K_BATCHNORM:
        ok = gq_onnx_claim_bn(p, st, in, nin, &c->len, &c->p0, &c->od);
        c->inner = ok ? in[0]->desc.shape[1] : 0;
        break;
    case GQ_VKX_K_SOFTMAX:
    case GQ_VKX_K_LOGSOFTMAX:
        ok = gq_onnx_claim_softmax(st->node, p->opset, in, nin, &c->rows, &c->len, &c->inner,
                                   &c->od);
        break;
    case GQ_VKX_K_TRANSPOSE:
        ok = s_claim_transpose(c, st->node, in, nin);
        break;
    case GQ_VKX_K_ALIAS:
        ok = gq_onnx_claim_alias((gq_onnx_claim_alias_t)e->code, p, st, in, nin, &c->od);
        break;
    }
    if (!ok)
        return false;
    for (int o = 0; o < nout; o++)
        out_desc[o] = c->od;
    return true;
}
