#!/usr/bin/env bash
# Installs what the build needs (Debian packages) and builds gpuq with CMake.
#   BUILD_DIR (default build), BUILD_TYPE (default RelWithDebInfo), extra args go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
BUILD_DIR=${BUILD_DIR:-build}
args=(-DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}")
[ "${CI:-}" = "true" ] && args+=(-DGQ_WERROR=ON)
cmake -S . -B "$BUILD_DIR" "${args[@]}" "$@" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" 2>&1 | grep -vE '^\[ *[0-9]+%\]|^Consolidate compiler|^-- ' || true
test -x "$BUILD_DIR/gpuq" -a -x "$BUILD_DIR/gpuq-broker" -a -x "$BUILD_DIR/gpuq-worker" || {
    echo "build failed" >&2
    cmake --build "$BUILD_DIR" 2>&1 | tail -40 >&2
    exit 1
}
