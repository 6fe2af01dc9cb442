package io.github.jconv.cuda;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvSpec;
import io.github.jconv.Epilogue;
import io.github.jconv.ShapeTableTest;
import io.github.jconv.Tensor;
import io.github.jconv.TestSupport;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * cuda-kernels/implicit_gemm.cu's host side: every tile shape on the emulator (the launcher picks 64x64 for every small
 * layer, so the larger tiles are forced here), the stride-phase decomposition of conv_transpose2d checked against the
 * definition, and the tile choice.
 */
class ImplicitGemmLauncherTest {
    static Stream<Arguments> backendsAndTiles() {
        return Stream.of("cuda-emu", "cuda").flatMap(b -> ImplicitGemmLauncher.TILES.stream().map(t -> Arguments.of(b, t)));
    }

    private static CudaBackend backend(String name) {
        CudaBackend b = name.equals("cuda") ? CudaBackend.CUDA : CudaBackend.EMU;
        Assumptions.assumeTrue(b.unavailableReason() == null, () -> name + ": " + b.unavailableReason());
        return b;
    }

    @ParameterizedTest(name = "{0} tile {1}")
    @MethodSource("backendsAndTiles")
    void everyTileMatchesTheReferenceOnTheShapeTable(String backendName, GemmTile tile) {
        CudaBackend backend = backend(backendName);
        ImplicitGemmLauncher.forcedTile = tile;
        try {
            int layers = 0;
            for (ConvGeometry g : ShapeTableTest.geometries()) {
                if (backend.cannotImplement(Algorithm.IMPLICIT_GEMM, g) != null) {
                    continue;
                }
                float[][] d = TestSupport.data(g, 23);
                float[] y = new float[Math.toIntExact(Tensor.elementCount(g.outputShape()))];
                Arrays.fill(y, Float.NaN);
                backend.run(Algorithm.IMPLICIT_GEMM, g, d[0], d[1], d[2], y, 0);
                TestSupport.assertMatchesReference(backendName + "/implicit-gemm tile " + tile, g, d[0], d[1], d[2], y);
                layers++;
            }
            assertEquals(ShapeTableTest.geometries().size(), layers, "implicit GEMM takes every layer of the table, both directions");
        } finally {
            ImplicitGemmLauncher.forcedTile = null;
        }
    }

    /**
     * Split-K (forced to 3 slices, or fewer where a layer has fewer steps) on the shape table, and on a layer with the
     * fused epilogue and a residual: the partial sums go through jconv_implicit_gemm_splitk_reduce, bias and epilogue there.
     */
    @ParameterizedTest
    @ValueSource(strings = {"cuda-emu", "cuda"})
    void splitKMatchesTheReference(String backendName) {
        CudaBackend backend = backend(backendName);
        ImplicitGemmLauncher.forcedSplits = 3;
        try {
            for (ConvGeometry g : ShapeTableTest.geometries()) {
                float[][] d = TestSupport.data(g, 29);
                float[] y = new float[Math.toIntExact(Tensor.elementCount(g.outputShape()))];
                Arrays.fill(y, Float.NaN);
                backend.run(Algorithm.IMPLICIT_GEMM, g, d[0], d[1], d[2], y, 0);
                TestSupport.assertMatchesReference(backendName + "/implicit-gemm split-K " + ImplicitGemmLauncher.splits(g), g, d[0], d[1],
                        d[2], y);
            }
            ConvGeometry g = ConvGeometry.convTranspose2d(new int[] {2, 24, 5, 6}, new int[] {24, 10, 3, 3}, new int[] {10},
                    ConvSpec.builder().stride(2).padding(1).build());
            assertEquals(3, ImplicitGemmLauncher.splits(g));
            assertEpilogueMatches(backend, g, Epilogue.of(Epilogue.Activation.SILU).withResidual(Epilogue.Residual.AFTER_ACTIVATION), 31,
                    "split-K");
        } finally {
            ImplicitGemmLauncher.forcedSplits = 0;
        }
    }

    /** Implicit GEMM with epilogue {@code ep} (and a residual) on g against the float64 composition. */
    private static void assertEpilogueMatches(CudaBackend backend, ConvGeometry g, Epilogue ep, long seed, String what) {
        float[][] d = TestSupport.data(g, seed);
        float[] residual = TestSupport.gaussian(new Random(seed), Tensor.elementCount(g.outputShape()));
        float[] y = new float[residual.length];
        backend.run(Algorithm.IMPLICIT_GEMM, g, d[0], d[1], d[2], ep, residual, y, 0);
        String why = TestSupport.oracle(g, d[0], d[1], d[2], ep, residual).check(y);
        assertNull(why, () -> backend.name() + "/implicit-gemm " + what + " " + ep + " on " + g + ": " + why);
    }

    /** Layers with few tiles split K (from the geometry alone); large ones do not; the workspace holds one output per slice. */
    @Test
    void splitKForLayersWithFewTiles() {
        ConvGeometry small = ConvGeometry.conv2d(new int[] {1, 512, 7, 7}, new int[] {512, 512, 3, 3}, null, ConvSpec.builder().padding(1).build());
        ConvGeometry big = ConvGeometry.conv2d(new int[] {8, 256, 56, 56}, new int[] {256, 256, 3, 3}, null, ConvSpec.builder().padding(1).build());
        ConvGeometry shallow = ConvGeometry.conv2d(new int[] {1, 8, 7, 7}, new int[] {8, 8, 1, 1}, null, ConvSpec.defaults());
        assertEquals(16, ImplicitGemmLauncher.splits(small), "8 blocks of 64x64 want 33 slices, capped at 16");
        assertEquals(1, ImplicitGemmLauncher.splits(big));
        assertEquals(1, ImplicitGemmLauncher.splits(shallow), "one step: nothing to split");
        assertEquals(4L * 16 * 512 * 49, CudaBackend.EMU.workspaceBytes(Algorithm.IMPLICIT_GEMM, small));
        assertEquals(0, CudaBackend.EMU.workspaceBytes(Algorithm.IMPLICIT_GEMM, big));
        String v = CudaBackend.EMU.variant(Algorithm.IMPLICIT_GEMM, small);
        assertTrue(v.contains("split-K into 16 slices of 36 of 576 steps (128 blocks"), v);
        ImplicitGemmLauncher.forcedTile = GemmTile.T128X128;
        try {
            String forced = CudaBackend.EMU.variant(Algorithm.IMPLICIT_GEMM, big);
            assertTrue(forced.contains("tile 128x128 (forced by a test)"), forced);
        } finally {
            ImplicitGemmLauncher.forcedTile = null;
        }
    }

    /** A layer wider than one tile in every direction, with the fused epilogue, on the largest tile. */
    @ParameterizedTest
    @ValueSource(strings = {"cuda-emu", "cuda"})
    void severalTilesAndTheEpilogue(String backendName) {
        CudaBackend backend = backend(backendName);
        ImplicitGemmLauncher.forcedTile = GemmTile.T128X128;
        try {
            for (ConvGeometry g : new ConvGeometry[] {
                    ConvGeometry.conv2d(new int[] {2, 20, 9, 11}, new int[] {140, 10, 3, 3}, new int[] {140},
                            ConvSpec.builder().padding(1).groups(2).build()),
                    ConvGeometry.convTranspose2d(new int[] {1, 12, 7, 8}, new int[] {12, 130, 3, 3}, new int[] {130},
                            ConvSpec.builder().stride(2).padding(1).build())}) {
                assertEpilogueMatches(backend, g, Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION), 5,
                        "128x128");
            }
        } finally {
            ImplicitGemmLauncher.forcedTile = null;
        }
    }

    /**
     * conv_transpose2d's phases, against the definition on one axis: every (output position, tap) pair whose source
     * position exists is read by exactly one phase, at that source, and no phase reads a pair that has none.
     */
    @Test
    void stridePhasesReadEveryTapExactlyOnce() {
        Random rnd = new Random(4);
        for (int trial = 0; trial < 3000; trial++) {
            int stride = 1 + rnd.nextInt(5), dilation = 1 + rnd.nextInt(4), kernel = 1 + rnd.nextInt(6), pad = rnd.nextInt(6);
            int in = 1 + rnd.nextInt(9);  // the input positions of the transposed convolution (forward output P)
            int size = Math.max(1, (in - 1) * stride - 2 * pad + dilation * (kernel - 1) + 1 + rnd.nextInt(stride));
            Map<Long, Integer> expected = new HashMap<>(), got = new HashMap<>();
            for (int o = 0; o < size; o++) {
                for (int r = 0; r < kernel; r++) {
                    int v = o + pad - r * dilation;
                    if (v >= 0 && v % stride == 0 && v / stride < in) {
                        expected.put((long) o * 64 + r, v / stride);
                    }
                }
            }
            int covered = 0;
            for (int phase = 0; phase < stride; phase++) {
                ImplicitGemmLauncher.Phase ph = ImplicitGemmLauncher.Phase.of(phase, stride, dilation, pad, size, kernel);
                for (int u = 0; u < Math.max(0, ph.pixels()); u++) {
                    int o = stride * u + ph.outOffset();
                    assertTrue(o >= 0 && o < size, "phase output inside the tensor");
                    assertEquals(phase, Math.floorMod(o + pad, stride));
                    covered++;
                    for (int i = 0; i < ph.taps(); i++) {
                        int r = ph.firstTap() + i * ph.tapStep();
                        int source = u + ph.start() - ph.firstShift() - i * ph.shiftStep();
                        assertTrue(r < kernel);
                        if (source >= 0 && source < in) {
                            assertEquals(null, got.put((long) o * 64 + r, source), "pair read twice");
                        }
                    }
                }
            }
            String what = "stride " + stride + " dilation " + dilation + " kernel " + kernel + " pad " + pad + " size " + size;
            assertEquals(size, covered, "every output position in one phase: " + what);
            assertEquals(expected, got, what);
        }
    }

    @Test
    void tileChoiceFollowsTheGrid() {
        ConvGeometry big = ConvGeometry.conv2d(new int[] {8, 256, 56, 56}, new int[] {256, 256, 3, 3}, null, ConvSpec.builder().padding(1).build());
        ConvGeometry narrow = ConvGeometry.conv2d(new int[] {16, 64, 56, 56}, new int[] {64, 64, 3, 3}, null, ConvSpec.builder().padding(1).build());
        ConvGeometry small = ConvGeometry.conv2d(new int[] {1, 512, 7, 7}, new int[] {512, 512, 3, 3}, null, ConvSpec.builder().padding(1).build());
        assertEquals(GemmTile.T128X128, ImplicitGemmLauncher.tile(big));
        assertEquals(GemmTile.T128X64, ImplicitGemmLauncher.tile(narrow));
        assertEquals(GemmTile.T64X64, ImplicitGemmLauncher.tile(small));
        assertTrue(CudaBackend.EMU.variant(Algorithm.IMPLICIT_GEMM, big).startsWith("jconv_implicit_gemm_fprop_128x128, tile 128x128"),
                CudaBackend.EMU.variant(Algorithm.IMPLICIT_GEMM, big));
        ConvGeometry up = ConvGeometry.convTranspose2d(new int[] {8, 256, 28, 28}, new int[] {256, 128, 4, 4}, null,
                ConvSpec.builder().stride(2).padding(1).build());
        String v = CudaBackend.EMU.variant(Algorithm.IMPLICIT_GEMM, up);
        assertTrue(v.startsWith("jconv_implicit_gemm_dgrad_") && v.contains("4 stride phase(s)"), v);
    }
}
