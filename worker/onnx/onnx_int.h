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
    size_t cap; /* bytes behind data when it came from gq_onnx_val_alloc; 0: plain free() */
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

/* Kernel tables, one per file (onnx_ops_<family>.c). */
#define GQ_ONNX_FAMILY(F)                                                                          \
    extern const gq_onnx_kernel_t gq_onnx_kernels_##F[];                                           \
    extern const int gq_onnx_kernels_##F##_count
GQ_ONNX_FAMILY(elem);
GQ_ONNX_FAMILY(nn);
GQ_ONNX_FAMILY(shape);
GQ_ONNX_FAMILY(logic);
GQ_ONNX_FAMILY(index);
GQ_ONNX_FAMILY(reduce);
GQ_ONNX_FAMILY(norm);
GQ_ONNX_FAMILY(conv);
GQ_ONNX_FAMILY(rnn);
GQ_ONNX_FAMILY(ctrl);
GQ_ONNX_FAMILY(dsp);
GQ_ONNX_FAMILY(scatter);
GQ_ONNX_FAMILY(resize);
#define GQ_ONNX_COUNT(t) ((int)(sizeof(t) / sizeof((t)[0])))

/* Conv with a Relu fused after it (the plan's fusion pass, onnx_exec.c, puts it in). */
extern const gq_onnx_kernel_t gq_onnx_kernel_conv_relu;

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

/* Allocates v's buffer for its descriptor (checked), 64-byte aligned, owned. During a run
 * buffers come from the plan's pool (buffers freed by earlier steps and runs), so a warm
 * plan does not touch fresh pages. */
gq_status gq_onnx_val_alloc(gq_onnx_val_t *v, char *err, size_t errlen);

/* Buffers kept between steps and runs of a plan: a warm plan reuses them instead of
 * faulting in fresh pages (which costs more than most kernels of small models). Best fit,
 * at most twice the size asked for. */
typedef struct {
    void **p;
    size_t *cap;
    int n, max;
} gq_onnx_pool_t;

/* Makes pl the pool of this thread's allocations (NULL: none); returns the previous one. */
gq_onnx_pool_t *gq_onnx_pool_enter(gq_onnx_pool_t *pl);

/* Frees every buffer the pool holds. */
void gq_onnx_pool_clear(gq_onnx_pool_t *pl);

/* *bytes = a * b * es without overflow (all >= 0); false when it would overflow. Sizes of
 * kernel scratch derived from several tensors' dims go through it. */
bool gq_onnx_size3(int64_t a, int64_t b, size_t es, size_t *bytes);

/* Kernel scratch from the same pool: at least nbytes, 64-byte aligned, *cap set; NULL when
 * out of memory. Give it back with gq_onnx_scratch_free(p, cap). */
void *gq_onnx_scratch(size_t nbytes, size_t *cap);
void gq_onnx_scratch_free(void *p, size_t cap);

/* Attribute lookup by name; NULL when absent. */
const Onnx__AttributeProto *gq_onnx_attr(const Onnx__NodeProto *n, const char *name);
int64_t gq_onnx_attr_int(const Onnx__NodeProto *n, const char *name, int64_t def);
float gq_onnx_attr_float(const Onnx__NodeProto *n, const char *name, float def);

/* ---- helpers shared by the kernels (onnx_util.c) ---- */

/* Element i of a buffer of dtype dt as a double / stored from a double (integers
 * truncated toward zero and wrapped as C casts do, bool as != 0). f16 through half.h. */
double gq_onnx_getd(const void *p, gq_dtype_t dt, int64_t i);
void gq_onnx_setd(void *p, gq_dtype_t dt, int64_t i, double v);

/* Stores an integer into element i of an integer or bool buffer, wrapping as C casts do. */
void gq_onnx_seti(void *p, gq_dtype_t dt, int64_t i, int64_t v);

/* Element i of an integer or bool buffer, exactly (no trip through double). */
int64_t gq_onnx_geti(const void *p, gq_dtype_t dt, int64_t i);

/* Whether gq_onnx_getd/setd handle dt (every real gq dtype: not complex). */
bool gq_onnx_dtype_real(gq_dtype_t dt);
bool gq_onnx_dtype_int(gq_dtype_t dt);

/* Checks that the first k inputs are present; err names the first missing one. */
gq_status gq_onnx_need(gq_onnx_val_t *const *in, int nin, int k, char *err, size_t errlen);

/* Reads an integer tensor input (i32 or i64, rank 0 or 1, at most max elements) into buf;
 * what names it in errors ("axes"). */
gq_status gq_onnx_ints(const gq_onnx_val_t *v, const char *what, int64_t *buf, int max, int *n,
                       char *err, size_t errlen);

/* An attribute's ints into buf (at most max); *n = -1 when the attribute is absent. */
gq_status gq_onnx_attr_ints(const Onnx__NodeProto *node, const char *name, int64_t *buf, int max,
                            int *n, char *err, size_t errlen);

/* A string attribute into buf (NUL-terminated; def when absent); GQ_EPARAM when longer
 * than len - 1. */
gq_status gq_onnx_attr_str(const Onnx__NodeProto *node, const char *name, const char *def,
                           char *buf, size_t len, char *err, size_t errlen);

/* axis in -rank..rank-1 made non-negative; GQ_EPARAM naming it otherwise. */
gq_status gq_onnx_axis(int64_t axis, int rank, int64_t *out, char *err, size_t errlen);

/* Allocates out for desc d. */
gq_status gq_onnx_out(gq_onnx_val_t *out, const gq_tdesc_t *d, char *err, size_t errlen);

/* dst[o] = src[base + sum_d o_d * st[d]] over every element o of od (element strides, may
 * be 0 or negative; es bytes per element); contiguous runs are memcpy'd. */
void gq_onnx_strided_copy(const gq_tdesc_t *od, size_t es, const char *src, int64_t base,
                          const int64_t *st, char *dst);

/* C[m,n] = alpha * op(A)[m,k] op(B)[k,n] + beta * C, row major, on OpenBLAS (f32). */
void gq_onnx_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                   int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

#endif
