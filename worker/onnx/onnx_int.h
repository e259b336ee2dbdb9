/* Internals shared by the ONNX executor (onnx_exec.c) and its kernels (onnx_ops*.c). */
#ifndef GQ_ONNX_INT_H
#define GQ_ONNX_INT_H

#include <stdbool.h>
#include <string.h>
#include "onnx_exec.h"

/* A value during a run: owned buffers are freed when the run ends. */
typedef struct {
    gq_tdesc_t desc;
    void *data;
    size_t nbytes;
    bool owned;
} gq_onnx_val_t;

/* A kernel: reads in[0..nin) (NULL entries are omitted optional inputs), fills out[0..nout)
 * (descriptor and a buffer from gq_onnx_val_alloc). err names the cause; the executor
 * prefixes node and op. */
typedef gq_status (*gq_onnx_kernel_fn)(const Onnx__NodeProto *node, int opset,
                                       gq_onnx_val_t *const *in, int nin, gq_onnx_val_t *out,
                                       int nout, char *err, size_t errlen);

typedef struct {
    const char *op;
    int min_opset; /* semantics implemented from this opset on */
    gq_onnx_kernel_fn fn;
} gq_onnx_kernel_t;

/* Kernel tables, one per file (onnx_ops_elem.c, onnx_ops_nn.c, onnx_ops_shape.c). */
extern const gq_onnx_kernel_t gq_onnx_kernels_elem[], gq_onnx_kernels_nn[], gq_onnx_kernels_shape[];
extern const int gq_onnx_kernels_elem_count, gq_onnx_kernels_nn_count, gq_onnx_kernels_shape_count;

/* The kernel for op_type at opset; NULL when none. */
const gq_onnx_kernel_t *gq_onnx_kernel_find(const char *op_type, int opset);

#define GQ_ONNX_ELEMS(v) ((int64_t)((v)->nbytes / gq_dtype_size((v)->desc.dtype)))

/* NumPy broadcast of a and b into *out (dtype left 0); GQ_ESHAPE naming both shapes. */
gq_status gq_onnx_broadcast(const gq_tdesc_t *a, const gq_tdesc_t *b, gq_tdesc_t *out, char *err,
                            size_t errlen);

/* Element strides of t read as shape out (0 along broadcast dims). */
void gq_onnx_bstrides(const gq_tdesc_t *t, const gq_tdesc_t *out, int64_t *st);

/* Calls fn(i_out, i_a, i_b) over every output element. */
#define GQ_ONNX_BCAST_LOOP(out, a, b, ...)                                                         \
    do {                                                                                           \
        int64_t sa_[GQ_MAX_DIMS], sb_[GQ_MAX_DIMS], idx_[GQ_MAX_DIMS] = {0};                       \
        gq_onnx_bstrides(a, out, sa_);                                                             \
        gq_onnx_bstrides(b, out, sb_);                                                             \
        int64_t n_ = gq_tdesc_numel(out), ia = 0, ib = 0;                                          \
        for (int64_t io = 0; io < n_; io++) {                                                      \
            __VA_ARGS__;                                                                           \
            for (int d_ = (out)->ndim - 1; d_ >= 0; d_--) {                                        \
                ia += sa_[d_], ib += sb_[d_];                                                      \
                if (++idx_[d_] < (out)->shape[d_])                                                 \
                    break;                                                                         \
                ia -= sa_[d_] * idx_[d_], ib -= sb_[d_] * idx_[d_];                                \
                idx_[d_] = 0;                                                                      \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* memcpy that takes n == 0 with NULL pointers (empty tensors, absent repeated fields). */
#define GQ_ONNX_COPY(dst, src, n)                                                                  \
    do {                                                                                           \
        size_t n_ = (n);                                                                           \
        if (n_)                                                                                    \
            memcpy((dst), (src), n_);                                                              \
    } while (0)

/* Allocates v's buffer for its descriptor (checked), 64-byte aligned, owned. */
gq_status gq_onnx_val_alloc(gq_onnx_val_t *v, char *err, size_t errlen);

/* Attribute lookup by name; NULL when absent. */
const Onnx__AttributeProto *gq_onnx_attr(const Onnx__NodeProto *n, const char *name);
int64_t gq_onnx_attr_int(const Onnx__NodeProto *n, const char *name, int64_t def);
float gq_onnx_attr_float(const Onnx__NodeProto *n, const char *name, float def);

#endif
