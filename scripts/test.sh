#!/usr/bin/env bash
# Sets everything up (Debian packages, build, the tests' Python venv) and runs the whole
# test suite through ctest. Under CI=true (or GQ_SANITIZE=1) the unit, fuzz-replay and
# integration tests also run once more in an ASan+UBSan build first.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
./scripts/pyenv.sh build/venv
jobs=$(nproc)
if [ "${CI:-}" = "true" ] || [ "${GQ_SANITIZE:-}" = "1" ]; then
    echo "== ASan+UBSan build: unit, fuzz replay and integration tests"
    BUILD_DIR=build-asan BUILD_TYPE=Debug GQ_QUIET=1 ./scripts/build.sh -DGQ_ASAN=ON -DGQ_UBSAN=ON -DGQ_BENCH=OFF
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        ctest -j"$jobs" --output-on-failure -R "^(unit|fuzz|integration)\.")
fi
echo "== test suite"
cd build
ctest -j"$jobs" --output-on-failure
