/* NumPy .npy files: the format gpuq reads inputs from and writes outputs to.
 *
 * Versions 1.0, 2.0 and 3.0 are read; every gq dtype maps to one numpy descr ('<f4', '|u1',
 * '<c16' ...). Data comes back in native byte order and C order whatever the file held, so
 * callers never see byte order or Fortran layout. Structured, object and string dtypes are
 * refused, as are headers that are not a plain literal dict of exactly the three keys numpy
 * writes: files come from users, and the header parser is fuzzed (tests/fuzz/fuzz_npy.c). */
#ifndef GQ_NPY_H
#define GQ_NPY_H

#include <stddef.h>

#include "status.h"
#include "tensor.h"

/* Longest header accepted (numpy writes under 200 bytes for a gq tensor). A bound on what a
 * reader allocates for a header, not on what the format allows. */
#define GQ_NPY_MAX_HEADER (1u << 20)

/* Parses the npy file held whole in buf[0..len): magic, version, header dict, and that the
 * data after the header is exactly the size the header implies. On GQ_OK: *desc is checked
 * (gq_tdesc_check), the data starts at buf + *data_offset, *fortran is 1 when the data is in
 * Fortran order, *byteswap is 1 when its elements are not in host byte order. Reads nothing
 * outside buf, allocates nothing. On failure err gets the cause without a file name (the
 * caller adds the object it read from). Codes: GQ_EFORMAT (malformed), GQ_EDTYPE (a descr
 * gq has no dtype for), GQ_ESHAPE (over GQ_MAX_DIMS dims), GQ_ETOOBIG (a dim or the total
 * size over the limits), GQ_EINVAL (NULL arguments). */
gq_status gq_npy_parse(const void *buf, size_t len, gq_tdesc_t *desc, size_t *data_offset,
                       int *fortran, int *byteswap, char *err, size_t errlen);

/* Reads path into *data: native byte order, C order, 64-byte aligned, never NULL on GQ_OK
 * (even for 0 bytes); the caller frees it with free(). *nbytes gets its size. bool elements
 * are normalised to 0/1. nbytes may be NULL. Errors name the file ("x.npy: descr '<f3' is
 * not a supported dtype"); GQ_EIO for open/read failures, GQ_ENOMEM, else as gq_npy_parse. */
gq_status gq_npy_read(const char *path, gq_tdesc_t *desc, void **data, size_t *nbytes, char *err,
                      size_t errlen);

/* Writes desc and data (native order, C order, gq_tdesc_nbytes(desc) bytes) to path as a
 * version 1.0 file whose data starts at a multiple of 64 (2.0 when the header is too long
 * for 1.0). The file is written beside path under a temporary name and renamed over it, so
 * a reader sees the old file or the whole new one, never a part. It is not fsync'ed: batch
 * jobs write many files, and surviving a power loss is left to callers that need it. */
gq_status gq_npy_write(const char *path, const gq_tdesc_t *desc, const void *data, char *err,
                       size_t errlen);

/* The numpy descr gq writes for dtype ("<f4"); NULL for an invalid dtype. */
const char *gq_npy_descr(gq_dtype_t dtype);

#endif
