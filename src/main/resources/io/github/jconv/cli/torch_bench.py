#!/usr/bin/env python3
"""PyTorch's CPU F.conv2d / F.conv_transpose2d / torch.nn.grad.conv2d_weight as a peer of `jconv bench` (in the jar).

    torch_bench.py --threads T --runs R --warmup W --op conv2d|conv_transpose2d|conv2d_weight DIR...

conv2d_weight also reads dy.npy (the output gradient) and writes the weight gradient as y.npy.

Each DIR holds x.npy, w.npy, b.npy and params.json ({"stride", "padding", "dilation", "groups"}) written by
jconv; the script times PyTorch on exactly that data, writes y.npy there (so jconv can measure PyTorch's
error against its float64 reference) and prints one JSON object with a result per DIR. Needs a python3
with torch (Debian's python3-torch); jconv's tests never do.
"""
import argparse
import json
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--op", default="conv2d")
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    results = []
    for d in a.dirs:
        p = json.load(open(os.path.join(d, "params.json")))
        # clone(): tensors in PyTorch's own (64-byte aligned) memory, as PyTorch users have them
        x = torch.from_numpy(np.load(os.path.join(d, "x.npy"))).clone()
        w = torch.from_numpy(np.load(os.path.join(d, "w.npy"))).clone()
        b = torch.from_numpy(np.load(os.path.join(d, "b.npy"))).clone()
        if a.op == "conv2d_weight":
            dy = torch.from_numpy(np.load(os.path.join(d, "dy.npy"))).clone()
            fn = lambda: torch.nn.grad.conv2d_weight(x, w.shape, dy, p["stride"], p["padding"], p["dilation"], p["groups"])
        elif a.op == "conv2d":
            fn = lambda: F.conv2d(x, w, b, p["stride"], p["padding"], p["dilation"], p["groups"])
        else:
            fn = lambda: F.conv_transpose2d(x, w, b, p["stride"], p["padding"], 0, p["groups"], p["dilation"])
        with torch.no_grad():
            for _ in range(a.warmup):
                y = fn()
            times = []
            for _ in range(a.runs):
                t0 = time.perf_counter()
                y = fn()
                times.append((time.perf_counter() - t0) * 1e3)
        np.save(os.path.join(d, "y.npy"), y.numpy().astype(np.float32))
        results.append({"dir": d, "median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times)})
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "results": results}))


if __name__ == "__main__":
    main()
