/* Internals of the Vulkan ONNX accelerator (onnx_accel.h), shared by vk_onnx.c (the
 * accelerator: per-plan state, device buffers, transfers), vk_onnx_claim.c (which steps it
 * claims, their geometry) and vk_onnx_ops.c (their dispatches). Shaders: shaders/onnx_*.comp. */
#ifndef GQ_VK_ONNX_H
#define GQ_VK_ONNX_H

#include "onnx_accel.h"
#include "onnx_claim.h"
#include "onnx_plan.h"
#include "vk_int.h"

/* What a claimed step runs as (vk_onnx_claim.c's table). */
typedef enum {
    GQ_VKX_K_UNARY,
    GQ_VKX_K_BINARY,
    GQ_VKX_K_MATMUL,
    GQ_VKX_K_MATMUL_ADD,
    GQ_VKX_K_GEMM,
    GQ_VKX_K_GEMM_ACT,
    GQ_VKX_K_CONV,
    GQ_VKX_K_CONV_ACT,
    GQ_VKX_K_CONV_POOL, /* Conv(+Act) -> MaxPool fused (onnx_fuse.c) */
    GQ_VKX_K_MAXPOOL,
    GQ_VKX_K_AVGPOOL,
    GQ_VKX_K_GMAXPOOL,
    GQ_VKX_K_GAVGPOOL,
    GQ_VKX_K_BATCHNORM,
    GQ_VKX_K_SOFTMAX,
    GQ_VKX_K_LOGSOFTMAX,
    GQ_VKX_K_TRANSPOSE,
    GQ_VKX_K_ALIAS, /* reshape-like: the input's buffer under a new descriptor */
} gq_vkx_kind_t;

/* Unary shader codes (shaders/onnx_ew.comp's OP). */
typedef enum {
    GQ_VKX_UN_RELU,
    GQ_VKX_UN_SIGMOID,
    GQ_VKX_UN_TANH,
    GQ_VKX_UN_LEAKY,
    GQ_VKX_UN_ELU,
    GQ_VKX_UN_SELU,
    GQ_VKX_UN_HARDSIGMOID,
    GQ_VKX_UN_HARDSWISH,
    GQ_VKX_UN_SOFTPLUS,
    GQ_VKX_UN_SOFTSIGN,
    GQ_VKX_UN_CLIP,
    GQ_VKX_UN_EXP,
    GQ_VKX_UN_LOG,
    GQ_VKX_UN_SQRT,
    GQ_VKX_UN_ABS,
    GQ_VKX_UN_NEG,
    GQ_VKX_UN_RECIP,
    GQ_VKX_UN_FLOOR,
    GQ_VKX_UN_CEIL,
} gq_vkx_unop_t;

typedef struct {
    const char *op; /* op type, or a fused kernel's name ("Conv+Act") */
    gq_vkx_kind_t kind;
    int code; /* unary: gq_vkx_unop_t; binary: 0 add, 1 sub, 2 mul, 3 div */
} gq_vkx_entry_t;

/* The ops the accelerator knows; gq_vkx_claim_t.op and gq_vkx_step_op index it. */
extern const gq_vkx_entry_t gq_vkx_table[];

/* One GEMM of onnx_gemm.comp over nb batches (see the shader for the strides). */
typedef struct {
    int64_t m, n, k, nb;
    int64_t ars, acs, brs, bcs, ldc;
    int64_t amod, abs_, bmod, bbs, cbs, coff;
    int64_t bsm, bsn, biasmod, biasbs;
    bool bias;
    float alpha, beta;
} gq_vkx_gemm_t;

/* A broadcast (or strided) plan of up to 8 merged dims, right-aligned (slot 7 innermost). */
typedef struct {
    uint32_t nd, sh[8], s0[8], s1[8];
} gq_vkx_bplan_t;

/* What the claim of the step being run found (filled by gq_vkx_claim, read by gq_vkx_run). */
typedef struct {
    int op; /* gq_vkx_table index */
    gq_tdesc_t od;
    gq_vkx_gemm_t g;          /* MatMul, Gemm (and fused) */
    gq_onnx_claim_win_t w;    /* convs, pools */
    gq_onnx_claim_win_t pool; /* Conv+MaxPool: the pool over the conv's output */
    gq_tdesc_t cod;           /* convs: the conv's output */
    int64_t N, C, M, G;       /* convs: images, channels, filters, groups */
    bool conv_bias;           /* convs: has B */
    bool inc_pad;             /* AveragePool: count_include_pad */
    int act;                  /* epilogue code (shaders/onnx_common.glsl) */
    float acta, actb;         /* its parameters */
    float p0, p1;             /* unary attributes; BatchNormalization: p0 epsilon */
    int64_t rows, len, inner; /* softmax; global pools: planes, size; BN: -, sz, C */
    bool flat;                /* binary on equal shapes */
    gq_vkx_bplan_t bp;        /* binary, transpose */
} gq_vkx_claim_t;

/* A device buffer holding a value: a run buffer from the backend's pool (refs counts the
 * values that hold it: reshape-like steps share their input's), or a plan constant. */
typedef struct gq_vkx_buf {
    gq_buffer_t gb;
    size_t cap;
    int refs;
    bool konst;
    struct gq_vkx_buf *next; /* free or constant list */
} gq_vkx_buf_t;

typedef struct {
    gq_onnx_accel_t base;
    gq_backend_t *be;
    gq_vk_t *vk;
} gq_vkx_t;

/* One plan's state: its constants on the device, the run's buffers. */
typedef struct {
    gq_vkx_t *ax;
    const gq_onnx_plan_t *p;
    gq_vkx_buf_t **konst; /* per slot: the constant uploaded once */
    int *stepop;          /* per step: the table entry its kernel may run as, -1: never */
    gq_vkx_buf_t *consts; /* every constant buffer */
    gq_vkx_buf_t *free;   /* run buffers no value holds: reusable within the run */
    int live;             /* run buffers held by values */
    int first, last;      /* steps recorded since the last flush (first -1: none) */
    gq_vkx_claim_t cur;
} gq_vkx_plan_t;

/* A run buffer of at least nbytes (refs 1), from the run's free list or the backend's pool. */
gq_status gq_vkx_alloc(gq_vkx_plan_t *ps, size_t nbytes, gq_vkx_buf_t **out, char *err,
                       size_t errlen);

/* Drops one reference; at 0 a run buffer goes to the run's free list (reused by later
 * commands of the same in-order stream, so no wait is needed). */
void gq_vkx_unref(gq_vkx_plan_t *ps, gq_vkx_buf_t *b);

/* Submits the steps recorded since the last flush and waits for them (before the host
 * reads a value, or waits for the device); a failure names them and what needed them. */
gq_status gq_vkx_flush(gq_vkx_plan_t *ps, const char *why, char *err, size_t errlen);

/* ---- vk_onnx_claim.c ---- */

/* The table entry step k's kernel can run as (plan time: op type and kernel), -1 when none. */
int gq_vkx_step_op(const gq_onnx_plan_t *p, int k);

/* Whether step k runs here with these inputs: its geometry into ps->cur. */
bool gq_vkx_claim(gq_vkx_plan_t *ps, int k, gq_onnx_val_t *const *in, int nin, gq_tdesc_t *out_desc,
                  int nout);

/* ---- vk_onnx_ops.c ---- */

/* Records claimed step k (ps->cur) on the calling thread's stream, after the steps recorded
 * before it (submitted together by gq_vkx_flush). */
gq_status gq_vkx_run(gq_vkx_plan_t *ps, int k, gq_onnx_val_t *const *in, int nin,
                     gq_onnx_val_t *out, int nout, char *err, size_t errlen);

#endif
