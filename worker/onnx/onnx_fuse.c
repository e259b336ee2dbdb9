/* The plan's fusion pass: a Conv whose output only a BatchNormalization with constant
 * parameters reads takes the normalisation into its weights, and a Relu that alone reads
 * the result into its epilogue (gq_onnx_kernel_conv_relu). */
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

/* Conv -> BatchNormalization (constant parameters) -> Relu, each value read by the next
 * alone: the normalisation folds into the conv's weights, the Relu into its epilogue. */
gq_status gq_onnx_plan_fuse(gq_onnx_plan_t *p)
{
    for (int k = 0; k < p->nsteps; k++) {
        gq_onnx_step_t *cv = &p->steps[k];
        int j = -1;
        bool done = true;
        if (strcmp(cv->node->op_type, "Conv") || cv->k == &gq_onnx_kernel_conv_relu ||
            cv->nout != 1 || cv->nin < 2 || cv->out[0] < 0)
            continue;
        if (s_readers(p, cv->out[0], &j) == 1 && j > k && p->steps[j].in[0] == cv->out[0]) {
            gq_status rc = s_fold_bn(p, k, j, &done);
            if (rc)
                return rc;
            if (done)
                s_drop_step(p, j);
        }
        if (s_readers(p, cv->out[0], &j) == 1 && j > k && p->steps[j].in[0] == cv->out[0] &&
            !strcmp(p->steps[j].node->op_type, "Relu") && p->steps[j].out[0] >= 0) {
            cv->k = &gq_onnx_kernel_conv_relu;
            cv->out[0] = p->steps[j].out[0];
            s_drop_step(p, j);
        }
    }
    return GQ_OK;
}
