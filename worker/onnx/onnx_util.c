/* Helpers the ONNX kernels share: dtype-generic element access, integer inputs and
 * attributes, axes, and the GEMM every matrix kernel runs on (OpenBLAS). */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "onnx_int.h"
#include "util.h"

double gq_onnx_getd(const void *p, gq_dtype_t dt, int64_t i)
{
    switch (dt) {
    case GQ_F32:
        return ((const float *)p)[i];
    case GQ_F64:
        return ((const double *)p)[i];
    case GQ_F16:
        return gq_f16_to_f64(((const uint16_t *)p)[i]);
    default:
        return (double)gq_onnx_geti(p, dt, i);
    }
}

int64_t gq_onnx_geti(const void *p, gq_dtype_t dt, int64_t i)
{
    switch (dt) {
    case GQ_I8:
        return ((const int8_t *)p)[i];
    case GQ_I16:
        return ((const int16_t *)p)[i];
    case GQ_I32:
        return ((const int32_t *)p)[i];
    case GQ_I64:
        return ((const int64_t *)p)[i];
    case GQ_U8:
    case GQ_BOOL:
        return ((const uint8_t *)p)[i];
    case GQ_U16:
        return ((const uint16_t *)p)[i];
    case GQ_U32:
        return ((const uint32_t *)p)[i];
    case GQ_F32:
    case GQ_F64:
    case GQ_F16: {
        double v = gq_onnx_getd(p, dt, i);
        return isnan(v) ? 0 : v >= 0x1p63 ? INT64_MAX : v < -0x1p63 ? INT64_MIN : (int64_t)v;
    }
    default:
        return 0;
    }
}

void gq_onnx_setd(void *p, gq_dtype_t dt, int64_t i, double v)
{
    /* Out-of-range float -> int is undefined in C: go through a clamped int64 and let the
     * narrowing wrap (implementation-defined, two's complement on every target gq has). */
    int64_t w = isnan(v) ? 0 : v >= 0x1p63 ? INT64_MAX : v < -0x1p63 ? INT64_MIN : (int64_t)v;
    switch (dt) {
    case GQ_F32:
        ((float *)p)[i] = (float)v;
        break;
    case GQ_F64:
        ((double *)p)[i] = v;
        break;
    case GQ_F16:
        ((uint16_t *)p)[i] = gq_f16_from_f64(v);
        break;
    case GQ_I8:
        ((int8_t *)p)[i] = (int8_t)w;
        break;
    case GQ_I16:
        ((int16_t *)p)[i] = (int16_t)w;
        break;
    case GQ_I32:
        ((int32_t *)p)[i] = (int32_t)w;
        break;
    case GQ_I64:
        ((int64_t *)p)[i] = w;
        break;
    case GQ_U8:
        ((uint8_t *)p)[i] = (uint8_t)w;
        break;
    case GQ_U16:
        ((uint16_t *)p)[i] = (uint16_t)w;
        break;
    case GQ_U32:
        ((uint32_t *)p)[i] = (uint32_t)w;
        break;
    case GQ_BOOL:
        ((uint8_t *)p)[i] = v != 0;
        break;
    default:
        break;
    }
}

void gq_onnx_seti(void *p, gq_dtype_t dt, int64_t i, int64_t v)
{
    switch (dt) {
    case GQ_I8:
        ((int8_t *)p)[i] = (int8_t)v;
        break;
    case GQ_I16:
        ((int16_t *)p)[i] = (int16_t)v;
        break;
    case GQ_I32:
        ((int32_t *)p)[i] = (int32_t)v;
        break;
    case GQ_I64:
        ((int64_t *)p)[i] = v;
        break;
    case GQ_U8:
        ((uint8_t *)p)[i] = (uint8_t)v;
        break;
    case GQ_U16:
        ((uint16_t *)p)[i] = (uint16_t)v;
        break;
    case GQ_U32:
        ((uint32_t *)p)[i] = (uint32_t)v;
        break;
    case GQ_BOOL:
        ((uint8_t *)p)[i] = v != 0;
        break;
    default:
        gq_onnx_setd(p, dt, i, (double)v);
        break;
    }
}

bool gq_onnx_dtype_real(gq_dtype_t dt)
{
    return dt >= GQ_F32 && dt <= GQ_BOOL;
}

bool gq_onnx_dtype_int(gq_dtype_t dt)
{
    return dt >= GQ_I8 && dt <= GQ_U32;
}

gq_status gq_onnx_need(gq_onnx_val_t *const *in, int nin, int k, char *err, size_t errlen)
{
    for (int i = 0; i < k; i++)
        if (i >= nin || !in[i]) {
            gq_errf(err, errlen, "input %d is required", i);
            return GQ_ESHAPE;
        }
    return GQ_OK;
}

gq_status gq_onnx_ints(const gq_onnx_val_t *v, const char *what, int64_t *buf, int max, int *n,
                       char *err, size_t errlen)
{
    gq_dtype_t dt = v->desc.dtype;
    if ((dt != GQ_I64 && dt != GQ_I32) || v->desc.ndim > 1) {
        char b[96];
        gq_errf(err, errlen, "%s is %s, want an i32 or i64 scalar or vector", what,
                gq_tdesc_str(&v->desc, b, sizeof b));
        return GQ_EDTYPE;
    }
    int64_t k = gq_tdesc_numel(&v->desc);
    if (k > max) {
        gq_errf(err, errlen, "%s has %lld values, over %d", what, (long long)k, max);
        return GQ_EPARAM;
    }
    for (int64_t i = 0; i < k; i++)
        buf[i] = gq_onnx_geti(v->data, dt, i);
    *n = (int)k;
    return GQ_OK;
}

gq_status gq_onnx_attr_ints(const Onnx__NodeProto *node, const char *name, int64_t *buf, int max,
                            int *n, char *err, size_t errlen)
{
    const Onnx__AttributeProto *a = gq_onnx_attr(node, name);
    *n = -1;
    if (!a)
        return GQ_OK;
    if (a->n_ints > (size_t)max) {
        gq_errf(err, errlen, "attribute %s has %zu values, over %d", name, a->n_ints, max);
        return GQ_EPARAM;
    }
    GQ_ONNX_COPY(buf, a->ints, a->n_ints * sizeof *buf);
    *n = (int)a->n_ints;
    return GQ_OK;
}

gq_status gq_onnx_attr_str(const Onnx__NodeProto *node, const char *name, const char *def,
                           char *buf, size_t len, char *err, size_t errlen)
{
    const Onnx__AttributeProto *a = gq_onnx_attr(node, name);
    size_t n = a ? a->s.len : strlen(def);
    if (n + 1 > len) {
        gq_errf(err, errlen, "attribute %s is %zu bytes long, over %zu", name, n, len - 1);
        return GQ_EPARAM;
    }
    GQ_ONNX_COPY(buf, a ? (const char *)a->s.data : def, n);
    buf[n] = '\0';
    return GQ_OK;
}

gq_status gq_onnx_axis(int64_t axis, int rank, int64_t *out, char *err, size_t errlen)
{
    if (axis < -rank || axis >= rank) {
        gq_errf(err, errlen, "axis %lld is out of range for rank %d", (long long)axis, rank);
        return GQ_EPARAM;
    }
    *out = axis < 0 ? axis + rank : axis;
    return GQ_OK;
}

gq_status gq_onnx_out(gq_onnx_val_t *out, const gq_tdesc_t *d, char *err, size_t errlen)
{
    out->desc = *d;
    return gq_onnx_val_alloc(out, err, errlen);
}

/* The same product in loops: for k = 0 (BLAS would leave C alone only when beta = 1) and
 * for dims past BLAS's 32-bit ints. */
static void s_sgemm_loops(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                          const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                          float *c, int64_t ldc)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0;
            for (int64_t p = 0; p < k; p++)
                acc += (double)(ta ? a[p * lda + i] : a[i * lda + p]) *
                       (tb ? b[j * ldb + p] : b[p * ldb + j]);
            float *cij = &c[i * ldc + j];
            *cij = (float)(alpha * acc + (beta == 0 ? 0 : beta * *cij));
        }
}

void gq_onnx_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                   int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0 || m > INT32_MAX || n > INT32_MAX || k > INT32_MAX || lda > INT32_MAX ||
        ldb > INT32_MAX || ldc > INT32_MAX) {
        s_sgemm_loops(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    if (m == 1) { /* a row vector times a matrix: GEMV, without GEMM's packing overhead */
        if (beta == 0)
            memset(c, 0, (size_t)n * sizeof *c);
        cblas_sgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, (blasint)(tb ? n : k),
                    (blasint)(tb ? k : n), alpha, b, (blasint)ldb, a, (blasint)(ta ? lda : 1), beta,
                    c, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (blasint)m, (blasint)n, (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb, beta,
                c, (blasint)ldc);
}

/* dst[o] = src[base + sum_d o_d * st[d]] over every element of od (strides in elements,
 * may be 0 or negative); runs along the last dim are memcpy'd when contiguous. */
void gq_onnx_strided_copy(const gq_tdesc_t *od, size_t es, const char *src, int64_t base,
                          const int64_t *st, char *dst)
{
    int64_t n = gq_tdesc_numel(od);
    if (n == 0)
        return;
    if (od->ndim == 0) {
        memcpy(dst, src + base * (int64_t)es, es);
        return;
    }
    int last = od->ndim - 1;
    int64_t run = od->shape[last], idx[GQ_MAX_DIMS] = {0}, off = base;
    for (int64_t o = 0; o < n; o += run) {
        if (st[last] == 1)
            memcpy(dst + o * (int64_t)es, src + off * (int64_t)es, (size_t)run * es);
        else
            for (int64_t j = 0; j < run; j++)
                memcpy(dst + (o + j) * (int64_t)es, src + (off + j * st[last]) * (int64_t)es, es);
        for (int d = last - 1; d >= 0; d--) {
            off += st[d];
            if (++idx[d] < od->shape[d])
                break;
            off -= st[d] * idx[d];
            idx[d] = 0;
        }
    }
}

bool gq_onnx_size3(int64_t a, int64_t b, size_t es, size_t *bytes)
{
    uint64_t ab, r;
    if (a < 0 || b < 0 || __builtin_mul_overflow((uint64_t)a, (uint64_t)b, &ab) ||
        __builtin_mul_overflow(ab, (uint64_t)es, &r) || r > SIZE_MAX - 64)
        return false;
    *bytes = (size_t)r;
    return true;
}

/* ---- the buffer pool ---- */

/* The pool of the plan running on this thread (a plan runs one run at a time). */
static _Thread_local gq_onnx_pool_t *s_cur_pool;

gq_onnx_pool_t *gq_onnx_pool_enter(gq_onnx_pool_t *pl)
{
    gq_onnx_pool_t *prev = s_cur_pool;
    s_cur_pool = pl;
    return prev;
}

void *gq_onnx_scratch(size_t nbytes, size_t *cap)
{
    gq_onnx_pool_t *pl = s_cur_pool;
    size_t want = nbytes < 64 ? 64 : nbytes;
    int best = -1;
    for (int i = 0; pl && i < pl->n; i++)
        if (pl->cap[i] >= want && pl->cap[i] / 2 <= want &&
            (best < 0 || pl->cap[i] < pl->cap[best]))
            best = i;
    if (best >= 0) {
        void *p = pl->p[best];
        *cap = pl->cap[best];
        pl->n--;
        pl->p[best] = pl->p[pl->n], pl->cap[best] = pl->cap[pl->n];
        return p;
    }
    *cap = want;
    return gq_aligned_alloc(64, want);
}

void gq_onnx_scratch_free(void *p, size_t cap)
{
    gq_onnx_pool_t *pl = s_cur_pool;
    if (!p)
        return;
    if (!pl || !cap) {
        free(p);
        return;
    }
    if (pl->n == pl->max) {
        int m = pl->max ? 2 * pl->max : 16;
        void **np = realloc(pl->p, (size_t)m * sizeof *np);
        if (np)
            pl->p = np;
        size_t *nc = np ? realloc(pl->cap, (size_t)m * sizeof *nc) : NULL;
        if (nc)
            pl->cap = nc, pl->max = m;
        if (!np || !nc) { /* no room to keep it: just free it */
            free(p);
            return;
        }
    }
    pl->p[pl->n] = p, pl->cap[pl->n] = cap;
    pl->n++;
}

void gq_onnx_pool_clear(gq_onnx_pool_t *pl)
{
    for (int i = 0; i < pl->n; i++)
        free(pl->p[i]);
    free(pl->p);
    free(pl->cap);
    memset(pl, 0, sizeof *pl);
}
