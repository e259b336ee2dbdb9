/* Audio files in and out of gpuq tensors, through libsndfile (WAV, FLAC, Ogg/Vorbis, AIFF,
 * CAF, MP3 where the library has it ...). Samples become f32 in [-1, 1], channel-first:
 * [channels, frames], the layout librosa uses for multichannel audio and the one every
 * dsp.* op takes ([..., T] with channels as a batch dim). */
#ifndef GQ_AUDIO_H
#define GQ_AUDIO_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"
#include "tensor.h"

/* Longest file read, in samples over all channels (2^31: an hour of 8-channel 48 kHz
 * audio is 1.4e9). A bound on what one read allocates. */
#define GQ_AUDIO_MAX_SAMPLES (1ll << 31)

/* Whether path's extension names an audio format gpuq reads (".wav", ".flac" ...; case
 * insensitive). The CLI uses it to tell audio from .npy. */
bool gq_audio_is_audio_path(const char *path);

/* Reads path into *data (f32, 64-byte aligned, caller frees with free()): desc becomes
 * f32[channels, frames], or f32[frames] when mono is set (channels averaged). *sr gets the
 * file's sample rate. Errors name the file: GQ_EIO when it cannot be opened, GQ_EFORMAT
 * when libsndfile cannot decode it (with libsndfile's reason), GQ_ETOOBIG past
 * GQ_AUDIO_MAX_SAMPLES, GQ_ENOMEM. */
gq_status gq_audio_read(const char *path, bool mono, gq_tdesc_t *desc, void **data, int *sr,
                        char *err, size_t errlen);

/* Writes an f32 or f64 tensor of shape [frames] or [channels, frames] (channels 1..256) to
 * path at sample rate sr; the format comes from the extension (".wav": 32-bit float WAV, so
 * nothing clips or loses bits; ".flac": 24-bit FLAC, clipped to [-1, 1]). GQ_EDTYPE /
 * GQ_ESHAPE for tensors that are not audio, GQ_EINVAL for an sr outside 1..768000 or an
 * extension it cannot write, GQ_EIO on write failures; err names the file. */
gq_status gq_audio_write(const char *path, const gq_tdesc_t *desc, const void *data, int sr,
                         char *err, size_t errlen);

#endif
