#!/usr/bin/env python3
"""Times PyTorch's CPU F.conv2d / F.conv_transpose2d on jconv's shape strings; prints JSON.

    torch_bench.py --threads 2 --runs 7 --warmup 3 [--op conv2d|conv-transpose2d] SHAPE...

SHAPE is N,C,H,W,K,R,S,stride,pad,dilation,groups as in `scripts/jconv bench`. Used by
scripts/bench-vs-pytorch.sh; needs Debian's python3-torch (never needed by the tests).
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--op", default="conv2d")
    ap.add_argument("shapes", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    results = []
    for shape in a.shapes:
        n, c, h, w, k, r, s, stride, pad, dil, groups = map(int, shape.split(","))
        x = torch.randn(n, c, h, w)
        bias = torch.randn(k)
        if a.op == "conv2d":
            wt = torch.randn(k, c // groups, r, s)
            fn = lambda: F.conv2d(x, wt, bias, stride, pad, dil, groups)
            out = fn()
            flops = 2 * out.numel() * (c // groups) * r * s
        else:
            wt = torch.randn(c, k // groups, r, s)
            fn = lambda: F.conv_transpose2d(x, wt, bias, stride, pad, 0, groups, dil)
            flops = 2 * x.numel() * (k // groups) * r * s
        with torch.no_grad():
            for _ in range(a.warmup):
                fn()
            times = []
            for _ in range(a.runs):
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
        med = statistics.median(times)
        results.append({"shape": shape, "op": a.op.replace("-", "_"), "backend": "pytorch-" + torch.__version__,
                        "threads": a.threads, "median_ms": med, "gflops": flops / (med * 1e6)})
    print(json.dumps({"results": results}, indent=1))


if __name__ == "__main__":
    main()
