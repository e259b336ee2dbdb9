/* ONNX Resize (opset 11+): nearest (four rounding modes), linear and cubic (cubic_coeff_a,
 * exclude_outside) under every coordinate_transformation_mode, tf_crop_and_resize with its
 * roi and extrapolation_value. Done as ONNX's reference does it — one dimension at a time,
 * last to first, each output index a weighted sum of up to four input taps, edge indices
 * clamped — in double, for any real dtype. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"
#include "util.h"

typedef enum { S_NEAREST, S_LINEAR, S_CUBIC } s_mode_t;
typedef enum { S_HALF_PIXEL, S_PYTORCH_HALF, S_ALIGN, S_ASYM, S_TF_HALF_NN, S_TF_CROP } s_ctm_t;
typedef enum { S_PREFER_FLOOR, S_PREFER_CEIL, S_FLOOR, S_CEIL } s_round_t;

typedef struct {
    s_mode_t mode;
    s_ctm_t ctm;
    s_round_t rnd;
    double a, extrap;
    bool exclude;
} s_resize_t;

/* One output index's taps: idx[0..n) (clamped) and weights; extrap when it lies outside
 * the crop (tf_crop_and_resize). */
typedef struct {
    int64_t idx[4];
    double w[4];
    int n;
    bool extrap;
} s_taps_t;

static int s_lookup(const char *v, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v, names[i]))
            return i;
    return -1;
}

static gq_status s_resize_attrs(const Onnx__NodeProto *n, s_resize_t *r, char *err, size_t errlen)
{
    static const char *const modes[] = {"nearest", "linear", "cubic"};
    static const char *const ctms[] = {"half_pixel", "pytorch_half_pixel",   "align_corners",
                                       "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"};
    static const char *const rnds[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    char m[32], c[32], nm[32];
    gq_status rc;
    if ((rc = gq_onnx_attr_str(n, "mode", "nearest", m, sizeof m, err, errlen)) ||
        (rc = gq_onnx_attr_str(n, "coordinate_transformation_mode", "half_pixel", c, sizeof c, err,
                               errlen)) ||
        (rc =
             gq_onnx_attr_str(n, "nearest_mode", "round_prefer_floor", nm, sizeof nm, err, errlen)))
        return rc;
    int im = s_lookup(m, modes, 3), ic = s_lookup(c, ctms, 6), ir = s_lookup(nm, rnds, 4);
    if (im < 0 || ic < 0 || ir < 0) {
        gq_errf(err, errlen,
                "mode '%s', coordinate_transformation_mode '%s', nearest_mode '%s': "
                "one is not supported",
                m, c, nm);
        return GQ_EUNSUPPORTED;
    }
    if (gq_onnx_attr_int(n, "antialias", 0) || gq_onnx_attr(n, "axes")) {
        gq_errf(err, errlen, "antialias and axes (opset 18) are not supported");
        return GQ_EUNSUPPORTED;
    }
    r->mode = (s_mode_t)im, r->ctm = (s_ctm_t)ic, r->rnd = (s_round_t)ir;
    r->a = gq_onnx_attr_float(n, "cubic_coeff_a", -0.75f);
    r->extrap = gq_onnx_attr_float(n, "extrapolation_value", 0.0f);
    r->exclude = gq_onnx_attr_int(n, "exclude_outside", 0) != 0;
    return GQ_OK;
}

/* The input coordinate of output index o (ONNX's coordinate transformations). As in ONNX's
 * reference, the output width they use is in * scale, not the rounded output size. */
static double s_coord(const s_resize_t *r, double o, double scale, int64_t in, double start,
                      double end)
{
    double outw = scale * (double)in, inw = (double)(in - 1);
    switch (r->ctm) {
    case S_HALF_PIXEL:
        return (o + 0.5) / scale - 0.5;
    case S_PYTORCH_HALF:
        return outw > 1 ? (o + 0.5) / scale - 0.5 : 0;
    case S_ALIGN:
        return outw == 1 ? 0 : o * inw / (outw - 1);
    case S_ASYM:
        return o / scale;
    case S_TF_HALF_NN:
        return (o + 0.5) / scale;
    case S_TF_CROP:
        return outw > 1 ? start * inw + o * (end - start) * inw / (outw - 1)
                        : 0.5 * (start + end) * inw;
    }
    return o;
}

static int64_t s_nearest(s_round_t rnd, double x)
{
    double f = floor(x);
    switch (rnd) {
    case S_PREFER_FLOOR:
        return (int64_t)(x - f == 0.5 ? f : round(x));
    case S_PREFER_CEIL:
        return (int64_t)(x - f == 0.5 ? f + 1 : round(x));
    case S_FLOOR:
        return (int64_t)f;
    case S_CEIL:
        return (int64_t)ceil(x);
    }
    return (int64_t)f;
}

static void s_cubic(double a, double t, double *w)
{
    double s = t + 1, u = 1 - t, v = 2 - t;
    w[0] = ((a * s - 5 * a) * s + 8 * a) * s - 4 * a;
    w[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
    w[2] = ((a + 2) * u - (a + 3)) * u * u + 1;
    w[3] = ((a * v - 5 * a) * v + 8 * a) * v - 4 * a;
}

static void s_make_taps(const s_resize_t *r, double x, int64_t in, s_taps_t *t)
{
    memset(t, 0, sizeof *t);
    if (r->ctm == S_TF_CROP && (x < 0 || x > (double)(in - 1))) {
        t->extrap = true;
        return;
    }
    if (r->mode == S_NEAREST) {
        int64_t i = s_nearest(r->rnd, x);
        t->n = 1, t->idx[0] = i < 0 ? 0 : i >= in ? in - 1 : i, t->w[0] = 1;
        return;
    }
    /* ONNX's reference: an integral x takes ratio 1 over the taps below it. */
    double f = floor(x), ratio = x == f ? 1 : x - f;
    int n = r->mode == S_LINEAR ? 2 : 4;
    int64_t base = (int64_t)f - (x == f ? n / 2 : n / 2 - 1);
    if (n == 2)
        t->w[0] = 1 - ratio, t->w[1] = ratio;
    else
        s_cubic(r->a, ratio, t->w);
    double sum = 0;
    for (int k = 0; k < n; k++) {
        int64_t i = base + k;
        if (r->exclude && (i < 0 || i >= in))
            t->w[k] = 0;
        sum += t->w[k];
        t->idx[k] = i < 0 ? 0 : i >= in ? in - 1 : i;
    }
    if (r->exclude && sum != 0)
        for (int k = 0; k < n; k++)
            t->w[k] /= sum;
    t->n = n;
}

/* y = x resized along one dim: outer x [in -> out] x inner. */
static gq_status s_pass(const s_resize_t *r, const double *x, double *y, int64_t outer, int64_t in,
                        int64_t out, int64_t inner, double scale, double start, double end,
                        char *err, size_t errlen)
{
    s_taps_t *taps = malloc((size_t)(out + 1) * sizeof *taps);
    if (!taps) {
        gq_errf(err, errlen, "out of memory");
        return GQ_ENOMEM;
    }
    for (int64_t o = 0; o < out; o++)
        s_make_taps(r, s_coord(r, (double)o, scale, in, start, end), in, &taps[o]);
    for (int64_t a = 0; a < outer; a++)
        for (int64_t o = 0; o < out; o++) {
            const s_taps_t *t = &taps[o];
            double *yo = y + (a * out + o) * inner;
            for (int64_t q = 0; q < inner; q++) {
                double acc = t->extrap ? r->extrap : 0;
                for (int k = 0; k < t->n; k++)
                    acc += t->w[k] * x[(a * in + t->idx[k]) * inner + q];
                yo[q] = acc;
            }
        }
    free(taps);
    return GQ_OK;
}

/* Output dims and per-dim scales from scales or sizes; roi for tf_crop_and_resize. */
static gq_status s_resize_shape(int opset, gq_onnx_val_t *const *in, int nin, gq_tdesc_t *od,
                                double *scale, double *roi, char *err, size_t errlen)
{
    const gq_tdesc_t *x = &in[0]->desc;
    const gq_onnx_val_t *rv = nin > 1 ? in[1] : NULL, *sv = nin > 2 ? in[2] : NULL,
                        *zv = nin > 3 ? in[3] : NULL;
    int64_t sizes[GQ_MAX_DIMS];
    int ns = 0;
    gq_status rc;
    (void)opset;
    *od = *x;
    for (int d = 0; d < x->ndim; d++)
        roi[d] = 0, roi[d + x->ndim] = 1, scale[d] = 1;
    if (rv && rv->nbytes) {
        if (gq_tdesc_numel(&rv->desc) != 2 * x->ndim || !gq_onnx_dtype_real(rv->desc.dtype)) {
            gq_errf(err, errlen, "roi must hold 2 x rank = %d values", 2 * x->ndim);
            return GQ_ESHAPE;
        }
        for (int i = 0; i < 2 * x->ndim; i++)
            roi[i] = gq_onnx_getd(rv->data, rv->desc.dtype, i);
    }
    if (zv && zv->nbytes) {
        if ((rc = gq_onnx_ints(zv, "sizes", sizes, GQ_MAX_DIMS, &ns, err, errlen)))
            return rc;
        if (ns != x->ndim) {
            gq_errf(err, errlen, "sizes has %d values for rank %d", ns, x->ndim);
            return GQ_ESHAPE;
        }
        for (int d = 0; d < x->ndim; d++) {
            od->shape[d] = sizes[d];
            scale[d] = x->shape[d] ? (double)sizes[d] / (double)x->shape[d] : 1;
        }
    } else if (sv && sv->nbytes) {
        if (gq_tdesc_numel(&sv->desc) != x->ndim || sv->desc.dtype != GQ_F32) {
            gq_errf(err, errlen, "scales must be f32[%d]", x->ndim);
            return GQ_ESHAPE;
        }
        for (int d = 0; d < x->ndim; d++) {
            scale[d] = ((const float *)sv->data)[d];
            od->shape[d] = (int64_t)floor((double)x->shape[d] * scale[d]);
        }
    } else {
        gq_errf(err, errlen, "neither scales nor sizes is given");
        return GQ_EPARAM;
    }
    for (int d = 0; d < x->ndim; d++)
        if (od->shape[d] < 0 || scale[d] <= 0) {
            gq_errf(err, errlen, "dim %d: size %lld, scale %g", d, (long long)od->shape[d],
                    scale[d]);
            return GQ_EPARAM;
        }
    return GQ_OK;
}

static gq_status s_resize(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                          gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout;
    s_resize_t r;
    double scale[GQ_MAX_DIMS], roi[2 * GQ_MAX_DIMS];
    gq_tdesc_t od;
    gq_status rc = gq_onnx_need(in, nin, 1, err, errlen);
    if (rc || (rc = s_resize_attrs(n, &r, err, errlen)) ||
        (rc = s_resize_shape(opset, in, nin, &od, scale, roi, err, errlen)))
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    if (!gq_onnx_dtype_real(x->dtype) || x->dtype == GQ_BOOL) {
        gq_errf(err, errlen, "%s input is not supported", gq_dtype_name(x->dtype));
        return GQ_EDTYPE;
    }
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    /* Two double buffers, each as large as the largest intermediate shape. */
    gq_tdesc_t cur = *x;
    int64_t cap = gq_tdesc_numel(x);
    for (int d = x->ndim - 1; d >= 0; d--) {
        cur.shape[d] = od.shape[d];
        int64_t c = gq_tdesc_numel(&cur);
        cap = c > cap ? c : cap;
    }
    size_t bytes;
    double *a = gq_onnx_size3(cap, 1, sizeof *a, &bytes) ? malloc(bytes + 8) : NULL;
    double *b = a ? malloc(bytes + 8) : NULL;
    if (!b) {
        free(a);
        gq_errf(err, errlen, "out of memory");
        return GQ_ENOMEM;
    }
    for (int64_t i = 0, nx = gq_tdesc_numel(x); i < nx; i++)
        a[i] = gq_onnx_getd(in[0]->data, x->dtype, i);
    cur = *x;
    for (int d = x->ndim - 1; d >= 0 && !rc; d--) {
        if (cur.shape[d] == od.shape[d] && scale[d] == 1 && r.ctm != S_TF_CROP)
            continue; /* the identity along this dim */
        int64_t outer = 1, inner = 1;
        for (int e = 0; e < x->ndim; e++)
            if (e < d)
                outer *= cur.shape[e];
            else if (e > d)
                inner *= cur.shape[e];
        rc = s_pass(&r, a, b, outer, cur.shape[d], od.shape[d], inner, scale[d], roi[d],
                    roi[d + x->ndim], err, errlen);
        cur.shape[d] = od.shape[d];
        double *t = a;
        a = b, b = t;
    }
    for (int64_t i = 0, no = gq_tdesc_numel(&od); !rc && i < no; i++)
        gq_onnx_setd(out->data, od.dtype, i,
                     gq_onnx_dtype_int(od.dtype) || od.dtype == GQ_U8 ? nearbyint(a[i]) : a[i]);
    free(a);
    free(b);
    return rc;
}

const gq_onnx_kernel_t gq_onnx_kernels_resize[] = {
    {"Resize", 11, s_resize},
};
const int gq_onnx_kernels_resize_count = GQ_ONNX_COUNT(gq_onnx_kernels_resize);
