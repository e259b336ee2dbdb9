#!/usr/bin/env bash
# Sets everything up (Debian packages, build) and runs the main job on the embedded
# cluster: broker and worker threads inside the gpuq process, no servers to start.
# Job: every recording in examples/tensors (f32[4,2000] .npy) is de-spiked (clamp to
# +-1.5), rescaled, and reduced to its per-channel DC offset; results go to out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
mkdir -p out/demo/clean out/demo/dc
echo "== clean: tensor.clamp(lo=-1.5, hi=1.5) -> tensor.scale(factor=0.5)"
build/gpuq local batch tensor.clamp --param lo=-1.5 --param hi=1.5 \
    --then tensor.scale --param factor=0.5 \
    --in-dir examples/tensors --out-dir out/demo/clean
echo "== DC offset per channel: tensor.mean(axis=1) of the cleaned recordings"
build/gpuq local batch tensor.mean --param axis=1 \
    --in-dir out/demo/clean --out-dir out/demo/dc
