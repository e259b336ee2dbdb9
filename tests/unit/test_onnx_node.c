/* The ONNX backend node test suite (Debian's libonnx-testdata) on gq's CPU ONNX runtime:
 * every node test whose ops all have kernels runs on each of its test data sets, and its
 * outputs must match the suite's expected outputs (dtype and shape exactly; floats within
 * rtol 1e-3, atol 1e-5, NaN where NaN is expected; integers exactly). Tests with an op gq has
 * no kernel for, or a dtype its kernel refuses, are skipped and listed with the reason.
 * Without the suite installed the test is skipped (77). Writes the full list of
 * run/skipped tests to onnx_node_tests.txt in the working directory.
 *
 * --opencl (ctest unit.test_onnx_node_opencl): the same with the OpenCL accelerator
 * (onnx_accel.h) on the first OpenCL device (PoCL in CI), the steps it declines on the CPU;
 * prints how many tests ran steps on the device and the declined steps per op, and lists to
 * onnx_node_tests_opencl.txt (or the file named after --opencl, for the variants ctest runs
 * side by side). Skipped (77) without an OpenCL device.
 *
 * --vulkan (ctest unit.test_onnx_node_vulkan): the same with the Vulkan accelerator (the
 * OpenCL one's op set but Erf) on the device GQ_VK_DEVICE names (an index or a name
 * substring), else the backend's pick, a CPU device (lavapipe) counting; prints and lists as
 * --opencl does, to onnx_node_tests_vulkan.txt. Skipped (77) without a Vulkan device.
 *
 * --cpu LIST: the CPU run listing to LIST. GQ_ONNX_TESTDATA points the test at another copy
 * of the suite: ctest's unit.test_onnx_node_117 runs the newer one (opsets up to 22) that the
 * Python onnx package of the tests' venv ships. */
#include "onnx_accel.h"
#include "onnx_exec.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#ifdef GQ_HAVE_VULKAN
#include "gq_vulkan.h"
#endif

#define S_TESTDATA "/usr/include/onnx/backend/test/data/node"

/* Steps the accelerator declined, by op type. */
typedef struct {
    char op[160][40];
    int n[160], nops;
} s_fallbacks_t;

static bool s_count_fallback(void *ctx, const char *op)
{
    s_fallbacks_t *f = ctx;
    int i = 0;
    while (i < f->nops && strcmp(f->op[i], op))
        i++;
    if (i == f->nops && f->nops < 160)
        snprintf(f->op[f->nops++], sizeof f->op[0], "%s", op);
    if (i < f->nops)
        f->n[i]++;
    return true;
}

/* The backend of accelerator `name` ("opencl": the first OpenCL device, PoCL counting;
 * "vulkan": GQ_VK_DEVICE's, else the backend's pick, lavapipe counting); NULL with err set. */
static gq_backend_t *s_backend_new(const char *name, char *err, size_t errlen)
{
    gq_backend_config_t cfg = {.device_index = -1};
    if (!strcmp(name, "opencl"))
        return gq_backend_opencl_new(&cfg, err, errlen);
#ifdef GQ_HAVE_VULKAN
    gq_backend_config_device(&cfg, getenv("GQ_VK_DEVICE"));
    return gq_backend_vulkan_new(&cfg, err, errlen);
#else
    snprintf(err, errlen, "vulkan: not built");
    return NULL;
#endif
}

/* Accelerator `name` on its device; NULL when there is none (*be NULL too) or it cannot
 * start. */
static gq_onnx_accel_t *s_accel(const char *name, gq_backend_t **be)
{
    char err[512];
    *be = s_backend_new(name, err, sizeof err);
    if (!*be) {
        printf("no %s device (%s): skipped\n", name, err);
        return NULL;
    }
    gq_onnx_accel_t *ax = !strcmp(name, "opencl") ? gq_onnx_accel_opencl_new(*be, err, sizeof err)
                                                  : gq_onnx_accel_vulkan_new(*be, err, sizeof err);
    if (!ax)
        fprintf(stderr, "FAIL: the %s accelerator does not start: %s\n", name, err);
    return ax;
}

static int s_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Compares got with want; 0 when equal within tolerance, else writes why. */
static int s_compare(const gq_view_t *got, const gq_tdesc_t *wd, const void *want, char *why,
                     size_t len)
{
    char a[96], b[96];
    if (!gq_tdesc_equal(&got->desc, wd)) {
        snprintf(why, len, "got %s, want %s", gq_tdesc_str(&got->desc, a, sizeof a),
                 gq_tdesc_str(wd, b, sizeof b));
        return 1;
    }
    int64_t n = gq_tdesc_numel(wd);
    for (int64_t i = 0; i < n; i++) {
        double g, w;
        switch (wd->dtype) {
        case GQ_F32:
            g = ((const float *)got->data)[i], w = ((const float *)want)[i];
            break;
        case GQ_F64:
            g = ((const double *)got->data)[i], w = ((const double *)want)[i];
            break;
        default:
            if (memcmp(got->data, want, got->nbytes)) {
                snprintf(why, len, "integer/bool values differ");
                return 1;
            }
            return 0;
        }
        if (isnan(w) ? !isnan(g) : (isinf(w) ? g != w : fabs(g - w) > 1e-5 + 1e-3 * fabs(w))) {
            snprintf(why, len, "element %lld: got %.9g, want %.9g", (long long)i, g, w);
            return 1;
        }
    }
    return 0;
}

/* Tests whose expected outputs come from ONNX's reference implementation where it departs
 * from the operator's spec and from onnxruntime, which gq follows: skipped, with why. */
static const struct {
    const char *test, *why;
} s_diverge[] = {
    {"test_qlinearmatmul_2D_int8_float16", "the reference wraps out-of-range int8 results; "
                                           "the spec and onnxruntime saturate (-236 -> -128)"},
    {"test_qlinearmatmul_2D_int8_float32", "the reference wraps out-of-range int8 results; "
                                           "the spec and onnxruntime saturate (-236 -> -128)"},
    {"test_qlinearmatmul_3D_int8_float16", "the reference wraps out-of-range int8 results; "
                                           "the spec and onnxruntime saturate"},
    {"test_qlinearmatmul_3D_int8_float32", "the reference wraps out-of-range int8 results; "
                                           "the spec and onnxruntime saturate"},
};

static const char *s_diverges(const char *test)
{
    for (size_t i = 0; i < sizeof s_diverge / sizeof s_diverge[0]; i++)
        if (!strcmp(s_diverge[i].test, test))
            return s_diverge[i].why;
    return NULL;
}

int main(int argc, char **argv)
{
    const char *root = getenv("GQ_ONNX_TESTDATA") ? getenv("GQ_ONNX_TESTDATA") : S_TESTDATA;
    const char *accel = argc < 2                       ? NULL
                        : !strcmp(argv[1], "--opencl") ? "opencl"
                        : !strcmp(argv[1], "--vulkan") ? "vulkan"
                                                       : NULL;
    DIR *d = opendir(root);
    if (!d) {
        printf("no ONNX node tests at %s (package libonnx-testdata): skipped\n", root);
        return 77;
    }
    gq_backend_t *be = NULL;
    gq_onnx_accel_t *ax = accel ? s_accel(accel, &be) : NULL;
    s_fallbacks_t fb = {.nops = 0};
    int on_device = 0;
    if (accel && !ax) {
        int rc = be ? 1 : 77; /* a device whose accelerator does not start is a failure */
        closedir(d);
        gq_backend_destroy(&be);
        return rc;
    }
    char **names = NULL;
    size_t nn = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') {
            names = realloc(names, (nn + 1) * sizeof *names);
            names[nn++] = strdup(e->d_name);
        }
    closedir(d);
    qsort(names, nn, sizeof *names, s_cmp);
    char list_buf[64];
    snprintf(list_buf, sizeof list_buf, "onnx_node_tests_%s.txt", accel ? accel : "");
    const char *list_name = argc > 2 ? argv[2] : !accel ? "onnx_node_tests.txt" : list_buf;
    FILE *list = fopen(list_name, "w");
    int passed = 0, failed = 0, skipped = 0;
    for (size_t t = 0; t < nn; t++) {
        char path[1024], err[512] = "", why[512] = "";
        if (s_diverges(names[t])) {
            if (list)
                fprintf(list, "skip %s  # %s\n", names[t], s_diverges(names[t]));
            skipped++;
            free(names[t]);
            continue;
        }
        snprintf(path, sizeof path, "%s/%s/model.onnx", root, names[t]);
        gq_status rc;
        gq_onnx_model_t *m = gq_onnx_model_load(path, NULL, &rc, err, sizeof err);
        gq_onnx_plan_t *p = m ? gq_onnx_plan_new(m, &rc, err, sizeof err) : NULL;
        const char *verdict = "skip";
        int test_dev = 0; /* steps run on the device, over the test's data sets */
        if (!p) {
            const char *e = strstr(err, ": ");
            snprintf(why, sizeof why, "%s", rc == GQ_EUNSUPPORTED && e ? e + 2 : err);
            if (rc != GQ_EUNSUPPORTED && rc != GQ_EDTYPE) {
                verdict = "FAIL";
                failed++;
            } else
                skipped++;
        } else if (ax && gq_onnx_plan_set_accel(p, ax, err, sizeof err)) {
            verdict = "FAIL";
            failed++;
            snprintf(why, sizeof why, "the accelerator refuses the plan: %.400s", err);
        } else {
            int sets = 0, bad = 0, dtype_gap = 0, dev_steps = 0;
            gq_onnx_plan_on_fallback(p, ax ? s_count_fallback : NULL, &fb);
            for (int s = 0; s < 8 && !bad && !dtype_gap; s++) {
                gq_view_t in[16], out[16], want[16];
                int nin = 0, nw = 0;
                memset(out, 0, sizeof out);
                for (int k = 0; k < 16; k++) {
                    snprintf(path, sizeof path, "%s/%s/test_data_set_%d/input_%d.pb", root,
                             names[t], s, k);
                    if (access(path, R_OK))
                        break;
                    if (gq_onnx_tensor_load(path, NULL, &in[nin].desc, &in[nin].data, err,
                                            sizeof err)) {
                        dtype_gap = 1; /* an element type gq has no dtype for */
                        const char *rel = strstr(err, names[t]);
                        snprintf(why, sizeof why, "%s", rel ? rel : err);
                        break;
                    }
                    in[nin].nbytes = gq_tdesc_nbytes(&in[nin].desc);
                    nin++;
                }
                for (int k = 0; k < 16; k++) {
                    snprintf(path, sizeof path, "%s/%s/test_data_set_%d/output_%d.pb", root,
                             names[t], s, k);
                    if (access(path, R_OK) || gq_onnx_tensor_load(path, NULL, &want[nw].desc,
                                                                  &want[nw].data, err, sizeof err))
                        break;
                    nw++;
                }
                if (dtype_gap || (nin == 0 && nw == 0)) {
                    for (int k = 0; k < nin; k++)
                        free(in[k].data);
                    for (int k = 0; k < nw; k++)
                        free(want[k].data);
                    break;
                }
                sets++;
                rc = gq_onnx_plan_run(p, in, nin, out, 16, err, sizeof err);
                int acc = 0;
                gq_onnx_plan_last_run(p, &acc, NULL);
                dev_steps += acc;
                if (rc == GQ_EDTYPE || rc == GQ_EUNSUPPORTED) {
                    dtype_gap = 1;
                    snprintf(why, sizeof why, "%s", err);
                } else if (rc) {
                    bad = 1;
                    snprintf(why, sizeof why, "set %d: %.480s", s, err);
                } else {
                    for (int k = 0; k < nw && !bad; k++)
                        if (s_compare(&out[k], &want[k].desc, want[k].data, why, sizeof why))
                            bad = 1;
                    for (int k = 0; k < gq_onnx_plan_output_count(p); k++)
                        free(out[k].data);
                }
                for (int k = 0; k < nin; k++)
                    free(in[k].data);
                for (int k = 0; k < nw; k++)
                    free(want[k].data);
            }
            if (bad) {
                verdict = "FAIL";
                failed++;
            } else if (dtype_gap || sets == 0) {
                skipped++;
                if (!sets && !*why)
                    snprintf(why, sizeof why, "no test data");
            } else {
                verdict = "pass";
                passed++;
                on_device += dev_steps > 0;
            }
            test_dev = dev_steps;
        }
        if (list)
            fprintf(list, "%s %s%s%s%s\n", verdict, names[t], *why ? "  # " : "", why,
                    test_dev ? (accel && !strcmp(accel, "vulkan") ? "  [vulkan]" : "  [opencl]")
                             : "");
        if (!strcmp(verdict, "FAIL"))
            fprintf(stderr, "FAIL %s: %s\n", names[t], why);
        if (p)
            gq_onnx_plan_set_accel(p, NULL, err, sizeof err);
        gq_onnx_plan_destroy(&p);
        gq_onnx_model_destroy(&m);
        free(names[t]);
    }
    free(names);
    if (list)
        fclose(list);
    printf("onnx node tests%s%s%s: %d passed, %d failed, %d skipped (op or dtype not supported "
           "yet); list in %s\n",
           accel ? " (" : "", accel ? accel : "", accel ? " accelerator)" : "", passed, failed,
           skipped, list_name);
    if (ax) {
        printf("%d of the %d passed tests ran steps on %s; steps declined (CPU) by op:", on_device,
               passed, accel);
        for (int i = 0; i < fb.nops; i++)
            printf(" %s %d", fb.op[i], fb.n[i]);
        printf("\n");
    }
    gq_onnx_accel_destroy(&ax);
    gq_backend_destroy(&be);
    return failed ? 1 : 0;
}
