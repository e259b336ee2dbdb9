/* Models through real processes: put a model in the broker's store, run onnx.run jobs (a
 * worker fetches the model once), pipelines ending in a model, the errors a user meets
 * (bad file, unknown digest, wrong input shape, model not last), batches of a model with a
 * symbolic batch dim alone and after another op, and a store that survives
 * a broker restart with --model-dir. The model is built here: y = Relu(x + W), x f32[2,2]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "harness.h"
#include "onnx.pb-c.h"

typedef struct {
    Onnx__ModelProto m;
    Onnx__GraphProto g;
    Onnx__OperatorSetIdProto op, *ops[1];
    Onnx__NodeProto n[2], *np[2];
    Onnx__ValueInfoProto vin, vout, *in[1], *out[1];
    Onnx__TypeProto tin;
    Onnx__TypeProto__Tensor ttin;
    Onnx__TensorShapeProto shp;
    Onnx__TensorShapeProto__Dimension dim[2], *dimp[2];
    char *n0_in[2], *n0_out[1], *n1_in[1], *n1_out[1];
    Onnx__TensorProto w, *wp[1];
    float wdata[4];
    int64_t wdims[2];
} s_model_t;

/* y = Relu(x + W). batch: x is f32[N,2] with a symbolic N and W f32[2] (broadcast);
 * else x and W are f32[2,2]. */
static uint8_t *s_build(size_t *len, float shift, int batch)
{
    static s_model_t b;
    memset(&b, 0, sizeof b);
    onnx__model_proto__init(&b.m);
    onnx__graph_proto__init(&b.g);
    onnx__operator_set_id_proto__init(&b.op);
    b.op.domain = "";
    b.op.has_version = 1, b.op.version = 17;
    b.ops[0] = &b.op;
    b.m.has_ir_version = 1, b.m.ir_version = 8;
    b.m.n_opset_import = 1, b.m.opset_import = b.ops;
    b.m.graph = &b.g;
    b.g.name = "relu_add";
    for (int i = 0; i < 2; i++) {
        onnx__node_proto__init(&b.n[i]);
        b.np[i] = &b.n[i];
    }
    b.n0_in[0] = "x", b.n0_in[1] = "W", b.n0_out[0] = "t";
    b.n1_in[0] = "t", b.n1_out[0] = "y";
    b.n[0].op_type = "Add", b.n[0].name = "add0";
    b.n[0].n_input = 2, b.n[0].input = b.n0_in, b.n[0].n_output = 1, b.n[0].output = b.n0_out;
    b.n[1].op_type = "Relu", b.n[1].name = "relu0";
    b.n[1].n_input = 1, b.n[1].input = b.n1_in, b.n[1].n_output = 1, b.n[1].output = b.n1_out;
    b.g.n_node = 2, b.g.node = b.np;
    /* x: f32[2,2] */
    onnx__value_info_proto__init(&b.vin);
    onnx__type_proto__init(&b.tin);
    onnx__type_proto__tensor__init(&b.ttin);
    onnx__tensor_shape_proto__init(&b.shp);
    for (int i = 0; i < 2; i++) {
        onnx__tensor_shape_proto__dimension__init(&b.dim[i]);
        b.dim[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        b.dim[i].dim_value = 2;
        b.dimp[i] = &b.dim[i];
    }
    if (batch) {
        b.dim[0].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
        b.dim[0].dim_param = "N";
    }
    b.shp.n_dim = 2, b.shp.dim = b.dimp;
    b.ttin.has_elem_type = 1, b.ttin.elem_type = 1, b.ttin.shape = &b.shp;
    b.tin.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, b.tin.tensor_type = &b.ttin;
    b.vin.name = "x", b.vin.type = &b.tin;
    onnx__value_info_proto__init(&b.vout);
    b.vout.name = "y";
    b.in[0] = &b.vin, b.out[0] = &b.vout;
    b.g.n_input = 1, b.g.input = b.in;
    b.g.n_output = 1, b.g.output = b.out;
    onnx__tensor_proto__init(&b.w);
    b.w.name = "W";
    b.w.has_data_type = 1, b.w.data_type = 1;
    b.wdims[0] = b.wdims[1] = 2;
    b.w.n_dims = batch ? 1 : 2, b.w.dims = b.wdims;
    for (int i = 0; i < 4; i++)
        b.wdata[i] = (float)i - 1.5f + shift;
    b.w.n_float_data = batch ? 2 : 4, b.w.float_data = b.wdata;
    b.wp[0] = &b.w;
    b.g.n_initializer = 1, b.g.initializer = b.wp;
    *len = onnx__model_proto__get_packed_size(&b.m);
    uint8_t *buf = malloc(*len);
    onnx__model_proto__pack(&b.m, buf);
    return buf;
}

static gq_tensor_t *s_x(int64_t rows)
{
    int64_t shape[2] = {rows, 2};
    gq_tensor_t *t = gq_tensor_new(GQ_F32, shape, 2);
    float *x = gq_tensor_data(t);
    for (int i = 0; i < rows * 2; i++)
        x[i] = 1.0f - 0.5f * (float)i;
    return t;
}

/* Gives job j its own x (the job holds the only reference). */
static void s_input(gq_job_t *j, int64_t rows)
{
    gq_tensor_t *x = s_x(rows);
    gq_job_input(j, x);
    gq_tensor_destroy(&x);
}

/* Runs onnx.run on x (optionally after tensor.scale 2) and checks Relu(x' + W). */
static void s_check_run(gq_client_t *c, const char *digest, int scaled)
{
    gq_tensor_t *x = s_x(2);
    gq_job_t *j = gq_job_new(scaled ? "tensor.scale" : "onnx.run");
    if (scaled) {
        gq_job_param_float(j, "factor", 2.0);
        gq_job_then(j, "onnx.run");
    }
    gq_job_param_str(j, "model", digest);
    gq_job_input(j, x);
    int rc = gq_client_run(c, j);
    GQT_CHECK(rc == GQ_OK, "onnx.run: %s (%s)", gq_status_name(rc), gq_job_error(j));
    GQT_CHECK(gq_job_output_count(j) == 1, "%d outputs", gq_job_output_count(j));
    const float *y = gq_tensor_data(gq_job_output(j, 0)), *xv = gq_tensor_data(x);
    for (int i = 0; i < 4; i++) {
        float want = (scaled ? 2.0f : 1.0f) * xv[i] + ((float)i - 1.5f);
        want = want > 0 ? want : 0;
        GQT_CHECK(y[i] == want, "y[%d] = %g, want %g", i, y[i], want);
    }
    GQT_CHECK(!strcmp(gq_job_backend(j, scaled), "cpu"), "model stage ran on %s",
              gq_job_backend(j, scaled));
    gq_job_destroy(&j);
    gq_tensor_destroy(&x);
}

static int s_run_expect(gq_client_t *c, gq_job_t *j, int want, const char *text)
{
    int rc = gq_client_run(c, j);
    GQT_CHECK(rc == want && strstr(gq_job_error(j), text), "want %s with '%s', got %s: %s",
              gq_status_name(want), text, gq_status_name(rc), gq_job_error(j));
    printf("refused as it should: %s\n", gq_job_error(j));
    gq_job_destroy(&j);
    return rc;
}

static void s_errors(gq_client_t *c, const char *digest, const uint8_t *model, size_t len)
{
    gq_model_info_t mi;
    int rc = gq_client_model_put_bytes(c, "not a model", 11, "junk.onnx", &mi, 10000);
    GQT_CHECK(rc != GQ_OK && mi.error[0], "junk accepted: %s", gq_status_name(rc));
    printf("junk refused: %s: %s\n", gq_status_name(rc), mi.error);
    rc = gq_client_model_put_bytes(c, model, len / 2, "half.onnx", &mi, 10000);
    GQT_CHECK(rc != GQ_OK && mi.error[0], "a truncated model was accepted");
    gq_job_t *j = gq_job_new("onnx.run");
    gq_job_param_str(j, "model", "0123456789abcdef0123456789abcdef");
    s_input(j, 2);
    s_run_expect(c, j, GQ_ENOMODEL, "not in the broker's store");
    j = gq_job_new("onnx.run");
    gq_job_param_str(j, "model", digest);
    s_input(j, 3);
    s_run_expect(c, j, GQ_ESHAPE, "input 0 'x' wants f32[2,2]");
    j = gq_job_new("onnx.run");
    gq_job_param_str(j, "model", digest);
    gq_job_then(j, "tensor.scale");
    s_input(j, 2);
    s_run_expect(c, j, GQ_EPARAM, "must be the last stage");
    j = gq_job_new("onnx.run");
    gq_job_param_str(j, "model", "model.onnx");
    s_input(j, 2);
    s_run_expect(c, j, GQ_EPARAM, "is not a model digest");
}

/* A model with a symbolic batch dim: concurrent jobs are concatenated along it and split
 * back, each answer equal to its own Relu(x + W); with pipeline, jobs are tensor.scale 2
 * then the model (the scale runs on the stacked inputs, the model on its rows merged), each
 * answer Relu(2x + W). */
static void s_batches(gq_client_t *cl, int pipeline)
{
    size_t len;
    uint8_t *bytes = s_build(&len, 0.0f, 1);
    gq_model_info_t mi;
    GQT_CHECK(gq_client_model_put_bytes(cl, bytes, len, "batch.onnx", &mi, 10000) == GQ_OK,
              "put batch model: %s", mi.error);
    free(bytes);
    GQT_CHECK(!strcmp(mi.inputs, "x: f32[?,2]"), "batch model inputs '%s'", mi.inputs);
    enum { N = 200 };
    gq_job_t *jobs[N];
    float f = pipeline ? 2.0f : 1.0f;
    for (int i = 0; i < N; i++) {
        int64_t shape[2] = {3, 2};
        gq_tensor_t *x = gq_tensor_new(GQ_F32, shape, 2);
        for (int e = 0; e < 6; e++)
            ((float *)gq_tensor_data(x))[e] = (float)(i % 7) - (float)e;
        if (pipeline) {
            jobs[i] = gq_job_new("tensor.scale");
            gq_job_param_float(jobs[i], "factor", f);
            gq_job_then(jobs[i], "onnx.run");
        } else {
            jobs[i] = gq_job_new("onnx.run");
        }
        gq_job_param_str(jobs[i], "model", mi.digest);
        gq_job_input(jobs[i], x);
        gq_job_cache(jobs[i], GQ_CACHE_BYPASS, 0);
        gq_tensor_destroy(&x);
        gq_client_submit(cl, jobs[i]);
    }
    int batched = 0;
    for (int i = 0; i < N; i++) {
        gq_job_t *j = NULL;
        GQT_CHECK(gq_client_collect(cl, 30000, &j) == GQ_OK && j, "collect");
        GQT_CHECK(gq_job_status(j) == GQ_OK, "batch model job: %s", gq_job_error(j));
        gq_job_timing_t t;
        gq_job_timing(j, &t);
        batched += t.batch > 1;
    }
    for (int i = 0; i < N; i++) {
        gq_tensor_t *y = gq_job_output(jobs[i], 0);
        GQT_CHECK(gq_tensor_ndim(y) == 2 && gq_tensor_shape(y)[0] == 3 &&
                      gq_tensor_shape(y)[1] == 2,
                  "job %d: output is not f32[3,2]", i);
        for (int e = 0; e < 6; e++) {
            float want = f * ((float)(i % 7) - (float)e) + ((float)(e % 2) - 1.5f);
            want = want > 0 ? want : 0;
            GQT_CHECK(((const float *)gq_tensor_data(y))[e] == want, "job %d y[%d] = %g, want %g",
                      i, e, ((const float *)gq_tensor_data(y))[e], want);
        }
        if (pipeline)
            GQT_CHECK(!strcmp(gq_job_backend(jobs[i], 1), "cpu"), "job %d: model stage on %s", i,
                      gq_job_backend(jobs[i], 1));
        gq_job_destroy(&jobs[i]);
    }
    printf("symbolic-batch model%s: %d of %d answers came from concatenated batches\n",
           pipeline ? " after tensor.scale" : "", batched, N);
    GQT_CHECK(batched > 0, "no job was batched");
}

int main(void)
{
    size_t len;
    uint8_t *model = s_build(&len, 0.0f, 0);
    char dir[] = "/tmp/gq-test-models-XXXXXX";
    GQT_CHECK(mkdtemp(dir), "mkdtemp");
    const char *args[] = {"--model-dir", dir, NULL};
    gqt_cluster_t c;
    gqt_cluster_start_args(&c, 1, 2, 4, 1000, args);
    char err[256];
    gq_client_t *cl = gq_client_new(c.front, NULL, err, sizeof err);
    GQT_CHECK(cl, "client: %s", err);
    gq_model_info_t mi;
    int rc = gq_client_model_put_bytes(cl, model, len, "relu_add.onnx", &mi, 10000);
    GQT_CHECK(rc == GQ_OK, "put: %s: %s", gq_status_name(rc), mi.error);
    printf("model %s: inputs %s, %d output(s)\n", mi.digest, mi.inputs, mi.noutputs);
    GQT_CHECK(mi.ninputs == 1 && mi.noutputs == 1 && !strcmp(mi.inputs, "x: f32[2,2]"),
              "signature '%s'", mi.inputs);
    gq_model_info_t again;
    GQT_CHECK(gq_client_model_put_bytes(cl, model, len, "same", &again, 10000) == GQ_OK &&
                  !strcmp(again.digest, mi.digest),
              "putting it twice gives the same digest");
    for (int i = 0; i < 5; i++)
        s_check_run(cl, mi.digest, i & 1);
    /* A second worker fetches the model the first time a job needs it there. */
    gqt_cluster_add_worker(&c, 1, 4);
    GQT_CHECK(gqt_wait_workers(c.front, 2, 10000) == 0, "second worker");
    gq_job_t *jobs[64];
    for (int i = 0; i < 64; i++) {
        jobs[i] = gq_job_new("onnx.run");
        gq_job_param_str(jobs[i], "model", mi.digest);
        s_input(jobs[i], 2);
        gq_client_submit(cl, jobs[i]);
    }
    int on[2] = {0, 0};
    for (int i = 0; i < 64; i++) {
        gq_job_t *j = NULL;
        GQT_CHECK(gq_client_collect(cl, 30000, &j) == GQ_OK && j, "collect");
        GQT_CHECK(gq_job_status(j) == GQ_OK, "job: %s", gq_job_error(j));
        on[!strcmp(gq_job_worker(j), "w1")]++;
    }
    for (int i = 0; i < 64; i++)
        gq_job_destroy(&jobs[i]);
    printf("64 model jobs: %d on w0, %d on w1\n", on[0], on[1]);
    /* Affinity: a second model, jobs one at a time: they stay on the worker that loaded it
     * (the other would have to fetch and load it first). */
    size_t len2;
    uint8_t *model2 = s_build(&len2, 0.25f, 0);
    gq_model_info_t mi2;
    GQT_CHECK(gq_client_model_put_bytes(cl, model2, len2, "shifted.onnx", &mi2, 10000) == GQ_OK,
              "put 2: %s", mi2.error);
    free(model2);
    char first[64] = "";
    for (int i = 0; i < 12; i++) {
        gq_job_t *j = gq_job_new("onnx.run");
        gq_job_param_str(j, "model", mi2.digest);
        s_input(j, 2);
        GQT_CHECK(gq_client_run(cl, j) == GQ_OK, "model 2: %s", gq_job_error(j));
        if (!i)
            snprintf(first, sizeof first, "%s", gq_job_worker(j));
        GQT_CHECK(!strcmp(first, gq_job_worker(j)), "job %d of model 2 went to %s, not %s", i,
                  gq_job_worker(j), first);
        gq_job_destroy(&j);
    }
    printf("12 jobs of a second model, one at a time: all on %s (model affinity)\n", first);
    char *list = NULL;
    GQT_CHECK(gq_client_models(cl, &list, 5000) == GQ_OK && strstr(list, mi.digest) &&
                  strstr(list, mi2.digest) && strstr(list, "relu_add.onnx"),
              "model list: %s", list ? list : "");
    printf("%s", list);
    free(list);
    s_errors(cl, mi.digest, model, len);
    s_batches(cl, 0);
    s_batches(cl, 1);
    gq_client_destroy(&cl);
    gqt_cluster_stop(&c);

    /* The store survives a restart: the model is a file in --model-dir. */
    gqt_cluster_start_args(&c, 1, 1, 4, 1000, args);
    cl = gq_client_new(c.front, NULL, err, sizeof err);
    GQT_CHECK(cl, "client: %s", err);
    s_check_run(cl, mi.digest, 0);
    printf("model served after a broker restart from %s\n", dir);
    gq_client_destroy(&cl);
    gqt_cluster_stop(&c);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    GQT_CHECK(system(cmd) == 0, "cleanup");
    free(model);
    printf("PASS\n");
    return 0;
}
