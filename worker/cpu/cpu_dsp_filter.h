/* Internal to the dsp.* filter and level kernels (cpu_dsp_filter.c, cpu_dsp_resample.c,
 * cpu_dsp_level.c): the kernels the family table lists, and row helpers. Semantics are
 * documented in common/ops_dsp_filter.c and docs/dsp-filter.md. */
#ifndef GQ_CPU_DSP_FILTER_H
#define GQ_CPU_DSP_FILTER_H

#include "cpu_ops.h"
#include "ops_dsp_filter.h"
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Two doubles, as GCC and Clang vector extensions (SSE2 on x86-64, NEON on arm64): the
 * builds run at -O2, where GCC 12 vectorises almost no loop with an unknown trip count, so
 * the hot loops say it. Loads and stores go through memcpy (any alignment). */
typedef double gq_v2d __attribute__((vector_size(16)));

static inline gq_v2d gq_v2d_load(const double *p)
{
    gq_v2d v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void gq_v2d_store(double *p, gq_v2d v)
{
    memcpy(p, &v, sizeof v);
}

/* sum a[i] * b[i] for i < n, in four lanes. */
static inline double gq_dsp_dot(const double *a, const double *b, int64_t n)
{
    gq_v2d s0 = {0, 0}, s1 = {0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += gq_v2d_load(a + i) * gq_v2d_load(b + i);
        s1 += gq_v2d_load(a + i + 2) * gq_v2d_load(b + i + 2);
    }
    s0 += s1;
    double s = s0[0] + s0[1];
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

#define GQ_DSP_KERNEL(name)                                                                        \
    gq_status name(const gq_args_t *a, const gq_view_t *in, int nin, gq_view_t *out, int nout,     \
                   char *err, size_t errlen)

GQ_DSP_KERNEL(gq_cpu_dsp_resample);
GQ_DSP_KERNEL(gq_cpu_dsp_gain);
GQ_DSP_KERNEL(gq_cpu_dsp_normalize);
GQ_DSP_KERNEL(gq_cpu_dsp_loudness);
GQ_DSP_KERNEL(gq_cpu_dsp_frame);
GQ_DSP_KERNEL(gq_cpu_dsp_overlap_add);

/* Last dim of a descriptor (1 for a scalar) and the number of rows before it. */
int64_t gq_dsp_row_len(const gq_tdesc_t *d);
int64_t gq_dsp_rows(const gq_tdesc_t *d);

/* n values of an f32 or f64 array, from element off, into dst as double. */
void gq_dsp_load(const void *src, gq_dtype_t dt, int64_t off, int64_t n, double *dst);

/* n doubles into an f32 (rounded once) or f64 array at element off. */
void gq_dsp_store(const double *src, int64_t n, void *dst, gq_dtype_t dt, int64_t off);

/* True when all n values of an f32 or f64 array from element off are finite. */
bool gq_dsp_all_finite(const void *src, gq_dtype_t dt, int64_t off, int64_t n);

/* Zeroed scratch of n doubles (SIMD-aligned), NULL with err naming op when out of memory;
 * free with gq_fft_free. n may be 0. */
double *gq_dsp_scratch(const char *op, int64_t n, char *err, size_t errlen);

/* dsp.resample's polyphase filter, shared with the GPU backends (they must use the same
 * taps): gq_resample_design writes the 2 * half_len + 1 taps of scipy's resample_poly
 * filter into h; gq_resample_bank reorders them into up phases of phase_taps taps each,
 * reversed, so output m is one dot product of its phase with x[n0 - K + 1 .. n0]. */
void gq_resample_design(const gq_resample_plan_t *p, double *h);
void gq_resample_bank(const gq_resample_plan_t *p, const double *h, double *bank);

#endif
