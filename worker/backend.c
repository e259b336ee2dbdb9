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
