/* Direct 1-D/2-D convolution (f32) for Conv, in place of im2col + GEMM where the kernel
 * is not 1x1: the im2col matrix is kernel-size times the input and GEMM packs it again, so
 * for the small channel counts of audio and small vision models the copies cost more than
 * the arithmetic. Here each image's rows are copied once, split by stride phase and padded
 * (so every tap of a run of outputs is a contiguous load), and a tile of 4 output channels
 * x 24 outputs accumulates in registers over channels and taps, bias and activation
 * applied before the one store. GCC's vector extensions keep it portable; GQ_ONNX_SIMD
 * builds it for AVX2/FMA too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"
#include "util.h"

#define S_MB 4 /* output channels per tile */
#define S_VW 8 /* floats per vector */

typedef float s_v8 __attribute__((vector_size(32)));
typedef int32_t s_v8i __attribute__((vector_size(32)));
typedef float s_v8u __attribute__((vector_size(32), aligned(4), may_alias));

/* Unaligned loads and stores (macros: a function returning a 32-byte vector changes the
 * ABI of the baseline build). */
#define S_LD(p) (*(const s_v8u *)(p))
#define S_ST(p, v) (*(s_v8u *)(p) = (v))

/* The rows one output row reads: per (input channel, kernel row) inside the input, the
 * start of its phase-split copy and of its weights in the packed block. */
typedef struct {
    const float *row;
    int64_t woff;
} s_tap_row_t;

/* One tile: mb (4 or 1) output channels x nb (1..3) vectors of outputs starting at ow0, into y
 * (channel stride ys) at most nvalid outputs wide. always_inline: nb and mb are constants
 * at each call, so the accumulators live in registers. */
static inline __attribute__((always_inline)) void
s_tile(int mb, int nb, const s_tap_row_t *rows, int64_t nrows, const float *wblk,
       const int64_t *koff, int64_t KW, int64_t ow0, const float *bias, int relu, float *y,
       int64_t ys, int64_t nvalid, int64_t mvalid)
{
    s_v8 acc[S_MB][3];
    for (int i = 0; i < mb; i++)
        for (int v = 0; v < nb; v++)
            acc[i][v] = (s_v8){0} + (bias && i < mvalid ? bias[i] : 0.0f);
    for (int64_t e = 0; e < nrows; e++) {
        const float *r = rows[e].row + ow0, *wq = wblk + rows[e].woff;
        for (int64_t kw = 0; kw < KW; kw++, wq += mb) {
            const float *s = r + koff[kw];
            s_v8 x[3];
            for (int v = 0; v < nb; v++)
                x[v] = S_LD(s + v * S_VW);
            for (int i = 0; i < mb; i++)
                for (int v = 0; v < nb; v++)
                    acc[i][v] += wq[i] * x[v];
        }
    }
    for (int i = 0; i < mb && i < mvalid; i++)
        for (int v = 0; v < nb; v++) {
            s_v8 a = acc[i][v];
            if (relu)
                a = (s_v8)((s_v8i)a & (a > 0));
            if (nvalid >= (v + 1) * S_VW) {
                S_ST(y + i * ys + ow0 + v * S_VW, a);
            } else if (nvalid > v * S_VW) {
                float t[S_VW];
                S_ST(t, a);
                memcpy(y + i * ys + ow0 + v * S_VW, t, (size_t)(nvalid - v * S_VW) * sizeof *t);
            }
        }
}

/* The tiles of output row oh for channels m0 .. m0 + mb: outputs in runs of 24 (16 or 8 at
 * the end). */
static inline __attribute__((always_inline)) void
s_out_row(int mb, const gq_onnx_conv2d_t *g, int64_t mv, const s_tap_row_t *rows, int64_t nrows,
          const float *wb, const int64_t *koff, const float *bb, int relu, float *ym, int64_t ys)
{
    for (int64_t ow0 = 0; ow0 < g->ow;) {
        int64_t r = g->ow - ow0;
        if (r > 2 * S_VW && r != 4 * S_VW) {
            s_tile(mb, 3, rows, nrows, wb, koff, g->kw, ow0, bb, relu, ym, ys, r, mv);
            ow0 += 3 * S_VW;
        } else if (r > S_VW) {
            s_tile(mb, 2, rows, nrows, wb, koff, g->kw, ow0, bb, relu, ym, ys, r, mv);
            ow0 += 2 * S_VW;
        } else {
            s_tile(mb, 1, rows, nrows, wb, koff, g->kw, ow0, bb, relu, ym, ys, r, mv);
            ow0 += S_VW;
        }
    }
}

/* The conv of one group of one image. buf: the phase-split rows [Cg][ih][sw][L]. Blocks of
 * output channels outside, rows inside: a block's weights stay in L1 while the image's rows
 * stream from L2. */
GQ_ONNX_SIMD static void s_group(const gq_onnx_conv2d_t *g, int64_t Cg, int64_t Mg, int mb,
                                 const float *wp, const float *bias, int relu,
                                 const gq_onnx_act_t *act, const float *buf, int64_t L,
                                 const int64_t *koff, s_tap_row_t *rows, float *y)
{
    int64_t wblk_sz = Cg * g->kh * g->kw * mb, ys = g->oh * g->ow;
    for (int64_t m0 = 0; m0 < Mg; m0 += mb) {
        const float *wb = wp + (m0 / mb) * wblk_sz, *bb = bias ? bias + m0 : NULL;
        for (int64_t oh = 0; oh < g->oh; oh++) {
            int64_t nrows = 0;
            for (int64_t c = 0; c < Cg; c++)
                for (int64_t kh = 0; kh < g->kh; kh++) {
                    int64_t ih = oh * g->sh - g->ph + kh * g->dh;
                    if (ih < 0 || ih >= g->ih)
                        continue;
                    rows[nrows].row = buf + (c * g->ih + ih) * g->sw * L;
                    rows[nrows++].woff = (c * g->kh + kh) * g->kw * mb;
                }
            float *ym = y + m0 * ys + oh * g->ow;
            if (mb == S_MB)
                s_out_row(S_MB, g, Mg - m0, rows, nrows, wb, koff, bb, relu, ym, ys);
            else
                s_out_row(1, g, Mg - m0, rows, nrows, wb, koff, bb, relu, ym, ys);
        }
    }
    if (act->k != GQ_ONNX_ACT_NONE && !relu)
        gq_onnx_act_apply(act, y, Mg * ys);
}

/* buf[c][ih][p][j] = x[c][ih][j * sw + p - pw] (0 outside the row), j < L: the zeros and
 * the copy as two ranges, no test per element. */
GQ_ONNX_SIMD static void s_phase_rows(const gq_onnx_conv2d_t *g, int64_t Cg, const float *x,
                                      int64_t L, float *buf)
{
    int64_t sw = g->sw;
    for (int64_t p = 0; p < sw; p++) {
        /* j * sw + p - pw in [0, iw) for j in [lo, hi) */
        int64_t lo = g->pw - p > 0 ? (g->pw - p + sw - 1) / sw : 0;
        int64_t hi = (g->iw + g->pw - p + sw - 1) / sw;
        hi = hi < L ? hi : L, lo = lo < hi ? lo : hi;
        for (int64_t c = 0; c < Cg; c++)
            for (int64_t ih = 0; ih < g->ih; ih++) {
                const float *xr = x + (c * g->ih + ih) * g->iw + lo * sw + p - g->pw;
                float *b = buf + ((c * g->ih + ih) * sw + p) * L;
                memset(b, 0, (size_t)lo * sizeof *b);
                if (sw == 1)
                    memcpy(b + lo, xr, (size_t)(hi - lo) * sizeof *b);
                else if (sw == 2)
                    for (int64_t j = 0; j < hi - lo; j++)
                        b[lo + j] = xr[2 * j];
                else
                    for (int64_t j = 0; j < hi - lo; j++)
                        b[lo + j] = xr[j * sw];
                memset(b + hi, 0, (size_t)(L - hi) * sizeof *b);
            }
    }
}

gq_status gq_onnx_conv2d_direct(const gq_onnx_conv2d_t *g, const float *x, const float *w,
                                const float *bias, const gq_onnx_act_t *act, float *y, char *err,
                                size_t errlen)
{
    int64_t Cg = g->C / g->group, Mg = g->M / g->group, K = Cg * g->kh * g->kw;
    int mb = Mg >= S_MB ? S_MB : 1;
    int64_t nblk = (Mg + mb - 1) / mb;
    int64_t owt = (g->ow + 3 * S_VW) / S_VW * S_VW; /* outputs a row's tiles may compute */
    int64_t L = owt + ((g->kw - 1) * g->dw) / g->sw + 1;
    gq_onnx_act_t none = {GQ_ONNX_ACT_NONE, 0, 0};
    act = act ? act : &none;
    int relu = act->k == GQ_ONNX_ACT_RELU;
    size_t wbytes, bbytes, rbytes, kbytes, wcap = 0, bcap = 0, rcap = 0, kcap = 0;
    float *wp = NULL, *buf = NULL;
    s_tap_row_t *rows = NULL;
    int64_t *koff = NULL;
    if (gq_onnx_size3(nblk * mb, K, sizeof *wp, &wbytes) &&
        gq_onnx_size3(Cg * g->ih, g->sw * L, sizeof *buf, &bbytes) &&
        gq_onnx_size3(Cg, g->kh, sizeof *rows, &rbytes) &&
        gq_onnx_size3(g->kw, 1, sizeof *koff, &kbytes)) {
        wp = gq_onnx_scratch(wbytes, &wcap);
        buf = gq_onnx_scratch(bbytes, &bcap);
        rows = gq_onnx_scratch(rbytes, &rcap);
        koff = gq_onnx_scratch(kbytes, &kcap);
    }
    gq_status rc = GQ_OK;
    if (!wp || !buf || !rows || !koff) {
        gq_errf(err, errlen, "out of memory for the direct convolution's buffers");
        rc = GQ_ENOMEM;
        goto done;
    }
    for (int64_t kw = 0; kw < g->kw; kw++)
        koff[kw] = (kw * g->dw) % g->sw * L + (kw * g->dw) / g->sw;
    for (int64_t gi = 0; gi < g->group; gi++) {
        /* wp[blk][c][kh][kw][i] = w[gi * Mg + blk * mb + i][c][kh][kw] (0 past Mg) */
        const float *wg = w + gi * Mg * K;
        for (int64_t blk = 0; blk < nblk; blk++)
            for (int64_t k = 0; k < K; k++)
                for (int i = 0; i < mb; i++) {
                    int64_t m = blk * mb + i;
                    wp[(blk * K + k) * mb + i] = m < Mg ? wg[m * K + k] : 0.0f;
                }
        for (int64_t n = 0; n < g->N; n++) {
            const float *xg = x + (n * g->C + gi * Cg) * g->ih * g->iw;
            float *yg = y + (n * g->M + gi * Mg) * g->oh * g->ow;
            s_phase_rows(g, Cg, xg, L, buf);
            s_group(g, Cg, Mg, mb, wp, bias ? bias + gi * Mg : NULL, relu, act, buf, L, koff, rows,
                    yg);
        }
    }
done:
    gq_onnx_scratch_free(wp, wcap);
    gq_onnx_scratch_free(buf, bcap);
    gq_onnx_scratch_free(rows, rcap);
    gq_onnx_scratch_free(koff, kcap);
    return rc;
}
