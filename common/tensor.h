/* Tensor descriptors (dtype + shape) and views (descriptor + data) used inside gpuq. */
#ifndef GQ_TENSOR_H
#define GQ_TENSOR_H

#include <stdint.h>
#include <stddef.h>
#include "dtype.h"
#include "status.h"

/* Largest single dimension accepted anywhere (wire, files, ops). */
#define GQ_MAX_DIM_SIZE ((int64_t)1 << 40)

typedef struct {
    gq_dtype_t dtype;
    int ndim;
    int64_t shape[GQ_MAX_DIMS];
} gq_tdesc_t;

typedef struct {
    gq_tdesc_t desc;
    void *data;
    size_t nbytes;
} gq_view_t;

/* Natural alignment of one element: its size, or half of it for complex (two scalars).
 * Kernels load elements through typed pointers and need at least this; 0 if invalid. */
size_t gq_dtype_align(int dtype);

/* Sets *desc from dtype and shape; checks ndim, dims and dtype. */
gq_status gq_tdesc_init(gq_tdesc_t *desc, int dtype, const int64_t *shape, int ndim);

/* Validates dtype, ndim and every dim, and computes the element count and byte size with
 * overflow checks. numel/nbytes may be NULL. */
gq_status gq_tdesc_check(const gq_tdesc_t *desc, int64_t *numel, size_t *nbytes);

/* Element count; the caller has checked the descriptor. */
int64_t gq_tdesc_numel(const gq_tdesc_t *desc);

/* Byte size; the caller has checked the descriptor. */
size_t gq_tdesc_nbytes(const gq_tdesc_t *desc);

int gq_tdesc_equal(const gq_tdesc_t *a, const gq_tdesc_t *b);

/* Writes "f32[2,3]" into buf (always NUL-terminated); returns buf. */
char *gq_tdesc_str(const gq_tdesc_t *desc, char *buf, size_t len);

/* Two inputs x and y laid over their NumPy broadcast o, as every backend's binary kernels
 * walk them: dims of size 1 dropped, runs of dims contiguous in every operand merged,
 * element strides (st[0] for x, st[1] for y) 0 where an input is broadcast. ndim 0: one
 * element. */
typedef struct {
    int ndim;
    int64_t shape[GQ_MAX_DIMS];
    int64_t st[2][GQ_MAX_DIMS];
} gq_bcast_t;

void gq_bcast_plan(const gq_tdesc_t *o, const gq_tdesc_t *x, const gq_tdesc_t *y, gq_bcast_t *p);

#endif
