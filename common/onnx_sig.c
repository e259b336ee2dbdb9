#include "onnx_sig.h"

#include <stdio.h>
#include <string.h>
#include "util.h"

static gq_status s_input(const Onnx__ValueInfoProto *vi, gq_onnx_input_t *out, char *err,
                         size_t errlen)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", vi->name ? vi->name : "");
    const Onnx__TypeProto *t = vi->type;
    if (!t) { /* no type declared: anything goes, the executor checks at run time */
        out->any = true;
        out->ndim = -1;
        return GQ_OK;
    }
    if (t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type) {
        gq_errf(err, errlen,
                "model input '%s' is not a tensor (sequences, maps and optionals "
                "are not supported)",
                out->name);
        return GQ_EUNSUPPORTED;
    }
    const Onnx__TypeProto__Tensor *tt = t->tensor_type;
    out->dtype = gq_onnx_dtype(tt->elem_type);
    if (!tt->shape) {
        out->ndim = -1;
        return GQ_OK;
    }
    if (tt->shape->n_dim > GQ_MAX_DIMS) {
        gq_errf(err, errlen, "model input '%s' has %zu dims, at most %d", out->name,
                tt->shape->n_dim, GQ_MAX_DIMS);
        return GQ_EUNSUPPORTED;
    }
    out->ndim = (int)tt->shape->n_dim;
    for (int k = 0; k < out->ndim; k++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[k];
        int fixed = d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
                    d->dim_value > 0;
        out->shape[k] = fixed ? d->dim_value : -1;
    }
    return GQ_OK;
}

gq_status gq_onnx_sig_of(const gq_onnx_model_t *m, gq_onnx_sig_t *sig, char *err, size_t errlen)
{
    const Onnx__GraphProto *g = gq_onnx_model_proto(m)->graph;
    memset(sig, 0, sizeof *sig);
    for (size_t i = 0; g && i < g->n_input; i++) {
        if (gq_onnx_model_tensor_find(m, g->input[i]->name))
            continue; /* an initializer listed as input (older exporters): has a default */
        if (sig->ninputs == GQ_MAX_INPUTS) {
            gq_errf(err, errlen, "model takes more than %d inputs", GQ_MAX_INPUTS);
            return GQ_EUNSUPPORTED;
        }
        gq_status rc = s_input(g->input[i], &sig->in[sig->ninputs], err, errlen);
        if (rc)
            return rc;
        sig->ninputs++;
    }
    sig->noutputs = g ? (int)g->n_output : 0;
    if (sig->noutputs < 1 || sig->noutputs > GQ_MAX_OUTPUTS) {
        gq_errf(err, errlen, "model gives %d outputs, must be 1..%d", sig->noutputs,
                GQ_MAX_OUTPUTS);
        return GQ_EUNSUPPORTED;
    }
    return GQ_OK;
}

char *gq_onnx_input_str(const gq_onnx_input_t *in, char *buf, size_t len)
{
    size_t off = 0;
    int n = snprintf(buf, len, "%s[", in->any ? "any" : gq_dtype_name(in->dtype));
    off = n > 0 ? (size_t)n : 0;
    if (in->ndim < 0)
        off += (size_t)snprintf(buf + off, off < len ? len - off : 0, "...");
    for (int k = 0; k < in->ndim && off < len; k++) {
        if (in->shape[k] < 0)
            n = snprintf(buf + off, len - off, "%s?", k ? "," : "");
        else
            n = snprintf(buf + off, len - off, "%s%lld", k ? "," : "", (long long)in->shape[k]);
        off += n > 0 ? (size_t)n : 0;
    }
    if (off < len)
        snprintf(buf + off, len - off, "]");
    return buf;
}

gq_status gq_onnx_sig_check(const gq_onnx_sig_t *sig, const gq_tdesc_t *in, int nin, char *err,
                            size_t errlen)
{
    char want[128], got[128];
    if (nin != sig->ninputs) {
        gq_errf(err, errlen, "onnx.run: the model takes %d inputs, the job gives %d", sig->ninputs,
                nin);
        return GQ_ESHAPE;
    }
    for (int i = 0; i < nin; i++) {
        const gq_onnx_input_t *w = &sig->in[i];
        int ok = (w->any || w->dtype == in[i].dtype) && (w->ndim < 0 || w->ndim == in[i].ndim);
        for (int k = 0; ok && k < w->ndim; k++)
            ok = w->shape[k] < 0 || w->shape[k] == in[i].shape[k];
        if (!ok) {
            gq_errf(err, errlen, "onnx.run: input %d '%s' wants %s, got %s", i, w->name,
                    gq_onnx_input_str(w, want, sizeof want), gq_tdesc_str(&in[i], got, sizeof got));
            return w->dtype == in[i].dtype ? GQ_ESHAPE : GQ_EDTYPE;
        }
    }
    return GQ_OK;
}
