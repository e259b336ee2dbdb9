/* gq_models: the broker's model store. A client puts a model's bytes once (MODEL_PUT); the
 * store checks them (the ONNX loader: a corrupt or hostile file is refused with the
 * loader's reason), names them by digest (XXH3-128 of the bytes), keeps their signature
 * for admission, and hands the bytes to workers that ask (MODEL_GET) without copying.
 * With a directory, models are also files <digest>.onnx there and come back at start. */
#ifndef GQ_MODELS_H
#define GQ_MODELS_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>
#include "onnx_sig.h"

typedef struct gq_models gq_models_t;

typedef struct {
    char digest[33];
    char name[GQ_MAX_STR];
    uint64_t size;
    gq_onnx_sig_t sig;
    zmq_msg_t bytes;  /* the file; zmq_msg_copy it to send */
    uint64_t fetches; /* times workers fetched it */
} gq_model_entry_t;

/* dir may be NULL (memory only); max_bytes caps the store (0: 1 GiB). NULL with err set
 * when dir cannot be read. Files in dir that do not load are skipped with a warning. */
gq_models_t *gq_models_new(const char *dir, uint64_t max_bytes, char *err, size_t errlen);
void gq_models_destroy(gq_models_t **self_p);

/* Checks and stores the bytes of *data (the message is moved in; on failure it is left to
 * the caller). An identical model already stored answers with its entry. GQ_EFORMAT (and
 * the loader's reason) for a file that is not a usable model, GQ_ETOOBIG over the cap. */
gq_status gq_models_put(gq_models_t *self, zmq_msg_t *data, const char *name,
                        const gq_model_entry_t **out, char *err, size_t errlen);

/* The entry for a digest; NULL when not stored. */
const gq_model_entry_t *gq_models_get(gq_models_t *self, const char *digest);

/* Counts a fetch by a worker. */
void gq_models_fetched(gq_models_t *self, const char *digest);

size_t gq_models_count(const gq_models_t *self);
uint64_t gq_models_bytes(const gq_models_t *self);

/* Calls fn for every entry (listing, metrics). */
void gq_models_each(gq_models_t *self, void (*fn)(const gq_model_entry_t *e, void *arg), void *arg);

#endif
