/* ONNX kernels that normalise (f32): BatchNormalization (inference), LayerNormalization,
 * InstanceNormalization, LpNormalization, MeanVarianceNormalization. Statistics are
 * accumulated in double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"
#include "par.h"
#include "util.h"

static gq_status s_f32(gq_onnx_val_t *const *in, int nin, int need, char *err, size_t errlen)
{
    gq_status rc = gq_onnx_need(in, nin, need, err, errlen);
    for (int i = 0; !rc && i < nin; i++)
        if (in[i] && in[i]->desc.dtype != GQ_F32) {
            gq_errf(err, errlen, "input %d is %s: only f32 is supported", i,
                    gq_dtype_name(in[i]->desc.dtype));
            rc = GQ_EDTYPE;
        }
    return rc;
}

/* Checks that in[first..first+count) are vectors of n elements (per-channel parameters). */
static gq_status s_per_channel(gq_onnx_val_t *const *in, int first, int count, int64_t n, char *err,
                               size_t errlen)
{
    for (int i = first; i < first + count; i++)
        if (gq_tdesc_numel(&in[i]->desc) != n || in[i]->desc.ndim != 1) {
            char b[96];
            gq_errf(err, errlen, "input %d is %s, want [%lld] (one per channel)", i,
                    gq_tdesc_str(&in[i]->desc, b, sizeof b), (long long)n);
            return GQ_ESHAPE;
        }
    return GQ_OK;
}

typedef struct {
    const float *X, *sc, *bi, *mu, *var;
    float *Y;
    double eps;
    int64_t C, sz;
} s_bn_job_t;

/* Plane i = [n, c] of BatchNormalization. */
static void s_bn_plane(void *ctx, int64_t i, int tid)
{
    (void)tid;
    const s_bn_job_t *j = ctx;
    int64_t c = i % j->C;
    float a = (float)(j->sc[c] / sqrt((double)j->var[c] + j->eps)), b = j->bi[c] - a * j->mu[c];
    const float *xp = j->X + i * j->sz;
    float *yp = j->Y + i * j->sz;
    for (int64_t k = 0; k < j->sz; k++)
        yp[k] = a * xp[k] + b;
}

static gq_status s_batchnorm(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                             gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    gq_status rc = s_f32(in, nin, 5, err, errlen);
    if (rc)
        return rc;
    if ((opset >= 14 && gq_onnx_attr_int(n, "training_mode", 0)) || (opset < 9 && nout > 1) ||
        (opset < 7 && gq_onnx_attr_int(n, "is_test", 0) == 0)) {
        gq_errf(err, errlen,
                "training mode (running statistics as outputs): gq runs inference "
                "only");
        return GQ_EUNSUPPORTED;
    }
    const gq_tdesc_t *x = &in[0]->desc;
    int64_t C = x->ndim >= 2 ? x->shape[1] : 1, N = x->ndim ? x->shape[0] : 1;
    if ((rc = s_per_channel(in, 1, 4, C, err, errlen)) || (rc = gq_onnx_out(out, x, err, errlen)))
        return rc;
    double eps = gq_onnx_attr_float(n, "epsilon", 1e-5f);
    int64_t sz = C && N ? gq_tdesc_numel(x) / (N * C) : 0;
    s_bn_job_t j = {.X = in[0]->data,
                    .sc = in[1]->data,
                    .bi = in[2]->data,
                    .mu = in[3]->data,
                    .var = in[4]->data,
                    .Y = out->data,
                    .eps = eps,
                    .C = C,
                    .sz = sz};
    gq_par_for_work(N * C, N * C * sz, s_bn_plane, &j);
    return GQ_OK;
}

/* y = (x - mean) / sqrt(var + eps) over rows [r0, r1) of len values; mean/inv per row when
 * asked. */
static void s_norm_rows(const float *x, float *y, int64_t r0, int64_t r1, int64_t len, double eps,
                        float *mean_out, float *inv_out)
{
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = x + r * len;
        float *yr = y + r * len;
        double s = 0, ss = 0;
        for (int64_t i = 0; i < len; i++)
            s += xr[i];
        double mean = len ? s / (double)len : 0;
        for (int64_t i = 0; i < len; i++)
            ss += (xr[i] - mean) * (xr[i] - mean);
        double inv = 1 / sqrt((len ? ss / (double)len : 0) + eps);
        for (int64_t i = 0; i < len; i++)
            yr[i] = (float)((xr[i] - mean) * inv);
        if (mean_out)
            mean_out[r] = (float)mean;
        if (inv_out)
            inv_out[r] = (float)inv;
    }
}

typedef struct {
    const float *X;
    float *Y;
    const float *sc, *bi; /* bi NULL: no bias */
    float *mean, *inv;    /* NULL: not asked for */
    const gq_tdesc_t *inner;
    int64_t ss[GQ_MAX_DIMS], sb[GQ_MAX_DIMS];
    double eps;
    int64_t len;
} s_ln_job_t;

/* Row r of LayerNormalization: normalised, then scaled and shifted. */
static void s_ln_row(void *ctx, int64_t r, int tid)
{
    (void)tid;
    const s_ln_job_t *j = ctx;
    s_norm_rows(j->X, j->Y, r, r + 1, j->len, j->eps, j->mean, j->inv);
    float *y = j->Y + r * j->len;
    const gq_tdesc_t *inner = j->inner;
    int64_t idx[GQ_MAX_DIMS] = {0}, is = 0, ib = 0;
    for (int64_t i = 0; i < j->len; i++) {
        y[i] = y[i] * j->sc[is] + (j->bi ? j->bi[ib] : 0.0f);
        for (int d = inner->ndim - 1; d >= 0; d--) {
            is += j->ss[d], ib += j->sb[d];
            if (++idx[d] < inner->shape[d])
                break;
            is -= j->ss[d] * idx[d], ib -= j->sb[d] * idx[d];
            idx[d] = 0;
        }
    }
}

static gq_status s_layernorm(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                             gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset;
    gq_status rc = s_f32(in, nin, 2, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    int64_t axis;
    if ((rc = gq_onnx_axis(gq_onnx_attr_int(n, "axis", -1), x->ndim, &axis, err, errlen)))
        return rc;
    gq_tdesc_t inner = {.dtype = GQ_F32}, stat = *x;
    int64_t rows = 1, len = 1;
    for (int d = 0; d < x->ndim; d++) {
        if (d < axis)
            rows *= x->shape[d];
        else
            len *= x->shape[d], inner.shape[inner.ndim++] = x->shape[d], stat.shape[d] = 1;
    }
    /* Scale and B broadcast (unidirectionally) to the normalised shape. */
    for (int i = 1; i < 3 && i < nin; i++) {
        gq_tdesc_t bd;
        if (in[i] && ((rc = gq_onnx_broadcast(&in[i]->desc, &inner, &bd, err, errlen)) ||
                      (bd.dtype = GQ_F32, !gq_tdesc_equal(&bd, &inner)))) {
            char a[96], b[96];
            gq_errf(err, errlen, "input %d %s does not broadcast to the normalised shape %s", i,
                    gq_tdesc_str(&in[i]->desc, a, sizeof a), gq_tdesc_str(&inner, b, sizeof b));
            return GQ_ESHAPE;
        }
    }
    if ((rc = gq_onnx_out(out, x, err, errlen)))
        return rc;
    for (int o = 1; o < nout && o < 3; o++)
        if ((rc = gq_onnx_out(&out[o], &stat, err, errlen)))
            return rc;
    s_ln_job_t j = {.X = in[0]->data,
                    .Y = out->data,
                    .sc = in[1]->data,
                    .bi = nin > 2 && in[2] ? in[2]->data : NULL,
                    .mean = nout > 1 ? out[1].data : NULL,
                    .inv = nout > 2 ? out[2].data : NULL,
                    .inner = &inner,
                    .eps = gq_onnx_attr_float(n, "epsilon", 1e-5f),
                    .len = len};
    gq_onnx_bstrides(&in[1]->desc, &inner, j.ss);
    if (j.bi)
        gq_onnx_bstrides(&in[2]->desc, &inner, j.sb);
    else
        memset(j.sb, 0, sizeof j.sb);
    gq_par_for_work(rows, rows * len * 4, s_ln_row, &j);
    return GQ_OK;
}

typedef struct {
    const float *X, *sc, *bi;
    float *Y;
    double eps;
    int64_t C, sz;
} s_in_job_t;

/* Plane r = [n, c] of InstanceNormalization. */
static void s_in_plane(void *ctx, int64_t r, int tid)
{
    (void)tid;
    const s_in_job_t *j = ctx;
    s_norm_rows(j->X, j->Y, r, r + 1, j->sz, j->eps, NULL, NULL);
    float *y = j->Y + r * j->sz, a = j->sc[r % j->C], b = j->bi[r % j->C];
    for (int64_t i = 0; i < j->sz; i++)
        y[i] = y[i] * a + b;
}

static gq_status s_instancenorm(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                                int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    gq_status rc = s_f32(in, nin, 3, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    if (x->ndim < 2) {
        gq_errf(err, errlen, "input has rank %d, want [N, C, ...]", x->ndim);
        return GQ_ESHAPE;
    }
    int64_t N = x->shape[0], C = x->shape[1], sz = 1;
    for (int d = 2; d < x->ndim; d++)
        sz *= x->shape[d];
    if ((rc = s_per_channel(in, 1, 2, C, err, errlen)) || (rc = gq_onnx_out(out, x, err, errlen)))
        return rc;
    s_in_job_t j = {.X = in[0]->data,
                    .Y = out->data,
                    .sc = in[1]->data,
                    .bi = in[2]->data,
                    .eps = gq_onnx_attr_float(n, "epsilon", 1e-5f),
                    .C = C,
                    .sz = sz};
    gq_par_for_work(N * C, N * C * sz * 4, s_in_plane, &j);
    return GQ_OK;
}

/* GroupNormalization: row r = [n, group] is Cg channels of sz elements, normalised as one;
 * then scale and bias per group (opset 18) or per channel (opset 21). */
typedef struct {
    const float *X, *sc, *bi;
    float *Y;
    double eps;
    int64_t G, Cg, sz;
    bool per_channel;
} s_gn_job_t;

static void s_gn_row(void *ctx, int64_t r, int tid)
{
    (void)tid;
    const s_gn_job_t *j = ctx;
    int64_t len = j->Cg * j->sz, g = r % j->G;
    s_norm_rows(j->X, j->Y, r, r + 1, len, j->eps, NULL, NULL);
    float *y = j->Y + r * len;
    for (int64_t c = 0; c < j->Cg; c++) {
        int64_t k = j->per_channel ? g * j->Cg + c : g;
        float a = j->sc[k], b = j->bi[k];
        for (int64_t i = 0; i < j->sz; i++)
            y[c * j->sz + i] = y[c * j->sz + i] * a + b;
    }
}

static gq_status s_groupnorm(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                             gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout;
    gq_status rc = s_f32(in, nin, 3, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    int64_t G = gq_onnx_attr_int(n, "num_groups", 0);
    if (x->ndim < 2 || G < 1 || x->shape[1] % G) {
        char a[96];
        gq_errf(err, errlen, "input %s with num_groups %lld: want [N, C, ...], C a multiple",
                gq_tdesc_str(x, a, sizeof a), (long long)G);
        return GQ_ESHAPE;
    }
    int64_t N = x->shape[0], C = x->shape[1], sz = 1;
    for (int d = 2; d < x->ndim; d++)
        sz *= x->shape[d];
    bool per_channel = opset >= 21;
    if ((rc = s_per_channel(in, 1, 2, per_channel ? C : G, err, errlen)) ||
        (rc = gq_onnx_out(out, x, err, errlen)))
        return rc;
    s_gn_job_t j = {.X = in[0]->data,
                    .Y = out->data,
                    .sc = in[1]->data,
                    .bi = in[2]->data,
                    .eps = gq_onnx_attr_float(n, "epsilon", 1e-5f),
                    .G = G,
                    .Cg = C / G,
                    .sz = sz,
                    .per_channel = per_channel};
    gq_par_for_work(N * G, N * C * sz * 4, s_gn_row, &j);
    return GQ_OK;
}

/* Strides of the axis: outer x len x inner. */
static void s_split3(const gq_tdesc_t *x, int64_t axis, int64_t *outer, int64_t *len,
                     int64_t *inner)
{
    *outer = *len = *inner = 1;
    for (int d = 0; d < x->ndim; d++)
        *(d < axis ? outer : d == axis ? len : inner) *= x->shape[d];
}

static gq_status s_lpnorm(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                          gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    gq_status rc = s_f32(in, nin, 1, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    int64_t axis, p = gq_onnx_attr_int(n, "p", 2), outer, len, inner;
    if ((rc = gq_onnx_axis(gq_onnx_attr_int(n, "axis", -1), x->ndim, &axis, err, errlen)))
        return rc;
    if (p != 1 && p != 2) {
        gq_errf(err, errlen, "p = %lld, want 1 or 2", (long long)p);
        return GQ_EPARAM;
    }
    if ((rc = gq_onnx_out(out, x, err, errlen)))
        return rc;
    s_split3(x, axis, &outer, &len, &inner);
    const float *X = in[0]->data;
    float *Y = out->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t q = 0; q < inner; q++) {
            const float *xs = X + o * len * inner + q;
            float *ys = Y + o * len * inner + q;
            double acc = 0;
            for (int64_t i = 0; i < len; i++)
                acc += p == 1 ? fabs(xs[i * inner]) : (double)xs[i * inner] * xs[i * inner];
            double norm = p == 1 ? acc : sqrt(acc);
            for (int64_t i = 0; i < len; i++)
                ys[i * inner] = norm == 0 ? 0.0f : (float)(xs[i * inner] / norm);
        }
    return GQ_OK;
}

/* MeanVarianceNormalization: (x - mean) / (sqrt(var) + 1e-9) over axes (default N and the
 * spatial dims), as ONNX's function body defines it. */
static gq_status s_mvn(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                       gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    gq_status rc = s_f32(in, nin, 1, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    int64_t axes[GQ_MAX_DIMS * 2] = {0, 2, 3};
    int na;
    if ((rc = gq_onnx_attr_ints(n, "axes", axes, GQ_MAX_DIMS * 2, &na, err, errlen)))
        return rc;
    na = na < 0 ? 3 : na;
    bool red[GQ_MAX_DIMS] = {false};
    for (int i = 0; i < na; i++) {
        int64_t a;
        if ((rc = gq_onnx_axis(axes[i], x->ndim, &a, err, errlen)))
            return rc;
        red[a] = true;
    }
    if ((rc = gq_onnx_out(out, x, err, errlen)))
        return rc;
    gq_tdesc_t kd = *x; /* the kept dims: one group per kept index */
    int64_t groups = 1, total = gq_tdesc_numel(x);
    for (int d = 0; d < x->ndim; d++)
        if (red[d])
            kd.shape[d] = 1;
        else
            groups *= x->shape[d];
    double *sum = calloc((size_t)groups * 2 + 1, sizeof *sum);
    if (!sum) {
        gq_errf(err, errlen, "out of memory");
        return GQ_ENOMEM;
    }
    int64_t st[GQ_MAX_DIMS];
    gq_onnx_bstrides(&kd, x, st);
    const float *X = in[0]->data;
    for (int pass = 0; pass < 3; pass++) {
        int64_t idx[GQ_MAX_DIMS] = {0}, g = 0;
        for (int64_t i = 0; i < total; i++) {
            double cnt = (double)total / (double)groups;
            if (pass == 0)
                sum[g] += X[i];
            else if (pass == 1)
                sum[groups + g] += (X[i] - sum[g] / cnt) * (X[i] - sum[g] / cnt);
            else
                ((float *)out->data)[i] =
                    (float)((X[i] - sum[g] / cnt) / (sqrt(sum[groups + g] / cnt) + 1e-9));
            for (int d = x->ndim - 1; d >= 0; d--) {
                g += st[d];
                if (++idx[d] < x->shape[d])
                    break;
                g -= st[d] * idx[d];
                idx[d] = 0;
            }
        }
    }
    free(sum);
    return GQ_OK;
}

const gq_onnx_kernel_t gq_onnx_kernels_norm[] = {
    {"BatchNormalization", 6, s_batchnorm},       {"LayerNormalization", 17, s_layernorm},
    {"InstanceNormalization", 6, s_instancenorm}, {"LpNormalization", 1, s_lpnorm},
    {"MeanVarianceNormalization", 9, s_mvn},      {"GroupNormalization", 18, s_groupnorm},
};
const int gq_onnx_kernels_norm_count = GQ_ONNX_COUNT(gq_onnx_kernels_norm);
