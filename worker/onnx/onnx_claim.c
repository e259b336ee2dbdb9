/* The device-independent half of the accelerators' claims (onnx_claim.h): the CPU kernels'
 * attribute and shape rules, checked before a step goes to a device, and the geometry of its
 * launch. */
#include "onnx_claim.h"
#include "optable.h"

#include <math.h>
#include <string.h>

#define S_MAX GQ_ONNX_CLAIM_INT_MAX

const char *gq_onnx_claim_kernel_name(const gq_onnx_plan_t *p, int k)
{
    const gq_onnx_step_t *st = &p->steps[k];
    if (st->branch[0] || !st->k || !st->node || !st->node->op_type)
        return NULL;
    const char *op = st->node->op_type;
    size_t len = strlen(op);
    if (st->k == gq_onnx_kernel_find(op, p->opset))
        return op;
    return st->k->op && !strncmp(st->k->op, op, len) && st->k->op[len] == '+' ? st->k->op : NULL;
}

bool gq_onnx_claim_f32(const gq_onnx_val_t *v)
{
    if (!v || v->desc.dtype != GQ_F32)
        return false;
    int64_t n = gq_tdesc_numel(&v->desc);
    return n > 0 && n <= S_MAX;
}

bool gq_onnx_claim_host(const gq_onnx_val_t *v)
{
    return v && !v->dev_only && (v->data || !v->nbytes);
}

bool gq_onnx_claim_used(const gq_onnx_plan_t *p, const gq_onnx_step_t *st, int o)
{
    return o < st->nout && st->out[o] >= 0 && p->last_use[st->out[o]] >= 0;
}

bool gq_onnx_claim_epilogue(const gq_onnx_val_t *v, gq_onnx_act_t *f)
{
    char e[8];
    /* a kind added after HARDSIGMOID has no device code yet: the CPU runs it */
    return (!v || gq_onnx_claim_host(v)) && !gq_onnx_act_decode(v, f, e, sizeof e) &&
           f->k >= GQ_ONNX_ACT_NONE && f->k <= GQ_ONNX_ACT_HARDSIGMOID;
}

/* An ints attribute of exactly want values into v (def each when absent). */
static bool s_ints(const Onnx__NodeProto *n, const char *name, int want, int64_t def, int64_t *v)
{
    int got;
    char e[8];
    if (gq_onnx_attr_ints(n, name, v, GQ_MAX_DIMS * 2, &got, e, sizeof e))
        return false;
    for (int i = 0; got < 0 && i < want; i++)
        v[i] = def;
    return got < 0 || got == want;
}

/* One spatial dim of a window op: in, kernel, stride, dilation, pads -> out (the CPU's rules
 * for auto_pad and ceil_mode). */
static bool s_dim(const char *ap, bool ceil_mode, int64_t in, int64_t kk, int64_t sd, int64_t dd,
                  int64_t *p0, int64_t *p1, int64_t *o)
{
    if (kk < 1 || sd < 1 || dd < 1 || *p0 < 0 || *p1 < 0 || kk > S_MAX || sd > S_MAX ||
        dd > S_MAX || *p0 > S_MAX || *p1 > S_MAX)
        return false;
    return !gq_onnx_window_dim(in, kk, sd, dd, ap, ceil_mode, p0, p1, o);
}

/* The window of a 1-D or 2-D conv or pool over x (kern: the conv's kernel dims; NULL:
 * kernel_shape). */
static bool s_window(const Onnx__NodeProto *n, const gq_tdesc_t *x, const int64_t *kern,
                     bool ceil_mode, gq_onnx_claim_win_t *w)
{
    int k = x->ndim - 2;
    if (k < 1 || k > 2)
        return false;
    int64_t st[2], dl[2], pads[4], ks[2], r[2][7];
    char ap[32], e[8];
    if (!s_ints(n, "strides", k, 1, st) || !s_ints(n, "dilations", k, 1, dl) ||
        !s_ints(n, "pads", 2 * k, 0, pads) || !s_ints(n, "kernel_shape", k, -1, ks) ||
        gq_onnx_attr_str(n, "auto_pad", "NOTSET", ap, sizeof ap, e, sizeof e))
        return false;
    for (int d = 0; d < 2; d++) {
        int s = d - (2 - k); /* the source dim; < 0: the unit height of a 1-D op */
        int64_t v[7] = {1, 1, 1, 1, 0, 0, 1};
        if (s >= 0) {
            if (kern && ks[s] >= 0 && ks[s] != kern[s])
                return false;
            v[0] = x->shape[s + 2], v[1] = kern ? kern[s] : ks[s], v[2] = st[s], v[3] = dl[s];
            v[4] = pads[s], v[5] = pads[s + k];
            if (!s_dim(ap, ceil_mode, v[0], v[1], v[2], v[3], &v[4], &v[5], &v[6]))
                return false;
        }
        memcpy(r[d], v, sizeof v);
    }
    *w = (gq_onnx_claim_win_t){.ih = r[0][0],
                               .iw = r[1][0],
                               .kh = r[0][1],
                               .kw = r[1][1],
                               .sh = r[0][2],
                               .sw = r[1][2],
                               .dh = r[0][3],
                               .dw = r[1][3],
                               .ph = r[0][4],
                               .pw = r[1][4],
                               .phe = r[0][5],
                               .pwe = r[1][5],
                               .oh = r[0][6],
                               .ow = r[1][6]};
    return w->oh > 0 && w->ow > 0;
}

/* x's descriptor with the window's output as its spatial dims and ch channels. */
static gq_tdesc_t s_win_out(const gq_tdesc_t *x, int64_t ch, const gq_onnx_claim_win_t *w)
{
    gq_tdesc_t od = *x;
    od.shape[1] = ch;
    od.shape[2] = x->ndim == 4 ? w->oh : w->ow;
    if (x->ndim == 4)
        od.shape[3] = w->ow;
    return od;
}

bool gq_onnx_claim_unary(const gq_onnx_step_t *st, int opset, gq_onnx_val_t *const *in, int nin,
                         float *prm, gq_tdesc_t *od)
{
    const Onnx__NodeProto *n = st->node;
    const char *op = n->op_type;
    if (nin < 1 || !gq_onnx_claim_f32(in[0]) || st->nout != 1)
        return false;
    prm[0] = prm[1] = 0.0f;
    if (!strcmp(op, "LeakyRelu"))
        prm[0] = gq_onnx_attr_float(n, "alpha", 0.01f);
    else if (!strcmp(op, "Elu"))
        prm[0] = gq_onnx_attr_float(n, "alpha", 1.0f);
    else if (!strcmp(op, "Selu"))
        prm[0] = gq_onnx_attr_float(n, "alpha", 1.67326319217681884765625f),
        prm[1] = gq_onnx_attr_float(n, "gamma", 1.05070102214813232421875f);
    else if (!strcmp(op, "HardSigmoid"))
        prm[0] = gq_onnx_attr_float(n, "alpha", 0.2f), prm[1] = gq_onnx_attr_float(n, "beta", 0.5f);
    else if (!strcmp(op, "Clip") && opset < 11)
        prm[0] = gq_onnx_attr_float(n, "min", -INFINITY),
        prm[1] = gq_onnx_attr_float(n, "max", INFINITY);
    else if (!strcmp(op, "Clip"))
        for (int i = 0; i < 2; i++) {
            const gq_onnx_val_t *b = nin > i + 1 ? in[i + 1] : NULL;
            prm[i] = i ? INFINITY : -INFINITY;
            if (!b || !b->nbytes)
                continue;
            if (b->desc.dtype != GQ_F32 || !gq_onnx_claim_host(b))
                return false;
            prm[i] = *(const float *)b->data;
        }
    *od = in[0]->desc;
    return true;
}

/* The plan of z = a op b (sb NULL: a strided gather of a under the strides sa): dims of size
 * 1 dropped, runs contiguous in every source merged. */
static void s_plan(gq_onnx_claim_bplan_t *bp, const gq_tdesc_t *o, const int64_t *sa,
                   const int64_t *sb)
{
    int64_t sh[GQ_MAX_DIMS], ma[GQ_MAX_DIMS], mb[GQ_MAX_DIMS];
    int nd = 0;
    for (int d = 0; d < o->ndim; d++) {
        int64_t b = sb ? sb[d] : 0;
        if (o->shape[d] == 1)
            continue;
        if (nd && ma[nd - 1] == sa[d] * o->shape[d] && mb[nd - 1] == b * o->shape[d]) {
            sh[nd - 1] *= o->shape[d];
            ma[nd - 1] = sa[d], mb[nd - 1] = b;
            continue;
        }
        sh[nd] = o->shape[d], ma[nd] = sa[d], mb[nd] = b;
        nd++;
    }
    if (!nd)
        sh[0] = 1, ma[0] = mb[0] = 0, nd = 1;
    bp->nd = nd;
    for (int i = 0; i < 8; i++) {
        int d = i - (8 - nd);
        bp->sh[i] = d < 0 ? 1 : sh[d];
        bp->s0[i] = d < 0 ? 0 : ma[d];
        bp->s1[i] = d < 0 ? 0 : mb[d];
    }
}

bool gq_onnx_claim_binary(int opset, gq_onnx_val_t *const *in, int nin, bool *flat,
                          gq_onnx_claim_bplan_t *bp, gq_tdesc_t *od)
{
    char e[8];
    if (opset < 7 || nin != 2 || !gq_onnx_claim_f32(in[0]) || !gq_onnx_claim_f32(in[1]) ||
        gq_onnx_broadcast(&in[0]->desc, &in[1]->desc, od, e, sizeof e))
        return false;
    od->dtype = GQ_F32;
    *flat = gq_tdesc_equal(&in[0]->desc, &in[1]->desc);
    int64_t sa[GQ_MAX_DIMS], sb[GQ_MAX_DIMS], no = gq_tdesc_numel(od);
    gq_onnx_bstrides(&in[0]->desc, od, sa);
    gq_onnx_bstrides(&in[1]->desc, od, sb);
    s_plan(bp, od, sa, sb);
    return no > 0 && no <= S_MAX;
}

bool gq_onnx_claim_matmul(const gq_onnx_val_t *a, const gq_onnx_val_t *b, gq_onnx_claim_mm_t *mm,
                          gq_tdesc_t *od)
{
    if (!gq_onnx_claim_f32(a) || !gq_onnx_claim_f32(b))
        return false;
    gq_tdesc_t ad = a->desc, bd = b->desc, ba, bb, bo;
    char e[8];
    if (gq_onnx_matmul_shape(&ad, &bd, &ba, &bb, &bo, od, e, sizeof e))
        return false;
    int64_t m = ad.shape[ad.ndim - 2], k = ad.shape[ad.ndim - 1], n = bd.shape[bd.ndim - 1];
    int64_t nb = gq_tdesc_numel(&bo), na = gq_tdesc_numel(&ba), nbb = gq_tdesc_numel(&bb);
    if ((na != nb && na != 1) || (nbb != nb && nbb != 1))
        return false; /* both sides broadcast: the CPU's loop */
    *mm = (gq_onnx_claim_mm_t){.m = m,
                               .n = n,
                               .k = k,
                               .nb = nb,
                               .amod = na == nb ? nb : 1,
                               .abs_ = m * k,
                               .bmod = nbb == nb ? nb : 1,
                               .bbs = k * n};
    int64_t no = gq_tdesc_numel(od);
    return m <= S_MAX && n <= S_MAX && k <= S_MAX && nb <= S_MAX && no > 0 && no <= S_MAX;
}

bool gq_onnx_claim_gemm(const Onnx__NodeProto *n, gq_onnx_val_t *const *in, int nin,
                        gq_onnx_claim_gemm_t *g, gq_tdesc_t *od)
{
    if (nin < 2 || !gq_onnx_claim_f32(in[0]) || !gq_onnx_claim_f32(in[1]) ||
        in[0]->desc.ndim != 2 || in[1]->desc.ndim != 2)
        return false;
    float alpha = gq_onnx_attr_float(n, "alpha", 1.0f), beta = gq_onnx_attr_float(n, "beta", 1.0f);
    bool ta = gq_onnx_attr_int(n, "transA", 0), tb = gq_onnx_attr_int(n, "transB", 0);
    const int64_t *as = in[0]->desc.shape, *bs = in[1]->desc.shape;
    int64_t m = as[ta ? 1 : 0], k = as[ta ? 0 : 1], kb = bs[tb ? 1 : 0], nn = bs[tb ? 0 : 1];
    if (k != kb)
        return false;
    *od = (gq_tdesc_t){.dtype = GQ_F32, .ndim = 2, .shape = {m, nn}};
    *g = (gq_onnx_claim_gemm_t){
        .m = m, .n = nn, .k = k, .ta = ta, .tb = tb, .alpha = alpha, .beta = beta};
    g->bias = nin > 2 && in[2] && beta != 0;
    if (g->bias) {
        const gq_tdesc_t *cd = &in[2]->desc;
        gq_tdesc_t bd;
        char e[8];
        if (!gq_onnx_claim_f32(in[2]) || cd->ndim > 2 ||
            gq_onnx_broadcast(cd, od, &bd, e, sizeof e) || bd.ndim != 2 || bd.shape[0] != m ||
            bd.shape[1] != nn)
            return false;
        int64_t cm = cd->ndim == 2 ? cd->shape[0] : 1, cn = cd->ndim ? cd->shape[cd->ndim - 1] : 1;
        g->bsm = cm == 1 ? 0 : cn;
        g->bsn = cn == 1 ? 0 : 1;
    }
    return m * nn > 0 && m * nn <= S_MAX && k <= S_MAX;
}

bool gq_onnx_claim_conv(const Onnx__NodeProto *n, gq_onnx_val_t *const *in, int nin,
                        gq_onnx_claim_conv_t *cv, gq_tdesc_t *od)
{
    if (nin < 2 || !gq_onnx_claim_f32(in[0]) || !gq_onnx_claim_f32(in[1]))
        return false;
    const gq_tdesc_t *x = &in[0]->desc, *w = &in[1]->desc;
    if (x->ndim != w->ndim || x->ndim < 3 || x->ndim > 4)
        return false;
    int64_t G = gq_onnx_attr_int(n, "group", 1), C = x->shape[1], M = w->shape[0];
    if (G < 1 || C % G || M % G || w->shape[1] * G != C)
        return false;
    cv->bias = nin > 2 && in[2];
    if (cv->bias &&
        (!gq_onnx_claim_f32(in[2]) || in[2]->desc.ndim != 1 || in[2]->desc.shape[0] != M))
        return false;
    if (!s_window(n, x, w->shape + 2, false, &cv->w))
        return false;
    cv->N = x->shape[0], cv->C = C, cv->M = M, cv->G = G;
    *od = s_win_out(x, M, &cv->w);
    int64_t K = C / G * cv->w.kh * cv->w.kw, P = cv->w.oh * cv->w.ow, no = gq_tdesc_numel(od);
    /* one image's im2col columns must fit the kernels' 32-bit indices */
    return no > 0 && no <= S_MAX && K * P <= S_MAX / G;
}

bool gq_onnx_claim_convpool(const gq_onnx_val_t *v, const gq_onnx_claim_win_t *cw,
                            gq_onnx_claim_win_t *pool, gq_tdesc_t *od)
{
    if (!v || v->desc.dtype != GQ_I64 || gq_tdesc_numel(&v->desc) != 11 || !gq_onnx_claim_host(v) ||
        !v->data)
        return false;
    const int64_t *s = v->data;
    gq_onnx_claim_win_t *w = pool;
    *w = (gq_onnx_claim_win_t){.ih = cw->oh,
                               .iw = cw->ow,
                               .kh = s[0],
                               .kw = s[1],
                               .sh = s[2],
                               .sw = s[3],
                               .dh = s[4],
                               .dw = s[5],
                               .ph = s[6],
                               .pw = s[7],
                               .phe = s[8],
                               .pwe = s[9]};
    if (!s_dim("NOTSET", s[10], w->ih, w->kh, w->sh, w->dh, &w->ph, &w->phe, &w->oh) ||
        !s_dim("NOTSET", s[10], w->iw, w->kw, w->sw, w->dw, &w->pw, &w->pwe, &w->ow) || w->oh < 1 ||
        w->ow < 1)
        return false;
    od->shape[od->ndim - 1] = w->ow;
    if (od->ndim == 4)
        od->shape[2] = w->oh;
    else if (w->oh != 1)
        return false;
    return true;
}

bool gq_onnx_claim_pool(const gq_onnx_plan_t *p, const gq_onnx_step_t *st, gq_onnx_val_t *const *in,
                        int nin, gq_onnx_claim_win_t *w, bool *inc_pad, gq_tdesc_t *od)
{
    const Onnx__NodeProto *n = st->node;
    if (nin < 1 || !gq_onnx_claim_f32(in[0]) || gq_onnx_claim_used(p, st, 1))
        return false;
    bool ceil_mode = p->opset >= 10 && gq_onnx_attr_int(n, "ceil_mode", 0);
    if (!gq_onnx_attr(n, "kernel_shape") || !s_window(n, &in[0]->desc, NULL, ceil_mode, w))
        return false;
    *inc_pad = gq_onnx_attr_int(n, "count_include_pad", 0) != 0;
    *od = s_win_out(&in[0]->desc, in[0]->desc.shape[1], w);
    int64_t no = gq_tdesc_numel(od);
    return no > 0 && no <= S_MAX;
}

bool gq_onnx_claim_gpool(gq_onnx_val_t *const *in, int nin, int min_ndim, int64_t *planes,
                         int64_t *size, gq_tdesc_t *od)
{
    if (nin < 1 || !gq_onnx_claim_f32(in[0]) || in[0]->desc.ndim < 2 || in[0]->desc.ndim < min_ndim)
        return false;
    *od = in[0]->desc;
    *size = 1;
    for (int d = 2; d < od->ndim; d++)
        *size *= od->shape[d], od->shape[d] = 1;
    *planes = in[0]->desc.shape[0] * in[0]->desc.shape[1];
    return true;
}

bool gq_onnx_claim_bn(const gq_onnx_plan_t *p, const gq_onnx_step_t *st, gq_onnx_val_t *const *in,
                      int nin, int64_t *size, float *eps, gq_tdesc_t *od)
{
    const Onnx__NodeProto *n = st->node;
    if (p->opset < 9 || nin != 5 || gq_onnx_attr_int(n, "training_mode", 0) ||
        !gq_onnx_claim_f32(in[0]) || in[0]->desc.ndim < 2)
        return false;
    for (int o = 1; o < st->nout; o++)
        if (gq_onnx_claim_used(p, st, o))
            return false;
    int64_t C = in[0]->desc.shape[1], N = in[0]->desc.shape[0];
    for (int i = 1; i < 5; i++)
        if (!gq_onnx_claim_f32(in[i]) || in[i]->desc.ndim != 1 || in[i]->desc.shape[0] != C)
            return false;
    *size = gq_tdesc_numel(&in[0]->desc) / (N * C);
    *eps = gq_onnx_attr_float(n, "epsilon", 1e-5f);
    *od = in[0]->desc;
    return true;
}

bool gq_onnx_claim_softmax(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                           int64_t *rows, int64_t *len, int64_t *inner, gq_tdesc_t *od)
{
    if (nin < 1 || !gq_onnx_claim_f32(in[0]))
        return false;
    const gq_tdesc_t *d = &in[0]->desc;
    int64_t axis = gq_onnx_attr_int(n, "axis", opset < 13 ? 1 : -1);
    if (axis < 0)
        axis += d->ndim;
    if (axis < 0 || axis >= (d->ndim ? d->ndim : 1))
        return false;
    int64_t outer = 1;
    *len = *inner = 1;
    for (int i = 0; i < d->ndim; i++) {
        if (i < axis)
            outer *= d->shape[i];
        else if (opset < 13 || i == axis)
            *len *= d->shape[i];
        else
            *inner *= d->shape[i];
    }
    *rows = outer * *inner;
    *od = *d;
    return true;
}

bool gq_onnx_claim_transpose(const Onnx__NodeProto *n, gq_onnx_val_t *const *in, int nin,
                             gq_onnx_claim_bplan_t *bp, gq_tdesc_t *od)
{
    if (nin < 1 || !gq_onnx_claim_f32(in[0]))
        return false;
    const gq_tdesc_t *s = &in[0]->desc;
    int nd = s->ndim, perm[GQ_MAX_DIMS];
    const Onnx__AttributeProto *pa = gq_onnx_attr(n, "perm");
    bool seen[GQ_MAX_DIMS] = {false};
    if (pa && (int)pa->n_ints != nd)
        return false;
    for (int i = 0; i < nd; i++) {
        int64_t v = pa ? pa->ints[i] : nd - 1 - i;
        if (v < 0 || v >= nd || seen[v])
            return false;
        perm[i] = (int)v, seen[v] = true;
    }
    int64_t cst[GQ_MAX_DIMS], st[GQ_MAX_DIMS], acc = 1;
    for (int i = nd - 1; i >= 0; i--)
        cst[i] = acc, acc *= s->shape[i];
    *od = *s;
    for (int i = 0; i < nd; i++)
        od->shape[i] = s->shape[perm[i]], st[i] = cst[perm[i]];
    s_plan(bp, od, st, NULL);
    return true;
}

/* Squeeze/Unsqueeze's axes as the CPU reads them; -1 when the input is not readable here. */
static int s_axes(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                  int64_t *axes)
{
    if (opset >= 13 && nin >= 2 && in[1] &&
        (in[1]->desc.dtype != GQ_I64 || !gq_onnx_claim_host(in[1])))
        return -1;
    return gq_onnx_axes_arg(n, opset, in, nin, axes);
}

/* Reshape's target shape by the CPU's rule, when the shape input is readable here. */
static bool s_reshape(const Onnx__NodeProto *n, const gq_onnx_val_t *sv, const gq_tdesc_t *s,
                      gq_tdesc_t *d)
{
    char err[GQ_ERRLEN];
    return sv && sv->desc.dtype == GQ_I64 && sv->desc.ndim == 1 && gq_onnx_claim_host(sv) &&
           !gq_onnx_reshape_dims(s, sv->data, sv->desc.shape[0],
                                 gq_onnx_attr_int(n, "allowzero", 0), d, err, sizeof err);
}

/* Squeeze (squeeze) or Unsqueeze: the k dims listed dropped or inserted (k < 0: axes that
 * could not be read). */
static bool s_squeeze(bool squeeze, const int64_t *axes, int k, const gq_tdesc_t *s, gq_tdesc_t *d)
{
    bool mark[GQ_MAX_DIMS] = {false};
    int nd = squeeze ? s->ndim : s->ndim + k;
    if (k < 0 || nd > GQ_MAX_DIMS || (!squeeze && k == 0))
        return false;
    for (int i = 0; i < k; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + nd : axes[i];
        if (a < 0 || a >= nd || (!squeeze && mark[a]) || (squeeze && s->shape[a] != 1))
            return false;
        mark[a] = true;
    }
    d->ndim = 0;
    for (int i = 0, j = 0; i < nd; i++) {
        if (!squeeze)
            d->shape[d->ndim++] = mark[i] ? 1 : s->shape[j++];
        else if (!(k ? mark[i] : s->shape[i] == 1))
            d->shape[d->ndim++] = s->shape[i];
    }
    return true;
}

bool gq_onnx_claim_alias(gq_onnx_claim_alias_t kind, const gq_onnx_plan_t *p,
                         const gq_onnx_step_t *st, gq_onnx_val_t *const *in, int nin,
                         gq_tdesc_t *od)
{
    const Onnx__NodeProto *n = st->node;
    if (nin < 1 || !gq_onnx_claim_f32(in[0]))
        return false;
    const gq_tdesc_t *s = &in[0]->desc;
    gq_tdesc_t d = {.dtype = GQ_F32};
    int64_t axes[GQ_MAX_DIMS];
    bool ok = true;
    switch (kind) {
    case GQ_ONNX_CLAIM_IDENTITY:
        d = *s;
        break;
    case GQ_ONNX_CLAIM_DROPOUT:
        ok = !gq_onnx_claim_used(p, st, 1) && !(p->opset >= 12 && nin > 2 && in[2]);
        d = *s;
        break;
    case GQ_ONNX_CLAIM_FLATTEN: {
        int64_t axis = gq_onnx_attr_int(n, "axis", 1);
        axis += axis < 0 ? s->ndim : 0;
        ok = axis >= 0 && axis <= s->ndim;
        d.ndim = 2, d.shape[0] = d.shape[1] = 1;
        for (int i = 0; ok && i < s->ndim; i++)
            d.shape[i < axis ? 0 : 1] *= s->shape[i];
        break;
    }
    case GQ_ONNX_CLAIM_RESHAPE:
        ok = p->opset >= 5 && nin >= 2 && s_reshape(n, in[1], s, &d);
        break;
    case GQ_ONNX_CLAIM_SQUEEZE:
    case GQ_ONNX_CLAIM_UNSQUEEZE:
        ok = s_squeeze(kind == GQ_ONNX_CLAIM_SQUEEZE, axes, s_axes(n, p->opset, in, nin, axes), s,
                       &d);
        break;
    default:
        ok = false;
        break;
    }
    *od = d;
    return ok && gq_tdesc_check(&d, NULL, NULL) == GQ_OK && gq_tdesc_numel(&d) == gq_tdesc_numel(s);
}
