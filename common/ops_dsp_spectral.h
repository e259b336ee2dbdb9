/* Geometry of the dsp.* spectral ops, shared by their shape rules (common/ops_dsp_spectral.c)
 * and their CPU kernels, so that admission and the kernel can never disagree on a frame
 * count. Conventions are documented in docs/dsp-spectral.md. */
#ifndef GQ_OPS_DSP_SPECTRAL_H
#define GQ_OPS_DSP_SPECTRAL_H

#include "optable.h"
#include <stdbool.h>
#include <stdint.h>

typedef enum {
    GQ_WIN_HANN = 0,
    GQ_WIN_HAMMING = 1,
    GQ_WIN_BLACKMAN = 2,
    GQ_WIN_KAISER = 3,
    GQ_WIN_BOXCAR = 4,
} gq_window_t;

/* Largest n_fft / win_length the framed ops take. */
#define GQ_DSP_MAX_NFFT (1 << 18)

/* One resolved STFT: for dsp.stft, spectrogram, mel, logmel, mfcc (the signal is the input)
 * and dsp.istft (the signal is the output). */
typedef struct {
    int64_t batch; /* product of the leading dims */
    int64_t len;   /* samples per signal */
    int64_t n_fft, hop, win_length;
    int64_t n_freq; /* bins per frame: n_fft/2+1 onesided, else n_fft */
    int64_t n_frames;
    int64_t in_freq; /* istft: bins per frame in the input (cropped or zero-padded) */
    bool center, reflect, onesided;
    gq_window_t window;
    double beta; /* kaiser */
} gq_dsp_stft_t;

/* Resolves the framing params of a = dsp.stft/spectrogram/mel/logmel/mfcc for the signal
 * in: [..., T] and checks them (hop_length <= n_fft, win_length <= n_fft, T >= n_fft when
 * center=false ...). On failure writes a message naming the op and param. */
gq_status gq_dsp_stft_geom(const gq_args_t *a, const gq_tdesc_t *in, gq_dsp_stft_t *g, char *err,
                           size_t errlen);

/* The same for dsp.istft: in is the complex [..., n_freq, n_frames]. */
gq_status gq_dsp_istft_geom(const gq_args_t *a, const gq_tdesc_t *in, gq_dsp_stft_t *g, char *err,
                            size_t errlen);

/* The mel filterbank params of dsp.mel/logmel/mfcc, with fmax=0 resolved to sr/2 and
 * checked (fmin < fmax <= sr/2). */
typedef struct {
    double sr, fmin, fmax;
    int n_mels;
    bool htk, slaney_norm;
} gq_dsp_mel_t;

gq_status gq_dsp_mel_params(const gq_args_t *a, gq_dsp_mel_t *m, char *err, size_t errlen);

/* The window param of an op; GQ_WIN_HANN when absent. */
gq_window_t gq_dsp_window_kind(const gq_args_t *a);

#endif
