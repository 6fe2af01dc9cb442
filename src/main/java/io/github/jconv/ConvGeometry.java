package io.github.jconv;

import java.util.Arrays;

/**
 * All shape math of jconv, in one place: output sizes, resolved padding, FLOPs and the GEMM mapping.
 * No other class computes an output size.
 *
 * <p>Sizes are named as in a forward convolution (CUTLASS's names): input N x C x H x W, weight
 * K x C/G x R x S, output N x K x P x Q, G groups. A transposed convolution is the adjoint of such a
 * forward convolution and is described by the same geometry read backwards: its input is N x K x P x Q
 * (PyTorch's C_in is K here), its weight K x C/G x R x S (PyTorch's layout C_in x C_out/G x R x S), its
 * output N x C x H x W. So one set of kernels' index arithmetic serves both operations.
 */
public final class ConvGeometry {
    /** The two operations. */
    public enum Op {
        CONV2D("conv2d"), CONV_TRANSPOSE2D("conv_transpose2d");

        private final String label;

        Op(String label) {
            this.label = label;
        }

        public String label() {
            return label;
        }

        @Override
        public String toString() {
            return label;
        }
    }

    /** Largest number of elements in one tensor (a Java array). */
    public static final long MAX_ELEMENTS = Integer.MAX_VALUE - 8;

    public final Op op;
    public final int n, c, h, w;
    public final int k, r, s;
    public final int p, q;
    public final int padTop, padBottom, padLeft, padRight;
    public final int strideH, strideW, dilationH, dilationW;
    public final int groups;
    public final boolean hasBias;

    private ConvGeometry(Op op, int n, int c, int h, int w, int k, int r, int s, int p, int q, int[] pad,
                         ConvSpec spec, boolean hasBias) {
        this.op = op;
        this.n = n;
        this.c = c;
        this.h = h;
        this.w = w;
        this.k = k;
        this.r = r;
        this.s = s;
        this.p = p;
        this.q = q;
        this.padTop = pad[0];
        this.padBottom = pad[1];
        this.padLeft = pad[2];
        this.padRight = pad[3];
        this.strideH = spec.strideH();
        this.strideW = spec.strideW();
        this.dilationH = spec.dilationH();
        this.dilationW = spec.dilationW();
        this.groups = spec.groups();
        this.hasBias = hasBias;
    }

    // ---------------------------------------------------------------- formulas

    /** Extent of a dilated kernel: d * (k - 1) + 1. */
    public static long effectiveKernel(int kernel, int dilation) {
        return (long) dilation * (kernel - 1) + 1;
    }

    /** PyTorch's conv2d output size: floor((in + padSum - d*(k-1) - 1) / stride) + 1; < 1 if it does not fit. */
    public static long convOutputSize(int in, int padSum, int kernel, int stride, int dilation) {
        long span = (long) in + padSum - effectiveKernel(kernel, dilation);
        return span < 0 ? 0 : span / stride + 1;
    }

    /** PyTorch's conv_transpose2d output size: (in - 1) * stride - padSum + d*(k-1) + outputPadding + 1. */
    public static long transposedOutputSize(int in, int padSum, int kernel, int stride, int dilation, int outputPadding) {
        return (long) (in - 1) * stride - padSum + effectiveKernel(kernel, dilation) + outputPadding;
    }

    /**
     * Padding {begin, end} on one axis for ONNX's SAME_UPPER / SAME_LOWER: output = ceil(in / stride), total
     * padding max(0, (out - 1) * stride + effectiveKernel - in), the odd unit at the end (upper) or start (lower).
     */
    public static int[] samePadding(int in, int kernel, int stride, int dilation, boolean upper) {
        long out = (in + (long) stride - 1) / stride;
        long total = Math.max(0, (out - 1) * stride + effectiveKernel(kernel, dilation) - in);
        if (total > Integer.MAX_VALUE) {
            throw new InvalidConvolutionException("padding 'same' would need " + total + " rows/columns");
        }
        int small = (int) (total / 2);
        int large = (int) total - small;
        return upper ? new int[] {small, large} : new int[] {large, small};
    }

    /**
     * Padding {begin, end} on one axis of a conv_transpose2d whose output size is fixed (ONNX ConvTranspose with
     * {@code output_shape}, or {@code auto_pad} SAME_* where the output is in x stride): total = full output
     * (with output padding) - out, split as the ONNX spec says: SAME_UPPER begin = floor(total / 2), the odd unit
     * at the end; otherwise (SAME_LOWER, NOTSET) the odd unit at the start. Either may be negative when the
     * output is larger than the full output.
     */
    public static long[] transposedSizePadding(int in, long out, int kernel, int stride, int dilation, int outputPadding,
                                               boolean upper) {
        long total = transposedOutputSize(in, 0, kernel, stride, dilation, outputPadding) - out;
        long half = Math.floorDiv(total, 2);
        return upper ? new long[] {half, total - half} : new long[] {total - half, half};
    }

    // ---------------------------------------------------------------- factories (all shape checks)

    /**
     * Checks and describes {@code conv2d(x, weight, bias)}: x N x C x H x W, weight K x C/G x R x S,
     * bias (may be null) of K.
     */
    public static ConvGeometry conv2d(int[] xShape, int[] wShape, int[] biasShape, ConvSpec spec) {
        requireNchw("input", xShape, "N, C, H, W", true);
        requireNchw("weight", wShape, "K, C/groups, R, S", false);
        if (spec.hasOutputSize()) {
            throw new InvalidConvolutionException("an output size is a conv_transpose2d request; conv2d's output size follows"
                    + " from the input, kernel, stride, padding and dilation");
        }
        int g = spec.groups();
        int n = xShape[0], c = xShape[1], h = xShape[2], w = xShape[3];
        int k = wShape[0], cg = wShape[1], r = wShape[2], s = wShape[3];
        if (c % g != 0) {
            throw new InvalidConvolutionException("groups=" + g + " must divide the input channels C=" + c);
        }
        if (k % g != 0) {
            throw new InvalidConvolutionException("groups=" + g + " must divide the output channels K=" + k
                    + " (weight.shape[0])");
        }
        if ((long) cg * g != c) {
            throw new InvalidConvolutionException("input has C=" + c + " channels but the weight expects "
                    + ((long) cg * g) + " (weight.shape[1]=" + cg + " x groups=" + g + ")");
        }
        int[] pad = resolvePadding(spec, h, w, r, s);
        int p = outputExtent("height", h, pad[0], pad[1], r, spec.strideH(), spec.dilationH());
        int q = outputExtent("width", w, pad[2], pad[3], s, spec.strideW(), spec.dilationW());
        requireBias(biasShape, k, "K (output channels)");
        ConvGeometry geo = new ConvGeometry(Op.CONV2D, n, c, h, w, k, r, s, p, q, pad, spec, biasShape != null);
        geo.requireArraySizes();
        return geo;
    }

    /**
     * Checks and describes {@code conv_transpose2d(x, weight, bias)}: x N x C_in x H_in x W_in, weight
     * C_in x C_out/G x R x S (PyTorch's layout), bias (may be null) of C_out. Explicit padding crops the output;
     * {@code same}/{@code same-lower} make it H_in x stride (ONNX ConvTranspose's SAME_UPPER / SAME_LOWER), and
     * an output-size request derives the padding from the size ({@link #transposedSizePadding}). Where that leaves
     * a negative padding at the end (the output is larger than the full output), the extra rows are output padding
     * (they get only the bias, as PyTorch's output padding does); a negative padding at the start is refused.
     */
    public static ConvGeometry convTranspose2d(int[] xShape, int[] wShape, int[] biasShape, ConvSpec spec) {
        requireNchw("input", xShape, "N, C_in, H, W", true);
        requireNchw("weight", wShape, "C_in, C_out/groups, R, S", false);
        int g = spec.groups();
        int n = xShape[0], k = xShape[1], p = xShape[2], q = xShape[3];
        int cg = wShape[1], r = wShape[2], s = wShape[3];
        if (k % g != 0) {
            throw new InvalidConvolutionException("groups=" + g + " must divide the input channels C_in=" + k);
        }
        if (wShape[0] != k) {
            throw new InvalidConvolutionException("input has C_in=" + k + " channels but the conv_transpose2d weight has "
                    + wShape[0] + " (weight.shape[0])");
        }
        long c = (long) cg * g;
        if (c > Integer.MAX_VALUE) {
            throw new InvalidConvolutionException("output channels C_out=" + c + " are too many");
        }
        long[] ph = transposedPadding(spec, "height", p, r, spec.strideH(), spec.dilationH(), spec.outputPaddingH(), spec.outputH());
        long[] pw = transposedPadding(spec, "width", q, s, spec.strideW(), spec.dilationW(), spec.outputPaddingW(), spec.outputW());
        long h = transposedOutputSize(p, 0, r, spec.strideH(), spec.dilationH(), spec.outputPaddingH()) - ph[0] - ph[1];
        long w = transposedOutputSize(q, 0, s, spec.strideW(), spec.dilationW(), spec.outputPaddingW()) - pw[0] - pw[1];
        if (h < 1 || w < 1) {
            throw new InvalidConvolutionException("conv_transpose2d output would be " + h + " x " + w
                    + ": padding (" + ph[0] + "+" + ph[1] + ", " + pw[0] + "+" + pw[1] + ") crops more than the "
                    + ((long) (p - 1) * spec.strideH() + effectiveKernel(r, spec.dilationH()) + spec.outputPaddingH()) + " x "
                    + ((long) (q - 1) * spec.strideW() + effectiveKernel(s, spec.dilationW()) + spec.outputPaddingW())
                    + " full output");
        }
        if (h > Integer.MAX_VALUE || w > Integer.MAX_VALUE) {
            throw new InvalidConvolutionException("conv_transpose2d output " + h + " x " + w + " is too large");
        }
        requireBias(biasShape, (int) c, "C_out (output channels)");
        // a negative end padding is extra output rows/columns: output padding, i.e. no padding and a larger H/W
        int[] pad = {(int) ph[0], (int) Math.max(0, ph[1]), (int) pw[0], (int) Math.max(0, pw[1])};
        ConvGeometry geo = new ConvGeometry(Op.CONV_TRANSPOSE2D, n, (int) c, (int) h, (int) w, k, r, s, p, q, pad, spec,
                biasShape != null);
        geo.requireArraySizes();
        return geo;
    }

    /**
     * {begin, end} padding of one axis of a transposed convolution: the explicit amounts, or those ONNX derives for
     * SAME_* (output = in x stride) or for a requested output size. The end may be negative (extra output rows, at
     * most max(stride, dilation) - 1 beyond the full output with its output padding, as output padding may be);
     * the begin may not.
     */
    private static long[] transposedPadding(ConvSpec spec, String axis, int in, int kernel, int stride, int dilation,
                                            int outputPadding, int requested) {
        Padding pd = spec.padding();
        boolean same = pd.mode() == Padding.Mode.SAME_UPPER || pd.mode() == Padding.Mode.SAME_LOWER;
        if (!same && !spec.hasOutputSize()) {
            return pd.mode() == Padding.Mode.VALID ? new long[2]
                    : axis.equals("height") ? new long[] {pd.top(), pd.bottom()} : new long[] {pd.left(), pd.right()};
        }
        long out = spec.hasOutputSize() ? requested : (long) in * stride;
        String rule = spec.hasOutputSize() ? "output size " + out : "padding '" + pd + "' (output = input x stride = " + out + ")";
        long[] pad = transposedSizePadding(in, out, kernel, stride, dilation, outputPadding, pd.mode() == Padding.Mode.SAME_UPPER);
        long full = transposedOutputSize(in, 0, kernel, stride, dilation, outputPadding);
        long most = Math.max(stride, dilation) - 1 - outputPadding; // rows beyond the full output get only the bias
        if (out - full > most) {
            throw new InvalidConvolutionException("conv_transpose2d " + rule + " along the " + axis + " is " + (out - full)
                    + " larger than the full output " + full + "; at most " + most + " more is possible with stride " + stride
                    + ", dilation " + dilation + " and output padding " + outputPadding);
        }
        if (pad[0] < 0) {
            throw new InvalidConvolutionException("conv_transpose2d " + rule + " along the " + axis + " needs padding " + pad[0]
                    + " at the start (ONNX's rule puts " + -pad[0] + " output row(s)/column(s) before any input reaches them;"
                    + " the full output is " + full + "): not supported; use " + (pd.mode() == Padding.Mode.SAME_UPPER
                    ? "same-lower or " : "") + "explicit padding and output padding");
        }
        return pad;
    }

    /** {@link #conv2d} or {@link #convTranspose2d}. */
    public static ConvGeometry of(Op op, int[] xShape, int[] wShape, int[] biasShape, ConvSpec spec) {
        return op == Op.CONV2D ? conv2d(xShape, wShape, biasShape, spec) : convTranspose2d(xShape, wShape, biasShape, spec);
    }

    /**
     * The geometry of a weight gradient: the operation {@code op} whose input is {@code xShape} and whose output gradient
     * is {@code dyShape}, with a kernel of {@code kernelSize} = {R, S}. The weight shape follows from them (conv2d:
     * K = dy's channels x C/G; conv_transpose2d: C_in = x's channels x C_out/G); dy must have the shape the operation
     * gives x, or the error names both.
     */
    public static ConvGeometry backwardWeight(Op op, int[] xShape, int[] dyShape, int[] kernelSize, ConvSpec spec) {
        requireNchw("x", xShape, op == Op.CONV2D ? "N x C x H x W" : "N x C_in x H x W", true);
        requireNchw("dy", dyShape, op == Op.CONV2D ? "N x K x P x Q" : "N x C_out x H_out x W_out", true);
        if (kernelSize == null || kernelSize.length != 2 || kernelSize[0] < 1 || kernelSize[1] < 1) {
            throw new InvalidConvolutionException("kernel size must be two positive integers (R, S), got " + Arrays.toString(kernelSize));
        }
        int groups = spec.groups();
        int weightIn = op == Op.CONV2D ? dyShape[1] : xShape[1], weightOut = op == Op.CONV2D ? xShape[1] : dyShape[1];
        for (int[] ch : new int[][] {{xShape[1], 0}, {dyShape[1], 1}}) {
            if (ch[0] % groups != 0) {
                throw new InvalidConvolutionException((ch[1] == 0 ? "x" : "dy") + " has " + ch[0] + " channels, not a multiple of groups "
                        + groups + ": shapes x " + Arrays.toString(xShape) + ", dy " + Arrays.toString(dyShape));
            }
        }
        ConvGeometry g = of(op, xShape, new int[] {weightIn, weightOut / groups, kernelSize[0], kernelSize[1]}, null, spec);
        if (!Arrays.equals(g.outputShape(), dyShape)) {
            throw new InvalidConvolutionException("dy has shape " + Arrays.toString(dyShape) + ", but " + op.label() + " of x "
                    + Arrays.toString(xShape) + " with a " + kernelSize[0] + "x" + kernelSize[1] + " kernel and this spec gives "
                    + Arrays.toString(g.outputShape()) + ": x and dy cannot belong to one convolution");
        }
        return g;
    }

    /** Four dimensions, each at least 1; the batch (first) may be 0 where {@code batch} (an empty result, as PyTorch). */
    private static void requireNchw(String what, int[] shape, String dims, boolean batch) {
        if (shape == null || shape.length != 4) {
            throw new InvalidConvolutionException(what + " must have 4 dimensions (" + dims + "), got shape "
                    + Arrays.toString(shape));
        }
        for (int i = 0; i < 4; i++) {
            if (shape[i] < 0) {
                throw new InvalidConvolutionException(what + " has a negative dimension: shape " + Arrays.toString(shape));
            }
            if (shape[i] == 0 && !(batch && i == 0)) {
                throw new InvalidConvolutionException(what + " has an empty dimension: shape " + Arrays.toString(shape)
                        + (batch ? " (only the batch N may be 0)" : ""));
            }
        }
    }

    private static void requireBias(int[] biasShape, int channels, String name) {
        if (biasShape != null && (biasShape.length != 1 || biasShape[0] != channels)) {
            throw new InvalidConvolutionException("bias must have shape [" + channels + "] (" + name + "), got "
                    + Arrays.toString(biasShape));
        }
    }

    private static int[] resolvePadding(ConvSpec spec, int h, int w, int r, int s) {
        Padding pd = spec.padding();
        switch (pd.mode()) {
            case VALID:
                return new int[4];
            case SAME_UPPER:
            case SAME_LOWER: {
                boolean upper = pd.mode() == Padding.Mode.SAME_UPPER;
                int[] ph = samePadding(h, r, spec.strideH(), spec.dilationH(), upper);
                int[] pw = samePadding(w, s, spec.strideW(), spec.dilationW(), upper);
                return new int[] {ph[0], ph[1], pw[0], pw[1]};
            }
            default:
                return new int[] {pd.top(), pd.bottom(), pd.left(), pd.right()};
        }
    }

    private static int outputExtent(String axis, int in, int padBegin, int padEnd, int kernel, int stride, int dilation) {
        long eff = effectiveKernel(kernel, dilation);
        long padded = (long) in + padBegin + padEnd;
        if (eff > padded) {
            throw new InvalidConvolutionException("kernel " + axis + " " + eff + " (dilation " + dilation + " x (" + kernel
                    + " - 1) + 1) is larger than the padded input " + axis + " " + padded + " (" + in + " + padding "
                    + padBegin + " + " + padEnd + ")");
        }
        long out = convOutputSize(in, padBegin + padEnd, kernel, stride, dilation);
        if (padded > Integer.MAX_VALUE) {
            throw new InvalidConvolutionException("padded input " + axis + " " + padded + " is too large");
        }
        return (int) out;
    }

    private void requireArraySizes() {
        check("input", inputShape());
        check("weight", weightShape());
        check("output", outputShape());
    }

    private static void check(String what, int[] shape) {
        long e = Tensor.elementCount(shape);
        if (e > MAX_ELEMENTS) {
            throw new InvalidConvolutionException(what + " of shape " + Arrays.toString(shape) + " has " + e
                    + " elements, more than a Java array holds (" + MAX_ELEMENTS + ")");
        }
    }

    // ---------------------------------------------------------------- derived sizes

    /**
     * The spec that describes exactly this geometry with explicit amounts: the resolved padding, and for a transposed
     * convolution the output padding that gives its H x W (a same / output-size request resolved).
     */
    public ConvSpec explicitSpec() {
        ConvSpec.Builder b = ConvSpec.builder().stride(strideH, strideW).dilation(dilationH, dilationW).groups(groups)
                .padding(Padding.of(padTop, padBottom, padLeft, padRight));
        if (transposed()) {
            b.outputPadding(h - (int) transposedOutputSize(p, padTop + padBottom, r, strideH, dilationH, 0),
                    w - (int) transposedOutputSize(q, padLeft + padRight, s, strideW, dilationW, 0));
        }
        return b.build();
    }

    /** True when the batch is empty (N = 0): the output has no elements and nothing is computed, as in PyTorch. */
    public boolean isEmpty() {
        return n == 0;
    }

    public boolean transposed() {
        return op == Op.CONV_TRANSPOSE2D;
    }

    /** C / G: input channels per group (forward terms). */
    public int cPerGroup() {
        return c / groups;
    }

    /** K / G: output channels per group (forward terms). */
    public int kPerGroup() {
        return k / groups;
    }

    /** H + padTop + padBottom: the padded input's height (forward terms; checked to fit an int when built). */
    public int paddedH() {
        return h + padTop + padBottom;
    }

    /** W + padLeft + padRight: the padded input's width (forward terms; checked to fit an int when built). */
    public int paddedW() {
        return w + padLeft + padRight;
    }

    public int effectiveR() {
        return (int) effectiveKernel(r, dilationH);
    }

    public int effectiveS() {
        return (int) effectiveKernel(s, dilationW);
    }

    /** True when the operation is depthwise: one input channel per group (C == G), any channel multiplier. */
    public boolean isDepthwise() {
        return cPerGroup() == 1 && groups == c;
    }

    /**
     * True for a 1x1, stride-1, unpadded kernel whose input and output planes are the same size (a transposed
     * 1x1 convolution with output padding is not): the convolution is a plain GEMM on the input.
     */
    public boolean isPointwise() {
        return r == 1 && s == 1 && strideH == 1 && strideW == 1 && padTop == 0 && padBottom == 0 && padLeft == 0
                && padRight == 0 && h == p && w == q;
    }

    /**
     * True for a forward 1x1 convolution without padding, at any stride (ResNet's projections): every output reads one
     * input pixel per channel. At stride 1 it is {@link #isPointwise}'s plain GEMM.
     */
    public boolean isUnpadded1x1() {
        return !transposed() && r == 1 && s == 1 && padTop == 0 && padBottom == 0 && padLeft == 0 && padRight == 0;
    }

    /** Shape of the operation's input tensor (forward: N,C,H,W; transposed: N,K,P,Q). */
    public int[] inputShape() {
        return transposed() ? new int[] {n, k, p, q} : new int[] {n, c, h, w};
    }

    /** Shape of the operation's output tensor (forward: N,K,P,Q; transposed: N,C,H,W). */
    public int[] outputShape() {
        return transposed() ? new int[] {n, c, h, w} : new int[] {n, k, p, q};
    }

    /** PyTorch's weight shape: K x C/G x R x S (for conv_transpose2d that is C_in x C_out/G x R x S). */
    public int[] weightShape() {
        return new int[] {k, cPerGroup(), r, s};
    }

    /** Number of bias elements the operation takes: its output channels. */
    public int biasLength() {
        return transposed() ? c : k;
    }

    /** Multiply-adds counted as 2 FLOPs, bias not counted: 2 * N * K * P * Q * (C/G) * R * S (both ops). */
    public long flops() {
        return 2L * n * k * p * q * cPerGroup() * r * s;
    }

    /** Per-group implicit GEMM rows: forward N*P*Q output pixels; transposed N*H*W. */
    public long gemmM() {
        return transposed() ? (long) n * h * w : (long) n * p * q;
    }

    /** Per-group implicit GEMM columns: forward K/G; transposed C/G. */
    public long gemmN() {
        return transposed() ? cPerGroup() : kPerGroup();
    }

    /** Per-group implicit GEMM depth: forward C/G*R*S; transposed K/G*R*S. */
    public long gemmK() {
        return transposed() ? (long) kPerGroup() * r * s : (long) cPerGroup() * r * s;
    }

    @Override
    public String toString() {
        return op + " in=" + Arrays.toString(inputShape()) + " weight=" + Arrays.toString(weightShape()) + " out="
                + Arrays.toString(outputShape()) + " stride=" + strideH + "," + strideW + " pad=" + padTop + ","
                + padBottom + "," + padLeft + "," + padRight + " dilation=" + dilationH + "," + dilationW + " groups="
                + groups + (hasBias ? " bias" : "");
    }
}
