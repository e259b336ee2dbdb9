/* ONNX kernels over N-D spatial windows (f32): Conv as im2col + GEMM (OpenBLAS),
 * ConvTranspose as GEMM + col2im, MaxPool/AveragePool/LpPool, and the global pools. One
 * geometry (s_geom_t) serves them all; 1-D, 2-D and 3-D are the same code. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"
#include "par.h"
#include "util.h"

/* Spatial geometry of a windowed op: k dims after [N, C]. */
typedef struct {
    int k;
    int64_t in[GQ_MAX_DIMS], kern[GQ_MAX_DIMS], out[GQ_MAX_DIMS];
    int64_t stride[GQ_MAX_DIMS], dil[GQ_MAX_DIMS], pb[GQ_MAX_DIMS], pe[GQ_MAX_DIMS];
    int64_t isz, ksz, osz; /* products of in, kern, out */
} s_geom_t;

/* Reads an ints attribute of exactly want values (def when absent). */
static gq_status s_attr_k(const Onnx__NodeProto *n, const char *name, int want, int64_t def,
                          int64_t *v, char *err, size_t errlen)
{
    int got;
    gq_status rc = gq_onnx_attr_ints(n, name, v, GQ_MAX_DIMS * 2, &got, err, errlen);
    if (rc)
        return rc;
    if (got < 0)
        for (int i = 0; i < want; i++)
            v[i] = def;
    else if (got != want) {
        gq_errf(err, errlen, "attribute %s has %d values, want %d", name, got, want);
        return GQ_EPARAM;
    }
    return GQ_OK;
}

/* Reads strides, dilations, pads and auto_pad for input x and kernel kern (NULL: the
 * kernel_shape attribute), and computes the output dims. ceil_mode: pooling's rounding. */
static gq_status s_geom(const Onnx__NodeProto *n, const gq_tdesc_t *x, const int64_t *kern,
                        bool ceil_mode, s_geom_t *g, char *err, size_t errlen)
{
    memset(g, 0, sizeof *g);
    g->k = x->ndim - 2;
    if (g->k < 1) {
        gq_errf(err, errlen, "input has rank %d, want [N, C, d1, ...]", x->ndim);
        return GQ_ESHAPE;
    }
    int64_t pads[GQ_MAX_DIMS * 2], ks[GQ_MAX_DIMS * 2];
    char ap[32];
    gq_status rc;
    if ((rc = s_attr_k(n, "strides", g->k, 1, g->stride, err, errlen)) ||
        (rc = s_attr_k(n, "dilations", g->k, 1, g->dil, err, errlen)) ||
        (rc = s_attr_k(n, "pads", 2 * g->k, 0, pads, err, errlen)) ||
        (rc = s_attr_k(n, "kernel_shape", g->k, -1, ks, err, errlen)) ||
        (rc = gq_onnx_attr_str(n, "auto_pad", "NOTSET", ap, sizeof ap, err, errlen)))
        return rc;
    g->isz = g->ksz = g->osz = 1;
    for (int d = 0; d < g->k; d++) {
        g->in[d] = x->shape[d + 2];
        g->kern[d] = kern ? kern[d] : ks[d];
        if (kern && ks[d] >= 0 && ks[d] != kern[d]) {
            gq_errf(err, errlen, "kernel_shape[%d] = %lld but the weights say %lld", d,
                    (long long)ks[d], (long long)kern[d]);
            return GQ_EPARAM;
        }
        if (g->kern[d] < 1 || g->stride[d] < 1 || g->dil[d] < 1 || pads[d] < 0 ||
            pads[d + g->k] < 0) {
            gq_errf(err, errlen,
                    "dim %d: kernel %lld, stride %lld, dilation %lld, pads %lld/%lld "
                    "(kernel_shape is required for pools)",
                    d, (long long)g->kern[d], (long long)g->stride[d], (long long)g->dil[d],
                    (long long)pads[d], (long long)pads[d + g->k]);
            return GQ_EPARAM;
        }
        g->pb[d] = pads[d], g->pe[d] = pads[d + g->k];
        int r = gq_onnx_window_dim(g->in[d], g->kern[d], g->stride[d], g->dil[d], ap, ceil_mode,
                                   &g->pb[d], &g->pe[d], &g->out[d]);
        if (r == -1) {
            gq_errf(err, errlen, "auto_pad '%s' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID",
                    ap);
            return GQ_EPARAM;
        }
        if (r == -2) {
            gq_errf(err, errlen, "dim %d: the window (%lld) is larger than the padded input (%lld)",
                    d, (long long)((g->kern[d] - 1) * g->dil[d] + 1),
                    (long long)(g->in[d] + g->pb[d] + g->pe[d]));
            return GQ_ESHAPE;
        }
        g->isz *= g->in[d], g->ksz *= g->kern[d], g->osz *= g->out[d];
    }
    return GQ_OK;
}

/* idx[0..k) of linear index i over dims[0..k). */
static void s_unravel(int64_t i, const int64_t *dims, int k, int64_t *idx)
{
    for (int d = k - 1; d >= 0; d--) {
        idx[d] = i % dims[d];
        i /= dims[d];
    }
}

/* The outputs j in [*lo, *hi) of a dim whose taps j * stride + off fall inside 0..n. */
static void s_valid_range(int64_t nout, int64_t stride, int64_t off, int64_t n, int64_t *lo,
                          int64_t *hi)
{
    int64_t l = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int64_t h = n - off <= 0 ? 0 : (n - off + stride - 1) / stride;
    *lo = l < nout ? l : nout;
    *hi = h < nout ? (h > *lo ? h : *lo) : nout;
}

/* col[c * ksz + kidx, o] = x[c, window o at kernel offset kidx] (0 in the padding), for
 * channels 0..C. Rows of the output are walked with an odometer; along the last (contiguous)
 * dim the in-input span is found once per kernel offset and copied without per-element
 * bounds checks (memcpy when the stride is 1). */
static void s_im2col(const s_geom_t *g, const float *x, int64_t C, float *col)
{
    int k = g->k, last = k - 1;
    int64_t rows = g->osz / g->out[last], kk[GQ_MAX_DIMS], o[GQ_MAX_DIMS];
    int64_t W = g->out[last], sl = g->stride[last];
    for (int64_t c = 0; c < C; c++)
        for (int64_t kidx = 0; kidx < g->ksz; kidx++) {
            s_unravel(kidx, g->kern, k, kk);
            float *row = col + (c * g->ksz + kidx) * g->osz;
            const float *xc = x + c * g->isz;
            int64_t ko = kk[last] * g->dil[last] - g->pb[last], jlo, jhi;
            s_valid_range(W, sl, ko, g->in[last], &jlo, &jhi);
            memset(o, 0, sizeof o);
            for (int64_t r = 0; r < rows; r++) {
                bool ok = true;
                int64_t off = 0;
                for (int d = 0; d < last && ok; d++) {
                    int64_t id = o[d] * g->stride[d] - g->pb[d] + kk[d] * g->dil[d];
                    ok = id >= 0 && id < g->in[d];
                    off = off * g->in[d] + id;
                }
                float *dst = row + r * W;
                if (!ok || jlo == jhi) {
                    memset(dst, 0, (size_t)W * sizeof *dst);
                } else {
                    const float *src = xc + off * g->in[last] + ko;
                    memset(dst, 0, (size_t)jlo * sizeof *dst);
                    if (sl == 1)
                        memcpy(dst + jlo, src + jlo, (size_t)(jhi - jlo) * sizeof *dst);
                    else
                        for (int64_t j = jlo; j < jhi; j++)
                            dst[j] = src[j * sl];
                    memset(dst + jhi, 0, (size_t)(W - jhi) * sizeof *dst);
                }
                for (int d = last - 1; d >= 0 && ++o[d] == g->out[d]; d--)
                    o[d] = 0;
            }
        }
}

/* The inverse scatter: y[c, window o at kidx] += col[c * ksz + kidx, o]; here g->in is
 * the output's spatial dims and g->out the input's (ConvTranspose runs Conv backwards). */
static void s_col2im(const s_geom_t *g, const float *col, int64_t C, float *y)
{
    int k = g->k;
    int64_t kk[GQ_MAX_DIMS], o[GQ_MAX_DIMS];
    for (int64_t c = 0; c < C; c++)
        for (int64_t kidx = 0; kidx < g->ksz; kidx++) {
            s_unravel(kidx, g->kern, k, kk);
            const float *row = col + (c * g->ksz + kidx) * g->osz;
            for (int64_t p = 0; p < g->osz; p++) {
                s_unravel(p, g->out, k, o);
                int64_t off = 0;
                bool ok = true;
                for (int d = 0; d < k && ok; d++) {
                    int64_t id = o[d] * g->stride[d] - g->pb[d] + kk[d] * g->dil[d];
                    ok = id >= 0 && id < g->in[d];
                    off = off * g->in[d] + id;
                }
                if (ok)
                    y[c * g->isz + off] += row[p];
            }
        }
}

/* im2col / col2im / bias+activation of one image and group, a channel (row) per index:
 * the GEMM between them is OpenBLAS's, on its own threads. */
typedef struct {
    const s_geom_t *g;
    const float *x, *col_in, *bias;
    float *col, *y;
    const gq_onnx_act_t *act;
    int64_t rows; /* bias_act: rows per index */
    int64_t nrows;
} s_conv_job_t;

static void s_im2col_one(void *ctx, int64_t c, int tid)
{
    (void)tid;
    const s_conv_job_t *j = ctx;
    s_im2col(j->g, j->x + c * j->g->isz, 1, j->col + c * j->g->ksz * j->g->osz);
}

static void s_col2im_one(void *ctx, int64_t c, int tid)
{
    (void)tid;
    const s_conv_job_t *j = ctx;
    const s_geom_t *g = j->g;
    float *y = j->y + c * g->isz;
    s_col2im(g, j->col_in + c * g->ksz * g->osz, 1, y);
    if (j->bias)
        for (int64_t p = 0; p < g->isz; p++)
            y[p] += j->bias[c];
}

static void s_bias_act_rows(void *ctx, int64_t b, int tid)
{
    (void)tid;
    const s_conv_job_t *j = ctx;
    int64_t lo = b * j->rows, n = lo + j->rows < j->nrows ? j->rows : j->nrows - lo;
    gq_onnx_bias_act(j->act, j->bias ? j->bias + lo : NULL, NULL, j->y + lo * j->g->osz, n,
                     j->g->osz);
}

static gq_status s_f32_inputs(gq_onnx_val_t *const *in, int nin, int need, char *err, size_t errlen)
{
    gq_status rc = gq_onnx_need(in, nin, need, err, errlen);
    if (rc)
        return rc;
    for (int i = 0; i < nin; i++)
        if (in[i] && in[i]->desc.dtype != GQ_F32) {
            gq_errf(err, errlen, "input %d is %s: only f32 is supported", i,
                    gq_dtype_name(in[i]->desc.dtype));
            return GQ_EDTYPE;
        }
    return GQ_OK;
}

/* Checks the bias of a conv: absent, or [M]. */
static gq_status s_bias(gq_onnx_val_t *const *in, int nin, int64_t M, const float **b, char *err,
                        size_t errlen)
{
    *b = NULL;
    if (nin < 3 || !in[2])
        return GQ_OK;
    if (in[2]->desc.ndim != 1 || in[2]->desc.shape[0] != M) {
        char x[96];
        gq_errf(err, errlen, "bias is %s, want [%lld]", gq_tdesc_str(&in[2]->desc, x, sizeof x),
                (long long)M);
        return GQ_ESHAPE;
    }
    *b = in[2]->data;
    return GQ_OK;
}

/* Conv; act: the activation the plan fused into it (NULL: none). 1-D and 2-D kernels
 * other than 1x1 run the direct convolution (onnx_ops_dconv.c); 1x1 kernels without stride
 * or padding are one GEMM per image and group; 3-D ones im2col + GEMM. */
static gq_status s_conv_any(const gq_onnx_act_t *act, const Onnx__NodeProto *n,
                            gq_onnx_val_t *const *in, int nin, gq_onnx_val_t *out, char *err,
                            size_t errlen)
{
    gq_status rc = s_f32_inputs(in, nin, 2, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *x = &in[0]->desc, *w = &in[1]->desc;
    int64_t group = gq_onnx_attr_int(n, "group", 1), N = x->shape[0], C = x->shape[1];
    int64_t M = w->ndim >= 1 ? w->shape[0] : 0;
    if (w->ndim != x->ndim || group < 1 || C % group || M % group || w->shape[1] * group != C) {
        char a[96], b[96];
        gq_errf(err, errlen, "X %s, W %s, group %lld do not fit together",
                gq_tdesc_str(x, a, sizeof a), gq_tdesc_str(w, b, sizeof b), (long long)group);
        return GQ_ESHAPE;
    }
    s_geom_t g;
    const float *bias;
    if ((rc = s_geom(n, x, w->shape + 2, false, &g, err, errlen)) ||
        (rc = s_bias(in, nin, M, &bias, err, errlen)))
        return rc;
    gq_tdesc_t od = *x;
    od.shape[1] = M;
    for (int d = 0; d < g.k; d++)
        od.shape[d + 2] = g.out[d];
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    int64_t Cg = C / group, Mg = M / group, kdim = Cg * g.ksz;
    bool direct = true; /* a 1x1 kernel without stride or padding needs no im2col */
    for (int d = 0; d < g.k; d++)
        direct = direct && g.kern[d] == 1 && g.stride[d] == 1 && g.pb[d] == 0 && g.pe[d] == 0;
    const float *X = in[0]->data, *W = in[1]->data;
    float *Y = out->data;
    if (!direct && g.k <= 2 && gq_tdesc_numel(&od) > 0) {
        int l = g.k - 1; /* the last (contiguous) dim; 1-D convs are 2-D ones of one row */
        gq_onnx_conv2d_t cg = {.N = N,
                               .C = C,
                               .M = M,
                               .group = group,
                               .ih = l ? g.in[0] : 1,
                               .iw = g.in[l],
                               .kh = l ? g.kern[0] : 1,
                               .kw = g.kern[l],
                               .oh = l ? g.out[0] : 1,
                               .ow = g.out[l],
                               .sh = l ? g.stride[0] : 1,
                               .sw = g.stride[l],
                               .dh = l ? g.dil[0] : 1,
                               .dw = g.dil[l],
                               .ph = l ? g.pb[0] : 0,
                               .pw = g.pb[l]};
        return gq_onnx_conv2d_direct(&cg, X, W, bias, act, Y, err, errlen);
    }
    float *col = NULL;
    size_t colbytes = 0, colcap = 0;
    if (!direct && (!gq_onnx_size3(kdim, g.osz, sizeof *col, &colbytes) ||
                    !(col = gq_onnx_scratch(colbytes, &colcap)))) {
        gq_errf(err, errlen, "out of memory for the im2col buffer (%lld x %lld)", (long long)kdim,
                (long long)g.osz);
        return GQ_ENOMEM;
    }
    for (int64_t b = 0; b < N; b++)
        for (int64_t gi = 0; gi < group; gi++) {
            const float *xg = X + (b * C + gi * Cg) * g.isz;
            float *yg = Y + (b * M + gi * Mg) * g.osz;
            s_conv_job_t j = {.g = &g,
                              .x = xg,
                              .col = col,
                              .y = yg,
                              .bias = bias ? bias + gi * Mg : NULL,
                              .act = act,
                              .nrows = Mg};
            if (!direct)
                gq_par_for_work(Cg, kdim * g.osz, s_im2col_one, &j);
            gq_onnx_sgemm(false, false, Mg, g.osz, kdim, 1.0f, W + gi * Mg * kdim, kdim,
                          direct ? xg : col, g.osz, 0.0f, yg, g.osz);
            if (bias || act) {
                j.rows = g.osz >= 8192 ? 1 : 8192 / g.osz; /* rows of about 8K elements */
                gq_par_for_work((Mg + j.rows - 1) / j.rows, Mg * g.osz, s_bias_act_rows, &j);
            }
        }
    gq_onnx_scratch_free(col, colcap);
    return GQ_OK;
}

static gq_status s_conv(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                        gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    return s_conv_any(NULL, n, in, nin, out, err, errlen);
}

static gq_status s_conv_relu(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                             gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    const gq_onnx_act_t relu = {GQ_ONNX_ACT_RELU, 0, 0};
    return s_conv_any(&relu, n, in, nin, out, err, errlen);
}

/* Conv+Act: in[3] is the epilogue (gq_onnx_act_decode). */
static gq_status s_conv_act(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                            gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    gq_onnx_act_t act;
    gq_status rc = gq_onnx_act_decode(nin > 3 ? in[3] : NULL, &act, err, errlen);
    return rc ? rc : s_conv_any(&act, n, in, nin < 3 ? nin : 3, out, err, errlen);
}

const gq_onnx_kernel_t gq_onnx_kernel_conv_act = {"Conv+Act", 1, s_conv_act};
const gq_onnx_kernel_t gq_onnx_kernel_conv_relu = {"Conv+Relu", 1, s_conv_relu};

/* ConvTranspose's geometry: pads from output_shape or auto_pad, and the output dims. The
 * roles of in/out in g are swapped for s_col2im: g->in = output dims, g->out = X's dims. */
static gq_status s_geom_t_conv(const Onnx__NodeProto *n, const gq_tdesc_t *x, const int64_t *kern,
                               s_geom_t *g, char *err, size_t errlen)
{
    int64_t opad[GQ_MAX_DIMS * 2], oshape[GQ_MAX_DIMS * 2], pads[GQ_MAX_DIMS * 2];
    int nos, np;
    char ap[32];
    gq_status rc;
    memset(g, 0, sizeof *g);
    g->k = x->ndim - 2;
    if (g->k < 1) {
        gq_errf(err, errlen, "input has rank %d, want [N, C, d1, ...]", x->ndim);
        return GQ_ESHAPE;
    }
    if ((rc = s_attr_k(n, "strides", g->k, 1, g->stride, err, errlen)) ||
        (rc = s_attr_k(n, "dilations", g->k, 1, g->dil, err, errlen)) ||
        (rc = s_attr_k(n, "output_padding", g->k, 0, opad, err, errlen)) ||
        (rc = gq_onnx_attr_ints(n, "output_shape", oshape, GQ_MAX_DIMS * 2, &nos, err, errlen)) ||
        (rc = gq_onnx_attr_ints(n, "pads", pads, GQ_MAX_DIMS * 2, &np, err, errlen)) ||
        (rc = gq_onnx_attr_str(n, "auto_pad", "NOTSET", ap, sizeof ap, err, errlen)))
        return rc;
    if ((nos >= 0 && nos != g->k && nos != x->ndim) || (np >= 0 && np != 2 * g->k)) {
        gq_errf(err, errlen, "output_shape has %d values / pads %d for %d spatial dims", nos, np,
                g->k);
        return GQ_EPARAM;
    }
    g->isz = g->ksz = g->osz = 1;
    for (int d = 0; d < g->k; d++) {
        g->kern[d] = kern[d];
        g->out[d] = x->shape[d + 2];
        int64_t dk = (kern[d] - 1) * g->dil[d] + 1,
                full = g->stride[d] * (g->out[d] - 1) + opad[d] + dk;
        if (g->stride[d] < 1 || g->dil[d] < 1 || kern[d] < 1) {
            gq_errf(err, errlen, "dim %d: stride %lld, dilation %lld, kernel %lld", d,
                    (long long)g->stride[d], (long long)g->dil[d], (long long)kern[d]);
            return GQ_EPARAM;
        }
        bool same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
        if (nos >= 0 || same) {
            int64_t want =
                nos >= 0 ? oshape[d + (nos == x->ndim ? 2 : 0)] : g->out[d] * g->stride[d];
            int64_t tot = full - want;
            tot = tot < 0 ? 0 : tot;
            g->pb[d] = !strcmp(ap, "SAME_UPPER") ? tot / 2 : tot - tot / 2;
            g->pe[d] = tot - g->pb[d];
            g->in[d] = want;
        } else {
            g->pb[d] = np >= 0 ? pads[d] : 0, g->pe[d] = np >= 0 ? pads[d + g->k] : 0;
            g->in[d] = full - g->pb[d] - g->pe[d];
        }
        if (g->in[d] < 1 || g->pb[d] < 0 || g->pe[d] < 0) {
            gq_errf(err, errlen, "dim %d: output size %lld with pads %lld/%lld", d,
                    (long long)g->in[d], (long long)g->pb[d], (long long)g->pe[d]);
            return GQ_ESHAPE;
        }
        g->isz *= g->in[d], g->ksz *= g->kern[d], g->osz *= g->out[d];
    }
    return GQ_OK;
}

static gq_status s_conv_transpose(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                                  int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    gq_status rc = s_f32_inputs(in, nin, 2, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *x = &in[0]->desc, *w = &in[1]->desc;
    int64_t group = gq_onnx_attr_int(n, "group", 1), N = x->shape[0], C = x->shape[1];
    if (w->ndim != x->ndim || group < 1 || C % group || w->shape[0] != C) {
        char a[96], b[96];
        gq_errf(err, errlen, "X %s, W %s, group %lld do not fit together",
                gq_tdesc_str(x, a, sizeof a), gq_tdesc_str(w, b, sizeof b), (long long)group);
        return GQ_ESHAPE;
    }
    int64_t Mg = w->shape[1], M = Mg * group, Cg = C / group;
    s_geom_t g;
    const float *bias;
    if ((rc = s_geom_t_conv(n, x, w->shape + 2, &g, err, errlen)) ||
        (rc = s_bias(in, nin, M, &bias, err, errlen)))
        return rc;
    gq_tdesc_t od = *x;
    od.shape[1] = M;
    for (int d = 0; d < g.k; d++)
        od.shape[d + 2] = g.in[d];
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    int64_t rows = Mg * g.ksz;
    size_t colbytes = 0, colcap = 0;
    float *col = gq_onnx_size3(rows, g.osz, sizeof *col, &colbytes)
                     ? gq_onnx_scratch(colbytes, &colcap)
                     : NULL;
    if (!col) {
        gq_errf(err, errlen, "out of memory for the col2im buffer");
        return GQ_ENOMEM;
    }
    const float *X = in[0]->data, *W = in[1]->data;
    float *Y = out->data;
    memset(Y, 0, out->nbytes);
    for (int64_t b = 0; b < N; b++)
        for (int64_t gi = 0; gi < group; gi++) {
            /* col[Mg * ksz, in] = W_g^T (W_g is [Cg, Mg * ksz]) x X_g [Cg, in] */
            gq_onnx_sgemm(true, false, rows, g.osz, Cg, 1.0f, W + gi * Cg * rows, rows,
                          X + (b * C + gi * Cg) * g.osz, g.osz, 0.0f, col, g.osz);
            s_conv_job_t j = {.g = &g,
                              .col_in = col,
                              .y = Y + (b * M + gi * Mg) * g.isz,
                              .bias = bias ? bias + gi * Mg : NULL};
            /* Each output channel gathers from its own rows of col: disjoint writes. */
            gq_par_for_work(Mg, rows * g.osz, s_col2im_one, &j);
        }
    gq_onnx_scratch_free(col, colcap);
    return GQ_OK;
}

/* ---- pools ---- */

typedef enum { S_POOL_MAX, S_POOL_AVG, S_POOL_LP } s_pool_t;

/* The taps of window o along dim d: those inside the input are [*lo, *hi); *padded is
 * count_include_pad's divisor, the whole window — also where ceil_mode runs it past the
 * explicit pads, as onnxruntime and ONNX's reference count it. */
static void s_taps(const s_geom_t *g, int d, int64_t o, int64_t *lo, int64_t *hi, int64_t *padded)
{
    int64_t st = o * g->stride[d] - g->pb[d], dl = g->dil[d], K = g->kern[d];
    int64_t end = g->in[d] - st; /* st >= -pb always */
    int64_t l, h;
    if (dl == 1) /* no divisions on the common path */
        l = st < 0 ? -st : 0, h = end <= 0 ? 0 : end;
    else
        l = st < 0 ? (-st + dl - 1) / dl : 0, h = end <= 0 ? 0 : (end + dl - 1) / dl;
    *lo = l;
    *hi = h < K ? (h > l ? h : l) : K;
    *padded = K;
}

/* One output element of a pool over plane x (one [n, c]): *arg gets the flat index (within
 * the plane) of the max for MaxPool. The window is walked as the box of its in-input taps. */
static float s_pool_one(const s_geom_t *g, s_pool_t kind, bool include_pad, double p,
                        const float *x, const int64_t *o, int64_t *arg)
{
    int64_t lo[GQ_MAX_DIMS], hi[GQ_MAX_DIMS], j[GQ_MAX_DIMS], st[GQ_MAX_DIMS], xs[GQ_MAX_DIMS];
    int64_t padded = 1, cnt = 1, best = -1, acc_st = 1;
    for (int d = g->k - 1; d >= 0; d--) {
        int64_t pd;
        s_taps(g, d, o[d], &lo[d], &hi[d], &pd);
        padded *= pd, cnt *= hi[d] - lo[d];
        st[d] = o[d] * g->stride[d] - g->pb[d];
        xs[d] = acc_st, acc_st *= g->in[d];
        j[d] = lo[d];
    }
    double acc = kind == S_POOL_MAX ? -INFINITY : 0;
    for (int64_t t = 0; t < cnt; t++) {
        int64_t off = 0;
        for (int d = 0; d < g->k; d++)
            off += (st[d] + j[d] * g->dil[d]) * xs[d];
        float v = x[off];
        if (kind == S_POOL_MAX && arg) {
            if (v > acc || best < 0)
                acc = v, best = off;
        } else if (kind == S_POOL_MAX) {
            acc = v > acc ? v : acc; /* branch-free: the form compilers turn into maxss */
        } else {
            acc += kind == S_POOL_AVG ? v : pow(fabs(v), p);
        }
        for (int d = g->k - 1; d >= 0 && ++j[d] == hi[d]; d--)
            j[d] = lo[d];
    }
    if (arg)
        *arg = best;
    if (kind == S_POOL_AVG)
        return (float)(acc / (double)(include_pad ? padded : cnt ? cnt : 1));
    if (kind == S_POOL_LP)
        return (float)pow(acc, 1.0 / p);
    return (float)acc;
}

/* g with its spatial dims padded in front to 3 (size-1 dims, kernel 1). */
static void s_geom3(const s_geom_t *g, s_geom_t *h)
{
    memset(h, 0, sizeof *h);
    h->k = 3;
    for (int i = 0; i < 3; i++) {
        int d = i - (3 - g->k);
        h->in[i] = d < 0 ? 1 : g->in[d], h->kern[i] = d < 0 ? 1 : g->kern[d];
        h->out[i] = d < 0 ? 1 : g->out[d], h->stride[i] = d < 0 ? 1 : g->stride[d];
        h->dil[i] = d < 0 ? 1 : g->dil[d], h->pb[i] = d < 0 ? 0 : g->pb[d];
        h->pe[i] = d < 0 ? 0 : g->pe[d];
    }
    h->isz = g->isz, h->ksz = g->ksz, h->osz = g->osz;
}

/* Pools one plane of a 1-, 2- or 3-D pool without indices: the window as three nested
 * loops over its in-input taps (tap ranges per output index precomputed in taps: lo, hi,
 * padded count, per dim), the innermost along the contiguous dim. */
static void s_pool_plane3(const s_geom_t *h, int64_t *const taps[3], s_pool_t kind,
                          bool include_pad, double p, const float *x, float *y)
{
    int64_t q = 0;
    for (int64_t o0 = 0; o0 < h->out[0]; o0++) {
        const int64_t *t0 = taps[0] + 3 * o0, s0 = o0 * h->stride[0] - h->pb[0];
        for (int64_t o1 = 0; o1 < h->out[1]; o1++) {
            const int64_t *t1 = taps[1] + 3 * o1, s1 = o1 * h->stride[1] - h->pb[1];
            for (int64_t o2 = 0; o2 < h->out[2]; o2++, q++) {
                const int64_t *t2 = taps[2] + 3 * o2;
                const float *base = x + o2 * h->stride[2] - h->pb[2];
                float m = -INFINITY;
                double acc = 0;
                for (int64_t j0 = t0[0]; j0 < t0[1]; j0++)
                    for (int64_t j1 = t1[0]; j1 < t1[1]; j1++) {
                        const float *row =
                            base +
                            ((s0 + j0 * h->dil[0]) * h->in[1] + s1 + j1 * h->dil[1]) * h->in[2];
                        for (int64_t j2 = t2[0]; j2 < t2[1]; j2++) {
                            float v = row[j2 * h->dil[2]];
                            if (kind == S_POOL_MAX)
                                m = v > m ? v : m;
                            else
                                acc += kind == S_POOL_AVG ? v : pow(fabs(v), p);
                        }
                    }
                int64_t cnt = (t0[1] - t0[0]) * (t1[1] - t1[0]) * (t2[1] - t2[0]);
                y[q] = kind == S_POOL_MAX ? m
                       : kind == S_POOL_LP
                           ? (float)pow(acc, 1.0 / p)
                           : (float)(acc / (double)(include_pad ? t0[2] * t1[2] * t2[2]
                                                    : cnt       ? cnt
                                                                : 1));
            }
        }
    }
}

/* Max and average pools of one plane, a row of outputs at a time: for each tap along the
 * contiguous dim the outputs whose tap falls inside the input are one range, so the
 * innermost loop is a plain strided max (or sum) over outputs that vectorizes. div: per
 * output along the last dim, 1 / (its window's in-input taps) before the other dims'
 * counts (the average's divisor); NULL for MaxPool. range[2 j, 2 j + 1): the outputs
 * whose tap j along the last dim is inside the input. */
GQ_ONNX_SIMD static void s_pool_plane_fast(const s_geom_t *h, int64_t *const taps[3],
                                           const int64_t *range, bool avg, bool include_pad,
                                           const float *div, const float *x, float *y)
{
    int64_t W = h->out[2], s2 = h->stride[2], d2 = h->dil[2], p2 = h->pb[2];
    for (int64_t o0 = 0; o0 < h->out[0]; o0++) {
        const int64_t *t0 = taps[0] + 3 * o0, s0 = o0 * h->stride[0] - h->pb[0];
        for (int64_t o1 = 0; o1 < h->out[1]; o1++) {
            const int64_t *t1 = taps[1] + 3 * o1, s1 = o1 * h->stride[1] - h->pb[1];
            float *yr = y + (o0 * h->out[1] + o1) * W;
            for (int64_t q = 0; q < W; q++)
                yr[q] = avg ? 0.0f : -INFINITY;
            for (int64_t j0 = t0[0]; j0 < t0[1]; j0++)
                for (int64_t j1 = t1[0]; j1 < t1[1]; j1++) {
                    const float *row =
                        x + ((s0 + j0 * h->dil[0]) * h->in[1] + s1 + j1 * h->dil[1]) * h->in[2];
                    for (int64_t j2 = 0; j2 < h->kern[2]; j2++) {
                        int64_t lo = range[2 * j2], hi = range[2 * j2 + 1];
                        if (lo >= hi)
                            continue;
                        const float *restrict src = row + lo * s2 + j2 * d2 - p2;
                        float *restrict yq = yr + lo; /* input and output never overlap */
                        int64_t n = hi - lo;
                        if (avg)
                            for (int64_t q = 0; q < n; q++)
                                yq[q] += src[q * s2];
                        else if (s2 == 1)
                            for (int64_t q = 0; q < n; q++)
                                yq[q] = src[q] > yq[q] ? src[q] : yq[q];
                        else if (s2 == 2)
                            for (int64_t q = 0; q < n; q++)
                                yq[q] = src[2 * q] > yq[q] ? src[2 * q] : yq[q];
                        else
                            for (int64_t q = 0; q < n; q++)
                                yq[q] = src[q * s2] > yq[q] ? src[q * s2] : yq[q];
                    }
                }
            if (avg) {
                int64_t c01 = include_pad ? t0[2] * t1[2] : (t0[1] - t0[0]) * (t1[1] - t1[0]);
                float rest = c01 ? 1.0f / (float)c01 : 1.0f;
                for (int64_t q = 0; q < W; q++)
                    yr[q] *= div[q] * rest;
            }
        }
    }
}

typedef struct {
    const s_geom_t *g, *h;
    int64_t *taps[3];
    const int64_t *range;
    const float *div;
    s_pool_t kind;
    bool include_pad;
    double p;
    const float *X;
    float *Y;
    int64_t *idx; /* MaxPool's Indices output (s_pool_plane_any); NULL: none */
} s_pool_job_t;

static void s_pool3_plane(void *ctx, int64_t pl, int tid)
{
    (void)tid;
    const s_pool_job_t *j = ctx;
    const float *x = j->X + pl * j->g->isz;
    float *y = j->Y + pl * j->g->osz;
    if (j->kind == S_POOL_LP)
        s_pool_plane3(j->h, j->taps, j->kind, j->include_pad, j->p, x, y);
    else
        s_pool_plane_fast(j->h, j->taps, j->range, j->kind == S_POOL_AVG, j->include_pad, j->div, x,
                          y);
}

/* The 3-D pool over every plane, with its tap table. */
static gq_status s_pool3(const s_geom_t *g, s_pool_t kind, bool include_pad, double p,
                         const float *X, float *Y, int64_t planes, char *err, size_t errlen)
{
    s_geom_t h;
    s_geom3(g, &h);
    size_t cap, rcap = 0;
    int64_t *buf =
        gq_onnx_scratch((size_t)(3 * (h.out[0] + h.out[1] + h.out[2])) * sizeof *buf, &cap);
    if (!buf) {
        gq_errf(err, errlen, "out of memory");
        return GQ_ENOMEM;
    }
    int64_t *taps[3] = {buf, buf + 3 * h.out[0], buf + 3 * (h.out[0] + h.out[1])};
    for (int d = 0; d < 3; d++)
        for (int64_t o = 0; o < h.out[d]; o++)
            s_taps(&h, d, o, &taps[d][3 * o], &taps[d][3 * o + 1], &taps[d][3 * o + 2]);
    size_t dcap = 0;
    float *div = gq_onnx_scratch((size_t)(h.out[2] + 2 * h.kern[2]) * sizeof *div, &dcap);
    int64_t *range = gq_onnx_scratch((size_t)(2 * h.kern[2]) * sizeof *range, &rcap);
    if (!div || !range) {
        gq_onnx_scratch_free(div, dcap);
        gq_onnx_scratch_free(range, rcap);
        gq_onnx_scratch_free(buf, cap);
        gq_errf(err, errlen, "out of memory");
        return GQ_ENOMEM;
    }
    for (int64_t j = 0; j < h.kern[2]; j++)
        s_valid_range(h.out[2], h.stride[2], j * h.dil[2] - h.pb[2], h.in[2], &range[2 * j],
                      &range[2 * j + 1]);
    if (kind == S_POOL_AVG) {
        for (int64_t o = 0; o < h.out[2]; o++) {
            const int64_t *t = taps[2] + 3 * o;
            int64_t cnt = include_pad ? t[2] : t[1] - t[0];
            div[o] = cnt ? 1.0f / (float)cnt : 1.0f;
        }
    }
    s_pool_job_t j = {.g = g,
                      .h = &h,
                      .taps = {taps[0], taps[1], taps[2]},
                      .range = range,
                      .div = div,
                      .kind = kind,
                      .include_pad = include_pad,
                      .p = p,
                      .X = X,
                      .Y = Y};
    /* Planes are independent and share the read-only tap tables. */
    gq_par_for_work(planes, planes * g->osz * g->ksz, s_pool3_plane, &j);
    gq_onnx_scratch_free(div, dcap);
    gq_onnx_scratch_free(range, rcap);
    gq_onnx_scratch_free(buf, cap);
    return GQ_OK;
}

/* One plane of any pool, an output element at a time (MaxPool with Indices, 4-D and up). */
static void s_pool_plane_any(void *ctx, int64_t pl, int tid)
{
    (void)tid;
    const s_pool_job_t *j = ctx;
    const s_geom_t *g = j->g;
    int64_t o[GQ_MAX_DIMS] = {0};
    for (int64_t q = 0; q < g->osz; q++) {
        int64_t arg;
        j->Y[pl * g->osz + q] = s_pool_one(g, j->kind, j->include_pad, j->p, j->X + pl * g->isz, o,
                                           j->idx ? &arg : NULL);
        if (j->idx)
            j->idx[pl * g->osz + q] = pl * g->isz + arg;
        for (int d = g->k - 1; d >= 0 && ++o[d] == g->out[d]; d--)
            o[d] = 0;
    }
}

static gq_status s_pool(s_pool_t kind, const Onnx__NodeProto *n, int opset,
                        gq_onnx_val_t *const *in, int nin, gq_onnx_val_t *out, int nout, char *err,
                        size_t errlen)
{
    gq_status rc = s_f32_inputs(in, nin, 1, err, errlen);
    if (rc)
        return rc;
    if (kind == S_POOL_MAX && gq_onnx_attr_int(n, "storage_order", 0) != 0 && nout > 1) {
        gq_errf(err, errlen, "storage_order = 1 (column-major Indices) is not supported");
        return GQ_EUNSUPPORTED;
    }
    bool ceil_mode = opset >= 10 && gq_onnx_attr_int(n, "ceil_mode", 0);
    bool include_pad = gq_onnx_attr_int(n, "count_include_pad", 0);
    double p = (double)gq_onnx_attr_int(n, "p", 2);
    const gq_tdesc_t *x = &in[0]->desc;
    s_geom_t g;
    if ((rc = s_geom(n, x, NULL, ceil_mode, &g, err, errlen)))
        return rc;
    gq_tdesc_t od = *x;
    for (int d = 0; d < g.k; d++)
        od.shape[d + 2] = g.out[d];
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    bool want_idx = kind == S_POOL_MAX && nout > 1;
    if (want_idx) {
        od.dtype = GQ_I64;
        if ((rc = gq_onnx_out(&out[1], &od, err, errlen)))
            return rc;
    }
    int64_t planes = x->shape[0] * x->shape[1];
    const float *X = in[0]->data;
    float *Y = out->data;
    if (g.k <= 3 && !want_idx)
        return s_pool3(&g, kind, include_pad, p, X, Y, planes, err, errlen);
    s_pool_job_t j = {.g = &g,
                      .kind = kind,
                      .include_pad = include_pad,
                      .p = p,
                      .X = X,
                      .Y = Y,
                      .idx = want_idx ? out[1].data : NULL};
    gq_par_for_work(planes, planes * g.osz * g.ksz, s_pool_plane_any, &j);
    return GQ_OK;
}

#define S_POOL_KERNEL(NAME, KIND)                                                                  \
    static gq_status NAME(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,  \
                          gq_onnx_val_t *out, int nout, char *err, size_t errlen)                  \
    {                                                                                              \
        return s_pool(KIND, n, opset, in, nin, out, nout, err, errlen);                            \
    }
S_POOL_KERNEL(s_maxpool, S_POOL_MAX)
S_POOL_KERNEL(s_avgpool, S_POOL_AVG)
S_POOL_KERNEL(s_lppool, S_POOL_LP)

/* The mean (or max) of each plane of sz floats: eight partial sums (maxima) a plane, so the
 * loop vectorizes (a single running sum is a chain of dependent adds), added in double. */
GQ_ONNX_SIMD static void s_global_fast(bool max, const float *X, int64_t planes, int64_t sz,
                                       float *y)
{
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = X + pl * sz;
        float part[8];
        for (int j = 0; j < 8; j++)
            part[j] = max ? -INFINITY : 0.0f;
        int64_t i = 0;
        for (; i + 8 <= sz; i += 8)
            for (int j = 0; j < 8; j++)
                part[j] = max ? (xp[i + j] > part[j] ? xp[i + j] : part[j]) : part[j] + xp[i + j];
        double acc = max ? -INFINITY : 0;
        for (int j = 0; j < 8; j++)
            acc = max ? (part[j] > acc ? part[j] : acc) : acc + part[j];
        for (; i < sz; i++)
            acc = max ? (xp[i] > acc ? xp[i] : acc) : acc + xp[i];
        y[pl] = (float)(max ? acc : acc / (double)sz);
    }
}

typedef struct {
    s_pool_t kind;
    double p;
    const float *X;
    float *Y;
    int64_t sz, planes, per; /* plane size; planes; planes per block */
} s_global_job_t;

/* Planes [b * per, (b + 1) * per) of a global pool. */
static void s_global_block(void *ctx, int64_t b, int tid)
{
    (void)tid;
    const s_global_job_t *j = ctx;
    int64_t lo = b * j->per, hi = lo + j->per < j->planes ? lo + j->per : j->planes, sz = j->sz;
    if (j->kind != S_POOL_LP) {
        s_global_fast(j->kind == S_POOL_MAX, j->X + lo * sz, hi - lo, sz, j->Y + lo);
        return;
    }
    for (int64_t pl = lo; pl < hi; pl++) {
        const float *xp = j->X + pl * sz;
        double acc = 0;
        for (int64_t i = 0; i < sz; i++)
            acc += pow(fabs(xp[i]), j->p);
        j->Y[pl] = (float)pow(acc, 1.0 / j->p);
    }
}

/* GlobalAveragePool / GlobalMaxPool / GlobalLpPool: one value per [n, c], spatial dims 1. */
static gq_status s_global(s_pool_t kind, const Onnx__NodeProto *n, gq_onnx_val_t *const *in,
                          int nin, gq_onnx_val_t *out, char *err, size_t errlen)
{
    gq_status rc = s_f32_inputs(in, nin, 1, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    if (x->ndim < 2) {
        gq_errf(err, errlen, "input has rank %d, want [N, C, ...]", x->ndim);
        return GQ_ESHAPE;
    }
    gq_tdesc_t od = *x;
    int64_t sz = 1;
    for (int d = 2; d < x->ndim; d++)
        sz *= x->shape[d], od.shape[d] = 1;
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    int64_t planes = x->shape[0] * x->shape[1];
    s_global_job_t j = {.kind = kind,
                        .p = (double)gq_onnx_attr_int(n, "p", 2),
                        .X = in[0]->data,
                        .Y = out->data,
                        .sz = sz,
                        .planes = planes};
    int64_t work = planes * sz * (kind == S_POOL_LP ? 8 : 1);
    if (work >= gq_par_min_work() && planes > 1) {
        /* Blocks of up to 16K elements (whole planes), at least 64 blocks when there are as
         * many planes: gq_par_for hands them out in chunks. */
        int64_t per = sz >= 16384 ? 1 : 16384 / (sz ? sz : 1), most = planes / 64;
        j.per = per < most ? per : most > 0 ? most : 1;
        gq_par_for((planes + j.per - 1) / j.per, s_global_block, &j);
        return GQ_OK;
    }
    j.per = planes > 0 ? planes : 1;
    s_global_block(&j, 0, 0);
    return GQ_OK;
}

#define S_GLOBAL_KERNEL(NAME, KIND)                                                                \
    static gq_status NAME(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,  \
                          gq_onnx_val_t *out, int nout, char *err, size_t errlen)                  \
    {                                                                                              \
        (void)opset, (void)nout;                                                                   \
        return s_global(KIND, n, in, nin, out, err, errlen);                                       \
    }
S_GLOBAL_KERNEL(s_gavgpool, S_POOL_AVG)
S_GLOBAL_KERNEL(s_gmaxpool, S_POOL_MAX)
S_GLOBAL_KERNEL(s_glppool, S_POOL_LP)

const gq_onnx_kernel_t gq_onnx_kernels_conv[] = {
    {"Conv", 1, s_conv},
    {"ConvTranspose", 1, s_conv_transpose},
    {"MaxPool", 1, s_maxpool},
    {"AveragePool", 1, s_avgpool},
    {"LpPool", 11, s_lppool},
    {"GlobalAveragePool", 1, s_gavgpool},
    {"GlobalMaxPool", 1, s_gmaxpool},
    {"GlobalLpPool", 2, s_glppool},
};
const int gq_onnx_kernels_conv_count = GQ_ONNX_COUNT(gq_onnx_kernels_conv);
