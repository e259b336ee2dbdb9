/* ONNX kernels of detection and spatial-transformer models: GridSample (2-D and N-D,
 * linear/nearest/cubic, zeros/border/reflection padding) and AffineGrid, RoiAlign,
 * NonMaxSuppression, MaxUnpool, CenterCropPad; and the two data-dependent helpers such models
 * use, Unique and Det. They follow ONNX's reference implementation, which the node tests
 * check, but where it departs from PyTorch, whose functions the spec names (GridSample's cubic
 * taps by the borders, AffineGrid's dims of 1); RoiAlign's max mode is onnxruntime's (the max
 * of the weighted corners). In double, but for NonMaxSuppression's IoU: in float, as the
 * reference decides it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"
#include "util.h"

/* Element i of a float tensor (f16, f32, f64) as a double, and back. */
static inline double s_ld(const void *p, gq_dtype_t dt, int64_t i)
{
    return dt == GQ_F32   ? ((const float *)p)[i]
           : dt == GQ_F64 ? ((const double *)p)[i]
                          : gq_onnx_getd(p, dt, i);
}

static inline void s_st(void *p, gq_dtype_t dt, int64_t i, double v)
{
    if (dt == GQ_F32)
        ((float *)p)[i] = (float)v;
    else if (dt == GQ_F64)
        ((double *)p)[i] = v;
    else
        gq_onnx_setd(p, dt, i, v);
}

/* Checks that input `what` is f16, f32 or f64. */
static gq_status s_floating(const gq_onnx_val_t *v, const char *what, char *err, size_t errlen)
{
    gq_dtype_t dt = v->desc.dtype;
    if (dt != GQ_F32 && dt != GQ_F64 && dt != GQ_F16) {
        gq_errf(err, errlen, "%s is %s: f16, f32 and f64 are supported", what, gq_dtype_name(dt));
        return GQ_EDTYPE;
    }
    return GQ_OK;
}

/* Checks that input `what` is an i64 tensor. */
static gq_status s_int64(const gq_onnx_val_t *v, const char *what, char *err, size_t errlen)
{
    if (v->desc.dtype != GQ_I64) {
        gq_errf(err, errlen, "%s is %s, want i64", what, gq_dtype_name(v->desc.dtype));
        return GQ_EDTYPE;
    }
    return GQ_OK;
}

/* Scratch from the heap for n elements of es bytes each (n * es checked); NULL with err set. */
static void *s_alloc(int64_t n, size_t es, char *err, size_t errlen)
{
    size_t bytes;
    void *p = gq_onnx_size3(n > 0 ? n : 1, 1, es, &bytes) ? malloc(bytes) : NULL;
    if (!p)
        gq_errf(err, errlen, "out of memory for %lld scratch elements", (long long)n);
    return p;
}

/* A stable merge sort of idx[0..n) by cmp(ctx, a, b) (< 0: a first); tmp holds n. */
typedef int (*s_cmp_fn)(const void *ctx, int64_t a, int64_t b);

static void s_msort(int64_t *idx, int64_t *tmp, int64_t n, s_cmp_fn cmp, const void *ctx)
{
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi)
                tmp[o++] = cmp(ctx, idx[j], idx[i]) < 0 ? idx[j++] : idx[i++];
            while (i < mid)
                tmp[o++] = idx[i++];
            while (j < hi)
                tmp[o++] = idx[j++];
        }
        memcpy(idx, tmp, (size_t)n * sizeof *idx);
    }
}

/* ---- GridSample ---- */

typedef enum { S_GS_LINEAR, S_GS_NEAREST, S_GS_CUBIC } s_gs_mode_t;
typedef enum { S_GS_ZEROS, S_GS_BORDER, S_GS_REFLECT } s_gs_pad_t;

typedef struct {
    s_gs_mode_t mode;
    s_gs_pad_t pad;
    bool align;
} s_gs_t;

/* x reflected by the nearer border until it lies in [lo, hi] (PyTorch's rule). */
static double s_reflect(double x, double lo, double hi)
{
    double rng = hi - lo;
    if (!(rng > 0))
        return lo;
    if (x >= lo && x <= hi)
        return x;
    double dx = x < lo ? lo - x : x - hi, n = floor(dx / rng), r = dx - n * rng;
    bool even = fmod(n, 2) == 0;
    double v = (x < lo) == even ? lo + r : hi - r;
    return v < lo ? lo : v > hi ? hi : v;
}

/* The input index tap i (an integral value) of a dim of d reads under the padding; -1: the
 * tap reads zero (outside, zeros padding). lo, hi: the reflection borders. */
static int64_t s_gs_index(const s_gs_t *g, double i, int64_t d, double lo, double hi)
{
    switch (g->pad) {
    case S_GS_ZEROS:
        return i >= 0 && i < (double)d ? (int64_t)i : -1;
    case S_GS_BORDER:
        return i <= 0 ? 0 : i >= (double)(d - 1) ? d - 1 : (int64_t)i;
    case S_GS_REFLECT: {
        int64_t k = (int64_t)s_reflect(i, lo, hi);
        return k < 0 ? 0 : k >= d ? d - 1 : k;
    }
    }
    return -1;
}

/* The taps along one dim of d for normalized coordinate c: their indices (-1: zero) and
 * weights; returns how many. */
static int s_gs_taps(const s_gs_t *g, double c, int64_t d, int64_t *idx, double *w)
{
    double x = g->align ? (c + 1) / 2 * (double)(d - 1) : ((c + 1) * (double)d - 1) / 2;
    double lo = g->align ? 0 : -0.5, hi = g->align ? (double)(d - 1) : (double)d - 0.5;
    if (!isfinite(x)) { /* only border padding gives a point at infinity a value */
        if (g->pad != S_GS_BORDER || isnan(x)) {
            idx[0] = -1, w[0] = 0;
            return 1;
        }
        x = x < 0 ? 0 : (double)(d - 1);
    }
    if (g->mode == S_GS_NEAREST)
        x = nearbyint(x); /* halves to even, as PyTorch */
    /* Cubic pads each of its taps, not the point (PyTorch and onnxruntime; ONNX's reference
     * moves the point first, and so differs near the borders). */
    if ((x < lo || x > hi) && g->mode != S_GS_CUBIC) {
        if (g->pad == S_GS_BORDER)
            x = x < 0 ? 0 : x > (double)(d - 1) ? (double)(d - 1) : x;
        else if (g->pad == S_GS_REFLECT)
            x = s_reflect(x, lo, hi);
    }
    if (g->mode == S_GS_NEAREST) {
        idx[0] = s_gs_index(g, trunc(x), d, lo, hi), w[0] = 1;
        return 1;
    }
    double x0 = floor(x), t = x - x0;
    if (g->mode == S_GS_LINEAR) {
        idx[0] = s_gs_index(g, x0, d, lo, hi), w[0] = 1 - t;
        idx[1] = s_gs_index(g, x0 + 1, d, lo, hi), w[1] = t;
        return 2;
    }
    const double a = -0.75, s = t + 1, u = 1 - t, v = 2 - t; /* Keys' kernel, as PyTorch */
    w[0] = ((a * s - 5 * a) * s + 8 * a) * s - 4 * a;
    w[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
    w[2] = ((a + 2) * u - (a + 3)) * u * u + 1;
    w[3] = ((a * v - 5 * a) * v + 8 * a) * v - 4 * a;
    for (int j = 0; j < 4; j++)
        idx[j] = s_gs_index(g, x0 - 1 + j, d, lo, hi);
    return 4;
}

static gq_status s_gs_attrs(const Onnx__NodeProto *n, int opset, s_gs_t *g, char *err,
                            size_t errlen)
{
    /* Opset 20 renamed bilinear and bicubic (they cover N-D there). */
    static const char *const modes[2][3] = {{"bilinear", "nearest", "bicubic"},
                                            {"linear", "nearest", "cubic"}};
    static const char *const pads[] = {"zeros", "border", "reflection"};
    char m[16], p[16];
    gq_status rc;
    const char *const *mv = modes[opset >= 20];
    if ((rc = gq_onnx_attr_str(n, "mode", mv[0], m, sizeof m, err, errlen)) ||
        (rc = gq_onnx_attr_str(n, "padding_mode", "zeros", p, sizeof p, err, errlen)))
        return rc;
    int im = -1, ip = -1;
    for (int i = 0; i < 3; i++) {
        im = im < 0 && !strcmp(m, mv[i]) ? i : im;
        ip = ip < 0 && !strcmp(p, pads[i]) ? i : ip;
    }
    if (im < 0 || ip < 0) {
        gq_errf(err, errlen,
                "mode '%s' or padding_mode '%s' is not one of opset %d's (%s, %s, %s; "
                "zeros, border, reflection)",
                m, p, opset, mv[0], mv[1], mv[2]);
        return GQ_EPARAM;
    }
    g->mode = im == 0 ? S_GS_LINEAR : im == 1 ? S_GS_NEAREST : S_GS_CUBIC;
    g->pad = (s_gs_pad_t)ip;
    g->align = gq_onnx_attr_int(n, "align_corners", 0) != 0;
    return GQ_OK;
}

/* GridSample: Y [N, C, O...] samples X [N, C, D...] at grid [N, O..., k] (normalized to
 * [-1, 1], the last dim's coordinate first). Opset 16: 2-D only; 20: k = 1..6 spatial dims. */
static gq_status s_grid_sample(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                               int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout;
    s_gs_t g;
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    if (rc || (rc = s_floating(in[0], "X", err, errlen)) ||
        (rc = s_floating(in[1], "grid", err, errlen)) ||
        (rc = s_gs_attrs(n, opset, &g, err, errlen)))
        return rc;
    const gq_tdesc_t *x = &in[0]->desc, *gd = &in[1]->desc;
    int k = x->ndim - 2;
    if (k < 1 || (opset < 20 && k != 2) || gd->ndim != x->ndim || gd->shape[0] != x->shape[0] ||
        gd->shape[gd->ndim - 1] != k) {
        char a[96], b[96];
        gq_errf(err, errlen, "X %s and grid %s do not fit: want X [N, C, %s] and grid [N, ..., %d]",
                gq_tdesc_str(x, a, sizeof a), gq_tdesc_str(gd, b, sizeof b),
                opset < 20 ? "H, W" : "D...", k > 0 ? k : 2);
        return GQ_ESHAPE;
    }
    gq_tdesc_t od = {.dtype = x->dtype, .ndim = x->ndim, .shape = {x->shape[0], x->shape[1]}};
    for (int i = 0; i < k; i++)
        od.shape[2 + i] = gd->shape[1 + i];
    if ((rc = gq_onnx_out(out, &od, err, errlen)) || !gq_tdesc_numel(&od))
        return rc;
    /* The output is not empty, so neither are N and C: S and P below are bounded by the
     * sizes of X and of the output. */
    int64_t S = 1, P = 1, st[GQ_MAX_DIMS];
    for (int i = 0; i < k; i++)
        if (!x->shape[2 + i]) {
            gq_errf(err, errlen, "X has an empty spatial dim: nothing to sample");
            return GQ_ESHAPE;
        }
    for (int i = k - 1; i >= 0; i--)
        st[i] = S, S *= x->shape[2 + i];
    for (int i = 0; i < k; i++)
        P *= gd->shape[1 + i];
    int64_t ncombo = 1;
    for (int i = 0; i < k; i++)
        ncombo *= g.mode == S_GS_CUBIC ? 4 : g.mode == S_GS_LINEAR ? 2 : 1;
    int64_t *coff = s_alloc(ncombo, sizeof *coff, err, errlen);
    double *cw = coff ? s_alloc(ncombo, sizeof *cw, err, errlen) : NULL;
    if (!cw) {
        free(coff);
        return GQ_ENOMEM;
    }
    const void *X = in[0]->data, *G = in[1]->data;
    for (int64_t b = 0; b < x->shape[0]; b++)
        for (int64_t p = 0; p < P; p++) {
            int64_t idx[GQ_MAX_DIMS][4];
            double w[GQ_MAX_DIMS][4];
            int nt[GQ_MAX_DIMS], t[GQ_MAX_DIMS] = {0}, nc = 0;
            for (int i = 0; i < k; i++)
                nt[i] = s_gs_taps(&g, s_ld(G, gd->dtype, (b * P + p) * k + (k - 1 - i)),
                                  x->shape[2 + i], idx[i], w[i]);
            for (bool more = true; more;) { /* every combination of the dims' taps */
                int64_t off = 0;
                double wt = 1;
                for (int i = 0; i < k && off >= 0; i++) {
                    int64_t j = idx[i][t[i]];
                    off = j < 0 ? -1 : off + j * st[i];
                    wt *= w[i][t[i]];
                }
                if (off >= 0)
                    coff[nc] = off, cw[nc++] = wt;
                more = false;
                for (int i = k - 1; i >= 0 && !more; i--)
                    if (++t[i] < nt[i])
                        more = true;
                    else
                        t[i] = 0;
            }
            for (int64_t c = 0; c < x->shape[1]; c++) {
                int64_t base = (b * x->shape[1] + c) * S;
                double acc = 0;
                for (int j = 0; j < nc; j++)
                    acc += cw[j] * s_ld(X, x->dtype, base + coff[j]);
                s_st(out->data, x->dtype, (b * x->shape[1] + c) * P + p, acc);
            }
        }
    free(coff);
    free(cw);
    return GQ_OK;
}

/* ---- AffineGrid ---- */

/* Normalized coordinate i of a dim of L: [-1, 1] at the corner pixels' centres
 * (align_corners), else at their outer edges; 0 for a dim of 1 (PyTorch's affine_grid; ONNX's
 * reference divides by zero there, onnxruntime gives 1 with align_corners). */
static double s_affine_base(int64_t i, int64_t L, bool align)
{
    if (L <= 1)
        return 0;
    if (align)
        return -1 + (double)i * (2.0 / (double)(L - 1));
    double step = 2.0 / (double)L;
    return -1 + step / 2 + (double)i * step;
}

/* AffineGrid (opset 20): the sampling grid [N, H, W, 2] (or [N, D, H, W, 3]) of the affine
 * maps theta [N, 2, 3] ([N, 3, 4]) for an output of size (N, C, H, W) ((N, C, D, H, W)). */
static gq_status s_affine_grid(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                               int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    int64_t sz[5];
    int ns;
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    if (rc || (rc = s_floating(in[0], "theta", err, errlen)) ||
        (rc = gq_onnx_ints(in[1], "size", sz, 5, &ns, err, errlen)))
        return rc;
    const gq_tdesc_t *th = &in[0]->desc;
    int k = ns - 2; /* spatial dims: 2 or 3 */
    if ((ns != 4 && ns != 5) || th->ndim != 3 || th->shape[0] != sz[0] || th->shape[1] != k ||
        th->shape[2] != k + 1) {
        char a[96];
        gq_errf(err, errlen,
                "theta %s and size (%d values) do not fit: want [N, 2, 3] and "
                "(N, C, H, W), or [N, 3, 4] and (N, C, D, H, W)",
                gq_tdesc_str(th, a, sizeof a), ns);
        return GQ_ESHAPE;
    }
    gq_tdesc_t od = {.dtype = th->dtype, .ndim = k + 2, .shape = {sz[0]}};
    for (int i = 0; i < k; i++) {
        if (sz[2 + i] < 0 || sz[2 + i] > GQ_MAX_DIM_SIZE) {
            gq_errf(err, errlen, "size[%d] = %lld is out of range", 2 + i, (long long)sz[2 + i]);
            return GQ_EPARAM;
        }
        od.shape[1 + i] = sz[2 + i];
    }
    od.shape[k + 1] = k;
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    bool align = gq_onnx_attr_int(n, "align_corners", 0) != 0;
    int64_t D = k == 3 ? sz[2] : 1, H = sz[k], W = sz[k + 1], o = 0;
    const void *T = in[0]->data;
    for (int64_t b = 0; b < sz[0]; b++) {
        double t[3][4];
        for (int r = 0; r < k; r++)
            for (int c = 0; c <= k; c++)
                t[r][c] = s_ld(T, th->dtype, (b * k + r) * (k + 1) + c);
        for (int64_t d = 0; d < D; d++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t w = 0; w < W; w++) {
                    /* Homogeneous (x, y[, z], 1): x along W, y along H, z along D. */
                    double v[4] = {s_affine_base(w, W, align), s_affine_base(h, H, align),
                                   k == 3 ? s_affine_base(d, D, align) : 1, 1};
                    for (int r = 0; r < k; r++) {
                        double acc = 0;
                        for (int c = 0; c <= k; c++)
                            acc += t[r][c] * v[c];
                        s_st(out->data, th->dtype, o++, acc);
                    }
                }
    }
    return GQ_OK;
}

/* ---- RoiAlign ---- */

/* One bilinear sample of a RoiAlign bin: four positions in the H x W plane and weights. */
typedef struct {
    int64_t pos[4];
    double w[4];
} s_roi_sample_t;

typedef struct {
    int64_t oh, ow, ratio;
    double scale;
    bool half_pixel, max;
} s_roi_t;

/* The box of roi r (its start and its bin sizes) and its sampling grid per bin; GQ_EPARAM
 * when not finite or the grid is absurd. */
static gq_status s_roi_box(const s_roi_t *ra, const gq_onnx_val_t *rois, int64_t r, double *y0,
                           double *x0, double *bh, double *bw, int64_t *gh, int64_t *gw, char *err,
                           size_t errlen)
{
    double off = ra->half_pixel ? 0.5 : 0, v[4];
    for (int j = 0; j < 4; j++)
        v[j] = s_ld(rois->data, rois->desc.dtype, r * 4 + j) * ra->scale - off;
    double rw = v[2] - v[0], rh = v[3] - v[1];
    if (!ra->half_pixel) /* malformed boxes are made 1 x 1 */
        rw = fmax(rw, 1), rh = fmax(rh, 1);
    *x0 = v[0], *y0 = v[1], *bh = rh / (double)ra->oh, *bw = rw / (double)ra->ow;
    double fh = ra->ratio > 0 ? (double)ra->ratio : ceil(rh / (double)ra->oh);
    double fw = ra->ratio > 0 ? (double)ra->ratio : ceil(rw / (double)ra->ow);
    /* A box may lie outside the map; its samples then read zeros, but still count. Real boxes
     * take thousands of samples (a 1000-pixel box in 7 x 7 bins: 143 x 143 per bin, 1e6 in
     * all); 2^26 is far past them and keeps a hostile box from running for hours. */
    const double lim = (double)(1 << 26);
    if (!isfinite(v[0] + v[1] + v[2] + v[3]) ||
        !(fh <= lim && fw <= lim && fh * fw * (double)ra->oh * (double)ra->ow <= lim)) {
        gq_errf(err, errlen,
                "roi %lld (%g, %g, %g, %g) is not finite or takes too many samples (%g x %g per "
                "bin)",
                (long long)r, v[0], v[1], v[2], v[3], fh, fw);
        return GQ_EPARAM;
    }
    *gh = fh > 0 ? (int64_t)fh : 0, *gw = fw > 0 ? (int64_t)fw : 0;
    return GQ_OK;
}

/* The bilinear sample at (y, x) of an H x W plane; all zero outside the map. */
static void s_roi_sample(int64_t H, int64_t W, double y, double x, s_roi_sample_t *s)
{
    memset(s, 0, sizeof *s);
    if (y < -1.0 || y > (double)H || x < -1.0 || x > (double)W)
        return;
    y = fmax(y, 0), x = fmax(x, 0);
    int64_t yl = (int64_t)y, xl = (int64_t)x, yh, xh;
    if (yl >= H - 1)
        yh = yl = H - 1, y = (double)yl;
    else
        yh = yl + 1;
    if (xl >= W - 1)
        xh = xl = W - 1, x = (double)xl;
    else
        xh = xl + 1;
    double ly = y - (double)yl, lx = x - (double)xl, hy = 1 - ly, hx = 1 - lx;
    s->pos[0] = yl * W + xl, s->pos[1] = yl * W + xh;
    s->pos[2] = yh * W + xl, s->pos[3] = yh * W + xh;
    s->w[0] = hy * hx, s->w[1] = hy * lx, s->w[2] = ly * hx, s->w[3] = ly * lx;
}

/* RoiAlign (opsets 10, 16): Y [R, C, oh, ow], each bin of roi r over X[batch_indices[r]] the
 * average (or max) of its bilinear samples. Opset 10 has no coordinate_transformation_mode:
 * it behaves as output_half_pixel, opset 16's default is half_pixel. */
static gq_status s_roi_align(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                             gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout;
    char mode[8], ctm[24];
    gq_status rc = gq_onnx_need(in, nin, 3, err, errlen);
    if (rc || (rc = s_floating(in[0], "X", err, errlen)) ||
        (rc = s_floating(in[1], "rois", err, errlen)) ||
        (rc = s_int64(in[2], "batch_indices", err, errlen)) ||
        (rc = gq_onnx_attr_str(n, "mode", "avg", mode, sizeof mode, err, errlen)) ||
        (rc = gq_onnx_attr_str(n, "coordinate_transformation_mode",
                               opset >= 16 ? "half_pixel" : "output_half_pixel", ctm, sizeof ctm,
                               err, errlen)))
        return rc;
    s_roi_t ra = {.oh = gq_onnx_attr_int(n, "output_height", 1),
                  .ow = gq_onnx_attr_int(n, "output_width", 1),
                  .ratio = gq_onnx_attr_int(n, "sampling_ratio", 0),
                  .scale = gq_onnx_attr_float(n, "spatial_scale", 1.0f),
                  .half_pixel = !strcmp(ctm, "half_pixel"),
                  .max = !strcmp(mode, "max")};
    if ((!ra.max && strcmp(mode, "avg")) || (!ra.half_pixel && strcmp(ctm, "output_half_pixel")) ||
        ra.oh < 1 || ra.ow < 1 || ra.oh > INT32_MAX || ra.ow > INT32_MAX || ra.ratio < 0 ||
        ra.ratio > 4096 || !isfinite(ra.scale)) {
        gq_errf(err, errlen,
                "mode '%s', coordinate_transformation_mode '%s', output %lld x %lld, "
                "sampling_ratio %lld, spatial_scale %g: one is out of range",
                mode, ctm, (long long)ra.oh, (long long)ra.ow, (long long)ra.ratio, ra.scale);
        return GQ_EPARAM;
    }
    const gq_tdesc_t *x = &in[0]->desc, *ro = &in[1]->desc, *bi = &in[2]->desc;
    if (x->ndim != 4 || ro->ndim != 2 || ro->shape[1] != 4 || bi->ndim != 1 ||
        bi->shape[0] != ro->shape[0]) {
        char a[96], b[96], c[96];
        gq_errf(err, errlen, "X %s, rois %s, batch_indices %s: want [N, C, H, W], [R, 4], [R]",
                gq_tdesc_str(x, a, sizeof a), gq_tdesc_str(ro, b, sizeof b),
                gq_tdesc_str(bi, c, sizeof c));
        return GQ_ESHAPE;
    }
    int64_t R = ro->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    gq_tdesc_t od = {.dtype = x->dtype, .ndim = 4, .shape = {R, C, ra.oh, ra.ow}};
    const int64_t *bix = in[2]->data;
    for (int64_t r = 0; r < R; r++) { /* every box checked before any work */
        double y0, x0, bh, bw;
        int64_t gh, gw;
        if ((rc = s_roi_box(&ra, in[1], r, &y0, &x0, &bh, &bw, &gh, &gw, err, errlen)))
            return rc;
        if (bix[r] < 0 || bix[r] >= x->shape[0]) {
            gq_errf(err, errlen, "batch_indices[%lld] = %lld is out of range for batch %lld",
                    (long long)r, (long long)bix[r], (long long)x->shape[0]);
            return GQ_EPARAM;
        }
    }
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    if (!gq_tdesc_numel(&od))
        return GQ_OK;
    if (!H || !W) {
        gq_errf(err, errlen, "X has an empty spatial dim: nothing to sample");
        return GQ_ESHAPE;
    }
    double *acc = s_alloc(C, sizeof *acc, err, errlen); /* per channel, over one bin */
    if (!acc)
        return GQ_ENOMEM;
    const void *X = in[0]->data;
    for (int64_t r = 0; r < R; r++) {
        double y0, x0, bh, bw;
        int64_t gh, gw;
        s_roi_box(&ra, in[1], r, &y0, &x0, &bh, &bw, &gh, &gw, err, errlen);
        for (int64_t ph = 0; ph < ra.oh; ph++)
            for (int64_t pw = 0; pw < ra.ow; pw++) {
                int64_t i = 0; /* samples so far */
                for (int64_t iy = 0; iy < gh; iy++) {
                    double y = y0 + (double)ph * bh + ((double)iy + 0.5) * bh / (double)gh;
                    for (int64_t ix = 0; ix < gw; ix++, i++) {
                        s_roi_sample_t sm;
                        s_roi_sample(H, W, y,
                                     x0 + (double)pw * bw + ((double)ix + 0.5) * bw / (double)gw,
                                     &sm);
                        for (int64_t c = 0; c < C; c++) {
                            int64_t base = (bix[r] * C + c) * H * W;
                            double v[4];
                            for (int j = 0; j < 4; j++)
                                v[j] = sm.w[j] * s_ld(X, x->dtype, base + sm.pos[j]);
                            if (!ra.max) {
                                acc[c] = (i ? acc[c] : 0) + v[0] + v[1] + v[2] + v[3];
                            } else { /* onnxruntime's max: of the weighted corners */
                                double m = fmax(fmax(v[0], v[1]), fmax(v[2], v[3]));
                                acc[c] = i ? fmax(acc[c], m) : m;
                            }
                        }
                    }
                }
                for (int64_t c = 0; c < C; c++) /* no samples: 0 */
                    s_st(out->data, x->dtype, ((r * C + c) * ra.oh + ph) * ra.ow + pw,
                         !i       ? 0
                         : ra.max ? acc[c]
                                  : acc[c] / (double)i);
            }
    }
    free(acc);
    return GQ_OK;
}

/* ---- NonMaxSuppression ---- */

/* Whether box a suppresses box b: their IoU over thr. In float, as the reference decides
 * it; boxes are [y1, x1, y2, x2] (any two corners) or, with center, [xc, yc, w, h]. */
static bool s_nms_suppress(const float *a, const float *b, bool center, float thr)
{
    float ax0, ax1, ay0, ay1, bx0, bx1, by0, by1;
    if (center) {
        ax0 = a[0] - a[2] / 2, ax1 = a[0] + a[2] / 2, ay0 = a[1] - a[3] / 2, ay1 = a[1] + a[3] / 2;
        bx0 = b[0] - b[2] / 2, bx1 = b[0] + b[2] / 2, by0 = b[1] - b[3] / 2, by1 = b[1] + b[3] / 2;
    } else {
        ax0 = fminf(a[1], a[3]), ax1 = fmaxf(a[1], a[3]), ay0 = fminf(a[0], a[2]);
        ay1 = fmaxf(a[0], a[2]), bx0 = fminf(b[1], b[3]), bx1 = fmaxf(b[1], b[3]);
        by0 = fminf(b[0], b[2]), by1 = fmaxf(b[0], b[2]);
    }
    float ix0 = fmaxf(ax0, bx0), ix1 = fminf(ax1, bx1), iy0 = fmaxf(ay0, by0),
          iy1 = fminf(ay1, by1);
    if (!(ix1 > ix0) || !(iy1 > iy0))
        return false;
    float inter = (ix1 - ix0) * (iy1 - iy0), area_a = (ax1 - ax0) * (ay1 - ay0),
          area_b = (bx1 - bx0) * (by1 - by0), uni = area_a + area_b - inter;
    if (!(inter > 0) || !(area_a > 0) || !(area_b > 0) || !(uni > 0))
        return false;
    return inter / uni > thr;
}

/* Higher score first (NaN last), then the lower index: the order boxes are picked in. */
static int s_nms_cmp(const void *ctx, int64_t a, int64_t b)
{
    const float *s = ctx;
    if (s[a] > s[b] || (!isnan(s[a]) && isnan(s[b])))
        return -1;
    if (s[a] < s[b] || (isnan(s[a]) && !isnan(s[b])))
        return 1;
    return 0;
}

/* A scalar or one-element input of type dt, else def (absent or empty). */
static gq_status s_scalar(gq_onnx_val_t *const *in, int nin, int i, gq_dtype_t dt, const char *what,
                          double def, double *v, char *err, size_t errlen)
{
    const gq_onnx_val_t *s = i < nin ? in[i] : NULL;
    *v = def;
    if (!s || !gq_tdesc_numel(&s->desc))
        return GQ_OK;
    if (s->desc.dtype != dt || gq_tdesc_numel(&s->desc) != 1 || s->desc.ndim > 1) {
        char a[96];
        gq_errf(err, errlen, "%s is %s: want a %s scalar", what,
                gq_tdesc_str(&s->desc, a, sizeof a), gq_dtype_name(dt));
        return GQ_EPARAM;
    }
    *v = dt == GQ_I64 ? (double)*(const int64_t *)s->data : gq_onnx_getd(s->data, dt, 0);
    return GQ_OK;
}

/* NonMaxSuppression (opsets 10, 11): per batch and class, boxes by falling score (over
 * score_threshold when given), each kept unless its IoU with a kept one is over
 * iou_threshold, at most max_output_boxes_per_class (default 0: none); the selected
 * (batch, class, box) triples as i64 [K, 3]. */
static gq_status s_nms(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                       gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    double maxd, iou, sthr;
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    if (rc ||
        (rc = s_scalar(in, nin, 2, GQ_I64, "max_output_boxes_per_class", 0, &maxd, err, errlen)) ||
        (rc = s_scalar(in, nin, 3, GQ_F32, "iou_threshold", 0, &iou, err, errlen)) ||
        (rc = s_scalar(in, nin, 4, GQ_F32, "score_threshold", -INFINITY, &sthr, err, errlen)))
        return rc;
    const gq_tdesc_t *bx = &in[0]->desc, *sc = &in[1]->desc;
    if (bx->dtype != GQ_F32 || sc->dtype != GQ_F32 || bx->ndim != 3 || bx->shape[2] != 4 ||
        sc->ndim != 3 || sc->shape[0] != bx->shape[0] || sc->shape[2] != bx->shape[1]) {
        char a[96], b[96];
        gq_errf(err, errlen, "boxes %s and scores %s: want f32 [B, S, 4] and [B, C, S]",
                gq_tdesc_str(bx, a, sizeof a), gq_tdesc_str(sc, b, sizeof b));
        return GQ_ESHAPE;
    }
    int center = (int)gq_onnx_attr_int(n, "center_point_box", 0);
    if (center != 0 && center != 1) {
        gq_errf(err, errlen, "center_point_box = %d: want 0 or 1", center);
        return GQ_EPARAM;
    }
    bool have_sthr = nin > 4 && in[4] && gq_tdesc_numel(&in[4]->desc);
    int64_t B = bx->shape[0], C = sc->shape[1], S = bx->shape[1];
    int64_t maxo = maxd < 0 ? 0 : maxd > (double)S ? S : (int64_t)maxd, nsel = 0;
    int64_t *cand = s_alloc(S, sizeof *cand, err, errlen);
    int64_t *tmp = cand ? s_alloc(S, sizeof *tmp, err, errlen) : NULL;
    int64_t *kept = tmp ? s_alloc(S, sizeof *kept, err, errlen) : NULL;
    int64_t *sel = kept ? s_alloc(B * C * maxo * 3, sizeof *sel, err, errlen) : NULL;
    if (!sel) {
        free(cand), free(tmp), free(kept);
        return GQ_ENOMEM;
    }
    const float *boxes = in[0]->data, *scores = in[1]->data;
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C && maxo > 0; c++) {
            const float *s = scores + (b * C + c) * S, *bb = boxes + b * S * 4;
            int64_t nc = 0, nk = 0;
            for (int64_t i = 0; i < S; i++)
                if (!have_sthr || s[i] > (float)sthr)
                    cand[nc++] = i;
            s_msort(cand, tmp, nc, s_nms_cmp, s);
            for (int64_t i = 0; i < nc && nk < maxo; i++) {
                bool keep = true;
                for (int64_t j = 0; j < nk && keep; j++)
                    keep = !s_nms_suppress(bb + cand[i] * 4, bb + kept[j] * 4, center, (float)iou);
                if (!keep)
                    continue;
                kept[nk++] = cand[i];
                sel[nsel * 3] = b, sel[nsel * 3 + 1] = c, sel[nsel * 3 + 2] = cand[i];
                nsel++;
            }
        }
    gq_tdesc_t od = {.dtype = GQ_I64, .ndim = 2, .shape = {nsel, 3}};
    if (!(rc = gq_onnx_out(out, &od, err, errlen)))
        GQ_ONNX_COPY(out->data, sel, (size_t)nsel * 3 * sizeof *sel);
    free(cand), free(tmp), free(kept), free(sel);
    return rc;
}

/* ---- MaxUnpool ---- */

/* MaxUnpool (opsets 9, 11): X's elements scattered to their MaxPool indices I (flat, into the
 * unpooled shape the attributes give) over zeros; with output_shape, that result sits at the
 * start of each dim of a larger zero tensor (ONNX's reference). Any dtype. */
static gq_status s_max_unpool(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                              int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    int64_t ks[GQ_MAX_DIMS], pads[2 * GQ_MAX_DIMS], st[GQ_MAX_DIMS], osh[GQ_MAX_DIMS];
    int nk, np, nst, no = -1;
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    if (rc || (rc = s_int64(in[1], "indices", err, errlen)) ||
        (rc = gq_onnx_attr_ints(n, "kernel_shape", ks, GQ_MAX_DIMS, &nk, err, errlen)) ||
        (rc = gq_onnx_attr_ints(n, "pads", pads, 2 * GQ_MAX_DIMS, &np, err, errlen)) ||
        (rc = gq_onnx_attr_ints(n, "strides", st, GQ_MAX_DIMS, &nst, err, errlen)))
        return rc;
    if (nin > 2 && in[2] &&
        (rc = gq_onnx_ints(in[2], "output_shape", osh, GQ_MAX_DIMS, &no, err, errlen)))
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    int k = x->ndim - 2;
    if (nk < 0) {
        gq_errf(err, errlen, "attribute kernel_shape is required");
        return GQ_EPARAM;
    }
    if (k < 1 || nk != k || (np >= 0 && np != 2 * k) || (nst >= 0 && nst != k) ||
        in[1]->desc.ndim != x->ndim || (no >= 0 && no != x->ndim)) {
        gq_errf(err, errlen,
                "X rank %d (want 3 or more), indices rank %d, kernel_shape %d, pads %d, strides "
                "%d and output_shape %d values (-1: absent) do not fit",
                x->ndim, in[1]->desc.ndim, nk, np, nst, no);
        return GQ_ESHAPE;
    }
    gq_tdesc_t inf = *x, od;
    for (int d = 0; d < x->ndim; d++)
        if (in[1]->desc.shape[d] != x->shape[d]) {
            gq_errf(err, errlen, "indices differ from X in dim %d: %lld vs %lld", d,
                    (long long)in[1]->desc.shape[d], (long long)x->shape[d]);
            return GQ_ESHAPE;
        }
    for (int d = 0; d < k; d++) {
        int64_t s = nst < 0 ? 1 : st[d], pb = np < 0 ? 0 : pads[d], pe = np < 0 ? 0 : pads[d + k];
        bool ok = ks[d] >= 1 && s >= 1 && pb >= 0 && pe >= 0 && ks[d] <= INT32_MAX &&
                  s <= INT32_MAX && pb <= INT32_MAX && pe <= INT32_MAX && x->shape[2 + d] >= 1 &&
                  x->shape[2 + d] <= INT32_MAX;
        int64_t v = ok ? (x->shape[2 + d] - 1) * s - pb - pe + ks[d] : 0;
        if (v < 1) {
            gq_errf(err, errlen,
                    "dim %d: input %lld, kernel %lld, stride %lld, pads %lld/%lld "
                    "do not fit",
                    d, (long long)x->shape[2 + d], (long long)ks[d], (long long)s, (long long)pb,
                    (long long)pe);
            return GQ_EPARAM;
        }
        inf.shape[2 + d] = v;
    }
    od = inf;
    for (int d = 0; d < x->ndim && no >= 0; d++) {
        if (osh[d] < inf.shape[d] || osh[d] > GQ_MAX_DIM_SIZE || (d < 2 && osh[d] != x->shape[d])) {
            gq_errf(err, errlen, "output_shape[%d] = %lld: want %s %lld", d, (long long)osh[d],
                    d < 2 ? "X's" : "at least the unpooled", (long long)inf.shape[d]);
            return GQ_EPARAM;
        }
        od.shape[d] = osh[d];
    }
    if (gq_tdesc_check(&inf, NULL, NULL)) {
        gq_errf(err, errlen, "the unpooled shape is too large");
        return GQ_ESHAPE;
    }
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    memset(out->data, 0, out->nbytes);
    size_t es = gq_dtype_size(x->dtype);
    int64_t total = gq_tdesc_numel(&inf);
    const int64_t *I = in[1]->data;
    for (int64_t i = 0, nx = gq_tdesc_numel(x); i < nx; i++) {
        int64_t q = I[i], off = 0, mul = 1;
        if (q < 0 || q >= total) {
            gq_errf(err, errlen, "indices[%lld] = %lld is out of range for %lld elements",
                    (long long)i, (long long)q, (long long)total);
            return GQ_EPARAM;
        }
        for (int d = x->ndim - 1; d >= 0; d--) /* its place in the (larger) output */
            off += q % inf.shape[d] * mul, q /= inf.shape[d], mul *= od.shape[d];
        memcpy((char *)out->data + off * (int64_t)es, (const char *)in[0]->data + i * (int64_t)es,
               es);
    }
    return GQ_OK;
}

/* ---- CenterCropPad ---- */

/* CenterCropPad (opset 18): each of the axes (every dim without the attribute) cropped or
 * zero-padded about its centre to shape's value (the odd element off the end). Any dtype. */
static gq_status s_center_crop_pad(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                                   int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    int64_t sh[GQ_MAX_DIMS], axes[GQ_MAX_DIMS];
    int ns, na;
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    if (rc || (rc = gq_onnx_ints(in[1], "shape", sh, GQ_MAX_DIMS, &ns, err, errlen)) ||
        (rc = gq_onnx_attr_ints(n, "axes", axes, GQ_MAX_DIMS, &na, err, errlen)))
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    for (int i = 0; na < 0 && i < x->ndim; i++)
        axes[i] = i;
    na = na < 0 ? x->ndim : na;
    if (ns != na) {
        gq_errf(err, errlen, "shape has %d values for %d axes", ns, na);
        return GQ_ESHAPE;
    }
    gq_tdesc_t od = *x;
    int64_t src[GQ_MAX_DIMS] = {0}, dst[GQ_MAX_DIMS] = {0}, len[GQ_MAX_DIMS];
    bool seen[GQ_MAX_DIMS] = {false};
    for (int d = 0; d < x->ndim; d++)
        len[d] = x->shape[d];
    for (int i = 0; i < na; i++) {
        int64_t a;
        if ((rc = gq_onnx_axis(axes[i], x->ndim, &a, err, errlen)))
            return rc;
        if (seen[a] || sh[i] < 0 || sh[i] > GQ_MAX_DIM_SIZE) {
            gq_errf(err, errlen, "axis %lld repeats or its size %lld is out of range", (long long)a,
                    (long long)sh[i]);
            return GQ_EPARAM;
        }
        seen[a] = true;
        int64_t dim = x->shape[a];
        od.shape[a] = sh[i];
        if (sh[i] < dim)
            src[a] = (dim - sh[i]) / 2, len[a] = sh[i];
        else
            dst[a] = (sh[i] - dim) / 2;
    }
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    memset(out->data, 0, out->nbytes);
    int r = x->ndim;
    int64_t rows = 1, idx[GQ_MAX_DIMS] = {0};
    if (r == 0) {
        GQ_ONNX_COPY(out->data, in[0]->data, out->nbytes);
        return GQ_OK;
    }
    for (int d = 0; d < r; d++)
        if (!len[d])
            return GQ_OK;           /* nothing kept: all padding */
    for (int d = 0; d < r - 1; d++) /* within X's size: no dim is 0 */
        rows *= len[d];
    size_t es = gq_dtype_size(x->dtype);
    for (int64_t row = 0; row < rows; row++) { /* the kept box, one last-dim run at a time */
        int64_t so = 0, doff = 0;
        for (int d = 0; d < r; d++) {
            int64_t i = d < r - 1 ? idx[d] : 0;
            so = so * x->shape[d] + src[d] + i;
            doff = doff * od.shape[d] + dst[d] + i;
        }
        memcpy((char *)out->data + doff * (int64_t)es, (const char *)in[0]->data + so * (int64_t)es,
               (size_t)len[r - 1] * es);
        for (int d = r - 2; d >= 0 && ++idx[d] == len[d]; d--)
            idx[d] = 0;
    }
    return GQ_OK;
}

/* ---- Unique ---- */

/* The slices Unique compares: L of them, each `outer` runs of `inner` elements, run o of
 * slice i at (o * L + i) * inner. */
typedef struct {
    const void *p;
    gq_dtype_t dt;
    int64_t L, outer, inner;
} s_slices_t;

/* Element order: by value, NaN after all numbers and equal to NaN. */
static int s_elem_cmp(const s_slices_t *s, int64_t i, int64_t j)
{
    if (gq_onnx_dtype_int(s->dt) || s->dt == GQ_BOOL) {
        int64_t a = gq_onnx_geti(s->p, s->dt, i), b = gq_onnx_geti(s->p, s->dt, j);
        return (a > b) - (a < b);
    }
    double a = gq_onnx_getd(s->p, s->dt, i), b = gq_onnx_getd(s->p, s->dt, j);
    if (isnan(a) || isnan(b))
        return isnan(a) - isnan(b);
    return (a > b) - (a < b);
}

/* Slices a and b compared element by element (lexicographically). */
static int s_slice_cmp(const void *ctx, int64_t a, int64_t b)
{
    const s_slices_t *s = ctx;
    for (int64_t o = 0; o < s->outer; o++)
        for (int64_t q = 0; q < s->inner; q++) {
            int c = s_elem_cmp(s, (o * s->L + a) * s->inner + q, (o * s->L + b) * s->inner + q);
            if (c)
                return c;
        }
    return 0;
}

/* Unique (opset 11): the distinct elements (or slices along axis) of X, sorted or in order of
 * first occurrence; then the index of each one's first occurrence, the index into Y of every
 * element (slice) of X, and how many times each occurs (i64). Real dtypes. */
static gq_status s_unique(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                          gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset;
    gq_status rc = gq_onnx_need(in, nin, 1, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    if (nout > 4) {
        gq_errf(err, errlen, "%d outputs: Unique has at most 4", nout);
        return GQ_EPARAM;
    }
    if (!gq_onnx_dtype_real(x->dtype)) {
        gq_errf(err, errlen, "X is %s: real dtypes are supported", gq_dtype_name(x->dtype));
        return GQ_EDTYPE;
    }
    const Onnx__AttributeProto *aa = gq_onnx_attr(n, "axis");
    bool sorted = gq_onnx_attr_int(n, "sorted", 1) != 0;
    int64_t axis = 0, N = gq_tdesc_numel(x);
    s_slices_t s = {.p = in[0]->data, .dt = x->dtype, .L = N, .outer = 1, .inner = 1};
    if (aa) {
        if ((rc = gq_onnx_axis(aa->i, x->ndim, &axis, err, errlen)))
            return rc;
        s.L = x->shape[axis];
        for (int d = 0; d < x->ndim && N; d++) /* empty X: empty slices (and no overflow) */
            if (d < axis)
                s.outer *= x->shape[d];
            else if (d > axis)
                s.inner *= x->shape[d];
        s.outer = N ? s.outer : 0, s.inner = N ? s.inner : 0;
    }
    int64_t L = s.L, U = 0;
    int64_t *perm = s_alloc(L, sizeof *perm, err, errlen);
    int64_t *tmp = perm ? s_alloc(L, sizeof *tmp, err, errlen) : NULL;
    int64_t *first = tmp ? s_alloc(L, sizeof *first, err, errlen) : NULL;
    int64_t *inv = first ? s_alloc(L, sizeof *inv, err, errlen) : NULL;
    int64_t *cnt = inv ? s_alloc(L, sizeof *cnt, err, errlen) : NULL;
    if (!cnt) {
        free(perm), free(tmp), free(first), free(inv);
        return GQ_ENOMEM;
    }
    for (int64_t i = 0; i < L; i++)
        perm[i] = i;
    s_msort(perm, tmp, L, s_slice_cmp, &s); /* stable: a group's first is its first occurrence */
    for (int64_t j = 0; j < L; j++) {
        if (!j || s_slice_cmp(&s, perm[j - 1], perm[j]))
            first[U] = perm[j], cnt[U++] = 0;
        inv[perm[j]] = U - 1;
        cnt[U - 1]++;
    }
    if (!sorted) { /* groups renumbered by first occurrence */
        int64_t *rank = tmp, next = 0;
        for (int64_t g = 0; g < U; g++)
            rank[g] = -1;
        for (int64_t i = 0; i < L; i++)
            if (rank[inv[i]] < 0)
                rank[inv[i]] = next++;
        for (int64_t g = 0; g < U; g++)
            perm[rank[g]] = g; /* perm: new group -> old group */
        for (int64_t i = 0; i < L; i++)
            inv[i] = rank[inv[i]];
        for (int64_t g = 0; g < U; g++)
            tmp[g] = first[perm[g]];
        memcpy(first, tmp, (size_t)U * sizeof *first);
        for (int64_t g = 0; g < U; g++)
            tmp[g] = cnt[perm[g]];
        memcpy(cnt, tmp, (size_t)U * sizeof *cnt);
    }
    gq_tdesc_t yd = *x, vd = {.dtype = GQ_I64, .ndim = 1, .shape = {U}};
    if (aa)
        yd.shape[axis] = U;
    else
        yd.ndim = 1, yd.shape[0] = U;
    size_t es = gq_dtype_size(x->dtype), run = (size_t)s.inner * es;
    if (!(rc = gq_onnx_out(&out[0], &yd, err, errlen)))
        for (int64_t o = 0; o < s.outer; o++)
            for (int64_t g = 0; g < U; g++)
                memcpy((char *)out[0].data + (o * U + g) * (int64_t)run,
                       (const char *)in[0]->data + (o * L + first[g]) * (int64_t)run, run);
    const int64_t *src[3] = {first, inv, cnt};
    for (int o = 1; o < nout && o < 4 && !rc; o++) {
        vd.shape[0] = o == 2 ? L : U;
        if (!(rc = gq_onnx_out(&out[o], &vd, err, errlen)))
            GQ_ONNX_COPY(out[o].data, src[o - 1], (size_t)vd.shape[0] * sizeof(int64_t));
    }
    free(perm), free(tmp), free(first), free(inv), free(cnt);
    return rc;
}

/* ---- Det ---- */

/* Det (opset 11): the determinants of the square matrices in X's last two dims, by LU
 * decomposition with partial pivoting in double. */
static gq_status s_det(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                       gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)n, (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 1, err, errlen);
    if (rc || (rc = s_floating(in[0], "X", err, errlen)))
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    if (x->ndim < 2 || x->shape[x->ndim - 1] != x->shape[x->ndim - 2]) {
        char a[96];
        gq_errf(err, errlen, "X is %s: want [..., M, M]", gq_tdesc_str(x, a, sizeof a));
        return GQ_ESHAPE;
    }
    gq_tdesc_t od = *x;
    od.ndim -= 2;
    int64_t M = x->shape[x->ndim - 1], nb = gq_tdesc_numel(&od);
    if ((rc = gq_onnx_out(out, &od, err, errlen)) || !nb) /* then M x M is X's size */
        return rc;
    double *a = s_alloc(M * M, sizeof *a, err, errlen);
    if (!a)
        return GQ_ENOMEM;
    for (int64_t b = 0; b < nb; b++) {
        for (int64_t i = 0; i < M * M; i++)
            a[i] = s_ld(in[0]->data, x->dtype, b * M * M + i);
        double det = 1;
        for (int64_t c = 0; c < M && det != 0; c++) {
            int64_t p = c;
            for (int64_t r = c + 1; r < M; r++)
                if (fabs(a[r * M + c]) > fabs(a[p * M + c]))
                    p = r;
            if (a[p * M + c] == 0) {
                det = 0;
                break;
            }
            if (p != c) {
                for (int64_t j = 0; j < M; j++) {
                    double t = a[c * M + j];
                    a[c * M + j] = a[p * M + j], a[p * M + j] = t;
                }
                det = -det;
            }
            det *= a[c * M + c];
            for (int64_t r = c + 1; r < M; r++) {
                double f = a[r * M + c] / a[c * M + c];
                for (int64_t j = c + 1; j < M; j++)
                    a[r * M + j] -= f * a[c * M + j];
            }
        }
        s_st(out->data, x->dtype, b, det);
    }
    free(a);
    return GQ_OK;
}

const gq_onnx_kernel_t gq_onnx_kernels_vision[] = {
    {"GridSample", 16, s_grid_sample}, {"AffineGrid", 20, s_affine_grid},
    {"RoiAlign", 10, s_roi_align},     {"NonMaxSuppression", 10, s_nms},
    {"MaxUnpool", 9, s_max_unpool},    {"CenterCropPad", 18, s_center_crop_pad},
    {"Unique", 11, s_unique},          {"Det", 11, s_det},
};
const int gq_onnx_kernels_vision_count = GQ_ONNX_COUNT(gq_onnx_kernels_vision);
