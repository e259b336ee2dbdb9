/* fuzz-iterations: 1000000
 *
 * gq_onnx_model_parse on arbitrary bytes (seeds: small models of the ONNX node test suite,
 * tests/fuzz/corpus/onnx): it must never crash, read outside the buffer or leak, every
 * refusal says why, and an accepted model is self-consistent (its initializers' byte sizes
 * match their descriptors). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gq_onnx_limits_t lim;
    gq_onnx_limits_default(&lim);
    lim.max_tensor_bytes = 1 << 20; /* mutated dims must not make the harness allocate GiBs */
    lim.max_total_bytes = 4 << 20;
    char err[256];
    err[0] = '\0';
    gq_status rc = GQ_EINTERNAL;
    gq_onnx_model_t *m = gq_onnx_model_parse(data, size, NULL, &lim, &rc, err, sizeof err);
    if (memchr(err, '\0', sizeof err) == NULL)
        abort();
    if (!m) {
        if (rc == GQ_OK || err[0] == '\0')
            abort();
        return 0;
    }
    if (rc != GQ_OK)
        abort();
    for (int i = 0; i < gq_onnx_model_tensor_count(m); i++) {
        const gq_onnx_tensor_t *t = gq_onnx_model_tensor(m, i);
        size_t nbytes = 0;
        if (gq_tdesc_check(&t->desc, NULL, &nbytes) != GQ_OK || nbytes != t->nbytes ||
            nbytes > lim.max_tensor_bytes)
            abort();
        if (nbytes && ((const volatile uint8_t *)t->data)[nbytes - 1] == 0x5a) /* touch it */
            err[0] = 'x';
    }
    gq_onnx_model_destroy(&m);
    return 0;
}
