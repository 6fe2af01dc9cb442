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
 * The depthwise kernel ({@link VectorDepthwise}) behind {@code depthwise}: MobileNet's 3x3 layers at stride 1 and 2 at
 * small sizes, maps narrower than a vector and wider than a loop step, odd sizes, stride 2 on the four phases and as even
 * columns, a stride along H or W only, a multiplier above 1, dilation, asymmetric and wide padding, other kernel sizes
 * (its loop for any kernel), batch above 1, bias or none, the epilogue with a residual; against the float64 oracle, and
 * the same bits with 1 and 3 threads and through a plan (weights kept).
 */
class VectorDepthwiseTest {
    @Test
    void everyEdgeAgainstFloat64AndAnyThreadCount() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
        Object[][] layers = {
                // {input N,C,H,W}, {K, C/G, R, S}, spec
                {new int[] {1, 5, 14, 14}, new int[] {5, 1, 3, 3}, ConvSpec.builder().padding(1).groups(5).build()},
                {new int[] {2, 4, 15, 13}, new int[] {4, 1, 3, 3}, ConvSpec.builder().stride(2).padding(1).groups(4).build()},
                {new int[] {1, 3, 7, 7}, new int[] {3, 1, 3, 3}, ConvSpec.builder().padding(1).groups(3).build()},
                {new int[] {1, 3, 7, 7}, new int[] {3, 1, 3, 3}, ConvSpec.builder().stride(2).padding(1).groups(3).build()},
                // rows of at least two vectors at stride 2 along both axes, on the four phases (two more below): an odd width (a
                // row's last float alone, its last pairs overlapping the vectors before), a multiplier, rows of exactly two
                // vectors (at 512 bits), batch 2, left and top padding of 0 (TensorFlow's "same"), a 2x2 kernel (one tap per
                // phase); stride 2 along H only with asymmetric padding (the padded plane)
                {new int[] {1, 2, 70, 67}, new int[] {2, 1, 3, 3}, ConvSpec.builder().stride(2).padding(1).groups(2).build()},
                {new int[] {2, 3, 16, 40}, new int[] {6, 1, 3, 3}, ConvSpec.builder().stride(2).padding(1).groups(3).build()},
                {new int[] {2, 2, 21, 32}, new int[] {2, 1, 3, 3}, ConvSpec.builder().stride(2).padding(1).groups(2).build()},
                {new int[] {1, 2, 12, 32}, new int[] {2, 1, 3, 3}, ConvSpec.builder().stride(2).padding(Padding.of(0, 1, 0, 1))
                        .groups(2).build()},
                {new int[] {1, 2, 10, 34}, new int[] {2, 1, 2, 2}, ConvSpec.builder().stride(2).groups(2).build()},
                {new int[] {1, 2, 40, 37}, new int[] {2, 1, 3, 3}, ConvSpec.builder().stride(2, 1).padding(Padding.of(1, 0, 0, 2))
                        .groups(2).build()},
                {new int[] {1, 2, 41, 70}, new int[] {2, 1, 3, 3}, ConvSpec.builder().padding(1).groups(2).build()},
                {new int[] {1, 3, 2, 3}, new int[] {3, 1, 3, 3}, ConvSpec.builder().padding(1).groups(3).build()},  // one row of 3
                {new int[] {1, 2, 1, 1}, new int[] {2, 1, 3, 3}, ConvSpec.builder().stride(2).padding(1).groups(2).build()},
                // a multiplier of 3: output channel k reads input channel k / 3
                {new int[] {2, 2, 9, 11}, new int[] {6, 1, 3, 3}, ConvSpec.builder().stride(2).padding(1).groups(2).build()},
                // stride along one axis only, unpadded, asymmetric and wide padding, dilation
                {new int[] {1, 3, 12, 10}, new int[] {3, 1, 3, 3}, ConvSpec.builder().stride(2, 1).groups(3).build()},
                {new int[] {1, 3, 10, 12}, new int[] {3, 1, 3, 3}, ConvSpec.builder().stride(1, 2).padding(Padding.of(0, 2, 1, 0))
                        .groups(3).build()},
                {new int[] {1, 4, 11, 9}, new int[] {4, 1, 3, 3}, ConvSpec.builder().dilation(2).padding(2).groups(4).build()},
                // padding wider than the kernel reaches: rows of Q = W + 4 outputs, longer than the padded rows' stride
                {new int[] {1, 2, 6, 5}, new int[] {2, 1, 3, 3}, ConvSpec.builder().padding(3).groups(2).build()},
                {new int[] {1, 2, 9, 37}, new int[] {2, 1, 3, 3}, ConvSpec.builder().stride(2).padding(3).groups(2).build()},
                {new int[] {1, 4, 13, 12}, new int[] {4, 1, 3, 3}, ConvSpec.builder().stride(2).dilation(2, 3).padding(3).groups(4).build()},
                // other kernels: 5x5 (MobileNetV3, EfficientNet), 1x3, 3x1, 1x1, 7x7 wider than the map
                {new int[] {1, 3, 17, 35}, new int[] {3, 1, 5, 5}, ConvSpec.builder().stride(2).padding(2).groups(3).build()},
                {new int[] {1, 3, 9, 20}, new int[] {3, 1, 1, 3}, ConvSpec.builder().padding(Padding.of(0, 0, 1, 1)).groups(3).build()},
                {new int[] {1, 3, 20, 9}, new int[] {3, 1, 3, 1}, ConvSpec.builder().stride(2).padding(Padding.of(1, 1, 0, 0)).groups(3).build()},
                {new int[] {1, 3, 6, 5}, new int[] {3, 1, 1, 1}, ConvSpec.builder().groups(3).build()},
                {new int[] {1, 2, 4, 5}, new int[] {2, 1, 7, 7}, ConvSpec.builder().padding(3).groups(2).build()},
        };
        Epilogue ep = Epilogue.of(Epilogue.Activation.RELU6).withResidual(Epilogue.Residual.AFTER_ACTIVATION);
        int seed = 100, phased = 0;
        for (ConvGeometry g : KernelCheck.geometries(layers)) {
            seed++;
            assertTrue(VectorDepthwise.applies(g), g.toString());
            // the phases take what MobileNet's own 3x3 paths do not (other padding, other kernels)
            phased += VectorDepthwise.phased(g) && !VectorDepthwise.evenColumnsApplies(g) ? 1 : 0;
            KernelCheck.againstFloat64AndThreads(Algorithm.DEPTHWISE, g, seed % 2 == 0 ? ep : Epilogue.none(), seed);
        }
        assertTrue(phased >= 4, phased + " layers ran on the phases"); // more with narrower vectors
    }

    /**
     * Stride-2 3x3 layers with padding 1 as the even columns of stride-1 sums over the input's odd and even rows ({@link
     * VectorDepthwise#evenColumnsApplies}): even and odd widths (the left taps' zeroed last column; an odd width's zero
     * column) and heights (the odd rows' last one input or padding), a plane of exactly 16 outputs, planes whose last
     * vector ends at the plane's end over outputs already stored, a multiplier of 2 with batch 2, rows narrower than two
     * vectors (MobileNet's 14 x 14), a wide one; the same bits at 1 and 3 threads.
     */
    @Test
    void strideTwoLayersRunAsEvenColumnsOfOneFlatRun() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
        Object[][] layers = {
                {new int[] {1, 2, 16, 16}, new int[] {2, 1, 3, 3}, ConvSpec.builder().stride(2).padding(1).groups(2).build()},
                {new int[] {1, 2, 15, 13}, new int[] {2, 1, 3, 3}, ConvSpec.builder().stride(2).padding(1).groups(2).build()},
                {new int[] {2, 3, 14, 9}, new int[] {6, 1, 3, 3}, ConvSpec.builder().stride(2).padding(1).groups(3).build()},
                {new int[] {1, 2, 9, 32}, new int[] {2, 1, 3, 3}, ConvSpec.builder().stride(2).padding(1).groups(2).build()},
                {new int[] {1, 3, 7, 7}, new int[] {3, 1, 3, 3}, ConvSpec.builder().stride(2).padding(1).groups(3).build()},
                {new int[] {1, 4, 14, 14}, new int[] {4, 1, 3, 3}, ConvSpec.builder().stride(2).padding(1).groups(4).build()},
                {new int[] {1, 2, 57, 40}, new int[] {2, 1, 3, 3}, ConvSpec.builder().stride(2).padding(1).groups(2).build()},
                {new int[] {1, 2, 8, 33}, new int[] {2, 1, 3, 3}, ConvSpec.builder().stride(2).padding(1).groups(2).build()},
        };
        onPath(layers, VectorDepthwise::evenColumnsApplies, 400);
    }

    /**
     * Each layer (rows as {@link KernelCheck#geometries} takes them) on the path {@code path} selects, against float64 and
     * across thread counts, every other one with a ReLU6 and a residual.
     */
    private static void onPath(Object[][] layers, java.util.function.Predicate<ConvGeometry> path, int seed) {
        Epilogue ep = Epilogue.of(Epilogue.Activation.RELU6).withResidual(Epilogue.Residual.AFTER_ACTIVATION);
        for (ConvGeometry g : KernelCheck.geometries(layers)) {
            seed++;
            assertTrue(VectorDepthwise.applies(g) && path.test(g), g.toString());
            KernelCheck.againstFloat64AndThreads(Algorithm.DEPTHWISE, g, seed % 2 == 0 ? ep : Epilogue.none(), seed);
        }
    }

    /**
     * Stride-1 3x3 layers with padding 1 run as one flat plane without zero columns ({@link VectorDepthwise#unpaddedApplies}):
     * rows of 1 and 2 (every output an edge), a plane of exactly 16 outputs, 65 (a whole loop step and a last vector ending
     * at the plane's end, over outputs already stored), odd sizes with a multiplier of 2 and batch 2, MobileNet's 14 x 14
     * and 7 x 7; each row's first and last outputs read zeros for the padding, not the neighbouring rows' inputs.
     */
    @Test
    void strideOneLayersRunAsOneFlatPlane() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
        Object[][] layers = {
                {new int[] {1, 2, 9, 2}, new int[] {2, 1, 3, 3}, ConvSpec.builder().padding(1).groups(2).build()},
                {new int[] {1, 2, 20, 1}, new int[] {2, 1, 3, 3}, ConvSpec.builder().padding(1).groups(2).build()},
                {new int[] {1, 3, 4, 4}, new int[] {3, 1, 3, 3}, ConvSpec.builder().padding(1).groups(3).build()},
                {new int[] {1, 2, 5, 13}, new int[] {2, 1, 3, 3}, ConvSpec.builder().padding(1).groups(2).build()},
                {new int[] {2, 3, 11, 17}, new int[] {6, 1, 3, 3}, ConvSpec.builder().padding(1).groups(3).build()},
                {new int[] {1, 2, 30, 31}, new int[] {2, 1, 3, 3}, ConvSpec.builder().padding(1).groups(2).build()},
                {new int[] {1, 4, 14, 14}, new int[] {4, 1, 3, 3}, ConvSpec.builder().padding(1).groups(4).build()},
                {new int[] {1, 5, 7, 7}, new int[] {5, 1, 3, 3}, ConvSpec.builder().padding(1).groups(5).build()},
        };
        onPath(layers, VectorDepthwise::unpaddedApplies, 300);
    }

    @Test
    void takesOnlyForwardDepthwiseLayersOfStrideAtMostTwoAlongW() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
        ConvGeometry dense = ConvGeometry.conv2d(new int[] {1, 4, 8, 8}, new int[] {4, 2, 3, 3}, null,
                ConvSpec.builder().padding(1).groups(2).build());
        ConvGeometry stride3 = ConvGeometry.conv2d(new int[] {1, 4, 8, 8}, new int[] {4, 1, 3, 3}, null,
                ConvSpec.builder().stride(3).padding(1).groups(4).build());
        ConvGeometry transposed = ConvGeometry.convTranspose2d(new int[] {1, 4, 8, 8}, new int[] {4, 1, 3, 3}, null,
                ConvSpec.builder().stride(2).padding(1).groups(4).build());
        assertFalse(VectorDepthwise.applies(dense));
        assertFalse(VectorDepthwise.applies(stride3));
        assertFalse(VectorDepthwise.applies(transposed));
    }
}
