/* Runs of a plan: values per slot, freed to the plan's buffer pool after their last
 * reader; If steps run the branch their condition picks as a sub-plan reading outer values,
 * Loop and Scan steps run their body once per iteration the same way.
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

/* *dst = src without its ownership or device copy (the run that owns src frees both). */
static void s_borrow(gq_onnx_val_t *dst, const gq_onnx_val_t *src)
{
    *dst = *src;
    dst->owned = false;
    dst->dev = NULL;
    dst->dev_only = false;
}

/* Binds the outer values subgraph b reads from p's run e into b's run be (borrowed; on the
 * host: s_place_inputs read them back). */
static gq_status s_bind_outer(const gq_onnx_plan_t *p, const gq_onnx_plan_t *b, const s_env_t *e,
                              s_env_t *be, char *err, size_t errlen)
{
    for (int i = 0; i < b->nouter; i++) {
        int os = b->outer[i], ps = gq_onnx_plan_slot((gq_onnx_plan_t *)p, b->names[os], false);
        if (ps < 0 || !e->set[ps]) {
            gq_errf(err, errlen, "the subgraph reads '%s', which has no value", b->names[os]);
            return GQ_EFORMAT;
        }
        s_borrow(&be->vals[os], &e->vals[ps]);
        be->set[os] = true;
    }
    return GQ_OK;
}

/* Subgraph b's output o of run be into *dst, owned: moved when the run owns it, copied when
 * it is borrowed (an outer value or an input passed through). */
static gq_status s_take(const gq_onnx_plan_t *b, s_env_t *be, int o, gq_onnx_val_t *dst, char *err,
                        size_t errlen)
{
    int s = o < b->noutputs ? b->outputs[o] : -1;
    gq_onnx_val_t *v = s >= 0 && be->set[s] ? &be->vals[s] : NULL;
    memset(dst, 0, sizeof *dst);
    if (!v) {
        gq_errf(err, errlen, "subgraph output %d has no value", o);
        return GQ_EFORMAT;
    }
    if (v->owned) {
        *dst = *v;
        v->owned = false;
        return GQ_OK;
    }
    gq_status rc = gq_onnx_out(dst, &v->desc, err, errlen);
    if (!rc)
        GQ_ONNX_COPY(dst->data, v->data, v->nbytes);
    return rc;
}

/* Runs the branch of If step st that its condition picks; outs get the branch outputs. */
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
    if (!(rc = s_bind_outer(p, b, e, &be, err, errlen)))
        rc = s_run_steps(b, &be, err, errlen);
    for (int o = 0; o < b->noutputs && !rc; o++)
        rc = s_take(b, &be, o, &outs[o], err, errlen);
    s_env_free(b, &be);
    return rc;
}

/* Iterations one Loop or Scan may run: a loop without a trip count whose condition never
 * turns false would otherwise hold the worker for good. */
#define S_MAX_ITERS ((int64_t)1 << 20)

/* Values gathered over iterations (a scan output). */
typedef struct {
    gq_onnx_val_t *v;
    int64_t n, cap;
} s_list_t;

static gq_status s_list_push(s_list_t *l, gq_onnx_val_t *v, char *err, size_t errlen)
{
    if (l->n && !gq_tdesc_equal(&l->v[0].desc, &v->desc)) {
        char a[96], b[96];
        gq_errf(err, errlen, "a scan output is %s in iteration %lld, %s in the first",
                gq_tdesc_str(&v->desc, a, sizeof a), (long long)l->n,
                gq_tdesc_str(&l->v[0].desc, b, sizeof b));
        return GQ_ESHAPE;
    }
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 16;
        gq_onnx_val_t *nv = realloc(l->v, (size_t)cap * sizeof *nv);
        if (!nv) {
            gq_errf(err, errlen, "out of memory gathering a scan output");
            return GQ_ENOMEM;
        }
        l->v = nv, l->cap = cap;
    }
    l->v[l->n++] = *v;
    memset(v, 0, sizeof *v);
    return GQ_OK;
}

static void s_list_free(const gq_onnx_plan_t *p, s_list_t *l)
{
    for (int64_t i = 0; i < l->n; i++)
        s_release(p, &l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* out = the list's values stacked along a new axis (reversed when rev): [..., n, ...]. With
 * no values, an empty [0] of dtype dt. */
static gq_status s_stack(const s_list_t *l, int axis, bool rev, gq_dtype_t dt, gq_onnx_val_t *out,
                         char *err, size_t errlen)
{
    gq_tdesc_t od = {.dtype = dt, .ndim = 1, .shape = {0}};
    if (l->n) {
        const gq_tdesc_t *ed = &l->v[0].desc;
        if (axis < 0 || axis > ed->ndim || ed->ndim >= GQ_MAX_DIMS) {
            gq_errf(err, errlen, "scan output axis %d for rank %d", axis, ed->ndim);
            return GQ_EPARAM;
        }
        od = *ed;
        od.ndim = ed->ndim + 1;
        for (int d = ed->ndim; d > axis; d--)
            od.shape[d] = ed->shape[d - 1];
        od.shape[axis] = l->n;
    }
    gq_status rc = gq_onnx_out(out, &od, err, errlen);
    if (rc || !l->n)
        return rc;
    int64_t outer = 1;
    for (int d = 0; d < axis; d++)
        outer *= od.shape[d];
    size_t inner = outer ? l->v[0].nbytes / (size_t)outer : 0;
    for (int64_t t = 0; t < l->n; t++) {
        int64_t j = rev ? l->n - 1 - t : t;
        for (int64_t o = 0; o < outer; o++)
            GQ_ONNX_COPY((char *)out->data + ((size_t)(o * l->n + j)) * inner,
                         (const char *)l->v[t].data + (size_t)o * inner, inner);
    }
    return GQ_OK;
}

/* After an iteration of body b (run be): its outputs first .. first + N - 1 become the carried
 * values (each taken before the old one goes), the next K join the scan outputs. */
static gq_status s_collect(const gq_onnx_plan_t *b, s_env_t *be, int first, gq_onnx_val_t *carry,
                           int N, s_list_t *scan, int K, char *err, size_t errlen)
{
    gq_status rc = GQ_OK;
    for (int i = 0; i < N && !rc; i++) {
        gq_onnx_val_t nv;
        if (!(rc = s_take(b, be, first + i, &nv, err, errlen))) {
            s_release(b, &carry[i]);
            carry[i] = nv;
        }
    }
    for (int k = 0; k < K && !rc; k++) {
        gq_onnx_val_t v;
        if (!(rc = s_take(b, be, first + N + k, &v, err, errlen)) &&
            (rc = s_list_push(&scan[k], &v, err, errlen)))
            s_release(b, &v);
    }
    return rc;
}

/* The final carried values into outs[0..N): moved when owned, copied when still borrowed
 * (no iteration ran). */
static gq_status s_give(gq_onnx_val_t *carry, int N, gq_onnx_val_t *outs, char *err, size_t errlen)
{
    gq_status rc = GQ_OK;
    for (int i = 0; i < N && !rc; i++) {
        if (carry[i].owned) {
            outs[i] = carry[i];
            carry[i].owned = false;
        } else if (!(rc = gq_onnx_out(&outs[i], &carry[i].desc, err, errlen))) {
            GQ_ONNX_COPY(outs[i].data, carry[i].data, carry[i].nbytes);
        }
    }
    return rc;
}

/* A bool or integer scalar of a subgraph's run into slot s. */
static gq_status s_set_scalar(s_env_t *be, int s, gq_dtype_t dt, int64_t v, char *err,
                              size_t errlen)
{
    gq_tdesc_t d = {.dtype = dt, .ndim = 0};
    gq_status rc = gq_onnx_out(&be->vals[s], &d, err, errlen);
    if (!rc)
        gq_onnx_seti(be->vals[s].data, dt, 0, v), be->set[s] = true;
    return rc;
}

/* Whether v holds one element that is not 0 (a condition). */
static gq_status s_truth(const gq_onnx_val_t *v, const char *what, bool *t, char *err,
                         size_t errlen)
{
    if (!v || gq_tdesc_numel(&v->desc) != 1 || !gq_onnx_dtype_real(v->desc.dtype)) {
        gq_errf(err, errlen, "%s must be one bool", what);
        return GQ_ESHAPE;
    }
    *t = gq_onnx_getd(v->data, v->desc.dtype, 0) != 0;
    return GQ_OK;
}

/* Loop: inputs M (trip count, optional), cond (optional), N carried values; the body takes
 * (iteration, cond, N carried) and gives (cond, N carried, K scan values); outs get the N
 * final values and the K scan outputs stacked along a new first axis. */
static gq_status s_run_loop(const gq_onnx_plan_t *p, const gq_onnx_step_t *st, const s_env_t *e,
                            gq_onnx_val_t *const *in, gq_onnx_val_t *outs, char *err, size_t errlen)
{
    gq_onnx_plan_t *b = st->branch[0];
    int N = st->nin - 2, K = b->noutputs - 1 - N;
    if (N < 0 || K < 0 || b->ninputs != N + 2 || st->nout != N + K) {
        gq_errf(err, errlen,
                "the body takes %d inputs and gives %d outputs; the node has %d inputs and %d "
                "outputs",
                b->ninputs, b->noutputs, st->nin, st->nout);
        return GQ_EFORMAT;
    }
    int64_t trips = INT64_MAX;
    bool cond = true;
    gq_status rc = GQ_OK;
    if (in[0] && (gq_tdesc_numel(&in[0]->desc) != 1 || !gq_onnx_dtype_int(in[0]->desc.dtype))) {
        gq_errf(err, errlen, "the trip count M must be one integer");
        return GQ_ESHAPE;
    }
    if (in[0])
        trips = gq_onnx_geti(in[0]->data, in[0]->desc.dtype, 0);
    if (in[1] && (rc = s_truth(in[1], "the condition", &cond, err, errlen)))
        return rc;
    gq_onnx_val_t carry[GQ_MAX_INPUTS * 4];
    s_list_t scan[GQ_MAX_OUTPUTS];
    memset(scan, 0, sizeof scan);
    for (int i = 0; i < N; i++) { /* borrowed until the first iteration replaces them */
        if (!in[2 + i]) {
            gq_errf(err, errlen, "loop-carried value %d is missing", i);
            return GQ_EFORMAT;
        }
        s_borrow(&carry[i], in[2 + i]);
    }
    int64_t it = 0;
    for (; !rc && it < trips && cond; it++) {
        s_env_t be;
        if (it >= S_MAX_ITERS) {
            gq_errf(err, errlen, "over %lld iterations", (long long)S_MAX_ITERS);
            rc = GQ_ETOOBIG;
            break;
        }
        if ((rc = s_env_new(b, &be, err, errlen)))
            break;
        if (!(rc = s_bind_outer(p, b, e, &be, err, errlen)) &&
            !(rc = s_set_scalar(&be, b->inputs[0], GQ_I64, it, err, errlen)) &&
            !(rc = s_set_scalar(&be, b->inputs[1], GQ_BOOL, cond, err, errlen))) {
            for (int i = 0; i < N; i++) {
                s_borrow(&be.vals[b->inputs[2 + i]], &carry[i]);
                be.set[b->inputs[2 + i]] = true;
            }
            rc = s_run_steps(b, &be, err, errlen);
        }
        int c = b->outputs[0];
        if (!rc)
            rc = s_truth(c >= 0 && be.set[c] ? &be.vals[c] : NULL, "the body's condition", &cond,
                         err, errlen);
        if (!rc)
            rc = s_collect(b, &be, 1, carry, N, scan, K, err, errlen);
        s_env_free(b, &be);
    }
    if (!rc)
        rc = s_give(carry, N, outs, err, errlen);
    for (int k = 0; k < K && !rc; k++)
        rc = s_stack(&scan[k], 0, false, GQ_F32, &outs[N + k], err, errlen);
    for (int i = 0; i < N; i++)
        s_release(p, &carry[i]);
    for (int k = 0; k < K; k++)
        s_list_free(p, &scan[k]);
    return rc;
}

/* The attribute name's ints for n values (default 0 each); GQ_EPARAM when of another count. */
static gq_status s_scan_ints(const Onnx__NodeProto *nd, const char *name, int64_t *v, int n,
                             char *err, size_t errlen)
{
    int got;
    gq_status rc = gq_onnx_attr_ints(nd, name, v, GQ_MAX_OUTPUTS, &got, err, errlen);
    if (!rc && got >= 0 && got != n) {
        gq_errf(err, errlen, "%s has %d values for %d scans", name, got, n);
        rc = GQ_EPARAM;
    }
    for (int i = 0; !rc && got < 0 && i < n; i++)
        v[i] = 0;
    return rc;
}

/* Scan (opset 9+): inputs N initial states and M sequences; the body takes (N states, M
 * slices) and gives (N states, K scan values); outs get the N final states and the K scan
 * outputs. Slices run along scan_input_axes (reversed where scan_input_directions is 1),
 * outputs stack along scan_output_axes (reversed where scan_output_directions is 1). */
static gq_status s_run_scan(const gq_onnx_plan_t *p, const gq_onnx_step_t *st, const s_env_t *e,
                            gq_onnx_val_t *const *in, gq_onnx_val_t *outs, char *err, size_t errlen)
{
    gq_onnx_plan_t *b = st->branch[0];
    int M = (int)gq_onnx_attr_int(st->node, "num_scan_inputs", 0), N = st->nin - M;
    int K = b->noutputs - N;
    int64_t iax[GQ_MAX_OUTPUTS], idir[GQ_MAX_OUTPUTS], oax[GQ_MAX_OUTPUTS], odir[GQ_MAX_OUTPUTS];
    if (M < 1 || N < 0 || K < 0 || M > GQ_MAX_OUTPUTS || K > GQ_MAX_OUTPUTS ||
        b->ninputs != N + M || st->nout != N + K) {
        gq_errf(err, errlen,
                "num_scan_inputs %d: the body takes %d inputs and gives %d outputs; the node "
                "has %d inputs and %d outputs",
                M, b->ninputs, b->noutputs, st->nin, st->nout);
        return GQ_EFORMAT;
    }
    gq_status rc;
    if ((rc = s_scan_ints(st->node, "scan_input_axes", iax, M, err, errlen)) ||
        (rc = s_scan_ints(st->node, "scan_input_directions", idir, M, err, errlen)) ||
        (rc = s_scan_ints(st->node, "scan_output_axes", oax, K, err, errlen)) ||
        (rc = s_scan_ints(st->node, "scan_output_directions", odir, K, err, errlen)))
        return rc;
    int64_t T = -1;
    for (int j = 0; j < M; j++) {
        const gq_onnx_val_t *x = in[N + j];
        if (!x || (rc = gq_onnx_axis(iax[j], x->desc.ndim, &iax[j], err, errlen)))
            return rc ? rc : GQ_EFORMAT;
        if (T >= 0 && x->desc.shape[iax[j]] != T) {
            gq_errf(err, errlen, "scan input %d has %lld steps, the first %lld", j,
                    (long long)x->desc.shape[iax[j]], (long long)T);
            return GQ_ESHAPE;
        }
        T = x->desc.shape[iax[j]];
    }
    gq_onnx_val_t carry[GQ_MAX_INPUTS * 4];
    s_list_t scan[GQ_MAX_OUTPUTS];
    memset(scan, 0, sizeof scan);
    for (int i = 0; i < N; i++) {
        if (!in[i]) {
            gq_errf(err, errlen, "state %d is missing", i);
            return GQ_EFORMAT;
        }
        s_borrow(&carry[i], in[i]);
    }
    for (int64_t t = 0; !rc && t < T; t++) {
        s_env_t be;
        if ((rc = s_env_new(b, &be, err, errlen)))
            break;
        rc = s_bind_outer(p, b, e, &be, err, errlen);
        for (int i = 0; i < N && !rc; i++) {
            s_borrow(&be.vals[b->inputs[i]], &carry[i]);
            be.set[b->inputs[i]] = true;
        }
        for (int j = 0; j < M && !rc; j++) { /* slice t of sequence j, its axis dropped */
            const gq_onnx_val_t *x = in[N + j];
            int ax = (int)iax[j];
            int64_t at = idir[j] ? T - 1 - t : t, outer = 1;
            gq_tdesc_t sd = x->desc;
            for (int d = 0; d < ax; d++)
                outer *= sd.shape[d];
            for (int d = ax; d + 1 < sd.ndim; d++)
                sd.shape[d] = sd.shape[d + 1];
            sd.ndim--;
            gq_onnx_val_t *v = &be.vals[b->inputs[N + j]];
            if ((rc = gq_onnx_out(v, &sd, err, errlen)))
                break;
            be.set[b->inputs[N + j]] = true;
            size_t inner = outer ? v->nbytes / (size_t)outer : 0;
            for (int64_t o = 0; o < outer; o++)
                GQ_ONNX_COPY((char *)v->data + (size_t)o * inner,
                             (const char *)x->data + (size_t)(o * T + at) * inner, inner);
        }
        if (!rc)
            rc = s_run_steps(b, &be, err, errlen);
        if (!rc)
            rc = s_collect(b, &be, 0, carry, N, scan, K, err, errlen);
        s_env_free(b, &be);
    }
    if (!rc)
        rc = s_give(carry, N, outs, err, errlen);
    for (int k = 0; k < K && !rc; k++) {
        int64_t ax = oax[k];
        int rank = scan[k].n ? scan[k].v[0].desc.ndim + 1 : 1;
        if ((rc = gq_onnx_axis(ax, rank, &ax, err, errlen)))
            break;
        rc = s_stack(&scan[k], (int)ax, odir[k] != 0, GQ_F32, &outs[N + k], err, errlen);
    }
    for (int i = 0; i < N; i++)
        s_release(p, &carry[i]);
    for (int k = 0; k < K; k++)
        s_list_free(p, &scan[k]);
    return rc;
}

/* Runs control-flow step st (If, Loop or Scan) through its subgraphs. */
static gq_status s_run_ctrl(const gq_onnx_plan_t *p, const gq_onnx_step_t *st, const s_env_t *e,
                            gq_onnx_val_t *const *in, gq_onnx_val_t *outs, char *err, size_t errlen)
{
    const char *op = st->node->op_type;
    return !strcmp(op, "If")     ? s_run_if(p, st, e, in, outs, err, errlen)
           : !strcmp(op, "Loop") ? s_run_loop(p, st, e, in, outs, err, errlen)
                                 : s_run_scan(p, st, e, in, outs, err, errlen);
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
                 ? s_run_ctrl(p, st, e, ins, outs, kerr, sizeof kerr)
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
