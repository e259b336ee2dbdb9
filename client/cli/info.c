/* gpuq info: the broker's counters. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char s_help[] =
    "usage: gpuq info [--broker EP] [--timeout MS]\n"
    "\n"
    "Asks the broker for its workers and job counters: workers registered, jobs queued and\n"
    "in flight, and jobs done, failed and requeued (taken back from lost workers) since it\n"
    "started. --timeout is how long to wait for the answer (default 5000 ms).\n";

/* --broker EP and --timeout MS at argv[*i]: 1 taken, 0 not these, -1 usage error (said). */
static int s_server_opt(const gq_cli_t *cli, int argc, char **argv, int *i, const char **broker,
                        long long *timeout)
{
    const char *v;
    int r;
    if ((r = gq_cli_opt(cli, argc, argv, i, "--broker", &v)) != 0) {
        if (r < 0)
            return -1;
        if (cli->broker) {
            gq_cli_usage(cli, "--broker %s: 'gpuq local' uses its own cluster", v);
            return -1;
        }
        *broker = v;
        return 1;
    }
    if ((r = gq_cli_opt(cli, argc, argv, i, "--timeout", &v)) != 0)
        return r < 0 || gq_cli_int(cli, "--timeout", v, 1, 3600 * 1000, timeout) < 0 ? -1 : 1;
    return 0;
}

int gq_cli_info(const gq_cli_t *cli, int argc, char **argv)
{
    const char *broker = NULL;
    long long timeout = 5000;
    for (int i = 1; i < argc; i++) {
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(s_help, stdout);
            return GQ_CLI_OK;
        }
        if ((r = s_server_opt(cli, argc, argv, &i, &broker, &timeout)) != 0) {
            if (r < 0)
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
        if (w.devices[0])
            printf("  devices: %s\n", w.devices);
    }
    gq_client_destroy(&c);
    return GQ_CLI_OK;
}

static const char s_status_help[] =
    "usage: gpuq status ID [--broker EP] [--timeout MS]\n"
    "\n"
    "Shows where a job is: queued (class, position in dispatch order, how long it waited,\n"
    "time left to its deadline) or running (on which worker, for how long). ID is the\n"
    "broker's job id, as `gpuqctl queues --jobs` lists them. A job already answered is not\n"
    "known any more.\n";

int gq_cli_status(const gq_cli_t *cli, int argc, char **argv)
{
    const char *broker = NULL;
    long long timeout = 5000, id = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(s_status_help, stdout);
            return GQ_CLI_OK;
        }
        if ((r = s_server_opt(cli, argc, argv, &i, &broker, &timeout)) != 0) {
            if (r < 0)
                return GQ_CLI_USAGE;
            continue;
        }
        if (id || gq_cli_int(cli, "ID", argv[i], 1, INT64_MAX, &id) < 0)
            return gq_cli_usage(cli, "unexpected '%s'", argv[i]);
    }
    if (!id)
        return gq_cli_usage(cli, "status needs a job ID");
    broker = gq_cli_broker(cli, broker);
    gq_client_t *c = gq_cli_connect(cli, broker, 0);
    if (!c)
        return GQ_CLI_FAILED;
    char *text = NULL;
    int st = gq_client_job_state(c, (uint64_t)id, &text, (int)timeout);
    gq_client_destroy(&c);
    if (text)
        fputs(text, st ? stderr : stdout);
    free(text);
    if (st != GQ_OK && st != GQ_EINVAL)
        return gq_cli_fail(cli, "broker '%s' did not answer: %s (%s)", broker, gq_status_name(st),
                           gq_strerror(st));
    return st ? GQ_CLI_FAILED : GQ_CLI_OK;
}
