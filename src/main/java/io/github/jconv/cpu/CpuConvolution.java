package io.github.jconv.cpu;

import io.github.jconv.ConvGeometry;

/**
 * One CPU algorithm. Arrays follow {@link ConvGeometry}'s forward names: x is N x C x H x W, w is
 * K x C/G x R x S, y is N x K x P x Q. {@code forward} computes y from x; {@code transposed} computes
 * x from y (the adjoint, i.e. conv_transpose2d with its input y and output x). Outputs are overwritten.
 */
interface CpuConvolution {
    /** Null when this algorithm can compute {@code g}, otherwise why not. */
    default String cannotImplement(ConvGeometry g) {
        return null;
    }

    /**
     * Told by the worker that has just finished a contiguous run [from, to) of output elements (final values, still in
     * its cache): {@link CpuBackend} applies the epilogue there, so it costs no extra pass over the output. Runs of
     * different workers never overlap, and every output element is in exactly one run.
     */
    interface Finish {
        Finish NONE = (from, to) -> { };

        void region(int from, int to);
    }

    /** y = conv(x, w) + bias (bias of K, may be null); each finished run of y reported to {@code done}. */
    void forward(ConvGeometry g, float[] x, Weights w, float[] bias, float[] y, Finish done, Parallel par);

    /** x = conv_transpose(y, w) + bias (bias of C, may be null); each finished run of x reported to {@code done}. */
    void transposed(ConvGeometry g, float[] y, Weights w, float[] bias, float[] x, Finish done, Parallel par);

    /** Sets each of the {@code channels} planes of {@code planeSize} at {@code offset} to its bias (or 0). */
    static void fillBias(float[] out, int offset, int channels, int planeSize, float[] bias, int biasOffset) {
        for (int ch = 0; ch < channels; ch++) {
            float b = bias == null ? 0f : bias[biasOffset + ch];
            java.util.Arrays.fill(out, offset + ch * planeSize, offset + (ch + 1) * planeSize, b);
        }
    }
}
