/* Runs of a plan: values per slot, freed to the plan's buffer pool after their last
 * reader; If steps run the branch their condition picks as a sub-plan reading outer values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "onnx_plan.h"
#include "optable.h"
#include "util.h"

static uint64_t s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Checks a run input against the graph's declared type: element type, rank, fixed dims. */
static gq_status s_check_input(const Onnx__ValueInfoProto *vi, const gq_tdesc_t *d, char *err,
                               size_t errlen)
{
    if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return GQ_OK;
    const Onnx__TypeProto__Tensor *tt = vi->type->tensor_type;
    char buf[96];
    if (tt->has_elem_type && gq_onnx_dtype(tt->elem_type) != d->dtype) {
        gq_errf(err, errlen, "input '%s' is %s, the model wants %s", vi->name,
                gq_tdesc_str(d, buf, sizeof buf), gq_onnx_type_name(tt->elem_type));
        return GQ_EDTYPE;
    }
    if (!tt->shape)
        return GQ_OK;
    if ((int)tt->shape->n_dim != d->ndim) {
        gq_errf(err, errlen, "input '%s' is %s, the model wants rank %zu", vi->name,
                gq_tdesc_str(d, buf, sizeof buf), tt->shape->n_dim);
        return GQ_ESHAPE;
    }
    for (int i = 0; i < d->ndim; i++) {
        const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[i];
        if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
            dim->dim_value != d->shape[i]) {
            gq_errf(err, errlen, "input '%s' is %s, the model wants dim %d = %lld", vi->name,
                    gq_tdesc_str(d, buf, sizeof buf), i, (long long)dim->dim_value);
            return GQ_ESHAPE;
        }
    }
    return GQ_OK;
}

/* Gives an owned value's buffer back (to the pool when it came from one). */
static void s_release(gq_onnx_val_t *v)
{
    if (v->owned)
        gq_onnx_scratch_free(v->data, v->cap);
    v->data = NULL;
    v->owned = false;
}

gq_status gq_onnx_val_alloc(gq_onnx_val_t *v, char *err, size_t errlen)
{
    size_t nbytes = 0;
    if (gq_tdesc_check(&v->desc, NULL, &nbytes) != GQ_OK) {
        gq_errf(err, errlen, "output shape is invalid or too large");
        return GQ_ESHAPE;
    }
    v->data = gq_onnx_scratch(nbytes, &v->cap);
    if (!v->data) {
        gq_errf(err, errlen, "out of memory for %zu bytes", nbytes);
        return GQ_ENOMEM;
    }
    v->nbytes = nbytes;
    v->owned = true;
    return GQ_OK;
}

/* The values of one run of a plan, per slot. */
typedef struct {
    gq_onnx_val_t *vals;
    bool *set;
} s_env_t;

/* Makes the slots of a run of p, initializers filled in (borrowed, not owned). */
static gq_status s_env_new(const gq_onnx_plan_t *p, s_env_t *e, char *err, size_t errlen)
{
    e->vals = calloc((size_t)p->nslots + 1, sizeof *e->vals);
    e->set = calloc((size_t)p->nslots + 1, sizeof *e->set);
    if (!e->vals || !e->set) {
        free(e->vals), free(e->set);
        gq_errf(err, errlen, "out of memory");
        return GQ_ENOMEM;
    }
    for (int i = 0; i < p->ninit; i++) {
        gq_onnx_val_t *v = &e->vals[p->init_slot[i]];
        if (p->sub_init) {
            *v = p->sub_init[i];
        } else {
            const gq_onnx_tensor_t *t = gq_onnx_model_tensor(p->model, i);
            v->desc = t->desc, v->data = (void *)t->data, v->nbytes = t->nbytes;
        }
        v->owned = false;
        e->set[p->init_slot[i]] = true;
    }
    for (int i = 0; i < p->nfold; i++) {
        e->vals[p->fold_slot[i]] = p->fold[i];
        e->vals[p->fold_slot[i]].owned = false;
        e->set[p->fold_slot[i]] = true;
    }
    return GQ_OK;
}

static void s_env_free(const gq_onnx_plan_t *p, s_env_t *e)
{
    for (int s = 0; e->vals && s < p->nslots; s++)
        s_release(&e->vals[s]);
    free(e->vals), free(e->set);
}

static gq_status s_run_steps(gq_onnx_plan_t *p, s_env_t *e, char *err, size_t errlen);

/* Runs the branch of If step st that its condition picks; outs get the branch outputs
 * (moved when the branch owns them, copied otherwise). */
static gq_status s_run_if(const gq_onnx_plan_t *p, const gq_onnx_step_t *st, const s_env_t *e,
                          gq_onnx_val_t *const *in, gq_onnx_val_t *outs, char *err, size_t errlen)
{
    if (!in[0] || gq_tdesc_numel(&in[0]->desc) != 1 || !gq_onnx_dtype_real(in[0]->desc.dtype)) {
        gq_errf(err, errlen, "the condition must be one bool");
        return GQ_ESHAPE;
    }
    gq_onnx_plan_t *b = st->branch[gq_onnx_getd(in[0]->data, in[0]->desc.dtype, 0) != 0 ? 0 : 1];
    s_env_t be;
    gq_status rc;
    if (b->noutputs != st->nout) {
        gq_errf(err, errlen, "the branch gives %d outputs, the node has %d", b->noutputs, st->nout);
        return GQ_EFORMAT;
    }
    if ((rc = s_env_new(b, &be, err, errlen)))
        return rc;
    for (int i = 0; i < b->nouter && !rc; i++) { /* outer values, borrowed */
        int os = b->outer[i], ps = gq_onnx_plan_slot((gq_onnx_plan_t *)p, b->names[os], false);
        if (ps < 0 || !e->set[ps]) {
            gq_errf(err, errlen, "the branch reads '%s', which has no value", b->names[os]);
            rc = GQ_EFORMAT;
            break;
        }
        be.vals[os] = e->vals[ps];
        be.vals[os].owned = false;
        be.set[os] = true;
    }
    if (!rc)
        rc = s_run_steps(b, &be, err, errlen);
    for (int o = 0; o < b->noutputs && !rc; o++) {
        gq_onnx_val_t *v = b->outputs[o] >= 0 ? &be.vals[b->outputs[o]] : NULL;
        if (!v || !be.set[b->outputs[o]]) {
            gq_errf(err, errlen, "branch output %d has no value", o);
            rc = GQ_EFORMAT;
        } else if (v->owned) {
            outs[o] = *v;
            v->owned = false;
        } else if (!(rc = gq_onnx_out(&outs[o], &v->desc, err, errlen))) {
            GQ_ONNX_COPY(outs[o].data, v->data, v->nbytes);
        }
    }
    s_env_free(b, &be);
    return rc;
}

/* Runs step k of p over e: gathers its inputs, calls its kernel (or its If branch), stores
 * its outputs, and gives back the buffers no later step reads. */
static gq_status s_run_step(gq_onnx_plan_t *p, int k, s_env_t *e, char *err, size_t errlen)
{
    gq_onnx_step_t *st = &p->steps[k];
    gq_onnx_val_t *ins[GQ_MAX_INPUTS * 4];
    gq_onnx_val_t outs[GQ_MAX_OUTPUTS];
    const char *nn = gq_onnx_node_name(st->node);
    if (st->nin > (int)(sizeof ins / sizeof ins[0]) || st->nout > GQ_MAX_OUTPUTS) {
        gq_errf(err, errlen, "node '%s' (%s): %d inputs / %d outputs is over the limits", nn,
                st->node->op_type, st->nin, st->nout);
        return GQ_ETOOBIG;
    }
    for (int i = 0; i < st->nin; i++) {
        int s = st->in[i];
        ins[i] = s >= 0 && e->set[s] ? &e->vals[s] : NULL;
        if (s >= 0 && !e->set[s]) {
            gq_errf(err, errlen, "node '%s' (%s): input '%s' has no value", nn, st->node->op_type,
                    p->names[s]);
            return GQ_EFORMAT;
        }
    }
    memset(outs, 0, sizeof outs);
    char kerr[GQ_ERRLEN * 2];
    kerr[0] = '\0';
    uint64_t t0 = p->profile ? s_now_ns() : 0;
    gq_status rc = st->branch[0] ? s_run_if(p, st, e, ins, outs, kerr, sizeof kerr)
                                 : st->k->fn(st->node, p->opset, ins, st->nin, outs, st->nout, kerr,
                                             sizeof kerr);
    if (p->profile)
        st->ns += s_now_ns() - t0, st->runs++;
    if (rc) {
        gq_errf(err, errlen, "node '%s' (%s): %s", nn, st->node->op_type, kerr);
        for (int o = 0; o < st->nout; o++)
            s_release(&outs[o]);
        return rc;
    }
    for (int o = 0; o < st->nout; o++) {
        int s = st->out[o];
        if (s < 0 || p->last_use[s] < 0) { /* an output nothing reads */
            s_release(&outs[o]);
            if (s < 0)
                continue;
        }
        e->vals[s] = outs[o];
        e->set[s] = true;
    }
    for (int i = 0; i < st->nin + st->nimplicit; i++)
        if (st->in[i] >= 0 && p->last_use[st->in[i]] == k)
            s_release(&e->vals[st->in[i]]);
    return GQ_OK;
}

static gq_status s_run_steps(gq_onnx_plan_t *p, s_env_t *e, char *err, size_t errlen)
{
    gq_status rc = GQ_OK;
    for (int k = 0; k < p->nsteps && !rc; k++)
        rc = s_run_step(p, k, e, err, errlen);
    return rc;
}

/* Binds the run's inputs (borrowed; copied when misaligned for their dtype). */
static gq_status s_bind_inputs(gq_onnx_plan_t *p, s_env_t *e, const gq_view_t *in, int nin,
                               char *err, size_t errlen)
{
    for (int i = 0; i < nin; i++) {
        gq_onnx_val_t *v = &e->vals[p->inputs[i]];
        gq_status rc = s_check_input(p->input_info[i], &in[i].desc, err, errlen);
        if (rc)
            return rc;
        v->desc = in[i].desc;
        v->nbytes = in[i].nbytes;
        size_t align = gq_dtype_align(in[i].desc.dtype);
        if (align && (uintptr_t)in[i].data % align) {
            if (!(v->data = gq_aligned_alloc(64, in[i].nbytes))) {
                gq_errf(err, errlen, "out of memory copying input '%s'", p->names[p->inputs[i]]);
                return GQ_ENOMEM;
            }
            GQ_ONNX_COPY(v->data, in[i].data, in[i].nbytes);
            v->owned = true;
            v->cap = 0;
        } else {
            v->data = in[i].data;
        }
        e->set[p->inputs[i]] = true;
    }
    return GQ_OK;
}

gq_status gq_onnx_plan_run(gq_onnx_plan_t *p, const gq_view_t *in, int nin, gq_view_t *out,
                           int nout, char *err, size_t errlen)
{
    if (nin != p->ninputs || nout < p->noutputs) {
        gq_errf(err, errlen, "the model takes %d inputs and gives %d outputs; %d and %d given",
                p->ninputs, p->noutputs, nin, nout);
        return GQ_ESHAPE;
    }
    s_env_t e;
    gq_status rc = s_env_new(p, &e, err, errlen);
    if (rc)
        return rc;
    gq_onnx_pool_t *prev = gq_onnx_pool_enter(&p->pool);
    if (!(rc = s_bind_inputs(p, &e, in, nin, err, errlen)))
        rc = s_run_steps(p, &e, err, errlen);
    int done = 0;
    for (int o = 0; o < p->noutputs && !rc; o++, done++) {
        int s = p->outputs[o];
        if (s < 0 || !e.set[s]) {
            gq_errf(err, errlen, "graph output %d has no value", o);
            rc = GQ_EFORMAT;
            break;
        }
        gq_onnx_val_t *v = &e.vals[s];
        out[o].desc = v->desc;
        out[o].nbytes = v->nbytes;
        if (!(out[o].data = gq_aligned_alloc(64, v->nbytes))) {
            gq_errf(err, errlen, "out of memory for output %d", o);
            rc = GQ_ENOMEM;
            break;
        }
        GQ_ONNX_COPY(out[o].data, v->data, v->nbytes);
    }
    if (rc)
        for (int o = 0; o < done; o++) {
            free(out[o].data);
            out[o].data = NULL;
        }
    s_env_free(p, &e);
    gq_onnx_pool_enter(prev);
    return rc;
}
