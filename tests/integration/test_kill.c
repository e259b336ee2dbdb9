/* SIGKILL a worker mid-stream: every job is still answered exactly once, right. */
#include <signal.h>
#include <stdio.h>
#include "harness.h"
#include "load.h"

int main(void)
{
    gqt_cluster_t c;
    gqt_cluster_start(&c, 2, 1, 8, 200);
    gqt_load_t load;
    /* 256 KiB per input: jobs are in flight long enough to lose some. */
    gqt_load_init(&load, c.front, 4, 600, 65536, 32);
    gqt_load_start(&load);
    while (atomic_load(&load.completed) < 600)
        gqt_sleep_ms(1);
    kill(c.workers[0], SIGKILL);
    gqt_wait(c.workers[0], 5000);
    c.workers[0] = 0;
    printf("killed worker 0 after %d jobs\n", atomic_load(&load.completed));
    gqt_load_join(&load);
    gq_cluster_info_t info = gqt_info(c.front);
    printf("requeued %llu workers %d\n", (unsigned long long)info.jobs_requeued, info.workers);
    gqt_load_expect_all_ok(&load);
    GQT_CHECK(info.jobs_requeued > 0, "the killed worker held no jobs: test proved nothing");
    GQT_CHECK(info.jobs_done == 2400, "broker answered %llu jobs",
              (unsigned long long)info.jobs_done);
    GQT_CHECK(info.workers == 1, "dead worker still registered (%d workers)", info.workers);
    gqt_cluster_stop(&c);
    printf("PASS\n");
    return 0;
}
