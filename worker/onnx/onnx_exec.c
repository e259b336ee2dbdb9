/* The ONNX executor: planning and runs (see onnx_exec.h). */
#include "onnx_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "optable.h"
#include "util.h"

/* Every value name of the graph gets a slot; nodes refer to slots. */
typedef struct {
    const gq_onnx_kernel_t *k;
    const Onnx__NodeProto *node;
    int *in, nin; /* slots; -1 for an omitted optional input */
    int *out, nout;
} s_step_t;

struct gq_onnx_plan {
    const gq_onnx_model_t *model;
    int opset;
    int nslots;
    const char **names; /* per slot */
    gq_map_t *index;    /* hash(name) -> slot + 1, collisions resolved by s_slot */
    s_step_t *steps;
    int nsteps;
    int *inputs, ninputs; /* graph inputs that are not initializers */
    const Onnx__ValueInfoProto **input_info;
    int *outputs, noutputs;
    int *init_slot; /* per model tensor */
};

const gq_onnx_kernel_t *gq_onnx_kernel_find(const char *op_type, int opset)
{
    const struct {
        const gq_onnx_kernel_t *t;
        const int *n;
    } fam[] = {{gq_onnx_kernels_elem, &gq_onnx_kernels_elem_count},
               {gq_onnx_kernels_nn, &gq_onnx_kernels_nn_count},
               {gq_onnx_kernels_shape, &gq_onnx_kernels_shape_count}};
    for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++)
        for (int i = 0; i < *fam[f].n; i++)
            if (!strcmp(fam[f].t[i].op, op_type) && opset >= fam[f].t[i].min_opset)
                return &fam[f].t[i];
    return NULL;
}

bool gq_onnx_op_supported(const char *op_type, int opset)
{
    return gq_onnx_kernel_find(op_type, opset) != NULL;
}

/* The slot of name, created when create is set; -1 when absent (or out of memory). */
static int s_slot(gq_onnx_plan_t *p, const char *name, bool create)
{
    uint64_t h = gq_hash_bytes(name, strlen(name), 0) | 1;
    intptr_t hit = (intptr_t)gq_map_get(p->index, h);
    if (hit && !strcmp(p->names[hit - 1], name))
        return (int)hit - 1;
    if (hit) /* a 64-bit hash collision: exact search */
        for (int s = 0; s < p->nslots; s++)
            if (!strcmp(p->names[s], name))
                return s;
    if (!create)
        return -1;
    const char **nn = realloc(p->names, (size_t)(p->nslots + 1) * sizeof *nn);
    if (!nn)
        return -1;
    p->names = nn;
    p->names[p->nslots] = name;
    if (!hit && gq_map_put(p->index, h, (void *)(intptr_t)(p->nslots + 1)) != 0)
        return -1;
    return p->nslots++;
}

gq_onnx_plan_t *gq_onnx_plan_new(const gq_onnx_model_t *model, gq_status *code, char *err,
                                 size_t errlen)
{
    gq_status rc = GQ_ENOMEM;
    const Onnx__GraphProto *g = gq_onnx_model_proto(model)->graph;
    int *pending = NULL, *ready = NULL;
    gq_onnx_plan_t *p = calloc(1, sizeof *p);
    if (!p || !(p->index = gq_map_new()))
        goto oom;
    p->model = model;
    p->opset = gq_onnx_model_opset(model);
    int nt = gq_onnx_model_tensor_count(model);
    if (nt && !(p->init_slot = calloc((size_t)nt, sizeof *p->init_slot)))
        goto oom;
    for (int i = 0; i < nt; i++)
        if ((p->init_slot[i] = s_slot(p, gq_onnx_model_tensor(model, i)->name, true)) < 0)
            goto oom;
    p->inputs = calloc(g->n_input + 1, sizeof *p->inputs);
    p->input_info = calloc(g->n_input + 1, sizeof *p->input_info);
    if (!p->inputs || !p->input_info)
        goto oom;
    for (size_t i = 0; i < g->n_input; i++) {
        if (gq_onnx_model_tensor_find(model, g->input[i]->name))
            continue; /* an initializer listed as an input (IR < 4): a default, not required */
        int s = s_slot(p, g->input[i]->name, true);
        if (s < 0)
            goto oom;
        p->input_info[p->ninputs] = g->input[i];
        p->inputs[p->ninputs++] = s;
    }
    size_t n = g->n_node;
    p->steps = calloc(n + 1, sizeof *p->steps);
    pending = calloc(n + 1, sizeof *pending);
    ready = calloc(n + 1, sizeof *ready);
    if (!p->steps || !pending || !ready)
        goto oom;
    /* Outputs first, so inputs can be matched to their producers. */
    int *producer = NULL;
    for (size_t k = 0; k < n; k++)
        for (size_t o = 0; o < g->node[k]->n_output; o++)
            if (*g->node[k]->output[o] && s_slot(p, g->node[k]->output[o], true) < 0)
                goto oom;
    if (!(producer = malloc((size_t)(p->nslots + 1) * sizeof *producer)))
        goto oom;
    for (int s = 0; s < p->nslots; s++)
        producer[s] = -1;
    for (size_t k = 0; k < n; k++)
        for (size_t o = 0; o < g->node[k]->n_output; o++)
            if (*g->node[k]->output[o])
                producer[s_slot(p, g->node[k]->output[o], false)] = (int)k;
    for (size_t k = 0; k < n; k++) {
        const Onnx__NodeProto *nd = g->node[k];
        const char *nn = nd->name && *nd->name ? nd->name : "(unnamed)";
        if (!gq_onnx_kernel_find(nd->op_type, p->opset)) {
            gq_errf(err, errlen,
                    "node '%s': op %s (opset %d) is not supported by gq's ONNX runtime", nn,
                    nd->op_type, p->opset);
            rc = GQ_EUNSUPPORTED;
            free(producer);
            goto fail;
        }
        for (size_t i = 0; i < nd->n_input; i++) {
            int s = *nd->input[i] ? s_slot(p, nd->input[i], false) : -1;
            if (s >= 0 && producer[s] >= 0)
                pending[k]++;
        }
    }
    /* Kahn's algorithm: a node runs once every producer of its inputs has. */
    int nready = 0;
    for (size_t k = 0; k < n; k++)
        if (!pending[k])
            ready[nready++] = (int)k;
    while (nready) {
        int k = ready[--nready];
        const Onnx__NodeProto *nd = g->node[k];
        s_step_t *st = &p->steps[p->nsteps++];
        st->node = nd;
        st->k = gq_onnx_kernel_find(nd->op_type, p->opset);
        st->nin = (int)nd->n_input;
        st->nout = (int)nd->n_output;
        st->in = malloc((nd->n_input + 1) * sizeof *st->in);
        st->out = malloc((nd->n_output + 1) * sizeof *st->out);
        if (!st->in || !st->out) {
            free(producer);
            goto oom;
        }
        for (int i = 0; i < st->nin; i++)
            st->in[i] = *nd->input[i] ? s_slot(p, nd->input[i], false) : -1;
        for (int o = 0; o < st->nout; o++)
            st->out[o] = *nd->output[o] ? s_slot(p, nd->output[o], false) : -1;
        for (size_t j = 0; j < n; j++) /* consumers of k's outputs: quadratic, fine for now */
            for (size_t i = 0; i < g->node[j]->n_input; i++) {
                int s = *g->node[j]->input[i] ? s_slot(p, g->node[j]->input[i], false) : -1;
                if (s >= 0 && producer[s] == k && --pending[j] == 0)
                    ready[nready++] = (int)j;
            }
    }
    free(producer);
    if ((size_t)p->nsteps != n) {
        gq_errf(err, errlen, "the graph has a cycle: %zu of %zu nodes can never run",
                n - (size_t)p->nsteps, n);
        rc = GQ_EFORMAT;
        goto fail;
    }
    p->outputs = calloc(g->n_output + 1, sizeof *p->outputs);
    if (!p->outputs)
        goto oom;
    for (size_t i = 0; i < g->n_output; i++)
        p->outputs[p->noutputs++] = s_slot(p, g->output[i]->name, false);
    free(pending);
    free(ready);
    if (code)
        *code = GQ_OK;
    return p;
oom:
    gq_errf(err, errlen, "out of memory planning the graph");
    rc = GQ_ENOMEM;
fail:
    free(pending);
    free(ready);
    gq_onnx_plan_destroy(&p);
    if (code)
        *code = rc;
    return NULL;
}

void gq_onnx_plan_destroy(gq_onnx_plan_t **self_p)
{
    gq_onnx_plan_t *p = *self_p;
    if (!p)
        return;
    for (int i = 0; i < p->nsteps; i++) {
        free(p->steps[i].in);
        free(p->steps[i].out);
    }
    free(p->steps);
    free(p->names);
    gq_map_destroy(&p->index);
    free(p->inputs);
    free(p->input_info);
    free(p->outputs);
    free(p->init_slot);
    free(p);
    *self_p = NULL;
}

int gq_onnx_plan_input_count(const gq_onnx_plan_t *self)
{
    return self->ninputs;
}

const char *gq_onnx_plan_input_name(const gq_onnx_plan_t *self, int i)
{
    return i >= 0 && i < self->ninputs ? self->names[self->inputs[i]] : NULL;
}

int gq_onnx_plan_output_count(const gq_onnx_plan_t *self)
{
    return self->noutputs;
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

gq_status gq_onnx_val_alloc(gq_onnx_val_t *v, char *err, size_t errlen)
{
    size_t nbytes = 0;
    if (gq_tdesc_check(&v->desc, NULL, &nbytes) != GQ_OK) {
        gq_errf(err, errlen, "output shape is invalid or too large");
        return GQ_ESHAPE;
    }
    v->data = gq_aligned_alloc(64, nbytes);
    if (!v->data) {
        gq_errf(err, errlen, "out of memory for %zu bytes", nbytes);
        return GQ_ENOMEM;
    }
    v->nbytes = nbytes;
    v->owned = true;
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
    gq_onnx_val_t *vals = calloc((size_t)p->nslots + 1, sizeof *vals);
    bool *set = calloc((size_t)p->nslots + 1, sizeof *set);
    gq_status rc = GQ_OK;
    if (!vals || !set) {
        free(vals);
        free(set);
        gq_errf(err, errlen, "out of memory");
        return GQ_ENOMEM;
    }
    for (int i = 0; i < gq_onnx_model_tensor_count(p->model); i++) {
        const gq_onnx_tensor_t *t = gq_onnx_model_tensor(p->model, i);
        gq_onnx_val_t *v = &vals[p->init_slot[i]];
        v->desc = t->desc;
        v->data = (void *)t->data;
        v->nbytes = t->nbytes;
        set[p->init_slot[i]] = true;
    }
    for (int i = 0; i < nin && !rc; i++) {
        gq_onnx_val_t *v = &vals[p->inputs[i]];
        if ((rc = s_check_input(p->input_info[i], &in[i].desc, err, errlen)))
            break;
        v->desc = in[i].desc;
        v->nbytes = in[i].nbytes;
        size_t align = gq_dtype_align(in[i].desc.dtype);
        if (align && (uintptr_t)in[i].data % align) {
            if (!(v->data = gq_aligned_alloc(64, in[i].nbytes))) {
                gq_errf(err, errlen, "out of memory copying input '%s'", p->names[p->inputs[i]]);
                rc = GQ_ENOMEM;
                break;
            }
            GQ_ONNX_COPY(v->data, in[i].data, in[i].nbytes);
            v->owned = true;
        } else {
            v->data = in[i].data;
        }
        set[p->inputs[i]] = true;
    }
    for (int k = 0; k < p->nsteps && !rc; k++) {
        const s_step_t *st = &p->steps[k];
        gq_onnx_val_t *ins[GQ_MAX_INPUTS * 4];
        gq_onnx_val_t outs[GQ_MAX_OUTPUTS];
        const char *nn = st->node->name && *st->node->name ? st->node->name : "(unnamed)";
        if (st->nin > (int)(sizeof ins / sizeof ins[0]) || st->nout > GQ_MAX_OUTPUTS) {
            gq_errf(err, errlen, "node '%s' (%s): %d inputs / %d outputs is over the limits", nn,
                    st->node->op_type, st->nin, st->nout);
            rc = GQ_ETOOBIG;
            break;
        }
        for (int i = 0; i < st->nin; i++) {
            int s = st->in[i];
            ins[i] = s >= 0 && set[s] ? &vals[s] : NULL;
            if (s >= 0 && !set[s]) {
                gq_errf(err, errlen, "node '%s' (%s): input '%s' has no value", nn,
                        st->node->op_type, p->names[s]);
                rc = GQ_EFORMAT;
            }
        }
        if (rc)
            break;
        memset(outs, 0, sizeof outs);
        char kerr[GQ_ERRLEN];
        kerr[0] = '\0';
        rc = st->k->fn(st->node, p->opset, ins, st->nin, outs, st->nout, kerr, sizeof kerr);
        if (rc) {
            gq_errf(err, errlen, "node '%s' (%s): %s", nn, st->node->op_type, kerr);
            for (int o = 0; o < st->nout; o++)
                if (outs[o].owned)
                    free(outs[o].data);
            break;
        }
        for (int o = 0; o < st->nout; o++) {
            int s = st->out[o];
            if (s < 0) {
                if (outs[o].owned)
                    free(outs[o].data);
                continue;
            }
            vals[s] = outs[o];
            set[s] = true;
        }
    }
    int done = 0;
    for (int o = 0; o < p->noutputs && !rc; o++, done++) {
        gq_onnx_val_t *v = &vals[p->outputs[o]];
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
    for (int s = 0; s < p->nslots; s++)
        if (vals[s].owned)
            free(vals[s].data);
    free(vals);
    free(set);
    return rc;
}

const Onnx__AttributeProto *gq_onnx_attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name))
            return n->attribute[i];
    return NULL;
}

int64_t gq_onnx_attr_int(const Onnx__NodeProto *n, const char *name, int64_t def)
{
    const Onnx__AttributeProto *a = gq_onnx_attr(n, name);
    return a && a->has_i ? a->i : def;
}

float gq_onnx_attr_float(const Onnx__NodeProto *n, const char *name, float def)
{
    const Onnx__AttributeProto *a = gq_onnx_attr(n, name);
    return a && a->has_f ? a->f : def;
}
