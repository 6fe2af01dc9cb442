package io.github.jconv.cuda;

import io.github.jconv.ConvGeometry;
import io.github.jconv.Epilogue;

/** cuda-kernels/direct.cu: forward convolution, one thread per output element. */
final class DirectLauncher extends Launcher {
    @Override
    String cannotImplement(ConvGeometry g) {
        return g.transposed() ? "direct.cu is forward only (conv_transpose2d runs transposed.cu)" : null;
    }

    @Override
    void run(DeviceArena arena, ConvGeometry g, DeviceBuffer x, DeviceBuffer w, DeviceBuffer bias, Epilogue ep, DeviceBuffer res,
             DeviceBuffer y) {
        launch(arena, "jconv_direct_fprop", grid1d((long) g.n * g.k * g.p * g.q), BLOCK_1D, params(g, ep), y, x, w, bias, res, y);
    }
}
