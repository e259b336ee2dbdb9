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
    s_step_t *nodes = NULL;
    int *pending = NULL, *order = NULL, *producer = NULL, *first = NULL, *users = NULL,
        *fill = NULL;
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
    /* Each node's kernel and slots, once, in file order; then Kahn's algorithm over the
     * producer -> consumer edges orders them. */
    nodes = calloc(n + 1, sizeof *nodes);
    pending = calloc(n + 1, sizeof *pending);
    order = calloc(n + 1, sizeof *order);
    if (!nodes || !pending || !order)
        goto oom;
    /* Outputs first, so inputs can be matched to their producers. */
    for (size_t k = 0; k < n; k++) {
        const Onnx__NodeProto *nd = g->node[k];
        s_step_t *st = &nodes[k];
        const char *nn = nd->name && *nd->name ? nd->name : "(unnamed)";
        st->node = nd;
        if (!(st->k = gq_onnx_kernel_find(nd->op_type, p->opset))) {
            gq_errf(err, errlen,
                    "node '%s': op %s (opset %d) is not supported by gq's ONNX runtime", nn,
                    nd->op_type, p->opset);
            rc = GQ_EUNSUPPORTED;
            goto fail;
        }
        st->nin = (int)nd->n_input;
        st->nout = (int)nd->n_output;
        st->in = malloc((nd->n_input + 1) * sizeof *st->in);
        st->out = malloc((nd->n_output + 1) * sizeof *st->out);
        if (!st->in || !st->out)
            goto oom;
        for (int o = 0; o < st->nout; o++)
            if ((st->out[o] = *nd->output[o] ? s_slot(p, nd->output[o], true) : -1) < 0 &&
                *nd->output[o])
                goto oom;
    }
    if (!(producer = malloc((size_t)(p->nslots + 1) * sizeof *producer)) ||
        !(first = calloc((size_t)p->nslots + 2, sizeof *first)))
        goto oom;
    for (int sl = 0; sl < p->nslots; sl++)
        producer[sl] = -1;
    for (size_t k = 0; k < n; k++)
        for (int o = 0; o < nodes[k].nout; o++)
            if (nodes[k].out[o] >= 0)
                producer[nodes[k].out[o]] = (int)k;
    /* Consumers of each produced slot, as ranges first[s] .. first[s + 1] of users[]. */
    size_t nedges = 0;
    for (size_t k = 0; k < n; k++)
        for (int i = 0; i < nodes[k].nin; i++) {
            const char *name = g->node[k]->input[i];
            int sl = nodes[k].in[i] = *name ? s_slot(p, name, false) : -1;
            if (sl >= 0 && producer[sl] >= 0) {
                pending[k]++;
                first[sl + 1]++;
                nedges++;
            }
        }
    for (int sl = 0; sl < p->nslots; sl++)
        first[sl + 1] += first[sl];
    if (!(users = malloc((nedges + 1) * sizeof *users)) ||
        !(fill = malloc((size_t)(p->nslots + 1) * sizeof *fill)))
        goto oom;
    memcpy(fill, first, (size_t)p->nslots * sizeof *fill);
    for (size_t k = 0; k < n; k++)
        for (int i = 0; i < nodes[k].nin; i++) {
            int sl = nodes[k].in[i];
            if (sl >= 0 && producer[sl] >= 0)
                users[fill[sl]++] = (int)k;
        }
    /* A node runs once every producer of its inputs has. */
    int *stack = malloc((n + 1) * sizeof *stack);
    if (!stack)
        goto oom;
    size_t top = 0, done = 0;
    for (size_t k = 0; k < n; k++)
        if (!pending[k])
            stack[top++] = (int)k;
    while (top) {
        int k = stack[--top];
        order[done++] = k;
        for (int o = 0; o < nodes[k].nout; o++) {
            int sl = nodes[k].out[o];
            for (int u = sl >= 0 ? first[sl] : 0; sl >= 0 && u < first[sl + 1]; u++)
                if (--pending[users[u]] == 0)
                    stack[top++] = users[u];
        }
    }
    free(stack);
    if (done != n) {
        gq_errf(err, errlen, "the graph has a cycle: %zu of %zu nodes can never run", n - done, n);
        rc = GQ_EFORMAT;
        goto fail;
    }
    if (!(p->steps = calloc(n + 1, sizeof *p->steps)))
        goto oom;
    for (size_t i = 0; i < n; i++)
        p->steps[p->nsteps++] = nodes[order[i]];
    free(nodes);
    nodes = NULL;
    p->outputs = calloc(g->n_output + 1, sizeof *p->outputs);
    if (!p->outputs)
        goto oom;
    for (size_t i = 0; i < g->n_output; i++)
        p->outputs[p->noutputs++] = s_slot(p, g->output[i]->name, false);
    rc = GQ_OK;
    goto done;
oom:
    gq_errf(err, errlen, "out of memory planning the graph");
    rc = GQ_ENOMEM;
fail:
    gq_onnx_plan_destroy(&p);
done:
    for (size_t k = 0; nodes && k < g->n_node; k++) {
        free(nodes[k].in);
        free(nodes[k].out);
    }
    free(nodes);
    free(pending);
    free(order);
    free(producer);
    free(first);
    free(users);
    free(fill);
    if (code)
        *code = rc;
    return p;
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
