package io.github.jconv.cuda;

import io.github.jconv.ConvGeometry;
import io.github.jconv.Epilogue;

/**
 * cuda-kernels/implicit_gemm.cu: forward convolution as a tiled GEMM without an im2col buffer. Grid:
 * (N*P*Q / 64 pixel tiles, K/G / 64 channel tiles, groups) of 16 x 16 threads; more than 65535 groups (a GPU's
 * largest grid.z) go in launches of at most 65535, each told its first group (ConvParams.group).
 */
final class ImplicitGemmLauncher extends Launcher {
    @Override
    String cannotImplement(ConvGeometry g) {
        if (g.transposed()) {
            return "implicit-gemm is forward only (conv_transpose2d runs on direct, im2col or depthwise)";
        }
        long tiles = ((long) g.n * g.p * g.q + 63) / 64;
        if (tiles > Integer.MAX_VALUE) {
            return "more than 2^31 - 1 pixel tiles (a GPU's largest grid.x)";
        }
        return (g.kPerGroup() + 63) / 64 > MAX_GRID_YZ ? "more than " + MAX_GRID_YZ + " tiles of output channels (a GPU's largest grid.y)" : null;
    }

    @Override
    void run(DeviceArena arena, ConvGeometry g, DeviceBuffer x, DeviceBuffer w, DeviceBuffer bias, Epilogue ep, DeviceBuffer res,
             DeviceBuffer y) {
        int limit = gridYZLimit;
        for (int first = 0; first < g.groups; first += limit) {
            int[] grid = {(int) (((long) g.n * g.p * g.q + 63) / 64), (g.kPerGroup() + 63) / 64, Math.min(limit, g.groups - first)};
            launch(arena, "jconv_implicit_gemm_fwd", grid, BLOCK_16X16, params(g, 0, first, ep), y, x, w, bias, res, y);
        }
    }
}
