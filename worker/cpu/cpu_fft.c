/* FFTW plan cache and staged execution (see cpu_fft.h). */
#include "cpu_fft.h"
#include "util.h"
#include <fftw3.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <errno.h>
#include <strings.h>

struct gq_fft_plan {
    gq_fft_kind_t kind;
    size_t n;
    bool f64;
    union {
        fftwf_plan f;
        fftw_plan d;
    } u;
    struct gq_fft_plan *next;
};

typedef struct {
    void *buf[2];
    size_t cap[2];
} s_scratch_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static gq_fft_plan_t *s_plans;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static pthread_key_t s_key;
static unsigned s_flags = FFTW_MEASURE;

static void s_scratch_free(void *p)
{
    s_scratch_t *s = p;
    fftw_free(s->buf[0]);
    fftw_free(s->buf[1]);
    free(s);
}

/* Wisdom files (FFTW keeps one per precision): the measured plans of earlier processes, so
 * a new process plans in microseconds what cost ~100 ms to measure the first time.
 * GQ_FFTW_WISDOM is the path prefix ("none": no files); by default
 * $XDG_CACHE_HOME/gpuq/fftw-wisdom, else ~/.cache/gpuq/fftw-wisdom. */
static char s_wisdom[1024];

static void s_wisdom_path(void)
{
    const char *w = getenv("GQ_FFTW_WISDOM"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    if (w && *w)
        snprintf(s_wisdom, sizeof s_wisdom, "%s", strcmp(w, "none") ? w : "");
    else if (x && *x)
        snprintf(s_wisdom, sizeof s_wisdom, "%s/gpuq/fftw-wisdom", x);
    else if (h && *h)
        snprintf(s_wisdom, sizeof s_wisdom, "%s/.cache/gpuq/fftw-wisdom", h);
}

static void s_wisdom_file(const char *ext, char *out, size_t len)
{
    snprintf(out, len, "%s.%s", s_wisdom, ext);
}

/* mkdir -p of the wisdom file's directory; 0 when it exists or was made. */
static int s_wisdom_dir(void)
{
    char d[1024];
    snprintf(d, sizeof d, "%s", s_wisdom);
    char *slash = strrchr(d, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    for (char *q = d + 1; *q; q++)
        if (*q == '/') {
            *q = '\0';
            if (mkdir(d, 0700) && errno != EEXIST)
                return -1;
            *q = '/';
        }
    return mkdir(d, 0700) && errno != EEXIST ? -1 : 0;
}

/* Writes the precision's wisdom through a temporary name: a crash never leaves half a
 * file, and processes that race each leave a whole one. Under s_lock. */
static void s_wisdom_save(bool f64)
{
    char path[1100], tmp[1200];
    if (!s_wisdom[0] || (s_flags & FFTW_ESTIMATE) || s_wisdom_dir())
        return;
    s_wisdom_file(f64 ? "f64" : "f32", path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    int ok = f64 ? fftw_export_wisdom_to_filename(tmp) : fftwf_export_wisdom_to_filename(tmp);
    if (!ok || rename(tmp, path)) {
        unlink(tmp);
        gq_log(GQ_LOG_DEBUG, "fftw: cannot save wisdom to %s", path);
    }
}

static void s_setup(void)
{
    pthread_key_create(&s_key, s_scratch_free);
    const char *eff = getenv("GQ_FFTW_PLANNER");
    if (eff && !strcasecmp(eff, "estimate"))
        s_flags = FFTW_ESTIMATE;
    else if (eff && !strcasecmp(eff, "patient"))
        s_flags = FFTW_PATIENT;
    s_wisdom_path();
    if (!s_wisdom[0])
        return;
    char path[1100];
    s_wisdom_file("f32", path, sizeof path);
    if (access(path, R_OK) == 0 && !fftwf_import_wisdom_from_filename(path))
        gq_log(GQ_LOG_WARN, "fftw: %s is not f32 wisdom: ignored (and replaced)", path);
    s_wisdom_file("f64", path, sizeof path);
    if (access(path, R_OK) == 0 && !fftw_import_wisdom_from_filename(path))
        gq_log(GQ_LOG_WARN, "fftw: %s is not f64 wisdom: ignored (and replaced)", path);
}

/* Element bytes of the input and output arrays of a plan. */
static void s_sizes(const gq_fft_plan_t *p, size_t *in_bytes, size_t *out_bytes)
{
    size_t r = p->f64 ? sizeof(double) : sizeof(float);
    size_t half = (p->n / 2 + 1) * 2 * r, cplx = p->n * 2 * r, real = p->n * r;
    switch (p->kind) {
    case GQ_FFT_R2C:
        *in_bytes = real, *out_bytes = half;
        break;
    case GQ_FFT_C2R:
        *in_bytes = half, *out_bytes = real;
        break;
    default:
        *in_bytes = cplx, *out_bytes = cplx;
    }
}

static bool s_make(gq_fft_plan_t *p)
{
    size_t ib, ob;
    s_sizes(p, &ib, &ob);
    void *in = fftw_malloc(ib), *out = fftw_malloc(ob);
    bool ok = false;
    if (!in || !out)
        goto done;
    int n = (int)p->n;
    unsigned fl = s_flags | (p->kind == GQ_FFT_C2R ? FFTW_PRESERVE_INPUT : 0);
    if (p->f64) {
        switch (p->kind) {
        case GQ_FFT_C2C_FWD:
        case GQ_FFT_C2C_BWD:
            p->u.d = fftw_plan_dft_1d(n, in, out,
                                      p->kind == GQ_FFT_C2C_FWD ? FFTW_FORWARD : FFTW_BACKWARD, fl);
            break;
        case GQ_FFT_R2C:
            p->u.d = fftw_plan_dft_r2c_1d(n, in, out, fl);
            break;
        case GQ_FFT_C2R:
            p->u.d = fftw_plan_dft_c2r_1d(n, in, out, fl);
            break;
        }
        ok = p->u.d != NULL;
    } else {
        switch (p->kind) {
        case GQ_FFT_C2C_FWD:
        case GQ_FFT_C2C_BWD:
            p->u.f = fftwf_plan_dft_1d(
                n, in, out, p->kind == GQ_FFT_C2C_FWD ? FFTW_FORWARD : FFTW_BACKWARD, fl);
            break;
        case GQ_FFT_R2C:
            p->u.f = fftwf_plan_dft_r2c_1d(n, in, out, fl);
            break;
        case GQ_FFT_C2R:
            p->u.f = fftwf_plan_dft_c2r_1d(n, in, out, fl);
            break;
        }
        ok = p->u.f != NULL;
    }
done:
    fftw_free(in);
    fftw_free(out);
    return ok;
}

const gq_fft_plan_t *gq_fft_plan(gq_fft_kind_t kind, size_t n, bool f64)
{
    if (n < 1 || n > INT32_MAX)
        return NULL;
    pthread_once(&s_once, s_setup);
    pthread_mutex_lock(&s_lock);
    gq_fft_plan_t *p = s_plans;
    while (p && !(p->kind == kind && p->n == n && p->f64 == f64))
        p = p->next;
    if (!p) {
        p = calloc(1, sizeof *p);
        if (p) {
            p->kind = kind, p->n = n, p->f64 = f64;
            if (s_make(p)) {
                p->next = s_plans;
                s_plans = p;
                s_wisdom_save(f64);
            } else {
                free(p);
                p = NULL;
            }
        }
    }
    pthread_mutex_unlock(&s_lock);
    return p;
}

/* Per-thread aligned staging buffer i of at least n bytes; NULL when out of memory. */
static void *s_stage(int i, size_t n)
{
    s_scratch_t *s = pthread_getspecific(s_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || pthread_setspecific(s_key, s)) {
            free(s);
            return NULL;
        }
    }
    if (s->cap[i] < n) {
        fftw_free(s->buf[i]);
        s->buf[i] = fftw_malloc(n);
        s->cap[i] = s->buf[i] ? n : 0;
    }
    return s->buf[i];
}

static bool s_aligned(const void *p)
{
    return fftw_alignment_of((double *)(uintptr_t)p) == 0;
}

void gq_fft_exec(const gq_fft_plan_t *p, const void *in, void *out)
{
    size_t ib, ob;
    s_sizes(p, &ib, &ob);
    void *xin = (void *)(uintptr_t)in, *xout = out;
    /* Cached plans are out-of-place on aligned arrays; anything else goes via scratch. */
    if (!s_aligned(in) || in == out) {
        xin = s_stage(0, ib);
        if (!xin)
            abort(); /* a few KiB per thread: no sane recovery when even that fails */
        memcpy(xin, in, ib);
    }
    if (!s_aligned(out)) {
        xout = s_stage(1, ob);
        if (!xout)
            abort();
    }
    if (p->f64) {
        switch (p->kind) {
        case GQ_FFT_C2C_FWD:
        case GQ_FFT_C2C_BWD:
            fftw_execute_dft(p->u.d, xin, xout);
            break;
        case GQ_FFT_R2C:
            fftw_execute_dft_r2c(p->u.d, xin, xout);
            break;
        case GQ_FFT_C2R:
            fftw_execute_dft_c2r(p->u.d, xin, xout);
            break;
        }
    } else {
        switch (p->kind) {
        case GQ_FFT_C2C_FWD:
        case GQ_FFT_C2C_BWD:
            fftwf_execute_dft(p->u.f, xin, xout);
            break;
        case GQ_FFT_R2C:
            fftwf_execute_dft_r2c(p->u.f, xin, xout);
            break;
        case GQ_FFT_C2R:
            fftwf_execute_dft_c2r(p->u.f, xin, xout);
            break;
        }
    }
    if (xout != out)
        memcpy(out, xout, ob);
}

size_t gq_fft_len(const gq_fft_plan_t *p)
{
    return p->n;
}

gq_fft_kind_t gq_fft_kind(const gq_fft_plan_t *p)
{
    return p->kind;
}

void *gq_fft_alloc(size_t nbytes)
{
    return fftw_malloc(nbytes ? nbytes : 1);
}

void gq_fft_free(void *p)
{
    fftw_free(p);
}
