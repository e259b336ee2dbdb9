#include "cost.h"

#include <stdlib.h>
#include "map.h"

#define S_WARM 4    /* samples averaged before smoothing starts */
#define S_ALPHA 0.2 /* weight of a new sample */
#define S_CLIP 4.0  /* a sample counts as at most S_CLIP x (at least 1/S_CLIP x) the estimate */

typedef struct {
    double est;
    uint32_t n;
} s_entry_t;

struct gq_cost {
    gq_map_t *map;
    double mean;
    uint64_t n;
};

gq_cost_t *gq_cost_new(void)
{
    gq_cost_t *self = calloc(1, sizeof *self);
    if (self && !(self->map = gq_map_new())) {
        free(self);
        return NULL;
    }
    return self;
}

static void s_free(uint64_t key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    free(value);
}

void gq_cost_destroy(gq_cost_t **self_p)
{
    gq_cost_t *self = *self_p;
    if (!self)
        return;
    gq_map_each(self->map, s_free, NULL);
    gq_map_destroy(&self->map);
    free(self);
    *self_p = NULL;
}

void gq_cost_learn(gq_cost_t *self, uint64_t sig, double us)
{
    if (!self || !(us >= 0))
        return;
    s_entry_t *e = gq_map_get(self->map, sig ? sig : 1);
    if (!e) {
        if (!(e = calloc(1, sizeof *e)) || gq_map_put(self->map, sig ? sig : 1, e)) {
            free(e);
            return;
        }
    }
    if (e->n < S_WARM) {
        e->est = (e->est * e->n + us) / (e->n + 1);
    } else {
        double lo = e->est / S_CLIP, hi = e->est * S_CLIP;
        double x = us < lo ? lo : us > hi ? hi : us;
        e->est += S_ALPHA * (x - e->est);
    }
    e->n++;
    self->n++;
    self->mean += (us - self->mean) / (double)(self->n < 1000 ? self->n : 1000);
}

double gq_cost_get(const gq_cost_t *self, uint64_t sig)
{
    const s_entry_t *e = self ? gq_map_get(self->map, sig ? sig : 1) : NULL;
    return e ? e->est : 0;
}

double gq_cost_mean(const gq_cost_t *self)
{
    return self ? self->mean : 0;
}

uint64_t gq_cost_sig(uint64_t ops_hash, uint64_t in_bytes)
{
    int bucket = 0;
    while (in_bytes >>= 1)
        bucket++;
    uint64_t k = ops_hash ^ (0x9e3779b97f4a7c15ULL * ((uint64_t)bucket + 1u));
    return k ? k : 1;
}
