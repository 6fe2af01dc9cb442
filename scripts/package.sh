#!/usr/bin/env bash
# Builds and tests the jar on this JDK: the unit, property, golden and CLI tests (CPU backend, CUDA
# kernels under emulation; GPU cases where a GPU is present), then target/jconv.jar and target/lib/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mvn -B -ntp verify
