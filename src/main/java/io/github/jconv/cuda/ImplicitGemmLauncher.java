package io.github.jconv.cuda;

import io.github.jconv.ConvGeometry;
import io.github.jconv.Dtype;
import io.github.jconv.Epilogue;
import io.github.jconv.MathMode;

import java.util.ArrayList;
import java.util.List;

/**
 * cuda-kernels/implicit_gemm.cu: conv2d (fprop) and conv_transpose2d (dgrad) as one tiled implicit GEMM. conv2d is one
 * GEMM per group; conv_transpose2d one per stride phase (rows with the same (row + padTop) mod strideH, columns
 * likewise): each phase reads exactly the taps that reach it, at fixed offsets in y, so no tap is tested or wasted.
 * Grid: (pixel tiles, column tiles, groups), at most 65535 groups per launch (each launch told its first group).
 * The tile shape is chosen from the geometry alone ({@link #tile}).
 */
final class ImplicitGemmLauncher extends Launcher {
    /** Tile shapes (pixels x columns), largest first; each has a kernel per operation. */
    static final List<GemmTile> TILES = List.of(GemmTile.T128X128, GemmTile.T128X64, GemmTile.T64X64);

    static String kernel(GemmTile t, boolean transposed) {
        return kernel(t, transposed, MathMode.FP32);
    }

    /** The entry point of a tile, direction and math: jconv_implicit_gemm_[tf32_|3xtf32_|fp16_|bf16_](fprop|dgrad)_TILE. */
    static String kernel(GemmTile t, boolean transposed, MathMode math) {
        return kernel(t, transposed, math, Dtype.FP32);
    }

    /**
     * As {@link #kernel(GemmTile, boolean, MathMode)} on tensors of {@code storage}: float32, or (math fp16 / bf16 on
     * tensors of that format) jconv_implicit_gemm_[fp16io_|bf16io_](fprop|dgrad)_TILE, which load and store 16-bit elements.
     */
    static String kernel(GemmTile t, boolean transposed, MathMode math, Dtype storage) {
        String prefix = storage != Dtype.FP32 ? storage.label() + "io_" : math.tensorCores() ? math.label() + "_" : "";
        return "jconv_implicit_gemm_" + prefix + (transposed ? "dgrad" : "fprop") + "_" + t;
    }

    /** Whether the kernels load and store tensors of {@code storage} as they are in {@code math}: half-precision storage in its own math. */
    static boolean loadsAsStored(MathMode math, Dtype storage) {
        return storage != Dtype.FP32 && math.operandDtype() == storage;
    }

    /**
     * Blocks a launch should have at least before a larger tile is worth it: two per SM of an H100 (132 SMs), so
     * that the largest tile that still fills the GPU is taken.
     */
    static final int MIN_BLOCKS = 264;

    /** At most this many split-K slices (the workspace holds one output per slice). */
    static final int MAX_SPLITS = 16;
    /** Each split-K slice runs at least this many 8-deep steps of the reduction. */
    static final int MIN_SPLIT_STEPS = 16;

    /** Tests: every launch uses this tile instead of {@link #tile}'s choice (the shape table's layers are all small). */
    static volatile GemmTile forcedTile;
    /** Tests: when > 0, this many split-K slices (capped by the steps) instead of {@link #splits}'s choice. */
    static volatile int forcedSplits;

    /** One GEMM: the kernel's IgemmParams after the ConvParams (cuda-kernels/implicit_gemm.cu), in field order. */
    record Gemm(int[] fields, long pixels, int cols) {
    }

    @Override
    String cannotImplement(ConvGeometry g) {
        long inPlane = g.transposed() ? (long) g.k * g.p * g.q : (long) g.c * g.h * g.w;
        long outPixels = g.transposed() ? (long) g.n * g.h * g.w : (long) g.n * g.p * g.q;
        if (inPlane > Integer.MAX_VALUE) {
            return "one sample of the input has more than 2^31 - 1 elements (the kernel's offsets are 32-bit)";
        }
        if ((long) g.kPerGroup() * g.cPerGroup() * g.r * g.s > Integer.MAX_VALUE) {
            return "one group of the weight has more than 2^31 - 1 elements (the kernel's offsets are 32-bit)";
        }
        if (outPixels > Integer.MAX_VALUE - 128) {
            return "more than 2^31 - 129 output pixels";
        }
        int cols = g.transposed() ? g.cPerGroup() : g.kPerGroup();
        return (cols + 63) / 64 > MAX_GRID_YZ ? "more than " + MAX_GRID_YZ + " tiles of output channels (a GPU's largest grid.y)"
                : null;
    }

    /** The tile: the largest whose grid still has {@link #MIN_BLOCKS} blocks, else the smallest; 64 columns wide when the GEMM has at most 64. */
    static GemmTile tile(ConvGeometry g) {
        GemmTile forced = forcedTile;
        if (forced != null) {
            return forced;
        }
        long pixels = g.transposed() ? (long) g.n * g.h * g.w : (long) g.n * g.p * g.q;
        int cols = g.transposed() ? g.cPerGroup() : g.kPerGroup();
        for (GemmTile t : TILES) {
            if (t.bn() > 64 && cols <= 64) {
                continue;
            }
            if (blocks(t, pixels, cols, g.groups) >= MIN_BLOCKS) {
                return t;
            }
        }
        return GemmTile.T64X64;
    }

    private static long blocks(GemmTile t, long pixels, int cols, int groups) {
        return t.blocks(pixels, cols, groups);
    }

    /** The 8-deep steps of the reduction of the longest GEMM (conv_transpose2d's phases differ in taps). */
    static int steps(ConvGeometry g) {
        int red = g.transposed() ? g.kPerGroup() : g.cPerGroup();
        int taps = gemms(g).stream().mapToInt(m -> m.fields[TAPS_H] * m.fields[TAPS_H + 1]).max().orElse(0);
        return (red + 7) / 8 * taps;
    }

    /**
     * Split-K slices: 1 when the grid has {@link #MIN_BLOCKS} blocks, else enough to reach that many, each slice at
     * least {@link #MIN_SPLIT_STEPS} steps, at most {@link #MAX_SPLITS} (from the geometry alone, so every run sums in
     * the same order).
     */
    static int splits(ConvGeometry g) {
        return splitsFor(blocks(tile(g), outPixels(g), g.transposed() ? g.cPerGroup() : g.kPerGroup(), g.groups), steps(g), MIN_SPLIT_STEPS,
                forcedSplits);
    }

    /**
     * The split-K rule of both implicit-GEMM launchers: {@code forced} slices when > 0 (capped by the steps); else 1 when
     * the grid has {@link #MIN_BLOCKS} blocks (or none: an empty batch, never launched), else enough to reach that many,
     * each slice at least {@code minSplitSteps} steps, at most {@link #MAX_SPLITS}.
     */
    static int splitsFor(long blocks, int steps, int minSplitSteps, int forced) {
        if (forced > 0) {
            return Math.max(1, Math.min(forced, steps));
        }
        if (blocks >= MIN_BLOCKS || blocks == 0) {
            return 1;
        }
        long want = (MIN_BLOCKS + blocks - 1) / blocks;
        return (int) Math.max(1, Math.min(Math.min(want, MAX_SPLITS), steps / minSplitSteps));
    }

    /** explain's split-K clause, shared by both launchers: the slices, their steps, the blocks and the in-order reduction. */
    static String splitClause(int splits, int steps, long blocks, String reduceKernel) {
        return splits > 1 ? ", split-K into " + splits + " slices of " + (steps + splits - 1) / splits + " of " + steps + " steps ("
                + blocks * splits + " blocks; deterministic: " + reduceKernel + " adds them in order)" : ", no split-K";
    }

    /** Device memory beyond the operands: split-K's partial outputs, one per slice. */
    static long workspaceBytes(ConvGeometry g) {
        int s = splits(g);
        return s > 1 ? 4L * s * outputElements(g) : 0;
    }

    private static long outPixels(ConvGeometry g) {
        return g.transposed() ? (long) g.n * g.h * g.w : (long) g.n * g.p * g.q;
    }

    private static long outputElements(ConvGeometry g) {
        return g.transposed() ? (long) g.n * g.c * g.h * g.w : (long) g.n * g.k * g.p * g.q;
    }

    /** What a plan's explain says: the kernel, its tile, why that tile, split-K, and (conv_transpose2d) the phases. */
    static String variant(ConvGeometry g, MathMode math, Dtype storage) {
        GemmTile t = tile(g);
        int cols = g.transposed() ? g.cPerGroup() : g.kPerGroup();
        long blocks = blocks(t, outPixels(g), cols, g.groups);
        String why = forcedTile != null ? "forced by a test"
                : t.equals(GemmTile.T64X64) && blocks < MIN_BLOCKS
                ? "the smallest tile: fewer than " + MIN_BLOCKS + " blocks with any"
                : "the largest tile giving at least " + MIN_BLOCKS + " blocks" + (cols <= 64 ? " at most 64 columns wide (" + cols + " channels)" : "");
        String split = splitClause(splits(g), steps(g), blocks, "jconv_implicit_gemm_splitk_reduce");
        return kernel(t, g.transposed(), math, storage) + ", tile " + t + " (" + why + "), " + blocks + " blocks of " + t.threads() + " threads"
                + (math.tensorCores() ? " (" + t.threads() / 32 + " warps on " + (math.halfOperands() ? "mma.sync m16n8k16 " + math.label().toUpperCase(java.util.Locale.ROOT)
                        + ", two 8-deep steps per MMA" : "mma.sync m16n8k8 TF32" + (math == MathMode.TF32X3 ? ", 3 per product" : "")) + ")" : "")
                + (g.transposed() ? ", " + gemms(g).size() + " stride phase(s)" : "") + split;
    }

    private static int splitSteps(ConvGeometry g, int splits) {
        return (steps(g) + splits - 1) / splits;
    }

    @Override
    void run(DeviceArena arena, ConvGeometry g, DeviceBuffer in, DeviceBuffer w, DeviceBuffer bias, Epilogue ep, DeviceBuffer res,
             DeviceBuffer out) {
        run(arena, g, MathMode.FP32, in, w, bias, ep, res, out);
    }

    /** {@link #run} on the main loop of {@code math}: FP32 SIMT, or TF32 / 3xTF32 tensor cores (same tiles, split and order). */
    void run(DeviceArena arena, ConvGeometry g, MathMode math, DeviceBuffer in, DeviceBuffer w, DeviceBuffer bias, Epilogue ep,
             DeviceBuffer res, DeviceBuffer out) {
        run(arena, g, math, Dtype.FP32, in, w, bias, ep, res, out);
    }

    /**
     * As above on tensors of {@code storage}: in, w, res and out hold its elements ({@link #loadsAsStored} for a
     * half-precision one), the bias float32; the split-K workspace is float32 either way.
     */
    void run(DeviceArena arena, ConvGeometry g, MathMode math, Dtype storage, DeviceBuffer in, DeviceBuffer w, DeviceBuffer bias,
             Epilogue ep, DeviceBuffer res, DeviceBuffer out) {
        if (storage != Dtype.FP32 && !loadsAsStored(math, storage)) {
            throw new IllegalArgumentException(storage.label() + " tensors are loaded as they are in math " + storage.label() + " only, not "
                    + math.label());
        }
        boolean half = storage != Dtype.FP32;
        GemmTile t = tile(g);
        int splits = splits(g), splitSteps = splitSteps(g, splits);
        int limit = Math.max(1, gridYZLimit / splits);
        int[] last = null;
        try (DeviceBuffer ws = splits > 1 ? arena.allocate(splits * outputElements(g)) : null) {
            for (Gemm gemm : gemms(g)) {
                for (int first = 0; first < g.groups; first += limit) {
                    int[] p = params(g, first, ep, gemm, splits, splitSteps);
                    int groups = Math.min(limit, g.groups - first);
                    int[] grid = {(int) ((gemm.pixels + t.bm() - 1) / t.bm()), (gemm.cols + t.bn() - 1) / t.bn(), groups * splits};
                    if (half) { // (in, w, bias, res, out, ws): the output and the float32 workspace apart
                        launch(arena, kernel(t, g.transposed(), math, storage), grid, t.block(), p, out, in, w, bias, res, out,
                                ws == null ? out : ws);
                    } else { // (in, w, bias, res, out): the workspace in the output's place when split
                        launch(arena, kernel(t, g.transposed(), math), grid, t.block(), p, out, in, w, bias, res, ws == null ? out : ws);
                    }
                    last = p;
                }
            }
            if (ws != null && last != null) {
                launch(arena, "jconv_implicit_gemm_splitk_reduce" + (half ? "_" + storage.label() + "io" : ""), grid1d(outputElements(g)),
                        BLOCK_1D, last, out, ws, bias, res, out);
            }
        }
    }

    /** The kernel's IgemmParams: ConvParams, the GEMM's fields, the split. */
    private static int[] params(ConvGeometry g, int firstGroup, Epilogue ep, Gemm gemm, int splits, int splitSteps) {
        int[] conv = params(g, 0, firstGroup, ep);
        int[] p = new int[conv.length + gemm.fields.length + 2];
        System.arraycopy(conv, 0, p, 0, conv.length);
        System.arraycopy(gemm.fields, 0, p, conv.length, gemm.fields.length);
        p[p.length - 2] = splits;
        p[p.length - 1] = splitSteps;
        return p;
    }

    /** Index of tapsH in a Gemm's fields (tapsW follows). */
    private static final int TAPS_H = 18;

    /** The GEMMs of g: one for conv2d, one per stride phase with output pixels for conv_transpose2d. */
    static List<Gemm> gemms(ConvGeometry g) {
        List<Gemm> out = new ArrayList<>();
        int cg = g.cPerGroup(), kg = g.kPerGroup(), rs = g.r * g.s;
        if (!g.transposed()) {
            out.add(new Gemm(new int[] {g.c, g.h, g.w, g.k, g.p, g.q, cg, kg, g.p, g.q,
                    g.strideH, -g.padTop, g.strideW, -g.padLeft, 1, 0, 1, 0,
                    g.r, g.s, 0, g.dilationH, 0, g.dilationW, 0, g.s, 1, cg * rs, rs}, (long) g.n * g.p * g.q, kg));
            return out;
        }
        for (int ph = 0; ph < g.strideH; ph++) {
            Phase h = Phase.of(ph, g.strideH, g.dilationH, g.padTop, g.h, g.r);
            if (h.pixels <= 0) {
                continue;
            }
            for (int pw = 0; pw < g.strideW; pw++) {
                Phase v = Phase.of(pw, g.strideW, g.dilationW, g.padLeft, g.w, g.s);
                if (v.pixels <= 0) {
                    continue;
                }
                out.add(new Gemm(new int[] {g.k, g.p, g.q, g.c, g.h, g.w, kg, cg, h.pixels, v.pixels,
                        1, h.start, 1, v.start, g.strideH, h.outOffset, g.strideW, v.outOffset,
                        h.taps, v.taps, -h.firstShift, -h.shiftStep, -v.firstShift, -v.shiftStep,
                        h.firstTap * g.s + v.firstTap, h.tapStep * g.s, v.tapStep, rs, cg * rs}, (long) g.n * h.pixels * v.pixels, cg));
            }
        }
        return out;
    }

    /**
     * One axis of a conv_transpose2d stride phase: the output positions o with (o + pad) mod stride = phase are
     * o = stride * (start + u) + phase - pad for u in [0, pixels); the taps reaching them are firstTap + i * tapStep for
     * i in [0, taps) (those with tap * dilation = phase mod stride), tap i reading input position start + u - firstShift -
     * i * shiftStep.
     */
    record Phase(int start, int pixels, int outOffset, int taps, int firstTap, int tapStep, int firstShift, int shiftStep) {
        static Phase of(int phase, int stride, int dilation, int pad, int size, int kernel) {
            int start = Math.max(0, Math.floorDiv(pad - phase + stride - 1, stride));
            int end = Math.floorDiv(size - 1 + pad - phase, stride);  // the last u' with o < size
            int first = -1;
            for (int r = 0; r < kernel && first < 0; r++) {
                if (Math.floorMod(r * dilation - phase, stride) == 0) {
                    first = r;
                }
            }
            int step = stride / gcd(stride, dilation);
            int taps = first < 0 ? 0 : (kernel - 1 - first) / step + 1;
            int firstShift = first < 0 ? 0 : (first * dilation - phase) / stride;
            return new Phase(start, end - start + 1, stride * start + phase - pad, taps, Math.max(first, 0), step, firstShift,
                    step * dilation / stride);
        }

        private static int gcd(int a, int b) {
            return b == 0 ? a : gcd(b, a % b);
        }
    }
}
