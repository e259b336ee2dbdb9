#include "tensor.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    const char *alias;
    size_t size;
} s_dtype_info_t;

static const s_dtype_info_t s_dtypes[GQ_DTYPE_COUNT] = {
    [GQ_DTYPE_INVALID] = {"invalid", "invalid", 0},
    [GQ_F32] = {"f32", "float32", 4},
    [GQ_F64] = {"f64", "float64", 8},
    [GQ_F16] = {"f16", "float16", 2},
    [GQ_I8] = {"i8", "int8", 1},
    [GQ_I16] = {"i16", "int16", 2},
    [GQ_I32] = {"i32", "int32", 4},
    [GQ_I64] = {"i64", "int64", 8},
    [GQ_U8] = {"u8", "uint8", 1},
    [GQ_U16] = {"u16", "uint16", 2},
    [GQ_U32] = {"u32", "uint32", 4},
    [GQ_BOOL] = {"bool", "bool", 1},
    [GQ_C64] = {"c64", "complex64", 8},
    [GQ_C128] = {"c128", "complex128", 16},
};

size_t gq_dtype_size(int dtype)
{
    return (dtype > 0 && dtype < GQ_DTYPE_COUNT) ? s_dtypes[dtype].size : 0;
}

const char *gq_dtype_name(int dtype)
{
    return (dtype > 0 && dtype < GQ_DTYPE_COUNT) ? s_dtypes[dtype].name : "invalid";
}

size_t gq_dtype_align(int dtype)
{
    size_t es = gq_dtype_size(dtype);
    return dtype == GQ_C64 || dtype == GQ_C128 ? es / 2 : es;
}

gq_dtype_t gq_dtype_from_name(const char *name)
{
    if (!name)
        return GQ_DTYPE_INVALID;
    for (int i = 1; i < GQ_DTYPE_COUNT; i++)
        if (!strcmp(name, s_dtypes[i].name) || !strcmp(name, s_dtypes[i].alias))
            return (gq_dtype_t)i;
    return GQ_DTYPE_INVALID;
}

gq_status gq_tdesc_check(const gq_tdesc_t *desc, int64_t *numel, size_t *nbytes)
{
    if (!desc || gq_dtype_size(desc->dtype) == 0)
        return GQ_EDTYPE;
    if (desc->ndim < 0 || desc->ndim > GQ_MAX_DIMS)
        return GQ_ESHAPE;
    uint64_t n = 1;
    for (int i = 0; i < desc->ndim; i++) {
        int64_t d = desc->shape[i];
        if (d < 0 || d > GQ_MAX_DIM_SIZE)
            return GQ_ESHAPE;
        if (__builtin_mul_overflow(n, (uint64_t)d, &n) || n > (uint64_t)INT64_MAX)
            return GQ_ETOOBIG;
    }
    uint64_t bytes;
    if (__builtin_mul_overflow(n, (uint64_t)gq_dtype_size(desc->dtype), &bytes) ||
        bytes > (uint64_t)SIZE_MAX)
        return GQ_ETOOBIG;
    if (numel)
        *numel = (int64_t)n;
    if (nbytes)
        *nbytes = (size_t)bytes;
    return GQ_OK;
}

gq_status gq_tdesc_init(gq_tdesc_t *desc, int dtype, const int64_t *shape, int ndim)
{
    memset(desc, 0, sizeof *desc);
    if (ndim < 0 || ndim > GQ_MAX_DIMS)
        return GQ_ESHAPE;
    desc->dtype = (gq_dtype_t)dtype;
    desc->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        desc->shape[i] = shape[i];
    return gq_tdesc_check(desc, NULL, NULL);
}

int64_t gq_tdesc_numel(const gq_tdesc_t *desc)
{
    int64_t n = 1;
    for (int i = 0; i < desc->ndim; i++)
        n *= desc->shape[i];
    return n;
}

size_t gq_tdesc_nbytes(const gq_tdesc_t *desc)
{
    return (size_t)gq_tdesc_numel(desc) * gq_dtype_size(desc->dtype);
}

int gq_tdesc_equal(const gq_tdesc_t *a, const gq_tdesc_t *b)
{
    if (a->dtype != b->dtype || a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return 0;
    return 1;
}

char *gq_tdesc_str(const gq_tdesc_t *desc, char *buf, size_t len)
{
    if (!len)
        return buf;
    size_t off = (size_t)snprintf(buf, len, "%s[", gq_dtype_name(desc->dtype));
    for (int i = 0; i < desc->ndim && i < GQ_MAX_DIMS && off < len; i++)
        off +=
            (size_t)snprintf(buf + off, len - off, i ? ",%lld" : "%lld", (long long)desc->shape[i]);
    if (off < len)
        snprintf(buf + off, len - off, "]");
    return buf;
}

void gq_bcast_plan(const gq_tdesc_t *o, const gq_tdesc_t *x, const gq_tdesc_t *y, gq_bcast_t *p)
{
    const gq_tdesc_t *in[2] = {x, y};
    int64_t cstride[2][GQ_MAX_DIMS];
    for (int k = 0; k < 2; k++) {
        int64_t s = 1;
        for (int d = in[k]->ndim - 1; d >= 0; d--) {
            cstride[k][d] = s;
            s *= in[k]->shape[d];
        }
    }
    p->ndim = 0;
    for (int d = 0; d < o->ndim; d++) {
        int64_t sh = o->shape[d];
        if (sh == 1)
            continue;
        int64_t st[2];
        for (int k = 0; k < 2; k++) {
            int dk = d - (o->ndim - in[k]->ndim);
            st[k] = (dk >= 0 && in[k]->shape[dk] == sh) ? cstride[k][dk] : 0;
        }
        int last = p->ndim - 1;
        if (last >= 0 && p->st[0][last] == st[0] * sh && p->st[1][last] == st[1] * sh) {
            p->shape[last] *= sh;
            p->st[0][last] = st[0];
            p->st[1][last] = st[1];
        } else {
            p->shape[p->ndim] = sh;
            p->st[0][p->ndim] = st[0];
            p->st[1][p->ndim] = st[1];
            p->ndim++;
        }
    }
}
