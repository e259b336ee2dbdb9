/* The ONNX executor's planning (see onnx_exec.h): a plan per graph — the main graph's, and
 * one per subgraph (If's branches, Loop's and Scan's body), whose names not defined inside
 * are read from the enclosing plan's values at run time. Runs are in onnx_run.c, fusion in
 * onnx_fuse.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "onnx_accel.h"
#include "onnx_infer.h"
#include "onnx_plan.h"
#include "optable.h"
#include "util.h"

const gq_onnx_kernel_t *gq_onnx_kernel_find(const char *op_type, int opset)
{
    const struct {
        const gq_onnx_kernel_t *t;
        const int *n;
    } fam[] = {{gq_onnx_kernels_elem, &gq_onnx_kernels_elem_count},
               {gq_onnx_kernels_nn, &gq_onnx_kernels_nn_count},
               {gq_onnx_kernels_shape, &gq_onnx_kernels_shape_count},
               {gq_onnx_kernels_conv, &gq_onnx_kernels_conv_count},
               {gq_onnx_kernels_norm, &gq_onnx_kernels_norm_count},
               {gq_onnx_kernels_rnn, &gq_onnx_kernels_rnn_count},
               {gq_onnx_kernels_index, &gq_onnx_kernels_index_count},
               {gq_onnx_kernels_logic, &gq_onnx_kernels_logic_count},
               {gq_onnx_kernels_reduce, &gq_onnx_kernels_reduce_count},
               {gq_onnx_kernels_ctrl, &gq_onnx_kernels_ctrl_count},
               {gq_onnx_kernels_dsp, &gq_onnx_kernels_dsp_count},
               {gq_onnx_kernels_scatter, &gq_onnx_kernels_scatter_count},
               {gq_onnx_kernels_resize, &gq_onnx_kernels_resize_count},
               {gq_onnx_kernels_einsum, &gq_onnx_kernels_einsum_count},
               {gq_onnx_kernels_loss, &gq_onnx_kernels_loss_count},
               {gq_onnx_kernels_quant, &gq_onnx_kernels_quant_count},
               {gq_onnx_kernels_vision, &gq_onnx_kernels_vision_count}};
    /* Within a table, later rows of the same op take precedence when their min_opset is
     * met: a table lists an op's versions oldest first. */
    const gq_onnx_kernel_t *best = NULL;
    for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++)
        for (int i = 0; i < *fam[f].n; i++)
            if (!strcmp(fam[f].t[i].op, op_type) && opset >= fam[f].t[i].min_opset)
                best = &fam[f].t[i];
    return best;
}

bool gq_onnx_op_supported(const char *op_type, int opset)
{
    return gq_onnx_kernel_find(op_type, opset) != NULL;
}

/* If, Loop and Scan never reach their kernel: the executor runs their subgraphs
 * (onnx_run.c). Scan before opset 9 (a batch axis, sequence_lens) is not supported. */
static gq_status s_ctrl_kernel(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in,
                               int nin, gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)n, (void)opset, (void)in, (void)nin, (void)out, (void)nout;
    gq_errf(err, errlen, "a control-flow op without planned subgraphs");
    return GQ_EFORMAT;
}

const gq_onnx_kernel_t gq_onnx_kernels_ctrl[] = {
    {"If", 1, s_ctrl_kernel}, {"Loop", 1, s_ctrl_kernel}, {"Scan", 9, s_ctrl_kernel}};
const int gq_onnx_kernels_ctrl_count = GQ_ONNX_COUNT(gq_onnx_kernels_ctrl);

/* The slot of name, created when create is set; -1 when absent (or out of memory). */
int gq_onnx_plan_slot(gq_onnx_plan_t *p, const char *name, bool create)
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

/* Whether name is a value of p or of a plan enclosing it. */
static bool s_visible(const gq_onnx_plan_t *p, const char *name)
{
    for (; p; p = p->parent)
        if (gq_onnx_plan_slot((gq_onnx_plan_t *)p, name, false) >= 0)
            return true;
    return false;
}

/* The slot of a name read by p's nodes: its own, or (subgraphs) a new slot filled from the
 * enclosing plans at run time. -1 when no graph defines it; -2 when out of memory. */
static int s_resolve(gq_onnx_plan_t *p, const char *name)
{
    int sl = gq_onnx_plan_slot(p, name, false);
    if (sl >= 0 || !p->parent || !s_visible(p->parent, name))
        return sl;
    int *no = realloc(p->outer, (size_t)(p->nouter + 1) * sizeof *no);
    if (!no || (sl = gq_onnx_plan_slot(p, name, true)) < 0) {
        if (no)
            p->outer = no;
        return -2;
    }
    p->outer = no;
    p->outer[p->nouter++] = sl;
    return sl;
}

static gq_onnx_plan_t *s_plan_graph(const gq_onnx_model_t *model, const Onnx__GraphProto *g,
                                    const gq_onnx_plan_t *parent, const gq_onnx_plan_opts_t *opts,
                                    gq_status *code, char *err, size_t errlen);

const char *gq_onnx_node_name(const Onnx__NodeProto *nd)
{
    return nd->name && *nd->name ? nd->name : "(unnamed)";
}

/* Initializers get the first slots: the model's tensors for the main graph, the
 * subgraph's own (decoded here, owned by the plan) for a branch. */
static gq_status s_plan_inits(gq_onnx_plan_t *p, const Onnx__GraphProto *g, char *err,
                              size_t errlen)
{
    p->ninit = p->parent ? (int)g->n_initializer : gq_onnx_model_tensor_count(p->model);
    if (p->ninit && (!(p->init_slot = calloc((size_t)p->ninit, sizeof *p->init_slot)) ||
                     (p->parent && !(p->sub_init = calloc((size_t)p->ninit, sizeof *p->sub_init)))))
        return GQ_ENOMEM;
    for (int i = 0; i < p->ninit; i++) {
        const char *name =
            p->parent ? g->initializer[i]->name : gq_onnx_model_tensor(p->model, i)->name;
        if ((p->init_slot[i] = gq_onnx_plan_slot(p, name, true)) < 0)
            return GQ_ENOMEM;
        if (!p->parent)
            continue;
        gq_onnx_val_t *v = &p->sub_init[i];
        gq_status rc =
            gq_onnx_tensor_decode(g->initializer[i], NULL, NULL, &v->desc, &v->data, err, errlen);
        if (rc)
            return rc;
        v->nbytes = gq_tdesc_nbytes(&v->desc);
    }
    return GQ_OK;
}

/* Graph inputs that are not initializers (an initializer listed as an input, IR < 4, is a
 * default, not required). The loader lets an input go unnamed (nothing can read it); a run
 * could not be given it by name either. */
static gq_status s_plan_inputs(gq_onnx_plan_t *p, const Onnx__GraphProto *g, char *err,
                               size_t errlen)
{
    p->inputs = calloc(g->n_input + 1, sizeof *p->inputs);
    p->input_info = calloc(g->n_input + 1, sizeof *p->input_info);
    if (!p->inputs || !p->input_info)
        return GQ_ENOMEM;
    for (size_t i = 0; i < g->n_input; i++) {
        if (!g->input[i]->name || !*g->input[i]->name) {
            gq_errf(err, errlen, "graph input %zu has no name", i);
            return GQ_EFORMAT;
        }
        if (gq_onnx_plan_slot(p, g->input[i]->name, false) >= 0)
            continue;
        int s = gq_onnx_plan_slot(p, g->input[i]->name, true);
        if (s < 0)
            return GQ_ENOMEM;
        p->input_info[p->ninputs] = g->input[i];
        p->inputs[p->ninputs++] = s;
    }
    return GQ_OK;
}

/* Plans the subgraphs of control-flow step st (If: both branches; Loop, Scan: the body) and
 * adds the outer values they read to its inputs. */
static gq_status s_plan_sub(gq_onnx_plan_t *p, gq_onnx_step_t *st, const gq_onnx_plan_opts_t *opts,
                            char *err, size_t errlen)
{
    static const char *if_attr[2] = {"then_branch", "else_branch"}, *body_attr[1] = {"body"};
    bool is_if = !strcmp(st->node->op_type, "If");
    const char **attr = is_if ? if_attr : body_attr;
    gq_status rc = GQ_OK;
    for (int b = 0; b < (is_if ? 2 : 1); b++) {
        const Onnx__AttributeProto *a = gq_onnx_attr(st->node, attr[b]);
        char serr[GQ_ERRLEN * 2];
        if (!a || !a->g) {
            gq_errf(err, errlen, "node '%s' (%s): no %s graph", gq_onnx_node_name(st->node),
                    st->node->op_type, attr[b]);
            return GQ_EFORMAT;
        }
        if (!(st->branch[b] = s_plan_graph(p->model, a->g, p, opts, &rc, serr, sizeof serr))) {
            gq_errf(err, errlen, "node '%s' (%s) %s: %s", gq_onnx_node_name(st->node),
                    st->node->op_type, attr[b], serr);
            return rc;
        }
        const gq_onnx_plan_t *br = st->branch[b];
        for (int i = 0; i < br->nouter; i++) {
            int sl = s_resolve(p, br->names[br->outer[i]]);
            bool seen = false;
            for (int j = st->nin; j < st->nin + st->nimplicit && !seen; j++)
                seen = st->in[j] == sl;
            if (sl < 0 || seen)
                continue;
            int *ni = realloc(st->in, (size_t)(st->nin + st->nimplicit + 1) * sizeof *ni);
            if (!ni)
                return GQ_ENOMEM;
            st->in = ni;
            st->in[st->nin + st->nimplicit++] = sl;
        }
    }
    return GQ_OK;
}

/* Each node's kernel, output slots, then input slots (and the subgraphs of If, Loop and Scan). */
static gq_status s_plan_nodes(gq_onnx_plan_t *p, const Onnx__GraphProto *g, gq_onnx_step_t *nodes,
                              const gq_onnx_plan_opts_t *opts, char *err, size_t errlen)
{
    size_t n = g->n_node;
    for (size_t k = 0; k < n; k++) { /* outputs first: inputs may name later nodes' outputs */
        const Onnx__NodeProto *nd = g->node[k];
        gq_onnx_step_t *st = &nodes[k];
        st->node = nd;
        if (!(st->k = gq_onnx_kernel_find(nd->op_type, p->opset))) {
            gq_errf(err, errlen,
                    "node '%s': op %s (opset %d) is not supported by gq's ONNX runtime",
                    gq_onnx_node_name(nd), nd->op_type, p->opset);
            return GQ_EUNSUPPORTED;
        }
        st->nin = (int)nd->n_input;
        st->nout = (int)nd->n_output;
        st->in = malloc((nd->n_input + 1) * sizeof *st->in);
        st->out = malloc((nd->n_output + 1) * sizeof *st->out);
        if (!st->in || !st->out)
            return GQ_ENOMEM;
        for (int o = 0; o < st->nout; o++)
            if ((st->out[o] = *nd->output[o] ? gq_onnx_plan_slot(p, nd->output[o], true) : -1) <
                    0 &&
                *nd->output[o])
                return GQ_ENOMEM;
    }
    for (size_t k = 0; k < n; k++) {
        gq_onnx_step_t *st = &nodes[k];
        for (int i = 0; i < st->nin; i++) {
            const char *name = g->node[k]->input[i];
            if ((st->in[i] = *name ? s_resolve(p, name) : -1) == -2)
                return GQ_ENOMEM;
        }
        const char *op = st->node->op_type;
        gq_status rc = strcmp(op, "If") && strcmp(op, "Loop") && strcmp(op, "Scan")
                           ? GQ_OK
                           : s_plan_sub(p, st, opts, err, errlen);
        if (rc)
            return rc;
    }
    return GQ_OK;
}

/* Orders nodes[0..n) by producer -> consumer edges (Kahn) into p->steps. */
static gq_status s_plan_order(gq_onnx_plan_t *p, gq_onnx_step_t *nodes, size_t n, char *err,
                              size_t errlen)
{
    gq_status rc = GQ_ENOMEM;
    int *pending = calloc(n + 1, sizeof *pending), *order = calloc(n + 1, sizeof *order);
    int *producer = malloc((size_t)(p->nslots + 1) * sizeof *producer);
    int *first = calloc((size_t)p->nslots + 2, sizeof *first), *users = NULL, *fill = NULL;
    int *stack = malloc((n + 1) * sizeof *stack);
    if (!pending || !order || !producer || !first || !stack)
        goto done;
    for (int sl = 0; sl < p->nslots; sl++)
        producer[sl] = -1;
    for (size_t k = 0; k < n; k++)
        for (int o = 0; o < nodes[k].nout; o++)
            if (nodes[k].out[o] >= 0)
                producer[nodes[k].out[o]] = (int)k;
    /* Consumers of each produced slot, as ranges first[s] .. first[s + 1] of users[]. */
    size_t nedges = 0;
    for (size_t k = 0; k < n; k++)
        for (int i = 0; i < nodes[k].nin + nodes[k].nimplicit; i++) {
            int sl = nodes[k].in[i];
            if (sl >= 0 && producer[sl] >= 0)
                pending[k]++, first[sl + 1]++, nedges++;
        }
    for (int sl = 0; sl < p->nslots; sl++)
        first[sl + 1] += first[sl];
    if (!(users = malloc((nedges + 1) * sizeof *users)) ||
        !(fill = malloc((size_t)(p->nslots + 1) * sizeof *fill)))
        goto done;
    memcpy(fill, first, (size_t)p->nslots * sizeof *fill);
    for (size_t k = 0; k < n; k++)
        for (int i = 0; i < nodes[k].nin + nodes[k].nimplicit; i++) {
            int sl = nodes[k].in[i];
            if (sl >= 0 && producer[sl] >= 0)
                users[fill[sl]++] = (int)k;
        }
    size_t top = 0, done = 0; /* a node runs once every producer of its inputs has */
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
    if (done != n) {
        gq_errf(err, errlen, "the graph has a cycle: %zu of %zu nodes can never run", n - done, n);
        rc = GQ_EFORMAT;
        goto done;
    }
    if (!(p->steps = calloc(n + 1, sizeof *p->steps)))
        goto done;
    for (size_t i = 0; i < n; i++) { /* the steps take over the nodes' arrays */
        p->steps[p->nsteps++] = nodes[order[i]];
        memset(&nodes[order[i]], 0, sizeof nodes[0]);
    }
    rc = GQ_OK;
done:
    free(pending), free(order), free(producer), free(first), free(users), free(fill), free(stack);
    return rc;
}

static gq_status s_plan_outputs(gq_onnx_plan_t *p, const Onnx__GraphProto *g)
{
    if (!(p->outputs = calloc(g->n_output + 1, sizeof *p->outputs)))
        return GQ_ENOMEM;
    for (size_t i = 0; i < g->n_output; i++)
        if ((p->outputs[p->noutputs++] = s_resolve(p, g->output[i]->name)) == -2)
            return GQ_ENOMEM;
    return GQ_OK;
}

/* Each slot's last reader (graph outputs live to the end). */
static gq_status s_plan_last_use(gq_onnx_plan_t *p)
{
    if (!(p->last_use = malloc((size_t)(p->nslots + 1) * sizeof *p->last_use)))
        return GQ_ENOMEM;
    for (int sl = 0; sl < p->nslots; sl++)
        p->last_use[sl] = -1;
    for (int k = 0; k < p->nsteps; k++)
        for (int i = 0; i < p->steps[k].nin + p->steps[k].nimplicit; i++)
            if (p->steps[k].in[i] >= 0)
                p->last_use[p->steps[k].in[i]] = k;
    for (int o = 0; o < p->noutputs; o++)
        if (p->outputs[o] >= 0)
            p->last_use[p->outputs[o]] = p->nsteps;
    return GQ_OK;
}

/* Order, then inference and folding (each needs the other's results, so they share one
 * walk), then fusion (over the folded constants too), then liveness. */
static gq_onnx_plan_t *s_plan_graph(const gq_onnx_model_t *model, const Onnx__GraphProto *g,
                                    const gq_onnx_plan_t *parent, const gq_onnx_plan_opts_t *opts,
                                    gq_status *code, char *err, size_t errlen)
{
    gq_status rc = GQ_ENOMEM;
    size_t n = g->n_node;
    gq_onnx_step_t *nodes = calloc(n + 1, sizeof *nodes);
    gq_onnx_plan_t *p = calloc(1, sizeof *p);
    if (err && errlen)
        err[0] = '\0';
    if (p && nodes && (p->index = gq_map_new())) {
        p->model = model;
        p->parent = parent;
        p->opset = gq_onnx_model_opset(model);
        if (!(rc = s_plan_inits(p, g, err, errlen)) && !(rc = s_plan_inputs(p, g, err, errlen)) &&
            !(rc = s_plan_nodes(p, g, nodes, opts, err, errlen)) &&
            !(rc = s_plan_order(p, nodes, n, err, errlen)) && !(rc = s_plan_outputs(p, g)) &&
            !(rc = gq_onnx_plan_infer_fold(p, opts, err, errlen)) && !(rc = gq_onnx_plan_fuse(p)))
            rc = s_plan_last_use(p);
    }
    if (rc == GQ_ENOMEM && !(err && errlen && *err))
        gq_errf(err, errlen, "out of memory planning the graph");
    for (size_t k = 0; nodes && k < n; k++) { /* what the steps did not take over */
        free(nodes[k].in);
        free(nodes[k].out);
        for (int b = 0; b < 2; b++)
            gq_onnx_plan_destroy(&nodes[k].branch[b]);
    }
    free(nodes);
    if (rc)
        gq_onnx_plan_destroy(&p);
    if (code)
        *code = rc;
    return p;
}

gq_onnx_plan_t *gq_onnx_plan_new_opts(const gq_onnx_model_t *model, const gq_onnx_plan_opts_t *opts,
                                      gq_status *code, char *err, size_t errlen)
{
    gq_onnx_plan_opts_t def = {0};
    return s_plan_graph(model, gq_onnx_model_proto(model)->graph, NULL, opts ? opts : &def, code,
                        err, errlen);
}

gq_onnx_plan_t *gq_onnx_plan_new(const gq_onnx_model_t *model, gq_status *code, char *err,
                                 size_t errlen)
{
    return gq_onnx_plan_new_opts(model, NULL, code, err, errlen);
}

void gq_onnx_plan_destroy(gq_onnx_plan_t **self_p)
{
    gq_onnx_plan_t *p = *self_p;
    if (!p)
        return;
    if (p->accel && p->accel_plan) /* the accelerator's state for this plan (onnx_accel.h) */
        p->accel->ops->plan_free(p->accel, p->accel_plan);
    for (int i = 0; i < p->nsteps; i++) {
        free(p->steps[i].in);
        free(p->steps[i].out);
        for (int b = 0; b < 2; b++)
            gq_onnx_plan_destroy(&p->steps[i].branch[b]);
    }
    for (int i = 0; p->sub_init && i < p->ninit; i++)
        free(p->sub_init[i].data);
    free(p->sub_init);
    for (int i = 0; i < p->nfold; i++)
        free(p->fold[i].data), free(p->fold_name[i]);
    free(p->fold), free(p->fold_slot), free(p->fold_name);
    free(p->outer);
    free(p->steps);
    free(p->names);
    gq_map_destroy(&p->index);
    free(p->inputs);
    free(p->input_info);
    free(p->outputs);
    free(p->init_slot);
    free(p->last_use);
    gq_onnx_pool_clear(&p->pool);
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

int gq_onnx_plan_step_count(const gq_onnx_plan_t *self)
{
    return self->nsteps;
}

int gq_onnx_plan_folded_count(const gq_onnx_plan_t *self)
{
    return self->nfolded;
}

void gq_onnx_plan_profile(gq_onnx_plan_t *self, bool on)
{
    self->profile = on;
    for (int k = 0; k < self->nsteps; k++)
        self->steps[k].ns = self->steps[k].runs = 0;
}

void gq_onnx_plan_profile_print(const gq_onnx_plan_t *self, FILE *f)
{
    uint64_t total = 0;
    for (int k = 0; k < self->nsteps; k++)
        total += self->steps[k].ns;
    for (int k = 0; k < self->nsteps; k++) {
        const gq_onnx_step_t *st = &self->steps[k];
        fprintf(f, "%4d %-22s %-24.24s %10.3f us/run %5.1f%%\n", k, st->node->op_type,
                gq_onnx_node_name(st->node),
                st->runs ? (double)st->ns / (double)st->runs / 1e3 : 0.0,
                total ? 100.0 * (double)st->ns / (double)total : 0.0);
    }
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
