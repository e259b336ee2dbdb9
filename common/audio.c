/* Audio files through libsndfile (see audio.h). */
#include "audio.h"

#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define S_MAX_CHANNELS 256
#define S_MAX_SR 768000
#define S_CHUNK_FRAMES 65536

static const char *const s_exts[] = {".wav",  ".wave", ".flac", ".ogg",  ".oga",
                                     ".opus", ".aif",  ".aiff", ".aifc", ".au",
                                     ".snd",  ".caf",  ".w64",  ".mp3",  NULL};

static const char *s_ext(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    return dot ? dot : "";
}

bool gq_audio_is_audio_path(const char *path)
{
    const char *ext = s_ext(path);
    for (int i = 0; s_exts[i]; i++)
        if (!strcasecmp(ext, s_exts[i]))
            return true;
    return false;
}

/* Frames come interleaved; they are read in chunks and spread into channel rows (or
 * averaged into one row), so the interleaved copy never exceeds one chunk. */
gq_status gq_audio_read(const char *path, bool mono, gq_tdesc_t *desc, void **data, int *sr,
                        char *err, size_t errlen)
{
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *f = sf_open(path, SFM_READ, &info);
    if (!f) {
        int code = sf_error(NULL);
        snprintf(err, errlen, "%s: %s", path, sf_strerror(NULL));
        return code == SF_ERR_SYSTEM ? GQ_EIO : GQ_EFORMAT;
    }
    gq_status st = GQ_OK;
    float *out = NULL, *chunk = NULL;
    int ch = info.channels;
    if (ch < 1 || ch > S_MAX_CHANNELS || info.samplerate < 1 || info.samplerate > S_MAX_SR ||
        info.frames < 0) {
        snprintf(err, errlen,
                 "%s: %d channels at %d Hz is not audio gpuq takes (1..%d channels, "
                 "1..%d Hz)",
                 path, ch, info.samplerate, S_MAX_CHANNELS, S_MAX_SR);
        st = GQ_EFORMAT;
        goto done;
    }
    if (info.frames > GQ_AUDIO_MAX_SAMPLES / ch) {
        snprintf(err, errlen, "%s: %lld frames x %d channels is over the %lld-sample limit", path,
                 (long long)info.frames, ch, (long long)GQ_AUDIO_MAX_SAMPLES);
        st = GQ_ETOOBIG;
        goto done;
    }
    int64_t frames = info.frames, rows = mono ? 1 : ch;
    out = gq_aligned_alloc(64, (size_t)(rows * frames) * sizeof(float) + 1);
    chunk = malloc((size_t)S_CHUNK_FRAMES * (size_t)ch * sizeof(float));
    if (!out || !chunk) {
        snprintf(err, errlen, "%s: out of memory for %lld frames", path, (long long)frames);
        st = GQ_ENOMEM;
        goto done;
    }
    int64_t at = 0;
    while (at < frames) {
        sf_count_t want = frames - at < S_CHUNK_FRAMES ? frames - at : S_CHUNK_FRAMES;
        sf_count_t got = sf_readf_float(f, chunk, want);
        if (got <= 0)
            break;
        for (sf_count_t i = 0; i < got; i++) {
            const float *fr = chunk + i * ch;
            if (mono) {
                float s = 0;
                for (int c = 0; c < ch; c++)
                    s += fr[c];
                out[at + i] = s / (float)ch;
            } else {
                for (int c = 0; c < ch; c++)
                    out[c * frames + at + i] = fr[c];
            }
        }
        at += got;
    }
    if (at != frames) {
        snprintf(err, errlen, "%s: truncated: %lld of %lld frames could be read (%s)", path,
                 (long long)at, (long long)frames, sf_strerror(f));
        st = GQ_EFORMAT;
        goto done;
    }
    memset(desc, 0, sizeof *desc);
    desc->dtype = GQ_F32;
    if (mono) {
        desc->ndim = 1;
        desc->shape[0] = frames;
    } else {
        desc->ndim = 2;
        desc->shape[0] = ch;
        desc->shape[1] = frames;
    }
    *data = out;
    out = NULL;
    *sr = info.samplerate;
done:
    free(chunk);
    free(out);
    sf_close(f);
    return st;
}

gq_status gq_audio_write(const char *path, const gq_tdesc_t *desc, const void *data, int sr,
                         char *err, size_t errlen)
{
    if (desc->dtype != GQ_F32 && desc->dtype != GQ_F64) {
        snprintf(err, errlen, "%s: a %s tensor is not audio (f32 or f64 samples)", path,
                 gq_dtype_name(desc->dtype));
        return GQ_EDTYPE;
    }
    int64_t ch = desc->ndim == 2 ? desc->shape[0] : 1;
    int64_t frames = desc->ndim == 2 ? desc->shape[1] : desc->ndim == 1 ? desc->shape[0] : -1;
    if (frames < 0 || ch < 1 || ch > S_MAX_CHANNELS) {
        snprintf(err, errlen, "%s: shape is not audio: [frames] or [channels (1..%d), frames]",
                 path, S_MAX_CHANNELS);
        return GQ_ESHAPE;
    }
    if (sr < 1 || sr > S_MAX_SR) {
        snprintf(err, errlen, "%s: sample rate %d is outside 1..%d", path, sr, S_MAX_SR);
        return GQ_EINVAL;
    }
    SF_INFO info;
    memset(&info, 0, sizeof info);
    info.channels = (int)ch;
    info.samplerate = sr;
    const char *ext = s_ext(path);
    if (!strcasecmp(ext, ".wav") || !strcasecmp(ext, ".wave"))
        info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
    else if (!strcasecmp(ext, ".flac"))
        info.format = SF_FORMAT_FLAC | SF_FORMAT_PCM_24;
    else {
        snprintf(err, errlen, "%s: cannot write '%s' files (.wav or .flac)", path, ext);
        return GQ_EINVAL;
    }
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, sf_strerror(NULL));
        return GQ_EIO;
    }
    sf_command(f, SFC_SET_CLIPPING, NULL, SF_TRUE);
    gq_status st = GQ_OK;
    float buf[4096];
    int64_t per = (int64_t)(sizeof buf / sizeof buf[0]) / ch;
    for (int64_t at = 0; at < frames && st == GQ_OK; at += per) {
        int64_t n = frames - at < per ? frames - at : per;
        for (int64_t i = 0; i < n; i++)
            for (int64_t c = 0; c < ch; c++) {
                int64_t k = c * frames + at + i;
                buf[i * ch + c] = desc->dtype == GQ_F32 ? ((const float *)data)[k]
                                                        : (float)((const double *)data)[k];
            }
        if (sf_writef_float(f, buf, n) != n) {
            snprintf(err, errlen, "%s: write failed: %s", path, sf_strerror(f));
            st = GQ_EIO;
        }
    }
    if (sf_close(f) != 0 && st == GQ_OK) {
        snprintf(err, errlen, "%s: closing failed", path);
        st = GQ_EIO;
    }
    return st;
}
