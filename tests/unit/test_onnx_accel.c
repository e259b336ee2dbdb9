/* ONNX models as jobs on a worker whose first backend is OpenCL: onnx.run stages run
 * through the worker's model registry (worker/models.c) with the OpenCL accelerator, the
 * steps it declines on the CPU. A model x -> MatMul -> Sin -> Relu -> y (Sin has no OpenCL
 * kernel) checks the result against C, the stage's reported backend, the fallback counter
 * of onnx.Sin from opencl (and its Prometheus line), strict mode refusing the fallback
 * naming the node, and a device allocation failure mid-run retried on the CPU (a fallback
 * of onnx.run). Skipped (77) without an OpenCL device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "check.h"
#include "exec.h"
#include "../../worker/models.h" /* the worker's (broker/ has a models.h too) */
#include "onnx_model.h"

#ifndef GQ_HAVE_OPENCL
int main(void)
{
    printf("SKIP: built without OpenCL\n");
    return 77;
}
#else
#include "opencl.h"

#define S_M 3
#define S_K 8
#define S_N 5

typedef struct {
    Onnx__ModelProto m;
    Onnx__GraphProto g;
    Onnx__OperatorSetIdProto op, *ops[1];
    Onnx__NodeProto n[3], *np[3];
    Onnx__ValueInfoProto in, out, *inp[1], *outp[1];
    char *io[3][2];
    Onnx__TensorProto w, *wp[1];
    float wdata[S_K * S_N];
    int64_t wdims[2];
} s_model_t;

/* x -> MatMul(x, W) -> Sin -> Relu -> y, W an f32[K, N] initializer. */
static uint8_t *s_model(size_t *len)
{
    static s_model_t b;
    static const char *ops[3] = {"MatMul", "Sin", "Relu"}, *names[3] = {"mm", "sin", "relu"};
    static char *outs[3] = {"t", "s", "y"};
    memset(&b, 0, sizeof b);
    onnx__model_proto__init(&b.m);
    onnx__graph_proto__init(&b.g);
    onnx__operator_set_id_proto__init(&b.op);
    b.op.domain = "", b.op.has_version = 1, b.op.version = 17;
    b.ops[0] = &b.op;
    b.m.has_ir_version = 1, b.m.ir_version = 8;
    b.m.n_opset_import = 1, b.m.opset_import = b.ops;
    b.m.graph = &b.g;
    b.io[0][0] = "x", b.io[0][1] = "W";
    b.io[1][0] = "t";
    b.io[2][0] = "s";
    for (int i = 0; i < 3; i++) {
        onnx__node_proto__init(&b.n[i]);
        b.n[i].op_type = (char *)ops[i], b.n[i].name = (char *)names[i];
        b.n[i].n_input = i ? 1 : 2, b.n[i].input = b.io[i];
        b.n[i].n_output = 1, b.n[i].output = &outs[i];
        b.np[i] = &b.n[i];
    }
    b.g.n_node = 3, b.g.node = b.np;
    onnx__value_info_proto__init(&b.in);
    onnx__value_info_proto__init(&b.out);
    b.in.name = "x", b.out.name = "y";
    b.inp[0] = &b.in, b.outp[0] = &b.out;
    b.g.n_input = 1, b.g.input = b.inp;
    b.g.n_output = 1, b.g.output = b.outp;
    onnx__tensor_proto__init(&b.w);
    b.w.name = "W";
    b.w.has_data_type = 1, b.w.data_type = 1;
    b.wdims[0] = S_K, b.wdims[1] = S_N;
    b.w.n_dims = 2, b.w.dims = b.wdims;
    for (int i = 0; i < S_K * S_N; i++)
        b.wdata[i] = (float)((i * 7) % 11 - 5) * 0.1f;
    b.w.n_float_data = S_K * S_N, b.w.float_data = b.wdata;
    b.wp[0] = &b.w;
    b.g.n_initializer = 1, b.g.initializer = b.wp;
    *len = onnx__model_proto__get_packed_size(&b.m);
    uint8_t *buf = malloc(*len + 1);
    if (buf)
        onnx__model_proto__pack(&b.m, buf);
    return buf;
}

typedef struct {
    Gq__Wire__Stage st, *stp[1];
    Gq__Wire__Param p, *pp[1];
} s_job_t;

static gq_status s_run(gq_exec_t *ex, const char *digest, const float *x, gq_exec_out_t *out,
                       char *err, size_t errlen)
{
    s_job_t j;
    gq__wire__stage__init(&j.st);
    gq__wire__param__init(&j.p);
    j.st.op = "onnx.run";
    j.p.name = "model";
    j.p.value_case = GQ__WIRE__PARAM__VALUE_S;
    j.p.s = (char *)digest;
    j.pp[0] = &j.p;
    j.st.n_params = 1, j.st.params = j.pp;
    j.stp[0] = &j.st;
    gq_view_t in;
    int64_t sh[2] = {S_M, S_K};
    gq_tdesc_init(&in.desc, GQ_F32, sh, 2);
    in.data = (void *)x;
    in.nbytes = S_M * S_K * sizeof(float);
    return gq_exec_run(ex, j.stp, 1, &in, 1, out, err, errlen);
}

/* max |got - relu(sin(x W))| */
static double s_error(const float *x, const float *w, const gq_exec_out_t *out)
{
    if (out->n != 1 || out->t[0].desc.ndim != 2 || out->t[0].desc.shape[0] != S_M ||
        out->t[0].desc.shape[1] != S_N)
        return INFINITY;
    const float *y = out->t[0].data;
    double worst = 0;
    for (int m = 0; m < S_M; m++)
        for (int n = 0; n < S_N; n++) {
            double acc = 0;
            for (int k = 0; k < S_K; k++)
                acc += (double)x[m * S_K + k] * w[k * S_N + n];
            double want = sin(acc) > 0 ? sin(acc) : 0;
            double e = fabs(y[m * S_N + n] - want);
            worst = e > worst ? e : worst;
        }
    return worst;
}

int main(void)
{
    char err[1024];
    gq_backend_config_t cfg = {.device_index = -1};
    gq_backend_t *cl = gq_backend_opencl_new(&cfg, err, sizeof err);
    if (!cl) {
        printf("no OpenCL device (%s): skipped\n", err);
        return 77;
    }
    gq_backend_t *cpu = gq_backend_cpu_new(&cfg, err, sizeof err);
    gq_exec_t *ex = calloc(1, sizeof *ex);
    gq_wmodels_t *models = gq_wmodels_new();
    size_t len = 0;
    uint8_t *bytes = s_model(&len);
    gq_status rc = GQ_OK;
    gq_onnx_model_t *m =
        bytes ? gq_onnx_model_parse(bytes, len, NULL, NULL, &rc, err, sizeof err) : NULL;
    if (!cpu || !ex || !models || !m) {
        fprintf(stderr, "set-up failed: %s\n", err);
        return 1;
    }
    char digest[33];
    snprintf(digest, sizeof digest, "%s", gq_onnx_model_digest(m));
    ex->backends[0] = cl, ex->backends[1] = cpu, ex->nbackends = 2;
    ex->hosted = gq_wmodels_run;
    ex->hosted_ctx = models;
    CHECK(gq_wmodels_fetching(models, digest) == 0, "fetching");
    rc = gq_wmodels_add(models, digest, bytes, len, err, sizeof err);
    CHECK(rc == GQ_OK, "add: %s", err);

    float x[S_M * S_K], w[S_K * S_N];
    for (int i = 0; i < S_M * S_K; i++)
        x[i] = (float)((i * 5) % 13 - 6) * 0.25f;
    for (int i = 0; i < S_K * S_N; i++)
        w[i] = (float)((i * 7) % 11 - 5) * 0.1f;

    /* two runs: MatMul and Relu on the device, Sin on the CPU, counted each time */
    for (int r = 0; r < 2; r++) {
        gq_exec_out_t out;
        rc = s_run(ex, digest, x, &out, err, sizeof err);
        CHECK(rc == GQ_OK, "run %d: %s", r, err);
        if (rc)
            break;
        CHECK(s_error(x, w, &out) < 1e-5, "run %d: max error %g", r, s_error(x, w, &out));
        CHECK(out.backend[0] && !strcmp(out.backend[0], "opencl"), "run %d ran on %s", r,
              out.backend[0] ? out.backend[0] : "(none)");
        gq_exec_out_free(&out);
        CHECK(gq_exec_fallbacks(ex, "onnx.Sin", "opencl") == (uint64_t)r + 1,
              "onnx.Sin fallbacks after run %d: %llu", r,
              (unsigned long long)gq_exec_fallbacks(ex, "onnx.Sin", "opencl"));
    }
    CHECK(gq_exec_fallbacks(ex, "onnx.MatMul", "opencl") == 0, "MatMul ran on the device");
    CHECK(gq_exec_fallbacks(ex, "onnx.Relu", "opencl") == 0, "Relu ran on the device");
    char text[4096];
    gq_exec_fallbacks_text(ex, text, sizeof text);
    CHECK(strstr(text, "gpuq_worker_fallbacks_total{op=\"onnx.Sin\",backend=\"opencl\"} 2\n"),
          "metrics: %s", text);

    /* strict: the declined step fails the job, naming node and op */
    ex->strict = 1;
    gq_exec_out_t out;
    rc = s_run(ex, digest, x, &out, err, sizeof err);
    CHECK(rc == GQ_EUNSUPPORTED && strstr(err, "'sin' (Sin)") && strstr(err, "strict"),
          "strict: %s (%s)", gq_strerror(rc), err);
    if (!rc)
        gq_exec_out_free(&out);
    ex->strict = 0;

    /* the device runs out of memory on the first buffer of the run: the run is redone on
     * the CPU, and counted as a fallback of onnx.run */
    gq_backend_opencl_inject(cl, GQ_CL_FAULT_ALLOC, -4 /* CL_MEM_OBJECT_ALLOCATION_FAILURE */, 0,
                             1);
    rc = s_run(ex, digest, x, &out, err, sizeof err);
    CHECK(rc == GQ_OK, "after an injected device OOM: %s", err);
    if (!rc) {
        CHECK(s_error(x, w, &out) < 1e-5, "retried on the cpu: max error %g", s_error(x, w, &out));
        CHECK(out.backend[0] && !strcmp(out.backend[0], "cpu"), "the retry ran on %s",
              out.backend[0] ? out.backend[0] : "(none)");
        gq_exec_out_free(&out);
    }
    CHECK(gq_exec_fallbacks(ex, "onnx.run", "opencl") == 1, "onnx.run fallbacks: %llu",
          (unsigned long long)gq_exec_fallbacks(ex, "onnx.run", "opencl"));
    gq_backend_opencl_inject(cl, GQ_CL_FAULT_ALLOC, 0, 0, 0);

    /* and the accelerator is used again by the next run */
    rc = s_run(ex, digest, x, &out, err, sizeof err);
    CHECK(rc == GQ_OK && out.backend[0] && !strcmp(out.backend[0], "opencl"), "after the retry: %s",
          rc ? err : out.backend[0]);
    if (!rc)
        gq_exec_out_free(&out);

    gq_wmodels_destroy(&models);
    gq_onnx_model_destroy(&m);
    free(bytes);
    free(ex);
    gq_backend_destroy(&cpu);
    gq_backend_destroy(&cl);
    printf("onnx accelerator: %d checks, %d failed\n", s_checks, s_failed);
    return s_failed != 0;
}
#endif
