package io.github.jconv;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * N = 0, as PyTorch 1.13: an empty result of the right shape for both operations, every backend and algorithm.
 * Other empty dimensions are refused (PyTorch refuses them too, or, for C = 0 in conv2d, returns 1 x 0 x P x Q
 * although its own output-size formula gives K channels: jconv does not copy that).
 */
class EmptyBatchTest {
    @Test
    void conv2dOfAnEmptyBatchIsEmpty() {
        // torch: F.conv2d(zeros(0,3,5,5), zeros(4,3,3,3), ones(4)).shape == (0, 4, 3, 3)
        Tensor y = Jconv.conv2d(Tensor.zeros(0, 3, 5, 5), Tensor.zeros(4, 3, 3, 3), Tensor.zeros(4), ConvSpec.defaults());
        assertArrayEquals(new int[] {0, 4, 3, 3}, y.shape());
        assertEquals(0, y.size());
        // torch: F.conv2d(zeros(0,4,5,5), zeros(4,2,3,3), groups=2).shape == (0, 4, 3, 3)
        assertArrayEquals(new int[] {0, 4, 3, 3}, Jconv.conv2d(Tensor.zeros(0, 4, 5, 5), Tensor.zeros(4, 2, 3, 3), null,
                ConvSpec.builder().groups(2).build()).shape());
    }

    @Test
    void convTranspose2dOfAnEmptyBatchIsEmpty() {
        // torch: F.conv_transpose2d(zeros(0,3,5,5), zeros(3,4,3,3), stride=2, output_padding=1).shape == (0, 4, 12, 12)
        Tensor y = Jconv.convTranspose2d(Tensor.zeros(0, 3, 5, 5), Tensor.zeros(3, 4, 3, 3), null,
                ConvSpec.builder().stride(2).outputPadding(1).build());
        assertArrayEquals(new int[] {0, 4, 12, 12}, y.shape());
    }

    /** Every algorithm of every backend runs it (and a plan of it explains itself: its workspace and split-K sizing). */
    @Test
    void everyBackendAndAlgorithmTakesAnEmptyBatch() {
        for (ConvGeometry g : new ConvGeometry[] {
                ConvGeometry.conv2d(new int[] {0, 4, 6, 6}, new int[] {6, 4, 3, 3}, new int[] {6}, ConvSpec.builder().padding(1).build()),
                ConvGeometry.conv2d(new int[] {0, 4, 6, 6}, new int[] {6, 2, 3, 3}, new int[] {6}, ConvSpec.builder().groups(2).padding(1).build()),
                ConvGeometry.conv2d(new int[] {0, 4, 6, 6}, new int[] {4, 1, 3, 3}, null, ConvSpec.builder().groups(4).build()),
                ConvGeometry.convTranspose2d(new int[] {0, 4, 6, 6}, new int[] {4, 3, 3, 3}, new int[] {3}, ConvSpec.builder().stride(2).build())}) {
            assertEquals(0, Tensor.elementCount(g.outputShape()));
            for (Backend b : ShapeTableTest.BACKENDS) {
                if (b.unavailableReason() != null) {
                    continue;
                }
                for (Algorithm a : b.algorithms()) {
                    if (b.cannotImplement(a, g) == null) {
                        b.run(a, g, new float[0], new float[Math.toIntExact(Tensor.elementCount(g.weightShape()))],
                                g.hasBias ? new float[g.biasLength()] : null, new float[0], 3);
                        try (Device dev = Device.open(b.name());
                             ConvPlan plan = ConvPlan.of(dev, g, Tensor.zeros(g.weightShape()), g.hasBias ? Tensor.zeros(g.biasLength()) : null)
                                     .algorithm(a).build()) {
                            assertTrue(plan.explain().contains(a.label()), plan.explain());
                            assertEquals(0, plan.run(Tensor.zeros(g.inputShape()), null).size());
                        }
                    }
                }
                Jconv.run(g, new float[0], new float[Math.toIntExact(Tensor.elementCount(g.weightShape()))],
                        g.hasBias ? new float[g.biasLength()] : null, new float[0], ConvOptions.defaults().withBackend(b.name()));
            }
        }
    }

    @Test
    void otherEmptyDimensionsAreRefused() {
        for (int[][] xw : new int[][][] {{{1, 0, 5, 5}, {4, 0, 3, 3}}, {{1, 3, 0, 5}, {4, 3, 1, 1}}, {{1, 3, 5, 5}, {0, 3, 3, 3}}}) {
            InvalidConvolutionException e = assertThrows(InvalidConvolutionException.class,
                    () -> Jconv.conv2d(Tensor.zeros(xw[0]), Tensor.zeros(xw[1]), null, ConvSpec.defaults()));
            assertTrue(e.getMessage().contains("has an empty dimension"), e.getMessage());
        }
        InvalidConvolutionException e = assertThrows(InvalidConvolutionException.class,
                () -> Jconv.conv2d(Tensor.zeros(0, 3, 2, 2), Tensor.zeros(4, 3, 3, 3), null, ConvSpec.defaults()));
        assertTrue(e.getMessage().contains("kernel height 3"), "the kernel must fit even when N = 0, as in PyTorch: " + e.getMessage());
    }
}
