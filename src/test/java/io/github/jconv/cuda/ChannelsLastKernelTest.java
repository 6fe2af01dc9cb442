package io.github.jconv.cuda;

import io.github.jconv.Algorithm;
import io.github.jconv.ConvGeometry;
import io.github.jconv.ConvPlan;
import io.github.jconv.ConvSpec;
import io.github.jconv.Device;
import io.github.jconv.Dtype;
import io.github.jconv.Epilogue;
import io.github.jconv.Layout;
import io.github.jconv.MathMode;
import io.github.jconv.Padding;
import io.github.jconv.Tensor;
import io.github.jconv.TestSupport;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The channels-last kernels (cuda-kernels/implicit_gemm_nhwc.cu: NHWC fp16 / bf16 tensors in their own math on mma.sync
 * m16n8k16, float32 tensors in tf32 / 3xtf32 on m16n8k8; cp.async pipeline, ldmatrix fragments) through plans, on the emulator (ldmatrix and mma.sync per the PTX
 * ISA's lane layouts, cp.async copies that land only at the wait, shared memory NaN at each block's start) and on a GPU
 * where there is one.
 */
class ChannelsLastKernelTest {
    /**
     * Layers the kernels take, chosen for their edges: pixels past the last tile (N x P x Q not a multiple of 64 or 128),
     * output channels past the last tile and more than one channel tile (K = 10, 70), channel steps with zero-filled
     * chunks (halfs: C = 48: 32 + 16; C = 8, 24, 40, 72; floats: 8, 24, 40, 72), padding on every side (asymmetric too), stride, dilation, 1 x 1 and
     * non-square windows, no bias; split into 3, the last layer's slices start inside a tap (3 channel steps per tap, 2
     * steps per slice; floats: 5 steps per tap, 4 per slice).
     */
    static final List<ConvGeometry> LAYERS = List.of(
            conv(new int[] {2, 16, 9, 11}, new int[] {10, 16, 3, 3}, true, ConvSpec.builder().padding(1).build()),
            conv(new int[] {1, 32, 8, 8}, new int[] {70, 32, 1, 1}, true, ConvSpec.builder().build()),
            conv(new int[] {2, 64, 7, 9}, new int[] {6, 64, 3, 3}, false, ConvSpec.builder().stride(2).padding(Padding.of(0, 2, 1, 1)).build()),
            conv(new int[] {1, 48, 6, 6}, new int[] {8, 48, 3, 3}, true, ConvSpec.builder().padding(2).dilation(2).build()),
            conv(new int[] {1, 8, 5, 5}, new int[] {4, 8, 3, 3}, true, ConvSpec.builder().padding(1).build()),
            conv(new int[] {3, 40, 6, 5}, new int[] {12, 40, 2, 3}, true, ConvSpec.builder().stride(1, 2).padding(1, 0).build()),
            conv(new int[] {1, 24, 12, 12}, new int[] {66, 24, 5, 5}, true, ConvSpec.builder().stride(2).padding(2).build()),
            conv(new int[] {1, 72, 5, 6}, new int[] {14, 72, 1, 2}, true, ConvSpec.builder().build()));

    private static ConvGeometry conv(int[] x, int[] w, boolean bias, ConvSpec spec) {
        return ConvGeometry.of(ConvGeometry.Op.CONV2D, x, w, bias ? new int[] {w[0]} : null, spec);
    }

    static Stream<Arguments> backendsMathsTilesAndSplits() {
        return Stream.of("cuda-emu", "cuda").flatMap(b -> Stream.of(MathMode.FP16, MathMode.BF16, MathMode.TF32, MathMode.TF32X3)
                .flatMap(m -> ImplicitGemmNhwcLauncher.TILES.stream().flatMap(t -> Stream.of(1, 3).map(k -> Arguments.of(b, m, t, k)))));
    }

    private static Device open(String name, MathMode math) {
        CudaBackend b = name.equals("cuda") ? CudaBackend.CUDA : CudaBackend.EMU;
        Assumptions.assumeTrue(b.unavailableReason() == null, () -> name + ": " + b.unavailableReason());
        Assumptions.assumeTrue(b.cannotUseMath(math) == null, () -> name + ": " + b.cannotUseMath(math));
        return Device.open(name);
    }

    /** The tensors' format in a math of the kernels: fp16 / bf16 in their own, float32 in tf32 and 3xtf32. */
    private static Dtype storage(MathMode math) {
        return math.halfOperands() ? math.operandDtype() : Dtype.FP32;
    }

    /**
     * Every layer, tile and math with a residual epilogue, in one slice and split-K into 3 (as many as the layer has
     * steps). Halfs: within one rounding of the result (and float32's sums) of the float64 reference on the rounded
     * operands; floats: within the math's bound of {@link TestSupport#oracle} (tf32: on operands rounded to TF32; 3xtf32:
     * FP32's bound over three terms a product). And in one slice, bit for bit the NCHW tensors' run of the same math and
     * format (the NCHW kernels, in one slice too) where their MMA steps hold the same channels of the same tap: C a
     * multiple of 16 for halfs (16-deep MMAs), of 8 for floats (8-deep).
     */
    @ParameterizedTest(name = "{0} {1} tile {2} splits {3}")
    @MethodSource("backendsMathsTilesAndSplits")
    void nhwcPlansRunOnTheChannelsLastKernels(String backend, MathMode math, GemmTile tile, int splits) {
        Dtype d = storage(math);
        int mmaDepth = d == Dtype.FP32 ? 8 : 16;
        Epilogue ep = Epilogue.of(Epilogue.Activation.RELU).withResidual(Epilogue.Residual.BEFORE_ACTIVATION);
        ImplicitGemmNhwcLauncher.forcedTile = tile;
        ImplicitGemmNhwcLauncher.forcedSplits = splits;
        ImplicitGemmLauncher.forcedSplits = 1;
        try (Device dev = open(backend, math)) {
            int exact = 0, aligned = 0;
            for (ConvGeometry g : LAYERS) {
                String what = backend + " " + d.label() + " in " + math.label() + " tile " + tile + " " + g;
                float[][] d0 = TestSupport.data(g, 51);
                Tensor x = Tensor.of(d.round(d0[0]), g.inputShape());
                Tensor w = Tensor.of(d.round(d0[1]), g.weightShape()), b = d0[2] == null ? null : Tensor.of(d.round(d0[2]), g.biasLength());
                Tensor r = Tensor.of(d.round(TestSupport.gaussian(new Random(52), Tensor.elementCount(g.outputShape()))), g.outputShape());
                Tensor y;
                try (ConvPlan plan = ConvPlan.of(dev, g, w, b).algorithm(Algorithm.IMPLICIT_GEMM).math(math).dtype(d).epilogue(ep)
                        .layout(Layout.NHWC).build()) {
                    String why = plan.explain();
                    assertTrue(why.contains(ImplicitGemmNhwcLauncher.kernel(tile, math, d)) && why.contains("layout nhwc (read and written as it is by the kernel)")
                            && (d == Dtype.FP32 || why.contains("loaded and stored as " + d.label())) && why.contains("tile " + tile + " (forced by a test)"), why);
                    int slices = Math.min(splits, ImplicitGemmNhwcLauncher.steps(g, d));
                    assertTrue(why.contains(slices > 1 ? "split-K into " + slices + " slices" : "no split-K"), why);
                    y = plan.run(x.to(Layout.NHWC), r.to(Layout.NHWC));
                }
                assertEquals(Layout.NHWC, y.layout());
                float[] got = y.to(Layout.NCHW).data();
                if (d == Dtype.FP32) {
                    String bad = TestSupport.oracle(g, math, x.data(), w.data(), b == null ? null : b.data(), ep, r.data()).check(got);
                    assertNull(bad, () -> what + ": " + bad + TestSupport.scheduleNote(what));
                } else {
                    double[] ref = TestSupport.oracle(g, x.data(), w.data(), b == null ? null : b.data(), ep, r.data()).reference();
                    double max = Arrays.stream(ref).map(Math::abs).max().orElse(0), unit = d == Dtype.FP16 ? 0x1p-11 : 0x1p-8;
                    for (int i = 0; i < ref.length; i++) {
                        int at = i;
                        assertTrue(Math.abs(got[i] - ref[i]) <= unit * Math.abs(ref[i]) + 1e-5 * max,
                                () -> what + ": element " + at + " is " + got[at] + ", reference " + ref[at] + TestSupport.scheduleNote(what));
                    }
                }
                if (g.c % mmaDepth == 0) {
                    aligned++;
                }
                if (g.c % mmaDepth == 0 && splits == 1) {
                    float[] want;
                    try (ConvPlan nchw = ConvPlan.of(dev, g, w, b).algorithm(Algorithm.IMPLICIT_GEMM).math(math).dtype(d).epilogue(ep).build()) {
                        want = nchw.run(x, r).data();
                    }
                    assertArrayEquals(want, got, 0f, () -> what + ": against the NCHW kernels" + TestSupport.scheduleNote(what));
                    exact++;
                }
            }
            assertEquals(splits == 1 ? aligned : 0, exact);
            assertEquals(d == Dtype.FP32 ? LAYERS.size() : 4, aligned, "layers whose MMA steps align with the NCHW kernels'");
        } finally {
            ImplicitGemmNhwcLauncher.forcedTile = null;
            ImplicitGemmNhwcLauncher.forcedSplits = 0;
            ImplicitGemmLauncher.forcedSplits = 0;
        }
    }

    /**
     * An infinite or NaN input reaches the outputs that read it as in the NCHW kernels of the same math (and so as in FP32:
     * TensorCoreTest): 3xtf32 leaves such values out of its cross terms, where infinity times a weight's small part, of
     * either sign or zero, would make NaN.
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(value = MathMode.class, names = {"TF32", "TF32X3"})
    void nonFiniteInputsAsTheNchwKernels(MathMode math) {
        ConvGeometry g = conv(new int[] {1, 8, 6, 6}, new int[] {8, 8, 3, 3}, false, ConvSpec.builder().padding(1).build());
        float[][] d = TestSupport.data(g, 47);
        for (int i = 0; i < d[1].length; i++) {
            d[1][i] = Math.abs(d[1][i]); // positive weights: an infinity cannot meet its opposite
        }
        d[0][1 * 36 + 2 * 6 + 3] = Float.POSITIVE_INFINITY;
        d[0][5 * 36] = Float.NaN;
        Tensor x = Tensor.of(d[0], g.inputShape()), w = Tensor.of(d[1], g.weightShape());
        ImplicitGemmNhwcLauncher.forcedSplits = 1; // both in one slice: the same sums in the same order
        ImplicitGemmLauncher.forcedSplits = 1;
        try (Device dev = open("cuda-emu", math);
             ConvPlan nhwc = ConvPlan.of(dev, g, w, null).algorithm(Algorithm.IMPLICIT_GEMM).math(math).layout(Layout.NHWC).build();
             ConvPlan nchw = ConvPlan.of(dev, g, w, null).algorithm(Algorithm.IMPLICIT_GEMM).math(math).build()) {
            assertTrue(nhwc.explain().contains("read and written as it is by the kernel"), nhwc.explain());
            float[] got = nhwc.run(x.to(Layout.NHWC), null).to(Layout.NCHW).data(), want = nchw.run(x, null).data();
            assertArrayEquals(want, got, 0f, math.label());
            long infinite = IntStream.range(0, want.length).filter(i -> want[i] == Float.POSITIVE_INFINITY).count();
            long nan = IntStream.range(0, want.length).filter(i -> Float.isNaN(want[i])).count();
            assertEquals(8L * 9, infinite, "every channel's 3 x 3 outputs around the infinity");
            assertEquals(8L * 4, nan, "every channel's outputs that read the NaN in the corner");
            // an infinite weight (output channel 2, input channel 3, the centre tap) on positive inputs
            float[] xp = d[0].clone(), wi = TestSupport.data(g, 48)[1];
            for (int i = 0; i < xp.length; i++) {
                xp[i] = Math.abs(TestSupport.data(g, 48)[0][i]);
            }
            wi[(2 * 8 + 3) * 9 + 4] = Float.POSITIVE_INFINITY;
            Tensor xt = Tensor.of(xp, g.inputShape()), wt = Tensor.of(wi, g.weightShape());
            try (ConvPlan nhwcW = ConvPlan.of(dev, g, wt, null).algorithm(Algorithm.IMPLICIT_GEMM).math(math).layout(Layout.NHWC).build();
                 ConvPlan nchwW = ConvPlan.of(dev, g, wt, null).algorithm(Algorithm.IMPLICIT_GEMM).math(math).build()) {
                float[] gotW = nhwcW.run(xt.to(Layout.NHWC), null).to(Layout.NCHW).data(), wantW = nchwW.run(xt, null).data();
                assertArrayEquals(wantW, gotW, 0f, math.label() + ", an infinite weight");
                assertEquals(36L, IntStream.range(0, wantW.length).filter(i -> wantW[i] == Float.POSITIVE_INFINITY).count(),
                        "output channel 2 at every pixel");
            }
        } finally {
            ImplicitGemmNhwcLauncher.forcedSplits = 0;
            ImplicitGemmLauncher.forcedSplits = 0;
        }
    }

    /** What the kernels do not take converts around the NCHW kernels, and the plan says why; the launcher refuses it outright. */
    @Test
    void whatTheKernelsCannotTakeConvertsAndSaysWhy() {
        ConvGeometry odd = conv(new int[] {1, 6, 5, 5}, new int[] {4, 6, 3, 3}, true, ConvSpec.builder().padding(1).build());
        ConvGeometry grouped = conv(new int[] {1, 16, 5, 5}, new int[] {8, 8, 3, 3}, false, ConvSpec.builder().groups(2).build());
        ConvGeometry oddK = conv(new int[] {1, 8, 5, 5}, new int[] {3, 8, 1, 1}, false, ConvSpec.builder().build());
        ConvGeometry transposed = ConvGeometry.of(ConvGeometry.Op.CONV_TRANSPOSE2D, new int[] {1, 8, 4, 4}, new int[] {8, 8, 3, 3}, null,
                ConvSpec.builder().stride(2).build());
        ConvGeometry twelve = conv(new int[] {1, 12, 5, 5}, new int[] {4, 12, 3, 3}, true, ConvSpec.builder().padding(1).build());
        assertTrue(ImplicitGemmNhwcLauncher.cannotImplement(odd, Dtype.FP16).contains("6 input channels, not a multiple of 8"));
        assertTrue(ImplicitGemmNhwcLauncher.cannotImplement(odd, Dtype.FP32).contains("6 input channels, not a multiple of 4 (the kernels copy 4 fp32"));
        assertTrue(ImplicitGemmNhwcLauncher.cannotImplement(twelve, Dtype.BF16).contains("12 input channels, not a multiple of 8"));
        assertNull(ImplicitGemmNhwcLauncher.cannotImplement(twelve, Dtype.FP32), "12 floats are three 16-byte chunks");
        assertTrue(ImplicitGemmNhwcLauncher.cannotImplement(grouped, Dtype.FP32).contains("2 groups"));
        assertTrue(ImplicitGemmNhwcLauncher.cannotImplement(oddK, Dtype.FP16).contains("3 output channels, an odd number"));
        assertTrue(ImplicitGemmNhwcLauncher.cannotImplement(transposed, Dtype.FP32).contains("conv_transpose2d"));
        assertNull(ImplicitGemmNhwcLauncher.cannotImplement(LAYERS.get(0), Dtype.FP16));
        assertThrows(IllegalArgumentException.class, () -> ImplicitGemmNhwcLauncher.run(null, odd, MathMode.FP16, Dtype.FP16, null, null, null,
                Epilogue.none(), null, null));
        assertThrows(IllegalArgumentException.class, () -> ImplicitGemmNhwcLauncher.run(null, LAYERS.get(0), MathMode.FP32, Dtype.FP32, null,
                null, null, Epilogue.none(), null, null), "float32 in fp32 math stays on the NCHW FFMA kernels");
        assertThrows(IllegalArgumentException.class, () -> ImplicitGemmNhwcLauncher.run(null, LAYERS.get(0), MathMode.TF32, Dtype.FP16, null,
                null, null, Epilogue.none(), null, null));
        assertThrows(IllegalArgumentException.class, () -> ImplicitGemmNhwcLauncher.run(null, LAYERS.get(0), MathMode.FP32, Dtype.FP16, null,
                null, null, Epilogue.none(), null, null));
        try (Device dev = open("cuda-emu", MathMode.FP16)) {
            for (MathMode math : new MathMode[] {MathMode.FP16, MathMode.BF16, MathMode.TF32, MathMode.TF32X3}) {
                Dtype d = storage(math);
                float[][] d0 = TestSupport.data(odd, 53);
                Tensor x = Tensor.of(d.round(d0[0]), odd.inputShape()), w = Tensor.of(d.round(d0[1]), odd.weightShape());
                Tensor b = Tensor.of(d.round(d0[2]), odd.biasLength());
                float[] nhwc, nchw;
                try (ConvPlan plan = ConvPlan.of(dev, odd, w, b).algorithm(Algorithm.IMPLICIT_GEMM).math(math).dtype(d).layout(Layout.NHWC).build()) {
                    String why = plan.explain();
                    assertTrue(why.contains("converted to and from nchw around the kernel: not on the channels-last kernels: 6 input channels"), why);
                    nhwc = plan.run(x.to(Layout.NHWC), null).to(Layout.NCHW).data();
                }
                try (ConvPlan plan = ConvPlan.of(dev, odd, w, b).algorithm(Algorithm.IMPLICIT_GEMM).math(math).dtype(d).build()) {
                    nchw = plan.run(x, null).data();
                }
                assertArrayEquals(nchw, nhwc, 0f, math.label());
            }
        }
    }

    /**
     * Split-K from the geometry alone: none where the grid fills the GPU, else enough slices to reach its block count,
     * each of at least 4 steps, at most 16; the workspace holds one float32 output per slice.
     */
    @Test
    void splitKFillsSmallGridsOnly() {
        ConvGeometry big = conv(new int[] {32, 64, 56, 56}, new int[] {64, 64, 3, 3}, true, ConvSpec.builder().padding(1).build());
        ConvGeometry small = conv(new int[] {32, 512, 7, 7}, new int[] {512, 512, 3, 3}, true, ConvSpec.builder().padding(1).build());
        ConvGeometry shallow = conv(new int[] {1, 8, 4, 4}, new int[] {8, 8, 1, 1}, true, ConvSpec.builder().build());
        assertEquals(1, ImplicitGemmNhwcLauncher.splits(big, Dtype.FP16));
        assertEquals(0, ImplicitGemmNhwcLauncher.workspaceBytes(big, Dtype.FP32));
        // 32 x 7 x 7 = 1568 pixels: 25 x 8 = 200 blocks of 64 x 64, so 2 slices give 400 >= 264; 144 steps allow it
        assertEquals(GemmTile.T64X64, ImplicitGemmNhwcLauncher.tile(small));
        assertEquals(2, ImplicitGemmNhwcLauncher.splits(small, Dtype.FP16));
        assertEquals(4L * 2 * 32 * 512 * 7 * 7, ImplicitGemmNhwcLauncher.workspaceBytes(small, Dtype.BF16));
        assertEquals(1, ImplicitGemmNhwcLauncher.splits(shallow, Dtype.FP16), "one step: nothing to split");
        assertEquals(1, ImplicitGemmNhwcLauncher.splits(shallow, Dtype.FP32), "one step of 16 floats: nothing to split");
        String half = ImplicitGemmNhwcLauncher.variant(small, MathMode.FP16, Dtype.FP16);
        assertTrue(half.contains("mma.sync m16n8k16 FP16, 32-channel steps") && half.contains("split-K into 2 slices of 72 of 144 steps (400 blocks"
                + "; deterministic: jconv_implicit_gemm_nhwc_splitk_reduce_fp16io adds them in order)"), half);
        // floats: 16 channels a step, so twice the steps
        String x3 = ImplicitGemmNhwcLauncher.variant(small, MathMode.TF32X3, Dtype.FP32);
        assertTrue(x3.startsWith("jconv_implicit_gemm_nhwc_3xtf32_fprop_64x64") && x3.contains("mma.sync m16n8k8 TF32, 3 per product, 16-channel steps")
                && x3.contains("split-K into 2 slices of 144 of 288 steps (400 blocks; deterministic: jconv_implicit_gemm_nhwc_splitk_reduce adds"), x3);
    }

    /** The weights in the order the kernels read them: w[k][r][s][c] from PyTorch's w[k][c][r][s]. */
    @Test
    void weightsAreReorderedToKrsc() {
        ConvGeometry g = conv(new int[] {1, 8, 5, 5}, new int[] {2, 8, 2, 3}, false, ConvSpec.builder().build());
        float[] kcrs = new float[2 * 8 * 2 * 3];
        for (int i = 0; i < kcrs.length; i++) {
            kcrs[i] = i;
        }
        float[] krsc = ImplicitGemmNhwcLauncher.krsc(g, kcrs);
        for (int k = 0; k < 2; k++) {
            for (int c = 0; c < 8; c++) {
                for (int r = 0; r < 2; r++) {
                    for (int s = 0; s < 3; s++) {
                        assertEquals(kcrs[((k * 8 + c) * 2 + r) * 3 + s], krsc[((k * 2 + r) * 3 + s) * 8 + c]);
                    }
                }
            }
        }
    }
}
