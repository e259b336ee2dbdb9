/* Kernels of dsp.mel, dsp.logmel, dsp.mfcc and dsp.resample (polyphase) (host side:
 * worker/opencl/cl_mel.c, cl_dsp.c). The power spectrogram and the dB pass are fft.cl's
 * (dsp.spectrogram, dsp.db); here are the sparse mel filterbank, the DCT and the polyphase
 * dot products. Sums run in the CPU reference's order (worker/cpu/cpu_dsp_mel.c,
 * cpu_dsp_resample.c), so that with fp64 the DCT and the resampler match it to the last
 * bit on the same inputs. gq_acc comes from dsp.cl (files are concatenated in name order). */

#pragma OPENCL FP_CONTRACT OFF

#define GQ_MEL_DEF(SFX, T)                                                                     \
    /* y[b, m, t] = sum over filter m's bins of w * p[b, lo + j, t]: p the power           \
     * spectrogram [batch, nfreq, nt], idx per filter (lo, cnt, off into w). Two         \
     * accumulators (even and odd j) for float, as the CPU's f32 path; one for double.  */ \
    __kernel void gq_dsp_mel_##SFX(__global const T *p, __global const uint *idx,              \
                                   __global const T *w, __global T *y, ulong nfreq, ulong nt,  \
                                   uint nm, ulong total)                                       \
    {                                                                                          \
        ulong it = get_global_id(0);                                                           \
        if (it >= total)                                                                       \
            return;                                                                            \
        ulong bm = it / nt, t = it - bm * nt, b = bm / nm;                                     \
        uint m = (uint)(bm - b * nm);                                                          \
        uint lo = idx[3 * m], cnt = idx[3 * m + 1], off = idx[3 * m + 2];                      \
        __global const T *pp = p + (b * nfreq + lo) * nt + t;                                  \
        __global const T *wm = w + off;                                                        \
        T a0 = 0, a1 = 0;                                                                      \
        uint j = 0;                                                                            \
        if (sizeof(T) == 4) {                                                                  \
            for (; j + 2 <= cnt; j += 2) {                                                     \
                a0 += wm[j] * pp[j * nt];                                                      \
                a1 += wm[j + 1] * pp[(j + 1) * nt];                                            \
            }                                                                                  \
        }                                                                                      \
        for (; j < cnt; j++)                                                                   \
            a0 += wm[j] * pp[j * nt];                                                          \
        y[it] = a0 + a1;                                                                       \
    }                                                                                          \
    /* y[b, k, t] = sum over m of d[k, m] lm[b, m, t] in gq_acc, in m order (the CPU's).   */ \
    __kernel void gq_dsp_dct_##SFX(__global const T *lm, __global const gq_acc *d,             \
                                   __global T *y, ulong nt, uint nm, uint nk, ulong total)     \
    {                                                                                          \
        ulong it = get_global_id(0);                                                           \
        if (it >= total)                                                                       \
            return;                                                                            \
        ulong bk = it / nt, t = it - bk * nt, b = bk / nk;                                     \
        uint k = (uint)(bk - b * nk);                                                          \
        __global const T *l = lm + b * nm * nt + t;                                            \
        __global const gq_acc *dk = d + k * nm;                                                \
        gq_acc acc = 0;                                                                        \
        for (uint m = 0; m < nm; m++)                                                          \
            acc += dk[m] * (gq_acc)l[m * nt];                                                  \
        y[it] = (T)acc;                                                                        \
    }                                                                                          \
    /* Output m of a row of T samples resampled by up/down: with t = m down + half_len,    \
     * phase t % up and n0 = t / up, the dot product of the phase's K reversed taps with   \
     * x[n0 - K + 1 .. n0] (zeros outside the row), in gq_acc in the CPU's gq_dsp_dot      \
     * order: four lanes over whole groups of four, (l0 + l2) + (l1 + l3), then the rest. */ \
    __kernel void gq_dsp_resample_##SFX(__global const T *x, __global const gq_acc *bank,      \
                                        __global T *y, ulong len, ulong ny, ulong up,          \
                                        ulong down, ulong hl, ulong K, ulong total)          \
    {                                                                                          \
        ulong it = get_global_id(0);                                                           \
        if (it >= total)                                                                       \
            return;                                                                            \
        ulong r = it / ny, m = it - r * ny, t = m * down + hl, n0 = t / up;                  \
        __global const gq_acc *h = bank + (t - n0 * up) * K;                                   \
        __global const T *xr = x + r * len;                                                    \
        long s0 = (long)n0 - (long)K + 1;                                                      \
        gq_acc l0 = 0, l1 = 0, l2 = 0, l3 = 0;                                                 \
        ulong i = 0;                                                                           \
        for (; i + 4 <= K; i += 4) {                                                           \
            long s = s0 + (long)i;                                                             \
            gq_acc x0 = s >= 0 && s < (long)len ? (gq_acc)xr[s] : 0;                           \
            gq_acc x1 = s + 1 >= 0 && s + 1 < (long)len ? (gq_acc)xr[s + 1] : 0;               \
            gq_acc x2 = s + 2 >= 0 && s + 2 < (long)len ? (gq_acc)xr[s + 2] : 0;               \
            gq_acc x3 = s + 3 >= 0 && s + 3 < (long)len ? (gq_acc)xr[s + 3] : 0;               \
            l0 += h[i] * x0;                                                                   \
            l1 += h[i + 1] * x1;                                                               \
            l2 += h[i + 2] * x2;                                                               \
            l3 += h[i + 3] * x3;                                                               \
        }                                                                                      \
        gq_acc acc = (l0 + l2) + (l1 + l3);                                                    \
        for (; i < K; i++) {                                                                   \
            long s = s0 + (long)i;                                                             \
            acc += h[i] * (s >= 0 && s < (long)len ? (gq_acc)xr[s] : 0);                       \
        }                                                                                      \
        y[it] = (T)acc;                                                                        \
    }

GQ_MEL_DEF(f32, float)
#ifdef GQ_FP64
GQ_MEL_DEF(f64, double)
#endif
