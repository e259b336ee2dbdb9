/* The plan's fusion pass, for the obvious pairs (each fused value read by the next step
 * alone, parameters constant):
 * - Conv -> BatchNormalization: the normalisation folds into the conv's weights and bias;
 *   Conv -> Add of a per-channel constant: into its bias;
 * - MatMul -> Add of a constant vector along the last dim: the bias of MatMul+Add;
 * - Conv, Gemm, MatMul(+Add) -> Relu, LeakyRelu, Clip, Sigmoid, Tanh, HardSigmoid: the
 *   activation runs in the kernel's epilogue (gq_onnx_kernel_conv_act, _gemm_act,
 *   _matmul_add), on output still in cache instead of another pass over memory;
 * - Conv(+Act) -> MaxPool: one step that pools each band of conv rows from cache
 *   (gq_onnx_kernel_conv_maxpool), so the conv's output never goes to memory. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_plan.h"
#include "optable.h"
#include "util.h"

/* The constant value of slot sl (an initializer or a folded constant); NULL otherwise. */
static const gq_onnx_val_t *s_const(const gq_onnx_plan_t *p, int sl, gq_onnx_val_t *tmp)
{
    for (int i = 0; sl >= 0 && i < p->ninit; i++)
        if (p->init_slot[i] == sl) {
            if (p->sub_init)
                return &p->sub_init[i];
            const gq_onnx_tensor_t *t = gq_onnx_model_tensor(p->model, i);
            memset(tmp, 0, sizeof *tmp);
            tmp->desc = t->desc, tmp->data = (void *)t->data, tmp->nbytes = t->nbytes;
            return tmp;
        }
    for (int i = 0; sl >= 0 && i < p->nfold; i++)
        if (p->fold_slot[i] == sl)
            return &p->fold[i];
    return NULL;
}

/* How many readers slot sl has (step inputs, graph outputs count as one each). */
static int s_readers(const gq_onnx_plan_t *p, int sl, int *reader)
{
    int n = 0;
    for (int k = 0; k < p->nsteps; k++)
        for (int i = 0; i < p->steps[k].nin + p->steps[k].nimplicit; i++)
            if (p->steps[k].in[i] == sl)
                n++, *reader = k;
    for (int o = 0; o < p->noutputs; o++)
        n += p->outputs[o] == sl;
    return n;
}

/* Adds a constant the plan owns (data taken over) under a fresh slot; -1 when out of
 * memory (data freed). */
static int s_add_fold(gq_onnx_plan_t *p, const char *base, const gq_tdesc_t *d, void *data)
{
    gq_onnx_val_t *nf = realloc(p->fold, (size_t)(p->nfold + 1) * sizeof *nf);
    if (nf)
        p->fold = nf;
    int *ns = nf ? realloc(p->fold_slot, (size_t)(p->nfold + 1) * sizeof *ns) : NULL;
    if (ns)
        p->fold_slot = ns;
    char **nn = ns ? realloc(p->fold_name, (size_t)(p->nfold + 1) * sizeof *nn) : NULL;
    if (nn)
        p->fold_name = nn;
    size_t len = strlen(base) + 32;
    char *name = nn ? malloc(len) : NULL;
    int sl = -1;
    if (name) {
        snprintf(name, len, "%s/gq-fold-%d", base, p->nfold); /* ONNX names cannot hold it */
        sl = gq_onnx_plan_slot(p, name, true);
    }
    if (sl < 0) {
        free(name);
        free(data);
        return -1;
    }
    p->fold[p->nfold] = (gq_onnx_val_t){.desc = *d, .data = data, .nbytes = gq_tdesc_nbytes(d)};
    p->fold_slot[p->nfold] = sl;
    p->fold_name[p->nfold++] = name;
    return sl;
}

/* Whether BatchNormalization step bn (inference) can fold into a conv with M filters. */
static bool s_bn_foldable(const gq_onnx_plan_t *p, const gq_onnx_step_t *bn, int64_t M,
                          const gq_onnx_val_t **prm, gq_onnx_val_t *tmp)
{
    if (strcmp(bn->node->op_type, "BatchNormalization") || bn->nin != 5 ||
        gq_onnx_attr_int(bn->node, "training_mode", 0) || p->opset < 9)
        return false;
    for (int o = 1; o < bn->nout; o++)
        if (bn->out[o] >= 0)
            return false;
    for (int i = 0; i < 4; i++) {
        prm[i] = s_const(p, bn->in[i + 1], &tmp[i]);
        if (!prm[i] || prm[i]->desc.dtype != GQ_F32 || prm[i]->desc.ndim != 1 ||
            prm[i]->desc.shape[0] != M)
            return false;
    }
    return true;
}

/* Folds BatchNormalization step j into Conv step k: W' = W a, B' = (B - mean) a + beta with
 * a = scale / sqrt(var + eps), computed once here instead of a pass over the activations
 * per run. */
static gq_status s_fold_bn(gq_onnx_plan_t *p, int k, int j, bool *done)
{
    gq_onnx_step_t *cv = &p->steps[k], *bn = &p->steps[j];
    gq_onnx_val_t t0, t1, tb[4];
    const gq_onnx_val_t *w = s_const(p, cv->in[1], &t0), *prm[4];
    const gq_onnx_val_t *b = cv->nin > 2 ? s_const(p, cv->in[2], &t1) : NULL;
    *done = false;
    if (!w || w->desc.dtype != GQ_F32 || w->desc.ndim < 3 ||
        (cv->nin > 2 && cv->in[2] >= 0 && !b) ||
        (b && (b->desc.dtype != GQ_F32 || b->desc.ndim != 1)) ||
        !s_bn_foldable(p, bn, w->desc.shape[0], prm, tb))
        return GQ_OK;
    int64_t M = w->desc.shape[0], per = M ? gq_tdesc_numel(&w->desc) / M : 0;
    if (b && b->desc.shape[0] != M)
        return GQ_OK;
    float *nw = gq_aligned_alloc(64, w->nbytes ? w->nbytes : 64),
          *nb = gq_aligned_alloc(64, (size_t)M * 4 + 64);
    int *ni = cv->nin < 3 ? realloc(cv->in, 3 * sizeof *ni) : cv->in;
    if (!nw || !nb || !ni) {
        free(nw), free(nb);
        return GQ_ENOMEM;
    }
    cv->in = ni;
    double eps = gq_onnx_attr_float(bn->node, "epsilon", 1e-5f);
    const float *sc = prm[0]->data, *be = prm[1]->data, *mu = prm[2]->data, *var = prm[3]->data;
    for (int64_t m = 0; m < M; m++) {
        double a = sc[m] / sqrt((double)var[m] + eps);
        for (int64_t i = 0; i < per; i++)
            nw[m * per + i] = (float)(((const float *)w->data)[m * per + i] * a);
        nb[m] = (float)(((b ? ((const float *)b->data)[m] : 0.0) - mu[m]) * a + be[m]);
    }
    gq_tdesc_t bd = {.dtype = GQ_F32, .ndim = 1, .shape = {M}};
    int ws = s_add_fold(p, p->names[cv->in[1]], &w->desc, nw);
    int bs = ws < 0 ? (free(nb), -1) : s_add_fold(p, p->names[cv->in[1]], &bd, nb);
    if (bs < 0)
        return GQ_ENOMEM;
    cv->in[1] = ws, cv->in[2] = bs, cv->nin = 3;
    cv->out[0] = bn->out[0];
    *done = true;
    return GQ_OK;
}

/* Removes step j (its arrays freed). */
static void s_drop_step(gq_onnx_plan_t *p, int j)
{
    free(p->steps[j].in), free(p->steps[j].out);
    memmove(&p->steps[j], &p->steps[j + 1], (size_t)(p->nsteps - j - 1) * sizeof *p->steps);
    p->nsteps--;
}

/* The one step reading step k's single output as an input (graph outputs count as
 * readers), when it comes after k; -1 otherwise. */
static int s_sole_reader(const gq_onnx_plan_t *p, int k)
{
    const gq_onnx_step_t *st = &p->steps[k];
    int j = -1;
    if (st->nout != 1 || st->out[0] < 0 || s_readers(p, st->out[0], &j) != 1 || j <= k ||
        p->steps[j].nimplicit || p->steps[j].nout != 1 || p->steps[j].out[0] < 0)
        return -1;
    return j;
}

/* The f32 scalar of constant slot sl; false when it is not one. */
static bool s_const_scalar(const gq_onnx_plan_t *p, int sl, float *v)
{
    gq_onnx_val_t tmp;
    const gq_onnx_val_t *c = s_const(p, sl, &tmp);
    if (!c || c->desc.dtype != GQ_F32 || gq_tdesc_numel(&c->desc) != 1)
        return false;
    *v = *(const float *)c->data;
    return true;
}

/* The activation step st computes on its input 0, when it is one an epilogue runs. */
static bool s_act_of(const gq_onnx_plan_t *p, const gq_onnx_step_t *st, gq_onnx_act_t *f)
{
    const Onnx__NodeProto *n = st->node;
    const char *op = n->op_type;
    f->a = f->b = 0;
    if (st->nin < 1 || st->branch[0])
        return false;
    if (!strcmp(op, "Relu"))
        f->k = GQ_ONNX_ACT_RELU;
    else if (!strcmp(op, "LeakyRelu"))
        f->k = GQ_ONNX_ACT_LEAKYRELU, f->a = gq_onnx_attr_float(n, "alpha", 0.01f);
    else if (!strcmp(op, "Sigmoid"))
        f->k = GQ_ONNX_ACT_SIGMOID;
    else if (!strcmp(op, "Tanh"))
        f->k = GQ_ONNX_ACT_TANH;
    else if (!strcmp(op, "HardSigmoid"))
        f->k = GQ_ONNX_ACT_HARDSIGMOID, f->a = gq_onnx_attr_float(n, "alpha", 0.2f),
        f->b = gq_onnx_attr_float(n, "beta", 0.5f);
    else if (!strcmp(op, "Clip") && p->opset < 11)
        f->k = GQ_ONNX_ACT_CLIP, f->a = gq_onnx_attr_float(n, "min", -INFINITY),
        f->b = gq_onnx_attr_float(n, "max", INFINITY);
    else if (!strcmp(op, "Clip")) { /* bounds as optional constant inputs */
        f->k = GQ_ONNX_ACT_CLIP, f->a = -INFINITY, f->b = INFINITY;
        if ((st->nin > 1 && st->in[1] >= 0 && !s_const_scalar(p, st->in[1], &f->a)) ||
            (st->nin > 2 && st->in[2] >= 0 && !s_const_scalar(p, st->in[2], &f->b)))
            return false;
    } else
        return false;
    return true;
}

/* Gives step k (Conv, Gemm or MatMul+Add) the epilogue f and the output of step j, which
 * is dropped: inputs become [x, w, bias or -1, epilogue]. */
static gq_status s_fuse_act(gq_onnx_plan_t *p, int k, int j, const gq_onnx_act_t *f,
                            const gq_onnx_kernel_t *kern)
{
    gq_onnx_step_t *st = &p->steps[k];
    float *e = gq_aligned_alloc(64, 64);
    int *ni = realloc(st->in, 4 * sizeof *ni);
    if (!e || !ni) {
        free(e);
        return GQ_ENOMEM;
    }
    st->in = ni;
    for (int i = st->nin; i < 3; i++)
        st->in[i] = -1;
    e[0] = (float)f->k, e[1] = f->a, e[2] = f->b;
    gq_tdesc_t ed = {.dtype = GQ_F32, .ndim = 1, .shape = {3}};
    int es = s_add_fold(p, p->names[st->out[0]], &ed, e);
    if (es < 0)
        return GQ_ENOMEM;
    st->in[3] = es, st->nin = 4;
    st->k = kern;
    st->out[0] = p->steps[j].out[0];
    s_drop_step(p, j);
    return GQ_OK;
}

/* Conv step k -> Add step j of a constant [M] per channel (shape [M, 1, ...] or with
 * leading 1s, right-aligned to the conv output of rank wrank): folded into the bias. */
static gq_status s_fold_add_conv(gq_onnx_plan_t *p, int k, int j, bool *done)
{
    gq_onnx_step_t *cv = &p->steps[k], *ad = &p->steps[j];
    gq_onnx_val_t t0, t1, t2;
    *done = false;
    if (strcmp(ad->node->op_type, "Add") || ad->nin != 2)
        return GQ_OK;
    int other = ad->in[0] == cv->out[0] ? ad->in[1] : ad->in[0];
    const gq_onnx_val_t *w = s_const(p, cv->in[1], &t0), *c = s_const(p, other, &t1);
    const gq_onnx_val_t *b = cv->nin > 2 && cv->in[2] >= 0 ? s_const(p, cv->in[2], &t2) : NULL;
    if (!w || !c || w->desc.dtype != GQ_F32 || c->desc.dtype != GQ_F32 || w->desc.ndim < 3 ||
        c->desc.ndim > w->desc.ndim || (cv->nin > 2 && cv->in[2] >= 0 && !b) ||
        (b && (b->desc.dtype != GQ_F32 || b->desc.ndim != 1)))
        return GQ_OK;
    int64_t M = w->desc.shape[0];
    if (gq_tdesc_numel(&c->desc) != M || (b && b->desc.shape[0] != M))
        return GQ_OK;
    for (int d = 0; d < c->desc.ndim; d++) { /* dim d of c is dim d + off of the output */
        int od = d + w->desc.ndim - c->desc.ndim;
        if (c->desc.shape[d] != (od == 1 ? M : 1))
            return GQ_OK;
    }
    float *nb = gq_aligned_alloc(64, (size_t)M * 4 + 64);
    int *ni = cv->nin < 3 ? realloc(cv->in, 3 * sizeof *ni) : cv->in;
    if (!nb || !ni) {
        free(nb);
        return GQ_ENOMEM;
    }
    cv->in = ni;
    for (int64_t m = 0; m < M; m++)
        nb[m] = (b ? ((const float *)b->data)[m] : 0.0f) + ((const float *)c->data)[m];
    gq_tdesc_t bd = {.dtype = GQ_F32, .ndim = 1, .shape = {M}};
    int bs = s_add_fold(p, p->names[cv->in[1]], &bd, nb);
    if (bs < 0)
        return GQ_ENOMEM;
    cv->in[2] = bs, cv->nin = 3;
    cv->out[0] = ad->out[0];
    *done = true;
    return GQ_OK;
}

/* MatMul step k -> Add step j of a constant f32 [N], N the last dim of a constant B of
 * rank >= 2 (so the sum has the product's shape): MatMul+Add, inputs [A, B, bias, -1]. */
static gq_status s_fuse_matmul_add(gq_onnx_plan_t *p, int k, int j, bool *done)
{
    gq_onnx_step_t *mm = &p->steps[k], *ad = &p->steps[j];
    gq_onnx_val_t t0, t1;
    *done = false;
    if (strcmp(ad->node->op_type, "Add") || ad->nin != 2 || mm->nin != 2)
        return GQ_OK;
    int other = ad->in[0] == mm->out[0] ? ad->in[1] : ad->in[0];
    const gq_onnx_val_t *b = s_const(p, mm->in[1], &t0), *c = s_const(p, other, &t1);
    if (!b || !c || b->desc.dtype != GQ_F32 || c->desc.dtype != GQ_F32 || b->desc.ndim < 2 ||
        c->desc.ndim != 1 || c->desc.shape[0] != b->desc.shape[b->desc.ndim - 1])
        return GQ_OK;
    int *ni = realloc(mm->in, 4 * sizeof *ni);
    if (!ni)
        return GQ_ENOMEM;
    mm->in = ni;
    mm->in[2] = other, mm->in[3] = -1, mm->nin = 4;
    mm->k = &gq_onnx_kernel_matmul_add;
    mm->out[0] = ad->out[0];
    s_drop_step(p, j);
    *done = true;
    return GQ_OK;
}

/* Which fused kernel an activation after step st gives; NULL when none. A plain MatMul
 * only with a constant f32 B (the epilogue runs on f32; MatMul also takes integers). */
static const gq_onnx_kernel_t *s_act_kernel(const gq_onnx_plan_t *p, const gq_onnx_step_t *st)
{
    gq_onnx_val_t tmp;
    const gq_onnx_val_t *b = st->nin >= 2 ? s_const(p, st->in[1], &tmp) : NULL;
    if (!strcmp(st->k->op, "Conv"))
        return &gq_onnx_kernel_conv_act;
    if (!strcmp(st->k->op, "Gemm"))
        return &gq_onnx_kernel_gemm_act;
    if (st->k == &gq_onnx_kernel_matmul_add && st->in[3] < 0)
        return &gq_onnx_kernel_matmul_add;
    if (!strcmp(st->k->op, "MatMul") && st->nin == 2 && b && b->desc.dtype == GQ_F32)
        return &gq_onnx_kernel_matmul_add;
    return NULL;
}

/* Conv or Conv+Act step k -> MaxPool step j (1-D/2-D, pads explicit or VALID, no Indices):
 * Conv+MaxPool, inputs [x, w, bias or -1, epilogue or -1, pool], the pool as the i64[11]
 * onnx_int.h describes. The conv's output, read back by the pool alone, is never stored. */
static gq_status s_fuse_maxpool(gq_onnx_plan_t *p, int k, int j)
{
    gq_onnx_step_t *cv = &p->steps[k], *mp = &p->steps[j];
    gq_onnx_val_t tmp;
    const gq_onnx_val_t *w = s_const(p, cv->in[1], &tmp);
    const Onnx__NodeProto *n = mp->node;
    if (strcmp(n->op_type, "MaxPool") || mp->in[0] != cv->out[0] || !w || w->desc.dtype != GQ_F32 ||
        w->desc.ndim < 3 || w->desc.ndim > 4)
        return GQ_OK;
    int kd = w->desc.ndim - 2, nk, ns, nd, np;
    int64_t ks[4], st[4] = {1, 1}, dl[4] = {1, 1}, pads[8] = {0};
    char ap[32], e[8];
    if (gq_onnx_attr_ints(n, "kernel_shape", ks, 4, &nk, e, sizeof e) ||
        gq_onnx_attr_ints(n, "strides", st, 4, &ns, e, sizeof e) ||
        gq_onnx_attr_ints(n, "dilations", dl, 4, &nd, e, sizeof e) ||
        gq_onnx_attr_ints(n, "pads", pads, 8, &np, e, sizeof e) ||
        gq_onnx_attr_str(n, "auto_pad", "NOTSET", ap, sizeof ap, e, sizeof e) ||
        (strcmp(ap, "NOTSET") && strcmp(ap, "VALID")) || nk != kd || (ns >= 0 && ns != kd) ||
        (nd >= 0 && nd != kd) || (np >= 0 && np != 2 * kd))
        return GQ_OK;
    if (ns < 0)
        st[0] = st[1] = 1;
    if (nd < 0)
        dl[0] = dl[1] = 1;
    if (np < 0 || !strcmp(ap, "VALID"))
        memset(pads, 0, sizeof pads);
    int64_t *sp = gq_aligned_alloc(64, 11 * sizeof *sp);
    int *ni = realloc(cv->in, 5 * sizeof *ni);
    if (!sp || !ni) {
        free(sp);
        return GQ_ENOMEM;
    }
    cv->in = ni;
    int l = kd - 1; /* 1-D: one row */
    int64_t v[11] = {l ? ks[0] : 1,
                     ks[l],
                     l ? st[0] : 1,
                     st[l],
                     l ? dl[0] : 1,
                     dl[l],
                     l ? pads[0] : 0,
                     pads[l],
                     l ? pads[2] : 0,
                     pads[kd + l],
                     p->opset >= 10 && gq_onnx_attr_int(n, "ceil_mode", 0)};
    memcpy(sp, v, sizeof v);
    gq_tdesc_t sd = {.dtype = GQ_I64, .ndim = 1, .shape = {11}};
    int ss = s_add_fold(p, p->names[mp->out[0]], &sd, sp);
    if (ss < 0)
        return GQ_ENOMEM;
    for (int i = cv->nin; i < 4; i++)
        cv->in[i] = -1;
    cv->in[4] = ss, cv->nin = 5;
    cv->k = &gq_onnx_kernel_conv_maxpool;
    cv->out[0] = mp->out[0];
    s_drop_step(p, j);
    return GQ_OK;
}

gq_status gq_onnx_plan_fuse(gq_onnx_plan_t *p)
{
    for (int k = 0; k < p->nsteps; k++) {
        gq_onnx_step_t *st = &p->steps[k];
        const char *op = st->k->op;
        bool conv = !strcmp(op, "Conv"), done = true;
        gq_status rc = GQ_OK;
        int j;
        if (st->branch[0] || st->nout != 1 || st->out[0] < 0)
            continue;
        if (conv && st->nin >= 2 && (j = s_sole_reader(p, k)) >= 0 &&
            p->steps[j].in[0] == st->out[0]) {
            if ((rc = s_fold_bn(p, k, j, &done)))
                return rc;
            if (done)
                s_drop_step(p, j);
        }
        while (conv && st->nin >= 2 && (j = s_sole_reader(p, k)) >= 0) {
            if ((rc = s_fold_add_conv(p, k, j, &done)))
                return rc;
            if (!done)
                break;
            s_drop_step(p, j);
        }
        if (!strcmp(op, "MatMul") && (j = s_sole_reader(p, k)) >= 0 &&
            (rc = s_fuse_matmul_add(p, k, j, &done)))
            return rc;
        const gq_onnx_kernel_t *kern = s_act_kernel(p, st);
        gq_onnx_act_t f;
        if (kern && (j = s_sole_reader(p, k)) >= 0 && p->steps[j].in[0] == st->out[0] &&
            s_act_of(p, &p->steps[j], &f) && (rc = s_fuse_act(p, k, j, &f, kern)))
            return rc;
        if ((conv || st->k == &gq_onnx_kernel_conv_act) && st->nin >= 2 &&
            (j = s_sole_reader(p, k)) >= 0 && (rc = s_fuse_maxpool(p, k, j)))
            return rc;
    }
    return GQ_OK;
}
