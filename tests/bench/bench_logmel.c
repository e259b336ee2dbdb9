/* bench_logmel: the dsp.logmel CPU kernel on 60 s of 16 kHz audio (n_fft 512, hop 160, 80
 * mels, librosa's other defaults), as times real time on one core, and against librosa
 * (feature.melspectrogram + power_to_db, one thread) timed on the same audio in the same
 * run (both timed as CPU time of the thread, best of several runs: the machine may be shared).
 * librosa comes from a venv this program makes once under the build dir
 * (<build>/bench-venv, pins in tests/bench/requirements.txt); when that fails the ratio is
 * reported as not measured. The librosa run also checks our answer against its own.
 *
 *   bench_logmel [--quick] [--no-librosa] [--seconds S]
 *
 * Targets: >= 10,000x real time per core; >= 10x librosa. Exit 1 on a wrong answer. */
#include "benchlib.h"
#include "cpu/cpu_ops.h"
#include "optable.h"
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_SR 16000
#define S_RT_TARGET 10000.0
#define S_LIBROSA_TARGET 10.0

typedef struct {
    gq_args_t args;
    gq_view_t in, out;
    gq_cpu_kernel_fn fn;
} s_job_t;

static void s_setup(s_job_t *j, float *audio, int64_t n)
{
    const gq_op_spec_t *op = gq_op_find("dsp.logmel");
    if (!op)
        gqb_die("dsp.logmel is not in the op table");
    gq_param_t p[] = {
        {"sr", {.type = GQ_PT_FLOAT, .f = S_SR}},
        {"n_fft", {.type = GQ_PT_INT, .i = 512}},
        {"hop_length", {.type = GQ_PT_INT, .i = 160}},
        {"n_mels", {.type = GQ_PT_INT, .i = 80}},
    };
    char err[GQ_ERRLEN];
    if (gq_op_resolve(op, p, 4, &j->args, err, sizeof err) != GQ_OK)
        gqb_die("%s", err);
    gq_tdesc_t od;
    int nout = 0;
    j->in.desc = (gq_tdesc_t){.dtype = GQ_F32, .ndim = 1, .shape = {n}};
    j->in.data = audio;
    j->in.nbytes = (size_t)n * sizeof(float);
    if (gq_op_infer(&j->args, &j->in.desc, 1, &od, &nout, err, sizeof err) != GQ_OK)
        gqb_die("%s", err);
    j->out.desc = od;
    j->out.nbytes = gq_tdesc_nbytes(&od);
    j->out.data = aligned_alloc(64, (j->out.nbytes + 63) / 64 * 64);
    j->fn = gq_cpu_kernel_find("dsp.logmel");
    if (!j->out.data || !j->fn)
        gqb_die("no memory or no dsp.logmel kernel");
}

/* CPU time of this thread: the machine is shared, and time spent preempted is not the
 * kernel's. */
static double s_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double s_run(s_job_t *j)
{
    char err[GQ_ERRLEN];
    double t0 = s_cpu_s();
    if (j->fn(&j->args, &j->in, 1, &j->out, 1, err, sizeof err) != GQ_OK)
        gqb_die("dsp.logmel failed: %s", err);
    return s_cpu_s() - t0;
}

/* Speech-like test audio: a few harmonics gliding, noise, silence gaps. */
static void s_audio(float *x, int64_t n)
{
    uint64_t s = 0x9e3779b97f4a7c15u;
    double ph = 0;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        double t = (double)i / S_SR, f0 = 120 + 60 * sin(2 * M_PI * 0.3 * t);
        ph += 2 * M_PI * f0 / S_SR;
        double v = 0.3 * sin(ph) + 0.15 * sin(3 * ph) + 0.05 * sin(7 * ph);
        v += 0.02 * ((double)(s >> 11) / 9007199254740992.0 - 0.5);
        if (fmod(t, 4.0) > 3.5)
            v = 0; /* silence */
        x[i] = (float)v;
    }
}

static int s_sh(const char *cmd)
{
    int rc = system(cmd);
    return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* The venv's python, made once; NULL (with the reason printed) when it cannot be made. */
static const char *s_venv(const char *build)
{
    static char py[PATH_MAX];
    char cmd[3 * PATH_MAX], req[PATH_MAX], src[PATH_MAX];
    snprintf(py, sizeof py, "%s/bench-venv/bin/python", build);
    snprintf(cmd, sizeof cmd, "'%s' -c 'import librosa, numpy' 2>/dev/null", py);
    if (access(py, X_OK) == 0 && s_sh(cmd) == 0)
        return py;
    const char *sd = getenv("GQ_SRC_DIR");
    if (sd && *sd) {
        snprintf(req, sizeof req, "%s/tests/bench/requirements.txt", sd);
    } else {
        snprintf(src, sizeof src, "%s", __FILE__);
        snprintf(req, sizeof req, "%s/requirements.txt", dirname(src));
    }
    fprintf(stderr, "bench_logmel: making %s/bench-venv with librosa (once; takes a while)\n",
            build);
    snprintf(cmd, sizeof cmd,
             "python3 -m venv '%s/bench-venv' >&2 && '%s/bench-venv/bin/pip' install -q "
             "--disable-pip-version-check -r '%s' >&2",
             build, build, req);
    if (s_sh(cmd) != 0) {
        printf("librosa: not measured (could not make %s/bench-venv from %s)\n", build, req);
        return NULL;
    }
    snprintf(cmd, sizeof cmd, "'%s' -c 'import librosa, numpy' 2>/dev/null", py);
    if (s_sh(cmd) != 0) {
        printf("librosa: not measured (librosa does not import in %s/bench-venv)\n", build);
        return NULL;
    }
    return py;
}

static const char s_script[] =
    "import sys, time, os\n"
    "import numpy as np, librosa\n"
    "audio, ours, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])\n"
    "y = np.fromfile(audio, dtype=np.float32)\n"
    "got = np.fromfile(ours, dtype=np.float32)\n"
    "def f():\n"
    "    m = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=512, hop_length=160,\n"
    "                                       n_mels=80)\n"
    "    return librosa.power_to_db(m)\n"
    "want = f()\n"
    "best = 1e9\n"
    "for _ in range(reps):\n"
    "    t0 = time.thread_time(); f(); best = min(best, time.thread_time() - t0)\n"
    "got = got.reshape(want.shape)\n"
    "print(f'{best:.6f} {np.max(np.abs(got - want)):.6g} {want.shape[1]}')\n";

/* Runs librosa on the same audio; fills its best time in seconds and the largest dB
 * difference from ours. Returns 0, or -1 (reason printed). */
static int s_librosa(const char *py, const float *x, int64_t n, const s_job_t *j, int reps,
                     double *secs, double *maxdiff)
{
    char dir[] = "/tmp/gq-bench-logmel-XXXXXX", path[3][PATH_MAX], cmd[5 * PATH_MAX];
    if (!mkdtemp(dir)) {
        printf("librosa: not measured (no temp dir)\n");
        return -1;
    }
    snprintf(path[0], PATH_MAX, "%s/audio.f32", dir);
    snprintf(path[1], PATH_MAX, "%s/ours.f32", dir);
    snprintf(path[2], PATH_MAX, "%s/peer.py", dir);
    FILE *f[3] = {fopen(path[0], "wb"), fopen(path[1], "wb"), fopen(path[2], "w")};
    int ok = f[0] && f[1] && f[2] && fwrite(x, sizeof *x, (size_t)n, f[0]) == (size_t)n &&
             fwrite(j->out.data, 1, j->out.nbytes, f[1]) == j->out.nbytes &&
             fputs(s_script, f[2]) >= 0;
    for (int i = 0; i < 3; i++)
        if (f[i] && fclose(f[i]))
            ok = 0;
    double fr = 0;
    if (ok) {
        /* One thread for BLAS and numba too: the comparison is per core. */
        snprintf(cmd, sizeof cmd,
                 "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 "
                 "NUMBA_NUM_THREADS=1 '%s' '%s' '%s' '%s' %d",
                 py, path[2], path[0], path[1], reps);
        FILE *p = popen(cmd, "r");
        ok = p && fscanf(p, "%lf %lf %lf", secs, maxdiff, &fr) == 3;
        if (p)
            ok = pclose(p) == 0 && ok;
    }
    for (int i = 0; i < 3; i++)
        unlink(path[i]);
    rmdir(dir);
    if (!ok) {
        printf("librosa: not measured (the librosa run failed)\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    gqb_init("bench_logmel");
    double seconds = 60;
    int quick = 0, librosa = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--no-librosa"))
            librosa = 0;
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else
            gqb_die("usage: bench_logmel [--quick] [--no-librosa] [--seconds S]");
    }
    if (!(seconds >= 1 && seconds <= 3600))
        gqb_die("--seconds must be in 1..3600");
    int reps = quick ? 3 : 11;
    int64_t n = (int64_t)(seconds * S_SR);
    float *x = aligned_alloc(64, ((size_t)n * sizeof(float) + 63) / 64 * 64);
    if (!x)
        gqb_die("no memory for %lld samples", (long long)n);
    s_audio(x, n);
    s_job_t j;
    s_setup(&j, x, n);
    gqb_pin_to(0);
    gqb_phase = "ours";
    gqb_arm_alarm(600);
    s_run(&j); /* plans, page faults */
    double best = 1e9;
    for (int r = 0; r < reps; r++) {
        double t = s_run(&j);
        best = t < best ? t : best;
    }
    int64_t frames = j.out.desc.shape[1];
    double rt = seconds / best;
    printf("log-mel %.0f s of 16 kHz audio (n_fft 512, hop 160, 80 mels, %lld frames), one "
           "core:\n",
           seconds, (long long)frames);
    printf("  ours: %.3f ms, %.1f ns/frame, %.0fx real time (target >= %.0fx: %s)\n", best * 1e3,
           best * 1e9 / (double)frames, rt, S_RT_TARGET, rt >= S_RT_TARGET ? "met" : "MISSED");
    int bad = 0;
    if (librosa) {
        char build[PATH_MAX];
        snprintf(build, sizeof build, "%s", gqb_bin("gpuq-worker"));
        const char *py = s_venv(dirname(build));
        double lt, diff;
        gqb_phase = "librosa";
        if (py && s_librosa(py, x, n, &j, quick ? 2 : 5, &lt, &diff) == 0) {
            printf("  librosa 0.10 (melspectrogram + power_to_db, 1 thread): %.3f ms, %.0fx real "
                   "time\n",
                   lt * 1e3, seconds / lt);
            printf("  ours / librosa time: %.4f, i.e. %.1fx faster (target >= %.0fx: %s)\n",
                   best / lt, lt / best, S_LIBROSA_TARGET,
                   lt / best >= S_LIBROSA_TARGET ? "met" : "MISSED");
            printf("  max |ours - librosa| = %.3g dB\n", diff);
            if (!(diff <= 0.05)) {
                printf("  WRONG: ours differs from librosa by more than 0.05 dB\n");
                bad = 1;
            }
        }
    } else {
        printf("librosa: not measured (--no-librosa)\n");
    }
    free(j.out.data);
    free(x);
    return bad;
}
