/* Plan-time types of a graph's values (onnx_infer.c, the shape functions in onnx_shape_*.c):
 * element type and dims per slot, where a dim is a number, a multiple of a named symbol (a
 * dim_param such as "N") or unknown. Constant folding (onnx_fold.c) and the memory report
 * (onnx_mem.c) are built on it. */
#ifndef GQ_ONNX_INFER_H
#define GQ_ONNX_INFER_H

#include "onnx_plan.h"

/* c when sym is 0; c times symbol sym (sym > 0, c >= 1); unknown when sym < 0. */
typedef struct {
    int64_t c;
    int32_t sym;
} gq_onnx_dim_t;

/* Element values tracked for small integer tensors (shape arithmetic), at most this many. */
#define GQ_ONNX_MAXVAL 16

/* What planning knows of one value. */
typedef struct {
    gq_dtype_t dtype; /* GQ_DTYPE_INVALID: unknown */
    int rank;         /* -1: unknown */
    gq_onnx_dim_t dim[GQ_MAX_DIMS];
    const void *data; /* a constant's bytes (borrowed from the model or the plan); else NULL */
    int nval;         /* >= 0: an integer tensor of nval elements, row major, in val[]; -1 */
    gq_onnx_dim_t val[GQ_ONNX_MAXVAL];
} gq_onnx_info_t;

/* Symbol names: symbol s is name[s - 1] (borrowed from the model's dim_param strings). */
#define GQ_ONNX_MAXSYM 64
typedef struct {
    const char *name[GQ_ONNX_MAXSYM];
    int n;
} gq_onnx_syms_t;

/* How graph inputs are bound: in[0..nin) gives exact shapes and values (what a run has);
 * otherwise the declared types, with a symbolic or unknown dim 0 set to batch when batch > 0. */
typedef struct {
    int64_t batch;
    const gq_view_t *in;
    int nin;
} gq_onnx_bind_t;

/* Called after each step's inference with its input and output infos (out may be
 * changed: folding sets data). A status other than GQ_OK stops the walk. */
typedef gq_status (*gq_onnx_infer_hook)(void *arg, int k, const gq_onnx_info_t *const *in,
                                        gq_onnx_info_t *out, char *err, size_t errlen);

/* Infers info[0..p->nslots) over p's steps in order. parent_info: the enclosing plan's
 * infos (subgraphs; NULL leaves outer values unknown). A shape that cannot hold (known dims
 * that do not fit an op) is GQ_ESHAPE with err naming node, op, input and shapes. */
gq_status gq_onnx_infer(const gq_onnx_plan_t *p, const gq_onnx_info_t *parent_info,
                        const gq_onnx_bind_t *bind, gq_onnx_syms_t *syms, gq_onnx_info_t *info,
                        gq_onnx_infer_hook hook, void *arg, char *err, size_t errlen);

/* Whether op_type has a shape function (ops without one give unknown outputs). */
bool gq_onnx_infer_has_fn(const char *op_type);

/* Whether every shape function table is sorted by op, as the lookup's halving needs (a test
 * calls it); err names the first pair out of order. */
bool gq_onnx_infer_tables_sorted(char *err, size_t errlen);

/* Whether every dim is known; *nbytes then holds the value's size (false on overflow). */
bool gq_onnx_info_known(const gq_onnx_info_t *v, size_t *nbytes);

/* v's exact descriptor (every dim known). */
void gq_onnx_info_desc(const gq_onnx_info_t *v, gq_tdesc_t *d);

/* v as "f32[N,3,32,32]" ("?" for an unknown dtype or dim, "[*]" for an unknown rank). */
char *gq_onnx_info_str(const gq_onnx_info_t *v, const gq_onnx_syms_t *syms, char *buf, size_t len);

/* v = a constant's info: its exact type, data, and values when a small integer tensor. */
void gq_onnx_info_const(gq_onnx_info_t *v, const gq_tdesc_t *d, const void *data);

/* Plan-time inference over a planned graph (enclosing values unknown for a subgraph): fails
 * on shapes that cannot hold. Unless opts->no_fold, also constant folding (onnx_fold.c):
 * steps whose inputs are all constants run once here through their kernels, Shape/Size of
 * values whose dims are known and the integer arithmetic off them become constants, and
 * those steps leave the plan (p->nfolded counts them). */
gq_status gq_onnx_plan_infer_fold(gq_onnx_plan_t *p, const gq_onnx_plan_opts_t *opts, char *err,
                                  size_t errlen);

#endif
