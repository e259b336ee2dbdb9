#include "status.h"

typedef struct {
    int code;
    const char *name;
    const char *text;
} s_entry_t;

static const s_entry_t s_table[] = {
    {GQ_OK, "GQ_OK", "success"},
    {GQ_EINVAL, "GQ_EINVAL", "invalid argument"},
    {GQ_ENOMEM, "GQ_ENOMEM", "out of memory"},
    {GQ_EIO, "GQ_EIO", "I/O error"},
    {GQ_ETIMEDOUT, "GQ_ETIMEDOUT", "timed out"},
    {GQ_EINTERNAL, "GQ_EINTERNAL", "internal error"},
    {GQ_ECANCELLED, "GQ_ECANCELLED", "cancelled"},
    {GQ_EAGAIN, "GQ_EAGAIN", "try again"},
    {GQ_ECLOSED, "GQ_ECLOSED", "closed"},
    {GQ_EPROTO, "GQ_EPROTO", "malformed message"},
    {GQ_EVERSION, "GQ_EVERSION", "unsupported protocol version"},
    {GQ_ETOOBIG, "GQ_ETOOBIG", "size over limit"},
    {GQ_EUNKNOWN_OP, "GQ_EUNKNOWN_OP", "unknown op"},
    {GQ_EPARAM, "GQ_EPARAM", "invalid parameter"},
    {GQ_ESHAPE, "GQ_ESHAPE", "invalid input shape"},
    {GQ_EDTYPE, "GQ_EDTYPE", "unsupported dtype"},
    {GQ_EDEADLINE, "GQ_EDEADLINE", "deadline exceeded"},
    {GQ_EEXHAUSTED, "GQ_EEXHAUSTED", "resource exhausted"},
    {GQ_ENOMODEL, "GQ_ENOMODEL", "model not in the broker's store"},
    {GQ_ENOWORKER, "GQ_ENOWORKER", "no worker for op"},
    {GQ_EUNSUPPORTED, "GQ_EUNSUPPORTED", "op not supported by backend"},
    {GQ_EWORKER_LOST, "GQ_EWORKER_LOST", "worker lost while running the job"},
    {GQ_EBACKEND, "GQ_EBACKEND", "backend error"},
    {GQ_EDEVICE_LOST, "GQ_EDEVICE_LOST", "device lost"},
    {GQ_EDEVICE_OOM, "GQ_EDEVICE_OOM", "out of device memory"},
    {GQ_EFORMAT, "GQ_EFORMAT", "bad file format"},
};

static const s_entry_t *s_find(int status)
{
    for (unsigned i = 0; i < sizeof s_table / sizeof s_table[0]; i++)
        if (s_table[i].code == status)
            return &s_table[i];
    return 0;
}

const char *gq_strerror(int status)
{
    const s_entry_t *e = s_find(status);
    return e ? e->text : "unknown error";
}

const char *gq_status_name(int status)
{
    const s_entry_t *e = s_find(status);
    return e ? e->name : "GQ_E?";
}
