/* onnx.*: running a model from the broker's model store (docs/onnx.md). */
#include <string.h>
#include "optable.h"
#include "util.h"

#define S_ALL_DTYPES (((1u << GQ_DTYPE_COUNT) - 1u) & ~1u)

static const gq_param_spec_t s_run_params[] = {
    {.name = "model",
     .type = GQ_PT_STR,
     .required = true,
     .help = "digest of a model in the broker's store (32 hex digits, from `gpuq model put`)"},
};

/* The outputs of a model are known once it ran: none are declared here, so onnx.run can
 * only end a pipeline. Inputs are checked against the model's signature by the broker
 * (which holds the model) at admission. */
static gq_status s_shape_run(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                             int *nout, char *err, size_t errlen)
{
    (void)in;
    (void)nin;
    (void)out;
    const char *d = gq_args_str(a, "model");
    if (!gq_is_digest(d)) {
        gq_errf(err, errlen,
                "%s: param 'model' = '%s' is not a model digest (32 lowercase hex digits; "
                "`gpuq model put FILE` prints it)",
                a->op->name, d ? d : "");
        return GQ_EPARAM;
    }
    *nout = 0;
    return GQ_OK;
}

static const gq_op_spec_t s_specs[] = {
    {.name = "onnx.run",
     .flags = GQ_OPF_HOSTED,
     .summary = "run an ONNX model from the broker's store on the inputs (the model's graph "
                "inputs, in order); outputs are the graph outputs; last stage of a pipeline",
     .min_inputs = 1,
     .max_inputs = GQ_MAX_INPUTS,
     .in_dtypes = S_ALL_DTYPES,
     .params = s_run_params,
     .nparams = 1,
     .shape = s_shape_run},
};

const gq_op_family_t gq_ops_onnx = {s_specs, (int)(sizeof s_specs / sizeof s_specs[0])};
