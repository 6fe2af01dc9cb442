#!/usr/bin/env bash
# Runs `jconv bench` (which times PyTorch's CPU convolution, Debian's python3-torch with oneDNN, on the same
# data, layers and thread count in the same run) and summarises it: per layer jconv's best GFLOP/s, its
# share of the FMA peak measured in the run, PyTorch's GFLOP/s and the ratio, then the geometric mean.
#   scripts/bench-vs-pytorch.sh [--threads T] [--op conv2d|conv-transpose2d] [SHAPE...]
# Default shapes: the six layers of the CPU-speed goal (README). Needs a python3 with torch
# (apt-get install python3-torch); the project's tests never do.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
threads=2
op=conv2d
shapes=()
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --op) op="$2"; shift 2 ;;
    *) shapes+=("$1"); shift ;;
  esac
done
if [ ${#shapes[@]} -eq 0 ]; then
  shapes=(8,64,56,56,64,3,3,1,1,1,1 8,256,14,14,256,3,3,1,1,1,1 8,64,56,56,256,1,1,1,0,1,1
          8,128,28,28,128,3,3,1,2,2,1 8,256,28,28,256,3,3,1,1,1,32 8,128,56,56,128,3,3,1,1,1,128)
fi
py=python3
out="$root/target/bench-vs-pytorch"
mkdir -p "$out"
args=()
for s in "${shapes[@]}"; do args+=(--shape "$s"); done
"$root/scripts/jconv" bench --op "$op" --threads "$threads" --runs 11 --warmup-ms 3000 --json "$out/bench.json" "${args[@]}"
"$py" - "$out/bench.json" <<'PY'
import json, math, sys
doc = json.load(open(sys.argv[1]))
peak = doc.get("peak_gflops")
best, torch = {}, {}
for r in doc["results"]:
    if r["backend"].startswith("pytorch"):
        torch[r["shape"]] = r
    elif r["backend"].startswith("onnxruntime"):
        continue
    elif r["shape"] not in best or r["gflops"] > best[r["shape"]]["gflops"]:
        best[r["shape"]] = r
if not torch:
    sys.exit("bench-vs-pytorch: the bench ran without PyTorch (see its 'peers' line)")
print()
print(f"{'layer':32} {'jconv best':>14} {'GFLOP/s':>9} {'% peak':>7} {'PyTorch':>9} {'ratio':>7}")
ratios = []
for shape, t in torch.items():
    b = best[shape]
    ratio = b["gflops"] / t["gflops"]
    ratios.append(ratio)
    pct = f"{100 * b['gflops'] / peak:6.1f}%" if peak else "    n/a"
    print(f"{shape:32} {b['algorithm']:>14} {b['gflops']:9.1f} {pct} {t['gflops']:9.1f} {ratio:7.2f}")
geo = math.exp(sum(map(math.log, ratios)) / len(ratios))
print(f"geometric mean of jconv/PyTorch: {geo:.2f}; lowest: {min(ratios):.2f}"
      + (f"; FMA peak measured in the same run: {peak:.0f} GFLOP/s" if peak else ""))
PY
