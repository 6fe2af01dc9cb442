package io.github.jconv.cpu;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvSpec;
import io.github.jconv.Epilogue;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The 1 x 1 GEMM ({@link Pointwise}) behind {@code direct}: maps that end in a partial tile or in a masked vector, channel
 * counts that leave a partial channel tile, groups, bias or none, the epilogue with a residual; against the float64
 * oracle, and the same bits with 1 and 3 threads and through a plan (packed weights kept).
 */
class PointwiseTest {
    @Test
    void everyTailAgainstFloat64AndAnyThreadCount() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
        int[][] maps = {{1, 1}, {1, 5}, {3, 7}, {4, 12}, {7, 7}, {14, 14}, {5, 13}};
        int[][] channels = {{3, 1, 1}, {16, 9, 1}, {24, 20, 2}, {8, 8, 1}, {40, 13, 1}};
        Epilogue ep = Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION);
        int seed = 0;
        for (int[] hw : maps) {
            for (int[] ckg : channels) {
                ConvGeometry g = ConvGeometry.conv2d(new int[] {2, ckg[0], hw[0], hw[1]}, new int[] {ckg[1] * ckg[2], ckg[0] / ckg[2], 1, 1},
                        seed % 2 == 0 ? new int[] {ckg[1] * ckg[2]} : null, ConvSpec.builder().groups(ckg[2]).build());
                assertTrue(Pointwise.applies(g), g.toString());
                KernelCheck.againstFloat64AndThreads(Algorithm.DIRECT, g, ep, ++seed);
            }
        }
    }
}
