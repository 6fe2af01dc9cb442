package io.github.jconv;

/** {@link WeightGradientTest}'s float64 check, for the tests of the cpu package. */
public final class WeightGradientTestAccess {
    private WeightGradientTestAccess() {
    }

    public static void assertMatchesReference(String what, ConvGeometry g, float[] x, float[] dy, float[] dw) {
        WeightGradientTest.assertMatchesReference(what, g, x, dy, dw);
    }
}
