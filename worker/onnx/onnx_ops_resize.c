/* ONNX Resize (opset 11+): nearest (four rounding modes), linear and cubic (cubic_coeff_a,
 * exclude_outside, and from opset 18 antialias: the filter stretched by 1 / scale when
 * downscaling) under every coordinate_transformation_mode, tf_crop_and_resize with its roi and
 * extrapolation_value; opset 18's axes (scales, sizes and roi given for those dims only) and
 * keep_aspect_ratio_policy. Done as ONNX's reference does it — one dimension at a time, last to
 * first, each output index a weighted sum of input taps, edge indices clamped — in double, for
 * any real dtype. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"
#include "util.h"

typedef enum { S_NEAREST, S_LINEAR, S_CUBIC } s_mode_t;
typedef enum {
    S_HALF_PIXEL,
    S_PYTORCH_HALF,
    S_ALIGN,
    S_ASYM,
    S_TF_HALF_NN,
    S_TF_CROP,
    S_HALF_SYM
} s_ctm_t;
typedef enum { S_PREFER_FLOOR, S_PREFER_CEIL, S_FLOOR, S_CEIL } s_round_t;
typedef enum { S_STRETCH, S_NOT_LARGER, S_NOT_SMALLER } s_keep_t;

typedef struct {
    s_mode_t mode;
    s_ctm_t ctm;
    s_round_t rnd;
    s_keep_t keep;
    double a, extrap;
    bool exclude, antialias;
    int naxes; /* -1: every dim */
    int64_t axes[GQ_MAX_DIMS];
} s_resize_t;

/* The taps of one output index: input indices base + k for k in 0..n (clamped to the input),
 * weights beside (w[0..n)); extrap when it lies outside the crop (tf_crop_and_resize). */
typedef struct {
    int64_t base;
    bool extrap;
} s_taps_t;

static int s_lookup(const char *v, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v, names[i]))
            return i;
    return -1;
}

/* The attributes; rank: the input's (axes are checked against it). */
static gq_status s_resize_attrs(const Onnx__NodeProto *n, int rank, s_resize_t *r, char *err,
                                size_t errlen)
{
    static const char *const modes[] = {"nearest", "linear", "cubic"};
    static const char *const ctms[] = {
        "half_pixel",           "pytorch_half_pixel", "align_corners",       "asymmetric",
        "tf_half_pixel_for_nn", "tf_crop_and_resize", "half_pixel_symmetric"};
    static const char *const rnds[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    static const char *const keeps[] = {"stretch", "not_larger", "not_smaller"};
    char m[32], c[32], nm[32], kp[32];
    gq_status rc;
    if ((rc = gq_onnx_attr_str(n, "mode", "nearest", m, sizeof m, err, errlen)) ||
        (rc = gq_onnx_attr_str(n, "coordinate_transformation_mode", "half_pixel", c, sizeof c, err,
                               errlen)) ||
        (rc = gq_onnx_attr_str(n, "nearest_mode", "round_prefer_floor", nm, sizeof nm, err,
                               errlen)) ||
        (rc = gq_onnx_attr_str(n, "keep_aspect_ratio_policy", "stretch", kp, sizeof kp, err,
                               errlen)) ||
        (rc = gq_onnx_attr_ints(n, "axes", r->axes, GQ_MAX_DIMS, &r->naxes, err, errlen)))
        return rc;
    int im = s_lookup(m, modes, 3), ic = s_lookup(c, ctms, 7), ir = s_lookup(nm, rnds, 4),
        ik = s_lookup(kp, keeps, 3);
    if (im < 0 || ic < 0 || ir < 0 || ik < 0) {
        gq_errf(err, errlen,
                "mode '%s', coordinate_transformation_mode '%s', nearest_mode '%s', "
                "keep_aspect_ratio_policy '%s': one is not supported",
                m, c, nm, kp);
        return GQ_EUNSUPPORTED;
    }
    for (int i = 0; i < r->naxes; i++) {
        int64_t a = r->axes[i];
        if (a < -rank || a >= rank) {
            gq_errf(err, errlen, "axes[%d] = %lld is out of range for rank %d", i, (long long)a,
                    rank);
            return GQ_EPARAM;
        }
        r->axes[i] = a < 0 ? a + rank : a;
        for (int j = 0; j < i; j++)
            if (r->axes[j] == r->axes[i]) {
                gq_errf(err, errlen, "axes repeats dim %lld", (long long)r->axes[i]);
                return GQ_EPARAM;
            }
    }
    r->mode = (s_mode_t)im, r->ctm = (s_ctm_t)ic, r->rnd = (s_round_t)ir, r->keep = (s_keep_t)ik;
    r->a = gq_onnx_attr_float(n, "cubic_coeff_a", -0.75f);
    r->extrap = gq_onnx_attr_float(n, "extrapolation_value", 0.0f);
    r->exclude = gq_onnx_attr_int(n, "exclude_outside", 0) != 0;
    /* The spec's antialias changes the linear and cubic filters; nearest has none to stretch. */
    r->antialias = gq_onnx_attr_int(n, "antialias", 0) != 0 && r->mode != S_NEAREST;
    return GQ_OK;
}

/* The input coordinate of output index o of out (ONNX's coordinate transformations). As in
 * ONNX's reference, the output width they use is in * scale, not the rounded output size. */
static double s_coord(const s_resize_t *r, double o, double scale, int64_t in, int64_t out,
                      double start, double end)
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
    case S_HALF_SYM: /* the centre of the input maps to the centre of the rounded output */
        return (double)in / 2 * (1 - (double)out / outw) + (o + 0.5) / scale - 0.5;
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

/* Keys' cubic kernel at distance t (a: cubic_coeff_a). */
static double s_keys(double a, double t)
{
    t = fabs(t);
    if (t <= 1)
        return ((a + 2) * t - (a + 3)) * t * t + 1;
    if (t < 2)
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
    return 0;
}

/* The first tap's offset from an index's base (its taps run from there, 2 * -first + 2 of
 * them): -1 for cubic, 0 for linear, wider with antialias when downscaling (the filter
 * stretched by 1 / scale). 0 for nearest, which has one tap. */
static double s_first_tap(const s_resize_t *r, double scale)
{
    double s = r->antialias && scale < 1 ? scale : 1;
    return r->mode == S_NEAREST ? 0 : floor((r->mode == S_CUBIC ? -2 : -1) / s) + 1;
}

/* Fills t and w[0..n) for input coordinate x; first: s_first_tap's offset. */
static void s_make_taps(const s_resize_t *r, double x, int64_t in, double scale, int64_t first,
                        int64_t n, s_taps_t *t, double *w)
{
    t->extrap = r->ctm == S_TF_CROP && (x < 0 || x > (double)(in - 1));
    t->base = 0;
    if (t->extrap)
        return;
    if (r->mode == S_NEAREST) {
        t->base = s_nearest(r->rnd, x);
        w[0] = 1;
        return;
    }
    /* ONNX's reference: an integral x takes ratio 1 over the taps below it. */
    double f = floor(x), ratio = x == f ? 1 : x - f, s = r->antialias && scale < 1 ? scale : 1;
    t->base = (int64_t)f - (x == f) + first;
    double sum = 0;
    for (int64_t k = 0; k < n; k++) {
        double d = ((double)(first + k) - ratio) * s;
        if (r->mode == S_LINEAR)
            w[k] = fmax(0, 1 - fabs(d));
        else
            w[k] = s_keys(r->a, d);
        int64_t i = t->base + k;
        if (r->exclude && (i < 0 || i >= in))
            w[k] = 0;
        sum += w[k];
    }
    /* The stretched filters are normalized, and so are the taps exclude_outside keeps. */
    if ((r->exclude || s < 1) && sum != 0)
        for (int64_t k = 0; k < n; k++)
            w[k] /= sum;
}

/* y = x resized along one dim: outer x [in -> out] x inner. */
static gq_status s_pass(const s_resize_t *r, const double *x, double *y, int64_t outer, int64_t in,
                        int64_t out, int64_t inner, double scale, double start, double end,
                        char *err, size_t errlen)
{
    if (out == 0)
        return GQ_OK;
    /* out >= 1 means scale >= 1 / in (or out / in, from sizes): the filter spans at most about
     * 4 x in taps, and all outputs together about 4 x in + 2 x out weights. */
    double fd = s_first_tap(r, scale);
    if (!(fd >= -(double)(4 * in + 8))) {
        gq_errf(err, errlen, "scale %g over %lld input elements makes a filter too wide", scale,
                (long long)in);
        return GQ_EPARAM;
    }
    int64_t first = (int64_t)fd, n = r->mode == S_NEAREST ? 1 : 2 - 2 * first;
    size_t tb, wb;
    s_taps_t *taps = gq_onnx_size3(out, 1, sizeof *taps, &tb) ? malloc(tb) : NULL;
    double *w = taps && gq_onnx_size3(out, n, sizeof *w, &wb) ? malloc(wb) : NULL;
    if (!w) {
        free(taps);
        gq_errf(err, errlen, "out of memory for the taps of %lld outputs", (long long)out);
        return GQ_ENOMEM;
    }
    for (int64_t o = 0; o < out; o++)
        s_make_taps(r, s_coord(r, (double)o, scale, in, out, start, end), in, scale, first, n,
                    &taps[o], w + o * n);
    for (int64_t a = 0; a < outer; a++)
        for (int64_t o = 0; o < out; o++) {
            const s_taps_t *t = &taps[o];
            const double *wo = w + o * n;
            double *yo = y + (a * out + o) * inner;
            for (int64_t q = 0; q < inner; q++) {
                double acc = t->extrap ? r->extrap : 0;
                for (int64_t k = 0; k < n && !t->extrap; k++) {
                    int64_t i = t->base + k;
                    i = i < 0 ? 0 : i >= in ? in - 1 : i;
                    acc += wo[k] * x[(a * in + i) * inner + q];
                }
                yo[q] = acc;
            }
        }
    free(w);
    free(taps);
    return GQ_OK;
}

/* Output dims and per-dim scales from scales or sizes (given for r's axes, or every dim),
 * keep_aspect_ratio_policy applied; roi for tf_crop_and_resize. */
static gq_status s_resize_shape(const s_resize_t *r, gq_onnx_val_t *const *in, int nin,
                                gq_tdesc_t *od, double *scale, double *roi, char *err,
                                size_t errlen)
{
    const gq_tdesc_t *x = &in[0]->desc;
    const gq_onnx_val_t *rv = nin > 1 ? in[1] : NULL, *sv = nin > 2 ? in[2] : NULL,
                        *zv = nin > 3 ? in[3] : NULL;
    int64_t sizes[GQ_MAX_DIMS], ax[GQ_MAX_DIMS];
    int ns = 0, na = r->naxes < 0 ? x->ndim : r->naxes;
    gq_status rc;
    *od = *x;
    for (int d = 0; d < x->ndim; d++)
        roi[d] = 0, roi[d + x->ndim] = 1, scale[d] = 1;
    for (int i = 0; i < na; i++)
        ax[i] = r->naxes < 0 ? i : r->axes[i];
    if (rv && rv->nbytes) {
        if (gq_tdesc_numel(&rv->desc) != 2 * na || !gq_onnx_dtype_real(rv->desc.dtype)) {
            gq_errf(err, errlen, "roi must hold 2 x %d values", na);
            return GQ_ESHAPE;
        }
        for (int i = 0; i < na; i++) {
            roi[ax[i]] = gq_onnx_getd(rv->data, rv->desc.dtype, i);
            roi[ax[i] + x->ndim] = gq_onnx_getd(rv->data, rv->desc.dtype, i + na);
        }
    }
    if (zv && zv->nbytes) {
        if ((rc = gq_onnx_ints(zv, "sizes", sizes, GQ_MAX_DIMS, &ns, err, errlen)))
            return rc;
        if (ns != na) {
            gq_errf(err, errlen, "sizes has %d values for %d dims", ns, na);
            return GQ_ESHAPE;
        }
        double keep = r->keep == S_NOT_LARGER ? INFINITY : 0;
        for (int i = 0; i < na; i++) {
            int64_t d = ax[i];
            /* An empty dim stays empty: nothing to interpolate from. */
            if (sizes[i] < 0 || sizes[i] > GQ_MAX_DIM_SIZE || (!x->shape[d] && sizes[i])) {
                gq_errf(err, errlen, "sizes[%d] = %lld is no size for dim %lld (of %lld)", i,
                        (long long)sizes[i], (long long)d, (long long)x->shape[d]);
                return GQ_EPARAM;
            }
            od->shape[d] = sizes[i];
            scale[d] = x->shape[d] ? (double)sizes[i] / (double)x->shape[d] : 1;
            keep = r->keep == S_NOT_LARGER ? fmin(keep, scale[d]) : fmax(keep, scale[d]);
        }
        for (int i = 0; i < na && r->keep != S_STRETCH; i++) {
            int64_t d = ax[i];
            double v = keep * (double)x->shape[d] + 0.5; /* rounded half up, as ONNX does */
            if (!(v < (double)GQ_MAX_DIM_SIZE)) {
                gq_errf(err, errlen, "keep_aspect_ratio_policy makes dim %lld %g long",
                        (long long)d, v);
                return GQ_EPARAM;
            }
            scale[d] = keep, od->shape[d] = (int64_t)v;
        }
    } else if (sv && sv->nbytes) {
        if (gq_tdesc_numel(&sv->desc) != na || sv->desc.dtype != GQ_F32) {
            gq_errf(err, errlen, "scales must be f32[%d]", na);
            return GQ_ESHAPE;
        }
        for (int i = 0; i < na; i++) {
            int64_t d = ax[i];
            scale[d] = ((const float *)sv->data)[i];
            double v = floor((double)x->shape[d] * scale[d]);
            if (!(scale[d] > 0) || !(v < (double)GQ_MAX_DIM_SIZE)) {
                gq_errf(err, errlen, "scales[%d] = %g makes no size of dim %lld (of %lld)", i,
                        scale[d], (long long)d, (long long)x->shape[d]);
                return GQ_EPARAM;
            }
            od->shape[d] = (int64_t)v;
        }
    } else {
        gq_errf(err, errlen, "neither scales nor sizes is given");
        return GQ_EPARAM;
    }
    return GQ_OK;
}

static gq_status s_resize(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                          gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout, (void)opset;
    s_resize_t r;
    double scale[GQ_MAX_DIMS], roi[2 * GQ_MAX_DIMS];
    gq_tdesc_t od;
    gq_status rc = gq_onnx_need(in, nin, 1, err, errlen);
    if (rc || (rc = s_resize_attrs(n, in[0]->desc.ndim, &r, err, errlen)) ||
        (rc = s_resize_shape(&r, in, nin, &od, scale, roi, err, errlen)))
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
