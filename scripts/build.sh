#!/usr/bin/env bash
# Installs what the build needs (Debian packages) and builds gpuq with CMake.
#   BUILD_DIR (default build), BUILD_TYPE (default RelWithDebInfo), extra args go to cmake.
# Under CI=true warnings are errors.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
BUILD_DIR=${BUILD_DIR:-build}
args=(-DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}")
[ "${CI:-}" = "true" ] && args+=(-DGQ_WERROR=ON)
cmake -S . -B "$BUILD_DIR" "${args[@]}" "$@" >/dev/null
log="$BUILD_DIR/build.log"
if ! cmake --build "$BUILD_DIR" -j"$(nproc)" >"$log" 2>&1; then
    grep -E 'error|warning' "$log" | head -40 >&2 || true
    tail -20 "$log" >&2
    echo "build failed in $BUILD_DIR (full log: $log)" >&2
    exit 1
fi
grep -E 'warning' "$log" >&2 || true
