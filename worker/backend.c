#include <stdlib.h>
#include "backend.h"
#include "util.h"

/* Generic for every backend: each constructor callocs the gq_backend_t and its destroy op
 * frees only what impl owns. */
void gq_backend_destroy(gq_backend_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gq_backend_t *be = *self_p;
    if (be->ops && be->ops->destroy)
        be->ops->destroy(be);
    free(be);
    *self_p = NULL;
}

void gq_backend_config_device(gq_backend_config_t *cfg, const char *dev)
{
    long long idx;
    if (!dev || !*dev)
        return;
    if (!gq_parse_int(dev, 0, 1 << 20, &idx))
        cfg->device_index = (int)idx, cfg->device_match = NULL;
    else
        cfg->device_index = -1, cfg->device_match = dev;
}

gq_status gq_backend_check_run(gq_backend_t *be, const gq_args_t *a, const gq_tdesc_t *in_desc,
                               const gq_buffer_t *in, int nin, const gq_tdesc_t *out_desc,
                               const gq_buffer_t *out, int nout, void **hin, void **hout, char *err,
                               size_t errlen)
{
    const char *name = be->ops->name;
    if (!a || !a->op) {
        gq_errf(err, errlen, "%s: run without a resolved op", name);
        return GQ_EINVAL;
    }
    const char *op = a->op->name;
    if (nin < 0 || nin > GQ_MAX_INPUTS || nout < 0 || nout > GQ_MAX_OUTPUTS ||
        (nin && (!in_desc || !in)) || (nout && (!out_desc || !out))) {
        gq_errf(err, errlen, "%s: %s: bad buffer lists (%d inputs, %d outputs)", op, name, nin,
                nout);
        return GQ_EINVAL;
    }
    gq_tdesc_t want[GQ_MAX_OUTPUTS];
    int nwant = 0;
    gq_status rc = gq_op_infer(a, in_desc, nin, want, &nwant, err, errlen);
    if (rc)
        return rc;
    if (nwant != nout) {
        gq_errf(err, errlen, "%s: %s: %d output buffers given, the op has %d", op, name, nout,
                nwant);
        return GQ_EINVAL;
    }
    for (int i = 0; i < nin + nout; i++) {
        bool isout = i >= nin;
        int j = isout ? i - nin : i;
        const gq_tdesc_t *d = isout ? &out_desc[j] : &in_desc[j];
        const gq_buffer_t *b = isout ? &out[j] : &in[j];
        char ds[64];
        if (isout && !gq_tdesc_equal(d, &want[j])) {
            char exp[64];
            gq_errf(err, errlen, "%s: %s: output %d is %s, the shape rule gives %s", op, name, j,
                    gq_tdesc_str(d, ds, sizeof ds), gq_tdesc_str(&want[j], exp, sizeof exp));
            return GQ_EINVAL;
        }
        if (!hin || !hout)
            continue;
        if (b->owner != be || !b->handle || b->nbytes < gq_tdesc_nbytes(d)) {
            gq_errf(err, errlen, "%s: %s: %s %d %s is not a %s buffer of %zu bytes", op, name,
                    isout ? "output" : "input", j, gq_tdesc_str(d, ds, sizeof ds), name,
                    gq_tdesc_nbytes(d));
            return GQ_EINVAL;
        }
        (isout ? hout : hin)[j] = b->handle;
    }
    return GQ_OK;
}

#ifndef GQ_HAVE_OPENCL

gq_backend_t *gq_backend_opencl_new(const gq_backend_config_t *cfg, char *err, size_t errlen)
{
    (void)cfg;
    gq_errf(err, errlen, "opencl: not built (no OpenCL SDK found at build time)");
    return NULL;
}
#endif
