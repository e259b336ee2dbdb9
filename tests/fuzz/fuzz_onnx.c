/* fuzz-iterations: 1000000
 *
 * gq_onnx_model_parse on arbitrary bytes (seeds: small models of the ONNX node test suite,
 * tests/fuzz/corpus/onnx): it must never crash, read outside the buffer or leak, every
 * refusal says why, and an accepted model is self-consistent (its initializers' byte sizes
 * match their descriptors). With GQ_FUZZ_PLAN (the ctest replay, linked with the executor)
 * an accepted model is also planned — shape inference, constant folding under small caps,
 * fusion — and its memory computed and plan printed: a refusal must say why, and never be
 * GQ_EINTERNAL (shape inference disagreeing with a kernel it folded). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_model.h"
#ifdef GQ_FUZZ_PLAN
#include "onnx_exec.h"

static void s_plan(const gq_onnx_model_t *m)
{
    static FILE *sink;
    gq_onnx_plan_opts_t o = {.fold_max_bytes = 1 << 20, .fold_total_bytes = 4 << 20};
    char err[256];
    err[0] = '\0';
    gq_status rc = GQ_EINTERNAL;
    gq_onnx_plan_t *p = gq_onnx_plan_new_opts(m, &o, &rc, err, sizeof err);
    if (memchr(err, '\0', sizeof err) == NULL || rc == GQ_EINTERNAL)
        abort();
    if (!p) {
        if (rc == GQ_OK || err[0] == '\0')
            abort();
        return;
    }
    gq_onnx_mem_t mem;
    for (int64_t batch = 1; batch <= 32; batch *= 32)
        if (gq_onnx_plan_memory(p, batch, &mem, err, sizeof err) == GQ_EINTERNAL)
            abort();
    if (!sink)
        sink = fopen("/dev/null", "w");
    if (sink)
        gq_onnx_plan_print(p, sink);
    gq_onnx_plan_destroy(&p);
}
#endif

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
#ifdef GQ_FUZZ_PLAN
    s_plan(m);
#endif
    gq_onnx_model_destroy(&m);
    return 0;
}
