package io.github.jconv.cuda;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvPlan;
import io.github.jconv.ConvSpec;
import io.github.jconv.Device;
import io.github.jconv.Dtype;
import io.github.jconv.Epilogue;
import io.github.jconv.InvalidConvolutionException;
import io.github.jconv.MathMode;
import io.github.jconv.ShapeTableTest;
import io.github.jconv.Tensor;
import io.github.jconv.TestSupport;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The implicit GEMM's tensor-core kernels (cuda-kernels/jconv_mma_mainloop.cuh; math tf32, 3xtf32, fp16, bf16) through plans, on
 * the emulator (its mma.sync follows the PTX ISA's per-lane fragment layout, so a wrong lane mapping fails here) and on a
 * GPU where there is one: every tile on the shape table in both directions against the oracle of the math
 * ({@link TestSupport#oracle(ConvGeometry, MathMode, float[], float[], float[])}: tf32, fp16 and bf16 against the float64
 * convolution of the operands rounded as the math rounds them, 3xtf32 against the plain one within FP32-level bounds), split-K, the epilogue, non-finite
 * values, and that tf32 really rounds (it fails FP32's bound on data TF32 cannot hold) while 3xtf32 does not.
 */
class TensorCoreTest {
    private static final MathMode[] TENSOR_CORE_MATHS = TestSupport.TENSOR_CORE_MATHS;

    static Stream<Arguments> backendsMathsAndTiles() {
        return Stream.of("cuda-emu", "cuda").flatMap(b -> Stream.of(TENSOR_CORE_MATHS)
                .flatMap(m -> ImplicitGemmLauncher.TILES.stream().map(t -> Arguments.of(b, m, t))));
    }

    static Stream<Arguments> backendsAndMaths() {
        return Stream.of("cuda-emu", "cuda").flatMap(b -> Stream.of(TENSOR_CORE_MATHS).map(m -> Arguments.of(b, m)));
    }

    private static Device open(String name) {
        CudaBackend b = name.equals("cuda") ? CudaBackend.CUDA : CudaBackend.EMU;
        Assumptions.assumeTrue(b.unavailableReason() == null, () -> name + ": " + b.unavailableReason());
        Assumptions.assumeTrue(b.cannotUseMath(MathMode.TF32) == null, () -> name + ": " + b.cannotUseMath(MathMode.TF32));
        return Device.open(name);
    }

    /** y of one plan with this math (and epilogue, residual), built and run on dev. */
    private static float[] run(Device dev, MathMode math, ConvGeometry g, float[][] d, Epilogue ep, float[] residual) {
        try (ConvPlan plan = ConvPlan.of(dev, g, Tensor.of(d[1], g.weightShape()), d[2] == null ? null : Tensor.of(d[2], g.biasLength()))
                .algorithm(Algorithm.IMPLICIT_GEMM).math(math).epilogue(ep).build()) {
            return plan.run(Tensor.of(d[0], g.inputShape()), residual == null ? null : Tensor.of(residual, g.outputShape())).data();
        }
    }

    private static void assertMatches(String what, MathMode math, ConvGeometry g, float[][] d, Epilogue ep, float[] residual, float[] y) {
        String why = TestSupport.oracle(g, math, d[0], d[1], d[2], ep, residual).check(y);
        assertNull(why, () -> what + " math " + math.label() + " on " + g + ": " + why + TestSupport.scheduleNote(what));
    }

    @ParameterizedTest(name = "{0} {1} tile {2}")
    @MethodSource("backendsMathsAndTiles")
    void everyTileMatchesItsOracleOnTheShapeTable(String backend, MathMode math, GemmTile tile) {
        ImplicitGemmLauncher.forcedTile = tile;
        try (Device dev = open(backend)) {
            int layers = 0;
            for (ConvGeometry g : ShapeTableTest.geometries()) {
                float[][] d = TestSupport.data(g, 41);
                assertMatches(backend + "/" + ImplicitGemmLauncher.kernel(tile, g.transposed(), math), math, g, d, Epilogue.none(), null,
                        run(dev, math, g, d, Epilogue.none(), null));
                layers++;
            }
            assertEquals(ShapeTableTest.geometries().size(), layers);
        } finally {
            ImplicitGemmLauncher.forcedTile = null;
        }
    }

    static Stream<Arguments> backendsHalvesAndTiles() {
        return Stream.of("cuda-emu", "cuda").flatMap(b -> Stream.of(MathMode.FP16, MathMode.BF16)
                .flatMap(m -> Stream.concat(ImplicitGemmLauncher.TILES.stream().map(t -> Arguments.of(b, m, t, 0)), Stream.of(Arguments.of(b, m, null, 3)))));
    }

    /**
     * Half-precision tensors in their own math (fp16 tensors in math fp16, bf16 in bf16): the <fp16|bf16>io kernels load
     * the 16-bit elements as they are and round the result as they store it, which must give exactly the float32 tensors'
     * run of the same math on the operands rounded to the format, rounded: every tile on the shape table with a residual
     * epilogue, and split-K in 3 slices (its reduction storing 16 bits).
     */
    @ParameterizedTest(name = "{0} {1} tile {2} splits {3}")
    @MethodSource("backendsHalvesAndTiles")
    void halfTensorsAreLoadedAsStoredAndGiveTheRoundedFloatRun(String backend, MathMode math, GemmTile tile, int splits) {
        Dtype d = math.operandDtype();
        ImplicitGemmLauncher.forcedTile = tile;
        ImplicitGemmLauncher.forcedSplits = splits;
        Epilogue ep = Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION);
        try (Device dev = open(backend)) {
            int layers = 0;
            for (ConvGeometry g : ShapeTableTest.geometries()) {
                float[][] d0 = TestSupport.data(g, 45);
                float[][] dr = {d.round(d0[0]), d.round(d0[1]), d0[2] == null ? null : d.round(d0[2])};
                float[] res = d.round(TestSupport.gaussian(new Random(46), Tensor.elementCount(g.outputShape())));
                Tensor w = Tensor.of(d0[1], g.weightShape()), b = d0[2] == null ? null : Tensor.of(d0[2], g.biasLength());
                float[] y;
                try (ConvPlan plan = ConvPlan.of(dev, g, w, b).algorithm(Algorithm.IMPLICIT_GEMM).math(math).dtype(d).epilogue(ep).build()) {
                    String why = plan.explain();
                    assertTrue(why.contains("jconv_implicit_gemm_" + d.label() + "io_") && why.contains("loaded and stored as " + d.label()), why);
                    y = plan.run(Tensor.of(d0[0], g.inputShape()), Tensor.of(res, g.outputShape())).data();
                }
                float[] want = d.round(run(dev, math, g, dr, ep, res));
                String what = backend + " " + d.label() + " tensors, tile " + tile + ", splits " + splits + ", " + g;
                org.junit.jupiter.api.Assertions.assertArrayEquals(want, y, 0f, () -> what + TestSupport.scheduleNote(what));
                layers++;
            }
            assertEquals(ShapeTableTest.geometries().size(), layers);
        } finally {
            ImplicitGemmLauncher.forcedTile = null;
            ImplicitGemmLauncher.forcedSplits = 0;
        }
    }

    /** Split-K in 3 slices (the partial tiles in the workspace, the epilogue in the reduction) with a residual. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("backendsAndMaths")
    void splitKAndTheEpilogue(String backend, MathMode math) {
        ImplicitGemmLauncher.forcedSplits = 3;
        try (Device dev = open(backend)) {
            for (ConvGeometry g : new ConvGeometry[] {
                    ConvGeometry.conv2d(new int[] {2, 20, 9, 11}, new int[] {70, 10, 3, 3}, new int[] {70}, ConvSpec.builder().padding(1).groups(2).build()),
                    ConvGeometry.convTranspose2d(new int[] {2, 24, 5, 6}, new int[] {24, 10, 3, 3}, new int[] {10},
                            ConvSpec.builder().stride(2).padding(1).build())}) {
                float[][] d = TestSupport.data(g, 43);
                float[] residual = TestSupport.gaussian(new Random(44), Tensor.elementCount(g.outputShape()));
                Epilogue ep = Epilogue.of(Epilogue.Activation.SILU).withResidual(Epilogue.Residual.AFTER_ACTIVATION);
                assertMatches(backend + " split-K " + ImplicitGemmLauncher.splits(g), math, g, d, ep, residual, run(dev, math, g, d, ep, residual));
            }
        } finally {
            ImplicitGemmLauncher.forcedSplits = 0;
        }
    }

    /**
     * tf32, fp16 and bf16 round: on Gaussian data (24 significant bits) each result is outside FP32's bound, and each
     * meets FP32's bound where the data are exact in all three (multiples of 1/8 below 16: at most 8 significant bits).
     * 3xtf32 stays within FP32-level bounds on the same Gaussian data (the everyTile test) and differs from tf32.
     */
    @Test
    void roundingMathsRoundTheOperandsAndThreeTf32DoesNot() {
        try (Device dev = open("cuda-emu")) {
            ConvGeometry g = ConvGeometry.conv2d(new int[] {1, 32, 8, 8}, new int[] {16, 32, 3, 3}, null, ConvSpec.builder().padding(1).build());
            float[][] d = TestSupport.data(g, 45);
            float[] tf32 = run(dev, MathMode.TF32, g, d, Epilogue.none(), null), x3 = run(dev, MathMode.TF32X3, g, d, Epilogue.none(), null);
            String why3 = TestSupport.oracle(g, MathMode.TF32X3, d[0], d[1], d[2]).check(x3);
            assertNull(why3, () -> "3xtf32: " + why3);
            assertTrue(!java.util.Arrays.equals(tf32, x3), "3xtf32 computes more than tf32");
            Random rnd = new Random(46);
            float[][] exact = {new float[d[0].length], new float[d[1].length], null};
            for (float[] a : new float[][] {exact[0], exact[1]}) {
                for (int i = 0; i < a.length; i++) {
                    a[i] = (rnd.nextInt(256) - 128) / 8f;
                }
            }
            for (MathMode m : TENSOR_CORE_MATHS) {
                if (m != MathMode.TF32X3) {
                    assertNotNull(TestSupport.oracle(g, d[0], d[1], d[2]).check(run(dev, m, g, d, Epilogue.none(), null)),
                            () -> m.label() + " on Gaussian data must miss FP32's bound");
                }
                String why = TestSupport.oracle(g, exact[0], exact[1], null).check(run(dev, m, g, exact, Epilogue.none(), null));
                assertNull(why, () -> m.label() + " on data exact in every math: " + why);
            }
        }
    }

    /**
     * fp16 and bf16 round each operand exactly as {@link Dtype#round} (cvt.rn): one input channel times one weight of 1
     * (and ones times each weight) gives back the rounded value, at the edges of each format: ties to even, the largest
     * finite values and the first that overflow to infinity, fp16's subnormals and what underflows to zero, bf16's
     * subnormals, infinities and NaN.
     */
    @ParameterizedTest
    @EnumSource(value = MathMode.class, names = {"FP16", "BF16"})
    void halfMathsRoundEachOperandToNearestEven(MathMode math) {
        float[] edges = {1 / 3f, -2.5f, 1 + 0x1p-11f, 1 + 3 * 0x1p-11f, 1 + 0x1p-8f, 1 + 3 * 0x1p-8f, 65504f, 65519.99f, 65520f, 70000f,
                -70000f, 0x1p-14f, 6.0e-5f, 0x1p-25f, Math.nextUp(0x1p-25f), 1e-8f, -0f, 3.3895314e38f, 3.4e38f, 1e-39f,
                Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN};
        Dtype dtype = math == MathMode.FP16 ? Dtype.FP16 : Dtype.BF16;
        try (Device dev = open("cuda-emu")) {
            // the edges as the input (one channel, weight 1), then as the weights (ones in)
            ConvGeometry gx = ConvGeometry.conv2d(new int[] {1, 1, 1, edges.length}, new int[] {1, 1, 1, 1}, null, ConvSpec.builder().build());
            float[] yx = run(dev, math, gx, new float[][] {edges, {1f}, null}, Epilogue.none(), null);
            ConvGeometry gw = ConvGeometry.conv2d(new int[] {1, 1, 1, 1}, new int[] {edges.length, 1, 1, 1}, null, ConvSpec.builder().build());
            float[] yw = run(dev, math, gw, new float[][] {{1f}, edges, null}, Epilogue.none(), null);
            for (int i = 0; i < edges.length; i++) {
                float want = dtype.round(edges[i]);
                for (float got : new float[] {yx[i], yw[i]}) {
                    assertTrue(got == want || Float.isNaN(got) && Float.isNaN(want),
                            math.label() + " of " + edges[i] + ": " + got + ", expected " + want);
                }
            }
        }
    }

    /** An infinite or NaN input reaches exactly the outputs that read it, as in FP32 (3xtf32's small part of infinity is 0, not NaN). */
    @ParameterizedTest
    @EnumSource(value = MathMode.class, mode = EnumSource.Mode.EXCLUDE, names = "FP32") // every tensor-core math
    void nonFiniteValuesPropagateAsInFp32(MathMode math) {
        try (Device dev = open("cuda-emu")) {
            ConvGeometry g = ConvGeometry.conv2d(new int[] {1, 8, 6, 6}, new int[] {8, 8, 3, 3}, null, ConvSpec.builder().padding(1).build());
            float[][] d = TestSupport.data(g, 47);
            for (int i = 0; i < d[1].length; i++) {
                d[1][i] = Math.abs(d[1][i]); // positive weights: an infinity cannot meet its opposite
            }
            d[0][1 * 36 + 2 * 6 + 3] = Float.POSITIVE_INFINITY;
            d[0][5 * 36] = Float.NaN;
            assertMatches("cuda-emu", math, g, d, Epilogue.none(), null, run(dev, math, g, d, Epilogue.none(), null));
            // conv_transpose2d (dgrad) with an infinite weight: every output it reaches is infinite, the others finite
            ConvGeometry t = ConvGeometry.convTranspose2d(new int[] {1, 8, 5, 5}, new int[] {8, 6, 3, 3}, null,
                    ConvSpec.builder().stride(2).padding(1).build());
            float[][] e = TestSupport.data(t, 49);
            for (int i = 0; i < e[0].length; i++) {
                e[0][i] = Math.abs(e[0][i]);
            }
            e[1][2 * 54 + 3 * 9 + 4] = Float.NEGATIVE_INFINITY;
            assertMatches("cuda-emu", math, t, e, Epilogue.none(), null, run(dev, math, t, e, Epilogue.none(), null));
        }
    }

    /** auto with a tensor-core math takes the implicit GEMM; explain names the kernel; what cannot run says why in one line. */
    @Test
    void plansNameTheTensorCoreKernelAndRefuseWhatCannotRun() {
        ConvGeometry g = ConvGeometry.conv2d(new int[] {1, 16, 8, 8}, new int[] {32, 16, 3, 3}, null, ConvSpec.builder().padding(1).build());
        float[][] d = TestSupport.data(g, 48);
        try (Device dev = open("cuda-emu");
             ConvPlan plan = ConvPlan.of(dev, g, Tensor.of(d[1], g.weightShape()), null).math(MathMode.TF32X3).build();
             ConvPlan direct = ConvPlan.of(dev, g, Tensor.of(d[1], g.weightShape()), null).algorithm(Algorithm.DIRECT).math(MathMode.TF32).build()) {
            assertEquals(Algorithm.IMPLICIT_GEMM, plan.algorithm());
            assertTrue(plan.explain().contains("kernel jconv_implicit_gemm_3xtf32_fprop_64x64") && plan.explain().contains("math 3xtf32"),
                    plan.explain());
            assertTrue(direct.explain().contains("math tf32 (allowed; direct computes in fp32)"), direct.explain());
        }
        try (Device dev = open("cuda-emu");
             ConvPlan plan = ConvPlan.of(dev, g, Tensor.of(d[1], g.weightShape()), null).math(MathMode.BF16).build()) {
            assertTrue(plan.explain().contains("kernel jconv_implicit_gemm_bf16_fprop_64x64") && plan.explain().contains("m16n8k16 BF16"),
                    plan.explain());
        }
        try (Device cpu = Device.open("cpu")) {
            assertEquals("math 3xtf32: backend 'cpu' computes in strict float32 only (math fp32)", assertThrows(InvalidConvolutionException.class,
                    () -> ConvPlan.of(cpu, g, Tensor.of(d[1], g.weightShape()), null).math(MathMode.TF32X3).build()).getMessage());
        }
        assertEquals("cuDNN has no 3xTF32 math (fp32 is CUDNN_FMA_MATH, tf32 its default math)", CudnnBackend.INSTANCE.cannotUseMath(MathMode.TF32X3));
        assertEquals("the cudnn backend computes float32 tensors in fp32 or tf32 only; math fp16 runs on the cuda backend's tensor-core kernels",
                CudnnBackend.INSTANCE.cannotUseMath(MathMode.FP16));
        assertEquals("jconv_implicit_gemm_tf32_dgrad_128x64", ImplicitGemmLauncher.kernel(GemmTile.T128X64, true, MathMode.TF32));
        assertEquals("jconv_implicit_gemm_fprop_64x64", ImplicitGemmLauncher.kernel(GemmTile.T64X64, false, MathMode.FP32));
        assertEquals("jconv_implicit_gemm_fp16_dgrad_128x128", ImplicitGemmLauncher.kernel(GemmTile.T128X128, true, MathMode.FP16));
    }
}
