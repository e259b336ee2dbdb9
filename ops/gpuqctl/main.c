/* gpuqctl: operations commands against a running broker.
 *
 *   gpuqctl [--broker EP] [--timeout-ms N] <command> [args]
 *
 * Commands come from a table (name words, handler, argument synopsis, help), Redis-style:
 * adding one is adding a row. Exit status: 0 done, 1 the broker answered with a failure or
 * did not answer, 2 usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gpuq.h"

#define S_DEFAULT_BROKER "tcp://127.0.0.1:5555"

typedef struct {
    gq_client_t *client;
    const char *broker;
    int timeout_ms;
} s_ctx_t;

typedef int (*s_cmd_fn)(s_ctx_t *ctx, int argc, char **argv);

typedef struct {
    const char *name; /* words, space-separated */
    s_cmd_fn fn;
    int min_args, max_args;
    const char *args;
    const char *help;
} s_cmd_t;

static int s_fail(const s_ctx_t *ctx, const char *what, int rc)
{
    fprintf(stderr, "gpuqctl: %s from %s: %s (%s)\n", what, ctx->broker, gq_strerror(rc),
            gq_status_name(rc));
    return 1;
}

/* Upper bound of the latency bucket holding quantile q, in microseconds. */
static double s_quantile_us(const gq_cache_tier_info_t *t, double q)
{
    uint64_t total = 0, cum = 0;
    for (int b = 0; b < t->nlatency; b++)
        total += t->latency[b];
    if (!total)
        return 0;
    for (int b = 0; b < t->nlatency; b++) {
        cum += t->latency[b];
        if ((double)cum >= q * (double)total)
            return (double)(1ull << b);
    }
    return (double)(1ull << (t->nlatency - 1));
}

static double s_ratio(uint64_t num, uint64_t den)
{
    return den ? (double)num / (double)den : 0.0;
}

static void s_print_json(const gq_cache_info_t *ci)
{
    printf("{\"enabled\": %s, \"lookups\": %llu, \"hits\": %llu, \"misses\": %llu, "
           "\"dedup_joined\": %llu, \"uncacheable\": %llu, \"bypassed\": %llu, "
           "\"refreshed\": %llu, \"too_big\": %llu, \"encoded_raw\": %llu, "
           "\"encoded_stored\": %llu, \"encoded_shuffled\": %llu, \"tiers\": [",
           ci->enabled ? "true" : "false", (unsigned long long)ci->lookups,
           (unsigned long long)ci->hits, (unsigned long long)ci->misses,
           (unsigned long long)ci->dedup_joined, (unsigned long long)ci->uncacheable,
           (unsigned long long)ci->bypassed, (unsigned long long)ci->refreshed,
           (unsigned long long)ci->too_big, (unsigned long long)ci->encoded_raw,
           (unsigned long long)ci->encoded_stored, (unsigned long long)ci->encoded_shuffled);
    for (int i = 0; i < ci->ntiers; i++) {
        const gq_cache_tier_info_t *t = &ci->tiers[i];
        printf("%s{\"tier\": \"%s\", \"up\": %s, \"hits\": %llu, \"misses\": %llu, "
               "\"evictions\": %llu, \"expired\": %llu, \"corrupt\": %llu, \"stores\": %llu, "
               "\"errors\": %llu, \"entries\": %llu, \"bytes_raw\": %llu, "
               "\"bytes_stored\": %llu, \"capacity\": %llu, \"compression_ratio\": %.4f, "
               "\"latency_sum_us\": %llu, \"latency_buckets_log2_us\": [",
               i ? ", " : "", gq_cache_source_name(t->tier), t->up ? "true" : "false",
               (unsigned long long)t->hits, (unsigned long long)t->misses,
               (unsigned long long)t->evictions, (unsigned long long)t->expired,
               (unsigned long long)t->corrupt, (unsigned long long)t->stores,
               (unsigned long long)t->errors, (unsigned long long)t->entries,
               (unsigned long long)t->bytes_raw, (unsigned long long)t->bytes_stored,
               (unsigned long long)t->capacity, s_ratio(t->bytes_raw, t->bytes_stored),
               (unsigned long long)t->latency_sum_us);
        for (int b = 0; b < t->nlatency; b++)
            printf("%s%llu", b ? ", " : "", (unsigned long long)t->latency[b]);
        printf("]}");
    }
    printf("]}\n");
}

static void s_print_table(const gq_cache_info_t *ci)
{
    if (!ci->enabled) {
        printf("the broker runs without a result cache\n");
        return;
    }
    printf("%-7s %-4s %10s %10s %10s %6s %9s %8s %7s %10s %10s %6s %8s %8s\n", "tier", "up",
           "entries", "hits", "misses", "hit%", "evicted", "expired", "corrupt", "raw MiB",
           "stored MiB", "ratio", "p50 us", "p99 us");
    for (int i = 0; i < ci->ntiers; i++) {
        const gq_cache_tier_info_t *t = &ci->tiers[i];
        printf("%-7s %-4s %10llu %10llu %10llu %6.1f %9llu %8llu %7llu %10.2f %10.2f %6.2f "
               "%8.0f %8.0f\n",
               gq_cache_source_name(t->tier), t->up ? "yes" : "NO", (unsigned long long)t->entries,
               (unsigned long long)t->hits, (unsigned long long)t->misses,
               100.0 * s_ratio(t->hits, t->hits + t->misses), (unsigned long long)t->evictions,
               (unsigned long long)t->expired, (unsigned long long)t->corrupt,
               (double)t->bytes_raw / 1048576.0, (double)t->bytes_stored / 1048576.0,
               s_ratio(t->bytes_raw, t->bytes_stored), s_quantile_us(t, 0.5),
               s_quantile_us(t, 0.99));
    }
    printf("lookups %llu: hits %llu (%.1f%%), misses %llu; shared runs %llu; uncacheable %llu, "
           "bypassed %llu, refreshed %llu, too big %llu\n",
           (unsigned long long)ci->lookups, (unsigned long long)ci->hits,
           100.0 * s_ratio(ci->hits, ci->hits + ci->misses), (unsigned long long)ci->misses,
           (unsigned long long)ci->dedup_joined, (unsigned long long)ci->uncacheable,
           (unsigned long long)ci->bypassed, (unsigned long long)ci->refreshed,
           (unsigned long long)ci->too_big);
    if (ci->encoded_raw)
        printf("encoder: %.2f MiB -> %.2f MiB (ratio %.2f), %llu values byte-shuffled\n",
               (double)ci->encoded_raw / 1048576.0, (double)ci->encoded_stored / 1048576.0,
               s_ratio(ci->encoded_raw, ci->encoded_stored),
               (unsigned long long)ci->encoded_shuffled);
}

static int s_cache_stats(s_ctx_t *ctx, int argc, char **argv)
{
    int json = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json")) {
            fprintf(stderr, "gpuqctl: cache stats: unknown option %s (only --json)\n", argv[i]);
            return 2;
        }
        json = 1;
    }
    gq_cache_info_t ci;
    int rc = gq_client_cache_info(ctx->client, &ci, ctx->timeout_ms);
    if (rc)
        return s_fail(ctx, "cache stats", rc);
    if (json)
        s_print_json(&ci);
    else
        s_print_table(&ci);
    return 0;
}

static int s_cache_clear(s_ctx_t *ctx, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    int rc = gq_client_cache_clear(ctx->client, ctx->timeout_ms);
    if (rc)
        return s_fail(ctx, "cache clear", rc);
    printf("cache cleared\n");
    return 0;
}

static int s_metrics(s_ctx_t *ctx, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    char *text = NULL;
    int rc = gq_client_metrics(ctx->client, &text, ctx->timeout_ms);
    if (rc)
        return s_fail(ctx, "metrics", rc);
    fputs(text, stdout);
    free(text);
    return 0;
}

static int s_status(s_ctx_t *ctx, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    gq_cluster_info_t info;
    int rc = gq_client_cluster_info(ctx->client, &info, ctx->timeout_ms);
    if (rc)
        return s_fail(ctx, "status", rc);
    printf("workers %d, queued %lld, in flight %lld, done %llu, failed %llu, requeued %llu\n",
           info.workers, (long long)info.queued, (long long)info.inflight,
           (unsigned long long)info.jobs_done, (unsigned long long)info.jobs_failed,
           (unsigned long long)info.jobs_requeued);
    gq_worker_info_t w;
    for (int i = 0; gq_client_worker_info(ctx->client, i, &w) == GQ_OK; i++) {
        printf("  %-24s %-20s credits %u in flight %u done %llu seen %u ms ago\n", w.name,
               w.backends, w.credits, w.inflight, (unsigned long long)w.jobs_done, w.ms_since_seen);
        if (w.devices[0])
            printf("    devices: %s\n", w.devices);
    }
    return 0;
}

/* Prints an admin reply's text; on failure the text (if any) says why. */
static int s_print_text(const s_ctx_t *ctx, const char *what, int rc, char *text)
{
    if (rc && !text)
        return s_fail(ctx, what, rc);
    fputs(text, rc ? stderr : stdout);
    free(text);
    return rc ? 1 : 0;
}

static int s_queues(s_ctx_t *ctx, int argc, char **argv)
{
    int verbose = argc > 0 && !strcmp(argv[0], "--jobs");
    if (argc > 0 && !verbose) {
        fprintf(stderr, "gpuqctl: queues takes only --jobs\n");
        return 2;
    }
    char *text = NULL;
    int rc = gq_client_queues(ctx->client, verbose, &text, ctx->timeout_ms);
    return s_print_text(ctx, "queues", rc, text);
}

static int s_job(s_ctx_t *ctx, int argc, char **argv)
{
    (void)argc;
    char *end;
    unsigned long long id = strtoull(argv[0], &end, 10);
    if (*end || !id) {
        fprintf(stderr, "gpuqctl: job ID: '%s' is not a broker job id\n", argv[0]);
        return 2;
    }
    char *text = NULL;
    int rc = gq_client_job_state(ctx->client, id, &text, ctx->timeout_ms);
    return s_print_text(ctx, "job", rc, text);
}

static int s_models(s_ctx_t *ctx, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    char *text = NULL;
    int rc = gq_client_models(ctx->client, &text, ctx->timeout_ms);
    return s_print_text(ctx, "models", rc, text);
}

static const s_cmd_t s_cmds[] = {
    {"status", s_status, 0, 0, "", "broker counters and workers"},
    {"cache stats", s_cache_stats, 0, 1, "[--json]",
     "result cache per tier: hits, misses, evictions, sizes, compression, lookup latency"},
    {"cache clear", s_cache_clear, 0, 0, "", "empty every tier of the result cache"},
    {"metrics", s_metrics, 0, 0, "",
     "the broker's counters, cache included, as Prometheus text exposition"},
    {"queues", s_queues, 0, 1, "[--jobs]",
     "per class: queued, clients, oldest wait, refused; batching; workers' backlog and "
     "health; --jobs lists every job with its broker id"},
    {"job", s_job, 1, 1, "ID", "one job's state by broker id: queued (position) or running"},
    {"models", s_models, 0, 0, "", "the models in the broker's store: digest, size, loads, inputs"},
};

#define S_NCMDS (sizeof s_cmds / sizeof s_cmds[0])

static void s_usage(FILE *f)
{
    fprintf(f, "usage: gpuqctl [--broker EP] [--timeout-ms N] <command> [args]\n"
               "  --broker EP      broker to ask (default $GPUQ_BROKER or " S_DEFAULT_BROKER ")\n"
               "  --timeout-ms N   how long to wait for the answer (default 5000)\n"
               "commands:\n");
    for (size_t i = 0; i < S_NCMDS; i++)
        fprintf(f, "  %-12s %-9s %s\n", s_cmds[i].name, s_cmds[i].args, s_cmds[i].help);
}

/* Words of argv[0..] matching the command's name; 0 when they do not. */
static int s_match(const s_cmd_t *c, int argc, char **argv)
{
    const char *p = c->name;
    int used = 0;
    while (*p) {
        size_t len = strcspn(p, " ");
        if (used >= argc || strlen(argv[used]) != len || strncmp(argv[used], p, len))
            return 0;
        used++;
        p += len;
        while (*p == ' ')
            p++;
    }
    return used;
}

int main(int argc, char **argv)
{
    s_ctx_t ctx = {NULL, getenv("GPUQ_BROKER"), 5000};
    if (!ctx.broker || !*ctx.broker)
        ctx.broker = S_DEFAULT_BROKER;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            s_usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "gpuqctl: %s needs a value\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--broker")) {
            ctx.broker = argv[++i];
        } else if (!strcmp(argv[i], "--timeout-ms")) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 3600000) {
                fprintf(stderr, "gpuqctl: --timeout-ms %s is not in 1..3600000\n", argv[i]);
                return 2;
            }
            ctx.timeout_ms = (int)v;
        } else {
            fprintf(stderr, "gpuqctl: unknown option %s\n", argv[i]);
            s_usage(stderr);
            return 2;
        }
    }
    const s_cmd_t *cmd = NULL;
    int used = 0;
    for (size_t k = 0; k < S_NCMDS && !cmd; k++)
        if ((used = s_match(&s_cmds[k], argc - i, argv + i)))
            cmd = &s_cmds[k];
    if (!cmd) {
        if (i < argc)
            fprintf(stderr, "gpuqctl: unknown command '%s'\n", argv[i]);
        s_usage(stderr);
        return 2;
    }
    int nargs = argc - i - used;
    if (nargs < cmd->min_args || nargs > cmd->max_args) {
        fprintf(stderr, "gpuqctl: %s takes %s\n", cmd->name, *cmd->args ? cmd->args : "no args");
        return 2;
    }
    char err[256];
    ctx.client = gq_client_new(ctx.broker, NULL, err, sizeof err);
    if (!ctx.client) {
        fprintf(stderr, "gpuqctl: %s\n", err);
        return 1;
    }
    int rc = cmd->fn(&ctx, nargs, argv + i + used);
    gq_client_destroy(&ctx.client);
    return rc;
}
