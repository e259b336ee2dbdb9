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

static int s_class(const char *s, size_t len)
{
    static const char *const names[] = {"realtime", "interactive", "batch", "background"};
    for (int c = 0; c < 4; c++)
        if (strlen(names[c]) == len && !strncmp(s, names[c], len))
            return c;
    return -1;
}

/* "CLASS=N" -> class index and value; 1 when both are good. */
static int s_class_value(const char *v, long long min, long long max, int *cls, long long *n)
{
    const char *eq = strchr(v, '=');
    return eq && (*cls = s_class(v, (size_t)(eq - v))) >= 0 && !gq_parse_int(eq + 1, min, max, n);
}

static void s_usage(FILE *f)
{
    fprintf(f, "usage: gpuq-broker [options]\n"
               "  --frontend EP      client endpoint to bind (default tcp://*:5555)\n"
               "  --backend EP       worker endpoint to bind (default tcp://*:5556)\n"
               "  --port N           shorthand: frontend tcp://*:N, backend tcp://*:N+1\n"
               "  --heartbeat-ms N   heartbeat interval to workers (default 1000)\n"
               "  --liveness N       missed heartbeats before a worker is dropped (default 3)\n"
               "scheduler (docs/scheduler.md):\n"
               "  --max-queue N      queued jobs before clients get RESOURCE_EXHAUSTED "
               "(default 100000)\n"
               "  --class-max C=N    bound of class C (realtime|interactive|batch|background)\n"
               "  --client-share PCT most of a class's bound one client may hold (default 50)\n"
               "  --aging C=S        a job waiting S seconds in class C moves up one class\n"
               "                     (defaults batch=60, background=30; 0 = never)\n"
               "  --aging-top C      highest class aging reaches (default interactive)\n"
               "  --reserve-credits N  per worker, kept for realtime/interactive jobs "
               "(default 1)\n"
               "  --batch-max N      jobs stacked per run of batchable ops (default 32; 1 = "
               "off)\n"
               "  --batch-delay-us N how long a partial batch may wait to fill (default 0)\n"
               "  --batch-mb N       most stacked input per batch (default 16)\n"
               "  --batch-run-us N   most measured compute per batch run (default 2000; 0: "
               "none)\n"
               "  --batch OP=MAX[:DELAY_US[:P1/P2..]]  per-op rule, with preferred sizes\n"
               "  --admit-by-cost    refuse jobs that cannot meet their deadline given the "
               "measured costs\n"
               "  --max-requeues N   times a job may lose its worker before it fails "
               "(default 3)\n"
               "  --drain-ms N       on SIGINT/SIGTERM, wait this long for jobs in flight "
               "(default 5000)\n"
               "  --log LEVEL        error|warn|info|debug (default info; env GQ_LOG)\n"
               "models (docs/onnx.md): `gpuq model put` stores them, onnx.run jobs name them:\n"
               "  --model-dir DIR    keep stored models as files in DIR, reloaded at start\n"
               "  --model-store-mb N most bytes of models stored (default 1024)\n"
               "  --model-load-ms N  routing cost of a worker that must first load the job's "
               "model\n                     (default 50: jobs stay with workers that hold it)\n"
               "result cache (docs/cache.md); on, in memory, unless --no-cache:\n"
               "  --no-cache               no result cache at all (overrides the others)\n"
               "  --cache-mem-mb N         memory tier budget (default 256; 0 = no memory tier)\n"
               "  --cache-evict P          memory tier eviction: slru (default) or lru\n"
               "  --cache-lmdb PATH        disk tier: LMDB environment in directory PATH\n"
               "  --cache-lmdb-mb N        disk tier cap on stored bytes (default 1024)\n"
               "  --cache-redis ADDR       Redis tier shared by brokers: host:port or "
               "tcp://host:port\n"
               "  --cache-redis-timeout-ms N  per Redis command (default 200)\n"
               "  --cache-ttl-s N          default lifetime of entries (default 0 = none)\n"
               "  --cache-max-value-mb N   results over this size are not stored (default 64)\n"
               "  --cache-shuffle M        byte-shuffle floats before LZ4: auto (default), on, "
               "off\n");
}

int main(int argc, char **argv)
{
    gq_broker_config_t cfg;
    gq_broker_config_init(&cfg);
    char front[256], back[256];
    gq_log_level_t level;
    gq_log_init("gpuq-broker");
    int mem_given = 0, c;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long n = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            s_usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--no-cache")) {
            cfg.cache.enabled = 0;
            continue;
        }
        if (!strcmp(a, "--admit-by-cost")) {
            cfg.admit_by_cost = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "gpuq-broker: %s needs a value (or is unknown)\n", a);
            s_usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--cache-mem-mb"))
            mem_given = 1;
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
            cfg.sched.max_queue = (size_t)n;
        else if (!strcmp(a, "--class-max") && s_class_value(v, 1, 100000000, &c, &n))
            cfg.sched.max_class[c] = (size_t)n;
        else if (!strcmp(a, "--client-share") && !gq_parse_int(v, 1, 100, &n))
            cfg.sched.client_share = (double)n / 100.0;
        else if (!strcmp(a, "--aging") && s_class_value(v, 0, 86400 * 365, &c, &n))
            cfg.sched.aging_us[c] = (uint64_t)n * 1000000u;
        else if (!strcmp(a, "--aging-top") && (c = s_class(v, strlen(v))) >= 0)
            cfg.sched.aging_top = c;
        else if (!strcmp(a, "--model-dir") && *v)
            cfg.model_dir = v;
        else if (!strcmp(a, "--model-store-mb") && !gq_parse_int(v, 1, 1 << 20, &n))
            cfg.model_store_bytes = (uint64_t)n << 20;
        else if (!strcmp(a, "--model-load-ms") && !gq_parse_int(v, 0, 3600000, &n))
            cfg.model_load_us = (double)n * 1000.0;
        else if (!strcmp(a, "--reserve-credits") && !gq_parse_int(v, 0, 65536, &n))
            cfg.reserve_credits = (int)n;
        else if (!strcmp(a, "--batch-max") && !gq_parse_int(v, 1, GQ_WIRE_MAX_BATCH, &n))
            cfg.batch.max = (uint32_t)n;
        else if (!strcmp(a, "--batch-delay-us") && !gq_parse_int(v, 0, 10000000, &n))
            cfg.batch.delay_us = (uint32_t)n;
        else if (!strcmp(a, "--batch-run-us") && !gq_parse_int(v, 0, 10000000, &n))
            cfg.batch_run_us = (uint64_t)n;
        else if (!strcmp(a, "--batch-mb") && !gq_parse_int(v, 1, 4096, &n))
            cfg.batch_bytes = (uint64_t)n << 20;
        else if (!strcmp(a, "--batch") && cfg.nbatch_rules < GQ_BROKER_MAX_BATCH_RULES) {
            char err[256];
            if (gq_broker_batch_parse(v, &cfg.batch_rules[cfg.nbatch_rules], err, sizeof err)) {
                fprintf(stderr, "gpuq-broker: --batch %s: %s\n", v, err);
                return 2;
            }
            cfg.nbatch_rules++;
        } else if (!strcmp(a, "--max-requeues") && !gq_parse_int(v, 0, 1000, &n))
            cfg.max_requeues = (int)n;
        else if (!strcmp(a, "--drain-ms") && !gq_parse_int(v, 0, 3600000, &n))
            cfg.drain_ms = (int)n;
        else if (!strcmp(a, "--log") && !gq_log_level_parse(v, &level))
            gq_log_set_level(level);
        else if (!strcmp(a, "--cache-mem-mb") && !gq_parse_int(v, 0, 1 << 20, &n))
            cfg.cache.mem_bytes = (size_t)n << 20;
        else if (!strcmp(a, "--cache-evict") && (!strcmp(v, "slru") || !strcmp(v, "lru")))
            cfg.cache.mem_policy = !strcmp(v, "lru") ? GQ_EVICT_LRU : GQ_EVICT_SLRU;
        else if (!strcmp(a, "--cache-lmdb") && *v)
            cfg.cache.lmdb_path = v;
        else if (!strcmp(a, "--cache-lmdb-mb") && !gq_parse_int(v, 1, 1 << 24, &n))
            cfg.cache.lmdb_bytes = (size_t)n << 20;
        else if (!strcmp(a, "--cache-redis") && *v)
            cfg.cache.redis = v;
        else if (!strcmp(a, "--cache-redis-timeout-ms") && !gq_parse_int(v, 1, 60000, &n))
            cfg.cache.redis_timeout_ms = (int)n;
        else if (!strcmp(a, "--cache-ttl-s") && !gq_parse_int(v, 0, 10LL * 365 * 86400, &n))
            cfg.cache.ttl_ms = (uint64_t)n * 1000u;
        else if (!strcmp(a, "--cache-max-value-mb") && !gq_parse_int(v, 1, 1024, &n))
            cfg.cache.max_value = (size_t)n << 20;
        else if (!strcmp(a, "--cache-shuffle") &&
                 (!strcmp(v, "auto") || !strcmp(v, "on") || !strcmp(v, "off")))
            cfg.cache.shuffle = !strcmp(v, "on")    ? GQ_SHUFFLE_ON
                                : !strcmp(v, "off") ? GQ_SHUFFLE_OFF
                                                    : GQ_SHUFFLE_AUTO;
        else {
            fprintf(stderr, "gpuq-broker: bad option or value: %s %s\n", a, v);
            s_usage(stderr);
            return 2;
        }
    }
    /* The result cache is on by default with a 256 MiB memory tier (--cache-mem-mb 0: no
     * memory tier; --no-cache: none at all). */
    if (!mem_given)
        cfg.cache.mem_bytes = (size_t)256 << 20;
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
