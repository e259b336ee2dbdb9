/* common/npy: round trips of every dtype and rank, files laid out by hand the way numpy
 * writes big-endian and Fortran-order data, and one case for each way a file can be bad. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "npy.h"

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

static char s_dir[256];

static void s_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", s_dir, name);
}

static void *s_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "test_npy: out of memory for %zu bytes\n", n);
        exit(1);
    }
    return p;
}

/* An npy buffer with the header text exactly as given (no padding added), so that a case
 * controls every byte; the result is sized exactly, so ASan catches any over-read. */
static uint8_t *s_build(int major, const char *header, const void *data, size_t datalen,
                        size_t *len)
{
    size_t hl = strlen(header);
    size_t pre = major == 1 ? 10 : 12;
    *len = pre + hl + datalen;
    uint8_t *b = s_xmalloc(*len);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
        b[8 + i] = (uint8_t)(hl >> (8 * i));
    memcpy(b + pre, header, hl);
    if (datalen)
        memcpy(b + pre + hl, data, datalen);
    return b;
}

static int s_write_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(buf, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

static gq_status s_parse(const void *buf, size_t len, gq_tdesc_t *d, char *err, size_t errlen)
{
    size_t off;
    int fortran, bswap;
    /* A copy of exactly len bytes: reads past the end land in ASan's redzone. */
    void *copy = s_xmalloc(len);
    if (len)
        memcpy(copy, buf, len);
    gq_status rc = gq_npy_parse(copy, len, d, &off, &fortran, &bswap, err, errlen);
    free(copy);
    return rc;
}

static const gq_dtype_t s_all[] = {GQ_F32, GQ_F64, GQ_F16, GQ_I8,   GQ_I16, GQ_I32, GQ_I64,
                                   GQ_U8,  GQ_U16, GQ_U32, GQ_BOOL, GQ_C64, GQ_C128};
#define S_NALL ((int)(sizeof s_all / sizeof s_all[0]))

static uint64_t s_rng = 0x9e3779b97f4a7c15ull;

static uint8_t s_byte(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (uint8_t)(s_rng >> 24);
}

static void s_roundtrip(gq_dtype_t dt, const int64_t *shape, int ndim)
{
    gq_tdesc_t d;
    CHECK(gq_tdesc_init(&d, dt, shape, ndim) == GQ_OK);
    size_t n = gq_tdesc_nbytes(&d);
    uint8_t *src = s_xmalloc(n);
    for (size_t i = 0; i < n; i++)
        src[i] = dt == GQ_BOOL ? s_byte() & 1 : s_byte();
    char path[512], err[512] = "";
    s_path(path, sizeof path, "rt.npy");
    gq_status rc = gq_npy_write(path, &d, src, err, sizeof err);
    CHECK(rc == GQ_OK);
    if (rc != GQ_OK)
        fprintf(stderr, "  write %s: %s\n", gq_dtype_name(dt), err);

    /* The layout numpy writes: version 1.0, data at a multiple of 64, header ends in '\n'. */
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    uint8_t *file = s_xmalloc(n + 4096);
    size_t flen = f ? fread(file, 1, n + 4096, f) : 0;
    if (f)
        fclose(f);
    gq_tdesc_t pd;
    size_t off = 0;
    int fortran = -1, bswap = -1;
    CHECK(gq_npy_parse(file, flen, &pd, &off, &fortran, &bswap, err, sizeof err) == GQ_OK);
    CHECK(flen >= 10 && file[6] == 1 && file[7] == 0);
    CHECK(off % 64 == 0 && off >= 64 && file[off - 1] == '\n');
    CHECK(fortran == 0 && bswap == 0);
    CHECK(gq_tdesc_equal(&pd, &d));
    free(file);

    gq_tdesc_t rd;
    void *data = NULL;
    size_t rn = 0;
    rc = gq_npy_read(path, &rd, &data, &rn, err, sizeof err);
    CHECK(rc == GQ_OK);
    if (rc != GQ_OK)
        fprintf(stderr, "  read %s ndim %d: %s\n", gq_dtype_name(dt), ndim, err);
    CHECK(data != NULL && ((uintptr_t)data % 64) == 0);
    CHECK(rn == n && gq_tdesc_equal(&rd, &d));
    CHECK(data && (n == 0 || !memcmp(data, src, n)));
    free(data);
    free(src);
    unlink(path);
}

static void test_roundtrip(void)
{
    static const int64_t dims[GQ_MAX_DIMS] = {2, 3, 1, 2, 1, 2, 1, 3};
    for (int t = 0; t < S_NALL; t++)
        for (int nd = 0; nd <= GQ_MAX_DIMS; nd++)
            s_roundtrip(s_all[t], dims, nd);
    static const int64_t empty1[] = {0};
    static const int64_t empty3[] = {3, 0, 2};
    static const int64_t big1[] = {5000};
    for (int t = 0; t < S_NALL; t++) {
        s_roundtrip(s_all[t], empty1, 1);
        s_roundtrip(s_all[t], empty3, 3);
        s_roundtrip(s_all[t], big1, 1);
    }
}

/* The descr each dtype is written with, as numpy spells it on a little-endian host. */
static void test_descr_names(void)
{
    CHECK(!strcmp(gq_npy_descr(GQ_F32), "<f4"));
    CHECK(!strcmp(gq_npy_descr(GQ_F16), "<f2"));
    CHECK(!strcmp(gq_npy_descr(GQ_C128), "<c16"));
    CHECK(!strcmp(gq_npy_descr(GQ_U8), "|u1"));
    CHECK(!strcmp(gq_npy_descr(GQ_I8), "|i1"));
    CHECK(!strcmp(gq_npy_descr(GQ_BOOL), "|b1"));
    CHECK(gq_npy_descr(GQ_DTYPE_INVALID) == NULL);
}

/* Headers numpy (or Python's literal syntax that numpy reads) may hold, all accepted. */
static void test_header_variants(void)
{
    static const struct {
        const char *header;
        gq_dtype_t dtype;
        int ndim;
        int64_t d0;
    } ok[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }           \n", GQ_F32, 2, 2},
        {"{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (6,)}", GQ_F32, 1, 6},
        {"{'shape': (6,), 'descr': '=f4', 'fortran_order': False}", GQ_F32, 1, 6},
        {"{'fortran_order':False,'shape':(6,),'descr':'|f4',}", GQ_F32, 1, 6},
        {"{'descr': 'f4', 'fortran_order': False, 'shape': (2, 3,), }", GQ_F32, 2, 2},
        {"{\n\t'descr' : '<i2' ,\r\n 'fortran_order' : False ,\n 'shape' : ( 12 , ) \n}\n", GQ_I16,
         1, 12},
        {"{'descr': '<i8', 'fortran_order': False, 'shape': (3, 1, 1, 1, 1, 1, 1, 1), }", GQ_I64, 8,
         3},
        {"{'descr': '>u1', 'fortran_order': False, 'shape': (12,), }", GQ_U8, 1, 12},
        {"{'descr': '<b1', 'fortran_order': False, 'shape': (12,), }", GQ_BOOL, 1, 12},
    };
    uint8_t data[48] = {0};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        for (int major = 1; major <= 3; major++) {
            gq_tdesc_t probe;
            memset(&probe, 0, sizeof probe);
            probe.dtype = ok[i].dtype;
            probe.ndim = ok[i].ndim;
            for (int k = 0; k < ok[i].ndim; k++)
                probe.shape[k] = k == 0 ? ok[i].d0 : (ok[i].ndim == 2 ? 3 : 1);
            size_t dl = gq_tdesc_nbytes(&probe);
            size_t len;
            uint8_t *b = s_build(major, ok[i].header, data, dl, &len);
            gq_tdesc_t d;
            char err[512] = "";
            gq_status rc = s_parse(b, len, &d, err, sizeof err);
            CHECK(rc == GQ_OK);
            if (rc != GQ_OK)
                fprintf(stderr, "  variant %zu v%d: %s\n", i, major, err);
            else
                CHECK(gq_tdesc_equal(&d, &probe));
            free(b);
        }
    }

    /* Shape () is a 0-d tensor of one element. */
    double one = 1.5;
    size_t len;
    uint8_t *b =
        s_build(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", &one, 8, &len);
    gq_tdesc_t d;
    char err[512];
    CHECK(s_parse(b, len, &d, err, sizeof err) == GQ_OK && d.ndim == 0 && d.dtype == GQ_F64);
    free(b);
}

typedef struct {
    const char *what;
    int major;
    const char *header;
    size_t datalen;
    gq_status rc;
    const char *msg; /* a substring the message must hold */
} s_bad_t;

/* Every header case carries a valid-looking f32[2] payload of 8 bytes unless datalen says
 * otherwise, so each case fails for exactly the reason it is named after. */
static const s_bad_t s_bad[] = {
    {"not a dict", 1, "[1, 2]", 8, GQ_EFORMAT, "not a dict"},
    {"not a dict (string)", 1, "'descr'", 8, GQ_EFORMAT, "not a dict"},
    {"empty dict", 1, "{}", 8, GQ_EFORMAT, "no 'descr' key"},
    {"missing fortran_order", 1, "{'descr': '<f4', 'shape': (2,), }", 8, GQ_EFORMAT,
     "no 'fortran_order' key"},
    {"missing shape", 1, "{'descr': '<f4', 'fortran_order': False}", 8, GQ_EFORMAT,
     "no 'shape' key"},
    {"missing descr", 1, "{'fortran_order': False, 'shape': (2,)}", 8, GQ_EFORMAT,
     "no 'descr' key"},
    {"duplicate key", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'shape': (2,)}",
     8, GQ_EFORMAT, "duplicate key 'shape'"},
    {"unknown key", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8,
     GQ_EFORMAT, "unknown key 'x'"},
    {"key not a string", 1, "{descr: '<f4', 'fortran_order': False, 'shape': (2,)}", 8, GQ_EFORMAT,
     "expected a quoted string"},
    {"bad descr", 1, "{'descr': '<f3', 'fortran_order': False, 'shape': (2,), }", 8, GQ_EDTYPE,
     "descr '<f3' is not a supported dtype"},
    {"u64 descr", 1, "{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }", 8, GQ_EDTYPE,
     "descr '<u8' is not a supported dtype"},
    {"unicode descr", 1, "{'descr': '<U2', 'fortran_order': False, 'shape': (1,), }", 8, GQ_EDTYPE,
     "descr '<U2'"},
    {"object descr", 1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", 8, GQ_EDTYPE,
     "descr '|O'"},
    {"empty descr", 1, "{'descr': '', 'fortran_order': False, 'shape': (2,), }", 8, GQ_EDTYPE,
     "descr ''"},
    {"descr leading zero", 1, "{'descr': '<f04', 'fortran_order': False, 'shape': (2,), }", 8,
     GQ_EDTYPE, "descr '<f04'"},
    {"structured descr", 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8,
     GQ_EDTYPE, "structured"},
    {"descr not a string", 1, "{'descr': 4, 'fortran_order': False, 'shape': (2,), }", 8,
     GQ_EFORMAT, "a string for descr"},
    {"fortran_order lower case", 1, "{'descr': '<f4', 'fortran_order': false, 'shape': (2,)}", 8,
     GQ_EFORMAT, "fortran_order 'false' is not True or False"},
    {"fortran_order int", 1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}", 8, GQ_EFORMAT,
     "fortran_order '0'"},
    {"fortran_order string", 1, "{'descr': '<f4', 'fortran_order': 'True', 'shape': (2,)}", 8,
     GQ_EFORMAT, "True or False for fortran_order"},
    {"fortran_order Truex", 1, "{'descr': '<f4', 'fortran_order': Truex, 'shape': (2,)}", 8,
     GQ_EFORMAT, "fortran_order 'Truex'"},
    {"negative dim", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", 8,
     GQ_EFORMAT, "shape dim 1 is negative (-3)"},
    {"dim over the limit", 1,
     "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627777,), }", 8, GQ_ETOOBIG,
     "shape dim 0 = 1099511627777 is over the largest dim"},
    {"dim over 64 bits", 1,
     "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999999,), }", 8,
     GQ_ETOOBIG, "shape dim 0 = 99999999999999999999999999 is over"},
    {"dims overflow", 1,
     "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }", 8,
     GQ_ETOOBIG, "overflows"},
    {"bytes overflow", 1,
     "{'descr': '<c16', 'fortran_order': False, 'shape': (1099511627776, 1048576), }", 8,
     GQ_ETOOBIG, "overflows"},
    {"nine dims", 1,
     "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 2), }", 8,
     GQ_ESHAPE, "more than 8 dims"},
    {"shape not a tuple", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", 8,
     GQ_EFORMAT, "a tuple '(' for shape"},
    {"shape is an int", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", 8,
     GQ_EFORMAT, "is an int, not a tuple"},
    {"shape leading zero", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (02,), }", 8,
     GQ_EFORMAT, "shape dim 0 '02' is not a decimal integer"},
    {"shape long suffix", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }", 8,
     GQ_EFORMAT, "'2L' is not a decimal integer"},
    {"shape hex", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0x2,), }", 8, GQ_EFORMAT,
     "'0x2' is not a decimal integer"},
    {"shape lone comma", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (,), }", 8,
     GQ_EFORMAT, "a dim or ')' in shape"},
    {"shape double comma", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,,), }", 8,
     GQ_EFORMAT, "a dim or ')' in shape"},
    {"shape missing comma", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1 2), }", 8,
     GQ_EFORMAT, "',' or ')' in shape"},
    {"unterminated string", 1, "{'descr': '<f4", 8, GQ_EFORMAT, "unterminated string"},
    {"string across a newline", 1, "{'descr': '<f4\n', 'fortran_order': False, 'shape': (2,)}", 8,
     GQ_EFORMAT, "unterminated string"},
    {"mismatched quotes", 1, "{'descr\": '<f4', 'fortran_order': False, 'shape': (2,)}", 8,
     GQ_EFORMAT, "unknown key"},
    {"unterminated tuple", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3", 24,
     GQ_EFORMAT, "unterminated shape tuple"},
    {"unterminated tuple after comma", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,",
     8, GQ_EFORMAT, "unterminated shape tuple"},
    {"unterminated dict", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", 8,
     GQ_EFORMAT, "unterminated dict"},
    {"unterminated dict after comma", 1, "{'descr': '<f4', 'fortran_order': False,", 8, GQ_EFORMAT,
     "expected a quoted string"},
    {"missing colon", 1, "{'descr' '<f4', 'fortran_order': False, 'shape': (2,)}", 8, GQ_EFORMAT,
     "':' after a key"},
    {"missing comma", 1, "{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", 8, GQ_EFORMAT,
     "',' or '}' after a value"},
    {"leading comma", 1, "{, 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 8, GQ_EFORMAT,
     "expected a quoted string"},
    {"escape in string", 1, "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2,)}", 8,
     GQ_EFORMAT, "escape sequence"},
    {"text after the dict", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", 8,
     GQ_EFORMAT, "only whitespace after the header dict"},
    {"two dicts", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}{}", 8, GQ_EFORMAT,
     "only whitespace after"},
    {"comment", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} # hi", 8, GQ_EFORMAT,
     "only whitespace after"},
    {"truncated data", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20,
     GQ_EFORMAT, "truncated data: 20 bytes, expected 24 for f32[2,3]"},
    {"no data", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", 0, GQ_EFORMAT,
     "truncated data: 0 bytes, expected 8"},
    {"trailing data", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 12,
     GQ_EFORMAT, "4 trailing bytes after the data (8 bytes for f32[2])"},
    {"trailing data after empty", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0,)}", 1,
     GQ_EFORMAT, "1 trailing bytes"},
};

static void test_bad_headers(void)
{
    uint8_t data[64] = {0};
    for (size_t i = 0; i < sizeof s_bad / sizeof s_bad[0]; i++) {
        const s_bad_t *c = &s_bad[i];
        size_t len;
        uint8_t *b = s_build(c->major, c->header, data, c->datalen, &len);
        gq_tdesc_t d;
        char err[512] = "";
        gq_status rc = s_parse(b, len, &d, err, sizeof err);
        int ok = rc == c->rc && strstr(err, c->msg) != NULL;
        CHECK(ok);
        if (!ok)
            fprintf(stderr, "  case '%s': got %s \"%s\", want %s \"...%s...\"\n", c->what,
                    gq_status_name(rc), err, gq_status_name(c->rc), c->msg);
        free(b);
    }

    /* A NUL inside the header is not text numpy writes (Python refuses it too). */
    static const char nul_hdr[] = "{'descr': '<f4', 'fortran_order': False,\0'shape': (2,)}";
    size_t hl = sizeof nul_hdr - 1;
    size_t len = 10 + hl + 8;
    uint8_t *b = s_xmalloc(len);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (uint8_t)hl;
    b[9] = 0;
    memcpy(b + 10, nul_hdr, hl);
    memset(b + 10 + hl, 0, 8);
    gq_tdesc_t d;
    char err[512] = "";
    CHECK(s_parse(b, len, &d, err, sizeof err) == GQ_EFORMAT && strstr(err, "byte 0x00"));
    free(b);
}

static void s_expect(const uint8_t *b, size_t len, gq_status want, const char *msg)
{
    gq_tdesc_t d;
    char err[512] = "";
    gq_status rc = s_parse(b, len, &d, err, sizeof err);
    int ok = rc == want && strstr(err, msg) != NULL;
    CHECK(ok);
    if (!ok)
        fprintf(stderr, "  got %s \"%s\", want %s \"...%s...\"\n", gq_status_name(rc), err,
                gq_status_name(want), msg);
}

static void test_bad_preamble(void)
{
    const char *h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    uint8_t data[8] = {0};
    size_t len;
    uint8_t *b = s_build(1, h, data, 8, &len);

    b[5] = 'X';
    s_expect(b, len, GQ_EFORMAT, "bad magic");
    b[5] = 'Y';
    b[0] = 0x92;
    s_expect(b, len, GQ_EFORMAT, "bad magic");
    b[0] = 0x93;
    s_expect(b, 0, GQ_EFORMAT, "truncated: 0 bytes");
    s_expect(b, 4, GQ_EFORMAT, "truncated: 4 bytes");
    s_expect(b, 9, GQ_EFORMAT, "shorter than the npy 1.0 preamble");

    b[6] = 4;
    s_expect(b, len, GQ_EFORMAT, "unsupported npy version 4.0");
    b[6] = 0;
    s_expect(b, len, GQ_EFORMAT, "unsupported npy version 0.0");
    b[6] = 1;
    b[7] = 1;
    s_expect(b, len, GQ_EFORMAT, "unsupported npy version 1.1");
    b[7] = 0;

    b[8] = 0xff;
    b[9] = 0x01;
    s_expect(b, len, GQ_EFORMAT, "header length 511 runs past the end");
    b[8] = 0;
    b[9] = 0;
    s_expect(b, len, GQ_EFORMAT, "header is empty");
    free(b);

    /* Version 2.0 carries a 32-bit length: a huge one is refused before anything else. */
    b = s_build(2, h, data, 8, &len);
    b[8] = b[9] = b[10] = b[11] = 0xff;
    s_expect(b, len, GQ_ETOOBIG, "header length 4294967295 is over the limit");
    b[8] = 0xff;
    b[9] = 0x00;
    b[10] = 0x00;
    b[11] = 0x00;
    s_expect(b, len, GQ_EFORMAT, "runs past the end");
    s_expect(b, 11, GQ_EFORMAT, "shorter than the npy 2.0 preamble");
    free(b);

    /* Every prefix of a valid file fails cleanly and reads nothing past its end. */
    b = s_build(1, h, data, 8, &len);
    for (size_t n = 0; n < len; n++) {
        gq_tdesc_t d;
        char err[512] = "";
        CHECK(s_parse(b, n, &d, err, sizeof err) != GQ_OK && err[0] != '\0');
    }
    gq_tdesc_t d;
    char err[512];
    CHECK(s_parse(b, len, &d, err, sizeof err) == GQ_OK);
    free(b);

    size_t off;
    int fo, bs;
    CHECK(gq_npy_parse(NULL, 0, &d, &off, &fo, &bs, err, sizeof err) == GQ_EFORMAT);
    CHECK(gq_npy_parse(NULL, 5, &d, &off, &fo, &bs, err, sizeof err) == GQ_EINVAL);
    CHECK(gq_npy_parse("x", 1, NULL, &off, &fo, &bs, err, sizeof err) == GQ_EINVAL);
}

static void s_put_be(uint8_t *p, const void *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = ((const uint8_t *)v)[n - 1 - i];
}

static void *s_read_bytes(const char *name, const uint8_t *file, size_t len, gq_tdesc_t *d)
{
    char path[512], err[512] = "";
    s_path(path, sizeof path, name);
    CHECK(s_write_file(path, file, len) == 0);
    void *data = NULL;
    gq_status rc = gq_npy_read(path, d, &data, NULL, err, sizeof err);
    CHECK(rc == GQ_OK);
    if (rc != GQ_OK)
        fprintf(stderr, "  %s: %s\n", name, err);
    unlink(path);
    return data;
}

/* Files as a big-endian machine (or numpy's astype('>...')) writes them. */
static void test_big_endian(void)
{
    char err[512];
    {
        int32_t v[5] = {1, -2, 0x01020304, INT32_MIN, INT32_MAX};
        uint8_t raw[20];
        for (int i = 0; i < 5; i++)
            s_put_be(raw + 4 * i, &v[i], 4);
        size_t len;
        uint8_t *b = s_build(1, "{'descr': '>i4', 'fortran_order': False, 'shape': (5,), }", raw,
                             sizeof raw, &len);
        gq_tdesc_t d;
        size_t off;
        int fo, bs;
        CHECK(gq_npy_parse(b, len, &d, &off, &fo, &bs, err, sizeof err) == GQ_OK && bs == 1);
        int32_t *got = s_read_bytes("be_i4.npy", b, len, &d);
        CHECK(got && d.dtype == GQ_I32 && !memcmp(got, v, sizeof v));
        free(got);
        free(b);
    }
    {
        double v[3] = {1.5, -2.25e300, 3.0};
        uint8_t raw[24];
        for (int i = 0; i < 3; i++)
            s_put_be(raw + 8 * i, &v[i], 8);
        size_t len;
        uint8_t *b = s_build(3, "{'descr': '>f8', 'fortran_order': False, 'shape': (3,), }", raw,
                             sizeof raw, &len);
        gq_tdesc_t d;
        double *got = s_read_bytes("be_f8.npy", b, len, &d);
        CHECK(got && d.dtype == GQ_F64 && !memcmp(got, v, sizeof v));
        free(got);
        free(b);
    }
    {
        /* complex64 swaps each f32 half in place; the real part stays first. */
        float v[4] = {1.0f, -2.0f, 0.5f, 1e30f};
        uint8_t raw[16];
        for (int i = 0; i < 4; i++)
            s_put_be(raw + 4 * i, &v[i], 4);
        size_t len;
        uint8_t *b = s_build(2, "{'descr': '>c8', 'fortran_order': False, 'shape': (2,), }", raw,
                             sizeof raw, &len);
        gq_tdesc_t d;
        float *got = s_read_bytes("be_c8.npy", b, len, &d);
        CHECK(got && d.dtype == GQ_C64 && !memcmp(got, v, sizeof v));
        free(got);
        free(b);
    }
    {
        uint16_t v[3] = {0x3c00, 0xc000, 0x0102}; /* f16 1.0, -2.0 and a subnormal */
        uint8_t raw[6];
        for (int i = 0; i < 3; i++)
            s_put_be(raw + 2 * i, &v[i], 2);
        size_t len;
        uint8_t *b = s_build(1, "{'descr': '>f2', 'fortran_order': False, 'shape': (3,), }", raw,
                             sizeof raw, &len);
        gq_tdesc_t d;
        uint16_t *got = s_read_bytes("be_f2.npy", b, len, &d);
        CHECK(got && d.dtype == GQ_F16 && !memcmp(got, v, sizeof v));
        free(got);
        free(b);
    }
    {
        /* One-byte types have no byte order whatever the descr says. */
        uint8_t raw[3] = {1, 2, 250};
        size_t len;
        uint8_t *b = s_build(1, "{'descr': '>u1', 'fortran_order': False, 'shape': (3,), }", raw,
                             sizeof raw, &len);
        gq_tdesc_t d;
        size_t off;
        int fo, bs;
        CHECK(gq_npy_parse(b, len, &d, &off, &fo, &bs, err, sizeof err) == GQ_OK && bs == 0);
        uint8_t *got = s_read_bytes("be_u1.npy", b, len, &d);
        CHECK(got && !memcmp(got, raw, 3));
        free(got);
        free(b);
    }
}

/* Fortran order: element (i, j, k) holds 100i + 10j + k, laid out with i varying fastest. */
static void test_fortran(void)
{
    int32_t raw[2 * 3 * 4];
    int n = 0;
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 3; j++)
            for (int i = 0; i < 2; i++)
                raw[n++] = 100 * i + 10 * j + k;
    size_t len;
    uint8_t *b = s_build(1, "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3, 4), }", raw,
                         sizeof raw, &len);
    gq_tdesc_t d;
    size_t off;
    int fo, bs;
    char err[512];
    CHECK(gq_npy_parse(b, len, &d, &off, &fo, &bs, err, sizeof err) == GQ_OK && fo == 1);
    int32_t *got = s_read_bytes("f_i4.npy", b, len, &d);
    CHECK(got && d.ndim == 3 && d.shape[0] == 2 && d.shape[1] == 3 && d.shape[2] == 4);
    int good = got != NULL;
    for (int i = 0; good && i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++)
                if (got[i * 12 + j * 4 + k] != 100 * i + 10 * j + k)
                    good = 0;
    CHECK(good);
    free(got);
    free(b);

    /* Fortran and big-endian at once: a 3x2 f64 matrix m[r][c] = r + c / 10. */
    uint8_t be[6 * 8];
    n = 0;
    for (int c = 0; c < 2; c++)
        for (int r = 0; r < 3; r++) {
            double v = r + c / 10.0;
            s_put_be(be + 8 * n++, &v, 8);
        }
    b = s_build(1, "{'descr': '>f8', 'fortran_order': True, 'shape': (3, 2), }", be, sizeof be,
                &len);
    double *m = s_read_bytes("f_be_f8.npy", b, len, &d);
    good = m != NULL;
    for (int r = 0; good && r < 3; r++)
        for (int c = 0; c < 2; c++)
            if (m[r * 2 + c] != r + c / 10.0)
                good = 0;
    CHECK(good);
    free(m);
    free(b);

    /* Fortran order with a zero dim or one dim changes nothing. */
    b = s_build(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 0), }", NULL, 0, &len);
    void *e = s_read_bytes("f_empty.npy", b, len, &d);
    CHECK(e != NULL && d.ndim == 2 && d.shape[1] == 0);
    free(e);
    free(b);
    float v3[3] = {1, 2, 3};
    b = s_build(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3,), }", v3, sizeof v3, &len);
    float *g = s_read_bytes("f_1d.npy", b, len, &d);
    CHECK(g && !memcmp(g, v3, sizeof v3));
    free(g);
    free(b);
}

static void test_bool_normalised(void)
{
    uint8_t raw[4] = {0, 1, 7, 255};
    size_t len;
    uint8_t *b = s_build(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (4,), }", raw,
                         sizeof raw, &len);
    gq_tdesc_t d;
    uint8_t *got = s_read_bytes("bool.npy", b, len, &d);
    CHECK(got && got[0] == 0 && got[1] == 1 && got[2] == 1 && got[3] == 1);
    free(got);
    free(b);
}

/* Headers longer than the reader's first read (4 KiB), and the largest a 1.0 file can hold. */
static void test_long_headers(void)
{
    static const int pads[] = {5000, 65535 - 60, 70000};
    for (size_t p = 0; p < sizeof pads / sizeof pads[0]; p++) {
        const char *dict = "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }";
        size_t hl = strlen(dict) + (size_t)pads[p];
        char *h = s_xmalloc(hl + 1);
        memset(h, ' ', hl);
        memcpy(h, dict, strlen(dict));
        h[hl - 1] = '\n';
        h[hl] = '\0';
        int16_t v[2] = {-7, 9};
        size_t len;
        uint8_t *b = s_build(hl > 65535 ? 2 : 1, h, v, sizeof v, &len);
        gq_tdesc_t d;
        int16_t *got = s_read_bytes("long.npy", b, len, &d);
        CHECK(got && got[0] == -7 && got[1] == 9);
        free(got);
        free(b);
        free(h);
    }
}

static void test_file_errors(void)
{
    char path[512], err[512] = "";
    gq_tdesc_t d;
    void *data = (void *)1;

    s_path(path, sizeof path, "missing.npy");
    CHECK(gq_npy_read(path, &d, &data, NULL, err, sizeof err) == GQ_EIO);
    CHECK(data == NULL && strstr(err, path) && strstr(err, "cannot open"));

    CHECK(gq_npy_read(s_dir, &d, &data, NULL, err, sizeof err) == GQ_EIO);
    CHECK(strstr(err, "not a regular file") != NULL);

    /* A truncated file names itself and both sizes. */
    float v[6] = {0};
    size_t len;
    uint8_t *b = s_build(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", v,
                         sizeof v - 4, &len);
    s_path(path, sizeof path, "short.npy");
    CHECK(s_write_file(path, b, len) == 0);
    CHECK(gq_npy_read(path, &d, &data, NULL, err, sizeof err) == GQ_EFORMAT);
    CHECK(!strncmp(err, path, strlen(path)) && strstr(err, "20 bytes, expected 24"));
    free(b);
    unlink(path);

    b = s_build(1, "{'descr': '<f3', 'fortran_order': False, 'shape': (2,), }", v, 8, &len);
    s_path(path, sizeof path, "x.npy");
    CHECK(s_write_file(path, b, len) == 0);
    CHECK(gq_npy_read(path, &d, &data, NULL, err, sizeof err) == GQ_EDTYPE);
    char want[600];
    snprintf(want, sizeof want, "%s: descr '<f3' is not a supported dtype", path);
    CHECK(!strncmp(err, want, strlen(want)));
    free(b);
    unlink(path);

    s_path(path, sizeof path, "empty.npy");
    CHECK(s_write_file(path, "", 0) == 0);
    CHECK(gq_npy_read(path, &d, &data, NULL, err, sizeof err) == GQ_EFORMAT);
    CHECK(strstr(err, path) && strstr(err, "truncated"));
    unlink(path);

    /* Writing: a missing directory is named; a bad descriptor is refused. */
    gq_tdesc_t wd;
    int64_t shape[1] = {2};
    CHECK(gq_tdesc_init(&wd, GQ_F32, shape, 1) == GQ_OK);
    s_path(path, sizeof path, "no/such/dir/y.npy");
    CHECK(gq_npy_write(path, &wd, v, err, sizeof err) == GQ_EIO);
    CHECK(strstr(err, path) && strstr(err, "No such file"));
    s_path(path, sizeof path, "y.npy");
    CHECK(gq_npy_write(path, &wd, NULL, err, sizeof err) == GQ_EINVAL);
    gq_tdesc_t bad = wd;
    bad.shape[0] = -1;
    CHECK(gq_npy_write(path, &bad, v, err, sizeof err) != GQ_OK && strstr(err, path));
    bad = wd;
    bad.dtype = GQ_DTYPE_INVALID;
    CHECK(gq_npy_write(path, &bad, v, err, sizeof err) != GQ_OK);
    CHECK(access(path, F_OK) != 0);
}

/* Writing over a file replaces it whole and leaves no temporary file behind. */
static void test_overwrite(void)
{
    char path[512], err[512];
    s_path(path, sizeof path, "over.npy");
    gq_tdesc_t d;
    int64_t s1[1] = {100}, s2[2] = {2, 2};
    float a[100] = {0}, bvals[4] = {1, 2, 3, 4};
    CHECK(gq_tdesc_init(&d, GQ_F32, s1, 1) == GQ_OK);
    CHECK(gq_npy_write(path, &d, a, err, sizeof err) == GQ_OK);
    CHECK(gq_tdesc_init(&d, GQ_F32, s2, 2) == GQ_OK);
    CHECK(gq_npy_write(path, &d, bvals, err, sizeof err) == GQ_OK);
    gq_tdesc_t r;
    void *data = NULL;
    CHECK(gq_npy_read(path, &r, &data, NULL, err, sizeof err) == GQ_OK);
    CHECK(gq_tdesc_equal(&r, &d) && data && !memcmp(data, bvals, sizeof bvals));
    free(data);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size == 128 + 16);
    unlink(path);

    DIR *dir = opendir(s_dir);
    CHECK(dir != NULL);
    int leftovers = 0;
    for (struct dirent *e; dir && (e = readdir(dir));)
        if (strstr(e->d_name, ".tmp."))
            leftovers++;
    if (dir)
        closedir(dir);
    CHECK(leftovers == 0);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(s_dir, sizeof s_dir, "%s/test_npy.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(s_dir)) {
        perror("test_npy: mkdtemp");
        return 1;
    }
    test_descr_names();
    test_roundtrip();
    test_header_variants();
    test_bad_headers();
    test_bad_preamble();
    test_big_endian();
    test_fortran();
    test_bool_normalised();
    test_long_headers();
    test_file_errors();
    test_overwrite();
    rmdir(s_dir);
    printf("test_npy: %d checks, %d failed\n", s_checks, s_failures);
    return s_failures ? 1 : 0;
}
