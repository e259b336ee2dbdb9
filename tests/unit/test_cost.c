/* The learned cost table: averaging while warm, clipping of outliers, convergence after a
 * real change, signatures by size bucket, the mean. */
#include <math.h>
#include <stdio.h>
#include "cost.h"
#include "check.h"

int main(void)
{
    gq_cost_t *c = gq_cost_new();
    CHECK(c && gq_cost_get(c, 42) == 0 && gq_cost_mean(c) == 0, "empty");
    /* Warm: the first samples are averaged. */
    gq_cost_learn(c, 42, 100);
    gq_cost_learn(c, 42, 300);
    CHECK(fabs(gq_cost_get(c, 42) - 200) < 1e-9, "mean of two: %g", gq_cost_get(c, 42));
    gq_cost_learn(c, 42, 200);
    gq_cost_learn(c, 42, 200);
    CHECK(fabs(gq_cost_get(c, 42) - 200) < 1e-9, "mean of four: %g", gq_cost_get(c, 42));
    /* One stalled run (100x) moves the estimate by at most alpha x (4x - 1) = 60 %. */
    gq_cost_learn(c, 42, 20000);
    double e = gq_cost_get(c, 42);
    CHECK(e > 200 && e <= 200 * (1 + 0.2 * 3) + 1e-9, "after an outlier: %g", e);
    /* A real slowdown to 1000 is reached within ~20 runs. */
    for (int i = 0; i < 20; i++)
        gq_cost_learn(c, 42, 1000);
    e = gq_cost_get(c, 42);
    CHECK(fabs(e - 1000) < 50, "converged to %g, want ~1000", e);
    /* Negative and NaN samples are ignored. */
    gq_cost_learn(c, 42, -5);
    gq_cost_learn(c, 42, NAN);
    CHECK(fabs(gq_cost_get(c, 42) - e) < 1e-9, "bad samples changed the estimate");
    /* Other signatures are apart; the mean covers every sample. */
    CHECK(gq_cost_get(c, 43) == 0, "unrelated signature");
    CHECK(gq_cost_mean(c) > 0, "mean %g", gq_cost_mean(c));
    /* Size buckets: same bucket for 3000 and 4000 bytes (2^11..2^12), apart for 5000. */
    uint64_t h = 0x1234;
    CHECK(gq_cost_sig(h, 3000) == gq_cost_sig(h, 4000), "same bucket");
    CHECK(gq_cost_sig(h, 3000) != gq_cost_sig(h, 5000), "next bucket");
    CHECK(gq_cost_sig(h, 3000) != gq_cost_sig(h + 1, 3000), "other ops");
    CHECK(gq_cost_sig(0, 0) != 0, "never 0");
    gq_cost_destroy(&c);
    CHECK(!c, "destroy nulls");
    gq_cost_destroy(&c);
    printf("test_cost: %d checks, %d failed\n", s_checks, s_failed);
    return s_failed ? 1 : 0;
}
