#include "batch.h"

#include <string.h>

gq_status gq_batch_stack_desc(const gq_tdesc_t *d, int64_t k, gq_tdesc_t *out)
{
    if (d->ndim >= GQ_MAX_DIMS)
        return GQ_ESHAPE;
    *out = *d;
    out->ndim = d->ndim + 1;
    out->shape[0] = k;
    memcpy(&out->shape[1], d->shape, (size_t)d->ndim * sizeof d->shape[0]);
    return GQ_OK;
}

static int s_same_with_lead(const gq_tdesc_t *stacked, const gq_tdesc_t *single)
{
    gq_tdesc_t want;
    if (gq_batch_stack_desc(single, 2, &want))
        return 0;
    return stacked->dtype == want.dtype && stacked->ndim == want.ndim &&
           !memcmp(stacked->shape, want.shape, (size_t)want.ndim * sizeof want.shape[0]);
}

int gq_batch_prefix(const gq_args_t *stages, int nstages, const gq_tdesc_t *in, int nin,
                    gq_tdesc_t *out, int *nout)
{
    gq_tdesc_t one[2][GQ_MAX_OUTPUTS], two[2][GQ_MAX_OUTPUTS];
    const gq_tdesc_t *a = in;
    int na = nin;
    if (nin < 1 || nin > GQ_MAX_OUTPUTS)
        return 0;
    for (int i = 0; i < nin; i++)
        if (gq_batch_stack_desc(&in[i], 2, &two[1][i]))
            return 0;
    const gq_tdesc_t *b = two[1];
    char err[GQ_ERRLEN];
    for (int k = 0; k < nstages; k++) {
        if (!stages[k].op || !(stages[k].op->flags & GQ_OPF_BATCHABLE))
            return 0;
        gq_tdesc_t *oa = one[k & 1], *ob = two[k & 1];
        int nout_a = 0, nout_b = 0;
        if (gq_op_infer(&stages[k], a, na, oa, &nout_a, err, sizeof err) ||
            gq_op_infer(&stages[k], b, na, ob, &nout_b, err, sizeof err) || nout_a != nout_b)
            return 0;
        for (int i = 0; i < nout_a; i++)
            if (!s_same_with_lead(&ob[i], &oa[i]))
                return 0;
        a = oa;
        b = ob;
        na = nout_a;
    }
    if (out) {
        memcpy(out, a, (size_t)na * sizeof *out);
        *nout = na;
    }
    return 1;
}

int gq_batch_ok(const gq_args_t *stages, int nstages, const gq_tdesc_t *in, int nin)
{
    return gq_batch_prefix(stages, nstages, in, nin, NULL, NULL);
}
