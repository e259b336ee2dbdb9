/* Internal to the CPU kernels of the dsp.* spectral ops (cpu_dsp_spectral.c, cpu_dsp_fft.c,
 * cpu_dsp_mel.c): windows and the STFT framer they all share. */
#ifndef GQ_CPU_DSP_UTIL_H
#define GQ_CPU_DSP_UTIL_H

#include "cpu_fft.h"
#include "cpu_ops.h"
#include "ops_dsp_spectral.h"
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

/* Fills w[0..n) with a window the way scipy.signal.get_window does (periodic = fftbins):
 * computed in double from scipy's own formulas; n <= 1 gives ones. */
void gq_dsp_window_fill(gq_window_t kind, double beta, bool periodic, int64_t n, double *w);

/* Turns one signal into windowed, padded frames and their spectra, frame by frame, in the
 * signal's precision. Scratch comes from gq_fft_alloc at init, once per kernel call. */
typedef struct {
    gq_dsp_stft_t g;
    bool f64;
    int64_t pad;               /* samples of padding before the signal: n_fft/2 when centred */
    int64_t wlo, whi;          /* the window's support inside the frame: [wlo, whi) */
    const gq_fft_plan_t *plan; /* R2C of n_fft */
    void *win;                 /* n_fft reals: the window centred in the frame, zeros around */
    void *frame;               /* n_fft reals; zero outside [wlo, whi) */
    void *spec;                /* n_fft/2+1 complex */
    /* Pair mode (f32 only, gq_dsp_framer_pairs): two real frames as the real and imaginary
     * parts of one complex frame, so one C2C of n_fft does the work of two R2Cs. */
    const gq_fft_plan_t *cplan; /* C2C forward of n_fft */
    float *zframe;              /* n_fft complex; zero outside [wlo, whi) */
} gq_dsp_framer_t;

/* Resolves the geometry for input in and prepares the scratch. On failure (no memory, no
 * plan) writes a message naming the op and returns the status; the framer needs no free. */
gq_status gq_dsp_framer_init(gq_dsp_framer_t *f, const gq_args_t *a, const gq_tdesc_t *in,
                             char *err, size_t errlen);

/* Spectrum of frame t of the signal x (len samples of the framer's precision) into
 * f->spec: n_fft/2+1 complex bins, unnormalised (numpy.fft.rfft of the windowed frame). */
void gq_dsp_framer_run(gq_dsp_framer_t *f, const void *x, int64_t t);

/* Prepares pair mode for an f32 framer: GQ_ENOMEM when its plan or scratch cannot be had. */
gq_status gq_dsp_framer_pairs(gq_dsp_framer_t *f);

/* The n_fft-point complex spectrum Z of frame ta + i * frame tb into z (n_fft complex, SIMD
 * aligned). With A, B the frames' spectra, A[k] = (Z[k] + conj Z[-k]) / 2 and
 * B[k] = (Z[k] - conj Z[-k]) / 2i. */
void gq_dsp_framer_run2(gq_dsp_framer_t *f, const float *x, int64_t ta, int64_t tb, float *z);

void gq_dsp_framer_free(gq_dsp_framer_t *f);

/* The mel filterbank, sparse: filter m has weights w[off[m] .. off[m] + cnt[m]) for the bins
 * lo[m] .. lo[m] + cnt[m]; the bins [kmin, kmax) cover every filter. Shared with the GPU
 * backends, which must use the very same weights. */
typedef struct {
    int n_mels;
    int64_t kmin, kmax;
    int64_t *lo, *cnt, *off;
    float *wf;  /* f32 weights (librosa's filters.mel dtype) */
    double *wd; /* the same values in double, for f64 signals */
} gq_dsp_mel_bank_t;

/* librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk, norm) with its float32 result:
 * the weights computed in double from the same expressions, rounded to float, then the
 * Slaney norm applied in double and rounded again, as NumPy does in place. GQ_ENOMEM. */
gq_status gq_dsp_mel_bank_build(gq_dsp_mel_bank_t *b, const gq_dsp_mel_t *mp, int64_t n_fft);
void gq_dsp_mel_bank_free(gq_dsp_mel_bank_t *b);

/* dsp.mfcc's DCT-II with the ortho norm (scipy.fftpack.dct(type=2, norm='ortho')) as an
 * [n_mfcc, n_mels] matrix in d, each row scaled by librosa's lifter (0: none). Shared with
 * the GPU backends. */
void gq_dsp_dct_matrix(int n_mfcc, int n_mels, double lifter, double *d);

/* Kernels defined outside cpu_dsp_spectral.c, listed in its kernel table. */
gq_status gq_cpu_dsp_fft(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out, int nout,
                         char *err, size_t errlen);
gq_status gq_cpu_dsp_rfft(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out,
                          int nout, char *err, size_t errlen);
gq_status gq_cpu_dsp_irfft(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out,
                           int nout, char *err, size_t errlen);
gq_status gq_cpu_dsp_mel(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out, int nout,
                         char *err, size_t errlen);
gq_status gq_cpu_dsp_db(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out, int nout,
                        char *err, size_t errlen);

/* Four lanes of float through GCC/Clang vector extensions (SSE on x86-64, NEON on arm64,
 * plain code elsewhere), for the loops that run once per frame. */

typedef float gq_v4f __attribute__((vector_size(16)));
typedef int32_t gq_v4i __attribute__((vector_size(16)));

/* Lanes of v, or of a then b (indices 4..7 name b's lanes). */
#if defined(__clang__)
#define GQ_V4_SHUF(v, a, b, c, d) __builtin_shufflevector((v), (v), a, b, c, d)
#define GQ_V4_SHUF2(x, y, a, b, c, d) __builtin_shufflevector((x), (y), a, b, c, d)
#else
#define GQ_V4_SHUF(v, a, b, c, d) __builtin_shuffle((v), (gq_v4i){a, b, c, d})
#define GQ_V4_SHUF2(x, y, a, b, c, d) __builtin_shuffle((x), (y), (gq_v4i){a, b, c, d})
#endif

static inline gq_v4f gq_v4_load(const float *p)
{
    gq_v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void gq_v4_store(float *p, gq_v4f v)
{
    memcpy(p, &v, sizeof v);
}

static inline gq_v4f gq_v4_splat(float x)
{
    return (gq_v4f){x, x, x, x};
}

/* Lane-wise m ? a : b for a comparison mask m. */
static inline gq_v4f gq_v4_select(gq_v4i m, gq_v4f a, gq_v4f b)
{
    return (gq_v4f)(((gq_v4i)a & m) | ((gq_v4i)b & ~m));
}

/* Lane-wise a > b ? a : b: a NaN in b comes through, a NaN in a does not (x86 MAXPS). */
static inline gq_v4f gq_v4_max(gq_v4f a, gq_v4f b)
{
#if defined(__SSE__)
    return _mm_max_ps(a, b);
#else
    return gq_v4_select(a > b, a, b);
#endif
}

#endif
