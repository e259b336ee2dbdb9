/* Runs of a plan: values per slot, freed to the plan's buffer pool after their last
 * reader; If steps run the branch their condition picks as a sub-plan reading outer values.
 * With an accelerator (onnx_accel.h) the steps it claims run on its device and their values
 * stay there until a CPU kernel (or the caller) reads them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "onnx_accel.h"
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

/* Whether runs of p use its accelerator. */
static bool s_accel_on(const gq_onnx_plan_t *p)
{
    return p->accel && p->accel_plan && !p->accel_off;
}

/* Gives an owned value's buffer back (to the pool when it came from one), and its device
 * copy to the accelerator. */
static void s_release(const gq_onnx_plan_t *p, gq_onnx_val_t *v)
{
    if (v->dev && p->accel)
        p->accel->ops->release(p->accel_plan, v->dev);
    if (v->owned)
        gq_onnx_scratch_free(v->data, v->cap);
    v->data = NULL;
    v->owned = false;
    v->dev = NULL;
    v->dev_only = false;
}

/* Makes a device-only value readable on the host (its device copy stays valid). */
static gq_status s_to_host(const gq_onnx_plan_t *p, gq_onnx_val_t *v, char *err, size_t errlen)
{
    if (!v->dev_only)
        return GQ_OK;
    size_t cap = 0;
    void *d = gq_onnx_scratch(v->nbytes, &cap);
    if (!d) {
        gq_errf(err, errlen, "out of memory reading back %zu bytes from %s", v->nbytes,
                p->accel->ops->name);
        return GQ_ENOMEM;
    }
    gq_status rc = p->accel->ops->download(p->accel_plan, v, d, err, errlen);
    if (rc) {
        gq_onnx_scratch_free(d, cap);
        return rc;
    }
    v->data = d;
    v->cap = cap;
    v->owned = true;
    v->dev_only = false;
    return GQ_OK;
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
    bool *konst; /* the slot holds an initializer or a folded constant */
} s_env_t;

/* Makes the slots of a run of p, initializers filled in (borrowed, not owned). */
static gq_status s_env_new(const gq_onnx_plan_t *p, s_env_t *e, char *err, size_t errlen)
{
    e->vals = calloc((size_t)p->nslots + 1, sizeof *e->vals);
    e->set = calloc((size_t)p->nslots + 1, sizeof *e->set);
    e->konst = calloc((size_t)p->nslots + 1, sizeof *e->konst);
    if (!e->vals || !e->set || !e->konst) {
        free(e->vals), free(e->set), free(e->konst);
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
        e->set[p->init_slot[i]] = e->konst[p->init_slot[i]] = true;
    }
    for (int i = 0; i < p->nfold; i++) {
        e->vals[p->fold_slot[i]] = p->fold[i];
        e->vals[p->fold_slot[i]].owned = false;
        e->vals[p->fold_slot[i]].dev = NULL;
        e->vals[p->fold_slot[i]].dev_only = false;
        e->set[p->fold_slot[i]] = e->konst[p->fold_slot[i]] = true;
    }
    return GQ_OK;
}

static void s_env_free(const gq_onnx_plan_t *p, s_env_t *e)
{
    for (int s = 0; e->vals && s < p->nslots; s++)
        s_release(p, &e->vals[s]);
    free(e->vals), free(e->set), free(e->konst);
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
        be.vals[os] = e->vals[ps]; /* on the host: s_run_step read it back */
        be.vals[os].owned = false;
        be.vals[os].dev = NULL;
        be.vals[os].dev_only = false;
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

/* Brings step k's inputs where it runs: to the device for a claimed step (constants once
 * per plan, kept by the accelerator), to the host otherwise (an If's implicit inputs too:
 * its branches run on the CPU). */
static gq_status s_place_inputs(gq_onnx_plan_t *p, const gq_onnx_step_t *st, s_env_t *e,
                                bool on_dev, char *err, size_t errlen)
{
    gq_status rc = GQ_OK;
    for (int i = 0; i < st->nin + (on_dev ? 0 : st->nimplicit) && !rc; i++) {
        int s = st->in[i];
        if (s < 0 || !e->set[s])
            continue;
        gq_onnx_val_t *v = &e->vals[s];
        if (!on_dev)
            rc = s_to_host(p, v, err, errlen);
        else if (!v->dev)
            rc = p->accel->ops->upload(p->accel_plan, s, v, e->konst[s], err, errlen);
    }
    return rc;
}

/* Runs step k of p over e: gathers its inputs, runs it on the accelerator when it claims
 * it, else calls its kernel (or its If branch), stores its outputs, and gives back the
 * buffers no later step reads. */
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
    bool acc = false;
    if (s_accel_on(p)) {
        gq_tdesc_t od[GQ_MAX_OUTPUTS];
        acc = !st->branch[0] && p->accel->ops->claim(p->accel_plan, k, ins, st->nin, od, st->nout);
        if (!acc && p->on_fallback && !p->on_fallback(p->on_fallback_ctx, st->node->op_type)) {
            gq_errf(err, errlen,
                    "node '%s' (%s): %s does not run it and strict mode forbids falling back "
                    "to the CPU",
                    nn, st->node->op_type, p->accel->ops->name);
            return GQ_EUNSUPPORTED;
        }
    }
    uint64_t t0 = p->profile ? s_now_ns() : 0;
    gq_status rc = s_accel_on(p) ? s_place_inputs(p, st, e, acc, kerr, sizeof kerr) : GQ_OK;
    if (!rc)
        rc = acc ? p->accel->ops->run(p->accel_plan, k, ins, st->nin, outs, st->nout, kerr,
                                      sizeof kerr)
             : st->branch[0]
                 ? s_run_if(p, st, e, ins, outs, kerr, sizeof kerr)
                 : st->k->fn(st->node, p->opset, ins, st->nin, outs, st->nout, kerr, sizeof kerr);
    if (!rc && acc && p->profile)
        rc = p->accel->ops->sync(p->accel_plan, kerr, sizeof kerr);
    if (p->profile)
        st->ns += s_now_ns() - t0, st->runs++;
    if (rc) {
        gq_errf(err, errlen, "node '%s' (%s): %s", nn, st->node->op_type, kerr);
        for (int o = 0; o < st->nout; o++)
            s_release(p, &outs[o]);
        return rc;
    }
    p->ran++;
    p->accel_ran += acc;
    for (int o = 0; o < st->nout; o++) {
        int s = st->out[o];
        if (s < 0 || p->last_use[s] < 0) { /* an output nothing reads */
            s_release(p, &outs[o]);
            if (s < 0)
                continue;
        }
        e->vals[s] = outs[o];
        e->set[s] = true;
    }
    for (int i = 0; i < st->nin + st->nimplicit; i++)
        if (st->in[i] >= 0 && p->last_use[st->in[i]] == k)
            s_release(p, &e->vals[st->in[i]]);
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
    p->ran = p->accel_ran = 0;
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
        if (!v->dev_only) {
            GQ_ONNX_COPY(out[o].data, v->data, v->nbytes);
        } else if ((rc = p->accel->ops->download(p->accel_plan, v, out[o].data, err, errlen))) {
            free(out[o].data);
            out[o].data = NULL;
            break;
        }
    }
    if (rc)
        for (int o = 0; o < done; o++) {
            free(out[o].data);
            out[o].data = NULL;
        }
    s_env_free(p, &e);
    if (p->accel && p->accel_plan) {
        char ferr[GQ_ERRLEN];
        gq_status frc = p->accel->ops->finish(p->accel_plan, ferr, sizeof ferr);
        if (frc && !rc) {
            for (int o = 0; o < done; o++) {
                free(out[o].data);
                out[o].data = NULL;
            }
            gq_errf(err, errlen, "%s", ferr);
            rc = frc;
        }
    }
    gq_onnx_pool_enter(prev);
    return rc;
}

gq_status gq_onnx_plan_set_accel(gq_onnx_plan_t *p, gq_onnx_accel_t *ax, char *err, size_t errlen)
{
    if (p->accel && p->accel_plan)
        p->accel->ops->plan_free(p->accel, p->accel_plan);
    p->accel = NULL;
    p->accel_plan = NULL;
    p->ran = p->accel_ran = 0;
    if (!ax)
        return GQ_OK;
    if (!(p->accel_plan = ax->ops->plan_new(ax, p, err, errlen)))
        return GQ_EBACKEND;
    p->accel = ax;
    return GQ_OK;
}

void gq_onnx_plan_on_fallback(gq_onnx_plan_t *p, gq_onnx_fallback_fn fn, void *ctx)
{
    p->on_fallback = fn;
    p->on_fallback_ctx = ctx;
}

void gq_onnx_plan_accel_enable(gq_onnx_plan_t *p, bool on)
{
    p->accel_off = !on;
}

void gq_onnx_plan_last_run(const gq_onnx_plan_t *p, int *accel_steps, int *steps)
{
    if (accel_steps)
        *accel_steps = p->accel_ran;
    if (steps)
        *steps = p->ran;
}

void gq_onnx_accel_destroy(gq_onnx_accel_t **self_p)
{
    gq_onnx_accel_t *ax = *self_p;
    if (!ax)
        return;
    ax->ops->destroy(ax);
    *self_p = NULL;
}

#ifndef GQ_HAVE_OPENCL
gq_onnx_accel_t *gq_onnx_accel_opencl_new(struct gq_backend *be, char *err, size_t errlen)
{
    (void)be;
    gq_errf(err, errlen, "onnx: opencl: not built (no OpenCL SDK found at build time)");
    return NULL;
}
#endif

#ifndef GQ_HAVE_VULKAN
gq_onnx_accel_t *gq_onnx_accel_vulkan_new(struct gq_backend *be, char *err, size_t errlen)
{
    (void)be;
    gq_errf(err, errlen, "onnx: vulkan: not built (no Vulkan SDK or glslc at build time)");
    return NULL;
}
#endif
