/* ONNX reductions: ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp (axes as an
 * attribute before opset 18 — 13 for ReduceSum — and as an input after), ArgMax/ArgMin,
 * TopK and Hardmax. Any real dtype; accumulation in double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"
#include "par.h"
#include "util.h"

typedef enum {
    S_SUM,
    S_MEAN,
    S_MAX,
    S_MIN,
    S_PROD,
    S_L1,
    S_L2,
    S_SUMSQ,
    S_LOGSUM,
    S_LOGSUMEXP,
} s_red_t;

/* Which dims a reduction folds: red[d]; false everywhere with *noop when the op is the
 * identity (noop_with_empty_axes and no axes). */
static gq_status s_red_axes(const Onnx__NodeProto *n, int opset, bool axes_input,
                            gq_onnx_val_t *const *in, int nin, int rank, bool *red, bool *noop,
                            char *err, size_t errlen)
{
    int64_t axes[GQ_MAX_DIMS * 2];
    int na = -1;
    gq_status rc;
    if (axes_input) {
        rc = nin > 1 && in[1] ? gq_onnx_ints(in[1], "axes", axes, GQ_MAX_DIMS * 2, &na, err, errlen)
                              : GQ_OK;
    } else {
        rc = gq_onnx_attr_ints(n, "axes", axes, GQ_MAX_DIMS * 2, &na, err, errlen);
    }
    if (rc)
        return rc;
    (void)opset;
    *noop = na <= 0 && gq_onnx_attr_int(n, "noop_with_empty_axes", 0);
    for (int d = 0; d < rank; d++)
        red[d] = na <= 0 && !*noop;
    for (int i = 0; i < na; i++) {
        int64_t a;
        if ((rc = gq_onnx_axis(axes[i], rank, &a, err, errlen)))
            return rc;
        red[a] = true;
    }
    return GQ_OK;
}

static double s_red_init(s_red_t k)
{
    return k == S_PROD ? 1 : k == S_MAX ? -INFINITY : k == S_MIN ? INFINITY : 0;
}

static double s_red_step(s_red_t k, double acc, double v)
{
    switch (k) {
    case S_MAX:
        return v > acc || isnan(v) ? v : acc;
    case S_MIN:
        return v < acc || isnan(v) ? v : acc;
    case S_PROD:
        return acc * v;
    case S_L1:
        return acc + fabs(v);
    case S_L2:
    case S_SUMSQ:
        return acc + v * v;
    default:
        return acc + v;
    }
}

static double s_red_final(s_red_t k, double acc, int64_t cnt, double mx)
{
    switch (k) {
    case S_MEAN:
        return acc / (double)cnt;
    case S_L2:
        return sqrt(acc);
    case S_LOGSUM:
        return log(acc);
    case S_LOGSUMEXP:
        return mx + log(acc);
    default:
        return acc;
    }
}

typedef struct {
    s_red_t kind;
    gq_dtype_t dt;
    const void *x;
    void *y;
    bool noop;
    int64_t cnt; /* elements a group */
    /* reduced and kept dims, innermost first, with their strides in x */
    int nr, nk;
    int64_t rshape[GQ_MAX_DIMS], rstride[GQ_MAX_DIMS], kshape[GQ_MAX_DIMS], kstride[GQ_MAX_DIMS];
} s_red_job_t;

static inline double s_red_get(const s_red_job_t *j, int64_t off)
{
    return j->dt == GQ_F32 ? ((const float *)j->x)[off] : gq_onnx_getd(j->x, j->dt, off);
}

/* The next reduced element's offset: idx (over the reduced dims, first fastest) and *off
 * advanced by one, as an odometer. */
static inline void s_red_next(const s_red_job_t *j, int64_t *idx, int64_t *off)
{
    for (int d = 0; d < j->nr; d++) {
        *off += j->rstride[d];
        if (++idx[d] < j->rshape[d])
            break;
        *off -= j->rstride[d] * idx[d];
        idx[d] = 0;
    }
}

/* Output g: its group's elements in input order (the order of the serial sum). */
static void s_red_group(void *ctx, int64_t g, int tid)
{
    (void)tid;
    const s_red_job_t *j = ctx;
    if (j->noop) {
        gq_onnx_setd(j->y, j->dt, g, gq_onnx_getd(j->x, j->dt, g));
        return;
    }
    int64_t base = 0, r = g;
    for (int d = 0; d < j->nk; d++)
        base += (r % j->kshape[d]) * j->kstride[d], r /= j->kshape[d];
    double mx = -INFINITY, acc = s_red_init(j->kind);
    for (int pass = j->kind == S_LOGSUMEXP ? 0 : 1; pass < 2; pass++) {
        int64_t idx[GQ_MAX_DIMS] = {0}, off = base;
        for (int64_t i = 0; i < j->cnt; i++) {
            double v = s_red_get(j, off);
            if (pass == 0)
                mx = v > mx ? v : mx;
            else
                acc = j->kind == S_LOGSUMEXP ? acc + exp(v - mx) : s_red_step(j->kind, acc, v);
            s_red_next(j, idx, &off);
        }
    }
    gq_onnx_setd(j->y, j->dt, g, s_red_final(j->kind, acc, j->cnt, mx));
}

#define S_RED_RUN 64 /* neighbouring outputs a s_red_run index computes */

/* Outputs that are neighbours in memory along x's innermost (kept) dim: index i is run
 * i % runs of row i / runs, where a row is the kept innermost dim and runs = its runs of up
 * to S_RED_RUN. The reduced elements stream in input order, each group's in the same order
 * as s_red_group takes them, and the inner loop runs over the run's outputs. */
static void s_red_run(void *ctx, int64_t i, int tid)
{
    (void)tid;
    const s_red_job_t *j = ctx;
    int64_t W = j->kshape[0], runs = (W + S_RED_RUN - 1) / S_RED_RUN;
    int64_t row = i / runs, q0 = (i % runs) * S_RED_RUN,
            m = W - q0 < S_RED_RUN ? W - q0 : S_RED_RUN;
    int64_t g0 = row * W + q0, base = q0, r = row;
    for (int d = 1; d < j->nk; d++)
        base += (r % j->kshape[d]) * j->kstride[d], r /= j->kshape[d];
    double acc[S_RED_RUN], mx[S_RED_RUN];
    for (int64_t k = 0; k < m; k++)
        acc[k] = s_red_init(j->kind), mx[k] = -INFINITY;
    for (int pass = j->kind == S_LOGSUMEXP ? 0 : 1; pass < 2; pass++) {
        int64_t idx[GQ_MAX_DIMS] = {0}, off = base;
        for (int64_t e = 0; e < j->cnt; e++) {
            const float *x = (const float *)j->x + off;
            bool f32 = j->dt == GQ_F32 && pass == 1;
            /* the common sums as plain loops (they vectorize), the rest through s_red_step */
            if (f32 && (j->kind == S_SUM || j->kind == S_MEAN || j->kind == S_LOGSUM)) {
                for (int64_t k = 0; k < m; k++)
                    acc[k] += x[k];
            } else if (f32 && (j->kind == S_SUMSQ || j->kind == S_L2)) {
                for (int64_t k = 0; k < m; k++)
                    acc[k] += (double)x[k] * x[k];
            } else if (f32 && j->kind != S_LOGSUMEXP) {
                for (int64_t k = 0; k < m; k++)
                    acc[k] = s_red_step(j->kind, acc[k], x[k]);
            } else {
                for (int64_t k = 0; k < m; k++) {
                    double v = s_red_get(j, off + k);
                    if (pass == 0)
                        mx[k] = v > mx[k] ? v : mx[k];
                    else
                        acc[k] = j->kind == S_LOGSUMEXP ? acc[k] + exp(v - mx[k])
                                                        : s_red_step(j->kind, acc[k], v);
                }
            }
            s_red_next(j, idx, &off);
        }
    }
    for (int64_t k = 0; k < m; k++)
        gq_onnx_setd(j->y, j->dt, g0 + k, s_red_final(j->kind, acc[k], j->cnt, mx[k]));
}

static gq_status s_reduce(s_red_t kind, const Onnx__NodeProto *n, int opset,
                          gq_onnx_val_t *const *in, int nin, gq_onnx_val_t *out, char *err,
                          size_t errlen)
{
    gq_status rc = gq_onnx_need(in, nin, 1, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    /* bool: ReduceMax / ReduceMin from opset 20 (any / all) */
    bool bool_ok = (kind == S_MAX || kind == S_MIN) && opset >= 20;
    if (!gq_onnx_dtype_real(x->dtype) || (x->dtype == GQ_BOOL && !bool_ok)) {
        gq_errf(err, errlen, "%s input is not supported", gq_dtype_name(x->dtype));
        return GQ_EDTYPE;
    }
    bool red[GQ_MAX_DIMS], noop, keep = gq_onnx_attr_int(n, "keepdims", 1) != 0;
    bool axes_input = opset >= 18 || (kind == S_SUM && opset >= 13);
    if ((rc = s_red_axes(n, opset, axes_input, in, nin, x->ndim, red, &noop, err, errlen)))
        return rc;
    gq_tdesc_t kd = *x, od = {.dtype = x->dtype};
    int64_t groups = 1, total = gq_tdesc_numel(x);
    for (int d = 0; d < x->ndim; d++) {
        if (red[d])
            kd.shape[d] = 1;
        groups *= kd.shape[d];
        if (!red[d] || keep)
            od.shape[od.ndim++] = kd.shape[d];
    }
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    s_red_job_t j = {.kind = kind,
                     .dt = x->dtype,
                     .x = in[0]->data,
                     .y = out->data,
                     .noop = noop,
                     .cnt = groups ? total / groups : 0};
    int64_t st = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        if (red[d])
            j.rshape[j.nr] = x->shape[d], j.rstride[j.nr++] = st;
        else
            j.kshape[j.nk] = x->shape[d], j.kstride[j.nk++] = st;
        st *= x->shape[d];
    }
    if (!noop && j.nk > 0 && j.kstride[0] == 1 && j.kshape[0] > 1) {
        int64_t runs = (j.kshape[0] + S_RED_RUN - 1) / S_RED_RUN;
        gq_par_for_work(groups / j.kshape[0] * runs, total * 4, s_red_run, &j);
    } else {
        gq_par_for_work(groups, total * 4, s_red_group, &j);
    }
    return GQ_OK;
}

#define S_RED_KERNEL(NAME, KIND)                                                                   \
    static gq_status NAME(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,  \
                          gq_onnx_val_t *out, int nout, char *err, size_t errlen)                  \
    {                                                                                              \
        (void)nout;                                                                                \
        return s_reduce(KIND, n, opset, in, nin, out, err, errlen);                                \
    }
S_RED_KERNEL(s_rsum, S_SUM)
S_RED_KERNEL(s_rmean, S_MEAN)
S_RED_KERNEL(s_rmax, S_MAX)
S_RED_KERNEL(s_rmin, S_MIN)
S_RED_KERNEL(s_rprod, S_PROD)
S_RED_KERNEL(s_rl1, S_L1)
S_RED_KERNEL(s_rl2, S_L2)
S_RED_KERNEL(s_rsumsq, S_SUMSQ)
S_RED_KERNEL(s_rlogsum, S_LOGSUM)
S_RED_KERNEL(s_rlogsumexp, S_LOGSUMEXP)

/* outer x len x inner around axis. */
static void s_around(const gq_tdesc_t *x, int64_t axis, int64_t *outer, int64_t *len,
                     int64_t *inner)
{
    *outer = *len = *inner = 1;
    for (int d = 0; d < x->ndim; d++)
        *(d < axis ? outer : d == axis ? len : inner) *= x->shape[d];
}

static gq_status s_arg(bool is_max, const Onnx__NodeProto *n, gq_onnx_val_t *const *in, int nin,
                       gq_onnx_val_t *out, char *err, size_t errlen)
{
    gq_status rc = gq_onnx_need(in, nin, 1, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    int64_t axis, outer, len, inner;
    if ((rc = gq_onnx_axis(gq_onnx_attr_int(n, "axis", 0), x->ndim, &axis, err, errlen)))
        return rc;
    if (!gq_onnx_dtype_real(x->dtype)) {
        gq_errf(err, errlen, "%s input is not supported", gq_dtype_name(x->dtype));
        return GQ_EDTYPE;
    }
    bool keep = gq_onnx_attr_int(n, "keepdims", 1),
         last = gq_onnx_attr_int(n, "select_last_index", 0);
    gq_tdesc_t od = {.dtype = GQ_I64};
    for (int d = 0; d < x->ndim; d++)
        if (d != axis || keep)
            od.shape[od.ndim++] = d == axis ? 1 : x->shape[d];
    s_around(x, axis, &outer, &len, &inner);
    if (len == 0) {
        gq_errf(err, errlen, "axis %lld has size 0", (long long)axis);
        return GQ_ESHAPE;
    }
    if ((rc = gq_onnx_out(out, &od, err, errlen)))
        return rc;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t q = 0; q < inner; q++) {
            int64_t best = 0, base = o * len * inner + q;
            double bv = gq_onnx_getd(in[0]->data, x->dtype, base);
            for (int64_t j = 1; j < len; j++) {
                double v = gq_onnx_getd(in[0]->data, x->dtype, base + j * inner);
                bool better = is_max ? (last ? v >= bv : v > bv) : (last ? v <= bv : v < bv);
                if (better)
                    bv = v, best = j;
            }
            ((int64_t *)out->data)[o * inner + q] = best;
        }
    return GQ_OK;
}

static gq_status s_argmax(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                          gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    return s_arg(true, n, in, nin, out, err, errlen);
}

static gq_status s_argmin(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                          gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset, (void)nout;
    return s_arg(false, n, in, nin, out, err, errlen);
}

/* ---- TopK ---- */

typedef struct {
    double v;
    int64_t i;
} s_vi_t;

/* Largest first (ties: lower index first). */
static int s_desc(const void *a, const void *b)
{
    const s_vi_t *x = a, *y = b;
    return x->v > y->v ? -1 : x->v < y->v ? 1 : (x->i > y->i) - (x->i < y->i);
}

static int s_asc(const void *a, const void *b)
{
    const s_vi_t *x = a, *y = b;
    return x->v < y->v ? -1 : x->v > y->v ? 1 : (x->i > y->i) - (x->i < y->i);
}

static gq_status s_topk(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                        gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    gq_status rc = gq_onnx_need(in, nin, opset >= 10 ? 2 : 1, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    int64_t axis, outer, len, inner, k = gq_onnx_attr_int(n, "k", -1);
    int nk;
    if (opset >= 10 && (rc = gq_onnx_ints(in[1], "K", &k, 1, &nk, err, errlen)))
        return rc;
    if ((rc = gq_onnx_axis(gq_onnx_attr_int(n, "axis", -1), x->ndim, &axis, err, errlen)))
        return rc;
    if (!gq_onnx_dtype_real(x->dtype) || nout < 2) {
        gq_errf(err, errlen, "%s input, %d outputs: want a real dtype and 2 outputs",
                gq_dtype_name(x->dtype), nout);
        return GQ_EDTYPE;
    }
    s_around(x, axis, &outer, &len, &inner);
    if (k < 0 || k > len) {
        gq_errf(err, errlen, "k = %lld is outside 0..%lld", (long long)k, (long long)len);
        return GQ_EPARAM;
    }
    gq_tdesc_t od = *x;
    od.shape[axis] = k;
    if ((rc = gq_onnx_out(&out[0], &od, err, errlen)))
        return rc;
    od.dtype = GQ_I64;
    if ((rc = gq_onnx_out(&out[1], &od, err, errlen)))
        return rc;
    s_vi_t *buf = malloc((size_t)(len + 1) * sizeof *buf);
    if (!buf) {
        gq_errf(err, errlen, "out of memory");
        return GQ_ENOMEM;
    }
    bool largest = gq_onnx_attr_int(n, "largest", 1) != 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t q = 0; q < inner; q++) {
            int64_t base = o * len * inner + q;
            for (int64_t j = 0; j < len; j++)
                buf[j].v = gq_onnx_getd(in[0]->data, x->dtype, base + j * inner), buf[j].i = j;
            qsort(buf, (size_t)len, sizeof *buf, largest ? s_desc : s_asc);
            for (int64_t j = 0; j < k; j++) {
                int64_t at = (o * k + j) * inner + q;
                memcpy((char *)out[0].data + at * (int64_t)gq_dtype_size(x->dtype),
                       (const char *)in[0]->data +
                           (base + buf[j].i * inner) * (int64_t)gq_dtype_size(x->dtype),
                       gq_dtype_size(x->dtype));
                ((int64_t *)out[1].data)[at] = buf[j].i;
            }
        }
    free(buf);
    return GQ_OK;
}

/* Hardmax: 1 at the first maximum along axis (opset < 13: of the input coerced to 2-D). */
static gq_status s_hardmax(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                           gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)nout;
    gq_status rc = gq_onnx_need(in, nin, 1, err, errlen);
    if (rc)
        return rc;
    const gq_tdesc_t *x = &in[0]->desc;
    int64_t axis, outer = 1, len = 1, inner = 1;
    if ((rc = gq_onnx_axis(gq_onnx_attr_int(n, "axis", opset < 13 ? 1 : -1), x->ndim, &axis, err,
                           errlen)))
        return rc;
    if (!gq_onnx_dtype_real(x->dtype)) {
        gq_errf(err, errlen, "%s input is not supported", gq_dtype_name(x->dtype));
        return GQ_EDTYPE;
    }
    for (int d = 0; d < x->ndim; d++)
        *(d < axis ? &outer : (opset < 13 || d == axis) ? &len : &inner) *= x->shape[d];
    if ((rc = gq_onnx_out(out, x, err, errlen)))
        return rc;
    memset(out->data, 0, out->nbytes);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t q = 0; q < inner && len; q++) {
            int64_t base = o * len * inner + q, best = 0;
            for (int64_t j = 1; j < len; j++)
                if (gq_onnx_getd(in[0]->data, x->dtype, base + j * inner) >
                    gq_onnx_getd(in[0]->data, x->dtype, base + best * inner))
                    best = j;
            gq_onnx_setd(out->data, x->dtype, base + best * inner, 1);
        }
    return GQ_OK;
}

const gq_onnx_kernel_t gq_onnx_kernels_reduce[] = {
    {"ReduceSum", 1, s_rsum},
    {"ReduceMean", 1, s_rmean},
    {"ReduceMax", 1, s_rmax},
    {"ReduceMin", 1, s_rmin},
    {"ReduceProd", 1, s_rprod},
    {"ReduceL1", 1, s_rl1},
    {"ReduceL2", 1, s_rl2},
    {"ReduceSumSquare", 1, s_rsumsq},
    {"ReduceLogSum", 1, s_rlogsum},
    {"ReduceLogSumExp", 1, s_rlogsumexp},
    {"ArgMax", 1, s_argmax},
    {"ArgMin", 1, s_argmin},
    {"TopK", 1, s_topk},
    {"Hardmax", 1, s_hardmax},
};
const int gq_onnx_kernels_reduce_count = GQ_ONNX_COUNT(gq_onnx_kernels_reduce);
