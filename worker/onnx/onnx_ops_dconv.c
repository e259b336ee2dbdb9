/* Direct 1-D/2-D convolution (f32) for Conv, in place of im2col + GEMM, optionally with the
 * MaxPool after it fused in. The im2col matrix is kernel-size times the input and GEMM packs
 * it again, so for the small channel counts of audio and small vision models the copies
 * cost more than the arithmetic.
 *
 * Each image's input is copied once into phase planes: B[c][a][b][i][j] = xp[c][i sh + a]
 * [j sw + b] (xp the zero-padded input), rows of L = ow + (kw - 1) dw / sw. Then output
 * (oh, ow) reads B at tap offset(c, kh, kw) + oh L + ow: every tap is one offset into a
 * flat run of outputs, whatever the stride. A tile of 4 output channels x 24 flat outputs
 * (1 x 48 for depthwise) accumulates in registers over all taps, bias and activation
 * applied before the one store. Flat runs cross rows, so narrow and strided outputs waste
 * only the (kw - 1) dw / sw columns past each row instead of a partial vector per row;
 * rows of whole vectors (16, 32 wide) run one by one, wasting nothing. The weights are
 * read where the model has them, 4 rows at once (a packed copy per call cost a tenth of
 * a 1-D conv); 3-wide kernels have their taps unrolled.
 *
 * With a MaxPool fused in, a band of conv rows goes to an L1-sized scratch and is pooled
 * from there: the conv's output never reaches memory. Stride-2 windows (and stride-2
 * phase planes) take even/odd columns with vector shuffles, not the scalar strided loop;
 * an activation other than Relu that does not decrease runs after the pool, on a quarter
 * of the values.
 *
 * Threads (par.h): over images when the batch has enough of them, else over (channel
 * block, row band) pieces of one image; each participant has its own phase planes and
 * scratch. GCC's vector extensions keep it portable; GQ_ONNX_SIMD builds it for AVX2/FMA. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"
#include "par.h"
#include "util.h"

#define S_MB 4            /* output channels per tile */
#define S_VW 8            /* floats per vector */
#define S_NB 3            /* vectors per tile at S_MB channels */
#define S_NB1 6           /* vectors per tile at 1 channel (6 chains hide the FMA latency) */
#define S_SCR_FLOATS 4096 /* a pooled band's conv outputs per channel block: 16 KB, in L1 */

typedef float s_v8 __attribute__((vector_size(32)));
typedef int32_t s_v8i __attribute__((vector_size(32)));
typedef float s_v8u __attribute__((vector_size(32), aligned(4), may_alias));

/* Unaligned loads and stores (macros: a function returning a 32-byte vector changes the
 * ABI of the baseline build). */
#define S_LD(p) (*(const s_v8u *)(p))
#define S_ST(p, v) (*(s_v8u *)(p) = (v))

typedef struct {
    const gq_onnx_conv2d_t *g;
    const gq_onnx_pool2d_t *pl; /* NULL: no pool */
    const float *x, *w, *bias;  /* w as the model has it: [M][Cg][kh][kw] */
    gq_onnx_act_t act;
    int relu;     /* the activation is Relu: applied in the tile's epilogue */
    bool late;    /* the activation runs on the pooled output instead (s_late) */
    bool rowwise; /* a flat run per output row (s_rows) */
    float *y;
    int mb;
    int64_t Cg, Mg, K, nblk, R, L, bufsz;
    /* Tap (c, kh, kw) reads the phase planes at roff[c kh + kh] + koff[kw] + f. */
    const int64_t *roff, *koff;
    int64_t nrows;
    float *buf;          /* phase planes: per participant (image tasks) or one (piece tasks) */
    float *scr;          /* per participant: a band's conv outputs, then a pool row */
    int64_t scrsz, ss;   /* floats per participant; per channel of a band */
    int64_t band, nband; /* rows per band (pooled rows when pooling) */
    int64_t n, gi;       /* the image and group of piece tasks */
} s_job_t;

/* Floats of a pool row with its padding: the window's columns or the conv row, whichever
 * is longer, -inf past the conv row. */
static int64_t s_pool_tlen(const gq_onnx_conv2d_t *g, const gq_onnx_pool2d_t *pl)
{
    int64_t tlen = (pl->ow - 1) * pl->sw + (pl->kw - 1) * pl->dw + 1;
    return tlen > pl->pw + g->ow ? tlen : pl->pw + g->ow;
}

/* One tile: mb channels x nb vectors of flat outputs from f (< fend). Stores into scr
 * (channel stride j->ss, flat index minus fbase) when pooling, else into the output planes
 * y (row oh, column ow of f), skipping the columns past each row. k3: 1 when kw is 3, 2
 * when the taps are also 3 rows (one channel). always_inline: mb, nb and k3 are constants
 * at each call, so the accumulators live in registers and 3-wide tap loops unroll. */
static inline __attribute__((always_inline)) void s_tile(int mb, int nb, int k3, const s_job_t *j,
                                                         const float *buf, const float *const *wr,
                                                         const float *bb, int64_t mv, int64_t f,
                                                         int64_t fend, int64_t fbase, int64_t oh,
                                                         int64_t ow, float *scr, float *y)
{
    /* j's fields as locals first: the stores below may alias anything (s_v8u) */
    const int64_t *roff = j->roff, *koff = j->koff, KW = k3 ? 3 : j->g->kw;
    int64_t nrows = k3 == 2 ? 3 : j->nrows;
    int64_t OW = j->g->ow, ys = j->g->oh * OW, L = j->L, ss = j->ss;
    int relu = j->relu;
    s_v8 acc[S_MB * S_NB];
    for (int i = 0; i < mb; i++)
        for (int v = 0; v < nb; v++)
            acc[i * nb + v] = (s_v8){0} + (bb && i < mv ? bb[i] : 0.0f);
    const float *s0 = buf + f;
    const float *w0 = wr[0], *w1 = wr[mb > 1], *w2 = wr[mb > 2 ? 2 : 0], *w3 = wr[mb > 3 ? 3 : 0];
    for (int64_t e = 0, k = 0; e < nrows; e++) {
        const float *r = s0 + roff[e];
        for (int64_t kw = 0; kw < KW; kw++, k++) {
            const float wk[S_MB] = {w0[k], w1[k], w2[k], w3[k]};
            const float *s = r + koff[kw];
            s_v8 xv[S_NB1];
            for (int v = 0; v < nb; v++)
                xv[v] = S_LD(s + v * S_VW);
            for (int i = 0; i < mb; i++)
                for (int v = 0; v < nb; v++)
                    acc[i * nb + v] += wk[i] * xv[v];
        }
    }
    if (relu)
        for (int i = 0; i < mb * nb; i++)
            acc[i] = (s_v8)((s_v8i)acc[i] & (acc[i] > 0));
    if (scr) { /* the band's scratch has room past fend */
        for (int i = 0; i < mb; i++)
            for (int v = 0; v < nb && i < mv; v++)
                S_ST(scr + i * ss + f - fbase + v * S_VW, acc[i * nb + v]);
        return;
    }
    if (ow + nb * S_VW <= OW && f + nb * S_VW <= fend) { /* inside one row */
        for (int i = 0; i < mb; i++)
            for (int v = 0; v < nb && i < mv; v++)
                S_ST(y + i * ys + oh * OW + ow + v * S_VW, acc[i * nb + v]);
        return;
    }
    /* crosses a row end or the band's end: lane by lane, skipping the columns past a row */
    float t[S_MB * S_NB * S_VW];
    for (int i = 0; i < mb * nb; i++)
        S_ST(t + i * S_VW, acc[i]);
    for (int64_t l = 0, r = oh, c = ow; l < nb * S_VW && f + l < fend; l++, c++) {
        if (c == L)
            c = 0, r++;
        for (int i = 0; i < mb && i < mv && c < OW; i++)
            y[i * ys + r * OW + c] = t[i * nb * S_VW + l];
    }
}

/* Flat outputs [f, fend) of one channel block from row oh, column ow: wr its channels'
 * weight rows (the last valid one again past mv: read, never stored), bb its bias (or
 * NULL), mv its valid channels, fbase the band's first flat output. */
GQ_ONNX_SIMD static void s_run(const s_job_t *j, const float *buf, const float *const *wr,
                               const float *bb, int64_t mv, int64_t f, int64_t fend, int64_t fbase,
                               int64_t oh, int64_t ow, float *scr, float *y)
{
    int64_t L = j->L;
    /* the common 3-wide kernel unrolled, its taps' offsets in registers; 3x3 on one channel
     * all 9 taps */
    int k3 = j->g->kw != 3 ? 0 : j->nrows == 3 ? 2 : 1;
#define S_TILE(mb, nb)                                                                             \
    (k3 == 2   ? s_tile(mb, nb, 2, j, buf, wr, bb, mv, f, fend, fbase, oh, ow, scr, y)             \
     : k3 == 1 ? s_tile(mb, nb, 1, j, buf, wr, bb, mv, f, fend, fbase, oh, ow, scr, y)             \
               : s_tile(mb, nb, 0, j, buf, wr, bb, mv, f, fend, fbase, oh, ow, scr, y))
    while (f < fend) {
        int64_t rem = fend - f, adv;
        if (j->mb == S_MB) { /* 4 vectors left: 2 + 2, 4 accumulators do not hide the latency */
            if (rem > 2 * S_VW && (rem <= 3 * S_VW || rem > 4 * S_VW))
                S_TILE(S_MB, 3), adv = 3;
            else if (rem > S_VW)
                S_TILE(S_MB, 2), adv = 2;
            else
                S_TILE(S_MB, 1), adv = 1;
        } else {
            adv = (rem + S_VW - 1) / S_VW;
            adv = adv < S_NB1 ? adv : S_NB1;
            switch (adv) {
            case 1:
                S_TILE(1, 1);
                break;
            case 2:
                S_TILE(1, 2);
                break;
            case 3:
                S_TILE(1, 3);
                break;
            case 4:
                S_TILE(1, 4);
                break;
            case 5:
                S_TILE(1, 5);
                break;
            default:
                S_TILE(1, 6);
                break;
            }
        }
        f += adv * S_VW, ow += adv * S_VW;
        while (ow >= L)
            ow -= L, oh++;
    }
#undef S_TILE
}

/* Conv rows [r0, r1) of one channel block (s_run's arguments): one flat run, or a run per
 * row when whole vectors fit the rows better than runs crossing them do (16 outputs a row
 * and 2 columns past it: 12 % of the taps saved). */
static void s_rows(const s_job_t *j, const float *buf, const float *const *wr, const float *bb,
                   int64_t mv, int64_t r0, int64_t r1, float *scr, float *y)
{
    int64_t L = j->L, OW = j->g->ow;
    if (!j->rowwise) {
        s_run(j, buf, wr, bb, mv, r0 * L, (r1 - 1) * L + OW, r0 * L, r0, 0, scr, y);
        return;
    }
    for (int64_t oh = r0; oh < r1; oh++)
        s_run(j, buf, wr, bb, mv, oh * L, oh * L + OW, r0 * L, oh, 0, scr, y);
}

/* The even and odd lanes of a, b (16 consecutive floats) in the order [0 1 4 5 2 3 6 7] of
 * their pairs: in-lane shuffles (no lane crossing), for maxes whose result S_FIX puts in
 * order with one permute. A strided read as two loads and shuffles instead of the scalar
 * loop GCC makes of it. */
#define S_EVEN(a, b) __builtin_shuffle(a, b, (s_v8i){0, 2, 8, 10, 4, 6, 12, 14})
#define S_ODD(a, b) __builtin_shuffle(a, b, (s_v8i){1, 3, 9, 11, 5, 7, 13, 15})
#define S_FIX(a) __builtin_shuffle(a, (s_v8i){0, 1, 4, 5, 2, 3, 6, 7})
#define S_MAX(a, b) ((a) > (b) ? (a) : (b))
/* Lane-wise max of vectors (C has no vector ?:); a NaN in b is kept, as S_MAX does. */
#define S_VMAX(a, b) ((s_v8)(((s_v8i)(a) & ((a) > (b))) | ((s_v8i)(b) & ~((a) > (b)))))

/* Pool row yo [POW] at column stride 2 from tp (the vertical max, the leading pad and -inf
 * past the conv row included; readable to 16 past the window's last column): per 8
 * outputs, each tap's even columns by S_EVEN. */
static inline __attribute__((always_inline)) void s_pool_row2(const gq_onnx_pool2d_t *pl,
                                                              const float *tp, float *yo)
{
    int64_t q = 0, POW = pl->ow, dw = pl->dw;
    for (; q + S_VW <= POW; q += S_VW) {
        s_v8 m = S_EVEN(S_LD(tp + 2 * q), S_LD(tp + 2 * q + S_VW));
        for (int64_t kw = 1; kw < pl->kw; kw++) {
            const float *src = tp + 2 * q + kw * dw;
            s_v8 v = S_EVEN(S_LD(src), S_LD(src + S_VW));
            m = S_VMAX(v, m);
        }
        S_ST(yo + q, S_FIX(m));
    }
    for (; q < POW; q++) {
        float m = tp[2 * q];
        for (int64_t kw = 1; kw < pl->kw; kw++)
            m = tp[2 * q + kw * dw] > m ? tp[2 * q + kw * dw] : m;
        yo[q] = m;
    }
}

/* Pooled rows [p0, p1) of mv channels from the band's conv rows [r0, r1) in scr: per row,
 * the max over the window's rows into t (its padding -inf), then over its columns. The
 * common 2x2 window at stride 2 without padding in one pass over the conv rows. */
GQ_ONNX_SIMD static void s_pool_rows(const s_job_t *j, const float *scr, int64_t r0, int64_t r1,
                                     int64_t p0, int64_t p1, int64_t mv, float *tp, float *y)
{
    const gq_onnx_pool2d_t *pl = j->pl;
    int64_t OW = j->g->ow, POW = pl->ow, ps = pl->oh * POW, sw = pl->sw, dw = pl->dw;
    int64_t tl = s_pool_tlen(j->g, pl);
    bool two = sw == 2 && pl->kw == 2 && dw == 1 && pl->pw == 0;
    float *t = tp + pl->pw;
    for (int64_t q = 0; q < tl + 2 * S_VW; q++)
        tp[q] = -INFINITY; /* the padding: a max ignores it */
    for (int64_t i = 0; i < mv; i++)
        for (int64_t p = p0; p < p1; p++) {
            const float *rows[8]; /* the window's rows inside the band */
            int nr = 0;
            bool tall = false;
            for (int64_t kh = 0; kh < pl->kh; kh++) {
                int64_t r = p * pl->sh - pl->ph + kh * pl->dh;
                if (r >= r0 && r < r1 && nr < 8)
                    rows[nr++] = scr + i * j->ss + (r - r0) * j->L;
                else if (r >= r0 && r < r1)
                    tall = true;
            }
            if (tall) { /* more rows than rows holds: their max into t first */
                for (int64_t c = 0; c < OW; c++)
                    t[c] = -INFINITY;
                for (int64_t kh = 0; kh < pl->kh; kh++) {
                    int64_t r = p * pl->sh - pl->ph + kh * pl->dh;
                    if (r < r0 || r >= r1)
                        continue;
                    const float *restrict row = scr + i * j->ss + (r - r0) * j->L;
                    for (int64_t c = 0; c < OW; c++)
                        t[c] = S_MAX(row[c], t[c]);
                }
                rows[0] = t, nr = 1;
            }
            float *restrict yo = y + i * ps + p * POW;
            int64_t q = 0;
            if (two && nr > 0) {
                for (; 2 * q + 2 * S_VW <= OW && q + S_VW <= POW; q += S_VW) {
                    s_v8 a = S_LD(rows[0] + 2 * q), b = S_LD(rows[0] + 2 * q + S_VW);
                    for (int k = 1; k < nr; k++) {
                        s_v8 c = S_LD(rows[k] + 2 * q), d = S_LD(rows[k] + 2 * q + S_VW);
                        a = S_VMAX(c, a);
                        b = S_VMAX(d, b);
                    }
                    s_v8 e = S_EVEN(a, b), o = S_ODD(a, b);
                    S_ST(yo + q, S_FIX(S_VMAX(o, e)));
                }
                for (; q < POW; q++) { /* the last window may pass the row's end */
                    float m = -INFINITY;
                    for (int k = 0; k < nr; k++)
                        for (int64_t c = 2 * q; c < 2 * q + 2 && c < OW; c++)
                            m = rows[k][c] > m ? rows[k][c] : m;
                    yo[q] = m;
                }
                continue;
            }
            if (nr == 0)
                for (int64_t c = 0; c < OW; c++)
                    t[c] = -INFINITY;
            else if (rows[0] != t)
                for (int64_t c = 0; c < OW; c++)
                    t[c] = rows[0][c];
            for (int k = 1; k < nr; k++) /* rows[0] alone may be t */
                for (int64_t c = 0; c < OW; c++)
                    t[c] = S_MAX(rows[k][c], t[c]);
            if (sw == 2) {
                s_pool_row2(pl, tp, yo);
                continue;
            }
            for (q = 0; q < POW; q++)
                yo[q] = tp[q * sw];
            for (int64_t kw = 1; kw < pl->kw; kw++) {
                const float *restrict src = tp + kw * dw;
                if (sw == 1)
                    for (q = 0; q < POW; q++)
                        yo[q] = S_MAX(src[q], yo[q]);
                else
                    for (q = 0; q < POW; q++)
                        yo[q] = S_MAX(src[q * sw], yo[q]);
            }
        }
}

/* The phase planes of one image and group (see the top of the file), and the zeros past
 * them that the last tiles read. */
GQ_ONNX_SIMD static void s_fill(const s_job_t *j, const float *x, float *buf)
{
    const gq_onnx_conv2d_t *g = j->g;
    int64_t sh = g->sh, sw = g->sw, L = j->L, R = j->R;
    if (sw == 2) { /* both column phases of a row in one pass: its even and odd columns */
        for (int64_t c = 0; c < j->Cg; c++)
            for (int64_t a = 0; a < sh; a++)
                for (int64_t i = 0; i < R; i++) {
                    float *d0 = buf + ((c * sh + a) * 2 * R + i) * L, *d1 = d0 + R * L;
                    int64_t r = i * sh + a - g->ph, iw = g->iw;
                    if (r < 0 || r >= g->ih) {
                        for (int64_t q = 0; q < L; q++)
                            d0[q] = d1[q] = 0.0f;
                        continue;
                    }
                    const float *xr = x + (c * g->ih + r) * iw;
                    for (int64_t q = 0; q < L;) {
                        int64_t c0 = 2 * q - g->pw; /* the input column of d0[q] */
                        if (c0 >= 0 && c0 + 2 * S_VW <= iw && q + S_VW <= L) {
                            s_v8 u = S_LD(xr + c0), v = S_LD(xr + c0 + S_VW);
                            S_ST(d0 + q, S_FIX(S_EVEN(u, v)));
                            S_ST(d1 + q, S_FIX(S_ODD(u, v)));
                            q += S_VW;
                        } else {
                            d0[q] = c0 >= 0 && c0 < iw ? xr[c0] : 0.0f;
                            d1[q] = c0 + 1 >= 0 && c0 + 1 < iw ? xr[c0 + 1] : 0.0f;
                            q++;
                        }
                    }
                }
    }
    for (int64_t b = 0; b < sw && sw != 2; b++) {
        /* j * sw + b - pw in [0, iw) for j in [lo, hi) */
        int64_t lo = g->pw - b > 0 ? (g->pw - b + sw - 1) / sw : 0;
        int64_t hi = (g->iw + g->pw - b + sw - 1) / sw;
        hi = hi < L ? hi : L, lo = lo < hi ? lo : hi;
        for (int64_t c = 0; c < j->Cg; c++)
            for (int64_t a = 0; a < sh; a++)
                for (int64_t i = 0; i < R; i++) {
                    float *d = buf + (((c * sh + a) * sw + b) * R + i) * L;
                    int64_t r = i * sh + a - g->ph;
                    if (r < 0 || r >= g->ih || lo == hi) {
                        memset(d, 0, (size_t)L * sizeof *d);
                        continue;
                    }
                    const float *xr = x + (c * g->ih + r) * g->iw + lo * sw + b - g->pw;
                    memset(d, 0, (size_t)lo * sizeof *d);
                    if (sw == 1)
                        memcpy(d + lo, xr, (size_t)(hi - lo) * sizeof *d);
                    else
                        for (int64_t q = 0; q < hi - lo; q++)
                            d[lo + q] = xr[q * sw];
                    memset(d + hi, 0, (size_t)(L - hi) * sizeof *d);
                }
    }
    int64_t used = j->Cg * sh * sw * R * L;
    memset(buf + used, 0, (size_t)(j->bufsz - used) * sizeof *buf);
}

/* Band bi of channel block blk of image n, group gi, from its phase planes buf. */
static void s_piece(const s_job_t *j, int64_t n, int64_t gi, int64_t blk, int64_t bi,
                    const float *buf, float *scr)
{
    const gq_onnx_conv2d_t *g = j->g;
    const gq_onnx_pool2d_t *pl = j->pl;
    int mb = j->mb;
    int64_t m0 = blk * mb, mv = j->Mg - m0 < mb ? j->Mg - m0 : mb;
    const float *wr[S_MB];
    for (int i = 0; i < mb; i++) /* the weights in place: the model's rows, no packed copy */
        wr[i] = j->w + (gi * j->Mg + m0 + (i < mv ? i : mv - 1)) * j->K;
    const float *bb = j->bias ? j->bias + gi * j->Mg + m0 : NULL;
    int64_t plane = pl ? pl->oh * pl->ow : g->oh * g->ow;
    float *y = j->y + (n * g->M + gi * j->Mg + m0) * plane;
    bool other = j->act.k != GQ_ONNX_ACT_NONE && !j->relu && !j->late;
    if (!pl) {
        int64_t r0 = bi * j->band, r1 = r0 + j->band < g->oh ? r0 + j->band : g->oh;
        s_rows(j, buf, wr, bb, mv, r0, r1, NULL, y);
        for (int64_t i = 0; other && i < mv; i++)
            gq_onnx_act_apply(&j->act, y + i * plane + r0 * g->ow, (r1 - r0) * g->ow);
        return;
    }
    int64_t p0 = bi * j->band, p1 = p0 + j->band < pl->oh ? p0 + j->band : pl->oh;
    int64_t r0 = p0 * pl->sh - pl->ph, r1 = (p1 - 1) * pl->sh - pl->ph + (pl->kh - 1) * pl->dh + 1;
    r0 = r0 > 0 ? r0 : 0, r1 = r1 < g->oh ? r1 : g->oh;
    if (r0 < r1) {
        s_rows(j, buf, wr, bb, mv, r0, r1, scr, NULL);
        for (int64_t i = 0; other && i < mv; i++)
            gq_onnx_act_apply(&j->act, scr + i * j->ss, (r1 - r0) * j->L);
    }
    s_pool_rows(j, scr, r0, r1, p0, p1, mv, scr + mb * j->ss, y);
    for (int64_t i = 0; j->late && i < mv; i++)
        gq_onnx_act_apply(&j->act, y + i * plane + p0 * pl->ow, (p1 - p0) * pl->ow);
}

/* Whether act may run on the pooled output instead of the conv's: it does not decrease
 * (so the max of the activations is the activation of the max) and every window holds a
 * conv output (no pool padding), so it runs on a quarter of the values (2x2), or fewer.
 * Not Relu: in the tile's registers it costs less than another pass. */
static bool s_late(const gq_onnx_act_t *act, const gq_onnx_pool2d_t *pl)
{
    if (pl->ph || pl->pw)
        return false;
    switch (act->k) {
    case GQ_ONNX_ACT_CLIP:
    case GQ_ONNX_ACT_SIGMOID:
    case GQ_ONNX_ACT_TANH:
        return true;
    case GQ_ONNX_ACT_LEAKYRELU:
    case GQ_ONNX_ACT_HARDSIGMOID:
        return act->a >= 0;
    default:
        return false;
    }
}

/* Task i of gq_par_for over images: image-group i on participant tid's buffers. */
static void s_image_task(void *ctx, int64_t i, int tid)
{
    const s_job_t *j = ctx;
    int64_t n = i / j->g->group, gi = i % j->g->group;
    float *buf = j->buf + tid * j->bufsz, *scr = j->scr + tid * j->scrsz;
    s_fill(j, j->x + (n * j->g->C + gi * j->Cg) * j->g->ih * j->g->iw, buf);
    for (int64_t blk = 0; blk < j->nblk; blk++)
        for (int64_t bi = 0; bi < j->nband; bi++)
            s_piece(j, n, gi, blk, bi, buf, scr);
}

/* Task i of gq_par_for over the pieces of image j->n, group j->gi (shared phase planes). */
static void s_piece_task(void *ctx, int64_t i, int tid)
{
    const s_job_t *j = ctx;
    s_piece(j, j->n, j->gi, i / j->nband, i % j->nband, j->buf, j->scr + tid * j->scrsz);
}

/* Rounds n floats up to whole 64-byte lines, so participants' buffers do not share one. */
static int64_t s_lines(int64_t n)
{
    return (n + 15) / 16 * 16;
}

gq_status gq_onnx_conv2d_pool(const gq_onnx_conv2d_t *g, const gq_onnx_pool2d_t *pl, const float *x,
                              const float *w, const float *bias, const gq_onnx_act_t *act, float *y,
                              char *err, size_t errlen)
{
    s_job_t j = {.g = g, .pl = pl, .x = x, .w = w, .bias = bias, .y = y};
    j.act = act ? *act : (gq_onnx_act_t){GQ_ONNX_ACT_NONE, 0, 0};
    j.late = pl && s_late(&j.act, pl);
    j.relu = j.act.k == GQ_ONNX_ACT_RELU;
    j.Cg = g->C / g->group, j.Mg = g->M / g->group, j.K = j.Cg * g->kh * g->kw;
    j.mb = j.Mg >= S_MB ? S_MB : 1;
    j.nblk = (j.Mg + j.mb - 1) / j.mb;
    j.L = g->ow + ((g->kw - 1) * g->dw) / g->sw;
    j.R = g->oh + ((g->kh - 1) * g->dh) / g->sh;
    j.rowwise = g->oh > 1 && (g->ow + S_VW - 1) / S_VW * S_VW - g->ow < j.L - g->ow;
    int64_t slack = j.L + S_NB1 * S_VW + 16;
    int nthr = gq_par_threads();
    int64_t work = g->N * g->M * g->oh * g->ow * j.K, images = g->N * g->group;
    if (work < GQ_PAR_MIN_WORK)
        nthr = 1;
    bool per_image = nthr == 1 || images >= 4 * (int64_t)nthr;
    /* Bands: pooled rows whose conv rows fill S_SCR_FLOATS per block; without a pool one
     * band per image, or enough pieces for every participant when an image is split. */
    if (pl) {
        int64_t win = (pl->kh - 1) * pl->dh + 1, rows = S_SCR_FLOATS / (j.mb * j.L);
        j.band = rows > win ? (rows - win) / pl->sh + 1 : 1;
        j.band = j.band < pl->oh ? j.band : pl->oh;
        j.band = j.band > 0 ? j.band : 1;
        j.nband = (pl->oh + j.band - 1) / j.band;
        j.ss = s_lines(((j.band - 1) * pl->sh + win) * j.L + slack);
        j.scrsz = s_lines(j.mb * j.ss + s_pool_tlen(g, pl) + 2 * S_VW);
    } else {
        int64_t want = per_image ? 1 : (4 * nthr + j.nblk - 1) / j.nblk;
        want = want < g->oh ? want : g->oh;
        want = want > 0 ? want : 1;
        j.band = (g->oh + want - 1) / want;
        j.nband = (g->oh + j.band - 1) / j.band;
        j.scrsz = 0;
    }
    size_t bbytes, tbytes, sbytes, bcap = 0, tcap = 0, scap = 0;
    float *buf = NULL, *scr = NULL;
    int64_t *toff = NULL;
    j.nrows = j.Cg * g->kh;
    j.bufsz = s_lines(j.Cg * g->sh * g->sw * j.R * j.L + slack);
    int64_t nbuf = per_image ? nthr : 1;
    if (gq_onnx_size3(nbuf, j.bufsz, sizeof *buf, &bbytes) &&
        gq_onnx_size3(j.nrows + g->kw, 1, sizeof *toff, &tbytes) &&
        gq_onnx_size3(nthr, j.scrsz + 16, sizeof *scr, &sbytes)) {
        buf = gq_onnx_scratch(bbytes, &bcap);
        toff = gq_onnx_scratch(tbytes, &tcap);
        scr = gq_onnx_scratch(sbytes, &scap);
    }
    gq_status rc = GQ_OK;
    if (!buf || !toff || !scr) {
        gq_errf(err, errlen, "out of memory for the direct convolution's buffers");
        rc = GQ_ENOMEM;
        goto done;
    }
    j.buf = buf, j.roff = toff, j.koff = toff + j.nrows, j.scr = scr;
    for (int64_t c = 0; c < j.Cg; c++)
        for (int64_t kh = 0; kh < g->kh; kh++) {
            int64_t rr = kh * g->dh;
            toff[c * g->kh + kh] = ((c * g->sh + rr % g->sh) * g->sw * j.R + rr / g->sh) * j.L;
        }
    for (int64_t kw = 0; kw < g->kw; kw++) {
        int64_t cc = kw * g->dw;
        toff[j.nrows + kw] = cc % g->sw * j.R * j.L + cc / g->sw;
    }
    if (per_image && nthr == 1) {
        for (int64_t i = 0; i < images; i++)
            s_image_task(&j, i, 0);
    } else if (per_image) {
        gq_par_for(images, s_image_task, &j);
    } else {
        for (j.n = 0; j.n < g->N; j.n++)
            for (j.gi = 0; j.gi < g->group; j.gi++) {
                s_fill(&j, x + (j.n * g->C + j.gi * j.Cg) * g->ih * g->iw, buf);
                gq_par_for(j.nblk * j.nband, s_piece_task, &j);
            }
    }
done:
    gq_onnx_scratch_free(buf, bcap);
    gq_onnx_scratch_free(toff, tcap);
    gq_onnx_scratch_free(scr, scap);
    return rc;
}

gq_status gq_onnx_conv2d_direct(const gq_onnx_conv2d_t *g, const float *x, const float *w,
                                const float *bias, const gq_onnx_act_t *act, float *y, char *err,
                                size_t errlen)
{
    return gq_onnx_conv2d_pool(g, NULL, x, w, bias, act, y, err, errlen);
}
