/* The op table: every registered spec is well formed, and resolve / infer / parse accept
 * what they should and reject the rest with messages that name op, param and range. */
#include "optable.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            s_failures++;                                                                          \
        }                                                                                          \
    } while (0)

static const gq_op_spec_t *s_op(const char *name)
{
    const gq_op_spec_t *op = gq_op_find(name);
    if (!op) {
        fprintf(stderr, "FAIL: op %s is not registered\n", name);
        exit(1);
    }
    return op;
}

static gq_value_t s_int(int64_t i)
{
    return (gq_value_t){.type = GQ_PT_INT, .i = i};
}

static gq_value_t s_flt(double f)
{
    return (gq_value_t){.type = GQ_PT_FLOAT, .f = f};
}

static gq_value_t s_bool(int b)
{
    return (gq_value_t){.type = GQ_PT_BOOL, .i = b};
}

static gq_value_t s_str(const char *s)
{
    return (gq_value_t){.type = GQ_PT_STR, .s = s};
}

static gq_tdesc_t s_desc(int dtype, const int64_t *shape, int ndim)
{
    gq_tdesc_t d = {.dtype = (gq_dtype_t)dtype, .ndim = ndim};
    for (int i = 0; i < ndim; i++)
        d.shape[i] = shape[i];
    return d;
}

#define D(dt, ...)                                                                                 \
    s_desc(dt, (const int64_t[]){__VA_ARGS__},                                                     \
           (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))

/* Every fragment must appear in the message. */
static void s_contains(const char *where, int line, const char *msg, const char *const *frags)
{
    for (int i = 0; frags[i]; i++)
        if (!strstr(msg, frags[i])) {
            fprintf(stderr, "FAIL %s:%d: message \"%s\" lacks \"%s\"\n", where, line, msg,
                    frags[i]);
            s_failures++;
        }
}

#define CONTAINS(msg, ...)                                                                         \
    s_contains(__FILE__, __LINE__, (msg), (const char *const[]){__VA_ARGS__, NULL})

static bool s_value_in_spec(const gq_param_spec_t *ps, const gq_value_t *v)
{
    switch (ps->type) {
    case GQ_PT_INT:
        return v->type == GQ_PT_INT && (double)v->i >= ps->min && (double)v->i <= ps->max;
    case GQ_PT_FLOAT:
        return v->type == GQ_PT_FLOAT && !isnan(v->f) && v->f >= ps->min && v->f <= ps->max;
    case GQ_PT_BOOL:
        return v->type == GQ_PT_BOOL && (v->i == 0 || v->i == 1);
    case GQ_PT_STR:
        if (v->type != GQ_PT_STR || !v->s)
            return false;
        if (!ps->choices)
            return true;
        for (int c = 0; ps->choices[c]; c++)
            if (!strcmp(ps->choices[c], v->s))
                return true;
        return false;
    default:
        return false;
    }
}

static void s_test_specs(void)
{
    int n = gq_op_count();
    CHECK(n >= 8, "expected at least the 8 tensor ops, got %d", n);
    CHECK(gq_op_at(-1) == NULL && gq_op_at(n) == NULL, "gq_op_at out of range must be NULL");
    CHECK(gq_op_find("tensor.nope") == NULL && gq_op_find(NULL) == NULL, "unknown op found");
    for (int i = 0; i < n; i++) {
        const gq_op_spec_t *op = gq_op_at(i);
        CHECK(op && op->name, "op %d has no name", i);
        if (!op || !op->name)
            continue;
        const char *nm = op->name;
        CHECK(gq_op_find(nm) == op, "%s: gq_op_find does not return the listed spec", nm);
        CHECK(strlen(nm) < GQ_MAX_NAME && strchr(nm, '.'), "%s: bad op name", nm);
        CHECK(op->summary && *op->summary, "%s: no summary", nm);
        CHECK(op->summary && !strchr(op->summary, '\n'), "%s: summary is not one line", nm);
        CHECK(op->min_inputs >= 0 && op->min_inputs <= op->max_inputs &&
                  op->max_inputs <= GQ_MAX_INPUTS,
              "%s: inputs %d..%d", nm, op->min_inputs, op->max_inputs);
        CHECK(op->in_dtypes && !(op->in_dtypes & ~((1u << GQ_DTYPE_COUNT) - 2u)),
              "%s: dtype mask 0x%x", nm, op->in_dtypes);
        CHECK(op->shape, "%s: no shape rule", nm);
        CHECK(op->nparams >= 0 && op->nparams <= GQ_MAX_PARAMS && (op->params || !op->nparams),
              "%s: nparams %d", nm, op->nparams);
        for (int j = 0; j < i; j++)
            CHECK(strcmp(gq_op_at(j)->name, nm), "%s: listed twice", nm);
        gq_args_t args;
        char err[GQ_ERRLEN] = "";
        gq_status rc = gq_op_resolve(op, NULL, 0, &args, err, sizeof err);
        bool any_required = false;
        for (int p = 0; p < op->nparams; p++) {
            const gq_param_spec_t *ps = &op->params[p];
            any_required |= ps->required;
            CHECK(ps->name && *ps->name && strlen(ps->name) < GQ_MAX_NAME, "%s: param %d name", nm,
                  p);
            CHECK(ps->help && *ps->help, "%s: param '%s' has no help", nm, ps->name);
            CHECK(ps->type >= GQ_PT_INT && ps->type <= GQ_PT_STR, "%s.%s: type", nm, ps->name);
            CHECK(gq_op_param_index(op, ps->name) == p, "%s: param '%s' index", nm, ps->name);
            for (int q = 0; q < p; q++)
                CHECK(strcmp(op->params[q].name, ps->name), "%s: param '%s' twice", nm, ps->name);
            if (ps->type == GQ_PT_INT || ps->type == GQ_PT_FLOAT)
                CHECK(ps->min <= ps->max, "%s.%s: range %g..%g", nm, ps->name, ps->min, ps->max);
            if (ps->choices)
                CHECK(ps->type == GQ_PT_STR && ps->choices[0], "%s.%s: choices", nm, ps->name);
            for (int c = 0; ps->choices && ps->choices[c]; c++)
                CHECK(strlen(ps->choices[c]) <= GQ_MAX_STR, "%s.%s: long choice", nm, ps->name);
            if (!ps->required)
                CHECK(s_value_in_spec(ps, &ps->def), "%s.%s: default outside the spec", nm,
                      ps->name);
            if (rc != GQ_OK)
                continue;
            /* The accessors find every param and give back the default. */
            char a[64], b[64];
            switch (ps->type) {
            case GQ_PT_INT:
                CHECK(gq_args_int(&args, ps->name) == ps->def.i, "%s.%s accessor", nm, ps->name);
                break;
            case GQ_PT_FLOAT:
                CHECK(gq_args_float(&args, ps->name) == ps->def.f, "%s.%s accessor", nm, ps->name);
                break;
            case GQ_PT_BOOL:
                CHECK(gq_args_bool(&args, ps->name) == (ps->def.i != 0), "%s.%s accessor", nm,
                      ps->name);
                break;
            case GQ_PT_STR:
                CHECK(gq_args_str(&args, ps->name) &&
                          !strcmp(gq_args_str(&args, ps->name), ps->def.s),
                      "%s.%s accessor", nm, ps->name);
                break;
            default:
                break;
            }
            CHECK(
                !strcmp(gq_value_str(&args.v[p], a, sizeof a), gq_value_str(&ps->def, b, sizeof b)),
                "%s.%s: default %s resolved to %s", nm, ps->name, b, a);
        }
        CHECK((rc == GQ_OK) == !any_required, "%s: resolve with no params gave %d (%s)", nm, rc,
              err);
    }
    printf("optable: %d specs well formed\n", n);
}

static void s_resolve_fails(const char *opname, const gq_param_t *raw, int nraw, int want_rc,
                            int line, const char *const *frags)
{
    gq_args_t args;
    char err[GQ_ERRLEN] = "";
    gq_status rc = gq_op_resolve(s_op(opname), raw, nraw, &args, err, sizeof err);
    if (rc != want_rc) {
        fprintf(stderr, "FAIL %s:%d: %s resolve gave %d, expected %d (%s)\n", __FILE__, line,
                opname, rc, want_rc, err);
        s_failures++;
    }
    s_contains(__FILE__, line, err, frags);
}

#define RESOLVE_FAILS(op, raw, ...)                                                                \
    s_resolve_fails(op, raw, (int)(sizeof(raw) / sizeof((raw)[0])), GQ_EPARAM, __LINE__,           \
                    (const char *const[]){__VA_ARGS__, NULL})

static void s_test_resolve(void)
{
    char err[GQ_ERRLEN];
    gq_args_t a;

    gq_param_t unknown[] = {{"fator", s_flt(2)}};
    RESOLVE_FAILS("tensor.scale", unknown, "tensor.scale", "'fator'", "factor", "offset");
    gq_param_t none_taken[] = {{"x", s_int(1)}};
    RESOLVE_FAILS("tensor.add", none_taken, "tensor.add", "'x'", "no params");
    gq_param_t dup[] = {{"factor", s_flt(2)}, {"factor", s_flt(3)}};
    RESOLVE_FAILS("tensor.scale", dup, "tensor.scale", "'factor'", "twice");
    gq_param_t nan_lo[] = {{"lo", s_flt(NAN)}};
    RESOLVE_FAILS("tensor.clamp", nan_lo, "tensor.clamp: param 'lo' = nan must be in -inf..inf");
    gq_param_t big[] = {{"factor", s_flt(1e31)}};
    RESOLVE_FAILS("tensor.scale", big, "tensor.scale", "'factor'", "1e+31", "-1e+30..1e+30");
    gq_param_t inf_factor[] = {{"factor", s_flt(INFINITY)}};
    RESOLVE_FAILS("tensor.scale", inf_factor, "'factor' = inf", "-1e+30..1e+30");
    gq_param_t axis9[] = {{"axis", s_int(9)}};
    RESOLVE_FAILS("tensor.sum", axis9, "tensor.sum: param 'axis' = 9 must be in -8..7");
    gq_param_t axis_frac[] = {{"axis", s_flt(1.5)}};
    RESOLVE_FAILS("tensor.sum", axis_frac, "tensor.sum", "'axis'", "1.5", "-8..7");
    gq_param_t axis_str[] = {{"axis", s_str("0")}};
    RESOLVE_FAILS("tensor.mean", axis_str, "tensor.mean", "'axis'", "int", "-8..7", "string");
    gq_param_t factor_str[] = {{"factor", s_str("2")}};
    RESOLVE_FAILS("tensor.scale", factor_str, "tensor.scale", "'factor'", "-1e+30..1e+30");
    gq_param_t keep_int[] = {{"keepdims", s_int(1)}};
    RESOLVE_FAILS("tensor.max", keep_int, "tensor.max", "'keepdims'", "bool");
    gq_param_t bad_choice[] = {{"to", s_str("f128")}};
    RESOLVE_FAILS("tensor.cast", bad_choice, "tensor.cast", "'to'", "'f128'",
                  "f32, f64, f16, i16, i32, u8");
    gq_param_t to_int[] = {{"to", s_int(1)}};
    RESOLVE_FAILS("tensor.cast", to_int, "tensor.cast", "'to'", "one of f32");
    gq_param_t null_str[] = {{"to", s_str(NULL)}};
    RESOLVE_FAILS("tensor.cast", null_str, "tensor.cast", "'to'");
    gq_param_t missing[] = {{"to", s_str("f32")}};
    s_resolve_fails("tensor.cast", missing, 0, GQ_EPARAM, __LINE__,
                    (const char *const[]){"tensor.cast", "'to'", "required", "f32, f64", NULL});
    char longs[GQ_MAX_STR + 2];
    memset(longs, 'a', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    gq_param_t too_long[] = {{"to", s_str(longs)}};
    RESOLVE_FAILS("tensor.cast", too_long, "tensor.cast", "'to'", "256");
    gq_param_t untyped[] = {{"factor", {.type = GQ_PT_NONE}}};
    RESOLVE_FAILS("tensor.scale", untyped, "tensor.scale", "'factor'");
    gq_param_t null_name[] = {{NULL, s_int(1)}};
    RESOLVE_FAILS("tensor.sum", null_name, "tensor.sum", "unknown param", "axis, keepdims");
    CHECK(gq_op_resolve(NULL, NULL, 0, &a, err, sizeof err) == GQ_EINVAL, "NULL op");
    CHECK(gq_op_resolve(s_op("tensor.sum"), NULL, 1, &a, err, sizeof err) == GQ_EINVAL,
          "NULL raw with nraw 1");

    /* Conversions and canonical form. */
    gq_param_t conv[] = {{"factor", s_int(3)}, {"offset", s_flt(-0.5)}};
    CHECK(gq_op_resolve(s_op("tensor.scale"), conv, 2, &a, err, sizeof err) == GQ_OK, "%s", err);
    CHECK(a.v[0].type == GQ_PT_FLOAT && a.v[0].f == 3.0 && a.v[0].i == 0,
          "int for a float param must become float 3");
    CHECK(gq_args_float(&a, "offset") == -0.5, "offset");
    gq_param_t integral[] = {{"keepdims", s_bool(5)}, {"axis", s_flt(-2.0)}};
    CHECK(gq_op_resolve(s_op("tensor.sum"), integral, 2, &a, err, sizeof err) == GQ_OK, "%s", err);
    CHECK(a.v[0].type == GQ_PT_INT && a.v[0].i == -2 && a.v[0].f == 0.0,
          "integral float for an int param must become int -2");
    CHECK(a.v[1].type == GQ_PT_BOOL && a.v[1].i == 1, "bool canonical 1");
    CHECK(gq_args_int(&a, "axis") == -2 && gq_args_bool(&a, "keepdims"), "accessors");
    char to[] = "f16";
    gq_param_t choice[] = {{"to", s_str(to)}};
    CHECK(gq_op_resolve(s_op("tensor.cast"), choice, 1, &a, err, sizeof err) == GQ_OK, "%s", err);
    CHECK(a.v[0].s != to && !strcmp(a.v[0].s, "f16"),
          "a choice must resolve to the spec's own string");
    CHECK(gq_args_str(&a, "nope") == NULL && gq_args_int(&a, "nope") == 0, "unknown accessor");
    gq_param_t edges[] = {{"lo", s_flt(-INFINITY)}, {"hi", s_flt(INFINITY)}};
    CHECK(gq_op_resolve(s_op("tensor.clamp"), edges, 2, &a, err, sizeof err) == GQ_OK,
          "infinite clamp bounds are in range: %s", err);

    /* Defaults filled; the same args spelled out or not resolve identically. */
    gq_args_t b;
    gq_param_t spelled[] = {{"offset", s_flt(0.0)}, {"factor", s_int(1)}};
    CHECK(gq_op_resolve(s_op("tensor.scale"), NULL, 0, &a, err, sizeof err) == GQ_OK, "%s", err);
    CHECK(gq_op_resolve(s_op("tensor.scale"), spelled, 2, &b, err, sizeof err) == GQ_OK, "%s", err);
    CHECK(!memcmp(&a, &b, sizeof a), "defaults and spelled-out defaults differ");
    CHECK(gq_args_float(&a, "factor") == 1.0 && gq_args_float(&a, "offset") == 0.0, "defaults");
    CHECK(gq_op_resolve(s_op("tensor.sum"), NULL, 0, &a, err, sizeof err) == GQ_OK, "%s", err);
    CHECK(gq_args_int(&a, "axis") == -1 && !gq_args_bool(&a, "keepdims"), "reduce defaults");
    printf("optable: resolve errors and canonical form\n");
}

static gq_status s_infer(const char *opname, const gq_param_t *raw, int nraw, const gq_tdesc_t *in,
                         int nin, gq_tdesc_t *out, int *nout, char *err)
{
    gq_args_t a;
    gq_status rc = gq_op_resolve(s_op(opname), raw, nraw, &a, err, GQ_ERRLEN);
    if (rc != GQ_OK) {
        fprintf(stderr, "FAIL: %s resolve: %s\n", opname, err);
        s_failures++;
        return rc;
    }
    return gq_op_infer(&a, in, nin, out, nout, err, GQ_ERRLEN);
}

static void s_expect_shape(const char *opname, const gq_param_t *raw, int nraw,
                           const gq_tdesc_t *in, int nin, const gq_tdesc_t *want, int line)
{
    gq_tdesc_t out[GQ_MAX_OUTPUTS];
    int nout = -1;
    char err[GQ_ERRLEN] = "", g[64], w[64];
    gq_status rc = s_infer(opname, raw, nraw, in, nin, out, &nout, err);
    if (rc != GQ_OK || nout != 1 || !gq_tdesc_equal(&out[0], want)) {
        fprintf(stderr, "FAIL %s:%d: %s gave rc %d nout %d %s, expected %s (%s)\n", __FILE__, line,
                opname, rc, nout, rc == GQ_OK ? gq_tdesc_str(&out[0], g, sizeof g) : "-",
                gq_tdesc_str(want, w, sizeof w), err);
        s_failures++;
    }
}

static void s_expect_infer_error(const char *opname, const gq_param_t *raw, int nraw,
                                 const gq_tdesc_t *in, int nin, int want_rc, int line,
                                 const char *const *frags)
{
    gq_tdesc_t out[GQ_MAX_OUTPUTS];
    int nout = -1;
    char err[GQ_ERRLEN] = "";
    gq_status rc = s_infer(opname, raw, nraw, in, nin, out, &nout, err);
    if (rc != want_rc) {
        fprintf(stderr, "FAIL %s:%d: %s infer gave %d, expected %d (%s)\n", __FILE__, line, opname,
                rc, want_rc, err);
        s_failures++;
    }
    CHECK(nout == 0, "failed infer must leave nout 0, got %d", nout);
    s_contains(__FILE__, line, err, frags);
}

#define SHAPE(op, raw, nraw, want, ...)                                                            \
    do {                                                                                           \
        gq_tdesc_t in_[] = {__VA_ARGS__};                                                          \
        gq_tdesc_t want_ = want;                                                                   \
        s_expect_shape(op, raw, nraw, in_, (int)(sizeof in_ / sizeof in_[0]), &want_, __LINE__);   \
    } while (0)

#define INFER_FAILS(op, raw, nraw, rc, in_list, ...)                                               \
    do {                                                                                           \
        gq_tdesc_t in_[] = in_list;                                                                \
        s_expect_infer_error(op, raw, nraw, in_, (int)(sizeof in_ / sizeof in_[0]), rc, __LINE__,  \
                             (const char *const[]){__VA_ARGS__, NULL});                            \
    } while (0)

#define LIST(...)                                                                                  \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }

static void s_test_infer(void)
{
    gq_tdesc_t scalar_f32 = {.dtype = GQ_F32, .ndim = 0};
    gq_tdesc_t scalar_i32 = {.dtype = GQ_I32, .ndim = 0};
    SHAPE("tensor.add", NULL, 0, D(GQ_F32, 2, 4, 3), D(GQ_F32, 2, 1, 3), D(GQ_F32, 4, 1));
    SHAPE("tensor.add", NULL, 0, D(GQ_F32, 0, 3), D(GQ_F32, 0, 3), D(GQ_F32, 1, 3));
    SHAPE("tensor.add", NULL, 0, D(GQ_F32, 0, 3), D(GQ_F32, 1, 3), D(GQ_F32, 0, 1));
    SHAPE("tensor.mul", NULL, 0, D(GQ_I32, 2), scalar_i32, D(GQ_I32, 2));
    SHAPE("tensor.mul", NULL, 0, scalar_f32, scalar_f32, scalar_f32);
    SHAPE("tensor.add", NULL, 0, D(GQ_F64, 1, 1, 1, 1, 1, 1, 1, 5), D(GQ_F64, 5),
          D(GQ_F64, 1, 1, 1, 1, 1, 1, 1, 1));

    gq_param_t ax0[] = {{"axis", s_int(0)}};
    gq_param_t ax0k[] = {{"axis", s_int(0)}, {"keepdims", s_bool(1)}};
    gq_param_t axm2[] = {{"axis", s_int(-2)}};
    gq_param_t ax3[] = {{"axis", s_int(3)}};
    gq_param_t axm3[] = {{"axis", s_int(-3)}};
    SHAPE("tensor.sum", NULL, 0, D(GQ_F32, 2), D(GQ_F32, 2, 3));
    SHAPE("tensor.sum", ax0, 1, D(GQ_I64, 3), D(GQ_I32, 2, 3));
    SHAPE("tensor.sum", ax0k, 2, D(GQ_I64, 1, 3), D(GQ_U8, 2, 3));
    SHAPE("tensor.sum", axm2, 1, D(GQ_F16, 3), D(GQ_F16, 2, 3));
    SHAPE("tensor.sum", NULL, 0, scalar_f32, D(GQ_F32, 0));
    SHAPE("tensor.mean", NULL, 0, D(GQ_F64, 2), D(GQ_I16, 2, 3));
    SHAPE("tensor.mean", NULL, 0, D(GQ_F32, 2), D(GQ_F32, 2, 3));
    SHAPE("tensor.mean", NULL, 0, D(GQ_F16, 2), D(GQ_F16, 2, 0));
    SHAPE("tensor.max", NULL, 0, D(GQ_U8, 2), D(GQ_U8, 2, 3));
    SHAPE("tensor.max", ax0, 1, D(GQ_F32, 3), D(GQ_F32, 2, 3));
    SHAPE("tensor.max", NULL, 0, D(GQ_I16, 0), D(GQ_I16, 0, 3));
    gq_param_t to_f16[] = {{"to", s_str("f16")}};
    gq_param_t to_u8[] = {{"to", s_str("u8")}};
    SHAPE("tensor.cast", to_f16, 1, D(GQ_F16, 2, 3), D(GQ_F64, 2, 3));
    SHAPE("tensor.cast", to_u8, 1, (gq_tdesc_t){.dtype = GQ_U8}, scalar_f32);
    SHAPE("tensor.scale", NULL, 0, D(GQ_F64, 0, 7), D(GQ_F64, 0, 7));
    SHAPE("tensor.clamp", NULL, 0, scalar_f32, scalar_f32);

    INFER_FAILS("tensor.add", NULL, 0, GQ_ESHAPE, LIST(D(GQ_F32, 2)), "tensor.add",
                "takes 2 inputs, got 1");
    INFER_FAILS("tensor.scale", NULL, 0, GQ_ESHAPE, LIST(D(GQ_F32, 2), D(GQ_F32, 2)),
                "tensor.scale", "takes 1 input, got 2");
    INFER_FAILS("tensor.sum", NULL, 0, GQ_EDTYPE, LIST(D(GQ_I64, 2)), "tensor.sum", "input 0",
                "i64", "f32, f64, f16, i16, i32, u8");
    INFER_FAILS("tensor.scale", NULL, 0, GQ_EDTYPE, LIST(D(GQ_I32, 2)), "tensor.scale", "i32",
                "f32, f64");
    INFER_FAILS("tensor.add", NULL, 0, GQ_EDTYPE, LIST(D(GQ_F32, 2), D(GQ_U8, 2)), "tensor.add",
                "input 1", "u8", "f32, f64, i32");
    INFER_FAILS("tensor.add", NULL, 0, GQ_EDTYPE, LIST(D(GQ_F32, 2), D(GQ_F64, 2)), "tensor.add",
                "input 1 f64[2]", "input 0 f32[2]", "same dtype");
    INFER_FAILS("tensor.add", NULL, 0, GQ_EDTYPE, LIST(D(99, 2), D(GQ_F32, 2)), "tensor.add",
                "input 0", "invalid dtype 99");
    INFER_FAILS("tensor.add", NULL, 0, GQ_ESHAPE, LIST(D(GQ_F32, 2, 3), D(GQ_F32, 3, 4)),
                "tensor.add: input 1 f32[3,4] does not broadcast with input 0 f32[2,3]");
    INFER_FAILS("tensor.sum", ax3, 1, GQ_EPARAM, LIST(D(GQ_F32, 2, 3)),
                "tensor.sum: param 'axis' = 3 out of range for input 0 f32[2,3] (ndim 2)");
    gq_param_t ax2[] = {{"axis", s_int(2)}};
    INFER_FAILS("tensor.max", ax2, 1, GQ_EPARAM, LIST(D(GQ_F32, 2, 3)), "tensor.max", "'axis' = 2",
                "(ndim 2)");
    INFER_FAILS("tensor.mean", axm3, 1, GQ_EPARAM, LIST(D(GQ_F32, 2, 3)), "tensor.mean",
                "'axis' = -3", "(ndim 2)");
    INFER_FAILS("tensor.sum", NULL, 0, GQ_EPARAM, LIST(scalar_f32), "tensor.sum", "'axis' = -1",
                "f32[]", "(ndim 0)");
    INFER_FAILS("tensor.max", NULL, 0, GQ_ESHAPE, LIST(D(GQ_F32, 2, 0)), "tensor.max", "f32[2,0]",
                "zero-size axis");
    INFER_FAILS("tensor.max", ax0, 1, GQ_ESHAPE, LIST(D(GQ_F32, 0, 0)), "zero-size axis");
    INFER_FAILS("tensor.add", NULL, 0, GQ_ESHAPE, LIST(D(GQ_F32, -1), D(GQ_F32, 1)), "tensor.add",
                "input 0", "f32[-1]");
    INFER_FAILS("tensor.add", NULL, 0, GQ_ETOOBIG,
                LIST(D(GQ_F32, (int64_t)1 << 40, 1), D(GQ_F32, 1, (int64_t)1 << 40)), "tensor.add",
                "output 0", "too large");
    gq_tdesc_t ndim9 = {.dtype = GQ_F32, .ndim = 9};
    INFER_FAILS("tensor.clamp", NULL, 0, GQ_ESHAPE, LIST(ndim9), "tensor.clamp", "ndim 9", "0..8");
    gq_param_t inverted[] = {{"lo", s_flt(2)}, {"hi", s_int(1)}};
    INFER_FAILS("tensor.clamp", inverted, 2, GQ_EPARAM, LIST(D(GQ_F32, 3)),
                "tensor.clamp: param 'lo' = 2 must be <= param 'hi' = 1");
    printf("optable: shape rules and infer errors\n");
}

static void s_test_parse(void)
{
    const gq_op_spec_t *sum = s_op("tensor.sum"), *scale = s_op("tensor.scale");
    const gq_op_spec_t *cast = s_op("tensor.cast");
    const gq_param_spec_t *axis = &sum->params[gq_op_param_index(sum, "axis")];
    const gq_param_spec_t *keep = &sum->params[gq_op_param_index(sum, "keepdims")];
    const gq_param_spec_t *factor = &scale->params[gq_op_param_index(scale, "factor")];
    const gq_param_spec_t *to = &cast->params[gq_op_param_index(cast, "to")];
    gq_value_t v;
    char err[GQ_ERRLEN];

    CHECK(gq_param_parse(axis, "-3", &v, err, sizeof err) == GQ_OK && v.type == GQ_PT_INT &&
              v.i == -3,
          "parse int");
    CHECK(gq_param_parse(axis, "axis=2", &v, err, sizeof err) == GQ_OK && v.i == 2,
          "parse k=v form");
    CHECK(gq_param_parse(axis, "9223372036854775807", &v, err, sizeof err) == GQ_OK &&
              v.i == INT64_MAX,
          "parse INT64_MAX");
    static const char *bad_ints[] = {
        "9223372036854775808", "-9223372036854775809", "3x", "", " 3", "1.5", "0x10", "abc", NULL};
    for (int i = 0; bad_ints[i]; i++) {
        err[0] = '\0';
        CHECK(gq_param_parse(axis, bad_ints[i], &v, err, sizeof err) == GQ_EPARAM,
              "int '%s' must not parse", bad_ints[i]);
        CONTAINS(err, "tensor.sum", "'axis'", "-8..7");
    }
    CHECK(gq_param_parse(axis, "99999999999999999999", &v, err, sizeof err) == GQ_EPARAM,
          "overflow");
    CONTAINS(err, "overflows");

    CHECK(gq_param_parse(factor, "0.25", &v, err, sizeof err) == GQ_OK && v.type == GQ_PT_FLOAT &&
              v.f == 0.25,
          "parse float");
    CHECK(gq_param_parse(factor, "3", &v, err, sizeof err) == GQ_OK && v.f == 3.0, "int text");
    CHECK(gq_param_parse(factor, "inf", &v, err, sizeof err) == GQ_OK && isinf(v.f) && v.f > 0,
          "inf");
    CHECK(gq_param_parse(factor, "-inf", &v, err, sizeof err) == GQ_OK && isinf(v.f) && v.f < 0,
          "-inf");
    CHECK(gq_param_parse(factor, "1e-320", &v, err, sizeof err) == GQ_OK && v.f > 0,
          "subnormal text");
    static const char *bad_floats[] = {"1e999", "-1e999", "abc", "", "1.5.2", "2,5", NULL};
    for (int i = 0; bad_floats[i]; i++) {
        err[0] = '\0';
        CHECK(gq_param_parse(factor, bad_floats[i], &v, err, sizeof err) == GQ_EPARAM,
              "float '%s' must not parse", bad_floats[i]);
        CONTAINS(err, "tensor.scale", "'factor'", "-1e+30..1e+30");
    }

    static const char *yes[] = {"true", "1", "yes", "TRUE", "Yes", NULL};
    static const char *no[] = {"false", "0", "no", "False", "NO", NULL};
    for (int i = 0; yes[i]; i++)
        CHECK(gq_param_parse(keep, yes[i], &v, err, sizeof err) == GQ_OK && v.type == GQ_PT_BOOL &&
                  v.i == 1,
              "bool '%s'", yes[i]);
    for (int i = 0; no[i]; i++)
        CHECK(gq_param_parse(keep, no[i], &v, err, sizeof err) == GQ_OK && v.type == GQ_PT_BOOL &&
                  v.i == 0,
              "bool '%s'", no[i]);
    CHECK(gq_param_parse(keep, "maybe", &v, err, sizeof err) == GQ_EPARAM, "bool maybe");
    CONTAINS(err, "tensor.sum", "'keepdims'", "'maybe'", "true/false");
    CHECK(gq_param_parse(keep, "", &v, err, sizeof err) == GQ_EPARAM, "empty bool");

    const char *text = "to=f16";
    CHECK(gq_param_parse(to, text, &v, err, sizeof err) == GQ_OK && v.type == GQ_PT_STR &&
              v.s == text + 3,
          "string points into text");
    char longs[GQ_MAX_STR + 2];
    memset(longs, 'x', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    CHECK(gq_param_parse(to, longs, &v, err, sizeof err) == GQ_EPARAM, "long string");
    CONTAINS(err, "tensor.cast", "'to'", "256");
    longs[GQ_MAX_STR] = '\0';
    CHECK(gq_param_parse(to, longs, &v, err, sizeof err) == GQ_OK, "string of GQ_MAX_STR");
    /* A string that parses is still checked against the choices by resolve. */
    gq_param_t raw[] = {{"to", v}};
    gq_args_t a;
    CHECK(gq_op_resolve(cast, raw, 1, &a, err, sizeof err) == GQ_EPARAM, "choice after parse");
    CHECK(gq_param_parse(NULL, "1", &v, err, sizeof err) == GQ_EINVAL, "NULL spec");

    /* A spec outside the op table still parses; its messages just cannot name an op. */
    gq_param_spec_t loose = {.name = "n", .type = GQ_PT_INT, .min = 0, .max = 3};
    CHECK(gq_param_parse(&loose, "zz", &v, err, sizeof err) == GQ_EPARAM, "loose spec");
    CONTAINS(err, "'n'", "0..3");
    printf("optable: gq_param_parse\n");
}

static void s_test_value_str(void)
{
    char buf[64];
    gq_value_t v = s_int(-42);
    CHECK(!strcmp(gq_value_str(&v, buf, sizeof buf), "-42"), "int: %s", buf);
    v = s_flt(0.5);
    CHECK(!strcmp(gq_value_str(&v, buf, sizeof buf), "0.5"), "float: %s", buf);
    v = s_flt(0.1);
    CHECK(!strcmp(gq_value_str(&v, buf, sizeof buf), "0.1"), "float: %s", buf);
    v = s_flt(1.0 / 3.0);
    CHECK(strtod(gq_value_str(&v, buf, sizeof buf), NULL) == 1.0 / 3.0, "round trip: %s", buf);
    v = s_flt(500.0);
    CHECK(!strcmp(gq_value_str(&v, buf, sizeof buf), "500"), "whole float: %s", buf);
    v = s_flt(-16000.0);
    CHECK(!strcmp(gq_value_str(&v, buf, sizeof buf), "-16000"), "whole float: %s", buf);
    v = s_flt(1e300);
    CHECK(strtod(gq_value_str(&v, buf, sizeof buf), NULL) == 1e300, "huge: %s", buf);
    v = s_flt(-INFINITY);
    CHECK(!strcmp(gq_value_str(&v, buf, sizeof buf), "-inf"), "-inf: %s", buf);
    v = s_flt(-NAN);
    CHECK(!strcmp(gq_value_str(&v, buf, sizeof buf), "nan"), "nan: %s", buf);
    v = s_bool(1);
    CHECK(!strcmp(gq_value_str(&v, buf, sizeof buf), "true"), "bool: %s", buf);
    v = s_str("hann");
    CHECK(!strcmp(gq_value_str(&v, buf, sizeof buf), "hann"), "str: %s", buf);
    v = s_int(123456);
    CHECK(!strcmp(gq_value_str(&v, buf, 4), "123"), "truncated into a small buffer: %s", buf);
    printf("optable: gq_value_str\n");
}

int main(void)
{
    s_test_specs();
    s_test_resolve();
    s_test_infer();
    s_test_parse();
    s_test_value_str();
    if (s_failures) {
        fprintf(stderr, "test_optable: %d failures\n", s_failures);
        return 1;
    }
    printf("test_optable: ok\n");
    return 0;
}
