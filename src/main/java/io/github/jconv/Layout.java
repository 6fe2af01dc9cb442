package io.github.jconv;

import io.github.jconv.cpu.Transpose;

import java.util.Arrays;
import java.util.Locale;

/**
 * How a 4-D activation tensor's elements lie in memory. The shape is always the logical N x C x H x W, as in PyTorch,
 * whose {@code x.to(memory_format=torch.channels_last)} keeps {@code x.shape} and changes the strides:
 * <ul>
 *   <li>{@link #NCHW} (the default): C order of the shape, element (n, c, h, w) at ((n*C + c)*H + h)*W + w;</li>
 *   <li>{@link #NHWC} ("channels last", PyTorch's {@code channels_last}, the layout of TensorFlow and of tensor-core
 *       kernels): the channels of a pixel side by side, element (n, c, h, w) at ((n*H + h)*W + w)*C + c, i.e. the C order
 *       of an N x H x W x C array.</li>
 * </ul>
 * Weights keep PyTorch's K x C/G x R x S in C order whatever the activations' layout. Every algorithm reads NCHW for now:
 * a plan built for NHWC ({@link ConvPlan.Builder#layout}) converts its operands on the way in and out, on the CPU with
 * {@link #convert}, on a GPU with cuda-kernels/layout.cu on the device; the stateless calls ({@link Jconv}) convert on
 * the host.
 */
public enum Layout {
    NCHW, NHWC;

    /** {@code nchw} or {@code nhwc}, as the CLI spells it. */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** How descriptions name a tensor's layout after its shape: nothing for the default NCHW, " nhwc" otherwise. */
    String suffix() {
        return this == NCHW ? "" : " " + label();
    }

    /** {@code nchw} or {@code nhwc} (also {@code channels_last} / {@code channels-last}), any case; anything else fails naming the choices. */
    public static Layout parse(String s) {
        String t = s.trim().toLowerCase(Locale.ROOT);
        if (t.equals("channels_last") || t.equals("channels-last")) {
            return NHWC;
        }
        for (Layout l : values()) {
            if (l.label().equals(t)) {
                return l;
            }
        }
        throw new InvalidConvolutionException("unknown layout '" + s + "' (nchw, nhwc)");
    }

    /**
     * The C-order shape of the memory: the shape itself for NCHW (a tensor of any rank is C order), N x H x W x C for NHWC
     * (of a logical N x C x H x W shape).
     */
    public int[] memoryShape(int[] shape) {
        requireValidFor(shape);
        return this == NCHW ? shape.clone() : new int[] {shape[0], shape[2], shape[3], shape[1]};
    }

    /** The logical shape of memory laid out as {@link #memoryShape} says (its inverse): N x H x W x C -> N x C x H x W for NHWC. */
    public int[] logicalShape(int[] memoryShape) {
        requireValidFor(memoryShape);
        return this == NCHW ? memoryShape.clone() : new int[] {memoryShape[0], memoryShape[3], memoryShape[1], memoryShape[2]};
    }

    /** NHWC is a layout of 4-D tensors only. */
    void requireValidFor(int[] shape) {
        if (this == NHWC && shape.length != 4) {
            throw new InvalidConvolutionException("layout nhwc needs a 4-D tensor (N x C x H x W), got shape " + Arrays.toString(shape));
        }
    }

    /**
     * Copies {@code src}, laid out as {@code from}, into {@code dst} laid out as {@code to} (logical shape N x C x H x W);
     * a plain copy when the layouts agree. Each sample is a C x HW <-> HW x C transpose ({@link Transpose#planes}) spread
     * over {@code threads} (0: all cores).
     */
    static void convert(float[] src, Layout from, float[] dst, Layout to, int[] shape, int threads) {
        int n = shape[0], c = shape[1], hw = shape[2] * shape[3];
        long size = (long) n * c * hw;
        if (src.length < size || dst.length < size) {
            throw new IllegalArgumentException("layout conversion of " + Arrays.toString(shape) + ": arrays of " + src.length + " and " + dst.length);
        }
        if (from == to) {
            System.arraycopy(src, 0, dst, 0, (int) size);
            return;
        }
        // NCHW -> NHWC: each sample's C x HW matrix transposed; NHWC -> NCHW: its HW x C one
        Transpose.planes(src, dst, n, from == NCHW ? c : hw, from == NCHW ? hw : c, threads);
    }
}
