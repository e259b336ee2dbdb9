/* Shape functions of the network ops (the kernels of onnx_ops_conv.c, onnx_ops_nn.c,
 * onnx_ops_rnn.c, onnx_ops_dsp.c, onnx_ops_resize.c and onnx_ops_vision.c): the window
 * geometry of convolutions and pools, MatMul and Gemm, the recurrent ops, the signal ops,
 * Resize, and the vision ops (GridSample, AffineGrid, RoiAlign, MaxUnpool,
 * NonMaxSuppression). */
#include <math.h>
#include <string.h>

#include "onnx_shape.h"

/* Resize: the dims s_resize_shape (onnx_ops_resize.c) makes, from constant sizes or scales
 * given for the axes attribute's dims (every dim without it), keep_aspect_ratio_policy too. */
static gq_status s_f_resize(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0), *sv = s_in(c, 2), *zv = s_in(c, 3);
    gq_onnx_info_t *o = &c->out[0];
    int64_t sizes[GQ_MAX_DIMS], axes[GQ_MAX_DIMS];
    int ns, na, ax[GQ_MAX_DIMS];
    char kp[16], e[8];
    s_rank(o, x ? x->dtype : GQ_DTYPE_INVALID, x ? x->rank : -1);
    if (!x || x->rank < 0 || !s_attr_ints(c->n, "axes", axes, GQ_MAX_DIMS, &na) ||
        gq_onnx_attr_str(c->n, "keep_aspect_ratio_policy", "stretch", kp, sizeof kp, e, sizeof e))
        return GQ_OK;
    bool stretch = !strcmp(kp, "stretch"), larger = !strcmp(kp, "not_larger");
    for (int i = 0; na < 0 && i < x->rank; i++)
        axes[i] = i;
    na = na < 0 ? x->rank : na;
    for (int i = 0; i < na; i++)
        if (!s_axis(axes[i], x->rank, &ax[i]))
            return GQ_OK;
    for (int d = 0; d < x->rank; d++) /* dims outside axes keep theirs */
        o->dim[d] = x->dim[d];
    for (int i = 0; i < na; i++)
        o->dim[ax[i]] = s_du();
    gq_onnx_dim_t zn = zv ? gq_onnx_info_numel(zv) : s_dk(0),
                  sn = sv ? gq_onnx_info_numel(sv) : s_dk(0);
    if (!s_isk(zn) || !s_isk(sn))
        return GQ_OK;
    if (zn.c) {
        if (!gq_onnx_info_consts(zv, sizes, GQ_MAX_DIMS, &ns) || ns != na)
            return GQ_OK;
        double keep = larger ? INFINITY : 0;
        for (int i = 0; i < na; i++) {
            gq_onnx_dim_t xd = x->dim[ax[i]];
            if (stretch) {
                o->dim[ax[i]] = sizes[i] >= 0 ? s_dk(sizes[i]) : s_du();
                continue;
            }
            if (!s_isk(xd) || xd.c < 1 || sizes[i] < 0)
                return GQ_OK;
            double s = (double)sizes[i] / (double)xd.c;
            keep = larger ? fmin(keep, s) : fmax(keep, s);
        }
        for (int i = 0; i < na && !stretch && (larger || !strcmp(kp, "not_smaller")); i++) {
            double v = keep * (double)x->dim[ax[i]].c + 0.5;
            o->dim[ax[i]] = v < 0x1p62 ? s_dk((int64_t)v) : s_du();
        }
    } else if (sv && sn.c == na && sv->data && sv->dtype == GQ_F32) {
        for (int i = 0; i < na; i++) {
            gq_onnx_dim_t xd = x->dim[ax[i]];
            double s = ((const float *)sv->data)[i];
            double v = s_isk(xd) ? floor((double)xd.c * s) : -1;
            o->dim[ax[i]] = s == 1 ? xd : v >= 0 && v < 0x1p62 && s > 0 ? s_dk((int64_t)v) : s_du();
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
    int64_t o;
    int r = gq_onnx_window_dim(in, k, stride, dil, ap, ceil_mode, &pb, &pe, &o);
    return r ? r : o;
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

/* ---- vision ---- */

/* GridSample: [N, C] of X, then the grid's output dims. */
static gq_status s_f_grid_sample(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0), *g = s_in(c, 1);
    gq_onnx_info_t *o = &c->out[0];
    char a[160], b[160];
    s_rank(o, x ? x->dtype : GQ_DTYPE_INVALID, x && x->rank >= 0 ? x->rank : g ? g->rank : -1);
    if (!x || !g || x->rank < 3 || g->rank != x->rank)
        return GQ_OK;
    if (s_dne(g->dim[g->rank - 1], s_dk(x->rank - 2)))
        return s_fail(c, "%s does not give %d coordinates per point for %s",
                      s_idesc(c, 1, a, sizeof a), x->rank - 2, s_idesc(c, 0, b, sizeof b));
    o->dim[0] = x->dim[0], o->dim[1] = x->dim[1];
    for (int d = 2; d < x->rank; d++)
        o->dim[d] = g->dim[d - 1];
    return GQ_OK;
}

/* AffineGrid: [N, H, W, 2] or [N, D, H, W, 3] from size's values (else theta's N). */
static gq_status s_f_affine_grid(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *th = s_in(c, 0);
    gq_onnx_dim_t v[GQ_ONNX_MAXVAL];
    int n = 0;
    bool vals = gq_onnx_info_vals(s_in(c, 1), v, GQ_ONNX_MAXVAL, &n) && (n == 4 || n == 5);
    int k = vals ? n - 2
            : th && th->rank == 3 && s_isk(th->dim[1]) && (th->dim[1].c == 2 || th->dim[1].c == 3)
                ? (int)th->dim[1].c
                : -1;
    gq_onnx_info_t *o = &c->out[0];
    s_rank(o, th ? th->dtype : GQ_DTYPE_INVALID, k < 0 ? -1 : k + 2);
    if (k < 0)
        return GQ_OK;
    o->dim[0] = vals ? v[0] : th && th->rank == 3 ? th->dim[0] : s_du();
    for (int i = 0; vals && i < k; i++)
        o->dim[1 + i] = v[2 + i];
    o->dim[k + 1] = s_dk(k);
    return GQ_OK;
}

/* RoiAlign: [R, C, output_height, output_width]. */
static gq_status s_f_roi_align(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0), *r = s_in(c, 1), *bi = s_in(c, 2);
    gq_onnx_info_t *o = &c->out[0];
    int64_t hw[2] = {gq_onnx_attr_int(c->n, "output_height", 1),
                     gq_onnx_attr_int(c->n, "output_width", 1)};
    s_rank(o, x ? x->dtype : GQ_DTYPE_INVALID, 4);
    o->dim[0] = r && r->rank == 2 ? r->dim[0] : bi && bi->rank == 1 ? bi->dim[0] : s_du();
    o->dim[1] = x && x->rank == 4 ? x->dim[1] : s_du();
    for (int i = 0; i < 2; i++)
        o->dim[2 + i] = hw[i] >= 1 && hw[i] <= INT32_MAX ? s_dk(hw[i]) : s_du();
    return GQ_OK;
}

/* MaxUnpool: output_shape's values, else the unpooled dims of the attributes (the kernel's
 * rule: (in - 1) * stride - pads + kernel). */
static gq_status s_f_max_unpool(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0), *os = s_in(c, 2);
    gq_onnx_info_t *o = &c->out[0];
    s_rank(o, x ? x->dtype : GQ_DTYPE_INVALID, x ? x->rank : -1);
    if (!x || x->rank < 3)
        return GQ_OK;
    int k = x->rank - 2, n;
    o->dim[0] = x->dim[0], o->dim[1] = x->dim[1];
    if (os) {
        gq_onnx_dim_t v[GQ_ONNX_MAXVAL];
        if (gq_onnx_info_vals(os, v, GQ_ONNX_MAXVAL, &n) && n == x->rank)
            for (int d = 2; d < x->rank; d++)
                o->dim[d] = v[d];
        return GQ_OK;
    }
    int64_t ks[GQ_MAX_DIMS * 2], st[GQ_MAX_DIMS * 2], pads[GQ_MAX_DIMS * 2];
    if (!gq_onnx_shape_attr_k(c->n, "kernel_shape", k, -1, ks) ||
        !gq_onnx_shape_attr_k(c->n, "strides", k, 1, st) ||
        !gq_onnx_shape_attr_k(c->n, "pads", 2 * k, 0, pads))
        return GQ_OK;
    for (int d = 0; d < k; d++) {
        gq_onnx_dim_t in = x->dim[2 + d];
        bool ok = s_isk(in) && ks[d] >= 1 && st[d] >= 1 && pads[d] >= 0 && pads[d + k] >= 0 &&
                  ks[d] <= INT32_MAX && st[d] <= INT32_MAX && pads[d] <= INT32_MAX &&
                  pads[d + k] <= INT32_MAX && in.c >= 1 && in.c <= INT32_MAX;
        int64_t v = ok ? (in.c - 1) * st[d] - pads[d] - pads[d + k] + ks[d] : 0;
        o->dim[2 + d] = v >= 1 ? s_dk(v) : s_du();
    }
    return GQ_OK;
}

/* NonMaxSuppression: [selected, 3] (i64). */
static gq_status s_f_nms(gq_onnx_shape_ctx_t *c)
{
    s_rank(&c->out[0], GQ_I64, 2);
    c->out[0].dim[1] = s_dk(3);
    return GQ_OK;
}

const gq_onnx_shape_t gq_onnx_shapes_nn[] = {
    {"AffineGrid", s_f_affine_grid},
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
    {"GridSample", s_f_grid_sample},
    {"HammingWindow", s_f_window},
    {"HannWindow", s_f_window},
    {"LSTM", s_f_rnn},
    {"LpPool", s_f_pool},
    {"MatMul", s_f_matmul},
    {"MaxPool", s_f_pool},
    {"MaxUnpool", s_f_max_unpool},
    {"MelWeightMatrix", s_f_mel},
    {"NonMaxSuppression", s_f_nms},
    {"RNN", s_f_rnn},
    {"Resize", s_f_resize},
    {"RoiAlign", s_f_roi_align},
};
const int gq_onnx_shapes_nn_count = GQ_ONNX_COUNT(gq_onnx_shapes_nn);
