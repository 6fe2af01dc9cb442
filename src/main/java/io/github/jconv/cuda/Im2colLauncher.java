package io.github.jconv.cuda;

import io.github.jconv.ConvGeometry;
import io.github.jconv.Epilogue;

/**
 * cuda-kernels/im2col.cu with sgemm.cu. Forward, per (sample, group): unfold into col (C/G*R*S x P*Q), then
 * y_g += w_g * col on a bias-filled y, the epilogue in the GEMM's store. conv_transpose2d, per (sample, group):
 * col = w_g^T * y_g, then fold col into x (gather form, bias and epilogue included). One col buffer serves all
 * (sample, group) pairs.
 */
final class Im2colLauncher extends Launcher {
    @Override
    String cannotImplement(ConvGeometry g) {
        long col = (long) g.cPerGroup() * g.r * g.s * g.p * g.q;
        if (col > Integer.MAX_VALUE) {
            return "im2col's column buffer would hold " + col + " floats (the GEMM's sizes are 32-bit); use implicit-gemm";
        }
        return null;
    }

    @Override
    void run(DeviceArena arena, ConvGeometry g, DeviceBuffer in, DeviceBuffer w, DeviceBuffer bias, Epilogue ep, DeviceBuffer res,
             DeviceBuffer out) {
        int cg = g.cPerGroup(), kg = g.kPerGroup(), crs = cg * g.r * g.s, pq = g.p * g.q;
        try (DeviceBuffer col = arena.allocate((long) crs * pq)) {
            if (!g.transposed()) {
                launch(arena, "jconv_im2col_fprop_bias", grid1d((long) g.n * g.k * pq), BLOCK_1D, params(g), out, bias, out);
            }
            for (int n = 0; n < g.n; n++) {
                for (int grp = 0; grp < g.groups; grp++) {
                    long yOff = ((long) n * g.k + (long) grp * kg) * pq;
                    if (!g.transposed()) {
                        launch(arena, "jconv_im2col_fprop_unfold", grid1d((long) crs * pq), BLOCK_1D, params(g, n, grp, Epilogue.none()), col, in, col);
                        SgemmLauncher.run(arena, kg, pq, crs, w, (long) grp * kg * crs, crs, 1, col, 0, pq, 1, out, yOff, pq, true,
                                ep, res);
                    } else {
                        SgemmLauncher.run(arena, crs, pq, kg, w, (long) grp * kg * crs, 1, crs, in, yOff, pq, 1, col, 0, pq, false,
                                Epilogue.none(), null);
                        launch(arena, "jconv_im2col_dgrad_fold", grid1d((long) cg * g.h * g.w), BLOCK_1D, params(g, n, grp, ep), out, col,
                                bias, res, out);
                    }
                }
            }
        }
    }
}
