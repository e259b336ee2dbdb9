/* gq-onnx-run: runs an .onnx model on gq's CPU ONNX executor over .npy inputs and writes
 * its outputs as .npy files — how the Python checks and benchmarks drive the executor.
 *
 *   gq-onnx-run MODEL OUTDIR [--backend cpu|opencl|vulkan] [--threads N] [--repeat N [--profile]]
 *               IN0.npy ...
 *
 * Inputs are given in the graph's input order (initializers excluded). Outputs go to
 * OUTDIR/output_<i>.npy in graph order. With --repeat N the model runs N more times after
 * the first (warm-up) run and the median and minimum wall time of those runs are printed
 * as "run_ms median=<x> min=<y>" on stdout; loading and planning are not timed. --profile
 * adds the time per node over those runs, on stderr. --backend opencl runs the steps the
 * OpenCL accelerator claims on the first OpenCL device (PoCL counts) and prints
 * "gq-onnx-run: opencl ran A of S steps (declined: Op ...)" (the first run) on stderr;
 * --backend vulkan the same with the Vulkan accelerator on the device GQ_VK_DEVICE names
 * (an index or a name substring; else the backend's pick, lavapipe counting).
 * --threads N (1..256) runs the CPU kernels and OpenBLAS on N threads (gq_par_set_threads;
 * without it: GQ_THREADS for both, else serial kernels and OpenBLAS as OPENBLAS_NUM_THREADS
 * says). Options come in any order before the inputs. Exit status:
 * 0 on success, 77 when the backend finds no device, 1 with the cause on stderr otherwise. Every
 * run's output types are checked against shape inference's.
 *
 *   gq-onnx-run MODEL --plan
 *
 * prints the plan (each step with its inferred output types, symbolic dims as declared)
 * and its memory at batch 1 and 32 (peak bytes live at once, a greedy arena). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "npy.h"
#include "onnx_accel.h"
#include "onnx_exec.h"
#include "par.h"
#ifdef GQ_HAVE_VULKAN
#include "gq_vulkan.h"
#endif

#define S_MAX_IO 64
#define S_ERRLEN 1024

static double s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The backend under --backend opencl (vk false) or vulkan; NULL with err set when none. */
static gq_backend_t *s_backend_new(bool vk, char *err, size_t errlen)
{
    gq_backend_config_t cfg = {.device_index = -1};
    if (!vk)
        return gq_backend_opencl_new(&cfg, err, errlen);
#ifdef GQ_HAVE_VULKAN
    gq_backend_config_device(&cfg, getenv("GQ_VK_DEVICE"));
    return gq_backend_vulkan_new(&cfg, err, errlen);
#else
    snprintf(err, errlen, "vulkan: not built (no Vulkan SDK or glslc at build time)");
    return NULL;
#endif
}

static int s_cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void s_free_views(gq_view_t *v, int n)
{
    for (int i = 0; i < n; i++) {
        free(v[i].data);
        v[i].data = NULL;
    }
}

/* The op types of the steps the accelerator declined in the first run, space-separated. */
static bool s_declined(void *ctx, const char *op)
{
    char *buf = ctx;
    size_t used = strlen(buf);
    if (used + strlen(op) + 2 < 512)
        snprintf(buf + used, 512 - used, " %s", op);
    return true;
}

/* Runs the plan repeat times and prints the median and minimum. */
static int s_bench(gq_onnx_plan_t *plan, const gq_view_t *in, int nin, int nout, int repeat)
{
    double *ms = calloc((size_t)repeat, sizeof *ms);
    gq_view_t out[S_MAX_IO];
    char err[S_ERRLEN];
    if (!ms) {
        fprintf(stderr, "gq-onnx-run: out of memory\n");
        return 1;
    }
    for (int r = 0; r < repeat; r++) {
        double t0 = s_now_ms();
        if (gq_onnx_plan_run(plan, in, nin, out, nout, err, sizeof err) != GQ_OK) {
            fprintf(stderr, "gq-onnx-run: run %d: %s\n", r, err);
            free(ms);
            return 1;
        }
        ms[r] = s_now_ms() - t0;
        s_free_views(out, nout);
    }
    qsort(ms, (size_t)repeat, sizeof *ms, s_cmpd);
    printf("run_ms median=%.4f min=%.4f\n", ms[repeat / 2], ms[0]);
    free(ms);
    return 0;
}

/* --plan: the plan and its memory at batch 1 and 32. */
static int s_plan_report(const char *path)
{
    char err[S_ERRLEN];
    gq_status rc;
    gq_onnx_model_t *model = gq_onnx_model_load(path, NULL, &rc, err, sizeof err);
    gq_onnx_plan_t *plan = model ? gq_onnx_plan_new(model, &rc, err, sizeof err) : NULL;
    int status = plan ? 0 : 1;
    if (!plan)
        fprintf(stderr, "gq-onnx-run: %s\n", err);
    else
        gq_onnx_plan_print(plan, stdout);
    for (int64_t batch = 1; plan && batch <= 32; batch *= 32) {
        gq_onnx_mem_t m;
        if (gq_onnx_plan_memory(plan, batch, &m, err, sizeof err) != GQ_OK) {
            fprintf(stderr, "gq-onnx-run: %s\n", err);
            status = 1;
            break;
        }
        printf("memory batch %lld: peak %zu bytes (step %d), arena %zu bytes, %d values, "
               "%d of unknown size\n",
               (long long)batch, m.peak_bytes, m.peak_step, m.arena_bytes, m.nvalues, m.nunknown);
    }
    gq_onnx_plan_destroy(&plan);
    gq_onnx_model_destroy(&model);
    return status;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[2], "--plan"))
        return s_plan_report(argv[1]);
    if (argc < 3) {
        fprintf(stderr, "usage: gq-onnx-run MODEL OUTDIR [--backend B] [--threads N] [--repeat N "
                        "[--profile]] IN0.npy [IN1.npy ...]\n");
        return 1;
    }
    int first = 3, repeat = 0;
    bool profile = false;
    const char *backend = "cpu";
    /* Options in any order before the inputs (.npy paths never start with "--"). */
    while (argc > first && !strncmp(argv[first], "--", 2)) {
        const char *opt = argv[first];
        if (!strcmp(opt, "--profile")) {
            profile = true, first++;
            continue;
        }
        if (argc <= first + 1 ||
            (strcmp(opt, "--backend") && strcmp(opt, "--repeat") && strcmp(opt, "--threads"))) {
            fprintf(stderr, "gq-onnx-run: unknown option or missing value: %s\n", opt);
            return 1;
        }
        const char *val = argv[first + 1];
        first += 2;
        if (!strcmp(opt, "--backend")) {
            backend = val;
            if (strcmp(backend, "cpu") && strcmp(backend, "opencl") && strcmp(backend, "vulkan")) {
                fprintf(stderr, "gq-onnx-run: --backend %s is not cpu, opencl or vulkan\n",
                        backend);
                return 1;
            }
        } else if (!strcmp(opt, "--repeat")) {
            char *end;
            long r = strtol(val, &end, 10);
            if (*end || r < 1 || r > 100000) {
                fprintf(stderr, "gq-onnx-run: --repeat %s is not in 1..100000\n", val);
                return 1;
            }
            repeat = (int)r;
        } else {
            char *end;
            long t = strtol(val, &end, 10);
            if (*end || t < 1 || t > 256) {
                fprintf(stderr, "gq-onnx-run: --threads %s is not in 1..256\n", val);
                return 1;
            }
            gq_par_set_threads((int)t);
        }
    }
    if (profile && !repeat) {
        fprintf(stderr, "gq-onnx-run: --profile needs --repeat N\n");
        return 1;
    }
    char err[S_ERRLEN];
    gq_status rc;
    int status = 1, nin = argc - first, nout = 0;
    gq_view_t in[S_MAX_IO], out[S_MAX_IO];
    memset(in, 0, sizeof in);
    memset(out, 0, sizeof out);
    gq_onnx_model_t *model = gq_onnx_model_load(argv[1], NULL, &rc, err, sizeof err);
    gq_onnx_plan_t *plan = model ? gq_onnx_plan_new(model, &rc, err, sizeof err) : NULL;
    gq_backend_t *be = NULL;
    gq_onnx_accel_t *ax = NULL;
    char declined[512] = "";
    if (!plan) {
        fprintf(stderr, "gq-onnx-run: %s\n", err);
        goto done;
    }
    if (strcmp(backend, "cpu")) {
        bool vk = !strcmp(backend, "vulkan");
        if (!(be = s_backend_new(vk, err, sizeof err))) {
            fprintf(stderr, "gq-onnx-run: no %s device: %s\n", vk ? "Vulkan" : "OpenCL", err);
            status = 77;
            goto done;
        }
        if (!(ax = vk ? gq_onnx_accel_vulkan_new(be, err, sizeof err)
                      : gq_onnx_accel_opencl_new(be, err, sizeof err)) ||
            gq_onnx_plan_set_accel(plan, ax, err, sizeof err)) {
            fprintf(stderr, "gq-onnx-run: --backend %s: %s\n", backend, err);
            goto done;
        }
        gq_onnx_plan_on_fallback(plan, s_declined, declined);
    }
    nout = gq_onnx_plan_output_count(plan);
    if (nin > S_MAX_IO || nout > S_MAX_IO) {
        fprintf(stderr, "gq-onnx-run: %d inputs / %d outputs, over %d\n", nin, nout, S_MAX_IO);
        goto done;
    }
    for (int i = 0; i < nin; i++)
        if (gq_npy_read(argv[first + i], &in[i].desc, &in[i].data, &in[i].nbytes, err,
                        sizeof err) != GQ_OK) {
            fprintf(stderr, "gq-onnx-run: %s\n", err);
            goto done;
        }
    if (gq_onnx_plan_run(plan, in, nin, out, nout, err, sizeof err) != GQ_OK ||
        gq_onnx_plan_check_outputs(plan, in, nin, out, nout, err, sizeof err) != GQ_OK) {
        fprintf(stderr, "gq-onnx-run: %s\n", err);
        goto done;
    }
    if (ax) {
        int acc = 0, steps = 0;
        gq_onnx_plan_last_run(plan, &acc, &steps);
        fprintf(stderr, "gq-onnx-run: %s ran %d of %d steps (declined:%s)\n", backend, acc, steps,
                *declined ? declined : " none");
        gq_onnx_plan_on_fallback(plan, NULL, NULL);
    }
    for (int o = 0; o < nout; o++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/output_%d.npy", argv[2], o);
        if (gq_npy_write(path, &out[o].desc, out[o].data, err, sizeof err) != GQ_OK) {
            fprintf(stderr, "gq-onnx-run: %s\n", err);
            goto done;
        }
    }
    gq_onnx_plan_profile(plan, profile);
    status = repeat ? s_bench(plan, in, nin, nout, repeat) : 0;
    if (profile)
        gq_onnx_plan_profile_print(plan, stderr);
done:
    s_free_views(in, nin);
    s_free_views(out, nout);
    if (plan)
        gq_onnx_plan_set_accel(plan, NULL, err, sizeof err);
    gq_onnx_accel_destroy(&ax);
    gq_backend_destroy(&be);
    gq_onnx_plan_destroy(&plan);
    gq_onnx_model_destroy(&model);
    return status;
}
