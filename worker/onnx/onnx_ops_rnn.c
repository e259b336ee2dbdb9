/* ONNX recurrent kernels (f32, layout 0 and 1): LSTM, GRU and RNN, forward, reverse or
 * bidirectional, with sequence_lens, initial states, peepholes, clip and the activation
 * functions ONNX names. Each step computes its gates' pre-activations as bias + its input
 * rows W^T + the state rows R^T in one register-tile pass (gq_onnx_sgemm_rows, s_mode); to
 * split the work over spare threads, or for gates of other than whole vectors, the input
 * projection of every step is one GEMM per direction ([T * B, I] x W^T) first and each step
 * adds [B, H] x R^T. Then the gate math, fused in registers for the default LSTM cell. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_int.h"
#include "onnx_vec.h"
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
    int64_t *lens;  /* per batch, owned */
    int64_t maxlen; /* the longest of lens */
    /* The steps run on the rows still inside their sequence only: the batch is ordered by
     * descending length (perm[p]: the batch entry at row p), so step s's rows are the prefix
     * 0..nact[s], and its input projections are packed at rows off[s].. of xw. */
    int64_t *perm, *nact, *off; /* in lens' allocation */
    bool uniform;               /* every length the same: perm is the identity */
    bool batch_first;           /* layout 1: X, states and outputs batch-major; run on copies */
    float *own[3];              /* layout 1: X, initial_h, initial_c in layout 0 */
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

/* perm, nact, off and maxlen from lens: a counting sort by descending length, stable. */
static void s_order(s_rnn_t *r)
{
    int64_t T = r->T, B = r->B, *cnt = r->lens + B;
    r->perm = cnt + T + 2, r->nact = r->perm + B, r->off = r->nact + T;
    memset(cnt, 0, (size_t)(T + 2) * sizeof *cnt);
    for (int64_t b = 0; b < B; b++) /* cnt[T - len + 1]: rows of length len */
        cnt[T - r->lens[b] + 1]++;
    for (int64_t k = 1; k <= T + 1; k++) /* cnt[T - len]: first row of length len */
        cnt[k] += cnt[k - 1];
    for (int64_t b = 0; b < B; b++)
        r->perm[cnt[T - r->lens[b]]++] = b;
    r->maxlen = B ? r->lens[r->perm[0]] : 0;
    r->uniform = true;
    for (int64_t b = 0; b < B; b++)
        r->uniform = r->uniform && r->lens[b] == r->maxlen;
    int64_t m = B;
    r->off[0] = 0;
    for (int64_t s = 0; s < T; s++) {
        while (m > 0 && r->lens[r->perm[m - 1]] <= s)
            m--;
        r->nact[s] = m, r->off[s + 1] = r->off[s] + m;
    }
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
    /* lens [B], perm [B], nact [T], off [T + 1], count [T + 2] */
    if (!(r->lens = malloc((size_t)(3 * r->B + 3 * r->T + 4) * sizeof *r->lens))) {
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
    s_order(r);
    return GQ_OK;
}

/* Allocates Y [T, D, B, H] (zeroed where a sequence is shorter than T: those steps stay 0)
 * and the final states [D, B, H] for outputs 1..nstate. */
static gq_status s_outputs(const s_rnn_t *r, gq_onnx_val_t *out, int nout, int nstate, char *err,
                           size_t errlen)
{
    gq_tdesc_t y = {.dtype = GQ_F32, .ndim = 4, .shape = {r->T, r->D, r->B, r->H}};
    gq_tdesc_t h = {.dtype = GQ_F32, .ndim = 3, .shape = {r->D, r->B, r->H}};
    gq_status rc = gq_onnx_out(&out[0], &y, err, errlen);
    if (!rc && !(r->uniform && r->maxlen == r->T))
        memset(out[0].data, 0, out[0].nbytes);
    for (int o = 1; !rc && o <= nstate && o < nout; o++)
        rc = gq_onnx_out(&out[o], &h, err, errlen);
    return rc;
}

/* How a direction's steps get their gate pre-activations. */
typedef enum {
    S_PROJECT,      /* the input projection of every step first, one GEMM; steps on OpenBLAS */
    S_PROJECT_ROWS, /* the projection first; the steps' products on gq_onnx_sgemm_rows */
    S_FUSED,        /* per step, bias + input rows W^T + state rows R^T in one accumulation */
} s_mode_t;

/* Work buffers of one run: xs [rows, I] (X gathered in step order), xw [rows, GH] (rows:
 * the packed (step, active row) pairs, off[maxlen]; S_PROJECT*: both, else none), hr
 * [B, GH], h/c/tmp [B, H], wt [I, GH] and rt [H, GH] (W and R packed; S_FUSED, and rt
 * for S_PROJECT_ROWS), bias [GH], rows [3B] (the steps' row pointers); from the plan's pool,
 * so a warm plan does not fault in xw's pages each run. */
enum { S_NBUF = 10 };
typedef struct {
    float *xs, *xw, *hr, *h, *c, *tmp, *wt, *rt, *bias;
    const float **rows;
    size_t cap[S_NBUF];
    s_mode_t mode;
    bool projected; /* xw already holds the input projection (s_dirs made it) */
} s_work_t;

static gq_status s_work_new(const s_rnn_t *r, s_mode_t mode, s_work_t *w, char *err, size_t errlen)
{
    size_t sz[S_NBUF];
    int64_t rows = mode == S_FUSED ? 0 : r->off[r->maxlen], GH = r->G * r->H;
    if (!gq_onnx_size3(rows, r->I, sizeof(float), &sz[0]) ||
        !gq_onnx_size3(rows, GH, sizeof(float), &sz[1]) ||
        !gq_onnx_size3(r->B, GH, sizeof(float), &sz[2]) ||
        !gq_onnx_size3(r->B, r->H, sizeof(float), &sz[3]) ||
        !gq_onnx_size3(mode == S_FUSED ? r->I : 0, GH, sizeof(float), &sz[6]) ||
        !gq_onnx_size3(mode == S_PROJECT ? 0 : r->H, GH, sizeof(float), &sz[7]) ||
        !gq_onnx_size3(3, r->B, sizeof(float *), &sz[9])) {
        gq_errf(err, errlen, "the recurrent state's size overflows");
        return GQ_ETOOBIG;
    }
    sz[4] = sz[5] = sz[3], sz[8] = (size_t)GH * sizeof(float);
    float **p[S_NBUF - 1] = {&w->xs,  &w->xw, &w->hr, &w->h,   &w->c,
                             &w->tmp, &w->wt, &w->rt, &w->bias};
    w->mode = mode;
    for (int i = 0; i < S_NBUF - 1; i++)
        if (!(*p[i] = gq_onnx_scratch(sz[i] + sizeof(float), &w->cap[i])))
            break;
    if (!w->bias || !(w->rows = gq_onnx_scratch(sz[9], &w->cap[9]))) {
        gq_errf(err, errlen, "out of memory for the recurrent state");
        return GQ_ENOMEM;
    }
    return GQ_OK;
}

static void s_work_free_bufs(s_work_t *w)
{
    float *p[S_NBUF - 1] = {w->xs, w->xw, w->hr, w->h, w->c, w->tmp, w->wt, w->rt, w->bias};
    for (int i = 0; i < S_NBUF - 1; i++)
        gq_onnx_scratch_free(p[i], w->cap[i]);
    gq_onnx_scratch_free(w->rows, w->cap[9]);
    memset(w, 0, sizeof *w);
}

static void s_work_free(s_work_t *w, s_rnn_t *r)
{
    s_work_free_bufs(w);
    free(r->lens);
    free(r->own[0]), free(r->own[1]), free(r->own[2]);
}

/* Time index of step s for batch entry b (s below its length). */
static inline int64_t s_time(const s_rnn_t *r, bool rev, int64_t s, int64_t b)
{
    return rev ? r->lens[b] - 1 - s : s;
}

/* bias [GH] = Wb (+ Rb for the gates where add_rb) of direction d; zeros without B. */
static void s_bias(const s_rnn_t *r, int64_t d, const bool *add_rb, float *bias)
{
    int64_t GH = r->G * r->H;
    const float *wb = r->Bias ? r->Bias + d * 2 * GH : NULL, *rb = wb ? wb + GH : NULL;
    for (int64_t j = 0; j < GH; j++)
        bias[j] = wb ? wb[j] + (add_rb[j / r->H] ? rb[j] : 0.0f) : 0.0f;
}

/* w->xw's packed rows = X W_d^T + bias (Wb, and Rb where add_rb), row off[s] + p holding
 * step s of row p. Forward over equal lengths X is already in that order; else it is
 * gathered into w->xs first. */
static void s_project(const s_rnn_t *r, int64_t d, bool rev, const bool *add_rb, s_work_t *w)
{
    int64_t GH = r->G * r->H, I = r->I, rows = r->off[r->maxlen];
    const float *x = r->X;
    if (rev || !r->uniform) {
        for (int64_t s = 0; s < r->maxlen; s++)
            for (int64_t p = 0; p < r->nact[s]; p++) {
                int64_t b = r->perm[p], t = s_time(r, rev, s, b);
                memcpy(w->xs + (r->off[s] + p) * I, r->X + (t * r->B + b) * I,
                       (size_t)I * sizeof *x);
            }
        x = w->xs;
    }
    gq_onnx_sgemm(false, true, rows, GH, I, 1.0f, x, I, r->W + d * GH * I, I, 0.0f, w->xw, GH);
    if (!r->Bias)
        return;
    s_bias(r, d, add_rb, w->bias);
    gq_onnx_bias_act(NULL, NULL, w->bias, w->xw, rows, GH);
}

/* What the steps of direction d read besides the projection: R_d packed (but for
 * S_PROJECT), W_d packed and the summed bias (S_FUSED), the state and tmp rows' pointers
 * (rows[B + p] = h's row p, rows[2B + p] = tmp's). */
static void s_steps_prep(const s_rnn_t *r, int64_t d, const bool *add_rb, s_work_t *w)
{
    int64_t H = r->H, GH = r->G * H;
    if (w->mode != S_PROJECT)
        gq_onnx_rows_pack(r->R + d * GH * H, GH, H, H, 1, w->rt);
    if (w->mode == S_FUSED) {
        gq_onnx_rows_pack(r->W + d * GH * r->I, GH, r->I, r->I, 1, w->wt);
        s_bias(r, d, add_rb, w->bias);
    }
    for (int64_t p = 0; p < r->B; p++)
        w->rows[r->B + p] = w->h + p * H, w->rows[2 * r->B + p] = w->tmp + p * H;
}

/* rows[p] = the input row of step s's active row p (S_FUSED). */
static void s_xrows(const s_rnn_t *r, bool rev, int64_t s, s_work_t *w)
{
    for (int64_t p = 0; p < r->nact[s]; p++) {
        int64_t b = r->perm[p];
        w->rows[p] = r->X + (s_time(r, rev, s, b) * r->B + b) * r->I;
    }
}

/* The gate pre-activations [m, GH] of step s's m active rows: xw's block of the step with
 * the recurrent product added (S_PROJECT*), or hr = bias + the step's input rows W_d^T +
 * the state rows R_d^T (S_FUSED: one pass, nothing stored between). */
static float *s_gates(const s_rnn_t *r, int64_t d, bool rev, int64_t s, s_work_t *w)
{
    int64_t m = r->nact[s], H = r->H, GH = r->G * H;
    if (w->mode == S_FUSED) {
        s_xrows(r, rev, s, w);
        const gq_onnx_rows_t pr[2] = {{w->rows, r->I, w->wt}, {w->rows + r->B, H, w->rt}};
        gq_onnx_sgemm_rows(m, GH, pr, 2, w->bias, false, w->hr, GH);
        return w->hr;
    }
    float *blk = w->xw + r->off[s] * GH;
    if (w->mode == S_PROJECT_ROWS) {
        const gq_onnx_rows_t pr = {w->rows + r->B, H, w->rt};
        gq_onnx_sgemm_rows(m, GH, &pr, 1, NULL, true, blk, GH);
    } else {
        gq_onnx_sgemm(false, true, m, GH, H, 1.0f, w->h, H, r->R + d * GH * H, H, 1.0f, blk, GH);
    }
    return blk;
}

/* The initial state [B, H] of direction d from init (NULL: zeros), rows in perm's order. */
static void s_init_state(const s_rnn_t *r, const float *init, int64_t d, float *h)
{
    size_t row = (size_t)r->H * sizeof *h;
    for (int64_t p = 0; p < r->B; p++)
        if (init)
            memcpy(h + p * r->H, init + (d * r->B + r->perm[p]) * r->H, row);
        else
            memset(h + p * r->H, 0, row);
}

/* Y's row of direction d, time t, batch entry b. */
static inline float *s_yrow(const s_rnn_t *r, float *Y, int64_t d, int64_t t, int64_t b)
{
    return Y + ((t * r->D + d) * r->B + b) * r->H;
}

/* The final states of direction d, back in batch order. */
static void s_finals(const s_rnn_t *r, int64_t d, const s_work_t *w, gq_onnx_val_t *out, int nout,
                     int nstate)
{
    size_t row = (size_t)r->H * sizeof(float);
    for (int o = 1; o < nout && o <= nstate; o++)
        for (int64_t p = 0; p < r->B; p++)
            memcpy((float *)out[o].data + (d * r->B + r->perm[p]) * r->H,
                   (o == 1 ? w->h : w->c) + p * r->H, row);
}

/* onnx_vec.h's helpers, inlined into the gate math so that a gate's pre-activation goes
 * from the product to the state in registers. */
typedef gq_onnx_v8 s_v8;
typedef gq_onnx_v8u s_v8u;
#define S_LD(p) (*(const s_v8u *)(p))
#define S_ST(p, v) (*(s_v8u *)(p) = (v))

/* Eight lanes of an LSTM cell with the default activations and no clip: g points at the
 * i, o, f, c~ pre-activations (H apart), P at the peepholes (NULL: none). A division costs
 * as much as the rest of an activation, so each sigmoid is 0.5 + 0.5 tanh(x / 2) (within
 * 2e-7) and the five activations share two divisions:
 *   c' = f c + i c~ = ((Qf + Nf) c Qi Qc~ + (Qi + Ni) Nc~ Qf) / (2 Qf Qi Qc~)
 *   h' = o tanh(c') = (Qo + No) Nt / (2 Qo Qt). */
static inline __attribute__((always_inline)) void s_lstm8(const float *g, int64_t H, const float *P,
                                                          float *c, float *h)
{
    s_v8 xi = S_LD(g), xo = S_LD(g + H), xf = S_LD(g + 2 * H), cv = S_LD(c), ni, qi, nf, qf, ng, qg,
         no, qo, nt, qt;
    if (P)
        xi += S_LD(P) * cv, xf += S_LD(P + 2 * H) * cv;
    gq_onnx_tanh_nq(xi * 0.5f, &ni, &qi);
    gq_onnx_tanh_nq(xf * 0.5f, &nf, &qf);
    gq_onnx_tanh_nq(S_LD(g + 3 * H), &ng, &qg);
    s_v8 qig = qi * qg;
    cv = ((qf + nf) * cv * qig + (qi + ni) * ng * qf) / (2.0f * qf * qig);
    if (P)
        xo += S_LD(P + H) * cv;
    gq_onnx_tanh_nq(xo * 0.5f, &no, &qo);
    gq_onnx_tanh_nq(cv, &nt, &qt);
    S_ST(c, cv), S_ST(h, (qo + no) * nt / (2.0f * qo * qt));
}

/* One row of LSTM cells, fused (see s_lstm8): c and h updated in place. */
GQ_ONNX_SIMD static void s_lstm_row(const float *g, int64_t H, const float *P, float *c, float *h)
{
    int64_t j = 0;
    for (; j + 8 <= H; j += 8)
        s_lstm8(g + j, H, P ? P + j : NULL, c + j, h + j);
    if (j == H)
        return;
    float tg[32] = {0}, tp[24] = {0}, tc[8] = {0}, th[8]; /* the tail, zero-padded */
    int64_t n = H - j;
    for (int k = 0; k < 4; k++)
        memcpy(tg + 8 * k, g + k * H + j, (size_t)n * sizeof *tg);
    for (int k = 0; P && k < 3; k++)
        memcpy(tp + 8 * k, P + k * H + j, (size_t)n * sizeof *tp);
    memcpy(tc, c + j, (size_t)n * sizeof *tc);
    s_lstm8(tg, 8, P ? tp : NULL, tc, th);
    memcpy(c + j, tc, (size_t)n * sizeof *tc);
    memcpy(h + j, th, (size_t)n * sizeof *th);
}

/* One row of LSTM cells, any activations and clip: gt's gates activated one at a time. */
static void s_lstm_row_any(const s_rnn_t *r, const s_act_t *act, float *gt, const float *P,
                           float *cb, float *hb, float *tmp)
{
    int64_t H = r->H;
    const s_act_t *f = &act[0], *g = &act[1], *hh = &act[2];
    for (int64_t j = 0; P && j < H; j++)
        gt[j] += P[j] * cb[j], gt[2 * H + j] += P[2 * H + j] * cb[j];
    s_act_vec(f, r->clip, gt, H);         /* i */
    s_act_vec(f, r->clip, gt + 2 * H, H); /* f */
    s_act_vec(g, r->clip, gt + 3 * H, H); /* c~ */
    for (int64_t j = 0; j < H; j++)
        cb[j] = gt[2 * H + j] * cb[j] + gt[j] * gt[3 * H + j];
    for (int64_t j = 0; P && j < H; j++)
        gt[H + j] += P[H + j] * cb[j];
    s_act_vec(f, r->clip, gt + H, H); /* o */
    memcpy(tmp, cb, (size_t)H * sizeof *tmp);
    s_act_vec(hh, 0, tmp, H);
    for (int64_t j = 0; j < H; j++)
        hb[j] = gt[H + j] * tmp[j];
}

/* One LSTM direction. Gates in ONNX order i, o, f, c. Step s runs on its nact[s] active
 * rows (s_gates). */
static void s_lstm_dir(const s_rnn_t *r, int64_t d, bool rev, s_work_t *w, float *Y)
{
    int64_t H = r->H, GH = 4 * H;
    const bool add_rb[4] = {true, true, true, true};
    const float *P = r->P ? r->P + d * 3 * H : NULL;
    const s_act_t *act = r->act[d];
    bool fast = act[0].k == S_SIGMOID && act[1].k == S_TANH && act[2].k == S_TANH && !(r->clip > 0);
    if (!w->projected && w->mode != S_FUSED)
        s_project(r, d, rev, add_rb, w);
    s_steps_prep(r, d, add_rb, w);
    s_init_state(r, r->h0, d, w->h);
    s_init_state(r, r->c0, d, w->c);
    for (int64_t s = 0; s < r->maxlen; s++) {
        int64_t m = r->nact[s];
        float *blk = s_gates(r, d, rev, s, w);
        for (int64_t p = 0; p < m; p++) {
            float *hb = w->h + p * H, *cb = w->c + p * H;
            if (fast)
                s_lstm_row(blk + p * GH, H, P, cb, hb);
            else
                s_lstm_row_any(r, act, blk + p * GH, P, cb, hb, w->tmp);
            int64_t b = r->perm[p];
            memcpy(s_yrow(r, Y, d, s_time(r, rev, s, b), b), hb, (size_t)H * sizeof *hb);
        }
    }
}

GQ_ONNX_SIMD static void s_gru_dir(const s_rnn_t *r, int64_t d, bool rev, bool lbr, s_work_t *w,
                                   float *Y);
static void s_rnn_dir(const s_rnn_t *r, int64_t d, bool rev, s_work_t *w, float *Y);

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

/* How the steps get their gates: S_FUSED wherever gq_onnx_sgemm_rows serves (gate rows of
 * whole vectors), unless the pool has threads beyond the directions and the input
 * projection is large enough for gq_onnx_sgemm to split over them; GRU fuses then too
 * (it has no S_PROJECT_ROWS, and OpenBLAS steps after a split projection measured slower
 * at 2 threads than fused steps at 1). */
static s_mode_t s_mode(const s_rnn_t *r, s_cell_t cell)
{
    int64_t GH = r->G * r->H;
    if (GH % 8)
        return S_PROJECT;
    bool split = gq_par_threads() > r->D && r->off[r->maxlen] * GH * r->I >= (int64_t)1 << 20;
    return !split || cell == S_GRU ? S_FUSED : S_PROJECT_ROWS;
}

/* Runs every direction. A bidirectional layer's two directions are independent: with
 * threads to spare they run side by side, each with its own work buffers (w[0], w[1]; w[1]
 * freed here). */
static gq_status s_dirs(s_cell_t cell, bool lbr, s_rnn_t *r, s_work_t *w, gq_onnx_val_t *out,
                        int nout, int nstate, char *err, size_t errlen)
{
    s_work_t ws[2] = {{0}, {0}};
    s_mode_t mode = s_mode(r, cell);
    gq_status rc = s_work_new(r, mode, &ws[0], err, errlen);
    *w = ws[0];
    if (rc)
        return rc;
    int64_t work = r->maxlen * r->B * r->G * r->H * (r->H + r->I);
    /* Any batch: with gq's pool configured OpenBLAS runs on one thread (gq_par_set_threads),
     * so the two directions' small products no longer contend for its threads (they did
     * while it threaded them itself: 1.5x slower at batch 1). */
    bool par = r->D == 2 && gq_par_threads() > 1 && work >= gq_par_min_work();
    if (par && (rc = s_work_new(r, mode, &ws[1], err, errlen))) {
        s_work_free_bufs(&ws[1]);
        return rc;
    }
    s_dirs_job_t j = {cell, lbr, r, ws, out, nout, nstate};
    if (par) {
        /* Unless fused into the steps, the input projections first, one after the other,
         * each a large GEMM split over the whole pool; then the steps, whose products are
         * too small to split, side by side. (As the cells add them: Rb folds into the
         * projection but for GRU's h gate.) */
        const bool add_rb[4] = {true, true, cell != S_GRU, true};
        for (int64_t d = 0; d < 2 && mode != S_FUSED; d++) {
            s_project(r, d, r->reverse_only || d == 1, add_rb, &ws[d]);
            ws[d].projected = true;
        }
        gq_par_for(2, s_dir_run, &j);
    } else {
        for (int64_t d = 0; d < r->D; d++)
            s_dir_run(&j, d, 0);
    }
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

/* GRU's last stage on one row: h~ = g(gt[2H..3H)) in place, then h = (1 - z) h~ + z h. */
static void s_gru_update(const s_rnn_t *r, const s_act_t *g, float *gt, float *hb)
{
    int64_t H = r->H;
    float *ht = gt + 2 * H;
    s_act_vec(g, r->clip, ht, H);
    for (int64_t j = 0; j < H; j++)
        hb[j] = (1 - gt[j]) * ht[j] + gt[j] * hb[j];
}

/* One GRU direction on the fused path (S_FUSED): per step, z and r = bias + input rows W^T +
 * state rows R^T in one pass; the h gate's input part with them, its recurrent part
 * (r . h) R_h^T in the same accumulation (linear_before_reset 0), or r . (h R_h^T + Rb_h)
 * from a product of its own (1). W and R are packed over all 3H columns: 2H is a whole
 * number of 16-column panels, so the h gate's panels start 2H k floats in. */
GQ_ONNX_SIMD static void s_gru_fused(const s_rnn_t *r, int64_t d, bool rev, bool lbr, s_work_t *w,
                                     float *Y)
{
    int64_t H = r->H, GH = 3 * H, I = r->I, B = r->B;
    const float *rbh = r->Bias ? r->Bias + d * 2 * GH + GH + 2 * H : NULL;
    const float *const *xr = w->rows, *const *hr = w->rows + B, *const *tr = w->rows + 2 * B;
    const s_act_t *f = &r->act[d][0], *g = &r->act[d][1];
    const gq_onnx_rows_t zr[2] = {{xr, I, w->wt}, {hr, H, w->rt}};
    const gq_onnx_rows_t hx[2] = {{xr, I, w->wt + 2 * H * I}, {tr, H, w->rt + 2 * H * H}};
    const gq_onnx_rows_t hh = {hr, H, w->rt + 2 * H * H};
    s_init_state(r, r->h0, d, w->h);
    for (int64_t s = 0; s < r->maxlen; s++) {
        int64_t m = r->nact[s];
        s_xrows(r, rev, s, w);
        gq_onnx_sgemm_rows(m, 2 * H, zr, 2, w->bias, false, w->hr, GH);
        if (lbr) { /* h gate's input part; tmp = h R_h^T + Rb_h */
            gq_onnx_sgemm_rows(m, H, hx, 1, w->bias + 2 * H, false, w->hr + 2 * H, GH);
            gq_onnx_sgemm_rows(m, H, &hh, 1, rbh, false, w->tmp, H);
        }
        for (int64_t p = 0; p < m; p++) {
            float *gt = w->hr + p * GH, *tmp = w->tmp + p * H, *hb = w->h + p * H;
            s_act_vec(f, r->clip, gt, 2 * H);
            for (int64_t j = 0; j < H; j++) /* lbr: r . (h R_h^T + Rb_h); else tmp = r . h */
                if (lbr)
                    gt[2 * H + j] += gt[H + j] * tmp[j];
                else
                    tmp[j] = gt[H + j] * hb[j];
        }
        if (!lbr) /* h gate = (Wb_h + Rb_h) + x W_h^T + (r . h) R_h^T */
            gq_onnx_sgemm_rows(m, H, hx, 2, w->bias + 2 * H, false, w->hr + 2 * H, GH);
        for (int64_t p = 0; p < m; p++) {
            float *hb = w->h + p * H;
            s_gru_update(r, g, w->hr + p * GH, hb);
            int64_t b = r->perm[p];
            memcpy(s_yrow(r, Y, d, s_time(r, rev, s, b), b), hb, (size_t)H * sizeof *hb);
        }
    }
}

/* One GRU direction. Gates in ONNX order z, r, h; step s on its nact[s] active rows. */
GQ_ONNX_SIMD static void s_gru_dir(const s_rnn_t *r, int64_t d, bool rev, bool lbr, s_work_t *w,
                                   float *Y)
{
    int64_t H = r->H, GH = 3 * H;
    const bool add_rb[3] = {true, true, !lbr}; /* lbr: Rbh goes inside the reset product */
    if (w->mode == S_FUSED) {
        s_steps_prep(r, d, add_rb, w);
        s_gru_fused(r, d, rev, lbr, w, Y);
        return;
    }
    const float *Rd = r->R + d * GH * H, *rbh = r->Bias ? r->Bias + d * 2 * GH + GH + 2 * H : NULL;
    const s_act_t *f = &r->act[d][0], *g = &r->act[d][1];
    if (!w->projected)
        s_project(r, d, rev, (const bool[3]){true, true, false}, w);
    s_init_state(r, r->h0, d, w->h);
    for (int64_t s = 0; s < r->maxlen; s++) {
        int64_t m = r->nact[s];
        const float *blk = w->xw + r->off[s] * GH;
        /* lbr: all three products from H; else z and r from H, h from (r . H) below. */
        gq_onnx_sgemm(false, true, m, lbr ? GH : 2 * H, H, 1.0f, w->h, H, Rd, H, 0.0f, w->hr, GH);
        for (int64_t p = 0; p < m; p++) { /* z and r activated in place in hr */
            const float *xg = blk + p * GH;
            float *gt = w->hr + p * GH, *tmp = w->tmp + p * H, *hb = w->h + p * H;
            for (int64_t j = 0; j < 2 * H; j++)
                gt[j] += xg[j];
            s_act_vec(f, r->clip, gt, 2 * H);
            for (int64_t j = 0; !lbr && j < H; j++) /* tmp = r . H */
                tmp[j] = gt[H + j] * hb[j];
        }
        if (!lbr) /* hr[:, 2H:3H] = (r . H) Rh^T */
            gq_onnx_sgemm(false, true, m, H, H, 1.0f, w->tmp, H, Rd + 2 * H * H, H, 0.0f,
                          w->hr + 2 * H, GH);
        for (int64_t p = 0; p < m; p++) {
            const float *xh = blk + p * GH + 2 * H;
            float *gt = w->hr + p * GH, *hb = w->h + p * H, *ht = gt + 2 * H;
            if (lbr)
                for (int64_t j = 0; j < H; j++)
                    ht[j] = xh[j] + gt[H + j] * (ht[j] + (rbh ? rbh[j] : 0.0f));
            else
                for (int64_t j = 0; j < H; j++)
                    ht[j] += xh[j] + (rbh ? rbh[j] : 0.0f);
            s_gru_update(r, g, gt, hb);
            int64_t b = r->perm[p];
            memcpy(s_yrow(r, Y, d, s_time(r, rev, s, b), b), hb, (size_t)H * sizeof *hb);
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

/* One plain RNN direction: H = f(X Wi^T + H Ri^T + Wb + Rb), step s on its nact[s] active
 * rows, the product added into xw's block of the step. */
static void s_rnn_dir(const s_rnn_t *r, int64_t d, bool rev, s_work_t *w, float *Y)
{
    int64_t H = r->H;
    const bool add_rb[1] = {true};
    if (!w->projected && w->mode != S_FUSED)
        s_project(r, d, rev, add_rb, w);
    s_steps_prep(r, d, add_rb, w);
    s_init_state(r, r->h0, d, w->h);
    for (int64_t s = 0; s < r->maxlen; s++) {
        int64_t m = r->nact[s];
        float *blk = s_gates(r, d, rev, s, w);
        s_act_vec(&r->act[d][0], r->clip, blk, m * H);
        memcpy(w->h, blk, (size_t)(m * H) * sizeof *blk);
        for (int64_t p = 0; p < m; p++) {
            int64_t b = r->perm[p];
            memcpy(s_yrow(r, Y, d, s_time(r, rev, s, b), b), blk + p * H, (size_t)H * sizeof *blk);
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
