/* gpuq model: put models in the broker's store, run them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char s_help[] =
    "usage: gpuq model put FILE.onnx ... [--broker EP]\n"
    "       gpuq model list [--broker EP]\n"
    "       gpuq model run FILE.onnx --in X.npy|X.wav ... [--out Y.npy ...] [run options]\n"
    "\n"
    "put sends each model file to the broker's store, where the ONNX loader checks it, and\n"
    "prints its digest (what onnx.run's model param takes), its inputs and its outputs. A\n"
    "model already stored is not sent twice over the cluster: workers fetch it once.\n"
    "run puts the model, then runs onnx.run on the inputs, as 'gpuq run onnx.run --param\n"
    "model=FILE.onnx ...' would (every option of gpuq run works). A pipeline can end in a\n"
    "model: gpuq run dsp.logmel --param ... --then onnx.run --param model=FILE.onnx ...\n";

static int s_put(const gq_cli_t *cli, int argc, char **argv)
{
    const char *broker = NULL, *files[64];
    int nfiles = 0;
    for (int i = 2; i < argc; i++) {
        const char *v;
        int r;
        if ((r = gq_cli_opt(cli, argc, argv, &i, "--broker", &v)) != 0) {
            if (r < 0)
                return GQ_CLI_USAGE;
            broker = v;
        } else if (argv[i][0] == '-' || nfiles == 64) {
            return gq_cli_usage(cli, "unexpected '%s'", argv[i]);
        } else {
            files[nfiles++] = argv[i];
        }
    }
    if (!nfiles)
        return gq_cli_usage(cli, "model put: no model file given");
    broker = gq_cli_broker(cli, broker);
    gq_client_t *c = gq_cli_connect(cli, broker, 0);
    if (!c)
        return GQ_CLI_FAILED;
    int failed = 0;
    for (int i = 0; i < nfiles; i++) {
        gq_model_info_t mi;
        int rc = gq_client_model_put(c, files[i], &mi, 60000);
        if (rc != GQ_OK) {
            gq_cli_fail(cli, "%s: %s: %s", files[i], gq_status_name(rc),
                        mi.error[0] ? mi.error : gq_strerror(rc));
            failed = 1;
            continue;
        }
        printf("%s  %s  inputs: %s  outputs: %d\n", mi.digest, files[i], mi.inputs, mi.noutputs);
    }
    gq_client_destroy(&c);
    return failed ? GQ_CLI_FAILED : GQ_CLI_OK;
}

static int s_list(const gq_cli_t *cli, int argc, char **argv)
{
    const char *broker = NULL;
    for (int i = 2; i < argc; i++) {
        const char *v;
        int r = gq_cli_opt(cli, argc, argv, &i, "--broker", &v);
        if (r <= 0)
            return r < 0 ? GQ_CLI_USAGE : gq_cli_usage(cli, "unexpected '%s'", argv[i]);
        broker = v;
    }
    broker = gq_cli_broker(cli, broker);
    gq_client_t *c = gq_cli_connect(cli, broker, 0);
    if (!c)
        return GQ_CLI_FAILED;
    char *text = NULL;
    int rc = gq_client_models(c, &text, 5000);
    gq_client_destroy(&c);
    if (rc != GQ_OK)
        return gq_cli_fail(cli, "broker '%s': %s", broker, gq_status_name(rc));
    fputs(text, stdout);
    free(text);
    return GQ_CLI_OK;
}

/* run FILE ARGS... is run onnx.run --param model=FILE ARGS... */
static int s_run(const gq_cli_t *cli, int argc, char **argv)
{
    if (argc < 3 || argv[2][0] == '-')
        return gq_cli_usage(cli, "model run: the model file comes first");
    char **v = calloc((size_t)argc + 4, sizeof *v);
    char param[4200];
    if (!v)
        return gq_cli_fail(cli, "out of memory");
    snprintf(param, sizeof param, "model=%s", argv[2]);
    int n = 0;
    v[n++] = "run";
    v[n++] = "onnx.run";
    v[n++] = "--param";
    v[n++] = param;
    for (int i = 3; i < argc; i++)
        v[n++] = argv[i];
    int rc = gq_cli_run(cli, n, v);
    free(v);
    return rc;
}

int gq_cli_model(const gq_cli_t *cli, int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(s_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? GQ_CLI_USAGE : GQ_CLI_OK;
    }
    if (!strcmp(argv[1], "put"))
        return s_put(cli, argc, argv);
    if (!strcmp(argv[1], "run"))
        return s_run(cli, argc, argv);
    if (!strcmp(argv[1], "list"))
        return s_list(cli, argc, argv);
    return gq_cli_usage(cli, "model: unknown subcommand '%s' (put, list or run)", argv[1]);
}
