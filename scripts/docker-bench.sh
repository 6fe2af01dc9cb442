#!/usr/bin/env bash
# Runs `jconv bench` in the runtime image, on the GPU when the host has the NVIDIA container runtime.
#   scripts/docker-bench.sh [bench options...]      e.g. --backend cuda --json /work/out.json
# The current directory is mounted at /work, so --json and --report paths under it come back.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
docker build -f "$root/docker/Dockerfile" -t jconv "$root"
gpus=()
if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q nvidia; then gpus=(--gpus all); fi
docker run --rm "${gpus[@]}" -v "$PWD:/work" jconv bench "$@"
