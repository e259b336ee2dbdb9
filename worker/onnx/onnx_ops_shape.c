/* ONNX kernels that move or make data: Reshape, Flatten, Transpose, Shape, Squeeze,
 * Unsqueeze, Concat, Constant. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"
#include "optable.h"
#include "util.h"

/* ---- shapes ---- */

/* out = in's bytes under a new descriptor. */
static gq_status s_copy_as(const gq_onnx_val_t *in, const gq_tdesc_t *d, gq_onnx_val_t *out,
                           char *err, size_t errlen)
{
    out->desc = *d;
    gq_status rc = gq_onnx_val_alloc(out, err, errlen);
    if (!rc) {
        if (out->nbytes != in->nbytes) {
            gq_errf(err, errlen, "new shape holds %zu bytes, the input %zu", out->nbytes,
                    in->nbytes);
            return GQ_ESHAPE;
        }
        GQ_ONNX_COPY(out->data, in->data, in->nbytes);
    }
    return rc;
}

gq_status gq_onnx_reshape_dims(const gq_tdesc_t *s, const int64_t *sh, int64_t nd, bool allowzero,
                               gq_tdesc_t *d, char *err, size_t errlen)
{
    if (nd > GQ_MAX_DIMS) {
        gq_errf(err, errlen, "shape has %lld dims, over %d", (long long)nd, GQ_MAX_DIMS);
        return GQ_ESHAPE;
    }
    *d = (gq_tdesc_t){.dtype = s->dtype, .ndim = (int)nd};
    int64_t known = 1, total = gq_tdesc_numel(s);
    int infer = -1;
    for (int i = 0; i < nd; i++) {
        int64_t v = sh[i];
        if (v == 0 && !allowzero) {
            if (i >= s->ndim) {
                gq_errf(err, errlen, "shape[%d] = 0 copies a dim the input does not have", i);
                return GQ_ESHAPE;
            }
            v = s->shape[i];
        }
        if (v == -1) {
            if (infer >= 0) {
                gq_errf(err, errlen, "more than one -1 in the shape");
                return GQ_ESHAPE;
            }
            infer = i;
            continue;
        }
        if (v < 0) {
            gq_errf(err, errlen, "shape[%d] = %lld", i, (long long)v);
            return GQ_ESHAPE;
        }
        d->shape[i] = v;
        known *= v;
    }
    if (infer >= 0) {
        if (known == 0 || total % known) {
            gq_errf(err, errlen, "cannot infer the -1 dim: %lld elements over %lld",
                    (long long)total, (long long)known);
            return GQ_ESHAPE;
        }
        d->shape[infer] = total / known;
    }
    return GQ_OK;
}

static gq_status s_reshape(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                           gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout;
    if (opset < 5 || nin < 2 || !in[0] || !in[1] || in[1]->desc.dtype != GQ_I64 ||
        in[1]->desc.ndim != 1) {
        gq_errf(err, errlen, "needs data and an i64[n] shape");
        return GQ_ESHAPE;
    }
    gq_tdesc_t d;
    gq_status rc = gq_onnx_reshape_dims(&in[0]->desc, in[1]->data, in[1]->desc.shape[0],
                                        gq_onnx_attr_int(n, "allowzero", 0), &d, err, errlen);
    return rc ? rc : s_copy_as(in[0], &d, out, err, errlen);
}

static gq_status s_flatten(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                           gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout, (void)nin;
    const gq_tdesc_t *s = &in[0]->desc;
    int64_t axis = gq_onnx_attr_int(n, "axis", 1);
    if (axis < 0)
        axis += s->ndim;
    if (axis < 0 || axis > s->ndim) {
        gq_errf(err, errlen, "axis out of range for rank %d", s->ndim);
        return GQ_EPARAM;
    }
    gq_tdesc_t d = {.dtype = s->dtype, .ndim = 2, .shape = {1, 1}};
    for (int i = 0; i < s->ndim; i++)
        d.shape[i < axis ? 0 : 1] *= s->shape[i];
    return s_copy_as(in[0], &d, out, err, errlen);
}

static gq_status s_transpose(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                             gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout, (void)nin;
    const gq_tdesc_t *s = &in[0]->desc;
    int nd = s->ndim, perm[GQ_MAX_DIMS];
    const Onnx__AttributeProto *pa = gq_onnx_attr(n, "perm");
    bool seen[GQ_MAX_DIMS] = {false};
    for (int i = 0; i < nd; i++) {
        perm[i] = pa ? (i < (int)pa->n_ints ? (int)pa->ints[i] : -1) : nd - 1 - i;
        if (perm[i] < 0 || perm[i] >= nd || seen[perm[i]] || (pa && (int)pa->n_ints != nd)) {
            gq_errf(err, errlen, "perm is not a permutation of %d dims", nd);
            return GQ_EPARAM;
        }
        seen[perm[i]] = true;
    }
    out->desc = *s;
    for (int i = 0; i < nd; i++)
        out->desc.shape[i] = s->shape[perm[i]];
    gq_status rc = gq_onnx_val_alloc(out, err, errlen);
    if (rc)
        return rc;
    int64_t st[GQ_MAX_DIMS], ost[GQ_MAX_DIMS], acc = 1;
    for (int i = nd - 1; i >= 0; i--)
        st[i] = acc, acc *= s->shape[i];
    for (int i = 0; i < nd; i++) /* the source stride of each output dim */
        ost[i] = st[perm[i]];
    gq_onnx_strided_copy(&out->desc, gq_dtype_size(s->dtype), in[0]->data, 0, ost, out->data);
    return GQ_OK;
}

static gq_status s_shape(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                         gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout, (void)nin;
    const gq_tdesc_t *s = &in[0]->desc;
    int64_t start = opset >= 15 ? gq_onnx_attr_int(n, "start", 0) : 0;
    int64_t end = opset >= 15 ? gq_onnx_attr_int(n, "end", s->ndim) : s->ndim;
    if (start < 0)
        start += s->ndim;
    if (end < 0)
        end += s->ndim;
    start = start < 0 ? 0 : start > s->ndim ? s->ndim : start;
    end = end < start ? start : end > s->ndim ? s->ndim : end;
    out->desc = (gq_tdesc_t){.dtype = GQ_I64, .ndim = 1, .shape = {end - start}};
    gq_status rc = gq_onnx_val_alloc(out, err, errlen);
    if (!rc)
        for (int64_t i = start; i < end; i++)
            ((int64_t *)out->data)[i - start] = s->shape[i];
    return rc;
}

int gq_onnx_axes_arg(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                     int64_t *axes)
{
    if (opset >= 13) {
        if (nin < 2 || !in[1] || in[1]->desc.dtype != GQ_I64)
            return 0;
        int64_t k = GQ_ONNX_ELEMS(in[1]);
        if (k > GQ_MAX_DIMS)
            return -1;
        GQ_ONNX_COPY(axes, in[1]->data, (size_t)k * sizeof *axes);
        return (int)k;
    }
    const Onnx__AttributeProto *a = gq_onnx_attr(n, "axes");
    if (!a)
        return 0;
    if (a->n_ints > GQ_MAX_DIMS)
        return -1;
    GQ_ONNX_COPY(axes, a->ints, a->n_ints * sizeof *axes);
    return (int)a->n_ints;
}

static gq_status s_unsqueeze(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                             gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout;
    int64_t axes[GQ_MAX_DIMS];
    int k = gq_onnx_axes_arg(n, opset, in, nin, axes);
    const gq_tdesc_t *s = &in[0]->desc;
    int nd = s->ndim + k;
    if (k <= 0 || nd > GQ_MAX_DIMS) {
        gq_errf(err, errlen, "needs 1..%d axes", GQ_MAX_DIMS - s->ndim);
        return GQ_EPARAM;
    }
    bool ins[GQ_MAX_DIMS] = {false};
    for (int i = 0; i < k; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + nd : axes[i];
        if (a < 0 || a >= nd || ins[a]) {
            gq_errf(err, errlen, "axis %lld out of range or repeated", (long long)axes[i]);
            return GQ_EPARAM;
        }
        ins[a] = true;
    }
    gq_tdesc_t d = {.dtype = s->dtype, .ndim = nd};
    for (int i = 0, j = 0; i < nd; i++)
        d.shape[i] = ins[i] ? 1 : s->shape[j++];
    return s_copy_as(in[0], &d, out, err, errlen);
}

static gq_status s_squeeze(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                           gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout;
    int64_t axes[GQ_MAX_DIMS];
    int k = gq_onnx_axes_arg(n, opset, in, nin, axes);
    const gq_tdesc_t *s = &in[0]->desc;
    bool drop[GQ_MAX_DIMS] = {false};
    if (k < 0) {
        gq_errf(err, errlen, "too many axes");
        return GQ_EPARAM;
    }
    for (int i = 0; i < k; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + s->ndim : axes[i];
        if (a < 0 || a >= s->ndim || s->shape[a] != 1) {
            gq_errf(err, errlen, "axis %lld is not a dim of size 1", (long long)axes[i]);
            return GQ_EPARAM;
        }
        drop[a] = true;
    }
    gq_tdesc_t d = {.dtype = s->dtype};
    for (int i = 0; i < s->ndim; i++)
        if (!(k ? drop[i] : s->shape[i] == 1))
            d.shape[d.ndim++] = s->shape[i];
    return s_copy_as(in[0], &d, out, err, errlen);
}

static gq_status s_concat(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                          gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    if (nin < 1 || !in[0]) {
        gq_errf(err, errlen, "needs inputs");
        return GQ_ESHAPE;
    }
    const gq_tdesc_t *s0 = &in[0]->desc;
    int64_t axis = gq_onnx_attr_int(n, "axis", 0);
    if (axis < 0)
        axis += s0->ndim;
    if (axis < 0 || axis >= s0->ndim) {
        gq_errf(err, errlen, "axis out of range for rank %d", s0->ndim);
        return GQ_EPARAM;
    }
    gq_tdesc_t d = *s0;
    d.shape[axis] = 0;
    for (int i = 0; i < nin; i++) {
        const gq_tdesc_t *s = &in[i]->desc;
        bool ok = s->dtype == s0->dtype && s->ndim == s0->ndim;
        for (int j = 0; ok && j < s->ndim; j++)
            ok = j == axis || s->shape[j] == s0->shape[j];
        if (!ok) {
            char x[96], y[96];
            gq_errf(err, errlen, "input %d %s does not match input 0 %s off axis %lld", i,
                    gq_tdesc_str(s, x, sizeof x), gq_tdesc_str(s0, y, sizeof y), (long long)axis);
            return GQ_ESHAPE;
        }
        d.shape[axis] += s->shape[axis];
    }
    out->desc = d;
    gq_status rc = gq_onnx_val_alloc(out, err, errlen);
    if (rc)
        return rc;
    int64_t outer = 1, inner = gq_dtype_size(d.dtype);
    for (int j = 0; j < axis; j++)
        outer *= d.shape[j];
    for (int j = (int)axis + 1; j < d.ndim; j++)
        inner *= d.shape[j];
    char *y = out->data;
    for (int64_t o = 0; o < outer; o++)
        for (int i = 0; i < nin; i++) {
            size_t chunk = (size_t)(in[i]->desc.shape[axis] * inner);
            GQ_ONNX_COPY(y, (const char *)in[i]->data + (size_t)o * chunk, chunk);
            y += chunk;
        }
    return GQ_OK;
}

/* Constant: the value attribute (a tensor) or, from opset 12, value_float(s)/value_int(s). */
static gq_status s_constant(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                            gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)in, (void)nin, (void)nout;
    const Onnx__AttributeProto *a;
    if ((a = gq_onnx_attr(n, "value")) && a->t) {
        void *data = NULL;
        gq_status rc = gq_onnx_tensor_decode(a->t, NULL, NULL, &out->desc, &data, err, errlen);
        if (rc)
            return rc;
        out->data = data;
        out->nbytes = gq_tdesc_nbytes(&out->desc);
        out->owned = true;
        return GQ_OK;
    }
    memset(&out->desc, 0, sizeof out->desc);
    const Onnx__AttributeProto *f = gq_onnx_attr(n, "value_float"),
                               *fs = gq_onnx_attr(n, "value_floats"),
                               *i = gq_onnx_attr(n, "value_int"),
                               *is = gq_onnx_attr(n, "value_ints");
    if (f || fs) {
        out->desc.dtype = GQ_F32;
        out->desc.ndim = fs ? 1 : 0;
        out->desc.shape[0] = fs ? (int64_t)fs->n_floats : 0;
    } else if (i || is) {
        out->desc.dtype = GQ_I64;
        out->desc.ndim = is ? 1 : 0;
        out->desc.shape[0] = is ? (int64_t)is->n_ints : 0;
    } else {
        gq_errf(err, errlen,
                "no value attribute gq supports (value, value_float(s), value_int(s))");
        return GQ_EUNSUPPORTED;
    }
    gq_status rc = gq_onnx_val_alloc(out, err, errlen);
    if (rc)
        return rc;
    if (f)
        *(float *)out->data = f->f;
    else if (fs)
        GQ_ONNX_COPY(out->data, fs->floats, fs->n_floats * sizeof(float));
    else if (i)
        *(int64_t *)out->data = i->i;
    else
        GQ_ONNX_COPY(out->data, is->ints, is->n_ints * sizeof(int64_t));
    return GQ_OK;
}

const gq_onnx_kernel_t gq_onnx_kernels_shape[] = {
    {"Constant", 1, s_constant},   {"Reshape", 5, s_reshape}, {"Flatten", 1, s_flatten},
    {"Transpose", 1, s_transpose}, {"Shape", 1, s_shape},     {"Unsqueeze", 1, s_unsqueeze},
    {"Squeeze", 1, s_squeeze},     {"Concat", 4, s_concat},
};
const int gq_onnx_kernels_shape_count =
    (int)(sizeof gq_onnx_kernels_shape / sizeof gq_onnx_kernels_shape[0]);
