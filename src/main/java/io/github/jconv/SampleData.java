package io.github.jconv;

import java.util.Random;

/**
 * Finite random operands of a problem's sizes, scaled as in a trained layer: input N(0, 1), weight
 * N(0, 1/fan-in) (fan-in = the GEMM depth), bias N(0, 0.01). What the autotuner times and checks (never the
 * caller's data, which may hold NaN or Inf) and what the CLI's bench and verify run on.
 */
public final class SampleData {
    private SampleData() {
    }

    /** {input, weight, bias} for {@code g} from {@code seed}; the bias is there even when {@code g} has none. */
    public static float[][] of(ConvGeometry g, long seed) {
        Random rnd = new Random(seed);
        float[] x = gaussian(rnd, Tensor.elementCount(g.inputShape()), 1.0);
        float[] w = gaussian(rnd, Tensor.elementCount(g.weightShape()), 1.0 / Math.sqrt((double) Math.max(1, g.gemmK())));
        float[] b = gaussian(rnd, g.biasLength(), 0.1);
        return new float[][] {x, w, b};
    }

    /**
     * {input, weight, bias, dy} for the weight gradient of {@code g}: {@link #of}'s operands and an output gradient of
     * the output's shape, N(0, 1).
     */
    public static float[][] withOutputGradient(ConvGeometry g, long seed) {
        float[][] d = of(g, seed);
        float[] dy = gaussian(new Random(seed + 1), Tensor.elementCount(g.outputShape()), 1.0);
        return new float[][] {d[0], d[1], d[2], dy};
    }

    private static float[] gaussian(Random rnd, long n, double scale) {
        float[] a = new float[Math.toIntExact(n)];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) (rnd.nextGaussian() * scale);
        }
        return a;
    }
}
