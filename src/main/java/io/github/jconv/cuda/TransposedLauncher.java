package io.github.jconv.cuda;

import io.github.jconv.ConvGeometry;
import io.github.jconv.Epilogue;

/** cuda-kernels/transposed.cu: conv_transpose2d in gather form, one thread per output element. */
final class TransposedLauncher extends Launcher {
    @Override
    String cannotImplement(ConvGeometry g) {
        return g.transposed() ? null : "transposed.cu computes conv_transpose2d only";
    }

    @Override
    void run(DeviceArena arena, ConvGeometry g, DeviceBuffer y, DeviceBuffer w, DeviceBuffer bias, Epilogue ep, DeviceBuffer res,
             DeviceBuffer x) {
        launch(arena, "jconv_direct_dgrad", grid1d((long) g.n * g.c * g.h * g.w), BLOCK_1D, params(g, ep), x, y, w, bias, res,
                x);
    }
}
