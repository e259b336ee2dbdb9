/* gpuq-worker: a compute worker as a process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "util.h"
#include "worker.h"

static gq_worker_t *s_worker;

static void s_on_signal(int sig)
{
    (void)sig;
    if (s_worker)
        gq_worker_stop(s_worker);
}

static void s_usage(FILE *f)
{
    fprintf(f, "usage: gpuq-worker [options]\n"
               "  --broker EP        broker's worker endpoint (default tcp://127.0.0.1:5556)\n"
               "  --name NAME        worker name (default host:pid)\n"
               "  --threads N        compute threads (default: online CPUs)\n"
               "  --onnx-threads N   threads one job's ONNX CPU kernels and GEMMs may use: the\n"
               "                     job's compute thread and N - 1 pool threads shared by all\n"
               "                     jobs (env GQ_THREADS; default: online CPUs / threads, at\n"
               "                     least 1)\n"
               "  --credits N        jobs in flight from the broker (default 4 x threads)\n"
               "  --urgent-threads N more threads that run only realtime and interactive jobs\n"
               "                     (default 1; 0: none)\n"
               "  --bulk-nice N      nice of the other compute threads, so the message path\n"
               "                     and urgent threads get the CPU first (default 5; 0: off)\n"
               "  --heartbeat-ms N   heartbeat interval (default 1000)\n"
               "  --liveness N       silent broker intervals before reconnecting (default 3)\n"
               "  --strict           fail a stage instead of falling back to a lower backend\n"
               "  --backends LIST    backends in priority order: opencl, vulkan, cpu, e.g.\n"
               "                     vulkan,cpu (env GQ_BACKENDS; default: opencl if a GPU\n"
               "                     is found, then cpu)\n"
               "  --cl-device D      OpenCL device: index (over all platforms, as logged at\n"
               "                     start) or name substring\n"
               "  --cl-platform P    OpenCL platform: index or name substring\n"
               "                     (Vulkan's device: env GQ_VK_DEVICE, index or name)\n"
               "  --log LEVEL        error|warn|info|debug (default info; env GQ_LOG)\n");
}

int main(int argc, char **argv)
{
    gq_worker_config_t cfg;
    gq_worker_config_init(&cfg);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cfg.threads = ncpu > 0 ? (int)ncpu : 1;
    gq_log_init("gpuq-worker");
    gq_log_level_t level;
    cfg.backends = getenv("GQ_BACKENDS");
    int onnx_threads = 0; /* 0: GQ_THREADS, else online CPUs / compute threads */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long long n = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            s_usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--strict")) {
            cfg.strict = 1;
            continue;
        }
        const char *v = i + 1 < argc ? argv[++i] : NULL;
        if (!v) {
            fprintf(stderr, "gpuq-worker: %s needs a value (or is unknown)\n", a);
            s_usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--broker"))
            cfg.broker = v;
        else if (!strcmp(a, "--backends"))
            cfg.backends = v;
        else if (!strcmp(a, "--cl-device") && *v)
            gq_backend_config_device(&cfg.backend, v);
        else if (!strcmp(a, "--cl-platform") && *v)
            cfg.backend.platform = v;
        else if (!strcmp(a, "--name"))
            cfg.name = v;
        else if (!strcmp(a, "--threads") && !gq_parse_int(v, 1, 1024, &n))
            cfg.threads = (int)n;
        else if (!strcmp(a, "--onnx-threads") && !gq_parse_int(v, 1, 256, &n))
            onnx_threads = (int)n;
        else if (!strcmp(a, "--urgent-threads") && !gq_parse_int(v, 0, 64, &n))
            cfg.urgent_threads = (int)n;
        else if (!strcmp(a, "--bulk-nice") && !gq_parse_int(v, 0, 19, &n))
            cfg.bulk_nice = (int)n;
        else if (!strcmp(a, "--credits") && !gq_parse_int(v, 1, 65536, &n))
            cfg.credits = (int)n;
        else if (!strcmp(a, "--heartbeat-ms") && !gq_parse_int(v, 10, 600000, &n))
            cfg.heartbeat_ms = (int)n;
        else if (!strcmp(a, "--liveness") && !gq_parse_int(v, 1, 1000, &n))
            cfg.liveness = (int)n;
        else if (!strcmp(a, "--log") && !gq_log_level_parse(v, &level))
            gq_log_set_level(level);
        else {
            fprintf(stderr, "gpuq-worker: bad option or value: %s %s\n", a, v);
            s_usage(stderr);
            return 2;
        }
    }
    cfg.onnx_threads = onnx_threads; /* gq_worker_new sets the kernels' threads */
    char err[256];
    s_worker = gq_worker_new(&cfg, err, sizeof err);
    if (!s_worker) {
        fprintf(stderr, "gpuq-worker: %s\n", err);
        return 1;
    }
    gq_on_stop_signals(s_on_signal);
    int rc = gq_worker_run(s_worker);
    gq_worker_t *w = s_worker;
    s_worker = NULL;
    gq_worker_destroy(&w);
    return rc == GQ_OK ? 0 : 1;
}
