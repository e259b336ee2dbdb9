/* Every op every non-CPU backend claims, against the CPU backend (ggml's test-backend-ops
 * is the model): for each op of the op table and each dtype it takes, the backend is
 * asked (supports_op); what it accepts runs on random and edge shapes (0-size, scalars,
 * broadcasting up to 8 dims, odd and large-ish sizes) and special values (NaN, +-inf,
 * -0, out-of-range for casts), and its outputs are compared with the CPU's under a
 * per-op tolerance. One line per op and backend with the largest error seen.
 *
 * Errors are normalised: elementwise ops by the largest |reference| of the case;
 * sums and means by sum(|x|) (mean: by its mean) along the reduced axis, the scale of
 * their rounding error. Integer results and exact float ops must match bit for bit
 * (tolerance 0). Float sums: the CPU accumulates f32 in double and f64 with Neumaier's
 * compensation, 4 lanes when the axis is contiguous; the OpenCL kernels accumulate in
 * the same precision in another order (per work-item, then a tree), so they differ by
 * rounding only.
 *
 * usage: test_backend_ops [--device NAME|INDEX] [--platform NAME|INDEX] [--op PREFIX]
 *                         [--seed N] [-v]      (env GQ_CL_DEVICE, GQ_CL_PLATFORM too)
 * Exits 77 (skipped) when no backend other than the CPU can start. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend.h"
#include "half.h"
#include "optable.h"
#include "util.h"

#define S_MAX_CASES 96
#define S_MAX_BACKENDS 4

static uint64_t s_rng = 0x9e3779b97f4a7c15u;
static int s_verbose;

static uint64_t s_next(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

static double s_unif(double lo, double hi)
{
    return lo + (hi - lo) * ((double)(s_next() >> 11) / 9007199254740992.0);
}

static int s_randint(int lo, int hi)
{
    return lo + (int)(s_next() % (uint64_t)(hi - lo + 1));
}

/* ---- cases ---- */

typedef struct {
    gq_tdesc_t in[2];
    int nin;
    gq_param_t p[4];
    int np;
    int specials;  /* sprinkle NaN, +-inf, -0 (floats), or extreme values */
    double lo, hi; /* value range of random inputs */
} s_case_t;

static gq_tdesc_t s_desc(int dt, int ndim, const int64_t *shape)
{
    gq_tdesc_t d;
    memset(&d, 0, sizeof d);
    d.dtype = dt;
    d.ndim = ndim;
    for (int i = 0; i < ndim; i++)
        d.shape[i] = shape[i];
    return d;
}

#define S_SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define S_ND(...) ((int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define S_D(dt, ...) s_desc(dt, S_ND(__VA_ARGS__), S_SHAPE(__VA_ARGS__))

static const gq_tdesc_t *s_unary_shapes(int dt, int *n)
{
    static gq_tdesc_t sh[16];
    int k = 0;
    sh[k++] = s_desc(dt, 0, NULL);
    sh[k++] = S_D(dt, 0);
    sh[k++] = S_D(dt, 1);
    sh[k++] = S_D(dt, 7);
    sh[k++] = S_D(dt, 3, 0, 2);
    sh[k++] = S_D(dt, 3, 5);
    sh[k++] = S_D(dt, 17, 33);
    sh[k++] = S_D(dt, 2, 3, 4, 5);
    sh[k++] = S_D(dt, 64, 1031);
    sh[k++] = S_D(dt, 1000, 3);
    sh[k++] = S_D(dt, 2, 513);
    sh[k++] = S_D(dt, (1 << 18) + 3);
    sh[k++] = S_D(dt, 1, 2, 1, 3, 1, 2, 2, 3);
    *n = k;
    return sh;
}

static void s_param_f(s_case_t *c, const char *name, double v)
{
    c->p[c->np].name = name;
    c->p[c->np].v.type = GQ_PT_FLOAT;
    c->p[c->np].v.f = v;
    c->np++;
}

static void s_param_i(s_case_t *c, const char *name, int64_t v)
{
    c->p[c->np].name = name;
    c->p[c->np].v.type = GQ_PT_INT;
    c->p[c->np].v.i = v;
    c->np++;
}

static void s_param_b(s_case_t *c, const char *name, int v)
{
    c->p[c->np].name = name;
    c->p[c->np].v.type = GQ_PT_BOOL;
    c->p[c->np].v.i = v;
    c->np++;
}

static void s_param_s(s_case_t *c, const char *name, const char *v)
{
    c->p[c->np].name = name;
    c->p[c->np].v.type = GQ_PT_STR;
    c->p[c->np].v.s = v;
    c->np++;
}

static void s_range(s_case_t *c, int dt)
{
    switch (dt) {
    case GQ_I32:
        c->lo = -2147483648.0, c->hi = 2147483647.0;
        break;
    case GQ_I16:
        c->lo = -32768, c->hi = 32767;
        break;
    case GQ_U8:
        c->lo = 0, c->hi = 255;
        break;
    default:
        c->lo = -10, c->hi = 10;
    }
}

/* Cases of the tensor.* ops for dtype dt; returns the count. */
static int s_cases_tensor(const gq_op_spec_t *op, int dt, s_case_t *cs, int max)
{
    const char *name = op->name + strlen("tensor.");
    int n = 0, ns;
    const gq_tdesc_t *sh = s_unary_shapes(dt, &ns);
    if (!strcmp(name, "add") || !strcmp(name, "mul")) {
        static const int64_t pairs[][2][9] = {
            /* {ndim, dims...} x 2 */
            {{0}, {0}},
            {{1, 7}, {1, 7}},
            {{1, 1}, {2, 7, 9}},
            {{0}, {1, 5}},
            {{3, 3, 1, 5}, {2, 4, 5}},
            {{2, 4, 1}, {2, 1, 6}},
            {{2, 0, 3}, {2, 1, 3}},
            {{2, 17, 33}, {2, 17, 33}},
            {{1, 33}, {2, 17, 33}},
            {{2, 64, 1031}, {1, 1031}},
            {{1, 262147}, {1, 262147}},
            {{1, 262147}, {1, 1}},
            {{8, 2, 3, 4, 5, 6, 1, 1, 2}, {7, 3, 1, 5, 6, 7, 1, 2}},
            {{8, 1, 2, 1, 2, 1, 2, 1, 2}, {8, 2, 1, 2, 1, 2, 1, 2, 1}},
        };
        for (size_t i = 0; i < sizeof pairs / sizeof pairs[0] && n < max; i++) {
            for (int sp = 0; sp < 2 && n < max; sp++) {
                s_case_t *c = &cs[n++];
                memset(c, 0, sizeof *c);
                c->nin = 2;
                for (int k = 0; k < 2; k++)
                    c->in[k] = s_desc(dt, (int)pairs[i][k][0], &pairs[i][k][1]);
                s_range(c, dt);
                c->specials = sp;
            }
        }
        return n;
    }
    for (int i = 0; i < ns && n < max; i++) {
        for (int sp = 0; sp < 2 && n < max; sp++) {
            s_case_t *c = &cs[n];
            memset(c, 0, sizeof *c);
            c->nin = 1;
            c->in[0] = sh[i];
            c->specials = sp;
            s_range(c, dt);
            if (!strcmp(name, "scale")) {
                s_param_f(c, "factor", sp ? -0.0 : s_unif(-4, 4));
                s_param_f(c, "offset", sp ? 1e-3 : s_unif(-4, 4));
            } else if (!strcmp(name, "clamp")) {
                double lo = s_unif(-8, 2), hi = lo + s_unif(0, 8);
                if (sp && (i & 1))
                    lo = -INFINITY;
                s_param_f(c, "lo", lo);
                s_param_f(c, "hi", hi);
            } else if (!strcmp(name, "sum") || !strcmp(name, "mean") || !strcmp(name, "max")) {
                int nd = sh[i].ndim;
                if (nd == 0)
                    continue; /* no axis to reduce */
                /* Long contiguous rows (the work-group kernel) and columns both. */
                int64_t axis = sp ? s_randint(-nd, nd - 1) : nd - 1;
                if (!strcmp(name, "max") && sh[i].shape[axis < 0 ? axis + nd : axis] == 0)
                    axis = -1;
                s_param_i(c, "axis", axis);
                s_param_b(c, "keepdims", (int)(s_next() & 1));
            } else if (!strcmp(name, "cast")) {
                static const char *const to[] = {"f32", "f64", "f16", "i16", "i32", "u8"};
                s_param_s(c, "to", to[(i * 2 + sp) % 6]);
                if (dt == GQ_F32 || dt == GQ_F64)
                    c->lo = -3e9, c->hi = 3e9; /* past every int range: saturation */
            }
            n++;
        }
    }
    /* cast: every target from the first few shapes too */
    if (!strcmp(name, "cast")) {
        static const char *const to[] = {"f32", "f64", "f16", "i16", "i32", "u8"};
        for (int t = 0; t < 6 && n < max; t++) {
            s_case_t *c = &cs[n++];
            memset(c, 0, sizeof *c);
            c->nin = 1;
            c->in[0] = S_D(dt, 1031);
            s_range(c, dt);
            if (dt == GQ_F32 || dt == GQ_F64)
                c->lo = -70000, c->hi = 70000;
            c->specials = 1;
            s_param_s(c, "to", to[t]);
        }
    }
    return n;
}

typedef int (*s_gen_fn)(const gq_op_spec_t *op, int dt, s_case_t *cs, int max);

static const struct {
    const char *prefix;
    s_gen_fn gen;
} s_gens[] = {
    {"tensor.", s_cases_tensor},
};

static s_gen_fn s_gen_for(const char *op)
{
    for (size_t i = 0; i < sizeof s_gens / sizeof s_gens[0]; i++)
        if (!strncmp(op, s_gens[i].prefix, strlen(s_gens[i].prefix)))
            return s_gens[i].gen;
    return NULL;
}

/* ---- data ---- */

static void s_store(void *p, int dt, size_t i, double v)
{
    switch (dt) {
    case GQ_F32:
        ((float *)p)[i] = (float)v;
        break;
    case GQ_F64:
        ((double *)p)[i] = v;
        break;
    case GQ_F16:
        ((uint16_t *)p)[i] = gq_f16_from_f64(v);
        break;
    case GQ_I32:
        ((int32_t *)p)[i] = (int32_t)(int64_t)v;
        break;
    case GQ_I16:
        ((int16_t *)p)[i] = (int16_t)(int64_t)v;
        break;
    case GQ_U8:
        ((uint8_t *)p)[i] = (uint8_t)(int64_t)v;
        break;
    case GQ_I64:
        ((int64_t *)p)[i] = (int64_t)v;
        break;
    }
}

static double s_load(const void *p, int dt, size_t i)
{
    switch (dt) {
    case GQ_F32:
        return ((const float *)p)[i];
    case GQ_F64:
        return ((const double *)p)[i];
    case GQ_F16:
        return gq_f16_to_f64(((const uint16_t *)p)[i]);
    case GQ_I32:
        return ((const int32_t *)p)[i];
    case GQ_I16:
        return ((const int16_t *)p)[i];
    case GQ_U8:
        return ((const uint8_t *)p)[i];
    case GQ_I64:
        return (double)((const int64_t *)p)[i];
    }
    return NAN;
}

static bool s_is_float(int dt)
{
    return dt == GQ_F32 || dt == GQ_F64 || dt == GQ_F16;
}

static void s_fill(void *p, const gq_tdesc_t *d, const s_case_t *c)
{
    size_t n = (size_t)gq_tdesc_numel(d);
    static const double spec[] = {NAN, INFINITY, -INFINITY, -0.0, 0.0, 1e30, -1e30, 65504.0};
    for (size_t i = 0; i < n; i++) {
        double v = s_unif(c->lo, c->hi);
        if (!s_is_float(d->dtype))
            v = floor(v);
        if (c->specials && s_next() % 16 == 0) {
            if (s_is_float(d->dtype))
                v = spec[s_next() % 8];
            else
                v = s_next() & 1 ? c->lo : c->hi;
        }
        s_store(p, d->dtype, i, v);
    }
}

static void *s_xalloc(size_t n)
{
    void *p = gq_aligned_alloc(64, n ? n : 64);
    if (!p) {
        fprintf(stderr, "test_backend_ops: out of memory (%zu bytes)\n", n);
        exit(2);
    }
    return p;
}

/* ---- running ---- */

/* Runs a on be: inputs from host memory, outputs into host memory. */
static gq_status s_run_on(gq_backend_t *be, const gq_args_t *a, const gq_tdesc_t *in, void **hin,
                          int nin, const gq_tdesc_t *out, void **hout, int nout, char *err,
                          size_t errlen)
{
    const gq_backend_ops_t *o = be->ops;
    gq_buffer_t ib[2], ob[GQ_MAX_OUTPUTS];
    int ni = 0, no = 0;
    gq_status rc = GQ_OK;
    memset(ib, 0, sizeof ib);
    memset(ob, 0, sizeof ob);
    for (; ni < nin && !rc; ni++) {
        size_t nb = gq_tdesc_nbytes(&in[ni]);
        rc = o->wrap_host ? o->wrap_host(be, hin[ni], nb, &ib[ni]) : o->alloc(be, nb, &ib[ni]);
        if (!rc && !o->wrap_host)
            rc = o->upload(be, &ib[ni], hin[ni], nb);
    }
    for (; no < nout && !rc; no++) {
        size_t nb = gq_tdesc_nbytes(&out[no]);
        rc = o->wrap_host ? o->wrap_host(be, hout[no], nb, &ob[no]) : o->alloc(be, nb, &ob[no]);
    }
    if (rc)
        gq_errf(err, errlen, "%s: %s: staging buffers: %s", a->op->name, o->name, gq_strerror(rc));
    if (!rc)
        rc = o->run(be, a, in, ib, nin, out, ob, nout, err, errlen);
    for (int i = 0; i < nout && !rc && !o->wrap_host; i++)
        rc = o->download(be, hout[i], &ob[i], gq_tdesc_nbytes(&out[i]));
    if (!rc && o->sync)
        rc = o->sync(be);
    for (int i = 0; i < ni; i++)
        o->free(be, &ib[i]);
    for (int i = 0; i < no; i++)
        o->free(be, &ob[i]);
    return rc;
}

typedef struct {
    double tol_f32, tol_f64; /* integer outputs: always exact */
    int kind;                /* 0 elementwise, 1 sum, 2 mean */
} s_tol_t;

static s_tol_t s_tolerance(const char *op)
{
    s_tol_t t = {0, 0, 0};
    if (!strcmp(op, "tensor.scale"))
        t.tol_f32 = 2.5e-7; /* exact with fp64; two roundings in float otherwise */
    else if (!strcmp(op, "tensor.sum"))
        t = (s_tol_t){1e-6, 1e-14, 1};
    else if (!strcmp(op, "tensor.mean"))
        t = (s_tol_t){1e-6, 1e-14, 2};
    return t;
}

/* Normalised error of one case's output 0 (see the top of the file). */
static double s_error(const s_tol_t *tol, const gq_args_t *a, const gq_tdesc_t *in, const void *x,
                      const gq_tdesc_t *out, const void *ref, const void *got, size_t *worst)
{
    size_t n = (size_t)gq_tdesc_numel(out);
    int dt = out->dtype;
    double maxerr = 0, scale = 0;
    *worst = 0;
    if (tol->kind == 0)
        for (size_t i = 0; i < n; i++) {
            double r = fabs(s_load(ref, dt, i));
            if (isfinite(r) && r > scale)
                scale = r;
        }
    int64_t outer = 1, inner = 1, len = 1;
    if (tol->kind) {
        int64_t axis = gq_args_int(a, "axis");
        if (axis < 0)
            axis += in->ndim;
        for (int i = 0; i < axis; i++)
            outer *= in->shape[i];
        for (int i = (int)axis + 1; i < in->ndim; i++)
            inner *= in->shape[i];
        len = in->shape[axis];
    }
    for (size_t i = 0; i < n; i++) {
        double r = s_load(ref, dt, i), g = s_load(got, dt, i), e;
        if (isnan(r) || isnan(g))
            e = isnan(r) && isnan(g) ? 0 : INFINITY;
        else if (isinf(r) || isinf(g))
            e = r == g ? 0 : INFINITY;
        else if (!s_is_float(dt) || (tol->kind == 0 && (tol->tol_f32 == 0)))
            e = r == g ? 0 : INFINITY;
        else {
            double s = scale;
            if (tol->kind) {
                int64_t o = (int64_t)i / inner, j = (int64_t)i % inner;
                s = 0;
                for (int64_t k = 0; k < len; k++)
                    s += fabs(s_load(x, in->dtype, (size_t)((o * len + k) * inner + j)));
                if (tol->kind == 2 && len)
                    s /= (double)len;
            }
            e = fabs(r - g) / (s > 0 ? s : 1);
        }
        if (e > maxerr) {
            maxerr = e;
            *worst = i;
        }
    }
    return maxerr;
}

typedef struct {
    int cases, declined, failed;
    double maxerr;
    char dtypes[96], declined_dtypes[96];
} s_stat_t;

static void s_add_dtype(char *list, size_t len, int dt)
{
    const char *name = gq_dtype_name(dt);
    if (strstr(list, name))
        return;
    size_t l = strlen(list);
    snprintf(list + l, len - l, "%s%s", l ? "," : "", name);
}

static int s_test_case(gq_backend_t *cpu, gq_backend_t *be, const gq_op_spec_t *op, int dt,
                       const s_case_t *c, s_stat_t *st)
{
    char err[GQ_ERRLEN], ds[64];
    gq_args_t a;
    gq_tdesc_t out[GQ_MAX_OUTPUTS];
    int nout = 0;
    if (gq_op_resolve(op, c->p, c->np, &a, err, sizeof err) ||
        gq_op_infer(&a, c->in, c->nin, out, &nout, err, sizeof err)) {
        if (s_verbose)
            printf("  (case not valid: %s)\n", err);
        return 0;
    }
    if (!be->ops->supports_op(be, &a, c->in, c->nin)) {
        st->declined++;
        s_add_dtype(st->declined_dtypes, sizeof st->declined_dtypes,
                    !strcmp(op->name, "tensor.cast") && dt != GQ_F16 ? (int)out[0].dtype : dt);
        return 0;
    }
    s_add_dtype(st->dtypes, sizeof st->dtypes, dt);
    void *hin[2] = {NULL, NULL}, *ref[GQ_MAX_OUTPUTS] = {0}, *got[GQ_MAX_OUTPUTS] = {0};
    for (int i = 0; i < c->nin; i++) {
        hin[i] = s_xalloc(gq_tdesc_nbytes(&c->in[i]));
        s_fill(hin[i], &c->in[i], c);
    }
    for (int i = 0; i < nout; i++) {
        size_t nb = gq_tdesc_nbytes(&out[i]);
        ref[i] = s_xalloc(nb);
        got[i] = s_xalloc(nb);
        memset(got[i], 0xa5, nb); /* so a kernel that writes nothing cannot pass */
    }
    int bad = 0;
    gq_status rc = s_run_on(cpu, &a, c->in, hin, c->nin, out, ref, nout, err, sizeof err);
    if (rc) {
        printf("FAIL %s %s: cpu reference failed: %s\n", op->name,
               gq_tdesc_str(&c->in[0], ds, sizeof ds), err);
        bad = 1;
        goto done;
    }
    rc = s_run_on(be, &a, c->in, hin, c->nin, out, got, nout, err, sizeof err);
    if (rc) {
        printf("FAIL %s %s on %s: %s (%s)\n", op->name, gq_tdesc_str(&c->in[0], ds, sizeof ds),
               be->ops->name, err, gq_status_name(rc));
        bad = 1;
        goto done;
    }
    s_tol_t tol = s_tolerance(op->name);
    for (int o = 0; o < nout; o++) {
        size_t worst;
        double e = s_error(&tol, &a, &c->in[0], hin[0], &out[o], ref[o], got[o], &worst);
        double limit = out[o].dtype == GQ_F64 ? tol.tol_f64 : tol.tol_f32;
        if (!s_is_float(out[o].dtype))
            limit = 0;
        if (e > st->maxerr)
            st->maxerr = e;
        if (e > limit) {
            char d1[64], par[128] = "";
            for (int p = 0, off = 0; p < c->np; p++) {
                char v[48];
                off += snprintf(par + off, sizeof par - (size_t)off, " %s=%s", c->p[p].name,
                                gq_value_str(&c->p[p].v, v, sizeof v));
            }
            printf("FAIL %s in %s%s%s ->%s out %s: error %.3g > %.3g at [%zu]: cpu %.17g, %s "
                   "%.17g\n",
                   op->name, gq_tdesc_str(&c->in[0], ds, sizeof ds), c->nin > 1 ? " + " : "",
                   c->nin > 1 ? gq_tdesc_str(&c->in[1], d1, sizeof d1) : "", par,
                   gq_tdesc_str(&out[o], d1, sizeof d1), e, limit, worst,
                   s_load(ref[o], out[o].dtype, worst), be->ops->name,
                   s_load(got[o], out[o].dtype, worst));
            bad = 1;
        }
    }
done:
    for (int i = 0; i < c->nin; i++)
        free(hin[i]);
    for (int i = 0; i < nout; i++) {
        free(ref[i]);
        free(got[i]);
    }
    st->cases++;
    st->failed += bad;
    return bad;
}

int main(int argc, char **argv)
{
    const char *device = getenv("GQ_CL_DEVICE"), *platform = getenv("GQ_CL_PLATFORM");
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc)
            device = argv[++i];
        else if (!strcmp(argv[i], "--platform") && i + 1 < argc)
            platform = argv[++i];
        else if (!strcmp(argv[i], "--op") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            s_rng = strtoull(argv[++i], NULL, 0) | 1;
        else if (!strcmp(argv[i], "-v"))
            s_verbose = 1;
        else {
            fprintf(stderr, "usage: test_backend_ops [--device NAME|INDEX] [--platform P] "
                            "[--op PREFIX] [--seed N] [-v]\n");
            return 2;
        }
    }
    if (!getenv("GQ_LOG"))
        gq_log_set_level(GQ_LOG_WARN);
    char err[GQ_ERRLEN];
    gq_backend_config_t cfg = {.device_index = -1, .threads = 1, .platform = platform};
    long long idx;
    if (device && !gq_parse_int(device, 0, 1 << 20, &idx))
        cfg.device_index = (int)idx;
    else
        cfg.device_match = device;
    gq_backend_t *cpu = gq_backend_cpu_new(&cfg, err, sizeof err);
    if (!cpu) {
        fprintf(stderr, "test_backend_ops: cpu backend: %s\n", err);
        return 1;
    }
    gq_backend_t *bes[S_MAX_BACKENDS];
    int nbe = 0;
    uint64_t t0 = gq_now_us();
    if ((bes[nbe] = gq_backend_opencl_new(&cfg, err, sizeof err)))
        nbe++;
    else
        printf("opencl: not tested: %s\n", err);
    if (!nbe) {
        printf("SKIP: no backend other than the CPU could start\n");
        gq_backend_destroy(&cpu);
        return 77;
    }
    for (int b = 0; b < nbe; b++) {
        gq_device_info_t d;
        if (bes[b]->ops->devices(bes[b], &d, 1) == 1)
            printf("%s: %s (%s, driver %s, %u CUs)%s\n", bes[b]->ops->name, d.name, d.vendor,
                   d.driver, d.compute_units, d.is_gpu ? " GPU" : "");
    }
    printf("backends up in %.0f ms\n\n%-14s %-8s %-22s %5s %12s %10s  %s\n",
           (double)(gq_now_us() - t0) / 1000.0, "OP", "BACKEND", "DTYPES", "CASES", "MAX_ERR",
           "TOL(f32)", "RESULT");
    int failures = 0, ops_tested = 0;
    static s_case_t cases[S_MAX_CASES];
    for (int b = 0; b < nbe; b++) {
        gq_backend_t *be = bes[b];
        for (int oi = 0; oi < gq_op_count(); oi++) {
            const gq_op_spec_t *op = gq_op_at(oi);
            if (only && strncmp(op->name, only, strlen(only)))
                continue;
            gq_args_t probe;
            memset(&probe, 0, sizeof probe);
            probe.op = op;
            if (!be->ops->supports_op(be, &probe, NULL, -1)) {
                if (s_verbose)
                    printf("%-14s %-8s declined (runs on cpu)\n", op->name, be->ops->name);
                continue;
            }
            s_gen_fn gen = s_gen_for(op->name);
            if (!gen) {
                printf("%-14s %-8s %-22s %5d %12s %10s  FAIL: no conformance cases for an op "
                       "the backend claims\n",
                       op->name, be->ops->name, "-", 0, "-", "-");
                failures++;
                continue;
            }
            s_stat_t st;
            memset(&st, 0, sizeof st);
            uint64_t t1 = gq_now_us();
            for (int dt = 1; dt < GQ_DTYPE_COUNT; dt++) {
                if (!(op->in_dtypes & GQ_DT_BIT(dt)))
                    continue;
                int n = gen(op, dt, cases, S_MAX_CASES);
                for (int c = 0; c < n; c++)
                    s_test_case(cpu, be, op, dt, &cases[c], &st);
            }
            s_tol_t tol = s_tolerance(op->name);
            char declined[128] = "";
            if (st.declined_dtypes[0])
                snprintf(declined, sizeof declined, " (declined: %s -> cpu)", st.declined_dtypes);
            printf("%-14s %-8s %-22s %5d %12.3g %10.3g  %s%s  [%.0f ms]\n", op->name, be->ops->name,
                   st.dtypes[0] ? st.dtypes : "-", st.cases, st.maxerr, tol.tol_f32,
                   st.failed ? "FAIL" : "ok", declined, (double)(gq_now_us() - t1) / 1000.0);
            failures += st.failed || st.cases == 0;
            ops_tested++;
        }
        gq_backend_destroy(&bes[b]);
    }
    gq_backend_destroy(&cpu);
    printf("\n%d ops tested, %d failed, %.1f s\n", ops_tested, failures,
           (double)(gq_now_us() - t0) / 1e6);
    return failures ? 1 : 0;
}
