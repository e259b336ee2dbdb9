/* CPU kernels of the tensor.* ops. Semantics are documented in common/ops_tensor.c. */
#include "cpu_ops.h"
#include "half.h"
#include "util.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Columns reduced at once when the reduced axis is not the last: one row of the tile is
 * contiguous in memory, and the accumulators stay on the stack. */
#define S_TILE 256

/* Values per chunk when casting through double. */
#define S_CHUNK 256

/* ---- broadcasting ---- */

/* z[i] = x[i*sx] op y[i*sy] for i < n; sx, sy are 0 or 1 in practice. */
typedef void (*s_row_fn)(const void *x, int64_t sx, const void *y, int64_t sy, void *z, int64_t n);

#define S_ROW_DEF(FN, T, EXPR)                                                                     \
    static void FN(const void *xv, int64_t sx, const void *yv, int64_t sy, void *zv, int64_t n)    \
    {                                                                                              \
        const T *x = xv;                                                                           \
        const T *y = yv;                                                                           \
        T *z = zv;                                                                                 \
        if (sx == 1 && sy == 1) {                                                                  \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T a = x[i], b = y[i];                                                              \
                z[i] = EXPR;                                                                       \
            }                                                                                      \
        } else if (sx == 0 && sy == 1) {                                                           \
            const T a = x[0];                                                                      \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T b = y[i];                                                                        \
                z[i] = EXPR;                                                                       \
            }                                                                                      \
        } else if (sx == 1 && sy == 0) {                                                           \
            const T b = y[0];                                                                      \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T a = x[i];                                                                        \
                z[i] = EXPR;                                                                       \
            }                                                                                      \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T a = x[i * sx], b = y[i * sy];                                                    \
                z[i] = EXPR;                                                                       \
            }                                                                                      \
        }                                                                                          \
    }

/* i32 wraps like NumPy: unsigned arithmetic is defined modulo 2^32, and GCC and Clang
 * define the conversion back to int32_t as modular. */
S_ROW_DEF(s_add_f32, float, a + b)
S_ROW_DEF(s_add_f64, double, a + b)
S_ROW_DEF(s_add_i32, int32_t, (int32_t)((uint32_t)a + (uint32_t)b))
S_ROW_DEF(s_mul_f32, float, (a) * (b))
S_ROW_DEF(s_mul_f64, double, (a) * (b))
S_ROW_DEF(s_mul_i32, int32_t, (int32_t)(((uint32_t)a) * ((uint32_t)b)))

static const s_row_fn s_add_rows[GQ_DTYPE_COUNT] = {
    [GQ_F32] = s_add_f32, [GQ_F64] = s_add_f64, [GQ_I32] = s_add_i32};
static const s_row_fn s_mul_rows[GQ_DTYPE_COUNT] = {
    [GQ_F32] = s_mul_f32, [GQ_F64] = s_mul_f64, [GQ_I32] = s_mul_i32};

static gq_status s_binary(const s_row_fn rows[GQ_DTYPE_COUNT], const gq_args_t *a,
                          const gq_view_t *in, gq_view_t *out, char *err, size_t errlen)
{
    const gq_tdesc_t *od = &out[0].desc;
    s_row_fn row = rows[od->dtype];
    if (!row) {
        gq_errf(err, errlen, "%s: cpu: no kernel for dtype %s", a->op->name,
                gq_dtype_name(od->dtype));
        return GQ_EDTYPE;
    }
    int64_t numel = gq_tdesc_numel(od);
    if (numel == 0)
        return GQ_OK;
    size_t es = gq_dtype_size(od->dtype);
    const char *x = in[0].data, *y = in[1].data;
    char *z = out[0].data;
    if (gq_tdesc_equal(&in[0].desc, &in[1].desc)) {
        row(x, 1, y, 1, z, numel);
        return GQ_OK;
    }
    const gq_tdesc_t *const ins[2] = {&in[0].desc, &in[1].desc};
    gq_bcast_t p;
    gq_bcast_plan(od, ins[0], ins[1], &p);
    if (p.ndim == 0) {
        row(x, 0, y, 0, z, 1);
        return GQ_OK;
    }
    int last = p.ndim - 1;
    int64_t len = p.shape[last], idx[GQ_MAX_DIMS] = {0}, ox = 0, oy = 0;
    for (;;) {
        row(x + (size_t)ox * es, p.st[0][last], y + (size_t)oy * es, p.st[1][last], z, len);
        z += (size_t)len * es;
        int d = last - 1;
        for (; d >= 0; d--) {
            ox += p.st[0][d];
            oy += p.st[1][d];
            if (++idx[d] < p.shape[d])
                break;
            ox -= p.st[0][d] * p.shape[d];
            oy -= p.st[1][d] * p.shape[d];
            idx[d] = 0;
        }
        if (d < 0)
            return GQ_OK;
    }
}

static gq_status s_k_add(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out, int nout,
                         char *err, size_t errlen)
{
    (void)nin, (void)nout;
    return s_binary(s_add_rows, a, in, out, err, errlen);
}

static gq_status s_k_mul(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out, int nout,
                         char *err, size_t errlen)
{
    (void)nin, (void)nout;
    return s_binary(s_mul_rows, a, in, out, err, errlen);
}

/* ---- unary elementwise ---- */

static gq_status s_k_scale(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out,
                           int nout, char *err, size_t errlen)
{
    (void)nin, (void)nout;
    double f = gq_args_float(a, "factor"), off = gq_args_float(a, "offset");
    int64_t n = gq_tdesc_numel(&in[0].desc);
    if (in[0].desc.dtype == GQ_F32) {
        const float *x = in[0].data;
        float *y = out[0].data;
        for (int64_t i = 0; i < n; i++)
            y[i] = (float)((double)x[i] * f + off);
    } else if (in[0].desc.dtype == GQ_F64) {
        const double *x = in[0].data;
        double *y = out[0].data;
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] * f + off;
    } else {
        gq_errf(err, errlen, "%s: cpu: no kernel for dtype %s", a->op->name,
                gq_dtype_name(in[0].desc.dtype));
        return GQ_EDTYPE;
    }
    return GQ_OK;
}

/* Comparisons with NaN are false, so a NaN falls through both tests unchanged. */
#define S_CLAMP(x, lo, hi) ((x) < (lo) ? (lo) : (x) > (hi) ? (hi) : (x))

static gq_status s_k_clamp(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out,
                           int nout, char *err, size_t errlen)
{
    (void)nin, (void)nout;
    double lo = gq_args_float(a, "lo"), hi = gq_args_float(a, "hi");
    int64_t n = gq_tdesc_numel(&in[0].desc);
    if (in[0].desc.dtype == GQ_F32) {
        /* Bounds beyond the f32 range round to +-inf, which clamps nothing: the same
         * answer as comparing in double. */
        const float flo = (float)lo, fhi = (float)hi;
        const float *x = in[0].data;
        float *y = out[0].data;
        for (int64_t i = 0; i < n; i++)
            y[i] = S_CLAMP(x[i], flo, fhi);
    } else if (in[0].desc.dtype == GQ_F64) {
        const double *x = in[0].data;
        double *y = out[0].data;
        for (int64_t i = 0; i < n; i++)
            y[i] = S_CLAMP(x[i], lo, hi);
    } else {
        gq_errf(err, errlen, "%s: cpu: no kernel for dtype %s", a->op->name,
                gq_dtype_name(in[0].desc.dtype));
        return GQ_EDTYPE;
    }
    return GQ_OK;
}

/* ---- reductions ---- */

/* The input seen as [outer, n, inner] around the reduced axis; the output is [outer,
 * inner] whatever keepdims says. */
static int s_axis_split(const gq_args_t *a, const gq_tdesc_t *d, int64_t *outer, int64_t *n,
                        int64_t *inner)
{
    int64_t axis = gq_args_int(a, "axis");
    if (axis < 0)
        axis += d->ndim;
    if (axis < 0 || axis >= d->ndim)
        return -1;
    *outer = *inner = 1;
    for (int i = 0; i < axis; i++)
        *outer *= d->shape[i];
    for (int i = (int)axis + 1; i < d->ndim; i++)
        *inner *= d->shape[i];
    *n = d->shape[axis];
    return 0;
}

typedef void (*s_reduce_fn)(const void *x, void *y, int64_t outer, int64_t n, int64_t inner);

/* One reduction over [outer, n, inner]. With inner == 1 each output is a contiguous run,
 * summed in 4 independent lanes (faster, and no less accurate); otherwise S_TILE columns
 * are reduced together, row by row, so every load is contiguous. */
#define S_REDUCE_DEF(FN, TIN, TOUT, ACC, INIT, ADD, MERGE, FIN)                                    \
    static void FN(const void *xv, void *yv, int64_t outer, int64_t n, int64_t inner)              \
    {                                                                                              \
        const TIN *x = xv;                                                                         \
        TOUT *y = yv;                                                                              \
        for (int64_t o = 0; o < outer; o++) {                                                      \
            const TIN *xo = x + o * n * inner;                                                     \
            TOUT *yo = y + o * inner;                                                              \
            if (inner == 1) {                                                                      \
                ACC l[4];                                                                          \
                for (int j = 0; j < 4; j++)                                                        \
                    INIT(l[j]);                                                                    \
                int64_t k = 0;                                                                     \
                for (; k + 4 <= n; k += 4)                                                         \
                    for (int j = 0; j < 4; j++)                                                    \
                        ADD(l[j], xo[k + j]);                                                      \
                for (; k < n; k++)                                                                 \
                    ADD(l[0], xo[k]);                                                              \
                MERGE(l[0], l[1]);                                                                 \
                MERGE(l[2], l[3]);                                                                 \
                MERGE(l[0], l[2]);                                                                 \
                yo[0] = FIN(l[0], n);                                                              \
                continue;                                                                          \
            }                                                                                      \
            for (int64_t j0 = 0; j0 < inner; j0 += S_TILE) {                                       \
                int64_t w = inner - j0 < S_TILE ? inner - j0 : S_TILE;                             \
                ACC acc[S_TILE];                                                                   \
                for (int64_t j = 0; j < w; j++)                                                    \
                    INIT(acc[j]);                                                                  \
                for (int64_t k = 0; k < n; k++) {                                                  \
                    const TIN *row = xo + k * inner + j0;                                          \
                    for (int64_t j = 0; j < w; j++)                                                \
                        ADD(acc[j], row[j]);                                                       \
                }                                                                                  \
                for (int64_t j = 0; j < w; j++)                                                    \
                    yo[j0 + j] = FIN(acc[j], n);                                                   \
            }                                                                                      \
        }                                                                                          \
    }

/* Neumaier's compensated sum for f64, whose own precision leaves no headroom. */
typedef struct {
    double s, c;
} s_neu_t;

static inline void s_neu_add(s_neu_t *a, double v)
{
    double t = a->s + v;
    if (fabs(a->s) >= fabs(v))
        a->c += (a->s - t) + v;
    else
        a->c += (v - t) + a->s;
    a->s = t;
}

/* Infinities make the compensation NaN (inf - inf); the plain sum is then the answer. */
static inline double s_neu_fin(s_neu_t a)
{
    return isfinite(a.s) ? a.s + a.c : a.s;
}

static inline double s_mean_of(double sum, int64_t n)
{
    return n ? sum / (double)n : NAN;
}

#define S_D_INIT(a) ((a) = 0.0)
#define S_D_MERGE(a, b) ((a) += (b))
#define S_F32_ADD(a, v) ((a) += (double)(v))
#define S_F16_ADD(a, v) ((a) += (double)gq_f16_to_f32(v))
#define S_NEU_INIT(a) ((a).s = 0.0, (a).c = 0.0)
#define S_NEU_ADD(a, v) s_neu_add(&(a), (v))
/* Compensations add plainly: one is NaN only when its sum is infinite, and s_neu_fin
 * then ignores it. */
#define S_NEU_MERGE(a, b) (s_neu_add(&(a), (b).s), (a).c += (b).c)
#define S_U_INIT(a) ((a) = 0)
#define S_U_ADD(a, v) ((a) += (uint64_t)(int64_t)(v))
#define S_U_MERGE(a, b) ((a) += (b))
#define S_I_MEAN_ADD(a, v) ((a) += (double)(v))

#define S_FIN_F32(a, n) ((float)(a))
#define S_FIN_F16(a, n) gq_f16_from_f64(a)
#define S_FIN_F64(a, n) s_neu_fin(a)
#define S_FIN_I64(a, n) ((int64_t)(a))
#define S_FIN_MEAN_F32(a, n) ((float)s_mean_of((a), (n)))
#define S_FIN_MEAN_F16(a, n) gq_f16_from_f64(s_mean_of((a), (n)))
#define S_FIN_MEAN_F64(a, n) s_mean_of(s_neu_fin(a), (n))
#define S_FIN_MEAN_I(a, n) s_mean_of((a), (n))

S_REDUCE_DEF(s_sum_f32, float, float, double, S_D_INIT, S_F32_ADD, S_D_MERGE, S_FIN_F32)
S_REDUCE_DEF(s_sum_f16, uint16_t, uint16_t, double, S_D_INIT, S_F16_ADD, S_D_MERGE, S_FIN_F16)
S_REDUCE_DEF(s_sum_f64, double, double, s_neu_t, S_NEU_INIT, S_NEU_ADD, S_NEU_MERGE, S_FIN_F64)
S_REDUCE_DEF(s_sum_i16, int16_t, int64_t, uint64_t, S_U_INIT, S_U_ADD, S_U_MERGE, S_FIN_I64)
S_REDUCE_DEF(s_sum_i32, int32_t, int64_t, uint64_t, S_U_INIT, S_U_ADD, S_U_MERGE, S_FIN_I64)
S_REDUCE_DEF(s_sum_u8, uint8_t, int64_t, uint64_t, S_U_INIT, S_U_ADD, S_U_MERGE, S_FIN_I64)

S_REDUCE_DEF(s_mean_f32, float, float, double, S_D_INIT, S_F32_ADD, S_D_MERGE, S_FIN_MEAN_F32)
S_REDUCE_DEF(s_mean_f16, uint16_t, uint16_t, double, S_D_INIT, S_F16_ADD, S_D_MERGE, S_FIN_MEAN_F16)
S_REDUCE_DEF(s_mean_f64, double, double, s_neu_t, S_NEU_INIT, S_NEU_ADD, S_NEU_MERGE,
             S_FIN_MEAN_F64)
S_REDUCE_DEF(s_mean_i16, int16_t, double, double, S_D_INIT, S_I_MEAN_ADD, S_D_MERGE, S_FIN_MEAN_I)
S_REDUCE_DEF(s_mean_i32, int32_t, double, double, S_D_INIT, S_I_MEAN_ADD, S_D_MERGE, S_FIN_MEAN_I)
S_REDUCE_DEF(s_mean_u8, uint8_t, double, double, S_D_INIT, S_I_MEAN_ADD, S_D_MERGE, S_FIN_MEAN_I)

/* NaN wins like numpy.max: once the accumulator is NaN no comparison replaces it. */
#define S_FMAX_INIT(a) ((a) = -INFINITY)
#define S_FMAX_ADD(a, v) ((a) = ((v) > (a) || isnan(v)) ? (v) : (a))
#define S_F16MAX_ADD(a, v)                                                                         \
    do {                                                                                           \
        float f16v_ = gq_f16_to_f32(v);                                                            \
        S_FMAX_ADD(a, f16v_);                                                                      \
    } while (0)
#define S_IMAX_ADD(a, v) ((a) = (v) > (a) ? (v) : (a))
#define S_I16MAX_INIT(a) ((a) = INT16_MIN)
#define S_I32MAX_INIT(a) ((a) = INT32_MIN)
#define S_U8MAX_INIT(a) ((a) = 0)
#define S_FIN_SAME(a, n) (a)
#define S_FIN_F16MAX(a, n) gq_f16_from_f32(a)

S_REDUCE_DEF(s_max_f32, float, float, float, S_FMAX_INIT, S_FMAX_ADD, S_FMAX_ADD, S_FIN_SAME)
S_REDUCE_DEF(s_max_f64, double, double, double, S_FMAX_INIT, S_FMAX_ADD, S_FMAX_ADD, S_FIN_SAME)
S_REDUCE_DEF(s_max_f16, uint16_t, uint16_t, float, S_FMAX_INIT, S_F16MAX_ADD, S_FMAX_ADD,
             S_FIN_F16MAX)
S_REDUCE_DEF(s_max_i16, int16_t, int16_t, int16_t, S_I16MAX_INIT, S_IMAX_ADD, S_IMAX_ADD,
             S_FIN_SAME)
S_REDUCE_DEF(s_max_i32, int32_t, int32_t, int32_t, S_I32MAX_INIT, S_IMAX_ADD, S_IMAX_ADD,
             S_FIN_SAME)
S_REDUCE_DEF(s_max_u8, uint8_t, uint8_t, uint8_t, S_U8MAX_INIT, S_IMAX_ADD, S_IMAX_ADD, S_FIN_SAME)

static const s_reduce_fn s_sum_fns[GQ_DTYPE_COUNT] = {
    [GQ_F32] = s_sum_f32, [GQ_F64] = s_sum_f64, [GQ_F16] = s_sum_f16,
    [GQ_I16] = s_sum_i16, [GQ_I32] = s_sum_i32, [GQ_U8] = s_sum_u8};
static const s_reduce_fn s_mean_fns[GQ_DTYPE_COUNT] = {
    [GQ_F32] = s_mean_f32, [GQ_F64] = s_mean_f64, [GQ_F16] = s_mean_f16,
    [GQ_I16] = s_mean_i16, [GQ_I32] = s_mean_i32, [GQ_U8] = s_mean_u8};
static const s_reduce_fn s_max_fns[GQ_DTYPE_COUNT] = {
    [GQ_F32] = s_max_f32, [GQ_F64] = s_max_f64, [GQ_F16] = s_max_f16,
    [GQ_I16] = s_max_i16, [GQ_I32] = s_max_i32, [GQ_U8] = s_max_u8};

static gq_status s_reduce(const s_reduce_fn fns[GQ_DTYPE_COUNT], bool needs_one, const gq_args_t *a,
                          const gq_view_t *in, gq_view_t *out, char *err, size_t errlen)
{
    int dt = in[0].desc.dtype;
    s_reduce_fn fn = fns[dt];
    int64_t outer, n, inner;
    char ds[64];
    if (!fn) {
        gq_errf(err, errlen, "%s: cpu: no kernel for dtype %s", a->op->name, gq_dtype_name(dt));
        return GQ_EDTYPE;
    }
    if (s_axis_split(a, &in[0].desc, &outer, &n, &inner) < 0) {
        gq_errf(err, errlen, "%s: param 'axis' = %lld out of range for input 0 %s (ndim %d)",
                a->op->name, (long long)gq_args_int(a, "axis"),
                gq_tdesc_str(&in[0].desc, ds, sizeof ds), in[0].desc.ndim);
        return GQ_EPARAM;
    }
    if (needs_one && n == 0 && outer * inner > 0) {
        gq_errf(err, errlen, "%s: input 0 %s: zero-size axis", a->op->name,
                gq_tdesc_str(&in[0].desc, ds, sizeof ds));
        return GQ_ESHAPE;
    }
    fn(in[0].data, out[0].data, outer, n, inner);
    return GQ_OK;
}

static gq_status s_k_sum(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out, int nout,
                         char *err, size_t errlen)
{
    (void)nin, (void)nout;
    return s_reduce(s_sum_fns, false, a, in, out, err, errlen);
}

static gq_status s_k_mean(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out,
                          int nout, char *err, size_t errlen)
{
    (void)nin, (void)nout;
    return s_reduce(s_mean_fns, false, a, in, out, err, errlen);
}

static gq_status s_k_max(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out, int nout,
                         char *err, size_t errlen)
{
    (void)nin, (void)nout;
    return s_reduce(s_max_fns, true, a, in, out, err, errlen);
}

/* ---- cast ---- */

/* Every source dtype converts to double exactly, so a cast is load-to-double then
 * store-from-double, and the rounding or saturation rule lives in one place per target. */
typedef void (*s_load_fn)(const void *src, double *dst, size_t n);
typedef void (*s_store_fn)(void *dst, const double *src, size_t n);

#define S_LOAD_DEF(FN, T, CONV)                                                                    \
    static void FN(const void *sv, double *d, size_t n)                                            \
    {                                                                                              \
        const T *s = sv;                                                                           \
        for (size_t i = 0; i < n; i++)                                                             \
            d[i] = CONV(s[i]);                                                                     \
    }

#define S_TO_D(v) ((double)(v))
S_LOAD_DEF(s_load_f32, float, S_TO_D)
S_LOAD_DEF(s_load_f64, double, S_TO_D)
S_LOAD_DEF(s_load_f16, uint16_t, gq_f16_to_f64)
S_LOAD_DEF(s_load_i16, int16_t, S_TO_D)
S_LOAD_DEF(s_load_i32, int32_t, S_TO_D)
S_LOAD_DEF(s_load_u8, uint8_t, S_TO_D)

/* Truncation toward zero with saturation; NaN -> 0. The bounds are exact doubles, and the
 * comparisons come before the conversion so it never leaves the target's range (which
 * would be undefined behaviour). */
#define S_STORE_INT_DEF(FN, T, LO, HI)                                                             \
    static void FN(void *dv, const double *s, size_t n)                                            \
    {                                                                                              \
        T *d = dv;                                                                                 \
        for (size_t i = 0; i < n; i++) {                                                           \
            double v = s[i];                                                                       \
            d[i] = isnan(v) ? 0 : v <= (double)(LO) ? (LO) : v >= (double)(HI) ? (HI) : (T)v;      \
        }                                                                                          \
    }

S_STORE_INT_DEF(s_store_i16, int16_t, INT16_MIN, INT16_MAX)
S_STORE_INT_DEF(s_store_i32, int32_t, INT32_MIN, INT32_MAX)
S_STORE_INT_DEF(s_store_u8, uint8_t, 0, UINT8_MAX)

/* f64 -> f32 rounds to nearest and overflows to +-inf (IEEE 754 conversion, C Annex F). */
static void s_store_f32(void *dv, const double *s, size_t n)
{
    float *d = dv;
    for (size_t i = 0; i < n; i++)
        d[i] = (float)s[i];
}

static void s_store_f64(void *dv, const double *s, size_t n)
{
    memcpy(dv, s, n * sizeof *s);
}

static void s_store_f16(void *dv, const double *s, size_t n)
{
    uint16_t *d = dv;
    for (size_t i = 0; i < n; i++)
        d[i] = gq_f16_from_f64(s[i]);
}

static const s_load_fn s_loads[GQ_DTYPE_COUNT] = {
    [GQ_F32] = s_load_f32, [GQ_F64] = s_load_f64, [GQ_F16] = s_load_f16,
    [GQ_I16] = s_load_i16, [GQ_I32] = s_load_i32, [GQ_U8] = s_load_u8};
static const s_store_fn s_stores[GQ_DTYPE_COUNT] = {
    [GQ_F32] = s_store_f32, [GQ_F64] = s_store_f64, [GQ_F16] = s_store_f16,
    [GQ_I16] = s_store_i16, [GQ_I32] = s_store_i32, [GQ_U8] = s_store_u8};

static gq_status s_k_cast(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out,
                          int nout, char *err, size_t errlen)
{
    (void)nin, (void)nout;
    int st = in[0].desc.dtype, dt = out[0].desc.dtype;
    size_t n = (size_t)gq_tdesc_numel(&in[0].desc);
    if (st == dt) {
        memcpy(out[0].data, in[0].data, n * gq_dtype_size(st));
        return GQ_OK;
    }
    s_load_fn load = s_loads[st];
    s_store_fn store = s_stores[dt];
    if (!load || !store) {
        gq_errf(err, errlen, "%s: cpu: no kernel for %s -> %s", a->op->name, gq_dtype_name(st),
                gq_dtype_name(dt));
        return GQ_EDTYPE;
    }
    const char *src = in[0].data;
    char *dst = out[0].data;
    size_t ss = gq_dtype_size(st), ds = gq_dtype_size(dt);
    double buf[S_CHUNK];
    for (size_t i = 0; i < n; i += S_CHUNK) {
        size_t m = n - i < S_CHUNK ? n - i : S_CHUNK;
        load(src + i * ss, buf, m);
        store(dst + i * ds, buf, m);
    }
    return GQ_OK;
}

static const gq_cpu_kernel_t s_kernels[] = {
    {"tensor.add", s_k_add},     {"tensor.mul", s_k_mul},   {"tensor.scale", s_k_scale},
    {"tensor.clamp", s_k_clamp}, {"tensor.sum", s_k_sum},   {"tensor.mean", s_k_mean},
    {"tensor.max", s_k_max},     {"tensor.cast", s_k_cast},
};

const gq_cpu_kernel_family_t gq_cpu_tensor_kernels = {
    s_kernels, (int)(sizeof s_kernels / sizeof s_kernels[0])};
