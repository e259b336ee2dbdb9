/* ONNX kernels: MatMul and Gemm (f32 on OpenBLAS, loops for f64/i32/i64 MatMul), Softmax,
 * LogSoftmax and Hardmax. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"
#include "onnx_vec.h"
#include "par.h"
#include "optable.h"
#include "util.h"

/* ---- matrices ---- */

/* c[m,n] = a[m,k] b[k,n] for the dtypes BLAS has no routine for (f64, i32, i64), through
 * double (exact for the integer products of any model gq has seen: |x| < 2^53). */
static void s_gemm_any(gq_dtype_t dt, int64_t m, int64_t n, int64_t k, const void *a, int64_t ao,
                       const void *b, int64_t bo, void *c, int64_t co)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0;
            for (int64_t p = 0; p < k; p++)
                acc += gq_onnx_getd(a, dt, ao + i * k + p) * gq_onnx_getd(b, dt, bo + p * n + j);
            gq_onnx_setd(c, dt, co + i * n + j, acc);
        }
}

gq_status gq_onnx_matmul_shape(gq_tdesc_t *a, gq_tdesc_t *b, gq_tdesc_t *ba, gq_tdesc_t *bb,
                               gq_tdesc_t *bo, gq_tdesc_t *od, char *err, size_t errlen)
{
    if (a->ndim == 0 || b->ndim == 0) {
        gq_errf(err, errlen, "scalars cannot be multiplied as matrices");
        return GQ_ESHAPE;
    }
    bool a1 = a->ndim == 1, b1 = b->ndim == 1;
    if (a1) /* [k] -> [1,k] */
        a->shape[1] = a->shape[0], a->shape[0] = 1, a->ndim = 2;
    if (b1) /* [k] -> [k,1] */
        b->shape[1] = 1, b->ndim = 2;
    int64_t m = a->shape[a->ndim - 2], k = a->shape[a->ndim - 1], n = b->shape[b->ndim - 1];
    if (b->shape[b->ndim - 2] != k) {
        gq_errf(err, errlen, "inner dims differ: %lld vs %lld", (long long)k,
                (long long)b->shape[b->ndim - 2]);
        return GQ_ESHAPE;
    }
    *ba = *a, *bb = *b;
    ba->ndim -= 2, bb->ndim -= 2;
    gq_status rc = gq_onnx_broadcast(ba, bb, bo, err, errlen);
    if (rc)
        return rc;
    memset(od, 0, sizeof *od);
    od->dtype = a->dtype;
    for (int i = 0; i < bo->ndim; i++)
        od->shape[od->ndim++] = bo->shape[i];
    if (od->ndim + !a1 + !b1 > GQ_MAX_DIMS) {
        gq_errf(err, errlen, "result has more than %d dims", GQ_MAX_DIMS);
        return GQ_ESHAPE;
    }
    if (!a1)
        od->shape[od->ndim++] = m;
    if (!b1)
        od->shape[od->ndim++] = n;
    return GQ_OK;
}

static gq_status s_matmul(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                          gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)n, (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin < 2 ? nin : 2, 2, err, errlen);
    if (rc)
        return rc;
    gq_tdesc_t a = in[0]->desc, b = in[1]->desc, ba, bb, bo, od;
    gq_dtype_t dt = a.dtype;
    if (b.dtype != dt || (dt != GQ_F32 && dt != GQ_F64 && dt != GQ_I32 && dt != GQ_I64)) {
        gq_errf(err, errlen, "%s x %s: want two f32, f64, i32 or i64 operands",
                gq_dtype_name(a.dtype), gq_dtype_name(b.dtype));
        return GQ_EDTYPE;
    }
    if ((rc = gq_onnx_matmul_shape(&a, &b, &ba, &bb, &bo, &od, err, errlen)) ||
        (rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    int64_t m = a.shape[a.ndim - 2], k = a.shape[a.ndim - 1], nn = b.shape[b.ndim - 1];
    if (dt != GQ_F32) {
        GQ_ONNX_BCAST_LOOP(&bo, &ba, &bb, {
            s_gemm_any(dt, m, nn, k, in[0]->data, ia * m * k, in[1]->data, ib * k * nn, out->data,
                       io * m * nn);
        });
        return GQ_OK;
    }
    const float *A = in[0]->data, *B = in[1]->data;
    float *C = out->data;
    if (bb.ndim == 0 || gq_tdesc_numel(&bb) == 1) { /* one B for every batch: one GEMM */
        gq_onnx_sgemm(false, false, gq_tdesc_numel(&bo) * m, nn, k, 1.0f, A, k, B, nn, 0.0f, C, nn);
        return GQ_OK;
    }
    GQ_ONNX_BCAST_LOOP(&bo, &ba, &bb, {
        gq_onnx_sgemm(false, false, m, nn, k, 1.0f, A + ia * m * k, k, B + ib * k * nn, nn, 0.0f,
                      C + io * m * nn, nn);
    });
    return GQ_OK;
}

/* Gemm; act: an activation the plan fused into it (NULL: none), applied to the output in
 * row blocks right after the product. */
static gq_status s_gemm_act_any(const gq_onnx_act_t *act, const Onnx__NodeProto *n,
                                gq_onnx_val_t *const *in, int nin, gq_onnx_val_t *out, char *err,
                                size_t errlen)
{
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    if (rc)
        return rc;
    if (in[0]->desc.ndim != 2 || in[1]->desc.ndim != 2) {
        gq_errf(err, errlen, "A and B must be matrices (ranks %d and %d)", in[0]->desc.ndim,
                in[1]->desc.ndim);
        return GQ_ESHAPE;
    }
    if (in[0]->desc.dtype != GQ_F32 || in[1]->desc.dtype != GQ_F32 ||
        (nin > 2 && in[2] && in[2]->desc.dtype != GQ_F32)) {
        gq_errf(err, errlen, "only f32 is supported (A is %s)", gq_dtype_name(in[0]->desc.dtype));
        return GQ_EDTYPE;
    }
    float alpha = gq_onnx_attr_float(n, "alpha", 1.0f), beta = gq_onnx_attr_float(n, "beta", 1.0f);
    bool ta = gq_onnx_attr_int(n, "transA", 0), tb = gq_onnx_attr_int(n, "transB", 0);
    int64_t m = in[0]->desc.shape[ta ? 1 : 0], k = in[0]->desc.shape[ta ? 0 : 1];
    int64_t kb = in[1]->desc.shape[tb ? 1 : 0], nn = in[1]->desc.shape[tb ? 0 : 1];
    if (k != kb) {
        gq_errf(err, errlen, "inner dims differ: %lld vs %lld", (long long)k, (long long)kb);
        return GQ_ESHAPE;
    }
    gq_tdesc_t od = {.dtype = GQ_F32, .ndim = 2, .shape = {m, nn}};
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    float *C = out->data;
    bool bias = nin > 2 && in[2] && beta != 0;
    if (bias) { /* C broadcast into the output first, then one GEMM with beta = 1 */
        gq_tdesc_t cd;
        if ((rc = gq_onnx_broadcast(&in[2]->desc, &out->desc, &cd, err, errlen)))
            return rc;
        if (cd.ndim != 2 || cd.shape[0] != m || cd.shape[1] != nn) {
            gq_errf(err, errlen, "bias C does not broadcast to [%lld,%lld]", (long long)m,
                    (long long)nn);
            return GQ_ESHAPE;
        }
        const float *cb = in[2]->data;
        GQ_ONNX_BCAST_LOOP(&out->desc, &in[2]->desc, &out->desc, { C[io] = beta * cb[ia]; });
    }
    gq_onnx_sgemm(ta, tb, m, nn, k, alpha, in[0]->data, ta ? m : k, in[1]->data, tb ? k : nn,
                  bias ? 1.0f : 0.0f, C, nn);
    if (act && act->k != GQ_ONNX_ACT_NONE)
        gq_onnx_act_apply(act, C, m * nn);
    return GQ_OK;
}

static gq_status s_gemm(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                        gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    return s_gemm_act_any(NULL, n, in, nin, out, err, errlen);
}

/* Gemm+Act (onnx_fuse.c): in[3] is the epilogue. */
static gq_status s_gemm_act(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                            gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    gq_onnx_act_t act;
    gq_status rc = gq_onnx_act_decode(nin > 3 ? in[3] : NULL, &act, err, errlen);
    return rc ? rc : s_gemm_act_any(&act, n, in, nin < 3 ? nin : 3, out, err, errlen);
}

const gq_onnx_kernel_t gq_onnx_kernel_gemm_act = {"Gemm+Act", 7, s_gemm_act};

/* MatMul+Add (onnx_fuse.c): the product, then bias [N] (in[2], may be absent) along the
 * last dim and the epilogue (in[3]) in one pass over each row while it is in cache. */
static gq_status s_matmul_add(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                              int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    gq_onnx_act_t act;
    const gq_onnx_val_t *bias = nin > 2 ? in[2] : NULL;
    gq_status rc = gq_onnx_act_decode(nin > 3 ? in[3] : NULL, &act, err, errlen);
    if (rc || (rc = s_matmul(n, opset, in, 2, out, nout, err, errlen)))
        return rc;
    int64_t cols = out->desc.ndim ? out->desc.shape[out->desc.ndim - 1] : 1;
    if (out->desc.dtype != GQ_F32 ||
        (bias && (bias->desc.dtype != GQ_F32 || GQ_ONNX_ELEMS(bias) != cols))) {
        char a[96], b[96];
        gq_errf(err, errlen, "the fused bias %s does not fit the product %s",
                bias ? gq_tdesc_str(&bias->desc, a, sizeof a) : "(none)",
                gq_tdesc_str(&out->desc, b, sizeof b));
        return GQ_ESHAPE;
    }
    int64_t rows = cols ? gq_tdesc_numel(&out->desc) / cols : 0;
    gq_onnx_bias_act(act.k == GQ_ONNX_ACT_NONE ? NULL : &act, NULL, bias ? bias->data : NULL,
                     out->data, rows, cols);
    return GQ_OK;
}

const gq_onnx_kernel_t gq_onnx_kernel_matmul_add = {"MatMul+Add", 1, s_matmul_add};

/* ---- softmax ---- */

typedef struct {
    bool log_form;
    const float *x;
    float *y;
    int64_t len, inner;
} s_softmax_job_t;

/* A contiguous softmax line (the last axis, the usual one) eight lanes at a time: e^(x - max)
 * by gq_onnx_exp8 (~2 ulp; exactly 0 below e^-87.3, where the strided path's double exp
 * gives a denormal or 0), summed in float lanes. The tail goes through a copy padded with
 * -inf, whose terms are 0. */
GQ_ONNX_SIMD static void s_softmax_row(const float *x, float *y, int64_t len, bool log_form)
{
    typedef gq_onnx_v8 v8;
    typedef gq_onnx_v8u v8u;
    v8 vm = (v8){0} - INFINITY;
    int64_t n8 = len - len % 8;
    for (int64_t i = 0; i < n8; i += 8) { /* the max by lanes; NaN makes every output NaN */
        v8 v = *(const v8u *)(x + i);
        vm = (v8)(((gq_onnx_v8i)v & (v > vm)) | ((gq_onnx_v8i)vm & ~(v > vm)));
    }
    float mx = -INFINITY;
    for (int k = 0; k < 8; k++)
        mx = vm[k] > mx ? vm[k] : mx;
    for (int64_t i = n8; i < len; i++)
        mx = x[i] > mx ? x[i] : mx;
    v8 acc = {0};
    for (int64_t i = 0; i < len; i += 8) {
        float t[8], *dst = i + 8 <= len ? y + i : t;
        const float *src = x + i;
        if (i + 8 > len) {
            for (int k = 0; k < 8; k++)
                t[k] = i + k < len ? x[i + k] : -INFINITY;
            src = t;
        }
        v8 v = *(const v8u *)src - mx, e = v;
        gq_onnx_exp8(&e);
        e = (v8)((gq_onnx_v8i)e & ((v >= -87.3f) | (v != v))); /* underflow: 0 */
        acc += e;
        *(v8u *)dst = log_form ? v : e;
        if (dst == t)
            memcpy(y + i, t, (size_t)(len - i) * sizeof *t);
    }
    float sum = 0;
    for (int k = 0; k < 8; k++)
        sum += acc[k];
    float f = log_form ? logf(sum) : 1.0f / sum;
    for (int64_t i = 0; i < n8; i += 8)
        *(v8u *)(y + i) = log_form ? *(v8u *)(y + i) - f : *(v8u *)(y + i) * f;
    for (int64_t i = n8; i < len; i++)
        y[i] = log_form ? y[i] - f : y[i] * f;
}

/* Line l = (o, q) of a softmax: len values inner apart. */
static void s_softmax_line(void *ctx, int64_t l, int tid)
{
    (void)tid;
    const s_softmax_job_t *j = ctx;
    int64_t inner = j->inner, len = j->len, o = l / inner, q = l % inner;
    if (inner == 1) {
        s_softmax_row(j->x + o * len, j->y + o * len, len, j->log_form);
        return;
    }
    const float *xs = j->x + o * len * inner + q;
    float *ys = j->y + o * len * inner + q;
    float mx = -INFINITY;
    for (int64_t i = 0; i < len; i++)
        mx = xs[i * inner] > mx ? xs[i * inner] : mx;
    double sum = 0;
    for (int64_t i = 0; i < len; i++)
        sum += exp((double)xs[i * inner] - mx);
    for (int64_t i = 0; i < len; i++)
        ys[i * inner] = j->log_form ? (float)(xs[i * inner] - mx - log(sum))
                                    : (float)(exp((double)xs[i * inner] - mx) / sum);
}

static gq_status s_softmax_any(bool log_form, const Onnx__NodeProto *n, int opset,
                               gq_onnx_val_t *const *in, int nin, gq_onnx_val_t *out, char *err,
                               size_t errlen)
{
    if (nin < 1 || !in[0] || in[0]->desc.dtype != GQ_F32) {
        gq_errf(err, errlen, "needs one f32 input");
        return GQ_EDTYPE;
    }
    const gq_tdesc_t *d = &in[0]->desc;
    int64_t axis = gq_onnx_attr_int(n, "axis", opset < 13 ? 1 : -1);
    if (axis < 0)
        axis += d->ndim;
    if (axis < 0 || axis >= (d->ndim ? d->ndim : 1)) {
        gq_errf(err, errlen, "axis %lld out of range for rank %d", (long long)axis, d->ndim);
        return GQ_EPARAM;
    }
    out->desc = *d;
    gq_status rc = gq_onnx_val_alloc(out, err, errlen);
    if (rc)
        return rc;
    /* opset < 13: the input is coerced to 2-D at axis; >= 13: one axis. */
    int64_t outer = 1, len = 1, inner = 1;
    for (int i = 0; i < d->ndim; i++) {
        if (i < axis)
            outer *= d->shape[i];
        else if (opset < 13 || i == axis)
            len *= d->shape[i];
        else
            inner *= d->shape[i];
    }
    s_softmax_job_t j = {
        .log_form = log_form, .x = in[0]->data, .y = out->data, .len = len, .inner = inner};
    /* Two exp a value: worth threading at a few thousand values. */
    gq_par_for_work(outer * inner, outer * inner * len * 16, s_softmax_line, &j);
    return GQ_OK;
}

static gq_status s_softmax(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                           gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout;
    return s_softmax_any(false, n, opset, in, nin, out, err, errlen);
}

static gq_status s_logsoftmax(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                              int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout;
    return s_softmax_any(true, n, opset, in, nin, out, err, errlen);
}

const gq_onnx_kernel_t gq_onnx_kernels_nn[] = {
    {"MatMul", 1, s_matmul},
    {"Gemm", 7, s_gemm},
    {"Softmax", 1, s_softmax},
    {"LogSoftmax", 1, s_logsoftmax},
};
const int gq_onnx_kernels_nn_count =
    (int)(sizeof gq_onnx_kernels_nn / sizeof gq_onnx_kernels_nn[0]);
