/* Conv(+Act) -> MaxPool as one step (onnx_fuse.c puts it in): the direct convolution pools
 * each band of conv rows while it is in cache (gq_onnx_conv2d_pool), so the conv's output,
 * the largest tensor of a small CNN, is never written out and read back. 1-D and 2-D. */
#include <string.h>

#include "onnx_int.h"
#include "onnx_shape.h"
#include "util.h"

/* One spatial dim: output size of a window dk over n + pb + pe at stride s (pooling's
 * ceil_mode rule: the last window must start inside the input or the leading pad). */
static gq_status s_out_dim(const char *what, int d, int64_t n, int64_t k, int64_t dil, int64_t s,
                           const char *ap, bool ceil_mode, int64_t *pb, int64_t *pe, int64_t *o,
                           char *err, size_t errlen)
{
    if (gq_onnx_window_dim(n, k, s, dil, ap, ceil_mode, pb, pe, o)) { /* ap: checked */
        gq_errf(err, errlen, "%s dim %d: the window (%lld) is larger than the padded input (%lld)",
                what, d, (long long)((k - 1) * dil + 1), (long long)(n + *pb + *pe));
        return GQ_ESHAPE;
    }
    return GQ_OK;
}

/* An ints attribute of want values (def when absent). */
static gq_status s_ints(const Onnx__NodeProto *n, const char *name, int want, int64_t def,
                        int64_t *v, char *err, size_t errlen)
{
    int got;
    gq_status rc = gq_onnx_attr_ints(n, name, v, 4, &got, err, errlen);
    if (rc)
        return rc;
    for (int i = 0; got < 0 && i < want; i++)
        v[i] = def;
    if (got >= 0 && got != want) {
        gq_errf(err, errlen, "attribute %s has %d values, want %d", name, got, want);
        return GQ_EPARAM;
    }
    return GQ_OK;
}

/* The conv's geometry (k = 1 or 2 spatial dims) from its node and X, W; 1-D as 2-D with one
 * row. */
static gq_status s_conv_geom(const Onnx__NodeProto *n, const gq_tdesc_t *x, const gq_tdesc_t *w,
                             gq_onnx_conv2d_t *g, char *err, size_t errlen)
{
    int k = x->ndim - 2;
    int64_t st[2], dl[2], pads[4], ks[2], o[2];
    char ap[32], a[96], b[96];
    gq_status rc;
    int64_t group = gq_onnx_attr_int(n, "group", 1);
    if (k < 1 || k > 2 || w->ndim != x->ndim || group < 1 || x->shape[1] % group ||
        w->shape[0] % group || w->shape[1] * group != x->shape[1]) {
        gq_errf(err, errlen, "X %s, W %s, group %lld do not fit a 1-D or 2-D conv",
                gq_tdesc_str(x, a, sizeof a), gq_tdesc_str(w, b, sizeof b), (long long)group);
        return GQ_ESHAPE;
    }
    if ((rc = s_ints(n, "strides", k, 1, st, err, errlen)) ||
        (rc = s_ints(n, "dilations", k, 1, dl, err, errlen)) ||
        (rc = s_ints(n, "pads", 2 * k, 0, pads, err, errlen)) ||
        (rc = s_ints(n, "kernel_shape", k, -1, ks, err, errlen)) ||
        (rc = gq_onnx_attr_str(n, "auto_pad", "NOTSET", ap, sizeof ap, err, errlen)))
        return rc;
    if (strcmp(ap, "SAME_UPPER") && strcmp(ap, "SAME_LOWER") && strcmp(ap, "VALID") &&
        strcmp(ap, "NOTSET")) {
        gq_errf(err, errlen, "auto_pad '%s' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID", ap);
        return GQ_EPARAM;
    }
    for (int d = 0; d < k; d++) {
        int64_t in = x->shape[d + 2], kern = w->shape[d + 2];
        if ((ks[d] >= 0 && ks[d] != kern) || kern < 1 || st[d] < 1 || dl[d] < 1 || pads[d] < 0 ||
            pads[d + k] < 0) {
            gq_errf(err, errlen,
                    "dim %d: kernel %lld (kernel_shape %lld), stride %lld, "
                    "dilation %lld, pads %lld/%lld",
                    d, (long long)kern, (long long)ks[d], (long long)st[d], (long long)dl[d],
                    (long long)pads[d], (long long)pads[d + k]);
            return GQ_EPARAM;
        }
        if ((rc = s_out_dim("conv", d, in, kern, dl[d], st[d], ap, false, &pads[d], &pads[d + k],
                            &o[d], err, errlen)))
            return rc;
    }
    int l = k - 1;
    *g = (gq_onnx_conv2d_t){.N = x->shape[0],
                            .C = x->shape[1],
                            .M = w->shape[0],
                            .group = group,
                            .ih = l ? x->shape[2] : 1,
                            .iw = x->shape[2 + l],
                            .kh = l ? w->shape[2] : 1,
                            .kw = w->shape[2 + l],
                            .oh = l ? o[0] : 1,
                            .ow = o[l],
                            .sh = l ? st[0] : 1,
                            .sw = st[l],
                            .dh = l ? dl[0] : 1,
                            .dw = dl[l],
                            .ph = l ? pads[0] : 0,
                            .pw = pads[l]};
    return GQ_OK;
}

/* The pool from its constant (see onnx_int.h) over conv output g. */
static gq_status s_pool_geom(const gq_onnx_val_t *v, const gq_onnx_conv2d_t *g,
                             gq_onnx_pool2d_t *pl, char *err, size_t errlen)
{
    if (!v || v->desc.dtype != GQ_I64 || GQ_ONNX_ELEMS(v) != 11) {
        gq_errf(err, errlen, "the fused MaxPool's parameters are not an i64[11]");
        return GQ_EPARAM;
    }
    const int64_t *s = v->data;
    *pl = (gq_onnx_pool2d_t){.kh = s[0],
                             .kw = s[1],
                             .sh = s[2],
                             .sw = s[3],
                             .dh = s[4],
                             .dw = s[5],
                             .ph = s[6],
                             .pw = s[7]};
    for (int i = 0; i < 6; i++)
        if (s[i] < 1 || s[6 + i % 4] < 0) {
            gq_errf(err, errlen, "the fused MaxPool's parameters are out of range");
            return GQ_EPARAM;
        }
    gq_status rc;
    int64_t pad[4] = {s[6], s[7], s[8], s[9]};
    if ((rc = s_out_dim("pool", 0, g->oh, s[0], s[4], s[2], "NOTSET", s[10], &pad[0], &pad[2],
                        &pl->oh, err, errlen)) ||
        (rc = s_out_dim("pool", 1, g->ow, s[1], s[5], s[3], "NOTSET", s[10], &pad[1], &pad[3],
                        &pl->ow, err, errlen)))
        return rc;
    return GQ_OK;
}

static gq_status s_conv_maxpool(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                                int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    if (rc)
        return rc;
    for (int i = 0; i < 3 && i < nin; i++)
        if (in[i] && in[i]->desc.dtype != GQ_F32) {
            gq_errf(err, errlen, "input %d is %s: only f32 is supported", i,
                    gq_dtype_name(in[i]->desc.dtype));
            return GQ_EDTYPE;
        }
    gq_onnx_act_t act;
    gq_onnx_conv2d_t g;
    gq_onnx_pool2d_t pl;
    if ((rc = gq_onnx_act_decode(nin > 3 ? in[3] : NULL, &act, err, errlen)) ||
        (rc = s_conv_geom(n, &in[0]->desc, &in[1]->desc, &g, err, errlen)) ||
        (rc = s_pool_geom(nin > 4 ? in[4] : NULL, &g, &pl, err, errlen)))
        return rc;
    const float *bias = nin > 2 && in[2] ? in[2]->data : NULL;
    if (bias && (in[2]->desc.ndim != 1 || in[2]->desc.shape[0] != g.M)) {
        char b[96];
        gq_errf(err, errlen, "bias is %s, want [%lld]", gq_tdesc_str(&in[2]->desc, b, sizeof b),
                (long long)g.M);
        return GQ_ESHAPE;
    }
    gq_tdesc_t od = in[0]->desc;
    od.shape[1] = g.M;
    od.shape[od.ndim - 1] = pl.ow;
    if (od.ndim == 4)
        od.shape[2] = pl.oh;
    if ((rc = gq_onnx_out(out, &od, err, errlen)) || gq_tdesc_numel(&od) == 0)
        return rc;
    return gq_onnx_conv2d_pool(&g, &pl, in[0]->data, in[1]->data, bias, &act, out->data, err,
                               errlen);
}

const gq_onnx_kernel_t gq_onnx_kernel_conv_maxpool = {"Conv+MaxPool", 1, s_conv_maxpool};

gq_status gq_onnx_shape_conv_maxpool(gq_onnx_shape_ctx_t *c)
{
    gq_onnx_shape_ctx_t cc = *c;
    cc.nin = c->nin < 3 ? c->nin : 3;
    for (int i = 0; i < gq_onnx_shapes_nn_count; i++)
        if (!strcmp(gq_onnx_shapes_nn[i].op, "Conv")) {
            gq_status rc = gq_onnx_shapes_nn[i].fn(&cc);
            if (rc)
                return rc;
        }
    gq_onnx_info_t *o = &c->out[0];
    const gq_onnx_info_t *sp = c->nin > 4 ? c->in[4] : NULL;
    int64_t s[11];
    int n = 0;
    bool ok = sp && gq_onnx_info_consts(sp, s, 11, &n) && n == 11;
    for (int d = 2; d < o->rank; d++) {
        int w = d == o->rank - 1; /* 1: the width, 0: the height */
        gq_onnx_dim_t *v = &o->dim[d];
        char e[8];
        int64_t pb = ok ? s[6 + w] : 0, pe = ok ? s[8 + w] : 0;
        if (!ok || v->sym != 0 || s[w] < 1 || s[2 + w] < 1 || s[4 + w] < 1 || pb < 0 || pe < 0 ||
            s_out_dim("pool", d, v->c, s[w], s[4 + w], s[2 + w], "NOTSET", s[10], &pb, &pe, &v->c,
                      e, sizeof e))
            *v = (gq_onnx_dim_t){.c = 0, .sym = -1};
    }
    return GQ_OK;
}
