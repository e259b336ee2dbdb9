/* gpuq-broker: the job broker as a process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "broker.h"
#include "util.h"

static gq_broker_t *s_broker;

static void s_on_signal(int sig)
{
    (void)sig;
    if (s_broker)
        gq_broker_stop(s_broker);
}

static void s_usage(FILE *f)
{
    fprintf(f, "usage: gpuq-broker [options]\n"
               "  --frontend EP      client endpoint to bind (default tcp://*:5555)\n"
               "  --backend EP       worker endpoint to bind (default tcp://*:5556)\n"
               "  --port N           shorthand: frontend tcp://*:N, backend tcp://*:N+1\n"
               "  --heartbeat-ms N   heartbeat interval to workers (default 1000)\n"
               "  --liveness N       missed heartbeats before a worker is dropped (default 3)\n"
               "  --max-queue N      queued jobs before clients get RESOURCE_EXHAUSTED "
               "(default 100000)\n"
               "  --max-requeues N   times a job may lose its worker before it fails "
               "(default 3)\n"
               "  --drain-ms N       on SIGINT/SIGTERM, wait this long for jobs in flight "
               "(default 5000)\n"
               "  --log LEVEL        error|warn|info|debug (default info; env GQ_LOG)\n");
}

int main(int argc, char **argv)
{
    gq_broker_config_t cfg;
    gq_broker_config_init(&cfg);
    char front[256], back[256];
    gq_log_level_t level;
    gq_log_init("gpuq-broker");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long n = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            s_usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "gpuq-broker: %s needs a value (or is unknown)\n", a);
            s_usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--frontend"))
            cfg.frontend = v;
        else if (!strcmp(a, "--backend"))
            cfg.backend = v;
        else if (!strcmp(a, "--port") && !gq_parse_int(v, 1, 65534, &n)) {
            snprintf(front, sizeof front, "tcp://*:%lld", n);
            snprintf(back, sizeof back, "tcp://*:%lld", n + 1);
            cfg.frontend = front;
            cfg.backend = back;
        } else if (!strcmp(a, "--heartbeat-ms") && !gq_parse_int(v, 10, 600000, &n))
            cfg.heartbeat_ms = (int)n;
        else if (!strcmp(a, "--liveness") && !gq_parse_int(v, 1, 1000, &n))
            cfg.liveness = (int)n;
        else if (!strcmp(a, "--max-queue") && !gq_parse_int(v, 1, 100000000, &n))
            cfg.max_queue = (size_t)n;
        else if (!strcmp(a, "--max-requeues") && !gq_parse_int(v, 0, 1000, &n))
            cfg.max_requeues = (int)n;
        else if (!strcmp(a, "--drain-ms") && !gq_parse_int(v, 0, 3600000, &n))
            cfg.drain_ms = (int)n;
        else if (!strcmp(a, "--log") && !gq_log_level_parse(v, &level))
            gq_log_set_level(level);
        else {
            fprintf(stderr, "gpuq-broker: bad option or value: %s %s\n", a, v);
            s_usage(stderr);
            return 2;
        }
    }
    char err[256];
    s_broker = gq_broker_new(&cfg, err, sizeof err);
    if (!s_broker) {
        fprintf(stderr, "gpuq-broker: %s\n", err);
        return 1;
    }
    gq_on_stop_signals(s_on_signal);
    int rc = gq_broker_run(s_broker);
    gq_broker_t *b = s_broker;
    s_broker = NULL;
    gq_broker_destroy(&b);
    return rc == GQ_OK ? 0 : 1;
}
