package io.github.jconv.cpu;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvSpec;
import io.github.jconv.Epilogue;
import io.github.jconv.Padding;
import io.github.jconv.Tensor;
import io.github.jconv.TestSupport;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A 1 x 1 expansion and the depthwise layer after it in one pass ({@link ExpandDepthwise}): the same bits as the two layers
 * run one after the other (direct, then depthwise), with 1 and 3 threads, every output written and no stale scratch read;
 * the pass's result against the float64 oracle of the depthwise layer on the expansion's output, which is itself checked
 * against its oracle. Stride 1 and 2, a last channel tile of fewer than 8 channels, maps whose pixels end in a partial
 * register tile (not a multiple of 48), in whole ones and in pixels short of a vector (runs of four channel tiles, the
 * last one shorter), an odd input channel count, batch 2, ReLU6 / ReLU / no activation on either layer, bias or none. And
 * the pairs it refuses, with the reason.
 */
class ExpandDepthwiseTest {
    private static final Epilogue RELU6 = Epilogue.of(Epilogue.Activation.RELU6), RELU = Epilogue.of(Epilogue.Activation.RELU),
            NONE = Epilogue.none();

    @Test
    void onePassGivesTheTwoLayersBitsAndMeetsTheOracle() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
        Object[][] cases = {
                // {N, C, H, W, K, stride, first epilogue, second epilogue, biases}
                {2, 16, 16, 16, 36, 1, RELU6, RELU6, true},  // 256 pixels: 5 tiles and a vector; 36 = 4.5 channel tiles
                {1, 8, 20, 12, 20, 2, RELU6, RELU6, false},  // 240 pixels: 5 whole tiles; stride 2
                {1, 24, 32, 32, 48, 2, RELU, NONE, true},    // the 112 x 112 layer's form, smaller
                {2, 3, 28, 28, 17, 1, NONE, RELU6, true},    // 784 pixels, 3 input channels, a last tile of one channel
                {1, 32, 24, 40, 64, 1, RELU6, RELU, false},  // rows of 40 (not a vector multiple), 960 pixels
                {1, 16, 56, 56, 24, 2, RELU6, RELU6, true},  // MobileNetV2's 56 x 56 stride-2 pair's map
                // maps ending in pixels short of a vector (four channel tiles per task): 196 pixels (MobileNetV2's 14 x 14
                // pairs) with 5 tiles (a run of one), 225 and 49 pixels with 9 and 3 tiles, batch 2, stride 1 and 2
                {1, 16, 14, 14, 40, 1, RELU6, RELU6, true},
                {2, 24, 14, 14, 72, 2, RELU6, NONE, false},
                {2, 5, 15, 15, 20, 2, RELU, RELU6, true},
                {1, 9, 7, 7, 24, 2, NONE, RELU, true},
        };
        int fused = 0;
        for (Object[] t : cases) {
            int n = (int) t[0], c = (int) t[1], h = (int) t[2], w = (int) t[3], k = (int) t[4], stride = (int) t[5];
            Epilogue e1 = (Epilogue) t[6], e2 = (Epilogue) t[7];
            boolean biases = (boolean) t[8];
            ConvGeometry g1 = ConvGeometry.conv2d(new int[] {n, c, h, w}, new int[] {k, c, 1, 1}, biases ? new int[] {k} : null,
                    ConvSpec.builder().build());
            ConvGeometry g2 = ConvGeometry.conv2d(g1.outputShape(), new int[] {k, 1, 3, 3}, biases ? new int[] {k} : null,
                    ConvSpec.builder().stride(stride).padding(1).groups(k).build());
            String why = ExpandDepthwise.cannotFuse(g1, e1, g2, e2);
            if (VectorDepthwiseChannels.applies(g2) || !VectorDepthwise.planeApplies(g2)) {
                assertNotNull(why, "refused at " + Pointwise.V + " lanes: " + g2);
                continue;
            }
            assertNull(why, g1 + " then " + g2);
            fused++;
            check(g1, e1, g2, e2, n * 1000 + c * 10 + k);
        }
        assertTrue(fused >= 9, "most cases run as one pass at " + Pointwise.V + " lanes: " + fused);
    }

    private static void check(ConvGeometry g1, Epilogue e1, ConvGeometry g2, Epilogue e2, int seed) {
        float[][] d1 = TestSupport.data(g1, seed), d2 = TestSupport.data(g2, seed + 1);
        int mid = Math.toIntExact(Tensor.elementCount(g1.outputShape())), size = Math.toIntExact(Tensor.elementCount(g2.outputShape()));
        float[] t = new float[mid], apart = new float[size];
        CpuBackend.INSTANCE.run(Algorithm.DIRECT, g1, d1[0], d1[1], d1[2], e1, null, t, 2);
        CpuBackend.INSTANCE.run(Algorithm.DEPTHWISE, g2, t, d2[1], d2[2], e2, null, apart, 2);
        String problem = TestSupport.oracle(CpuBackend.INSTANCE, Algorithm.DIRECT, g1, d1[0], d1[1], d1[2], e1, null).check(t);
        assertNull(problem, "the expansion alone: " + g1 + ": " + problem);
        for (int threads : new int[] {1, 3}) {
            float[] one = new float[size];
            Arrays.fill(one, Float.NaN); // every output written
            KernelCheck.poisonWorkspace(); // and no scratch value read that the pass did not write
            CpuBackend.INSTANCE.runExpandDepthwise(g1, d1[0], Weights.kept(d1[1].clone()), d1[2], e1, g2, Weights.kept(d2[1].clone()),
                    d2[2], e2, one, threads);
            assertArrayEquals(apart, one, 0f, threads + " thread(s): the two layers' bits: " + g1 + " then " + g2);
            problem = TestSupport.oracle(CpuBackend.INSTANCE, Algorithm.DEPTHWISE, g2, t, d2[1], d2[2], e2, null).check(one);
            assertNull(problem, "the depthwise layer on the expansion's output: " + g2 + ": " + problem);
        }
    }

    @Test
    void refusesWhatItDoesNotRunAndSaysWhy() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
        ConvGeometry g1 = ConvGeometry.conv2d(new int[] {1, 16, 16, 16}, new int[] {32, 16, 1, 1}, null, ConvSpec.builder().build());
        ConvGeometry g2 = ConvGeometry.conv2d(g1.outputShape(), new int[] {32, 1, 3, 3}, null,
                ConvSpec.builder().stride(2).padding(1).groups(32).build());
        assertNull(ExpandDepthwise.cannotFuse(g1, RELU6, g2, RELU6));
        assertNull(CpuBackend.cannotFuseExpandDepthwise(Algorithm.DIRECT, g1, RELU6, Algorithm.DEPTHWISE, g2, RELU6));
        assertTrue(CpuBackend.cannotFuseExpandDepthwise(Algorithm.IM2COL, g1, RELU6, Algorithm.DEPTHWISE, g2, RELU6)
                .contains("direct and depthwise algorithms"));
        Epilogue residual = RELU6.withResidual(Epilogue.Residual.BEFORE_ACTIVATION);
        assertTrue(ExpandDepthwise.cannotFuse(g1, residual, g2, RELU6).contains("first layer's epilogue"));
        assertTrue(ExpandDepthwise.cannotFuse(g1, RELU6, g2, residual).contains("adds a residual"));
        assertTrue(ExpandDepthwise.cannotFuse(g1, Epilogue.of(Epilogue.Activation.SILU), g2, RELU6).contains("first layer's epilogue"));
        ConvGeometry grouped = ConvGeometry.conv2d(new int[] {1, 16, 16, 16}, new int[] {32, 8, 1, 1}, null,
                ConvSpec.builder().groups(2).build());
        assertTrue(ExpandDepthwise.cannotFuse(grouped, RELU6, g2, RELU6).contains("one group"));
        ConvGeometry unpadded = ConvGeometry.conv2d(g1.outputShape(), new int[] {32, 1, 3, 3}, null,
                ConvSpec.builder().stride(2).padding(Padding.of(0, 1, 0, 1)).groups(32).build());
        assertTrue(ExpandDepthwise.cannotFuse(g1, RELU6, unpadded, RELU6).contains("3x3 depthwise"));
        ConvGeometry other = ConvGeometry.conv2d(new int[] {1, 32, 16, 20}, new int[] {32, 1, 3, 3}, null,
                ConvSpec.builder().stride(2).padding(1).groups(32).build());
        assertTrue(ExpandDepthwise.cannotFuse(g1, RELU6, other, RELU6).contains("does not read"));
        ConvGeometry small = ConvGeometry.conv2d(new int[] {1, 16, 8, 8}, new int[] {32, 16, 1, 1}, null, ConvSpec.builder().build());
        ConvGeometry smallDw = ConvGeometry.conv2d(small.outputShape(), new int[] {32, 1, 3, 3}, null,
                ConvSpec.builder().padding(1).groups(32).build());
        if (VectorDepthwiseChannels.applies(smallDw)) {
            assertTrue(ExpandDepthwise.cannotFuse(small, RELU6, smallDw, RELU6).contains("3x3 depthwise"), "8 x 8: channels in the lanes");
        }
    }
}
