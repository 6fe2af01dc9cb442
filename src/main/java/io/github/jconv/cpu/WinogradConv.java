package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;

/**
 * Winograd F(4x4, 3x3) ({@link VectorWinograd}): forward 3x3 layers at stride 1, dilation 1, one group, and stride-1
 * conv_transpose2d of that shape (as the forward convolution {@link StrideOneTransposed} rewrites it to). A quarter of
 * direct's multiply-adds, at the cost of a larger rounding error: the transforms scale and mix a tile's 6x6 patch
 * (entries up to 5 in B, 8 in A), so the error bound grows with the magnitudes of the transformed operands rather than
 * with sum |x||w| (measured in the README; the autotuner keeps it only within its tolerance on the tuner's data). Inputs
 * or weights holding NaN or an infinity run the direct kernel instead, so non-finite values spread exactly as in
 * PyTorch, not over whole tiles. Needs the Vector API.
 */
final class WinogradConv implements CpuConvolution {
    private final DirectConv direct = new DirectConv();

    @Override
    public String cannotImplement(ConvGeometry g) {
        if (g.r != 3 || g.s != 3 || g.strideH != 1 || g.strideW != 1 || g.dilationH != 1 || g.dilationW != 1) {
            return "winograd needs a 3x3 kernel, stride 1 and dilation 1, got " + g.r + "x" + g.s + " stride " + g.strideH + "x"
                    + g.strideW + " dilation " + g.dilationH + "x" + g.dilationW;
        }
        if (g.transposed() && !StrideOneTransposed.applies(g)) {
            return "winograd runs conv_transpose2d as a forward convolution, which needs padding (less the output padding) of"
                    + " at most 2 at each side, got " + g.padTop + "," + g.padBottom + "," + g.padLeft + "," + g.padRight;
        }
        if (g.groups != 1) {
            return "winograd needs groups == 1 (grouped layers: direct), got groups=" + g.groups;
        }
        if (!Sgemm.VECTOR) {
            return "winograd needs the Vector API (run with --add-modules jdk.incubator.vector)";
        }
        if (VectorWinograd.workspaceFloats(DirectConv.vectorForm(g)) > Integer.MAX_VALUE - 16) {
            return "winograd's workspace for " + g + " is more than a Java array holds";
        }
        return null;
    }

    @Override
    public void forward(ConvGeometry g, float[] x, Weights w, float[] bias, float[] y, Finish done, Parallel par) {
        if (!VectorWinograd.forward(g, x, w, bias, y, done, par)) {
            direct.forward(g, x, w, bias, y, done, par);
        }
    }

    @Override
    public void transposed(ConvGeometry g, float[] y, Weights w, float[] bias, float[] x, Finish done, Parallel par) {
        if (!VectorWinograd.forward(StrideOneTransposed.forward(g), y, StrideOneTransposed.flippedWeights(g, w, par), bias, x, done, par)) {
            direct.transposed(g, y, w, bias, x, done, par);
        }
    }
}
