#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "util.h"

#define S_MAX_FRAMES (3 + GQ_WIRE_MAX_PAYLOAD)

typedef gq_status (*s_check_fn)(const ProtobufCMessage *hdr, gq_wire_msg_t *m,
                                const gq_wire_limits_t *lim, char *err, size_t errlen);

typedef struct {
    int cmd;
    const char *name;
    const ProtobufCMessageDescriptor *desc;
    s_check_fn check;
    int tensors; /* whether tensor frames may follow the header */
} s_cmd_entry_t;

void gq_wire_limits_default(gq_wire_limits_t *lim)
{
    lim->max_header = 256u << 10; /* protobuf-c allocates ~36x a header of empty stages */
    lim->max_tensor_bytes = (uint64_t)1 << 30;
    lim->max_total_bytes = (uint64_t)4 << 30;
}

static gq_status s_str(const char *s, size_t max, const char *what, char *err, size_t errlen)
{
    size_t n = s ? strnlen(s, max + 1) : 0;
    if (n > max) {
        gq_errf(err, errlen, "%s longer than %zu bytes", what, max);
        return GQ_EPROTO;
    }
    return GQ_OK;
}

static gq_status s_name(const char *s, const char *what, char *err, size_t errlen)
{
    if (!s || !*s) {
        gq_errf(err, errlen, "%s is empty", what);
        return GQ_EPROTO;
    }
    return s_str(s, GQ_MAX_NAME - 1, what, err, errlen);
}

/* Checks tensor descriptors against the payload frames they describe. */
static gq_status s_tensors(Gq__Wire__TensorDesc *const *tds, size_t n, gq_wire_msg_t *m,
                           const gq_wire_limits_t *lim, const char *what, char *err, size_t errlen)
{
    if (n != (size_t)m->npayload) {
        gq_errf(err, errlen, "%zu %s described but %d tensor frames sent", n, what, m->npayload);
        return GQ_EPROTO;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const Gq__Wire__TensorDesc *td = tds[i];
        gq_tdesc_t *d = &m->desc[i];
        if ((int)td->dtype <= 0 || (int)td->dtype >= GQ_DTYPE_COUNT) {
            gq_errf(err, errlen, "%s %zu: dtype %d is not a known dtype", what, i, (int)td->dtype);
            return GQ_EPROTO;
        }
        if (td->n_shape > GQ_MAX_DIMS) {
            gq_errf(err, errlen, "%s %zu: %zu dims, at most %d allowed", what, i, td->n_shape,
                    GQ_MAX_DIMS);
            return GQ_EPROTO;
        }
        memset(d, 0, sizeof *d);
        d->dtype = (gq_dtype_t)td->dtype;
        d->ndim = (int)td->n_shape;
        for (size_t k = 0; k < td->n_shape; k++) {
            if (td->shape[k] < 0 || td->shape[k] > GQ_MAX_DIM_SIZE) {
                gq_errf(err, errlen, "%s %zu: dim %zu = %lld out of range 0..%lld", what, i, k,
                        (long long)td->shape[k], (long long)GQ_MAX_DIM_SIZE);
                return GQ_EPROTO;
            }
            d->shape[k] = td->shape[k];
        }
        size_t nbytes;
        char shape[128];
        if (gq_tdesc_check(d, NULL, &nbytes) != GQ_OK) {
            gq_errf(err, errlen, "%s %zu: %s has a byte size that overflows", what, i,
                    gq_tdesc_str(d, shape, sizeof shape));
            return GQ_ETOOBIG;
        }
        if (td->nbytes != nbytes) {
            gq_errf(err, errlen, "%s %zu: nbytes %llu does not match %s (%zu bytes)", what, i,
                    (unsigned long long)td->nbytes, gq_tdesc_str(d, shape, sizeof shape), nbytes);
            return GQ_EPROTO;
        }
        size_t frame = zmq_msg_size(&m->payload[i]);
        if (frame != nbytes) {
            gq_errf(err, errlen, "%s %zu: frame has %zu bytes, %s needs %zu", what, i, frame,
                    gq_tdesc_str(d, shape, sizeof shape), nbytes);
            return GQ_EPROTO;
        }
        if (nbytes > lim->max_tensor_bytes) {
            gq_errf(err, errlen, "%s %zu: %zu bytes over the limit of %llu", what, i, nbytes,
                    (unsigned long long)lim->max_tensor_bytes);
            return GQ_ETOOBIG;
        }
        total += nbytes;
        if (total > lim->max_total_bytes) {
            gq_errf(err, errlen, "%s: %llu bytes in all, over the limit of %llu", what,
                    (unsigned long long)total, (unsigned long long)lim->max_total_bytes);
            return GQ_ETOOBIG;
        }
    }
    return GQ_OK;
}

static gq_status s_stages(Gq__Wire__Stage *const *stages, size_t n, char *err, size_t errlen)
{
    if (n == 0 || n > GQ_WIRE_MAX_STAGES) {
        gq_errf(err, errlen, "%zu stages, must be 1..%d", n, GQ_WIRE_MAX_STAGES);
        return GQ_EPROTO;
    }
    for (size_t i = 0; i < n; i++) {
        const Gq__Wire__Stage *st = stages[i];
        gq_status rc = s_name(st->op, "op name", err, errlen);
        if (rc)
            return rc;
        if (st->n_params > GQ_MAX_PARAMS) {
            gq_errf(err, errlen, "%s: %zu params, at most %d allowed", st->op, st->n_params,
                    GQ_MAX_PARAMS);
            return GQ_EPROTO;
        }
        for (size_t k = 0; k < st->n_params; k++) {
            const Gq__Wire__Param *p = st->params[k];
            if ((rc = s_name(p->name, "param name", err, errlen)))
                return rc;
            switch (p->value_case) {
            case GQ__WIRE__PARAM__VALUE_I:
            case GQ__WIRE__PARAM__VALUE_F:
            case GQ__WIRE__PARAM__VALUE_B:
                break;
            case GQ__WIRE__PARAM__VALUE_S:
                if ((rc = s_str(p->s, GQ_MAX_STR - 1, "param value", err, errlen)))
                    return rc;
                break;
            default:
                gq_errf(err, errlen, "%s: param '%s' has no value", st->op, p->name);
                return GQ_EPROTO;
            }
        }
    }
    return GQ_OK;
}

static gq_status s_check_submit(const ProtobufCMessage *hdr, gq_wire_msg_t *m,
                                const gq_wire_limits_t *lim, char *err, size_t errlen)
{
    const Gq__Wire__Submit *s = (const Gq__Wire__Submit *)hdr;
    m->job_id = s->job_id;
    if (s->job_id == 0) {
        gq_errf(err, errlen, "submit: job_id 0 is reserved");
        return GQ_EPROTO;
    }
    if (s->priority < 0 || s->priority > GQ__WIRE__PRIORITY__PRIO_BACKGROUND) {
        gq_errf(err, errlen, "submit: priority %d is not one of 0..3", (int)s->priority);
        return GQ_EPROTO;
    }
    if ((int)s->cache_policy < 0 || s->cache_policy > GQ__WIRE__CACHE_POLICY__CACHE_REFRESH) {
        gq_errf(err, errlen, "submit: cache_policy %d is not one of 0..2", (int)s->cache_policy);
        return GQ_EPROTO;
    }
    if (s->cache_ttl_ms > GQ_WIRE_MAX_TTL_MS) {
        gq_errf(err, errlen, "submit: cache_ttl_ms %llu over %llu",
                (unsigned long long)s->cache_ttl_ms, (unsigned long long)GQ_WIRE_MAX_TTL_MS);
        return GQ_EPROTO;
    }
    if (s->idempotency_key.len > GQ_WIRE_MAX_IDEMPOTENCY) {
        gq_errf(err, errlen, "submit: idempotency key longer than %d bytes",
                GQ_WIRE_MAX_IDEMPOTENCY);
        return GQ_EPROTO;
    }
    gq_status rc = s_stages(s->stages, s->n_stages, err, errlen);
    if (rc)
        return rc;
    return s_tensors(s->inputs, s->n_inputs, m, lim, "input", err, errlen);
}

/* A batch job: 2..GQ_WIRE_MAX_BATCH distinct non-zero ids, the first the job's own, and
 * every input stacked along dim 0 with one row per id. */
static gq_status s_check_batch(const Gq__Wire__Job *j, char *err, size_t errlen)
{
    size_t k = j->n_batch_ids;
    if (!k)
        return GQ_OK;
    if (k < 2 || k > GQ_WIRE_MAX_BATCH) {
        gq_errf(err, errlen, "job: batch of %zu ids, must be 2..%d", k, GQ_WIRE_MAX_BATCH);
        return GQ_EPROTO;
    }
    if (j->batch_ids[0] != j->job_id) {
        gq_errf(err, errlen, "job: batch_ids[0] must be the job's id");
        return GQ_EPROTO;
    }
    for (size_t i = 0; i < k; i++)
        for (size_t q = 0; q < i; q++)
            if (!j->batch_ids[i] || j->batch_ids[i] == j->batch_ids[q]) {
                gq_errf(err, errlen, "job: batch id %zu is 0 or repeated", i);
                return GQ_EPROTO;
            }
    for (size_t i = 0; i < j->n_inputs; i++) {
        int64_t d0 = j->inputs[i]->n_shape ? j->inputs[i]->shape[0] : 0;
        if (j->batch_concat ? (d0 < (int64_t)k || d0 % (int64_t)k) : d0 != (int64_t)k) {
            gq_errf(err, errlen, "job: batch of %zu but input %zu's dim 0 is %lld", k, i,
                    (long long)d0);
            return GQ_EPROTO;
        }
    }
    return GQ_OK;
}

static gq_status s_check_job(const ProtobufCMessage *hdr, gq_wire_msg_t *m,
                             const gq_wire_limits_t *lim, char *err, size_t errlen)
{
    const Gq__Wire__Job *j = (const Gq__Wire__Job *)hdr;
    m->job_id = j->job_id;
    if (j->job_id == 0) {
        gq_errf(err, errlen, "job: job_id 0 is reserved");
        return GQ_EPROTO;
    }
    gq_status rc = s_stages(j->stages, j->n_stages, err, errlen);
    if (rc)
        return rc;
    if ((rc = s_tensors(j->inputs, j->n_inputs, m, lim, "input", err, errlen)))
        return rc;
    if ((int)j->priority < 0 || j->priority > GQ__WIRE__PRIORITY__PRIO_BACKGROUND) {
        gq_errf(err, errlen, "job: priority %d is not one of 0..3", (int)j->priority);
        return GQ_EPROTO;
    }
    return s_check_batch(j, err, errlen);
}

static gq_status s_backends(char *const *names, size_t n, char *err, size_t errlen)
{
    if (n > GQ_WIRE_MAX_STAGES) {
        gq_errf(err, errlen, "%zu backend names, at most %d", n, GQ_WIRE_MAX_STAGES);
        return GQ_EPROTO;
    }
    for (size_t i = 0; i < n; i++) {
        gq_status rc = s_name(names[i], "backend name", err, errlen);
        if (rc)
            return rc;
    }
    return GQ_OK;
}

static gq_status s_check_result(const ProtobufCMessage *hdr, gq_wire_msg_t *m,
                                const gq_wire_limits_t *lim, char *err, size_t errlen)
{
    const Gq__Wire__Result *r = (const Gq__Wire__Result *)hdr;
    m->job_id = r->job_id;
    if ((int)r->cache_tier < 0 || r->cache_tier > GQ__WIRE__CACHE_TIER__TIER_SHARED) {
        gq_errf(err, errlen, "result: cache_tier %d is not one of 0..4", (int)r->cache_tier);
        return GQ_EPROTO;
    }
    gq_status rc = s_backends(r->backends, r->n_backends, err, errlen);
    if (!rc)
        rc = s_str(r->worker, GQ_MAX_STR - 1, "worker name", err, errlen);
    if (!rc)
        rc = s_tensors(r->outputs, r->n_outputs, m, lim, "output", err, errlen);
    return rc;
}

static gq_status s_check_done(const ProtobufCMessage *hdr, gq_wire_msg_t *m,
                              const gq_wire_limits_t *lim, char *err, size_t errlen)
{
    const Gq__Wire__Done *d = (const Gq__Wire__Done *)hdr;
    m->job_id = d->job_id;
    if (d->job_id == 0) {
        gq_errf(err, errlen, "done: job_id 0 is reserved");
        return GQ_EPROTO;
    }
    if (d->code > 0) {
        gq_errf(err, errlen, "done: code %d is not a gq_status", (int)d->code);
        return GQ_EPROTO;
    }
    if (d->code != 0 && d->n_outputs) {
        gq_errf(err, errlen, "done: failure code with %zu outputs", d->n_outputs);
        return GQ_EPROTO;
    }
    gq_status rc = s_str(d->message, GQ_WIRE_MAX_MESSAGE, "done message", err, errlen);
    if (!rc)
        rc = s_backends(d->backends, d->n_backends, err, errlen);
    if (!rc)
        rc = s_tensors(d->outputs, d->n_outputs, m, lim, "output", err, errlen);
    return rc;
}

static gq_status s_check_error(const ProtobufCMessage *hdr, gq_wire_msg_t *m,
                               const gq_wire_limits_t *lim, char *err, size_t errlen)
{
    (void)lim;
    const Gq__Wire__Error *e = (const Gq__Wire__Error *)hdr;
    m->job_id = e->job_id;
    if (e->code >= 0) {
        gq_errf(err, errlen, "error: code %d is not a failure", (int)e->code);
        return GQ_EPROTO;
    }
    gq_status rc = s_str(e->message, GQ_WIRE_MAX_MESSAGE, "error message", err, errlen);
    if (!rc)
        rc = s_str(e->worker, GQ_MAX_STR - 1, "worker name", err, errlen);
    return rc;
}

static gq_status s_devices(Gq__Wire__Device *const *ds, size_t n, char *err, size_t errlen)
{
    gq_status rc = GQ_OK;
    if (n > GQ_WIRE_MAX_LIST) {
        gq_errf(err, errlen, "%zu devices, at most %d", n, GQ_WIRE_MAX_LIST);
        return GQ_EPROTO;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        const Gq__Wire__Device *d = ds[i];
        rc = s_str(d->backend, GQ_MAX_NAME - 1, "device backend", err, errlen);
        if (!rc)
            rc = s_str(d->name, GQ_MAX_STR - 1, "device name", err, errlen);
        if (!rc)
            rc = s_str(d->vendor, GQ_MAX_STR - 1, "device vendor", err, errlen);
        if (!rc)
            rc = s_str(d->driver, GQ_MAX_STR - 1, "device driver", err, errlen);
    }
    return rc;
}

static gq_status s_check_ready(const ProtobufCMessage *hdr, gq_wire_msg_t *m,
                               const gq_wire_limits_t *lim, char *err, size_t errlen)
{
    (void)m;
    (void)lim;
    const Gq__Wire__Ready *r = (const Gq__Wire__Ready *)hdr;
    gq_status rc = s_name(r->name, "worker name", err, errlen);
    if (rc)
        return rc;
    if (r->credits == 0 || r->credits > GQ_WIRE_MAX_CREDITS) {
        gq_errf(err, errlen, "ready: credits %u must be in 1..%d", r->credits, GQ_WIRE_MAX_CREDITS);
        return GQ_EPROTO;
    }
    if (r->n_backends > GQ_WIRE_MAX_LIST || r->n_devices > GQ_WIRE_MAX_LIST ||
        r->n_ops > GQ_WIRE_MAX_OPS) {
        gq_errf(err, errlen, "ready: %zu backends, %zu devices, %zu ops: over %d/%d/%d",
                r->n_backends, r->n_devices, r->n_ops, GQ_WIRE_MAX_LIST, GQ_WIRE_MAX_LIST,
                GQ_WIRE_MAX_OPS);
        return GQ_EPROTO;
    }
    for (size_t i = 0; i < r->n_backends && !rc; i++)
        rc = s_name(r->backends[i], "backend name", err, errlen);
    for (size_t i = 0; i < r->n_ops && !rc; i++)
        rc = s_name(r->ops[i], "op name", err, errlen);
    return rc ? rc : s_devices(r->devices, r->n_devices, err, errlen);
}

static gq_status s_check_heartbeat(const ProtobufCMessage *hdr, gq_wire_msg_t *m,
                                   const gq_wire_limits_t *lim, char *err, size_t errlen)
{
    (void)m;
    (void)lim;
    const Gq__Wire__Heartbeat *h = (const Gq__Wire__Heartbeat *)hdr;
    gq_status rc = GQ_OK;
    if (h->n_fallbacks > GQ_WIRE_MAX_FALLBACKS) {
        gq_errf(err, errlen, "heartbeat: %zu fallback counters, at most %d", h->n_fallbacks,
                GQ_WIRE_MAX_FALLBACKS);
        return GQ_EPROTO;
    }
    for (size_t i = 0; i < h->n_fallbacks && !rc; i++) {
        rc = s_name(h->fallbacks[i]->op, "fallback op", err, errlen);
        if (!rc)
            rc = s_name(h->fallbacks[i]->backend, "fallback backend", err, errlen);
    }
    return rc;
}

static gq_status s_check_cancel(const ProtobufCMessage *hdr, gq_wire_msg_t *m,
                                const gq_wire_limits_t *lim, char *err, size_t errlen)
{
    (void)lim;
    (void)err;
    (void)errlen;
    m->job_id = ((const Gq__Wire__Cancel *)hdr)->job_id;
    return GQ_OK;
}

static gq_status s_check_disconnect(const ProtobufCMessage *hdr, gq_wire_msg_t *m,
                                    const gq_wire_limits_t *lim, char *err, size_t errlen)
{
    (void)m;
    (void)lim;
    return s_str(((const Gq__Wire__Disconnect *)hdr)->reason, GQ_WIRE_MAX_MESSAGE,
                 "disconnect reason", err, errlen);
}

static gq_status s_check_status_reply(const ProtobufCMessage *hdr, gq_wire_msg_t *m,
                                      const gq_wire_limits_t *lim, char *err, size_t errlen)
{
    (void)m;
    (void)lim;
    const Gq__Wire__StatusReply *r = (const Gq__Wire__StatusReply *)hdr;
    if (r->n_workers > GQ_WIRE_MAX_WORKERS || r->n_queued > 4) {
        gq_errf(err, errlen, "status reply: %zu workers, %zu queues", r->n_workers, r->n_queued);
        return GQ_EPROTO;
    }
    gq_status rc = GQ_OK;
    for (size_t i = 0; i < r->n_workers && !rc; i++) {
        rc = s_str(r->workers[i]->name, GQ_MAX_NAME - 1, "worker name", err, errlen);
        if (!rc)
            rc = s_backends(r->workers[i]->backends, r->workers[i]->n_backends, err, errlen);
        if (!rc)
            rc = s_devices(r->workers[i]->devices, r->workers[i]->n_devices, err, errlen);
    }
    return rc;
}

static gq_status s_check_admin(const ProtobufCMessage *hdr, gq_wire_msg_t *m,
                               const gq_wire_limits_t *lim, char *err, size_t errlen)
{
    (void)m;
    (void)lim;
    const Gq__Wire__AdminRequest *r = (const Gq__Wire__AdminRequest *)hdr;
    if ((int)r->op <= 0 || r->op > GQ__WIRE__ADMIN_OP__ADMIN_MODELS) {
        gq_errf(err, errlen, "admin: op %d is not one of 1..6", (int)r->op);
        return GQ_EPROTO;
    }
    return GQ_OK;
}

static gq_status s_check_admin_reply(const ProtobufCMessage *hdr, gq_wire_msg_t *m,
                                     const gq_wire_limits_t *lim, char *err, size_t errlen)
{
    (void)m;
    (void)lim;
    const Gq__Wire__AdminReply *r = (const Gq__Wire__AdminReply *)hdr;
    if (r->code > 0) {
        gq_errf(err, errlen, "admin reply: code %d is not a gq_status", (int)r->code);
        return GQ_EPROTO;
    }
    gq_status rc = s_str(r->message, GQ_WIRE_MAX_MESSAGE, "admin reply message", err, errlen);
    if (!rc)
        rc = s_str(r->text, GQ_WIRE_MAX_TEXT, "admin reply text", err, errlen);
    const Gq__Wire__CacheStats *c = r->cache;
    if (rc || !c)
        return rc;
    if (c->n_tiers > GQ_WIRE_MAX_TIERS) {
        gq_errf(err, errlen, "admin reply: %zu cache tiers, at most %d", c->n_tiers,
                GQ_WIRE_MAX_TIERS);
        return GQ_EPROTO;
    }
    for (size_t i = 0; i < c->n_tiers; i++) {
        const Gq__Wire__TierStats *t = c->tiers[i];
        if ((int)t->tier < 0 || t->tier > GQ__WIRE__CACHE_TIER__TIER_SHARED ||
            t->n_latency > GQ_WIRE_MAX_BUCKETS) {
            gq_errf(err, errlen, "admin reply: tier %zu: tier %d, %zu latency buckets", i,
                    (int)t->tier, t->n_latency);
            return GQ_EPROTO;
        }
    }
    return GQ_OK;
}

static gq_status s_check_none(const ProtobufCMessage *hdr, gq_wire_msg_t *m,
                              const gq_wire_limits_t *lim, char *err, size_t errlen)
{
    (void)hdr;
    (void)m;
    (void)lim;
    (void)err;
    (void)errlen;
    return GQ_OK;
}

/* A model digest: 32 lowercase hex digits (XXH3-128). */
static gq_status s_digest(const char *d, char *err, size_t errlen)
{
    if (!gq_is_digest(d)) {
        gq_errf(err, errlen, "model digest must be 32 lowercase hex digits");
        return GQ_EPROTO;
    }
    return GQ_OK;
}

/* A model file's bytes: one u8[size] frame. */
static gq_status s_model_bytes(Gq__Wire__TensorDesc *const *tds, size_t n, gq_wire_msg_t *m,
                               const gq_wire_limits_t *lim, char *err, size_t errlen)
{
    gq_status rc = s_tensors(tds, n, m, lim, "model data", err, errlen);
    if (rc)
        return rc;
    if (n != 1 || m->desc[0].dtype != GQ_U8 || m->desc[0].ndim != 1) {
        gq_errf(err, errlen, "model data must be one u8[size] frame");
        return GQ_EPROTO;
    }
    return GQ_OK;
}

static gq_status s_check_model_put(const ProtobufCMessage *hdr, gq_wire_msg_t *m,
                                   const gq_wire_limits_t *lim, char *err, size_t errlen)
{
    const Gq__Wire__ModelPut *p = (const Gq__Wire__ModelPut *)hdr;
    gq_status rc = s_str(p->name, GQ_MAX_STR - 1, "model name", err, errlen);
    return rc ? rc : s_model_bytes(p->data, p->n_data, m, lim, err, errlen);
}

static gq_status s_check_model_reply(const ProtobufCMessage *hdr, gq_wire_msg_t *m,
                                     const gq_wire_limits_t *lim, char *err, size_t errlen)
{
    (void)m;
    (void)lim;
    const Gq__Wire__ModelReply *r = (const Gq__Wire__ModelReply *)hdr;
    if (r->code > 0 || r->n_inputs > GQ_MAX_INPUTS) {
        gq_errf(err, errlen, "model reply: code %d, %zu inputs", (int)r->code, r->n_inputs);
        return GQ_EPROTO;
    }
    gq_status rc = s_str(r->message, GQ_WIRE_MAX_MESSAGE, "model reply message", err, errlen);
    if (!rc && r->code == GQ_OK)
        rc = s_digest(r->digest, err, errlen);
    for (size_t i = 0; i < r->n_inputs && !rc; i++) {
        const Gq__Wire__ModelInput *in = r->inputs[i];
        rc = s_str(in->name, GQ_MAX_STR - 1, "model input name", err, errlen);
        if (!rc &&
            (in->n_shape > GQ_MAX_DIMS || (int)in->dtype < 0 || (int)in->dtype >= GQ_DTYPE_COUNT)) {
            gq_errf(err, errlen, "model reply: input %zu has %zu dims, dtype %d", i, in->n_shape,
                    (int)in->dtype);
            rc = GQ_EPROTO;
        }
    }
    return rc;
}

static gq_status s_check_model_get(const ProtobufCMessage *hdr, gq_wire_msg_t *m,
                                   const gq_wire_limits_t *lim, char *err, size_t errlen)
{
    (void)m;
    (void)lim;
    return s_digest(((const Gq__Wire__ModelGet *)hdr)->digest, err, errlen);
}

static gq_status s_check_model(const ProtobufCMessage *hdr, gq_wire_msg_t *m,
                               const gq_wire_limits_t *lim, char *err, size_t errlen)
{
    const Gq__Wire__ModelData *d = (const Gq__Wire__ModelData *)hdr;
    gq_status rc = s_digest(d->digest, err, errlen);
    if (!rc)
        rc = s_str(d->message, GQ_WIRE_MAX_MESSAGE, "model message", err, errlen);
    if (rc)
        return rc;
    if (d->code > 0 || (d->code == GQ_OK) != (d->n_data == 1)) {
        gq_errf(err, errlen, "model: code %d with %zu data frames", (int)d->code, d->n_data);
        return GQ_EPROTO;
    }
    return d->n_data ? s_model_bytes(d->data, d->n_data, m, lim, err, errlen)
                     : s_tensors(d->data, 0, m, lim, "model data", err, errlen);
}

static const s_cmd_entry_t s_cmds[] = {
    {GQ_CMD_SUBMIT, "SUBMIT", &gq__wire__submit__descriptor, s_check_submit, 1},
    {GQ_CMD_RESULT, "RESULT", &gq__wire__result__descriptor, s_check_result, 1},
    {GQ_CMD_ERROR, "ERROR", &gq__wire__error__descriptor, s_check_error, 0},
    {GQ_CMD_STATUS, "STATUS", &gq__wire__status_request__descriptor, s_check_none, 0},
    {GQ_CMD_STATUS_REPLY, "STATUS_REPLY", &gq__wire__status_reply__descriptor, s_check_status_reply,
     0},
    {GQ_CMD_CANCEL, "CANCEL", &gq__wire__cancel__descriptor, s_check_cancel, 0},
    {GQ_CMD_ADMIN, "ADMIN", &gq__wire__admin_request__descriptor, s_check_admin, 0},
    {GQ_CMD_ADMIN_REPLY, "ADMIN_REPLY", &gq__wire__admin_reply__descriptor, s_check_admin_reply, 0},
    {GQ_CMD_READY, "READY", &gq__wire__ready__descriptor, s_check_ready, 0},
    {GQ_CMD_JOB, "JOB", &gq__wire__job__descriptor, s_check_job, 1},
    {GQ_CMD_MODEL_PUT, "MODEL_PUT", &gq__wire__model_put__descriptor, s_check_model_put, 1},
    {GQ_CMD_MODEL_REPLY, "MODEL_REPLY", &gq__wire__model_reply__descriptor, s_check_model_reply, 0},
    {GQ_CMD_MODEL_GET, "MODEL_GET", &gq__wire__model_get__descriptor, s_check_model_get, 0},
    {GQ_CMD_MODEL, "MODEL", &gq__wire__model_data__descriptor, s_check_model, 1},
    {GQ_CMD_DONE, "DONE", &gq__wire__done__descriptor, s_check_done, 1},
    {GQ_CMD_HEARTBEAT, "HEARTBEAT", &gq__wire__heartbeat__descriptor, s_check_heartbeat, 0},
    {GQ_CMD_DISCONNECT, "DISCONNECT", &gq__wire__disconnect__descriptor, s_check_disconnect, 0},
};

static const s_cmd_entry_t *s_cmd_find(int cmd)
{
    for (size_t i = 0; i < sizeof s_cmds / sizeof s_cmds[0]; i++)
        if (s_cmds[i].cmd == cmd)
            return &s_cmds[i];
    return NULL;
}

const char *gq_wire_cmd_name(int cmd)
{
    const s_cmd_entry_t *e = s_cmd_find(cmd);
    return e ? e->name : "?";
}

void gq_wire_msg_close(gq_wire_msg_t *m)
{
    if (!m)
        return;
    if (m->hdr)
        protobuf_c_message_free_unpacked(m->hdr, NULL);
    m->hdr = NULL;
    for (int i = 0; i < m->npayload; i++)
        zmq_msg_close(&m->payload[i]);
    m->npayload = 0;
}

/* protobuf-c (1.4.1) reads field number 0 from a tag written in two or more bytes
 * ("\x80\x00") and keeps it as an unknown field, but packs it back as "\x00", which it
 * refuses. The broker forwards a Submit's stages and tensor descriptors into the Job it
 * packs, so such a field would reach the worker as a JOB header that does not parse. */
static int s_has_field_zero(const ProtobufCMessage *msg)
{
    for (unsigned i = 0; i < msg->n_unknown_fields; i++)
        if (msg->unknown_fields[i].tag == 0)
            return 1;
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    const char *base = (const char *)msg;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *sub = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t k = 0; k < n; k++)
                if (s_has_field_zero(sub[k]))
                    return 1;
        } else {
            const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)(base + f->offset);
            if (sub && s_has_field_zero(sub))
                return 1;
        }
    }
    return 0;
}

static gq_status s_decode(zmq_msg_t *frames, int nframes, gq_wire_msg_t *m,
                          const gq_wire_limits_t *lim, char *err, size_t errlen)
{
    if (nframes < 3) {
        gq_errf(err, errlen, "message has %d frames, at least 3 needed (tag, command, header)",
                nframes);
        return GQ_EPROTO;
    }
    if (nframes > S_MAX_FRAMES) {
        gq_errf(err, errlen, "message has %d frames, at most %d allowed", nframes, S_MAX_FRAMES);
        return GQ_ETOOBIG;
    }
    size_t tag_len = zmq_msg_size(&frames[0]);
    const char *tag = zmq_msg_data(&frames[0]);
    if (tag_len != GQ_WIRE_TAG_LEN || memcmp(tag, GQ_WIRE_TAG, GQ_WIRE_TAG_LEN)) {
        if (tag_len >= 2 && !memcmp(tag, "GQ", 2)) {
            /* Printable bytes only: the text goes into logs and replies. */
            char shown[9];
            size_t n = tag_len < 8 ? tag_len : 8;
            for (size_t i = 0; i < n; i++)
                shown[i] = tag[i] >= 0x20 && tag[i] < 0x7f ? tag[i] : '?';
            shown[n] = 0;
            gq_errf(err, errlen, "protocol tag '%s' is not %s (%zu bytes)", shown, GQ_WIRE_TAG,
                    tag_len);
            return GQ_EVERSION;
        }
        gq_errf(err, errlen, "frame 0 is not the protocol tag %s", GQ_WIRE_TAG);
        return GQ_EPROTO;
    }
    if (zmq_msg_size(&frames[1]) != 1) {
        gq_errf(err, errlen, "command frame has %zu bytes, 1 expected", zmq_msg_size(&frames[1]));
        return GQ_EPROTO;
    }
    int cmd = *(const unsigned char *)zmq_msg_data(&frames[1]);
    m->cmd = cmd;
    const s_cmd_entry_t *e = s_cmd_find(cmd);
    if (!e) {
        gq_errf(err, errlen, "unknown command 0x%02x", cmd);
        return GQ_EPROTO;
    }
    size_t hlen = zmq_msg_size(&frames[2]);
    if (hlen > lim->max_header) {
        gq_errf(err, errlen, "%s header has %zu bytes, limit %zu", e->name, hlen, lim->max_header);
        return GQ_ETOOBIG;
    }
    m->hdr = protobuf_c_message_unpack(e->desc, NULL, hlen, zmq_msg_data(&frames[2]));
    if (!m->hdr) {
        gq_errf(err, errlen, "%s header does not parse as %s", e->name, e->desc->short_name);
        return GQ_EPROTO;
    }
    m->npayload = nframes - 3;
    for (int i = 0; i < m->npayload; i++) {
        zmq_msg_init(&m->payload[i]);
        zmq_msg_move(&m->payload[i], &frames[3 + i]);
    }
    char why[GQ_ERRLEN];
    gq_status rc = e->check(m->hdr, m, lim, why, sizeof why);
    if (!rc && !e->tensors && m->npayload) {
        gq_errf(why, sizeof why, "%d tensor frames after a header that carries none", m->npayload);
        rc = GQ_EPROTO;
    }
    if (!rc && s_has_field_zero(m->hdr)) {
        gq_errf(why, sizeof why, "header has a field number 0");
        rc = GQ_EPROTO;
    }
    if (rc) {
        gq_errf(err, errlen, "%s: %s", e->name, why);
        return rc;
    }
    return GQ_OK;
}

gq_status gq_wire_decode(zmq_msg_t *frames, int nframes, gq_wire_msg_t *m,
                         const gq_wire_limits_t *lim, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    gq_wire_limits_t def;
    if (!lim) {
        gq_wire_limits_default(&def);
        lim = &def;
    }
    gq_status rc = s_decode(frames, nframes, m, lim, err, errlen);
    if (rc) {
        uint64_t job_id = m->job_id;
        int cmd = m->cmd;
        gq_wire_msg_close(m);
        m->job_id = job_id;
        m->cmd = cmd;
    }
    for (int i = 0; i < nframes; i++)
        zmq_msg_close(&frames[i]);
    return rc;
}

gq_status gq_wire_recv(void *sock, int flags, zmq_msg_t *rid, gq_wire_msg_t *m,
                       const gq_wire_limits_t *lim, char *err, size_t errlen)
{
    zmq_msg_t frames[S_MAX_FRAMES];
    int n = 0, extra = 0, more = 1;
    memset(m, 0, sizeof *m);
    if (rid)
        zmq_msg_init(rid);
    for (int first = 1; more; first = 0) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, sock, first ? flags : 0) < 0) {
            int e = errno;
            zmq_msg_close(&part);
            for (int i = 0; i < n; i++)
                zmq_msg_close(&frames[i]);
            if (first && (e == EAGAIN || e == EINTR)) /* nothing yet: the caller waits on */
                return GQ_EAGAIN;
            gq_errf(err, errlen, "receive failed: %s", zmq_strerror(e));
            return e == ETERM ? GQ_ECLOSED : GQ_EIO;
        }
        more = zmq_msg_more(&part);
        if (first && rid) {
            zmq_msg_move(rid, &part);
            zmq_msg_close(&part);
            continue;
        }
        if (n < S_MAX_FRAMES) {
            zmq_msg_init(&frames[n]);
            zmq_msg_move(&frames[n++], &part);
        } else {
            extra++;
        }
        zmq_msg_close(&part);
    }
    if (extra) {
        for (int i = 0; i < n; i++)
            zmq_msg_close(&frames[i]);
        gq_errf(err, errlen, "message has %d frames, at most %d allowed", n + extra, S_MAX_FRAMES);
        return GQ_ETOOBIG;
    }
    return gq_wire_decode(frames, n, m, lim, err, errlen);
}

static void s_free_buffer(void *data, void *hint)
{
    (void)hint;
    free(data);
}

gq_status gq_wire_send(void *sock, const void *rid, size_t rid_len, int cmd,
                       const ProtobufCMessage *hdr, zmq_msg_t *payload, int npayload)
{
    static const char tag[] = GQ_WIRE_TAG;
    unsigned char cmd_byte = (unsigned char)cmd;
    gq_status rc = GQ_OK;
    int i = 0;
    zmq_msg_t h;
    size_t hlen = hdr ? protobuf_c_message_get_packed_size(hdr) : 0;
    /* Small headers go through zmq's inline storage; big ones are packed once into a
     * malloc'd buffer handed over without a copy. */
    if (hlen <= 32) {
        uint8_t small[32];
        if (hdr)
            protobuf_c_message_pack(hdr, small);
        zmq_msg_init_size(&h, hlen);
        memcpy(zmq_msg_data(&h), small, hlen);
    } else {
        uint8_t *buf = malloc(hlen);
        if (!buf) {
            rc = GQ_ENOMEM;
            goto out;
        }
        protobuf_c_message_pack(hdr, buf);
        zmq_msg_init_data(&h, buf, hlen, s_free_buffer, NULL);
    }
    int more = ZMQ_SNDMORE;
    if ((rid && zmq_send(sock, rid, rid_len, more) < 0) ||
        zmq_send_const(sock, tag, GQ_WIRE_TAG_LEN, more) < 0 ||
        zmq_send(sock, &cmd_byte, 1, more) < 0 || zmq_msg_send(&h, sock, npayload ? more : 0) < 0) {
        zmq_msg_close(&h);
        rc = errno == ETERM ? GQ_ECLOSED : GQ_EIO;
        goto out;
    }
    for (; i < npayload; i++) {
        if (zmq_msg_send(&payload[i], sock, i + 1 < npayload ? more : 0) < 0) {
            rc = errno == ETERM ? GQ_ECLOSED : GQ_EIO;
            break;
        }
    }
out:
    for (; i < npayload; i++)
        zmq_msg_close(&payload[i]);
    return rc;
}

void gq_wire_desc_fill(Gq__Wire__TensorDesc *td, int64_t *shape_buf, const gq_tdesc_t *d)
{
    gq__wire__tensor_desc__init(td);
    td->dtype = (Gq__Wire__DType)d->dtype;
    for (int i = 0; i < d->ndim; i++)
        shape_buf[i] = d->shape[i];
    td->n_shape = (size_t)d->ndim;
    td->shape = shape_buf;
    td->nbytes = gq_tdesc_nbytes(d);
}

int gq_wire_stage_params(const Gq__Wire__Stage *st, gq_param_t *out, int max)
{
    int n = 0;
    for (size_t i = 0; i < st->n_params && n < max; i++, n++) {
        const Gq__Wire__Param *p = st->params[i];
        memset(&out[n], 0, sizeof out[n]);
        out[n].name = p->name;
        switch (p->value_case) {
        case GQ__WIRE__PARAM__VALUE_I:
            out[n].v.type = GQ_PT_INT;
            out[n].v.i = p->i;
            break;
        case GQ__WIRE__PARAM__VALUE_F:
            out[n].v.type = GQ_PT_FLOAT;
            out[n].v.f = p->f;
            break;
        case GQ__WIRE__PARAM__VALUE_B:
            out[n].v.type = GQ_PT_BOOL;
            out[n].v.i = p->b;
            break;
        default:
            out[n].v.type = GQ_PT_STR;
            out[n].v.s = p->s;
            break;
        }
    }
    return n;
}
