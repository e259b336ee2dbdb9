#include "exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util.h"
#include "wire.h"

#define S_MAX_SET (GQ_MAX_OUTPUTS > GQ_MAX_INPUTS ? GQ_MAX_OUTPUTS : GQ_MAX_INPUTS)

/* A tensor at a stage boundary: in host memory, in a backend's device memory, or both
 * (after a download). */
typedef struct {
    gq_tdesc_t desc;
    size_t nbytes;
    void *host;        /* the bytes in host memory; NULL while they are only on dev */
    int host_owned;    /* host was allocated here (free()) */
    gq_backend_t *dev; /* backend whose buffer buf holds the bytes; NULL: none */
    gq_buffer_t buf;
} s_tensor_t;

typedef struct {
    int n;
    s_tensor_t t[S_MAX_SET];
} s_set_t;

static void s_set_free(s_set_t *s)
{
    for (int i = 0; i < s->n; i++) {
        s_tensor_t *t = &s->t[i];
        if (t->host_owned)
            free(t->host);
        if (t->dev)
            t->dev->ops->free(t->dev, &t->buf);
    }
    s->n = 0;
}

/* The backend's own account of its last failure, or the status's description. */
static const char *s_why(gq_backend_t *be, gq_status rc)
{
    const char *w = be->ops->last_error ? be->ops->last_error(be) : NULL;
    return w && *w ? w : gq_strerror(rc);
}

/* Makes t readable on the host: downloads it once from its device when needed. */
static gq_status s_to_host(s_tensor_t *t, const char *op, char *err, size_t errlen)
{
    if (t->host || !t->dev)
        return GQ_OK;
    void *h = gq_aligned_alloc(64, t->nbytes);
    if (!h) {
        gq_errf(err, errlen, "%s: out of memory reading back %zu bytes", op, t->nbytes);
        return GQ_ENOMEM;
    }
    gq_status rc = t->dev->ops->download(t->dev, h, &t->buf, t->nbytes);
    if (rc) {
        free(h);
        gq_errf(err, errlen, "%s: %s: cannot read back a tensor of %zu bytes: %s", op,
                t->dev->ops->name, t->nbytes, s_why(t->dev, rc));
        return rc;
    }
    t->host = h;
    t->host_owned = 1;
    return GQ_OK;
}

static gq_backend_t *s_choose(gq_exec_t *ex, int from, const gq_args_t *a, const gq_tdesc_t *in,
                              int nin, int *index)
{
    for (int b = from; b < ex->nbackends; b++)
        if (ex->backends[b]->ops->supports_op(ex->backends[b], a, in, nin)) {
            *index = b;
            return ex->backends[b];
        }
    return NULL;
}

/* Runs one stage on backend be. Inputs already in be's memory are used in place; host
 * inputs are wrapped when be reads host memory, else uploaded; inputs on another device
 * come through the host. Outputs land in host memory when be reads host memory (the CPU:
 * zero-copy, as before), else stay in be's memory for the next stage. */
static gq_status s_run_stage(gq_backend_t *be, const gq_args_t *a, s_set_t *in,
                             const gq_tdesc_t *out_desc, int nout, s_set_t *out, char *err,
                             size_t errlen)
{
    const gq_backend_ops_t *ops = be->ops;
    const char *op = a->op->name;
    gq_buffer_t ib[GQ_MAX_INPUTS], ob[GQ_MAX_OUTPUTS];
    int staged[GQ_MAX_INPUTS] = {0}; /* ib[i] belongs to this stage */
    gq_tdesc_t in_desc[GQ_MAX_INPUTS];
    int nob = 0;
    gq_status rc = GQ_OK;
    memset(ib, 0, sizeof ib);
    memset(ob, 0, sizeof ob);
    memset(out, 0, sizeof *out);
    for (int i = 0; i < in->n; i++) {
        s_tensor_t *t = &in->t[i];
        in_desc[i] = t->desc;
        if (t->dev == be) {
            ib[i] = t->buf;
            continue;
        }
        if ((rc = s_to_host(t, op, err, errlen)))
            goto done;
        rc = ops->wrap_host ? ops->wrap_host(be, t->host, t->nbytes, &ib[i])
                            : ops->alloc(be, t->nbytes, &ib[i]);
        if (!rc)
            staged[i] = 1;
        if (!rc && !ops->wrap_host)
            rc = ops->upload(be, &ib[i], t->host, t->nbytes);
        if (rc) {
            gq_errf(err, errlen, "%s: %s: cannot stage input %d (%zu bytes): %s", op, ops->name, i,
                    t->nbytes, s_why(be, rc));
            goto done;
        }
    }
    for (int i = 0; i < nout; i++, nob++) {
        s_tensor_t *t = &out->t[i];
        out->n = i + 1;
        t->desc = out_desc[i];
        t->nbytes = gq_tdesc_nbytes(&out_desc[i]);
        if (ops->wrap_host) {
            if (!(t->host = gq_aligned_alloc(64, t->nbytes))) {
                gq_errf(err, errlen, "%s: out of memory for output %d (%zu bytes)", op, i,
                        t->nbytes);
                rc = GQ_ENOMEM;
                goto done;
            }
            t->host_owned = 1;
            rc = ops->wrap_host(be, t->host, t->nbytes, &ob[i]);
        } else if (!(rc = ops->alloc(be, t->nbytes, &ob[i]))) {
            t->dev = be;
            t->buf = ob[i];
        }
        if (rc) {
            gq_errf(err, errlen, "%s: %s: cannot allocate output %d (%zu bytes): %s", op, ops->name,
                    i, t->nbytes, s_why(be, rc));
            goto done;
        }
    }
    rc = ops->run(be, a, in_desc, ib, in->n, out_desc, ob, nout, err, errlen);
done:
    for (int i = 0; i < in->n; i++)
        if (staged[i])
            ops->free(be, &ib[i]);
    /* Wrapped outputs: the wrapper goes, the host memory stays in out. Device outputs
     * are owned by out (t->buf). */
    if (ops->wrap_host)
        for (int i = 0; i < nob; i++)
            ops->free(be, &ob[i]);
    if (rc)
        s_set_free(out);
    return rc;
}

/* Kernels may load elements with typed pointers: give them memory aligned for the dtype
 * (network buffers come at any offset). */
static gq_status s_align_inputs(const gq_view_t *in, int nin, s_set_t *set)
{
    memset(set, 0, sizeof *set);
    for (int i = 0; i < nin; i++, set->n++) {
        s_tensor_t *t = &set->t[i];
        t->desc = in[i].desc;
        t->nbytes = in[i].nbytes;
        t->host = in[i].data;
        size_t align = gq_dtype_align(in[i].desc.dtype);
        if (align && ((uintptr_t)in[i].data % align)) {
            void *copy = gq_aligned_alloc(64, in[i].nbytes);
            if (!copy)
                return GQ_ENOMEM;
            memcpy(copy, in[i].data, in[i].nbytes);
            t->host = copy;
            t->host_owned = 1;
        }
    }
    return GQ_OK;
}

static int s_op_index(const gq_op_spec_t *op)
{
    int n = gq_op_count();
    for (int i = 0; i < n; i++)
        if (gq_op_at(i) == op)
            return i < GQ_EXEC_MAX_OPS ? i : GQ_EXEC_MAX_OPS - 1;
    return GQ_EXEC_MAX_OPS - 1;
}

/* Counts a stage that ran on backend ran after backends [0, ran) were passed over. */
static void s_count_fallback(gq_exec_t *ex, const gq_op_spec_t *op, int ran)
{
    int oi = s_op_index(op);
    atomic_fetch_add(&ex->fallbacks, 1);
    for (int b = 0; b < ran; b++)
        atomic_fetch_add(&ex->fallback_by[oi][b], 1);
}

static bool s_retryable(gq_status rc)
{
    return rc == GQ_EDEVICE_OOM || rc == GQ_EDEVICE_LOST;
}

/* A hosted stage: its inputs brought to the host, the hook's outputs owned by next. */
static gq_status s_run_hosted(gq_exec_t *ex, const gq_args_t *a, s_set_t *cur, s_set_t *next,
                              const char **ran_on, char *err, size_t errlen)
{
    gq_view_t in[GQ_MAX_INPUTS], out[GQ_MAX_OUTPUTS];
    int nout = 0;
    memset(next, 0, sizeof *next);
    if (!ex->hosted) {
        gq_errf(err, errlen, "%s: this worker cannot run it (no hosted-op runner)", a->op->name);
        return GQ_EUNSUPPORTED;
    }
    for (int i = 0; i < cur->n; i++) {
        gq_status rc = s_to_host(&cur->t[i], a->op->name, err, errlen);
        if (rc)
            return rc;
        in[i] = (gq_view_t){cur->t[i].desc, cur->t[i].host, cur->t[i].nbytes};
    }
    const char *backend = NULL;
    gq_status rc = ex->hosted(ex->hosted_ctx, ex, a, in, cur->n, out, &nout, &backend, err, errlen);
    if (rc)
        return rc;
    *ran_on = backend ? backend : "cpu";
    next->n = nout;
    for (int i = 0; i < nout; i++) {
        next->t[i].desc = out[i].desc;
        next->t[i].nbytes = out[i].nbytes;
        next->t[i].host = out[i].data;
        next->t[i].host_owned = 1;
    }
    return GQ_OK;
}

gq_status gq_exec_run(gq_exec_t *ex, Gq__Wire__Stage *const *stages, size_t nstages,
                      const gq_view_t *in, int nin, gq_exec_out_t *out, char *err, size_t errlen)
{
    s_set_t cur, next;
    memset(out, 0, sizeof *out);
    if (nin > GQ_MAX_INPUTS || nstages > GQ_WIRE_MAX_STAGES) {
        gq_errf(err, errlen, "job has %d inputs and %zu stages, limits %d and %d", nin, nstages,
                GQ_MAX_INPUTS, GQ_WIRE_MAX_STAGES);
        return GQ_EINVAL;
    }
    gq_status rc = s_align_inputs(in, nin, &cur);
    if (rc) {
        s_set_free(&cur);
        gq_errf(err, errlen, "out of memory aligning inputs");
        return rc;
    }
    for (size_t k = 0; k < nstages; k++) {
        const Gq__Wire__Stage *st = stages[k];
        const gq_op_spec_t *op = gq_op_find(st->op);
        if (!op) {
            gq_errf(err, errlen, "unknown op '%s'", st->op);
            rc = GQ_EUNKNOWN_OP;
            break;
        }
        gq_param_t params[GQ_MAX_PARAMS];
        int np = gq_wire_stage_params(st, params, GQ_MAX_PARAMS);
        gq_args_t args;
        gq_tdesc_t in_desc[GQ_MAX_INPUTS], out_desc[GQ_MAX_OUTPUTS];
        int nout = 0;
        for (int i = 0; i < cur.n; i++)
            in_desc[i] = cur.t[i].desc;
        if ((rc = gq_op_resolve(op, params, np, &args, err, errlen)) ||
            (rc = gq_op_infer(&args, in_desc, cur.n, out_desc, &nout, err, errlen)))
            break;
        if (op->flags & GQ_OPF_HOSTED) {
            if ((rc = s_run_hosted(ex, &args, &cur, &next, &out->backend[k], err, errlen)))
                break;
            s_set_free(&cur);
            cur = next;
            continue;
        }
        int index = -1;
        gq_backend_t *be = s_choose(ex, 0, &args, in_desc, cur.n, &index);
        if (!be) {
            gq_errf(err, errlen, "%s: no backend of this worker runs it", op->name);
            rc = GQ_EUNSUPPORTED;
            break;
        }
        if (index > 0) {
            if (ex->strict) {
                gq_errf(err, errlen,
                        "%s: %s declined it and strict mode forbids falling back "
                        "to %s",
                        op->name, ex->backends[0]->ops->name, be->ops->name);
                rc = GQ_EUNSUPPORTED;
                break;
            }
            s_count_fallback(ex, op, index);
        }
        rc = s_run_stage(be, &args, &cur, out_desc, nout, &next, err, errlen);
        if (rc && s_retryable(rc) && !ex->strict) {
            /* The device ran out of memory or went away: the next backend that runs the
             * op takes this stage, from host copies of its inputs (which a lost device
             * may not give back: then the job fails with that). */
            int lower = -1;
            gq_backend_t *alt = s_choose(ex, index + 1, &args, in_desc, cur.n, &lower);
            if (alt) {
                GQ_WARN("%s; retrying on %s", err, alt->ops->name);
                gq_status hrc = GQ_OK;
                for (int i = 0; i < cur.n && !hrc; i++)
                    hrc = s_to_host(&cur.t[i], op->name, err, errlen);
                if (!hrc) {
                    atomic_fetch_add(&ex->retries, 1);
                    s_count_fallback(ex, op, lower);
                    be = alt;
                    rc = s_run_stage(be, &args, &cur, out_desc, nout, &next, err, errlen);
                }
            }
        }
        if (rc)
            break;
        out->backend[k] = be->ops->name;
        s_set_free(&cur);
        cur = next;
    }
    /* Results go out from host memory: read back what is still on a device. Inputs
     * passed straight through (an empty pipeline is refused by the codec) are never the
     * result of a stage, so every host buffer in cur is owned here. */
    for (int i = 0; i < cur.n && !rc; i++)
        rc = s_to_host(&cur.t[i], "job output", err, errlen);
    if (rc) {
        s_set_free(&cur);
        memset(out, 0, sizeof *out);
        return rc;
    }
    out->n = cur.n;
    for (int i = 0; i < cur.n; i++) {
        s_tensor_t *t = &cur.t[i];
        out->t[i].desc = t->desc;
        out->t[i].data = t->host;
        out->t[i].nbytes = t->nbytes;
        t->host_owned = 0;
    }
    s_set_free(&cur); /* device copies */
    return GQ_OK;
}

void gq_exec_out_free(gq_exec_out_t *out)
{
    for (int i = 0; i < out->n; i++)
        free(out->t[i].data);
    out->n = 0;
}

/* The slot of a named op, added when absent (the last slot takes every name past it). */
static gq_exec_named_t *s_named(gq_exec_t *ex, const char *op, bool add)
{
    int n = atomic_load(&ex->nnamed);
    for (int i = 0; i < n; i++)
        if (!strcmp(ex->named[i].op, op))
            return &ex->named[i];
    if (!add)
        return NULL;
    while (atomic_flag_test_and_set(&ex->named_lock))
        ;
    n = atomic_load(&ex->nnamed);
    int i = 0;
    while (i < n && strcmp(ex->named[i].op, op))
        i++;
    if (i == n && n < GQ_EXEC_MAX_NAMED) {
        snprintf(ex->named[n].op, sizeof ex->named[n].op, "%s",
                 n == GQ_EXEC_MAX_NAMED - 1 ? "other" : op);
        atomic_store(&ex->nnamed, n + 1);
    }
    atomic_flag_clear(&ex->named_lock);
    return &ex->named[i < GQ_EXEC_MAX_NAMED ? i : GQ_EXEC_MAX_NAMED - 1];
}

void gq_exec_count_fallback(gq_exec_t *ex, const char *op, const char *backend)
{
    int b = 0;
    while (b < ex->nbackends && strcmp(ex->backends[b]->ops->name, backend))
        b++;
    if (b == ex->nbackends)
        return;
    const gq_op_spec_t *spec = gq_op_find(op);
    if (spec) {
        atomic_fetch_add(&ex->fallbacks, 1);
        atomic_fetch_add(&ex->fallback_by[s_op_index(spec)][b], 1);
    } else {
        atomic_fetch_add(&s_named(ex, op, true)->by[b], 1);
    }
}

uint64_t gq_exec_fallbacks(gq_exec_t *ex, const char *op, const char *backend)
{
    const gq_op_spec_t *spec = gq_op_find(op);
    if (!spec && op && backend) {
        const gq_exec_named_t *nm = s_named(ex, op, false);
        for (int b = 0; nm && b < ex->nbackends; b++)
            if (!strcmp(ex->backends[b]->ops->name, backend))
                return atomic_load(&nm->by[b]);
        return 0;
    }
    if (!spec || !backend)
        return 0;
    for (int b = 0; b < ex->nbackends; b++)
        if (!strcmp(ex->backends[b]->ops->name, backend))
            return atomic_load(&ex->fallback_by[s_op_index(spec)][b]);
    return 0;
}

int gq_exec_fallbacks_text(gq_exec_t *ex, char *buf, size_t len)
{
    int lines = 0, nops = gq_op_count();
    size_t off = 0;
    if (len)
        buf[0] = '\0';
    for (int o = 0; o < nops && o < GQ_EXEC_MAX_OPS; o++)
        for (int b = 0; b < ex->nbackends; b++) {
            uint64_t n = atomic_load(&ex->fallback_by[o][b]);
            if (!n)
                continue;
            int w = snprintf(buf + off, len - off,
                             "gpuq_worker_fallbacks_total{op=\"%s\",backend=\"%s\"} %llu\n",
                             gq_op_at(o)->name, ex->backends[b]->ops->name, (unsigned long long)n);
            if (w < 0 || (size_t)w >= len - off) {
                if (len > off)
                    buf[off] = '\0';
                return lines;
            }
            off += (size_t)w;
            lines++;
        }
    int nn = atomic_load(&ex->nnamed);
    for (int o = 0; o < nn; o++)
        for (int b = 0; b < ex->nbackends; b++) {
            uint64_t n = atomic_load(&ex->named[o].by[b]);
            if (!n)
                continue;
            int w = snprintf(buf + off, len - off,
                             "gpuq_worker_fallbacks_total{op=\"%s\",backend=\"%s\"} %llu\n",
                             ex->named[o].op, ex->backends[b]->ops->name, (unsigned long long)n);
            if (w < 0 || (size_t)w >= len - off) {
                if (len > off)
                    buf[off] = '\0';
                return lines;
            }
            off += (size_t)w;
            lines++;
        }
    return lines;
}
