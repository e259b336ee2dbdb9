/* ONNX integer kernels (opset 10): MatMulInteger and ConvInteger (what onnxruntime's dynamic
 * quantization emits after DynamicQuantizeLinear), QLinearMatMul and QLinearConv (its
 * static "QOperator" format). u8/i8 operands less their zero points are exact in float;
 * MatMul accumulates in double (DGEMM: exact for any K a model has), Conv runs the f32 Conv
 * kernel (every geometry it takes), exact while a window's sum stays under 2^24 — about 250
 * taps at full range, more than the models' 3x3 and 1-D windows. QLinear outputs scale the
 * integer result by a_scale * b_scale / y_scale (f32, as the reference computes it), round
 * half to even, add the zero point and saturate. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"
#include "util.h"

static bool s_q8(gq_dtype_t dt)
{
    return dt == GQ_U8 || dt == GQ_I8;
}

/* A zero point or scale: absent (def), one value, or one per index along a dim of length
 * n; what names it in errors. */
typedef struct {
    const gq_onnx_val_t *v;
    int64_t n; /* 1: one value */
    double def;
} s_qp_t;

static gq_status s_qp(const gq_onnx_val_t *v, int64_t n, double def, const char *what, s_qp_t *q,
                      char *err, size_t errlen)
{
    int64_t cnt = v ? gq_tdesc_numel(&v->desc) : 1;
    *q = (s_qp_t){.v = v, .n = cnt, .def = def};
    if (v && (!gq_onnx_dtype_real(v->desc.dtype) || (cnt != 1 && (cnt != n || v->desc.ndim > 1)))) {
        char a[96];
        gq_errf(err, errlen, "%s is %s: want one value or %lld", what,
                gq_tdesc_str(&v->desc, a, sizeof a), (long long)n);
        return GQ_ESHAPE;
    }
    return GQ_OK;
}

static double s_qp_at(const s_qp_t *q, int64_t i)
{
    return q->v ? gq_onnx_getd(q->v->data, q->v->desc.dtype, q->n == 1 ? 0 : i) : q->def;
}

/* acc[.., m, n] = (a - azp[row]) x (b - bzp[col]) with batch broadcasting, in double; the
 * zero points (NULL: 0) one value, or one per row of a / column of b. */
static gq_status s_int_matmul(const gq_onnx_val_t *a, const gq_onnx_val_t *azv,
                              const gq_onnx_val_t *b, const gq_onnx_val_t *bzv, gq_tdesc_t *od,
                              double **acc, char *err, size_t errlen)
{
    gq_tdesc_t ad = a->desc, bd = b->desc, ba, bb, bo;
    if (!s_q8(ad.dtype) || !s_q8(bd.dtype)) {
        gq_errf(err, errlen, "%s x %s: want u8 or i8 operands", gq_dtype_name(ad.dtype),
                gq_dtype_name(bd.dtype));
        return GQ_EDTYPE;
    }
    gq_status rc = gq_onnx_matmul_shape(&ad, &bd, &ba, &bb, &bo, od, err, errlen);
    if (rc)
        return rc;
    int64_t m = ad.shape[ad.ndim - 2], k = ad.shape[ad.ndim - 1], n = bd.shape[bd.ndim - 1];
    int64_t na = gq_tdesc_numel(&ad), nb = gq_tdesc_numel(&bd), no = gq_tdesc_numel(od);
    s_qp_t azp, bzp;
    if ((rc = s_qp(azv, m, 0, "a_zero_point", &azp, err, errlen)) ||
        (rc = s_qp(bzv, n, 0, "b_zero_point", &bzp, err, errlen)))
        return rc;
    size_t bytes;
    if (!gq_onnx_size3(na + nb + no, 1, sizeof(double), &bytes) ||
        !(*acc = malloc(bytes ? bytes : 1))) {
        gq_errf(err, errlen, "out of memory for the integer product");
        return GQ_ENOMEM;
    }
    if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX) {
        free(*acc);
        gq_errf(err, errlen, "dims past 32-bit ints");
        return GQ_ETOOBIG;
    }
    double *A = *acc + no, *B = A + na, *C = *acc;
    for (int64_t i = 0; i < na; i++)
        A[i] = gq_onnx_getd(a->data, ad.dtype, i) - s_qp_at(&azp, (i / k) % m);
    for (int64_t i = 0; i < nb; i++)
        B[i] = gq_onnx_getd(b->data, bd.dtype, i) - s_qp_at(&bzp, i % n);
    GQ_ONNX_BCAST_LOOP(&bo, &ba, &bb, {
        if (m && n)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0,
                        A + ia * m * k, (int)(k ? k : 1), B + ib * k * n, (int)n, 0.0,
                        C + io * m * n, (int)n);
    });
    return GQ_OK;
}

static gq_status s_matmul_integer(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                                  int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)n, (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    if (rc)
        return rc;
    gq_tdesc_t od;
    double *acc = NULL;
    if ((rc = s_int_matmul(in[0], nin > 2 ? in[2] : NULL, in[1], nin > 3 ? in[3] : NULL, &od, &acc,
                           err, errlen)))
        return rc;
    od.dtype = GQ_I32;
    if (!(rc = gq_onnx_out(out, &od, err, errlen)))
        for (int64_t i = 0, t = gq_tdesc_numel(&od); i < t; i++)
            ((int32_t *)out->data)[i] = (int32_t)acc[i]; /* int32 wraps, as the op's result */
    free(acc);
    return rc;
}

/* y = saturate(rint(acc * mult[ch]) + zp) into y's type (that of the zero point, else dflt). */
static gq_status s_requant(const double *acc, int64_t total, int64_t ch_div, int64_t nch,
                           const float *mult, const gq_onnx_val_t *yzp, gq_dtype_t dflt,
                           const gq_tdesc_t *shape, gq_onnx_val_t *out, char *err, size_t errlen)
{
    gq_tdesc_t od = *shape;
    od.dtype = yzp ? yzp->desc.dtype : dflt;
    if (!s_q8(od.dtype)) {
        gq_errf(err, errlen, "output type %s: want u8 or i8", gq_dtype_name(od.dtype));
        return GQ_EDTYPE;
    }
    gq_status rc = gq_onnx_out(out, &od, err, errlen);
    if (rc)
        return rc;
    double lo = od.dtype == GQ_U8 ? 0 : -128, hi = od.dtype == GQ_U8 ? 255 : 127;
    double zp = yzp ? gq_onnx_getd(yzp->data, yzp->desc.dtype, 0) : 0;
    for (int64_t i = 0; i < total; i++) {
        double v = nearbyint(acc[i] * (double)mult[nch > 1 ? (i / ch_div) % nch : 0] + zp);
        gq_onnx_setd(out->data, od.dtype, i, v < lo ? lo : v > hi ? hi : v);
    }
    return GQ_OK;
}

/* mult[c] = a_scale * b_scale[c] / y_scale in f32, as the reference computes it. */
static gq_status s_mults(const gq_onnx_val_t *as, const gq_onnx_val_t *bs, const gq_onnx_val_t *ys,
                         int64_t nch, float *mult, char *err, size_t errlen)
{
    s_qp_t a, b, y;
    gq_status rc;
    if ((rc = s_qp(as, 1, 1, "the input scale", &a, err, errlen)) ||
        (rc = s_qp(bs, nch, 1, "the weight scale", &b, err, errlen)) ||
        (rc = s_qp(ys, 1, 1, "y_scale", &y, err, errlen)))
        return rc;
    for (int64_t c = 0; c < nch; c++)
        mult[c] = (float)s_qp_at(&a, 0) * (float)s_qp_at(&b, c) / (float)s_qp_at(&y, 0);
    return GQ_OK;
}

static gq_status s_qlinear_matmul(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                                  int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)n, (void)opset, (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 8, err, errlen);
    if (rc)
        return rc;
    gq_tdesc_t od;
    double *acc = NULL;
    float one;
    if (gq_tdesc_numel(&in[1]->desc) != 1 || gq_tdesc_numel(&in[4]->desc) != 1) {
        gq_errf(err, errlen, "per-row / per-column scales are not supported: one scale each");
        return GQ_EUNSUPPORTED;
    }
    if ((rc = s_mults(in[1], in[4], in[6], 1, &one, err, errlen)) ||
        (rc = s_int_matmul(in[0], in[2], in[3], in[5], &od, &acc, err, errlen)))
        return rc;
    rc = s_requant(acc, gq_tdesc_numel(&od), 1, 1, &one, in[7], in[0]->desc.dtype, &od, out, err,
                   errlen);
    free(acc);
    return rc;
}

/* The f32 Conv kernel over x - x_zp and w - w_zp[m] (exact integers in float), bias b
 * (int32, optional) as floats; *acc gets the result in double, *od its shape. */
static gq_status s_int_conv(const Onnx__NodeProto *n, int opset, const gq_onnx_val_t *x,
                            const gq_onnx_val_t *xzp, const gq_onnx_val_t *w,
                            const gq_onnx_val_t *wzp, const gq_onnx_val_t *b, double **acc,
                            gq_tdesc_t *od, char *err, size_t errlen)
{
    const gq_onnx_kernel_t *ck = gq_onnx_kernel_find("Conv", opset);
    if (!s_q8(x->desc.dtype) || !s_q8(w->desc.dtype) || w->desc.ndim < 3) {
        gq_errf(err, errlen, "x %s, w %s: want u8 or i8, w of rank >= 3",
                gq_dtype_name(x->desc.dtype), gq_dtype_name(w->desc.dtype));
        return GQ_EDTYPE;
    }
    int64_t M = w->desc.shape[0], wper = M ? gq_tdesc_numel(&w->desc) / M : 0;
    s_qp_t xq, wq;
    gq_status rc;
    if ((rc = s_qp(xzp, 1, 0, "x_zero_point", &xq, err, errlen)) ||
        (rc = s_qp(wzp, M, 0, "w_zero_point", &wq, err, errlen)))
        return rc;
    if (b && (b->desc.ndim != 1 || b->desc.shape[0] != M || !gq_onnx_dtype_int(b->desc.dtype))) {
        gq_errf(err, errlen, "the bias must be integers [%lld]", (long long)M);
        return GQ_ESHAPE;
    }
    gq_onnx_val_t fx = {.desc = x->desc}, fw = {.desc = w->desc}, fb = {0}, y = {0};
    fx.desc.dtype = fw.desc.dtype = GQ_F32;
    if (b)
        fb.desc = b->desc, fb.desc.dtype = GQ_F32;
    if (!ck || (rc = gq_onnx_val_alloc(&fx, err, errlen)) ||
        (rc = gq_onnx_val_alloc(&fw, err, errlen)) ||
        (b && (rc = gq_onnx_val_alloc(&fb, err, errlen)))) {
        rc = ck ? rc : GQ_EINTERNAL;
        goto done;
    }
    for (int64_t i = 0, t = gq_tdesc_numel(&x->desc); i < t; i++)
        ((float *)fx.data)[i] = (float)(gq_onnx_getd(x->data, x->desc.dtype, i) - s_qp_at(&xq, 0));
    for (int64_t i = 0, t = gq_tdesc_numel(&w->desc); i < t; i++)
        ((float *)fw.data)[i] =
            (float)(gq_onnx_getd(w->data, w->desc.dtype, i) - s_qp_at(&wq, wper ? i / wper : 0));
    for (int64_t i = 0; b && i < M; i++)
        ((float *)fb.data)[i] = (float)gq_onnx_geti(b->data, b->desc.dtype, i);
    gq_onnx_val_t *ins[3] = {&fx, &fw, b ? &fb : NULL};
    if ((rc = ck->fn(n, opset, ins, 3, &y, 1, err, errlen)))
        goto done;
    *od = y.desc;
    int64_t t = gq_tdesc_numel(&y.desc);
    if (!(*acc = malloc((size_t)(t ? t : 1) * sizeof **acc))) {
        gq_errf(err, errlen, "out of memory");
        rc = GQ_ENOMEM;
        goto done;
    }
    for (int64_t i = 0; i < t; i++)
        (*acc)[i] = ((const float *)y.data)[i];
done:
    gq_onnx_scratch_free(fx.data, fx.cap);
    gq_onnx_scratch_free(fw.data, fw.cap);
    gq_onnx_scratch_free(fb.data, fb.cap);
    gq_onnx_scratch_free(y.data, y.cap);
    return rc;
}

static gq_status s_conv_integer(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                                int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 2, err, errlen);
    double *acc = NULL;
    gq_tdesc_t od;
    if (rc || (rc = s_int_conv(n, opset, in[0], nin > 2 ? in[2] : NULL, in[1],
                               nin > 3 ? in[3] : NULL, NULL, &acc, &od, err, errlen)))
        return rc;
    od.dtype = GQ_I32;
    if (!(rc = gq_onnx_out(out, &od, err, errlen)))
        for (int64_t i = 0, t = gq_tdesc_numel(&od); i < t; i++)
            ((int32_t *)out->data)[i] = (int32_t)acc[i];
    free(acc);
    return rc;
}

static gq_status s_qlinear_conv(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                                int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 8, err, errlen);
    if (rc)
        return rc;
    int64_t M = in[3]->desc.ndim >= 1 ? in[3]->desc.shape[0] : 0;
    float *mult = malloc((size_t)(M ? M : 1) * sizeof *mult);
    double *acc = NULL;
    gq_tdesc_t od;
    if (!mult) {
        gq_errf(err, errlen, "out of memory");
        return GQ_ENOMEM;
    }
    int64_t nch = in[4] && gq_tdesc_numel(&in[4]->desc) > 1 ? M : 1;
    if (!(rc = s_mults(in[1], in[4], in[6], nch, mult, err, errlen)) &&
        !(rc = s_int_conv(n, opset, in[0], in[2], in[3], in[5], nin > 8 ? in[8] : NULL, &acc, &od,
                          err, errlen))) {
        int64_t sp = 1; /* elements per output channel */
        for (int d = 2; d < od.ndim; d++)
            sp *= od.shape[d];
        rc = s_requant(acc, gq_tdesc_numel(&od), sp, nch, mult, in[7], in[0]->desc.dtype, &od, out,
                       err, errlen);
    }
    free(acc);
    free(mult);
    return rc;
}

const gq_onnx_kernel_t gq_onnx_kernels_quant[] = {
    {"MatMulInteger", 10, s_matmul_integer},
    {"ConvInteger", 10, s_conv_integer},
    {"QLinearMatMul", 10, s_qlinear_matmul},
    {"QLinearConv", 10, s_qlinear_conv},
};
const int gq_onnx_kernels_quant_count = GQ_ONNX_COUNT(gq_onnx_kernels_quant);
