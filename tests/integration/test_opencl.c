/* A gpuq-worker process with the OpenCL backend first (--backends opencl,cpu through
 * GQ_BACKENDS) behind a real broker over tcp: it registers with both backends, logs its
 * device, runs tensor ops and a pipeline on OpenCL with the CPU's results, and serves an
 * op it has no kernel for on the CPU (a fallback). Skipped (77) without an OpenCL device. */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "harness.h"

#ifndef GQ_HAVE_OPENCL
int main(void)
{
    printf("SKIP: built without OpenCL\n");
    return 77;
}
#else
#include "opencl.h"

static gq_tensor_t *s_vec(int64_t n, float base)
{
    gq_tensor_t *t = gq_tensor_new(GQ_F32, &n, 1);
    float *p = gq_tensor_data(t);
    for (int64_t i = 0; i < n; i++)
        p[i] = base + (float)i * 0.25f;
    return t;
}

int main(void)
{
    char err[256];
    gq_device_info_t devs[8];
    if (gq_opencl_list(devs, 8, err, sizeof err) == 0) {
        printf("SKIP: %s\n", err);
        return 77;
    }
    /* Kernels are built once per machine: keep them in the build tree between runs. */
    char cache[512], log[256];
    const char *bin = getenv("GQ_BIN_DIR");
    snprintf(cache, sizeof cache, "%s/cl-cache", bin ? bin : "/tmp");
    setenv("GQ_CL_CACHE_DIR", cache, 0);
    setenv("GQ_BACKENDS", "opencl,cpu", 1);
    setenv("GQT_LOG", "info", 1); /* the harness passes it to the servers as GQ_LOG */

    gqt_cluster_t c;
    gqt_cluster_start(&c, 0, 2, 16, 1000);
    /* The worker's log goes to a file, to find its device line. */
    snprintf(log, sizeof log, "/tmp/gq-test-opencl-%d.log", (int)getpid());
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600), saved = dup(2);
    GQT_CHECK(fd >= 0 && saved >= 0, "log file");
    dup2(fd, 2);
    gqt_cluster_add_worker(&c, 2, 16);
    dup2(saved, 2);
    close(fd);
    close(saved);
    GQT_CHECK(gqt_wait_workers(c.front, 1, 120000) == 0,
              "the OpenCL worker did not register within 120 s (see %s)", log);

    gq_client_t *cl = gq_client_new(c.front, NULL, err, sizeof err);
    GQT_CHECK(cl, "client: %s", err);
    gq_cluster_info_t info;
    gq_worker_info_t w;
    GQT_CHECK(gq_client_cluster_info(cl, &info, 5000) == GQ_OK &&
                  gq_client_worker_info(cl, 0, &w) == GQ_OK,
              "cluster info");
    printf("worker %s: backends %s\n", w.name, w.backends);
    GQT_CHECK(!strcmp(w.backends, "opencl,cpu"), "backends '%s'", w.backends);
    printf("worker devices: %s\n", w.devices);
    GQT_CHECK(strstr(w.devices, "opencl: "), "the OpenCL device is not in the status reply");

    /* add on OpenCL */
    gq_tensor_t *x = s_vec(1000, 1.0f), *y = s_vec(1000, -3.0f);
    gq_job_t *job = gq_job_new("tensor.add");
    gq_job_input(job, x);
    gq_job_input(job, y);
    GQT_CHECK(gq_client_run(cl, job) == GQ_OK, "add: %s", gq_job_error(job));
    GQT_CHECK(!strcmp(gq_job_backend(job, 0), "opencl"), "add ran on %s", gq_job_backend(job, 0));
    const float *z = gq_tensor_data(gq_job_output(job, 0));
    for (int i = 0; i < 1000; i++)
        GQT_CHECK(z[i] == (1.0f + i * 0.25f) + (-3.0f + i * 0.25f), "add[%d] = %g", i, z[i]);
    gq_job_destroy(&job);

    /* pipeline add -> scale -> sum, all on OpenCL */
    job = gq_job_new("tensor.add");
    gq_job_input(job, x);
    gq_job_input(job, y);
    gq_job_then(job, "tensor.scale");
    gq_job_param_float(job, "factor", 2.0);
    gq_job_then(job, "tensor.sum");
    gq_job_param_int(job, "axis", 0);
    GQT_CHECK(gq_client_run(cl, job) == GQ_OK, "pipeline: %s", gq_job_error(job));
    for (int k = 0; k < 3; k++)
        GQT_CHECK(!strcmp(gq_job_backend(job, k), "opencl"), "stage %d ran on %s", k,
                  gq_job_backend(job, k));
    double want = 0;
    for (int i = 0; i < 1000; i++)
        want += 2.0 * ((1.0 + i * 0.25) + (-3.0 + i * 0.25));
    float got = *(const float *)gq_tensor_data(gq_job_output(job, 0));
    GQT_CHECK(fabs(got - want) <= 1e-6 * fabs(want), "sum %g, want %g", got, want);
    gq_job_destroy(&job);

    /* cast to f16: no OpenCL kernel, so the CPU runs it */
    job = gq_job_new("tensor.cast");
    gq_job_param_str(job, "to", "f16");
    gq_job_input(job, x);
    GQT_CHECK(gq_client_run(cl, job) == GQ_OK, "cast: %s", gq_job_error(job));
    GQT_CHECK(!strcmp(gq_job_backend(job, 0), "cpu"), "cast to f16 ran on %s",
              gq_job_backend(job, 0));
    gq_job_destroy(&job);
    /* The fallback reaches the broker's metrics with the next heartbeat. */
    char want_line[256];
    snprintf(want_line, sizeof want_line,
             "gpuq_worker_fallbacks_total{worker=\"%s\",op=\"tensor.cast\",backend=\"opencl\"} 1",
             w.name);
    int seen = 0;
    for (int i = 0; i < 40 && !seen; i++) {
        char *text = NULL;
        GQT_CHECK(gq_client_metrics(cl, &text, 5000) == GQ_OK, "metrics");
        seen = strstr(text, want_line) != NULL;
        free(text);
        if (!seen)
            gqt_sleep_ms(100);
    }
    GQT_CHECK(seen, "no '%s' in the broker's metrics", want_line);

    /* 400 jobs in flight at once over both compute threads */
    gq_job_t *jobs[400];
    for (int i = 0; i < 400; i++) {
        jobs[i] = gq_job_new("tensor.mul");
        gq_job_input(jobs[i], x);
        gq_job_input(jobs[i], y);
        GQT_CHECK(gq_client_submit(cl, jobs[i]) == GQ_OK, "submit %d", i);
    }
    for (int i = 0; i < 400; i++) {
        gq_job_t *done;
        GQT_CHECK(gq_client_collect(cl, 30000, &done) == GQ_OK, "collect %d", i);
        GQT_CHECK(gq_job_status(done) == GQ_OK && !strcmp(gq_job_backend(done, 0), "opencl"),
                  "job: %s", gq_job_error(done));
    }
    for (int i = 0; i < 400; i++)
        gq_job_destroy(&jobs[i]);
    gq_tensor_destroy(&x);
    gq_tensor_destroy(&y);
    gq_client_destroy(&cl);
    gqt_cluster_stop(&c);

    /* The worker logged its device at start and its fallback counters at exit. */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "grep -m1 \"backend 0: opencl on '\" %s", log);
    GQT_CHECK(system(cmd) == 0, "no device line in the worker log %s", log);
    snprintf(cmd, sizeof cmd,
             "grep -m1 'gpuq_worker_fallbacks_total{op=\"tensor.cast\",backend=\"opencl\"} 1' %s",
             log);
    GQT_CHECK(system(cmd) == 0, "no fallback counter in the worker log %s", log);
    unlink(log);
    printf("PASS\n");
    return 0;
}
#endif
