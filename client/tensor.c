#include <stdlib.h>
#include <string.h>
#include "client_int.h"
#include "util.h"

static void s_free_aligned(void *data, void *hint)
{
    (void)hint;
    free(data);
}

GQ_EXPORT gq_tensor_t *gq_tensor_wrap(gq_dtype_t dtype, const int64_t *shape, int ndim, void *data,
                                      size_t nbytes, gq_free_fn *free_fn, void *hint)
{
    gq_tdesc_t d;
    size_t need;
    if ((ndim && !shape) || gq_tdesc_init(&d, dtype, shape, ndim) != GQ_OK ||
        gq_tdesc_check(&d, NULL, &need) != GQ_OK || need != nbytes || (!data && nbytes))
        return NULL;
    gq_tensor_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    atomic_init(&t->refs, 1);
    t->desc = d;
    t->data = data;
    t->nbytes = nbytes;
    t->free_fn = free_fn;
    t->hint = hint;
    return t;
}

GQ_EXPORT gq_tensor_t *gq_tensor_new(gq_dtype_t dtype, const int64_t *shape, int ndim)
{
    gq_tdesc_t d;
    size_t nbytes;
    if ((ndim && !shape) || gq_tdesc_init(&d, dtype, shape, ndim) != GQ_OK ||
        gq_tdesc_check(&d, NULL, &nbytes) != GQ_OK)
        return NULL;
    void *data = gq_aligned_alloc(64, nbytes);
    if (!data)
        return NULL;
    gq_tensor_t *t = gq_tensor_wrap(dtype, shape, ndim, data, nbytes, s_free_aligned, NULL);
    if (!t)
        free(data);
    return t;
}

static void s_close_msg(void *data, void *hint)
{
    (void)data;
    zmq_msg_close(hint);
    free(hint);
}

gq_tensor_t *gq_tensor_from_msg(const gq_tdesc_t *desc, zmq_msg_t *msg)
{
    size_t nbytes = zmq_msg_size(msg);
    void *src = zmq_msg_data(msg);
    size_t align = gq_dtype_align(desc->dtype);
    if (align > 1 && ((uintptr_t)src % align)) {
        gq_tensor_t *t = gq_tensor_new(desc->dtype, desc->shape, desc->ndim);
        if (t && nbytes)
            memcpy(t->data, src, nbytes);
        zmq_msg_close(msg);
        return t;
    }
    zmq_msg_t *held = malloc(sizeof *held);
    if (!held) {
        zmq_msg_close(msg);
        return NULL;
    }
    zmq_msg_init(held);
    zmq_msg_move(held, msg);
    gq_tensor_t *t = gq_tensor_wrap(desc->dtype, desc->shape, desc->ndim, zmq_msg_data(held),
                                    nbytes, s_close_msg, held);
    if (!t)
        s_close_msg(NULL, held);
    return t;
}

GQ_EXPORT gq_tensor_t *gq_tensor_ref(gq_tensor_t *t)
{
    if (t)
        atomic_fetch_add(&t->refs, 1);
    return t;
}

GQ_EXPORT void gq_tensor_destroy(gq_tensor_t **t_p)
{
    if (!t_p || !*t_p)
        return;
    gq_tensor_t *t = *t_p;
    *t_p = NULL;
    if (atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    if (t->free_fn)
        t->free_fn(t->data, t->hint);
    free(t);
}

GQ_EXPORT void *gq_tensor_data(const gq_tensor_t *t)
{
    return t->data;
}

GQ_EXPORT size_t gq_tensor_nbytes(const gq_tensor_t *t)
{
    return t->nbytes;
}

GQ_EXPORT gq_dtype_t gq_tensor_dtype(const gq_tensor_t *t)
{
    return t->desc.dtype;
}

GQ_EXPORT int gq_tensor_ndim(const gq_tensor_t *t)
{
    return t->desc.ndim;
}

GQ_EXPORT const int64_t *gq_tensor_shape(const gq_tensor_t *t)
{
    return t->desc.shape;
}

GQ_EXPORT int64_t gq_tensor_numel(const gq_tensor_t *t)
{
    return gq_tdesc_numel(&t->desc);
}
