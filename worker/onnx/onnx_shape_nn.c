/* Shape functions of the network ops (the kernels of onnx_ops_conv.c, onnx_ops_nn.c,
 * onnx_ops_rnn.c, onnx_ops_dsp.c and onnx_ops_resize.c): the window geometry of convolutions
 * and pools, MatMul and Gemm, the recurrent ops, the signal ops and Resize. */
#include <math.h>
#include <string.h>

#include "onnx_shape.h"

static gq_status s_f_resize(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0), *sv = s_in(c, 2), *zv = s_in(c, 3);
    gq_onnx_info_t *o = &c->out[0];
    int64_t sizes[GQ_MAX_DIMS];
    int ns;
    s_rank(o, x ? x->dtype : GQ_DTYPE_INVALID, x ? x->rank : -1);
    if (!x || x->rank < 0 || gq_onnx_attr_int(c->n, "antialias", 0) || gq_onnx_attr(c->n, "axes"))
        return GQ_OK;
    gq_onnx_dim_t zn = zv ? gq_onnx_info_numel(zv) : s_dk(0),
                  sn = sv ? gq_onnx_info_numel(sv) : s_dk(0);
    if (!s_isk(zn) || !s_isk(sn))
        return GQ_OK;
    if (zn.c) {
        if (gq_onnx_info_consts(zv, sizes, GQ_MAX_DIMS, &ns) && ns == x->rank)
            for (int d = 0; d < x->rank; d++)
                o->dim[d] = sizes[d] >= 0 ? s_dk(sizes[d]) : s_du();
    } else if (sv && sn.c == x->rank && sv->data && sv->dtype == GQ_F32) {
        for (int d = 0; d < x->rank; d++) {
            double s = ((const float *)sv->data)[d];
            double v = s_isk(x->dim[d]) ? floor((double)x->dim[d].c * s) : -1;
            o->dim[d] = s == 1                          ? x->dim[d]
                        : v >= 0 && v < 0x1p62 && s > 0 ? s_dk((int64_t)v)
                                                        : s_du();
        }
    }
    return GQ_OK;
}

/* The output size of one spatial dim, as s_geom (onnx_ops_conv.c) computes it; -1 when the
 * kernel would refuse it. */
static int64_t s_window_dim(int64_t in, int64_t k, int64_t stride, int64_t dil, int64_t pb,
                            int64_t pe, const char *ap, bool ceil_mode)
{
    if (k < 1 || stride < 1 || dil < 1 || pb < 0 || pe < 0 || in < 0 || k > INT32_MAX ||
        dil > INT32_MAX || stride > INT32_MAX || pb > INT32_MAX || pe > INT32_MAX)
        return -1;
    int64_t dk = (k - 1) * dil + 1;
    if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER"))
        return (in + stride - 1) / stride;
    bool valid = !strcmp(ap, "VALID");
    if (!valid && strcmp(ap, "NOTSET"))
        return -1;
    pb = valid ? 0 : pb, pe = valid ? 0 : pe;
    int64_t span = in + pb + pe - dk;
    if (span < 0)
        return -2;
    int64_t o = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    if (ceil_mode && (o - 1) * stride >= in + pb)
        o--;
    return o;
}

/* Spatial dims of a Conv or pool on x with kernel dims kern (unknown entries < 0). */
static gq_status s_windows(gq_onnx_shape_ctx_t *c, const gq_onnx_info_t *x, const int64_t *kern,
                           bool ceil_mode, gq_onnx_info_t *o)
{
    int k = x->rank - 2;
    int64_t st[GQ_MAX_DIMS * 2], dil[GQ_MAX_DIMS * 2], pads[GQ_MAX_DIMS * 2];
    char ap[32], e[8];
    if (!gq_onnx_shape_attr_k(c->n, "strides", k, 1, st) ||
        !gq_onnx_shape_attr_k(c->n, "dilations", k, 1, dil) ||
        !gq_onnx_shape_attr_k(c->n, "pads", 2 * k, 0, pads) ||
        gq_onnx_attr_str(c->n, "auto_pad", "NOTSET", ap, sizeof ap, e, sizeof e))
        return GQ_OK;
    for (int d = 0; d < k; d++) {
        gq_onnx_dim_t in = x->dim[d + 2];
        if (!s_isk(in) || kern[d] < 0)
            continue;
        int64_t v = s_window_dim(in.c, kern[d], st[d], dil[d], pads[d], pads[d + k], ap, ceil_mode);
        if (v == -2) {
            char a[160];
            return s_fail(c,
                          "%s: dim %d: the window (%lld) is larger than the padded input "
                          "(%lld)",
                          s_idesc(c, 0, a, sizeof a), d + 2,
                          (long long)((kern[d] - 1) * dil[d] + 1),
                          (long long)(in.c + pads[d] + pads[d + k]));
        }
        o->dim[d + 2] = v >= 0 ? s_dk(v) : s_du();
    }
    return GQ_OK;
}

static gq_status s_f_conv(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0), *w = s_in(c, 1), *b = s_in(c, 2);
    gq_onnx_info_t *o = &c->out[0];
    int64_t group = gq_onnx_attr_int(c->n, "group", 1), kern[GQ_MAX_DIMS * 2];
    char a[160], bb[160];
    s_rank(o, x ? x->dtype : GQ_DTYPE_INVALID, x ? x->rank : -1);
    if (!x || !w || x->rank < 3 || w->rank < 0)
        return GQ_OK;
    if (w->rank != x->rank)
        return s_fail(c, "%s has rank %d, %s has %d", s_idesc(c, 1, a, sizeof a), w->rank,
                      s_idesc(c, 0, bb, sizeof bb), x->rank);
    gq_onnx_dim_t C = x->dim[1], M = w->dim[0], Cg = w->dim[1];
    if (group < 1)
        return GQ_OK;
    if (s_isk(C) && s_isk(Cg) && Cg.c * group != C.c) {
        if (group == 1)
            return s_fail(c, "%s has %lld channels per group, %s has %lld",
                          s_idesc(c, 1, a, sizeof a), (long long)Cg.c, s_idesc(c, 0, bb, sizeof bb),
                          (long long)C.c);
        return s_fail(c, "%s has %lld channels per group, %s has %lld in %lld groups",
                      s_idesc(c, 1, a, sizeof a), (long long)Cg.c, s_idesc(c, 0, bb, sizeof bb),
                      (long long)C.c, (long long)group);
    }
    if (s_isk(M) && M.c % group)
        return s_fail(c, "%s has %lld filters, not a multiple of group %lld",
                      s_idesc(c, 1, a, sizeof a), (long long)M.c, (long long)group);
    if (b && b->rank >= 0 && (b->rank != 1 || s_dne(b->dim[0], M)))
        return s_fail(c, "%s does not hold one bias per filter of %s", s_idesc(c, 2, a, sizeof a),
                      s_idesc(c, 1, bb, sizeof bb));
    int k = x->rank - 2;
    if (!gq_onnx_shape_attr_k(c->n, "kernel_shape", k, -1, kern))
        return GQ_OK;
    for (int d = 0; d < k; d++) {
        int64_t wk = s_isk(w->dim[d + 2]) ? w->dim[d + 2].c : -1;
        if (kern[d] >= 0 && wk >= 0 && kern[d] != wk)
            return GQ_OK; /* the kernel refuses it */
        kern[d] = wk;
    }
    o->dim[0] = x->dim[0];
    o->dim[1] = M;
    return s_windows(c, x, kern, false, o);
}

static gq_status s_f_conv_transpose(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0), *w = s_in(c, 1);
    gq_onnx_info_t *o = &c->out[0];
    int64_t group = gq_onnx_attr_int(c->n, "group", 1);
    int64_t st[GQ_MAX_DIMS * 2], dil[GQ_MAX_DIMS * 2], opad[GQ_MAX_DIMS * 2], os[GQ_MAX_DIMS * 2],
        pads[GQ_MAX_DIMS * 2];
    int nos, np;
    char ap[32], e[8], a[160], b[160];
    s_rank(o, x ? x->dtype : GQ_DTYPE_INVALID, x ? x->rank : -1);
    if (!x || !w || x->rank < 3 || w->rank < 0 || group < 1)
        return GQ_OK;
    if (w->rank != x->rank)
        return s_fail(c, "%s has rank %d, %s has %d", s_idesc(c, 1, a, sizeof a), w->rank,
                      s_idesc(c, 0, b, sizeof b), x->rank);
    if (s_dne(w->dim[0], x->dim[1]))
        return s_fail(c, "%s has %lld input channels, %s has %lld", s_idesc(c, 1, a, sizeof a),
                      (long long)w->dim[0].c, s_idesc(c, 0, b, sizeof b), (long long)x->dim[1].c);
    o->dim[0] = x->dim[0];
    o->dim[1] = gq_onnx_dim_mul(w->dim[1], s_dk(group));
    int k = x->rank - 2;
    if (!gq_onnx_shape_attr_k(c->n, "strides", k, 1, st) ||
        !gq_onnx_shape_attr_k(c->n, "dilations", k, 1, dil) ||
        !gq_onnx_shape_attr_k(c->n, "output_padding", k, 0, opad) ||
        !s_attr_ints(c->n, "output_shape", os, GQ_MAX_DIMS * 2, &nos) ||
        !s_attr_ints(c->n, "pads", pads, GQ_MAX_DIMS * 2, &np) ||
        gq_onnx_attr_str(c->n, "auto_pad", "NOTSET", ap, sizeof ap, e, sizeof e) ||
        (nos >= 0 && nos != k && nos != x->rank) || (np >= 0 && np != 2 * k))
        return GQ_OK;
    bool same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
    for (int d = 0; d < k; d++) {
        gq_onnx_dim_t in = x->dim[d + 2], kd = w->dim[d + 2];
        if (!s_isk(in) || !s_isk(kd) || st[d] < 1 || dil[d] < 1 || kd.c < 1 || st[d] > INT32_MAX ||
            dil[d] > INT32_MAX || kd.c > INT32_MAX || in.c > INT32_MAX || opad[d] < -INT32_MAX ||
            opad[d] > INT32_MAX)
            continue;
        int64_t dk = (kd.c - 1) * dil[d] + 1, full = st[d] * (in.c - 1) + opad[d] + dk, pb, pe, out;
        if (nos >= 0 || same) {
            int64_t want = nos >= 0 ? os[d + (nos == x->rank ? 2 : 0)] : in.c * st[d];
            if (want < 1 || want > GQ_MAX_DIM_SIZE)
                continue;
            int64_t tot = full - want < 0 ? 0 : full - want;
            pb = !strcmp(ap, "SAME_UPPER") ? tot / 2 : tot - tot / 2;
            pe = tot - pb, out = want;
        } else {
            pb = np >= 0 ? pads[d] : 0, pe = np >= 0 ? pads[d + k] : 0;
            if (pb < -INT32_MAX || pb > INT32_MAX || pe < -INT32_MAX || pe > INT32_MAX)
                continue;
            out = full - pb - pe;
        }
        if (out >= 1 && pb >= 0 && pe >= 0)
            o->dim[d + 2] = s_dk(out);
    }
    return GQ_OK;
}

static gq_status s_f_pool(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    bool ceil_mode = c->opset >= 10 && gq_onnx_attr_int(c->n, "ceil_mode", 0);
    int64_t kern[GQ_MAX_DIMS * 2];
    s_rank(&c->out[0], x ? x->dtype : GQ_DTYPE_INVALID, x ? x->rank : -1);
    gq_status rc = GQ_OK;
    if (x && x->rank >= 3 && gq_onnx_shape_attr_k(c->n, "kernel_shape", x->rank - 2, -1, kern)) {
        c->out[0].dim[0] = x->dim[0], c->out[0].dim[1] = x->dim[1];
        rc = s_windows(c, x, kern, ceil_mode, &c->out[0]);
    }
    if (c->nout > 1)
        s_type(&c->out[1], &c->out[0]), c->out[1].dtype = GQ_I64;
    return rc;
}

static gq_status s_f_global_pool(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    s_f_same(c);
    for (int d = 2; x && d < x->rank; d++)
        c->out[0].dim[d] = s_dk(1);
    return GQ_OK;
}

/* ---- matrices ---- */

static gq_status s_f_matmul(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *a0 = s_in(c, 0), *b0 = s_in(c, 1);
    gq_onnx_info_t *o = &c->out[0];
    char x[160], y[160], d1[32], d2[32];
    s_rank(o, a0 ? a0->dtype : GQ_DTYPE_INVALID, -1);
    if (!a0 || !b0 || a0->rank < 1 || b0->rank < 1)
        return GQ_OK;
    gq_onnx_info_t a = *a0, b = *b0, ba, bb;
    bool a1 = a.rank == 1, b1 = b.rank == 1;
    if (a1)
        a.dim[1] = a.dim[0], a.dim[0] = s_dk(1), a.rank = 2;
    if (b1)
        b.dim[1] = s_dk(1), b.rank = 2;
    gq_onnx_dim_t m = a.dim[a.rank - 2], k = a.dim[a.rank - 1], n = b.dim[b.rank - 1];
    if (s_dne(b.dim[b.rank - 2], k))
        return s_fail(c, "%s has %s rows, %s has %s columns", s_idesc(c, 1, x, sizeof x),
                      gq_onnx_dim_str(b.dim[b.rank - 2], c, d1, sizeof d1),
                      s_idesc(c, 0, y, sizeof y), gq_onnx_dim_str(k, c, d2, sizeof d2));
    s_type(&ba, &a), s_type(&bb, &b);
    ba.rank -= 2, bb.rank -= 2;
    gq_status rc = gq_onnx_shape_bcast(c, &ba, &bb, 1, 0);
    if (rc || ba.rank + !a1 + !b1 > GQ_MAX_DIMS)
        return rc;
    o->rank = ba.rank;
    memcpy(o->dim, ba.dim, sizeof o->dim);
    if (!a1)
        o->dim[o->rank++] = m;
    if (!b1)
        o->dim[o->rank++] = n;
    return GQ_OK;
}

static gq_status s_f_gemm(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *a = s_in(c, 0), *b = s_in(c, 1);
    char x[160], y[160], d1[32], d2[32];
    s_rank(&c->out[0], GQ_F32, 2);
    if (!a || !b || a->rank != 2 || b->rank != 2)
        return GQ_OK;
    bool ta = gq_onnx_attr_int(c->n, "transA", 0), tb = gq_onnx_attr_int(c->n, "transB", 0);
    gq_onnx_dim_t k = a->dim[ta ? 0 : 1], kb = b->dim[tb ? 1 : 0];
    if (s_dne(k, kb))
        return s_fail(c, "%s has %s rows%s, %s has %s columns%s", s_idesc(c, 1, x, sizeof x),
                      gq_onnx_dim_str(kb, c, d1, sizeof d1), tb ? " (transB)" : "",
                      s_idesc(c, 0, y, sizeof y), gq_onnx_dim_str(k, c, d2, sizeof d2),
                      ta ? " (transA)" : "");
    c->out[0].dim[0] = a->dim[ta ? 1 : 0];
    c->out[0].dim[1] = b->dim[tb ? 0 : 1];
    return GQ_OK;
}

/* ---- recurrent ---- */

static gq_status s_f_rnn(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0), *w = s_in(c, 1), *r = s_in(c, 2);
    char dir[32], e[8], a[160], b[160];
    int nst = !strcmp(c->n->op_type, "LSTM") ? 2 : 1; /* Y_h, and Y_c for LSTM */
    for (int o = 0; o < c->nout && o <= nst; o++)
        s_rank(&c->out[o], GQ_F32, o ? 3 : 4);
    if (!x || x->rank != 3 ||
        gq_onnx_attr_str(c->n, "direction", "forward", dir, sizeof dir, e, sizeof e))
        return GQ_OK;
    if (w && w->rank == 3 && s_dne(w->dim[2], x->dim[2]))
        return s_fail(c, "%s has input size %lld, %s has %lld", s_idesc(c, 1, a, sizeof a),
                      (long long)w->dim[2].c, s_idesc(c, 0, b, sizeof b), (long long)x->dim[2].c);
    bool bf = gq_onnx_attr_int(c->n, "layout", 0) != 0;
    gq_onnx_dim_t T = x->dim[bf], B = x->dim[!bf], D = s_dk(!strcmp(dir, "bidirectional") ? 2 : 1),
                  H = s_du();
    const Onnx__AttributeProto *hs = gq_onnx_attr(c->n, "hidden_size");
    if (hs && hs->has_i)
        H = hs->i >= 1 ? s_dk(hs->i) : s_du();
    else if (r && r->rank == 3)
        H = r->dim[2];
    gq_onnx_dim_t y0[4] = {T, D, B, H}, y1[4] = {B, T, D, H}, h0[3] = {D, B, H}, h1[3] = {B, D, H};
    if (c->nout > 0)
        memcpy(c->out[0].dim, bf ? y1 : y0, sizeof y0);
    for (int o = 1; o < c->nout && o <= nst; o++)
        memcpy(c->out[o].dim, bf ? h1 : h0, sizeof h0);
    return GQ_OK;
}

/* ---- signal ---- */

static gq_status s_f_window(gq_onnx_shape_ctx_t *c)
{
    int64_t size;
    int n;
    s_rank(&c->out[0], gq_onnx_dtype((int32_t)gq_onnx_attr_int(c->n, "output_datatype", 1)), 1);
    if (gq_onnx_info_consts(s_in(c, 0), &size, 1, &n) && n == 1 && size >= 0)
        c->out[0].dim[0] = s_dk(size);
    return GQ_OK;
}

static gq_status s_f_mel(gq_onnx_shape_ctx_t *c)
{
    int64_t mels, len;
    int n1, n2;
    s_rank(&c->out[0], gq_onnx_dtype((int32_t)gq_onnx_attr_int(c->n, "output_datatype", 1)), 2);
    if (gq_onnx_info_consts(s_in(c, 0), &mels, 1, &n1) && n1 == 1 && mels >= 1 && mels <= 100000)
        c->out[0].dim[1] = s_dk(mels);
    if (gq_onnx_info_consts(s_in(c, 1), &len, 1, &n2) && n2 == 1 && len >= 1)
        c->out[0].dim[0] = s_dk(len / 2 + 1);
    return GQ_OK;
}

static gq_status s_f_dft(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0), *l = s_in(c, 1);
    int axis, n = 1;
    s_rank(&c->out[0], GQ_F32, x ? x->rank : -1);
    if (!x || x->rank < 3)
        return GQ_OK;
    if (c->opset >= 20) { /* axis: an input, counted over every dim, default -2 */
        int64_t a = -2;
        if ((s_in(c, 2) && (!gq_onnx_info_consts(s_in(c, 2), &a, 1, &n) || n != 1)) ||
            a < -x->rank || a > x->rank - 2 || a == -1)
            return GQ_OK;
        axis = (int)(a < 0 ? a + x->rank : a);
    } else if (!s_axis(gq_onnx_attr_int(c->n, "axis", 1), x->rank - 1, &axis) || axis == 0) {
        return GQ_OK;
    }
    memcpy(c->out[0].dim, x->dim, sizeof x->dim);
    int64_t len = s_isk(x->dim[axis]) ? x->dim[axis].c : -1;
    if (l && (!gq_onnx_info_consts(l, &len, 1, &n) || n != 1))
        len = -1;
    bool onesided = gq_onnx_attr_int(c->n, "onesided", 0) != 0;
    c->out[0].dim[axis] = len >= 1 ? s_dk(onesided ? len / 2 + 1 : len) : s_du();
    c->out[0].dim[x->rank - 1] = s_dk(2);
    return GQ_OK;
}

const gq_onnx_shape_t gq_onnx_shapes_nn[] = {
    {"AveragePool", s_f_pool},
    {"BlackmanWindow", s_f_window},
    {"Conv", s_f_conv},
    {"ConvTranspose", s_f_conv_transpose},
    {"DFT", s_f_dft},
    {"GRU", s_f_rnn},
    {"Gemm", s_f_gemm},
    {"GlobalAveragePool", s_f_global_pool},
    {"GlobalLpPool", s_f_global_pool},
    {"GlobalMaxPool", s_f_global_pool},
    {"HammingWindow", s_f_window},
    {"HannWindow", s_f_window},
    {"LSTM", s_f_rnn},
    {"LpPool", s_f_pool},
    {"MatMul", s_f_matmul},
    {"MaxPool", s_f_pool},
    {"MelWeightMatrix", s_f_mel},
    {"RNN", s_f_rnn},
    {"Resize", s_f_resize},
};
const int gq_onnx_shapes_nn_count = GQ_ONNX_COUNT(gq_onnx_shapes_nn);
