/* Which ONNX steps the OpenCL accelerator runs (f32 only): the step's op type and kernel at
 * plan time; attributes, dtypes and shapes when the step runs, with their output shapes and
 * the geometry of the launch (cl_onnx_ops.c), by the rules it shares with the Vulkan
 * accelerator (worker/onnx/onnx_claim.c). Anything else is declined and runs on the CPU: other
 * dtypes, 3-D convs and pools, MaxPool's Indices, training modes, MatMul batch dims that
 * broadcast both ways, empty tensors and tensors of 2^31 elements or more, a shape or axes
 * input that only the device holds, and any kernel the plan's fusion put in that is not listed
 * here. Fused kernels are known by their names (Conv+Relu, and Conv+Act, Gemm+Act, MatMul+Add
 * and Conv+MaxPool with the constants onnx_int.h describes); the epilogue runs in the GEMM's
 * store, a fused pool on the conv's output in a run buffer.
 *
 * gq_clx_claim_t.v by op: MatMul: M, N, K, batches, amod, abs, bmod, bbs; Gemm: M, N, K,
 * transA, transB, has bias, bsm, bsn (f: alpha, beta); convs: N, C, M, G, has bias (the window
 * in w); pools: count_include_pad (w); global pools: planes, size; BatchNormalization: size,
 * C (f[0]: epsilon); softmaxes: rows, len, inner; binary ops: v[25] flat (bp); unary ops: f[0],
 * f[1]. Fused steps: v[40] the epilogue's code, f[2], f[3] its parameters; MatMul+Add: v[41]
 * has the bias. */
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
    {"Conv+MaxPool", GQ_CLX_K_CONV_POOL, 0},
    {"Gemm+Act", GQ_CLX_K_GEMM_ACT, 0},
    {"MatMul+Add", GQ_CLX_K_MATMUL_ADD, 0},
    {"MaxPool", GQ_CLX_K_MAXPOOL, 0},
    {"AveragePool", GQ_CLX_K_AVGPOOL, 0},
    {"GlobalMaxPool", GQ_CLX_K_GMAXPOOL, 0},
    {"GlobalAveragePool", GQ_CLX_K_GAVGPOOL, 0},
    {"BatchNormalization", GQ_CLX_K_BATCHNORM, 0},
    {"Softmax", GQ_CLX_K_SOFTMAX, 0},
    {"LogSoftmax", GQ_CLX_K_LOGSOFTMAX, 0},
    {"Reshape", GQ_CLX_K_RESHAPE, GQ_ONNX_CLAIM_RESHAPE},
    {"Flatten", GQ_CLX_K_FLATTEN, GQ_ONNX_CLAIM_FLATTEN},
    {"Squeeze", GQ_CLX_K_SQUEEZE, GQ_ONNX_CLAIM_SQUEEZE},
    {"Unsqueeze", GQ_CLX_K_UNSQUEEZE, GQ_ONNX_CLAIM_UNSQUEEZE},
    {"Identity", GQ_CLX_K_IDENTITY, GQ_ONNX_CLAIM_IDENTITY},
    {"Dropout", GQ_CLX_K_DROPOUT, GQ_ONNX_CLAIM_DROPOUT},
    {"Transpose", GQ_CLX_K_TRANSPOSE, 0},
};
#define S_NTABLE ((int)(sizeof gq_clx_table / sizeof gq_clx_table[0]))

int gq_clx_step_op(const gq_onnx_plan_t *p, int k)
{
    const char *as = gq_onnx_claim_kernel_name(p, k);
    for (int i = 0; as && i < S_NTABLE; i++)
        if (!strcmp(gq_clx_table[i].op, as))
            return i;
    return -1;
}

/* The epilogue of a fused step (its constant f32[3], host-readable; NULL: none) into v[40]
 * (the kernels' code), f[2], f[3]. */
static bool s_epilogue(gq_clx_claim_t *c, const gq_onnx_val_t *v)
{
    gq_onnx_act_t f;
    if (!gq_onnx_claim_epilogue(v, &f))
        return false;
    c->v[40] = f.k, c->f[2] = f.a, c->f[3] = f.b;
    return true;
}

static bool s_claim_matmul(gq_clx_claim_t *c, gq_onnx_val_t *const *in)
{
    gq_onnx_claim_mm_t mm;
    if (!gq_onnx_claim_matmul(in[0], in[1], &mm, &c->od[0]))
        return false;
    int64_t v[8] = {mm.m, mm.n, mm.k, mm.nb, mm.amod, mm.abs_, mm.bmod, mm.bbs};
    memcpy(c->v, v, sizeof v);
    return true;
}

static bool s_claim_gemm(gq_clx_claim_t *c, const Onnx__NodeProto *n, gq_onnx_val_t *const *in,
                         int nin)
{
    gq_onnx_claim_gemm_t g;
    if (!gq_onnx_claim_gemm(n, in, nin, &g, &c->od[0]))
        return false;
    int64_t v[8] = {g.m, g.n, g.k, g.ta, g.tb, g.bias, g.bsm, g.bsn};
    memcpy(c->v, v, sizeof v);
    c->f[0] = g.alpha, c->f[1] = g.beta;
    return true;
}

static bool s_claim_conv(gq_clx_claim_t *c, const Onnx__NodeProto *n, gq_onnx_val_t *const *in,
                         int nin)
{
    gq_onnx_claim_conv_t cv;
    if (!gq_onnx_claim_conv(n, in, nin, &cv, &c->od[0]))
        return false;
    int64_t v[5] = {cv.N, cv.C, cv.M, cv.G, cv.bias};
    memcpy(c->v, v, sizeof v);
    c->w = cv.w;
    return true;
}

bool gq_clx_claim(gq_clx_plan_t *ps, int k, gq_onnx_val_t *const *in, int nin, gq_tdesc_t *out_desc,
                  int nout)
{
    const gq_onnx_plan_t *p = ps->p;
    const gq_onnx_step_t *st = &p->steps[k];
    const gq_clx_entry_t *e = &gq_clx_table[ps->stepop[k]];
    gq_clx_claim_t *c = &ps->cur;
    bool ok = false, flag = false;
    memset(c, 0, sizeof *c);
    c->op = ps->stepop[k];
    if (nout < 1)
        return false;
    switch (e->kind) {
    case GQ_CLX_K_UNARY:
        ok = gq_onnx_claim_unary(st, p->opset, in, nin, c->f, &c->od[0]);
        break;
    case GQ_CLX_K_BINARY:
        ok = gq_onnx_claim_binary(p->opset, in, nin, &flag, &c->bp, &c->od[0]);
        c->v[25] = flag;
        break;
    case GQ_CLX_K_MATMUL:
        ok = nin == 2 && s_claim_matmul(c, in);
        break;
    case GQ_CLX_K_MATMUL_ADD: /* A, B, bias [N] along the last dim (or absent), epilogue */
        ok = nin >= 2 && s_claim_matmul(c, in) && in[1]->desc.ndim >= 2 &&
             (nin < 3 || !in[2] ||
              (gq_onnx_claim_f32(in[2]) && in[2]->desc.ndim == 1 &&
               in[2]->desc.shape[0] == c->v[1])) &&
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
    case GQ_CLX_K_CONV_POOL: /* X, W, B (or absent), epilogue (or absent), pool */
        ok = s_claim_conv(c, st->node, in, nin < 3 ? nin : 3) &&
             s_epilogue(c, nin > 3 ? in[3] : NULL) &&
             gq_onnx_claim_convpool(nin > 4 ? in[4] : NULL, &c->w, &c->pool, &c->od[0]);
        break;
    case GQ_CLX_K_MAXPOOL:
    case GQ_CLX_K_AVGPOOL:
        ok = gq_onnx_claim_pool(p, st, in, nin, &c->w, &flag, &c->od[0]);
        c->v[0] = flag;
        break;
    case GQ_CLX_K_GMAXPOOL:
    case GQ_CLX_K_GAVGPOOL:
        ok = gq_onnx_claim_gpool(in, nin, 2, &c->v[0], &c->v[1], &c->od[0]);
        break;
    case GQ_CLX_K_BATCHNORM:
        ok = gq_onnx_claim_bn(p, st, in, nin, &c->v[0], &c->f[0], &c->od[0]);
        c->v[1] = ok ? in[0]->desc.shape[1] : 0;
        break;
    case GQ_CLX_K_SOFTMAX:
    case GQ_CLX_K_LOGSOFTMAX:
        ok = gq_onnx_claim_softmax(st->node, p->opset, in, nin, &c->v[0], &c->v[1], &c->v[2],
                                   &c->od[0]);
        break;
    case GQ_CLX_K_TRANSPOSE:
        ok = gq_onnx_claim_transpose(st->node, in, nin, &c->bp, &c->od[0]);
        break;
    default: /* reshape-like: the table's kid says which */
        ok = gq_onnx_claim_alias((gq_onnx_claim_alias_t)e->kid, p, st, in, nin, &c->od[0]);
        break;
    }
    if (!ok)
        return false;
    for (int o = 0; o < nout; o++)
        out_desc[o] = c->od[o < 2 ? o : 0];
    return true;
}
