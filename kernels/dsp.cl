/* Kernels of the dsp.* filter, level and framing ops (host side: worker/opencl/cl_dsp.c).
 * Semantics are the CPU reference's (worker/cpu/cpu_dsp_*.c, docs/dsp-filter.md). The CPU
 * computes every filter in double and rounds once into the output: so do these when the
 * device has fp64 (gq_acc is double), summing in the CPU's order where that is cheap, so
 * results match to the last bit or within one rounding. Without fp64 gq_acc is float and
 * the host declines the ops whose state outputs are f64 (docs/opencl.md). */

#pragma OPENCL FP_CONTRACT OFF
#ifdef GQ_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double gq_acc;
#else
typedef float gq_acc;
#endif

#define GQ_DSP_LOCAL_MAX 256

/* ---- gain, window, normalize ---- */

/* y = x * g in gq_acc, rounded once. Elementwise kernels take chk (gq_cl_launch_ew): 0
 * when every work-item of the launch is in range, so the body has no per-item branch. */
#define GQ_DSP_GAIN(SFX, T)                                                                    \
    __kernel void gq_dsp_gain_##SFX(__global const T *x, __global T *y, ulong n, gq_acc g,      \
                                    int chk)                                                   \
    {                                                                                          \
        size_t i = get_global_id(0);                                                           \
        if (chk && i >= n)                                                                     \
            return;                                                                            \
        y[i] = (T)((gq_acc)x[i] * g);                                                          \
    }

/* f32 with a gain that is itself a float: the double product of two floats is exact, so
 * rounding it once to float is what the float product gives. */
__kernel void gq_dsp_gainf_f32(__global const float *x, __global float *y, ulong n, float g,
                               int chk)
{
    size_t i = get_global_id(0);
    if (chk && i >= n)
        return;
    y[i] = x[i] * g;
}

/* y[r, i] = x[r, i] * w[i]; w already in the output's precision (the CPU rounds an f32
 * window to float first). */
#define GQ_DSP_WINDOW(SFX, T)                                                                  \
    __kernel void gq_dsp_window_##SFX(__global const T *x, __global const T *w, __global T *y, \
                                      ulong n, ulong len, int chk)                             \
    {                                                                                          \
        ulong i = get_global_id(0);                                                            \
        if (chk && i >= n)                                                                     \
            return;                                                                            \
        y[i] = x[i] * w[i % len];                                                              \
    }

/* The scale factor of each normalize group (one work-group per group): target / level,
 * 1 for silence, NaN when the group holds NaN or Inf (x - x is then NaN). */
#define GQ_DSP_LEVEL(SFX, T)                                                                   \
    __kernel void gq_dsp_level_##SFX(__global const T *x, __global gq_acc *k, ulong g, int rms, \
                                     gq_acc target)                                            \
    {                                                                                          \
        __local gq_acc part[GQ_DSP_LOCAL_MAX], badp[GQ_DSP_LOCAL_MAX];                         \
        size_t l = get_local_id(0), L = get_local_size(0);                                     \
        ulong grp = get_group_id(0);                                                           \
        __global const T *p = x + grp * g;                                                     \
        gq_acc acc = 0, bad = 0;                                                               \
        for (ulong i = l; i < g; i += L) {                                                     \
            gq_acc v = p[i];                                                                   \
            bad += v - v;                                                                      \
            acc = rms ? acc + v * v : fmax(acc, fabs(v));                                      \
        }                                                                                      \
        part[l] = acc;                                                                         \
        badp[l] = bad;                                                                         \
        barrier(CLK_LOCAL_MEM_FENCE);                                                          \
        for (size_t s = L / 2; s > 0; s /= 2) {                                                \
            if (l < s) {                                                                       \
                part[l] = rms ? part[l] + part[l + s] : fmax(part[l], part[l + s]);            \
                badp[l] += badp[l + s];                                                        \
            }                                                                                  \
            barrier(CLK_LOCAL_MEM_FENCE);                                                      \
        }                                                                                      \
        if (l == 0) {                                                                          \
            gq_acc b = badp[0], lvl = part[0];                                                 \
            if (rms)                                                                           \
                lvl = g ? sqrt(lvl / (gq_acc)g) : 0;                                           \
            k[grp] = (b != 0 || isnan(b)) ? (gq_acc)NAN : lvl == 0 ? (gq_acc)1 : target / lvl; \
        }                                                                                      \
    }

#define GQ_DSP_SCALE_GROUPS(SFX, T)                                                            \
    __kernel void gq_dsp_scale_groups_##SFX(__global const T *x, __global const gq_acc *k,     \
                                            __global T *y, ulong n, ulong g, int chk)          \
    {                                                                                          \
        ulong i = get_global_id(0);                                                            \
        if (chk && i >= n)                                                                     \
            return;                                                                            \
        y[i] = (T)((gq_acc)x[i] * k[i / g]);                                                   \
    }

/* ---- frame, overlap_add ---- */

/* out [rows, fl, nf] (frames_last) or [rows, nf, fl]: a copy, one work-item per output
 * row (a = index over rows * fl or rows * nf) walking its b values: no division per
 * element. */
#define GQ_DSP_FRAME(SFX, T)                                                                   \
    __kernel void gq_dsp_frame_##SFX(__global const T *x, __global T *y, ulong n, ulong len,    \
                                     ulong fl, ulong nf, ulong hop, int last)                  \
    {                                                                                          \
        ulong w = get_global_id(0);                                                            \
        if (w >= n)                                                                            \
            return;                                                                            \
        ulong A = last ? fl : nf, r = w / A, a = w - r * A;                                    \
        __global const T *xr = x + r * len;                                                    \
        if (last) {                                                                            \
            __global T *yr = y + w * nf;                                                       \
            for (ulong f = 0; f < nf; f++)                                                     \
                yr[f] = xr[f * hop + a];                                                       \
        } else {                                                                               \
            __global T *yr = y + w * fl;                                                       \
            __global const T *xs = xr + a * hop;                                               \
            for (ulong i = 0; i < fl; i++)                                                     \
                yr[i] = xs[i];                                                                 \
        }                                                                                      \
    }

/* Output sample p sums the frames covering it in frame order, like the CPU's loop, in
 * gq_acc. fs, ss: the input's frame and sample strides. */
#define GQ_DSP_OLA(SFX, T)                                                                     \
    __kernel void gq_dsp_ola_##SFX(__global const T *x, __global T *y, ulong n, ulong len,      \
                                   ulong fl, ulong nf, ulong hop, ulong fs, ulong ss)          \
    {                                                                                          \
        ulong o = get_global_id(0);                                                            \
        if (o >= n)                                                                            \
            return;                                                                            \
        ulong it = o / len, p = o - it * len;                                                  \
        ulong f0 = p >= fl ? (p - fl) / hop + 1 : 0, f1 = p / hop;                             \
        if (f1 > nf - 1)                                                                       \
            f1 = nf - 1;                                                                       \
        __global const T *b = x + it * fl * nf;                                                \
        gq_acc acc = 0;                                                                        \
        for (ulong f = f0; f <= f1; f++)                                                       \
            acc += (gq_acc)b[f * fs + (p - f * hop) * ss];                                     \
        y[o] = (T)acc;                                                                         \
    }

/* ---- preemphasis ---- */

/* y[t] = x[t] - coef x[t-1]; y[0] = x[0] + zi, zi from the state input (has_zi) or
 * librosa's 2 x[0] - x[1] (x[0] when T = 1). zf[r] = -coef x[T-1] (zi when T = 0). */
#define GQ_DSP_PREEMPH(SFX, T)                                                                 \
    __kernel void gq_dsp_preemph_##SFX(__global const T *x, __global T *y, ulong n, ulong len, \
                                       gq_acc coef, __global const gq_acc *zi, int has_zi)     \
    {                                                                                          \
        ulong i = get_global_id(0);                                                            \
        if (i >= n)                                                                            \
            return;                                                                            \
        ulong r = i / len, t = i - r * len;                                                    \
        gq_acc xv = x[i];                                                                      \
        if (t) {                                                                               \
            y[i] = (T)(xv - coef * (gq_acc)x[i - 1]);                                          \
            return;                                                                            \
        }                                                                                      \
        gq_acc z;                                                                              \
        if (has_zi) {                                                                          \
            z = zi[r];                                                                         \
        } else {                                                                               \
            gq_acc x1 = len > 1 ? (gq_acc)x[i + 1] : xv;                                       \
            z = (gq_acc)2 * xv - x1;                                                           \
        }                                                                                      \
        y[i] = (T)(xv + z);                                                                    \
    }                                                                                          \
    __kernel void gq_dsp_preemph_zf_##SFX(__global const T *x, __global gq_acc *zf,            \
                                          ulong rows, ulong len, gq_acc coef,                  \
                                          __global const gq_acc *zi, int has_zi)               \
    {                                                                                          \
        ulong r = get_global_id(0);                                                            \
        if (r >= rows)                                                                         \
            return;                                                                            \
        if (len) {                                                                             \
            zf[r] = -coef * (gq_acc)x[r * len + len - 1];                                      \
        } else {                                                                               \
            zf[r] = has_zi ? zi[r] : 0;                                                        \
        }                                                                                      \
    }

/* ---- fir (direct) ---- */

/* Output j of the convolution (full index j0 + j) = sum_k hr[k] xp[j0 + j + k], xp the
 * row with K-1 zeros either side, taps reversed: k ascending, like the CPU's direct sum.
 * stream: every full output is computed (n = T + K - 1), zi added to the first K-1, the
 * first T go to y and the rest to zf. */
#define GQ_DSP_FIR(SFX, T)                                                                     \
    __kernel void gq_dsp_fir_##SFX(__global const T *x, __global const gq_acc *hr,             \
                                   __global T *y, ulong total, ulong len, ulong K, ulong j0,   \
                                   ulong n, int stream, __global const gq_acc *zi, int has_zi, \
                                   __global gq_acc *zf, __global const int *fin, int masked)   \
    {                                                                                          \
        ulong o = get_global_id(0);                                                            \
        if (o >= total)                                                                        \
            return;                                                                            \
        ulong r = o / n, j = o - r * n;                                                        \
        if (masked && fin[r]) /* the row went through overlap-save */                         \
            return;                                                                            \
        long base = (long)(j0 + j) - (long)(K - 1);                                            \
        __global const T *xr = x + r * len;                                                    \
        long k0 = base < 0 ? -base : 0, k1 = (long)len - base;                                 \
        if (k1 > (long)K)                                                                      \
            k1 = (long)K;                                                                      \
        gq_acc acc = 0;                                                                        \
        for (long k = 0; k < k0 && k < (long)K; k++)                                           \
            acc += hr[k] * (gq_acc)0;                                                          \
        for (long k = k0; k < k1; k++)                                                         \
            acc += hr[k] * (gq_acc)xr[base + k];                                               \
        for (long k = k1 > k0 ? k1 : k0; k < (long)K; k++)                                     \
            acc += hr[k] * (gq_acc)0;                                                          \
        if (!stream) {                                                                         \
            y[o] = (T)acc;                                                                     \
            return;                                                                            \
        }                                                                                      \
        if (has_zi && j < K - 1)                                                               \
            acc += zi[r * (K - 1) + j];                                                        \
        if (j < len)                                                                           \
            y[r * len + j] = (T)acc;                                                           \
        else                                                                                   \
            zf[r * (K - 1) + (j - len)] = acc;                                                 \
    }

/* fin[r] = 1 when row r of x holds only finite values (x - x is 0), one work-group per
 * row: rows holding NaN or Inf take the direct sum, as on the CPU (an FFT block would
 * spread them over the whole block). */
#define GQ_DSP_FINITE(SFX, T)                                                                  \
    __kernel void gq_dsp_finite_##SFX(__global const T *x, __global int *fin, ulong len)       \
    {                                                                                          \
        __local int badp[GQ_DSP_LOCAL_MAX];                                                    \
        size_t l = get_local_id(0), L = get_local_size(0);                                     \
        ulong r = get_group_id(0);                                                             \
        int bad = 0;                                                                           \
        for (ulong i = l; i < len; i += L) {                                                   \
            T v = x[r * len + i];                                                              \
            bad |= (v - v) != 0 || isnan(v - v);                                               \
        }                                                                                      \
        badp[l] = bad;                                                                         \
        barrier(CLK_LOCAL_MEM_FENCE);                                                          \
        for (size_t s = L / 2; s > 0; s /= 2) {                                                \
            if (l < s)                                                                         \
                badp[l] |= badp[l + s];                                                        \
            barrier(CLK_LOCAL_MEM_FENCE);                                                      \
        }                                                                                      \
        if (l == 0)                                                                            \
            fin[r] = !badp[0];                                                                 \
    }

/* Overlap-save in double (like the CPU's; devices with fp64 only): segments of N samples
 * starting first + b step (first = j0 - (K-1)) as complex rows [rows * nb, N]; after the
 * transforms, output j of a row is the real part of sample K-1 + (j - b step) of block
 * b = j / step, then the same stream handling as the direct kernel. */
#ifdef GQ_FP64
#define GQ_DSP_OLS(SFX, T)                                                                     \
    __kernel void gq_dsp_ols_seg_##SFX(__global const T *x, __global double2 *s, ulong len,    \
                                       ulong N, ulong nb, ulong step, long first, ulong total) \
    {                                                                                          \
        ulong o = get_global_id(0);                                                            \
        if (o >= total)                                                                        \
            return;                                                                            \
        ulong row = o / N, i = o - row * N, r = row / nb, b = row - r * nb;                    \
        long p = first + (long)(b * step) + (long)i;                                           \
        double v = p >= 0 && p < (long)len ? (double)x[r * len + (ulong)p] : 0;                \
        s[o] = (double2)(v, 0);                                                                \
    }                                                                                          \
    __kernel void gq_dsp_ols_out_##SFX(__global const double2 *s, __global T *y, ulong total,  \
                                       ulong len, ulong K, ulong n, ulong N, ulong nb,         \
                                       ulong step, int stream, __global const double *zi,      \
                                       int has_zi, __global double *zf)                        \
    {                                                                                          \
        ulong o = get_global_id(0);                                                            \
        if (o >= total)                                                                        \
            return;                                                                            \
        ulong r = o / n, j = o - r * n, b = j / step;                                          \
        double acc = s[(r * nb + b) * N + K - 1 + (j - b * step)].x;                           \
        if (!stream) {                                                                         \
            y[o] = (T)acc;                                                                     \
            return;                                                                            \
        }                                                                                      \
        if (has_zi && j < K - 1)                                                               \
            acc += zi[r * (K - 1) + j];                                                        \
        if (j < len)                                                                           \
            y[r * len + j] = (T)acc;                                                           \
        else                                                                                   \
            zf[r * (K - 1) + (j - len)] = acc;                                                 \
    }
GQ_DSP_OLS(f32, float)
GQ_DSP_OLS(f64, double)
#endif

/* ---- sos, lfilter: one work-item per row, state in registers ---- */

#define GQ_SOS_MAX 16
#define GQ_LF_MAX 32

/* Coefficients c: per section b0 b1 b2 a0 a1 a2, already divided by a0 (host). State
 * z [rows, ns, 2]. Samples go through every section in turn: each section sees the same
 * values in the same order as the CPU's section-by-section pass. */
#define GQ_DSP_SOS(SFX, T)                                                                     \
    __kernel void gq_dsp_sos_##SFX(__global const T *x, __global T *y, ulong rows, ulong len,  \
                                   int ns, __global const gq_acc *c,                           \
                                   __global const gq_acc *zi, int has_zi, __global gq_acc *zf, \
                                   int has_zf)                                                 \
    {                                                                                          \
        ulong r = get_global_id(0);                                                            \
        if (r >= rows)                                                                         \
            return;                                                                            \
        gq_acc z[2 * GQ_SOS_MAX];                                                              \
        for (int i = 0; i < 2 * ns; i++)                                                       \
            z[i] = has_zi ? zi[r * 2 * ns + i] : 0;                                            \
        __global const T *xr = x + r * len;                                                    \
        __global T *yr = y + r * len;                                                          \
        for (ulong t = 0; t < len; t++) {                                                      \
            gq_acc v = xr[t];                                                                  \
            for (int s = 0; s < ns; s++) {                                                     \
                __global const gq_acc *q = c + 6 * s;                                          \
                gq_acc o = q[0] * v + z[2 * s];                                                \
                z[2 * s] = q[1] * v - q[4] * o + z[2 * s + 1];                                 \
                z[2 * s + 1] = q[2] * v - q[5] * o;                                            \
                v = o;                                                                         \
            }                                                                                  \
            yr[t] = (T)v;                                                                      \
        }                                                                                      \
        if (has_zf)                                                                            \
            for (int i = 0; i < 2 * ns; i++)                                                   \
                zf[r * 2 * ns + i] = z[i];                                                     \
    }

/* Transposed direct form II; c = b[0..nc) then a[0..nc), divided by a[0]; fir: no
 * feedback (the a terms skipped like scipy, so an Inf does not become NaN). */
#define GQ_DSP_LFILTER(SFX, T)                                                                 \
    __kernel void gq_dsp_lfilter_##SFX(__global const T *x, __global T *y, ulong rows,          \
                                       ulong len, int nc, __global const gq_acc *c, int fir,   \
                                       __global const gq_acc *zi, int has_zi,                  \
                                       __global gq_acc *zf, int has_zf)                        \
    {                                                                                          \
        ulong r = get_global_id(0);                                                            \
        if (r >= rows)                                                                         \
            return;                                                                            \
        gq_acc z[GQ_LF_MAX];                                                                   \
        int nz = nc - 1;                                                                       \
        for (int i = 0; i < nz; i++)                                                           \
            z[i] = has_zi ? zi[r * nz + i] : 0;                                                \
        __global const gq_acc *b = c, *a = c + nc;                                             \
        __global const T *xr = x + r * len;                                                    \
        __global T *yr = y + r * len;                                                          \
        for (ulong t = 0; t < len; t++) {                                                      \
            gq_acc xv = xr[t];                                                                 \
            if (nc == 1) {                                                                     \
                yr[t] = (T)(xv * b[0]);                                                        \
                continue;                                                                      \
            }                                                                                  \
            gq_acc o = b[0] * xv + z[0];                                                       \
            if (fir) {                                                                         \
                for (int i = 0; i + 2 < nc; i++)                                               \
                    z[i] = b[i + 1] * xv + z[i + 1];                                           \
                z[nc - 2] = b[nc - 1] * xv;                                                    \
            } else {                                                                           \
                for (int i = 0; i + 2 < nc; i++)                                               \
                    z[i] = b[i + 1] * xv + z[i + 1] - a[i + 1] * o;                            \
                z[nc - 2] = b[nc - 1] * xv - a[nc - 1] * o;                                    \
            }                                                                                  \
            yr[t] = (T)o;                                                                      \
        }                                                                                      \
        if (has_zf)                                                                            \
            for (int i = 0; i < nz; i++)                                                       \
                zf[r * nz + i] = z[i];                                                         \
    }

/* State inputs given as f32: widened into gq_acc scratch. */
__kernel void gq_dsp_widen_f32(__global const float *x, __global gq_acc *y, ulong n)
{
    ulong i = get_global_id(0);
    if (i < n)
        y[i] = x[i];
}

#define GQ_DSP_ALL(SFX, T)                                                                     \
    GQ_DSP_GAIN(SFX, T)                                                                        \
    GQ_DSP_WINDOW(SFX, T)                                                                      \
    GQ_DSP_LEVEL(SFX, T)                                                                       \
    GQ_DSP_SCALE_GROUPS(SFX, T)                                                                \
    GQ_DSP_FRAME(SFX, T)                                                                       \
    GQ_DSP_OLA(SFX, T)                                                                         \
    GQ_DSP_PREEMPH(SFX, T)                                                                     \
    GQ_DSP_FIR(SFX, T)                                                                         \
    GQ_DSP_FINITE(SFX, T)                                                                      \
    GQ_DSP_SOS(SFX, T)                                                                         \
    GQ_DSP_LFILTER(SFX, T)

GQ_DSP_ALL(f32, float)
#ifdef GQ_FP64
GQ_DSP_ALL(f64, double)
#endif
