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
    /* Its copy on the plan's accelerator (onnx_accel.h), NULL: none; dev_only: only dev
     * holds the bytes, data is not valid (read back before a CPU kernel uses it). */
    void *dev;
    bool dev_only;
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
GQ_ONNX_FAMILY(einsum);
GQ_ONNX_FAMILY(loss);
GQ_ONNX_FAMILY(quant);
GQ_ONNX_FAMILY(vision);
#define GQ_ONNX_COUNT(t) ((int)(sizeof(t) / sizeof((t)[0])))

/* Conv with a Relu fused after it (the plan's fusion pass, onnx_exec.c, puts it in). */
extern const gq_onnx_kernel_t gq_onnx_kernel_conv_relu;

/* Hot loops built twice, for x86-64-v3 (AVX2, FMA) and the baseline ISA; the loader picks
 * one by the CPU (GCC's target_clones, an ifunc). In them a * b + c may become one FMA
 * (-std=c11 turns contraction off), and comparisons may run speculatively (no-trapping-math:
 * without it GCC keeps the branches of clamps and max, and such loops do not vectorize).
 * Elsewhere: the baseline alone. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && __GNUC__ >= 12
#define GQ_ONNX_SIMD                                                                               \
    __attribute__((target_clones("arch=x86-64-v3", "default"),                                     \
                   optimize("fp-contract=fast", "no-trapping-math")))
#else
#define GQ_ONNX_SIMD
#endif

/* An activation applied in a kernel's epilogue (fused by onnx_fuse.c) or to an RNN gate. */
typedef enum {
    GQ_ONNX_ACT_NONE,
    GQ_ONNX_ACT_RELU,
    GQ_ONNX_ACT_LEAKYRELU, /* a: alpha */
    GQ_ONNX_ACT_CLIP,      /* a, b: min, max */
    GQ_ONNX_ACT_SIGMOID,
    GQ_ONNX_ACT_TANH,
    GQ_ONNX_ACT_HARDSIGMOID, /* a, b: alpha, beta */
    GQ_ONNX_ACT_COUNT
} gq_onnx_actk_t;

typedef struct {
    gq_onnx_actk_t k;
    float a, b;
} gq_onnx_act_t;

/* Fused steps (onnx_fuse.c): the node's own inputs, then the epilogue as a constant
 * f32[3] = {kind, a, b} (gq_onnx_act_decode). Conv+Act: X, W, B (or absent), epilogue;
 * Gemm+Act: A, B, C (or absent), epilogue; MatMul+Add: A, B, bias [N] (the Add's constant,
 * along the last dim), epilogue. */
extern const gq_onnx_kernel_t gq_onnx_kernel_conv_act;
extern const gq_onnx_kernel_t gq_onnx_kernel_gemm_act;
extern const gq_onnx_kernel_t gq_onnx_kernel_matmul_add;

/* The epilogue of a fused step from its constant (NULL: none); GQ_EPARAM when malformed. */
gq_status gq_onnx_act_decode(const gq_onnx_val_t *v, gq_onnx_act_t *f, char *err, size_t errlen);

/* v[0..n) = f(v), in place (vectorized; sigmoid/tanh within 4e-7 of libm). */
void gq_onnx_act_apply(const gq_onnx_act_t *f, float *v, int64_t n);

/* y[r, c] = f(y[r, c] + rowb[r] + colb[c]) over a rows x cols matrix (ld = cols); rowb or
 * colb NULL: no such bias. */
void gq_onnx_bias_act(const gq_onnx_act_t *f, const float *rowb, const float *colb, float *y,
                      int64_t rows, int64_t cols);

/* Geometry of a 1-D or 2-D convolution (1-D: ih = kh = oh = sh = dh = 1, ph = 0). */
typedef struct {
    int64_t N, C, M, group;
    int64_t ih, iw, kh, kw, oh, ow;
    int64_t sh, sw, dh, dw, ph, pw; /* strides, dilations, leading pads */
} gq_onnx_conv2d_t;

/* Direct convolution (onnx_ops_dconv.c): y [N, M, oh, ow] = act(conv(x, w) + bias), without
 * im2col: output channels in blocks of 4 against strided-phase copies of the input rows.
 * bias may be NULL. GQ_ENOMEM when its scratch cannot be had. */
gq_status gq_onnx_conv2d_direct(const gq_onnx_conv2d_t *g, const float *x, const float *w,
                                const float *bias, const gq_onnx_act_t *act, float *y, char *err,
                                size_t errlen);

/* One spatial dim of a windowed op (Conv, the pools, Conv+MaxPool): from input size in,
 * kernel k, stride s and dilation dil (all >= 1: the caller checks), auto_pad ap and the
 * explicit pads *pb, *pe (>= 0), the output size *o and the pads it runs with (SAME_UPPER /
 * SAME_LOWER: the total the output needs, the odd one at the end / the start; VALID: none).
 * With ceil_mode (NOTSET and VALID) the last window must start inside the input or the left
 * padding, as the spec, ONNX's shape inference and PyTorch have it. 0; -1: ap is not an
 * auto_pad value; -2: the dilated window is larger than the padded input. The one rule the
 * CPU kernels, shape inference and the accelerators' claims share (onnx_util.c). */
int gq_onnx_window_dim(int64_t in, int64_t k, int64_t s, int64_t dil, const char *ap,
                       bool ceil_mode, int64_t *pb, int64_t *pe, int64_t *o);

/* A MaxPool fused after a conv (onnx_fuse.c), over the conv's output [oh, ow]: window,
 * strides, dilations, leading pads, and its output dims. */
typedef struct {
    int64_t kh, kw, sh, sw, dh, dw, ph, pw;
    int64_t oh, ow;
} gq_onnx_pool2d_t;

/* gq_onnx_conv2d_direct, then MaxPool pl (NULL: none) on each band of conv rows while it is
 * in cache: y is [N, M, pl->oh, pl->ow]. */
gq_status gq_onnx_conv2d_pool(const gq_onnx_conv2d_t *g, const gq_onnx_pool2d_t *pl, const float *x,
                              const float *w, const float *bias, const gq_onnx_act_t *act, float *y,
                              char *err, size_t errlen);

/* Conv(+Act) -> MaxPool (onnx_ops_convpool.c): X, W, B (or absent), epilogue (or absent),
 * the pool as a constant i64[11] {kh, kw, sh, sw, dh, dw, pad top, left, bottom, right,
 * ceil_mode} (1-D: kh = sh = dh = 1, top = bottom = 0). */
extern const gq_onnx_kernel_t gq_onnx_kernel_conv_maxpool;

/* Reshape's target dims for input s and shape sh[0..nd) (the CPU kernel's rule, which the
 * accelerators claim by): 0 copies the input's dim unless allowzero, one -1 is inferred.
 * GQ_ESHAPE naming the fault. */
gq_status gq_onnx_reshape_dims(const gq_tdesc_t *s, const int64_t *sh, int64_t nd, bool allowzero,
                               gq_tdesc_t *d, char *err, size_t errlen);

/* Squeeze/Unsqueeze's axes: the attribute before opset 13, the i64 second input from 13 (0
 * when absent); -1 when more than GQ_MAX_DIMS. */
int gq_onnx_axes_arg(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                     int64_t *axes);

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

/* The shapes of a MatMul of a and b (the CPU kernel's rule, which accelerators claim by):
 * 1-D operands promoted in place ([k] -> [1,k] for a, [k,1] for b; the promoted dim is
 * dropped from the result), batch dims ba and bb broadcast into bo, the result's
 * descriptor in od (a's dtype). GQ_ESHAPE naming the fault. */
gq_status gq_onnx_matmul_shape(gq_tdesc_t *a, gq_tdesc_t *b, gq_tdesc_t *ba, gq_tdesc_t *bb,
                               gq_tdesc_t *bo, gq_tdesc_t *od, char *err, size_t errlen);

/* One operand pair of gq_onnx_sgemm_rows: row i of the left operand at a[i] (k floats),
 * the right operand [k, n] as gq_onnx_rows_pack lays it out. */
typedef struct {
    const float *const *a;
    int64_t k;
    const float *b;
} gq_onnx_rows_t;

/* dst (n k floats) = the right operand [k, n] for gq_onnx_sgemm_rows, its element (p, j) at
 * w[j sn + p sk] (an ONNX weight [n, k], a row per output: sn k, sk 1), n a multiple of 8:
 * panels of 16 columns (the last may have 8), each k rows of its columns. */
void gq_onnx_rows_pack(const float *w, int64_t n, int64_t k, int64_t sn, int64_t sk, float *dst);

/* C[i, 0..n) = (acc ? C[i] : bias, zeros when NULL) + the sum over the np pairs of a[i] b,
 * for rows i < m, f32, n a multiple of 8: register tiles without packing, for the small
 * products of RNN steps (onnx_gemm_small.c). */
void gq_onnx_sgemm_rows(int64_t m, int64_t n, const gq_onnx_rows_t *pr, int np, const float *bias,
                        bool acc, float *c, int64_t ldc);

/* C[m,n] = alpha * op(A)[m,k] op(B)[k,n] + beta * C, row major, on OpenBLAS (f32). */
void gq_onnx_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                   int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

#endif
