/* Launches of the ONNX steps the OpenCL accelerator claimed (cl_onnx_claim.c; kernels in
 * kernels/onnx.cl): GEMMs (MatMul, Gemm, convs as im2col + GEMM batched over images and
 * groups, epilogues fused into the store), windowed kernels by rows on CPU devices and per
 * element on GPUs, elementwise kernels, and reshape-like steps as aliases of their input's
 * buffer (no copy). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_onnx.h"
#include "util.h"

#define S_COL_BYTES ((size_t)64 << 20) /* im2col scratch per chunk of images */

static cl_mem s_mem(const gq_onnx_val_t *v)
{
    return ((const gq_clx_buf_t *)v->dev)->m;
}

/* A fresh device output of descriptor d. */
static gq_status s_out(gq_clx_plan_t *ps, const gq_tdesc_t *d, gq_onnx_val_t *out, char *err,
                       size_t errlen)
{
    gq_clx_buf_t *b;
    size_t nbytes = gq_tdesc_nbytes(d);
    gq_status rc = gq_clx_alloc(ps, nbytes, &b, err, errlen);
    if (rc)
        return rc;
    out->desc = *d;
    out->nbytes = nbytes;
    out->data = NULL;
    out->owned = false;
    out->dev = b;
    out->dev_only = true;
    return GQ_OK;
}

/* One GEMM launch (kernels/onnx.cl's gq_onnx_gemm). */
typedef struct {
    cl_mem A;
    cl_long aoff, ars, acs, amod, abs_;
    cl_mem B;
    cl_long boff, ldb, bmod, bbs;
    cl_mem C;
    cl_long coff, ldc, cbs;
    cl_mem bias;
    cl_int has_bias;
    cl_long bsm, bsn, biasmod, biasbs;
    cl_int M, N, K;
    cl_float alpha, beta;
    cl_int act;
    cl_float acta, actb;
    size_t batch;
} s_gemm_t;

static gq_status s_gemm(gq_clx_plan_t *ps, s_gemm_t *g, char *err, size_t errlen)
{
    if (!g->bias)
        g->bias = g->C, g->has_bias = 0;
    if (!g->amod)
        g->amod = 1;
    if (!g->bmod)
        g->bmod = 1;
    if (!g->biasmod)
        g->biasmod = 1;
    gq_clx_arg_t a[] = {
        GQ_CLX_ARG(g->A),        GQ_CLX_ARG(g->aoff), GQ_CLX_ARG(g->ars), GQ_CLX_ARG(g->acs),
        GQ_CLX_ARG(g->amod),     GQ_CLX_ARG(g->abs_), GQ_CLX_ARG(g->B),   GQ_CLX_ARG(g->boff),
        GQ_CLX_ARG(g->ldb),      GQ_CLX_ARG(g->bmod), GQ_CLX_ARG(g->bbs), GQ_CLX_ARG(g->C),
        GQ_CLX_ARG(g->coff),     GQ_CLX_ARG(g->ldc),  GQ_CLX_ARG(g->cbs), GQ_CLX_ARG(g->bias),
        GQ_CLX_ARG(g->has_bias), GQ_CLX_ARG(g->bsm),  GQ_CLX_ARG(g->bsn), GQ_CLX_ARG(g->biasmod),
        GQ_CLX_ARG(g->biasbs),   GQ_CLX_ARG(g->M),    GQ_CLX_ARG(g->N),   GQ_CLX_ARG(g->K),
        GQ_CLX_ARG(g->alpha),    GQ_CLX_ARG(g->beta), GQ_CLX_ARG(g->act), GQ_CLX_ARG(g->acta),
        GQ_CLX_ARG(g->actb),
    };
    size_t global[3] = {((size_t)g->N + 7) / 8, ((size_t)g->M + 3) / 4, g->batch};
    return gq_clx_launch(ps, GQ_CLX_GEMM, a, (int)(sizeof a / sizeof a[0]), 3, global, err, errlen);
}

/* y = x under a strided plan (bp's shape and s0). */
static gq_status s_strided(gq_clx_plan_t *ps, cl_mem x, cl_mem y, const gq_onnx_claim_bplan_t *bp,
                           size_t n, char *err, size_t errlen)
{
    cl_int nd = bp->nd;
    cl_long8 sh, sa;
    for (int i = 0; i < 8; i++)
        sh.s[i] = bp->sh[i], sa.s[i] = bp->s0[i];
    cl_ulong nn = n;
    gq_clx_arg_t a[] = {GQ_CLX_ARG(x),  GQ_CLX_ARG(y),  GQ_CLX_ARG(nd),
                        GQ_CLX_ARG(sh), GQ_CLX_ARG(sa), GQ_CLX_ARG(nn)};
    return gq_clx_launch_ew(ps, GQ_CLX_STRIDED, a, 6, n, err, errlen);
}

static gq_status s_run_gemm(gq_clx_plan_t *ps, int k, gq_onnx_val_t *const *in, cl_mem y, char *err,
                            size_t errlen)
{
    const gq_clx_claim_t *c = &ps->cur;
    int64_t M = c->v[0], N = c->v[1], K = c->v[2];
    bool ta = c->v[3], tb = c->v[4], bias = c->v[5];
    gq_clx_buf_t *bt = NULL;
    cl_mem B = s_mem(in[1]);
    gq_status rc = GQ_OK;
    if (tb) { /* B is [N, K]: the kernel reads rows of [K, N], so transpose it first */
        const gq_clx_buf_t *src = in[1]->dev;
        bool keep = src->konst; /* a constant: transposed once, kept by the plan */
        if (keep && ps->derived[k] && ps->derived[k]->cap >= in[1]->nbytes) {
            bt = ps->derived[k];
        } else {
            rc = keep ? gq_clx_alloc_const(ps, in[1]->nbytes, &bt, err, errlen)
                      : gq_clx_alloc(ps, in[1]->nbytes, &bt, err, errlen);
            gq_onnx_claim_bplan_t bp = {
                .nd = 2, .sh = {1, 1, 1, 1, 1, 1, K, N}, .s0 = {0, 0, 0, 0, 0, 0, 1, K}};
            if (!rc)
                rc = s_strided(ps, B, bt->m, &bp, (size_t)(K * N), err, errlen);
            if (!rc && keep)
                ps->derived[k] = bt;
        }
        if (rc) {
            if (bt && !keep)
                gq_clx_unref(ps, bt);
            return rc;
        }
        B = bt->m;
    }
    s_gemm_t g = {.A = s_mem(in[0]),
                  .ars = ta ? 1 : K,
                  .acs = ta ? M : 1,
                  .B = B,
                  .ldb = N,
                  .C = y,
                  .ldc = N,
                  .bias = bias ? s_mem(in[2]) : NULL,
                  .has_bias = bias,
                  .bsm = c->v[6],
                  .bsn = c->v[7],
                  .M = (cl_int)M,
                  .N = (cl_int)N,
                  .K = (cl_int)K,
                  .alpha = c->f[0],
                  .beta = c->f[1],
                  .act = (cl_int)c->v[40],
                  .acta = c->f[2],
                  .actb = c->f[3],
                  .batch = 1};
    rc = s_gemm(ps, &g, err, errlen);
    if (bt && !bt->konst)
        gq_clx_unref(ps, bt);
    return rc;
}

static gq_status s_run_matmul(gq_clx_plan_t *ps, bool add, gq_onnx_val_t *const *in, cl_mem y,
                              char *err, size_t errlen)
{
    const int64_t *v = ps->cur.v;
    const float *f = ps->cur.f;
    s_gemm_t g = {.A = s_mem(in[0]),
                  .ars = v[2],
                  .acs = 1,
                  .amod = v[4],
                  .abs_ = v[5],
                  .B = s_mem(in[1]),
                  .ldb = v[1],
                  .bmod = v[6],
                  .bbs = v[7],
                  .C = y,
                  .ldc = v[1],
                  .cbs = v[0] * v[1],
                  .M = (cl_int)v[0],
                  .N = (cl_int)v[1],
                  .K = (cl_int)v[2],
                  .bias = add ? s_mem(in[2]) : NULL,
                  .has_bias = add,
                  .bsn = 1,
                  .alpha = 1.0f,
                  .beta = 1.0f,
                  .act = (cl_int)v[40],
                  .acta = f[2],
                  .actb = f[3],
                  .batch = (size_t)v[3]};
    return s_gemm(ps, &g, err, errlen);
}

/* Conv: depthwise (one filter per group) directly; otherwise one GEMM per chunk of images,
 * batched over images and groups, on the input itself for 1x1 kernels without stride or
 * padding, else on its im2col columns. Bias and a fused Relu in the GEMM's epilogue. */
static gq_status s_run_conv(gq_clx_plan_t *ps, gq_onnx_val_t *const *in, int nin, cl_mem y,
                            char *err, size_t errlen)
{
    const int64_t *v = ps->cur.v;
    const gq_onnx_claim_win_t *w_ = &ps->cur.w;
    cl_float acta = ps->cur.f[2], actb = ps->cur.f[3];
    cl_int IH = (cl_int)w_->ih, IW = (cl_int)w_->iw, KH = (cl_int)w_->kh, KW = (cl_int)w_->kw;
    cl_int SH = (cl_int)w_->sh, SW = (cl_int)w_->sw, DH = (cl_int)w_->dh, DW = (cl_int)w_->dw;
    cl_int PH = (cl_int)w_->ph, PW = (cl_int)w_->pw, OH = (cl_int)w_->oh, OW = (cl_int)w_->ow;
    int64_t N = v[0], C = v[1], M = v[2], G = v[3];
    cl_int has_bias = nin > 2 && in[2] != NULL, act = (cl_int)v[40];
    int64_t Cg = C / G, Mg = M / G, K = Cg * KH * KW, P = (int64_t)OH * OW;
    cl_mem x = s_mem(in[0]), w = s_mem(in[1]), bias = has_bias ? s_mem(in[2]) : y;
    bool rows = gq_clx_rows(ps->ax);
    if (Mg == 1) {
        cl_int c_ = (cl_int)C, m_ = (cl_int)M, cg = (cl_int)Cg, mg = (cl_int)Mg;
        cl_ulong n = (cl_ulong)(N * M * (rows ? OH : P));
        gq_clx_arg_t a[] = {
            GQ_CLX_ARG(x),  GQ_CLX_ARG(w),   GQ_CLX_ARG(bias), GQ_CLX_ARG(has_bias), GQ_CLX_ARG(y),
            GQ_CLX_ARG(c_), GQ_CLX_ARG(m_),  GQ_CLX_ARG(cg),   GQ_CLX_ARG(mg),       GQ_CLX_ARG(KH),
            GQ_CLX_ARG(KW), GQ_CLX_ARG(IH),  GQ_CLX_ARG(IW),   GQ_CLX_ARG(OH),       GQ_CLX_ARG(OW),
            GQ_CLX_ARG(SH), GQ_CLX_ARG(SW),  GQ_CLX_ARG(DH),   GQ_CLX_ARG(DW),       GQ_CLX_ARG(PH),
            GQ_CLX_ARG(PW), GQ_CLX_ARG(act), GQ_CLX_ARG(acta), GQ_CLX_ARG(actb),     GQ_CLX_ARG(n)};
        return rows ? gq_clx_launch_rows(ps, GQ_CLX_CONV_ROWS, a, (int)(sizeof a / sizeof a[0]),
                                         (size_t)n, err, errlen)
                    : gq_clx_launch_ew(ps, GQ_CLX_CONV_DIRECT, a, (int)(sizeof a / sizeof a[0]),
                                       (size_t)n, err, errlen);
    }
    s_gemm_t g = {.A = w,
                  .ars = K,
                  .acs = 1,
                  .amod = G,
                  .abs_ = Mg * K,
                  .ldb = P,
                  .bbs = K * P,
                  .C = y,
                  .ldc = P,
                  .cbs = Mg * P,
                  .bias = has_bias ? bias : NULL,
                  .has_bias = has_bias,
                  .bsm = 1,
                  .bsn = 0,
                  .biasmod = G,
                  .biasbs = Mg,
                  .M = (cl_int)Mg,
                  .N = (cl_int)P,
                  .K = (cl_int)K,
                  .alpha = 1.0f,
                  .beta = 1.0f,
                  .act = act,
                  .acta = acta,
                  .actb = actb};
    bool direct = KH == 1 && KW == 1 && SH == 1 && SW == 1 && PH == 0 && PW == 0 && w_->phe == 0 &&
                  w_->pwe == 0;
    if (direct) {
        g.B = x;
        g.bmod = N * G;
        g.batch = (size_t)(N * G);
        return s_gemm(ps, &g, err, errlen);
    }
    size_t per = (size_t)(G * K * P) * sizeof(float);
    int64_t chunk = per >= S_COL_BYTES ? 1 : (int64_t)(S_COL_BYTES / per);
    chunk = chunk > N ? N : chunk;
    gq_clx_buf_t *col;
    gq_status rc = gq_clx_alloc(ps, per * (size_t)chunk, &col, err, errlen);
    if (rc)
        return rc;
    cl_int k_ = (cl_int)K, p_ = (cl_int)P;
    for (int64_t n0 = 0; n0 < N && !rc; n0 += chunk) {
        int64_t nb = N - n0 < chunk ? N - n0 : chunk;
        cl_long xoff = n0 * C * IH * IW;
        cl_ulong items = (cl_ulong)(nb * G * K * (rows ? OH : P));
        /* the row kernel takes OH where the element kernel takes P */
        gq_clx_arg_t a[] = {GQ_CLX_ARG(x),
                            GQ_CLX_ARG(xoff),
                            GQ_CLX_ARG(col->m),
                            GQ_CLX_ARG(k_),
                            rows ? (gq_clx_arg_t)GQ_CLX_ARG(OH) : (gq_clx_arg_t)GQ_CLX_ARG(p_),
                            rows ? (gq_clx_arg_t)GQ_CLX_ARG(OW) : (gq_clx_arg_t)GQ_CLX_ARG(KH),
                            rows ? (gq_clx_arg_t)GQ_CLX_ARG(KH) : (gq_clx_arg_t)GQ_CLX_ARG(KW),
                            rows ? (gq_clx_arg_t)GQ_CLX_ARG(KW) : (gq_clx_arg_t)GQ_CLX_ARG(IH),
                            rows ? (gq_clx_arg_t)GQ_CLX_ARG(IH) : (gq_clx_arg_t)GQ_CLX_ARG(IW),
                            rows ? (gq_clx_arg_t)GQ_CLX_ARG(IW) : (gq_clx_arg_t)GQ_CLX_ARG(OW),
                            GQ_CLX_ARG(SH),
                            GQ_CLX_ARG(SW),
                            GQ_CLX_ARG(DH),
                            GQ_CLX_ARG(DW),
                            GQ_CLX_ARG(PH),
                            GQ_CLX_ARG(PW),
                            GQ_CLX_ARG(items)};
        rc = rows ? gq_clx_launch_rows(ps, GQ_CLX_IM2COL_ROWS, a, (int)(sizeof a / sizeof a[0]),
                                       (size_t)items, err, errlen)
                  : gq_clx_launch_ew(ps, GQ_CLX_IM2COL, a, (int)(sizeof a / sizeof a[0]),
                                     (size_t)items, err, errlen);
        g.B = col->m;
        g.bmod = nb * G;
        g.coff = n0 * M * P;
        g.batch = (size_t)(nb * G);
        if (!rc)
            rc = s_gemm(ps, &g, err, errlen);
    }
    gq_clx_unref(ps, col);
    return rc;
}

/* Pool w of x into y (n elements); inc_pad: AveragePool's count_include_pad. */
static gq_status s_run_pool(gq_clx_plan_t *ps, bool avg, bool inc_pad, const gq_onnx_claim_win_t *w,
                            cl_mem x, cl_mem y, size_t n, char *err, size_t errlen)
{
    cl_int kind = avg, inc = inc_pad;
    const int64_t v[14] = {w->ih, w->iw, w->kh, w->kw,  w->sh,  w->sw, w->dh,
                           w->dw, w->ph, w->pw, w->phe, w->pwe, w->oh, w->ow};
    cl_int g[14];
    for (int i = 0; i < 14; i++)
        g[i] = (cl_int)v[i];
    cl_ulong nn = n;
    /* kernel order: IH, IW, OH, OW, KH, KW, SH, SW, DH, DW, PH, PW, PHe, PWe */
    gq_clx_arg_t a[] = {GQ_CLX_ARG(x),     GQ_CLX_ARG(y),     GQ_CLX_ARG(kind),  GQ_CLX_ARG(inc),
                        GQ_CLX_ARG(g[0]),  GQ_CLX_ARG(g[1]),  GQ_CLX_ARG(g[12]), GQ_CLX_ARG(g[13]),
                        GQ_CLX_ARG(g[2]),  GQ_CLX_ARG(g[3]),  GQ_CLX_ARG(g[4]),  GQ_CLX_ARG(g[5]),
                        GQ_CLX_ARG(g[6]),  GQ_CLX_ARG(g[7]),  GQ_CLX_ARG(g[8]),  GQ_CLX_ARG(g[9]),
                        GQ_CLX_ARG(g[10]), GQ_CLX_ARG(g[11]), GQ_CLX_ARG(nn)};
    if (gq_clx_rows(ps->ax)) { /* a work-item per row of the output: planes x OH */
        a[18].value = &nn;
        nn = n / (cl_ulong)g[13];
        return gq_clx_launch_rows(ps, GQ_CLX_POOL_ROWS, a, (int)(sizeof a / sizeof a[0]),
                                  (size_t)nn, err, errlen);
    }
    return gq_clx_launch_ew(ps, GQ_CLX_POOL, a, (int)(sizeof a / sizeof a[0]), n, err, errlen);
}

gq_status gq_clx_run(gq_clx_plan_t *ps, int k, gq_onnx_val_t *const *in, int nin,
                     gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    const gq_clx_claim_t *c = &ps->cur;
    const gq_clx_entry_t *e = &gq_clx_table[c->op];
    if (c->op != ps->stepop[k]) {
        gq_errf(err, errlen, "opencl: step %d runs without its claim", k);
        return GQ_EINVAL;
    }
    for (int i = 0; i < nin; i++)
        if (in[i] && !in[i]->dev) {
            gq_errf(err, errlen, "opencl: input %d is not on the device", i);
            return GQ_EINVAL;
        }
    (void)nout;
    if (e->kind >= GQ_CLX_K_RESHAPE && e->kind <= GQ_CLX_K_DROPOUT) {
        gq_clx_buf_t *b = in[0]->dev;
        if (!b->konst)
            b->refs++;
        out[0] = (gq_onnx_val_t){
            .desc = c->od[0], .nbytes = gq_tdesc_nbytes(&c->od[0]), .dev = b, .dev_only = true};
        return GQ_OK;
    }
    gq_status rc = s_out(ps, &c->od[0], &out[0], err, errlen);
    if (rc)
        return rc;
    cl_mem y = s_mem(&out[0]), x = s_mem(in[0]);
    cl_ulong n = (cl_ulong)gq_tdesc_numel(&c->od[0]);
    switch (e->kind) {
    case GQ_CLX_K_UNARY: {
        cl_float p0 = c->f[0], p1 = c->f[1];
        gq_clx_arg_t a[] = {GQ_CLX_ARG(x), GQ_CLX_ARG(y), GQ_CLX_ARG(p0), GQ_CLX_ARG(p1),
                            GQ_CLX_ARG(n)};
        rc = gq_clx_launch_ew(ps, e->kid, a, 5, n, err, errlen);
        break;
    }
    case GQ_CLX_K_BINARY: {
        cl_mem b = s_mem(in[1]);
        if (c->v[25]) {
            gq_clx_arg_t a[] = {GQ_CLX_ARG(x), GQ_CLX_ARG(b), GQ_CLX_ARG(y), GQ_CLX_ARG(n)};
            rc = gq_clx_launch_ew(ps, e->kid, a, 4, n, err, errlen);
            break;
        }
        cl_int nd = c->bp.nd;
        cl_long8 sh, sa, sb;
        for (int i = 0; i < 8; i++)
            sh.s[i] = c->bp.sh[i], sa.s[i] = c->bp.s0[i], sb.s[i] = c->bp.s1[i];
        gq_clx_arg_t a[] = {GQ_CLX_ARG(x),  GQ_CLX_ARG(b),  GQ_CLX_ARG(y),  GQ_CLX_ARG(nd),
                            GQ_CLX_ARG(sh), GQ_CLX_ARG(sa), GQ_CLX_ARG(sb), GQ_CLX_ARG(n)};
        rc = gq_clx_launch_ew(ps, e->kid + 1, a, 8, n, err, errlen);
        break;
    }
    case GQ_CLX_K_MATMUL:
    case GQ_CLX_K_MATMUL_ADD:
        rc = s_run_matmul(ps, e->kind == GQ_CLX_K_MATMUL_ADD && c->v[41], in, y, err, errlen);
        break;
    case GQ_CLX_K_GEMM:
    case GQ_CLX_K_GEMM_ACT:
        rc = s_run_gemm(ps, k, in, y, err, errlen);
        break;
    case GQ_CLX_K_CONV:
    case GQ_CLX_K_CONV_RELU:
    case GQ_CLX_K_CONV_ACT:
        rc = s_run_conv(ps, in, nin < 3 ? nin : 3, y, err, errlen);
        break;
    case GQ_CLX_K_MAXPOOL:
    case GQ_CLX_K_AVGPOOL:
        rc = s_run_pool(ps, e->kind == GQ_CLX_K_AVGPOOL, c->v[0], &c->w, x, y, n, err, errlen);
        break;
    case GQ_CLX_K_CONV_POOL: { /* the conv's output in a run buffer, pooled into y */
        const gq_onnx_claim_win_t *w = &c->w;
        gq_clx_buf_t *t = NULL;
        rc = gq_clx_alloc(ps, (size_t)(c->v[0] * c->v[2] * w->oh * w->ow) * sizeof(float), &t, err,
                          errlen);
        if (!rc)
            rc = s_run_conv(ps, in, nin < 3 ? nin : 3, t->m, err, errlen);
        if (!rc)
            rc = s_run_pool(ps, false, false, &c->pool, t->m, y, n, err, errlen);
        if (t)
            gq_clx_unref(ps, t); /* reused only by later commands of the same queue */
        break;
    }
    case GQ_CLX_K_GMAXPOOL:
    case GQ_CLX_K_GAVGPOOL: {
        cl_int kind = e->kind == GQ_CLX_K_GAVGPOOL;
        cl_long sz = c->v[1];
        cl_ulong planes = (cl_ulong)c->v[0];
        gq_clx_arg_t a[] = {GQ_CLX_ARG(x), GQ_CLX_ARG(y), GQ_CLX_ARG(kind), GQ_CLX_ARG(sz),
                            GQ_CLX_ARG(planes)};
        rc = gq_clx_launch_rows(ps, GQ_CLX_GLOBAL_POOL, a, 5, planes, err, errlen);
        break;
    }
    case GQ_CLX_K_BATCHNORM: {
        cl_mem sc = s_mem(in[1]), bi = s_mem(in[2]), mu = s_mem(in[3]), var = s_mem(in[4]);
        cl_float eps = c->f[0];
        cl_int sz = (cl_int)c->v[0], C = (cl_int)c->v[1];
        gq_clx_arg_t a[] = {GQ_CLX_ARG(x),  GQ_CLX_ARG(y),   GQ_CLX_ARG(sc),  GQ_CLX_ARG(bi),
                            GQ_CLX_ARG(mu), GQ_CLX_ARG(var), GQ_CLX_ARG(eps), GQ_CLX_ARG(sz),
                            GQ_CLX_ARG(C),  GQ_CLX_ARG(n)};
        rc = gq_clx_launch_ew(ps, GQ_CLX_BATCHNORM, a, 10, n, err, errlen);
        break;
    }
    case GQ_CLX_K_SOFTMAX:
    case GQ_CLX_K_LOGSOFTMAX: {
        cl_int len = (cl_int)c->v[1], inner = (cl_int)c->v[2],
               logf = e->kind == GQ_CLX_K_LOGSOFTMAX;
        cl_ulong rows = (cl_ulong)c->v[0];
        gq_clx_arg_t a[] = {GQ_CLX_ARG(x),     GQ_CLX_ARG(y),    GQ_CLX_ARG(len),
                            GQ_CLX_ARG(inner), GQ_CLX_ARG(logf), GQ_CLX_ARG(rows)};
        rc = gq_clx_launch_rows(ps, GQ_CLX_SOFTMAX, a, 6, rows, err, errlen);
        break;
    }
    case GQ_CLX_K_TRANSPOSE:
        rc = s_strided(ps, x, y, &c->bp, n, err, errlen);
        break;
    default:
        gq_errf(err, errlen, "opencl: op %s has no launch", e->op);
        rc = GQ_EINVAL;
        break;
    }
    if (rc) {
        gq_clx_unref(ps, out[0].dev);
        out[0].dev = NULL;
        out[0].dev_only = false;
    }
    return rc;
}
