package io.github.jconv.cpu;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvSpec;
import io.github.jconv.Epilogue;
import io.github.jconv.Padding;
import io.github.jconv.Tensor;
import io.github.jconv.TestSupport;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Winograd F(4x4, 3x3) ({@link WinogradConv}, {@link VectorWinograd}): maps that end in partial tiles, channel counts
 * that end in a partial vector or block, several groups of tile rows across the batch, padding 0-2 and asymmetric, bias
 * or none, stride-1 transposed layers, the epilogue with a residual; against the float64 oracle with Winograd's bound
 * ({@link WinogradBound}), the same bits with 1 and 3 threads and through a plan; the error on ResNet-50's layers
 * within the tuner's tolerance; non-finite operands through the direct kernel; refusals.
 */
class WinogradTest {
    @BeforeEach
    void vectorApi() {
        Assumptions.assumeTrue(Sgemm.VECTOR, "the Vector API is not loaded");
    }

    @Test
    void everyTailAgainstFloat64AndAnyThreadCount() {
        int nb = VectorWinograd.NB;
        Object[][] layers = {
                // {input N,C,H,W}, {K, C, 3, 3}, spec
                {new int[] {1, 3, 7, 9}, new int[] {5, 3, 3, 3}, ConvSpec.builder().padding(1).build()},
                {new int[] {2, 17, 10, 11}, new int[] {nb + 3, 17, 3, 3}, ConvSpec.builder().padding(1).build()},
                {new int[] {3, 16, 6, 6}, new int[] {2 * nb, 16, 3, 3}, ConvSpec.builder().build()},          // 4x4 out: one tile
                {new int[] {1, 5, 13, 5}, new int[] {7, 5, 3, 3}, ConvSpec.builder().padding(Padding.of(2, 0, 1, 2)).build()},
                {new int[] {2, 1, 1, 1}, new int[] {3, 1, 3, 3}, ConvSpec.builder().padding(2).build()},        // all padding
                {new int[] {1, 33, 3, 30}, new int[] {nb - 1, 33, 3, 3}, ConvSpec.builder().padding(Padding.of(0, 0, 1, 1)).build()},
                // more tile rows than a group holds (GROUP_FLOATS; the whole call's are over twice that): groups across samples
                {new int[] {5, 96, 14, 14}, new int[] {nb + 1, 96, 3, 3}, ConvSpec.builder().padding(1).build()},
                // one group (two with 3 threads), its input transformed once for the tasks of its 4 channel blocks, in
                // loops over its 10 channel vectors (the last one partial): 16 tiles padded to 18
                {new int[] {1, 150, 14, 13}, new int[] {3 * nb + 5, 150, 3, 3}, ConvSpec.builder().padding(1).build()},
                // rows of at least 16 outputs, which leave the output transform's row buffer 16 columns x 16 channels at a
                // time (the last 16 overlapping the ones before unless 16 divides the row): rows of exactly 16 in two
                // samples with a last row of tiles 2 rows high and a block of 20 channels (its second vector of 4 takes
                // the per-tile copy), rows of 37 (blocks at 0, 16 and 21), rows of 56 (ResNet-50's first stage); rows of 8 to
                // 15 (stored 16 wide over the next row's first outputs): the layers of 11, 13 and 14 above
                {new int[] {2, 8, 18, 16}, new int[] {nb + 20, 8, 3, 3}, ConvSpec.builder().padding(1).build()},
                {new int[] {1, 24, 9, 37}, new int[] {32, 24, 3, 3}, ConvSpec.builder().padding(1).build()},
                {new int[] {1, 16, 12, 56}, new int[] {16, 16, 3, 3}, ConvSpec.builder().padding(1).build()},
                // whole blocks of 16 channels copied in by register transposes, only the border zeroed: padding on some
                // sides only, 2 rows above, none below, in two samples
                {new int[] {2, 32, 13, 18}, new int[] {20, 32, 3, 3}, ConvSpec.builder().padding(Padding.of(2, 0, 1, 2)).build()},
        };
        Epilogue ep = Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION);
        int seed = 0;
        for (ConvGeometry g : KernelCheck.geometries(layers)) {
            seed++;
            KernelCheck.againstFloat64AndThreads(Algorithm.WINOGRAD, g, ep, seed);
            KernelCheck.againstFloat64AndThreads(Algorithm.WINOGRAD, g, Epilogue.none().withResidual(Epilogue.Residual.AFTER_ACTIVATION), seed + 100);
            withinTheTunersTolerance(g, seed);
        }
    }

    /**
     * The tuner times the candidates with the caches cleared where Winograd's transformed weights outweigh the work (36 C /
     * (N P Q) above 16 per output): ResNet-50's 256 -> 256 layer at 14x14 at batch 1 (47), the 512 one at 7x7; not at
     * batch 8, nor at 28x28 and 56x56, nor where Winograd cannot run; a stride-1 transposed layer by its forward form.
     * Winograd stays a candidate everywhere it runs.
     */
    @Test
    void theTunerTimesItColdWhereItsWeightsOutweighTheWork() {
        ConvSpec same = ConvSpec.builder().padding(1).build();
        assertTrue(CpuBackend.INSTANCE.timedCold(ConvGeometry.conv2d(new int[] {1, 256, 14, 14}, new int[] {256, 256, 3, 3}, null, same)));
        assertTrue(CpuBackend.INSTANCE.timedCold(ConvGeometry.conv2d(new int[] {1, 512, 7, 7}, new int[] {512, 512, 3, 3}, null, same)));
        for (int[] in : new int[][] {{8, 256, 14, 14}, {1, 128, 28, 28}, {1, 64, 56, 56}, {1, 64, 12, 12}}) {
            ConvGeometry g = ConvGeometry.conv2d(in, new int[] {in[1], in[1], 3, 3}, null, same);
            assertFalse(CpuBackend.INSTANCE.timedCold(g), g.toString()); // 5.9, 5.9, 0.7, 16 per output
        }
        assertTrue(CpuBackend.INSTANCE.timedCold( // forward form: 1 x 256 x 14 x 14 -> 256
                ConvGeometry.convTranspose2d(new int[] {1, 256, 14, 14}, new int[] {256, 256, 3, 3}, null, same)));
        assertFalse(CpuBackend.INSTANCE.timedCold( // stride 2: no Winograd, nothing to time cold
                ConvGeometry.conv2d(new int[] {1, 256, 14, 14}, new int[] {256, 256, 3, 3}, null, ConvSpec.builder().padding(1).stride(2).build())));
        assertNull(CpuBackend.INSTANCE.notTuned(Algorithm.WINOGRAD,
                ConvGeometry.conv2d(new int[] {1, 256, 14, 14}, new int[] {256, 256, 3, 3}, null, same)));
    }

    /**
     * The tuner's criterion, max |y - ref| / max |ref| <= 1e-4: much tighter than the element-wise bound (which allows
     * the worst case of every rounding, up to ~5e-3 of the largest output), so an error of a few 1e-4 fails here.
     */
    private static void withinTheTunersTolerance(ConvGeometry g, int seed) {
        float[][] d = TestSupport.data(g, seed);
        float[] y = new float[Math.toIntExact(Tensor.elementCount(g.outputShape()))];
        CpuBackend.INSTANCE.run(Algorithm.WINOGRAD, g, d[0], d[1], d[2], y, 2);
        double e = ReferenceConv.maxRelError(y, ReferenceConv.compute(g, d[0], d[1], d[2], Parallel.SERIAL));
        assertTrue(e <= io.github.jconv.Autotuner.TOLERANCE, g + ": max relative error " + e);
    }

    @Test
    void strideOneTransposedLayers() {
        ConvGeometry[] layers = {
                ConvGeometry.convTranspose2d(new int[] {2, 6, 7, 5}, new int[] {6, 20, 3, 3}, new int[] {20}, ConvSpec.builder().padding(1).build()),
                ConvGeometry.convTranspose2d(new int[] {1, 9, 4, 6}, new int[] {9, 3, 3, 3}, null, ConvSpec.builder().build()),
                ConvGeometry.convTranspose2d(new int[] {1, 4, 5, 5}, new int[] {4, 8, 3, 3}, null,
                        ConvSpec.builder().padding(Padding.of(2, 1, 0, 2)).build()),
        };
        int seed = 50;
        for (ConvGeometry g : layers) {
            assertNull(CpuBackend.INSTANCE.cannotImplement(Algorithm.WINOGRAD, g), g.toString());
            KernelCheck.againstFloat64AndThreads(Algorithm.WINOGRAD, g, Epilogue.of(Epilogue.Activation.RELU6).withResidual(Epilogue.Residual.AFTER_ACTIVATION), seed);
            withinTheTunersTolerance(g, seed++);
        }
    }

    /** ResNet-50's stride-1 3x3 layers at batch 1: the error the README quotes, and within the tuner's 1e-4. */
    @Test
    void resNetLayersAreWithinTheTunersTolerance() {
        int[][] layers = {{64, 56}, {128, 28}, {256, 14}, {512, 7}};
        for (int[] l : layers) {
            ConvGeometry g = ConvGeometry.conv2d(new int[] {1, l[0], l[1], l[1]}, new int[] {l[0], l[0], 3, 3}, new int[] {l[0]},
                    ConvSpec.builder().padding(1).build());
            float[][] d = io.github.jconv.SampleData.of(g, 7);
            float[] y = new float[Math.toIntExact(Tensor.elementCount(g.outputShape()))];
            CpuBackend.INSTANCE.run(Algorithm.WINOGRAD, g, d[0], d[1], d[2], y, 0);
            double[] ref = ReferenceConv.compute(g, d[0], d[1], d[2], Parallel.of(0));
            double winograd = ReferenceConv.maxRelError(y, ref);
            CpuBackend.INSTANCE.run(Algorithm.DIRECT, g, d[0], d[1], d[2], y, 0);
            double direct = ReferenceConv.maxRelError(y, ref);
            System.out.printf("WinogradTest: %d channels at %dx%d: max relative error %.2e (direct %.2e)%n", l[0], l[1], l[1], winograd, direct);
            assertTrue(winograd <= io.github.jconv.Autotuner.TOLERANCE, g + ": " + winograd);
        }
    }

    /** The element-wise bound is not vacuous: one output moved by 1e-2 of the largest fails it. */
    @Test
    void theBoundCatchesASmallError() {
        ConvGeometry g = ConvGeometry.conv2d(new int[] {1, 32, 12, 12}, new int[] {16, 32, 3, 3}, null, ConvSpec.builder().padding(1).build());
        float[][] d = TestSupport.data(g, 3);
        float[] y = new float[Math.toIntExact(Tensor.elementCount(g.outputShape()))];
        CpuBackend.INSTANCE.run(Algorithm.WINOGRAD, g, d[0], d[1], d[2], y, 1);
        TestSupport.Oracle oracle = TestSupport.oracle(CpuBackend.INSTANCE, Algorithm.WINOGRAD, g, d[0], d[1], d[2]);
        assertNull(oracle.check(y));
        float max = 0;
        for (float v : y) {
            max = Math.max(max, Math.abs(v));
        }
        double[] mag = WinogradBound.magnitude(g, d[0], d[1], d[2]);
        double widest = 0;
        for (double m : mag) {
            widest = Math.max(widest, WinogradBound.factor(g) * m / max);
        }
        System.out.printf("WinogradTest: the bound is at most %.2e of the largest output%n", widest);
        assertTrue(widest < 1e-2, "the bound allows " + widest + " of the largest output");
        y[77] += 1e-2f * max;
        assertNotNull(oracle.check(y), "an error of 1e-2 of the largest output passed the bound");
    }

    /**
     * A NaN or infinity in the input or the weights: the direct kernel's result, bit for bit, not NaN over whole tiles. With
     * 8 channels the input is blocked element by element; with 32, on 16 lanes, through the registers (its own check: the
     * lanes' max of |x|), so a NaN alone and an infinity alone are each caught there.
     */
    @Test
    void nonFiniteOperandsRunTheDirectKernel() {
        for (int c : new int[] {8, 32}) {
            ConvGeometry g = ConvGeometry.conv2d(new int[] {2, c, 9, 9}, new int[] {20, c, 3, 3}, new int[] {20}, ConvSpec.builder().padding(1).build());
            float[][] d = TestSupport.data(g, 9);
            int len = Math.toIntExact(Tensor.elementCount(g.outputShape()));
            float[] nanX = d[0].clone(), infX = d[0].clone(), badW = d[1].clone();
            nanX[100] = Float.NaN;
            infX[c * 81 + 333] = Float.POSITIVE_INFINITY; // sample 1
            badW[17] = Float.NEGATIVE_INFINITY;
            for (float[][] ops : new float[][][] {{nanX, d[1]}, {infX, d[1]}, {d[0], badW}}) {
                float[] direct = new float[len], winograd = new float[len], kept = new float[len];
                CpuBackend.INSTANCE.run(Algorithm.DIRECT, g, ops[0], ops[1], d[2], direct, 2);
                CpuBackend.INSTANCE.run(Algorithm.WINOGRAD, g, ops[0], ops[1], d[2], winograd, 2);
                CpuBackend.INSTANCE.run(Algorithm.WINOGRAD, g, ops[0], Weights.kept(ops[1].clone()), d[2], Epilogue.none(), null, kept, 2);
                assertArrayEquals(direct, winograd, 0f);
                assertArrayEquals(direct, kept, 0f);
                long finite = 0;
                for (float v : winograd) {
                    finite += Float.isFinite(v) ? 1 : 0;
                }
                assertTrue(finite > len / 2, "most outputs read no non-finite value: " + finite + " of " + len);
            }
            float[] again = new float[len];
            CpuBackend.INSTANCE.run(Algorithm.WINOGRAD, g, d[0], d[1], d[2], again, 2); // finite again: Winograd, within its bound
            assertNull(TestSupport.oracle(CpuBackend.INSTANCE, Algorithm.WINOGRAD, g, d[0], d[1], d[2]).check(again));
        }
    }

    @Test
    void refusesWhatItCannotCompute() {
        ConvSpec pad = ConvSpec.builder().padding(1).build();
        String[][] cases = {
                {"5x5", "winograd needs a 3x3 kernel, stride 1 and dilation 1, got 5x5 stride 1x1 dilation 1x1"},
                {"stride", "winograd needs a 3x3 kernel, stride 1 and dilation 1, got 3x3 stride 2x2 dilation 1x1"},
                {"dilation", "winograd needs a 3x3 kernel, stride 1 and dilation 1, got 3x3 stride 1x1 dilation 2x2"},
                {"groups", "winograd needs groups == 1 (grouped layers: direct), got groups=2"},
                {"transposed stride 2", "winograd needs a 3x3 kernel, stride 1 and dilation 1, got 3x3 stride 2x2 dilation 1x1"},
                {"transposed, padding 3", "winograd runs conv_transpose2d as a forward convolution, which needs padding (less the output"
                        + " padding) of at most 2 at each side, got 3,3,3,3"},
        };
        ConvGeometry[] g = {
                ConvGeometry.conv2d(new int[] {1, 4, 8, 8}, new int[] {4, 4, 5, 5}, null, pad),
                ConvGeometry.conv2d(new int[] {1, 4, 8, 8}, new int[] {4, 4, 3, 3}, null, ConvSpec.builder().stride(2).padding(1).build()),
                ConvGeometry.conv2d(new int[] {1, 4, 8, 8}, new int[] {4, 4, 3, 3}, null, ConvSpec.builder().dilation(2).padding(2).build()),
                ConvGeometry.conv2d(new int[] {1, 4, 8, 8}, new int[] {4, 2, 3, 3}, null, ConvSpec.builder().groups(2).padding(1).build()),
                ConvGeometry.convTranspose2d(new int[] {1, 4, 8, 8}, new int[] {4, 4, 3, 3}, null, ConvSpec.builder().stride(2).padding(1).build()),
                ConvGeometry.convTranspose2d(new int[] {1, 4, 8, 8}, new int[] {4, 4, 3, 3}, null, ConvSpec.builder().padding(3).build()),
        };
        for (int i = 0; i < g.length; i++) {
            assertEquals(cases[i][1], CpuBackend.INSTANCE.cannotImplement(Algorithm.WINOGRAD, g[i]), cases[i][0]);
        }
    }
}
