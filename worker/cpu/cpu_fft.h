/* FFTW plans, cached process-wide per (kind, length, precision), for every CPU kernel that
 * transforms (dsp.fft, stft, FFT convolution, resampling). FFTW's planner is not thread-safe,
 * so plans are made under a lock; executing a cached plan on new arrays is, so compute
 * threads share them. Transforms are unnormalised (FFTW's convention): callers scale. */
#ifndef GQ_CPU_FFT_H
#define GQ_CPU_FFT_H

#include "status.h"
#include <stdbool.h>
#include <stddef.h>

typedef enum {
    GQ_FFT_C2C_FWD = 0, /* n complex -> n complex, e^-i */
    GQ_FFT_C2C_BWD = 1, /* n complex -> n complex, e^+i */
    GQ_FFT_R2C = 2,     /* n real -> n/2+1 complex */
    GQ_FFT_C2R = 3,     /* n/2+1 complex -> n real; the input is preserved */
} gq_fft_kind_t;

typedef struct gq_fft_plan gq_fft_plan_t;

/* The cached plan for one transform of length n (>= 1); NULL when FFTW cannot plan it
 * (out of memory). Plans live until the process ends. The planner effort comes from
 * GQ_FFTW_PLANNER (estimate, measure, patient; default measure). Measured plans are kept as
 * FFTW wisdom in <prefix>.f32 / <prefix>.f64 and read by later processes: the prefix is
 * GQ_FFTW_WISDOM ("none": no files), else $XDG_CACHE_HOME/gpuq/fftw-wisdom, else
 * ~/.cache/gpuq/fftw-wisdom. */
const gq_fft_plan_t *gq_fft_plan(gq_fft_kind_t kind, size_t n, bool f64);

/* Runs one transform: in/out are float (f32 plans) or double (f64 plans), complex data
 * interleaved. in and out may be the same array for C2C. Any alignment works: pointers that
 * FFTW's SIMD code cannot take are staged through per-thread aligned scratch. */
void gq_fft_exec(const gq_fft_plan_t *p, const void *in, void *out);

/* Length and kind of a plan. */
size_t gq_fft_len(const gq_fft_plan_t *p);
gq_fft_kind_t gq_fft_kind(const gq_fft_plan_t *p);

/* Aligned scratch for kernels (SIMD-aligned, FFTW's allocator); free with gq_fft_free. */
void *gq_fft_alloc(size_t nbytes);
void gq_fft_free(void *p);

#endif
