/* Dispatches of the ONNX steps the Vulkan accelerator claimed (vk_onnx_claim.c; shaders
 * shaders/onnx_*.comp): GEMMs (MatMul, Gemm, convs as im2col + GEMM batched over images and
 * groups, bias and epilogue in the GEMM's store), depthwise convs directly, windowed and
 * elementwise shaders with an invocation per output element, and reshape-like steps as
 * aliases of their input's buffer (no copy). Each step is recorded on the calling thread's
 * stream after the steps before it, with a barrier before each command, and left there:
 * the run's claimed steps go to the device in one submission when the host needs a value
 * (vk_onnx.c). The stream runs in order, so later steps (and the run's reused buffers) see
 * its results. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "vk_onnx.h"

#define S_COL_BYTES ((size_t)64 << 20) /* im2col scratch per chunk of images */
#define S_MAX_GY 65535u                /* maxComputeWorkGroupCount[1]'s guaranteed minimum */

static gq_vk_mem_t *s_mem(const gq_onnx_val_t *v)
{
    return ((const gq_vkx_buf_t *)v->dev)->gb.handle;
}

/* An elementwise dispatch over items invocations (grid stride), spec {local, op, bcast}. */
static gq_status s_ew(gq_vkx_plan_t *ps, gq_vk_stream_t *st, const char *shader, int op, int bcast,
                      gq_vk_mem_t *const *bufs, int nbufs, const void *push, uint32_t psize,
                      uint64_t items, const char *opn, char *err, size_t errlen)
{
    gq_vk_t *vk = ps->ax->vk;
    uint32_t local = gq_vk_caps(vk)->local;
    int32_t spec[] = {(int32_t)local, op, bcast};
    return gq_vk_dispatch(vk, st, shader, spec, 3, bufs, nbufs, push, psize,
                          gq_vk_groups(vk, items, local), 1, opn, err, errlen);
}

/* Push constants of onnx_gemm.comp. */
typedef struct {
    uint32_t m, n, k, ars, acs, brs, bcs, ldc;
    uint32_t amod, abs_, bmod, bbs, cbs, coff;
    uint32_t bsm, bsn, biasmod, biasbs, mtiles, b0;
    int32_t has_bias, act;
    float alpha, beta, acta, actb;
} s_gemm_push_t;

/* C[b] = act(alpha A[b] B[b] + beta bias[b]) over g->nb batches, in dispatches of at most
 * S_MAX_GY row tiles of work-groups. bias NULL: none. */
static gq_status s_gemm(gq_vkx_plan_t *ps, gq_vk_stream_t *st, const gq_vkx_gemm_t *g,
                        gq_vk_mem_t *a, gq_vk_mem_t *b, gq_vk_mem_t *c, gq_vk_mem_t *bias,
                        const char *opn, char *err, size_t errlen)
{
    const gq_vkx_claim_t *cl = &ps->cur;
    const gq_vk_caps_t *caps = gq_vk_caps(ps->ax->vk);
    uint32_t mtiles = (uint32_t)((g->m + 63) / 64), ntiles = (uint32_t)((g->n + 63) / 64);
    uint32_t per = mtiles ? S_MAX_GY / mtiles : 0;
    if (!per || ntiles > caps->max_groups) {
        gq_errf(err, errlen, "%s: vulkan: a %lld x %lld GEMM is past the work-group counts", opn,
                (long long)g->m, (long long)g->n);
        return GQ_EUNSUPPORTED;
    }
    s_gemm_push_t p = {(uint32_t)g->m,
                       (uint32_t)g->n,
                       (uint32_t)g->k,
                       (uint32_t)g->ars,
                       (uint32_t)g->acs,
                       (uint32_t)g->brs,
                       (uint32_t)g->bcs,
                       (uint32_t)g->ldc,
                       (uint32_t)(g->amod ? g->amod : 1),
                       (uint32_t)g->abs_,
                       (uint32_t)(g->bmod ? g->bmod : 1),
                       (uint32_t)g->bbs,
                       (uint32_t)g->cbs,
                       (uint32_t)g->coff,
                       (uint32_t)g->bsm,
                       (uint32_t)g->bsn,
                       (uint32_t)(g->biasmod ? g->biasmod : 1),
                       (uint32_t)g->biasbs,
                       mtiles,
                       0,
                       bias != NULL,
                       cl->act,
                       g->alpha,
                       g->beta,
                       cl->acta,
                       cl->actb};
    /* TA / TB: the load order of a matrix stored transposed */
    int32_t spec[] = {0, g->ars == 1 && g->m > 1, g->brs == 1 && g->k > 1};
    gq_vk_mem_t *bufs[] = {a, b, c, bias ? bias : c};
    gq_status rc = GQ_OK;
    for (int64_t b0 = 0; b0 < g->nb && !rc; b0 += per) {
        int64_t cnt = g->nb - b0 < per ? g->nb - b0 : per;
        p.b0 = (uint32_t)b0;
        rc = gq_vk_dispatch(ps->ax->vk, st, "onnx_gemm", spec, 3, bufs, 4, &p, sizeof p, ntiles,
                            (uint32_t)(mtiles * cnt), opn, err, errlen);
    }
    return rc;
}

/* Push constants of onnx_conv.comp. */
typedef struct {
    int32_t C, M, Cg, Mg, KH, KW, IH, IW, OH, OW, SH, SW, DH, DW, PH, PW;
    int32_t K, P, has_bias, act;
    uint32_t xoff, n;
    float acta, actb;
} s_conv_push_t;

/* Conv: depthwise (one filter per group) directly; otherwise one GEMM per chunk of images,
 * batched over images and groups, on the input itself for 1x1 kernels without stride or
 * padding, else on its im2col columns. */
static gq_status s_conv(gq_vkx_plan_t *ps, gq_vk_stream_t *st, gq_onnx_val_t *const *in,
                        gq_vk_mem_t *y, const char *opn, char *err, size_t errlen)
{
    const gq_vkx_claim_t *c = &ps->cur;
    const gq_onnx_claim_win_t *w = &c->w;
    int64_t Cg = c->C / c->G, Mg = c->M / c->G, K = Cg * w->kh * w->kw, P = w->oh * w->ow;
    gq_vk_mem_t *x = s_mem(in[0]), *wt = s_mem(in[1]), *bias = c->conv_bias ? s_mem(in[2]) : NULL;
    s_conv_push_t p = {(int32_t)c->C,
                       (int32_t)c->M,
                       (int32_t)Cg,
                       (int32_t)Mg,
                       (int32_t)w->kh,
                       (int32_t)w->kw,
                       (int32_t)w->ih,
                       (int32_t)w->iw,
                       (int32_t)w->oh,
                       (int32_t)w->ow,
                       (int32_t)w->sh,
                       (int32_t)w->sw,
                       (int32_t)w->dh,
                       (int32_t)w->dw,
                       (int32_t)w->ph,
                       (int32_t)w->pw,
                       (int32_t)K,
                       (int32_t)P,
                       c->conv_bias,
                       c->act,
                       0,
                       0,
                       c->acta,
                       c->actb};
    if (Mg == 1) {
        uint64_t n = (uint64_t)gq_tdesc_numel(&c->cod);
        p.n = (uint32_t)n;
        gq_vk_mem_t *bufs[] = {x, wt, bias ? bias : y, y};
        return s_ew(ps, st, "onnx_conv_direct", 0, 0, bufs, 4, &p, sizeof p, n, opn, err, errlen);
    }
    gq_vkx_gemm_t g = {.m = Mg,
                       .n = P,
                       .k = K,
                       .ars = K,
                       .acs = 1,
                       .brs = P,
                       .bcs = 1,
                       .ldc = P,
                       .amod = c->G,
                       .abs_ = Mg * K,
                       .bbs = K * P,
                       .cbs = Mg * P,
                       .bsm = 1,
                       .biasmod = c->G,
                       .biasbs = Mg,
                       .alpha = 1.0f,
                       .beta = 1.0f};
    bool direct = w->kh == 1 && w->kw == 1 && w->sh == 1 && w->sw == 1 && w->ph == 0 &&
                  w->pw == 0 && w->phe == 0 && w->pwe == 0;
    if (direct) {
        g.nb = c->N * c->G, g.bmod = g.nb;
        return s_gemm(ps, st, &g, wt, x, y, bias, opn, err, errlen);
    }
    size_t per = (size_t)(c->G * K * P) * sizeof(float);
    size_t cap = S_COL_BYTES < gq_vk_caps(ps->ax->vk)->max_range
                     ? S_COL_BYTES
                     : gq_vk_caps(ps->ax->vk)->max_range;
    if (per > cap) {
        gq_errf(err, errlen, "%s: vulkan: an image's im2col columns (%zu bytes) pass %zu", opn, per,
                cap);
        return GQ_EUNSUPPORTED;
    }
    int64_t chunk = (int64_t)(cap / per);
    chunk = chunk > c->N ? c->N : chunk;
    gq_vkx_buf_t *col;
    gq_status rc = gq_vkx_alloc(ps, per * (size_t)chunk, &col, err, errlen);
    if (rc)
        return rc;
    for (int64_t n0 = 0; n0 < c->N && !rc; n0 += chunk) {
        int64_t nb = c->N - n0 < chunk ? c->N - n0 : chunk;
        uint64_t items = (uint64_t)(nb * c->G * K * P);
        p.xoff = (uint32_t)(n0 * c->C * w->ih * w->iw);
        p.n = (uint32_t)items;
        gq_vk_mem_t *bufs[] = {x, col->gb.handle};
        rc = s_ew(ps, st, "onnx_im2col", 0, 0, bufs, 2, &p, sizeof p, items, opn, err, errlen);
        g.nb = nb * c->G, g.bmod = g.nb, g.coff = n0 * c->M * P;
        if (!rc)
            rc = s_gemm(ps, st, &g, wt, col->gb.handle, y, bias, opn, err, errlen);
    }
    gq_vkx_unref(ps, col); /* reused only by later commands of the same stream */
    return rc;
}

static gq_status s_pool(gq_vkx_plan_t *ps, gq_vk_stream_t *st, bool avg,
                        const gq_onnx_claim_win_t *w, gq_vk_mem_t *x, gq_vk_mem_t *y,
                        const char *opn, char *err, size_t errlen)
{
    const gq_vkx_claim_t *c = &ps->cur;
    uint64_t n = (uint64_t)gq_tdesc_numel(&c->od);
    struct {
        int32_t inc, IH, IW, OH, OW, KH, KW, SH, SW, DH, DW, PH, PW, PHe, PWe;
        uint32_t n;
    } p = {c->inc_pad,     (int32_t)w->ih,  (int32_t)w->iw,  (int32_t)w->oh,
           (int32_t)w->ow, (int32_t)w->kh,  (int32_t)w->kw,  (int32_t)w->sh,
           (int32_t)w->sw, (int32_t)w->dh,  (int32_t)w->dw,  (int32_t)w->ph,
           (int32_t)w->pw, (int32_t)w->phe, (int32_t)w->pwe, (uint32_t)n};
    gq_vk_mem_t *bufs[] = {x, y};
    return s_ew(ps, st, "onnx_pool", avg, 0, bufs, 2, &p, sizeof p, n, opn, err, errlen);
}

/* The step's dispatches (its output y allocated). */
static gq_status s_record(gq_vkx_plan_t *ps, gq_vk_stream_t *st, gq_onnx_val_t *const *in,
                          gq_vk_mem_t *y, const char *opn, char *err, size_t errlen)
{
    const gq_vkx_claim_t *c = &ps->cur;
    const gq_vkx_entry_t *e = &gq_vkx_table[c->op];
    gq_vk_mem_t *x = s_mem(in[0]);
    uint64_t n = (uint64_t)gq_tdesc_numel(&c->od);
    switch (e->kind) {
    case GQ_VKX_K_UNARY: {
        struct {
            uint32_t n;
            float p0, p1;
        } p = {(uint32_t)n, c->p0, c->p1};
        gq_vk_mem_t *bufs[] = {x, y};
        return s_ew(ps, st, "onnx_unary", e->code, 0, bufs, 2, &p, sizeof p, n, opn, err, errlen);
    }
    case GQ_VKX_K_BINARY: {
        struct {
            uint32_t n;
            gq_vkx_bplan_t bp;
        } p = {(uint32_t)n, c->bp};
        gq_vk_mem_t *bufs[] = {x, s_mem(in[1]), y};
        return s_ew(ps, st, "onnx_binary", e->code, !c->flat, bufs, 3, &p, sizeof p, n, opn, err,
                    errlen);
    }
    case GQ_VKX_K_TRANSPOSE: {
        struct {
            uint32_t n, nd, sh[8], s0[8];
        } p = {.n = (uint32_t)n, .nd = c->bp.nd};
        memcpy(p.sh, c->bp.sh, sizeof p.sh);
        memcpy(p.s0, c->bp.s0, sizeof p.s0);
        gq_vk_mem_t *bufs[] = {x, y};
        return s_ew(ps, st, "onnx_strided", 0, 0, bufs, 2, &p, sizeof p, n, opn, err, errlen);
    }
    case GQ_VKX_K_MATMUL:
    case GQ_VKX_K_MATMUL_ADD:
    case GQ_VKX_K_GEMM:
    case GQ_VKX_K_GEMM_ACT:
        return s_gemm(ps, st, &c->g, x, s_mem(in[1]), y, c->g.bias ? s_mem(in[2]) : NULL, opn, err,
                      errlen);
    case GQ_VKX_K_CONV:
    case GQ_VKX_K_CONV_ACT:
        return s_conv(ps, st, in, y, opn, err, errlen);
    case GQ_VKX_K_MAXPOOL:
    case GQ_VKX_K_AVGPOOL:
        return s_pool(ps, st, e->kind == GQ_VKX_K_AVGPOOL, &c->w, x, y, opn, err, errlen);
    case GQ_VKX_K_CONV_POOL: { /* the conv's output in a run buffer, pooled into y */
        gq_vkx_buf_t *t;
        gq_status rc = gq_vkx_alloc(ps, gq_tdesc_nbytes(&c->cod), &t, err, errlen);
        if (rc)
            return rc;
        rc = s_conv(ps, st, in, t->gb.handle, opn, err, errlen);
        if (!rc)
            rc = s_pool(ps, st, false, &c->pool, t->gb.handle, y, opn, err, errlen);
        gq_vkx_unref(ps, t); /* reused only by later commands of the same stream */
        return rc;
    }
    case GQ_VKX_K_GMAXPOOL:
    case GQ_VKX_K_GAVGPOOL: {
        struct {
            uint32_t sz, n;
        } p = {(uint32_t)c->len, (uint32_t)c->rows};
        gq_vk_mem_t *bufs[] = {x, y};
        return s_ew(ps, st, "onnx_gpool", e->kind == GQ_VKX_K_GAVGPOOL, 0, bufs, 2, &p, sizeof p,
                    (uint64_t)c->rows, opn, err, errlen);
    }
    case GQ_VKX_K_BATCHNORM: {
        struct {
            uint32_t n, sz, C;
            float eps;
        } p = {(uint32_t)n, (uint32_t)c->len, (uint32_t)c->inner, c->p0};
        gq_vk_mem_t *bufs[] = {x, y, s_mem(in[1]), s_mem(in[2]), s_mem(in[3]), s_mem(in[4])};
        return s_ew(ps, st, "onnx_batchnorm", 0, 0, bufs, 6, &p, sizeof p, n, opn, err, errlen);
    }
    case GQ_VKX_K_SOFTMAX:
    case GQ_VKX_K_LOGSOFTMAX: {
        struct {
            uint32_t len, inner, rows;
        } p = {(uint32_t)c->len, (uint32_t)c->inner, (uint32_t)c->rows};
        gq_vk_mem_t *bufs[] = {x, y};
        return s_ew(ps, st, "onnx_softmax", e->kind == GQ_VKX_K_LOGSOFTMAX, 0, bufs, 2, &p,
                    sizeof p, (uint64_t)c->rows, opn, err, errlen);
    }
    default:
        gq_errf(err, errlen, "%s: vulkan: no shader", opn);
        return GQ_EINTERNAL;
    }
}

gq_status gq_vkx_run(gq_vkx_plan_t *ps, int k, gq_onnx_val_t *const *in, int nin,
                     gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    const gq_vkx_claim_t *c = &ps->cur;
    const gq_vkx_entry_t *e = &gq_vkx_table[c->op];
    if (c->op != ps->stepop[k] || nout < 1) {
        gq_errf(err, errlen, "vulkan: onnx: step %d runs without its claim", k);
        return GQ_EINVAL;
    }
    for (int i = 0; i < nin; i++)
        if (in[i] && !in[i]->dev) {
            gq_errf(err, errlen, "vulkan: onnx: input %d is not on the device", i);
            return GQ_EINVAL;
        }
    size_t nbytes = gq_tdesc_nbytes(&c->od);
    if (e->kind == GQ_VKX_K_ALIAS) {
        gq_vkx_buf_t *b = in[0]->dev;
        if (!b->konst)
            b->refs++;
        out[0] = (gq_onnx_val_t){.desc = c->od, .nbytes = nbytes, .dev = b, .dev_only = true};
        return GQ_OK;
    }
    gq_vkx_buf_t *y;
    gq_status rc = gq_vkx_alloc(ps, nbytes, &y, err, errlen);
    if (rc)
        return rc;
    char opn[64];
    snprintf(opn, sizeof opn, "onnx.%s", e->op);
    gq_vk_stream_t *st;
    gq_vk_t *vk = ps->ax->vk;
    if (!(rc = gq_vk_run_begin(vk, &st, opn, err, errlen))) {
        if (ps->first < 0)
            ps->first = k;
        ps->last = k;
        rc = s_record(ps, st, in, y->gb.handle, opn, err, errlen);
        rc = gq_vk_run_end(vk, st, rc, false, opn, err, errlen);
    }
    if (rc) {
        gq_vkx_unref(ps, y);
        return rc;
    }
    out[0] = (gq_onnx_val_t){.desc = c->od, .nbytes = nbytes, .dev = y, .dev_only = true};
    return GQ_OK;
}
