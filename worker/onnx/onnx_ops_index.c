/* ONNX kernels that select, repeat or make index data, for any dtype (bytes are moved, not
 * interpreted): Slice, Gather, GatherElements, Expand, Tile, Pad, Split, ConstantOfShape,
 * Range, Size. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"
#include "optable.h"
#include "util.h"

/* Row-major element strides of d. */
static void s_strides(const gq_tdesc_t *d, int64_t *st)
{
    int64_t acc = 1;
    for (int i = d->ndim - 1; i >= 0; i--)
        st[i] = acc, acc *= d->shape[i];
}

/* ---- Slice ---- */

/* starts/ends/axes/steps from attributes (< 10) or inputs 1..4 (>= 10); *n values each. */
static gq_status s_slice_args(const Onnx__NodeProto *node, int opset, gq_onnx_val_t *const *in,
                              int nin, int64_t v[4][GQ_MAX_DIMS], int *n, char *err, size_t errlen)
{
    static const char *names[4] = {"starts", "ends", "axes", "steps"};
    int got[4] = {-1, -1, -1, -1};
    gq_status rc = GQ_OK;
    for (int a = 0; a < 4 && !rc; a++) {
        if (opset < 10)
            rc = a < 3 ? gq_onnx_attr_ints(node, names[a], v[a], GQ_MAX_DIMS, &got[a], err, errlen)
                       : GQ_OK;
        else if (a + 1 < nin && in[a + 1])
            rc = gq_onnx_ints(in[a + 1], names[a], v[a], GQ_MAX_DIMS, &got[a], err, errlen);
    }
    if (rc)
        return rc;
    if (got[0] < 0 || got[1] != got[0] || (got[2] >= 0 && got[2] != got[0]) ||
        (got[3] >= 0 && got[3] != got[0])) {
        gq_errf(err, errlen, "starts, ends, axes, steps have %d, %d, %d, %d values", got[0], got[1],
                got[2], got[3]);
        return GQ_EPARAM;
    }
    *n = got[0];
    for (int i = 0; i < *n; i++) {
        if (got[2] < 0)
            v[2][i] = i;
        if (got[3] < 0)
            v[3][i] = 1;
    }
    return GQ_OK;
}

static int64_t s_clampi(int64_t x, int64_t lo, int64_t hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

static gq_status s_slice(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                         gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout;
    int64_t v[4][GQ_MAX_DIMS];
    int k;
    gq_status rc = gq_onnx_need(in, nin, opset < 10 ? 1 : 3, err, errlen);
    if (rc || (rc = s_slice_args(n, opset, in, nin, v, &k, err, errlen)))
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    gq_tdesc_t od = *x;
    int64_t xs[GQ_MAX_DIMS] = {0}, st[GQ_MAX_DIMS], base = 0;
    bool seen[GQ_MAX_DIMS] = {false};
    s_strides(x, xs);
    memcpy(st, xs, sizeof st);
    for (int i = 0; i < k; i++) {
        int64_t ax, dim, s = v[3][i];
        if ((rc = gq_onnx_axis(v[2][i], x->ndim, &ax, err, errlen)))
            return rc;
        if (seen[ax] || s == 0) {
            gq_errf(err, errlen, "axis %lld repeated or step 0", (long long)ax);
            return GQ_EPARAM;
        }
        seen[ax] = true;
        dim = x->shape[ax];
        int64_t b = v[0][i] < 0 ? v[0][i] + dim : v[0][i];
        int64_t e = v[1][i] < 0 ? v[1][i] + dim : v[1][i];
        b = s > 0 ? s_clampi(b, 0, dim) : s_clampi(b, 0, dim - 1);
        e = s > 0 ? s_clampi(e, 0, dim) : s_clampi(e, -1, dim - 1);
        /* In unsigned arithmetic: a model may give any step, INT64_MIN included. */
        uint64_t as = s > 0 ? (uint64_t)s : -(uint64_t)s;
        int64_t span = s > 0 ? e - b : b - e;
        int64_t len = span > 0 ? (int64_t)(((uint64_t)span - 1) / as + 1) : 0;
        od.shape[ax] = len;
        base += (len ? b : 0) * xs[ax];
        st[ax] = len > 1 ? xs[ax] * s : 0; /* |s| < dim when two elements are taken */
    }
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    gq_onnx_strided_copy(&od, gq_dtype_size(x->dtype), in[0]->data, base, st, out->data);
    return GQ_OK;
}

/* ---- Gather ---- */

static gq_status s_gather(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                          gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *x = &in[0]->desc, *id = &in[1]->desc;
    int64_t axis;
    if ((rc = gq_onnx_axis(gq_onnx_attr_int(n, "axis", 0), x->ndim, &axis, err, errlen)))
        return rc;
    if (id->dtype != GQ_I32 && id->dtype != GQ_I64) {
        gq_errf(err, errlen, "indices are %s, want i32 or i64", gq_dtype_name(id->dtype));
        return GQ_EDTYPE;
    }
    if (x->ndim - 1 + id->ndim > GQ_MAX_DIMS) {
        gq_errf(err, errlen, "result has more than %d dims", GQ_MAX_DIMS);
        return GQ_ESHAPE;
    }
    gq_tdesc_t od = {.dtype = x->dtype};
    int64_t outer = 1, inner = 1, dim = x->shape[axis], ni = gq_tdesc_numel(id);
    for (int d = 0; d < x->ndim; d++) {
        if (d == axis)
            for (int j = 0; j < id->ndim; j++)
                od.shape[od.ndim++] = id->shape[j];
        else
            od.shape[od.ndim++] = x->shape[d];
        if (d < axis)
            outer *= x->shape[d];
        else if (d > axis)
            inner *= x->shape[d];
    }
    for (int64_t i = 0; i < ni; i++) {
        int64_t q = gq_onnx_geti(in[1]->data, id->dtype, i);
        if (q < -dim || q >= dim) {
            gq_errf(err, errlen, "index %lld is out of range for dim %lld of size %lld",
                    (long long)q, (long long)axis, (long long)dim);
            return GQ_EPARAM;
        }
    }
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    size_t chunk = (size_t)inner * gq_dtype_size(x->dtype);
    const char *src = in[0]->data;
    char *dst = out->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < ni; i++) {
            int64_t q = gq_onnx_geti(in[1]->data, id->dtype, i);
            q = q < 0 ? q + dim : q;
            GQ_ONNX_COPY(dst, src + (size_t)(o * dim + q) * chunk, chunk);
            dst += chunk;
        }
    return GQ_OK;
}

/* GatherElements: out[i] = x[i with i[axis] = indices[i]]; indices' shape is the output's. */
static gq_status s_gather_elements(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                                   int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *x = &in[0]->desc, *id = &in[1]->desc;
    int64_t axis, xs[GQ_MAX_DIMS], idx[GQ_MAX_DIMS] = {0};
    if ((rc = gq_onnx_axis(gq_onnx_attr_int(n, "axis", 0), x->ndim, &axis, err, errlen)))
        return rc;
    if ((id->dtype != GQ_I32 && id->dtype != GQ_I64) || id->ndim != x->ndim) {
        gq_errf(err, errlen, "indices must be i32/i64 of the data's rank %d", x->ndim);
        return GQ_EDTYPE;
    }
    gq_tdesc_t od = *id;
    od.dtype = x->dtype;
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    s_strides(x, xs);
    size_t es = gq_dtype_size(x->dtype);
    int64_t total = gq_tdesc_numel(id), dim = x->shape[axis];
    for (int64_t i = 0; i < total; i++) {
        int64_t q = gq_onnx_geti(in[1]->data, id->dtype, i), off = 0;
        if (q < -dim || q >= dim) {
            gq_errf(err, errlen, "index %lld is out of range for axis size %lld", (long long)q,
                    (long long)dim);
            return GQ_EPARAM;
        }
        for (int d = 0; d < x->ndim; d++)
            off += (d == axis ? (q < 0 ? q + dim : q) : idx[d]) * xs[d];
        memcpy((char *)out->data + i * (int64_t)es, (const char *)in[0]->data + off * (int64_t)es,
               es);
        for (int d = id->ndim - 1; d >= 0 && ++idx[d] == id->shape[d]; d--)
            idx[d] = 0;
    }
    return GQ_OK;
}

/* ---- Expand, Tile ---- */

static gq_status s_expand(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                          gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)n, (void)opset, (void)nout;
    int64_t sh[GQ_MAX_DIMS];
    int k;
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    if (rc || (rc = gq_onnx_ints(in[1], "shape", sh, GQ_MAX_DIMS, &k, err, errlen)))
        return rc;
    gq_tdesc_t want = {.ndim = k}, od;
    memcpy(want.shape, sh, (size_t)k * sizeof *sh);
    if ((rc = gq_onnx_broadcast(&in[0]->desc, &want, &od, err, errlen)))
        return rc;
    od.dtype = in[0]->desc.dtype;
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    int64_t st[GQ_MAX_DIMS];
    gq_onnx_bstrides(&in[0]->desc, &od, st);
    gq_onnx_strided_copy(&od, gq_dtype_size(od.dtype), in[0]->data, 0, st, out->data);
    return GQ_OK;
}

static gq_status s_tile(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                        gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)n, (void)opset, (void)nout;
    int64_t rep[GQ_MAX_DIMS], xs[GQ_MAX_DIMS], idx[GQ_MAX_DIMS] = {0};
    int k;
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    if (rc || (rc = gq_onnx_ints(in[1], "repeats", rep, GQ_MAX_DIMS, &k, err, errlen)))
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    gq_tdesc_t od = *x;
    if (k != x->ndim) {
        gq_errf(err, errlen, "repeats has %d values for rank %d", k, x->ndim);
        return GQ_EPARAM;
    }
    for (int d = 0; d < k; d++) {
        if (rep[d] < 0) {
            gq_errf(err, errlen, "repeats[%d] = %lld", d, (long long)rep[d]);
            return GQ_EPARAM;
        }
        od.shape[d] *= rep[d];
    }
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    s_strides(x, xs);
    size_t es = gq_dtype_size(x->dtype);
    int64_t total = gq_tdesc_numel(&od);
    for (int64_t o = 0; o < total; o++) {
        int64_t off = 0;
        for (int d = 0; d < od.ndim; d++)
            off += (idx[d] % x->shape[d]) * xs[d];
        memcpy((char *)out->data + o * (int64_t)es, (const char *)in[0]->data + off * (int64_t)es,
               es);
        for (int d = od.ndim - 1; d >= 0 && ++idx[d] == od.shape[d]; d--)
            idx[d] = 0;
    }
    return GQ_OK;
}

/* ---- Pad ---- */

typedef enum { S_PAD_CONSTANT, S_PAD_REFLECT, S_PAD_EDGE, S_PAD_WRAP } s_padmode_t;

/* The source index along a dim of size n for output position i - pb; -1: the constant. */
static int64_t s_pad_src(s_padmode_t m, int64_t i, int64_t n)
{
    if (i >= 0 && i < n)
        return i;
    if (m == S_PAD_CONSTANT || n == 0)
        return -1;
    if (m == S_PAD_EDGE)
        return i < 0 ? 0 : n - 1;
    if (m == S_PAD_WRAP)
        return ((i % n) + n) % n;
    if (n == 1)
        return 0;
    int64_t period = 2 * (n - 1);
    i = ((i % period) + period) % period;
    return i < n ? i : period - i;
}

/* Opset 18's axes input: pads holds np = 2 k values for the k axes listed (begins, then
 * ends); spread them over every dim, the others unpadded. */
static gq_status s_pad_axes(const gq_onnx_val_t *av, int rank, int64_t *pads, int np, char *err,
                            size_t errlen)
{
    int64_t axes[GQ_MAX_DIMS], full[2 * GQ_MAX_DIMS] = {0};
    bool seen[GQ_MAX_DIMS] = {false};
    int k;
    gq_status rc = gq_onnx_ints(av, "axes", axes, GQ_MAX_DIMS, &k, err, errlen);
    if (rc)
        return rc;
    if (np != 2 * k) {
        gq_errf(err, errlen, "pads has %d values for %d axes", np, k);
        return GQ_EPARAM;
    }
    for (int i = 0; i < k; i++) {
        int64_t a;
        if ((rc = gq_onnx_axis(axes[i], rank, &a, err, errlen)))
            return rc;
        if (seen[a]) {
            gq_errf(err, errlen, "axis %lld is listed twice in axes", (long long)axes[i]);
            return GQ_EPARAM;
        }
        seen[a] = true;
        full[a] = pads[i], full[a + rank] = pads[i + k];
    }
    memcpy(pads, full, (size_t)(2 * rank) * sizeof *pads);
    return GQ_OK;
}

static gq_status s_pad_args(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                            int rank, int64_t *pads, double *value, s_padmode_t *mode, char *err,
                            size_t errlen)
{
    char ms[16];
    int np;
    gq_status rc = gq_onnx_attr_str(n, "mode", "constant", ms, sizeof ms, err, errlen);
    if (rc)
        return rc;
    *mode = !strcmp(ms, "constant")  ? S_PAD_CONSTANT
            : !strcmp(ms, "reflect") ? S_PAD_REFLECT
            : !strcmp(ms, "edge")    ? S_PAD_EDGE
            : !strcmp(ms, "wrap")    ? S_PAD_WRAP
                                     : (s_padmode_t)-1;
    if ((int)*mode < 0) {
        gq_errf(err, errlen, "mode '%s' is not constant, reflect, edge or wrap", ms);
        return GQ_EPARAM;
    }
    *value = 0;
    if (opset < 11) {
        rc = gq_onnx_attr_ints(n, opset < 2 ? "paddings" : "pads", pads, 2 * GQ_MAX_DIMS, &np, err,
                               errlen);
        *value = gq_onnx_attr_float(n, "value", 0.0f);
    } else {
        if (!(rc = gq_onnx_need(in, nin, 2, err, errlen)))
            rc = gq_onnx_ints(in[1], "pads", pads, 2 * GQ_MAX_DIMS, &np, err, errlen);
        const gq_onnx_val_t *cv = nin > 2 ? in[2] : NULL;
        if (!rc && cv && cv->nbytes)
            *value = gq_onnx_getd(cv->data, cv->desc.dtype, 0);
        if (!rc && opset >= 18 && nin > 3 && in[3])
            return s_pad_axes(in[3], rank, pads, np, err, errlen);
    }
    if (!rc && np != 2 * rank) {
        gq_errf(err, errlen, "pads has %d values for rank %d", np, rank);
        rc = GQ_EPARAM;
    }
    return rc;
}

static gq_status s_pad(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                       gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 1, err, errlen);
    const gq_tdesc_t *x = &in[0]->desc;
    int64_t pads[2 * GQ_MAX_DIMS], xs[GQ_MAX_DIMS], idx[GQ_MAX_DIMS] = {0};
    double value;
    s_padmode_t mode;
    if (rc || (rc = s_pad_args(n, opset, in, nin, x->ndim, pads, &value, &mode, err, errlen)))
        return rc;
    if (!gq_onnx_dtype_real(x->dtype)) {
        gq_errf(err, errlen, "%s data is not supported", gq_dtype_name(x->dtype));
        return GQ_EDTYPE;
    }
    gq_tdesc_t od = *x;
    for (int d = 0; d < x->ndim; d++) {
        int64_t grow;
        bool over = __builtin_add_overflow(pads[d], pads[d + x->ndim], &grow) ||
                    __builtin_add_overflow(od.shape[d], grow, &od.shape[d]);
        if (over || od.shape[d] < 0 ||
            (mode != S_PAD_CONSTANT && x->shape[d] == 0 && od.shape[d])) {
            gq_errf(err, errlen, "dim %d: pads %lld/%lld do not fit size %lld", d,
                    (long long)pads[d], (long long)pads[d + x->ndim], (long long)x->shape[d]);
            return GQ_EPARAM;
        }
    }
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    s_strides(x, xs);
    size_t es = gq_dtype_size(x->dtype);
    int64_t total = gq_tdesc_numel(&od);
    char *y = out->data;
    for (int64_t o = 0; o < total; o++) {
        int64_t off = 0;
        for (int d = 0; d < od.ndim && off >= 0; d++) {
            int64_t s = s_pad_src(mode, idx[d] - pads[d], x->shape[d]);
            off = s < 0 ? -1 : off + s * xs[d];
        }
        if (off < 0)
            gq_onnx_setd(y, od.dtype, o, value);
        else
            memcpy(y + o * (int64_t)es, (const char *)in[0]->data + off * (int64_t)es, es);
        for (int d = od.ndim - 1; d >= 0 && ++idx[d] == od.shape[d]; d--)
            idx[d] = 0;
    }
    return GQ_OK;
}

/* ---- Split ---- */

static gq_status s_split(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                         gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    gq_status rc = gq_onnx_need(in, nin, 1, err, errlen);
    const gq_tdesc_t *x = &in[0]->desc;
    int64_t axis, parts[GQ_MAX_OUTPUTS], outer = 1, inner = gq_dtype_size(x->dtype), sum = 0;
    int np = -1;
    if (rc || (rc = gq_onnx_axis(gq_onnx_attr_int(n, "axis", 0), x->ndim, &axis, err, errlen)))
        return rc;
    if (opset < 13)
        rc = gq_onnx_attr_ints(n, "split", parts, GQ_MAX_OUTPUTS, &np, err, errlen);
    else if (nin > 1 && in[1])
        rc = gq_onnx_ints(in[1], "split", parts, GQ_MAX_OUTPUTS, &np, err, errlen);
    if (rc)
        return rc;
    int64_t dim = x->shape[axis];
    if (np < 0) { /* equal parts; the last one smaller when it does not divide (opset 18) */
        int64_t each = (dim + nout - 1) / nout;
        for (int i = 0; i < nout; i++)
            parts[i] = dim - each * i < each ? (dim - each * i > 0 ? dim - each * i : 0) : each;
        np = nout;
    }
    bool neg = false;
    for (int i = 0; i < np; i++)
        sum += parts[i], neg = neg || parts[i] < 0;
    if (np != nout || sum != dim || neg) {
        gq_errf(err, errlen, "split into %d parts summing to %lld for %d outputs and dim %lld", np,
                (long long)sum, nout, (long long)dim);
        return GQ_EPARAM;
    }
    for (int d = 0; d < x->ndim; d++)
        if (d < axis)
            outer *= x->shape[d];
        else if (d > axis)
            inner *= x->shape[d];
    for (int64_t i = 0, at = 0; i < nout; at += parts[i++]) {
        gq_tdesc_t od = *x;
        od.shape[axis] = parts[i];
        if ((rc = gq_onnx_out(&out[i], &od, err, errlen)))
            return rc;
        size_t chunk = (size_t)(parts[i] * inner);
        for (int64_t o = 0; o < outer; o++)
            GQ_ONNX_COPY((char *)out[i].data + (size_t)o * chunk,
                         (const char *)in[0]->data + (size_t)((o * dim + at) * inner), chunk);
    }
    return GQ_OK;
}

/* ---- makers ---- */

static gq_status s_constant_of_shape(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                                     int nin, gq_onnx_val_t *out, int nout, char *err,
                                     size_t errlen)
{
    (void)opset, (void)nout;
    int64_t sh[GQ_MAX_DIMS];
    int k;
    gq_status rc = gq_onnx_need(in, nin, 1, err, errlen);
    if (rc || (rc = gq_onnx_ints(in[0], "shape", sh, GQ_MAX_DIMS, &k, err, errlen)))
        return rc;
    gq_tdesc_t od = {.dtype = GQ_F32, .ndim = k};
    memcpy(od.shape, sh, (size_t)k * sizeof *sh);
    void *val = NULL;
    gq_tdesc_t vd = {.dtype = GQ_F32};
    const Onnx__AttributeProto *a = gq_onnx_attr(n, "value");
    if (a && a->t && (rc = gq_onnx_tensor_decode(a->t, NULL, NULL, &vd, &val, err, errlen)))
        return rc;
    if (val && gq_tdesc_numel(&vd) != 1) {
        gq_errf(err, errlen, "value must hold one element");
        rc = GQ_EPARAM;
    }
    od.dtype = vd.dtype;
    if (!rc && !(rc = gq_onnx_out(out, &od, err, errlen))) {
        size_t es = gq_dtype_size(od.dtype);
        int64_t total = gq_tdesc_numel(&od);
        if (!val)
            memset(out->data, 0, out->nbytes);
        for (int64_t i = 0; val && i < total; i++)
            memcpy((char *)out->data + i * (int64_t)es, val, es);
    }
    free(val);
    return rc;
}

static gq_status s_range(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                         gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)n, (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 3, err, errlen);
    if (rc)
        return rc;
    gq_dtype_t dt = in[0]->desc.dtype;
    for (int i = 0; i < 3; i++)
        if (in[i]->desc.dtype != dt || gq_tdesc_numel(&in[i]->desc) != 1 ||
            !gq_onnx_dtype_real(dt) || dt == GQ_BOOL) {
            gq_errf(err, errlen, "start, limit and delta must be scalars of one numeric type");
            return GQ_EDTYPE;
        }
    double s = gq_onnx_getd(in[0]->data, dt, 0), l = gq_onnx_getd(in[1]->data, dt, 0),
           d = gq_onnx_getd(in[2]->data, dt, 0);
    double cnt = d == 0 ? -1 : ceil((l - s) / d);
    if (d == 0 || cnt > 1e12) {
        gq_errf(err, errlen, "delta %g from %g to %g gives no finite range", d, s, l);
        return GQ_EPARAM;
    }
    gq_tdesc_t od = {.dtype = dt, .ndim = 1, .shape = {cnt > 0 ? (int64_t)cnt : 0}};
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    bool integral = gq_onnx_dtype_int(dt);
    int64_t si = gq_onnx_geti(in[0]->data, dt, 0), di = gq_onnx_geti(in[2]->data, dt, 0);
    for (int64_t i = 0; i < od.shape[0]; i++)
        gq_onnx_setd(out->data, dt, i, integral ? (double)(si + i * di) : s + (double)i * d);
    return GQ_OK;
}

static gq_status s_size(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                        gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)n, (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 1, err, errlen);
    gq_tdesc_t od = {.dtype = GQ_I64};
    if (rc || (rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    *(int64_t *)out->data = gq_tdesc_numel(&in[0]->desc);
    return GQ_OK;
}

/* ReverseSequence: along time_axis, the first sequence_lens[b] steps of each batch entry b
 * in reverse order, the rest as they are. */
static gq_status s_reverse_sequence(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                                    int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *x = &in[0]->desc, *ld = &in[1]->desc;
    int64_t ta = gq_onnx_attr_int(n, "time_axis", 0), ba = gq_onnx_attr_int(n, "batch_axis", 1);
    if (x->ndim < 2 || (ta != 0 && ta != 1) || (ba != 0 && ba != 1) || ta == ba) {
        gq_errf(err, errlen, "time_axis %lld and batch_axis %lld must be 0 and 1 (rank %d >= 2)",
                (long long)ta, (long long)ba, x->ndim);
        return GQ_EPARAM;
    }
    int64_t T = x->shape[ta], B = x->shape[ba];
    if (ld->ndim != 1 || ld->shape[0] != B || !gq_onnx_dtype_int(ld->dtype)) {
        char a[96];
        gq_errf(err, errlen, "sequence_lens is %s, want an integer vector of the batch size %lld",
                gq_tdesc_str(ld, a, sizeof a), (long long)B);
        return GQ_ESHAPE;
    }
    for (int64_t b = 0; b < B; b++) {
        int64_t len = gq_onnx_geti(in[1]->data, ld->dtype, b);
        if (len < 0 || len > T) {
            gq_errf(err, errlen, "sequence_lens[%lld] = %lld outside 0..%lld", (long long)b,
                    (long long)len, (long long)T);
            return GQ_EPARAM;
        }
    }
    if ((rc = gq_onnx_out(out, x, err, errlen)))
        return rc;
    int64_t inner = 1;
    for (int d = 2; d < x->ndim; d++)
        inner *= x->shape[d];
    size_t row = (size_t)inner * gq_dtype_size(x->dtype);
    /* dims 0 and 1 are time and batch in some order; each (t, b) owns one row of inner */
    int64_t ts = ta == 0 ? B : 1, bs = ba == 0 ? T : 1;
    for (int64_t b = 0; b < B; b++) {
        int64_t len = gq_onnx_geti(in[1]->data, ld->dtype, b);
        for (int64_t t = 0; t < T; t++) {
            int64_t src = t < len ? len - 1 - t : t;
            GQ_ONNX_COPY((char *)out->data + (size_t)(t * ts + b * bs) * row,
                         (const char *)in[0]->data + (size_t)(src * ts + b * bs) * row, row);
        }
    }
    return GQ_OK;
}

const gq_onnx_kernel_t gq_onnx_kernels_index[] = {
    {"ReverseSequence", 10, s_reverse_sequence},
    {"Slice", 1, s_slice},
    {"Gather", 1, s_gather},
    {"GatherElements", 11, s_gather_elements},
    {"Expand", 8, s_expand},
    {"Tile", 6, s_tile},
    {"Pad", 2, s_pad},
    {"Split", 2, s_split},
    {"ConstantOfShape", 9, s_constant_of_shape},
    {"Range", 11, s_range},
    {"Size", 1, s_size},
};
const int gq_onnx_kernels_index_count = GQ_ONNX_COUNT(gq_onnx_kernels_index);
