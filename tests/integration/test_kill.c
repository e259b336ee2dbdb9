/* SIGKILL a worker mid-stream: every job is still answered exactly once, right. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "harness.h"
#include "load.h"

int main(void)
{
    gqt_cluster_t c;
    gqt_cluster_start(&c, 2, 1, 8, 200);
    gqt_load_t load;
    memset(&load, 0, sizeof load);
    load.front = c.front;
    load.nthreads = 4;
    load.jobs_per_thread = 600;
    load.elems = 65536; /* 256 KiB per input: jobs are in flight long enough to lose some */
    load.window = 32;
    gqt_load_start(&load);
    while (atomic_load(&load.completed) < 600)
        gqt_sleep_ms(1);
    kill(c.workers[0], SIGKILL);
    gqt_wait(c.workers[0], 5000);
    c.workers[0] = 0;
    printf("killed worker 0 after %d jobs\n", atomic_load(&load.completed));
    gqt_load_join(&load);
    gq_cluster_info_t info = gqt_info(c.front);
    printf("jobs ok %d failed %d wrong %d unmatched %llu requeued %llu workers %d\n", load.ok,
           load.failed, load.wrong, (unsigned long long)load.unmatched,
           (unsigned long long)info.jobs_requeued, info.workers);
    GQT_CHECK(load.ok == 2400 && !load.failed && !load.wrong, "%s", load.first_error);
    GQT_CHECK(load.unmatched == 0, "%llu duplicate answers", (unsigned long long)load.unmatched);
    GQT_CHECK(info.jobs_requeued > 0, "the killed worker held no jobs: test proved nothing");
    GQT_CHECK(info.jobs_done == 2400, "broker answered %llu jobs",
              (unsigned long long)info.jobs_done);
    GQT_CHECK(info.workers == 1, "dead worker still registered (%d workers)", info.workers);
    gqt_cluster_stop(&c);
    printf("PASS\n");
    return 0;
}
