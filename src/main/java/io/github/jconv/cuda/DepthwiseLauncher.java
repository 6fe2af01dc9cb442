package io.github.jconv.cuda;

import io.github.jconv.ConvGeometry;
import io.github.jconv.Epilogue;

/**
 * cuda-kernels/depthwise.cu: groups == C, any channel multiplier; both operations. conv2d runs the shared-memory tiled
 * kernel where its input window fits ({@link #tiled}), else one thread per output.
 */
final class DepthwiseLauncher extends Launcher {
    @Override
    String cannotImplement(ConvGeometry g) {
        return g.isDepthwise() ? null : "depthwise needs groups == channels (one channel per group), got C=" + g.c
                + " groups=" + g.groups;
    }

    @Override
    void run(DeviceArena arena, ConvGeometry g, DeviceBuffer in, DeviceBuffer w, DeviceBuffer bias, Epilogue ep, DeviceBuffer res,
             DeviceBuffer out) {
        if (g.transposed()) {
            launch(arena, "jconv_depthwise_dgrad", grid1d((long) g.n * g.c * g.h * g.w), BLOCK_1D, params(g, ep), out, in, w,
                    bias, res, out);
        } else if (allowTiled && tiled(g)) {
            long tiles = (long) ((g.p + TILE_H - 1) / TILE_H) * ((g.q + TILE_W - 1) / TILE_W);
            int limit = gridYZLimit;
            for (int n0 = 0; n0 < g.n; n0 += limit) {
                for (int k0 = 0; k0 < g.k; k0 += limit) {
                    int[] grid = {(int) tiles, Math.min(limit, g.k - k0), Math.min(limit, g.n - n0)};
                    launch(arena, "jconv_depthwise_fprop_tiled", grid, new int[] {128, 1, 1}, params(g, n0, k0, ep), out, in, w, bias, res,
                            out);
                }
            }
        } else {
            launch(arena, "jconv_depthwise_fprop", grid1d((long) g.n * g.k * g.p * g.q), BLOCK_1D, params(g, ep), out, in, w, bias,
                    res, out);
        }
    }

    /** cuda-kernels/depthwise.cu's DW_TH, DW_TW, DW_SMEM, DW_MAX_TAPS. */
    static final int TILE_H = 16, TILE_W = 32, SMEM_FLOATS = 4096, MAX_TAPS = 256;

    /** Whether the shared-memory kernel takes g: its tile's input window fits, and its kernel, and the tile grid fits grid.x. */
    static boolean tiled(ConvGeometry g) {
        long rows = (long) (TILE_H - 1) * g.strideH + (long) (g.r - 1) * g.dilationH + 1;
        long cols = (long) (TILE_W - 1) * g.strideW + (long) (g.s - 1) * g.dilationW + 1;
        long tiles = (long) ((g.p + TILE_H - 1) / TILE_H) * ((g.q + TILE_W - 1) / TILE_W);
        return rows * cols <= SMEM_FLOATS && (long) g.r * g.s <= MAX_TAPS && tiles <= Integer.MAX_VALUE && (long) g.h * g.w <= Integer.MAX_VALUE;
    }

    /** Tests: false sends every conv2d to the per-element kernel. */
    static volatile boolean allowTiled = true;
}
