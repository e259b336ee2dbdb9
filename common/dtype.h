/* Element types of gpuq tensors. Part of the public API (installed beside gpuq.h). */
#ifndef GQ_DTYPE_H
#define GQ_DTYPE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Values are wire values: never renumber. */
typedef enum {
    GQ_DTYPE_INVALID = 0,
    GQ_F32 = 1,
    GQ_F64 = 2,
    GQ_F16 = 3,
    GQ_I8 = 4,
    GQ_I16 = 5,
    GQ_I32 = 6,
    GQ_I64 = 7,
    GQ_U8 = 8,
    GQ_U16 = 9,
    GQ_U32 = 10,
    GQ_BOOL = 11,
    GQ_C64 = 12, /* complex64: interleaved f32 re, im */
    GQ_C128 = 13,
    GQ_DTYPE_COUNT
} gq_dtype_t;

#define GQ_MAX_DIMS 8

/* Bytes per element; 0 for an invalid dtype. */
size_t gq_dtype_size(int dtype);

/* Short name ("f32"); "invalid" for an invalid dtype. */
const char *gq_dtype_name(int dtype);

/* Parses a short name ("f32", also "float32"); GQ_DTYPE_INVALID if unknown. */
gq_dtype_t gq_dtype_from_name(const char *name);

#ifdef __cplusplus
}
#endif
#endif
