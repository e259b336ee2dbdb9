/* FFT kernels and the spectral ops built on them (host side: worker/opencl/cl_fft.c).
 *
 * Complex-to-complex transforms of power-of-two length are Stockham autosort passes (the
 * work-group kernels: radix 4, one radix-2 pass first when log2 n is odd; the row kernel:
 * radix 8 after one radix-2 or 4 pass): pass p reads v[r] = in[j + r n/R],
 * twiddles by w^(r k) with k = j mod Ns, does an R-point DFT and writes out[(j / Ns) Ns R
 * + k + r Ns], Ns the product of the earlier radices. Rows that fit twice in local memory
 * run every pass in one work-group (gq_dsp_fft_local); longer ones a launch per pass
 * (gq_dsp_fft_pass). Other lengths go through Bluestein's chirp-z (host: a power-of-two
 * convolution of the chirped row). Twiddles come from a host table tw[m] = exp(-2 pi i m / n)
 * computed in double; dir is -1 forward, +1 inverse (the table conjugated). Semantics of
 * the ops (numpy.fft, librosa): docs/dsp-spectral.md. Uses gq_acc and GQ_DSP_LOCAL_MAX of
 * dsp.cl (the files are concatenated in name order). */

/* 4-point DFT in place on scalars a b c d (outputs X0 X1 X2 X3 in a b c d); fs = 1
 * forward (rotation by -i), -1 inverse. */
#define GQ_BF4(C, a, b, c, d, fs)                                                              \
    {                                                                                          \
        C s02_ = a + c, d02_ = a - c, s13_ = b + d, d13_ = b - d;                              \
        C rt_ = (C)(fs * d13_.y, -fs * d13_.x);                                                \
        a = s02_ + s13_;                                                                       \
        c = s02_ - s13_;                                                                       \
        b = d02_ + rt_;                                                                        \
        d = d02_ - rt_;                                                                        \
    }
/* v *= w (table value, conjugated for fs = -1). */
#define GQ_TWID(SFX, C, v, wt, fs)                                                             \
    {                                                                                          \
        C w_ = wt;                                                                             \
        w_.y *= fs;                                                                            \
        v = gq_cmul_##SFX(v, w_);                                                              \
    }

#define GQ_FFT_DEF(SFX, T, C)                                                                  \
    C gq_cmul_##SFX(C a, C b)                                                           \
    {                                                                                          \
        return (C)(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);                              \
    }                                                                                          \
    /* w^m for the pass's table and direction. */                                            \
    C gq_tw_##SFX(__global const C *tw, uint m, int dir)                                \
    {                                                                                          \
        C w = tw[m];                                                                           \
        return dir < 0 ? w : (C)(w.x, -w.y);                                                   \
    }                                                                                          \
    /* One Stockham butterfly of radix R (2 or 4) on v, twiddled first; m = table stride of  \
     * this pass (n / (Ns R)). */                                                            \
    void gq_bfly_##SFX(C *v, int R, uint k, uint m, __global const C *tw, int dir)      \
    {                                                                                          \
        for (int r = 1; r < R; r++)                                                            \
            if (k)                                                                             \
                v[r] = gq_cmul_##SFX(v[r], gq_tw_##SFX(tw, (uint)r * k * m, dir));             \
        if (R == 2) {                                                                          \
            C a = v[0], b = v[1];                                                              \
            v[0] = a + b;                                                                      \
            v[1] = a - b;                                                                      \
            return;                                                                            \
        }                                                                                      \
        C s02 = v[0] + v[2], d02 = v[0] - v[2], s13 = v[1] + v[3], d13 = v[1] - v[3];          \
        /* d13 times -i (forward) or +i (inverse) */                                         \
        C rot = dir < 0 ? (C)(d13.y, -d13.x) : (C)(-d13.y, d13.x);                             \
        v[0] = s02 + s13;                                                                      \
        v[1] = d02 + rot;                                                                      \
        v[2] = s02 - s13;                                                                      \
        v[3] = d02 - rot;                                                                      \
    }                                                                                          \
    /* A whole transform per work-group: row g of src (stride n) to row g of dst, passes    \
     * ping-ponging in loc (2 n complex); the last pass scales by scale. n >= 2. */          \
    __kernel void gq_dsp_fft_local_##SFX(__global const C *src, __global C *dst,               \
                                         __global const C *tw, uint n, int lg, int dir,        \
                                         T scale, ulong rows, __local C *loc)                  \
    {                                                                                          \
        size_t lid = get_local_id(0), L = get_local_size(0);                                   \
        for (ulong g = get_group_id(0); g < rows; g += get_num_groups(0)) {                    \
            __global const C *in = src + g * n;                                                \
            __global C *out = dst + g * n;                                                     \
            int npass = (lg + 1) / 2, cur = 0;                                                 \
            uint Ns = 1;                                                                       \
            for (int p = 0; p < npass; p++) {                                                  \
                int R = (p == 0 && (lg & 1)) ? 2 : 4;                                          \
                uint NR = n / (uint)R, m = n / (Ns * (uint)R);                                 \
                bool first = p == 0, last = p == npass - 1;                                    \
                __local C *rd = loc + (cur ? n : 0), *wr = loc + (cur ? 0 : n);                \
                for (uint j = (uint)lid; j < NR; j += (uint)L) {                               \
                    C v[4];                                                                    \
                    for (int r = 0; r < R; r++)                                                \
                        v[r] = first ? in[j + (uint)r * NR] : rd[j + (uint)r * NR];            \
                    uint k = j % Ns;                                                           \
                    gq_bfly_##SFX(v, R, k, m, tw, dir);                                        \
                    uint o = (j / Ns) * Ns * (uint)R + k;                                      \
                    for (int r = 0; r < R; r++) {                                              \
                        if (last)                                                              \
                            out[o + (uint)r * Ns] = scale == (T)1 ? v[r] : v[r] * scale;       \
                        else                                                                   \
                            wr[o + (uint)r * Ns] = v[r];                                       \
                    }                                                                          \
                }                                                                              \
                barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);                           \
                Ns *= (uint)R;                                                                 \
                cur ^= 1;                                                                      \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
    /* A whole transform per work-item (CPU devices: no barriers, each row's passes stay in \
     * cache), ping-ponging between dst and tmp so that the last pass lands in dst: radix 8 \
     * (fewer passes over the row), after one radix-2 or radix-4 pass when 3 does not divide \
     * log2 n. The butterflies are written out in scalars (a helper taking arrays is 4x      \
     * slower on PoCL). fs = 1 forward, -1 inverse (conjugate twiddles, +i rotations). */    \
    __kernel void gq_dsp_fft_rows_##SFX(__global const C *src, __global C *dst,                \
                                        __global C *tmp, __global const C *tw, uint n, int lg, \
                                        int dir, T scale, ulong rows)                          \
    {                                                                                          \
        ulong g = get_global_id(0);                                                            \
        if (g >= rows)                                                                         \
            return;                                                                            \
        int r0 = lg % 3, npass = lg / 3 + (r0 ? 1 : 0);                                        \
        T fs = dir < 0 ? (T)1 : (T)-1, c8 = (T)0.70710678118654752440;                         \
        uint Ns = 1;                                                                           \
        __global const C *a = src + g * n;                                                     \
        __global C *b = dst + g * n;                                                           \
        for (int p = 0; p < npass; p++) {                                                      \
            int R = (p == 0 && r0) ? 1 << r0 : 8;                                              \
            b = ((npass - 1 - p) % 2 == 0 ? dst : tmp) + g * n;                                \
            uint NR = n / (uint)R, m = n / (Ns * (uint)R);                                     \
            if (R == 2) { /* first pass: Ns = 1, no twiddles */                                \
                for (uint j = 0; j < NR; j++) {                                                \
                    C v0 = a[j], v1 = a[j + NR];                                               \
                    b[2 * j] = v0 + v1;                                                        \
                    b[2 * j + 1] = v0 - v1;                                                    \
                }                                                                              \
            } else if (R == 4) {                                                               \
                for (uint j = 0; j < NR; j++) {                                                \
                    C v0 = a[j], v1 = a[j + NR], v2 = a[j + 2 * NR], v3 = a[j + 3 * NR];       \
                    GQ_BF4(C, v0, v1, v2, v3, fs);                                             \
                    b[4 * j] = v0;                                                             \
                    b[4 * j + 1] = v1;                                                         \
                    b[4 * j + 2] = v2;                                                         \
                    b[4 * j + 3] = v3;                                                         \
                }                                                                              \
            } else {                                                                           \
                for (uint q = 0; q < NR / Ns; q++)                                             \
                    for (uint k = 0; k < Ns; k++) {                                            \
                        uint j = q * Ns + k;                                                   \
                        C v0 = a[j], v1 = a[j + NR], v2 = a[j + 2 * NR], v3 = a[j + 3 * NR];   \
                        C v4 = a[j + 4 * NR], v5 = a[j + 5 * NR], v6 = a[j + 6 * NR];          \
                        C v7 = a[j + 7 * NR];                                                  \
                        if (k) {                                                               \
                            uint km = k * m;                                                   \
                            GQ_TWID(SFX, C, v1, tw[km], fs);                                   \
                            GQ_TWID(SFX, C, v2, tw[2 * km], fs);                               \
                            GQ_TWID(SFX, C, v3, tw[3 * km], fs);                               \
                            GQ_TWID(SFX, C, v4, tw[4 * km], fs);                               \
                            GQ_TWID(SFX, C, v5, tw[5 * km], fs);                               \
                            GQ_TWID(SFX, C, v6, tw[6 * km], fs);                               \
                            GQ_TWID(SFX, C, v7, tw[7 * km], fs);                               \
                        }                                                                      \
                        GQ_BF4(C, v0, v2, v4, v6, fs);                                         \
                        GQ_BF4(C, v1, v3, v5, v7, fs);                                         \
                        v3 = (C)(c8 * (v3.x + fs * v3.y), c8 * (v3.y - fs * v3.x));            \
                        v5 = (C)(fs * v5.y, -fs * v5.x);                                       \
                        v7 = (C)(c8 * (fs * v7.y - v7.x), -c8 * (fs * v7.x + v7.y));           \
                        uint o = q * Ns * 8 + k;                                               \
                        b[o] = v0 + v1;                                                        \
                        b[o + 4 * Ns] = v0 - v1;                                               \
                        b[o + Ns] = v2 + v3;                                                   \
                        b[o + 5 * Ns] = v2 - v3;                                               \
                        b[o + 2 * Ns] = v4 + v5;                                               \
                        b[o + 6 * Ns] = v4 - v5;                                               \
                        b[o + 3 * Ns] = v6 + v7;                                               \
                        b[o + 7 * Ns] = v6 - v7;                                               \
                    }                                                                          \
            }                                                                                  \
            a = b;                                                                             \
            Ns *= (uint)R;                                                                     \
        }                                                                                      \
        if (scale != (T)1)                                                                     \
            for (uint j = 0; j < n; j++)                                                       \
                b[j] *= scale;                                                                 \
    }                                                                                          \
    /* One pass over every row: item = row * (n / R) + j. */                                 \
    __kernel void gq_dsp_fft_pass_##SFX(__global const C *src, __global C *dst,                \
                                        __global const C *tw, uint n, uint Ns, int R, int dir, \
                                        T scale, ulong total)                                  \
    {                                                                                          \
        ulong it = get_global_id(0);                                                           \
        if (it >= total)                                                                       \
            return;                                                                            \
        uint NR = n / (uint)R, m = n / (Ns * (uint)R);                                         \
        ulong g = it / NR;                                                                     \
        uint j = (uint)(it - g * NR);                                                          \
        __global const C *in = src + g * n;                                                    \
        __global C *out = dst + g * n;                                                         \
        C v[4];                                                                                \
        for (int r = 0; r < R; r++)                                                            \
            v[r] = in[j + (uint)r * NR];                                                       \
        uint k = j % Ns;                                                                       \
        gq_bfly_##SFX(v, R, k, m, tw, dir);                                                    \
        uint o = (j / Ns) * Ns * (uint)R + k;                                                  \
        for (int r = 0; r < R; r++)                                                            \
            out[o + (uint)r * Ns] = scale == (T)1 ? v[r] : v[r] * scale;                       \
    }                                                                                          \
    /* Rows of a real or complex input (row length m) into complex rows of n: cropped or     \
     * zero-padded (fft, rfft); herm: the n/2+1 bins extended to the whole Hermitian        \
     * spectrum, imaginary parts of DC and (even n) Nyquist dropped (irfft). */              \
    __kernel void gq_dsp_fft_load_##SFX(__global const T *src, int cplx, ulong m,              \
                                        __global C *dst, ulong n, ulong total, int herm)       \
    {                                                                                          \
        ulong it = get_global_id(0);                                                           \
        if (it >= total)                                                                       \
            return;                                                                            \
        ulong r = it / n, k = it - r * n, s = k;                                               \
        bool conj = false;                                                                     \
        if (herm && k > n / 2) {                                                               \
            s = n - k;                                                                         \
            conj = true;                                                                       \
        }                                                                                      \
        C v = (C)(0, 0);                                                                       \
        if (s < m) {                                                                           \
            __global const T *row = src + r * m * (cplx ? 2 : 1);                              \
            v = cplx ? (C)(row[2 * s], row[2 * s + 1]) : (C)(row[s], 0);                       \
        }                                                                                      \
        if (herm && (s == 0 || 2 * s == n))                                                    \
            v.y = 0;                                                                           \
        dst[it] = conj ? (C)(v.x, -v.y) : v;                                                   \
    }                                                                                          \
    /* The first dl values of each complex row of sl (times scale): complex out (mode 0),    \
     * the real parts (1), or the half spectrum of a real row (2: the DC and Nyquist bins'    \
     * imaginary parts are 0, as a real transform gives them). */                            \
    __kernel void gq_dsp_fft_store_##SFX(__global const C *src, ulong sl, __global T *dst,     \
                                         ulong dl, ulong total, int mode, T scale)             \
    {                                                                                          \
        ulong it = get_global_id(0);                                                           \
        if (it >= total)                                                                       \
            return;                                                                            \
        ulong r = it / dl, k = it - r * dl;                                                    \
        C v = src[r * sl + k];                                                                 \
        if (mode == 2 && (k == 0 || 2 * k == sl))                                              \
            v.y = 0;                                                                           \
        if (scale != (T)1)                                                                     \
            v *= scale;                                                                        \
        if (mode == 1) {                                                                       \
            dst[it] = v.x;                                                                     \
        } else {                                                                               \
            dst[2 * it] = v.x;                                                                 \
            dst[2 * it + 1] = v.y;                                                             \
        }                                                                                      \
    }                                                                                          \
    /* Bluestein: dst[r, k] = src[r, k] w[k] scale for k < n, 0 up to dl. */                  \
    __kernel void gq_dsp_chirp_mul_##SFX(__global const C *src, ulong sl, __global C *dst,     \
                                         ulong dl, __global const C *w, ulong n, ulong total,  \
                                         T scale)                                              \
    {                                                                                          \
        ulong it = get_global_id(0);                                                           \
        if (it >= total)                                                                       \
            return;                                                                            \
        ulong r = it / dl, k = it - r * dl;                                                    \
        C v = (C)(0, 0);                                                                       \
        if (k < n) {                                                                           \
            v = gq_cmul_##SFX(src[r * sl + k], w[k]);                                          \
            if (scale != (T)1)                                                                 \
                v *= scale;                                                                    \
        }                                                                                      \
        dst[it] = v;                                                                           \
    }                                                                                          \
    /* x[r, k] *= b[k]: the chirp's spectrum, n per row. */                                  \
    __kernel void gq_dsp_spec_mul_##SFX(__global C *x, __global const C *b, ulong n,           \
                                        ulong total)                                           \
    {                                                                                          \
        ulong it = get_global_id(0);                                                           \
        if (it < total)                                                                        \
            x[it] = gq_cmul_##SFX(x[it], b[it % n]);                                           \
    }

GQ_FFT_DEF(f32, float, float2)
#ifdef GQ_FP64
GQ_FFT_DEF(f64, double, double2)
#endif

/* ---- STFT ---- */

/* numpy.pad(mode='reflect') index of a position i outside a signal of len samples. */
long gq_reflect(long i, long len)
{
    if (len == 1)
        return 0;
    long period = 2 * (len - 1);
    i %= period;
    if (i < 0)
        i += period;
    return i < len ? i : period - i;
}

/* Frames of the padded signal, windowed, one work-item per frame (row = b * nt + t): frame
 * t of signal b starts at sample t hop - pad; w is the window centred in n_fft (zeros
 * outside [wlo, whi)), in the signal's precision like the CPU framer's. Written as complex
 * rows of n_fft (re = sample), or with pairs (even n_fft) as rows of n_fft/2 holding sample
 * pairs (re = even, im = odd sample) for a half-length transform. */
#define GQ_STFT_DEF(SFX, T, C)                                                                 \
    T gq_frame_at_##SFX(__global const T *xb, long i, ulong len, int reflect)                  \
    {                                                                                          \
        if (i >= 0 && i < (long)len)                                                           \
            return xb[i];                                                                      \
        return reflect ? xb[gq_reflect(i, (long)len)] : (T)0;                                  \
    }                                                                                          \
    __kernel void gq_dsp_stft_frames_##SFX(__global const T *x, __global const T *w,           \
                                           __global C *dst, ulong len, ulong nfft, ulong nt,   \
                                           ulong hop, ulong pad, ulong wlo, ulong whi,         \
                                           int reflect, ulong rows, int pairs)                  \
    {                                                                                          \
        ulong row = get_global_id(0);                                                          \
        if (row >= rows)                                                                       \
            return;                                                                            \
        ulong b = row / nt, t = row - b * nt;                                                  \
        __global const T *xb = x + b * len;                                                    \
        long s0 = (long)(t * hop) - (long)pad;                                                 \
        bool inside = s0 + (long)wlo >= 0 && s0 + (long)whi <= (long)len;                      \
        __global T *d = (__global T *)(dst + row * (pairs ? nfft / 2 : nfft));                  \
        for (ulong j = 0; j < nfft; j++) {                                                     \
            T v = 0;                                                                           \
            if (j >= wlo && j < whi)                                                           \
                v = w[j] * (inside ? xb[s0 + (long)j] : gq_frame_at_##SFX(xb, s0 + (long)j,   \
                                                                          len, reflect));      \
            if (pairs) {                                                                        \
                d[j] = v;                                                                      \
            } else {                                                                           \
                d[2 * j] = v;                                                                  \
                d[2 * j + 1] = 0;                                                              \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
    /* Bin k (0 <= k <= n/2) of frame row's real spectrum: from a full transform, or (pairs)  \
     * split from the half-length transform Z of the sample pairs: X[k] = E + w^k O with    \
     * E = (Z[k] + conj Z[h-k]) / 2, O = (Z[k] - conj Z[h-k]) / 2i, indices mod h = n/2. */   \
    C gq_real_bin_##SFX(__global const C *spec, __global const C *tw, ulong row, ulong nfft,   \
                        ulong k, int pairs)                                                     \
    {                                                                                          \
        if (!pairs)                                                                             \
            return spec[row * nfft + k];                                                       \
        ulong h = nfft / 2;                                                                    \
        __global const C *z = spec + row * h;                                                  \
        C zk = z[k == h ? 0 : k], zm = z[k == 0 || k == h ? 0 : h - k];                        \
        zm.y = -zm.y;                                                                          \
        C e = (zk + zm) * (T)0.5, d = (zk - zm) * (T)0.5;                                      \
        C o = (C)(d.y, -d.x);                                                                  \
        return e + gq_cmul_##SFX(tw[k], o);                                                    \
    }                                                                                          \
    /* rfft of even n by a transform of n/2: row r of the real input (m samples, cropped or \
     * zero-padded to n) as n/2 sample pairs. */                                            \
    __kernel void gq_dsp_rfft_pairs_##SFX(__global const T *src, ulong m, __global C *dst,     \
                                          ulong h, ulong total)                                \
    {                                                                                          \
        ulong it = get_global_id(0);                                                           \
        if (it >= total)                                                                       \
            return;                                                                            \
        ulong r = it / h, q = it - r * h;                                                      \
        __global const T *row = src + r * m;                                                   \
        dst[it] = (C)(2 * q < m ? row[2 * q] : (T)0, 2 * q + 1 < m ? row[2 * q + 1] : (T)0);   \
    }                                                                                          \
    /* ... and the n/2+1 bins split from it (times scale). */                                \
    __kernel void gq_dsp_rfft_split_##SFX(__global const C *spec, __global const C *tw,        \
                                          __global T *dst, ulong nfft, ulong total, T scale)   \
    {                                                                                          \
        ulong it = get_global_id(0);                                                           \
        if (it >= total)                                                                       \
            return;                                                                            \
        ulong nb = nfft / 2 + 1, r = it / nb, k = it - r * nb;                                 \
        C v = gq_real_bin_##SFX(spec, tw, r, nfft, k, 1);                                      \
        if (k == 0 || k == nb - 1)                                                             \
            v.y = 0;                                                                           \
        if (scale != (T)1)                                                                     \
            v *= scale;                                                                        \
        dst[2 * it] = v.x;                                                                     \
        dst[2 * it + 1] = v.y;                                                                 \
    }                                                                                          \
    /* irfft of even n by an inverse transform of h = n/2: Z[k] = E + i O with E = X[k] +    \
     * conj X[h-k], O = (X[k] - conj X[h-k]) e^(2 pi i k / n), whose inverse holds the even  \
     * samples in its real parts and the odd ones in its imaginary parts. X: the input bins  \
     * (real or complex, cropped or zero-padded), DC and Nyquist imaginary parts dropped. */  \
    C gq_irfft_bin_##SFX(__global const T *row, int cplx, ulong m, ulong j, ulong h)           \
    {                                                                                          \
        C v = (C)(0, 0);                                                                       \
        if (j < m)                                                                             \
            v = cplx ? (C)(row[2 * j], row[2 * j + 1]) : (C)(row[j], 0);                       \
        if (j == 0 || j == h)                                                                  \
            v.y = 0;                                                                           \
        return v;                                                                              \
    }                                                                                          \
    __kernel void gq_dsp_irfft_pack_##SFX(__global const T *src, int cplx, ulong m,            \
                                          __global const C *tw, __global C *dst, ulong nfft,   \
                                          ulong total)                                         \
    {                                                                                          \
        ulong it = get_global_id(0);                                                           \
        if (it >= total)                                                                       \
            return;                                                                            \
        ulong h = nfft / 2, r = it / h, k = it - r * h;                                        \
        __global const T *row = src + r * m * (cplx ? 2 : 1);                                  \
        C a = gq_irfft_bin_##SFX(row, cplx, m, k, h);                                          \
        C b = gq_irfft_bin_##SFX(row, cplx, m, h - k, h);                                      \
        b.y = -b.y;                                                                            \
        C w = tw[k];                                                                           \
        w.y = -w.y;                                                                            \
        C e = a + b, o = gq_cmul_##SFX(a - b, w);                                              \
        dst[it] = (C)(e.x - o.y, e.y + o.x);                                                   \
    }                                                                                          \
    /* Spectra of frames [batch * nt] to [batch, nfreq, nt], one work-item per frame (reads \
     * its spectrum in order): complex (kind 0), |X|^2 (kind 1, power 2) or |X|^power in    \
     * gq_acc (kind 2). Bins past n/2 are the conjugates of the first half; the DC and      \
     * Nyquist bins' imaginary parts are 0, as the CPU's real transform gives them. */       \
    __kernel void gq_dsp_stft_out_##SFX(__global const C *spec, __global const C *tw,          \
                                        __global T *y, ulong nfft, ulong nfreq, ulong nt,      \
                                        int kind, gq_acc power, ulong rows, int pairs)         \
    {                                                                                          \
        ulong row = get_global_id(0);                                                          \
        if (row >= rows)                                                                       \
            return;                                                                            \
        ulong b = row / nt, t = row - b * nt;                                                  \
        for (ulong k = 0; k < nfreq; k++) {                                                    \
            bool conj = k > nfft / 2;                                                          \
            ulong hb = conj ? nfft - k : k;                                                    \
            C v = gq_real_bin_##SFX(spec, tw, row, nfft, hb, pairs);                           \
            if (conj)                                                                          \
                v.y = -v.y;                                                                    \
            if (hb == 0 || 2 * hb == nfft)                                                     \
                v.y = 0;                                                                       \
            ulong it = (b * nfreq + k) * nt + t;                                               \
            if (kind == 0) {                                                                   \
                y[2 * it] = v.x;                                                               \
                y[2 * it + 1] = v.y;                                                           \
            } else if (kind == 1) {                                                            \
                y[it] = v.x * v.x + v.y * v.y;                                                 \
            } else {                                                                           \
                gq_acc mag = sqrt((gq_acc)v.x * v.x + (gq_acc)v.y * v.y);                      \
                y[it] = (T)(power == 1 ? mag : pow(mag, power));                               \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
    /* iSTFT input: frame t's bins (input [batch, nin, nt]) as a complex row of nfft for an  \
     * inverse transform; onesided: Hermitian extension of the first used bins; else the     \
     * first used bins as they are. */                                                       \
    __kernel void gq_dsp_istft_in_##SFX(__global const T *x, __global C *dst, ulong nin,       \
                                        ulong nt, ulong nfft, ulong used, int onesided,        \
                                        ulong total)                                           \
    {                                                                                          \
        ulong it = get_global_id(0);                                                           \
        if (it >= total)                                                                       \
            return;                                                                            \
        ulong row = it / nfft, k = it - row * nfft, b = row / nt, t = row - b * nt, s = k;     \
        bool conj = false;                                                                     \
        if (onesided && k > nfft / 2) {                                                        \
            s = nfft - k;                                                                      \
            conj = true;                                                                       \
        }                                                                                      \
        C v = (C)(0, 0);                                                                       \
        if (s < used) {                                                                        \
            ulong e = (b * nin + s) * nt + t;                                                  \
            v = (C)(x[2 * e], x[2 * e + 1]);                                                   \
        }                                                                                      \
        if (onesided && (s == 0 || 2 * s == nfft))                                             \
            v.y = 0;                                                                           \
        dst[it] = conj ? (C)(v.x, -v.y) : v;                                                   \
    }                                                                                          \
    /* Output sample i of signal b: the frames covering p = start + i, in frame order, each  \
     * frame's real part times scale times the window (in gq_acc, like the CPU's double     \
     * sums), divided by the summed squared window where that exceeds tiny. w: win_length   \
     * values in gq_acc. */                                                                  \
    __kernel void gq_dsp_istft_ola_##SFX(__global const C *fr, __global const gq_acc *w,       \
                                         __global T *y, ulong len, ulong nfft, ulong nt,       \
                                         ulong hop, ulong start, ulong keep, ulong wlo,        \
                                         ulong whi, gq_acc scale, gq_acc tiny, ulong total)    \
    {                                                                                          \
        ulong it = get_global_id(0);                                                           \
        if (it >= total)                                                                       \
            return;                                                                            \
        ulong b = it / len, p = it - b * len + start;                                          \
        if (p >= keep) {                                                                       \
            y[it] = 0;                                                                         \
            return;                                                                            \
        }                                                                                      \
        gq_acc acc = 0, wss = 0;                                                               \
        ulong t0 = p >= whi ? (p - whi) / hop + 1 : 0;                                         \
        for (ulong t = t0; t < nt && t * hop + wlo <= p; t++) {                                \
            ulong j = p - t * hop;                                                             \
            if (j < wlo || j >= whi)                                                           \
                continue;                                                                      \
            gq_acc wj = w[j - wlo];                                                            \
            wss += wj * wj;                                                                    \
            acc += (gq_acc)fr[(b * nt + t) * nfft + j].x * scale * wj;                         \
        }                                                                                      \
        y[it] = (T)(wss > tiny ? acc / wss : acc);                                             \
    }

GQ_STFT_DEF(f32, float, float2)
#ifdef GQ_FP64
GQ_STFT_DEF(f64, double, double2)
#endif

/* ---- dsp.db ---- */

/* mode: 0 power_to_db, 1 amplitude_to_db (of x^2, amin and ref already squared by the
 * host), 2 db_to_power, 3 db_to_amplitude. The per-group constants (ref in dB and the
 * floor) come from gq_dsp_db_max: c[2 g] = ref_db, c[2 g + 1] = floor (-inf: none; NaN:
 * the group's maximum was NaN). */
#define GQ_DB_DEF(SFX, T)                                                                      \
    T gq_db_val_##SFX(T x, int mode, gq_acc amin)                                       \
    {                                                                                          \
        T v = mode == 1 ? x * x : x;                                                           \
        gq_acc a = (gq_acc)v < amin ? amin : (gq_acc)v;                                        \
        return (T)((gq_acc)10 * log10(a));                                                     \
    }                                                                                          \
    __kernel void gq_dsp_db_max_##SFX(__global const T *x, __global gq_acc *c, ulong group,    \
                                      int mode, gq_acc amin, gq_acc ref, int ref_max,          \
                                      gq_acc top_db)                                           \
    {                                                                                          \
        __local gq_acc part[GQ_DSP_LOCAL_MAX];                                                 \
        __local int nanp[GQ_DSP_LOCAL_MAX];                                                    \
        size_t l = get_local_id(0), L = get_local_size(0);                                     \
        ulong g = get_group_id(0);                                                             \
        gq_acc mx = -INFINITY;                                                                 \
        int nan = 0;                                                                           \
        for (ulong i = l; i < group; i += L) {                                                 \
            T v = gq_db_val_##SFX(x[g * group + i], mode, amin);                               \
            nan |= isnan(v);                                                                   \
            mx = (gq_acc)v > mx ? (gq_acc)v : mx;                                              \
        }                                                                                      \
        part[l] = mx;                                                                          \
        nanp[l] = nan;                                                                         \
        barrier(CLK_LOCAL_MEM_FENCE);                                                          \
        for (size_t s = L / 2; s > 0; s /= 2) {                                                \
            if (l < s) {                                                                       \
                part[l] = part[l + s] > part[l] ? part[l + s] : part[l];                       \
                nanp[l] |= nanp[l + s];                                                        \
            }                                                                                  \
            barrier(CLK_LOCAL_MEM_FENCE);                                                      \
        }                                                                                      \
        if (l == 0) {                                                                          \
            gq_acc m = nanp[0] ? (gq_acc)NAN : part[0];                                        \
            gq_acc rd = ref_max ? m : (gq_acc)10 * log10(fmax(amin, fabs(ref)));               \
            gq_acc fl = isinf(top_db) ? (gq_acc)-INFINITY : (m - rd) - top_db;                 \
            c[2 * g] = rd;                                                                     \
            c[2 * g + 1] = fl;                                                                 \
        }                                                                                      \
    }                                                                                          \
    __kernel void gq_dsp_db_##SFX(__global const T *x, __global const gq_acc *c,               \
                                  __global T *y, ulong n, ulong group, int mode, gq_acc amin,  \
                                  gq_acc ref)                                                  \
    {                                                                                          \
        ulong i = get_global_id(0);                                                            \
        if (i >= n)                                                                            \
            return;                                                                            \
        if (mode >= 2) {                                                                       \
            gq_acc v = ref * pow((gq_acc)10, (gq_acc)0.1 * (gq_acc)x[i]);                      \
            y[i] = (T)(mode == 3 ? sqrt(v) : v);                                               \
            return;                                                                            \
        }                                                                                      \
        ulong g = i / group;                                                                   \
        T rd = (T)c[2 * g], fl = (T)c[2 * g + 1];                                              \
        if (isnan(rd) || isnan(fl)) {                                                          \
            y[i] = NAN;                                                                        \
            return;                                                                            \
        }                                                                                      \
        T v = gq_db_val_##SFX(x[i], mode, amin) - rd;                                          \
        y[i] = v < fl ? fl : v;                                                                \
    }

GQ_DB_DEF(f32, float)
#ifdef GQ_FP64
GQ_DB_DEF(f64, double)
#endif
