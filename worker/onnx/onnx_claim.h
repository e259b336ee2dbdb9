/* The device-independent half of an accelerator's claim (onnx_accel.h): which op a step's
 * kernel runs as, and the attribute, dtype and shape rules of the ops the OpenCL and Vulkan
 * accelerators run (worker/opencl/cl_onnx_claim.c, worker/vulkan/vk_onnx_claim.c), with the
 * output descriptor and the geometry their launches need. The rules are the CPU kernels'
 * (onnx_ops_*.c); each function returns false where the step must stay on the CPU: other
 * dtypes than f32, 3-D windows, training modes, MatMul batch dims that broadcast both ways,
 * empty tensors or tensors past GQ_ONNX_CLAIM_INT_MAX elements, and shapes, axes or bounds
 * that only the device holds. The tables of ops and the launch layouts stay with each
 * device. */
#ifndef GQ_ONNX_CLAIM_H
#define GQ_ONNX_CLAIM_H

#include <stdbool.h>
#include <stdint.h>

#include "onnx_plan.h"

#define GQ_ONNX_CLAIM_INT_MAX ((int64_t)0x7fffffff) /* device kernels index with 32 bits */

/* A 1-D or 2-D window (1-D as 2-D with a unit height): input, kernel, strides, dilations,
 * leading and trailing pads, output. */
typedef struct {
    int64_t ih, iw, kh, kw, sh, sw, dh, dw, ph, pw, phe, pwe, oh, ow;
} gq_onnx_claim_win_t;

/* An elementwise plan over up to 8 merged dims, right-aligned (slot 7 innermost): the
 * output's shape and the strides of one or two sources. */
typedef struct {
    int nd;
    int64_t sh[8], s0[8], s1[8];
} gq_onnx_claim_bplan_t;

/* MatMul as nb GEMMs of [m, k] x [k, n]: A's batch b at (b % amod) * abs_, B's likewise. */
typedef struct {
    int64_t m, n, k, nb, amod, abs_, bmod, bbs;
} gq_onnx_claim_mm_t;

/* Gemm: C (optional, bias) broadcast over [m, n] with strides bsm, bsn. */
typedef struct {
    int64_t m, n, k, bsm, bsn;
    bool ta, tb, bias;
    float alpha, beta;
} gq_onnx_claim_gemm_t;

/* A 1-D or 2-D conv: images, channels, filters, groups, whether B is given, the window. */
typedef struct {
    int64_t N, C, M, G;
    bool bias;
    gq_onnx_claim_win_t w;
} gq_onnx_claim_conv_t;

/* The reshape-like ops: the output is the input's buffer under a new descriptor. */
typedef enum {
    GQ_ONNX_CLAIM_RESHAPE,
    GQ_ONNX_CLAIM_FLATTEN,
    GQ_ONNX_CLAIM_SQUEEZE,
    GQ_ONNX_CLAIM_UNSQUEEZE,
    GQ_ONNX_CLAIM_IDENTITY,
    GQ_ONNX_CLAIM_DROPOUT,
} gq_onnx_claim_alias_t;

/* The name step k's kernel runs as, to look up in a device's table: the op type when the step
 * runs the op's own kernel, a fused kernel's name ("Conv+Act") when it starts with the op;
 * NULL otherwise (a kernel another pass put in is declined, never run with the wrong
 * semantics), and for steps with subgraphs. */
const char *gq_onnx_claim_kernel_name(const gq_onnx_plan_t *p, int k);

/* An f32 tensor of 1 .. GQ_ONNX_CLAIM_INT_MAX elements. */
bool gq_onnx_claim_f32(const gq_onnx_val_t *v);

/* A small input the host can read (shape, axes, Clip bounds, a fused step's constants). */
bool gq_onnx_claim_host(const gq_onnx_val_t *v);

/* Whether output o of step st is read (graph outputs included). */
bool gq_onnx_claim_used(const gq_onnx_plan_t *p, const gq_onnx_step_t *st, int o);

/* A fused step's epilogue constant (NULL: none) into f; the device kernels' epilogue codes
 * are f->k's values (GQ_ONNX_ACT_NONE 0 .. GQ_ONNX_ACT_HARDSIGMOID 6). */
bool gq_onnx_claim_epilogue(const gq_onnx_val_t *v, gq_onnx_act_t *f);

/* Unary ops: their float attributes (or Clip's bounds) into prm[2], 0 when unused. */
bool gq_onnx_claim_unary(const gq_onnx_step_t *st, int opset, gq_onnx_val_t *const *in, int nin,
                         float *prm, gq_tdesc_t *od);

/* Add, Sub, Mul, Div with broadcasting: flat when both shapes are equal. */
bool gq_onnx_claim_binary(int opset, gq_onnx_val_t *const *in, int nin, bool *flat,
                          gq_onnx_claim_bplan_t *bp, gq_tdesc_t *od);

/* MatMul of a and b (batch dims broadcasting on one side at most). */
bool gq_onnx_claim_matmul(const gq_onnx_val_t *a, const gq_onnx_val_t *b, gq_onnx_claim_mm_t *mm,
                          gq_tdesc_t *od);

/* Gemm: A, B, C (or absent; ignored when beta is 0). */
bool gq_onnx_claim_gemm(const Onnx__NodeProto *n, gq_onnx_val_t *const *in, int nin,
                        gq_onnx_claim_gemm_t *g, gq_tdesc_t *od);

/* Conv 1-D / 2-D: X, W, B (or absent); one image's im2col columns fit 32-bit indices. */
bool gq_onnx_claim_conv(const Onnx__NodeProto *n, gq_onnx_val_t *const *in, int nin,
                        gq_onnx_claim_conv_t *cv, gq_tdesc_t *od);

/* Conv+MaxPool's pool (its constant i64[11], onnx_int.h) over the conv's window cw: od holds
 * the conv's output and gets the pool's. */
bool gq_onnx_claim_convpool(const gq_onnx_val_t *v, const gq_onnx_claim_win_t *cw,
                            gq_onnx_claim_win_t *pool, gq_tdesc_t *od);

/* MaxPool (no Indices) and AveragePool: the window, count_include_pad. */
bool gq_onnx_claim_pool(const gq_onnx_plan_t *p, const gq_onnx_step_t *st, gq_onnx_val_t *const *in,
                        int nin, gq_onnx_claim_win_t *w, bool *inc_pad, gq_tdesc_t *od);

/* GlobalMaxPool, GlobalAveragePool over an input of min_ndim dims or more: planes (N x C),
 * each of size elements. */
bool gq_onnx_claim_gpool(gq_onnx_val_t *const *in, int nin, int min_ndim, int64_t *planes,
                         int64_t *size, gq_tdesc_t *od);

/* BatchNormalization (inference, opset >= 9): the size of each plane, epsilon. */
bool gq_onnx_claim_bn(const gq_onnx_plan_t *p, const gq_onnx_step_t *st, gq_onnx_val_t *const *in,
                      int nin, int64_t *size, float *eps, gq_tdesc_t *od);

/* Softmax, LogSoftmax (opset < 13: the input coerced to 2-D at axis): rows of len elements
 * inner apart. */
bool gq_onnx_claim_softmax(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                           int64_t *rows, int64_t *len, int64_t *inner, gq_tdesc_t *od);

/* Transpose: the output as a strided gather of the input (bp's s0). */
bool gq_onnx_claim_transpose(const Onnx__NodeProto *n, gq_onnx_val_t *const *in, int nin,
                             gq_onnx_claim_bplan_t *bp, gq_tdesc_t *od);

/* The reshape-like ops: the output's descriptor. */
bool gq_onnx_claim_alias(gq_onnx_claim_alias_t kind, const gq_onnx_plan_t *p,
                         const gq_onnx_step_t *st, gq_onnx_val_t *const *in, int nin,
                         gq_tdesc_t *od);

#endif
