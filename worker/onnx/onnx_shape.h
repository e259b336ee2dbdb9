/* What the shape functions (onnx_shape_elem.c, onnx_shape_tensor.c, onnx_shape_nn.c) share
 * with each other and with the walk that calls them (onnx_infer.c): a step's context, the
 * tables, the dim algebra and the helpers of infos, messages and attributes. The small helpers
 * are static inline here and keep their file-local s_ names. */
#ifndef GQ_ONNX_SHAPE_H
#define GQ_ONNX_SHAPE_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "onnx_infer.h"

/* One step as its shape function sees it: it reads in[], fills out[] (set to unknown before
 * the call) and, when the inputs cannot fit, writes the cause to err and returns GQ_ESHAPE. */
typedef struct {
    const gq_onnx_plan_t *p;
    const Onnx__NodeProto *n;
    const gq_onnx_step_t *st;
    const gq_onnx_info_t *const *in; /* NULL entries: omitted inputs */
    int nin;
    gq_onnx_info_t *out;
    int nout;
    const gq_onnx_syms_t *syms;
    int opset;
    char *err; /* the cause, without node and op (the walk adds them) */
    size_t errlen;
} gq_onnx_shape_ctx_t;

typedef gq_status (*gq_onnx_shape_fn)(gq_onnx_shape_ctx_t *c);

/* The fused Conv(+Act) -> MaxPool step (onnx_ops_convpool.c): the conv's dims, pooled. */
gq_status gq_onnx_shape_conv_maxpool(gq_onnx_shape_ctx_t *c);

typedef struct {
    const char *op;
    gq_onnx_shape_fn fn;
} gq_onnx_shape_t;

/* Shape function tables, one per file (onnx_shape_<family>.c), each sorted by op (strcmp):
 * the lookup (onnx_infer.c) halves them. */
#define GQ_ONNX_SHAPE_FAMILY(F)                                                                    \
    extern const gq_onnx_shape_t gq_onnx_shapes_##F[];                                             \
    extern const int gq_onnx_shapes_##F##_count
GQ_ONNX_SHAPE_FAMILY(elem);
GQ_ONNX_SHAPE_FAMILY(tensor);
GQ_ONNX_SHAPE_FAMILY(nn);

static inline gq_onnx_dim_t s_dk(int64_t c)
{
    return (gq_onnx_dim_t){c, 0};
}

static inline gq_onnx_dim_t s_du(void)
{
    return (gq_onnx_dim_t){0, -1};
}

static inline bool s_isk(gq_onnx_dim_t d)
{
    return d.sym == 0;
}

/* Known to be equal (the same number, or the same multiple of one symbol). */
static inline bool s_deq(gq_onnx_dim_t a, gq_onnx_dim_t b)
{
    return a.sym >= 0 && a.sym == b.sym && a.c == b.c;
}

/* Known to differ: two different numbers. */
static inline bool s_dne(gq_onnx_dim_t a, gq_onnx_dim_t b)
{
    return s_isk(a) && s_isk(b) && a.c != b.c;
}

/* a * b; unknown where it cannot tell (a symbol times a symbol, overflow). */
gq_onnx_dim_t gq_onnx_dim_mul(gq_onnx_dim_t a, gq_onnx_dim_t b);

/* a / b when it divides exactly. */
gq_onnx_dim_t gq_onnx_dim_div(gq_onnx_dim_t a, gq_onnx_dim_t b);

/* a + b (sign > 0) or a - b (sign < 0); unknown where it cannot tell. */
gq_onnx_dim_t gq_onnx_dim_add(gq_onnx_dim_t a, gq_onnx_dim_t b, int sign);

/* d as gq_onnx_info_str writes a dim ("32", "N", "2*N", "?") into buf. */
const char *gq_onnx_dim_str(gq_onnx_dim_t d, const gq_onnx_shape_ctx_t *c, char *buf, size_t len);

static inline void s_unk(gq_onnx_info_t *v)
{
    memset(v, 0, sizeof *v);
    v->rank = -1;
    v->nval = -1;
}

/* o gets x's type (dtype, rank, dims), nothing else. */
static inline void s_type(gq_onnx_info_t *o, const gq_onnx_info_t *x)
{
    s_unk(o);
    if (!x)
        return;
    o->dtype = x->dtype;
    o->rank = x->rank;
    memcpy(o->dim, x->dim, sizeof o->dim);
}

static inline void s_rank(gq_onnx_info_t *o, gq_dtype_t dt, int rank)
{
    s_unk(o);
    o->dtype = dt;
    o->rank = rank >= 0 && rank <= GQ_MAX_DIMS ? rank : -1;
    for (int d = 0; d < GQ_MAX_DIMS; d++)
        o->dim[d] = s_du();
}

/* v's element count. */
gq_onnx_dim_t gq_onnx_info_numel(const gq_onnx_info_t *v);

/* The values of an integer input of rank 0 or 1 (how gq_onnx_ints reads one), as dims. */
bool gq_onnx_info_vals(const gq_onnx_info_t *v, gq_onnx_dim_t *buf, int max, int *n);

/* The same, every value a known number. */
bool gq_onnx_info_consts(const gq_onnx_info_t *v, int64_t *buf, int max, int *n);

/* A constant real scalar (one element, any real dtype). */
bool gq_onnx_info_scalar(const gq_onnx_info_t *v, double *x);

static inline const gq_onnx_info_t *s_in(const gq_onnx_shape_ctx_t *c, int i)
{
    return i < c->nin ? c->in[i] : NULL;
}

static inline const char *s_iname(const gq_onnx_shape_ctx_t *c, int i)
{
    if (i < (int)c->n->n_input)
        return c->n->input[i];
    return c->st->in[i] >= 0 ? c->p->names[c->st->in[i]] : "";
}

static inline gq_status s_fail(gq_onnx_shape_ctx_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline gq_status s_fail(gq_onnx_shape_ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return GQ_ESHAPE;
}

/* "input 1 'W' f32[8,3,3,3]" into buf. */
static inline const char *s_idesc(const gq_onnx_shape_ctx_t *c, int i, char *buf, size_t len)
{
    char t[128];
    snprintf(buf, len, "input %d '%s' %s", i, s_iname(c, i),
             gq_onnx_info_str(c->in[i], c->syms, t, sizeof t));
    return buf;
}

static inline bool s_attr_ints(const Onnx__NodeProto *n, const char *name, int64_t *buf, int max,
                               int *k)
{
    char e[8];
    return gq_onnx_attr_ints(n, name, buf, max, k, e, sizeof e) == GQ_OK;
}

/* An ints attribute of exactly want values, def everywhere when absent. */
bool gq_onnx_shape_attr_k(const Onnx__NodeProto *n, const char *name, int want, int64_t def,
                          int64_t *v);

static inline bool s_axis(int64_t a, int rank, int *out)
{
    if (a < -rank || a >= rank)
        return false;
    *out = (int)(a < 0 ? a + rank : a);
    return true;
}

static inline gq_status s_f_same(gq_onnx_shape_ctx_t *c)
{
    s_type(&c->out[0], s_in(c, 0));
    return GQ_OK;
}

/* Identity-like: type and values pass. */
static inline gq_status s_f_ident(gq_onnx_shape_ctx_t *c)
{
    const gq_onnx_info_t *x = s_in(c, 0);
    s_type(&c->out[0], x);
    if (x && x->nval >= 0) {
        c->out[0].nval = x->nval;
        memcpy(c->out[0].val, x->val, sizeof x->val);
    }
    return GQ_OK;
}

/* Broadcasts b into acc (NumPy rules). what names the operands in an error: input ia
 * against input ib, or "the inputs before it" when ib < 0. */
gq_status gq_onnx_shape_bcast(gq_onnx_shape_ctx_t *c, gq_onnx_info_t *acc, const gq_onnx_info_t *b,
                              int ia, int ib);

#endif
