/* gpuq: the command-line client. A table of subcommands, Redis-style: each entry names its
 * handler and a one-line help; `gpuq local CMD` runs CMD against the embedded cluster. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct {
    const char *name;
    gq_cli_fn *handler;
    const char *help;
} s_cmd_t;

static int s_local(const gq_cli_t *cli, int argc, char **argv);

static const s_cmd_t s_cmds[] = {
    {"ops", gq_cli_ops, "list the ops: inputs, dtypes, params (--json for programs)"},
    {"run", gq_cli_run, "run one job on .npy inputs and write its outputs as .npy"},
    {"batch", gq_cli_batch, "run a job on every .npy file of a directory, pipelined"},
    {"info", gq_cli_info, "show the cluster's workers and job counters"},
    {"status", gq_cli_status, "show where a job is (queued: position; running: worker)"},
    {"model", gq_cli_model, "put ONNX models in the broker's store; run one on inputs"},
    {"local", s_local, "run a subcommand on an embedded cluster: gpuq local run ..."},
};

#define S_NCMDS ((int)(sizeof s_cmds / sizeof s_cmds[0]))

static void s_usage(FILE *out)
{
    fprintf(out, "usage: gpuq COMMAND [ARGS] (gpuq COMMAND --help for its options)\n\n");
    for (int i = 0; i < S_NCMDS; i++)
        fprintf(out, "  %-6s %s\n", s_cmds[i].name, s_cmds[i].help);
    fprintf(out, "\nThe broker is --broker EP, else $GPUQ_BROKER, else \"local\" (a broker and "
                 "worker\nstarted inside gpuq). Exit status: 0 ok, 1 failed, 2 usage error.\n");
}

static const s_cmd_t *s_find(const char *name)
{
    for (int i = 0; i < S_NCMDS; i++)
        if (!strcmp(s_cmds[i].name, name))
            return &s_cmds[i];
    return NULL;
}

static int s_dispatch(const char *prefix, const char *broker, int argc, char **argv)
{
    const s_cmd_t *cmd = s_find(argv[0]);
    if (cmd && broker && cmd->handler == s_local) {
        fprintf(stderr, "gpuq local: 'local' cannot be nested\n");
        return GQ_CLI_USAGE;
    }
    if (!cmd) {
        fprintf(stderr, "gpuq: unknown command '%s%s'\n\n", prefix, argv[0]);
        s_usage(stderr);
        return GQ_CLI_USAGE;
    }
    char name[64];
    snprintf(name, sizeof name, "%s%s", prefix, cmd->name);
    gq_cli_t cli = {.name = name, .broker = broker};
    return cmd->handler(&cli, argc, argv);
}

static int s_local(const gq_cli_t *cli, int argc, char **argv)
{
    (void)cli;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(argc < 2 ? stderr : stdout,
                "usage: gpuq local COMMAND [ARGS]\n\n"
                "Runs COMMAND (ops, run, batch, info) against a broker and worker started in\n"
                "this process and stopped when it exits, as --broker local does.\n");
        return argc < 2 ? GQ_CLI_USAGE : GQ_CLI_OK;
    }
    return s_dispatch("local ", "local", argc - 1, argv + 1);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        s_usage(stderr);
        return GQ_CLI_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        if (argc > 2 && strcmp(argv[1], "help") == 0 && s_find(argv[2])) {
            char help[] = "--help";
            char *help_argv[] = {argv[2], help, NULL};
            return s_dispatch("", NULL, 2, help_argv);
        }
        s_usage(stdout);
        return GQ_CLI_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("gpuq 0.1.0\n");
        return GQ_CLI_OK;
    }
    return s_dispatch("", NULL, argc - 1, argv + 1);
}
