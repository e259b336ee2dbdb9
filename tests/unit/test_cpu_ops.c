/* The CPU backend through its function table, and every tensor op against a naive
 * reference written here: elementwise ops by unravelling each output index and
 * broadcasting by hand, reductions in long double, casts from their definitions. */
#include "backend.h"
#include "half.h"
#include "optable.h"
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_failures;
static gq_backend_t *s_be;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            if (++s_failures > 30) {                                                               \
                fprintf(stderr, "test_cpu_ops: too many failures\n");                              \
                exit(1);                                                                           \
            }                                                                                      \
        }                                                                                          \
    } while (0)

static uint64_t s_rng = 0x2545f4914f6cdd1du;

static uint64_t s_next(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

static int s_randint(int lo, int hi)
{
    return lo + (int)(s_next() % (uint64_t)(hi - lo + 1));
}

static double s_uniform(double lo, double hi)
{
    return lo + (hi - lo) * ((double)(s_next() >> 11) / 9007199254740992.0);
}

static void *s_xalloc(size_t n)
{
    void *p = aligned_alloc(64, (n + 64) / 64 * 64);
    if (!p) {
        fprintf(stderr, "test_cpu_ops: out of memory\n");
        exit(2);
    }
    return p;
}

/* ---- host tensors and naive element access ---- */

typedef struct {
    gq_tdesc_t d;
    void *p;
} s_tensor_t;

static s_tensor_t s_new(int dtype, const int64_t *shape, int ndim)
{
    s_tensor_t t = {.d = {.dtype = (gq_dtype_t)dtype, .ndim = ndim}};
    for (int i = 0; i < ndim; i++)
        t.d.shape[i] = shape[i];
    t.p = s_xalloc(gq_tdesc_nbytes(&t.d));
    return t;
}

static void s_del(s_tensor_t *t)
{
    free(t->p);
    t->p = NULL;
}

/* f16 from the definition of binary16, independent of half.c. */
static double s_ref_f16(uint16_t h)
{
    int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    double v = exp == 0x1f ? (mant ? NAN : INFINITY)
               : exp       ? ldexp(1024 + mant, exp - 25)
                           : ldexp(mant, -24);
    return (h & 0x8000) ? -v : v;
}

/* Nearest f16 value, ties to even, as a double. */
static double s_ref_round_f16(double x)
{
    if (isnan(x) || isinf(x))
        return x;
    int e;
    frexp(fabs(x), &e);
    int binade = e - 1 < -14 ? -14 : e - 1;
    double ulp = ldexp(1.0, binade - 10);
    double r = nearbyint(fabs(x) / ulp) * ulp;
    return copysign(r >= 65536.0 ? INFINITY : r, x);
}

static double s_get(const s_tensor_t *t, int64_t i)
{
    switch (t->d.dtype) {
    case GQ_F32:
        return ((const float *)t->p)[i];
    case GQ_F64:
        return ((const double *)t->p)[i];
    case GQ_F16:
        return s_ref_f16(((const uint16_t *)t->p)[i]);
    case GQ_I16:
        return ((const int16_t *)t->p)[i];
    case GQ_I32:
        return ((const int32_t *)t->p)[i];
    case GQ_I64:
        return (double)((const int64_t *)t->p)[i];
    case GQ_U8:
        return ((const uint8_t *)t->p)[i];
    default:
        fprintf(stderr, "test_cpu_ops: s_get of %s\n", gq_dtype_name(t->d.dtype));
        exit(2);
    }
}

/* Stores a value the dtype can hold exactly (the generators make sure). */
static void s_set(s_tensor_t *t, int64_t i, double v)
{
    switch (t->d.dtype) {
    case GQ_F32:
        ((float *)t->p)[i] = (float)v;
        break;
    case GQ_F64:
        ((double *)t->p)[i] = v;
        break;
    case GQ_F16:
        ((uint16_t *)t->p)[i] = gq_f16_from_f64(v);
        break;
    case GQ_I16:
        ((int16_t *)t->p)[i] = (int16_t)v;
        break;
    case GQ_I32:
        ((int32_t *)t->p)[i] = (int32_t)v;
        break;
    case GQ_U8:
        ((uint8_t *)t->p)[i] = (uint8_t)v;
        break;
    default:
        fprintf(stderr, "test_cpu_ops: s_set of %s\n", gq_dtype_name(t->d.dtype));
        exit(2);
    }
}

/* A random value for dtype: moderate floats exactly representable in it, full-range
 * ints, so i32 arithmetic overflows often. */
static double s_rand_value(int dtype)
{
    switch (dtype) {
    case GQ_F32:
        return (float)s_uniform(-100, 100);
    case GQ_F64:
        return s_uniform(-100, 100);
    case GQ_F16:
        return s_ref_round_f16(s_uniform(-100, 100));
    case GQ_I16:
        return s_randint(INT16_MIN, INT16_MAX);
    case GQ_I32:
        return (double)(int32_t)(uint32_t)s_next();
    case GQ_U8:
        return s_randint(0, 255);
    default:
        return 0;
    }
}

static void s_fill(s_tensor_t *t)
{
    int64_t n = gq_tdesc_numel(&t->d);
    for (int64_t i = 0; i < n; i++)
        s_set(t, i, s_rand_value(t->d.dtype));
}

/* A random shape of ndim dims, numel at most cap; one dim in ~12 is 0. */
static void s_rand_shape(int ndim, int64_t cap, int64_t *shape)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        shape[d] = s_randint(1, 5);
        n *= shape[d];
    }
    for (int d = 0; n > cap; d = (d + 1) % ndim) {
        if (shape[d] > 1) {
            n /= shape[d];
            shape[d] = 1;
        }
    }
    if (ndim && s_randint(0, 11) == 0)
        shape[s_randint(0, ndim - 1)] = 0;
}

/* ---- running ops through the backend's function table ---- */

/* Resolves, infers, allocs and uploads, runs, downloads into fresh host tensors in out[].
 * Returns the first failing status; err gets its message. */
static gq_status s_run(const char *opname, const gq_param_t *params, int nparams,
                       const s_tensor_t *in, int nin, s_tensor_t *out, int *nout, char *err,
                       size_t errlen)
{
    const gq_backend_ops_t *ops = s_be->ops;
    const gq_op_spec_t *op = gq_op_find(opname);
    gq_args_t a;
    gq_tdesc_t ind[GQ_MAX_INPUTS], outd[GQ_MAX_OUTPUTS];
    gq_buffer_t inb[GQ_MAX_INPUTS] = {{0}}, outb[GQ_MAX_OUTPUTS] = {{0}};
    *nout = 0;
    if (!op) {
        snprintf(err, errlen, "no op %s", opname);
        return GQ_EUNKNOWN_OP;
    }
    gq_status rc = gq_op_resolve(op, params, nparams, &a, err, errlen);
    if (rc != GQ_OK)
        return rc;
    for (int i = 0; i < nin; i++)
        ind[i] = in[i].d;
    int no = 0;
    rc = gq_op_infer(&a, ind, nin, outd, &no, err, errlen);
    if (rc != GQ_OK)
        return rc;
    if (!ops->supports_op(s_be, &a, ind, nin)) {
        snprintf(err, errlen, "%s: supports_op said no", opname);
        return GQ_EUNSUPPORTED;
    }
    for (int i = 0; i < nin && rc == GQ_OK; i++) {
        size_t nb = gq_tdesc_nbytes(&in[i].d);
        rc = ops->alloc(s_be, nb, &inb[i]);
        if (rc == GQ_OK)
            rc = ops->upload(s_be, &inb[i], in[i].p, nb);
    }
    for (int o = 0; o < no && rc == GQ_OK; o++)
        rc = ops->alloc(s_be, gq_tdesc_nbytes(&outd[o]), &outb[o]);
    if (rc != GQ_OK) {
        snprintf(err, errlen, "%s: alloc/upload failed: %d", opname, rc);
        goto done;
    }
    rc = ops->run(s_be, &a, ind, inb, nin, outd, outb, no, err, errlen);
    if (rc == GQ_OK)
        rc = ops->sync(s_be);
    for (int o = 0; o < no && rc == GQ_OK; o++) {
        out[o] = s_new(outd[o].dtype, outd[o].shape, outd[o].ndim);
        rc = ops->download(s_be, out[o].p, &outb[o], gq_tdesc_nbytes(&outd[o]));
        *nout = o + 1;
    }
done:
    for (int i = 0; i < nin; i++)
        ops->free(s_be, &inb[i]);
    for (int o = 0; o < no; o++)
        ops->free(s_be, &outb[o]);
    return rc;
}

static char *s_shape_str(const gq_tdesc_t *d, char *buf, size_t len)
{
    return gq_tdesc_str(d, buf, len);
}

/* Values equal, NaN equal to NaN, within tol (absolute). */
static bool s_close(double got, double want, double tol)
{
    if (isnan(want) || isnan(got))
        return isnan(want) && isnan(got);
    if (isinf(want) || isinf(got))
        return got == want;
    return fabs(got - want) <= tol;
}

/* ---- elementwise with broadcasting ---- */

/* Offset in t of output multi-index idx (of ndim dims), NumPy-broadcast. */
static int64_t s_bcast_offset(const gq_tdesc_t *t, const int64_t *idx, int ndim)
{
    int64_t off = 0;
    for (int d = 0; d < t->ndim; d++) {
        int od = d + ndim - t->ndim;
        off = off * t->shape[d] + (t->shape[d] == 1 ? 0 : idx[od]);
    }
    return off;
}

static void s_unravel(int64_t flat, const gq_tdesc_t *d, int64_t *idx)
{
    for (int k = d->ndim - 1; k >= 0; k--) {
        idx[k] = d->shape[k] ? flat % d->shape[k] : 0;
        flat = d->shape[k] ? flat / d->shape[k] : 0;
    }
}

/* An input shape that broadcasts to out: leading dims dropped, some dims set to 1. */
static void s_bcast_input(const int64_t *oshape, int ondim, int64_t *shape, int *ndim)
{
    int drop = s_randint(0, 3) == 0 ? s_randint(0, ondim) : 0;
    *ndim = ondim - drop;
    for (int d = 0; d < *ndim; d++) {
        shape[d] = oshape[d + drop];
        if (s_randint(0, 2) == 0)
            shape[d] = 1;
    }
}

static double s_ref_binary(bool add, int dtype, double x, double y)
{
    if (dtype == GQ_I32) {
        int64_t r = add ? (int64_t)x + (int64_t)y : (int64_t)x * (int64_t)y;
        uint32_t w = (uint32_t)((uint64_t)r & 0xffffffffu);
        return w >= 0x80000000u ? (double)w - 4294967296.0 : (double)w;
    }
    double r = add ? x + y : x * y; /* exact for f32 operands, then rounded once below */
    return dtype == GQ_F32 ? (double)(float)r : r;
}

static void s_test_binary(void)
{
    static const int dtypes[] = {GQ_F32, GQ_F64, GQ_I32};
    int cases = 0, bcast_cases = 0;
    for (int iter = 0; iter < 1500; iter++) {
        bool add = iter % 2;
        int dt = dtypes[s_randint(0, 2)];
        int ondim = s_randint(0, 8);
        int64_t oshape[GQ_MAX_DIMS], sh[2][GQ_MAX_DIMS];
        int nd[2];
        s_rand_shape(ondim, 3000, oshape);
        bool same = s_randint(0, 3) == 0;
        for (int k = 0; k < 2; k++) {
            if (same) {
                nd[k] = ondim;
                memcpy(sh[k], oshape, sizeof oshape);
            } else {
                s_bcast_input(oshape, ondim, sh[k], &nd[k]);
            }
        }
        s_tensor_t in[2] = {s_new(dt, sh[0], nd[0]), s_new(dt, sh[1], nd[1])};
        s_fill(&in[0]);
        s_fill(&in[1]);
        if (dt != GQ_I32 && gq_tdesc_numel(&in[0].d) > 2 && s_randint(0, 4) == 0) {
            s_set(&in[0], 0, NAN);
            s_set(&in[0], 1, INFINITY);
        }
        /* The expected output shape, by the broadcasting rule written out again. */
        gq_tdesc_t want = {.dtype = (gq_dtype_t)dt};
        want.ndim = nd[0] > nd[1] ? nd[0] : nd[1];
        for (int d = 0; d < want.ndim; d++) {
            int d0 = d - (want.ndim - nd[0]), d1 = d - (want.ndim - nd[1]);
            int64_t x = d0 >= 0 ? sh[0][d0] : 1, y = d1 >= 0 ? sh[1][d1] : 1;
            want.shape[d] = x == 1 ? y : x;
        }
        s_tensor_t out[GQ_MAX_OUTPUTS];
        int nout;
        char err[GQ_ERRLEN] = "", s0[64], s1[64], so[64];
        gq_status rc =
            s_run(add ? "tensor.add" : "tensor.mul", NULL, 0, in, 2, out, &nout, err, sizeof err);
        CHECK(rc == GQ_OK && nout == 1, "%s %s %s: %s", add ? "add" : "mul",
              s_shape_str(&in[0].d, s0, sizeof s0), s_shape_str(&in[1].d, s1, sizeof s1), err);
        if (rc == GQ_OK && nout == 1) {
            CHECK(gq_tdesc_equal(&out[0].d, &want), "output %s, expected %s",
                  s_shape_str(&out[0].d, so, sizeof so), s_shape_str(&want, s0, sizeof s0));
            int64_t n = gq_tdesc_numel(&want), idx[GQ_MAX_DIMS];
            for (int64_t i = 0; i < n; i++) {
                s_unravel(i, &want, idx);
                double x = s_get(&in[0], s_bcast_offset(&in[0].d, idx, want.ndim));
                double y = s_get(&in[1], s_bcast_offset(&in[1].d, idx, want.ndim));
                double w = s_ref_binary(add, dt, x, y), g = s_get(&out[0], i);
                if (!s_close(g, w, 0)) {
                    CHECK(0, "%s %s %s -> %s at %lld: %.17g op %.17g = %.17g, expected %.17g",
                          add ? "add" : "mul", s_shape_str(&in[0].d, s0, sizeof s0),
                          s_shape_str(&in[1].d, s1, sizeof s1), s_shape_str(&want, so, sizeof so),
                          (long long)i, x, y, g, w);
                    break;
                }
            }
            s_del(&out[0]);
        }
        cases++;
        bcast_cases += !gq_tdesc_equal(&in[0].d, &in[1].d);
        s_del(&in[0]);
        s_del(&in[1]);
    }
    printf("cpu: add/mul f32/f64/i32: %d cases (%d broadcasting), ndim 0..8\n", cases, bcast_cases);
}

static void s_test_i32_wrap(void)
{
    static const int32_t a[] = {INT32_MAX, INT32_MIN, -1, 65536, INT32_MIN, 46341};
    static const int32_t b[] = {1, -1, INT32_MIN, 65536, -1, 46341};
    static const int32_t sum[] = {INT32_MIN, INT32_MAX, INT32_MAX, 131072, INT32_MAX, 92682};
    static const int32_t prod[] = {INT32_MAX, INT32_MIN, INT32_MIN, 0, INT32_MIN, -2147479015};
    int64_t shape[1] = {6};
    s_tensor_t in[2] = {s_new(GQ_I32, shape, 1), s_new(GQ_I32, shape, 1)};
    memcpy(in[0].p, a, sizeof a);
    memcpy(in[1].p, b, sizeof b);
    for (int op = 0; op < 2; op++) {
        s_tensor_t out[1];
        int nout;
        char err[GQ_ERRLEN] = "";
        gq_status rc =
            s_run(op ? "tensor.mul" : "tensor.add", NULL, 0, in, 2, out, &nout, err, sizeof err);
        CHECK(rc == GQ_OK, "%s", err);
        if (rc != GQ_OK)
            continue;
        const int32_t *want = op ? prod : sum, *got = out[0].p;
        for (int i = 0; i < 6; i++)
            CHECK(got[i] == want[i], "%s: %d, %d -> %d, expected %d", op ? "mul" : "add", a[i],
                  b[i], got[i], want[i]);
        s_del(&out[0]);
    }
    s_del(&in[0]);
    s_del(&in[1]);
    printf("cpu: i32 add/mul wrap around\n");
}

/* ---- scale and clamp ---- */

static void s_test_unary(void)
{
    int cases = 0;
    for (int iter = 0; iter < 300; iter++) {
        int dt = iter % 2 ? GQ_F64 : GQ_F32;
        int ndim = s_randint(0, 8);
        int64_t shape[GQ_MAX_DIMS];
        s_rand_shape(ndim, 2000, shape);
        s_tensor_t in = s_new(dt, shape, ndim);
        s_fill(&in);
        int64_t n = gq_tdesc_numel(&in.d);
        if (n > 3) {
            s_set(&in, 0, NAN);
            s_set(&in, 1, -INFINITY);
            s_set(&in, 2, INFINITY);
        }
        double factor = s_uniform(-10, 10), offset = s_uniform(-5, 5);
        double lo = s_uniform(-80, 20), hi = lo + s_uniform(0, 100);
        if (iter % 7 == 0)
            lo = -INFINITY;
        if (iter % 5 == 0)
            hi = INFINITY;
        gq_param_t sp[] = {{"factor", {.type = GQ_PT_FLOAT, .f = factor}},
                           {"offset", {.type = GQ_PT_FLOAT, .f = offset}}};
        gq_param_t cp[] = {{"lo", {.type = GQ_PT_FLOAT, .f = lo}},
                           {"hi", {.type = GQ_PT_FLOAT, .f = hi}}};
        s_tensor_t out[2][1];
        int nout;
        char err[GQ_ERRLEN] = "", ds[64];
        gq_status rc1 = s_run("tensor.scale", sp, 2, &in, 1, out[0], &nout, err, sizeof err);
        CHECK(rc1 == GQ_OK, "scale: %s", err);
        gq_status rc2 = s_run("tensor.clamp", cp, 2, &in, 1, out[1], &nout, err, sizeof err);
        CHECK(rc2 == GQ_OK, "clamp: %s", err);
        for (int64_t i = 0; i < n && rc1 == GQ_OK && rc2 == GQ_OK; i++) {
            double x = s_get(&in, i);
            double ws = x * factor + offset;
            if (dt == GQ_F32)
                ws = (float)ws;
            double tol = dt == GQ_F32 ? 1e-6 * fabs(ws) : 1e-15 * fabs(ws);
            double g = s_get(&out[0][0], i);
            if (!s_close(g, ws, tol)) {
                CHECK(0, "scale %s at %lld: %.17g * %.17g + %.17g = %.17g, expected %.17g",
                      s_shape_str(&in.d, ds, sizeof ds), (long long)i, x, factor, offset, g, ws);
                break;
            }
            double wc = isnan(x) ? x : x < lo ? lo : x > hi ? hi : x;
            if (dt == GQ_F32)
                wc = (float)wc;
            g = s_get(&out[1][0], i);
            if (!s_close(g, wc, 0)) {
                CHECK(0, "clamp %s at %lld: %.17g in [%g, %g] = %.17g, expected %.17g",
                      s_shape_str(&in.d, ds, sizeof ds), (long long)i, x, lo, hi, g, wc);
                break;
            }
        }
        if (rc1 == GQ_OK)
            s_del(&out[0][0]);
        if (rc2 == GQ_OK)
            s_del(&out[1][0]);
        s_del(&in);
        cases++;
    }
    printf("cpu: scale/clamp f32/f64: %d cases incl. NaN/inf and scalars\n", cases);
}

/* ---- reductions ---- */

typedef enum { R_SUM, R_MEAN, R_MAX } s_red_t;
static const char *const s_red_names[] = {"tensor.sum", "tensor.mean", "tensor.max"};

static int s_red_dtype(s_red_t r, int dt)
{
    bool fl = dt == GQ_F32 || dt == GQ_F64 || dt == GQ_F16;
    if (r == R_SUM && !fl)
        return GQ_I64;
    if (r == R_MEAN && !fl)
        return GQ_F64;
    return dt;
}

/* Checks one reduction of in along axis against a long double reference. */
static void s_check_reduce(s_red_t r, const s_tensor_t *in, int axis, bool keep)
{
    const char *name = s_red_names[r];
    gq_param_t p[] = {{"axis", {.type = GQ_PT_INT, .i = axis}},
                      {"keepdims", {.type = GQ_PT_BOOL, .i = keep}}};
    s_tensor_t out[1];
    int nout;
    char err[GQ_ERRLEN] = "", ds[64];
    int nd = in->d.ndim, ax = axis < 0 ? axis + nd : axis;
    gq_status rc = s_run(name, p, 2, in, 1, out, &nout, err, sizeof err);
    s_shape_str(&in->d, ds, sizeof ds);
    if (r == R_MAX && in->d.shape[ax] == 0) {
        CHECK(rc == GQ_ESHAPE && strstr(err, "zero-size axis"),
              "%s of %s axis %d: expected a zero-size axis error, got %d (%s)", name, ds, axis, rc,
              err);
        if (rc == GQ_OK)
            s_del(&out[0]);
        return;
    }
    CHECK(rc == GQ_OK && nout == 1, "%s %s axis %d: %s", name, ds, axis, err);
    if (rc != GQ_OK)
        return;
    gq_tdesc_t want = {.dtype = (gq_dtype_t)s_red_dtype(r, in->d.dtype)};
    for (int d = 0; d < nd; d++)
        if (d != ax || keep)
            want.shape[want.ndim++] = d == ax ? 1 : in->d.shape[d];
    char ws[64], gs[64];
    CHECK(gq_tdesc_equal(&out[0].d, &want), "%s %s axis %d keep %d: output %s, expected %s", name,
          ds, axis, keep, s_shape_str(&out[0].d, gs, sizeof gs), s_shape_str(&want, ws, sizeof ws));
    int64_t outer = 1, inner = 1, n = in->d.shape[ax];
    for (int d = 0; d < ax; d++)
        outer *= in->d.shape[d];
    for (int d = ax + 1; d < nd; d++)
        inner *= in->d.shape[d];
    int odt = want.dtype;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t j = 0; j < inner; j++) {
            long double acc = 0, abs_acc = 0, mx = -INFINITY;
            int64_t iacc = 0;
            bool nan = false;
            for (int64_t k = 0; k < n; k++) {
                int64_t at = (o * n + k) * inner + j;
                double v = s_get(in, at);
                acc += v;
                abs_acc += fabs(v);
                nan |= isnan(v);
                if (v > mx)
                    mx = v;
                if (in->d.dtype == GQ_I32)
                    iacc += ((const int32_t *)in->p)[at];
            }
            int64_t oi = o * inner + j;
            double g = s_get(&out[0], oi), w, tol = 0;
            if (r == R_MAX) {
                w = nan ? NAN : (double)mx;
            } else {
                double scale = r == R_MEAN && n ? (double)(abs_acc / n) : (double)abs_acc;
                w = r == R_MEAN ? (n ? (double)(acc / n) : NAN) : (double)acc;
                tol = odt == GQ_F32 ? 1e-6 * scale : odt == GQ_F16 ? 1e-3 * scale : 1e-12 * scale;
                if (odt == GQ_F16)
                    w = s_ref_round_f16(w);
                if (odt == GQ_I64) {
                    int64_t gi = ((const int64_t *)out[0].p)[oi];
                    int64_t wi = in->d.dtype == GQ_I32 ? iacc : (int64_t)acc;
                    if (gi != wi) {
                        CHECK(0, "%s %s axis %d at %lld: %lld, expected %lld", name, ds, axis,
                              (long long)oi, (long long)gi, (long long)wi);
                        goto out;
                    }
                    continue;
                }
            }
            if (!s_close(g, w, tol)) {
                CHECK(0, "%s %s axis %d at %lld: %.17g, expected %.17g (tol %g)", name, ds, axis,
                      (long long)oi, g, w, tol);
                goto out;
            }
        }
    }
out:
    s_del(&out[0]);
}

static void s_test_reduce(void)
{
    static const int dtypes[] = {GQ_F32, GQ_F64, GQ_F16, GQ_I16, GQ_I32, GQ_U8};
    int cases = 0;
    for (int iter = 0; iter < 1200; iter++) {
        int dt = dtypes[s_randint(0, 5)];
        int ndim = s_randint(1, 8);
        int64_t shape[GQ_MAX_DIMS];
        s_rand_shape(ndim, 3000, shape);
        s_tensor_t in = s_new(dt, shape, ndim);
        s_fill(&in);
        int axis = s_randint(-ndim, ndim - 1);
        s_check_reduce((s_red_t)(iter % 3), &in, axis, s_randint(0, 1));
        s_del(&in);
        cases++;
    }
    /* Tiles wider than one stack tile, a long contiguous run, and NaN/inf. */
    static const int64_t wide[3] = {2, 7, 600}, longrun[1] = {100003};
    for (int i = 0; i < 6; i++) {
        s_tensor_t in = s_new(dtypes[i], wide, 3);
        s_fill(&in);
        for (int r = 0; r < 3; r++)
            for (int axis = 0; axis < 3; axis++)
                s_check_reduce((s_red_t)r, &in, axis, false);
        s_del(&in);
        in = s_new(dtypes[i], longrun, 1);
        s_fill(&in);
        for (int r = 0; r < 3; r++)
            s_check_reduce((s_red_t)r, &in, 0, true);
        if (dtypes[i] == GQ_F32 || dtypes[i] == GQ_F64) {
            /* Off lane 0 of the 4-lane sum, so lane merging meets the infinity. */
            s_set(&in, 5001, INFINITY);
            s_check_reduce(R_SUM, &in, 0, false);
            s_check_reduce(R_MAX, &in, 0, false);
            s_set(&in, 7, NAN);
            for (int r = 0; r < 3; r++)
                s_check_reduce((s_red_t)r, &in, 0, false);
        }
        s_del(&in);
        cases += 2;
    }
    /* Empty axes: sum 0, mean NaN, max an error. */
    static const int64_t empty[2] = {3, 0};
    for (int i = 0; i < 6; i++) {
        s_tensor_t in = s_new(dtypes[i], empty, 2);
        for (int r = 0; r < 3; r++) {
            s_check_reduce((s_red_t)r, &in, 1, false);
            s_check_reduce((s_red_t)r, &in, 0, true);
        }
        s_del(&in);
    }
    /* A million 0.1f: float accumulation would drift by percent, double does not. */
    static const int64_t mil[1] = {1000000};
    s_tensor_t in = s_new(GQ_F32, mil, 1);
    for (int64_t i = 0; i < mil[0]; i++)
        ((float *)in.p)[i] = 0.1f;
    s_check_reduce(R_SUM, &in, 0, false);
    s_check_reduce(R_MEAN, &in, 0, false);
    s_del(&in);
    printf("cpu: sum/mean/max over 6 dtypes: %d cases incl. empty axes, wide tiles, NaN\n", cases);
}

/* ---- cast ---- */

static const int s_cast_dtypes[] = {GQ_F32, GQ_F64, GQ_F16, GQ_I16, GQ_I32, GQ_U8};

static double s_int_lo(int dt)
{
    return dt == GQ_I16 ? INT16_MIN : dt == GQ_I32 ? INT32_MIN : 0;
}

static double s_int_hi(int dt)
{
    return dt == GQ_I16 ? INT16_MAX : dt == GQ_I32 ? INT32_MAX : 255;
}

/* The documented cast rule, from the value as a double. */
static double s_ref_cast(double v, int to)
{
    switch (to) {
    case GQ_F64:
        return v;
    case GQ_F32:
        return (double)(float)v;
    case GQ_F16:
        return s_ref_round_f16(v);
    default: {
        if (isnan(v))
            return 0;
        double t = trunc(v);
        return t < s_int_lo(to) ? s_int_lo(to) : t > s_int_hi(to) ? s_int_hi(to) : t;
    }
    }
}

/* Source values that stress each rule: specials, bounds of every int type, halfway
 * points, f16 limits, and random values over a wide exponent range. */
static double s_cast_value(int from, int i)
{
    static const double edge[] = {
        NAN,           INFINITY, -INFINITY, 0.0,      -0.0,         -0.9,         0.9,
        -1.9,          1.5,      2.5,       255.0,    255.9,        256.0,        -1.0,
        32767.0,       32767.99, 32768.0,   -32768.0, -32768.9,     -32769.0,     65504.0,
        65519.0,       65520.0,  1e-8,      -6e-8,    2147483647.0, 2147483648.0, -2147483648.0,
        -2147483649.0, 3e9,      -3e9,      1e38,     -1e300,       1e-300};
    int ne = (int)(sizeof edge / sizeof edge[0]);
    bool is_int = from == GQ_I16 || from == GQ_I32 || from == GQ_U8;
    if (is_int) {
        if (i < 6) {
            static const double pick[] = {0, 1, -1, 255, 256, -129};
            double v = i < 2 ? (i ? s_int_hi(from) : s_int_lo(from)) : pick[i];
            return v < s_int_lo(from) || v > s_int_hi(from) ? 0 : v;
        }
        return s_rand_value(from);
    }
    double v = i < ne ? edge[i] : ldexp(s_uniform(-1, 1), s_randint(-30, 40));
    double stored = from == GQ_F32 ? (double)(float)v : from == GQ_F16 ? s_ref_round_f16(v) : v;
    return stored;
}

static void s_test_cast(void)
{
    int pairs = 0;
    int64_t shape[1] = {400};
    for (int f = 0; f < 6; f++) {
        for (int t = 0; t < 6; t++) {
            int from = s_cast_dtypes[f], to = s_cast_dtypes[t];
            s_tensor_t in = s_new(from, shape, 1);
            for (int i = 0; i < shape[0]; i++)
                s_set(&in, i, s_cast_value(from, i));
            gq_param_t p[] = {{"to", {.type = GQ_PT_STR, .s = gq_dtype_name(to)}}};
            s_tensor_t out[1];
            int nout;
            char err[GQ_ERRLEN] = "";
            gq_status rc = s_run("tensor.cast", p, 1, &in, 1, out, &nout, err, sizeof err);
            CHECK(rc == GQ_OK && out[0].d.dtype == (gq_dtype_t)to, "cast %s -> %s: %s",
                  gq_dtype_name(from), gq_dtype_name(to), err);
            for (int i = 0; rc == GQ_OK && i < shape[0]; i++) {
                double v = s_get(&in, i), w = s_ref_cast(v, to), g = s_get(&out[0], i);
                bool ok = s_close(g, w, 0) && (w != 0 || !signbit(g) == !signbit(w) ||
                                               (to != GQ_F32 && to != GQ_F64 && to != GQ_F16));
                if (!ok) {
                    CHECK(0, "cast %s -> %s: %.17g -> %.17g, expected %.17g", gq_dtype_name(from),
                          gq_dtype_name(to), v, g, w);
                    break;
                }
            }
            if (rc == GQ_OK)
                s_del(&out[0]);
            s_del(&in);
            pairs++;
        }
    }
    /* Spot checks of the documented rules, stated as plain numbers. */
    static const float fv[] = {3e9f, -3e9f, NAN, -1.9f, 1.9f, 300.0f, -5.0f, 65520.0f, 1e-5f};
    int64_t n9[1] = {9};
    s_tensor_t in = s_new(GQ_F32, n9, 1);
    memcpy(in.p, fv, sizeof fv);
    struct {
        const char *to;
        double want[9];
    } spots[] = {
        {"i32", {INT32_MAX, INT32_MIN, 0, -1, 1, 300, -5, 65520, 0}},
        {"u8", {255, 0, 0, 0, 1, 255, 0, 255, 0}},
        {"i16", {32767, -32768, 0, -1, 1, 300, -5, 32767, 0}},
    };
    for (int s = 0; s < 3; s++) {
        gq_param_t p[] = {{"to", {.type = GQ_PT_STR, .s = spots[s].to}}};
        s_tensor_t out[1];
        int nout;
        char err[GQ_ERRLEN] = "";
        if (s_run("tensor.cast", p, 1, &in, 1, out, &nout, err, sizeof err) != GQ_OK) {
            CHECK(0, "cast f32 -> %s: %s", spots[s].to, err);
            continue;
        }
        for (int i = 0; i < 9; i++)
            CHECK(s_get(&out[0], i) == spots[s].want[i], "cast f32 %g -> %s = %g, expected %g",
                  fv[i], spots[s].to, s_get(&out[0], i), spots[s].want[i]);
        s_del(&out[0]);
    }
    gq_param_t tf16[] = {{"to", {.type = GQ_PT_STR, .s = "f16"}}};
    s_tensor_t out[1];
    int nout;
    char err[GQ_ERRLEN] = "";
    if (s_run("tensor.cast", tf16, 1, &in, 1, out, &nout, err, sizeof err) == GQ_OK) {
        const uint16_t *h = out[0].p;
        CHECK(h[0] == 0x7c00 && h[1] == 0xfc00 && h[7] == 0x7c00, "f16 overflow to inf");
        CHECK((h[2] & 0x7fff) > 0x7c00, "NaN -> f16 NaN, got 0x%04x", h[2]);
        CHECK(h[8] == 0x00a8, "1e-5 -> f16 subnormal 0x00a8, got 0x%04x", h[8]);
        s_del(&out[0]);
    } else {
        CHECK(0, "cast f32 -> f16: %s", err);
    }
    s_del(&in);
    /* Every f16 value widens to f32 exactly. */
    int64_t all[1] = {65536};
    in = s_new(GQ_F16, all, 1);
    for (int i = 0; i < 65536; i++)
        ((uint16_t *)in.p)[i] = (uint16_t)i;
    gq_param_t tf32[] = {{"to", {.type = GQ_PT_STR, .s = "f32"}}};
    if (s_run("tensor.cast", tf32, 1, &in, 1, out, &nout, err, sizeof err) == GQ_OK) {
        for (int i = 0; i < 65536; i++) {
            double w = s_ref_f16((uint16_t)i), g = ((const float *)out[0].p)[i];
            if (!s_close(g, w, 0) || !signbit(g) != !signbit(w)) {
                CHECK(0, "f16 0x%04x -> f32 %.9g, expected %.9g", i, g, w);
                break;
            }
        }
        s_del(&out[0]);
    } else {
        CHECK(0, "cast f16 -> f32: %s", err);
    }
    s_del(&in);
    printf("cpu: cast: %d dtype pairs, saturation, NaN, f16 specials, all f16 -> f32\n", pairs);
}

/* ---- the backend itself ---- */

static gq_status s_nokernel_shape(const gq_args_t *a, const gq_tdesc_t *in, int nin,
                                  gq_tdesc_t *out, int *nout, char *err, size_t errlen)
{
    (void)a, (void)nin, (void)err, (void)errlen;
    out[0] = in[0];
    *nout = 1;
    return GQ_OK;
}

static const gq_op_spec_t s_nokernel = {
    .name = "test.nokernel",
    .summary = "an op no backend implements",
    .min_inputs = 1,
    .max_inputs = 1,
    .in_dtypes = GQ_DT_FLOATS,
    .shape = s_nokernel_shape,
};

static void s_test_backend(void)
{
    const gq_backend_ops_t *ops = s_be->ops;
    char err[GQ_ERRLEN] = "";
    CHECK(ops->name && !strcmp(ops->name, "cpu"), "backend name");

    gq_device_info_t dev[2];
    memset(dev, 0, sizeof dev);
    int nd = ops->devices(s_be, dev, 2);
    CHECK(nd == 1, "cpu devices: %d", nd);
    CHECK(dev[0].name[0] && dev[0].vendor[0] && !strcmp(dev[0].driver, "gpuq-cpu"),
          "device info: '%s' '%s' '%s'", dev[0].name, dev[0].vendor, dev[0].driver);
    CHECK(dev[0].memory_bytes > 0 && dev[0].compute_units >= 1 && !dev[0].is_gpu, "device numbers");
    CHECK(ops->devices(s_be, dev, 0) == 0, "devices with max 0");
    printf("cpu: device '%s' (%s), %u cpus, %llu MiB\n", dev[0].name, dev[0].vendor,
           dev[0].compute_units, (unsigned long long)(dev[0].memory_bytes >> 20));

    for (int i = 0; i < gq_op_count(); i++) {
        gq_args_t a = {.op = gq_op_at(i)};
        if (!strncmp(a.op->name, "tensor.", 7))
            CHECK(ops->supports_op(s_be, &a, NULL, -1), "cpu must implement %s", a.op->name);
    }
    gq_args_t nk;
    CHECK(gq_op_resolve(&s_nokernel, NULL, 0, &nk, err, sizeof err) == GQ_OK, "%s", err);
    CHECK(!ops->supports_op(s_be, &nk, NULL, -1), "supports_op must decline test.nokernel");
    CHECK(!ops->supports_op(s_be, NULL, NULL, -1), "supports_op(NULL)");

    /* alloc / upload / download / free */
    gq_buffer_t b = {0}, z = {0};
    CHECK(ops->alloc(s_be, 1000, &b) == GQ_OK && b.host && b.nbytes == 1000 && b.owner == s_be,
          "alloc");
    CHECK(((uintptr_t)b.host & 63) == 0, "alloc must be 64-byte aligned");
    CHECK(ops->alloc(s_be, 0, &z) == GQ_OK, "alloc of 0 bytes");
    char src[1000], dst[1000];
    for (int i = 0; i < 1000; i++)
        src[i] = (char)(i * 7);
    CHECK(ops->upload(s_be, &b, src, 1000) == GQ_OK, "upload");
    CHECK(ops->download(s_be, dst, &b, 1000) == GQ_OK && !memcmp(src, dst, 1000), "download");
    CHECK(ops->upload(s_be, &b, src, 1001) == GQ_EINVAL, "upload past the buffer");
    CHECK(ops->download(s_be, dst, &b, 1001) == GQ_EINVAL, "download past the buffer");
    ops->free(s_be, &b);
    CHECK(b.host == NULL, "free clears the buffer");
    ops->free(s_be, &b);
    ops->free(s_be, &z);
    ops->free(s_be, NULL);
    CHECK(ops->sync(s_be) == GQ_OK, "sync");

    /* wrap_host: run on caller memory; free must leave it alone (ASan would see a free of
     * stack memory). */
    _Alignas(64) float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    _Alignas(64) float y[8];
    gq_tdesc_t d8 = {.dtype = GQ_F32, .ndim = 1, .shape = {8}};
    gq_buffer_t wx, wy;
    CHECK(ops->wrap_host(s_be, x, sizeof x, &wx) == GQ_OK && wx.host == x, "wrap_host");
    CHECK(ops->wrap_host(s_be, y, sizeof y, &wy) == GQ_OK, "wrap_host");
    gq_param_t sp[] = {{"factor", {.type = GQ_PT_FLOAT, .f = 2}}};
    gq_args_t a;
    CHECK(gq_op_resolve(gq_op_find("tensor.scale"), sp, 1, &a, err, sizeof err) == GQ_OK, "%s",
          err);
    CHECK(ops->run(s_be, &a, &d8, &wx, 1, &d8, &wy, 1, err, sizeof err) == GQ_OK, "%s", err);
    CHECK(y[0] == 2 && y[7] == 16, "scale on wrapped memory: %g %g", y[0], y[7]);
    ops->free(s_be, &wx);
    ops->free(s_be, &wy);
    CHECK(x[0] == 1, "wrapped memory untouched after free");

    /* Run's own checks: misaligned input, wrong output descriptor, short buffer, an op with
     * no kernel. */
    _Alignas(64) char raw[64] = {0};
    gq_tdesc_t d4 = {.dtype = GQ_F32, .ndim = 1, .shape = {4}};
    gq_buffer_t mis, ok4;
    ops->wrap_host(s_be, raw + 1, 16, &mis);
    CHECK(ops->alloc(s_be, 16, &ok4) == GQ_OK, "alloc");
    err[0] = '\0';
    CHECK(ops->run(s_be, &a, &d4, &mis, 1, &d4, &ok4, 1, err, sizeof err) == GQ_EINVAL &&
              strstr(err, "tensor.scale") && strstr(err, "aligned"),
          "misaligned input: %s", err);
    gq_tdesc_t d5 = {.dtype = GQ_F32, .ndim = 1, .shape = {5}};
    err[0] = '\0';
    CHECK(ops->run(s_be, &a, &d4, &ok4, 1, &d5, &ok4, 1, err, sizeof err) == GQ_EINVAL &&
              strstr(err, "tensor.scale") && strstr(err, "f32[5]"),
          "wrong output descriptor: %s", err);
    gq_tdesc_t d64 = {.dtype = GQ_F32, .ndim = 1, .shape = {64}};
    err[0] = '\0';
    CHECK(ops->run(s_be, &a, &d64, &ok4, 1, &d64, &ok4, 1, err, sizeof err) == GQ_EINVAL &&
              strstr(err, "256 bytes"),
          "short buffer: %s", err);
    err[0] = '\0';
    CHECK(ops->run(s_be, &nk, &d4, &ok4, 1, &d4, &ok4, 1, err, sizeof err) == GQ_EUNSUPPORTED &&
              strstr(err, "test.nokernel"),
          "no kernel: %s", err);
    gq_args_t add;
    gq_op_resolve(gq_op_find("tensor.add"), NULL, 0, &add, err, sizeof err);
    err[0] = '\0';
    CHECK(ops->run(s_be, &add, &d4, &ok4, 1, &d4, &ok4, 1, err, sizeof err) == GQ_ESHAPE &&
              strstr(err, "tensor.add"),
          "input count: %s", err);
    ops->free(s_be, &mis);
    ops->free(s_be, &ok4);
    printf("cpu: backend table: devices, supports_op, buffers, wrap_host, run checks\n");
}

int main(void)
{
    char err[GQ_ERRLEN] = "";
    gq_backend_config_t cfg = {.device_index = -1, .threads = 1};
    s_be = gq_backend_cpu_new(&cfg, err, sizeof err);
    if (!s_be) {
        fprintf(stderr, "FAIL: gq_backend_cpu_new: %s\n", err);
        return 1;
    }
    s_test_backend();
    s_test_binary();
    s_test_i32_wrap();
    s_test_unary();
    s_test_reduce();
    s_test_cast();
    gq_backend_destroy(&s_be);
    CHECK(s_be == NULL, "gq_backend_destroy must null the pointer");
    gq_backend_destroy(&s_be);
    gq_backend_t *dflt = gq_backend_cpu_new(NULL, err, sizeof err);
    CHECK(dflt != NULL, "gq_backend_cpu_new(NULL cfg): %s", err);
    gq_backend_destroy(&dflt);
    if (s_failures) {
        fprintf(stderr, "test_cpu_ops: %d failures\n", s_failures);
        return 1;
    }
    printf("test_cpu_ops: ok\n");
    return 0;
}
