/* gq_map against a reference table under random inserts, replaces and removals. Keys come
 * from a narrow range so probe runs collide and backward-shift deletion is exercised. */
#include <stdio.h>
#include <stdlib.h>
#include "map.h"

#define KEYS 5000

static uint64_t s_rng = 88172645463325252ULL;

static uint64_t s_next(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

int main(void)
{
    static void *ref[KEYS + 1];
    gq_map_t *m = gq_map_new();
    if (!m || gq_map_put(m, 0, m) != -1 || gq_map_get(m, 0)) {
        fprintf(stderr, "FAIL: key 0 must be refused\n");
        return 1;
    }
    size_t live = 0;
    for (int round = 0; round < 1000000; round++) {
        uint64_t k = 1 + s_next() % KEYS;
        /* Spread keys over the hash space too, not only small integers. */
        uint64_t key = k * 0x9E3779B97F4A7C15ULL;
        if (gq_map_get(m, key) != ref[k]) {
            fprintf(stderr, "FAIL: round %d key %llu: get mismatch\n", round,
                    (unsigned long long)k);
            return 1;
        }
        if (s_next() % 3) {
            void *v = (void *)(uintptr_t)(s_next() | 1);
            if (gq_map_put(m, key, v)) {
                fprintf(stderr, "FAIL: put failed\n");
                return 1;
            }
            live += !ref[k];
            ref[k] = v;
        } else {
            if (gq_map_take(m, key) != ref[k]) {
                fprintf(stderr, "FAIL: round %d: take returned the wrong value\n", round);
                return 1;
            }
            live -= !!ref[k];
            ref[k] = NULL;
        }
        if (gq_map_size(m) != live) {
            fprintf(stderr, "FAIL: round %d: size %zu, want %zu\n", round, gq_map_size(m), live);
            return 1;
        }
    }
    gq_map_destroy(&m);
    if (m) {
        fprintf(stderr, "FAIL: destroy did not null the pointer\n");
        return 1;
    }
    printf("map: 1000000 random operations match the reference\n");
    return 0;
}
