#!/usr/bin/env bash
# Sets everything up (Debian packages, build) and runs the main job on the embedded
# cluster: broker and worker threads inside the gpuq process, no servers to start.
# Job: every recording in examples/audio (WAV at 8 to 48 kHz, mono and stereo; made by
# examples/make_audio.py) is mixed to mono, resampled to 16 kHz (dsp.resample) and turned
# into 80-band log-mel features (dsp.logmel: n_fft 512, hop 160, as speech models take them).
# One line per file; the features go to out/demo/<name>.npy.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
mkdir -p out/demo
echo "== examples/audio/*.wav -> mono -> dsp.resample(16 kHz) -> dsp.logmel(80 mels) -> out/demo/"
build/gpuq local batch --mono \
    dsp.resample --param sr=@sr --param target_sr=16000 \
    --then dsp.logmel --param sr=16000 --param n_fft=512 --param hop_length=160 --param n_mels=80 \
    --in-dir examples/audio --out-dir out/demo
