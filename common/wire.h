/* The gpuq wire codec: ZeroMQ multipart messages of
 *   [routing id] "GQ1" | command byte | protobuf header | tensor frame ...
 * gq_wire_recv always consumes a whole multipart message, checks every frame count, size,
 * enum, string length, dtype and shape (overflow-safe byte counts) before anything uses
 * it, and keeps tensor frames as zmq_msg_t so their bytes are never copied. */
#ifndef GQ_WIRE_H
#define GQ_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>
#include "gpuq.pb-c.h"
#include "optable.h"
#include "tensor.h"

#define GQ_WIRE_TAG "GQ1"
#define GQ_WIRE_TAG_LEN 3
#define GQ_WIRE_MAX_PAYLOAD 16     /* tensor frames per message */
#define GQ_WIRE_MAX_STAGES 8       /* ops in one pipeline job */
#define GQ_WIRE_MAX_BATCH 1024     /* jobs stacked into one batch job */
#define GQ_WIRE_MAX_FALLBACKS 1024 /* fallback counters in a heartbeat */
#define GQ_WIRE_MAX_MESSAGE 4096   /* error and disconnect texts */
#define GQ_WIRE_MAX_IDEMPOTENCY 64
#define GQ_WIRE_MAX_OPS 4096 /* ops a worker may announce */
#define GQ_WIRE_MAX_LIST 64  /* backends, devices per worker */
#define GQ_WIRE_MAX_WORKERS 65536
#define GQ_WIRE_MAX_CREDITS 65536
#define GQ_WIRE_MAX_TTL_MS ((uint64_t)1 << 38) /* cache TTL: about 8.7 years */
#define GQ_WIRE_MAX_TEXT (128u << 10)          /* admin reply text (metrics) */
#define GQ_WIRE_MAX_TIERS 8                    /* tier stats in an admin reply */
#define GQ_WIRE_MAX_BUCKETS 32                 /* latency histogram buckets */

typedef enum {
    GQ_CMD_SUBMIT = GQ__WIRE__COMMAND__CMD_SUBMIT,
    GQ_CMD_RESULT = GQ__WIRE__COMMAND__CMD_RESULT,
    GQ_CMD_ERROR = GQ__WIRE__COMMAND__CMD_ERROR,
    GQ_CMD_STATUS = GQ__WIRE__COMMAND__CMD_STATUS,
    GQ_CMD_STATUS_REPLY = GQ__WIRE__COMMAND__CMD_STATUS_REPLY,
    GQ_CMD_CANCEL = GQ__WIRE__COMMAND__CMD_CANCEL,
    GQ_CMD_ADMIN = GQ__WIRE__COMMAND__CMD_ADMIN,
    GQ_CMD_ADMIN_REPLY = GQ__WIRE__COMMAND__CMD_ADMIN_REPLY,
    GQ_CMD_READY = GQ__WIRE__COMMAND__CMD_READY,
    GQ_CMD_JOB = GQ__WIRE__COMMAND__CMD_JOB,
    GQ_CMD_DONE = GQ__WIRE__COMMAND__CMD_DONE,
    GQ_CMD_HEARTBEAT = GQ__WIRE__COMMAND__CMD_HEARTBEAT,
    GQ_CMD_DISCONNECT = GQ__WIRE__COMMAND__CMD_DISCONNECT,
    GQ_CMD_MODEL_PUT = GQ__WIRE__COMMAND__CMD_MODEL_PUT,
    GQ_CMD_MODEL_REPLY = GQ__WIRE__COMMAND__CMD_MODEL_REPLY,
    GQ_CMD_MODEL_GET = GQ__WIRE__COMMAND__CMD_MODEL_GET,
    GQ_CMD_MODEL = GQ__WIRE__COMMAND__CMD_MODEL,
} gq_cmd_t;

typedef struct {
    size_t max_header;         /* protobuf header bytes */
    uint64_t max_tensor_bytes; /* one tensor frame */
    uint64_t max_total_bytes;  /* all tensor frames of a message */
} gq_wire_limits_t;

/* 256 KiB headers, 1 GiB tensors, 4 GiB per message. */
void gq_wire_limits_default(gq_wire_limits_t *lim);

typedef struct {
    int cmd;
    ProtobufCMessage *hdr; /* the header for cmd (Gq__Wire__Submit * for GQ_CMD_SUBMIT ...) */
    int npayload;
    zmq_msg_t payload[GQ_WIRE_MAX_PAYLOAD];
    gq_tdesc_t desc[GQ_WIRE_MAX_PAYLOAD]; /* checked descriptor of each payload frame */
    uint64_t job_id; /* from the header when it could be read, else 0 (for error replies) */
} gq_wire_msg_t;

/* Receives one whole message from sock (flags: 0 or ZMQ_DONTWAIT). When rid is non-NULL
 * the first frame is taken as the peer's routing id into *rid (initialised here; the
 * caller closes it whatever the result). On GQ_OK *m holds the checked message (close it
 * with gq_wire_msg_close); on failure m holds nothing, m->job_id and m->cmd say what could
 * be read, and err names the fault. GQ_EAGAIN: nothing to read. */
gq_status gq_wire_recv(void *sock, int flags, zmq_msg_t *rid, gq_wire_msg_t *m,
                       const gq_wire_limits_t *lim, char *err, size_t errlen);

/* Checks frames already received (no routing id). Frames are consumed: payload frames
 * move into *m on success, every frame is closed on failure. For tests and fuzzers. */
gq_status gq_wire_decode(zmq_msg_t *frames, int nframes, gq_wire_msg_t *m,
                         const gq_wire_limits_t *lim, char *err, size_t errlen);

void gq_wire_msg_close(gq_wire_msg_t *m);

/* Sends one message; rid/rid_len address a ROUTER peer (NULL for DEALER). Payload frames
 * are consumed (sent or closed) whatever the result. hdr may be NULL for an empty header. */
gq_status gq_wire_send(void *sock, const void *rid, size_t rid_len, int cmd,
                       const ProtobufCMessage *hdr, zmq_msg_t *payload, int npayload);

/* Fills a wire TensorDesc from d; shape_buf (GQ_MAX_DIMS long) backs td->shape. */
void gq_wire_desc_fill(Gq__Wire__TensorDesc *td, int64_t *shape_buf, const gq_tdesc_t *d);

/* Wire params of a checked stage as op-table params (strings borrowed from the stage). */
int gq_wire_stage_params(const Gq__Wire__Stage *st, gq_param_t *out, int max);

/* Name of a command for logs ("SUBMIT"); "?" when unknown. */
const char *gq_wire_cmd_name(int cmd);

#endif
