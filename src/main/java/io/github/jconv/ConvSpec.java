package io.github.jconv;

import java.util.Objects;

/**
 * The parameters of a 2D convolution or transposed convolution, in PyTorch's sense: stride, padding,
 * dilation (each per axis), groups, and, for transposed convolution only, output padding and an output-size
 * request (ONNX ConvTranspose's {@code output_shape}: the padding is derived from it). Immutable; every
 * value is checked when the spec is built, and the message names the field and the value.
 * Tensor shapes are checked later, by {@link ConvGeometry}.
 */
public final class ConvSpec {
    private static final ConvSpec DEFAULT = builder().build();

    private final int strideH, strideW;
    private final Padding padding;
    private final int dilationH, dilationW;
    private final int groups;
    private final int outputPaddingH, outputPaddingW;
    private final int outputH, outputW;

    private ConvSpec(Builder b) {
        this.strideH = b.strideH;
        this.strideW = b.strideW;
        this.padding = b.padding;
        this.dilationH = b.dilationH;
        this.dilationW = b.dilationW;
        this.groups = b.groups;
        this.outputPaddingH = b.outputPaddingH;
        this.outputPaddingW = b.outputPaddingW;
        this.outputH = b.outputH;
        this.outputW = b.outputW;
        atLeast("stride", "height", strideH, 1);
        atLeast("stride", "width", strideW, 1);
        atLeast("dilation", "height", dilationH, 1);
        atLeast("dilation", "width", dilationW, 1);
        if (groups < 1) {
            throw new InvalidConvolutionException("groups must be >= 1, got " + groups);
        }
        atLeast("output_padding", "height", outputPaddingH, 0);
        atLeast("output_padding", "width", outputPaddingW, 0);
        if (outputPaddingH >= Math.max(strideH, dilationH) || outputPaddingW >= Math.max(strideW, dilationW)) {
            throw new InvalidConvolutionException("output_padding (" + outputPaddingH + ", " + outputPaddingW
                    + ") must be smaller than max(stride, dilation) = (" + Math.max(strideH, dilationH) + ", "
                    + Math.max(strideW, dilationW) + ") on each axis");
        }
        if (outputH != 0 || outputW != 0) {
            atLeast("output size", "height", outputH, 1);
            atLeast("output size", "width", outputW, 1);
            if (padding.mode() == Padding.Mode.VALID || (padding.isExplicit() && !padding.equals(Padding.of(0)))) {
                throw new InvalidConvolutionException("an output size (" + outputH + ", " + outputW + ") and padding '" + padding
                        + "' cannot both be given: the padding is derived from the output size (ONNX ConvTranspose output_shape;"
                        + " 'same' or 'same-lower' choose which side gets an odd row)");
            }
        }
    }

    private static void atLeast(String field, String axis, int value, int min) {
        if (value < min) {
            throw new InvalidConvolutionException(field + " must be >= " + min + ", got " + value + " (" + axis + ")");
        }
    }

    /** Stride 1, no padding, dilation 1, one group, no output padding. */
    public static ConvSpec defaults() {
        return DEFAULT;
    }

    public static Builder builder() {
        return new Builder();
    }

    public Builder toBuilder() {
        Builder b = new Builder();
        b.strideH = strideH;
        b.strideW = strideW;
        b.padding = padding;
        b.dilationH = dilationH;
        b.dilationW = dilationW;
        b.groups = groups;
        b.outputPaddingH = outputPaddingH;
        b.outputPaddingW = outputPaddingW;
        b.outputH = outputH;
        b.outputW = outputW;
        return b;
    }

    public int strideH() { return strideH; }
    public int strideW() { return strideW; }
    public Padding padding() { return padding; }
    public int dilationH() { return dilationH; }
    public int dilationW() { return dilationW; }
    public int groups() { return groups; }
    public int outputPaddingH() { return outputPaddingH; }
    public int outputPaddingW() { return outputPaddingW; }

    /** Whether a transposed convolution's output size was requested ({@link Builder#outputSize}). */
    public boolean hasOutputSize() { return outputH != 0; }
    /** The requested output height of a transposed convolution; 0 when none was requested. */
    public int outputH() { return outputH; }
    /** The requested output width of a transposed convolution; 0 when none was requested. */
    public int outputW() { return outputW; }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof ConvSpec)) {
            return false;
        }
        ConvSpec s = (ConvSpec) o;
        return strideH == s.strideH && strideW == s.strideW && padding.equals(s.padding) && dilationH == s.dilationH
                && dilationW == s.dilationW && groups == s.groups && outputPaddingH == s.outputPaddingH
                && outputPaddingW == s.outputPaddingW && outputH == s.outputH && outputW == s.outputW;
    }

    @Override
    public int hashCode() {
        return Objects.hash(strideH, strideW, padding, dilationH, dilationW, groups, outputPaddingH, outputPaddingW, outputH, outputW);
    }

    @Override
    public String toString() {
        return "stride=" + strideH + "," + strideW + " padding=" + padding + " dilation=" + dilationH + "," + dilationW
                + " groups=" + groups
                + (outputPaddingH != 0 || outputPaddingW != 0 ? " output_padding=" + outputPaddingH + "," + outputPaddingW : "")
                + (hasOutputSize() ? " output_size=" + outputH + "," + outputW : "");
    }

    /** Mutable builder; {@link #build()} validates. */
    public static final class Builder {
        private int strideH = 1, strideW = 1;
        private Padding padding = Padding.of(0);
        private int dilationH = 1, dilationW = 1;
        private int groups = 1;
        private int outputPaddingH, outputPaddingW;
        private int outputH, outputW;

        private Builder() {
        }

        public Builder stride(int s) { return stride(s, s); }
        public Builder stride(int h, int w) { strideH = h; strideW = w; return this; }
        public Builder padding(int p) { return padding(Padding.of(p)); }
        public Builder padding(int h, int w) { return padding(Padding.of(h, w)); }
        public Builder padding(Padding p) { padding = Objects.requireNonNull(p, "padding"); return this; }
        public Builder dilation(int d) { return dilation(d, d); }
        public Builder dilation(int h, int w) { dilationH = h; dilationW = w; return this; }
        public Builder groups(int g) { groups = g; return this; }
        public Builder outputPadding(int op) { return outputPadding(op, op); }
        public Builder outputPadding(int h, int w) { outputPaddingH = h; outputPaddingW = w; return this; }

        /**
         * conv_transpose2d only: the output's H x W, from which the padding is derived as ONNX ConvTranspose does
         * with {@code output_shape}: total = full output (with output padding) - requested, split evenly; an odd
         * unit goes at the start, or at the end with {@link Padding#same()}. Not with explicit non-zero padding.
         */
        public Builder outputSize(int h, int w) { outputH = h; outputW = w; return this; }

        public ConvSpec build() {
            return new ConvSpec(this);
        }
    }
}
