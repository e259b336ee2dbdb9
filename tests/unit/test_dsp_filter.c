/* dsp.* filter kernels called directly, over many more cases than the CLI checks can
 * afford: for random ratios and random chunkings, the streaming shape rule of dsp.resample
 * hands out every output exactly once and the chunked kernel output equals one pass bit for
 * bit; dsp.fir's FFT and direct methods agree in every mode; chunked dsp.sos and
 * dsp.lfilter equal one pass bit for bit. References against SciPy live in
 * tests/py/check_dsp_filter.py. */
#include "cpu/cpu_ops.h"
#include "optable.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            s_failures++;                                                                          \
        }                                                                                          \
    } while (0)

#define S_MAX_OUT 2

typedef struct {
    gq_args_t args;
    gq_view_t out[S_MAX_OUT];
    int nout;
} s_res_t;

static uint64_t s_rng = 88172645463325252ull;

static uint64_t s_next(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

static double s_unif(void)
{
    return (double)(s_next() >> 11) / 9007199254740992.0 - 0.5;
}

static gq_view_t s_vec(gq_dtype_t dt, void *data, int64_t n)
{
    gq_view_t v = {.desc = {.dtype = dt, .ndim = 1, .shape = {n}}, .data = data};
    v.nbytes = gq_tdesc_nbytes(&v.desc);
    return v;
}

/* Resolves, infers and runs op; outputs are malloc'd into r (free with s_free). Returns
 * the status; err holds the message. */
static gq_status s_run(const char *op, const gq_param_t *p, int np, gq_view_t *in, int nin,
                       s_res_t *r, char *err)
{
    memset(r, 0, sizeof *r);
    gq_status rc = gq_op_resolve(gq_op_find(op), p, np, &r->args, err, GQ_ERRLEN);
    gq_tdesc_t id[4], od[GQ_MAX_OUTPUTS];
    for (int i = 0; i < nin; i++)
        id[i] = in[i].desc;
    if (!rc)
        rc = gq_op_infer(&r->args, id, nin, od, &r->nout, err, GQ_ERRLEN);
    if (rc)
        return rc;
    for (int i = 0; i < r->nout; i++) {
        r->out[i].desc = od[i];
        r->out[i].nbytes = gq_tdesc_nbytes(&od[i]);
        r->out[i].data = calloc(1, r->out[i].nbytes + 8);
    }
    return gq_cpu_kernel_find(op)(&r->args, in, nin, r->out, r->nout, err, GQ_ERRLEN);
}

static void s_free(s_res_t *r)
{
    for (int i = 0; i < r->nout; i++)
        free(r->out[i].data);
}

static gq_param_t s_i(const char *name, int64_t v)
{
    return (gq_param_t){name, {.type = GQ_PT_INT, .i = v}};
}

static gq_param_t s_b(const char *name, int v)
{
    return (gq_param_t){name, {.type = GQ_PT_BOOL, .i = v}};
}

static gq_param_t s_s(const char *name, const char *v)
{
    return (gq_param_t){name, {.type = GQ_PT_STR, .s = v}};
}

static void s_test_resample_stream(void)
{
    static const int64_t ratios[][2] = {{160, 441}, {3, 2}, {1, 1}, {2, 7},     {441, 160},
                                        {5, 5},     {1, 6}, {6, 1}, {147, 160}, {13, 17}};
    char err[GQ_ERRLEN];
    int cases = 0;
    for (size_t q = 0; q < sizeof ratios / sizeof ratios[0]; q++) {
        int64_t T = 300 + (int64_t)(s_next() % 400);
        float *x = malloc((size_t)T * sizeof(float));
        for (int64_t i = 0; i < T; i++)
            x[i] = (float)s_unif();
        gq_param_t p1[] = {s_i("up", ratios[q][0]), s_i("down", ratios[q][1]),
                           s_s("res_type", "polyphase")};
        gq_view_t in1[] = {s_vec(GQ_F32, x, T)};
        s_res_t one;
        gq_status rc = s_run("dsp.resample", p1, 3, in1, 1, &one, err);
        CHECK(rc == GQ_OK, "one pass: %s", err);
        int64_t ny = one.out[0].desc.shape[0];
        for (int trial = 0; trial < 8 && rc == GQ_OK; trial++, cases++) {
            float *got = calloc((size_t)ny + 1, sizeof(float));
            int64_t pos = 0, have = 0;
            void *state = NULL;
            gq_tdesc_t sdesc = {0};
            while (1) {
                int64_t c = pos >= T ? 0 : (int64_t)(s_next() % 5 == 0 ? 0 : s_next() % 97);
                if (pos + c > T)
                    c = T - pos;
                int fin = pos + c == T && s_next() % 2;
                gq_param_t ps[] = {s_i("up", ratios[q][0]), s_i("down", ratios[q][1]),
                                   s_b("stream", 1),        s_i("pos", pos),
                                   s_b("final", fin),       s_s("res_type", "polyphase")};
                gq_view_t in[2] = {s_vec(GQ_F32, x + pos, c)};
                if (state)
                    in[1] = (gq_view_t){
                        .desc = sdesc, .data = state, .nbytes = gq_tdesc_nbytes(&sdesc)};
                s_res_t r;
                rc = s_run("dsp.resample", ps, 6, in, state ? 2 : 1, &r, err);
                CHECK(rc == GQ_OK, "ratio %lld/%lld chunk at %lld: %s", (long long)ratios[q][0],
                      (long long)ratios[q][1], (long long)pos, err);
                if (rc)
                    break;
                int64_t n = r.out[0].desc.shape[0];
                CHECK(have + n <= ny, "chunks give more outputs (%lld) than one pass (%lld)",
                      (long long)(have + n), (long long)ny);
                if (have + n <= ny)
                    memcpy(got + have, r.out[0].data, (size_t)n * sizeof(float));
                have += n;
                free(state);
                state = r.out[1].data;
                sdesc = r.out[1].desc;
                free(r.out[0].data);
                pos += c;
                if (fin)
                    break;
            }
            free(state);
            CHECK(have == ny, "ratio %lld/%lld: chunks gave %lld outputs, one pass %lld",
                  (long long)ratios[q][0], (long long)ratios[q][1], (long long)have, (long long)ny);
            CHECK(have != ny || !memcmp(got, one.out[0].data, (size_t)ny * sizeof(float)),
                  "ratio %lld/%lld: chunked output differs from one pass", (long long)ratios[q][0],
                  (long long)ratios[q][1]);
            free(got);
        }
        s_free(&one);
        free(x);
    }
    printf("dsp_filter: %d chunked resample streams equal one pass\n", cases);
}

static void s_test_fir_methods(void)
{
    static const char *const modes[] = {"full", "same", "valid"};
    char err[GQ_ERRLEN];
    int cases = 0;
    for (int trial = 0; trial < 40; trial++) {
        int64_t T = 1 + (int64_t)(s_next() % 3000), K = 1 + (int64_t)(s_next() % 300);
        double *x = malloc((size_t)T * sizeof(double)), *h = malloc((size_t)K * sizeof(double));
        for (int64_t i = 0; i < T; i++)
            x[i] = s_unif();
        for (int64_t k = 0; k < K; k++)
            h[k] = s_unif();
        for (int m = 0; m < 3; m++, cases++) {
            gq_view_t in[] = {s_vec(GQ_F64, x, T), s_vec(GQ_F64, h, K)};
            gq_param_t pd[] = {s_s("mode", modes[m]), s_s("method", "direct")};
            gq_param_t pf[] = {s_s("mode", modes[m]), s_s("method", "fft")};
            s_res_t d, f;
            CHECK(s_run("dsp.fir", pd, 2, in, 2, &d, err) == GQ_OK, "direct: %s", err);
            CHECK(s_run("dsp.fir", pf, 2, in, 2, &f, err) == GQ_OK, "fft: %s", err);
            int64_t n = d.out[0].desc.shape[0];
            double maxd = 0;
            for (int64_t i = 0; i < n; i++)
                maxd =
                    fmax(maxd, fabs(((double *)d.out[0].data)[i] - ((double *)f.out[0].data)[i]));
            CHECK(maxd < 1e-11 * (double)K, "fir %s T=%lld K=%lld: fft vs direct %g", modes[m],
                  (long long)T, (long long)K, maxd);
            s_free(&d);
            s_free(&f);
        }
        free(x);
        free(h);
    }
    printf("dsp_filter: %d FIR cases, FFT == direct\n", cases);
}

/* Chunked IIR equals one pass exactly: the state is the f64 the one pass carries. */
static void s_test_iir_chunks(void)
{
    char err[GQ_ERRLEN];
    double sos[12] = {0.1, 0.2, 0.1, 1, -0.9, 0.3, 1, -1, 0, 1, -0.5, 0};
    double b[3] = {0.2, 0.3, 0.1}, av[4] = {1, -0.6, 0.2, -0.05};
    int64_t T = 1000;
    float *x = malloc((size_t)T * sizeof(float));
    for (int64_t i = 0; i < T; i++)
        x[i] = (float)s_unif();
    for (int op = 0; op < 2; op++) {
        const char *name = op ? "dsp.lfilter" : "dsp.sos";
        gq_view_t coef[2] = {s_vec(GQ_F64, b, 3), s_vec(GQ_F64, av, 4)};
        if (!op) {
            coef[0].desc = (gq_tdesc_t){.dtype = GQ_F64, .ndim = 2, .shape = {2, 6}};
            coef[0].data = sos;
            coef[0].nbytes = sizeof sos;
        }
        int nc = op ? 2 : 1;
        gq_param_t ps[] = {s_b("stream", 1)};
        gq_view_t in[4] = {s_vec(GQ_F32, x, T), coef[0], coef[1]};
        s_res_t one;
        CHECK(s_run(name, ps, 1, in, 1 + nc, &one, err) == GQ_OK, "%s: %s", name, err);
        float *got = malloc((size_t)T * sizeof(float));
        void *state = NULL;
        gq_tdesc_t sd = {0};
        for (int64_t pos = 0; pos < T;) {
            int64_t c = (int64_t)(s_next() % 150);
            if (pos + c > T)
                c = T - pos;
            gq_view_t ci[4] = {s_vec(GQ_F32, x + pos, c), coef[0], coef[1]};
            if (state)
                ci[1 + nc] = (gq_view_t){.desc = sd, .data = state, .nbytes = gq_tdesc_nbytes(&sd)};
            s_res_t r;
            CHECK(s_run(name, ps, 1, ci, 1 + nc + (state != NULL), &r, err) == GQ_OK, "%s: %s",
                  name, err);
            memcpy(got + pos, r.out[0].data, (size_t)c * sizeof(float));
            free(r.out[0].data);
            free(state);
            state = r.out[1].data;
            sd = r.out[1].desc;
            pos += c;
        }
        CHECK(!memcmp(got, one.out[0].data, (size_t)T * sizeof(float)),
              "%s: chunked output differs from one pass", name);
        CHECK(state && !memcmp(state, one.out[1].data, one.out[1].nbytes),
              "%s: chunked final state differs", name);
        free(state);
        free(got);
        s_free(&one);
    }
    free(x);
    printf("dsp_filter: chunked sos and lfilter equal one pass\n");
}

int main(void)
{
    s_test_resample_stream();
    s_test_fir_methods();
    s_test_iir_chunks();
    if (s_failures) {
        fprintf(stderr, "test_dsp_filter: %d failures\n", s_failures);
        return 1;
    }
    printf("test_dsp_filter: ok\n");
    return 0;
}
