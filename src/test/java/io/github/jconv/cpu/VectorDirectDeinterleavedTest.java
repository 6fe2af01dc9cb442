package io.github.jconv.cpu;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvSpec;
import io.github.jconv.Epilogue;
import io.github.jconv.Padding;
import io.github.jconv.TestSupport;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The stem kernel ({@link VectorDirectDeinterleaved}) behind {@code direct}: ResNet's 7x7 stride-2 stem at a small size,
 * rows of 7 vectors (tiles within a row and across rows), rows that are one vector, rows whose last vector overlaps the one before it, a partial channel tile, 1 to 4 input
 * channels, odd and even and asymmetric padding (so the even plane starts on an input's odd column, and the other way),
 * a different stride and a dilation along H, bias or none; each with the epilogue fused into the stores (ReLU and a
 * residual), none, and one applied per stored run (GELU); against the float64 oracle, the same bits with 1 and 3 threads
 * and through a plan (packed weights kept), and every output reported finished exactly once.
 */
class VectorDirectDeinterleavedTest {
    @Test
    void everyTailAgainstFloat64AndAnyThreadCount() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
        int v = VectorDirectDeinterleaved.V;
        Object[][] layers = {
                // {input N,C,H,W}, {K, C, R, S}, spec
                {new int[] {1, 3, 40, 2 * v + 5}, new int[] {64, 3, 7, 7}, ConvSpec.builder().stride(2).padding(3).build()}, // stem
                // rows of 7 vectors (ResNet-50's stem): two whole tiles per row, the rows' last vectors three at a time
                {new int[] {1, 3, 12, 14 * v}, new int[] {16, 3, 7, 7}, ConvSpec.builder().stride(2).padding(3).build()},
                {new int[] {2, 3, 9, 2 * v}, new int[] {11, 3, 3, 3}, ConvSpec.builder().stride(2).padding(1).build()}, // one vector a row
                {new int[] {1, 4, 9, 5 * v + 3}, new int[] {16, 4, 2, 5},
                    ConvSpec.builder().stride(1, 2).padding(Padding.of(1, 0, 2, 1)).build()},
                {new int[] {1, 2, 20, 3 * v}, new int[] {9, 2, 3, 4},
                    ConvSpec.builder().stride(3, 2).dilation(2, 1).padding(Padding.of(2, 1, 0, 3)).build()},
                {new int[] {1, 1, 6, 2 * v + 8}, new int[] {8, 1, 1, 1}, ConvSpec.builder().stride(2).padding(1).build()}, // one tap
                {new int[] {2, 3, 10, 7 * v + 1}, new int[] {24, 3, 5, 5}, ConvSpec.builder().stride(2).padding(2).build()},
        };
        Epilogue[] eps = {Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION), Epilogue.none(),
                Epilogue.of(Epilogue.Activation.GELU).withResidual(Epilogue.Residual.AFTER_ACTIVATION)};
        int seed = 0;
        for (ConvGeometry g : KernelCheck.geometries(layers)) {
            assertTrue(DirectConv.onDeinterleavedKernel(g) && !DirectConv.onStridedKernel(g), g.toString());
            for (Epilogue ep : eps) {
                KernelCheck.againstFloat64AndThreads(Algorithm.DIRECT, g, ep, ++seed);
            }
            everyOutputFinishedOnce(g, seed);
        }
    }

    /**
     * The finish contract ({@link CpuConvolution.Finish}): every output in exactly one reported run, though the last
     * vector of a row whose width V does not divide recomputes lanes of the one before it.
     */
    private static void everyOutputFinishedOnce(ConvGeometry g, int seed) {
        float[][] d = TestSupport.data(g, seed);
        int[] reports = new int[Math.toIntExact(io.github.jconv.Tensor.elementCount(g.outputShape()))];
        CpuConvolution.Finish count = (from, to) -> {
            synchronized (reports) {
                for (int i = from; i < to; i++) {
                    reports[i]++;
                }
            }
        };
        new DirectConv().forward(g, d[0], Weights.of(d[1]), d[2], new float[reports.length], count, Parallel.of(3));
        for (int i = 0; i < reports.length; i++) {
            assertEquals(1, reports[i], "output " + i + " reported " + reports[i] + " times: " + g);
        }
    }

    @Test
    void takesStemsOnly() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
        int v = VectorDirectDeinterleaved.V;
        ConvSpec s2 = ConvSpec.builder().stride(2).padding(3).build();
        ConvGeometry stem = ConvGeometry.conv2d(new int[] {1, 3, 224, 224}, new int[] {64, 3, 7, 7}, null, s2);
        assertTrue(DirectConv.onDeinterleavedKernel(stem), "ResNet-50's stem");
        // rows shorter than a vector (V - 1 outputs), more input channels, fewer output channels than a tile, stride 3, dilation along W, groups
        assertFalse(VectorDirectDeinterleaved.applies(ConvGeometry.conv2d(new int[] {1, 3, 30, 2 * v - 3}, new int[] {64, 3, 7, 7}, null, s2)));
        assertFalse(VectorDirectDeinterleaved.applies(ConvGeometry.conv2d(new int[] {1, 5, 224, 224}, new int[] {64, 5, 7, 7}, null, s2)));
        assertFalse(VectorDirectDeinterleaved.applies(ConvGeometry.conv2d(new int[] {1, 3, 224, 224}, new int[] {7, 3, 7, 7}, null, s2)));
        assertFalse(VectorDirectDeinterleaved.applies(ConvGeometry.conv2d(new int[] {1, 3, 224, 224}, new int[] {64, 3, 7, 7}, null,
                ConvSpec.builder().stride(3).padding(3).build())));
        assertFalse(VectorDirectDeinterleaved.applies(ConvGeometry.conv2d(new int[] {1, 3, 224, 224}, new int[] {64, 3, 7, 7}, null,
                ConvSpec.builder().stride(2).dilation(1, 2).padding(3).build())));
        assertFalse(VectorDirectDeinterleaved.applies(ConvGeometry.conv2d(new int[] {1, 4, 224, 224}, new int[] {64, 2, 7, 7}, null,
                ConvSpec.builder().stride(2).padding(3).groups(2).build())));
    }
}
