package io.github.jconv.cpu;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvSpec;
import io.github.jconv.Padding;
import io.github.jconv.Tensor;
import io.github.jconv.TestSupport;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The Vector API weight gradient's own paths: several passes over batches of samples, runs of the flat index longer than
 * one pass, edge tiles (depthwise, a few channels or taps), shared row and sample padding with asymmetric padding and
 * dilation, transposed stride-1 geometries; each against float64 and the same bits whatever the batch per pass.
 */
class VectorWeightGradientTest {
    private static final List<ConvGeometry> LAYERS = List.of(
            wgrad(new int[] {5, 8, 30, 31}, new int[] {3, 3}, 9, ConvSpec.builder().padding(1).build()),
            wgrad(new int[] {2, 6, 11, 13}, new int[] {3, 2}, 6, ConvSpec.builder().padding(Padding.of(2, 0, 1, 3)).dilation(2, 1).groups(3).build()),
            wgrad(new int[] {4, 5, 9, 9}, new int[] {3, 3}, 5, ConvSpec.builder().padding(1).groups(5).build()),
            wgrad(new int[] {2, 7, 12, 10}, new int[] {1, 1}, 13, ConvSpec.defaults()),
            wgrad(new int[] {2, 3, 6, 7}, new int[] {5, 3}, 11, ConvSpec.builder().padding(Padding.of(0, 3, 2, 0)).build()));

    private static ConvGeometry wgrad(int[] x, int[] kernel, int k, ConvSpec spec) {
        int[] y = ConvGeometry.conv2d(x, new int[] {k, x[1] / spec.groups(), kernel[0], kernel[1]}, null, spec).outputShape();
        return ConvGeometry.backwardWeight(ConvGeometry.Op.CONV2D, x, y, kernel, spec);
    }

    @Test
    void everyPathMatchesFloat64AndTheBatchPerPassChangesNoBit() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
        ConvSpec ts = ConvSpec.builder().padding(1).dilation(2, 1).outputPadding(1, 0).build();
        int[] tx = {2, 6, 7, 8};
        ConvGeometry transposed = ConvGeometry.backwardWeight(ConvGeometry.Op.CONV_TRANSPOSE2D, tx,
                ConvGeometry.convTranspose2d(tx, new int[] {6, 4, 3, 3}, null, ts).outputShape(), new int[] {3, 3}, ts);
        long saved = VectorWeightGradient.batchFloats;
        try {
            for (ConvGeometry g : java.util.stream.Stream.concat(LAYERS.stream(), java.util.stream.Stream.of(transposed)).toList()) {
                assertTrue(VectorWeightGradient.applies(g), g.toString());
                Random rnd = new Random(g.hashCode());
                float[] x = TestSupport.gaussian(rnd, (long) g.n * g.c * g.h * g.w), dy = TestSupport.gaussian(rnd, (long) g.n * g.k * g.p * g.q);
                float[] whole = new float[Math.toIntExact(Tensor.elementCount(g.weightShape()))];
                VectorWeightGradient.batchFloats = 1L << 24;
                WeightGradient.run(Algorithm.DIRECT, g, x, dy, whole, Parallel.of(3));
                io.github.jconv.WeightGradientTestAccess.assertMatchesReference("direct, one pass", g, x, dy, whole);
                VectorWeightGradient.batchFloats = 1; // one sample per pass
                float[] perSample = new float[whole.length];
                WeightGradient.run(Algorithm.DIRECT, g, x, dy, perSample, Parallel.of(2));
                io.github.jconv.WeightGradientTestAccess.assertMatchesReference("direct, a pass per sample", g, x, dy, perSample);
            }
        } finally {
            VectorWeightGradient.batchFloats = saved;
        }
    }

    @Test
    void theDefaultBatchIsOnePassAndRunsLongerThanAPassAreSplit() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
        ConvGeometry g = LAYERS.get(0); // 5 samples of 31 rows x 32 columns per channel: more than one run of RUN floats
        assertTrue((long) g.n * 31 * 32 > VectorWeightGradient.RUN, "the first layer must span several runs");
        Random rnd = new Random(3);
        float[] x = TestSupport.gaussian(rnd, (long) g.n * g.c * g.h * g.w), dy = TestSupport.gaussian(rnd, (long) g.n * g.k * g.p * g.q);
        float[] a = new float[Math.toIntExact(Tensor.elementCount(g.weightShape()))], b = a.clone();
        WeightGradient.run(Algorithm.DIRECT, g, x, dy, a, Parallel.of(1));
        WeightGradient.run(Algorithm.DIRECT, g, x, dy, b, Parallel.of(4));
        assertArrayEquals(a, b, 0f);
        if (!(a[0] != 0)) {
            fail("no result");
        }
    }
}
