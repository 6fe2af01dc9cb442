#!/usr/bin/env bash
# Measures jconv's CPU backend and PyTorch's CPU convolution (Debian's python3-torch, oneDNN) on the same
# layers, thread count and machine, one after the other, and prints per-layer GFLOP/s, the ratio
# jconv / PyTorch, the geometric mean of the ratios and jconv's share of the measured FMA peak.
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
py=""
for cand in /usr/bin/python3 python3; do
  if command -v "$cand" >/dev/null && "$cand" -c "import torch" 2>/dev/null; then py="$cand"; break; fi
done
if [ -z "$py" ]; then
  echo "bench-vs-pytorch: no python3 with torch here (apt-get install python3-torch)" >&2
  exit 2
fi
out="$root/target/bench-vs-pytorch"
mkdir -p "$out"
args=()
for s in "${shapes[@]}"; do args+=(--shape "$s"); done
"$root/scripts/jconv" bench --op "$op" --threads "$threads" --runs 11 --json "$out/jconv.json" "${args[@]}"
"$py" "$root/scripts/torch_bench.py" --op "$op" --threads "$threads" --runs 21 --warmup 5 "${shapes[@]}" > "$out/pytorch.json"
"$py" - "$out/jconv.json" "$out/pytorch.json" <<'PY'
import json, math, sys
j = json.load(open(sys.argv[1])); t = json.load(open(sys.argv[2]))
peak = j.get("peak_gflops")
best = {}
for r in j["results"]:
    if r["shape"] not in best or r["gflops"] > best[r["shape"]]["gflops"]:
        best[r["shape"]] = r
print()
print(f"{'layer':32} {'jconv best':>14} {'GFLOP/s':>9} {'% peak':>7} {'PyTorch':>9} {'ratio':>7}")
ratios = []
for r in t["results"]:
    b = best[r["shape"]]
    ratio = b["gflops"] / r["gflops"]
    ratios.append(ratio)
    pct = f"{100 * b['gflops'] / peak:6.1f}%" if peak else "    n/a"
    print(f"{r['shape']:32} {b['algorithm']:>14} {b['gflops']:9.1f} {pct} {r['gflops']:9.1f} {ratio:7.2f}")
geo = math.exp(sum(map(math.log, ratios)) / len(ratios))
print(f"geometric mean of jconv/PyTorch: {geo:.2f}; lowest: {min(ratios):.2f}; "
      f"peak measured in the jconv run: {peak:.0f} GFLOP/s" if peak else f"geometric mean: {geo:.2f}")
print(f"({t['results'][0]['backend']}, {t['results'][0]['threads']} threads; medians of 11 jconv / 21 PyTorch runs)")
PY
