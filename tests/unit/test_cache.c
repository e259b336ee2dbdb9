/* The result cache on its own: key canonicalisation, the value codec (round trips, stored
 * raw or compressed, shuffle, every bit flip and truncation refused), the memory tier (LRU
 * and SLRU eviction under a budget, TTL, corruption), the disk tier (persistence across a
 * reopen, cap, corruption), and the cache through a "local" cluster (hit sources, policies). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cache_tiers.h"
#include "gpuq.h"
#include "util.h"

static int s_checks, s_failed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        s_checks++;                                                                                \
        if (!(cond)) {                                                                             \
            s_failed++;                                                                            \
            fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond);                             \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
        }                                                                                          \
    } while (0)

/* ---- keys ---- */

static gq_args_t s_resolve(const char *op, const gq_param_t *p, int n)
{
    gq_args_t a;
    char err[GQ_ERRLEN];
    gq_status rc = gq_op_resolve(gq_op_find(op), p, n, &a, err, sizeof err);
    if (rc) {
        fprintf(stderr, "resolve %s: %s\n", op, err);
        exit(1);
    }
    return a;
}

static gq_cache_key_t s_key1(const gq_args_t *a, int nst, int dtype, const int64_t *shape, int nd,
                             const void *data, size_t nb)
{
    gq_cache_input_t in;
    memset(&in, 0, sizeof in);
    gq_tdesc_init(&in.desc, dtype, shape, nd);
    in.data = data;
    in.nbytes = nb;
    gq_cache_key_t k;
    gq_status rc = gq_cache_key(a, nst, NULL, 0, &in, 1, &k);
    if (rc) {
        fprintf(stderr, "key: %d\n", rc);
        exit(1);
    }
    return k;
}

#define P_F(n, x)                                                                                  \
    {                                                                                              \
        .name = (n), .v = {.type = GQ_PT_FLOAT, .f = (x) }                                         \
    }
#define P_I(n, x)                                                                                  \
    {                                                                                              \
        .name = (n), .v = {.type = GQ_PT_INT, .i = (x) }                                           \
    }
#define P_B(n, x)                                                                                  \
    {                                                                                              \
        .name = (n), .v = {.type = GQ_PT_BOOL, .i = (x) }                                          \
    }
#define P_S(n, x)                                                                                  \
    {                                                                                              \
        .name = (n), .v = {.type = GQ_PT_STR, .s = (x) }                                           \
    }

static void s_test_key(void)
{
    float x[4] = {1, 2, 3, 4};
    int64_t s4[1] = {4}, s22[2] = {2, 2};
    gq_param_t fo[] = {P_F("factor", 2.0), P_F("offset", 1.0)};
    gq_param_t of[] = {P_F("offset", 1.0), P_F("factor", 2.0)};
    gq_param_t fo_int[] = {P_I("factor", 2), P_I("offset", 1)};
    gq_param_t f_only[] = {P_F("factor", 2.0)};
    gq_param_t f_def[] = {P_F("factor", 2.0), P_F("offset", 0.0)};
    gq_param_t f3[] = {P_F("factor", 3.0), P_F("offset", 1.0)};
    gq_param_t neg0[] = {P_F("factor", 2.0), P_F("offset", -0.0)};

    gq_args_t a = s_resolve("tensor.scale", fo, 2);
    gq_cache_key_t base = s_key1(&a, 1, GQ_F32, s4, 1, x, sizeof x);
    gq_args_t b = s_resolve("tensor.scale", of, 2);
    gq_cache_key_t k = s_key1(&b, 1, GQ_F32, s4, 1, x, sizeof x);
    CHECK(gq_cache_key_equal(&base, &k), "param order changed the key");
    b = s_resolve("tensor.scale", fo_int, 2);
    k = s_key1(&b, 1, GQ_F32, s4, 1, x, sizeof x);
    CHECK(gq_cache_key_equal(&base, &k), "2 and 2.0 for a float param gave different keys");
    b = s_resolve("tensor.scale", f_only, 1);
    gq_cache_key_t def = s_key1(&b, 1, GQ_F32, s4, 1, x, sizeof x);
    b = s_resolve("tensor.scale", f_def, 2);
    k = s_key1(&b, 1, GQ_F32, s4, 1, x, sizeof x);
    CHECK(gq_cache_key_equal(&def, &k), "a default given or left out gave different keys");
    CHECK(!gq_cache_key_equal(&def, &base), "offset 0 and 1 gave the same key");
    b = s_resolve("tensor.scale", f3, 2);
    k = s_key1(&b, 1, GQ_F32, s4, 1, x, sizeof x);
    CHECK(!gq_cache_key_equal(&base, &k), "factor 2 and 3 gave the same key");
    b = s_resolve("tensor.scale", neg0, 2);
    k = s_key1(&b, 1, GQ_F32, s4, 1, x, sizeof x);
    CHECK(!gq_cache_key_equal(&def, &k), "offset -0.0 and 0.0 gave the same key (x*f + -0.0 keeps "
                                         "the sign of a -0 product, + 0.0 does not)");
    /* Int params: 1 and 1.0 are the same axis; the default -1 given or not is the same. */
    gq_param_t ax_i[] = {P_I("axis", 0)}, ax_f[] = {P_F("axis", 0.0)};
    gq_param_t none[1];
    gq_param_t ax_def[] = {P_I("axis", -1), P_B("keepdims", 0)};
    gq_args_t s1 = s_resolve("tensor.sum", ax_i, 1), s2 = s_resolve("tensor.sum", ax_f, 1);
    gq_cache_key_t ks1 = s_key1(&s1, 1, GQ_F32, s4, 1, x, sizeof x);
    k = s_key1(&s2, 1, GQ_F32, s4, 1, x, sizeof x);
    CHECK(gq_cache_key_equal(&ks1, &k), "axis 0 and 0.0 gave different keys");
    s1 = s_resolve("tensor.sum", none, 0);
    s2 = s_resolve("tensor.sum", ax_def, 2);
    ks1 = s_key1(&s1, 1, GQ_F32, s4, 1, x, sizeof x);
    k = s_key1(&s2, 1, GQ_F32, s4, 1, x, sizeof x);
    CHECK(gq_cache_key_equal(&ks1, &k), "sum defaults given or not gave different keys");
    /* Another op with the same params spelled alike. */
    gq_args_t m1 = s_resolve("tensor.mean", none, 0);
    k = s_key1(&m1, 1, GQ_F32, s4, 1, x, sizeof x);
    CHECK(!gq_cache_key_equal(&ks1, &k), "sum and mean gave the same key");
    /* Inputs: dtype, shape, one byte. */
    k = s_key1(&a, 1, GQ_I32, s4, 1, x, sizeof x);
    CHECK(!gq_cache_key_equal(&base, &k), "dtype f32 vs i32 with the same bytes: same key");
    k = s_key1(&a, 1, GQ_F32, s22, 2, x, sizeof x);
    CHECK(!gq_cache_key_equal(&base, &k), "shape [4] vs [2,2] with the same bytes: same key");
    for (size_t byte = 0; byte < sizeof x; byte++) {
        float y[4];
        memcpy(y, x, sizeof y);
        ((uint8_t *)y)[byte] ^= 0x01;
        k = s_key1(&a, 1, GQ_F32, s4, 1, y, sizeof y);
        CHECK(!gq_cache_key_equal(&base, &k), "flipping byte %zu kept the key", byte);
    }
    /* Pipelines: order of stages, and the model digest slot. */
    gq_args_t pipe[2] = {a, s1}, rev[2] = {s1, a};
    gq_cache_key_t kp = s_key1(pipe, 2, GQ_F32, s4, 1, x, sizeof x);
    k = s_key1(rev, 2, GQ_F32, s4, 1, x, sizeof x);
    CHECK(!gq_cache_key_equal(&kp, &k), "stage order did not change the key");
    CHECK(!gq_cache_key_equal(&kp, &base), "a second stage did not change the key");
    gq_cache_input_t in = {.data = x, .nbytes = sizeof x};
    gq_tdesc_init(&in.desc, GQ_F32, s4, 1);
    uint8_t digest[32] = {1};
    gq_cache_key_t kd;
    CHECK(gq_cache_key(&a, 1, digest, 32, &in, 1, &kd) == GQ_OK && !gq_cache_key_equal(&kd, &base),
          "model digest ignored");
    CHECK(gq_cache_key(&a, 1, digest, GQ_CACHE_MAX_DIGEST + 1, &in, 1, &kd) == GQ_EINVAL,
          "oversized digest accepted");
    /* NaN: one NaN whatever its payload (args built directly: the op table refuses NaN). */
    gq_args_t n1 = a, n2 = a;
    uint64_t q1 = 0x7ff8000000000001ull, q2 = 0xfff8000000000000ull;
    memcpy(&n1.v[1].f, &q1, 8);
    memcpy(&n2.v[1].f, &q2, 8);
    gq_cache_key_t kn1 = s_key1(&n1, 1, GQ_F32, s4, 1, x, sizeof x);
    gq_cache_key_t kn2 = s_key1(&n2, 1, GQ_F32, s4, 1, x, sizeof x);
    CHECK(gq_cache_key_equal(&kn1, &kn2), "NaN payloads gave different keys");
    /* Strings: cast targets. */
    gq_param_t c1[] = {P_S("to", "f64")}, c2[] = {P_S("to", "i32")};
    gq_args_t ca = s_resolve("tensor.cast", c1, 1), cb = s_resolve("tensor.cast", c2, 1);
    k = s_key1(&ca, 1, GQ_F32, s4, 1, x, sizeof x);
    gq_cache_key_t k2 = s_key1(&cb, 1, GQ_F32, s4, 1, x, sizeof x);
    CHECK(!gq_cache_key_equal(&k, &k2), "cast to f64 and i32 gave the same key");
    /* Nondeterministic ops are never cacheable. */
    gq_op_spec_t fake = *gq_op_find("tensor.scale");
    fake.flags |= GQ_OPF_NONDETERMINISTIC;
    gq_args_t fa = a;
    fa.op = &fake;
    gq_args_t mixed[2] = {a, fa};
    CHECK(gq_cache_cacheable(&a, 1) && !gq_cache_cacheable(mixed, 2),
          "nondeterministic op cacheable");
    char hex[33];
    CHECK(strlen(gq_cache_key_hex(&base, hex)) == 32, "hex key");
}

/* ---- values ---- */

static gq_cache_val_t *s_make_val(int kind, size_t n)
{
    float *f = malloc(n * sizeof *f);
    int32_t iv[5] = {1, -2, 3, -4, 5};
    uint32_t rng = 12345;
    for (size_t i = 0; i < n; i++) {
        rng = rng * 1664525u + 1013904223u;
        float noise = (float)(rng >> 8) / 16777216.0f - 0.5f;
        f[i] = kind == 0 ? sinf((float)i * 0.01f) * 10.0f + noise * 1e-3f
                         : (float)(rng >> 8) * (float)(rng & 0xff); /* kind 1: noise */
    }
    gq_tdesc_t d[4];
    int64_t sf[2] = {(int64_t)n / 8, 8}, si[1] = {5}, se[2] = {0, 3};
    gq_tdesc_init(&d[0], GQ_F32, sf, 2);
    gq_tdesc_init(&d[1], GQ_I32, si, 1);
    gq_tdesc_init(&d[2], GQ_F64, NULL, 0); /* a scalar */
    gq_tdesc_init(&d[3], GQ_F32, se, 2);   /* empty */
    double sc = 3.25;
    const void *data[4] = {f, iv, &sc, f};
    size_t nb[4] = {n * sizeof *f, sizeof iv, sizeof sc, 0};
    const char *meta[] = {"w0", "cpu", "opencl"};
    gq_cache_val_t *v = gq_cache_val_new(d, data, nb, 4, meta, 3);
    free(f);
    return v;
}

static int s_val_equal(const gq_cache_val_t *a, const gq_cache_val_t *b)
{
    if (gq_cache_val_count(a) != gq_cache_val_count(b) ||
        gq_cache_val_meta_count(a) != gq_cache_val_meta_count(b))
        return 0;
    for (int i = 0; i < gq_cache_val_meta_count(a); i++)
        if (strcmp(gq_cache_val_meta(a, i), gq_cache_val_meta(b, i)))
            return 0;
    for (int i = 0; i < gq_cache_val_count(a); i++) {
        if (!gq_tdesc_equal(gq_cache_val_desc(a, i), gq_cache_val_desc(b, i)) ||
            gq_cache_val_nbytes(a, i) != gq_cache_val_nbytes(b, i) ||
            memcmp(gq_cache_val_data(a, i), gq_cache_val_data(b, i), gq_cache_val_nbytes(a, i)))
            return 0;
        if ((uintptr_t)gq_cache_val_data(b, i) % GQ_CACHE_ALIGN)
            return 0;
    }
    return 1;
}

static void s_test_codec(void)
{
    gq_cache_key_t key = {0x1234, 0x5678}, other = {0x1234, 0x5679};
    gq_cache_val_t *smooth = s_make_val(0, 4096), *noise = s_make_val(1, 4096);
    CHECK(smooth && noise, "values");
    CHECK(!gq_cache_val_verify(smooth), "fresh value fails its checksum");
    const gq_shuffle_t modes[] = {GQ_SHUFFLE_OFF, GQ_SHUFFLE_ON, GQ_SHUFFLE_AUTO};
    for (int v = 0; v < 2; v++) {
        gq_cache_val_t *val = v ? noise : smooth;
        for (int mi = 0; mi < 3; mi++) {
            uint8_t *enc;
            size_t len;
            unsigned flags;
            CHECK(gq_cache_encode(val, &key, modes[mi], &enc, &len, &flags) == GQ_OK, "encode");
            gq_cache_val_t *out = NULL;
            char err[GQ_ERRLEN];
            gq_status rc = gq_cache_decode(enc, len, &key, 0, &out, err, sizeof err);
            CHECK(rc == GQ_OK && out && s_val_equal(val, out), "round trip %d/%d: %s", v, mi, err);
            gq_cache_val_unref(&out);
            printf("value %-6s shuffle %-4s: raw %zu -> %zu bytes, flags %u\n",
                   v ? "noise" : "smooth",
                   mi == 0   ? "off"
                   : mi == 1 ? "on"
                             : "auto",
                   gq_cache_val_raw_size(val), len, flags);
            if (v == 0 && mi > 0)
                CHECK(flags & GQ_CACHE_F_LZ4, "smooth data stored raw with shuffle");
            if (v == 0 && mi == 1)
                CHECK(flags & GQ_CACHE_F_SHUFFLE, "shuffle on not used");
            CHECK(gq_cache_decode(enc, len, &other, 0, &out, err, sizeof err) == GQ_EFORMAT &&
                      strstr(err, "another key"),
                  "key mismatch not seen: %s", err);
            /* Every single bit flip is refused (header checks, LZ4 bounds, checksum) unless it
             * decodes to the very same value: an LZ4 match offset changed to another run of
             * the same bytes (zero padding) is harmless, and the checksum agrees. */
            int accepted = 0, harmless = 0;
            for (size_t bit = 0; bit < len * 8; bit += (len > 4096 ? 7 : 1)) {
                enc[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                if (gq_cache_decode(enc, len, &key, 0, &out, err, sizeof err) == GQ_OK) {
                    if (s_val_equal(val, out))
                        harmless++;
                    else
                        accepted++;
                    gq_cache_val_unref(&out);
                }
                enc[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            }
            CHECK(!accepted, "%d bit flips accepted (value %d mode %d)", accepted, v, mi);
            if (harmless)
                printf("  %d bit flips decoded to the same value\n", harmless);
            for (size_t cut = 0; cut < len; cut += (len > 4096 ? 13 : 1))
                CHECK(gq_cache_decode(enc, cut, &key, 0, &out, err, sizeof err) == GQ_EFORMAT,
                      "truncation to %zu accepted", cut);
            CHECK(gq_cache_decode(enc, len, &key, 64, &out, err, sizeof err) == GQ_EFORMAT,
                  "max_raw ignored");
            free(enc);
        }
    }
    /* Incompressible bytes are stored raw. */
    uint8_t rnd[4096];
    uint32_t r = 7;
    for (size_t i = 0; i < sizeof rnd; i++) {
        r = r * 1103515245u + 12345u;
        rnd[i] = (uint8_t)(r >> 16);
    }
    gq_tdesc_t d;
    int64_t sh[1] = {sizeof rnd};
    gq_tdesc_init(&d, GQ_U8, sh, 1);
    const void *dp[1] = {rnd};
    size_t nb[1] = {sizeof rnd};
    gq_cache_val_t *rv = gq_cache_val_new(&d, dp, nb, 1, NULL, 0);
    uint8_t *enc;
    size_t len;
    unsigned flags;
    CHECK(gq_cache_encode(rv, NULL, GQ_SHUFFLE_AUTO, &enc, &len, &flags) == GQ_OK && flags == 0 &&
              len == GQ_CACHE_HEADER_SIZE + gq_cache_val_raw_size(rv),
          "random bytes: flags %u len %zu", flags, len);
    free(enc);
    gq_cache_val_unref(&rv);
    /* Bad constructions. */
    nb[0] = 5;
    CHECK(!gq_cache_val_new(&d, dp, nb, 1, NULL, 0), "nbytes mismatch accepted");
    CHECK(!gq_cache_val_new(&d, dp, nb, GQ_MAX_OUTPUTS + 1, NULL, 0), "too many tensors");
    /* Shuffle round trip. */
    uint8_t src[24], mid[24], back[24];
    for (int i = 0; i < 24; i++)
        src[i] = (uint8_t)i;
    gq_cache_shuffle(mid, src, 6, 4);
    gq_cache_unshuffle(back, mid, 6, 4);
    CHECK(!memcmp(src, back, 24) && mid[1] == 4 && mid[6] == 1, "shuffle");
    /* Every width and element count around the 16-element blocks of the SIMD path, against
     * the definition (byte b of element i at b * n + i): stored values stay readable. */
    for (size_t w = 1; w <= 8; w++) {
        for (size_t n = 0; n <= 70; n++) {
            uint8_t in[560], pl[560], un[560];
            for (size_t i = 0; i < n * w; i++)
                in[i] = (uint8_t)(i * 7 + w);
            gq_cache_shuffle(pl, in, n, w);
            int bad = 0;
            for (size_t i = 0; i < n; i++)
                for (size_t b = 0; b < w; b++)
                    bad += pl[b * n + i] != in[i * w + b];
            gq_cache_unshuffle(un, pl, n, w);
            CHECK(!bad && !memcmp(in, un, n * w), "shuffle of %zu elements of %zu bytes", n, w);
        }
    }
    gq_cache_val_unref(&smooth);
    gq_cache_val_unref(&noise);
}

/* ---- memory tier ---- */

static gq_cache_val_t *s_small_val(int tag, size_t nbytes)
{
    uint8_t *buf = calloc(1, nbytes);
    buf[0] = (uint8_t)tag;
    gq_tdesc_t d;
    int64_t sh[1] = {(int64_t)nbytes};
    gq_tdesc_init(&d, GQ_U8, sh, 1);
    const void *dp[1] = {buf};
    size_t nb[1] = {nbytes};
    gq_cache_val_t *v = gq_cache_val_new(&d, dp, nb, 1, NULL, 0);
    free(buf);
    return v;
}

static int s_has(gq_cache_mem_t *m, int k)
{
    gq_cache_key_t key = {(uint64_t)k, 99};
    return gq_cache_mem_peek(m, &key) != NULL;
}

static int s_get(gq_cache_mem_t *m, int k)
{
    gq_cache_key_t key = {(uint64_t)k, 99};
    gq_cache_val_t *v = gq_cache_mem_get(m, &key, gq_now_us());
    int ok = v && ((const uint8_t *)gq_cache_val_data(v, 0))[0] == (uint8_t)k;
    gq_cache_val_unref(&v);
    return ok;
}

static void s_put(gq_cache_mem_t *m, int k, size_t nbytes, uint64_t expires)
{
    gq_cache_key_t key = {(uint64_t)k, 99};
    gq_cache_val_t *v = s_small_val(k, nbytes);
    gq_cache_mem_put(m, &key, v, expires);
    gq_cache_val_unref(&v);
}

static void s_test_mem(void)
{
    gq_cache_val_t *probe = s_small_val(0, 1000);
    size_t charge = gq_cache_mem_charge(probe);
    size_t overhead = charge - gq_cache_val_raw_size(probe);
    gq_cache_val_unref(&probe);
    /* LRU: room for 3; a get refreshes recency. */
    gq_cache_mem_t *m = gq_cache_mem_new(3 * charge, GQ_EVICT_LRU);
    s_put(m, 1, 1000, 0);
    s_put(m, 2, 1000, 0);
    s_put(m, 3, 1000, 0);
    CHECK(s_get(m, 1), "1 missing");
    s_put(m, 4, 1000, 0); /* evicts 2, the least recent */
    CHECK(s_has(m, 1) && !s_has(m, 2) && s_has(m, 3) && s_has(m, 4), "LRU evicted the wrong one");
    gq_tier_stats_t st;
    gq_cache_mem_stats(m, &st);
    CHECK(st.evictions == 1 && st.entries == 3 && st.bytes_raw <= 3 * charge,
          "stats: ev %llu n %llu", (unsigned long long)st.evictions,
          (unsigned long long)st.entries);
    /* Under the budget at all times, whatever sizes come. */
    for (int k = 10; k < 200; k++) {
        s_put(m, k, (size_t)(k * 37 % 1500) + 1, 0);
        gq_cache_mem_stats(m, &st);
        CHECK(st.bytes_raw + st.entries * overhead <= 3 * charge, "over budget at %d", k);
    }
    s_put(m, 500, 10 * charge, 0); /* bigger than the budget: not stored */
    CHECK(!s_has(m, 500), "value over the budget stored");
    gq_cache_mem_destroy(&m);

    /* SLRU keeps entries used twice through a scan of one-hit entries; LRU does not. */
    for (int pol = 0; pol < 2; pol++) {
        m = gq_cache_mem_new(10 * charge, pol ? GQ_EVICT_LRU : GQ_EVICT_SLRU);
        for (int k = 1; k <= 4; k++) {
            s_put(m, k, 1000, 0);
            s_get(m, k);
        }
        for (int k = 100; k < 120; k++)
            s_put(m, k, 1000, 0);
        int kept = 0;
        for (int k = 1; k <= 4; k++)
            kept += s_has(m, k);
        CHECK(pol ? kept == 0 : kept == 4, "%s kept %d of 4 hot entries through a scan",
              pol ? "LRU" : "SLRU", kept);
        gq_cache_mem_destroy(&m);
    }
    /* TTL and corruption. */
    m = gq_cache_mem_new(10 * charge, GQ_EVICT_SLRU);
    s_put(m, 1, 100, gq_now_us() + 20000);
    s_put(m, 2, 100, 0);
    CHECK(s_get(m, 1), "fresh entry missing");
    usleep(30000);
    CHECK(!s_get(m, 1), "expired entry served");
    gq_cache_key_t k2 = {2, 99};
    gq_cache_val_flip_bit(gq_cache_mem_peek(m, &k2), 12345);
    CHECK(!s_get(m, 2) && !s_has(m, 2), "corrupt entry served or kept");
    gq_cache_mem_stats(m, &st);
    CHECK(st.expired == 1 && st.corrupt == 1, "expired %llu corrupt %llu",
          (unsigned long long)st.expired, (unsigned long long)st.corrupt);
    /* Same low 64 bits, another key: a miss, never the other's value. */
    s_put(m, 7, 100, 0);
    gq_cache_key_t clash = {7, 100};
    CHECK(!gq_cache_mem_get(m, &clash, gq_now_us()), "key clash on lo served the wrong value");
    gq_cache_mem_destroy(&m);
}

/* ---- disk tier ---- */

static void s_flip(uint8_t *buf, size_t *len, void *arg)
{
    size_t bit = *(size_t *)arg % (*len * 8);
    buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
}

static void s_truncate(uint8_t *buf, size_t *len, void *arg)
{
    (void)buf;
    *len = *len * *(size_t *)arg / 100;
}

static void s_test_lmdb(void)
{
    char dir[] = "/tmp/gq-test-cache-XXXXXX";
    CHECK(mkdtemp(dir), "mkdtemp");
    char err[GQ_ERRLEN];
    gq_cache_lmdb_t *d = gq_cache_lmdb_new(dir, 1 << 20, err, sizeof err);
    CHECK(d, "open: %s", err);
    if (!d)
        return;
    gq_cache_val_t *v = s_make_val(0, 4096);
    gq_cache_key_t key = {42, 43};
    uint8_t *enc;
    size_t len;
    gq_cache_encode(v, &key, GQ_SHUFFLE_AUTO, &enc, &len, NULL);
    CHECK(gq_cache_lmdb_put(d, &key, enc, len, gq_cache_val_raw_size(v), 0) == GQ_OK, "put");
    gq_cache_lmdb_destroy(&d);
    d = gq_cache_lmdb_new(dir, 1 << 20, err, sizeof err);
    gq_cache_val_t *out = gq_cache_lmdb_get(d, &key, 0);
    CHECK(out && s_val_equal(v, out), "value lost across a reopen");
    gq_cache_val_unref(&out);
    /* Corruption: a bit flip anywhere, or a truncation, is dropped and counted. */
    size_t flips[] = {3, 200, 900, len * 8 - 1}, cuts[] = {0, 10, 50, 99};
    for (int i = 0; i < 4; i++) {
        gq_cache_lmdb_put(d, &key, enc, len, gq_cache_val_raw_size(v), 0);
        CHECK(gq_cache_lmdb_tamper(d, &key, i & 1 ? s_truncate : s_flip,
                                   i & 1 ? &cuts[i] : &flips[i]) == GQ_OK,
              "tamper");
        CHECK(!gq_cache_lmdb_get(d, &key, 0), "corrupt entry %d served", i);
        CHECK(!gq_cache_lmdb_get(d, &key, 0), "corrupt entry %d kept", i);
    }
    gq_tier_stats_t st;
    gq_cache_lmdb_stats(d, &st);
    CHECK(st.corrupt == 4 && st.entries == 0, "corrupt %llu entries %llu",
          (unsigned long long)st.corrupt, (unsigned long long)st.entries);
    /* Expiry by wall clock. */
    gq_cache_lmdb_put(d, &key, enc, len, gq_cache_val_raw_size(v), 1000);
    CHECK(!gq_cache_lmdb_get(d, &key, 2000), "expired entry served");
    /* The cap: 1 MiB of ~len-byte entries; the oldest go first. */
    int n = (int)((3u << 20) / len);
    for (int i = 0; i < n; i++) {
        gq_cache_key_t k = {(uint64_t)i + 1000, 1};
        uint8_t *e2;
        size_t l2;
        gq_cache_encode(v, &k, GQ_SHUFFLE_AUTO, &e2, &l2, NULL);
        CHECK(gq_cache_lmdb_put(d, &k, e2, l2, gq_cache_val_raw_size(v), 0) == GQ_OK, "put %d", i);
        free(e2);
    }
    gq_cache_lmdb_stats(d, &st);
    gq_cache_key_t first = {1000, 1}, last = {(uint64_t)n - 1 + 1000, 1};
    out = gq_cache_lmdb_get(d, &last, 0);
    gq_cache_val_t *stale = gq_cache_lmdb_get(d, &first, 0);
    printf("disk cap: %d puts of %zu bytes, %llu evictions, %llu bytes held, last %s, first %s\n",
           n, len, (unsigned long long)st.evictions, (unsigned long long)st.bytes_stored,
           out ? "kept" : "gone", stale ? "kept" : "gone");
    CHECK(st.bytes_stored <= 1 << 20 && st.evictions > 0 && out && !stale,
          "cap: %llu bytes, %llu evictions", (unsigned long long)st.bytes_stored,
          (unsigned long long)st.evictions);
    gq_cache_val_unref(&out);
    gq_cache_val_unref(&stale);
    CHECK(gq_cache_lmdb_clear(d) == GQ_OK && !gq_cache_lmdb_get(d, &last, 0), "clear");
    free(enc);
    gq_cache_val_unref(&v);
    gq_cache_lmdb_destroy(&d);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "rm");
}

/* ---- through a local cluster ---- */

static gq_job_t *s_job(gq_tensor_t *x, double factor)
{
    gq_job_t *j = gq_job_new("tensor.scale");
    gq_job_param_float(j, "factor", factor);
    gq_job_input(j, x);
    return j;
}

static void s_test_local(void)
{
    char err[256];
    gq_client_opts_t o;
    gq_client_opts_init(&o);
    o.local_threads = 1;
    gq_client_t *c = gq_client_new("local", &o, err, sizeof err);
    CHECK(c, "local: %s", err);
    if (!c)
        return;
    int64_t shape[1] = {1000};
    gq_tensor_t *x = gq_tensor_new(GQ_F32, shape, 1);
    for (int i = 0; i < 1000; i++)
        ((float *)gq_tensor_data(x))[i] = (float)i;
    gq_job_t *j = s_job(x, 2.5);
    CHECK(gq_client_run(c, j) == GQ_OK && gq_job_cache_source(j) == GQ_CACHE_COMPUTED,
          "first run: %s source %d", gq_job_error(j), gq_job_cache_source(j));
    CHECK(gq_client_run(c, j) == GQ_OK && gq_job_cache_source(j) == GQ_CACHE_MEMORY,
          "second run source %s", gq_cache_source_name(gq_job_cache_source(j)));
    const float *y = gq_tensor_data(gq_job_output(j, 0));
    CHECK(y[999] == 2497.5f && !strcmp(gq_job_backend(j, 0), "cpu") && gq_job_worker(j)[0],
          "hit: wrong value %g or provenance %s/%s", y[999], gq_job_backend(j, 0),
          gq_job_worker(j));
    CHECK(gq_job_cache(j, GQ_CACHE_BYPASS, 0) == GQ_OK, "policy");
    CHECK(gq_client_run(c, j) == GQ_OK && gq_job_cache_source(j) == GQ_CACHE_COMPUTED,
          "bypass served from %s", gq_cache_source_name(gq_job_cache_source(j)));
    gq_job_cache(j, GQ_CACHE_REFRESH, 0);
    CHECK(gq_client_run(c, j) == GQ_OK && gq_job_cache_source(j) == GQ_CACHE_COMPUTED,
          "refresh served from %s", gq_cache_source_name(gq_job_cache_source(j)));
    gq_job_cache(j, GQ_CACHE_USE, 0);
    CHECK(gq_client_run(c, j) == GQ_OK && gq_job_cache_source(j) == GQ_CACHE_MEMORY,
          "use after refresh: %s", gq_cache_source_name(gq_job_cache_source(j)));
    CHECK(gq_job_cache(j, (gq_cache_policy_t)7, 0) == GQ_EINVAL, "bad policy accepted");
    /* A changed byte is another job. */
    ((float *)gq_tensor_data(x))[3] = 4.0f;
    CHECK(gq_client_run(c, j) == GQ_OK && gq_job_cache_source(j) == GQ_CACHE_COMPUTED,
          "changed input served from cache");
    gq_job_destroy(&j);
    gq_cache_info_t ci;
    CHECK(gq_client_cache_info(c, &ci, 5000) == GQ_OK && ci.enabled && ci.ntiers == 1 &&
              ci.tiers[0].tier == GQ_CACHE_MEMORY && ci.tiers[0].hits == 2 && ci.bypassed == 1 &&
              ci.refreshed == 1,
          "stats: %d tiers, hits %llu", ci.ntiers, (unsigned long long)ci.tiers[0].hits);
    char *text = NULL;
    CHECK(gq_client_metrics(c, &text, 5000) == GQ_OK && text &&
              strstr(text, "gpuq_cache_hits_total{tier=\"memory\"} 2") &&
              strstr(text, "gpuq_jobs_done_total"),
          "metrics:\n%s", text ? text : "(none)");
    free(text);
    CHECK(gq_client_cache_clear(c, 5000) == GQ_OK, "clear");
    j = s_job(x, 2.5);
    CHECK(gq_client_run(c, j) == GQ_OK && gq_job_cache_source(j) == GQ_CACHE_COMPUTED,
          "served after clear");
    gq_job_destroy(&j);
    gq_tensor_destroy(&x);
    gq_client_destroy(&c);
}

int main(void)
{
    gq_log_set_level(GQ_LOG_ERROR);
    s_test_key();
    s_test_codec();
    s_test_mem();
    s_test_lmdb();
    s_test_local();
    printf("test_cache: %d checks, %d failed\n", s_checks, s_failed);
    return s_failed ? 1 : 0;
}
