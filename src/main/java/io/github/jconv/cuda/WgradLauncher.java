package io.github.jconv.cuda;

import io.github.jconv.ConvGeometry;

/**
 * cuda-kernels/wgrad.cu: the weight gradient (implicit GEMM over the output pixels, deterministic split-K) and the bias
 * gradient. Grid of the weight gradient: (taps C/G*R*S / 64, channels K/G / 64, groups x slices) of 16 x 16 threads;
 * launches of at most 65535 / slices groups each, told their first group.
 */
final class WgradLauncher {
    /** Blocks a launch should have at least, so that a GPU's SMs all get work (an H100 has 132). */
    static final int TARGET_BLOCKS = 512;
    /** At most this many slices of the pixel range (the workspace holds one dW per slice). */
    static final int MAX_SPLITS = 32;
    /** Pixels per slice at least: each block's main loop takes this many / 8 steps at least. */
    static final int MIN_CHUNK = 256;

    private WgradLauncher() {
    }

    static String cannotImplement(ConvGeometry g) {
        if ((long) g.cPerGroup() * g.r * g.s > Integer.MAX_VALUE - 63) {
            return "more than 2^31 - 64 taps per output channel";
        }
        return (g.kPerGroup() + 63) / 64 > Launcher.MAX_GRID_YZ ? "more than " + Launcher.MAX_GRID_YZ
                + " tiles of output channels (a GPU's largest grid.y)" : null;
    }

    /** Slices of the pixel range: enough blocks to fill a GPU, each slice at least {@link #MIN_CHUNK} pixels (from g alone). */
    static int splits(ConvGeometry g) {
        long pixels = (long) g.n * g.p * g.q;
        long tiles = (long) tilesL(g) * ((g.kPerGroup() + 63) / 64) * g.groups;
        long want = (TARGET_BLOCKS + tiles - 1) / tiles;
        return (int) Math.max(1, Math.min(Math.min(MAX_SPLITS, want), pixels / MIN_CHUNK));
    }

    private static int tilesL(ConvGeometry g) {
        return (int) (((long) g.cPerGroup() * g.r * g.s + 63) / 64);
    }

    /** Pixels per slice: the range cut into {@code splits} slices, rounded up to the kernel's 8-deep steps. */
    static int chunk(ConvGeometry g, int splits) {
        long pixels = (long) g.n * g.p * g.q;
        long per = (pixels + splits - 1) / splits;
        return (int) Math.min(Integer.MAX_VALUE - 7, (per + 7) / 8 * 8);
    }

    /** Device memory beyond x, dy and dw: the partial dW of each slice when there is more than one. */
    static long workspaceFloats(ConvGeometry g) {
        int s = splits(g);
        return s > 1 ? (long) s * g.k * g.cPerGroup() * g.r * g.s : 0;
    }

    /** dw (overwritten) = the weight gradient of g from x and dy (forward names), queued on {@code arena}'s stream. */
    static void run(DeviceArena arena, ConvGeometry g, DeviceBuffer x, DeviceBuffer dy, DeviceBuffer dw) {
        long total = (long) g.k * g.cPerGroup() * g.r * g.s;
        int splits = splits(g), chunk = chunk(g, splits);
        if ((long) g.n * g.p * g.q == 0) {
            launch(arena, "jconv_implicit_gemm_wgrad_reduce", g, 0, 0, 0, Launcher.grid1d(total), Launcher.BLOCK_1D, dw, dw); // a sum of no slices: zeros
            return;
        }
        try (DeviceBuffer ws = splits > 1 ? arena.allocate(splits * total) : null) {
            int perLaunch = Math.max(1, Launcher.gridYZLimit / splits);
            for (int first = 0; first < g.groups; first += perLaunch) {
                int groups = Math.min(perLaunch, g.groups - first);
                int[] grid = {tilesL(g), (g.kPerGroup() + 63) / 64, groups * splits};
                launch(arena, "jconv_implicit_gemm_wgrad", g, first, splits, chunk, grid, Launcher.BLOCK_16X16, ws == null ? dw : ws, x, dy);
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
