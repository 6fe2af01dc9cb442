#!/usr/bin/env bash
# On a GPU host: the whole test suite with the cuda backend enabled (its tests are skipped elsewhere),
# `jconv verify` (every algorithm of every backend against the float64 reference, and against cuDNN once
# that backend exists), and `jconv bench --backend cuda`. Logs go to OUT_DIR (default target/gpu-check).
#   scripts/gpu-check.sh [OUT_DIR]
# Exit code: non-zero when there is no usable GPU or any step fails.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/target/gpu-check}"
mkdir -p "$out"
cd "$root"
scripts/jconv info | tee "$out/info.txt"
if ! grep -q "^  cuda: available" "$out/info.txt"; then
  echo "gpu-check: the cuda backend is not available here (see info above)" >&2
  exit 2
fi
if command -v mvn >/dev/null; then
  mvn -B -ntp verify 2>&1 | tee "$out/tests.txt"
else
  echo "gpu-check: no Maven here: the unit-test suite is skipped, verify and bench still run" | tee "$out/tests.txt"
fi
scripts/jconv verify 2>&1 | tee "$out/verify.txt"
scripts/jconv bench --backend cuda --math tf32,3xtf32 --json "$out/bench-cuda.json" 2>&1 | tee "$out/bench-cuda.txt"
scripts/jconv bench --backend cpu --json "$out/bench-cpu.json" 2>&1 | tee "$out/bench-cpu.txt"
echo "gpu-check: logs in $out"
