/* Helpers the ONNX kernels share: dtype-generic element access, integer inputs and
 * attributes, axes, and the GEMM every matrix kernel runs on (OpenBLAS). */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "onnx_int.h"
#include "onnx_vec.h"
#include "par.h"
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

/* Products below this many multiply-adds run whole on the caller: a split costs a wake-up
 * and each part packs its operand again. */
#define S_GEMM_SPLIT ((int64_t)1 << 20)

/* One part of a split product: rows (or columns) [i * blk, (i + 1) * blk) of C. */
typedef struct {
    bool ta, tb, rows;
    int64_t m, n, k, blk, lda, ldb, ldc;
    float alpha, beta;
    const float *a, *b;
    float *c;
} s_gemm_job_t;

static void s_gemm_part(void *ctx, int64_t i, int tid)
{
    (void)tid;
    const s_gemm_job_t *j = ctx;
    int64_t m = j->m, n = j->n, o = i * j->blk;
    const float *a = j->a, *b = j->b;
    float *c = j->c;
    if (j->rows) { /* rows o.. of op(A) and C */
        m = j->blk < j->m - o ? j->blk : j->m - o;
        a += j->ta ? o : o * j->lda;
        c += o * j->ldc;
    } else { /* columns o.. of op(B) and C */
        n = j->blk < j->n - o ? j->blk : j->n - o;
        b += j->tb ? o * j->ldb : o;
        c += o;
    }
    cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans,
                (blasint)m, (blasint)n, (blasint)j->k, j->alpha, a, (blasint)j->lda, b,
                (blasint)j->ldb, j->beta, c, (blasint)j->ldc);
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
    /* Large products split over gq's pool, in parts of whole 16-row (or 16-column) panels,
     * two per participant; OpenBLAS itself runs on one thread (gq_par_set_threads), so the
     * worker's cores have one scheduler and small products never wake a second one. */
    int P = gq_par_threads();
    s_gemm_job_t j = {.ta = ta,
                      .tb = tb,
                      .m = m,
                      .n = n,
                      .k = k,
                      .lda = lda,
                      .ldb = ldb,
                      .ldc = ldc,
                      .alpha = alpha,
                      .beta = beta,
                      .a = a,
                      .b = b,
                      .c = c};
    if (P > 1 && (double)m * (double)n * (double)k >= (double)S_GEMM_SPLIT &&
        (m >= 32 * P || n >= 32 * P)) {
        j.rows = m >= n;
        int64_t len = j.rows ? m : n, parts = 2 * (int64_t)P;
        j.blk = ((len + parts - 1) / parts + 15) / 16 * 16;
        gq_par_for((len + j.blk - 1) / j.blk, s_gemm_part, &j);
        return;
    }
    j.rows = true, j.blk = m;
    s_gemm_part(&j, 0, 0);
}

/* dst[o] = src[base + sum_d o_d * st[d]] over every element of od (strides in elements,
 * may be 0 or negative); runs along the last dim are memcpy'd when contiguous. */
/* n elements es bytes wide from src (stride sst elements) to contiguous dst: typed loops
 * for the common widths, not a memcpy call per element. */
static void s_gather_run(char *dst, const char *src, int64_t n, int64_t sst, size_t es)
{
    switch (es) {
    case 4:
        for (int64_t j = 0; j < n; j++)
            memcpy(dst + 4 * j, src + 4 * j * sst, 4); /* a single load / store */
        break;
    case 8:
        for (int64_t j = 0; j < n; j++)
            memcpy(dst + 8 * j, src + 8 * j * sst, 8);
        break;
    case 2:
        for (int64_t j = 0; j < n; j++)
            memcpy(dst + 2 * j, src + 2 * j * sst, 2);
        break;
    case 1:
        for (int64_t j = 0; j < n; j++)
            dst[j] = src[j * sst];
        break;
    default:
        for (int64_t j = 0; j < n; j++)
            memcpy(dst + (int64_t)es * j, src + (int64_t)es * j * sst, es);
    }
}

void gq_onnx_strided_copy(const gq_tdesc_t *od, size_t es, const char *src, int64_t base,
                          const int64_t *st, char *dst)
{
    int64_t n = gq_tdesc_numel(od);
    if (n == 0)
        return;
    /* Dims of size 1 dropped, and a dim merged into the one before it where the source is
     * contiguous across them, so runs are as long as they can be. */
    int64_t sh[GQ_MAX_DIMS], sd[GQ_MAX_DIMS], idx[GQ_MAX_DIMS] = {0};
    int k = 0;
    for (int d = 0; d < od->ndim; d++) {
        if (od->shape[d] == 1)
            continue;
        if (k > 0 && sd[k - 1] == st[d] * od->shape[d]) {
            sh[k - 1] *= od->shape[d], sd[k - 1] = st[d];
            continue;
        }
        sh[k] = od->shape[d], sd[k] = st[d], k++;
    }
    if (k == 0) {
        memcpy(dst, src + base * (int64_t)es, es);
        return;
    }
    int last = k - 1;
    int64_t run = sh[last], off = base;
    for (int64_t o = 0; o < n; o += run) {
        if (sd[last] == 1)
            memcpy(dst + o * (int64_t)es, src + off * (int64_t)es, (size_t)run * es);
        else
            s_gather_run(dst + o * (int64_t)es, src + off * (int64_t)es, run, sd[last], es);
        for (int d = last - 1; d >= 0; d--) {
            off += sd[d];
            if (++idx[d] < sh[d])
                break;
            off -= sd[d] * idx[d];
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
        /* keep the others in order: runs then get their buffers in the same order, and
         * a warm plan's layout stays the same from run to run */
        pl->n--;
        memmove(&pl->p[best], &pl->p[best + 1], (size_t)(pl->n - best) * sizeof *pl->p);
        memmove(&pl->cap[best], &pl->cap[best + 1], (size_t)(pl->n - best) * sizeof *pl->cap);
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

/* ---- activations (fused epilogues, RNN gates, the elementwise ops on f32) ---- */

gq_status gq_onnx_act_decode(const gq_onnx_val_t *v, gq_onnx_act_t *f, char *err, size_t errlen)
{
    f->k = GQ_ONNX_ACT_NONE, f->a = f->b = 0;
    if (!v)
        return GQ_OK;
    const float *p = v->data;
    if (v->desc.dtype != GQ_F32 || GQ_ONNX_ELEMS(v) != 3 || !(p[0] >= 0) ||
        p[0] >= (float)GQ_ONNX_ACT_COUNT) {
        gq_errf(err, errlen, "the fused epilogue is not f32[3] {kind, a, b}");
        return GQ_EPARAM;
    }
    f->k = (gq_onnx_actk_t)(int)p[0], f->a = p[1], f->b = p[2];
    return GQ_OK;
}

/* The vector helpers of onnx_vec.h under this file's short names. */
typedef gq_onnx_v8 s_v8;
typedef gq_onnx_v8u s_v8u;

/* tanh as Eigen's rational approximation (at most 3.5e-7 off, absolute and relative). */
static inline __attribute__((always_inline)) void s_tanh8(float *v)
{
    s_v8 n, q;
    gq_onnx_tanh_nq(*(const s_v8u *)v, &n, &q);
    *(s_v8u *)v = n / q;
}

/* 1 / (1 + e^-x), e^x as gq_onnx_exp8. */
static inline __attribute__((always_inline)) void s_sigmoid8(float *v)
{
    s_v8 e = -*(const s_v8u *)v;
    gq_onnx_exp8(&e);
    *(s_v8u *)v = 1.0f / (1.0f + e);
}

/* f8 over v[0..n): whole vectors in place, the tail through a zero-padded copy. */
#define S_MAP8(f8, v, n)                                                                           \
    do {                                                                                           \
        int64_t i_ = 0;                                                                            \
        for (; i_ + 8 <= (n); i_ += 8)                                                             \
            f8((v) + i_);                                                                          \
        if (i_ < (n)) {                                                                            \
            float t_[8] = {0};                                                                     \
            memcpy(t_, (v) + i_, (size_t)((n)-i_) * sizeof *t_);                                   \
            f8(t_);                                                                                \
            memcpy((v) + i_, t_, (size_t)((n)-i_) * sizeof *t_);                                   \
        }                                                                                          \
    } while (0)

GQ_ONNX_SIMD void gq_onnx_act_apply(const gq_onnx_act_t *f, float *v, int64_t n)
{
    float a = f->a, b = f->b;
    switch (f->k) {
    case GQ_ONNX_ACT_NONE:
    case GQ_ONNX_ACT_COUNT:
        break;
    case GQ_ONNX_ACT_RELU:
        for (int64_t i = 0; i < n; i++)
            v[i] = v[i] > 0 ? v[i] : 0.0f;
        break;
    case GQ_ONNX_ACT_LEAKYRELU:
        for (int64_t i = 0; i < n; i++)
            v[i] = v[i] >= 0 ? v[i] : a * v[i];
        break;
    case GQ_ONNX_ACT_CLIP:
        for (int64_t i = 0; i < n; i++)
            v[i] = v[i] < a ? a : v[i] > b ? b : v[i];
        break;
    case GQ_ONNX_ACT_SIGMOID:
        S_MAP8(s_sigmoid8, v, n);
        break;
    case GQ_ONNX_ACT_TANH:
        S_MAP8(s_tanh8, v, n);
        break;
    case GQ_ONNX_ACT_HARDSIGMOID:
        for (int64_t i = 0; i < n; i++) {
            float y = a * v[i] + b;
            v[i] = y < 0 ? 0.0f : y > 1 ? 1.0f : y;
        }
        break;
    }
}

GQ_ONNX_SIMD void gq_onnx_bias_act(const gq_onnx_act_t *f, const float *rowb, const float *colb,
                                   float *y, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        float *yr = y + r * cols, rb = rowb ? rowb[r] : 0.0f;
        if (colb)
            for (int64_t c = 0; c < cols; c++)
                yr[c] += rb + colb[c];
        else if (rowb)
            for (int64_t c = 0; c < cols; c++)
                yr[c] += rb;
        if (f && f->k == GQ_ONNX_ACT_RELU) /* the common case, while the row is in L1 */
            for (int64_t c = 0; c < cols; c++)
                yr[c] = yr[c] > 0 ? yr[c] : 0.0f;
        else if (f)
            gq_onnx_act_apply(f, yr, cols);
    }
}

int gq_onnx_window_dim(int64_t in, int64_t k, int64_t s, int64_t dil, const char *ap,
                       bool ceil_mode, int64_t *pb, int64_t *pe, int64_t *o)
{
    int64_t dk = (k - 1) * dil + 1;
    if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
        *o = (in + s - 1) / s;
        int64_t tot = (*o - 1) * s + dk - in;
        tot = tot < 0 ? 0 : tot;
        *pb = !strcmp(ap, "SAME_UPPER") ? tot / 2 : tot - tot / 2;
        *pe = tot - *pb;
        return 0;
    }
    if (!strcmp(ap, "VALID"))
        *pb = *pe = 0;
    else if (strcmp(ap, "NOTSET"))
        return -1;
    int64_t span = in + *pb + *pe - dk;
    if (span < 0)
        return -2;
    *o = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (*o - 1) * s >= in + *pb)
        (*o)--;
    return 0;
}
