/* common/wire: one case for every check the decoder makes (exact status, an error text that
 * names the fault, the job id and command recovered when the header could be read), and
 * round trips of every command through real inproc PAIR and DEALER/ROUTER sockets: headers
 * equal field for field, tensor frames byte-exact, routing ids returned, malformed
 * multipart messages drained so the next message on the socket decodes. */
#include "wire.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_checks;
static int s_failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        s_checks++;                                                                                \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            s_failures++;                                                                          \
        }                                                                                          \
    } while (0)

#define S_NST (GQ_WIRE_MAX_STAGES + 1)
#define S_NPAR (GQ_MAX_PARAMS + 1)
#define S_NTD (GQ_WIRE_MAX_PAYLOAD + 2)
#define S_MAXF (3 + S_NTD)

static void *s_ctx;

static void *s_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "test_wire: out of memory for %zu bytes\n", n);
        exit(1);
    }
    return p;
}

/* A NUL-terminated run of n copies of c, for strings at and past each length limit. */
static char *s_rep(char c, size_t n)
{
    char *s = s_xmalloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static uint8_t s_pattern(int frame, size_t j)
{
    return (uint8_t)(frame * 31 + (int)(j * 7) + 1);
}

static void s_free_data(void *data, void *hint)
{
    (void)hint;
    free(data);
}

/* Frames of a message being built for gq_wire_decode. Every frame owns an exact-size heap
 * buffer (never zmq's inline storage), so a read past a frame's end hits an ASan redzone. */
typedef struct {
    zmq_msg_t f[S_MAXF];
    int n;
} s_frames_t;

static void s_put(s_frames_t *fr, const void *data, size_t len)
{
    void *buf = s_xmalloc(len);
    if (len)
        memcpy(buf, data, len);
    zmq_msg_init_data(&fr->f[fr->n++], buf, len, s_free_data, NULL);
}

static void s_put_hdr(s_frames_t *fr, const ProtobufCMessage *hdr)
{
    size_t len = protobuf_c_message_get_packed_size(hdr);
    uint8_t *buf = s_xmalloc(len);
    protobuf_c_message_pack(hdr, buf);
    zmq_msg_init_data(&fr->f[fr->n++], buf, len, s_free_data, NULL);
}

static void s_put_payload(s_frames_t *fr, int idx, size_t len)
{
    uint8_t *buf = s_xmalloc(len);
    for (size_t j = 0; j < len; j++)
        buf[j] = s_pattern(idx, j);
    zmq_msg_init_data(&fr->f[fr->n++], buf, len, s_free_data, NULL);
}

static void s_start(s_frames_t *fr, int cmd, const ProtobufCMessage *hdr)
{
    unsigned char c = (unsigned char)cmd;
    fr->n = 0;
    s_put(fr, GQ_WIRE_TAG, GQ_WIRE_TAG_LEN);
    s_put(fr, &c, 1);
    s_put_hdr(fr, hdr);
}

/* A valid message body shared by SUBMIT, JOB, DONE and RESULT, which each case bends in
 * one place: one stage with params of every kind, two input tensors. */
typedef struct {
    Gq__Wire__Stage st[S_NST], *stp[S_NST];
    Gq__Wire__Param par[S_NPAR], *parp[S_NPAR];
    Gq__Wire__TensorDesc td[S_NTD], *tdp[S_NTD];
    int64_t shape[S_NTD][GQ_MAX_DIMS + 1];
    size_t frame[S_NTD]; /* payload frame sizes sent */
    int nframes;         /* payload frames sent */
    char *backends[S_NST];
    Gq__Wire__Submit submit;
    Gq__Wire__Job job;
    Gq__Wire__Done done;
    Gq__Wire__Result result;
} s_fix_t;

/* Sets tensor i (and the frame sent for it) to dtype and shape; nbytes as a naive encoder
 * would compute it, which wraps for shapes that overflow (the decoder must catch them).
 * Frames for shapes too large to send get 4 bytes. */
static void s_fix_tensor(s_fix_t *f, int i, int dtype, const int64_t *shape, int ndim)
{
    Gq__Wire__TensorDesc *td = &f->td[i];
    gq__wire__tensor_desc__init(td);
    td->dtype = (Gq__Wire__DType)dtype;
    uint64_t n = 1;
    for (int k = 0; k < ndim; k++) {
        f->shape[i][k] = shape[k];
        n *= (uint64_t)shape[k];
    }
    td->n_shape = (size_t)ndim;
    td->shape = f->shape[i];
    td->nbytes = n * gq_dtype_size(dtype);
    f->frame[i] = td->nbytes <= ((uint64_t)1 << 20) ? (size_t)td->nbytes : 4;
    f->tdp[i] = td;
}

static void s_fix_init(s_fix_t *f, uint64_t job_id)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < S_NST; i++) {
        gq__wire__stage__init(&f->st[i]);
        f->st[i].op = "add";
        f->stp[i] = &f->st[i];
        f->backends[i] = "cpu";
    }
    for (int i = 0; i < S_NPAR; i++) {
        gq__wire__param__init(&f->par[i]);
        f->par[i].name = "alpha";
        f->par[i].value_case = GQ__WIRE__PARAM__VALUE_F;
        f->par[i].f = 1.5;
        f->parp[i] = &f->par[i];
    }
    f->par[1].name = "mode";
    f->par[1].value_case = GQ__WIRE__PARAM__VALUE_S;
    f->par[1].s = "same";
    f->par[2].name = "axis";
    f->par[2].value_case = GQ__WIRE__PARAM__VALUE_I;
    f->par[2].i = -1;
    f->par[3].name = "keepdims";
    f->par[3].value_case = GQ__WIRE__PARAM__VALUE_B;
    f->par[3].b = 1;
    f->st[0].n_params = 4;
    f->st[0].params = f->parp;

    static const int64_t s23[] = {2, 3}, s4[] = {4};
    for (int i = 0; i < S_NTD; i++)
        s_fix_tensor(f, i, GQ_U8, s4, 1);
    s_fix_tensor(f, 0, GQ_F32, s23, 2);
    s_fix_tensor(f, 1, GQ_I64, s4, 1);
    f->nframes = 2;

    gq__wire__submit__init(&f->submit);
    f->submit.job_id = job_id;
    f->submit.n_stages = 1;
    f->submit.stages = f->stp;
    f->submit.n_inputs = 2;
    f->submit.inputs = f->tdp;
    f->submit.priority = GQ__WIRE__PRIORITY__PRIO_INTERACTIVE;

    gq__wire__job__init(&f->job);
    f->job.job_id = job_id;
    f->job.n_stages = 1;
    f->job.stages = f->stp;
    f->job.n_inputs = 2;
    f->job.inputs = f->tdp;

    gq__wire__done__init(&f->done);
    f->done.job_id = job_id;
    f->done.n_outputs = 2;
    f->done.outputs = f->tdp;
    f->done.n_backends = 1;
    f->done.backends = f->backends;

    gq__wire__result__init(&f->result);
    f->result.job_id = job_id;
    f->result.n_outputs = 2;
    f->result.outputs = f->tdp;
    f->result.n_backends = 1;
    f->result.backends = f->backends;
    f->result.worker = "w1";
}

/* Decodes cmd + hdr followed by the fixture's payload frames. */
static gq_status s_fix_decode(s_fix_t *f, int cmd, const ProtobufCMessage *hdr,
                              const gq_wire_limits_t *lim, gq_wire_msg_t *m, char *err,
                              size_t errlen)
{
    s_frames_t fr;
    s_start(&fr, cmd, hdr);
    for (int i = 0; i < f->nframes; i++)
        s_put_payload(&fr, i, f->frame[i]);
    err[0] = '\0';
    return gq_wire_decode(fr.f, fr.n, m, lim, err, errlen);
}

/* A failed decode: the status, a text naming the fault, what could be read of the header,
 * and nothing left in *m to close. */
static void s_expect_fail(int line, gq_status rc, gq_wire_msg_t *m, const char *err, gq_status want,
                          const char *substr, int cmd, uint64_t job_id)
{
    s_checks++;
    int ok = rc == want && strstr(err, substr) && m->job_id == job_id && m->cmd == cmd &&
             m->hdr == NULL && m->npayload == 0;
    if (!ok) {
        fprintf(stderr,
                "%s:%d: got %s \"%s\" cmd %d job %llu, want %s \"...%s...\" cmd %d job %llu\n",
                __FILE__, line, gq_status_name(rc), err, m->cmd, (unsigned long long)m->job_id,
                gq_status_name(want), substr, cmd, (unsigned long long)job_id);
        s_failures++;
    }
    if (rc == GQ_OK)
        gq_wire_msg_close(m);
}

#define EXPECT_FAIL(rc, m, err, want, substr, cmd, job)                                            \
    s_expect_fail(__LINE__, rc, m, err, want, substr, cmd, job)

static void s_expect_ok(int line, gq_status rc, gq_wire_msg_t *m, const char *err)
{
    s_checks++;
    if (rc != GQ_OK) {
        fprintf(stderr, "%s:%d: got %s \"%s\", want GQ_OK\n", __FILE__, line, gq_status_name(rc),
                err);
        s_failures++;
    }
    (void)m;
}

#define EXPECT_OK(rc, m, err) s_expect_ok(__LINE__, rc, m, err)

/* Decodes f as cmd and expects a failure; the job id is recovered for every command that
 * carries one. */
#define FIX_FAIL(f, cmd, hdr, lim, want, substr, job)                                              \
    do {                                                                                           \
        gq_wire_msg_t m_;                                                                          \
        char e_[GQ_ERRLEN];                                                                        \
        gq_status r_ = s_fix_decode(f, cmd, hdr, lim, &m_, e_, sizeof e_);                         \
        s_expect_fail(__LINE__, r_, &m_, e_, want, substr, cmd, job);                              \
    } while (0)

#define FIX_OK(f, cmd, hdr, lim)                                                                   \
    do {                                                                                           \
        gq_wire_msg_t m_;                                                                          \
        char e_[GQ_ERRLEN];                                                                        \
        gq_status r_ = s_fix_decode(f, cmd, hdr, lim, &m_, e_, sizeof e_);                         \
        s_expect_ok(__LINE__, r_, &m_, e_);                                                        \
        if (r_ == GQ_OK)                                                                           \
            gq_wire_msg_close(&m_);                                                                \
    } while (0)

static void s_test_framing(void)
{
    gq_wire_msg_t m;
    char err[GQ_ERRLEN];
    s_frames_t fr;
    Gq__Wire__Heartbeat hb = GQ__WIRE__HEARTBEAT__INIT;
    unsigned char cmd = GQ_CMD_HEARTBEAT;

    /* Frame counts. */
    for (int n = 0; n < 3; n++) {
        fr.n = 0;
        if (n > 0)
            s_put(&fr, GQ_WIRE_TAG, GQ_WIRE_TAG_LEN);
        if (n > 1)
            s_put(&fr, &cmd, 1);
        EXPECT_FAIL(gq_wire_decode(fr.f, fr.n, &m, NULL, err, sizeof err), &m, err, GQ_EPROTO,
                    "at least 3 needed", 0, 0);
    }
    s_start(&fr, GQ_CMD_HEARTBEAT, &hb.base);
    for (int i = 0; i < GQ_WIRE_MAX_PAYLOAD + 1; i++)
        s_put_payload(&fr, i, 1);
    EXPECT_FAIL(gq_wire_decode(fr.f, fr.n, &m, NULL, err, sizeof err), &m, err, GQ_ETOOBIG,
                "20 frames, at most 19", 0, 0);

    /* Protocol tag: another version of ours is GQ_EVERSION, anything else GQ_EPROTO. */
    static const struct {
        const char *tag;
        size_t len;
        gq_status want;
        const char *substr;
    } tags[] = {
        {"GQ2", 3, GQ_EVERSION, "tag 'GQ2' is not GQ1"},
        {"GQ10", 4, GQ_EVERSION, "tag 'GQ10' is not GQ1"},
        {"GQ", 2, GQ_EVERSION, "tag 'GQ' is not GQ1"},
        {"GQ1234567890", 12, GQ_EVERSION, "tag 'GQ123456' is not GQ1"},
        {"XQ1", 3, GQ_EPROTO, "frame 0 is not the protocol tag GQ1"},
        {"gq1", 3, GQ_EPROTO, "frame 0 is not the protocol tag"},
        {"G", 1, GQ_EPROTO, "frame 0 is not the protocol tag"},
        {"", 0, GQ_EPROTO, "frame 0 is not the protocol tag"},
        {"GQ1\0", 4, GQ_EVERSION, "is not GQ1"},
    };
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        fr.n = 0;
        s_put(&fr, tags[i].tag, tags[i].len);
        s_put(&fr, &cmd, 1);
        s_put_hdr(&fr, &hb.base);
        EXPECT_FAIL(gq_wire_decode(fr.f, fr.n, &m, NULL, err, sizeof err), &m, err, tags[i].want,
                    tags[i].substr, 0, 0);
    }

    /* Command frame: exactly one byte naming a known command. */
    static const unsigned char two[2] = {GQ_CMD_HEARTBEAT, 0};
    for (size_t len = 0; len <= 2; len += 2) {
        fr.n = 0;
        s_put(&fr, GQ_WIRE_TAG, GQ_WIRE_TAG_LEN);
        s_put(&fr, two, len);
        s_put_hdr(&fr, &hb.base);
        char want[64];
        snprintf(want, sizeof want, "command frame has %zu bytes, 1 expected", len);
        EXPECT_FAIL(gq_wire_decode(fr.f, fr.n, &m, NULL, err, sizeof err), &m, err, GQ_EPROTO, want,
                    0, 0);
    }
    static const int unknown[] = {0, 7, 15, 23, 0x80, 0xff};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        s_start(&fr, unknown[i], &hb.base);
        char want[64];
        snprintf(want, sizeof want, "unknown command 0x%02x", unknown[i]);
        EXPECT_FAIL(gq_wire_decode(fr.f, fr.n, &m, NULL, err, sizeof err), &m, err, GQ_EPROTO, want,
                    unknown[i], 0);
    }

    /* Header size against the limit: the limit itself passes, one byte more does not. */
    Gq__Wire__Disconnect dc = GQ__WIRE__DISCONNECT__INIT;
    dc.reason = "shutting down";
    size_t hlen = protobuf_c_message_get_packed_size(&dc.base);
    gq_wire_limits_t lim;
    gq_wire_limits_default(&lim);
    lim.max_header = hlen;
    s_start(&fr, GQ_CMD_DISCONNECT, &dc.base);
    gq_status rc = gq_wire_decode(fr.f, fr.n, &m, &lim, err, sizeof err);
    EXPECT_OK(rc, &m, err);
    gq_wire_msg_close(&m);
    lim.max_header = hlen - 1;
    s_start(&fr, GQ_CMD_DISCONNECT, &dc.base);
    EXPECT_FAIL(gq_wire_decode(fr.f, fr.n, &m, &lim, err, sizeof err), &m, err, GQ_ETOOBIG,
                "DISCONNECT header has 15 bytes, limit 14", GQ_CMD_DISCONNECT, 0);
    /* The default limit (256 KiB) applies when lim is NULL. */
    fr.n = 0;
    s_put(&fr, GQ_WIRE_TAG, GQ_WIRE_TAG_LEN);
    cmd = GQ_CMD_DISCONNECT;
    s_put(&fr, &cmd, 1);
    s_put_payload(&fr, 0, ((size_t)256 << 10) + 1);
    EXPECT_FAIL(gq_wire_decode(fr.f, fr.n, &m, NULL, err, sizeof err), &m, err, GQ_ETOOBIG,
                "header has 262145 bytes, limit 262144", GQ_CMD_DISCONNECT, 0);

    /* Headers that are not protobuf, or not this command's message. */
    static const struct {
        const char *bytes;
        size_t len;
    } junk[] = {
        {"\xff", 1},         /* field 31, wire type 7: no such wire type */
        {"\x08", 1},         /* job_id tag with no varint */
        {"\x08\xff", 2},     /* varint cut short */
        {"\x12\x05\x0a", 3}, /* length-delimited field longer than the buffer */
        {"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12}, /* 11-byte varint */
        {"\x12\x02\x0a\x05", 4}, /* a stage whose op name runs past the stage */
        {"\x00", 1},             /* field number 0 */
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        fr.n = 0;
        s_put(&fr, GQ_WIRE_TAG, GQ_WIRE_TAG_LEN);
        cmd = GQ_CMD_SUBMIT;
        s_put(&fr, &cmd, 1);
        s_put(&fr, junk[i].bytes, junk[i].len);
        s_put_payload(&fr, 0, 4);
        EXPECT_FAIL(gq_wire_decode(fr.f, fr.n, &m, NULL, err, sizeof err), &m, err, GQ_EPROTO,
                    "SUBMIT header does not parse as Submit", GQ_CMD_SUBMIT, 0);
    }

    /* The error buffer: NULL, empty and short buffers are safe, the short one is cut and
     * terminated. */
    for (int k = 0; k < 3; k++) {
        char tiny[6];
        memset(tiny, 'x', sizeof tiny);
        s_start(&fr, 0x77, &hb.base);
        rc = gq_wire_decode(fr.f, fr.n, &m, NULL, k == 0 ? NULL : tiny, k == 2 ? sizeof tiny : 0);
        CHECK(rc == GQ_EPROTO);
        if (k == 1)
            CHECK(tiny[0] == 'x');
        if (k == 2)
            CHECK(!strcmp(tiny, "unkno"));
    }
}

static void s_test_submit(void)
{
    s_fix_t f;
    gq_wire_limits_t lim;
    gq_wire_limits_default(&lim);
    const int C = GQ_CMD_SUBMIT;
    const ProtobufCMessage *h = &f.submit.base;

    s_fix_init(&f, 42);
    FIX_OK(&f, C, h, NULL);

    f.submit.job_id = 0;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "SUBMIT: submit: job_id 0 is reserved", 0);

    s_fix_init(&f, 42);
    for (int p = -2; p <= 5; p++) {
        f.submit.priority = (Gq__Wire__Priority)p;
        if (p >= 0 && p <= 3) {
            FIX_OK(&f, C, h, NULL);
        } else {
            char want[64];
            snprintf(want, sizeof want, "priority %d is not one of 0..3", p);
            FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, want, 42);
        }
    }

    s_fix_init(&f, 42);
    uint8_t key[GQ_WIRE_MAX_IDEMPOTENCY + 1];
    memset(key, 0xab, sizeof key);
    f.submit.idempotency_key.data = key;
    f.submit.idempotency_key.len = GQ_WIRE_MAX_IDEMPOTENCY;
    FIX_OK(&f, C, h, NULL);
    f.submit.idempotency_key.len = GQ_WIRE_MAX_IDEMPOTENCY + 1;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "idempotency key longer than 64 bytes", 42);

    /* Stages: 1..8 of them. */
    s_fix_init(&f, 42);
    f.submit.n_stages = 0;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "0 stages, must be 1..8", 42);
    f.submit.n_stages = GQ_WIRE_MAX_STAGES;
    FIX_OK(&f, C, h, NULL);
    f.submit.n_stages = GQ_WIRE_MAX_STAGES + 1;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "9 stages, must be 1..8", 42);

    /* Op names, checked in every stage, not only the first. */
    char *name63 = s_rep('o', GQ_MAX_NAME - 1), *name64 = s_rep('o', GQ_MAX_NAME);
    s_fix_init(&f, 42);
    f.submit.n_stages = 3;
    f.st[2].op = "";
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "op name is empty", 42);
    f.st[2].op = name63;
    FIX_OK(&f, C, h, NULL);
    f.st[2].op = name64;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "op name longer than 63 bytes", 42);

    /* Params: at most GQ_MAX_PARAMS, each named, each with a value. */
    s_fix_init(&f, 42);
    f.st[0].n_params = GQ_MAX_PARAMS;
    FIX_OK(&f, C, h, NULL);
    f.st[0].n_params = GQ_MAX_PARAMS + 1;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "add: 25 params, at most 24 allowed", 42);
    s_fix_init(&f, 42);
    f.par[3].name = "";
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "param name is empty", 42);
    f.par[3].name = name64;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "param name longer than 63 bytes", 42);
    s_fix_init(&f, 42);
    f.par[2].value_case = GQ__WIRE__PARAM__VALUE__NOT_SET;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "add: param 'axis' has no value", 42);
    s_fix_init(&f, 42);
    char *s255 = s_rep('s', GQ_MAX_STR - 1), *s256 = s_rep('s', GQ_MAX_STR);
    f.par[1].s = s255;
    FIX_OK(&f, C, h, NULL);
    f.par[1].s = s256;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "param value longer than 255 bytes", 42);
    f.par[1].s = "";
    FIX_OK(&f, C, h, NULL);

    /* Inputs described against frames sent. */
    s_fix_init(&f, 42);
    f.submit.n_inputs = 1;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "1 input described but 2 tensor frames sent", 42);
    s_fix_init(&f, 42);
    f.nframes = 1;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "2 input described but 1 tensor frames sent", 42);
    f.nframes = 3;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "2 input described but 3 tensor frames sent", 42);

    /* dtype. */
    static const int64_t s4[] = {4};
    s_fix_init(&f, 42);
    f.td[1].dtype = (Gq__Wire__DType)0;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "input 1: dtype 0 is not a known dtype", 42);
    f.td[1].dtype = (Gq__Wire__DType)99;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "input 1: dtype 99 is not a known dtype", 42);
    f.td[1].dtype = (Gq__Wire__DType)GQ_DTYPE_COUNT;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "dtype 14 is not a known dtype", 42);
    f.td[1].dtype = (Gq__Wire__DType)-3;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "dtype -3 is not a known dtype", 42);
    for (int dt = 1; dt < GQ_DTYPE_COUNT; dt++) {
        s_fix_tensor(&f, 1, dt, s4, 1);
        FIX_OK(&f, C, h, NULL);
    }

    /* Rank and dims. */
    static const int64_t ones[GQ_MAX_DIMS + 1] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    s_fix_init(&f, 42);
    s_fix_tensor(&f, 0, GQ_F32, ones, GQ_MAX_DIMS);
    FIX_OK(&f, C, h, NULL);
    s_fix_tensor(&f, 0, GQ_F32, ones, GQ_MAX_DIMS + 1);
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "input 0: 9 dims, at most 8 allowed", 42);
    static const int64_t neg[] = {2, -1}, big[] = {GQ_MAX_DIM_SIZE + 1, 0},
                         edge[] = {GQ_MAX_DIM_SIZE, 0}, huge[] = {INT64_MAX};
    s_fix_tensor(&f, 0, GQ_F32, neg, 2);
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "input 0: dim 1 = -1 out of range 0..1099511627776", 42);
    s_fix_tensor(&f, 0, GQ_F32, big, 2);
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "dim 0 = 1099511627777 out of range", 42);
    s_fix_tensor(&f, 0, GQ_F32, huge, 1);
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "dim 0 = 9223372036854775807 out of range", 42);
    s_fix_tensor(&f, 0, GQ_F32, edge, 2); /* largest dim, zero elements */
    FIX_OK(&f, C, h, NULL);

    /* Byte counts that overflow: the element count, the element count past INT64_MAX, and
     * elements times the dtype size. */
    static const int64_t ovf_numel[] = {GQ_MAX_DIM_SIZE, (int64_t)1 << 24},
                         ovf_i64[] = {GQ_MAX_DIM_SIZE, (int64_t)1 << 23},
                         ovf_bytes[] = {GQ_MAX_DIM_SIZE, (int64_t)1 << 21};
    s_fix_init(&f, 42);
    s_fix_tensor(&f, 1, GQ_U8, ovf_numel, 2);
    FIX_FAIL(&f, C, h, NULL, GQ_ETOOBIG,
             "input 1: u8[1099511627776,16777216] has a byte size that overflows", 42);
    s_fix_tensor(&f, 1, GQ_U8, ovf_i64, 2);
    FIX_FAIL(&f, C, h, NULL, GQ_ETOOBIG, "has a byte size that overflows", 42);
    s_fix_tensor(&f, 1, GQ_F64, ovf_bytes, 2);
    FIX_FAIL(&f, C, h, NULL, GQ_ETOOBIG, "f64[1099511627776,2097152] has a byte size", 42);

    /* nbytes field and frame size, each off by one both ways. */
    s_fix_init(&f, 42);
    f.td[0].nbytes = 25;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "input 0: nbytes 25 does not match f32[2,3] (24 bytes)",
             42);
    f.td[0].nbytes = 23;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "nbytes 23 does not match", 42);
    f.td[0].nbytes = 24;
    f.frame[1] = 31;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "input 1: frame has 31 bytes, i64[4] needs 32", 42);
    f.frame[1] = 33;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "frame has 33 bytes", 42);
    f.frame[1] = 0;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "frame has 0 bytes", 42);

    /* Size limits: at the limit passes, one byte over fails. */
    s_fix_init(&f, 42);
    lim.max_tensor_bytes = 32;
    FIX_OK(&f, C, h, &lim);
    lim.max_tensor_bytes = 31;
    FIX_FAIL(&f, C, h, &lim, GQ_ETOOBIG, "input 1: 32 bytes over the limit of 31", 42);
    gq_wire_limits_default(&lim);
    lim.max_total_bytes = 56;
    FIX_OK(&f, C, h, &lim);
    lim.max_total_bytes = 55;
    FIX_FAIL(&f, C, h, &lim, GQ_ETOOBIG, "input: 56 bytes in all, over the limit of 55", 42);
    lim.max_total_bytes = 23;
    FIX_FAIL(&f, C, h, &lim, GQ_ETOOBIG, "input: 24 bytes in all", 42);

    /* A zero-size tensor and a scalar. */
    static const int64_t z[] = {0, 5};
    s_fix_init(&f, 42);
    s_fix_tensor(&f, 0, GQ_F32, z, 2);
    s_fix_tensor(&f, 1, GQ_C128, NULL, 0);
    gq_wire_msg_t m;
    char err[GQ_ERRLEN];
    gq_status rc = s_fix_decode(&f, C, h, NULL, &m, err, sizeof err);
    EXPECT_OK(rc, &m, err);
    if (rc == GQ_OK) {
        CHECK(m.npayload == 2 && zmq_msg_size(&m.payload[0]) == 0 &&
              zmq_msg_size(&m.payload[1]) == 16);
        CHECK(m.desc[0].dtype == GQ_F32 && m.desc[0].ndim == 2 && m.desc[0].shape[0] == 0 &&
              m.desc[0].shape[1] == 5);
        CHECK(m.desc[1].dtype == GQ_C128 && m.desc[1].ndim == 0);
        gq_wire_msg_close(&m);
    }

    /* 16 payload frames pass; 17 are too many, however they are described. */
    s_fix_init(&f, 42);
    f.submit.n_inputs = GQ_WIRE_MAX_PAYLOAD;
    f.nframes = GQ_WIRE_MAX_PAYLOAD;
    FIX_OK(&f, C, h, NULL);
    f.submit.n_inputs = GQ_WIRE_MAX_PAYLOAD + 1;
    f.nframes = GQ_WIRE_MAX_PAYLOAD + 1;
    {
        /* Refused before the command byte is read: no command, no job id. */
        gq_wire_msg_t m_;
        char e_[GQ_ERRLEN];
        gq_status r_ = s_fix_decode(&f, C, h, NULL, &m_, e_, sizeof e_);
        EXPECT_FAIL(r_, &m_, e_, GQ_ETOOBIG, "message has 20 frames, at most 19 allowed", 0, 0);
    }

    free(name63);
    free(name64);
    free(s255);
    free(s256);
}

static void s_test_job(void)
{
    s_fix_t f;
    const int C = GQ_CMD_JOB;
    const ProtobufCMessage *h = &f.job.base;
    s_fix_init(&f, 7);
    FIX_OK(&f, C, h, NULL);
    f.job.job_id = 0;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "JOB: job: job_id 0 is reserved", 0);
    s_fix_init(&f, 7);
    f.job.n_stages = 0;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "JOB: 0 stages", 7);
    f.job.n_stages = GQ_WIRE_MAX_STAGES + 1;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "9 stages", 7);
    s_fix_init(&f, 7);
    f.st[0].op = "";
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "op name is empty", 7);
    s_fix_init(&f, 7);
    f.par[0].value_case = GQ__WIRE__PARAM__VALUE__NOT_SET;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "param 'alpha' has no value", 7);
    s_fix_init(&f, 7);
    f.job.n_inputs = 3;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "3 input described but 2 tensor frames", 7);
    s_fix_init(&f, 7);
    f.td[0].dtype = (Gq__Wire__DType)0;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "input 0: dtype 0", 7);
    s_fix_init(&f, 7);
    f.frame[0] = 1;
    FIX_FAIL(&f, C, h, NULL, GQ_EPROTO, "input 0: frame has 1 bytes", 7);
}

static void s_test_done_result(void)
{
    s_fix_t f;
    char *long_msg = s_rep('m', GQ_WIRE_MAX_MESSAGE + 1);
    char *long_name = s_rep('w', GQ_MAX_STR);

    const int D = GQ_CMD_DONE;
    const ProtobufCMessage *d = &f.done.base;
    s_fix_init(&f, 9);
    FIX_OK(&f, D, d, NULL);
    f.done.job_id = 0;
    FIX_FAIL(&f, D, d, NULL, GQ_EPROTO, "DONE: done: job_id 0 is reserved", 0);
    s_fix_init(&f, 9);
    f.done.code = 1;
    FIX_FAIL(&f, D, d, NULL, GQ_EPROTO, "done: code 1 is not a gq_status", 9);
    f.done.code = INT32_MAX;
    FIX_FAIL(&f, D, d, NULL, GQ_EPROTO, "code 2147483647 is not a gq_status", 9);
    f.done.code = GQ_ESHAPE;
    FIX_FAIL(&f, D, d, NULL, GQ_EPROTO, "done: failure code with 2 outputs", 9);
    f.done.n_outputs = 0;
    f.nframes = 0;
    f.done.message = "shape mismatch";
    FIX_OK(&f, D, d, NULL);
    f.nframes = 1;
    FIX_FAIL(&f, D, d, NULL, GQ_EPROTO, "0 output described but 1 tensor frames sent", 9);
    f.nframes = 0;
    f.done.message = long_msg;
    FIX_FAIL(&f, D, d, NULL, GQ_EPROTO, "done message longer than 4096 bytes", 9);
    long_msg[GQ_WIRE_MAX_MESSAGE] = '\0';
    FIX_OK(&f, D, d, NULL);
    long_msg[GQ_WIRE_MAX_MESSAGE] = 'm';
    s_fix_init(&f, 9);
    f.done.n_backends = GQ_WIRE_MAX_STAGES + 1;
    FIX_FAIL(&f, D, d, NULL, GQ_EPROTO, "9 backend names, at most 8", 9);
    f.done.n_backends = 2;
    f.backends[1] = "";
    FIX_FAIL(&f, D, d, NULL, GQ_EPROTO, "backend name is empty", 9);
    s_fix_init(&f, 9);
    f.done.n_outputs = 1;
    FIX_FAIL(&f, D, d, NULL, GQ_EPROTO, "1 output described but 2 tensor frames", 9);
    s_fix_init(&f, 9);
    f.td[1].nbytes = 8;
    FIX_FAIL(&f, D, d, NULL, GQ_EPROTO, "output 1: nbytes 8 does not match i64[4]", 9);

    const int R = GQ_CMD_RESULT;
    const ProtobufCMessage *r = &f.result.base;
    s_fix_init(&f, 11);
    FIX_OK(&f, R, r, NULL);
    f.result.n_backends = GQ_WIRE_MAX_STAGES + 1;
    FIX_FAIL(&f, R, r, NULL, GQ_EPROTO, "RESULT: 9 backend names", 11);
    s_fix_init(&f, 11);
    f.backends[0] = "";
    FIX_FAIL(&f, R, r, NULL, GQ_EPROTO, "backend name is empty", 11);
    s_fix_init(&f, 11);
    f.result.worker = long_name;
    FIX_FAIL(&f, R, r, NULL, GQ_EPROTO, "worker name longer than 255 bytes", 11);
    s_fix_init(&f, 11);
    f.nframes = 3;
    FIX_FAIL(&f, R, r, NULL, GQ_EPROTO, "2 output described but 3 tensor frames", 11);
    s_fix_init(&f, 11);
    f.td[0].n_shape = GQ_MAX_DIMS + 1;
    FIX_FAIL(&f, R, r, NULL, GQ_EPROTO, "output 0: 9 dims", 11);

    free(long_msg);
    free(long_name);
}

/* A header-only message decoded with the given payload frame count. */
static gq_status s_decode_hdr(int cmd, const ProtobufCMessage *hdr, int npayload, gq_wire_msg_t *m,
                              char *err, size_t errlen)
{
    s_frames_t fr;
    s_start(&fr, cmd, hdr);
    for (int i = 0; i < npayload; i++)
        s_put_payload(&fr, i, 4);
    err[0] = '\0';
    return gq_wire_decode(fr.f, fr.n, m, NULL, err, errlen);
}

#define HDR_FAIL(cmd, hdr, want, substr, job)                                                      \
    do {                                                                                           \
        gq_wire_msg_t m_;                                                                          \
        char e_[GQ_ERRLEN];                                                                        \
        gq_status r_ = s_decode_hdr(cmd, hdr, 0, &m_, e_, sizeof e_);                              \
        s_expect_fail(__LINE__, r_, &m_, e_, want, substr, cmd, job);                              \
    } while (0)

#define HDR_OK(cmd, hdr)                                                                           \
    do {                                                                                           \
        gq_wire_msg_t m_;                                                                          \
        char e_[GQ_ERRLEN];                                                                        \
        gq_status r_ = s_decode_hdr(cmd, hdr, 0, &m_, e_, sizeof e_);                              \
        s_expect_ok(__LINE__, r_, &m_, e_);                                                        \
        if (r_ == GQ_OK)                                                                           \
            gq_wire_msg_close(&m_);                                                                \
    } while (0)

static void s_test_error(void)
{
    char *long_msg = s_rep('m', GQ_WIRE_MAX_MESSAGE + 1);
    char *long_name = s_rep('w', GQ_MAX_STR);
    Gq__Wire__Error e = GQ__WIRE__ERROR__INIT;
    const int C = GQ_CMD_ERROR;
    e.job_id = 5;
    e.code = GQ_EEXHAUSTED;
    e.message = "queue full";
    HDR_OK(C, &e.base);
    e.code = 0;
    HDR_FAIL(C, &e.base, GQ_EPROTO, "ERROR: error: code 0 is not a failure", 5);
    e.code = 3;
    HDR_FAIL(C, &e.base, GQ_EPROTO, "error: code 3 is not a failure", 5);
    e.code = INT32_MIN;
    HDR_OK(C, &e.base);
    e.message = long_msg;
    HDR_FAIL(C, &e.base, GQ_EPROTO, "error message longer than 4096 bytes", 5);
    e.message = "";
    e.worker = long_name;
    HDR_FAIL(C, &e.base, GQ_EPROTO, "worker name longer than 255 bytes", 5);
    e.worker = "";
    e.job_id = 0; /* an error about a message whose job id could not be read */
    HDR_OK(C, &e.base);
    free(long_msg);
    free(long_name);
}

static void s_test_ready(void)
{
    char *name64 = s_rep('n', GQ_MAX_NAME), *str256 = s_rep('s', GQ_MAX_STR);
    char *backends[GQ_WIRE_MAX_LIST + 1], *ops[GQ_WIRE_MAX_OPS + 1];
    Gq__Wire__Device dev[GQ_WIRE_MAX_LIST + 1], *devp[GQ_WIRE_MAX_LIST + 1];
    for (int i = 0; i < GQ_WIRE_MAX_LIST + 1; i++) {
        backends[i] = "cpu";
        gq__wire__device__init(&dev[i]);
        dev[i].backend = "cpu";
        dev[i].name = "host";
        devp[i] = &dev[i];
    }
    for (int i = 0; i < GQ_WIRE_MAX_OPS + 1; i++)
        ops[i] = "add";
    Gq__Wire__Ready r = GQ__WIRE__READY__INIT;
    const int C = GQ_CMD_READY;
    r.name = "host:1234";
    r.credits = 4;
    r.backends = backends;
    r.n_backends = 1;
    r.devices = devp;
    r.n_devices = 1;
    r.ops = ops;
    r.n_ops = 2;
    HDR_OK(C, &r.base);

    r.name = "";
    HDR_FAIL(C, &r.base, GQ_EPROTO, "READY: worker name is empty", 0);
    r.name = name64;
    HDR_FAIL(C, &r.base, GQ_EPROTO, "worker name longer than 63 bytes", 0);
    r.name = "host:1234";

    r.credits = 0;
    HDR_FAIL(C, &r.base, GQ_EPROTO, "ready: credits 0 must be in 1..65536", 0);
    r.credits = GQ_WIRE_MAX_CREDITS + 1;
    HDR_FAIL(C, &r.base, GQ_EPROTO, "credits 65537 must be in 1..65536", 0);
    r.credits = GQ_WIRE_MAX_CREDITS;
    HDR_OK(C, &r.base);

    r.n_backends = GQ_WIRE_MAX_LIST;
    r.n_devices = GQ_WIRE_MAX_LIST;
    r.n_ops = GQ_WIRE_MAX_OPS;
    HDR_OK(C, &r.base);
    r.n_backends = GQ_WIRE_MAX_LIST + 1;
    HDR_FAIL(C, &r.base, GQ_EPROTO, "ready: 65 backends, 64 devices, 4096 ops: over 64/64/4096", 0);
    r.n_backends = 1;
    r.n_devices = GQ_WIRE_MAX_LIST + 1;
    HDR_FAIL(C, &r.base, GQ_EPROTO, "65 devices", 0);
    r.n_devices = 1;
    r.n_ops = GQ_WIRE_MAX_OPS + 1;
    HDR_FAIL(C, &r.base, GQ_EPROTO, "4097 ops", 0);
    r.n_ops = 2;

    r.n_backends = 3;
    backends[2] = "";
    HDR_FAIL(C, &r.base, GQ_EPROTO, "backend name is empty", 0);
    backends[2] = name64;
    HDR_FAIL(C, &r.base, GQ_EPROTO, "backend name longer than 63 bytes", 0);
    backends[2] = "cpu";
    ops[1] = "";
    HDR_FAIL(C, &r.base, GQ_EPROTO, "op name is empty", 0);
    ops[1] = name64;
    HDR_FAIL(C, &r.base, GQ_EPROTO, "op name longer than 63 bytes", 0);
    ops[1] = "add";

    r.n_devices = 2;
    dev[1].backend = name64;
    HDR_FAIL(C, &r.base, GQ_EPROTO, "device backend longer than 63 bytes", 0);
    dev[1].backend = "";
    HDR_OK(C, &r.base);
    dev[1].name = str256;
    HDR_FAIL(C, &r.base, GQ_EPROTO, "device name longer than 255 bytes", 0);
    dev[1].name = "";
    dev[1].vendor = str256;
    HDR_FAIL(C, &r.base, GQ_EPROTO, "device vendor longer than 255 bytes", 0);
    dev[1].vendor = "";
    dev[1].driver = str256;
    HDR_FAIL(C, &r.base, GQ_EPROTO, "device driver longer than 255 bytes", 0);
    dev[1].driver = "";
    HDR_OK(C, &r.base);

    free(name64);
    free(str256);
}

static void s_test_status_reply(void)
{
    char *name64 = s_rep('n', GQ_MAX_NAME);
    char *backends[GQ_WIRE_MAX_STAGES + 1];
    for (int i = 0; i < GQ_WIRE_MAX_STAGES + 1; i++)
        backends[i] = "cpu";
    Gq__Wire__WorkerInfo wi = GQ__WIRE__WORKER_INFO__INIT;
    Gq__Wire__WorkerInfo **wip = s_xmalloc((GQ_WIRE_MAX_WORKERS + 1) * sizeof *wip);
    wi.name = "w";
    wi.backends = backends;
    wi.n_backends = 1;
    for (int i = 0; i < GQ_WIRE_MAX_WORKERS + 1; i++)
        wip[i] = &wi;
    uint64_t queued[5] = {1, 2, 3, 4, 5};
    Gq__Wire__StatusReply r = GQ__WIRE__STATUS_REPLY__INIT;
    const int C = GQ_CMD_STATUS_REPLY;
    r.workers = wip;
    r.n_workers = 2;
    r.queued = queued;
    r.n_queued = 4;
    HDR_OK(C, &r.base);

    r.n_queued = 5;
    HDR_FAIL(C, &r.base, GQ_EPROTO, "STATUS_REPLY: status reply: 2 workers, 5 queues", 0);
    r.n_queued = 4;
    wi.name = name64;
    HDR_FAIL(C, &r.base, GQ_EPROTO, "worker name longer than 63 bytes", 0);
    wi.name = "";
    wi.n_backends = GQ_WIRE_MAX_STAGES + 1;
    HDR_FAIL(C, &r.base, GQ_EPROTO, "9 backend names, at most 8", 0);
    wi.n_backends = 2;
    backends[1] = "";
    HDR_FAIL(C, &r.base, GQ_EPROTO, "backend name is empty", 0);
    backends[1] = "cpu";
    wi.n_backends = 0;
    r.n_workers = GQ_WIRE_MAX_WORKERS;
    HDR_OK(C, &r.base);
    r.n_workers = GQ_WIRE_MAX_WORKERS + 1;
    HDR_FAIL(C, &r.base, GQ_EPROTO, "65537 workers", 0);
    free(wip);
    free(name64);
}

static void s_test_small_commands(void)
{
    char *long_reason = s_rep('r', GQ_WIRE_MAX_MESSAGE + 1);
    Gq__Wire__Disconnect dc = GQ__WIRE__DISCONNECT__INIT;
    dc.reason = long_reason;
    HDR_FAIL(GQ_CMD_DISCONNECT, &dc.base, GQ_EPROTO,
             "DISCONNECT: disconnect reason longer than 4096 bytes", 0);
    long_reason[GQ_WIRE_MAX_MESSAGE] = '\0';
    HDR_OK(GQ_CMD_DISCONNECT, &dc.base);
    free(long_reason);

    Gq__Wire__Cancel c = GQ__WIRE__CANCEL__INIT;
    c.job_id = UINT64_MAX;
    gq_wire_msg_t m;
    char err[GQ_ERRLEN];
    gq_status rc = s_decode_hdr(GQ_CMD_CANCEL, &c.base, 0, &m, err, sizeof err);
    EXPECT_OK(rc, &m, err);
    CHECK(m.job_id == UINT64_MAX && m.cmd == GQ_CMD_CANCEL);
    gq_wire_msg_close(&m);

    Gq__Wire__Heartbeat hb = GQ__WIRE__HEARTBEAT__INIT;
    HDR_OK(GQ_CMD_HEARTBEAT, &hb.base);
    Gq__Wire__StatusRequest sr = GQ__WIRE__STATUS_REQUEST__INIT;
    HDR_OK(GQ_CMD_STATUS, &sr.base);
}

/* Commands without tensors must not carry tensor frames either: nothing describes them, so
 * nothing checks their sizes against the limits. */
static void s_test_stray_payload(void)
{
    Gq__Wire__Heartbeat hb = GQ__WIRE__HEARTBEAT__INIT;
    Gq__Wire__StatusRequest sr = GQ__WIRE__STATUS_REQUEST__INIT;
    Gq__Wire__Cancel ca = GQ__WIRE__CANCEL__INIT;
    Gq__Wire__Disconnect dc = GQ__WIRE__DISCONNECT__INIT;
    Gq__Wire__Error er = GQ__WIRE__ERROR__INIT;
    Gq__Wire__Ready rd = GQ__WIRE__READY__INIT;
    Gq__Wire__StatusReply rp = GQ__WIRE__STATUS_REPLY__INIT;
    ca.job_id = 3;
    er.job_id = 3;
    er.code = GQ_EINTERNAL;
    rd.name = "w";
    rd.credits = 1;
    const struct {
        int cmd;
        const ProtobufCMessage *hdr;
        uint64_t job_id;
    } cases[] = {
        {GQ_CMD_HEARTBEAT, &hb.base, 0},    {GQ_CMD_STATUS, &sr.base, 0},
        {GQ_CMD_CANCEL, &ca.base, 3},       {GQ_CMD_DISCONNECT, &dc.base, 0},
        {GQ_CMD_ERROR, &er.base, 3},        {GQ_CMD_READY, &rd.base, 0},
        {GQ_CMD_STATUS_REPLY, &rp.base, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gq_wire_msg_t m;
        char err[GQ_ERRLEN];
        gq_status rc = s_decode_hdr(cases[i].cmd, cases[i].hdr, 1, &m, err, sizeof err);
        EXPECT_FAIL(rc, &m, err, GQ_EPROTO, "tensor frame", cases[i].cmd, cases[i].job_id);
    }
}

/* Unknown fields are kept (a newer peer may send them), and the broker forwards a Submit's
 * stages and tensor descriptors into the Job it packs, unknown fields included: what the
 * decoder accepts must pack again into a header that decodes. protobuf-c reads field
 * number 0 from a two-byte tag ("\x80\x00") but writes it back as "\x00", which it
 * refuses; the decoder must refuse it first. */
static void s_test_unknown_fields(void)
{
    static const struct {
        const char *what;
        const char *hdr;
        size_t len;
        int ok;
    } cases[] = {
        /* job_id 42; a stage "add" with field 15 = 1; an input u8[4] with field 9 = 1 */
        {"known unknowns",
         "\x08\x2a\x12\x07\x0a\x03"
         "add"
         "\x78\x01"
         "\x1a\x09\x08\x08\x12\x01\x04\x18\x04\x48\x01",
         22, 1},
        {"field 0 in a stage",
         "\x08\x2a\x12\x08\x0a\x03"
         "add"
         "\x80\x00\x01"
         "\x1a\x07\x08\x08\x12\x01\x04\x18\x04",
         21, 0},
        {"field 0 in an input",
         "\x08\x2a\x12\x05\x0a\x03"
         "add"
         "\x1a\x0a\x08\x08\x12\x01\x04\x18\x04\x80\x00\x01",
         21, 0},
        {"field 0 at the top",
         "\x08\x2a\x12\x05\x0a\x03"
         "add"
         "\x1a\x07\x08\x08\x12\x01\x04\x18\x04\x80\x00\x01",
         21, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_frames_t fr;
        unsigned char cmd = GQ_CMD_SUBMIT;
        fr.n = 0;
        s_put(&fr, GQ_WIRE_TAG, GQ_WIRE_TAG_LEN);
        s_put(&fr, &cmd, 1);
        s_put(&fr, cases[i].hdr, cases[i].len);
        s_put_payload(&fr, 0, 4);
        gq_wire_msg_t m;
        char err[GQ_ERRLEN] = "";
        gq_status rc = gq_wire_decode(fr.f, fr.n, &m, NULL, err, sizeof err);
        if (!cases[i].ok) {
            EXPECT_FAIL(rc, &m, err, GQ_EPROTO, "field number 0", GQ_CMD_SUBMIT, 42);
            continue;
        }
        EXPECT_OK(rc, &m, err);
        if (rc != GQ_OK)
            continue;
        /* Forwarded the way the broker does it. */
        const Gq__Wire__Submit *s = (const Gq__Wire__Submit *)m.hdr;
        Gq__Wire__Job job = GQ__WIRE__JOB__INIT;
        job.job_id = 1;
        job.n_stages = s->n_stages;
        job.stages = s->stages;
        job.n_inputs = s->n_inputs;
        job.inputs = s->inputs;
        s_start(&fr, GQ_CMD_JOB, &job.base);
        s_put_payload(&fr, 0, 4);
        gq_wire_msg_close(&m);
        rc = gq_wire_decode(fr.f, fr.n, &m, NULL, err, sizeof err);
        EXPECT_OK(rc, &m, err);
        if (rc == GQ_OK)
            gq_wire_msg_close(&m);
    }
}

/* Sockets: a PAIR pair and a DEALER/ROUTER pair over inproc. Receives time out rather
 * than hang when a test goes wrong. */
static void *s_sock(int type, const char *ep, int bind, const char *rid)
{
    void *s = zmq_socket(s_ctx, type);
    int linger = 0, tmo = 5000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &tmo, sizeof tmo);
    if (rid)
        zmq_setsockopt(s, ZMQ_ROUTING_ID, rid, strlen(rid));
    int rc = bind ? zmq_bind(s, ep) : zmq_connect(s, ep);
    if (rc != 0) {
        fprintf(stderr, "test_wire: %s %s: %s\n", bind ? "bind" : "connect", ep,
                zmq_strerror(zmq_errno()));
        exit(1);
    }
    return s;
}

static int s_same_packed(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    if (!a || !b || a->descriptor != b->descriptor)
        return 0;
    size_t la = protobuf_c_message_get_packed_size(a);
    size_t lb = protobuf_c_message_get_packed_size(b);
    if (la != lb)
        return 0;
    uint8_t *pa = s_xmalloc(la), *pb = s_xmalloc(lb);
    protobuf_c_message_pack(a, pa);
    protobuf_c_message_pack(b, pb);
    int same = la == 0 || !memcmp(pa, pb, la);
    free(pa);
    free(pb);
    return same;
}

/* Payload frames for descs, filled with s_pattern. */
static void s_payload(zmq_msg_t *out, const gq_tdesc_t *descs, int n)
{
    for (int i = 0; i < n; i++) {
        size_t len = gq_tdesc_nbytes(&descs[i]);
        zmq_msg_init_size(&out[i], len);
        uint8_t *p = zmq_msg_data(&out[i]);
        for (size_t j = 0; j < len; j++)
            p[j] = s_pattern(i, j);
    }
}

/* Sends hdr with tensors for descs over tx, receives it on rx, and checks the header is
 * the one sent (byte for byte once packed), the descriptors match and every tensor byte
 * arrived. On GQ_OK the caller inspects and closes *m. */
static gq_status s_roundtrip(int line, void *tx, void *rx, const void *rid, size_t rid_len, int cmd,
                             const ProtobufCMessage *hdr, const ProtobufCMessage *want,
                             const gq_tdesc_t *descs, int n, zmq_msg_t *got_rid, gq_wire_msg_t *m)
{
    zmq_msg_t payload[GQ_WIRE_MAX_PAYLOAD];
    s_payload(payload, descs, n);
    char err[GQ_ERRLEN] = "";
    gq_status rc = gq_wire_send(tx, rid, rid_len, cmd, hdr, payload, n);
    if (rc == GQ_OK)
        rc = gq_wire_recv(rx, 0, got_rid, m, NULL, err, sizeof err);
    s_checks++;
    if (rc != GQ_OK) {
        fprintf(stderr, "%s:%d: round trip of %s: %s \"%s\"\n", __FILE__, line,
                gq_wire_cmd_name(cmd), gq_status_name(rc), err);
        s_failures++;
        return rc;
    }
    int ok =
        m->cmd == cmd && m->hdr && s_same_packed(want ? want : hdr, m->hdr) && m->npayload == n;
    for (int i = 0; ok && i < n; i++) {
        size_t len = gq_tdesc_nbytes(&descs[i]);
        const uint8_t *p = zmq_msg_data(&m->payload[i]);
        ok = gq_tdesc_equal(&m->desc[i], &descs[i]) && zmq_msg_size(&m->payload[i]) == len;
        for (size_t j = 0; ok && j < len; j++)
            ok = p[j] == s_pattern(i, j);
    }
    if (!ok) {
        fprintf(stderr, "%s:%d: round trip of %s: message differs from the one sent\n", __FILE__,
                line, gq_wire_cmd_name(cmd));
        s_failures++;
        gq_wire_msg_close(m);
        return GQ_EINTERNAL;
    }
    return GQ_OK;
}

#define ROUNDTRIP(tx, rx, cmd, hdr, want, descs, n, m)                                             \
    s_roundtrip(__LINE__, tx, rx, NULL, 0, cmd, hdr, want, descs, n, NULL, m)

/* Fills wire descriptors from gq descriptors the way senders do. */
static void s_descs(Gq__Wire__TensorDesc *td, Gq__Wire__TensorDesc **tdp,
                    int64_t (*shape)[GQ_MAX_DIMS], const gq_tdesc_t *d, int n)
{
    for (int i = 0; i < n; i++) {
        gq_wire_desc_fill(&td[i], shape[i], &d[i]);
        tdp[i] = &td[i];
    }
}

static void s_test_roundtrips(void)
{
    void *a = s_sock(ZMQ_PAIR, "inproc://wire-pair", 1, NULL);
    void *b = s_sock(ZMQ_PAIR, "inproc://wire-pair", 0, NULL);
    gq_wire_msg_t m;

    /* SUBMIT: two stages, params of every kind, a zero-size tensor, a scalar, and a key
     * with a NUL byte inside. */
    gq_tdesc_t d[4];
    static const int64_t s23[] = {2, 3}, s05[] = {0, 5}, s12[] = {1, 2};
    CHECK(gq_tdesc_init(&d[0], GQ_F32, s23, 2) == GQ_OK);
    CHECK(gq_tdesc_init(&d[1], GQ_F16, s05, 2) == GQ_OK);
    CHECK(gq_tdesc_init(&d[2], GQ_I64, NULL, 0) == GQ_OK);
    CHECK(gq_tdesc_init(&d[3], GQ_C128, s12, 2) == GQ_OK);
    Gq__Wire__TensorDesc td[4], *tdp[4];
    int64_t shapes[4][GQ_MAX_DIMS];
    s_descs(td, tdp, shapes, d, 4);
    CHECK(td[0].nbytes == 24 && td[1].nbytes == 0 && td[2].nbytes == 8 && td[3].nbytes == 32);

    Gq__Wire__Param par[4], *parp[4];
    for (int i = 0; i < 4; i++) {
        gq__wire__param__init(&par[i]);
        parp[i] = &par[i];
    }
    par[0].name = "axis";
    par[0].value_case = GQ__WIRE__PARAM__VALUE_I;
    par[0].i = INT64_MIN;
    par[1].name = "scale";
    par[1].value_case = GQ__WIRE__PARAM__VALUE_F;
    par[1].f = -0.25;
    par[2].name = "inplace";
    par[2].value_case = GQ__WIRE__PARAM__VALUE_B;
    par[2].b = 1;
    par[3].name = "mode";
    par[3].value_case = GQ__WIRE__PARAM__VALUE_S;
    par[3].s = "reflect";
    Gq__Wire__Stage st[2], *stp[2];
    for (int i = 0; i < 2; i++) {
        gq__wire__stage__init(&st[i]);
        stp[i] = &st[i];
    }
    st[0].op = "scale";
    st[0].n_params = 4;
    st[0].params = parp;
    st[1].op = "abs";
    static uint8_t key[] = {'k', 0, 'e', 'y'};
    Gq__Wire__Submit sub = GQ__WIRE__SUBMIT__INIT;
    sub.job_id = UINT64_MAX;
    sub.n_stages = 2;
    sub.stages = stp;
    sub.n_inputs = 4;
    sub.inputs = tdp;
    sub.priority = GQ__WIRE__PRIORITY__PRIO_BACKGROUND;
    sub.timeout_ms = 1500;
    sub.idempotency_key.data = key;
    sub.idempotency_key.len = sizeof key;
    if (ROUNDTRIP(a, b, GQ_CMD_SUBMIT, &sub.base, NULL, d, 4, &m) == GQ_OK) {
        const Gq__Wire__Submit *s = (const Gq__Wire__Submit *)m.hdr;
        CHECK(m.job_id == UINT64_MAX && s->n_stages == 2 && !strcmp(s->stages[1]->op, "abs"));
        CHECK(s->idempotency_key.len == 4 && !memcmp(s->idempotency_key.data, key, 4));
        gq_param_t p[GQ_MAX_PARAMS];
        CHECK(gq_wire_stage_params(s->stages[0], p, GQ_MAX_PARAMS) == 4);
        CHECK(!strcmp(p[0].name, "axis") && p[0].v.type == GQ_PT_INT && p[0].v.i == INT64_MIN);
        CHECK(p[1].v.type == GQ_PT_FLOAT && p[1].v.f == -0.25);
        CHECK(p[2].v.type == GQ_PT_BOOL && p[2].v.i == 1);
        CHECK(p[3].v.type == GQ_PT_STR && !strcmp(p[3].v.s, "reflect"));
        CHECK(gq_wire_stage_params(s->stages[0], p, 2) == 2);
        CHECK(gq_wire_stage_params(s->stages[1], p, GQ_MAX_PARAMS) == 0);
        gq_wire_msg_close(&m);
    }

    /* JOB and DONE: the worker's side of the same tensors. */
    Gq__Wire__Job job = GQ__WIRE__JOB__INIT;
    job.job_id = 77;
    job.n_stages = 1;
    job.stages = stp;
    job.n_inputs = 4;
    job.inputs = tdp;
    job.timeout_ms = 250;
    if (ROUNDTRIP(b, a, GQ_CMD_JOB, &job.base, NULL, d, 4, &m) == GQ_OK) {
        CHECK(m.job_id == 77 && ((Gq__Wire__Job *)m.hdr)->timeout_ms == 250);
        gq_wire_msg_close(&m);
    }
    char *backends[] = {"opencl", "cpu"};
    Gq__Wire__Done done = GQ__WIRE__DONE__INIT;
    done.job_id = 77;
    done.n_outputs = 2;
    done.outputs = tdp;
    done.compute_us = 1234;
    done.n_backends = 2;
    done.backends = backends;
    if (ROUNDTRIP(a, b, GQ_CMD_DONE, &done.base, NULL, d, 2, &m) == GQ_OK) {
        const Gq__Wire__Done *dd = (const Gq__Wire__Done *)m.hdr;
        CHECK(m.job_id == 77 && dd->code == 0 && !strcmp(dd->backends[0], "opencl"));
        gq_wire_msg_close(&m);
    }
    Gq__Wire__Done fail = GQ__WIRE__DONE__INIT;
    fail.job_id = 78;
    fail.code = GQ_EDEVICE_OOM;
    fail.message = "out of device memory: 2 GiB asked";
    if (ROUNDTRIP(a, b, GQ_CMD_DONE, &fail.base, NULL, NULL, 0, &m) == GQ_OK) {
        CHECK(((Gq__Wire__Done *)m.hdr)->code == GQ_EDEVICE_OOM);
        gq_wire_msg_close(&m);
    }

    /* RESULT with timing, ERROR, CANCEL, STATUS, STATUS_REPLY. */
    Gq__Wire__Timing tm = GQ__WIRE__TIMING__INIT;
    tm.queued_us = 10;
    tm.compute_us = 20;
    Gq__Wire__Result res = GQ__WIRE__RESULT__INIT;
    res.job_id = 5;
    res.n_outputs = 1;
    res.outputs = &tdp[3];
    res.timing = &tm;
    res.n_backends = 2;
    res.backends = backends;
    res.worker = "gpu-box:81";
    if (ROUNDTRIP(b, a, GQ_CMD_RESULT, &res.base, NULL, &d[3], 1, &m) == GQ_OK) {
        const Gq__Wire__Result *rr = (const Gq__Wire__Result *)m.hdr;
        CHECK(m.job_id == 5 && rr->timing && rr->timing->compute_us == 20);
        CHECK(!strcmp(rr->worker, "gpu-box:81"));
        gq_wire_msg_close(&m);
    }
    Gq__Wire__Error er = GQ__WIRE__ERROR__INIT;
    er.job_id = 6;
    er.code = GQ_EEXHAUSTED;
    er.message = "queue full";
    er.retry_after_ms = 100;
    er.worker = "w";
    if (ROUNDTRIP(b, a, GQ_CMD_ERROR, &er.base, NULL, NULL, 0, &m) == GQ_OK) {
        const Gq__Wire__Error *ee = (const Gq__Wire__Error *)m.hdr;
        CHECK(m.job_id == 6 && ee->code == GQ_EEXHAUSTED && ee->retry_after_ms == 100);
        gq_wire_msg_close(&m);
    }
    Gq__Wire__Cancel ca = GQ__WIRE__CANCEL__INIT;
    ca.job_id = 99;
    if (ROUNDTRIP(a, b, GQ_CMD_CANCEL, &ca.base, NULL, NULL, 0, &m) == GQ_OK) {
        CHECK(m.job_id == 99);
        gq_wire_msg_close(&m);
    }
    Gq__Wire__StatusRequest sr = GQ__WIRE__STATUS_REQUEST__INIT;
    sr.request_id = 3;
    if (ROUNDTRIP(a, b, GQ_CMD_STATUS, &sr.base, NULL, NULL, 0, &m) == GQ_OK)
        gq_wire_msg_close(&m);
    Gq__Wire__WorkerInfo wi[2] = {GQ__WIRE__WORKER_INFO__INIT, GQ__WIRE__WORKER_INFO__INIT};
    Gq__Wire__WorkerInfo *wip[2] = {&wi[0], &wi[1]};
    wi[0].name = "w0";
    wi[0].credits = 2;
    wi[0].n_backends = 2;
    wi[0].backends = backends;
    wi[1].name = "w1";
    wi[1].jobs_done = 1000;
    uint64_t queued[4] = {0, 1, 2, 3};
    Gq__Wire__StatusReply rp = GQ__WIRE__STATUS_REPLY__INIT;
    rp.request_id = 3;
    rp.n_workers = 2;
    rp.workers = wip;
    rp.n_queued = 4;
    rp.queued = queued;
    rp.jobs_failed = 8;
    if (ROUNDTRIP(b, a, GQ_CMD_STATUS_REPLY, &rp.base, NULL, NULL, 0, &m) == GQ_OK) {
        const Gq__Wire__StatusReply *r = (const Gq__Wire__StatusReply *)m.hdr;
        CHECK(r->n_workers == 2 && !strcmp(r->workers[1]->name, "w1") && r->queued[3] == 3);
        gq_wire_msg_close(&m);
    }

    /* READY (a header of some kilobytes), HEARTBEAT with and without a header, and
     * DISCONNECT at the 32-byte boundary where the sender switches buffers. */
    char *ops[300];
    char opnames[300][16];
    for (int i = 0; i < 300; i++) {
        snprintf(opnames[i], sizeof opnames[i], "op%d", i);
        ops[i] = opnames[i];
    }
    Gq__Wire__Device dev = GQ__WIRE__DEVICE__INIT, *devp = &dev;
    dev.backend = "opencl";
    dev.name = "NVIDIA H100";
    dev.vendor = "NVIDIA";
    dev.driver = "550.54";
    dev.memory_bytes = (uint64_t)80 << 30;
    dev.is_gpu = 1;
    Gq__Wire__Ready rd = GQ__WIRE__READY__INIT;
    rd.name = "gpu-box:81";
    rd.credits = 8;
    rd.n_backends = 2;
    rd.backends = backends;
    rd.n_devices = 1;
    rd.devices = &devp;
    rd.n_ops = 300;
    rd.ops = ops;
    rd.heartbeat_ms = 1000;
    if (ROUNDTRIP(b, a, GQ_CMD_READY, &rd.base, NULL, NULL, 0, &m) == GQ_OK) {
        const Gq__Wire__Ready *r = (const Gq__Wire__Ready *)m.hdr;
        CHECK(r->n_ops == 300 && !strcmp(r->ops[299], "op299") && r->devices[0]->is_gpu);
        gq_wire_msg_close(&m);
    }
    Gq__Wire__Heartbeat hb = GQ__WIRE__HEARTBEAT__INIT;
    if (ROUNDTRIP(a, b, GQ_CMD_HEARTBEAT, NULL, &hb.base, NULL, 0, &m) == GQ_OK)
        gq_wire_msg_close(&m);
    if (ROUNDTRIP(a, b, GQ_CMD_HEARTBEAT, &hb.base, NULL, NULL, 0, &m) == GQ_OK)
        gq_wire_msg_close(&m);
    for (size_t len = 29; len <= 33; len++) {
        char *reason = s_rep('x', len);
        Gq__Wire__Disconnect dc = GQ__WIRE__DISCONNECT__INIT;
        dc.reason = reason;
        if (ROUNDTRIP(b, a, GQ_CMD_DISCONNECT, &dc.base, NULL, NULL, 0, &m) == GQ_OK) {
            CHECK(!strcmp(((Gq__Wire__Disconnect *)m.hdr)->reason, reason));
            gq_wire_msg_close(&m);
        }
        free(reason);
    }

    /* 16 tensor frames arrive; 17 are refused by the receiver. */
    gq_tdesc_t d16[GQ_WIRE_MAX_PAYLOAD + 1];
    Gq__Wire__TensorDesc td16[GQ_WIRE_MAX_PAYLOAD + 1], *tdp16[GQ_WIRE_MAX_PAYLOAD + 1];
    int64_t sh16[GQ_WIRE_MAX_PAYLOAD + 1][GQ_MAX_DIMS];
    for (int i = 0; i < GQ_WIRE_MAX_PAYLOAD + 1; i++) {
        int64_t len = 1 + i * 3;
        CHECK(gq_tdesc_init(&d16[i], GQ_U8 + i % 3, &len, 1) == GQ_OK);
    }
    s_descs(td16, tdp16, sh16, d16, GQ_WIRE_MAX_PAYLOAD + 1);
    Gq__Wire__Submit sub16 = GQ__WIRE__SUBMIT__INIT;
    sub16.job_id = 16;
    sub16.n_stages = 1;
    sub16.stages = stp;
    sub16.n_inputs = GQ_WIRE_MAX_PAYLOAD;
    sub16.inputs = tdp16;
    if (ROUNDTRIP(a, b, GQ_CMD_SUBMIT, &sub16.base, NULL, d16, GQ_WIRE_MAX_PAYLOAD, &m) == GQ_OK)
        gq_wire_msg_close(&m);
    sub16.n_inputs = GQ_WIRE_MAX_PAYLOAD + 1;
    zmq_msg_t p17[GQ_WIRE_MAX_PAYLOAD + 1];
    s_payload(p17, d16, GQ_WIRE_MAX_PAYLOAD + 1);
    CHECK(gq_wire_send(a, NULL, 0, GQ_CMD_SUBMIT, &sub16.base, p17, GQ_WIRE_MAX_PAYLOAD + 1) ==
          GQ_OK);
    char err[GQ_ERRLEN] = "";
    EXPECT_FAIL(gq_wire_recv(b, 0, NULL, &m, NULL, err, sizeof err), &m, err, GQ_ETOOBIG,
                "message has 20 frames, at most 19 allowed", 0, 0);

    /* Nothing waiting: GQ_EAGAIN without blocking. */
    CHECK(gq_wire_recv(b, ZMQ_DONTWAIT, NULL, &m, NULL, err, sizeof err) == GQ_EAGAIN);

    zmq_close(a);
    zmq_close(b);
}

/* Sends raw frames as one multipart message. */
static void s_send_raw(void *s, const void *const *data, const size_t *len, int n)
{
    for (int i = 0; i < n; i++)
        zmq_send(s, data[i], len[i], i + 1 < n ? ZMQ_SNDMORE : 0);
}

/* A malformed multipart message must be received whole, so that the next message on the
 * socket is read from its first frame. Each bad message is followed by a good CANCEL. */
static void s_test_drain(void)
{
    void *router = s_sock(ZMQ_ROUTER, "inproc://wire-router", 1, NULL);
    void *dealer = s_sock(ZMQ_DEALER, "inproc://wire-router", 0, "client-7");
    static const unsigned char submit = GQ_CMD_SUBMIT, hb = GQ_CMD_HEARTBEAT, bad = 0x55;
    static const unsigned char junk_hdr[] = {0x12, 0x7f, 0x0a};
    static const unsigned char job0_hdr[] = {0x08, 0x00}; /* Submit{job_id: 0} */
    static const unsigned char job9_hdr[] = {0x08, 0x09}; /* Submit{job_id: 9} */
    static const char filler[64] = "";
    const void *dv[24];
    size_t lv[24];
    for (int i = 0; i < 24; i++) {
        dv[i] = filler;
        lv[i] = 1 + (size_t)i;
    }
    const struct {
        const char *what;
        int n;
        const void *f0, *f1, *f2;
        size_t l0, l1, l2;
        gq_status want;
        const char *substr;
        int cmd;
        uint64_t job_id;
    } cases[] = {
        {"24 frames", 24, GQ_WIRE_TAG, &hb, "", 3, 1, 0, GQ_ETOOBIG, "24 frames, at most 19", 0, 0},
        {"20 frames", 20, GQ_WIRE_TAG, &hb, "", 3, 1, 0, GQ_ETOOBIG, "20 frames", 0, 0},
        {"bad tag", 6, "ZMTP", &submit, "", 4, 1, 0, GQ_EPROTO, "protocol tag", 0, 0},
        {"new version", 6, "GQ9", &submit, "", 3, 1, 0, GQ_EVERSION, "GQ9", 0, 0},
        {"unknown cmd", 6, GQ_WIRE_TAG, &bad, "", 3, 1, 0, GQ_EPROTO, "0x55", 0x55, 0},
        {"junk header", 6, GQ_WIRE_TAG, &submit, junk_hdr, 3, 1, sizeof junk_hdr, GQ_EPROTO,
         "does not parse", GQ_CMD_SUBMIT, 0},
        {"job 0", 6, GQ_WIRE_TAG, &submit, job0_hdr, 3, 1, sizeof job0_hdr, GQ_EPROTO, "job_id 0",
         GQ_CMD_SUBMIT, 0},
        {"no stages", 6, GQ_WIRE_TAG, &submit, job9_hdr, 3, 1, sizeof job9_hdr, GQ_EPROTO,
         "0 stages", GQ_CMD_SUBMIT, 9},
        {"two frames", 2, GQ_WIRE_TAG, &submit, NULL, 3, 1, 0, GQ_EPROTO, "2 frames", 0, 0},
        {"one frame", 1, GQ_WIRE_TAG, NULL, NULL, 3, 0, 0, GQ_EPROTO, "1 frames", 0, 0},
    };
    Gq__Wire__Cancel ca = GQ__WIRE__CANCEL__INIT;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dv[0] = cases[i].f0;
        lv[0] = cases[i].l0;
        dv[1] = cases[i].f1;
        lv[1] = cases[i].l1;
        dv[2] = cases[i].f2;
        lv[2] = cases[i].l2;
        s_send_raw(dealer, dv, lv, cases[i].n);
        ca.job_id = 1000 + i;
        CHECK(gq_wire_send(dealer, NULL, 0, GQ_CMD_CANCEL, &ca.base, NULL, 0) == GQ_OK);

        gq_wire_msg_t m;
        zmq_msg_t rid;
        char err[GQ_ERRLEN] = "";
        gq_status rc = gq_wire_recv(router, 0, &rid, &m, NULL, err, sizeof err);
        s_checks++;
        if (rc != cases[i].want || !strstr(err, cases[i].substr) || m.cmd != cases[i].cmd ||
            m.job_id != cases[i].job_id || m.hdr || m.npayload) {
            fprintf(stderr, "%s:%d: drain '%s': got %s \"%s\", want %s \"...%s...\"\n", __FILE__,
                    __LINE__, cases[i].what, gq_status_name(rc), err, gq_status_name(cases[i].want),
                    cases[i].substr);
            s_failures++;
        }
        /* The routing id comes back even for a bad message: the broker answers it. */
        CHECK(zmq_msg_size(&rid) == 8 && !memcmp(zmq_msg_data(&rid), "client-7", 8));
        zmq_msg_close(&rid);

        rc = gq_wire_recv(router, 0, &rid, &m, NULL, err, sizeof err);
        s_checks++;
        if (rc != GQ_OK || m.cmd != GQ_CMD_CANCEL || m.job_id != 1000 + i) {
            fprintf(stderr, "%s:%d: after '%s' the next message reads as %s \"%s\"\n", __FILE__,
                    __LINE__, cases[i].what, gq_status_name(rc), err);
            s_failures++;
        }
        if (rc == GQ_OK)
            gq_wire_msg_close(&m);
        CHECK(zmq_msg_size(&rid) == 8 && !memcmp(zmq_msg_data(&rid), "client-7", 8));
        zmq_msg_close(&rid);
    }

    /* ROUTER to DEALER by routing id, with tensors, and back with the id reported. */
    gq_tdesc_t d;
    static const int64_t s3[] = {3};
    CHECK(gq_tdesc_init(&d, GQ_F64, s3, 1) == GQ_OK);
    Gq__Wire__TensorDesc td, *tdp = &td;
    int64_t shape[1][GQ_MAX_DIMS];
    s_descs(&td, &tdp, shape, &d, 1);
    char *backends[] = {"cpu"};
    Gq__Wire__Result res = GQ__WIRE__RESULT__INIT;
    res.job_id = 12;
    res.n_outputs = 1;
    res.outputs = &tdp;
    res.n_backends = 1;
    res.backends = backends;
    gq_wire_msg_t m;
    if (s_roundtrip(__LINE__, router, dealer, "client-7", 8, GQ_CMD_RESULT, &res.base, NULL, &d, 1,
                    NULL, &m) == GQ_OK)
        gq_wire_msg_close(&m);
    Gq__Wire__Submit sub = GQ__WIRE__SUBMIT__INIT;
    Gq__Wire__Stage st = GQ__WIRE__STAGE__INIT, *stp = &st;
    st.op = "sum";
    sub.job_id = 12;
    sub.n_stages = 1;
    sub.stages = &stp;
    sub.n_inputs = 1;
    sub.inputs = &tdp;
    zmq_msg_t rid;
    zmq_msg_init(&rid);
    if (s_roundtrip(__LINE__, dealer, router, NULL, 0, GQ_CMD_SUBMIT, &sub.base, NULL, &d, 1, &rid,
                    &m) == GQ_OK) {
        CHECK(m.job_id == 12);
        gq_wire_msg_close(&m);
    }
    CHECK(zmq_msg_size(&rid) == 8 && !memcmp(zmq_msg_data(&rid), "client-7", 8));
    zmq_msg_close(&rid);

    /* One empty frame after the routing id: too few frames, and the id still comes back. */
    zmq_send(dealer, "", 0, 0);
    char err[GQ_ERRLEN] = "";
    gq_status rc = gq_wire_recv(router, 0, &rid, &m, NULL, err, sizeof err);
    CHECK(rc == GQ_EPROTO);
    CHECK(zmq_msg_size(&rid) == 8);
    zmq_msg_close(&rid);

    zmq_close(dealer);
    zmq_close(router);
}

static void s_test_helpers(void)
{
    CHECK(!strcmp(gq_wire_cmd_name(GQ_CMD_SUBMIT), "SUBMIT"));
    CHECK(!strcmp(gq_wire_cmd_name(GQ_CMD_DISCONNECT), "DISCONNECT"));
    CHECK(!strcmp(gq_wire_cmd_name(0), "?"));
    CHECK(!strcmp(gq_wire_cmd_name(-1), "?"));
    gq_wire_limits_t lim;
    gq_wire_limits_default(&lim);
    CHECK(lim.max_header == (size_t)256 << 10 && lim.max_tensor_bytes == (uint64_t)1 << 30 &&
          lim.max_total_bytes == (uint64_t)4 << 30);
    gq_wire_msg_close(NULL);
}

int main(void)
{
    s_ctx = zmq_ctx_new();
    if (!s_ctx) {
        fprintf(stderr, "test_wire: zmq_ctx_new: %s\n", zmq_strerror(zmq_errno()));
        return 1;
    }
    s_test_helpers();
    s_test_framing();
    s_test_submit();
    s_test_job();
    s_test_done_result();
    s_test_error();
    s_test_ready();
    s_test_status_reply();
    s_test_small_commands();
    s_test_stray_payload();
    s_test_unknown_fields();
    s_test_roundtrips();
    s_test_drain();
    zmq_ctx_term(s_ctx);
    printf("test_wire: %d checks, %d failed\n", s_checks, s_failures);
    return s_failures ? 1 : 0;
}
