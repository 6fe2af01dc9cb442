package io.github.jconv;

import java.util.Arrays;
import java.util.Objects;

/**
 * A dense float32 host tensor in C order (for convolutions: NCHW). The shape is fixed; the data array
 * is the caller's and is not copied, so large tensors cost no extra memory.
 */
public final class Tensor {
    private final float[] data;
    private final int[] shape;

    private Tensor(float[] data, int[] shape) {
        this.data = data;
        this.shape = shape;
    }

    /** Wraps {@code data} (not copied) with the given shape; the lengths must agree. */
    public static Tensor of(float[] data, int... shape) {
        Objects.requireNonNull(data, "data");
        int[] s = shape.clone();
        long n = elementCount(s);
        if (n != data.length) {
            throw new InvalidConvolutionException("tensor of shape " + Arrays.toString(s) + " needs " + n
                    + " elements, got an array of " + data.length);
        }
        return new Tensor(data, s);
    }

    /** A new zero-filled tensor. */
    public static Tensor zeros(int... shape) {
        long n = elementCount(shape);
        if (n > Integer.MAX_VALUE - 8) {
            throw new InvalidConvolutionException("tensor of shape " + Arrays.toString(shape) + " has " + n
                    + " elements, more than a Java array holds (" + (Integer.MAX_VALUE - 8) + ")");
        }
        return new Tensor(new float[(int) n], shape.clone());
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
        return "Tensor" + Arrays.toString(shape);
    }
}
