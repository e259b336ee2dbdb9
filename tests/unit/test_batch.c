/* What batching means, checked op by op: for every op flagged GQ_OPF_BATCHABLE, k jobs run
 * one by one on the CPU backend give, bit for bit, the rows of one run of their inputs
 * stacked along a new leading axis (common/batch.h). Also: every flagged op has a case
 * here, and gq_batch_ok refuses what must not stack. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "backend.h"
#include "batch.h"
#include "exec.h"
#include "check.h"

#define S_K 3

typedef struct {
    const char *op;
    const char *params; /* "name=value,name=value" */
    gq_dtype_t dtype;
    int ndim;
    int64_t shape[3];
} s_case_t;

static const s_case_t s_cases[] = {
    {"tensor.scale", "factor=2.5,offset=1", GQ_F32, 2, {4, 100}},
    {"tensor.clamp", "lo=-0.25,hi=0.5", GQ_F64, 1, {1000}},
    {"tensor.cast", "to=f64", GQ_F32, 2, {3, 7}},
    {"dsp.gain", "db=-6", GQ_F32, 2, {2, 500}},
    {"dsp.normalize", "axes=1", GQ_F32, 2, {2, 400}},
    {"dsp.normalize", "axes=2,mode=rms", GQ_F32, 2, {2, 400}},
    {"dsp.frame", "frame_length=64,hop_length=32", GQ_F32, 1, {1000}},
    {"dsp.overlap_add", "hop_length=16", GQ_F32, 2, {64, 30}},
    {"dsp.window", "window=hann", GQ_F32, 2, {3, 400}},
    {"dsp.fft", "", GQ_C64, 1, {256}},
    {"dsp.ifft", "norm=ortho", GQ_C64, 2, {2, 100}},
    {"dsp.rfft", "", GQ_F32, 2, {2, 512}},
    {"dsp.irfft", "", GQ_C64, 1, {257}},
    {"dsp.stft", "n_fft=256,hop_length=64", GQ_F32, 1, {4000}},
    {"dsp.istft", "n_fft=256,hop_length=64", GQ_C64, 2, {129, 40}},
    {"dsp.spectrogram", "n_fft=256,hop_length=128", GQ_F64, 2, {2, 3000}},
    {"dsp.mel", "sr=16000,n_fft=512,hop_length=160,n_mels=40", GQ_F32, 1, {8000}},
    {"dsp.logmel", "sr=16000,n_fft=512,hop_length=160,n_mels=40,ref_max=true", GQ_F32, 1, {8000}},
    {"dsp.mfcc", "sr=16000,n_fft=512,hop_length=160,n_mels=40,n_mfcc=13", GQ_F32, 1, {8000}},
    {"dsp.db", "top_db=60", GQ_F32, 2, {40, 50}},
};

static gq_exec_t s_ex;

/* Builds a stage from "name=value,..." typed by the op's spec. */
static int s_stage(const char *op, const char *text, Gq__Wire__Stage *st, Gq__Wire__Param *ps,
                   Gq__Wire__Param **pp, char (*store)[64])
{
    const gq_op_spec_t *spec = gq_op_find(op);
    gq__wire__stage__init(st);
    st->op = (char *)op;
    st->params = pp;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    char *save = NULL;
    int n = 0;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save), n++) {
        char *eq = strchr(t, '=');
        *eq = 0;
        int idx = gq_op_param_index(spec, t);
        if (idx < 0)
            return -1;
        snprintf(store[2 * n], 64, "%s", t);
        snprintf(store[2 * n + 1], 64, "%s", eq + 1);
        gq__wire__param__init(&ps[n]);
        ps[n].name = store[2 * n];
        const char *v = store[2 * n + 1];
        switch (spec->params[idx].type) {
        case GQ_PT_INT:
            ps[n].value_case = GQ__WIRE__PARAM__VALUE_I;
            ps[n].i = atoll(v);
            break;
        case GQ_PT_FLOAT:
            ps[n].value_case = GQ__WIRE__PARAM__VALUE_F;
            ps[n].f = atof(v);
            break;
        case GQ_PT_BOOL:
            ps[n].value_case = GQ__WIRE__PARAM__VALUE_B;
            ps[n].b = !strcmp(v, "true");
            break;
        default:
            ps[n].value_case = GQ__WIRE__PARAM__VALUE_S;
            ps[n].s = (char *)v;
        }
        pp[n] = &ps[n];
    }
    st->n_params = (size_t)n;
    return 0;
}

static void s_fill(void *data, size_t nbytes, unsigned seed)
{
    float *f = data;
    for (size_t i = 0; i < nbytes / sizeof *f; i++) {
        seed = seed * 1103515245u + 12345u;
        f[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f + 0.001f;
    }
    if (nbytes % sizeof *f)
        memset((char *)data + nbytes / sizeof *f * sizeof *f, 0, nbytes % sizeof *f);
}

static void s_fix_f64(void *data, size_t nbytes)
{
    /* The float fill made of doubles garbage-free values: re-fill as doubles. */
    double *d = data;
    for (size_t i = 0; i < nbytes / sizeof *d; i++)
        d[i] = (double)((i * 7919u) % 2000u) / 1000.0 - 1.0 + 0.0005;
}

static void s_run_case(const s_case_t *c)
{
    Gq__Wire__Stage st, *stp = &st;
    Gq__Wire__Param ps[GQ_MAX_PARAMS], *pp[GQ_MAX_PARAMS];
    char store[2 * GQ_MAX_PARAMS][64];
    char err[GQ_ERRLEN];
    if (s_stage(c->op, c->params, &st, ps, pp, store)) {
        CHECK(0, "%s: bad params '%s' in the test", c->op, c->params);
        return;
    }
    gq_tdesc_t one, stacked;
    gq_tdesc_init(&one, c->dtype, c->shape, c->ndim);
    gq_batch_stack_desc(&one, S_K, &stacked);
    size_t row = gq_tdesc_nbytes(&one);
    char *all = aligned_alloc(64, (row * S_K + 63) / 64 * 64);
    for (int m = 0; m < S_K; m++) {
        s_fill(all + m * row, row, 17u + (unsigned)m * 31u);
        if (c->dtype == GQ_F64)
            s_fix_f64(all + m * row, row);
        if (m == 1 && c->dtype == GQ_F64)
            ((double *)(all + m * row))[0] = 3.0; /* rows differ */
    }
    /* The op table must agree that it stacks. */
    gq_param_t raw[GQ_MAX_PARAMS];
    int np = gq_wire_stage_params(&st, raw, GQ_MAX_PARAMS);
    gq_args_t args;
    gq_status rc = gq_op_resolve(gq_op_find(c->op), raw, np, &args, err, sizeof err);
    CHECK(rc == GQ_OK, "%s: resolve: %s", c->op, err);
    CHECK(gq_batch_ok(&args, 1, &one, 1), "%s %s: gq_batch_ok refuses", c->op, c->params);
    gq_view_t in = {stacked, all, row * S_K};
    gq_exec_out_t big = {0}, alone = {0};
    rc = gq_exec_run(&s_ex, &stp, 1, &in, 1, &big, err, sizeof err);
    CHECK(rc == GQ_OK, "%s stacked: %s", c->op, err);
    for (int m = 0; m < S_K && rc == GQ_OK; m++) {
        gq_view_t v = {one, all + m * row, row};
        gq_status r2 = gq_exec_run(&s_ex, &stp, 1, &v, 1, &alone, err, sizeof err);
        CHECK(r2 == GQ_OK, "%s alone: %s", c->op, err);
        if (r2)
            break;
        CHECK(alone.n == big.n, "%s: %d outputs alone, %d stacked", c->op, alone.n, big.n);
        for (int o = 0; o < alone.n && o < big.n; o++) {
            size_t orow = alone.t[o].nbytes;
            CHECK(big.t[o].nbytes == orow * S_K, "%s: output %d is %zu bytes, want %zu x %d", c->op,
                  o, big.t[o].nbytes, orow, S_K);
            CHECK(big.t[o].desc.shape[0] == S_K, "%s: output %d has no leading %d", c->op, o, S_K);
            if (big.t[o].nbytes == orow * S_K)
                CHECK(!memcmp((char *)big.t[o].data + m * orow, alone.t[o].data, orow),
                      "%s %s: row %d of the stacked run differs from the job alone", c->op,
                      c->params, m);
        }
        gq_exec_out_free(&alone);
    }
    gq_exec_out_free(&big);
    free(all);
}

/* Every op flagged batchable has a case: a new flag cannot skip this test. */
static void s_check_coverage(void)
{
    for (int i = 0; i < gq_op_count(); i++) {
        const gq_op_spec_t *op = gq_op_at(i);
        if (!(op->flags & GQ_OPF_BATCHABLE))
            continue;
        int found = 0;
        for (size_t k = 0; k < sizeof s_cases / sizeof s_cases[0]; k++)
            found |= !strcmp(s_cases[k].op, op->name);
        CHECK(found, "%s is GQ_OPF_BATCHABLE but has no case in test_batch", op->name);
    }
}

/* What must not stack: unflagged ops, and a flagged pipeline stage fed a shape its rule
 * cannot take stacked. */
static void s_check_refusals(void)
{
    static const struct {
        const char *op;
        int nin;
    } no[] = {{"tensor.sum", 1},
              {"tensor.add", 2},
              {"dsp.fir", 2},
              {"dsp.resample", 1},
              {"dsp.loudness", 1}};
    gq_tdesc_t d[2];
    int64_t shape[] = {4, 100};
    gq_tdesc_init(&d[0], GQ_F32, shape, 2);
    gq_tdesc_init(&d[1], GQ_F32, shape + 1, 1);
    char err[GQ_ERRLEN];
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        gq_args_t a;
        gq_param_t p[1] = {{.name = "sr", .v = {.type = GQ_PT_FLOAT, .f = 16000}}};
        int np = !strcmp(no[i].op, "dsp.resample") || !strcmp(no[i].op, "dsp.loudness");
        if (!strcmp(no[i].op, "dsp.resample"))
            p[0].v = (gq_value_t){.type = GQ_PT_FLOAT, .f = 16000};
        if (gq_op_resolve(gq_op_find(no[i].op), p, np, &a, err, sizeof err)) {
            CHECK(0, "%s: %s", no[i].op, err);
            continue;
        }
        CHECK(!gq_batch_ok(&a, 1, d, no[i].nin), "%s must not stack", no[i].op);
    }
    /* Eight dims leave no room for the batch axis. */
    gq_tdesc_t deep;
    int64_t eight[GQ_MAX_DIMS] = {1, 1, 1, 1, 1, 1, 1, 4};
    gq_tdesc_init(&deep, GQ_F32, eight, GQ_MAX_DIMS);
    gq_args_t a;
    gq_op_resolve(gq_op_find("tensor.scale"), NULL, 0, &a, err, sizeof err);
    CHECK(!gq_batch_ok(&a, 1, &deep, 1), "a rank-8 input cannot stack");
}

int main(void)
{
    char err[GQ_ERRLEN];
    gq_backend_config_t cfg = {.device_index = -1, .threads = 1};
    s_ex.backends[0] = gq_backend_cpu_new(&cfg, err, sizeof err);
    if (!s_ex.backends[0]) {
        fprintf(stderr, "cpu backend: %s\n", err);
        return 1;
    }
    s_ex.nbackends = 1;
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++)
        s_run_case(&s_cases[i]);
    s_check_coverage();
    s_check_refusals();
    gq_backend_destroy(&s_ex.backends[0]);
    printf("test_batch: %d checks, %d failed\n", s_checks, s_failed);
    return s_failed ? 1 : 0;
}
