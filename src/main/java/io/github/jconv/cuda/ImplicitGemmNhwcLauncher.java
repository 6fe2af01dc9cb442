package io.github.jconv.cuda;

import io.github.jconv.ConvGeometry;
import io.github.jconv.Dtype;
import io.github.jconv.Epilogue;
import io.github.jconv.MathMode;

import java.util.List;

/**
 * cuda-kernels/implicit_gemm_nhwc.cu: conv2d on channels-last (NHWC) tensors read as they are stored (16-byte cp.async
 * copies, a 3-stage pipeline, ldmatrix fragments, FP32 accumulation): fp16 or bf16 tensors in their own math (mma.sync
 * m16n8k16), float32 tensors in tf32 or 3xtf32 (mma.sync m16n8k8, each fragment word rounded or split as it is read),
 * with KRSC weights ({@link #krsc}, reordered once by the plan). It takes one group, C a whole number of 16-byte chunks
 * (a multiple of 8 halfs or 4 floats) and K even ({@link #cannotImplement}); other NHWC plans convert to NCHW around the
 * NCHW kernels. Grid: (pixel tiles, channel tiles, split-K slices); a grid of fewer than {@link
 * ImplicitGemmLauncher#MIN_BLOCKS} blocks splits the reduction ({@link #splits}) and
 * jconv_implicit_gemm_nhwc_splitk_reduce[_fp16io|_bf16io] adds the slices in order.
 */
final class ImplicitGemmNhwcLauncher {
    /** Tile shapes (pixels x output channels), largest first; both have a kernel per format. Threads: bm. */
    static final List<GemmTile> TILES = List.of(GemmTile.T128X64, GemmTile.T64X64);

    /** Tests: every launch uses this tile instead of {@link #tile}'s choice. */
    static volatile GemmTile forcedTile;
    /** Tests: when > 0, this many split-K slices (capped by the steps) instead of {@link #splits}'s choice. */
    static volatile int forcedSplits;

    /** Bytes of channels per step of the reduction: four 16-byte copies per row (32 halfs or 16 floats of one tap). */
    static final int STEP_BYTES = 64;
    /** Each split-K slice runs at least this many steps (64-128 reduction elements; the NCHW kernels' slices 128). */
    static final int MIN_SPLIT_STEPS = 4;

    private ImplicitGemmNhwcLauncher() {
    }

    /**
     * Whether a plan of this math on tensors of {@code storage} runs here: fp16 tensors in math fp16, bf16 in bf16, float32
     * in tf32 or 3xtf32.
     */
    static boolean takes(MathMode math, Dtype storage) {
        return ImplicitGemmLauncher.loadsAsStored(math, storage) || storage == Dtype.FP32 && (math == MathMode.TF32 || math == MathMode.TF32X3);
    }

    /** Channels of {@code storage} per step of the reduction: 32 halfs, 16 floats. */
    static int depth(Dtype storage) {
        return STEP_BYTES / storage.bytes();
    }

    /** Null when the kernels can compute g on tensors of {@code storage}, otherwise why not. */
    static String cannotImplement(ConvGeometry g, Dtype storage) {
        if (g.transposed()) {
            return "conv_transpose2d (the channels-last kernels compute conv2d)";
        }
        if (g.groups != 1) {
            return g.groups + " groups (the channels-last kernels take one)";
        }
        int chunk = 16 / storage.bytes();
        if (g.c % chunk != 0) {
            return g.c + " input channels, not a multiple of " + chunk + " (the kernels copy " + chunk + " " + storage.label()
                    + " channels, 16 bytes, at a time)";
        }
        if (g.k % 2 != 0) {
            return g.k + " output channels, an odd number (the kernels store two channels at a time)";
        }
        if ((long) g.n * g.p * g.q > Integer.MAX_VALUE - 128) {
            return "more than 2^31 - 129 output pixels";
        }
        if ((long) g.h * g.w * g.c > Integer.MAX_VALUE || (long) g.r * g.s * g.c > Integer.MAX_VALUE) {
            return "one sample of the input or one output channel's weights has more than 2^31 - 1 elements (32-bit offsets)";
        }
        return (g.k + 63) / 64 > Launcher.MAX_GRID_YZ ? "more than " + Launcher.MAX_GRID_YZ + " tiles of output channels (a GPU's largest grid.y)"
                : null;
    }

    /** The tile: 128 x 64 where it gives at least {@link ImplicitGemmLauncher#MIN_BLOCKS} blocks, else 64 x 64. */
    static GemmTile tile(ConvGeometry g) {
        GemmTile forced = forcedTile;
        if (forced != null) {
            return forced;
        }
        return GemmTile.T128X64.blocks((long) g.n * g.p * g.q, g.k, 1) >= ImplicitGemmLauncher.MIN_BLOCKS ? GemmTile.T128X64 : GemmTile.T64X64;
    }

    /** The steps of the reduction on tensors of {@code storage}: {@link #depth}-channel steps per tap, times the taps. */
    static int steps(ConvGeometry g, Dtype storage) {
        int depth = depth(storage);
        return (g.c + depth - 1) / depth * g.r * g.s;
    }

    /**
     * Split-K slices: 1 when the tile's grid has {@link ImplicitGemmLauncher#MIN_BLOCKS} blocks, else enough to reach
     * that many, each slice at least {@link #MIN_SPLIT_STEPS} steps, at most {@link ImplicitGemmLauncher#MAX_SPLITS}
     * (from the geometry alone, so every run sums in the same order).
     */
    static int splits(ConvGeometry g, Dtype storage) {
        return ImplicitGemmLauncher.splitsFor(tile(g).blocks((long) g.n * g.p * g.q, g.k, 1), steps(g, storage), MIN_SPLIT_STEPS, forcedSplits);
    }

    /** Device memory beyond the operands: split-K's float32 partial outputs, one per slice. */
    static long workspaceBytes(ConvGeometry g, Dtype storage) {
        int s = splits(g, storage);
        return s > 1 ? 4L * s * g.n * g.k * g.p * g.q : 0;
    }

    /** jconv_implicit_gemm_nhwc_(fp16io|bf16io|tf32|3xtf32)_fprop_TILE: the storage format, or float32's math. */
    static String kernel(GemmTile t, MathMode math, Dtype storage) {
        return "jconv_implicit_gemm_nhwc_" + (storage == Dtype.FP32 ? math.label() : storage.label() + "io") + "_fprop_" + t;
    }

    /** The split-K sum of tensors of {@code storage}: jconv_implicit_gemm_nhwc_splitk_reduce[_fp16io|_bf16io]. */
    static String reduceKernel(Dtype storage) {
        return "jconv_implicit_gemm_nhwc_splitk_reduce" + (storage == Dtype.FP32 ? "" : "_" + storage.label() + "io");
    }

    /** What a plan's explain says: the kernel, its tile and why, the pipeline. */
    static String variant(ConvGeometry g, MathMode math, Dtype storage) {
        GemmTile t = tile(g);
        long blocks = t.blocks((long) g.n * g.p * g.q, g.k, 1);
        String why = forcedTile != null ? "forced by a test"
                : (t.equals(GemmTile.T128X64) ? "at least " : "fewer than ") + ImplicitGemmLauncher.MIN_BLOCKS + " blocks of 128 x 64";
        String mma = storage == Dtype.FP32 ? "mma.sync m16n8k8 TF32" + (math == MathMode.TF32X3 ? ", 3 per product" : "")
                : "mma.sync m16n8k16 " + storage.label().toUpperCase(java.util.Locale.ROOT);
        return kernel(t, math, storage) + ", tile " + t + " (" + why + "), " + blocks + " blocks of " + t.threads() + " threads ("
                + t.threads() / 32 + " warps on " + mma + ", " + depth(storage) + "-channel steps, 3-stage cp.async pipeline, ldmatrix fragments)"
                + ImplicitGemmLauncher.splitClause(splits(g, storage), steps(g, storage), blocks, reduceKernel(storage));
    }

    /**
     * PyTorch's K x C x R x S weights reordered to K x R x S x C, the layout the kernels read (each output channel's taps
     * in turn, the channels of a tap contiguous).
     */
    static float[] krsc(ConvGeometry g, float[] kcrs) {
        int c = g.c, rs = g.r * g.s;
        float[] out = new float[kcrs.length];
        for (int k = 0; k < g.k; k++) {
            for (int ch = 0; ch < c; ch++) {
                for (int t = 0; t < rs; t++) {
                    out[(k * rs + t) * c + ch] = kcrs[(k * c + ch) * rs + t];
                }
            }
        }
        return out;
    }

    /**
     * out = epilogue(conv2d(in, w) + bias, residual) on NHWC buffers of {@code storage} elements (w KRSC, bias float32 or
     * null, residual null unless the epilogue adds one), queued on {@code arena}'s stream.
     */
    static void run(DeviceArena arena, ConvGeometry g, MathMode math, Dtype storage, DeviceBuffer in, DeviceBuffer w, DeviceBuffer bias,
                    Epilogue ep, DeviceBuffer residual, DeviceBuffer out) {
        if (!takes(math, storage)) {
            throw new IllegalArgumentException("the channels-last kernels take fp16 tensors in math fp16, bf16 in bf16 or fp32 in tf32 / 3xtf32, not "
                    + storage.label() + " in " + math.label());
        }
        String why = cannotImplement(g, storage);
        if (why != null) {
            throw new IllegalArgumentException("the channels-last kernels cannot take " + g + ": " + why);
        }
        GemmTile t = tile(g);
        int splits = splits(g, storage), splitSteps = (steps(g, storage) + splits - 1) / splits;
        int[] conv = Launcher.params(g, ep), p = java.util.Arrays.copyOf(conv, conv.length + 2);
        p[conv.length] = splits;
        p[conv.length + 1] = splitSteps;
        int[] grid = {(int) (((long) g.n * g.p * g.q + t.bm() - 1) / t.bm()), (g.k + t.bn() - 1) / t.bn(), splits};
        try (DeviceBuffer ws = splits > 1 ? arena.allocate((long) splits * g.n * g.k * g.p * g.q) : null) {
            // (in, w, bias, res, out, ws): the workspace in use only when split (else out stands in, never written as floats)
            Launcher.launch(arena, kernel(t, math, storage), grid, t.block(), p, out, in, w, bias, residual, out, ws == null ? out : ws);
            if (ws != null) {
                Launcher.launch(arena, reduceKernel(storage),
                        Launcher.grid1d((long) g.n * g.k * g.p * g.q), Launcher.BLOCK_1D, p, out, ws, bias, residual, out);
            }
        }
    }
}
