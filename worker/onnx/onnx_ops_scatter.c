/* ONNX kernels that rearrange or address data by index tuples, for any dtype:
 * DepthToSpace, SpaceToDepth, GatherND, ScatterElements, ScatterND, Compress, Col2Im; and
 * LRN. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"
#include "util.h"

/* out = transpose(reshape(x, shape[0..nd)), perm) (out is already shaped). */
static void s_permute(const gq_onnx_val_t *x, const int64_t *shape, int nd, const int *perm,
                      gq_onnx_val_t *out)
{
    int64_t st[GQ_MAX_DIMS], acc = 1;
    gq_tdesc_t pd = {.dtype = x->desc.dtype, .ndim = nd};
    for (int i = nd - 1; i >= 0; i--)
        st[i] = acc, acc *= shape[i];
    int64_t pst[GQ_MAX_DIMS];
    for (int i = 0; i < nd; i++)
        pd.shape[i] = shape[perm[i]], pst[i] = st[perm[i]];
    gq_onnx_strided_copy(&pd, gq_dtype_size(x->desc.dtype), x->data, 0, pst, out->data);
}

static gq_status s_depth_space(bool to_space, const Onnx__NodeProto *n, gq_onnx_val_t *const *in,
                               int nin, gq_onnx_val_t *out, char *err, size_t errlen)
{
    gq_status rc = gq_onnx_need(in, nin, 1, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    int64_t b = gq_onnx_attr_int(n, "blocksize", 0);
    char mode[8];
    if ((rc = gq_onnx_attr_str(n, "mode", "DCR", mode, sizeof mode, err, errlen)))
        return rc;
    bool crd = !strcmp(mode, "CRD");
    if (x->ndim != 4 || b < 1 || (to_space && x->shape[1] % (b * b)) ||
        (!to_space && (x->shape[2] % b || x->shape[3] % b)) || (!crd && strcmp(mode, "DCR"))) {
        char d[96];
        gq_errf(err, errlen, "input %s, blocksize %lld, mode %s do not fit",
                gq_tdesc_str(x, d, sizeof d), (long long)b, mode);
        return GQ_ESHAPE;
    }
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    gq_tdesc_t od = *x;
    if (to_space)
        od.shape[1] = C / (b * b), od.shape[2] = H * b, od.shape[3] = W * b;
    else
        od.shape[1] = C * b * b, od.shape[2] = H / b, od.shape[3] = W / b;
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    if (to_space && !crd) {
        int64_t sh[6] = {N, b, b, C / (b * b), H, W};
        int perm[6] = {0, 3, 4, 1, 5, 2};
        s_permute(in[0], sh, 6, perm, out);
    } else if (to_space) {
        int64_t sh[6] = {N, C / (b * b), b, b, H, W};
        int perm[6] = {0, 1, 4, 2, 5, 3};
        s_permute(in[0], sh, 6, perm, out);
    } else {
        int64_t sh[6] = {N, C, H / b, b, W / b, b};
        int perm[6] = {0, 3, 5, 1, 2, 4};
        s_permute(in[0], sh, 6, perm, out);
    }
    return GQ_OK;
}

static gq_status s_depth_to_space(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                                  int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    return s_depth_space(true, n, in, nin, out, err, errlen);
}

static gq_status s_space_to_depth(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                                  int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    return s_depth_space(false, n, in, nin, out, err, errlen);
}

/* Checks an index input: i32/i64. */
static gq_status s_index_type(const gq_onnx_val_t *v, char *err, size_t errlen)
{
    if (v->desc.dtype != GQ_I64 && v->desc.dtype != GQ_I32) {
        gq_errf(err, errlen, "indices are %s, want i32 or i64", gq_dtype_name(v->desc.dtype));
        return GQ_EDTYPE;
    }
    return GQ_OK;
}

/* The flat element offset of index tuple idx[0..k) into dims[0..k) (negative indices
 * count from the end); -1 when out of range. */
static int64_t s_tuple_offset(const gq_onnx_val_t *ix, int64_t at, int k, const int64_t *dims)
{
    int64_t off = 0;
    for (int j = 0; j < k; j++) {
        int64_t v = gq_onnx_geti(ix->data, ix->desc.dtype, at + j);
        v = v < 0 ? v + dims[j] : v;
        if (v < 0 || v >= dims[j])
            return -1;
        off = off * dims[j] + v;
    }
    return off;
}

static gq_status s_gather_nd(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                             gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    if (rc || (rc = s_index_type(in[1], err, errlen)))
        return rc;
    const gq_tdesc_t *x = &in[0]->desc, *id = &in[1]->desc;
    int64_t bd = gq_onnx_attr_int(n, "batch_dims", 0);
    int k = id->ndim ? (int)id->shape[id->ndim - 1] : 0;
    if (id->ndim < 1 || bd < 0 || bd >= id->ndim || k < 1 || bd + k > x->ndim ||
        id->ndim - 1 + x->ndim - bd - k > GQ_MAX_DIMS) {
        gq_errf(err, errlen, "indices' last dim %d and batch_dims %lld do not fit data rank %d", k,
                (long long)bd, x->ndim);
        return GQ_ESHAPE;
    }
    for (int d = 0; d < bd; d++)
        if (x->shape[d] != id->shape[d]) {
            gq_errf(err, errlen, "batch dim %d differs: %lld vs %lld", d, (long long)x->shape[d],
                    (long long)id->shape[d]);
            return GQ_ESHAPE;
        }
    gq_tdesc_t od = {.dtype = x->dtype};
    int64_t batches = 1, tuples = 1, slice = gq_dtype_size(x->dtype), bsz = 1;
    for (int d = 0; d < id->ndim - 1; d++) {
        od.shape[od.ndim++] = id->shape[d];
        if (d < bd)
            batches *= id->shape[d];
        else
            tuples *= id->shape[d];
    }
    for (int d = (int)bd + k; d < x->ndim; d++)
        od.shape[od.ndim++] = x->shape[d], slice *= x->shape[d];
    for (int d = (int)bd; d < x->ndim; d++)
        bsz *= x->shape[d];
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    char *dst = out->data;
    for (int64_t b = 0; b < batches; b++)
        for (int64_t t = 0; t < tuples; t++, dst += slice) {
            int64_t off = s_tuple_offset(in[1], (b * tuples + t) * k, k, x->shape + bd);
            if (off < 0) {
                gq_errf(err, errlen, "index tuple %lld is out of range", (long long)t);
                return GQ_EPARAM;
            }
            memcpy(dst,
                   (const char *)in[0]->data + b * bsz * (int64_t)gq_dtype_size(x->dtype) +
                       off * slice,
                   (size_t)slice);
        }
    return GQ_OK;
}

typedef enum { S_RED_NONE, S_RED_ADD, S_RED_MUL, S_RED_MAX, S_RED_MIN } s_scatred_t;

static gq_status s_scatter_reduction(const Onnx__NodeProto *n, s_scatred_t *r, char *err,
                                     size_t errlen)
{
    char m[8];
    gq_status rc = gq_onnx_attr_str(n, "reduction", "none", m, sizeof m, err, errlen);
    if (rc)
        return rc;
    *r = !strcmp(m, "none")  ? S_RED_NONE
         : !strcmp(m, "add") ? S_RED_ADD
         : !strcmp(m, "mul") ? S_RED_MUL
         : !strcmp(m, "max") ? S_RED_MAX
         : !strcmp(m, "min") ? S_RED_MIN
                             : (s_scatred_t)-1;
    if ((int)*r < 0) {
        gq_errf(err, errlen, "reduction '%s' is not none, add, mul, max or min", m);
        return GQ_EPARAM;
    }
    return GQ_OK;
}

/* out[o] (op)= upd[u], element by element. */
static void s_scatter_one(s_scatred_t r, gq_onnx_val_t *out, int64_t o, const gq_onnx_val_t *upd,
                          int64_t u)
{
    gq_dtype_t dt = out->desc.dtype;
    size_t es = gq_dtype_size(dt);
    if (r == S_RED_NONE) {
        memcpy((char *)out->data + o * (int64_t)es, (const char *)upd->data + u * (int64_t)es, es);
        return;
    }
    double a = gq_onnx_getd(out->data, dt, o), b = gq_onnx_getd(upd->data, dt, u);
    double v = r == S_RED_ADD   ? a + b
               : r == S_RED_MUL ? a * b
               : r == S_RED_MAX ? (a > b ? a : b)
                                : (a < b ? a : b);
    gq_onnx_setd(out->data, dt, o, v);
}

static gq_status s_scatter_elements(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                                    int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    s_scatred_t red;
    gq_status rc = gq_onnx_need(in, nin, 3, err, errlen);
    if (rc || (rc = s_index_type(in[1], err, errlen)) ||
        (rc = s_scatter_reduction(n, &red, err, errlen)))
        return rc;
    const gq_tdesc_t *x = &in[0]->desc, *id = &in[1]->desc;
    int64_t axis, xs[GQ_MAX_DIMS], idx[GQ_MAX_DIMS] = {0}, acc = 1;
    if ((rc = gq_onnx_axis(gq_onnx_attr_int(n, "axis", 0), x->ndim, &axis, err, errlen)))
        return rc;
    if (id->ndim != x->ndim || in[2]->desc.dtype != x->dtype ||
        gq_tdesc_numel(&in[2]->desc) != gq_tdesc_numel(id)) {
        gq_errf(err, errlen, "indices and updates must match in shape, data in rank and type");
        return GQ_ESHAPE;
    }
    if ((rc = gq_onnx_out(out, x, err, errlen)))
        return rc;
    GQ_ONNX_COPY(out->data, in[0]->data, in[0]->nbytes);
    for (int d = x->ndim - 1; d >= 0; d--)
        xs[d] = acc, acc *= x->shape[d];
    for (int64_t i = 0, total = gq_tdesc_numel(id); i < total; i++) {
        int64_t q = gq_onnx_geti(in[1]->data, id->dtype, i), off = 0, dim = x->shape[axis];
        q = q < 0 ? q + dim : q;
        if (q < 0 || q >= dim) {
            gq_errf(err, errlen, "index %lld is out of range for axis size %lld", (long long)q,
                    (long long)dim);
            return GQ_EPARAM;
        }
        for (int d = 0; d < x->ndim; d++)
            off += (d == axis ? q : idx[d]) * xs[d];
        s_scatter_one(red, out, off, in[2], i);
        for (int d = id->ndim - 1; d >= 0 && ++idx[d] == id->shape[d]; d--)
            idx[d] = 0;
    }
    return GQ_OK;
}

static gq_status s_scatter_nd(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                              int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    s_scatred_t red;
    gq_status rc = gq_onnx_need(in, nin, 3, err, errlen);
    if (rc || (rc = s_index_type(in[1], err, errlen)) ||
        (rc = s_scatter_reduction(n, &red, err, errlen)))
        return rc;
    const gq_tdesc_t *x = &in[0]->desc, *id = &in[1]->desc;
    int k = id->ndim ? (int)id->shape[id->ndim - 1] : 0;
    int64_t tuples = 1, slice = 1;
    for (int d = 0; d < id->ndim - 1; d++)
        tuples *= id->shape[d];
    for (int d = k; d < x->ndim; d++)
        slice *= x->shape[d];
    if (k < 1 || k > x->ndim || in[2]->desc.dtype != x->dtype ||
        gq_tdesc_numel(&in[2]->desc) != tuples * slice) {
        gq_errf(err, errlen, "indices' last dim %d, updates and data rank %d do not fit", k,
                x->ndim);
        return GQ_ESHAPE;
    }
    if ((rc = gq_onnx_out(out, x, err, errlen)))
        return rc;
    GQ_ONNX_COPY(out->data, in[0]->data, in[0]->nbytes);
    for (int64_t t = 0; t < tuples; t++) {
        int64_t off = s_tuple_offset(in[1], t * k, k, x->shape);
        if (off < 0) {
            gq_errf(err, errlen, "index tuple %lld is out of range", (long long)t);
            return GQ_EPARAM;
        }
        for (int64_t j = 0; j < slice; j++)
            s_scatter_one(red, out, off * slice + j, in[2], t * slice + j);
    }
    return GQ_OK;
}

static gq_status s_compress(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                            gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *x = &in[0]->desc, *c = &in[1]->desc;
    const Onnx__AttributeProto *aa = gq_onnx_attr(n, "axis");
    gq_tdesc_t flat = {.dtype = x->dtype, .ndim = 1, .shape = {gq_tdesc_numel(x)}};
    const gq_tdesc_t *src = aa ? x : &flat;
    int64_t axis = 0, outer = 1, inner = gq_dtype_size(x->dtype), kept = 0;
    if (aa && (rc = gq_onnx_axis(aa->i, x->ndim, &axis, err, errlen)))
        return rc;
    if (c->dtype != GQ_BOOL || c->ndim != 1) {
        gq_errf(err, errlen, "condition must be a bool vector");
        return GQ_EDTYPE;
    }
    int64_t len = c->shape[0] < src->shape[axis] ? c->shape[0] : src->shape[axis];
    const uint8_t *cv = in[1]->data;
    for (int64_t i = 0; i < len; i++)
        kept += cv[i] != 0;
    gq_tdesc_t od = *src;
    od.shape[axis] = kept;
    for (int d = 0; d < src->ndim; d++)
        if (d < axis)
            outer *= src->shape[d];
        else if (d > axis)
            inner *= src->shape[d];
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    char *dst = out->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < len; i++)
            if (cv[i]) {
                memcpy(dst, (const char *)in[0]->data + (o * src->shape[axis] + i) * inner,
                       (size_t)inner);
                dst += inner;
            }
    return GQ_OK;
}

/* LRN: x / (bias + alpha / size * sum of squares over neighbouring channels)^beta. */
static gq_status s_lrn(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                       gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 1, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    int64_t size = gq_onnx_attr_int(n, "size", 0);
    if (x->dtype != GQ_F32 || x->ndim < 2 || size < 1) {
        gq_errf(err, errlen, "want f32 [N, C, ...] and size >= 1");
        return GQ_EDTYPE;
    }
    if ((rc = gq_onnx_out(out, x, err, errlen)))
        return rc;
    double alpha = gq_onnx_attr_float(n, "alpha", 1e-4f),
           beta = gq_onnx_attr_float(n, "beta", 0.75f), bias = gq_onnx_attr_float(n, "bias", 1.0f);
    int64_t N = x->shape[0], C = x->shape[1], NC = N * C, sz = NC > 0 ? gq_tdesc_numel(x) / NC : 0;
    const float *X = in[0]->data;
    float *Y = out->data;
    for (int64_t b = 0; b < N; b++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < sz; i++) {
                double ss = 0;
                for (int64_t cc = c - (size - 1) / 2; cc <= c + size / 2; cc++)
                    if (cc >= 0 && cc < C) {
                        double v = X[(b * C + cc) * sz + i];
                        ss += v * v;
                    }
                Y[(b * C + c) * sz + i] =
                    (float)(X[(b * C + c) * sz + i] / pow(bias + alpha / (double)size * ss, beta));
            }
    return GQ_OK;
}

/* Col2Im (opset 18): the inverse of im2col — every column of x [N, C * prod(block), L] added
 * back into the image [N, C, *image_shape] at its block's place (overlaps sum; the
 * overlap-add of an inverse STFT). f32 and f64. */
static gq_status s_col2im(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                          gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    int64_t img[GQ_MAX_DIMS], blk[GQ_MAX_DIMS], dil[GQ_MAX_DIMS], pads[2 * GQ_MAX_DIMS],
        st[GQ_MAX_DIMS], npos[GQ_MAX_DIMS];
    int k, kb, nd, np, ns;
    gq_status rc = gq_onnx_need(in, nin, 3, err, errlen);
    if (rc || (rc = gq_onnx_ints(in[1], "image_shape", img, GQ_MAX_DIMS - 2, &k, err, errlen)) ||
        (rc = gq_onnx_ints(in[2], "block_shape", blk, GQ_MAX_DIMS - 2, &kb, err, errlen)) ||
        (rc = gq_onnx_attr_ints(n, "dilations", dil, GQ_MAX_DIMS, &nd, err, errlen)) ||
        (rc = gq_onnx_attr_ints(n, "pads", pads, 2 * GQ_MAX_DIMS, &np, err, errlen)) ||
        (rc = gq_onnx_attr_ints(n, "strides", st, GQ_MAX_DIMS, &ns, err, errlen)))
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    if (x->dtype != GQ_F32 && x->dtype != GQ_F64) {
        gq_errf(err, errlen, "input is %s: f32 and f64 are supported", gq_dtype_name(x->dtype));
        return GQ_EDTYPE;
    }
    if (kb != k || k < 1 || (nd >= 0 && nd != k) || (ns >= 0 && ns != k) ||
        (np >= 0 && np != 2 * k) || x->ndim != 3) {
        gq_errf(err, errlen, "image_shape has %d dims, block_shape %d, input rank %d (want 3)", k,
                kb, x->ndim);
        return GQ_ESHAPE;
    }
    int64_t B = 1, L = 1;
    for (int d = 0; d < k; d++) {
        dil[d] = nd < 0 ? 1 : dil[d], st[d] = ns < 0 ? 1 : st[d];
        int64_t pb = np < 0 ? 0 : pads[d], pe = np < 0 ? 0 : pads[d + k];
        pads[d] = pb;
        int64_t span = dil[d] * (blk[d] - 1) + 1;
        if (img[d] < 1 || blk[d] < 1 || dil[d] < 1 || st[d] < 1 || pb < 0 || pe < 0 ||
            img[d] + pb + pe < span || img[d] > ((int64_t)1 << 31) || blk[d] > ((int64_t)1 << 31)) {
            gq_errf(err, errlen,
                    "dim %d: image %lld, block %lld, dilation %lld, stride %lld, pads "
                    "%lld/%lld do not fit",
                    d, (long long)img[d], (long long)blk[d], (long long)dil[d], (long long)st[d],
                    (long long)pb, (long long)pe);
            return GQ_EPARAM;
        }
        npos[d] = (img[d] + pb + pe - span) / st[d] + 1;
        if (__builtin_mul_overflow(B, blk[d], &B) || __builtin_mul_overflow(L, npos[d], &L))
            B = L = -1; /* matches no input */
    }
    if (B < 1 || x->shape[1] % B || x->shape[2] != L) {
        gq_errf(err, errlen,
                "input is [%lld, %lld, %lld]: want C x %lld block elements by %lld "
                "block positions",
                (long long)x->shape[0], (long long)x->shape[1], (long long)x->shape[2],
                (long long)B, (long long)L);
        return GQ_ESHAPE;
    }
    int64_t C = x->shape[1] / B, isz = 1;
    gq_tdesc_t od = {.dtype = x->dtype, .ndim = 2 + k, .shape = {x->shape[0], C}};
    for (int d = 0; d < k; d++)
        od.shape[2 + d] = img[d];
    if ((rc = gq_onnx_out(out, &od, err, errlen))) /* checks the image's size */
        return rc;
    for (int d = 0; d < k; d++)
        isz *= img[d];
    memset(out->data, 0, out->nbytes);
    bool f64 = x->dtype == GQ_F64;
    for (int64_t nc = 0; nc < x->shape[0] * C; nc++)
        for (int64_t b = 0; b < B; b++) {
            int64_t kk[GQ_MAX_DIMS], rem = b;
            for (int d = k - 1; d >= 0; d--)
                kk[d] = rem % blk[d], rem /= blk[d];
            const int64_t col = (nc * B + b) * L; /* row b of channel nc's block rows */
            for (int64_t l = 0; l < L; l++) {
                int64_t off = 0, r = l, mul = 1;
                bool inside = true;
                for (int d = k - 1; d >= 0; d--) { /* l's position per dim, last fastest */
                    int64_t at = r % npos[d] * st[d] - pads[d] + kk[d] * dil[d];
                    r /= npos[d];
                    inside = inside && at >= 0 && at < img[d];
                    off += at * mul, mul *= img[d];
                }
                if (!inside) /* a tap in the padding */
                    continue;
                if (f64)
                    ((double *)out->data)[nc * isz + off] += ((const double *)in[0]->data)[col + l];
                else
                    ((float *)out->data)[nc * isz + off] += ((const float *)in[0]->data)[col + l];
            }
        }
    return GQ_OK;
}

const gq_onnx_kernel_t gq_onnx_kernels_scatter[] = {
    {"Col2Im", 18, s_col2im},
    {"DepthToSpace", 1, s_depth_to_space},
    {"SpaceToDepth", 1, s_space_to_depth},
    {"GatherND", 11, s_gather_nd},
    {"Scatter", 9, s_scatter_elements}, /* deprecated in 11: ScatterElements under another name */
    {"ScatterElements", 11, s_scatter_elements},
    {"ScatterND", 11, s_scatter_nd},
    {"Compress", 9, s_compress},
    {"LRN", 1, s_lrn},
};
const int gq_onnx_kernels_scatter_count = GQ_ONNX_COUNT(gq_onnx_kernels_scatter);
