#!/usr/bin/env bash
# The test suite (what CI runs): the unit, property, golden and CLI tests on Java 17 and, where installed,
# on Temurin 25; every CUDA kernel through nvcc; the Docker build's scripts outside Docker and a lint of
# the Dockerfile; then a smoke run of scripts/jconv as a user runs it, and the GPU bundle with its test
# suite. Non-zero exit on any failure.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# each step's heading says when it began and how long CI has run (the whole run must stay well inside 90 minutes)
section() { echo "== $*  [$(date -u +%H:%M:%S), ${SECONDS} s in]"; }

section "the Docker build's steps, outside Docker"
docker/install-deps.sh build --dry-run
docker/install-deps.sh runtime --dry-run
scripts/fetch-dependencies.sh

section "tests on the default JDK ($(java -version 2>&1 | head -1))"
scripts/package.sh

jdk25=/usr/lib/jvm/temurin-25-jdk-amd64
if [ -x "$jdk25/bin/java" ]; then
  section "tests on Temurin 25 ($jdk25)"
  JAVA_HOME="$jdk25" mvn -B -ntp verify
  # leave target/ built by the default JDK for the smoke test below
  mvn -B -ntp -q -DskipTests package
else
  section "Temurin 25 not installed at $jdk25: skipped"
fi

section "the CPU kernels at 128- and 256-bit vector width (-XX:UseAVX=1 and 2; 1, not 0, keeps FMA): their blocks and tails follow the width"
if [ "$(uname -m)" = x86_64 ]; then
  for avx in 1 2; do
    mvn -B -ntp -q surefire:test -Dtest='io.github.jconv.cpu.*Test,ShapeTableTest' -Dsurefire.failIfNoSpecifiedTests=false \
      -Djconv.test.jvm="-XX:UseAVX=$avx -Djconv.tune.cache=$root/target/test-autotune-avx$avx.json"
  done
else
  echo "not an x86-64 machine: skipped"
fi

section "every CUDA kernel compiled by nvcc for all target architectures, warnings as errors"
kdir="$(mktemp -d)"
scripts/build-kernels.sh "$kdir"
ls -l "$kdir/io/github/jconv/cuda/jconv_kernels.fatbin"
rm -rf "$kdir"

section "the kernel report: sm_90 machine code, no spills, no division in any hot loop, implicit-GEMM main loops >= 75% FFMA"
scripts/kernel-report.sh

section "the emulator at sanitizer grade: every kernel under ASan/UBSan without a JVM, planted reads caught, every barrier needed"
scripts/emu-sanitize.sh all

section "Dockerfile lint (dockerfilelint from npm)"
if command -v npm >/dev/null && npm install --no-audit --no-fund --silent --prefix target/lint dockerfilelint@1.8.0; then
  target/lint/node_modules/.bin/dockerfilelint docker/Dockerfile
else
  echo "dockerfilelint could not be installed: lint skipped"
fi

section "bench peers: ONNX Runtime (Maven profile peers) and PyTorch when python3-torch is installed"
scripts/jconv bench --shape 1,8,16,16,8,3,3,2,1,1,1 --algorithm im2col --runs 2 --warmup-ms 0 --warmup-max-ms 1000 --paired \
  --json target/peers-bench.json | tee target/peers-bench.txt
grep -q "peer onnxruntime: ran" target/peers-bench.txt
grep -A1 '"backend" : "onnxruntime' target/peers-bench.json >/dev/null
# --paired: the layer's jconv row and ONNX Runtime's Conv in alternating slots, their ratio
grep -q "^paired with onnxruntime" target/peers-bench.txt
grep -A3 '"paired"' target/peers-bench.json | grep -q '"algorithm" : "im2col"'

section "bench --network: a whole trunk on jconv's device beside both peers, outputs compared"
scripts/jconv bench --network mobilenetv2 --size 32 --runs 2 --warmup 1 --backend cpu --layers --json target/network-bench.json \
  | tee target/network-bench.txt
grep -q "peer onnxruntime: ran" target/network-bench.txt
grep -q '"who" : "onnxruntime' target/network-bench.json
# --layers: ONNX Runtime's own per-layer kernel times (its profiler) beside jconv's, every layer matched
grep -q "onnxruntime ms" target/network-bench.txt
grep -q '"onnxruntime_ms" : [0-9]' target/network-bench.json
! grep -q '"onnxruntime_ms" : null' target/network-bench.json
# the trunk and ONNX Runtime's timed in alternating rounds, with their ratio
grep -q "^paired, jconv cpu vs onnxruntime" target/network-bench.txt
grep -A3 '"paired"' target/network-bench.json | grep -q '"peer" : "onnxruntime'
# ResNet-50: each downsample projection runs inside its block's conv3 on the CPU; the profile says so, ONNX Runtime's two
# layers summed on that row
scripts/jconv bench --network resnet50 --size 32 --runs 2 --warmup 1 --backend cpu --layers --json target/network-bench-resnet.json \
  | tee target/network-bench-resnet.txt
grep -q "^layer2.0.downsample ran inside layer2.0.conv3" target/network-bench-resnet.txt
grep -q '"fused_into" : "layer4.0.conv3"' target/network-bench-resnet.json
grep -q '"onnxruntime_with_fused_ms" : [0-9]' target/network-bench-resnet.json
# the identity blocks' conv3 add their residual in place
grep -q '^layer3.5.conv3 .* direct\* ' target/network-bench-resnet.txt
grep -B8 '"residual_in_place" : true' target/network-bench-resnet.json | grep -q '"layer" : "layer4.2.conv3"'

section "JMH kernel benchmarks build and run (one short iteration)"
scripts/jmh.sh KernelBenchmarks.sgemm -p gemm=64x3136x576 -p layer=8x64x56x56x64x3x3x1x1x1x1 -p algorithm=im2col \
  -f 1 -wi 1 -i 1 -w 1 -r 1 | tail -3

section "CLI smoke test (scripts/jconv)"
scripts/jconv info
scripts/jconv bench --shape 1,8,16,16,8,3,3,1,1,1,1 --runs 2 --warmup 1
scripts/jconv verify --shape 2,4,9,9,8,3,3,1,1,1,2 --shape 1,6,8,8,6,3,3,2,1,1,6
scripts/jconv bench --backend cuda-emu --shape 1,8,12,12,8,3,3,1,1,1,1 --runs 1 --warmup 0 --warmup-ms 0 --warmup-max-ms 1000
if scripts/jconv conv2d --backend cuda --input x --weight w --output y 2>target/jconv-cuda.err; then
  echo "the cuda backend ran here: a GPU is present"
else
  echo "without a GPU, --backend cuda fails cleanly: $(grep -v "^WARNING" target/jconv-cuda.err)"
fi
section "stderr carries only jconv's own lines (the JVM's incubator warning and the CPU-fallback note are not there)"
g=../shared/golden/case000
scripts/jconv conv2d --input "$g/x.npy" --weight "$g/w.npy" --output target/smoke-y.npy --stride 3,2 --padding 3,2 --groups 4 \
  2>target/smoke-ok.err
[ ! -s target/smoke-ok.err ] || { echo "a working conv2d wrote to stderr:"; cat target/smoke-ok.err; exit 1; }
if scripts/jconv conv2d --input "$g/x.npy" --weight "$g/w.npy" --output target/smoke-y.npy --groups 3 2>target/smoke-bad.err; then
  echo "a bad --groups was accepted"; exit 1
fi
[ "$(wc -l <target/smoke-bad.err)" = 1 ] || { echo "a bad input printed more than one line:"; cat target/smoke-bad.err; exit 1; }
cat target/smoke-bad.err
section "the GPU bundle builds within the device tool's carry limit and its whole check runs, the GPU steps on cuda-emu"
scripts/gpu-bundle.sh
JCONV_GPU_BACKEND=cuda-emu JCONV_GPU_BENCH="--shape 1,8,16,16,8,3,3,1,1,1,1 --runs 2 --warmup 1 --warmup-ms 0 --warmup-max-ms 0" \
  bash .gpu/run.sh check target/gpu-check
grep -q "^  tests .* ok$" target/gpu-check/summary.txt && grep -q "^  cuda-emu " target/gpu-check/summary.txt
section "all tests passed"
