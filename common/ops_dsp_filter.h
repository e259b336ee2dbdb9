/* Shared between the dsp.* filter op specs (ops_dsp_filter.c) and their kernels: the
 * geometry of dsp.resample, so that the shape rule and the kernel agree on every output
 * length by construction. */
#ifndef GQ_OPS_DSP_FILTER_H
#define GQ_OPS_DSP_FILTER_H

#include "optable.h"
#include <stdbool.h>
#include <stdint.h>

/* Largest reduced up or down factor of the polyphase path: its filter has 20 * max + 1
 * taps (scipy's design), 1.3 M taps at this bound. */
#define GQ_RESAMPLE_MAX_FACTOR 65536

typedef enum {
    GQ_RESAMPLE_POLY = 0,
    GQ_RESAMPLE_SOXR = 1,
} gq_resample_engine_t;

typedef struct {
    gq_resample_engine_t engine;
    int soxr_quality;   /* soxr: 0 qq, 1 lq, 2 mq, 3 hq, 4 vhq */
    int64_t up, down;   /* ratio out/in, reduced by their gcd */
    double in_rate;     /* soxr: sr, or down when the ratio came as up/down */
    double out_rate;    /* soxr: target_sr, or up */
    int64_t half_len;   /* polyphase: the filter has 2 * half_len + 1 taps */
    int64_t phase_taps; /* polyphase: taps per phase, ceil((2 * half_len + 1) / up) */
    double beta;        /* Kaiser window beta */
    bool stream, final; /* streaming chunk; the last one of its stream */
    int64_t pos;        /* input samples of the stream before this chunk */
} gq_resample_plan_t;

/* Reads the resolved args of dsp.resample into *p, checking the combinations the op table
 * cannot (which pair of rate params was given, positive rates, the polyphase filter size,
 * streaming with soxr). On failure err names the op and the param. */
gq_status gq_resample_plan(const gq_args_t *a, gq_resample_plan_t *p, char *err, size_t errlen);

/* Outputs of the whole stream that the first n inputs determine: every output whose filter
 * window ends before input n (polyphase only). */
int64_t gq_resample_ready(const gq_resample_plan_t *p, int64_t n);

/* Outputs of a finished stream of n inputs: ceil(n * up / down), like scipy's resample_poly
 * and librosa.resample. */
int64_t gq_resample_total(const gq_resample_plan_t *p, int64_t n);

/* Length of the state tensor of a polyphase stream: phase_taps - 1 history samples, then
 * the stream position. */
int64_t gq_resample_state_len(const gq_resample_plan_t *p);

#endif
