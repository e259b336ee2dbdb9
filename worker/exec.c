#include "exec.h"

#include <stdlib.h>
#include <string.h>
#include "util.h"
#include "wire.h"

/* Host tensors of one stage boundary; owned[i] says whether t[i].data is ours to free. */
typedef struct {
    int n;
    gq_view_t t[GQ_MAX_OUTPUTS > GQ_MAX_INPUTS ? GQ_MAX_OUTPUTS : GQ_MAX_INPUTS];
    int owned[GQ_MAX_OUTPUTS > GQ_MAX_INPUTS ? GQ_MAX_OUTPUTS : GQ_MAX_INPUTS];
} s_set_t;

static void s_set_free(s_set_t *s)
{
    for (int i = 0; i < s->n; i++)
        if (s->owned[i])
            free(s->t[i].data);
    s->n = 0;
}

static gq_backend_t *s_choose(gq_exec_t *ex, const gq_args_t *a, const gq_tdesc_t *in, int nin,
                              int *index)
{
    for (int b = 0; b < ex->nbackends; b++)
        if (ex->backends[b]->ops->supports_op(ex->backends[b], a, in, nin)) {
            *index = b;
            return ex->backends[b];
        }
    return NULL;
}

/* Runs one stage on backend be: wraps host memory when the backend can read it, else
 * uploads; outputs land in fresh host buffers. */
static gq_status s_run_stage(gq_backend_t *be, const gq_args_t *a, s_set_t *in,
                             const gq_tdesc_t *out_desc, int nout, s_set_t *out, char *err,
                             size_t errlen)
{
    const gq_backend_ops_t *ops = be->ops;
    gq_buffer_t ib[GQ_MAX_INPUTS], ob[GQ_MAX_OUTPUTS];
    gq_tdesc_t in_desc[GQ_MAX_INPUTS];
    int nib = 0, nob = 0;
    gq_status rc = GQ_OK;
    memset(ib, 0, sizeof ib);
    memset(ob, 0, sizeof ob);
    out->n = 0;
    for (int i = 0; i < nout; i++) {
        size_t nbytes = gq_tdesc_nbytes(&out_desc[i]);
        out->t[i].desc = out_desc[i];
        out->t[i].nbytes = nbytes;
        out->t[i].data = gq_aligned_alloc(64, nbytes);
        out->owned[i] = 1;
        out->n = i + 1;
        if (!out->t[i].data) {
            gq_errf(err, errlen, "%s: out of memory for output %d (%zu bytes)", a->op->name, i,
                    nbytes);
            rc = GQ_ENOMEM;
            goto done;
        }
    }
    for (int i = 0; i < in->n; i++, nib++) {
        in_desc[i] = in->t[i].desc;
        rc = ops->wrap_host ? ops->wrap_host(be, in->t[i].data, in->t[i].nbytes, &ib[i])
                            : ops->alloc(be, in->t[i].nbytes, &ib[i]);
        if (!rc && !ops->wrap_host)
            rc = ops->upload(be, &ib[i], in->t[i].data, in->t[i].nbytes);
        if (rc) {
            gq_errf(err, errlen, "%s: %s: cannot stage input %d: %s", a->op->name, ops->name, i,
                    gq_strerror(rc));
            goto done;
        }
    }
    for (int i = 0; i < nout; i++, nob++) {
        rc = ops->wrap_host ? ops->wrap_host(be, out->t[i].data, out->t[i].nbytes, &ob[i])
                            : ops->alloc(be, out->t[i].nbytes, &ob[i]);
        if (rc) {
            gq_errf(err, errlen, "%s: %s: cannot allocate output %d: %s", a->op->name, ops->name, i,
                    gq_strerror(rc));
            goto done;
        }
    }
    if ((rc = ops->run(be, a, in_desc, ib, in->n, out_desc, ob, nout, err, errlen)))
        goto done;
    if (!ops->wrap_host)
        for (int i = 0; i < nout && !rc; i++)
            if ((rc = ops->download(be, out->t[i].data, &ob[i], out->t[i].nbytes)))
                gq_errf(err, errlen, "%s: %s: cannot read back output %d: %s", a->op->name,
                        ops->name, i, gq_strerror(rc));
    if (!rc && ops->sync)
        rc = ops->sync(be);
done:
    for (int i = 0; i < nib; i++)
        ops->free(be, &ib[i]);
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
    set->n = 0;
    for (int i = 0; i < nin; i++, set->n++) {
        set->t[i] = in[i];
        set->owned[i] = 0;
        size_t align = gq_dtype_align(in[i].desc.dtype);
        if (align && ((uintptr_t)in[i].data % align)) {
            void *copy = gq_aligned_alloc(64, in[i].nbytes);
            if (!copy)
                return GQ_ENOMEM;
            memcpy(copy, in[i].data, in[i].nbytes);
            set->t[i].data = copy;
            set->owned[i] = 1;
        }
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
        int index = -1;
        gq_backend_t *be = s_choose(ex, &args, in_desc, cur.n, &index);
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
            atomic_fetch_add(&ex->fallbacks, 1);
        }
        if ((rc = s_run_stage(be, &args, &cur, out_desc, nout, &next, err, errlen)))
            break;
        out->backend[k] = be->ops->name;
        s_set_free(&cur);
        cur = next;
    }
    if (rc) {
        s_set_free(&cur);
        memset(out, 0, sizeof *out);
        return rc;
    }
    /* Inputs passed straight through (an empty pipeline is refused by the codec) are never
     * the result of a stage, so every buffer in cur is owned here. */
    out->n = cur.n;
    for (int i = 0; i < cur.n; i++)
        out->t[i] = cur.t[i];
    return GQ_OK;
}

void gq_exec_out_free(gq_exec_out_t *out)
{
    for (int i = 0; i < out->n; i++)
        free(out->t[i].data);
    out->n = 0;
}
