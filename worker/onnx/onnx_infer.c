/* Shape inference at plan time: element type and dims of every value, from the graph
 * inputs' declared types (dims may be symbols: dim_param names, or unknown) and the
 * constants, through a shape function per op (onnx_shape_*.c; the walk, the table lookup and
 * the dim algebra are here). The functions follow the kernels' own rules (onnx_ops_*.c), so a
 * dim they call known is the dim the kernel makes: constant folding relies on it. Where an
 * op's inputs cannot fit (known dims that differ), planning fails naming node, op, input and
 * shapes; where a function cannot tell, or an op has none, the outputs are unknown, never an
 * error. Small integer tensors also carry their values (as dims, so symbols too): that is how
 * Shape -> Gather -> Concat -> Reshape chains resolve. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_shape.h"
#include "optable.h"
#include "util.h"

/* ---- dims ---- */

gq_onnx_dim_t gq_onnx_dim_mul(gq_onnx_dim_t a, gq_onnx_dim_t b)
{
    int64_t r;
    if ((s_isk(a) && a.c == 0) || (s_isk(b) && b.c == 0))
        return s_dk(0);
    if (a.sym < 0 || b.sym < 0 || (a.sym > 0 && b.sym > 0) || __builtin_mul_overflow(a.c, b.c, &r))
        return s_du();
    return (gq_onnx_dim_t){r, a.sym | b.sym};
}

gq_onnx_dim_t gq_onnx_dim_div(gq_onnx_dim_t a, gq_onnx_dim_t b)
{
    if (a.sym < 0 || b.sym < 0 || b.c <= 0 || a.c % b.c)
        return s_du();
    if (!b.sym)
        return (gq_onnx_dim_t){a.c / b.c, a.sym};
    return a.sym == b.sym ? s_dk(a.c / b.c) : s_du();
}

gq_onnx_dim_t gq_onnx_dim_add(gq_onnx_dim_t a, gq_onnx_dim_t b, int sign)
{
    if (s_isk(b) && b.c == 0)
        return a;
    if (sign < 0 && b.c == INT64_MIN)
        return s_du();
    int64_t r, bc = sign < 0 ? -b.c : b.c;
    if (sign > 0 && s_isk(a) && a.c == 0)
        return b;
    if (a.sym < 0 || a.sym != b.sym || __builtin_add_overflow(a.c, bc, &r))
        return s_du();
    if (a.sym && r == 0)
        return s_dk(0);
    return a.sym && r < 0 ? s_du() : (gq_onnx_dim_t){r, a.sym};
}

/* ---- infos ---- */

gq_onnx_dim_t gq_onnx_info_numel(const gq_onnx_info_t *v)
{
    gq_onnx_dim_t n = s_dk(1);
    if (v->rank < 0)
        return s_du();
    for (int d = 0; d < v->rank; d++)
        n = gq_onnx_dim_mul(n, v->dim[d]);
    return n;
}

bool gq_onnx_info_known(const gq_onnx_info_t *v, size_t *nbytes)
{
    size_t es = gq_dtype_size(v->dtype), nb = es;
    if (!es || v->rank < 0)
        return false;
    for (int d = 0; d < v->rank; d++)
        if (!s_isk(v->dim[d]) || v->dim[d].c < 0 ||
            __builtin_mul_overflow(nb, (size_t)v->dim[d].c, &nb))
            return false;
    if (nbytes)
        *nbytes = nb;
    return true;
}

void gq_onnx_info_desc(const gq_onnx_info_t *v, gq_tdesc_t *d)
{
    memset(d, 0, sizeof *d);
    d->dtype = v->dtype;
    d->ndim = v->rank;
    for (int i = 0; i < v->rank; i++)
        d->shape[i] = v->dim[i].c;
}

static void s_put(char *buf, size_t len, size_t *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_put(char *buf, size_t len, size_t *at, const char *fmt, ...)
{
    if (*at >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *at, len - *at, fmt, ap);
    va_end(ap);
    *at = n < 0 ? len : *at + (size_t)n;
}

char *gq_onnx_info_str(const gq_onnx_info_t *v, const gq_onnx_syms_t *syms, char *buf, size_t len)
{
    size_t at = 0;
    if (!len)
        return buf;
    buf[0] = '\0';
    s_put(buf, len, &at, "%s[", v->dtype ? gq_dtype_name(v->dtype) : "?");
    if (v->rank < 0)
        s_put(buf, len, &at, "*");
    for (int d = 0; d < v->rank; d++) {
        gq_onnx_dim_t x = v->dim[d];
        const char *sep = d ? "," : "";
        if (s_isk(x))
            s_put(buf, len, &at, "%s%lld", sep, (long long)x.c);
        else if (x.sym < 0 || !syms || x.sym > syms->n)
            s_put(buf, len, &at, "%s?", sep);
        else if (x.c == 1)
            s_put(buf, len, &at, "%s%s", sep, syms->name[x.sym - 1]);
        else
            s_put(buf, len, &at, "%s%lld*%s", sep, (long long)x.c, syms->name[x.sym - 1]);
    }
    s_put(buf, len, &at, "]");
    return buf;
}

void gq_onnx_info_const(gq_onnx_info_t *v, const gq_tdesc_t *d, const void *data)
{
    s_unk(v);
    v->dtype = d->dtype;
    v->rank = d->ndim;
    for (int i = 0; i < d->ndim; i++)
        v->dim[i] = s_dk(d->shape[i]);
    v->data = data;
    int64_t n = gq_tdesc_numel(d);
    if ((d->dtype == GQ_I64 || d->dtype == GQ_I32) && n <= GQ_ONNX_MAXVAL && data) {
        v->nval = (int)n;
        for (int i = 0; i < n; i++)
            v->val[i] = s_dk(gq_onnx_geti(data, d->dtype, i));
    }
}

bool gq_onnx_info_vals(const gq_onnx_info_t *v, gq_onnx_dim_t *buf, int max, int *n)
{
    if (!v || v->nval < 0 || v->nval > max || v->rank > 1 || v->rank < 0 ||
        (v->dtype != GQ_I64 && v->dtype != GQ_I32))
        return false;
    memcpy(buf, v->val, (size_t)v->nval * sizeof *buf);
    *n = v->nval;
    return true;
}

bool gq_onnx_info_consts(const gq_onnx_info_t *v, int64_t *buf, int max, int *n)
{
    gq_onnx_dim_t d[GQ_ONNX_MAXVAL];
    if (!gq_onnx_info_vals(v, d, max < GQ_ONNX_MAXVAL ? max : GQ_ONNX_MAXVAL, n))
        return false;
    for (int i = 0; i < *n; i++) {
        if (!s_isk(d[i]))
            return false;
        buf[i] = d[i].c;
    }
    return true;
}

bool gq_onnx_info_scalar(const gq_onnx_info_t *v, double *x)
{
    size_t nb;
    if (!v || !v->data || !gq_onnx_dtype_real(v->dtype) || !gq_onnx_info_known(v, &nb) ||
        nb != gq_dtype_size(v->dtype))
        return false;
    *x = gq_onnx_getd(v->data, v->dtype, 0);
    return true;
}

/* ---- messages and attributes ---- */

const char *gq_onnx_dim_str(gq_onnx_dim_t d, const gq_onnx_shape_ctx_t *c, char *buf, size_t len)
{
    gq_onnx_info_t v;
    s_unk(&v);
    v.dtype = GQ_I64, v.rank = 1, v.dim[0] = d;
    gq_onnx_info_str(&v, c->syms, buf, len);
    size_t n = strlen(buf);
    if (n >= 5) { /* "i64[x]" -> "x" */
        memmove(buf, buf + 4, n - 5);
        buf[n - 5] = '\0';
    }
    return buf;
}

bool gq_onnx_shape_attr_k(const Onnx__NodeProto *n, const char *name, int want, int64_t def,
                          int64_t *v)
{
    int got;
    if (!s_attr_ints(n, name, v, GQ_MAX_DIMS * 2, &got))
        return false;
    for (int i = 0; got < 0 && i < want; i++)
        v[i] = def;
    return got < 0 || got == want;
}

/* ---- the table ---- */

/* The shape function tables, one per family. */
static const struct {
    const gq_onnx_shape_t *t;
    const int *n;
} s_fam[] = {{gq_onnx_shapes_elem, &gq_onnx_shapes_elem_count},
             {gq_onnx_shapes_tensor, &gq_onnx_shapes_tensor_count},
             {gq_onnx_shapes_nn, &gq_onnx_shapes_nn_count}};
#define S_NFAM (sizeof s_fam / sizeof s_fam[0])

static gq_onnx_shape_fn s_lookup(const char *op)
{
    for (size_t f = 0; f < S_NFAM; f++) {
        size_t lo = 0, hi = (size_t)*s_fam[f].n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            int d = strcmp(s_fam[f].t[mid].op, op);
            if (!d)
                return s_fam[f].t[mid].fn;
            if (d < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    return NULL;
}

bool gq_onnx_infer_tables_sorted(char *err, size_t errlen)
{
    for (size_t f = 0; f < S_NFAM; f++)
        for (int i = 1; i < *s_fam[f].n; i++)
            if (strcmp(s_fam[f].t[i - 1].op, s_fam[f].t[i].op) >= 0) {
                gq_errf(err, errlen, "shape table %zu: '%s' comes before '%s'", f,
                        s_fam[f].t[i - 1].op, s_fam[f].t[i].op);
                return false;
            }
    return true;
}

bool gq_onnx_infer_has_fn(const char *op_type)
{
    return s_lookup(op_type) != NULL || !strcmp(op_type, "If") || !strcmp(op_type, "Loop") ||
           !strcmp(op_type, "Scan");
}

/* ---- the walk ---- */

static int s_sym(gq_onnx_syms_t *syms, const char *name)
{
    for (int i = 0; i < syms->n; i++)
        if (!strcmp(syms->name[i], name))
            return i + 1;
    if (syms->n == GQ_ONNX_MAXSYM)
        return -1;
    syms->name[syms->n++] = name;
    return syms->n;
}

/* A graph input's info: the bound tensor's exact shape, or its declared type. */
static void s_input_info(gq_onnx_info_t *v, const Onnx__ValueInfoProto *vi,
                         const gq_onnx_bind_t *bind, int i, gq_onnx_syms_t *syms)
{
    s_unk(v);
    if (bind && bind->in && i < bind->nin) { /* values too: shapes that depend on them */
        gq_onnx_info_const(v, &bind->in[i].desc, bind->in[i].data);
        return;
    }
    if (!vi || !vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return;
    const Onnx__TypeProto__Tensor *tt = vi->type->tensor_type;
    if (tt->has_elem_type)
        v->dtype = gq_onnx_dtype(tt->elem_type);
    if (!tt->shape || tt->shape->n_dim > GQ_MAX_DIMS)
        return;
    s_rank(v, v->dtype, (int)tt->shape->n_dim);
    for (int k = 0; k < v->rank; k++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[k];
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
            d->dim_value >= 0)
            v->dim[k] = s_dk(d->dim_value);
        else if (k == 0 && bind && bind->batch > 0)
            v->dim[k] = s_dk(bind->batch);
        else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                 d->dim_param && *d->dim_param)
            v->dim[k] = (gq_onnx_dim_t){1, s_sym(syms, d->dim_param)};
        if (v->dim[k].sym < 0)
            v->dim[k] = s_du();
    }
}

/* The common type of an If's two branch outputs. */
static void s_merge(gq_onnx_info_t *o, const gq_onnx_info_t *a, const gq_onnx_info_t *b)
{
    s_rank(o, a->dtype == b->dtype ? a->dtype : GQ_DTYPE_INVALID,
           a->rank == b->rank ? a->rank : -1);
    for (int d = 0; d < o->rank; d++)
        o->dim[d] = s_deq(a->dim[d], b->dim[d]) ? a->dim[d] : s_du();
}

static gq_status s_infer_if(const gq_onnx_step_t *st, const gq_onnx_info_t *info,
                            gq_onnx_syms_t *syms, gq_onnx_info_t *out, char *err, size_t errlen)
{
    gq_onnx_info_t *bi[2] = {NULL, NULL};
    gq_status rc = GQ_OK;
    gq_onnx_bind_t none = {0};
    for (int b = 0; b < 2 && !rc; b++) {
        const gq_onnx_plan_t *br = st->branch[b];
        if (!(bi[b] = calloc((size_t)br->nslots + 1, sizeof *bi[b]))) {
            gq_errf(err, errlen, "out of memory");
            rc = GQ_ENOMEM;
        } else {
            rc = gq_onnx_infer(br, info, &none, syms, bi[b], NULL, NULL, err, errlen);
        }
    }
    for (int o = 0; o < st->nout && !rc; o++) {
        const gq_onnx_plan_t *t = st->branch[0], *e = st->branch[1];
        if (o >= t->noutputs || o >= e->noutputs || t->outputs[o] < 0 || e->outputs[o] < 0)
            continue;
        s_merge(&out[o], &bi[0][t->outputs[o]], &bi[1][e->outputs[o]]);
    }
    free(bi[0]), free(bi[1]);
    return rc;
}

/* Loop and Scan: element types from the body; a carried value keeps its rank (its dims may
 * change between iterations), a scan output gains a dim of unknown length. */
static gq_status s_infer_body(const gq_onnx_step_t *st, const gq_onnx_info_t *info,
                              gq_onnx_syms_t *syms, gq_onnx_info_t *out, char *err, size_t errlen)
{
    const gq_onnx_plan_t *b = st->branch[0];
    bool loop = !strcmp(st->node->op_type, "Loop");
    int nstate =
        loop ? st->nin - 2 : st->nin - (int)gq_onnx_attr_int(st->node, "num_scan_inputs", 0);
    int skip = loop ? 1 : 0; /* Loop's body gives its condition first */
    gq_onnx_bind_t none = {0};
    gq_onnx_info_t *bi = calloc((size_t)b->nslots + 1, sizeof *bi);
    if (!bi) {
        gq_errf(err, errlen, "out of memory");
        return GQ_ENOMEM;
    }
    gq_status rc = gq_onnx_infer(b, info, &none, syms, bi, NULL, NULL, err, errlen);
    for (int o = 0; o < st->nout && !rc; o++) {
        int bo = o + skip;
        if (bo >= b->noutputs || b->outputs[bo] < 0)
            continue;
        const gq_onnx_info_t *v = &bi[b->outputs[bo]];
        bool scanned = o >= nstate;
        s_rank(&out[o], v->dtype,
               v->rank < 0 || v->rank + scanned > GQ_MAX_DIMS ? -1 : v->rank + scanned);
    }
    free(bi);
    return rc;
}

/* Outputs no kernel could make (negative or huge dims, too many) become unknown. */
static void s_sanitize(gq_onnx_info_t *v)
{
    if (v->rank > GQ_MAX_DIMS || v->rank < -1)
        v->rank = -1;
    for (int d = 0; d < v->rank; d++)
        if (v->dim[d].sym < 0 || v->dim[d].c < 0 || v->dim[d].c > GQ_MAX_DIM_SIZE ||
            (v->dim[d].sym && v->dim[d].c < 1))
            v->dim[d] = s_du();
    if (v->nval > GQ_ONNX_MAXVAL)
        v->nval = -1;
}

gq_status gq_onnx_infer(const gq_onnx_plan_t *p, const gq_onnx_info_t *parent_info,
                        const gq_onnx_bind_t *bind, gq_onnx_syms_t *syms, gq_onnx_info_t *info,
                        gq_onnx_infer_hook hook, void *arg, char *err, size_t errlen)
{
    for (int s = 0; s < p->nslots; s++)
        s_unk(&info[s]);
    for (int i = 0; i < p->ninit; i++) {
        if (p->sub_init) {
            gq_onnx_info_const(&info[p->init_slot[i]], &p->sub_init[i].desc, p->sub_init[i].data);
        } else {
            const gq_onnx_tensor_t *t = gq_onnx_model_tensor(p->model, i);
            gq_onnx_info_const(&info[p->init_slot[i]], &t->desc, t->data);
        }
    }
    for (int i = 0; i < p->nfold; i++)
        gq_onnx_info_const(&info[p->fold_slot[i]], &p->fold[i].desc, p->fold[i].data);
    for (int i = 0; i < p->ninputs; i++)
        s_input_info(&info[p->inputs[i]], p->input_info[i], bind, i, syms);
    for (int i = 0; parent_info && p->parent && i < p->nouter; i++) {
        int ps = gq_onnx_plan_slot((gq_onnx_plan_t *)p->parent, p->names[p->outer[i]], false);
        if (ps >= 0)
            info[p->outer[i]] = parent_info[ps];
    }
    int maxio = 1;
    for (int k = 0; k < p->nsteps; k++) {
        maxio = p->steps[k].nout > maxio ? p->steps[k].nout : maxio;
        maxio = p->steps[k].nin > maxio ? p->steps[k].nin : maxio;
    }
    gq_onnx_info_t *out = malloc((size_t)maxio * sizeof *out);
    const gq_onnx_info_t **in = malloc((size_t)maxio * sizeof *in);
    gq_status rc = GQ_OK;
    if (!out || !in) {
        gq_errf(err, errlen, "out of memory inferring shapes");
        rc = GQ_ENOMEM;
    }
    char cause[GQ_ERRLEN * 2];
    for (int k = 0; k < p->nsteps && !rc; k++) {
        const gq_onnx_step_t *st = &p->steps[k];
        for (int i = 0; i < st->nin; i++)
            in[i] = st->in[i] >= 0 ? &info[st->in[i]] : NULL;
        for (int o = 0; o < st->nout; o++)
            s_unk(&out[o]);
        gq_onnx_shape_ctx_t c = {.p = p,
                                 .n = st->node,
                                 .st = st,
                                 .in = in,
                                 .nin = st->nin,
                                 .out = out,
                                 .nout = st->nout,
                                 .syms = syms,
                                 .opset = p->opset,
                                 .err = cause,
                                 .errlen = sizeof cause};
        cause[0] = '\0';
        gq_onnx_shape_fn fn = st->branch[0] ? NULL : s_lookup(st->node->op_type);
        if (st->k == &gq_onnx_kernel_conv_maxpool) /* a fused step: the node is its Conv */
            fn = gq_onnx_shape_conv_maxpool;
        if (st->branch[0] && st->branch[1])
            rc = s_infer_if(st, info, syms, out, cause, sizeof cause);
        else if (st->branch[0])
            rc = s_infer_body(st, info, syms, out, cause, sizeof cause);
        else if (fn && st->nout > 0)
            rc = fn(&c);
        if (rc)
            gq_errf(err, errlen, "node '%s' (%s): %s", gq_onnx_node_name(st->node),
                    st->node->op_type, cause);
        for (int o = 0; o < st->nout && !rc; o++)
            s_sanitize(&out[o]);
        if (!rc && hook)
            rc = hook(arg, k, in, out, err, errlen);
        for (int o = 0; o < st->nout && !rc; o++)
            if (st->out[o] >= 0)
                info[st->out[o]] = out[o];
    }
    free(out);
    free(in);
    return rc;
}
