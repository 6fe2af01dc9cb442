package io.github.jconv.cuda;

import io.github.jconv.ConvGeometry;
import io.github.jconv.Epilogue;

/** cuda-kernels/depthwise.cu: groups == C, any channel multiplier; both operations. */
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
        } else {
            launch(arena, "jconv_depthwise_fprop", grid1d((long) g.n * g.k * g.p * g.q), BLOCK_1D, params(g, ep), out, in, w, bias,
                    res, out);
        }
    }
}
