/* The executor's plan, shared by planning (onnx_exec.c), fusion (onnx_fuse.c) and runs
 * (onnx_run.c). Not part of the executor's interface (onnx_exec.h). */
#ifndef GQ_ONNX_PLAN_H
#define GQ_ONNX_PLAN_H

#include "map.h"
#include "onnx_int.h"

/* One node as the plan runs it: every value name of the graph has a slot; steps refer to
 * slots. */
typedef struct {
    const gq_onnx_kernel_t *k;
    const Onnx__NodeProto *node;
    int *in, nin;  /* slots; -1 for an omitted optional input */
    int nimplicit; /* If, Loop, Scan: outer values their subgraphs read, as slots
                      in[nin .. nin + nimplicit) */
    int *out, nout;
    gq_onnx_plan_t *branch[2]; /* If: then, else; Loop, Scan: the body, NULL */
    uint64_t ns, runs;         /* time in the kernel, summed over runs (profiling) */
} gq_onnx_step_t;

struct gq_onnx_plan {
    const gq_onnx_model_t *model;
    const gq_onnx_plan_t *parent; /* the enclosing graph's plan, for subgraphs */
    int opset;
    int nslots;
    const char **names; /* per slot */
    gq_map_t *index;    /* hash(name) -> slot + 1, collisions resolved by gq_onnx_plan_slot */
    gq_onnx_step_t *steps;
    int nsteps;
    int *inputs, ninputs; /* graph inputs that are not initializers */
    const Onnx__ValueInfoProto **input_info;
    int *outputs, noutputs;
    int ninit, *init_slot;   /* per initializer */
    gq_onnx_val_t *sub_init; /* subgraphs: their own initializers, decoded (owned) */
    int *outer, nouter;      /* subgraphs: slots whose value comes from the enclosing plan */
    gq_onnx_val_t *fold;     /* constants the fusion pass made (owned), at slots fold_slot */
    int *fold_slot, nfold;
    char **fold_name;
    int *last_use; /* per slot: the last step reading it; nsteps for graph outputs */
    int nfolded;   /* steps constant folding took out (onnx_fold.c) */
    gq_onnx_pool_t pool;
    bool profile;
    /* The accelerator (onnx_accel.h, onnx_run.c): runs the steps it claims. */
    struct gq_onnx_accel *accel;
    void *accel_plan; /* its state for this plan */
    bool accel_off;   /* runs stay on the CPU */
    bool (*on_fallback)(void *ctx, const char *op_type);
    void *on_fallback_ctx;
    int accel_ran, ran; /* steps of the last run on the accelerator, and all of them */
};

/* The slot of name, created when create is set; -1 when absent (or out of memory). */
int gq_onnx_plan_slot(gq_onnx_plan_t *p, const char *name, bool create);

/* A node's name for messages: "(unnamed)" when it has none. */
const char *gq_onnx_node_name(const Onnx__NodeProto *nd);

/* Fuses Conv -> BatchNormalization -> Relu chains of a planned graph (onnx_fuse.c). */
gq_status gq_onnx_plan_fuse(gq_onnx_plan_t *p);

#endif
