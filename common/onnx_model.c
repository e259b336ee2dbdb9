/* ONNX model loading and checking (see onnx_model.h). */
#include "onnx_model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "map.h"
#include "optable.h"
#include "util.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "ONNX raw_data is little-endian: a big-endian host needs a byte swap here");

struct gq_onnx_model {
    Onnx__ModelProto *proto;
    int opset;
    int nodes;
    gq_onnx_tensor_t *tensors;
    int ntensors;
    char digest[33];
};

void gq_onnx_limits_default(gq_onnx_limits_t *lim)
{
    lim->max_file_bytes = 2ull << 30;
    lim->max_tensor_bytes = 1ull << 30;
    lim->max_total_bytes = 4ull << 30;
    lim->max_nodes = 1000000;
    lim->max_depth = 64;
}

/* ---- the wire pre-check: bounded nesting before protobuf-c's recursive decoder ---- */

typedef enum {
    S_K_MODEL,
    S_K_GRAPH,
    S_K_NODE,
    S_K_ATTR,
    S_K_VALUEINFO,
    S_K_TYPE,
    S_K_TYPE_SEQ,
    S_K_TYPE_MAP,
    S_K_TYPE_OPT,
} s_kind_t;

/* The message kind a length-delimited field opens, for the fields through which messages
 * can nest without bound (graphs in attributes, types in sequence types); -1 for fields
 * that are bytes, strings or messages that cannot recurse (skipped whole). */
static int s_child(s_kind_t k, uint64_t field)
{
    switch (k) {
    case S_K_MODEL:
        return field == 7 ? S_K_GRAPH : -1;
    case S_K_GRAPH:
        return field == 1 ? S_K_NODE : (field >= 11 && field <= 13) ? S_K_VALUEINFO : -1;
    case S_K_NODE:
        return field == 5 ? S_K_ATTR : -1;
    case S_K_ATTR:
        return field == 6 || field == 11 ? S_K_GRAPH : -1;
    case S_K_VALUEINFO:
        return field == 2 ? S_K_TYPE : -1;
    case S_K_TYPE:
        return field == 4   ? S_K_TYPE_SEQ
               : field == 5 ? S_K_TYPE_MAP
               : field == 9 ? S_K_TYPE_OPT
                            : -1;
    case S_K_TYPE_SEQ:
    case S_K_TYPE_OPT:
        return field == 1 ? S_K_TYPE : -1;
    case S_K_TYPE_MAP:
        return field == 2 ? S_K_TYPE : -1;
    }
    return -1;
}

static int s_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64 && *pos < len; shift += 7) {
        uint8_t b = p[(*pos)++];
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* Walks the protobuf structure of a message of kind root without recursion: every length
 * inside its parent, no groups, nesting at most max_depth. */
static gq_status s_wire_check(const uint8_t *p, size_t len, s_kind_t root, int max_depth, char *err,
                              size_t errlen)
{
    struct {
        size_t end;
        s_kind_t kind;
    } stack[256];
    if (max_depth > 256)
        max_depth = 256;
    int depth = 0;
    stack[0].end = len;
    stack[0].kind = root;
    size_t pos = 0;
    while (true) {
        while (depth > 0 && pos == stack[depth].end)
            depth--;
        if (depth == 0 && pos == len)
            return GQ_OK;
        uint64_t tag, n;
        size_t at = pos;
        if (s_varint(p, stack[depth].end, &pos, &tag) || (tag >> 3) == 0)
            goto bad;
        switch (tag & 7) {
        case 0:
            if (s_varint(p, stack[depth].end, &pos, &n))
                goto bad;
            break;
        case 1:
        case 5: {
            size_t w = (tag & 7) == 1 ? 8 : 4;
            if (stack[depth].end - pos < w)
                goto bad;
            pos += w;
            break;
        }
        case 2: {
            if (s_varint(p, stack[depth].end, &pos, &n) || n > stack[depth].end - pos)
                goto bad;
            int child = s_child(stack[depth].kind, tag >> 3);
            if (child < 0) {
                pos += (size_t)n;
                break;
            }
            if (depth + 1 >= max_depth) {
                gq_errf(err, errlen, "messages nest deeper than %d levels (at byte %zu)", max_depth,
                        at);
                return GQ_ETOOBIG;
            }
            depth++;
            stack[depth].end = pos + (size_t)n;
            stack[depth].kind = (s_kind_t)child;
            break;
        }
        default:
            goto bad;
        }
        continue;
    bad:
        gq_errf(err, errlen, "not a valid protobuf message: malformed field at byte %zu of %zu", at,
                len);
        return GQ_EFORMAT;
    }
}

/* ---- tensors ---- */

static const struct {
    int32_t onnx;
    gq_dtype_t dt;
    const char *name;
} s_types[] = {
    {1, GQ_F32, "FLOAT"},
    {2, GQ_U8, "UINT8"},
    {3, GQ_I8, "INT8"},
    {4, GQ_U16, "UINT16"},
    {5, GQ_I16, "INT16"},
    {6, GQ_I32, "INT32"},
    {7, GQ_I64, "INT64"},
    {8, GQ_DTYPE_INVALID, "STRING"},
    {9, GQ_BOOL, "BOOL"},
    {10, GQ_F16, "FLOAT16"},
    {11, GQ_F64, "DOUBLE"},
    {12, GQ_U32, "UINT32"},
    {13, GQ_DTYPE_INVALID, "UINT64"},
    {14, GQ_C64, "COMPLEX64"},
    {15, GQ_C128, "COMPLEX128"},
    {16, GQ_DTYPE_INVALID, "BFLOAT16"},
    {17, GQ_DTYPE_INVALID, "FLOAT8E4M3FN"},
    {18, GQ_DTYPE_INVALID, "FLOAT8E4M3FNUZ"},
    {19, GQ_DTYPE_INVALID, "FLOAT8E5M2"},
    {20, GQ_DTYPE_INVALID, "FLOAT8E5M2FNUZ"},
    {21, GQ_DTYPE_INVALID, "UINT4"},
    {22, GQ_DTYPE_INVALID, "INT4"},
};

gq_dtype_t gq_onnx_dtype(int32_t onnx_type)
{
    for (size_t i = 0; i < sizeof s_types / sizeof s_types[0]; i++)
        if (s_types[i].onnx == onnx_type)
            return s_types[i].dt;
    return GQ_DTYPE_INVALID;
}

const char *gq_onnx_type_name(int32_t onnx_type)
{
    for (size_t i = 0; i < sizeof s_types / sizeof s_types[0]; i++)
        if (s_types[i].onnx == onnx_type)
            return s_types[i].name;
    return "an unknown type";
}

/* External data of t: "location" relative to dir and inside it, "offset", "length". */
static gq_status s_external(const Onnx__TensorProto *t, const char *dir, const char *tname,
                            void *dst, size_t nbytes, char *err, size_t errlen)
{
    const char *loc = NULL;
    long long off = 0, length = -1;
    for (size_t i = 0; i < t->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = t->external_data[i];
        const char *k = e->key ? e->key : "", *v = e->value ? e->value : "";
        char *end = NULL;
        if (!strcmp(k, "location"))
            loc = v;
        else if (!strcmp(k, "offset") || !strcmp(k, "length")) {
            errno = 0;
            long long x = strtoll(v, &end, 10);
            if (errno || !*v || *end || x < 0) {
                gq_errf(err, errlen, "tensor '%s': external data %s '%s' is not a size", tname, k,
                        v);
                return GQ_EFORMAT;
            }
            *(!strcmp(k, "offset") ? &off : &length) = x;
        }
    }
    if (!dir) {
        gq_errf(err, errlen, "tensor '%s': external data is not allowed here", tname);
        return GQ_EFORMAT;
    }
    if (!loc || !*loc || loc[0] == '/' || strstr(loc, "..")) {
        gq_errf(err, errlen,
                "tensor '%s': external data location '%s' must be a file beside the model "
                "(relative, no '..')",
                tname, loc ? loc : "");
        return GQ_EFORMAT;
    }
    if (length >= 0 && (unsigned long long)length != nbytes) {
        gq_errf(err, errlen,
                "tensor '%s': external data length %lld, but its shape needs %zu bytes", tname,
                length, nbytes);
        return GQ_EFORMAT;
    }
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, loc) >= sizeof path) {
        gq_errf(err, errlen, "tensor '%s': external data path is too long", tname);
        return GQ_EFORMAT;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        gq_errf(err, errlen, "tensor '%s': external data %s: %s", tname, loc, strerror(errno));
        return GQ_EIO;
    }
    struct stat st;
    gq_status rc = GQ_OK;
    if (fstat(fileno(f), &st) != 0 || st.st_size < off || (uint64_t)(st.st_size - off) < nbytes) {
        gq_errf(err, errlen,
                "tensor '%s': external data %s holds %lld bytes, %zu needed at offset %lld", tname,
                loc, (long long)st.st_size, nbytes, off);
        rc = GQ_EFORMAT;
    } else if (fseeko(f, off, SEEK_SET) != 0 || fread(dst, 1, nbytes, f) != nbytes) {
        gq_errf(err, errlen, "tensor '%s': reading external data %s failed", tname, loc);
        rc = GQ_EIO;
    }
    fclose(f);
    return rc;
}

/* Copies n typed-field values into dst as dtype dt; the field must be the one ONNX uses for
 * that type. */
static gq_status s_typed(const Onnx__TensorProto *t, gq_dtype_t dt, int64_t n, void *dst,
                         const char *tname, char *err, size_t errlen)
{
    size_t have = 0;
    const char *field = "";
    switch (dt) {
    case GQ_F32:
    case GQ_C64:
        have = t->n_float_data, field = "float_data";
        break;
    case GQ_F64:
    case GQ_C128:
        have = t->n_double_data, field = "double_data";
        break;
    case GQ_I64:
        have = t->n_int64_data, field = "int64_data";
        break;
    case GQ_U32:
        have = t->n_uint64_data, field = "uint64_data";
        break;
    default:
        have = t->n_int32_data, field = "int32_data";
    }
    int64_t want = (dt == GQ_C64 || dt == GQ_C128) ? 2 * n : n;
    if ((int64_t)have != want) {
        gq_errf(err, errlen, "tensor '%s': %s holds %zu values, its shape needs %lld", tname, field,
                have, (long long)want);
        return GQ_EFORMAT;
    }
    for (int64_t i = 0; i < want; i++) {
        switch (dt) {
        case GQ_F32:
        case GQ_C64:
            ((float *)dst)[i] = t->float_data[i];
            break;
        case GQ_F64:
        case GQ_C128:
            ((double *)dst)[i] = t->double_data[i];
            break;
        case GQ_I64:
            ((int64_t *)dst)[i] = t->int64_data[i];
            break;
        case GQ_U32:
            ((uint32_t *)dst)[i] = (uint32_t)t->uint64_data[i];
            break;
        case GQ_I32:
            ((int32_t *)dst)[i] = t->int32_data[i];
            break;
        case GQ_I16:
            ((int16_t *)dst)[i] = (int16_t)t->int32_data[i];
            break;
        case GQ_U16:
        case GQ_F16: /* float16 travels as its bit pattern in int32_data */
            ((uint16_t *)dst)[i] = (uint16_t)t->int32_data[i];
            break;
        case GQ_I8:
            ((int8_t *)dst)[i] = (int8_t)t->int32_data[i];
            break;
        case GQ_U8:
            ((uint8_t *)dst)[i] = (uint8_t)t->int32_data[i];
            break;
        case GQ_BOOL:
            ((uint8_t *)dst)[i] = t->int32_data[i] != 0;
            break;
        default:
            return GQ_EINTERNAL;
        }
    }
    return GQ_OK;
}

gq_status gq_onnx_tensor_decode(const Onnx__TensorProto *t, const char *dir,
                                const gq_onnx_limits_t *lim, gq_tdesc_t *desc, void **data,
                                char *err, size_t errlen)
{
    gq_onnx_limits_t dl;
    if (!lim) {
        gq_onnx_limits_default(&dl);
        lim = &dl;
    }
    const char *tname = t->name && *t->name ? t->name : "(unnamed)";
    int32_t ot = t->has_data_type ? t->data_type : 0;
    gq_dtype_t dt = gq_onnx_dtype(ot);
    if (dt == GQ_DTYPE_INVALID) {
        gq_errf(err, errlen, "tensor '%s': element type %s is not supported by gq", tname,
                gq_onnx_type_name(ot));
        return GQ_EDTYPE;
    }
    if (t->n_dims > GQ_MAX_DIMS) {
        gq_errf(err, errlen, "tensor '%s': %zu dims, gq supports at most %d", tname, t->n_dims,
                GQ_MAX_DIMS);
        return GQ_ETOOBIG;
    }
    if (t->segment) {
        gq_errf(err, errlen, "tensor '%s': segmented tensors are not supported", tname);
        return GQ_EFORMAT;
    }
    memset(desc, 0, sizeof *desc);
    desc->dtype = dt;
    desc->ndim = (int)t->n_dims;
    for (size_t i = 0; i < t->n_dims; i++)
        desc->shape[i] = t->dims[i];
    int64_t numel = 0;
    size_t nbytes = 0;
    gq_status rc = gq_tdesc_check(desc, &numel, &nbytes);
    if (rc != GQ_OK) {
        gq_errf(err, errlen, "tensor '%s': dims are negative or their product overflows", tname);
        return GQ_EFORMAT;
    }
    if (nbytes > lim->max_tensor_bytes) {
        gq_errf(err, errlen, "tensor '%s': %zu bytes, over the %llu-byte tensor limit", tname,
                nbytes, (unsigned long long)lim->max_tensor_bytes);
        return GQ_ETOOBIG;
    }
    void *buf = gq_aligned_alloc(64, nbytes);
    if (!buf) {
        gq_errf(err, errlen, "tensor '%s': out of memory for %zu bytes", tname, nbytes);
        return GQ_ENOMEM;
    }
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        rc = s_external(t, dir, tname, buf, nbytes, err, errlen);
    } else if (t->has_raw_data) {
        if (t->raw_data.len != nbytes) {
            gq_errf(err, errlen, "tensor '%s': raw_data holds %zu bytes, its shape needs %zu",
                    tname, t->raw_data.len, nbytes);
            rc = GQ_EFORMAT;
        } else {
            if (nbytes)
                memcpy(buf, t->raw_data.data, nbytes);
            if (dt == GQ_BOOL)
                for (size_t i = 0; i < nbytes; i++)
                    ((uint8_t *)buf)[i] = ((uint8_t *)buf)[i] != 0;
        }
    } else {
        rc = s_typed(t, dt, numel, buf, tname, err, errlen);
    }
    if (rc != GQ_OK) {
        free(buf);
        return rc;
    }
    *data = buf;
    return GQ_OK;
}

/* Reads a whole file of at most max bytes into a malloc'ed buffer. */
static gq_status s_slurp(const char *path, uint64_t max, uint8_t **out, size_t *len, char *err,
                         size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        gq_errf(err, errlen, "%s: %s", path, strerror(errno));
        return GQ_EIO;
    }
    struct stat st;
    gq_status rc = GQ_OK;
    uint8_t *buf = NULL;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        gq_errf(err, errlen, "%s: not a regular file", path);
        rc = GQ_EIO;
    } else if ((uint64_t)st.st_size > max) {
        gq_errf(err, errlen, "%s: %lld bytes, over the %llu-byte limit", path,
                (long long)st.st_size, (unsigned long long)max);
        rc = GQ_ETOOBIG;
    } else if (!(buf = malloc((size_t)st.st_size + 1))) {
        gq_errf(err, errlen, "%s: out of memory for %lld bytes", path, (long long)st.st_size);
        rc = GQ_ENOMEM;
    } else if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        gq_errf(err, errlen, "%s: read failed", path);
        rc = GQ_EIO;
    }
    fclose(f);
    if (rc != GQ_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = (size_t)st.st_size;
    return GQ_OK;
}

gq_status gq_onnx_tensor_load(const char *path, const gq_onnx_limits_t *lim, gq_tdesc_t *desc,
                              void **data, char *err, size_t errlen)
{
    gq_onnx_limits_t dl;
    if (!lim) {
        gq_onnx_limits_default(&dl);
        lim = &dl;
    }
    uint8_t *buf;
    size_t len;
    gq_status rc = s_slurp(path, lim->max_tensor_bytes + (1u << 20), &buf, &len, err, errlen);
    if (rc != GQ_OK)
        return rc;
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, len, buf);
    free(buf);
    if (!t) {
        gq_errf(err, errlen, "%s: not a serialized ONNX TensorProto", path);
        return GQ_EFORMAT;
    }
    char terr[GQ_ERRLEN];
    rc = gq_onnx_tensor_decode(t, NULL, lim, desc, data, terr, sizeof terr);
    if (rc != GQ_OK)
        gq_errf(err, errlen, "%s: %s", path, terr);
    onnx__tensor_proto__free_unpacked(t, NULL);
    return rc;
}

/* ---- graph checks ---- */

/* The names defined in one graph, with the enclosing graph's scope as parent. */
typedef struct s_scope {
    gq_map_t *names; /* hash -> first name with that hash (collisions: see s_defined) */
    const struct s_scope *parent;
    const char **list; /* every name, for collision resolution */
    size_t n, cap;
} s_scope_t;

static int s_scope_add(s_scope_t *s, const char *name)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        const char **nl = realloc(s->list, nc * sizeof *nl);
        if (!nl)
            return -1;
        s->list = nl;
        s->cap = nc;
    }
    s->list[s->n++] = name;
    uint64_t h = gq_hash_bytes(name, strlen(name), 0) | 1;
    if (gq_map_get(s->names, h))
        return 0; /* a collision: the first name stays, s_scope_has searches the list */
    return gq_map_put(s->names, h, (void *)name);
}

/* Whether name is defined in s alone (not its parents). */
static bool s_scope_has(const s_scope_t *s, const char *name)
{
    uint64_t h = gq_hash_bytes(name, strlen(name), 0) | 1;
    const char *hit = gq_map_get(s->names, h);
    if (!hit)
        return false;
    if (!strcmp(hit, name))
        return true;
    for (size_t i = 0; i < s->n; i++) /* a 64-bit hash collision: exact search */
        if (!strcmp(s->list[i], name))
            return true;
    return false;
}

static bool s_defined(const s_scope_t *s, const char *name)
{
    for (; s; s = s->parent)
        if (s_scope_has(s, name))
            return true;
    return false;
}

typedef struct {
    gq_onnx_model_t *m;
    const gq_onnx_limits_t *lim;
    char *err;
    size_t errlen;
} s_check_t;

static gq_status s_check_graph(s_check_t *c, const Onnx__GraphProto *g, const s_scope_t *parent,
                               const char *where);

/* Adds a definition, refusing a second definition of the same name in one graph. */
static gq_status s_define(s_check_t *c, s_scope_t *s, const char *name, const char *what,
                          const char *where)
{
    if (!name || !*name)
        return GQ_OK;
    if (s_scope_has(s, name)) {
        gq_errf(c->err, c->errlen, "%s: '%s' is defined twice (again as %s)", where, name, what);
        return GQ_EFORMAT;
    }
    if (s_scope_add(s, name) != 0) {
        gq_errf(c->err, c->errlen, "%s: out of memory", where);
        return GQ_ENOMEM;
    }
    return GQ_OK;
}

static gq_status s_check_graph(s_check_t *c, const Onnx__GraphProto *g, const s_scope_t *parent,
                               const char *where)
{
    s_scope_t s = {.parent = parent};
    gq_status rc = GQ_OK;
    if (!(s.names = gq_map_new())) {
        gq_errf(c->err, c->errlen, "%s: out of memory", where);
        return GQ_ENOMEM;
    }
    for (size_t i = 0; i < g->n_input && !rc; i++) {
        const char *n = g->input[i]->name;
        if (!n || !*n) {
            /* nothing could feed it: refused here rather than at planning */
            gq_errf(c->err, c->errlen, "%s: input %zu has no name", where, i);
            rc = GQ_EFORMAT;
        } else {
            rc = s_define(c, &s, n, "a graph input", where);
        }
    }
    for (size_t i = 0; i < g->n_initializer && !rc; i++) {
        const char *n = g->initializer[i]->name;
        if (!n || !*n) {
            gq_errf(c->err, c->errlen, "%s: initializer %zu has no name", where, i);
            rc = GQ_EFORMAT;
        } else if (!s_scope_has(&s, n)) /* an initializer may also be an input (IR < 4) */
            rc = s_define(c, &s, n, "an initializer", where);
    }
    for (size_t i = 0; i < g->n_node && !rc; i++) {
        const Onnx__NodeProto *nd = g->node[i];
        if (++c->m->nodes > c->lim->max_nodes) {
            gq_errf(c->err, c->errlen, "%s: more than %d nodes", where, c->lim->max_nodes);
            rc = GQ_ETOOBIG;
            break;
        }
        const char *nn = nd->name && *nd->name ? nd->name : "(unnamed)";
        if (!nd->op_type || !*nd->op_type) {
            gq_errf(c->err, c->errlen, "%s: node %zu '%s' has no op_type", where, i, nn);
            rc = GQ_EFORMAT;
            break;
        }
        if (!nd->n_output) { /* every ONNX op has one; a kernel would fill an output anyway */
            gq_errf(c->err, c->errlen, "%s: node %zu '%s' (%s) has no outputs", where, i, nn,
                    nd->op_type);
            rc = GQ_EFORMAT;
            break;
        }
        if (nd->domain && *nd->domain && strcmp(nd->domain, "ai.onnx")) {
            gq_errf(c->err, c->errlen,
                    "%s: node '%s' (%s) is in domain '%s'; gq runs the default ONNX domain only",
                    where, nn, nd->op_type, nd->domain);
            rc = GQ_EUNSUPPORTED;
            break;
        }
        for (size_t o = 0; o < nd->n_output && !rc; o++) {
            char what[GQ_MAX_NAME + 96];
            snprintf(what, sizeof what, "output %zu of node '%.64s' (%.32s)", o, nn, nd->op_type);
            rc = s_define(c, &s, nd->output[o], what, where);
        }
    }
    /* Uses after every definition: nodes may come in any order (sorted later). */
    for (size_t i = 0; i < g->n_node && !rc; i++) {
        const Onnx__NodeProto *nd = g->node[i];
        const char *nn = nd->name && *nd->name ? nd->name : "(unnamed)";
        for (size_t k = 0; k < nd->n_input && !rc; k++)
            if (nd->input[k] && *nd->input[k] && !s_defined(&s, nd->input[k])) {
                gq_errf(c->err, c->errlen,
                        "%s: node '%s' (%s) input %zu '%s' is not a graph input, an initializer "
                        "or any node's output",
                        where, nn, nd->op_type, k, nd->input[k]);
                rc = GQ_EFORMAT;
            }
        for (size_t a = 0; a < nd->n_attribute && !rc; a++) {
            const Onnx__AttributeProto *at = nd->attribute[a];
            char sub[GQ_MAX_NAME * 3];
            snprintf(sub, sizeof sub, "%.60s/%.60s.%.40s", where, nn, at->name ? at->name : "?");
            if (at->g)
                rc = s_check_graph(c, at->g, &s, sub);
            for (size_t k = 0; k < at->n_graphs && !rc; k++)
                rc = s_check_graph(c, at->graphs[k], &s, sub);
        }
    }
    for (size_t i = 0; i < g->n_output && !rc; i++) {
        const char *n = g->output[i]->name;
        if (!n || !*n || !s_defined(&s, n)) {
            gq_errf(c->err, c->errlen, "%s: graph output %zu '%s' is never computed", where, i,
                    n ? n : "");
            rc = GQ_EFORMAT;
        }
    }
    gq_map_destroy(&s.names);
    free(s.list);
    return rc;
}

/* ---- the model ---- */

gq_onnx_model_t *gq_onnx_model_parse(const void *buf, size_t len, const char *dir,
                                     const gq_onnx_limits_t *lim, gq_status *code, char *err,
                                     size_t errlen)
{
    gq_onnx_limits_t dl;
    if (!lim) {
        gq_onnx_limits_default(&dl);
        lim = &dl;
    }
    gq_status rc;
    gq_onnx_model_t *m = calloc(1, sizeof *m);
    if (!m) {
        gq_errf(err, errlen, "out of memory");
        rc = GQ_ENOMEM;
        goto err;
    }
    if (len > lim->max_file_bytes) {
        gq_errf(err, errlen, "%zu bytes, over the %llu-byte model limit", len,
                (unsigned long long)lim->max_file_bytes);
        rc = GQ_ETOOBIG;
        goto err;
    }
    if ((rc = s_wire_check(buf, len, S_K_MODEL, lim->max_depth, err, errlen)))
        goto err;
    XXH128_hash_t h = XXH3_128bits(buf, len);
    snprintf(m->digest, sizeof m->digest, "%016llx%016llx", (unsigned long long)h.high64,
             (unsigned long long)h.low64);
    if (!(m->proto = onnx__model_proto__unpack(NULL, len, buf))) {
        gq_errf(err, errlen, "not an ONNX model: the protobuf does not decode as a ModelProto");
        rc = GQ_EFORMAT;
        goto err;
    }
    const Onnx__ModelProto *mp = m->proto;
    if (!mp->has_ir_version || mp->ir_version < 3) {
        gq_errf(err, errlen, "ir_version %lld: gq reads ONNX IR version 3 and later",
                (long long)mp->ir_version);
        rc = GQ_EFORMAT;
        goto err;
    }
    m->opset = -1;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if (!o->domain || !*o->domain || !strcmp(o->domain, "ai.onnx"))
            m->opset = o->has_version ? (int)(o->version > 1000 ? 1000 : o->version) : -1;
    }
    if (m->opset < 0) {
        gq_errf(err, errlen, "imports no opset of the default ONNX domain (only %s%s)",
                mp->n_opset_import && mp->opset_import[0]->domain ? mp->opset_import[0]->domain
                                                                  : "nothing",
                mp->n_opset_import > 1 ? " ..." : "");
        rc = GQ_EUNSUPPORTED;
        goto err;
    }
    if (m->opset < GQ_ONNX_OPSET_MIN || m->opset > GQ_ONNX_OPSET_MAX) {
        gq_errf(err, errlen, "imports opset %d of the default domain; gq runs opsets %d..%d",
                m->opset, GQ_ONNX_OPSET_MIN, GQ_ONNX_OPSET_MAX);
        rc = GQ_EUNSUPPORTED;
        goto err;
    }
    if (!mp->graph) {
        gq_errf(err, errlen, "the model has no graph");
        rc = GQ_EFORMAT;
        goto err;
    }
    s_check_t c = {.m = m, .lim = lim, .err = err, .errlen = errlen};
    if ((rc = s_check_graph(&c, mp->graph, NULL, "graph")))
        goto err;
    const Onnx__GraphProto *g = mp->graph;
    if (g->n_initializer && !(m->tensors = calloc(g->n_initializer, sizeof *m->tensors))) {
        gq_errf(err, errlen, "out of memory for %zu initializers", g->n_initializer);
        rc = GQ_ENOMEM;
        goto err;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < g->n_initializer; i++) {
        gq_onnx_tensor_t *t = &m->tensors[m->ntensors];
        void *data = NULL;
        char terr[GQ_ERRLEN];
        if ((rc = gq_onnx_tensor_decode(g->initializer[i], dir, lim, &t->desc, &data, terr,
                                        sizeof terr))) {
            gq_errf(err, errlen, "initializer %s", terr + (strncmp(terr, "tensor ", 7) ? 0 : 7));
            goto err;
        }
        t->name = g->initializer[i]->name;
        t->data = data;
        t->nbytes = gq_tdesc_nbytes(&t->desc);
        m->ntensors++;
        total += t->nbytes;
        if (total > lim->max_total_bytes) {
            gq_errf(err, errlen, "initializers hold over %llu bytes",
                    (unsigned long long)lim->max_total_bytes);
            rc = GQ_ETOOBIG;
            goto err;
        }
    }
    if (code)
        *code = GQ_OK;
    return m;
err:
    if (code)
        *code = rc;
    gq_onnx_model_destroy(&m);
    return NULL;
}

gq_onnx_model_t *gq_onnx_model_load(const char *path, const gq_onnx_limits_t *lim, gq_status *code,
                                    char *err, size_t errlen)
{
    gq_onnx_limits_t dl;
    if (!lim) {
        gq_onnx_limits_default(&dl);
        lim = &dl;
    }
    uint8_t *buf;
    size_t len;
    gq_status rc = s_slurp(path, lim->max_file_bytes, &buf, &len, err, errlen);
    if (rc != GQ_OK) {
        if (code)
            *code = rc;
        return NULL;
    }
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else
        snprintf(dir, sizeof dir, ".");
    char perr[GQ_ERRLEN];
    gq_onnx_model_t *m = gq_onnx_model_parse(buf, len, dir, lim, code, perr, sizeof perr);
    free(buf);
    if (!m)
        gq_errf(err, errlen, "%s: %s", path, perr);
    return m;
}

void gq_onnx_model_destroy(gq_onnx_model_t **self_p)
{
    gq_onnx_model_t *m = *self_p;
    if (!m)
        return;
    for (int i = 0; i < m->ntensors; i++)
        free((void *)m->tensors[i].data);
    free(m->tensors);
    if (m->proto)
        onnx__model_proto__free_unpacked(m->proto, NULL);
    free(m);
    *self_p = NULL;
}

const Onnx__ModelProto *gq_onnx_model_proto(const gq_onnx_model_t *self)
{
    return self->proto;
}

int gq_onnx_model_opset(const gq_onnx_model_t *self)
{
    return self->opset;
}

int gq_onnx_model_tensor_count(const gq_onnx_model_t *self)
{
    return self->ntensors;
}

const gq_onnx_tensor_t *gq_onnx_model_tensor(const gq_onnx_model_t *self, int i)
{
    return i >= 0 && i < self->ntensors ? &self->tensors[i] : NULL;
}

const gq_onnx_tensor_t *gq_onnx_model_tensor_find(const gq_onnx_model_t *self, const char *name)
{
    for (int i = 0; i < self->ntensors; i++)
        if (!strcmp(self->tensors[i].name, name))
            return &self->tensors[i];
    return NULL;
}

const char *gq_onnx_model_digest(const gq_onnx_model_t *self)
{
    return self->digest;
}

int gq_onnx_model_node_count(const gq_onnx_model_t *self)
{
    return self->nodes;
}
