#!/usr/bin/env bash
# The test suite: unit, property, golden and CLI tests on Java 17 and, where installed, on Temurin 25,
# then a smoke run of scripts/jconv as a user runs it. Exit code: non-zero on any failure.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

echo "== tests on the default JDK ($(java -version 2>&1 | head -1))"
mvn -B -ntp verify

jdk25=/usr/lib/jvm/temurin-25-jdk-amd64
if [ -x "$jdk25/bin/java" ]; then
  echo "== tests on Temurin 25 ($jdk25)"
  JAVA_HOME="$jdk25" mvn -B -ntp verify
else
  echo "== Temurin 25 not installed at $jdk25: skipped"
fi

echo "== every CUDA kernel compiled by nvcc for all target architectures, warnings as errors"
kdir="$(mktemp -d)"
scripts/build-kernels.sh "$kdir"
ls -l "$kdir/io/github/jconv/cuda/jconv_kernels.fatbin"
rm -rf "$kdir"

echo "== CLI smoke test (scripts/jconv)"
scripts/jconv info
scripts/jconv bench --shape 1,8,16,16,8,3,3,1,1,1,1 --runs 2 --warmup 1
scripts/jconv verify --shape 2,4,9,9,8,3,3,1,1,1,2 --shape 1,6,8,8,6,3,3,2,1,1,6
scripts/jconv bench --backend cuda-emu --shape 1,8,12,12,8,3,3,1,1,1,1 --runs 1 --warmup 0 --warmup-ms 0
if scripts/jconv conv2d --backend cuda --input x --weight w --output y 2>/tmp/jconv-cuda.err; then
  echo "cuda backend ran here: a GPU is present"
else
  echo "without a GPU, --backend cuda fails cleanly: $(cat /tmp/jconv-cuda.err)"
fi
echo "== all tests passed"
