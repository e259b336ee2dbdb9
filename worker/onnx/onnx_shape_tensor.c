/* Shape functions of the shape and index families (the kernels of onnx_ops_shape.c and
 * onnx_ops_index.c): Reshape, Flatten, Transpose, Shape, Size, (Un)Squeeze, Concat, Constant,
 * Expand, Tile, Slice, Split, Pad, Range, the Gathers, OneHot and the like; and CenterCropPad,
 * Unique and Det (onnx_ops_vision.c). They carry the values of small integer tensors, which is
 * how shape arithmetic resolves. */
#include <math.h>
#include <string.h>

#include "onnx_shape.h"

static gq_status s_f_reshape(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0), *s = s_in(c, 1);
    gq_onnx_info_t *o = &c->out[0];
    gq_onnx_dim_t v[GQ_ONNX_MAXVAL], known = s_dk(1);
    int n, infer = -1;
    s_rank(o, x ? x->dtype : GQ_DTYPE_INVALID, -1);
    if (!x || !s || s->dtype != GQ_I64 || s->rank != 1)
        return GQ_OK;
    if (!gq_onnx_info_vals(s, v, GQ_MAX_DIMS, &n)) {
        if (s_isk(s->dim[0]) && s->dim[0].c <= GQ_MAX_DIMS)
            o->rank = (int)s->dim[0].c;
        return GQ_OK;
    }
    bool allowzero = gq_onnx_attr_int(c->n, "allowzero", 0) != 0;
    for (int i = 0; i < n; i++) {
        gq_onnx_dim_t d = v[i];
        if (s_isk(d) && d.c == 0 && !allowzero) {
            if (x->rank >= 0 && i >= x->rank)
                return GQ_OK;
            d = x->rank >= 0 ? x->dim[i] : s_du();
        } else if (s_isk(d) && d.c == -1) {
            if (infer >= 0)
                return GQ_OK;
            infer = i;
            continue;
        } else if (s_isk(d) && d.c < 0) {
            return GQ_OK;
        }
        o->dim[i] = d;
        known = gq_onnx_dim_mul(known, d);
    }
    o->rank = n;
    gq_onnx_dim_t total = gq_onnx_info_numel(x);
    char a[160], b[128];
    if (infer >= 0) {
        if (s_isk(total) && s_isk(known) && (known.c == 0 || total.c % known.c))
            return s_fail(c, "%s cannot take the shape %s: %lld elements over %lld",
                          s_idesc(c, 0, a, sizeof a), gq_onnx_info_str(o, c->syms, b, sizeof b),
                          (long long)total.c, (long long)known.c);
        o->dim[infer] = gq_onnx_dim_div(total, known);
    } else if (s_dne(total, known)) {
        return s_fail(c, "%s holds %lld elements, input 1 '%s' asks for %s (%lld)",
                      s_idesc(c, 0, a, sizeof a), (long long)total.c, s_iname(c, 1),
                      gq_onnx_info_str(o, c->syms, b, sizeof b), (long long)known.c);
    }
    if (x->nval >= 0) {
        o->nval = x->nval;
        memcpy(o->val, x->val, sizeof o->val);
    }
    return GQ_OK;
}

static gq_status s_f_flatten(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    gq_onnx_info_t *o = &c->out[0];
    int64_t axis = gq_onnx_attr_int(c->n, "axis", 1);
    s_f_ident(c);
    o->rank = -1;
    if (!x || x->rank < 0)
        return GQ_OK;
    if (axis < 0)
        axis += x->rank;
    if (axis < 0 || axis > x->rank) {
        o->nval = -1;
        return GQ_OK;
    }
    o->rank = 2;
    o->dim[0] = o->dim[1] = s_dk(1);
    for (int d = 0; d < x->rank; d++)
        o->dim[d < axis ? 0 : 1] = gq_onnx_dim_mul(o->dim[d < axis ? 0 : 1], x->dim[d]);
    return GQ_OK;
}

static gq_status s_f_transpose(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    const Onnx__AttributeProto *pa = gq_onnx_attr(c->n, "perm");
    bool seen[GQ_MAX_DIMS] = {false};
    s_rank(&c->out[0], x ? x->dtype : GQ_DTYPE_INVALID, -1);
    if (!x || x->rank < 0 || (pa && (int)pa->n_ints != x->rank))
        return GQ_OK;
    for (int i = 0; i < x->rank; i++) {
        int64_t q = pa ? pa->ints[i] : x->rank - 1 - i;
        if (q < 0 || q >= x->rank || seen[q])
            return GQ_OK;
        seen[q] = true;
        c->out[0].dim[i] = x->dim[q];
    }
    c->out[0].rank = x->rank;
    return GQ_OK;
}

static gq_status s_f_shape(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    gq_onnx_info_t *o = &c->out[0];
    s_rank(o, GQ_I64, 1);
    if (!x || x->rank < 0)
        return GQ_OK;
    int64_t r = x->rank, start = c->opset >= 15 ? gq_onnx_attr_int(c->n, "start", 0) : 0;
    int64_t end = c->opset >= 15 ? gq_onnx_attr_int(c->n, "end", r) : r;
    start += start < 0 ? r : 0;
    end += end < 0 ? r : 0;
    start = start < 0 ? 0 : start > r ? r : start;
    end = end < start ? start : end > r ? r : end;
    o->dim[0] = s_dk(end - start);
    o->nval = (int)(end - start);
    for (int64_t i = start; i < end; i++)
        o->val[i - start] = x->dim[i];
    return GQ_OK;
}

static gq_status s_f_size(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    s_rank(&c->out[0], GQ_I64, 0);
    if (x && x->rank >= 0) {
        c->out[0].nval = 1;
        c->out[0].val[0] = gq_onnx_info_numel(x);
    }
    return GQ_OK;
}

/* Unsqueeze/Squeeze axes: the attribute before opset 13, an i64 input after; -1 when they
 * are not known, 0 when there are none. */
static int s_sq_axes(gq_onnx_shape_ctx_t *c, int64_t *axes)
{
    int k = 0;
    if (c->opset >= 13) {
        const gq_onnx_info_t *a = s_in(c, 1);
        if (!a)
            return 0;
        return a->dtype == GQ_I64 && gq_onnx_info_consts(a, axes, GQ_MAX_DIMS, &k) ? k : -1;
    }
    const Onnx__AttributeProto *at = gq_onnx_attr(c->n, "axes");
    if (!at)
        return 0;
    if (at->n_ints > GQ_MAX_DIMS)
        return -1;
    GQ_ONNX_COPY(axes, at->ints, at->n_ints * sizeof *axes);
    return (int)at->n_ints;
}

static gq_status s_f_unsqueeze(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    gq_onnx_info_t *o = &c->out[0];
    int64_t axes[GQ_MAX_DIMS];
    int k = s_sq_axes(c, axes);
    bool ins[GQ_MAX_DIMS] = {false};
    s_f_ident(c);
    o->rank = -1;
    if (!x || x->rank < 0 || k <= 0 || x->rank + k > GQ_MAX_DIMS) {
        o->nval = -1;
        return GQ_OK;
    }
    int nd = x->rank + k, a;
    for (int i = 0; i < k; i++) {
        if (!s_axis(axes[i], nd, &a) || ins[a]) {
            o->nval = -1;
            return GQ_OK;
        }
        ins[a] = true;
    }
    for (int i = 0, j = 0; i < nd; i++)
        o->dim[i] = ins[i] ? s_dk(1) : x->dim[j++];
    o->rank = nd;
    return GQ_OK;
}

static gq_status s_f_squeeze(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    gq_onnx_info_t *o = &c->out[0];
    int64_t axes[GQ_MAX_DIMS];
    int k = s_sq_axes(c, axes), a;
    bool drop[GQ_MAX_DIMS] = {false};
    s_f_ident(c);
    o->rank = -1;
    if (!x || x->rank < 0 || k < 0) {
        o->nval = -1;
        return GQ_OK;
    }
    for (int i = 0; i < k; i++) {
        if (!s_axis(axes[i], x->rank, &a)) {
            o->nval = -1;
            return GQ_OK;
        }
        drop[a] = true;
    }
    int nd = 0;
    for (int d = 0; d < x->rank; d++) {
        if (!k && !s_isk(x->dim[d])) { /* a symbol may be 1 at run time */
            o->nval = -1;
            return GQ_OK;
        }
        if (!(k ? drop[d] : x->dim[d].c == 1))
            o->dim[nd++] = x->dim[d];
    }
    o->rank = nd;
    return GQ_OK;
}

static gq_status s_f_concat(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x0 = s_in(c, 0);
    gq_onnx_info_t *o = &c->out[0];
    int axis;
    s_rank(o, x0 ? x0->dtype : GQ_DTYPE_INVALID, -1);
    if (!x0 || x0->rank < 0 || !s_axis(gq_onnx_attr_int(c->n, "axis", 0), x0->rank, &axis))
        return GQ_OK;
    bool ranks = true, vals = x0->rank == 1;
    for (int i = 0; i < c->nin; i++) {
        const gq_onnx_info_t *x = c->in[i];
        char a[160], b[160];
        if (!x || x->rank < 0) {
            ranks = vals = false;
            continue;
        }
        if (x->rank != x0->rank)
            return s_fail(c, "%s does not have the rank of %s", s_idesc(c, i, a, sizeof a),
                          s_idesc(c, 0, b, sizeof b));
        for (int d = 0; d < x->rank; d++)
            if (d != axis && s_dne(x->dim[d], x0->dim[d]))
                return s_fail(c, "%s does not match %s off axis %d", s_idesc(c, i, a, sizeof a),
                              s_idesc(c, 0, b, sizeof b), axis);
        vals = vals && x->nval >= 0;
    }
    if (!ranks)
        return GQ_OK;
    o->rank = x0->rank;
    for (int d = 0; d < o->rank; d++) {
        o->dim[d] = d == axis ? s_dk(0) : x0->dim[d];
        for (int i = 0; i < c->nin; i++)
            if (d == axis)
                o->dim[d] = gq_onnx_dim_add(o->dim[d], c->in[i]->dim[d], 1);
            else if (!s_isk(o->dim[d]) && s_isk(c->in[i]->dim[d]))
                o->dim[d] = c->in[i]->dim[d];
    }
    int nv = 0;
    for (int i = 0; vals && i < c->nin; i++) {
        if (nv + c->in[i]->nval > GQ_ONNX_MAXVAL) {
            vals = false;
            break;
        }
        memcpy(o->val + nv, c->in[i]->val, (size_t)c->in[i]->nval * sizeof *o->val);
        nv += c->in[i]->nval;
    }
    o->nval = vals ? nv : -1;
    return GQ_OK;
}

static gq_status s_f_constant(gq_onnx_shape_ctx_t *c)
{
    const Onnx__AttributeProto *a,
        *f = gq_onnx_attr(c->n, "value_float"), *fs = gq_onnx_attr(c->n, "value_floats"),
        *i = gq_onnx_attr(c->n, "value_int"), *is = gq_onnx_attr(c->n, "value_ints");
    gq_onnx_info_t *o = &c->out[0];
    s_unk(o);
    if ((a = gq_onnx_attr(c->n, "value")) && a->t) {
        const Onnx__TensorProto *t = a->t;
        if (t->n_dims > GQ_MAX_DIMS || !t->has_data_type)
            return GQ_OK;
        s_rank(o, gq_onnx_dtype(t->data_type), (int)t->n_dims);
        for (size_t d = 0; d < t->n_dims; d++)
            o->dim[d] = t->dims[d] >= 0 ? s_dk(t->dims[d]) : s_du();
    } else if (f || fs) {
        s_rank(o, GQ_F32, fs ? 1 : 0);
        o->dim[0] = s_dk(fs ? (int64_t)fs->n_floats : 0);
    } else if (i || is) {
        s_rank(o, GQ_I64, is ? 1 : 0);
        o->dim[0] = s_dk(is ? (int64_t)is->n_ints : 0);
    }
    return GQ_OK;
}

static gq_status s_f_expand(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0), *s = s_in(c, 1);
    gq_onnx_info_t want;
    gq_onnx_dim_t v[GQ_MAX_DIMS];
    int n;
    s_rank(&c->out[0], x ? x->dtype : GQ_DTYPE_INVALID, -1);
    if (!x || !s || !gq_onnx_info_vals(s, v, GQ_MAX_DIMS, &n))
        return GQ_OK;
    s_rank(&want, GQ_I64, n);
    memcpy(want.dim, v, (size_t)n * sizeof *v);
    gq_onnx_info_t acc;
    s_type(&acc, x);
    char e[8];
    /* a shape that does not broadcast: the kernel says so at run time */
    gq_onnx_shape_ctx_t quiet = *c;
    quiet.err = e, quiet.errlen = sizeof e;
    if (gq_onnx_shape_bcast(&quiet, &acc, &want, 1, 0) == GQ_OK) {
        c->out[0].rank = acc.rank;
        memcpy(c->out[0].dim, acc.dim, sizeof acc.dim);
    }
    return GQ_OK;
}

static gq_status s_f_tile(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    gq_onnx_dim_t v[GQ_MAX_DIMS];
    int n;
    s_rank(&c->out[0], x ? x->dtype : GQ_DTYPE_INVALID, x ? x->rank : -1);
    if (!x || x->rank < 0 || !gq_onnx_info_vals(s_in(c, 1), v, GQ_MAX_DIMS, &n) || n != x->rank)
        return GQ_OK;
    for (int d = 0; d < n; d++)
        c->out[0].dim[d] = v[d].sym || v[d].c >= 0 ? gq_onnx_dim_mul(x->dim[d], v[d]) : s_du();
    return GQ_OK;
}

static gq_status s_f_slice(gq_onnx_shape_ctx_t *c)
{
    static const char *names[3] = {"starts", "ends", "axes"};
    const gq_onnx_info_t *x = s_in(c, 0);
    gq_onnx_info_t *o = &c->out[0];
    int64_t v[4][GQ_MAX_DIMS];
    int got[4] = {-1, -1, -1, -1};
    bool seen[GQ_MAX_DIMS] = {false};
    s_rank(o, x ? x->dtype : GQ_DTYPE_INVALID, x ? x->rank : -1);
    if (!x || x->rank < 0)
        return GQ_OK;
    for (int a = 0; a < 4; a++) {
        if (c->opset < 10) {
            if (a < 3 && !s_attr_ints(c->n, names[a], v[a], GQ_MAX_DIMS, &got[a]))
                return GQ_OK;
        } else if (s_in(c, a + 1) &&
                   !gq_onnx_info_consts(c->in[a + 1], v[a], GQ_MAX_DIMS, &got[a])) {
            return GQ_OK;
        }
    }
    int k = got[0];
    if (k < 0 || got[1] != k || (got[2] >= 0 && got[2] != k) || (got[3] >= 0 && got[3] != k))
        return GQ_OK;
    memcpy(o->dim, x->dim, sizeof o->dim);
    int64_t first = 0, step = 1; /* of axis 0, for the values */
    for (int i = 0; i < k; i++) {
        int ax;
        int64_t s = got[3] >= 0 ? v[3][i] : 1;
        if (!s_axis(got[2] >= 0 ? v[2][i] : i, x->rank, &ax) || seen[ax] || s == 0) {
            o->rank = -1;
            return GQ_OK;
        }
        seen[ax] = true;
        gq_onnx_dim_t dim = x->dim[ax];
        if (!s_isk(dim)) { /* [0:big] with step 1 keeps a symbolic dim whole */
            o->dim[ax] = v[0][i] == 0 && v[1][i] >= INT32_MAX && s == 1 ? dim : s_du();
            continue;
        }
        int64_t b = v[0][i] < 0 ? v[0][i] + dim.c : v[0][i];
        int64_t e = v[1][i] < 0 ? v[1][i] + dim.c : v[1][i];
        b = s > 0 ? (b < 0       ? 0
                     : b > dim.c ? dim.c
                                 : b)
                  : (b < 0           ? 0
                     : b > dim.c - 1 ? dim.c - 1
                                     : b);
        e = s > 0 ? (e < 0       ? 0
                     : e > dim.c ? dim.c
                                 : e)
                  : (e < -1          ? -1
                     : e > dim.c - 1 ? dim.c - 1
                                     : e);
        int64_t len = s > 0   ? (e > b ? (e - b - 1) / s + 1 : 0)
                      : b > e ? (s == INT64_MIN ? 1 : (b - e - 1) / -s + 1)
                              : 0; /* the kernel's ceil((e - b) / s), without overflow */
        o->dim[ax] = s_dk(len);
        if (ax == 0)
            first = b, step = s;
    }
    if (x->nval >= 0 && x->rank == 1 && s_isk(x->dim[0]) && x->nval == x->dim[0].c &&
        s_isk(o->dim[0])) {
        o->nval = (int)o->dim[0].c;
        for (int i = 0; i < o->nval; i++)
            o->val[i] = x->val[first + i * step];
    }
    return GQ_OK;
}

static gq_status s_f_gather(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0), *id = s_in(c, 1);
    gq_onnx_info_t *o = &c->out[0];
    int axis;
    s_rank(o, x ? x->dtype : GQ_DTYPE_INVALID, -1);
    if (!x || !id || x->rank < 0 || id->rank < 0 || x->rank - 1 + id->rank > GQ_MAX_DIMS ||
        !s_axis(gq_onnx_attr_int(c->n, "axis", 0), x->rank, &axis))
        return GQ_OK;
    o->rank = 0;
    for (int d = 0; d < x->rank; d++)
        if (d == axis)
            for (int j = 0; j < id->rank; j++)
                o->dim[o->rank++] = id->dim[j];
        else
            o->dim[o->rank++] = x->dim[d];
    int64_t q[GQ_ONNX_MAXVAL];
    int nq;
    if (x->nval >= 0 && x->rank == 1 && gq_onnx_info_consts(id, q, GQ_ONNX_MAXVAL, &nq)) {
        for (int i = 0; i < nq; i++) {
            if (q[i] < -x->nval || q[i] >= x->nval)
                return GQ_OK;
            o->val[i] = x->val[q[i] < 0 ? q[i] + x->nval : q[i]];
        }
        o->nval = nq;
    }
    return GQ_OK;
}

static gq_status s_f_gather_elements(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    s_type(&c->out[0], s_in(c, 1));
    c->out[0].dtype = x ? x->dtype : GQ_DTYPE_INVALID;
    return GQ_OK;
}

static gq_status s_f_split(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    int64_t parts[GQ_ONNX_MAXVAL];
    int np = -1, axis;
    for (int o = 0; o < c->nout; o++)
        s_type(&c->out[o], x);
    if (!x || x->rank < 0 || !s_axis(gq_onnx_attr_int(c->n, "axis", 0), x->rank, &axis))
        goto unknown;
    if (c->opset < 13 ? !s_attr_ints(c->n, "split", parts, GQ_ONNX_MAXVAL, &np)
                      : s_in(c, 1) && !gq_onnx_info_consts(c->in[1], parts, GQ_ONNX_MAXVAL, &np))
        goto unknown;
    gq_onnx_dim_t dim = x->dim[axis];
    if (np < 0) {
        if (!s_isk(dim) || c->nout > GQ_ONNX_MAXVAL)
            goto unknown;
        int64_t each = (dim.c + c->nout - 1) / c->nout;
        for (int i = 0; i < c->nout; i++)
            parts[i] =
                dim.c - each * i < each ? (dim.c - each * i > 0 ? dim.c - each * i : 0) : each;
        np = c->nout;
    }
    if (np != c->nout)
        goto unknown;
    for (int o = 0; o < c->nout; o++)
        c->out[o].dim[axis] = parts[o] >= 0 ? s_dk(parts[o]) : s_du();
    return GQ_OK;
unknown:
    for (int o = 0; o < c->nout && x && x->rank >= 0; o++)
        for (int d = 0; d < x->rank; d++)
            c->out[o].dim[d] = s_du();
    return GQ_OK;
}

static gq_status s_f_pad(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    int64_t pads[2 * GQ_MAX_DIMS];
    int np = -1;
    s_rank(&c->out[0], x ? x->dtype : GQ_DTYPE_INVALID, x ? x->rank : -1);
    if (!x || x->rank < 0)
        return GQ_OK;
    bool got =
        c->opset < 11
            ? s_attr_ints(c->n, c->opset < 2 ? "paddings" : "pads", pads, 2 * GQ_MAX_DIMS, &np)
            : gq_onnx_info_consts(s_in(c, 1), pads, 2 * GQ_MAX_DIMS, &np) && !s_in(c, 3);
    if (!got || np != 2 * x->rank)
        return GQ_OK;
    for (int d = 0; d < x->rank; d++) {
        int64_t add;
        c->out[0].dim[d] = __builtin_add_overflow(pads[d], pads[d + x->rank], &add)
                               ? s_du()
                               : gq_onnx_dim_add(x->dim[d], s_dk(add), 1);
    }
    return GQ_OK;
}

static gq_status s_f_const_of_shape(gq_onnx_shape_ctx_t *c)
{
    const Onnx__AttributeProto *a = gq_onnx_attr(c->n, "value");
    gq_onnx_dim_t v[GQ_MAX_DIMS];
    int n;
    gq_dtype_t dt = a && a->t
                        ? (a->t->has_data_type ? gq_onnx_dtype(a->t->data_type) : GQ_DTYPE_INVALID)
                        : GQ_F32;
    s_rank(&c->out[0], dt, -1);
    if (!gq_onnx_info_vals(s_in(c, 0), v, GQ_MAX_DIMS, &n))
        return GQ_OK;
    c->out[0].rank = n;
    for (int d = 0; d < n; d++)
        c->out[0].dim[d] = v[d].sym || v[d].c >= 0 ? v[d] : s_du();
    return GQ_OK;
}

static gq_status s_f_range(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    double s, l, d;
    s_rank(&c->out[0], x ? x->dtype : GQ_DTYPE_INVALID, 1);
    if (!x || !gq_onnx_info_scalar(x, &s) || !gq_onnx_info_scalar(s_in(c, 1), &l) ||
        !gq_onnx_info_scalar(s_in(c, 2), &d) || c->in[1]->dtype != x->dtype ||
        c->in[2]->dtype != x->dtype || x->dtype == GQ_BOOL)
        return GQ_OK;
    double cnt = d == 0 ? -1 : ceil((l - s) / d);
    if (d != 0 && cnt <= 1e12)
        c->out[0].dim[0] = s_dk(cnt > 0 ? (int64_t)cnt : 0);
    return GQ_OK;
}

static gq_status s_f_space_depth(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    int64_t b = gq_onnx_attr_int(c->n, "blocksize", 0);
    bool to_space = !strcmp(c->n->op_type, "DepthToSpace");
    s_rank(&c->out[0], x ? x->dtype : GQ_DTYPE_INVALID, 4);
    if (!x || x->rank != 4 || b < 1)
        return GQ_OK;
    gq_onnx_dim_t bb = s_dk(b), b2 = s_dk(b * b);
    c->out[0].dim[0] = x->dim[0];
    c->out[0].dim[1] = to_space ? gq_onnx_dim_div(x->dim[1], b2) : gq_onnx_dim_mul(x->dim[1], b2);
    for (int d = 2; d < 4; d++)
        c->out[0].dim[d] =
            to_space ? gq_onnx_dim_mul(x->dim[d], bb) : gq_onnx_dim_div(x->dim[d], bb);
    return GQ_OK;
}

static gq_status s_f_gather_nd(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0), *id = s_in(c, 1);
    int64_t bd = gq_onnx_attr_int(c->n, "batch_dims", 0);
    s_rank(&c->out[0], x ? x->dtype : GQ_DTYPE_INVALID, -1);
    if (!x || !id || x->rank < 0 || id->rank < 1 || !s_isk(id->dim[id->rank - 1]))
        return GQ_OK;
    int64_t k = id->dim[id->rank - 1].c;
    if (bd < 0 || bd >= id->rank || k < 1 || bd + k > x->rank ||
        id->rank - 1 + x->rank - bd - k > GQ_MAX_DIMS)
        return GQ_OK;
    gq_onnx_info_t *o = &c->out[0];
    o->rank = 0;
    for (int d = 0; d < id->rank - 1; d++)
        o->dim[o->rank++] = id->dim[d];
    for (int d = (int)(bd + k); d < x->rank; d++)
        o->dim[o->rank++] = x->dim[d];
    return GQ_OK;
}

static gq_status s_f_compress(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    const Onnx__AttributeProto *aa = gq_onnx_attr(c->n, "axis");
    int axis;
    s_rank(&c->out[0], x ? x->dtype : GQ_DTYPE_INVALID, aa ? -1 : 1);
    if (aa && x && x->rank >= 0 && s_axis(aa->i, x->rank, &axis)) {
        s_type(&c->out[0], x);
        c->out[0].dim[axis] = s_du();
    }
    return GQ_OK;
}

static gq_status s_f_nonzero(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    s_rank(&c->out[0], GQ_I64, 2);
    if (x && x->rank >= 0)
        c->out[0].dim[0] = s_dk(x->rank);
    return GQ_OK;
}

static gq_status s_f_onehot(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *id = s_in(c, 0), *vals = s_in(c, 2);
    double depth = 0;
    int axis;
    s_rank(&c->out[0], vals ? vals->dtype : GQ_DTYPE_INVALID, -1);
    if (!id || id->rank < 0 || id->rank + 1 > GQ_MAX_DIMS ||
        !s_axis(gq_onnx_attr_int(c->n, "axis", -1), id->rank + 1, &axis))
        return GQ_OK;
    gq_onnx_info_t *o = &c->out[0];
    o->rank = id->rank + 1;
    bool known = gq_onnx_info_scalar(s_in(c, 1), &depth) && depth >= 1 && depth < 0x1p62;
    for (int d = 0, s = 0; d < o->rank; d++)
        o->dim[d] = d == axis ? (known ? s_dk((int64_t)depth) : s_du()) : id->dim[s++];
    return GQ_OK;
}

/* CenterCropPad: X's dims, those of the axes (every dim without the attribute) shape's. */
static gq_status s_f_center_crop_pad(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    gq_onnx_info_t *o = &c->out[0];
    gq_onnx_dim_t v[GQ_ONNX_MAXVAL];
    int64_t axes[GQ_MAX_DIMS];
    int na, nv, ax;
    s_type(o, x);
    if (!x || x->rank < 0 || !s_attr_ints(c->n, "axes", axes, GQ_MAX_DIMS, &na))
        return GQ_OK;
    for (int i = 0; na < 0 && i < x->rank; i++)
        axes[i] = i;
    na = na < 0 ? x->rank : na;
    bool vals = gq_onnx_info_vals(s_in(c, 1), v, GQ_ONNX_MAXVAL, &nv) && nv == na;
    for (int i = 0; i < na; i++) {
        if (!s_axis(axes[i], x->rank, &ax))
            return GQ_OK;
        o->dim[ax] = vals ? v[i] : s_du();
    }
    return GQ_OK;
}

/* Det: X's dims but the last two (the matrices). */
static gq_status s_f_det(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    s_type(&c->out[0], x);
    c->out[0].rank = x && x->rank >= 2 ? x->rank - 2 : -1;
    return GQ_OK;
}

/* Unique: Y has X's dims but along axis (rank 1 without it: the elements), as many as are
 * distinct; indices and counts as many; inverse_indices one per element (slice) of X. */
static gq_status s_f_unique(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    const Onnx__AttributeProto *aa = gq_onnx_attr(c->n, "axis");
    int axis = -1;
    bool ok = x && x->rank >= 0 && (!aa || s_axis(aa->i, x->rank, &axis));
    s_rank(&c->out[0], x ? x->dtype : GQ_DTYPE_INVALID, !ok ? -1 : aa ? x->rank : 1);
    for (int d = 0; ok && aa && d < x->rank; d++)
        c->out[0].dim[d] = d == axis ? s_du() : x->dim[d];
    for (int o = 1; o < c->nout && o < 4; o++)
        s_rank(&c->out[o], GQ_I64, 1);
    if (c->nout > 2 && ok)
        c->out[2].dim[0] = aa ? x->dim[axis] : gq_onnx_info_numel(x);
    return GQ_OK;
}

const gq_onnx_shape_t gq_onnx_shapes_tensor[] = {
    {"CenterCropPad", s_f_center_crop_pad},
    {"Compress", s_f_compress},
    {"Concat", s_f_concat},
    {"Constant", s_f_constant},
    {"ConstantOfShape", s_f_const_of_shape},
    {"DepthToSpace", s_f_space_depth},
    {"Det", s_f_det},
    {"Expand", s_f_expand},
    {"Flatten", s_f_flatten},
    {"Gather", s_f_gather},
    {"GatherElements", s_f_gather_elements},
    {"GatherND", s_f_gather_nd},
    {"NonZero", s_f_nonzero},
    {"OneHot", s_f_onehot},
    {"Pad", s_f_pad},
    {"Range", s_f_range},
    {"Reshape", s_f_reshape},
    {"Shape", s_f_shape},
    {"Size", s_f_size},
    {"Slice", s_f_slice},
    {"SpaceToDepth", s_f_space_depth},
    {"Split", s_f_split},
    {"Squeeze", s_f_squeeze},
    {"Tile", s_f_tile},
    {"Transpose", s_f_transpose},
    {"Unique", s_f_unique},
    {"Unsqueeze", s_f_unsqueeze},
};
const int gq_onnx_shapes_tensor_count = GQ_ONNX_COUNT(gq_onnx_shapes_tensor);
