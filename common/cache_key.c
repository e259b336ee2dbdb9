/* Cache keys: XXH3-128 over a canonical byte stream of everything that decides a job's
 * answer. Integers go in as fixed-width little-endian, strings and lists with their
 * lengths first, so no two different jobs make the same stream. */
#include "cache.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#define XXH_INLINE_ALL /* the streaming state on the stack, and small keys inlined */
#include <xxhash.h>

/* Tags keep the fields of the stream apart (a string can never read as a shape). */
enum {
    S_TAG_STAGE = 0x53,
    S_TAG_PARAM = 0x50,
    S_TAG_DIGEST = 0x44,
    S_TAG_INPUT = 0x49,
};

static void s_u64(XXH3_state_t *st, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    XXH3_128bits_update(st, b, sizeof b);
}

static void s_u8(XXH3_state_t *st, uint8_t v)
{
    XXH3_128bits_update(st, &v, 1);
}

static void s_str(XXH3_state_t *st, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    s_u64(st, n);
    if (n)
        XXH3_128bits_update(st, s, n);
}

/* Floats by bit pattern: -0.0 stays apart from 0.0 (an op can tell them apart: 1/x,
 * x + offset of a -0.0 input), while every NaN is one NaN (payload bits are not chosen by
 * users and no op reads them; the op table refuses NaN in ranges anyway). */
static uint64_t s_double_bits(double f)
{
    if (isnan(f))
        return 0x7ff8000000000000ull;
    uint64_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

static void s_value(XXH3_state_t *st, const gq_value_t *v)
{
    s_u8(st, (uint8_t)v->type);
    switch (v->type) {
    case GQ_PT_INT:
        s_u64(st, (uint64_t)v->i);
        break;
    case GQ_PT_FLOAT:
        s_u64(st, s_double_bits(v->f));
        break;
    case GQ_PT_BOOL:
        s_u8(st, v->i != 0);
        break;
    case GQ_PT_STR:
        s_str(st, v->s);
        break;
    default:
        break;
    }
}

gq_status gq_cache_key(const gq_args_t *stages, int nstages, const uint8_t *digest,
                       size_t digest_len, const gq_cache_input_t *inputs, int ninputs,
                       gq_cache_key_t *out)
{
    if (!stages || nstages <= 0 || ninputs < 0 || (ninputs && !inputs) || !out ||
        digest_len > GQ_CACHE_MAX_DIGEST || (digest_len && !digest))
        return GQ_EINVAL;
    XXH3_state_t st;
    if (XXH3_128bits_reset(&st) != XXH_OK)
        return GQ_EINTERNAL;
    static const char magic[] = "gpuq-cache-key";
    XXH3_128bits_update(&st, magic, sizeof magic - 1);
    s_u64(&st, GQ_CACHE_KEY_VERSION);
    s_u64(&st, (uint64_t)nstages);
    for (int k = 0; k < nstages; k++) {
        const gq_op_spec_t *op = stages[k].op;
        if (!op)
            return GQ_EINVAL;
        s_u8(&st, S_TAG_STAGE);
        s_str(&st, op->name);
        s_u64(&st, (uint64_t)op->nparams);
        /* Names too: a spec that reorders or renames its params must not make old entries
         * answer new meanings. */
        for (int p = 0; p < op->nparams && p < GQ_MAX_PARAMS; p++) {
            s_u8(&st, S_TAG_PARAM);
            s_str(&st, op->params[p].name);
            s_value(&st, &stages[k].v[p]);
        }
    }
    s_u8(&st, S_TAG_DIGEST);
    s_u64(&st, digest_len);
    if (digest_len)
        XXH3_128bits_update(&st, digest, digest_len);
    s_u64(&st, (uint64_t)ninputs);
    for (int i = 0; i < ninputs; i++) {
        const gq_tdesc_t *d = &inputs[i].desc;
        if (d->ndim < 0 || d->ndim > GQ_MAX_DIMS || (inputs[i].nbytes && !inputs[i].data))
            return GQ_EINVAL;
        s_u8(&st, S_TAG_INPUT);
        s_u64(&st, (uint64_t)d->dtype);
        s_u64(&st, (uint64_t)d->ndim);
        for (int k = 0; k < d->ndim; k++)
            s_u64(&st, (uint64_t)d->shape[k]);
        s_u64(&st, inputs[i].nbytes);
        if (inputs[i].nbytes)
            XXH3_128bits_update(&st, inputs[i].data, inputs[i].nbytes);
    }
    XXH128_hash_t h = XXH3_128bits_digest(&st);
    out->lo = h.low64;
    out->hi = h.high64;
    return GQ_OK;
}

int gq_cache_cacheable(const gq_args_t *stages, int nstages)
{
    for (int k = 0; k < nstages; k++)
        if (!stages[k].op || (stages[k].op->flags & GQ_OPF_NONDETERMINISTIC))
            return 0;
    return 1;
}

int gq_cache_key_equal(const gq_cache_key_t *a, const gq_cache_key_t *b)
{
    return a->lo == b->lo && a->hi == b->hi;
}

char *gq_cache_key_hex(const gq_cache_key_t *k, char *buf)
{
    snprintf(buf, 33, "%016llx%016llx", (unsigned long long)k->hi, (unsigned long long)k->lo);
    return buf;
}

const char *gq_tier_name(int tier)
{
    static const char *const names[] = {"none", "memory", "disk", "redis", "shared"};
    return tier >= 0 && tier < GQ_TIER_COUNT ? names[tier] : "none";
}

int gq_cache_lat_bucket(uint64_t us)
{
    int b = 0;
    while (b < GQ_CACHE_LAT_BUCKETS - 1 && us >= ((uint64_t)1 << b))
        b++;
    return b;
}
