#!/usr/bin/env bash
# Every CUDA kernel of jconv on the CPU emulator under AddressSanitizer and UndefinedBehaviorSanitizer, without a
# JVM (cuda-kernels/emu/sanitize_driver.cpp: the Java tests' shape table and random specs against a float64 host
# reference; device buffers are plain heap blocks, so ASan sees every out-of-bounds access and use after free).
#
#   scripts/emu-sanitize.sh [check [RANDOM_SPECS]]   the kernels as they are: clean and within the bound (default 300),
#                                                    split into one shard per core (the driver's SHARD/SHARDS)
#   scripts/emu-sanitize.sh plant KERNEL             a copy of the kernels with a read of the kernel's first input
#                                                    at [-1] planted in KERNEL: must fail, naming KERNEL
#   scripts/emu-sanitize.sh plants                   `plant` for every convolution kernel
#   scripts/emu-sanitize.sh barriers                 each __syncthreads() of the convolution kernels removed in
#                                                    turn: every such copy must fail the driver (wrong results or
#                                                    a finding); selftest.cu's kernels have their own Java tests
#   scripts/emu-sanitize.sh all                      check, plants and barriers (what CI runs)
# Plants and barriers build and run their copies one per core at a time; a barrier's driver stops at its first wrong
# result. JCONV_EMU_SEED fixes the emulator's block and thread schedules (printed on every failure);
# JCONV_SANITIZE_SEED the problems' data (printed at the start).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${JCONV_SANITIZE_DIR:-$root/target/emu-sanitize}"
mkdir -p "$work"
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all -DJCONV_EMU
       -DJCONV_EMU_PLAIN_MEMORY -Wall -Wextra -Werror)
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
conv_kernels=(jconv_direct_fprop jconv_direct_dgrad jconv_depthwise_fprop jconv_depthwise_fprop_tiled jconv_depthwise_dgrad jconv_im2col_fprop_unfold
              jconv_im2col_dgrad_fold jconv_im2col_fprop_bias jconv_sgemm_128x128 jconv_sgemm_128x64 jconv_sgemm_64x128
              jconv_sgemm_64x64 jconv_implicit_gemm_fprop_128x128 jconv_implicit_gemm_fprop_128x64
              jconv_implicit_gemm_fprop_64x64 jconv_implicit_gemm_dgrad_128x128 jconv_implicit_gemm_dgrad_128x64
              jconv_implicit_gemm_dgrad_64x64 jconv_implicit_gemm_tf32_fprop_128x128 jconv_implicit_gemm_tf32_dgrad_128x64
              jconv_implicit_gemm_3xtf32_fprop_64x64 jconv_implicit_gemm_3xtf32_dgrad_128x128
              jconv_implicit_gemm_fp16_fprop_128x128 jconv_implicit_gemm_bf16_dgrad_64x64
              jconv_implicit_gemm_fp16io_dgrad_128x128 jconv_implicit_gemm_bf16io_fprop_64x64
              jconv_implicit_gemm_nhwc_fp16io_fprop_128x64 jconv_implicit_gemm_nhwc_bf16io_fprop_64x64
              jconv_implicit_gemm_nhwc_splitk_reduce_bf16io jconv_implicit_gemm_nhwc_tf32_fprop_128x64
              jconv_implicit_gemm_nhwc_3xtf32_fprop_64x64 jconv_implicit_gemm_nhwc_splitk_reduce
              jconv_implicit_gemm_splitk_reduce jconv_implicit_gemm_wgrad_128x128
              jconv_implicit_gemm_wgrad_64x128 jconv_implicit_gemm_wgrad_64x64 jconv_implicit_gemm_wgrad_reduce
              jconv_bias_wgrad)

# The runtime and the driver once; the kernels (which plant and barriers change) per copy.
objects() {
  local o="$work/obj"
  mkdir -p "$o"
  local src
  for src in emu_runtime sanitize_driver; do
    if [ ! -f "$o/$src.o" ] || [ -n "$(find "$root/cuda-kernels" -newer "$o/$src.o" -type f -print -quit)" ]; then
      g++ "${flags[@]}" -I"$root/cuda-kernels" -c "$root/cuda-kernels/emu/$src.cpp" -o "$o/$src.o"
    fi
  done
}

# build KERNEL_DIR OUT: the driver with the kernels of KERNEL_DIR
build() {
  g++ "${flags[@]}" -I"$1" -x c++ -c "$1/jconv_kernels.cu" -o "$2.kernels.o"
  g++ -fsanitize=address,undefined "$work/obj/emu_runtime.o" "$work/obj/sanitize_driver.o" "$2.kernels.o" -o "$2"
}

jobs="$(nproc 2>/dev/null || echo 1)"

check() {
  objects
  build "$root/cuda-kernels" "$work/driver"
  local seed="${JCONV_SANITIZE_SEED:-$(od -An -N6 -tu8 /dev/urandom | tr -d ' ')}" i status=0 pids=()
  for ((i = 0; i < jobs; i++)); do
    "$work/driver" "${1:-300}" "$seed" "$i/$jobs" >"$work/check-$i.log" 2>&1 &
    pids+=($!)
  done
  for ((i = 0; i < jobs; i++)); do
    wait "${pids[$i]}" || status=1
    cat "$work/check-$i.log"
  done
  [ "$status" = 0 ] || echo "emu-sanitize: FAIL: the check found the problems above (rerun with JCONV_SANITIZE_SEED=$seed)" >&2
  return "$status"
}

# A copy of cuda-kernels in $work/$1 (emu/ included, for the driver's header paths).
copy_kernels() {
  rm -rf "${work:?}/$1"
  cp -r "$root/cuda-kernels" "$work/$1"
}

plant() {
  local kernel="$1" dir="plant-$1"
  objects
  copy_kernels "$dir"
  python3 - "$work/$dir" "$kernel" <<'PY'
import pathlib, re, sys
root, kernel = pathlib.Path(sys.argv[1]), sys.argv[2]
for f in root.glob("*.cu"):
    text = f.read_text()
    m = re.search(r'__global__ void (?:__launch_bounds__\(\d+\) )?' + re.escape(kernel) + r'\((.*?)\)\s*\{', text, re.S)
    if not m:
        # an entry point a macro writes (implicit_gemm.cu's JCONV_IGEMM_TILES(prefix, ...) / JCONV_IGEMM_IO_TILES(prefix, ...),
        # prefix + (fprop|dgrad)_TILE, through JCONV_IGEMM_ENTRY / JCONV_IGEMM_IO_ENTRY(name, ...)): plant in the entry
        # macro's body, for this kernel's name only
        prefix = kernel.rsplit("_", 2)[0] + "_"
        use = re.search(r'^(\w+_TILES)\(' + re.escape(prefix) + ',', text, re.M)
        if not use:
            continue
        body = text[text.index("#define " + use.group(1) + "("):].split("\n")
        body = "\n".join(body[:next(i for i, line in enumerate(body) if not line.endswith("\\")) + 1])
        entry = re.search(r'(\w+_ENTRY)\(prefix', body).group(1)
        e = re.search(r'#define ' + entry + r'\(name, [^)]*\)\s*\\\n\s*extern "C" __global__ void __launch_bounds__\s*\w+ name\(([^{]*?)\)\s*\{\s*\\\n',
                      text)
        args = e.group(1)
        if re.fullmatch(r'\w+', args):  # an argument list given as a macro
            args = re.search(r'#define ' + args + r' ((?:.*\\\n)*.*)', text).group(1)
        first = re.search(r'const (?:float|In)\* __restrict__ (\w+)', args)
        planted = (f"        if (__builtin_strcmp(#name, \"{kernel}\") == 0) {{ volatile auto jconv_planted = {first.group(1)}[-1]; "
                   f"(void)jconv_planted; }}  /* planted by emu-sanitize.sh */ \\\n")
        f.write_text(text[:e.end()] + planted + text[e.end():])
        print(f"emu-sanitize: planted a read of {first.group(1)}[-1] in {kernel} ({f.name}, macro {entry})")
        break
    args = m.group(1)
    for name, value in re.findall(r'#define (\w+) ((?:.*\\\n)*.*)', text):  # an argument list given as a macro
        args = args.replace(name, value)
    first = re.search(r'const float\* __restrict__ (\w+)', args)
    if not first:
        sys.exit(f"emu-sanitize: {kernel} has no const float* input to plant a read in")
    planted = f"\n    {{ volatile float jconv_planted = {first.group(1)}[-1]; (void)jconv_planted; }}  // planted by emu-sanitize.sh\n"
    f.write_text(text[:m.end()] + planted + text[m.end():])
    print(f"emu-sanitize: planted a read of {first.group(1)}[-1] in {kernel} ({f.name})")
    break
else:
    sys.exit(f"emu-sanitize: no kernel named {kernel}")
PY
  build "$work/$dir" "$work/$dir/driver"
  local log="$work/$dir/driver.log"
  if "$work/$dir/driver" 20 >"$log" 2>&1; then
    echo "emu-sanitize: FAIL: the planted read in $kernel was not caught" >&2
    return 1
  fi
  if ! grep -q "AddressSanitizer" "$log" || ! grep -q "the finding above is in $kernel" "$log"; then
    echo "emu-sanitize: FAIL: the planted read in $kernel failed the run without an ASan finding naming $kernel:" >&2
    tail -20 "$log" >&2
    return 1
  fi
  echo "emu-sanitize: caught: $(grep -m1 'SUMMARY: AddressSanitizer' "$log" | cut -c1-120); $(grep -m1 'the finding above is in' "$log" | cut -c1-140)"
}

# barrier N FILE LINE: the copy without the __syncthreads() at FILE:LINE must fail the driver
barrier() {
  local n="$1" f="$2" line="$3" dir="barrier-$1"
  copy_kernels "$dir"
  sed -i "${line}s/__syncthreads();/\/* __syncthreads() removed by emu-sanitize.sh *\//" "$work/$dir/$(basename "$f")"
  build "$work/$dir" "$work/$dir/driver"
  if JCONV_SANITIZE_FAIL_FAST=1 "$work/$dir/driver" 40 >"$work/$dir/driver.log" 2>&1; then
    echo "emu-sanitize: FAIL: without the __syncthreads() at $(basename "$f"):$line every result was still right" >&2
    return 1
  fi
  echo "emu-sanitize: without the __syncthreads() at $(basename "$f"):$line the driver fails: $(grep -m1 -E 'FAIL|SUMMARY' "$work/$dir/driver.log" | cut -c1-150)"
}

barriers() {
  objects
  local list
  list="$(grep -n "__syncthreads();" "$root"/cuda-kernels/*.cu "$root"/cuda-kernels/*.cuh | grep -v "^$root/cuda-kernels/selftest.cu:" \
          | cut -d: -f1,2 | awk -F: '{ print NR, $1, $2 }')"
  [ -n "$list" ] || { echo "emu-sanitize: no __syncthreads() found" >&2; return 1; }
  echo "$list" | xargs -P "$jobs" -L 1 "$root/scripts/emu-sanitize.sh" barrier
  echo "emu-sanitize: all $(echo "$list" | wc -l) barriers are needed: removing any one fails the emulated tests"
}

plants() {
  objects
  printf '%s\n' "${conv_kernels[@]}" | xargs -P "$jobs" -n 1 "$root/scripts/emu-sanitize.sh" plant
}

case "${1:-all}" in
  check) check "${2:-300}" ;;
  plant) plant "${2:?kernel name}" ;;
  plants) plants ;;
  barrier) barrier "${2:?number}" "${3:?file}" "${4:?line}" ;;
  barriers) barriers ;;
  all)
    check 300
    plants
    barriers
    ;;
  *) echo "usage: scripts/emu-sanitize.sh [check [N]|plant KERNEL|plants|barriers|all]" >&2; exit 2 ;;
esac
