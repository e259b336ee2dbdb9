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

extern const gq_onnx_kernel_t gq_onnx_kernels[];
extern const int gq_onnx_kernel_count;

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
