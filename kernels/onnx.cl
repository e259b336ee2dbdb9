/* Kernels of the ONNX executor's OpenCL accelerator (host side: worker/opencl/cl_onnx*.c),
 * f32 only. Semantics are the CPU kernels' (worker/onnx/onnx_ops_*.c): the same formulas,
 * NaN handled the same way; sums (pools, softmax) accumulate in double on fp64 devices as
 * the CPU does, in float otherwise. GEMM products accumulate in float with mad(), in a
 * different order from OpenBLAS (the tolerances of the ONNX tests cover it). Geometry is
 * int (the host declines tensors past 2^31 elements): 32-bit divisions are several times
 * cheaper than 64-bit ones on CPU devices. Elementwise kernels end with int chk (see
 * kernels/README.md). */

#pragma OPENCL FP_CONTRACT OFF
#ifdef GQ_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double gq_onnx_acc;
#else
typedef float gq_onnx_acc;
#endif

/* y clamped to [0, 1], NaN kept (the CPU's comparisons; clamp() would give 0). */
float gq_onnx_unit(float y)
{
    return y < 0.0f ? 0.0f : y > 1.0f ? 1.0f : y;
}

/* A fused epilogue (the host maps the plan's kinds to these): 0 none, 1 Relu, 2 LeakyRelu
 * (a), 3 Clip (a, b), 4 Sigmoid, 5 Tanh, 6 HardSigmoid (a, b). */
float gq_onnx_epilogue(float v, int act, float a, float b)
{
    switch (act) {
    case 1:
        return v > 0.0f ? v : 0.0f;
    case 2:
        return v >= 0.0f ? v : a * v;
    case 3:
        return v < a ? a : v > b ? b : v;
    case 4:
        return v >= 0.0f ? 1.0f / (1.0f + exp(-v)) : exp(v) / (1.0f + exp(v));
    case 5:
        return tanh(v);
    case 6:
        return gq_onnx_unit(a * v + b);
    default:
        return v;
    }
}

/* The same on 8 lanes (the GEMM's store). */
float8 gq_onnx_epilogue8(float8 v, int act, float a, float b)
{
    float8 z = (float8)(0.0f);
    switch (act) {
    case 1:
        return select(z, v, v > z);
    case 2:
        return select(a * v, v, v >= z);
    case 3:
        return select(select(v, (float8)(b), v > (float8)(b)), (float8)(a), v < (float8)(a));
    case 4: {
        float8 e = exp(-fabs(v));
        return select(e / (1.0f + e), 1.0f / (1.0f + e), v >= z);
    }
    case 5:
        return tanh(v);
    case 6: {
        float8 y = a * v + b;
        return select(select(y, (float8)(1.0f), y > (float8)(1.0f)), z, y < z);
    }
    default:
        return v;
    }
}

/* ---- GEMM ---- */

/* C[b] = act(alpha * A[b] B[b] + beta * bias[b]) for b = get_global_id(2), each work-item a
 * block of 4 rows x 8 columns: per k one vector load of B's row segment, four A elements
 * broadcast, four multiply-adds of 8 lanes (explicit vectors: CPU drivers such as PoCL do
 * not vectorise a k loop across work-items). A is read through strides (ars, acs: either
 * transposition), B row-major with row stride ldb. Batches pick their operands as
 * (b % mod) * stride: mod = 1 broadcasts one matrix to every batch (conv weights per group,
 * MatMul's broadcast batch dims). Rows past M repeat row 0 (computed, never stored); the
 * last column block loads its tail element by element. act, acta, actb: the epilogue. */
__kernel void gq_onnx_gemm(__global const float *A, long aoff, long ars, long acs, long amod,
                           long abs_, __global const float *B, long boff, long ldb, long bmod,
                           long bbs, __global float *C, long coff, long ldc, long cbs,
                           __global const float *bias, int has_bias, long bsm, long bsn,
                           long biasmod, long biasbs, int M, int N, int K, float alpha,
                           float beta, int act, float acta, float actb)
{
    int n0 = (int)get_global_id(0) * 8, m0 = (int)get_global_id(1) * 4;
    long b = (long)get_global_id(2);
    if (n0 >= N || m0 >= M)
        return;
    __global const float *a = A + aoff + (b % amod) * abs_ + m0 * ars;
    __global const float *bp = B + boff + (b % bmod) * bbs + n0;
    long r1 = m0 + 1 < M ? ars : 0, r2 = m0 + 2 < M ? 2 * ars : 0, r3 = m0 + 3 < M ? 3 * ars : 0;
    float8 c0 = (float8)(0.0f), c1 = c0, c2 = c0, c3 = c0;
    if (n0 + 8 <= N) {
        for (int k = 0; k < K; k++) {
            float8 bv = vload8(0, bp + k * ldb);
            __global const float *ak = a + k * acs;
            c0 = mad((float8)(ak[0]), bv, c0);
            c1 = mad((float8)(ak[r1]), bv, c1);
            c2 = mad((float8)(ak[r2]), bv, c2);
            c3 = mad((float8)(ak[r3]), bv, c3);
        }
    } else {
        int nn = N - n0;
        float t[8];
        for (int k = 0; k < K; k++) {
            __global const float *bk = bp + k * ldb;
            for (int j = 0; j < 8; j++)
                t[j] = j < nn ? bk[j] : 0.0f;
            float8 bv = vload8(0, t);
            __global const float *ak = a + k * acs;
            c0 = mad((float8)(ak[0]), bv, c0);
            c1 = mad((float8)(ak[r1]), bv, c1);
            c2 = mad((float8)(ak[r2]), bv, c2);
            c3 = mad((float8)(ak[r3]), bv, c3);
        }
    }
    __global float *cp = C + coff + b * cbs;
    __global const float *bi = bias + (b % biasmod) * biasbs;
    if (m0 + 4 <= M && n0 + 8 <= N && (bsn == 0 || bsn == 1)) { /* a whole block: 8 lanes */
        float8 acc[4] = {c0, c1, c2, c3};
        for (int i = 0; i < 4; i++) {
            float8 v = alpha * acc[i];
            long bo = (long)(m0 + i) * bsm;
            if (has_bias)
                v += beta * (bsn ? vload8(0, bi + bo + n0) : (float8)(bi[bo]));
            vstore8(gq_onnx_epilogue8(v, act, acta, actb), 0, cp + (long)(m0 + i) * ldc + n0);
        }
        return;
    }
    float r[4][8];
    vstore8(c0, 0, r[0]);
    vstore8(c1, 0, r[1]);
    vstore8(c2, 0, r[2]);
    vstore8(c3, 0, r[3]);
    for (int i = 0; i < 4 && m0 + i < M; i++) {
        int m = m0 + i;
        for (int j = 0; j < 8 && n0 + j < N; j++) {
            float v = alpha * r[i][j];
            if (has_bias)
                v += beta * bi[m * bsm + (n0 + j) * bsn];
            cp[(long)m * ldc + n0 + j] = gq_onnx_epilogue(v, act, acta, actb);
        }
    }
}

/* ---- convolution ---- */

/* col[b][k][p] for the images and groups b of one chunk: k = (cg, kh, kw) over the group's
 * Cg channels and the kernel window, p = (oh, ow) over the output; 0 in the padding. x is
 * [b][Cg][IH][IW] (an image's groups are consecutive channel blocks). 1-D convs run as 2-D
 * with IH = KH = 1. */
__kernel void gq_onnx_im2col(__global const float *x, long xoff, __global float *col, int K,
                             int P, int KH, int KW, int IH, int IW, int OW, int SH, int SW,
                             int DH, int DW, int PH, int PW, ulong n, int chk)
{
    size_t gi = get_global_id(0);
    if (chk && gi >= n)
        return;
    int i = (int)gi;
    int p = i % P, t = i / P, kk = t % K, b = t / K;
    int kw = kk % KW, t2 = kk / KW, kh = t2 % KH, cg = t2 / KH;
    int oh = p / OW, ow = p - oh * OW;
    int ih = oh * SH - PH + kh * DH, iw = ow * SW - PW + kw * DW;
    int Cg = K / (KH * KW);
    float v = 0.0f;
    if (ih >= 0 && ih < IH && iw >= 0 && iw < IW)
        v = x[xoff + ((long)(b * Cg + cg) * IH + ih) * IW + iw];
    col[gi] = v;
}

/* The outputs j in [*lo, *hi) of a row of nout whose taps j * stride + off fall inside
 * 0..n (the CPU's s_valid_range). */
void gq_onnx_range(int nout, int stride, int off, int n, int *lo, int *hi)
{
    int l = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int h = n - off <= 0 ? 0 : (n - off + stride - 1) / stride;
    *lo = l < nout ? l : nout;
    *hi = h < nout ? (h > *lo ? h : *lo) : nout;
}

/* Row kernels (CPU devices, host: gq_clx_rows): one work-item per output row, the row's
 * in-input span found once per tap, so the innermost loop is a plain strided walk along
 * the row that the driver's compiler vectorises, with no division per element (per-element
 * kernels spend most of their time in index arithmetic on CPU devices: 10-20x slower). */

/* im2col by rows: row (b, k, oh) of col, k = (cg, kh, kw). */
__kernel void gq_onnx_im2col_rows(__global const float *x, long xoff, __global float *col, int K,
                                  int OH, int OW, int KH, int KW, int IH, int IW, int SH, int SW,
                                  int DH, int DW, int PH, int PW, ulong n, int chk)
{
    size_t gi = get_global_id(0);
    if (chk && gi >= n)
        return;
    int r = (int)gi;
    int oh = r % OH, t = r / OH, kk = t % K, b = t / K;
    int kw = kk % KW, t2 = kk / KW, kh = t2 % KH, cg = t2 / KH;
    int Cg = K / (KH * KW);
    int ih = oh * SH - PH + kh * DH, off = kw * DW - PW, lo = OW, hi = OW;
    __global float *dst = col + (long)r * OW;
    if (ih >= 0 && ih < IH)
        gq_onnx_range(OW, SW, off, IW, &lo, &hi);
    else
        lo = hi = OW;
    __global const float *src = x + xoff + ((long)(b * Cg + cg) * IH + ih) * IW + off;
    for (int j = 0; j < lo; j++)
        dst[j] = 0.0f;
    if (SW == 1)
        for (int j = lo; j < hi; j++)
            dst[j] = src[j];
    else
        for (int j = lo; j < hi; j++)
            dst[j] = src[j * SW];
    for (int j = hi; j < OW; j++)
        dst[j] = 0.0f;
}

/* MaxPool (kind 0) / AveragePool (kind 1) by rows: row (plane, oh), taps in the CPU's
 * order (kh, then kw), the row of y as the accumulator. */
__kernel void gq_onnx_pool_rows(__global const float *x, __global float *y, int kind,
                                int include_pad, int IH, int IW, int OH, int OW, int KH, int KW,
                                int SH, int SW, int DH, int DW, int PH, int PW, int PHe, int PWe,
                                ulong n, int chk)
{
    size_t gi = get_global_id(0);
    if (chk && gi >= n)
        return;
    int r = (int)gi;
    int oh = r % OH, pl = r / OH;
    __global float *yr = y + (long)r * OW;
    float init = kind == 0 ? -INFINITY : 0.0f;
    for (int j = 0; j < OW; j++)
        yr[j] = init;
    int ch = 0;
    for (int kh = 0; kh < KH; kh++) {
        int ih = oh * SH - PH + kh * DH;
        if (ih < 0 || ih >= IH)
            continue;
        ch++;
        __global const float *xr = x + ((long)pl * IH + ih) * IW;
        for (int kw = 0; kw < KW; kw++) {
            int off = kw * DW - PW, lo, hi;
            gq_onnx_range(OW, SW, off, IW, &lo, &hi);
            __global const float *src = xr + off;
            if (kind == 0)
                for (int j = lo; j < hi; j++) {
                    float v = src[j * SW];
                    yr[j] = v > yr[j] ? v : yr[j];
                }
            else
                for (int j = lo; j < hi; j++)
                    yr[j] += src[j * SW];
        }
    }
    if (kind == 0)
        return;
    for (int j = 0; j < OW; j++) {
        int cw = 0;
        for (int kw = 0; kw < KW; kw++) {
            int iw = j * SW - PW + kw * DW;
            cw += iw >= 0 && iw < IW;
        }
        int cnt = ch * cw;
        yr[j] = yr[j] / (float)(include_pad ? KH * KW : cnt ? cnt : 1);
    }
}

/* A direct convolution by rows: row (img, m, oh) of y, summed tap by tap along the row. */
__kernel void gq_onnx_conv_rows(__global const float *x, __global const float *w,
                                __global const float *bias, int has_bias, __global float *y,
                                int C, int M, int Cg, int Mg, int KH, int KW, int IH, int IW,
                                int OH, int OW, int SH, int SW, int DH, int DW, int PH, int PW,
                                int act, float acta, float actb, ulong n, int chk)
{
    size_t gi = get_global_id(0);
    if (chk && gi >= n)
        return;
    int r = (int)gi;
    int oh = r % OH, t = r / OH, m = t % M, img = t / M;
    int g = m / Mg;
    __global float *yr = y + (long)r * OW;
    __global const float *xg = x + ((long)img * C + g * Cg) * IH * IW;
    __global const float *wm = w + (long)m * Cg * KH * KW;
    for (int j = 0; j < OW; j++)
        yr[j] = 0.0f;
    for (int c = 0; c < Cg; c++)
        for (int kh = 0; kh < KH; kh++) {
            int ih = oh * SH - PH + kh * DH;
            if (ih < 0 || ih >= IH)
                continue;
            __global const float *xr = xg + ((long)c * IH + ih) * IW;
            for (int kw = 0; kw < KW; kw++) {
                int off = kw * DW - PW, lo, hi;
                gq_onnx_range(OW, SW, off, IW, &lo, &hi);
                float wv = wm[(c * KH + kh) * KW + kw];
                __global const float *src = xr + off;
                for (int j = lo; j < hi; j++)
                    yr[j] = mad(src[j * SW], wv, yr[j]);
            }
        }
    float b = has_bias ? bias[m] : 0.0f;
    for (int j = 0; j < OW; j++)
        yr[j] = gq_onnx_epilogue(yr[j] + b, act, acta, actb);
}

/* A convolution with one work-item per output element, summing its window directly: for
 * depthwise convs (one filter per group), where a GEMM would have one row. */
__kernel void gq_onnx_conv_direct(__global const float *x, __global const float *w,
                                  __global const float *bias, int has_bias, __global float *y,
                                  int C, int M, int Cg, int Mg, int KH, int KW, int IH, int IW,
                                  int OH, int OW, int SH, int SW, int DH, int DW, int PH, int PW,
                                  int act, float acta, float actb, ulong n, int chk)
{
    size_t gi = get_global_id(0);
    if (chk && gi >= n)
        return;
    int i = (int)gi;
    int ow = i % OW, t = i / OW, oh = t % OH, t2 = t / OH, m = t2 % M, img = t2 / M;
    int g = m / Mg;
    __global const float *xg = x + ((long)img * C + g * Cg) * IH * IW;
    __global const float *wm = w + (long)m * Cg * KH * KW;
    float acc = 0.0f;
    for (int c = 0; c < Cg; c++)
        for (int kh = 0; kh < KH; kh++) {
            int ih = oh * SH - PH + kh * DH;
            if (ih < 0 || ih >= IH)
                continue;
            for (int kw = 0; kw < KW; kw++) {
                int iw = ow * SW - PW + kw * DW;
                if (iw >= 0 && iw < IW)
                    acc = mad(xg[((long)c * IH + ih) * IW + iw], wm[(c * KH + kh) * KW + kw], acc);
            }
        }
    if (has_bias)
        acc += bias[m];
    y[gi] = gq_onnx_epilogue(acc, act, acta, actb);
}

/* ---- pools ---- */

/* MaxPool (kind 0) / AveragePool (kind 1) of one output element over its window's taps
 * inside the input; the average's divisor is the whole window (count_include_pad: also where
 * ceil_mode runs it past the pads, as onnxruntime counts it) or the taps inside the input, as
 * on the CPU. PHe, PWe: unused (the claim's geometry). */
__kernel void gq_onnx_pool(__global const float *x, __global float *y, int kind, int include_pad,
                           int IH, int IW, int OH, int OW, int KH, int KW, int SH, int SW, int DH,
                           int DW, int PH, int PW, int PHe, int PWe, ulong n, int chk)
{
    size_t gi = get_global_id(0);
    if (chk && gi >= n)
        return;
    int i = (int)gi;
    int ow = i % OW, t = i / OW, oh = t % OH, pl = t / OH;
    __global const float *xp = x + (long)pl * IH * IW;
    int sh = oh * SH - PH, sw = ow * SW - PW, ch = 0, cw = 0;
    for (int kw = 0; kw < KW; kw++) {
        int iw = sw + kw * DW;
        cw += iw >= 0 && iw < IW;
    }
    float m = -INFINITY;
    gq_onnx_acc acc = 0;
    for (int kh = 0; kh < KH; kh++) {
        int ih = sh + kh * DH;
        if (ih < 0 || ih >= IH)
            continue;
        ch++;
        for (int kw = 0; kw < KW; kw++) {
            int iw = sw + kw * DW;
            if (iw < 0 || iw >= IW)
                continue;
            float v = xp[ih * IW + iw];
            m = v > m ? v : m;
            acc += v;
        }
    }
    if (kind == 0) {
        y[gi] = m;
    } else {
        int cnt = ch * cw;
        y[gi] = (float)(acc / (gq_onnx_acc)(include_pad ? KH * KW : cnt ? cnt : 1));
    }
}

/* GlobalMaxPool (kind 0) / GlobalAveragePool (kind 1): one work-item per plane. */
__kernel void gq_onnx_global_pool(__global const float *x, __global float *y, int kind, long sz,
                                  ulong n, int chk)
{
    size_t pl = get_global_id(0);
    if (chk && pl >= n)
        return;
    __global const float *xp = x + (long)pl * sz;
    gq_onnx_acc acc = kind == 0 ? -INFINITY : 0;
    for (long i = 0; i < sz; i++)
        acc = kind == 0 ? (xp[i] > acc ? xp[i] : acc) : acc + xp[i];
    y[pl] = (float)(kind == 0 ? acc : acc / (gq_onnx_acc)sz);
}

/* ---- normalisation, softmax ---- */

/* BatchNormalization (inference): y = a x + b per channel c of [N, C, sz], with
 * a = scale / sqrt(var + eps) rounded to float and b = bias - a mean, as on the CPU. */
__kernel void gq_onnx_batchnorm(__global const float *x, __global float *y,
                                __global const float *sc, __global const float *bi,
                                __global const float *mu, __global const float *var, float eps,
                                int sz, int C, ulong n, int chk)
{
    size_t gi = get_global_id(0);
    if (chk && gi >= n)
        return;
    int c = (int)(gi / (size_t)sz) % C;
    float a = (float)(sc[c] / sqrt((gq_onnx_acc)var[c] + (gq_onnx_acc)eps));
    float b = bi[c] - a * mu[c];
    y[gi] = a * x[gi] + b;
}

/* Softmax / LogSoftmax (logf) along rows of len elements inner apart; one work-item per
 * row. */
__kernel void gq_onnx_softmax(__global const float *x, __global float *y, int len, int inner,
                              int logf, ulong n, int chk)
{
    size_t gi = get_global_id(0);
    if (chk && gi >= n)
        return;
    int r = (int)gi, o = r / inner, q = r - o * inner;
    long base = (long)o * len * inner + q;
    float mx = -INFINITY;
    for (int j = 0; j < len; j++) {
        float v = x[base + (long)j * inner];
        mx = v > mx ? v : mx;
    }
    gq_onnx_acc sum = 0;
    for (int j = 0; j < len; j++)
        sum += exp((gq_onnx_acc)x[base + (long)j * inner] - mx);
    gq_onnx_acc ls = log(sum);
    for (int j = 0; j < len; j++) {
        gq_onnx_acc v = (gq_onnx_acc)x[base + (long)j * inner] - mx;
        y[base + (long)j * inner] = logf ? (float)(v - ls) : (float)(exp(v) / sum);
    }
}

/* ---- elementwise ---- */

/* Activations and unary math: one kernel per op (the op a compile-time constant, so CPU
 * drivers vectorise the work-group); p0, p1 are the op's attributes. */
#define GQ_ONNX_UNARY(NAME, EXPR)                                                              \
    __kernel void gq_onnx_un_##NAME(__global const float *xs, __global float *ys, float p0,     \
                                    float p1, ulong n, int chk)                                \
    {                                                                                          \
        size_t i = get_global_id(0);                                                           \
        if (chk && i >= n)                                                                     \
            return;                                                                            \
        float x = xs[i];                                                                       \
        ys[i] = (EXPR);                                                                        \
    }

GQ_ONNX_UNARY(relu, x > 0.0f ? x : 0.0f)
GQ_ONNX_UNARY(sigmoid, x >= 0.0f ? 1.0f / (1.0f + exp(-x)) : exp(x) / (1.0f + exp(x)))
GQ_ONNX_UNARY(tanh, tanh(x))
GQ_ONNX_UNARY(leaky, x >= 0.0f ? x : p0 * x)
GQ_ONNX_UNARY(elu, x >= 0.0f ? x : p0 * (exp(x) - 1.0f))
GQ_ONNX_UNARY(selu, p1 * (x > 0.0f ? x : p0 * (exp(x) - 1.0f)))
GQ_ONNX_UNARY(hardsigmoid, gq_onnx_unit(p0 * x + p1))
GQ_ONNX_UNARY(hardswish, x * gq_onnx_unit(x / 6.0f + 0.5f))
GQ_ONNX_UNARY(softplus, x > 30.0f ? x : log1p(exp(x)))
GQ_ONNX_UNARY(softsign, x / (1.0f + fabs(x)))
GQ_ONNX_UNARY(clip, isnan(x) ? x : x < p0 ? p0 : x > p1 ? p1 : x)
GQ_ONNX_UNARY(exp, exp(x))
GQ_ONNX_UNARY(log, log(x))
GQ_ONNX_UNARY(sqrt, sqrt(x))
GQ_ONNX_UNARY(abs, fabs(x))
GQ_ONNX_UNARY(neg, -x)
GQ_ONNX_UNARY(recip, 1.0f / x)
GQ_ONNX_UNARY(floor, floor(x))
GQ_ONNX_UNARY(ceil, ceil(x))
GQ_ONNX_UNARY(erf, erf(x))

/* The broadcast plan of the host (s_bcast in cl_onnx_ops.c): nd dims after merging,
 * right-aligned in the vectors (s7 innermost); element strides per source, 0 where it is
 * broadcast. Decodes output index r into offsets oa, ob. */
#define GQ_ONNX_DIM(S)                                                                         \
    {                                                                                          \
        long c_ = r % sh.S;                                                                    \
        r /= sh.S;                                                                             \
        oa += c_ * sa.S;                                                                       \
        ob += c_ * sb.S;                                                                       \
    }
#define GQ_ONNX_DIMS                                                                           \
    GQ_ONNX_DIM(s7) if (nd > 1) GQ_ONNX_DIM(s6) if (nd > 2) GQ_ONNX_DIM(s5) if (nd > 3)        \
        GQ_ONNX_DIM(s4) if (nd > 4) GQ_ONNX_DIM(s3) if (nd > 5) GQ_ONNX_DIM(s2) if (nd > 6)    \
            GQ_ONNX_DIM(s1) if (nd > 7) GQ_ONNX_DIM(s0)

#define GQ_ONNX_BINARY(NAME, EXPR)                                                             \
    __kernel void gq_onnx_##NAME##_flat(__global const float *xa, __global const float *xb,     \
                                        __global float *z, ulong n, int chk)                   \
    {                                                                                          \
        size_t i = get_global_id(0);                                                           \
        if (chk && i >= n)                                                                     \
            return;                                                                            \
        float a = xa[i], b = xb[i];                                                            \
        z[i] = (EXPR);                                                                         \
    }                                                                                          \
    __kernel void gq_onnx_##NAME##_bcast(__global const float *xa, __global const float *xb,    \
                                         __global float *z, int nd, long8 sh, long8 sa,        \
                                         long8 sb, ulong n, int chk)                           \
    {                                                                                          \
        size_t i = get_global_id(0);                                                           \
        if (chk && i >= n)                                                                     \
            return;                                                                            \
        long r = (long)i, oa = 0, ob = 0;                                                      \
        GQ_ONNX_DIMS                                                                           \
        float a = xa[oa], b = xb[ob];                                                          \
        z[i] = (EXPR);                                                                         \
    }

GQ_ONNX_BINARY(add, a + b)
GQ_ONNX_BINARY(sub, a - b)
GQ_ONNX_BINARY(mul, a * b)
GQ_ONNX_BINARY(div, a / b)

/* Transpose (and any strided gather): y[i] = x[offset of i under strides sa]. */
__kernel void gq_onnx_strided(__global const float *x, __global float *y, int nd, long8 sh,
                              long8 sa, ulong n, int chk)
{
    size_t i = get_global_id(0);
    if (chk && i >= n)
        return;
    long r = (long)i, oa = 0, ob = 0;
    long8 sb = (long8)(0);
    GQ_ONNX_DIMS
    (void)ob;
    y[i] = x[oa];
}
