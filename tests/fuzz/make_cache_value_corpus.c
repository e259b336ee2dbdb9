/* Writes the seed corpus of fuzz_cache_value into corpus/cache_value/: encoded cache values
 * of several shapes, stored raw, LZ4, and LZ4 after a byte shuffle. Rebuild the seeds when
 * the value format changes (common/cache_value.c):
 *
 *   cc -std=c11 -D_GNU_SOURCE -Icommon -I<build>/proto tests/fuzz/make_cache_value_corpus.c \
 *      <build>/libgpuq-core.a -llz4 -lxxhash -lzmq -lprotobuf-c -lm -o make_cache_value_corpus
 *   ./make_cache_value_corpus tests/fuzz/corpus/cache_value
 */
#include "cache.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_dir;
static int s_failed;

static void s_write(const char *name, const gq_cache_val_t *v, gq_shuffle_t sh)
{
    uint8_t *enc;
    size_t len;
    gq_cache_key_t key = {0x0123456789abcdefull, 0xfedcba9876543210ull};
    if (!v || gq_cache_encode(v, &key, sh, &enc, &len, NULL) != GQ_OK) {
        fprintf(stderr, "make_cache_value_corpus: %s: cannot encode\n", name);
        s_failed = 1;
        return;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(enc, 1, len, f) != len) {
        perror(path);
        s_failed = 1;
    }
    if (f)
        fclose(f);
    free(enc);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_cache_value_corpus DIR\n");
        return 2;
    }
    s_dir = argv[1];
    static float smooth[2048], noise[512];
    uint32_t r = 1;
    for (int i = 0; i < 2048; i++)
        smooth[i] = 20.0f * log10f(1.0f + (float)(i % 128) * 0.3f) + (float)(i / 128) * 0.1f;
    for (int i = 0; i < 512; i++) {
        r = r * 1664525u + 1013904223u;
        noise[i] = (float)(r >> 8) / 65536.0f;
    }
    int32_t ints[6] = {1, 2, 3, -1, -2, -3};
    double scalar = 2.5;
    int64_t s_mel[2] = {16, 128}, s_n[1] = {512}, s_i[2] = {2, 3}, s_e[2] = {4, 0};
    gq_tdesc_t d[4];
    gq_tdesc_init(&d[0], GQ_F32, s_mel, 2);
    gq_tdesc_init(&d[1], GQ_F32, s_n, 1);
    gq_tdesc_init(&d[2], GQ_I32, s_i, 2);
    gq_tdesc_init(&d[3], GQ_F64, NULL, 0);
    const void *p[4] = {smooth, noise, ints, &scalar};
    size_t nb[4] = {sizeof smooth, sizeof noise, sizeof ints, sizeof scalar};
    const char *meta[] = {"worker-1", "cpu", "opencl"};

    gq_cache_val_t *v = gq_cache_val_new(d, p, nb, 1, meta, 2);
    s_write("mel_shuffled", v, GQ_SHUFFLE_ON);
    s_write("mel_lz4", v, GQ_SHUFFLE_OFF);
    gq_cache_val_unref(&v);
    v = gq_cache_val_new(&d[1], &p[1], &nb[1], 1, NULL, 0);
    s_write("noise_raw", v, GQ_SHUFFLE_OFF);
    gq_cache_val_unref(&v);
    v = gq_cache_val_new(d, p, nb, 4, meta, 3);
    s_write("four_tensors", v, GQ_SHUFFLE_AUTO);
    gq_cache_val_unref(&v);
    v = gq_cache_val_new(&d[2], &p[2], &nb[2], 2, NULL, 0);
    s_write("small_raw", v, GQ_SHUFFLE_AUTO);
    gq_cache_val_unref(&v);
    v = gq_cache_val_new(NULL, NULL, NULL, 0, NULL, 0);
    s_write("no_tensors", v, GQ_SHUFFLE_AUTO);
    gq_cache_val_unref(&v);
    gq_tdesc_t e;
    gq_tdesc_init(&e, GQ_F32, s_e, 2);
    const void *ep[1] = {smooth};
    size_t enb[1] = {0};
    v = gq_cache_val_new(&e, ep, enb, 1, meta, 1);
    s_write("empty_tensor", v, GQ_SHUFFLE_AUTO);
    gq_cache_val_unref(&v);
    return s_failed;
}
