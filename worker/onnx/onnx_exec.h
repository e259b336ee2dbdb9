/* Runs a loaded ONNX model on the CPU: a plan (nodes in dependency order, every op checked
 * against the kernel table at plan time, If branches planned as sub-plans, Conv + BN + Relu
 * fused) and runs of it over input tensors (buffers pooled per plan and freed after their
 * last reader; GEMMs on OpenBLAS). A plan runs one run at a time. State and what is left:
 * docs/onnx.md. */
#ifndef GQ_ONNX_EXEC_H
#define GQ_ONNX_EXEC_H

#include <stdio.h>

#include "onnx_model.h"

typedef struct gq_onnx_plan gq_onnx_plan_t;

/* Orders the main graph's nodes and checks that every op (at the model's opset) has a
 * kernel. The model must outlive the plan. NULL with err naming the node and op when one
 * is not supported (GQ_EUNSUPPORTED in *code) or the graph has a cycle (GQ_EFORMAT). */
gq_onnx_plan_t *gq_onnx_plan_new(const gq_onnx_model_t *model, gq_status *code, char *err,
                                 size_t errlen);

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

/* Whether op_type at opset has a kernel. */
bool gq_onnx_op_supported(const char *op_type, int opset);

#endif
