/* Graph preparation of the ONNX executor (onnx_infer.c, onnx_fold.c, onnx_mem.c): shape
 * inference with a symbolic batch dim through conv/pool/gemm/reshape chains, shape errors
 * naming node, op, input and shapes, constant folding (Constant -> Add, Shape -> Gather ->
 * Concat -> Reshape: fewer steps, the same outputs as without folding), caps on folding
 * blowups, and peak bytes of a small graph against a hand-computed figure — on models built
 * here. Then every model of the ONNX node test suite (when installed): planned with and
 * without folding, run, and every output's dtype and dims checked against what inference
 * gave for those inputs (an inferred dim that differs from the kernel's is a bug: folding
 * Shape relies on them). */
#include "onnx_infer.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

#define S_TESTDATA "/usr/include/onnx/backend/test/data/node"

/* ---- building models ---- */

typedef struct {
    Onnx__ModelProto m;
    Onnx__GraphProto g;
    Onnx__OperatorSetIdProto op, *ops[1];
    Onnx__NodeProto *nodes[64];
    Onnx__TensorProto *inits[32];
    Onnx__ValueInfoProto *in[8], *out[16];
    void *mem[2048];
    int nmem;
} s_b_t;

static void *s_alloc(s_b_t *b, size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p || b->nmem == (int)(sizeof b->mem / sizeof b->mem[0]))
        abort();
    return b->mem[b->nmem++] = p;
}

static char *s_str(s_b_t *b, const char *s)
{
    return strcpy(s_alloc(b, strlen(s) + 1), s);
}

/* "a,b,,c" -> {"a", "b", "", "c"}. */
static char **s_names(s_b_t *b, const char *list, size_t *n)
{
    char *t = s_str(b, list), **v = s_alloc(b, (strlen(list) + 2) * sizeof *v);
    *n = 0;
    if (!*list)
        return v;
    for (char *p = t;; p++) {
        v[(*n)++] = t;
        if (!(p = strchr(t, ',')))
            break;
        *p = '\0';
        t = p + 1;
    }
    return v;
}

static void s_init(s_b_t *b, int opset)
{
    memset(b, 0, sizeof *b);
    onnx__model_proto__init(&b->m);
    onnx__graph_proto__init(&b->g);
    onnx__operator_set_id_proto__init(&b->op);
    b->op.domain = "", b->op.has_version = 1, b->op.version = opset;
    b->ops[0] = &b->op;
    b->m.has_ir_version = 1, b->m.ir_version = 8;
    b->m.n_opset_import = 1, b->m.opset_import = b->ops;
    b->m.graph = &b->g;
    b->g.node = b->nodes, b->g.initializer = b->inits, b->g.input = b->in, b->g.output = b->out;
}

static void s_fini(s_b_t *b)
{
    for (int i = 0; i < b->nmem; i++)
        free(b->mem[i]);
}

static Onnx__NodeProto *s_node(s_b_t *b, const char *op, const char *name, const char *ins,
                               const char *outs)
{
    Onnx__NodeProto *n = s_alloc(b, sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = s_str(b, op), n->name = s_str(b, name);
    n->input = s_names(b, ins, &n->n_input);
    n->output = s_names(b, outs, &n->n_output);
    n->attribute = s_alloc(b, 8 * sizeof *n->attribute);
    b->nodes[b->g.n_node++] = n;
    return n;
}

static Onnx__AttributeProto *s_attr(s_b_t *b, Onnx__NodeProto *n, const char *name)
{
    Onnx__AttributeProto *a = s_alloc(b, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = s_str(b, name);
    n->attribute[n->n_attribute++] = a;
    return a;
}

static void s_attr_int(s_b_t *b, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = s_attr(b, n, name);
    a->has_type = 1, a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1, a->i = v;
}

static void s_attr_ints(s_b_t *b, Onnx__NodeProto *n, const char *name, int k, ...)
{
    Onnx__AttributeProto *a = s_attr(b, n, name);
    va_list ap;
    a->has_type = 1, a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    a->ints = s_alloc(b, (size_t)k * sizeof *a->ints);
    va_start(ap, k);
    for (int i = 0; i < k; i++)
        a->ints[i] = va_arg(ap, int64_t);
    va_end(ap);
    a->n_ints = (size_t)k;
}

/* A tensor: f32 (data type 1) filled with 0.01 * (i % 17) - 0.05, or i64 (7) from vals. */
static Onnx__TensorProto *s_tensor(s_b_t *b, const char *name, int type, const int64_t *dims,
                                   int ndim, const int64_t *vals)
{
    Onnx__TensorProto *t = s_alloc(b, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = s_str(b, name);
    t->has_data_type = 1, t->data_type = type;
    t->dims = s_alloc(b, (size_t)ndim * sizeof *t->dims);
    memcpy(t->dims, dims, (size_t)ndim * sizeof *dims);
    t->n_dims = (size_t)ndim;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= dims[i];
    if (type == 1) {
        t->float_data = s_alloc(b, (size_t)n * sizeof *t->float_data);
        for (int64_t i = 0; i < n; i++)
            t->float_data[i] = 0.01f * (float)(i % 17) - 0.05f;
        t->n_float_data = (size_t)n;
    } else {
        t->int64_data = s_alloc(b, (size_t)n * sizeof *t->int64_data);
        memcpy(t->int64_data, vals, (size_t)n * sizeof *vals);
        t->n_int64_data = (size_t)n;
    }
    return t;
}

static void s_weight(s_b_t *b, const char *name, int ndim, ...)
{
    int64_t dims[8];
    va_list ap;
    va_start(ap, ndim);
    for (int i = 0; i < ndim; i++)
        dims[i] = va_arg(ap, int64_t);
    va_end(ap);
    b->inits[b->g.n_initializer++] = s_tensor(b, name, 1, dims, ndim, NULL);
}

static void s_ints(s_b_t *b, const char *name, int n, ...)
{
    int64_t v[16], dims[1] = {n};
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        v[i] = va_arg(ap, int64_t);
    va_end(ap);
    b->inits[b->g.n_initializer++] = s_tensor(b, name, 7, dims, 1, v);
}

/* A graph input of type elem and dims "N,3,32,32" (names are dim_params, "?" unknown). */
static void s_input(s_b_t *b, const char *name, int elem, const char *dims)
{
    Onnx__ValueInfoProto *v = s_alloc(b, sizeof *v);
    Onnx__TypeProto *t = s_alloc(b, sizeof *t);
    Onnx__TypeProto__Tensor *tt = s_alloc(b, sizeof *tt);
    Onnx__TensorShapeProto *sh = s_alloc(b, sizeof *sh);
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(t);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    v->name = s_str(b, name), v->type = t;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, t->tensor_type = tt;
    tt->has_elem_type = 1, tt->elem_type = elem, tt->shape = sh;
    size_t n;
    char **d = s_names(b, dims, &n);
    sh->dim = s_alloc(b, (n + 1) * sizeof *sh->dim);
    for (size_t i = 0; i < n; i++) {
        Onnx__TensorShapeProto__Dimension *x = s_alloc(b, sizeof *x);
        onnx__tensor_shape_proto__dimension__init(x);
        if (d[i][0] >= '0' && d[i][0] <= '9') {
            x->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            x->dim_value = atoll(d[i]);
        } else if (strcmp(d[i], "?")) {
            x->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            x->dim_param = d[i];
        }
        sh->dim[sh->n_dim++] = x;
    }
    b->in[b->g.n_input++] = v;
}

static void s_output(s_b_t *b, const char *name)
{
    Onnx__ValueInfoProto *v = s_alloc(b, sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = s_str(b, name);
    b->out[b->g.n_output++] = v;
}

static gq_onnx_model_t *s_model(s_b_t *b)
{
    size_t len = onnx__model_proto__get_packed_size(&b->m);
    uint8_t *buf = malloc(len + 1);
    char err[512];
    gq_status rc;
    onnx__model_proto__pack(&b->m, buf);
    gq_onnx_model_t *m = gq_onnx_model_parse(buf, len, NULL, NULL, &rc, err, sizeof err);
    free(buf);
    if (!m)
        fprintf(stderr, "model does not load: %s\n", err);
    return m;
}

/* ---- looking at plans ---- */

/* The inferred type of value name with dim 0 of the inputs bound to batch (0: symbolic). */
static const char *s_type(const gq_onnx_plan_t *p, const char *name, int64_t batch, char *buf,
                          size_t len)
{
    gq_onnx_info_t *info = calloc((size_t)p->nslots + 1, sizeof *info);
    gq_onnx_syms_t syms = {.n = 0};
    gq_onnx_bind_t bind = {.batch = batch};
    char err[512];
    int sl = gq_onnx_plan_slot((gq_onnx_plan_t *)p, name, false);
    snprintf(buf, len, "(no value '%s')", name);
    if (gq_onnx_infer(p, NULL, &bind, &syms, info, NULL, NULL, err, sizeof err))
        snprintf(buf, len, "(%.*s)", (int)(len > 3 ? len - 3 : 0), err);
    else if (sl >= 0)
        gq_onnx_info_str(&info[sl], &syms, buf, len);
    free(info);
    return buf;
}

static gq_onnx_plan_t *s_plan(const gq_onnx_model_t *m, bool fold, gq_status *rc, char *err,
                              size_t errlen)
{
    gq_onnx_plan_opts_t o = {.no_fold = !fold};
    return m ? gq_onnx_plan_new_opts(m, &o, rc, err, errlen) : NULL;
}

/* Runs p over one f32 input filled with a ramp; *out gets output 0 (the caller frees). */
static gq_status s_run1(gq_onnx_plan_t *p, const int64_t *shape, int ndim, gq_view_t *out, int nout)
{
    gq_view_t in = {.desc = {.dtype = GQ_F32, .ndim = ndim}};
    memcpy(in.desc.shape, shape, (size_t)ndim * sizeof *shape);
    in.nbytes = gq_tdesc_nbytes(&in.desc);
    in.data = malloc(in.nbytes + 4);
    for (int64_t i = 0; i < gq_tdesc_numel(&in.desc); i++)
        ((float *)in.data)[i] = 0.25f * (float)(i % 13) - 1.0f;
    char err[512];
    gq_status rc = gq_onnx_plan_run(p, &in, 1, out, nout, err, sizeof err);
    if (rc)
        fprintf(stderr, "run: %s\n", err);
    free(in.data);
    return rc;
}

/* Whether the outputs of the folded and the unfolded plan of m are the same bytes. */
static bool s_same_outputs(const gq_onnx_model_t *m, const int64_t *shape, int ndim)
{
    char err[512];
    gq_status rc;
    gq_onnx_plan_t *a = s_plan(m, true, &rc, err, sizeof err),
                   *b = s_plan(m, false, &rc, err, sizeof err);
    gq_view_t oa[4], ob[4];
    bool same = a && b && !s_run1(a, shape, ndim, oa, 4) && !s_run1(b, shape, ndim, ob, 4);
    for (int o = 0; same && o < gq_onnx_plan_output_count(a); o++) {
        same = gq_tdesc_equal(&oa[o].desc, &ob[o].desc) && oa[o].nbytes == ob[o].nbytes &&
               !memcmp(oa[o].data, ob[o].data, oa[o].nbytes);
        free(oa[o].data), free(ob[o].data);
    }
    gq_onnx_plan_destroy(&a), gq_onnx_plan_destroy(&b);
    return same;
}

/* ---- the tests ---- */

/* x [N,3,16,16] -> Conv 3x3 pad 1 (8) -> Relu -> MaxPool 2x2 -> Conv 3x3 stride 2 (16)
 * -> AveragePool 2 -> Reshape [0,-1] -> Gemm (transB) -> Softmax: symbolic all the way. */
static void s_test_chain(void)
{
    s_b_t b;
    char t[160], err[512];
    gq_status rc;
    s_init(&b, 17);
    s_input(&b, "x", 1, "N,3,16,16");
    s_weight(&b, "W1", 4, (int64_t)8, (int64_t)3, (int64_t)3, (int64_t)3);
    s_weight(&b, "B1", 1, (int64_t)8);
    s_weight(&b, "W2", 4, (int64_t)16, (int64_t)8, (int64_t)3, (int64_t)3);
    s_weight(&b, "Wf", 2, (int64_t)10, (int64_t)64);
    s_ints(&b, "flat", 2, (int64_t)0, (int64_t)-1);
    Onnx__NodeProto *n = s_node(&b, "Conv", "conv1", "x,W1,B1", "c1");
    s_attr_ints(&b, n, "pads", 4, (int64_t)1, (int64_t)1, (int64_t)1, (int64_t)1);
    s_node(&b, "Relu", "relu1", "c1", "r1");
    n = s_node(&b, "MaxPool", "pool1", "r1", "p1");
    s_attr_ints(&b, n, "kernel_shape", 2, (int64_t)2, (int64_t)2);
    s_attr_ints(&b, n, "strides", 2, (int64_t)2, (int64_t)2);
    n = s_node(&b, "Conv", "conv2", "p1,W2", "c2");
    s_attr_ints(&b, n, "strides", 2, (int64_t)2, (int64_t)2);
    s_attr_ints(&b, n, "pads", 4, (int64_t)1, (int64_t)1, (int64_t)1, (int64_t)1);
    n = s_node(&b, "AveragePool", "pool2", "c2", "p2");
    s_attr_ints(&b, n, "kernel_shape", 2, (int64_t)2, (int64_t)2);
    s_attr_ints(&b, n, "strides", 2, (int64_t)2, (int64_t)2);
    s_node(&b, "Reshape", "flatten", "p2,flat", "f");
    n = s_node(&b, "Gemm", "fc", "f,Wf", "logits");
    s_attr_int(&b, n, "transB", 1);
    s_node(&b, "Softmax", "softmax", "logits", "probs");
    s_output(&b, "probs");
    gq_onnx_model_t *m = s_model(&b);
    gq_onnx_plan_t *p = s_plan(m, true, &rc, err, sizeof err);
    CHECK(p, "plan: %s", err);
    if (p) {
        /* r1 is not listed: conv1 -> relu1 -> pool1 runs as one Conv+MaxPool step */
        const char *want[][2] = {{"p1", "f32[N,8,8,8]"},  {"c2", "f32[N,16,4,4]"},
                                 {"p2", "f32[N,16,2,2]"}, {"f", "f32[N,64]"},
                                 {"logits", "f32[N,10]"}, {"probs", "f32[N,10]"}};
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
            CHECK(!strcmp(s_type(p, want[i][0], 0, t, sizeof t), want[i][1]), "%s: %s, want %s",
                  want[i][0], t, want[i][1]);
        CHECK(!strcmp(s_type(p, "f", 32, t, sizeof t), "f32[32,64]"), "f at batch 32: %s", t);
        gq_view_t out[1];
        int64_t shape[4] = {3, 3, 16, 16};
        CHECK(!s_run1(p, shape, 4, out, 1) && out[0].desc.ndim == 2 && out[0].desc.shape[0] == 3 &&
                  out[0].desc.shape[1] == 10,
              "run at batch 3");
        free(out[0].data);
        char *text = NULL;
        size_t tlen = 0;
        FILE *f = open_memstream(&text, &tlen);
        gq_onnx_plan_print(p, f);
        fclose(f);
        CHECK(text && strstr(text, "f32[N,16,4,4]") && strstr(text, "Conv+"), "printed plan:\n%s",
              text ? text : "");
        free(text);
    }
    gq_onnx_plan_destroy(&p);
    gq_onnx_model_destroy(&m);
    s_fini(&b);
}

/* Plans a one-node model and returns the status, err filled. */
static gq_status s_try_shapes(const char *op, const char *xdims, int wdim, const int64_t *wshape,
                              char *err, size_t errlen)
{
    s_b_t b;
    gq_status rc = GQ_EINTERNAL;
    s_init(&b, 17);
    s_input(&b, "x", 1, xdims);
    b.inits[b.g.n_initializer++] = s_tensor(&b, "W", 1, wshape, wdim, NULL);
    s_node(&b, op, !strcmp(op, "Conv") ? "conv1" : "node1", "x,W", "y");
    s_output(&b, "y");
    gq_onnx_model_t *m = s_model(&b);
    gq_onnx_plan_t *p = s_plan(m, true, &rc, err, errlen);
    gq_onnx_plan_destroy(&p);
    gq_onnx_model_destroy(&m);
    s_fini(&b);
    return p ? GQ_OK : rc;
}

static void s_test_mismatch(void)
{
    char err[512];
    int64_t w[4] = {8, 3, 3, 3};
    gq_status rc = s_try_shapes("Conv", "1,4,32,32", 4, w, err, sizeof err);
    CHECK(rc == GQ_ESHAPE, "conv: %s (%s)", gq_strerror(rc), err);
    CHECK(strstr(err, "node 'conv1' (Conv): input 1 'W' f32[8,3,3,3] has 3 channels per group, "
                      "input 0 'x' f32[1,4,32,32] has 4"),
          "conv: %s", err);
    rc = s_try_shapes("Conv", "N,3,32,32", 4, w, err, sizeof err);
    CHECK(rc == GQ_OK, "conv with a symbolic batch: %s", err);
    int64_t mm[2] = {5, 7};
    rc = s_try_shapes("MatMul", "N,4", 2, mm, err, sizeof err);
    CHECK(rc == GQ_ESHAPE && strstr(err, "node 'node1' (MatMul): input 1 'W' f32[5,7] has 5 rows, "
                                         "input 0 'x' f32[N,4] has 4 columns"),
          "matmul: %s", err);
    int64_t ad[2] = {3, 5};
    rc = s_try_shapes("Add", "N,4", 2, ad, err, sizeof err);
    CHECK(rc == GQ_ESHAPE && strstr(err, "node 'node1' (Add): input 1 'W' f32[3,5] does not "
                                         "broadcast with input 0 'x' f32[N,4]"),
          "add: %s", err);
    rc = s_try_shapes("Add", "N,5", 2, ad, err, sizeof err);
    CHECK(rc == GQ_OK, "add [N,5] + [3,5]: %s", err);
    int64_t rs[1] = {7};
    rc = s_try_shapes("Reshape", "2,4", 1, rs, err, sizeof err); /* f32 shape: not judged */
    CHECK(rc == GQ_OK, "reshape with an f32 shape: %s", err);
}

/* x + (Constant c + W) * 2: the constant arithmetic folds; Shape(x)[2] -> Concat([-1], .)
 * -> Reshape: the shape chain folds away, with a symbolic batch. */
static void s_test_fold(void)
{
    s_b_t b;
    char err[512], t[160];
    gq_status rc;
    s_init(&b, 17);
    s_input(&b, "x", 1, "N,4,6");
    s_weight(&b, "W", 2, (int64_t)4, (int64_t)6);
    s_ints(&b, "two", 1, (int64_t)2);
    s_ints(&b, "minus1", 1, (int64_t)-1);
    Onnx__NodeProto *n = s_node(&b, "Constant", "c", "", "cval");
    int64_t cd[2] = {4, 6};
    Onnx__AttributeProto *a = s_attr(&b, n, "value");
    a->has_type = 1, a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    a->t = s_tensor(&b, "cv", 1, cd, 2, NULL);
    s_node(&b, "Add", "cw", "cval,W", "cw");
    s_node(&b, "Add", "cww", "cw,cw", "cww");
    s_node(&b, "Add", "xa", "x,cww", "xa");
    s_node(&b, "Shape", "shape", "xa", "s");
    s_node(&b, "Gather", "gather", "s,two", "last");
    n = s_node(&b, "Concat", "concat", "minus1,last", "newshape");
    s_attr_int(&b, n, "axis", 0);
    s_node(&b, "Reshape", "reshape", "xa,newshape", "y");
    s_output(&b, "y");
    gq_onnx_model_t *m = s_model(&b);
    gq_onnx_plan_t *p = s_plan(m, true, &rc, err, sizeof err),
                   *q = s_plan(m, false, &rc, err, sizeof err);
    CHECK(p && q, "plan: %s", err);
    if (p && q) {
        CHECK(gq_onnx_plan_step_count(q) == 8, "unfolded: %d steps", gq_onnx_plan_step_count(q));
        CHECK(gq_onnx_plan_step_count(p) == 2 && gq_onnx_plan_folded_count(p) == 6,
              "folded: %d steps, %d folded, want 2 and 6", gq_onnx_plan_step_count(p),
              gq_onnx_plan_folded_count(p));
        CHECK(!strcmp(s_type(p, "y", 0, t, sizeof t), "f32[4*N,6]"), "y: %s", t);
        CHECK(!strcmp(s_type(p, "newshape", 0, t, sizeof t), "i64[2]"), "newshape: %s", t);
        int64_t shape[3] = {3, 4, 6};
        CHECK(s_same_outputs(m, shape, 3), "folded and unfolded outputs differ");
    }
    gq_onnx_plan_destroy(&p);
    gq_onnx_plan_destroy(&q);
    gq_onnx_model_destroy(&m);
    s_fini(&b);
}

/* h0 [1,1,8] expanded to [1, N, 8] by a shape built from Shape(x)[0]: the GRU initial-state
 * pattern of tests/py/check_onnx_models.py; nothing there folds with N symbolic. And
 * Reshape(x, Concat([-1], Shape(x)[1:])): the slice of the shape does fold. */
static void s_test_symbolic_shape(void)
{
    s_b_t b;
    char err[512], t[160];
    gq_status rc;
    s_init(&b, 17);
    s_input(&b, "x", 1, "N,5,3");
    s_weight(&b, "h0", 3, (int64_t)1, (int64_t)1, (int64_t)8);
    s_ints(&b, "one", 1, (int64_t)1);
    s_ints(&b, "zero", 1, (int64_t)0);
    s_ints(&b, "eight", 1, (int64_t)8);
    s_ints(&b, "minus1", 1, (int64_t)-1);
    s_ints(&b, "end", 1, INT64_MAX);
    s_node(&b, "Shape", "shape", "x", "s");
    s_node(&b, "Gather", "gather", "s,zero", "n");
    Onnx__NodeProto *c = s_node(&b, "Concat", "concat", "one,n,eight", "hs");
    s_attr_int(&b, c, "axis", 0);
    s_node(&b, "Expand", "expand", "h0,hs", "h");
    s_node(&b, "Slice", "tail", "s,one,end", "tail");
    c = s_node(&b, "Concat", "concat2", "minus1,tail", "rs");
    s_attr_int(&b, c, "axis", 0);
    s_node(&b, "Reshape", "reshape", "x,rs", "xr");
    s_output(&b, "h");
    s_output(&b, "xr");
    gq_onnx_model_t *m = s_model(&b);
    gq_onnx_plan_t *p = s_plan(m, true, &rc, err, sizeof err);
    CHECK(p, "plan: %s", err);
    if (p) {
        CHECK(!strcmp(s_type(p, "h", 0, t, sizeof t), "f32[1,N,8]"), "h: %s", t);
        CHECK(!strcmp(s_type(p, "h", 7, t, sizeof t), "f32[1,7,8]"), "h at batch 7: %s", t);
        CHECK(!strcmp(s_type(p, "xr", 0, t, sizeof t), "f32[N,5,3]"), "xr: %s", t);
        CHECK(gq_onnx_plan_step_count(p) == 5 && gq_onnx_plan_folded_count(p) == 2,
              "%d steps, %d folded: want Slice and Concat folded", gq_onnx_plan_step_count(p),
              gq_onnx_plan_folded_count(p));
        int64_t shape[3] = {7, 5, 3};
        CHECK(s_same_outputs(m, shape, 3), "folded and unfolded outputs differ");
    }
    gq_onnx_plan_destroy(&p);
    gq_onnx_model_destroy(&m);
    s_fini(&b);
}

/* Constant blowups are left to run time (where the kernels refuse or allocate them). */
static void s_test_caps(void)
{
    s_b_t b;
    char err[512];
    gq_status rc;
    s_init(&b, 17);
    s_input(&b, "x", 1, "2");
    s_ints(&b, "huge", 2, (int64_t)1 << 20, (int64_t)1 << 20);
    s_ints(&b, "reps", 2, (int64_t)1 << 12, (int64_t)1 << 12);
    s_weight(&b, "w", 2, (int64_t)4, (int64_t)4);
    s_node(&b, "ConstantOfShape", "cos", "huge", "big");
    s_node(&b, "Tile", "tile", "w,reps", "tiled");
    s_node(&b, "Relu", "relu", "x", "y");
    s_output(&b, "y");
    s_output(&b, "big");
    s_output(&b, "tiled");
    gq_onnx_model_t *m = s_model(&b);
    gq_onnx_plan_t *p = s_plan(m, true, &rc, err, sizeof err);
    CHECK(p && gq_onnx_plan_step_count(p) == 3 && gq_onnx_plan_folded_count(p) == 0, "caps: %s",
          p ? "folded a blowup" : err);
    gq_onnx_plan_destroy(&p);
    gq_onnx_model_destroy(&m);
    s_fini(&b);
}

/* x [N,4] -> Relu a -> Sigmoid b -> Add(a, b) c -> Tanh d (output). Live bytes per step:
 * a; a, b; a, b, c; c, d: peak 3 values of 16 N bytes = 48 N. Arena (64-byte slots): a, b,
 * c in three slots, d in a's: 3 slots at batch 1 (192), 3 x 512 at batch 32. */
static void s_test_memory(void)
{
    s_b_t b;
    char err[512];
    gq_status rc;
    s_init(&b, 17);
    s_input(&b, "x", 1, "N,4");
    s_node(&b, "Relu", "a", "x", "a");
    s_node(&b, "Sigmoid", "b", "a", "b");
    s_node(&b, "Add", "c", "a,b", "c");
    s_node(&b, "Tanh", "d", "c", "d");
    s_output(&b, "d");
    gq_onnx_model_t *m = s_model(&b);
    gq_onnx_plan_t *p = s_plan(m, true, &rc, err, sizeof err);
    CHECK(p, "plan: %s", err);
    if (p) {
        gq_onnx_mem_t m1, m32;
        CHECK(!gq_onnx_plan_memory(p, 1, &m1, err, sizeof err) &&
                  !gq_onnx_plan_memory(p, 32, &m32, err, sizeof err),
              "memory: %s", err);
        CHECK(m1.peak_bytes == 48 && m1.peak_step == 2 && m1.arena_bytes == 192 &&
                  m1.nvalues == 4 && m1.nunknown == 0,
              "batch 1: peak %zu at %d, arena %zu, %d values, %d unknown", m1.peak_bytes,
              m1.peak_step, m1.arena_bytes, m1.nvalues, m1.nunknown);
        CHECK(m32.peak_bytes == 1536 && m32.arena_bytes == 1536, "batch 32: peak %zu, arena %zu",
              m32.peak_bytes, m32.arena_bytes);
        CHECK(gq_onnx_plan_peak_bytes(p, 32) == 1536, "peak_bytes");
        CHECK(!gq_onnx_plan_memory(p, 0, &m1, err, sizeof err) && m1.nunknown == 4 &&
                  m1.peak_bytes == 0,
              "symbolic batch: %d unknown", m1.nunknown);
    }
    gq_onnx_plan_destroy(&p);
    gq_onnx_model_destroy(&m);
    s_fini(&b);
}

/* Every kernel op has a shape function, but for the ones listed. */
static void s_test_coverage(void)
{
    static const char *const kernels[] = {
        "Conv", "MatMul", "Gemm",  "Reshape", "LSTM",           "GRU", "Resize", "Slice",
        "Pad",  "TopK",   "Where", "If",      "QuantizeLinear", "Xor", "Abs",    "HardSigmoid"};
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++)
        CHECK(gq_onnx_infer_has_fn(kernels[i]), "no shape function for %s", kernels[i]);
}

static int s_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Loads test_data_set_0's inputs of test dir; returns how many (-1: a dtype gq lacks). */
static int s_load_inputs(const char *dir, gq_view_t *in)
{
    int n = 0;
    char path[1200], err[512];
    for (; n < 16; n++) {
        snprintf(path, sizeof path, "%s/test_data_set_0/input_%d.pb", dir, n);
        if (access(path, R_OK))
            break;
        if (gq_onnx_tensor_load(path, NULL, &in[n].desc, &in[n].data, err, sizeof err)) {
            for (int k = 0; k < n; k++)
                free(in[k].data);
            return -1;
        }
        in[n].nbytes = gq_tdesc_nbytes(&in[n].desc);
    }
    return n;
}

/* Outputs whose every dim inference knows for these inputs. */
static int s_count_known(const gq_onnx_plan_t *p, const gq_view_t *in, int nin)
{
    gq_onnx_info_t *info = calloc((size_t)p->nslots + 1, sizeof *info);
    gq_onnx_syms_t syms = {.n = 0};
    gq_onnx_bind_t bind = {.in = in, .nin = nin};
    char err[512];
    int n = 0;
    if (info && !gq_onnx_infer(p, NULL, &bind, &syms, info, NULL, NULL, err, sizeof err))
        for (int o = 0; o < p->noutputs; o++)
            n += p->outputs[o] >= 0 && gq_onnx_info_known(&info[p->outputs[o]], NULL);
    free(info);
    return n;
}

static void s_test_suite(const char *root)
{
    DIR *d = opendir(root);
    if (!d) {
        printf("no ONNX node tests at %s: suite part skipped\n", root);
        return;
    }
    char **names = NULL;
    size_t nn = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') {
            names = realloc(names, (nn + 1) * sizeof *names);
            names[nn++] = strdup(e->d_name);
        }
    closedir(d);
    qsort(names, nn, sizeof *names, s_cmp);
    int runs = 0, outputs = 0, known = 0, folded_models = 0, folded_steps = 0, mismatched = 0;
    for (size_t t = 0; t < nn; t++) {
        char dir[1024], path[1100], err[512];
        gq_status rc;
        snprintf(dir, sizeof dir, "%s/%s", root, names[t]);
        snprintf(path, sizeof path, "%s/model.onnx", dir);
        gq_onnx_model_t *m = gq_onnx_model_load(path, NULL, &rc, err, sizeof err);
        gq_onnx_plan_t *p = s_plan(m, true, &rc, err, sizeof err);
        gq_onnx_plan_t *q = s_plan(m, false, &rc, err, sizeof err);
        CHECK(!p == !q, "%s: planned %s folding only: %s", names[t], p ? "with" : "without", err);
        CHECK(p || !m || rc == GQ_EUNSUPPORTED || rc == GQ_EDTYPE, "%s: %s", names[t], err);
        gq_view_t in[16], out[16], out2[16];
        int nin = p && q ? s_load_inputs(dir, in) : -1;
        if (nin >= 0) {
            folded_steps += gq_onnx_plan_folded_count(p);
            folded_models += gq_onnx_plan_folded_count(p) > 0;
            int no = gq_onnx_plan_output_count(p);
            gq_status r1 = gq_onnx_plan_run(p, in, nin, out, 16, err, sizeof err);
            gq_status r2 = gq_onnx_plan_run(q, in, nin, out2, 16, err, sizeof err);
            CHECK(!r1 == !r2, "%s: runs with and without folding: %d, %d", names[t], r1, r2);
            if (!r1 && !r2) {
                runs++;
                rc = gq_onnx_plan_check_outputs(p, in, nin, out, no, err, sizeof err);
                CHECK(!rc, "%s: %s", names[t], err);
                mismatched += rc != GQ_OK;
                for (int o = 0; o < no; o++) {
                    CHECK(gq_tdesc_equal(&out[o].desc, &out2[o].desc) &&
                              out[o].nbytes == out2[o].nbytes &&
                              !memcmp(out[o].data, out2[o].data, out[o].nbytes),
                          "%s: output %d differs with folding", names[t], o);
                    outputs++;
                }
                int k = s_count_known(p, in, nin);
                if (k < no && getenv("GQ_INFER_VERBOSE"))
                    printf("not fully inferred: %s (%d of %d)\n", names[t], k, no);
                known += k;
            }
            for (int o = 0; !r1 && o < no; o++)
                free(out[o].data);
            for (int o = 0; !r2 && o < no; o++)
                free(out2[o].data);
            for (int k = 0; k < nin; k++)
                free(in[k].data);
        }
        gq_onnx_plan_destroy(&p);
        gq_onnx_plan_destroy(&q);
        gq_onnx_model_destroy(&m);
        free(names[t]);
    }
    free(names);
    printf("node suite: %d models run, %d outputs checked against inference (%d fully inferred, "
           "%d wrong); %d models with steps folded (%d steps)\n",
           runs, outputs, known, mismatched, folded_models, folded_steps);
}

/* The shape tables are searched by halving: an entry out of order would be silently lost. */
static void s_test_tables_sorted(void)
{
    char err[256];
    CHECK(gq_onnx_infer_tables_sorted(err, sizeof err), "%s", err);
}

int main(void)
{
    s_test_tables_sorted();
    s_test_coverage();
    s_test_chain();
    s_test_mismatch();
    s_test_fold();
    s_test_symbolic_shape();
    s_test_caps();
    s_test_memory();
    const char *root = getenv("GQ_ONNX_TESTDATA") ? getenv("GQ_ONNX_TESTDATA") : S_TESTDATA;
    s_test_suite(root);
    printf("%d checks, %d failed\n", s_checks, s_failed);
    return s_failed != 0;
}
