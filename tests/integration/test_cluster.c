/* 10,000 checked jobs from 4 client threads through a real broker and two real worker
 * processes over tcp on 127.0.0.1. */
#include <stdio.h>
#include <string.h>
#include "harness.h"
#include "load.h"

int main(void)
{
    gqt_cluster_t c;
    gqt_cluster_start(&c, 2, 1, 4, 1000);
    gqt_load_t load;
    gqt_load_init(&load, c.front, 4, 2500, 16, 128);
    gqt_load_run(&load);
    gqt_load_expect_all_ok(&load);
    gq_cluster_info_t info = gqt_info(c.front);
    GQT_CHECK(info.jobs_done == 10000 && info.jobs_failed == 0 && info.queued == 0 &&
                  info.inflight == 0,
              "broker counts done %llu failed %llu queued %lld inflight %lld",
              (unsigned long long)info.jobs_done, (unsigned long long)info.jobs_failed,
              (long long)info.queued, (long long)info.inflight);
    {
        /* The per-worker counts add up to the total, and both workers took jobs. */
        char err[256];
        gq_client_t *cl = gq_client_new(c.front, NULL, err, sizeof err);
        GQT_CHECK(cl && gq_client_cluster_info(cl, &info, 5000) == GQ_OK, "info");
        gq_worker_info_t w;
        uint64_t sum = 0;
        for (int i = 0; gq_client_worker_info(cl, i, &w) == GQ_OK; i++) {
            printf("worker %s: %llu jobs\n", w.name, (unsigned long long)w.jobs_done);
            GQT_CHECK(w.jobs_done > 0, "worker %s took no jobs", w.name);
            sum += w.jobs_done;
        }
        GQT_CHECK(sum == 10000, "workers' counts add up to %llu", (unsigned long long)sum);
        gq_client_destroy(&cl);
    }
    gqt_cluster_stop(&c);
    printf("PASS\n");
    return 0;
}
