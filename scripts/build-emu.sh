#!/usr/bin/env bash
# Compiles cuda-kernels/ with g++ under the CUDA-on-CPU header (cuda-kernels/emu/cuda_emu.h) into the JNI
# library of the cuda-emu backend. Warnings are errors.
#   scripts/build-emu.sh [--if-available] [OUTPUT_DIR]
# OUTPUT_DIR (default target/classes) gets native/linux-x86_64/libjconv_emu.so, which the jar carries.
# --if-available: without g++ or the JDK's JNI headers say so and succeed (cuda-emu then says why).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
optional=0
if [ "${1:-}" = "--if-available" ]; then optional=1; shift; fi
out="${1:-$root/target/classes}/native/linux-x86_64"
lib="$out/libjconv_emu.so"
fail() { echo "build-emu: $1: the cuda-emu backend is not built" >&2; [ "$optional" = 1 ] && exit 0 || exit 1; }
[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || fail "not linux-x86_64"
command -v g++ >/dev/null || fail "g++ not found"
jdk="${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}"
[ -f "$jdk/include/jni.h" ] || fail "no jni.h under $jdk/include (set JAVA_HOME to a JDK)"
if [ -f "$lib" ] && [ -z "$(find "$root/cuda-kernels" -newer "$lib" -type f -print -quit)" ]; then
  exit 0
fi
mkdir -p "$out"
g++ -std=c++20 -O2 -fPIC -shared -Wall -Wextra -Werror -DJCONV_EMU \
  -I"$jdk/include" -I"$jdk/include/linux" -I"$root/cuda-kernels" \
  -x c++ "$root/cuda-kernels/jconv_kernels.cu" "$root/cuda-kernels/emu/emu_runtime.cpp" "$root/cuda-kernels/emu/emu_jni.cpp" \
  -o "$lib.tmp"
mv "$lib.tmp" "$lib"
