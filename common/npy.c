#include "npy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define S_MAGIC "\x93NUMPY"
#define S_MAGIC_LEN 6
#define S_ALIGN 64 /* numpy >= 1.14 aligns the data to 64 bytes, for mmap and SIMD */
#define S_QUOTE_MAX 40

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define S_HOST_ORDER '>'
#define S_E ">"
#else
#define S_HOST_ORDER '<'
#define S_E "<"
#endif

typedef struct {
    char kind;
    unsigned size;
    gq_dtype_t dtype;
    const char *descr; /* what the writer puts in files */
} s_code_t;

static const s_code_t s_codes[] = {
    {'f', 2, GQ_F16, S_E "f2"},    {'f', 4, GQ_F32, S_E "f4"}, {'f', 8, GQ_F64, S_E "f8"},
    {'i', 1, GQ_I8, "|i1"},        {'i', 2, GQ_I16, S_E "i2"}, {'i', 4, GQ_I32, S_E "i4"},
    {'i', 8, GQ_I64, S_E "i8"},    {'u', 1, GQ_U8, "|u1"},     {'u', 2, GQ_U16, S_E "u2"},
    {'u', 4, GQ_U32, S_E "u4"},    {'b', 1, GQ_BOOL, "|b1"},   {'c', 8, GQ_C64, S_E "c8"},
    {'c', 16, GQ_C128, S_E "c16"},
};

#define S_NCODES (sizeof s_codes / sizeof s_codes[0])

const char *gq_npy_descr(gq_dtype_t dtype)
{
    for (size_t i = 0; i < S_NCODES; i++)
        if (s_codes[i].dtype == dtype)
            return s_codes[i].descr;
    return NULL;
}

/* Copies untrusted bytes into a message: printable ASCII as is, the rest as \xNN, cut at
 * S_QUOTE_MAX characters with "..." so that a cut is never silent. */
static const char *s_quote(char *dst, size_t dstlen, const char *src, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    size_t i = 0;
    for (; i < n && i < S_QUOTE_MAX && o + 5 < dstlen; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            dst[o++] = (char)c;
        } else {
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        }
    }
    if (i < n && o + 4 <= dstlen) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    if (dstlen)
        dst[o < dstlen ? o : dstlen - 1] = '\0';
    return dst;
}

/* The lexer over the header text [p, end): every read is bounds-checked against end, and
 * nothing in the text is taken as NUL-terminated. */
typedef struct {
    const char *base;
    const char *p;
    const char *end;
    char *err;
    size_t errlen;
} s_lex_t;

static size_t s_off(const s_lex_t *lx)
{
    return (size_t)(lx->p - lx->base);
}

/* What is at the cursor, for messages: "'x'", "byte 0x01" or "the end of the header". */
static const char *s_here(const s_lex_t *lx, char *buf, size_t len)
{
    if (lx->p >= lx->end)
        snprintf(buf, len, "the end of the header");
    else if (*lx->p >= 0x20 && *lx->p < 0x7f)
        snprintf(buf, len, "'%c'", *lx->p);
    else
        snprintf(buf, len, "byte 0x%02x", (unsigned char)*lx->p);
    return buf;
}

static gq_status s_unexpected(s_lex_t *lx, const char *wanted)
{
    char here[32];
    gq_errf(lx->err, lx->errlen, "header: expected %s at offset %zu, found %s", wanted, s_off(lx),
            s_here(lx, here, sizeof here));
    return GQ_EFORMAT;
}

static void s_skip_ws(s_lex_t *lx)
{
    /* Python ignores these between tokens inside brackets; numpy pads with ' ' and '\n'. */
    while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\n' || *lx->p == '\r'))
        lx->p++;
}

static int s_peek(const s_lex_t *lx, char c)
{
    return lx->p < lx->end && *lx->p == c;
}

static int s_is_ident(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* A Python string literal without prefix or escapes (numpy never writes either). */
static gq_status s_string(s_lex_t *lx, const char **s, size_t *n)
{
    if (!s_peek(lx, '\'') && !s_peek(lx, '"'))
        return s_unexpected(lx, "a quoted string");
    char q = *lx->p;
    size_t start = s_off(lx);
    const char *first = ++lx->p;
    for (; lx->p < lx->end; lx->p++) {
        char c = *lx->p;
        if (c == q) {
            *s = first;
            *n = (size_t)(lx->p - first);
            lx->p++;
            return GQ_OK;
        }
        if (c == '\\') {
            gq_errf(lx->err, lx->errlen,
                    "header: escape sequence in the string at offset %zu (not written by numpy)",
                    start);
            return GQ_EFORMAT;
        }
        if (c == '\n' || c == '\r')
            break;
        if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f) {
            gq_errf(lx->err, lx->errlen,
                    "header: byte 0x%02x inside the string at offset %zu is not printable ASCII",
                    (unsigned char)c, start);
            return GQ_EFORMAT;
        }
    }
    gq_errf(lx->err, lx->errlen, "header: unterminated string starting at offset %zu", start);
    return GQ_EFORMAT;
}

static gq_status s_descr(s_lex_t *lx, gq_tdesc_t *desc, int *byteswap)
{
    if (s_peek(lx, '[')) {
        gq_errf(lx->err, lx->errlen,
                "descr is a list (a structured dtype): gpuq tensors have plain dtypes only");
        return GQ_EDTYPE;
    }
    const char *s;
    size_t n;
    if (!s_peek(lx, '\'') && !s_peek(lx, '"'))
        return s_unexpected(lx, "a string for descr");
    gq_status rc = s_string(lx, &s, &n);
    if (rc != GQ_OK)
        return rc;

    /* [<>=|]? kind size: numpy reads '|' and '=' as the host's order, and byte order is
     * meaningless for one-byte types whatever it says. */
    size_t i = 0;
    char order = '=';
    if (n > 0 && (s[0] == '<' || s[0] == '>' || s[0] == '=' || s[0] == '|'))
        order = s[i++];
    unsigned size = 0;
    int ok = n - i >= 2 && n - i <= 3;
    char kind = ok ? s[i++] : 0;
    for (; ok && i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || (size == 0 && s[i] == '0'))
            ok = 0;
        else
            size = size * 10 + (unsigned)(s[i] - '0');
    }
    const s_code_t *code = NULL;
    for (size_t k = 0; ok && k < S_NCODES; k++)
        if (s_codes[k].kind == kind && s_codes[k].size == size)
            code = &s_codes[k];
    if (!code) {
        char q[S_QUOTE_MAX * 4 + 8];
        gq_errf(lx->err, lx->errlen,
                "descr '%s' is not a supported dtype (supported: f2 f4 f8 i1 i2 i4 i8 u1 u2 "
                "u4 b1 c8 c16, with byte order < > = or |)",
                s_quote(q, sizeof q, s, n));
        return GQ_EDTYPE;
    }
    desc->dtype = code->dtype;
    if (order == '=' || order == '|')
        order = S_HOST_ORDER;
    *byteswap = code->size > 1 && order != S_HOST_ORDER;
    return GQ_OK;
}

static gq_status s_fortran_order(s_lex_t *lx, int *fortran)
{
    const char *w = lx->p;
    while (lx->p < lx->end && s_is_ident(*lx->p))
        lx->p++;
    size_t n = (size_t)(lx->p - w);
    if (n == 4 && !memcmp(w, "True", 4)) {
        *fortran = 1;
        return GQ_OK;
    }
    if (n == 5 && !memcmp(w, "False", 5)) {
        *fortran = 0;
        return GQ_OK;
    }
    char q[S_QUOTE_MAX * 4 + 8];
    if (n == 0) {
        lx->p = w;
        return s_unexpected(lx, "True or False for fortran_order");
    }
    gq_errf(lx->err, lx->errlen, "fortran_order '%s' is not True or False",
            s_quote(q, sizeof q, w, n));
    return GQ_EFORMAT;
}

/* One dim: a decimal literal as Python writes it (no sign, no leading zero, no suffix). */
static gq_status s_dim(s_lex_t *lx, int index, int64_t *out)
{
    char q[S_QUOTE_MAX * 4 + 8];
    const char *w = lx->p;
    if (s_peek(lx, '-')) {
        lx->p++;
        while (lx->p < lx->end && s_is_ident(*lx->p))
            lx->p++;
        gq_errf(lx->err, lx->errlen, "shape dim %d is negative (%s)", index,
                s_quote(q, sizeof q, w, (size_t)(lx->p - w)));
        return GQ_EFORMAT;
    }
    while (lx->p < lx->end && s_is_ident(*lx->p))
        lx->p++;
    size_t n = (size_t)(lx->p - w);
    if (n == 0) {
        lx->p = w;
        return s_unexpected(lx, "a dim or ')' in shape");
    }
    int digits = 1;
    for (size_t i = 0; i < n; i++)
        if (w[i] < '0' || w[i] > '9')
            digits = 0;
    if (!digits || (n > 1 && w[0] == '0')) {
        gq_errf(lx->err, lx->errlen, "shape dim %d '%s' is not a decimal integer", index,
                s_quote(q, sizeof q, w, n));
        return GQ_EFORMAT;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v = v * 10 + (uint64_t)(w[i] - '0');
        if (v > (uint64_t)GQ_MAX_DIM_SIZE) {
            gq_errf(lx->err, lx->errlen, "shape dim %d = %s is over the largest dim %lld", index,
                    s_quote(q, sizeof q, w, n), (long long)GQ_MAX_DIM_SIZE);
            return GQ_ETOOBIG;
        }
    }
    *out = (int64_t)v;
    return GQ_OK;
}

/* A tuple of dims: "()", "(3,)", "(2, 3)", "(2, 3,)"; "(3)" is an int in Python, not a tuple. */
static gq_status s_shape(s_lex_t *lx, gq_tdesc_t *desc)
{
    if (!s_peek(lx, '('))
        return s_unexpected(lx, "a tuple '(' for shape");
    size_t start = s_off(lx);
    lx->p++;
    s_skip_ws(lx);
    int ndim = 0;
    int commas = 0;
    while (!s_peek(lx, ')')) {
        if (lx->p >= lx->end) {
            gq_errf(lx->err, lx->errlen, "header: unterminated shape tuple at offset %zu", start);
            return GQ_EFORMAT;
        }
        if (ndim == GQ_MAX_DIMS) {
            gq_errf(lx->err, lx->errlen, "shape has more than %d dims", GQ_MAX_DIMS);
            return GQ_ESHAPE;
        }
        gq_status rc = s_dim(lx, ndim, &desc->shape[ndim]);
        if (rc != GQ_OK)
            return rc;
        ndim++;
        s_skip_ws(lx);
        if (s_peek(lx, ',')) {
            lx->p++;
            commas++;
            s_skip_ws(lx);
        } else if (!s_peek(lx, ')')) {
            if (lx->p >= lx->end) {
                gq_errf(lx->err, lx->errlen, "header: unterminated shape tuple at offset %zu",
                        start);
                return GQ_EFORMAT;
            }
            return s_unexpected(lx, "',' or ')' in shape");
        }
    }
    lx->p++;
    if (ndim == 1 && commas == 0) {
        gq_errf(lx->err, lx->errlen,
                "shape '(%lld)' is an int, not a tuple (a 1-d shape is written '(%lld,)')",
                (long long)desc->shape[0], (long long)desc->shape[0]);
        return GQ_EFORMAT;
    }
    desc->ndim = ndim;
    return GQ_OK;
}

enum { S_KEY_DESCR, S_KEY_FORTRAN, S_KEY_SHAPE, S_NKEYS };
static const char *const s_keys[S_NKEYS] = {"descr", "fortran_order", "shape"};

/* The header: a Python dict literal of exactly the keys numpy writes, in any order, then
 * only whitespace. Python would keep the last of duplicate keys; a file that has them was
 * not written by numpy, so it is refused rather than guessed at. */
static gq_status s_dict(s_lex_t *lx, gq_tdesc_t *desc, int *fortran, int *byteswap)
{
    int seen[S_NKEYS] = {0};
    s_skip_ws(lx);
    if (!s_peek(lx, '{')) {
        char here[32];
        gq_errf(lx->err, lx->errlen, "header is not a dict: it starts with %s",
                s_here(lx, here, sizeof here));
        return GQ_EFORMAT;
    }
    lx->p++;
    s_skip_ws(lx);
    if (s_peek(lx, '}'))
        lx->p++;
    else
        for (;;) {
            const char *k;
            size_t kn;
            gq_status rc = s_string(lx, &k, &kn);
            if (rc != GQ_OK)
                return rc;
            int key = -1;
            for (int i = 0; i < S_NKEYS; i++)
                if (strlen(s_keys[i]) == kn && !memcmp(s_keys[i], k, kn))
                    key = i;
            char q[S_QUOTE_MAX * 4 + 8];
            if (key < 0) {
                gq_errf(lx->err, lx->errlen,
                        "header: unknown key '%s' (npy headers have descr, fortran_order, "
                        "shape)",
                        s_quote(q, sizeof q, k, kn));
                return GQ_EFORMAT;
            }
            if (seen[key]) {
                gq_errf(lx->err, lx->errlen, "header: duplicate key '%s'", s_keys[key]);
                return GQ_EFORMAT;
            }
            seen[key] = 1;
            s_skip_ws(lx);
            if (!s_peek(lx, ':'))
                return s_unexpected(lx, "':' after a key");
            lx->p++;
            s_skip_ws(lx);
            if (key == S_KEY_DESCR)
                rc = s_descr(lx, desc, byteswap);
            else if (key == S_KEY_FORTRAN)
                rc = s_fortran_order(lx, fortran);
            else
                rc = s_shape(lx, desc);
            if (rc != GQ_OK)
                return rc;
            s_skip_ws(lx);
            if (s_peek(lx, ',')) {
                lx->p++;
                s_skip_ws(lx);
                if (!s_peek(lx, '}'))
                    continue;
            } else if (lx->p >= lx->end) {
                gq_errf(lx->err, lx->errlen, "header: unterminated dict (no closing '}')");
                return GQ_EFORMAT;
            } else if (!s_peek(lx, '}')) {
                return s_unexpected(lx, "',' or '}' after a value");
            }
            lx->p++;
            break;
        }
    for (int i = 0; i < S_NKEYS; i++)
        if (!seen[i]) {
            gq_errf(lx->err, lx->errlen, "header: no '%s' key", s_keys[i]);
            return GQ_EFORMAT;
        }
    s_skip_ws(lx);
    if (lx->p < lx->end)
        return s_unexpected(lx, "only whitespace after the header dict");
    return GQ_OK;
}

/* Magic, version and header length. On GQ_OK the header is [*hdr_off, *hdr_off + *hdr_len)
 * and lies inside total (the size of the whole file); len is how much of it buf holds. */
static gq_status s_preamble(const uint8_t *buf, size_t len, uint64_t total, size_t *hdr_off,
                            size_t *hdr_len, char *err, size_t errlen)
{
    size_t m = len < S_MAGIC_LEN ? len : S_MAGIC_LEN;
    if (memcmp(buf, S_MAGIC, m) != 0) {
        gq_errf(err, errlen, "not an npy file (bad magic: no \\x93NUMPY at the start)");
        return GQ_EFORMAT;
    }
    if (len < S_MAGIC_LEN + 2) {
        gq_errf(err, errlen, "truncated: %zu bytes, shorter than the npy preamble", len);
        return GQ_EFORMAT;
    }
    unsigned major = buf[6];
    unsigned minor = buf[7];
    if (major < 1 || major > 3 || minor != 0) {
        gq_errf(err, errlen, "unsupported npy version %u.%u (1.0, 2.0 and 3.0 are read)", major,
                minor);
        return GQ_EFORMAT;
    }
    size_t lensize = major == 1 ? 2 : 4;
    size_t off = S_MAGIC_LEN + 2 + lensize;
    if (len < off) {
        gq_errf(err, errlen, "truncated: %zu bytes, shorter than the npy %u.0 preamble", len,
                major);
        return GQ_EFORMAT;
    }
    uint64_t hlen = (uint64_t)buf[8] | (uint64_t)buf[9] << 8;
    if (lensize == 4)
        hlen |= (uint64_t)buf[10] << 16 | (uint64_t)buf[11] << 24;
    if (hlen == 0) {
        gq_errf(err, errlen, "header is empty (length 0), not a dict");
        return GQ_EFORMAT;
    }
    if (hlen > GQ_NPY_MAX_HEADER) {
        gq_errf(err, errlen, "header length %llu is over the limit of %u bytes",
                (unsigned long long)hlen, GQ_NPY_MAX_HEADER);
        return GQ_ETOOBIG;
    }
    if (hlen > total - off) {
        gq_errf(err, errlen, "header length %llu runs past the end (%llu bytes after the preamble)",
                (unsigned long long)hlen, (unsigned long long)(total - off));
        return GQ_EFORMAT;
    }
    *hdr_off = off;
    *hdr_len = (size_t)hlen;
    return GQ_OK;
}

/* The parser behind gq_npy_parse and gq_npy_read: buf holds at least the whole header, total
 * is the size of the whole file (the data need not be in buf). */
static gq_status s_parse(const uint8_t *buf, size_t len, uint64_t total, gq_tdesc_t *desc,
                         size_t *data_offset, int *fortran, int *byteswap, char *err, size_t errlen)
{
    size_t hoff, hlen;
    gq_status rc = s_preamble(buf, len, total, &hoff, &hlen, err, errlen);
    if (rc != GQ_OK)
        return rc;
    if (hlen > len - hoff) {
        gq_errf(err, errlen, "internal: npy header not in the read buffer");
        return GQ_EINTERNAL;
    }
    gq_tdesc_t d;
    memset(&d, 0, sizeof d);
    int f = 0, bs = 0;
    s_lex_t lx = {(const char *)buf + hoff, (const char *)buf + hoff,
                  (const char *)buf + hoff + hlen, err, errlen};
    rc = s_dict(&lx, &d, &f, &bs);
    if (rc != GQ_OK)
        return rc;

    int64_t numel;
    size_t nbytes;
    char ds[160];
    rc = gq_tdesc_check(&d, &numel, &nbytes);
    if (rc != GQ_OK) {
        gq_errf(err, errlen, "shape of %s: %s", gq_tdesc_str(&d, ds, sizeof ds),
                rc == GQ_ETOOBIG ? "the element count or byte size overflows" : gq_strerror(rc));
        return rc;
    }
    uint64_t have = total - (hoff + hlen);
    if (have != nbytes) {
        if (have < nbytes)
            gq_errf(err, errlen, "truncated data: %llu bytes, expected %zu for %s",
                    (unsigned long long)have, nbytes, gq_tdesc_str(&d, ds, sizeof ds));
        else
            gq_errf(err, errlen, "%llu trailing bytes after the data (%zu bytes for %s)",
                    (unsigned long long)(have - nbytes), nbytes, gq_tdesc_str(&d, ds, sizeof ds));
        return GQ_EFORMAT;
    }
    *desc = d;
    *data_offset = hoff + hlen;
    *fortran = f;
    *byteswap = bs;
    return GQ_OK;
}

gq_status gq_npy_parse(const void *buf, size_t len, gq_tdesc_t *desc, size_t *data_offset,
                       int *fortran, int *byteswap, char *err, size_t errlen)
{
    if ((!buf && len) || !desc || !data_offset || !fortran || !byteswap) {
        gq_errf(err, errlen, "gq_npy_parse: NULL argument");
        return GQ_EINVAL;
    }
    static const uint8_t empty[1];
    return s_parse(buf ? buf : empty, len, len, desc, data_offset, fortran, byteswap, err, errlen);
}

static void s_byteswap(uint8_t *p, size_t nbytes, size_t unit)
{
    for (size_t i = 0; i + unit <= nbytes; i += unit)
        for (size_t a = 0, b = unit - 1; a < b; a++, b--) {
            uint8_t t = p[i + a];
            p[i + a] = p[i + b];
            p[i + b] = t;
        }
}

/* Walks the source in Fortran order (dim 0 fastest) and keeps the matching C-order offset
 * up to date, so each element is read once, sequentially. */
static void s_fortran_to_c(const uint8_t *src, uint8_t *dst, const gq_tdesc_t *d, size_t es)
{
    int n = d->ndim;
    int64_t idx[GQ_MAX_DIMS] = {0};
    size_t stride[GQ_MAX_DIMS];
    stride[n - 1] = 1;
    for (int k = n - 2; k >= 0; k--)
        stride[k] = stride[k + 1] * (size_t)d->shape[k + 1];
    size_t numel = (size_t)gq_tdesc_numel(d);
    size_t off = 0;
    for (size_t i = 0; i < numel; i++) {
        memcpy(dst + off * es, src + i * es, es);
        for (int k = 0; k < n; k++) {
            if (++idx[k] < d->shape[k]) {
                off += stride[k];
                break;
            }
            off -= (size_t)(d->shape[k] - 1) * stride[k];
            idx[k] = 0;
        }
    }
}

static gq_status s_pread_all(int fd, void *buf, size_t n, uint64_t off, const char *path, char *err,
                             size_t errlen)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            gq_errf(err, errlen, "%s: read failed: %s", path, strerror(errno));
            return GQ_EIO;
        }
        if (r == 0) {
            gq_errf(err, errlen, "%s: file shrank while being read", path);
            return GQ_EIO;
        }
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return GQ_OK;
}

gq_status gq_npy_read(const char *path, gq_tdesc_t *desc, void **data, size_t *nbytes, char *err,
                      size_t errlen)
{
    if (!path || !desc || !data) {
        gq_errf(err, errlen, "gq_npy_read: NULL argument");
        return GQ_EINVAL;
    }
    *data = NULL;
    if (nbytes)
        *nbytes = 0;
    uint8_t head[4096];
    uint8_t *hbuf = head;
    uint8_t *raw = NULL;
    uint8_t *out = NULL;
    gq_status rc;
    char msg[512];

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        gq_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return GQ_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        gq_errf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        rc = GQ_EIO;
        goto err;
    }
    if (!S_ISREG(st.st_mode)) {
        gq_errf(err, errlen, "%s: not a regular file", path);
        rc = GQ_EIO;
        goto err;
    }
    uint64_t total = (uint64_t)st.st_size;
    size_t n = total < sizeof head ? (size_t)total : sizeof head;
    rc = s_pread_all(fd, head, n, 0, path, err, errlen);
    if (rc != GQ_OK)
        goto err;
    size_t hoff, hlen;
    rc = s_preamble(head, n, total, &hoff, &hlen, msg, sizeof msg);
    if (rc == GQ_OK && hoff + hlen > n) {
        hbuf = malloc(hoff + hlen);
        if (!hbuf) {
            gq_errf(err, errlen, "%s: out of memory for a %zu-byte header", path, hlen);
            rc = GQ_ENOMEM;
            goto err;
        }
        n = hoff + hlen;
        rc = s_pread_all(fd, hbuf, n, 0, path, err, errlen);
        if (rc != GQ_OK)
            goto err;
    }
    size_t doff;
    int fortran = 0, bswap = 0;
    if (rc == GQ_OK)
        rc = s_parse(hbuf, n, total, desc, &doff, &fortran, &bswap, msg, sizeof msg);
    if (rc != GQ_OK) {
        gq_errf(err, errlen, "%s: %s", path, msg);
        goto err;
    }

    size_t size = gq_tdesc_nbytes(desc);
    size_t es = gq_dtype_size(desc->dtype);
    int transpose = fortran && desc->ndim > 1 && size > 0;
    raw = gq_aligned_alloc(64, size);
    if (transpose && raw)
        out = gq_aligned_alloc(64, size);
    if (!raw || (transpose && !out)) {
        char ds[160];
        gq_errf(err, errlen, "%s: out of memory for %zu bytes of %s", path, size,
                gq_tdesc_str(desc, ds, sizeof ds));
        rc = GQ_ENOMEM;
        goto err;
    }
    rc = s_pread_all(fd, raw, size, doff, path, err, errlen);
    if (rc != GQ_OK)
        goto err;
    if (bswap)
        s_byteswap(raw, size, desc->dtype == GQ_C64 || desc->dtype == GQ_C128 ? es / 2 : es);
    if (desc->dtype == GQ_BOOL)
        for (size_t i = 0; i < size; i++)
            raw[i] = raw[i] != 0;
    if (transpose) {
        s_fortran_to_c(raw, out, desc, es);
        free(raw);
        raw = out;
        out = NULL;
    }
    close(fd);
    if (hbuf != head)
        free(hbuf);
    *data = raw;
    if (nbytes)
        *nbytes = size;
    return GQ_OK;

err:
    close(fd);
    if (hbuf != head)
        free(hbuf);
    free(raw);
    free(out);
    memset(desc, 0, sizeof *desc);
    return rc;
}

static gq_status s_write_all(int fd, const void *buf, size_t n, const char *tmp, char *err,
                             size_t errlen)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            gq_errf(err, errlen, "%s: write failed: %s", tmp, strerror(errno));
            return GQ_EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return GQ_OK;
}

/* Header text, padded with spaces and ended with '\n' so the data starts at a multiple of
 * S_ALIGN. Returns the whole preamble + header length, 0 if it does not fit in buf. */
static size_t s_header(const gq_tdesc_t *desc, uint8_t *buf, size_t len)
{
    char shape[GQ_MAX_DIMS * 24 + 4] = "";
    size_t o = 0;
    for (int i = 0; i < desc->ndim; i++)
        o += (size_t)snprintf(shape + o, sizeof shape - o, i ? ", %lld" : "%lld",
                              (long long)desc->shape[i]);
    if (desc->ndim == 1)
        snprintf(shape + o, sizeof shape - o, ",");
    char text[sizeof shape + 96];
    int tn = snprintf(text, sizeof text, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                      gq_npy_descr(desc->dtype), shape);
    if (tn < 0 || (size_t)tn >= sizeof text)
        return 0;
    unsigned major = 1;
    size_t pre = S_MAGIC_LEN + 2 + 2;
    size_t total = ((pre + (size_t)tn + 1 + S_ALIGN - 1) / S_ALIGN) * S_ALIGN;
    if (total - pre > 0xffff) {
        major = 2;
        pre = S_MAGIC_LEN + 2 + 4;
        total = ((pre + (size_t)tn + 1 + S_ALIGN - 1) / S_ALIGN) * S_ALIGN;
    }
    if (total > len)
        return 0;
    size_t hlen = total - pre;
    memcpy(buf, S_MAGIC, S_MAGIC_LEN);
    buf[6] = (uint8_t)major;
    buf[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
        buf[8 + i] = (uint8_t)(hlen >> (8 * i));
    memcpy(buf + pre, text, (size_t)tn);
    memset(buf + pre + tn, ' ', hlen - (size_t)tn - 1);
    buf[total - 1] = '\n';
    return total;
}

gq_status gq_npy_write(const char *path, const gq_tdesc_t *desc, const void *data, char *err,
                       size_t errlen)
{
    if (!path || !desc) {
        gq_errf(err, errlen, "gq_npy_write: NULL argument");
        return GQ_EINVAL;
    }
    size_t nbytes;
    gq_status rc = gq_tdesc_check(desc, NULL, &nbytes);
    if (rc != GQ_OK) {
        char ds[160];
        gq_errf(err, errlen, "%s: cannot write a tensor with descriptor %s: %s", path,
                gq_tdesc_str(desc, ds, sizeof ds), gq_strerror(rc));
        return rc;
    }
    if (!data && nbytes) {
        gq_errf(err, errlen, "%s: no data for %zu bytes", path, nbytes);
        return GQ_EINVAL;
    }
    uint8_t hdr[512];
    size_t hn = s_header(desc, hdr, sizeof hdr);
    if (!hn) {
        gq_errf(err, errlen, "internal: npy header for %s does not fit", path);
        return GQ_EINTERNAL;
    }

    /* A temporary name beside path, so that rename() stays on one file system. O_EXCL with
     * mode 0666 (rather than mkstemp's 0600) gives the file the permissions the umask says. */
    static unsigned counter;
    size_t tlen = strlen(path) + 48;
    char *tmp = malloc(tlen);
    if (!tmp) {
        gq_errf(err, errlen, "%s: out of memory", path);
        return GQ_ENOMEM;
    }
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        snprintf(tmp, tlen, "%s.tmp.%ld.%u", path, (long)getpid(),
                 __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        gq_errf(err, errlen, "%s: cannot create temporary file %s: %s", path, tmp, strerror(errno));
        free(tmp);
        return GQ_EIO;
    }
    rc = s_write_all(fd, hdr, hn, tmp, err, errlen);
    if (rc == GQ_OK)
        rc = s_write_all(fd, data, nbytes, tmp, err, errlen);
    if (close(fd) != 0 && rc == GQ_OK) {
        gq_errf(err, errlen, "%s: close failed: %s", tmp, strerror(errno));
        rc = GQ_EIO;
    }
    if (rc == GQ_OK && rename(tmp, path) != 0) {
        gq_errf(err, errlen, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
        rc = GQ_EIO;
    }
    if (rc != GQ_OK)
        unlink(tmp);
    free(tmp);
    return rc;
}
