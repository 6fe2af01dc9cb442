package io.github.jconv.cuda;

import io.github.jconv.ConvGeometry;

/**
 * cuda-kernels/wgrad.cu: the weight gradient (implicit GEMM over the output pixels on the shared main loop,
 * deterministic split-K) and the bias gradient. Grid of the weight gradient: (tap tiles of C/G*R*S, channel tiles of
 * K/G, groups x slices); launches of at most 65535 / slices groups each, told their first group. A step of the
 * reduction is 8 consecutive output columns of one output row.
 */
final class WgradLauncher {
    /** Blocks a launch should have at least, so that a GPU's SMs all get work (two per SM of an H100's 132). */
    static final int TARGET_BLOCKS = 264;
    /** At most this many slices of the steps (the workspace holds one dW per slice). */
    static final int MAX_SPLITS = 32;
    /** Steps per slice at least. */
    static final int MIN_CHUNK = 16;

    /** Tile shapes (output channels x taps); each has a kernel jconv_implicit_gemm_wgrad_BMxBN. */
    static final java.util.List<GemmTile> TILES = java.util.List.of(GemmTile.T128X128, GemmTile.T64X128, GemmTile.T64X64);

    static String kernel(GemmTile t) {
        return "jconv_implicit_gemm_wgrad_" + t;
    }

    /** Tests: every launch uses this tile, and (when > 0) this many slices, instead of the launcher's choice. */
    static volatile GemmTile forcedTile;
    static volatile int forcedSplits;

    private WgradLauncher() {
    }

    static String cannotImplement(ConvGeometry g) {
        if ((long) g.cPerGroup() * g.r * g.s > Integer.MAX_VALUE - 127) {
            return "more than 2^31 - 128 taps per output channel";
        }
        if ((long) g.k * g.p * g.q > Integer.MAX_VALUE || (long) g.c * g.h * g.w > Integer.MAX_VALUE) {
            return "one sample of x or dy has more than 2^31 - 1 elements (the kernel's offsets are 32-bit)";
        }
        if (steps(g) > Integer.MAX_VALUE) {
            return "more than 2^31 - 1 steps of 8 output columns";
        }
        return (g.kPerGroup() + 63) / 64 > Launcher.MAX_GRID_YZ ? "more than " + Launcher.MAX_GRID_YZ
                + " tiles of output channels (a GPU's largest grid.y)" : null;
    }

    /** The tile: 128 channels tall when there are more than 64, 128 taps wide when there are more than 64. */
    static GemmTile tile(ConvGeometry g) {
        GemmTile forced = forcedTile;
        if (forced != null) {
            return forced;
        }
        if (g.kPerGroup() > 64) {
            return GemmTile.T128X128;
        }
        return (long) g.cPerGroup() * g.r * g.s > 64 ? GemmTile.T64X128 : GemmTile.T64X64;
    }

    /** Steps of the reduction: N x P rows of ceil(Q / 8) column blocks. */
    static long steps(ConvGeometry g) {
        return (long) g.n * g.p * ((g.q + 7) / 8);
    }

    private static long tiles(ConvGeometry g, GemmTile t) {
        return t.blocks(g.kPerGroup(), (long) g.cPerGroup() * g.r * g.s, g.groups);
    }

    /** Slices of the steps: enough blocks to fill a GPU, each slice at least {@link #MIN_CHUNK} steps (from g alone). */
    static int splits(ConvGeometry g) {
        int forced = forcedSplits;
        if (forced > 0) {
            return (int) Math.max(1, Math.min(forced, steps(g)));
        }
        long want = (TARGET_BLOCKS + tiles(g, tile(g)) - 1) / tiles(g, tile(g));
        return (int) Math.max(1, Math.min(Math.min(MAX_SPLITS, want), steps(g) / MIN_CHUNK));
    }

    /** Steps per slice. */
    static int chunk(ConvGeometry g, int splits) {
        return (int) ((steps(g) + splits - 1) / splits);
    }

    /** Device memory beyond x, dy and dw: the partial dW of each slice when there is more than one. */
    static long workspaceFloats(ConvGeometry g) {
        int s = splits(g);
        return s > 1 ? (long) s * g.k * g.cPerGroup() * g.r * g.s : 0;
    }

    /** What explain says: the kernel, its tile and the split. */
    static String variant(ConvGeometry g) {
        GemmTile t = tile(g);
        int s = splits(g);
        return kernel(t) + ", " + tiles(g, t) + " blocks of " + t.threads() + " threads" + (s > 1 ? ", split-K into " + s
                + " slices of " + chunk(g, s) + " of " + steps(g) + " steps" : ", no split-K");
    }

    /** dw (overwritten) = the weight gradient of g from x and dy (forward names), queued on {@code arena}'s stream. */
    static void run(DeviceArena arena, ConvGeometry g, DeviceBuffer x, DeviceBuffer dy, DeviceBuffer dw) {
        long total = (long) g.k * g.cPerGroup() * g.r * g.s;
        GemmTile t = tile(g);
        int splits = splits(g), chunk = chunk(g, splits);
        try (DeviceBuffer ws = splits > 1 ? arena.allocate(splits * total) : null) {
            int perLaunch = Math.max(1, Launcher.gridYZLimit / splits);
            for (int first = 0; first < g.groups; first += perLaunch) {
                int groups = Math.min(perLaunch, g.groups - first);
                int[] grid = {(int) (((long) g.cPerGroup() * g.r * g.s + t.bn() - 1) / t.bn()), (g.kPerGroup() + t.bm() - 1) / t.bm(), groups * splits};
                launch(arena, kernel(t), g, first, splits, chunk, grid, t.block(), ws == null ? dw : ws, x, dy);
            }
            if (ws != null) {
                launch(arena, "jconv_implicit_gemm_wgrad_reduce", g, 0, splits, chunk, Launcher.grid1d(total), Launcher.BLOCK_1D, dw, ws);
            }
        }
    }

    /** db[k] = sum of dy[n][k][p][q] over n, p, q (dy N x K x P x Q given as pq = P*Q), queued on {@code arena}'s stream. */
    static void bias(DeviceArena arena, int n, int k, int pq, DeviceBuffer dy, DeviceBuffer db) {
        int[] params = {n, 0, 0, 0, k, 1, 1, 1, pq, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0};
        Launcher.launch(arena, "jconv_bias_wgrad", new int[] {k, 1, 1}, Launcher.BLOCK_1D, params, db, dy, db);
    }

    private static void launch(DeviceArena arena, String kernel, ConvGeometry g, int firstGroup, int splits, int chunk, int[] grid,
                               int[] block, DeviceBuffer out, DeviceBuffer... in) {
        int[] conv = Launcher.params(g, 0, firstGroup, io.github.jconv.Epilogue.none());
        int[] params = java.util.Arrays.copyOf(conv, conv.length + 2);
        params[conv.length] = splits;
        params[conv.length + 1] = chunk;
        DeviceBuffer[] buffers = new DeviceBuffer[in.length + 1];
        System.arraycopy(in, 0, buffers, 0, in.length);
        buffers[in.length] = out;
        Launcher.launch(arena, kernel, grid, block, params, out, buffers);
    }
}
