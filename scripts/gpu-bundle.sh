#!/usr/bin/env bash
# Prepares .gpu/ (git-ignored) for a lent GPU machine that has no Java or Maven (../shared/GPU.md): a
# jlink'ed Java runtime, the jar (kernels fatbin and emulator inside) and the runtime jars, the test classes
# with JUnit's console launcher and the golden cases, plus .gpu/run.sh, which runs the CLI there. Run the
# whole check on the device in one call with carry [".gpu"]:
#   bash .gpu/run.sh check "$OUT"      # the GPU test suite, info, verify (every backend incl. cuda and
#                                      # cudnn), bench cuda, cudnn and cpu
# The bundle must stay under the device tool's 64 MiB carry limit; this script checks.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
JCONV_PEERS=0 mvn -B -ntp -q -DskipTests package
rm -rf .gpu && mkdir -p .gpu/lib
jlink --add-modules java.base,java.logging,java.management,java.naming,java.xml,jdk.unsupported,jdk.incubator.vector \
  --strip-debug --no-header-files --no-man-pages --compress=2 --output .gpu/jre
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
mvn -B -ntp -q dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:1.14.4 \
  -DoutputDirectory=.gpu/test-lib
mvn -B -ntp -q dependency:copy-dependencies -DincludeScope=test -DincludeGroupIds=net.jqwik -DoutputDirectory=.gpu/test-lib
cat > .gpu/run.sh <<'RUN'
#!/usr/bin/env bash
# On the GPU machine: .gpu/run.sh check OUT_DIR | .gpu/run.sh tests OUT_DIR | .gpu/run.sh <jconv CLI arguments>
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# cuDNN 9 from the PyTorch wheels, if that is where it lives (GPU.md)
site="$(python3 -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))' 2>/dev/null || true)"
cudnn="$(find ${site:+"$site"} /usr /opt -name 'libcudnn.so.9' 2>/dev/null | head -1)"
[ -n "$cudnn" ] && export LD_LIBRARY_PATH="$(dirname "$cudnn")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
jconv() { "$here/jre/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Dlogback.configurationFile=jconv-cli-logback.xml \
  -Djconv.tune.cache="${OUT:-/tmp}/autotune.json" -cp "$here/lib/*" io.github.jconv.cli.Main "$@"; }
# the test classes that exercise the GPU (its cases are skipped elsewhere); JUnit XML reports in OUT/tests
gpu_tests() {
  mkdir -p "$1"
  "$here/jre/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Djconv.golden.dir="$here/golden" \
    -jar "$here/test-lib/junit-platform-console-standalone-1.14.4.jar" execute \
    -cp "$here/test-classes:$(printf '%s:' "$here"/lib/*.jar "$here"/test-lib/jqwik*.jar)" --reports-dir "$1/tests" \
    --details=summary --disable-banner \
    --select-class io.github.jconv.ShapeTableTest --select-class io.github.jconv.AlgorithmPropertiesTest \
    --select-class io.github.jconv.GoldenTest --select-class io.github.jconv.cuda.DeviceStreamTest \
    --select-class io.github.jconv.OverhangingKernelTest --select-class io.github.jconv.NonFiniteInputTest \
    --select-class io.github.jconv.OnnxConvTransposeTest --select-class io.github.jconv.EmptyBatchTest \
    --select-class io.github.jconv.FuzzTest --select-class io.github.jconv.cuda.EmulatorSafetyTest \
    --select-class io.github.jconv.cuda.SelfTestKernelsTest --select-class io.github.jconv.cuda.LaunchLimitsTest > "$1/tests.txt" 2>&1
  local rc=$?
  tail -15 "$1/tests.txt"
  return $rc
}
if [ "${1:-}" = tests ]; then
  gpu_tests "${2:-/tmp/jconv-gpu}"
elif [ "${1:-}" = check ]; then
  OUT="${2:-/tmp/jconv-gpu}"; mkdir -p "$OUT"
  nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
  gpu_tests "$OUT"
  jconv info 2>&1 | tee "$OUT/info.txt"
  jconv verify 2>&1 | tee "$OUT/verify.txt"; echo "verify exit $?" | tee -a "$OUT/verify.txt"
  jconv bench --backend cuda --no-peers --json "$OUT/bench-cuda.json" 2>&1 | tee "$OUT/bench-cuda.txt"
  jconv bench --backend cudnn --no-peers --json "$OUT/bench-cudnn.json" 2>&1 | tee "$OUT/bench-cudnn.txt"
  jconv bench --backend cpu --no-peers --threads 16 --json "$OUT/bench-cpu.json" 2>&1 | tee "$OUT/bench-cpu.txt"
else
  jconv "$@"
fi
RUN
chmod +x .gpu/run.sh
size=$(du -sm .gpu | cut -f1)
echo "gpu-bundle: .gpu is ${size} MiB"
[ "$size" -lt 64 ] || { echo "gpu-bundle: over the 64 MiB carry limit" >&2; exit 1; }
