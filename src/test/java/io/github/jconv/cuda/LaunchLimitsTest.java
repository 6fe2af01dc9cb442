package io.github.jconv.cuda;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvSpec;
import io.github.jconv.ShapeTableTest;
import io.github.jconv.TestSupport;
import io.github.jconv.Tensor;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What a GPU's launch limits and grid sizes would expose, on the emulator: more groups (grid.z) or GEMM row tiles
 * (grid.y) than a grid holds go in several launches, and every grid-stride loop is run with grids so small that each
 * thread takes at least three trips.
 */
class LaunchLimitsTest {
    private static void assumeEmulator() {
        Assumptions.assumeTrue(EmuDevice.unavailableReason() == null, EmuDevice::unavailableReason);
    }

    /**
     * More groups than one grid.z holds, and more GEMM row tiles than one grid.y holds, go in several launches. The
     * real limit is 65535 (which the emulator enforces, see SelfTestKernelsTest); here the launchers split at 2, so
     * the splits run on small problems: implicit GEMM with 7 groups (4 launches), im2col's GEMM with 300 rows (2 of 2 x 128), the
     * tiled depthwise kernel over 10 channels and 3 samples (10 launches).
     */
    @Test
    void gridsBeyondTheLimitAreSplitIntoSeveralLaunches() {
        assumeEmulator();
        Launcher.gridYZLimit = 2;
        try {
            ConvGeometry grouped = ConvGeometry.conv2d(new int[] {2, 14, 5, 6}, new int[] {21, 2, 3, 2}, new int[] {21},
                    ConvSpec.builder().groups(7).padding(1).build());
            ConvGeometry tall = ConvGeometry.convTranspose2d(new int[] {1, 4, 3, 3}, new int[] {4, 12, 5, 5}, null, ConvSpec.defaults());
            ConvGeometry depthwise = ConvGeometry.conv2d(new int[] {3, 5, 6, 7}, new int[] {10, 1, 3, 3}, new int[] {10},
                    ConvSpec.builder().groups(5).padding(1).build());
            for (ConvGeometry g : new ConvGeometry[] {grouped, tall, depthwise}) {
                float[][] d = TestSupport.data(g, 3);
                for (Algorithm a : new Algorithm[] {Algorithm.IMPLICIT_GEMM, Algorithm.IM2COL, Algorithm.DEPTHWISE}) {
                    if (CudaBackend.EMU.cannotImplement(a, g) != null) {
                        continue;
                    }
                    float[] y = new float[Math.toIntExact(Tensor.elementCount(g.outputShape()))];
                    CudaBackend.EMU.run(a, g, d[0], d[1], d[2], y, 0);
                    TestSupport.assertMatchesReference("cuda-emu/" + a + " split at grid.y/z = 2", g, d[0], d[1], d[2], y);
                }
            }
        } finally {
            Launcher.gridYZLimit = Launcher.MAX_GRID_YZ;
        }
    }

    /**
     * im2col in chunks of samples: a column budget of one float makes every chunk one sample (the budget's floor), so the
     * batched unfold, GEMM and fold run chunk after chunk on the shape table (layers with up to 7 samples).
     */
    @Test
    void im2colRunsInChunksOfSamples() {
        assumeEmulator();
        Im2colLauncher.colBudgetFloats = 1;
        try {
            int chunked = 0;
            for (ConvGeometry g : ShapeTableTest.geometries()) {
                assertEquals(1, Im2colLauncher.samplesPerChunk(g));
                chunked += g.n > 1 ? 1 : 0;
                float[][] d = TestSupport.data(g, 19);
                float[] y = new float[Math.toIntExact(Tensor.elementCount(g.outputShape()))];
                Arrays.fill(y, Float.NaN);
                CudaBackend.EMU.run(Algorithm.IM2COL, g, d[0], d[1], d[2], y, 0);
                TestSupport.assertMatchesReference("cuda-emu/im2col one sample per chunk", g, d[0], d[1], d[2], y);
            }
            assertTrue(chunked > 5, "layers with several samples: " + chunked);
        } finally {
            Im2colLauncher.colBudgetFloats = Im2colLauncher.COL_BUDGET_FLOATS;
        }
        ConvGeometry resnet = ConvGeometry.conv2d(new int[] {32, 256, 14, 14}, new int[] {256, 256, 3, 3}, null,
                ConvSpec.builder().padding(1).build());
        assertEquals(32, Im2colLauncher.samplesPerChunk(resnet), "a ResNet layer at batch 32 in one chunk (1.7 MiB of columns per sample)");
    }

    /** Every cuda-emu algorithm on the shape table with grid-stride loops of at least three trips per thread. */
    @Test
    void gridStrideLoopsTakeThreeTrips() {
        assumeEmulator();
        Launcher.gridStrideTrips = 3;
        try {
            for (ConvGeometry g : ShapeTableTest.geometries()) {
                float[][] d = TestSupport.data(g, 17);
                for (Algorithm a : CudaBackend.EMU.algorithms()) {
                    if (CudaBackend.EMU.cannotImplement(a, g) != null) {
                        continue;
                    }
                    float[] y = new float[Math.toIntExact(Tensor.elementCount(g.outputShape()))];
                    Arrays.fill(y, Float.NaN);
                    CudaBackend.EMU.run(a, g, d[0], d[1], d[2], y, 0);
                    TestSupport.assertMatchesReference("cuda-emu/" + a + " (grid-stride loops of three trips)", g, d[0], d[1], d[2], y);
                }
            }
        } finally {
            Launcher.gridStrideTrips = 0;
        }
        assertEquals(4, Launcher.grid1d(1000)[0], "the usual grid again");
    }

    /** Guards the sizes used above: a 3-trip grid for 1,000 elements is one block (1000 / 768). */
    @Test
    void threeTripGridsAreSmall() {
        Launcher.gridStrideTrips = 3;
        try {
            assertEquals(1, Launcher.grid1d(1000)[0]);
            assertEquals(13, Launcher.grid1d(10_000)[0]);
            assertEquals(1, Launcher.grid1d(1)[0]);
        } finally {
            Launcher.gridStrideTrips = 0;
        }
    }
}
