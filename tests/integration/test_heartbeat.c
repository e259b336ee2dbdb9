/* A silent worker (SIGSTOP) is dropped after 3 missed heartbeats and its jobs requeued;
 * when it wakes up its late answers are ignored, it re-registers, and every job is still
 * answered exactly once. */
#include <signal.h>
#include <stdio.h>
#include "harness.h"
#include "load.h"

int main(void)
{
    gqt_cluster_t c;
    gqt_cluster_start(&c, 2, 1, 8, 100);
    gqt_load_t load;
    gqt_load_init(&load, c.front, 2, 1500, 16384, 32);
    gqt_load_start(&load);
    while (atomic_load(&load.completed) < 300)
        gqt_sleep_ms(1);
    kill(c.workers[0], SIGSTOP);
    int dropped = 0;
    for (int ms = 0; ms < 3000 && !dropped; ms += 20) {
        gqt_sleep_ms(20);
        dropped = gqt_info(c.front).workers == 1;
        if (dropped)
            printf("stopped worker dropped after ~%d ms (heartbeat 100 ms x 3)\n", ms + 20);
    }
    GQT_CHECK(dropped, "silent worker not dropped within 3 s");
    int before = atomic_load(&load.completed);
    gqt_sleep_ms(300);
    GQT_CHECK(atomic_load(&load.completed) > before || before == 3000,
              "no progress while one worker is stopped");
    kill(c.workers[0], SIGCONT);
    GQT_CHECK(gqt_wait_workers(c.front, 2, 5000) == 0, "woken worker did not re-register");
    gqt_load_join(&load);
    gq_cluster_info_t info = gqt_info(c.front);
    printf("requeued %llu\n", (unsigned long long)info.jobs_requeued);
    gqt_load_expect_all_ok(&load);
    GQT_CHECK(info.jobs_requeued > 0, "stopped worker held no jobs: test proved nothing");
    gqt_cluster_stop(&c);
    printf("PASS\n");
    return 0;
}
