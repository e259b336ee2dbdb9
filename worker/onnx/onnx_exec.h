/* Runs a loaded ONNX model on the CPU: a plan (nodes in dependency order, every op checked
 * against the kernel table at plan time, If branches planned as sub-plans, shapes inferred
 * with symbolic dims, constants folded, Conv + BN + Relu fused) and runs of it over input
 * tensors (buffers pooled per plan and freed after their last reader; GEMMs on OpenBLAS). A
 * plan runs one run at a time. State and what is left: docs/onnx.md. */
#ifndef GQ_ONNX_EXEC_H
#define GQ_ONNX_EXEC_H

#include <stdio.h>

#include "onnx_model.h"

typedef struct gq_onnx_plan gq_onnx_plan_t;

/* Orders the main graph's nodes, checks that every op (at the model's opset) has a kernel,
 * infers every value's type and folds constants (gq_onnx_plan_new_opts with defaults). The
 * model must outlive the plan. NULL with err naming the node and op when one is not
 * supported (GQ_EUNSUPPORTED in *code), the graph has a cycle (GQ_EFORMAT) or shapes that
 * cannot hold (GQ_ESHAPE, naming the input and both shapes). */
gq_onnx_plan_t *gq_onnx_plan_new(const gq_onnx_model_t *model, gq_status *code, char *err,
                                 size_t errlen);

/* What planning does past ordering and checking ops (gq_onnx_plan_new: everything, with the
 * default caps). */
typedef struct {
    bool no_fold;            /* keep every step: no constant folding */
    size_t fold_max_bytes;   /* largest output folded into a constant (0: 16 MiB) */
    size_t fold_total_bytes; /* all of a graph's folded constants (0: 256 MiB) */
} gq_onnx_plan_opts_t;

/* gq_onnx_plan_new with options: shape inference over every value (a graph input's dims may
 * be symbolic: dim_param or unknown), constant folding (steps whose inputs are all constants
 * run once here through their kernels, Shape of values whose dims are known too, and steps
 * left without readers go), then fusion. opts NULL: defaults. */
gq_onnx_plan_t *gq_onnx_plan_new_opts(const gq_onnx_model_t *model, const gq_onnx_plan_opts_t *opts,
                                      gq_status *code, char *err, size_t errlen);

void gq_onnx_plan_destroy(gq_onnx_plan_t **self_p);

/* Graph inputs that are not initializers: what a run must be given, in graph order. */
int gq_onnx_plan_input_count(const gq_onnx_plan_t *self);
const char *gq_onnx_plan_input_name(const gq_onnx_plan_t *self, int i);
int gq_onnx_plan_output_count(const gq_onnx_plan_t *self);

/* Runs the graph over in[0..nin) (host tensors, any alignment of the element size; not
 * modified). On GQ_OK out[0..noutputs) hold the graph outputs in fresh 64-byte-aligned
 * buffers the caller frees with free(). err names the node, op and cause on failure. */
gq_status gq_onnx_plan_run(gq_onnx_plan_t *self, const gq_view_t *in, int nin, gq_view_t *out,
                           int nout, char *err, size_t errlen);

/* Per-step timing of later runs (on: reset and start; off: stop), printed one line per step
 * (op, node, microseconds per run, share) by gq_onnx_plan_profile_print. */
void gq_onnx_plan_profile(gq_onnx_plan_t *self, bool on);
void gq_onnx_plan_profile_print(const gq_onnx_plan_t *self, FILE *f);

/* Steps a run executes, and steps folded away at plan time (main graph). */
int gq_onnx_plan_step_count(const gq_onnx_plan_t *self);
int gq_onnx_plan_folded_count(const gq_onnx_plan_t *self);

/* Memory of a run's intermediate values (graph inputs and constants not counted) when every
 * graph input's symbolic or unknown dim 0 is batch and the other dims are as declared. */
typedef struct {
    size_t peak_bytes;  /* most bytes live at once (liveness: producer to last reader) */
    size_t arena_bytes; /* one arena, offsets assigned greedily largest first, 64-aligned */
    int peak_step;      /* the step at which peak_bytes is reached */
    int nvalues;        /* values counted */
    int nunknown;       /* values whose size stays unknown at that binding: not counted */
} gq_onnx_mem_t;

gq_status gq_onnx_plan_memory(const gq_onnx_plan_t *self, int64_t batch, gq_onnx_mem_t *mem,
                              char *err, size_t errlen);

/* mem.peak_bytes of gq_onnx_plan_memory; 0 when it fails. */
size_t gq_onnx_plan_peak_bytes(const gq_onnx_plan_t *self, int64_t batch);

/* Prints the plan: inputs, each step with its inferred output types (dims symbolic as
 * declared: "f32[N,16,40]"), If branches indented, folded and constant counts. */
void gq_onnx_plan_print(const gq_onnx_plan_t *self, FILE *f);

/* Checks a run's outputs against the types inference gives for its inputs' exact shapes:
 * GQ_EINTERNAL naming the output and both types when a known dim or dtype differs (an
 * inference bug; what gq-onnx-run checks after every run). */
gq_status gq_onnx_plan_check_outputs(const gq_onnx_plan_t *self, const gq_view_t *in, int nin,
                                     const gq_view_t *out, int nout, char *err, size_t errlen);

/* Whether op_type at opset has a kernel. */
bool gq_onnx_op_supported(const char *op_type, int opset);

#endif
