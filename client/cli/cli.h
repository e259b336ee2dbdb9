/* Internals of `gpuq`, the command-line client: the subcommand table's entries and what
 * run and batch share (the job spec given on the command line, typed through the op
 * table; .npy and audio files in and out; connecting). Only client/gpuq.h, common/npy.h,
 * common/audio.h and common/optable.h are used: the CLI is a client like any other. */
#ifndef GQ_CLI_H
#define GQ_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "audio.h"
#include "gpuq.h"
#include "npy.h"
#include "optable.h"

#define GQ_CLI_OK 0
#define GQ_CLI_FAILED 1 /* a job, a file or the connection failed */
#define GQ_CLI_USAGE 2  /* the command line is wrong; nothing was sent */

#define GQ_CLI_MAX_STAGES 8
#define GQ_CLI_MAX_RAW 32 /* --param per stage; past GQ_MAX_PARAMS the op table objects */

/* What a subcommand is invoked with. */
typedef struct {
    const char *name;   /* "run", or "local run" under `gpuq local` */
    const char *broker; /* "local" under `gpuq local`, else NULL: --broker, $GPUQ_BROKER */
} gq_cli_t;

typedef int(gq_cli_fn)(const gq_cli_t *cli, int argc, char **argv);

int gq_cli_ops(const gq_cli_t *cli, int argc, char **argv);
int gq_cli_run(const gq_cli_t *cli, int argc, char **argv);
int gq_cli_batch(const gq_cli_t *cli, int argc, char **argv);
int gq_cli_info(const gq_cli_t *cli, int argc, char **argv);
int gq_cli_status(const gq_cli_t *cli, int argc, char **argv);
int gq_cli_model(const gq_cli_t *cli, int argc, char **argv);

/* Prints "gpuq NAME: message" and a pointer to --help on stderr; returns GQ_CLI_USAGE. */
int gq_cli_usage(const gq_cli_t *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "gpuq NAME: message" on stderr; returns GQ_CLI_FAILED. */
int gq_cli_fail(const gq_cli_t *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Whether argv[*i] is option name ("--out"), as "--out V" or "--out=V". On a match *val is
 * V, *i is left on the last word used, and 1 is returned; 0 when it is another word; -1
 * (after a usage message) when V is missing. */
int gq_cli_opt(const gq_cli_t *cli, int argc, char **argv, int *i, const char *name,
               const char **val);

/* A whole decimal integer in [min, max] for option name; -1 after a usage message. */
int gq_cli_int(const gq_cli_t *cli, const char *name, const char *text, long long min,
               long long max, long long *out);

/* ---- the job given on the command line ---- */

typedef struct {
    const char *op_name;
    const gq_op_spec_t *op;
    const char *raw[GQ_CLI_MAX_RAW]; /* "k=v" as typed */
    int nraw;
    gq_param_t params[GQ_CLI_MAX_RAW]; /* typed by gq_cli_spec_resolve */
    char names[GQ_CLI_MAX_RAW][GQ_MAX_NAME];
    bool at_sr[GQ_CLI_MAX_RAW]; /* NAME=@sr: the input audio file's sample rate, per job */
    char digest[33];            /* onnx.run given a model file: its digest once put */
} gq_cli_stage_t;

typedef struct {
    gq_cli_stage_t stages[GQ_CLI_MAX_STAGES];
    int nstages;
    int timeout_ms;
    gq_priority_t prio;
    gq_cache_policy_t cache_policy; /* --cache use|bypass|refresh */
    uint64_t cache_ttl_ms;          /* --cache-ttl-s */
    const char *broker;
    bool mono; /* --mono: audio inputs averaged to one channel, f32[frames] */
    char label[GQ_CLI_MAX_STAGES * (GQ_MAX_NAME + 3)]; /* "tensor.scale | tensor.sum" */
} gq_cli_spec_t;

/* For every onnx.run stage whose model param names a file: puts the file in the broker's
 * store (once) and uses its digest. GQ_CLI_OK, or GQ_CLI_FAILED with a message. */
int gq_cli_put_models(const gq_cli_t *cli, gq_client_t *c, gq_cli_spec_t *spec);

void gq_cli_spec_init(gq_cli_spec_t *spec);

/* Takes the options run and batch share (OP, --param, --then, --timeout, --priority,
 * --broker, --mono) at argv[*i]. Returns 1 when it took the word, 0 when the word is not one of
 * them, -1 after a usage message. */
int gq_cli_spec_arg(const gq_cli_t *cli, gq_cli_spec_t *spec, int argc, char **argv, int *i);

/* Checks every op and param against the op table and types the params, so that a wrong
 * name or value is reported (in the op table's words) before anything is sent. Returns
 * GQ_CLI_OK or GQ_CLI_USAGE after a message. */
int gq_cli_spec_resolve(const gq_cli_t *cli, gq_cli_spec_t *spec);

/* A new job for the resolved spec, without inputs; NULL after a message. sr is the sample
 * rate of the job's audio input, given to NAME=@sr params; 0 when the input is not audio
 * (a NAME=@sr param is then an error naming the param). */
gq_job_t *gq_cli_spec_job(const gq_cli_t *cli, const gq_cli_spec_t *spec, int sr);

/* The sample rate of the last stage's output for an input at in_sr: every stage with a
 * target_sr param (dsp.resample) sets it, or scales it by up/down when target_sr is 0. */
int gq_cli_spec_out_rate(const gq_cli_spec_t *spec, int in_sr);

/* The broker to use: the forced one, else --broker, else $GPUQ_BROKER, else "local". */
const char *gq_cli_broker(const gq_cli_t *cli, const char *given);

/* A client for broker with window jobs in flight (0: the default); NULL after a message. */
gq_client_t *gq_cli_connect(const gq_cli_t *cli, const char *broker, int window);

/* ---- tensors and files ---- */

/* Whether the CLI reads path as a tensor: .npy or an audio extension (gq_audio_is_audio_path). */
bool gq_cli_is_input_path(const char *path);

/* A tensor of an .npy file (no copy) or an audio file (f32[channels, frames], or f32[frames]
 * with mono); *sr gets the audio's sample rate, 0 for .npy. NULL with err naming the file. */
gq_tensor_t *gq_cli_load(const char *path, bool mono, int *sr, char *err, size_t errlen);

/* Writes t to path: audio at sample rate sr when the extension is .wav or .flac, else
 * .npy; GQ_OK or the failure with err naming the file. */
gq_status gq_cli_save(const char *path, const gq_tensor_t *t, int sr, char *err, size_t errlen);

/* "f32[2,3]" for a tensor. */
char *gq_cli_tensor_str(const gq_tensor_t *t, char *buf, size_t len);

/* "cpu" or "cpu, opencl" for every stage of a finished job. */
char *gq_cli_backends(const gq_job_t *job, int nstages, char *buf, size_t len);

uint64_t gq_cli_now_us(void);

#endif
