/* The ONNX executor's accelerator hook: a device (OpenCL today) that runs the plan steps it
 * claims, the CPU kernels running the rest.
 *
 * Given to a plan after planning and fusion (the steps are final), an accelerator is asked
 * per step and run, once the step's inputs are known, whether it claims it: it looks at the
 * step's kernel (the op's plain kernel, or a fused one it knows, such as Conv+Relu; any other
 * kernel is declined, so a new fusion only costs a fallback), attributes, dtypes and shapes,
 * and fills the output descriptors when it does. Values stay where the last writer put
 * them: a value is valid on the host (data), on the device (dev), or both (dev_only false and
 * dev set). A CPU kernel reading a device-only value has it read back first; a claimed step
 * reading a host-only value has it uploaded first (constants, i.e. initializers and folded
 * values, once per plan: the accelerator keeps them). Device buffers of a run come from the
 * backend's pool and go back to it when the run ends.
 *
 * Every step the accelerator does not claim is reported to the plan's fallback hook with its
 * op type (the worker counts them as fallbacks of "onnx.<OpType>" from the accelerator's
 * backend); the hook may refuse (strict mode) and the run then fails naming the node. */
#ifndef GQ_ONNX_ACCEL_H
#define GQ_ONNX_ACCEL_H

#include <stdbool.h>
#include "onnx_exec.h"
#include "onnx_int.h"

typedef struct gq_onnx_accel gq_onnx_accel_t;

typedef struct {
    const char *name; /* the backend it runs on: "opencl" */

    /* State for plan p (kept by the plan): constants on the device, command queue ... NULL
     * with err set on failure. */
    void *(*plan_new)(gq_onnx_accel_t *ax, const gq_onnx_plan_t *p, char *err, size_t errlen);
    void (*plan_free)(gq_onnx_accel_t *ax, void *ps);

    /* Whether it runs step k with these inputs (in[i] NULL: omitted; values on the host,
     * the device or both). When it does, out_desc[0..nout) get the output descriptors. Must
     * decline anything it does not know. */
    bool (*claim)(void *ps, int k, gq_onnx_val_t *const *in, int nin, gq_tdesc_t *out_desc,
                  int nout);

    /* Runs claimed step k right after its claim, with the same inputs, each of them now
     * holding dev. Sets each output's desc, nbytes and dev (device only: dev_only, data
     * NULL). Outputs whose slot nothing reads still get a value (released by the caller). */
    gq_status (*run)(void *ps, int k, gq_onnx_val_t *const *in, int nin, gq_onnx_val_t *out,
                     int nout, char *err, size_t errlen);

    /* Puts host value v (of slot sl) on the device: v->dev set. constant: v's bytes do not
     * change while the plan lives (initializers, folded values): uploaded once, kept. */
    gq_status (*upload)(void *ps, int sl, gq_onnx_val_t *v, bool constant, char *err,
                        size_t errlen);

    /* Copies the device bytes of v into dst (v->nbytes). */
    gq_status (*download)(void *ps, const gq_onnx_val_t *v, void *dst, char *err, size_t errlen);

    /* Drops a value's reference to dev (a constant's buffer stays with the plan). */
    void (*release)(void *ps, void *dev);

    /* End of a run (also after a failure): waits for the device and gives the run's buffers
     * back to the backend's pool. */
    gq_status (*finish)(void *ps, char *err, size_t errlen);

    /* Waits for the device (profiling: a step's time then includes its kernels). */
    gq_status (*sync)(void *ps, char *err, size_t errlen);

    void (*destroy)(gq_onnx_accel_t *ax);
} gq_onnx_accel_ops_t;

struct gq_onnx_accel {
    const gq_onnx_accel_ops_t *ops;
    void *impl;
};

/* Called for each step of a run that the accelerator does not claim (an If: its branches
 * run on the CPU). Returns false to fail the run instead (strict mode). */
typedef bool (*gq_onnx_fallback_fn)(void *ctx, const char *op_type);

/* Gives plan p accelerator ax (NULL: none; the previous one's state is freed; so does
 * gq_onnx_plan_destroy). The accelerator must outlive p, or its use by p. */
gq_status gq_onnx_plan_set_accel(gq_onnx_plan_t *p, gq_onnx_accel_t *ax, char *err, size_t errlen);

/* The fallback hook (NULL: none). */
void gq_onnx_plan_on_fallback(gq_onnx_plan_t *p, gq_onnx_fallback_fn fn, void *ctx);

/* Off: later runs stay on the CPU (after a device failure) until turned on again. */
void gq_onnx_plan_accel_enable(gq_onnx_plan_t *p, bool on);

/* Steps of the last run that ran on the accelerator, and all steps of that run. */
void gq_onnx_plan_last_run(const gq_onnx_plan_t *p, int *accel_steps, int *steps);

/* Frees the accelerator and nulls *self_p. */
void gq_onnx_accel_destroy(gq_onnx_accel_t **self_p);

/* The OpenCL accelerator (worker/opencl/cl_onnx.c) on backend be (an "opencl" backend,
 * which must outlive it): f32 MatMul, Gemm, Conv (1-D/2-D), pools, BatchNormalization,
 * Softmax, elementwise arithmetic and activations, Transpose, and the reshape-like ops
 * without copies. Its program comes from the backend's program cache. NULL with err set
 * when be is not an OpenCL backend or the program cannot be built. Only with
 * GQ_HAVE_OPENCL. */
struct gq_backend;
gq_onnx_accel_t *gq_onnx_accel_opencl_new(struct gq_backend *be, char *err, size_t errlen);

/* The Vulkan accelerator (worker/vulkan/vk_onnx*.c) on backend be (a "vulkan" backend, which
 * must outlive it and every plan given it): the OpenCL accelerator's set of steps but Erf
 * (f32). NULL with err set when be is not a Vulkan backend. Only with GQ_HAVE_VULKAN. */
gq_onnx_accel_t *gq_onnx_accel_vulkan_new(struct gq_backend *be, char *err, size_t errlen);

#endif
