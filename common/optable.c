#include "optable.h"

#include "util.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Every op family, in listing order. A new family (ops_dsp.c, ops_onnx.c) is one line. */
static const gq_op_family_t *const s_families[] = {
    &gq_ops_tensor,
    &gq_ops_dsp_spectral,
    &gq_ops_dsp_filter,
    &gq_ops_onnx,
};

#define S_NFAMILIES ((int)(sizeof s_families / sizeof s_families[0]))

const gq_op_spec_t *gq_op_find(const char *name)
{
    if (!name)
        return NULL;
    for (int f = 0; f < S_NFAMILIES; f++)
        for (int i = 0; i < s_families[f]->count; i++)
            if (!strcmp(s_families[f]->specs[i].name, name))
                return &s_families[f]->specs[i];
    return NULL;
}

int gq_op_count(void)
{
    int n = 0;
    for (int f = 0; f < S_NFAMILIES; f++)
        n += s_families[f]->count;
    return n;
}

const gq_op_spec_t *gq_op_at(int index)
{
    if (index < 0)
        return NULL;
    for (int f = 0; f < S_NFAMILIES; f++) {
        if (index < s_families[f]->count)
            return &s_families[f]->specs[index];
        index -= s_families[f]->count;
    }
    return NULL;
}

int gq_op_param_index(const gq_op_spec_t *op, const char *name)
{
    if (!op || !name)
        return -1;
    for (int i = 0; i < op->nparams; i++)
        if (!strcmp(op->params[i].name, name))
            return i;
    return -1;
}

/* Shortest text that reads back as the same double, so messages show "0.1", not
 * "0.10000000000000001", and never lose the digit that made a value out of range. */
static char *s_fmt_double(double x, char *buf, size_t len)
{
    if (isnan(x)) {
        snprintf(buf, len, "nan");
        return buf;
    }
    if (isinf(x)) {
        snprintf(buf, len, x < 0 ? "-inf" : "inf");
        return buf;
    }
    if (x == floor(x) && fabs(x) < 1e15) { /* whole numbers as written: 500, not 5e+02 */
        snprintf(buf, len, "%.0f", x);
        return buf;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    return buf;
}

char *gq_value_str(const gq_value_t *v, char *buf, size_t len)
{
    if (!buf || !len)
        return buf;
    if (!v) {
        snprintf(buf, len, "none");
        return buf;
    }
    switch (v->type) {
    case GQ_PT_INT:
        snprintf(buf, len, "%lld", (long long)v->i);
        break;
    case GQ_PT_FLOAT:
        s_fmt_double(v->f, buf, len);
        break;
    case GQ_PT_BOOL:
        snprintf(buf, len, "%s", v->i ? "true" : "false");
        break;
    case GQ_PT_STR:
        snprintf(buf, len, "%s", v->s ? v->s : "");
        break;
    default:
        snprintf(buf, len, "none");
        break;
    }
    return buf;
}

/* "-8..7" for INT, "-1e+30..1e+30" or "-inf..inf" for FLOAT. */
static char *s_range_str(const gq_param_spec_t *ps, char *buf, size_t len)
{
    char lo[40], hi[40];
    if (ps->type == GQ_PT_INT && fabs(ps->min) < 9.2e18 && fabs(ps->max) < 9.2e18)
        snprintf(buf, len, "%lld..%lld", (long long)ps->min, (long long)ps->max);
    else
        snprintf(buf, len, "%s..%s", s_fmt_double(ps->min, lo, sizeof lo),
                 s_fmt_double(ps->max, hi, sizeof hi));
    return buf;
}

/* "f32, f64, f16" from a NULL-terminated list, as much as fits. */
static char *s_join(const char *const *list, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; list && list[i] && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, i ? ", %s" : "%s", list[i]);
    return buf;
}

const char *gq_ptype_name(int type)
{
    switch (type) {
    case GQ_PT_INT:
        return "int";
    case GQ_PT_FLOAT:
        return "float";
    case GQ_PT_BOOL:
        return "bool";
    case GQ_PT_STR:
        return "string";
    default:
        return "none";
    }
}

/* What a param accepts, for messages: "an int in -8..7", "one of f32, f64". */
static char *s_accepts(const gq_param_spec_t *ps, char *buf, size_t len)
{
    char tmp[GQ_ERRLEN];
    switch (ps->type) {
    case GQ_PT_INT:
        snprintf(buf, len, "an int in %s", s_range_str(ps, tmp, sizeof tmp));
        break;
    case GQ_PT_FLOAT:
        snprintf(buf, len, "a float in %s", s_range_str(ps, tmp, sizeof tmp));
        break;
    case GQ_PT_BOOL:
        snprintf(buf, len, "a bool (true or false)");
        break;
    case GQ_PT_STR:
        if (ps->choices)
            snprintf(buf, len, "one of %s", s_join(ps->choices, tmp, sizeof tmp));
        else
            snprintf(buf, len, "a string of at most %d bytes", GQ_MAX_STR);
        break;
    default:
        snprintf(buf, len, "nothing (bad spec)");
        break;
    }
    return buf;
}

/* The value as the user gave it, for messages; strings are quoted and cut short. */
static char *s_given_str(const gq_value_t *v, char *buf, size_t len)
{
    if (v->type == GQ_PT_STR)
        snprintf(buf, len, "'%.40s%s'", v->s ? v->s : "", v->s && strlen(v->s) > 40 ? "..." : "");
    else
        gq_value_str(v, buf, len);
    return buf;
}

static gq_status s_check_range(const gq_op_spec_t *op, const gq_param_spec_t *ps, double x,
                               const gq_value_t *given, char *err, size_t errlen)
{
    if (!isnan(x) && x >= ps->min && x <= ps->max)
        return GQ_OK;
    char val[64], range[96];
    gq_errf(err, errlen, "%s: param '%s' = %s must be in %s", op->name, ps->name,
            s_given_str(given, val, sizeof val), s_range_str(ps, range, sizeof range));
    return GQ_EPARAM;
}

/* Converts one given value to the spec's type and checks it. On success *out is in
 * canonical form: the spec's type, only that type's field set. */
static gq_status s_resolve_one(const gq_op_spec_t *op, const gq_param_spec_t *ps,
                               const gq_value_t *v, gq_value_t *out, char *err, size_t errlen)
{
    char val[64], acc[GQ_ERRLEN];
    memset(out, 0, sizeof *out);
    out->type = ps->type;
    switch (ps->type) {
    case GQ_PT_INT:
        if (v->type == GQ_PT_INT) {
            out->i = v->i;
        } else if (v->type == GQ_PT_FLOAT) {
            /* A float is taken only when it names an integer: 2.0 means 2, 2.5 means a
             * mistake. The bounds keep the conversion defined. */
            if (!(v->f == trunc(v->f) && v->f >= -9223372036854775808.0 &&
                  v->f < 9223372036854775808.0)) {
                gq_errf(err, errlen, "%s: param '%s' = %s must be %s", op->name, ps->name,
                        s_given_str(v, val, sizeof val), s_accepts(ps, acc, sizeof acc));
                return GQ_EPARAM;
            }
            out->i = (int64_t)v->f;
        } else {
            break;
        }
        return s_check_range(op, ps, (double)out->i, v, err, errlen);
    case GQ_PT_FLOAT:
        if (v->type == GQ_PT_FLOAT)
            out->f = v->f;
        else if (v->type == GQ_PT_INT)
            out->f = (double)v->i;
        else
            break;
        return s_check_range(op, ps, out->f, v, err, errlen);
    case GQ_PT_BOOL:
        if (v->type != GQ_PT_BOOL)
            break;
        out->i = v->i != 0;
        return GQ_OK;
    case GQ_PT_STR:
        if (v->type != GQ_PT_STR)
            break;
        if (!v->s) {
            gq_errf(err, errlen, "%s: param '%s' has no string value; must be %s", op->name,
                    ps->name, s_accepts(ps, acc, sizeof acc));
            return GQ_EPARAM;
        }
        if (strnlen(v->s, GQ_MAX_STR + 1) > GQ_MAX_STR) {
            gq_errf(err, errlen, "%s: param '%s' = %s is longer than %d bytes", op->name, ps->name,
                    s_given_str(v, val, sizeof val), GQ_MAX_STR);
            return GQ_EPARAM;
        }
        if (!ps->choices) {
            out->s = v->s;
            return GQ_OK;
        }
        /* Point at the spec's own string: the resolved args then outlive the message the
         * value came in, and equal choices compare equal by pointer. */
        for (int c = 0; ps->choices[c]; c++) {
            if (!strcmp(ps->choices[c], v->s)) {
                out->s = ps->choices[c];
                return GQ_OK;
            }
        }
        gq_errf(err, errlen, "%s: param '%s' = %s must be %s", op->name, ps->name,
                s_given_str(v, val, sizeof val), s_accepts(ps, acc, sizeof acc));
        return GQ_EPARAM;
    default:
        gq_errf(err, errlen, "%s: param '%s' has no valid type in the op table", op->name,
                ps->name);
        return GQ_EINTERNAL;
    }
    gq_errf(err, errlen, "%s: param '%s' must be %s, got %s %s", op->name, ps->name,
            s_accepts(ps, acc, sizeof acc), gq_ptype_name(v->type),
            v->type == GQ_PT_NONE ? "(no value)" : s_given_str(v, val, sizeof val));
    return GQ_EPARAM;
}

gq_status gq_op_resolve(const gq_op_spec_t *op, const gq_param_t *raw, int nraw, gq_args_t *out,
                        char *err, size_t errlen)
{
    if (!op || !out || nraw < 0 || (nraw > 0 && !raw)) {
        gq_errf(err, errlen, "%s: bad arguments to gq_op_resolve", op ? op->name : "(null op)");
        return GQ_EINVAL;
    }
    memset(out, 0, sizeof *out);
    if (op->nparams < 0 || op->nparams > GQ_MAX_PARAMS) {
        gq_errf(err, errlen, "%s: op table lists %d params, at most %d allowed", op->name,
                op->nparams, GQ_MAX_PARAMS);
        return GQ_EINTERNAL;
    }
    out->op = op;
    bool seen[GQ_MAX_PARAMS] = {false};
    for (int r = 0; r < nraw; r++) {
        const char *name = raw[r].name ? raw[r].name : "";
        int idx = gq_op_param_index(op, name);
        if (idx < 0) {
            char list[GQ_ERRLEN];
            size_t off = 0;
            list[0] = '\0';
            for (int p = 0; p < op->nparams && off < sizeof list; p++)
                off += (size_t)snprintf(list + off, sizeof list - off, p ? ", %s" : "%s",
                                        op->params[p].name);
            if (op->nparams)
                gq_errf(err, errlen, "%s: unknown param '%.*s' (params: %s)", op->name, GQ_MAX_NAME,
                        name, list);
            else
                gq_errf(err, errlen, "%s: unknown param '%.*s' (the op takes no params)", op->name,
                        GQ_MAX_NAME, name);
            return GQ_EPARAM;
        }
        if (seen[idx]) {
            gq_errf(err, errlen, "%s: param '%s' given twice", op->name, op->params[idx].name);
            return GQ_EPARAM;
        }
        seen[idx] = true;
        gq_status rc = s_resolve_one(op, &op->params[idx], &raw[r].v, &out->v[idx], err, errlen);
        if (rc != GQ_OK)
            return rc;
    }
    for (int p = 0; p < op->nparams; p++) {
        const gq_param_spec_t *ps = &op->params[p];
        if (seen[p])
            continue;
        if (ps->required) {
            char acc[GQ_ERRLEN];
            gq_errf(err, errlen, "%s: param '%s' is required; must be %s", op->name, ps->name,
                    s_accepts(ps, acc, sizeof acc));
            return GQ_EPARAM;
        }
        /* Defaults go through the same conversion as given values so that the canonical
         * form does not depend on whether a param was spelled out. */
        gq_status rc = s_resolve_one(op, ps, &ps->def, &out->v[p], err, errlen);
        if (rc != GQ_OK)
            return GQ_EINTERNAL;
    }
    return GQ_OK;
}

/* "f32, f64, i32" from a dtype mask. */
static char *s_dtypes_str(uint32_t mask, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (int dt = 1; dt < GQ_DTYPE_COUNT && off < len; dt++)
        if (mask & GQ_DT_BIT(dt))
            off += (size_t)snprintf(buf + off, len - off, off ? ", %s" : "%s", gq_dtype_name(dt));
    return buf;
}

gq_status gq_op_infer(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out, int *nout,
                      char *err, size_t errlen)
{
    if (!a || !a->op || !out || !nout || nin < 0 || (nin > 0 && !in)) {
        gq_errf(err, errlen, "%s: bad arguments to gq_op_infer",
                a && a->op ? a->op->name : "(null op)");
        return GQ_EINVAL;
    }
    const gq_op_spec_t *op = a->op;
    *nout = 0;
    if (nin < op->min_inputs || nin > op->max_inputs || nin > GQ_MAX_INPUTS) {
        if (op->min_inputs == op->max_inputs)
            gq_errf(err, errlen, "%s: takes %d input%s, got %d", op->name, op->min_inputs,
                    op->min_inputs == 1 ? "" : "s", nin);
        else
            gq_errf(err, errlen, "%s: takes %d..%d inputs, got %d", op->name, op->min_inputs,
                    op->max_inputs, nin);
        return GQ_ESHAPE;
    }
    char ds[64];
    for (int i = 0; i < nin; i++) {
        int dt = in[i].dtype;
        /* The range check comes first: the mask is 32 bits and dt comes off the wire. */
        if (dt <= GQ_DTYPE_INVALID || dt >= GQ_DTYPE_COUNT || !(op->in_dtypes & GQ_DT_BIT(dt))) {
            char allowed[GQ_ERRLEN];
            if (dt <= GQ_DTYPE_INVALID || dt >= GQ_DTYPE_COUNT)
                gq_errf(err, errlen, "%s: input %d has invalid dtype %d (allowed: %s)", op->name, i,
                        dt, s_dtypes_str(op->in_dtypes, allowed, sizeof allowed));
            else
                gq_errf(err, errlen, "%s: input %d dtype %s not supported (allowed: %s)", op->name,
                        i, gq_dtype_name(dt), s_dtypes_str(op->in_dtypes, allowed, sizeof allowed));
            return GQ_EDTYPE;
        }
        gq_status rc = gq_tdesc_check(&in[i], NULL, NULL);
        if (rc != GQ_OK) {
            if (in[i].ndim < 0 || in[i].ndim > GQ_MAX_DIMS)
                gq_errf(err, errlen, "%s: input %d has ndim %d, must be in 0..%d", op->name, i,
                        in[i].ndim, GQ_MAX_DIMS);
            else if (rc == GQ_ETOOBIG)
                gq_errf(err, errlen, "%s: input %d %s is too large to address", op->name, i,
                        gq_tdesc_str(&in[i], ds, sizeof ds));
            else
                gq_errf(err, errlen, "%s: input %d %s has a dim outside 0..%lld", op->name, i,
                        gq_tdesc_str(&in[i], ds, sizeof ds), (long long)GQ_MAX_DIM_SIZE);
            return rc;
        }
    }
    if (!op->shape) {
        gq_errf(err, errlen, "%s: op has no shape rule", op->name);
        return GQ_EINTERNAL;
    }
    int n = 0;
    gq_status rc = op->shape(a, in, nin, out, &n, err, errlen);
    if (rc != GQ_OK)
        return rc;
    if (n < 0 || n > GQ_MAX_OUTPUTS) {
        gq_errf(err, errlen, "%s: shape rule gave %d outputs", op->name, n);
        return GQ_EINTERNAL;
    }
    /* Outputs can be larger than any input (broadcasting two long vectors), so they get
     * the same size checks the inputs had. */
    for (int o = 0; o < n; o++) {
        rc = gq_tdesc_check(&out[o], NULL, NULL);
        if (rc != GQ_OK) {
            gq_errf(err, errlen, "%s: output %d %s is too large (%s)", op->name, o,
                    gq_tdesc_str(&out[o], ds, sizeof ds), gq_strerror(rc));
            return rc == GQ_ETOOBIG ? GQ_ETOOBIG : GQ_ESHAPE;
        }
    }
    *nout = n;
    return GQ_OK;
}

static const gq_value_t *s_arg(const gq_args_t *a, const char *name)
{
    if (!a)
        return NULL;
    int idx = gq_op_param_index(a->op, name);
    return idx < 0 ? NULL : &a->v[idx];
}

int64_t gq_args_int(const gq_args_t *a, const char *name)
{
    const gq_value_t *v = s_arg(a, name);
    if (!v)
        return 0;
    return v->type == GQ_PT_FLOAT ? (int64_t)v->f : v->i;
}

double gq_args_float(const gq_args_t *a, const char *name)
{
    const gq_value_t *v = s_arg(a, name);
    if (!v)
        return 0.0;
    return v->type == GQ_PT_INT ? (double)v->i : v->f;
}

bool gq_args_bool(const gq_args_t *a, const char *name)
{
    const gq_value_t *v = s_arg(a, name);
    return v && v->i != 0;
}

const char *gq_args_str(const gq_args_t *a, const char *name)
{
    const gq_value_t *v = s_arg(a, name);
    return v && v->type == GQ_PT_STR ? v->s : NULL;
}

/* The op a param spec belongs to, so parse errors can name it like every other message.
 * NULL for a spec outside the op table. */
static const gq_op_spec_t *s_owner(const gq_param_spec_t *ps)
{
    for (int o = 0, n = gq_op_count(); o < n; o++) {
        const gq_op_spec_t *op = gq_op_at(o);
        for (int p = 0; p < op->nparams; p++)
            if (&op->params[p] == ps)
                return op;
    }
    return NULL;
}

gq_status gq_param_parse(const gq_param_spec_t *ps, const char *text, gq_value_t *v, char *err,
                         size_t errlen)
{
    if (!ps || !text || !v) {
        gq_errf(err, errlen, "gq_param_parse: NULL argument");
        return GQ_EINVAL;
    }
    const gq_op_spec_t *op = s_owner(ps);
    char opname[GQ_MAX_NAME + 2] = ""; /* "tensor.sum: " or nothing */
    if (op)
        snprintf(opname, sizeof opname, "%s: ", op->name);
    char acc[GQ_ERRLEN];
    /* Both "k=v" and a bare "v" are accepted: the CLI splits on '=', config files may not. */
    size_t nlen = strlen(ps->name);
    if (!strncmp(text, ps->name, nlen) && text[nlen] == '=')
        text += nlen + 1;
    memset(v, 0, sizeof *v);
    v->type = ps->type;
    bool bad = !*text || isspace((unsigned char)text[0]);
    switch (ps->type) {
    case GQ_PT_INT: {
        char *end = NULL;
        errno = 0;
        long long x = bad ? 0 : strtoll(text, &end, 10);
        if (!bad && errno == ERANGE) {
            gq_errf(err, errlen, "%sparam '%s' = '%.40s' overflows a 64-bit int; must be %s",
                    opname, ps->name, text, s_accepts(ps, acc, sizeof acc));
            return GQ_EPARAM;
        }
        if (bad || errno || *end)
            break;
        v->i = x;
        return GQ_OK;
    }
    case GQ_PT_FLOAT: {
        char *end = NULL;
        errno = 0;
        double x = bad ? 0 : strtod(text, &end);
        if (bad || *end)
            break;
        /* ERANGE on underflow still gives the nearest tiny value, which is what was
         * meant; on overflow the text names a number no double holds. */
        if (errno == ERANGE && fabs(x) > 1.0) {
            gq_errf(err, errlen, "%sparam '%s' = '%.40s' overflows a double; must be %s", opname,
                    ps->name, text, s_accepts(ps, acc, sizeof acc));
            return GQ_EPARAM;
        }
        v->f = x;
        return GQ_OK;
    }
    case GQ_PT_BOOL:
        if (!strcasecmp(text, "true") || !strcmp(text, "1") || !strcasecmp(text, "yes")) {
            v->i = 1;
            return GQ_OK;
        }
        if (!strcasecmp(text, "false") || !strcmp(text, "0") || !strcasecmp(text, "no")) {
            v->i = 0;
            return GQ_OK;
        }
        gq_errf(err, errlen,
                "%sparam '%s' = '%.40s' is not a bool; must be true/false, 1/0 or yes/no", opname,
                ps->name, text);
        return GQ_EPARAM;
    case GQ_PT_STR:
        if (strnlen(text, GQ_MAX_STR + 1) > GQ_MAX_STR) {
            gq_errf(err, errlen, "%sparam '%s' = '%.40s...' is longer than %d bytes", opname,
                    ps->name, text, GQ_MAX_STR);
            return GQ_EPARAM;
        }
        v->s = text;
        return GQ_OK;
    default:
        gq_errf(err, errlen, "%sparam '%s' has no valid type in the op table", opname, ps->name);
        return GQ_EINTERNAL;
    }
    gq_errf(err, errlen, "%sparam '%s' = '%.40s' is not %s %s; must be %s", opname, ps->name, text,
            ps->type == GQ_PT_INT ? "an" : "a", gq_ptype_name(ps->type),
            s_accepts(ps, acc, sizeof acc));
    return GQ_EPARAM;
}
