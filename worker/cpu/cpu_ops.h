/* CPU kernels: one function per op, found by name in kernel tables (one table per op
 * family, like the op table). The CPU backend is the reference every other backend is
 * tested against, so kernels favour exact, documented results over speed.
 *
 * Kernel contract:
 *   - a is resolved (gq_op_resolve) and in/out descriptors passed gq_op_infer: the backend
 *     checks that before calling, so kernels trust shapes and dtypes.
 *   - Outputs are preallocated by the caller; kernels never allocate.
 *   - Every data pointer is naturally aligned for its dtype: the element size, or for
 *     complex dtypes the size of one component (c64: 4, c128: 8). Inputs that arrive
 *     misaligned (pointing into a network frame) are copied by the worker into aligned
 *     memory first (worker/exec.c); the backend's run rejects misaligned views with
 *     GQ_EINVAL rather than loading through them.
 *   - Outputs do not overlap inputs.
 *   - 0-size tensors and ndim 0 (scalars) are valid inputs. */
#ifndef GQ_CPU_OPS_H
#define GQ_CPU_OPS_H

#include "optable.h"
#include <stddef.h>

typedef gq_status (*gq_cpu_kernel_fn)(const gq_args_t *a, const gq_view_t *in, int nin,
                                      gq_view_t *out, int nout, char *err, size_t errlen);

typedef struct {
    const char *op; /* op table name, "tensor.add" */
    gq_cpu_kernel_fn fn;
} gq_cpu_kernel_t;

typedef struct {
    const gq_cpu_kernel_t *kernels;
    int count;
} gq_cpu_kernel_family_t;

/* Kernels of the tensor.* ops (cpu_tensor.c). */
extern const gq_cpu_kernel_family_t gq_cpu_tensor_kernels;
/* Kernels of the dsp.* ops: spectral (cpu_dsp_spectral.c), filters and levels
 * (cpu_dsp_filter.c). */
extern const gq_cpu_kernel_family_t gq_cpu_dsp_spectral_kernels;
extern const gq_cpu_kernel_family_t gq_cpu_dsp_filter_kernels;

/* The kernel for an op name across every registered family; NULL when none. */
gq_cpu_kernel_fn gq_cpu_kernel_find(const char *op);

#endif
