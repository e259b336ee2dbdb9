/* fuzz-iterations: 300000
 *
 * gq_wire_decode on arbitrary frames. The input is split into ZeroMQ frames:
 *
 *   byte 0        k: k % 25 frames (0..24, past the 19 allowed); bit 0 of k / 25 picks the
 *                 limits (default, or small ones the fuzzer can reach: 1 KiB tensors,
 *                 4 KiB in all, 4 KiB headers)
 *   then          for each frame but the last: a 2-byte little-endian length (cut to what
 *                 is left) and that many bytes; the last frame takes the rest
 *
 * tests/fuzz/make_wire_corpus.c writes valid messages of every command in this framing.
 * Each frame is an exact-size heap copy handed to zmq without a copy, so a read past a
 * frame's end hits an ASan redzone. What the decoder accepts must be self-consistent: every
 * tensor frame has a checked descriptor that matches its size and the limits, every header
 * string and payload byte is readable, and the header packed again decodes to the same
 * message. What it refuses must say why and leave nothing behind. */
#include "wire.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_IN_FRAMES 24

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_free_data(void *p, void *hint)
{
    (void)hint;
    free(p);
}

static void s_frame(zmq_msg_t *f, const uint8_t *p, size_t len)
{
    void *buf = malloc(len ? len : 1);
    if (!buf)
        abort();
    if (len)
        memcpy(buf, p, len);
    if (zmq_msg_init_data(f, buf, len, s_free_data, NULL) != 0)
        abort();
}

typedef struct {
    const uint8_t *p[S_MAX_IN_FRAMES];
    size_t len[S_MAX_IN_FRAMES];
    int n;
} s_split_t;

static void s_split(const uint8_t *data, size_t size, s_split_t *sp)
{
    sp->n = size ? data[0] % (S_MAX_IN_FRAMES + 1) : 0;
    size_t off = size ? 1 : 0;
    for (int i = 0; i < sp->n; i++) {
        size_t len = size - off;
        if (i + 1 < sp->n) {
            len = 0;
            if (off < size)
                len = data[off++];
            if (off < size)
                len |= (size_t)data[off++] << 8;
            if (len > size - off)
                len = size - off;
        }
        sp->p[i] = data + off;
        sp->len[i] = len;
        off += len;
    }
}

static gq_status s_decode(const s_split_t *sp, gq_wire_msg_t *m, const gq_wire_limits_t *lim,
                          char *err, size_t errlen)
{
    zmq_msg_t f[S_MAX_IN_FRAMES];
    for (int i = 0; i < sp->n; i++)
        s_frame(&f[i], sp->p[i], sp->len[i]);
    return gq_wire_decode(f, sp->n, m, lim, err, errlen);
}

/* Reads every string, bytes field and submessage of msg through its descriptor, so that
 * ASan sees each byte the decoder handed out. */
static unsigned s_touch(const ProtobufCMessage *msg)
{
    unsigned sum = 0;
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    const char *base = (const char *)msg;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        const void *elems = base + fd->offset;
        size_t n = 1;
        if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + fd->quantifier_offset) != fd->id)
            continue;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(const size_t *)(base + fd->quantifier_offset);
            elems = *(void *const *)elems;
            if (n && !elems)
                abort();
        }
        for (size_t k = 0; k < n; k++) {
            switch (fd->type) {
            case PROTOBUF_C_TYPE_STRING: {
                const char *s = ((char *const *)elems)[k];
                if (!s && fd->label == PROTOBUF_C_LABEL_REPEATED)
                    abort();
                for (; s && *s; s++)
                    sum += (unsigned char)*s;
                break;
            }
            case PROTOBUF_C_TYPE_BYTES: {
                const ProtobufCBinaryData *b = &((const ProtobufCBinaryData *)elems)[k];
                for (size_t j = 0; j < b->len; j++)
                    sum += b->data[j];
                break;
            }
            case PROTOBUF_C_TYPE_MESSAGE: {
                const ProtobufCMessage *sub = ((ProtobufCMessage *const *)elems)[k];
                if (!sub && fd->label == PROTOBUF_C_LABEL_REPEATED)
                    abort();
                if (sub)
                    sum += s_touch(sub);
                break;
            }
            default:
                break;
            }
        }
    }
    return sum;
}

/* A decoded message must hold what the decoder promises. */
static unsigned s_check_ok(const gq_wire_msg_t *m, const gq_wire_limits_t *lim)
{
    if (!m->hdr || !strcmp(gq_wire_cmd_name(m->cmd), "?"))
        abort();
    if (m->npayload < 0 || m->npayload > GQ_WIRE_MAX_PAYLOAD)
        abort();
    unsigned sum = s_touch(m->hdr);
    uint64_t total = 0;
    for (int i = 0; i < m->npayload; i++) {
        size_t nbytes = 0;
        size_t len = zmq_msg_size((zmq_msg_t *)&m->payload[i]);
        if (gq_tdesc_check(&m->desc[i], NULL, &nbytes) != GQ_OK || nbytes != len ||
            nbytes > lim->max_tensor_bytes)
            abort();
        total += nbytes;
        const uint8_t *p = zmq_msg_data((zmq_msg_t *)&m->payload[i]);
        for (size_t j = 0; j < len; j++)
            sum += p[j];
    }
    if (total > lim->max_total_bytes)
        abort();

    const Gq__Wire__Stage *const *stages = NULL;
    size_t nstages = 0;
    if (m->cmd == GQ_CMD_SUBMIT) {
        const Gq__Wire__Submit *s = (const Gq__Wire__Submit *)m->hdr;
        stages = (const Gq__Wire__Stage *const *)s->stages;
        nstages = s->n_stages;
        if (s->job_id == 0 || m->job_id != s->job_id)
            abort();
    } else if (m->cmd == GQ_CMD_JOB) {
        const Gq__Wire__Job *j = (const Gq__Wire__Job *)m->hdr;
        stages = (const Gq__Wire__Stage *const *)j->stages;
        nstages = j->n_stages;
        if (j->job_id == 0 || m->job_id != j->job_id)
            abort();
    }
    if (stages && (nstages == 0 || nstages > GQ_WIRE_MAX_STAGES))
        abort();
    for (size_t i = 0; i < nstages; i++) {
        gq_param_t p[GQ_MAX_PARAMS];
        int n = gq_wire_stage_params(stages[i], p, GQ_MAX_PARAMS);
        if (n != (int)stages[i]->n_params || strlen(stages[i]->op) >= GQ_MAX_NAME)
            abort();
        for (int k = 0; k < n; k++) {
            if (!p[k].name[0] || strlen(p[k].name) >= GQ_MAX_NAME)
                abort();
            if (p[k].v.type == GQ_PT_STR && strlen(p[k].v.s) >= GQ_MAX_STR)
                abort();
        }
    }
    return sum;
}

/* The header packed again, with copies of the tensor frames, decodes to the same message.
 * The repacked header may be longer than the one received (protobuf-c writes negative
 * enums as 10-byte varints), so the header limit is lifted. */
static void s_check_repack(const gq_wire_msg_t *m, const gq_wire_limits_t *lim)
{
    size_t hlen = protobuf_c_message_get_packed_size(m->hdr);
    uint8_t *hbuf = malloc(hlen ? hlen : 1);
    if (!hbuf)
        abort();
    protobuf_c_message_pack(m->hdr, hbuf);
    zmq_msg_t f[3 + GQ_WIRE_MAX_PAYLOAD];
    unsigned char cmd = (unsigned char)m->cmd;
    s_frame(&f[0], (const uint8_t *)GQ_WIRE_TAG, GQ_WIRE_TAG_LEN);
    s_frame(&f[1], &cmd, 1);
    s_frame(&f[2], hbuf, hlen);
    for (int i = 0; i < m->npayload; i++)
        s_frame(&f[3 + i], zmq_msg_data((zmq_msg_t *)&m->payload[i]),
                zmq_msg_size((zmq_msg_t *)&m->payload[i]));
    gq_wire_limits_t lim2 = *lim;
    lim2.max_header = SIZE_MAX;
    gq_wire_msg_t m2;
    char err[GQ_ERRLEN];
    if (gq_wire_decode(f, 3 + m->npayload, &m2, &lim2, err, sizeof err) != GQ_OK)
        abort();
    if (m2.cmd != m->cmd || m2.job_id != m->job_id || m2.npayload != m->npayload ||
        protobuf_c_message_get_packed_size(m2.hdr) != hlen)
        abort();
    uint8_t *hbuf2 = malloc(hlen ? hlen : 1);
    if (!hbuf2)
        abort();
    protobuf_c_message_pack(m2.hdr, hbuf2);
    if (hlen && memcmp(hbuf, hbuf2, hlen))
        abort();
    for (int i = 0; i < m->npayload; i++)
        if (!gq_tdesc_equal(&m->desc[i], &m2.desc[i]))
            abort();
    free(hbuf2);
    free(hbuf);
    gq_wire_msg_close(&m2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_split_t sp;
    s_split(data, size, &sp);
    gq_wire_limits_t lim;
    gq_wire_limits_default(&lim);
    if (size && (data[0] / (S_MAX_IN_FRAMES + 1)) & 1) {
        lim.max_header = 4096;
        lim.max_tensor_bytes = 1024;
        lim.max_total_bytes = 4096;
    }

    gq_wire_msg_t m;
    char err[GQ_ERRLEN];
    err[0] = '\0';
    gq_status rc = s_decode(&sp, &m, &lim, err, sizeof err);
    if (!memchr(err, '\0', sizeof err))
        abort();
    if (rc == GQ_OK) {
        volatile unsigned sink = s_check_ok(&m, &lim);
        (void)sink;
        s_check_repack(&m, &lim);
        gq_wire_msg_close(&m);
        if (m.hdr || m.npayload)
            abort();
    } else {
        /* Every refusal says why, leaves nothing to close, and is a wire status. */
        if (!err[0] || m.hdr || m.npayload)
            abort();
        if (rc != GQ_EPROTO && rc != GQ_EVERSION && rc != GQ_ETOOBIG)
            abort();
        /* A job id is only read from a known command's header. */
        if (m.job_id && !strcmp(gq_wire_cmd_name(m.cmd), "?"))
            abort();
    }

    /* The same frames again with a short and with no error buffer: the same answer. */
    char tiny[5];
    gq_wire_msg_t m2;
    gq_status rc2 = s_decode(&sp, &m2, &lim, tiny, sizeof tiny);
    if (rc2 == GQ_OK)
        gq_wire_msg_close(&m2);
    gq_status rc3 = s_decode(&sp, &m2, &lim, NULL, 0);
    if (rc3 == GQ_OK)
        gq_wire_msg_close(&m2);
    if (rc2 != rc || rc3 != rc || m2.job_id != m.job_id || m2.cmd != m.cmd)
        abort();
    return 0;
}
