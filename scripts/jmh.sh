#!/usr/bin/env bash
# JMH benchmarks of the CPU kernels (src/jmh/java), for kernel work; arguments go to JMH.
#   scripts/jmh.sh                                   everything (several minutes)
#   scripts/jmh.sh KernelBenchmarks.sgemm -p gemm=64x3136x576 -p layer=8x64x56x56x64x3x3x1x1x1x1 -p algorithm=im2col
# Builds with the Maven profile `bench` into target/jmh (the normal build is left alone).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mvn -B -ntp -q -P bench -DskipTests -Djconv.buildDir="$root/target/jmh" package >/dev/null
java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
exec "$java" --add-modules jdk.incubator.vector -cp "$root/target/jmh/classes:$root/target/jmh/lib/*" org.openjdk.jmh.Main "$@"
