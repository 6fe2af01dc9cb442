#!/usr/bin/env bash
# The kernel report: ../shared/tools/sass_report.py over cuda-kernels/ (the sm_90 machine code nvcc ships) and the
# rules of scripts/kernel_report_check.py (no spills, no division in any hot loop, implicit-GEMM main loops at >= 75%
# FFMA with 128-bit shared loads). Writes target/kernel-report.{txt,json,md}; non-zero exit when a rule breaks.
#   scripts/kernel-report.sh
# Needs nvcc and nvdisasm 11.8: without it (and as root) `sass_report.py --setup` fetches it once (Debian non-free).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tool="$root/../shared/tools/sass_report.py"
[ -f "$tool" ] || { echo "kernel-report: $tool not found (../shared beside the checkout)" >&2; exit 1; }
out="$root/target"
mkdir -p "$out"
python3 "$root/scripts/kernel_report_check.py" --self-test
if [ -z "${SASS_OLD_BIN:-}" ] && [ ! -x /opt/cuda118/bin/nvdisasm ]; then
  [ "$(id -u)" = 0 ] || { echo "kernel-report: nvdisasm 11.8 missing: run $tool --setup as root" >&2; exit 1; }
  python3 "$tool" --setup
fi
cd "$root"
python3 "$tool" -I cuda-kernels cuda-kernels/jconv_kernels.cu | tee "$out/kernel-report.txt"
python3 "$tool" --json -I cuda-kernels cuda-kernels/jconv_kernels.cu >"$out/kernel-report.json"
python3 scripts/kernel_report_check.py "$out/kernel-report.json" --md "$out/kernel-report.md"
