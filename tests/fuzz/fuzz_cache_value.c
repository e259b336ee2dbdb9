/* fuzz-iterations: 200000
 *
 * gq_cache_decode on arbitrary bytes: what a corrupt disk or Redis entry can hold. The
 * whole input is the encoded value (48-byte header, then the body, raw or LZ4). Decoded
 * bodies are capped at 1 MiB so that a header claiming gigabytes costs nothing.
 *
 * tests/fuzz/make_cache_value_corpus.c writes valid values (raw, LZ4, LZ4 + shuffle; empty,
 * scalar, several tensors, provenance strings) as seeds. What the decoder accepts must be
 * self-consistent: every descriptor checks, every tensor byte is readable and 64-byte
 * aligned, the checksum matches, and the value encoded again decodes to the same tensors.
 * What it refuses must say why and leave nothing behind (ASan and LeakSanitizer watch). */
#include "cache.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned s_sink; /* keeps the reads of every decoded byte */

static void s_same(const gq_cache_val_t *a, const gq_cache_val_t *b)
{
    if (gq_cache_val_count(a) != gq_cache_val_count(b) ||
        gq_cache_val_meta_count(a) != gq_cache_val_meta_count(b))
        abort();
    for (int i = 0; i < gq_cache_val_meta_count(a); i++)
        if (strcmp(gq_cache_val_meta(a, i), gq_cache_val_meta(b, i)))
            abort();
    for (int i = 0; i < gq_cache_val_count(a); i++)
        if (!gq_tdesc_equal(gq_cache_val_desc(a, i), gq_cache_val_desc(b, i)) ||
            gq_cache_val_nbytes(a, i) != gq_cache_val_nbytes(b, i) ||
            memcmp(gq_cache_val_data(a, i), gq_cache_val_data(b, i), gq_cache_val_nbytes(a, i)))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size heap copy: a read past the end hits an ASan redzone. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        abort();
    memcpy(buf, data, size);
    gq_cache_val_t *v = NULL;
    char err[GQ_ERRLEN];
    err[0] = 0;
    gq_status rc = gq_cache_decode(buf, size, NULL, (size_t)1 << 20, &v, err, sizeof err);
    if (rc != GQ_OK) {
        if (v || !err[0] || (rc != GQ_EFORMAT && rc != GQ_ENOMEM))
            abort();
        free(buf);
        return 0;
    }
    if (!v || gq_cache_val_verify(v) || gq_cache_val_count(v) > GQ_MAX_OUTPUTS)
        abort();
    unsigned sum = 0;
    for (int i = 0; i < gq_cache_val_count(v); i++) {
        size_t nb;
        if (gq_tdesc_check(gq_cache_val_desc(v, i), NULL, &nb) != GQ_OK ||
            nb != gq_cache_val_nbytes(v, i) || (uintptr_t)gq_cache_val_data(v, i) % GQ_CACHE_ALIGN)
            abort();
        const uint8_t *p = gq_cache_val_data(v, i);
        for (size_t k = 0; k < nb; k++)
            sum += p[k];
    }
    for (int i = 0; i < gq_cache_val_meta_count(v); i++)
        sum += (unsigned)strlen(gq_cache_val_meta(v, i));
    uint8_t *enc;
    size_t len;
    gq_cache_key_t key = {1, 2};
    if (gq_cache_encode(v, &key, GQ_SHUFFLE_AUTO, &enc, &len, NULL) != GQ_OK)
        abort();
    gq_cache_val_t *w = NULL;
    if (gq_cache_decode(enc, len, &key, (size_t)1 << 20, &w, err, sizeof err) != GQ_OK)
        abort();
    s_same(v, w);
    free(enc);
    gq_cache_val_unref(&w);
    gq_cache_val_unref(&v);
    free(buf);
    s_sink += sum;
    return 0;
}
