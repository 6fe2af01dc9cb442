package io.github.jconv.cuda;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvSpec;
import io.github.jconv.ShapeTableTest;
import io.github.jconv.Tensor;
import io.github.jconv.TestSupport;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** cuda-kernels/depthwise.cu's conv2d kernels: the shared-memory tiled one and the per-element one, on the same layers. */
class DepthwiseLauncherTest {
    @ParameterizedTest
    @ValueSource(strings = {"cuda-emu", "cuda"})
    void tiledAndPerElementKernelsMatchTheReference(String name) {
        CudaBackend backend = name.equals("cuda") ? CudaBackend.CUDA : CudaBackend.EMU;
        Assumptions.assumeTrue(backend.unavailableReason() == null, () -> name + ": " + backend.unavailableReason());
        java.util.List<ConvGeometry> layers = new java.util.ArrayList<>(ShapeTableTest.geometries().stream()
                .filter(g -> g.isDepthwise() && !g.transposed()).toList());
        // a plane of several tiles with stride 2 and a multiplier, and one whose window is too large for the tiled kernel
        layers.add(ConvGeometry.conv2d(new int[] {2, 3, 45, 70}, new int[] {6, 1, 5, 5}, new int[] {6},
                ConvSpec.builder().groups(3).stride(2).padding(2).build()));
        ConvGeometry wide = ConvGeometry.conv2d(new int[] {1, 2, 40, 40}, new int[] {2, 1, 3, 3}, null,
                ConvSpec.builder().groups(2).dilation(30).padding(30).build());
        layers.add(wide);
        assertFalse(DepthwiseLauncher.tiled(wide), "a window of 76 x 92 floats does not fit");
        int tiled = 0;
        for (ConvGeometry g : layers) {
            tiled += DepthwiseLauncher.tiled(g) ? 1 : 0;
            float[][] d = TestSupport.data(g, 13);
            for (boolean allow : new boolean[] {true, false}) {
                DepthwiseLauncher.allowTiled = allow;
                try {
                    float[] y = new float[Math.toIntExact(Tensor.elementCount(g.outputShape()))];
                    Arrays.fill(y, Float.NaN);
                    backend.run(Algorithm.DEPTHWISE, g, d[0], d[1], d[2], y, 0);
                    TestSupport.assertMatchesReference(name + "/depthwise " + (allow && DepthwiseLauncher.tiled(g) ? "tiled" : "per element"), g,
                            d[0], d[1], d[2], y);
                } finally {
                    DepthwiseLauncher.allowTiled = true;
                }
            }
        }
        assertTrue(tiled >= 3, "the tiled kernel ran on " + tiled + " layers");
    }

    @Test
    void mobileNetLayersTakeTheTiledKernel() {
        for (int stride : new int[] {1, 2}) {
            ConvGeometry g = ConvGeometry.conv2d(new int[] {8, 144, 56, 56}, new int[] {144, 1, 3, 3}, null,
                    ConvSpec.builder().groups(144).stride(stride).padding(1).build());
            assertTrue(DepthwiseLauncher.tiled(g), g.toString());
        }
    }
}
