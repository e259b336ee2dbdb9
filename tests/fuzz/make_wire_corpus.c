/* Writes the seed corpus of fuzz_wire into corpus/wire/: one small valid message of every
 * command, in fuzz_wire's framing (a frame-count byte, 2-byte little-endian lengths, the
 * last frame unprefixed), with headers packed by protobuf-c from the schema. Rebuild the
 * seeds when proto/gpuq.proto changes:
 *
 *   cc -std=c11 -Icommon -I<build>/proto tests/fuzz/make_wire_corpus.c \
 *      <build>/libgpuq-core.a -lzmq -lprotobuf-c -lm -o make_wire_corpus
 *   ./make_wire_corpus tests/fuzz/corpus/wire
 */
#include "wire.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_FRAMES_PER_COUNT 25 /* fuzz_wire: byte 0 % 25 is the frame count */

static const char *s_dir;
static int s_failed;

/* Writes cmd + hdr + tensors (filled with a counting pattern) as one seed file. small
 * selects fuzz_wire's small limits. */
static void s_seed(const char *name, int small, int cmd, const ProtobufCMessage *hdr,
                   const gq_tdesc_t *descs, int n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        s_failed = 1;
        return;
    }
    int nframes = 3 + n;
    fputc(nframes + (small ? S_FRAMES_PER_COUNT : 0), f);
    size_t hlen = protobuf_c_message_get_packed_size(hdr);
    uint8_t *h = malloc(hlen ? hlen : 1);
    if (!h) {
        fprintf(stderr, "make_wire_corpus: out of memory\n");
        exit(1);
    }
    protobuf_c_message_pack(hdr, h);
    const uint8_t cmd_byte = (uint8_t)cmd;
    for (int i = 0; i < nframes; i++) {
        size_t len = i == 0   ? GQ_WIRE_TAG_LEN
                     : i == 1 ? 1
                     : i == 2 ? hlen
                              : gq_tdesc_nbytes(&descs[i - 3]);
        if (len > 0xffff) {
            fprintf(stderr, "make_wire_corpus: %s: frame %d over 64 KiB\n", name, i);
            exit(1);
        }
        if (i + 1 < nframes) {
            fputc((int)(len & 0xff), f);
            fputc((int)(len >> 8), f);
        }
        if (i == 0)
            fwrite(GQ_WIRE_TAG, 1, GQ_WIRE_TAG_LEN, f);
        else if (i == 1)
            fwrite(&cmd_byte, 1, 1, f);
        else if (i == 2)
            fwrite(h, 1, hlen, f);
        else
            for (size_t j = 0; j < len; j++)
                fputc((int)((j * 13 + (size_t)i) & 0xff), f);
    }
    free(h);
    if (fclose(f) != 0) {
        perror(path);
        s_failed = 1;
    }
}

int main(int argc, char **argv)
{
    s_dir = argc > 1 ? argv[1] : "tests/fuzz/corpus/wire";

    gq_tdesc_t d[3];
    static const int64_t s23[] = {2, 3}, s05[] = {0, 5};
    gq_tdesc_init(&d[0], GQ_F32, s23, 2);
    gq_tdesc_init(&d[1], GQ_F16, s05, 2);
    gq_tdesc_init(&d[2], GQ_I64, NULL, 0);
    Gq__Wire__TensorDesc td[3], *tdp[3];
    int64_t shapes[3][GQ_MAX_DIMS];
    for (int i = 0; i < 3; i++) {
        gq_wire_desc_fill(&td[i], shapes[i], &d[i]);
        tdp[i] = &td[i];
    }
    Gq__Wire__Param par[4], *parp[4];
    for (int i = 0; i < 4; i++) {
        gq__wire__param__init(&par[i]);
        parp[i] = &par[i];
    }
    par[0].name = "axis";
    par[0].value_case = GQ__WIRE__PARAM__VALUE_I;
    par[0].i = -1;
    par[1].name = "scale";
    par[1].value_case = GQ__WIRE__PARAM__VALUE_F;
    par[1].f = 0.5;
    par[2].name = "keepdims";
    par[2].value_case = GQ__WIRE__PARAM__VALUE_B;
    par[2].b = 1;
    par[3].name = "mode";
    par[3].value_case = GQ__WIRE__PARAM__VALUE_S;
    par[3].s = "same";
    Gq__Wire__Stage st[2], *stp[2];
    for (int i = 0; i < 2; i++) {
        gq__wire__stage__init(&st[i]);
        stp[i] = &st[i];
    }
    st[0].op = "sum";
    st[0].n_params = 4;
    st[0].params = parp;
    st[1].op = "abs";
    char *backends[] = {"opencl", "cpu"};

    Gq__Wire__Submit sub = GQ__WIRE__SUBMIT__INIT;
    static uint8_t key[] = "retry-1";
    sub.job_id = 1;
    sub.n_stages = 2;
    sub.stages = stp;
    sub.n_inputs = 3;
    sub.inputs = tdp;
    sub.priority = GQ__WIRE__PRIORITY__PRIO_BATCH;
    sub.timeout_ms = 1000;
    sub.idempotency_key.data = key;
    sub.idempotency_key.len = sizeof key - 1;
    s_seed("submit", 0, GQ_CMD_SUBMIT, &sub.base, d, 3);
    s_seed("submit_small_limits", 1, GQ_CMD_SUBMIT, &sub.base, d, 3);

    Gq__Wire__Timing tm = GQ__WIRE__TIMING__INIT;
    tm.queued_us = 5;
    tm.compute_us = 7;
    Gq__Wire__Result res = GQ__WIRE__RESULT__INIT;
    res.job_id = 1;
    res.n_outputs = 1;
    res.outputs = tdp;
    res.timing = &tm;
    res.n_backends = 2;
    res.backends = backends;
    res.worker = "host:1";
    s_seed("result", 0, GQ_CMD_RESULT, &res.base, d, 1);

    Gq__Wire__Error er = GQ__WIRE__ERROR__INIT;
    er.job_id = 1;
    er.code = GQ_EEXHAUSTED;
    er.message = "queue full";
    er.retry_after_ms = 50;
    er.worker = "host:1";
    s_seed("error", 0, GQ_CMD_ERROR, &er.base, NULL, 0);

    Gq__Wire__StatusRequest sr = GQ__WIRE__STATUS_REQUEST__INIT;
    sr.request_id = 3;
    s_seed("status", 0, GQ_CMD_STATUS, &sr.base, NULL, 0);

    Gq__Wire__WorkerInfo wi = GQ__WIRE__WORKER_INFO__INIT, *wip = &wi;
    wi.name = "host:1";
    wi.credits = 2;
    wi.n_backends = 2;
    wi.backends = backends;
    uint64_t queued[4] = {0, 1, 2, 3};
    Gq__Wire__StatusReply rp = GQ__WIRE__STATUS_REPLY__INIT;
    rp.request_id = 3;
    rp.n_workers = 1;
    rp.workers = &wip;
    rp.n_queued = 4;
    rp.queued = queued;
    rp.jobs_done = 10;
    s_seed("status_reply", 0, GQ_CMD_STATUS_REPLY, &rp.base, NULL, 0);

    Gq__Wire__Cancel ca = GQ__WIRE__CANCEL__INIT;
    ca.job_id = 1;
    s_seed("cancel", 0, GQ_CMD_CANCEL, &ca.base, NULL, 0);

    Gq__Wire__Device dev = GQ__WIRE__DEVICE__INIT, *devp = &dev;
    dev.backend = "opencl";
    dev.name = "gpu0";
    dev.vendor = "acme";
    dev.driver = "1.0";
    dev.memory_bytes = 1 << 30;
    dev.is_gpu = 1;
    char *ops[] = {"sum", "abs", "matmul"};
    Gq__Wire__Ready rd = GQ__WIRE__READY__INIT;
    rd.name = "host:1";
    rd.credits = 4;
    rd.n_backends = 2;
    rd.backends = backends;
    rd.n_devices = 1;
    rd.devices = &devp;
    rd.n_ops = 3;
    rd.ops = ops;
    rd.heartbeat_ms = 1000;
    s_seed("ready", 0, GQ_CMD_READY, &rd.base, NULL, 0);

    Gq__Wire__Job job = GQ__WIRE__JOB__INIT;
    job.job_id = 9;
    job.n_stages = 1;
    job.stages = stp;
    job.n_inputs = 2;
    job.inputs = tdp;
    job.timeout_ms = 500;
    s_seed("job", 0, GQ_CMD_JOB, &job.base, d, 2);

    Gq__Wire__Done done = GQ__WIRE__DONE__INIT;
    done.job_id = 9;
    done.n_outputs = 1;
    done.outputs = tdp;
    done.compute_us = 100;
    done.n_backends = 1;
    done.backends = backends;
    s_seed("done", 0, GQ_CMD_DONE, &done.base, d, 1);
    Gq__Wire__Done fail = GQ__WIRE__DONE__INIT;
    fail.job_id = 9;
    fail.code = GQ_ESHAPE;
    fail.message = "sum: axis 3 out of range";
    s_seed("done_failed", 0, GQ_CMD_DONE, &fail.base, NULL, 0);

    Gq__Wire__Heartbeat hb = GQ__WIRE__HEARTBEAT__INIT;
    s_seed("heartbeat", 0, GQ_CMD_HEARTBEAT, &hb.base, NULL, 0);

    Gq__Wire__Fallback fb = GQ__WIRE__FALLBACK__INIT, *fbp = &fb;
    fb.op = "tensor.cast";
    fb.backend = "opencl";
    fb.count = 3;
    Gq__Wire__Heartbeat hbf = GQ__WIRE__HEARTBEAT__INIT;
    hbf.n_fallbacks = 1;
    hbf.fallbacks = &fbp;
    s_seed("heartbeat_fallbacks", 0, GQ_CMD_HEARTBEAT, &hbf.base, NULL, 0);

    /* A batch of 2 stacked jobs: every input's dim 0 is 2. */
    gq_tdesc_t bd[1];
    static const int64_t s2x3[] = {2, 3};
    gq_tdesc_init(&bd[0], GQ_F32, s2x3, 2);
    Gq__Wire__TensorDesc btd, *btdp = &btd;
    int64_t bshape[GQ_MAX_DIMS];
    gq_wire_desc_fill(&btd, bshape, &bd[0]);
    uint64_t ids[2] = {9, 10};
    Gq__Wire__Job bj = GQ__WIRE__JOB__INIT;
    bj.job_id = 9;
    bj.n_stages = 1;
    bj.stages = stp;
    bj.n_inputs = 1;
    bj.inputs = &btdp;
    bj.n_batch_ids = 2;
    bj.batch_ids = ids;
    bj.priority = GQ__WIRE__PRIORITY__PRIO_REALTIME;
    s_seed("job_batch", 0, GQ_CMD_JOB, &bj.base, bd, 1);

    Gq__Wire__AdminRequest ad = GQ__WIRE__ADMIN_REQUEST__INIT;
    ad.request_id = 4;
    ad.op = GQ__WIRE__ADMIN_OP__ADMIN_QUEUES;
    ad.verbose = 1;
    s_seed("admin_queues", 0, GQ_CMD_ADMIN, &ad.base, NULL, 0);
    ad.op = GQ__WIRE__ADMIN_OP__ADMIN_JOB;
    ad.job_id = 7;
    s_seed("admin_job", 0, GQ_CMD_ADMIN, &ad.base, NULL, 0);
    ad.op = GQ__WIRE__ADMIN_OP__ADMIN_METRICS;
    s_seed("admin_metrics", 0, GQ_CMD_ADMIN, &ad.base, NULL, 0);
    Gq__Wire__AdminReply ar = GQ__WIRE__ADMIN_REPLY__INIT;
    ar.request_id = 4;
    ar.message = "";
    ar.text = "class queued\nrealtime 0\n";
    s_seed("admin_reply", 0, GQ_CMD_ADMIN_REPLY, &ar.base, NULL, 0);

    /* Models: 64 bytes standing in for a file (the codec does not parse them). */
    gq_tdesc_t md[1];
    static const int64_t s64[] = {64};
    gq_tdesc_init(&md[0], GQ_U8, s64, 1);
    Gq__Wire__TensorDesc mtd, *mtdp = &mtd;
    int64_t mshape[GQ_MAX_DIMS];
    gq_wire_desc_fill(&mtd, mshape, &md[0]);
    Gq__Wire__ModelPut mp = GQ__WIRE__MODEL_PUT__INIT;
    mp.request_id = 5;
    mp.name = "kws.onnx";
    mp.n_data = 1;
    mp.data = &mtdp;
    s_seed("model_put", 0, GQ_CMD_MODEL_PUT, &mp.base, md, 1);
    static const int64_t mshape_in[] = {-1, 80, 100};
    Gq__Wire__ModelInput mi = GQ__WIRE__MODEL_INPUT__INIT, *mip = &mi;
    mi.name = "mel";
    mi.dtype = GQ__WIRE__DTYPE__DT_F32;
    mi.n_shape = 3;
    mi.shape = (int64_t *)mshape_in;
    Gq__Wire__ModelReply mr = GQ__WIRE__MODEL_REPLY__INIT;
    mr.request_id = 5;
    mr.message = "";
    mr.digest = "0123456789abcdef0123456789abcdef";
    mr.n_inputs = 1;
    mr.inputs = &mip;
    mr.outputs = 1;
    s_seed("model_reply", 0, GQ_CMD_MODEL_REPLY, &mr.base, NULL, 0);
    Gq__Wire__ModelGet mg = GQ__WIRE__MODEL_GET__INIT;
    mg.digest = "0123456789abcdef0123456789abcdef";
    s_seed("model_get", 0, GQ_CMD_MODEL_GET, &mg.base, NULL, 0);
    Gq__Wire__ModelData mdat = GQ__WIRE__MODEL_DATA__INIT;
    mdat.digest = "0123456789abcdef0123456789abcdef";
    mdat.message = "";
    mdat.n_data = 1;
    mdat.data = &mtdp;
    s_seed("model", 0, GQ_CMD_MODEL, &mdat.base, md, 1);

    Gq__Wire__Disconnect dc = GQ__WIRE__DISCONNECT__INIT;
    dc.reason = "shutting down";
    s_seed("disconnect", 0, GQ_CMD_DISCONNECT, &dc.base, NULL, 0);

    return s_failed;
}
