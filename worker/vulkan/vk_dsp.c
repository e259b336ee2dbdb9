/* Vulkan host side of the dsp.* ops it runs (shaders/dsp.comp): gain, window, frame, and
 * preemphasis one-shot (no zi input, no stream state). f32 signals, f64 with fp64. The
 * rest of the family (filters with state, transforms, mel, resample, loudness) is declined
 * and runs on the CPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cpu/cpu_dsp_util.h"
#include "ops_dsp_spectral.h"
#include "util.h"
#include "vk_int.h"

static const char *const s_ops[] = {"dsp.gain", "dsp.window", "dsp.frame", "dsp.preemphasis"};

static bool s_supports(const gq_vk_t *vk, const gq_args_t *a, const gq_tdesc_t *in, int nin)
{
    bool known = false;
    for (size_t i = 0; i < sizeof s_ops / sizeof s_ops[0]; i++)
        known |= !strcmp(a->op->name, s_ops[i]);
    if (!known)
        return false;
    bool pre = !strcmp(a->op->name, "dsp.preemphasis");
    /* The state input and the stream's f64 state output: on the CPU. */
    if (pre && gq_args_bool(a, "stream"))
        return false;
    if (!in)
        return true;
    if (pre && nin != 1)
        return false;
    int dt = (int)in[0].dtype;
    return dt == GQ_F32 || (dt == GQ_F64 && gq_vk_caps(vk)->fp64);
}

static int64_t s_row_len(const gq_tdesc_t *d)
{
    return d->ndim ? d->shape[d->ndim - 1] : 1;
}

static gq_status s_launch(gq_vk_t *vk, gq_vk_stream_t *st, const char *shader, gq_vk_mem_t **bufs,
                          int nbufs, const void *push, uint32_t push_size, uint64_t items,
                          const char *op, char *err, size_t errlen)
{
    if (!items)
        return GQ_OK;
    uint32_t local = gq_vk_caps(vk)->local;
    int32_t spec[] = {(int32_t)local};
    return gq_vk_dispatch(vk, st, shader, spec, 1, bufs, nbufs, push, push_size,
                          gq_vk_groups(vk, items, local), 1, op, err, errlen);
}

static gq_status s_gain(gq_vk_t *vk, gq_vk_stream_t *st, const gq_args_t *a, const gq_tdesc_t *in,
                        gq_vk_mem_t **mi, gq_vk_mem_t **mo, char *err, size_t errlen)
{
    double g = gq_args_float(a, "factor") * pow(10.0, gq_args_float(a, "db") / 20.0);
    uint64_t n = (uint64_t)gq_tdesc_numel(&in[0]);
    bool f64 = in[0].dtype == GQ_F64;
    /* f32 with a gain that is a float, or without fp64: the float product. */
    bool fl = !f64 && ((double)(float)g == g || !gq_vk_caps(vk)->fp64);
    struct {
        uint32_t n, pad;
        double g;
    } pd = {(uint32_t)n, 0, g};
    struct {
        uint32_t n, pad;
        float g;
    } pf = {(uint32_t)n, 0, (float)g};
    gq_vk_mem_t *bufs[] = {mi[0], mo[0]};
    return s_launch(vk, st,
                    f64  ? "gain_f64"
                    : fl ? "gain_f32f"
                         : "gain_f32",
                    bufs, 2, fl ? (void *)&pf : (void *)&pd, fl ? sizeof pf : sizeof pd, n,
                    a->op->name, err, errlen);
}

static gq_status s_window(gq_vk_t *vk, gq_vk_stream_t *st, const gq_args_t *a, const gq_tdesc_t *in,
                          gq_vk_mem_t **mi, gq_vk_mem_t **mo, char *err, size_t errlen)
{
    const gq_tdesc_t *d = &in[0];
    int64_t len = s_row_len(d), numel = gq_tdesc_numel(d);
    if (!numel)
        return GQ_OK;
    bool f64 = d->dtype == GQ_F64;
    double *w = malloc((size_t)len * sizeof *w);
    if (!w) {
        gq_errf(err, errlen, "%s: vulkan: out of memory for a window of %lld", a->op->name,
                (long long)len);
        return GQ_ENOMEM;
    }
    gq_dsp_window_fill(gq_dsp_window_kind(a), gq_args_float(a, "beta"), gq_args_bool(a, "periodic"),
                       len, w);
    if (!f64) /* rounded to f32 in place, like the CPU */
        for (int64_t i = 0; i < len; i++)
            ((float *)w)[i] = (float)w[i];
    size_t wb = (size_t)len * (f64 ? sizeof(double) : sizeof(float));
    gq_vk_mem_t *wm;
    gq_status rc = gq_vk_scratch(vk, st, wb, &wm, a->op->name, err, errlen);
    if (!rc)
        rc = gq_vk_write(vk, st, wm, 0, w, wb, a->op->name, err, errlen);
    free(w);
    if (rc)
        return rc;
    uint32_t p[2] = {(uint32_t)numel, (uint32_t)len};
    gq_vk_mem_t *bufs[] = {mi[0], wm, mo[0]};
    return s_launch(vk, st, f64 ? "window_f64" : "window_f32", bufs, 3, p, sizeof p,
                    (uint64_t)numel, a->op->name, err, errlen);
}

static gq_status s_frame(gq_vk_t *vk, gq_vk_stream_t *st, const gq_args_t *a, const gq_tdesc_t *in,
                         gq_vk_mem_t **mi, const gq_tdesc_t *out, gq_vk_mem_t **mo, char *err,
                         size_t errlen)
{
    uint64_t len = (uint64_t)s_row_len(&in[0]);
    uint64_t fl = (uint64_t)gq_args_int(a, "frame_length");
    uint64_t hop = (uint64_t)gq_args_int(a, "hop_length");
    bool last = gq_args_bool(a, "frames_last");
    if (!gq_tdesc_numel(&out[0]))
        return GQ_OK;
    uint64_t nf = 1 + (len - fl) / hop, rows = (uint64_t)(gq_tdesc_numel(&in[0]) / (int64_t)len);
    uint64_t n = rows * (last ? fl : nf);
    uint32_t p[6] = {(uint32_t)n,  (uint32_t)len, (uint32_t)fl,
                     (uint32_t)nf, (uint32_t)hop, last ? 1u : 0u};
    gq_vk_mem_t *bufs[] = {mi[0], mo[0]};
    return s_launch(vk, st, in[0].dtype == GQ_F64 ? "frame_f64" : "frame_f32", bufs, 2, p, sizeof p,
                    n, a->op->name, err, errlen);
}

static gq_status s_preemph(gq_vk_t *vk, gq_vk_stream_t *st, const gq_args_t *a,
                           const gq_tdesc_t *in, gq_vk_mem_t **mi, gq_vk_mem_t **mo, char *err,
                           size_t errlen)
{
    bool f64 = in[0].dtype == GQ_F64, dbl = gq_vk_caps(vk)->fp64;
    uint64_t n = (uint64_t)gq_tdesc_numel(&in[0]), len = (uint64_t)s_row_len(&in[0]);
    double coef = gq_args_float(a, "coef");
    struct {
        uint32_t n, len;
        double c;
    } pd = {(uint32_t)n, (uint32_t)len, coef};
    struct {
        uint32_t n, len;
        float c;
    } pf = {(uint32_t)n, (uint32_t)len, (float)coef};
    gq_vk_mem_t *bufs[] = {mi[0], mo[0]};
    return s_launch(vk, st,
                    f64   ? "preemph_f64"
                    : dbl ? "preemph_f32"
                          : "preemph_f32_nofp64",
                    bufs, 2, dbl ? (void *)&pd : (void *)&pf, dbl ? sizeof pd : sizeof pf, n,
                    a->op->name, err, errlen);
}

static gq_status s_run(gq_vk_t *vk, gq_vk_stream_t *st, const gq_args_t *a, const gq_tdesc_t *in,
                       gq_vk_mem_t **mi, int nin, const gq_tdesc_t *out, gq_vk_mem_t **mo, int nout,
                       char *err, size_t errlen)
{
    (void)nin, (void)nout;
    const char *op = a->op->name;
    if (!strcmp(op, "dsp.gain"))
        return s_gain(vk, st, a, in, mi, mo, err, errlen);
    if (!strcmp(op, "dsp.window"))
        return s_window(vk, st, a, in, mi, mo, err, errlen);
    if (!strcmp(op, "dsp.frame"))
        return s_frame(vk, st, a, in, mi, out, mo, err, errlen);
    if (!strcmp(op, "dsp.preemphasis"))
        return s_preemph(vk, st, a, in, mi, mo, err, errlen);
    gq_errf(err, errlen, "%s: vulkan: no shader", op);
    return GQ_EUNSUPPORTED;
}

const gq_vk_family_t gq_vk_dsp_family = {
    .prefix = "dsp.",
    .supports = s_supports,
    .run = s_run,
};
