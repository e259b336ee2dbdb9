/* Internal to the OpenCL dsp.* family (cl_dsp.c: table, filters, levels, framing;
 * cl_fft.c: FFTs and the spectral ops): kernel ids and the call context handlers share. */
#ifndef GQ_CL_DSP_H
#define GQ_CL_DSP_H

#include "cl_int.h"
#include "ops_dsp_spectral.h"

/* Kernel kinds of kernels/dsp.cl and kernels/fft.cl; each has an f32 and (with fp64) an
 * f64 variant, gq_dsp_<kind>_<f32|f64>. */
typedef enum {
    GQ_DK_GAIN,
    GQ_DK_WINDOW,
    GQ_DK_LEVEL,
    GQ_DK_SCALE_GROUPS,
    GQ_DK_FRAME,
    GQ_DK_OLA,
    GQ_DK_PREEMPH,
    GQ_DK_PREEMPH_ZF,
    GQ_DK_FIR,
    GQ_DK_SOS,
    GQ_DK_LFILTER,
    GQ_DK_WIDEN,
    GQ_DK_FFT_LOCAL,
    GQ_DK_FFT_PASS,
    GQ_DK_FFT_LOAD,
    GQ_DK_FFT_STORE,
    GQ_DK_CHIRP_MUL,
    GQ_DK_SPEC_MUL,
    GQ_DK_STFT_FRAMES,
    GQ_DK_STFT_OUT,
    GQ_DK_ISTFT_IN,
    GQ_DK_ISTFT_OLA,
    GQ_DK_DB_MAX,
    GQ_DK_DB,
    GQ_DK_GAINF,
    GQ_DK_FFT_ROWS,
    GQ_DK_FINITE,
    GQ_DK_OLS_SEG,
    GQ_DK_OLS_OUT,
    GQ_DK_RFFT_PAIRS,
    GQ_DK_RFFT_SPLIT,
    GQ_DK_IRFFT_PACK,
    GQ_DK_MEL,
    GQ_DK_DCT,
    GQ_DK_RESAMPLE,
    GQ_DK_COUNT
} gq_cl_dk_t;

/* One run of a dsp op: where it runs and where its error goes. */
typedef struct {
    gq_cl_t *cl;
    gq_cl_stream_t *st;
    int fam;
    const gq_args_t *a;
    const char *op;
    char *err;
    size_t errlen;
} gq_cl_dsp_ctx_t;

int gq_cl_dsp_kid(const gq_cl_dsp_ctx_t *c, gq_cl_dk_t kind, bool f64);

/* gq_cl_launch / gq_cl_launch_local / gq_cl_scratch for kernel kind of the context. */
gq_status gq_cl_dsp_launch(const gq_cl_dsp_ctx_t *c, gq_cl_dk_t kind, bool f64,
                           const gq_cl_arg_t *args, int nargs, size_t groups, size_t items);
gq_status gq_cl_dsp_launch_ew(const gq_cl_dsp_ctx_t *c, gq_cl_dk_t kind, bool f64,
                              const gq_cl_arg_t *args, int nargs, size_t items);
gq_status gq_cl_dsp_launch_local(const gq_cl_dsp_ctx_t *c, gq_cl_dk_t kind, bool f64,
                                 const gq_cl_arg_t *args, int nargs, size_t groups, size_t local);
gq_status gq_cl_dsp_scratch(const gq_cl_dsp_ctx_t *c, size_t nbytes, cl_mem *out);

/* Size of gq_acc in the kernels: double with fp64, else float. */
size_t gq_cl_dsp_acc_size(const gq_cl_t *cl);

/* Uploads n doubles as gq_acc into fresh scratch. */
gq_status gq_cl_dsp_upload_acc(const gq_cl_dsp_ctx_t *c, const double *v, size_t n, cl_mem *out);

#define GQ_CL_ARG(v)                                                                               \
    {                                                                                              \
        sizeof(v), &(v)                                                                            \
    }

/* Spectral ops (cl_fft.c). */
bool gq_cl_fft_supports(const gq_cl_t *cl, const gq_args_t *a, const gq_tdesc_t *in, int nin);
gq_status gq_cl_fft_run(gq_cl_dsp_ctx_t *c, const gq_tdesc_t *in, cl_mem *mi, int nin,
                        const gq_tdesc_t *out, cl_mem *mo, int nout);
void gq_cl_fft_destroy_state(gq_cl_t *cl, void *state);

/* The STFT of x (geometry g, signal precision f64) into y: complex bins when power is 0,
 * else |X|^power; [batch, n_freq, n_frames] either way, like dsp.stft / dsp.spectrogram. */
gq_status gq_cl_fft_stft(const gq_cl_dsp_ctx_t *c, const gq_dsp_stft_t *g, bool f64, cl_mem x,
                         double power, cl_mem y);

/* dsp.db's kernels over numel values of x into y (may be x), in groups of group values
 * (each with its own maximum): md 0 power_to_db ... 3 db_to_amplitude, amin and ref
 * already squared for the amplitude modes. */
gq_status gq_cl_fft_db(const gq_cl_dsp_ctx_t *c, cl_mem x, cl_mem y, int64_t numel, int64_t group,
                       bool f64, cl_int md, double amin, double ref, cl_int ref_max, double top_db);

/* ---- device tables kept per params (cl_mel.c): mel banks, DCT matrices, resample
 * banks ---- */

/* Where the table cache lives: a slot in the dsp family's state (cl_fft.c), created on
 * first use; the caller holds gq_cl_state_lock. NULL when out of memory. */
void **gq_cl_dsp_tables_slot(gq_cl_t *cl, int fam);
void gq_cl_dsp_tables_destroy(gq_cl_t *cl, void *tables);

/* A table: up to two device buffers made from host bytes. */
#define GQ_CL_TABLE_BUFS 2
typedef struct {
    void *host[GQ_CL_TABLE_BUFS];
    size_t nbytes[GQ_CL_TABLE_BUFS];
} gq_cl_table_src_t;

/* Builds the host side of a table (malloc'd buffers, freed by the cache); GQ_ENOMEM. */
typedef gq_status (*gq_cl_table_make_fn)(const void *params, gq_cl_table_src_t *src);

/* The table for key (the params' bytes, at most 64): from the cache, else made by make and
 * uploaded. The buffers come retained: the caller releases them with
 * gq_cl_dsp_table_release once its commands are enqueued (an entry the cache evicts
 * meanwhile stays valid until then). */
gq_status gq_cl_dsp_table(const gq_cl_dsp_ctx_t *c, const void *key, size_t klen,
                          gq_cl_table_make_fn make, cl_mem out[GQ_CL_TABLE_BUFS]);
void gq_cl_dsp_table_release(cl_mem out[GQ_CL_TABLE_BUFS]);

/* dsp.mel, dsp.logmel, dsp.mfcc (cl_mel.c). */
gq_status gq_cl_mel_run(gq_cl_dsp_ctx_t *c, const gq_tdesc_t *in, cl_mem *mi, int nin,
                        const gq_tdesc_t *out, cl_mem *mo, int nout);

/* The FIR outputs [j0, j0 + n) of every row (T samples) of x by overlap-save in double
 * (fp64 devices), with the direct kernel's stream handling (zi added, the tail to zf): h
 * the K taps on the host, not reversed. Rows holding NaN/Inf must be redone by the
 * direct sum (the caller). GQ_EUNSUPPORTED without touching anything when the filter is
 * too long for a transform or the blocks would be too large: the caller sums directly. */
typedef struct {
    cl_mem x, y, zi, zf;
    bool f64; /* the signal's dtype */
    uint64_t T, rows, K, j0, n;
    int stream, has_zi;
} gq_cl_fir_t;

gq_status gq_cl_fft_ols(const gq_cl_dsp_ctx_t *c, const gq_cl_fir_t *f, const double *h);

#endif
