/* The op table: every op gpuq knows, its params (types, ranges, defaults), accepted
 * dtypes and shape rule. The broker validates jobs against it at admission, the worker
 * again before running, the CLI lists it. Adding an op = adding a spec to a family table. */
#ifndef GQ_OPTABLE_H
#define GQ_OPTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "tensor.h"

#define GQ_MAX_PARAMS 24
#define GQ_MAX_INPUTS 16
#define GQ_MAX_OUTPUTS 16
#define GQ_MAX_NAME 64 /* op and param names */
#define GQ_MAX_STR 256 /* string param values */
#define GQ_ERRLEN 256  /* error message buffers */

typedef enum {
    GQ_PT_NONE = 0,
    GQ_PT_INT = 1,
    GQ_PT_FLOAT = 2,
    GQ_PT_BOOL = 3,
    GQ_PT_STR = 4,
} gq_ptype_t;

/* A param value. s borrows: from the decoded message, the caller, or a spec default. */
typedef struct {
    gq_ptype_t type;
    int64_t i;
    double f;
    const char *s;
} gq_value_t;

/* A param as given by a user: by name, typed by how it was given. */
typedef struct {
    const char *name;
    gq_value_t v;
} gq_param_t;

typedef struct {
    const char *name;
    gq_ptype_t type;
    bool required;
    double min, max;            /* inclusive range for INT and FLOAT */
    const char *const *choices; /* STR: NULL-terminated allowed values; NULL = any */
    gq_value_t def;             /* used when not required and not given */
    const char *help;
} gq_param_spec_t;

typedef struct gq_op_spec gq_op_spec_t;

/* Resolved params of one op: one value per spec param, in spec order, defaults filled.
 * This is the canonical form (the cache key is computed from it). */
typedef struct {
    const gq_op_spec_t *op;
    gq_value_t v[GQ_MAX_PARAMS];
} gq_args_t;

/* Shape rule: from resolved args and input descriptors (count and dtypes already checked
 * against the spec), compute the output descriptors or fail naming the op and input. */
typedef gq_status (*gq_shape_fn)(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out,
                                 int *nout, char *err, size_t errlen);

/* Op flags. */
#define GQ_OPF_NONDETERMINISTIC 0x1u /* never cached */
/* Jobs can be stacked along a new leading axis without changing any job's answer: the op
 * treats leading dims as independent rows (common/batch.h; tests/unit/test_batch.c checks
 * each flagged op bit for bit). Not set on reductions with an axis param (axis 0 would mix
 * jobs) nor on two-input broadcasting ops, nor on ops with streaming state. */
#define GQ_OPF_BATCHABLE 0x2u
/* Cost linear in the bytes with a small constant (microseconds for small tensors): a
 * worker may run a small job of such ops on its main thread, skipping two thread
 * hand-offs, without delaying heartbeats. */
#define GQ_OPF_LIGHT 0x4u
/* Outputs known only once it ran (onnx.run: the model decides): the shape rule declares
 * none, so it can only be the last stage; the worker runs it on the host through its
 * hosted-op hook (worker/exec.h), not through a backend's run. */
#define GQ_OPF_HOSTED 0x8u

#define GQ_DT_BIT(dt) (1u << (dt))
#define GQ_DT_FLOATS (GQ_DT_BIT(GQ_F32) | GQ_DT_BIT(GQ_F64))
#define GQ_DT_NUMERIC                                                                              \
    (GQ_DT_FLOATS | GQ_DT_BIT(GQ_F16) | GQ_DT_BIT(GQ_I16) | GQ_DT_BIT(GQ_I32) | GQ_DT_BIT(GQ_U8))

struct gq_op_spec {
    const char *name;
    const char *summary;
    int min_inputs, max_inputs;
    uint32_t in_dtypes; /* GQ_DT_BIT mask of dtypes every input may have */
    uint32_t flags;
    const gq_param_spec_t *params;
    int nparams;
    gq_shape_fn shape;
};

/* Lookup by exact name; NULL when unknown. */
const gq_op_spec_t *gq_op_find(const char *name);

/* Iteration over every known op, in listing order. */
int gq_op_count(void);
const gq_op_spec_t *gq_op_at(int index);

/* Index of a param in op's spec; -1 when the op has none by that name. */
int gq_op_param_index(const gq_op_spec_t *op, const char *name);

/* Checks user params against the spec (unknown names, duplicates, types, ranges, choices,
 * missing required) and fills *out in canonical form. On failure writes a message naming
 * the op and the param ("tensor.clamp: param 'lo' = nan must be in -inf..inf"). */
gq_status gq_op_resolve(const gq_op_spec_t *op, const gq_param_t *raw, int nraw, gq_args_t *out,
                        char *err, size_t errlen);

/* Checks inputs (count, dtype mask, descriptor sanity) and applies the shape rule. */
gq_status gq_op_infer(const gq_args_t *a, const gq_tdesc_t *in, int nin, gq_tdesc_t *out, int *nout,
                      char *err, size_t errlen);

/* Typed accessors of resolved args by param name; the name must exist in the spec (a
 * programming error otherwise, caught by the op table unit test). */
int64_t gq_args_int(const gq_args_t *a, const char *name);
double gq_args_float(const gq_args_t *a, const char *name);
bool gq_args_bool(const gq_args_t *a, const char *name);
const char *gq_args_str(const gq_args_t *a, const char *name);

/* Parses a param value given as text ("0.5", or the whole "factor=0.5") for spec ps into
 * *v (CLI, config); v->s points into text. */
gq_status gq_param_parse(const gq_param_spec_t *ps, const char *text, gq_value_t *v, char *err,
                         size_t errlen);

/* "int", "float", "bool", "string"; "none" otherwise. */
const char *gq_ptype_name(int type);

/* Writes a value as text ("3", "0.5", "true", "hann"). */
char *gq_value_str(const gq_value_t *v, char *buf, size_t len);

/* An op family: a table of specs defined in its own file (ops_tensor.c, ops_dsp.c ...). */
typedef struct {
    const gq_op_spec_t *specs;
    int count;
} gq_op_family_t;

extern const gq_op_family_t gq_ops_tensor;
extern const gq_op_family_t gq_ops_dsp_spectral; /* ops_dsp_spectral.c: fft, stft, mel ... */
extern const gq_op_family_t gq_ops_dsp_filter;   /* ops_dsp_filter.c: fir, sos, resample ... */
extern const gq_op_family_t gq_ops_onnx;         /* ops_onnx.c: onnx.run */

#endif
