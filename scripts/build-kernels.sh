#!/usr/bin/env bash
# Compiles cuda-kernels/ with nvcc into one fatbin: SASS for each architecture in JCONV_CUDA_ARCHS
# (default 75 80 90: sm_80 code runs on every 8.x GPU, sm_86 and sm_89 included) and PTX for the newest, so newer GPUs
# JIT. Warnings are errors.
#   scripts/build-kernels.sh [--if-available] [OUTPUT_DIR]
# OUTPUT_DIR (default target/classes) gets io/github/jconv/cuda/jconv_kernels.fatbin, which the jar carries.
# --if-available: without nvcc (PATH or $CUDA_HOME/bin) say so and succeed; the cuda backend then says
# "kernels not built". Skips the work when the fatbin is newer than every kernel source.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
optional=0
if [ "${1:-}" = "--if-available" ]; then optional=1; shift; fi
out="${1:-$root/target/classes}/io/github/jconv/cuda"
nvcc="$(command -v nvcc || true)"
if [ -z "$nvcc" ] && [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ]; then nvcc="$CUDA_HOME/bin/nvcc"; fi
if [ -z "$nvcc" ]; then
  echo "build-kernels: nvcc not found (PATH, CUDA_HOME): CUDA kernels not built" >&2
  [ "$optional" = 1 ] && exit 0 || exit 1
fi
fatbin="$out/jconv_kernels.fatbin"
if [ -f "$fatbin" ] && [ -z "$(find "$root/cuda-kernels" -name '*.cu*' -newer "$fatbin" -print -quit)" ] \
   && [ -z "$(find "$root/cuda-kernels" -name '*.h' -newer "$fatbin" -print -quit)" ]; then
  exit 0
fi
mkdir -p "$out"
archs=(${JCONV_CUDA_ARCHS:-75 80 90})
gencode=()
for a in "${archs[@]}"; do gencode+=(-gencode "arch=compute_$a,code=sm_$a"); done
newest="${archs[${#archs[@]}-1]}"
gencode+=(-gencode "arch=compute_$newest,code=compute_$newest")
echo "build-kernels: $("$nvcc" --version | tail -1) -> $fatbin (sm ${archs[*]} + PTX $newest)" >&2
"$nvcc" -fatbin -O3 -Werror all-warnings "${gencode[@]}" -o "$fatbin.tmp" "$root/cuda-kernels/jconv_kernels.cu"
mv "$fatbin.tmp" "$fatbin"
