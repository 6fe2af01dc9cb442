package io.github.jconv.cpu;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvSpec;
import io.github.jconv.Epilogue;
import io.github.jconv.Padding;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The depthwise kernel with 16 channels in the lanes ({@link VectorDepthwiseChannels}, taken by {@code depthwise} on maps of
 * at most 8 x 8): one and several blocks of 16 channels, batch 2, maps of exactly 16 pixels (one transpose) and of more
 * (the last 16 overlapping), asymmetric padding, no padding, dilation, 1x1, 1x3, 3x3 and 5x5 kernels, bias or none, the
 * epilogue with a residual; against the float64 oracle, the same bits with 1 and 3 threads and through a plan. Its
 * transposes are 16 x 16: it runs only with 512-bit vectors (the 128- and 256-bit runs of {@code scripts/test.sh} skip
 * this test; their layers take {@link VectorDepthwise}).
 */
class VectorDepthwiseChannelsTest {
    @Test
    void everyEdgeAgainstFloat64AndAnyThreadCount() {
        Assumptions.assumeTrue(Sgemm.VECTOR && VectorDepthwiseChannels.V == 16, "needs the Vector API at 512 bits");
        Object[][] layers = {
                // {input N,C,H,W}, {K, C/G, R, S}, spec
                {new int[] {1, 16, 7, 7}, new int[] {16, 1, 3, 3}, ConvSpec.builder().padding(1).groups(16).build()},
                {new int[] {2, 32, 7, 7}, new int[] {32, 1, 3, 3}, ConvSpec.builder().padding(1).groups(32).build()},
                {new int[] {1, 16, 4, 4}, new int[] {16, 1, 3, 3}, ConvSpec.builder().padding(1).groups(16).build()},
                {new int[] {1, 48, 5, 6}, new int[] {48, 1, 3, 3}, ConvSpec.builder().padding(Padding.of(0, 2, 1, 1)).groups(48).build()},
                {new int[] {1, 16, 8, 8}, new int[] {16, 1, 3, 3}, ConvSpec.builder().groups(16).build()},
                {new int[] {1, 16, 8, 8}, new int[] {16, 1, 3, 3}, ConvSpec.builder().dilation(2).padding(2).groups(16).build()},
                {new int[] {1, 32, 6, 6}, new int[] {32, 1, 5, 5}, ConvSpec.builder().padding(2).groups(32).build()},
                {new int[] {1, 16, 7, 7}, new int[] {16, 1, 1, 3}, ConvSpec.builder().padding(Padding.of(0, 0, 1, 1)).groups(16).build()},
                {new int[] {2, 16, 7, 7}, new int[] {16, 1, 1, 1}, ConvSpec.builder().groups(16).build()},
        };
        Epilogue ep = Epilogue.of(Epilogue.Activation.RELU6).withResidual(Epilogue.Residual.AFTER_ACTIVATION);
        int seed = 300;
        for (ConvGeometry g : KernelCheck.geometries(layers)) {
            seed++;
            assertTrue(VectorDepthwiseChannels.applies(g), g.toString());
            KernelCheck.againstFloat64AndThreads(Algorithm.DEPTHWISE, g, seed % 2 == 0 ? ep : Epilogue.none(), seed);
        }
    }

    @Test
    void takesOnlySmallStrideOneMapsOfWholeBlocksOfChannels() {
        Assumptions.assumeTrue(Sgemm.VECTOR && VectorDepthwiseChannels.V == 16, "needs the Vector API at 512 bits");
        ConvSpec.Builder dw16 = ConvSpec.builder().padding(1).groups(16);
        int[] w16 = {16, 1, 3, 3};
        assertTrue(VectorDepthwiseChannels.applies(ConvGeometry.conv2d(new int[] {1, 16, 8, 8}, w16, null, dw16.build())));
        assertFalse(VectorDepthwiseChannels.applies(ConvGeometry.conv2d(new int[] {1, 16, 9, 9}, w16, null, dw16.build())), "a map of 81 pixels");
        assertFalse(VectorDepthwiseChannels.applies(ConvGeometry.conv2d(new int[] {1, 16, 3, 3}, w16, null, dw16.build())), "9 pixels");
        assertFalse(VectorDepthwiseChannels.applies(ConvGeometry.conv2d(new int[] {1, 16, 8, 8}, w16, null,
                ConvSpec.builder().padding(1).stride(2).groups(16).build())), "stride 2");
        assertFalse(VectorDepthwiseChannels.applies(ConvGeometry.conv2d(new int[] {1, 24, 7, 7}, new int[] {24, 1, 3, 3}, null,
                ConvSpec.builder().padding(1).groups(24).build())), "24 channels");
        assertFalse(VectorDepthwiseChannels.applies(ConvGeometry.conv2d(new int[] {1, 16, 7, 7}, new int[] {32, 1, 3, 3}, null,
                dw16.build())), "a multiplier of 2");
        assertFalse(VectorDepthwiseChannels.applies(ConvGeometry.conv2d(new int[] {1, 16, 7, 7}, new int[] {16, 2, 3, 3}, null,
                ConvSpec.builder().padding(1).groups(8).build())), "two channels per group");
    }
}
