#!/usr/bin/env bash
# Installs the Debian packages gpuq needs to build and test. Idempotent: when every
# package is already there it prints nothing and touches nothing.
set -euo pipefail

PKGS=(
    build-essential cmake pkg-config git
    libzmq3-dev libprotobuf-c-dev protobuf-c-compiler
    ocl-icd-opencl-dev opencl-headers pocl-opencl-icd clinfo
    libvulkan-dev mesa-vulkan-drivers glslc vulkan-tools
    liblz4-dev libxxhash-dev libsystemd-dev
    libfftw3-dev libsoxr-dev libebur128-dev libsndfile1-dev
    liblmdb-dev libhiredis-dev redis-server
    libonnx-testdata libopenblas-dev
    python3 python3-venv
)

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "bootstrap: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
fi
echo "bootstrap: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
