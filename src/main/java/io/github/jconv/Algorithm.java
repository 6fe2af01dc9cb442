package io.github.jconv;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** The convolution algorithms, selectable by name; {@link #AUTO} lets the backend pick. */
public enum Algorithm {
    AUTO("auto"),
    /** Float64 accumulation in plain loops: the oracle every other algorithm is tested against. */
    REFERENCE("reference"),
    /** Sliding window over the input, loops ordered so the innermost runs along an output row. */
    DIRECT("direct"),
    /** Unfold (im2col) per sample and group, then SGEMM; transposed: SGEMM then fold (col2im). */
    IM2COL("im2col"),
    /** A tiled GEMM over the output pixels without an im2col buffer (the CUDA backends). */
    IMPLICIT_GEMM("implicit-gemm"),
    /** The convolution as one dense matrix: conv = Wm x, transposed conv = Wm^T y. Refused above a size limit. */
    KERNEL_MATRIX("kernel-matrix"),
    /** One input channel per group (groups == C), any channel multiplier. */
    DEPTHWISE("depthwise"),
    /**
     * Winograd F(4x4, 3x3): 3x3 stride-1 layers with a quarter of direct's multiply-adds and a larger, documented
     * rounding error (the cpu backend).
     */
    WINOGRAD("winograd"),
    /** The vendor library decides (the cudnn backend: cuDNN's own algorithm choice, FMA math). */
    VENDOR("vendor");

    private final String label;

    Algorithm(String label) {
        this.label = label;
    }

    public String label() {
        return label;
    }

    @Override
    public String toString() {
        return label;
    }

    /** The algorithm of that name ({@code auto}, {@code direct}, ...); a clear error for an unknown one. */
    public static Algorithm parse(String name) {
        String n = name.trim().toLowerCase(Locale.ROOT).replace('_', '-');
        for (Algorithm a : values()) {
            if (a.label.equals(n)) {
                return a;
            }
        }
        throw new InvalidConvolutionException("unknown algorithm '" + name + "'; known: "
                + Arrays.stream(values()).map(Algorithm::label).collect(Collectors.joining(", ")));
    }
}
