/* gpuq batch: one job per .npy or audio file of a directory, pipelined through a window of
 * jobs in flight, each file's outputs written as soon as its job is back. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const char s_help[] =
    "usage: gpuq batch OP [--param NAME=VALUE ...] [--then OP2 [--param ...]] ...\n"
    "                  --in-dir DIR --out-dir DIR [--window N] [--broker EP]\n"
    "                  [--timeout MS] [--priority PRIO] [--cache POLICY] [--mono]\n"
    "                  [--out-ext npy|wav|flac]\n"
    "\n"
    "Runs the job on every .npy and audio file (.wav .flac .ogg .aiff .mp3 ...) of --in-dir\n"
    "(in name order), one file per job, with up to N jobs in flight (default 64). Audio\n"
    "comes in as f32[channels, frames] (f32[frames] with --mono); --param NAME=@sr gives a\n"
    "param each file's own sample rate. The outputs of X.wav go to --out-dir/X.npy (or\n"
    "X.wav/X.flac with --out-ext, at the rate of the last target_sr param), or X.0.npy,\n"
    "X.1.npy ... when the job has several; --out-dir is created if missing and must not be\n"
    "--in-dir. One line per file as it completes: input and output shapes, min/max/mean of a\n"
    "float first output, backend per stage, worker, time. Then a total line. Options as\n"
    "for 'gpuq run'. Exit status: 0 all done, 1 any file failed, 2 usage error.\n";

#define S_DEFAULT_WINDOW 64

typedef struct {
    char *name; /* file name in the input directory */
    char in_shape[160];
    int sr;        /* audio inputs: the file's sample rate; 0 for .npy */
    gq_job_t *job; /* while in flight */
} s_file_t;

typedef struct {
    const gq_cli_t *cli;
    const gq_cli_spec_t *spec;
    const char *out_dir;
    const char *out_ext;
    s_file_t *files;
    int ok, failed;
} s_batch_t;

static int s_cmp_names(const void *a, const void *b)
{
    return strcmp(((const s_file_t *)a)->name, ((const s_file_t *)b)->name);
}

/* Every regular .npy or audio file of dir, sorted; -1 after a message. */
static int s_list(const gq_cli_t *cli, const char *dir, s_file_t **out, int *count)
{
    DIR *d = opendir(dir);
    if (!d) {
        gq_cli_fail(cli, "--in-dir %s: %s", dir, strerror(errno));
        return -1;
    }
    s_file_t *files = NULL;
    int n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!gq_cli_is_input_path(e->d_name) || e->d_name[0] == '.')
            continue;
        char path[4096];
        struct stat st;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path ||
            stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            int nc = cap ? cap * 2 : 64;
            s_file_t *nf = realloc(files, (size_t)nc * sizeof *nf);
            if (!nf)
                goto oom;
            files = nf;
            cap = nc;
        }
        memset(&files[n], 0, sizeof files[n]);
        if (!(files[n].name = strdup(e->d_name)))
            goto oom;
        n++;
    }
    closedir(d);
    qsort(files, (size_t)n, sizeof *files, s_cmp_names);
    *out = files;
    *count = n;
    return 0;
oom:
    closedir(d);
    for (int i = 0; i < n; i++)
        free(files[i].name);
    free(files);
    gq_cli_fail(cli, "--in-dir %s: out of memory listing the files", dir);
    return -1;
}

static float s_half(uint16_t h)
{
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float v = e == 0    ? ldexpf((float)m, -24)
              : e == 31 ? (m ? NAN : INFINITY)
                        : ldexpf((float)(m | 0x400), e - 25);
    return (h & 0x8000) ? -v : v;
}

/* " min -1 max 2 mean 0.5" for a float tensor, NaNs counted apart; "" for other dtypes. */
static void s_stats(const gq_tensor_t *t, char *buf, size_t len)
{
    gq_dtype_t dt = gq_tensor_dtype(t);
    buf[0] = '\0';
    if (dt != GQ_F32 && dt != GQ_F64 && dt != GQ_F16)
        return;
    int64_t n = gq_tensor_numel(t), nans = 0;
    const void *p = gq_tensor_data(t);
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = dt == GQ_F32   ? ((const float *)p)[i]
                   : dt == GQ_F64 ? ((const double *)p)[i]
                                  : s_half(((const uint16_t *)p)[i]);
        if (isnan(v)) {
            nans++;
            continue;
        }
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        sum += v;
    }
    if (n == nans) {
        snprintf(buf, len, "  (%s)", n ? "all NaN" : "empty");
        return;
    }
    int o = snprintf(buf, len, "  min %.6g max %.6g mean %.6g", lo, hi, sum / (double)(n - nans));
    if (nans && o > 0 && (size_t)o < len)
        snprintf(buf + o, len - (size_t)o, " (%lld NaN)", (long long)nans);
}

/* Writes a finished job's outputs and prints its line. */
static void s_finish(s_batch_t *b, gq_job_t *job)
{
    s_file_t *f = gq_job_user(job);
    int st = gq_job_status(job);
    if (st != GQ_OK) {
        const char *msg = gq_job_error(job);
        printf("%s  %s  FAILED %s: %s\n", f->name, f->in_shape, gq_status_name(st),
               *msg ? msg : gq_strerror(st));
        b->failed++;
        return;
    }
    int nout = gq_job_output_count(job);
    size_t stem = (size_t)(strrchr(f->name, '.') - f->name);
    const char *ext = b->out_ext;
    int out_sr = gq_cli_spec_out_rate(b->spec, f->sr);
    char path[4096], err[GQ_ERRLEN + 256], shapes[512] = "";
    size_t so = 0;
    for (int k = 0; k < nout; k++) {
        const gq_tensor_t *t = gq_job_output(job, k);
        int n = nout == 1
                    ? snprintf(path, sizeof path, "%s/%.*s.%s", b->out_dir, (int)stem, f->name, ext)
                    : snprintf(path, sizeof path, "%s/%.*s.%d.%s", b->out_dir, (int)stem, f->name,
                               k, ext);
        if (n < 0 || (size_t)n >= sizeof path) {
            printf("%s  %s  FAILED: output path in %s is too long\n", f->name, f->in_shape,
                   b->out_dir);
            b->failed++;
            return;
        }
        if (gq_cli_save(path, t, out_sr, err, sizeof err) != GQ_OK) {
            printf("%s  %s  FAILED writing: %s\n", f->name, f->in_shape, err);
            b->failed++;
            return;
        }
        char ts[160];
        if (so < sizeof shapes)
            so += (size_t)snprintf(shapes + so, sizeof shapes - so, k ? ", %s" : "%s",
                                   gq_cli_tensor_str(t, ts, sizeof ts));
    }
    char stats[128] = "", backends[256];
    if (nout > 0)
        s_stats(gq_job_output(job, 0), stats, sizeof stats);
    gq_job_timing_t tm;
    gq_job_timing(job, &tm);
    printf("%s  %s -> %s%s  %s  %s  %.3f ms\n", f->name, f->in_shape, nout ? shapes : "nothing",
           stats, gq_cli_backends(job, b->spec->nstages, backends, sizeof backends),
           *gq_job_worker(job) ? gq_job_worker(job) : "?", (double)tm.total_us / 1e3);
    b->ok++;
}

/* Collects one finished job, waiting for it; 0 when none is left in flight. */
static int s_collect(s_batch_t *b, gq_client_t *c, int timeout_ms)
{
    gq_job_t *job = NULL;
    int st = gq_client_collect(c, timeout_ms, &job);
    if (st != GQ_OK || !job)
        return st == GQ_ETIMEDOUT ? 0 : st;
    s_finish(b, job);
    fflush(stdout);
    ((s_file_t *)gq_job_user(job))->job = NULL;
    gq_job_destroy(&job);
    return 1;
}

int gq_cli_batch(const gq_cli_t *cli, int argc, char **argv)
{
    gq_cli_spec_t spec;
    gq_cli_spec_init(&spec);
    const char *in_dir = NULL, *out_dir = NULL, *out_ext = "npy";
    long long window = S_DEFAULT_WINDOW;
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
        if ((r = gq_cli_opt(cli, argc, argv, &i, "--in-dir", &v)) != 0) {
            if (r < 0)
                return GQ_CLI_USAGE;
            in_dir = v;
            continue;
        }
        if ((r = gq_cli_opt(cli, argc, argv, &i, "--out-dir", &v)) != 0) {
            if (r < 0)
                return GQ_CLI_USAGE;
            out_dir = v;
            continue;
        }
        if ((r = gq_cli_opt(cli, argc, argv, &i, "--out-ext", &v)) != 0) {
            if (r < 0)
                return GQ_CLI_USAGE;
            if (strcmp(v, "npy") && strcmp(v, "wav") && strcmp(v, "flac"))
                return gq_cli_usage(cli, "--out-ext '%s' must be npy, wav or flac", v);
            out_ext = v;
            continue;
        }
        if ((r = gq_cli_opt(cli, argc, argv, &i, "--window", &v)) != 0) {
            if (r < 0 || gq_cli_int(cli, "--window", v, 1, 65536, &window) < 0)
                return GQ_CLI_USAGE;
            continue;
        }
        return gq_cli_usage(cli, "unexpected '%s'", argv[i]);
    }
    int rc = gq_cli_spec_resolve(cli, &spec);
    if (rc != GQ_CLI_OK)
        return rc;
    if (!in_dir || !out_dir)
        return gq_cli_usage(cli, "%s: --in-dir and --out-dir are both needed", spec.label);

    char *rin = realpath(in_dir, NULL), *rout = realpath(out_dir, NULL);
    int same = rin && rout && !strcmp(rin, rout);
    free(rin);
    free(rout);
    if (same)
        return gq_cli_usage(cli, "--out-dir %s is --in-dir: the outputs would replace the inputs",
                            out_dir);

    s_file_t *files = NULL;
    int nfiles = 0;
    if (s_list(cli, in_dir, &files, &nfiles) != 0)
        return GQ_CLI_FAILED;
    if (nfiles == 0) {
        free(files);
        return gq_cli_fail(cli, "--in-dir %s has no .npy or audio files", in_dir);
    }
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        for (int i = 0; i < nfiles; i++)
            free(files[i].name);
        free(files);
        return gq_cli_fail(cli, "--out-dir %s: cannot create it: %s", out_dir, strerror(errno));
    }

    s_batch_t b = {
        .cli = cli, .spec = &spec, .out_dir = out_dir, .out_ext = out_ext, .files = files};
    gq_client_t *c = gq_cli_connect(cli, gq_cli_broker(cli, spec.broker), (int)window);
    rc = GQ_CLI_FAILED;
    if (!c || gq_cli_put_models(cli, c, &spec) != GQ_CLI_OK)
        goto done;
    uint64_t t0 = gq_cli_now_us();
    int lost = 0;
    for (int i = 0; i < nfiles && !lost; i++) {
        s_file_t *f = &files[i];
        /* Our own window, not only the client's: answers are handled (outputs written,
         * memory freed) as they come rather than piling up until the end. */
        while (gq_client_pending(c) >= window) {
            int r = s_collect(&b, c, -1);
            if (r < 0) {
                gq_cli_fail(cli, "lost the broker: %s", gq_status_name(r));
                lost = 1;
                break;
            }
        }
        if (lost)
            break;
        char path[4096], err[GQ_ERRLEN + 256];
        snprintf(path, sizeof path, "%s/%s", in_dir, f->name);
        gq_tensor_t *t = gq_cli_load(path, spec.mono, &f->sr, err, sizeof err);
        if (!t) {
            snprintf(f->in_shape, sizeof f->in_shape, "?");
            printf("%s  FAILED: %s\n", f->name, err);
            b.failed++;
            continue;
        }
        gq_cli_tensor_str(t, f->in_shape, sizeof f->in_shape);
        if (f->sr) {
            size_t o = strlen(f->in_shape);
            snprintf(f->in_shape + o, sizeof f->in_shape - o, " @%d Hz", f->sr);
        }
        gq_job_t *job = gq_cli_spec_job(cli, &spec, f->sr);
        if (!job) {
            gq_tensor_destroy(&t);
            b.failed++;
            continue;
        }
        gq_job_set_user(job, f);
        int st = gq_job_input(job, t);
        gq_tensor_destroy(&t);
        if (st == GQ_OK)
            st = gq_client_submit(c, job);
        if (st != GQ_OK) {
            printf("%s  %s  FAILED to submit: %s\n", f->name, f->in_shape, gq_status_name(st));
            gq_job_destroy(&job);
            b.failed++;
            continue;
        }
        f->job = job;
        /* Jobs already answered while submitting: no waiting here. */
        while (s_collect(&b, c, 0) > 0)
            ;
    }
    while (!lost && gq_client_pending(c) > 0) {
        int r = s_collect(&b, c, -1);
        if (r < 0) {
            gq_cli_fail(cli, "lost the broker: %s", gq_status_name(r));
            lost = 1;
        }
    }
    double secs = (double)(gq_cli_now_us() - t0) / 1e6;
    int unanswered = nfiles - b.ok - b.failed;
    printf("total: %d files, %d ok, %d failed%s, %.3f s, %.1f jobs/s\n", nfiles, b.ok,
           b.failed + unanswered, unanswered ? " (some never answered)" : "", secs,
           secs > 0 ? (double)(b.ok + b.failed) / secs : 0.0);
    rc = (b.failed || unanswered) ? GQ_CLI_FAILED : GQ_CLI_OK;
done:
    /* Jobs the broker never answered are cancelled while their client still exists. */
    for (int i = 0; i < nfiles; i++)
        gq_job_destroy(&files[i].job);
    gq_client_destroy(&c);
    for (int i = 0; i < nfiles; i++)
        free(files[i].name);
    free(files);
    return rc;
}
