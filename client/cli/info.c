/* gpuq info: the broker's counters. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char s_help[] =
    "usage: gpuq info [--broker EP] [--timeout MS]\n"
    "\n"
    "Asks the broker for its workers and job counters: workers registered, jobs queued and\n"
    "in flight, and jobs done, failed and requeued (taken back from lost workers) since it\n"
    "started. --timeout is how long to wait for the answer (default 5000 ms).\n";

int gq_cli_info(const gq_cli_t *cli, int argc, char **argv)
{
    const char *broker = NULL;
    long long timeout = 5000;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(s_help, stdout);
            return GQ_CLI_OK;
        }
        if ((r = gq_cli_opt(cli, argc, argv, &i, "--broker", &v)) != 0) {
            if (r < 0)
                return GQ_CLI_USAGE;
            if (cli->broker)
                return gq_cli_usage(cli, "--broker %s: 'gpuq local' uses its own cluster", v);
            broker = v;
            continue;
        }
        if ((r = gq_cli_opt(cli, argc, argv, &i, "--timeout", &v)) != 0) {
            if (r < 0 || gq_cli_int(cli, "--timeout", v, 1, 3600 * 1000, &timeout) < 0)
                return GQ_CLI_USAGE;
            continue;
        }
        return gq_cli_usage(cli, "unexpected '%s'", argv[i]);
    }
    broker = gq_cli_broker(cli, broker);
    gq_client_t *c = gq_cli_connect(cli, broker, 0);
    if (!c)
        return GQ_CLI_FAILED;
    gq_cluster_info_t ci;
    int st = gq_client_cluster_info(c, &ci, (int)timeout);
    if (st != GQ_OK) {
        gq_client_destroy(&c);
        return gq_cli_fail(cli, "broker '%s' did not answer: %s (%s)", broker, gq_status_name(st),
                           gq_strerror(st));
    }
    printf("broker:    %s\n", broker);
    printf("workers:   %d\n", ci.workers);
    printf("queued:    %lld\n", (long long)ci.queued);
    printf("inflight:  %lld\n", (long long)ci.inflight);
    printf("done:      %llu\n", (unsigned long long)ci.jobs_done);
    printf("failed:    %llu\n", (unsigned long long)ci.jobs_failed);
    printf("requeued:  %llu\n", (unsigned long long)ci.jobs_requeued);
    gq_worker_info_t w;
    for (int i = 0; gq_client_worker_info(c, i, &w) == GQ_OK; i++) {
        if (!i)
            printf("\n%-24s %-16s %8s %8s %10s %8s\n", "WORKER", "BACKENDS", "CREDITS", "INFLIGHT",
                   "DONE", "SEEN MS");
        printf("%-24s %-16s %8u %8u %10llu %8u\n", w.name, w.backends, w.credits, w.inflight,
               (unsigned long long)w.jobs_done, w.ms_since_seen);
    }
    gq_client_destroy(&c);
    return GQ_CLI_OK;
}
