/* The ONNX model loader: every model of the ONNX backend node test suite (Debian's
 * libonnx-testdata) loads, or is refused for a stated, expected reason; their test tensors
 * decode; hostile files built here (truncations, bit flips, deep nesting, dangling names,
 * duplicate definitions, external data escaping the model's directory, size lies) give
 * errors naming the cause and never crash (ASan/UBSan run this in CI). */
#include "onnx_model.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

#define S_TESTDATA "/usr/include/onnx/backend/test/data/node"

/* ---- building models here ---- */

static Onnx__ValueInfoProto *s_vi(const char *name)
{
    Onnx__ValueInfoProto *v = calloc(1, sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = (char *)name;
    return v;
}

typedef struct {
    Onnx__ModelProto m;
    Onnx__GraphProto g;
    Onnx__OperatorSetIdProto op;
    Onnx__OperatorSetIdProto *ops[1];
    Onnx__NodeProto n[2];
    Onnx__NodeProto *np[2];
    Onnx__ValueInfoProto *in[1], *out[1];
    char *n0_in[2], *n0_out[1], *n1_in[1], *n1_out[1];
    Onnx__TensorProto w;
    Onnx__TensorProto *wp[1];
    float wdata[4];
    int64_t wdims[2];
} s_model_t;

/* x -> Add(x, W) -> t -> Relu -> y, W an f32[2,2] initializer. */
static void s_model_init(s_model_t *b)
{
    memset(b, 0, sizeof *b);
    onnx__model_proto__init(&b->m);
    onnx__graph_proto__init(&b->g);
    onnx__operator_set_id_proto__init(&b->op);
    b->op.domain = "";
    b->op.has_version = 1;
    b->op.version = 17;
    b->ops[0] = &b->op;
    b->m.has_ir_version = 1;
    b->m.ir_version = 8;
    b->m.n_opset_import = 1;
    b->m.opset_import = b->ops;
    b->m.graph = &b->g;
    for (int i = 0; i < 2; i++) {
        onnx__node_proto__init(&b->n[i]);
        b->np[i] = &b->n[i];
    }
    b->n0_in[0] = "x", b->n0_in[1] = "W", b->n0_out[0] = "t";
    b->n1_in[0] = "t", b->n1_out[0] = "y";
    b->n[0].op_type = "Add", b->n[0].name = "add0";
    b->n[0].n_input = 2, b->n[0].input = b->n0_in, b->n[0].n_output = 1, b->n[0].output = b->n0_out;
    b->n[1].op_type = "Relu", b->n[1].name = "relu0";
    b->n[1].n_input = 1, b->n[1].input = b->n1_in, b->n[1].n_output = 1, b->n[1].output = b->n1_out;
    b->g.n_node = 2, b->g.node = b->np;
    b->in[0] = s_vi("x");
    b->out[0] = s_vi("y");
    b->g.n_input = 1, b->g.input = b->in;
    b->g.n_output = 1, b->g.output = b->out;
    onnx__tensor_proto__init(&b->w);
    b->w.name = "W";
    b->w.has_data_type = 1, b->w.data_type = 1;
    b->wdims[0] = b->wdims[1] = 2;
    b->w.n_dims = 2, b->w.dims = b->wdims;
    for (int i = 0; i < 4; i++)
        b->wdata[i] = (float)i - 1.5f;
    b->w.n_float_data = 4, b->w.float_data = b->wdata;
    b->wp[0] = &b->w;
    b->g.n_initializer = 1, b->g.initializer = b->wp;
}

static void s_model_fini(s_model_t *b)
{
    free(b->in[0]);
    free(b->out[0]);
}

static uint8_t *s_pack(const Onnx__ModelProto *m, size_t *len)
{
    *len = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = malloc(*len + 1);
    onnx__model_proto__pack(m, buf);
    return buf;
}

/* Parses b; returns the status, err filled. */
static gq_status s_try(const s_model_t *b, const char *dir, char *err, size_t errlen)
{
    size_t len;
    uint8_t *buf = s_pack(&b->m, &len);
    gq_status rc = GQ_EINTERNAL;
    gq_onnx_model_t *m = gq_onnx_model_parse(buf, len, dir, NULL, &rc, err, errlen);
    gq_onnx_model_destroy(&m);
    free(buf);
    return rc;
}

static void s_test_built(void)
{
    s_model_t b;
    char err[256];
    s_model_init(&b);
    size_t len;
    uint8_t *buf = s_pack(&b.m, &len);
    gq_status rc;
    gq_onnx_model_t *m = gq_onnx_model_parse(buf, len, NULL, NULL, &rc, err, sizeof err);
    CHECK(m, "a well-formed model: %s", err);
    if (m) {
        CHECK(gq_onnx_model_opset(m) == 17, "opset %d", gq_onnx_model_opset(m));
        CHECK(gq_onnx_model_node_count(m) == 2, "nodes");
        const gq_onnx_tensor_t *w = gq_onnx_model_tensor_find(m, "W");
        CHECK(w && w->desc.dtype == GQ_F32 && w->desc.ndim == 2 && w->nbytes == 16 &&
                  ((const float *)w->data)[3] == 1.5f && ((uintptr_t)w->data % 64) == 0,
              "initializer W");
        CHECK(strlen(gq_onnx_model_digest(m)) == 32, "digest");
        gq_onnx_model_destroy(&m);
        CHECK(m == NULL, "destroy nulls");
    }

    /* Every truncation and many bit flips: an error or a model, never a crash. */
    int refused = 0;
    for (size_t cut = 0; cut < len; cut++) {
        m = gq_onnx_model_parse(buf, cut, NULL, NULL, &rc, err, sizeof err);
        refused += m == NULL;
        gq_onnx_model_destroy(&m);
    }
    CHECK(refused >= (int)len / 2, "truncations refused: %d of %zu", refused, len);
    srand(7);
    uint8_t *mut = malloc(len);
    for (int k = 0; k < 5000; k++) {
        memcpy(mut, buf, len);
        for (int f = 0; f < 1 + k % 4; f++)
            mut[(size_t)rand() % len] ^= (uint8_t)(1u << (rand() % 8));
        m = gq_onnx_model_parse(mut, len, NULL, NULL, &rc, err, sizeof err);
        gq_onnx_model_destroy(&m);
    }
    free(mut);
    free(buf);

    /* Names that do not resolve, twice-defined names, missing pieces. */
    b.n1_in[0] = "nothing";
    rc = s_try(&b, NULL, err, sizeof err);
    CHECK(rc == GQ_EFORMAT && strstr(err, "relu0") && strstr(err, "'nothing'"), "dangling: %s",
          err);
    b.n1_in[0] = "t";
    b.n1_out[0] = "t";
    rc = s_try(&b, NULL, err, sizeof err);
    CHECK(rc == GQ_EFORMAT && strstr(err, "'t' is defined twice"), "duplicate: %s", err);
    b.n1_out[0] = "y";
    b.out[0]->name = "z";
    rc = s_try(&b, NULL, err, sizeof err);
    CHECK(rc == GQ_EFORMAT && strstr(err, "'z' is never computed"), "output: %s", err);
    b.out[0]->name = "y";
    b.in[0]->name = "";
    rc = s_try(&b, NULL, err, sizeof err);
    CHECK(rc == GQ_EFORMAT && strstr(err, "input 0 has no name"), "unnamed input: %s", err);
    b.in[0]->name = "x";
    b.n[0].domain = "com.microsoft";
    rc = s_try(&b, NULL, err, sizeof err);
    CHECK(rc == GQ_EUNSUPPORTED && strstr(err, "com.microsoft") && strstr(err, "add0"),
          "domain: %s", err);
    b.n[0].domain = NULL;
    b.op.version = 23;
    rc = s_try(&b, NULL, err, sizeof err);
    CHECK(rc == GQ_EUNSUPPORTED && strstr(err, "opset 23"), "opset: %s", err);
    b.op.version = 17;
    b.n[1].op_type = "";
    rc = s_try(&b, NULL, err, sizeof err);
    CHECK(rc == GQ_EFORMAT && strstr(err, "no op_type"), "op_type: %s", err);
    b.n[1].op_type = "Relu";
    b.n[0].n_output = 0;
    rc = s_try(&b, NULL, err, sizeof err);
    CHECK(rc == GQ_EFORMAT && strstr(err, "(Add) has no outputs"), "no outputs: %s", err);
    b.n[0].n_output = 1;

    /* Initializer sizes that lie, types gq has not, absurd dims. */
    b.w.n_float_data = 3;
    rc = s_try(&b, NULL, err, sizeof err);
    CHECK(rc == GQ_EFORMAT && strstr(err, "'W'") && strstr(err, "float_data holds 3"),
          "short data: %s", err);
    b.w.n_float_data = 4;
    b.w.data_type = 16;
    rc = s_try(&b, NULL, err, sizeof err);
    CHECK(rc == GQ_EDTYPE && strstr(err, "BFLOAT16"), "bf16: %s", err);
    b.w.data_type = 1;
    int64_t huge[2] = {1ll << 40, 1ll << 40};
    b.w.dims = huge;
    rc = s_try(&b, NULL, err, sizeof err);
    CHECK(rc == GQ_EFORMAT || rc == GQ_ETOOBIG, "huge dims: %s", err);
    huge[0] = 1 << 20, huge[1] = 1 << 20;
    rc = s_try(&b, NULL, err, sizeof err);
    CHECK(rc == GQ_ETOOBIG && strstr(err, "tensor limit"), "4 TiB tensor: %s", err);
    b.w.dims = b.wdims;
    b.w.has_raw_data = 1;
    uint8_t raw[15] = {0};
    b.w.raw_data.data = raw;
    b.w.raw_data.len = sizeof raw;
    rc = s_try(&b, NULL, err, sizeof err);
    CHECK(rc == GQ_EFORMAT && strstr(err, "raw_data holds 15"), "raw: %s", err);
    b.w.has_raw_data = 0;

    /* External data: beside the model only, sizes checked. */
    char dir[] = "/tmp/gq-onnx-XXXXXX";
    CHECK(mkdtemp(dir), "mkdtemp");
    char path[512];
    snprintf(path, sizeof path, "%s/w.bin", dir);
    FILE *f = fopen(path, "wb");
    float ext[5] = {9, 8, 7, 6, 5};
    fwrite(ext, sizeof ext, 1, f);
    fclose(f);
    Onnx__StringStringEntryProto e[2], *ep[2] = {&e[0], &e[1]};
    for (int i = 0; i < 2; i++)
        onnx__string_string_entry_proto__init(&e[i]);
    e[0].key = "location", e[0].value = "w.bin";
    e[1].key = "offset", e[1].value = "4";
    b.w.n_float_data = 0;
    b.w.has_data_location = 1;
    b.w.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    b.w.n_external_data = 2, b.w.external_data = ep;
    buf = s_pack(&b.m, &len);
    m = gq_onnx_model_parse(buf, len, dir, NULL, &rc, err, sizeof err);
    CHECK(m && ((const float *)gq_onnx_model_tensor(m, 0)->data)[0] == 8.0f, "external: %s", err);
    gq_onnx_model_destroy(&m);
    free(buf);
    rc = s_try(&b, NULL, err, sizeof err);
    CHECK(rc == GQ_EFORMAT && strstr(err, "not allowed"), "external without dir: %s", err);
    e[1].value = "8";
    rc = s_try(&b, dir, err, sizeof err);
    CHECK(rc == GQ_EFORMAT && strstr(err, "holds 20 bytes"), "external short: %s", err);
    e[1].value = "0";
    e[0].value = "../etc/passwd";
    rc = s_try(&b, dir, err, sizeof err);
    CHECK(rc == GQ_EFORMAT && strstr(err, "beside the model"), "escape: %s", err);
    e[0].value = "/etc/passwd";
    rc = s_try(&b, dir, err, sizeof err);
    CHECK(rc == GQ_EFORMAT && strstr(err, "beside the model"), "absolute: %s", err);
    e[0].value = "missing.bin";
    rc = s_try(&b, dir, err, sizeof err);
    CHECK(rc == GQ_EIO && strstr(err, "missing.bin"), "missing: %s", err);
    unlink(path);
    rmdir(dir);
    s_model_fini(&b);
}

/* A model whose If nests graphs 200 deep: refused by the depth pre-check before the
 * recursive decoder could run out of stack. Built as raw protobuf bytes, inside out. */
static void s_test_deep(void)
{
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap), *tmp = malloc(cap);
    for (int level = 0; level < 200; level++) {
        /* graph { node { attribute { g: <buf> } } } as fields 1 / 5 / 6 */
        size_t n = 0;
        const int fields[3] = {6, 5, 1};
        memcpy(tmp, buf, len);
        for (int k = 0; k < 3; k++) {
            uint8_t hdr[12];
            size_t h = 0;
            hdr[h++] = (uint8_t)(fields[k] << 3 | 2);
            for (size_t v = len;; v >>= 7) {
                hdr[h++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
                if (v < 0x80)
                    break;
            }
            memmove(tmp + h, tmp, len);
            memcpy(tmp, hdr, h);
            len += h;
            n = len;
        }
        memcpy(buf, tmp, n);
    }
    /* model { ir_version: 8, graph: <buf> } */
    uint8_t *model = malloc(len + 16);
    size_t m = 0;
    model[m++] = 1 << 3 | 0;
    model[m++] = 8;
    model[m++] = 7 << 3 | 2;
    for (size_t v = len;; v >>= 7) {
        model[m++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        if (v < 0x80)
            break;
    }
    memcpy(model + m, buf, len);
    char err[256];
    gq_status rc;
    gq_onnx_model_t *mm = gq_onnx_model_parse(model, m + len, NULL, NULL, &rc, err, sizeof err);
    CHECK(!mm && rc == GQ_ETOOBIG && strstr(err, "nest deeper"), "deep nesting: %d %s", rc, err);
    gq_onnx_model_destroy(&mm);
    free(model);
    free(buf);
    free(tmp);
}

/* Every node test model of the ONNX suite. Accepted refusals: element types gq has no dtype
 * for, ops outside the default domain, opsets below GQ_ONNX_OPSET_MIN. */
static void s_test_suite(const char *root, int *loaded, int *refused, int *tensors)
{
    DIR *d = opendir(root);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024], err[512];
        snprintf(path, sizeof path, "%s/%s/model.onnx", root, e->d_name);
        gq_status rc;
        gq_onnx_model_t *m = gq_onnx_model_load(path, NULL, &rc, err, sizeof err);
        if (m)
            (*loaded)++;
        else {
            (*refused)++;
            CHECK(rc == GQ_EDTYPE || rc == GQ_EUNSUPPORTED, "%s: %s (%s)", e->d_name, err,
                  gq_status_name(rc));
        }
        gq_onnx_model_destroy(&m);
        for (int k = 0; k < 8; k++)
            for (int io = 0; io < 2; io++) {
                snprintf(path, sizeof path, "%s/%s/test_data_set_0/%s_%d.pb", root, e->d_name,
                         io ? "output" : "input", k);
                if (access(path, R_OK) != 0)
                    continue;
                gq_tdesc_t desc;
                void *data = NULL;
                rc = gq_onnx_tensor_load(path, NULL, &desc, &data, err, sizeof err);
                /* Sequence and optional test values are not TensorProtos: refused as malformed or
                 * too big. */
                CHECK(rc == GQ_OK || rc == GQ_EDTYPE || rc == GQ_EFORMAT || rc == GQ_ETOOBIG,
                      "%s: %s", path, err);
                *tensors += rc == GQ_OK;
                free(data);
            }
    }
    closedir(d);
}

int main(void)
{
    s_test_built();
    s_test_deep();
    const char *root = getenv("GQ_ONNX_TESTDATA") ? getenv("GQ_ONNX_TESTDATA") : S_TESTDATA;
    int loaded = 0, refused = 0, tensors = 0;
    s_test_suite(root, &loaded, &refused, &tensors);
    printf("onnx node suite (%s): %d models loaded, %d refused for a stated reason, %d test "
           "tensors decoded\n",
           root, loaded, refused, tensors);
    if (loaded + refused == 0)
        printf("note: no ONNX test data at %s (package libonnx-testdata): suite part not run\n",
               root);
    else
        CHECK(loaded > 800, "only %d node models loaded", loaded);
    if (s_failures)
        fprintf(stderr, "%d failures\n", s_failures);
    return s_failures ? 1 : 0;
}
