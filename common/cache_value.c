/* Cache values: result tensors in one aligned body, and its encoded form.
 *
 * Raw body (little-endian):
 *   u32 count, u32 meta bytes, then count entries of
 *     u8 dtype, u8 ndim, u16 0, u32 0, i64 shape[8], u64 offset, u64 nbytes   (88 bytes)
 *   then the meta: u8 strings, each u8 length + bytes (who computed it: the worker, then
 *   the backend of each stage, so that a hit reports the provenance of its bytes)
 *   then each tensor's bytes at its offset (a multiple of 64, in order, zero padding).
 * Encoded: a 48-byte header, then the body (raw, or LZ4 of it, shuffled or not):
 *   "GQCV", u8 version 1, u8 flags, u16 0, u64 raw size, u64 stored size,
 *   u64 XXH3-64 of the raw body, u64 key.lo, u64 key.hi. */
#include "cache.h"

#include <lz4.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>
#include "util.h"

#define S_VERSION 1
#define S_TABLE_HEAD 8
#define S_ENTRY 88
#define S_SAMPLE (64u << 10) /* bytes of float data tried both ways by GQ_SHUFFLE_AUTO */

struct gq_cache_val {
    atomic_int refs;
    int n;
    int nmeta;
    char meta[GQ_CACHE_MAX_META][GQ_CACHE_META_LEN];
    gq_tdesc_t desc[GQ_MAX_OUTPUTS];
    size_t off[GQ_MAX_OUTPUTS];
    size_t nbytes[GQ_MAX_OUTPUTS];
    uint8_t *body;
    size_t body_len;
    uint64_t checksum;
};

static void s_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t s_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void s_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t s_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static size_t s_align(size_t x)
{
    return (x + GQ_CACHE_ALIGN - 1) & ~(size_t)(GQ_CACHE_ALIGN - 1);
}

static gq_cache_val_t *s_alloc(size_t body_len)
{
    gq_cache_val_t *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->body = gq_aligned_alloc(GQ_CACHE_ALIGN, body_len ? body_len : 1);
    if (!v->body) {
        free(v);
        return NULL;
    }
    v->body_len = body_len;
    atomic_init(&v->refs, 1);
    return v;
}

gq_cache_val_t *gq_cache_val_new(const gq_tdesc_t *desc, const void *const *data,
                                 const size_t *nbytes, int n, const char *const *meta, int nmeta)
{
    if (n < 0 || n > GQ_MAX_OUTPUTS || (n && (!desc || !data || !nbytes)) || nmeta < 0 ||
        nmeta > GQ_CACHE_MAX_META || (nmeta && !meta))
        return NULL;
    size_t meta_len = 1;
    for (int i = 0; i < nmeta; i++) {
        size_t l = meta[i] ? strlen(meta[i]) : 0;
        if (l >= GQ_CACHE_META_LEN)
            return NULL;
        meta_len += 1 + l;
    }
    size_t table = S_TABLE_HEAD + (size_t)n * S_ENTRY;
    size_t off = s_align(table + meta_len);
    size_t offs[GQ_MAX_OUTPUTS];
    for (int i = 0; i < n; i++) {
        size_t nb;
        if (gq_tdesc_check(&desc[i], NULL, &nb) != GQ_OK || nb != nbytes[i] || (nb && !data[i]) ||
            nb > GQ_CACHE_MAX_VALUE || off > GQ_CACHE_MAX_VALUE - nb)
            return NULL;
        offs[i] = off;
        off = s_align(off + nb);
    }
    if (off > GQ_CACHE_MAX_VALUE)
        return NULL;
    gq_cache_val_t *v = s_alloc(off);
    if (!v)
        return NULL;
    v->n = n;
    uint8_t *b = v->body;
    memset(b, 0, n ? offs[0] : off);
    s_put32(b, (uint32_t)n);
    s_put32(b + 4, (uint32_t)meta_len);
    uint8_t *mp = b + table;
    *mp++ = (uint8_t)nmeta;
    v->nmeta = nmeta;
    for (int i = 0; i < nmeta; i++) {
        size_t l = meta[i] ? strlen(meta[i]) : 0;
        *mp++ = (uint8_t)l;
        memcpy(mp, meta[i] ? meta[i] : "", l);
        mp += l;
        memcpy(v->meta[i], meta[i] ? meta[i] : "", l);
        v->meta[i][l] = 0;
    }
    for (int i = 0; i < n; i++) {
        uint8_t *e = b + S_TABLE_HEAD + (size_t)i * S_ENTRY;
        v->desc[i] = desc[i];
        v->off[i] = offs[i];
        v->nbytes[i] = nbytes[i];
        e[0] = (uint8_t)desc[i].dtype;
        e[1] = (uint8_t)desc[i].ndim;
        for (int k = 0; k < GQ_MAX_DIMS; k++)
            s_put64(e + 8 + 8 * k, k < desc[i].ndim ? (uint64_t)desc[i].shape[k] : 0);
        s_put64(e + 72, offs[i]);
        s_put64(e + 80, nbytes[i]);
        if (nbytes[i])
            memcpy(b + offs[i], data[i], nbytes[i]);
        size_t end = offs[i] + nbytes[i];
        size_t next = i + 1 < n ? offs[i + 1] : off;
        memset(b + end, 0, next - end);
    }
    v->checksum = XXH3_64bits(v->body, v->body_len);
    return v;
}

gq_cache_val_t *gq_cache_val_ref(gq_cache_val_t *val)
{
    if (val)
        atomic_fetch_add_explicit(&val->refs, 1, memory_order_relaxed);
    return val;
}

void gq_cache_val_unref(gq_cache_val_t **val_p)
{
    if (!val_p || !*val_p)
        return;
    gq_cache_val_t *v = *val_p;
    *val_p = NULL;
    if (atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) == 1) {
        free(v->body);
        free(v);
    }
}

int gq_cache_val_count(const gq_cache_val_t *val)
{
    return val->n;
}

const gq_tdesc_t *gq_cache_val_desc(const gq_cache_val_t *val, int i)
{
    return i >= 0 && i < val->n ? &val->desc[i] : NULL;
}

const void *gq_cache_val_data(const gq_cache_val_t *val, int i)
{
    return i >= 0 && i < val->n ? val->body + val->off[i] : NULL;
}

size_t gq_cache_val_nbytes(const gq_cache_val_t *val, int i)
{
    return i >= 0 && i < val->n ? val->nbytes[i] : 0;
}

int gq_cache_val_meta_count(const gq_cache_val_t *val)
{
    return val->nmeta;
}

const char *gq_cache_val_meta(const gq_cache_val_t *val, int i)
{
    return i >= 0 && i < val->nmeta ? val->meta[i] : "";
}

size_t gq_cache_val_raw_size(const gq_cache_val_t *val)
{
    return val->body_len;
}

int gq_cache_val_verify(const gq_cache_val_t *val)
{
    return XXH3_64bits(val->body, val->body_len) == val->checksum ? 0 : -1;
}

void gq_cache_val_flip_bit(gq_cache_val_t *val, size_t bit)
{
    bit %= val->body_len * 8;
    val->body[bit / 8] ^= (uint8_t)(1u << (bit % 8));
}

#if defined(__SSE2__)
#include <emmintrin.h>

/* 16 elements of 4 bytes (64 bytes at src, in r[0..3]) to their 4 byte planes: four rounds
 * of interleaving bytes of r[0]/r[2] and r[1]/r[3] turn element-major order into
 * plane-major (each round moves one bit of the byte's index from the element to the plane
 * side). */
static inline void s_planes4(const uint8_t *src, __m128i r[4])
{
    for (int k = 0; k < 4; k++)
        r[k] = _mm_loadu_si128((const __m128i *)(src + 16 * k));
    for (int round = 0; round < 4; round++) {
        __m128i a = _mm_unpacklo_epi8(r[0], r[2]), b = _mm_unpackhi_epi8(r[0], r[2]);
        __m128i c = _mm_unpacklo_epi8(r[1], r[3]), d = _mm_unpackhi_epi8(r[1], r[3]);
        r[0] = a, r[1] = b, r[2] = c, r[3] = d;
    }
}

/* The inverse: byte planes p[0..3] of 16 elements back to 64 bytes of elements at dst. */
static inline void s_elems4(const __m128i p[4], uint8_t *dst)
{
    __m128i lo01 = _mm_unpacklo_epi8(p[0], p[1]), hi01 = _mm_unpackhi_epi8(p[0], p[1]);
    __m128i lo23 = _mm_unpacklo_epi8(p[2], p[3]), hi23 = _mm_unpackhi_epi8(p[2], p[3]);
    _mm_storeu_si128((__m128i *)dst, _mm_unpacklo_epi16(lo01, lo23));
    _mm_storeu_si128((__m128i *)(dst + 16), _mm_unpackhi_epi16(lo01, lo23));
    _mm_storeu_si128((__m128i *)(dst + 32), _mm_unpacklo_epi16(hi01, hi23));
    _mm_storeu_si128((__m128i *)(dst + 48), _mm_unpackhi_epi16(hi01, hi23));
}
#endif

/* Width 4 (f32, c64: the values shuffle pays on) runs 16 elements per step with SSE2;
 * widths 4 and 8 are unrolled otherwise (the generic byte-plane loops run several times
 * slower than LZ4 itself). */
void gq_cache_shuffle(uint8_t *restrict dst, const uint8_t *restrict src, size_t n, size_t w)
{
    if (w == 4) {
        uint8_t *d0 = dst, *d1 = dst + n, *d2 = dst + 2 * n, *d3 = dst + 3 * n;
        size_t i = 0;
#if defined(__SSE2__)
        for (; i + 16 <= n; i += 16, src += 64) {
            __m128i r[4];
            s_planes4(src, r);
            _mm_storeu_si128((__m128i *)(d0 + i), r[0]);
            _mm_storeu_si128((__m128i *)(d1 + i), r[1]);
            _mm_storeu_si128((__m128i *)(d2 + i), r[2]);
            _mm_storeu_si128((__m128i *)(d3 + i), r[3]);
        }
#endif
        for (; i < n; i++, src += 4) {
            d0[i] = src[0];
            d1[i] = src[1];
            d2[i] = src[2];
            d3[i] = src[3];
        }
        return;
    }
    if (w == 8) {
        for (size_t i = 0; i < n; i++, src += 8)
            for (size_t b = 0; b < 8; b++)
                dst[b * n + i] = src[b];
        return;
    }
    for (size_t b = 0; b < w; b++)
        for (size_t i = 0; i < n; i++)
            dst[b * n + i] = src[i * w + b];
}

void gq_cache_unshuffle(uint8_t *restrict dst, const uint8_t *restrict src, size_t n, size_t w)
{
    if (w == 4) {
        const uint8_t *s0 = src, *s1 = src + n, *s2 = src + 2 * n, *s3 = src + 3 * n;
        size_t i = 0;
#if defined(__SSE2__)
        for (; i + 16 <= n; i += 16, dst += 64) {
            __m128i p[4] = {_mm_loadu_si128((const __m128i *)(s0 + i)),
                            _mm_loadu_si128((const __m128i *)(s1 + i)),
                            _mm_loadu_si128((const __m128i *)(s2 + i)),
                            _mm_loadu_si128((const __m128i *)(s3 + i))};
            s_elems4(p, dst);
        }
#endif
        for (; i < n; i++, dst += 4) {
            dst[0] = s0[i];
            dst[1] = s1[i];
            dst[2] = s2[i];
            dst[3] = s3[i];
        }
        return;
    }
    if (w == 8) {
        for (size_t i = 0; i < n; i++, dst += 8)
            for (size_t b = 0; b < 8; b++)
                dst[b] = src[b * n + i];
        return;
    }
    for (size_t b = 0; b < w; b++)
        for (size_t i = 0; i < n; i++)
            dst[i * w + b] = src[b * n + i];
}

/* Width of the scalars of a float dtype (complex: its parts); 0 for other dtypes. */
static size_t s_float_width(int dtype)
{
    switch (dtype) {
    case GQ_F16:
        return 2;
    case GQ_F32:
    case GQ_C64:
        return 4;
    case GQ_F64:
    case GQ_C128:
        return 8;
    default:
        return 0;
    }
}

/* Shuffles (or unshuffles) the float tensors of a body from src into dst; the bytes
 * between and around them are copied as they are. The table must already be checked
 * (tensors in order, inside the body). */
static void s_shuffle_body(uint8_t *dst, const uint8_t *src, size_t len, const gq_cache_val_t *v,
                           int inverse)
{
    size_t at = 0;
    for (int i = 0; i < v->n; i++) {
        size_t w = s_float_width(v->desc[i].dtype);
        if (!w || v->nbytes[i] < 2 * w)
            continue;
        size_t n = v->nbytes[i] / w, off = v->off[i];
        memcpy(dst + at, src + at, off - at);
        if (inverse)
            gq_cache_unshuffle(dst + off, src + off, n, w);
        else
            gq_cache_shuffle(dst + off, src + off, n, w);
        at = off + n * w;
    }
    memcpy(dst + at, src + at, len - at);
}

/* Whether shuffling pays on a sample: LZ4 of up to S_SAMPLE bytes of float data, plain
 * against shuffled per tensor. */
static int s_shuffle_pays(const gq_cache_val_t *v)
{
    size_t want = 0;
    for (int i = 0; i < v->n; i++)
        if (s_float_width(v->desc[i].dtype))
            want += v->nbytes[i] < S_SAMPLE ? v->nbytes[i] : S_SAMPLE;
    if (want < 256)
        return 0;
    if (want > S_SAMPLE)
        want = S_SAMPLE;
    int cap = LZ4_compressBound((int)want);
    uint8_t *plain = malloc(want), *shuf = malloc(want), *out = malloc((size_t)cap);
    int pays = 0;
    if (!plain || !shuf || !out)
        goto done;
    size_t len = 0;
    for (int i = 0; i < v->n && len < want; i++) {
        size_t w = s_float_width(v->desc[i].dtype);
        if (!w)
            continue;
        size_t take = v->nbytes[i] < want - len ? v->nbytes[i] : want - len;
        take -= take % w;
        memcpy(plain + len, v->body + v->off[i], take);
        gq_cache_shuffle(shuf + len, plain + len, take / w, w);
        len += take;
    }
    if (len < 256)
        goto done;
    int a = LZ4_compress_default((const char *)plain, (char *)out, (int)len, cap);
    int b = LZ4_compress_default((const char *)shuf, (char *)out, (int)len, cap);
    pays = a > 0 && b > 0 && (uint64_t)b * 100 < (uint64_t)a * 95;
done:
    free(plain);
    free(shuf);
    free(out);
    return pays;
}

gq_status gq_cache_encode(const gq_cache_val_t *val, const gq_cache_key_t *key,
                          gq_shuffle_t shuffle, uint8_t **out, size_t *outlen, unsigned *flags_out)
{
    *out = NULL;
    *outlen = 0;
    size_t raw = val->body_len;
    int do_shuffle =
        shuffle == GQ_SHUFFLE_ON || (shuffle == GQ_SHUFFLE_AUTO && s_shuffle_pays(val));
    int cap = LZ4_compressBound((int)raw);
    uint8_t *buf = malloc(GQ_CACHE_HEADER_SIZE + (raw > (size_t)cap ? raw : (size_t)cap));
    uint8_t *shuf = do_shuffle ? malloc(raw ? raw : 1) : NULL;
    if (!buf || (do_shuffle && !shuf)) {
        free(buf);
        free(shuf);
        return GQ_ENOMEM;
    }
    const uint8_t *src = val->body;
    if (do_shuffle) {
        s_shuffle_body(shuf, val->body, raw, val, 0);
        src = shuf;
    }
    unsigned flags = 0;
    size_t stored = raw;
    int c = cap > 0 ? LZ4_compress_default((const char *)src, (char *)buf + GQ_CACHE_HEADER_SIZE,
                                           (int)raw, cap)
                    : 0;
    if (c > 0 && (uint64_t)c * 100 <= (uint64_t)raw * (100 - GQ_CACHE_MIN_SAVING_PCT)) {
        flags = GQ_CACHE_F_LZ4 | (do_shuffle ? GQ_CACHE_F_SHUFFLE : 0);
        stored = (size_t)c;
    } else {
        memcpy(buf + GQ_CACHE_HEADER_SIZE, val->body, raw); /* raw bodies are never shuffled */
    }
    free(shuf);
    memcpy(buf, "GQCV", 4);
    buf[4] = S_VERSION;
    buf[5] = (uint8_t)flags;
    buf[6] = buf[7] = 0;
    s_put64(buf + 8, raw);
    s_put64(buf + 16, stored);
    s_put64(buf + 24, val->checksum);
    s_put64(buf + 32, key ? key->lo : 0);
    s_put64(buf + 40, key ? key->hi : 0);
    *out = buf;
    *outlen = GQ_CACHE_HEADER_SIZE + stored;
    if (flags_out)
        *flags_out = flags;
    return GQ_OK;
}

/* Reads and checks the descriptor table of raw body b (v->body_len bytes, v's body or its
 * shuffled form: the table is never shuffled) into v. */
static gq_status s_parse_table(gq_cache_val_t *v, const uint8_t *b, char *err, size_t errlen)
{
    size_t len = v->body_len;
    if (len < S_TABLE_HEAD) {
        gq_errf(err, errlen, "cache value: body of %zu bytes has no table", len);
        return GQ_EFORMAT;
    }
    uint32_t n = s_get32(b), meta_len = s_get32(b + 4);
    if (n > GQ_MAX_OUTPUTS) {
        gq_errf(err, errlen, "cache value: %u tensors, at most %d", n, GQ_MAX_OUTPUTS);
        return GQ_EFORMAT;
    }
    size_t table = S_TABLE_HEAD + (size_t)n * S_ENTRY;
    if (table > len || meta_len < 1 || meta_len > len - table) {
        gq_errf(err, errlen,
                "cache value: table of %u tensors and %u meta bytes past the body "
                "(%zu bytes)",
                n, meta_len, len);
        return GQ_EFORMAT;
    }
    const uint8_t *mp = b + table, *mend = mp + meta_len;
    int nmeta = *mp++;
    if (nmeta > GQ_CACHE_MAX_META) {
        gq_errf(err, errlen, "cache value: %d meta strings, at most %d", nmeta, GQ_CACHE_MAX_META);
        return GQ_EFORMAT;
    }
    for (int i = 0; i < nmeta; i++) {
        size_t l = mp < mend ? *mp++ : GQ_CACHE_META_LEN;
        if (l >= GQ_CACHE_META_LEN || l > (size_t)(mend - mp) || memchr(mp, 0, l)) {
            gq_errf(err, errlen, "cache value: meta string %d runs past its section", i);
            return GQ_EFORMAT;
        }
        memcpy(v->meta[i], mp, l);
        v->meta[i][l] = 0;
        mp += l;
    }
    if (mp != mend) {
        gq_errf(err, errlen, "cache value: %zu stray meta bytes", (size_t)(mend - mp));
        return GQ_EFORMAT;
    }
    v->nmeta = nmeta;
    size_t end = table + meta_len;
    v->n = (int)n;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = b + S_TABLE_HEAD + (size_t)i * S_ENTRY;
        gq_tdesc_t *d = &v->desc[i];
        memset(d, 0, sizeof *d);
        d->dtype = (gq_dtype_t)e[0];
        d->ndim = e[1];
        if (e[2] || e[3] || s_get32(e + 4) || d->ndim > GQ_MAX_DIMS) {
            gq_errf(err, errlen, "cache value: tensor %u: bad entry (ndim %d)", i, d->ndim);
            return GQ_EFORMAT;
        }
        for (int k = 0; k < GQ_MAX_DIMS; k++) {
            uint64_t dim = s_get64(e + 8 + 8 * k);
            if (k >= d->ndim ? dim != 0 : dim > (uint64_t)GQ_MAX_DIM_SIZE) {
                gq_errf(err, errlen, "cache value: tensor %u: dim %d = %llu", i, k,
                        (unsigned long long)dim);
                return GQ_EFORMAT;
            }
            if (k < d->ndim)
                d->shape[k] = (int64_t)dim;
        }
        size_t nb;
        if (gq_tdesc_check(d, NULL, &nb) != GQ_OK) {
            gq_errf(err, errlen, "cache value: tensor %u: invalid descriptor", i);
            return GQ_EFORMAT;
        }
        uint64_t off = s_get64(e + 72), nbytes = s_get64(e + 80);
        if (nbytes != nb || off % GQ_CACHE_ALIGN || off < end || off > len || nbytes > len - off) {
            gq_errf(err, errlen,
                    "cache value: tensor %u: %llu bytes at %llu do not fit (need %zu, body %zu)", i,
                    (unsigned long long)nbytes, (unsigned long long)off, nb, len);
            return GQ_EFORMAT;
        }
        v->off[i] = (size_t)off;
        v->nbytes[i] = (size_t)nbytes;
        end = (size_t)(off + nbytes);
    }
    return GQ_OK;
}

gq_status gq_cache_decode(const uint8_t *buf, size_t len, const gq_cache_key_t *key, size_t max_raw,
                          gq_cache_val_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!max_raw || max_raw > GQ_CACHE_MAX_VALUE)
        max_raw = GQ_CACHE_MAX_VALUE;
    if (!buf || len < GQ_CACHE_HEADER_SIZE || memcmp(buf, "GQCV", 4)) {
        gq_errf(err, errlen, "cache value: no GQCV header (%zu bytes)", len);
        return GQ_EFORMAT;
    }
    unsigned flags = buf[5];
    if (buf[4] != S_VERSION || (flags & ~(GQ_CACHE_F_LZ4 | GQ_CACHE_F_SHUFFLE)) || buf[6] ||
        buf[7] || (flags == GQ_CACHE_F_SHUFFLE)) {
        gq_errf(err, errlen, "cache value: version %u flags 0x%x not understood", buf[4], flags);
        return GQ_EFORMAT;
    }
    uint64_t raw = s_get64(buf + 8), stored = s_get64(buf + 16), sum = s_get64(buf + 24);
    if (key && (s_get64(buf + 32) != key->lo || s_get64(buf + 40) != key->hi)) {
        gq_errf(err, errlen, "cache value: stored under another key");
        return GQ_EFORMAT;
    }
    if (raw > max_raw || stored != len - GQ_CACHE_HEADER_SIZE ||
        (!(flags & GQ_CACHE_F_LZ4) && stored != raw) || raw > (uint64_t)LZ4_MAX_INPUT_SIZE ||
        stored > (uint64_t)LZ4_MAX_INPUT_SIZE) {
        gq_errf(err, errlen, "cache value: sizes raw %llu stored %llu do not fit %zu bytes",
                (unsigned long long)raw, (unsigned long long)stored, len);
        return GQ_EFORMAT;
    }
    gq_cache_val_t *v = s_alloc((size_t)raw);
    uint8_t *tmp = NULL;
    if (!v) {
        gq_errf(err, errlen, "cache value: out of memory for %llu bytes", (unsigned long long)raw);
        return GQ_ENOMEM;
    }
    const uint8_t *body = buf + GQ_CACHE_HEADER_SIZE;
    gq_status rc = GQ_EFORMAT;
    if (flags & GQ_CACHE_F_LZ4) {
        uint8_t *dst = v->body;
        if ((flags & GQ_CACHE_F_SHUFFLE) && !(dst = tmp = malloc(raw ? raw : 1))) {
            rc = GQ_ENOMEM;
            gq_errf(err, errlen, "cache value: out of memory");
            goto fail;
        }
        int d = LZ4_decompress_safe((const char *)body, (char *)dst, (int)stored, (int)raw);
        if (d < 0 || (uint64_t)d != raw) {
            gq_errf(err, errlen, "cache value: LZ4 body does not decompress to %llu bytes (%d)",
                    (unsigned long long)raw, d);
            goto fail;
        }
    } else {
        memcpy(v->body, body, raw);
    }
    /* The table and meta are never shuffled: parse them from the decompressed bytes. */
    if ((rc = s_parse_table(v, tmp ? tmp : v->body, err, errlen)) != GQ_OK)
        goto fail;
    if (tmp)
        s_shuffle_body(v->body, tmp, (size_t)raw, v, 1);
    v->checksum = XXH3_64bits(v->body, v->body_len);
    if (v->checksum != sum) {
        gq_errf(err, errlen, "cache value: checksum %016llx, header says %016llx",
                (unsigned long long)v->checksum, (unsigned long long)sum);
        rc = GQ_EFORMAT;
        goto fail;
    }
    free(tmp);
    *out = v;
    return GQ_OK;
fail:
    free(tmp);
    gq_cache_val_unref(&v);
    return rc;
}
