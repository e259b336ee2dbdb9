/* bench_vulkan: the Vulkan backend against its CPU peers, in the same run.
 *
 * (1) SGEMM (gq_vk_sgemm, shaders/sgemm.comp) on resident device buffers against OpenBLAS's
 *     cblas_sgemm on host memory: square sizes and the shapes the ONNX test models give a
 *     GEMM (conv as im2col, Gemm, LSTM steps), each with and without transposes. Wall time
 *     per call (submit and wait included), best of several segments, the two sides'
 *     segments interleaved; both use every core (lavapipe's threads, OpenBLAS's). The
 *     answers are compared (relative to sum |a||b|, 1e-5).
 * (2) whole tensor ops through the backend (upload, run, download) against the CPU backend
 *     (tensor.scale, tensor.add, tensor.sum on f32), for the dispatch overhead.
 *
 * Ratios are ours / peer in throughput (peer time / our time): >= 1 means Vulkan is faster.
 *
 *   bench_vulkan [--quick] [--device NAME|INDEX]      (env GQ_VK_DEVICE too)
 *
 * Exits 0 with "not measured" when no Vulkan device can start; 1 on a differing answer. */
#include "benchlib.h"
#include "backend.h"
#include "util.h"
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef GQ_HAVE_VULKAN
int main(void)
{
    printf("bench_vulkan: not measured: built without Vulkan\n");
    return 0;
}
#else
#include "gq_vulkan.h"

static int s_quick;

typedef struct {
    const char *what;
    int m, n, k;
    bool ta, tb;
} s_shape_t;

static const s_shape_t s_shapes[] = {
    {"square 64", 64, 64, 64, false, false},
    {"square 128", 128, 128, 128, false, false},
    {"square 256", 256, 256, 256, false, false},
    {"square 256 (A^T B^T)", 256, 256, 256, true, true},
    {"square 512", 512, 512, 512, false, false},
    {"kws conv1d 80->64 k3 (im2col), T=98", 64, 98, 240, false, false},
    {"cnn conv2d 16->32 3x3 (im2col), 16x16", 32, 256, 144, false, false},
    {"LSTM input proj [50*32, 40] x W^T", 1600, 256, 40, false, true},
    {"LSTM step [32, 64] x R^T", 32, 256, 64, false, true},
    {"odd 333 x 517 x 259", 333, 517, 259, false, false},
};

static float *s_rand(size_t n, uint64_t seed)
{
    float *p = malloc(n * sizeof *p);
    if (!p)
        gqb_die("out of memory");
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        p[i] = (float)((double)(seed >> 40) / (double)(1u << 24) * 2.0 - 1.0);
    }
    return p;
}

static double s_now(void)
{
    return (double)gqb_now_ns() / 1e9;
}

/* Best seconds per call of one side over segs segments of reps calls. */
typedef struct {
    gq_backend_t *be;
    const s_shape_t *s;
    gq_buffer_t ba, bb, bc;
    const float *a, *b;
    float *c;
} s_gemm_t;

static int s_lda(const s_shape_t *s)
{
    return s->ta ? s->m : s->k;
}

static int s_ldb(const s_shape_t *s)
{
    return s->tb ? s->k : s->n;
}

static double s_segment(s_gemm_t *g, bool ours, int reps)
{
    const s_shape_t *s = g->s;
    char err[256];
    gq_vk_gemm_t v = {.ta = s->ta,
                      .tb = s->tb,
                      .m = s->m,
                      .n = s->n,
                      .k = s->k,
                      .alpha = 1.0f,
                      .beta = 0.0f,
                      .lda = s_lda(s),
                      .ldb = s_ldb(s),
                      .ldc = s->n};
    double t0 = s_now();
    for (int r = 0; r < reps; r++) {
        if (ours) {
            if (gq_vk_sgemm(g->be, &v, &g->ba, &g->bb, &g->bc, err, sizeof err) ||
                g->be->ops->sync(g->be))
                gqb_die("gq_vk_sgemm: %s", err);
        } else {
            cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans,
                        s->tb ? CblasTrans : CblasNoTrans, s->m, s->n, s->k, 1.0f, g->a, s_lda(s),
                        g->b, s_ldb(s), 0.0f, g->c, s->n);
        }
    }
    return (s_now() - t0) / reps;
}

static int s_bench_gemm(gq_backend_t *be)
{
    printf("(1) SGEMM, resident buffers, wall time per call (submit + wait included)\n");
    printf("%-40s %10s %10s %10s %8s %9s\n", "shape (m x n x k)", "vk GF/s", "blas GF/s", "vk ms",
           "ratio", "max err");
    int bad = 0;
    size_t nshapes = sizeof s_shapes / sizeof s_shapes[0];
    for (size_t i = 0; i < nshapes; i++) {
        const s_shape_t *s = &s_shapes[i];
        if (s_quick && (s->m >= 512 || s->n >= 512))
            continue;
        size_t na = (size_t)s->m * s->k, nb = (size_t)s->k * s->n, nc = (size_t)s->m * s->n;
        s_gemm_t g = {.be = be, .s = s};
        float *a = s_rand(na, 1 + i), *b = s_rand(nb, 100 + i), *c = calloc(nc, sizeof *c),
              *got = calloc(nc, sizeof *got);
        g.a = a;
        g.b = b;
        g.c = c;
        if (!c || !got || be->ops->alloc(be, na * 4, &g.ba) || be->ops->alloc(be, nb * 4, &g.bb) ||
            be->ops->alloc(be, nc * 4, &g.bc) || be->ops->upload(be, &g.ba, a, na * 4) ||
            be->ops->upload(be, &g.bb, b, nb * 4))
            gqb_die("vulkan: cannot stage %s", s->what);
        double flops = 2.0 * s->m * s->n * s->k;
        /* About 0.2 s per side per segment at OpenBLAS's speed, at least 3 calls. */
        double t1 = s_segment(&g, false, 1);
        s_segment(&g, true, 1); /* warm-up: the pipeline is made on first use */
        int reps = (int)(0.2 / (t1 > 1e-7 ? t1 : 1e-7));
        reps = reps < 3 ? 3 : reps > 20000 ? 20000 : reps;
        if (s_quick)
            reps = reps / 4 + 1;
        double best_vk = 1e30, best_blas = 1e30;
        for (int seg = 0; seg < (s_quick ? 2 : 4); seg++) {
            double tb = s_segment(&g, false, reps), tv = s_segment(&g, true, (reps + 3) / 4);
            best_blas = tb < best_blas ? tb : best_blas;
            best_vk = tv < best_vk ? tv : best_vk;
        }
        /* Compare with a fresh OpenBLAS answer. */
        s_segment(&g, false, 1);
        be->ops->download(be, got, &g.bc, nc * 4);
        double maxe = 0;
        for (int r = 0; r < s->m; r++)
            for (int col = 0; col < s->n; col++) {
                double sa = 0;
                for (int l = 0; l < s->k; l++) {
                    float av = s->ta ? a[(size_t)l * s->m + r] : a[(size_t)r * s->k + l];
                    float bv = s->tb ? b[(size_t)col * s->k + l] : b[(size_t)l * s->n + col];
                    sa += fabs((double)av * bv);
                }
                size_t o = (size_t)r * s->n + col;
                double e = fabs((double)got[o] - c[o]) / (sa > 0 ? sa : 1);
                maxe = e > maxe || isnan(e) ? e : maxe;
            }
        bool ok = maxe <= 1e-5;
        bad |= !ok;
        char label[64];
        snprintf(label, sizeof label, "%s (%dx%dx%d)", s->what, s->m, s->n, s->k);
        printf("%-40.40s %10.2f %10.2f %10.3f %8.3f %9.2g%s\n", label, flops / best_vk / 1e9,
               flops / best_blas / 1e9, best_vk * 1e3, best_blas / best_vk, maxe,
               ok ? "" : "  DIFFERS");
        be->ops->free(be, &g.ba);
        be->ops->free(be, &g.bb);
        be->ops->free(be, &g.bc);
        free(a);
        free(b);
        free(c);
        free(got);
    }
    return bad;
}

/* One whole op on be: upload inputs, run, download output. */
static double s_op(gq_backend_t *be, const gq_args_t *a, const gq_tdesc_t *in, int nin,
                   void *const *hin, const gq_tdesc_t *out, void *hout, int reps)
{
    char err[256];
    double t0 = s_now();
    for (int r = 0; r < reps; r++) {
        gq_buffer_t ib[2], ob;
        for (int i = 0; i < nin; i++) {
            size_t nb = gq_tdesc_nbytes(&in[i]);
            if (be->ops->wrap_host
                    ? be->ops->wrap_host(be, hin[i], nb, &ib[i])
                    : (be->ops->alloc(be, nb, &ib[i]) || be->ops->upload(be, &ib[i], hin[i], nb)))
                gqb_die("%s: staging", be->ops->name);
        }
        size_t onb = gq_tdesc_nbytes(out);
        if (be->ops->wrap_host ? be->ops->wrap_host(be, hout, onb, &ob)
                               : be->ops->alloc(be, onb, &ob))
            gqb_die("%s: output", be->ops->name);
        if (be->ops->run(be, a, in, ib, nin, out, &ob, 1, err, sizeof err))
            gqb_die("%s: %s", be->ops->name, err);
        if (!be->ops->wrap_host && be->ops->download(be, hout, &ob, onb))
            gqb_die("%s: download", be->ops->name);
        for (int i = 0; i < nin; i++)
            be->ops->free(be, &ib[i]);
        be->ops->free(be, &ob);
    }
    return (s_now() - t0) / reps;
}

static void s_bench_ops(gq_backend_t *vk, gq_backend_t *cpu)
{
    printf("\n(2) whole ops (upload, run, download) vs the CPU backend, f32\n");
    printf("%-14s %10s %10s %10s %8s\n", "op", "elements", "vk us", "cpu us", "ratio");
    static const char *const ops[] = {"tensor.scale", "tensor.add", "tensor.sum"};
    static const int64_t sizes[] = {16, 16384, 1 << 20, 1 << 24};
    for (size_t o = 0; o < 3; o++)
        for (size_t z = 0; z < 4; z++) {
            if (s_quick && sizes[z] > (1 << 20))
                continue;
            gq_args_t a;
            char err[256];
            gq_param_t p[1] = {{.name = "factor", .v = {.type = GQ_PT_FLOAT, .f = 0.5}}};
            if (gq_op_resolve(gq_op_find(ops[o]), p, o == 0 ? 1 : 0, &a, err, sizeof err))
                gqb_die("%s", err);
            int64_t shape[2] = {sizes[z] >= 1024 ? 1024 : 1,
                                sizes[z] >= 1024 ? sizes[z] / 1024 : sizes[z]};
            gq_tdesc_t in[2], out;
            gq_tdesc_init(&in[0], GQ_F32, shape, 2);
            in[1] = in[0];
            int nin = o == 1 ? 2 : 1, nout;
            gq_op_infer(&a, in, nin, &out, &nout, err, sizeof err);
            float *x = s_rand((size_t)sizes[z], 7), *y = s_rand((size_t)sizes[z], 8);
            float *r = malloc(gq_tdesc_nbytes(&out) + 4);
            void *hin[2] = {x, y};
            double t1 = s_op(cpu, &a, in, nin, hin, &out, r, 1);
            int reps = (int)(0.1 / (t1 > 1e-6 ? t1 : 1e-6));
            reps = reps < 3 ? 3 : reps > 5000 ? 5000 : reps;
            s_op(vk, &a, in, nin, hin, &out, r, 2);
            double bc = 1e30, bv = 1e30;
            for (int seg = 0; seg < 3; seg++) {
                double tc = s_op(cpu, &a, in, nin, hin, &out, r, reps);
                double tv = s_op(vk, &a, in, nin, hin, &out, r, reps);
                bc = tc < bc ? tc : bc;
                bv = tv < bv ? tv : bv;
            }
            printf("%-14s %10lld %10.1f %10.1f %8.3f\n", ops[o], (long long)sizes[z], bv * 1e6,
                   bc * 1e6, bc / bv);
            free(x);
            free(y);
            free(r);
        }
}

int main(int argc, char **argv)
{
    gqb_init("bench_vulkan");
    const char *dev = getenv("GQ_VK_DEVICE");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            s_quick = 1;
        else if (!strcmp(argv[i], "--device") && i + 1 < argc)
            dev = argv[++i];
        else
            gqb_die("usage: bench_vulkan [--quick] [--device NAME|INDEX]");
    }
    if (!getenv("GQ_LOG"))
        gq_log_set_level(GQ_LOG_WARN);
    gq_backend_config_t cfg = {.device_index = -1, .threads = 1};
    long long idx;
    if (dev && !gq_parse_int(dev, 0, 1 << 20, &idx))
        cfg.device_index = (int)idx;
    else
        cfg.device_match = dev;
    char err[256];
    gq_backend_t *vk = gq_backend_vulkan_new(&cfg, err, sizeof err);
    if (!vk) {
        printf("bench_vulkan: not measured: %s\n", err);
        return 0;
    }
    gq_backend_t *cpu = gq_backend_cpu_new(&cfg, err, sizeof err);
    gq_device_info_t d;
    vk->ops->devices(vk, &d, 1);
    printf("vulkan: %s (%s, driver %s); OpenBLAS %s, %d threads\n\n", d.name, d.vendor, d.driver,
           openblas_get_config(), openblas_get_num_threads());
    int bad = s_bench_gemm(vk);
    s_bench_ops(vk, cpu);
    gq_backend_destroy(&vk);
    gq_backend_destroy(&cpu);
    return bad ? 1 : 0;
}
#endif
