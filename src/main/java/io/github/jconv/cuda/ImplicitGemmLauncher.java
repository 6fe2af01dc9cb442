package io.github.jconv.cuda;

import io.github.jconv.ConvGeometry;

/**
 * cuda-kernels/implicit_gemm.cu: forward convolution as a tiled GEMM without an im2col buffer. Grid:
 * (N*P*Q / 64 pixel tiles, K/G / 64 channel tiles, G groups) of 16 x 16 threads.
 */
final class ImplicitGemmLauncher extends Launcher {
    @Override
    String cannotImplement(ConvGeometry g) {
        if (g.transposed()) {
            return "implicit-gemm is forward only (conv_transpose2d runs on direct, im2col or depthwise)";
        }
        long tiles = ((long) g.n * g.p * g.q + 63) / 64;
        return tiles > Integer.MAX_VALUE ? "more than 2^31 pixel tiles" : null;
    }

    @Override
    void run(DeviceArena arena, ConvGeometry g, DeviceBuffer x, DeviceBuffer w, DeviceBuffer bias, DeviceBuffer y) {
        int[] grid = {(int) (((long) g.n * g.p * g.q + 63) / 64), (g.kPerGroup() + 63) / 64, g.groups};
        launch(arena, "jconv_implicit_gemm_fwd", grid, BLOCK_16X16, params(g), y, x, w, bias, y);
    }
}
