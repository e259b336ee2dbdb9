/* Constant folding at plan time, on the walk of shape inference (onnx_infer.c): a step
 * whose inputs are all constants (initializers, Constant nodes, values folded before it)
 * runs once here through its own kernel, and its outputs become plan constants at the same
 * slots, so later steps, If branches and graph outputs read them by name as before. Shape
 * and Size of values whose dims are known, and the integer arithmetic hanging off them
 * (Gather, Concat, Unsqueeze, ...: tracked as values by inference), become constants the
 * same way. Folded steps leave the plan. Only steps whose outputs inference sizes exactly
 * are folded, under a cap per output and per graph, so a hostile ConstantOfShape, Range,
 * Expand or Tile cannot make planning allocate without bound. */
#include <stdlib.h>
#include <string.h>

#include "onnx_infer.h"
#include "optable.h"
#include "util.h"

#define S_FOLD_MAX ((size_t)16 << 20)
#define S_FOLD_TOTAL ((size_t)256 << 20)

typedef struct {
    gq_onnx_plan_t *p;
    bool *folded; /* per step */
    size_t max_bytes, total_bytes, used;
    int first; /* p->fold[first..] are this pass's */
} s_fold_t;

/* Ops whose outputs are not a function of their inputs: never folded. */
static bool s_nondeterministic(const char *op)
{
    static const char *const ops[] = {"RandomNormal",      "RandomUniform", "RandomNormalLike",
                                      "RandomUniformLike", "Multinomial",   "Bernoulli"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!strcmp(op, ops[i]))
            return true;
    return false;
}

/* Makes data (taken over; freed on failure) the plan constant of slot sl. */
static gq_status s_add(gq_onnx_plan_t *p, int sl, const gq_tdesc_t *d, void *data)
{
    gq_onnx_val_t *nf = realloc(p->fold, (size_t)(p->nfold + 1) * sizeof *nf);
    if (nf)
        p->fold = nf;
    int *ns = nf ? realloc(p->fold_slot, (size_t)(p->nfold + 1) * sizeof *ns) : NULL;
    if (ns)
        p->fold_slot = ns;
    char **nn = ns ? realloc(p->fold_name, (size_t)(p->nfold + 1) * sizeof *nn) : NULL;
    if (!nn) {
        free(data);
        return GQ_ENOMEM;
    }
    p->fold_name = nn;
    p->fold[p->nfold] = (gq_onnx_val_t){.desc = *d, .data = data, .nbytes = gq_tdesc_nbytes(d)};
    p->fold_slot[p->nfold] = sl;
    p->fold_name[p->nfold++] = NULL; /* the slot is the node output's own */
    return GQ_OK;
}

/* Runs step k's kernel over its constant inputs; its outputs become constants. A kernel
 * that fails leaves the step to fail at run time, as it would have. */
static gq_status s_run(s_fold_t *f, int k, const gq_onnx_info_t *const *in, gq_onnx_info_t *out,
                       char *err, size_t errlen)
{
    gq_onnx_step_t *st = &f->p->steps[k];
    gq_onnx_val_t *vin = calloc((size_t)st->nin + 1, sizeof *vin);
    gq_onnx_val_t **ins = calloc((size_t)st->nin + 1, sizeof *ins);
    gq_onnx_val_t *outs = calloc((size_t)st->nout + 1, sizeof *outs);
    gq_status rc = GQ_ENOMEM;
    char kerr[GQ_ERRLEN * 2];
    if (!vin || !ins || !outs) {
        gq_errf(err, errlen, "out of memory folding constants");
        goto done;
    }
    for (int i = 0; i < st->nin; i++) {
        if (st->in[i] < 0)
            continue;
        gq_onnx_info_desc(in[i], &vin[i].desc);
        vin[i].data = (void *)in[i]->data;
        vin[i].nbytes = gq_tdesc_nbytes(&vin[i].desc);
        ins[i] = &vin[i];
    }
    gq_onnx_pool_t *prev = gq_onnx_pool_enter(NULL); /* plain allocations: the plan owns them */
    gq_status krc =
        st->k->fn(st->node, f->p->opset, ins, st->nin, outs, st->nout, kerr, sizeof kerr);
    gq_onnx_pool_enter(prev);
    rc = GQ_OK;
    if (krc)
        goto done;
    for (int o = 0; o < st->nout; o++)
        if (!outs[o].desc.dtype)
            goto done; /* an output the kernel does not make */
    for (int o = 0; o < st->nout; o++) {
        gq_tdesc_t want;
        gq_onnx_info_desc(&out[o], &want);
        if (!gq_tdesc_equal(&want, &outs[o].desc)) {
            char a[128], b[128];
            gq_errf(err, errlen,
                    "node '%s' (%s): output %d: shape inference says %s, the kernel made %s",
                    gq_onnx_node_name(st->node), st->node->op_type, o,
                    gq_tdesc_str(&want, a, sizeof a), gq_tdesc_str(&outs[o].desc, b, sizeof b));
            rc = GQ_EINTERNAL;
            goto done;
        }
    }
    for (int o = 0; o < st->nout && !rc; o++) {
        if (st->out[o] < 0)
            continue;
        void *data = outs[o].data;
        if (!outs[o].owned || !data) { /* kernels own what they make; else a copy */
            if ((data = gq_aligned_alloc(64, outs[o].nbytes ? outs[o].nbytes : 64)))
                GQ_ONNX_COPY(data, outs[o].data, outs[o].nbytes);
        }
        outs[o].data = NULL, outs[o].owned = false;
        if (!data || (rc = s_add(f->p, st->out[o], &outs[o].desc, data))) {
            gq_errf(err, errlen, "out of memory folding constants");
            rc = GQ_ENOMEM;
            break;
        }
        gq_onnx_info_const(&out[o], &f->p->fold[f->p->nfold - 1].desc,
                           f->p->fold[f->p->nfold - 1].data);
        f->used += outs[o].nbytes;
    }
    f->folded[k] = !rc;
done:
    for (int o = 0; outs && o < st->nout; o++)
        if (outs[o].owned)
            free(outs[o].data);
    free(vin), free(ins), free(outs);
    return rc;
}

/* Outputs whose every value inference knows (Shape of known dims, arithmetic on it)
 * become constants, and the step goes. */
static gq_status s_materialize(s_fold_t *f, int k, gq_onnx_info_t *out, char *err, size_t errlen)
{
    gq_onnx_step_t *st = &f->p->steps[k];
    size_t nb;
    int live = 0;
    for (int o = 0; o < st->nout; o++) {
        const gq_onnx_info_t *v = &out[o];
        if (st->out[o] < 0)
            continue;
        if (v->nval < 0 || (v->dtype != GQ_I64 && v->dtype != GQ_I32) ||
            !gq_onnx_info_known(v, &nb) || nb != (size_t)v->nval * gq_dtype_size(v->dtype))
            return GQ_OK;
        for (int i = 0; i < v->nval; i++)
            if (v->val[i].sym)
                return GQ_OK;
        live++;
    }
    if (!live)
        return GQ_OK;
    for (int o = 0; o < st->nout; o++) {
        if (st->out[o] < 0)
            continue;
        gq_tdesc_t d;
        gq_onnx_info_desc(&out[o], &d);
        void *data = gq_aligned_alloc(64, 64 + (size_t)out[o].nval * 8);
        gq_status rc = data ? GQ_OK : GQ_ENOMEM;
        for (int i = 0; data && i < out[o].nval; i++)
            gq_onnx_seti(data, d.dtype, i, out[o].val[i].c);
        if (rc || (rc = s_add(f->p, st->out[o], &d, data))) {
            gq_errf(err, errlen, "out of memory folding constants");
            return rc;
        }
        gq_onnx_info_const(&out[o], &d, data);
    }
    f->folded[k] = true;
    return GQ_OK;
}

static gq_status s_hook(void *arg, int k, const gq_onnx_info_t *const *in, gq_onnx_info_t *out,
                        char *err, size_t errlen)
{
    s_fold_t *f = arg;
    const gq_onnx_step_t *st = &f->p->steps[k];
    size_t total = 0, nb;
    if (st->branch[0] || st->nimplicit || s_nondeterministic(st->node->op_type))
        return GQ_OK;
    for (int i = 0; i < st->nin; i++)
        if (st->in[i] >= 0 && !in[i]->data)
            return s_materialize(f, k, out, err, errlen);
    for (int o = 0; o < st->nout; o++) {
        if (!gq_onnx_info_known(&out[o], &nb) || nb > f->max_bytes)
            return GQ_OK;
        total += nb;
    }
    if (total > f->total_bytes - f->used)
        return GQ_OK;
    return s_run(f, k, in, out, err, errlen);
}

/* Whether any step still reads slot sl, or the graph gives it out. */
static bool s_read(const gq_onnx_plan_t *p, int sl)
{
    for (int k = 0; k < p->nsteps; k++)
        for (int i = 0; i < p->steps[k].nin + p->steps[k].nimplicit; i++)
            if (p->steps[k].in[i] == sl)
                return true;
    for (int o = 0; o < p->noutputs; o++)
        if (p->outputs[o] == sl)
            return true;
    return false;
}

/* Marks the steps whose outputs no remaining step reads and the graph does not give out
 * (a Shape whose Gather folded, say) as folded too. */
static void s_dead(s_fold_t *f)
{
    gq_onnx_plan_t *p = f->p;
    bool *need = calloc((size_t)p->nslots + 1, sizeof *need);
    if (!need)
        return; /* they only cost time */
    for (int o = 0; o < p->noutputs; o++)
        if (p->outputs[o] >= 0)
            need[p->outputs[o]] = true;
    for (int k = p->nsteps - 1; k >= 0; k--) {
        const gq_onnx_step_t *st = &p->steps[k];
        bool live = false;
        for (int o = 0; o < st->nout && !f->folded[k]; o++)
            live = live || (st->out[o] >= 0 && need[st->out[o]]);
        f->folded[k] = !live;
        for (int i = 0; live && i < st->nin + st->nimplicit; i++)
            if (st->in[i] >= 0)
                need[st->in[i]] = true;
    }
    free(need);
}

/* Drops the folded steps and those left without readers, then the constants of this pass
 * nothing reads any more (values only folded steps read). */
static void s_prune(s_fold_t *f)
{
    gq_onnx_plan_t *p = f->p;
    int n = 0, nf = f->first;
    s_dead(f);
    for (int k = 0; k < p->nsteps; k++) {
        if (f->folded[k]) {
            free(p->steps[k].in), free(p->steps[k].out);
            for (int b = 0; b < 2; b++) /* a dead If */
                gq_onnx_plan_destroy(&p->steps[k].branch[b]);
            p->nfolded++;
        } else {
            p->steps[n++] = p->steps[k];
        }
    }
    p->nsteps = n;
    for (int i = f->first; i < p->nfold; i++) {
        if (!s_read(p, p->fold_slot[i])) {
            free(p->fold[i].data), free(p->fold_name[i]);
            continue;
        }
        p->fold[nf] = p->fold[i], p->fold_slot[nf] = p->fold_slot[i];
        p->fold_name[nf++] = p->fold_name[i];
    }
    p->nfold = nf;
}

gq_status gq_onnx_plan_infer_fold(gq_onnx_plan_t *p, const gq_onnx_plan_opts_t *opts, char *err,
                                  size_t errlen)
{
    gq_onnx_info_t *info = calloc((size_t)p->nslots + 1, sizeof *info);
    gq_onnx_syms_t *syms = calloc(1, sizeof *syms);
    s_fold_t f = {.p = p,
                  .folded = calloc((size_t)p->nsteps + 1, sizeof *f.folded),
                  .max_bytes = opts && opts->fold_max_bytes ? opts->fold_max_bytes : S_FOLD_MAX,
                  .total_bytes =
                      opts && opts->fold_total_bytes ? opts->fold_total_bytes : S_FOLD_TOTAL,
                  .first = p->nfold};
    gq_status rc = GQ_ENOMEM;
    bool fold = !(opts && opts->no_fold);
    if (!info || !syms || !f.folded) {
        gq_errf(err, errlen, "out of memory inferring shapes");
    } else {
        gq_onnx_bind_t bind = {0};
        rc = gq_onnx_infer(p, NULL, &bind, syms, info, fold ? s_hook : NULL, &f, err, errlen);
        if (!rc)
            s_prune(&f);
    }
    free(f.folded), free(info), free(syms);
    return rc;
}
