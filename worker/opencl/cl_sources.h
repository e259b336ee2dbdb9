/* OpenCL C sources of the kernels/ directory (every .cl file), embedded at build time by
 * kernels/embed.cmake into <build>/kernels/gq_cl_sources.c: the worker never reads
 * kernel files at run time. */
#ifndef GQ_CL_SOURCES_H
#define GQ_CL_SOURCES_H

#include <stddef.h>

typedef struct {
    const char *name; /* file name, "tensor.cl"; NULL ends the table */
    const char *text; /* NUL-terminated */
    size_t len;       /* bytes, without the NUL */
} gq_cl_source_t;

/* In file-name order; gq_cl_nsources entries, then a NULL entry. */
extern const gq_cl_source_t gq_cl_sources[];
extern const int gq_cl_nsources;

#endif
