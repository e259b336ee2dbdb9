/* gpuq run: one job from .npy inputs to .npy outputs, with a summary on stderr. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char s_help[] =
    "usage: gpuq run OP [--param NAME=VALUE ...] [--then OP2 [--param ...]] ...\n"
    "                --in A.npy [--in B.npy ...] [--out Y.npy ...]\n"
    "                [--broker EP] [--timeout MS] [--priority PRIO] [--mono]\n"
    "\n"
    "Runs OP on the inputs and writes the outputs of the last stage, one --out per output\n"
    "in order. --then adds a pipeline stage fed by the outputs of the stage before; it runs\n"
    "on the same worker. Params are typed by the op table ('gpuq ops'): a wrong name or\n"
    "value is refused before anything is sent.\n"
    "\n"
    "  --param NAME=VALUE  a param of the stage it follows\n"
    "  --then OP           append a stage\n"
    "  --in PATH           an input of the first stage: .npy, or audio (.wav .flac .ogg\n"
    "                      .aiff .mp3 ...: f32[channels, frames] in [-1, 1])\n"
    "  --mono              audio inputs averaged to one channel: f32[frames]\n"
    "  --param NAME=@sr    the sample rate of the (first) audio input\n"
    "  --out PATH          where the next output goes: .npy (replaced atomically), or\n"
    "                      .wav (32-bit float) / .flac (24-bit) at the rate of the last\n"
    "                      stage's target_sr param, else the input's rate\n"
    "  --broker EP         tcp://host:port, ipc://path or local (default: $GPUQ_BROKER,\n"
    "                      else local: an embedded cluster in this process)\n"
    "  --timeout MS        fail the job if it has not finished after MS ms (0: wait)\n"
    "  --priority PRIO     realtime, interactive, batch (default) or background\n"
    "  --cache POLICY      use (default), bypass or refresh the broker's result cache\n"
    "  --cache-ttl-s N     keep this result N seconds in the cache\n"
    "\n"
    "A summary goes to stderr: outputs, backend per stage, worker, queued/compute/total\n"
    "time. Exit status: 0 done, 1 the job or a file failed, 2 usage error.\n";

#define S_MAX_FILES 16

static void s_summary(const gq_cli_spec_t *spec, gq_job_t *job, const char *const *outs, int nouts)
{
    char buf[256];
    gq_job_timing_t tm;
    gq_job_timing(job, &tm);
    fprintf(stderr, "%s: ok\n", spec->label);
    for (int k = 0; k < gq_job_output_count(job); k++)
        fprintf(stderr, "  output %d: %s%s%s\n", k,
                gq_cli_tensor_str(gq_job_output(job, k), buf, sizeof buf),
                k < nouts ? " -> " : " (not written: no --out for it)", k < nouts ? outs[k] : "");
    fprintf(stderr, "  backend:  %s\n", gq_cli_backends(job, spec->nstages, buf, sizeof buf));
    fprintf(stderr, "  worker:   %s\n", *gq_job_worker(job) ? gq_job_worker(job) : "?");
    fprintf(stderr, "  time:     queued %.3f ms, compute %.3f ms, total %.3f ms\n",
            (double)tm.queued_us / 1e3, (double)tm.compute_us / 1e3, (double)tm.total_us / 1e3);
}

int gq_cli_run(const gq_cli_t *cli, int argc, char **argv)
{
    gq_cli_spec_t spec;
    gq_cli_spec_init(&spec);
    const char *ins[S_MAX_FILES], *outs[S_MAX_FILES];
    int nin = 0, nout = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(s_help, stdout);
            return GQ_CLI_OK;
        }
        if ((r = gq_cli_spec_arg(cli, &spec, argc, argv, &i)) != 0) {
            if (r < 0)
                return GQ_CLI_USAGE;
            continue;
        }
        if ((r = gq_cli_opt(cli, argc, argv, &i, "--in", &v)) != 0) {
            if (r < 0)
                return GQ_CLI_USAGE;
            if (nin == S_MAX_FILES)
                return gq_cli_usage(cli, "more than %d --in", S_MAX_FILES);
            ins[nin++] = v;
            continue;
        }
        if ((r = gq_cli_opt(cli, argc, argv, &i, "--out", &v)) != 0) {
            if (r < 0)
                return GQ_CLI_USAGE;
            if (nout == S_MAX_FILES)
                return gq_cli_usage(cli, "more than %d --out", S_MAX_FILES);
            outs[nout++] = v;
            continue;
        }
        return gq_cli_usage(cli, "unexpected '%s'", argv[i]);
    }
    int rc = gq_cli_spec_resolve(cli, &spec);
    if (rc != GQ_CLI_OK)
        return rc;
    if (nin == 0)
        return gq_cli_usage(cli, "%s: no --in given", spec.label);

    gq_client_t *c = NULL;
    gq_job_t *job = NULL;
    gq_tensor_t *tin[S_MAX_FILES] = {0};
    rc = GQ_CLI_FAILED;
    char err[GQ_ERRLEN + 256];
    int sr = 0;
    /* Inputs first: an @sr param takes the first audio input's rate. */
    for (int k = 0; k < nin; k++) {
        int ksr = 0;
        if (!(tin[k] = gq_cli_load(ins[k], spec.mono, &ksr, err, sizeof err))) {
            gq_cli_fail(cli, "%s", err);
            goto done;
        }
        if (!sr)
            sr = ksr;
    }
    c = gq_cli_connect(cli, gq_cli_broker(cli, spec.broker), 0);
    if (!c || gq_cli_put_models(cli, c, &spec) != GQ_CLI_OK)
        goto done;
    if (!(job = gq_cli_spec_job(cli, &spec, sr)))
        goto done;
    for (int k = 0; k < nin; k++) {
        int st = gq_job_input(job, tin[k]);
        if (st != GQ_OK) {
            gq_cli_fail(cli, "%s: cannot add input %s: %s", spec.label, ins[k], gq_status_name(st));
            goto done;
        }
    }

    int st = gq_client_run(c, job);
    if (st != GQ_OK) {
        const char *msg = gq_job_error(job);
        gq_cli_fail(cli, "%s failed: %s: %s", spec.label, gq_status_name(st),
                    *msg ? msg : gq_strerror(st));
        goto done;
    }
    int nres = gq_job_output_count(job);
    if (nout > nres) {
        gq_cli_fail(cli, "%s gave %d output%s but %d --out were given; nothing written", spec.label,
                    nres, nres == 1 ? "" : "s", nout);
        goto done;
    }
    for (int k = 0; k < nout; k++)
        if (gq_cli_save(outs[k], gq_job_output(job, k), gq_cli_spec_out_rate(&spec, sr), err,
                        sizeof err) != GQ_OK) {
            gq_cli_fail(cli, "%s", err);
            goto done;
        }
    s_summary(&spec, job, outs, nout);
    rc = GQ_CLI_OK;
done:
    for (int k = 0; k < nin; k++)
        gq_tensor_destroy(&tin[k]);
    gq_job_destroy(&job);
    gq_client_destroy(&c);
    return rc;
}
