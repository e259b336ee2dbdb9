#!/usr/bin/env bash
# Sets everything up (Debian packages, build) and runs the main job on the embedded
# cluster: broker and worker threads inside the gpuq process, no servers to start.
#
# Set-up: a small audio-event classifier is trained here, on log-mel features gpuq computes
# for 72 synthetic recordings (examples/make_classifier.py: six classes, nearest centroid,
# written as an ONNX model; standard-library Python only).
# Main job: every recording in examples/audio (WAV at 8 to 48 kHz, mono and stereo; made by
# examples/make_audio.py) is mixed to mono, resampled to 16 kHz (dsp.resample), turned into
# 80-band log-mel features (dsp.logmel: n_fft 512, hop 160) and classified by the model
# (onnx.run), all in one pipeline job per file. The class probabilities go to
# out/demo/<name>.npy; the last lines name the top class of each file.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
FEATURES=(dsp.resample --param sr=@sr --param target_sr=16000
          --then dsp.logmel --param sr=16000 --param n_fft=512 --param hop_length=160
          --param n_mels=80)
MODEL=out/model/audio_events.onnx

echo "== set-up: train the classifier on gpuq's log-mel features of synthetic recordings"
if [ ! -f out/train/wav/voice_11.wav ]; then
    python3 examples/make_classifier.py gen out/train/wav 12
fi
build/gpuq local batch --mono "${FEATURES[@]}" --in-dir out/train/wav --out-dir out/train/mel \
    | tail -n 1
python3 examples/make_classifier.py fit out/train/mel "$MODEL"

echo "== examples/audio/*.wav -> mono -> dsp.resample(16 kHz) -> dsp.logmel(80) -> onnx.run -> out/demo/"
mkdir -p out/demo
rm -f out/demo/*.npy
build/gpuq local batch --mono "${FEATURES[@]}" --then onnx.run --param model="$MODEL" \
    --in-dir examples/audio --out-dir out/demo
echo "== top class per file"
python3 examples/make_classifier.py show "$MODEL" out/demo
