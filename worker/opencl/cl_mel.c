/* OpenCL host side of dsp.mel, dsp.logmel and dsp.mfcc (kernels in kernels/mel.cl), and the
 * cache of small device tables they and dsp.resample use. The pipeline stays on the
 * device: the power spectrogram (dsp.spectrogram's kernels), the sparse mel filterbank
 * (weights from gq_dsp_mel_bank_build, the CPU's), power_to_db per spectrogram (dsp.db's
 * kernels), the DCT-II ortho with the lifter (gq_dsp_dct_matrix, the CPU's). Semantics:
 * docs/dsp-spectral.md; the CPU kernels in worker/cpu/cpu_dsp_mel.c are the reference.
 *
 * Tables (mel bank, DCT matrix, resample bank) are kept on the device per params, at most
 * S_TABLES_MAX of them, the least recently used released first. A caller gets its buffers
 * retained and releases them after enqueueing: OpenCL keeps a released buffer alive until
 * the commands using it finish, so an eviction never pulls one from under a queued
 * command. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cl_dsp.h"
#include "cpu/cpu_dsp_util.h"
#include "util.h"

#define S_TABLES_MAX 16
#define S_KEY_MAX 64
#define S_TABLE_CACHE_BYTES ((size_t)4 << 20) /* larger tables are uploaded per call */

typedef struct {
    unsigned char key[S_KEY_MAX];
    size_t klen;
    uint64_t used;
    cl_mem m[GQ_CL_TABLE_BUFS];
} s_table_t;

typedef struct {
    s_table_t e[S_TABLES_MAX];
    int n;
    uint64_t tick;
} s_tables_t;

static void s_release(cl_mem *m)
{
    for (int i = 0; i < GQ_CL_TABLE_BUFS; i++) {
        if (m[i])
            clReleaseMemObject(m[i]);
        m[i] = NULL;
    }
}

void gq_cl_dsp_tables_destroy(gq_cl_t *cl, void *tables)
{
    (void)cl;
    s_tables_t *t = tables;
    for (int i = 0; t && i < t->n; i++)
        s_release(t->e[i].m);
    free(t);
}

void gq_cl_dsp_table_release(cl_mem out[GQ_CL_TABLE_BUFS])
{
    s_release(out);
}

static void s_src_free(gq_cl_table_src_t *src)
{
    for (int i = 0; i < GQ_CL_TABLE_BUFS; i++)
        free(src->host[i]);
    memset(src, 0, sizeof *src);
}

/* The device buffers of src (an empty one still gets a small buffer: kernels need one). */
static gq_status s_upload(const gq_cl_dsp_ctx_t *c, const gq_cl_table_src_t *src,
                          cl_mem m[GQ_CL_TABLE_BUFS])
{
    for (int i = 0; i < GQ_CL_TABLE_BUFS; i++) {
        size_t nb = src->nbytes[i] ? src->nbytes[i] : 16;
        cl_int crc;
        m[i] = clCreateBuffer(gq_cl_context(c->cl), CL_MEM_READ_ONLY, nb, NULL, &crc);
        gq_status rc =
            crc == CL_SUCCESS ? GQ_OK : gq_cl_fail(c->err, c->errlen, c->op, "clCreateBuffer", crc);
        if (!rc && src->nbytes[i])
            rc = gq_cl_write(c->cl, c->st, m[i], src->host[i], src->nbytes[i], c->op, c->err,
                             c->errlen);
        if (rc) {
            s_release(m);
            return rc;
        }
    }
    return GQ_OK;
}

gq_status gq_cl_dsp_table(const gq_cl_dsp_ctx_t *c, const void *key, size_t klen,
                          gq_cl_table_make_fn make, cl_mem out[GQ_CL_TABLE_BUFS])
{
    memset(out, 0, GQ_CL_TABLE_BUFS * sizeof *out);
    if (klen > S_KEY_MAX) {
        gq_errf(c->err, c->errlen, "%s: opencl: table key of %zu bytes", c->op, klen);
        return GQ_EBACKEND;
    }
    gq_cl_state_lock(c->cl);
    void **slot = gq_cl_dsp_tables_slot(c->cl, c->fam);
    if (slot && !*slot)
        *slot = calloc(1, sizeof(s_tables_t));
    s_tables_t *t = slot ? *slot : NULL;
    gq_status rc = GQ_OK;
    if (!t) {
        gq_cl_state_unlock(c->cl);
        gq_errf(c->err, c->errlen, "%s: opencl: out of memory for the table cache", c->op);
        return GQ_ENOMEM;
    }
    for (int i = 0; i < t->n; i++) {
        s_table_t *e = &t->e[i];
        if (e->klen == klen && !memcmp(e->key, key, klen)) {
            e->used = ++t->tick;
            for (int j = 0; j < GQ_CL_TABLE_BUFS; j++) {
                clRetainMemObject(e->m[j]);
                out[j] = e->m[j];
            }
            gq_cl_state_unlock(c->cl);
            return GQ_OK;
        }
    }
    gq_cl_table_src_t src;
    memset(&src, 0, sizeof src);
    rc = make(key, &src);
    if (rc == GQ_ENOMEM)
        gq_errf(c->err, c->errlen, "%s: opencl: out of memory for a table", c->op);
    if (!rc)
        rc = s_upload(c, &src, out);
    size_t total = src.nbytes[0] + src.nbytes[1];
    s_src_free(&src);
    if (!rc && total <= S_TABLE_CACHE_BYTES) {
        int at = t->n;
        if (at == S_TABLES_MAX) { /* evict the least recently used */
            at = 0;
            for (int i = 1; i < t->n; i++)
                if (t->e[i].used < t->e[at].used)
                    at = i;
            s_release(t->e[at].m);
        } else {
            t->n++;
        }
        s_table_t *e = &t->e[at];
        memset(e, 0, sizeof *e);
        memcpy(e->key, key, klen);
        e->klen = klen;
        e->used = ++t->tick;
        for (int j = 0; j < GQ_CL_TABLE_BUFS; j++) {
            e->m[j] = out[j];
            clRetainMemObject(out[j]);
        }
    }
    gq_cl_state_unlock(c->cl);
    return rc;
}

/* ---- the tables of the mel ops ---- */

/* Keys are memset first, so padding bytes compare equal. */
typedef struct {
    int tag; /* 1 */
    int n_mels, htk, slaney, f64;
    double sr, fmin, fmax;
    int64_t n_fft;
} s_mel_key_t;

typedef struct {
    int tag; /* 2 */
    int n_mfcc, n_mels, acc64;
    double lifter;
} s_dct_key_t;

/* idx: (lo, cnt, off) per filter as uint; w: the weights in the signal's precision. */
static gq_status s_make_mel(const void *params, gq_cl_table_src_t *src)
{
    const s_mel_key_t *k = params;
    gq_dsp_mel_t mp = {.sr = k->sr,
                       .fmin = k->fmin,
                       .fmax = k->fmax,
                       .n_mels = k->n_mels,
                       .htk = k->htk,
                       .slaney_norm = k->slaney};
    gq_dsp_mel_bank_t b;
    if (gq_dsp_mel_bank_build(&b, &mp, k->n_fft))
        return GQ_ENOMEM;
    int nm = b.n_mels;
    int64_t nw = nm ? b.off[nm - 1] + b.cnt[nm - 1] : 0;
    size_t es = k->f64 ? sizeof(double) : sizeof(float);
    src->nbytes[0] = (size_t)nm * 3 * sizeof(cl_uint);
    src->nbytes[1] = (size_t)nw * es;
    src->host[0] = malloc(src->nbytes[0] + 1);
    src->host[1] = malloc(src->nbytes[1] + 1);
    if (!src->host[0] || !src->host[1]) {
        gq_dsp_mel_bank_free(&b);
        return GQ_ENOMEM;
    }
    cl_uint *idx = src->host[0];
    for (int m = 0; m < nm; m++) {
        idx[3 * m] = (cl_uint)b.lo[m];
        idx[3 * m + 1] = (cl_uint)b.cnt[m];
        idx[3 * m + 2] = (cl_uint)b.off[m];
    }
    if (k->f64)
        memcpy(src->host[1], b.wd, src->nbytes[1]);
    else
        memcpy(src->host[1], b.wf, src->nbytes[1]);
    gq_dsp_mel_bank_free(&b);
    return GQ_OK;
}

/* The DCT matrix as gq_acc. */
static gq_status s_make_dct(const void *params, gq_cl_table_src_t *src)
{
    const s_dct_key_t *k = params;
    size_t n = (size_t)k->n_mfcc * (size_t)k->n_mels;
    double *d = malloc(n * sizeof *d + 1);
    src->nbytes[0] = n * (k->acc64 ? sizeof(double) : sizeof(float));
    src->host[0] = d;
    if (!d)
        return GQ_ENOMEM;
    gq_dsp_dct_matrix(k->n_mfcc, k->n_mels, k->lifter, d);
    if (!k->acc64)
        for (size_t i = 0; i < n; i++)
            ((float *)d)[i] = (float)d[i];
    return GQ_OK;
}

/* ---- mel, logmel, mfcc ---- */

gq_status gq_cl_mel_run(gq_cl_dsp_ctx_t *c, const gq_tdesc_t *in, cl_mem *mi, int nin,
                        const gq_tdesc_t *out, cl_mem *mo, int nout)
{
    (void)nin, (void)out, (void)nout;
    bool mfcc = !strcmp(c->op, "dsp.mfcc"), log = mfcc || !strcmp(c->op, "dsp.logmel");
    gq_dsp_stft_t g;
    gq_dsp_mel_t mp;
    gq_status rc;
    if ((rc = gq_dsp_stft_geom(c->a, &in[0], &g, c->err, c->errlen)) ||
        (rc = gq_dsp_mel_params(c->a, &mp, c->err, c->errlen)))
        return rc;
    if (!g.batch)
        return GQ_OK;
    bool f64 = in[0].dtype == GQ_F64;
    size_t es = f64 ? sizeof(double) : sizeof(float);
    uint64_t nt = (uint64_t)g.n_frames, nf = (uint64_t)g.n_freq, nm = (uint64_t)mp.n_mels;
    uint64_t b = (uint64_t)g.batch, n_mfcc = mfcc ? (uint64_t)gq_args_int(c->a, "n_mfcc") : 0;
    cl_mem pw, mel = mo[0], lm = mo[0];
    cl_mem bank[GQ_CL_TABLE_BUFS] = {NULL}, dct[GQ_CL_TABLE_BUFS] = {NULL};
    s_mel_key_t mk;
    memset(&mk, 0, sizeof mk);
    mk.tag = 1;
    mk.n_mels = mp.n_mels, mk.htk = mp.htk, mk.slaney = mp.slaney_norm, mk.f64 = f64;
    mk.sr = mp.sr, mk.fmin = mp.fmin, mk.fmax = mp.fmax, mk.n_fft = g.n_fft;
    if ((rc = gq_cl_dsp_scratch(c, (size_t)(b * nf * nt) * es, &pw)) ||
        (log && (rc = gq_cl_dsp_scratch(c, (size_t)(b * nm * nt) * es, &mel))) ||
        (mfcc && (rc = gq_cl_dsp_scratch(c, (size_t)(b * nm * nt) * es, &lm))) ||
        (rc = gq_cl_fft_stft(c, &g, f64, mi[0], gq_args_float(c->a, "power"), pw)) ||
        (rc = gq_cl_dsp_table(c, &mk, sizeof mk, s_make_mel, bank)))
        goto done;
    cl_ulong cnf = nf, cnt = nt, total = b * nm * nt;
    cl_uint cnm = (cl_uint)nm;
    gq_cl_arg_t ma[] = {GQ_CL_ARG(pw),  GQ_CL_ARG(bank[0]), GQ_CL_ARG(bank[1]), GQ_CL_ARG(mel),
                        GQ_CL_ARG(cnf), GQ_CL_ARG(cnt),     GQ_CL_ARG(cnm),     GQ_CL_ARG(total)};
    if ((rc = gq_cl_dsp_launch(c, GQ_DK_MEL, f64, ma, 8, 0, (size_t)total)) || !log)
        goto done;
    /* power_to_db per spectrogram [n_mels, n_frames], amin as given (the CPU's logmel). */
    if ((rc = gq_cl_fft_db(c, mel, lm, (int64_t)total, (int64_t)(nm * nt), f64, 0,
                           gq_args_float(c->a, "amin"), gq_args_float(c->a, "ref"),
                           gq_args_bool(c->a, "ref_max"), gq_args_float(c->a, "top_db"))) ||
        !mfcc)
        goto done;
    s_dct_key_t dk;
    memset(&dk, 0, sizeof dk);
    dk.tag = 2;
    dk.n_mfcc = (int)n_mfcc, dk.n_mels = mp.n_mels, dk.acc64 = gq_cl_fp64(c->cl);
    dk.lifter = gq_args_float(c->a, "lifter");
    if ((rc = gq_cl_dsp_table(c, &dk, sizeof dk, s_make_dct, dct)))
        goto done;
    cl_ulong dtotal = b * n_mfcc * nt;
    cl_uint cnk = (cl_uint)n_mfcc;
    gq_cl_arg_t da[] = {GQ_CL_ARG(lm),  GQ_CL_ARG(dct[0]), GQ_CL_ARG(mo[0]), GQ_CL_ARG(cnt),
                        GQ_CL_ARG(cnm), GQ_CL_ARG(cnk),    GQ_CL_ARG(dtotal)};
    rc = gq_cl_dsp_launch(c, GQ_DK_DCT, f64, da, 7, 0, (size_t)dtotal);
done:
    gq_cl_dsp_table_release(bank);
    gq_cl_dsp_table_release(dct);
    return rc;
}
