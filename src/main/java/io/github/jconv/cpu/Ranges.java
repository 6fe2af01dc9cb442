package io.github.jconv.cpu;

/**
 * Index ranges along one axis: for output positions o in [0, outSize) the input position is
 * {@code o * stride + offset}; these give the o for which it lies in [0, inSize), so inner loops need
 * no bounds test.
 */
final class Ranges {
    private Ranges() {
    }

    /** First o with o * stride + offset >= 0. */
    static int first(int offset, int stride) {
        return offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    }

    /** One past the last o (capped at outSize) with o * stride + offset < inSize; may be <= first. */
    static int end(int offset, int stride, int inSize, int outSize) {
        int last = inSize - 1 - offset;
        if (last < 0) {
            return 0;
        }
        return Math.min(outSize, last / stride + 1);
    }
}
