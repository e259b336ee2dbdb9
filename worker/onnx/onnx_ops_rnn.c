/* ONNX recurrent kernels (f32, layout 0 and 1): LSTM, GRU and RNN, forward, reverse or
 * bidirectional, with sequence_lens, initial states, peepholes, clip and the activation
 * functions ONNX names. The input projection of every time step is one GEMM per direction
 * ([T * B, I] x W^T); each step then does [B, H] x R^T (OpenBLAS) and the gate math. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"
#include "par.h"
#include "util.h"

typedef enum {
    S_SIGMOID,
    S_TANH,
    S_RELU,
    S_HARDSIGMOID,
    S_LEAKYRELU,
    S_AFFINE,
    S_SCALEDTANH,
    S_ELU,
    S_SOFTSIGN,
    S_SOFTPLUS,
    S_THRESHRELU,
} s_actk_t;

typedef struct {
    s_actk_t k;
    float a, b;
} s_act_t;

static const struct {
    const char *name;
    s_actk_t k;
    int nparams; /* how many of alpha, beta it takes from the lists */
    float a, b;  /* defaults */
} s_acts[] = {
    {"Sigmoid", S_SIGMOID, 0, 0, 0},
    {"Tanh", S_TANH, 0, 0, 0},
    {"Relu", S_RELU, 0, 0, 0},
    {"HardSigmoid", S_HARDSIGMOID, 2, 0.2f, 0.5f},
    {"LeakyRelu", S_LEAKYRELU, 1, 0.01f, 0},
    {"Affine", S_AFFINE, 2, 1, 0},
    {"ScaledTanh", S_SCALEDTANH, 2, 1, 1},
    {"Elu", S_ELU, 1, 1, 0},
    {"Softsign", S_SOFTSIGN, 0, 0, 0},
    {"Softplus", S_SOFTPLUS, 0, 0, 0},
    {"ThresholdedRelu", S_THRESHRELU, 1, 1, 0},
};

static inline float s_act(const s_act_t *f, float x)
{
    switch (f->k) {
    case S_SIGMOID:
        return 1.0f / (1.0f + expf(-x));
    case S_TANH:
        return tanhf(x);
    case S_RELU:
        return x > 0 ? x : 0;
    case S_HARDSIGMOID: {
        float y = f->a * x + f->b;
        return y < 0 ? 0 : y > 1 ? 1 : y;
    }
    case S_LEAKYRELU:
        return x >= 0 ? x : f->a * x;
    case S_AFFINE:
        return f->a * x + f->b;
    case S_SCALEDTANH:
        return f->a * tanhf(f->b * x);
    case S_ELU:
        return x >= 0 ? x : f->a * (expf(x) - 1);
    case S_SOFTSIGN:
        return x / (1 + fabsf(x));
    case S_SOFTPLUS:
        return log1pf(expf(x));
    case S_THRESHRELU:
        return x > f->a ? x : 0;
    }
    return x;
}

/* v[0..n) = f(clip(v)), in place: the activations an epilogue has on the vectorized
 * gq_onnx_act_apply (sigmoid and tanh within 4e-7), the others one at a time. */
static void s_act_vec(const s_act_t *f, float clip, float *v, int64_t n)
{
    if (clip > 0) {
        gq_onnx_act_t c = {GQ_ONNX_ACT_CLIP, -clip, clip};
        gq_onnx_act_apply(&c, v, n);
    }
    static const gq_onnx_actk_t map[] = {[S_SIGMOID] = GQ_ONNX_ACT_SIGMOID,
                                         [S_TANH] = GQ_ONNX_ACT_TANH,
                                         [S_RELU] = GQ_ONNX_ACT_RELU,
                                         [S_HARDSIGMOID] = GQ_ONNX_ACT_HARDSIGMOID,
                                         [S_LEAKYRELU] = GQ_ONNX_ACT_LEAKYRELU};
    gq_onnx_actk_t k = (size_t)f->k < sizeof map / sizeof map[0] ? map[f->k] : GQ_ONNX_ACT_NONE;
    if (k != GQ_ONNX_ACT_NONE) {
        gq_onnx_act_t a = {k, f->a, f->b};
        gq_onnx_act_apply(&a, v, n);
    } else {
        for (int64_t i = 0; i < n; i++)
            v[i] = s_act(f, v[i]);
    }
}

/* What every recurrent op shares: dims, direction, activations, clip, inputs. */
typedef struct {
    int64_t T, B, I, H, D, G; /* steps, batch, input size, hidden, directions, gates */
    bool reverse_only;
    float clip; /* <= 0: none */
    s_act_t act[2][3];
    const float *X, *W, *R, *Bias, *h0, *c0, *P;
    int64_t *lens;    /* per batch, owned */
    int64_t maxlen;   /* the longest of lens */
    bool batch_first; /* layout 1: X, states and outputs batch-major; run on copies */
    float *own[3];    /* layout 1: X, initial_h, initial_c in layout 0 */
} s_rnn_t;

/* Parses activations: nact per direction, defaults def[0..nact). */
static gq_status s_acts_read(const Onnx__NodeProto *n, s_rnn_t *r, int nact, const char **def,
                             char *err, size_t errlen)
{
    const Onnx__AttributeProto *names = gq_onnx_attr(n, "activations"),
                               *al = gq_onnx_attr(n, "activation_alpha"),
                               *be = gq_onnx_attr(n, "activation_beta");
    size_t want = (size_t)(nact * r->D), ia = 0, ib = 0;
    if (names && names->n_strings != want) {
        gq_errf(err, errlen, "activations has %zu names, want %zu", names->n_strings, want);
        return GQ_EPARAM;
    }
    for (size_t i = 0; i < want; i++) {
        const char *nm = def[i % (size_t)nact];
        size_t len = strlen(nm);
        if (names)
            nm = (const char *)names->strings[i].data, len = names->strings[i].len;
        size_t k = 0, nk = sizeof s_acts / sizeof s_acts[0];
        while (k < nk && (strlen(s_acts[k].name) != len || strncmp(s_acts[k].name, nm, len)))
            k++;
        if (k == nk) {
            gq_errf(err, errlen, "activation '%.*s' is not supported", (int)(len < 40 ? len : 40),
                    nm);
            return GQ_EUNSUPPORTED;
        }
        s_act_t *f = &r->act[i / (size_t)nact][i % (size_t)nact];
        f->k = s_acts[k].k, f->a = s_acts[k].a, f->b = s_acts[k].b;
        if (s_acts[k].nparams >= 1 && al && ia < al->n_floats)
            f->a = al->floats[ia++];
        if (s_acts[k].nparams >= 2 && be && ib < be->n_floats)
            f->b = be->floats[ib++];
    }
    return GQ_OK;
}

/* Checks in[i] is f32 of the given shape (absent is fine when optional). */
static gq_status s_shape_is(gq_onnx_val_t *const *in, int nin, int i, bool optional, int nd,
                            const int64_t *shape, char *err, size_t errlen)
{
    const gq_onnx_val_t *v = i < nin ? in[i] : NULL;
    if (!v) {
        if (optional)
            return GQ_OK;
        gq_errf(err, errlen, "input %d is required", i);
        return GQ_ESHAPE;
    }
    bool ok = v->desc.ndim == nd;
    for (int d = 0; ok && d < nd; d++)
        ok = v->desc.shape[d] == shape[d];
    if (!ok) {
        char a[96];
        gq_errf(err, errlen, "input %d is %s, want rank %d [%lld, %lld, ...]", i,
                gq_tdesc_str(&v->desc, a, sizeof a), nd, (long long)shape[0],
                (long long)(nd > 1 ? shape[1] : 0));
        return GQ_ESHAPE;
    }
    if (v->desc.dtype != GQ_F32) {
        gq_errf(err, errlen, "input %d is %s: only f32 is supported", i,
                gq_dtype_name(v->desc.dtype));
        return GQ_EDTYPE;
    }
    return GQ_OK;
}

/* dst[j, i, :] = src[i, j, :] for src [a, b, c]. */
static void s_swap01(const float *src, int64_t a, int64_t b, int64_t c, float *dst)
{
    for (int64_t i = 0; i < a; i++)
        for (int64_t j = 0; j < b; j++)
            memcpy(dst + (j * a + i) * c, src + (i * b + j) * c, (size_t)c * sizeof *dst);
}

/* Layout 1: copies X [B, T, I] and the initial states [B, D, H] into layout 0. */
static gq_status s_to_layout0(s_rnn_t *r, char *err, size_t errlen)
{
    const float *src[3] = {r->X, r->h0, r->c0};
    int64_t dims[3][3] = {{r->B, r->T, r->I}, {r->B, r->D, r->H}, {r->B, r->D, r->H}};
    for (int i = 0; i < 3; i++) {
        size_t bytes;
        if (!src[i])
            continue;
        if (!gq_onnx_size3(dims[i][0] * dims[i][1], dims[i][2], sizeof(float), &bytes) ||
            !(r->own[i] = malloc(bytes + sizeof(float)))) {
            gq_errf(err, errlen, "out of memory for the layout-0 copies");
            return GQ_ENOMEM;
        }
        s_swap01(src[i], dims[i][0], dims[i][1], dims[i][2], r->own[i]);
    }
    r->X = r->own[0], r->h0 = r->own[1] ? r->own[1] : r->h0, r->c0 = r->own[2] ? r->own[2] : r->c0;
    return GQ_OK;
}

/* Layout 1: outputs computed in layout 0 (Y [T, D, B, H], states [D, B, H]) rewritten as
 * Y [B, T, D, H] and states [B, D, H]. */
static gq_status s_to_layout1(const s_rnn_t *r, gq_onnx_val_t *out, int nout, int nstate, char *err,
                              size_t errlen)
{
    for (int o = 0; o < nout && o <= nstate; o++) {
        gq_onnx_val_t v = {0};
        v.desc = out[o].desc;
        if (o == 0)
            v.desc.shape[0] = r->B, v.desc.shape[1] = r->T, v.desc.shape[2] = r->D;
        else
            v.desc.shape[0] = r->B, v.desc.shape[1] = r->D;
        gq_status rc = gq_onnx_val_alloc(&v, err, errlen);
        if (rc)
            return rc;
        if (o == 0) /* per step t: [D, B, H] -> row t of each batch entry */
            for (int64_t t = 0; t < r->T; t++)
                for (int64_t b = 0; b < r->B; b++)
                    for (int64_t d = 0; d < r->D; d++)
                        memcpy((float *)v.data + ((b * r->T + t) * r->D + d) * r->H,
                               (const float *)out[0].data + ((t * r->D + d) * r->B + b) * r->H,
                               (size_t)r->H * sizeof(float));
        else
            s_swap01(out[o].data, r->D, r->B, r->H, v.data);
        gq_onnx_scratch_free(out[o].data, out[o].cap);
        out[o] = v;
    }
    return GQ_OK;
}

static gq_status s_setup(const Onnx__NodeProto *n, gq_onnx_val_t *const *in, int nin, int G,
                         int nact, const char **def, s_rnn_t *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    char dir[32];
    gq_status rc = gq_onnx_attr_str(n, "direction", "forward", dir, sizeof dir, err, errlen);
    if (rc || (rc = gq_onnx_need(in, nin, 3, err, errlen)))
        return rc;
    r->batch_first = gq_onnx_attr_int(n, "layout", 0) != 0;
    bool bi = !strcmp(dir, "bidirectional");
    r->reverse_only = !strcmp(dir, "reverse");
    if (!bi && !r->reverse_only && strcmp(dir, "forward")) {
        gq_errf(err, errlen, "direction '%s' is not forward, reverse or bidirectional", dir);
        return GQ_EPARAM;
    }
    const gq_tdesc_t *x = &in[0]->desc;
    r->D = bi ? 2 : 1, r->G = G;
    r->H = gq_onnx_attr_int(n, "hidden_size", in[2]->desc.ndim == 3 ? in[2]->desc.shape[2] : 0);
    if (x->ndim != 3 || r->H < 1) {
        gq_errf(err, errlen, "X must be [seq, batch, input] (rank %d) and hidden_size >= 1",
                x->ndim);
        return GQ_ESHAPE;
    }
    r->T = x->shape[r->batch_first], r->B = x->shape[!r->batch_first], r->I = x->shape[2];
    const Onnx__AttributeProto *clip = gq_onnx_attr(n, "clip");
    r->clip = clip && clip->has_f ? clip->f : 0;
    bool bf = r->batch_first;
    int64_t GH = G * r->H, sx[] = {bf ? r->B : r->T, bf ? r->T : r->B, r->I},
            sw[] = {r->D, GH, r->I}, sr[] = {r->D, GH, r->H}, sb[] = {r->D, 2 * GH},
            sh[] = {bf ? r->B : r->D, bf ? r->D : r->B, r->H}, sp[] = {r->D, 3 * r->H};
    if ((rc = s_shape_is(in, nin, 0, false, 3, sx, err, errlen)) ||
        (rc = s_shape_is(in, nin, 1, false, 3, sw, err, errlen)) ||
        (rc = s_shape_is(in, nin, 2, false, 3, sr, err, errlen)) ||
        (rc = s_shape_is(in, nin, 3, true, 2, sb, err, errlen)) ||
        (rc = s_shape_is(in, nin, 5, true, 3, sh, err, errlen)) ||
        (G == 4 && (rc = s_shape_is(in, nin, 6, true, 3, sh, err, errlen))) ||
        (G == 4 && (rc = s_shape_is(in, nin, 7, true, 2, sp, err, errlen))) ||
        (rc = s_acts_read(n, r, nact, def, err, errlen)))
        return rc;
    r->X = in[0]->data, r->W = in[1]->data, r->R = in[2]->data;
    r->Bias = nin > 3 && in[3] ? in[3]->data : NULL;
    r->h0 = nin > 5 && in[5] ? in[5]->data : NULL;
    r->c0 = G == 4 && nin > 6 && in[6] ? in[6]->data : NULL;
    r->P = G == 4 && nin > 7 && in[7] ? in[7]->data : NULL;
    if (bf && (rc = s_to_layout0(r, err, errlen)))
        return rc;
    if (!(r->lens = malloc((size_t)(r->B + 1) * sizeof *r->lens))) {
        gq_errf(err, errlen, "out of memory");
        return GQ_ENOMEM;
    }
    for (int64_t b = 0; b < r->B; b++)
        r->lens[b] = r->T;
    const gq_onnx_val_t *sl = nin > 4 ? in[4] : NULL;
    if (sl &&
        (sl->desc.ndim != 1 || sl->desc.shape[0] != r->B || !gq_onnx_dtype_int(sl->desc.dtype))) {
        char a[96];
        gq_errf(err, errlen, "sequence_lens is %s, want i32[%lld]",
                gq_tdesc_str(&sl->desc, a, sizeof a), (long long)r->B);
        return GQ_ESHAPE;
    }
    for (int64_t b = 0; sl && b < r->B; b++) {
        r->lens[b] = gq_onnx_geti(sl->data, sl->desc.dtype, b);
        if (r->lens[b] < 0 || r->lens[b] > r->T) {
            gq_errf(err, errlen, "sequence_lens[%lld] = %lld is outside 0..%lld", (long long)b,
                    (long long)r->lens[b], (long long)r->T);
            return GQ_EPARAM;
        }
    }
    for (int64_t b = 0; b < r->B; b++)
        r->maxlen = r->lens[b] > r->maxlen ? r->lens[b] : r->maxlen;
    return GQ_OK;
}

/* Allocates Y [T, D, B, H] (zeroed: steps past a sequence's length stay 0) and the final
 * states [D, B, H] for outputs 1..nstate. */
static gq_status s_outputs(const s_rnn_t *r, gq_onnx_val_t *out, int nout, int nstate, char *err,
                           size_t errlen)
{
    gq_tdesc_t y = {.dtype = GQ_F32, .ndim = 4, .shape = {r->T, r->D, r->B, r->H}};
    gq_tdesc_t h = {.dtype = GQ_F32, .ndim = 3, .shape = {r->D, r->B, r->H}};
    gq_status rc = gq_onnx_out(&out[0], &y, err, errlen);
    if (!rc)
        memset(out[0].data, 0, out[0].nbytes);
    for (int o = 1; !rc && o <= nstate && o < nout; o++)
        rc = gq_onnx_out(&out[o], &h, err, errlen);
    return rc;
}

/* xw[T * B, G * H] = X W_d^T + bias (Wb, and Rb where add_rb); bsum: room for G * H. */
static void s_project(const s_rnn_t *r, int64_t d, const bool *add_rb, float *xw, float *bsum)
{
    int64_t GH = r->G * r->H;
    gq_onnx_sgemm(false, true, r->T * r->B, GH, r->I, 1.0f, r->X, r->I, r->W + d * GH * r->I, r->I,
                  0.0f, xw, GH);
    if (!r->Bias)
        return;
    const float *wb = r->Bias + d * 2 * GH, *rb = wb + GH;
    for (int64_t j = 0; j < GH; j++) /* the summed bias, in the state row (free until the steps) */
        bsum[j] = wb[j] + (add_rb[j / r->H] ? rb[j] : 0.0f);
    gq_onnx_bias_act(NULL, NULL, bsum, xw, r->T * r->B, GH);
}

/* Time index of step s for batch entry b, or -1 when s is past its length. */
static inline int64_t s_time(const s_rnn_t *r, bool rev, int64_t s, int64_t b)
{
    return s >= r->lens[b] ? -1 : rev ? r->lens[b] - 1 - s : s;
}

/* The initial state [B, H] of direction d from init (NULL: zeros). */
static void s_init_state(const s_rnn_t *r, const float *init, int64_t d, float *h)
{
    if (init)
        memcpy(h, init + d * r->B * r->H, (size_t)(r->B * r->H) * sizeof *h);
    else
        memset(h, 0, (size_t)(r->B * r->H) * sizeof *h);
}

/* Work buffers of one run: xw [T*B, GH], hr [B, GH], h/c/tmp [B, H]; from the plan's
 * pool, so a warm plan does not fault in xw's pages each run. */
typedef struct {
    float *xw, *hr, *h, *c, *tmp;
    size_t cap[5];
} s_work_t;

static gq_status s_work_new(const s_rnn_t *r, s_work_t *w, char *err, size_t errlen)
{
    size_t sz[5];
    if (!gq_onnx_size3(r->T * r->B, r->G * r->H, sizeof(float), &sz[0]) ||
        !gq_onnx_size3(r->B, r->G * r->H, sizeof(float), &sz[1]) ||
        !gq_onnx_size3(r->B, r->H, sizeof(float), &sz[2])) {
        gq_errf(err, errlen, "the recurrent state's size overflows");
        return GQ_ETOOBIG;
    }
    sz[3] = sz[4] = sz[2];
    float **p[5] = {&w->xw, &w->hr, &w->h, &w->c, &w->tmp};
    for (int i = 0; i < 5; i++)
        if (!(*p[i] = gq_onnx_scratch(sz[i] + sizeof(float), &w->cap[i]))) {
            gq_errf(err, errlen, "out of memory for the recurrent state");
            return GQ_ENOMEM;
        }
    return GQ_OK;
}

static void s_work_free_bufs(s_work_t *w)
{
    float *p[5] = {w->xw, w->hr, w->h, w->c, w->tmp};
    for (int i = 0; i < 5; i++)
        gq_onnx_scratch_free(p[i], w->cap[i]);
    memset(w, 0, sizeof *w);
}

static void s_work_free(s_work_t *w, s_rnn_t *r)
{
    s_work_free_bufs(w);
    free(r->lens);
    free(r->own[0]), free(r->own[1]), free(r->own[2]);
}

/* Stores h (and c) of direction d: Y at each valid step, the final states at the end. */
static void s_emit(const s_rnn_t *r, int64_t d, int64_t t, int64_t b, const float *h, float *Y)
{
    memcpy(Y + ((t * r->D + d) * r->B + b) * r->H, h, (size_t)r->H * sizeof *h);
}

static void s_finals(const s_rnn_t *r, int64_t d, const s_work_t *w, gq_onnx_val_t *out, int nout,
                     int nstate)
{
    size_t BH = (size_t)(r->B * r->H);
    if (nout > 1 && nstate >= 1)
        memcpy((float *)out[1].data + d * (int64_t)BH, w->h, BH * sizeof(float));
    if (nout > 2 && nstate >= 2)
        memcpy((float *)out[2].data + d * (int64_t)BH, w->c, BH * sizeof(float));
}

/* One LSTM direction. Gates in ONNX order i, o, f, c; per batch row the pre-activations
 * are summed into hr's row, then activated a gate at a time. */
GQ_ONNX_SIMD static void s_lstm_dir(const s_rnn_t *r, int64_t d, bool rev, s_work_t *w, float *Y)
{
    int64_t H = r->H, GH = 4 * H;
    const bool add_rb[4] = {true, true, true, true};
    const float *P = r->P ? r->P + d * 3 * H : NULL;
    const s_act_t *f = &r->act[d][0], *g = &r->act[d][1], *hh = &r->act[d][2];
    bool full = true; /* every sequence T long: step s reads one block of xw */
    for (int64_t b = 0; b < r->B; b++)
        full = full && r->lens[b] == r->T;
    s_project(r, d, add_rb, w->xw, w->hr);
    s_init_state(r, r->h0, d, w->h);
    s_init_state(r, r->c0, d, w->c);
    for (int64_t s = 0; s < r->maxlen; s++) { /* no step past the longest sequence */
        /* full: the product adds into xw's block of the step (no zeroing pass, no sum) */
        float *blk = full ? w->xw + (rev ? r->T - 1 - s : s) * r->B * GH : w->hr;
        gq_onnx_sgemm(false, true, r->B, GH, H, 1.0f, w->h, H, r->R + d * GH * H, H,
                      full ? 1.0f : 0.0f, blk, GH);
        for (int64_t b = 0; b < r->B; b++) {
            int64_t t = s_time(r, rev, s, b);
            if (t < 0)
                continue;
            const float *xg = w->xw + (t * r->B + b) * GH;
            float *gt = blk + b * GH, *hb = w->h + b * H, *cb = w->c + b * H, *tmp = w->tmp + b * H;
            for (int64_t j = 0; !full && j < GH; j++)
                gt[j] += xg[j];
            for (int64_t j = 0; P && j < H; j++)
                gt[j] += P[j] * cb[j], gt[2 * H + j] += P[2 * H + j] * cb[j];
            if (!P && f->k == S_SIGMOID && !(r->clip > 0)) {
                s_act_vec(f, 0, gt, 3 * H); /* i, o, f at once: o needs no peephole here */
            } else {
                s_act_vec(f, r->clip, gt, H);         /* i */
                s_act_vec(f, r->clip, gt + 2 * H, H); /* f */
            }
            s_act_vec(g, r->clip, gt + 3 * H, H); /* c~ */
            for (int64_t j = 0; j < H; j++)
                cb[j] = gt[2 * H + j] * cb[j] + gt[j] * gt[3 * H + j];
            for (int64_t j = 0; P && j < H; j++)
                gt[H + j] += P[H + j] * cb[j];
            if (P || f->k != S_SIGMOID || r->clip > 0)
                s_act_vec(f, r->clip, gt + H, H); /* o */
            for (int64_t j = 0; j < H; j++)
                tmp[j] = cb[j];
            s_act_vec(hh, 0, tmp, H);
            for (int64_t j = 0; j < H; j++)
                hb[j] = gt[H + j] * tmp[j];
            s_emit(r, d, t, b, hb, Y);
        }
    }
}

GQ_ONNX_SIMD static void s_gru_dir(const s_rnn_t *r, int64_t d, bool rev, bool lbr, s_work_t *w,
                                   float *Y);
GQ_ONNX_SIMD static void s_rnn_dir(const s_rnn_t *r, int64_t d, bool rev, s_work_t *w, float *Y);

typedef enum { S_LSTM, S_GRU, S_RNN } s_cell_t;

typedef struct {
    s_cell_t cell;
    bool lbr;
    const s_rnn_t *r;
    s_work_t *w; /* per direction, or one shared when the directions run in turn */
    gq_onnx_val_t *out;
    int nout, nstate;
} s_dirs_job_t;

static void s_dir_run(void *ctx, int64_t d, int tid)
{
    (void)tid;
    const s_dirs_job_t *j = ctx;
    const s_rnn_t *r = j->r;
    bool rev = r->reverse_only || d == 1;
    s_work_t *w = j->w + (j->w[1].xw ? d : 0);
    if (j->cell == S_LSTM)
        s_lstm_dir(r, d, rev, w, j->out[0].data);
    else if (j->cell == S_GRU)
        s_gru_dir(r, d, rev, j->lbr, w, j->out[0].data);
    else
        s_rnn_dir(r, d, rev, w, j->out[0].data);
    s_finals(r, d, w, j->out, j->nout, j->nstate);
}

/* Runs every direction. A bidirectional layer's two directions are independent: with
 * threads to spare they run side by side, each with its own work buffers (w[0], w[1]; w[1]
 * freed here). */
static gq_status s_dirs(s_cell_t cell, bool lbr, s_rnn_t *r, s_work_t *w, gq_onnx_val_t *out,
                        int nout, int nstate, char *err, size_t errlen)
{
    s_work_t ws[2] = {{0}, {0}};
    gq_status rc = s_work_new(r, &ws[0], err, errlen);
    *w = ws[0];
    if (rc)
        return rc;
    int64_t work = r->maxlen * r->B * r->G * r->H * (r->H + r->I);
    /* Below a batch of 16 a step's products are GEMVs and small GEMMs that OpenBLAS threads
     * on its own: two directions calling it at once contend for its threads (measured: 1.5x
     * slower at batch 1, 2x faster at 32 on 2 cores). */
    bool par = r->D == 2 && r->B >= 16 && gq_par_threads() > 1 && work >= gq_par_min_work();
    if (par && (rc = s_work_new(r, &ws[1], err, errlen))) {
        s_work_free_bufs(&ws[1]);
        return rc;
    }
    s_dirs_job_t j = {cell, lbr, r, ws, out, nout, nstate};
    if (par)
        gq_par_for(2, s_dir_run, &j);
    else
        for (int64_t d = 0; d < r->D; d++)
            s_dir_run(&j, d, 0);
    s_work_free_bufs(&ws[1]);
    return GQ_OK;
}

static gq_status s_lstm(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                        gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset;
    static const char *def[] = {"Sigmoid", "Tanh", "Tanh"};
    s_rnn_t r;
    s_work_t w = {0};
    gq_status rc = s_setup(n, in, nin, 4, 3, def, &r, err, errlen);
    if (!rc && gq_onnx_attr_int(n, "input_forget", 0)) {
        gq_errf(err, errlen, "input_forget = 1 is not supported");
        rc = GQ_EUNSUPPORTED;
    }
    if (!rc && !(rc = s_outputs(&r, out, nout, 2, err, errlen)))
        rc = s_dirs(S_LSTM, false, &r, &w, out, nout, 2, err, errlen);
    if (!rc && r.batch_first)
        rc = s_to_layout1(&r, out, nout, 2, err, errlen);
    s_work_free(&w, &r);
    return rc;
}

/* One GRU direction. Gates in ONNX order z, r, h. */
GQ_ONNX_SIMD static void s_gru_dir(const s_rnn_t *r, int64_t d, bool rev, bool lbr, s_work_t *w,
                                   float *Y)
{
    int64_t H = r->H, GH = 3 * H;
    const bool add_rb[3] = {true, true, false}; /* Rbh goes inside the reset product */
    const float *Rd = r->R + d * GH * H, *rbh = r->Bias ? r->Bias + d * 2 * GH + GH + 2 * H : NULL;
    const s_act_t *f = &r->act[d][0], *g = &r->act[d][1];
    s_project(r, d, add_rb, w->xw, w->hr);
    s_init_state(r, r->h0, d, w->h);
    for (int64_t s = 0; s < r->maxlen; s++) { /* no step past the longest sequence */
        /* lbr: all three products from H; else z and r from H, h from (r . H) below. */
        gq_onnx_sgemm(false, true, r->B, lbr ? GH : 2 * H, H, 1.0f, w->h, H, Rd, H, 0.0f, w->hr,
                      GH);
        for (int64_t b = 0; b < r->B; b++) { /* z and r activated in place in hr */
            int64_t t = s_time(r, rev, s, b);
            const float *xg = w->xw + (t < 0 ? 0 : t * r->B + b) * GH;
            float *gt = w->hr + b * GH, *tmp = w->tmp + b * H;
            for (int64_t j = 0; j < 2 * H; j++)
                gt[j] += xg[j];
            s_act_vec(f, r->clip, gt, 2 * H);
            for (int64_t j = 0; !lbr && j < H; j++) /* tmp = r . H */
                tmp[j] = gt[H + j] * w->h[b * H + j];
        }
        if (!lbr) /* hr[:, 2H:3H] = (r . H) Rh^T */
            gq_onnx_sgemm(false, true, r->B, H, H, 1.0f, w->tmp, H, Rd + 2 * H * H, H, 0.0f,
                          w->hr + 2 * H, GH);
        for (int64_t b = 0; b < r->B; b++) {
            int64_t t = s_time(r, rev, s, b);
            if (t < 0)
                continue;
            const float *xg = w->xw + (t * r->B + b) * GH;
            float *gt = w->hr + b * GH, *hb = w->h + b * H, *ht = gt + 2 * H;
            for (int64_t j = 0; j < H; j++) {
                float rb = rbh ? rbh[j] : 0;
                ht[j] = lbr ? xg[2 * H + j] + gt[H + j] * (ht[j] + rb) : xg[2 * H + j] + ht[j] + rb;
            }
            s_act_vec(g, r->clip, ht, H);
            for (int64_t j = 0; j < H; j++)
                hb[j] = (1 - gt[j]) * ht[j] + gt[j] * hb[j];
            s_emit(r, d, t, b, hb, Y);
        }
    }
}

static gq_status s_gru(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                       gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset;
    static const char *def[] = {"Sigmoid", "Tanh"};
    s_rnn_t r;
    s_work_t w = {0};
    bool lbr = gq_onnx_attr_int(n, "linear_before_reset", 0) != 0;
    gq_status rc = s_setup(n, in, nin, 3, 2, def, &r, err, errlen);
    if (!rc && !(rc = s_outputs(&r, out, nout, 1, err, errlen)))
        rc = s_dirs(S_GRU, lbr, &r, &w, out, nout, 1, err, errlen);
    if (!rc && r.batch_first)
        rc = s_to_layout1(&r, out, nout, 1, err, errlen);
    s_work_free(&w, &r);
    return rc;
}

/* One plain RNN direction: H = f(X Wi^T + H Ri^T + Wb + Rb). */
GQ_ONNX_SIMD static void s_rnn_dir(const s_rnn_t *r, int64_t d, bool rev, s_work_t *w, float *Y)
{
    int64_t H = r->H;
    const bool add_rb[1] = {true};
    s_project(r, d, add_rb, w->xw, w->hr);
    s_init_state(r, r->h0, d, w->h);
    for (int64_t s = 0; s < r->maxlen; s++) { /* no step past the longest sequence */
        gq_onnx_sgemm(false, true, r->B, H, H, 1.0f, w->h, H, r->R + d * H * H, H, 0.0f, w->hr, H);
        for (int64_t b = 0; b < r->B; b++) {
            int64_t t = s_time(r, rev, s, b);
            if (t < 0)
                continue;
            float *hb = w->h + b * H, *gt = w->hr + b * H;
            for (int64_t j = 0; j < H; j++)
                gt[j] += w->xw[(t * r->B + b) * H + j];
            s_act_vec(&r->act[d][0], r->clip, gt, H);
            memcpy(hb, gt, (size_t)H * sizeof *hb);
            s_emit(r, d, t, b, hb, Y);
        }
    }
}

static gq_status s_rnn(const Onnx__NodeProto *n, int opset, gq_onnx_val_t *const *in, int nin,
                       gq_onnx_val_t *out, int nout, char *err, size_t errlen)
{
    (void)opset;
    static const char *def[] = {"Tanh"};
    s_rnn_t r;
    s_work_t w = {0};
    gq_status rc = s_setup(n, in, nin, 1, 1, def, &r, err, errlen);
    if (!rc && !(rc = s_outputs(&r, out, nout, 1, err, errlen)))
        rc = s_dirs(S_RNN, false, &r, &w, out, nout, 1, err, errlen);
    if (!rc && r.batch_first)
        rc = s_to_layout1(&r, out, nout, 1, err, errlen);
    s_work_free(&w, &r);
    return rc;
}

const gq_onnx_kernel_t gq_onnx_kernels_rnn[] = {
    {"LSTM", 7, s_lstm},
    {"GRU", 7, s_gru},
    {"RNN", 7, s_rnn},
};
const int gq_onnx_kernels_rnn_count = GQ_ONNX_COUNT(gq_onnx_kernels_rnn);
