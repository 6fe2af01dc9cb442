#!/usr/bin/env bash
# Prepares .gpu/ (git-ignored) for a lent GPU machine that has no Java or Maven (../shared/GPU.md): a
# jlink'ed Java runtime, the jar (kernels fatbin and emulator inside) and the runtime jars, the test classes
# with JUnit's console launcher and the golden cases, plus .gpu/run.sh, which runs the CLI there. Run the
# whole check on the device in one call with carry [".gpu"]:
#   bash .gpu/run.sh check "$OUT"      # the GPU test suite, info, verify (every backend incl. cuda and
#                                      # cudnn), bench cuda, cudnn and cpu, compute-sanitizer where it is,
#                                      # OUT/summary.txt; non-zero exit when any step failed
# The bundle must stay under the device tool's 64 MiB carry limit; this script checks.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
JCONV_PEERS=0 mvn -B -ntp -q -DskipTests package
rm -rf .gpu && mkdir -p .gpu/lib
jlink --add-modules java.base,java.logging,java.management,java.naming,java.xml,jdk.unsupported,jdk.incubator.vector \
  --strip-debug --no-header-files --no-man-pages --compress=2 --output .gpu/jre
# the JVM's own symbol table is 3.5 of the bundle's 63 MiB (not needed to run; hs_err files then show addresses only)
if command -v strip >/dev/null; then
  strip --strip-unneeded .gpu/jre/lib/server/libjvm.so
fi
cp target/jconv.jar .gpu/lib/
for jar in target/lib/*.jar; do
  case "$(basename "$jar")" in
    xchart-*|VectorGraphics2D-*|graphics2d-*|pdfbox-*|fontbox-*|animated-gif-lib-*|commons-logging-*|onnxruntime-*) ;; # report/peers only
    *) cp "$jar" .gpu/lib/ ;;
  esac
done
# The GPU test suite: our test classes, the test-only jars (JUnit's console launcher matches junit-bom
# 5.14.4 in pom.xml; jqwik) and the golden cases.
mkdir -p .gpu/test-lib
cp -r target/test-classes .gpu/test-classes
cp -r ../shared/golden .gpu/golden
cp -r ../shared/golden-wgrad .gpu/golden-wgrad
mvn -B -ntp -q dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:1.14.4 \
  -DoutputDirectory=.gpu/test-lib
mvn -B -ntp -q dependency:copy-dependencies -DincludeScope=test -DincludeGroupIds=net.jqwik -DoutputDirectory=.gpu/test-lib
cat > .gpu/run.sh <<'RUN'
#!/usr/bin/env bash
# On the GPU machine: .gpu/run.sh check OUT_DIR | .gpu/run.sh tests OUT_DIR | .gpu/run.sh <jconv CLI arguments>
# check: every step runs even when one fails; OUT_DIR/steps.txt has their exit codes and OUT_DIR/summary.txt the
# tests per backend, verify's worst error per algorithm and the bench medians; the exit code is non-zero when any
# step failed. JCONV_GPU_BACKEND=cuda-emu runs the GPU steps on the emulator (how CI tests this script), and
# JCONV_GPU_BENCH replaces the bench's layer arguments (default: the default suite).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# cuDNN 9 from the PyTorch wheels needs cuBLAS(Lt) and NVRTC from their sibling wheels (GPU.md): every
# nvidia/*/lib folder goes on the library path, wherever the wheels or a toolkit put them.
site="$(python3 -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))' 2>/dev/null || true)"
libs="$(find ${site:+"$site"} /usr /opt -name 'libcudnn.so.9' -o -name 'libcublasLt.so*' -o -name 'libnvrtc.so*' 2>/dev/null \
  | xargs -r -n1 dirname | sort -u | paste -sd: -)"
[ -n "$libs" ] && export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
java_opts=(--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED)
jconv() { "$here/jre/bin/java" "${java_opts[@]}" -Dlogback.configurationFile=jconv-cli-logback.xml \
  -Djconv.tune.cache="${OUT:-/tmp}/autotune.json" -cp "$here/lib/*" io.github.jconv.cli.Main "$@"; }
test_cp() { printf '%s' "$here/test-classes:$(printf '%s:' "$here"/lib/*.jar "$here"/test-lib/jqwik*.jar)"; }
# the test classes that exercise the GPU (its cases are skipped elsewhere); JUnit XML reports in $1/tests
gpu_tests() {
  mkdir -p "$1"
  "$here/jre/bin/java" "${java_opts[@]}" -Djconv.golden.dir="$here/golden" \
    -jar "$here/test-lib/junit-platform-console-standalone-1.14.4.jar" execute \
    -cp "$(test_cp)" --reports-dir "$1/tests" --details=summary --disable-banner \
    --select-class io.github.jconv.ShapeTableTest --select-class io.github.jconv.AlgorithmPropertiesTest \
    --select-class io.github.jconv.GoldenTest --select-class io.github.jconv.cuda.DeviceStreamTest \
    --select-class io.github.jconv.OverhangingKernelTest --select-class io.github.jconv.NonFiniteInputTest \
    --select-class io.github.jconv.OnnxConvTransposeTest --select-class io.github.jconv.EmptyBatchTest \
    --select-class io.github.jconv.FuzzTest --select-class io.github.jconv.cuda.EmulatorSafetyTest \
    --select-class io.github.jconv.cuda.SelfTestKernelsTest --select-class io.github.jconv.cuda.LaunchLimitsTest \
    --select-class io.github.jconv.EpilogueTest --select-class io.github.jconv.ConvPlanTest --select-class io.github.jconv.PlanCacheTest \
    --select-class io.github.jconv.MaxPool2dTest --select-class io.github.jconv.WeightGradientTest \
    --select-class io.github.jconv.cuda.ImplicitGemmLauncherTest --select-class io.github.jconv.cuda.WgradLauncherTest \
    --select-class io.github.jconv.cuda.SgemmLauncherTest --select-class io.github.jconv.cuda.DepthwiseLauncherTest \
    --select-class io.github.jconv.cuda.TensorCoreTest --select-class io.github.jconv.LayoutTest > "$1/tests.txt" 2>&1
  local rc=$?
  tail -15 "$1/tests.txt"
  return $rc
}
# step NAME COMMAND...: runs it with its output in $OUT/NAME.txt (and on the terminal), records its exit code
step() {
  local name="$1"; shift
  "$@" 2>&1 | tee "$OUT/$name.txt"
  local rc=${PIPESTATUS[0]}
  echo "$name $rc" >> "$OUT/steps.txt"
  [ "$rc" = 0 ] || status=1
}
if [ "${1:-}" = tests ]; then
  gpu_tests "${2:-/tmp/jconv-gpu}"
elif [ "${1:-}" = check ]; then
  OUT="${2:-/tmp/jconv-gpu}"; mkdir -p "$OUT"; : > "$OUT/steps.txt"
  gpu="${JCONV_GPU_BACKEND:-cuda}"
  read -r -a bench_args <<< "${JCONV_GPU_BENCH:-}"
  status=0
  [ "$gpu" = cuda ] && step nvidia-smi nvidia-smi
  step tests gpu_tests "$OUT"
  step info jconv info
  step verify jconv verify
  step "bench-$gpu" jconv bench --backend "$gpu" --no-peers --math tf32,3xtf32,fp16,bf16 --dtype fp16,bf16 --layout nchw,nhwc "${bench_args[@]}" --json "$OUT/bench-$gpu.json"
  [ "$gpu" = cuda ] && step bench-cudnn jconv bench --backend cudnn --no-peers "${bench_args[@]}" --json "$OUT/bench-cudnn.json"
  step bench-cpu jconv bench --backend cpu --no-peers --threads "$(nproc)" "${bench_args[@]}" --json "$OUT/bench-cpu.json"
  sanitizer="$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1 || true)"
  if [ "$gpu" = cuda ] && [ -n "$sanitizer" ]; then
    for tool in memcheck racecheck synccheck; do  # the shape table's GPU cases under each tool
      step "sanitizer-$tool" timeout 300 "$sanitizer" --tool "$tool" --error-exitcode 99 --target-processes all \
        "$here/jre/bin/java" "${java_opts[@]}" -Djconv.test.backends=cuda -Djconv.golden.dir="$here/golden" \
        -jar "$here/test-lib/junit-platform-console-standalone-1.14.4.jar" execute -cp "$(test_cp)" --details=summary \
        --disable-banner --select-class io.github.jconv.ShapeTableTest
    done
  else
    echo "compute-sanitizer: not run (${gpu}; $( [ -n "$sanitizer" ] && echo found || echo not found))" | tee "$OUT/sanitizer.txt"
  fi
  "$here/jre/bin/java" -cp "$(test_cp)" io.github.jconv.GpuCheckSummary "$OUT"
  exit "$status"
else
  jconv "$@"
fi
RUN
chmod +x .gpu/run.sh
size=$(du -sm .gpu | cut -f1)
echo "gpu-bundle: .gpu is ${size} MiB"
[ "$size" -lt 64 ] || { echo "gpu-bundle: over the 64 MiB carry limit" >&2; exit 1; }
