/* gpuq ops: the op table as text for people or JSON for programs. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char s_help[] =
    "usage: gpuq ops [--json] [OP ...]\n"
    "\n"
    "Lists every op (or the ones named) with its summary, input count, accepted dtypes and\n"
    "params: type, default, range or choices, whether required, and what it does.\n"
    "\n"
    "  --json   one JSON array of op objects instead of text; bounds that are infinite\n"
    "           are null, and non-finite defaults are strings (\"-inf\")\n";

/* A range bound as text: ints as ints, infinities as -inf/inf. */
static char *s_bound(const gq_param_spec_t *ps, double v, char *buf, size_t len)
{
    if (isinf(v))
        snprintf(buf, len, "%sinf", v < 0 ? "-" : "");
    else if (ps->type == GQ_PT_INT && fabs(v) < 9.007199254740992e15)
        snprintf(buf, len, "%lld", (long long)v);
    else
        snprintf(buf, len, "%.17g", v);
    return buf;
}

static void s_text_op(const gq_op_spec_t *op)
{
    printf("%s\n    %s\n", op->name, op->summary ? op->summary : "");
    if (op->min_inputs == op->max_inputs)
        printf("    inputs %d", op->min_inputs);
    else
        printf("    inputs %d..%d", op->min_inputs, op->max_inputs);
    printf(", dtypes");
    for (int dt = 1; dt < GQ_DTYPE_COUNT; dt++)
        if (op->in_dtypes & GQ_DT_BIT(dt))
            printf(" %s", gq_dtype_name(dt));
    if (op->flags & GQ_OPF_BATCHABLE)
        printf(", batchable");
    if (op->flags & GQ_OPF_NONDETERMINISTIC)
        printf(", nondeterministic (never cached)");
    printf("\n");
    for (int p = 0; p < op->nparams; p++) {
        const gq_param_spec_t *ps = &op->params[p];
        char a[64], b[64], def[GQ_MAX_STR + 8];
        printf("    %s: %s", ps->name, gq_ptype_name(ps->type));
        if (ps->required)
            printf(", required");
        else
            printf(", default %s", gq_value_str(&ps->def, def, sizeof def));
        if (ps->type == GQ_PT_INT || ps->type == GQ_PT_FLOAT)
            printf(", range %s..%s", s_bound(ps, ps->min, a, sizeof a),
                   s_bound(ps, ps->max, b, sizeof b));
        if (ps->type == GQ_PT_STR && ps->choices) {
            printf(", one of");
            for (const char *const *c = ps->choices; *c; c++)
                printf(" %s", *c);
        }
        printf("\n        %s\n", ps->help ? ps->help : "");
    }
}

static void s_json_str(const char *s)
{
    putchar('"');
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            printf("\\n");
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* A number in JSON: infinities have no JSON spelling, so they become null (unbounded). */
static void s_json_num(const gq_param_spec_t *ps, double v)
{
    char buf[64];
    if (isinf(v) || isnan(v))
        printf("null");
    else
        printf("%s", s_bound(ps, v, buf, sizeof buf));
}

static void s_json_value(const gq_param_spec_t *ps, const gq_value_t *v)
{
    switch (v->type) {
    case GQ_PT_INT:
        printf("%lld", (long long)v->i);
        break;
    case GQ_PT_FLOAT:
        if (isinf(v->f) || isnan(v->f)) {
            char buf[32];
            s_json_str(gq_value_str(v, buf, sizeof buf)); /* "-inf": the value, as text */
        } else {
            s_json_num(ps, v->f);
        }
        break;
    case GQ_PT_BOOL:
        printf("%s", v->i ? "true" : "false");
        break;
    case GQ_PT_STR:
        s_json_str(v->s ? v->s : "");
        break;
    default:
        printf("null");
        break;
    }
}

static void s_json_op(const gq_op_spec_t *op)
{
    printf("{\"name\": ");
    s_json_str(op->name);
    printf(", \"summary\": ");
    s_json_str(op->summary);
    printf(", \"min_inputs\": %d, \"max_inputs\": %d, \"dtypes\": [", op->min_inputs,
           op->max_inputs);
    int first = 1;
    for (int dt = 1; dt < GQ_DTYPE_COUNT; dt++)
        if (op->in_dtypes & GQ_DT_BIT(dt)) {
            printf(first ? "\"%s\"" : ", \"%s\"", gq_dtype_name(dt));
            first = 0;
        }
    printf("], \"batchable\": %s, \"deterministic\": %s, \"params\": [",
           (op->flags & GQ_OPF_BATCHABLE) ? "true" : "false",
           (op->flags & GQ_OPF_NONDETERMINISTIC) ? "false" : "true");
    for (int p = 0; p < op->nparams; p++) {
        const gq_param_spec_t *ps = &op->params[p];
        printf("%s\n    {\"name\": ", p ? "," : "");
        s_json_str(ps->name);
        printf(", \"type\": \"%s\", \"required\": %s, \"default\": ", gq_ptype_name(ps->type),
               ps->required ? "true" : "false");
        if (ps->required)
            printf("null");
        else
            s_json_value(ps, &ps->def);
        if (ps->type == GQ_PT_INT || ps->type == GQ_PT_FLOAT) {
            printf(", \"min\": ");
            s_json_num(ps, ps->min);
            printf(", \"max\": ");
            s_json_num(ps, ps->max);
        }
        if (ps->type == GQ_PT_STR && ps->choices) {
            printf(", \"choices\": [");
            for (const char *const *c = ps->choices; *c; c++) {
                if (c != ps->choices)
                    printf(", ");
                s_json_str(*c);
            }
            printf("]");
        }
        printf(", \"help\": ");
        s_json_str(ps->help);
        printf("}");
    }
    printf("]}");
}

int gq_cli_ops(const gq_cli_t *cli, int argc, char **argv)
{
    int json = 0;
    const gq_op_spec_t *only[64];
    int nonly = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(s_help, stdout);
            return GQ_CLI_OK;
        }
        if (!strcmp(argv[i], "--json")) {
            json = 1;
            continue;
        }
        if (argv[i][0] == '-')
            return gq_cli_usage(cli, "unexpected '%s'", argv[i]);
        const gq_op_spec_t *op = gq_op_find(argv[i]);
        if (!op)
            return gq_cli_usage(cli, "unknown op '%s'", argv[i]);
        if (nonly == (int)(sizeof only / sizeof only[0]))
            return gq_cli_usage(cli, "more than %d ops named", nonly);
        only[nonly++] = op;
    }
    int n = nonly ? nonly : gq_op_count();
    if (json)
        printf("[");
    for (int i = 0; i < n; i++) {
        const gq_op_spec_t *op = nonly ? only[i] : gq_op_at(i);
        if (json) {
            printf(i ? ",\n" : "\n");
            s_json_op(op);
        } else {
            if (i)
                printf("\n");
            s_text_op(op);
        }
    }
    if (json)
        printf("\n]\n");
    return fflush(stdout) == 0 ? GQ_CLI_OK : GQ_CLI_FAILED;
}
