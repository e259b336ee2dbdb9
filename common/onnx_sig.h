/* What a model takes: its graph inputs that are not initializers (name, dtype, dims, with
 * symbolic dims as -1), and how many outputs it gives. The broker keeps this for every
 * model in its store and checks onnx.run jobs against it at admission. */
#ifndef GQ_ONNX_SIG_H
#define GQ_ONNX_SIG_H

#include "onnx_model.h"
#include "optable.h"

typedef struct {
    char name[GQ_MAX_STR];
    bool any;                   /* the model declares no type: any dtype and rank */
    gq_dtype_t dtype;           /* GQ_DTYPE_INVALID: a type gpuq has no dtype for */
    int ndim;                   /* -1: any rank (the model declares no shape) */
    int64_t shape[GQ_MAX_DIMS]; /* -1: symbolic (batch, time ...) */
} gq_onnx_input_t;

typedef struct {
    int ninputs;
    gq_onnx_input_t in[GQ_MAX_INPUTS];
    int noutputs;
} gq_onnx_sig_t;

/* Reads m's signature; GQ_EUNSUPPORTED naming the input when it is not a tensor, or when
 * the model takes more than GQ_MAX_INPUTS inputs / gives more than GQ_MAX_OUTPUTS. */
gq_status gq_onnx_sig_of(const gq_onnx_model_t *m, gq_onnx_sig_t *sig, char *err, size_t errlen);

/* Checks job inputs against sig: count, dtype, rank and every fixed dim. err names the
 * model input ("onnx.run: input 0 'mel' wants f32[1,80,T], got f64[80,100]"). */
gq_status gq_onnx_sig_check(const gq_onnx_sig_t *sig, const gq_tdesc_t *in, int nin, char *err,
                            size_t errlen);

/* "f32[1,80,T]" (T for a symbolic dim, "f32[...]" for any rank) into buf. */
char *gq_onnx_input_str(const gq_onnx_input_t *in, char *buf, size_t len);

#endif
