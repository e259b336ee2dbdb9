/* ONNX losses (opset 12/13): NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (which is
 * LogSoftmax over the class axis, then the same loss, its log-probabilities as an optional
 * second output). Models exported for evaluation carry them. Class weights, ignore_index
 * and reduction none / sum / mean (mean: over the weights of the targets not ignored), any
 * real element type, sums in double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"
#include "util.h"

/* The loss of x [N, C, d...] (log-probabilities) against targets t [N, d...]: out as the
 * reduction attribute says. */
static gq_status s_nll(const Onnx__NodeProto *n, const gq_onnx_val_t *x, const void *xdata,
                       const gq_onnx_val_t *t, const gq_onnx_val_t *w, gq_onnx_val_t *out,
                       char *err, size_t errlen)
{
    char red[8], a[96], b[96];
    gq_status rc = gq_onnx_attr_str(n, "reduction", "mean", red, sizeof red, err, errlen);
    if (rc)
        return rc;
    bool none = !strcmp(red, "none"), sum = !strcmp(red, "sum");
    if (!none && !sum && strcmp(red, "mean")) {
        gq_errf(err, errlen, "reduction '%s' is not none, sum or mean", red);
        return GQ_EPARAM;
    }
    const gq_tdesc_t *xd = &x->desc, *td = &t->desc;
    bool shapes = xd->ndim >= 2 && td->ndim == xd->ndim - 1 && td->shape[0] == xd->shape[0];
    for (int d = 2; shapes && d < xd->ndim; d++)
        shapes = td->shape[d - 1] == xd->shape[d];
    if (!shapes || !gq_onnx_dtype_int(td->dtype) ||
        (w &&
         (w->desc.ndim != 1 || w->desc.shape[0] != xd->shape[1] || w->desc.dtype != xd->dtype))) {
        gq_errf(err, errlen,
                "input %s, target %s%s: want [N, C, d...], integer [N, d...] and "
                "weights [C]",
                gq_tdesc_str(xd, a, sizeof a), gq_tdesc_str(td, b, sizeof b),
                w ? " with weights" : "");
        return GQ_ESHAPE;
    }
    const Onnx__AttributeProto *ia = gq_onnx_attr(n, "ignore_index");
    int64_t ignore = ia ? ia->i : 0, C = xd->shape[1], N = xd->shape[0], inner = 1;
    for (int d = 2; d < xd->ndim; d++)
        inner *= xd->shape[d];
    gq_tdesc_t od = none ? *td : (gq_tdesc_t){.ndim = 0};
    od.dtype = xd->dtype;
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    double total = 0, wsum = 0;
    for (int64_t i = 0; i < N; i++)
        for (int64_t q = 0; q < inner; q++) {
            int64_t j = i * inner + q, c = gq_onnx_geti(t->data, td->dtype, j);
            double l = 0, wt = 0;
            if (!ia || c != ignore) {
                if (c < 0 || c >= C) {
                    gq_errf(err, errlen, "target %lld is %lld, outside 0..%lld", (long long)j,
                            (long long)c, (long long)C - 1);
                    return GQ_EPARAM;
                }
                wt = w ? gq_onnx_getd(w->data, w->desc.dtype, c) : 1.0;
                l = -gq_onnx_getd(xdata, xd->dtype, (i * C + c) * inner + q) * wt;
            }
            if (none)
                gq_onnx_setd(out->data, od.dtype, j, l);
            total += l, wsum += wt;
        }
    if (!none) /* mean over no weight at all is 0 / 0, as the reference's */
        gq_onnx_setd(out->data, od.dtype, 0, sum ? total : total / wsum);
    return GQ_OK;
}

static bool s_real_float(gq_dtype_t dt)
{
    return dt == GQ_F32 || dt == GQ_F64 || dt == GQ_F16;
}

static gq_status s_nll_kernel(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                              int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    if (rc)
        return rc;
    if (!s_real_float(in[0]->desc.dtype)) {
        gq_errf(err, errlen, "input is %s: want a float type", gq_dtype_name(in[0]->desc.dtype));
        return GQ_EDTYPE;
    }
    return s_nll(n, in[0], in[0]->data, in[1], nin > 2 ? in[2] : NULL, out, err, errlen);
}

static gq_status s_sce_kernel(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                              int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset;
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *xd = &in[0]->desc;
    if (!s_real_float(xd->dtype) || xd->ndim < 2) {
        char a[96];
        gq_errf(err, errlen, "scores are %s: want float [N, C, d...]",
                gq_tdesc_str(xd, a, sizeof a));
        return GQ_EDTYPE;
    }
    /* log-probabilities over the class axis, into the second output when asked for */
    gq_onnx_val_t lp = {0}, *lpv = nout > 1 ? &out[1] : &lp;
    if ((rc = gq_onnx_out(lpv, xd, err, errlen)))
        return rc;
    int64_t N = xd->shape[0], C = xd->shape[1], inner = 1;
    for (int d = 2; d < xd->ndim; d++)
        inner *= xd->shape[d];
    for (int64_t i = 0; i < N; i++)
        for (int64_t q = 0; q < inner; q++) {
            double mx = -INFINITY, s = 0;
            for (int64_t c = 0; c < C; c++)
                mx = fmax(mx, gq_onnx_getd(in[0]->data, xd->dtype, (i * C + c) * inner + q));
            for (int64_t c = 0; c < C; c++)
                s += exp(gq_onnx_getd(in[0]->data, xd->dtype, (i * C + c) * inner + q) - mx);
            double ls = log(s) + mx;
            for (int64_t c = 0; c < C; c++) {
                int64_t j = (i * C + c) * inner + q;
                gq_onnx_setd(lpv->data, xd->dtype, j, gq_onnx_getd(in[0]->data, xd->dtype, j) - ls);
            }
        }
    rc = s_nll(n, in[0], lpv->data, in[1], nin > 2 ? in[2] : NULL, &out[0], err, errlen);
    if (lpv == &lp)
        gq_onnx_scratch_free(lp.data, lp.cap);
    return rc;
}

const gq_onnx_kernel_t gq_onnx_kernels_loss[] = {
    {"NegativeLogLikelihoodLoss", 12, s_nll_kernel},
    {"SoftmaxCrossEntropyLoss", 12, s_sce_kernel},
};
const int gq_onnx_kernels_loss_count = GQ_ONNX_COUNT(gq_onnx_kernels_loss);
