#!/usr/bin/env bash
# Builds the image (which compiles the kernels and runs the CPU + emulation tests while building), then
# runs the GPU check (suite, verify, bench --backend cuda) in the build stage with --gpus all when the
# host has the NVIDIA container runtime, else the CPU test suite. The exit code is the suite's.
#   scripts/docker-test.sh [docker build args...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
docker build -f docker/Dockerfile --target build -t jconv:build "$@" .
docker build -f docker/Dockerfile -t jconv "$@" .
if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q nvidia; then
  docker run --rm --gpus all jconv:build scripts/gpu-check.sh
else
  echo "docker-test: no NVIDIA container runtime on this host: CPU and emulation suite only"
  docker run --rm jconv:build scripts/package.sh
fi
