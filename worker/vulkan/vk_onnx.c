/* The Vulkan accelerator of the ONNX executor (onnx_accel.h): f32 MatMul and Gemm on the
 * backend's SGEMM (vk_sgemm.c), every other step declined (fused kernels too) and run on the
 * CPU.
 *
 * Like OpenCL's (worker/opencl/cl_onnx.c) it runs beside the backend, values staying on the
 * device between claimed steps. Buffers come from the backend's pool (be->ops->alloc): run
 * buffers go to the run's free list when no value holds them, are reused by later steps of
 * the run (the calling thread's stream runs its commands in order, and a transfer waits for
 * them) and go back to the pool when the run finishes; constants are uploaded once and kept
 * by the plan until it is freed, so plans must be freed before the backend (the worker does
 * so). MatMul: 1-D operands as the CPU promotes them, batch dims when at most one side
 * broadcasts (one SGEMM per batch, or one over all rows when B is shared). Gemm: transA,
 * transB, alpha, beta, and a bias C broadcast to [M, N] written into the output before the
 * SGEMM accumulates onto it (beta C); C is expanded on the host. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "gq_vulkan.h"
#include "onnx_accel.h"
#include "onnx_plan.h"
#include "util.h"

#define S_INT_MAX ((int64_t)0x7fffffff) /* the SGEMM's sizes and offsets */

enum { S_NONE = -1, S_MATMUL, S_GEMM };

/* A device buffer holding a value: a run buffer (refs counts the values that hold it) or a
 * plan constant. */
typedef struct s_buf {
    gq_buffer_t gb;
    size_t cap;
    int refs;
    bool konst;
    struct s_buf *next; /* free or constant list */
} s_buf_t;

typedef struct {
    gq_onnx_accel_t base;
    gq_backend_t *be;
} s_vkx_t;

/* What the claim of the step being run found. */
typedef struct {
    int op;
    int64_t m, n, k, nb; /* nb: batches */
    bool a_all, b_all;   /* A (B) has a matrix per batch; else one shared by all */
    bool ta, tb, bias;
    int64_t lda, ldb;
    float alpha, beta;
    gq_tdesc_t od;
} s_claim_t;

typedef struct {
    s_vkx_t *ax;
    const gq_onnx_plan_t *p;
    s_buf_t **konst; /* per slot: the constant uploaded once */
    int *stepop;     /* per step: S_MATMUL, S_GEMM or S_NONE */
    s_buf_t *consts; /* every constant buffer */
    s_buf_t *free;   /* run buffers no value holds */
    int live;        /* run buffers held by values */
    s_claim_t cur;
} s_plan_t;

static gq_status s_be_fail(gq_backend_t *be, gq_status rc, const char *what, char *err,
                           size_t errlen)
{
    const char *why = be->ops->last_error ? be->ops->last_error(be) : NULL;
    gq_errf(err, errlen, "vulkan: onnx: %s: %s", what, why && *why ? why : gq_strerror(rc));
    return rc;
}

/* ---- buffers ---- */

static gq_status s_alloc(s_plan_t *ps, size_t nbytes, bool konst, s_buf_t **out, char *err,
                         size_t errlen)
{
    size_t want = nbytes < 4 ? 4 : nbytes;
    s_buf_t **best = NULL;
    for (s_buf_t **pp = &ps->free; !konst && *pp; pp = &(*pp)->next)
        if ((*pp)->cap >= want && (*pp)->cap / 2 <= want && (!best || (*pp)->cap < (*best)->cap))
            best = pp;
    if (best) {
        s_buf_t *b = *best;
        *best = b->next;
        b->next = NULL;
        b->refs = 1;
        ps->live++;
        *out = b;
        return GQ_OK;
    }
    s_buf_t *b = calloc(1, sizeof *b);
    if (!b) {
        gq_errf(err, errlen, "vulkan: onnx: out of memory");
        return GQ_ENOMEM;
    }
    gq_backend_t *be = ps->ax->be;
    gq_status rc = be->ops->alloc(be, want, &b->gb);
    if (rc) {
        free(b);
        return s_be_fail(be, rc, konst ? "a constant's buffer" : "a run buffer", err, errlen);
    }
    b->cap = want;
    b->konst = konst;
    if (konst) {
        b->next = ps->consts;
        ps->consts = b;
    } else {
        b->refs = 1;
        ps->live++;
    }
    *out = b;
    return GQ_OK;
}

static void s_unref(s_plan_t *ps, s_buf_t *b)
{
    if (!b || b->konst || --b->refs > 0)
        return;
    ps->live--;
    b->next = ps->free;
    ps->free = b;
}

static void s_free_list(gq_backend_t *be, s_buf_t *b)
{
    for (s_buf_t *nx; b; b = nx) {
        nx = b->next;
        be->ops->free(be, &b->gb);
        free(b);
    }
}

/* ---- claims ---- */

static bool s_f32(const gq_onnx_val_t *v)
{
    if (!v || v->desc.dtype != GQ_F32)
        return false;
    int64_t n = gq_tdesc_numel(&v->desc);
    return n > 0 && n <= S_INT_MAX;
}

/* The op step k runs as: only the ops' own kernels (a fused kernel is declined). */
static int s_step_op(const gq_onnx_plan_t *p, int k)
{
    const gq_onnx_step_t *st = &p->steps[k];
    if (st->branch[0] || !st->k || !st->node || !st->node->op_type)
        return S_NONE;
    const char *op = st->node->op_type;
    if (st->k != gq_onnx_kernel_find(op, p->opset))
        return S_NONE;
    return !strcmp(op, "MatMul") ? S_MATMUL : !strcmp(op, "Gemm") ? S_GEMM : S_NONE;
}

/* MatMul (the CPU's shape rule), batch dims broadcasting on one side at most. */
static bool s_claim_matmul(s_claim_t *c, gq_onnx_val_t *const *in, int nin)
{
    if (nin != 2 || !s_f32(in[0]) || !s_f32(in[1]))
        return false;
    gq_tdesc_t a = in[0]->desc, b = in[1]->desc, ba, bb, bo;
    char e[8];
    if (gq_onnx_matmul_shape(&a, &b, &ba, &bb, &bo, &c->od, e, sizeof e))
        return false;
    int64_t m = a.shape[a.ndim - 2], k = a.shape[a.ndim - 1], n = b.shape[b.ndim - 1];
    int64_t nb = gq_tdesc_numel(&bo), na = gq_tdesc_numel(&ba), nbb = gq_tdesc_numel(&bb);
    if ((na != nb && na != 1) || (nbb != nb && nbb != 1))
        return false;
    c->m = m, c->n = n, c->k = k, c->nb = nb;
    c->a_all = na == nb && nb > 1, c->b_all = nbb == nb && nb > 1;
    c->lda = k, c->ldb = n;
    c->alpha = 1.0f, c->beta = 0.0f;
    int64_t no = gq_tdesc_numel(&c->od);
    return no > 0 && no <= S_INT_MAX;
}

/* Gemm: A and B 2-D, C (optional) broadcasting to [M, N]. */
static bool s_claim_gemm(s_claim_t *c, const Onnx__NodeProto *n, gq_onnx_val_t *const *in, int nin)
{
    if (nin < 2 || !s_f32(in[0]) || !s_f32(in[1]) || in[0]->desc.ndim != 2 || in[1]->desc.ndim != 2)
        return false;
    c->alpha = gq_onnx_attr_float(n, "alpha", 1.0f);
    c->beta = gq_onnx_attr_float(n, "beta", 1.0f);
    c->ta = gq_onnx_attr_int(n, "transA", 0) != 0;
    c->tb = gq_onnx_attr_int(n, "transB", 0) != 0;
    const int64_t *as = in[0]->desc.shape, *bs = in[1]->desc.shape;
    int64_t m = as[c->ta ? 1 : 0], k = as[c->ta ? 0 : 1];
    int64_t kb = bs[c->tb ? 1 : 0], nn = bs[c->tb ? 0 : 1];
    if (k != kb)
        return false;
    c->od = (gq_tdesc_t){.dtype = GQ_F32, .ndim = 2, .shape = {m, nn}};
    c->bias = nin > 2 && in[2] && c->beta != 0.0f;
    if (c->bias) {
        const gq_tdesc_t *cd = &in[2]->desc;
        gq_tdesc_t bd;
        char e[8];
        if (!s_f32(in[2]) || cd->ndim > 2 || gq_onnx_broadcast(cd, &c->od, &bd, e, sizeof e) ||
            bd.ndim != 2 || bd.shape[0] != m || bd.shape[1] != nn)
            return false;
    }
    c->m = m, c->n = nn, c->k = k, c->nb = 1;
    c->lda = as[1], c->ldb = bs[1];
    return m * nn > 0 && m * nn <= S_INT_MAX;
}

/* ---- runs ---- */

static gq_status s_sgemm(s_plan_t *ps, const gq_vk_gemm_t *g, const s_buf_t *a, const s_buf_t *b,
                         s_buf_t *y, char *err, size_t errlen)
{
    return gq_vk_sgemm(ps->ax->be, g, &a->gb, &b->gb, &y->gb, err, errlen);
}

static gq_status s_run_matmul(s_plan_t *ps, const s_claim_t *c, gq_onnx_val_t *const *in,
                              s_buf_t *y, char *err, size_t errlen)
{
    gq_vk_gemm_t g = {.m = (int)c->m,
                      .n = (int)c->n,
                      .k = (int)c->k,
                      .alpha = 1.0f,
                      .lda = (int)c->lda,
                      .ldb = (int)c->ldb,
                      .ldc = (int)c->n};
    if (!c->b_all) { /* one B: every batch of A as rows of one multiply */
        g.m = (int)(c->m * (c->a_all ? c->nb : 1));
        return s_sgemm(ps, &g, in[0]->dev, in[1]->dev, y, err, errlen);
    }
    for (int64_t i = 0; i < c->nb; i++) {
        g.a_off = (size_t)((c->a_all ? i : 0) * c->m * c->k);
        g.b_off = (size_t)(i * c->k * c->n);
        g.c_off = (size_t)(i * c->m * c->n);
        gq_status rc = s_sgemm(ps, &g, in[0]->dev, in[1]->dev, y, err, errlen);
        if (rc)
            return rc;
    }
    return GQ_OK;
}

/* Gemm's C broadcast to [M, N], uploaded into y (the SGEMM then adds alpha A B to beta y). */
static gq_status s_bias(s_plan_t *ps, const s_claim_t *c, const gq_onnx_val_t *cv, s_buf_t *y,
                        char *err, size_t errlen)
{
    gq_backend_t *be = ps->ax->be;
    const gq_tdesc_t *cd = &cv->desc;
    int64_t cm = cd->ndim == 2 ? cd->shape[0] : 1, cn = cd->ndim ? cd->shape[cd->ndim - 1] : 1;
    size_t mn = (size_t)(c->m * c->n), cnum = (size_t)(cm * cn);
    float *full = malloc(mn * sizeof *full), *src = NULL;
    if (!full || (cv->dev_only && !(src = malloc(cnum * sizeof *src)))) {
        free(full);
        gq_errf(err, errlen, "vulkan: onnx: Gemm: out of memory for the bias");
        return GQ_ENOMEM;
    }
    gq_status rc = GQ_OK;
    if (cv->dev_only) {
        const s_buf_t *cb = cv->dev;
        if ((rc = be->ops->download(be, src, &cb->gb, cnum * sizeof *src)))
            s_be_fail(be, rc, "Gemm: reading the bias", err, errlen);
    }
    const float *cs = cv->dev_only ? src : cv->data;
    for (int64_t i = 0; i < c->m && !rc; i++)
        for (int64_t j = 0; j < c->n; j++)
            full[i * c->n + j] = cs[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
    if (!rc && (rc = be->ops->upload(be, &y->gb, full, mn * sizeof *full)))
        s_be_fail(be, rc, "Gemm: writing the bias", err, errlen);
    free(full);
    free(src);
    return rc;
}

static gq_status s_run_gemm(s_plan_t *ps, const s_claim_t *c, gq_onnx_val_t *const *in, s_buf_t *y,
                            char *err, size_t errlen)
{
    gq_status rc = c->bias ? s_bias(ps, c, in[2], y, err, errlen) : GQ_OK;
    if (rc)
        return rc;
    gq_vk_gemm_t g = {.ta = c->ta,
                      .tb = c->tb,
                      .m = (int)c->m,
                      .n = (int)c->n,
                      .k = (int)c->k,
                      .alpha = c->alpha,
                      .beta = c->bias ? c->beta : 0.0f,
                      .lda = (int)c->lda,
                      .ldb = (int)c->ldb,
                      .ldc = (int)c->n};
    return s_sgemm(ps, &g, in[0]->dev, in[1]->dev, y, err, errlen);
}

/* ---- the accelerator's ops ---- */

static void s_plan_free(gq_onnx_accel_t *base, void *state)
{
    (void)base;
    s_plan_t *ps = state;
    if (!ps)
        return;
    s_free_list(ps->ax->be, ps->free); /* none after a finished run */
    s_free_list(ps->ax->be, ps->consts);
    free(ps->konst);
    free(ps->stepop);
    free(ps);
}

static void *s_plan_new(gq_onnx_accel_t *base, const gq_onnx_plan_t *p, char *err, size_t errlen)
{
    s_plan_t *ps = calloc(1, sizeof *ps);
    if (!ps || !(ps->konst = calloc((size_t)p->nslots + 1, sizeof *ps->konst)) ||
        !(ps->stepop = calloc((size_t)p->nsteps + 1, sizeof *ps->stepop))) {
        if (ps)
            free(ps->konst);
        free(ps);
        gq_errf(err, errlen, "vulkan: onnx: out of memory for the plan's state");
        return NULL;
    }
    ps->ax = base->impl;
    ps->p = p;
    for (int k = 0; k < p->nsteps; k++)
        ps->stepop[k] = s_step_op(p, k);
    return ps;
}

static bool s_claim(void *state, int k, gq_onnx_val_t *const *in, int nin, gq_tdesc_t *out_desc,
                    int nout)
{
    s_plan_t *ps = state;
    s_claim_t *c = &ps->cur;
    if (k < 0 || k >= ps->p->nsteps || ps->stepop[k] == S_NONE || nout != 1)
        return false;
    memset(c, 0, sizeof *c);
    c->op = ps->stepop[k];
    bool ok = c->op == S_MATMUL ? s_claim_matmul(c, in, nin)
                                : s_claim_gemm(c, ps->p->steps[k].node, in, nin);
    if (!ok || c->m > S_INT_MAX || c->n > S_INT_MAX || c->k > S_INT_MAX)
        return false;
    out_desc[0] = c->od;
    return true;
}

static gq_status s_run(void *state, int k, gq_onnx_val_t *const *in, int nin, gq_onnx_val_t *out,
                       int nout, char *err, size_t errlen)
{
    s_plan_t *ps = state;
    const s_claim_t *c = &ps->cur;
    if (k < 0 || k >= ps->p->nsteps || c->op != ps->stepop[k] || nout < 1) {
        gq_errf(err, errlen, "vulkan: onnx: step %d runs without its claim", k);
        return GQ_EINVAL;
    }
    for (int i = 0; i < nin; i++)
        if (in[i] && !in[i]->dev) {
            gq_errf(err, errlen, "vulkan: onnx: input %d is not on the device", i);
            return GQ_EINVAL;
        }
    size_t nbytes = gq_tdesc_nbytes(&c->od);
    s_buf_t *y = NULL;
    gq_status rc = s_alloc(ps, nbytes, false, &y, err, errlen);
    if (rc)
        return rc;
    rc = c->op == S_MATMUL ? s_run_matmul(ps, c, in, y, err, errlen)
                           : s_run_gemm(ps, c, in, y, err, errlen);
    if (rc) {
        s_unref(ps, y);
        return rc;
    }
    out[0] = (gq_onnx_val_t){.desc = c->od, .nbytes = nbytes, .dev = y, .dev_only = true};
    return GQ_OK;
}

static gq_status s_upload(void *state, int sl, gq_onnx_val_t *v, bool constant, char *err,
                          size_t errlen)
{
    s_plan_t *ps = state;
    gq_backend_t *be = ps->ax->be;
    bool keep = constant && sl >= 0 && sl < ps->p->nslots;
    if (keep && ps->konst[sl]) {
        v->dev = ps->konst[sl];
        return GQ_OK;
    }
    s_buf_t *b = NULL;
    gq_status rc = s_alloc(ps, v->nbytes, keep, &b, err, errlen);
    if (rc)
        return rc;
    if (v->nbytes && (rc = be->ops->upload(be, &b->gb, v->data, v->nbytes))) {
        s_unref(ps, b); /* a constant's stays on the list, freed with the plan */
        return s_be_fail(be, rc, "uploading a value", err, errlen);
    }
    if (keep)
        ps->konst[sl] = b;
    v->dev = b;
    return GQ_OK;
}

static gq_status s_download(void *state, const gq_onnx_val_t *v, void *dst, char *err,
                            size_t errlen)
{
    s_plan_t *ps = state;
    gq_backend_t *be = ps->ax->be;
    const s_buf_t *b = v->dev;
    if (!b || b->cap < v->nbytes) {
        gq_errf(err, errlen,
                "vulkan: onnx: a value of %zu bytes has no device buffer that holds it", v->nbytes);
        return GQ_EINVAL;
    }
    if (!v->nbytes)
        return GQ_OK;
    gq_status rc = be->ops->download(be, dst, &b->gb, v->nbytes);
    return rc ? s_be_fail(be, rc, "downloading a value", err, errlen) : GQ_OK;
}

static void s_release(void *state, void *dev)
{
    s_unref(state, dev);
}

static gq_status s_sync(void *state, char *err, size_t errlen)
{
    s_plan_t *ps = state;
    gq_backend_t *be = ps->ax->be;
    gq_status rc = be->ops->sync(be);
    return rc ? s_be_fail(be, rc, "waiting for the device", err, errlen) : GQ_OK;
}

static gq_status s_finish(void *state, char *err, size_t errlen)
{
    s_plan_t *ps = state;
    gq_status rc = s_sync(state, err, errlen);
    if (ps->live)
        GQ_WARN("vulkan: onnx: %d device buffers still held at the end of a run", ps->live);
    s_free_list(ps->ax->be, ps->free);
    ps->free = NULL;
    return rc;
}

static void s_destroy(gq_onnx_accel_t *base)
{
    free(base->impl);
}

static const gq_onnx_accel_ops_t s_ops = {
    .name = "vulkan",
    .plan_new = s_plan_new,
    .plan_free = s_plan_free,
    .claim = s_claim,
    .run = s_run,
    .upload = s_upload,
    .download = s_download,
    .release = s_release,
    .finish = s_finish,
    .sync = s_sync,
    .destroy = s_destroy,
};

gq_onnx_accel_t *gq_onnx_accel_vulkan_new(struct gq_backend *be, char *err, size_t errlen)
{
    gq_vk_stats_t st;
    if (!be || !be->ops || strcmp(be->ops->name, "vulkan") || !be->impl ||
        gq_backend_vulkan_stats(be, &st) != GQ_OK) {
        gq_errf(err, errlen, "onnx: the Vulkan accelerator needs a vulkan backend");
        return NULL;
    }
    s_vkx_t *ax = calloc(1, sizeof *ax);
    if (!ax) {
        gq_errf(err, errlen, "vulkan: onnx: out of memory");
        return NULL;
    }
    ax->base.ops = &s_ops;
    ax->base.impl = ax;
    ax->be = be;
    return &ax->base;
}
