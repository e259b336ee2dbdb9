/* Internals of the OpenCL ONNX accelerator (onnx_accel.h), shared by cl_onnx.c (the
 * accelerator: program, per-plan state, device buffers, launches) and cl_onnx_ops.c (which
 * steps it claims, their geometry and launches). Kernels: kernels/onnx.cl. */
#ifndef GQ_CL_ONNX_H
#define GQ_CL_ONNX_H

#include "cl_int.h"
#include "onnx_accel.h"
#include "onnx_claim.h"
#include "onnx_plan.h"

/* Kernels of kernels/onnx.cl, by id (names in cl_onnx.c). */
typedef enum {
    GQ_CLX_GEMM,
    GQ_CLX_IM2COL,
    GQ_CLX_IM2COL_ROWS,
    GQ_CLX_CONV_DIRECT,
    GQ_CLX_CONV_ROWS,
    GQ_CLX_POOL,
    GQ_CLX_POOL_ROWS,
    GQ_CLX_GLOBAL_POOL,
    GQ_CLX_BATCHNORM,
    GQ_CLX_SOFTMAX,
    GQ_CLX_STRIDED,
    GQ_CLX_UN_RELU,
    GQ_CLX_UN_SIGMOID,
    GQ_CLX_UN_TANH,
    GQ_CLX_UN_LEAKY,
    GQ_CLX_UN_ELU,
    GQ_CLX_UN_SELU,
    GQ_CLX_UN_HARDSIGMOID,
    GQ_CLX_UN_HARDSWISH,
    GQ_CLX_UN_SOFTPLUS,
    GQ_CLX_UN_SOFTSIGN,
    GQ_CLX_UN_CLIP,
    GQ_CLX_UN_EXP,
    GQ_CLX_UN_LOG,
    GQ_CLX_UN_SQRT,
    GQ_CLX_UN_ABS,
    GQ_CLX_UN_NEG,
    GQ_CLX_UN_RECIP,
    GQ_CLX_UN_FLOOR,
    GQ_CLX_UN_CEIL,
    GQ_CLX_UN_ERF,
    GQ_CLX_ADD_FLAT, /* then _BCAST; the four binary ops in pairs */
    GQ_CLX_ADD_BCAST,
    GQ_CLX_SUB_FLAT,
    GQ_CLX_SUB_BCAST,
    GQ_CLX_MUL_FLAT,
    GQ_CLX_MUL_BCAST,
    GQ_CLX_DIV_FLAT,
    GQ_CLX_DIV_BCAST,
    GQ_CLX_NKERNELS
} gq_clx_kid_t;

/* A device buffer holding a value: a run buffer from the backend's pool (refs counts the
 * values that hold it: reshape-like steps share their input's), or a plan constant. */
typedef struct gq_clx_buf {
    cl_mem m;
    size_t cap;
    gq_buffer_t gb; /* run buffers: the pool's buffer */
    int refs;
    bool konst;
    struct gq_clx_buf *next; /* free, spare or constant list */
} gq_clx_buf_t;

typedef struct gq_clx gq_clx_t;

/* What the claim of the step being run found (filled by gq_clx_claim, read by gq_clx_run). */
typedef struct {
    int op;                   /* cl_onnx_claim.c's table index */
    int64_t v[48];            /* per op: see cl_onnx_claim.c */
    float f[4];               /* f[2], f[3]: the epilogue's parameters (code in v[40]) */
    gq_tdesc_t od[2];         /* the outputs */
    gq_onnx_claim_win_t w;    /* convs, pools: the window */
    gq_onnx_claim_win_t pool; /* Conv+MaxPool: the pool over the conv's output */
    gq_onnx_claim_bplan_t bp; /* binary ops, Transpose */
} gq_clx_claim_t;

/* One plan's state: its queue and kernels, its constants on the device, the run's buffers. */
typedef struct {
    gq_clx_t *ax;
    const gq_onnx_plan_t *p;
    cl_command_queue q;
    cl_kernel k[GQ_CLX_NKERNELS];
    size_t kwg[GQ_CLX_NKERNELS];
    gq_clx_buf_t **konst;   /* per slot: the constant uploaded once */
    gq_clx_buf_t **derived; /* per step: a constant derived from one (Gemm's B transposed) */
    int *stepop;            /* per step: the op the step's kernel may be run as, -1: never */
    gq_clx_buf_t *consts;   /* every constant buffer (konst and derived) */
    gq_clx_buf_t *free;     /* run buffers no value holds: reusable within the run */
    gq_clx_buf_t *spare;    /* records without a buffer */
    int live;               /* run buffers held by values */
    gq_clx_claim_t cur;
} gq_clx_plan_t;

typedef struct {
    size_t size;
    const void *value;
} gq_clx_arg_t;
#define GQ_CLX_ARG(v)                                                                              \
    {                                                                                              \
        sizeof(v), &(v)                                                                            \
    }

/* Whether windowed kernels (im2col, pools, direct convs) run a work-item per output row
 * (CPU devices: PoCL vectorises the row loop; a work-item per element spends its time in
 * index divisions) rather than per element (GPUs); env GQ_CL_ONNX_ROWS=0|1 overrides. */
bool gq_clx_rows(const gq_clx_t *ax);

/* A run buffer of at least nbytes (refs 1), from the run's free list or the backend's pool. */
gq_status gq_clx_alloc(gq_clx_plan_t *ps, size_t nbytes, gq_clx_buf_t **out, char *err,
                       size_t errlen);

/* A constant buffer the plan keeps (derived values: transposed weights). */
gq_status gq_clx_alloc_const(gq_clx_plan_t *ps, size_t nbytes, gq_clx_buf_t **out, char *err,
                             size_t errlen);

/* Drops one reference; at 0 a run buffer goes to the run's free list (reused by later
 * commands of the same in-order queue, so no wait is needed). */
void gq_clx_unref(gq_clx_plan_t *ps, gq_clx_buf_t *b);

/* Enqueues kernel kid over a dims-D range (global sizes exact; local NULL: the driver's
 * choice). */
gq_status gq_clx_launch(gq_clx_plan_t *ps, int kid, const gq_clx_arg_t *args, int nargs, int dims,
                        const size_t *global, char *err, size_t errlen);

/* Elementwise launch of items work-items: appends int chk (see gq_cl_launch_ew). */
gq_status gq_clx_launch_ew(gq_clx_plan_t *ps, int kid, const gq_clx_arg_t *args, int nargs,
                           size_t items, char *err, size_t errlen);

/* The same for row kernels, whose work-items are loops over a row: small work-groups, so
 * that a few hundred rows still spread over every compute unit. */
gq_status gq_clx_launch_rows(gq_clx_plan_t *ps, int kid, const gq_clx_arg_t *args, int nargs,
                             size_t rows, char *err, size_t errlen);

/* ---- cl_onnx_claim.c ---- */

/* What a claimed step runs as (cl_onnx_claim.c's table). */
typedef enum {
    GQ_CLX_K_UNARY,
    GQ_CLX_K_BINARY,
    GQ_CLX_K_MATMUL,
    GQ_CLX_K_GEMM,
    GQ_CLX_K_CONV,
    GQ_CLX_K_CONV_RELU,
    GQ_CLX_K_CONV_ACT,
    GQ_CLX_K_CONV_POOL, /* Conv(+Act) -> MaxPool fused (onnx_fuse.c) */
    GQ_CLX_K_GEMM_ACT,
    GQ_CLX_K_MATMUL_ADD,
    GQ_CLX_K_MAXPOOL,
    GQ_CLX_K_AVGPOOL,
    GQ_CLX_K_GMAXPOOL,
    GQ_CLX_K_GAVGPOOL,
    GQ_CLX_K_BATCHNORM,
    GQ_CLX_K_SOFTMAX,
    GQ_CLX_K_LOGSOFTMAX,
    GQ_CLX_K_RESHAPE,
    GQ_CLX_K_FLATTEN,
    GQ_CLX_K_SQUEEZE,
    GQ_CLX_K_UNSQUEEZE,
    GQ_CLX_K_IDENTITY,
    GQ_CLX_K_DROPOUT,
    GQ_CLX_K_TRANSPOSE,
} gq_clx_kind_t;

typedef struct {
    const char *op; /* op type, or a fused kernel's name ("Conv+Relu") */
    gq_clx_kind_t kind;
    int kid; /* unary: the kernel; binary: the flat kernel (bcast follows it); reshape-like:
                their gq_onnx_claim_alias_t */
} gq_clx_entry_t;

/* The ops the accelerator knows; gq_clx_claim_t.op and gq_clx_step_op index it. */
extern const gq_clx_entry_t gq_clx_table[];

/* The op step k's kernel can run as (plan time: op type and kernel), -1 when none. */
int gq_clx_step_op(const gq_onnx_plan_t *p, int k);

/* Whether step k runs here with these inputs: its geometry into ps->cur. */
bool gq_clx_claim(gq_clx_plan_t *ps, int k, gq_onnx_val_t *const *in, int nin, gq_tdesc_t *out_desc,
                  int nout);

/* ---- cl_onnx_ops.c ---- */

/* Enqueues claimed step k (ps->cur). */
gq_status gq_clx_run(gq_clx_plan_t *ps, int k, gq_onnx_val_t *const *in, int nin,
                     gq_onnx_val_t *out, int nout, char *err, size_t errlen);

#endif
