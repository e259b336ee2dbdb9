/* Kernels of the tensor.* ops (host side: worker/opencl/cl_tensor.c). Semantics are the
 * CPU reference's (worker/cpu/cpu_tensor.c, documented in common/ops_tensor.c): NumPy
 * broadcasting, integers wrap, NaN propagates through max and clamp, casts saturate.
 * Built with -DGQ_FP64=1 when the device has cl_khr_fp64; the f64 kernels, and the
 * double accumulators of f32 sums and means, exist only then. */

/* x * f + off must round twice like the CPU's, not once as an fma. */
#pragma OPENCL FP_CONTRACT OFF
#ifdef GQ_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

#define GQ_LOCAL_MAX 256

/* ---- elementwise, with broadcasting ---- */

/* The broadcast plan (host: s_plan in cl_tensor.c): nd dims after merging, right-aligned
 * in the vectors (s7 innermost); element strides, 0 where an input is broadcast. */
#define GQ_DIM(S)                                                                              \
    {                                                                                          \
        long c_ = r % sh.S;                                                                    \
        r /= sh.S;                                                                             \
        ox += c_ * s0.S;                                                                       \
        oy += c_ * s1.S;                                                                       \
    }
#define GQ_DIMS                                                                                \
    if (nd > 0) GQ_DIM(s7) if (nd > 1) GQ_DIM(s6) if (nd > 2) GQ_DIM(s5) if (nd > 3)            \
        GQ_DIM(s4) if (nd > 4) GQ_DIM(s3) if (nd > 5) GQ_DIM(s2) if (nd > 6) GQ_DIM(s1)          \
            if (nd > 7) GQ_DIM(s0)

#define GQ_BINARY(NAME, SFX, T, EXPR)                                                          \
    __kernel void gq_##NAME##_flat_##SFX(__global const T *x, __global const T *y,             \
                                         __global T *z, ulong n, int chk)                      \
    {                                                                                          \
        size_t i = get_global_id(0);                                                           \
        if (chk && i >= n)                                                                     \
            return;                                                                            \
        T a = x[i], b = y[i];                                                                  \
        z[i] = EXPR;                                                                           \
    }                                                                                          \
    __kernel void gq_##NAME##_bcast_##SFX(__global const T *x, __global const T *y,            \
                                          __global T *z, ulong n, int nd, long8 sh, long8 s0,  \
                                          long8 s1)                                            \
    {                                                                                          \
        size_t i = get_global_id(0);                                                           \
        if (i >= n)                                                                            \
            return;                                                                            \
        long r = (long)i, ox = 0, oy = 0;                                                      \
        if (nd == 1) {                                                                         \
            ox = r * s0.s7;                                                                    \
            oy = r * s1.s7;                                                                    \
        } else {                                                                               \
            GQ_DIMS                                                                            \
        }                                                                                      \
        T a = x[ox], b = y[oy];                                                                \
        z[i] = EXPR;                                                                           \
    }

/* i32 wraps like NumPy: unsigned arithmetic, bits reinterpreted. */
GQ_BINARY(add, f32, float, a + b)
GQ_BINARY(mul, f32, float, a * b)
GQ_BINARY(add, i32, int, as_int((uint)a + (uint)b))
GQ_BINARY(mul, i32, int, as_int((uint)a * (uint)b))
#ifdef GQ_FP64
GQ_BINARY(add, f64, double, a + b)
GQ_BINARY(mul, f64, double, a * b)
#endif

/* ---- scale, clamp ---- */

/* f32 scale is computed in double and rounded once, like the CPU; without fp64 in float
 * (within a few ulp of it). */
#ifdef GQ_FP64
__kernel void gq_scale_f32(__global const float *x, __global float *y, ulong n, double f,
                           double off, int chk)
{
    size_t i = get_global_id(0);
    if (chk && i >= n)
        return;
        y[i] = (float)((double)x[i] * f + off);
}

__kernel void gq_scale_f64(__global const double *x, __global double *y, ulong n, double f,
                           double off, int chk)
{
    size_t i = get_global_id(0);
    if (chk && i >= n)
        return;
        y[i] = x[i] * f + off;
}

__kernel void gq_clamp_f64(__global const double *x, __global double *y, ulong n, double lo,
                           double hi, int chk)
{
    size_t i = get_global_id(0);
    if (chk && i >= n)
        return;
    double v = x[i];
    y[i] = v < lo ? lo : v > hi ? hi : v;
}
#else
__kernel void gq_scale_f32(__global const float *x, __global float *y, ulong n, float f,
                           float off, int chk)
{
    size_t i = get_global_id(0);
    if (chk && i >= n)
        return;
        y[i] = x[i] * f + off;
}
#endif

/* Comparisons with NaN are false: a NaN passes through unchanged. */
__kernel void gq_clamp_f32(__global const float *x, __global float *y, ulong n, float lo,
                           float hi, int chk)
{
    size_t i = get_global_id(0);
    if (chk && i >= n)
        return;
    float v = x[i];
    y[i] = v < lo ? lo : v > hi ? hi : v;
}

/* ---- reductions over [outer, n, inner] ---- */

/* cols: one work-item per output, walking the axis (coalesced across work-items when
 * inner > 1). rows (inner == 1, long rows): a work-group per output row, strided partial
 * results merged by a tree in local memory. */
#define GQ_REDUCE(NAME, SFX, TIN, TOUT, ACC, INIT, ADD, MERGE, FIN)                            \
    __kernel void gq_##NAME##_cols_##SFX(__global const TIN *x, __global TOUT *y, ulong outer,  \
                                         ulong n, ulong inner)                                 \
    {                                                                                          \
        size_t g = get_global_id(0);                                                           \
        if (g >= outer * inner)                                                                \
            return;                                                                            \
        ulong o = g / inner, j = g - o * inner;                                                \
        __global const TIN *p = x + o * n * inner + j;                                         \
        ACC a;                                                                                 \
        INIT(a);                                                                               \
        for (ulong k = 0; k < n; k++)                                                          \
            ADD(a, p[k * inner]);                                                              \
        y[g] = FIN(a, n);                                                                      \
    }                                                                                          \
    __kernel void gq_##NAME##_rows_##SFX(__global const TIN *x, __global TOUT *y, ulong outer,  \
                                         ulong n)                                              \
    {                                                                                          \
        __local ACC part[GQ_LOCAL_MAX];                                                        \
        size_t l = get_local_id(0), L = get_local_size(0);                                     \
        for (ulong o = get_group_id(0); o < outer; o += get_num_groups(0)) {                   \
            __global const TIN *p = x + o * n;                                                 \
            ACC a;                                                                             \
            INIT(a);                                                                           \
            for (ulong k = l; k < n; k += L)                                                   \
                ADD(a, p[k]);                                                                  \
            part[l] = a;                                                                       \
            barrier(CLK_LOCAL_MEM_FENCE);                                                      \
            for (size_t s = L / 2; s > 0; s /= 2) {                                            \
                if (l < s) {                                                                   \
                    ACC b = part[l + s], c = part[l];                                          \
                    MERGE(c, b);                                                               \
                    part[l] = c;                                                               \
                }                                                                              \
                barrier(CLK_LOCAL_MEM_FENCE);                                                  \
            }                                                                                  \
            if (l == 0)                                                                        \
                y[o] = FIN(part[0], n);                                                        \
            barrier(CLK_LOCAL_MEM_FENCE);                                                      \
        }                                                                                      \
    }

/* Neumaier's compensated sum: the CPU sums f64 this way, and f32 in double; without fp64
 * the f32 sum is compensated in float to stay close to that. Infinities make the
 * compensation NaN (inf - inf), so the plain sum is then the answer. */
typedef struct {
    float s, c;
} gq_neu_f;
#define GQ_NEU_INIT(a) ((a).s = 0, (a).c = 0)
#define GQ_NEU_ADD_T(T, a, v)                                                                  \
    {                                                                                          \
        T v_ = (v), t_ = (a).s + v_;                                                           \
        if (fabs((a).s) >= fabs(v_))                                                           \
            (a).c += ((a).s - t_) + v_;                                                        \
        else                                                                                   \
            (a).c += (v_ - t_) + (a).s;                                                        \
        (a).s = t_;                                                                            \
    }
#define GQ_NEUF_ADD(a, v) GQ_NEU_ADD_T(float, a, v)
#define GQ_NEUF_MERGE(a, b)                                                                    \
    {                                                                                          \
        GQ_NEUF_ADD(a, (b).s);                                                                 \
        (a).c += (b).c;                                                                        \
    }
#define GQ_NEU_VAL(a) (isfinite((a).s) ? (a).s + (a).c : (a).s)
#define GQ_FIN_NEU(a, n) GQ_NEU_VAL(a)

#define GQ_D_INIT(a) ((a) = 0)
#define GQ_D_ADD(a, v) ((a) += (v))
#define GQ_D_MERGE(a, b) ((a) += (b))
#define GQ_U_ADD(a, v) ((a) += (ulong)(long)(v))
#define GQ_FIN_I64(a, n) as_long(a)

/* NaN wins like numpy.max: once the accumulator is NaN no comparison replaces it. */
#define GQ_FMAX_INIT(a) ((a) = -INFINITY)
#define GQ_FMAX_ADD(a, v) ((a) = ((v) > (a) || isnan(v)) ? (v) : (a))
#define GQ_IMAX_ADD(a, v) ((a) = (v) > (a) ? (v) : (a))
#define GQ_I32MAX_INIT(a) ((a) = INT_MIN)
#define GQ_I16MAX_INIT(a) ((a) = SHRT_MIN)
#define GQ_U8MAX_INIT(a) ((a) = 0)
#define GQ_FIN_SAME(a, n) (a)

GQ_REDUCE(sum, i32, int, long, ulong, GQ_D_INIT, GQ_U_ADD, GQ_D_MERGE, GQ_FIN_I64)
GQ_REDUCE(sum, i16, short, long, ulong, GQ_D_INIT, GQ_U_ADD, GQ_D_MERGE, GQ_FIN_I64)
GQ_REDUCE(sum, u8, uchar, long, ulong, GQ_D_INIT, GQ_U_ADD, GQ_D_MERGE, GQ_FIN_I64)
GQ_REDUCE(max, f32, float, float, float, GQ_FMAX_INIT, GQ_FMAX_ADD, GQ_FMAX_ADD, GQ_FIN_SAME)
GQ_REDUCE(max, i32, int, int, int, GQ_I32MAX_INIT, GQ_IMAX_ADD, GQ_IMAX_ADD, GQ_FIN_SAME)
GQ_REDUCE(max, i16, short, short, short, GQ_I16MAX_INIT, GQ_IMAX_ADD, GQ_IMAX_ADD, GQ_FIN_SAME)
GQ_REDUCE(max, u8, uchar, uchar, uchar, GQ_U8MAX_INIT, GQ_IMAX_ADD, GQ_IMAX_ADD, GQ_FIN_SAME)

#ifdef GQ_FP64
typedef struct {
    double s, c;
} gq_neu_d;
#define GQ_NEUD_ADD(a, v) GQ_NEU_ADD_T(double, a, v)
#define GQ_NEUD_MERGE(a, b)                                                                    \
    {                                                                                          \
        GQ_NEUD_ADD(a, (b).s);                                                                 \
        (a).c += (b).c;                                                                        \
    }
#define GQ_FIN_F32(a, n) ((float)(a))
#define GQ_FIN_MEAN_F32(a, n) ((n) ? (float)((a) / (double)(n)) : (float)NAN)
#define GQ_FIN_MEAN_F64(a, n) ((n) ? GQ_NEU_VAL(a) / (double)(n) : (double)NAN)
#define GQ_FIN_MEAN_D(a, n) ((n) ? (a) / (double)(n) : (double)NAN)
#define GQ_F2D_ADD(a, v) ((a) += (double)(v))
GQ_REDUCE(sum, f32, float, float, double, GQ_D_INIT, GQ_F2D_ADD, GQ_D_MERGE, GQ_FIN_F32)
GQ_REDUCE(mean, f32, float, float, double, GQ_D_INIT, GQ_F2D_ADD, GQ_D_MERGE, GQ_FIN_MEAN_F32)
GQ_REDUCE(sum, f64, double, double, gq_neu_d, GQ_NEU_INIT, GQ_NEUD_ADD, GQ_NEUD_MERGE, GQ_FIN_NEU)
GQ_REDUCE(mean, f64, double, double, gq_neu_d, GQ_NEU_INIT, GQ_NEUD_ADD, GQ_NEUD_MERGE,
          GQ_FIN_MEAN_F64)
GQ_REDUCE(mean, i32, int, double, double, GQ_D_INIT, GQ_F2D_ADD, GQ_D_MERGE, GQ_FIN_MEAN_D)
GQ_REDUCE(mean, i16, short, double, double, GQ_D_INIT, GQ_F2D_ADD, GQ_D_MERGE, GQ_FIN_MEAN_D)
GQ_REDUCE(mean, u8, uchar, double, double, GQ_D_INIT, GQ_F2D_ADD, GQ_D_MERGE, GQ_FIN_MEAN_D)
GQ_REDUCE(max, f64, double, double, double, GQ_FMAX_INIT, GQ_FMAX_ADD, GQ_FMAX_ADD, GQ_FIN_SAME)
#else
#define GQ_FIN_MEAN_NEU(a, n) ((n) ? GQ_NEU_VAL(a) / (float)(n) : (float)NAN)
GQ_REDUCE(sum, f32, float, float, gq_neu_f, GQ_NEU_INIT, GQ_NEUF_ADD, GQ_NEUF_MERGE, GQ_FIN_NEU)
GQ_REDUCE(mean, f32, float, float, gq_neu_f, GQ_NEU_INIT, GQ_NEUF_ADD, GQ_NEUF_MERGE,
          GQ_FIN_MEAN_NEU)
#endif

/* ---- cast ---- */

/* Float -> int truncates toward zero and saturates, NaN -> 0 (the _sat_rtz conversions);
 * int -> int saturates; -> float rounds to nearest even; widening is exact. */
#define GQ_CAST(S, D, TS, TD, CONV)                                                            \
    __kernel void gq_cast_##S##_##D(__global const TS *x, __global TD *y, ulong n, int chk)    \
    {                                                                                          \
        size_t i = get_global_id(0);                                                           \
        if (chk && i >= n)                                                                     \
            return;                                                                            \
        y[i] = CONV(x[i]);                                                                     \
    }

GQ_CAST(f32, i32, float, int, convert_int_sat_rtz)
GQ_CAST(f32, i16, float, short, convert_short_sat_rtz)
GQ_CAST(f32, u8, float, uchar, convert_uchar_sat_rtz)
GQ_CAST(i32, f32, int, float, convert_float_rte)
GQ_CAST(i16, f32, short, float, convert_float_rte)
GQ_CAST(u8, f32, uchar, float, convert_float_rte)
GQ_CAST(i32, i16, int, short, convert_short_sat)
GQ_CAST(i32, u8, int, uchar, convert_uchar_sat)
GQ_CAST(i16, i32, short, int, convert_int)
GQ_CAST(i16, u8, short, uchar, convert_uchar_sat)
GQ_CAST(u8, i32, uchar, int, convert_int)
GQ_CAST(u8, i16, uchar, short, convert_short)
#ifdef GQ_FP64
GQ_CAST(f64, f32, double, float, convert_float_rte)
GQ_CAST(f32, f64, float, double, convert_double)
GQ_CAST(f64, i32, double, int, convert_int_sat_rtz)
GQ_CAST(f64, i16, double, short, convert_short_sat_rtz)
GQ_CAST(f64, u8, double, uchar, convert_uchar_sat_rtz)
GQ_CAST(i32, f64, int, double, convert_double)
GQ_CAST(i16, f64, short, double, convert_double)
GQ_CAST(u8, f64, uchar, double, convert_double)
#endif
