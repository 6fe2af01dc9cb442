#!/usr/bin/env python3
"""The kernel report's rules (issue: CUDA kernels at CUTLASS class), applied to sass_report.py's --json rows.

    kernel_report_check.py REPORT.json [--md OUT.md]    exit 1 with one line per broken rule
    kernel_report_check.py --self-test                  each rule, broken on purpose in a copy of a good row, is caught

Rules, from the machine code nvcc ships for sm_90:
  - every kernel: no spills, and no integer division (inline sequence or 64-bit division call) in its hot loop;
  - the implicit-GEMM main loops (jconv_implicit_gemm_fprop_*, _dgrad_* and _wgrad_*, every tile): FFMA at least 75% of
    the hot loop's instructions (CUTLASS's SIMT conv2d fprop: 76.5%) and only 128-bit shared loads; all nine must be there;
  - the tensor-core main loops (jconv_implicit_gemm_tf32_*, _3xtf32_*, _fp16_* and _bf16_*, and _fp16io_* / _bf16io_*
    on 16-bit tensors; fprop and dgrad, every tile): the hot loop issues MMA (16 per 8-deep step for tf32, 48 for
    3xtf32, 16 m16n8k16 per 16-deep step for the half-precision ones, at least) and only 128-bit shared loads (3xtf32:
    plus the one 32-bit load of its step's non-finite flag); all thirty-six;
  - the channels-last main loops (jconv_implicit_gemm_nhwc_<fp16io|bf16io|tf32|3xtf32>_fprop_*, both tiles): per
    64-byte step (32 halfs, 16 floats) at least 32 MMA (96 for 3xtf32), 12 ldmatrix (LDSM) for the operands and cp.async
    (LDGSTS) copies from global memory; their only other shared loads are nvcc's never-issued `@!PT LDS RZ, [RZ]` beside
    the zero-filling copies (at most one per copy); all eight.
"""
import copy
import json
import sys

GEMM_PREFIXES = ("jconv_implicit_gemm_fprop_", "jconv_implicit_gemm_dgrad_", "jconv_implicit_gemm_wgrad_")
GEMM_KERNELS = 9
NOT_GEMM = ("jconv_implicit_gemm_wgrad_reduce",)  # the split-K sums, not a main loop
MIN_FFMA_SHARE = 0.75
# MMAs per step of the hot loop, at least (tf32 / 3xtf32: 8-deep steps; fp16 / bf16: 16-deep, m16n8k16)
MMA_PREFIXES = {"jconv_implicit_gemm_tf32_": 16, "jconv_implicit_gemm_3xtf32_": 48, "jconv_implicit_gemm_fp16_": 16,
                "jconv_implicit_gemm_bf16_": 16, "jconv_implicit_gemm_fp16io_": 16, "jconv_implicit_gemm_bf16io_": 16}
MMA_KERNELS = 36
NHWC_PREFIX = "jconv_implicit_gemm_nhwc_"
NHWC_KERNELS = 8
# MMAs per 64-byte step of the channels-last hot loops, at least, by format (math)
NHWC_MMA = {"fp16io": 32, "bf16io": 32, "tf32": 32, "3xtf32": 96}
NHWC_LDSM = 12


def check(rows):
    failures = []
    gemm = mma = nhwc = 0
    for r in rows:
        name, loop = r["kernel"], r.get("hot_loop") or {}
        if r.get("spill_st", 0) or r.get("spill_ld", 0):
            failures.append(f"{name}: spills ({r['spill_st']} bytes stored, {r['spill_ld']} loaded)")
        if loop.get("idiv_seq", 0) or loop.get("div64_calls", 0):
            failures.append(f"{name}: divides in its hot loop ({loop.get('idiv_seq', 0)} sequences, "
                            f"{loop.get('div64_calls', 0)} 64-bit calls)")
        if name.startswith(GEMM_PREFIXES) and name not in NOT_GEMM:
            gemm += 1
            if r["ffma_share"] < MIN_FFMA_SHARE:
                failures.append(f"{name}: hot loop {100 * r['ffma_share']:.1f}% FFMA, under {100 * MIN_FFMA_SHARE:.0f}%")
            widths = loop.get("lds_widths", {})
            if not widths or set(widths) != {"128"}:
                failures.append(f"{name}: shared loads not all 128-bit: {widths or 'none'}")
        if name.startswith(NHWC_PREFIX) and "_fprop_" in name:  # not the split-K sums
            nhwc += 1
            ops = loop.get("opcodes", {})
            want = NHWC_MMA.get(name[len(NHWC_PREFIX):].split("_fprop_")[0])
            if want is None:
                failures.append(f"{name}: a channels-last kernel of no known format")
            elif loop.get("mma", 0) < want:
                failures.append(f"{name}: {loop.get('mma', 0)} MMA in its hot loop, expected at least {want}")
            if ops.get("LDSM", 0) < NHWC_LDSM:
                failures.append(f"{name}: {ops.get('LDSM', 0)} ldmatrix in its hot loop, expected at least {NHWC_LDSM}")
            if not loop.get("ldgsts", 0):
                failures.append(f"{name}: no cp.async in its hot loop")
            if loop.get("lds", 0) > loop.get("ldgsts", 0):
                failures.append(f"{name}: {loop.get('lds', 0)} shared loads besides ldmatrix in its hot loop")
        mma_min = next((n for p, n in MMA_PREFIXES.items() if name.startswith(p)), None)
        if mma_min is not None:
            mma += 1
            if loop.get("mma", 0) < mma_min:
                failures.append(f"{name}: {loop.get('mma', 0)} MMA in its hot loop, expected at least {mma_min}")
            widths = dict(loop.get("lds_widths", {}))
            if name.startswith("jconv_implicit_gemm_3xtf32_") and widths.get("32") == 1:
                del widths["32"]  # the step's non-finite flag (one word per step), not an operand load
            if not widths or set(widths) != {"128"}:
                failures.append(f"{name}: shared loads not all 128-bit: {widths or 'none'}")
    if gemm != GEMM_KERNELS:
        failures.append(f"{gemm} implicit-GEMM fprop/dgrad/wgrad kernels in the report, expected {GEMM_KERNELS}")
    if mma != MMA_KERNELS:
        failures.append(f"{mma} tensor-core implicit-GEMM kernels in the report, expected {MMA_KERNELS}")
    if nhwc != NHWC_KERNELS:
        failures.append(f"{nhwc} channels-last kernels in the report, expected {NHWC_KERNELS}")
    return failures


def markdown(rows):
    out = ["| kernel | regs | spills | occupancy | hot loop instr | FFMA | MMA | FFMA share | shared loads | divisions |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for r in rows:
        loop = r.get("hot_loop") or {}
        lds = ", ".join(f"{n} x {w}-bit" for w, n in sorted(loop.get("lds_widths", {}).items(), key=lambda x: -int(x[0])))
        out.append(f"| {r['kernel']} | {r['regs']} | {r['spill_st'] + r['spill_ld']} | {100 * r['occupancy']:.1f}% | "
                   f"{loop.get('instructions', 0)} | {loop.get('ffma', 0)} | {loop.get('mma', 0)} | {100 * r['ffma_share']:.1f}% | {lds or '-'} | "
                   f"{loop.get('idiv_seq', 0) + loop.get('div64_calls', 0)} |")
    return "\n".join(out) + "\n"


def self_test():
    good = {"kernel": "jconv_implicit_gemm_fprop_128x128", "regs": 128, "spill_st": 0, "spill_ld": 0, "occupancy": 0.125,
            "ffma_share": 0.8, "hot_loop": {"instructions": 640, "ffma": 512, "idiv_seq": 0, "div64_calls": 0,
                                            "lds_widths": {"128": 32}}}
    rows = [dict(copy.deepcopy(good), kernel=p + t) for p in GEMM_PREFIXES for t in ("128x128", "128x64", "64x64")]
    for p, n in MMA_PREFIXES.items():
        for op in ("fprop", "dgrad"):
            for t in ("128x128", "128x64", "64x64"):
                rows.append(dict(copy.deepcopy(good), kernel=f"{p}{op}_{t}", ffma_share=0.0,
                                 hot_loop={"instructions": 300, "ffma": 0, "mma": n, "idiv_seq": 0, "div64_calls": 0,
                                           "lds_widths": {"128": 6} if n == 16 else {"128": 12, "32": 1}}))
    for f, n in NHWC_MMA.items():
        for t in ("128x64", "64x64"):
            rows.append(dict(copy.deepcopy(good), kernel=f"{NHWC_PREFIX}{f}_fprop_{t}", ffma_share=0.0,
                             hot_loop={"instructions": 185, "ffma": 0, "mma": n, "idiv_seq": 0, "div64_calls": 0, "lds": 3,
                                       "lds_widths": {"32": 3}, "ldgsts": 6, "opcodes": {"HMMA": n, "LDSM": 12, "LDGSTS": 6}}))
    rows.append(dict(copy.deepcopy(good), kernel=NHWC_PREFIX + "splitk_reduce_fp16io", ffma_share=0.0,
                     hot_loop={"idiv_seq": 0, "div64_calls": 0, "lds_widths": {}}))
    rows.append(dict(copy.deepcopy(good), kernel="jconv_implicit_gemm_wgrad_reduce", ffma_share=0.0,
                     hot_loop={"idiv_seq": 0, "div64_calls": 0, "lds_widths": {}}))
    assert check(rows) == [], check(rows)

    def broken(change):
        bad = copy.deepcopy(rows)
        change(bad)
        return check(bad)
    cases = {
        "spill": lambda b: b[0].update(spill_st=8),
        "division": lambda b: b[1]["hot_loop"].update(idiv_seq=1),
        "64-bit division call": lambda b: b[2]["hot_loop"].update(div64_calls=1),
        "low FFMA share": lambda b: b[3].update(ffma_share=0.74),
        "32-bit shared loads": lambda b: b[4]["hot_loop"]["lds_widths"].update({"32": 4}),
        "no shared loads": lambda b: b[5]["hot_loop"].update(lds_widths={}),
        "a GEMM kernel missing": lambda b: b.pop(0),
        "a tensor-core loop without MMA": lambda b: b[9]["hot_loop"].update(mma=0),
        "3xtf32 with a third of its MMAs": lambda b: b[15]["hot_loop"].update(mma=16),
        "a tensor-core loop with 32-bit shared loads": lambda b: b[10]["hot_loop"]["lds_widths"].update({"32": 8}),
        "a tensor-core kernel missing": lambda b: b.pop(12),
        "a tensor-core kernel spilling": lambda b: b[11].update(spill_ld=4),
        "3xtf32 with two 32-bit shared loads": lambda b: b[16]["hot_loop"]["lds_widths"].update({"32": 2}),
        "tf32 with the flag's 32-bit load": lambda b: b[9]["hot_loop"]["lds_widths"].update({"32": 1}),
        "fp16 with half its MMAs": lambda b: b[21]["hot_loop"].update(mma=8),
        "bf16 with 64-bit shared loads": lambda b: b[27]["hot_loop"]["lds_widths"].update({"64": 2}),
        "fp16 tensors' loop with half its MMAs": lambda b: b[33]["hot_loop"].update(mma=8),
        "a bf16-tensor kernel missing": lambda b: b.pop(40),
        "a channels-last loop with half its MMAs": lambda b: b[45]["hot_loop"].update(mma=16),
        "a channels-last loop without ldmatrix": lambda b: b[46]["hot_loop"]["opcodes"].update(LDSM=0),
        "a channels-last loop without cp.async": lambda b: b[47]["hot_loop"].update(ldgsts=0),
        "a channels-last loop with more shared loads": lambda b: b[48]["hot_loop"].update(lds=12),
        "a channels-last kernel missing": lambda b: b.pop(46),
        "a channels-last tf32 loop with half its MMAs": lambda b: b[49]["hot_loop"].update(mma=16),
        "a channels-last 3xtf32 loop with a third of its MMAs": lambda b: b[51]["hot_loop"].update(mma=32),
        "a channels-last kernel of an unknown format": lambda b: b[52].update(kernel=NHWC_PREFIX + "fp8_fprop_64x64"),
    }
    for what, change in cases.items():
        assert broken(change), f"kernel_report_check: a report with {what} passed"
    print(f"kernel_report_check: self-test: all {len(cases)} broken reports caught")


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    rows = json.load(open(argv[1]))
    if "--md" in argv:
        open(argv[argv.index("--md") + 1], "w").write(markdown(rows))
    failures = check(rows)
    for f in failures:
        print(f"kernel report: FAIL: {f}")
    if failures:
        sys.exit(1)
    gemm = [r for r in rows if r["kernel"].startswith(GEMM_PREFIXES) and r["kernel"] not in NOT_GEMM]
    print(f"kernel report: {len(rows)} kernels, no spills, no division in any hot loop; implicit-GEMM main loops at "
          f"{min(100 * r['ffma_share'] for r in gemm):.1f}-{max(100 * r['ffma_share'] for r in gemm):.1f}% FFMA with 128-bit shared loads; "
          f"tensor-core main loops issue {'/'.join(str(n) for n in MMA_PREFIXES.values())} MMA (tf32/3xtf32/fp16/bf16/fp16io/bf16io) per step with "
          f"128-bit shared loads; channels-last main loops issue {'/'.join(str(n) for n in NHWC_MMA.values())} MMA "
          f"({'/'.join(NHWC_MMA)}) and {NHWC_LDSM} ldmatrix per 64-byte step, fed by cp.async")


if __name__ == "__main__":
    main(sys.argv)
