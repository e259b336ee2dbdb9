#include <stdlib.h>
#include "backend.h"

/* Generic for every backend: each constructor callocs the gq_backend_t and its destroy op
 * frees only what impl owns. */
void gq_backend_destroy(gq_backend_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gq_backend_t *be = *self_p;
    if (be->ops && be->ops->destroy)
        be->ops->destroy(be);
    free(be);
    *self_p = NULL;
}

#ifndef GQ_HAVE_OPENCL
#include "util.h"

gq_backend_t *gq_backend_opencl_new(const gq_backend_config_t *cfg, char *err, size_t errlen)
{
    (void)cfg;
    gq_errf(err, errlen, "opencl: not built (no OpenCL SDK found at build time)");
    return NULL;
}
#endif
