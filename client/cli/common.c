/* What run and batch share: option words, the job spec typed through the op table,
 * connecting, and tensors to and from .npy files. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

int gq_cli_usage(const gq_cli_t *cli, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "gpuq %s: ", cli->name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'gpuq %s --help')\n", cli->name);
    va_end(ap);
    return GQ_CLI_USAGE;
}

int gq_cli_fail(const gq_cli_t *cli, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "gpuq %s: ", cli->name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return GQ_CLI_FAILED;
}

int gq_cli_opt(const gq_cli_t *cli, int argc, char **argv, int *i, const char *name,
               const char **val)
{
    const char *w = argv[*i];
    size_t n = strlen(name);
    if (strncmp(w, name, n) != 0)
        return 0;
    if (w[n] == '=') {
        *val = w + n + 1;
        return 1;
    }
    if (w[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        gq_cli_usage(cli, "%s needs a value", name);
        return -1;
    }
    *val = argv[++*i];
    return 1;
}

int gq_cli_int(const gq_cli_t *cli, const char *name, const char *text, long long min,
               long long max, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = *text ? strtoll(text, &end, 10) : 0;
    if (!*text || errno || *end || v < min || v > max) {
        gq_cli_usage(cli, "%s '%s' must be an integer in %lld..%lld", name, text, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

void gq_cli_spec_init(gq_cli_spec_t *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->prio = GQ_PRIO_BATCH;
}

static const char *const s_prio_names[] = {"realtime", "interactive", "batch", "background"};

static int s_add_stage(const gq_cli_t *cli, gq_cli_spec_t *spec, const char *op)
{
    if (spec->nstages == GQ_CLI_MAX_STAGES) {
        gq_cli_usage(cli, "more than %d stages (at --then %s)", GQ_CLI_MAX_STAGES, op);
        return -1;
    }
    if (op[0] == '-') {
        gq_cli_usage(cli, "expected an op name, found '%s'", op);
        return -1;
    }
    spec->stages[spec->nstages++].op_name = op;
    return 1;
}

int gq_cli_spec_arg(const gq_cli_t *cli, gq_cli_spec_t *spec, int argc, char **argv, int *i)
{
    const char *v;
    int r;
    long long n;
    if ((r = gq_cli_opt(cli, argc, argv, i, "--param", &v)) != 0) {
        if (r < 0)
            return -1;
        if (spec->nstages == 0) {
            gq_cli_usage(cli, "--param %s comes before any op", v);
            return -1;
        }
        gq_cli_stage_t *st = &spec->stages[spec->nstages - 1];
        if (st->nraw == GQ_CLI_MAX_RAW) {
            gq_cli_usage(cli, "%s: more than %d --param", st->op_name, GQ_CLI_MAX_RAW);
            return -1;
        }
        st->raw[st->nraw++] = v;
        return 1;
    }
    if ((r = gq_cli_opt(cli, argc, argv, i, "--then", &v)) != 0) {
        if (r < 0)
            return -1;
        if (spec->nstages == 0) {
            gq_cli_usage(cli, "--then %s comes before the first op", v);
            return -1;
        }
        return s_add_stage(cli, spec, v);
    }
    if ((r = gq_cli_opt(cli, argc, argv, i, "--timeout", &v)) != 0) {
        if (r < 0 || gq_cli_int(cli, "--timeout", v, 0, 24LL * 3600 * 1000, &n) < 0)
            return -1;
        spec->timeout_ms = (int)n;
        return 1;
    }
    if ((r = gq_cli_opt(cli, argc, argv, i, "--priority", &v)) != 0) {
        if (r < 0)
            return -1;
        for (int p = 0; p < 4; p++)
            if (!strcmp(v, s_prio_names[p])) {
                spec->prio = (gq_priority_t)p;
                return 1;
            }
        gq_cli_usage(cli, "--priority '%s' must be realtime, interactive, batch or background", v);
        return -1;
    }
    if ((r = gq_cli_opt(cli, argc, argv, i, "--cache", &v)) != 0) {
        static const char *const policies[] = {"use", "bypass", "refresh"};
        if (r < 0)
            return -1;
        for (int p = 0; p < 3; p++)
            if (!strcmp(v, policies[p])) {
                spec->cache_policy = (gq_cache_policy_t)p;
                return 1;
            }
        gq_cli_usage(cli, "--cache '%s' must be use, bypass or refresh", v);
        return -1;
    }
    if ((r = gq_cli_opt(cli, argc, argv, i, "--cache-ttl-s", &v)) != 0) {
        if (r < 0 || gq_cli_int(cli, "--cache-ttl-s", v, 1, 10LL * 365 * 86400, &n) < 0)
            return -1;
        spec->cache_ttl_ms = (uint64_t)n * 1000u;
        return 1;
    }
    if (!strcmp(argv[*i], "--mono")) {
        spec->mono = true;
        return 1;
    }
    if ((r = gq_cli_opt(cli, argc, argv, i, "--broker", &v)) != 0) {
        if (r < 0)
            return -1;
        if (cli->broker) {
            gq_cli_usage(cli, "--broker %s: 'gpuq local' uses its own cluster", v);
            return -1;
        }
        spec->broker = v;
        return 1;
    }
    const char *w = argv[*i];
    if (w[0] != '-' && spec->nstages == 0)
        return s_add_stage(cli, spec, w);
    return 0;
}

/* The closest op name, for "did you mean": edit distance, small names only. */
static const char *s_suggest(const char *name)
{
    const char *best = NULL;
    size_t best_d = 4;
    size_t n = strlen(name);
    if (n >= GQ_MAX_NAME)
        return NULL;
    for (int o = 0, count = gq_op_count(); o < count; o++) {
        const char *cand = gq_op_at(o)->name;
        size_t m = strlen(cand);
        if (m >= GQ_MAX_NAME)
            continue;
        size_t row[GQ_MAX_NAME + 1];
        for (size_t j = 0; j <= m; j++)
            row[j] = j;
        for (size_t i = 1; i <= n; i++) {
            size_t diag = row[0];
            row[0] = i;
            for (size_t j = 1; j <= m; j++) {
                size_t up = row[j];
                size_t sub = diag + (name[i - 1] != cand[j - 1]);
                size_t del = up + 1, ins = row[j - 1] + 1;
                row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
                diag = up;
            }
        }
        if (row[m] < best_d) {
            best_d = row[m];
            best = cand;
        }
    }
    return best;
}

#define S_AT_SR "@sr"
#define S_STAND_IN_SR 16000

static int s_resolve_stage(const gq_cli_t *cli, gq_cli_stage_t *st)
{
    char err[GQ_ERRLEN];
    st->op = gq_op_find(st->op_name);
    if (!st->op) {
        const char *near = s_suggest(st->op_name);
        if (near)
            return gq_cli_usage(cli, "unknown op '%s' (did you mean %s? 'gpuq ops' lists them)",
                                st->op_name, near);
        return gq_cli_usage(cli, "unknown op '%s' ('gpuq ops' lists them)", st->op_name);
    }
    for (int k = 0; k < st->nraw; k++) {
        const char *text = st->raw[k];
        const char *eq = strchr(text, '=');
        if (!eq || eq == text)
            return gq_cli_usage(cli, "%s: --param '%s' is not name=value", st->op_name, text);
        size_t nl = (size_t)(eq - text);
        if (nl >= GQ_MAX_NAME)
            return gq_cli_usage(cli, "%s: --param name '%.*s...' is longer than %d bytes",
                                st->op_name, 20, text, GQ_MAX_NAME - 1);
        memcpy(st->names[k], text, nl);
        st->names[k][nl] = '\0';
        gq_param_t *p = &st->params[k];
        p->name = st->names[k];
        int idx = gq_op_param_index(st->op, p->name);
        st->at_sr[k] = !strcmp(eq + 1, S_AT_SR);
        if (idx >= 0 && st->at_sr[k]) {
            /* Typed now with a stand-in rate, so a param that cannot hold one is refused
             * before any file is read; each job gets its file's rate. */
            const gq_param_spec_t *ps = &st->op->params[idx];
            if (ps->type != GQ_PT_INT && ps->type != GQ_PT_FLOAT)
                return gq_cli_usage(cli, "%s: --param %s=%s: '%s' is a %s param, not a rate",
                                    st->op_name, p->name, S_AT_SR, p->name,
                                    gq_ptype_name(ps->type));
            p->v.type = ps->type;
            p->v.i = S_STAND_IN_SR;
            p->v.f = S_STAND_IN_SR;
            continue;
        }
        if (idx < 0) {
            /* Untyped: gq_op_resolve below names it as unknown, with the op's param list. */
            p->v.type = GQ_PT_STR;
            p->v.s = eq + 1;
            continue;
        }
        if (gq_param_parse(&st->op->params[idx], eq + 1, &p->v, err, sizeof err) != GQ_OK)
            return gq_cli_usage(cli, "%s", err);
    }
    gq_args_t args;
    if (gq_op_resolve(st->op, st->params, st->nraw, &args, err, sizeof err) != GQ_OK)
        return gq_cli_usage(cli, "%s", err);
    return GQ_CLI_OK;
}

int gq_cli_spec_resolve(const gq_cli_t *cli, gq_cli_spec_t *spec)
{
    if (spec->nstages == 0)
        return gq_cli_usage(cli, "no op given");
    size_t off = 0;
    spec->label[0] = '\0';
    for (int s = 0; s < spec->nstages; s++) {
        int rc = s_resolve_stage(cli, &spec->stages[s]);
        if (rc != GQ_CLI_OK)
            return rc;
        off += (size_t)snprintf(spec->label + off, sizeof spec->label - off, s ? " | %s" : "%s",
                                spec->stages[s].op_name);
    }
    return GQ_CLI_OK;
}

gq_job_t *gq_cli_spec_job(const gq_cli_t *cli, const gq_cli_spec_t *spec, int sr)
{
    for (int s = 0; s < spec->nstages; s++)
        for (int k = 0; k < spec->stages[s].nraw; k++)
            if (spec->stages[s].at_sr[k] && sr <= 0) {
                gq_cli_fail(cli,
                            "%s: --param %s=" S_AT_SR " needs an audio input (.wav, .flac ...)",
                            spec->stages[s].op_name, spec->stages[s].params[k].name);
                return NULL;
            }
    gq_job_t *job = gq_job_new(spec->stages[0].op_name);
    if (!job) {
        gq_cli_fail(cli, "%s: cannot create a job (out of memory)", spec->stages[0].op_name);
        return NULL;
    }
    for (int s = 0; s < spec->nstages; s++) {
        const gq_cli_stage_t *st = &spec->stages[s];
        int rc = s ? gq_job_then(job, st->op_name) : GQ_OK;
        for (int k = 0; rc == GQ_OK && k < st->nraw; k++) {
            const gq_param_t *p = &st->params[k];
            switch (p->v.type) {
            case GQ_PT_INT:
                rc = gq_job_param_int(job, p->name, st->at_sr[k] ? sr : p->v.i);
                break;
            case GQ_PT_FLOAT:
                rc = gq_job_param_float(job, p->name, st->at_sr[k] ? sr : p->v.f);
                break;
            case GQ_PT_BOOL:
                rc = gq_job_param_bool(job, p->name, (int)p->v.i);
                break;
            default:
                rc = gq_job_param_str(
                    job, p->name, st->digest[0] && !strcmp(p->name, "model") ? st->digest : p->v.s);
                break;
            }
        }
        if (rc != GQ_OK) {
            gq_cli_fail(cli, "%s: cannot build the job: %s", st->op_name, gq_status_name(rc));
            gq_job_destroy(&job);
            return NULL;
        }
    }
    if (spec->timeout_ms)
        gq_job_set_timeout_ms(job, spec->timeout_ms);
    gq_job_set_priority(job, spec->prio);
    if (spec->cache_policy != GQ_CACHE_USE || spec->cache_ttl_ms)
        gq_job_cache(job, spec->cache_policy, spec->cache_ttl_ms);
    return job;
}

const char *gq_cli_broker(const gq_cli_t *cli, const char *given)
{
    if (cli->broker)
        return cli->broker;
    if (given)
        return given;
    const char *env = getenv("GPUQ_BROKER");
    return env && *env ? env : "local";
}

gq_client_t *gq_cli_connect(const gq_cli_t *cli, const char *broker, int window)
{
    gq_client_opts_t o;
    gq_client_opts_init(&o);
    if (window > 0)
        o.window = window;
    /* The embedded broker and worker log to this terminal: keep them to warnings unless
     * the user asked for more with GQ_LOG. */
    if (!strcmp(broker, "local"))
        setenv("GQ_LOG", "warn", 0);
    char err[GQ_ERRLEN] = "";
    gq_client_t *c = gq_client_new(broker, &o, err, sizeof err);
    if (!c)
        gq_cli_fail(cli, "cannot connect to broker '%s': %s", broker, err);
    return c;
}

static void s_free_data(void *data, void *hint)
{
    (void)hint;
    free(data);
}

/* The value of a stage's param as given, or its spec default; NAME=@sr gives in_sr. */
static double s_stage_num(const gq_cli_stage_t *st, const char *name, int in_sr)
{
    int idx = gq_op_param_index(st->op, name);
    if (idx < 0)
        return 0;
    for (int k = 0; k < st->nraw; k++)
        if (!strcmp(st->params[k].name, name)) {
            if (st->at_sr[k])
                return in_sr;
            const gq_value_t *v = &st->params[k].v;
            return v->type == GQ_PT_FLOAT ? v->f : (double)v->i;
        }
    const gq_value_t *def = &st->op->params[idx].def;
    return def->type == GQ_PT_FLOAT ? def->f : (double)def->i;
}

int gq_cli_spec_out_rate(const gq_cli_spec_t *spec, int in_sr)
{
    double sr = in_sr;
    for (int s = 0; s < spec->nstages; s++) {
        const gq_cli_stage_t *st = &spec->stages[s];
        if (gq_op_param_index(st->op, "target_sr") < 0)
            continue;
        double target = s_stage_num(st, "target_sr", in_sr);
        double up = s_stage_num(st, "up", in_sr), down = s_stage_num(st, "down", in_sr);
        if (target > 0)
            sr = target;
        else if (up > 0 && down > 0) /* a rational ratio instead of rates */
            sr = sr * up / down;
    }
    return (int)(sr + 0.5);
}

bool gq_cli_is_input_path(const char *path)
{
    size_t n = strlen(path);
    return (n > 4 && !strcmp(path + n - 4, ".npy")) || gq_audio_is_audio_path(path);
}

gq_tensor_t *gq_cli_load(const char *path, bool mono, int *sr, char *err, size_t errlen)
{
    gq_tdesc_t d;
    void *data = NULL;
    size_t nbytes = 0;
    *sr = 0;
    if (gq_audio_is_audio_path(path)) {
        if (gq_audio_read(path, mono, &d, &data, sr, err, errlen) != GQ_OK)
            return NULL;
        nbytes = gq_tdesc_nbytes(&d);
    } else if (gq_npy_read(path, &d, &data, &nbytes, err, errlen) != GQ_OK) {
        return NULL;
    }
    gq_tensor_t *t = gq_tensor_wrap(d.dtype, d.shape, d.ndim, data, nbytes, s_free_data, NULL);
    if (!t) {
        free(data);
        snprintf(err, errlen, "%s: cannot make a tensor of it (out of memory)", path);
    }
    return t;
}

gq_status gq_cli_save(const char *path, const gq_tensor_t *t, int sr, char *err, size_t errlen)
{
    gq_tdesc_t d;
    memset(&d, 0, sizeof d);
    d.dtype = gq_tensor_dtype(t);
    d.ndim = gq_tensor_ndim(t);
    const int64_t *shape = gq_tensor_shape(t);
    for (int i = 0; i < d.ndim && i < GQ_MAX_DIMS; i++)
        d.shape[i] = shape[i];
    if (gq_audio_is_audio_path(path))
        return gq_audio_write(path, &d, gq_tensor_data(t), sr, err, errlen);
    return gq_npy_write(path, &d, gq_tensor_data(t), err, errlen);
}

char *gq_cli_tensor_str(const gq_tensor_t *t, char *buf, size_t len)
{
    size_t off = (size_t)snprintf(buf, len, "%s[", gq_dtype_name(gq_tensor_dtype(t)));
    const int64_t *shape = gq_tensor_shape(t);
    for (int i = 0; i < gq_tensor_ndim(t) && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (off < len)
        snprintf(buf + off, len - off, "]");
    return buf;
}

char *gq_cli_backends(const gq_job_t *job, int nstages, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (int s = 0; s < nstages && off < len; s++) {
        const char *b = gq_job_backend(job, s);
        off += (size_t)snprintf(buf + off, len - off, s ? ", %s" : "%s", b ? b : "?");
    }
    return buf;
}

uint64_t gq_cli_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int gq_cli_put_models(const gq_cli_t *cli, gq_client_t *c, gq_cli_spec_t *spec)
{
    for (int s = 0; s < spec->nstages; s++) {
        gq_cli_stage_t *st = &spec->stages[s];
        if (!(st->op->flags & GQ_OPF_HOSTED))
            continue;
        for (int k = 0; k < st->nraw; k++) {
            const gq_param_t *p = &st->params[k];
            struct stat sb;
            if (strcmp(p->name, "model") || p->v.type != GQ_PT_STR || stat(p->v.s, &sb))
                continue;
            gq_model_info_t mi;
            int rc = gq_client_model_put(c, p->v.s, &mi, 60000);
            if (rc != GQ_OK)
                return gq_cli_fail(cli, "%s: model %s: %s: %s", st->op_name, p->v.s,
                                   gq_status_name(rc), mi.error[0] ? mi.error : gq_strerror(rc));
            snprintf(st->digest, sizeof st->digest, "%s", mi.digest);
        }
    }
    return GQ_CLI_OK;
}
