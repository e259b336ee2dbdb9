/* gpuq status codes: one enum, negative values, a range per subsystem. */
#ifndef GQ_STATUS_H
#define GQ_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    GQ_OK = 0,

    /* generic: -1 .. -99 */
    GQ_EINVAL = -1,     /* invalid argument from the caller */
    GQ_ENOMEM = -2,     /* allocation failed */
    GQ_EIO = -3,        /* file or socket I/O failed */
    GQ_ETIMEDOUT = -4,  /* caller's timeout passed before an answer */
    GQ_EINTERNAL = -5,  /* a bug: an invariant did not hold */
    GQ_ECANCELLED = -6, /* the job was cancelled */
    GQ_EAGAIN = -7,     /* nothing ready yet; try again */
    GQ_ECLOSED = -8,    /* the object is shut down */

    /* protocol: -100 .. -199 */
    GQ_EPROTO = -100,   /* malformed message */
    GQ_EVERSION = -101, /* protocol version not spoken here */
    GQ_ETOOBIG = -102,  /* a size over the configured limit */

    /* jobs and ops: -200 .. -299 */
    GQ_EUNKNOWN_OP = -200,  /* op name not in the op table */
    GQ_EPARAM = -201,       /* a param missing, of the wrong type or out of range */
    GQ_ESHAPE = -202,       /* input count, dtype or shape the op cannot take */
    GQ_EDTYPE = -203,       /* dtype not supported by the op */
    GQ_EDEADLINE = -204,    /* the job's deadline passed before it could run */
    GQ_EEXHAUSTED = -205,   /* queue full: retry after the hinted delay */
    GQ_ENOWORKER = -206,    /* no worker can run this op */
    GQ_EUNSUPPORTED = -207, /* a backend declined the op (strict mode) */
    GQ_EWORKER_LOST = -208, /* the job's worker died too many times running it */
    GQ_ENOMODEL = -209,     /* onnx.run names a model the broker's store does not hold */

    /* backends and devices: -300 .. -399 */
    GQ_EBACKEND = -300,     /* a backend call failed */
    GQ_EDEVICE_LOST = -301, /* the device went away */
    GQ_EDEVICE_OOM = -302,  /* out of device memory */

    /* files and formats: -400 .. -499 */
    GQ_EFORMAT = -400, /* a file is not in the expected format */
} gq_status;

/* A short fixed description of a status code; never NULL. */
const char *gq_strerror(int status);

/* The code's symbolic name ("GQ_EPARAM"); "GQ_E?" for unknown codes. */
const char *gq_status_name(int status);

#ifdef __cplusplus
}
#endif
#endif
