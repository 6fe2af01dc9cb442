#!/usr/bin/env python3
"""jconv's network trunk (io.github.jconv.net.Network) built from torch.nn layers, as the PyTorch peer of
`jconv bench --network` (shipped in the jar).

    torch_network.py --threads T --runs R --warmup W DIR

DIR holds net.json, written by jconv: {"layers": [...]}, each layer either
{"type": "conv", "input": i, "residual": j (-1: none), "stride": s, "padding": p, "groups": g,
 "activation": "none|relu|relu6|silu|gelu", "residual_mode": "none|after|before", "weight": FILE, "bias": FILE}
or {"type": "maxpool", "input": i, "kernel": k, "stride": s, "padding": p}; tensor 0 is the input x.npy and
layer i writes tensor i + 1. The script loads the folded weights into nn.Conv2d modules, times the trunk on
x.npy, writes the output to y.npy and prints one JSON object. Needs a python3 with torch (python3-torch).
"""
import argparse
import json
import os
import statistics
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ACT = {"none": lambda v: v, "relu": F.relu, "relu6": F.relu6, "silu": F.silu,
       "gelu": lambda v: F.gelu(v, approximate="tanh")}


def build(d, net):
    mods = []
    for l in net["layers"]:
        if l["type"] == "conv":
            w = torch.from_numpy(np.load(os.path.join(d, l["weight"])))
            b = torch.from_numpy(np.load(os.path.join(d, l["bias"])))
            m = nn.Conv2d(w.shape[1] * l["groups"], w.shape[0], tuple(w.shape[2:]), stride=l["stride"],
                          padding=l["padding"], groups=l["groups"], bias=True)
            m.weight.data.copy_(w)
            m.bias.data.copy_(b)
            mods.append(m.eval())
        else:
            mods.append(nn.MaxPool2d(l["kernel"], l["stride"], l["padding"]))
    return mods


def forward(net, mods, x):
    t = [x]
    for l, m in zip(net["layers"], mods):
        v = m(t[l["input"]])
        if l["type"] == "conv":
            act, mode = ACT[l["activation"]], l["residual_mode"]
            if mode == "before":
                v = act(v + t[l["residual"]])
            elif mode == "after":
                v = act(v) + t[l["residual"]]
            else:
                v = act(v)
        t.append(v)
    return t[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("dir")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    net = json.load(open(os.path.join(a.dir, "net.json")))
    mods = build(a.dir, net)
    x = torch.from_numpy(np.load(os.path.join(a.dir, "x.npy"))).clone()
    times = []
    with torch.no_grad():
        for _ in range(a.warmup):
            y = forward(net, mods, x)
        for _ in range(a.runs):
            t0 = time.perf_counter()
            y = forward(net, mods, x)
            times.append((time.perf_counter() - t0) * 1e3)
    np.save(os.path.join(a.dir, "y.npy"), y.numpy().astype(np.float32))
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "median_ms": statistics.median(times),
                      "min_ms": min(times), "max_ms": max(times)}))


if __name__ == "__main__":
    main()
