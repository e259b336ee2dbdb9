/* ONNX model loading: an .onnx file parsed (protobuf-c, proto/onnx.proto), checked, and its
 * initializers turned into gq tensors. What comes out is a model whose every name resolves,
 * every tensor's size matches its shape and whose nesting is bounded: graph preparation and
 * execution (onnx_graph.c, later) trust it.
 *
 * Files come from users: every size is checked against limits before anything is allocated
 * for it, message nesting is bounded before the recursive decoder runs, external data may
 * only name files beside the model, and a truncated or corrupt file is an error naming the
 * cause (fuzzed by tests/fuzz/fuzz_onnx.c), never a crash. */
#ifndef GQ_ONNX_MODEL_H
#define GQ_ONNX_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"
#include "status.h"
#include "tensor.h"

/* Opset versions of the default domain ("" / "ai.onnx") a model may import. Which version
 * of an op's semantics gq implements is the executor's business, op by op. */
#define GQ_ONNX_OPSET_MIN 1
#define GQ_ONNX_OPSET_MAX 22

typedef struct {
    uint64_t max_file_bytes;   /* the .onnx file (default 2 GiB) */
    uint64_t max_tensor_bytes; /* one initializer or constant (default 1 GiB) */
    uint64_t max_total_bytes;  /* all initializers together (default 4 GiB) */
    int max_nodes;             /* over all graphs (default 1,000,000) */
    int max_depth;             /* protobuf message nesting (default 64) */
} gq_onnx_limits_t;

/* A named tensor of the model: an initializer, with its data 64-byte aligned, native byte
 * order, owned by the model. */
typedef struct {
    const char *name;
    gq_tdesc_t desc;
    const void *data;
    size_t nbytes;
} gq_onnx_tensor_t;

typedef struct gq_onnx_model gq_onnx_model_t;

void gq_onnx_limits_default(gq_onnx_limits_t *lim);

/* Loads path; external data files are looked up in path's directory. NULL with err naming
 * the file and the cause (GQ_EIO / GQ_EFORMAT / GQ_ETOOBIG / GQ_EDTYPE in *code when code
 * is not NULL). lim NULL: defaults. */
gq_onnx_model_t *gq_onnx_model_load(const char *path, const gq_onnx_limits_t *lim, gq_status *code,
                                    char *err, size_t errlen);

/* Parses a model held in buf[0..len). dir is where external data files live; NULL refuses
 * models with external data. err has no file name (the caller adds it). */
gq_onnx_model_t *gq_onnx_model_parse(const void *buf, size_t len, const char *dir,
                                     const gq_onnx_limits_t *lim, gq_status *code, char *err,
                                     size_t errlen);

void gq_onnx_model_destroy(gq_onnx_model_t **self_p);

/* The decoded protobuf: graph, nodes, attributes. Owned by the model. */
const Onnx__ModelProto *gq_onnx_model_proto(const gq_onnx_model_t *self);

/* The imported version of the default domain's opset. */
int gq_onnx_model_opset(const gq_onnx_model_t *self);

/* Initializers of the main graph, in file order; find returns NULL for unknown names. */
int gq_onnx_model_tensor_count(const gq_onnx_model_t *self);
const gq_onnx_tensor_t *gq_onnx_model_tensor(const gq_onnx_model_t *self, int i);
const gq_onnx_tensor_t *gq_onnx_model_tensor_find(const gq_onnx_model_t *self, const char *name);

/* XXH3-128 of the file's bytes, hex: the model's identity for caches and routing. */
const char *gq_onnx_model_digest(const gq_onnx_model_t *self);

/* Nodes over every graph (subgraphs of If/Loop/Scan included). */
int gq_onnx_model_node_count(const gq_onnx_model_t *self);

/* The gq dtype of an ONNX element type; GQ_DTYPE_INVALID for types gq has none for
 * (string, bfloat16, uint64, float8, int4). */
gq_dtype_t gq_onnx_dtype(int32_t onnx_type);

/* ONNX's name of an element type ("FLOAT", "BFLOAT16"); "type N" for unknown ones. */
const char *gq_onnx_type_name(int32_t onnx_type);

/* Decodes one TensorProto (an initializer, a Constant's value, a test's input_0.pb) into
 * *desc and *data (64-byte aligned, native order; the caller frees with free()). dir as in
 * gq_onnx_model_parse. err names the tensor. */
gq_status gq_onnx_tensor_decode(const Onnx__TensorProto *t, const char *dir,
                                const gq_onnx_limits_t *lim, gq_tdesc_t *desc, void **data,
                                char *err, size_t errlen);

/* Reads a serialized TensorProto file (the ONNX test suite's *.pb) into a tensor as above. */
gq_status gq_onnx_tensor_load(const char *path, const gq_onnx_limits_t *lim, gq_tdesc_t *desc,
                              void **data, char *err, size_t errlen);

#endif
