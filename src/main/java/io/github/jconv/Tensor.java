package io.github.jconv;

import java.util.Arrays;
import java.util.Objects;

/**
 * A dense float32 host tensor: C order (for convolutions NCHW), or for a 4-D activation channels last ({@link
 * Layout#NHWC}: the shape stays the logical N x C x H x W, as in PyTorch). The shape is fixed; the data array is the
 * caller's and is not copied, so large tensors cost no extra memory.
 */
public final class Tensor {
    private final float[] data;
    private final int[] shape;
    private final Layout layout;

    private Tensor(float[] data, int[] shape, Layout layout) {
        this.data = data;
        this.shape = shape;
        this.layout = layout;
    }

    /** Wraps {@code data} (not copied) with the given shape, in C order (NCHW); the lengths must agree. */
    public static Tensor of(float[] data, int... shape) {
        return of(Layout.NCHW, data, shape);
    }

    /**
     * Wraps {@code data} (not copied) laid out as {@code layout}; {@code shape} is the logical one (N x C x H x W for a
     * convolution's input or output, whatever the layout). NHWC needs 4 dimensions.
     */
    public static Tensor of(Layout layout, float[] data, int... shape) {
        Objects.requireNonNull(layout, "layout");
        Objects.requireNonNull(data, "data");
        int[] s = shape.clone();
        layout.requireValidFor(s);
        long n = elementCount(s);
        if (n != data.length) {
            throw new InvalidConvolutionException("tensor of shape " + Arrays.toString(s) + " needs " + n
                    + " elements, got an array of " + data.length);
        }
        return new Tensor(data, s, layout);
    }

    /** A new zero-filled tensor. */
    public static Tensor zeros(int... shape) {
        long n = elementCount(shape);
        if (n > Integer.MAX_VALUE - 8) {
            throw new InvalidConvolutionException("tensor of shape " + Arrays.toString(shape) + " has " + n
                    + " elements, more than a Java array holds (" + (Integer.MAX_VALUE - 8) + ")");
        }
        return new Tensor(new float[(int) n], shape.clone(), Layout.NCHW);
    }

    /** A new zero-filled tensor of the logical {@code shape} laid out as {@code layout}. */
    public static Tensor zeros(Layout layout, int... shape) {
        Objects.requireNonNull(layout, "layout");
        layout.requireValidFor(shape);
        return of(layout, zeros(shape).data, shape);
    }

    /** Product of the dimensions; fails on a negative dimension. */
    public static long elementCount(int[] shape) {
        long n = 1;
        for (int d : shape) {
            if (d < 0) {
                throw new InvalidConvolutionException("negative dimension in shape " + Arrays.toString(shape));
            }
            n *= d;
            if (n > Long.MAX_VALUE / Integer.MAX_VALUE) {
                throw new InvalidConvolutionException("shape " + Arrays.toString(shape) + " is too large");
            }
        }
        return n;
    }

    /** How the data lies in memory ({@link Layout#NCHW}: C order of {@link #shape()}). */
    public Layout layout() {
        return layout;
    }

    /**
     * This tensor laid out as {@code target}: itself if it already is, else a converted copy (the same logical shape and
     * values). Uses all cores for large tensors.
     */
    public Tensor to(Layout target) {
        Objects.requireNonNull(target, "layout");
        if (target == layout) {
            return this;
        }
        target.requireValidFor(shape);
        float[] out = new float[data.length];
        Layout.convert(data, layout, out, target, shape, 0);
        return new Tensor(out, shape.clone(), target);
    }

    /** The backing array (not a copy). */
    public float[] data() {
        return data;
    }

    /** A copy of the shape. */
    public int[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public int dim(int i) {
        return shape[i];
    }

    public int size() {
        return data.length;
    }

    @Override
    public String toString() {
        return "Tensor" + Arrays.toString(shape) + layout.suffix();
    }
}
