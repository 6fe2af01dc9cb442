package io.github.jconv.cuda;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvSpec;
import io.github.jconv.ShapeTableTest;
import io.github.jconv.Tensor;
import io.github.jconv.TestSupport;
import io.github.jconv.WeightGradientTest;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * cuda-kernels/wgrad.cu's host side: every tile shape, with the launcher's split and with three slices, on the shape table
 * (the launcher picks by channel count, so the other tiles are forced here), and the tile and split choice.
 */
class WgradLauncherTest {
    static Stream<Arguments> backendsTilesSplits() {
        return Stream.of("cuda-emu", "cuda").flatMap(b -> WgradLauncher.TILES.stream()
                .flatMap(t -> Stream.of(Arguments.of(b, t, 0), Arguments.of(b, t, 3))));
    }

    @ParameterizedTest(name = "{0} tile {1} splits {2}")
    @MethodSource("backendsTilesSplits")
    void everyTileMatchesFloat64OnTheShapeTable(String backendName, GemmTile tile, int splits) {
        CudaBackend backend = backendName.equals("cuda") ? CudaBackend.CUDA : CudaBackend.EMU;
        Assumptions.assumeTrue(backend.unavailableReason() == null, () -> backendName + ": " + backend.unavailableReason());
        WgradLauncher.forcedTile = tile;
        WgradLauncher.forcedSplits = splits;
        try {
            for (ConvGeometry g : ShapeTableTest.geometries()) {
                Random rnd = new Random(g.hashCode());
                float[] x = TestSupport.gaussian(rnd, (long) g.n * g.c * g.h * g.w), dy = TestSupport.gaussian(rnd, (long) g.n * g.k * g.p * g.q);
                float[] dw = new float[Math.toIntExact(Tensor.elementCount(g.weightShape()))];
                Arrays.fill(dw, Float.NaN);
                backend.backwardWeight(Algorithm.IMPLICIT_GEMM, g, x, dy, dw, 0);
                WeightGradientTest.assertMatchesReference(backendName + "/wgrad tile " + tile + " splits " + WgradLauncher.splits(g), g, x, dy, dw);
            }
        } finally {
            WgradLauncher.forcedTile = null;
            WgradLauncher.forcedSplits = 0;
        }
    }

    @Test
    void tileAndSplitFollowTheGeometry() {
        ConvGeometry wide = ConvGeometry.conv2d(new int[] {8, 256, 14, 14}, new int[] {256, 256, 3, 3}, null, ConvSpec.builder().padding(1).build());
        ConvGeometry narrow = ConvGeometry.conv2d(new int[] {8, 64, 56, 56}, new int[] {64, 64, 3, 3}, null, ConvSpec.builder().padding(1).build());
        ConvGeometry tiny = ConvGeometry.conv2d(new int[] {1, 4, 5, 5}, new int[] {8, 4, 3, 3}, null, ConvSpec.defaults());
        assertEquals(GemmTile.T128X128, WgradLauncher.tile(wide));
        assertEquals(GemmTile.T64X128, WgradLauncher.tile(narrow));
        assertEquals(GemmTile.T64X64, WgradLauncher.tile(tiny));
        // wide: 18 x 2 = 36 tiles want 8 slices of 8 x 14 x 2 = 224 steps; narrow: 5 tiles want 53, capped at 32
        assertEquals(8, WgradLauncher.splits(wide));
        assertEquals(32, WgradLauncher.splits(narrow));
        assertEquals(1, WgradLauncher.splits(tiny), "3 steps: nothing to split");
        assertTrue(WgradLauncher.variant(narrow).startsWith("jconv_implicit_gemm_wgrad_64x128, 5 blocks of 128 threads, split-K into 32"),
                WgradLauncher.variant(narrow));
    }
}
