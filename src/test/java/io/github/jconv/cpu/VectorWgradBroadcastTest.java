package io.github.jconv.cpu;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvSpec;
import io.github.jconv.Padding;
import io.github.jconv.Tensor;
import io.github.jconv.TestSupport;
import io.github.jconv.WeightGradientTestAccess;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The weight gradient vectorised over output or input channels ({@link VectorWgradBroadcast}): channel blocks that are not full,
 * tap counts that are not a multiple of the tile's, strides, dilation and asymmetric padding, groups, 1 x 1, a transposed
 * geometry, more pixels than one chunk, several passes over batches of samples; each against float64, the same bits with
 * 1 and 3 threads, and the padding's zeros multiplied like PyTorch's (0 x inf = NaN).
 */
class VectorWgradBroadcastTest {
    private static final List<ConvGeometry> LAYERS = List.of(
            wgrad(new int[] {2, 5, 49, 50}, new int[] {3, 3}, 40, ConvSpec.builder().padding(1).build()), // 2 blocks, 45 taps, 2 chunks
            wgrad(new int[] {3, 6, 15, 14}, new int[] {3, 2}, 34, ConvSpec.builder().stride(2, 1).padding(Padding.of(2, 0, 1, 3)).dilation(2, 1).build()),
            wgrad(new int[] {2, 8, 9, 11}, new int[] {3, 3}, 34, ConvSpec.builder().stride(2).padding(1).groups(2).build()), // 17 per group
            wgrad(new int[] {2, 13, 7, 6}, new int[] {1, 1}, 64, ConvSpec.defaults()),
            wgrad(new int[] {1, 3, 10, 9}, new int[] {5, 3}, 16, ConvSpec.builder().padding(Padding.of(0, 3, 2, 0)).stride(1, 2).build()),
            // vectorised over input channels: an expanding 1 x 1 (the input is the smaller copy), and few output channels
            wgrad(new int[] {2, 20, 7, 6}, new int[] {1, 1}, 64, ConvSpec.defaults()),
            wgrad(new int[] {2, 36, 9, 11}, new int[] {3, 2}, 6, ConvSpec.builder().stride(2).padding(Padding.of(1, 2, 0, 1)).dilation(1, 2).build()),
            wgrad(new int[] {2, 40, 8, 8}, new int[] {3, 3}, 26, ConvSpec.builder().padding(1).groups(2).build()));

    private static ConvGeometry wgrad(int[] x, int[] kernel, int k, ConvSpec spec) {
        int[] y = ConvGeometry.conv2d(x, new int[] {k, x[1] / spec.groups(), kernel[0], kernel[1]}, null, spec).outputShape();
        return ConvGeometry.backwardWeight(ConvGeometry.Op.CONV2D, x, y, kernel, spec);
    }

    private static List<ConvGeometry> layers() {
        ConvSpec ts = ConvSpec.builder().stride(2).padding(1).outputPadding(1, 0).build();
        int[] tx = {2, 20, 5, 6}; // conv_transpose2d 20 -> 4 channels: in forward names, 20 output channels
        ConvGeometry transposed = ConvGeometry.backwardWeight(ConvGeometry.Op.CONV_TRANSPOSE2D, tx,
                ConvGeometry.convTranspose2d(tx, new int[] {20, 4, 3, 3}, null, ts).outputShape(), new int[] {3, 3}, ts);
        return Stream.concat(LAYERS.stream(), Stream.of(transposed)).toList();
    }

    @Test
    void everyPathMatchesFloat64WithTheSameBitsOnAnyThreadCount() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
        long over = LAYERS.stream().filter(VectorWgradBroadcast::overInputs).count();
        if (VectorWgradBroadcast.V == 16) {
            assertEquals(3, over, "at 16 lanes the last three layers are vectorised over input channels");
        } else { // narrower vectors move the line between the two ways; both are still taken
            assertTrue(over > 0 && over < LAYERS.size(), over + " of " + LAYERS.size() + " layers over input channels at " + VectorWgradBroadcast.V + " lanes");
        }
        long saved = VectorWgradBroadcast.batchFloats;
        try {
            for (ConvGeometry g : layers()) {
                assertTrue(VectorWgradBroadcast.applies(g), g.toString());
                assertEquals(Algorithm.DIRECT, WeightGradient.choose(g), g.toString());
                Random rnd = new Random(g.hashCode());
                float[] x = TestSupport.gaussian(rnd, (long) g.n * g.c * g.h * g.w), dy = TestSupport.gaussian(rnd, (long) g.n * g.k * g.p * g.q);
                float[] one = new float[Math.toIntExact(Tensor.elementCount(g.weightShape()))], three = one.clone();
                VectorWgradBroadcast.batchFloats = 1L << 24;
                WeightGradient.run(Algorithm.DIRECT, g, x, dy, one, Parallel.of(1));
                WeightGradientTestAccess.assertMatchesReference("broadcast kernel, one pass", g, x, dy, one);
                WeightGradient.run(Algorithm.DIRECT, g, x, dy, three, Parallel.of(3));
                assertArrayEquals(one, three, 0f, "1 and 3 threads: " + g);
                VectorWgradBroadcast.batchFloats = 1; // one sample per pass
                float[] perSample = new float[one.length];
                WeightGradient.run(Algorithm.DIRECT, g, x, dy, perSample, Parallel.of(2));
                WeightGradientTestAccess.assertMatchesReference("broadcast kernel, a pass per sample", g, x, dy, perSample);
            }
        } finally {
            VectorWgradBroadcast.batchFloats = saved;
        }
    }

    /** An infinity in dy next to the border: the taps that read padding there get NaN (0 x inf), as PyTorch's do. */
    @Test
    void thePaddingsZerosAreMultipliedToo() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
        ConvGeometry g = LAYERS.get(0);
        Random rnd = new Random(7);
        float[] x = TestSupport.gaussian(rnd, (long) g.n * g.c * g.h * g.w), dy = TestSupport.gaussian(rnd, (long) g.n * g.k * g.p * g.q);
        dy[3 * g.p * g.q] = Float.POSITIVE_INFINITY; // channel 3, pixel (0, 0): its top-left taps read padding
        x[g.h * g.w + 5] = Float.NEGATIVE_INFINITY;  // and an infinite input in channel 1
        float[] dw = new float[Math.toIntExact(Tensor.elementCount(g.weightShape()))];
        WeightGradient.run(Algorithm.DIRECT, g, x, dy, dw, Parallel.of(2));
        double[] ref = WeightGradient.reference(g, x, dy, Parallel.of(2));
        int nan = 0;
        for (int i = 0; i < dw.length; i++) {
            assertEquals(Double.isNaN(ref[i]), Float.isNaN(dw[i]), "NaN at " + i);
            assertEquals(Double.isInfinite(ref[i]), Float.isInfinite(dw[i]), "infinity at " + i);
            nan += Float.isNaN(dw[i]) ? 1 : 0;
        }
        assertTrue(nan > 0, "the padding taps of channel 3 must be NaN");
    }
}
