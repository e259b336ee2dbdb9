/* SGEMM on the Vulkan backend's buffers (shaders/sgemm.comp): the multiply under the ONNX
 * accelerator's MatMul and Gemm. */
#include <stdio.h>
#include "util.h"
#include "vk_int.h"

/* Whether rows x cols with row stride ld at element offset off fits nbytes. */
static bool s_fits(size_t off, int rows, int cols, int ld, size_t nbytes)
{
    if (rows == 0 || cols == 0)
        return true;
    if (ld < cols)
        return false;
    uint64_t last = (uint64_t)off + (uint64_t)(rows - 1) * (uint64_t)ld + (uint64_t)cols;
    return last <= nbytes / sizeof(float) && last < INT32_MAX;
}

gq_status gq_vk_sgemm(gq_backend_t *be, const gq_vk_gemm_t *g, const gq_buffer_t *a,
                      const gq_buffer_t *b, gq_buffer_t *c, char *err, size_t errlen)
{
    static const char *op = "sgemm";
    gq_vk_t *vk = gq_vk_of(be);
    if (!vk || !g || !a || !b || !c || a->owner != be || b->owner != be || c->owner != be) {
        gq_errf(err, errlen, "%s: vulkan: not a Vulkan backend and its buffers", op);
        return GQ_EINVAL;
    }
    if (g->m < 0 || g->n < 0 || g->k < 0 ||
        !s_fits(g->a_off, g->ta ? g->k : g->m, g->ta ? g->m : g->k, g->lda, a->nbytes) ||
        !s_fits(g->b_off, g->tb ? g->n : g->k, g->tb ? g->k : g->n, g->ldb, b->nbytes) ||
        !s_fits(g->c_off, g->m, g->n, g->ldc, c->nbytes)) {
        gq_errf(err, errlen,
                "%s: vulkan: m=%d n=%d k=%d (ta %d, tb %d, lda %d, ldb %d, ldc %d) does not fit "
                "buffers of %zu, %zu, %zu bytes",
                op, g->m, g->n, g->k, g->ta, g->tb, g->lda, g->ldb, g->ldc, a->nbytes, b->nbytes,
                c->nbytes);
        return GQ_EINVAL;
    }
    if (!g->m || !g->n)
        return GQ_OK;
    const gq_vk_caps_t *caps = gq_vk_caps(vk);
    uint32_t gx = (uint32_t)((g->n + 63) / 64), gy = (uint32_t)((g->m + 63) / 64);
    if (gx > caps->max_groups || gy > caps->max_groups) {
        gq_errf(err, errlen, "%s: vulkan: %d x %d is past the device's work-group count", op, g->m,
                g->n);
        return GQ_EINVAL;
    }
    /* alpha == 0: A and B are not read (BLAS), so a NaN there does not reach C. */
    struct {
        uint32_t m, n, k, lda, ldb, ldc, aoff, boff, coff;
        float alpha, beta;
    } p = {(uint32_t)g->m,
           (uint32_t)g->n,
           g->alpha == 0.0f ? 0u : (uint32_t)g->k,
           (uint32_t)g->lda,
           (uint32_t)g->ldb,
           (uint32_t)g->ldc,
           (uint32_t)g->a_off,
           (uint32_t)g->b_off,
           (uint32_t)g->c_off,
           g->alpha,
           g->beta};
    int32_t spec[] = {0, g->ta ? 1 : 0, g->tb ? 1 : 0};
    gq_vk_mem_t *bufs[] = {a->handle, b->handle, c->handle};
    gq_vk_stream_t *st;
    gq_status rc = gq_vk_run_begin(vk, &st, op, err, errlen);
    if (rc)
        return rc;
    rc = gq_vk_dispatch(vk, st, "sgemm", spec, 3, bufs, 3, &p, sizeof p, gx, gy, op, err, errlen);
    return gq_vk_run_end(vk, st, rc, true, op, err, errlen);
}
