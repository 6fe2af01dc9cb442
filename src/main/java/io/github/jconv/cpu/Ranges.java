package io.github.jconv.cpu;

/**
 * Index ranges along one axis: for output positions o in [0, outSize) the input position is
 * {@code o * stride + offset}; these give the o for which it lies in [0, inSize), so inner loops need
 * no bounds test. Both ends lie in [0, outSize] and {@code first <= end}: a tap that never lands on the
 * input (it lies wholly in the padding) gives an empty range [end, end) or [outSize, outSize).
 */
final class Ranges {
    private Ranges() {
    }

    /** First o (capped at outSize) with o * stride + offset >= 0. */
    static int first(int offset, int stride, int outSize) {
        if (offset >= 0) {
            return 0;
        }
        return (int) Math.min(outSize, (-(long) offset + stride - 1) / stride);
    }

    /** One past the last o (capped at outSize, at least {@link #first}) with o * stride + offset < inSize. */
    static int end(int offset, int stride, int inSize, int outSize) {
        long last = (long) inSize - 1 - offset;
        int end = last < 0 ? 0 : (int) Math.min(outSize, last / stride + 1);
        return Math.max(end, first(offset, stride, outSize));
    }
}
